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

/* HMAC-SHA256(secret, prefix || body) into mac[32]; 0 or -1. */
static int
hmac(const char *secret, const char *prefix, const uint8_t *body, size_t len,
    unsigned char mac[32])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx;
	size_t maclen = 0;
	int ok;

	pthread_once(&hmac_once, hmac_fetch);
	if (hmac_alg == NULL || (ctx = EVP_MAC_CTX_new(hmac_alg)) == NULL)
		return (-1);
	ok = EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret),
	         params) == 1 &&
	    (prefix == NULL ||
	        EVP_MAC_update(
	            ctx, (const unsigned char *)prefix, strlen(prefix)) == 1) &&
	    EVP_MAC_update(ctx, body, len) == 1 &&
	    EVP_MAC_final(ctx, mac, &maclen, 32) == 1 && maclen == 32;
	EVP_MAC_CTX_free(ctx);
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
