/*
 * proxy.h - trusted proxies: whose Forwarded and X-Forwarded-For headers
 * the bridge believes, and which client address they name.
 *
 * The rule (the same the server applies to the bridge's x-forwarded-for
 * metadata, one hop further in): forwarding headers are believed only
 * from a peer that is trusted. The chain is the addresses in the header,
 * left to right, then the peer; the client is the right-most address in it
 * that is not a trusted proxy, since everything left of it was written by
 * someone we do not trust. A request that carries such a header from
 * anyone else is still counted as proxied (the bridge is then reachable
 * through something that forwards), but its header is ignored: the peer
 * is the client.
 */
#ifndef PROXY_H
#define PROXY_H

#include <stddef.h>
#include <stdint.h>

#include <civetweb.h>

#define PROXY_MAX_NETS 32

/* Addresses and CIDR blocks (IPv4 and IPv6). */
struct proxy_list {
	size_t n;
	struct {
		int family; /* AF_INET or AF_INET6 */
		uint8_t addr[16];
		int bits;
	} nets[PROXY_MAX_NETS];
};

/*
 * Parses a comma-separated list ("127.0.0.1, 10.0.0.0/8, fd00::/8"; empty
 * for none) into l. AFF_OK, or AFF_INVALID_ARGUMENT with a sentence in
 * err.
 */
int proxy_list_parse(const char *spec, struct proxy_list *l, char *err,
    size_t errlen);

/* Whether addr (text, as civetweb gives the peer) is in l. */
int proxy_list_contains(const struct proxy_list *l, const char *addr);

/*
 * The client address of the request ri into out (at most cap bytes, an IP
 * address in text), following the rule above. X-Forwarded-For is read
 * when the request has it (every line of it, in order), else Forwarded's
 * for= parameters. Returns 1 when the request carries a forwarding header
 * (X-Forwarded-For, Forwarded or X-Real-IP), trusted or not, else 0.
 */
int proxy_client_address(const struct proxy_list *l,
    const struct mg_request_info *ri, char *out, size_t cap);

#endif /* PROXY_H */
