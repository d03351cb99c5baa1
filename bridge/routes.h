/*
 * routes.h - the REST routes: method and path template → service, method,
 * success status and how the body and the reply map. The bridge has no
 * chain of ifs; adding an endpoint is adding a row.
 */
#ifndef ROUTES_H
#define ROUTES_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

enum route_body {
	ROUTE_BODY_NONE,    /* no body (query and path parameters only) */
	ROUTE_BODY_JSON,    /* a JSON object transcoded into the request */
	ROUTE_BODY_WEBHOOK, /* raw body + X-Partner-Signature, untouched */
	ROUTE_BODY_PATCH,   /* as JSON; the request's update_mask, when the
	                       body gives none, lists the body's keys */
};

enum route_render {
	ROUTE_RENDER_MESSAGE, /* the reply message as a JSON object */
	ROUTE_RENDER_LIST,    /* list_field as a JSON array; Link rel=next */
	ROUTE_RENDER_HEALTH,  /* {"status":"ok"} when SERVING, else 503 */
	ROUTE_RENDER_WEBHOOK, /* the order; 201 when created, 200 when not */
};

struct route {
	const char *method;   /* "GET" */
	const char *path;     /* "/advertisers/{id}": {name} is a field */
	const ProtobufCServiceDescriptor *service;
	const char *rpc;      /* method name in the service */
	int status;           /* HTTP status on success */
	enum route_body body;
	enum route_render render;
	const char *list_field; /* ROUTE_RENDER_LIST: the repeated field */
	const char *next_field; /* ROUTE_RENDER_LIST: the cursor field */
	const char *summary;    /* one line, for the OpenAPI description */
};

#define ROUTE_MAX_PARAMS 4

struct route_match {
	const struct route *route;
	size_t n_params;
	struct {
		char name[32];
		/* decoded: up to an order_id's 64 characters of UTF-8 */
		char value[257];
	} params[ROUTE_MAX_PARAMS];
	char allow[64]; /* on 405: the methods the path takes, "GET, HEAD, POST, OPTIONS" */
};

/* The table, and its length. */
extern const struct route route_table[];
extern const size_t route_count;

/*
 * Finds the route for method and path (as received, percent-encoded,
 * without the query: each segment is decoded on its own, so an encoded
 * '/' belongs to its parameter's value);
 * HEAD finds the GET route. Returns 200 with m->route and the path
 * parameters set, 404 when no route has the path, 405 when routes have it
 * but not for this method (m->allow lists those, with HEAD after GET and
 * OPTIONS last), or 414 when a path parameter is too long.
 */
int route_match(const char *method, const char *path, struct route_match *m);

#endif /* ROUTES_H */
