/* aff_json.c - see aff_json.h. */
#include "aff_json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aff_err.h"
#include "aff_util.h"

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

ProtobufCMessage *
aff_message_new(const ProtobufCMessageDescriptor *d, aff_arena *a)
{
	ProtobufCMessage *m = aff_arena_alloc(a, d->sizeof_message);

	if (m != NULL)
		d->message_init(m);
	return (m);
}

static int
json_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return (AFF_INVALID_ARGUMENT);
}

/* Checks v against the field's integer range; stores it at p. */
static int
store_int(const ProtobufCFieldDescriptor *f, long long v, void *p, char *err,
    size_t errlen)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (v < INT32_MIN || v > INT32_MAX)
			return (json_err(err, errlen, "%s is out of range", f->name));
		*(int32_t *)p = (int32_t)v;
		return (AFF_OK);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (v < 0 || v > (long long)UINT32_MAX)
			return (json_err(err, errlen, "%s is out of range", f->name));
		*(uint32_t *)p = (uint32_t)v;
		return (AFF_OK);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (v < 0)
			return (json_err(err, errlen, "%s is out of range", f->name));
		*(uint64_t *)p = (uint64_t)v;
		return (AFF_OK);
	default:
		*(int64_t *)p = (int64_t)v;
		return (AFF_OK);
	}
}

static int
is_int_type(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return (1);
	default:
		return (0);
	}
}

/* Sets one value of field f at p from JSON value v. */
static int
json_set_value(const ProtobufCFieldDescriptor *f, const json_t *v, void *p,
    aff_arena *a, char *err, size_t errlen)
{
	if (is_int_type(f->type)) {
		if (!json_is_integer(v))
			return (json_err(err, errlen, "%s must be an integer", f->name));
		return (store_int(f, json_integer_value(v), p, err, errlen));
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		if (!json_is_number(v))
			return (json_err(err, errlen, "%s must be a number", f->name));
		if (f->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)p = (float)json_number_value(v);
		else
			*(double *)p = json_number_value(v);
		return (AFF_OK);
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			return (json_err(err, errlen, "%s must be true or false",
			    f->name));
		*(protobuf_c_boolean *)p = json_is_true(v);
		return (AFF_OK);
	case PROTOBUF_C_TYPE_STRING: {
		char *s;
		if (!json_is_string(v))
			return (json_err(err, errlen, "%s must be a string", f->name));
		if (strlen(json_string_value(v)) != json_string_length(v))
			return (json_err(err, errlen, "%s must not contain NUL",
			    f->name));
		s = aff_arena_strndup(a, json_string_value(v), json_string_length(v));
		if (s == NULL)
			return (AFF_RESOURCE_EXHAUSTED);
		*(char **)p = s;
		return (AFF_OK);
	}
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev;
		if (!json_is_string(v) ||
		    (ev = protobuf_c_enum_descriptor_get_value_by_name(
		         f->descriptor, json_string_value(v))) == NULL)
			return (json_err(err, errlen, "%s must be one of the names of %s",
			    f->name,
			    ((const ProtobufCEnumDescriptor *)f->descriptor)->name));
		*(int *)p = ev->value;
		return (AFF_OK);
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *m = aff_message_new(f->descriptor, a);
		int rv;
		if (m == NULL)
			return (AFF_RESOURCE_EXHAUSTED);
		if ((rv = aff_json_to_message(v, m, a, err, errlen)) != AFF_OK)
			return (rv);
		*(ProtobufCMessage **)p = m;
		return (AFF_OK);
	}
	default:
		return (json_err(err, errlen, "%s cannot be given as JSON", f->name));
	}
}

/* Marks a oneof member as the one set. */
static void
mark_present(const ProtobufCFieldDescriptor *f, ProtobufCMessage *msg)
{
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		*(uint32_t *)((char *)msg + f->quantifier_offset) = f->id;
	else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE &&
	    f->type != PROTOBUF_C_TYPE_STRING)
		*(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) = 1;
}

int
aff_json_to_message(const json_t *obj, ProtobufCMessage *msg, aff_arena *a,
    char *err, size_t errlen)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	const char *key;
	json_t *v;
	int rv;

	if (!json_is_object(obj))
		return (json_err(err, errlen, "expected a JSON object"));
	json_object_foreach((json_t *)obj, key, v)
	{
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field_by_name(d, key);
		char *p;

		if (f == NULL)
			return (json_err(err, errlen, "unknown field '%.64s'", key));
		if (json_is_null(v))
			continue;
		p = (char *)msg + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n, es = field_elem_size(f);
			char *arr;
			if (!json_is_array(v))
				return (json_err(err, errlen, "%s must be an array",
				    f->name));
			n = json_array_size(v);
			if ((arr = aff_arena_alloc(a, es * (n > 0 ? n : 1))) == NULL)
				return (AFF_RESOURCE_EXHAUSTED);
			for (size_t i = 0; i < n; i++)
				if ((rv = json_set_value(f, json_array_get(v, i),
				         arr + i * es, a, err, errlen)) != AFF_OK)
					return (rv);
			*(size_t *)((char *)msg + f->quantifier_offset) = n;
			*(char **)p = arr;
			continue;
		}
		if ((rv = json_set_value(f, v, p, a, err, errlen)) != AFF_OK)
			return (rv);
		mark_present(f, msg);
	}
	return (AFF_OK);
}

int
aff_message_set_text(ProtobufCMessage *msg, const char *name,
    const char *value, aff_arena *a, char *err, size_t errlen)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(
	        msg->descriptor, name);
	char *p;
	int64_t n;
	json_t *j;
	int rv;

	if (f == NULL || f->label == PROTOBUF_C_LABEL_REPEATED ||
	    f->type == PROTOBUF_C_TYPE_MESSAGE) {
		json_err(err, errlen, "unknown parameter '%.64s'", name);
		return (AFF_NOT_FOUND);
	}
	p = (char *)msg + f->offset;
	if (is_int_type(f->type)) {
		if (aff_parse_int64(value, INT64_MIN, INT64_MAX, &n) != AFF_OK)
			return (json_err(err, errlen, "%s must be an integer, not '%.64s'",
			    f->name, value));
		rv = store_int(f, n, p, err, errlen);
	} else if (f->type == PROTOBUF_C_TYPE_BOOL) {
		if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
			return (json_err(err, errlen, "%s must be true or false",
			    f->name));
		*(protobuf_c_boolean *)p = strcmp(value, "true") == 0;
		rv = AFF_OK;
	} else {
		/* Strings and enums take the JSON path: the same checks. */
		if ((j = json_string(value)) == NULL)
			return (json_err(err, errlen, "%s must be valid UTF-8",
			    f->name));
		rv = json_set_value(f, j, p, a, err, errlen);
		json_decref(j);
	}
	if (rv == AFF_OK)
		mark_present(f, msg);
	return (rv);
}
