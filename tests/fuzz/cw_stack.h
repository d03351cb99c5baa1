/*
 * cw_stack.h - runs a function on a thread with the stack civetweb gives
 * its worker threads, so code that runs on them in the bridge is tested on
 * the stack it has there, not on the main thread's 8 MB. Debian's
 * libcivetweb1 1.15 is built with CIVETWEB_THREAD_STACK_SIZE's default,
 * 102400 bytes: mg_start_thread_with_id() passes it to
 * pthread_attr_setstacksize() (objdump shows the constant 0x19000), and
 * test_edge_http checks it against a running civetweb. A recursion that
 * overflows it crashes here as it would in the bridge (1,000 nested "["
 * in jansson did).
 *
 * Header only: the fuzz targets (libFuzzer, and replay.c under gcc) and
 * the tests include it.
 */
#ifndef CW_STACK_H
#define CW_STACK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define CW_STACK_SIZE 102400

struct cw_stack_input {
	int (*fn)(const uint8_t *, size_t);
	const uint8_t *data;
	size_t len;
	int rv;
};

static void *
cw_stack_main(void *arg)
{
	struct cw_stack_input *in = arg;

	in->rv = in->fn(in->data, in->len);
	return (NULL);
}

/* fn(data, len) on a thread with a CW_STACK_SIZE stack; its return value.
 * A thread that cannot be made is a broken test machine: abort. */
static inline int
cw_stack_run(int (*fn)(const uint8_t *, size_t), const uint8_t *data,
    size_t len)
{
	struct cw_stack_input in = { fn, data, len, 0 };
	pthread_attr_t attr;
	pthread_t t;

	if (pthread_attr_init(&attr) != 0 ||
	    pthread_attr_setstacksize(&attr, CW_STACK_SIZE) != 0 ||
	    pthread_create(&t, &attr, cw_stack_main, &in) != 0 ||
	    pthread_join(t, NULL) != 0)
		abort();
	pthread_attr_destroy(&attr);
	return (in.rv);
}

#endif /* CW_STACK_H */
