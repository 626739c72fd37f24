/*
 * worker/template.h: the few HTML pages, from files with {{name}} holes.
 *
 * Every value is HTML-escaped (& < > " '), so a template can put it in text
 * or in a quoted attribute. A hole without a value renders empty.
 */
#ifndef MC_WORKER_TEMPLATE_H
#define MC_WORKER_TEMPLATE_H

#include <stddef.h>

typedef struct wrk_template_var {
    const char *name;
    const char *value; /* NUL-terminated; NULL renders empty */
} wrk_template_var_t;

#define WRK_TEMPLATE_MAX_BYTES (256 * 1024)

/* Reads the file at path and fills its holes from vars[0..n) into a
 * malloc'd, NUL-terminated *out of *len bytes that the caller frees.
 * Returns 0, MC_ENOTFOUND (no such file), MC_ETOOBIG (file over
 * WRK_TEMPLATE_MAX_BYTES), MC_EIO, MC_ENOMEM. */
int wrk_template_render(const char *path, const wrk_template_var_t *vars, size_t n, char **out,
                        size_t *len);

/* Renders text[0..tlen) the same way (for tests and built-in pages). */
int wrk_template_render_text(const char *text, size_t tlen, const wrk_template_var_t *vars,
                             size_t n, char **out, size_t *len);

#endif
