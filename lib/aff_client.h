/*
 * aff_client.h - the RPC client: one call is one RequestEnvelope sent and
 * one ReplyEnvelope received on an NNG REQ socket.
 *
 * A client is safe to share between threads, each with one call in flight
 * at a time: every calling thread keeps its own NNG aio and one context
 * per socket, opened at its first call there and reused by its next ones
 * (opening them per call cost locks and allocations on the hot path), and
 * calls are spread round-robin over the client's sockets. In direct mode
 * (opts.direct) there are no NNG sockets: every calling thread keeps its
 * own SP connection instead (aff_sp.h). What a thread keeps is freed when
 * it ends. REQ's automatic
 * resend is switched off (a call has a timeout instead); a request whose
 * connection drops is still sent again by NNG 1.5.2 on the next
 * connection, which the server answers from the request key (the same
 * request_id: see the README, "Retrying a call"). In direct mode a request
 * is never sent twice once any byte of it was written.
 *
 * The call's timeout travels in the envelope as timeout_ms, relative: the
 * server counts it on its own monotonic clock, so hosts' wall clocks need
 * not agree.
 *
 * Several servers: opts.url may be a comma-separated list of up to
 * AFF_CLIENT_MAX_URLS addresses (servers sharing one database). Calls go
 * round-robin to the servers that are up; a server that fails (refuses
 * the connection, drops it, or answers that it is stopping) is marked
 * down and tried again after a backoff (100 ms doubling to 2 s), by one
 * call at a time, while the others take the calls. A call that certainly
 * never reached a server goes to the next one; a call that may have
 * reached one goes to another only when it is safe to run twice (see
 * aff_client_invoke), and never past its deadline. One URL behaves as it
 * always did.
 */
#ifndef AFF_CLIENT_H
#define AFF_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "aff_tls.h"

typedef struct aff_client aff_client;

/* The most server URLs a client (and a worker) takes: a list is for a few
 * servers sharing a database, and a longer one is more likely a mistake. */
#define AFF_CLIENT_MAX_URLS 16
#define AFF_CLIENT_URL_MAX 256 /* bytes of one URL, its NUL included */

struct aff_client_opts {
	const char *url;      /* e.g. "tcp://127.0.0.1:5555", or several
	                         comma-separated (aff_client_url_list) */
	int timeout_ms;       /* default per-call timeout; 0 = 5000 */
	size_t max_reply;     /* largest reply accepted; 0 = 16 MiB */
	int wait_connected;   /* non-zero: open fails unless the server answers
	                         the dial (a CLI); zero: dial in the background
	                         and reconnect forever (a long-lived bridge) */
	int n_sockets;        /* REQ sockets (connections) to spread calls
	                         over; 0 = 1. NNG 1.5.2 slows down with many
	                         requests outstanding on one REQ socket. */
	int direct;           /* non-zero: no NNG socket; each calling thread
	                         dials its own blocking SP connection (see
	                         aff_sp.h), for threads that wait for each
	                         reply anyway (a thread-per-connection HTTP
	                         server). tcp:// and ipc:// only. */
	const struct aff_tls_files *tls; /* tls+tcp:// URLs: this client's
	                         certificate and key, and the CA that signs
	                         the server's; required there, refused with
	                         other URLs. NULL: none. With several URLs
	                         they apply to every tls+tcp:// one. */
};

/*
 * Splits a comma-separated list of URLs into urls (up to
 * AFF_CLIENT_MAX_URLS of AFF_CLIENT_URL_MAX bytes each); *n is how many.
 * Returns AFF_OK, or AFF_INVALID_ARGUMENT with a sentence in err: an
 * empty list or element ("a,,b", a trailing comma), spaces, a URL with no
 * "scheme://", one too long, or too many. Whether an address can be
 * dialled is the dial's to say (aff_client_open names the URL).
 */
int aff_client_url_list(const char *list,
    char urls[][AFF_CLIENT_URL_MAX], int *n, char *err, size_t errlen);

struct aff_metadata {
	const char *key;
	const char *value;
};

struct aff_call_opts {
	const char *request_id;               /* NULL: a random one */
	int timeout_ms;                       /* 0: the client's default */
	const struct aff_metadata *metadata;  /* n_metadata entries */
	size_t n_metadata;
	int idempotent;   /* the caller says running this call twice, on
	                     any of the client's servers, is harmless (the
	                     servers share one database and the call is
	                     keyed by its request_id, or a webhook keyed by
	                     its order_id): see aff_client_invoke */
};

/* What came back. Owned by the caller: release with aff_call_result_fini. */
struct aff_call_result {
	int code;                /* enum aff_err */
	char *message;           /* never NULL after a call ("" when none) */
	uint8_t *payload;        /* may be NULL */
	size_t payload_len;
	char request_id[65];
	/* The reply's trailing metadata (rate limits, WWW-Authenticate);
	 * n_metadata is 0 for most replies. */
	struct aff_metadata *metadata;
	size_t n_metadata;
};

/* The value of the reply's metadata entry key, or NULL. */
const char *aff_call_result_metadata(const struct aff_call_result *res,
    const char *key);

/*
 * Opens a client. Returns AFF_OK, AFF_INVALID_ARGUMENT for a bad URL,
 * AFF_UNAVAILABLE when wait_connected is set and the dial fails.
 */
int aff_client_open(aff_client **cp, const struct aff_client_opts *opts);

/* Closes the client; no call may be running on it. The other threads that
 * called it must have ended first (a bridge stops civetweb before): what
 * each kept is freed as it ends, and would be left behind after. */
void aff_client_close(aff_client *c);

/*
 * Sends payload to service/method and waits for the reply or the deadline.
 * Returns the call's status (also in res->code): the server's code, or
 * AFF_UNAVAILABLE when no server is connected, AFF_DEADLINE_EXCEEDED when
 * the reply did not come in time, AFF_INTERNAL when the reply was not an
 * envelope. res is always filled (call aff_call_result_fini).
 *
 * With several servers, the same request (same request_id, same bytes)
 * goes to another server, within the one deadline, when:
 * - it never reached the first: the connection could not be made, or
 *   writing failed before its first byte;
 * - the first answered UNAVAILABLE "affiliate-server is stopping; the call
 *   was not run" (its own words: it did not run it);
 * - the connection broke after it was sent, and the call is read-only
 *   (a method named Get..., List..., or HealthService's Check) or
 *   opts->idempotent says a second run is harmless.
 * Never on a timeout (the first server may still be running it) nor on
 * any other answer.
 */
int aff_client_invoke(aff_client *c, const char *service, const char *method,
    const uint8_t *payload, size_t len, const struct aff_call_opts *opts,
    struct aff_call_result *res);

/*
 * aff_client_invoke with the request as a message: packed straight into
 * the request envelope (no packed copy of its own first; a webhook's body
 * is copied once, into the message sent). req must stay unchanged during
 * the call: a retry packs it again, to the same bytes.
 */
int aff_client_invoke_message(aff_client *c, const char *service,
    const char *method, const ProtobufCMessage *req,
    const struct aff_call_opts *opts, struct aff_call_result *res);

/*
 * Typed form: packs req, calls svc's method, and on AFF_OK unpacks the
 * reply into *resp (caller frees with protobuf_c_message_free_unpacked(*resp,
 * NULL)). On an error status *resp is NULL unless the error carried a
 * payload of the method's output type.
 */
int aff_client_call(aff_client *c, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req,
    const struct aff_call_opts *opts, ProtobufCMessage **resp,
    struct aff_call_result *res);

void aff_call_result_fini(struct aff_call_result *res);

#endif /* AFF_CLIENT_H */
