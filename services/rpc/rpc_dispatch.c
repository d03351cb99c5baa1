/* rpc_dispatch.c - see rpc.h. */
#include <arpa/inet.h>
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "aff_wire.h"
#include "affiliate/v1/rpc.pb-c.h"
#include "rpc.h"
#include "rpc_metrics.h"
#include "rpc_server.h"

struct reg_service {
	const ProtobufCServiceDescriptor *desc;
	const struct rpc_method_def **by_index; /* desc->n_methods entries */
	size_t base; /* its first method's row in the metrics (rpc_metrics.h) */
};

struct rpc_registry {
	size_t n;
	struct reg_service *svcs;
};

int
rpc_registry_alloc(
    rpc_registry **rp, const struct rpc_service_def *const *defs, size_t n)
{
	rpc_registry *r;

	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->svcs = calloc(n, sizeof(*r->svcs))) == NULL) {
		free(r);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	r->n = n;
	for (size_t i = 0, base = 0; i < n; i++) {
		const ProtobufCServiceDescriptor *d = defs[i]->desc;
		r->svcs[i].desc = d;
		r->svcs[i].base = base;
		base += d->n_methods;
		r->svcs[i].by_index = calloc(d->n_methods, sizeof(void *));
		if (r->svcs[i].by_index == NULL) {
			rpc_registry_free(r);
			return (AFF_RESOURCE_EXHAUSTED);
		}
		for (size_t k = 0; k < defs[i]->n_methods; k++) {
			const struct rpc_method_def *m = &defs[i]->methods[k];
			const ProtobufCMethodDescriptor *md =
			    protobuf_c_service_descriptor_get_method_by_name(
			        d, m->name);
			/* A handler for a method the contract lacks is a bug. */
			assert(md != NULL);
			r->svcs[i].by_index[md - d->methods] = m;
		}
	}
	*rp = r;
	return (AFF_OK);
}

void
rpc_registry_free(rpc_registry *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->svcs[i].by_index);
	free(r->svcs);
	free(r);
}

int
rpc_errorf(struct rpc_call *call, int code, const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	call->message = aff_arena_strdup(&call->arena, buf);
	return (code);
}

static const struct reg_service *
registry_find(const rpc_registry *r, const char *service)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->svcs[i].desc->name, service) == 0)
			return (&r->svcs[i]);
	return (NULL);
}

int
rpc_registry_has(const rpc_registry *r, const char *service)
{
	return (registry_find(r, service) != NULL);
}

int
rpc_registry_method_at(const rpc_registry *r, size_t row,
    const char **service, const char **method)
{
	for (size_t i = 0; i < r->n; i++)
		if (row >= r->svcs[i].base &&
		    row < r->svcs[i].base + r->svcs[i].desc->n_methods) {
			*service = r->svcs[i].desc->name;
			*method = r->svcs[i].desc->methods[row - r->svcs[i].base].name;
			return (1);
		}
	return (0);
}

/*
 * A copy of a peer-supplied name fit for a log line or an error message:
 * printable ASCII only, at most 128 bytes. Garbage must not forge lines.
 */
static const char *
printable(aff_arena *a, const char *s)
{
	size_t n = strnlen(s, 128);
	char *p = aff_arena_strndup(a, s, n);

	if (p == NULL)
		return ("?");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
			p[i] = '?';
	return (p);
}

/*
 * The reply is built as a packed ReplyEnvelope without its request_id,
 * followed by the request_id field (protobuf's fields may come in any
 * order). The first part is what the cache keeps, so a cached reply is
 * sent to any caller with its own request id appended.
 */
void
rpc_call_trailer(struct rpc_call *call, const char *key, const char *value)
{
	Affiliate__V1__MetadataEntry *e;

	if (call->n_trailers == RPC_MAX_TRAILERS ||
	    (e = aff_arena_alloc(&call->arena, sizeof(*e))) == NULL)
		return;
	affiliate__v1__metadata_entry__init(e);
	e->key = aff_arena_strdup(&call->arena, key);
	e->value = aff_arena_strdup(&call->arena, value);
	if (e->key == NULL || e->value == NULL)
		return;
	call->trailers[call->n_trailers++] = e;
}

/* The peer for the gate's view: arg is the request's slot
 * (rpc_server_peer; NULL outside a server). */
static void
gate_peer(void *arg, char *buf, size_t cap)
{
	rpc_server_peer(arg, buf, cap);
}

/* Puts a gate's result on the call: its trailers, and its message when it
 * refuses. Returns its code. */
static int
gate_apply(struct rpc_call *call, const struct rpc_gate_result *g)
{
	for (size_t i = 0; i < g->n_trailers && i < RPC_MAX_TRAILERS; i++)
		rpc_call_trailer(call, g->trailers[i].key, g->trailers[i].value);
	if (g->code != AFF_OK)
		return (rpc_errorf(call, g->code, "%s", g->message));
	return (AFF_OK);
}

/* Appends the varint v at p; returns the bytes written. */
static size_t
varint_put(uint8_t *p, size_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return (n);
}

/* Appends the call's trailers to m as ReplyEnvelope field 5 entries
 * (fields may come in any order, so cached bodies stay shareable). */
static nng_msg *
reply_trailers(nng_msg *m, const struct rpc_call *call)
{
	for (size_t i = 0; m != NULL && i < call->n_trailers; i++) {
		const ProtobufCMessage *e = &call->trailers[i]->base;
		size_t len = protobuf_c_message_get_packed_size(e);
		uint8_t hdr[16], buf[512];
		size_t h = 0;

		if (len > sizeof(buf))
			continue;
		hdr[h++] = (5 << 3) | 2; /* field 5, length-delimited */
		h += varint_put(hdr + h, len);
		protobuf_c_message_pack(e, buf);
		if (nng_msg_append(m, hdr, h) != 0 ||
		    nng_msg_append(m, buf, len) != 0) {
			nng_msg_free(m);
			return (NULL);
		}
	}
	return (m);
}

static nng_msg *
reply_msg(const void *body, size_t len, const char *request_id)
{
	size_t rlen = strlen(request_id), extra = 0;
	uint8_t hdr[16];
	nng_msg *m;

	if (rlen > 0) {
		hdr[extra++] = (4 << 3) | 2; /* field 4, length-delimited */
		extra += varint_put(hdr + extra, rlen);
	}
	if (nng_msg_alloc(&m, len + extra + rlen) != 0)
		return (NULL);
	memcpy(nng_msg_body(m), body, len);
	memcpy((uint8_t *)nng_msg_body(m) + len, hdr, extra);
	memcpy((uint8_t *)nng_msg_body(m) + len + extra, request_id, rlen);
	return (m);
}

/* Packs {code, message, payload} into the arena. */
static uint8_t *
reply_body(aff_arena *a, int code, const char *message,
    const ProtobufCMessage *payload, size_t *lenp)
{
	Affiliate__V1__ReplyEnvelope rep = AFFILIATE__V1__REPLY_ENVELOPE__INIT;
	uint8_t *buf;
	size_t len;

	rep.code = (Affiliate__V1__Code)code;
	rep.message = (char *)(message != NULL ? message : "");
	if (payload != NULL) {
		rep.payload.len = protobuf_c_message_get_packed_size(payload);
		if ((rep.payload.data = aff_arena_alloc(a, rep.payload.len)) ==
		    NULL)
			return (NULL);
		protobuf_c_message_pack(payload, rep.payload.data);
	}
	len = affiliate__v1__reply_envelope__get_packed_size(&rep);
	if ((buf = aff_arena_alloc(a, len)) == NULL)
		return (NULL);
	affiliate__v1__reply_envelope__pack(&rep, buf);
	*lenp = len;
	return (buf);
}

/* Appends n bytes of src at *p and moves *p past them. */
static void
put(char **p, const char *src, size_t n)
{
	memcpy(*p, src, n);
	*p += n;
}

/*
 * Whether the reply may be given to other callers (x-affiliate-reuse):
 * the gate said the call owes nothing to who asked, and, checked here
 * again from the call itself so that no policy path can get it wrong,
 * the request named no key, no caller was recognised, and no trailer
 * (a rate limit's RateLimit-*, a challenge) is on the reply.
 */
static int
call_reusable(const struct rpc_call *call)
{
	if (!call->public_call || call->caller.key_id != 0 ||
	    call->caller.role != 0 || call->n_trailers != 0)
		return (0);
	for (size_t i = 0; i < call->n_metadata; i++)
		if (strcasecmp(call->metadata[i]->key, "authorization") == 0)
			return (0);
	return (1);
}

/*
 * The cache key of a cacheable call: the database, the catalog version,
 * the method and the request in canonical (re-packed) form:
 * "aff:rc:<db>:<version>:<service>/<method>:<packed request>". Built by
 * hand: it is on every cached read, and formatting it with printf (twice,
 * to measure and to write) was a fifth of the call's own instructions.
 */
static char *
cache_key(struct rpc_call *call, const ProtobufCMessage *in, size_t *lenp)
{
	const char *db_id;
	int64_t version;
	char digits[24], *d = digits + sizeof(digits), *key, *p;
	uint64_t v;
	size_t dlen, slen, mlen, ilen, plen;

	if (call->store->ops->catalog_version(call->store, &db_id, &version) !=
	    AFF_OK)
		return (NULL);
	/* The version in decimal, sign included, written from the end. */
	v = version < 0 ? 0 - (uint64_t)version : (uint64_t)version;
	do {
		*--d = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (version < 0)
		*--d = '-';
	dlen = strlen(db_id);
	slen = strlen(call->service);
	mlen = strlen(call->method);
	ilen = (size_t)(digits + sizeof(digits) - d);
	plen = protobuf_c_message_get_packed_size(in);
	key = aff_arena_alloc(&call->arena,
	    7 + dlen + 1 + ilen + 1 + slen + 1 + mlen + 1 + plen);
	if (key == NULL)
		return (NULL);
	p = key;
	put(&p, "aff:rc:", 7);
	put(&p, db_id, dlen);
	put(&p, ":", 1);
	put(&p, d, ilen);
	put(&p, ":", 1);
	put(&p, call->service, slen);
	put(&p, "/", 1);
	put(&p, call->method, mlen);
	put(&p, ":", 1);
	p += protobuf_c_message_pack(in, (uint8_t *)p);
	*lenp = (size_t)(p - key);
	/* "<db>:<version>", the tag a reusable reply carries: the same
	 * bytes as the key's second and third parts. */
	if (call_reusable(call) &&
	    (call->reuse_tag = aff_arena_alloc(&call->arena,
	         dlen + 1 + ilen + 1)) != NULL) {
		memcpy(call->reuse_tag, key + 7, dlen + 1 + ilen);
		call->reuse_tag[dlen + 1 + ilen] = '\0';
	}
	return (key);
}

/* The request key of a keyed call (see store.h): the caller, the
 * request_id, and the digest of what is asked. */
static void
request_key(struct rpc_call *call, const Affiliate__V1__RequestEnvelope *req)
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();

	call->key.scope = call->caller.key_id > 0
	    ? aff_arena_printf(&call->arena, "key:%lld",
	          (long long)call->caller.key_id)
	    : "";
	if (call->key.scope == NULL)
		call->key.scope = "?";
	call->key.request_id = req->request_id;
	call->key.method = call->method;
	/* Out of memory: a digest of zeros, so the call is keyed by its
	 * request_id alone rather than not at all. */
	memset(call->key.digest, 0, sizeof(call->key.digest));
	if (h == NULL || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(h, req->service, strlen(req->service) + 1) != 1 ||
	    EVP_DigestUpdate(h, req->method, strlen(req->method) + 1) != 1 ||
	    (req->payload.len > 0 &&
	        EVP_DigestUpdate(h, req->payload.data, req->payload.len) != 1) ||
	    EVP_DigestFinal_ex(h, call->key.digest, NULL) != 1)
		memset(call->key.digest, 0, sizeof(call->key.digest));
	EVP_MD_CTX_free(h);
}

static int
cacheable_code(int code)
{
	return (code == AFF_OK || code == AFF_NOT_FOUND ||
	    code == AFF_PERMISSION_DENIED);
}

/*
 * Builds the reply of a call (caching it when key is set), logs the call's
 * line and frees the call.
 */
static nng_msg *
call_reply(struct rpc_call *call, struct rpc_thread_env *env, int code,
    ProtobufCMessage *out, const char *key, size_t keylen)
{
	uint8_t *body;
	size_t blen = 0;
	nng_msg *m;

	if (code != AFF_OK)
		out = call->error_payload;
	body = reply_body(&call->arena, code, call->message, out, &blen);
	if (body == NULL) {
		code = AFF_RESOURCE_EXHAUSTED;
		body = reply_body(&call->arena, code, "out of memory", NULL, &blen);
	}
	if (call->has_key) {
		/* A keyed call's change commits with its key and answer, or
		 * not at all: an answer is never given for a change that is
		 * not stored, nor a change stored without its answer. */
		const uint8_t *keep = NULL;
		size_t klen = 0;
		int rv;

		if (code == AFF_OK && call->replay.set)
			keep = reply_body(&call->arena, call->replay.code,
			    call->replay.message, call->replay.payload, &klen);
		else if (code == AFF_OK) {
			keep = body;
			klen = blen;
		}
		rv = call->store->ops->call_end(call->store, &call->key, keep, klen);
		if (code == AFF_OK && (keep == NULL || rv != AFF_OK)) {
			code = keep == NULL ? AFF_RESOURCE_EXHAUSTED : rv;
			call->message = "the change could not be committed";
			body = reply_body(&call->arena, code, call->message, NULL,
			    &blen);
		}
	}
	if (key != NULL && body != NULL && cacheable_code(code)) {
		if (call->reuse_tag != NULL)
			rpc_call_trailer(call, "x-affiliate-reuse",
			    call->reuse_tag);
		lcache_put(env->lcache, key, keylen, body, blen);
		if (cache_enabled(env->cache))
			(void)cache_set(env->cache, key, keylen, body, blen);
	}
	m = body != NULL ? reply_msg(body, blen, call->request_id) : NULL;
	m = reply_trailers(m, call);
	rpc_metrics_call(call->mrow, code, aff_mono_us() - call->t0_us);
	aff_log(code == AFF_OK || code == AFF_NOT_FOUND ||
	            code == AFF_PERMISSION_DENIED
	        ? AFF_LOG_INFO
	        : AFF_LOG_WARN,
	    call->request_id, "rpc %s/%s %s %lldms%s%s", call->service,
	    call->method, aff_code_name(code),
	    (long long)(aff_mono_ms() - call->t0), code != AFF_OK ? ": " : "",
	    code != AFF_OK && call->message != NULL ? call->message : "");
	aff_arena_fini(&call->arena);
	free(call);
	return (m);
}

/* The code of a reply reply_body made, as stored (the reply cache, a
 * request key's answer): protobuf-c packs field 1 (code) first, and
 * proto3 leaves it out when it is OK. */
static int
stored_code(const uint8_t *body, size_t len)
{
	return (len >= 2 && body[0] == 0x08 && body[1] < 0x80 ? body[1] : AFF_OK);
}

nng_msg *
rpc_refuse(const void *data, size_t len, int code, const char *message)
{
	Affiliate__V1__RequestEnvelope *req;
	aff_arena a;
	uint8_t *body;
	size_t blen = 0;
	const char *rid = "";
	nng_msg *m = NULL;

	aff_arena_init(&a);
	req = affiliate__v1__request_envelope__unpack(
	    aff_arena_allocator(&a), len, data);
	if (req != NULL)
		rid = printable(&a, req->request_id);
	if ((body = reply_body(&a, code, message, NULL, &blen)) != NULL)
		m = reply_msg(body, blen, rid);
	aff_arena_fini(&a);
	rpc_metrics_call(-1, code, -1); /* refused unread: no method, no time */
	return (m);
}

void
rpc_call_finish(struct rpc_call *call, int code, ProtobufCMessage *out)
{
	struct rpc_slot *slot = call->slot;
	void (*complete)(struct rpc_slot *, nng_msg *) = call->complete;

	/* A handler returning another type than the contract says is a bug. */
	assert(code != AFF_OK ||
	    (out != NULL && out->descriptor == call->output));
	complete(slot, call_reply(call, NULL, code, out, NULL, 0));
}

nng_msg *
rpc_dispatch(struct rpc_thread_env *env, const void *data, size_t len,
    struct rpc_slot *slot)
{
	const rpc_registry *r = env->registry;
	struct rpc_call *call;
	Affiliate__V1__RequestEnvelope *req;
	const struct reg_service *svc;
	const ProtobufCMethodDescriptor *md = NULL;
	const struct rpc_method_def *def = NULL;
	ProtobufCMessage *in = NULL, *out = NULL;
	char *key = NULL;
	size_t keylen = 0, blen = 0;
	uint8_t *cached = NULL;
	struct rpc_gate_view gv;
	struct rpc_gate_result gr;
	char why[160];
	int code, keyed;
	nng_msg *m;

	/* The call lives on the heap: a deferred one outlives this frame. */
	if ((call = calloc(1, sizeof(*call))) == NULL)
		return (NULL);
	aff_arena_init(&call->arena);
	call->t0 = env->received_ms > 0 ? env->received_ms : aff_mono_ms();
	call->t0_us = aff_mono_us();
	call->mrow = -1;
	call->store = env->store;
	call->cache = env->cache;
	call->app = env->app;
	call->service = "?";
	call->method = "?";
	call->request_id = "";
	call->slot = slot;
	call->complete = env->complete;

	/* Text must be UTF-8 without NUL (a metadata value cut short at a
	 * NUL would be read as something else). */
	if (aff_wire_check_text(&affiliate__v1__request_envelope__descriptor,
	        data, len, why, sizeof(why)) != AFF_OK) {
		code = rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "the request envelope's %s", why);
		goto reply;
	}
	req = affiliate__v1__request_envelope__unpack(
	    aff_arena_allocator(&call->arena), len, data);
	if (req == NULL) {
		code = rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "the request is not an affiliate.v1.RequestEnvelope");
		goto reply;
	}
	call->service = printable(&call->arena, req->service);
	call->method = printable(&call->arena, req->method);
	call->n_metadata = req->n_metadata;
	call->metadata = req->metadata;
	if (req->request_id[0] == '\0') {
		aff_request_id_new(call->rid);
		call->request_id = call->rid;
	} else
		call->request_id = printable(&call->arena, req->request_id);

	/* The timeout is relative and counted on this host's monotonic clock
	 * from the request's arrival: the caller's wall clock may be seconds
	 * off ours. */
	if (req->timeout_ms < 0) {
		code = rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "timeout_ms must not be negative");
		goto reply;
	}
	if (req->timeout_ms > 0) {
		/* Saturated: a timeout past the clock's range (the fuzzer sent
		 * 2^63 - 1) is no deadline, not a signed overflow. */
		call->deadline_ms = req->timeout_ms > INT64_MAX - call->t0
		    ? INT64_MAX
		    : call->t0 + req->timeout_ms;
		if (aff_mono_ms() >= call->deadline_ms) {
			code = rpc_errorf(call, AFF_DEADLINE_EXCEEDED,
			    "the timeout of %lld ms ran out before the call could "
			    "run",
			    (long long)req->timeout_ms);
			goto reply;
		}
	}
	if ((svc = registry_find(r, req->service)) == NULL) {
		code = rpc_errorf(call, AFF_UNIMPLEMENTED, "unknown service '%s'",
		    call->service);
		goto reply;
	}
	md = protobuf_c_service_descriptor_get_method_by_name(
	    svc->desc, req->method);
	if (md == NULL) {
		code = rpc_errorf(call, AFF_UNIMPLEMENTED,
		    "unknown method '%s' in %s", call->method, call->service);
		goto reply;
	}
	if ((def = svc->by_index[md - svc->desc->methods]) == NULL) {
		code = rpc_errorf(call, AFF_UNIMPLEMENTED,
		    "%s/%s is not implemented yet", call->service, call->method);
		goto reply;
	}
	call->output = md->output;
	call->mrow = (int)(svc->base + (size_t)(md - svc->desc->methods));
	/* Who calls, and may they: before the payload is even read. */
	if (env->gate.admit != NULL) {
		gv = (struct rpc_gate_view){
			.service = call->service,
			.method = call->method,
			.access = def->access,
			.scope = def->scope,
			.metadata = call->metadata,
			.n_metadata = call->n_metadata,
			.peer = gate_peer,
			.peer_arg = slot,
			.store = call->store,
			.cache = env->cache,
		};
		memset(&gr, 0, sizeof(gr));
		(void)env->gate.admit(env->gate.opaque, &gv, &gr);
		call->caller = gv.caller;
		call->public_call = gr.public_call;
		if ((code = gate_apply(call, &gr)) != AFF_OK)
			goto reply;
	}
	if (aff_wire_check_text(md->input, req->payload.data, req->payload.len,
	        why, sizeof(why)) != AFF_OK) {
		code = rpc_errorf(call, AFF_INVALID_ARGUMENT, "%s", why);
		goto reply;
	}
	in = protobuf_c_message_unpack(md->input,
	    aff_arena_allocator(&call->arena), req->payload.len,
	    req->payload.data);
	if (in == NULL) {
		code = rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "the payload is not a valid %s", md->input->name);
		goto reply;
	}
	/* Before the cache: the key names the request as it is bound. */
	if (env->gate.admit != NULL && env->gate.bind != NULL) {
		memset(&gr, 0, sizeof(gr));
		(void)env->gate.bind(env->gate.opaque, &gv, in, &gr);
		if ((code = gate_apply(call, &gr)) != AFF_OK)
			goto reply;
	}
	if (def->cacheable && (env->lcache != NULL || cache_enabled(env->cache)) &&
	    (key = cache_key(call, in, &keylen)) != NULL) {
		const char *where = "memory";
		int hit = lcache_get(env->lcache, key, keylen, &cached, &blen);
		if (env->lcache != NULL)
			rpc_metrics_cache(RPC_CACHE_MEMORY, hit == AFF_OK);
		if (hit != AFF_OK && cache_enabled(env->cache)) {
			hit = cache_get(env->cache, key, keylen, &cached, &blen);
			rpc_metrics_cache(RPC_CACHE_REDIS, hit == AFF_OK);
			if (hit == AFF_OK) {
				where = "redis";
				lcache_put(env->lcache, key, keylen, cached, blen);
			}
		}
		if (hit == AFF_OK) {
			if (call->reuse_tag != NULL)
				rpc_call_trailer(call, "x-affiliate-reuse",
				    call->reuse_tag);
			/* NOT_FOUND and PERMISSION_DENIED are cached too. */
			rpc_metrics_call(call->mrow, stored_code(cached, blen),
			    aff_mono_us() - call->t0_us);
			m = reply_trailers(
			    reply_msg(cached, blen, call->request_id), call);
			free(cached);
			aff_log(AFF_LOG_INFO, call->request_id,
			    "rpc %s/%s cached (%s) %lldms", call->service,
			    call->method, where,
			    (long long)(aff_mono_ms() - call->t0));
			aff_arena_fini(&call->arena);
			free(call);
			return (m);
		}
	}
	if (def->keyed && req->request_id[0] != '\0') {
		uint8_t *stored = NULL;
		size_t slen = 0;
		int rv;

		request_key(call, req);
		rv = call->store->ops->call_begin(call->store, &call->key,
		    &call->arena, &stored, &slen);
		if (rv == AFF_ALREADY_EXISTS) {
			/* Answered before: the same answer, nothing done. */
			rpc_metrics_call(call->mrow, stored_code(stored, slen),
			    aff_mono_us() - call->t0_us);
			m = reply_trailers(
			    reply_msg(stored, slen, call->request_id), call);
			aff_log(AFF_LOG_INFO, call->request_id,
			    "rpc %s/%s answered again from its request key %lldms",
			    call->service, call->method,
			    (long long)(aff_mono_ms() - call->t0));
			aff_arena_fini(&call->arena);
			free(call);
			return (m);
		}
		if (rv != AFF_OK) {
			code = rpc_errorf(call,
			    rv == AFF_RESOURCE_EXHAUSTED ? rv : AFF_UNAVAILABLE,
			    "the store failed: %s", aff_strerror(rv));
			goto reply;
		}
		call->has_key = 1;
	}
	keyed = call->has_key;
	code = def->fn(call, in, &out);
	/* A keyed handler answering later would hold the transaction (and
	 * a deferred call may be gone already: call is not read here). */
	assert(code != RPC_DEFERRED || !keyed);
	(void)keyed;
	if (code == RPC_DEFERRED)
		return (RPC_SERVER_DEFERRED);
	/* A handler returning another type than the contract says is a bug. */
	assert(code != AFF_OK || (out != NULL && out->descriptor == md->output));
reply:
	return (call_reply(call, env, code, out, key, keylen));
}
