/*
 * common/cookie.c: the Cookie header parser of common/cookie.h; it
 * allocates nothing and answers with (pointer, length) pairs.
 */
#include "common/cookie.h"
#include "common/error.h"

#include <string.h>

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims spaces and tabs at both ends of [*p, *p + *len). */
static void trim(const char **p, size_t *len)
{
    while (*len && is_space(**p)) {
        (*p)++;
        (*len)--;
    }
    while (*len && is_space((*p)[*len - 1]))
        (*len)--;
}

int mc_cookie_parse(const char *hdr, size_t len, mc_cookie_t *out, size_t cap, size_t *n)
{
    *n = 0;
    if (len > MC_COOKIE_MAX_BYTES)
        return MC_ETOOBIG;
    if (cap > MC_COOKIE_MAX_COUNT)
        cap = MC_COOKIE_MAX_COUNT;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)hdr[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return MC_EINVAL;
    }
    size_t pos = 0;
    while (pos < len) {
        const char *start = hdr + pos;
        const char *semi = memchr(start, ';', len - pos);
        size_t plen = semi ? (size_t)(semi - start) : len - pos;
        pos += plen + (semi ? 1 : 0);
        const char *eq = memchr(start, '=', plen);
        if (!eq)
            continue;
        const char *name = start;
        size_t name_len = (size_t)(eq - start);
        const char *value = eq + 1;
        size_t value_len = plen - name_len - 1;
        trim(&name, &name_len);
        trim(&value, &value_len);
        if (name_len == 0)
            continue;
        if (value_len >= 2 && value[0] == '"' && value[value_len - 1] == '"') {
            value++;
            value_len -= 2;
        }
        if (*n == cap)
            return MC_ETOOBIG;
        out[*n] = (mc_cookie_t){name, name_len, value, value_len};
        (*n)++;
    }
    return 0;
}

int mc_cookie_find(const char *hdr, size_t len, const char *name, const char **value,
                   size_t *value_len)
{
    mc_cookie_t cookies[MC_COOKIE_MAX_COUNT];
    size_t n;
    int rc = mc_cookie_parse(hdr, len, cookies, MC_COOKIE_MAX_COUNT, &n);
    if (rc)
        return rc;
    size_t nlen = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (cookies[i].name_len == nlen && memcmp(cookies[i].name, name, nlen) == 0) {
            *value = cookies[i].value;
            *value_len = cookies[i].value_len;
            return 0;
        }
    }
    return MC_ENOTFOUND;
}
