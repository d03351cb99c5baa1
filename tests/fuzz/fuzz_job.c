/* fuzz_job.c - libFuzzer target: the worker's job decode and handlers on
 * any bytes from the job socket. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aff_log.h"
#include "worker.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct worker_config cfg = { 0 };
	uint8_t *out;
	size_t outlen;

	aff_log_set_level(AFF_LOG_ERROR + 1);
	out = worker_run_job(&cfg, "fuzz", data, len, &outlen, NULL, NULL, NULL);
	free(out);
	return (0);
}
