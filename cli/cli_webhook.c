/* cli_webhook.c - see cli_webhook.h. */
#include "cli_webhook.h"

#include "aff_util.h"
#include "aff_webhook.h"

int
cli_webhook_sign_standard(const char *secret, const char *id,
    const uint8_t *body, size_t len, FILE *out)
{
	char made[40], rid[33], sig[128];
	int64_t t = aff_now_ms() / 1000;

	if (id == NULL) {
		/* Unique per message, as the libraries make them: the server
		 * keeps it as the message's idempotency key. */
		aff_request_id_new(rid);
		snprintf(made, sizeof(made), "msg_%s", rid);
		id = made;
	}
	if (!aff_webhook_id_valid(id)) {
		fprintf(stderr,
		    "affiliate: --id must be 1-256 printable ASCII characters, "
		    "no space\naffiliate --help lists the commands\n");
		return (2);
	}
	aff_webhook_sign_standard(secret, id, t, body, len, sig);
	fprintf(out, "webhook-id: %s\nwebhook-timestamp: %lld\n"
	             "webhook-signature: %s\n",
	    id, (long long)t, sig);
	return (0);
}
