/* aff_client.c - see aff_client.h. */
#include "aff_client.h"
#include "aff_client_pool.h"

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

/* With several servers, a dial to one waits at most this: a host that
 * drops packets must not hold a call that another server can take. */
#define CLIENT_PROBE_DIAL_MS 500
/* A server that is starting gets this grace before a call fails. */
#define CLIENT_GRACE_MS 100

/*
 * Each calling thread keeps its aio and, per server, one context per
 * socket for its next call: opening and closing them per call took socket
 * locks and allocations on the hot path. Freed when the thread ends (or,
 * for the thread that closes the client, then).
 */
struct client_tls_srv {
	nng_ctx ctx[AFF_CLIENT_MAX_SOCKETS];
	uint64_t open;   /* bit i: ctx[i] is open */
	aff_sp_conn *sp; /* direct mode: this thread's connection */
};

struct client_tls {
	nng_aio *aio;
	int n;
	struct client_tls_srv srv[];
};

struct aff_client {
	struct aff_client_pool pool; /* the servers and their health */
	int timeout_ms;
	size_t max_reply;
	int direct;       /* every server is in direct mode */
	pthread_key_t tls;
};

static void
client_tls_free(void *p)
{
	struct client_tls *t = p;

	if (t == NULL)
		return;
	for (int s = 0; s < t->n; s++) {
		aff_sp_close(t->srv[s].sp);
		for (int i = 0; i < AFF_CLIENT_MAX_SOCKETS; i++)
			if (t->srv[s].open & ((uint64_t)1 << i))
				nng_ctx_close(t->srv[s].ctx[i]);
	}
	nng_aio_free(t->aio);
	free(t);
}

/* This thread's state, made on first use; NULL when out of memory. */
static struct client_tls *
client_tls(aff_client *c)
{
	struct client_tls *t = pthread_getspecific(c->tls);

	if (t == NULL) {
		if ((t = calloc(1, sizeof(*t) + (size_t)c->pool.n *
		             sizeof(t->srv[0]))) == NULL)
			return (NULL);
		t->n = c->pool.n;
		if (!c->direct && nng_aio_alloc(&t->aio, NULL, NULL) != 0) {
			free(t);
			return (NULL);
		}
		pthread_setspecific(c->tls, t);
	}
	return (t);
}

/* This thread's aio and its context on socket i of server s, made on first
 * use. */
static int
client_tls_get(aff_client *c, int s, int i, nng_aio **aio, nng_ctx *ctx)
{
	struct client_tls *t = client_tls(c);
	struct client_tls_srv *ts;

	if (t == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	ts = &t->srv[s];
	if (!(ts->open & ((uint64_t)1 << i))) {
		if (nng_ctx_open(&ts->ctx[i], c->pool.servers[s].socks[i].sock) != 0)
			return (AFF_UNAVAILABLE);
		nng_ctx_set_ms(
		    ts->ctx[i], NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
		ts->open |= (uint64_t)1 << i;
	}
	*aio = t->aio;
	*ctx = ts->ctx[i];
	return (AFF_OK);
}

static void
client_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct aff_client_sock *cs = arg;

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

/* Opens one REQ socket of the client and dials url. flags: 0 waits for
 * the connection, NNG_FLAG_NONBLOCK dials in the background. */
static int
client_socket_open(struct aff_client_sock *cs, const char *url,
    const struct aff_client_opts *opts, int flags)
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
	if (aff_tls_url(url) || tls_given(opts->tls)) {
		/* The TLS dialer says itself what is wrong (files, handshake). */
		rv = aff_tls_dial_flags(*sock, url, opts->tls, "client", flags);
		if (rv != AFF_OK)
			nng_close(*sock);
		return (rv);
	}
	rv = nng_dial(*sock, url, NULL, flags);
	if (rv != 0) {
		nng_close(*sock);
		return (aff_err_from_nng_endpoint(rv));
	}
	return (AFF_OK);
}

/*
 * Opens server s's sockets. A client that waits for its connection (a
 * CLI) and has other servers does not fail on this one: its sockets dial
 * in the background and it starts down.
 */
static int
client_server_open(aff_client *c, struct aff_client_srv *s, int n_socks,
    const struct aff_client_opts *opts)
{
	int flags = opts->wait_connected ? 0 : NNG_FLAG_NONBLOCK, rv;

	for (; s->n_socks < n_socks; s->n_socks++) {
		struct aff_client_sock *cs = &s->socks[s->n_socks];
		atomic_init(&cs->pipes, 0);
		rv = client_socket_open(cs, s->url, opts, flags);
		if (rv == AFF_UNAVAILABLE && flags == 0 && c->pool.n > 1) {
			aff_client_pool_down(&c->pool, s);
			flags = NNG_FLAG_NONBLOCK;
			rv = client_socket_open(cs, s->url, opts, flags);
		}
		if (rv != AFF_OK)
			return (rv);
	}
	return (AFF_OK);
}

int
aff_client_open(aff_client **cp, const struct aff_client_opts *opts)
{
	char urls[AFF_CLIENT_MAX_URLS][AFF_CLIENT_URL_MAX], err[512];
	aff_client *c;
	int rv, n, n_urls, up;

	n = opts->n_sockets > 0 ? opts->n_sockets : 1;
	if (n > AFF_CLIENT_MAX_SOCKETS)
		return (AFF_INVALID_ARGUMENT);
	/* The caller says what is wrong with its list, in the words of its
	 * own flag (aff_client_url_list). */
	if (aff_client_url_list(opts->url, urls, &n_urls, err, sizeof(err)) !=
	    AFF_OK)
		return (AFF_INVALID_ARGUMENT);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	if ((c->pool.servers = calloc((size_t)n_urls, sizeof(*c->pool.servers))) == NULL) {
		free(c);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	if (pthread_key_create(&c->tls, client_tls_free) != 0) {
		free(c->pool.servers);
		free(c);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 5000;
	c->max_reply = opts->max_reply > 0 ? opts->max_reply : (size_t)16 << 20;
	c->direct = opts->direct != 0;
	atomic_init(&c->pool.next, 0);
	for (int i = 0; i < n_urls; i++)
		aff_client_pool_srv_init(&c->pool.servers[i], urls[i]);
	if (opts->direct) {
		/* aff_sp speaks no TLS: tls+tcp:// goes through NNG sockets. */
		if (tls_given(opts->tls))
			aff_error("client: TLS files are given but %s is not "
			          "tls+tcp://",
			    opts->url);
		c->pool.n = n_urls;
		for (int i = 0; i < n_urls; i++) {
			c->pool.servers[i].direct = 1;
			if (!aff_sp_supported(urls[i]) || tls_given(opts->tls)) {
				if (n_urls > 1)
					aff_error("client: %s cannot be dialled "
					          "directly (tcp:// and ipc:// only)",
					    urls[i]);
				aff_client_close(c);
				return (AFF_INVALID_ARGUMENT);
			}
		}
		*cp = c;
		return (AFF_OK);
	}
	/* All listed before any is dialled: a CLI's failed dial to one
	 * server is not fatal when there are others (client_server_open);
	 * aff_client_close closes whatever sockets each has open. */
	c->pool.n = n_urls;
	up = 0;
	for (int i = 0; i < n_urls; i++) {
		struct aff_client_srv *s = &c->pool.servers[i];
		if ((rv = client_server_open(c, s, n, opts)) != AFF_OK) {
			if (n_urls > 1)
				aff_error("client: cannot use server address %s: %s",
				    s->url, aff_strerror(rv));
			aff_client_close(c);
			return (rv);
		}
		up += atomic_load(&s->down_until) == 0;
	}
	if (opts->wait_connected && up == 0) {
		aff_client_close(c);
		return (AFF_UNAVAILABLE);
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
	for (int s = 0; s < c->pool.n; s++)
		for (int i = 0; i < c->pool.servers[s].n_socks; i++)
			nng_close(c->pool.servers[s].socks[i].sock);
	free(c->pool.servers);
	free(c);
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
/* The request: its packed bytes, or the message, packed straight into
 * the envelope (one copy of a webhook's body, not two). */
struct client_req {
	const uint8_t *payload;
	size_t len;
	const ProtobufCMessage *msg; /* when set, payload is unused */
};

/* A varint's bytes at p (NULL: only counted); returns how many. */
static size_t
client_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		if (p != NULL)
			p[n] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		n++;
		v >>= 7;
	} while (v != 0);
	return (n);
}

/*
 * The envelope in one message allocated to its size. A message request
 * is packed in place as the envelope's payload (field 3, length-
 * delimited), written after the other fields: protobuf readers take
 * fields in any order, and the bytes of a field are the same wherever it
 * stands, so the server reads the same envelope as with payload set.
 */
static int
client_request_msg(const char *service, const char *method,
    const struct client_req *rq, const char *request_id, int timeout_ms,
    const struct aff_call_opts *opts, nng_msg **mp)
{
	Affiliate__V1__RequestEnvelope env =
	    AFFILIATE__V1__REQUEST_ENVELOPE__INIT;
	Affiliate__V1__MetadataEntry *md = NULL, **mdp = NULL;
	size_t n_md = opts != NULL ? opts->n_metadata : 0;
	nng_msg *m;
	size_t sz, body = 0, head = 0;

	env.service = (char *)service;
	env.method = (char *)method;
	if (rq->msg == NULL) {
		env.payload.data = (uint8_t *)rq->payload;
		env.payload.len = rq->len;
	} else if ((body = protobuf_c_message_get_packed_size(rq->msg)) > 0)
		head = 1 + client_varint(NULL, body); /* tag 3 << 3 | 2: 1 byte */
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
	if (nng_msg_alloc(&m, sz + head + body) != 0) {
		free(md);
		free(mdp);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	affiliate__v1__request_envelope__pack(&env, nng_msg_body(m));
	if (head > 0) {
		uint8_t *p = (uint8_t *)nng_msg_body(m) + sz;

		p[0] = (3 << 3) | 2;
		client_varint(p + 1, body);
		protobuf_c_message_pack(rq->msg, p + head);
	}
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
 * This thread's connection to s, dialled when it has none. With one
 * server, a server that is starting (or restarting) gets the same short
 * grace as a missing NNG pipe. With several, one dial, bounded, and no
 * grace: another server may take the call now (aff_client_invoke gives
 * the grace when none does).
 */
static int
client_direct_conn(aff_client *c, struct aff_client_srv *s,
    struct client_tls_srv *ts, int64_t deadline)
{
	struct timespec ts5 = { 0, 5 * 1000 * 1000 };
	int64_t grace = aff_mono_ms() + CLIENT_GRACE_MS;
	int rv;

	if (c->pool.n > 1) {
		int64_t probe = aff_mono_ms() + CLIENT_PROBE_DIAL_MS;
		return (aff_sp_dial(s->url, probe < deadline ? probe : deadline,
		    &ts->sp));
	}
	if (grace > deadline)
		grace = deadline;
	while ((rv = aff_sp_dial(s->url, deadline, &ts->sp)) == AFF_UNAVAILABLE &&
	    aff_mono_ms() + 5 < grace)
		nanosleep(&ts5, NULL);
	return (rv);
}

/*
 * One try of a call on this thread's own connection to s. A kept
 * connection that the server has closed since the last call (it
 * restarted) is seen closed before anything is written, and the call goes
 * on a new connection. Once any byte of the request is written, the
 * request is never sent again here: the server may have received it, and
 * a resend could apply it twice (*sent says so; aff_client_invoke decides
 * whether another server may take it). A write that fails before its
 * first byte is sent again once, on a new connection.
 */
static int
client_try_direct(aff_client *c, int k, nng_msg *m, int64_t deadline,
    void **rep, size_t *rlen, int *sent)
{
	struct aff_client_srv *s = &c->pool.servers[k];
	struct client_tls *t;
	struct client_tls_srv *ts;
	int rv = AFF_UNAVAILABLE;

	*sent = 0;
	if ((t = client_tls(c)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	ts = &t->srv[k];
	if (ts->sp != NULL && !aff_sp_reusable(ts->sp)) {
		aff_sp_close(ts->sp);
		ts->sp = NULL;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		int fresh = ts->sp == NULL, unsent;

		if (fresh && (rv = client_direct_conn(c, s, ts, deadline)) != AFF_OK)
			break;
		rv = aff_sp_call(ts->sp, nng_msg_body(m), nng_msg_len(m), deadline,
		    c->max_reply, rep, rlen);
		if (rv == AFF_OK)
			break;
		unsent = aff_sp_sent(ts->sp) == 0;
		aff_sp_close(ts->sp);
		ts->sp = NULL;
		*sent = !unsent;
		if (rv != AFF_UNAVAILABLE || fresh || !unsent)
			break;
	}
	return (rv);
}

/*
 * One try of a call on an NNG socket of s; takes ownership of m. *sent
 * is 0 when the send failed (NNG gave the message back: no server has
 * it). After it was sent, NNG 1.5.2's REQ would send it again on the
 * socket's next connection to the same server if this one dropped (the
 * server answers that from the request key); the wait ends at the
 * deadline.
 */
static int
client_try_nng(aff_client *c, int k, nng_msg *m, int64_t deadline,
    nng_msg **reply, int *sent)
{
	struct aff_client_srv *s = &c->pool.servers[k];
	struct aff_client_sock *cs;
	int64_t left = deadline - aff_mono_ms();
	nng_ctx ctx;
	nng_aio *aio;
	int rv;

	*sent = 0;
	cs = c->pool.n == 1
	    ? aff_client_pool_wait_sock(s, left < CLIENT_GRACE_MS ? (int)left
	                                                 : CLIENT_GRACE_MS)
	    : aff_client_pool_sock(s);
	if (cs == NULL) {
		nng_msg_free(m);
		return (AFF_UNAVAILABLE);
	}
	if ((rv = client_tls_get(c, k, (int)(cs - s->socks), &aio, &ctx)) !=
	    AFF_OK) {
		nng_msg_free(m);
		return (rv);
	}
	left = deadline - aff_mono_ms();
	nng_aio_set_timeout(aio, (nng_duration)(left > 0 ? left : 1));
	nng_aio_set_msg(aio, m);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0) {
		nng_msg_free(nng_aio_get_msg(aio));
		return (AFF_UNAVAILABLE);
	}
	*sent = 1;
	left = deadline - aff_mono_ms();
	nng_aio_set_timeout(aio, (nng_duration)(left > 0 ? left : 1));
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0)
		return (rv == NNG_ETIMEDOUT && atomic_load(&cs->pipes) > 0
		        ? AFF_DEADLINE_EXCEEDED
		        : AFF_UNAVAILABLE);
	*reply = nng_aio_get_msg(aio);
	return (AFF_OK);
}

/* Whether a call may run twice: it changes nothing (the methods named
 * Get..., List..., and HealthService's Check, by this API's naming rule),
 * or the caller says so. */
static int
client_call_repeatable(const char *method, const struct aff_call_opts *opts)
{
	return (strncmp(method, "Get", 3) == 0 ||
	    strncmp(method, "List", 4) == 0 || strcmp(method, "Check") == 0 ||
	    (opts != NULL && opts->idempotent));
}

/* The server's answer while it stops: it did not run the call (the text
 * is the server's, services/server.c, and the README's). */
static int
client_refused_stopping(const struct aff_call_result *res)
{
	static const char stopping[] = "affiliate-server is stopping";

	return (res->code == AFF_UNAVAILABLE && res->message != NULL &&
	    strncmp(res->message, stopping, sizeof(stopping) - 1) == 0);
}

/* The error a failed try ends the call with. */
static int
client_fail(struct aff_call_result *res, int rv)
{
	switch (rv) {
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

static int
client_invoke(aff_client *c, const char *service, const char *method,
    const struct client_req *rq, const struct aff_call_opts *opts,
    struct aff_call_result *res)
{
	int timeout, rv = AFF_UNAVAILABLE, sent, k, any_sent = 0, tries = 0;
	int64_t t0, deadline;
	uint32_t tried = 0;
	char rid[33];
	const char *request_id;
	struct timespec ts5 = { 0, 5 * 1000 * 1000 };

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
	t0 = aff_mono_ms();
	deadline = t0 + timeout;
	for (;;) {
		nng_msg *m, *reply = NULL;
		void *rep = NULL;
		size_t rlen = 0;
		int64_t now = aff_mono_ms();
		/* A try after the first carries what is left of the timeout;
		 * the request key (request_id and the request's bytes) is the
		 * same, so a server that shares the first one's database
		 * answers it as the same call. */
		int left = tries == 0 ? timeout : (int)(deadline - now);

		if (left <= 0)
			break;
		if ((k = aff_client_pool_pick(&c->pool, tried)) < 0) {
			/* Every server was tried and none had it: servers
			 * that are starting get a short grace, as one does
			 * (client_direct_conn, aff_client_pool_wait_sock). */
			if (c->pool.n == 1 || any_sent ||
			    now - t0 >= CLIENT_GRACE_MS)
				break;
			nanosleep(&ts5, NULL);
			tried = 0;
			continue;
		}
		tried |= 1u << k;
		tries++;
		if ((rv = client_request_msg(service, method, rq, request_id,
		         left, opts, &m)) != AFF_OK)
			return (result_set(res, rv, "cannot build the request"));
		if (c->pool.servers[k].direct) {
			rv = client_try_direct(c, k, m, deadline, &rep, &rlen, &sent);
			nng_msg_free(m);
		} else
			rv = client_try_nng(c, k, m, deadline, &reply, &sent);
		if (rv == AFF_OK) {
			if (reply != NULL) {
				rv = client_reply(
				    res, nng_msg_body(reply), nng_msg_len(reply));
				nng_msg_free(reply);
			} else {
				rv = client_reply(res, rep, rlen);
				free(rep);
			}
			if (c->pool.n > 1 && client_refused_stopping(res)) {
				/* Not run there: any call may go elsewhere. */
				aff_client_pool_down(&c->pool, &c->pool.servers[k]);
				aff_call_result_fini(res);
				continue;
			}
			aff_client_pool_up(&c->pool, &c->pool.servers[k]);
			return (rv);
		}
		if (rv == AFF_RESOURCE_EXHAUSTED && !sent)
			return (result_set(res, rv, "out of memory"));
		if (rv == AFF_DEADLINE_EXCEEDED && sent) {
			/* Not retried (it may still be running there), but a
			 * server that answers nothing in a whole deadline is
			 * skipped for a backoff rather than given every other
			 * call to sit on (a hung host, a stopped process). */
			if (c->pool.n > 1)
				aff_client_pool_down(&c->pool, &c->pool.servers[k]);
			break;
		}
		if (rv != AFF_UNAVAILABLE && rv != AFF_INVALID_ARGUMENT &&
		    rv != AFF_DEADLINE_EXCEEDED)
			break; /* a broken reply: not retried */
		if (c->pool.n > 1)
			aff_client_pool_down(&c->pool, &c->pool.servers[k]);
		any_sent |= sent;
		if (sent && !client_call_repeatable(method, opts))
			break;
	}
	if (rv == AFF_OK)
		rv = AFF_UNAVAILABLE;
	return (client_fail(res, rv));
}

int
aff_client_invoke(aff_client *c, const char *service, const char *method,
    const uint8_t *payload, size_t len, const struct aff_call_opts *opts,
    struct aff_call_result *res)
{
	const struct client_req rq = { .payload = payload, .len = len };

	return (client_invoke(c, service, method, &rq, opts, res));
}

int
aff_client_invoke_message(aff_client *c, const char *service,
    const char *method, const ProtobufCMessage *req,
    const struct aff_call_opts *opts, struct aff_call_result *res)
{
	const struct client_req rq = { .msg = req };

	return (client_invoke(c, service, method, &rq, opts, res));
}

int
aff_client_call(aff_client *c, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req,
    const struct aff_call_opts *opts, ProtobufCMessage **resp,
    struct aff_call_result *res)
{
	const ProtobufCMethodDescriptor *md;
	int rv;

	*resp = NULL;
	md = protobuf_c_service_descriptor_get_method_by_name(svc, method);
	if (md == NULL || md->input != req->descriptor) {
		memset(res, 0, sizeof(*res));
		return (result_set(res, AFF_INVALID_ARGUMENT, "no such method"));
	}
	rv = aff_client_invoke_message(c, svc->name, method, req, opts, res);
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
