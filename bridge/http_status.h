/*
 * http_status.h - RPC status → HTTP status, as grpc-gateway maps them.
 */
#ifndef HTTP_STATUS_H
#define HTTP_STATUS_H

/* The HTTP status for an aff_err code (500 for codes it does not know). */
int http_status_from_code(int code);

/* The code name shown in an error body for an HTTP status the bridge
 * itself decides (404 NOT_FOUND, 405 UNIMPLEMENTED, 413 ...). */
const char *http_code_name_for_status(int status);

#endif /* HTTP_STATUS_H */
