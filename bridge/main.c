/*
 * main.c - affiliate-bridge: the JSON REST API and partner webhooks, over
 * affiliate-server's RPCs. Runs until SIGINT or SIGTERM.
 */
#include <stdio.h>
#include <unistd.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_signal.h"
#include "bridge.h"

int
main(int argc, char **argv)
{
	struct bridge_config cfg;
	bridge *b;
	sigset_t set;
	int help, rv;

	aff_log_init("affiliate-bridge");
	if (bridge_config_load(&cfg, argc, argv, &help) != AFF_OK)
		return (2);
	if (help)
		return (0);
	aff_signal_block(&set);
	if ((rv = bridge_start(&cfg, &b)) != AFF_OK) {
		aff_error("bridge: cannot start: %s", aff_strerror(rv));
		return (1);
	}
	aff_info("bridge: ready (pid %d); SIGINT or SIGTERM stops it",
	    (int)getpid());
	aff_info("bridge: %s received, stopping", aff_signal_wait(&set));
	bridge_stop(b);
	aff_info("bridge: stopped");
	return (0);
}
