/* aff_json.c - see aff_json.h. */
#include "aff_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static json_t *
json_base64(const ProtobufCBinaryData *b)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t outlen = 4 * ((b->len + 2) / 3), i, o = 0;
	char *out;
	json_t *j;

	if ((out = malloc(outlen + 1)) == NULL)
		return (NULL);
	for (i = 0; i + 2 < b->len; i += 3) {
		uint32_t v = (uint32_t)b->data[i] << 16 |
		    (uint32_t)b->data[i + 1] << 8 | b->data[i + 2];
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (i < b->len) {
		uint32_t v = (uint32_t)b->data[i] << 16;
		if (i + 1 < b->len)
			v |= (uint32_t)b->data[i + 1] << 8;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < b->len ? tab[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	j = json_stringn(out, o);
	free(out);
	return (j);
}

/* One scalar, message or enum value at p, of field f's type. */
static json_t *
json_value(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return (json_integer(*(const int32_t *)p));
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return (json_integer(*(const uint32_t *)p));
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return (json_integer(*(const int64_t *)p));
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: {
		uint64_t v = *(const uint64_t *)p;
		if (v > INT64_MAX) /* beyond json_int_t: keep it exact */
			return (json_sprintf("%llu", (unsigned long long)v));
		return (json_integer((json_int_t)v));
	}
	case PROTOBUF_C_TYPE_FLOAT:
		return (json_real(*(const float *)p));
	case PROTOBUF_C_TYPE_DOUBLE:
		return (json_real(*(const double *)p));
	case PROTOBUF_C_TYPE_BOOL:
		return (json_boolean(*(const protobuf_c_boolean *)p));
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
		    f->descriptor, *(const int *)p);
		return (ev != NULL ? json_string(ev->name)
		                   : json_integer(*(const int *)p));
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		json_t *j;
		if (s == NULL)
			s = "";
		/* Invalid UTF-8 must not make the whole reply fail. */
		if ((j = json_string(s)) == NULL)
			j = json_string("\xef\xbf\xbd");
		return (j);
	}
	case PROTOBUF_C_TYPE_BYTES:
		return (json_base64(p));
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(const ProtobufCMessage *const *)p;
		return (m != NULL ? aff_json_from_message(m) : json_null());
	}
	}
	return (json_null());
}

static size_t
field_elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return (8);
	case PROTOBUF_C_TYPE_DOUBLE:
		return (sizeof(double));
	case PROTOBUF_C_TYPE_BOOL:
		return (sizeof(protobuf_c_boolean));
	case PROTOBUF_C_TYPE_ENUM:
		return (sizeof(int));
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return (sizeof(void *));
	case PROTOBUF_C_TYPE_BYTES:
		return (sizeof(ProtobufCBinaryData));
	default:
		return (4);
	}
}

json_t *
aff_json_from_message(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	json_t *obj, *v;

	if ((obj = json_object()) == NULL)
		return (NULL);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)msg + f->offset;

		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t which = *(const uint32_t *)(
			    (const char *)msg + f->quantifier_offset);
			if (which != f->id)
				continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(
			    (const char *)msg + f->quantifier_offset);
			const char *arr = *(char *const *)base;
			size_t es = field_elem_size(f);
			if ((v = json_array()) == NULL)
				goto failed;
			for (size_t k = 0; k < n; k++)
				if (json_array_append_new(
				        v, json_value(f, arr + k * es)) != 0) {
					json_decref(v);
					goto failed;
				}
		} else {
			v = json_value(f, base);
		}
		if (v == NULL || json_object_set_new(obj, f->name, v) != 0)
			goto failed;
	}
	return (obj);
failed:
	json_decref(obj);
	return (NULL);
}
