/* tls.c - see tls.h. */
#include "tls.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "aff_err.h"

/* OpenSSL's last error as text, after what. */
static int
tls_fail(const char *what, const char *path, char *err, size_t errlen)
{
	char ebuf[256];
	unsigned long e = ERR_get_error();

	if (e != 0)
		ERR_error_string_n(e, ebuf, sizeof(ebuf));
	else
		snprintf(ebuf, sizeof(ebuf), "no detail");
	ERR_clear_error();
	snprintf(err, errlen, "%s %s: %s", what, path, ebuf);
	return (AFF_INVALID_ARGUMENT);
}

int
tls_ctx_setup(void *ssl_ctx, const char *cert, const char *key, char *err,
    size_t errlen)
{
	SSL_CTX *ctx = ssl_ctx;

	if (key == NULL || key[0] == '\0')
		key = cert;
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return (tls_fail("cannot use the certificate", cert, err, errlen));
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		return (tls_fail("cannot use the private key", key, err, errlen));
	if (SSL_CTX_check_private_key(ctx) != 1)
		return (tls_fail("the private key is not the certificate's:", key,
		    err, errlen));
	/* civetweb's ssl_protocol_version 4 says the same with option bits;
	 * this says it to OpenSSL directly. */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return (tls_fail("cannot require TLS 1.2 for", cert, err, errlen));
	return (AFF_OK);
}

#define SSLCOMPAT_NAME "libaffiliate_sslcompat.so"

int
tls_civetweb_compat(char *err, size_t errlen)
{
	static void *handle; /* kept for the life of the process */
	char path[PATH_MAX];
	ssize_t n;
	char *slash;

	if (handle != NULL)
		return (AFF_OK);
	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n > 0) {
		path[n] = '\0';
		if ((slash = strrchr(path, '/')) != NULL &&
		    (size_t)(slash + 1 - path) + sizeof(SSLCOMPAT_NAME) <=
		        sizeof(path)) {
			memcpy(slash + 1, SSLCOMPAT_NAME, sizeof(SSLCOMPAT_NAME));
			handle = dlopen(path, RTLD_NOW);
		}
	}
#ifdef AFFILIATE_SSLCOMPAT_PATH
	if (handle == NULL)
		handle = dlopen(AFFILIATE_SSLCOMPAT_PATH, RTLD_NOW);
#endif
	if (handle == NULL) {
		snprintf(err, errlen,
		    "cannot load %s (it belongs beside affiliate-bridge): civetweb "
		    "cannot use OpenSSL 3 without it",
		    SSLCOMPAT_NAME);
		return (AFF_UNAVAILABLE);
	}
	return (AFF_OK);
}
