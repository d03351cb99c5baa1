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
#include <jansson.h>
#include <nng/nng.h>
#include <openssl/err.h>

#include "aff_arena.h"
#include "aff_err.h"
#include "aff_json.h"
#include "aff_log.h"
#include "aff_status.h"
#include "aff_utf8.h"
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
	    "\"cookie_days\":0,\"created_at\":\"\",\"updated_at\":\"\","
	    "\"allow_other_currencies\":false}],"
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
	    "\"updated_at\":\"2026-01-01T00:00:00Z\","
	    "\"expected_commission\":0.00,\"events\":[]}");
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

/* --log-format json: every byte 0x01..0xff of a message, a request id with
 * a quote and a line break; the line parses as one JSON object with the
 * fields a shipper reads, and the message comes back byte for byte (each
 * byte as the code point of its value). */
static void
test_the_json_log_is_one_valid_object_whatever_the_bytes(void **state)
{
	char path[] = "/tmp/aff-lib-log-XXXXXX", msg[256], *buf;
	const char *m;
	json_t *o;
	json_error_t err;
	int fd, saved;

	(void)state;
	for (int i = 1; i < 256; i++)
		msg[i - 1] = (char)i;
	msg[255] = '\0';
	assert_true((fd = mkstemp(path)) >= 0);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	aff_log_set_json(1);
	aff_log(AFF_LOG_ERROR, "r\"1\n", "m=%s", msg);
	aff_log_set_json(0);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	assert_non_null(buf = tu_read_file(path));
	unlink(path);
	/* One line, ASCII only. */
	assert_ptr_equal(strchr(buf, '\n'), buf + strlen(buf) - 1);
	for (const char *c = buf; *c != '\0'; c++)
		assert_true(*c == '\n' || (*c >= 0x20 && *c < 0x7f));
	o = json_loads(buf, JSON_REJECT_DUPLICATES, &err);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "level")),
	    "error");
	assert_non_null(json_string_value(json_object_get(o, "process")));
	assert_true(json_integer_value(json_object_get(o, "pid")) ==
	    (json_int_t)getpid());
	assert_int_equal(strlen(json_string_value(json_object_get(o, "time"))),
	    24);
	assert_string_equal(json_string_value(json_object_get(o, "req")),
	    "r\"1\n");
	m = json_string_value(json_object_get(o, "msg"));
	assert_non_null(m);
	/* UTF-8 of code points 1..255 after "m=": decode and compare. */
	assert_memory_equal(m, "m=", 2);
	m += 2;
	for (int i = 1; i < 256; i++) {
		unsigned cp = (unsigned char)*m++;
		if (cp >= 0xc0)
			cp = ((cp & 0x1f) << 6) | ((unsigned char)*m++ & 0x3f);
		assert_int_equal(cp, i);
	}
	assert_int_equal(*m, '\0');
	json_decref(o);
	free(buf);
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

static void
test_nng_endpoint_errors_map_to_one_project_code_each(void **state)
{
	(void)state;
	/* A URL NNG cannot use is a setting to fix; anything else may pass. */
	assert_int_equal(aff_err_from_nng_endpoint(0), AFF_OK);
	assert_int_equal(aff_err_from_nng_endpoint(NNG_EADDRINVAL),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_err_from_nng_endpoint(NNG_ENOTSUP),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_err_from_nng_endpoint(NNG_EINVAL),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_err_from_nng_endpoint(NNG_EADDRINUSE),
	    AFF_UNAVAILABLE);
	assert_int_equal(aff_err_from_nng_endpoint(NNG_ECONNREFUSED),
	    AFF_UNAVAILABLE);
	assert_int_equal(aff_err_from_nng_endpoint(NNG_ENOMEM), AFF_UNAVAILABLE);
}

static void
test_fnv1a_matches_the_published_vectors(void **state)
{
	(void)state;
	/* From the FNV reference (isthe.com/chongo/tech/comp/fnv). */
	assert_true(aff_fnv1a(AFF_FNV1A_OFFSET, "", 0) == 0xcbf29ce484222325ull);
	assert_true(aff_fnv1a(AFF_FNV1A_OFFSET, "a", 1) == 0xaf63dc4c8601ec8cull);
	assert_true(
	    aff_fnv1a(AFF_FNV1A_OFFSET, "foobar", 6) == 0x85944171f73967e8ull);
	/* Continuing from an earlier answer hashes the bytes after it. */
	assert_true(aff_fnv1a(aff_fnv1a(AFF_FNV1A_OFFSET, "foo", 3), "bar", 3) ==
	    0x85944171f73967e8ull);
	/* A seed changes the answer (the rate limiter's buckets). */
	assert_true(aff_fnv1a(AFF_FNV1A_OFFSET ^ 1, "foobar", 6) !=
	    0x85944171f73967e8ull);
}

static void
test_hex_round_trips_known_vectors_in_lowercase(void **state)
{
	static const unsigned char bytes[] = { 0x00, 0x01, 0x7f, 0x80, 0xab,
		0xcd, 0xef, 0xff };
	unsigned char back[AFF_HEX_DECODE_MAX], big[AFF_HEX_DECODE_MAX + 1];
	char text[2 * sizeof(big) + 1];

	(void)state;
	aff_hex_encode(bytes, sizeof(bytes), text);
	assert_string_equal(text, "00017f80abcdefff");
	aff_hex_encode(bytes, 0, text);
	assert_string_equal(text, "");
	assert_int_equal(aff_hex_decode("00017f80abcdefff", 16, back, 8), AFF_OK);
	assert_memory_equal(back, bytes, sizeof(bytes));
	/* Either case decodes (signatures from other senders). */
	assert_int_equal(aff_hex_decode("00017F80ABCDEFFF", 16, back, 8), AFF_OK);
	assert_memory_equal(back, bytes, sizeof(bytes));
	/* Exactly 2n characters of hex, nothing else. */
	assert_int_equal(aff_hex_decode("00017f80abcdeff", 15, back, 8),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_hex_decode("00017f80abcdefff0", 17, back, 8),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_hex_decode("00017f80abcdefgf", 16, back, 8),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_hex_decode("00:17f80abcdefff", 16, back, 8),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_hex_decode("0001 f80abcdefff", 16, back, 8),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_hex_decode("0001\0f80abcdefff", 16, back, 8),
	    AFF_INVALID_ARGUMENT);
	assert_int_equal(aff_hex_decode("+1", 2, back, 1), AFF_INVALID_ARGUMENT);
	/* A refusal leaves nothing on OpenSSL's error queue. */
	assert_int_equal(ERR_peek_error(), 0);
	/* The longest decode, and one byte more. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 37);
	aff_hex_encode(big, AFF_HEX_DECODE_MAX, text);
	assert_int_equal(strlen(text), 2 * AFF_HEX_DECODE_MAX);
	assert_int_equal(aff_hex_decode(text, strlen(text), back,
	                     AFF_HEX_DECODE_MAX),
	    AFF_OK);
	assert_memory_equal(back, big, AFF_HEX_DECODE_MAX);
	aff_hex_encode(big, sizeof(big), text);
	assert_int_equal(aff_hex_decode(text, strlen(text), back, sizeof(big)),
	    AFF_INVALID_ARGUMENT);
}

static void
test_utf8_accepts_well_formed_text_and_refuses_the_rest(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		int valid;
		const char *why;
	} cases[] = {
		{ "", 0, 1, "empty" },
		{ "pending", 7, 1, "ASCII" },
		{ "\x7f", 1, 1, "DEL is ASCII" },
		{ "caf\xc3\xa9", 5, 1, "two bytes" },
		{ "\xc2\x80", 2, 1, "U+0080, smallest two-byte" },
		{ "\xdf\xbf", 2, 1, "U+07FF" },
		{ "\xe0\xa0\x80", 3, 1, "U+0800, smallest three-byte" },
		{ "\xed\x9f\xbf", 3, 1, "U+D7FF, below the surrogates" },
		{ "\xee\x80\x80", 3, 1, "U+E000, above the surrogates" },
		{ "\xef\xbf\xbd", 3, 1, "U+FFFD" },
		{ "\xf0\x90\x80\x80", 4, 1, "U+10000, smallest four-byte" },
		{ "\xf4\x8f\xbf\xbf", 4, 1, "U+10FFFF, the last" },
		{ "a\0b", 3, 0, "NUL inside" },
		{ "\x80", 1, 0, "lone continuation byte" },
		{ "\xbf", 1, 0, "lone continuation byte" },
		{ "\xc0\x80", 2, 0, "overlong NUL" },
		{ "\xc1\xbf", 2, 0, "overlong U+007F" },
		{ "\xe0\x80\xaf", 3, 0, "overlong '/' in three bytes" },
		{ "\xe0\x9f\xbf", 3, 0, "overlong U+07FF" },
		{ "\xf0\x8f\xbf\xbf", 4, 0, "overlong U+FFFF" },
		{ "\xed\xa0\x80", 3, 0, "surrogate U+D800" },
		{ "\xed\xbf\xbf", 3, 0, "surrogate U+DFFF" },
		{ "\xed\xa0\xbd\xed\xb8\x80", 6, 0, "surrogate pair (CESU-8)" },
		{ "\xf4\x90\x80\x80", 4, 0, "U+110000, past the last" },
		{ "\xf5\x80\x80\x80", 4, 0, "lead byte 0xf5" },
		{ "\xff", 1, 0, "0xff" },
		{ "\xc3", 1, 0, "cut short after the lead" },
		{ "\xe2\x82", 2, 0, "cut short inside" },
		{ "\xf0\x9f\x98", 3, 0, "four-byte cut short" },
		{ "\xc3\x28", 2, 0, "continuation not 10xxxxxx" },
		{ "\xe2\x28\xa1", 3, 0, "continuation not 10xxxxxx" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const uint8_t *p = (const uint8_t *)cases[i].s;

		if (aff_utf8_valid(p, cases[i].len) != cases[i].valid)
			fail_msg("case %zu (%s): valid should be %d", i,
			    cases[i].why, cases[i].valid);
		/* A single sequence: the scanner's length says the same. */
		if (cases[i].len > 0 && cases[i].len <= 4 && p[0] >= 0x80 &&
		    (aff_utf8_seq_len(p, p + cases[i].len) == cases[i].len) !=
		        cases[i].valid)
			fail_msg("case %zu (%s): sequence length", i,
			    cases[i].why);
	}
	assert_int_equal(aff_utf8_valid(NULL, 0), 1);
	/* The scanner takes NUL as a sequence of 1 and stops at end. */
	{
		const uint8_t *t = (const uint8_t *)"caf\xc3\xa9\0";

		assert_int_equal(aff_utf8_seq_len(t + 5, t + 6), 1);
		assert_int_equal(aff_utf8_seq_len(t, t + 5), 1);
		assert_int_equal(aff_utf8_seq_len(t + 3, t + 5), 2);
		assert_int_equal(aff_utf8_seq_len(t + 3, t + 4), 0);
		assert_int_equal(aff_utf8_seq_len(t + 5, t + 5), 0);
	}
}

static void
test_status_enums_map_to_the_api_words_and_back(void **state)
{
	static const struct {
		const ProtobufCEnumDescriptor *d;
		int v;
		const char *word;
	} table[] = {
		{ AFF_ADVERTISER_STATUS,
		    AFFILIATE__V1__ADVERTISER_STATUS__ADVERTISER_STATUS_ACTIVE,
		    "active" },
		{ AFF_ADVERTISER_STATUS,
		    AFFILIATE__V1__ADVERTISER_STATUS__ADVERTISER_STATUS_PAUSED,
		    "paused" },
		{ AFF_APPLICATION_STATUS,
		    AFFILIATE__V1__APPLICATION_STATUS__APPLICATION_STATUS_PENDING,
		    "pending" },
		{ AFF_APPLICATION_STATUS,
		    AFFILIATE__V1__APPLICATION_STATUS__APPLICATION_STATUS_APPROVED,
		    "approved" },
		{ AFF_APPLICATION_STATUS,
		    AFFILIATE__V1__APPLICATION_STATUS__APPLICATION_STATUS_REJECTED,
		    "rejected" },
		{ AFF_ORDER_STATUS, AFFILIATE__V1__ORDER_STATUS__ORDER_STATUS_PENDING,
		    "pending" },
		{ AFF_ORDER_STATUS, AFFILIATE__V1__ORDER_STATUS__ORDER_STATUS_APPROVED,
		    "approved" },
		{ AFF_ORDER_STATUS, AFFILIATE__V1__ORDER_STATUS__ORDER_STATUS_DECLINED,
		    "declined" },
		{ AFF_REVIEW_DECISION,
		    AFFILIATE__V1__REVIEW_DECISION__REVIEW_DECISION_APPROVED,
		    "approved" },
		{ AFF_REVIEW_DECISION,
		    AFFILIATE__V1__REVIEW_DECISION__REVIEW_DECISION_REJECTED,
		    "rejected" },
	};
	static const ProtobufCEnumDescriptor *const all[] = {
		AFF_ADVERTISER_STATUS, AFF_APPLICATION_STATUS, AFF_ORDER_STATUS,
		AFF_REVIEW_DECISION
	};
	char buf[128];

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		assert_string_equal(aff_status_word(table[i].d, table[i].v),
		    table[i].word);
		assert_int_equal(aff_status_parse(table[i].d, table[i].word),
		    table[i].v);
	}
	/* Every value of every enum has a word, numbered 1.. without gaps
	 * (status.proto's convention), and only those. */
	for (size_t e = 0; e < sizeof(all) / sizeof(all[0]); e++) {
		assert_int_equal(all[e]->values[0].value, 0);
		assert_non_null(strstr(all[e]->values[0].name, "_UNSPECIFIED"));
		for (unsigned k = 1; k < all[e]->n_values; k++)
			assert_non_null(aff_status_word(all[e], (int)k));
		assert_null(aff_status_word(all[e], (int)all[e]->n_values));
		assert_null(aff_status_word(all[e], 0));
		assert_null(aff_status_word(all[e], -1));
	}
	/* Words are exact: no case folding, no prefix, no UNSPECIFIED. */
	assert_int_equal(aff_status_parse(AFF_ORDER_STATUS, "declined"),
	    AFFILIATE__V1__ORDER_STATUS__ORDER_STATUS_DECLINED);
	assert_int_equal(aff_status_parse(AFF_ORDER_STATUS, "rejected"), 0);
	assert_int_equal(aff_status_parse(AFF_APPLICATION_STATUS, "declined"), 0);
	assert_int_equal(aff_status_parse(AFF_ORDER_STATUS, "Pending"), 0);
	assert_int_equal(aff_status_parse(AFF_ORDER_STATUS, "PENDING"), 0);
	assert_int_equal(aff_status_parse(AFF_ORDER_STATUS, "pending "), 0);
	assert_int_equal(aff_status_parse(AFF_ORDER_STATUS, "pend"), 0);
	assert_int_equal(
	    aff_status_parse(AFF_ORDER_STATUS, "ORDER_STATUS_PENDING"), 0);
	assert_int_equal(aff_status_parse(AFF_ORDER_STATUS, "unspecified"), 0);
	assert_int_equal(aff_status_parse(AFF_ORDER_STATUS, ""), 0);
	assert_int_equal(aff_status_parse(AFF_ORDER_STATUS, NULL), 0);
	/* The lists the error messages quote. */
	assert_string_equal(aff_status_list(AFF_APPLICATION_STATUS, buf,
	                        sizeof(buf)),
	    "pending, approved or rejected");
	assert_string_equal(aff_status_list(AFF_ORDER_STATUS, buf, sizeof(buf)),
	    "pending, approved or declined");
	assert_string_equal(
	    aff_status_list(AFF_ADVERTISER_STATUS, buf, sizeof(buf)),
	    "active or paused");
	assert_string_equal(aff_status_list(AFF_ORDER_STATUS, buf, 8), "pending");
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
		    test_the_json_log_is_one_valid_object_whatever_the_bytes),
		cmocka_unit_test(
		    test_a_rate_limited_warning_passes_once_a_second_and_counts_the_rest),
		cmocka_unit_test(test_a_monotonic_wait_lasts_its_timeout),
		cmocka_unit_test(
		    test_nng_endpoint_errors_map_to_one_project_code_each),
		cmocka_unit_test(test_fnv1a_matches_the_published_vectors),
		cmocka_unit_test(test_hex_round_trips_known_vectors_in_lowercase),
		cmocka_unit_test(
		    test_utf8_accepts_well_formed_text_and_refuses_the_rest),
		cmocka_unit_test(test_status_enums_map_to_the_api_words_and_back),
	};

	return (cmocka_run_group_tests_name("lib", tests, NULL, NULL));
}
