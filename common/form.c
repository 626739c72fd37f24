/*
 * common/form.c: the urlencoded form and query parser of common/form.h,
 * and the percent decoding it shares with the static file server.
 */
#include "common/form.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mc_percent_byte(const char *src, size_t left, unsigned char *out)
{
    if (left < 3 || src[0] != '%')
        return MC_EINVAL;
    int hi = hex_value((unsigned char)src[1]);
    int lo = hex_value((unsigned char)src[2]);
    if (hi < 0 || lo < 0)
        return MC_EINVAL;
    *out = (unsigned char)(hi * 16 + lo);
    return 0;
}

int mc_form_decode(const char *src, size_t len, char *dst, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '+') {
            dst[o++] = ' ';
        } else if (c == '%') {
            if (mc_percent_byte(src + i, len - i, &c) != 0)
                return MC_EINVAL;
            dst[o++] = (char)c;
            i += 2;
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
    *out_len = o;
    return 0;
}

int mc_form_parse(mc_form_t *form, const char *data, size_t len)
{
    memset(form, 0, sizeof(*form));
    if (len > MC_FORM_MAX_BYTES)
        return MC_ETOOBIG;
    /* Decoding never grows, and each field adds at most two NULs to its
     * encoded size; there are at most (len + 1) / 2 non-empty fields. */
    form->buf = malloc(2 * len + 2);
    if (!form->buf)
        return MC_ENOMEM;
    char *out = form->buf;
    size_t pos = 0;
    while (pos < len) {
        const char *start = data + pos;
        const char *amp = memchr(start, '&', len - pos);
        size_t flen = amp ? (size_t)(amp - start) : len - pos;
        pos += flen + (amp ? 1 : 0);
        if (flen == 0)
            continue;
        if (form->nfields == MC_FORM_MAX_FIELDS) {
            mc_form_clear(form);
            return MC_ETOOBIG;
        }
        const char *eq = memchr(start, '=', flen);
        size_t nlen = eq ? (size_t)(eq - start) : flen;
        const char *vstart = eq ? eq + 1 : start + flen;
        size_t vlen = eq ? flen - nlen - 1 : 0;
        mc_form_field_t *f = &form->fields[form->nfields];
        f->name = out;
        if (mc_form_decode(start, nlen, out, &f->name_len)) {
            mc_form_clear(form);
            return MC_EINVAL;
        }
        out += f->name_len + 1;
        f->value = out;
        if (mc_form_decode(vstart, vlen, out, &f->value_len)) {
            mc_form_clear(form);
            return MC_EINVAL;
        }
        out += f->value_len + 1;
        form->nfields++;
    }
    return 0;
}

const char *mc_form_get(const mc_form_t *form, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < form->nfields; i++) {
        const mc_form_field_t *f = &form->fields[i];
        if (f->name_len == nlen && memcmp(f->name, name, nlen) == 0) {
            if (len)
                *len = f->value_len;
            return f->value;
        }
    }
    return NULL;
}

void mc_form_clear(mc_form_t *form)
{
    free(form->buf);
    memset(form, 0, sizeof(*form));
}
