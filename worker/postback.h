/*
 * postback.h - the worker's "postback" job: one signed HTTP POST of an
 * event to an editor's endpoint (libcurl), reported as a PostbackResult
 * whatever the outcome, so that the server logs every attempt and decides
 * about retries from the receiver's answer.
 */
#ifndef WORKER_POSTBACK_H
#define WORKER_POSTBACK_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct worker_config;

/* A worker_handler's run (worker.h). AFF_OK on a 2xx answer; else an
 * error, with why in err; *out is the packed PostbackResult either way
 * (malloc'd, caller frees). */
int worker_postback_run(const struct worker_config *cfg,
    const ProtobufCBinaryData *payload, uint8_t **out, size_t *outlen,
    char *err, size_t errlen);

/* The seconds a Retry-After value asks for (delta-seconds or an
 * HTTP-date, from now_s); 0 when absent or unreadable. */
int worker_postback_retry_after(const char *value, int64_t now_s);

#endif /* WORKER_POSTBACK_H */
