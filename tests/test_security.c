/*
 * test_security.c - API keys, editor scoping, protected mode, rate limits
 * and per-advertiser webhook secrets, each over REST (real HTTP through an
 * in-process bridge) and over RPC (a real NNG client), against a real
 * server, SQLite file and redis-server.
 *
 * The protected-mode group needs addresses that are not loopback: the
 * test runs itself again inside a network namespace of its own (unshare
 * -rn) where 192.0.2.1 (TEST-NET-1) sits on that namespace's lo, so no
 * packet leaves it. Where namespaces cannot be made, that group is
 * skipped and says so.
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

#define SECRET "global-test-secret"
#define NETNS_ADDR "192.0.2.1"
#define NETNS_SETUP "ip link set lo up && ip addr add " NETNS_ADDR "/32 dev lo"

#define ADV (&affiliate__v1__advertiser_service__descriptor)
#define APP (&affiliate__v1__application_service__descriptor)
#define ORD (&affiliate__v1__order_service__descriptor)
#define KEYS (&affiliate__v1__key_service__descriptor)
#define WHS (&affiliate__v1__webhook_secret_service__descriptor)

static struct tu_stack *F;
static char admin_tok[AUTH_TOKEN_MAX];

/* ---- helpers ---- */

/* Makes an admin key straight in the database, as affiliate-server
 * --create-admin-key does. */
static void
admin_key_make(const char *db, char tok[AUTH_TOKEN_MAX])
{
	Affiliate__V1__ApiKey *k;
	aff_arena a;
	store *s;

	aff_arena_init(&a);
	assert_int_equal(store_open(db, &s), AFF_OK);
	assert_int_equal(auth_key_create(s, 0, &a, &k, tok), AFF_OK);
	assert_string_equal(k->role, "admin");
	store_close(s);
	aff_arena_fini(&a);
}

static void
env_set(const char *auth, const char *key_limit, const char *addr_limit)
{
	setenv("AFFILIATE_WEBHOOK_SECRET", SECRET, 1);
	setenv("AFFILIATE_AUTH", auth, 1);
	setenv("AFFILIATE_RATE_LIMIT", key_limit, 1);
	setenv("AFFILIATE_RATE_LIMIT_ANON", addr_limit, 1);
}

static void
env_clear(void)
{
	unsetenv("AFFILIATE_AUTH");
	unsetenv("AFFILIATE_RATE_LIMIT");
	unsetenv("AFFILIATE_RATE_LIMIT_ANON");
}

static int
stack_up(void **state, const char *auth, const char *key_limit,
    const char *addr_limit)
{
	struct tu_stack *f;

	env_set(auth, key_limit, addr_limit);
	assert_non_null(f = tu_stack_new(16, 5000));
	env_clear();
	admin_key_make(f->db, admin_tok);
	*state = F = f;
	return (0);
}

static int
setup_auth_on(void **state)
{
	return (stack_up(state, "on", "off", "off"));
}

static int
setup_limits(void **state)
{
	/* One call a second, three at once: the fourth quick call is over. */
	return (stack_up(state, "on", "1/3", "1/3"));
}

static int
teardown(void **state)
{
	tu_stack_free(*state);
	F = NULL;
	return (0);
}

/* An RPC with tok as the key (NULL: none); res is the caller's to fini. */
static int
rpc_as(const char *tok, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req, ProtobufCMessage **resp,
    struct aff_call_result *res)
{
	char bearer[160];
	struct aff_metadata md = { "authorization", bearer };
	struct aff_call_opts o = { 0 };

	if (tok != NULL) {
		snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
		o.metadata = &md;
		o.n_metadata = 1;
	}
	return (aff_client_call(F->ts.client, svc, method, req, &o, resp, res));
}

/* The status only. */
static int
rpc_code(const char *tok, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req)
{
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	int rv = rpc_as(tok, svc, method, req, &resp, &res);

	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	aff_call_result_fini(&res);
	return (rv);
}

/* An HTTP call with tok as the bearer key (NULL: none); returns the
 * status, r is the caller's to fini. */
static int
http_as(const char *tok, const char *method, const char *target,
    const char *body, struct tu_http_response *r)
{
	char hdr[200] = "";

	if (tok != NULL)
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", tok);
	assert_int_equal(tu_http(F->port, method, target, hdr, body, r), 0);
	return (r->status);
}

static int
http_code(const char *tok, const char *method, const char *target,
    const char *body)
{
	struct tu_http_response r;
	int st = http_as(tok, method, target, body, &r);

	tu_http_response_fini(&r);
	return (st);
}

/* A new editor key made by the admin over RPC. */
static void
editor_key(int64_t editor, char tok[AUTH_TOKEN_MAX])
{
	Affiliate__V1__CreateKeyRequest req = AFFILIATE__V1__CREATE_KEY_REQUEST__INIT;
	Affiliate__V1__CreateKeyResponse *resp = NULL;
	struct aff_call_result res;

	req.editor_id = editor;
	assert_int_equal(rpc_as(admin_tok, KEYS, "CreateKey", &req.base,
	                     (ProtobufCMessage **)&resp, &res),
	    AFF_OK);
	assert_string_equal(resp->key->role, "editor");
	assert_int_equal(resp->key->editor_id, editor);
	assert_true(strlen(resp->token) < AUTH_TOKEN_MAX);
	snprintf(tok, AUTH_TOKEN_MAX, "%s", resp->token);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	aff_call_result_fini(&res);
}

static int
post_order(const char *secret, const char *order_id, int adv, int editor)
{
	char body[256], sig[128], hdr[200];
	struct tu_http_response r;
	int st;

	snprintf(body, sizeof(body),
	    "{\"order_id\":\"%s\",\"advertiser_id\":%d,\"editor_id\":%d,"
	    "\"amount\":10,\"commission\":1}",
	    order_id, adv, editor);
	aff_webhook_sign(secret, (const uint8_t *)body, strlen(body),
	    aff_now_ms() / 1000, sig);
	snprintf(hdr, sizeof(hdr), "X-Partner-Signature: %s\r\n", sig);
	assert_int_equal(
	    tu_http(F->port, "POST", "/webhook/orders", hdr, body, &r), 0);
	st = r.status;
	tu_http_response_fini(&r);
	return (st);
}

/* The same over RPC (a partner's binary client). */
static int
post_order_rpc(const char *secret, const char *order_id, int adv, int editor)
{
	Affiliate__V1__ReceiveWebhookRequest req =
	    AFFILIATE__V1__RECEIVE_WEBHOOK_REQUEST__INIT;
	char body[256], sig[128];

	snprintf(body, sizeof(body),
	    "{\"order_id\":\"%s\",\"advertiser_id\":%d,\"editor_id\":%d,"
	    "\"amount\":10,\"commission\":1}",
	    order_id, adv, editor);
	aff_webhook_sign(secret, (const uint8_t *)body, strlen(body), 0, sig);
	req.body.data = (uint8_t *)body;
	req.body.len = strlen(body);
	req.signature = sig;
	return (rpc_code(NULL, ORD, "ReceiveWebhook", &req.base));
}

static long long
rows(const char *sql)
{
	return (tu_sql_int(F->db, sql));
}

/* Every element of the JSON array in body has field == want. */
static size_t
all_have(const char *body, const char *field, long long want)
{
	json_error_t e;
	json_t *j = json_loads(body, 0, &e), *v;
	size_t i;

	assert_non_null(j);
	assert_true(json_is_array(j));
	json_array_foreach(j, i, v)
		assert_int_equal(json_integer_value(json_object_get(v, field)), want);
	i = json_array_size(j);
	json_decref(j);
	return (i);
}

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

static void
test_keys_are_admin_only_shown_once_and_stored_as_hashes(void **state)
{
	Affiliate__V1__CreateKeyRequest ck = AFFILIATE__V1__CREATE_KEY_REQUEST__INIT;
	Affiliate__V1__ListKeysRequest lk = AFFILIATE__V1__LIST_KEYS_REQUEST__INIT;
	Affiliate__V1__ListKeysResponse *list = NULL;
	struct aff_call_result res;
	char tok[AUTH_TOKEN_MAX], sql[256];

	(void)state;
	editor_key(3, tok);
	/* aff_<id>_<64 hex>, and only the SHA-256 of the secret is stored. */
	assert_int_equal(strncmp(tok, "aff_", 4), 0);
	assert_int_equal(strlen(strrchr(tok, '_') + 1), 64);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM api_keys WHERE length(secret_sha256) = 32"
	    " AND instr(CAST(secret_sha256 AS TEXT), '%s') = 0",
	    strrchr(tok, '_') + 1);
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
		    " 'create-key-once'"
		    " AND instr(reply, '%s') = 0",
		    strrchr(r1->token, '_') + 1);
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
	char t2[AUTH_TOKEN_MAX], sql[128];

	(void)state;
	editor_key(2, t2);
	assert_int_equal(http_code(t2, "GET", "/orders", NULL), 200);
	/* A row the server would never write (its foreign key stops it),
	 * written behind its back: editor_id 0 must not mean "every
	 * editor" to the scoping. */
	snprintf(sql, sizeof(sql), "UPDATE api_keys SET editor_id = 0 WHERE id = %lld",
	    strtoll(t2 + 4, NULL, 10));
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

/* ---- rate limits ---- */

static void
test_over_the_key_limit_is_429_with_ratelimit_headers(void **state)
{
	Affiliate__V1__ListOrdersRequest lo = AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
	struct tu_http_response r;
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	char t1[AUTH_TOKEN_MAX], t2[AUTH_TOKEN_MAX], h[64];
	int st = 0, n;

	(void)state;
	editor_key(1, t1);
	editor_key(2, t2);
	/* A bucket starts full: 3 pass, whatever the timing. */
	for (n = 0; n < 3; n++) {
		assert_int_equal(http_as(t1, "GET", "/orders", NULL, &r), 200);
		assert_string_equal(tu_http_header(&r, "RateLimit-Limit", h,
		                        sizeof(h)),
		    "3");
		assert_non_null(tu_http_header(&r, "RateLimit-Remaining", h,
		    sizeof(h)));
		assert_non_null(tu_http_header(&r, "RateLimit-Reset", h, sizeof(h)));
		tu_http_response_fini(&r);
	}
	/* One a second refills: a few quick calls more meet the limit. */
	for (n = 0; n < 20 && st != 429; n++) {
		st = http_as(t1, "GET", "/orders", NULL, &r);
		if (st == 429) {
			assert_non_null(strstr(r.body, "RESOURCE_EXHAUSTED"));
			assert_true(atoi(tu_http_header(&r, "Retry-After", h,
			                sizeof(h))) >= 1);
			assert_string_equal(tu_http_header(&r, "RateLimit-Remaining",
			                        h, sizeof(h)),
			    "0");
		}
		tu_http_response_fini(&r);
	}
	assert_int_equal(st, 429);
	/* The same key over RPC: RESOURCE_EXHAUSTED with the metadata. */
	assert_int_equal(rpc_as(t1, ORD, "ListOrders", &lo.base, &resp, &res),
	    AFF_RESOURCE_EXHAUSTED);
	assert_non_null(aff_call_result_metadata(&res, "retry-after"));
	assert_string_equal(aff_call_result_metadata(&res, "ratelimit-limit"),
	    "3");
	aff_call_result_fini(&res);
	/* Another key has its own bucket. */
	assert_int_equal(rpc_code(t2, ORD, "ListOrders", &lo.base), AFF_OK);
	assert_int_equal(http_code(t2, "GET", "/orders", NULL), 200);
}

static void
test_over_the_address_limit_is_429_for_calls_without_a_key(void **state)
{
	char id[32];
	int st = 0, n;

	(void)state;
	/* Webhooks and health count per address (all 127.0.0.1 here). */
	for (n = 0; n < 24 && st != 429; n++) {
		snprintf(id, sizeof(id), "RL-%d", n);
		st = post_order(SECRET, id, 2, 1);
		assert_true(st == 201 || st == 429);
	}
	assert_int_equal(st, 429);
	assert_int_equal(rows("SELECT count(*) FROM orders WHERE order_id LIKE "
	                      "'RL-%'"),
	    n - 1);
	/* A call without a key is also refused by its address, before the
	 * 401, so keys cannot be guessed at full speed. */
	assert_int_equal(http_code("aff_1_bad", "GET", "/orders", NULL), 429);
}

/* A call without a key, as a bridge forwarding a client at fwd. */
static int
rpc_from(const char *fwd)
{
	Affiliate__V1__ListOrdersRequest lo = AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
	struct aff_metadata md = { "x-forwarded-for", fwd };
	struct aff_call_opts o = { .metadata = &md, .n_metadata = 1 };
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	int rv;

	rv = aff_client_call(F->ts.client, ORD, "ListOrders", &lo.base, &o, &resp,
	    &res);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	aff_call_result_fini(&res);
	return (rv);
}

static void
test_ipv6_clients_are_limited_by_their_64_prefix(void **state)
{
	char fwd[64];
	int rv = AFF_UNAUTHENTICATED, n;

	(void)state;
	/* A new address of its /64 for every call is still one client
	 * (the test's loopback connection is a trusted bridge). */
	for (n = 0; n < 20 && rv == AFF_UNAUTHENTICATED; n++) {
		snprintf(fwd, sizeof(fwd), "2001:db8:0:7::%x", n + 1);
		rv = rpc_from(fwd);
	}
	assert_int_equal(rv, AFF_RESOURCE_EXHAUSTED);
	assert_true(n >= 4); /* 3 at once, and one a second */
	/* Another /64 is another client; IPv4 addresses stay apart. */
	assert_int_equal(rpc_from("2001:db8:0:8::1"), AFF_UNAUTHENTICATED);
	assert_int_equal(rpc_from("198.51.100.7"), AFF_UNAUTHENTICATED);
	assert_int_equal(rpc_from("198.51.100.8"), AFF_UNAUTHENTICATED);
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

/* ---- huge envelopes ---- */

/* The peak resident size of this process (server and bridge run in it),
 * in MiB. */
static long
peak_rss_mib(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return (kb / 1024);
}

static void
test_an_envelope_of_countless_tiny_fields_is_refused_unread(void **state)
{
	static const char head[] = "\x0a\x1a" "affiliate.v1.HealthService"
	                           "\x12\x05" "Check";
	size_t n = 500000, len = sizeof(head) - 1 + 2 * n, outlen;
	Affiliate__V1__ReplyEnvelope *rep;
	uint8_t *buf = malloc(len), *out;
	long before = peak_rss_mib();

	(void)state;
	/* 500,000 empty metadata entries in 1 MB: each would cost protobuf-c
	 * ~50 bytes unpacked, so one call ~25 MiB per handler thread. */
	assert_non_null(buf);
	memcpy(buf, head, sizeof(head) - 1);
	for (size_t i = 0; i < n; i++)
		memcpy(buf + sizeof(head) - 1 + 2 * i, "\x32\x00", 2);
	out = tu_raw_call(F->ts.url, buf, len, 10000, &outlen);
	free(buf);
	fprintf(stderr, "test_security: peak RSS %ld -> %ld MiB around the "
	                "1 MB envelope of 500,000 metadata entries\n",
	    before, peak_rss_mib());
	assert_non_null(out);
	rep = affiliate__v1__reply_envelope__unpack(NULL, outlen, out);
	assert_non_null(rep);
	assert_int_equal(rep->code, AFF_INVALID_ARGUMENT);
	assert_non_null(strstr(rep->message, "too many fields"));
	affiliate__v1__reply_envelope__free_unpacked(rep, NULL);
	free(out);
	/* A normal call still works. */
	assert_int_equal(http_code(NULL, "GET", "/", NULL), 200);
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

/* ---- hygiene: hostile text in every text field of every endpoint ---- */

/* A fingerprint of every table the API writes. */
static void
db_state(char *out, size_t cap)
{
	snprintf(out, cap, "%lld/%lld/%lld/%lld/%lld/%lld/%lld",
	    rows("SELECT count(*) FROM applications"),
	    rows("SELECT count(*) FROM application_events"),
	    rows("SELECT count(*) FROM orders WHERE order_id NOT IN ("
	         "''' OR 1=1 --', '1; DROP TABLE orders; --')"),
	    rows("SELECT count(*) FROM api_keys"),
	    rows("SELECT count(*) FROM webhook_secrets"),
	    rows("SELECT count(*) + sum(length(name)) FROM advertisers"),
	    rows("SELECT version FROM catalog_version"));
}

/* Hostile values, as raw bytes: n of them. */
static const char *const hostile[] = {
	"' OR 1=1 --",
	"1; DROP TABLE orders; --",
	"\") OR (\"1\"=\"1",
	"nul\0byte",
	"bad \xff\xfe utf-8",
	"\xc0\xaf overlong",
	"\xed\xa0\x80 surrogate",
};
#define N_HOSTILE (sizeof(hostile) / sizeof(hostile[0]))
#define BIG_LEN 10240

/* hostile[i]'s length (NUL bytes included). */
static size_t
hostile_len(size_t i)
{
	return (i == 3 ? 9 : strlen(hostile[i]));
}

/* Percent-encodes n bytes of s into out. */
static void
pct(const char *s, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		out += sprintf(out, "%%%02X", (unsigned char)s[i]);
	*out = '\0';
}

/* Checks a 4xx JSON error: its code and a message, nothing crashed. */
static void
check_clear_error(const struct tu_http_response *r, const char *what)
{
	json_error_t e;
	json_t *j;

	if (r->status < 400 || r->status > 431)
		fprintf(stderr, "%s: %d %s\n", what, r->status, r->body);
	assert_true(r->status >= 400 && r->status <= 431);
	j = json_loads(r->body, 0, &e);
	assert_non_null(j);
	assert_true(json_is_string(json_object_get(json_object_get(j, "error"),
	    "code")));
	assert_true(strlen(json_string_value(json_object_get(
	                json_object_get(j, "error"), "message"))) > 0);
	json_decref(j);
}

static void
test_hostile_text_in_every_rest_field_is_a_clear_error(void **state)
{
	static const char *const query[] = {
		"/advertisers?editor_id=%s", "/advertisers?limit=%s",
		"/advertisers?after=%s", "/advertisers/%s",
		"/advertisers/2?editor_id=%s", "/applications?editor_id=%s",
		"/applications?status=%s", "/applications?limit=%s",
		"/applications?after=%s", "/applications/%s",
		"/orders?editor_id=%s", "/orders?advertiser_id=%s",
		"/orders?status=%s", "/orders?limit=%s", "/orders?after=%s",
	};
	static const char *const json_body[] = {
		"{\"advertiser_id\":\"%s\",\"editor_id\":1}",
		"{\"advertiser_id\":2,\"editor_id\":\"%s\"}",
		"{\"advertiser_id\":2,\"editor_id\":1,\"%s\":1}",
	};
	static const char *const webhook[] = {
		"{\"order_id\":\"H-1\",\"advertiser_id\":\"%s\",\"editor_id\":1,"
		"\"amount\":1,\"commission\":0}",
		"{\"order_id\":\"H-1\",\"advertiser_id\":2,\"user_id\":\"%s\","
		"\"amount\":1,\"commission\":0}",
		"{\"order_id\":\"H-1\",\"advertiser_id\":2,\"editor_id\":1,"
		"\"amount\":\"%s\",\"commission\":0}",
		"{\"order_id\":\"H-1\",\"advertiser_id\":2,\"editor_id\":1,"
		"\"amount\":1,\"commission\":\"%s\"}",
		"{\"order_id\":\"H-1\",\"advertiser_id\":2,\"editor_id\":1,"
		"\"amount\":1,\"commission\":0,\"currency\":\"%s\"}",
		"{\"order_id\":\"H-1\",\"advertiser_id\":2,\"editor_id\":1,"
		"\"amount\":1,\"commission\":0,\"status\":\"%s\"}",
		"{\"order_id\":\"%s\",\"advertiser_id\":2,\"editor_id\":1,"
		"\"amount\":1,\"commission\":0}",
	};
	char before[256], after[256], *val, *enc, *target, *body, *hdr;
	char sig[128];
	struct tu_http_response r;
	long long orders_before;

	(void)state;
	val = malloc(BIG_LEN + 1);
	enc = malloc(3 * BIG_LEN + 1);
	target = malloc(3 * BIG_LEN + 256);
	body = malloc(BIG_LEN + 512);
	hdr = malloc(BIG_LEN + 256);
	assert_true(val && enc && target && body && hdr);
	db_state(before, sizeof(before));
	orders_before = rows("SELECT count(*) FROM orders");
	for (size_t i = 0; i <= N_HOSTILE; i++) {
		/* The last round: a 10 kB string. */
		size_t n = i < N_HOSTILE ? hostile_len(i) : BIG_LEN;
		if (i < N_HOSTILE)
			memcpy(val, hostile[i], n);
		else
			memset(val, 'x', n);
		val[n] = '\0';
		/* Query and path parameters, percent-encoded. */
		pct(val, n, enc);
		for (size_t q = 0; q < sizeof(query) / sizeof(query[0]); q++) {
			snprintf(target, 3 * BIG_LEN + 256, query[q], enc);
			(void)http_as(admin_tok, "GET", target, NULL, &r);
			check_clear_error(&r, target);
			tu_http_response_fini(&r);
		}
		/* JSON bodies: the value as raw bytes in a JSON string. */
		for (size_t b = 0; b < sizeof(json_body) / sizeof(json_body[0]);
		     b++) {
			size_t len;
			snprintf(body, BIG_LEN + 512, json_body[b], "");
			len = strlen(body);
			/* Splice the raw bytes (NUL included) into the "" hole. */
			snprintf(body, BIG_LEN + 512, json_body[b], "\x01");
			{
				char *hole = memchr(body, 1, len + 1);
				memmove(hole + n, hole + 1, strlen(hole + 1) + 1);
				memcpy(hole, val, n);
				len += n;
			}
			snprintf(hdr, BIG_LEN + 256,
			    "Authorization: Bearer %s\r\nContent-Type: "
			    "application/json\r\n",
			    admin_tok);
			{
				char *req = malloc(len + 1024);
				int k = snprintf(req, 1024,
				    "POST /applications HTTP/1.1\r\nHost: x\r\n"
				    "Connection: close\r\n%sContent-Length: %zu\r\n\r\n",
				    hdr, len);
				memcpy(req + k, body, len);
				assert_int_equal(tu_http_raw(F->port, req, (size_t)k + len,
				                     10000, &r),
				    0);
				free(req);
			}
			check_clear_error(&r, body);
			tu_http_response_fini(&r);
		}
		/* Webhook bodies, correctly signed over the raw bytes. */
		for (size_t w = 0; w < sizeof(webhook) / sizeof(webhook[0]); w++) {
			size_t len;
			char *req, *hole;
			int k;
			snprintf(body, BIG_LEN + 512, webhook[w], "\x01");
			len = strlen(body);
			hole = memchr(body, 1, len);
			memmove(hole + n, hole + 1, strlen(hole + 1) + 1);
			memcpy(hole, val, n);
			len += n - 1;
			aff_webhook_sign(SECRET, (const uint8_t *)body, len, 0, sig);
			req = malloc(len + 1024);
			k = snprintf(req, 1024,
			    "POST /webhook/orders HTTP/1.1\r\nHost: x\r\n"
			    "Connection: close\r\nX-Partner-Signature: %s\r\n"
			    "Content-Length: %zu\r\n\r\n",
			    sig, len);
			memcpy(req + k, body, len);
			assert_int_equal(
			    tu_http_raw(F->port, req, (size_t)k + len, 10000, &r), 0);
			free(req);
			/* An order_id of plain text that is only SQL-looking is
			 * a valid id: stored as it is, nothing else touched. */
			if (w == sizeof(webhook) / sizeof(webhook[0]) - 1 && i < 2) {
				if (r.status != 201)
					fprintf(stderr, "%s\n", r.body);
				assert_int_equal(r.status, 201);
			}
			else
				check_clear_error(&r, body);
			tu_http_response_fini(&r);
		}
		/* Headers: the key and the signature (printable values only:
		 * a header cannot hold NUL or line breaks). */
		if (i < 3 || i == N_HOSTILE) {
			snprintf(hdr, BIG_LEN + 256, "Authorization: Bearer %s\r\n",
			    val);
			assert_int_equal(tu_http(F->port, "GET", "/orders", hdr, NULL,
			                     &r),
			    0);
			check_clear_error(&r, "authorization");
			assert_null(strstr(r.body, val));
			tu_http_response_fini(&r);
			snprintf(hdr, BIG_LEN + 256, "X-Partner-Signature: %s\r\n",
			    val);
			assert_int_equal(tu_http(F->port, "POST", "/webhook/orders", hdr,
			                     "{\"order_id\":\"H-2\",\"advertiser_id\":2,"
			                     "\"editor_id\":1,\"amount\":1,"
			                     "\"commission\":0}",
			                     &r),
			    0);
			assert_int_equal(r.status, 401);
			check_clear_error(&r, "signature");
			tu_http_response_fini(&r);
		}
	}
	/* Nothing else written; the two ids stored exactly as sent. */
	db_state(after, sizeof(after));
	assert_string_equal(before, after);
	assert_int_equal(rows("SELECT count(*) FROM orders WHERE order_id IN "
	                      "(''' OR 1=1 --', '1; DROP TABLE orders; --')"),
	    2);
	assert_int_equal(rows("SELECT count(*) FROM orders"), orders_before + 2);
	free(val);
	free(enc);
	free(target);
	free(body);
	free(hdr);
}

/* Sets string field f of m to s[0..n) (arena-free: s must outlive m). */
static void
set_string(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, char *s)
{
	*(char **)(void *)((char *)m + f->offset) = s;
}

static void
test_hostile_text_in_every_rpc_string_field_is_refused(void **state)
{
	static const ProtobufCServiceDescriptor *const svcs[] = { ADV, APP, ORD,
		KEYS, WHS, &affiliate__v1__health_service__descriptor };
	char before[256], after[256], *val;
	size_t n_checked = 0;

	(void)state;
	val = malloc(BIG_LEN + 1);
	assert_non_null(val);
	db_state(before, sizeof(before));
	for (size_t sv = 0; sv < sizeof(svcs) / sizeof(svcs[0]); sv++)
		for (unsigned m = 0; m < svcs[sv]->n_methods; m++) {
			const ProtobufCMethodDescriptor *md = &svcs[sv]->methods[m];
			for (unsigned fi = 0; fi < md->input->n_fields; fi++) {
				const ProtobufCFieldDescriptor *f = &md->input->fields[fi];
				if (f->type != PROTOBUF_C_TYPE_STRING)
					continue;
				for (size_t i = 0; i <= N_HOSTILE; i++) {
					ProtobufCMessage *req = calloc(1, md->input->sizeof_message);
					struct aff_call_result res;
					ProtobufCMessage *resp = NULL;
					uint8_t *buf;
					size_t len;
					int rv;

					size_t n = i < N_HOSTILE ? hostile_len(i) : BIG_LEN;
					if (i < N_HOSTILE)
						memcpy(val, hostile[i], n);
					else
						memset(val, 'x', n);
					val[n] = '\0';
					md->input->message_init(req);
					set_string(req, f, val);
					/* Packed by hand: protobuf-c stops a string at a NUL,
					 * a client in another language would not. */
					len = protobuf_c_message_get_packed_size(req);
					buf = malloc(len + n + 16);
					protobuf_c_message_pack(req, buf);
					if (i == 3) { /* rewrite as the 9 raw bytes */
						size_t h = 0;
						buf[h++] = (uint8_t)(f->id << 3 | 2);
						buf[h++] = (uint8_t)n;
						memcpy(buf + h, val, n);
						len = h + n;
					}
					{
						char bearer[160];
						struct aff_metadata mdt = { "authorization", bearer };
						struct aff_call_opts o = { 0 };
						snprintf(bearer, sizeof(bearer), "Bearer %s",
						    admin_tok);
						o.metadata = &mdt;
						o.n_metadata = 1;
						rv = aff_client_invoke(F->ts.client, svcs[sv]->name,
						    md->name, buf, len, &o, &res);
					}
					if (rv == AFF_OK)
						fprintf(stderr, "%s/%s %s #%zu accepted\n",
						    svcs[sv]->name, md->name, f->name, i);
					assert_true(rv == AFF_INVALID_ARGUMENT ||
					    rv == AFF_UNAUTHENTICATED || rv == AFF_NOT_FOUND);
					assert_true(strlen(res.message) > 0);
					if (i >= 3 && i < N_HOSTILE)
						assert_non_null(strstr(res.message, "UTF-8"));
					aff_call_result_fini(&res);
					(void)resp;
					free(buf);
					free(req);
					n_checked++;
				}
			}
		}
	/* ListApplications.status, ListOrders.status and .after,
	 * ReceiveWebhook.signature, HealthCheck.service. */
	assert_int_equal(n_checked, 5 * (N_HOSTILE + 1));
	/* The envelope's own text: metadata and the request id. */
	for (size_t i = 3; i < N_HOSTILE; i++) {
		Affiliate__V1__ListOrdersRequest lo =
		    AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
		char bearer[200];
		struct aff_metadata mdt = { "authorization", bearer };
		struct aff_call_opts o = { 0 };
		struct aff_call_result res;
		ProtobufCMessage *resp = NULL;
		snprintf(bearer, sizeof(bearer), "Bearer %s%s", admin_tok,
		    hostile[i]);
		o.metadata = &mdt;
		o.n_metadata = 1;
		assert_int_equal(aff_client_call(F->ts.client, ORD, "ListOrders",
		                     &lo.base, &o, &resp, &res),
		    i == 3 ? AFF_UNAUTHENTICATED : AFF_INVALID_ARGUMENT);
		aff_call_result_fini(&res);
	}
	db_state(after, sizeof(after));
	assert_string_equal(before, after);
	free(val);
}

/* ---- protected mode (inside a network namespace) ---- */

static int in_netns;

/* A server on listen_url and a bridge on bridge_listen in front of it,
 * both made here (testutil's listen on loopback only). */
struct pm {
	struct server_config cfg;
	server *srv;
	struct bridge_config bcfg;
	bridge *b;
	aff_client *client;
	char *dir;
	int port;
};

static void
pm_start(struct pm *p, const char *host, const char *bridge_host,
    const char *auth, const char *addr_limit)
{
	struct aff_client_opts co = { 0 };
	int help;

	memset(p, 0, sizeof(*p));
	env_set(auth, "off", addr_limit);
	unsetenv("AFFILIATE_LISTEN");
	unsetenv("AFFILIATE_URL");
	unsetenv("AFFILIATE_BRIDGE_LISTEN");
	assert_int_equal(server_config_load(&p->cfg, 0, NULL, &help), AFF_OK);
	assert_int_equal(bridge_config_load(&p->bcfg, 0, NULL, &help), AFF_OK);
	env_clear();
	assert_non_null(p->dir = tu_tmpdir());
	snprintf(p->cfg.listen_url, sizeof(p->cfg.listen_url), "tcp://%s:%d",
	    host, tu_free_port());
	snprintf(p->cfg.data_dir, sizeof(p->cfg.data_dir), "%s", p->dir);
	snprintf(p->cfg.jobs_url, sizeof(p->cfg.jobs_url), "ipc://%s/j", p->dir);
	snprintf(p->cfg.results_url, sizeof(p->cfg.results_url), "ipc://%s/r",
	    p->dir);
	p->cfg.redis_host[0] = '\0';
	p->cfg.threads = 2;
	p->cfg.log_level = AFF_LOG_ERROR;
	assert_int_equal(server_start(&p->cfg, &p->srv), AFF_OK);
	co.url = p->cfg.listen_url;
	co.wait_connected = 1;
	assert_int_equal(aff_client_open(&p->client, &co), AFF_OK);
	p->port = tu_free_port();
	snprintf(p->bcfg.listen, sizeof(p->bcfg.listen), "%s:%d", bridge_host,
	    p->port);
	snprintf(p->bcfg.server_url, sizeof(p->bcfg.server_url), "%s",
	    p->cfg.listen_url);
	p->bcfg.threads = 4;
	p->bcfg.log_level = AFF_LOG_ERROR;
	assert_int_equal(bridge_start(&p->bcfg, &p->b), AFF_OK);
}

static void
pm_stop(struct pm *p)
{
	bridge_stop(p->b);
	aff_client_close(p->client);
	server_stop(p->srv);
	tu_rmtree(p->dir);
	free(p->dir);
}

/* GET target from the bridge at host:port; the status. */
static int
pm_get(const char *host, int port, const char *target)
{
	struct sockaddr_in sa = { 0 };
	char req[256], buf[64];
	int fd, n, st = -1;

	snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	if ((n = (int)read(fd, buf, sizeof(buf) - 1)) > 12) {
		buf[n] = '\0';
		st = atoi(buf + 9);
	}
	close(fd);
	return (st);
}

static int
pm_rpc(struct pm *p, const char *fwd)
{
	Affiliate__V1__ListOrdersRequest lo = AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
	struct aff_metadata md = { "x-forwarded-for", fwd };
	struct aff_call_opts o = { 0 };
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	int rv;

	if (fwd != NULL) {
		o.metadata = &md;
		o.n_metadata = 1;
	}
	rv = aff_client_call(p->client, ORD, "ListOrders", &lo.base, &o, &resp,
	    &res);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	aff_call_result_fini(&res);
	return (rv);
}

static void
test_keys_are_required_on_a_non_loopback_rpc_listener(void **state)
{
	struct pm p;

	(void)state;
	if (!in_netns)
		skip();
	pm_start(&p, NETNS_ADDR, "127.0.0.1", "auto", "off");
	assert_int_equal(pm_rpc(&p, NULL), AFF_UNAUTHENTICATED);
	/* Even through a loopback bridge: the server is exposed anyway. */
	assert_int_equal(pm_get("127.0.0.1", p.port, "/orders"), 401);
	assert_int_equal(pm_get("127.0.0.1", p.port, "/"), 200);
	pm_stop(&p);
	/* An explicit off is obeyed (and warned about). */
	pm_start(&p, NETNS_ADDR, "127.0.0.1", "off", "off");
	assert_int_equal(pm_rpc(&p, NULL), AFF_OK);
	pm_stop(&p);
}

static void
test_a_non_loopback_bridge_makes_the_server_require_keys(void **state)
{
	struct pm p;

	(void)state;
	if (!in_netns)
		skip();
	/* The server on loopback: open to local RPC clients... */
	pm_start(&p, "127.0.0.1", NETNS_ADDR, "auto", "off");
	assert_int_equal(pm_rpc(&p, NULL), AFF_OK);
	/* ...but not through a bridge other hosts can reach. */
	assert_int_equal(pm_get(NETNS_ADDR, p.port, "/orders"), 401);
	assert_int_equal(pm_get(NETNS_ADDR, p.port, "/applications"), 401);
	assert_int_equal(pm_get(NETNS_ADDR, p.port, "/"), 200);
	pm_stop(&p);
	/* Every interface ("0.0.0.0") counts as exposed too. */
	pm_start(&p, "127.0.0.1", "0.0.0.0", "auto", "off");
	assert_int_equal(pm_get("127.0.0.1", p.port, "/orders"), 401);
	pm_stop(&p);
	/* A loopback bridge in front of a loopback server: open. */
	pm_start(&p, "127.0.0.1", "127.0.0.1", "auto", "off");
	assert_int_equal(pm_get("127.0.0.1", p.port, "/orders"), 200);
	pm_stop(&p);
}

static void
test_a_binary_client_cannot_spoof_its_address(void **state)
{
	char fwd[32];
	int rv = AFF_OK, n;
	struct pm p;

	(void)state;
	if (!in_netns)
		skip();
	/* Auth off, so calls need no key and count per address: a client
	 * on 192.0.2.1 is not a trusted bridge, its x-forwarded-for is
	 * ignored and every call lands in its own one bucket. */
	pm_start(&p, NETNS_ADDR, "127.0.0.1", "off", "1/3");
	for (n = 0; n < 20 && rv == AFF_OK; n++) {
		snprintf(fwd, sizeof(fwd), "10.0.0.%d", n);
		rv = pm_rpc(&p, fwd);
	}
	assert_int_equal(rv, AFF_RESOURCE_EXHAUSTED);
	assert_true(n >= 4);
	pm_stop(&p);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest auth[] = {
		cmocka_unit_test(test_no_key_or_a_bad_key_is_401_with_www_authenticate),
		cmocka_unit_test(
		    test_keys_are_admin_only_shown_once_and_stored_as_hashes),
		cmocka_unit_test(test_a_revoked_key_stops_working_at_once),
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
		cmocka_unit_test(
		    test_an_envelope_of_countless_tiny_fields_is_refused_unread),
		cmocka_unit_test(
		    test_hostile_text_in_every_rest_field_is_a_clear_error),
		cmocka_unit_test(
		    test_hostile_text_in_every_rpc_string_field_is_refused),
	};
	const struct CMUnitTest limits[] = {
		cmocka_unit_test(
		    test_over_the_key_limit_is_429_with_ratelimit_headers),
		cmocka_unit_test(
		    test_over_the_address_limit_is_429_for_calls_without_a_key),
		cmocka_unit_test(test_ipv6_clients_are_limited_by_their_64_prefix),
	};
	const struct CMUnitTest protected[] = {
		cmocka_unit_test(
		    test_keys_are_required_on_a_non_loopback_rpc_listener),
		cmocka_unit_test(
		    test_a_non_loopback_bridge_makes_the_server_require_keys),
		cmocka_unit_test(test_a_binary_client_cannot_spoof_its_address),
	};
	int failed = 0;

	(void)argc;
	/* Run again inside a network namespace of our own, where a
	 * non-loopback address exists and no packet can leave. */
	in_netns = getenv("AFF_TEST_NETNS") != NULL;
	if (!in_netns &&
	    system("unshare -rn sh -c '" NETNS_SETUP "' >/dev/null 2>&1") == 0) {
		execlp("unshare", "unshare", "-rn", "sh", "-c",
		    NETNS_SETUP " && AFF_TEST_NETNS=1 exec \"$0\"", argv[0],
		    (char *)NULL);
		perror("unshare");
	}
	if (!in_netns)
		fprintf(stderr, "test_security: no network namespace here: the "
		                "protected-mode tests are skipped\n");
	failed += cmocka_run_group_tests_name("auth", auth, setup_auth_on,
	    teardown);
	failed += cmocka_run_group_tests_name("limits", limits, setup_limits,
	    teardown);
	failed += cmocka_run_group_tests_name("protected", protected, NULL, NULL);
	return (failed);
}
