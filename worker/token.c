/*
 * worker/token.c: random tokens and constant-time comparisons
 * (worker/token.h).
 */
#include "worker/token.h"
#include "common/error.h"
#include "common/sha256.h"

#include <errno.h>
#include <sys/random.h>

int wrk_token_new(char out[WRK_TOKEN_HEX_LEN + 1])
{
    uint8_t raw[WRK_TOKEN_BYTES];
    size_t got = 0;
    out[0] = '\0';
    while (got < sizeof(raw)) {
        ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return MC_EIO;
        }
        got += (size_t)r;
    }
    mc_hex(raw, sizeof(raw), out);
    return 0;
}

int wrk_token_valid(const char *a, size_t alen)
{
    if (alen != WRK_TOKEN_HEX_LEN)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (!((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f')))
            return 0;
    return 1;
}

int wrk_token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    unsigned char diff = 0;
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}
