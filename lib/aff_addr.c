/* aff_addr.c - see aff_addr.h. */
#include <stddef.h>

#include "aff_addr.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

int
aff_host_is_loopback(const char *host, size_t len)
{
	char buf[64];
	struct in_addr a4;
	struct in6_addr a6;

	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(buf))
		return (0);
	memcpy(buf, host, len);
	buf[len] = '\0';
	if (strcasecmp(buf, "localhost") == 0)
		return (1);
	if (inet_pton(AF_INET, buf, &a4) == 1)
		return ((ntohl(a4.s_addr) >> 24) == 127);
	if (inet_pton(AF_INET6, buf, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return (1);
		return (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	}
	return (0);
}

int
aff_url_is_local(const char *url)
{
	static const char *const local[] = { "ipc://", "inproc://",
		"abstract://" };
	static const char *const tcp[] = { "tcp://", "tcp4://", "tcp6://" };
	const char *h = NULL, *end;

	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		if (strncmp(url, local[i], strlen(local[i])) == 0)
			return (1);
	for (size_t i = 0; i < sizeof(tcp) / sizeof(tcp[0]); i++)
		if (strncmp(url, tcp[i], strlen(tcp[i])) == 0)
			h = url + strlen(tcp[i]);
	if (h == NULL)
		return (0); /* ws://, tls+tcp://...: not known to be local */
	/* host:port, the port after the last colon ([v6]:port too). */
	if ((end = strrchr(h, ':')) == NULL)
		return (0);
	return (aff_host_is_loopback(h, (size_t)(end - h)));
}

int
aff_listen_is_local(const char *ports)
{
	const char *p = ports;

	if (p == NULL || *p == '\0')
		return (0);
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		const char *colon = NULL;

		for (size_t i = 0; i < n; i++)
			if (p[i] == ':')
				colon = p + i;
		/* "8080" alone listens on every interface. */
		if (colon == NULL || !aff_host_is_loopback(p, (size_t)(colon - p)))
			return (0);
		p += n + (p[n] == ',');
	}
	return (1);
}
