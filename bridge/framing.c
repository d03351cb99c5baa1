/* framing.c - see framing.h. RFC 9112 sections 2.2, 3.2, 5.2 and 6.3. */
#include "framing.h"

#include <string.h>
#include <strings.h>

#include <civetweb.h>

/* 1*DIGIT, optional trailing whitespace, at most 18 digits (no overflow). */
static int
is_decimal(const char *v)
{
	size_t n = strspn(v, "0123456789");

	if (n == 0 || n > 18)
		return (0);
	return (v[n + strspn(v + n, " \t")] == '\0');
}

/*
 * The raw bytes between and after the header lines. civetweb turns the CR
 * LF ending each line into two NULs and leaves the CR of the blank line
 * that ends the block, then a NUL: "...value\0\0\r\0". Anything else means
 * a bare LF, whitespace before the first header (folded onto the request
 * line), or a line civetweb stopped at and dropped: an obs-fold line or a
 * 65th header.
 */
static int
framing_raw(const struct mg_request_info *ri, size_t max_head,
    const char **why)
{
	const struct mg_header *h = ri->http_headers;
	int n = ri->num_headers;
	const char *q = ri->http_version + strlen(ri->http_version);

	for (int i = 0; i < n; i++) {
		if (q[0] != '\0' || q[1] != '\0' || q + 2 != h[i].name) {
			*why = "header lines must end in CRLF and may not start "
			       "with whitespace (obs-fold)";
			return (400);
		}
		q = h[i].value + strlen(h[i].value);
	}
	/* q[2] and q[3] are inside the block unless it ended in a bare
	 * "\n\n" filling civetweb's buffer to its last byte; stay away from
	 * the buffer's end (civetweb answers 413 past it anyway). Leading
	 * blank lines before the request line (which civetweb skips) would
	 * have to be longer than the margin to defeat this. */
	if ((size_t)(q + 4 - ri->request_method) + 256 > max_head) {
		*why = "the header section is too large";
		return (431);
	}
	/* With no header, civetweb NULs the blank line's CR too. */
	if (q[0] == '\0' && q[1] == '\0' && q[2] == (n > 0 ? '\r' : '\0') &&
	    q[3] == '\0')
		return (0);
	if (q[0] == '\0' && q[1] == '\0' && q[2] > ' ' && n == MG_MAX_HEADERS) {
		*why = "more header lines than the 64 the bridge reads";
		return (431);
	}
	if (q[0] == '\0' && q[1] == '\0' && q[2] == ' ')
		*why = "obs-fold (a header line starting with whitespace) is "
		       "not accepted";
	else if (q[0] == '\0' && q[1] == '\0' && q[2] > ' ')
		*why = "a header line is malformed";
	else
		*why = "header lines must end in CRLF";
	return (400);
}

int
framing_check(const struct mg_request_info *ri, size_t max_head,
    const char **why)
{
	const char *cl = NULL;
	int n_cl = 0, n_te = 0, n_host = 0, st;

	if (ri->request_method == NULL || ri->http_version == NULL ||
	    ri->request_uri == NULL) {
		*why = "the request line is malformed";
		return (400);
	}
	if ((st = framing_raw(ri, max_head, why)) != 0)
		return (st);
	for (int i = 0; i < ri->num_headers; i++) {
		const char *name = ri->http_headers[i].name;
		if (strcasecmp(name, "Content-Length") == 0) {
			n_cl++;
			cl = ri->http_headers[i].value;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0)
			n_te++;
		else if (strcasecmp(name, "Host") == 0)
			n_host++;
	}
	if (n_cl > 0 && n_te > 0)
		*why = "Content-Length and Transfer-Encoding together are "
		       "ambiguous";
	else if (n_cl > 1)
		*why = "Content-Length is given more than once";
	else if (n_te > 1)
		*why = "Transfer-Encoding is given more than once";
	/* RFC 9112 6.1: faulty framing in an HTTP/1.0 request. */
	else if (n_te > 0 && strcmp(ri->http_version, "1.1") != 0)
		*why = "Transfer-Encoding is for HTTP/1.1 requests only";
	else if (cl != NULL && !is_decimal(cl))
		*why = "Content-Length is not a decimal number";
	else if (n_host > 1 ||
	    (n_host == 0 && strcmp(ri->http_version, "1.1") == 0))
		*why = "an HTTP/1.1 request needs exactly one Host header";
	/* civetweb has cut the query off request_uri (the handler checks
	 * the query's parameters itself). */
	else if (strstr(ri->request_uri, "%00") != NULL)
		*why = "the path contains an encoded NUL (%00)";
	else
		return (0);
	return (400);
}
