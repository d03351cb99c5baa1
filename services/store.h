/*
 * store.h - the system of record, behind a narrow interface.
 *
 * A store handle is one connection, used by one thread at a time (each
 * server handler thread opens its own). The SQLite implementation is
 * store_sqlite_ops; a server database could take its place by providing
 * another struct store_ops. Results are protobuf messages allocated in the
 * caller's per-call arena, so the caller never frees them one by one.
 *
 * Every function returns AFF_OK or an aff_err code: AFF_NOT_FOUND,
 * AFF_INVALID_ARGUMENT, AFF_UNAVAILABLE (the database cannot be reached or
 * is busy past the timeout), AFF_RESOURCE_EXHAUSTED (disk or memory full),
 * AFF_INTERNAL (anything else; logged where it happens).
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>

#include "aff_arena.h"
#include "affiliate/v1/affiliate.pb-c.h"

typedef struct store store;

struct store_advertiser_query {
	int64_t editor_id; /* 0: all advertisers; else those it may join */
	int64_t after;     /* ids greater than this */
	int limit;         /* page size, > 0 */
};

struct store_ops {
	const char *name;

	/*
	 * Opens a connection to the database at path, creating, migrating
	 * and seeding it on first use (safe when many threads open at once).
	 * Caller closes with close().
	 */
	int (*open)(const char *path, store **sp);
	void (*close)(store *s);

	/*
	 * The identity of this database (random, made with it) and the
	 * version of the catalog (advertisers, editors, eligibility), which
	 * changes with every write to it, by whatever client. Together they
	 * name a consistent view for the cache.
	 */
	int (*catalog_version)(store *s, const char **db_id, int64_t *version);

	/* AFF_OK when the editor exists, AFF_NOT_FOUND when not. */
	int (*editor_exists)(store *s, int64_t id);

	int (*advertiser_get)(store *s, int64_t id, aff_arena *a,
	    Affiliate__V1__Advertiser **out);

	/*
	 * One page in id order. *more is set when rows follow the page.
	 * *out is an arena array of *n pointers.
	 */
	int (*advertiser_list)(store *s, const struct store_advertiser_query *q,
	    aff_arena *a, Affiliate__V1__Advertiser ***out, size_t *n,
	    int *more);

	/* AFF_OK when the editor may join the advertiser, else
	 * AFF_PERMISSION_DENIED. */
	int (*eligible)(store *s, int64_t editor_id, int64_t advertiser_id);

	/* Inserts or replaces an advertiser (operators, tests). */
	int (*advertiser_put)(store *s, const Affiliate__V1__Advertiser *adv);

	/* Makes the editor eligible (or not) for the advertiser. */
	int (*eligibility_set)(store *s, int64_t editor_id,
	    int64_t advertiser_id, int eligible);
};

struct store {
	const struct store_ops *ops;
};

extern const struct store_ops store_sqlite_ops;

/* The seed: editors 1..STORE_SEED_EDITORS, advertisers
 * 1..STORE_SEED_ADVERTISERS, and store_seed_eligible() says who may join
 * whom. */
#define STORE_SEED_EDITORS 6
#define STORE_SEED_ADVERTISERS 24
int store_seed_eligible(int64_t editor_id, int64_t advertiser_id);

/* Opens the default implementation (SQLite) at path. */
int store_open(const char *path, store **sp);

static inline void
store_close(store *s)
{
	if (s != NULL)
		s->ops->close(s);
}

#endif /* STORE_H */
