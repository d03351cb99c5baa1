/*
 * test_pg_harness.c - the tests' PostgreSQL (tests/testutil_pg.c,
 * tests/pg.sh) is a real, durable server that no test leaves behind: its
 * settings read back over libpq, committed rows survive a SIGKILL of every
 * server process and an uncommitted one does not, a wrong password is
 * refused, and after a stop, or a test process that exits, is terminated
 * or killed without stopping it, no process of it is left (and its folder
 * is gone, except after SIGKILL). Prints what a start costs.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "testutil.h"
#include "testutil_pg.h"

/* The first row's first value of sql, copied into buf ("" when none);
 * NULL when the query failed. */
static const char *
q1(PGconn *c, const char *sql, char *buf, size_t cap)
{
	PGresult *r = PQexec(c, sql);
	const char *out = buf;

	buf[0] = '\0';
	if (PQresultStatus(r) != PGRES_TUPLES_OK &&
	    PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "# %s: %s", sql, PQerrorMessage(c));
		out = NULL;
	} else if (PQntuples(r) > 0)
		snprintf(buf, cap, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return (out);
}

static PGconn *
connect_ok(const char *uri)
{
	PGconn *c = PQconnectdb(uri);

	if (PQstatus(c) != CONNECTION_OK)
		fprintf(stderr, "# connect: %s", PQerrorMessage(c));
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	return (c);
}

/* A process with this pid or in this process group, other than a zombie
 * (a container's init may be slow to reap what was reparented to it),
 * or whose command line names path. */
static int
procs_left(pid_t pid, const char *path)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char file[300], buf[4096], *p;
		FILE *f;
		size_t len;
		pid_t self, pgrp = 0;
		char state = 0;

		if ((self = (pid_t)atoi(e->d_name)) <= 0)
			continue;
		snprintf(file, sizeof(file), "/proc/%s/stat", e->d_name);
		if ((f = fopen(file, "r")) == NULL)
			continue;
		len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		/* pid (comm) state ppid pgrp: comm may hold spaces. */
		if ((p = strrchr(buf, ')')) == NULL ||
		    sscanf(p + 1, " %c %*d %d", &state, &pgrp) != 2 ||
		    state == 'Z')
			continue;
		if (self == pid || pgrp == pid) {
			n++;
			continue;
		}
		snprintf(file, sizeof(file), "/proc/%s/cmdline", e->d_name);
		if ((f = fopen(file, "r")) == NULL)
			continue;
		len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		for (size_t i = 0; i < len; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		buf[len] = '\0';
		if (strstr(buf, path) != NULL)
			n++;
	}
	closedir(d);
	return (n);
}

/* procs_left() polled for up to 10 s: killed processes take a moment to
 * die. */
static int
procs_wait_gone(pid_t pid, const char *path)
{
	int left = 0;

	for (int i = 0; i < 1000; i++) {
		if ((left = procs_left(pid, path)) == 0)
			break;
		tu_sleep_ms(10);
	}
	return (left);
}

static int
dir_exists(const char *path)
{
	struct stat st;

	return (stat(path, &st) == 0);
}

static void
test_the_server_is_durable_and_committed_rows_survive_a_crash(void **state)
{
	static struct tu_pg pg; /* static: the exit path keeps its address */
	char buf[600], bad[300], dir[600];
	struct stat st;
	PGconn *c, *open_tx;
	pid_t pid;
	int port;

	(void)state;
	assert_int_equal(tu_pg_start(&pg), 0);
	printf("pg: start %.0f ms (initdb %.0f, server up %.0f, createdb "
	    "%.0f)\n", pg.initdb_ms + pg.ready_ms + pg.createdb_ms,
	    pg.initdb_ms, pg.ready_ms, pg.createdb_ms);
	assert_non_null(strstr(pg.uri, "@127.0.0.1:"));
	assert_non_null(strstr(pg.uri, "/affiliate_test"));
	snprintf(dir, sizeof(dir), "%s", pg.dir);
	pid = pg.pid;
	port = pg.port;
	/* The data belong to the user the server runs as, never root. */
	snprintf(buf, sizeof(buf), "%s/data", pg.dir);
	assert_int_equal(stat(buf, &st), 0);
	if (geteuid() == 0)
		assert_int_not_equal(st.st_uid, 0);
	else
		assert_int_equal(st.st_uid, geteuid());

	c = connect_ok(pg.uri);
	assert_string_equal(q1(c, "SHOW fsync", buf, sizeof(buf)), "on");
	assert_string_equal(q1(c, "SHOW synchronous_commit", buf, sizeof(buf)),
	    "on");
	assert_string_equal(q1(c, "SHOW full_page_writes", buf, sizeof(buf)),
	    "on");
	assert_string_equal(q1(c, "SHOW listen_addresses", buf, sizeof(buf)),
	    "127.0.0.1");
	assert_string_equal(q1(c, "SELECT current_database()", buf,
	    sizeof(buf)), "affiliate_test");
	assert_non_null(q1(c, "SHOW data_directory", buf, sizeof(buf)));
	assert_int_equal(strncmp(buf, dir, strlen(dir)), 0);

	/* A durable commit, and a transaction left open on another
	 * connection when everything is killed. */
	assert_non_null(q1(c, "CREATE TABLE t (id int PRIMARY KEY, note text "
	    "NOT NULL)", buf, sizeof(buf)));
	assert_non_null(q1(c, "BEGIN", buf, sizeof(buf)));
	assert_non_null(q1(c, "SET LOCAL synchronous_commit = on", buf,
	    sizeof(buf)));
	assert_non_null(q1(c, "INSERT INTO t VALUES (1, 'a'), (2, 'b'), "
	    "(3, 'c')", buf, sizeof(buf)));
	assert_non_null(q1(c, "COMMIT", buf, sizeof(buf)));
	open_tx = connect_ok(pg.uri);
	assert_non_null(q1(open_tx, "BEGIN", buf, sizeof(buf)));
	assert_non_null(q1(open_tx, "INSERT INTO t VALUES (4, 'open')", buf,
	    sizeof(buf)));

	/* The password is checked on loopback TCP. */
	snprintf(bad, sizeof(bad), "postgresql://affiliate:wrong@127.0.0.1:"
	    "%d/affiliate_test", port);
	{
		PGconn *b = PQconnectdb(bad);
		assert_int_equal(PQstatus(b), CONNECTION_BAD);
		assert_non_null(strstr(PQerrorMessage(b), "password"));
		PQfinish(b);
	}

	tu_pg_kill(&pg);
	assert_int_equal(procs_wait_gone(pid, dir), 0);
	assert_int_equal(PQping(pg.uri), PQPING_NO_RESPONSE);
	PQfinish(c);
	PQfinish(open_tx);
	assert_int_equal(tu_pg_restart(&pg), 0);
	assert_int_equal(pg.port, port);
	c = connect_ok(pg.uri);
	assert_string_equal(q1(c, "SELECT count(*) || ':' || sum(id) FROM t",
	    buf, sizeof(buf)), "3:6");
	PQfinish(c);

	pid = pg.pid;
	tu_pg_stop(&pg);
	assert_int_equal(pg.pid, 0);
	assert_int_equal(procs_wait_gone(pid, dir), 0);
	assert_false(dir_exists(dir));
	assert_int_equal(PQping(pg.uri), PQPING_NO_RESPONSE);
}

enum death { DIE_EXIT, DIE_SIGTERM, DIE_SIGKILL };

/* A child starts a server and dies without stopping it; then no process
 * of it is left within 10 s, and its folder is gone unless it was
 * SIGKILL (nothing runs then: the folder is removed here). */
static void
check_death(enum death how, const char *name)
{
	static struct tu_pg pg;
	char dir[600] = "";
	int fds[2], status, left = -1;
	pid_t child, pid = 0;
	FILE *f;

	assert_int_equal(pipe(fds), 0);
	if ((child = fork()) == 0) {
		close(fds[0]);
		if (tu_pg_start(&pg) != 0)
			_exit(3);
		dprintf(fds[1], "%d %s\n", (int)pg.pid, pg.dir);
		close(fds[1]);
		if (how == DIE_EXIT)
			exit(1); /* as a failed assertion's process ends */
		raise(how == DIE_SIGTERM ? SIGTERM : SIGKILL);
		_exit(4);
	}
	assert_true(child > 0);
	close(fds[1]);
	f = fdopen(fds[0], "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d %599s", &pid, dir), 2);
	fclose(f);
	assert_int_equal(waitpid(child, &status, 0), child);
	left = procs_wait_gone(pid, dir);
	printf("pg: test process ended by %s: %d server processes left, "
	    "folder %s\n", name, left, dir_exists(dir) ? "kept" : "removed");
	assert_int_equal(left, 0);
	if (how == DIE_SIGKILL) {
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		tu_rmtree(dir);
	} else
		assert_false(dir_exists(dir));
}

static void
test_no_server_outlives_a_test_that_exits_without_stopping_it(void **state)
{
	(void)state;
	check_death(DIE_EXIT, "exit(1)");
}

static void
test_no_server_outlives_a_test_terminated_by_sigterm(void **state)
{
	(void)state;
	check_death(DIE_SIGTERM, "SIGTERM");
}

static void
test_no_server_outlives_a_test_killed_by_sigkill(void **state)
{
	(void)state;
	check_death(DIE_SIGKILL, "SIGKILL");
}

/* tests/pg.sh, as a shell test sources it: the same settings, a stop that
 * leaves nothing, and a script killed outright takes its server along. */
static void
test_the_shell_harness_starts_a_durable_server_and_stops_it(void **state)
{
	const char *src = getenv("AFFILIATE_SOURCE_DIR");
	char cmd[2048], line[700], dir[600] = "", settings[64] = "";
	char killed_dir[600] = "";
	int pid = 0, killed_pid = 0, ms = -1;
	FILE *p;

	(void)state;
	assert_non_null(src);
	snprintf(cmd, sizeof(cmd),
	    "bash -c '. \"%s/tests/pg.sh\" && pg_start && "
	    "echo ms $PG_START_MS && echo pid $PG_PID && echo dir $PG_DIR && "
	    "echo settings $(psql \"$PG_URI\" -Atc \"SHOW fsync\" "
	    "-c \"SHOW synchronous_commit\" -c \"SELECT current_database()\" "
	    "| tr \"\\n\" ,) && pg_stop' 2>&1; "
	    /* a script killed with its server running */
	    "bash -c '. \"%s/tests/pg.sh\" && pg_start && "
	    "echo killed $PG_PID $PG_DIR && kill -9 $$' 2>&1",
	    src, src);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p) != NULL) {
		fputs(line, stdout);
		sscanf(line, "ms %d", &ms);
		sscanf(line, "pid %d", &pid);
		sscanf(line, "dir %599s", dir);
		sscanf(line, "settings %63s", settings);
		sscanf(line, "killed %d %599s", &killed_pid, killed_dir);
	}
	pclose(p);
	printf("pg: pg.sh start %d ms\n", ms);
	assert_true(ms > 0);
	assert_string_equal(settings, "on,on,affiliate_test,");
	assert_true(pid > 0 && dir[0] == '/');
	assert_int_equal(procs_wait_gone(pid, dir), 0);
	assert_false(dir_exists(dir));
	assert_true(killed_pid > 0 && killed_dir[0] == '/');
	assert_int_equal(procs_wait_gone(killed_pid, killed_dir), 0);
	/* Its folder stays: nothing ran to remove it. */
	tu_rmtree(killed_dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_the_server_is_durable_and_committed_rows_survive_a_crash),
		cmocka_unit_test(
		    test_no_server_outlives_a_test_that_exits_without_stopping_it),
		cmocka_unit_test(
		    test_no_server_outlives_a_test_terminated_by_sigterm),
		cmocka_unit_test(test_no_server_outlives_a_test_killed_by_sigkill),
		cmocka_unit_test(
		    test_the_shell_harness_starts_a_durable_server_and_stops_it),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
