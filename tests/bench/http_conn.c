/*
 * http_conn.c - the load drivers' keep-alive HTTP/1.1 client (see
 * http_conn.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http_conn.h"

/* An answer that takes longer than this (on one read or write) is an
 * error, so a stuck bridge cannot hang a load driver; c->timeout_ms says
 * otherwise. */
#define IO_TIMEOUT_MS 10000
/* Headers larger than this are an error; bodies may be larger. */
#define MAX_HEADER 16384

void
http_disconnect(struct http_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static int
http_connect(struct http_conn *c)
{
	int ms = c->timeout_ms > 0 ? c->timeout_ms : IO_TIMEOUT_MS;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct sockaddr_in sa;
	int one = 1;

	http_disconnect(c);
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (-1);
	/* Each request goes out in one write; don't let Nagle hold it. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t) c->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		http_disconnect(c);
		return (-1);
	}
	return (0);
}

/* Makes room for at least want more bytes in c->buf (plus a NUL). */
static int
http_reserve(struct http_conn *c, size_t want)
{
	size_t cap = c->cap ? c->cap : 8192;
	char *q;

	while (cap < c->len + want + 1)
		cap *= 2;
	if (cap == c->cap)
		return (0);
	if ((q = realloc(c->buf, cap)) == NULL)
		return (-1);
	c->buf = q;
	c->cap = cap;
	return (0);
}

/* Reads what is there (at least one byte) into c->buf. */
static int
http_fill(struct http_conn *c)
{
	ssize_t got;

	if (http_reserve(c, 4096) != 0)
		return (-1);
	do
		got = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
	while (got < 0 && errno == EINTR);
	if (got <= 0)
		return (-1); /* closed, reset or timed out */
	c->len += (size_t) got;
	c->buf[c->len] = '\0';
	return (0);
}

const char *
http_header(const char *headers, const char *name)
{
	size_t n = strlen(name);
	const char *line = headers;

	while ((line = strstr(line, "\r\n")) != NULL) {
		line += 2;
		if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
			line += n + 1;
			while (*line == ' ' || *line == '\t')
				line++;
			return (line);
		}
	}
	return (NULL);
}

int
http_roundtrip(struct http_conn *c, const char *req, size_t req_len,
    struct http_answer *a)
{
	const char *p, *cl;
	size_t off = 0, head_len, body_len;
	ssize_t put;
	char *end, *eoh;
	long status;

	/* The previous answer's bytes are done with. */
	c->len = 0;
	if (c->fd < 0 && http_connect(c) != 0)
		return (-1);
	while (off < req_len) {
		put = send(c->fd, req + off, req_len - off, MSG_NOSIGNAL);
		if (put < 0 && errno == EINTR)
			continue;
		if (put <= 0)
			goto failed;
		off += (size_t) put;
	}
	while ((eoh = c->len ? strstr(c->buf, "\r\n\r\n") : NULL) == NULL) {
		if (c->len > MAX_HEADER || http_fill(c) != 0)
			goto failed;
	}
	head_len = (size_t) (eoh - c->buf);
	*eoh = '\0';
	if (strncmp(c->buf, "HTTP/1.", 7) != 0 || c->buf[8] != ' ')
		goto failed;
	status = strtol(c->buf + 9, &end, 10);
	if (end != c->buf + 12 || status < 100 || status > 599)
		goto failed;
	/* Only Content-Length framing: the bridge answers with it. */
	if ((cl = http_header(c->buf, "Content-Length")) == NULL)
		goto failed;
	errno = 0;
	body_len = strtoul(cl, &end, 10);
	if (errno != 0 || end == cl || body_len > (64u << 20))
		goto failed;
	while (c->len < head_len + 4 + body_len)
		if (http_fill(c) != 0)
			goto failed;
	a->status = (int) status;
	a->headers = c->buf;
	a->body = c->buf + head_len + 4;
	a->body_len = body_len;
	/* A body is NUL-terminated in place; pipelined bytes after it would
	 * be a server bug, since we send one request at a time. */
	c->buf[head_len + 4 + body_len] = '\0';
	p = http_header(c->buf, "Connection");
	a->close = p != NULL && strncasecmp(p, "close", 5) == 0;
	return (0);

failed:
	http_disconnect(c);
	return (-1);
}

void
http_after(struct http_conn *c, const struct http_answer *a)
{
	if (a->close)
		http_disconnect(c);
}
