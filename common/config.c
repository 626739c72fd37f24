/*
 * common/config.c: settings from a table of options (common/config.h):
 * defaults, then CHAT_* variables, then flags, and the --help text.
 */
#include "common/config.h"
#include "common/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_bool(const char *text, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return MC_EINVAL;
}

static int apply(const mc_option_t *o, const char *value, const char *source, char *err,
                 size_t errlen)
{
    switch (o->type) {
    case MC_OPT_STRING:
        *(const char **)o->target = value;
        return 0;
    case MC_OPT_BOOL:
        if (parse_bool(value, (int *)o->target) == 0)
            return 0;
        snprintf(err, errlen, "%s: expected a boolean (on/off), got \"%s\"", source, value);
        return MC_EINVAL;
    case MC_OPT_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end != '\0' || v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: expected a whole number from %ld to %ld, got \"%s\"", source,
                     o->min, o->max, value);
            return MC_EINVAL;
        }
        *(long *)o->target = v;
        return 0;
    }
    }
    return MC_EINVAL;
}

static const mc_option_t *find_flag(const mc_option_t *opts, size_t n, const char *arg, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].flag) == len && strncmp(opts[i].flag, arg, len) == 0)
            return &opts[i];
    return NULL;
}

int mc_config_parse(const mc_option_t *opts, size_t n, int argc, char **argv, int *first_arg,
                    char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const char *value = opts[i].env ? getenv(opts[i].env) : NULL;
        if (value && *value) {
            int rc = apply(&opts[i], value, opts[i].env, err, errlen);
            if (rc)
                return rc;
        }
    }

    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return MC_CONFIG_HELP;
        if (strncmp(arg, "--", 2) != 0)
            break;
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const mc_option_t *o = find_flag(opts, n, arg, name_len);
        if (!o) {
            snprintf(err, errlen, "unknown option %.*s (see --help)", (int)name_len, arg);
            return MC_EINVAL;
        }
        const char *value = eq ? eq + 1 : NULL;
        int ignored;
        if (!value && o->type == MC_OPT_BOOL) {
            /* "--flag off" reads as it looks: a boolean word is the flag's value. */
            value = i + 1 < argc && parse_bool(argv[i + 1], &ignored) == 0 ? argv[++i] : "1";
        } else if (!value) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "option %s needs a value", o->flag);
                return MC_EINVAL;
            }
            value = argv[++i];
        }
        int rc = apply(o, value, o->flag, err, errlen);
        if (rc)
            return rc;
    }
    if (first_arg) {
        *first_arg = i;
    } else if (i < argc) {
        snprintf(err, errlen, "unexpected argument \"%s\" (see --help)", argv[i]);
        return MC_EINVAL;
    }
    return 0;
}

void mc_config_usage(FILE *out, const char *program, const char *synopsis, const mc_option_t *opts,
                     size_t n)
{
    fprintf(out, "usage: %s %s\n\noptions (each also read from the environment variable shown):\n",
            program, synopsis);
    for (size_t i = 0; i < n; i++) {
        const mc_option_t *o = &opts[i];
        fprintf(out, "  %-24s %-26s %s", o->flag, o->env ? o->env : "", o->help);
        switch (o->type) {
        case MC_OPT_STRING: {
            const char *v = *(const char **)o->target;
            fprintf(out, " (default: %s)\n", v && *v ? v : "none");
            break;
        }
        case MC_OPT_INT:
            fprintf(out, " (default: %ld)\n", *(long *)o->target);
            break;
        case MC_OPT_BOOL:
            fprintf(out, " (default: %s)\n", *(int *)o->target ? "on" : "off");
            break;
        }
    }
    fprintf(out, "  %-24s %-26s %s\n", "--help", "", "print this text and exit");
}
