/*
 * worker_metrics.c - see worker_metrics.h.
 */
#include "worker_metrics.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_metrics.h"
#include "worker.h"

#define KINDS_MAX 16 /* handler kinds counted by name; the rest "other" */
#define REQUEST_MAX 4096
#define REQUEST_TIMEOUT_S 2

struct kind_row {
	_Atomic unsigned long long outcome[2]; /* [0] failed, [1] ok */
	struct aff_hist latency;
};

static struct kind_row rows[KINDS_MAX + 1];
static atomic_llong in_progress;

struct worker_metrics {
	int fd;
	int concurrency;
	pthread_t thread;
	atomic_int stop;
};

void
worker_metrics_job_begin(void)
{
	atomic_fetch_add_explicit(&in_progress, 1, memory_order_relaxed);
}

void
worker_metrics_job_done(int kind, int ok, int64_t us)
{
	struct kind_row *r;

	r = &rows[kind >= 0 && kind < KINDS_MAX &&
	                (size_t)kind < worker_handler_count
	        ? kind
	        : KINDS_MAX];
	AFF_COUNT(r->outcome[ok != 0], 1);
	aff_hist_observe(&r->latency, &aff_hist_latency_us, us);
	atomic_fetch_sub_explicit(&in_progress, 1, memory_order_relaxed);
}

static const char *
kind_name(size_t i)
{
	return (i < KINDS_MAX ? worker_handlers[i].kind : "other");
}

int
worker_metrics_render(int concurrency, char **text, size_t *len)
{
	size_t n = worker_handler_count < KINDS_MAX ? worker_handler_count
	                                            : KINDS_MAX;
	struct aff_mbuf b;
	char labels[128];

	aff_mbuf_init(&b);
	aff_metric_head(&b, "affiliate_worker_jobs_total", "counter",
	    "Jobs this worker handled, by kind and outcome (a failure is "
	    "retried by the server).");
	for (size_t i = 0; i <= KINDS_MAX; i++) {
		if (i >= n && i != KINDS_MAX)
			continue;
		for (int ok = 1; ok >= 0; ok--)
			aff_mbuf_printf(&b, "affiliate_worker_jobs_total{kind=\"%s\","
			    "outcome=\"%s\"} %llu\n", kind_name(i),
			    ok ? "ok" : "failed", AFF_LOAD(rows[i].outcome[ok]));
	}
	aff_metric_head(&b, "affiliate_worker_job_duration_seconds", "histogram",
	    "Time a job's handler took, by kind.");
	for (size_t i = 0; i <= KINDS_MAX; i++) {
		if (i >= n && i != KINDS_MAX)
			continue;
		snprintf(labels, sizeof(labels), "kind=\"%s\"", kind_name(i));
		aff_hist_write(&b, "affiliate_worker_job_duration_seconds", labels,
		    &aff_hist_latency_us, &rows[i].latency, i == KINDS_MAX);
	}
	aff_metric_head(&b, "affiliate_worker_jobs_in_progress", "gauge",
	    "Jobs this worker is running now.");
	aff_mbuf_printf(&b, "affiliate_worker_jobs_in_progress %lld\n",
	    (long long)atomic_load(&in_progress));
	aff_metric_head(&b, "affiliate_worker_slots", "gauge",
	    "Jobs this worker runs at once at most (--concurrency).");
	aff_mbuf_printf(&b, "affiliate_worker_slots %d\n", concurrency);
	return (aff_mbuf_take(&b, text, len));
}

static void
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void
answer(int fd, int status, const char *reason, const char *type,
    const char *body, size_t blen, int head_only)
{
	char h[256];
	int n;

	n = snprintf(h, sizeof(h),
	    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "%sConnection: close\r\n\r\n",
	    status, reason, type, blen,
	    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	send_all(fd, h, (size_t)n);
	if (!head_only)
		send_all(fd, body, blen);
}

/* One connection: one request read under REQUEST_TIMEOUT_S, one answer. */
static void
serve(worker_metrics *m, int fd)
{
	struct timeval tv = { REQUEST_TIMEOUT_S, 0 };
	char req[REQUEST_MAX + 1], method[8], path[64], *text;
	size_t got = 0, len;
	ssize_t r;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (got < REQUEST_MAX) {
		if ((r = recv(fd, req + got, REQUEST_MAX - got, 0)) <= 0)
			return; /* closed, or silent past the deadline */
		got += (size_t)r;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL)
			break;
	}
	req[got] = '\0';
	if (sscanf(req, "%7s %63s HTTP/", method, path) != 2) {
		answer(fd, 400, "Bad Request", "text/plain", "bad request\n", 12, 0);
		return;
	}
	if (strcmp(path, "/metrics") != 0) {
		answer(fd, 404, "Not Found", "text/plain", "not found\n", 10, 0);
		return;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		answer(fd, 405, "Method Not Allowed", "text/plain",
		    "method not allowed\n", 19, 0);
		return;
	}
	if (worker_metrics_render(m->concurrency, &text, &len) != 0) {
		answer(fd, 500, "Internal Server Error", "text/plain",
		    "out of memory\n", 14, 0);
		return;
	}
	answer(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text,
	    len, strcmp(method, "HEAD") == 0);
	free(text);
}

static void *
metrics_main(void *arg)
{
	worker_metrics *m = arg;
	struct pollfd p = { m->fd, POLLIN, 0 };
	int c;

	/* Polled with a short timeout rather than woken: stopping waits at
	 * most that long, and there is no second descriptor to manage. */
	while (!atomic_load(&m->stop)) {
		if (poll(&p, 1, 200) <= 0)
			continue;
		if ((c = accept(m->fd, NULL, NULL)) < 0)
			continue;
		serve(m, c);
		close(c);
	}
	return (NULL);
}

int
worker_metrics_start(const char *addr, int concurrency, worker_metrics **mp)
{
	struct addrinfo hints, *ai = NULL;
	char host[256], *port;
	worker_metrics *m;
	int one = 1, rv;

	if (snprintf(host, sizeof(host), "%s", addr) >= (int)sizeof(host) ||
	    (port = strrchr(host, ':')) == NULL || port[1] == '\0') {
		aff_error("worker: --metrics-listen %s: not ADDR:PORT", addr);
		return (AFF_INVALID_ARGUMENT);
	}
	*port++ = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &ai) != 0 ||
	    ai == NULL) {
		aff_error("worker: --metrics-listen %s: not an address", addr);
		return (AFF_INVALID_ARGUMENT);
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed_alloc;
	}
	m->concurrency = concurrency;
	rv = AFF_UNAVAILABLE;
	if ((m->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		goto failed_socket;
	setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(m->fd, 16) != 0) {
		aff_error("worker: --metrics-listen %s: %s", addr, strerror(errno));
		goto failed_listen;
	}
	if (pthread_create(&m->thread, NULL, metrics_main, m) != 0) {
		rv = AFF_RESOURCE_EXHAUSTED;
		goto failed_listen;
	}
	freeaddrinfo(ai);
	aff_info("worker: metrics on http://%s/metrics", addr);
	*mp = m;
	return (AFF_OK);

failed_listen:
	close(m->fd);
failed_socket:
	free(m);
failed_alloc:
	freeaddrinfo(ai);
	return (rv);
}

void
worker_metrics_stop(worker_metrics *m)
{
	if (m == NULL)
		return;
	atomic_store(&m->stop, 1);
	pthread_join(m->thread, NULL);
	close(m->fd);
	free(m);
}
