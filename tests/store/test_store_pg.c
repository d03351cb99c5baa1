/*
 * test_store_pg.c - several servers on one PostgreSQL database, at the
 * store: connections (each a server's) racing on the same job, order,
 * request key, application, migration and Redis copy, against a real
 * PostgreSQL server this test starts; and the database killed and
 * restarted under an open store (AFF_UNAVAILABLE, then served again
 * without reopening). What both backends answer alike is
 * test_store_backends'.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"
#include "store_backends.h"
#include "testutil.h"

static char db[512];

static int
setup(void **state)
{
	(void)state;
	sb_fresh(1, NULL, db, sizeof(db));
	return (0);
}

static store *
open_ok(void)
{
	store *s = NULL;

	assert_int_equal(store_open(db, &s), AFF_OK);
	return (s);
}

/* ---- two connections claiming jobs ---- */

#define NJOBS 60

struct claimer {
	store *s;
	pthread_barrier_t *go;
	int64_t ids[NJOBS * 2];
	int n;
};

static void *
claim_loop(void *arg)
{
	struct claimer *c = arg;
	int empty = 0;

	pthread_barrier_wait(c->go);
	while (empty < 3) {
		struct store_job *v;
		size_t n = 0;
		aff_arena a;

		aff_arena_init(&a);
		if (c->s->ops->jobs_claim(
		        c->s, aff_mono_ms(), &sb_job_policy, 3, &a, &v, &n)
		    == AFF_OK) {
			for (size_t i = 0; i < n && c->n < NJOBS * 2; i++)
				c->ids[c->n++] = v[i].id;
		}
		aff_arena_fini(&a);
		empty = n == 0 ? empty + 1 : 0;
	}
	return (NULL);
}

static void
test_two_connections_never_claim_the_same_job(void **state)
{
	struct claimer c[2];
	pthread_barrier_t go;
	pthread_t t[2];
	store *s = open_ok();
	char seen[NJOBS + 1] = { 0 };
	int made = 0, total = 0;
	aff_arena a;

	(void)state;
	aff_arena_init(&a);
	for (int e = 1; e <= STORE_SEED_EDITORS && made < NJOBS; e++)
		for (int ad = 1; ad <= STORE_SEED_ADVERTISERS && made < NJOBS;
		     ad++) {
			Affiliate__V1__Application *app;
			if (!store_seed_eligible(e, ad))
				continue;
			assert_int_equal(s->ops->application_create(s, e, ad,
			                     "", &sb_job_policy, &a, &app),
			    AFF_OK);
			made++;
		}
	aff_arena_fini(&a);
	assert_int_equal(made, NJOBS);
	pthread_barrier_init(&go, NULL, 2);
	for (int i = 0; i < 2; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].s = open_ok();
		c[i].go = &go;
		assert_int_equal(pthread_create(&t[i], NULL, claim_loop, &c[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		for (int k = 0; k < c[i].n; k++) {
			assert_true(c[i].ids[k] >= 1 && c[i].ids[k] <= NJOBS);
			assert_int_equal(seen[c[i].ids[k]], 0); /* never twice */
			seen[c[i].ids[k]] = 1;
		}
		total += c[i].n;
		store_close(c[i].s);
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(total, NJOBS);
	fprintf(stderr, "# claimed: %d and %d of %d jobs\n", c[0].n, c[1].n,
	    NJOBS);
	store_close(s);
}

/* ---- the same order on two connections ---- */

struct putter {
	store *s;
	pthread_barrier_t *go;
	const char *order_id;
	int batch_hold_ms; /* > 0: put in a batch held open this long */
	int rv;
	enum store_order_outcome outcome;
};

static void *
put_one(void *arg)
{
	struct putter *p = arg;
	struct store_order_in o = { .order_id = p->order_id,
		.advertiser_id = 2, .editor_id = 1, .amount_cents = 1234,
		.commission_cents = 123, .currency = "CHF" };
	Affiliate__V1__Order *out;
	aff_arena a;

	aff_arena_init(&a);
	pthread_barrier_wait(p->go);
	if (p->batch_hold_ms > 0) {
		assert_int_equal(p->s->ops->batch_begin(p->s), AFF_OK);
		p->rv = p->s->ops->order_put(p->s, &o, &a, &out, &p->outcome);
		tu_sleep_ms(p->batch_hold_ms);
		assert_int_equal(p->s->ops->batch_end(p->s, AFF_OK), AFF_OK);
	} else {
		if (p->batch_hold_ms < 0)
			tu_sleep_ms(-p->batch_hold_ms);
		p->rv = p->s->ops->order_put(p->s, &o, &a, &out, &p->outcome);
	}
	aff_arena_fini(&a);
	return (NULL);
}

static void
race_order(store *s1, store *s2, const char *id, int hold1, int hold2)
{
	struct putter p[2] = {
		{ .s = s1, .order_id = id, .batch_hold_ms = hold1 },
		{ .s = s2, .order_id = id, .batch_hold_ms = hold2 },
	};
	pthread_barrier_t go;
	pthread_t t[2];
	int created = 0, dup = 0;

	pthread_barrier_init(&go, NULL, 2);
	for (int i = 0; i < 2; i++) {
		p[i].go = &go;
		assert_int_equal(pthread_create(&t[i], NULL, put_one, &p[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(p[i].rv, AFF_OK); /* never an error */
		created += p[i].outcome == STORE_ORDER_CREATED;
		dup += p[i].outcome == STORE_ORDER_DUPLICATE;
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(created, 1);
	assert_int_equal(dup, 1);
}

static void
test_the_same_order_on_two_connections_is_stored_once(void **state)
{
	store *s1 = open_ok(), *s2 = open_ok();
	char id[32];

	(void)state;
	for (int i = 0; i < 30; i++) {
		snprintf(id, sizeof(id), "race-%d", i);
		race_order(s1, s2, id, 0, 0);
	}
	/* One inside a group-commit batch held open: the other waits for
	 * its commit and reads a duplicate. */
	race_order(s1, s2, "race-batch", 300, -50);
	race_order(s1, s2, "race-batch-2", 0, 0);
	assert_int_equal(sb_sql_int(db, "SELECT count(*) FROM orders"), 32);
	assert_int_equal(sb_sql_int(db, "SELECT count(*) FROM order_events"), 32);
	store_close(s1);
	store_close(s2);
}

/* ---- the same request key on two connections ---- */

struct caller {
	store *s;
	const struct store_request_key *k;
	atomic_int done;
	int rv;
	char reply[32];
};

static void *
call_second(void *arg)
{
	struct caller *c = arg;
	uint8_t *reply;
	size_t len = 0;
	aff_arena a;

	aff_arena_init(&a);
	c->rv = c->s->ops->call_begin(c->s, c->k, &a, &reply, &len);
	if (c->rv == AFF_ALREADY_EXISTS && len < sizeof(c->reply))
		memcpy(c->reply, reply, len);
	atomic_store(&c->done, 1);
	aff_arena_fini(&a);
	return (NULL);
}

static void
test_the_same_request_key_on_two_connections_is_answered_once(void **state)
{
	struct store_request_key k = { .scope = "key:1", .request_id = "rk",
		.method = "m" };
	store *s1 = open_ok(), *s2 = open_ok();
	struct caller c = { .s = s2, .k = &k };
	Affiliate__V1__Application *app;
	uint8_t *reply;
	size_t len;
	pthread_t t;
	aff_arena a;

	(void)state;
	aff_arena_init(&a);
	memset(k.digest, 3, sizeof(k.digest));
	assert_int_equal(s1->ops->call_begin(s1, &k, &a, &reply, &len), AFF_OK);
	assert_int_equal(s1->ops->application_create(
	                     s1, 1, 2, "rk", &sb_job_policy, &a, &app),
	    AFF_OK);
	assert_int_equal(pthread_create(&t, NULL, call_second, &c), 0);
	tu_sleep_ms(300);
	assert_int_equal(atomic_load(&c.done), 0); /* it waits for the first */
	assert_int_equal(s1->ops->call_end(s1, &k, (const uint8_t *)"first", 5),
	    AFF_OK);
	pthread_join(t, NULL);
	assert_int_equal(c.rv, AFF_ALREADY_EXISTS);
	assert_string_equal(c.reply, "first");
	/* The first one rolled back: the second runs the call itself. */
	k.digest[0] = 4;
	c = (struct caller){ .s = s2, .k = &k };
	assert_int_equal(s1->ops->call_begin(s1, &k, &a, &reply, &len), AFF_OK);
	assert_int_equal(pthread_create(&t, NULL, call_second, &c), 0);
	tu_sleep_ms(200);
	assert_int_equal(atomic_load(&c.done), 0);
	assert_int_equal(s1->ops->call_end(s1, &k, NULL, 0), AFF_OK);
	pthread_join(t, NULL);
	assert_int_equal(c.rv, AFF_OK);
	assert_int_equal(s2->ops->call_end(s2, &k, (const uint8_t *)"2nd", 3),
	    AFF_OK);
	assert_int_equal(s1->ops->call_begin(s1, &k, &a, &reply, &len),
	    AFF_ALREADY_EXISTS);
	assert_memory_equal(reply, "2nd", 3);
	assert_int_equal(sb_sql_int(db, "SELECT count(*) FROM applications"), 1);
	aff_arena_fini(&a);
	store_close(s1);
	store_close(s2);
}

/* ---- the same application on two connections ---- */

struct applier {
	store *s;
	pthread_barrier_t *go;
	int64_t e, ad;
	const char *rid;
	int rv;
	int64_t id;
};

static void *
apply_one(void *arg)
{
	struct applier *p = arg;
	Affiliate__V1__Application *app = NULL;
	aff_arena a;

	aff_arena_init(&a);
	pthread_barrier_wait(p->go);
	p->rv = p->s->ops->application_create(
	    p->s, p->e, p->ad, p->rid, &sb_job_policy, &a, &app);
	p->id = app != NULL ? app->id : -1;
	aff_arena_fini(&a);
	return (NULL);
}

static void
test_one_open_application_per_pair_across_connections(void **state)
{
	store *s1 = open_ok(), *s2 = open_ok();
	int rounds = 0;

	(void)state;
	for (int ad = 1; ad <= STORE_SEED_ADVERTISERS; ad++) {
		struct applier p[2] = {
			{ .s = s1, .e = 1, .ad = ad, .rid = "one" },
			{ .s = s2, .e = 1, .ad = ad, .rid = "two" },
		};
		pthread_barrier_t go;
		pthread_t t[2];

		if (!store_seed_eligible(1, ad))
			continue;
		pthread_barrier_init(&go, NULL, 2);
		for (int i = 0; i < 2; i++) {
			p[i].go = &go;
			assert_int_equal(
			    pthread_create(&t[i], NULL, apply_one, &p[i]), 0);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&go);
		assert_true((p[0].rv == AFF_OK && p[1].rv == AFF_ALREADY_EXISTS) ||
		    (p[1].rv == AFF_OK && p[0].rv == AFF_ALREADY_EXISTS));
		assert_int_equal(p[0].id, p[1].id);
		rounds++;
	}
	assert_int_equal(sb_sql_int(db, "SELECT count(*) FROM applications"),
	    rounds);
	assert_int_equal(sb_sql_int(db, "SELECT count(*) FROM jobs"), rounds);
	store_close(s1);
	store_close(s2);
}

/* ---- migrations at once ---- */

struct opener {
	pthread_barrier_t *go;
	store *s;
	int rv;
};

static void *
open_one(void *arg)
{
	struct opener *o = arg;

	pthread_barrier_wait(o->go);
	o->rv = store_open(db, &o->s);
	return (NULL);
}

static void
test_four_servers_starting_at_once_migrate_and_seed_once(void **state)
{
	struct opener o[4];
	pthread_barrier_t go;
	pthread_t t[4];
	const char *id0 = NULL, *id;
	char keep[40] = "";
	int64_t v;

	(void)state;
	pthread_barrier_init(&go, NULL, 4);
	for (int i = 0; i < 4; i++) {
		o[i] = (struct opener){ .go = &go };
		assert_int_equal(pthread_create(&t[i], NULL, open_one, &o[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(o[i].rv, AFF_OK);
		assert_int_equal(
		    o[i].s->ops->catalog_version(o[i].s, &id, &v), AFF_OK);
		if (id0 == NULL) {
			snprintf(keep, sizeof(keep), "%s", id);
			id0 = keep;
		}
		assert_string_equal(id, id0);
		store_close(o[i].s);
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(sb_sql_int(db, "SELECT count(*) FROM editors"),
	    STORE_SEED_EDITORS);
	assert_int_equal(sb_sql_int(db, "SELECT count(*) FROM advertisers"),
	    STORE_SEED_ADVERTISERS);
	assert_int_equal(sb_sql_int(db, "SELECT version FROM affiliate_schema"),
	    14);
	assert_int_equal(sb_sql_int(db, "SELECT count(*) FROM meta"), 2);
}

/* ---- one result applied once ---- */

struct finisher {
	store *s;
	pthread_barrier_t *go;
	const Affiliate__V1__JobResult *r;
	int rv;
};

static void *
finish_one(void *arg)
{
	struct finisher *f = arg;

	pthread_barrier_wait(f->go);
	f->rv
	    = f->s->ops->job_finish(f->s, f->r, aff_mono_ms(), &sb_job_policy);
	return (NULL);
}

static void
test_a_result_received_by_two_servers_is_applied_once(void **state)
{
	store *s1 = open_ok(), *s2 = open_ok();
	Affiliate__V1__JobResult r = AFFILIATE__V1__JOB_RESULT__INIT;
	Affiliate__V1__ReviewApplicationResult rr =
	    AFFILIATE__V1__REVIEW_APPLICATION_RESULT__INIT;
	Affiliate__V1__Application *app;
	struct finisher f[2];
	pthread_barrier_t go;
	pthread_t t[2];
	struct store_job *jobs;
	uint8_t buf[64];
	size_t n;
	aff_arena a;

	(void)state;
	aff_arena_init(&a);
	assert_int_equal(
	    s1->ops->application_create(s1, 1, 2, "", &sb_job_policy, &a, &app),
	    AFF_OK);
	assert_int_equal(s1->ops->jobs_claim(s1, aff_mono_ms(), &sb_job_policy,
	                     4, &a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	rr.decision = (char *)"approved";
	rr.reason = (char *)"";
	r.payload.len = affiliate__v1__review_application_result__pack(&rr, buf);
	r.payload.data = buf;
	r.job_id = jobs[0].id;
	r.token = (char *)jobs[0].token;
	r.ok = 1;
	r.error = (char *)"";
	pthread_barrier_init(&go, NULL, 2);
	f[0] = (struct finisher){ .s = s1, .go = &go, .r = &r };
	f[1] = (struct finisher){ .s = s2, .go = &go, .r = &r };
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, finish_one, &f[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	assert_true((f[0].rv == AFF_OK && f[1].rv == AFF_ALREADY_EXISTS) ||
	    (f[1].rv == AFF_OK && f[0].rv == AFF_ALREADY_EXISTS));
	assert_int_equal(
	    sb_sql_int(db, "SELECT count(*) FROM application_events"), 2);
	/* A heartbeat from the other server names the same lease. */
	assert_int_equal(s2->ops->job_extend(s2, jobs[0].id, jobs[0].token,
	                     aff_mono_ms(), &sb_job_policy),
	    AFF_NOT_FOUND); /* done: no lease any more */
	aff_arena_fini(&a);
	store_close(s1);
	store_close(s2);
}

static void
test_a_starting_server_leaves_a_live_servers_deliveries_alone(void **state)
{
	store *s1 = open_ok(), *s2 = open_ok();
	Affiliate__V1__Application *app;
	struct store_job *jobs;
	size_t n;
	int k, total = 0;
	aff_arena a;

	(void)state;
	aff_arena_init(&a);
	assert_int_equal(
	    s1->ops->application_create(s1, 1, 2, "", &sb_job_policy, &a, &app),
	    AFF_OK);
	assert_int_equal(s1->ops->jobs_claim(s1, aff_mono_ms(), &sb_job_policy,
	                     4, &a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	/* Heartbeats of s1's delivery may arrive at s2: the lease is on the
	 * database's clock, the same for both. */
	assert_int_equal(s2->ops->job_extend(s2, jobs[0].id, jobs[0].token,
	                     aff_mono_ms(), &sb_job_policy),
	    AFF_OK);
	assert_int_equal(s2->ops->jobs_resume(s2, aff_mono_ms(), &k), AFF_OK);
	assert_int_equal(k, 0);
	assert_int_equal(s2->ops->jobs_claim(s2, aff_mono_ms(), &sb_job_policy,
	                     4, &a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 0);
	/* s1 dies: its delivery is due again at the next start. */
	store_close(s1);
	for (int i = 0; i < 100 && total == 0; i++) {
		assert_int_equal(s2->ops->jobs_resume(s2, aff_mono_ms(), &k),
		    AFF_OK);
		total += k;
		if (total == 0)
			tu_sleep_ms(20);
	}
	assert_int_equal(total, 1);
	assert_int_equal(s2->ops->jobs_claim(s2, aff_mono_ms(), &sb_job_policy,
	                     4, &a, &jobs, &n),
	    AFF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].attempt, 2);
	aff_arena_fini(&a);
	store_close(s2);
}

/* ---- the Redis copy with two syncs ---- */

static void
test_one_sync_at_a_time_and_none_into_a_replaced_copy(void **state)
{
	store *s1 = open_ok(), *s2 = open_ok();
	struct store_order_in o = { .advertiser_id = 2, .editor_id = 1,
		.amount_cents = 100, .commission_cents = 10, .currency = "CHF" };
	enum store_order_outcome oc;
	Affiliate__V1__Order *out;
	struct store_order_row *r1, *r2;
	const char *copy;
	char seen[40];
	int64_t gen, seen_gen;
	size_t n1, n2;
	aff_arena a;

	(void)state;
	aff_arena_init(&a);
	o.order_id = "s-1";
	assert_int_equal(s1->ops->order_put(s1, &o, &a, &out, &oc), AFF_OK);
	o.order_id = "s-2";
	assert_int_equal(s1->ops->order_put(s1, &o, &a, &out, &oc), AFF_OK);
	assert_int_equal(s1->ops->orders_all_cached(s1, &copy, &gen),
	    AFF_NOT_FOUND);
	assert_int_equal(s2->ops->orders_all_cached(s2, &copy, &gen),
	    AFF_NOT_FOUND);
	snprintf(seen, sizeof(seen), "%s", copy);
	seen_gen = gen;
	/* s1 copies a batch: s2 finds nothing to copy meanwhile, and cannot
	 * start a new copy under it. */
	assert_int_equal(s1->ops->orders_uncached(s1, 10, &a, &r1, &n1), AFF_OK);
	assert_int_equal(n1, 2);
	assert_int_equal(s2->ops->orders_uncached(s2, 10, &a, &r2, &n2), AFF_OK);
	assert_int_equal(n2, 0);
	assert_int_equal(s2->ops->orders_cache_reset(s2, seen, seen_gen),
	    AFF_UNAVAILABLE);
	assert_int_equal(s1->ops->orders_mark_cached(s1, r1, n1, 1), AFF_OK);
	/* Nor once s1's batch is recorded: s2 judged a view from before
	 * it (Redis one generation ahead of the database only while s1's
	 * batch was between its two writes), so its reset is refused and
	 * the copy stays. */
	assert_int_equal(s2->ops->orders_cache_reset(s2, seen, seen_gen),
	    AFF_ABORTED);
	assert_int_equal(s1->ops->orders_all_cached(s1, &copy, &gen), AFF_OK);
	assert_string_equal(copy, seen);
	assert_int_equal(s2->ops->orders_all_cached(s2, &copy, &gen), AFF_OK);
	assert_int_equal(gen, 1);
	/* A generation recorded late never goes back. */
	assert_int_equal(s2->ops->orders_mark_cached(s2, r1, 0, 5), AFF_OK);
	assert_int_equal(s1->ops->orders_all_cached(s1, &copy, &gen), AFF_OK);
	assert_int_equal(s1->ops->orders_mark_cached(s1, r1, 0, 3), AFF_OK);
	assert_int_equal(s2->ops->orders_all_cached(s2, &copy, &gen), AFF_OK);
	assert_int_equal(gen, 5);
	/* s1 read the copy, s2 replaced it: s1's batch marks nothing. */
	o.order_id = "s-3";
	assert_int_equal(s1->ops->order_put(s1, &o, &a, &out, &oc), AFF_OK);
	assert_int_equal(s1->ops->orders_all_cached(s1, &copy, &gen),
	    AFF_NOT_FOUND);
	assert_int_equal(s2->ops->orders_all_cached(s2, &copy, &gen),
	    AFF_NOT_FOUND);
	assert_int_equal(s2->ops->orders_cache_reset(s2, copy, gen), AFF_OK);
	assert_int_equal(s1->ops->orders_uncached(s1, 10, &a, &r1, &n1), AFF_OK);
	assert_int_equal(n1, 3);
	assert_int_equal(s1->ops->orders_mark_cached(s1, r1, n1, 1),
	    AFF_ABORTED);
	assert_int_equal(s2->ops->orders_all_cached(s2, &copy, &gen),
	    AFF_NOT_FOUND);
	assert_int_equal(gen, 0);
	assert_int_equal(sb_sql_int(db, "SELECT count(*) FROM orders"
	                                " WHERE cached_rev = rev"),
	    0);
	aff_arena_fini(&a);
	store_close(s1);
	store_close(s2);
}

/* ---- the database restarted under an open store ---- */

static void
test_a_restarted_database_is_unavailable_then_served_again(void **state)
{
	store *s = open_ok(), *w = open_ok(), *idle = open_ok(), *s2 = NULL;
	struct store_order_in o = { .order_id = "k-1", .advertiser_id = 2,
		.editor_id = 1, .amount_cents = 100, .commission_cents = 10,
		.currency = "CHF" };
	enum store_order_outcome oc;
	Affiliate__V1__Order *out;
	aff_arena a;

	(void)state;
	aff_arena_init(&a);
	assert_int_equal(s->ops->editor_exists(s, 1), AFF_OK);
	/* A batch open when the database dies. */
	assert_int_equal(w->ops->batch_begin(w), AFF_OK);
	assert_int_equal(w->ops->order_put(w, &o, &a, &out, &oc), AFF_OK);
	tu_pg_kill(sb_pg);
	assert_int_equal(s->ops->editor_exists(s, 1), AFF_UNAVAILABLE);
	assert_int_equal(s->ops->editor_exists(s, 1), AFF_UNAVAILABLE);
	o.order_id = "k-2";
	assert_int_equal(w->ops->order_put(w, &o, &a, &out, &oc), AFF_ABORTED);
	assert_int_equal(w->ops->batch_end(w, AFF_OK), AFF_UNAVAILABLE);
	assert_int_equal(store_open(db, &s2), AFF_UNAVAILABLE);
	assert_null(s2);
	assert_int_equal(tu_pg_restart(sb_pg), 0);
	/* The next call connects again: no reopening. A handle idle
	 * through the outage finds its connection dead on its first read,
	 * which is sent again on a new one: no error at all. */
	assert_int_equal(idle->ops->editor_exists(idle, 1), AFF_OK);
	assert_int_equal(idle->ops->eligible(idle, 1, 2), AFF_OK);
	store_close(idle);
	assert_int_equal(s->ops->editor_exists(s, 1), AFF_OK);
	assert_int_equal(s->ops->editor_exists(s, 99), AFF_NOT_FOUND);
	/* Nothing of the batch was committed; it is stored now. */
	assert_int_equal(sb_sql_int(db, "SELECT count(*) FROM orders"), 0);
	o.order_id = "k-1";
	assert_int_equal(w->ops->order_put(w, &o, &a, &out, &oc), AFF_OK);
	assert_int_equal(oc, STORE_ORDER_CREATED);
	assert_int_equal(w->ops->batch_begin(w), AFF_OK);
	assert_int_equal(w->ops->order_put(w, &o, &a, &out, &oc), AFF_OK);
	assert_int_equal(oc, STORE_ORDER_DUPLICATE);
	assert_int_equal(w->ops->batch_end(w, AFF_OK), AFF_OK);
	aff_arena_fini(&a);
	store_close(s);
	store_close(w);
}

/* ---- a catalog write seen by the next read of the server that made it ---- */

/*
 * A server keeps the catalog version in memory, refreshed when the
 * database's notification reaches its listener (store_pg_watch.c). The
 * server that makes a change must not serve the version before it in the
 * moment until then: its caches would answer the next read with the old
 * row. Each of 40 changes, made on one handle, is in the version another
 * handle of the same server reads right after (no wait).
 */
static void
test_a_servers_catalog_write_is_in_its_next_version(void **state)
{
	store *s = open_ok(), *r = open_ok();
	struct store_advertiser_in in = { .set = STORE_ADV_COOKIE_DAYS };
	Affiliate__V1__Advertiser *adv;
	const char *id;
	int64_t v, before;
	aff_arena a;

	(void)state;
	aff_arena_init(&a);
	/* The listener connects and publishes its version first. */
	tu_sleep_ms(300);
	assert_int_equal(r->ops->catalog_version(r, &id, &before), AFF_OK);
	for (int i = 0; i < 40; i++) {
		in.cookie_days = 10 + i;
		assert_int_equal(
		    s->ops->advertiser_update(s, 2, &in, &a, &adv), AFF_OK);
		assert_int_equal(adv->cookie_days, 10 + i);
		assert_int_equal(r->ops->catalog_version(r, &id, &v), AFF_OK);
		assert_int_equal(v, before + 1 + i);
	}
	assert_int_equal(
	    sb_sql_int(db, "SELECT version FROM catalog_version"), before + 40);
	aff_arena_fini(&a);
	store_close(s);
	store_close(r);
}

#define T(fn) cmocka_unit_test_setup(fn, setup)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_four_servers_starting_at_once_migrate_and_seed_once),
		T(test_two_connections_never_claim_the_same_job),
		T(test_the_same_order_on_two_connections_is_stored_once),
		T(test_the_same_request_key_on_two_connections_is_answered_once),
		T(test_one_open_application_per_pair_across_connections),
		T(test_a_result_received_by_two_servers_is_applied_once),
		T(test_a_starting_server_leaves_a_live_servers_deliveries_alone),
		T(test_one_sync_at_a_time_and_none_into_a_replaced_copy),
		T(test_a_restarted_database_is_unavailable_then_served_again),
		T(test_a_servers_catalog_write_is_in_its_next_version),
	};
	static struct tu_pg pg;
	int rv;

	aff_log_set_level(AFF_LOG_ERROR);
	if (tu_pg_start(&pg) != 0) {
		fprintf(stderr, "# PostgreSQL did not start\n");
		return (1);
	}
	sb_pg = &pg;
	rv = cmocka_run_group_tests_name("store on postgresql, several servers",
	    tests, NULL, NULL);
	tu_pg_stop(&pg);
	return (rv);
}
