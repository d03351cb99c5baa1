/*
 * store_sqlite_backup.c - a consistent copy of a live SQLite database
 * (affiliate-server --backup FILE), taken beside a running server.
 *
 * SQLite's online backup API copies every page inside one read
 * transaction of its own connection: under WAL that is a snapshot, so the
 * copy holds exactly the transactions committed before it began (each
 * acknowledged order is committed before its answer) and the server's
 * writers are never blocked by it. The copy is written to FILE.tmp,
 * checked (quick_check), made durable (fsync of the file and its folder)
 * and only then renamed to FILE, so FILE is either absent or whole; an
 * existing FILE is never overwritten.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "aff_err.h"
#include "aff_log.h"
#include "store.h"

/* fsync of path (a file or a folder); 0 or -1 with errno. */
static int
sync_path(const char *path, int dir)
{
	int fd, rv;

	if ((fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC)) < 0)
		return (-1);
	rv = fsync(fd);
	close(fd);
	return (rv);
}

/* Runs quick_check on the copy: AFF_OK when SQLite says "ok". */
static int
check_copy(sqlite3 *db, const char *file)
{
	sqlite3_stmt *st = NULL;
	int rv = AFF_DATA_LOSS;

	if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) ==
	        SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0)
		rv = AFF_OK;
	else
		aff_error("backup: the copy in %s fails SQLite's quick_check", file);
	sqlite3_finalize(st);
	return (rv);
}

int
store_sqlite_backup(const char *db_path, const char *file)
{
	char tmp[4096], dir[4096];
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b;
	struct stat sb;
	int rc, rv = AFF_INTERNAL;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= (int)sizeof(tmp) ||
	    snprintf(dir, sizeof(dir), "%s", file) >= (int)sizeof(dir))
		return (AFF_INVALID_ARGUMENT);
	if (stat(file, &sb) == 0) {
		aff_error("backup: %s exists; a backup never overwrites a file",
		    file);
		return (AFF_ALREADY_EXISTS);
	}
	if (stat(db_path, &sb) != 0) {
		aff_error("backup: no database at %s: %s", db_path,
		    strerror(errno));
		return (AFF_NOT_FOUND);
	}
	(void)unlink(tmp); /* the leftover of a backup that was stopped */
	/* Read-only, but not immutable: the server's WAL is part of the
	 * database and is read through its -shm index as the server does. */
	rc = sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(src, 10000);
	if (rc != SQLITE_OK) {
		aff_error("backup: cannot open %s: %s", db_path,
		    src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
		goto out;
	}
	rc = sqlite3_open_v2(tmp, &dst,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE,
	    NULL);
	if (rc != SQLITE_OK) {
		aff_error("backup: cannot create %s: %s", tmp,
		    dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
		goto out;
	}
	(void)chmod(tmp, 0600); /* holds keys' hashes and secrets' rows */
	if ((b = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
		aff_error("backup: %s", sqlite3_errmsg(dst));
		goto out;
	}
	/* All pages in one step: one read transaction, one snapshot. */
	while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY ||
	    rc == SQLITE_LOCKED)
		sqlite3_sleep(50);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		aff_error("backup: copying %s failed: %s", db_path,
		    sqlite3_errstr(rc));
		goto out;
	}
	if ((rv = check_copy(dst, tmp)) != AFF_OK)
		goto out;
	rv = AFF_INTERNAL;
	if (sqlite3_close(dst) != SQLITE_OK)
		goto out;
	dst = NULL;
	if (sync_path(tmp, 0) != 0 || rename(tmp, file) != 0 ||
	    sync_path(dirname(dir), 1) != 0) {
		aff_error("backup: cannot make %s durable: %s", file,
		    strerror(errno));
		goto out;
	}
	rv = AFF_OK;
out:
	if (dst != NULL)
		sqlite3_close(dst);
	if (src != NULL)
		sqlite3_close(src);
	if (rv != AFF_OK)
		(void)unlink(tmp);
	return (rv);
}
