/*
 * test_log.c - the buffered log (issue 15) in a real child process whose
 * stderr is a real pipe: lines arrive whole and in order from many
 * threads, a reader that stalls costs dropped (and counted) lines but
 * never a blocked caller, exit writes everything, and an ERROR line is
 * written at once.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aff_log.h"

/* Reads fd until EOF (or timeout_ms without data); caller frees. */
static char *
read_all(int fd, int timeout_ms)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap + 1);

	assert_non_null(buf);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, timeout_ms) <= 0)
			fail_msg("no EOF on the log pipe in %d ms", timeout_ms);
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		if ((r = read(fd, buf + len, cap - len)) <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	return (buf);
}

/* Starts a child whose stderr is the write end of *log_fd's pipe and
 * whose *res_fd pipe carries what it measured. */
static pid_t
child_start(int *log_fd, int *res_fd)
{
	int lp[2], rp[2];
	pid_t pid;

	assert_int_equal(pipe(lp), 0);
	assert_int_equal(pipe(rp), 0);
	if ((pid = fork()) == 0) {
		dup2(lp[1], STDERR_FILENO);
		close(lp[0]);
		close(lp[1]);
		close(rp[0]);
		*res_fd = rp[1];
		*log_fd = -1;
		return (0);
	}
	assert_true(pid > 0);
	close(lp[1]);
	close(rp[1]);
	*log_fd = lp[0];
	*res_fd = rp[0];
	return (pid);
}

static void
child_wait(pid_t pid, int want)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), want);
}

#define THREADS 8
#define PER_THREAD 300

static void *
log_many(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (int i = 0; i < PER_THREAD; i++)
		aff_info("thread=%d seq=%d", t, i);
	return (NULL);
}

/* 8 threads x 300 lines (~170 KB: fits the buffer, so none may be
 * dropped however late the log thread runs); exit writes them. */
static void
test_lines_from_many_threads_arrive_whole_and_in_order(void **state)
{
	int log_fd, res_fd, next[THREADS] = { 0 }, lines = 0;
	char *out, *p, *nl;
	pid_t pid;

	(void)state;
	if ((pid = child_start(&log_fd, &res_fd)) == 0) {
		pthread_t th[THREADS];

		aff_log_init("test-log");
		for (int t = 0; t < THREADS; t++)
			pthread_create(&th[t], NULL, log_many, (void *)(intptr_t)t);
		for (int t = 0; t < THREADS; t++)
			pthread_join(th[t], NULL);
		exit(0); /* no flush call: exit must write everything */
	}
	close(res_fd);
	out = read_all(log_fd, 20000);
	close(log_fd);
	child_wait(pid, 0);
	for (p = out; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		int t, seq, end = 0;
		const char *m = strstr(p, " test-log[");

		assert_non_null(m);
		assert_true(m < nl);
		m = strstr(m, "] info thread=");
		assert_non_null(m);
		assert_int_equal(
		    sscanf(m, "] info thread=%d seq=%d%n", &t, &seq, &end), 2);
		assert_ptr_equal(m + end, nl); /* whole: nothing after it */
		assert_true(t >= 0 && t < THREADS);
		assert_int_equal(seq, next[t]);
		next[t]++;
		lines++;
	}
	assert_string_equal(p, "");
	assert_int_equal(lines, THREADS * PER_THREAD);
	free(out);
}

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

#define STALLED_LINES 20000

/* Nobody reads the pipe while the child logs 20000 lines (~2 MB, far more
 * than the pipe and the buffer hold): every call still returns at once,
 * and once the pipe is read the lines that were kept and the count of
 * the dropped ones add up to what was logged. */
static void
test_a_stalled_reader_costs_dropped_lines_not_a_blocked_caller(void **state)
{
	int log_fd, res_fd, got = 0, last = -1;
	long long dropped = 0, max_us = -1;
	char *out, *p, *nl, res[64] = "";
	struct pollfd pr;
	pid_t pid;

	(void)state;
	if ((pid = child_start(&log_fd, &res_fd)) == 0) {
		int64_t worst = 0;

		aff_log_init("test-log");
		for (int i = 0; i < STALLED_LINES; i++) {
			int64_t t0 = now_us();

			aff_info("line=%d %s", i,
			    "padding padding padding padding padding padding");
			if (now_us() - t0 > worst)
				worst = now_us() - t0;
		}
		dprintf(res_fd, "%lld\n", (long long)worst);
		close(res_fd);
		exit(0);
	}
	/* The child reports before it exits, with the pipe still unread: a
	 * caller blocked on the full pipe would never get there. */
	pr = (struct pollfd){ .fd = res_fd, .events = POLLIN };
	assert_int_equal(poll(&pr, 1, 20000), 1);
	assert_true(read(res_fd, res, sizeof(res) - 1) > 0);
	close(res_fd);
	assert_int_equal(sscanf(res, "%lld", &max_us), 1);
	/* Promptly: a few ms on a busy shared host, never the stall. */
	assert_true(max_us < 200000);
	out = read_all(log_fd, 20000);
	close(log_fd);
	child_wait(pid, 0);
	for (p = out; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		const char *m;
		long long n;
		int i;

		if ((m = strstr(p, "] info line=")) != NULL && m < nl) {
			assert_int_equal(sscanf(m, "] info line=%d", &i), 1);
			assert_true(i > last); /* in order, gaps where dropped */
			last = i;
			got++;
			continue;
		}
		m = strstr(p, "] warn ");
		assert_non_null(m);
		assert_true(m < nl);
		assert_int_equal(sscanf(m,
		                     "] warn %lld log lines dropped: the log's "
		                     "reader was too slow",
		                     &n),
		    1);
		assert_non_null(strstr(m, "reader was too slow\n"));
		dropped += n;
	}
	assert_true(dropped > 0);
	assert_int_equal(got + dropped, STALLED_LINES);
	assert_true(last >= 0);
	free(out);
}

/* An ERROR line is written before aff_error returns, after what was
 * logged before it: the child is killed (no exit, no flush) right
 * after, and both lines are on the pipe. Then a fatal start error's
 * shape: info lines, and a return from main with status 1. */
static void
test_an_error_line_is_written_at_once(void **state)
{
	int log_fd, res_fd;
	char *out;
	pid_t pid;

	(void)state;
	for (int round = 0; round < 5; round++) {
		if ((pid = child_start(&log_fd, &res_fd)) == 0) {
			aff_log_init("test-log");
			aff_info("before the crash %d", round);
			aff_error("the crash report %d", round);
			kill(getpid(), SIGKILL);
			_exit(3);
		}
		close(res_fd);
		out = read_all(log_fd, 20000);
		close(log_fd);
		{
			int st;
			assert_int_equal(waitpid(pid, &st, 0), pid);
			assert_true(WIFSIGNALED(st));
		}
		{
			char *a = strstr(out, "] info before the crash ");
			char *b = strstr(out, "] error the crash report ");

			assert_non_null(a);
			assert_non_null(b);
			assert_true(a < b);
		}
		free(out);
	}
	if ((pid = child_start(&log_fd, &res_fd)) == 0) {
		aff_log_init("test-log");
		for (int i = 0; i < 100; i++)
			aff_info("starting %d", i);
		exit(1);
	}
	close(res_fd);
	out = read_all(log_fd, 20000);
	close(log_fd);
	child_wait(pid, 1);
	assert_non_null(strstr(out, "] info starting 99\n"));
	free(out);
}

/* A child forked by a process with a log thread has none: its lines are
 * written synchronously (here: before it is killed), and it does not
 * write its parent's buffered lines again. */
static void
test_a_forked_child_logs_synchronously(void **state)
{
	int log_fd, res_fd;
	char *out, *a;
	pid_t pid;

	(void)state;
	if ((pid = child_start(&log_fd, &res_fd)) == 0) {
		pid_t gc;

		aff_log_init("test-log");
		aff_info("parent line");
		if ((gc = fork()) == 0) {
			aff_info("grandchild line");
			kill(getpid(), SIGKILL);
			_exit(3);
		}
		waitpid(gc, NULL, 0);
		exit(0);
	}
	close(res_fd);
	out = read_all(log_fd, 20000);
	close(log_fd);
	child_wait(pid, 0);
	assert_non_null(strstr(out, "] info grandchild line\n"));
	a = strstr(out, "] info parent line\n");
	assert_non_null(a);
	assert_null(strstr(a + 1, "] info parent line\n"));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_lines_from_many_threads_arrive_whole_and_in_order),
		cmocka_unit_test(
		    test_a_stalled_reader_costs_dropped_lines_not_a_blocked_caller),
		cmocka_unit_test(test_an_error_line_is_written_at_once),
		cmocka_unit_test(test_a_forked_child_logs_synchronously),
	};

	return (cmocka_run_group_tests_name("log", tests, NULL, NULL));
}
