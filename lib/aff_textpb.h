/*
 * aff_textpb.h - protobuf's text format (what protoc --encode reads and
 * --decode prints), both ways, driven by protobuf-c's descriptors: any
 * message, no code per message. `affiliate rpc` sends a request written
 * this way and prints the reply this way, so a client author in another
 * language sees the exact message without a .proto toolchain.
 *
 * Read: `name: value` pairs, separated by spaces, newlines, ',' or ';';
 * scalars (decimal, 0x hex, 0 octal, negative; floats with inf/nan; true
 * and false, 1 and 0, t and f), strings in "..." or '...' with C escapes
 * (\n \t \\ \" \' \ooo \xHH \uXXXX, adjacent strings joined), enums by
 * value name (or number), nested messages as `name { ... }` or
 * `name < ... >` (the colon optional), repeated fields by repeating the
 * name or as `name: [v, v]`, comments from '#' to the end of the line.
 * Not read: extensions, Any expansion, group syntax.
 *
 * Written: as protoc --decode does: one `name: value` a line, nested
 * messages as `name {` ... `}` indented by two spaces, fields at their
 * default value (proto3) left out, strings quoted with bytes outside
 * printable ASCII as \ooo octal escapes.
 */
#ifndef AFF_TEXTPB_H
#define AFF_TEXTPB_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "aff_json.h"

/*
 * Parses text into a new message of type d. AFF_OK with *out set (the
 * caller frees it with protobuf_c_message_free_unpacked(*out, NULL)), or
 * AFF_INVALID_ARGUMENT with one sentence in err that names the line and
 * column and what was expected ("line 1, column 9: no field 'nam' in
 * affiliate.v1.Advertiser"), or AFF_RESOURCE_EXHAUSTED.
 */
int aff_textpb_parse(const ProtobufCMessageDescriptor *d, const char *text,
    ProtobufCMessage **out, char *err, size_t errlen);

/* Appends m in text format to b (nothing at all for an empty message).
 * AFF_OK or AFF_RESOURCE_EXHAUSTED. */
int aff_textpb_write(struct aff_buf *b, const ProtobufCMessage *m);

#endif /* AFF_TEXTPB_H */
