/* aff_utf8.c - see aff_utf8.h. */
#include "aff_utf8.h"

size_t
aff_utf8_seq_len(const uint8_t *p, const uint8_t *end)
{
	size_t k;
	uint32_t cp;

	if (p >= end)
		return (0);
	if (*p < 0x80)
		return (1);
	/* 0xc0, 0xc1 and 0xf5.. only ever start an overlong form or a code
	 * point past U+10FFFF. */
	if (*p >= 0xc2 && *p <= 0xdf) {
		k = 2;
		cp = *p & 0x1f;
	} else if (*p >= 0xe0 && *p <= 0xef) {
		k = 3;
		cp = *p & 0x0f;
	} else if (*p >= 0xf0 && *p <= 0xf4) {
		k = 4;
		cp = *p & 0x07;
	} else
		return (0);
	if ((size_t)(end - p) < k)
		return (0);
	for (size_t i = 1; i < k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return (0);
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return (0);
	return (k);
}

int
aff_utf8_valid(const uint8_t *s, size_t len)
{
	const uint8_t *p, *end;
	size_t k;

	if (len == 0)
		return (1);
	for (p = s, end = s + len; p < end; p += k) {
		if (*p == 0)
			return (0);
		if (*p < 0x80) /* most text: no call */
			k = 1;
		else if ((k = aff_utf8_seq_len(p, end)) == 0)
			return (0);
	}
	return (1);
}
