/*
 * common/log.c: the levelled stderr logger of common/log.h: one
 * time-stamped line per event.
 */
#include "common/log.h"
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Frozen after mc_log_init: configuration, not mutable state. */
static const char *log_program = "multichat";
static enum mc_log_level log_level = MC_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void mc_log_init(const char *program, enum mc_log_level level)
{
    log_program = program;
    log_level = level;
}

int mc_log_parse_level(const char *text, enum mc_log_level *level)
{
    for (int i = MC_LOG_DEBUG; i <= MC_LOG_OFF; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *level = (enum mc_log_level)i;
            return 0;
        }
    }
    return MC_EINVAL;
}

int mc_log_enabled(enum mc_log_level level)
{
    return level >= log_level && level < MC_LOG_OFF;
}

void mc_log(enum mc_log_level level, const char *fmt, ...)
{
    if (!mc_log_enabled(level))
        return;

    char line[1024];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), level_names[level], log_program);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: keep the newline */
    line[len++] = '\n';

    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
}
