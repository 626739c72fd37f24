/* Fuzz target of common/cookie.c: any bytes parse or fail cleanly, and every
 * name and value found lies inside the input. */
#include "common/cookie.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *hdr = (const char *)data;
    mc_cookie_t cookies[MC_COOKIE_MAX_COUNT];
    size_t n;
    if (mc_cookie_parse(hdr, size, cookies, MC_COOKIE_MAX_COUNT, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (cookies[i].name < hdr || cookies[i].name + cookies[i].name_len > hdr + size ||
                cookies[i].value < hdr || cookies[i].value + cookies[i].value_len > hdr + size ||
                cookies[i].name_len == 0)
                __builtin_trap();
        }
    }
    const char *v;
    size_t vlen;
    (void)mc_cookie_find(hdr, size, "sessionid", &v, &vlen);
    return 0;
}
