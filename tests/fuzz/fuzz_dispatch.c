/*
 * fuzz_dispatch.c - libFuzzer target: any bytes as an RPC request envelope
 * through the real dispatcher (envelope decode, service and method lookup
 * in the descriptors, payload decode), with stub handlers behind it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aff_err.h"
#include "aff_log.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"
#include "rpc.h"
#include "cw_stack.h"

static int
stub(struct rpc_call *call, const ProtobufCMessage *in, ProtobufCMessage **out)
{
	(void)in;
	(void)out;
	return (rpc_errorf(call, AFF_INVALID_ARGUMENT, "stub"));
}

#define STUBS(name, ...)                                                       \
	static const struct rpc_method_def name[] = { __VA_ARGS__ }

/* Designated: rpc_method_def grows fields (access rules) that a stub
 * leaves at their zero defaults. */
#define STUB(m) { .name = (m), .fn = stub }
STUBS(adv_m, STUB("ListAdvertisers"), STUB("GetAdvertiser"));
STUBS(app_m, STUB("Apply"), STUB("ListApplications"), STUB("GetApplication"));
STUBS(ord_m, STUB("ReceiveWebhook"), STUB("ListOrders"));

static const struct rpc_service_def adv = {
	&affiliate__v1__advertiser_service__descriptor, adv_m, 2
};
static const struct rpc_service_def app = {
	&affiliate__v1__application_service__descriptor, app_m, 3
};
static const struct rpc_service_def ord = {
	&affiliate__v1__order_service__descriptor, ord_m, 2
};
static const struct rpc_service_def health = {
	&affiliate__v1__health_service__descriptor, NULL, 0
};
static const struct rpc_service_def *const defs[] = { &adv, &app, &ord,
	&health };

static struct rpc_thread_env env;

static int
fuzz_one(const uint8_t *data, size_t len)
{
	nng_msg *m;

	if (env.registry == NULL) {
		rpc_registry *r;
		aff_log_set_level(AFF_LOG_ERROR + 1);
		if (rpc_registry_alloc(&r, defs, 4) != AFF_OK)
			abort();
		env.registry = r;
	}
	m = rpc_dispatch(&env, data, len, NULL);
	if (m == NULL)
		abort(); /* every input gets a reply */
	nng_msg_free(m);
	return (0);
}

/* On a stack of civetweb's size (cw_stack.h), the smallest any code here
 * runs on, under libFuzzer and in the replay alike. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	return (cw_stack_run(fuzz_one, data, len));
}
