/*
 * openapi.h - the OpenAPI 3 description of the REST API, made from the
 * route table and protobuf-c's descriptors, so it lists exactly the routes
 * served, with schemas that match the messages.
 */
#ifndef OPENAPI_H
#define OPENAPI_H

/* Returns the JSON text (caller free()s), or NULL out of memory. listen
 * (--listen) and tls give the servers entry's default URL. */
char *openapi_build(const char *listen, int tls);

#endif /* OPENAPI_H */
