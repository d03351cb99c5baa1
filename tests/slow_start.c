/*
 * slow_start.c - an LD_PRELOAD shim for test_edge_http: mg_start returns
 * SLOW_START_MS after civetweb has started, so that a real affiliate-bridge
 * listens and reads requests for that long before bridge_start has done
 * anything that follows mg_start. It says so on stderr, which the test
 * reads to know the window was there.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>

#include <civetweb.h>

#define SLOW_START_MS 500

struct mg_context *
mg_start(const struct mg_callbacks *callbacks, void *user_data,
    const char **configuration_options)
{
	struct mg_context *(*real)(const struct mg_callbacks *, void *,
	    const char **);
	struct timespec ts = { SLOW_START_MS / 1000,
		(SLOW_START_MS % 1000) * 1000000L };
	struct mg_context *ctx;

	*(void **)&real = dlsym(RTLD_NEXT, "mg_start");
	ctx = real(callbacks, user_data, configuration_options);
	fprintf(stderr, "slow_start: mg_start held %d ms\n", SLOW_START_MS);
	fflush(stderr);
	nanosleep(&ts, NULL);
	return (ctx);
}
