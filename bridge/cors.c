/* cors.c - see cors.h. */
#include "cors.h"

#include <stdio.h>
#include <string.h>

#include "aff_err.h"

/* The request headers a script may send: keys, JSON bodies, its own
 * request ids, partner signatures. */
#define CORS_ALLOW_HEADERS \
	"Authorization, Content-Type, X-Request-Id, X-Partner-Signature"
/* The answer headers a script may read besides the CORS-safelisted ones:
 * paging, the request id, and the rate limit's advice. */
#define CORS_EXPOSE_HEADERS                                          \
	"Link, X-Request-Id, Retry-After, RateLimit-Limit, "            \
	"RateLimit-Remaining, RateLimit-Reset, WWW-Authenticate"
/* How long a browser may keep a preflight's answer (seconds). */
#define CORS_MAX_AGE 600

int
cors_policy_parse(const char *spec, struct cors_policy *p, char *err,
    size_t errlen)
{
	memset(p, 0, sizeof(*p));
	for (const char *s = spec; s != NULL && *s != '\0';) {
		size_t n = strcspn(s, ","), lead = strspn(s, " \t");
		const char *o = s + (lead < n ? lead : n);
		size_t on = n - (size_t)(o - s), sl;

		while (on > 0 && (o[on - 1] == ' ' || o[on - 1] == '\t'))
			on--;
		s += n + (s[n] == ',');
		if (on == 0)
			continue;
		if (on == 1 && o[0] == '*') {
			p->any = 1;
			continue;
		}
		/* An origin is scheme://host[:port]: no path, no trailing
		 * slash, nothing that could split a header. */
		sl = strncmp(o, "http://", 7) == 0 ? 7
		    : strncmp(o, "https://", 8) == 0 ? 8 : 0;
		if (on >= sizeof(p->origins[0]) || sl == 0 || on <= sl ||
		    memchr(o + sl, '/', on - sl) != NULL ||
		    strcspn(o, "\r\n \t") < on) {
			snprintf(err, errlen,
			    "'%.*s' is not an origin (scheme://host[:port]) or *",
			    (int)on, o);
			return (AFF_INVALID_ARGUMENT);
		}
		if (p->n == CORS_MAX_ORIGINS) {
			snprintf(err, errlen, "more than %d CORS origins",
			    CORS_MAX_ORIGINS);
			return (AFF_INVALID_ARGUMENT);
		}
		memcpy(p->origins[p->n], o, on);
		p->origins[p->n][on] = '\0';
		p->n++;
	}
	return (AFF_OK);
}

int
cors_allows(const struct cors_policy *p, const char *origin)
{
	/* The origin is echoed: nothing that could end a header line. */
	if (origin == NULL || *origin == '\0' || strlen(origin) > 256 ||
	    strpbrk(origin, "\r\n") != NULL)
		return (0);
	if (p->any)
		return (1);
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->origins[i], origin) == 0)
			return (1);
	return (0);
}

void
cors_answer_headers(const struct cors_policy *p, const char *origin,
    struct aff_buf *b)
{
	if (!cors_allows(p, origin))
		return;
	aff_buf_printf(b,
	    "Access-Control-Allow-Origin: %s\r\n"
	    "Access-Control-Expose-Headers: " CORS_EXPOSE_HEADERS "\r\n"
	    "Vary: Origin\r\n",
	    origin);
}

void
cors_preflight_headers(const struct cors_policy *p, const char *origin,
    const char *methods, struct aff_buf *b)
{
	if (!cors_allows(p, origin))
		return;
	aff_buf_printf(b,
	    "Access-Control-Allow-Origin: %s\r\n"
	    "Access-Control-Allow-Methods: %s\r\n"
	    "Access-Control-Allow-Headers: " CORS_ALLOW_HEADERS "\r\n"
	    "Access-Control-Max-Age: %d\r\n"
	    "Vary: Origin\r\n",
	    origin, methods, CORS_MAX_AGE);
}
