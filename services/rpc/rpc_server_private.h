/*
 * rpc_server_private.h - private to rpc_server.c and rpc_sp_listen.c: the
 * server, its request slots and the plain-socket listener that serves
 * tcp:// and ipc:// without NNG's threads (rpc_sp_listen.c says why).
 */
#ifndef RPC_SERVER_PRIVATE_H
#define RPC_SERVER_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "rpc_server.h"

enum slot_state { SLOT_RECV, SLOT_QUEUED, SLOT_DEFERRED, SLOT_SEND };

struct sp_conn;
struct sp_listener;

/* Words of a request's backtrace, its id included, past which it is
 * dropped (NNG's REP ttl). */
#define SP_MAX_HOPS 8

/*
 * One request on its way through the server. On NNG a slot is a context
 * and its aio, reused request after request; on the plain listener it is
 * made for one request and freed once its reply is written (or dropped).
 */
struct rpc_slot {
	rpc_server *srv;
	nng_ctx ctx;
	nng_aio *aio;
	enum slot_state state;
	nng_msg *req;
	int64_t received_ms;   /* aff_mono_ms() when req came */
	struct rpc_slot *next; /* queue link */
	nng_pipe pipe;         /* NNG: the connection req came on */
	/* The plain listener: the connection, and the request's backtrace
	 * (its request id, and any hops before it), sent back before the
	 * reply's body. */
	struct sp_conn *conn;
	size_t bt_len;
	uint8_t bt[4 * SP_MAX_HOPS];
};

struct handler_thread {
	rpc_server *srv;
	pthread_t tid;
	void *state;
	int started;
};

struct rpc_server {
	struct rpc_server_opts opts;
	nng_socket sock;
	int nng_open;            /* sock is open (NNG serves the URL) */
	struct sp_listener *sp;  /* the plain listener serves the URL */
	struct rpc_slot *slots;
	int n_slots;
	struct handler_thread *threads;
	int n_threads;

	pthread_mutex_t mtx;
	pthread_cond_t cv;       /* work queued, or stopping */
	pthread_cond_t init_cv;  /* a thread finished thread_init */
	pthread_cond_t idle_cv;  /* a handler left handle() while draining */
	struct rpc_slot *head, *tail;
	int stopping;
	int closed;
	int n_ready, init_failed;
	int draining;            /* requests are refused, not handled */
	int busy;                /* handler threads inside handle() */
	atomic_int sending;      /* replies given to NNG, not yet sent */
};

/* Queues a received request for the handler threads (takes sl). */
void rpc_server_enqueue(rpc_server *srv, struct rpc_slot *sl);

/*
 * Listens on url (tcp:// or ipc://) and serves it from one thread of its
 * own: requests of at most max_msg bytes, at most max_slots at once in
 * the server (past it connections are not read until replies free
 * room). AFF_OK, AFF_INVALID_ARGUMENT (a URL it cannot parse),
 * AFF_UNAVAILABLE (cannot bind), AFF_RESOURCE_EXHAUSTED.
 */
int sp_listen_start(rpc_server *srv, const char *url, size_t max_msg,
    int max_slots, struct sp_listener **lp);

/* Sends sl's reply (takes reply, NULL: none) and frees sl. Any thread. */
void sp_reply(struct rpc_slot *sl, nng_msg *reply);

/* The peer of sl's connection: IPv4 or IPv6 text, or "local" (ipc). */
void sp_peer(const struct rpc_slot *sl, char *buf, size_t cap);

/* Connections with replies given but not yet all written. */
int sp_unsent(struct sp_listener *l);

/* Stops listening and closes every connection; replies given later go
 * nowhere (their slots are still freed). */
void sp_listen_close(struct sp_listener *l);

/* Frees what is left; no reply may come after. */
void sp_listen_free(struct sp_listener *l);

#endif /* RPC_SERVER_PRIVATE_H */
