/*
 * replay.c - a main() for a libFuzzer target built without libFuzzer (gcc,
 * the ordinary test build): feeds each file named, or each file in each
 * folder named, to LLVMFuzzerTestOneInput once. ctest runs it on the seed
 * corpus and on tests/fuzz/regressions/<target>/, so every input that once
 * crashed a target stays a test, with or without clang, and under the
 * sanitizers in `make asan`. A crash or abort() in the target fails the
 * test; the file being replayed is printed first so the failure names it.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* Reads the whole file into a malloc'd buffer of exactly its size (so a
 * read past the end is caught by AddressSanitizer, as under libFuzzer);
 * the caller frees. Returns 0, or -1 with a message. */
static int
replay_read(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto failed;
	/* malloc(0) may return NULL; one byte more is never read. */
	if ((buf = malloc(n > 0 ? (size_t)n : 1)) == NULL)
		goto failed;
	if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)
		goto failed;
	fclose(f);
	*out = buf;
	*len = (size_t)n;
	return (0);
failed:
	perror(path);
	free(buf);
	if (f != NULL)
		fclose(f);
	return (-1);
}

static int
replay_file(const char *path, int *count)
{
	uint8_t *data;
	size_t len;

	if (replay_read(path, &data, &len) != 0)
		return (-1);
	/* Named before the call: a crash leaves this as the last line. */
	printf("replay %s (%zu bytes)\n", path, len);
	fflush(stdout);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	(*count)++;
	return (0);
}

static int
replay_name_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* Every regular file of the folder, in name order (a stable replay). A
 * missing folder is no error: a target may have no regressions yet. */
static int
replay_dir(const char *dir, int *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, path[4096];
	size_t n = 0, cap = 0;
	int rv = 0;

	if (d == NULL)
		return (0);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue; /* ., .., and .gitkeep-style markers */
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? 2 * cap : 16) *
			    sizeof(*names));
			if (nn == NULL) {
				rv = -1;
				goto done;
			}
			names = nn;
		}
		if ((names[n] = strdup(e->d_name)) == NULL) {
			rv = -1;
			goto done;
		}
		n++;
	}
	if (n > 0) /* with no file names is NULL, which qsort must not get */
		qsort(names, n, sizeof(*names), replay_name_cmp);
	for (size_t i = 0; i < n && rv == 0; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			rv = replay_file(path, count);
	}
done:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return (rv);
}

int
main(int argc, char **argv)
{
	int count = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return (2);
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int rv;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			rv = replay_dir(argv[i], &count);
		else
			rv = replay_file(argv[i], &count);
		if (rv != 0)
			return (1);
	}
	if (count == 0) {
		/* The seed corpus is always there: none read means a wrong path. */
		fprintf(stderr, "%s: no input replayed\n", argv[0]);
		return (1);
	}
	printf("%d inputs replayed, none crashed\n", count);
	return (0);
}
