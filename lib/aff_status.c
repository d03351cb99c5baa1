/* aff_status.c - see aff_status.h. */
#include "aff_status.h"

#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The enums this maps. A new status needs nothing here; a new enum is
 * one line (and its macro in aff_status.h). */
static const ProtobufCEnumDescriptor *const enums[] = {
	&affiliate__v1__advertiser_status__descriptor,
	&affiliate__v1__application_status__descriptor,
	&affiliate__v1__order_status__descriptor,
	&affiliate__v1__review_decision__descriptor,
};
#define N_ENUMS (sizeof(enums) / sizeof(enums[0]))
#define VALUES_MAX 16 /* per enum, UNSPECIFIED included */
#define WORD_MAX 32

/* words[e][v]: the word of value v of enums[e], "" for none. Built once
 * from the descriptors, then only read. */
static char words[N_ENUMS][VALUES_MAX][WORD_MAX];
static pthread_once_t words_once = PTHREAD_ONCE_INIT;

static void
words_build(void)
{
	for (size_t e = 0; e < N_ENUMS; e++) {
		const ProtobufCEnumDescriptor *d = enums[e];
		const ProtobufCEnumValue *zero =
		    protobuf_c_enum_descriptor_get_value(d, 0);
		size_t plen;

		/* status.proto's convention, checked by test_lib. */
		assert(zero != NULL && strlen(zero->name) > strlen("UNSPECIFIED"));
		plen = strlen(zero->name) - strlen("UNSPECIFIED");
		for (unsigned i = 0; i < d->n_values; i++) {
			const ProtobufCEnumValue *v = &d->values[i];
			char *w;

			if (v->value <= 0 || v->value >= VALUES_MAX ||
			    strncmp(v->name, zero->name, plen) != 0 ||
			    strlen(v->name + plen) >= WORD_MAX)
				continue; /* not a word this table can hold */
			w = words[e][v->value];
			for (size_t k = 0; v->name[plen + k] != '\0'; k++)
				w[k] = (char)tolower((unsigned char)v->name[plen + k]);
		}
	}
}

static char (*enum_words(const ProtobufCEnumDescriptor *d))[WORD_MAX]
{
	pthread_once(&words_once, words_build);
	for (size_t e = 0; e < N_ENUMS; e++)
		if (enums[e] == d)
			return (words[e]);
	assert(!"aff_status: an enum that is not in enums[]");
	return (NULL);
}

const char *
aff_status_word(const ProtobufCEnumDescriptor *d, int v)
{
	char(*w)[WORD_MAX] = enum_words(d);

	if (w == NULL || v <= 0 || v >= VALUES_MAX || w[v][0] == '\0')
		return (NULL);
	return (w[v]);
}

int
aff_status_parse(const ProtobufCEnumDescriptor *d, const char *s)
{
	char(*w)[WORD_MAX] = enum_words(d);

	if (w == NULL || s == NULL || *s == '\0')
		return (0);
	for (int v = 1; v < VALUES_MAX; v++)
		if (w[v][0] != '\0' && strcmp(w[v], s) == 0)
			return (v);
	return (0);
}

const char *
aff_status_list(const ProtobufCEnumDescriptor *d, char *buf, size_t size)
{
	const char *word, *next;
	size_t n = 0;
	int v;

	if (size == 0)
		return (buf);
	buf[0] = '\0';
	for (v = 1; (word = aff_status_word(d, v)) != NULL && n < size; v++) {
		next = aff_status_word(d, v + 1);
		n += (size_t)snprintf(buf + n, size - n, "%s%s",
		    v == 1 ? "" : next == NULL ? " or " : ", ", word);
	}
	return (buf);
}
