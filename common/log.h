/*
 * common/log.h: levelled logging to stderr.
 *
 * One line per event: "2026-11-24T14:30:00.123Z info  worker: text". The
 * level and the program name are set once at start-up (mc_log_init) and read
 * only afterwards. Callers never log message bodies, passwords or session
 * tokens: log ids, sizes and codes instead.
 */
#ifndef MC_COMMON_LOG_H
#define MC_COMMON_LOG_H

enum mc_log_level {
    MC_LOG_DEBUG = 0,
    MC_LOG_INFO = 1,
    MC_LOG_WARN = 2,
    MC_LOG_ERROR = 3,
    MC_LOG_OFF = 4,
};

/* Sets the program name printed on each line and the lowest level written.
 * Call once from main before other threads or loops start. */
void mc_log_init(const char *program, enum mc_log_level level);

/* Parses "debug", "info", "warn", "error" or "off" into *level.
 * Returns 0, or MC_EINVAL for any other text (then *level is unchanged). */
int mc_log_parse_level(const char *text, enum mc_log_level *level);

/* Returns non-zero when a line at this level would be written, so that
 * callers can skip building expensive arguments. */
int mc_log_enabled(enum mc_log_level level);

/* Writes one line at the given level, printf-style, with a single write(2)
 * so that lines from several processes sharing stderr do not interleave. */
void mc_log(enum mc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mc_debug(...) mc_log(MC_LOG_DEBUG, __VA_ARGS__)
#define mc_info(...) mc_log(MC_LOG_INFO, __VA_ARGS__)
#define mc_warn(...) mc_log(MC_LOG_WARN, __VA_ARGS__)
#define mc_error(...) mc_log(MC_LOG_ERROR, __VA_ARGS__)

#endif
