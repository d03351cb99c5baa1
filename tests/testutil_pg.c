/* testutil_pg.c - see testutil_pg.h. */
#include "testutil_pg.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "aff_util.h"
#include "testutil.h"

#define PG_BIN_DEFAULT "/usr/lib/postgresql/15/bin"
#define PG_SUPERUSER "affiliate"
#define PG_DATABASE "affiliate_test"
#define PG_READY_MS 60000
#define PG_STOP_MS 30000

/* Who the server runs as: the caller, or an unprivileged user when the
 * caller is root. */
struct pg_user {
	int drop;
	uid_t uid;
	gid_t gid;
};

/* The servers this process started and has not stopped, for the exit and
 * signal paths. owner: a forked child inherits the list, not the servers. */
#define PG_LIVE_MAX 8
static struct {
	struct tu_pg *pg;
	pid_t owner;
} live[PG_LIVE_MAX];

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6);
}

static const char *
pg_bin(void)
{
	const char *b = getenv("AFFILIATE_TEST_PG_BIN");

	return (b != NULL && *b != '\0' ? b : PG_BIN_DEFAULT);
}

static int
pg_user_get(struct pg_user *u)
{
	static const char *const names[] = { "postgres", "nobody" };
	struct passwd *pw;

	memset(u, 0, sizeof(*u));
	if (geteuid() != 0)
		return (0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((pw = getpwnam(names[i])) != NULL && pw->pw_uid != 0) {
			u->drop = 1;
			u->uid = pw->pw_uid;
			u->gid = pw->pw_gid;
			return (0);
		}
	}
	fprintf(stderr, "pg: running as root and no unprivileged user "
	    "(postgres, nobody) to run PostgreSQL as\n");
	return (-1);
}

/* In a forked child: become the unprivileged user and send stdout and
 * stderr to log. Returns 0, or -1 (the child then _exits). */
static int
child_setup(const struct pg_user *u, const char *log)
{
	int fd;

	if (u->drop && (setgroups(0, NULL) != 0 || setgid(u->gid) != 0 ||
	    setuid(u->uid) != 0))
		return (-1);
	if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) < 0)
		return (-1);
	dup2(fd, 1);
	dup2(fd, 2);
	close(fd);
	return (0);
}

static void
log_print(const struct tu_pg *pg, const char *name)
{
	char path[600], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", pg->dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return;
	fprintf(stderr, "pg: %s:\n", path);
	while (fgets(line, sizeof(line), f) != NULL)
		fprintf(stderr, "  %s", line);
	fclose(f);
}

static int
random_hex(char *out, size_t bytes)
{
	unsigned char b[16];
	int fd;

	if (bytes > sizeof(b) || (fd = open("/dev/urandom", O_RDONLY)) < 0)
		return (-1);
	if (read(fd, b, bytes) != (ssize_t)bytes) {
		close(fd);
		return (-1);
	}
	close(fd);
	aff_hex_encode(b, bytes, out);
	return (0);
}

static int
run_initdb(struct tu_pg *pg, const struct pg_user *u)
{
	char data[600], pwfile[600], log[600], bin[600], pwopt[640];
	int fd, status;
	pid_t pid;

	snprintf(data, sizeof(data), "%s/data", pg->dir);
	snprintf(pwfile, sizeof(pwfile), "%s/pwfile", pg->dir);
	snprintf(log, sizeof(log), "%s/initdb.log", pg->dir);
	snprintf(bin, sizeof(bin), "%s/initdb", pg_bin());
	snprintf(pwopt, sizeof(pwopt), "--pwfile=%s", pwfile);
	if ((fd = open(pwfile, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0)
		return (-1);
	if (dprintf(fd, "%s\n", pg->password) < 0 ||
	    (u->drop && fchown(fd, u->uid, u->gid) != 0)) {
		close(fd);
		return (-1);
	}
	close(fd);
	if ((pid = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (child_setup(u, log) != 0)
			_exit(126);
		/* Local sockets trust (only the folder's owner reaches them),
		 * loopback TCP needs the password, as a deployment would.
		 * --no-sync: initdb's own files, of a throwaway cluster. */
		execl(bin, "initdb", "-D", data, "-U", PG_SUPERUSER,
		    "--auth-local=trust", "--auth-host=scram-sha-256", pwopt,
		    "-E", "UTF8", "--locale=C", "--no-sync", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		unlink(pwfile);
		return (-1);
	}
	unlink(pwfile);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "pg: initdb (%s) failed (status %d)\n", bin,
		    status);
		log_print(pg, "initdb.log");
		return (-1);
	}
	return (0);
}

/* Forks the postmaster in its own process group and waits until it
 * accepts connections. */
static int
launch(struct tu_pg *pg)
{
	char data[600], log[600], bin[600], port[32], sock[640];
	struct pg_user u;
	pid_t parent = getpid();
	double t0 = now_ms();

	if (pg_user_get(&u) != 0)
		return (-1);
	snprintf(data, sizeof(data), "%s/data", pg->dir);
	snprintf(log, sizeof(log), "%s/postgres.log", pg->dir);
	snprintf(bin, sizeof(bin), "%s/postgres", pg_bin());
	snprintf(port, sizeof(port), "port=%d", pg->port);
	snprintf(sock, sizeof(sock), "unix_socket_directories=%s", pg->dir);
	if ((pg->pid = fork()) == 0) {
		/* Its own group: tu_pg_kill() reaches every backend at once. */
		setpgid(0, 0);
		if (child_setup(&u, log) != 0)
			_exit(126);
		/* After setuid, which clears it. SIGQUIT: immediate shutdown,
		 * the postmaster takes its backends with it. */
		prctl(PR_SET_PDEATHSIG, SIGQUIT);
		if (getppid() != parent)
			_exit(125);
		execl(bin, "postgres", "-D", data, "-c", port, "-c", sock,
		    "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on",
		    "-c", "synchronous_commit=on", "-c", "full_page_writes=on",
		    "-c", "shared_buffers=16MB", "-c", "logging_collector=off",
		    (char *)NULL);
		_exit(127);
	}
	if (pg->pid < 0) {
		pg->pid = 0;
		return (-1);
	}
	setpgid(pg->pid, pg->pid); /* also here: no race with tu_pg_kill() */
	while (now_ms() - t0 < PG_READY_MS) {
		int status;

		if (PQping(pg->admin) == PQPING_OK) {
			pg->ready_ms = now_ms() - t0;
			return (0);
		}
		if (waitpid(pg->pid, &status, WNOHANG) == pg->pid) {
			pg->pid = 0;
			break;
		}
		tu_sleep_ms(20);
	}
	fprintf(stderr, "pg: the server did not come up on port %d\n",
	    pg->port);
	log_print(pg, "postgres.log");
	tu_pg_kill(pg);
	return (-1);
}

static void
live_add(struct tu_pg *pg)
{
	for (int i = 0; i < PG_LIVE_MAX; i++)
		if (live[i].pg == NULL || live[i].pg == pg) {
			live[i].pg = pg;
			live[i].owner = getpid();
			return;
		}
}

static void
live_remove(struct tu_pg *pg)
{
	for (int i = 0; i < PG_LIVE_MAX; i++)
		if (live[i].pg == pg)
			live[i].pg = NULL;
}

static void
live_stop_at_exit(void)
{
	for (int i = 0; i < PG_LIVE_MAX; i++)
		if (live[i].pg != NULL && live[i].owner == getpid())
			tu_pg_stop(live[i].pg);
}

/* Only async-signal-safe calls: kill, waitpid, fork, execv. */
static void
live_stop_on_signal(int sig)
{
	for (int i = 0; i < PG_LIVE_MAX; i++) {
		struct tu_pg *pg = live[i].pg;
		pid_t rm;

		if (pg == NULL || live[i].owner != getpid() || pg->pid <= 0)
			continue;
		kill(-pg->pid, SIGQUIT);
		waitpid(pg->pid, NULL, 0);
		if ((rm = fork()) == 0) {
			char *const argv[] = { "rm", "-rf", pg->dir, NULL };
			execv("/bin/rm", argv);
			_exit(127);
		}
		if (rm > 0)
			waitpid(rm, NULL, 0);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
live_hooks_install(void)
{
	static int done;
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };

	if (done)
		return;
	done = 1;
	atexit(live_stop_at_exit);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = live_stop_on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(sigs[i], &sa, NULL);
	}
}

static int
create_database(struct tu_pg *pg)
{
	double t0 = now_ms();
	PGconn *c = PQconnectdb(pg->admin);
	PGresult *r;
	int ok;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pg: connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return (-1);
	}
	r = PQexec(c, "CREATE DATABASE " PG_DATABASE);
	if (!(ok = PQresultStatus(r) == PGRES_COMMAND_OK))
		fprintf(stderr, "pg: CREATE DATABASE: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	pg->createdb_ms = now_ms() - t0;
	return (ok ? 0 : -1);
}

int
tu_pg_start(struct tu_pg *pg)
{
	struct pg_user u;
	double t0;

	memset(pg, 0, sizeof(*pg));
	if (pg_user_get(&u) != 0 || random_hex(pg->password, 16) != 0)
		return (-1);
	if ((pg->dir = tu_tmpdir()) == NULL)
		return (-1);
	live_hooks_install();
	live_add(pg);
	if (u.drop && chown(pg->dir, u.uid, u.gid) != 0)
		goto failed;
	if ((pg->port = tu_free_port()) < 0)
		goto failed;
	snprintf(pg->uri, sizeof(pg->uri),
	    "postgresql://" PG_SUPERUSER ":%s@127.0.0.1:%d/" PG_DATABASE,
	    pg->password, pg->port);
	snprintf(pg->admin, sizeof(pg->admin),
	    "postgresql://" PG_SUPERUSER ":%s@127.0.0.1:%d/postgres",
	    pg->password, pg->port);
	t0 = now_ms();
	if (run_initdb(pg, &u) != 0)
		goto failed;
	pg->initdb_ms = now_ms() - t0;
	if (launch(pg) != 0 || create_database(pg) != 0)
		goto failed;
	return (0);

failed:
	tu_pg_stop(pg);
	return (-1);
}

/* Sends sig to the postmaster (or to its whole group) and reaps it,
 * killing the group when it takes longer than PG_STOP_MS. */
static void
halt(struct tu_pg *pg, int sig, int group)
{
	double t0 = now_ms();

	if (pg->pid <= 0)
		return;
	kill(group ? -pg->pid : pg->pid, sig);
	while (waitpid(pg->pid, NULL, WNOHANG) == 0) {
		if (now_ms() - t0 > PG_STOP_MS) {
			fprintf(stderr, "pg: no stop in %d ms, SIGKILL\n",
			    PG_STOP_MS);
			kill(-pg->pid, SIGKILL);
			waitpid(pg->pid, NULL, 0);
			break;
		}
		tu_sleep_ms(10);
	}
	/* Backends a killed postmaster leaves behind are in its group. */
	kill(-pg->pid, SIGKILL);
	pg->pid = 0;
}

void
tu_pg_stop(struct tu_pg *pg)
{
	halt(pg, SIGINT, 0); /* fast shutdown, as pg_ctl stop -m fast */
	live_remove(pg);
	if (pg->dir != NULL) {
		tu_rmtree(pg->dir);
		free(pg->dir);
		pg->dir = NULL;
	}
}

void
tu_pg_kill(struct tu_pg *pg)
{
	halt(pg, SIGKILL, 1);
}

int
tu_pg_restart(struct tu_pg *pg)
{
	if (pg->dir == NULL)
		return (-1);
	halt(pg, SIGINT, 0);
	/* A killed server's backends may hold the shared memory a moment
	 * after their group was killed: one more try. */
	for (int i = 0; i < 2; i++) {
		if (launch(pg) == 0)
			return (0);
		tu_sleep_ms(500);
	}
	return (-1);
}
