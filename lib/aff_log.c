/* aff_log.c - see aff_log.h. */
#include "aff_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aff_util.h"

static const char *log_process = "affiliate";
static enum aff_log_level log_level = AFF_LOG_INFO;
static const char *log_names[] = { "debug", "info", "warn", "error" };

void
aff_log_init(const char *process)
{
	log_process = process;
}

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

void
aff_log(enum aff_log_level level, const char *request_id, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if (level < log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%d] %s ",
	    ts.tv_nsec / 1000000, log_process, (int)getpid(), log_names[level]);
	if (request_id != NULL && request_id[0] != '\0' && n < sizeof(line))
		n += (size_t)snprintf(
		    line + n, sizeof(line) - n, "req=%s ", request_id);
	if (n < sizeof(line)) {
		char msg[1536];
		int m;

		va_start(ap, fmt);
		m = vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		if (m < 0)
			m = 0;
		n = log_escape(line, n, sizeof(line) - 1, msg,
		    (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1);
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line keeps lines whole across threads and processes. */
	(void)!write(STDERR_FILENO, line, n);
}
