/* aff_log.c - see aff_log.h. */
#include "aff_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
		size_t from = n;
		va_start(ap, fmt);
		n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
		/* Messages carry what peers sent (a decoded URI, a webhook's
		 * order_id, a service name): a line break in it must not
		 * start a forged line, nor escapes drive a terminal. */
		for (size_t i = from; i < n && i < sizeof(line); i++)
			if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
				line[i] = '?';
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line keeps lines whole across threads and processes. */
	(void)!write(STDERR_FILENO, line, n);
}
