/* Fuzz target for common/utf8.c: the incremental validator, fed in two
 * pieces split where the first byte says, must agree with a plain decoder. */
#include "common/utf8.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A reference written differently: decode each code point, then judge it. */
static int reference_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i], cp;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cut = data[0];
    data++;
    size--;
    if (cut > size)
        cut = size;
    uint8_t *a = malloc(cut ? cut : 1), *b = malloc(size - cut ? size - cut : 1);
    memcpy(a, data, cut);
    memcpy(b, data + cut, size - cut);
    mc_utf8_t v;
    mc_utf8_init(&v);
    int ok = mc_utf8_feed(&v, a, cut) == 0 && mc_utf8_feed(&v, b, size - cut) == 0 &&
             mc_utf8_complete(&v);
    free(a);
    free(b);
    if (ok != reference_valid(data, size))
        abort();
    if (ok != (mc_utf8_check(data, size) == 0))
        abort();
    return 0;
}
