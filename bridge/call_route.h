/*
 * call_route.h - private to bridge/: the request path of a matched route.
 * Path and query parameters and the JSON body are transcoded into the
 * method's request message (driven by protobuf-c's descriptors), the RPC
 * is made, and the reply is rendered as JSON with the RPC status mapped
 * to the HTTP status.
 */
#ifndef CALL_ROUTE_H
#define CALL_ROUTE_H

#include "call.h"
#include "routes.h"

/* Makes the RPC for the matched route m and answers it; returns the HTTP
 * status answered. */
int call_route(struct http_call *hc, const struct route_match *m);

#endif /* CALL_ROUTE_H */
