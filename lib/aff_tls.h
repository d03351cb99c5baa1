/*
 * aff_tls.h - NNG's tls+tcp:// transport (Debian's NNG is built with
 * mbedTLS) with certificates on both sides: the listener proves itself
 * with its certificate and requires a client certificate signed by the
 * CA; a dialer proves itself with its client certificate and checks the
 * listener's against the CA. So a peer without a certificate from that
 * CA cannot even connect: no job, no result, no request from it is read.
 */
#ifndef AFF_TLS_H
#define AFF_TLS_H

#include <nng/nng.h>

struct aff_tls_files {
	const char *cert; /* PEM certificate (chain) of this side */
	const char *key;  /* PEM private key of cert (unencrypted) */
	const char *ca;   /* PEM CA that signs the other side's certificate */
};

/* Whether url is a tls+tcp:// URL (those need files; others take none). */
int aff_tls_url(const char *url);

/*
 * Listens on url (with the TLS files when it is tls+tcp://) or dials it
 * (NNG_FLAG_NONBLOCK: it keeps redialling). AFF_OK; AFF_INVALID_ARGUMENT
 * for a bad URL, tls+tcp:// without all three files, files NNG cannot
 * use, or files given for another scheme; AFF_UNAVAILABLE when the
 * address cannot be bound. Says why with aff_error, naming who.
 */
int aff_tls_listen(nng_socket s, const char *url, const struct aff_tls_files *f,
    const char *who);
int aff_tls_dial(nng_socket s, const char *url, const struct aff_tls_files *f,
    const char *who);

/*
 * aff_tls_dial with the dial's flags: 0 waits until the connection (and,
 * on tls+tcp://, the handshake with both certificates) is made or fails,
 * which then is AFF_UNAVAILABLE; NNG_FLAG_NONBLOCK is aff_tls_dial.
 */
int aff_tls_dial_flags(nng_socket s, const char *url,
    const struct aff_tls_files *f, const char *who, int flags);

#endif /* AFF_TLS_H */
