/* json_in.c - see json_in.h. */
#include "json_in.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aff_err.h"
#include "aff_json.h"
#include "aff_util.h"

static int json_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int
json_in_depth_ok(const char *buf, size_t len, int max)
{
	int depth = 0, in_string = 0;

	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (in_string) {
			if (c == '\\')
				i++; /* the escaped byte cannot end the string */
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == '"')
			in_string = 1;
		else if (c == '[' || c == '{') {
			if (++depth > max)
				return (0);
		} else if ((c == ']' || c == '}') && depth > 0)
			depth--;
	}
	return (1);
}

int
json_in_parse(const char *buf, size_t len, json_t **out, char *err,
    size_t errlen)
{
	json_error_t jerr;

	*out = NULL;
	if (!json_in_depth_ok(buf, len, JSON_IN_MAX_DEPTH))
		return (json_err(err, errlen,
		    "the body nests deeper than %d levels", JSON_IN_MAX_DEPTH));
	if ((*out = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return (json_err(err, errlen,
		    "the body is not valid JSON: %s (line %d, column %d)", jerr.text,
		    jerr.line, jerr.column));
	return (AFF_OK);
}

ProtobufCMessage *
json_in_message_new(const ProtobufCMessageDescriptor *d, aff_arena *a)
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
	if (f->type == PROTOBUF_C_TYPE_INT32) {
		if (v < INT32_MIN || v > INT32_MAX)
			return (json_err(err, errlen, "%s is out of range", f->name));
		*(int32_t *)p = (int32_t)v;
		return (AFF_OK);
	}
	*(int64_t *)p = (int64_t)v;
	return (AFF_OK);
}

/* The integer kinds the API's messages use (int32, int64): test_lib
 * checks that no message the API takes has another. */
static int
is_int_type(ProtobufCType t)
{
	return (t == PROTOBUF_C_TYPE_INT32 || t == PROTOBUF_C_TYPE_INT64);
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
		ProtobufCMessage *m = json_in_message_new(f->descriptor, a);
		int rv;
		if (m == NULL)
			return (AFF_RESOURCE_EXHAUSTED);
		if ((rv = json_in_to_message(v, m, a, err, errlen)) != AFF_OK)
			return (rv);
		*(ProtobufCMessage **)p = m;
		return (AFF_OK);
	}
	default:
		return (json_err(err, errlen, "%s cannot be given as JSON", f->name));
	}
}

int
json_in_to_message(const json_t *obj, ProtobufCMessage *msg, aff_arena *a,
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
			size_t n, es = aff_json_elem_size(f);
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
	}
	return (AFF_OK);
}

int
json_in_set_text(ProtobufCMessage *msg, const char *name,
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
	return (rv);
}
