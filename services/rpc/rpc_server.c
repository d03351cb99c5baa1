/* rpc_server.c - see rpc_server.h. */
#include "rpc_server.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/protocol/reqrep0/rep.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_sp.h"
#include "aff_util.h"
#include "rpc_server_private.h"

/* Only its address is used: the sentinel of a deferred reply. */
char rpc_server_deferred_;

void
rpc_server_enqueue(rpc_server *srv, struct rpc_slot *sl)
{
	pthread_mutex_lock(&srv->mtx);
	sl->state = SLOT_QUEUED;
	sl->next = NULL;
	if (srv->tail != NULL)
		srv->tail->next = sl;
	else
		srv->head = sl;
	srv->tail = sl;
	pthread_cond_signal(&srv->cv);
	pthread_mutex_unlock(&srv->mtx);
}

static void
slot_recv(struct rpc_slot *sl)
{
	sl->state = SLOT_RECV;
	nng_ctx_recv(sl->ctx, sl->aio);
}

/* Answers the slot's request as refused (the server is stopping). */
static void
slot_refuse(struct rpc_slot *sl)
{
	nng_msg *req = sl->req;

	sl->req = NULL;
	sl->state = SLOT_DEFERRED;
	rpc_server_reply(sl, sl->srv->opts.refuse != NULL
	        ? sl->srv->opts.refuse(req)
	        : NULL);
	nng_msg_free(req);
}

/* NNG's callback: must not block, so it only queues or re-arms. */
static void
slot_cb(void *arg)
{
	struct rpc_slot *sl = arg;
	rpc_server *srv = sl->srv;
	int rv = nng_aio_result(sl->aio);

	switch (sl->state) {
	case SLOT_RECV:
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		if (rv != 0) {
			slot_recv(sl);
			return;
		}
		sl->req = nng_aio_get_msg(sl->aio);
		sl->pipe = nng_msg_get_pipe(sl->req);
		sl->received_ms = aff_mono_ms();
		rpc_server_enqueue(srv, sl);
		break;
	case SLOT_SEND:
		atomic_fetch_sub(&srv->sending, 1);
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(sl->aio));
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		slot_recv(sl);
		break;
	case SLOT_QUEUED:
	case SLOT_DEFERRED:
		break;
	}
}

static void *
handler_main(void *arg)
{
	struct handler_thread *t = arg;
	rpc_server *srv = t->srv;
	struct rpc_slot *sl;
	nng_msg *req, *rep;

	t->state = srv->opts.thread_init != NULL
	    ? srv->opts.thread_init(srv->opts.arg)
	    : srv->opts.arg;
	pthread_mutex_lock(&srv->mtx);
	if (t->state == NULL && srv->opts.thread_init != NULL)
		srv->init_failed = 1;
	srv->n_ready++;
	pthread_cond_broadcast(&srv->init_cv);
	pthread_mutex_unlock(&srv->mtx);

	for (;;) {
		pthread_mutex_lock(&srv->mtx);
		while (srv->head == NULL && !srv->stopping)
			pthread_cond_wait(&srv->cv, &srv->mtx);
		if (srv->head == NULL) {
			pthread_mutex_unlock(&srv->mtx);
			break;
		}
		sl = srv->head;
		if ((srv->head = sl->next) == NULL)
			srv->tail = NULL;
		if (srv->draining) {
			/* Queued before the drain began: refused, not run. */
			pthread_mutex_unlock(&srv->mtx);
			slot_refuse(sl);
			continue;
		}
		srv->busy++;
		pthread_mutex_unlock(&srv->mtx);

		/* Take the request out of the slot first: once the handler has
		 * deferred, its reply may be sent (and the slot re-armed with
		 * the next request) before handle() even returns, so nothing
		 * may touch the slot after a deferral. */
		req = sl->req;
		sl->req = NULL;
		sl->state = SLOT_DEFERRED;
		rep = srv->opts.handle(t->state, req, sl);
		nng_msg_free(req);
		if (rep != RPC_SERVER_DEFERRED)
			rpc_server_reply(sl, rep);
		pthread_mutex_lock(&srv->mtx);
		if (--srv->busy == 0 && srv->draining)
			pthread_cond_broadcast(&srv->idle_cv);
		pthread_mutex_unlock(&srv->mtx);
	}
	if (srv->opts.thread_fini != NULL && t->state != NULL)
		srv->opts.thread_fini(t->state);
	return (NULL);
}

int64_t
rpc_server_received_ms(const struct rpc_slot *sl)
{
	return (sl->received_ms);
}

void
rpc_server_peer(const struct rpc_slot *sl, char *buf, size_t cap)
{
	nng_sockaddr sa;

	snprintf(buf, cap, "unknown");
	if (sl == NULL)
		return;
	if (sl->conn != NULL) {
		sp_peer(sl, buf, cap);
		return;
	}
	if (nng_pipe_id(sl->pipe) <= 0 ||
	    nng_pipe_get_addr(sl->pipe, NNG_OPT_REMADDR, &sa) != 0)
		return;
	switch (sa.s_family) {
	case NNG_AF_INET:
		inet_ntop(AF_INET, &sa.s_in.sa_addr, buf, (socklen_t)cap);
		break;
	case NNG_AF_INET6:
		inet_ntop(AF_INET6, sa.s_in6.sa_addr, buf, (socklen_t)cap);
		break;
	default: /* ipc, inproc, abstract: this host */
		snprintf(buf, cap, "local");
		break;
	}
}

void
rpc_server_reply(struct rpc_slot *sl, nng_msg *reply)
{
	if (sl->conn != NULL) {
		sp_reply(sl, reply);
		return;
	}
	if (reply == NULL) {
		/* No reply: REP must still be ready for the next. */
		slot_recv(sl);
		return;
	}
	atomic_fetch_add(&sl->srv->sending, 1);
	sl->state = SLOT_SEND;
	nng_aio_set_msg(sl->aio, reply);
	nng_ctx_send(sl->ctx, sl->aio);
}

int
rpc_server_start(const struct rpc_server_opts *opts, rpc_server **sp)
{
	rpc_server *srv;
	int rv, i;

	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	srv->opts = *opts;
	srv->n_slots = opts->n_contexts > 0 ? opts->n_contexts : 128;
	srv->n_threads = opts->n_threads > 0 ? opts->n_threads : 8;
	pthread_mutex_init(&srv->mtx, NULL);
	pthread_cond_init(&srv->cv, NULL);
	pthread_cond_init(&srv->init_cv, NULL);
	pthread_cond_init(&srv->idle_cv, NULL);
	atomic_init(&srv->sending, 0);

	/* tcp:// and ipc:// are served by our own listener (rpc_sp_listen.c
	 * says why); tls+tcp:// and anything else by NNG. */
	if (opts->tls != NULL || !aff_sp_supported(opts->url)) {
		if (nng_rep0_open(&srv->sock) != 0) {
			rv = AFF_INTERNAL;
			goto failed_socket;
		}
		srv->nng_open = 1;
		/* NNG_OPT_RECVMAXSZ is unlimited unless set: a peer could
		 * otherwise make us allocate whatever it claims to send. */
		nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, opts->max_msg);
	}

	/* Handler threads first: they open the store, and nothing is
	 * received before all of them are ready. */
	srv->threads = calloc((size_t)srv->n_threads, sizeof(*srv->threads));
	if (srv->threads == NULL) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed_threads;
	}
	for (i = 0; i < srv->n_threads; i++) {
		srv->threads[i].srv = srv;
		if (pthread_create(&srv->threads[i].tid, NULL, handler_main,
		        &srv->threads[i]) != 0) {
			rv = AFF_RESOURCE_EXHAUSTED;
			goto failed_threads;
		}
		/* Named for top -H and perf: where the server's time goes. */
		pthread_setname_np(srv->threads[i].tid, "aff:handler");
		srv->threads[i].started = 1;
	}
	pthread_mutex_lock(&srv->mtx);
	while (srv->n_ready < srv->n_threads)
		pthread_cond_wait(&srv->init_cv, &srv->mtx);
	pthread_mutex_unlock(&srv->mtx);
	if (srv->init_failed) {
		rv = AFF_UNAVAILABLE;
		goto failed_threads;
	}

	if (!srv->nng_open) {
		if ((rv = sp_listen_start(srv, opts->url, opts->max_msg,
		         srv->n_slots, &srv->sp)) != AFF_OK)
			goto failed_listen;
		aff_info("rpc: listening on %s (up to %d requests at once, %d "
		         "handler threads, max message %zu bytes)",
		    opts->url, srv->n_slots, srv->n_threads, opts->max_msg);
		*sp = srv;
		return (AFF_OK);
	}
	srv->slots = calloc((size_t)srv->n_slots, sizeof(*srv->slots));
	if (srv->slots == NULL) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed_slots;
	}
	for (i = 0; i < srv->n_slots; i++) {
		struct rpc_slot *sl = &srv->slots[i];
		sl->srv = srv;
		if (nng_aio_alloc(&sl->aio, slot_cb, sl) != 0 ||
		    nng_ctx_open(&sl->ctx, srv->sock) != 0) {
			rv = AFF_RESOURCE_EXHAUSTED;
			goto failed_slots;
		}
	}
	/* On tls+tcp:// no request is read from a peer without a client
	 * certificate from the CA: the handshake fails first. */
	if ((rv = aff_tls_listen(srv->sock, opts->url, opts->tls, "rpc")) !=
	    AFF_OK)
		goto failed_listen;
	for (i = 0; i < srv->n_slots; i++)
		slot_recv(&srv->slots[i]);
	aff_info("rpc: listening on %s (%d contexts, %d handler threads, "
	         "max message %zu bytes)",
	    opts->url, srv->n_slots, srv->n_threads, opts->max_msg);
	*sp = srv;
	return (AFF_OK);

failed_listen:
failed_slots:
failed_threads:
failed_socket:
	rpc_server_free(srv);
	return (rv);
}

void
rpc_server_drain(rpc_server *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mtx);
	s->draining = 1;
	pthread_cond_broadcast(&s->cv);
	while (s->busy > 0)
		pthread_cond_wait(&s->idle_cv, &s->mtx);
	pthread_mutex_unlock(&s->mtx);
}

/* How long close waits for replies still being handed to NNG. */
#define CLOSE_SEND_WAIT_MS 2000
/* NNG 1.5.2's REP completes a send when it hands the reply to the
 * connection, before the connection has written it; closing at once
 * could cut the last replies off. */
#define CLOSE_LINGER_MS 50

void
rpc_server_close(rpc_server *s)
{
	struct timespec ms = { 0, 1000 * 1000 };
	int64_t until;

	if (s == NULL || s->closed)
		return;
	s->closed = 1;
	rpc_server_drain(s);
	/* 1. The handler threads answer what is queued, then stop. */
	pthread_mutex_lock(&s->mtx);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mtx);
	if (s->threads != NULL)
		for (int i = 0; i < s->n_threads; i++)
			if (s->threads[i].started)
				pthread_join(s->threads[i].tid, NULL);
	/* 2. Every reply given (deferred ones too) reaches its connection. */
	until = aff_mono_ms() + CLOSE_SEND_WAIT_MS;
	while ((atomic_load(&s->sending) > 0 ||
	           (s->sp != NULL && sp_unsent(s->sp) > 0)) &&
	    aff_mono_ms() < until)
		nanosleep(&ms, NULL);
	ms.tv_nsec = CLOSE_LINGER_MS * 1000L * 1000L;
	nanosleep(&ms, NULL);
	/* 3. Closing the socket aborts every pending receive and send; the
	 * callbacks see NNG_ECLOSED and do not re-arm. */
	if (s->nng_open)
		nng_close(s->sock);
	sp_listen_close(s->sp);
}

void
rpc_server_free(rpc_server *s)
{
	if (s == NULL)
		return;
	rpc_server_close(s);
	if (s->slots != NULL)
		for (int i = 0; i < s->n_slots; i++) {
			struct rpc_slot *sl = &s->slots[i];
			if (sl->aio != NULL) {
				nng_aio_stop(sl->aio);
				nng_aio_free(sl->aio);
			}
			/* Requests still queued were never answered. */
			if (sl->state == SLOT_QUEUED && sl->req != NULL)
				nng_msg_free(sl->req);
		}
	/* Requests the plain listener read after the handler threads
	 * stopped: never answered, their connections closed. */
	while (s->head != NULL) {
		struct rpc_slot *sl = s->head;
		s->head = sl->next;
		if (sl->conn != NULL) {
			nng_msg_free(sl->req);
			free(sl);
		}
	}
	sp_listen_free(s->sp);
	free(s->slots);
	free(s->threads);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->init_cv);
	pthread_cond_destroy(&s->idle_cv);
	pthread_mutex_destroy(&s->mtx);
	free(s);
}

