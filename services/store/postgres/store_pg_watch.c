/*
 * store_pg_watch.c - the catalog version kept in memory, one per server
 * (per connection string in a process), so that a cached read does not
 * pay a round trip to PostgreSQL for it.
 *
 * A thread holds one more connection, LISTENing on affiliate_catalog,
 * which the catalog triggers notify at every commit that changes the
 * catalog (schema step 0008). The version it publishes is valid only
 * while that connection listens:
 *   - connected: LISTEN first, then read the version, then publish it,
 *     so a change committed between the two is in what it read, and one
 *     committed after is notified;
 *   - a notification: unpublish (readers go to the database), read the
 *     version again, publish it;
 *   - the connection lost or not made yet: unpublish, and connect again
 *     (once a second at most); readers meanwhile read per call, as
 *     before, so nothing changed while nobody listened can be missed.
 * A change is seen as soon as its notification reaches this thread (well
 * under a millisecond on one host) rather than at the very next call.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store_pg_private.h"

#define WATCH_CHANNEL "affiliate_catalog"
#define WATCH_UNKNOWN (-1) /* not listening: read per call */

struct store_pg_watch {
	char *conninfo;
	int refs;            /* store handles using it (watch_mtx) */
	struct store_pg_watch *next;
	atomic_llong version; /* WATCH_UNKNOWN or the current version */
	atomic_llong floor;   /* this server's last catalog write left this
	                         version: a lower one is stale */
	atomic_int stop;
	int wake[2];          /* a byte on wake[1] stops the thread */
	pthread_t thread;
};

/* Every watcher of the process, by connection string. */
static pthread_mutex_t watch_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct store_pg_watch *watches;

/* The version from conn: AFF_OK with *v, or an error. */
static int
watch_read(PGconn *conn, int64_t *v)
{
	PGresult *r = PQexec(conn, "SELECT version FROM catalog_version WHERE id = 1");
	int rv = AFF_UNAVAILABLE;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		*v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		rv = AFF_OK;
	}
	PQclear(r);
	return (rv);
}

/* Waits up to ms for the socket fd (or none: -1) to be readable; 1 when
 * the watcher is asked to stop. */
static int
watch_wait(struct store_pg_watch *w, int fd, int ms)
{
	struct pollfd p[2] = { { .fd = w->wake[0], .events = POLLIN },
		{ .fd = fd, .events = POLLIN } };

	if (poll(p, fd >= 0 ? 2 : 1, ms) < 0 && errno != EINTR)
		return (atomic_load(&w->stop));
	return (atomic_load(&w->stop));
}

/* One session: connect, LISTEN, read, then follow notifications until
 * the connection is lost or the watcher stops. */
static void
watch_session(struct store_pg_watch *w)
{
	const char *keys[] = { "connect_timeout", "application_name", "dbname",
		NULL };
	const char *vals[] = { "5", "affiliate-server listener", w->conninfo,
		NULL };
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	PGresult *r;
	PGnotify *n;
	int64_t v;

	if (conn == NULL)
		return;
	PQsetNoticeReceiver(conn, store_pg_notice, NULL);
	if (PQstatus(conn) != CONNECTION_OK)
		goto done;
	r = PQexec(conn, "LISTEN " WATCH_CHANNEL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		PQclear(r);
		goto done;
	}
	PQclear(r);
	if (watch_read(conn, &v) != AFF_OK)
		goto done;
	atomic_store(&w->version, v);
	aff_debug("store: catalog listener: listening, version %lld",
	    (long long)v);
	while (!watch_wait(w, PQsocket(conn), -1)) {
		int changed = 0;

		if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
			break;
		while ((n = PQnotifies(conn)) != NULL) {
			changed = 1;
			PQfreemem(n);
		}
		if (!changed)
			continue;
		/* Readers go to the database until the new version is in. */
		atomic_store(&w->version, WATCH_UNKNOWN);
		if (watch_read(conn, &v) != AFF_OK)
			break;
		atomic_store(&w->version, v);
	}
done:
	atomic_store(&w->version, WATCH_UNKNOWN);
	if (!atomic_load(&w->stop))
		aff_debug("store: catalog listener: not listening (the version "
		          "is read per call until it is again)");
	PQfinish(conn);
}

static void *
watch_main(void *arg)
{
	struct store_pg_watch *w = arg;

	while (!atomic_load(&w->stop)) {
		int64_t t0 = aff_mono_ms(), left;

		watch_session(w);
		/* At most one connection attempt a second. */
		left = 1000 - (aff_mono_ms() - t0);
		if (left > 0 && watch_wait(w, -1, (int)left))
			break;
	}
	return (NULL);
}

int
store_pg_watch_get(const char *conninfo, struct store_pg_watch **wp)
{
	struct store_pg_watch *w;
	int rv = AFF_OK;

	pthread_mutex_lock(&watch_mtx);
	for (w = watches; w != NULL; w = w->next)
		if (strcmp(w->conninfo, conninfo) == 0)
			break;
	if (w != NULL) {
		w->refs++;
		goto out;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto out;
	}
	atomic_init(&w->version, WATCH_UNKNOWN);
	atomic_init(&w->floor, 0);
	if ((w->conninfo = strdup(conninfo)) == NULL) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed_strdup;
	}
	if (pipe(w->wake) != 0) {
		rv = AFF_INTERNAL;
		goto failed_pipe;
	}
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed_thread;
	}
	w->refs = 1;
	w->next = watches;
	watches = w;
	goto out;

failed_thread:
	close(w->wake[0]);
	close(w->wake[1]);
failed_pipe:
	free(w->conninfo);
failed_strdup:
	free(w);
	w = NULL;
out:
	pthread_mutex_unlock(&watch_mtx);
	*wp = w;
	return (rv);
}

void
store_pg_watch_put(struct store_pg_watch *w)
{
	struct store_pg_watch **pp;

	if (w == NULL)
		return;
	pthread_mutex_lock(&watch_mtx);
	if (--w->refs > 0) {
		pthread_mutex_unlock(&watch_mtx);
		return;
	}
	for (pp = &watches; *pp != w; pp = &(*pp)->next)
		;
	*pp = w->next;
	pthread_mutex_unlock(&watch_mtx);
	atomic_store(&w->stop, 1);
	(void)!write(w->wake[1], "x", 1);
	pthread_join(w->thread, NULL);
	close(w->wake[0]);
	close(w->wake[1]);
	free(w->conninfo);
	free(w);
}

int
store_pg_watch_version(struct store_pg_watch *w, int64_t *version)
{
	int64_t v;

	if (w == NULL || (v = atomic_load(&w->version)) == WATCH_UNKNOWN ||
	    v < atomic_load(&w->floor))
		return (AFF_NOT_FOUND);
	*version = v;
	return (AFF_OK);
}

void
store_pg_watch_note(struct store_pg_watch *w, int64_t version)
{
	long long f;

	if (w == NULL)
		return;
	/* Only up: versions only grow, and writers race. */
	f = atomic_load(&w->floor);
	while (f < version &&
	    !atomic_compare_exchange_weak(&w->floor, &f, version))
		;
}
