/*
 * aff_dialer.h - an NNG dialer that is made again when NNG gives up on it.
 *
 * NNG 1.5.2's dialer_connect_cb stops redialling for good on NNG_ECLOSED,
 * which it takes for "the socket is closing". But a peer that closes
 * while the SP header is being sent (a server killed or restarting as the
 * dial lands) makes that write fail with EPIPE, which NNG maps to
 * NNG_ECLOSED too: the dialer is left alive and idle, and the socket never
 * connects again. A worker hit by it took no job until restarted.
 *
 * aff_dialer watches the socket's connections (its pipe events; so one
 * aff_dialer per socket) and aff_dialer_check, called every few hundred
 * milliseconds, closes a dialer whose socket has had no connection for
 * AFF_DIALER_STALE_MS and dials again. A dialer that is only waiting for a
 * server that is down is replaced as well: harmless, it just tries again
 * at once. Beyond NNG's own redial (RECONNMAXT, 1 s here), a connection
 * comes back at most AFF_DIALER_STALE_MS after its server does.
 */
#ifndef AFF_DIALER_H
#define AFF_DIALER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <nng/nng.h>

#include "aff_tls.h"

#define AFF_DIALER_STALE_MS 3000

struct aff_dialer {
	nng_socket sock;
	nng_dialer d;
	const char *url;             /* the caller's, lives as long */
	int use_tls;                 /* dialled by aff_tls_dial_flags */
	struct aff_tls_files tls;    /* the caller's strings, likewise */
	const char *who;             /* for its messages */
	atomic_int pipes;            /* connections up right now */
	atomic_llong down_since;     /* aff_mono_ms() when it had none */
	pthread_mutex_t mtx;         /* one check replaces it at a time */
};

/*
 * Watches s's connections and dials url on it; flags 0 waits for the
 * connection, NNG_FLAG_NONBLOCK does not. With tls (the files may be
 * none) through aff_tls_dial_flags, which checks the files against the
 * scheme and says what fails; without, plainly and silently. Before any
 * other pipe callback is set on s. AFF_OK or the dial's error; either
 * way aff_dialer_fini is to be called once the socket is closed.
 */
int aff_dialer_start(struct aff_dialer *ad, nng_socket s, const char *url,
    const struct aff_tls_files *tls, const char *who, int flags);

/* Connections of the socket up right now. */
int aff_dialer_pipes(const struct aff_dialer *ad);

/*
 * Makes the dialer again when the socket has had no connection for
 * AFF_DIALER_STALE_MS by now_ms (aff_mono_ms). 1 when it did, else 0.
 * Any thread; a check that finds another one at work returns 0.
 */
int aff_dialer_check(struct aff_dialer *ad, int64_t now_ms);

/* After the socket is closed. */
void aff_dialer_fini(struct aff_dialer *ad);

#endif /* AFF_DIALER_H */
