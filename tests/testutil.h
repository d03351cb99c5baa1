/*
 * testutil.h - real parts for tests: free ports, temporary folders, a real
 * redis-server on a free port, and affiliate-server started in-process on
 * a real NNG socket.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "aff_client.h"
#include "bridge.h"
#include "server.h"
#include "testutil_db.h"

/*
 * Removes every AFFILIATE_* variable from the environment except the ones
 * ctest hands every test (AFFILIATE_BIN_DIR, AFFILIATE_SOURCE_DIR) and the
 * test switches (AFFILIATE_TEST_*), so a test sees only what it sets
 * itself, whatever the caller's shell exports. It runs by itself before
 * main() in every executable linking testutil (see testutil.c); calling it
 * again is harmless.
 */
void tu_env_clean(void);

/* A TCP port on 127.0.0.1 that nothing listens on right now. */
int tu_free_port(void);

/* mkdtemp under $TMPDIR (or /tmp); caller frees and tu_rmtree()s it. */
char *tu_tmpdir(void);
void tu_rmtree(const char *path);

struct tu_redis {
	pid_t pid;
	int port;
};

/* Starts redis-server on r->port (a free one when 0) and waits until it
 * answers PING. Returns 0, or -1 when it did not come up. */
int tu_redis_start(struct tu_redis *r);
/* Kills it (SIGKILL, as a crash would) and reaps it. */
void tu_redis_stop(struct tu_redis *r);
/* Runs one Redis command and returns its integer reply (or -1). */
long long tu_redis_int(const struct tu_redis *r, const char *cmd);

struct tu_server {
	server *srv;
	char url[128];
	char *dir;
	char db[512]; /* its database's locator (testutil_db.h), as --db */
	struct server_config cfg;
	aff_client *client;
};

/* Starts affiliate-server in-process on a free port with a new database
 * (tu_db_new(): a file in a temporary folder, or a PostgreSQL database)
 * and its data folder there; redis_port 0 turns the cache off. Also opens
 * ts->client on it. Returns 0 or -1. */
int tu_server_start(struct tu_server *ts, int redis_port);
void tu_server_stop(struct tu_server *ts);

/* The whole stack in-process on real sockets: a real redis-server, the
 * server, and a bridge on a free port in front of it. */
struct tu_stack {
	struct tu_redis redis;
	struct tu_server ts;
	struct bridge_config bcfg;
	bridge *b;
	int port;      /* the bridge's */
	char db[600];  /* the server's database (ts.db) */
};

/* Starts it all (bridge with threads workers and an RPC timeout of
 * timeout_ms); 0 or -1. */
int tu_stack_start(struct tu_stack *st, int threads, int timeout_ms);
void tu_stack_stop(struct tu_stack *st);

/* A test fixture's stack: allocated and started as tu_stack_start, NULL
 * when either fails; tu_stack_free stops it and frees it. */
struct tu_stack *tu_stack_new(int threads, int timeout_ms);
void tu_stack_free(struct tu_stack *st);

/* Calls a method with the test client; *resp as aff_client_call. Returns
 * the status and frees the call result. */
int tu_call(struct tu_server *ts, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *req, ProtobufCMessage **resp);

/* Sends raw bytes on a fresh REQ socket and returns the reply's bytes
 * (malloc'd, *len set), or NULL when no reply came within timeout_ms. */
uint8_t *tu_raw_call(const char *url, const void *data, size_t len,
    int timeout_ms, size_t *outlen);

/* Starts bin (a name in $AFFILIATE_BIN_DIR) with argv (NULL-terminated,
 * without argv[0]); its output goes to log (or /dev/null). Returns the pid
 * or -1. */
pid_t tu_spawn(const char *bin, const char *const *args, const char *log);

/* Until tu_preload_end, processes tu_spawn starts load lib first
 * (LD_PRELOAD: libfaketime, a test's shim), with AddressSanitizer's
 * link-order check off under make asan (lib then comes before its
 * runtime); tu_preload_end puts LD_PRELOAD and ASAN_OPTIONS back. */
void tu_preload_begin(const char *lib);
void tu_preload_end(void);

/* Sends sig and reaps it. */
void tu_kill(pid_t pid, int sig);

/* Adds editors 100..149 to the database, each eligible for every active
 * advertiser (50 x 23 pairs for applications); 0 or -1. Either backend. */
int tu_seed_editors(const char *db);

void tu_sleep_ms(int ms);

/* The whole file, NUL-terminated (caller frees); NULL when it cannot be
 * read whole. */
char *tu_read_file(const char *path);

/*
 * A TCP connection to 127.0.0.1:port, from 127.0.0.src when src > 0 (the
 * kernel's choice of loopback address when 0), with sends (and the connect
 * itself, should the listen queue be full) bounded by send_timeout_ms
 * when > 0. Returns the descriptor, or -1.
 */
int tu_connect(int port, int src, int send_timeout_ms);

/*
 * A raw SP connection to an RPC server on 127.0.0.1:port, as an attacker
 * opens one: sends the 8-byte greeting hello (NULL: a REQ peer's) and
 * reads the server's, which must be a REP's (within 5 s). The
 * descriptor, or -1.
 */
int tu_sp_open(int port, const uint8_t *hello);

struct tu_http_response {
	int status;
	char *head;  /* status line and headers, NUL-terminated */
	char *body;  /* NUL-terminated (bodies here are text) */
	size_t body_len;
};

/*
 * Sends raw bytes (a whole HTTP request, or garbage) to 127.0.0.1:port and
 * reads the response until the server closes or Content-Length is read.
 * Returns 0, or -1 when nothing came back in timeout_ms.
 */
int tu_http_raw(int port, const void *req, size_t len, int timeout_ms,
    struct tu_http_response *resp);

/* GET/POST... with Connection: close; body may be NULL. Extra headers are
 * "Name: value\r\n" lines (or NULL). */
int tu_http(int port, const char *method, const char *target,
    const char *headers, const char *body, struct tu_http_response *resp);

/* The value of a response header (case-insensitive name), copied into buf;
 * NULL when absent. */
const char *tu_http_header(const struct tu_http_response *resp,
    const char *name, char *buf, size_t cap);

void tu_http_response_fini(struct tu_http_response *resp);

#endif /* TESTUTIL_H */
