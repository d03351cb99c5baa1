/* aff_listen_watch.c - see aff_listen_watch.h. */
#include "aff_listen_watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"

/* How long a probe waits for the SP header, then for its pipe. */
#define PROBE_WAIT_MS 1000

struct watched {
	aff_listen_watch *w;
	nng_socket sock;
	nng_listener l;
	const char *url;
	const struct aff_tls_files *tls;
	int peer;              /* the SP protocol a peer of sock speaks */
	nng_pipe_cb cb;        /* the caller's */
	void *arg;
	atomic_int probing;    /* a probe is connecting */
	atomic_uint probe_pipe; /* its pipe's id, once ADD_PRE came */
	int silent;            /* probes in a row that made no pipe */
};

struct aff_listen_watch {
	const char *who;
	struct watched ls[AFF_LISTEN_WATCH_MAX];
	int n;
	pthread_t thread;
	int started;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	int stop;
};

int
aff_listen_watch_new(aff_listen_watch **wp, const char *who)
{
	aff_listen_watch *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	w->who = who;
	pthread_mutex_init(&w->mtx, NULL);
	aff_cond_init_monotonic(&w->cv);
	*wp = w;
	return (AFF_OK);
}

/* The socket's pipe events: a probe's own are kept from the caller. */
static void
watched_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct watched *wl = arg;
	unsigned id = (unsigned)nng_pipe_id(p), zero = 0;
	uint64_t pid = 0;

	/* The probe's: while it connects, from this process (a worker
	 * connecting then is from another). */
	if (ev == NNG_PIPE_EV_ADD_PRE && atomic_load(&wl->probing) &&
	    nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid) == 0 &&
	    pid == (uint64_t)getpid() &&
	    atomic_compare_exchange_strong(&wl->probe_pipe, &zero, id))
		return;
	if (ev == NNG_PIPE_EV_REM_POST && id != 0 &&
	    atomic_compare_exchange_strong(&wl->probe_pipe, &id, 0))
		return;
	if (wl->cb != NULL)
		wl->cb(p, ev, wl->arg);
}

int
aff_listen_watched(aff_listen_watch *w, nng_socket s, const char *url,
    const struct aff_tls_files *tls, nng_pipe_cb cb, void *arg)
{
	struct watched *wl;

	if (strncmp(url, "ipc://", 6) != 0) {
		if (cb != NULL) {
			nng_pipe_notify(s, NNG_PIPE_EV_ADD_PRE, cb, arg);
			nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, cb, arg);
		}
		return (aff_tls_listen(s, url, tls, w->who, NULL));
	}
	if (w->n == AFF_LISTEN_WATCH_MAX)
		return (AFF_INTERNAL); /* a bug in the caller */
	wl = &w->ls[w->n];
	*wl = (struct watched){ .w = w, .sock = s, .url = url, .tls = tls,
		.cb = cb, .arg = arg };
	if (nng_socket_get_int(s, NNG_OPT_PEER, &wl->peer) != 0)
		return (AFF_INTERNAL);
	nng_pipe_notify(s, NNG_PIPE_EV_ADD_PRE, watched_pipe_cb, wl);
	nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, watched_pipe_cb, wl);
	w->n++;
	return (aff_tls_listen(s, url, tls, w->who, &wl->l));
}

enum probe_result { PROBE_ALIVE, PROBE_SILENT, PROBE_GONE, PROBE_UNSURE };

/*
 * Connects to wl's address as a peer, exchanges SP headers and waits for
 * the socket's pipe. Silent: the headers came and no pipe. Gone: the
 * address refuses connections, or its file is gone. Unsure: anything else
 * (a full backlog, a slow server), left for the next probe.
 */
static enum probe_result
probe(struct watched *wl, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { PROBE_WAIT_MS / 1000, (PROBE_WAIT_MS % 1000) * 1000 };
	uint8_t hdr[8] = { 0, 'S', 'P', 0, (uint8_t)(wl->peer >> 8),
		(uint8_t)wl->peer, 0, 0 };
	uint8_t got[8];
	enum probe_result r = PROBE_UNSURE;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", wl->url + 6);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (PROBE_UNSURE);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	atomic_store(&wl->probe_pipe, 0);
	atomic_store(&wl->probing, 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (errno == ECONNREFUSED || errno == ENOENT) {
			snprintf(why, whylen, "its address %s",
			    errno == ENOENT ? "is gone" : "refuses connections");
			r = PROBE_GONE;
		}
	} else if (send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL) == sizeof(hdr) &&
	    recv(fd, got, sizeof(got), MSG_WAITALL) == sizeof(got) &&
	    memcmp(got, hdr, 4) == 0) {
		r = PROBE_SILENT;
		for (int waited = 0; waited < PROBE_WAIT_MS; waited += 5) {
			if (atomic_load(&wl->probe_pipe) != 0) {
				r = PROBE_ALIVE;
				break;
			}
			usleep(5000);
		}
		snprintf(why, whylen, "it answers the SP header but makes no "
		                      "connection of it");
	}
	atomic_store(&wl->probing, 0);
	close(fd);
	return (r);
}

/* Closes wl's listener and listens again on its address. */
static void
relisten(struct watched *wl, const char *why)
{
	int rv;

	aff_warn("%s: NNG stopped accepting on %s (%s); listening again",
	    wl->w->who, wl->url, why);
	nng_listener_close(wl->l);
	if ((rv = aff_tls_listen(wl->sock, wl->url, wl->tls, wl->w->who,
	         &wl->l)) != AFF_OK)
		aff_error("%s: cannot listen on %s again (%s): the next probe "
		          "tries again",
		    wl->w->who, wl->url, aff_strerror(rv));
}

static void *
watch_main(void *arg)
{
	aff_listen_watch *w = arg;
	struct timespec ts;
	char why[96];

	pthread_mutex_lock(&w->mtx);
	for (;;) {
		aff_mono_deadline(&ts, AFF_LISTEN_WATCH_MS);
		while (!w->stop &&
		    pthread_cond_timedwait(&w->cv, &w->mtx, &ts) != ETIMEDOUT)
			;
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->mtx);
		for (int i = 0; i < w->n; i++) {
			struct watched *wl = &w->ls[i];
			enum probe_result r = probe(wl, why, sizeof(why));
			/* Silent twice in a row: not a server too busy to make
			 * the pipe within PROBE_WAIT_MS once. */
			wl->silent = r == PROBE_SILENT ? wl->silent + 1 : 0;
			if (r == PROBE_GONE || wl->silent == 2) {
				relisten(wl, why);
				wl->silent = 0;
			}
		}
		pthread_mutex_lock(&w->mtx);
	}
	pthread_mutex_unlock(&w->mtx);
	return (NULL);
}

int
aff_listen_watch_start(aff_listen_watch *w)
{
	if (w->n == 0)
		return (AFF_OK);
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0)
		return (AFF_RESOURCE_EXHAUSTED);
	pthread_setname_np(w->thread, "aff:listen-watch");
	w->started = 1;
	return (AFF_OK);
}

void
aff_listen_watch_stop(aff_listen_watch *w)
{
	if (w == NULL || !w->started)
		return;
	pthread_mutex_lock(&w->mtx);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mtx);
	pthread_join(w->thread, NULL);
	w->started = 0;
}

void
aff_listen_watch_free(aff_listen_watch *w)
{
	if (w == NULL)
		return;
	aff_listen_watch_stop(w);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mtx);
	free(w);
}
