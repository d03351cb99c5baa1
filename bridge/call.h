/*
 * call.h - private to bridge/: one HTTP request being answered, and the
 * response writer every answer goes through (status line, headers, CORS
 * headers, a JSON body or a JSON error), in one write.
 */
#ifndef CALL_H
#define CALL_H

#include <stddef.h>
#include <stdint.h>

#include <civetweb.h>
#include <jansson.h>

#include "aff_arena.h"
#include "aff_client.h"
#include "bridge.h"

/* One HTTP request being answered. */
struct http_call {
	struct mg_connection *conn;
	const struct mg_request_info *ri;
	bridge *b;
	aff_arena arena;
	char request_id[129];
	int64_t t0;
	int status;
	size_t sent;
	const char *allow;       /* 405 */
	const char *link;        /* a next page */
	const char *content_type; /* NULL: JSON (only /metrics sets another) */
	int retry_after;         /* 503 */
	const struct aff_call_result *res; /* its metadata become headers */
	int close;               /* the connection cannot be reused */
	const char *extra;       /* more header lines ("Name: v\r\n") */
	int continued;           /* "100 Continue" was sent */
	int body_read;           /* call_read_body ran */
};

/*
 * Sends the answer: status line, headers (those hc asks for: allow, link,
 * retry_after, res's metadata, extra, CORS) and body. Whether the
 * connection stays open is decided here (close, a 401, a body left
 * unread, the client's Connection header). Sets hc->status and hc->sent.
 */
void call_send(struct http_call *hc, int status, const char *body, size_t len);

/* Sends j as the body (takes ownership of j; NULL answers 500, out of
 * memory). */
void call_send_json(struct http_call *hc, int status, json_t *j);

/* Answers {"error":{"code":…,"message":…,"request_id":…}}; returns
 * status. */
int call_error(struct http_call *hc, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Sets hc->request_id: the client's X-Request-Id when it is sane
 * (printable, no spaces, at most 128 bytes), else a new one. */
void call_request_id(struct http_call *hc);

/* Whether the client waits for "100 Continue" before it sends a body
 * (RFC 9110 10.1.1): HTTP/1.1, Expect: 100-continue, and a body to come. */
int call_expects_continue(const struct http_call *hc);

/* Says "100 Continue" once, if the client waits for it, before the body
 * is read. */
void call_continue(struct http_call *hc);

/*
 * OPTIONS on a path: 204 with what it allows (allow); a CORS preflight
 * from an allowed origin also gets the CORS answer (cors.h), any other gets
 * none and the browser refuses the call.
 */
void call_options(struct http_call *hc, const char *allow);

/*
 * For a path served outside the route table that only reads (GET and
 * HEAD): returns 1 when the method is one of them, the caller answers;
 * else answers OPTIONS (call_options) or 405 with Allow and returns 0.
 */
int call_get_only(struct http_call *hc, const char *path);

#endif /* CALL_H */
