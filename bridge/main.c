/*
 * main.c - affiliate-bridge: the JSON REST API and partner webhooks, over
 * affiliate-server's RPCs. Runs until SIGINT or SIGTERM.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "aff_err.h"
#include "aff_log.h"
#include "bridge.h"

int
main(int argc, char **argv)
{
	struct bridge_config cfg;
	bridge *b;
	sigset_t set;
	int help, sig, rv;

	aff_log_init("affiliate-bridge");
	if (bridge_config_load(&cfg, argc, argv, &help) != AFF_OK)
		return (2);
	if (help)
		return (0);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((rv = bridge_start(&cfg, &b)) != AFF_OK) {
		aff_error("bridge: cannot start: %s", aff_strerror(rv));
		return (1);
	}
	aff_info("bridge: ready (pid %d); SIGINT or SIGTERM stops it",
	    (int)getpid());
	sigwait(&set, &sig);
	aff_info("bridge: %s received, stopping",
	    sig == SIGINT ? "SIGINT" : "SIGTERM");
	bridge_stop(b);
	aff_info("bridge: stopped");
	return (0);
}
