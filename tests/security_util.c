/*
 * security_util.c - the helpers test_security and test_security_input share
 * (see security_util.h).
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

struct tu_stack *F;
char admin_tok[AUTH_TOKEN_MAX];

/* Makes an admin key straight in the database, as affiliate-server
 * --create-admin-key does. */
void
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

void
env_set(const char *auth, const char *key_limit, const char *addr_limit)
{
	setenv("AFFILIATE_WEBHOOK_SECRET", SECRET, 1);
	setenv("AFFILIATE_AUTH", auth, 1);
	setenv("AFFILIATE_RATE_LIMIT", key_limit, 1);
	setenv("AFFILIATE_RATE_LIMIT_ANON", addr_limit, 1);
}

void
env_clear(void)
{
	unsetenv("AFFILIATE_AUTH");
	unsetenv("AFFILIATE_RATE_LIMIT");
	unsetenv("AFFILIATE_RATE_LIMIT_ANON");
}

int
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

int
setup_auth_on(void **state)
{
	return (stack_up(state, "on", "off", "off"));
}

int
setup_limits(void **state)
{
	/* One call a second, three at once: the fourth quick call is over. */
	return (stack_up(state, "on", "1/3", "1/3"));
}

int
teardown(void **state)
{
	tu_stack_free(*state);
	F = NULL;
	return (0);
}

/* An RPC with tok as the key (NULL: none); res is the caller's to fini. */
int
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
int
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
int
http_as(const char *tok, const char *method, const char *target,
    const char *body, struct tu_http_response *r)
{
	char hdr[200] = "";

	if (tok != NULL)
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", tok);
	assert_int_equal(tu_http(F->port, method, target, hdr, body, r), 0);
	return (r->status);
}

int
http_code(const char *tok, const char *method, const char *target,
    const char *body)
{
	struct tu_http_response r;
	int st = http_as(tok, method, target, body, &r);

	tu_http_response_fini(&r);
	return (st);
}

/* A new editor key made by the admin over RPC. */
void
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

int
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
int
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

long long
rows(const char *sql)
{
	return (tu_sql_int(F->db, sql));
}

/* Every element of the JSON array in body has field == want. */
size_t
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
