/*
 * aff_postback.h - what the server, the worker and the CLI share about
 * outbound postbacks (proto/affiliate/v1/postback.proto): the event
 * types, the endpoint URL rule and its SSRF check, the secrets
 * ("whsec_<base64>") and the Standard Webhooks signature the worker puts
 * on every delivery. The inbound verifier (aff_webhook.c) is another
 * module: signing is the only thing both do, and the sender's side is
 * this one small function.
 */
#ifndef AFF_POSTBACK_H
#define AFF_POSTBACK_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* The event types, in a fixed order (bit i of a mask is type i). */
#define AFF_POSTBACK_N_TYPES 3
extern const char *const aff_postback_types[AFF_POSTBACK_N_TYPES];

/* The bit of an event type, 0 for an unknown one. */
unsigned aff_postback_type_bit(const char *type);

/* Room for a secret: "whsec_" + base64 of 32 bytes + NUL. */
#define AFF_POSTBACK_SECRET_MAX 64

/* A new random secret, "whsec_<base64 of 32 bytes>". AFF_OK or
 * AFF_INTERNAL (no random bytes). */
int aff_postback_secret_new(char out[AFF_POSTBACK_SECRET_MAX]);

/* Room for a signature: "v1," + base64 of 32 bytes + NUL. */
#define AFF_POSTBACK_SIG_MAX 64

/*
 * The Standard Webhooks signature of one delivery: "v1," and the base64
 * HMAC-SHA256 of "<msg_id>.<timestamp>.<body>" under the key a secret
 * names (the bytes after "whsec_" base64-decoded; a secret without that
 * prefix is used as its raw bytes). AFF_OK, or AFF_INVALID_ARGUMENT for
 * a whsec_ secret that is not base64.
 */
int aff_postback_sign(const char *secret, const char *msg_id, int64_t ts,
    const void *body, size_t len, char out[AFF_POSTBACK_SIG_MAX]);

/* What an endpoint URL came to: its parts, for the caller's checks. */
struct aff_postback_url {
	int https;
	char host[256]; /* without the brackets of an IPv6 literal */
	int port;       /* the default of the scheme when not given */
};

/*
 * Checks an endpoint URL: http:// or https://, a host, an optional port,
 * no user:password@, no fragment, at most 2048 bytes, no spaces or
 * control bytes. AFF_OK with u filled, else AFF_INVALID_ARGUMENT and why
 * in err.
 */
int aff_postback_url_parse(const char *url, struct aff_postback_url *u,
    char *err, size_t errlen);

/* 1 when the address is one a postback must not reach unless the
 * operator allows it: loopback, private (RFC 1918, fc00::/7), link-local
 * (169.254/16, fe80::/10, the cloud metadata address), unspecified,
 * CGNAT (100.64/10), multicast or broadcast, and IPv4-mapped forms of
 * these. */
int aff_postback_addr_private(const struct sockaddr *sa);

/*
 * Resolves u's host and refuses it (AFF_PERMISSION_DENIED, why in err)
 * when any of its addresses is private (as above) and allow_private is
 * 0; AFF_UNAVAILABLE when it does not resolve. With an answer, the first
 * address as text goes to ip (for pinning the connection to it; 64
 * bytes).
 */
int aff_postback_resolve(const struct aff_postback_url *u, int allow_private,
    char ip[64], char *err, size_t errlen);

/* The --postback-allow-private option of the server and the worker (an
 * aff_config AFF_OPT_CUSTOM parser; dst is an int): on, 1, true, yes or
 * off, 0, false, no, "". 0, or -1 after saying why on stderr. */
int aff_postback_allow_private_option(void *dst, const char *v);

#endif /* AFF_POSTBACK_H */
