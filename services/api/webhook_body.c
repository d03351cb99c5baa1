/* webhook_body.c - see webhook_body.h. */
#include "webhook_body.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aff_err.h"
#include "aff_status.h"
#include "aff_utf8.h"

struct cursor {
	const uint8_t *p, *end;
	char *err;
	size_t errlen;
};

static int
fail(struct cursor *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return (AFF_INVALID_ARGUMENT);
}

static void
skip_ws(struct cursor *c)
{
	while (c->p < c->end &&
	    (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int
hex4(const uint8_t *p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		uint8_t ch = p[i];
		*v <<= 4;
		if (ch >= '0' && ch <= '9')
			*v |= ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			*v |= ch - 'a' + 10u;
		else if (ch >= 'A' && ch <= 'F')
			*v |= ch - 'A' + 10u;
		else
			return (-1);
	}
	return (0);
}

/* Appends code point cp as UTF-8; -1 when out of room. */
static int
put_utf8(char *out, size_t cap, size_t *n, unsigned cp)
{
	char b[4];
	size_t k;

	if (cp < 0x80) {
		b[0] = (char)cp;
		k = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		k = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		k = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		k = 4;
	}
	if (*n + k >= cap)
		return (-1);
	memcpy(out + *n, b, k);
	*n += k;
	return (0);
}

/*
 * Reads a JSON string (c->p at its opening quote) into out (NUL-ended,
 * at most cap - 1 bytes); *chars counts its characters. NUL (\u0000),
 * control characters, bad escapes, lone surrogates and invalid UTF-8 are
 * errors.
 */
static int
read_string(struct cursor *c, char *out, size_t cap, size_t *chars,
    const char *what)
{
	size_t n = 0, k;
	unsigned cp, lo;

	*chars = 0;
	c->p++; /* the quote */
	while (c->p < c->end && *c->p != '"') {
		if (*c->p < 0x20)
			return (fail(c, "%s contains a control character", what));
		if (*c->p == '\\') {
			if (c->end - c->p < 2)
				break;
			switch (c->p[1]) {
			case '"': cp = '"'; break;
			case '\\': cp = '\\'; break;
			case '/': cp = '/'; break;
			case 'b': cp = '\b'; break;
			case 'f': cp = '\f'; break;
			case 'n': cp = '\n'; break;
			case 'r': cp = '\r'; break;
			case 't': cp = '\t'; break;
			case 'u':
				if (c->end - c->p < 6 || hex4(c->p + 2, &cp) != 0)
					return (fail(c, "%s has a bad \\u escape", what));
				c->p += 4;
				if (cp >= 0xdc00 && cp <= 0xdfff)
					return (fail(c, "%s has a lone surrogate", what));
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (c->end - c->p < 8 || c->p[2] != '\\' ||
					    c->p[3] != 'u' || hex4(c->p + 4, &lo) != 0 ||
					    lo < 0xdc00 || lo > 0xdfff)
						return (fail(c, "%s has a lone surrogate", what));
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					c->p += 6;
				}
				if (cp == 0)
					return (fail(c, "%s contains NUL", what));
				break;
			default:
				return (fail(c, "%s has a bad escape", what));
			}
			c->p += 2;
			if (put_utf8(out, cap, &n, cp) != 0)
				return (fail(c, "%s is too long", what));
			(*chars)++;
			continue;
		}
		if ((k = aff_utf8_seq_len(c->p, c->end)) == 0)
			return (fail(c, "%s is not valid UTF-8", what));
		if (n + k >= cap)
			return (fail(c, "%s is too long", what));
		memcpy(out + n, c->p, k);
		n += k;
		c->p += k;
		(*chars)++;
	}
	if (c->p >= c->end)
		return (fail(c, "the body is not valid JSON: a string is not closed"));
	c->p++;
	out[n] = '\0';
	return (AFF_OK);
}

/* The extent of a JSON number token at c->p (not validated). */
static size_t
number_len(const struct cursor *c)
{
	const uint8_t *q = c->p;

	while (q < c->end && ((*q >= '0' && *q <= '9') || *q == '-' ||
	                         *q == '+' || *q == '.' || *q == 'e' || *q == 'E'))
		q++;
	return ((size_t)(q - c->p));
}

/* A positive id: digits only, no leading zero, fits int64. */
static int
parse_id(const uint8_t *s, size_t n, int64_t *v)
{
	if (n == 0 || n > 18 || s[0] == '0')
		return (-1);
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		*v = *v * 10 + (s[i] - '0');
	}
	return (0);
}

/*
 * Money from the number's own text: digits, then optionally '.' and one or
 * two digits. No sign, no exponent, no leading zeros (JSON's own rule).
 */
static int
parse_money(const uint8_t *s, size_t n, int64_t *cents)
{
	size_t i = 0, dec = 0;
	int64_t units = 0, frac = 0;

	if (n == 0 || s[0] < '0' || s[0] > '9')
		return (-1);
	if (s[0] == '0' && n > 1 && s[1] != '.')
		return (-1);
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (units > WEBHOOK_MONEY_MAX_CENTS / 100)
			return (-1);
		units = units * 10 + (s[i] - '0');
	}
	if (i < n) {
		if (s[i] != '.' || i + 1 == n)
			return (-1);
		for (i++; i < n; i++, dec++) {
			if (s[i] < '0' || s[i] > '9' || dec == 2)
				return (-1);
			frac = frac * 10 + (s[i] - '0');
		}
		if (dec == 1)
			frac *= 10;
	}
	*cents = units * 100 + frac;
	return (*cents <= WEBHOOK_MONEY_MAX_CENTS ? 0 : -1);
}

enum field {
	F_ORDER_ID,
	F_ADVERTISER_ID,
	F_EDITOR_ID,
	F_USER_ID,
	F_AMOUNT,
	F_COMMISSION,
	F_CURRENCY,
	F_STATUS,
	F_COUNT,
};

static const char *const field_names[F_COUNT] = { "order_id",
	"advertiser_id", "editor_id", "user_id", "amount", "commission",
	"currency", "status" };

/* Reads one value for field f. */
static int
read_field(struct cursor *c, enum field f, struct webhook_order *o,
    int64_t *user_id)
{
	const char *name = field_names[f];
	size_t n, chars;
	char buf[64];

	if (f == F_ORDER_ID || f == F_CURRENCY || f == F_STATUS) {
		if (*c->p != '"')
			return (fail(c, "%s must be a string", name));
		if (f == F_ORDER_ID) {
			if (read_string(c, o->order_id, sizeof(o->order_id), &chars,
			        name) != AFF_OK)
				return (AFF_INVALID_ARGUMENT);
			if (chars == 0 || chars > WEBHOOK_ORDER_ID_MAX)
				return (fail(c, "order_id must be 1 to %d characters",
				    WEBHOOK_ORDER_ID_MAX));
			return (AFF_OK);
		}
		if (read_string(c, buf, sizeof(buf), &chars, name) != AFF_OK)
			return (AFF_INVALID_ARGUMENT);
		if (f == F_CURRENCY) {
			if (strlen(buf) != 3 || buf[0] < 'A' || buf[0] > 'Z' ||
			    buf[1] < 'A' || buf[1] > 'Z' || buf[2] < 'A' ||
			    buf[2] > 'Z')
				return (fail(c, "currency must be an ISO 4217 code such "
				                "as EUR"));
			memcpy(o->currency, buf, 4);
			return (AFF_OK);
		}
		if (aff_status_parse(AFF_ORDER_STATUS, buf) == 0) {
			char words[128];

			return (fail(c, "status must be %s",
			    aff_status_list(AFF_ORDER_STATUS, words, sizeof(words))));
		}
		snprintf(o->status, sizeof(o->status), "%.15s", buf);
		return (AFF_OK);
	}
	n = number_len(c);
	if (n == 0)
		return (fail(c, "%s must be a number", name));
	if (f == F_AMOUNT || f == F_COMMISSION) {
		if (parse_money(c->p, n,
		        f == F_AMOUNT ? &o->amount_cents : &o->commission_cents) != 0)
			return (fail(c,
			    "%s must be a number of at least 0 with at most two "
			    "decimals",
			    name));
	} else if (parse_id(c->p, n,
	               f == F_ADVERTISER_ID ? &o->advertiser_id
	               : f == F_EDITOR_ID   ? &o->editor_id
	                                    : user_id) != 0)
		return (fail(c, "%s must be a positive integer", name));
	c->p += n;
	return (AFF_OK);
}

int
webhook_body_parse(const uint8_t *body, size_t len, struct webhook_order *o,
    char *err, size_t errlen)
{
	struct cursor c = { body, body + len, err, errlen };
	int seen[F_COUNT] = { 0 };
	int64_t user_id = 0;
	char key[40];
	size_t chars;
	int f;

	memset(o, 0, sizeof(*o));
	skip_ws(&c);
	if (c.p >= c.end || *c.p != '{')
		return (fail(&c, "the body must be a JSON object"));
	c.p++;
	skip_ws(&c);
	if (c.p < c.end && *c.p == '}')
		c.p++;
	else
		for (;;) {
			skip_ws(&c);
			if (c.p >= c.end || *c.p != '"')
				return (fail(&c, "the body is not valid JSON: a key was "
				                 "expected at byte %zu",
				    (size_t)(c.p - body)));
			if (read_string(&c, key, sizeof(key), &chars, "a key") !=
			    AFF_OK)
				return (AFF_INVALID_ARGUMENT);
			for (f = 0; f < F_COUNT; f++)
				if (strcmp(key, field_names[f]) == 0)
					break;
			if (f == F_COUNT)
				return (fail(&c, "unknown field '%.32s'", key));
			if (seen[f]++)
				return (fail(&c, "%s is given twice", key));
			skip_ws(&c);
			if (c.p >= c.end || *c.p != ':')
				return (fail(&c, "the body is not valid JSON: ':' "
				                 "expected at byte %zu",
				    (size_t)(c.p - body)));
			c.p++;
			skip_ws(&c);
			if (c.p >= c.end)
				return (fail(&c, "the body is not valid JSON: it ends "
				                 "early"));
			if (read_field(&c, (enum field)f, o, &user_id) != AFF_OK)
				return (AFF_INVALID_ARGUMENT);
			skip_ws(&c);
			if (c.p < c.end && *c.p == ',') {
				c.p++;
				continue;
			}
			if (c.p < c.end && *c.p == '}') {
				c.p++;
				break;
			}
			return (fail(&c, "the body is not valid JSON: ',' or '}' "
			                 "expected at byte %zu",
			    (size_t)(c.p - body)));
		}
	skip_ws(&c);
	if (c.p != c.end)
		return (fail(&c, "the body is not valid JSON: bytes follow the "
		                 "object"));
	if (!seen[F_ORDER_ID])
		return (fail(&c, "order_id is required"));
	if (!seen[F_ADVERTISER_ID])
		return (fail(&c, "advertiser_id is required"));
	if (seen[F_USER_ID]) {
		if (seen[F_EDITOR_ID] && o->editor_id != user_id)
			return (fail(&c, "editor_id and user_id disagree"));
		o->editor_id = user_id;
	}
	if (!seen[F_EDITOR_ID] && !seen[F_USER_ID])
		return (fail(&c, "editor_id (or user_id) is required"));
	if (!seen[F_AMOUNT])
		return (fail(&c, "amount is required"));
	if (!seen[F_COMMISSION])
		return (fail(&c, "commission is required"));
	if (o->commission_cents > o->amount_cents)
		return (fail(&c, "commission must not be more than amount"));
	/* No currency: the advertiser's (order_put), "" here. */
	return (AFF_OK);
}
