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
 */
#ifndef AFF_CLIENT_H
#define AFF_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "aff_tls.h"

typedef struct aff_client aff_client;

struct aff_client_opts {
	const char *url;      /* e.g. "tcp://127.0.0.1:5555" */
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
	                         other URLs. NULL: none. */
};

struct aff_metadata {
	const char *key;
	const char *value;
};

struct aff_call_opts {
	const char *request_id;               /* NULL: a random one */
	int timeout_ms;                       /* 0: the client's default */
	const struct aff_metadata *metadata;  /* n_metadata entries */
	size_t n_metadata;
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
 */
int aff_client_invoke(aff_client *c, const char *service, const char *method,
    const uint8_t *payload, size_t len, const struct aff_call_opts *opts,
    struct aff_call_result *res);

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
