/*
 * store.c - which backend a database name selects, in one place: the
 * server, its pipeline threads and the tools all open the store through
 * store_open(). SQLite is the default (a path); PostgreSQL is chosen by a
 * libpq URI or key=value conninfo.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_status.h"
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

/* A libpq keyword whose value is a secret: "password", "sslpassword". */
static int
secret_key(const char *k, size_t n)
{
	return ((n == 8 && strncmp(k, "password", 8) == 0) ||
	    (n == 11 && strncmp(k, "sslpassword", 11) == 0));
}

/* Appends n bytes of t to out (cap bytes, *k used), cutting at the cap. */
static void
put(char *out, size_t cap, size_t *k, const char *t, size_t n)
{
	for (size_t i = 0; i < n && *k + 1 < cap; i++)
		out[(*k)++] = t[i];
	out[*k] = '\0';
}

/* postgresql://user:SECRET@host/db?password=SECRET&...: the password of
 * the user info (between the first ':' and the last '@' of the part
 * before the path) and secret query values masked. */
static void
redact_uri(const char *db, char *out, size_t cap, size_t *k)
{
	const char *auth = strstr(db, "://") + 3, *end, *at = NULL, *c;

	end = auth + strcspn(auth, "/?");
	for (c = auth; c < end; c++)
		if (*c == '@')
			at = c;
	put(out, cap, k, db, (size_t)(auth - db));
	if (at != NULL && (c = memchr(auth, ':', (size_t)(at - auth))) != NULL) {
		put(out, cap, k, auth, (size_t)(c - auth) + 1);
		put(out, cap, k, "***", 3);
		auth = at;
	}
	/* The rest, each query parameter's value checked. */
	while (*auth != '\0') {
		size_t n = strcspn(auth, "?&");
		const char *eq;

		put(out, cap, k, auth, n);
		auth += n;
		if (*auth == '\0')
			break;
		put(out, cap, k, auth++, 1); /* '?' or '&' */
		n = strcspn(auth, "&");
		eq = memchr(auth, '=', n);
		if (eq != NULL && secret_key(auth, (size_t)(eq - auth))) {
			put(out, cap, k, auth, (size_t)(eq - auth) + 1);
			put(out, cap, k, "***", 3);
			auth += n;
		}
	}
}

/* "host=db1 password='se cret' ...": secret keys' values (quoted or not,
 * spaces around '=' allowed, as libpq reads them) masked. */
static void
redact_conninfo(const char *db, char *out, size_t cap, size_t *k)
{
	const char *p = db, *key, *v;
	size_t kn;

	while (*p != '\0') {
		if (isspace((unsigned char)*p)) {
			put(out, cap, k, p++, 1);
			continue;
		}
		key = p;
		while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p))
			p++;
		kn = (size_t)(p - key);
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '=')
			p++;
		while (isspace((unsigned char)*p))
			p++;
		v = p;
		if (*p == '\'') {
			for (p++; *p != '\0' && *p != '\''; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (*p == '\'')
				p++;
		} else
			while (*p != '\0' && !isspace((unsigned char)*p))
				p++;
		put(out, cap, k, key, (size_t)(v - key));
		if (secret_key(key, kn))
			put(out, cap, k, "***", 3);
		else
			put(out, cap, k, v, (size_t)(p - v));
	}
}

void
store_db_redact(const char *db, char *out, size_t cap)
{
	size_t k = 0;

	if (cap == 0)
		return;
	out[0] = '\0';
	if (strncmp(db, "postgresql://", 13) == 0 ||
	    strncmp(db, "postgres://", 11) == 0)
		redact_uri(db, out, cap, &k);
	else if (store_is_postgres(db))
		redact_conninfo(db, out, cap, &k);
	else
		put(out, cap, &k, db, strlen(db));
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

int
store_backup(const char *db, const char *file)
{
	if (store_is_postgres(db)) {
		aff_error("backup: --backup copies a SQLite database; for "
		          "PostgreSQL use pg_dump (README, Backups)");
		return (AFF_UNIMPLEMENTED);
	}
	return (store_sqlite_backup(db, file));
}

int64_t
store_expected_commission(int64_t amount_cents, int32_t rate_bps)
{
	return ((amount_cents * rate_bps + 5000) / 10000);
}

int64_t
store_job_backoff_ms(const struct store_job_policy *p, int attempts)
{
	int64_t backoff = p->backoff_ms;

	for (int i = 1; i < attempts && backoff < p->backoff_max_ms; i++)
		backoff *= 2;
	return (backoff > p->backoff_max_ms ? p->backoff_max_ms : backoff);
}

int
store_review_result_unpack(const Affiliate__V1__JobResult *r,
    Affiliate__V1__ReviewApplicationResult **out)
{
	Affiliate__V1__ReviewApplicationResult *rr;

	rr = affiliate__v1__review_application_result__unpack(
	    NULL, r->payload.len, r->payload.data);
	if (rr == NULL)
		return (AFF_INVALID_ARGUMENT);
	if (aff_status_parse(AFF_REVIEW_DECISION, rr->decision) == 0) {
		affiliate__v1__review_application_result__free_unpacked(rr, NULL);
		return (AFF_INVALID_ARGUMENT);
	}
	*out = rr;
	return (AFF_OK);
}

/* The seed's rows, the same on every backend (each writes them in its
 * first migration step). */
const struct store_seed_editor store_seed_editors[STORE_SEED_EDITORS] = {
	{ "Trail & Summit Blog", "https://trailandsummit.example" },
	{ "Budget Kitchen", "https://budgetkitchen.example" },
	{ "Pixel Reviews", "https://pixelreviews.example" },
	{ "The Family Travel Guide", "https://familytravel.example" },
	{ "Style Notes", "https://stylenotes.example" },
	{ "Green Home Weekly", "https://greenhome.example" },
};

const struct store_seed_advertiser
    store_seed_advertisers[STORE_SEED_ADVERTISERS] = {
	{ "Nordic Outdoor", "outdoor", "EUR", "active", 800, 30 },
	{ "Alpine Gear Co", "outdoor", "CHF", "active", 650, 30 },
	{ "CampFire Supplies", "outdoor", "EUR", "active", 1000, 14 },
	{ "FreshBox Meals", "food", "EUR", "active", 1200, 7 },
	{ "Olive & Vine", "food", "EUR", "active", 900, 30 },
	{ "Bean Roasters", "food", "GBP", "active", 750, 30 },
	{ "VoltTech Electronics", "electronics", "EUR", "active", 300, 30 },
	{ "Gadget Hub", "electronics", "USD", "active", 400, 14 },
	{ "SoundWave Audio", "electronics", "EUR", "active", 500, 30 },
	{ "SkyHop Flights", "travel", "EUR", "active", 200, 30 },
	{ "CityStay Hotels", "travel", "EUR", "active", 600, 60 },
	{ "RailPass Europe", "travel", "EUR", "paused", 350, 30 },
	{ "Urban Threads", "fashion", "EUR", "active", 1100, 30 },
	{ "Sneaker Vault", "fashion", "USD", "active", 850, 14 },
	{ "Linen & Co", "fashion", "EUR", "active", 1000, 30 },
	{ "GreenLeaf Garden", "home", "EUR", "active", 900, 30 },
	{ "SolarSpark", "home", "EUR", "active", 450, 90 },
	{ "CozyNest Furniture", "home", "GBP", "active", 700, 30 },
	{ "PageTurner Books", "books", "EUR", "active", 500, 30 },
	{ "Kids Corner Toys", "toys", "EUR", "active", 800, 30 },
	{ "FitLife Nutrition", "health", "EUR", "active", 1500, 30 },
	{ "Zen Yoga Studio", "health", "EUR", "active", 2000, 30 },
	{ "PetPal Supplies", "pets", "EUR", "active", 900, 30 },
	{ "CodeCraft Courses", "education", "USD", "active", 3000, 60 },
};

/* The seed's eligibility rule, the same on every backend: editor E may
 * join advertiser A unless (A + 2E) is a multiple of 3, so every editor
 * may join two thirds of the advertisers and not the rest. */
int
store_seed_eligible(int64_t editor_id, int64_t advertiser_id)
{
	return ((advertiser_id + 2 * editor_id) % 3 != 0);
}
