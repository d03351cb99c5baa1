/*
 * test_lib.c - the shared library's pieces: status names, strict number
 * parsing, the per-call arena and descriptor-driven JSON.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aff_arena.h"
#include "aff_err.h"
#include "aff_json.h"
#include "aff_log.h"
#include "aff_util.h"
#include "affiliate/v1/admin.pb-c.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"
#include "affiliate/v1/rpc.pb-c.h"
#include "testutil.h"

static void
test_status_codes_are_grpc_codes(void **state)
{
	(void)state;
	/* The proto's Code enum and aff_err must never drift apart. */
	assert_int_equal(AFFILIATE__V1__CODE__NOT_FOUND, AFF_NOT_FOUND);
	assert_int_equal(AFFILIATE__V1__CODE__UNAUTHENTICATED, AFF_UNAUTHENTICATED);
	assert_int_equal(AFFILIATE__V1__CODE__UNIMPLEMENTED, AFF_UNIMPLEMENTED);
	for (int i = 0; i <= AFF_ERR_MAX; i++) {
		const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		    &affiliate__v1__code__descriptor, i);
		assert_non_null(v);
		assert_string_equal(v->name, aff_code_name(i));
	}
	assert_string_equal(aff_code_name(99), "UNKNOWN");
	assert_string_equal(aff_strerror(AFF_NOT_FOUND), "not found");
}

static void
test_parse_int64_is_strict(void **state)
{
	int64_t v = 7;

	(void)state;
	assert_int_equal(aff_parse_int64("42", 0, 100, &v), AFF_OK);
	assert_int_equal(v, 42);
	assert_int_equal(aff_parse_int64("-3", -10, 10, &v), AFF_OK);
	assert_int_equal(v, -3);
	static const char *const bad[] = { "", " 1", "+1", "1 ", "1x", "0x10",
		"abc", "101", "99999999999999999999", "1.5", "--1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		assert_int_equal(
		    aff_parse_int64(bad[i], 0, 100, &v), AFF_INVALID_ARGUMENT);
		assert_int_equal(v, 7);
	}
	assert_int_equal(
	    aff_parse_int64(NULL, 0, 100, &v), AFF_INVALID_ARGUMENT);
}

static void
test_the_arena_hands_out_aligned_zeroed_memory(void **state)
{
	aff_arena a;
	char *s;

	(void)state;
	aff_arena_init(&a);
	for (int i = 1; i < 2000; i += 37) {
		unsigned char *p = aff_arena_alloc(&a, (size_t)i);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
		for (int k = 0; k < i; k++)
			assert_int_equal(p[k], 0);
		memset(p, 0xab, (size_t)i);
	}
	assert_non_null(aff_arena_alloc(&a, 100000)); /* larger than a chunk */
	s = aff_arena_printf(&a, "%s-%d", "id", 42);
	assert_string_equal(s, "id-42");
	assert_string_equal(aff_arena_strndup(&a, "abcdef", 3), "abc");
	aff_arena_fini(&a);
}

static void
test_a_message_renders_as_json_with_every_field(void **state)
{
	Affiliate__V1__ListAdvertisersResponse resp =
	    AFFILIATE__V1__LIST_ADVERTISERS_RESPONSE__INIT;
	Affiliate__V1__Advertiser adv = AFFILIATE__V1__ADVERTISER__INIT;
	Affiliate__V1__Advertiser *list[1] = { &adv };
	Affiliate__V1__HealthCheckResponse h =
	    AFFILIATE__V1__HEALTH_CHECK_RESPONSE__INIT;
	json_t *j;
	char *s;

	(void)state;
	adv.id = 9007199254740993LL; /* beyond a double's exact range */
	adv.name = "Caf\xc3\xa9 \"Q\"";
	adv.commission_rate_bps = 750;
	resp.advertisers = list;
	resp.n_advertisers = 1;
	resp.next_after = 0;
	j = aff_json_from_message(&resp.base);
	s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_string_equal(s,
	    "{\"advertisers\":[{\"id\":9007199254740993,\"name\":\"Caf\xc3\xa9 "
	    "\\\"Q\\\"\",\"category\":\"\",\"currency\":\"\","
	    "\"commission_rate_bps\":750,\"status\":\"\",\"website\":\"\","
	    "\"cookie_days\":0,\"created_at\":\"\",\"updated_at\":\"\"}],"
	    "\"next_after\":0}");
	free(s);
	json_decref(j);

	h.status = AFFILIATE__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	j = aff_json_from_message(&h.base);
	s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_string_equal(s, "{\"status\":\"SERVING\",\"store\":\"UNKNOWN\","
	                       "\"cache\":\"UNKNOWN\",\"version\":\"\"}");
	free(s);
	json_decref(j);
}

/* The writer the bridge answers with: integers to their extremes, money
 * as exact decimals of either sign, every escape, bad UTF-8 replaced. */
static void
test_the_writer_renders_numbers_money_and_escapes_exactly(void **state)
{
	Affiliate__V1__Order o = AFFILIATE__V1__ORDER__INIT;
	struct aff_buf b;

	(void)state;
	o.order_id = "a\"b\\c\n\r\t\b\f\x01\x1f/\xc3\xa9";
	o.advertiser_id = INT64_MIN;
	o.editor_id = INT64_MAX;
	o.amount_cents = 4990;
	o.commission_cents = -7;
	o.currency = "EUR";
	o.status = "pending\xff";
	o.created_at = "";
	o.updated_at = "2026-01-01T00:00:00Z";
	aff_buf_init(&b);
	assert_int_equal(aff_json_write_message(&b, &o.base), AFF_OK);
	assert_string_equal(b.data,
	    "{\"order_id\":\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/"
	    "\xc3\xa9\",\"advertiser_id\":-9223372036854775808,"
	    "\"editor_id\":9223372036854775807,\"amount\":49.90,"
	    "\"commission\":-0.07,\"currency\":\"EUR\","
	    "\"status\":\"\xef\xbf\xbd\",\"created_at\":\"\","
	    "\"updated_at\":\"2026-01-01T00:00:00Z\"}");
	assert_int_equal(b.len, strlen(b.data));
	aff_buf_fini(&b);

	o.advertiser_id = 0;
	o.amount_cents = 0;
	o.commission_cents = INT64_MIN;
	aff_buf_init(&b);
	assert_int_equal(aff_json_write_message(&b, &o.base), AFF_OK);
	assert_non_null(strstr(b.data, "\"advertiser_id\":0,"));
	assert_non_null(strstr(b.data, "\"amount\":0.00,"));
	assert_non_null(strstr(b.data, "\"commission\":-92233720368547758.08,"));
	aff_buf_fini(&b);
}

/*
 * Whether d, and every message inside it, has only fields of the kinds
 * the transcoder knows (aff_json.h, json_in.h): int32, int64, bool, enum,
 * string or message, single (proto3's plain label) or repeated, no oneof.
 * ReceiveWebhookRequest.body is bytes: the bridge fills it with the raw
 * body itself, and no JSON ever reaches it.
 */
static int
message_kinds_known(const ProtobufCMessageDescriptor *d, int depth)
{
	if (depth > 8)
		return (1); /* test_edge_http bounds the nesting */
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
		    (f->label != PROTOBUF_C_LABEL_NONE &&
		        f->label != PROTOBUF_C_LABEL_REPEATED)) {
			print_error("%s.%s: oneof or optional\n", d->name, f->name);
			return (0);
		}
		switch (f->type) {
		case PROTOBUF_C_TYPE_INT32:
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_BOOL:
		case PROTOBUF_C_TYPE_ENUM:
		case PROTOBUF_C_TYPE_STRING:
			break;
		case PROTOBUF_C_TYPE_MESSAGE:
			if (!message_kinds_known(f->descriptor, depth + 1))
				return (0);
			break;
		default:
			if (d == &affiliate__v1__receive_webhook_request__descriptor &&
			    strcmp(f->name, "body") == 0)
				break;
			print_error("%s.%s: kind %d\n", d->name, f->name, (int)f->type);
			return (0);
		}
	}
	return (1);
}

/* The transcoder has no branch for float, unsigned, bytes, oneof or
 * optional fields: no message a service takes or answers may have one. */
static void
test_no_message_of_the_api_has_a_field_the_transcoder_leaves_out(
    void **state)
{
	static const ProtobufCServiceDescriptor *const services[] = {
		&affiliate__v1__advertiser_service__descriptor,
		&affiliate__v1__application_service__descriptor,
		&affiliate__v1__order_service__descriptor,
		&affiliate__v1__key_service__descriptor,
		&affiliate__v1__webhook_secret_service__descriptor,
		&affiliate__v1__health_service__descriptor,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		for (unsigned k = 0; k < services[i]->n_methods; k++) {
			assert_true(message_kinds_known(services[i]->methods[k].input, 0));
			assert_true(
			    message_kinds_known(services[i]->methods[k].output, 0));
		}
}

static void
test_request_ids_are_32_hex_and_differ(void **state)
{
	char a[33], b[33];

	(void)state;
	aff_request_id_new(a);
	aff_request_id_new(b);
	assert_int_equal(strlen(a), 32);
	assert_int_equal(strspn(a, "0123456789abcdef"), 32);
	assert_string_not_equal(a, b);
}

/* What aff_log writes for one call, read back from a temporary stderr. */
static char *
log_line(const char *fmt, const char *arg)
{
	char path[] = "/tmp/aff-lib-log-XXXXXX", *buf;
	int fd, saved;

	assert_true((fd = mkstemp(path)) >= 0);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	aff_log(AFF_LOG_ERROR, NULL, fmt, arg);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	assert_non_null(buf = tu_read_file(path));
	unlink(path);
	return (buf);
}

static void
test_the_log_escapes_every_byte_outside_printable_ascii(void **state)
{
	char *line;

	(void)state;
	/* A worker name as a peer may send it: UTF-8, a stray 0xff, a
	 * terminal escape, a line break, a backslash. */
	line = log_line("from %s!", "w\xc3\xa9\xff\x1b[31m\nX\\y");
	assert_non_null(strstr(line,
	    "from w\\xc3\\xa9\\xff\\x1b[31m\\x0aX\\x5cy!\n"));
	/* One line, nothing else escaped, nothing left raw. */
	assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
	for (const char *c = line; *c != '\0'; c++)
		assert_true(*c == '\n' || (*c >= 0x20 && *c < 0x7f));
	free(line);
}

static void
test_a_rate_limited_warning_passes_once_a_second_and_counts_the_rest(
    void **state)
{
	static struct aff_log_limit lim;
	int passed = 0, suppressed = -1;

	(void)state;
	for (int i = 0; i < 1000; i++)
		passed += aff_log_limit_pass(&lim, &suppressed);
	assert_int_equal(passed, 1);
	assert_int_equal(suppressed, 0);
	usleep(1100 * 1000);
	assert_int_equal(aff_log_limit_pass(&lim, &suppressed), 1);
	assert_int_equal(suppressed, 999);
	assert_int_equal(aff_log_limit_pass(&lim, &suppressed), 0);
}

static void
test_a_monotonic_wait_lasts_its_timeout(void **state)
{
	pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv;
	struct timespec ts;
	int64_t t0, waited;

	(void)state;
	/* The deadline is on CLOCK_MONOTONIC (seconds since boot); a wait on
	 * the default clock would take it as a date in 1970 and return at
	 * once, and any wall-clock step would move it. */
	assert_int_equal(aff_cond_init_monotonic(&cv), 0);
	t0 = aff_mono_ms();
	aff_mono_deadline(&ts, 150);
	pthread_mutex_lock(&mtx);
	while (pthread_cond_timedwait(&cv, &mtx, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&mtx);
	waited = aff_mono_ms() - t0;
	assert_true(waited >= 149);
	assert_true(waited < 2000);
	/* Deadlines carry over whole seconds. */
	aff_mono_deadline(&ts, 1999);
	assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
	pthread_cond_destroy(&cv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_codes_are_grpc_codes),
		cmocka_unit_test(test_parse_int64_is_strict),
		cmocka_unit_test(test_the_arena_hands_out_aligned_zeroed_memory),
		cmocka_unit_test(test_a_message_renders_as_json_with_every_field),
		cmocka_unit_test(
		    test_the_writer_renders_numbers_money_and_escapes_exactly),
		cmocka_unit_test(
		    test_no_message_of_the_api_has_a_field_the_transcoder_leaves_out),
		cmocka_unit_test(test_request_ids_are_32_hex_and_differ),
		cmocka_unit_test(
		    test_the_log_escapes_every_byte_outside_printable_ascii),
		cmocka_unit_test(
		    test_a_rate_limited_warning_passes_once_a_second_and_counts_the_rest),
		cmocka_unit_test(test_a_monotonic_wait_lasts_its_timeout),
	};

	return (cmocka_run_group_tests_name("lib", tests, NULL, NULL));
}
