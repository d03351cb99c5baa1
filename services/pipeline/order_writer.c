/* order_writer.c - see order_writer.h. */
#include "order_writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_metrics.h"
#include "aff_util.h"

#define BATCH_MAX 512
/*
 * Threads sending a batch's answers. Each takes one committed order at a
 * time, so a batch's replies leave from two threads (two cores) at once.
 * With one, every send woke a thread (NNG's, the bridge's worker over
 * loopback) that preempted it, and the batch's last reply waited for
 * all of those: ~93 us of wall time a reply for ~24 us of CPU.
 */
#define ANSWERERS 2
/* Batch sizes are counted in powers of two: 1, 2-3, 4-7, ..., 512. */
#define SIZE_BUCKETS 10

struct owrite {
	const struct store_order_in *in;
	aff_arena *arena;
	Affiliate__V1__Order *out;
	enum store_order_outcome outcome;
	int rv;
	order_writer_done_fn done;
	void *arg;
	/* CLOCK_MONOTONIC us: queued, and its batch's commit returned. */
	uint64_t queued_us, committed_us;
	struct owrite *next;
};

struct order_writer {
	store *s;
	pthread_t thread, answerer[ANSWERERS];
	int started, n_answerers;
	pthread_mutex_t mtx;
	pthread_cond_t work;  /* writes queued, or stopping */
	pthread_cond_t done;  /* committed writes to answer, or stopping */
	struct owrite *head, *tail;       /* to write */
	struct owrite *dhead, *dtail;     /* written, to answer */
	int stopping, writer_done;
	/* The writer's own figures (only its thread writes them before the
	 * join): how the load is grouped and where a batch's time goes. */
	uint64_t batches, orders, sql_us, sql_cpu_us, commit_sum_us;
	uint64_t sizes[SIZE_BUCKETS];
	/* Summed over orders: from submit to its batch's start (waiting for
	 * the writer), from that start to the commit's return, and from
	 * there to its answer being handed to the RPC layer (the answerers'
	 * sums, added under mtx as each ends, before the join). By Little's
	 * law each over the run's length is how many orders sat in that
	 * stage. */
	uint64_t wait_sum_us, batch_sum_us, answer_sum_us;
	/* For /metrics (order_writer_metrics_write); only the writer thread
	 * counts, the scrape reads. */
	struct aff_hist batch_size, commit_us;
	_Atomic unsigned long long stored, duplicate, failed_batches;
};

static uint64_t
clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

/* One info line at stop: the batch size distribution and the time a batch
 * spends in its statements and in its commit (the fsync), so a benchmark
 * can tell a disk-bound writer from a small-batch one. */
static void
writer_log_stats(const order_writer *w)
{
	char sizes[256];
	size_t off = 0;
	int i;

	if (w->batches == 0)
		return;
	for (i = 0; i < SIZE_BUCKETS && off < sizeof(sizes); i++) {
		unsigned lo = 1u << i, hi = (2u << i) - 1;
		if (w->sizes[i] == 0)
			continue;
		if (lo == hi)
			off += (size_t)snprintf(sizes + off, sizeof(sizes) - off,
			    " %u:%llu", lo, (unsigned long long)w->sizes[i]);
		else
			off += (size_t)snprintf(sizes + off, sizeof(sizes) - off,
			    " %u-%u:%llu", lo, hi, (unsigned long long)w->sizes[i]);
	}
	aff_info("orders: %llu in %llu batches (mean %.1f); sizes%s; "
	         "per batch %llu us of statements (%llu us on CPU), "
	         "%llu us of commit; per order %llu us queued, %llu us in its "
	         "batch, %llu us from commit to answer",
	    (unsigned long long)w->orders, (unsigned long long)w->batches,
	    (double)w->orders / (double)w->batches, sizes,
	    (unsigned long long)(w->sql_us / w->batches),
	    (unsigned long long)(w->sql_cpu_us / w->batches),
	    (unsigned long long)(w->commit_sum_us / w->batches),
	    (unsigned long long)(w->wait_sum_us / w->orders),
	    (unsigned long long)(w->batch_sum_us / w->orders),
	    (unsigned long long)(w->answer_sum_us / w->orders));
}

/* t0..t1 the statements (c0..c1 of the thread's CPU), t1..t2 the commit. */
static void
writer_count(order_writer *w, int n, const uint64_t t[3], const uint64_t c[2])
{
	int b = 0;

	while (b < SIZE_BUCKETS - 1 && (2 << b) <= n)
		b++;
	w->sizes[b]++;
	w->batches++;
	w->orders += (uint64_t)n;
	w->sql_us += t[1] - t[0];
	w->sql_cpu_us += c[1] - c[0];
	w->commit_sum_us += t[2] - t[1];
}


static const long long batch_bounds[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256,
	512 };
static const struct aff_hist_spec batch_spec = { batch_bounds,
	sizeof(batch_bounds) / sizeof(batch_bounds[0]), 1 };

/*
 * Answers committed writes on threads of their own, so the writer starts
 * the next batch's SQL while the last batch's replies are packed and sent.
 * Each answerer takes one order at a time (see ANSWERERS).
 */
static void *
answerer_main(void *arg)
{
	order_writer *w = arg;
	struct owrite *r;
	uint64_t answer_us = 0;

	for (;;) {
		pthread_mutex_lock(&w->mtx);
		while (w->dhead == NULL && !w->writer_done)
			pthread_cond_wait(&w->done, &w->mtx);
		if ((r = w->dhead) == NULL) {
			pthread_mutex_unlock(&w->mtx);
			break;
		}
		if ((w->dhead = r->next) == NULL)
			w->dtail = NULL;
		pthread_mutex_unlock(&w->mtx);
		answer_us += clock_us(CLOCK_MONOTONIC) - r->committed_us;
		r->done(r->arg, r->rv, r->out, r->outcome);
		free(r);
	}
	pthread_mutex_lock(&w->mtx);
	w->answer_sum_us += answer_us;
	pthread_mutex_unlock(&w->mtx);
	return (NULL);
}

/* Takes up to max queued writes off the queue (w->mtx held): the list,
 * NULL-terminated, and how many in *n; NULL when none waits. */
static struct owrite *
writer_take(order_writer *w, int max, int *n)
{
	struct owrite *list = w->head, *r;

	*n = 0;
	if (list == NULL || max < 1)
		return (NULL);
	for (*n = 1, r = list; r->next != NULL && *n < max; (*n)++)
		r = r->next;
	w->head = r->next;
	if (w->head == NULL)
		w->tail = NULL;
	r->next = NULL;
	return (list);
}

static void *
writer_main(void *arg)
{
	order_writer *w = arg;
	struct owrite *batch, *r;
	uint64_t t[3], c[2], start;
	int64_t t0;
	int n, k, rv;

	for (;;) {
		pthread_mutex_lock(&w->mtx);
		while (w->head == NULL && !w->stopping)
			pthread_cond_wait(&w->work, &w->mtx);
		if (w->head == NULL && w->stopping) {
			pthread_mutex_unlock(&w->mtx);
			break;
		}
		/* Take what is waiting, up to a batch. */
		batch = writer_take(w, BATCH_MAX, &n);
		pthread_mutex_unlock(&w->mtx);

		t[0] = clock_us(CLOCK_MONOTONIC);
		c[0] = clock_us(CLOCK_THREAD_CPUTIME_ID);
		t0 = aff_mono_us();
		rv = w->s->ops->batch_begin(w->s);
		for (r = batch; r != NULL && rv == AFF_OK; r = r->next) {
			r->rv = w->s->ops->order_put(
			    w->s, r->in, r->arena, &r->out, &r->outcome);
			/* Each order has a savepoint of its own: a refusal or a
			 * constraint it breaks is its answer alone (a partner does
			 * not retry a 400, so the others must not get one). Only
			 * a transaction the database ended fails the batch, and
			 * every caller is told. */
			if (r->rv == AFF_ABORTED)
				rv = r->rv;
			/* Orders queued while this batch's statements ran join
			 * it before its commit: they share its one flush instead
			 * of waiting a whole batch for the next (the writer is
			 * busy all the time under load, and half of the clients
			 * used to wait so). They are answered after that commit,
			 * as the others. */
			if (r->next == NULL && rv == AFF_OK && n < BATCH_MAX) {
				pthread_mutex_lock(&w->mtx);
				r->next = writer_take(w, BATCH_MAX - n, &k);
				pthread_mutex_unlock(&w->mtx);
				n += k;
			}
		}
		/* Nothing is answered as stored before the commit is. */
		t[1] = clock_us(CLOCK_MONOTONIC);
		c[1] = clock_us(CLOCK_THREAD_CPUTIME_ID);
		if ((rv = w->s->ops->batch_end(w->s, rv)) != AFF_OK) {
			aff_error("orders: a batch of %d did not commit: %s", n,
			    aff_strerror(rv));
			for (r = batch; r != NULL; r = r->next)
				r->rv = rv;
			AFF_COUNT(w->failed_batches, 1);
		}
		t[2] = clock_us(CLOCK_MONOTONIC);
		for (r = batch; r != NULL; r = r->next) {
			/* A late joiner was queued after the batch began. */
			start = r->queued_us > t[0] ? r->queued_us : t[0];
			w->wait_sum_us += start - r->queued_us;
			w->batch_sum_us += t[2] - start;
			r->committed_us = t[2];
		}
		writer_count(w, n, t, c);
		aff_hist_observe(&w->commit_us, &aff_hist_latency_us,
		    aff_mono_us() - t0);
		aff_hist_observe(&w->batch_size, &batch_spec, n);
		for (r = batch; r != NULL && rv == AFF_OK; r = r->next)
			if (r->rv == AFF_OK && r->outcome == STORE_ORDER_CREATED)
				AFF_COUNT(w->stored, 1);
			else if (r->rv == AFF_OK &&
			    r->outcome == STORE_ORDER_DUPLICATE)
				AFF_COUNT(w->duplicate, 1);
		for (r = batch; r->next != NULL; r = r->next)
			;
		pthread_mutex_lock(&w->mtx);
		if (w->dtail != NULL)
			w->dtail->next = batch;
		else
			w->dhead = batch;
		w->dtail = r;
		if (n > 1)
			pthread_cond_broadcast(&w->done);
		else
			pthread_cond_signal(&w->done);
		pthread_mutex_unlock(&w->mtx);
	}
	pthread_mutex_lock(&w->mtx);
	w->writer_done = 1;
	pthread_cond_broadcast(&w->done);
	pthread_mutex_unlock(&w->mtx);
	return (NULL);
}

int
order_writer_start(const char *db_path, order_writer **wp)
{
	order_writer *w;
	int rv;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	pthread_mutex_init(&w->mtx, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->done, NULL);
	if ((rv = store_open(db_path, &w->s)) != AFF_OK)
		goto failed;
	for (int i = 0; i < ANSWERERS; i++) {
		if (pthread_create(&w->answerer[i], NULL, answerer_main, w) !=
		    0) {
			rv = AFF_RESOURCE_EXHAUSTED;
			goto failed;
		}
		pthread_setname_np(w->answerer[i], "aff:ord-answer");
		w->n_answerers++;
	}
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed;
	}
	pthread_setname_np(w->thread, "aff:ord-write");
	w->started = 1;
	*wp = w;
	return (AFF_OK);
failed:
	order_writer_stop(w);
	return (rv);
}

void
order_writer_stop(order_writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mtx);
	w->stopping = 1;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mtx);
	/* The writer finishes what is queued before it stops, and the
	 * answerer answers all of it. */
	if (w->started)
		pthread_join(w->thread, NULL);
	else {
		pthread_mutex_lock(&w->mtx);
		w->writer_done = 1;
		pthread_cond_broadcast(&w->done);
		pthread_mutex_unlock(&w->mtx);
	}
	for (int i = 0; i < w->n_answerers; i++)
		pthread_join(w->answerer[i], NULL);
	writer_log_stats(w);
	pthread_cond_destroy(&w->done);
	store_close(w->s);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->mtx);
	free(w);
}

int
order_writer_submit(order_writer *w, const struct store_order_in *in,
    aff_arena *a, order_writer_done_fn done, void *arg)
{
	struct owrite *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	r->in = in;
	r->arena = a;
	r->done = done;
	r->arg = arg;
	r->queued_us = clock_us(CLOCK_MONOTONIC);
	pthread_mutex_lock(&w->mtx);
	if (w->stopping) {
		pthread_mutex_unlock(&w->mtx);
		free(r);
		return (AFF_UNAVAILABLE);
	}
	if (w->tail != NULL)
		w->tail->next = r;
	else
		w->head = r;
	w->tail = r;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mtx);
	return (AFF_OK);
}

void
order_writer_metrics_write(order_writer *w, struct aff_mbuf *b)
{
	aff_metric_head(b, "affiliate_server_orders_stored_total", "counter",
	    "Orders this server committed as new (a webhook's duplicate is not "
	    "one).");
	aff_mbuf_printf(b, "affiliate_server_orders_stored_total %llu\n",
	    AFF_LOAD(w->stored));
	aff_metric_head(b, "affiliate_server_orders_duplicate_total", "counter",
	    "Orders reported again unchanged: answered, nothing written.");
	aff_mbuf_printf(b, "affiliate_server_orders_duplicate_total %llu\n",
	    AFF_LOAD(w->duplicate));
	aff_metric_head(b, "affiliate_server_order_batches_failed_total",
	    "counter", "Group-commit batches whose commit failed (every order "
	    "in one is answered with the error).");
	aff_mbuf_printf(b, "affiliate_server_order_batches_failed_total %llu\n",
	    AFF_LOAD(w->failed_batches));
	aff_metric_head(b, "affiliate_server_order_batch_size", "histogram",
	    "Orders per group-commit transaction (one fsync each).");
	aff_hist_write(b, "affiliate_server_order_batch_size", "", &batch_spec,
	    &w->batch_size, 0);
	aff_metric_head(b, "affiliate_server_order_commit_duration_seconds",
	    "histogram", "Time of one group-commit transaction, from its begin "
	    "to its commit and fsync.");
	aff_hist_write(b, "affiliate_server_order_commit_duration_seconds", "",
	    &aff_hist_latency_us, &w->commit_us, 0);
}
