/*
 * fuzz_forwarded.c - libFuzzer target: what the bridge reads from headers
 * any client writes: the forwarding chain (X-Forwarded-For, Forwarded,
 * behind trusted proxies) and the CORS origin check. The input is header
 * lines "Name: value\n"; the client address that comes out must always be
 * an IP address in text, and one that passes the CORS check can never
 * split a header.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cors.h"
#include "proxy.h"
#include "cw_stack.h"

static int
fuzz_one(const uint8_t *data, size_t len)
{
	struct mg_request_info ri;
	struct proxy_list l;
	struct cors_policy cp;
	char *s = malloc(len + 1), *save = NULL, out[64], err[128];
	uint8_t addr[16];

	if (s == NULL)
		return (0);
	memcpy(s, data, len);
	s[len] = '\0';
	memset(&ri, 0, sizeof(ri));
	strcpy(ri.remote_addr, "127.0.0.1");
	for (char *line = strtok_r(s, "\n", &save);
	     line != NULL && ri.num_headers < 64;
	     line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		ri.http_headers[ri.num_headers].name = line;
		ri.http_headers[ri.num_headers].value = colon + 1;
		ri.num_headers++;
	}
	if (proxy_list_parse("127.0.0.1, 10.0.0.0/8, fd00::/8", &l, err,
	        sizeof(err)) != 0)
		abort();
	(void)proxy_client_address(&l, &ri, out, sizeof(out));
	if (inet_pton(AF_INET, out, addr) != 1 &&
	    inet_pton(AF_INET6, out, addr) != 1)
		abort();
	/* Any value as an origin, and as a policy. */
	if (cors_policy_parse("*", &cp, err, sizeof(err)) != 0)
		abort();
	for (int i = 0; i < ri.num_headers; i++) {
		const char *v = ri.http_headers[i].value;
		if (cors_allows(&cp, v) && strpbrk(v, "\r\n") != NULL)
			abort();
		(void)cors_policy_parse(v, &cp, err, sizeof(err));
		if (cors_allows(&cp, v) && strpbrk(v, "\r\n") != NULL)
			abort();
		cors_policy_parse("*", &cp, err, sizeof(err));
	}
	free(s);
	return (0);
}

/* On a stack of civetweb's size (cw_stack.h), where this runs in the
 * bridge, under libFuzzer and in the replay alike. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	return (cw_stack_run(fuzz_one, data, len));
}
