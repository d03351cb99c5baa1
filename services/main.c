/*
 * main.c - affiliate-server: the RPC services over NNG, with SQLite as the
 * system of record and Redis as cache. Runs until SIGINT or SIGTERM.
 */
#include <stdio.h>
#include <string.h>
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
	int help, rv, create_key = 0, n = 0;

	aff_log_init("affiliate-server");
	/* --create-admin-key is an action, not a setting: taken out before
	 * the settings are read. */
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--create-admin-key") == 0)
			create_key = 1;
		else
			argv[n++] = argv[i];
	}
	argc = n;
	if (server_config_load(&cfg, argc, argv, &help) != AFF_OK)
		return (2);
	if (help) {
		printf("action:\n  --create-admin-key         make an admin API key "
		       "in the database, print it, exit\n");
		return (0);
	}
	if (create_key) {
		aff_log_set_level(cfg.log_level);
		if ((rv = server_create_admin_key(&cfg)) != AFF_OK) {
			aff_error("server: cannot make an admin key: %s",
			    aff_strerror(rv));
			return (1);
		}
		return (0);
	}
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
