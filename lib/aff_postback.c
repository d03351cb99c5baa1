/* aff_postback.c - see aff_postback.h. */
#include "aff_postback.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "aff_err.h"

const char *const aff_postback_types[AFF_POSTBACK_N_TYPES] = {
	"order.created",
	"order.status_changed",
	"application.decided",
};

unsigned
aff_postback_type_bit(const char *type)
{
	for (int i = 0; i < AFF_POSTBACK_N_TYPES; i++)
		if (strcmp(type, aff_postback_types[i]) == 0)
			return (1u << i);
	return (0);
}

int
aff_postback_secret_new(char out[AFF_POSTBACK_SECRET_MAX])
{
	unsigned char raw[32];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return (AFF_INTERNAL);
	memcpy(out, "whsec_", 6);
	EVP_EncodeBlock((unsigned char *)out + 6, raw, sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	return (AFF_OK);
}

static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void
hmac_fetch(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

int
aff_postback_sign(const char *secret, const char *msg_id, int64_t ts,
    const void *body, size_t len, char out[AFF_POSTBACK_SIG_MAX])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	unsigned char key[64], mac[32];
	size_t keylen, maclen = 0;
	char head[160];
	EVP_MAC_CTX *ctx;
	int n, ok;

	if (strncmp(secret, "whsec_", 6) == 0) {
		size_t b64 = strlen(secret + 6);
		/* EVP_DecodeBlock counts the padding as zero bytes. */
		if (b64 == 0 || b64 % 4 != 0 || b64 / 4 * 3 > sizeof(key))
			return (AFF_INVALID_ARGUMENT);
		if ((n = EVP_DecodeBlock(key, (const unsigned char *)secret + 6,
		         (int)b64)) < 0)
			return (AFF_INVALID_ARGUMENT);
		keylen = (size_t)n;
		if (secret[6 + b64 - 1] == '=')
			keylen--;
		if (secret[6 + b64 - 2] == '=')
			keylen--;
	} else {
		keylen = strlen(secret);
		if (keylen > sizeof(key))
			return (AFF_INVALID_ARGUMENT);
		memcpy(key, secret, keylen);
	}
	n = snprintf(head, sizeof(head), "%s.%lld.", msg_id, (long long)ts);
	if (n < 0 || (size_t)n >= sizeof(head)) {
		OPENSSL_cleanse(key, sizeof(key));
		return (AFF_INVALID_ARGUMENT);
	}
	pthread_once(&hmac_once, hmac_fetch);
	if (hmac_alg == NULL || (ctx = EVP_MAC_CTX_new(hmac_alg)) == NULL) {
		OPENSSL_cleanse(key, sizeof(key));
		return (AFF_INTERNAL);
	}
	ok = EVP_MAC_init(ctx, key, keylen, params) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)head, (size_t)n) == 1 &&
	    EVP_MAC_update(ctx, body, len) == 1 &&
	    EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) == 1 &&
	    maclen == sizeof(mac);
	EVP_MAC_CTX_free(ctx);
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok)
		return (AFF_INTERNAL);
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
	return (AFF_OK);
}

int
aff_postback_url_parse(const char *url, struct aff_postback_url *u,
    char *err, size_t errlen)
{
	const char *p, *hend, *auth_end;
	size_t hl;

	memset(u, 0, sizeof(*u));
	if (strlen(url) > 2048) {
		snprintf(err, errlen, "url is longer than 2048 bytes");
		return (AFF_INVALID_ARGUMENT);
	}
	for (p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			snprintf(err, errlen,
			    "url has a space, control or non-ASCII byte");
			return (AFF_INVALID_ARGUMENT);
		}
	if (strncasecmp(url, "https://", 8) == 0) {
		u->https = 1;
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else {
		snprintf(err, errlen, "url must start with http:// or https://");
		return (AFF_INVALID_ARGUMENT);
	}
	if (strchr(url, '#') != NULL) {
		snprintf(err, errlen, "url must not have a fragment (#)");
		return (AFF_INVALID_ARGUMENT);
	}
	auth_end = p + strcspn(p, "/?");
	if (memchr(p, '@', (size_t)(auth_end - p)) != NULL) {
		snprintf(err, errlen, "url must not carry user:password@");
		return (AFF_INVALID_ARGUMENT);
	}
	if (*p == '[') {
		unsigned char a6[16];
		if ((hend = memchr(p, ']', (size_t)(auth_end - p))) == NULL) {
			snprintf(err, errlen, "url has an unclosed [ in its host");
			return (AFF_INVALID_ARGUMENT);
		}
		hl = (size_t)(hend - p - 1);
		p++;
		hend++;
		/* Brackets hold an IPv6 address and nothing else (RFC 3986):
		 * "[1.2.3.4]" or "[name]" would resolve here, and then curl
		 * refuses the URL at every delivery. */
		if (hl > 0 && hl < sizeof(u->host)) {
			memcpy(u->host, p, hl);
			u->host[hl] = '\0';
			if (inet_pton(AF_INET6, u->host, a6) != 1) {
				snprintf(err, errlen,
				    "url has a bad host: [...] holds an IPv6 "
				    "address");
				return (AFF_INVALID_ARGUMENT);
			}
		}
	} else {
		hend = p + strcspn(p, ":/?");
		hl = (size_t)(hend - p);
	}
	if (hl == 0) {
		snprintf(err, errlen, "url has no host");
		return (AFF_INVALID_ARGUMENT);
	}
	if (hl >= sizeof(u->host)) {
		snprintf(err, errlen, "url's host is longer than %zu bytes",
		    sizeof(u->host) - 1);
		return (AFF_INVALID_ARGUMENT);
	}
	memcpy(u->host, p, hl);
	u->host[hl] = '\0';
	u->port = u->https ? 443 : 80;
	if (*hend == ':') {
		char *end;
		long port = strtol(hend + 1, &end, 10);
		/* Digits only: strtol takes "+80" and " 80", curl does not. */
		if (end == hend + 1 || end != auth_end || port < 1 ||
		    port > 65535 || hend[1] < '0' || hend[1] > '9') {
			snprintf(err, errlen, "url has a bad port");
			return (AFF_INVALID_ARGUMENT);
		}
		u->port = (int)port;
	} else if (hend != auth_end) {
		snprintf(err, errlen, "url has a bad host");
		return (AFF_INVALID_ARGUMENT);
	}
	for (size_t i = 0; i < hl; i++)
		if (!isalnum((unsigned char)u->host[i]) &&
		    strchr(".-_:", u->host[i]) == NULL) {
			snprintf(err, errlen, "url has a bad host");
			return (AFF_INVALID_ARGUMENT);
		}
	return (AFF_OK);
}

static int
v4_private(uint32_t a)
{
	return ((a >> 24) == 0 ||                /* 0/8 "this network" */
	    (a >> 24) == 10 ||                   /* 10/8 */
	    (a >> 24) == 127 ||                  /* loopback */
	    (a >> 16) == 0xa9fe ||               /* 169.254/16 link-local */
	    (a >> 20) == 0xac1 ||                /* 172.16/12 */
	    (a >> 16) == 0xc0a8 ||               /* 192.168/16 */
	    (a >> 22) == (100u << 2 | 1) ||      /* 100.64/10 CGNAT */
	    (a >> 8) == 0xc00000 ||              /* 192.0.0/24 */
	    (a >> 17) == (198u << 7 | 9) ||      /* 198.18/15 benchmarking */
	    (a >> 28) >= 0xe);                   /* multicast, reserved,
	                                            broadcast */
}

int
aff_postback_addr_private(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		return (v4_private(ntohl(in->sin_addr.s_addr)));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		const unsigned char *b = in6->sin6_addr.s6_addr;
		static const unsigned char zero[16];
		static const unsigned char siit[12] = { 0, 0, 0, 0, 0, 0, 0, 0,
			0xff, 0xff, 0, 0 };
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) ||
		    IN6_IS_ADDR_V4COMPAT(&in6->sin6_addr) ||
		    memcmp(b, siit, 12) == 0) { /* ::ffff:0:0/96, SIIT */
			uint32_t a = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
			    (uint32_t)b[14] << 8 | b[15];
			return (v4_private(a) || memcmp(b, zero, 16) == 0);
		}
		/* 6to4 (2002::/16) carries an IPv4 address in bits 16-47: a
		 * host with a 6to4 tunnel sends 2002:7f00:1:: to 127.0.0.1. */
		if (b[0] == 0x20 && b[1] == 0x02) {
			uint32_t a = (uint32_t)b[2] << 24 | (uint32_t)b[3] << 16 |
			    (uint32_t)b[4] << 8 | b[5];
			if (v4_private(a))
				return (1);
		}
		return (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		    IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) ||
		    (b[0] & 0xfe) == 0xfc ||                 /* fc00::/7 */
		    (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 */
		    (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) || /* site-local */
		    b[0] == 0xff ||                          /* multicast */
		    (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff &&
		        b[3] == 0x9b)); /* 64:ff9b::/96 NAT64 of anything */
	}
	return (1); /* no other family is reached */
}

int
aff_postback_resolve(const struct aff_postback_url *u, int allow_private,
    char ip[64], char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc, rv = AFF_OK;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(u->host, NULL, &hints, &res)) != 0 ||
	    res == NULL) {
		snprintf(err, errlen, "%s does not resolve: %s", u->host,
		    gai_strerror(rc));
		return (AFF_UNAVAILABLE);
	}
	ip[0] = '\0';
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		char text[64];
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof(text),
		        NULL, 0, NI_NUMERICHOST) != 0)
			continue;
		if (!allow_private && aff_postback_addr_private(ai->ai_addr)) {
			snprintf(err, errlen,
			    "%s resolves to %s, a loopback, private or link-local "
			    "address (allowed only with --postback-allow-private)",
			    u->host, text);
			rv = AFF_PERMISSION_DENIED;
			break;
		}
		if (ip[0] == '\0')
			snprintf(ip, 64, "%s", text);
	}
	freeaddrinfo(res);
	if (rv == AFF_OK && ip[0] == '\0') {
		snprintf(err, errlen, "%s has no usable address", u->host);
		rv = AFF_UNAVAILABLE;
	}
	return (rv);
}

int
aff_postback_allow_private_option(void *dst, const char *v)
{
	int *on = dst;

	if (strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0 ||
	    strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
		*on = 1;
	else if (strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0 ||
	    strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 || *v == '\0')
		*on = 0;
	else {
		fprintf(stderr,
		    "--postback-allow-private must be on or off (1 or 0), not "
		    "'%s'\n",
		    v);
		return (-1);
	}
	return (0);
}
