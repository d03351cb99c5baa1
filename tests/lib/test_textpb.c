/*
 * test_textpb.c - protobuf's text format (aff_textpb) on the API's own
 * messages: scalars, strings with escapes, enums by name and number,
 * nested messages in both bracket styles, repeated fields both ways,
 * comments; errors that name the line and column; and the written form
 * (protoc --decode's) reading back to the same bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "aff_err.h"
#include "aff_textpb.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"
#include "affiliate/v1/rpc.pb-c.h"

static ProtobufCMessage *
parse_ok(const ProtobufCMessageDescriptor *d, const char *text)
{
	ProtobufCMessage *m = NULL;
	char err[256] = "";

	if (aff_textpb_parse(d, text, &m, err, sizeof(err)) != AFF_OK)
		fail_msg("'%s' did not parse: %s", text, err);
	return (m);
}

/* Parses text, which must fail with a message containing want. */
static void
parse_fails(const ProtobufCMessageDescriptor *d, const char *text,
    const char *want)
{
	ProtobufCMessage *m = NULL;
	char err[256] = "";

	assert_int_equal(
	    aff_textpb_parse(d, text, &m, err, sizeof(err)), AFF_INVALID_ARGUMENT);
	assert_null(m);
	if (strstr(err, want) == NULL)
		fail_msg("'%s': wanted '%s' in '%s'", text, want, err);
}

static char *
written(const ProtobufCMessage *m)
{
	struct aff_buf b;
	char *s;

	aff_buf_init(&b);
	assert_int_equal(aff_textpb_write(&b, m), AFF_OK);
	s = strdup(b.data != NULL ? b.data : "");
	aff_buf_fini(&b);
	return (s);
}

static void
test_an_envelope_with_escapes_bytes_and_repeated_messages_parses(void **state)
{
	Affiliate__V1__RequestEnvelope *e;

	(void)state;
	e = (void *)parse_ok(&affiliate__v1__request_envelope__descriptor,
	    "# a comment\n"
	    "service: \"a\\tb\\\"c\\\\\" method: 'Get' 'Advertiser'\n"
	    "payload: \"\\001\\xff\\u00e9\\n\"\n"
	    "metadata { key: \"k\" value: \"v\" }, metadata < key: \"k2\" >;\n"
	    "timeout_ms: -5  # and another\n");
	assert_string_equal(e->service, "a\tb\"c\\");
	assert_string_equal(e->method, "GetAdvertiser");
	assert_int_equal(e->payload.len, 5);
	assert_memory_equal(e->payload.data, "\001\377\303\251\n", 5);
	assert_int_equal(e->n_metadata, 2);
	assert_string_equal(e->metadata[0]->key, "k");
	assert_string_equal(e->metadata[0]->value, "v");
	assert_string_equal(e->metadata[1]->key, "k2");
	assert_string_equal(e->metadata[1]->value, "");
	assert_int_equal(e->timeout_ms, -5);
	assert_string_equal(e->request_id, "");
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void
test_enums_by_name_or_number_and_lists_in_brackets_parse(void **state)
{
	Affiliate__V1__ReplyEnvelope *r;
	Affiliate__V1__ListAdvertisersResponse *l;
	Affiliate__V1__HealthCheckResponse *h;

	(void)state;
	r = (void *)parse_ok(&affiliate__v1__reply_envelope__descriptor,
	    "code: NOT_FOUND");
	assert_int_equal(r->code, AFFILIATE__V1__CODE__NOT_FOUND);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	r = (void *)parse_ok(&affiliate__v1__reply_envelope__descriptor,
	    "code: 6");
	assert_int_equal(r->code, 6);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	h = (void *)parse_ok(&affiliate__v1__health_check_response__descriptor,
	    "status: SERVING store: NOT_SERVING");
	assert_int_equal(h->store,
	    AFFILIATE__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
	protobuf_c_message_free_unpacked(&h->base, NULL);
	l = (void *)parse_ok(&affiliate__v1__list_advertisers_response__descriptor,
	    "advertisers: [{id: 1}, {id: 0x2 name: \"x\" commission_rate_bps: "
	    "-0}] advertisers {id: 010} next_after: 9223372036854775807");
	assert_int_equal(l->n_advertisers, 3);
	assert_int_equal(l->advertisers[0]->id, 1);
	assert_int_equal(l->advertisers[1]->id, 2);
	assert_string_equal(l->advertisers[1]->name, "x");
	assert_int_equal(l->advertisers[2]->id, 8); /* octal, as C++'s */
	assert_int_equal(l->next_after, INT64_MAX);
	protobuf_c_message_free_unpacked(&l->base, NULL);
}

static void
test_bad_text_says_where_and_what(void **state)
{
	const ProtobufCMessageDescriptor *adv =
	    &affiliate__v1__list_advertisers_request__descriptor;

	(void)state;
	parse_fails(adv, "editor_id: 1\n  nam: 2",
	    "line 2, column 3: no field 'nam' in affiliate.v1.ListAdvertisersRequest");
	parse_fails(adv, "limit: 3000000000", "is not a valid 32-bit integer for limit");
	parse_fails(adv, "limit: 1 limit: 2", "limit is not repeated and is given twice");
	parse_fails(adv, "after: \"3\"", "after is not a string field");
	parse_fails(adv, "after 3", "expected ':' after after");
	parse_fails(adv, "after: 1.5", "'1.5' is not a valid 64-bit integer");
	parse_fails(adv, "after:", "expected a value for after");
	parse_fails(&affiliate__v1__reply_envelope__descriptor, "code: NOPE",
	    "'NOPE' is not a value of affiliate.v1.Code");
	parse_fails(&affiliate__v1__reply_envelope__descriptor,
	    "message: \"abc", "the string has no closing \"");
	parse_fails(&affiliate__v1__reply_envelope__descriptor,
	    "message: \"a\\qb\"", "unknown escape \\q");
	parse_fails(&affiliate__v1__reply_envelope__descriptor,
	    "message: \"a\\000b\"", "message is a string: UTF-8 without \\0");
	parse_fails(&affiliate__v1__reply_envelope__descriptor,
	    "message: \"\\xff\"", "message is a string: UTF-8");
	parse_fails(&affiliate__v1__reply_envelope__descriptor,
	    "metadata { key: \"k\"", "the text ends before the '}' that closes "
	                           "affiliate.v1.MetadataEntry");
	parse_fails(&affiliate__v1__reply_envelope__descriptor,
	    "metadata: \"k\"", "expected '{' to open metadata");
	parse_fails(&affiliate__v1__list_advertisers_response__descriptor,
	    "advertisers: [{id: 1} {id: 2}]", "expected ',' or ']'");
	parse_fails(adv, "} ", "expected a field name");
}

static void
test_the_written_form_is_protocs_and_reads_back_to_the_same_bytes(void **state)
{
	ProtobufCMessage *m, *again;
	uint8_t a[512], b[512];
	size_t na, nb;
	char *text;

	(void)state;
	m = parse_ok(&affiliate__v1__reply_envelope__descriptor,
	    "code: ALREADY_EXISTS message: 'it\\'s \"there\"' "
	    "payload: \"\\000\\n\\377ok\" metadata { key: \"retry-after\" "
	    "value: \"1\" } metadata { key: \"x\" }");
	text = written(m);
	assert_string_equal(text,
	    "code: ALREADY_EXISTS\n"
	    "message: \"it\\'s \\\"there\\\"\"\n"
	    "payload: \"\\000\\n\\377ok\"\n"
	    "metadata {\n"
	    "  key: \"retry-after\"\n"
	    "  value: \"1\"\n"
	    "}\n"
	    "metadata {\n"
	    "  key: \"x\"\n"
	    "}\n");
	again = parse_ok(&affiliate__v1__reply_envelope__descriptor, text);
	na = protobuf_c_message_pack(m, a);
	nb = protobuf_c_message_pack(again, b);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	free(text);
	protobuf_c_message_free_unpacked(again, NULL);
	protobuf_c_message_free_unpacked(m, NULL);
	/* Defaults are left out: an empty message writes nothing. */
	m = parse_ok(&affiliate__v1__reply_envelope__descriptor, "code: OK message: ''");
	text = written(m);
	assert_string_equal(text, "");
	free(text);
	protobuf_c_message_free_unpacked(m, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_an_envelope_with_escapes_bytes_and_repeated_messages_parses),
		cmocka_unit_test(
		    test_enums_by_name_or_number_and_lists_in_brackets_parse),
		cmocka_unit_test(test_bad_text_says_where_and_what),
		cmocka_unit_test(
		    test_the_written_form_is_protocs_and_reads_back_to_the_same_bytes),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
