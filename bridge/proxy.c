/* proxy.c - see proxy.h. */
#include "proxy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aff_err.h"

/* Entries of a forwarding chain read at most: the right-most count. */
#define CHAIN_MAX 64

/* Text to an address: "192.0.2.1", "2001:db8::1", also with a port
 * ("192.0.2.1:80", "[2001:db8::1]:80") or quotes, as proxies write them.
 * Returns the family, or 0 when it is no address ("unknown", "_hidden"). */
static int
addr_parse(const char *s, size_t n, uint8_t out[16])
{
	char buf[64];
	const char *colon;

	while (n > 0 && (*s == ' ' || *s == '\t' || *s == '"')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '"'))
		n--;
	if (n == 0 || n >= sizeof(buf))
		return (0);
	if (s[0] == '[') {
		const char *end = memchr(s, ']', n);
		if (end == NULL)
			return (0);
		n = (size_t)(end - s - 1);
		s++;
	} else if ((colon = memchr(s, ':', n)) != NULL &&
	    memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) == NULL)
		n = (size_t)(colon - s); /* one colon: IPv4 with a port */
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, out) == 1)
		return (AF_INET);
	if (inet_pton(AF_INET6, buf, out) == 1)
		return (AF_INET6);
	return (0);
}

int
proxy_list_parse(const char *spec, struct proxy_list *l, char *err,
    size_t errlen)
{
	memset(l, 0, sizeof(*l));
	for (const char *p = spec; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, ","), alen;
		const char *slash = memchr(p, '/', n);
		char *end;
		long bits;
		int fam;

		alen = slash != NULL ? (size_t)(slash - p) : n;
		if (n == 0 || strspn(p, " \t") == n) {
			p += n + (p[n] == ',');
			continue;
		}
		if (l->n == PROXY_MAX_NETS) {
			snprintf(err, errlen, "more than %d trusted proxies",
			    PROXY_MAX_NETS);
			return (AFF_INVALID_ARGUMENT);
		}
		if ((fam = addr_parse(p, alen, l->nets[l->n].addr)) == 0) {
			snprintf(err, errlen,
			    "'%.*s' is not an IP address or CIDR block", (int)n, p);
			return (AFF_INVALID_ARGUMENT);
		}
		bits = fam == AF_INET ? 32 : 128;
		if (slash != NULL) {
			bits = strtol(slash + 1, &end, 10);
			while (end < p + n && (*end == ' ' || *end == '\t'))
				end++;
			if (end == slash + 1 || end != p + n || bits < 0 ||
			    bits > (fam == AF_INET ? 32 : 128)) {
				snprintf(err, errlen, "'%.*s' has a bad prefix length",
				    (int)n, p);
				return (AFF_INVALID_ARGUMENT);
			}
		}
		l->nets[l->n].family = fam;
		l->nets[l->n].bits = (int)bits;
		l->n++;
		p += n + (p[n] == ',');
	}
	return (AFF_OK);
}

/* Whether the first bits of a and b agree. */
static int
prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)bytes) != 0)
		return (0);
	return (rest == 0 ||
	    ((a[bytes] ^ b[bytes]) & (uint8_t)(0xff << (8 - rest))) == 0);
}

/* Whether the address (fam, a) is in l; a v4-mapped IPv6 address counts
 * as its IPv4 one. */
static int
list_has(const struct proxy_list *l, int fam, const uint8_t *a)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
		0xff };

	if (fam == AF_INET6 && memcmp(a, mapped, 12) == 0) {
		fam = AF_INET;
		a += 12;
	}
	for (size_t i = 0; i < l->n; i++)
		if (l->nets[i].family == fam &&
		    prefix_equal(l->nets[i].addr, a, l->nets[i].bits))
			return (1);
	return (0);
}

int
proxy_list_contains(const struct proxy_list *l, const char *addr)
{
	uint8_t a[16];
	int fam = addr_parse(addr, strlen(addr), a);

	return (fam != 0 && list_has(l, fam, a));
}

/* One hop of a chain: its address, or none (family 0) when the header
 * named it in a form that is no address. */
struct hop {
	int family;
	uint8_t addr[16];
};

/* Appends the hops of one X-Forwarded-For line ("a, b, c"), keeping the
 * right-most CHAIN_MAX. */
static void
chain_add_xff(struct hop *chain, size_t *n, const char *v)
{
	for (const char *p = v;;) {
		size_t len = strcspn(p, ",");
		if (*n == CHAIN_MAX) {
			memmove(chain, chain + 1, (CHAIN_MAX - 1) * sizeof(*chain));
			(*n)--;
		}
		chain[*n].family = addr_parse(p, len, chain[*n].addr);
		(*n)++;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
}

/* The same for a Forwarded line (RFC 7239): elements separated by ',',
 * each "key=value" pairs separated by ';'; the hop is its for=. */
static void
chain_add_forwarded(struct hop *chain, size_t *n, const char *v)
{
	for (const char *p = v;;) {
		size_t len = strcspn(p, ","); /* quoted values hold no ',' here */
		const char *forv = NULL;
		size_t forlen = 0;

		for (const char *q = p; q < p + len;) {
			size_t plen = strcspn(q, ";,");
			const char *kv = q;
			while (kv < q + plen && (*kv == ' ' || *kv == '\t'))
				kv++;
			if ((size_t)(q + plen - kv) > 4 &&
			    strncasecmp(kv, "for=", 4) == 0) {
				forv = kv + 4;
				forlen = (size_t)(q + plen - forv);
			}
			q += plen + (q[plen] == ';');
		}
		if (*n == CHAIN_MAX) {
			memmove(chain, chain + 1, (CHAIN_MAX - 1) * sizeof(*chain));
			(*n)--;
		}
		chain[*n].family =
		    forv != NULL ? addr_parse(forv, forlen, chain[*n].addr) : 0;
		(*n)++;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
}

int
proxy_client_address(const struct proxy_list *l,
    const struct mg_request_info *ri, char *out, size_t cap)
{
	struct hop chain[CHAIN_MAX], cur;
	size_t n = 0;
	int proxied = 0, has_xff = 0;

	snprintf(out, cap, "%s", ri->remote_addr);
	for (int i = 0; i < ri->num_headers; i++) {
		const char *name = ri->http_headers[i].name;
		if (strcasecmp(name, "X-Forwarded-For") == 0)
			proxied = has_xff = 1;
		else if (strcasecmp(name, "Forwarded") == 0 ||
		    strcasecmp(name, "X-Real-IP") == 0)
			proxied = 1;
	}
	cur.family = addr_parse(ri->remote_addr, strlen(ri->remote_addr),
	    cur.addr);
	if (!proxied || cur.family == 0 || !list_has(l, cur.family, cur.addr))
		return (proxied);
	/* Every line of the header, in order: a proxy may add its own line
	 * after the client's. */
	for (int i = 0; i < ri->num_headers; i++) {
		const char *name = ri->http_headers[i].name;
		if (has_xff && strcasecmp(name, "X-Forwarded-For") == 0)
			chain_add_xff(chain, &n, ri->http_headers[i].value);
		else if (!has_xff && strcasecmp(name, "Forwarded") == 0)
			chain_add_forwarded(chain, &n, ri->http_headers[i].value);
	}
	/* Right to left, past the trusted proxies. A hop written in a form
	 * that is no address ends the walk at the proxy that wrote it. */
	while (n > 0 && chain[n - 1].family != 0) {
		cur = chain[--n];
		if (!list_has(l, cur.family, cur.addr))
			break;
	}
	if (inet_ntop(cur.family, cur.addr, out, (socklen_t)cap) == NULL)
		snprintf(out, cap, "%s", ri->remote_addr);
	return (proxied);
}
