/* aff_config.c - see aff_config.h. */
#include "aff_config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aff_err.h"
#include "aff_log.h"
#include "aff_util.h"

static void
print_usage(FILE *f, const char *prog, const struct aff_option *opts, size_t n)
{
	int env_only = 0;

	fprintf(f, "usage: %s [options]\n", prog);
	for (size_t i = 0; i < n; i++) {
		char left[64];
		if (opts[i].flag == NULL) {
			env_only = 1;
			continue;
		}
		snprintf(left, sizeof(left), "--%s %s", opts[i].flag, opts[i].arg);
		fprintf(f, "  %-26s %s%s%s%s\n", left, opts[i].help,
		    opts[i].env ? " [" : "", opts[i].env ? opts[i].env : "",
		    opts[i].env ? "]" : "");
	}
	fprintf(f, "  --help, --version\n");
	if (!env_only)
		return;
	fprintf(f, "environment only (no flag):\n");
	for (size_t i = 0; i < n; i++)
		if (opts[i].flag == NULL && opts[i].env != NULL)
			fprintf(f, "  %-26s %s\n", opts[i].env, opts[i].help);
}

/* Sets one option from a string; prints why not and returns -1. */
static int
opt_set(const char *prog, const struct aff_option *o, const char *v)
{
	int64_t n;
	int lvl;

	switch (o->type) {
	case AFF_OPT_STRING:
		if (strlen(v) >= o->cap) {
			fprintf(stderr, "%s: --%s is too long\n", prog, o->flag);
			return (-1);
		}
		memcpy(o->dst, v, strlen(v) + 1);
		return (0);
	case AFF_OPT_INT:
	case AFF_OPT_SIZE:
		if (aff_parse_int64(v, o->min, o->max, &n) != AFF_OK) {
			fprintf(stderr,
			    "%s: --%s must be a whole number from %lld to %lld, "
			    "not '%s'\n",
			    prog, o->flag, (long long)o->min, (long long)o->max, v);
			return (-1);
		}
		if (o->type == AFF_OPT_INT)
			*(int *)o->dst = (int)n;
		else
			*(size_t *)o->dst = (size_t)n;
		return (0);
	case AFF_OPT_LEVEL:
		if ((lvl = aff_log_level_parse(v)) < 0) {
			fprintf(stderr,
			    "%s: --%s must be debug, info, warn or error, not "
			    "'%s'\n",
			    prog, o->flag, v);
			return (-1);
		}
		*(int *)o->dst = lvl;
		return (0);
	case AFF_OPT_CUSTOM:
		return (o->parse(o->dst, v));
	}
	return (-1);
}

int
aff_config_load(const char *prog, const struct aff_option *opts, size_t n,
    int argc, char **argv, int *help)
{
	struct option longopts[64];
	const char *v;
	size_t nl = 0;
	int opt;

	*help = 0;
	if (n + 3 > sizeof(longopts) / sizeof(longopts[0]))
		return (AFF_INVALID_ARGUMENT);
	for (size_t i = 0; i < n; i++) {
		if (opts[i].env == NULL || (v = getenv(opts[i].env)) == NULL)
			continue;
		if (opts[i].dst == NULL && opts[i].parse == NULL)
			continue; /* documented here, read where it is used */
		if (opt_set(prog, &opts[i], v) != 0) {
			fprintf(stderr, "%s: (from the environment variable %s)\n",
			    prog, opts[i].env);
			return (AFF_INVALID_ARGUMENT);
		}
	}
	if (argv == NULL)
		return (AFF_OK);
	for (size_t i = 0; i < n; i++)
		if (opts[i].flag != NULL)
			longopts[nl++] = (struct option){ opts[i].flag,
				required_argument, NULL, (int)i + 256 };
	longopts[nl] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[nl + 1] = (struct option){ "version", no_argument, NULL, 'V' };
	longopts[nl + 2] = (struct option){ NULL, 0, NULL, 0 };
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'h' || opt == 'V') {
			if (opt == 'h')
				print_usage(stdout, prog, opts, n);
			else
				printf("%s %s\n", prog, AFFILIATE_VERSION);
			*help = 1;
			return (AFF_OK);
		}
		if (opt < 256 || opt_set(prog, &opts[opt - 256], optarg) != 0) {
			print_usage(stderr, prog, opts, n);
			return (AFF_INVALID_ARGUMENT);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog,
		    argv[optind]);
		print_usage(stderr, prog, opts, n);
		return (AFF_INVALID_ARGUMENT);
	}
	return (AFF_OK);
}
