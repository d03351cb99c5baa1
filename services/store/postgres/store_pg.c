/*
 * store_pg.c - the PostgreSQL store's connection: connecting (libpq, one
 * connection per store handle, as SQLite's), the session's settings, the
 * schema migrations under an advisory lock with the seed on first start,
 * preparing every domain file's statements, reconnecting after the
 * database went away, and the transactions and run/read helpers the
 * domain files share (store_pg_private.h). The domains live in
 * store_pg_{catalog,applications,jobs,orders,keys}.c.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"
#include "store.h"
#include "store_pg_private.h"

#define STATEMENTS(X)                                                          \
	X(ST_BEGIN, "BEGIN")                                                   \
	X(ST_COMMIT, "COMMIT")                                                 \
	X(ST_ROLLBACK, "ROLLBACK")                                             \
	/* A store call inside a keyed call's transaction (call_begin), or   \
	 * one write guarded inside a caller's transaction. */                 \
	X(ST_NEST_BEGIN, "SAVEPOINT aff_nest")                                 \
	X(ST_NEST_UNDO, "ROLLBACK TO SAVEPOINT aff_nest")                      \
	X(ST_NEST_RELEASE, "RELEASE SAVEPOINT aff_nest")

enum { STATEMENTS(PG_STMT_ENUM) ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = { STATEMENTS(PG_STMT_SQL) };

const struct store_pg_statements store_pg_core_statements = {
	.sql = stmt_sql, .n = ST_COUNT };

static const struct store_pg_statements *const domains[PQ_DOMAINS] = {
	[PQ_CORE] = &store_pg_core_statements,
	[PQ_CATALOG] = &store_pg_catalog_statements,
	[PQ_APPLICATIONS] = &store_pg_applications_statements,
	[PQ_JOBS] = &store_pg_jobs_statements,
	[PQ_ORDERS] = &store_pg_orders_statements,
	[PQ_KEYS] = &store_pg_keys_statements,
	[PQ_POSTBACKS] = &store_pg_postbacks_statements,
	[PQ_REPORTS] = &store_pg_reports_statements,
	[PQ_ORDERS_COPY] = &store_pg_orders_copy_statements,
};

/*
 * The advisory lock (two int4 keys: the application's, then what) that
 * serialises migrations of one database: servers started at once take
 * it in turn, the first migrates and seeds, the others find it done.
 */
#define PG_LOCK_APP 1634100580 /* "affd" */
#define PG_LOCK_MIGRATE 1

/* ---- errors ---- */

/* libpq's message on one line (it ends lines, and indents hints with
 * tabs), for the log. */
static const char *
one_line(const char *m, char *buf, size_t cap)
{
	size_t k = 0;
	int space = 0;

	for (; m != NULL && *m != '\0' && k + 1 < cap; m++) {
		if (*m == '\n' || *m == '\t' || *m == '\r' || *m == ' ') {
			space = k > 0;
			continue;
		}
		if (space && k + 2 < cap)
			buf[k++] = ' ';
		space = 0;
		buf[k++] = *m;
	}
	buf[k] = '\0';
	return (buf);
}

/*
 * libpq's messages quote the connection string where it cannot parse it
 * (an odd port, a bad %-escape: "invalid percent-encoded token: ...",
 * "unexpected character ... in URI: <the URI>"). Each of secrets (the
 * password as written and as libpq decodes it, see pg_secrets) is
 * masked in line, in place.
 */
static void
pg_mask(char *line, char secrets[][128], int n)
{
	for (int i = 0; i < n; i++) {
		size_t len = strlen(secrets[i]);
		char *at;

		if (len == 0)
			continue;
		while ((at = strstr(line, secrets[i])) != NULL) {
			memmove(at + 3, at + len, strlen(at + len) + 1);
			memcpy(at, "***", 3);
		}
	}
}

/* Collects what must never be shown of conninfo into secrets (up to 4):
 * the values libpq parses for password and sslpassword, and, for when it
 * cannot parse the string, the text between "user:" and '@' of a URI and
 * after "password=" as written. */
static int
pg_secrets(const char *conninfo, char secrets[][128])
{
	PQconninfoOption *o = PQconninfoParse(conninfo, NULL);
	const char *p;
	int n = 0;

	for (PQconninfoOption *i = o; i != NULL && i->keyword != NULL; i++)
		if (i->val != NULL && (strcmp(i->keyword, "password") == 0 ||
		                          strcmp(i->keyword, "sslpassword") == 0))
			snprintf(secrets[n++], 128, "%s", i->val);
	PQconninfoFree(o);
	if ((p = strstr(conninfo, "://")) != NULL) {
		const char *end = p + 3 + strcspn(p + 3, "/?"), *at = NULL, *c;
		for (c = p + 3; c < end; c++)
			if (*c == '@')
				at = c;
		if (at != NULL &&
		    (c = memchr(p + 3, ':', (size_t)(at - p - 3))) != NULL)
			snprintf(secrets[n++], 128, "%.*s", (int)(at - c - 1), c + 1);
	}
	if ((p = strstr(conninfo, "password=")) != NULL)
		snprintf(secrets[n++], 128, "%.*s",
		    (int)strcspn(p + 9, " &'"), p + 9);
	return (n);
}

/* PQerrorMessage of s's connection on one line, passwords masked. */
static const char *
pg_conn_error(pg_store *s, char *line, size_t cap)
{
	char secrets[4][128];
	int n = pg_secrets(s->conninfo, secrets);

	one_line(PQerrorMessage(s->conn), line, cap);
	pg_mask(line, secrets, n);
	return (line);
}

/*
 * While PostgreSQL is down every handler thread's connection fails at
 * once and every call tries to connect again: one line a second for all
 * of them (as the job sockets' warnings), with the count since start and
 * how many were left out, instead of one per attempt per thread.
 */
static struct aff_log_limit warn_down;
static atomic_llong n_down;

static void
pg_warn_down(const char *what, const char *msg)
{
	long long n = atomic_fetch_add(&n_down, 1) + 1;
	int sup;

	if (aff_log_limit_pass(&warn_down, &sup))
		aff_warn("store: %s: cannot reach PostgreSQL: %s (%lld since "
		         "start, %d not logged)",
		    what, msg, n, sup);
}

/*
 * libpq hands what the server says outside a result (a NOTICE, a
 * WARNING, and the FATAL a backend sends as it is terminated while the
 * connection is idle) to a notice receiver, whose default prints it raw
 * on stderr. This one puts it on one log line: a WARNING at warn, the
 * rest (NOTICE, INFO, and the FATAL of a dying connection, which the
 * next call reports as unreachable anyway) at debug.
 */
void
store_pg_notice(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	char line[512];

	(void)arg;
	one_line(PQresultErrorMessage(res), line, sizeof(line));
	if (sev != NULL && strcmp(sev, "WARNING") == 0)
		aff_warn("store: PostgreSQL says: %s", line);
	else
		aff_debug("store: PostgreSQL says: %s", line);
}

/*
 * Translates a failed result into an aff_err code, keeping its SQLSTATE
 * and constraint for the caller (an order's foreign key says which id
 * is unknown).
 */
static int
pg_err(pg_store *s, const PGresult *res, const char *what)
{
	const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
	                             : NULL;
	const char *cn = res != NULL
	    ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)
	    : NULL;
	char line[512];
	const char *msg = one_line(res != NULL ? PQresultErrorMessage(res) : "",
	    line, sizeof(line));

	snprintf(s->last_state, sizeof(s->last_state), "%s", st ? st : "");
	snprintf(s->last_constraint, sizeof(s->last_constraint), "%s",
	    cn ? cn : "");
	if (PQstatus(s->conn) != CONNECTION_OK || st == NULL ||
	    strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0) {
		pg_warn_down(what, msg[0] != '\0'
		        ? msg
		        : pg_conn_error(s, line, sizeof(line)));
		return (AFF_UNAVAILABLE);
	}
	if (strncmp(st, "23", 2) == 0 || strncmp(st, "22", 2) == 0)
		return (AFF_INVALID_ARGUMENT);
	/* Waited past lock_timeout, or lost a deadlock or serialisation
	 * conflict: busy, as SQLite's busy timeout. */
	if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 ||
	    strcmp(st, "55P03") == 0 || strcmp(st, "57014") == 0) {
		aff_warn("store: %s: %s", what, msg);
		return (AFF_UNAVAILABLE);
	}
	if (strncmp(st, "53", 2) == 0) {
		aff_error("store: %s: %s", what, msg);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	if (strcmp(st, "25P02") == 0)
		return (AFF_ABORTED);
	aff_error("store: %s: %s", what, msg);
	return (AFF_INTERNAL);
}

int
store_pg_exec(pg_store *s, const char *sql, const char *what)
{
	PGresult *r = PQexec(s->conn, sql);
	int st = PQresultStatus(r), rv = AFF_OK;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		rv = pg_err(s, r, what);
	PQclear(r);
	return (rv);
}

/* ---- parameters ---- */

void
store_pg_p_int(struct pg_params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof(p->num[p->n]), "%lld", (long long)v);
	p->v[p->n] = p->num[p->n];
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

void
store_pg_p_text(struct pg_params *p, const char *t)
{
	p->v[p->n] = t != NULL ? t : "";
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

void
store_pg_p_bin(struct pg_params *p, const void *b, size_t len)
{
	p->v[p->n] = b != NULL ? b : "";
	p->len[p->n] = (int)len;
	p->fmt[p->n++] = 1;
}

void
store_pg_p_null(struct pg_params *p)
{
	p->v[p->n] = NULL;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

/* ---- the session ---- */

/*
 * What every session needs, on every (re)connection: commits durable
 * whatever the server's default (a 2xx means on disk, as SQLite's
 * synchronous=FULL), a lock wait bounded as SQLite's busy timeout, and
 * every statement prepared.
 */
static int
pg_session_setup(pg_store *s)
{
	PGresult *r;
	char name[16];
	int rv;

	if ((rv = store_pg_exec(s, "SET synchronous_commit = on;"
	                           " SET lock_timeout = '5s'",
	         "session")) != AFF_OK)
		return (rv);
	for (int d = 0; d < PQ_DOMAINS; d++)
		for (int i = 0; i < domains[d]->n; i++) {
			snprintf(name, sizeof(name), "s%d_%d", d, i);
			r = PQprepare(s->conn, name, domains[d]->sql[i], 0, NULL);
			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				rv = pg_err(s, r, domains[d]->sql[i]);
				PQclear(r);
				return (rv);
			}
			PQclear(r);
		}
	return (AFF_OK);
}

/* Connects again after the database went away (restarted, failed over,
 * the connection cut): the next call after the failure gets here. */
static int
pg_reconnect(pg_store *s)
{
	PQreset(s->conn);
	s->sync_locked = 0; /* a session lock dies with its session */
	s->session[0] = '\0';
	if (PQstatus(s->conn) != CONNECTION_OK) {
		char line[512];
		pg_warn_down("reconnect", pg_conn_error(s, line, sizeof(line)));
		return (AFF_UNAVAILABLE);
	}
	aff_info("store: connected to PostgreSQL again");
	return (pg_session_setup(s));
}

/* Runs statement i of domain d: prepared (name), or for the domain's
 * plan-per-call range unnamed, planned with p's values. */
static PGresult *
pg_exec(pg_store *s, int d, int i, const char *name,
    const struct pg_params *p)
{
	int n = p != NULL ? p->n : 0;
	const char *const *v = p != NULL ? p->v : NULL;
	const int *len = p != NULL ? p->len : NULL;
	const int *fmt = p != NULL ? p->fmt : NULL;

	if (i >= domains[d]->plan_from && i < domains[d]->plan_to)
		return (PQexecParams(s->conn, domains[d]->sql[i], n, NULL, v,
		    len, fmt, 0));
	return (PQexecPrepared(s->conn, name, n, v, len, fmt, 0));
}

int
store_pg_run(pg_store *s, int d, int i, const struct pg_params *p,
    PGresult **res, const char *what)
{
	char name[16];
	PGresult *r;
	int st, rv;

	if (res != NULL)
		*res = NULL;
	if (PQstatus(s->conn) != CONNECTION_OK) {
		/* An open transaction went with the connection: the call
		 * fails, and the next one connects again. */
		if (s->depth > 0 || s->in_batch)
			return (AFF_UNAVAILABLE);
		if ((rv = pg_reconnect(s)) != AFF_OK)
			return (rv);
	}
	snprintf(name, sizeof(name), "s%d_%d", d, i);
	r = pg_exec(s, d, i, name, p);
	st = PQresultStatus(r);
	/*
	 * The connection was found dead (the database restarted while this
	 * handle was idle: every handler thread's connection is): outside a
	 * transaction, a read or a BEGIN is sent again once on a new
	 * connection, which changes nothing twice. A write alone is not
	 * (it may have been applied before the reply was lost): it fails,
	 * and the next call finds the new connection.
	 */
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK &&
	    PQstatus(s->conn) != CONNECTION_OK && s->depth == 0 &&
	    !s->in_batch &&
	    ((d == PQ_CORE && i == ST_BEGIN) ||
	        strncmp(domains[d]->sql[i], "SELECT", 6) == 0)) {
		PQclear(r);
		if ((rv = pg_reconnect(s)) != AFF_OK)
			return (rv);
		r = pg_exec(s, d, i, name, p);
		st = PQresultStatus(r);
	}
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		if (res != NULL)
			*res = r;
		else
			PQclear(r);
		return (AFF_OK);
	}
	rv = pg_err(s, r, what);
	PQclear(r);
	return (rv);
}

int
store_pg_run_guarded(pg_store *s, int d, int i, const struct pg_params *p,
    PGresult **res, const char *what)
{
	int rv;

	if (s->depth == 0)
		return (store_pg_run(s, d, i, p, res, what));
	if ((rv = store_pg_tx_begin(s)) != AFF_OK)
		return (rv);
	rv = store_pg_run(s, d, i, p, res, what);
	if ((rv = store_pg_tx_end(s, rv)) != AFF_OK && res != NULL &&
	    *res != NULL) {
		PQclear(*res); /* the savepoint's end failed: no result */
		*res = NULL;
	}
	return (rv);
}

/* ---- reading results ---- */

int64_t
store_pg_int(const PGresult *res, int r, int c)
{
	return (strtoll(PQgetvalue(res, r, c), NULL, 10));
}

char *
store_pg_text(const PGresult *res, int r, int c, aff_arena *a)
{
	return (aff_arena_strndup(a, PQgetvalue(res, r, c),
	    (size_t)PQgetlength(res, r, c)));
}

char *
store_pg_time(const PGresult *res, int r, int c, aff_arena *a)
{
	char buf[32];

	aff_time_rfc3339(store_pg_int(res, r, c), buf);
	return (aff_arena_strdup(a, buf));
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	return (-1);
}

uint8_t *
store_pg_bytes(const PGresult *res, int r, int c, aff_arena *a, size_t *len)
{
	const char *v = PQgetvalue(res, r, c);
	size_t n = (size_t)PQgetlength(res, r, c), k = 0;
	uint8_t *out;

	/* bytea_output = hex (the default since 9.0): "\x" and two digits
	 * a byte. */
	if (n < 2 || v[0] != '\\' || v[1] != 'x')
		return (NULL);
	if ((out = aff_arena_alloc(a, (n - 2) / 2 + 1)) == NULL)
		return (NULL);
	for (size_t i = 2; i + 1 < n; i += 2) {
		int hi = hexval(v[i]), lo = hexval(v[i + 1]);
		if (hi < 0 || lo < 0)
			return (NULL);
		out[k++] = (uint8_t)(hi << 4 | lo);
	}
	*len = k;
	return (out);
}

int
store_pg_one_row(pg_store *s, int d, int i, const struct pg_params *p,
    store_pg_row_fn *row, aff_arena *a, void *out, const char *what)
{
	PGresult *res;
	void *r;
	int rv;

	if ((rv = store_pg_run(s, d, i, p, &res, what)) != AFF_OK)
		return (rv);
	if (PQntuples(res) == 0)
		rv = AFF_NOT_FOUND;
	else if ((r = row(res, 0, a)) != NULL)
		*(void **)out = r; /* T ** (see the SQLite backend) */
	else
		rv = AFF_RESOURCE_EXHAUSTED;
	PQclear(res);
	return (rv);
}

int
store_pg_list_page(pg_store *s, int d, int i, const struct pg_params *p,
    int limit, store_pg_row_fn *row, aff_arena *a, void *out, size_t *n,
    int *more, int64_t *last, const char *what)
{
	PGresult *res;
	void **v;
	int rv, rows;
	size_t k = 0;

	*more = 0;
	*n = 0;
	if ((v = aff_arena_alloc(a, sizeof(*v) * (size_t)limit)) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	*(void ***)out = v;
	if ((rv = store_pg_run(s, d, i, p, &res, what)) != AFF_OK)
		return (rv);
	rows = PQntuples(res);
	for (int r = 0; r < rows; r++) {
		if (k == (size_t)limit) {
			*more = 1;
			break;
		}
		if ((v[k++] = row(res, r, a)) == NULL) {
			rv = AFF_RESOURCE_EXHAUSTED;
			break;
		}
		if (last != NULL)
			*last = store_pg_int(res, r, 0);
	}
	PQclear(res);
	*n = k;
	return (rv);
}

int
store_pg_exists(pg_store *s, int d, int i, const struct pg_params *p,
    int absent)
{
	PGresult *res;
	int rv;

	if ((rv = store_pg_run(s, d, i, p, &res, "lookup")) != AFF_OK)
		return (rv);
	rv = PQntuples(res) > 0 ? AFF_OK : absent;
	PQclear(res);
	return (rv);
}

/* ---- transactions ---- */

int
store_pg_in_tx(pg_store *s)
{
	PGTransactionStatusType t = PQtransactionStatus(s->conn);

	return (t == PQTRANS_INTRANS || t == PQTRANS_INERROR ||
	    t == PQTRANS_ACTIVE);
}

int
store_pg_tx_begin(pg_store *s)
{
	int rv;

	if (s->depth > 0) {
		if (!store_pg_in_tx(s))
			return (AFF_ABORTED); /* the outer one is gone */
		if ((rv = store_pg_run(s, PQ_CORE, ST_NEST_BEGIN, NULL, NULL,
		         "savepoint")) == AFF_OK)
			s->depth++;
		return (rv);
	}
	if ((rv = store_pg_run(s, PQ_CORE, ST_BEGIN, NULL, NULL, "begin")) ==
	    AFF_OK)
		s->depth = 1;
	return (rv);
}

int
store_pg_tx_end(pg_store *s, int rv)
{
	PGresult *res;
	int crv;

	if (s->depth > 1) {
		s->depth--;
		if (!store_pg_in_tx(s)) {
			/* The connection, and the outer transaction with it,
			 * is gone. */
			s->depth = 0;
			return (rv != AFF_OK ? rv : AFF_ABORTED);
		}
		if (rv != AFF_OK || PQtransactionStatus(s->conn) ==
		        PQTRANS_INERROR)
			(void)store_pg_run(s, PQ_CORE, ST_NEST_UNDO, NULL, NULL,
			    "savepoint undo");
		(void)store_pg_run(s, PQ_CORE, ST_NEST_RELEASE, NULL, NULL,
		    "savepoint release");
		return (rv);
	}
	s->depth = 0;
	if (!store_pg_in_tx(s))
		return (rv != AFF_OK ? rv : AFF_UNAVAILABLE);
	if (rv == AFF_OK && PQtransactionStatus(s->conn) == PQTRANS_INERROR)
		rv = AFF_ABORTED; /* a statement failed: COMMIT would roll back */
	if (rv == AFF_OK) {
		crv = store_pg_run(s, PQ_CORE, ST_COMMIT, NULL, &res, "commit");
		if (crv == AFF_OK) {
			/* COMMIT of a failed transaction answers ROLLBACK. */
			if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
				crv = AFF_ABORTED;
			PQclear(res);
		}
		if (crv == AFF_OK)
			return (AFF_OK);
		rv = crv;
	}
	store_pg_tx_rollback(s);
	return (rv);
}

void
store_pg_tx_rollback(pg_store *s)
{
	s->depth = 0;
	if (store_pg_in_tx(s))
		(void)store_pg_run(s, PQ_CORE, ST_ROLLBACK, NULL, NULL, "rollback");
}

/* ---- migrations ---- */

/* The schema version, 0 for a new database; AFF_NOT_FOUND when the
 * version table is not there yet. */
static int
pg_schema_version(pg_store *s, int *v)
{
	PGresult *r = PQexec(s->conn, "SELECT version FROM affiliate_schema");
	int rv = AFF_OK;

	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		*v = PQntuples(r) > 0 ? atoi(PQgetvalue(r, 0, 0)) : 0;
	else {
		const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		rv = st != NULL && strcmp(st, "42P01") == 0
		    ? AFF_NOT_FOUND
		    : pg_err(s, r, "schema version");
	}
	PQclear(r);
	return (rv);
}

static int
pg_newer(int v)
{
	aff_error("store: database schema %d is newer than this server's %d",
	    v, store_pg_schema_version);
	return (AFF_FAILED_PRECONDITION);
}

/*
 * Brings the schema to store_pg_schema_version in one transaction under
 * a transaction-level advisory lock: servers started at once against a
 * new database wait for the first one, which migrates and seeds it; the
 * others then find the version current. PostgreSQL's DDL is
 * transactional, so a failed step leaves the database as it was.
 */
static int
store_pg_migrate(pg_store *s)
{
	char sql[320];
	int v = 0, rv, seeded;

	rv = pg_schema_version(s, &v);
	if (rv == AFF_OK && v == store_pg_schema_version)
		return (AFF_OK);
	if (rv == AFF_OK && v > store_pg_schema_version)
		return (pg_newer(v));
	if (rv != AFF_OK && rv != AFF_NOT_FOUND)
		return (rv);
	snprintf(sql, sizeof(sql),
	    "BEGIN; SET LOCAL client_min_messages = warning;"
	    " SELECT pg_advisory_xact_lock(%d, %d);"
	    " CREATE TABLE IF NOT EXISTS affiliate_schema (id INTEGER"
	    " PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
	    PG_LOCK_APP, PG_LOCK_MIGRATE);
	if ((rv = store_pg_exec(s, sql, "migration lock")) != AFF_OK)
		goto failed;
	if ((rv = pg_schema_version(s, &v)) != AFF_OK)
		goto failed;
	if (v > store_pg_schema_version) {
		rv = pg_newer(v);
		goto failed;
	}
	seeded = v > 0;
	for (; v < store_pg_schema_version; v++) {
		aff_info("store: migrating schema %d -> %d", v, v + 1);
		if ((rv = store_pg_exec(s, store_pg_schema_steps[v],
		         "migration")) != AFF_OK)
			goto failed;
	}
	if (!seeded && (rv = store_pg_catalog_seed(s)) != AFF_OK)
		goto failed;
	snprintf(sql, sizeof(sql),
	    "INSERT INTO affiliate_schema (id, version) VALUES (1, %d)"
	    " ON CONFLICT (id) DO UPDATE SET version = excluded.version",
	    store_pg_schema_version);
	if ((rv = store_pg_exec(s, sql, "schema version")) != AFF_OK ||
	    (rv = store_pg_exec(s, "COMMIT", "commit")) != AFF_OK)
		goto failed;
	if (!seeded)
		aff_info("store: new PostgreSQL database seeded with %d editors "
		         "and %d advertisers",
		    STORE_SEED_EDITORS, STORE_SEED_ADVERTISERS);
	return (AFF_OK);
failed:
	(void)store_pg_exec(s, "ROLLBACK", "rollback");
	return (rv);
}

/* ---- opening ---- */

static void store_pg_close(store *base);

static int
store_pg_open(const char *conninfo, store **sp)
{
	/* Defaults first: the caller's conninfo (expanded from dbname)
	 * overrides them. */
	const char *keys[] = { "connect_timeout", "application_name", "dbname",
		NULL };
	const char *vals[] = { "5", "affiliate-server", conninfo, NULL };
	PGresult *r;
	pg_store *s;
	int rv;

	*sp = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return (AFF_RESOURCE_EXHAUSTED);
	s->base.ops = &store_pg_ops;
	if ((s->conninfo = strdup(conninfo)) == NULL) {
		free(s);
		return (AFF_RESOURCE_EXHAUSTED);
	}
	s->conn = PQconnectdbParams(keys, vals, 1);
	/* Kept by PQreset: every later session of this handle has it too.
	 * (A notice during the first connection's start-up, which nothing
	 * here causes, would still take libpq's default.) */
	if (s->conn != NULL)
		PQsetNoticeReceiver(s->conn, store_pg_notice, NULL);
	if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK) {
		char line[512];
		aff_error("store: cannot connect to PostgreSQL: %s",
		    s->conn != NULL ? pg_conn_error(s, line, sizeof(line))
		                    : "out of memory");
		rv = s->conn != NULL ? AFF_UNAVAILABLE : AFF_RESOURCE_EXHAUSTED;
		goto failed;
	}
	if ((rv = store_pg_migrate(s)) != AFF_OK ||
	    (rv = pg_session_setup(s)) != AFF_OK)
		goto failed;
	r = PQexec(s->conn, "SELECT value FROM meta WHERE key = 'db_id'");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
		snprintf(s->db_id, sizeof(s->db_id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	if ((rv = store_pg_watch_get(s->conninfo, &s->watch)) != AFF_OK)
		goto failed;
	*sp = &s->base;
	return (AFF_OK);
failed:
	store_pg_close(&s->base);
	return (rv);
}

static void
store_pg_close(store *base)
{
	pg_store *s = PG_STORE(base);

	store_pg_watch_put(s->watch);
	if (s->conn != NULL)
		PQfinish(s->conn);
	free(s->conninfo);
	free(s);
}

const struct store_ops store_pg_ops = {
	.name = "postgresql",
	.open = store_pg_open,
	.close = store_pg_close,
	.catalog_version = store_pg_catalog_version,
	.editor_exists = store_pg_editor_exists,
	.advertiser_get = store_pg_advertiser_get,
	.advertiser_list = store_pg_advertiser_list,
	.eligible = store_pg_eligible,
	.advertiser_create = store_pg_advertiser_create,
	.advertiser_update = store_pg_advertiser_update,
	.editor_create = store_pg_editor_create,
	.editor_update = store_pg_editor_update,
	.eligibility_set = store_pg_eligibility_set,
	.application_create = store_pg_application_create,
	.application_get = store_pg_application_get,
	.application_events = store_pg_application_events,
	.application_list = store_pg_application_list,
	.jobs_claim = store_pg_jobs_claim,
	.jobs_unclaim = store_pg_jobs_unclaim,
	.job_finish = store_pg_job_finish,
	.job_extend = store_pg_job_extend,
	.jobs_resume = store_pg_jobs_resume,
	.job_list = store_pg_job_list,
	.job_retry = store_pg_job_retry,
	.jobs_retry_dead = store_pg_jobs_retry_dead,
	.jobs_stats = store_pg_jobs_stats,
	.order_put = store_pg_order_put,
	.order_get = store_pg_order_get,
	.order_list = store_pg_order_list,
	.earnings = store_pg_earnings,
	.orders_uncached = store_pg_orders_uncached,
	.orders_mark_cached = store_pg_orders_mark_cached,
	.orders_all_cached = store_pg_orders_all_cached,
	.orders_cache_reset = store_pg_orders_cache_reset,
	.key_create = store_pg_key_create,
	.key_get = store_pg_key_get,
	.key_list = store_pg_key_list,
	.key_revoke = store_pg_key_revoke,
	.webhook_secret_rotate = store_pg_webhook_secret_rotate,
	.webhook_secrets_get = store_pg_webhook_secrets_get,
	.webhook_policy_get = store_pg_webhook_policy_get,
	.webhook_policy_set = store_pg_webhook_policy_set,
	.postback_endpoint_create = store_pg_postback_endpoint_create,
	.postback_endpoint_get = store_pg_postback_endpoint_get,
	.postback_endpoint_list = store_pg_postback_endpoint_list,
	.postback_endpoint_delete = store_pg_postback_endpoint_delete,
	.postback_endpoint_rotate = store_pg_postback_endpoint_rotate,
	.postback_endpoint_enable = store_pg_postback_endpoint_enable,
	.postback_attempt_list = store_pg_postback_attempt_list,
	.postback_delivery_get = store_pg_postback_delivery_get,
	.postback_redeliver = store_pg_postback_redeliver,
	.call_begin = store_pg_call_begin,
	.call_end = store_pg_call_end,
	.batch_begin = store_pg_batch_begin,
	.batch_end = store_pg_batch_end,
};
