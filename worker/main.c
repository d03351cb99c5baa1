/*
 * main.c - affiliate-worker: runs jobs pulled from affiliate-server and
 * pushes their results back. Start as many as you like, on any host;
 * SIGINT or SIGTERM stops one (a job it held is pushed again elsewhere
 * after the server's visibility timeout).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "aff_err.h"
#include "aff_log.h"
#include "worker.h"

int
main(int argc, char **argv)
{
	struct worker_config cfg;
	worker *w;
	sigset_t set;
	int help, sig, rv;

	aff_log_init("affiliate-worker");
	if (worker_config_load(&cfg, argc, argv, &help) != AFF_OK)
		return (2);
	if (help)
		return (0);
	aff_log_set_level(cfg.log_level);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((rv = worker_start(&cfg, &w)) != AFF_OK) {
		aff_error("worker: cannot start: %s", aff_strerror(rv));
		return (1);
	}
	aff_info("worker: ready (pid %d)", (int)getpid());
	sigwait(&set, &sig);
	aff_info("worker: %s received, stopping",
	    sig == SIGINT ? "SIGINT" : "SIGTERM");
	worker_stop(w);
	aff_info("worker: stopped");
	return (0);
}
