/*
 * fuzz_webhook.c - libFuzzer target: the X-Partner-Signature parser, the
 * Standard Webhooks headers' parser and the webhook body parser. The
 * input is "<header>\n<body>"; the header line is also read as
 * "<webhook-id>\t<webhook-timestamp>\t<webhook-signature>" (a part
 * missing is an absent header).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aff_err.h"
#include "aff_webhook.h"
#include "webhook_body.h"
#include "cw_stack.h"

/* The header line split at tabs into the three Standard Webhooks
 * headers (hdr is cut in place). */
static void
fuzz_standard(const struct aff_webhook_secrets *ws, char *hdr,
    const uint8_t *body, size_t blen)
{
	char *part[3] = { NULL, NULL, NULL }, why[256];
	int rv;

	for (int i = 0; i < 3 && hdr != NULL; i++) {
		part[i] = hdr;
		if ((hdr = strchr(hdr, '\t')) != NULL)
			*hdr++ = '\0';
	}
	rv = aff_webhook_verify_standard(ws, part[0], part[1], part[2], body,
	    blen, 1795500000, why, sizeof(why));
	if (rv != AFF_OK && rv != AFF_UNAUTHENTICATED)
		abort();
	if (rv == AFF_UNAUTHENTICATED && why[0] == '\0')
		abort(); /* every refusal says why */
}

static int
fuzz_one(const uint8_t *data, size_t len)
{
	static struct aff_webhook_secrets ws;
	const uint8_t *nl = memchr(data, '\n', len);
	struct webhook_order o;
	char why[256], *hdr;
	size_t hlen = nl != NULL ? (size_t)(nl - data) : len;
	const uint8_t *body = nl != NULL ? nl + 1 : data + len;
	size_t blen = len - hlen - (nl != NULL);

	if (ws.n == 0 && aff_webhook_secrets_parse(&ws,
	        "fuzz,older,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") != AFF_OK)
		abort();
	if ((hdr = malloc(hlen + 1)) == NULL)
		return (0);
	memcpy(hdr, data, hlen);
	hdr[hlen] = '\0';
	(void)aff_webhook_verify(&ws, hdr, body, blen, 1795500000, why,
	    sizeof(why));
	fuzz_standard(&ws, hdr, body, blen);
	free(hdr);
	if (webhook_body_parse(body, blen, &o, why, sizeof(why)) == AFF_OK) {
		if (o.commission_cents > o.amount_cents || o.amount_cents < 0 ||
		    o.order_id[0] == '\0' || o.advertiser_id <= 0 ||
		    o.editor_id <= 0)
			abort(); /* a parse that lets a rule through */
	}
	return (0);
}

/* On a stack of civetweb's size (cw_stack.h), the smallest any code here
 * runs on, under libFuzzer and in the replay alike. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	return (cw_stack_run(fuzz_one, data, len));
}
