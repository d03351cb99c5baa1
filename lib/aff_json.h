/*
 * aff_json.h - protobuf messages rendered as JSON, driven by protobuf-c's
 * descriptors (no code per message).
 *
 * Field names are the proto names (snake_case, as grpc-gateway's
 * OrigName), but for money (see aff_json_money_name); every field is
 * emitted, defaults included, so a client sees a
 * stable shape; 64-bit integers stay integers (jansson keeps them exact);
 * enums are their value names; bytes are base64. The reverse direction
 * is as strict as a typed API: a wrong type or an unknown field is an
 * error, never a silent default.
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

/*
 * How deep a request body may nest ([ and { inside each other). jansson
 * parses recursively, up to 2,048 levels (JSON_PARSER_MAX_DEPTH is fixed
 * when Debian builds it), and civetweb's threads have 100 KB stacks: 1,000
 * levels overflowed one. No message of the API nests more than a few.
 */
#define AFF_JSON_MAX_DEPTH 32

/*
 * Whether buf[0..len) nests at most max levels, by a scan that does not
 * recurse (and knows strings: a "[" inside one does not count). It counts
 * the way jansson's lexer does as far as the text is valid JSON, so
 * jansson never goes deeper than this allows. 1 when it does not nest
 * deeper, 0 when it does.
 */
int aff_json_depth_ok(const char *buf, size_t len, int max);

/*
 * Parses a request body: a JSON object or array, at most
 * AFF_JSON_MAX_DEPTH deep (checked before jansson sees it), with no key
 * given twice. On AFF_OK *out is the value (caller json_decref()s);
 * AFF_INVALID_ARGUMENT with a sentence in err otherwise.
 */
int aff_json_parse(const char *buf, size_t len, json_t **out, char *err,
    size_t errlen);

/* Allocates and initialises a message of type d in the arena (NULL when
 * out of memory). */
ProtobufCMessage *aff_message_new(
    const ProtobufCMessageDescriptor *d, aff_arena *a);

/*
 * Fills msg from a JSON object, strictly: every key must name a field,
 * integers must be JSON integers in the field's range, strings strings (no
 * NUL), booleans booleans, enums their value names; null leaves the
 * default. Strings and nested messages are allocated in a. Returns AFF_OK,
 * or AFF_INVALID_ARGUMENT with a sentence in err ("editor_id must be an
 * integer").
 */
int aff_json_to_message(const json_t *obj, ProtobufCMessage *msg,
    aff_arena *a, char *err, size_t errlen);

/*
 * Sets the field called name from its text form (a query or path
 * parameter): integers in decimal, booleans "true"/"false", strings as
 * they are, enums by name. Returns AFF_OK, AFF_NOT_FOUND when msg has no
 * such field, or AFF_INVALID_ARGUMENT, with a sentence in err.
 */
int aff_message_set_text(ProtobufCMessage *msg, const char *name,
    const char *value, aff_arena *a, char *err, size_t errlen);

#endif /* AFF_JSON_H */
