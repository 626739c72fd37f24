/*
 * worker/device.c: signed device cookies (worker/device.h).
 */
#include "worker/device.h"
#include "common/error.h"
#include "common/sha256.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The signature of text[0..len), in hex, into mac. */
static void sign(const char *key, const char *text, size_t len, char mac[MC_SHA256_HEX_LEN + 1])
{
    uint8_t d[MC_SHA256_BYTES];
    mc_hmac_sha256(key, strlen(key), text, len, d);
    mc_hex(d, sizeof(d), mac);
}

int wrk_device_make(const char *key, int64_t user_id, char out[WRK_DEVICE_MAX + 1])
{
    char id[WRK_DEVICE_ID_LEN + 1], mac[MC_SHA256_HEX_LEN + 1];
    out[0] = '\0';
    if (wrk_token_new(id))
        return MC_EIO;
    int n = snprintf(out, WRK_DEVICE_MAX + 1, "%" PRId64 ".%s", user_id, id);
    if (n < 0 || n + 1 + MC_SHA256_HEX_LEN > WRK_DEVICE_MAX)
        return MC_EINVAL; /* not reached: an id has at most 20 bytes */
    sign(key, out, (size_t)n, mac);
    snprintf(out + n, WRK_DEVICE_MAX + 1 - (size_t)n, ".%s", mac);
    return 0;
}

int wrk_device_check(const char *key, const char *cookie, size_t len, int64_t *user_id,
                     char id[WRK_DEVICE_ID_LEN + 1])
{
    /* <digits>.<id>.<mac>: the mac and the id have fixed lengths. */
    size_t tail = 1 + WRK_DEVICE_ID_LEN + 1 + MC_SHA256_HEX_LEN;
    if (len <= tail || len > WRK_DEVICE_MAX)
        return MC_EINVAL;
    size_t digits = len - tail;
    int64_t uid = 0;
    for (size_t i = 0; i < digits; i++) {
        if (cookie[i] < '0' || cookie[i] > '9' || uid > (INT64_MAX - 9) / 10)
            return MC_EINVAL;
        uid = uid * 10 + (cookie[i] - '0');
    }
    const char *dev = cookie + digits + 1, *mac = dev + WRK_DEVICE_ID_LEN + 1;
    if (uid <= 0 || cookie[digits] != '.' || dev[WRK_DEVICE_ID_LEN] != '.' ||
        !wrk_token_valid(dev, WRK_DEVICE_ID_LEN))
        return MC_EINVAL;
    char want[MC_SHA256_HEX_LEN + 1];
    sign(key, cookie, (size_t)(mac - 1 - cookie), want);
    if (!wrk_token_equal(mac, MC_SHA256_HEX_LEN, want, MC_SHA256_HEX_LEN))
        return MC_EINVAL;
    *user_id = uid;
    memcpy(id, dev, WRK_DEVICE_ID_LEN);
    id[WRK_DEVICE_ID_LEN] = '\0';
    return 0;
}
