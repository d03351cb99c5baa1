/*
 * main.c - `affiliate`, the command-line RPC client. Calls affiliate-server
 * over NNG and prints the reply as JSON on stdout. An error status prints
 * {"error":{...}} on stdout, a one-line reason on stderr, and exits 1;
 * a usage error exits 2.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aff_client.h"
#include "aff_err.h"
#include "aff_json.h"
#include "aff_util.h"
#include "aff_webhook.h"
#include "cli_webhook.h"
#include "affiliate/v1/admin.pb-c.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"
#include "cli.h"
#include "cli_rpc.h"
#include "cli_catalog.h"
#include "cli_postback.h"
#include "cli_report.h"

static const char usage[] =
    "usage: affiliate [--url URL] [--timeout MS] [--request-id ID] COMMAND\n"
    "commands:\n"
    "  health\n"
    "  advertisers list [--editor E] [--limit N] [--after ID]\n"
    "  advertisers get ID [--editor E]\n"
    "  applications apply --advertiser A [--editor E]   (--editor unless\n"
    "                                      $AFFILIATE_KEY is an editor's key)\n"
    "  applications list [--editor E] [--status S] [--limit N] [--after ID]\n"
    "  applications get ID                 (with its history)\n"
    "  orders list [--editor E] [--advertiser A] [--status S] [--mismatch]\n"
    "              [--limit N] [--after C] (--mismatch: only orders whose\n"
    "                                      commission is not the expected one)\n"
    "  orders get ORDER_ID                 (with its status history)\n"
    CLI_CATALOG_USAGE
    "  webhook sign [--plain] FILE|-       (the X-Partner-Signature for a body:\n"
    "                                      t=<unix>,v1=<hex>; --plain: <hex>)\n"
    "  webhook sign --standard [--id ID] FILE|-   (the Standard Webhooks\n"
    "                                      headers webhook-id, -timestamp and\n"
    "                                      -signature; ID: a new msg_<hex>)\n"
    "  webhook secret rotate --advertiser A [--grace SECS]   (admin)\n"
    "  webhook require-timestamp ADVERTISER on|off   (admin; on: that\n"
    "                                      advertiser's --plain signatures\n"
    "                                      are refused)\n"
    "  keys create --editor E | --admin    (admin; prints the key once)\n"
    "  keys list                           (admin)\n"
    "  keys revoke ID                      (admin)\n"
    "  jobs list [--state dead|queued|inflight] [--limit N] [--after ID]\n"
    "                                      (admin; each job with its last error)\n"
    "  jobs retry ID | --all-dead          (admin; a dead job queued again,\n"
    "                                      its application pending again)\n"
    "  rpc [SERVICE [METHOD [TEXT-PROTO|-]]]   any method, the request in\n"
    "                                      protobuf text format ('-': stdin),\n"
    "                                      the reply printed so; --hex adds\n"
    "                                      the payloads' bytes as # lines\n"
    CLI_POSTBACK_USAGE
    CLI_REPORT_USAGE
    "Lists print next_after: pass it as --after for the next page (0: none).\n"
    "Exit status: 0 done, 1 the server answered an error (JSON on stdout),\n"
    "2 a usage error (nothing was sent).\n"
    "environment:\n"
    "  AFFILIATE_URL      the server (tcp://127.0.0.1:5555), or several\n"
    "                     comma-separated (servers sharing one database:\n"
    "                     the first that answers serves); --url wins\n"
    "  AFFILIATE_TLS_CERT, AFFILIATE_TLS_KEY, AFFILIATE_TLS_CA\n"
    "                     a tls+tcp:// URL: this client's PEM certificate,\n"
    "                     its key, and the CA that signs the server's\n"
    "  AFFILIATE_KEY      the API key, sent as 'authorization: Bearer KEY'\n"
    "                     (never a flag: argv is visible to every user)\n"
    "  AFFILIATE_WEBHOOK_SECRET  webhook sign: the first of these secrets,\n"
    "                     else $AFFILIATE_DATA_DIR/webhook_secret\n"
    "  AFFILIATE_DATA_DIR webhook sign: the server's data folder (data)\n";

int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "affiliate: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\naffiliate --help lists the commands\n");
	return (2);
}

static void
print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s != NULL) {
		puts(s);
		free(s);
	}
}

static void
put_indent(int depth)
{
	putchar('\n');
	for (int i = 0; i < depth; i++)
		fputs("  ", stdout);
}

/*
 * Prints compact JSON (as aff_json_write_message writes it: no spaces
 * outside strings) indented as jansson's JSON_INDENT(2) would, but
 * copying every token as it is: a number is never read into a double, so
 * money stays "49.90" exactly as the server's message says in cents (a
 * jansson round trip printed 49.899999999999999).
 */
static void
print_compact_json(const char *s, size_t n)
{
	int depth = 0, in_str = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (in_str) {
			putchar(ch);
			if (ch == '\\' && i + 1 < n)
				putchar(s[++i]);
			else if (ch == '"')
				in_str = 0;
			continue;
		}
		switch (ch) {
		case '"':
			in_str = 1;
			putchar(ch);
			break;
		case '{':
		case '[':
			putchar(ch);
			if (i + 1 < n && (s[i + 1] == '}' || s[i + 1] == ']'))
				putchar(s[++i]); /* {} and [] stay on their line */
			else
				put_indent(++depth);
			break;
		case '}':
		case ']':
			put_indent(--depth);
			putchar(ch);
			break;
		case ',':
			putchar(ch);
			put_indent(depth);
			break;
		case ':':
			fputs(": ", stdout);
			break;
		default:
			putchar(ch);
		}
	}
	putchar('\n');
}

/* cli_call for a command module (cli_postback.h). */
static int
postback_call(void *ctx, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req)
{
	return (cli_call(ctx, svc, method, req));
}

int
cli_call(struct cli *c, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req)
{
	struct aff_tls_files tls = {
		.cert = getenv("AFFILIATE_TLS_CERT"),
		.key = getenv("AFFILIATE_TLS_KEY"),
		.ca = getenv("AFFILIATE_TLS_CA"),
	};
	struct aff_client_opts co = {
		.url = c->url,
		.timeout_ms = c->timeout_ms,
		.wait_connected = 1,
		.tls = &tls,
	};
	struct aff_call_opts opts = {
		.request_id = c->request_id,
		.timeout_ms = c->timeout_ms,
	};
	struct aff_metadata md;
	char *bearer = NULL;
	const char *key = getenv("AFFILIATE_KEY");
	struct aff_call_result res;
	ProtobufCMessage *resp = NULL;
	aff_client *client;
	struct aff_buf out;
	json_t *j = NULL;
	char urls[AFF_CLIENT_MAX_URLS][AFF_CLIENT_URL_MAX], err[512];
	int rv, n_urls;

	/* A list (servers sharing one database) is checked before anything
	 * is sent; one URL is the dial's to judge, as it always was. */
	if (strchr(c->url, ',') != NULL &&
	    aff_client_url_list(c->url, urls, &n_urls, err, sizeof(err)) !=
	        AFF_OK)
		return (usage_error("--url (AFFILIATE_URL): %s", err));
	/* From the environment, not a flag: argv is visible to every user. */
	if (key != NULL && *key != '\0') {
		size_t n = strlen(key) + 8;
		if ((bearer = malloc(n)) == NULL)
			return (1);
		snprintf(bearer, n, "Bearer %s", key);
		md = (struct aff_metadata){ "authorization", bearer };
		opts.metadata = &md;
		opts.n_metadata = 1;
	}
	if ((rv = aff_client_open(&client, &co)) != AFF_OK) {
		memset(&res, 0, sizeof(res));
		res.code = rv;
		res.message = strdup(rv == AFF_INVALID_ARGUMENT
		        ? "the URL is not a valid NNG address, or the TLS "
		          "files do not fit it"
		        : "cannot connect to affiliate-server");
		client = NULL;
	} else
		rv = aff_client_call(client, svc, method, req, &opts, &resp, &res);
	if (rv == AFF_OK) {
		aff_buf_init(&out);
		if (aff_json_write_message(&out, resp) == AFF_OK)
			print_compact_json(out.data, out.len);
		else {
			fprintf(stderr, "affiliate: out of memory\n");
			rv = AFF_RESOURCE_EXHAUSTED;
		}
		aff_buf_fini(&out);
	} else {
		j = json_pack("{s:{s:s,s:s,s:s}}", "error", "code",
		    aff_code_name(rv), "message",
		    res.message != NULL ? res.message : "", "request_id",
		    res.request_id);
		fprintf(stderr, "affiliate: %s: %s (%s)\n", aff_code_name(rv),
		    res.message != NULL && res.message[0] ? res.message
		                                          : aff_strerror(rv),
		    c->url);
	}
	if (j != NULL) {
		print_json(j);
		json_decref(j);
	}
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	aff_call_result_fini(&res);
	aff_client_close(client);
	free(bearer);
	return (rv == AFF_OK ? 0 : 1);
}
int
no_args(struct cli *c)
{
	if (c->argc > 2)
		return (usage_error("%s %s takes no arguments, not '%s'",
		    c->argv[0], c->argv[1], c->argv[2]));
	return (AFF_OK);
}

int
one_id(struct cli *c, const char *noun, int64_t *id)
{
	const char *a = strchr("aeiou", noun[0]) != NULL ? "an" : "a";

	if (c->argc < 3)
		return (usage_error("%s %s needs %s %s ID", c->argv[0], c->argv[1],
		    a, noun));
	if (c->argc > 3)
		return (usage_error("%s %s takes one %s ID, not also '%s'",
		    c->argv[0], c->argv[1], noun, c->argv[3]));
	if (aff_parse_int64(c->argv[2], 1, INT64_MAX, id) != AFF_OK)
		return (usage_error("%s id must be a positive integer, not '%s'",
		    noun, c->argv[2]));
	return (AFF_OK);
}

const char *
verb(struct cli *c, const char *choices)
{
	if (c->argc < 2) {
		usage_error("%s needs a command: %s", c->argv[0], choices);
		return (NULL);
	}
	return (c->argv[1]);
}

int
unknown_verb(struct cli *c, const char *choices)
{
	return (usage_error("unknown %s command '%s' (%s)", c->argv[0],
	    c->argv[1], choices));
}

static int
cmd_health(struct cli *c)
{
	Affiliate__V1__HealthCheckRequest req =
	    AFFILIATE__V1__HEALTH_CHECK_REQUEST__INIT;

	if (c->argc != 1)
		return (usage_error("health takes no arguments, not '%s'",
		    c->argv[1]));
	return (cli_call(c, &affiliate__v1__health_service__descriptor, "Check",
	    &req.base));
}

static int
cmd_advertisers(struct cli *c)
{
	const ProtobufCServiceDescriptor *svc =
	    &affiliate__v1__advertiser_service__descriptor;
	const char *v = verb(c, "list, get, create, update");
	int rv;

	if (v == NULL)
		return (2);
	if (strcmp(v, "create") == 0 || strcmp(v, "update") == 0)
		return (cli_catalog_advertisers(c));
	if (strcmp(v, "list") == 0) {
		Affiliate__V1__ListAdvertisersRequest req =
		    AFFILIATE__V1__LIST_ADVERTISERS_REQUEST__INIT;
		if ((rv = no_args(c)) != AFF_OK)
			return (rv);
		req.editor_id = c->editor;
		req.limit = (int32_t)c->limit;
		req.after = c->after;
		return (cli_call(c, svc, "ListAdvertisers", &req.base));
	}
	if (strcmp(v, "get") == 0) {
		Affiliate__V1__GetAdvertiserRequest req =
		    AFFILIATE__V1__GET_ADVERTISER_REQUEST__INIT;
		if ((rv = one_id(c, "advertiser", &req.id)) != AFF_OK)
			return (rv);
		req.editor_id = c->editor;
		return (cli_call(c, svc, "GetAdvertiser", &req.base));
	}
	return (unknown_verb(c, "list, get, create, update"));
}

static int
cmd_applications(struct cli *c)
{
	const ProtobufCServiceDescriptor *svc =
	    &affiliate__v1__application_service__descriptor;
	const char *v = verb(c, "apply, list, get"), *key;
	int rv;

	if (v == NULL)
		return (2);
	if (strcmp(v, "apply") == 0) {
		Affiliate__V1__ApplyRequest req = AFFILIATE__V1__APPLY_REQUEST__INIT;
		if ((rv = no_args(c)) != AFF_OK)
			return (rv);
		if (!c->advertiser_given)
			return (usage_error(
			    "applications apply needs --advertiser A"));
		/* An editor's key names its editor (the server fills it in);
		 * without a key nothing else can. */
		key = getenv("AFFILIATE_KEY");
		if (!c->editor_given && (key == NULL || *key == '\0'))
			return (usage_error("applications apply needs --editor E "
			                    "(or an editor's key in AFFILIATE_KEY)"));
		req.editor_id = c->editor;
		req.advertiser_id = c->advertiser;
		return (cli_call(c, svc, "Apply", &req.base));
	}
	if (strcmp(v, "list") == 0) {
		Affiliate__V1__ListApplicationsRequest req =
		    AFFILIATE__V1__LIST_APPLICATIONS_REQUEST__INIT;
		if ((rv = no_args(c)) != AFF_OK)
			return (rv);
		req.editor_id = c->editor;
		req.status = (char *)(c->status != NULL ? c->status : "");
		req.limit = (int32_t)c->limit;
		req.after = c->after;
		return (cli_call(c, svc, "ListApplications", &req.base));
	}
	if (strcmp(v, "get") == 0) {
		Affiliate__V1__GetApplicationRequest req =
		    AFFILIATE__V1__GET_APPLICATION_REQUEST__INIT;
		if ((rv = one_id(c, "application", &req.id)) != AFF_OK)
			return (rv);
		return (cli_call(c, svc, "GetApplication", &req.base));
	}
	return (unknown_verb(c, "apply, list, get"));
}

static int
cmd_orders(struct cli *c)
{
	Affiliate__V1__ListOrdersRequest req =
	    AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;
	const char *v = verb(c, "list, get");
	int rv;

	if (v == NULL)
		return (2);
	if (strcmp(v, "get") == 0)
		return (cli_catalog_order_get(c));
	if (strcmp(v, "list") != 0)
		return (unknown_verb(c, "list, get"));
	if ((rv = no_args(c)) != AFF_OK)
		return (rv);
	req.editor_id = c->editor;
	req.advertiser_id = c->advertiser;
	req.status = (char *)(c->status != NULL ? c->status : "");
	req.limit = (int32_t)c->limit;
	req.after = (char *)(c->after_text != NULL ? c->after_text : "");
	req.commission_mismatch = c->mismatch;
	return (cli_call(c, &affiliate__v1__order_service__descriptor,
	    "ListOrders", &req.base));
}

/* Reads a whole file (or stdin for "-"); NULL on error. */
static uint8_t *
read_all(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	uint8_t *buf = NULL, *nb;
	size_t cap = 0, n;

	*len = 0;
	if (f == NULL)
		return (NULL);
	do {
		if (*len == cap) {
			cap = cap > 0 ? cap * 2 : 65536;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		n = fread(buf + *len, 1, cap - *len, f);
		*len += n;
	} while (n > 0);
	if (f != stdin)
		fclose(f);
	return (buf);
}


static int
cmd_keys(struct cli *c)
{
	const ProtobufCServiceDescriptor *svc =
	    &affiliate__v1__key_service__descriptor;
	const char *v = verb(c, "create, list, revoke");
	int rv;

	if (v == NULL)
		return (2);
	if (strcmp(v, "create") == 0) {
		Affiliate__V1__CreateKeyRequest req =
		    AFFILIATE__V1__CREATE_KEY_REQUEST__INIT;
		if ((rv = no_args(c)) != AFF_OK)
			return (rv);
		if (c->admin == c->editor_given)
			return (usage_error(
			    "keys create takes --editor E or --admin"));
		req.editor_id = c->editor;
		req.admin = c->admin;
		return (cli_call(c, svc, "CreateKey", &req.base));
	}
	if (strcmp(v, "list") == 0) {
		Affiliate__V1__ListKeysRequest req =
		    AFFILIATE__V1__LIST_KEYS_REQUEST__INIT;
		if ((rv = no_args(c)) != AFF_OK)
			return (rv);
		return (cli_call(c, svc, "ListKeys", &req.base));
	}
	if (strcmp(v, "revoke") == 0) {
		Affiliate__V1__RevokeKeyRequest req =
		    AFFILIATE__V1__REVOKE_KEY_REQUEST__INIT;
		if ((rv = one_id(c, "key", &req.id)) != AFF_OK)
			return (rv);
		return (cli_call(c, svc, "RevokeKey", &req.base));
	}
	return (unknown_verb(c, "create, list, revoke"));
}

/* webhook sign [--plain | --standard [--id ID]] FILE|-: prints the
 * X-Partner-Signature, or the Standard Webhooks headers. */
static int
webhook_sign(struct cli *c)
{
	struct aff_webhook_secrets ws;
	char sig[128], *dir;
	uint8_t *body;
	size_t len;
	int made = 0;

	if (c->argc < 3)
		return (usage_error("webhook sign needs a FILE (or - for stdin)"));
	if (c->standard && c->plain)
		return (usage_error("webhook sign takes --plain or --standard, "
		                    "not both"));
	if (c->webhook_id != NULL && !c->standard)
		return (usage_error("--id is the webhook-id of --standard"));
	if (c->argc > 3)
		return (usage_error("webhook sign takes one FILE, not also '%s'",
		    c->argv[3]));
	if ((body = read_all(c->argv[2], &len)) == NULL) {
		fprintf(stderr, "affiliate: cannot read %s\n", c->argv[2]);
		return (1);
	}
	dir = (char *)aff_env("AFFILIATE_DATA_DIR", "data");
	/* Never make a secret here: only the server does. */
	if (getenv("AFFILIATE_WEBHOOK_SECRET") == NULL) {
		char path[1024];
		FILE *f;
		snprintf(path, sizeof(path), "%s/webhook_secret", dir);
		if ((f = fopen(path, "r")) == NULL) {
			fprintf(stderr,
			    "affiliate: no secret: set AFFILIATE_WEBHOOK_SECRET or "
			    "AFFILIATE_DATA_DIR (no %s)\n",
			    path);
			free(body);
			return (1);
		}
		fclose(f);
	}
	if (aff_webhook_secrets_load(&ws, getenv("AFFILIATE_WEBHOOK_SECRET"), dir,
	        &made) != AFF_OK) {
		fprintf(stderr, "affiliate: the webhook secret cannot be read\n");
		free(body);
		return (1);
	}
	if (c->standard) {
		made = cli_webhook_sign_standard(ws.secret[0], c->webhook_id,
		    body, len, stdout);
		aff_webhook_secrets_fini(&ws);
		free(body);
		return (made);
	}
	/* The timestamped form by default: the plain one never expires, so a
	 * captured request can be replayed (see the README). */
	aff_webhook_sign(ws.secret[0], body, len,
	    c->plain ? 0 : aff_now_ms() / 1000, sig);
	puts(sig);
	aff_webhook_secrets_fini(&ws);
	free(body);
	return (0);
}

/* webhook require-timestamp ADVERTISER on|off (admin). */
static int
webhook_require_timestamp(struct cli *c)
{
	Affiliate__V1__SetWebhookPolicyRequest req =
	    AFFILIATE__V1__SET_WEBHOOK_POLICY_REQUEST__INIT;

	if (c->argc < 4)
		return (usage_error(
		    "webhook require-timestamp needs ADVERTISER and on or off"));
	if (c->argc > 4)
		return (usage_error(
		    "webhook require-timestamp takes ADVERTISER and on or off, "
		    "not also '%s'",
		    c->argv[4]));
	if (aff_parse_int64(c->argv[2], 1, INT64_MAX, &req.advertiser_id) !=
	    AFF_OK)
		return (usage_error(
		    "advertiser id must be a positive integer, not '%s'",
		    c->argv[2]));
	if (strcmp(c->argv[3], "on") == 0)
		req.require_timestamp = 1;
	else if (strcmp(c->argv[3], "off") != 0)
		return (usage_error(
		    "webhook require-timestamp takes on or off, not '%s'",
		    c->argv[3]));
	return (cli_call(c, &affiliate__v1__webhook_secret_service__descriptor,
	    "SetWebhookPolicy", &req.base));
}

static int
cmd_webhook(struct cli *c)
{
	const char *v = verb(c, "sign, secret rotate, require-timestamp");

	if (v == NULL)
		return (2);
	if (strcmp(v, "sign") == 0)
		return (webhook_sign(c));
	if (strcmp(v, "require-timestamp") == 0)
		return (webhook_require_timestamp(c));
	if (strcmp(v, "secret") == 0) {
		Affiliate__V1__RotateWebhookSecretRequest req =
		    AFFILIATE__V1__ROTATE_WEBHOOK_SECRET_REQUEST__INIT;
		if (c->argc < 3 || strcmp(c->argv[2], "rotate") != 0)
			return (usage_error("webhook secret needs a command: rotate"));
		if (c->argc > 3)
			return (usage_error(
			    "webhook secret rotate takes no arguments, not '%s'",
			    c->argv[3]));
		if (!c->advertiser_given)
			return (usage_error(
			    "webhook secret rotate needs --advertiser A"));
		req.advertiser_id = c->advertiser;
		req.grace_seconds = (int32_t)c->grace;
		return (cli_call(c, &affiliate__v1__webhook_secret_service__descriptor,
		    "RotateWebhookSecret", &req.base));
	}
	return (unknown_verb(c, "sign, secret rotate, require-timestamp"));
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "timeout", required_argument, NULL, 't' },
		{ "request-id", required_argument, NULL, 'r' },
		{ "editor", required_argument, NULL, 'e' },
		{ "advertiser", required_argument, NULL, 'A' },
		{ "status", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'l' },
		{ "after", required_argument, NULL, 'a' },
		{ "plain", no_argument, NULL, 'P' },
		/* The default now; still taken so that scripts keep working. */
		{ "timestamp", no_argument, NULL, 'T' },
		{ "admin", no_argument, NULL, 'M' },
		{ "standard", no_argument, NULL, 'W' },
		{ "id", required_argument, NULL, 'I' },
		{ "grace", required_argument, NULL, 'g' },
		{ "state", required_argument, NULL, 'S' },
		{ "all-dead", no_argument, NULL, 'D' },
		{ "hex", no_argument, NULL, 'x' },
		{ "mismatch", no_argument, NULL, 'X' },
		{ "from", required_argument, NULL, CLI_REPORT_OPT_FROM },
		{ "to", required_argument, NULL, CLI_REPORT_OPT_TO },
		{ "group-by", required_argument, NULL, CLI_REPORT_OPT_GROUP_BY },
		{ "tz", required_argument, NULL, CLI_REPORT_OPT_TZ },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli c;
	int64_t n;
	int opt;

	memset(&c, 0, sizeof(c));
	c.url = aff_env("AFFILIATE_URL", "tcp://127.0.0.1:5555");
	c.timeout_ms = 5000;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			c.url = optarg;
			break;
		case 'r':
			c.request_id = optarg;
			break;
		case 't':
			if (aff_parse_int64(optarg, 1, 3600000, &n) != AFF_OK)
				return (usage_error(
				    "--timeout must be 1..3600000 ms, not '%s'",
				    optarg));
			c.timeout_ms = (int)n;
			break;
		case 's':
			c.status = optarg;
			break;
		case 'S':
			c.state = optarg;
			break;
		case 'D':
			c.all_dead = 1;
			break;
		case 'P':
			c.plain = 1;
			break;
		case 'T':
			c.plain = 0;
			break;
		case 'M':
			c.admin = 1;
			break;
		case 'W':
			c.standard = 1;
			break;
		case 'I':
			c.webhook_id = optarg;
			break;
		case 'x':
			c.hex = 1;
			break;
		case 'X':
			c.mismatch = 1;
			break;
		case CLI_REPORT_OPT_FROM:
		case CLI_REPORT_OPT_TO:
		case CLI_REPORT_OPT_GROUP_BY:
		case CLI_REPORT_OPT_TZ:
			cli_report_opt(&c, opt, optarg);
			break;
		case 'g':
			if (aff_parse_int64(optarg, 0, 30 * 86400, &c.grace) != AFF_OK)
				return (usage_error(
				    "--grace must be 0..2592000 seconds, not '%s'", optarg));
			break;
		case 'A':
		case 'e':
		case 'l':
		case 'a':
			/* Only the form is checked here; the server judges the
			 * values (a negative id is its INVALID_ARGUMENT). */
			if (aff_parse_int64(optarg, opt == 'l' ? INT32_MIN : INT64_MIN,
			        opt == 'l' ? INT32_MAX : INT64_MAX, &n) != AFF_OK)
				return (usage_error("--%s expects an integer, not '%s'",
				    opt == 'A'       ? "advertiser"
				        : opt == 'e' ? "editor"
				        : opt == 'l' ? "limit"
				                     : "after",
				    optarg));
			if (opt == 'e') {
				c.editor = n;
				c.editor_given = 1;
			} else if (opt == 'A') {
				c.advertiser = n;
				c.advertiser_given = 1;
			} else if (opt == 'l')
				c.limit = n;
			else {
				/* A number for the id-paged lists, the same
				 * text as the orders' cursor. */
				c.after = n;
				c.after_text = optarg;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return (0);
		default:
			fputs(usage, stderr);
			return (2);
		}
	}
	c.argc = argc - optind;
	c.argv = argv + optind;
	if (c.argc < 1)
		return (usage_error("no command given"));
	if (strcmp(c.argv[0], "health") == 0)
		return (cmd_health(&c));
	if (strcmp(c.argv[0], "advertisers") == 0)
		return (cmd_advertisers(&c));
	if (strcmp(c.argv[0], "applications") == 0)
		return (cmd_applications(&c));
	if (strcmp(c.argv[0], "orders") == 0)
		return (cmd_orders(&c));
	if (strcmp(c.argv[0], "webhook") == 0)
		return (cmd_webhook(&c));
	if (strcmp(c.argv[0], "keys") == 0)
		return (cmd_keys(&c));
	if (strcmp(c.argv[0], "jobs") == 0)
		return (cmd_jobs(&c));
	if (strcmp(c.argv[0], "rpc") == 0) {
		struct cli_rpc_opts ro = { c.url, c.request_id, c.timeout_ms, c.hex };
		return (cli_rpc(&ro, c.argc - 1, c.argv + 1));
	}
	if (strcmp(c.argv[0], "editors") == 0)
		return (cli_catalog_editors(&c));
	if (strcmp(c.argv[0], "eligibility") == 0)
		return (cli_catalog_eligibility(&c));
	if (strcmp(c.argv[0], "postbacks") == 0) {
		struct cli_postback_opts po = { c.editor, c.limit, c.after };
		return (cli_postback(c.argc, c.argv, &po, postback_call, &c));
	}
	if (strcmp(c.argv[0], "reports") == 0)
		return (cli_reports(&c));
	return (usage_error("unknown command '%s'", c.argv[0]));
}
