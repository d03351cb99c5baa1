/*
 * cli_postback.h - `affiliate postbacks ...`: an editor's postback
 * endpoints (create, list, delete, rotate, enable), their delivery log and
 * manual redelivery, over PostbackService.
 */
#ifndef CLI_POSTBACK_H
#define CLI_POSTBACK_H

#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Makes one call and prints its outcome; returns the exit status. */
typedef int cli_postback_call_fn(void *ctx, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req);

/* What main's options gave (--editor, --limit, --after). */
struct cli_postback_opts {
	int64_t editor, limit, after;
};

/* The usage lines, for main's usage text. */
#define CLI_POSTBACK_USAGE                                                     \
	"  postbacks create URL EVENT[,EVENT...] [--editor E]   (prints the\n"  \
	"                                      whsec_ secret once; events:\n"   \
	"                                      order.created,\n"                \
	"                                      order.status_changed,\n"         \
	"                                      application.decided)\n"          \
	"  postbacks list [--editor E]\n"                                       \
	"  postbacks delete|rotate|enable ID   (rotate prints the new secret)\n"\
	"  postbacks attempts ENDPOINT [--limit N] [--after ID]   (the\n"       \
	"                                      delivery log, newest first)\n"   \
	"  postbacks redeliver DELIVERY\n"

/* Runs `postbacks WORD ...` (argv[0] is "postbacks"); exit status, 2 for
 * a usage error (said on stderr). */
int cli_postback(int argc, char **argv, const struct cli_postback_opts *o,
    cli_postback_call_fn *call, void *ctx);

#endif /* CLI_POSTBACK_H */
