/* aff_client.c - see aff_client.h. */
#include "aff_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "affiliate/v1/rpc.pb-c.h"
#include "aff_err.h"
#include "aff_log.h"
#include "aff_sp.h"
#include "aff_util.h"

#define CLIENT_MAX_SOCKETS 64

struct client_sock {
	nng_socket sock;
	atomic_int pipes; /* connections up right now */
};

/*
 * Each calling thread keeps its aio and one context per socket for its
 * next call: opening and closing them per call took socket locks and
 * allocations on the hot path. Freed when the thread ends (or, for the
 * thread that closes the client, then).
 */
struct client_tls {
	nng_aio *aio;
	nng_ctx ctx[CLIENT_MAX_SOCKETS];
	uint64_t open;   /* bit i: ctx[i] is open */
	aff_sp_conn *sp; /* direct mode: this thread's connection */
};

struct aff_client {
	struct client_sock socks[CLIENT_MAX_SOCKETS];
	int n_socks;
	atomic_uint next; /* round-robin cursor */
	int timeout_ms;
	size_t max_reply;
	int direct;       /* per-thread SP connections, no NNG sockets */
	char url[256];
	pthread_key_t tls;
};

static void
client_tls_free(void *p)
{
	struct client_tls *t = p;

	if (t == NULL)
		return;
	aff_sp_close(t->sp);
	for (int i = 0; i < CLIENT_MAX_SOCKETS; i++)
		if (t->open & ((uint64_t)1 << i))
			nng_ctx_close(t->ctx[i]);
	nng_aio_free(t->aio);
	free(t);
}

/* This thread's state, made on first use; NULL when out of memory. */
static struct client_tls *
client_tls(aff_client *c)
{
	struct client_tls *t = pthread_getspecific(c->tls);

	if (t == NULL) {
		if ((t = calloc(1, sizeof(*t))) == NULL)
			return (NULL);
		if (!c->direct && nng_aio_alloc(&t->aio, NULL, NULL) != 0) {
			free(t);
			return (NULL);
		}
		pthread_setspecific(c->tls, t);
	}
	return (t);
}

/* This thread's aio and its context on socket i, made on first use. */
static int
client_tls_get(aff_client *c, int i, nng_aio **aio, nng_ctx *ctx)
{
	struct client_tls *t = client_tls(c);

	if (t == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	if (!(t->open & ((uint64_t)1 << i))) {
		if (nng_ctx_open(&t->ctx[i], c->socks[i].sock) != 0)
			return (AFF_UNAVAILABLE);
		nng_ctx_set_ms(
		    t->ctx[i], NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
		t->open |= (uint64_t)1 << i;
	}
	*aio = t->aio;
	*ctx = t->ctx[i];
	return (AFF_OK);
}

static void
client_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct client_sock *cs = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&cs->pipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(&cs->pipes, 1);
}

/* Whether any TLS file is named (empty strings are none). */
static int
tls_given(const struct aff_tls_files *f)
{
	return (f != NULL &&
	    ((f->cert != NULL && f->cert[0] != '\0') ||
	        (f->key != NULL && f->key[0] != '\0') ||
	        (f->ca != NULL && f->ca[0] != '\0')));
}

/* Opens one REQ socket of the client and dials the server. */
static int
client_socket_open(struct client_sock *cs, const struct aff_client_opts *opts)
{
	nng_socket *sock = &cs->sock;
	int rv;

	if (nng_req0_open(sock) != 0)
		return (AFF_INTERNAL);
	nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ,
	    opts->max_reply > 0 ? opts->max_reply : (size_t)16 << 20);
	nng_socket_set_ms(*sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	/* Reconnect quickly after a server restart, but do not spin. */
	nng_socket_set_ms(*sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(*sock, NNG_OPT_RECONNMAXT, 1000);
	nng_pipe_notify(*sock, NNG_PIPE_EV_ADD_POST, client_pipe_cb, cs);
	nng_pipe_notify(*sock, NNG_PIPE_EV_REM_POST, client_pipe_cb, cs);
	if (aff_tls_url(opts->url) || tls_given(opts->tls)) {
		/* The TLS dialer says itself what is wrong (files, handshake). */
		rv = aff_tls_dial_flags(*sock, opts->url, opts->tls, "client",
		    opts->wait_connected ? 0 : NNG_FLAG_NONBLOCK);
		if (rv != AFF_OK)
			nng_close(*sock);
		return (rv);
	}
	rv = nng_dial(*sock, opts->url, NULL,
	    opts->wait_connected ? 0 : NNG_FLAG_NONBLOCK);
	if (rv != 0) {
		nng_close(*sock);
		return (aff_err_from_nng_endpoint(rv));
	}
	return (AFF_OK);
}

int
aff_client_open(aff_client **cp, const struct aff_client_opts *opts)
{
	aff_client *c;
	int rv, n;

	n = opts->n_sockets > 0 ? opts->n_sockets : 1;
	if (n > CLIENT_MAX_SOCKETS)
		return (AFF_INVALID_ARGUMENT);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	if (pthread_key_create(&c->tls, client_tls_free) != 0) {
		free(c);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 5000;
	c->max_reply = opts->max_reply > 0 ? opts->max_reply : (size_t)16 << 20;
	atomic_init(&c->next, 0);
	if (opts->direct) {
		/* aff_sp speaks no TLS: tls+tcp:// goes through NNG sockets. */
		if (tls_given(opts->tls))
			aff_error("client: TLS files are given but %s is not "
			          "tls+tcp://",
			    opts->url);
		if (!aff_sp_supported(opts->url) || tls_given(opts->tls) ||
		    strlen(opts->url) >= sizeof(c->url)) {
			aff_client_close(c);
			return (AFF_INVALID_ARGUMENT);
		}
		snprintf(c->url, sizeof(c->url), "%s", opts->url);
		c->direct = 1;
		*cp = c;
		return (AFF_OK);
	}
	for (; c->n_socks < n; c->n_socks++) {
		atomic_init(&c->socks[c->n_socks].pipes, 0);
		if ((rv = client_socket_open(&c->socks[c->n_socks], opts)) !=
		    AFF_OK) {
			aff_client_close(c);
			return (rv);
		}
	}
	*cp = c;
	return (AFF_OK);
}

void
aff_client_close(aff_client *c)
{
	if (c == NULL)
		return;
	client_tls_free(pthread_getspecific(c->tls));
	pthread_key_delete(c->tls);
	for (int i = 0; i < c->n_socks; i++)
		nng_close(c->socks[i].sock);
	free(c);
}

/* The next socket, round-robin, that has a connection; NULL when none. */
static struct client_sock *
client_pick(aff_client *c)
{
	unsigned start = atomic_fetch_add(&c->next, 1);

	for (int i = 0; i < c->n_socks; i++) {
		struct client_sock *cs =
		    &c->socks[(start + (unsigned)i) % (unsigned)c->n_socks];
		if (atomic_load(&cs->pipes) > 0)
			return (cs);
	}
	return (NULL);
}

/*
 * A dial completes a moment before its pipe is announced, and a bridge
 * starts before the server: give a missing connection a short grace instead
 * of failing the first calls.
 */
static struct client_sock *
client_wait_pipe(aff_client *c, int grace_ms)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	struct client_sock *cs;

	for (int waited = 0; (cs = client_pick(c)) == NULL; waited += 2) {
		if (waited >= grace_ms)
			return (NULL);
		nanosleep(&ts, NULL);
	}
	return (cs);
}

static int
result_set(struct aff_call_result *res, int code, const char *msg)
{
	res->code = code;
	free(res->message);
	res->message = strdup(msg != NULL ? msg : "");
	return (code);
}

/* Copies the reply's metadata into res: one block, the entries first and
 * their strings after. Out of memory drops them (they only inform). */
static void
result_metadata(struct aff_call_result *res,
    const Affiliate__V1__ReplyEnvelope *rep)
{
	size_t n = rep->n_metadata, size = n * sizeof(struct aff_metadata);
	char *p;

	for (size_t i = 0; i < n; i++)
		size += strlen(rep->metadata[i]->key) +
		    strlen(rep->metadata[i]->value) + 2;
	if ((res->metadata = malloc(size)) == NULL)
		return;
	p = (char *)(res->metadata + n);
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(rep->metadata[i]->key) + 1;
		size_t vl = strlen(rep->metadata[i]->value) + 1;
		memcpy(p, rep->metadata[i]->key, kl);
		res->metadata[i].key = p;
		p += kl;
		memcpy(p, rep->metadata[i]->value, vl);
		res->metadata[i].value = p;
		p += vl;
	}
	res->n_metadata = n;
}

const char *
aff_call_result_metadata(const struct aff_call_result *res, const char *key)
{
	for (size_t i = 0; i < res->n_metadata; i++)
		if (strcmp(res->metadata[i].key, key) == 0)
			return (res->metadata[i].value);
	return (NULL);
}

/* Builds the request message; returns AFF_OK or an error code. */
static int
client_request_msg(const char *service, const char *method,
    const uint8_t *payload, size_t len, const char *request_id,
    int timeout_ms, const struct aff_call_opts *opts, nng_msg **mp)
{
	Affiliate__V1__RequestEnvelope env =
	    AFFILIATE__V1__REQUEST_ENVELOPE__INIT;
	Affiliate__V1__MetadataEntry *md = NULL, **mdp = NULL;
	size_t n_md = opts != NULL ? opts->n_metadata : 0;
	nng_msg *m;
	size_t sz;

	env.service = (char *)service;
	env.method = (char *)method;
	env.payload.data = (uint8_t *)payload;
	env.payload.len = len;
	env.request_id = (char *)request_id;
	/* Relative, as gRPC's grpc-timeout: the server counts it on its own
	 * clock from when the request arrives, so clocks need not agree. */
	env.timeout_ms = timeout_ms;
	if (n_md > 0) {
		md = calloc(n_md, sizeof(*md));
		mdp = calloc(n_md, sizeof(*mdp));
		if (md == NULL || mdp == NULL) {
			free(md);
			free(mdp);
			return (AFF_RESOURCE_EXHAUSTED);
		}
		for (size_t i = 0; i < n_md; i++) {
			affiliate__v1__metadata_entry__init(&md[i]);
			md[i].key = (char *)opts->metadata[i].key;
			md[i].value = (char *)opts->metadata[i].value;
			mdp[i] = &md[i];
		}
		env.n_metadata = n_md;
		env.metadata = mdp;
	}
	sz = affiliate__v1__request_envelope__get_packed_size(&env);
	if (nng_msg_alloc(&m, sz) != 0) {
		free(md);
		free(mdp);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	affiliate__v1__request_envelope__pack(&env, nng_msg_body(m));
	free(md);
	free(mdp);
	*mp = m;
	return (AFF_OK);
}

/* Fills res from a packed ReplyEnvelope; returns the call's status. */
static int
client_reply(struct aff_call_result *res, const void *data, size_t len)
{
	Affiliate__V1__ReplyEnvelope *rep;
	int rv;

	rep = affiliate__v1__reply_envelope__unpack(NULL, len, data);
	if (rep == NULL)
		return (result_set(res, AFF_INTERNAL, "malformed reply envelope"));
	rv = result_set(res, (int)rep->code, rep->message);
	if ((int)rep->code < 0 || (int)rep->code > AFF_ERR_MAX)
		rv = result_set(res, AFF_UNKNOWN, rep->message);
	if (rep->payload.len > 0 &&
	    (res->payload = malloc(rep->payload.len)) != NULL) {
		memcpy(res->payload, rep->payload.data, rep->payload.len);
		res->payload_len = rep->payload.len;
	}
	if (rep->n_metadata > 0)
		result_metadata(res, rep);
	affiliate__v1__reply_envelope__free_unpacked(rep, NULL);
	return (rv);
}

/*
 * This thread's connection, dialled when it has none. A server that is
 * starting (or restarting) gets the same short grace as a missing NNG
 * pipe.
 */
static int
client_direct_conn(aff_client *c, struct client_tls *t, int64_t deadline)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	int64_t grace = aff_mono_ms() + 100;
	int rv;

	if (grace > deadline)
		grace = deadline;
	while ((rv = aff_sp_dial(c->url, deadline, &t->sp)) == AFF_UNAVAILABLE &&
	    aff_mono_ms() + 5 < grace)
		nanosleep(&ts, NULL);
	return (rv);
}

/*
 * A call on this thread's own connection. A kept connection that the
 * server has closed since the last call (it restarted) is seen closed
 * before anything is written, and the call goes on a new connection. Once
 * any byte of the request is written, the request is never sent again:
 * the server may have received it, and a resend could apply it twice (a
 * caller that wants to retry sends it again with the same request_id,
 * which the server answers from what the first one did). A write that
 * fails before its first byte is sent again once, on a new connection.
 */
static int
client_invoke_direct(aff_client *c, nng_msg *m, int timeout,
    struct aff_call_result *res)
{
	int64_t deadline = aff_mono_ms() + timeout;
	struct client_tls *t;
	void *rep = NULL;
	size_t rlen = 0;
	int rv = AFF_UNAVAILABLE;

	if ((t = client_tls(c)) == NULL)
		return (result_set(res, AFF_RESOURCE_EXHAUSTED, "out of memory"));
	if (t->sp != NULL && !aff_sp_reusable(t->sp)) {
		aff_sp_close(t->sp);
		t->sp = NULL;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		int fresh = t->sp == NULL, unsent;

		if (fresh && (rv = client_direct_conn(c, t, deadline)) != AFF_OK)
			break;
		rv = aff_sp_call(t->sp, nng_msg_body(m), nng_msg_len(m), deadline,
		    c->max_reply, &rep, &rlen);
		if (rv == AFF_OK)
			break;
		unsent = aff_sp_sent(t->sp) == 0;
		aff_sp_close(t->sp);
		t->sp = NULL;
		if (rv != AFF_UNAVAILABLE || fresh || !unsent)
			break;
	}
	switch (rv) {
	case AFF_OK:
		rv = client_reply(res, rep, rlen);
		free(rep);
		return (rv);
	case AFF_DEADLINE_EXCEEDED:
		return (result_set(res, rv,
		    "no reply from affiliate-server before the deadline"));
	case AFF_RESOURCE_EXHAUSTED:
		return (result_set(res, AFF_INTERNAL,
		    "the reply is larger than this client accepts"));
	case AFF_INTERNAL:
		return (result_set(res, rv,
		    "affiliate-server broke the SP protocol"));
	case AFF_INVALID_ARGUMENT:
		return (result_set(res, AFF_UNAVAILABLE,
		    "the server address cannot be dialled"));
	default:
		return (result_set(res, AFF_UNAVAILABLE,
		    "affiliate-server is not reachable"));
	}
}

int
aff_client_invoke(aff_client *c, const char *service, const char *method,
    const uint8_t *payload, size_t len, const struct aff_call_opts *opts,
    struct aff_call_result *res)
{
	struct client_sock *cs;
	nng_ctx ctx;
	nng_aio *aio;
	nng_msg *m;
	int timeout, rv;
	int64_t deadline;
	char rid[33];
	const char *request_id;

	memset(res, 0, sizeof(*res));
	timeout = (opts != NULL && opts->timeout_ms > 0) ? opts->timeout_ms
	                                                 : c->timeout_ms;
	if (opts != NULL && opts->request_id != NULL)
		request_id = opts->request_id;
	else {
		aff_request_id_new(rid);
		request_id = rid;
	}
	snprintf(res->request_id, sizeof(res->request_id), "%s", request_id);
	if (c->direct) {
		if ((rv = client_request_msg(service, method, payload, len,
		         request_id, timeout, opts, &m)) != AFF_OK)
			return (result_set(res, rv, "cannot build the request"));
		rv = client_invoke_direct(c, m, timeout, res);
		nng_msg_free(m);
		return (rv);
	}
	if ((cs = client_wait_pipe(c, timeout < 100 ? timeout : 100)) == NULL)
		return (result_set(res, AFF_UNAVAILABLE,
		    "affiliate-server is not reachable"));
	deadline = aff_mono_ms() + timeout;
	if ((rv = client_request_msg(service, method, payload, len, request_id,
	         timeout, opts, &m)) != AFF_OK)
		return (result_set(res, rv, "cannot build the request"));
	if ((rv = client_tls_get(c, (int)(cs - c->socks), &aio, &ctx)) !=
	    AFF_OK) {
		nng_msg_free(m);
		return (result_set(res, rv, "cannot open an NNG context"));
	}
	nng_aio_set_timeout(aio, timeout);
	nng_aio_set_msg(aio, m);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		nng_msg_free(nng_aio_get_msg(aio));
		return (result_set(res, AFF_UNAVAILABLE, nng_strerror(rv)));
	}
	nng_aio_set_timeout(aio, (nng_duration)(deadline - aff_mono_ms() > 0
	                                            ? deadline - aff_mono_ms()
	                                            : 1));
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		if (rv == NNG_ETIMEDOUT && atomic_load(&cs->pipes) > 0)
			return (result_set(res, AFF_DEADLINE_EXCEEDED,
			    "no reply from affiliate-server before the deadline"));
		return (result_set(res, AFF_UNAVAILABLE,
		    "affiliate-server is not reachable"));
	}
	m = nng_aio_get_msg(aio);
	rv = client_reply(res, nng_msg_body(m), nng_msg_len(m));
	nng_msg_free(m);
	return (rv);
}

int
aff_client_call(aff_client *c, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req,
    const struct aff_call_opts *opts, ProtobufCMessage **resp,
    struct aff_call_result *res)
{
	const ProtobufCMethodDescriptor *md;
	uint8_t stackbuf[512], *buf = stackbuf;
	size_t len;
	int rv;

	*resp = NULL;
	md = protobuf_c_service_descriptor_get_method_by_name(svc, method);
	if (md == NULL || md->input != req->descriptor) {
		memset(res, 0, sizeof(*res));
		return (result_set(res, AFF_INVALID_ARGUMENT, "no such method"));
	}
	len = protobuf_c_message_get_packed_size(req);
	if (len > sizeof(stackbuf) && (buf = malloc(len)) == NULL) {
		memset(res, 0, sizeof(*res));
		return (result_set(res, AFF_RESOURCE_EXHAUSTED, "out of memory"));
	}
	protobuf_c_message_pack(req, buf);
	rv = aff_client_invoke(c, svc->name, method, buf, len, opts, res);
	if (buf != stackbuf)
		free(buf);
	if (res->payload != NULL || rv == AFF_OK) {
		*resp = protobuf_c_message_unpack(
		    md->output, NULL, res->payload_len, res->payload);
		if (*resp == NULL && rv == AFF_OK)
			rv = result_set(res, AFF_INTERNAL,
			    "reply payload does not unpack");
	}
	return (rv);
}

void
aff_call_result_fini(struct aff_call_result *res)
{
	free(res->message);
	free(res->payload);
	free(res->metadata);
	res->message = NULL;
	res->payload = NULL;
	res->payload_len = 0;
	res->metadata = NULL;
	res->n_metadata = 0;
}
