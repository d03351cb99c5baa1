/*
 * tls.h - the bridge serving HTTPS itself, with civetweb's OpenSSL
 * support: the listening port gets civetweb's "s" suffix and civetweb's
 * init_ssl callback hands us its SSL_CTX, which we fill from a
 * certificate chain file and a separate private key file (civetweb's own
 * ssl_certificate option wants both in one file). TLS 1.2 is the least
 * accepted.
 *
 * Debian's civetweb 1.15 loads OpenSSL at run time by the name
 * "libssl.so" and the OpenSSL 1.1 function names, one of which OpenSSL 3
 * no longer has: tls_civetweb_compat() makes that load find OpenSSL 3
 * (see ssl_compat.c).
 */
#ifndef TLS_H
#define TLS_H

#include <stddef.h>

/*
 * Loads cert (PEM: the certificate, then any intermediates) and key (PEM;
 * NULL or "" when cert holds the key too) into ssl_ctx, an OpenSSL
 * SSL_CTX, and sets TLS 1.2 as the least version. AFF_OK, or
 * AFF_INVALID_ARGUMENT with a sentence in err (a file that does not read,
 * a key that is not the certificate's).
 */
int tls_ctx_setup(void *ssl_ctx, const char *cert, const char *key,
    char *err, size_t errlen);

/*
 * Loads libaffiliate_sslcompat.so (from beside the running program, else
 * from the build tree) so that civetweb's TLS can start; call before
 * mg_start(). AFF_OK, or AFF_UNAVAILABLE with a sentence in err.
 */
int tls_civetweb_compat(char *err, size_t errlen);

#endif /* TLS_H */
