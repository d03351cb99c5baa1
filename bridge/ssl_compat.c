/*
 * ssl_compat.c - libaffiliate_sslcompat.so, a shared library whose SONAME
 * is "libssl.so", so that Debian's civetweb 1.15 can use OpenSSL 3.
 *
 * That civetweb is built to load OpenSSL at run time: dlopen("libssl.so")
 * and dlsym() of the OpenSSL 1.1 names. OpenSSL 3 no longer exports one of
 * them, SSL_get_peer_certificate (a macro for SSL_get1_peer_certificate
 * now), so civetweb's TLS never starts ("load_tls_dll: libssl.so: cannot
 * find SSL_get_peer_certificate"). The bridge dlopen()s this library
 * before civetweb starts (tls.c); the dynamic loader then answers
 * civetweb's dlopen("libssl.so") with it, by its SONAME, and dlsym()
 * finds every other name in its dependency, the real libssl.so.3.
 */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

X509 *SSL_get_peer_certificate(const SSL *s);

/* A new reference, as in OpenSSL 1.1 (civetweb X509_free()s it). */
X509 *
SSL_get_peer_certificate(const SSL *s)
{
	return (SSL_get1_peer_certificate(s));
}
