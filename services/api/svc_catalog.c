/*
 * svc_catalog.c - CatalogService: admins create and change editors and
 * advertisers and say who may join whom (eligibility). Admin keys only
 * (the dispatcher checks, see auth.h). Every value is checked here, each
 * refusal naming its field and rule, so the database's CHECKs are the
 * second line, never the message a caller sees. Each write moves the
 * catalog version in its transaction (store.h), so every cached read is
 * retired at once.
 */
#include <string.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_status.h"
#include "affiliate/v1/admin.pb-c.h"
#include "services.h"

#define NAME_MAX_CHARS 200
#define CATEGORY_MAX_CHARS 100
#define WEBSITE_MAX_BYTES 2048
#define COOKIE_DAYS_MAX 3650
#define COOKIE_DAYS_DEFAULT 30

/* Characters of a UTF-8 string (the transcoder and protobuf-c have
 * checked it is valid UTF-8). */
static size_t
chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return (n);
}

/* Is p at a C1 control character (U+0080..U+009F, UTF-8 C2 80..C2 9F)?
 * Unicode counts them as controls as it does C0's: U+0085 is a line
 * break to some readers, U+009B a terminal's CSI. */
static int
c1_control(const char *p)
{
	return ((unsigned char)p[0] == 0xc2 && (unsigned char)p[1] >= 0x80 &&
	    (unsigned char)p[1] <= 0x9f);
}

/* A name or category: 1..max characters, no control character (C0, DEL
 * or C1), not only spaces. */
static int
check_text(struct rpc_call *call, const char *field, const char *v,
    size_t max)
{
	size_t n = chars(v);
	int blank = 1;

	for (const char *p = v; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f || c1_control(p))
			return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
			    "%s must not contain control characters", field));
		if (*p != ' ')
			blank = 0;
	}
	if (n == 0 || blank || n > max)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "%s must be 1 to %zu characters, not blank", field, max));
	return (AFF_OK);
}

/* ISO 4217's form: three capital letters (EUR, USD, CHF). */
static int
check_currency(struct rpc_call *call, const char *v)
{
	if (strlen(v) != 3 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' ||
	    v[1] > 'Z' || v[2] < 'A' || v[2] > 'Z')
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "currency must be an ISO 4217 code: three capital letters "
		    "such as EUR"));
	return (AFF_OK);
}

/* "" or an absolute http(s) URL without spaces or control characters. */
static int
check_website(struct rpc_call *call, const char *v)
{
	size_t n = strlen(v);

	if (n == 0)
		return (AFF_OK);
	if (n > WEBSITE_MAX_BYTES ||
	    (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0) ||
	    n <= (size_t)(v[4] == 's' ? 8 : 7))
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "website must be empty or an http:// or https:// URL of at "
		    "most %d bytes",
		    WEBSITE_MAX_BYTES));
	for (const char *p = v; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || c1_control(p))
			return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
			    "website must not contain spaces or control "
			    "characters"));
	return (AFF_OK);
}

/* Checks the fields in->set names. */
static int
check_advertiser(struct rpc_call *call, const struct store_advertiser_in *in)
{
	char words[64];
	int rv;

	if ((in->set & STORE_ADV_NAME) &&
	    (rv = check_text(call, "name", in->name, NAME_MAX_CHARS)) != AFF_OK)
		return (rv);
	if ((in->set & STORE_ADV_CATEGORY) &&
	    (rv = check_text(call, "category", in->category,
	         CATEGORY_MAX_CHARS)) != AFF_OK)
		return (rv);
	if ((in->set & STORE_ADV_CURRENCY) &&
	    (rv = check_currency(call, in->currency)) != AFF_OK)
		return (rv);
	if ((in->set & STORE_ADV_RATE) &&
	    (in->commission_rate_bps < 0 || in->commission_rate_bps > 10000))
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "commission_rate_bps must be from 0 to 10000 (basis points: "
		    "750 is 7.50 %%), not %d",
		    (int)in->commission_rate_bps));
	if ((in->set & STORE_ADV_STATUS) &&
	    aff_status_parse(AFF_ADVERTISER_STATUS, in->status) == 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT, "status must be %s",
		    aff_status_list(AFF_ADVERTISER_STATUS, words, sizeof(words))));
	if ((in->set & STORE_ADV_WEBSITE) &&
	    (rv = check_website(call, in->website)) != AFF_OK)
		return (rv);
	if ((in->set & STORE_ADV_COOKIE_DAYS) &&
	    (in->cookie_days < 1 || in->cookie_days > COOKIE_DAYS_MAX))
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "cookie_days must be from 1 to %d, not %d", COOKIE_DAYS_MAX,
		    (int)in->cookie_days));
	return (AFF_OK);
}

/* The answer to a store failure of a write to the row id of kind. */
static int
write_failed(struct rpc_call *call, int rv, const char *kind, int64_t id)
{
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(
		    call, rv, "no %s with id %lld", kind, (long long)id));
	return (svc_store_failed(call, rv));
}

static int
create_advertiser(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__CreateAdvertiserRequest *in = (const void *)in_;
	struct store_advertiser_in a = {
		.set = STORE_ADV_ALL,
		.name = in->name,
		.category = in->category,
		.currency = in->currency,
		.commission_rate_bps = in->commission_rate_bps,
		.status = in->status[0] != '\0' ? in->status : "active",
		.website = in->website,
		.cookie_days = in->cookie_days != 0 ? in->cookie_days
		                                    : COOKIE_DAYS_DEFAULT,
		.allow_other_currencies = in->allow_other_currencies,
	};
	Affiliate__V1__Advertiser *adv;
	int rv;

	if (in->currency[0] == '\0')
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "currency is required (ISO 4217, such as EUR)"));
	if ((rv = check_advertiser(call, &a)) != AFF_OK)
		return (rv);
	rv = call->store->ops->advertiser_create(
	    call->store, &a, &call->arena, &adv);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	aff_info("catalog: advertiser %lld created by key %lld",
	    (long long)adv->id, (long long)call->caller.key_id);
	*out = &adv->base;
	return (AFF_OK);
}

/*
 * Reads an update_mask against the names of the message's fields: *set
 * gets bits[i] for each names[i] given. INVALID_ARGUMENT (answered) for
 * an empty mask or a name that is not a field one may change.
 */
static int
read_mask(struct rpc_call *call, char **mask, size_t n,
    const char *const *names, const unsigned *bits, size_t n_names,
    unsigned *set)
{
	*set = 0;
	if (n == 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "nothing to change: give at least one field (update_mask)"));
	for (size_t i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < n_names; k++)
			if (strcmp(mask[i], names[k]) == 0)
				break;
		if (k == n_names)
			return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
			    "update_mask: '%.64s' is not a field that can be "
			    "changed",
			    mask[i]));
		*set |= bits[k];
	}
	return (AFF_OK);
}

static int
update_advertiser(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	static const char *const names[] = { "name", "category", "currency",
		"commission_rate_bps", "status", "website", "cookie_days",
		"allow_other_currencies" };
	static const unsigned bits[] = { STORE_ADV_NAME, STORE_ADV_CATEGORY,
		STORE_ADV_CURRENCY, STORE_ADV_RATE, STORE_ADV_STATUS,
		STORE_ADV_WEBSITE, STORE_ADV_COOKIE_DAYS,
		STORE_ADV_OTHER_CURRENCIES };
	const Affiliate__V1__UpdateAdvertiserRequest *in = (const void *)in_;
	struct store_advertiser_in a = {
		.name = in->name,
		.category = in->category,
		.currency = in->currency,
		.commission_rate_bps = in->commission_rate_bps,
		.status = in->status,
		.website = in->website,
		.cookie_days = in->cookie_days,
		.allow_other_currencies = in->allow_other_currencies,
	};
	Affiliate__V1__Advertiser *adv;
	int rv;

	if (in->id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "id must be a positive integer"));
	if ((rv = read_mask(call, in->update_mask, in->n_update_mask, names,
	         bits, sizeof(names) / sizeof(names[0]), &a.set)) != AFF_OK ||
	    (rv = check_advertiser(call, &a)) != AFF_OK)
		return (rv);
	rv = call->store->ops->advertiser_update(
	    call->store, in->id, &a, &call->arena, &adv);
	if (rv != AFF_OK)
		return (write_failed(call, rv, "advertiser", in->id));
	aff_info("catalog: advertiser %lld changed by key %lld",
	    (long long)adv->id, (long long)call->caller.key_id);
	*out = &adv->base;
	return (AFF_OK);
}

static int
create_editor(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	const Affiliate__V1__CreateEditorRequest *in = (const void *)in_;
	struct store_editor_in e = { .name = in->name, .website = in->website };
	Affiliate__V1__Editor *ed;
	int rv;

	if ((rv = check_text(call, "name", in->name, NAME_MAX_CHARS)) !=
	        AFF_OK ||
	    (rv = check_website(call, in->website)) != AFF_OK)
		return (rv);
	rv = call->store->ops->editor_create(call->store, &e, &call->arena, &ed);
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	aff_info("catalog: editor %lld created by key %lld", (long long)ed->id,
	    (long long)call->caller.key_id);
	*out = &ed->base;
	return (AFF_OK);
}

static int
update_editor(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	static const char *const names[] = { "name", "website" };
	static const unsigned bits[] = { 1, 2 };
	const Affiliate__V1__UpdateEditorRequest *in = (const void *)in_;
	struct store_editor_in e = { 0 };
	Affiliate__V1__Editor *ed;
	unsigned set;
	int rv;

	if (in->id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "id must be a positive integer"));
	if ((rv = read_mask(call, in->update_mask, in->n_update_mask, names,
	         bits, 2, &set)) != AFF_OK)
		return (rv);
	if ((set & 1) &&
	    (rv = check_text(call, "name", in->name, NAME_MAX_CHARS)) != AFF_OK)
		return (rv);
	if ((set & 2) && (rv = check_website(call, in->website)) != AFF_OK)
		return (rv);
	e.name = (set & 1) ? in->name : NULL;
	e.website = (set & 2) ? in->website : NULL;
	rv = call->store->ops->editor_update(
	    call->store, in->id, &e, &call->arena, &ed);
	if (rv != AFF_OK)
		return (write_failed(call, rv, "editor", in->id));
	aff_info("catalog: editor %lld changed by key %lld", (long long)ed->id,
	    (long long)call->caller.key_id);
	*out = &ed->base;
	return (AFF_OK);
}

/* Grants or revokes; both ids must name rows (NOT_FOUND saying which). */
static int
set_eligibility(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out, int eligible)
{
	const Affiliate__V1__EligibilityRequest *in = (const void *)in_;
	Affiliate__V1__Eligibility *resp;
	Affiliate__V1__Advertiser *adv;
	int rv;

	if (in->editor_id <= 0 || in->advertiser_id <= 0)
		return (rpc_errorf(call, AFF_INVALID_ARGUMENT,
		    "editor_id and advertiser_id must be positive integers"));
	if ((rv = svc_check_editor(call, in->editor_id)) != AFF_OK)
		return (rv);
	rv = call->store->ops->advertiser_get(
	    call->store, in->advertiser_id, &call->arena, &adv);
	if (rv != AFF_OK)
		return (write_failed(call, rv, "advertiser", in->advertiser_id));
	if ((resp = aff_arena_alloc(&call->arena, sizeof(*resp))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	affiliate__v1__eligibility__init(resp);
	/* A row deleted between the checks and the write: the foreign key
	 * answers NOT_FOUND, without saying which. */
	rv = call->store->ops->eligibility_set(
	    call->store, in->editor_id, in->advertiser_id, eligible);
	if (rv == AFF_NOT_FOUND)
		return (rpc_errorf(call, rv, "no editor %lld or advertiser %lld",
		    (long long)in->editor_id, (long long)in->advertiser_id));
	if (rv != AFF_OK)
		return (svc_store_failed(call, rv));
	resp->editor_id = in->editor_id;
	resp->advertiser_id = in->advertiser_id;
	resp->eligible = eligible;
	aff_info("catalog: editor %lld %s advertiser %lld (key %lld)",
	    (long long)in->editor_id, eligible ? "may join" : "may no longer join",
	    (long long)in->advertiser_id, (long long)call->caller.key_id);
	*out = &resp->base;
	return (AFF_OK);
}

static int
grant_eligibility(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	return (set_eligibility(call, in_, out, 1));
}

static int
revoke_eligibility(struct rpc_call *call, const ProtobufCMessage *in_,
    ProtobufCMessage **out)
{
	return (set_eligibility(call, in_, out, 0));
}

/* The creations are keyed: the same request sent again (NNG resends on a
 * dropped connection) gets the first answer instead of a second row. The
 * others are idempotent by themselves. */
static const struct rpc_method_def catalog_methods[] = {
	{ .name = "CreateAdvertiser", .fn = create_advertiser,
	    .access = AUTH_ACCESS_ADMIN, .keyed = 1 },
	{ .name = "UpdateAdvertiser", .fn = update_advertiser,
	    .access = AUTH_ACCESS_ADMIN },
	{ .name = "CreateEditor", .fn = create_editor,
	    .access = AUTH_ACCESS_ADMIN, .keyed = 1 },
	{ .name = "UpdateEditor", .fn = update_editor,
	    .access = AUTH_ACCESS_ADMIN },
	{ .name = "GrantEligibility", .fn = grant_eligibility,
	    .access = AUTH_ACCESS_ADMIN },
	{ .name = "RevokeEligibility", .fn = revoke_eligibility,
	    .access = AUTH_ACCESS_ADMIN },
};

const struct rpc_service_def svc_catalog_def = {
	.desc = &affiliate__v1__catalog_service__descriptor,
	.methods = catalog_methods,
	.n_methods = sizeof(catalog_methods) / sizeof(catalog_methods[0]),
};
