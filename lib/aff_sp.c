/* aff_sp.c - see aff_sp.h. */
#include "aff_sp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/random.h>
#include <sys/un.h>
#include <unistd.h>

#include "aff_err.h"
#include "aff_util.h"

/* SP protocol numbers (REQ is 3 << 4, REP its peer). */
#define SP_PROTO_REQ 0x30
#define SP_PROTO_REP 0x31

/* Bytes read ahead: a reply's header and a small body (a webhook's answer
 * is ~150 bytes) come in one read(2) instead of two. */
#define SP_READ_AHEAD 4096

struct aff_sp_conn {
	int fd;
	int ipc;       /* ipc framing: a type byte before the length */
	uint32_t next; /* request ids, high bit set on the wire */
	size_t sent;   /* bytes written by write_all since the last call began */
	size_t rpos, rend; /* unread bytes: rbuf[rpos..rend) */
	uint8_t rbuf[SP_READ_AHEAD];
};

int
aff_sp_supported(const char *url)
{
	return (strncmp(url, "tcp://", 6) == 0 || strncmp(url, "ipc://", 6) == 0);
}

static int
remaining(int64_t deadline)
{
	int64_t left = deadline - aff_mono_ms();

	return (left <= 0 ? 0 : left > 3600000 ? 3600000 : (int)left);
}

/* Waits for fd to become readable or writable; AFF_OK, or
 * AFF_DEADLINE_EXCEEDED, or AFF_UNAVAILABLE. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rv;

	for (;;) {
		rv = poll(&p, 1, remaining(deadline));
		if (rv > 0)
			return (AFF_OK);
		if (rv == 0)
			return (AFF_DEADLINE_EXCEEDED);
		if (errno != EINTR)
			return (AFF_UNAVAILABLE);
	}
}

/* Writes all of iov (which it consumes). MSG_NOSIGNAL: a server gone
 * away is an error to return, not a SIGPIPE. */
static int
write_all(aff_sp_conn *c, struct iovec *iov, int n, int64_t deadline)
{
	while (n > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		int rv;

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return (AFF_UNAVAILABLE);
			if ((rv = wait_fd(c->fd, POLLOUT, deadline)) != AFF_OK)
				return (rv);
			continue;
		}
		c->sent += (size_t)w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return (AFF_OK);
}

/* Reads exactly len bytes, first from what was read ahead. A short read
 * refills the read-ahead buffer with whatever the socket holds; a long
 * one (a body larger than the buffer) goes straight to buf. When wait is
 * set the socket is polled before it is read: after a request the reply
 * is never there yet, and a read that would fail with EAGAIN is a system
 * call for nothing. */
static int
read_all(aff_sp_conn *c, void *buf, size_t len, int wait, int64_t deadline)
{
	uint8_t *out = buf;
	size_t off = 0, n;

	while (off < len) {
		ssize_t r;
		int rv;

		if (c->rpos < c->rend) {
			n = c->rend - c->rpos;
			if (n > len - off)
				n = len - off;
			memcpy(out + off, c->rbuf + c->rpos, n);
			c->rpos += n;
			off += n;
			continue;
		}
		if (wait && (rv = wait_fd(c->fd, POLLIN, deadline)) != AFF_OK)
			return (rv);
		wait = 0;
		if (len - off >= sizeof(c->rbuf))
			r = read(c->fd, out + off, len - off);
		else if ((r = read(c->fd, c->rbuf, sizeof(c->rbuf))) > 0) {
			c->rpos = 0;
			c->rend = (size_t)r;
			continue;
		}
		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		if (r == 0)
			return (AFF_UNAVAILABLE);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return (AFF_UNAVAILABLE);
		wait = 1;
	}
	return (AFF_OK);
}

int
aff_sp_addr(const char *url, int passive, struct sockaddr_storage *ss,
    unsigned *len, int *ipc)
{
	memset(ss, 0, sizeof(*ss));
	if (strncmp(url, "ipc://", 6) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;
		if (strlen(url + 6) == 0 || strlen(url + 6) >= sizeof(sun->sun_path))
			return (AFF_INVALID_ARGUMENT);
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, url + 6);
		*len = sizeof(*sun);
		*ipc = 1;
	} else if (strncmp(url, "tcp://", 6) == 0) {
		struct addrinfo hints, *ai;
		char host[256];
		const char *hp = url + 6, *colon = strrchr(hp, ':');
		size_t hl;
		int any;

		if (colon == NULL || colon[1] == '\0')
			return (AFF_INVALID_ARGUMENT);
		hl = (size_t)(colon - hp);
		if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') {
			hp++;
			hl -= 2;
		}
		if (hl >= sizeof(host))
			return (AFF_INVALID_ARGUMENT);
		memcpy(host, hp, hl);
		host[hl] = '\0';
		any = hl == 0 || strcmp(host, "*") == 0;
		if (any && !passive)
			return (AFF_INVALID_ARGUMENT);
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = passive ? AI_PASSIVE | AI_NUMERICSERV : 0;
		if (getaddrinfo(any ? NULL : host, colon + 1, &hints, &ai) != 0)
			return (AFF_INVALID_ARGUMENT);
		memcpy(ss, ai->ai_addr, ai->ai_addrlen);
		*len = (unsigned)ai->ai_addrlen;
		freeaddrinfo(ai);
		*ipc = 0;
	} else
		return (AFF_INVALID_ARGUMENT);
	return (AFF_OK);
}

/* A non-blocking socket connected to url, or an error code. */
static int
connect_url(const char *url, int64_t deadline, int *fdp, int *ipc)
{
	struct sockaddr_storage ss;
	unsigned sl;
	int fd, rv, one = 1, err = 0;
	socklen_t el = sizeof(err);

	if ((rv = aff_sp_addr(url, 0, &ss, &sl, ipc)) != AFF_OK)
		return (rv);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return (AFF_UNAVAILABLE);
	if (!*ipc)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			close(fd);
			return (AFF_UNAVAILABLE);
		}
		if ((rv = wait_fd(fd, POLLOUT, deadline)) != AFF_OK ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
		    err != 0) {
			close(fd);
			return (rv != AFF_OK ? rv : AFF_UNAVAILABLE);
		}
	}
	*fdp = fd;
	return (AFF_OK);
}

int
aff_sp_dial(const char *url, int64_t deadline, aff_sp_conn **cp)
{
	static const uint8_t want[8] = { 0, 'S', 'P', 0, 0, SP_PROTO_REP, 0, 0 };
	uint8_t hello[8] = { 0, 'S', 'P', 0, 0, SP_PROTO_REQ, 0, 0 }, peer[8];
	struct iovec iov = { hello, sizeof(hello) };
	aff_sp_conn *c;
	int rv;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	if ((rv = connect_url(url, deadline, &c->fd, &c->ipc)) != AFF_OK) {
		free(c);
		return (rv);
	}
	if ((rv = write_all(c, &iov, 1, deadline)) != AFF_OK ||
	    (rv = read_all(c, peer, sizeof(peer), 1, deadline)) != AFF_OK ||
	    memcmp(peer, want, sizeof(want)) != 0) {
		aff_sp_close(c);
		return (rv != AFF_OK ? rv : AFF_UNAVAILABLE);
	}
	if (getrandom(&c->next, sizeof(c->next), GRND_NONBLOCK) != sizeof(c->next))
		c->next = (uint32_t)aff_mono_ms();
	*cp = c;
	return (AFF_OK);
}

void
aff_sp_put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

uint64_t
aff_sp_get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return (v);
}

int
aff_sp_call(aff_sp_conn *c, const void *req, size_t len, int64_t deadline,
    size_t max_reply, void **rep, size_t *rlen)
{
	uint8_t hdr[13], in[13];
	size_t hl = c->ipc ? 9 : 8;
	uint32_t id = (c->next++ | 0x80000000u);
	struct iovec iov[2];
	uint64_t mlen;
	uint8_t *body;
	int rv;

	*rep = NULL;
	*rlen = 0;
	c->sent = 0;
	hdr[0] = 1; /* ipc: message type 1; tcp: overwritten below */
	aff_sp_put_be(hdr + hl - 8, len + 4, 8);
	aff_sp_put_be(hdr + hl, id, 4);
	iov[0] = (struct iovec){ hdr, hl + 4 };
	iov[1] = (struct iovec){ (void *)req, len };
	if ((rv = write_all(c, iov, 2, deadline)) != AFF_OK)
		return (rv);
	for (;;) {
		/* Each reply: [type] length, request id, body. A reply to an
		 * earlier request (never expected: a call that fails closes
		 * the connection) is read and dropped. */
		if ((rv = read_all(c, in, hl + 4, 1, deadline)) != AFF_OK)
			return (rv);
		if (c->ipc && in[0] != 1)
			return (AFF_INTERNAL);
		mlen = aff_sp_get_be(in + hl - 8, 8);
		if (mlen < 4)
			return (AFF_INTERNAL);
		mlen -= 4;
		if (mlen > max_reply)
			return (AFF_RESOURCE_EXHAUSTED);
		if ((body = malloc(mlen > 0 ? (size_t)mlen : 1)) == NULL)
			return (AFF_RESOURCE_EXHAUSTED);
		if ((rv = read_all(c, body, (size_t)mlen, 0, deadline)) !=
		    AFF_OK) {
			free(body);
			return (rv);
		}
		if ((uint32_t)aff_sp_get_be(in + hl, 4) == id) {
			*rep = body;
			*rlen = (size_t)mlen;
			return (AFF_OK);
		}
		free(body);
	}
}

size_t
aff_sp_sent(const aff_sp_conn *c)
{
	return (c->sent);
}

int
aff_sp_reusable(aff_sp_conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN | POLLRDHUP };
	char b;

	/* Bytes read ahead that no call consumed: the peer sent more than
	 * the replies asked for. */
	if (c->rpos < c->rend)
		return (0);
	if (poll(&p, 1, 0) == 0)
		return (1);
	if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL))
		return (0);
	/* Readable between calls: the end of the stream, or bytes no
	 * request asked for; either way the connection is done. */
	return (recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK));
}

void
aff_sp_close(aff_sp_conn *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c);
}
