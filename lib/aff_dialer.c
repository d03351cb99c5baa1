/* aff_dialer.c - see aff_dialer.h. */
#include "aff_dialer.h"

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"

static void
dialer_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct aff_dialer *ad = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&ad->pipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST &&
	    atomic_fetch_sub(&ad->pipes, 1) == 1)
		atomic_store(&ad->down_since, aff_mono_ms());
}

/* Dials ad's URL on its socket with a new dialer: with the TLS files
 * (aff_tls_dial_flags, which says what fails), or plainly. */
static int
dialer_dial(struct aff_dialer *ad, int flags)
{
	int rv;

	if (ad->use_tls)
		return (aff_tls_dial_flags(
		    ad->sock, ad->url, &ad->tls, ad->who, flags, &ad->d));
	if ((rv = nng_dialer_create(&ad->d, ad->sock, ad->url)) != 0)
		return (aff_err_from_nng_endpoint(rv));
	if ((rv = nng_dialer_start(ad->d, flags)) != 0) {
		nng_dialer_close(ad->d);
		return (aff_err_from_nng_endpoint(rv));
	}
	return (AFF_OK);
}

int
aff_dialer_start(struct aff_dialer *ad, nng_socket s, const char *url,
    const struct aff_tls_files *tls, const char *who, int flags)
{
	static const struct aff_tls_files none = { NULL, NULL, NULL };

	ad->sock = s;
	ad->url = url;
	ad->use_tls = tls != NULL;
	ad->tls = tls != NULL ? *tls : none;
	ad->who = who;
	atomic_init(&ad->pipes, 0);
	atomic_init(&ad->down_since, aff_mono_ms());
	pthread_mutex_init(&ad->mtx, NULL);
	nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, dialer_pipe_cb, ad);
	nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, dialer_pipe_cb, ad);
	return (dialer_dial(ad, flags));
}

int
aff_dialer_pipes(const struct aff_dialer *ad)
{
	return (atomic_load(&ad->pipes));
}

int
aff_dialer_check(struct aff_dialer *ad, int64_t now_ms)
{
	int rv;

	if (atomic_load(&ad->pipes) > 0 ||
	    now_ms - atomic_load(&ad->down_since) < AFF_DIALER_STALE_MS ||
	    pthread_mutex_trylock(&ad->mtx) != 0)
		return (0);
	/* Another check may have just done it. */
	if (atomic_load(&ad->pipes) > 0 ||
	    now_ms - atomic_load(&ad->down_since) < AFF_DIALER_STALE_MS) {
		pthread_mutex_unlock(&ad->mtx);
		return (0);
	}
	atomic_store(&ad->down_since, now_ms);
	nng_dialer_close(ad->d);
	/* The URL and files were good at the start; a failure now is NNG's
	 * (out of memory): said, and tried again at the next check. */
	rv = dialer_dial(ad, NNG_FLAG_NONBLOCK);
	pthread_mutex_unlock(&ad->mtx);
	aff_debug("%s: no connection to %s for %d ms: dialing it again%s",
	    ad->who, ad->url, AFF_DIALER_STALE_MS,
	    rv == AFF_OK ? "" : " failed");
	return (rv == AFF_OK);
}

void
aff_dialer_fini(struct aff_dialer *ad)
{
	pthread_mutex_destroy(&ad->mtx);
}
