/*
 * cli_rpc.h - `affiliate rpc SERVICE METHOD [TEXT-PROTO]`: calls any method
 * of any service with a request written in protobuf's text format
 * (lib/aff_textpb.h) and prints the reply in text format, so a client
 * author sees the exact messages (and, with --hex, the exact bytes)
 * without protoc. `affiliate rpc` lists the services, `affiliate rpc
 * SERVICE` their methods with their input and output types.
 */
#ifndef CLI_RPC_H
#define CLI_RPC_H

struct cli_rpc_opts {
	const char *url;        /* --url / AFFILIATE_URL */
	const char *request_id; /* --request-id, or NULL */
	int timeout_ms;         /* --timeout */
	int hex;                /* --hex: the payloads' bytes as # comments */
};

/*
 * Runs the command; argv holds the words after "rpc". Returns the exit
 * status: 0 done, 1 the server answered an error (its reason on stderr,
 * a payload that came with it on stdout), 2 a usage error or a request
 * that does not parse (nothing was sent).
 */
int cli_rpc(const struct cli_rpc_opts *o, int argc, char **argv);

#endif /* CLI_RPC_H */
