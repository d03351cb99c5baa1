/*
 * aff_webhook.h - X-Partner-Signature: HMAC-SHA256 over the raw body,
 * checked in constant time against every configured secret (rotation).
 *
 * Two forms are accepted:
 *   <64 hex>                        HMAC(secret, body)           (the seed's)
 *   t=<unix seconds>,v1=<64 hex>[,v1=<64 hex>...]
 *                                   HMAC(secret, "<t>.<body>"), |now - t| <= 300
 *
 * The plain form carries no time, so a request captured once verifies for
 * ever (a replay of a stored order_id changes nothing, but any other body
 * ever signed can be sent again); an operator can refuse it (the server's
 * --webhook-require-timestamp, or per advertiser), see
 * aff_webhook_is_plain.
 *
 * And the Standard Webhooks form (Svix and the standardwebhooks
 * libraries), three headers:
 *   webhook-id: <1-256 printable ASCII, no space>
 *   webhook-timestamp: <unix seconds>       |now - t| <= 300
 *   webhook-signature: v1,<base64>[ v1,<base64>...]
 *                                   HMAC(key, "<id>.<t>.<body>")
 * (entries of other versions, such as v1a, are skipped).
 *
 * The key: a secret written whsec_<base64> is the bytes it decodes to (as
 * those libraries read it); any other secret is its own bytes. So one
 * configured secret serves every form, and a partner holding "secret"
 * signs the Standard Webhooks form with "whsec_" + base64("secret").
 *
 * One MAC is computed per secret and request, whatever the header holds,
 * and headers over 1 KiB or with more than 8 v1= (v1,) are refused
 * unhashed, so an unauthenticated sender cannot make the check expensive.
 */
#ifndef AFF_WEBHOOK_H
#define AFF_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#define AFF_WEBHOOK_TOLERANCE_S 300
#define AFF_WEBHOOK_MAX_SECRETS 8
#define AFF_WEBHOOK_MAX_V1 8        /* v1= entries in one header */
#define AFF_WEBHOOK_MAX_HEADER 1024 /* bytes */
#define AFF_WEBHOOK_ID_MAX 256      /* webhook-id bytes */
#define AFF_WEBHOOK_KEY_MAX 256     /* bytes a whsec_ secret decodes to */

struct aff_webhook_secrets {
	size_t n;
	char *secret[AFF_WEBHOOK_MAX_SECRETS];
};

/*
 * Parses a comma-separated list of secrets (empty entries skipped).
 * AFF_OK, or AFF_INVALID_ARGUMENT (none, more than 8, or a whsec_ one
 * that is not base64 of 1-256 bytes). Free with aff_webhook_secrets_fini.
 */
int aff_webhook_secrets_parse(struct aff_webhook_secrets *ws, const char *list);
void aff_webhook_secrets_fini(struct aff_webhook_secrets *ws);

/*
 * Loads the secrets: from env_list when set; else from the file dir/
 * webhook_secret, made with a random secret (mode 0600) when missing.
 * *made is set when a new file was written.
 */
int aff_webhook_secrets_load(struct aff_webhook_secrets *ws, const char *env_list,
    const char *dir, int *made);

/*
 * Verifies header against body at time now. AFF_OK, or AFF_UNAUTHENTICATED
 * with a reason in why (missing, malformed, stale, future, no match) that
 * names no secret.
 */
int aff_webhook_verify(const struct aff_webhook_secrets *ws, const char *header,
    const uint8_t *body, size_t len, int64_t now, char *why, size_t whylen);

/*
 * Verifies the Standard Webhooks headers (each NULL or "" when absent)
 * against body at time now, as aff_webhook_verify: AFF_OK, or
 * AFF_UNAUTHENTICATED with a reason in why naming the header at fault.
 */
int aff_webhook_verify_standard(const struct aff_webhook_secrets *ws,
    const char *id, const char *timestamp, const char *signature,
    const uint8_t *body, size_t len, int64_t now, char *why, size_t whylen);

/*
 * Whether id is a webhook-id this side accepts: 1-256 printable ASCII
 * characters, no space (it is signed, logged and stored as the
 * idempotency key).
 */
int aff_webhook_id_valid(const char *id);

/*
 * Whether header is in the plain form (not "t=..."): the form with no
 * expiry. A missing or empty header is not (aff_webhook_verify refuses it
 * as missing).
 */
int aff_webhook_is_plain(const char *header);

/*
 * Writes the header value for body signed with secret: the timestamped
 * form when t > 0, else the plain hex form. out needs 128 bytes.
 */
void aff_webhook_sign(const char *secret, const uint8_t *body, size_t len,
    int64_t t, char out[128]);

/*
 * Writes the webhook-signature value for body sent as message id at t
 * (Unix seconds), signed with secret's key: "v1,<base64>". out needs 128
 * bytes.
 */
void aff_webhook_sign_standard(const char *secret, const char *id, int64_t t,
    const uint8_t *body, size_t len, char out[128]);

#endif /* AFF_WEBHOOK_H */
