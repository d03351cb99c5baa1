/*
 * aff_config.h - table-driven configuration: each setting is a flag and an
 * AFFILIATE_* environment variable (the flag wins), parsed strictly, with
 * the usage text made from the same table.
 */
#ifndef AFF_CONFIG_H
#define AFF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum aff_opt_type {
	AFF_OPT_STRING, /* char[cap] */
	AFF_OPT_INT,    /* int, in [min, max] */
	AFF_OPT_SIZE,   /* size_t, in [min, max] */
	AFF_OPT_LEVEL,  /* int: a log level name */
	AFF_OPT_CUSTOM, /* parse(dst, value) decides */
};

/*
 * A row with no flag is a setting read only from the environment (a
 * secret, which argv would show to every user, or a rarely used limit):
 * it is listed under "environment only" in --help. Its dst may be NULL
 * when the code that uses it reads the variable itself; the row then only
 * documents it.
 */
struct aff_option {
	const char *flag;  /* "listen" for --listen; NULL: environment only */
	const char *env;   /* "AFFILIATE_LISTEN", or NULL */
	enum aff_opt_type type;
	void *dst;
	size_t cap;        /* AFF_OPT_STRING: size of dst */
	int64_t min, max;  /* AFF_OPT_INT, AFF_OPT_SIZE */
	/* AFF_OPT_CUSTOM: returns 0, or -1 after printing why to stderr. */
	int (*parse)(void *dst, const char *value);
	const char *arg;   /* "URL", shown in the usage */
	const char *help;  /* one line, with the default */
};

/*
 * Applies the environment, then argv (argv may be NULL) to the options'
 * destinations, which hold the defaults on entry. Returns AFF_OK, or
 * AFF_INVALID_ARGUMENT after printing what is wrong (naming the flag or
 * variable) and the usage to stderr. --help and --version print and set
 * *help. Positional arguments are refused.
 */
int aff_config_load(const char *prog, const struct aff_option *opts,
    size_t n, int argc, char **argv, int *help);

#endif /* AFF_CONFIG_H */
