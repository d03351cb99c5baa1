/*
 * cors.h - the bridge's one CORS policy (browsers calling the API from
 * another origin). Off by default: with no origins configured no answer
 * carries a CORS header and a browser on another origin is refused, as
 * same-origin policy wants. With origins configured (exact
 * "scheme://host[:port]" strings, or "*" for any), answers to those
 * origins, errors included, carry Access-Control-Allow-Origin (the origin
 * itself, echoed), Vary: Origin and the headers a script may read; a
 * preflight (OPTIONS with Origin and Access-Control-Request-Method) is
 * answered by the bridge with the methods the path's routes take. No
 * credentials mode: the API authenticates with Authorization, which
 * cookies cannot forge.
 */
#ifndef CORS_H
#define CORS_H

#include <stddef.h>

#include "aff_json.h"

#define CORS_MAX_ORIGINS 32

struct cors_policy {
	int any;      /* "*": every origin */
	size_t n;     /* exact origins */
	char origins[CORS_MAX_ORIGINS][128];
};

/* Parses a comma-separated list of origins, or "*", or "" (off).
 * AFF_OK, or AFF_INVALID_ARGUMENT with a sentence in err. */
int cors_policy_parse(const char *spec, struct cors_policy *p, char *err,
    size_t errlen);

/* Whether the policy allows origin (NULL: the request has none). */
int cors_allows(const struct cors_policy *p, const char *origin);

/* Appends the headers of an answer to a request from origin (nothing when
 * it is not allowed). */
void cors_answer_headers(const struct cors_policy *p, const char *origin,
    struct aff_buf *b);

/* Appends a preflight's headers: methods are those the path takes
 * ("GET, HEAD, OPTIONS"). Nothing when origin is not allowed. */
void cors_preflight_headers(const struct cors_policy *p, const char *origin,
    const char *methods, struct aff_buf *b);

#endif /* CORS_H */
