/*
 * fuzz_json.c - libFuzzer target: the bridge's body parser (nesting
 * bounded before jansson), JSON -> protobuf transcoder and
 * query-parameter setter, on every request message type, and the
 * message -> JSON writer on what came out.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aff_arena.h"
#include "aff_err.h"
#include "aff_json.h"
#include "json_in.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "cw_stack.h"

static const ProtobufCMessageDescriptor *const types[] = {
	&affiliate__v1__apply_request__descriptor,
	&affiliate__v1__list_advertisers_request__descriptor,
	&affiliate__v1__get_advertiser_request__descriptor,
	&affiliate__v1__list_applications_request__descriptor,
	&affiliate__v1__list_orders_request__descriptor,
	&affiliate__v1__order__descriptor,
};

static int
fuzz_one(const uint8_t *data, size_t len)
{
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *m;
	struct aff_buf b;
	aff_arena a;
	char err[256];
	json_t *j;

	if (len < 1)
		return (0);
	d = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	aff_arena_init(&a);
	m = json_in_message_new(d, &a);
	if (data[0] & 0x80) {
		/* "name=value" for the query path */
		char *s = aff_arena_strndup(&a, (const char *)data + 1, len - 1);
		char *eq = s != NULL ? strchr(s, '=') : NULL;
		if (eq != NULL) {
			*eq = '\0';
			(void)json_in_set_text(m, s, eq + 1, &a, err, sizeof(err));
		}
	} else if (json_in_parse((const char *)data + 1, len - 1, &j, err,
	               sizeof(err)) == AFF_OK) {
		(void)json_in_to_message(j, m, &a, err, sizeof(err));
		json_decref(j);
	}
	aff_buf_init(&b);
	(void)aff_json_write_message(&b, m);
	aff_buf_fini(&b);
	aff_arena_fini(&a);
	return (0);
}

/* On a stack of civetweb's size (cw_stack.h), the smallest any code here
 * runs on, under libFuzzer and in the replay alike. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	return (cw_stack_run(fuzz_one, data, len));
}
