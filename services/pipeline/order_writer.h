/*
 * order_writer.h - group commit for orders. Handler threads queue their
 * order for one writer thread and go on; the writer puts every order
 * waiting into one transaction, and those queued while its statements
 * run too, so one fsync (synchronous=FULL) makes a whole batch durable,
 * and each call is answered (a deferred RPC reply) only after that
 * commit.
 */
#ifndef ORDER_WRITER_H
#define ORDER_WRITER_H

#include "store.h"

typedef struct order_writer order_writer;

/* Opens the writer's own store connection to db_path and starts it. */
int order_writer_start(const char *db_path, order_writer **wp);
void order_writer_stop(order_writer *w);

/*
 * Called on the writer's thread once the order's batch is committed (or
 * failed): rv as store_ops.order_put, AFF_OK meaning on disk; order (in
 * the submitter's arena) and outcome as order_put's.
 */
typedef void (*order_writer_done_fn)(void *arg, int rv,
    Affiliate__V1__Order *order, enum store_order_outcome outcome);

/*
 * Queues an order; returns at once, so a handler thread is not held while
 * the batch fills and commits (the batch can then be as large as the
 * requests in flight). in and a must stay valid until done is called.
 * AFF_UNAVAILABLE (and no call of done) when the writer is stopping.
 */
int order_writer_submit(order_writer *w, const struct store_order_in *in,
    aff_arena *a, order_writer_done_fn done, void *arg);

struct aff_mbuf;

/* Appends the writer's families to b: orders stored and duplicate
 * (counters), group-commit batch sizes and commit time (histograms). */
void order_writer_metrics_write(order_writer *w, struct aff_mbuf *b);

#endif /* ORDER_WRITER_H */
