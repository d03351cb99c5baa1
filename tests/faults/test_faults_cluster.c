/*
 * test_faults_cluster.c - two servers on one real PostgreSQL: nothing
 * acknowledged is lost and nothing is stored twice while a server is
 * killed with SIGKILL, PostgreSQL crashes and is restarted, and Redis is
 * stopped, all under webhook and apply load.
 *
 * The topology of `make run-cluster`, as separate real processes: a
 * PostgreSQL server (tests/testutil_pg.h: initdb in a temporary folder,
 * fsync and synchronous_commit on), redis-server, two affiliate-servers on
 * that one database, one affiliate-bridge with both servers' URLs
 * (--shared-db 1) and two workers serving both. Through the bridge:
 * N_ORDERS distinct signed orders on ORDER_CONNS keep-alive connections,
 * every tenth posted a second time once acked (it must answer 200, never
 * 201), and N_APPS applications on APP_CONNS connections, each with its
 * own X-Request-Id kept across retries, paced by the orders so that they
 * meet every fault too. A client retries whatever got no
 * 2xx (an error answer or a broken connection) with a short backoff, as
 * in the other fault tests. Meanwhile, at fixed shares of the orders
 * acked: server A is killed with SIGKILL (and started again), PostgreSQL
 * is killed with SIGKILL (every process of it, a crash: recovery replays
 * the WAL) and started again, Redis is killed and started again empty,
 * and PostgreSQL is restarted cleanly (fast shutdown).
 *
 * Then, counting from what clients got a 2xx for against PostgreSQL:
 * every acked order is stored once and listed once by GET /orders; the
 * Redis copy of the orders (the one the database names) holds no order
 * that is not in PostgreSQL, and once caught up exactly the stored ones;
 * every acked application exists once, made by its own request, and ends
 * approved with one approval. It prints acked / lost / duplicated for
 * both; lost and duplicated must be 0.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "aff_util.h"
#include "faults.h"
#include "testutil_pg.h"

#define N_ORDERS 4000
#define ORDER_CONNS 16
#define N_APPS 400 /* < 1150 pairs (fs_pair) */
#define APP_CONNS 8
#define N_SERVERS 2
#define N_WORKERS 2
/* Everything acked by then, faults included. */
#define LOAD_DEADLINE_MS 150000
#define APPROVE_TIMEOUT_MS 90000
#define SYNC_TIMEOUT_MS 30000
#define START_TIMEOUT_MS 30000
/* How long each killed part stays down, so the load meets the outage. */
#define DOWN_MS 300
#define WORKER_SECRET "faults-cluster-worker-secret"

struct cluster {
	struct tu_pg pg;
	struct tu_redis redis;
	char *dir;
	char rpc[N_SERVERS][700], jobs[N_SERVERS][700], results[N_SERVERS][700];
	pid_t server[N_SERVERS], bridge, workers[N_WORKERS];
	int port; /* the bridge's */
	/* The bridge's port in the shape the fault helpers take. */
	struct fs_stack fs;
};

static int
cl_healthy(struct cluster *c)
{
	c->fs.port = c->port;
	return (fs_wait_healthy(&c->fs, START_TIMEOUT_MS));
}

/* Starts server i; waits until its own RPC address answers a health
 * call when wait is set (a bridge answers while any server does). */
static int
cl_server_start(struct cluster *c, int i)
{
	char log[800], redis[64], data[720];
	const char *args[] = { "--db", c->pg.uri, "--listen", c->rpc[i],
		"--data-dir", data, "--redis", redis, "--jobs", c->jobs[i],
		"--results", c->results[i], "--job-visibility", "1000",
		"--orders-copy", "on", "--log-level", "warn", NULL };
	int64_t until = aff_mono_ms() + START_TIMEOUT_MS;

	snprintf(redis, sizeof(redis), "127.0.0.1:%d", c->redis.port);
	snprintf(data, sizeof(data), "%s/server%d", c->dir, i + 1);
	snprintf(log, sizeof(log), "%s/server%d.log", c->dir, i + 1);
	mkdir(data, 0700);
	if ((c->server[i] = tu_spawn("affiliate-server", args, log)) <= 0)
		return (-1);
	/* Ready when its RPC address answers a raw call (any reply). */
	while (aff_mono_ms() < until) {
		uint8_t junk = 0; /* an empty request: answered UNIMPLEMENTED */
		size_t n;
		uint8_t *reply = tu_raw_call(c->rpc[i], &junk, 0, 500, &n);

		if (reply != NULL) {
			free(reply);
			return (0);
		}
		if (waitpid(c->server[i], NULL, WNOHANG) == c->server[i]) {
			c->server[i] = 0;
			return (-1);
		}
		tu_sleep_ms(50);
	}
	return (-1);
}

static int
cl_bridge_start(struct cluster *c)
{
	char log[800], listen[64], servers[1500];
	const char *args[] = { "--listen", listen, "--server", servers,
		"--shared-db", "1", "--log-level", "warn", NULL };

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", c->port);
	snprintf(servers, sizeof(servers), "%s,%s", c->rpc[0], c->rpc[1]);
	snprintf(log, sizeof(log), "%s/bridge.log", c->dir);
	if ((c->bridge = tu_spawn("affiliate-bridge", args, log)) <= 0)
		return (-1);
	return (cl_healthy(c));
}

static int
cl_worker_start(struct cluster *c, int i)
{
	char log[800], jobs[1500], results[1500];
	const char *args[] = { "--jobs", jobs, "--results", results,
		"--review-delay", "20", "--concurrency", "4", "--log-level", "warn",
		NULL };

	snprintf(jobs, sizeof(jobs), "%s,%s", c->jobs[0], c->jobs[1]);
	snprintf(results, sizeof(results), "%s,%s", c->results[0],
	    c->results[1]);
	snprintf(log, sizeof(log), "%s/worker%d.log", c->dir, i + 1);
	c->workers[i] = tu_spawn("affiliate-worker", args, log);
	return (c->workers[i] > 0 ? 0 : -1);
}

/* One integer from PostgreSQL (its own connection); -1 on any error. */
static long long
pg_int(const struct cluster *c, const char *sql)
{
	PGconn *conn = PQconnectdb(c->pg.uri);
	PGresult *r;
	long long v = -1;

	if (PQstatus(conn) == CONNECTION_OK) {
		r = PQexec(conn, sql);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		    !PQgetisnull(r, 0, 0))
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
	}
	PQfinish(conn);
	return (v);
}

static long long
pg_wait(const struct cluster *c, const char *sql, long long want,
    int timeout_ms)
{
	int64_t until = aff_mono_ms() + timeout_ms;
	long long v;

	while ((v = pg_int(c, sql)) != want && aff_mono_ms() < until)
		tu_sleep_ms(100);
	return (v);
}

static int
cl_start(struct cluster *c)
{
	memset(c, 0, sizeof(*c));
	if ((c->dir = tu_tmpdir()) == NULL)
		return (-1);
	for (int i = 0; i < N_SERVERS; i++) {
		snprintf(c->rpc[i], sizeof(c->rpc[i]), "ipc://%s/rpc%d.sock", c->dir,
		    i + 1);
		snprintf(c->jobs[i], sizeof(c->jobs[i]), "ipc://%s/jobs%d.sock",
		    c->dir, i + 1);
		snprintf(c->results[i], sizeof(c->results[i]),
		    "ipc://%s/results%d.sock", c->dir, i + 1);
	}
	c->port = tu_free_port();
	/* What every server shares (README, Running across hosts): the
	 * webhook secret and the worker secret. */
	setenv("AFFILIATE_WEBHOOK_SECRET", FS_SECRET, 1);
	setenv("AFFILIATE_WORKER_SECRET", WORKER_SECRET, 1);
	if (tu_pg_start(&c->pg) != 0 || tu_redis_start(&c->redis) != 0)
		return (-1);
	/* One after the other: the first applies the schema and the seed. */
	for (int i = 0; i < N_SERVERS; i++)
		if (cl_server_start(c, i) != 0)
			return (-1);
	/* Editors 100..149, eligible for every active advertiser, as
	 * tu_seed_editors does in SQLite. */
	if (pg_int(c, "WITH e AS (INSERT INTO editors (id, name, created_at)"
	              " SELECT i, 'Editor ' || i, 0 FROM generate_series(100, 149) i"
	              " RETURNING id), g AS (INSERT INTO eligibility (editor_id,"
	              " advertiser_id) SELECT e.id, a.id FROM e, advertisers a"
	              " WHERE a.status = 'active' RETURNING 1)"
	              " SELECT count(*) FROM g") != 50 * 23)
		return (-1);
	if (cl_bridge_start(c) != 0)
		return (-1);
	for (int i = 0; i < N_WORKERS; i++)
		if (cl_worker_start(c, i) != 0)
			return (-1);
	return (0);
}

static void
cl_stop(struct cluster *c)
{
	for (int i = 0; i < N_WORKERS; i++)
		tu_kill(c->workers[i], SIGKILL);
	tu_kill(c->bridge, SIGKILL);
	for (int i = 0; i < N_SERVERS; i++)
		tu_kill(c->server[i], SIGKILL);
	tu_redis_stop(&c->redis);
	tu_pg_stop(&c->pg);
	if (c->dir != NULL && getenv("AFFILIATE_TEST_KEEP") == NULL)
		tu_rmtree(c->dir);
	free(c->dir);
	c->dir = NULL;
}

static void
log_head(const struct cluster *c, const char *name)
{
	char path[800], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.log", c->dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return;
	fprintf(stderr, "--- %s (first lines)\n", path);
	for (int i = 0; i < 30 && fgets(line, sizeof(line), f) != NULL; i++)
		fputs(line, stderr);
	fclose(f);
}

static int
ended(pid_t *pid)
{
	if (*pid > 0 && waitpid(*pid, NULL, WNOHANG) == *pid) {
		*pid = 0;
		return (1);
	}
	return (0);
}

/* NULL while every started part runs; else the one that died by itself
 * (its log's first lines go to stderr). */
static const char *
cl_dead(struct cluster *c)
{
	static const char *const servers[] = { "server1", "server2" };
	static const char *const workers[] = { "worker1", "worker2" };

	for (int i = 0; i < N_SERVERS; i++)
		if (ended(&c->server[i])) {
			log_head(c, servers[i]);
			return (servers[i]);
		}
	if (ended(&c->bridge)) {
		log_head(c, "bridge");
		return ("bridge");
	}
	for (int i = 0; i < N_WORKERS; i++)
		if (ended(&c->workers[i])) {
			log_head(c, workers[i]);
			return (workers[i]);
		}
	if (ended(&c->redis.pid))
		return ("redis");
	return (NULL);
}

struct order_load {
	struct fs_load base;
	unsigned char *acked_by; /* per order: 1 once it got a 2xx */
	atomic_long twice;       /* second posts answered 200 */
	atomic_long twice_201;   /* second posts answered 201: stored twice */
};

static void *
order_main(void *arg)
{
	struct order_load *l = arg;
	struct http_conn conn;
	struct http_answer a;
	char body[256], hdr[200], what[48];
	long i;

	fs_conn_init(&conn, l->base.s->port, 10000);
	while ((i = atomic_fetch_add(&l->base.next, 1)) < N_ORDERS) {
		fs_order_body(i, body, sizeof(body), hdr, sizeof(hdr));
		snprintf(what, sizeof(what), "order F-%ld", i);
		if (fs_load_post(&l->base, &conn, "/webhook/orders", hdr, body, what,
		        &a) != 0)
			continue;
		l->acked_by[i] = 1;
		if (i % 10 != 0)
			continue;
		/* Some orders twice: a partner that did not see the answer. */
		snprintf(what, sizeof(what), "order F-%ld again", i);
		if (fs_load_post(&l->base, &conn, "/webhook/orders", hdr, body, what,
		        &a) != 0)
			continue;
		atomic_fetch_sub(&l->base.acked, 1); /* acked counts orders */
		if (a.status == 200)
			atomic_fetch_add(&l->twice, 1);
		else
			atomic_fetch_add(&l->twice_201, 1);
	}
	fs_conn_fini(&conn);
	return (NULL);
}

struct app_load {
	struct fs_load base;
	int64_t *app_id; /* per application: the id its 2xx answered, or 0 */
	atomic_long *orders_acked; /* the order load's, which paces this one */
};

static void *
app_main(void *arg)
{
	struct app_load *l = arg;
	struct http_conn conn;
	struct http_answer a;
	char body[128], hdr[64], what[48];
	const char *id;
	long k;

	fs_conn_init(&conn, l->base.s->port, 10000);
	while ((k = atomic_fetch_add(&l->base.next, 1)) < N_APPS) {
		long e, adv;

		/* Application k once k / N_APPS of the orders are acked, so
		 * the applications meet every fault the orders meet. */
		while (atomic_load(l->orders_acked) < k * N_ORDERS / N_APPS &&
		    aff_mono_ms() < atomic_load(&l->base.deadline))
			tu_sleep_ms(5);
		fs_pair(k, &e, &adv);
		snprintf(body, sizeof(body),
		    "{\"advertiser_id\":%ld,\"editor_id\":%ld}", adv, e);
		snprintf(hdr, sizeof(hdr), "X-Request-Id: fc-%ld\r\n", k);
		snprintf(what, sizeof(what), "application fc-%ld", k);
		if (fs_load_post(&l->base, &conn, "/applications", hdr, body, what,
		        &a) == 0 &&
		    (id = strstr(a.body, "\"id\":")) != NULL)
			l->app_id[k] = strtoll(id + 5, NULL, 10);
	}
	fs_conn_fini(&conn);
	return (NULL);
}

/* Waits until want orders are acked, failing at once (load stopped) when
 * a part died by itself, or at the deadline. */
static void
wait_acked(struct cluster *c, struct order_load *ol, struct app_load *al,
    long want)
{
	const char *dead = NULL;

	while (atomic_load(&ol->base.acked) < want &&
	    aff_mono_ms() < atomic_load(&ol->base.deadline) &&
	    (dead = cl_dead(c)) == NULL)
		tu_sleep_ms(5);
	if (dead != NULL) {
		atomic_store(&ol->base.deadline, 0);
		atomic_store(&al->base.deadline, 0);
		fail_msg("affiliate-%s died by itself", dead);
	}
	assert_true(atomic_load(&ol->base.acked) >= want);
}

enum fault { F_SERVER_KILL, F_PG_CRASH, F_REDIS_STOP, F_PG_RESTART };
static const char *const fault_name[] = { "kill -9 of server A",
	"PostgreSQL crash (kill -9)", "Redis stop", "PostgreSQL restart" };

/* Does one fault, keeps the part down DOWN_MS, starts it again; returns
 * how long it was out (ms). */
static int64_t
fault(struct cluster *c, enum fault f)
{
	int64_t t0 = aff_mono_ms();

	switch (f) {
	case F_SERVER_KILL:
		tu_kill(c->server[0], SIGKILL);
		c->server[0] = 0;
		tu_sleep_ms(DOWN_MS);
		assert_int_equal(cl_server_start(c, 0), 0);
		break;
	case F_PG_CRASH:
		tu_pg_kill(&c->pg);
		tu_sleep_ms(DOWN_MS);
		assert_int_equal(tu_pg_restart(&c->pg), 0);
		break;
	case F_REDIS_STOP:
		tu_redis_stop(&c->redis);
		tu_sleep_ms(DOWN_MS);
		assert_int_equal(tu_redis_start(&c->redis), 0);
		break;
	case F_PG_RESTART:
		/* Fast shutdown (open transactions roll back), start again. */
		assert_int_equal(tu_pg_restart(&c->pg), 0);
		break;
	}
	return (aff_mono_ms() - t0);
}

/* Counts each order "F-<i>" (i < n) stored in PostgreSQL into stored[i];
 * returns the rows in all, or -1. */
static long
orders_stored(const struct cluster *c, long n, int *stored)
{
	PGconn *conn = PQconnectdb(c->pg.uri);
	PGresult *r;
	long rows = -1;

	if (PQstatus(conn) == CONNECTION_OK) {
		r = PQexec(conn, "SELECT order_id FROM orders");
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			rows = PQntuples(r);
			for (long k = 0; k < rows; k++) {
				const char *id = PQgetvalue(r, (int)k, 0);
				char *end;
				long i = strncmp(id, "F-", 2) == 0
				    ? strtol(id + 2, &end, 10)
				    : -1;
				if (i >= 0 && i < n && *end == '\0')
					stored[i]++;
			}
		}
		PQclear(r);
	}
	PQfinish(conn);
	return (rows);
}

/*
 * The Redis copy the database names (cache.h: "aff:<db_id>:<copy>", its
 * "all" index): counts each order into copied[i] and the copy's entries
 * that are not stored in PostgreSQL (or have no key of their own) into
 * *not_in_pg. Returns the entries, or -1.
 */
static long
orders_copied(const struct cluster *c, long n, const int *stored,
    int *copied, long *not_in_pg)
{
	PGconn *conn = PQconnectdb(c->pg.uri);
	PGresult *r;
	struct timeval tv = { 5, 0 };
	redisContext *rc;
	redisReply *ids;
	char ns[200] = "";
	long entries = -1;

	*not_in_pg = 0;
	if (PQstatus(conn) == CONNECTION_OK) {
		r = PQexec(conn,
		    "SELECT (SELECT value FROM meta WHERE key = 'db_id'),"
		    " (SELECT value FROM meta WHERE key = 'orders_copy')");
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			snprintf(ns, sizeof(ns), "aff:%s:%s", PQgetvalue(r, 0, 0),
			    PQgetvalue(r, 0, 1));
		PQclear(r);
	}
	PQfinish(conn);
	if (ns[0] == '\0')
		return (-1);
	rc = redisConnectWithTimeout("127.0.0.1", c->redis.port, tv);
	if (rc == NULL || rc->err != 0) {
		redisFree(rc);
		return (-1);
	}
	ids = redisCommand(rc, "ZRANGE %s:oi:all 0 -1", ns);
	if (ids != NULL && ids->type == REDIS_REPLY_ARRAY) {
		entries = (long)ids->elements;
		for (size_t k = 0; k < ids->elements; k++) {
			const char *id = ids->element[k]->str;
			redisReply *e = redisCommand(rc, "EXISTS %s:o:%s", ns, id);
			char *end;
			long i = strncmp(id, "F-", 2) == 0 ? strtol(id + 2, &end, 10)
			                                   : -1;

			if (i >= 0 && i < n && *end == '\0' && stored[i] > 0 &&
			    e != NULL && e->type == REDIS_REPLY_INTEGER &&
			    e->integer == 1)
				copied[i]++;
			else
				(*not_in_pg)++;
			freeReplyObject(e);
		}
	}
	freeReplyObject(ids);
	redisFree(rc);
	return (entries);
}

static void
count_one(const char *item, void *arg)
{
	(void)item;
	(*(long *)arg)++;
}

static void
test_two_servers_on_postgresql_lose_and_duplicate_nothing_through_faults(
    void **state)
{
	static const enum fault faults[] = { F_SERVER_KILL, F_PG_CRASH,
		F_REDIS_STOP, F_PG_RESTART };
	struct cluster c;
	struct order_load ol = { 0 };
	struct app_load al = { 0 };
	pthread_t ot[ORDER_CONNS], at[APP_CONNS];
	int *stored, *listed, *copied;
	long acked = 0, lost_db = 0, lost_list = 0, dup_db = 0, dup_list = 0;
	long rows, listed_total, entries, not_in_pg = 0, copy_missing = 0;
	long app_acked = 0, app_lost = 0, app_listed = 0;
	long long app_rows, approved, app_dup;
	int64_t t0, t_load, outage[4];
	PGconn *conn;

	(void)state;
	assert_int_equal(cl_start(&c), 0);
	c.fs.port = c.port;
	ol.base.s = &c.fs;
	al.base.s = &c.fs;
	al.orders_acked = &ol.base.acked;
	ol.acked_by = calloc(N_ORDERS, 1);
	al.app_id = calloc(N_APPS, sizeof(int64_t));
	assert_non_null(ol.acked_by);
	assert_non_null(al.app_id);
	t0 = aff_mono_ms();
	ol.base.deadline = t0 + LOAD_DEADLINE_MS;
	al.base.deadline = t0 + LOAD_DEADLINE_MS;
	for (int i = 0; i < ORDER_CONNS; i++)
		assert_int_equal(pthread_create(&ot[i], NULL, order_main, &ol), 0);
	for (int i = 0; i < APP_CONNS; i++)
		assert_int_equal(pthread_create(&at[i], NULL, app_main, &al), 0);
	/* One fault at each fifth of the orders, so each meets traffic. */
	for (int k = 0; k < 4; k++) {
		wait_acked(&c, &ol, &al, (long)N_ORDERS * (k + 1) / 5);
		outage[k] = fault(&c, faults[k]);
	}
	wait_acked(&c, &ol, &al, N_ORDERS);
	for (int i = 0; i < ORDER_CONNS; i++)
		pthread_join(ot[i], NULL);
	for (int i = 0; i < APP_CONNS; i++)
		pthread_join(at[i], NULL);
	t_load = aff_mono_ms() - t0;

	/* ---- orders */
	stored = calloc(N_ORDERS, sizeof(int));
	listed = calloc(N_ORDERS, sizeof(int));
	copied = calloc(N_ORDERS, sizeof(int));
	assert_non_null(stored);
	assert_non_null(listed);
	assert_non_null(copied);
	rows = orders_stored(&c, N_ORDERS, stored);
	listed_total = fs_orders_listed(c.port, N_ORDERS, listed);
	for (long i = 0; i < N_ORDERS; i++) {
		acked += ol.acked_by[i];
		lost_db += ol.acked_by[i] && stored[i] == 0;
		lost_list += ol.acked_by[i] && listed[i] == 0;
		dup_db += stored[i] > 1;
		dup_list += listed[i] > 1;
	}
	/* The Redis copy, once both servers' syncs have caught up. */
	assert_int_equal(pg_wait(&c,
	                     "SELECT count(*) FROM orders WHERE cached_rev < rev",
	                     0, SYNC_TIMEOUT_MS),
	    0);
	entries = orders_copied(&c, N_ORDERS, stored, copied, &not_in_pg);
	for (long i = 0; i < N_ORDERS; i++)
		copy_missing += stored[i] > 0 && copied[i] == 0;

	/* ---- applications: all approved by the workers, then counted */
	approved = pg_wait(&c,
	    "SELECT count(*) FROM applications WHERE status = 'approved'", N_APPS,
	    APPROVE_TIMEOUT_MS);
	conn = PQconnectdb(c.pg.uri);
	assert_int_equal(PQstatus(conn), CONNECTION_OK);
	for (long k = 0; k < N_APPS; k++) {
		char id[32], rid[32];
		const char *params[2] = { id, rid };
		PGresult *r;

		if (al.app_id[k] == 0)
			continue;
		app_acked++;
		snprintf(id, sizeof(id), "%lld", (long long)al.app_id[k]);
		snprintf(rid, sizeof(rid), "fc-%ld", k);
		r = PQexecParams(conn,
		    "SELECT count(*) FROM applications WHERE id = $1::bigint"
		    " AND request_id = $2 AND status = 'approved'",
		    2, NULL, params, NULL, NULL, 0);
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		app_lost += strcmp(PQgetvalue(r, 0, 0), "1") != 0;
		PQclear(r);
	}
	PQfinish(conn);
	app_rows = pg_int(&c, "SELECT count(*) FROM applications");
	/* A second row for one pair, or a second approval of one. */
	app_dup = app_rows -
	    pg_int(&c, "SELECT count(*) FROM (SELECT DISTINCT editor_id,"
	               " advertiser_id FROM applications) p") +
	    pg_int(&c, "SELECT count(*) FROM application_events"
	               " WHERE status = 'approved'") -
	    approved;
	assert_true(fs_list_each(c.port,
	                "/applications?status=approved&limit=1000", "{\"id\":",
	                count_one, &app_listed) >= 0);

	printf("faults cluster: 2 servers on PostgreSQL, %d orders (every "
	       "tenth twice) on %d connections and %d applications on %d, in "
	       "%.1f s; %s %.2f s, %s %.2f s, %s %.2f s, %s %.2f s\n",
	    N_ORDERS, ORDER_CONNS, N_APPS, APP_CONNS, (double)t_load / 1000,
	    fault_name[faults[0]], (double)outage[0] / 1000,
	    fault_name[faults[1]], (double)outage[1] / 1000,
	    fault_name[faults[2]], (double)outage[2] / 1000,
	    fault_name[faults[3]], (double)outage[3] / 1000);
	printf("faults cluster: orders acked %ld, lost %ld (PostgreSQL) %ld "
	       "(GET /orders), duplicated %ld (PostgreSQL) %ld (GET /orders); "
	       "%ld rows, %ld listed; sent twice: %ld answered 200, %ld 201; "
	       "Redis copy %ld entries, %ld not in PostgreSQL, %ld stored but "
	       "missing; %ld retries after %ld broken connections and %ld "
	       "error answers\n",
	    acked, lost_db, lost_list, dup_db, dup_list, rows, listed_total,
	    (long)atomic_load(&ol.twice), (long)atomic_load(&ol.twice_201),
	    entries, not_in_pg, copy_missing, (long)atomic_load(&ol.base.retries),
	    (long)atomic_load(&ol.base.conn_errors),
	    (long)atomic_load(&ol.base.refused));
	printf("faults cluster: applications acked %ld, lost %ld, duplicated "
	       "%lld; %lld rows, %lld approved, %ld listed approved; %ld "
	       "retries after %ld broken connections and %ld error answers; "
	       "%lld deliveries for %d jobs\n",
	    app_acked, app_lost, app_dup, app_rows, approved, app_listed,
	    (long)atomic_load(&al.base.retries),
	    (long)atomic_load(&al.base.conn_errors),
	    (long)atomic_load(&al.base.refused),
	    pg_int(&c, "SELECT sum(attempts) FROM jobs"), N_APPS);
	fflush(stdout);

	assert_null(cl_dead(&c));
	assert_int_equal(atomic_load(&ol.base.odd_status), 0);
	assert_int_equal(atomic_load(&al.base.odd_status), 0);
	assert_int_equal(lost_db, 0);
	assert_int_equal(lost_list, 0);
	assert_int_equal(dup_db, 0);
	assert_int_equal(dup_list, 0);
	assert_int_equal(atomic_load(&ol.twice_201), 0);
	assert_int_equal(not_in_pg, 0);
	assert_int_equal(copy_missing, 0);
	/* After the retries, every order exactly once. */
	assert_int_equal(acked, N_ORDERS);
	assert_int_equal(rows, N_ORDERS);
	assert_int_equal(listed_total, N_ORDERS);
	assert_int_equal(entries, N_ORDERS);
	assert_int_equal(app_lost, 0);
	assert_int_equal(app_dup, 0);
	assert_int_equal(app_acked, N_APPS);
	assert_int_equal(app_rows, N_APPS);
	assert_int_equal(approved, N_APPS);
	assert_int_equal(app_listed, N_APPS);
	free(stored);
	free(listed);
	free(copied);
	free(ol.acked_by);
	free(al.app_id);
	cl_stop(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_two_servers_on_postgresql_lose_and_duplicate_nothing_through_faults),
	};

	return (cmocka_run_group_tests_name("faults_cluster", tests, NULL, NULL));
}
