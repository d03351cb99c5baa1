/*
 * aff_util.h - small helpers every binary needs: clocks, strict number
 * parsing, environment defaults, request ids, hex and FNV-1a.
 */
#ifndef AFF_UTIL_H
#define AFF_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Wall-clock milliseconds since the Unix epoch: for timestamps shown to
 * people and webhook signature windows only, never for a wait (hosts'
 * clocks disagree, and NTP steps them). */
int64_t aff_now_ms(void);

/* Monotonic milliseconds, for timeouts and backoff within one process. */
int64_t aff_mono_ms(void);
/* The same clock in microseconds (for latency histograms). */
int64_t aff_mono_us(void);

/*
 * Initialises cv so that pthread_cond_timedwait takes its deadline on
 * CLOCK_MONOTONIC: a wait on the default clock (CLOCK_REALTIME) stalls
 * when the wall clock steps back and ends early when it steps forward.
 * Returns pthread_cond_init's answer.
 */
int aff_cond_init_monotonic(pthread_cond_t *cv);

/* *ts = CLOCK_MONOTONIC now + ms: the deadline for a wait on such a cv. */
void aff_mono_deadline(struct timespec *ts, int64_t ms);

/*
 * Parses a whole decimal integer in [min, max]: no sign for unsigned use,
 * no spaces, no trailing bytes, no overflow. Returns AFF_OK or
 * AFF_INVALID_ARGUMENT; *out is untouched on error.
 */
int aff_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* getenv(name) when set and non-empty, else def. */
const char *aff_env(const char *name, const char *def);

/* Writes a random request id (32 hex characters and a NUL) into buf. */
void aff_request_id_new(char buf[33]);

/*
 * Writes raw[0..n) as 2n lowercase hex characters and a NUL into out,
 * which holds at least 2n + 1 bytes. OpenSSL does the work; the project
 * writes hex in lowercase (tokens, secrets, MACs and their SQL twins
 * lower(hex(...)) compare as text).
 */
void aff_hex_encode(const void *raw, size_t n, char *out);

/* The most bytes aff_hex_decode takes at once. */
#define AFF_HEX_DECODE_MAX 64

/*
 * Decodes exactly the 2n hex characters s[0..len) (either case; no NUL,
 * sign, space or separator) into out[0..n). AFF_OK, or
 * AFF_INVALID_ARGUMENT when len != 2n, n > AFF_HEX_DECODE_MAX or a
 * character is not hex; out may then hold part of an answer. Leaves no
 * entry on OpenSSL's error queue.
 */
int aff_hex_decode(const char *s, size_t len, unsigned char *out, size_t n);

/*
 * 64-bit FNV-1a of p[0..n) continued from h: pass AFF_FNV1A_OFFSET to
 * start (or it XORed with a seed, so outsiders cannot aim keys at one
 * bucket), or an earlier answer to hash more bytes after it.
 */
#define AFF_FNV1A_OFFSET 0xcbf29ce484222325ull
uint64_t aff_fnv1a(uint64_t h, const void *p, size_t n);

/* Formats a Unix time (seconds) as RFC 3339 UTC ("2026-11-24T13:38:20Z"). */
void aff_time_rfc3339(int64_t unix_s, char buf[32]);

#endif /* AFF_UTIL_H */
