/*
 * framing.h - the request framing checks civetweb 1.15 does not make.
 *
 * civetweb parses the request line and the headers in place and is lenient
 * where RFC 9112 asks a server to refuse: Transfer-Encoding silently wins
 * over Content-Length, the first of two Content-Lengths wins, Content-Length
 * is read with strtoll ("+33", "0x21" and "33x" pass), only 64 headers are
 * kept and the rest dropped, parsing stops without a word at an obs-fold
 * line (a line starting with a space) and ignores what follows, and a %00
 * in the path is decoded into a NUL that cuts the path short. Behind a
 * keep-alive proxy that frames the request another way, each lets one
 * request hide a second one (request smuggling). framing_check() looks at
 * what civetweb parsed, and at the raw header bytes it left in its buffer,
 * and says whether the request must be refused.
 */
#ifndef FRAMING_H
#define FRAMING_H

#include <stddef.h>

struct mg_request_info;

/*
 * 0 when ri is framed unambiguously; else the status to answer (400, or
 * 431 when civetweb dropped header lines it had no room for) with *why set
 * to a static sentence for the error message. The connection must be
 * closed after such an answer: what follows on it cannot be framed.
 * max_head is civetweb's max_request_size (the size of its buffer).
 */
int framing_check(const struct mg_request_info *ri, size_t max_head,
    const char **why);

#endif /* FRAMING_H */
