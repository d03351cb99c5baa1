/*
 * scrape.c - see scrape.h.
 */
#include "scrape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aff_client.h"
#include "aff_err.h"
#include "aff_log.h"
#include "aff_metrics.h"
#include "affiliate/v1/health.pb-c.h"
#include "metrics.h"

int
scrape_open(bridge *b)
{
	struct aff_tls_files tls = { b->cfg.server_tls_cert,
		b->cfg.server_tls_key, b->cfg.server_tls_ca };
	struct aff_client_opts co = { 0 };
	char err[256];
	int rv;

	if (aff_client_url_list(b->cfg.server_url, b->scrape_urls,
	        &b->n_scrape, err, sizeof(err)) != AFF_OK)
		return (AFF_INVALID_ARGUMENT); /* bridge_start said it */
	if (b->n_scrape < 2)
		return (AFF_OK); /* b->client reaches the one server */
	for (int i = 0; i < b->n_scrape; i++) {
		/* NNG sockets, not direct: any thread may scrape, and a
		 * connection per civetweb thread per server is not worth it
		 * for a call every few seconds. */
		co.url = b->scrape_urls[i];
		co.timeout_ms = SCRAPE_TIMEOUT_MS;
		co.n_sockets = 1;
		co.tls = &tls;
		if ((rv = aff_client_open(&b->scrape_clients[i], &co)) != AFF_OK) {
			aff_error("bridge: cannot use server address %s for "
			          "/metrics: %s",
			    b->scrape_urls[i], aff_strerror(rv));
			scrape_close(b);
			return (rv);
		}
	}
	return (AFF_OK);
}

void
scrape_close(bridge *b)
{
	for (int i = 0; i < AFF_CLIENT_MAX_URLS; i++) {
		aff_client_close(b->scrape_clients[i]);
		b->scrape_clients[i] = NULL;
	}
}

/* One server's HealthService.Metrics text (caller frees), or NULL. */
static char *
scrape_server(bridge *b, aff_client *c, const char *request_id)
{
	Affiliate__V1__MetricsResponse *r;
	struct aff_call_opts opts = { 0 };
	struct aff_call_result res;
	char *text = NULL;

	opts.request_id = request_id;
	opts.timeout_ms = b->cfg.timeout_ms > 0 &&
	        b->cfg.timeout_ms < SCRAPE_TIMEOUT_MS
	    ? b->cfg.timeout_ms
	    : SCRAPE_TIMEOUT_MS;
	if (aff_client_invoke(c, affiliate__v1__health_service__descriptor.name,
	        "Metrics", NULL, 0, &opts, &res) == AFF_OK &&
	    (r = affiliate__v1__metrics_response__unpack(NULL, res.payload_len,
	         res.payload)) != NULL) {
		text = strdup(r->text);
		affiliate__v1__metrics_response__free_unpacked(r, NULL);
	}
	aff_call_result_fini(&res);
	return (text);
}

/* A family in a server's text: from its "# HELP" line to the next. */
struct fam {
	const char *name;
	size_t name_len;
	const char *head, *samples, *end; /* head's comment lines, samples */
};

#define FAMS_MAX 128

static size_t
fams_split(const char *t, struct fam *f, size_t max)
{
	size_t n = 0;
	const char *p = t;

	while (*p != '\0' && n < max) {
		const char *nl;

		if (strncmp(p, "# HELP ", 7) != 0) {
			/* Before the first family: not ours to show. */
			if ((nl = strchr(p, '\n')) == NULL)
				break;
			p = nl + 1;
			continue;
		}
		f[n].head = p;
		f[n].name = p + 7;
		f[n].name_len = strcspn(f[n].name, " \n");
		while (*p == '#' && (nl = strchr(p, '\n')) != NULL)
			p = nl + 1;
		if (*p == '#') /* a last comment line with no newline */
			p += strlen(p);
		f[n].samples = p;
		while (*p != '\0' && strncmp(p, "# HELP ", 7) != 0)
			p += (nl = strchr(p, '\n')) != NULL ? (size_t)(nl - p) + 1
			                                    : strlen(p);
		f[n].end = p;
		n++;
	}
	return (n);
}

/* Appends family f's sample lines with server="label" first among their
 * labels (or untouched when label is NULL). */
static void
samples_write(struct aff_mbuf *out, const struct fam *f, const char *label)
{
	const char *p = f->samples, *nl;
	size_t len = 0, cut;

	for (; p < f->end; p += len) {
		nl = memchr(p, '\n', (size_t)(f->end - p));
		len = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(f->end - p);
		if (label == NULL || *p == '#' || *p == '\n') {
			aff_mbuf_append(out, p, len);
			continue;
		}
		cut = strcspn(p, "{ \n");
		if (cut >= len) {
			aff_mbuf_append(out, p, len);
			continue;
		}
		aff_mbuf_append(out, p, cut);
		if (p[cut] == '{')
			aff_mbuf_printf(out, "{server=\"%s\"%s", label,
			    p[cut + 1] == '}' ? "" : ",");
		else
			aff_mbuf_printf(out, "{server=\"%s\"}", label);
		aff_mbuf_append(out, p + cut + (p[cut] == '{'), len - cut -
		    (p[cut] == '{'));
	}
	if (f->end > f->samples && f->end[-1] != '\n')
		aff_mbuf_append(out, "\n", 1);
}

static const struct fam *
fam_find(const struct fam *f, size_t n, const struct fam *like)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].name_len == like->name_len &&
		    memcmp(f[i].name, like->name, like->name_len) == 0)
			return (&f[i]);
	return (NULL);
}

void
scrape_merge(struct aff_mbuf *out, const char *const *texts,
    const char *const *labels, size_t n)
{
	struct fam *f;
	size_t *nf;

	f = calloc(n * FAMS_MAX, sizeof(*f));
	nf = calloc(n, sizeof(*nf));
	if (f == NULL || nf == NULL) {
		out->oom = 1;
		goto done;
	}
	for (size_t s = 0; s < n; s++)
		if (texts[s] != NULL)
			nf[s] = fams_split(texts[s], f + s * FAMS_MAX, FAMS_MAX);
	/* Families in the order they first appear; each family once, its
	 * samples from every server that has it. */
	for (size_t s = 0; s < n; s++)
		for (size_t i = 0; i < nf[s]; i++) {
			const struct fam *me = &f[s * FAMS_MAX + i];
			int seen = 0;

			for (size_t e = 0; e < s && !seen; e++)
				seen = fam_find(f + e * FAMS_MAX, nf[e], me) != NULL;
			if (seen)
				continue;
			aff_mbuf_append(out, me->head, (size_t)(me->samples - me->head));
			for (size_t t = s; t < n; t++) {
				const struct fam *o = t == s ? me
				    : fam_find(f + t * FAMS_MAX, nf[t], me);
				if (o != NULL)
					samples_write(out, o,
					    labels != NULL ? labels[t] : NULL);
			}
		}
done:
	free(f);
	free(nf);
}

/* A URL as a label value: backslash, quote and newline escaped (a URL
 * has none, but the format must hold whatever --server says). */
static void
label_escape(char *dst, size_t cap, const char *src)
{
	size_t o = 0;

	for (; *src != '\0' && o + 3 < cap; src++) {
		if (*src == '\\' || *src == '"')
			dst[o++] = '\\';
		if (*src == '\n') {
			dst[o++] = '\\';
			dst[o++] = 'n';
			continue;
		}
		dst[o++] = *src;
	}
	dst[o] = '\0';
}

int
scrape_render(bridge *b, const char *request_id, char **text, size_t *len)
{
	char *texts[AFF_CLIENT_MAX_URLS] = { 0 };
	char labels[AFF_CLIENT_MAX_URLS][2 * AFF_CLIENT_URL_MAX];
	const char *lp[AFF_CLIENT_MAX_URLS];
	int n = b->n_scrape > 1 ? b->n_scrape : 1;
	struct aff_mbuf mb;

	aff_mbuf_init(&mb);
	metrics_write(&mb);
	for (int i = 0; i < n; i++) {
		texts[i] = scrape_server(b,
		    b->n_scrape > 1 ? b->scrape_clients[i] : b->client, request_id);
		label_escape(labels[i], sizeof(labels[i]),
		    b->n_scrape > 1 ? b->scrape_urls[i] : "");
		lp[i] = labels[i];
	}
	aff_metric_head(&mb, "affiliate_server_up", "gauge",
	    "1 when the server answered this scrape's HealthService.Metrics "
	    "(within 1 s), else 0: its families are then missing.");
	for (int i = 0; i < n; i++)
		if (b->n_scrape > 1)
			aff_mbuf_printf(&mb, "affiliate_server_up{server=\"%s\"} %d\n",
			    lp[i], texts[i] != NULL);
		else
			aff_mbuf_printf(&mb, "affiliate_server_up %d\n",
			    texts[i] != NULL);
	scrape_merge(&mb, (const char *const *)texts,
	    b->n_scrape > 1 ? lp : NULL, (size_t)n);
	for (int i = 0; i < n; i++)
		free(texts[i]);
	return (aff_mbuf_take(&mb, text, len));
}
