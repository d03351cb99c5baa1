/* fuzz_textpb.c - libFuzzer target: the text format `affiliate rpc` reads
 * (lib/aff_textpb.c), on any bytes, for every request and reply message of
 * the API (the first byte picks one). A text that parses is written back
 * and parsed again, and must pack to the same bytes: what the CLI prints,
 * it reads. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aff_err.h"
#include "aff_textpb.h"
#include "affiliate/v1/admin.pb-c.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"
#include "affiliate/v1/postback.pb-c.h"
#include "affiliate/v1/report.pb-c.h"
#include "affiliate/v1/rpc.pb-c.h"
#include "cw_stack.h"

static const ProtobufCServiceDescriptor *const services[] = {
	&affiliate__v1__key_service__descriptor,
	&affiliate__v1__webhook_secret_service__descriptor,
	&affiliate__v1__job_admin_service__descriptor,
	&affiliate__v1__catalog_service__descriptor,
	&affiliate__v1__advertiser_service__descriptor,
	&affiliate__v1__application_service__descriptor,
	&affiliate__v1__order_service__descriptor,
	&affiliate__v1__health_service__descriptor,
	&affiliate__v1__postback_service__descriptor,
	&affiliate__v1__report_service__descriptor,
};

/* The n-th message type: the envelopes, then each method's input and
 * output in turn. */
static const ProtobufCMessageDescriptor *
pick(unsigned n)
{
	unsigned total = 2;

	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		total += 2 * services[i]->n_methods;
	n %= total;
	if (n == 0)
		return (&affiliate__v1__request_envelope__descriptor);
	if (n == 1)
		return (&affiliate__v1__reply_envelope__descriptor);
	n -= 2;
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
		if (n < 2 * services[i]->n_methods) {
			const ProtobufCMethodDescriptor *m =
			    &services[i]->methods[n / 2];
			return (n % 2 == 0 ? m->input : m->output);
		}
		n -= 2 * services[i]->n_methods;
	}
	abort();
}

static uint8_t *
packed(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *p;

	*len = protobuf_c_message_get_packed_size(m);
	if ((p = malloc(*len + 1)) == NULL)
		abort();
	protobuf_c_message_pack(m, p);
	return (p);
}

static int
fuzz_one(const uint8_t *data, size_t len)
{
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *m = NULL, *again = NULL;
	struct aff_buf b;
	char *text, err[256];
	uint8_t *p1, *p2;
	size_t l1, l2;

	if (len == 0)
		return (0);
	d = pick(data[0]);
	if ((text = malloc(len)) == NULL)
		return (0);
	memcpy(text, data + 1, len - 1);
	text[len - 1] = '\0';
	if (aff_textpb_parse(d, text, &m, err, sizeof(err)) != AFF_OK) {
		/* A refusal always says where and why. */
		if (strncmp(err, "line ", 5) != 0)
			abort();
		free(text);
		return (0);
	}
	aff_buf_init(&b);
	if (aff_textpb_write(&b, m) != AFF_OK)
		abort();
	aff_buf_add(&b, "", 1);
	if (aff_textpb_parse(d, b.data, &again, err, sizeof(err)) != AFF_OK)
		abort(); /* what was written does not read back */
	p1 = packed(m, &l1);
	p2 = packed(again, &l2);
	if (l1 != l2 || memcmp(p1, p2, l1) != 0)
		abort(); /* it reads back as another message */
	free(p1);
	free(p2);
	aff_buf_fini(&b);
	protobuf_c_message_free_unpacked(m, NULL);
	protobuf_c_message_free_unpacked(again, NULL);
	free(text);
	return (0);
}

/* On a stack of civetweb's size (cw_stack.h), as the other targets: the
 * parser recurses per nested message. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	return (cw_stack_run(fuzz_one, data, len));
}
