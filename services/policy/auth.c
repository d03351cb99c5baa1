/* auth.c - see auth.h. */
#include "auth.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "aff_err.h"
#include "aff_metrics.h"
#include "aff_util.h"

#define BEARER_REALM "Bearer realm=\"affiliate\""

int
auth_mode_parse(const char *v, enum auth_mode *mode)
{
	if (strcmp(v, "auto") == 0)
		*mode = AUTH_MODE_AUTO;
	else if (strcmp(v, "on") == 0)
		*mode = AUTH_MODE_ON;
	else if (strcmp(v, "off") == 0)
		*mode = AUTH_MODE_OFF;
	else
		return (-1);
	return (0);
}

/* A rate: digits with at most one '.', 0.001 to 1000000 (no sign,
 * exponent, hex, inf or nan, which strtod alone would take). */
static int
rate_parse(const char *v, double *r)
{
	size_t dots = 0, digits = 0;
	char *end;

	for (const char *p = v; *p != '\0'; p++) {
		if (*p == '.')
			dots++;
		else if (*p >= '0' && *p <= '9')
			digits++;
		else
			return (-1);
	}
	if (digits == 0 || dots > 1)
		return (-1);
	*r = strtod(v, &end);
	if (*end != '\0' || !(*r >= 0.001 && *r <= 1000000.0))
		return (-1);
	return (0);
}

int
auth_limit_parse(const char *v, struct auth_limit *l)
{
	const char *slash = strchr(v, '/');
	char rate[32];
	double r;
	int64_t b;

	if (auth_mode_parse(v, &l->mode) == 0 && l->mode != AUTH_MODE_ON)
		return (0);
	if (slash == NULL)
		slash = v + strlen(v);
	if ((size_t)(slash - v) >= sizeof(rate))
		return (-1);
	memcpy(rate, v, (size_t)(slash - v));
	rate[slash - v] = '\0';
	if (rate_parse(rate, &r) != 0)
		return (-1);
	/* A bucket holds at least one call, or nothing would ever pass. */
	b = (int64_t)ceil(2 * r);
	if (b < 1)
		b = 1;
	if (*slash == '/' && aff_parse_int64(slash + 1, 1, 1000000, &b) != AFF_OK)
		return (-1);
	l->mode = AUTH_MODE_ON;
	l->rule.rate = r;
	l->rule.burst = (int)b;
	return (0);
}

/* The value of metadata entry key (lower-case), or NULL. */
static const char *
metadata_get(const struct auth_view *v, const char *key)
{
	for (size_t i = 0; i < v->n_metadata; i++)
		if (v->metadata[i]->key != NULL &&
		    strcmp(v->metadata[i]->key, key) == 0)
			return (v->metadata[i]->value);
	return (NULL);
}

/* Adds a reply metadata entry (at most AUTH_REPLY_MD_MAX: more is a bug). */
static void
reply_md(struct auth_decision *d, const char *key, const char *value)
{
	if (d->n_reply_md == AUTH_REPLY_MD_MAX)
		abort();
	d->reply_md[d->n_reply_md].key = key;
	snprintf(d->reply_md[d->n_reply_md].value,
	    sizeof(d->reply_md[0].value), "%s", value);
	d->n_reply_md++;
}

/* Refuses with code and a message from a format; returns code. */
static int
refuse(struct auth_decision *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
refuse(struct auth_decision *d, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->message, sizeof(d->message), fmt, ap);
	va_end(ap);
	d->code = code;
	return (code);
}

static void
sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 32;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
		memset(out, 0xff, 32); /* matches no stored hash */
}

static int
is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return (0);
	return (1);
}

/*
 * Checks "Bearer aff_<id>_<64 hex>" against the store. AFF_OK with *c set,
 * AFF_UNAUTHENTICATED (why says which of malformed or not valid, never
 * the key), or a store failure.
 */
static int
key_check(store *s, const char *header, struct auth_caller *c,
    const char **why)
{
	const char *tok, *us;
	char digits[24];
	unsigned char hash[32];
	struct store_key k;
	int64_t id;
	size_t n;
	int rv, same;

	*why = "the authorization metadata must be 'Bearer <API key>' with a "
	       "key of the form aff_<id>_<secret>";
	if (strncasecmp(header, "Bearer ", 7) != 0)
		return (AFF_UNAUTHENTICATED);
	tok = header + 7;
	while (*tok == ' ')
		tok++;
	n = strnlen(tok, AUTH_TOKEN_MAX);
	if (n >= AUTH_TOKEN_MAX || strncmp(tok, "aff_", 4) != 0 ||
	    (us = memchr(tok + 4, '_', n - 4)) == NULL ||
	    (size_t)(us - tok - 4) >= sizeof(digits) ||
	    (size_t)(tok + n - us - 1) != 64 || !is_hex(us + 1, 64))
		return (AFF_UNAUTHENTICATED);
	memcpy(digits, tok + 4, (size_t)(us - tok - 4));
	digits[us - tok - 4] = '\0';
	if (aff_parse_int64(digits, 1, INT64_MAX, &id) != AFF_OK)
		return (AFF_UNAUTHENTICATED);
	*why = "the API key is not valid (unknown, wrong or revoked)";
	sha256(us + 1, 64, hash);
	rv = s->ops->key_get(s, id, &k);
	if (rv == AFF_NOT_FOUND)
		return (AFF_UNAUTHENTICATED);
	if (rv != AFF_OK) {
		*why = "the store failed while checking the API key";
		return (rv);
	}
	same = CRYPTO_memcmp(k.sha256, hash, 32) == 0;
	/* An editor key must name an editor: 0 means "not given" to the
	 * scoping (auth_scope), so such a row would see every editor's. */
	if (!same || k.revoked || (!k.admin && k.editor_id <= 0))
		return (AFF_UNAUTHENTICATED);
	c->role = k.admin ? AUTH_ADMIN : AUTH_EDITOR;
	c->editor_id = k.admin ? 0 : k.editor_id;
	c->key_id = id;
	return (AFF_OK);
}

int
auth_key_create(store *s, int64_t editor_id, aff_arena *a,
    Affiliate__V1__ApiKey **out, char token[AUTH_TOKEN_MAX])
{
	unsigned char raw[32], hash[32];
	char hex[65];
	int rv;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return (AFF_INTERNAL);
	aff_hex_encode(raw, sizeof(raw), hex);
	sha256(hex, 64, hash);
	if ((rv = s->ops->key_create(s, editor_id, hash, a, out)) == AFF_OK)
		snprintf(token, AUTH_TOKEN_MAX, "aff_%lld_%s",
		    (long long)(*out)->id, hex);
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(hex, sizeof(hex));
	return (rv);
}

/* Whether address (as formatted) is in the comma-separated list. */
static int
in_list(const char *list, const char *address)
{
	size_t alen = strlen(address);

	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, ",");
		if (n == alen && strncmp(p, address, n) == 0)
			return (1);
		p += n + (p[n] == ',');
	}
	return (0);
}

/*
 * An IPv6 address in buf becomes its /64: one host is usually given a
 * whole /64 and can pick a new address in it for every call, which would
 * make each call a new, full bucket. IPv4 (and v4-mapped) stay as they
 * are.
 */
static void
address_prefix(char *buf, size_t cap)
{
	struct in6_addr a;

	if (inet_pton(AF_INET6, buf, &a) != 1 || IN6_IS_ADDR_V4MAPPED(&a) ||
	    IN6_IS_ADDR_LOOPBACK(&a))
		return;
	memset(a.s6_addr + 8, 0, 8);
	if (inet_ntop(AF_INET6, &a, buf, (socklen_t)cap) != NULL &&
	    strlen(buf) + 3 < cap)
		strcat(buf, "/64");
}

/*
 * The client's address, for the per-address limit: the connection's own
 * address, or the x-forwarded-for the bridge set when the connection comes
 * from a trusted peer (loopback, ipc, or --trusted-bridges). Any other
 * binary client could write anything there, so it is not believed.
 */
static void
client_address(const struct auth_policy *p, const struct auth_view *v,
    char *buf, size_t cap)
{
	struct in_addr a4;
	const char *fwd;
	int trusted = 0;

	snprintf(buf, cap, "unknown");
	if (v->peer != NULL)
		v->peer(v->peer_arg, buf, cap);
	if (strcmp(buf, "unknown") != 0) {
		if (strcmp(buf, "local") == 0 || strcmp(buf, "::1") == 0)
			trusted = 1;
		else if (inet_pton(AF_INET, buf, &a4) == 1)
			trusted = (ntohl(a4.s_addr) >> 24) == 127;
		trusted = trusted || in_list(p->trusted, buf);
	}
	fwd = trusted ? metadata_get(v, "x-forwarded-for") : NULL;
	if (fwd != NULL && *fwd != '\0') {
		size_t n = strcspn(fwd, ", ");
		if (n > 0 && n < cap) {
			memcpy(buf, fwd, n);
			buf[n] = '\0';
		}
	}
	address_prefix(buf, cap);
}

/* Whether this call needs a key (protected mode; see auth.h). */
static int
keys_required(const struct auth_policy *p, const struct auth_view *v)
{
	const char *exposed;

	if (p == NULL || p->mode == AUTH_MODE_OFF)
		return (0);
	if (p->mode == AUTH_MODE_ON || p->listener_public)
		return (1);
	exposed = metadata_get(v, "x-affiliate-exposed");
	return (exposed != NULL && strcmp(exposed, "1") == 0);
}

/* Calls refused by a rate limit since the start: [0] per key, [1] per
 * client address (auth_metrics_write). */
static _Atomic unsigned long long limit_refusals[2];

void
auth_metrics_write(struct aff_mbuf *b)
{
	aff_metric_head(b, "affiliate_server_rate_limit_refusals_total",
	    "counter", "Calls refused (RESOURCE_EXHAUSTED, HTTP 429) by a rate "
	    "limit: per API key, or per client address for calls without one.");
	aff_mbuf_printf(b, "affiliate_server_rate_limit_refusals_total"
	    "{limit=\"key\"} %llu\n", AFF_LOAD(limit_refusals[0]));
	aff_mbuf_printf(b, "affiliate_server_rate_limit_refusals_total"
	    "{limit=\"address\"} %llu\n", AFF_LOAD(limit_refusals[1]));
}

/* Applies limit l to bucket key; AFF_OK or RESOURCE_EXHAUSTED. Adds the
 * RateLimit-* metadata when a limit applies. */
static int
limit_take(const struct auth_policy *p, const struct auth_view *v,
    const struct auth_limit *l, int required, struct auth_decision *d,
    const char *key, const char *who)
{
	struct ratelimit_state st;
	char val[24];

	if (p->buckets == NULL || l->mode == AUTH_MODE_OFF ||
	    (l->mode == AUTH_MODE_AUTO && !required))
		return (AFF_OK);
	int ok = ratelimit_take_shared(p->buckets, v->shared, key, &l->rule,
	    aff_mono_ms(), &st);
	snprintf(val, sizeof(val), "%d", st.limit);
	reply_md(d, "ratelimit-limit", val);
	snprintf(val, sizeof(val), "%d", st.remaining);
	reply_md(d, "ratelimit-remaining", val);
	snprintf(val, sizeof(val), "%d", st.reset_s);
	reply_md(d, "ratelimit-reset", val);
	if (ok)
		return (AFF_OK);
	AFF_COUNT(limit_refusals[l == &p->per_key ? 0 : 1], 1);
	snprintf(val, sizeof(val), "%d", st.retry_s);
	reply_md(d, "retry-after", val);
	return (refuse(d, AFF_RESOURCE_EXHAUSTED,
	    "too many calls %s: at most %d at once, %g a second; retry in %d s",
	    who, l->rule.burst, l->rule.rate, st.retry_s));
}

/* The per-address limit for a call without a (valid) key. */
static int
limit_address(const struct auth_policy *p, const struct auth_view *v,
    struct auth_decision *d, int required)
{
	char addr[64], key[80];

	if (p->buckets == NULL || p->per_addr.mode == AUTH_MODE_OFF ||
	    (p->per_addr.mode == AUTH_MODE_AUTO && !required))
		return (AFF_OK);
	client_address(p, v, addr, sizeof(addr));
	snprintf(key, sizeof(key), "a:%s", addr);
	return (limit_take(p, v, &p->per_addr, required, d, key,
	    "from this address"));
}

static int
unauthenticated(struct auth_decision *d, const char *challenge,
    const char *why)
{
	reply_md(d, "www-authenticate", challenge);
	return (refuse(d, AFF_UNAUTHENTICATED, "%s", why));
}

int
auth_admit(const struct auth_policy *p, store *s, const struct auth_view *v,
    struct auth_decision *d)
{
	const char *header = metadata_get(v, "authorization"), *why;
	int required = keys_required(p, v);
	char key[32];
	int rv;

	memset(d, 0, sizeof(*d));
	/* Open methods ignore a key (a partner's proxy may send one). */
	if (v->access == AUTH_ACCESS_OPEN || header == NULL || *header == '\0') {
		if (p != NULL && (rv = limit_address(p, v, d, required)) != AFF_OK)
			return (rv);
		if (v->access == AUTH_ACCESS_ADMIN)
			return (unauthenticated(d, BEARER_REALM,
			    "this call needs an admin API key (authorization: "
			    "Bearer <key>)"));
		if (v->access == AUTH_ACCESS_CALLER && required)
			return (unauthenticated(d, BEARER_REALM,
			    "an API key is required (authorization: Bearer <key>)"));
		/* A limit that applied left its RateLimit-* metadata. */
		d->public_call = !required && d->n_reply_md == 0 &&
		    (header == NULL || *header == '\0');
		return (AFF_OK);
	}
	rv = key_check(s, header, &d->caller, &why);
	if (rv != AFF_OK) {
		memset(&d->caller, 0, sizeof(d->caller));
		if (rv != AFF_UNAUTHENTICATED)
			return (refuse(d, rv, "%s", why));
		/* Guesses count against the address they come from. */
		if (p != NULL && (rv = limit_address(p, v, d, required)) != AFF_OK)
			return (rv);
		return (unauthenticated(d,
		    BEARER_REALM ", error=\"invalid_token\"", why));
	}
	snprintf(key, sizeof(key), "k:%lld", (long long)d->caller.key_id);
	if (p != NULL && (rv = limit_take(p, v, &p->per_key, required, d, key,
	                      "with this API key")) != AFF_OK)
		return (rv);
	if (v->access == AUTH_ACCESS_ADMIN && d->caller.role != AUTH_ADMIN)
		return (refuse(d, AFF_PERMISSION_DENIED,
		    "this call needs an admin API key; key %lld is an editor's",
		    (long long)d->caller.key_id));
	return (AFF_OK);
}

int
auth_scope(const struct auth_caller *c, enum auth_scope scope,
    ProtobufCMessage *in, struct auth_decision *d)
{
	const ProtobufCFieldDescriptor *f;
	int64_t *v;

	memset(d, 0, sizeof(*d));
	d->caller = *c;
	if (scope == AUTH_SCOPE_NONE || c->role != AUTH_EDITOR)
		return (AFF_OK);
	f = protobuf_c_message_descriptor_get_field_by_name(
	    in->descriptor, "editor_id");
	/* A scope on a method without an int64 editor_id is a bug. */
	if (f == NULL || f->type != PROTOBUF_C_TYPE_INT64)
		abort();
	v = (int64_t *)(void *)((char *)in + f->offset);
	if (*v == 0 && scope == AUTH_SCOPE_FILL)
		*v = c->editor_id;
	else if (*v != 0 && *v != c->editor_id)
		return (refuse(d, AFF_PERMISSION_DENIED,
		    "this API key acts for editor %lld, not editor %lld",
		    (long long)c->editor_id, (long long)*v));
	return (AFF_OK);
}
