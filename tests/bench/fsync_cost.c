/*
 * fsync_cost.c - bench-fsync-cost: what one flush costs on a disk, the
 * bound of a durable commit: a write of SIZE bytes and fdatasync (or
 * fsync), N times, to a file that grows (append: the flush also writes
 * the file's size) or to one written and synced before (overwrite: data
 * only, as SQLite's WAL once it is reused) or fallocated (unwritten
 * extents to convert). Prints mean, p50, p90 and max per kind.
 *
 * Usage: bench-fsync-cost DIR [N]   (N default 200). DIR: the folder of
 * the database whose commits are measured (same file system).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* fallocate */
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum prep { APPEND, OVERWRITE, FALLOCATED };

static double
now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return ((double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3);
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return ((x > y) - (x < y));
}

/* One kind, n times; returns 0 or -1 (with a message). */
static int
run(const char *dir, const char *name, int n, enum prep prep, int full,
    size_t size)
{
	char path[4096];
	double *t, sum = 0;
	char *buf;
	int fd, rv = -1;

	snprintf(path, sizeof(path), "%s/fsync-cost.tmp", dir);
	t = calloc((size_t)n, sizeof(*t));
	buf = malloc(size);
	if (t == NULL || buf == NULL)
		goto done;
	memset(buf, 'x', size);
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		perror(path);
		goto done;
	}
	if (prep == OVERWRITE) {
		for (int i = 0; i < n; i++)
			if (pwrite(fd, buf, size, (off_t)(size * (size_t)i)) < 0)
				goto failed;
		if (fsync(fd) != 0)
			goto failed;
	} else if (prep == FALLOCATED) {
		if (fallocate(fd, 0, 0, (off_t)(size * (size_t)n)) != 0 ||
		    fsync(fd) != 0)
			goto failed;
	}
	for (int i = 0; i < n; i++) {
		double t0 = now_us();

		if (pwrite(fd, buf, size, (off_t)(size * (size_t)i)) < 0 ||
		    (full ? fsync(fd) : fdatasync(fd)) != 0)
			goto failed;
		t[i] = now_us() - t0;
		sum += t[i];
	}
	qsort(t, (size_t)n, sizeof(*t), cmp);
	printf("%-36s mean %6.0f us  p50 %6.0f  p90 %6.0f  max %7.0f\n", name,
	    sum / n, t[n / 2], t[n * 9 / 10], t[n - 1]);
	rv = 0;
failed:
	if (rv != 0)
		perror(name);
	close(fd);
	unlink(path);
done:
	free(t);
	free(buf);
	return (rv);
}

int
main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 200;
	int rv = 0;

	if (argc < 2 || argc > 3 || n < 10) {
		fprintf(stderr, "usage: %s DIR [N >= 10]\n", argv[0]);
		return (2);
	}
	rv |= run(argv[1], "append 4 KiB + fdatasync", n, APPEND, 0, 4096);
	rv |= run(argv[1], "overwrite 4 KiB + fdatasync", n, OVERWRITE, 0, 4096);
	rv |= run(argv[1], "fallocated 4 KiB + fdatasync", n, FALLOCATED, 0,
	    4096);
	rv |= run(argv[1], "append 4 KiB + fsync", n, APPEND, 1, 4096);
	rv |= run(argv[1], "overwrite 4 KiB + fsync", n, OVERWRITE, 1, 4096);
	/* About one commit of a 16-order batch: 40 WAL frames. */
	rv |= run(argv[1], "append 160 KiB + fdatasync", n, APPEND, 0,
	    160 * 1024);
	rv |= run(argv[1], "overwrite 160 KiB + fdatasync", n, OVERWRITE, 0,
	    160 * 1024);
	return (rv != 0);
}
