/*
 * aff_json.h - protobuf messages rendered as JSON, driven by protobuf-c's
 * descriptors (no code per message).
 *
 * Field names are the proto names (snake_case, as grpc-gateway's
 * OrigName); every field is emitted, defaults included, so a client sees a
 * stable shape; 64-bit integers stay integers (jansson keeps them exact);
 * enums are their value names; bytes are base64.
 */
#ifndef AFF_JSON_H
#define AFF_JSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* Returns a new JSON object (caller json_decref()s), or NULL out of memory. */
json_t *aff_json_from_message(const ProtobufCMessage *msg);

#endif /* AFF_JSON_H */
