/*
 * aff_client_pool.h - private to lib/aff_client*: the servers of one
 * client (aff_client.h) and what its calls know of their health: which
 * are connected, which are marked down and until when, which comes next
 * (round-robin), and which call probes a down server once its backoff
 * has run out. Shared by all the client's calling threads: atomics only,
 * no lock on the call path.
 */
#ifndef AFF_CLIENT_POOL_H
#define AFF_CLIENT_POOL_H

#include <stdatomic.h>
#include <stdint.h>

#include <nng/nng.h>

#include "aff_client.h"

#define AFF_CLIENT_MAX_SOCKETS 64

struct aff_client_sock {
	nng_socket sock;
	atomic_int pipes; /* connections up right now */
};

/* One server of the client's list, and what the calls know of its
 * health. */
struct aff_client_srv {
	char url[AFF_CLIENT_URL_MAX];
	struct aff_client_sock socks[AFF_CLIENT_MAX_SOCKETS];
	int n_socks;
	int direct;               /* per-thread SP connections, no sockets */
	atomic_uint next;         /* round-robin over its sockets */
	atomic_llong down_until;  /* aff_mono_ms(); 0: up */
	atomic_int backoff_ms;    /* the next down period */
	atomic_llong down_since;  /* when it was last marked down */
};

struct aff_client_pool {
	struct aff_client_srv *servers; /* n of them */
	int n;
	atomic_uint next;               /* round-robin cursor */
};

/* Sets s up for url: no sockets yet, up, the first backoff. */
void aff_client_pool_srv_init(struct aff_client_srv *s, const char *url);

/*
 * Marks s down for its backoff, doubling the next one (once per period,
 * however many calls see the failure). Logged when p has other servers:
 * with one, every call tries it anyway.
 */
void aff_client_pool_down(struct aff_client_pool *p, struct aff_client_srv *s);

/* s answered: up again, its backoff reset. */
void aff_client_pool_up(struct aff_client_pool *p, struct aff_client_srv *s);

/*
 * The index of the next server for a call that has tried those in the
 * bitmask tried: round-robin among the usable ones (connected, not marked
 * down; a down one whose backoff ran out goes to one call, the probe),
 * else any not tried yet; -1 when all were tried.
 */
int aff_client_pool_pick(struct aff_client_pool *p, uint32_t tried);

/* The next socket of s, round-robin, with a connection; NULL when none. */
struct aff_client_sock *aff_client_pool_sock(struct aff_client_srv *s);

/* The same, waiting up to grace_ms for a connection (a server starting). */
struct aff_client_sock *aff_client_pool_wait_sock(
    struct aff_client_srv *s, int grace_ms);

#endif /* AFF_CLIENT_POOL_H */
