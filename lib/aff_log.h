/*
 * aff_log.h - one-line, timestamped log records on stderr.
 *
 * Every line names the process and, where there is one, the request id, so
 * a request can be followed from the bridge into the server.
 *
 * After aff_log_init a request never waits on the log: a line is copied
 * into a bounded buffer that a log thread writes out in batches (within a
 * few ms). If the reader is too slow and the buffer fills, lines are
 * dropped and counted, and a later line says how many. ERROR lines, lines
 * logged before aff_log_init, after exit began or in a forked child are
 * written synchronously; at exit everything buffered is written. Not
 * async-signal-safe: never log from a signal handler.
 */
#ifndef AFF_LOG_H
#define AFF_LOG_H

#include <stdatomic.h>

enum aff_log_level {
	AFF_LOG_DEBUG = 0,
	AFF_LOG_INFO  = 1,
	AFF_LOG_WARN  = 2,
	AFF_LOG_ERROR = 3,
};

/* Sets the process name shown on each line (not copied: pass a literal)
 * and starts the log thread (once; it takes no signals). Call it first in
 * main, before threads are started. */
void aff_log_init(const char *process);

/* Writes everything buffered now (blocks while the reader does not read).
 * Exit does it too; ERROR lines do it before themselves. */
void aff_log_flush(void);

/* Lines below level are dropped. */
void aff_log_set_level(enum aff_log_level level);

/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int aff_log_level_parse(const char *s);

/* Lines as text (the default) or, json != 0, one JSON object a line:
 * {"time","level","process","pid","req" (when the call has one),"msg"}. */
void aff_log_set_json(int json);

/* The --log-format option's parser (AFF_OPT_CUSTOM, dst unused): "text" or
 * "json" sets the format; anything else is refused on stderr with -1. */
int aff_log_format_option(void *dst, const char *value);

/* Logs one line; request_id may be NULL or "". Thread-safe. Returns
 * without a syscall (below ERROR, once the log thread runs). */
void aff_log(enum aff_log_level level, const char *request_id, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/*
 * A rate limit for warnings a peer can cause at will (garbage on a socket,
 * forged results): one line a second, the rest counted. Zero-initialise
 * one per kind of warning (a static is fine). Thread-safe.
 */
struct aff_log_limit {
	atomic_llong next_ms;  /* monotonic; the next line may go then */
	atomic_int suppressed; /* dropped since the last line */
};

/* 1 when a line may be written now (*suppressed: how many were dropped
 * since the last one, to say so in it), else 0 (counted as dropped). */
int aff_log_limit_pass(struct aff_log_limit *l, int *suppressed);

#define aff_debug(...) aff_log(AFF_LOG_DEBUG, NULL, __VA_ARGS__)
#define aff_info(...) aff_log(AFF_LOG_INFO, NULL, __VA_ARGS__)
#define aff_warn(...) aff_log(AFF_LOG_WARN, NULL, __VA_ARGS__)
#define aff_error(...) aff_log(AFF_LOG_ERROR, NULL, __VA_ARGS__)

#endif /* AFF_LOG_H */
