/*
 * json_in.h - the bridge's way in: a request's JSON body, path and query
 * parameters into the method's request message, driven by protobuf-c's
 * descriptors (no code per message); the way out (messages as JSON) is
 * lib/aff_json.h, which the CLI shares.
 *
 * As strict as a typed API: a wrong type or an unknown field is an error,
 * never a silent default. It knows the field kinds the API's requests use
 * (int32, int64, bool, enum, string, message, repeated or not; no oneof,
 * no proto3 optional): a field of another kind cannot be given.
 */
#ifndef JSON_IN_H
#define JSON_IN_H

#include <stddef.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "aff_arena.h"

/*
 * How deep a request body may nest ([ and { inside each other). jansson
 * parses recursively, up to 2,048 levels (JSON_PARSER_MAX_DEPTH is fixed
 * when Debian builds it), and civetweb's threads have 100 KB stacks: 1,000
 * levels overflowed one. No message of the API nests more than a few.
 */
#define JSON_IN_MAX_DEPTH 32

/*
 * Whether buf[0..len) nests at most max levels, by a scan that does not
 * recurse (and knows strings: a "[" inside one does not count). It counts
 * the way jansson's lexer does as far as the text is valid JSON, so
 * jansson never goes deeper than this allows. 1 when it does not nest
 * deeper, 0 when it does.
 */
int json_in_depth_ok(const char *buf, size_t len, int max);

/*
 * Parses a request body: a JSON object or array, at most
 * JSON_IN_MAX_DEPTH deep (checked before jansson sees it), with no key
 * given twice. On AFF_OK *out is the value (caller json_decref()s);
 * AFF_INVALID_ARGUMENT with a sentence in err otherwise.
 */
int json_in_parse(const char *buf, size_t len, json_t **out, char *err,
    size_t errlen);

/* Allocates and initialises a message of type d in the arena (NULL when
 * out of memory). */
ProtobufCMessage *json_in_message_new(
    const ProtobufCMessageDescriptor *d, aff_arena *a);

/*
 * Fills msg from a JSON object, strictly: every key must name a field,
 * integers must be JSON integers in the field's range, strings strings (no
 * NUL), booleans booleans, enums their value names; null leaves the
 * default. Strings and nested messages are allocated in a. Returns AFF_OK,
 * or AFF_INVALID_ARGUMENT with a sentence in err ("editor_id must be an
 * integer").
 */
int json_in_to_message(const json_t *obj, ProtobufCMessage *msg,
    aff_arena *a, char *err, size_t errlen);

/*
 * Sets the field called name from its text form (a query or path
 * parameter): integers in decimal, booleans "true"/"false", strings as
 * they are, enums by name. Returns AFF_OK, AFF_NOT_FOUND when msg has no
 * such field, or AFF_INVALID_ARGUMENT, with a sentence in err.
 */
int json_in_set_text(ProtobufCMessage *msg, const char *name,
    const char *value, aff_arena *a, char *err, size_t errlen);

#endif /* JSON_IN_H */
