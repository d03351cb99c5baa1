/* order_writer.c - see order_writer.h. */
#include "order_writer.h"

#include <pthread.h>
#include <stdlib.h>

#include "aff_err.h"
#include "aff_log.h"

#define BATCH_MAX 512

struct owrite {
	const struct store_order_in *in;
	aff_arena *arena;
	Affiliate__V1__Order *out;
	enum store_order_outcome outcome;
	int rv;
	order_writer_done_fn done;
	void *arg;
	struct owrite *next;
};

struct order_writer {
	store *s;
	pthread_t thread;
	int started;
	pthread_mutex_t mtx;
	pthread_cond_t work;  /* writes queued, or stopping */
	struct owrite *head, *tail;
	int stopping;
};

static void *
writer_main(void *arg)
{
	order_writer *w = arg;
	struct owrite *batch, *r;
	int n, rv;

	for (;;) {
		pthread_mutex_lock(&w->mtx);
		while (w->head == NULL && !w->stopping)
			pthread_cond_wait(&w->work, &w->mtx);
		if (w->head == NULL && w->stopping) {
			pthread_mutex_unlock(&w->mtx);
			break;
		}
		/* Take what is waiting, up to a batch. */
		batch = w->head;
		for (n = 1, r = batch; r->next != NULL && n < BATCH_MAX; n++)
			r = r->next;
		w->head = r->next;
		if (w->head == NULL)
			w->tail = NULL;
		r->next = NULL;
		pthread_mutex_unlock(&w->mtx);

		rv = w->s->ops->batch_begin(w->s);
		for (r = batch; r != NULL; r = r->next)
			r->rv = rv != AFF_OK ? rv
			                     : w->s->ops->order_put(w->s, r->in,
			                           r->arena, &r->out, &r->outcome);
		/* Nothing is answered as stored before the commit is. */
		if (rv == AFF_OK && (rv = w->s->ops->batch_end(w->s, AFF_OK)) !=
		        AFF_OK) {
			aff_error("orders: a batch of %d did not commit: %s", n,
			    aff_strerror(rv));
			for (r = batch; r != NULL; r = r->next)
				r->rv = rv;
		}
		while ((r = batch) != NULL) {
			batch = r->next;
			r->done(r->arg, r->rv, r->out, r->outcome);
			free(r);
		}
	}
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
	if ((rv = store_open(db_path, &w->s)) != AFF_OK)
		goto failed;
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed;
	}
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
	/* The writer finishes what is queued before it stops. */
	if (w->started)
		pthread_join(w->thread, NULL);
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
