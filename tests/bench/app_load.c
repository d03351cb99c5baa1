/*
 * app_load.c - applications per second end to end: POST /applications to
 * the bridge until N are in, then wait until a worker has reviewed every
 * one of them.
 *
 * It first writes, straight into the server's SQLite file (WAL mode, so a
 * second connection is fine), enough new editors ("Bench i", ids from 1000
 * or past the largest id there) each eligible for every active advertiser
 * to make N distinct (editor, advertiser) pairs. CONNECTIONS threads, each
 * with its own keep-alive HTTP/1.1 connection to 127.0.0.1:HTTP_PORT, then
 * POST one application per pair, as fast as the answers come back. Once
 * every POST is answered it polls GET /applications?status=pending&limit=1
 * every 10 ms until the answer is [] (at most 120 s), and then pages
 * through the approved applications to check that every accepted one is
 * there. The totals are printed as "key value" lines for scripts:
 *
 *   accepted 2000          POSTs answered 202
 *   errors 0               other answers, broken connections, timeouts
 *   accept_seconds 1.234   first POST sent to last POST answered
 *   accepted_per_s 1620.7
 *   approved_seconds 1.456 first POST sent to none pending
 *   approved_per_s 1373.6
 *   approved 2000          this run's applications found approved
 *   p50_us 15000           POST latency percentiles, microseconds
 *   p99_us 40000
 *
 * Usage: bench-app-load DB_PATH HTTP_PORT N CONNECTIONS
 * Exits 0 when all N were accepted and approved; 1 on any error or when
 * the applications are still pending after 120 s; 2 on bad arguments.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "http_conn.h"
#include "latency.h"

/* How long the applications may stay pending after the last POST. */
#define APPROVE_TIMEOUT_S 120
#define POLL_INTERVAL_MS 10
/* The bridge's largest page. */
#define PAGE_LIMIT 1000

/* One pair to apply for. */
struct pair {
	int64_t editor_id;
	int64_t advertiser_id;
};

struct load_thread {
	pthread_t tid;
	int port;
	const struct pair *pairs;
	size_t n_pairs;
	atomic_size_t *next; /* the next pair to apply for, shared */
	struct lat lat;      /* the thread's latencies; it owns them */
	uint64_t accepted, errors;
	uint64_t last_ns; /* when this thread's last answer came */
	int started;
	int failed; /* could not even set up: out of memory */
};

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* --- Seeding ------------------------------------------------------------ */

static int
seed_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "app_load: %s: %s\n", sql,
		    err ? err : sqlite3_errmsg(db));
		sqlite3_free(err);
		return (-1);
	}
	return (0);
}

/*
 * Adds ceil(n / active advertisers) editors, each eligible for every active
 * advertiser, and fills *pairs with n distinct pairs of them, spread over
 * the advertisers. Caller frees *pairs; *base is the first new editor id.
 */
static int
seed_pairs(const char *db_path, size_t n, struct pair **pairs, int64_t *base)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t *adv = NULL;
	struct pair *p = NULL;
	size_t n_adv = 0, cap_adv = 0, n_editors, i;
	char sql[256];
	int rc;

	/* READWRITE without CREATE: a wrong path is an error, not an empty
	 * database beside the server's. */
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		fprintf(stderr, "app_load: %s: %s\n", db_path,
		    db ? sqlite3_errmsg(db) : "cannot open");
		goto failed;
	}
	/* The server writes too; wait for its transactions to end. */
	sqlite3_busy_timeout(db, 10000);
	if (seed_exec(db, "BEGIN IMMEDIATE") != 0)
		goto failed;

	if (sqlite3_prepare_v2(db,
	        "SELECT id FROM advertisers WHERE status = 'active' ORDER BY id",
	        -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "app_load: %s\n", sqlite3_errmsg(db));
		goto failed_tx;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n_adv == cap_adv) {
			int64_t *q;
			cap_adv = cap_adv ? cap_adv * 2 : 64;
			if ((q = realloc(adv, cap_adv * sizeof(*q))) == NULL) {
				fprintf(stderr, "app_load: out of memory\n");
				goto failed_tx;
			}
			adv = q;
		}
		adv[n_adv++] = sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "app_load: reading advertisers: %s\n",
		    sqlite3_errmsg(db));
		goto failed_tx;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (n_adv == 0) {
		fprintf(stderr, "app_load: %s has no active advertiser\n", db_path);
		goto failed_tx;
	}

	/* New editors only, so that a second run on the same file applies
	 * for pairs nobody has applied for yet. */
	if (sqlite3_prepare_v2(db,
	        "SELECT max(1000, coalesce(max(id), 0) + 1) FROM editors", -1,
	        &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		fprintf(stderr, "app_load: reading editors: %s\n",
		    sqlite3_errmsg(db));
		goto failed_tx;
	}
	*base = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;

	n_editors = (n + n_adv - 1) / n_adv;
	if (sqlite3_prepare_v2(db,
	        "INSERT INTO editors (id, name, created_at) VALUES (?1, ?2, 0)",
	        -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "app_load: %s\n", sqlite3_errmsg(db));
		goto failed_tx;
	}
	for (i = 0; i < n_editors; i++) {
		snprintf(sql, sizeof(sql), "Bench %zu", i);
		sqlite3_bind_int64(st, 1, *base + (int64_t) i);
		sqlite3_bind_text(st, 2, sql, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) != SQLITE_DONE) {
			fprintf(stderr, "app_load: inserting editor %lld: %s\n",
			    (long long) (*base + (int64_t) i), sqlite3_errmsg(db));
			goto failed_tx;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	st = NULL;
	snprintf(sql, sizeof(sql),
	    "INSERT INTO eligibility (editor_id, advertiser_id)"
	    " SELECT e.id, a.id FROM editors e, advertisers a"
	    " WHERE e.id >= %lld AND a.status = 'active'",
	    (long long) *base);
	if (seed_exec(db, sql) != 0 || seed_exec(db, "COMMIT") != 0)
		goto failed_tx;

	if ((p = malloc(n * sizeof(*p))) == NULL) {
		fprintf(stderr, "app_load: out of memory\n");
		goto failed;
	}
	/* Neighbouring POSTs go to different advertisers. */
	for (i = 0; i < n; i++) {
		p[i].editor_id = *base + (int64_t) (i / n_adv);
		p[i].advertiser_id = adv[i % n_adv];
	}
	fprintf(stderr,
	    "app_load: added editors %lld..%lld, eligible for %zu active "
	    "advertisers\n",
	    (long long) *base, (long long) (*base + (int64_t) n_editors - 1),
	    n_adv);
	free(adv);
	sqlite3_close(db);
	*pairs = p;
	return (0);

failed_tx:
	sqlite3_finalize(st);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
failed:
	free(adv);
	sqlite3_close(db);
	return (-1);
}

/* --- The POST phase ----------------------------------------------------- */

static void *
load_thread_main(void *arg)
{
	struct load_thread *t = arg;
	struct http_conn c = { .fd = -1, .port = t->port };
	struct http_answer a;
	char body[128], req[512];
	uint64_t t0, t1;
	size_t i;
	int blen, rlen, reported = 0;

	while ((i = atomic_fetch_add(t->next, 1)) < t->n_pairs) {
		blen = snprintf(body, sizeof(body),
		    "{\"advertiser_id\":%lld,\"editor_id\":%lld}",
		    (long long) t->pairs[i].advertiser_id,
		    (long long) t->pairs[i].editor_id);
		rlen = snprintf(req, sizeof(req),
		    "POST /applications HTTP/1.1\r\n"
		    "Host: 127.0.0.1:%d\r\n"
		    "Content-Type: application/json\r\n"
		    "Content-Length: %d\r\n"
		    "\r\n%s",
		    t->port, blen, body);
		t0 = now_ns();
		/* No retry: a POST whose answer was lost may have been
		 * applied, and sending it again would count a 409. */
		if (http_roundtrip(&c, req, (size_t) rlen, &a) != 0) {
			t->errors++;
			if (!reported++)
				fprintf(stderr, "app_load: POST %s: no answer "
				                "(%s)\n",
				    body, strerror(errno));
			continue;
		}
		t1 = now_ns();
		t->last_ns = t1;
		if (a.status == 202) {
			t->accepted++;
			if (lat_push(&t->lat, t1 - t0) != 0) {
				t->failed = 1;
				break;
			}
		} else {
			t->errors++;
			if (!reported++)
				fprintf(stderr, "app_load: POST %s: %d %s\n", body,
				    a.status, a.body);
		}
		http_after(&c, &a);
	}
	http_disconnect(&c);
	free(c.buf);
	return (NULL);
}

/* --- Waiting for the reviews -------------------------------------------- */

/* 1 when BODY is an empty JSON array, 0 when it is a non-empty one, -1
 * otherwise. */
static int
json_array_empty(const char *body)
{
	while (*body == ' ' || *body == '\n' || *body == '\r' || *body == '\t')
		body++;
	if (*body != '[')
		return (-1);
	body++;
	while (*body == ' ' || *body == '\n' || *body == '\r' || *body == '\t')
		body++;
	return (*body == ']');
}

/* The integer after the next "KEY": at or after P, with *P moved past
 * it; -1 when there is none. */
static long long
json_next_int(const char **p, const char *key)
{
	const char *q = strstr(*p, key);
	char *end;
	long long v;

	if (q == NULL)
		return (-1);
	q += strlen(key);
	while (*q == ' ' || *q == ':')
		q++;
	v = strtoll(q, &end, 10);
	if (end == q)
		return (-1);
	*p = end;
	return (v);
}

/* Polls until nothing is pending; returns 0 and when that was seen in
 * *done_ns, or -1 on an error or after APPROVE_TIMEOUT_S. */
static int
wait_none_pending(struct http_conn *c, uint64_t *done_ns)
{
	static const char path[] = "/applications?status=pending&limit=1";
	struct http_answer a;
	uint64_t deadline = now_ns() + (uint64_t) APPROVE_TIMEOUT_S * 1000000000u;
	char req[256];
	int rlen, e, errors = 0;

	rlen = snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", path, c->port);
	for (;;) {
		if (http_roundtrip(c, req, (size_t) rlen, &a) != 0) {
			/* One lost answer is not the end; several are. */
			if (++errors > 5) {
				fprintf(stderr, "app_load: GET %s: no answer\n",
				    path);
				return (-1);
			}
		} else if (a.status != 200 ||
		    (e = json_array_empty(a.body)) < 0) {
			fprintf(stderr, "app_load: GET %s: %d %s\n", path,
			    a.status, a.body);
			return (-1);
		} else if (e == 1) {
			*done_ns = now_ns();
			http_after(c, &a);
			return (0);
		} else
			http_after(c, &a);
		if (now_ns() > deadline) {
			fprintf(stderr,
			    "app_load: applications still pending after %d s\n",
			    APPROVE_TIMEOUT_S);
			return (-1);
		}
		sleep_ms(POLL_INTERVAL_MS);
	}
}

/* Counts the approved applications of editors from BASE on, a page at a
 * time. Returns the count, or -1 on an error. */
static long long
count_approved(struct http_conn *c, int64_t base)
{
	struct http_answer a;
	const char *p;
	long long after = 0, count = 0, id, editor, pages;
	char req[256];
	int rlen, more;

	/* Bounded: a page holds up to PAGE_LIMIT, and no run has 10^9. */
	for (pages = 0; pages < 1000000; pages++) {
		rlen = snprintf(req, sizeof(req),
		    "GET /applications?status=approved&limit=%d&after=%lld "
		    "HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
		    PAGE_LIMIT, after, c->port);
		if (http_roundtrip(c, req, (size_t) rlen, &a) != 0 ||
		    a.status != 200) {
			fprintf(stderr, "app_load: GET approved after %lld: "
			                "%s\n",
			    after, c->fd < 0 ? "no answer" : a.body);
			return (-1);
		}
		/* Every object opens with its "id", then "editor_id". */
		p = a.body;
		while ((id = json_next_int(&p, "\"id\"")) >= 0) {
			if ((editor = json_next_int(&p, "\"editor_id\"")) < 0)
				return (-1);
			if (editor >= base)
				count++;
			after = id;
		}
		p = http_header(a.headers, "Link");
		more = p != NULL && strstr(p, "rel=\"next\"") != NULL;
		http_after(c, &a);
		if (!more)
			return (count);
	}
	return (-1);
}

int
main(int argc, char **argv)
{
	struct load_thread *threads;
	struct http_conn poll = { .fd = -1 };
	struct pair *pairs;
	atomic_size_t next;
	uint64_t accepted = 0, errors = 0, start, accept_end = 0, done = 0;
	struct lat all = { 0 };
	int64_t base;
	long long approved = -1;
	size_t n, total = 0;
	long port, n_conns;
	char *end;
	int failed = 0, waited, i;

	if (argc != 5) {
		fprintf(stderr,
		    "usage: %s DB_PATH HTTP_PORT N CONNECTIONS\n", argv[0]);
		return (2);
	}
	port = strtol(argv[2], &end, 10);
	if (*end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "app_load: HTTP_PORT must be 1..65535\n");
		return (2);
	}
	n = (size_t) strtoul(argv[3], &end, 10);
	if (*end != '\0' || argv[3][0] == '-' || n < 1 || n > 10000000) {
		fprintf(stderr, "app_load: N must be 1..10000000\n");
		return (2);
	}
	n_conns = strtol(argv[4], &end, 10);
	if (*end != '\0' || n_conns < 1 || n_conns > 1024) {
		fprintf(stderr, "app_load: CONNECTIONS must be 1..1024\n");
		return (2);
	}

	if (seed_pairs(argv[1], n, &pairs, &base) != 0)
		return (1);
	if ((threads = calloc((size_t) n_conns, sizeof(*threads))) == NULL) {
		fprintf(stderr, "app_load: out of memory\n");
		free(pairs);
		return (1);
	}

	atomic_init(&next, 0);
	start = now_ns();
	for (i = 0; i < n_conns; i++) {
		threads[i].port = (int) port;
		threads[i].pairs = pairs;
		threads[i].n_pairs = n;
		threads[i].next = &next;
		if (pthread_create(&threads[i].tid, NULL, load_thread_main,
		        &threads[i]) != 0) {
			fprintf(stderr, "app_load: cannot start thread %d\n", i);
			threads[i].failed = 1;
			continue;
		}
		threads[i].started = 1;
	}
	for (i = 0; i < n_conns; i++) {
		if (threads[i].started)
			pthread_join(threads[i].tid, NULL);
		total += threads[i].lat.n;
		accepted += threads[i].accepted;
		errors += threads[i].errors;
		failed |= threads[i].failed;
		if (threads[i].last_ns > accept_end)
			accept_end = threads[i].last_ns;
	}
	if (accept_end == 0)
		accept_end = now_ns();

	poll.port = (int) port;
	waited = wait_none_pending(&poll, &done);
	if (waited == 0)
		approved = count_approved(&poll, base);
	http_disconnect(&poll);
	free(poll.buf);

	/* Percentiles over every accepted POST of every thread. */
	for (i = 0; i < n_conns && !failed; i++)
		if (lat_merge(&all, &threads[i].lat) != 0) {
			fprintf(stderr, "app_load: out of memory\n");
			failed = 1;
		}
	if (!failed) {
		double acc_s = (double) (accept_end - start) / 1e9;
		double app_s = (double) (done - start) / 1e9;

		printf("accepted %llu\n", (unsigned long long) accepted);
		printf("errors %llu\n", (unsigned long long) errors);
		printf("accept_seconds %.3f\n", acc_s);
		printf("accepted_per_s %.1f\n", (double) accepted / acc_s);
		if (waited == 0) {
			printf("approved_seconds %.3f\n", app_s);
			printf("approved_per_s %.1f\n", (double) accepted / app_s);
		}
		printf("approved %lld\n", approved);
		printf("p50_us %u\n", lat_percentile(&all, 50));
		printf("p99_us %u\n", lat_percentile(&all, 99));
	}
	lat_free(&all);
	if (approved >= 0 && (uint64_t) approved != accepted)
		fprintf(stderr, "app_load: %llu accepted but %lld approved\n",
		    (unsigned long long) accepted, approved);
	if (failed)
		fprintf(stderr, "app_load: some threads could not run\n");
	for (i = 0; i < n_conns; i++)
		lat_free(&threads[i].lat);
	free(threads);
	free(pairs);
	return (!failed && errors == 0 && accepted == n && waited == 0 &&
	               approved == (long long) accepted
	           ? 0
	           : 1);
}
