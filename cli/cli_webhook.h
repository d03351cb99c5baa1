/*
 * cli_webhook.h - `affiliate webhook sign --standard`: the Standard
 * Webhooks headers for a body, as a partner using the standardwebhooks
 * libraries would send them.
 */
#ifndef CLI_WEBHOOK_H
#define CLI_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Prints the three header lines (webhook-id, webhook-timestamp, now, and
 * webhook-signature) for body signed with secret (whsec_<base64> or raw,
 * see aff_webhook.h) to out. id NULL: a new random msg_<hex>. 0, or 2
 * (a usage error, said on stderr) when id is not a webhook-id the server
 * takes.
 */
int cli_webhook_sign_standard(const char *secret, const char *id,
    const uint8_t *body, size_t len, FILE *out);

#endif /* CLI_WEBHOOK_H */
