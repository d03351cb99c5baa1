/*
 * order_writer.h - group commit for orders. Handler threads hand their
 * order to one writer thread and wait; the writer puts every order waiting
 * into one transaction, so one fsync (synchronous=FULL) makes a whole
 * batch durable, and each caller is answered only after that commit.
 */
#ifndef ORDER_WRITER_H
#define ORDER_WRITER_H

#include "store.h"

typedef struct order_writer order_writer;

/* Opens the writer's own store connection to db_path and starts it. */
int order_writer_start(const char *db_path, order_writer **wp);
void order_writer_stop(order_writer *w);

/*
 * As store_ops.order_put, committed before it returns: AFF_OK means the
 * order is on disk. *out is allocated in a (the caller's arena).
 */
int order_writer_put(order_writer *w, const struct store_order_in *in,
    aff_arena *a, Affiliate__V1__Order **out,
    enum store_order_outcome *outcome);

#endif /* ORDER_WRITER_H */
