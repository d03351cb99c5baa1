/*
 * cli_catalog.h - `affiliate` commands for the catalog (admins) and the
 * order in detail: advertisers create|update, editors create|update,
 * eligibility grant|revoke, orders get. Private to cli/.
 */
#ifndef CLI_CATALOG_H
#define CLI_CATALOG_H

#include "cli.h"

#define CLI_CATALOG_USAGE                                                      \
	"  advertisers create FIELD=VALUE...   (admin; name, category, currency,\n" \
	"                                      commission_rate_bps, status,\n"  \
	"                                      website, cookie_days,\n"          \
	"                                      allow_other_currencies=true)\n"   \
	"  advertisers update ID FIELD=VALUE... (admin; only those fields)\n"    \
	"  editors create name=N [website=URL] (admin)\n"                        \
	"  editors update ID FIELD=VALUE...    (admin; name, website)\n"         \
	"  eligibility grant|revoke EDITOR ADVERTISER   (admin)\n"

/* Each returns the exit status (cli_call's, or 2 for a usage error). */
int cli_catalog_advertisers(struct cli *c); /* create, update */
int cli_catalog_editors(struct cli *c);
int cli_catalog_eligibility(struct cli *c);
int cli_catalog_order_get(struct cli *c);

#endif /* CLI_CATALOG_H */
