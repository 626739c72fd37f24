/*
 * common/utf8.c: the incremental UTF-8 validator (see utf8.h).
 */
#include "common/utf8.h"

#include "common/error.h"

void mc_utf8_init(mc_utf8_t *v)
{
    v->need = 0;
    v->lo = 0x80;
    v->hi = 0xBF;
}

int mc_utf8_feed(mc_utf8_t *v, const void *data, size_t len)
{
    const uint8_t *p = data;
    const uint8_t *end = p + len;
    while (p < end) {
        uint8_t c = *p++;
        if (v->need > 0) {
            if (c < v->lo || c > v->hi)
                return MC_EINVAL;
            v->need--;
            v->lo = 0x80;
            v->hi = 0xBF;
            continue;
        }
        if (c < 0x80)
            continue;
        if (c >= 0xC2 && c <= 0xDF) {
            v->need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            v->need = 2;
            if (c == 0xE0)
                v->lo = 0xA0; /* overlong below U+0800 */
            else if (c == 0xED)
                v->hi = 0x9F; /* surrogates U+D800..U+DFFF */
        } else if (c >= 0xF0 && c <= 0xF4) {
            v->need = 3;
            if (c == 0xF0)
                v->lo = 0x90; /* overlong below U+10000 */
            else if (c == 0xF4)
                v->hi = 0x8F; /* above U+10FFFF */
        } else {
            /* 0x80..0xC1 (continuation or overlong lead), 0xF5..0xFF. */
            return MC_EINVAL;
        }
    }
    return 0;
}

int mc_utf8_complete(const mc_utf8_t *v)
{
    return v->need == 0;
}

int mc_utf8_check(const void *data, size_t len)
{
    mc_utf8_t v;
    mc_utf8_init(&v);
    if (mc_utf8_feed(&v, data, len) != 0 || !mc_utf8_complete(&v))
        return MC_EINVAL;
    return 0;
}
