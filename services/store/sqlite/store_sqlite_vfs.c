/*
 * store_sqlite_vfs.c - the VFS every store connection opens its database
 * with: SQLite's own (unix) VFS, with the write-ahead log's writes gathered
 * into one write per commit.
 *
 * Why: SQLite writes a WAL frame as two writes, its 24-byte header and its
 * page, so a group commit that dirties 100 pages makes 200 pwrite(2) calls
 * before its one fdatasync(2). Each call is a system call, and on the
 * virtual machines this runs on a system call costs microseconds and is a
 * point where the writer thread is preempted: the order writer spent a
 * quarter of its CPU in pwrite, all on the critical path every webhook
 * waits on. Here a run of contiguous WAL writes is kept in memory and
 * written with one call when anything could need it on the file:
 *
 * - xSync: before the flush a commit makes (synchronous=FULL syncs the
 *   WAL at every commit), so what a commit makes durable is exactly what
 *   it made durable before: every frame is on the file, then the file is
 *   synced, then SQLite publishes the commit in the wal-index;
 * - xShmBarrier and xShmLock on the database file whose log this is:
 *   SQLite calls the barrier when it publishes a commit in the wal-index
 *   header, so even a connection that does not sync at commit (none of
 *   this program's, synchronous=FULL everywhere) never shows other
 *   connections frames that are not on the file yet;
 * - xRead, xTruncate, xFileSize, xFileControl, xClose of the log, and a
 *   write that does not continue the run (or does not fit).
 *
 * A crash loses what is held exactly as it loses a write the kernel has
 * not flushed: SQLite never counts on a write before its sync, and the
 * WAL's checksums make recovery stop at the first frame that is not whole.
 * A failed write is reported by the call that flushed (a failed xSync
 * fails the commit, which rolls back). Nothing else changes: locks, the
 * wal-index, the database file and the journal go straight to the unix
 * VFS, and a database written through this VFS is an ordinary SQLite
 * file (the sqlite3 shell, backups and other processes share it).
 */
#include "store_sqlite_private.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WALBUF_VFS "aff-walbuf"
/* The first buffer a log gets, and the most it grows to: a batch of 100
 * pages is about 412 KiB of frames; longer runs are written in pieces. */
#define WALBUF_MIN (64 * 1024)
#define WALBUF_MAX (1024 * 1024)
/* The most one write to the unix VFS may carry: its seekAndWrite() keeps
 * only the low 17 bits of a length (a longer write comes back short, as
 * SQLITE_FULL). */
#define WALBUF_CHUNK (112 * 1024)

struct walbuf_file {
	sqlite3_file base;   /* pMethods: walbuf_methods[iVersion] */
	sqlite3_file *real;  /* the unix VFS's file, after this struct */
	/* The main database: the file name SQLite opened it under (the
	 * pointer, which sqlite3_filename_database of its log gives back)
	 * and its log while that is open. A log (log set, the only kind of
	 * file whose writes are held): the run it holds, at off in the
	 * file, and its database (or NULL). */
	const char *name;
	int log;
	struct walbuf_file *wal, *db;
	unsigned char *buf;
	size_t len, cap;
	sqlite3_int64 off;
	struct walbuf_file *next; /* open databases, under dbs_mtx */
};

static sqlite3_vfs walbuf_vfs;
static sqlite3_vfs *real_vfs;
static sqlite3_io_methods walbuf_methods[4];
/* Open main databases, so a log being opened finds its database. Taken
 * only when a file opens or closes. */
static pthread_mutex_t dbs_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct walbuf_file *dbs;
static pthread_once_t walbuf_once = PTHREAD_ONCE_INIT;
static int walbuf_rc = SQLITE_ERROR;

#define REAL(f) (((struct walbuf_file *)(f))->real)
#define RM(f) (REAL(f)->pMethods)

/* Writes the held run to the file: a few writes of WALBUF_CHUNK where
 * SQLite made one per frame header and one per page. */
static int
walbuf_flush(struct walbuf_file *f)
{
	size_t done, n;
	int rc = SQLITE_OK;

	for (done = 0; done < f->len && rc == SQLITE_OK; done += n) {
		n = f->len - done < WALBUF_CHUNK ? f->len - done : WALBUF_CHUNK;
		rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n,
		    f->off + (sqlite3_int64)done);
	}
	f->len = 0;
	return (rc);
}

static int
walbuf_close(sqlite3_file *file)
{
	struct walbuf_file *f = (struct walbuf_file *)file, **pp;
	int rc = walbuf_flush(f), rc2;

	pthread_mutex_lock(&dbs_mtx);
	if (f->db != NULL)
		f->db->wal = NULL;
	if (f->wal != NULL)
		f->wal->db = NULL;
	for (pp = &dbs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	pthread_mutex_unlock(&dbs_mtx);
	rc2 = RM(f)->xClose(f->real);
	free(f->buf);
	f->buf = NULL;
	return (rc != SQLITE_OK ? rc : rc2);
}

static int
walbuf_read(sqlite3_file *file, void *p, int amt, sqlite3_int64 off)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc;

	if ((rc = walbuf_flush(f)) != SQLITE_OK)
		return (rc);
	return (RM(f)->xRead(f->real, p, amt, off));
}

/* Grows the buffer to hold need bytes: 0, or -1 when it cannot (the
 * write then goes to the file as it is). */
static int
walbuf_reserve(struct walbuf_file *f, size_t need)
{
	size_t cap = f->cap > 0 ? f->cap : WALBUF_MIN;
	unsigned char *b;

	if (need <= f->cap)
		return (0);
	if (need > WALBUF_MAX)
		return (-1);
	while (cap < need)
		cap *= 2;
	if (cap > WALBUF_MAX)
		cap = WALBUF_MAX;
	if ((b = realloc(f->buf, cap)) == NULL)
		return (-1);
	f->buf = b;
	f->cap = cap;
	return (0);
}

static int
walbuf_write(sqlite3_file *file, const void *p, int amt, sqlite3_int64 off)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc;

	if (!f->log || amt <= 0)
		return (RM(f)->xWrite(f->real, p, amt, off));
	/* The log: a write that continues the run joins it. */
	if (f->len > 0 && off == f->off + (sqlite3_int64)f->len &&
	    walbuf_reserve(f, f->len + (size_t)amt) == 0) {
		memcpy(f->buf + f->len, p, (size_t)amt);
		f->len += (size_t)amt;
		return (SQLITE_OK);
	}
	if ((rc = walbuf_flush(f)) != SQLITE_OK)
		return (rc);
	if (walbuf_reserve(f, (size_t)amt) != 0)
		return (RM(f)->xWrite(f->real, p, amt, off));
	memcpy(f->buf, p, (size_t)amt);
	f->off = off;
	f->len = (size_t)amt;
	return (SQLITE_OK);
}

static int
walbuf_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc;

	if ((rc = walbuf_flush(f)) != SQLITE_OK)
		return (rc);
	return (RM(f)->xTruncate(f->real, size));
}

static int
walbuf_sync(sqlite3_file *file, int flags)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc;

	if ((rc = walbuf_flush(f)) != SQLITE_OK)
		return (rc);
	return (RM(f)->xSync(f->real, flags));
}

static int
walbuf_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc;

	if ((rc = walbuf_flush(f)) != SQLITE_OK)
		return (rc);
	return (RM(f)->xFileSize(f->real, size));
}

static int
walbuf_lock(sqlite3_file *file, int lock)
{
	return (RM(file)->xLock(REAL(file), lock));
}

static int
walbuf_unlock(sqlite3_file *file, int lock)
{
	return (RM(file)->xUnlock(REAL(file), lock));
}

static int
walbuf_check_reserved(sqlite3_file *file, int *out)
{
	return (RM(file)->xCheckReservedLock(REAL(file), out));
}

static int
walbuf_file_control(sqlite3_file *file, int op, void *arg)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc;

	/* Some controls act on the file (size hints, truncation, moves):
	 * the run is on it first. */
	if ((rc = walbuf_flush(f)) != SQLITE_OK)
		return (rc);
	if (op == SQLITE_FCNTL_VFSNAME && arg != NULL) {
		/* The name SQLite reports for this connection's VFS. */
		rc = RM(f)->xFileControl(f->real, op, arg);
		if (rc == SQLITE_OK && *(char **)arg != NULL) {
			char *n = sqlite3_mprintf(WALBUF_VFS "/%z",
			    *(char **)arg);
			*(char **)arg = n;
			return (n != NULL ? SQLITE_OK : SQLITE_NOMEM);
		}
		*(char **)arg = sqlite3_mprintf(WALBUF_VFS);
		return (SQLITE_OK);
	}
	return (RM(f)->xFileControl(f->real, op, arg));
}

static int
walbuf_sector_size(sqlite3_file *file)
{
	return (RM(file)->xSectorSize(REAL(file)));
}

static int
walbuf_device_characteristics(sqlite3_file *file)
{
	return (RM(file)->xDeviceCharacteristics(REAL(file)));
}

/* The database's log, written out: before a commit shows in the
 * wal-index, and before another connection may take a lock on it. The
 * database and its log belong to one connection, used by one thread at a
 * time, so no lock is needed. */
static int
walbuf_flush_log(sqlite3_file *file)
{
	struct walbuf_file *f = (struct walbuf_file *)file;

	return (f->wal != NULL ? walbuf_flush(f->wal) : SQLITE_OK);
}

static int
walbuf_shm_map(sqlite3_file *file, int pg, int pgsz, int extend,
    void volatile **pp)
{
	return (RM(file)->xShmMap(REAL(file), pg, pgsz, extend, pp));
}

static int
walbuf_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	int rc;

	if ((rc = walbuf_flush_log(file)) != SQLITE_OK)
		return (rc);
	return (RM(file)->xShmLock(REAL(file), offset, n, flags));
}

static void
walbuf_shm_barrier(sqlite3_file *file)
{
	/* No status to return here: a connection that syncs at commit (all
	 * of this program's) had its frames written by xSync already. */
	(void)walbuf_flush_log(file);
	RM(file)->xShmBarrier(REAL(file));
}

static int
walbuf_shm_unmap(sqlite3_file *file, int del)
{
	return (RM(file)->xShmUnmap(REAL(file), del));
}

static int
walbuf_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **pp)
{
	return (RM(file)->xFetch(REAL(file), off, amt, pp));
}

static int
walbuf_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
	return (RM(file)->xUnfetch(REAL(file), off, p));
}

static int
walbuf_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file,
    int flags, int *out_flags)
{
	struct walbuf_file *f = (struct walbuf_file *)file, *d;
	const sqlite3_io_methods *m;
	int rc;

	(void)vfs;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
	if ((m = f->real->pMethods) == NULL)
		return (rc != SQLITE_OK ? rc : SQLITE_CANTOPEN);
	/* Methods this file's own cannot back are not offered. */
	f->base.pMethods = &walbuf_methods[m->iVersion < 3 ? m->iVersion : 3];
	if (rc != SQLITE_OK)
		return (rc); /* SQLite calls xClose */
	if ((flags & SQLITE_OPEN_MAIN_DB) && name != NULL) {
		f->name = name;
		pthread_mutex_lock(&dbs_mtx);
		f->next = dbs;
		dbs = f;
		pthread_mutex_unlock(&dbs_mtx);
	} else if ((flags & SQLITE_OPEN_WAL) && name != NULL) {
		const char *db = sqlite3_filename_database(name);

		f->log = 1;
		pthread_mutex_lock(&dbs_mtx);
		for (d = dbs; d != NULL; d = d->next)
			if (d->name == db && d->wal == NULL) {
				d->wal = f;
				f->db = d;
				break;
			}
		pthread_mutex_unlock(&dbs_mtx);
	}
	/* Journals and temporary files go straight through. */
	return (SQLITE_OK);
}

/* ---- the rest of the VFS is the unix VFS's own ---- */

static int
walbuf_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	(void)v;
	return (real_vfs->xDelete(real_vfs, name, sync_dir));
}

static int
walbuf_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	(void)v;
	return (real_vfs->xAccess(real_vfs, name, flags, out));
}

static int
walbuf_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
	(void)v;
	return (real_vfs->xFullPathname(real_vfs, name, n, out));
}

static void *
walbuf_dlopen(sqlite3_vfs *v, const char *name)
{
	(void)v;
	return (real_vfs->xDlOpen(real_vfs, name));
}

static void
walbuf_dlerror(sqlite3_vfs *v, int n, char *msg)
{
	(void)v;
	real_vfs->xDlError(real_vfs, n, msg);
}

static void (*walbuf_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	(void)v;
	return (real_vfs->xDlSym(real_vfs, h, sym));
}

static void
walbuf_dlclose(sqlite3_vfs *v, void *h)
{
	(void)v;
	real_vfs->xDlClose(real_vfs, h);
}

static int
walbuf_randomness(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return (real_vfs->xRandomness(real_vfs, n, out));
}

static int
walbuf_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return (real_vfs->xSleep(real_vfs, us));
}

static int
walbuf_current_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return (real_vfs->xCurrentTime(real_vfs, out));
}

static int
walbuf_last_error(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return (real_vfs->xGetLastError(real_vfs, n, out));
}

static int
walbuf_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return (real_vfs->xCurrentTimeInt64(real_vfs, out));
}

static void
walbuf_register(void)
{
	static const sqlite3_io_methods v3 = {
		.iVersion = 3,
		.xClose = walbuf_close,
		.xRead = walbuf_read,
		.xWrite = walbuf_write,
		.xTruncate = walbuf_truncate,
		.xSync = walbuf_sync,
		.xFileSize = walbuf_file_size,
		.xLock = walbuf_lock,
		.xUnlock = walbuf_unlock,
		.xCheckReservedLock = walbuf_check_reserved,
		.xFileControl = walbuf_file_control,
		.xSectorSize = walbuf_sector_size,
		.xDeviceCharacteristics = walbuf_device_characteristics,
		.xShmMap = walbuf_shm_map,
		.xShmLock = walbuf_shm_lock,
		.xShmBarrier = walbuf_shm_barrier,
		.xShmUnmap = walbuf_shm_unmap,
		.xFetch = walbuf_fetch,
		.xUnfetch = walbuf_unfetch,
	};

	if ((real_vfs = sqlite3_vfs_find(NULL)) == NULL ||
	    real_vfs->iVersion < 2)
		return;
	/* Version v offers the methods of versions up to v and no more. */
	for (int v = 1; v <= 3; v++) {
		walbuf_methods[v] = v3;
		walbuf_methods[v].iVersion = v;
		if (v < 3) {
			walbuf_methods[v].xFetch = NULL;
			walbuf_methods[v].xUnfetch = NULL;
		}
		if (v < 2) {
			walbuf_methods[v].xShmMap = NULL;
			walbuf_methods[v].xShmLock = NULL;
			walbuf_methods[v].xShmBarrier = NULL;
			walbuf_methods[v].xShmUnmap = NULL;
		}
	}
	walbuf_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct walbuf_file) + real_vfs->szOsFile,
		.mxPathname = real_vfs->mxPathname,
		.zName = WALBUF_VFS,
		.xOpen = walbuf_open,
		.xDelete = walbuf_delete,
		.xAccess = walbuf_access,
		.xFullPathname = walbuf_full_pathname,
		.xDlOpen = walbuf_dlopen,
		.xDlError = walbuf_dlerror,
		.xDlSym = walbuf_dlsym,
		.xDlClose = walbuf_dlclose,
		.xRandomness = walbuf_randomness,
		.xSleep = walbuf_sleep,
		.xCurrentTime = walbuf_current_time,
		.xGetLastError = walbuf_last_error,
		.xCurrentTimeInt64 = walbuf_current_time64,
	};
	walbuf_rc = sqlite3_vfs_register(&walbuf_vfs, 0);
}

const char *
store_sqlite_vfs(void)
{
	pthread_once(&walbuf_once, walbuf_register);
	return (walbuf_rc == SQLITE_OK ? WALBUF_VFS : NULL);
}
