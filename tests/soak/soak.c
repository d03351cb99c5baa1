/*
 * soak.c - a bounded soak of the whole stack: a real redis-server,
 * affiliate-server, two affiliate-workers and affiliate-bridge (the
 * binaries of $AFFILIATE_BIN_DIR, on loopback and ipc:// sockets in a
 * temporary folder), driven for SOAK_SECONDS (180) at a steady SOAK_RATE
 * (200 requests/s) of mixed traffic through the bridge: catalog reads,
 * lists, applications reviewed by the workers, new signed webhooks, repeats
 * and status moves, and bad requests of every class (wrong signature,
 * malformed body, unknown ids and routes, a conflicting application).
 * Client connections are keep-alive and reopened every 50 requests, so
 * accept and close paths run all along.
 *
 * Every SOAK_SAMPLE (5) seconds it prints each process's resident memory
 * (VmRSS in /proc/<pid>/status) and open descriptors (/proc/<pid>/fd).
 * It fails when, for the server, the bridge or a worker, the largest
 * figure of the last minute is above the largest of the first minute by
 * more than the margins below; when an answer is not the one expected
 * (each request's status is known in advance) or a request gets none;
 * when an application answered 202 is not approved after the load, or an
 * order answered 201 is not in SQLite (nothing acknowledged is lost); or
 * when a process does not exit 0 on SIGTERM. 503 and 504 (the server too
 * slow, or its store busy past its timeout: the machines are shared, and
 * a disk can stall a commit for seconds) are honest answers, counted and
 * printed, and fail only past 0.5 % of the requests; a 504's request may
 * still have been done, so it is allowed for in the stored counts.
 * (Windows are a third of the run when it is shorter than 3 minutes.)
 *
 * Redis is sampled and printed but not judged: it holds the copy of the
 * orders, which grows with every new order by design.
 *
 * Usage: AFFILIATE_BIN_DIR=build/bin soak   (SOAK_KEEP=1 keeps the logs)
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aff_webhook.h"
#include "http_conn.h"
#include "testutil.h"

/* Growth allowed from the first minute to the last. RSS: 10 % plus
 * 4 MiB, which covers what fills up once and stays (SQLite's page cache,
 * 2 MiB per connection at most, grows with the database; malloc's arenas
 * settle per thread) while a leak of even one small allocation per
 * request (200/s over a minute: 12,000 of them) goes past it. Descriptors:
 * 4, for a connection being opened or closed at the moment of a sample. */
#define RSS_MARGIN_PCT 10
#define RSS_MARGIN_KIB (4 * 1024)
#define FD_MARGIN 4

#define THREADS 4
#define WARM_CONNS 512 /* the bridge's threads, by default */
#define RECONNECT_EVERY 50
#define SECRET "soak-secret"
#define POOL_BASE 100000 /* first editor id of the application pool */
#define MAX_SAMPLES 4096
#define MAX_ADV 64

enum { P_SERVER, P_BRIDGE, P_WORKER1, P_WORKER2, P_REDIS, N_PROCS };

struct proc {
	const char *name;
	pid_t pid;
	int judged;
	long rss_kib[MAX_SAMPLES];
	int fds[MAX_SAMPLES];
};

struct soak {
	int port;          /* the bridge's */
	char nonce[32];    /* makes this run's order ids unique */
	int64_t adv[MAX_ADV]; /* active advertisers, for the pool */
	size_t n_adv;
	size_t pool;        /* (editor, advertiser) pairs in the pool */
	atomic_size_t next_pair;
	atomic_int stop;
	long long interval_ns; /* per thread */
	/* totals, summed by the threads at exit */
	pthread_mutex_t mu;
	long long sent, unexpected, unavailable, applied, created;
	long long warm_sent; /* requests of the warm-up */
	atomic_llong progress; /* answers so far, for the rate column */
};

struct client {
	struct soak *s;
	int idx;
	pthread_t tid;
	struct http_conn c;
	long long n, sent, unexpected, unavailable, applied, created, reported;
	long long order_n;        /* this thread's orders made */
	char last_order[256];     /* the body of its last new order */
	int64_t pair_editor, pair_adv; /* its last application */
};

static long long
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

static long
env_long(const char *name, long def, long lo, long hi)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return (def);
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < lo || n > hi) {
		fprintf(stderr, "soak: %s must be %ld..%ld\n", name, lo, hi);
		exit(2);
	}
	return (n);
}

/* One request on the client's connection; the answer must have status
 * want. Anything else (another status, no answer) is counted and the
 * first few are printed. */
static void
client_expect(struct client *cl, int want, const char *method,
    const char *target, const char *headers, const char *body)
{
	char req[2048];
	struct http_answer a;
	size_t blen = body != NULL ? strlen(body) : 0;
	int n;

	n = snprintf(req, sizeof(req),
	    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n"
	    "\r\n%s",
	    method, target, headers != NULL ? headers : "", blen,
	    body != NULL ? body : "");
	cl->sent++;
	if (n < 0 || (size_t)n >= sizeof(req) ||
	    http_roundtrip(&cl->c, req, (size_t)n, &a) != 0) {
		cl->unexpected++;
		if (cl->reported++ < 5)
			fprintf(stderr, "soak: %s %s: no answer (%s)\n", method,
			    target, strerror(errno));
		return;
	}
	atomic_fetch_add(&cl->s->progress, 1);
	if (a.status != want && (a.status == 503 || a.status == 504)) {
		cl->unavailable++;
		if (cl->reported++ < 5)
			fprintf(stderr, "soak: %s %s: %d (counted as unavailable): "
			    "%.300s\n", method, target, a.status, a.body);
	} else if (a.status != want) {
		cl->unexpected++;
		if (cl->reported++ < 5)
			fprintf(stderr, "soak: %s %s: %d, wanted %d: %.300s\n",
			    method, target, a.status, want, a.body);
	} else if (want == 202)
		cl->applied++;
	else if (want == 201)
		cl->created++;
	http_after(&cl->c, &a);
}

/* POSTs body to /webhook/orders signed with SECRET (or a wrong one). */
static void
client_webhook(struct client *cl, int want, const char *body, int good)
{
	char sig[128], hdr[256];

	aff_webhook_sign(good ? SECRET : "not-the-secret",
	    (const uint8_t *)body, strlen(body), 0, sig);
	snprintf(hdr, sizeof(hdr), "X-Partner-Signature: %s\r\n", sig);
	client_expect(cl, want, "POST", "/webhook/orders", hdr, body);
}

/* The order this thread makes n-th: valid, with a unique order_id. */
static void
client_order(struct client *cl, long long n, const char *status, char *out,
    size_t cap)
{
	long long cents = 100 + (n * 37) % 100000;

	snprintf(out, cap,
	    "{\"order_id\":\"S%s-%d-%lld\",\"advertiser_id\":%lld,"
	    "\"editor_id\":%lld,\"amount\":%lld.%02lld,\"commission\":%lld.%02lld%s%s%s}",
	    cl->s->nonce, cl->idx, n, n % 24 + 1, n % 6 + 1, cents / 100,
	    cents % 100, cents / 1000, cents / 10 % 100,
	    status != NULL ? ",\"status\":\"" : "", status != NULL ? status : "",
	    status != NULL ? "\"" : "");
}

/* The request of step k (0..19) of this thread's cycle: the mix, and the
 * order within a cycle that makes each status known in advance. */
static void
client_step(struct client *cl, long long i)
{
	struct soak *s = cl->s;
	int k = (int)(i % 20);
	long long e = (i / 20) % 6 + 1, adv = i % 24 + 1;
	char t[256], body[512];

	switch (k) {
	case 0:
		snprintf(t, sizeof(t), "/advertisers?editor_id=%lld", e);
		client_expect(cl, 200, "GET", t, NULL, NULL);
		break;
	case 1: /* the seed's rule: E may join A unless 3 divides A + 2E */
		snprintf(t, sizeof(t), "/advertisers/%lld?editor_id=%lld", adv, e);
		client_expect(cl, (adv + 2 * e) % 3 == 0 ? 403 : 200, "GET", t,
		    NULL, NULL);
		break;
	case 2:
		snprintf(t, sizeof(t), "/applications?editor_id=%lld&limit=20",
		    cl->pair_editor > 0 ? (long long)cl->pair_editor : e);
		client_expect(cl, 200, "GET", t, NULL, NULL);
		break;
	case 3:
		client_expect(cl, 200, "GET", "/orders?limit=20", NULL, NULL);
		break;
	case 4:
		client_expect(cl, 200, "GET", "/", NULL, NULL);
		break;
	case 5:
		snprintf(t, sizeof(t), "/advertisers?limit=10&after=%lld",
		    (i / 20) % 20);
		client_expect(cl, 200, "GET", t, NULL, NULL);
		break;
	case 6:
	case 7: {
		size_t p = atomic_fetch_add(&s->next_pair, 1);
		if (p >= s->pool) { /* pool used up: a read instead */
			client_expect(cl, 200, "GET", "/advertisers/2", NULL, NULL);
			break;
		}
		cl->pair_editor = POOL_BASE + (int64_t)(p / s->n_adv);
		cl->pair_adv = s->adv[p % s->n_adv];
		snprintf(body, sizeof(body),
		    "{\"advertiser_id\":%lld,\"editor_id\":%lld}",
		    (long long)cl->pair_adv, (long long)cl->pair_editor);
		client_expect(cl, 202, "POST", "/applications", NULL, body);
		break;
	}
	case 8:
	case 9:
	case 10:
	case 11:
		client_order(cl, cl->order_n++, NULL, cl->last_order,
		    sizeof(cl->last_order));
		client_webhook(cl, 201, cl->last_order, 1);
		break;
	case 12: /* the last one again: stored once, 200 */
		client_webhook(cl, 200, cl->last_order, 1);
		break;
	case 13: /* and moved forward */
		client_order(cl, cl->order_n - 1, "approved", body, sizeof(body));
		client_webhook(cl, 200, body, 1);
		break;
	case 14:
		client_order(cl, cl->order_n, NULL, body, sizeof(body));
		client_webhook(cl, 401, body, 0);
		break;
	case 15:
		client_webhook(cl, 400, "{\"order_id\":\"x\",\"amount\":", 1);
		break;
	case 16:
		client_expect(cl, 404, "GET", "/advertisers/999", NULL, NULL);
		break;
	case 17:
		client_expect(cl, 404, "GET", "/nope", NULL, NULL);
		break;
	case 18:
		snprintf(t, sizeof(t),
		    "/orders?editor_id=%lld&status=approved&limit=5", e);
		client_expect(cl, 200, "GET", t, NULL, NULL);
		break;
	case 19: /* this cycle's application again: open or approved, 409 */
		if (cl->pair_editor <= 0) {
			client_expect(cl, 200, "GET", "/", NULL, NULL);
			break;
		}
		snprintf(body, sizeof(body),
		    "{\"advertiser_id\":%lld,\"editor_id\":%lld}",
		    (long long)cl->pair_adv, (long long)cl->pair_editor);
		client_expect(cl, 409, "POST", "/applications", NULL, body);
		break;
	}
}

/*
 * Before the first sample, every bridge thread serves the whole mix once.
 * civetweb gives a connection one of its threads, and a thread's stack
 * pages, its allocator caches and its SP connection to the server come
 * into being as it serves requests of each kind; the mix's 4 clients,
 * reconnecting every 50 requests, land on threads not used before for
 * minutes, so the RSS and descriptors of the bridge and the server climbed
 * through the whole run with nothing leaking (the same mix through a
 * bridge of 8 threads leaves its RSS flat). WARM_CONNS connections held
 * open together have a thread each. What the warm-up applied and created
 * counts with the rest. Returns the number of answers that were not the
 * expected ones.
 */
static long long
soak_warm(struct soak *s)
{
	static struct client w[WARM_CONNS];
	long long bad = 0;

	for (int i = 0; i < WARM_CONNS; i++)
		w[i] = (struct client){ .s = s, .idx = THREADS + i,
			.c = { .fd = -1, .port = s->port } };
	for (long long k = 0; k < 20; k++)
		for (int i = 0; i < WARM_CONNS; i++)
			client_step(&w[i], k);
	for (int i = 0; i < WARM_CONNS; i++) {
		bad += w[i].unexpected + w[i].unavailable;
		s->applied += w[i].applied;
		s->created += w[i].created;
		s->warm_sent += w[i].sent;
		http_disconnect(&w[i].c);
		free(w[i].c.buf);
	}
	atomic_store(&s->progress, 0);
	return (bad);
}

/* Paced, not as fast as possible: one request every interval_ns, on an
 * absolute schedule; a thread that falls more than a second behind skips
 * ahead rather than bursting to catch up. */
static void *
client_main(void *arg)
{
	struct client *cl = arg;
	struct soak *s = cl->s;
	long long next = mono_ns() + (long long)cl->idx * s->interval_ns / THREADS;

	while (!atomic_load(&s->stop)) {
		struct timespec ts = { next / 1000000000LL, next % 1000000000LL };
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		client_step(cl, cl->n++);
		if (cl->n % RECONNECT_EVERY == 0)
			http_disconnect(&cl->c);
		next += s->interval_ns;
		if (mono_ns() - next > 1000000000LL)
			next = mono_ns();
	}
	http_disconnect(&cl->c);
	free(cl->c.buf);
	pthread_mutex_lock(&s->mu);
	s->sent += cl->sent;
	s->unexpected += cl->unexpected;
	s->unavailable += cl->unavailable;
	s->applied += cl->applied;
	s->created += cl->created;
	pthread_mutex_unlock(&s->mu);
	return (NULL);
}

/* VmRSS in KiB and the number of open descriptors; -1 when gone. */
static void
proc_sample(const struct proc *p, long *rss, int *fds)
{
	char path[64], line[256];
	struct dirent *e;
	FILE *f;
	DIR *d;

	*rss = -1;
	*fds = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
	if ((f = fopen(path, "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "VmRSS: %ld kB", rss) == 1)
				break;
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)p->pid);
	if ((d = opendir(path)) != NULL) {
		*fds = 0;
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				(*fds)++;
		closedir(d);
	}
}

/* The largest RSS and descriptor count over samples [from, to). */
static void
proc_max(const struct proc *p, int from, int to, long *rss, int *fds)
{
	*rss = 0;
	*fds = 0;
	for (int i = from; i < to; i++) {
		if (p->rss_kib[i] > *rss)
			*rss = p->rss_kib[i];
		if (p->fds[i] > *fds)
			*fds = p->fds[i];
	}
}

/* SIGTERM, then exit 0 within 10 s; 0 or -1 (it is killed then). */
static int
proc_stop(struct proc *p)
{
	int st;

	kill(p->pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		pid_t r = waitpid(p->pid, &st, WNOHANG);
		if (r == p->pid) {
			p->pid = 0;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
				return (0);
			fprintf(stderr, "soak: %s ended with %s %d on SIGTERM\n",
			    p->name, WIFEXITED(st) ? "exit" : "signal",
			    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			return (-1);
		}
		tu_sleep_ms(50);
	}
	fprintf(stderr, "soak: %s still running 10 s after SIGTERM\n", p->name);
	tu_kill(p->pid, SIGKILL);
	p->pid = 0;
	return (-1);
}

static int
soak_wait_ready(int port)
{
	struct tu_http_response r;

	for (int i = 0; i < 300; i++) {
		if (tu_http(port, "GET", "/", NULL, NULL, &r) == 0) {
			int st = r.status;
			tu_http_response_fini(&r);
			if (st == 200)
				return (0);
		}
		tu_sleep_ms(50);
	}
	return (-1);
}

/* Active advertisers, and a pool of new editors each eligible for all of
 * them, large enough for every application the run will make. */
static int
soak_seed(struct soak *s, const char *db, long seconds, long rate)
{
	char sql[1024];
	size_t editors;

	for (int id = 1; id <= MAX_ADV; id++) {
		snprintf(sql, sizeof(sql),
		    "SELECT count(*) FROM advertisers WHERE id = %d AND "
		    "status = 'active'", id);
		if (tu_sql_int(db, sql) == 1)
			s->adv[s->n_adv++] = id;
	}
	if (s->n_adv == 0)
		return (-1);
	/* 2 applications in every 20 requests, and a fifth more; 2 for each
	 * warm-up connection */
	editors = (size_t)(rate * seconds / 10 * 6 / 5 + 2 * WARM_CONNS) /
	        s->n_adv + 1;
	s->pool = editors * s->n_adv;
	snprintf(sql, sizeof(sql),
	    "WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n"
	    " WHERE i < %zu) INSERT INTO editors (id, name, created_at)"
	    " SELECT i, 'Soak ' || i, 0 FROM n;"
	    "INSERT INTO eligibility (editor_id, advertiser_id)"
	    " SELECT e.id, a.id FROM editors e, advertisers a"
	    " WHERE e.id >= %d AND a.status = 'active';",
	    POOL_BASE, POOL_BASE + editors - 1, POOL_BASE);
	return (tu_sql_exec(db, sql));
}

int
main(void)
{
	long seconds = env_long("SOAK_SECONDS", 180, 10, 3600);
	long rate = env_long("SOAK_RATE", 200, 10, 5000);
	long sample = env_long("SOAK_SAMPLE", 5, 1, 60);
	struct proc procs[N_PROCS] = {
		[P_SERVER] = { .name = "server", .judged = 1 },
		[P_BRIDGE] = { .name = "bridge", .judged = 1 },
		[P_WORKER1] = { .name = "worker1", .judged = 1 },
		[P_WORKER2] = { .name = "worker2", .judged = 1 },
		[P_REDIS] = { .name = "redis", .judged = 0 },
	};
	static struct soak s;
	static struct client cl[THREADS];
	struct tu_redis redis = { 0 };
	char *dir, rpc[600], jobs[600], results[600], data[600], db[700],
	    redis_addr[64], port_s[32], log[700], sql[256];
	long long t0, approved, orders, warm_bad;
	int n_samples = 0, failed = 0, checks = 0, window, last_from;

	if (getenv("AFFILIATE_BIN_DIR") == NULL) {
		fprintf(stderr, "soak: set AFFILIATE_BIN_DIR (build/bin)\n");
		return (2);
	}
	if ((dir = tu_tmpdir()) == NULL)
		return (1);
	snprintf(rpc, sizeof(rpc), "ipc://%s/rpc.sock", dir);
	snprintf(jobs, sizeof(jobs), "ipc://%s/jobs.sock", dir);
	snprintf(results, sizeof(results), "ipc://%s/results.sock", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(db, sizeof(db), "%s/affiliate.db", data);
	snprintf(s.nonce, sizeof(s.nonce), "%lx%x", (long)time(NULL),
	    (unsigned)getpid());
	pthread_mutex_init(&s.mu, NULL);
	setenv("AFFILIATE_WEBHOOK_SECRET", SECRET, 1);
	/* Leaks, not allocator caches: glibc gives every thread a cache of
	 * freed chunks, and the bridge's 512 threads fill theirs over many
	 * minutes of this mix (its RSS climbed all through a warmed-up run and
	 * stayed flat with the caches off, or with 8 threads; README,
	 * Reliability). The processes run with those caches off, so growth
	 * here is memory nobody frees. */
	setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);

	if (tu_redis_start(&redis) != 0) {
		fprintf(stderr, "soak: redis-server did not start\n");
		return (1);
	}
	procs[P_REDIS].pid = redis.pid;
	snprintf(redis_addr, sizeof(redis_addr), "127.0.0.1:%d", redis.port);
	s.port = tu_free_port();
	snprintf(port_s, sizeof(port_s), "127.0.0.1:%d", s.port);
	snprintf(log, sizeof(log), "%s/server.log", dir);
	procs[P_SERVER].pid = tu_spawn("affiliate-server",
	    (const char *[]){ "--listen", rpc, "--data-dir", data, "--redis",
	        redis_addr, "--jobs", jobs, "--results", results, NULL },
	    log);
	snprintf(log, sizeof(log), "%s/bridge.log", dir);
	procs[P_BRIDGE].pid = tu_spawn("affiliate-bridge",
	    (const char *[]){ "--listen", port_s, "--server", rpc, NULL }, log);
	for (int w = P_WORKER1; w <= P_WORKER2; w++) {
		snprintf(log, sizeof(log), "%s/%s.log", dir, procs[w].name);
		procs[w].pid = tu_spawn("affiliate-worker",
		    (const char *[]){ "--jobs", jobs, "--results", results,
		        "--data-dir", data, "--review-delay", "20", NULL },
		    log);
	}
	if (soak_wait_ready(s.port) != 0 || soak_seed(&s, db, seconds, rate) != 0) {
		fprintf(stderr, "soak: the stack did not come up (logs in %s)\n",
		    dir);
		failed = 1;
		goto stop;
	}

	atomic_init(&s.progress, 0);
	atomic_init(&s.next_pair, 0);
	if ((warm_bad = soak_warm(&s)) != 0) {
		fprintf(stderr, "soak: %lld warm-up requests not answered as "
		                "expected (logs in %s)\n", warm_bad, dir);
		failed = 1;
		goto stop;
	}
	printf("soak: warm-up: %lld requests of the mix on %d connections held "
	       "open at once (one a bridge thread)\n", s.warm_sent, WARM_CONNS);
	printf("soak: %ld s at %ld requests/s (%d clients), samples every %ld s;"
	       " %zu applications in the pool\n",
	    seconds, rate, THREADS, sample, s.pool);
	printf("%6s %7s", "t(s)", "req/s");
	for (int p = 0; p < N_PROCS; p++)
		printf(" | %7s MiB fds", procs[p].name);
	printf("\n");
	s.interval_ns = 1000000000LL * THREADS / rate;
	atomic_init(&s.stop, 0);
	for (int i = 0; i < THREADS; i++) {
		cl[i] = (struct client){ .s = &s, .idx = i, .c = { .fd = -1,
			.port = s.port } };
		pthread_create(&cl[i].tid, NULL, client_main, &cl[i]);
	}
	t0 = mono_ns();
	for (long long prev = 0, t = 0; t <= seconds && n_samples < MAX_SAMPLES;
	     t += sample) {
		struct timespec ts = { (t0 + t * 1000000000LL) / 1000000000LL,
			(t0 + t * 1000000000LL) % 1000000000LL };
		long long done;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		done = atomic_load(&s.progress);
		printf("%6lld %7.0f", t, t > 0 ? (double)(done - prev) / sample : 0.0);
		prev = done;
		for (int p = 0; p < N_PROCS; p++) {
			proc_sample(&procs[p], &procs[p].rss_kib[n_samples],
			    &procs[p].fds[n_samples]);
			printf(" | %11.1f %3d", procs[p].rss_kib[n_samples] / 1024.0,
			    procs[p].fds[n_samples]);
		}
		printf("\n");
		fflush(stdout);
		n_samples++;
	}
	atomic_store(&s.stop, 1);
	for (int i = 0; i < THREADS; i++)
		pthread_join(cl[i].tid, NULL);

	/* Judged: the first sample is at t = 0, before any load. */
	window = (int)((seconds < 180 ? seconds / 3 : 60) / sample);
	if (window < 1)
		window = 1;
	last_from = n_samples - window;
	printf("soak: %lld requests: %lld answered otherwise than expected, "
	       "%lld unavailable (503/504); %lld applications accepted, %lld "
	       "orders created\n",
	    s.sent, s.unexpected, s.unavailable, s.applied, s.created);
	checks += 2;
	if (s.unexpected != 0) {
		failed++;
		printf("soak: FAIL %lld unexpected answers\n", s.unexpected);
	}
	if (s.unavailable * 200 > s.sent) {
		failed++;
		printf("soak: FAIL more than 0.5 %% of the requests unavailable\n");
	}
	printf("%-8s %14s %14s %10s %10s  %s\n", "process", "RSS first MiB",
	    "RSS last MiB", "fds first", "fds last", "verdict");
	for (int p = 0; p < N_PROCS; p++) {
		long r1, r2;
		int f1, f2, ok;
		proc_max(&procs[p], 1, 1 + window, &r1, &f1);
		proc_max(&procs[p], last_from, n_samples, &r2, &f2);
		ok = r2 <= r1 + r1 * RSS_MARGIN_PCT / 100 + RSS_MARGIN_KIB &&
		    f2 <= f1 + FD_MARGIN && r1 > 0 && f1 > 0;
		printf("%-8s %14.1f %14.1f %10d %10d  %s\n", procs[p].name,
		    r1 / 1024.0, r2 / 1024.0, f1, f2,
		    !procs[p].judged ? "not judged (holds the order copy)"
		    : ok ? "ok" : "FAIL");
		if (procs[p].judged) {
			checks++;
			failed += !ok;
		}
	}
	printf("soak: margins: RSS +%d %% + %d MiB, descriptors +%d, largest of"
	       " the first %d s against the largest of the last %d s\n",
	    RSS_MARGIN_PCT, RSS_MARGIN_KIB / 1024, FD_MARGIN,
	    window * (int)sample, window * (int)sample);

	/* Nothing acknowledged is lost: every 202 reviewed, every 201 stored. */
	approved = tu_sql_wait(db,
	    "SELECT count(*) FROM applications WHERE status = 'pending'", 0,
	    60000);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM applications WHERE editor_id >= %d AND "
	    "status = 'approved'", POOL_BASE);
	approved = approved == 0 ? tu_sql_int(db, sql) : -1;
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM orders WHERE order_id LIKE 'S%s-%%'", s.nonce);
	orders = tu_sql_int(db, sql);
	checks += 2;
	printf("soak: %lld applications approved (of %lld accepted), %lld orders"
	       " in SQLite (of %lld created)\n",
	    approved, s.applied, orders, s.created);
	/* More than acknowledged only by requests whose answer said nothing
	 * of the outcome (504). */
	if (approved < s.applied || approved > s.applied + s.unavailable) {
		failed++;
		printf("soak: FAIL applications accepted but not approved\n");
	}
	if (orders < s.created || orders > s.created + s.unavailable) {
		failed++;
		printf("soak: FAIL orders answered 201 but not in SQLite\n");
	}

stop:
	for (int p = P_BRIDGE; p <= P_WORKER2; p++) {
		checks++;
		if (procs[p].pid > 0 && proc_stop(&procs[p]) != 0)
			failed++;
	}
	checks++;
	if (procs[P_SERVER].pid > 0 && proc_stop(&procs[P_SERVER]) != 0)
		failed++;
	tu_redis_stop(&redis);
	if (getenv("SOAK_KEEP") != NULL || failed)
		printf("soak: logs kept in %s\n", dir);
	else
		tu_rmtree(dir);
	free(dir);
	printf("soak: %d passed, %d failed\n", checks - failed, failed);
	return (failed ? 1 : 0);
}
