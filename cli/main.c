/*
 * main.c - `affiliate`, the command-line RPC client. Calls affiliate-server
 * over NNG and prints the reply as JSON on stdout. An error status prints
 * {"error":{...}} on stdout, a one-line reason on stderr, and exits 1;
 * a usage error exits 2.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aff_client.h"
#include "aff_err.h"
#include "aff_json.h"
#include "aff_util.h"
#include "aff_webhook.h"
#include "affiliate/v1/admin.pb-c.h"
#include "affiliate/v1/affiliate.pb-c.h"
#include "affiliate/v1/health.pb-c.h"

static const char usage[] =
    "usage: affiliate [--url URL] [--timeout MS] [--request-id ID] COMMAND\n"
    "commands:\n"
    "  health\n"
    "  advertisers list [--editor E] [--limit N] [--after ID]\n"
    "  advertisers get ID [--editor E]\n"
    "  applications apply --editor E --advertiser A\n"
    "  applications list [--editor E] [--status S] [--limit N] [--after ID]\n"
    "  applications get ID\n"
    "  orders list [--editor E] [--advertiser A] [--status S] [--limit N] [--after C]\n"
    "  webhook sign [--timestamp] FILE|-   (the X-Partner-Signature for a body)\n"
    "  webhook secret rotate --advertiser A [--grace SECS]   (admin)\n"
    "  keys create --editor E | --admin    (admin; prints the key once)\n"
    "  keys list                           (admin)\n"
    "  keys revoke ID                      (admin)\n"
    "URL defaults to $AFFILIATE_URL or tcp://127.0.0.1:5555. The API key, when\n"
    "needed, is $AFFILIATE_KEY (sent as 'authorization: Bearer $AFFILIATE_KEY').\n"
    "webhook sign uses the first of $AFFILIATE_WEBHOOK_SECRET, else\n"
    "$AFFILIATE_DATA_DIR/webhook_secret (data/webhook_secret).\n";

struct cli {
	const char *url;
	const char *request_id;
	int timeout_ms;
	int64_t editor, advertiser, limit, after;
	const char *status;
	const char *after_text;
	int timestamp;
	int admin;
	int64_t grace;
	int argc;
	char **argv; /* the positional words */
};

static int
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "affiliate: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage);
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

/* Makes the call and prints its outcome; returns the exit status. */
static int
cli_call(struct cli *c, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req)
{
	struct aff_client_opts co = {
		.url = c->url,
		.timeout_ms = c->timeout_ms,
		.wait_connected = 1,
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
	json_t *j;
	int rv;

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
		        ? "the URL is not a valid NNG address"
		        : "cannot connect to affiliate-server");
		client = NULL;
	} else
		rv = aff_client_call(client, svc, method, req, &opts, &resp, &res);
	if (rv == AFF_OK) {
		j = aff_json_from_message(resp);
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

static int
cmd_health(struct cli *c)
{
	Affiliate__V1__HealthCheckRequest req =
	    AFFILIATE__V1__HEALTH_CHECK_REQUEST__INIT;

	if (c->argc != 1)
		return (usage_error("health takes no arguments%s", ""));
	return (cli_call(c, &affiliate__v1__health_service__descriptor, "Check",
	    &req.base));
}

static int
cmd_advertisers(struct cli *c)
{
	if (c->argc >= 2 && strcmp(c->argv[1], "list") == 0 && c->argc == 2) {
		Affiliate__V1__ListAdvertisersRequest req =
		    AFFILIATE__V1__LIST_ADVERTISERS_REQUEST__INIT;
		req.editor_id = c->editor;
		req.limit = (int32_t)c->limit;
		req.after = c->after;
		return (cli_call(c, &affiliate__v1__advertiser_service__descriptor,
		    "ListAdvertisers", &req.base));
	}
	if (c->argc == 3 && strcmp(c->argv[1], "get") == 0) {
		Affiliate__V1__GetAdvertiserRequest req =
		    AFFILIATE__V1__GET_ADVERTISER_REQUEST__INIT;
		if (aff_parse_int64(c->argv[2], INT64_MIN, INT64_MAX, &req.id) !=
		    AFF_OK)
			return (usage_error(
			    "advertiser id must be an integer, not '%s'",
			    c->argv[2]));
		req.editor_id = c->editor;
		return (cli_call(c, &affiliate__v1__advertiser_service__descriptor,
		    "GetAdvertiser", &req.base));
	}
	return (usage_error("unknown advertisers command%s", ""));
}

static int
cmd_applications(struct cli *c)
{
	const ProtobufCServiceDescriptor *svc =
	    &affiliate__v1__application_service__descriptor;

	if (c->argc == 2 && strcmp(c->argv[1], "apply") == 0) {
		Affiliate__V1__ApplyRequest req = AFFILIATE__V1__APPLY_REQUEST__INIT;
		req.editor_id = c->editor;
		req.advertiser_id = c->advertiser;
		return (cli_call(c, svc, "Apply", &req.base));
	}
	if (c->argc == 2 && strcmp(c->argv[1], "list") == 0) {
		Affiliate__V1__ListApplicationsRequest req =
		    AFFILIATE__V1__LIST_APPLICATIONS_REQUEST__INIT;
		req.editor_id = c->editor;
		req.status = (char *)(c->status != NULL ? c->status : "");
		req.limit = (int32_t)c->limit;
		req.after = c->after;
		return (cli_call(c, svc, "ListApplications", &req.base));
	}
	if (c->argc == 3 && strcmp(c->argv[1], "get") == 0) {
		Affiliate__V1__GetApplicationRequest req =
		    AFFILIATE__V1__GET_APPLICATION_REQUEST__INIT;
		if (aff_parse_int64(c->argv[2], INT64_MIN, INT64_MAX, &req.id) !=
		    AFF_OK)
			return (usage_error(
			    "application id must be an integer, not '%s'",
			    c->argv[2]));
		return (cli_call(c, svc, "GetApplication", &req.base));
	}
	return (usage_error("unknown applications command%s", ""));
}

static int
cmd_orders(struct cli *c)
{
	Affiliate__V1__ListOrdersRequest req =
	    AFFILIATE__V1__LIST_ORDERS_REQUEST__INIT;

	if (c->argc != 2 || strcmp(c->argv[1], "list") != 0)
		return (usage_error("unknown orders command%s", ""));
	req.editor_id = c->editor;
	req.advertiser_id = c->advertiser;
	req.status = (char *)(c->status != NULL ? c->status : "");
	req.limit = (int32_t)c->limit;
	req.after = (char *)(c->after_text != NULL ? c->after_text : "");
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

	if (c->argc == 2 && strcmp(c->argv[1], "create") == 0) {
		Affiliate__V1__CreateKeyRequest req =
		    AFFILIATE__V1__CREATE_KEY_REQUEST__INIT;
		if (c->admin == (c->editor != 0))
			return (usage_error(
			    "keys create takes --editor E or --admin%s", ""));
		req.editor_id = c->editor;
		req.admin = c->admin;
		return (cli_call(c, svc, "CreateKey", &req.base));
	}
	if (c->argc == 2 && strcmp(c->argv[1], "list") == 0) {
		Affiliate__V1__ListKeysRequest req =
		    AFFILIATE__V1__LIST_KEYS_REQUEST__INIT;
		return (cli_call(c, svc, "ListKeys", &req.base));
	}
	if (c->argc == 3 && strcmp(c->argv[1], "revoke") == 0) {
		Affiliate__V1__RevokeKeyRequest req =
		    AFFILIATE__V1__REVOKE_KEY_REQUEST__INIT;
		if (aff_parse_int64(c->argv[2], 1, INT64_MAX, &req.id) != AFF_OK)
			return (usage_error(
			    "key id must be a positive integer, not '%s'",
			    c->argv[2]));
		return (cli_call(c, svc, "RevokeKey", &req.base));
	}
	return (usage_error("unknown keys command%s", ""));
}

static int
cmd_webhook(struct cli *c)
{
	struct aff_webhook_secrets ws;
	char sig[128], *dir;
	uint8_t *body;
	size_t len;
	int made = 0;

	if (c->argc == 3 && strcmp(c->argv[1], "secret") == 0 &&
	    strcmp(c->argv[2], "rotate") == 0) {
		Affiliate__V1__RotateWebhookSecretRequest req =
		    AFFILIATE__V1__ROTATE_WEBHOOK_SECRET_REQUEST__INIT;
		if (c->advertiser <= 0)
			return (usage_error(
			    "webhook secret rotate needs --advertiser A%s", ""));
		req.advertiser_id = c->advertiser;
		req.grace_seconds = (int32_t)c->grace;
		return (cli_call(c, &affiliate__v1__webhook_secret_service__descriptor,
		    "RotateWebhookSecret", &req.base));
	}
	if (c->argc != 3 || strcmp(c->argv[1], "sign") != 0)
		return (usage_error("unknown webhook command%s", ""));
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
	aff_webhook_sign(ws.secret[0], body, len,
	    c->timestamp ? aff_now_ms() / 1000 : 0, sig);
	puts(sig);
	aff_webhook_secrets_fini(&ws);
	free(body);
	return (0);
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
		{ "timestamp", no_argument, NULL, 'T' },
		{ "admin", no_argument, NULL, 'M' },
		{ "grace", required_argument, NULL, 'g' },
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
		case 'T':
			c.timestamp = 1;
			break;
		case 'M':
			c.admin = 1;
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
			if (aff_parse_int64(optarg, opt == 'l' ? INT32_MIN : INT64_MIN,
			        opt == 'l' ? INT32_MAX : INT64_MAX, &n) != AFF_OK)
				return (usage_error("expected an integer, not '%s'",
				    optarg));
			if (opt == 'e')
				c.editor = n;
			else if (opt == 'A')
				c.advertiser = n;
			else if (opt == 'a')
				c.after_text = optarg;
			else if (opt == 'l')
				c.limit = n;
			else
				c.after = n;
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
		return (usage_error("no command given%s", ""));
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
	return (usage_error("unknown command '%s'", c.argv[0]));
}
