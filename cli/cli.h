/*
 * cli.h - private to `affiliate` (cli/): what main.c shares with the
 * command modules (cli_catalog.c): the parsed command line, the call
 * that prints its outcome, and the usage error.
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
	int admin;
	int64_t grace;
	int mismatch;     /* orders list --mismatch */
	int argc;
	char **argv; /* the positional words */
};

/* Says what is wrong on stderr and returns 2 (the usage error's exit
 * status): nothing was sent. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Makes the call and prints its outcome (the reply as JSON, or the
 * error); returns the exit status (0, or 1 for an error answer). */
int cli_call(struct cli *c, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req);

#endif /* CLI_H */
