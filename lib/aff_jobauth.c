/* aff_jobauth.c - see aff_jobauth.h. */
#include "aff_jobauth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"

/* The MAC of kind || body under secret, as 64 hex and a NUL into out. */
static int
report_mac(const char *secret, int kind, const uint8_t *body, size_t len,
    char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint8_t stack[512], *buf = stack;

	if (len + 1 > sizeof(stack) && (buf = malloc(len + 1)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	buf[0] = (uint8_t)kind;
	if (len > 0)
		memcpy(buf + 1, body, len);
	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), buf, len + 1, md,
	        &mdlen) == NULL ||
	    mdlen != 32) {
		if (buf != stack)
			free(buf);
		return (AFF_INTERNAL);
	}
	if (buf != stack)
		free(buf);
	aff_hex_encode(md, 32, out);
	OPENSSL_cleanse(md, sizeof(md));
	return (AFF_OK);
}

int
aff_job_report_pack(const char *secret, enum aff_job_report_kind kind,
    const uint8_t *body, size_t len, uint8_t **out, size_t *outlen)
{
	Affiliate__V1__JobReport r;
	char mac[65];
	int rv;

	/* Not the INIT macro: its {0} for the oneof's union warns. */
	affiliate__v1__job_report__init(&r);
	if ((rv = report_mac(secret, kind, body, len, mac)) != AFF_OK)
		return (rv);
	if (kind == AFF_JOB_REPORT_RESULT) {
		r.body_case = AFFILIATE__V1__JOB_REPORT__BODY_RESULT;
		r.result.data = (uint8_t *)body;
		r.result.len = len;
	} else {
		r.body_case = AFFILIATE__V1__JOB_REPORT__BODY_HEARTBEAT;
		r.heartbeat.data = (uint8_t *)body;
		r.heartbeat.len = len;
	}
	r.mac = mac;
	*outlen = affiliate__v1__job_report__get_packed_size(&r);
	if ((*out = malloc(*outlen)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__job_report__pack(&r, *out);
	return (AFF_OK);
}

int
aff_job_report_verify(const char *secret, const Affiliate__V1__JobReport *r)
{
	const ProtobufCBinaryData *body;
	char want[65];
	int kind, ok;

	switch (r->body_case) {
	case AFFILIATE__V1__JOB_REPORT__BODY_RESULT:
		kind = AFF_JOB_REPORT_RESULT;
		body = &r->result;
		break;
	case AFFILIATE__V1__JOB_REPORT__BODY_HEARTBEAT:
		kind = AFF_JOB_REPORT_HEARTBEAT;
		body = &r->heartbeat;
		break;
	default:
		return (AFF_UNAUTHENTICATED);
	}
	if (r->mac == NULL || strlen(r->mac) != 64 ||
	    report_mac(secret, kind, body->data, body->len, want) != AFF_OK)
		return (AFF_UNAUTHENTICATED);
	ok = CRYPTO_memcmp(want, r->mac, 64) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return (ok ? AFF_OK : AFF_UNAUTHENTICATED);
}

/* Reads the first line of path into out; AFF_OK, AFF_NOT_FOUND or
 * AFF_UNAVAILABLE. */
static int
secret_read(const char *path, char *out, size_t outlen)
{
	char buf[AFF_WORKER_SECRET_MAX + 3];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY)) < 0) {
		if (errno == ENOENT)
			return (AFF_NOT_FOUND);
		aff_error("jobs: cannot read %s: %s", path, strerror(errno));
		return (AFF_UNAVAILABLE);
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		aff_error("jobs: cannot read %s: %s", path, strerror(errno));
		return (AFF_UNAVAILABLE);
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	snprintf(out, outlen, "%s", buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	return (AFF_OK);
}

/*
 * Makes path with a new random secret (mode 0600) and puts it in out. The
 * secret is written to a file of this process's own and then linked to
 * path, so path appears whole or not at all: a worker that reads it while
 * the server makes it (both started together) found it empty and stopped.
 * link() never replaces: when another process made path meanwhile, its
 * secret is the one.
 */
static int
secret_make(const char *path, char *out, size_t outlen)
{
	unsigned char raw[32];
	char hex[65], tmp[1100];
	int fd = -1, rv = AFF_OK;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return (AFF_INTERNAL);
	aff_hex_encode(raw, sizeof(raw), hex);
	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		rv = AFF_INVALID_ARGUMENT;
		goto done;
	}
	(void)unlink(tmp); /* left by a process of this pid that died */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, hex, 64) != 64 || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0) {
		aff_error("jobs: cannot write %s: %s", tmp, strerror(errno));
		rv = AFF_UNAVAILABLE;
	} else if (link(tmp, path) == 0)
		snprintf(out, outlen, "%s", hex);
	else if (errno == EEXIST) /* made meanwhile: use that one */
		rv = secret_read(path, out, outlen);
	else {
		aff_error("jobs: cannot make %s: %s", path, strerror(errno));
		rv = AFF_UNAVAILABLE;
	}
	if (fd >= 0) {
		close(fd);
		(void)unlink(tmp);
	}
done:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(hex, sizeof(hex));
	return (rv);
}

int
aff_worker_secret_load(const char *env, const char *file, const char *dir,
    int create, char *out, size_t outlen, int *made)
{
	char path[1024];
	const char *from = path;
	size_t n;
	int rv;

	*made = 0;
	out[0] = '\0';
	if (env != NULL && *env != '\0') {
		snprintf(out, outlen, "%s", env);
		from = "AFFILIATE_WORKER_SECRET";
		rv = strlen(env) < outlen ? AFF_OK : AFF_INVALID_ARGUMENT;
	} else {
		if (file != NULL && *file != '\0')
			snprintf(path, sizeof(path), "%s", file);
		else if (snprintf(path, sizeof(path), "%s/worker_secret",
		             dir != NULL && *dir != '\0' ? dir : ".") >=
		    (int)sizeof(path))
			return (AFF_INVALID_ARGUMENT);
		rv = secret_read(path, out, outlen);
		if (rv == AFF_NOT_FOUND && create && (file == NULL || *file == '\0')) {
			if ((rv = secret_make(path, out, outlen)) == AFF_OK)
				*made = 1;
		}
		if (rv != AFF_OK)
			return (rv);
	}
	n = strlen(out);
	if (rv != AFF_OK || n < AFF_WORKER_SECRET_MIN || n > AFF_WORKER_SECRET_MAX) {
		aff_error("jobs: the worker secret (%s) must be %d to %d "
		          "characters",
		    from, AFF_WORKER_SECRET_MIN, AFF_WORKER_SECRET_MAX);
		OPENSSL_cleanse(out, outlen);
		out[0] = '\0';
		return (AFF_INVALID_ARGUMENT);
	}
	return (AFF_OK);
}
