/*
 * rpc_server.h - the REP side of the RPC core.
 *
 * tcp:// and ipc:// are served by a listener of our own that speaks NNG's
 * SP protocol on plain sockets (rpc_sp_listen.c); tls+tcp:// by an NNG
 * REP socket with many contexts, whose callbacks only move a received
 * request onto a queue (they never block). Either way a pool of handler
 * threads takes requests off the queue, calls the handler and sends the
 * reply on the request's connection. Each handler thread has its own state
 * (its store connection, its Redis connection), made by thread_init on that
 * thread before the server answers anything.
 */
#ifndef RPC_SERVER_H
#define RPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "aff_tls.h"

struct rpc_slot;

typedef struct rpc_server rpc_server;

struct rpc_server_opts {
	const char *url;        /* listen URL: tcp://, ipc://, tls+tcp://... */
	/* tls+tcp:// only (NULL otherwise): the server's certificate and key,
	 * and the CA whose client certificates it requires (aff_tls.h). */
	const struct aff_tls_files *tls;
	int n_contexts;         /* requests received at once; 0 = 128 */
	int n_threads;          /* handler threads; 0 = 8 */
	size_t max_msg;         /* larger requests are dropped by NNG */

	/* Called once on each handler thread; returns the thread's state or
	 * NULL on failure (the start fails). */
	void *(*thread_init)(void *arg);
	void (*thread_fini)(void *state);
	void *arg;

	/* Handles one request: returns the reply (which the server sends and
	 * frees), NULL to send no reply, or RPC_SERVER_DEFERRED when the
	 * reply will come later through rpc_server_reply(slot, ...). Does not
	 * take ownership of req. */
	nng_msg *(*handle)(void *state, nng_msg *req, struct rpc_slot *slot);

	/* The reply to a request that is not run because the server is
	 * stopping (NULL: none is sent). Called on any thread, NNG's
	 * callbacks included: must not block. Does not take req. */
	nng_msg *(*refuse)(nng_msg *req);
};

/* The request a deferred reply answers. */
struct rpc_slot;

extern char rpc_server_deferred_;
#define RPC_SERVER_DEFERRED ((nng_msg *)(void *)&rpc_server_deferred_)

/*
 * Sends the reply of a deferred request (takes ownership of reply; NULL
 * sends none). Callable from any thread, also after rpc_server_close(),
 * never after rpc_server_free().
 */
void rpc_server_reply(struct rpc_slot *slot, nng_msg *reply);

/* When the slot's request at hand was received (aff_mono_ms() clock):
 * a call's timeout counts from then, time queued included. Valid while
 * the handler holds the slot. */
int64_t rpc_server_received_ms(const struct rpc_slot *slot);

/* The peer of the connection the slot's request came on, for the gate
 * (who may call, rate limits): IPv4 or IPv6 text, "local" for ipc and
 * inproc (this host), "unknown" when it is gone or slot is NULL. Valid
 * while the handler holds the slot. */
void rpc_server_peer(const struct rpc_slot *slot, char *buf, size_t cap);

/*
 * Starts listening and serving. Returns AFF_OK, AFF_INVALID_ARGUMENT for a
 * bad URL, AFF_UNAVAILABLE when the address cannot be bound, or the error of
 * a failed thread_init.
 */
int rpc_server_start(const struct rpc_server_opts *opts, rpc_server **sp);

/*
 * The first step of a stop: from now on every request is answered with
 * opts.refuse (never run), and it returns once no handler is running.
 * Deferred replies are still sent, so whatever answers them (the order
 * writer) can finish and answer before rpc_server_close.
 */
void rpc_server_drain(rpc_server *s);

/* Stops serving: drains (when not done yet), the handler threads stop,
 * replies already given are handed to their connections (up to 2 s), and
 * the socket closes. Deferred replies may still be given (they go
 * nowhere). */
void rpc_server_close(rpc_server *s);

/* Frees it all; no deferred reply may come after. */
void rpc_server_free(rpc_server *s);


#endif /* RPC_SERVER_H */
