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

/* One thread with that stack runs every input in turn: making a thread
 * per input cost ~55 us, more than most inputs take. */
static pthread_mutex_t cw_stack_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cw_stack_cv = PTHREAD_COND_INITIALIZER;
static struct cw_stack_input *cw_stack_pending; /* to run; NULL when run */
static int cw_stack_started;

static void *
cw_stack_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&cw_stack_mu);
	for (;;) {
		struct cw_stack_input *in;
		while (cw_stack_pending == NULL)
			pthread_cond_wait(&cw_stack_cv, &cw_stack_mu);
		in = cw_stack_pending;
		pthread_mutex_unlock(&cw_stack_mu);
		in->rv = in->fn(in->data, in->len);
		pthread_mutex_lock(&cw_stack_mu);
		cw_stack_pending = NULL;
		pthread_cond_broadcast(&cw_stack_cv);
	}
	return (NULL);
}

/* fn(data, len) on the thread with a CW_STACK_SIZE stack; its return
 * value. A thread that cannot be made is a broken test machine: abort. */
static inline int
cw_stack_run(int (*fn)(const uint8_t *, size_t), const uint8_t *data,
    size_t len)
{
	struct cw_stack_input in = { fn, data, len, 0 };

	pthread_mutex_lock(&cw_stack_mu);
	if (!cw_stack_started) {
		pthread_attr_t attr;
		pthread_t t;
		if (pthread_attr_init(&attr) != 0 ||
		    pthread_attr_setstacksize(&attr, CW_STACK_SIZE) != 0 ||
		    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) !=
		        0 ||
		    pthread_create(&t, &attr, cw_stack_main, NULL) != 0)
			abort();
		pthread_attr_destroy(&attr);
		cw_stack_started = 1;
	}
	cw_stack_pending = &in;
	pthread_cond_broadcast(&cw_stack_cv);
	while (cw_stack_pending != NULL)
		pthread_cond_wait(&cw_stack_cv, &cw_stack_mu);
	pthread_mutex_unlock(&cw_stack_mu);
	return (in.rv);
}

#endif /* CW_STACK_H */
