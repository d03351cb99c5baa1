/* aff_jobauth.c - see aff_jobauth.h. */
#include "aff_jobauth.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aff_err.h"
#include "aff_webhook.h"

/* The MAC of r as if its mac field were empty, as 64 hex into out. */
static int
result_mac(const char *secret, const Affiliate__V1__JobResult *r, char out[65])
{
	Affiliate__V1__JobResult c = *r;
	char sig[128];
	uint8_t stack[512], *buf = stack;
	size_t len;

	c.mac = (char *)"";
	len = affiliate__v1__job_result__get_packed_size(&c);
	if (len > sizeof(stack) && (buf = malloc(len)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__job_result__pack(&c, buf);
	aff_webhook_sign(secret, buf, len, 0, sig);
	if (buf != stack)
		free(buf);
	if (strlen(sig) != 64)
		return (AFF_INTERNAL); /* OpenSSL without HMAC-SHA256 */
	memcpy(out, sig, 65);
	OPENSSL_cleanse(sig, sizeof(sig));
	return (AFF_OK);
}

int
aff_job_result_sign(const char *secret, Affiliate__V1__JobResult *r,
    char out[65])
{
	int rv;

	r->mac = (char *)"";
	if ((rv = result_mac(secret, r, out)) != AFF_OK)
		return (rv);
	r->mac = out;
	return (AFF_OK);
}

int
aff_job_result_verify(const char *secret, const Affiliate__V1__JobResult *r)
{
	char want[65];
	int ok;

	if (r->mac == NULL || strlen(r->mac) != 64 ||
	    result_mac(secret, r, want) != AFF_OK)
		return (AFF_UNAUTHENTICATED);
	ok = CRYPTO_memcmp(want, r->mac, 64) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return (ok ? AFF_OK : AFF_UNAUTHENTICATED);
}
