/* channel-layer/resp.c: commands in Redis's protocol and the decimal
 * numbers in them, written by hand (see internal.h): hiredis formats each
 * argument with a printf of its own, which cost the worker more than the
 * rest of its channel layer. */
#include "channel-layer/internal.h"

#include <string.h>

size_t chl__digits(char *out, uint64_t v)
{
    if (v < 10) { /* the usual count, and a short argument's length */
        out[0] = (char)('0' + v);
        return 1;
    }
    if (v < 100) {
        out[0] = (char)('0' + v / 10);
        out[1] = (char)('0' + v % 10);
        return 2;
    }
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

void chl__decimal(char buf[24], long v)
{
    size_t n = 0;
    if (v < 0) {
        buf[n++] = '-';
        n += chl__digits(buf + n, (uint64_t)0 - (uint64_t)v);
    } else {
        n += chl__digits(buf + n, (uint64_t)v);
    }
    buf[n] = '\0';
}

/* "<c><n>\r\n": a count or a length. */
static size_t head(char *out, char c, uint64_t n)
{
    out[0] = c;
    size_t k = 1 + chl__digits(out + 1, n);
    out[k] = '\r';
    out[k + 1] = '\n';
    return k + 2;
}

static size_t head_size(uint64_t n)
{
    size_t digits = 1;
    for (; n >= 10; n /= 10)
        digits++;
    return 3 + digits;
}

size_t chl__resp_size(int argc, const size_t *lens)
{
    size_t n = head_size((uint64_t)argc);
    for (int i = 0; i < argc; i++)
        n += head_size(lens[i]) + lens[i] + 2;
    return n;
}

size_t chl__resp_write(char *out, int argc, const char *const *argv, const size_t *lens)
{
    size_t o = head(out, '*', (uint64_t)argc);
    for (int i = 0; i < argc; i++) {
        o += head(out + o, '$', lens[i]);
        if (lens[i])
            memcpy(out + o, argv[i], lens[i]);
        o += lens[i];
        out[o++] = '\r';
        out[o++] = '\n';
    }
    return o;
}
