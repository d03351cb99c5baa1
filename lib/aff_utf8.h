/*
 * aff_utf8.h - the one check of UTF-8 for every part that takes text from
 * outside: the protobuf wire check (aff_wire.c), the webhook body parser
 * and the JSON writer. Well-formed means what RFC 3629 says: no overlong
 * forms, no surrogates (U+D800..U+DFFF), nothing past U+10FFFF, no
 * sequence cut short.
 */
#ifndef AFF_UTF8_H
#define AFF_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * The length (1 to 4) of the well-formed sequence that starts at p and
 * ends before end, or 0 when there is none (p == end included). A NUL
 * byte is a sequence of 1, as U+0000 is UTF-8; for scanners that decide
 * for themselves what a control character means.
 */
size_t aff_utf8_seq_len(const uint8_t *p, const uint8_t *end);

/* 1 when s[0..len) is well-formed UTF-8 and holds no NUL (a C string or
 * a SQLite text would end there and read as something else), else 0.
 * s may be NULL when len is 0. */
int aff_utf8_valid(const uint8_t *s, size_t len);

#endif /* AFF_UTF8_H */
