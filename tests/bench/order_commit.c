/*
 * order_commit.c - bench-order-commit: the store's group commit on its
 * own, with no network, no bridge and no other thread: BATCHES batches of
 * SIZE new orders through batch_begin, order_put and batch_end (what the
 * order writer does), on a fresh SQLite file at the server's settings
 * (WAL, synchronous=FULL), spread over the seed's editors and advertisers
 * as the webhook benchmark's orders are. Prints a batch's time in its
 * statements and in its commit (mean, p50, p99), so the commit's cost
 * (the WAL's fdatasync) can be told from the statements' and from
 * everything around them.
 *
 * Usage: bench-order-commit DB_FILE [BATCHES [SIZE]]   (defaults 400, 16)
 * DB_FILE must not exist; put it on the disk the server's data is on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "aff_arena.h"
#include "aff_err.h"
#include "store.h"

static double
now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return ((double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3);
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return ((x > y) - (x < y));
}

static void
report(const char *what, double *v, int n)
{
	double sum = 0;

	for (int i = 0; i < n; i++)
		sum += v[i];
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("%-24s mean %7.0f us  p50 %7.0f  p99 %7.0f  max %7.0f\n", what,
	    sum / n, v[n / 2], v[n * 99 / 100], v[n - 1]);
}

int
main(int argc, char **argv)
{
	int batches = argc > 2 ? atoi(argv[2]) : 400;
	int size = argc > 3 ? atoi(argv[3]) : 16;
	double *sql, *commit, t0, t1, t2, start;
	struct stat st;
	store *s;
	int rv;

	if (argc < 2 || argc > 4 || batches < 1 || size < 1) {
		fprintf(stderr, "usage: %s DB_FILE [BATCHES [SIZE]]\n", argv[0]);
		return (2);
	}
	if (stat(argv[1], &st) == 0) {
		fprintf(stderr, "%s: %s exists: give a new file\n", argv[0],
		    argv[1]);
		return (2);
	}
	if ((rv = store_open(argv[1], &s)) != AFF_OK) {
		fprintf(stderr, "%s: cannot open %s: %s\n", argv[0], argv[1],
		    aff_strerror(rv));
		return (1);
	}
	sql = calloc((size_t)batches, sizeof(*sql));
	commit = calloc((size_t)batches, sizeof(*commit));
	if (sql == NULL || commit == NULL)
		return (1);
	start = now_us();
	for (int b = 0; b < batches; b++) {
		char ids[size][32];
		struct store_order_in in[size];
		aff_arena a;

		aff_arena_init(&a);
		t0 = now_us();
		if ((rv = s->ops->batch_begin(s)) != AFF_OK)
			break;
		for (int i = 0; i < size; i++) {
			Affiliate__V1__Order *o;
			enum store_order_outcome oc;

			/* Spread over the seed's editors and advertisers as
			 * bench-sign-orders spreads them, with the programme's
			 * commission: each list index is written where its
			 * (editor, advertiser, status) prefix ends, so the pages
			 * a batch dirties grow with the prefixes it touches. */
			int k = b * size + i, adv = k % STORE_SEED_ADVERTISERS;

			snprintf(ids[i], sizeof(ids[i]), "C%d-%d", b, i);
			in[i] = (struct store_order_in){ .order_id = ids[i],
				.advertiser_id = 1 + adv,
				.editor_id = 1 + (k / STORE_SEED_ADVERTISERS) %
				    STORE_SEED_EDITORS,
				.amount_cents = 4990,
				.commission_cents = store_expected_commission(
				    4990, store_seed_advertisers[adv].rate_bps) };
			if ((rv = s->ops->order_put(s, &in[i], &a, &o, &oc)) !=
			        AFF_OK ||
			    oc != STORE_ORDER_CREATED) {
				fprintf(stderr, "order_put: %s\n", aff_strerror(rv));
				return (1);
			}
		}
		t1 = now_us();
		if ((rv = s->ops->batch_end(s, AFF_OK)) != AFF_OK)
			break;
		t2 = now_us();
		aff_arena_fini(&a);
		sql[b] = t1 - t0;
		commit[b] = t2 - t1;
	}
	if (rv != AFF_OK) {
		fprintf(stderr, "%s: %s\n", argv[0], aff_strerror(rv));
		return (1);
	}
	printf("%d batches of %d orders in %.2f s (%.0f orders/s)\n", batches,
	    size, (now_us() - start) / 1e6,
	    batches * size / ((now_us() - start) / 1e6));
	report("statements a batch", sql, batches);
	report("commit a batch", commit, batches);
	store_close(s);
	free(sql);
	free(commit);
	return (0);
}
