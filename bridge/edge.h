/*
 * edge.h - deadlines for slow clients and a cap per client address, under
 * civetweb 1.15.
 *
 * civetweb gives each connection a worker thread and has no per-request
 * deadline: a body sent one byte a second is read for ever (mg_read's
 * timeout only counts a single silent poll), and nothing limits how many
 * unfinished requests one address holds. Its API gives no socket either.
 * edge.c therefore watches the sockets from below: it defines accept(),
 * recv(), read(), poll() and close() in the executable, which interpose the
 * libc ones for libcivetweb.so (and OpenSSL's read() for TLS), so each
 * accepted connection is known with its address, its phase (headers,
 * body, being answered, idle between requests) and its bytes. A watchdog
 * thread cuts a connection past its deadline (408) or past its address's
 * cap (429), with shutdown(): civetweb's blocked read returns and the
 * connection closes. Sockets nobody registered pass through untouched.
 *
 * The glue functions below are called on civetweb's threads from the
 * bridge's callbacks; each finds its connection from the calling thread's
 * last I/O (a worker thread serves one connection at a time).
 */
#ifndef EDGE_H
#define EDGE_H

struct edge_config {
	int header_timeout_ms; /* from a request's first byte to its blank line */
	int body_timeout_ms;   /* the body's deadline before any byte counts */
	int body_min_rate;     /* bytes/s: each byte adds 1/rate s to it */
	int slow_per_addr;     /* unfinished requests one address may hold */
	int slow_total;        /* and all addresses together */
};

/* An unfinished request counts against its address's cap once it is this
 * old: a busy client's requests are complete long before. */
#define EDGE_SLOW_AFTER_MS 1000

typedef struct edge edge;

/* Starts the watchdog. AFF_OK or AFF_RESOURCE_EXHAUSTED. Nothing is
 * tracked until edge_thread_init() names the accepting thread. */
int edge_start(const struct edge_config *cfg, edge **ep);
/* Stops the watchdog and forgets every connection: call before mg_stop,
 * then edge_free after it (a last accept may still run meanwhile). */
void edge_stop(edge *e);
void edge_free(edge *e);

/* From civetweb's init_thread callback: the connections thread_type 0
 * (the master thread) accepts are e's. */
void edge_thread_init(edge *e, int thread_type);

/* begin_request: the request's headers are in. 0, or the status (408,
 * 429) the watchdog already answered with: the connection is cut and the
 * request must be dropped. */
int edge_request_begin(void);
/* Around reading the body. edge_body_end returns 0, or the status (408,
 * 429) to answer because the watchdog cut the body short. */
void edge_body_begin(void);
int edge_body_end(void);
/* The answer is sent: the connection is idle until its next byte. */
void edge_request_end(void);
/* Before the bridge answers what the handler never saw (civetweb's own
 * errors, OPTIONS *): 1 when it may, 0 when the watchdog already did. */
int edge_answer_claim(void);
/* connection_close: civetweb is about to close the socket. */
void edge_connection_close(void);

/* The message for a cut: 408 for headers or body, 429 over one address's
 * cap, 430 standing for 429 over the cap of all addresses. */
const char *edge_cut_message(const edge *e, int status, int body, char *buf,
    int cap);

/* Why a connection was cut, for the bridge's metrics. */
enum {
	EDGE_CUT_HEADER_DEADLINE, /* 408: headers past header_timeout_ms */
	EDGE_CUT_BODY_DEADLINE,   /* 408: a body slower than body_min_rate */
	EDGE_CUT_ADDRESS_CAP,     /* 429: over its address's cap */
	EDGE_CUT_TOTAL_CAP,       /* 429: over the cap of all addresses */
	EDGE_CUT_REASONS
};

/* Connections watched now (accepted, not yet closed) and cuts by reason
 * since the start. Relaxed loads: a snapshot, not a consistent one. */
struct edge_counts {
	long long open;
	long long cut[EDGE_CUT_REASONS];
};
void edge_counts_get(struct edge_counts *c);

/* Edge's status for a cut over the cap of all addresses (answered 429). */
#define EDGE_OVER_TOTAL 430

#endif /* EDGE_H */
