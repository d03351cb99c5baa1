/*
 * test_security.c - API keys, editor scoping, revocation, per-advertiser
 * webhook secrets, secrets kept out of logs, the database file's mode and
 * the rules with Redis down, each over REST (real HTTP through an
 * in-process bridge) and over RPC (a real NNG client), against a real
 * server, SQLite file and redis-server. Rate limits, hostile input and
 * protected mode are in test_security_input.c; the shared stack and calls
 * in security_util.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <jansson.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "aff_webhook.h"
#include "affiliate/v1/admin.pb-c.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"
#include "affiliate/v1/rpc.pb-c.h"
#include "auth.h"
#include "store.h"
#include "testutil.h"
#include "security_util.h"

/* ---- keys and authentication ---- */

static void
test_no_key_or_a_bad_key_is_401_with_www_authenticate(void **state)
{
	static const char *const bad[] = {
		"aff_1_0000000000000000000000000000000000000000000000000000000000000000",
		"aff_999_0000000000000000000000000000000000000000000000000000000000000000",
		"aff_1_short", "not-a-key", "aff__abc", "aff_-1_x", "",
	};
	Affiliate__V1__ListAdvertisersRequest la =
	    AFFILIATE__V1__LIST_ADVERTISERS_REQUEST__INIT;
	struct tu_http_response r;
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	char hdr[128];

	(void)state;
	assert_int_equal(http_as(NULL, "GET", "/advertisers", NULL, &r), 401);
	assert_string_equal(tu_http_header(&r, "WWW-Authenticate", hdr, sizeof(hdr)),
	    "Bearer realm=\"affiliate\"");
	assert_non_null(strstr(r.body, "\"code\":\"UNAUTHENTICATED\""));
	tu_http_response_fini(&r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(http_as(bad[i], "GET", "/orders", NULL, &r), 401);
		assert_non_null(tu_http_header(&r, "WWW-Authenticate", hdr,
		    sizeof(hdr)));
		/* The key is never echoed. */
		if (bad[i][0] != '\0')
			assert_null(strstr(r.body, bad[i]));
		tu_http_response_fini(&r);
		assert_int_equal(rpc_code(bad[i], ADV, "ListAdvertisers", &la.base),
		    AFF_UNAUTHENTICATED);
	}
	/* Over RPC the challenge comes as reply metadata. */
	assert_int_equal(rpc_as(NULL, ADV, "ListAdvertisers", &la.base, &resp,
	                     &res),
	    AFF_UNAUTHENTICATED);
	assert_string_equal(aff_call_result_metadata(&res, "www-authenticate"),
	    "Bearer realm=\"affiliate\"");
	aff_call_result_fini(&res);
	/* Health and signed webhooks need no key. */
	assert_int_equal(http_code(NULL, "GET", "/", NULL), 200);
	assert_int_equal(post_order(SECRET, "K-open-1", 2, 1), 201);
	assert_int_equal(post_order_rpc(SECRET, "K-open-2", 2, 1), AFF_OK);
}

/* With keys required, a catalog read is never marked reusable: its
 * answer depends on the key being valid now, so no front end may hand it
 * to another caller (or to this one after a revocation). */
static void
test_a_keyed_catalog_read_is_never_marked_reusable(void **state)
{
	Affiliate__V1__ListAdvertisersRequest la =
	    AFFILIATE__V1__LIST_ADVERTISERS_REQUEST__INIT;
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	char tok[AUTH_TOKEN_MAX];

	(void)state;
	editor_key(1, tok);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(rpc_as(tok, ADV, "ListAdvertisers", &la.base,
		                     &resp, &res),
		    AFF_OK);
		assert_null(aff_call_result_metadata(&res, "x-affiliate-reuse"));
		protobuf_c_message_free_unpacked(resp, NULL);
		resp = NULL;
		aff_call_result_fini(&res);
	}
	assert_int_equal(rpc_as(NULL, ADV, "ListAdvertisers", &la.base, &resp,
	                     &res),
	    AFF_UNAUTHENTICATED);
	assert_null(aff_call_result_metadata(&res, "x-affiliate-reuse"));
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	aff_call_result_fini(&res);
}

/* The SQL condition "the bytes of column col do not hold text", into
 * buf: instr() on lite (col as SQLite reads it) on SQLite, position() on
 * the bytea column on PostgreSQL. */
static const char *
not_in_blob(const char *lite, const char *col, const char *text, char *buf,
    size_t cap)
{
	if (tu_backend_pg())
		snprintf(buf, cap, "position(convert_to('%s', 'UTF8') IN %s) = 0",
		    text, col);
	else
		snprintf(buf, cap, "instr(%s, '%s') = 0", lite, text);
	return (buf);
}

static void
test_keys_are_admin_only_shown_once_and_stored_as_hashes(void **state)
{
	Affiliate__V1__CreateKeyRequest ck = AFFILIATE__V1__CREATE_KEY_REQUEST__INIT;
	Affiliate__V1__ListKeysRequest lk = AFFILIATE__V1__LIST_KEYS_REQUEST__INIT;
	Affiliate__V1__ListKeysResponse *list = NULL;
	struct aff_call_result res;
	char tok[AUTH_TOKEN_MAX], sql[384], nib[256];

	(void)state;
	editor_key(3, tok);
	/* aff_<id>_<64 hex>, and only the SHA-256 of the secret is stored. */
	assert_int_equal(strncmp(tok, "aff_", 4), 0);
	assert_int_equal(strlen(strrchr(tok, '_') + 1), 64);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM api_keys WHERE length(secret_sha256) = 32"
	    " AND %s",
	    not_in_blob("CAST(secret_sha256 AS TEXT)", "secret_sha256",
	        strrchr(tok, '_') + 1, nib,
	        sizeof(nib)));
	assert_int_equal(rows(sql), rows("SELECT count(*) FROM api_keys"));
	/* Sent again with its request_id (its answer was lost): no second
	 * key, and the token is not shown again (it is not kept anywhere). */
	{
		char bearer[160];
		struct aff_metadata md = { "authorization", bearer };
		struct aff_call_opts o = { .request_id = "create-key-once",
			.metadata = &md, .n_metadata = 1 };
		Affiliate__V1__CreateKeyResponse *r1 = NULL, *r2 = NULL;
		long long keys;

		snprintf(bearer, sizeof(bearer), "Bearer %s", admin_tok);
		ck.editor_id = 4;
		assert_int_equal(aff_client_call(F->ts.client, KEYS, "CreateKey",
		                     &ck.base, &o, (ProtobufCMessage **)&r1, &res),
		    AFF_OK);
		aff_call_result_fini(&res);
		keys = rows("SELECT count(*) FROM api_keys");
		assert_int_equal(aff_client_call(F->ts.client, KEYS, "CreateKey",
		                     &ck.base, &o, (ProtobufCMessage **)&r2, &res),
		    AFF_ALREADY_EXISTS);
		assert_non_null(strstr(res.message, "shown once"));
		aff_call_result_fini(&res);
		assert_non_null(r2);
		assert_int_equal(r2->key->id, r1->key->id);
		assert_string_equal(r2->token, "");
		assert_int_equal(rows("SELECT count(*) FROM api_keys"), keys);
		snprintf(sql, sizeof(sql),
		    "SELECT count(*) FROM request_keys WHERE request_id ="
		    " 'create-key-once' AND %s",
		    not_in_blob("reply", "reply", strrchr(r1->token, '_') + 1, nib,
		        sizeof(nib)));
		assert_int_equal(rows(sql), 1);
		protobuf_c_message_free_unpacked(&r1->base, NULL);
		protobuf_c_message_free_unpacked(&r2->base, NULL);
		ck.editor_id = 0;
	}
	/* Neither an editor's key nor none may manage keys. */
	ck.admin = 1;
	assert_int_equal(rpc_code(tok, KEYS, "CreateKey", &ck.base),
	    AFF_PERMISSION_DENIED);
	assert_int_equal(rpc_code(NULL, KEYS, "CreateKey", &ck.base),
	    AFF_UNAUTHENTICATED);
	assert_int_equal(rpc_code(tok, KEYS, "ListKeys", &lk.base),
	    AFF_PERMISSION_DENIED);
	/* Bad requests. */
	ck.editor_id = 2; /* both */
	assert_int_equal(rpc_code(admin_tok, KEYS, "CreateKey", &ck.base),
	    AFF_INVALID_ARGUMENT);
	ck.admin = 0;
	ck.editor_id = 99;
	assert_int_equal(rpc_code(admin_tok, KEYS, "CreateKey", &ck.base),
	    AFF_NOT_FOUND);
	/* The list never holds a secret. */
	assert_int_equal(rpc_as(admin_tok, KEYS, "ListKeys", &lk.base,
	                     (ProtobufCMessage **)&list, &res),
	    AFF_OK);
	assert_true(list->n_keys >= 2);
	assert_string_equal(list->keys[0]->role, "admin");
	assert_null(memmem(res.payload, res.payload_len, strrchr(tok, '_') + 1, 64));
	protobuf_c_message_free_unpacked(&list->base, NULL);
	aff_call_result_fini(&res);
}

static void
test_a_revoked_key_stops_working_at_once(void **state)
{
	Affiliate__V1__RevokeKeyRequest rk = AFFILIATE__V1__REVOKE_KEY_REQUEST__INIT;
	Affiliate__V1__ListOrdersRequest lo = AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
	Affiliate__V1__ApiKey *k = NULL;
	struct aff_call_result res;
	char tok[AUTH_TOKEN_MAX];

	(void)state;
	editor_key(4, tok);
	assert_int_equal(http_code(tok, "GET", "/orders", NULL), 200);
	assert_int_equal(rpc_code(tok, ORD, "ListOrders", &lo.base), AFF_OK);
	rk.id = strtoll(tok + 4, NULL, 10);
	assert_int_equal(rpc_as(admin_tok, KEYS, "RevokeKey", &rk.base,
	                     (ProtobufCMessage **)&k, &res),
	    AFF_OK);
	assert_true(k->revoked_at[0] != '\0');
	protobuf_c_message_free_unpacked(&k->base, NULL);
	aff_call_result_fini(&res);
	/* The very next call, by either way in. */
	assert_int_equal(http_code(tok, "GET", "/orders", NULL), 401);
	assert_int_equal(rpc_code(tok, ORD, "ListOrders", &lo.base),
	    AFF_UNAUTHENTICATED);
	/* Again: unchanged; unknown: 404. */
	assert_int_equal(rpc_code(admin_tok, KEYS, "RevokeKey", &rk.base), AFF_OK);
	rk.id = 9999;
	assert_int_equal(rpc_code(admin_tok, KEYS, "RevokeKey", &rk.base),
	    AFF_NOT_FOUND);
}

/* ---- scoping ---- */

static void
test_an_editor_key_without_an_editor_is_refused_not_unscoped(void **state)
{
	char t2[AUTH_TOKEN_MAX], sql[192];

	(void)state;
	editor_key(2, t2);
	assert_int_equal(http_code(t2, "GET", "/orders", NULL), 200);
	/* A row the server would never write (its foreign key stops it),
	 * written behind its back: editor_id 0 must not mean "every
	 * editor" to the scoping. */
	/* SQLite checks foreign keys only on connections that ask (the
	 * server's do, this one does not); PostgreSQL always, except for a
	 * superuser's session that turns its triggers off, as a replica's. */
	snprintf(sql, sizeof(sql),
	    "%sUPDATE api_keys SET editor_id = 0 WHERE id = %lld%s",
	    tu_backend_pg() ? "SET session_replication_role = replica;" : "",
	    strtoll(t2 + 4, NULL, 10),
	    tu_backend_pg() ? ";RESET session_replication_role" : "");
	assert_int_equal(tu_sql_exec(F->db, sql), 0);
	assert_int_equal(http_code(t2, "GET", "/orders", NULL), 401);
	assert_int_equal(http_code(t2, "GET", "/applications", NULL), 401);
}

static void
test_an_editor_sees_and_makes_only_its_own_applications(void **state)
{
	Affiliate__V1__ApplyRequest ap = AFFILIATE__V1__APPLY_REQUEST__INIT;
	Affiliate__V1__ListApplicationsRequest la =
	    AFFILIATE__V1__LIST_APPLICATIONS_REQUEST__INIT;
	Affiliate__V1__ListApplicationsResponse *lr = NULL;
	Affiliate__V1__GetApplicationRequest ga =
	    AFFILIATE__V1__GET_APPLICATION_REQUEST__INIT;
	struct tu_http_response r;
	struct aff_call_result res;
	char t1[AUTH_TOKEN_MAX], t2[AUTH_TOKEN_MAX], target[64];
	long long before;
	int a1 = 0, a2 = 0;

	(void)state;
	editor_key(1, t1);
	editor_key(2, t2);
	for (int a = 1; a <= STORE_SEED_ADVERTISERS && (a1 == 0 || a2 == 0); a++) {
		if (a1 == 0 && store_seed_eligible(1, a) && a % 5 != 0)
			a1 = a;
		else if (a2 == 0 && store_seed_eligible(2, a) && a % 5 != 0)
			a2 = a;
	}
	/* POST without editor_id: the key's editor. */
	snprintf(target, sizeof(target), "{\"advertiser_id\":%d}", a1);
	assert_int_equal(http_as(t1, "POST", "/applications", target, &r), 202);
	assert_non_null(strstr(r.body, "\"editor_id\":1,"));
	tu_http_response_fini(&r);
	/* Another editor's id in the body: 403, nothing stored. */
	before = rows("SELECT count(*) FROM applications");
	snprintf(target, sizeof(target),
	    "{\"advertiser_id\":%d,\"editor_id\":2}", a2);
	assert_int_equal(http_as(t1, "POST", "/applications", target, &r), 403);
	assert_non_null(strstr(r.body, "acts for editor 1, not editor 2"));
	tu_http_response_fini(&r);
	ap.advertiser_id = a2;
	ap.editor_id = 2;
	assert_int_equal(rpc_code(t1, APP, "Apply", &ap.base),
	    AFF_PERMISSION_DENIED);
	assert_int_equal(rows("SELECT count(*) FROM applications"), before);
	/* Its own over RPC, editor from the key. */
	ap.editor_id = 0;
	assert_int_equal(rpc_code(t2, APP, "Apply", &ap.base), AFF_OK);

	/* Lists: only the caller's rows; the admin sees all. */
	assert_int_equal(http_as(t1, "GET", "/applications", NULL, &r), 200);
	assert_int_equal(all_have(r.body, "editor_id", 1), 1);
	tu_http_response_fini(&r);
	assert_int_equal(http_code(t1, "GET", "/applications?editor_id=2", NULL),
	    403);
	assert_int_equal(http_as(admin_tok, "GET", "/applications", NULL, &r), 200);
	assert_true(strstr(r.body, "\"editor_id\":1,") != NULL &&
	    strstr(r.body, "\"editor_id\":2,") != NULL);
	tu_http_response_fini(&r);
	assert_int_equal(rpc_as(t2, APP, "ListApplications", &la.base,
	                     (ProtobufCMessage **)&lr, &res),
	    AFF_OK);
	assert_int_equal(lr->n_applications, 1);
	assert_int_equal(lr->applications[0]->editor_id, 2);
	ga.id = lr->applications[0]->id;
	protobuf_c_message_free_unpacked(&lr->base, NULL);
	aff_call_result_fini(&res);
	/* Another editor's application is not there for it. */
	assert_int_equal(rpc_code(t1, APP, "GetApplication", &ga.base),
	    AFF_NOT_FOUND);
	snprintf(target, sizeof(target), "/applications/%lld", (long long)ga.id);
	assert_int_equal(http_code(t1, "GET", target, NULL), 404);
	assert_int_equal(http_code(t2, "GET", target, NULL), 200);
	assert_int_equal(http_code(admin_tok, "GET", target, NULL), 200);
}

static void
test_an_editor_sees_only_its_own_orders(void **state)
{
	Affiliate__V1__ListOrdersRequest lo = AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
	Affiliate__V1__ListOrdersResponse *lr = NULL;
	struct tu_http_response r;
	struct aff_call_result res;
	char t5[AUTH_TOKEN_MAX];

	(void)state;
	editor_key(5, t5);
	assert_int_equal(post_order(SECRET, "S-5-a", 3, 5), 201);
	assert_int_equal(post_order(SECRET, "S-5-b", 4, 5), 201);
	assert_int_equal(post_order(SECRET, "S-6-a", 3, 6), 201);
	assert_int_equal(http_as(t5, "GET", "/orders", NULL, &r), 200);
	assert_int_equal(all_have(r.body, "editor_id", 5), 2);
	tu_http_response_fini(&r);
	assert_int_equal(http_as(t5, "GET", "/orders?advertiser_id=3", NULL, &r),
	    200);
	assert_int_equal(all_have(r.body, "editor_id", 5), 1);
	tu_http_response_fini(&r);
	assert_int_equal(http_code(t5, "GET", "/orders?editor_id=6", NULL), 403);
	assert_int_equal(http_as(admin_tok, "GET", "/orders?editor_id=6", NULL,
	                     &r),
	    200);
	assert_int_equal(all_have(r.body, "editor_id", 6), 1);
	tu_http_response_fini(&r);
	assert_int_equal(rpc_as(t5, ORD, "ListOrders", &lo.base,
	                     (ProtobufCMessage **)&lr, &res),
	    AFF_OK);
	assert_int_equal(lr->n_orders, 2);
	assert_int_equal(lr->orders[0]->editor_id, 5);
	assert_int_equal(lr->orders[1]->editor_id, 5);
	protobuf_c_message_free_unpacked(&lr->base, NULL);
	aff_call_result_fini(&res);
	lo.editor_id = 6;
	assert_int_equal(rpc_code(t5, ORD, "ListOrders", &lo.base),
	    AFF_PERMISSION_DENIED);
}

static void
test_advertiser_queries_take_only_the_callers_editor_id(void **state)
{
	Affiliate__V1__GetAdvertiserRequest ga =
	    AFFILIATE__V1__GET_ADVERTISER_REQUEST__INIT;
	char t1[AUTH_TOKEN_MAX];
	int a = 1;

	(void)state;
	editor_key(1, t1);
	while (!store_seed_eligible(1, a) || !store_seed_eligible(2, a))
		a++;
	assert_int_equal(http_code(t1, "GET", "/advertisers", NULL), 200);
	assert_int_equal(http_code(t1, "GET", "/advertisers?editor_id=1", NULL),
	    200);
	/* Twice: the second would come from the reply cache. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(
		    http_code(t1, "GET", "/advertisers?editor_id=2", NULL), 403);
		ga.id = a;
		ga.editor_id = 2;
		assert_int_equal(rpc_code(t1, ADV, "GetAdvertiser", &ga.base),
		    AFF_PERMISSION_DENIED);
		assert_int_equal(
		    rpc_code(admin_tok, ADV, "GetAdvertiser", &ga.base), AFF_OK);
	}
	ga.editor_id = 1;
	assert_int_equal(rpc_code(t1, ADV, "GetAdvertiser", &ga.base), AFF_OK);
}

/* ---- per-advertiser webhook secrets ---- */

static void
rotate(int adv, int grace, char secret[80], int want_previous)
{
	Affiliate__V1__RotateWebhookSecretRequest req =
	    AFFILIATE__V1__ROTATE_WEBHOOK_SECRET_REQUEST__INIT;
	Affiliate__V1__RotateWebhookSecretResponse *resp = NULL;
	struct aff_call_result res;

	req.advertiser_id = adv;
	req.grace_seconds = grace;
	assert_int_equal(rpc_as(admin_tok, WHS, "RotateWebhookSecret", &req.base,
	                     (ProtobufCMessage **)&resp, &res),
	    AFF_OK);
	assert_int_equal(strlen(resp->secret), 64);
	assert_int_equal(resp->previous_valid_until[0] != '\0', want_previous);
	snprintf(secret, 80, "%s", resp->secret);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	aff_call_result_fini(&res);
}

static void
test_an_advertisers_own_secret_signs_only_its_own_orders(void **state)
{
	Affiliate__V1__RotateWebhookSecretRequest req =
	    AFFILIATE__V1__ROTATE_WEBHOOK_SECRET_REQUEST__INIT;
	char s7[80], s7b[80], s8[80], t1[AUTH_TOKEN_MAX];
	long long before;

	(void)state;
	rotate(7, 0, s7, 0);
	/* The global secret no longer signs for advertiser 7... */
	before = rows("SELECT count(*) FROM orders");
	assert_int_equal(post_order(SECRET, "W-7-global", 7, 1), 401);
	assert_int_equal(post_order_rpc(SECRET, "W-7-global", 7, 1),
	    AFF_UNAUTHENTICATED);
	/* ...its own does, over REST and RPC. */
	assert_int_equal(post_order(s7, "W-7-own", 7, 1), 201);
	assert_int_equal(post_order_rpc(s7, "W-7-own-rpc", 7, 1), AFF_OK);
	/* 7's secret cannot post for advertiser 8 (which has none of its
	 * own: the global secret is its fallback) nor for 9. */
	assert_int_equal(post_order(s7, "W-8-by-7", 8, 1), 401);
	assert_int_equal(post_order_rpc(s7, "W-8-by-7", 8, 1),
	    AFF_UNAUTHENTICATED);
	assert_int_equal(post_order(SECRET, "W-8-global", 8, 1), 201);
	rotate(9, 0, s8, 0);
	assert_int_equal(post_order(s7, "W-9-by-7", 9, 1), 401);
	assert_int_equal(rows("SELECT count(*) FROM orders"), before + 3);
	assert_int_equal(rows("SELECT count(*) FROM orders WHERE order_id LIKE "
	                      "'%by-7' OR order_id = 'W-7-global'"),
	    0);

	/* Rotation: the old secret stays valid for the grace period. */
	rotate(7, 1, s7b, 1);
	assert_int_equal(post_order(s7b, "W-7-new", 7, 1), 201);
	assert_int_equal(post_order(s7, "W-7-old-in-grace", 7, 1), 201);
	tu_sleep_ms(2100);
	assert_int_equal(post_order(s7, "W-7-old-after-grace", 7, 1), 401);
	assert_int_equal(post_order(s7b, "W-7-new-after-grace", 7, 1), 201);

	/* Admin only; bad requests. */
	editor_key(1, t1);
	req.advertiser_id = 7;
	assert_int_equal(rpc_code(t1, WHS, "RotateWebhookSecret", &req.base),
	    AFF_PERMISSION_DENIED);
	assert_int_equal(rpc_code(NULL, WHS, "RotateWebhookSecret", &req.base),
	    AFF_UNAUTHENTICATED);
	req.advertiser_id = 999;
	assert_int_equal(rpc_code(admin_tok, WHS, "RotateWebhookSecret",
	                     &req.base),
	    AFF_NOT_FOUND);
	req.advertiser_id = 7;
	req.grace_seconds = -1;
	assert_int_equal(rpc_code(admin_tok, WHS, "RotateWebhookSecret",
	                     &req.base),
	    AFF_INVALID_ARGUMENT);
}

/* ---- log hygiene ---- */

static void
test_keys_and_secrets_never_reach_the_logs(void **state)
{
	char path[] = "/tmp/aff-sec-log-XXXXXX", t3[AUTH_TOKEN_MAX], s10[80];
	char *buf;
	int fd, saved;

	(void)state;
	assert_true((fd = mkstemp(path)) >= 0);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	aff_log_set_level(AFF_LOG_DEBUG);
	editor_key(3, t3);
	rotate(10, 0, s10, 0);
	assert_int_equal(http_code(t3, "GET", "/orders", NULL), 200);
	t3[strlen(t3) - 1] ^= 1; /* a wrong one */
	assert_int_equal(http_code(t3, "GET", "/orders", NULL), 401);
	t3[strlen(t3) - 1] ^= 1;
	assert_int_equal(post_order(s10, "LOG-1", 10, 1), 201);
	assert_int_equal(post_order(SECRET, "LOG-2", 10, 1), 401);
	/* A line break in what a peer sends cannot forge a log line. */
	assert_int_equal(http_code(t3, "GET",
	                     "/nothing%0A2001-01-01T00:00:00.000Z%20affiliate"
	                     "%5B1%5D%20error%20FORGED",
	                     NULL),
	    404);
	{
		Affiliate__V1__HealthCheckRequest hc =
		    AFFILIATE__V1__HEALTH_CHECK_REQUEST__INIT;
		hc.service = "x\n2001-01-01T00:00:00.000Z affiliate[1] error FORGED";
		assert_int_equal(rpc_code(NULL, &affiliate__v1__health_service__descriptor,
		                     "Check", &hc.base),
		    AFF_NOT_FOUND);
	}
	aff_log_set_level(AFF_LOG_ERROR);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	assert_non_null(buf = tu_read_file(path));
	unlink(path);
	/* The calls were logged... */
	assert_non_null(strstr(buf, "KeyService/CreateKey OK"));
	assert_non_null(strstr(buf, "UNAUTHENTICATED"));
	/* ...and no secret with them (the key's id may be named). */
	assert_null(strstr(buf, strrchr(t3, '_') + 1));
	assert_null(strstr(buf, s10));
	assert_null(strstr(buf, SECRET));
	assert_null(strstr(buf, admin_tok + 6));
	assert_non_null(strstr(buf, "FORGED"));
	assert_null(strstr(buf, "\n2001-01-01T"));
	free(buf);
}

/* ---- Redis down ---- */

static void
test_with_redis_down_the_rules_hold(void **state)
{
	Affiliate__V1__ListOrdersRequest lo = AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
	Affiliate__V1__ListOrdersResponse *lr = NULL;
	Affiliate__V1__RevokeKeyRequest rk = AFFILIATE__V1__REVOKE_KEY_REQUEST__INIT;
	struct tu_http_response r;
	struct aff_call_result res;
	char t5[AUTH_TOKEN_MAX];
	int port = F->redis.port;

	(void)state;
	editor_key(5, t5);
	assert_int_equal(post_order(SECRET, "R-5-a", 3, 5), 201);
	assert_int_equal(post_order(SECRET, "R-6-a", 3, 6), 201);
	/* Fill the reply cache and the orders' copy, then lose Redis. */
	assert_int_equal(http_code(admin_tok, "GET", "/advertisers?editor_id=6",
	                     NULL),
	    200);
	assert_int_equal(http_code(t5, "GET", "/orders", NULL), 200);
	tu_redis_stop(&F->redis);
	/* Keys, scoping and revocation live in SQLite: unchanged. */
	assert_int_equal(http_code(NULL, "GET", "/orders", NULL), 401);
	assert_int_equal(http_as(t5, "GET", "/orders", NULL, &r), 200);
	assert_true(all_have(r.body, "editor_id", 5) >= 1);
	tu_http_response_fini(&r);
	assert_int_equal(http_code(t5, "GET", "/orders?editor_id=6", NULL), 403);
	assert_int_equal(http_code(t5, "GET", "/advertisers?editor_id=6", NULL),
	    403);
	assert_int_equal(rpc_as(t5, ORD, "ListOrders", &lo.base,
	                     (ProtobufCMessage **)&lr, &res),
	    AFF_OK);
	for (size_t i = 0; i < lr->n_orders; i++)
		assert_int_equal(lr->orders[i]->editor_id, 5);
	protobuf_c_message_free_unpacked(&lr->base, NULL);
	aff_call_result_fini(&res);
	rk.id = strtoll(t5 + 4, NULL, 10);
	assert_int_equal(rpc_code(admin_tok, KEYS, "RevokeKey", &rk.base), AFF_OK);
	assert_int_equal(http_code(t5, "GET", "/orders", NULL), 401);
	assert_int_equal(rpc_code(t5, ORD, "ListOrders", &lo.base),
	    AFF_UNAUTHENTICATED);
	/* Back for the tests that follow. */
	F->redis.port = port;
	assert_int_equal(tu_redis_start(&F->redis), 0);
}

/* ---- the database is private ---- */

/* The permission bits others have on path (-1 when it is missing). */
static int
others_bits(const char *db, const char *ext)
{
	char p[700];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", db, ext);
	return (stat(p, &st) == 0 ? (int)(st.st_mode & 077) : -1);
}

static void
test_the_database_is_private_to_its_owner(void **state)
{
	store *s;

	(void)state;
	TU_SQLITE_ONLY("the database is a server's there, not a file of ours "
	               "whose mode bits could be checked");
	/* It holds the advertisers' webhook secrets in clear. */
	assert_int_equal(http_code(admin_tok, "GET", "/orders", NULL), 200);
	assert_int_equal(others_bits(F->db, ""), 0);
	assert_int_equal(others_bits(F->db, "-wal"), 0);
	assert_int_equal(others_bits(F->db, "-shm"), 0);
	/* One left readable (an older version, a copy, a umask of 0) is
	 * made private when opened. */
	assert_int_equal(chmod(F->db, 0644), 0);
	assert_int_equal(store_open(F->db, &s), AFF_OK);
	store_close(s);
	assert_int_equal(others_bits(F->db, ""), 0);
}

int
main(void)
{
	const struct CMUnitTest auth[] = {
		cmocka_unit_test(test_no_key_or_a_bad_key_is_401_with_www_authenticate),
		cmocka_unit_test(
		    test_keys_are_admin_only_shown_once_and_stored_as_hashes),
		cmocka_unit_test(test_a_revoked_key_stops_working_at_once),
		cmocka_unit_test(test_a_keyed_catalog_read_is_never_marked_reusable),
		cmocka_unit_test(
		    test_an_editor_sees_and_makes_only_its_own_applications),
		cmocka_unit_test(test_an_editor_sees_only_its_own_orders),
		cmocka_unit_test(
		    test_an_editor_key_without_an_editor_is_refused_not_unscoped),
		cmocka_unit_test(
		    test_advertiser_queries_take_only_the_callers_editor_id),
		cmocka_unit_test(
		    test_an_advertisers_own_secret_signs_only_its_own_orders),
		cmocka_unit_test(test_keys_and_secrets_never_reach_the_logs),
		cmocka_unit_test(test_the_database_is_private_to_its_owner),
		cmocka_unit_test(test_with_redis_down_the_rules_hold),
	};

	return (cmocka_run_group_tests_name("auth", auth, setup_auth_on,
	    teardown));
}
