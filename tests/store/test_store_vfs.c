/*
 * test_store_vfs.c - the store's VFS (services/store/sqlite/
 * store_sqlite_vfs.c), which holds a commit's WAL writes and writes them
 * in one go: whatever it holds is on the file before anyone could need
 * it. Each case writes through the VFS on one connection and checks the
 * file through SQLite's own unix VFS on another, or in another process:
 *
 * - a transaction of frames longer than one write to the unix VFS may
 *   carry (its seekAndWrite keeps 17 bits of a length) reads back whole,
 *   before and after a checkpoint;
 * - a commit on a connection that does not sync (synchronous=NORMAL) is
 *   seen at once by another connection: the wal-index barrier wrote the
 *   frames before the commit was published;
 * - a process killed right after its commits returned (SIGKILL, no
 *   close, no flush of anything held) leaves every one of them in the
 *   file.
 */
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
#include <sqlite3.h>

#include "aff_err.h"
#include "store.h"
#include "testutil.h"

#define VFS "aff-walbuf"

struct fx {
	char *dir;
	char path[512];
};

static void
exec_ok(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err != NULL ? err : "?");
}

static sqlite3 *
open_db(const char *path, const char *vfs, const char *sync)
{
	sqlite3 *db = NULL;
	char sql[128];

	assert_int_equal(sqlite3_open_v2(path, &db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
	    SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	snprintf(sql, sizeof(sql),
	    "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s", sync);
	exec_ok(db, sql);
	return (db);
}

static long long
one_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (v);
}

#define BIG_LEN 307200

/* Row i's blob: no two 4 KiB pages alike, within a row or across rows. */
static void
big_fill(unsigned char *b, int i)
{
	for (size_t k = 0; k < BIG_LEN; k++)
		b[k] = (unsigned char)(i * 131 + k * 7 + (k >> 12) * 29 + (k >> 9));
}

/* Every row of big reads back as written, through db. */
static void
big_check(sqlite3 *db, unsigned char *want)
{
	sqlite3_stmt *st;
	int rows = 0;

	assert_int_equal(sqlite3_prepare_v2(db,
	                     "SELECT id, b FROM big ORDER BY id", -1, &st, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int id = sqlite3_column_int(st, 0);

		big_fill(want, id);
		assert_int_equal(sqlite3_column_bytes(st, 1), BIG_LEN);
		assert_memory_equal(sqlite3_column_blob(st, 1), want, BIG_LEN);
		rows++;
	}
	sqlite3_finalize(st);
	assert_int_equal(rows, 3);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	store *s;

	assert_non_null(f);
	tu_env_clean();
	assert_non_null(f->dir = tu_tmpdir());
	/* Opening a store registers the VFS (and makes the schema, which the
	 * cases leave alone: they use tables of their own). */
	snprintf(f->path, sizeof(f->path), "%s/vfs.db", f->dir);
	assert_int_equal(store_open(f->path, &s), AFF_OK);
	store_close(s);
	assert_non_null(sqlite3_vfs_find(VFS));
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return (0);
}

/* Three rows of 300 KiB in one transaction: about 230 frames in one run,
 * written in pieces; each row reads back as written on SQLite's own VFS,
 * from the WAL and, after a checkpoint, from the database. */
static void
test_long_run_reads_back(void **state)
{
	struct fx *f = *state;
	sqlite3 *w = open_db(f->path, VFS, "FULL"), *r;
	unsigned char *b = malloc(BIG_LEN);
	sqlite3_stmt *st;

	assert_non_null(b);
	exec_ok(w, "CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB)");
	exec_ok(w, "BEGIN");
	assert_int_equal(sqlite3_prepare_v2(w, "INSERT INTO big VALUES (?1, ?2)",
	                     -1, &st, NULL),
	    SQLITE_OK);
	for (int i = 1; i <= 3; i++) {
		big_fill(b, i);
		sqlite3_bind_int(st, 1, i);
		sqlite3_bind_blob(st, 2, b, BIG_LEN, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	exec_ok(w, "COMMIT");

	r = open_db(f->path, NULL, "FULL");
	big_check(r, b);
	/* The reader copies the log into the database, then reads it
	 * there; the writer reads it through the VFS too. */
	assert_int_equal(sqlite3_wal_checkpoint_v2(r, NULL,
	                     SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL),
	    SQLITE_OK);
	big_check(r, b);
	big_check(w, b);
	sqlite3_close(r);
	sqlite3_close(w);
	free(b);
}

/* synchronous=NORMAL: no xSync at commit, so only the wal-index barrier
 * writes the held frames out before the commit shows; without it the
 * other connection would read frames that are not in the file. */
static void
test_unsynced_commit_is_seen(void **state)
{
	struct fx *f = *state;
	sqlite3 *w = open_db(f->path, VFS, "NORMAL"),
	        *r = open_db(f->path, NULL, "FULL");
	struct stat stw;
	char sql[128], wal[600];

	exec_ok(w, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
	for (int i = 1; i <= 50; i++) {
		snprintf(sql, sizeof(sql),
		    "INSERT INTO t VALUES (%d, printf('%%0500d', %d))", i, i);
		exec_ok(w, sql);
		assert_int_equal(one_int(r, "SELECT count(*) FROM t"), i);
		snprintf(sql, sizeof(sql),
		    "SELECT count(*) FROM t WHERE v = printf('%%0500d', %d)", i);
		assert_int_equal(one_int(r, sql), 1);
	}
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(stat(wal, &stw), 0);
	assert_true(stw.st_size > 50 * 500);
	sqlite3_close(r);
	sqlite3_close(w);
}

/* A child commits one row at a time through a store-like connection
 * (FULL) and reports each commit on a pipe; the parent kills it with
 * SIGKILL after the 200th report. Every reported row is in the file. */
static void
test_killed_after_commit_keeps_it(void **state)
{
	struct fx *f = *state;
	int fds[2], status, got = 0;
	sqlite3 *r;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		sqlite3 *w = NULL;
		char sql[128];

		close(fds[0]);
		if (sqlite3_open_v2(f->path, &w, SQLITE_OPEN_READWRITE, VFS) !=
		        SQLITE_OK ||
		    sqlite3_exec(w, "PRAGMA journal_mode = WAL; PRAGMA "
		                    "synchronous = FULL; CREATE TABLE k (id "
		                    "INTEGER PRIMARY KEY, pad BLOB)",
		        NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		for (int i = 1;; i++) {
			snprintf(sql, sizeof(sql),
			    "INSERT INTO k VALUES (%d, randomblob(3000))", i);
			if (sqlite3_exec(w, sql, NULL, NULL, NULL) != SQLITE_OK ||
			    write(fds[1], &i, sizeof(i)) != sizeof(i))
				_exit(1);
		}
	}
	assert_true(pid > 0);
	close(fds[1]);
	while (got < 200) {
		int i;

		assert_int_equal(read(fds[0], &i, sizeof(i)), sizeof(i));
		got = i;
	}
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	close(fds[0]);

	r = open_db(f->path, NULL, "FULL");
	assert_true(one_int(r, "SELECT count(*) FROM k") >= got);
	assert_int_equal(one_int(r, "SELECT max(id) = count(*) FROM k"), 1);
	assert_int_equal(one_int(r, "SELECT count(*) FROM pragma_quick_check "
	                            "WHERE quick_check <> 'ok'"),
	    0);
	sqlite3_close(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_long_run_reads_back, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unsynced_commit_is_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_killed_after_commit_keeps_it, setup, teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
