/*
 * scrape.h - GET /metrics as one scrape of the whole system: the
 * bridge's own families (metrics.h), then every server's
 * (HealthService.Metrics: the server's RPCs, group commit, cache, rate
 * limits, and the job pipeline), each family once with its HELP and TYPE.
 *
 * With several servers (--server a,b) each is asked on a client of its
 * own and its samples carry server="<its URL>"; with one, no label is
 * added. A server that does not answer within SCRAPE_TIMEOUT_MS shows as
 * affiliate_server_up 0 and the rest of the scrape is still served.
 */
#ifndef SCRAPE_H
#define SCRAPE_H

#include <stddef.h>

#include "bridge_priv.h"

/* How long one server may take to answer its part of a scrape. */
#define SCRAPE_TIMEOUT_MS 1000

/* At bridge start, after b->client: with several server URLs, one client
 * each for the scrape. AFF_OK or the error (logged). */
int scrape_open(bridge *b);
void scrape_close(bridge *b);

/* The whole exposition text, in a buffer the caller frees with free().
 * 0, or -1 when out of memory. */
int scrape_render(bridge *b, const char *request_id, char **text,
    size_t *len);

/* For the tests: appends to out the families of texts[0..n-1] (each in
 * the server's format: "# HELP" opening every family), merged so each
 * family appears once; samples of texts[i] get server="labels[i]" when
 * labels is not NULL. A NULL text is skipped. */
struct aff_mbuf;
void scrape_merge(struct aff_mbuf *out, const char *const *texts,
    const char *const *labels, size_t n);

#endif /* SCRAPE_H */
