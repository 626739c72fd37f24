/*
 * common/json_out.c: the JSON writer of common/json_out.h.
 */
#include "common/json_out.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

const unsigned char mc_json_plain[256] = {
    [0x20] = 1,
    [0x21] = 1,
    [0x23 ... 0x5B] = 1,
    [0x5D ... 0xFF] = 1,
};

/* The letter of a byte's two-byte escape (\" \\ \b \f \n \r \t), as cJSON
 * escapes; any other byte that is not plain takes six (\u00xx). */
static const char short_escape[256] = {
    ['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
    ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't',
};

/* The length of the longest prefix of s[0..n) that needs no escape. */
static size_t plain_run(const char *s, size_t n)
{
    size_t i = 0;
    for (uint64_t x; n - i >= 8; i += 8) {
        memcpy(&x, s + i, 8);
        if (!mc_json_word_plain(x))
            break;
    }
    while (i < n && mc_json_plain[(unsigned char)s[i]])
        i++;
    return i;
}

#define ROOM_SLACK 8 /* the most room asked for beyond what is then written */

int mc_json_reserve(mc_json_out_t *o, size_t n)
{
    if (o->rc)
        return o->rc;
    if (n <= o->cap - o->len)
        return 0;
    /* Past the limit (its byte more is the NUL that ends the text), with
     * the slack of an escape's room asked for before it is known to be
     * short; mc_json_finish holds the text to the limit itself. */
    size_t most = o->limit + 1 + ROOM_SLACK;
    if (o->limit && (n > most || o->len > most - n))
        return o->rc = MC_ETOOBIG;
    if (n > SIZE_MAX / 2 - o->len)
        return o->rc = MC_ENOMEM;
    size_t cap = o->cap ? o->cap : 256;
    while (cap - o->len < n)
        cap *= 2;
    char *buf = realloc(o->buf, cap);
    if (!buf)
        return o->rc = MC_ENOMEM;
    o->buf = buf;
    o->cap = cap;
    return 0;
}

void mc_json_put(mc_json_out_t *o, const char *s, size_t n)
{
    if (mc_json_reserve(o, n) == 0) {
        memcpy(o->buf + o->len, s, n);
        o->len += n;
    }
}

void mc_json_put_string(mc_json_out_t *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Room for the plain case, quotes and all; each escape makes room for
     * itself and the rest, so plain bytes are copied without a check. */
    if (n > SIZE_MAX - 2 || mc_json_reserve(o, n + 2))
        return;
    char *d = o->buf + o->len;
    const char *p = s, *end = s + n;
    *d++ = '"';
    for (;;) {
        uint64_t x;
        if (end - p >= 8 && (memcpy(&x, p, 8), mc_json_word_plain(x))) {
            memcpy(d, &x, 8);
            d += 8;
            p += 8;
            continue;
        }
        while (p < end && mc_json_plain[(unsigned char)*p])
            *d++ = *p++;
        if (p == end)
            break;
        unsigned char c = (unsigned char)*p++;
        o->len = (size_t)(d - o->buf);
        if (mc_json_reserve(o, 6 + (size_t)(end - p) + 1))
            return;
        d = o->buf + o->len;
        *d++ = '\\';
        if (short_escape[c]) {
            *d++ = short_escape[c];
        } else {
            d[0] = 'u';
            d[1] = '0';
            d[2] = '0';
            d[3] = hex[c >> 4];
            d[4] = hex[c & 15];
            d += 5;
        }
    }
    *d++ = '"';
    o->len = (size_t)(d - o->buf);
}

size_t mc_json_string_len(const char *s, size_t n)
{
    size_t len = 2;
    for (size_t i = 0;;) {
        size_t run = plain_run(s + i, n - i);
        len += run;
        i += run;
        if (i == n)
            return len;
        unsigned char c = (unsigned char)s[i++];
        len += short_escape[c] ? 2 : 6;
    }
}

size_t mc_json_int_text(char buf[MC_JSON_INT_MAX], int64_t v)
{
    char digits[20];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t k = 0, n = 0;
    do {
        digits[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[n++] = '-';
    while (k)
        buf[n++] = digits[--k];
    buf[n] = '\0';
    return n;
}

void mc_json_put_int(mc_json_out_t *o, int64_t v)
{
    char num[MC_JSON_INT_MAX];
    mc_json_put(o, num, mc_json_int_text(num, v));
}

int mc_json_finish(mc_json_out_t *o, char **out, size_t *len)
{
    *out = NULL;
    if (o->rc == 0 && o->limit && o->len > o->limit)
        o->rc = MC_ETOOBIG;
    if (mc_json_reserve(o, 1) == 0)
        o->buf[o->len] = '\0';
    if (o->rc) {
        free(o->buf);
        o->buf = NULL;
        return o->rc;
    }
    *out = o->buf;
    *len = o->len;
    o->buf = NULL;
    return 0;
}
