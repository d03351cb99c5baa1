/* aff_wire.c - see aff_wire.h. */
#include "aff_wire.h"

#include <stdio.h>

#include "aff_err.h"
#include "aff_utf8.h"

#define MAX_DEPTH 16
/* Fields in one message. Each costs protobuf-c 40-60 bytes unpacked
 * (a metadata entry, an unknown field) for as little as 2 on the wire,
 * so a 2 MiB request of empty entries would cost ~90 MiB per handler
 * thread; no request of this API comes near this many. */
#define MAX_FIELDS 1024

static int
varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return (0);
	}
	return (-1);
}

static int
walk(const ProtobufCMessageDescriptor *d, const uint8_t *p,
    const uint8_t *end, int depth, char *err, size_t errlen)
{
	uint64_t tag, len;
	size_t fields = 0;

	while (p < end) {
		const ProtobufCFieldDescriptor *f;

		if (++fields > MAX_FIELDS) {
			snprintf(err, errlen,
			    "%s has too many fields (more than %d)", d->name,
			    MAX_FIELDS);
			return (AFF_INVALID_ARGUMENT);
		}
		if (varint(&p, end, &tag) != 0)
			return (AFF_OK);
		switch (tag & 7) {
		case 0:
			if (varint(&p, end, &len) != 0)
				return (AFF_OK);
			break;
		case 1:
			p += (size_t)(end - p) < 8 ? (size_t)(end - p) : 8;
			break;
		case 5:
			p += (size_t)(end - p) < 4 ? (size_t)(end - p) : 4;
			break;
		case 2:
			if (varint(&p, end, &len) != 0 || len > (uint64_t)(end - p))
				return (AFF_OK);
			f = tag >> 3 <= UINT32_MAX
			    ? protobuf_c_message_descriptor_get_field(
			          d, (unsigned)(tag >> 3))
			    : NULL;
			if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING &&
			    !aff_utf8_valid(p, (size_t)len)) {
				snprintf(err, errlen,
				    "field '%s' is not valid UTF-8 or holds a NUL byte",
				    f->name);
				return (AFF_INVALID_ARGUMENT);
			}
			if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE &&
			    depth < MAX_DEPTH &&
			    walk(f->descriptor, p, p + len, depth + 1, err,
			        errlen) != AFF_OK)
				return (AFF_INVALID_ARGUMENT);
			p += len;
			break;
		default: /* groups, or not protobuf: unpack refuses it */
			return (AFF_OK);
		}
	}
	return (AFF_OK);
}

int
aff_wire_check_text(const ProtobufCMessageDescriptor *d, const uint8_t *data,
    size_t len, char *err, size_t errlen)
{
	/* An empty message (protobuf-c gives an absent payload as NULL, 0)
	 * has no text to check, and NULL + 0 is undefined in C. */
	if (len == 0)
		return (AFF_OK);
	return (walk(d, data, data + len, 0, err, errlen));
}
