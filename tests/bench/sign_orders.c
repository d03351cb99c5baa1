/*
 * sign_orders.c - writes pre-signed order webhooks for the ingest
 * benchmark (bench_webhooks.sh, webhook.lua), so the load generator does
 * no HMAC of its own and every request carries a distinct order.
 *
 * Usage: bench-sign-orders N SECRET OUTFILE [MISMATCH_EVERY]
 *   Writes N lines "<signature>\t<body>\n": the signature is the plain hex
 *   form of X-Partner-Signature (lowercase HMAC-SHA256(SECRET, body)), the
 *   body the JSON webhook with order_id "B<nonce>-<i>". The nonce (time and
 *   pid, in base 36) keeps re-runs against the same database unique. The
 *   advertiser (1..24), editor (1..6) and amount vary with i; every body is
 *   valid: amount and commission have at most two decimals and the
 *   commission is at most the amount.
 *
 *   The commission is what the seed's programme gives (amount x the
 *   advertiser's rate, half up to the cent: the expected commission the
 *   store computes), as a partner reporting by the programme's terms sends
 *   it, except on every MISMATCH_EVERY-th order (default 32), which reports
 *   one cent more or less: the exception ?commission_mismatch=true lists,
 *   whose partial indexes (schema step 12) only such orders are written
 *   to. MISMATCH_EVERY=1 makes every order one (what this tool sent before
 *   the expected commission existed: 0..30 % of the amount at random).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aff_webhook.h"
#include "store.h"

#define MAX_ORDERS 100000000L

/* Writes v in base 36 into out (at least 14 bytes). */
static void
base36(uint64_t v, char *out)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	char tmp[16];
	size_t n = 0;

	do {
		tmp[n++] = digits[v % 36];
		v /= 36;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
}

int
main(int argc, char **argv)
{
	char nonce[16], body[256], sig[128], *end;
	struct timespec ts;
	FILE *f;
	long n;

	long every = 32;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s N SECRET OUTFILE [MISMATCH_EVERY]\n",
		    argv[0]);
		return (2);
	}
	if (argc == 5) {
		errno = 0;
		every = strtol(argv[4], &end, 10);
		if (errno != 0 || *end != '\0' || every < 1 || every > MAX_ORDERS) {
			fprintf(stderr, "bench-sign-orders: MISMATCH_EVERY must be "
			                "1..%ld\n", MAX_ORDERS);
			return (2);
		}
	}
	errno = 0;
	n = strtol(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > MAX_ORDERS) {
		fprintf(stderr, "bench-sign-orders: N must be 1..%ld\n", MAX_ORDERS);
		return (2);
	}
	if (argv[2][0] == '\0') {
		fprintf(stderr, "bench-sign-orders: SECRET must not be empty\n");
		return (2);
	}
	if ((f = fopen(argv[3], "w")) == NULL) {
		fprintf(stderr, "bench-sign-orders: %s: %s\n", argv[3],
		    strerror(errno));
		return (1);
	}
	/* Nanoseconds and the pid: two runs in one second still differ. */
	clock_gettime(CLOCK_REALTIME, &ts);
	base36(((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
	        ((uint64_t)getpid() << 40),
	    nonce);

	for (long i = 0; i < n; i++) {
		/* Amounts 1.00 .. 500.99, in cents. */
		long amount = 100 + (i * 7919) % 50000;
		long adv = 1 + i % STORE_SEED_ADVERTISERS;
		long commission = (long)store_expected_commission(amount,
		    store_seed_advertisers[adv - 1].rate_bps);

		if ((i + 1) % every == 0)
			commission += commission > 0 ? -1 : 1;
		int len = snprintf(body, sizeof(body),
		    "{\"order_id\":\"B%s-%ld\",\"advertiser_id\":%ld,"
		    "\"user_id\":%ld,\"amount\":%ld.%02ld,\"commission\":%ld.%02ld}",
		    nonce, i, adv,
		    1 + (i / STORE_SEED_ADVERTISERS) % STORE_SEED_EDITORS,
		    amount / 100,
		    amount % 100, commission / 100, commission % 100);

		if (len < 0 || (size_t)len >= sizeof(body)) {
			fprintf(stderr, "bench-sign-orders: body too long\n");
			fclose(f);
			return (1);
		}
		aff_webhook_sign(argv[2], (const uint8_t *)body, (size_t)len, 0, sig);
		if (fprintf(f, "%s\t%s\n", sig, body) < 0)
			break;
	}
	if (ferror(f) | (fclose(f) != 0)) {
		fprintf(stderr, "bench-sign-orders: cannot write %s: %s\n", argv[3],
		    strerror(errno));
		return (1);
	}
	return (0);
}
