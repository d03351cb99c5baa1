/* faults.c - see faults.h. */
#include "faults.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "aff_util.h"
#include "aff_webhook.h"

#define START_TIMEOUT_MS 20000

int
fs_wait_healthy(const struct fs_stack *s, int timeout_ms)
{
	int64_t until = aff_mono_ms() + timeout_ms;
	struct http_conn c;
	struct http_answer a;
	int rv = -1;

	fs_conn_init(&c, s->port, 2000);
	while (aff_mono_ms() < until) {
		if (fs_request(&c, "GET", "/", NULL, NULL, &a) == 0 &&
		    a.status == 200) {
			rv = 0;
			break;
		}
		tu_sleep_ms(20);
	}
	fs_conn_fini(&c);
	return (rv);
}

int
fs_server_start(struct fs_stack *s)
{
	char log[700], redis[64], pages[32];
	const char *args[] = { "--listen", s->rpc_url, "--data-dir", s->dir,
		"--db", s->db, "--redis", redis, "--jobs", s->jobs_url, "--results",
		s->results_url, "--job-visibility", "1000", "--log-level", "warn",
		NULL };

	if (s->use_redis)
		snprintf(redis, sizeof(redis), "127.0.0.1:%d", s->redis.port);
	else
		snprintf(redis, sizeof(redis), "off");
	snprintf(log, sizeof(log), "%s/server.log", s->dir);
	/* Only the child needs it; set while no other thread reads the
	 * environment (fault tests restart parts from their main thread). */
	if (s->max_pages > 0) {
		snprintf(pages, sizeof(pages), "%ld", s->max_pages);
		setenv("AFFILIATE_DB_MAX_PAGES", pages, 1);
	}
	s->server = tu_spawn("affiliate-server", args, log);
	unsetenv("AFFILIATE_DB_MAX_PAGES");
	if (s->server <= 0)
		return (-1);
	/* Without a bridge yet, its start waits for both. */
	return (s->bridge > 0 ? fs_wait_healthy(s, START_TIMEOUT_MS) : 0);
}

int
fs_bridge_start(struct fs_stack *s)
{
	char log[700], listen[64];
	const char *args[] = { "--listen", listen, "--server", s->rpc_url,
		"--log-level", "warn", NULL };

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->port);
	snprintf(log, sizeof(log), "%s/bridge.log", s->dir);
	if ((s->bridge = tu_spawn("affiliate-bridge", args, log)) <= 0)
		return (-1);
	return (fs_wait_healthy(s, START_TIMEOUT_MS));
}

int
fs_worker_start(struct fs_stack *s, int i)
{
	char log[700], delay[16];
	const char *args[] = { "--jobs", s->jobs_url, "--results",
		s->results_url, "--data-dir", s->dir, "--review-delay", delay,
		"--concurrency", "4",
		"--log-level", "warn", NULL };

	snprintf(delay, sizeof(delay), "%d", s->review_ms > 0 ? s->review_ms : 20);
	snprintf(log, sizeof(log), "%s/worker.log", s->dir);
	s->workers[i] = tu_spawn("affiliate-worker", args, log);
	return (s->workers[i] > 0 ? 0 : -1);
}

void
fs_server_kill(struct fs_stack *s)
{
	tu_kill(s->server, SIGKILL);
	s->server = 0;
}

void
fs_bridge_kill(struct fs_stack *s)
{
	tu_kill(s->bridge, SIGKILL);
	s->bridge = 0;
}

void
fs_worker_kill(struct fs_stack *s, int i)
{
	tu_kill(s->workers[i], SIGKILL);
	s->workers[i] = 0;
}

/* Whether pid (0: not started) ended; reaps it when it did. */
static int
ended(pid_t pid)
{
	return (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid);
}

static void
print_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "%s\n", line);
}

/* Copies the last lines of the part's log to stderr. */
static void
log_tail(const struct fs_stack *s, const char *name)
{
	enum { KEEP = 40 };
	char path[700], ring[KEEP][512];
	long n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.log", s->dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(ring[n % KEEP], sizeof(ring[0]), f) != NULL)
		n++;
	fclose(f);
	fprintf(stderr, "--- %s (last %ld of %ld lines)\n", path,
	    n < KEEP ? n : (long)KEEP, n);
	for (long i = n < KEEP ? 0 : n - KEEP; i < n; i++)
		fputs(ring[i % KEEP], stderr);
}

void
fs_stack_explain(struct fs_stack *s, const char *why)
{
	static const char *const parts[] = { "server", "bridge", "worker" };

	fprintf(stderr, "--- %s; the stack's state:\n", why);
	if (fs_stack_dead(s) != NULL)
		return; /* its log is out */
	tu_sql_each(s->db,
	    "SELECT 'jobs: ' || kind || ' ' || state || ' attempt ' || attempts"
	    " || ': ' || count(*) || ' ' || coalesce(max(last_error), '')"
	    " FROM jobs GROUP BY kind, state, attempts",
	    print_line, NULL);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		log_tail(s, parts[i]);
}

const char *
fs_stack_dead(struct fs_stack *s)
{
	const char *dead = NULL;

	if (ended(s->server)) {
		s->server = 0;
		dead = "server";
	} else if (ended(s->bridge)) {
		s->bridge = 0;
		dead = "bridge";
	} else if (s->use_redis && ended(s->redis.pid)) {
		s->redis.pid = 0;
		return ("redis");
	}
	for (int i = 0; dead == NULL && i < s->n_workers; i++)
		if (ended(s->workers[i])) {
			s->workers[i] = 0;
			dead = "worker";
		}
	if (dead != NULL)
		log_tail(s, dead);
	return (dead);
}

int
fs_stack_start(struct fs_stack *s, int use_redis, int n_workers)
{
	long max_pages = s->max_pages;
	int review_ms = s->review_ms;

	memset(s, 0, sizeof(*s));
	s->max_pages = max_pages;
	s->review_ms = review_ms;
	s->use_redis = use_redis;
	s->n_workers = n_workers;
	if ((s->dir = tu_tmpdir()) == NULL)
		return (-1);
	if (tu_db_new(s->dir, s->db, sizeof(s->db)) != 0)
		return (-1);
	snprintf(s->rpc_url, sizeof(s->rpc_url), "ipc://%s/rpc.sock", s->dir);
	snprintf(s->jobs_url, sizeof(s->jobs_url), "ipc://%s/jobs.sock", s->dir);
	snprintf(s->results_url, sizeof(s->results_url), "ipc://%s/results.sock",
	    s->dir);
	s->port = tu_free_port();
	/* The children take everything from their flags but the secret. */
	setenv("AFFILIATE_WEBHOOK_SECRET", FS_SECRET, 1);
	if (use_redis && tu_redis_start(&s->redis) != 0)
		return (-1);
	if (fs_server_start(s) != 0 || fs_bridge_start(s) != 0)
		return (-1);
	for (int i = 0; i < n_workers; i++)
		if (fs_worker_start(s, i) != 0)
			return (-1);
	return (0);
}

void
fs_stack_stop(struct fs_stack *s)
{
	for (int i = 0; i < s->n_workers; i++)
		fs_worker_kill(s, i);
	fs_bridge_kill(s);
	fs_server_kill(s);
	tu_redis_stop(&s->redis);
	tu_db_free(s->db);
	s->db[0] = '\0';
	if (s->dir != NULL && getenv("AFFILIATE_TEST_KEEP") == NULL)
		tu_rmtree(s->dir);
	free(s->dir);
	s->dir = NULL;
}

/* ---- requests on the load drivers' keep-alive HTTP client ---- */

void
fs_conn_init(struct http_conn *c, int port, int timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->port = port;
	c->fd = -1;
	c->timeout_ms = timeout_ms;
}

void
fs_conn_fini(struct http_conn *c)
{
	http_disconnect(c);
	free(c->buf);
	c->buf = NULL;
}

int
fs_request(struct http_conn *c, const char *method, const char *target,
    const char *extra_headers, const char *body, struct http_answer *a)
{
	char *req;
	size_t blen = body != NULL ? strlen(body) : 0;
	int n, rv;

	n = asprintf(&req,
	    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n%s",
	    method, target, extra_headers != NULL ? extra_headers : "", blen,
	    body != NULL ? body : "");
	if (n < 0) {
		http_disconnect(c);
		return (-1);
	}
	rv = http_roundtrip(c, req, (size_t)n, a);
	free(req);
	/* The server closing after this answer means the next call
	 * reconnects. */
	if (rv == 0)
		http_after(c, a);
	return (rv);
}

int
fs_load_post(struct fs_load *l, struct http_conn *c, const char *target,
    const char *hdr, const char *body, const char *what, struct http_answer *a)
{
	int backoff = 5;

	for (int attempt = 0; aff_mono_ms() < atomic_load(&l->deadline);
	     attempt++) {
		if (attempt > 0)
			atomic_fetch_add(&l->retries, 1);
		if (fs_request(c, "POST", target, hdr, body, a) != 0)
			atomic_fetch_add(&l->conn_errors, 1);
		else if (a->status / 100 == 2) {
			atomic_fetch_add(&l->acked, 1);
			return (0);
		} else {
			int none = 0;
			atomic_fetch_add(&l->refused, 1);
			/* One item refused for long: say why, once. */
			if (attempt == 50)
				fprintf(stderr, "%s: still %d after 50 posts: %s\n", what,
				    a->status, a->body);
			if (a->status != 503 && a->status != 504 && a->status != 429 &&
			    atomic_compare_exchange_strong(&l->odd_status, &none,
			        a->status))
				fprintf(stderr, "%s: %d %s\n", what, a->status, a->body);
		}
		tu_sleep_ms(backoff);
		backoff = backoff < 200 ? backoff * 2 : 200;
	}
	return (-1);
}

void
fs_load_wait(struct fs_load *l, long want)
{
	const char *dead = NULL;

	while (atomic_load(&l->acked) < want &&
	    aff_mono_ms() < atomic_load(&l->deadline) &&
	    (dead = fs_stack_dead(l->s)) == NULL)
		tu_sleep_ms(5);
	if (dead != NULL) {
		atomic_store(&l->deadline, 0);
		fail_msg("affiliate-%s died by itself", dead);
	}
	assert_true(atomic_load(&l->acked) >= want);
}

void
fs_pair(long k, long *editor, long *adv)
{
	long a = 1 + k % 23;

	*editor = 100 + k / 23;
	*adv = a >= 12 ? a + 1 : a; /* 12 is paused */
}

void
fs_order_body(long i, char *buf, size_t cap, char *hdr, size_t hcap)
{
	long amount = 100 + (i * 7919) % 50000, commission = amount * (i % 31) / 100;
	char sig[128];
	int len;

	len = snprintf(buf, cap,
	    "{\"order_id\":\"F-%ld\",\"advertiser_id\":%ld,\"user_id\":%ld,"
	    "\"amount\":%ld.%02ld,\"commission\":%ld.%02ld}",
	    i, 1 + i % 24, 1 + (i / 24) % 6, amount / 100, amount % 100,
	    commission / 100, commission % 100);
	aff_webhook_sign(FS_SECRET, (const uint8_t *)buf, (size_t)len, 0, sig);
	snprintf(hdr, hcap, "X-Partner-Signature: %s\r\n", sig);
}

/* i of "F-<i>" when 0 <= i < n, else -1. */
static long
order_index(const char *id, long n)
{
	char *end;
	long i;

	if (strncmp(id, "F-", 2) != 0)
		return (-1);
	i = strtol(id + 2, &end, 10);
	return (end != id + 2 && (*end == '"' || *end == '\0') && i >= 0 &&
	               i < n
	        ? i
	        : -1);
}

long
fs_list_each(int port, const char *first, const char *key,
    void (*each)(const char *item, void *arg), void *arg)
{
	struct http_conn c;
	struct http_answer a;
	char target[512];
	size_t klen = strlen(key);
	long total = 0;

	snprintf(target, sizeof(target), "%s", first);
	fs_conn_init(&c, port, 10000);
	for (;;) {
		const char *p, *link, *lt, *gt;

		if (fs_request(&c, "GET", target, NULL, NULL, &a) != 0 ||
		    a.status != 200) {
			total = -1;
			break;
		}
		for (p = a.body; (p = strstr(p, key)) != NULL; p += klen) {
			each(p + klen, arg);
			total++;
		}
		if ((link = strcasestr(a.headers, "\r\nLink: <")) == NULL)
			break;
		lt = strchr(link, '<');
		if ((gt = strchr(lt, '>')) == NULL ||
		    (size_t)(gt - lt) >= sizeof(target)) {
			total = -1;
			break;
		}
		memcpy(target, lt + 1, (size_t)(gt - lt - 1));
		target[gt - lt - 1] = '\0';
	}
	fs_conn_fini(&c);
	return (total);
}

struct listed {
	long n;
	int *counts;
};

static void
count_listed(const char *item, void *arg)
{
	struct listed *l = arg;
	long i = order_index(item, l->n);

	if (i >= 0)
		l->counts[i]++;
}

long
fs_orders_listed(int port, long n, int *listed)
{
	struct listed l = { n, listed };

	return (fs_list_each(port, "/orders?limit=1000", "\"order_id\":\"",
	    count_listed, &l));
}

struct stored {
	long n;
	int *counts;
};

static void
count_stored(void *arg, const char *order_id)
{
	struct stored *st = arg;
	long i = order_id != NULL ? order_index(order_id, st->n) : -1;

	if (i >= 0)
		st->counts[i]++;
}

long
fs_orders_stored(const char *db, long n, int *stored)
{
	struct stored st = { n, stored };

	return (tu_sql_each(db, "SELECT order_id FROM orders", count_stored, &st));
}
