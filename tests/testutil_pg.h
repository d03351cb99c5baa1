/*
 * testutil_pg.h - a real PostgreSQL server for tests: initdb in a temporary
 * folder, the server started by the test on a free loopback port, never a
 * mock. Debian's postgresql-15 binaries (/usr/lib/postgresql/15/bin, or
 * $AFFILIATE_TEST_PG_BIN) run as an unprivileged user when the test runs as
 * root (PostgreSQL refuses root): `postgres`, which the package creates,
 * else `nobody`.
 *
 * The server is durable as a deployment must be: fsync=on,
 * synchronous_commit=on, full_page_writes=on. Only initdb runs with
 * --no-sync (its own files, of a cluster thrown away after the test).
 * Loopback TCP needs the password (scram-sha-256), which the URI carries.
 *
 * No server outlives the test: the postmaster is this process's child,
 * asked to stop fast (SIGINT, as `pg_ctl stop -m fast`) by tu_pg_stop(),
 * at exit() (a failed test included) and on SIGINT/SIGTERM/SIGHUP;
 * PR_SET_PDEATHSIG stops it immediately when the test dies by SIGKILL
 * (the temporary folder then stays behind, nothing can run to remove it).
 * The death signal follows the thread that started the server: start it
 * from the test's main thread.
 */
#ifndef TESTUTIL_PG_H
#define TESTUTIL_PG_H

#include <sys/types.h>

struct tu_pg {
	pid_t pid;       /* the postmaster; it leads its own process group */
	int port;        /* 127.0.0.1 */
	char *dir;       /* the temporary folder: data/, the socket, logs */
	char uri[256];   /* libpq URI of the database affiliate_test */
	char admin[256]; /* the same for the database postgres */
	char password[33];
	/* What the last start took, in milliseconds (the suite's budget). */
	double initdb_ms;   /* initdb */
	double ready_ms;    /* from exec to accepting connections */
	double createdb_ms; /* CREATE DATABASE affiliate_test */
};

/*
 * Makes a new cluster in a new temporary folder and starts it on a free
 * port; returns when it accepts connections and affiliate_test exists, with
 * pg->uri (postgresql://affiliate:PASSWORD@127.0.0.1:PORT/affiliate_test)
 * set. pg must stay where it is until tu_pg_stop() (the exit path stops
 * it through that address). Returns 0, or -1 (the server's log is printed to stderr, nothing
 * left running or on disk).
 */
int tu_pg_start(struct tu_pg *pg);

/* Stops the server (fast shutdown: open transactions roll back, committed
 * ones stay), reaps it and removes the folder. Harmless when stopped. */
void tu_pg_stop(struct tu_pg *pg);

/* Kills every process of the server with SIGKILL, as a crash would, and
 * reaps the postmaster; the folder stays for tu_pg_restart(). */
void tu_pg_kill(struct tu_pg *pg);

/* Starts the server again on the same folder and port (after tu_pg_kill(),
 * or stopping it first when it runs); crash recovery replays the WAL.
 * Returns 0 when it accepts connections again, or -1. */
int tu_pg_restart(struct tu_pg *pg);

#endif /* TESTUTIL_PG_H */
