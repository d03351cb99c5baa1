/* aff_webhook.c - see aff_webhook.h. */
#include "aff_webhook.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <openssl/rand.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"

#define WHSEC "whsec_"

/*
 * Decodes standard base64 (RFC 4648 section 4; the '=' padding may be
 * left out) s[0..len) into out[0..max). The number of bytes, or -1 when s
 * is not base64 or decodes to more than max.
 */
static ssize_t
b64_decode(const char *s, size_t len, unsigned char *out, size_t max)
{
	uint32_t acc = 0;
	size_t n = 0, bits = 0, pad = 0;

	while (len > 0 && s[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	if ((len + pad) % 4 != 0 && pad > 0)
		return (-1); /* padded, but not to a multiple of 4 */
	if (len % 4 == 1)
		return (-1); /* 6 bits cannot end a byte */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;

		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else
			return (-1);
		acc = (acc << 6) | (uint32_t)v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			if (n == max)
				return (-1);
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return ((ssize_t)n);
}

/*
 * The HMAC key of a configured secret: what a whsec_<base64> secret
 * decodes to, else the secret's own bytes (*key points into secret).
 * 0, or -1 for a whsec_ secret that does not decode (or decodes to
 * nothing).
 */
static int
secret_key(const char *secret, unsigned char buf[AFF_WEBHOOK_KEY_MAX],
    const unsigned char **key, size_t *klen)
{
	ssize_t n;

	if (strncmp(secret, WHSEC, strlen(WHSEC)) != 0) {
		*key = (const unsigned char *)secret;
		*klen = strlen(secret);
		return (0);
	}
	n = b64_decode(secret + strlen(WHSEC), strlen(secret + strlen(WHSEC)),
	    buf, AFF_WEBHOOK_KEY_MAX);
	if (n <= 0)
		return (-1);
	*key = buf;
	*klen = (size_t)n;
	return (0);
}

static int
secret_usable(const char *secret)
{
	unsigned char buf[AFF_WEBHOOK_KEY_MAX];
	const unsigned char *key;
	size_t klen;
	int ok = secret_key(secret, buf, &key, &klen) == 0;

	OPENSSL_cleanse(buf, sizeof(buf));
	return (ok);
}

int
aff_webhook_secrets_parse(struct aff_webhook_secrets *ws, const char *list)
{
	const char *p = list;

	memset(ws, 0, sizeof(*ws));
	while (p != NULL && *p != '\0') {
		size_t n = strcspn(p, ",");
		if (n > 0) {
			if (ws->n == AFF_WEBHOOK_MAX_SECRETS) {
				aff_webhook_secrets_fini(ws);
				return (AFF_INVALID_ARGUMENT);
			}
			if ((ws->secret[ws->n] = strndup(p, n)) == NULL) {
				aff_webhook_secrets_fini(ws);
				return (AFF_RESOURCE_EXHAUSTED);
			}
			ws->n++;
			/* A whsec_ secret that does not decode would never
			 * verify anything: refused at start, not at the first
			 * webhook. */
			if (!secret_usable(ws->secret[ws->n - 1])) {
				aff_webhook_secrets_fini(ws);
				return (AFF_INVALID_ARGUMENT);
			}
		}
		p += n + (p[n] == ',');
	}
	return (ws->n > 0 ? AFF_OK : AFF_INVALID_ARGUMENT);
}

void
aff_webhook_secrets_fini(struct aff_webhook_secrets *ws)
{
	for (size_t i = 0; i < ws->n; i++) {
		OPENSSL_cleanse(ws->secret[i], strlen(ws->secret[i]));
		free(ws->secret[i]);
	}
	memset(ws, 0, sizeof(*ws));
}

int
aff_webhook_secrets_load(struct aff_webhook_secrets *ws, const char *env_list,
    const char *dir, int *made)
{
	char path[1024], buf[256];
	unsigned char raw[32];
	ssize_t n;
	int fd, rv;

	*made = 0;
	if (env_list != NULL && *env_list != '\0')
		return (aff_webhook_secrets_parse(ws, env_list));
	snprintf(path, sizeof(path), "%s/webhook_secret", dir);
	if ((fd = open(path, O_RDONLY)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0) {
			aff_error("webhook: %s is empty", path);
			return (AFF_FAILED_PRECONDITION);
		}
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		rv = aff_webhook_secrets_parse(ws, buf);
		OPENSSL_cleanse(buf, sizeof(buf));
		return (rv);
	}
	if (errno != ENOENT) {
		aff_error("webhook: cannot read %s: %s", path, strerror(errno));
		return (AFF_UNAVAILABLE);
	}
	/* None configured: make one, readable by this user only. */
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return (AFF_INTERNAL);
	aff_hex_encode(raw, sizeof(raw), buf);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, buf, 64) != 64 || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0) {
		aff_error("webhook: cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return (AFF_UNAVAILABLE);
	}
	close(fd);
	*made = 1;
	rv = aff_webhook_secrets_parse(ws, buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(raw, sizeof(raw));
	return (rv);
}

static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void
hmac_fetch(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* HMAC-SHA256(secret's key, prefix || body) into mac[32]; 0 or -1. */
static int
hmac(const char *secret, const char *prefix, const uint8_t *body, size_t len,
    unsigned char mac[32])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	unsigned char buf[AFF_WEBHOOK_KEY_MAX];
	const unsigned char *key;
	EVP_MAC_CTX *ctx;
	size_t maclen = 0, klen;
	int ok;

	pthread_once(&hmac_once, hmac_fetch);
	if (secret_key(secret, buf, &key, &klen) != 0)
		return (-1);
	if (hmac_alg == NULL || (ctx = EVP_MAC_CTX_new(hmac_alg)) == NULL) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return (-1);
	}
	ok = EVP_MAC_init(ctx, key, klen, params) == 1 &&
	    (prefix == NULL ||
	        EVP_MAC_update(
	            ctx, (const unsigned char *)prefix, strlen(prefix)) == 1) &&
	    EVP_MAC_update(ctx, body, len) == 1 &&
	    EVP_MAC_final(ctx, mac, &maclen, 32) == 1 && maclen == 32;
	EVP_MAC_CTX_free(ctx);
	OPENSSL_cleanse(buf, sizeof(buf));
	return (ok ? 0 : -1);
}

/* The MACs of prefix||body under every secret (computed once per
 * request, whatever the header carries); the number made. */
static size_t
macs_of(const struct aff_webhook_secrets *ws, const char *prefix,
    const uint8_t *body, size_t len, unsigned char macs[][32])
{
	size_t n = 0;

	for (size_t i = 0; i < ws->n; i++)
		if (hmac(ws->secret[i], prefix, body, len, macs[n]) == 0)
			n++;
	return (n);
}

/* Whether want equals any of the macs (constant time per comparison;
 * every one is always compared). */
static int
any_mac_matches(unsigned char macs[][32], size_t n, const unsigned char want[32])
{
	int ok = 0;

	for (size_t i = 0; i < n; i++)
		ok |= CRYPTO_memcmp(macs[i], want, 32) == 0;
	return (ok);
}

static int
unauth(char *why, size_t whylen, const char *reason)
{
	snprintf(why, whylen, "%s", reason);
	return (AFF_UNAUTHENTICATED);
}

int
aff_webhook_verify(const struct aff_webhook_secrets *ws, const char *header,
    const uint8_t *body, size_t len, int64_t now, char *why, size_t whylen)
{
	unsigned char want[32], macs[AFF_WEBHOOK_MAX_SECRETS][32];
	char prefix[32];
	const char *p;
	int64_t t = -1;
	size_t n_macs;
	int n_v1 = 0, ok = 0;

	if (header == NULL || *header == '\0')
		return (unauth(why, whylen,
		    "the X-Partner-Signature header is missing"));
	/* Bounded before any hashing: the work per request must not grow
	 * with what an unauthenticated sender writes in the header. */
	if (strlen(header) > AFF_WEBHOOK_MAX_HEADER)
		return (unauth(why, whylen,
		    "the X-Partner-Signature header is malformed"));
	if (strncmp(header, "t=", 2) != 0) {
		if (aff_hex_decode(header, strlen(header), want, 32) != AFF_OK)
			return (unauth(why, whylen,
			    "the X-Partner-Signature header is malformed"));
		n_macs = macs_of(ws, NULL, body, len, macs);
		ok = any_mac_matches(macs, n_macs, want);
		OPENSSL_cleanse(macs, sizeof(macs));
		if (!ok)
			return (unauth(why, whylen,
			    "the signature does not match the body"));
		return (AFF_OK);
	}
	/* t=<seconds>,v1=<hex>[,v1=<hex>...]: every part must be well-formed. */
	for (p = header; *p != '\0';) {
		size_t n = strcspn(p, ",");
		if (n > 2 && strncmp(p, "t=", 2) == 0 && t < 0) {
			char *end;
			long long v;
			errno = 0;
			v = strtoll(p + 2, &end, 10);
			if (errno != 0 || end != p + n || v <= 0 || p[2] == '+' ||
			    p[2] == ' ')
				return (unauth(why, whylen,
				    "the signature's timestamp is malformed"));
			t = v;
		} else if (n > 3 && strncmp(p, "v1=", 3) == 0) {
			if (aff_hex_decode(p + 3, n - 3, want, 32) != AFF_OK ||
			    ++n_v1 > AFF_WEBHOOK_MAX_V1)
				return (unauth(why, whylen,
				    "the X-Partner-Signature header is malformed"));
		} else
			return (unauth(why, whylen,
			    "the X-Partner-Signature header is malformed"));
		p += n + (p[n] == ',');
	}
	if (t < 0 || n_v1 == 0)
		return (unauth(why, whylen,
		    "the X-Partner-Signature header is malformed"));
	if (t < now - AFF_WEBHOOK_TOLERANCE_S)
		return (unauth(why, whylen,
		    "the signature's timestamp is more than 300 s old"));
	if (t > now + AFF_WEBHOOK_TOLERANCE_S)
		return (unauth(why, whylen,
		    "the signature's timestamp is more than 300 s ahead"));
	snprintf(prefix, sizeof(prefix), "%lld.", (long long)t);
	n_macs = macs_of(ws, prefix, body, len, macs);
	for (p = header; *p != '\0';) {
		size_t n = strcspn(p, ",");
		if (strncmp(p, "v1=", 3) == 0 && aff_hex_decode(p + 3, n - 3, want, 32) == AFF_OK)
			ok |= any_mac_matches(macs, n_macs, want);
		p += n + (p[n] == ',');
	}
	OPENSSL_cleanse(macs, sizeof(macs));
	if (!ok)
		return (unauth(why, whylen, "the signature does not match the body"));
	return (AFF_OK);
}

int
aff_webhook_id_valid(const char *id)
{
	size_t n = 0;

	if (id == NULL)
		return (0);
	for (; id[n] != '\0'; n++)
		if ((unsigned char)id[n] <= 0x20 || (unsigned char)id[n] >= 0x7f ||
		    n == AFF_WEBHOOK_ID_MAX)
			return (0);
	return (n > 0);
}

/* Unix seconds written canonically (digits, no sign, no leading zero):
 * the value is signed as text, so two spellings of one time must not
 * both pass. 0, or -1. */
static int
timestamp_parse(const char *s, int64_t *t)
{
	int64_t v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 18 || s[0] == '0')
		return (-1);
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		v = v * 10 + (s[i] - '0');
	}
	*t = v;
	return (0);
}

/*
 * Walks the webhook-signature entries ("<version>,<base64>", separated
 * by spaces; runs of spaces allowed). With macs NULL, checks the form:
 * every entry has a version and a ',', every v1 decodes to 32 bytes, at
 * most AFF_WEBHOOK_MAX_V1 of them; returns their number, -2 past that
 * bound, or -1. With
 * macs, returns whether any v1 matches one of them.
 */
static int
std_signatures(const char *header, unsigned char macs[][32], size_t n_macs)
{
	unsigned char want[32];
	int n_v1 = 0, ok = 0;

	for (const char *p = header; *p != '\0';) {
		size_t n = strcspn(p, " "), v = strcspn(p, ",");

		if (n == 0) {
			p++;
			continue;
		}
		if (v == 0 || v >= n)
			return (-1); /* no version, or no ',' */
		if (v == 2 && strncmp(p, "v1", 2) == 0) {
			if (b64_decode(p + 3, n - 3, want, 32) != 32)
				return (-1);
			if (++n_v1 > AFF_WEBHOOK_MAX_V1)
				return (-2);
			if (macs != NULL)
				ok |= any_mac_matches(macs, n_macs, want);
		}
		p += n;
	}
	return (macs != NULL ? ok : n_v1);
}

int
aff_webhook_verify_standard(const struct aff_webhook_secrets *ws,
    const char *id, const char *timestamp, const char *signature,
    const uint8_t *body, size_t len, int64_t now, char *why, size_t whylen)
{
	unsigned char macs[AFF_WEBHOOK_MAX_SECRETS][32];
	char prefix[AFF_WEBHOOK_ID_MAX + 32];
	int64_t t;
	size_t n_macs;
	int n_v1, ok;

	if (id == NULL || *id == '\0')
		return (unauth(why, whylen, "the webhook-id header is missing"));
	if (!aff_webhook_id_valid(id))
		return (unauth(why, whylen,
		    "the webhook-id header is malformed (1-256 printable ASCII "
		    "characters, no space)"));
	if (timestamp == NULL || *timestamp == '\0')
		return (unauth(why, whylen,
		    "the webhook-timestamp header is missing"));
	if (timestamp_parse(timestamp, &t) != 0)
		return (unauth(why, whylen,
		    "the webhook-timestamp header is malformed (Unix seconds)"));
	if (signature == NULL || *signature == '\0')
		return (unauth(why, whylen,
		    "the webhook-signature header is missing"));
	/* Bounded and well-formed before any hashing, as the other forms;
	 * each refusal says which bound. */
	if (strlen(signature) > AFF_WEBHOOK_MAX_HEADER) {
		snprintf(why, whylen,
		    "the webhook-signature header is longer than %d bytes",
		    AFF_WEBHOOK_MAX_HEADER);
		return (AFF_UNAUTHENTICATED);
	}
	if ((n_v1 = std_signatures(signature, NULL, 0)) == -2) {
		snprintf(why, whylen,
		    "the webhook-signature header has more than %d v1 "
		    "signatures", AFF_WEBHOOK_MAX_V1);
		return (AFF_UNAUTHENTICATED);
	}
	if (n_v1 < 0)
		return (unauth(why, whylen,
		    "the webhook-signature header is malformed (v1,<base64> "
		    "entries separated by spaces)"));
	if (n_v1 == 0)
		return (unauth(why, whylen,
		    "the webhook-signature header has no v1 signature"));
	if (t < now - AFF_WEBHOOK_TOLERANCE_S)
		return (unauth(why, whylen,
		    "the webhook-timestamp is more than 300 s old"));
	if (t > now + AFF_WEBHOOK_TOLERANCE_S)
		return (unauth(why, whylen,
		    "the webhook-timestamp is more than 300 s ahead"));
	snprintf(prefix, sizeof(prefix), "%s.%lld.", id, (long long)t);
	n_macs = macs_of(ws, prefix, body, len, macs);
	ok = std_signatures(signature, macs, n_macs);
	OPENSSL_cleanse(macs, sizeof(macs));
	if (ok != 1)
		return (unauth(why, whylen, "the signature does not match the body"));
	return (AFF_OK);
}

int
aff_webhook_is_plain(const char *header)
{
	return (header != NULL && *header != '\0' &&
	    strncmp(header, "t=", 2) != 0);
}

void
aff_webhook_sign(const char *secret, const uint8_t *body, size_t len,
    int64_t t, char out[128])
{
	unsigned char mac[32];
	char prefix[32], hex[65];

	if (t > 0)
		snprintf(prefix, sizeof(prefix), "%lld.", (long long)t);
	if (hmac(secret, t > 0 ? prefix : NULL, body, len, mac) != 0) {
		snprintf(out, 128, "(OpenSSL has no HMAC-SHA256)");
		return;
	}
	aff_hex_encode(mac, sizeof(mac), hex);
	if (t > 0)
		snprintf(out, 128, "t=%lld,v1=%s", (long long)t, hex);
	else
		snprintf(out, 128, "%s", hex);
}

void
aff_webhook_sign_standard(const char *secret, const char *id, int64_t t,
    const uint8_t *body, size_t len, char out[128])
{
	unsigned char mac[32];
	char prefix[AFF_WEBHOOK_ID_MAX + 32], b64[48];

	snprintf(prefix, sizeof(prefix), "%s.%lld.", id, (long long)t);
	if (hmac(secret, prefix, body, len, mac) != 0) {
		snprintf(out, 128, "(no key: %s)",
		    strncmp(secret, WHSEC, strlen(WHSEC)) == 0
		        ? "the whsec_ secret is not base64"
		        : "OpenSSL has no HMAC-SHA256");
		return;
	}
	EVP_EncodeBlock((unsigned char *)b64, mac, sizeof(mac));
	snprintf(out, 128, "v1,%s", b64);
}
