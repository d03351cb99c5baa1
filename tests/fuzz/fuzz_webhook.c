/*
 * fuzz_webhook.c - libFuzzer target: the X-Partner-Signature parser and
 * the webhook body parser. The input is "<header>\n<body>".
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aff_err.h"
#include "aff_webhook.h"
#include "webhook_body.h"
#include "cw_stack.h"

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

	if (ws.n == 0 && aff_webhook_secrets_parse(&ws, "fuzz,older") != AFF_OK)
		abort();
	if ((hdr = malloc(hlen + 1)) == NULL)
		return (0);
	memcpy(hdr, data, hlen);
	hdr[hlen] = '\0';
	(void)aff_webhook_verify(&ws, hdr, body, blen, 1795500000, why,
	    sizeof(why));
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
