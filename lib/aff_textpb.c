/* aff_textpb.c - see aff_textpb.h. */
#include "aff_textpb.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aff_err.h"
#include "aff_utf8.h"

/* Deeper nesting than any message of the API; bounds the recursion. */
#define TEXTPB_MAX_DEPTH 32

struct tp {
	const char *s, *p; /* the text, and where the parser is */
	char *err;
	size_t errlen;
	int rv; /* the first failure, kept */
};

/* Records the first failure with its line and column; returns it. */
static int tp_fail(struct tp *t, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
tp_fail(struct tp *t, int rv, const char *fmt, ...)
{
	int line = 1, col = 1;
	va_list ap;
	size_t n;

	if (t->rv != AFF_OK)
		return (t->rv);
	t->rv = rv;
	for (const char *q = t->s; q < t->p; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else
			col++;
	}
	n = (size_t)snprintf(t->err, t->errlen, "line %d, column %d: ", line, col);
	if (n < t->errlen) {
		va_start(ap, fmt);
		vsnprintf(t->err + n, t->errlen - n, fmt, ap);
		va_end(ap);
	}
	return (rv);
}

/* Skips spaces, newlines and # comments. */
static void
tp_space(struct tp *t)
{
	for (;;) {
		while (isspace((unsigned char)*t->p))
			t->p++;
		if (*t->p != '#')
			return;
		while (*t->p != '\0' && *t->p != '\n')
			t->p++;
	}
}

/* An identifier ([A-Za-z_][A-Za-z0-9_]*) into buf; 0 when there is none
 * or it is too long. */
static int
tp_ident(struct tp *t, char *buf, size_t cap)
{
	size_t n = 0;

	if (!isalpha((unsigned char)*t->p) && *t->p != '_')
		return (0);
	while (isalnum((unsigned char)t->p[n]) || t->p[n] == '_')
		n++;
	if (n >= cap)
		return (0);
	memcpy(buf, t->p, n);
	buf[n] = '\0';
	t->p += n;
	return (1);
}

/* A scalar's token (number, enum name, bool) into buf. */
static int
tp_token(struct tp *t, char *buf, size_t cap)
{
	size_t n = 0;
	const char *q = t->p;

	if (*q == '-' || *q == '+')
		q++;
	while (isalnum((unsigned char)*q) || *q == '.' || *q == '_' ||
	    ((*q == '+' || *q == '-') && (q[-1] == 'e' || q[-1] == 'E') &&
	        !(t->p[0] == '0' && (t->p[1] == 'x' || t->p[1] == 'X'))))
		q++;
	n = (size_t)(q - t->p);
	if (n == 0 || n >= cap)
		return (0);
	memcpy(buf, t->p, n);
	buf[n] = '\0';
	t->p = q;
	return (1);
}

/* Appends the UTF-8 encoding of code point cp. */
static void
put_utf8(struct aff_buf *b, unsigned long cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	aff_buf_add(b, u, n);
}

/* Reads N hex digits (at most max) at t->p into *v; 0 when there is none. */
static int
tp_hex(struct tp *t, int max, unsigned long *v)
{
	int n = 0;

	*v = 0;
	while (n < max && isxdigit((unsigned char)*t->p)) {
		char c = *t->p++;
		*v = *v * 16 +
		    (unsigned long)(isdigit((unsigned char)c) ? c - '0'
		                                            : (c | 0x20) - 'a' + 10);
		n++;
	}
	return (n);
}

/* One or more adjacent quoted strings, unescaped, into b. */
static int
tp_string(struct tp *t, struct aff_buf *b)
{
	if (*t->p != '"' && *t->p != '\'')
		return (tp_fail(t, AFF_INVALID_ARGUMENT, "expected a quoted string"));
	while (*t->p == '"' || *t->p == '\'') {
		char quote = *t->p++;

		while (*t->p != quote) {
			unsigned long v;
			char c = *t->p;

			if (c == '\0' || c == '\n')
				return (tp_fail(t, AFF_INVALID_ARGUMENT,
				    "the string has no closing %c", quote));
			t->p++;
			if (c != '\\') {
				aff_buf_add(b, &c, 1);
				continue;
			}
			if (*t->p == '\0' || *t->p == '\n')
				return (tp_fail(t, AFF_INVALID_ARGUMENT,
				    "the string has no closing %c (it ends in "
				    "a lone \\)", quote));
			c = *t->p++;
			switch (c) {
			case 'n': aff_buf_add(b, "\n", 1); break;
			case 't': aff_buf_add(b, "\t", 1); break;
			case 'r': aff_buf_add(b, "\r", 1); break;
			case 'a': aff_buf_add(b, "\a", 1); break;
			case 'b': aff_buf_add(b, "\b", 1); break;
			case 'f': aff_buf_add(b, "\f", 1); break;
			case 'v': aff_buf_add(b, "\v", 1); break;
			case '\\': case '\'': case '"': case '?':
				aff_buf_add(b, &c, 1);
				break;
			case 'x':
				if (tp_hex(t, 2, &v) == 0)
					return (tp_fail(t, AFF_INVALID_ARGUMENT,
					    "\\x needs a hex digit"));
				c = (char)v;
				aff_buf_add(b, &c, 1);
				break;
			case 'u':
			case 'U':
				if (tp_hex(t, c == 'u' ? 4 : 8, &v) != (c == 'u' ? 4 : 8) ||
				    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
					return (tp_fail(t, AFF_INVALID_ARGUMENT,
					    "\\%c needs %d hex digits of a Unicode "
					    "scalar value", c, c == 'u' ? 4 : 8));
				put_utf8(b, v);
				break;
			default:
				if (c >= '0' && c <= '7') {
					v = (unsigned long)(c - '0');
					for (int k = 0; k < 2 && *t->p >= '0' && *t->p <= '7'; k++)
						v = v * 8 + (unsigned long)(*t->p++ - '0');
					if (v > 0xff)
						return (tp_fail(t, AFF_INVALID_ARGUMENT,
						    "octal escape above \\377"));
					c = (char)v;
					aff_buf_add(b, &c, 1);
					break;
				}
				t->p--;
				return (tp_fail(t, AFF_INVALID_ARGUMENT,
				    "unknown escape \\%c", c != '\0' ? c : '0'));
			}
		}
		t->p++;
		tp_space(t);
	}
	if (b->failed)
		return (tp_fail(t, AFF_RESOURCE_EXHAUSTED, "out of memory"));
	return (AFF_OK);
}

/* The size of one element of f's storage. */
static size_t
elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return (8);
	case PROTOBUF_C_TYPE_BOOL:
		return (sizeof(protobuf_c_boolean));
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return (sizeof(void *));
	case PROTOBUF_C_TYPE_BYTES:
		return (sizeof(ProtobufCBinaryData));
	default:
		return (4);
	}
}

/* Parses a scalar (not a message) of f's type into the storage at v. */
static int
tp_scalar(struct tp *t, const ProtobufCFieldDescriptor *f, void *v)
{
	char tok[128], *end;
	const char *at = t->p;

	if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES) {
		struct aff_buf b;
		int rv;

		aff_buf_init(&b);
		if ((rv = tp_string(t, &b)) != AFF_OK) {
			aff_buf_fini(&b);
			return (rv);
		}
		if (f->type == PROTOBUF_C_TYPE_BYTES) {
			ProtobufCBinaryData *bd = v;
			bd->len = b.len;
			bd->data = (uint8_t *)b.data; /* NULL when empty */
			return (AFF_OK);
		}
		if (memchr(b.data != NULL ? b.data : "", '\0', b.len) != NULL ||
		    !aff_utf8_valid((const uint8_t *)(b.data != NULL ? b.data : ""),
		        b.len)) {
			aff_buf_fini(&b);
			t->p = at;
			return (tp_fail(t, AFF_INVALID_ARGUMENT,
			    "%s is a string: UTF-8 without \\0 (bytes fields take any)",
			    f->name));
		}
		if (b.data == NULL && (b.data = strdup("")) == NULL)
			return (tp_fail(t, AFF_RESOURCE_EXHAUSTED, "out of memory"));
		*(char **)v = b.data;
		return (AFF_OK);
	}
	if (*t->p == '"' || *t->p == '\'')
		return (tp_fail(t, AFF_INVALID_ARGUMENT,
		    "%s is not a string field: write its value unquoted",
		    f->name));
	if (!tp_token(t, tok, sizeof(tok)))
		return (tp_fail(t, AFF_INVALID_ARGUMENT, "expected a value for %s",
		    f->name));
	errno = 0;
	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
		if (strcmp(tok, "true") == 0 || strcmp(tok, "True") == 0 ||
		    strcmp(tok, "t") == 0 || strcmp(tok, "1") == 0)
			*(protobuf_c_boolean *)v = 1;
		else if (strcmp(tok, "false") == 0 || strcmp(tok, "False") == 0 ||
		    strcmp(tok, "f") == 0 || strcmp(tok, "0") == 0)
			*(protobuf_c_boolean *)v = 0;
		else
			goto bad;
		return (AFF_OK);
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, tok);
		long long n;
		if (ev != NULL) {
			*(int *)v = ev->value;
			return (AFF_OK);
		}
		n = strtoll(tok, &end, 0);
		if (*end != '\0' || errno != 0 || n < INT32_MIN || n > INT32_MAX ||
		    !(isdigit((unsigned char)tok[0]) || tok[0] == '-'))
			goto bad;
		*(int *)v = (int)n;
		return (AFF_OK);
	}
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		size_t n = strlen(tok);
		double d;
		/* 1.5f is C++'s spelling; hex has f as a digit. */
		if (n > 1 && (tok[n - 1] == 'f' || tok[n - 1] == 'F') &&
		    strchr(tok, 'x') == NULL && strchr(tok, 'X') == NULL &&
		    strcasecmp(tok, "inf") != 0 && strcasecmp(tok, "-inf") != 0)
			tok[n - 1] = '\0';
		d = strtod(tok, &end);
		if (*end != '\0' || end == tok)
			goto bad;
		if (f->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)v = (float)d;
		else
			*(double *)v = d;
		return (AFF_OK);
	}
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: {
		unsigned long long n;
		if (!isdigit((unsigned char)tok[0]))
			goto bad;
		n = strtoull(tok, &end, 0);
		if (*end != '\0' || errno != 0)
			goto bad;
		if (elem_size(f) == 4) {
			if (n > UINT32_MAX)
				goto bad;
			*(uint32_t *)v = (uint32_t)n;
		} else
			*(uint64_t *)v = n;
		return (AFF_OK);
	}
	default: {
		long long n;
		if (!isdigit((unsigned char)tok[0]) && tok[0] != '-')
			goto bad;
		n = strtoll(tok, &end, 0);
		if (*end != '\0' || errno != 0)
			goto bad;
		if (elem_size(f) == 4) {
			if (n < INT32_MIN || n > INT32_MAX)
				goto bad;
			*(int32_t *)v = (int32_t)n;
		} else
			*(int64_t *)v = n;
		return (AFF_OK);
	}
	}
bad:
	t->p = at;
	if (f->type == PROTOBUF_C_TYPE_ENUM)
		return (tp_fail(t, AFF_INVALID_ARGUMENT,
		    "'%s' is not a value of %s (%s)", tok,
		    ((const ProtobufCEnumDescriptor *)f->descriptor)->name, f->name));
	return (tp_fail(t, AFF_INVALID_ARGUMENT, "'%s' is not a valid %s for %s",
	    tok,
	    f->type == PROTOBUF_C_TYPE_BOOL ? "bool (true or false)"
	    : f->type == PROTOBUF_C_TYPE_FLOAT || f->type == PROTOBUF_C_TYPE_DOUBLE
	        ? "number"
	    : elem_size(f) == 4 ? "32-bit integer"
	                        : "64-bit integer",
	    f->name));
}

static int tp_message(struct tp *t, ProtobufCMessage *m, char close, int depth);

/* One value of field f of m (an element, when f is repeated). */
static int
tp_value(struct tp *t, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    int depth)
{
	char *base = (char *)m;
	void *slot;
	size_t *n = NULL;

	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		void **arr = (void **)(base + f->offset);
		void *grown;

		n = (size_t *)(base + f->quantifier_offset);
		if ((grown = realloc(*arr, (*n + 1) * elem_size(f))) == NULL)
			return (tp_fail(t, AFF_RESOURCE_EXHAUSTED, "out of memory"));
		*arr = grown;
		slot = (char *)grown + *n * elem_size(f);
	} else
		slot = base + f->offset;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		const ProtobufCMessageDescriptor *sd = f->descriptor;
		ProtobufCMessage *sub;
		char close;

		if (*t->p != '{' && *t->p != '<')
			return (tp_fail(t, AFF_INVALID_ARGUMENT,
			    "expected '{' to open %s (%s)", f->name, sd->name));
		close = *t->p == '{' ? '}' : '>';
		if (depth >= TEXTPB_MAX_DEPTH)
			return (tp_fail(t, AFF_INVALID_ARGUMENT,
			    "nested deeper than %d", TEXTPB_MAX_DEPTH));
		t->p++;
		if ((sub = malloc(sd->sizeof_message)) == NULL)
			return (tp_fail(t, AFF_RESOURCE_EXHAUSTED, "out of memory"));
		protobuf_c_message_init(sd, sub);
		/* Linked first, so that freeing m frees it whatever follows. */
		*(ProtobufCMessage **)slot = sub;
		if (n != NULL)
			(*n)++;
		return (tp_message(t, sub, close, depth + 1));
	}
	if (tp_scalar(t, f, slot) != AFF_OK)
		return (t->rv);
	if (n != NULL)
		(*n)++;
	return (AFF_OK);
}

/* The fields of m up to close ('\0': the end of the text). */
static int
tp_message(struct tp *t, ProtobufCMessage *m, char close, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	unsigned char *seen = calloc(d->n_fields + 1, 1);
	char name[128];
	int rv = AFF_OK;

	if (seen == NULL)
		return (tp_fail(t, AFF_RESOURCE_EXHAUSTED, "out of memory"));
	for (;;) {
		const ProtobufCFieldDescriptor *f;
		const char *at;
		int colon = 0;

		tp_space(t);
		if (*t->p == close) {
			if (close != '\0')
				t->p++;
			break;
		}
		if (*t->p == '\0') {
			rv = tp_fail(t, AFF_INVALID_ARGUMENT,
			    "the text ends before the '%c' that closes %s", close,
			    d->name);
			break;
		}
		at = t->p;
		if (!tp_ident(t, name, sizeof(name))) {
			rv = tp_fail(t, AFF_INVALID_ARGUMENT,
			    "expected a field name of %s", d->name);
			break;
		}
		if ((f = protobuf_c_message_descriptor_get_field_by_name(d, name)) ==
		    NULL) {
			t->p = at;
			rv = tp_fail(t, AFF_INVALID_ARGUMENT, "no field '%s' in %s",
			    name, d->name);
			break;
		}
		if (f->label != PROTOBUF_C_LABEL_REPEATED && seen[f - d->fields]) {
			t->p = at;
			rv = tp_fail(t, AFF_INVALID_ARGUMENT,
			    "%s is not repeated and is given twice", name);
			break;
		}
		seen[f - d->fields] = 1;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t *c = (uint32_t *)((char *)m + f->quantifier_offset);
			if (*c != 0 && *c != f->id) {
				t->p = at;
				rv = tp_fail(t, AFF_INVALID_ARGUMENT,
				    "%s shares a oneof with a field already given", name);
				break;
			}
			*c = f->id;
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE &&
		    f->type != PROTOBUF_C_TYPE_STRING)
			*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
		tp_space(t);
		if (*t->p == ':') {
			colon = 1;
			t->p++;
			tp_space(t);
		}
		if (!colon && f->type != PROTOBUF_C_TYPE_MESSAGE) {
			rv = tp_fail(t, AFF_INVALID_ARGUMENT, "expected ':' after %s",
			    name);
			break;
		}
		if (*t->p == '[' && f->label == PROTOBUF_C_LABEL_REPEATED) {
			t->p++;
			tp_space(t);
			while (*t->p != ']') {
				if ((rv = tp_value(t, m, f, depth)) != AFF_OK)
					break;
				tp_space(t);
				if (*t->p == ',') {
					t->p++;
					tp_space(t);
				} else if (*t->p != ']') {
					rv = tp_fail(t, AFF_INVALID_ARGUMENT,
					    "expected ',' or ']' in the list of %s", name);
					break;
				}
			}
			if (rv != AFF_OK)
				break;
			t->p++;
		} else if ((rv = tp_value(t, m, f, depth)) != AFF_OK)
			break;
		tp_space(t);
		if (*t->p == ',' || *t->p == ';')
			t->p++;
	}
	free(seen);
	return (rv);
}

int
aff_textpb_parse(const ProtobufCMessageDescriptor *d, const char *text,
    ProtobufCMessage **out, char *err, size_t errlen)
{
	struct tp t = { text, text, err, errlen, AFF_OK };
	ProtobufCMessage *m;

	*out = NULL;
	if ((m = malloc(d->sizeof_message)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	protobuf_c_message_init(d, m);
	if (tp_message(&t, m, '\0', 0) != AFF_OK) {
		protobuf_c_message_free_unpacked(m, NULL);
		return (t.rv);
	}
	*out = m;
	return (AFF_OK);
}

/* ---- writing ---- */

static void
write_quoted(struct aff_buf *b, const uint8_t *s, size_t n)
{
	aff_buf_add(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		switch (c) {
		case '\n': aff_buf_add(b, "\\n", 2); break;
		case '\r': aff_buf_add(b, "\\r", 2); break;
		case '\t': aff_buf_add(b, "\\t", 2); break;
		case '"': aff_buf_add(b, "\\\"", 2); break;
		case '\'': aff_buf_add(b, "\\'", 2); break;
		case '\\': aff_buf_add(b, "\\\\", 2); break;
		default:
			if (c < 0x20 || c >= 0x7f)
				aff_buf_printf(b, "\\%03o", c);
			else
				aff_buf_add(b, &c, 1);
		}
	}
	aff_buf_add(b, "\"", 1);
}

/* The shortest %g that reads back as the same value. */
static void
write_double(struct aff_buf *b, double d, int is_float)
{
	char s[64];

	if (isnan(d)) {
		aff_buf_add(b, "nan", 3);
		return;
	}
	if (isinf(d)) {
		aff_buf_printf(b, "%sinf", d < 0 ? "-" : "");
		return;
	}
	for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
		snprintf(s, sizeof(s), "%.*g", prec, d);
		if (is_float ? (float)strtod(s, NULL) == (float)d
		             : strtod(s, NULL) == d)
			break;
	}
	aff_buf_add(b, s, strlen(s));
}

static void write_fields(struct aff_buf *b, const ProtobufCMessage *m, int depth);

/* One value of f stored at v, on its own line. */
static void
write_value(struct aff_buf *b, const ProtobufCFieldDescriptor *f,
    const void *v, int depth)
{
	for (int i = 0; i < depth; i++)
		aff_buf_add(b, "  ", 2);
	aff_buf_add(b, f->name, strlen(f->name));
	switch (f->type) {
	case PROTOBUF_C_TYPE_MESSAGE:
		aff_buf_add(b, " {\n", 3);
		if (*(ProtobufCMessage *const *)v != NULL)
			write_fields(b, *(ProtobufCMessage *const *)v, depth + 1);
		for (int i = 0; i < depth; i++)
			aff_buf_add(b, "  ", 2);
		aff_buf_add(b, "}\n", 2);
		return;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		aff_buf_printf(b, ": %d", (int)*(const int32_t *)v);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		aff_buf_printf(b, ": %u", (unsigned)*(const uint32_t *)v);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		aff_buf_printf(b, ": %lld", (long long)*(const int64_t *)v);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		aff_buf_printf(b, ": %llu", (unsigned long long)*(const uint64_t *)v);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		aff_buf_add(b, ": ", 2);
		write_double(b, *(const float *)v, 1);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		aff_buf_add(b, ": ", 2);
		write_double(b, *(const double *)v, 0);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		aff_buf_printf(b, ": %s",
		    *(const protobuf_c_boolean *)v ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
		    f->descriptor, *(const int *)v);
		if (ev != NULL)
			aff_buf_printf(b, ": %s", ev->name);
		else
			aff_buf_printf(b, ": %d", *(const int *)v);
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)v;
		aff_buf_add(b, ": ", 2);
		write_quoted(b, (const uint8_t *)(s != NULL ? s : ""),
		    s != NULL ? strlen(s) : 0);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *bd = v;
		aff_buf_add(b, ": ", 2);
		write_quoted(b, bd->data, bd->len);
		break;
	}
	}
	aff_buf_add(b, "\n", 1);
}

/* Whether a singular proto3 field holds its default (and is left out). */
static int
is_default(const ProtobufCFieldDescriptor *f, const void *v)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
		return (!*(const protobuf_c_boolean *)v);
	case PROTOBUF_C_TYPE_STRING:
		return (*(char *const *)v == NULL || **(char *const *)v == '\0');
	case PROTOBUF_C_TYPE_BYTES:
		return (((const ProtobufCBinaryData *)v)->len == 0);
	case PROTOBUF_C_TYPE_MESSAGE:
		return (*(void *const *)v == NULL);
	case PROTOBUF_C_TYPE_DOUBLE:
		return (*(const double *)v == 0 && !signbit(*(const double *)v));
	case PROTOBUF_C_TYPE_FLOAT:
		return (*(const float *)v == 0 && !signbit(*(const float *)v));
	default:
		return (elem_size(f) == 8 ? *(const uint64_t *)v == 0
		                          : *(const uint32_t *)v == 0);
	}
}

static void
write_fields(struct aff_buf *b, const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *v = base + f->offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const char *arr = *(char *const *)v;
			for (size_t k = 0; k < n; k++)
				write_value(b, f, arr + k * elem_size(f), depth);
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
				continue;
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE &&
		    f->type != PROTOBUF_C_TYPE_STRING) {
			if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
				continue;
		} else if (f->label != PROTOBUF_C_LABEL_REQUIRED && is_default(f, v))
			continue;
		write_value(b, f, v, depth);
	}
}

int
aff_textpb_write(struct aff_buf *b, const ProtobufCMessage *m)
{
	write_fields(b, m, 0);
	return (b->failed ? AFF_RESOURCE_EXHAUSTED : AFF_OK);
}
