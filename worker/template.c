/*
 * worker/template.c: renders the HTML pages of worker/template.h: a file's
 * {{name}} holes filled with HTML-escaped values.
 */
#include "worker/template.h"
#include "common/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static int put(buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return MC_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int put_escaped(buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#x27;";
            break;
        }
        int rc = rep ? put(b, rep, strlen(rep)) : put(b, s, 1);
        if (rc)
            return rc;
    }
    return 0;
}

int wrk_template_render_text(const char *text, size_t tlen, const wrk_template_var_t *vars,
                             size_t n, char **out, size_t *len)
{
    buf_t b = {0};
    size_t i = 0;
    int rc = put(&b, "", 0);
    while (rc == 0 && i < tlen) {
        const char *open = tlen - i >= 2 ? memmem(text + i, tlen - i, "{{", 2) : NULL;
        if (!open) {
            rc = put(&b, text + i, tlen - i);
            break;
        }
        size_t at = (size_t)(open - text);
        const char *close = memmem(open + 2, tlen - at - 2, "}}", 2);
        if (!close) {
            rc = put(&b, text + i, tlen - i);
            break;
        }
        rc = put(&b, text + i, at - i);
        const char *name = open + 2;
        size_t nlen = (size_t)(close - name);
        for (size_t k = 0; rc == 0 && k < n; k++) {
            if (strlen(vars[k].name) == nlen && memcmp(vars[k].name, name, nlen) == 0) {
                rc = put_escaped(&b, vars[k].value);
                break;
            }
        }
        i = (size_t)(close - text) + 2;
    }
    if (rc) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int wrk_template_render(const char *path, const wrk_template_var_t *vars, size_t n, char **out,
                        size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? MC_ENOTFOUND : MC_EIO;
    char *text = malloc(WRK_TEMPLATE_MAX_BYTES + 1);
    if (!text) {
        fclose(f);
        return MC_ENOMEM;
    }
    size_t got = fread(text, 1, WRK_TEMPLATE_MAX_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc;
    if (bad)
        rc = MC_EIO;
    else if (got > WRK_TEMPLATE_MAX_BYTES)
        rc = MC_ETOOBIG;
    else
        rc = wrk_template_render_text(text, got, vars, n, out, len);
    free(text);
    return rc;
}
