/*
 * aff_log.c - see aff_log.h.
 *
 * A request must never wait on the log: at info every request writes a
 * line in the server and one in the bridge, and a write(2) per line cost
 * ~40 % of the bridge's throughput (issue 15). So a line is formatted on
 * the caller's stack and copied into one shared buffer under a mutex held
 * only for the memcpy; a log thread swaps that buffer for an empty one and
 * writes the whole batch with one writev. One buffer under a short lock
 * rather than per-thread buffers: lines from all threads stay in the order
 * they were logged, there is no buffer to free when a thread ends, and the
 * lock is held for a copy of ~200 bytes (measured in the README).
 *
 * Memory is bounded: when the buffer is full (a reader that does not read,
 * a stalled terminal) lines are dropped and counted, and the batch that
 * follows ends with a line saying how many. ERROR lines are written
 * synchronously, after everything buffered before them, so a crash report
 * is never held in a buffer; so is anything logged before aff_log_init
 * starts the thread, after exit began, or in a forked child.
 */
#include "aff_log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "aff_util.h"

#define LOG_LINE_MAX 2048
/* Per buffer (there are two): ~1300 lines of 200 bytes, tens of ms of a
 * busy bridge, before lines are dropped. */
#define LOG_BUF_SIZE (256 * 1024)
/* The log thread sleeps this long after a batch so the next one gathers
 * lines (one writev for many), yet a test reading a log right after an
 * event finds the line there. */
#define LOG_BATCH_NS (1000 * 1000)

static const char *log_process = "affiliate";
static enum aff_log_level log_level = AFF_LOG_INFO;
static const char *log_names[] = { "debug", "info", "warn", "error" };
static pid_t log_pid; /* cached: getpid is a syscall; 0 until init */
static int log_json;  /* --log-format json */

static char log_buf_a[LOG_BUF_SIZE], log_buf_b[LOG_BUF_SIZE];

/*
 * log_mu guards the fill side: log_fill, log_fill_len, log_dropped,
 * log_async, log_idle. Held only for copies, never across a syscall
 * (except the condition wait), so fork's prepare handler may take it.
 * log_write_mu guards the drain side (log_drain_buf) and is held across
 * the write: it orders the log thread's batches with a synchronous ERROR
 * line. Order: log_write_mu before log_mu.
 */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t log_write_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cv = PTHREAD_COND_INITIALIZER;
static char *log_fill = log_buf_a, *log_drain_buf = log_buf_b;
static size_t log_fill_len;
static unsigned long long log_dropped;
static int log_async; /* the log thread runs and takes lines */
static int log_idle;  /* the log thread waits on log_cv for a line */

void
aff_log_set_level(enum aff_log_level level)
{
	log_level = level;
}

int
aff_log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, log_names[i]) == 0)
			return (i);
	return (-1);
}

/*
 * Appends msg to line[n..cap) and returns the new length. Messages carry
 * what peers sent (a decoded URI, a webhook's order_id, a worker's name):
 * a line break in it must not start a forged line, escapes must not drive
 * a terminal, and bytes that are not ASCII must not reach a log reader as
 * they are (invalid UTF-8, bidi overrides). So every byte outside
 * printable ASCII is written as \xNN, and so is a backslash, which
 * keeps the escaping unambiguous.
 */
static size_t
log_escape(char *line, size_t n, size_t cap, const char *msg, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (n + 1 > cap)
				break;
			line[n++] = (char)c;
			continue;
		}
		if (n + 4 > cap)
			break;
		line[n++] = '\\';
		line[n++] = 'x';
		line[n++] = hex[c >> 4];
		line[n++] = hex[c & 15];
	}
	return (n);
}

void
aff_log_set_json(int json)
{
	log_json = json != 0;
}

int
aff_log_format_option(void *dst, const char *v)
{
	(void)dst;
	if (strcmp(v, "text") == 0 || strcmp(v, "json") == 0) {
		aff_log_set_json(strcmp(v, "json") == 0);
		return (0);
	}
	fprintf(stderr, "%s: --log-format must be text or json, not '%s'\n",
	    log_process, v);
	return (-1);
}

/*
 * Appends msg to line[n..cap) as the inside of a JSON string and returns
 * the new length; never cuts an escape. A message's bytes are whatever a
 * peer sent, not necessarily UTF-8, and a log shipper must get valid JSON
 * whatever they are: '"' and '\\' are escaped, control bytes and every
 * byte from 0x7f up are written as \u00NN (the byte's value, as Latin-1:
 * unambiguous, and nothing raw that could be invalid UTF-8 or a bidi
 * override).
 */
static size_t
log_escape_json(char *line, size_t n, size_t cap, const char *msg, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			if (n + 1 > cap)
				break;
			line[n++] = (char)c;
		} else if (c == '"' || c == '\\') {
			if (n + 2 > cap)
				break;
			line[n++] = '\\';
			line[n++] = (char)c;
		} else {
			if (n + 6 > cap)
				break;
			memcpy(line + n, "\\u00", 4);
			n += 4;
			line[n++] = hex[c >> 4];
			line[n++] = hex[c & 15];
		}
	}
	return (n);
}

/* log_format's JSON form; the closing '"}' is always room-checked. */
static size_t
log_format_json(char *line, enum aff_log_level level, const char *request_id,
    const char *msg, size_t mlen, const struct timespec *ts,
    const struct tm *tm)
{
	size_t n, cap = LOG_LINE_MAX - 3; /* '"', '}', '\n' */

	n = (size_t)snprintf(line, LOG_LINE_MAX, "{\"time\":\"");
	n += strftime(line + n, LOG_LINE_MAX - n, "%Y-%m-%dT%H:%M:%S", tm);
	n += (size_t)snprintf(line + n, LOG_LINE_MAX - n,
	    ".%03ldZ\",\"level\":\"%s\",\"process\":\"%s\",\"pid\":%d,",
	    ts->tv_nsec / 1000000, log_names[level], log_process,
	    log_pid != 0 ? (int)log_pid : (int)getpid());
	if (request_id != NULL && request_id[0] != '\0') {
		n += (size_t)snprintf(line + n, LOG_LINE_MAX - n, "\"req\":\"");
		n = log_escape_json(line, n, 256 + n < cap ? 256 + n : cap,
		    request_id, strlen(request_id));
		n += (size_t)snprintf(line + n, LOG_LINE_MAX - n, "\",");
	}
	n += (size_t)snprintf(line + n, LOG_LINE_MAX - n, "\"msg\":\"");
	n = log_escape_json(line, n, cap, msg, mlen);
	line[n++] = '"';
	line[n++] = '}';
	line[n++] = '\n';
	return (n);
}

int
aff_log_limit_pass(struct aff_log_limit *l, int *suppressed)
{
	int64_t now = aff_mono_ms(), next = atomic_load(&l->next_ms);

	if (now < next ||
	    !atomic_compare_exchange_strong(&l->next_ms, &next, now + 1000)) {
		atomic_fetch_add(&l->suppressed, 1);
		return (0);
	}
	*suppressed = atomic_exchange(&l->suppressed, 0);
	return (1);
}

/* Formats one line, ending in '\n', into line[LOG_LINE_MAX]; returns its
 * length. No syscall: the clock is the vDSO's and the pid is cached. */
static size_t
log_format(char *line, enum aff_log_level level, const char *request_id,
    const char *fmt, va_list ap)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (log_json) {
		char msg[1536];
		int m = vsnprintf(msg, sizeof(msg), fmt, ap);

		if (m < 0)
			m = 0;
		return (log_format_json(line, level, request_id, msg,
		    (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1, &ts,
		    &tm));
	}
	n = strftime(line, LOG_LINE_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, LOG_LINE_MAX - n, ".%03ldZ %s[%d] %s ",
	    ts.tv_nsec / 1000000, log_process,
	    log_pid != 0 ? (int)log_pid : (int)getpid(), log_names[level]);
	if (request_id != NULL && request_id[0] != '\0' && n < LOG_LINE_MAX)
		n += (size_t)snprintf(
		    line + n, LOG_LINE_MAX - n, "req=%s ", request_id);
	if (n < LOG_LINE_MAX) {
		char msg[1536];
		int m;

		m = vsnprintf(msg, sizeof(msg), fmt, ap);
		if (m < 0)
			m = 0;
		n = log_escape(line, n, LOG_LINE_MAX - 1, msg,
		    (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1);
	}
	if (n >= LOG_LINE_MAX - 1)
		n = LOG_LINE_MAX - 2;
	line[n++] = '\n';
	return (n);
}

static size_t
log_format_v(char *line, enum aff_log_level level, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = log_format(line, level, NULL, fmt, ap);
	va_end(ap);
	return (n);
}

/* Writes all of iov (short writes and EINTR continue it); gives up on any
 * other error, as a log line cannot be reported anywhere else. */
static void
log_writev_all(struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t w = writev(STDERR_FILENO, iov, cnt);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		while (cnt > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
}

/*
 * Writes what is buffered, then the drop notice if lines were dropped,
 * then extra (a synchronous line, or NULL), as one writev. Takes
 * log_write_mu: a batch the log thread is writing goes out first.
 */
static size_t
log_drain(const char *extra, size_t extra_len)
{
	char notice[LOG_LINE_MAX];
	struct iovec iov[3];
	unsigned long long dropped;
	size_t len;
	char *batch;
	int cnt = 0;

	pthread_mutex_lock(&log_write_mu);
	pthread_mutex_lock(&log_mu);
	batch = log_fill;
	len = log_fill_len;
	log_fill = log_drain_buf;
	log_fill_len = 0;
	log_drain_buf = batch;
	dropped = log_dropped;
	log_dropped = 0;
	pthread_mutex_unlock(&log_mu);
	if (len > 0)
		iov[cnt++] = (struct iovec){ batch, len };
	if (dropped > 0)
		iov[cnt++] = (struct iovec){ notice,
			log_format_v(notice, AFF_LOG_WARN,
			    "%llu log lines dropped: the log's reader was too slow",
			    dropped) };
	if (extra != NULL)
		iov[cnt++] = (struct iovec){ (void *)extra, extra_len };
	log_writev_all(iov, cnt);
	pthread_mutex_unlock(&log_write_mu);
	return (len);
}

static void *
log_thread(void *arg)
{
	struct timespec pause = { 0, LOG_BATCH_NS };

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&log_mu);
		while (log_fill_len == 0 && log_dropped == 0) {
			log_idle = 1;
			pthread_cond_wait(&log_cv, &log_mu);
		}
		log_idle = 0;
		pthread_mutex_unlock(&log_mu);
		/* No pause after a batch of half the buffer or more: the
		 * next one is filling fast, and lines would be dropped. */
		if (log_drain(NULL, 0) < LOG_BUF_SIZE / 2)
			nanosleep(&pause, NULL);
	}
	return (NULL);
}

void
aff_log_flush(void)
{
	int async;

	pthread_mutex_lock(&log_mu);
	async = log_async;
	pthread_mutex_unlock(&log_mu);
	if (async)
		(void)log_drain(NULL, 0);
}

/* At exit every line logged so far is written, and later lines (threads
 * still running while exit unwinds) are written synchronously. */
static void
log_atexit(void)
{
	pthread_mutex_lock(&log_mu);
	log_async = 0;
	pthread_mutex_unlock(&log_mu);
	(void)log_drain(NULL, 0);
}

/* fork: log_mu is held across fork so the child's copy is consistent; the
 * child has no log thread, so it drops the parent's buffered lines (the
 * parent writes them) and writes its own synchronously. log_write_mu is
 * not taken (the log thread may hold it for long in a stalled write); the
 * child never takes it while log_async is 0 and it has nothing to drain. */
static void
log_fork_prepare(void)
{
	pthread_mutex_lock(&log_mu);
}

static void
log_fork_parent(void)
{
	pthread_mutex_unlock(&log_mu);
}

static void
log_fork_child(void)
{
	log_async = 0;
	log_idle = 0;
	log_fill_len = 0;
	log_dropped = 0;
	log_pid = getpid();
	pthread_mutex_unlock(&log_mu);
	pthread_mutex_init(&log_write_mu, NULL);
}

void
aff_log_init(const char *process)
{
	sigset_t all, old;
	pthread_t t;

	log_process = process;
	log_pid = getpid();
	pthread_mutex_lock(&log_mu);
	if (log_async) {
		pthread_mutex_unlock(&log_mu);
		return;
	}
	pthread_mutex_unlock(&log_mu);
	/* The log thread takes no signal: the binaries sigwait for SIGINT
	 * and SIGTERM in main, after blocking them in every other thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&t, NULL, log_thread, NULL) == 0) {
		pthread_detach(t);
		pthread_atfork(log_fork_prepare, log_fork_parent, log_fork_child);
		atexit(log_atexit);
		pthread_mutex_lock(&log_mu);
		log_async = 1;
		pthread_mutex_unlock(&log_mu);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void
aff_log(enum aff_log_level level, const char *request_id, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t n;
	va_list ap;

	if (level < log_level)
		return;
	va_start(ap, fmt);
	n = log_format(line, level, request_id, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_mu);
	if (log_async && level < AFF_LOG_ERROR) {
		if (log_fill_len + n <= LOG_BUF_SIZE) {
			memcpy(log_fill + log_fill_len, line, n);
			log_fill_len += n;
		} else {
			log_dropped++;
		}
		if (log_idle) {
			log_idle = 0;
			pthread_cond_signal(&log_cv);
		}
		pthread_mutex_unlock(&log_mu);
		return;
	}
	if (log_async) {
		/* ERROR: written now, after what was buffered before it. */
		pthread_mutex_unlock(&log_mu);
		(void)log_drain(line, n);
		return;
	}
	pthread_mutex_unlock(&log_mu);
	/* No log thread: one write per line keeps lines whole across threads
	 * and processes. */
	(void)!write(STDERR_FILENO, line, n);
}
