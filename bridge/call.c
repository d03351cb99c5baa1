/* call.c - see call.h. */
#include "call.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aff_json.h"
#include "aff_util.h"
#include "bridge_priv.h"
#include "cors.h"

/*
 * Whether the connection stays open after this answer: never after a 401,
 * an answer that left the body unread or framing that cannot be trusted;
 * else the client's Connection header when it sent one, HTTP/1.1's
 * default when not (civetweb's own rule, should_keep_alive()). civetweb
 * 1.15 does not see the Connection header the bridge writes itself, so
 * call_send tells it (mg_disable_connection_keep_alive) whenever this says
 * close.
 */
static int
call_keep_alive(const struct http_call *hc)
{
	const char *c;

	if (hc->close || hc->status == 401 || hc->ri->http_version == NULL)
		return (0);
	/* A body left unread would be read and dropped by civetweb after
	 * the answer, at whatever pace the client sends it, with no
	 * deadline: close instead. */
	if (!hc->body_read &&
	    (hc->ri->content_length > 0 ||
	        mg_get_header(hc->conn, "Transfer-Encoding") != NULL))
		return (0);
	if ((c = mg_get_header(hc->conn, "Connection")) != NULL)
		return (strcasestr(c, "keep-alive") != NULL);
	return (strcmp(hc->ri->http_version, "1.1") == 0);
}

/*
 * The reply metadata the server means for the HTTP client, as headers
 * (RateLimit-*, Retry-After with a 429, WWW-Authenticate with a 401).
 * Values are the server's, but still checked: no CR or LF gets through.
 */
static void
call_reply_headers(const struct http_call *hc, struct aff_buf *b)
{
	static const struct {
		const char *key, *header;
	} map[] = {
		{ "www-authenticate", "WWW-Authenticate" },
		{ "ratelimit-limit", "RateLimit-Limit" },
		{ "ratelimit-remaining", "RateLimit-Remaining" },
		{ "ratelimit-reset", "RateLimit-Reset" },
		{ "retry-after", "Retry-After" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		const char *v = aff_call_result_metadata(hc->res, map[i].key);
		if (v == NULL || strpbrk(v, "\r\n") != NULL || strlen(v) > 256 ||
		    (hc->retry_after > 0 && strcmp(map[i].key, "retry-after") == 0))
			continue;
		aff_buf_printf(b, "%s: %s\r\n", map[i].header, v);
	}
}

/*
 * Writes status line, headers and body in one mg_write: civetweb's
 * mg_response_header_* functions send each header line on its own, and
 * with Nagle's algorithm and delayed ACKs each response then waits for
 * the client's delayed ACK (README, Performance, has what it cost).
 */
void
call_send(struct http_call *hc, int status, const char *body, size_t len)
{
	struct aff_buf b;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	int head_only;

	hc->status = status;
	hc->sent = len;
	/* Refused before its body was asked for: the client may or may not
	 * send it now, so the connection cannot be reused (RFC 9110 10.1.1). */
	if (!hc->continued && call_expects_continue(hc))
		hc->close = 1;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	aff_buf_init(&b);
	aff_buf_printf(&b, "HTTP/1.1 %d %s\r\n", status,
	    mg_get_response_code_text(hc->conn, status));
	/* A 204 has no body, and says nothing of one (RFC 9110 8.6). */
	if (status != 204)
		aff_buf_printf(&b,
		    "Content-Type: %s\r\n"
		    "Content-Length: %zu\r\n",
		    hc->content_type != NULL ? hc->content_type
		                             : "application/json; charset=utf-8",
		    len);
	aff_buf_printf(&b,
	    "X-Request-Id: %s\r\n"
	    "Cache-Control: no-store\r\n"
	    "Date: %s\r\n",
	    hc->request_id, date);
	if (hc->extra != NULL)
		aff_buf_add(&b, hc->extra, strlen(hc->extra));
	/* Errors too: a script must be able to read why it was refused. */
	if (hc->b != NULL && hc->ri->request_method != NULL &&
	    strcmp(hc->ri->request_method, "OPTIONS") != 0)
		cors_answer_headers(&hc->b->cors, mg_get_header(hc->conn, "Origin"),
		    &b);
	if (hc->allow != NULL)
		aff_buf_printf(&b, "Allow: %s\r\n", hc->allow);
	/* A Link is as long as the client's query: never dropped, or a
	 * client would take the page for the last. */
	if (hc->link != NULL)
		aff_buf_printf(&b, "Link: %s\r\n", hc->link);
	if (hc->retry_after > 0)
		aff_buf_printf(&b, "Retry-After: %d\r\n", hc->retry_after);
	if (hc->res != NULL)
		call_reply_headers(hc, &b);
	if (call_keep_alive(hc))
		aff_buf_printf(&b, "Connection: keep-alive\r\n\r\n");
	else {
		aff_buf_printf(&b, "Connection: close\r\n\r\n");
		mg_disable_connection_keep_alive(hc->conn);
	}
	/* A request line too broken to parse has no method. */
	head_only = hc->ri->request_method != NULL &&
	    strcmp(hc->ri->request_method, "HEAD") == 0;
	if (!head_only && len > 0 && len <= 16384)
		aff_buf_add(&b, body, len); /* one write for all of it */
	else if (!head_only && len > 0) {
		mg_write(hc->conn, b.data, b.len);
		aff_buf_fini(&b);
		mg_write(hc->conn, body, len);
		return;
	}
	if (!b.failed)
		mg_write(hc->conn, b.data, b.len);
	aff_buf_fini(&b);
}

void
call_send_json(struct http_call *hc, int status, json_t *j)
{
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)
	                    : NULL;

	if (s == NULL) {
		static const char oom[] = "{\"error\":{\"code\":\"INTERNAL\","
		                          "\"message\":\"out of memory\"}}";
		call_send(hc, 500, oom, sizeof(oom) - 1);
	} else {
		call_send(hc, status, s, strlen(s));
		free(s);
	}
	json_decref(j);
}

/* Answers {"error":{"code":…,"message":…,"request_id":…}}. */
int
call_error(
    struct http_call *hc, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message", msg,
	    "request_id", hc->request_id);
	if (j == NULL) /* msg quoted bytes that are not UTF-8 */
		j = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message",
		    "(a message that is not UTF-8)", "request_id", hc->request_id);
	call_send_json(hc, status, j);
	return (status);
}

/* The client's X-Request-Id when it is sane (printable, no spaces, at most
 * 128 bytes), else a new one. */
void
call_request_id(struct http_call *hc)
{
	const char *h = mg_get_header(hc->conn, "X-Request-Id");
	size_t n;

	if (h != NULL && (n = strlen(h)) > 0 && n < sizeof(hc->request_id)) {
		size_t i;
		for (i = 0; i < n; i++)
			if (h[i] <= 0x20 || h[i] >= 0x7f)
				break;
		if (i == n) {
			memcpy(hc->request_id, h, n + 1);
			return;
		}
	}
	aff_request_id_new(hc->request_id);
}

/* Whether the client waits for "100 Continue" before it sends a body
 * (RFC 9110 10.1.1): HTTP/1.1, Expect: 100-continue, and a body to come. */
int
call_expects_continue(const struct http_call *hc)
{
	const char *e = mg_get_header(hc->conn, "Expect");

	return (e != NULL && strcasecmp(e, "100-continue") == 0 &&
	    hc->ri->http_version != NULL &&
	    strcmp(hc->ri->http_version, "1.1") == 0 &&
	    (hc->ri->content_length > 0 ||
	        mg_get_header(hc->conn, "Transfer-Encoding") != NULL));
}

/* Says "100 Continue" once the request is going to be read: civetweb 1.15
 * sends it only for its own file uploads (forward_body_data), never
 * before a handler's mg_read. */
void
call_continue(struct http_call *hc)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (call_expects_continue(hc) && !hc->continued) {
		mg_write(hc->conn, cont, sizeof(cont) - 1);
		hc->continued = 1;
	}
}

/*
 * OPTIONS on a path: 204 with what it allows; a CORS preflight from an
 * allowed origin also gets the CORS answer (cors.h), any other gets none
 * and the browser refuses the call.
 */
void
call_options(struct http_call *hc, const char *allow)
{
	struct aff_buf b;

	hc->allow = aff_arena_strdup(&hc->arena, allow);
	aff_buf_init(&b);
	if (mg_get_header(hc->conn, "Access-Control-Request-Method") != NULL)
		cors_preflight_headers(&hc->b->cors,
		    mg_get_header(hc->conn, "Origin"), allow, &b);
	if (b.len > 0 && !b.failed)
		hc->extra = aff_arena_strdup(&hc->arena, b.data);
	aff_buf_fini(&b);
	call_send(hc, 204, "", 0);
}


int
call_get_only(struct http_call *hc, const char *path)
{
	const char *m = hc->ri->request_method;

	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
		return (1);
	if (strcmp(m, "OPTIONS") == 0)
		call_options(hc, "GET, HEAD, OPTIONS");
	else {
		hc->allow = "GET, HEAD, OPTIONS";
		call_error(hc, 405, "UNIMPLEMENTED", "%s is not allowed on %s", m,
		    path);
	}
	return (0);
}
