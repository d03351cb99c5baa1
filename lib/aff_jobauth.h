/*
 * aff_jobauth.h - what workers push to the server is signed with a secret
 * the server and its workers share (the worker secret), so that a peer
 * that merely reaches the results address cannot approve or reject
 * applications nor keep leases alive.
 *
 * A JobReport carries its body (a JobResult or a JobHeartbeat) as the
 * bytes the worker packed, and the MAC covers exactly those bytes, with
 * one byte before them naming the body (0x01 result, 0x02 heartbeat, so
 * that one cannot pass for the other): the server verifies what was sent,
 * never a re-packed copy, so fields a newer worker adds verify too.
 *
 * The secret: AFFILIATE_WORKER_SECRET when set; else the server makes one
 * at its first start in DATA_DIR/worker_secret (mode 0600, 64 hex), which
 * workers on the same host read from there (--data-dir) and workers on
 * other hosts from a copy (--worker-secret-file).
 */
#ifndef AFF_JOBAUTH_H
#define AFF_JOBAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "affiliate/v1/jobs.pb-c.h"

#define AFF_WORKER_SECRET_MIN 16 /* characters */
#define AFF_WORKER_SECRET_MAX 255

enum aff_job_report_kind {
	AFF_JOB_REPORT_RESULT = 1,
	AFF_JOB_REPORT_HEARTBEAT = 2,
};

/*
 * Packs a JobReport around body (len bytes, a packed JobResult or
 * JobHeartbeat as kind says) with its MAC under secret. *out is malloc'd
 * (the caller frees it), *outlen its length. AFF_OK, AFF_INTERNAL (no
 * HMAC-SHA256 in OpenSSL) or AFF_RESOURCE_EXHAUSTED.
 */
int aff_job_report_pack(const char *secret, enum aff_job_report_kind kind,
    const uint8_t *body, size_t len, uint8_t **out, size_t *outlen);

/*
 * Whether r carries the right MAC under secret for its body: AFF_OK, or
 * AFF_UNAUTHENTICATED (no body, missing or wrong MAC; compared in
 * constant time).
 */
int aff_job_report_verify(const char *secret, const Affiliate__V1__JobReport *r);

/*
 * The worker secret into out (outlen >= AFF_WORKER_SECRET_MAX + 1): env
 * when it is set and non-empty; else the first line of file when file is
 * not NULL; else DIR/worker_secret, which is made (random, mode 0600)
 * when create is set and it does not exist (*made then 1). AFF_OK;
 * AFF_INVALID_ARGUMENT for a secret shorter than AFF_WORKER_SECRET_MIN
 * or longer than the maximum; AFF_NOT_FOUND when there is none to read
 * (not logged: the caller may wait for the server to make it);
 * AFF_UNAVAILABLE when the file cannot be read or written. Says why with
 * aff_error.
 */
int aff_worker_secret_load(const char *env, const char *file, const char *dir,
    int create, char *out, size_t outlen, int *made);

#endif /* AFF_JOBAUTH_H */
