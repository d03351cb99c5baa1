/*
 * bridge.h - affiliate-bridge as a library: the JSON REST API over
 * civetweb, each request one RPC to affiliate-server. It holds no state and
 * no secrets. main.c and the tests drive it through here.
 */
#ifndef BRIDGE_H
#define BRIDGE_H

#include "bridge_config.h"

typedef struct bridge bridge;

/* Starts serving. AFF_OK, AFF_INVALID_ARGUMENT (bad setting) or
 * AFF_UNAVAILABLE (the port cannot be bound). Caller stops with
 * bridge_stop(). The server need not be up: calls answer 503 until it is. */
int bridge_start(const struct bridge_config *cfg, bridge **bp);
void bridge_stop(bridge *b);

#endif /* BRIDGE_H */
