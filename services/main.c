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
	const char *backup = NULL;
	int help, rv, create_key = 0, n = 0;

	aff_log_init("affiliate-server");
	/* --create-admin-key and --backup FILE are actions, not settings:
	 * taken out before the settings are read. */
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--create-admin-key") == 0)
			create_key = 1;
		else if (i > 0 && strcmp(argv[i], "--backup") == 0) {
			if (i + 1 >= argc || argv[i + 1][0] == '\0' ||
			    argv[i + 1][0] == '-') {
				fprintf(stderr, "affiliate-server: --backup needs "
				                "the FILE to write\n");
				return (2);
			}
			backup = argv[++i];
		} else
			argv[n++] = argv[i];
	}
	argc = n;
	if (server_config_load(&cfg, argc, argv, &help) != AFF_OK)
		return (2);
	if (help) {
		printf("action:\n  --create-admin-key         make an admin API key "
		       "in the database, print it, exit\n"
		       "  --backup FILE              copy the database (a live "
		       "one too) into FILE, which must not exist, and exit\n");
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
	if (backup != NULL) {
		aff_log_set_level(cfg.log_level);
		return (server_backup(&cfg, backup) == AFF_OK ? 0 : 1);
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
