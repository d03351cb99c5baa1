/*
 * main.c - affiliate-worker: runs jobs pulled from affiliate-server and
 * pushes their results back. Start as many as you like, on any host;
 * SIGINT or SIGTERM stops one (a job it held is pushed again elsewhere
 * after the server's visibility timeout).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_signal.h"
#include "worker.h"

int
main(int argc, char **argv)
{
	struct worker_config cfg;
	worker *w;
	sigset_t set;
	int help, rv;

	aff_log_init("affiliate-worker");
	if (worker_config_load(&cfg, argc, argv, &help) != AFF_OK)
		return (2);
	if (help)
		return (0);
	aff_log_set_level(cfg.log_level);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	aff_signal_block(&set);
	if ((rv = worker_start(&cfg, &w)) != AFF_OK) {
		aff_error("worker: cannot start: %s", aff_strerror(rv));
		return (1);
	}
	aff_info("worker: ready (pid %d)", (int)getpid());
	aff_info("worker: %s received, stopping", aff_signal_wait(&set));
	worker_stop(w);
	aff_info("worker: stopped");
	return (0);
}
