/*
 * aff_jobauth.h - job results signed with a secret the server and its
 * workers share (AFFILIATE_WORKER_SECRET), so that a peer that merely
 * reaches the results address cannot approve or reject applications.
 *
 * The MAC is the hex HMAC-SHA256, under the secret, of the JobResult
 * packed with its mac field empty (protobuf-c packs a message the same
 * way every time, unknown fields included), carried in the mac field.
 */
#ifndef AFF_JOBAUTH_H
#define AFF_JOBAUTH_H

#include "affiliate/v1/jobs.pb-c.h"

#define AFF_WORKER_SECRET_MIN 16 /* characters */

/* Sets r->mac to out (65 bytes, the caller's, alive while r is packed):
 * the MAC of r under secret. AFF_OK or AFF_INTERNAL. */
int aff_job_result_sign(const char *secret, Affiliate__V1__JobResult *r,
    char out[65]);

/* Whether r carries the right MAC under secret: AFF_OK, or
 * AFF_UNAUTHENTICATED (missing or wrong; compared in constant time). */
int aff_job_result_verify(const char *secret, const Affiliate__V1__JobResult *r);

#endif /* AFF_JOBAUTH_H */
