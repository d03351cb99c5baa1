/*
 * order_put_cost.c - what one order costs the store on the durable
 * webhook path: order_put inside group-commit batches (batch_begin, a
 * savepoint per order, batch_end's commit and fsync), as the order writer
 * does it, against a database the caller prepared (bench_order_put.sh:
 * the same schema with and without schema step 14's earnings triggers).
 *
 *   bench-order-put DB N BATCH PREFIX
 *
 * writes N new orders (ids PREFIX-0...), BATCH per transaction, then moves
 * every second one pending -> approved in the same batches, and prints
 * one line: "put_us=<wall us per new order> put_cpu_us=<thread CPU us>
 * move_us=<...> move_cpu_us=<...>". put_loop and move_loop are what
 * callgrind's --toggle-collect counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "aff_arena.h"
#include "aff_err.h"
#include "aff_log.h"
#include "store.h"

static double
now_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ((double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3);
}

/* One pass of n orders in batches; move: to approved, else new. */
static int
loop(store *s, int n, int batch, const char *prefix, int move)
{
	aff_arena a;
	char id[64];
	int rv = AFF_OK;

	aff_arena_init(&a);
	for (int i = 0; i < n && rv == AFF_OK; i += batch) {
		if ((rv = s->ops->batch_begin(s)) != AFF_OK)
			break;
		for (int k = i; k < i + batch && k < n; k++) {
			struct store_order_in in = { .order_id = id,
				.advertiser_id = 1 + k % 24,
				.editor_id = 1 + k % 6,
				.amount_cents = 1000 + k % 9000,
				.commission_cents = 50 + k % 400,
				.status = move ? "approved" : NULL };
			Affiliate__V1__Order *o;
			enum store_order_outcome oc;

			if (move && k % 2 != 0)
				continue;
			snprintf(id, sizeof(id), "%s-%d", prefix, k);
			if (s->ops->order_put(s, &in, &a, &o, &oc) != AFF_OK
			    || oc
			        != (move ? STORE_ORDER_MOVED
			                 : STORE_ORDER_CREATED)) {
				fprintf(stderr, "order %s: not %s\n", id,
				    move ? "moved" : "created");
				rv = AFF_INTERNAL;
			}
		}
		if ((rv = s->ops->batch_end(s, rv)) != AFF_OK)
			break;
		aff_arena_fini(&a);
		aff_arena_init(&a);
	}
	aff_arena_fini(&a);
	return (rv);
}

/* Separate functions, so that callgrind can count each. */
int put_loop(store *s, int n, int batch, const char *prefix);
int move_loop(store *s, int n, int batch, const char *prefix);

__attribute__((noinline)) int
put_loop(store *s, int n, int batch, const char *prefix)
{
	return (loop(s, n, batch, prefix, 0));
}

__attribute__((noinline)) int
move_loop(store *s, int n, int batch, const char *prefix)
{
	return (loop(s, n, batch, prefix, 1));
}

int
main(int argc, char **argv)
{
	double t[3], c[3];
	store *s;
	int n, batch;

	if (argc != 5 || (n = atoi(argv[2])) <= 0
	    || (batch = atoi(argv[3])) <= 0) {
		fprintf(stderr, "usage: %s DB N BATCH PREFIX\n", argv[0]);
		return (2);
	}
	aff_log_set_level(AFF_LOG_ERROR);
	if (store_open(argv[1], &s) != AFF_OK)
		return (1);
	t[0] = now_us(CLOCK_MONOTONIC);
	c[0] = now_us(CLOCK_THREAD_CPUTIME_ID);
	if (put_loop(s, n, batch, argv[4]) != AFF_OK)
		return (1);
	t[1] = now_us(CLOCK_MONOTONIC);
	c[1] = now_us(CLOCK_THREAD_CPUTIME_ID);
	if (move_loop(s, n, batch, argv[4]) != AFF_OK)
		return (1);
	t[2] = now_us(CLOCK_MONOTONIC);
	c[2] = now_us(CLOCK_THREAD_CPUTIME_ID);
	printf("put_us=%.1f put_cpu_us=%.1f move_us=%.1f move_cpu_us=%.1f\n",
	    (t[1] - t[0]) / n, (c[1] - c[0]) / n, (t[2] - t[1]) / (n / 2),
	    (c[2] - c[1]) / (n / 2));
	store_close(s);
	return (0);
}
