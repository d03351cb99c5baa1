/*
 * rpc_sp_listen.c - the REP side of NNG's SP protocol over plain sockets,
 * for tcp:// and ipc:// (tls+tcp:// stays on NNG).
 *
 * Why: on the durable webhook path NNG cost each request about seven
 * system calls, two context switches and 36 us of its own threads (a
 * poller that reads, then a task thread that runs the receive callback,
 * which only wakes a handler thread; after the reply a task thread again
 * to re-arm the context). Here one thread reads every connection (epoll)
 * and hands each request straight to the handler threads; a reply is
 * written by whoever gives it (a handler, or the order writer's
 * answerers), with one sendmsg, and only what the socket does not take
 * at once waits for the poller. The bytes on the wire are NNG's: REQ
 * clients (NNG's own, the bridge's aff_sp.c) cannot tell.
 *
 * The wire, as NNG 1.5.2 speaks it: an 8-byte greeting each way ("\0SP\0",
 * the protocol number big-endian, two zero bytes: a REQ peer is 0x30, we
 * are REP 0x31); then messages, each a 64-bit big-endian length (ipc:
 * after a type byte of 1) and that many bytes. A request's bytes start
 * with its backtrace: 32-bit words up to and including the one with the
 * high bit set (the request id; a device adds a word per hop). The reply
 * is the same backtrace and the reply's body. As NNG's REP does: a
 * request larger than max_msg, a bad greeting or a request too short for
 * its backtrace closes the connection; one with more than 8 hops is
 * dropped.
 *
 * Lifetimes: a connection is freed when the poller has closed it and no
 * request of it is still in the server (refs). Its descriptor is closed
 * by the poller under the connection's lock, after marking it closed, so a
 * reply never writes to a descriptor that was closed and reused.
 */
#include "rpc_server_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_sp.h"
#include "aff_util.h"

#define SP_PROTO_REQ 0x30
#define SP_PROTO_REP 0x31
/* Replies waiting for a slow reader, past which its requests are not
 * read (the rest of the server goes on). */
#define SP_OUT_MAX (4u << 20)
#define SP_READ_MIN 4096

struct sp_conn {
	struct sp_listener *l;
	pthread_mutex_t mtx;     /* fd's writes, out, closed */
	int fd;
	int ipc;
	int greeted;             /* the peer's greeting was read */
	int closed;              /* the poller closed fd */
	int reading;             /* EPOLLIN is asked for */
	int refs;                /* the poller's, and one per request (l->mtx) */
	char peer[48];
	/* Bytes read, not yet a whole message: in[0..in_len). */
	uint8_t *in;
	size_t in_len, in_cap;
	/* Reply bytes the socket did not take yet: out[out_off..out_len). */
	uint8_t *out;
	size_t out_off, out_len, out_cap;
	struct sp_conn *prev, *next; /* l->conns */
};

struct sp_listener {
	rpc_server *srv;
	int lfd, ep, evfd;
	int ipc;
	char path[108];          /* ipc: the socket file, removed at close */
	size_t max_msg;
	int max_slots;
	pthread_t thread;
	int started;
	pthread_mutex_t mtx;     /* conns, refs, in_flight, stop */
	struct sp_conn *conns;
	int in_flight;           /* requests in the server */
	int starved;             /* a connection waits for in_flight room */
	int stop;
};

static void
conn_free(struct sp_conn *c)
{
	pthread_mutex_destroy(&c->mtx);
	free(c->in);
	free(c->out);
	free(c);
}

/* Drops one reference (l->mtx held); returns the connection to free when
 * it was the last, else NULL. */
static struct sp_conn *
conn_unref_locked(struct sp_conn *c)
{
	struct sp_listener *l = c->l;

	if (--c->refs > 0)
		return (NULL);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	return (c);
}

/* Asks epoll for what c needs now: input unless it is paused, output
 * while replies wait. c->mtx held. */
static void
conn_arm(struct sp_conn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	if (c->closed)
		return;
	ev.events = (c->reading ? EPOLLIN | EPOLLRDHUP : 0) |
	    (c->out_len > c->out_off ? EPOLLOUT : 0);
	(void)epoll_ctl(c->l->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Closes c's descriptor (the poller's thread only) and drops the
 * poller's reference. */
static void
conn_close(struct sp_conn *c)
{
	struct sp_listener *l = c->l;
	struct sp_conn *dead;

	pthread_mutex_lock(&c->mtx);
	if (!c->closed) {
		(void)epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->closed = 1;
	}
	pthread_mutex_unlock(&c->mtx);
	pthread_mutex_lock(&l->mtx);
	dead = conn_unref_locked(c);
	pthread_mutex_unlock(&l->mtx);
	if (dead != NULL)
		conn_free(dead);
}

/* Appends n bytes to c's output (c->mtx held); -1 out of memory. */
static int
out_append(struct sp_conn *c, const void *p, size_t n)
{
	if (n == 0)
		return (0); /* c->out may still be NULL: no memcpy */
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		uint8_t *o;
		while (cap < c->out_len + n)
			cap *= 2;
		if ((o = realloc(c->out, cap)) == NULL)
			return (-1);
		c->out = o;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	return (0);
}

/* Writes what waits in c->out (c->mtx held); -1 when the connection
 * failed. */
static int
out_flush(struct sp_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off,
		    c->out_len - c->out_off, MSG_NOSIGNAL);
		if (w > 0) {
			c->out_off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return (0);
		return (-1);
	}
	c->out_off = c->out_len = 0;
	return (0);
}

/*
 * Writes iov (what is left of it after the socket takes what it will)
 * behind any reply already waiting. c->mtx held. A connection that
 * fails is shut down: the poller sees it and closes it.
 */
static void
conn_write(struct sp_conn *c, struct iovec *iov, int n)
{
	ssize_t w = 0;

	if (c->out_len == c->out_off) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		do
			w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			(void)shutdown(c->fd, SHUT_RDWR);
			return;
		}
		if (w < 0)
			w = 0;
	}
	for (int i = 0; i < n; i++) {
		size_t skip = (size_t)w < iov[i].iov_len ? (size_t)w
		                                          : iov[i].iov_len;
		w -= (ssize_t)skip;
		if (out_append(c, (uint8_t *)iov[i].iov_base + skip,
		        iov[i].iov_len - skip) != 0) {
			(void)shutdown(c->fd, SHUT_RDWR);
			return;
		}
	}
	if (c->out_len > c->out_off) {
		/* A reader this slow stops being read until it catches up. */
		if (c->out_len - c->out_off > SP_OUT_MAX)
			c->reading = 0;
		conn_arm(c);
	}
}

void
sp_reply(struct rpc_slot *sl, nng_msg *reply)
{
	struct sp_conn *c = sl->conn, *dead;
	struct sp_listener *l = c->l;
	uint8_t hdr[9];
	size_t hl = c->ipc ? 9 : 8;
	int wake;

	if (reply != NULL) {
		struct iovec iov[3];

		hdr[0] = 1;
		aff_sp_put_be(hdr + hl - 8, sl->bt_len + nng_msg_len(reply), 8);
		iov[0] = (struct iovec){ hdr, hl };
		iov[1] = (struct iovec){ sl->bt, sl->bt_len };
		iov[2] = (struct iovec){ nng_msg_body(reply), nng_msg_len(reply) };
		pthread_mutex_lock(&c->mtx);
		if (!c->closed)
			conn_write(c, iov, 3);
		pthread_mutex_unlock(&c->mtx);
		nng_msg_free(reply);
	}
	pthread_mutex_lock(&l->mtx);
	l->in_flight--;
	/* A connection waits for room: the poller reads it again. */
	if ((wake = l->starved))
		l->starved = 0;
	dead = conn_unref_locked(c);
	pthread_mutex_unlock(&l->mtx);
	if (dead != NULL)
		conn_free(dead);
	if (wake) {
		uint64_t one = 1;
		(void)write(l->evfd, &one, sizeof(one));
	}
	free(sl);
}

void
sp_peer(const struct rpc_slot *sl, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", sl->conn->peer);
}

int
sp_unsent(struct sp_listener *l)
{
	int n = 0;

	pthread_mutex_lock(&l->mtx);
	for (struct sp_conn *c = l->conns; c != NULL; c = c->next) {
		pthread_mutex_lock(&c->mtx);
		n += !c->closed && c->out_len > c->out_off;
		pthread_mutex_unlock(&c->mtx);
	}
	pthread_mutex_unlock(&l->mtx);
	return (n);
}

/*
 * One whole message in c->in at off, of n bytes: its backtrace taken off
 * and the rest queued for the handlers. 0, or -1 to close the
 * connection.
 */
static int
conn_request(struct sp_conn *c, const uint8_t *p, size_t n)
{
	struct sp_listener *l = c->l;
	struct rpc_slot *sl;
	size_t bt = 0;
	int hops = 0;

	/* At most SP_MAX_HOPS words, the request id included (NNG's REP
	 * counts so against its ttl of 8); sl->bt holds that many. */
	for (;;) {
		if (++hops > SP_MAX_HOPS)
			return (0); /* dropped, as NNG's REP past its ttl */
		if (n - bt < 4)
			return (-1); /* garbage: NNG's REP closes the pipe */
		bt += 4;
		if (p[bt - 4] & 0x80u)
			break;
	}
	if ((sl = calloc(1, sizeof(*sl))) == NULL)
		return (0); /* dropped: the client's timeout answers it */
	if (nng_msg_alloc(&sl->req, n - bt) != 0) {
		free(sl);
		return (0);
	}
	if (n > bt)
		memcpy(nng_msg_body(sl->req), p + bt, n - bt);
	memcpy(sl->bt, p, bt);
	sl->bt_len = bt;
	sl->srv = l->srv;
	sl->conn = c;
	sl->received_ms = aff_mono_ms();
	pthread_mutex_lock(&l->mtx);
	c->refs++;
	l->in_flight++;
	pthread_mutex_unlock(&l->mtx);
	rpc_server_enqueue(l->srv, sl);
	return (0);
}

/*
 * Takes the whole messages out of c->in while the server has room for
 * them. 0 (a partial message may be left), or -1 to close.
 */
static int
conn_parse(struct sp_conn *c)
{
	struct sp_listener *l = c->l;
	size_t off = 0, hl = c->ipc ? 9 : 8;
	int rv = 0;

	if (!c->greeted) {
		static const uint8_t want[8] = { 0, 'S', 'P', 0, 0, SP_PROTO_REQ,
			0, 0 };

		if (c->in_len < 8)
			return (0);
		if (memcmp(c->in, want, 8) != 0)
			return (-1);
		c->greeted = 1;
		off = 8;
	}
	while (c->in_len - off >= hl) {
		uint64_t n;
		int full;

		if (c->ipc && c->in[off] != 1) {
			rv = -1;
			break;
		}
		n = aff_sp_get_be(c->in + off + hl - 8, 8);
		if (n > l->max_msg) {
			rv = -1;
			break;
		}
		if (c->in_len - off - hl < n) {
			/* Room for the whole message, so the next reads can
			 * complete it. */
			size_t need = hl + (size_t)n;
			if (need > c->in_cap - off && off == 0) {
				uint8_t *b = realloc(c->in, need);
				if (b == NULL) {
					rv = -1;
					break;
				}
				c->in = b;
				c->in_cap = need;
			}
			break;
		}
		pthread_mutex_lock(&l->mtx);
		full = l->in_flight >= l->max_slots;
		if (full)
			l->starved = 1;
		pthread_mutex_unlock(&l->mtx);
		if (full) {
			/* Read again when a reply frees room (sp_reply). */
			pthread_mutex_lock(&c->mtx);
			c->reading = 0;
			conn_arm(c);
			pthread_mutex_unlock(&c->mtx);
			break;
		}
		if (conn_request(c, c->in + off + hl, (size_t)n) != 0) {
			rv = -1;
			break;
		}
		off += hl + (size_t)n;
	}
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	return (rv);
}

/* Reads what c has; -1 when it is done (closed by the peer, failed, or
 * speaking garbage). */
static int
conn_read(struct sp_conn *c)
{
	for (;;) {
		size_t room;
		ssize_t r;
		int reading;

		if (c->in_cap - c->in_len < SP_READ_MIN) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 2 * SP_READ_MIN;
			uint8_t *b = realloc(c->in, cap);
			if (b == NULL)
				return (-1);
			c->in = b;
			c->in_cap = cap;
		}
		room = c->in_cap - c->in_len;
		r = read(c->fd, c->in + c->in_len, room);
		if (r == 0)
			return (-1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1);
		c->in_len += (size_t)r;
		if (conn_parse(c) != 0)
			return (-1);
		pthread_mutex_lock(&c->mtx);
		reading = c->reading;
		pthread_mutex_unlock(&c->mtx);
		/* Paused, or the socket had no more than that. */
		if (!reading || (size_t)r < room)
			return (0);
	}
}

static void
conn_accept(struct sp_listener *l)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct epoll_event ev;
		struct sp_conn *c;
		int fd, one = 1;

		fd = accept4(l->lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				aff_warn("rpc: accept: %s", strerror(errno));
			return;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		pthread_mutex_init(&c->mtx, NULL);
		c->l = l;
		c->fd = fd;
		c->ipc = l->ipc;
		c->reading = 1;
		c->refs = 1;
		if (ss.ss_family == AF_INET) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
			    c->peer, sizeof(c->peer));
		} else if (ss.ss_family == AF_INET6) {
			struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (IN6_IS_ADDR_V4MAPPED(a))
				inet_ntop(AF_INET, &a->s6_addr[12], c->peer,
				    sizeof(c->peer));
			else
				inet_ntop(AF_INET6, a, c->peer, sizeof(c->peer));
		} else
			snprintf(c->peer, sizeof(c->peer), "local");
		pthread_mutex_lock(&l->mtx);
		c->next = l->conns;
		if (l->conns != NULL)
			l->conns->prev = c;
		l->conns = c;
		pthread_mutex_unlock(&l->mtx);
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = c;
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			conn_close(c);
			continue;
		}
		/* Our greeting at once, as NNG sends its own: a peer may wait
		 * for it before it sends its own. */
		{
			static const uint8_t ours[8] = { 0, 'S', 'P', 0, 0,
				SP_PROTO_REP, 0, 0 };
			struct iovec iov = { (void *)ours, sizeof(ours) };
			pthread_mutex_lock(&c->mtx);
			conn_write(c, &iov, 1);
			pthread_mutex_unlock(&c->mtx);
		}
	}
}

/*
 * Reads c again when it is paused and its replies have caught up; what it
 * holds already is parsed first, since its peer may have nothing more to
 * send. The poller's thread only; -1 to close c.
 */
static int
conn_resume(struct sp_conn *c)
{
	int resume;

	pthread_mutex_lock(&c->mtx);
	resume = !c->closed && !c->reading &&
	    c->out_len - c->out_off <= SP_OUT_MAX;
	if (resume) {
		c->reading = 1;
		conn_arm(c);
	}
	pthread_mutex_unlock(&c->mtx);
	return (resume ? conn_parse(c) : 0);
}

/* A reply freed room: the connections paused for it are read again. */
static void
resume_starved(struct sp_listener *l)
{
	struct sp_conn **list = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&l->mtx);
	l->starved = 0;
	for (struct sp_conn *c = l->conns; c != NULL; c = c->next) {
		if (n == cap) {
			struct sp_conn **nl;
			cap = cap ? cap * 2 : 16;
			if ((nl = realloc(list, cap * sizeof(*list))) == NULL)
				break;
			list = nl;
		}
		c->refs++;
		list[n++] = c;
	}
	pthread_mutex_unlock(&l->mtx);
	for (size_t i = 0; i < n; i++) {
		struct sp_conn *c = list[i];

		if (conn_resume(c) != 0)
			conn_close(c);
		/* The reference taken for the walk. */
		pthread_mutex_lock(&l->mtx);
		c = conn_unref_locked(c);
		pthread_mutex_unlock(&l->mtx);
		if (c != NULL)
			conn_free(c);
	}
	free(list);
}

static void *
sp_main(void *arg)
{
	struct sp_listener *l = arg;
	struct epoll_event ev[64];

	for (;;) {
		int n = epoll_wait(l->ep, ev, 64, -1), stop, resume = 0;

		pthread_mutex_lock(&l->mtx);
		stop = l->stop;
		pthread_mutex_unlock(&l->mtx);
		if (stop)
			break;
		for (int i = 0; i < n; i++) {
			struct sp_conn *c = ev[i].data.ptr;

			if (c == NULL) {
				conn_accept(l);
				continue;
			}
			if (c == (struct sp_conn *)l) {
				uint64_t v;
				(void)read(l->evfd, &v, sizeof(v));
				/* After this batch: resuming may close a connection
				 * that a later event of the batch names. */
				resume = 1;
				continue;
			}
			if (ev[i].events & EPOLLOUT) {
				int bad;
				pthread_mutex_lock(&c->mtx);
				if (!(bad = out_flush(c) != 0))
					conn_arm(c);
				pthread_mutex_unlock(&c->mtx);
				/* Caught up: read again, what it holds first. */
				if (bad || conn_resume(c) != 0) {
					conn_close(c);
					continue;
				}
			}
			if ((ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP |
			                        EPOLLERR)) &&
			    conn_read(c) != 0)
				conn_close(c);
		}
		if (resume)
			resume_starved(l);
	}
	return (NULL);
}

/* The listening socket for url; AFF_OK or an error. */
static int
listen_url(struct sp_listener *l, const char *url)
{
	struct sockaddr_storage ss;
	unsigned sl;
	int fd, rv, one = 1;

	if ((rv = aff_sp_addr(url, 1, &ss, &sl, &l->ipc)) != AFF_OK)
		return (rv);
	if (l->ipc) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
		int probe;

		/* A socket file nobody listens on is a leftover (NNG removes
		 * it too); one that answers is another server's. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0) {
			if (connect(probe, (struct sockaddr *)sun, sl) != 0 &&
			    errno == ECONNREFUSED)
				(void)unlink(sun->sun_path);
			close(probe);
		}
		snprintf(l->path, sizeof(l->path), "%.*s",
		    (int)sizeof(l->path) - 1, sun->sun_path);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return (AFF_UNAVAILABLE);
	if (!l->ipc)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 128) != 0) {
		aff_error("rpc: cannot listen on %s: %s", url, strerror(errno));
		close(fd);
		l->path[0] = '\0'; /* not ours to remove */
		return (AFF_UNAVAILABLE);
	}
	l->lfd = fd;
	return (AFF_OK);
}

int
sp_listen_start(rpc_server *srv, const char *url, size_t max_msg,
    int max_slots, struct sp_listener **lp)
{
	struct sp_listener *l;
	struct epoll_event ev = { .events = EPOLLIN };
	int rv;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	pthread_mutex_init(&l->mtx, NULL);
	l->srv = srv;
	l->max_msg = max_msg;
	l->max_slots = max_slots;
	l->lfd = l->ep = l->evfd = -1;
	if ((rv = listen_url(l, url)) != AFF_OK)
		goto failed;
	rv = AFF_RESOURCE_EXHAUSTED;
	if ((l->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		goto failed;
	ev.data.ptr = NULL;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->lfd, &ev) != 0)
		goto failed;
	ev.data.ptr = l;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->evfd, &ev) != 0)
		goto failed;
	if (pthread_create(&l->thread, NULL, sp_main, l) != 0)
		goto failed;
	pthread_setname_np(l->thread, "aff:rpc-poll");
	l->started = 1;
	*lp = l;
	return (AFF_OK);
failed:
	sp_listen_free(l);
	return (rv);
}

void
sp_listen_close(struct sp_listener *l)
{
	uint64_t one = 1;

	if (l == NULL || !l->started)
		return;
	pthread_mutex_lock(&l->mtx);
	l->stop = 1;
	pthread_mutex_unlock(&l->mtx);
	(void)write(l->evfd, &one, sizeof(one));
	pthread_join(l->thread, NULL);
	l->started = 0;
	/* Every connection closed: the poller's references go, and those
	 * with no request left in the server with them. */
	for (;;) {
		struct sp_conn *c = NULL;

		pthread_mutex_lock(&l->mtx);
		for (struct sp_conn *k = l->conns; k != NULL; k = k->next) {
			pthread_mutex_lock(&k->mtx);
			if (!k->closed)
				c = k;
			pthread_mutex_unlock(&k->mtx);
			if (c != NULL)
				break;
		}
		pthread_mutex_unlock(&l->mtx);
		if (c == NULL)
			break;
		conn_close(c);
	}
	if (l->lfd >= 0) {
		close(l->lfd);
		l->lfd = -1;
	}
	if (l->path[0] != '\0')
		(void)unlink(l->path);
}

void
sp_listen_free(struct sp_listener *l)
{
	if (l == NULL)
		return;
	sp_listen_close(l);
	/* Connections still held by requests never answered. */
	while (l->conns != NULL) {
		struct sp_conn *c = l->conns;
		l->conns = c->next;
		conn_free(c);
	}
	if (l->lfd >= 0)
		close(l->lfd);
	if (l->ep >= 0)
		close(l->ep);
	if (l->evfd >= 0)
		close(l->evfd);
	pthread_mutex_destroy(&l->mtx);
	free(l);
}
