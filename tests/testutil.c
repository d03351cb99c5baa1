/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <arpa/inet.h>
#include <poll.h>
#include <strings.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include <hiredis/hiredis.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "aff_err.h"
#include "aff_log.h"

extern char **environ;

/* Whether the variable named by entry ("NAME=value") is one a test must
 * not inherit. */
static int
env_is_foreign(const char *entry)
{
	static const char *const keep[] = { "AFFILIATE_BIN_DIR=",
		"AFFILIATE_SOURCE_DIR=", "AFFILIATE_TEST_" };

	if (strncmp(entry, "AFFILIATE_", 10) != 0)
		return (0);
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (strncmp(entry, keep[i], strlen(keep[i])) == 0)
			return (0);
	return (1);
}

void
tu_env_clean(void)
{
	char name[256];
	int again = 1;

	/* unsetenv() reshapes environ, so start over after each removal. */
	while (again) {
		again = 0;
		for (char **e = environ; e != NULL && *e != NULL; e++) {
			size_t n = strcspn(*e, "=");
			if (!env_is_foreign(*e) || n >= sizeof(name))
				continue;
			memcpy(name, *e, n);
			name[n] = '\0';
			unsetenv(name);
			again = 1;
			break;
		}
	}
}

/* Before main(), in every test executable: a test that forgot to call
 * tu_env_clean() must not pass or fail by what the caller exported
 * (AFFILIATE_WEBHOOK_SECRET once broke test_cli that way). */
__attribute__((constructor)) static void
env_clean_at_start(void)
{
	tu_env_clean();
}

/*
 * A port below the kernel's ephemeral range (32768 and up here), so that
 * no outgoing connection of a test running beside this one can take it
 * between this check and the bind; random, and checked free.
 */
int
tu_free_port(void)
{
	static unsigned seed;
	struct sockaddr_in sa;
	int fd, one = 1;

	if (seed == 0)
		seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	for (int tries = 0; tries < 200; tries++) {
		int port = 10000 + (int)(rand_r(&seed) % 20000);
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			return (-1);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			return (port);
		}
		close(fd);
	}
	return (-1);
}

char *
tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&p, "%s/affiliate-test-XXXXXX", base) < 0)
		return (NULL);
	if (mkdtemp(p) == NULL) {
		free(p);
		return (NULL);
	}
	return (p);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return (remove(path));
}

void
tu_rmtree(const char *path)
{
	if (path != NULL)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

long long
tu_redis_int(const struct tu_redis *r, const char *cmd)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
	redisReply *rep;
	long long v = -1;

	if (c == NULL || c->err) {
		if (c != NULL)
			redisFree(c);
		return (-1);
	}
	if ((rep = redisCommand(c, cmd)) != NULL) {
		if (rep->type == REDIS_REPLY_INTEGER)
			v = rep->integer;
		else if (rep->type == REDIS_REPLY_STATUS)
			v = 0;
		freeReplyObject(rep);
	}
	redisFree(c);
	return (v);
}

int
tu_redis_start(struct tu_redis *r)
{
	char port[16];

	if (r->port == 0)
		r->port = tu_free_port();
	snprintf(port, sizeof(port), "%d", r->port);
	if ((r->pid = fork()) == 0) {
		/* Dies with the test, even one that fails half-way. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Quiet, no persistence: a cache that lives for one test. */
		execlp("redis-server", "redis-server", "--port", port, "--bind",
		    "127.0.0.1", "--save", "", "--appendonly", "no",
		    "--daemonize", "no", "--loglevel", "warning", "--logfile",
		    "/dev/null", (char *)NULL);
		_exit(127);
	}
	if (r->pid < 0)
		return (-1);
	for (int i = 0; i < 500; i++) {
		if (tu_redis_int(r, "PING") == 0)
			return (0);
		sleep_ms(10);
	}
	tu_redis_stop(r);
	return (-1);
}

void
tu_redis_stop(struct tu_redis *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
		r->pid = 0;
	}
}

int
tu_server_start(struct tu_server *ts, int redis_port)
{
	struct aff_client_opts co = { 0 };
	int help;

	memset(ts, 0, sizeof(*ts));
	if ((ts->dir = tu_tmpdir()) == NULL)
		return (-1);
	/* Tests set everything themselves: the environment must not leak in. */
	unsetenv("AFFILIATE_LISTEN");
	unsetenv("AFFILIATE_DB");
	unsetenv("AFFILIATE_REDIS");
	unsetenv("AFFILIATE_DATA_DIR");
	unsetenv("AFFILIATE_JOBS_URL");
	unsetenv("AFFILIATE_RESULTS_URL");
	if (server_config_load(&ts->cfg, 0, NULL, &help) != AFF_OK)
		return (-1);
	snprintf(ts->url, sizeof(ts->url), "tcp://127.0.0.1:%d", tu_free_port());
	snprintf(ts->cfg.listen_url, sizeof(ts->cfg.listen_url), "%s", ts->url);
	snprintf(ts->cfg.data_dir, sizeof(ts->cfg.data_dir), "%s", ts->dir);
	snprintf(ts->cfg.jobs_url, sizeof(ts->cfg.jobs_url), "ipc://%s/jobs.sock",
	    ts->dir);
	snprintf(ts->cfg.results_url, sizeof(ts->cfg.results_url),
	    "ipc://%s/results.sock", ts->dir);
	if (redis_port > 0) {
		snprintf(ts->cfg.redis_host, sizeof(ts->cfg.redis_host),
		    "127.0.0.1");
		ts->cfg.redis_port = redis_port;
	} else
		ts->cfg.redis_host[0] = '\0';
	if (tu_db_new(ts->dir, ts->db, sizeof(ts->db)) != 0)
		return (-1);
	snprintf(ts->cfg.db_path, sizeof(ts->cfg.db_path), "%s", ts->db);
	ts->cfg.threads = 4;
	ts->cfg.log_level = getenv("AFFILIATE_TEST_VERBOSE") ? AFF_LOG_DEBUG
	                                                     : AFF_LOG_ERROR;
	if (server_start(&ts->cfg, &ts->srv) != AFF_OK)
		return (-1);
	co.url = ts->url;
	co.wait_connected = 1;
	co.timeout_ms = 5000;
	if (aff_client_open(&ts->client, &co) != AFF_OK)
		return (-1);
	return (0);
}

void
tu_server_stop(struct tu_server *ts)
{
	aff_client_close(ts->client);
	server_stop(ts->srv);
	tu_db_free(ts->db);
	tu_rmtree(ts->dir);
	free(ts->dir);
	memset(ts, 0, sizeof(*ts));
}

int
tu_stack_start(struct tu_stack *st, int threads, int timeout_ms)
{
	int help;

	memset(st, 0, sizeof(*st));
	if (tu_redis_start(&st->redis) != 0 ||
	    tu_server_start(&st->ts, st->redis.port) != 0)
		return (-1);
	snprintf(st->db, sizeof(st->db), "%s", st->ts.db);
	unsetenv("AFFILIATE_URL");
	unsetenv("AFFILIATE_BRIDGE_LISTEN");
	if (bridge_config_load(&st->bcfg, 0, NULL, &help) != AFF_OK)
		return (-1);
	st->port = tu_free_port();
	snprintf(st->bcfg.listen, sizeof(st->bcfg.listen), "127.0.0.1:%d",
	    st->port);
	snprintf(st->bcfg.server_url, sizeof(st->bcfg.server_url), "%s",
	    st->ts.url);
	st->bcfg.threads = threads;
	st->bcfg.timeout_ms = timeout_ms;
	st->bcfg.log_level = getenv("AFFILIATE_TEST_VERBOSE") ? AFF_LOG_DEBUG
	                                                      : AFF_LOG_ERROR;
	return (bridge_start(&st->bcfg, &st->b) == AFF_OK ? 0 : -1);
}

void
tu_stack_stop(struct tu_stack *st)
{
	bridge_stop(st->b);
	tu_server_stop(&st->ts);
	tu_redis_stop(&st->redis);
}

struct tu_stack *
tu_stack_new(int threads, int timeout_ms)
{
	struct tu_stack *st = calloc(1, sizeof(*st));

	if (st != NULL && tu_stack_start(st, threads, timeout_ms) != 0) {
		free(st);
		return (NULL);
	}
	return (st);
}

void
tu_stack_free(struct tu_stack *st)
{
	tu_stack_stop(st);
	free(st);
}

int
tu_call(struct tu_server *ts, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req, ProtobufCMessage **resp)
{
	struct aff_call_result res;
	int rv = aff_client_call(ts->client, svc, method, req, NULL, resp, &res);

	aff_call_result_fini(&res);
	return (rv);
}

uint8_t *
tu_raw_call(const char *url, const void *data, size_t len, int timeout_ms,
    size_t *outlen)
{
	nng_socket s;
	nng_msg *m;
	uint8_t *out = NULL;

	if (nng_req0_open(&s) != 0)
		return (NULL);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (nng_dial(s, url, NULL, 0) != 0 || nng_msg_alloc(&m, len) != 0)
		goto done;
	memcpy(nng_msg_body(m), data, len);
	if (nng_sendmsg(s, m, 0) != 0) {
		nng_msg_free(m);
		goto done;
	}
	if (nng_recvmsg(s, &m, 0) != 0)
		goto done;
	*outlen = nng_msg_len(m);
	if ((out = malloc(*outlen > 0 ? *outlen : 1)) != NULL)
		memcpy(out, nng_msg_body(m), *outlen);
	nng_msg_free(m);
done:
	nng_close(s);
	return (out);
}

int
tu_seed_editors(const char *db)
{
	return (tu_sql_exec(db,
	    "WITH RECURSIVE n(i) AS (SELECT 100 UNION ALL"
	    " SELECT i + 1 FROM n WHERE i < 149)"
	    " INSERT INTO editors (id, name, created_at)"
	    " SELECT i, 'Editor ' || i, 0 FROM n;"
	    "INSERT INTO eligibility (editor_id, advertiser_id)"
	    " SELECT e.id, a.id FROM editors e, advertisers a"
	    " WHERE e.id >= 100 AND a.status = 'active';"));
}

char *
tu_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long len;

	if (f == NULL)
		return (NULL);
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0)
		goto out;
	rewind(f);
	if ((buf = calloc(1, (size_t)len + 1)) == NULL)
		goto out;
	if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		buf = NULL;
	}
out:
	fclose(f);
	return (buf);
}

int
tu_connect(int port, int src, int send_timeout_ms)
{
	struct sockaddr_in sa;
	struct timeval tv;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return (-1);
	if (send_timeout_ms > 0) {
		tv.tv_sec = send_timeout_ms / 1000;
		tv.tv_usec = (send_timeout_ms % 1000) * 1000;
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	if (src > 0) {
		sa.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			goto fail;
	}
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto fail;
	return (fd);
fail:
	close(fd);
	return (-1);
}

int
tu_sp_open(int port, const uint8_t *hello)
{
	static const uint8_t req[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 };
	static const uint8_t rep[8] = { 0, 'S', 'P', 0, 0, 0x31, 0, 0 };
	struct timeval tv = { 5, 0 };
	uint8_t got[8];
	int fd = tu_connect(port, 0, 5000);

	if (fd < 0)
		return (-1);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* The server greets at once, whatever the peer sends. */
	if (send(fd, hello != NULL ? hello : req, 8, MSG_NOSIGNAL) != 8 ||
	    recv(fd, got, 8, MSG_WAITALL) != 8 || memcmp(got, rep, 8) != 0) {
		close(fd);
		return (-1);
	}
	tv.tv_sec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return (fd);
}

int
tu_http_raw(int port, const void *req, size_t len, int timeout_ms,
    struct tu_http_response *resp)
{
	struct pollfd pfd;
	size_t cap = 65536, got = 0;
	char *buf, *end;
	int fd, n;
	long clen = -1;

	memset(resp, 0, sizeof(*resp));
	if ((fd = tu_connect(port, 0, 0)) < 0)
		return (-1);
	for (size_t off = 0; off < len;) {
		ssize_t w = send(fd, (const char *)req + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break; /* the server may answer before reading it all */
		off += (size_t)w;
	}
	buf = malloc(cap + 1);
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (buf != NULL && poll(&pfd, 1, timeout_ms) > 0) {
		if (got == cap) {
			char *nb = realloc(buf, cap * 2 + 1);
			if (nb == NULL)
				break;
			buf = nb;
			cap *= 2;
		}
		if ((n = (int)recv(fd, buf + got, cap - got, 0)) <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL) {
			char *cl = strcasestr(buf, "\r\nContent-Length:");
			if (cl != NULL && cl < end)
				clen = strtol(cl + 18, NULL, 10);
			if (clen >= 0 && got >= (size_t)(end + 4 - buf) + (size_t)clen)
				break;
		}
	}
	close(fd);
	if (buf == NULL || got == 0 || (end = strstr(buf, "\r\n\r\n")) == NULL) {
		free(buf);
		return (-1);
	}
	*end = '\0';
	resp->head = strdup(buf);
	resp->body = strdup(end + 4);
	resp->body_len = strlen(resp->body);
	resp->status = (int)strtol(strchr(buf, ' ') != NULL ? strchr(buf, ' ') + 1 : "0",
	    NULL, 10);
	free(buf);
	return (0);
}

int
tu_http(int port, const char *method, const char *target, const char *headers,
    const char *body, struct tu_http_response *resp)
{
	char *req;
	int n, rv;

	n = asprintf(&req,
	    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
	    "%s%s%zu\r\n\r\n%s",
	    method, target, headers != NULL ? headers : "",
	    "Content-Length: ", body != NULL ? strlen(body) : (size_t)0,
	    body != NULL ? body : "");
	if (n < 0)
		return (-1);
	rv = tu_http_raw(port, req, (size_t)n, 10000, resp);
	free(req);
	return (rv);
}

const char *
tu_http_header(const struct tu_http_response *resp, const char *name,
    char *buf, size_t cap)
{
	size_t nlen = strlen(name);

	for (const char *p = strstr(resp->head, "\r\n"); p != NULL;
	     p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2, *eol = strstr(line, "\r\n");
		size_t llen = eol != NULL ? (size_t)(eol - line) : strlen(line);
		if (llen > nlen && strncasecmp(line, name, nlen) == 0 &&
		    line[nlen] == ':') {
			const char *v = line + nlen + 1;
			while (*v == ' ')
				v++;
			snprintf(buf, cap, "%.*s", (int)(llen - (size_t)(v - line)), v);
			return (buf);
		}
	}
	return (NULL);
}

void
tu_http_response_fini(struct tu_http_response *resp)
{
	free(resp->head);
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

static char preload_asan_was[1024];
static int preload_asan_had;

void
tu_preload_begin(const char *lib)
{
	const char *asan = getenv("ASAN_OPTIONS");
	char set[1100];

	preload_asan_had = asan != NULL;
	snprintf(preload_asan_was, sizeof(preload_asan_was), "%s",
	    asan != NULL ? asan : "");
	snprintf(set, sizeof(set), "%s%sverify_asan_link_order=0",
	    preload_asan_was, preload_asan_was[0] != '\0' ? ":" : "");
	setenv("ASAN_OPTIONS", set, 1);
	setenv("LD_PRELOAD", lib, 1);
}

void
tu_preload_end(void)
{
	unsetenv("LD_PRELOAD");
	if (preload_asan_had)
		setenv("ASAN_OPTIONS", preload_asan_was, 1);
	else
		unsetenv("ASAN_OPTIONS");
}

pid_t
tu_spawn(const char *bin, const char *const *args, const char *log)
{
	const char *dir = getenv("AFFILIATE_BIN_DIR");
	char path[1024];
	const char *argv[64];
	size_t n = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", dir != NULL ? dir : ".", bin);
	argv[n++] = path;
	while (args != NULL && args[n - 1] != NULL && n < 63) {
		argv[n] = args[n - 1];
		n++;
	}
	argv[n] = NULL;
	if ((pid = fork()) == 0) {
		int fd;

		/* Dies with the test, even one that fails half-way. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(log != NULL ? log : "/dev/null",
		    O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(path, (char *const *)argv);
		_exit(127);
	}
	return (pid);
}

void
tu_kill(pid_t pid, int sig)
{
	if (pid <= 0)
		return;
	kill(pid, sig);
	waitpid(pid, NULL, 0);
}

void
tu_sleep_ms(int ms)
{
	sleep_ms(ms);
}
