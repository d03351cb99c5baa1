/*
 * aff_arena.h - a bump allocator that lives as long as one RPC call.
 *
 * The request message is unpacked into it, the handler builds its response
 * in it, and everything is released by one aff_arena_fini() once the reply
 * is packed: handlers never free piecemeal. aff_arena_allocator() gives the
 * same arena as a ProtobufCAllocator for protobuf_c_message_unpack().
 */
#ifndef AFF_ARENA_H
#define AFF_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct aff_arena_chunk;

typedef struct aff_arena {
	struct aff_arena_chunk *chunks;
	char *next;
	size_t left;
	ProtobufCAllocator allocator;
} aff_arena;

void aff_arena_init(aff_arena *a);

/* Frees every allocation made from a; a may be initialised again. */
void aff_arena_fini(aff_arena *a);

/* Returns zeroed memory aligned for any type, or NULL when out of memory. */
void *aff_arena_alloc(aff_arena *a, size_t size);

/* Copies a NUL-terminated string into the arena; NULL when out of memory. */
char *aff_arena_strdup(aff_arena *a, const char *s);

/* Copies len bytes and a terminating NUL; NULL when out of memory. */
char *aff_arena_strndup(aff_arena *a, const char *s, size_t len);

/* Formats into the arena; NULL when out of memory. */
char *aff_arena_printf(aff_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The arena as a protobuf-c allocator (its free is a no-op). */
ProtobufCAllocator *aff_arena_allocator(aff_arena *a);

#endif /* AFF_ARENA_H */
