/*
 * store.c - which backend a database name selects, in one place: the
 * server, its pipeline threads and the tools all open the store through
 * store_open(). SQLite is the default (a path); PostgreSQL is chosen by a
 * libpq URI or key=value conninfo.
 */
#include <ctype.h>
#include <string.h>

#include "store.h"

int
store_is_postgres(const char *db)
{
	const char *p;

	if (strncmp(db, "postgresql://", 13) == 0 ||
	    strncmp(db, "postgres://", 11) == 0)
		return (1);
	/* "host=db1 dbname=affiliate ...": the text before the first '='
	 * is a libpq keyword (letters and '_'), which no path with a
	 * folder in it ("./a=b.db", "/srv/x=y/affiliate.db") is. */
	if ((p = strchr(db, '=')) == NULL)
		return (0);
	while (*db == ' ')
		db++;
	if (db == p)
		return (0);
	for (; db < p; db++)
		if (!islower((unsigned char)*db) && *db != '_' && *db != ' ')
			return (0);
	return (1);
}

const struct store_ops *
store_backend(const char *db)
{
	return (store_is_postgres(db) ? &store_pg_ops : &store_sqlite_ops);
}

int
store_open(const char *db, store **sp)
{
	return (store_backend(db)->open(db, sp));
}

/* The seed's eligibility rule, the same on every backend: editor E may
 * join advertiser A unless (A + 2E) is a multiple of 3, so every editor
 * may join two thirds of the advertisers and not the rest. */
int
store_seed_eligible(int64_t editor_id, int64_t advertiser_id)
{
	return ((advertiser_id + 2 * editor_id) % 3 != 0);
}
