/*
 * faults.h - private to tests/faults: the whole system as separate real
 * processes (redis-server, affiliate-server, affiliate-bridge, workers)
 * that a test can kill with SIGKILL and start again on the same addresses
 * and data folder; a keep-alive HTTP client for load threads; and counting
 * what GET /orders lists, page by page.
 */
#ifndef FAULTS_H
#define FAULTS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http_conn.h"
#include "testutil.h"

#define FS_SECRET "faults-secret"
#define FS_MAX_WORKERS 4

struct fs_stack {
	char *dir;             /* data folder, logs, ipc sockets */
	char db[600];          /* the server's database (testutil_db.h) */
	char rpc_url[700];     /* ipc:// in dir */
	char jobs_url[700];
	char results_url[700];
	struct tu_redis redis; /* port 0 when the stack runs without Redis */
	int use_redis;
	pid_t server, bridge;
	pid_t workers[FS_MAX_WORKERS];
	int n_workers;
	int port;              /* the bridge's HTTP port */
	long max_pages;        /* AFFILIATE_DB_MAX_PAGES for the server; 0 none */
	int review_ms;         /* the workers' review delay; 0 for 20 ms */
};

/*
 * Starts Redis (when use_redis), the server, the bridge (default options
 * but the addresses: the shipped thread count and timeouts) and
 * n_workers workers, all as processes, with a new data folder; returns
 * when GET / answers 200. The webhook secret is FS_SECRET. max_pages and
 * review_ms are kept from *s, the rest is set here. 0 or -1.
 */
int fs_stack_start(struct fs_stack *s, int use_redis, int n_workers);
/* Kills whatever still runs (SIGKILL) and removes the data folder. */
void fs_stack_stop(struct fs_stack *s);

/* (Re)start one part on the stack's addresses and data folder; the
 * server and bridge wait until GET / answers 200 (at most 20 s). */
int fs_server_start(struct fs_stack *s);
int fs_bridge_start(struct fs_stack *s);
int fs_worker_start(struct fs_stack *s, int i);
/* SIGKILL, as a crash: nothing is flushed or answered. */
void fs_server_kill(struct fs_stack *s);
void fs_bridge_kill(struct fs_stack *s);
void fs_worker_kill(struct fs_stack *s, int i);

/*
 * NULL while every started part still runs; else the name of one that
 * died by itself (a crash: its log in the data folder says why), whose
 * log's last lines are copied to stderr.
 */
const char *fs_stack_dead(struct fs_stack *s);

/* For a failure's cause: says why, then a part that died (as
 * fs_stack_dead), or else the jobs by kind, state and attempt and the
 * last lines of every part's log, on stderr. */
void fs_stack_explain(struct fs_stack *s, const char *why);

/* Polls GET / until it answers 200 or timeout_ms passes; 0 or -1. */
int fs_wait_healthy(const struct fs_stack *s, int timeout_ms);

/* One keep-alive HTTP/1.1 connection to 127.0.0.1:port. */
/* The HTTP client is the load drivers' (tests/bench/http_conn.h). */
void fs_conn_init(struct http_conn *c, int port, int timeout_ms);
void fs_conn_fini(struct http_conn *c);

/*
 * Sends one request (connecting first when needed) and reads its answer
 * (Content-Length framing). extra_headers are "Name: value\r\n" lines or
 * NULL; body may be NULL. Returns 0, or -1 when no whole answer came (the
 * connection is then closed, so the next call connects again).
 */
int fs_request(struct http_conn *c, const char *method, const char *target,
    const char *extra_headers, const char *body, struct http_answer *a);

/*
 * A load of POSTs from several threads, each retrying what got no 2xx (an
 * error answer or no answer) with a short backoff until it gets one, as
 * a partner's client would: safe where a repeat is recognised (an order's
 * order_id, an application's request id).
 */
struct fs_load {
	struct fs_stack *s;
	atomic_long next;        /* the next item to post */
	atomic_long acked;       /* items answered 2xx */
	atomic_long retries;     /* posts after an item's first */
	atomic_long conn_errors; /* posts without an answer */
	atomic_long refused;     /* non-2xx answers */
	atomic_int odd_status;   /* the first answer a retry cannot fix */
	atomic_llong deadline;   /* aff_mono_ms(); 0 stops the load */
};

/*
 * Posts body to target on c until a 2xx (left in *a) or the deadline;
 * counts into l. Answers 503, 504 and 429 are retried; any other status
 * means the item itself was refused, a bug under test: it is recorded in
 * odd_status (and printed with what) and retried anyway. 0 when acked,
 * -1 at the deadline.
 */
int fs_load_post(struct fs_load *l, struct http_conn *c, const char *target,
    const char *hdr, const char *body, const char *what, struct http_answer *a);

/*
 * Waits until at least want items are acked, checking meanwhile that no
 * part of the stack died by itself; if one did, the load is stopped and
 * the test fails at once, naming it. Fails too at the deadline.
 */
void fs_load_wait(struct fs_load *l, long want);

/* Application pair k (k < 1150) among the editors tu_seed_editors adds:
 * editor 100 + k / 23 and the (k % 23)-th active advertiser. */
void fs_pair(long k, long *editor, long *adv);

/* The order webhook body of order i (a valid order, id "F-<i>") into buf;
 * its X-Partner-Signature header line into hdr. */
void fs_order_body(long i, char *buf, size_t cap, char *hdr, size_t hcap);

/*
 * Pages through a list (GET first, then each Link rel="next", 1000 a
 * page) and calls each(item, arg) for every occurrence of key in the
 * bodies, item pointing just past it. Returns the number of occurrences,
 * or -1 on a page that is not 200.
 */
long fs_list_each(int port, const char *first, const char *key,
    void (*each)(const char *item, void *arg), void *arg);

/* Counts each order "F-<i>" (i < n) that GET /orders lists into
 * listed[i]; returns the number of orders listed in all, or -1. */
long fs_orders_listed(int port, long n, int *listed);

/* Counts the rows of each order "F-<i>" (i < n) in the SQLite file into
 * stored[i]; returns the number of rows in all, or -1. */
long fs_orders_stored(const char *db, long n, int *stored);

#endif /* FAULTS_H */
