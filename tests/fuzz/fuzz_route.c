/* fuzz_route.c - libFuzzer target: the bridge's route matcher on any
 * method and path. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routes.h"
#include "cw_stack.h"

static int
fuzz_one(const uint8_t *data, size_t len)
{
	struct route_match m;
	char *s = malloc(len + 1), *sp;
	int st;

	if (s == NULL)
		return (0);
	memcpy(s, data, len);
	s[len] = '\0';
	sp = strchr(s, ' ');
	if (sp != NULL) {
		*sp = '\0';
		st = route_match(s, sp + 1, &m);
		if (st != 200 && st != 404 && st != 405 && st != 414)
			abort();
		if (st == 200 && m.route == NULL)
			abort();
	}
	free(s);
	return (0);
}

/* On a stack of civetweb's size (cw_stack.h), the smallest any code here
 * runs on, under libFuzzer and in the replay alike. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	return (cw_stack_run(fuzz_one, data, len));
}
