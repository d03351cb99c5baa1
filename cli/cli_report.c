/* cli_report.c - see cli_report.h. */
#include "cli_report.h"

#include <string.h>

#include "aff_err.h"
#include "affiliate/v1/report.pb-c.h"

void
cli_report_opt(struct cli *c, int opt, const char *value)
{
	if (opt == CLI_REPORT_OPT_FROM)
		c->from = value;
	else if (opt == CLI_REPORT_OPT_TO)
		c->to = value;
	else if (opt == CLI_REPORT_OPT_GROUP_BY)
		c->group_by = value;
	else
		c->tz = value;
}

static int
earnings(struct cli *c)
{
	Affiliate__V1__GetEarningsRequest req
	    = AFFILIATE__V1__GET_EARNINGS_REQUEST__INIT;
	int rv;

	if ((rv = no_args(c)) != AFF_OK)
		return (rv);
	/* Only what is missing is said here; the server judges the values
	 * (dates, range, group, offset) and says what it takes. */
	if (c->from == NULL || c->to == NULL)
		return (usage_error("reports earnings needs --from YYYY-MM-DD "
		                    "and --to YYYY-MM-DD"));
	req.editor_id = c->editor;
	req.advertiser_id = c->advertiser;
	req.from = (char *)c->from;
	req.to = (char *)c->to;
	req.group_by = (char *)(c->group_by != NULL ? c->group_by : "");
	req.tz = (char *)(c->tz != NULL ? c->tz : "");
	return (cli_call(c, &affiliate__v1__report_service__descriptor,
	    "GetEarnings", &req.base));
}

int
cli_reports(struct cli *c)
{
	const char *w = verb(c, "earnings");

	if (w == NULL)
		return (2);
	if (strcmp(w, "earnings") == 0)
		return (earnings(c));
	return (unknown_verb(c, "earnings"));
}
