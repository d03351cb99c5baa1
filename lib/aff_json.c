/* aff_json.c - see aff_json.h. */
#include "aff_json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aff_err.h"
#include "aff_utf8.h"


size_t
aff_json_elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
		return (8);
	case PROTOBUF_C_TYPE_BOOL:
		return (sizeof(protobuf_c_boolean));
	case PROTOBUF_C_TYPE_ENUM:
		return (sizeof(int));
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return (sizeof(void *));
	default:
		return (4);
	}
}

void
aff_buf_init(struct aff_buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}

void
aff_buf_fini(struct aff_buf *b)
{
	free(b->data);
	aff_buf_init(b);
}

/* Makes room for n more bytes (and a NUL); 0 or -1 (b->failed set). */
static int
buf_reserve(struct aff_buf *b, size_t n)
{
	char *p;
	size_t cap;

	if (b->failed)
		return (-1);
	if (b->len + n + 1 <= b->cap)
		return (0);
	cap = b->cap > 0 ? b->cap : 256;
	while (cap < b->len + n + 1)
		cap *= 2;
	if ((p = realloc(b->data, cap)) == NULL) {
		b->failed = 1;
		return (-1);
	}
	b->data = p;
	b->cap = cap;
	return (0);
}

void
aff_buf_add(struct aff_buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) != 0)
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
aff_buf_printf(struct aff_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* A JSON string; text that is not UTF-8 becomes U+FFFD rather than
 * failing the whole reply. */
static void
write_string(struct aff_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = s != NULL ? strlen(s) : 0;
	char *o;

	if (!aff_utf8_valid((const uint8_t *)s, n)) {
		aff_buf_add(b, "\"\xef\xbf\xbd\"", 5);
		return;
	}
	/* One reservation for the worst case (every byte a \u00XX), then
	 * written in place: a list of advertisers is mostly short strings. */
	if (buf_reserve(b, 6 * n + 2) != 0)
		return;
	o = b->data + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\') {
			*o++ = (char)c;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hex[c >> 4];
			o[4] = hex[c & 15];
			o += 5;
		}
	}
	*o++ = '"';
	*o = '\0';
	b->len = (size_t)(o - b->data);
}

/* "name": for a field name from a descriptor (protoc allows only letters,
 * digits and '_' there, so nothing needs escaping). */
static void
write_key(struct aff_buf *b, const char *name)
{
	size_t n = strlen(name);
	char *o;

	if (buf_reserve(b, n + 3) != 0)
		return;
	o = b->data + b->len;
	*o++ = '"';
	memcpy(o, name, n);
	o += n;
	*o++ = '"';
	*o++ = ':';
	*o = '\0';
	b->len = (size_t)(o - b->data);
}

/* An integer in decimal, without printf (a list writes hundreds). */
static void
write_uint(struct aff_buf *b, uint64_t v, int negative)
{
	char tmp[24], *e = tmp + sizeof(tmp), *p = e;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (negative)
		*--p = '-';
	aff_buf_add(b, p, (size_t)(e - p));
}

static void
write_int(struct aff_buf *b, int64_t v)
{
	write_uint(b, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0);
}

static void write_message(struct aff_buf *b, const ProtobufCMessage *m);

/* One scalar, message or enum value at p, of field f's type. */
static void
write_value(struct aff_buf *b, const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
		write_int(b, *(const int32_t *)p);
		return;
	case PROTOBUF_C_TYPE_INT64:
		write_int(b, *(const int64_t *)p);
		return;
	case PROTOBUF_C_TYPE_BOOL:
		if (*(const protobuf_c_boolean *)p)
			aff_buf_add(b, "true", 4);
		else
			aff_buf_add(b, "false", 5);
		return;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
		    f->descriptor, *(const int *)p);
		if (ev != NULL)
			write_string(b, ev->name);
		else
			write_int(b, *(const int *)p);
		return;
	}
	case PROTOBUF_C_TYPE_STRING:
		write_string(b, *(char *const *)p);
		return;
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(const ProtobufCMessage *const *)p;
		if (m != NULL)
			write_message(b, m);
		else
			aff_buf_add(b, "null", 4);
		return;
	}
	default:
		break;
	}
	/* No message the API takes or answers has a field of another kind
	 * (test_lib walks them all). */
	aff_buf_add(b, "null", 4);
}

/* Field f of m, whole: an array for a repeated field. */
static void
write_field(struct aff_buf *b, const ProtobufCMessage *m,
    const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)m + f->offset;

	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
		const char *arr = *(char *const *)base;
		size_t es = aff_json_elem_size(f);
		aff_buf_add(b, "[", 1);
		for (size_t k = 0; k < n; k++) {
			if (k > 0)
				aff_buf_add(b, ",", 1);
			write_value(b, f, arr + k * es);
		}
		aff_buf_add(b, "]", 1);
	} else
		write_value(b, f, base);
}

int
aff_json_money_name(const ProtobufCFieldDescriptor *f, char *name, size_t cap)
{
	size_t n = strlen(f->name);

	if (f->type != PROTOBUF_C_TYPE_INT64 || f->label == PROTOBUF_C_LABEL_REPEATED ||
	    n <= 6 || n - 6 >= cap || strcmp(f->name + n - 6, "_cents") != 0)
		return (0);
	memcpy(name, f->name, n - 6);
	name[n - 6] = '\0';
	return (1);
}

/* Cents as an exact decimal JSON number: 4990 -> 49.90. */
static void
write_money(struct aff_buf *b, int64_t cents)
{
	uint64_t u = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
	char frac[3] = { '.', (char)('0' + u % 100 / 10), (char)('0' + u % 10) };

	write_uint(b, u / 100, cents < 0);
	aff_buf_add(b, frac, 3);
}

static void
write_message(struct aff_buf *b, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char money[64];
	int first = 1;

	aff_buf_add(b, "{", 1);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (!first)
			aff_buf_add(b, ",", 1);
		first = 0;
		if (aff_json_money_name(f, money, sizeof(money))) {
			write_key(b, money);
			write_money(b, *(const int64_t *)((const char *)m + f->offset));
			continue;
		}
		write_key(b, f->name);
		write_field(b, m, f);
	}
	aff_buf_add(b, "}", 1);
}

int
aff_json_write_message(struct aff_buf *b, const ProtobufCMessage *m)
{
	write_message(b, m);
	return (b->failed ? AFF_RESOURCE_EXHAUSTED : AFF_OK);
}

int
aff_json_write_field(
    struct aff_buf *b, const ProtobufCMessage *m, const char *field)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, field);

	if (f == NULL)
		return (AFF_NOT_FOUND);
	write_field(b, m, f);
	return (b->failed ? AFF_RESOURCE_EXHAUSTED : AFF_OK);
}

json_t *
aff_json_from_message(const ProtobufCMessage *msg)
{
	struct aff_buf b;
	json_t *j = NULL;

	aff_buf_init(&b);
	if (aff_json_write_message(&b, msg) == AFF_OK)
		j = json_loadb(b.data, b.len, 0, NULL);
	aff_buf_fini(&b);
	return (j);
}
