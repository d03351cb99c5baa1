/*
 * aff_listen_watch.h - NNG listeners on ipc:// that are made again when
 * NNG stops accepting on them.
 *
 * NNG 1.5.2's listener_accept_cb takes NNG_ECLOSED for "the socket is
 * closing" and stops accepting for good. On ipc://, a peer that connects
 * and closes at once makes the SP header's write fail with EPIPE, which
 * NNG maps to NNG_ECLOSED: one such connection (a probe, a scanner, a
 * worker killed as it dialled) was enough. The transport still accepts
 * and answers the SP header, but no connection becomes a pipe again: no
 * worker could connect any more, and each connection closed after that
 * stayed registered in NNG's poller, its hang-up reported again and again
 * (a CPU spent spinning, a descriptor kept).
 *
 * The watch's thread probes each watched listener every
 * AFF_LISTEN_WATCH_MS: it connects as a peer of the socket's protocol,
 * exchanges SP headers, and waits for the socket's pipe event. When the
 * headers come but no pipe does, twice in a row, or the address refuses
 * connections or is gone (its socket file removed), the listener is
 * closed (which closes what it had accepted) and made again on the same
 * address. The probe's own pipe events are not passed on to the caller's
 * callback. What NNG still leaks: the connections that came while the
 * listener was dead are closed with it but never freed (ipc_ep_close
 * does not reap them), a descriptor each.
 * tcp:// and tls+tcp:// listeners are not watched: no way of making them
 * stop was found (a peer's close before the header makes the write
 * succeed or fail with ECONNRESET, after which NNG accepts again).
 */
#ifndef AFF_LISTEN_WATCH_H
#define AFF_LISTEN_WATCH_H

#include <nng/nng.h>

#include "aff_tls.h"

#define AFF_LISTEN_WATCH_MS 1000
#define AFF_LISTEN_WATCH_MAX 4

typedef struct aff_listen_watch aff_listen_watch;

/* A watch with no listener yet; who names it in messages. */
int aff_listen_watch_new(aff_listen_watch **wp, const char *who);

/*
 * Listens on url on s with aff_tls_listen (its errors, said), and watches
 * it when it is ipc://. cb (NULL: none) gets s's ADD_PRE and REM_POST
 * pipe events but the probes' (s takes no other pipe callback for those).
 * url and the files must live as long as the watch.
 */
int aff_listen_watched(aff_listen_watch *w, nng_socket s, const char *url,
    const struct aff_tls_files *tls, nng_pipe_cb cb, void *arg);

/* Starts the probing thread (if any listener is watched). AFF_OK. */
int aff_listen_watch_start(aff_listen_watch *w);

/* Stops the thread: before the sockets are closed. */
void aff_listen_watch_stop(aff_listen_watch *w);

/* Frees w (stopped first if need be): after the sockets are closed, as
 * their pipe callbacks point into it. */
void aff_listen_watch_free(aff_listen_watch *w);

#endif /* AFF_LISTEN_WATCH_H */
