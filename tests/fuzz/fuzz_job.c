/* fuzz_job.c - libFuzzer target: the worker's job decode and handlers on
 * any bytes from the job socket. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aff_log.h"
#include "worker.h"
#include "cw_stack.h"

static int
fuzz_one(const uint8_t *data, size_t len)
{
	struct worker_config cfg = { 0 };
	uint8_t *out;
	size_t outlen;

	aff_log_set_level(AFF_LOG_ERROR + 1);
	out = worker_run_job(&cfg, "fuzz", data, len, &outlen, NULL, NULL, NULL);
	free(out);
	return (0);
}

/* On a stack of civetweb's size (cw_stack.h), the smallest any code here
 * runs on, under libFuzzer and in the replay alike. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	return (cw_stack_run(fuzz_one, data, len));
}
