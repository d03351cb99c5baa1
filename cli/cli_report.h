/*
 * cli_report.h - `affiliate reports earnings`: an earnings report
 * (ReportService.GetEarnings, report.proto) per advertiser, day or status
 * and per currency, printed as the other replies are.
 */
#ifndef CLI_REPORT_H
#define CLI_REPORT_H

#include "cli.h"

/* The usage lines, for main's usage text. */
#define CLI_REPORT_USAGE                                                       \
	"  reports earnings --from YYYY-MM-DD --to YYYY-MM-DD [--editor E]\n"  \
	"                   [--advertiser A] [--group-by "                     \
	"advertiser|day|status]\n"                                             \
	"                   [--tz Z|UTC|+HH:00|-HH:00]   (to included; an\n"   \
	"                                      editor key: its own orders)\n"

/* Keeps the value of a report option (--from, --to, --group-by, --tz:
 * their getopt codes CLI_REPORT_OPT_*) in c. */
#define CLI_REPORT_OPT_FROM     0x101
#define CLI_REPORT_OPT_TO       0x102
#define CLI_REPORT_OPT_GROUP_BY 0x103
#define CLI_REPORT_OPT_TZ       0x104
void cli_report_opt(struct cli *c, int opt, const char *value);

/* Runs `reports WORD ...` (c->argv[0] is "reports"); exit status, 2 for
 * a usage error (said on stderr, nothing sent). */
int cli_reports(struct cli *c);

#endif /* CLI_REPORT_H */
