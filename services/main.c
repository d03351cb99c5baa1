/*
 * main.c - affiliate-server: the RPC services over NNG, with SQLite as the
 * system of record and Redis as cache. Runs until SIGINT or SIGTERM.
 */
#include <stdio.h>
#include <unistd.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_signal.h"
#include "server.h"

int
main(int argc, char **argv)
{
	struct server_config cfg;
	server *srv;
	sigset_t set;
	int help, rv;

	aff_log_init("affiliate-server");
	if (server_config_load(&cfg, argc, argv, &help) != AFF_OK)
		return (2);
	if (help)
		return (0);
	/* Block the stop signals before any thread starts, so every thread
	 * inherits the mask and sigwait below is the one place they land. */
	aff_signal_block(&set);

	if ((rv = server_start(&cfg, &srv)) != AFF_OK) {
		aff_error("server: cannot start: %s", aff_strerror(rv));
		return (1);
	}
	aff_info("server: ready (pid %d); SIGINT or SIGTERM stops it",
	    (int)getpid());
	aff_info("server: %s received, stopping", aff_signal_wait(&set));
	server_stop(srv);
	aff_info("server: stopped");
	return (0);
}
