/*
 * security_util.h - the stack, keys and calls shared by test_security and
 * test_security_input: one server, bridge, SQLite file and redis-server
 * per group, an admin key made in the database, and REST/RPC calls made
 * with a given key.
 */
#ifndef SECURITY_UTIL_H
#define SECURITY_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "affiliate/v1/admin.pb-c.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/rpc.pb-c.h"
#include "auth.h"
#include "testutil.h"

#define SECRET "global-test-secret"

#define ADV (&affiliate__v1__advertiser_service__descriptor)
#define APP (&affiliate__v1__application_service__descriptor)
#define ORD (&affiliate__v1__order_service__descriptor)
#define KEYS (&affiliate__v1__key_service__descriptor)
#define WHS (&affiliate__v1__webhook_secret_service__descriptor)

/* The running group's stack and its admin key (set by the setups). */
extern struct tu_stack *F;
extern char admin_tok[AUTH_TOKEN_MAX];

void env_set(const char *auth, const char *key_limit,
    const char *addr_limit);
void env_clear(void);
void admin_key_make(const char *db, char tok[AUTH_TOKEN_MAX]);
int stack_up(void **state, const char *auth, const char *key_limit,
    const char *addr_limit);
int setup_auth_on(void **state);
int setup_limits(void **state);
int teardown(void **state);
int rpc_as(const char *tok, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req, ProtobufCMessage **resp,
    struct aff_call_result *res);
int rpc_code(const char *tok, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req);
int http_as(const char *tok, const char *method, const char *target,
    const char *body, struct tu_http_response *r);
int http_code(const char *tok, const char *method, const char *target,
    const char *body);
void editor_key(int64_t editor, char tok[AUTH_TOKEN_MAX]);
int post_order(const char *secret, const char *order_id, int adv, int editor);
int post_order_rpc(const char *secret, const char *order_id, int adv,
    int editor);
long long rows(const char *sql);
size_t all_have(const char *body, const char *field, long long want);

#endif
