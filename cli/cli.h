/*
 * cli.h - private to `affiliate` (cli/): the parsed command line, and the
 * helpers main.c offers the command modules (cli_<topic>.c): the call
 * and its printing, and the usage errors.
 */
#ifndef CLI_H
#define CLI_H

#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct cli {
	const char *url;
	const char *request_id;
	int timeout_ms;
	int64_t editor, advertiser, limit, after;
	int editor_given, advertiser_given;
	const char *status;
	const char *after_text;
	int plain;
	int standard;           /* webhook sign --standard */
	const char *webhook_id; /* its --id */
	int admin;
	int hex;                /* rpc --hex: the payloads' bytes too */
	int64_t grace;
	const char *state; /* jobs list --state */
	int all_dead;      /* jobs retry --all-dead */
	int mismatch;      /* orders list --mismatch */
	/* reports earnings --from --to --group-by --tz (cli_report.c) */
	const char *from, *to, *group_by, *tz;
	int argc;
	char **argv; /* the positional words */
};

/* Says what is wrong and exits 2: nothing was sent. Returns 2. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Makes the call and prints its outcome; returns the exit status. */
int cli_call(struct cli *c, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req);

/* "NOUN VERB" with nothing after: AFF_OK, else the usage error. */
int no_args(struct cli *c);

/* "NOUN VERB ID": the id (a positive integer) in *id, or the usage error
 * (missing, extra or malformed) before anything is sent. */
int one_id(struct cli *c, const char *noun, int64_t *id);

/* The verb of "NOUN VERB ...": NULL after the usage error when missing. */
const char *verb(struct cli *c, const char *choices);

/* The usage error for a verb not in choices. */
int unknown_verb(struct cli *c, const char *choices);

/* cli_jobs.c: jobs list | retry (admin). */
int cmd_jobs(struct cli *c);

#endif /* CLI_H */
