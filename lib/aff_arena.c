/* aff_arena.c - see aff_arena.h. */
#include "aff_arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK 8192
#define ARENA_ALIGN 16

struct aff_arena_chunk {
	struct aff_arena_chunk *next;
	max_align_t data[];
};

static void *
arena_pb_alloc(void *data, size_t size)
{
	return (aff_arena_alloc(data, size));
}

static void
arena_pb_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr; /* freed with the arena */
}

void
aff_arena_init(aff_arena *a)
{
	a->chunks = NULL;
	a->next = NULL;
	a->left = 0;
	a->allocator.alloc = arena_pb_alloc;
	a->allocator.free = arena_pb_free;
	a->allocator.allocator_data = a;
}

void
aff_arena_fini(aff_arena *a)
{
	struct aff_arena_chunk *c, *n;

	for (c = a->chunks; c != NULL; c = n) {
		n = c->next;
		free(c);
	}
	a->chunks = NULL;
	a->next = NULL;
	a->left = 0;
}

void *
aff_arena_alloc(aff_arena *a, size_t size)
{
	struct aff_arena_chunk *c;
	size_t want, cap;
	void *p;

	if (size == 0)
		size = 1;
	want = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (want < size)
		return (NULL);
	if (want > a->left) {
		cap = want > ARENA_CHUNK ? want : ARENA_CHUNK;
		if (cap > SIZE_MAX - sizeof(*c))
			return (NULL);
		if ((c = malloc(sizeof(*c) + cap)) == NULL)
			return (NULL);
		c->next = a->chunks;
		a->chunks = c;
		a->next = (char *)c->data;
		a->left = cap;
	}
	p = a->next;
	a->next += want;
	a->left -= want;
	memset(p, 0, size);
	return (p);
}

char *
aff_arena_strndup(aff_arena *a, const char *s, size_t len)
{
	char *p;

	if ((p = aff_arena_alloc(a, len + 1)) == NULL)
		return (NULL);
	memcpy(p, s, len);
	p[len] = '\0';
	return (p);
}

char *
aff_arena_strdup(aff_arena *a, const char *s)
{
	return (aff_arena_strndup(a, s, strlen(s)));
}

char *
aff_arena_printf(aff_arena *a, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (p = aff_arena_alloc(a, (size_t)n + 1)) == NULL)
		return (NULL);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return (p);
}

ProtobufCAllocator *
aff_arena_allocator(aff_arena *a)
{
	return (&a->allocator);
}
