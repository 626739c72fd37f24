/*
 * common/config.h: settings from defaults, then the environment, then flags.
 *
 * A program describes its settings once, as a table of mc_option_t whose
 * targets already hold the defaults; mc_config_parse overwrites them from the
 * environment (CHAT_*) and then from the command line, so a flag beats a
 * variable and a variable beats a default. The same table prints --help.
 * Strings point into argv or environ and live as long as the process.
 */
#ifndef MC_COMMON_CONFIG_H
#define MC_COMMON_CONFIG_H

#include <stddef.h>
#include <stdio.h>

enum mc_option_type {
    MC_OPT_STRING, /* target: const char ** */
    MC_OPT_INT,    /* target: long *, checked against [min, max] */
    MC_OPT_BOOL,   /* target: int *; a flag alone means 1; values 1/0, true/false, yes/no, on/off */
};

typedef struct mc_option {
    const char *flag; /* "--listen" */
    const char *env;  /* "CHAT_LISTEN", or NULL for a flag only */
    enum mc_option_type type;
    void *target;
    long min, max; /* MC_OPT_INT only */
    const char *help;
} mc_option_t;

/* Returned by mc_config_parse when --help or -h was given. */
#define MC_CONFIG_HELP 1

/*
 * Applies the environment and then argv[1..] to the targets in opts. A
 * boolean flag takes its value after '=' or as the next argument when that
 * is a boolean word ("--flag off"); alone it means on. Parsing stops at the
 * first argument that is not an option (or after "--"); its index is stored
 * in *first_arg (argc when there is none), so programs with subcommands can
 * go on from there. With first_arg NULL, such an argument is an error.
 * Returns 0, MC_CONFIG_HELP, or MC_EINVAL with a sentence in err (unknown
 * flag, missing value, a number out of range, a bad boolean, an unexpected
 * argument).
 */
int mc_config_parse(const mc_option_t *opts, size_t n, int argc, char **argv, int *first_arg,
                    char *err, size_t errlen);

/* Prints "usage: PROGRAM SYNOPSIS", then every option with its variable,
 * its help text and its current value (the default, before parsing). */
void mc_config_usage(FILE *out, const char *program, const char *synopsis, const mc_option_t *opts,
                     size_t n);

#endif
