/* aff_tls.c - see aff_tls.h. */
#include "aff_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/supplemental/tls/tls.h>
#include <openssl/crypto.h>

#include "aff_err.h"
#include "aff_log.h"

int
aff_tls_url(const char *url)
{
	return (strncmp(url, "tls+tcp", 7) == 0);
}

static int
have(const char *s)
{
	return (s != NULL && s[0] != '\0');
}

/* The whole of a (small) PEM file as a string; NULL on error. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return (NULL);
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < (1 << 20) &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = calloc(1, (size_t)n + 1)) != NULL &&
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return (buf);
}

/* A TLS configuration for mode from f (all three files), or an error. */
static int
tls_config(nng_tls_mode mode, const struct aff_tls_files *f, const char *url,
    const char *who, nng_tls_config **out)
{
	nng_tls_config *c;
	char *cert = NULL, *key = NULL;
	const char *what;
	int rv;

	if (f == NULL || !have(f->cert) || !have(f->key) || !have(f->ca)) {
		aff_error("%s: %s needs a certificate, its key and the CA "
		          "(--tls-cert, --tls-key and --tls-ca: certificates on "
		          "both sides)",
		    who, url);
		return (AFF_INVALID_ARGUMENT);
	}
	if ((rv = nng_tls_config_alloc(&c, mode)) != 0) {
		aff_error("%s: TLS is not available in this NNG: %s", who,
		    nng_strerror(rv));
		return (AFF_INVALID_ARGUMENT);
	}
	what = f->ca;
	if ((rv = nng_tls_config_ca_file(c, f->ca)) == 0) {
		what = f->cert;
		cert = slurp(f->cert);
		key = slurp(f->key);
		if (cert == NULL || key == NULL)
			rv = NNG_ENOENT;
		else
			rv = nng_tls_config_own_cert(c, cert, key, NULL);
	}
	/* Both sides prove who they are. */
	if (rv == 0)
		rv = nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED);
	if (key != NULL) {
		OPENSSL_cleanse(key, strlen(key));
		free(key);
	}
	free(cert);
	if (rv != 0) {
		aff_error("%s: cannot use %s (or its key): %s", who, what,
		    nng_strerror(rv));
		nng_tls_config_free(c);
		return (AFF_INVALID_ARGUMENT);
	}
	*out = c;
	return (AFF_OK);
}

static int
check_files(const char *url, const struct aff_tls_files *f, const char *who)
{
	if (aff_tls_url(url))
		return (AFF_OK);
	if (f != NULL && (have(f->cert) || have(f->key) || have(f->ca))) {
		aff_error("%s: TLS files are given but %s is not tls+tcp://", who,
		    url);
		return (AFF_INVALID_ARGUMENT);
	}
	return (AFF_OK);
}

int
aff_tls_listen(nng_socket s, const char *url, const struct aff_tls_files *f,
    const char *who)
{
	nng_listener l;
	nng_tls_config *c = NULL;
	int rv;

	if ((rv = check_files(url, f, who)) != AFF_OK)
		return (rv);
	if ((rv = nng_listener_create(&l, s, url)) != 0) {
		aff_error("%s: cannot listen on %s: %s", who, url, nng_strerror(rv));
		return (AFF_INVALID_ARGUMENT);
	}
	if (aff_tls_url(url)) {
		if ((rv = tls_config(NNG_TLS_MODE_SERVER, f, url, who, &c)) != AFF_OK) {
			nng_listener_close(l);
			return (rv);
		}
		rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, c);
		nng_tls_config_free(c); /* the listener holds its own reference */
		if (rv != 0) {
			aff_error("%s: %s: %s", who, url, nng_strerror(rv));
			nng_listener_close(l);
			return (AFF_INVALID_ARGUMENT);
		}
	}
	if ((rv = nng_listener_start(l, 0)) != 0) {
		aff_error("%s: cannot listen on %s: %s", who, url, nng_strerror(rv));
		nng_listener_close(l);
		return (aff_err_from_nng_endpoint(rv));
	}
	return (AFF_OK);
}

int
aff_tls_dial(nng_socket s, const char *url, const struct aff_tls_files *f,
    const char *who)
{
	return (aff_tls_dial_flags(s, url, f, who, NNG_FLAG_NONBLOCK));
}

int
aff_tls_dial_flags(nng_socket s, const char *url,
    const struct aff_tls_files *f, const char *who, int flags)
{
	nng_dialer d;
	nng_tls_config *c = NULL;
	int rv;

	if ((rv = check_files(url, f, who)) != AFF_OK)
		return (rv);
	if ((rv = nng_dialer_create(&d, s, url)) != 0) {
		aff_error("%s: cannot use %s: %s", who, url, nng_strerror(rv));
		return (AFF_INVALID_ARGUMENT);
	}
	if (aff_tls_url(url)) {
		if ((rv = tls_config(NNG_TLS_MODE_CLIENT, f, url, who, &c)) != AFF_OK) {
			nng_dialer_close(d);
			return (rv);
		}
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, c);
		nng_tls_config_free(c);
		if (rv != 0) {
			aff_error("%s: %s: %s", who, url, nng_strerror(rv));
			nng_dialer_close(d);
			return (AFF_INVALID_ARGUMENT);
		}
	}
	if ((rv = nng_dialer_start(d, flags)) != 0) {
		aff_error("%s: cannot use %s: %s", who, url, nng_strerror(rv));
		nng_dialer_close(d);
		/* A waiting dial fails when nobody answers, or when the peer
		 * refuses this side's certificate (or shows none from the CA). */
		return ((flags & NNG_FLAG_NONBLOCK) != 0
		        ? AFF_INVALID_ARGUMENT
		        : aff_err_from_nng_endpoint(rv));
	}
	return (AFF_OK);
}
