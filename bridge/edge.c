/*
 * edge.c - see edge.h: why this exists (civetweb 1.15 gives no per-request
 * deadline, no cap per address and no socket), and what it does.
 *
 * One slot per file descriptor, in a static table, so that the interposed
 * recv()/read()/poll()/close() cost one load and a branch on a descriptor
 * nobody registered. A slot's state moves:
 *
 *   accept ──► HEADERS ──begin_request──► BUSY ──body_begin──► BODY
 *   IDLE ──first byte──► HEADERS            ▲ └────body_end──────┘
 *   BUSY ──request_end──► IDLE  (IDLE ──next request, pipelined──► BUSY)
 *   HEADERS/BODY ──watchdog──► CUTTING ──► CUT      any ──close──► FREE
 *
 * Only the connection's worker thread moves it, but for the watchdog's
 * step, which is a compare-and-swap from HEADERS or BODY: whoever wins
 * answers the client, so two answers never interleave on the socket. A
 * worker, or close(), that finds CUTTING waits the few microseconds the
 * watchdog needs to write and shut down the socket, so the descriptor is
 * never closed (and reused) under it; a generation count, bumped by each
 * accept, makes the watchdog let go of a slot whose descriptor was closed
 * and accepted again since it looked.
 *
 * The watchdog looks at every slot ten times a second: HEADERS past
 * header_timeout_ms, or BODY past body_timeout_ms plus its bytes at
 * body_min_rate (Apache mod_reqtimeout's body=…,MinRate=…), get 408. Then,
 * per client address, the unfinished requests (HEADERS or BODY) older than
 * EDGE_SLOW_AFTER_MS are counted; once an address holds slow_per_addr of
 * them, its younger unfinished requests past the first tick get 429. So
 * that many addresses each under their cap cannot take every thread
 * either, the slow ones of all addresses together are held to slow_total
 * (the bridge keeps a quarter of its threads for the others): past it the
 * youngest get 429 too. A connection in HEADERS is answered by the
 * watchdog itself (no handler runs yet) and shut down both ways; one in
 * BODY is shut down for reading only, so that the handler's mg_read
 * returns and the bridge answers.
 * Connections accepted but still queued for a worker are not the client's
 * fault and are left alone, and so is one whose worker is not waiting for
 * it in poll() or has its bytes unread (a starved thread on a busy host).
 */
#include "edge.h"

#include <dlfcn.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"

/* Descriptors past this are served but not watched (logged once). */
#define EDGE_MAX_FD 65536
#define EDGE_TICK_MS 100

enum {
	SLOT_FREE,
	SLOT_HEADERS,
	SLOT_BUSY,
	SLOT_BODY,
	SLOT_IDLE,
	SLOT_CUTTING,
	SLOT_CUT,
};

/* A cache line each: adjacent descriptors are served by different
 * threads. */
struct edge_slot {
	alignas(64) _Atomic(edge *) owner;   /* NULL: not a connection being watched */
	atomic_int state;
	atomic_int taken;        /* a worker has started reading it */
	atomic_int waiting;      /* its worker is in poll() for it */
	atomic_int cut_status;   /* 408 or 429, once CUT */
	atomic_int cut_body;     /* the cut was in the body */
	atomic_uint gen;         /* counts the connections it has held */
	_Atomic int64_t t0;      /* ms: when this phase began */
	_Atomic int64_t bytes;   /* received in this phase */
	uint8_t addr[16];        /* the client's (IPv4 as ::ffff:a.b.c.d,
	                            IPv6 its /64) */
};

struct edge {
	struct edge_config cfg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	atomic_int stopping;
};

/* One unfinished request, as the watchdog sorts them. */
struct edge_open {
	uint8_t addr[16];
	int64_t t0;
	int fd;
	int body;
	unsigned gen;
};

static struct edge_slot slots[EDGE_MAX_FD];
static atomic_int hiwater; /* highest descriptor ever watched */

/* For /metrics (edge_counts_get): watched connections open now, and the
 * cuts by reason (EDGE_CUT_*). A slot counts as open from its accept to
 * the close that frees it, so the gauge is exactly the slots owned. */
static atomic_llong n_open;
static atomic_llong n_cut[EDGE_CUT_REASONS];
static atomic_int warned_fd;

/* The accepting (master) thread's edge; the descriptor of the
 * connection a worker thread last read or polled. */
static __thread edge *tl_master;
static __thread int tl_fd = -1;

static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_read)(int, void *, size_t);
static int (*real_poll)(struct pollfd *, nfds_t, int);
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_close)(int);
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void
real_resolve(void)
{
	real_recv = (ssize_t(*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
	real_read = (ssize_t(*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	real_poll = (int (*)(struct pollfd *, nfds_t, int))dlsym(RTLD_NEXT, "poll");
	real_accept = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(
	    RTLD_NEXT, "accept");
	real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	/* Nothing to fall back on: the process cannot do I/O at all. */
	if (real_recv == NULL || real_read == NULL || real_poll == NULL ||
	    real_accept == NULL || real_close == NULL)
		abort();
}

/* A coarse clock: deadlines are whole seconds, and this one is cheap on
 * the path of every request. */
static int64_t
edge_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static struct edge_slot *
slot_of(int fd)
{
	if ((unsigned)fd >= EDGE_MAX_FD ||
	    atomic_load_explicit(&slots[fd].owner, memory_order_acquire) == NULL)
		return (NULL);
	return (&slots[fd]);
}

/* Bytes arrived on a watched socket, on its worker thread. */
static void
slot_saw(struct edge_slot *s, ssize_t n)
{
	if (atomic_load_explicit(&s->state, memory_order_relaxed) == SLOT_IDLE) {
		int idle = SLOT_IDLE;
		atomic_store_explicit(&s->bytes, n, memory_order_relaxed);
		atomic_store_explicit(&s->t0, edge_now_ms(), memory_order_relaxed);
		atomic_compare_exchange_strong(&s->state, &idle, SLOT_HEADERS);
	} else
		atomic_fetch_add_explicit(&s->bytes, n, memory_order_relaxed);
}

ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	struct edge_slot *s;
	ssize_t n;

	if (real_recv == NULL)
		pthread_once(&real_once, real_resolve);
	n = real_recv(fd, buf, len, flags);
	if (n > 0 && (s = slot_of(fd)) != NULL) {
		tl_fd = fd;
		slot_saw(s, n);
	}
	return (n);
}

/* OpenSSL reads a TLS connection's socket with read(). */
ssize_t
read(int fd, void *buf, size_t len)
{
	struct edge_slot *s;
	ssize_t n;

	if (real_read == NULL)
		pthread_once(&real_once, real_resolve);
	n = real_read(fd, buf, len);
	if (n > 0 && (s = slot_of(fd)) != NULL) {
		tl_fd = fd;
		slot_saw(s, n);
	}
	return (n);
}

/* civetweb polls a connection before every read: the first poll is when
 * a worker takes it from the queue, and its headers' time starts. */
int
poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	struct edge_slot *s;
	int n;

	if (real_poll == NULL)
		pthread_once(&real_once, real_resolve);
	if (nfds != 1 || (s = slot_of(fds[0].fd)) == NULL)
		return (real_poll(fds, nfds, timeout));
	tl_fd = fds[0].fd;
	if (!atomic_load_explicit(&s->taken, memory_order_relaxed)) {
		atomic_store_explicit(&s->t0, edge_now_ms(), memory_order_relaxed);
		atomic_store_explicit(&s->taken, 1, memory_order_release);
	}
	atomic_store_explicit(&s->waiting, 1, memory_order_relaxed);
	n = real_poll(fds, nfds, timeout);
	atomic_store_explicit(&s->waiting, 0, memory_order_relaxed);
	return (n);
}

static void
edge_track(edge *e, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct sockaddr_storage ss;
	struct edge_slot *s;
	int hw;

	if (fd >= EDGE_MAX_FD) {
		if (atomic_exchange(&warned_fd, 1) == 0)
			aff_warn("bridge: descriptor %d is past %d: connections "
			         "past it get no deadline or per-address cap",
			    fd, EDGE_MAX_FD);
		return;
	}
	if (sa == NULL) {
		len = sizeof(ss);
		if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
			return;
		sa = (const struct sockaddr *)&ss;
	}
	s = &slots[fd];
	memset(s->addr, 0, sizeof(s->addr));
	if (sa->sa_family == AF_INET) {
		s->addr[10] = s->addr[11] = 0xff;
		memcpy(s->addr + 12,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(s->addr,
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		/* One client holds a whole /64 (as the server's rate limit
		 * counts it); IPv4-mapped addresses stay whole. */
		if (!(memcmp(s->addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0))
			memset(s->addr + 8, 0, 8);
	}
	atomic_fetch_add(&s->gen, 1);
	atomic_store(&s->t0, edge_now_ms());
	atomic_store(&s->bytes, 0);
	atomic_store(&s->taken, 0);
	atomic_store(&s->waiting, 0);
	atomic_store(&s->cut_status, 0);
	atomic_store(&s->state, SLOT_HEADERS);
	/* A descriptor accepted again without our close() seeing the first
	 * (it cannot be, but the gauge must not drift if it were). */
	if (atomic_exchange_explicit(&s->owner, e, memory_order_acq_rel) == NULL)
		atomic_fetch_add_explicit(&n_open, 1, memory_order_relaxed);
	hw = atomic_load(&hiwater);
	while (fd > hw && !atomic_compare_exchange_weak(&hiwater, &hw, fd))
		;
}

int
accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	edge *e = tl_master;
	int c;

	if (real_accept == NULL)
		pthread_once(&real_once, real_resolve);
	c = real_accept(fd, addr, len);
	if (c >= 0 && e != NULL && !atomic_load(&e->stopping))
		edge_track(e, c, addr, len != NULL ? *len : 0);
	return (c);
}

/* A slot lives exactly as long as its descriptor: whatever path civetweb
 * closes a connection by (some skip connection_close), the slot is free
 * before the number can be reused, and never while the watchdog writes to
 * it. */
int
close(int fd)
{
	struct edge_slot *s;

	if (real_close == NULL)
		pthread_once(&real_once, real_resolve);
	if ((s = slot_of(fd)) != NULL) {
		while (atomic_load(&s->state) == SLOT_CUTTING)
			sched_yield();
		if (atomic_exchange_explicit(&s->owner, NULL,
		        memory_order_acq_rel) != NULL)
			atomic_fetch_sub_explicit(&n_open, 1, memory_order_relaxed);
		atomic_store(&s->state, SLOT_FREE);
	}
	if (fd == tl_fd)
		tl_fd = -1;
	return (real_close(fd));
}

/* The worker thread's current connection (NULL when not watched). */
static struct edge_slot *
slot_current(void)
{
	return (tl_fd >= 0 ? slot_of(tl_fd) : NULL);
}

/* Waits out the watchdog's write and shutdown; returns the state after. */
static int
slot_settle(struct edge_slot *s)
{
	int st;

	while ((st = atomic_load(&s->state)) == SLOT_CUTTING)
		sched_yield();
	return (st);
}

/* Moves the slot from state a or b to SLOT_BUSY, retrying while the
 * watchdog races it; any other state is left as it is. Returns 1 when the
 * watchdog has cut the connection (SLOT_CUT), 0 otherwise. */
static int
slot_take(struct edge_slot *s, int a, int b)
{
	int st;

	for (;;) {
		st = slot_settle(s);
		if (st == SLOT_CUT)
			return (1);
		if (st != a && st != b)
			return (0);
		if (atomic_compare_exchange_strong(&s->state, &st, SLOT_BUSY))
			return (0);
	}
}

int
edge_request_begin(void)
{
	struct edge_slot *s = slot_current();

	if (s == NULL)
		return (0);
	return (slot_take(s, SLOT_HEADERS, SLOT_IDLE) ?
	    atomic_load(&s->cut_status) : 0);
}

void
edge_body_begin(void)
{
	struct edge_slot *s = slot_current();
	int busy = SLOT_BUSY;

	if (s == NULL)
		return;
	atomic_store(&s->bytes, 0);
	atomic_store(&s->t0, edge_now_ms());
	atomic_compare_exchange_strong(&s->state, &busy, SLOT_BODY);
}

int
edge_body_end(void)
{
	struct edge_slot *s = slot_current();

	if (s == NULL)
		return (0);
	return (slot_take(s, SLOT_BODY, SLOT_BODY) ?
	    atomic_load(&s->cut_status) : 0);
}

void
edge_request_end(void)
{
	struct edge_slot *s = slot_current();
	int busy = SLOT_BUSY;

	if (s != NULL)
		atomic_compare_exchange_strong(&s->state, &busy, SLOT_IDLE);
}

int
edge_answer_claim(void)
{
	struct edge_slot *s = slot_current();

	if (s == NULL)
		return (1);
	return (!slot_take(s, SLOT_HEADERS, SLOT_BODY));
}

void
edge_connection_close(void)
{
	struct edge_slot *s = slot_current();
	char buf[4096];

	if (s == NULL)
		return;
	/* Whatever the client sent after a cut is read and dropped:
	 * closing over unread bytes resets the connection, and the reset
	 * can reach the client before the answer does. */
	if (slot_settle(s) == SLOT_CUT)
		for (int i = 0; i < 16; i++)
			if (real_recv(tl_fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
				break;
	if (atomic_exchange_explicit(&s->owner, NULL, memory_order_acq_rel) !=
	    NULL)
		atomic_fetch_sub_explicit(&n_open, 1, memory_order_relaxed);
	atomic_store(&s->state, SLOT_FREE);
	tl_fd = -1;
}

void
edge_thread_init(edge *e, int thread_type)
{
	if (thread_type == 0)
		tl_master = e;
}

const char *
edge_cut_message(const edge *e, int status, int body, char *buf, int cap)
{
	if (status == EDGE_OVER_TOTAL)
		snprintf(buf, (size_t)cap,
		    "too many unfinished requests at once (at most %d for more "
		    "than %d ms)",
		    e->cfg.slow_total, EDGE_SLOW_AFTER_MS);
	else if (status == 429)
		snprintf(buf, (size_t)cap,
		    "too many unfinished requests from this address (at most %d "
		    "for more than %d ms)",
		    e->cfg.slow_per_addr, EDGE_SLOW_AFTER_MS);
	else if (body)
		snprintf(buf, (size_t)cap,
		    "the request body came slower than %d bytes/s after its "
		    "first %d ms",
		    e->cfg.body_min_rate, e->cfg.body_timeout_ms);
	else
		snprintf(buf, (size_t)cap,
		    "the request headers did not arrive within %d ms",
		    e->cfg.header_timeout_ms);
	return (buf);
}

/* The JSON answer for a connection cut in its headers (no handler runs:
 * the watchdog writes it itself, then shuts the socket down). */
static void
edge_answer(const edge *e, int fd, int status)
{
	char id[33], msg[256], body[512], head[512], date[64];
	time_t now = time(NULL);
	struct tm tm;
	int bl, hl;

	aff_request_id_new(id);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	bl = snprintf(body, sizeof(body),
	    "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"request_id\":\"%s\"}}",
	    status == 408 ? "DEADLINE_EXCEEDED" : "RESOURCE_EXHAUSTED",
	    edge_cut_message(e, status, 0, msg, sizeof(msg)), id);
	if (status == EDGE_OVER_TOTAL)
		status = 429;
	hl = snprintf(head, sizeof(head),
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n"
	    "Content-Length: %d\r\n"
	    "X-Request-Id: %s\r\n"
	    "Cache-Control: no-store\r\n"
	    "Date: %s\r\n"
	    "%s"
	    "Connection: close\r\n\r\n",
	    status, mg_get_response_code_text(NULL, status), bl,
	    id, date, status == 429 ? "Retry-After: 1\r\n" : "");
	if (hl + bl < (int)sizeof(head)) {
		memcpy(head + hl, body, (size_t)bl);
		hl += bl;
	}
	/* A client that reads nothing gets nothing: never wait on it. */
	(void)send(fd, head, (size_t)hl, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Cuts fd if it still holds connection gen, in from (HEADERS or BODY). */
static void
edge_cut(edge *e, int fd, unsigned gen, int from, int status)
{
	struct edge_slot *s = &slots[fd];
	int st = from;

	atomic_store(&s->cut_status, status);
	atomic_store(&s->cut_body, from == SLOT_BODY);
	if (!atomic_compare_exchange_strong(&s->state, &st, SLOT_CUTTING))
		return;
	/* Closed and accepted again since the watchdog looked: not this
	 * one's to cut. (CUTTING holds its close back from here on.) */
	if (atomic_load(&s->gen) != gen ||
	    atomic_load_explicit(&s->owner, memory_order_acquire) != e) {
		atomic_store(&s->state, from);
		return;
	}
	if (from == SLOT_HEADERS) {
		edge_answer(e, fd, status);
		shutdown(fd, SHUT_RDWR);
	} else
		shutdown(fd, SHUT_RD);
	atomic_store(&s->state, SLOT_CUT);
	atomic_fetch_add_explicit(&n_cut[status == 408
	                                 ? (from == SLOT_BODY ? EDGE_CUT_BODY_DEADLINE
	                                                      : EDGE_CUT_HEADER_DEADLINE)
	                             : status == 429 ? EDGE_CUT_ADDRESS_CAP
	                                             : EDGE_CUT_TOTAL_CAP],
	    1, memory_order_relaxed);
	aff_info("bridge: %s connection cut: %s",
	    from == SLOT_BODY ? "a slow body's" : "a slow header's",
	    status == 408 ? "past its deadline (408)"
	    : status == 429 ? "over its address's cap (429)"
	                    : "over the cap of all addresses (429)");
}

static int
open_cmp(const void *a, const void *b)
{
	const struct edge_open *x = a, *y = b;
	int c = memcmp(x->addr, y->addr, sizeof(x->addr));

	if (c != 0)
		return (c);
	return (x->t0 < y->t0 ? -1 : x->t0 > y->t0);
}

/*
 * Whether the time fd spends in its phase is the client's doing: its
 * worker waits in poll() for it and nothing it sent is left unread. A
 * worker that has not run for a while on a loaded host (its bytes waiting
 * in the socket, or read but not yet parsed) must not make a busy client
 * look slow.
 */
static int
edge_client_owes(int fd, struct edge_slot *s)
{
	int pending = 0;

	return (atomic_load_explicit(&s->waiting, memory_order_relaxed) &&
	    ioctl(fd, FIONREAD, &pending) == 0 && pending == 0);
}

/* Youngest first. */
static int
open_age_cmp(const void *a, const void *b)
{
	const struct edge_open *x = a, *y = b;

	return (x->t0 > y->t0 ? -1 : x->t0 < y->t0);
}

/* The slow requests left after the caps per address (fd -1: cut), held
 * to slow_total: past it, the youngest are cut. */
static void
edge_scan_total(edge *e, struct edge_open *list, size_t n, int64_t now)
{
	size_t slow = 0;

	for (size_t i = 0; i < n; i++)
		if (list[i].fd >= 0 && now - list[i].t0 > EDGE_SLOW_AFTER_MS)
			slow++;
	if (slow <= (size_t)e->cfg.slow_total)
		return;
	qsort(list, n, sizeof(*list), open_age_cmp);
	for (size_t i = 0; i < n && slow > (size_t)e->cfg.slow_total; i++) {
		if (list[i].fd < 0)
			continue;
		if (now - list[i].t0 > EDGE_SLOW_AFTER_MS)
			slow--;
		edge_cut(e, list[i].fd, list[i].gen,
		    list[i].body ? SLOT_BODY : SLOT_HEADERS,
		    EDGE_OVER_TOTAL);
	}
}

/* One look at every connection: deadlines, then the cap per address. */
static void
edge_scan(edge *e, struct edge_open **listp, size_t *capp)
{
	int64_t now = edge_now_ms();
	int hw = atomic_load(&hiwater);
	size_t n = 0;

	if ((size_t)hw + 1 > *capp) {
		struct edge_open *nl = realloc(*listp, ((size_t)hw + 1) * sizeof(**listp));
		if (nl == NULL)
			return;
		*listp = nl;
		*capp = (size_t)hw + 1;
	}
	for (int fd = 0; fd <= hw; fd++) {
		struct edge_slot *s = &slots[fd];
		unsigned gen = atomic_load(&s->gen);
		int st;
		int64_t age, allowed;

		if (atomic_load_explicit(&s->owner, memory_order_acquire) != e)
			continue;
		st = atomic_load(&s->state);
		if (st == SLOT_HEADERS &&
		    !atomic_load_explicit(&s->taken, memory_order_acquire))
			continue;
		if (st != SLOT_HEADERS && st != SLOT_BODY)
			continue;
		age = now - atomic_load(&s->t0);
		if (age < EDGE_TICK_MS || !edge_client_owes(fd, s))
			continue;
		allowed = st == SLOT_HEADERS ? e->cfg.header_timeout_ms
		    : e->cfg.body_timeout_ms +
		        atomic_load(&s->bytes) * 1000 / e->cfg.body_min_rate;
		if (age > allowed) {
			edge_cut(e, fd, gen, st, 408);
			continue;
		}
		memcpy((*listp)[n].addr, s->addr, sizeof(s->addr));
		(*listp)[n].t0 = now - age;
		(*listp)[n].fd = fd;
		(*listp)[n].body = st == SLOT_BODY;
		(*listp)[n].gen = gen;
		n++;
	}
	qsort(*listp, n, sizeof(**listp), open_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i, slow = 0;

		while (j < n && memcmp((*listp)[j].addr, (*listp)[i].addr, 16) == 0) {
			if (now - (*listp)[j].t0 > EDGE_SLOW_AFTER_MS)
				slow++;
			j++;
		}
		/* Oldest first: the first slow_per_addr keep their deadlines,
		 * the younger ones are over the cap. */
		if (slow >= (size_t)e->cfg.slow_per_addr)
			for (size_t k = i + (size_t)e->cfg.slow_per_addr; k < j; k++) {
				edge_cut(e, (*listp)[k].fd, (*listp)[k].gen,
				    (*listp)[k].body ? SLOT_BODY : SLOT_HEADERS, 429);
				(*listp)[k].fd = -1;
			}
		i = j;
	}
	edge_scan_total(e, *listp, n, now);
}

static void *
edge_main(void *arg)
{
	edge *e = arg;
	struct edge_open *list = NULL;
	size_t cap = 0;

	pthread_mutex_lock(&e->mu);
	while (!e->stop) {
		struct timespec ts;

		pthread_mutex_unlock(&e->mu);
		edge_scan(e, &list, &cap);
		pthread_mutex_lock(&e->mu);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += EDGE_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!e->stop)
			pthread_cond_timedwait(&e->cv, &e->mu, &ts);
	}
	pthread_mutex_unlock(&e->mu);
	free(list);
	return (NULL);
}

int
edge_start(const struct edge_config *cfg, edge **ep)
{
	pthread_condattr_t ca;
	edge *e;

	pthread_once(&real_once, real_resolve);
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	e->cfg = *cfg;
	if (e->cfg.body_min_rate < 1)
		e->cfg.body_min_rate = 1;
	pthread_mutex_init(&e->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&e->thread, NULL, edge_main, e) != 0) {
		pthread_cond_destroy(&e->cv);
		pthread_mutex_destroy(&e->mu);
		free(e);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	*ep = e;
	return (AFF_OK);
}

void
edge_stop(edge *e)
{
	int hw = atomic_load(&hiwater);

	if (e == NULL)
		return;
	atomic_store(&e->stopping, 1);
	pthread_mutex_lock(&e->mu);
	e->stop = 1;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->thread, NULL);
	for (int fd = 0; fd <= hw; fd++) {
		edge *o = e;
		if (atomic_compare_exchange_strong(&slots[fd].owner, &o, NULL))
			atomic_fetch_sub_explicit(&n_open, 1, memory_order_relaxed);
	}
}

void
edge_counts_get(struct edge_counts *c)
{
	c->open = atomic_load_explicit(&n_open, memory_order_relaxed);
	for (int i = 0; i < EDGE_CUT_REASONS; i++)
		c->cut[i] = atomic_load_explicit(&n_cut[i], memory_order_relaxed);
}

void
edge_free(edge *e)
{
	if (e == NULL)
		return;
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free(e);
}
