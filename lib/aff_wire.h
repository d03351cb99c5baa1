/*
 * aff_wire.h - checks the text in a serialized protobuf message before it
 * is unpacked. proto3 says a string field holds UTF-8; protobuf-c 1.4.1
 * does not check, and a C string ends at the first NUL, so "pending\0x"
 * would be read as "pending". Every string field (in nested messages too)
 * is checked to be valid UTF-8 without NUL (aff_utf8_valid). A message of more than 1,024
 * fields is refused too, before unpacking makes ~25 bytes of each byte.
 */
#ifndef AFF_WIRE_H
#define AFF_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/*
 * AFF_OK, or AFF_INVALID_ARGUMENT with a sentence naming the field in err
 * ("field 'status' is not valid UTF-8 or holds a NUL byte", "... has too
 * many fields (more than 1024)"). Bytes that are
 * not well-formed protobuf are left for protobuf_c_message_unpack to
 * refuse (AFF_OK here).
 */
int aff_wire_check_text(const ProtobufCMessageDescriptor *d,
    const uint8_t *data, size_t len, char *err, size_t errlen);

#endif /* AFF_WIRE_H */
