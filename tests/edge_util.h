/*
 * edge_util.h - shared by test_edge_http and test_edge_tls: a real
 * affiliate-server in-process and the real affiliate-bridge binary in
 * front of it, started per test, and the requests the tests make.
 */
#ifndef EDGE_UTIL_H
#define EDGE_UTIL_H

#include <sys/types.h>

#include "testutil.h"

/* The server (in-process) and the bridge binary in front of it. */
struct edge {
	struct tu_server ts;
	pid_t bridge;
	int port;
	char log[600];
};

/* The running test's server and bridge (set by setup). */
extern struct edge *F;

int setup(void **state);
int teardown(void **state);
void bridge_down(void);
void bridge_up_args(const char *const *extra, int tls);
void bridge_up(const char *const *extra);
void req(struct tu_http_response *r, const char *method, const char *target,
    const char *headers, const char *body, int want);
char *repeat(const char *open, int n, const char *mid, const char *close);
int conn_open(int port);

#endif
