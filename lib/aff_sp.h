/*
 * aff_sp.h - one blocking SP REQ connection: the wire protocol of NNG's
 * REQ/REP (the nanomsg "scalability protocols", sp-tcp-mapping and
 * sp-request-reply) spoken over a plain socket, for a thread that waits for
 * its reply anyway.
 *
 * Why it exists: a civetweb worker thread blocks for each RPC. Through NNG
 * 1.5.2's REQ contexts that wait costs several thread hand-offs per call
 * (the send completion and the reply each pass through NNG's poller and
 * task threads before the waiting thread is woken); on a small host those
 * switches, not the work, bound the bridge (README, Performance, has the
 * measured cost). A connection owned by the
 * calling thread writes the request and reads the reply itself. The bytes
 * on the wire are NNG's: the server's own listener for tcp:// and ipc://
 * (services/rpc/rpc_sp_listen.c) and NNG's REP socket answer it alike.
 *
 * A connection carries one call at a time and is not thread-safe: keep one
 * per thread. Supports tcp://HOST:PORT and ipc:///PATH.
 */
#ifndef AFF_SP_H
#define AFF_SP_H

#include <stddef.h>
#include <stdint.h>

typedef struct aff_sp_conn aff_sp_conn;

struct sockaddr_storage;

/*
 * The socket address of a tcp://HOST:PORT or ipc:///PATH URL, and whether
 * it is ipc (its messages framed with a type byte). With passive set (a
 * listener) an empty host or "*" is any address. AFF_OK, or
 * AFF_INVALID_ARGUMENT for a URL it cannot parse or resolve.
 */
int aff_sp_addr(const char *url, int passive, struct sockaddr_storage *ss,
    unsigned *len, int *ipc);

/* n bytes of v big-endian at p, and back: SP's lengths and ids. */
void aff_sp_put_be(uint8_t *p, uint64_t v, int n);
uint64_t aff_sp_get_be(const uint8_t *p, int n);

/* Whether aff_sp_dial can speak to url (tcp:// or ipc://). */
int aff_sp_supported(const char *url);

/*
 * Connects to url and exchanges the SP headers (REQ to REP) before
 * deadline (aff_mono_ms() clock). Returns AFF_OK, AFF_INVALID_ARGUMENT for
 * a URL it cannot dial, AFF_UNAVAILABLE when nobody answers as a REP
 * socket, AFF_DEADLINE_EXCEEDED. Caller closes with aff_sp_close.
 */
int aff_sp_dial(const char *url, int64_t deadline, aff_sp_conn **cp);

/*
 * Sends one request and waits for its reply until deadline (aff_mono_ms()
 * clock). On AFF_OK *rep is the reply body (caller frees with free()),
 * *rlen its length. Errors: AFF_UNAVAILABLE (the connection broke: the
 * request may or may not have reached the server; aff_sp_sent says
 * whether any of it was written), AFF_DEADLINE_EXCEEDED,
 * AFF_RESOURCE_EXHAUSTED (a reply over max_reply),
 * AFF_INTERNAL (the peer broke the protocol). After any error the
 * connection is unusable: close it.
 */
int aff_sp_call(aff_sp_conn *c, const void *req, size_t len, int64_t deadline,
    size_t max_reply, void **rep, size_t *rlen);

/*
 * How many bytes of its last request aff_sp_call wrote: 0 after a failed
 * call means the server cannot have received any of it, so it is safe to
 * send again; anything else means it may have, and a caller that sends
 * it again may apply it twice.
 */
size_t aff_sp_sent(const aff_sp_conn *c);

/*
 * Whether a kept connection can carry the next call, checked without
 * waiting: 0 when the peer has already closed it (or reset it, or sent
 * bytes nobody asked for). A peer that closed before anything of the next
 * request was written cannot have read that request, so the caller may
 * dial again and send it there.
 */
int aff_sp_reusable(aff_sp_conn *c);

void aff_sp_close(aff_sp_conn *c);

#endif /* AFF_SP_H */
