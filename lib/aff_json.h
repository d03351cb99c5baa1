/*
 * aff_json.h - protobuf messages rendered as JSON, driven by protobuf-c's
 * descriptors (no code per message). The bridge answers with it and the
 * CLI prints with it, so both show a reply the same way; the way in (JSON
 * into a request message) is the bridge's alone (bridge/json_in.h).
 *
 * Field names are the proto names (snake_case, as grpc-gateway's
 * OrigName), but for money (see aff_json_money_name); every field is
 * emitted, defaults included, so a client sees a
 * stable shape; 64-bit integers stay integers (jansson keeps them exact);
 * enums are their value names. Only the field kinds the API's messages
 * use are rendered (int32, int64, bool, enum, string, message, repeated
 * or not; no oneof): any other renders as null. test_lib walks every
 * message the services take and answer to keep it so.
 */
#ifndef AFF_JSON_H
#define AFF_JSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "aff_arena.h"

/* A growable byte buffer (always NUL-terminated once written). */
struct aff_buf {
	char *data;
	size_t len, cap;
	int failed; /* out of memory: later writes are dropped */
};

void aff_buf_init(struct aff_buf *b);
void aff_buf_fini(struct aff_buf *b);
void aff_buf_add(struct aff_buf *b, const void *p, size_t n);
void aff_buf_printf(struct aff_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Appends m as compact JSON to b, straight from the descriptors (no
 * intermediate tree: this is the bridge's hot path). AFF_OK or
 * AFF_RESOURCE_EXHAUSTED.
 */
int aff_json_write_message(struct aff_buf *b, const ProtobufCMessage *m);

/* Appends only the value of m's field (an array for a repeated one).
 * AFF_NOT_FOUND when m has no such field. */
int aff_json_write_field(
    struct aff_buf *b, const ProtobufCMessage *m, const char *field);

/*
 * Money: an int64 field named <name>_cents renders as <name> with exactly
 * two decimals ("amount_cents": 4990 -> "amount": 49.90), so JSON carries
 * the amount while the message keeps integer cents. Returns 1 and the
 * JSON name when f is such a field.
 */
int aff_json_money_name(
    const ProtobufCFieldDescriptor *f, char *name, size_t cap);

/* The same rendering as a jansson value (caller json_decref()s), or NULL
 * out of memory. */
json_t *aff_json_from_message(const ProtobufCMessage *msg);

/* The size of one element of f's array when f is repeated (of the field
 * itself otherwise): what protobuf-c's arrays step by. */
size_t aff_json_elem_size(const ProtobufCFieldDescriptor *f);

#endif /* AFF_JSON_H */
