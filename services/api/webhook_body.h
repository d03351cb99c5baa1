/*
 * webhook_body.h - the partner's order webhook body, parsed strictly from
 * its raw bytes: a flat JSON object whose money is read from the number's
 * own digits into integer cents (never through a binary double).
 *
 * {"order_id":"…","advertiser_id":A,"editor_id":E (or "user_id"),
 *  "amount":49.9,"commission":4.99[,"currency":"EUR"][,"status":"pending"]}
 */
#ifndef WEBHOOK_BODY_H
#define WEBHOOK_BODY_H

#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_ORDER_ID_MAX 64    /* characters */
#define WEBHOOK_MONEY_MAX_CENTS 100000000000000LL /* 1e12 units */

struct webhook_order {
	char order_id[WEBHOOK_ORDER_ID_MAX * 4 + 1]; /* UTF-8 */
	int64_t advertiser_id;
	int64_t editor_id;
	int64_t amount_cents;
	int64_t commission_cents;
	char currency[4];  /* "" when not given: the advertiser's */
	char status[16];   /* "" when not given */
};

/*
 * Parses and validates body. AFF_OK, or AFF_INVALID_ARGUMENT with one
 * sentence in err naming the field ("amount must be a number of at least
 * 0 with at most two decimals").
 */
int webhook_body_parse(const uint8_t *body, size_t len,
    struct webhook_order *o, char *err, size_t errlen);

#endif /* WEBHOOK_BODY_H */
