/*
 * http_conn.h - a minimal keep-alive HTTP/1.1 client for the load drivers
 * (bench-app-load, the soak): one request at a time on a connection,
 * Content-Length framing only (the bridge always sends it).
 */
#ifndef BENCH_HTTP_CONN_H
#define BENCH_HTTP_CONN_H

#include <stddef.h>

/* One keep-alive HTTP/1.1 connection and what it has read past the last
 * answer. */
struct http_conn {
	int fd;
	int port;
	int timeout_ms; /* per read or write; 0 = 10 s */
	char *buf;
	size_t len, cap;
};

/* One answer: status, the headers (NUL-terminated, without the blank
 * line) and the body (NUL-terminated). The connection owns both. */
struct http_answer {
	int status;
	const char *headers;
	const char *body;
	size_t body_len;
	int close; /* the server said Connection: close */
};

/* Closes the connection (the next round trip reconnects); the buffer
 * stays, for the caller to free(c->buf) when done with c. */
void http_disconnect(struct http_conn *c);

/*
 * Sends REQ (the whole request) and reads one answer into *a, which stays
 * valid until the next call on c. Reconnects first when c is not
 * connected. Returns 0, or -1 when there is no answer (the connection is
 * then closed). A read or write that waits more than c->timeout_ms (10 s
 * when 0) is no answer.
 */
int http_roundtrip(struct http_conn *c, const char *req, size_t req_len,
    struct http_answer *a);

/* After an answer: closes the connection when the server asked. */
void http_after(struct http_conn *c, const struct http_answer *a);

/* The value of header NAME in HEADERS (one "Name: value\r\n" a line), or
 * NULL. */
const char *http_header(const char *headers, const char *name);

#endif /* BENCH_HTTP_CONN_H */
