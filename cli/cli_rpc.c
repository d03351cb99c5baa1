/* cli_rpc.c - see cli_rpc.h. */
#include "cli_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aff_client.h"
#include "aff_err.h"
#include "aff_json.h"
#include "aff_textpb.h"
#include "affiliate/v1/admin.pb-c.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"
#include "affiliate/v1/postback.pb-c.h"
#include "affiliate/v1/report.pb-c.h"

/* Every service the server registers (services/server.c); a new service
 * is one more row. */
static const ProtobufCServiceDescriptor *const services[] = {
	&affiliate__v1__advertiser_service__descriptor,
	&affiliate__v1__application_service__descriptor,
	&affiliate__v1__order_service__descriptor,
	&affiliate__v1__health_service__descriptor,
	&affiliate__v1__key_service__descriptor,
	&affiliate__v1__webhook_secret_service__descriptor,
	&affiliate__v1__job_admin_service__descriptor,
	&affiliate__v1__catalog_service__descriptor,
	&affiliate__v1__postback_service__descriptor,
	&affiliate__v1__report_service__descriptor,
};
#define N_SERVICES (sizeof(services) / sizeof(services[0]))

static int
rpc_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "affiliate rpc: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: affiliate rpc [SERVICE [METHOD [TEXT-PROTO|-]]]"
	                "  (affiliate rpc lists the services)\n");
	return (2);
}

/* By its full name (affiliate.v1.AdvertiserService) or its short one. */
static const ProtobufCServiceDescriptor *
service_find(const char *name)
{
	for (size_t i = 0; i < N_SERVICES; i++)
		if (strcmp(services[i]->name, name) == 0 ||
		    strcmp(services[i]->short_name, name) == 0)
			return (services[i]);
	return (NULL);
}

static void
list_methods(const ProtobufCServiceDescriptor *s)
{
	printf("%s\n", s->name);
	for (unsigned i = 0; i < s->n_methods; i++)
		printf("  %s(%s) returns (%s)\n", s->methods[i].name,
		    s->methods[i].input->name, s->methods[i].output->name);
}

/* All of stdin (NUL-terminated); NULL out of memory. */
static char *
read_stdin(void)
{
	struct aff_buf b;
	char chunk[4096];
	size_t n;

	aff_buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		aff_buf_add(&b, chunk, n);
	aff_buf_add(&b, "", 1);
	if (b.failed) {
		aff_buf_fini(&b);
		return (NULL);
	}
	return (b.data);
}

static void
print_hex(const char *what, const uint8_t *p, size_t n)
{
	printf("# %s: %zu bytes:", what, n);
	for (size_t i = 0; i < n; i++)
		printf(" %02x", p[i]);
	putchar('\n');
}

/* Prints msg (of type d, serialized in p) in text format. */
static int
print_reply(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(
	    d, NULL, n, p != NULL ? p : (const uint8_t *)"");
	struct aff_buf b;
	int rv;

	if (m == NULL) {
		fprintf(stderr, "affiliate rpc: the reply does not parse as %s\n",
		    d->name);
		return (AFF_INTERNAL);
	}
	aff_buf_init(&b);
	rv = aff_textpb_write(&b, m);
	if (rv == AFF_OK && b.len > 0)
		fwrite(b.data, 1, b.len, stdout);
	aff_buf_fini(&b);
	protobuf_c_message_free_unpacked(m, NULL);
	return (rv);
}

/* Sends payload to s.method and prints the outcome; the exit status. */
static int
rpc_send(const struct cli_rpc_opts *o, const ProtobufCServiceDescriptor *s,
    const ProtobufCMethodDescriptor *md, const uint8_t *payload, size_t len)
{
	struct aff_tls_files tls = {
		.cert = getenv("AFFILIATE_TLS_CERT"),
		.key = getenv("AFFILIATE_TLS_KEY"),
		.ca = getenv("AFFILIATE_TLS_CA"),
	};
	struct aff_client_opts co = {
		.url = o->url,
		.timeout_ms = o->timeout_ms,
		.wait_connected = 1,
		.tls = &tls,
	};
	struct aff_call_opts opts = {
		.request_id = o->request_id,
		.timeout_ms = o->timeout_ms,
	};
	const char *key = getenv("AFFILIATE_KEY");
	struct aff_call_result res;
	struct aff_metadata meta;
	char *bearer = NULL;
	aff_client *client;
	int rv;

	/* From the environment, not a flag: argv is visible to every user. */
	if (key != NULL && *key != '\0') {
		size_t n = strlen(key) + 8;
		if ((bearer = malloc(n)) == NULL)
			return (1);
		snprintf(bearer, n, "Bearer %s", key);
		meta = (struct aff_metadata){ "authorization", bearer };
		opts.metadata = &meta;
		opts.n_metadata = 1;
	}
	if ((rv = aff_client_open(&client, &co)) != AFF_OK) {
		fprintf(stderr, "affiliate rpc: %s: %s (%s)\n", aff_code_name(rv),
		    rv == AFF_INVALID_ARGUMENT
		        ? "the URL is not a valid NNG address, or the TLS files "
		          "do not fit it"
		        : "cannot connect to affiliate-server",
		    o->url);
		free(bearer);
		return (1);
	}
	rv = aff_client_invoke(client, s->name, md->name, payload, len, &opts,
	    &res);
	if (o->hex && res.payload_len > 0)
		print_hex("reply payload", res.payload, res.payload_len);
	/* An error may come with a payload of the output type (Apply's
	 * ALREADY_EXISTS carries the application in the way). */
	if (res.payload_len > 0 || rv == AFF_OK)
		if (print_reply(md->output, res.payload, res.payload_len) != AFF_OK &&
		    rv == AFF_OK)
			rv = AFF_INTERNAL;
	if (rv != AFF_OK)
		fprintf(stderr, "affiliate rpc: %s (%d): %s (request %s)\n",
		    aff_code_name(rv), rv,
		    res.message != NULL && res.message[0] != '\0'
		        ? res.message
		        : aff_strerror(rv),
		    res.request_id);
	aff_call_result_fini(&res);
	aff_client_close(client);
	free(bearer);
	return (rv == AFF_OK ? 0 : 1);
}

int
cli_rpc(const struct cli_rpc_opts *o, int argc, char **argv)
{
	const ProtobufCServiceDescriptor *s;
	const ProtobufCMethodDescriptor *md;
	ProtobufCMessage *req;
	char err[512], *text = NULL;
	uint8_t *buf;
	size_t len;
	int rv;

	if (argc == 0) {
		for (size_t i = 0; i < N_SERVICES; i++)
			list_methods(services[i]);
		return (0);
	}
	if ((s = service_find(argv[0])) == NULL)
		return (rpc_usage("no service '%s' (affiliate rpc lists them)",
		    argv[0]));
	if (argc == 1) {
		list_methods(s);
		return (0);
	}
	if (argc > 3)
		return (rpc_usage("too many words after the method ('%s'): quote "
		                  "the text-format request",
		    argv[3]));
	if ((md = protobuf_c_service_descriptor_get_method_by_name(s, argv[1])) ==
	    NULL) {
		fprintf(stderr, "affiliate rpc: %s has no method '%s'; it has:\n",
		    s->name, argv[1]);
		for (unsigned i = 0; i < s->n_methods; i++)
			fprintf(stderr, "  %s\n", s->methods[i].name);
		return (2);
	}
	if (argc == 3 && strcmp(argv[2], "-") == 0 &&
	    (text = read_stdin()) == NULL) {
		fprintf(stderr, "affiliate rpc: out of memory\n");
		return (1);
	}
	rv = aff_textpb_parse(md->input, text != NULL ? text : argc == 3 ? argv[2] : "",
	    &req, err, sizeof(err));
	free(text);
	if (rv != AFF_OK) {
		fprintf(stderr, "affiliate rpc: the request is not a valid %s in "
		                "text format: %s\n",
		    md->input->name, rv == AFF_INVALID_ARGUMENT ? err : "out of memory");
		return (2);
	}
	len = protobuf_c_message_get_packed_size(req);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL) {
		protobuf_c_message_free_unpacked(req, NULL);
		return (1);
	}
	protobuf_c_message_pack(req, buf);
	protobuf_c_message_free_unpacked(req, NULL);
	if (o->hex)
		print_hex("request payload", buf, len);
	rv = rpc_send(o, s, md, buf, len);
	free(buf);
	return (rv);
}
