/*
 * aff_addr.h - is an address this host only? Protected mode (auth on
 * whenever a listener can be reached from another host) is decided from
 * the addresses the server and the bridge listen on.
 */
#ifndef AFF_ADDR_H
#define AFF_ADDR_H

/* 1 when host (an IPv4 or IPv6 literal, brackets allowed, or "localhost")
 * is a loopback address: 127.0.0.0/8, ::1, ::ffff:127.x.y.z. Anything
 * else, including "", "*", "0.0.0.0", "::" and other host names, is 0. */
int aff_host_is_loopback(const char *host, size_t len);

/* 1 when an NNG listen URL can only be reached from this host: ipc://,
 * inproc://, abstract://, or tcp:// (tcp4, tcp6) on a loopback host. */
int aff_url_is_local(const char *url);

/* 1 when every entry of civetweb's listening_ports ("127.0.0.1:8080",
 * "[::1]:8080", "8080" = every interface, comma-separated, an 's' or
 * 'r' suffix allowed) is on a loopback address. */
int aff_listen_is_local(const char *ports);

#endif /* AFF_ADDR_H */
