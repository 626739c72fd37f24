/* Fuzz target of worker/device.c: any bytes are checked or refused cleanly,
 * and what is accepted is exactly what a cookie signed with the key says. */
#include "common/error.h"
#include "worker/device.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char key[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const char *cookie = (const char *)data;
    int64_t uid = 0;
    char id[WRK_DEVICE_ID_LEN + 1];
    if (wrk_device_check(key, cookie, size, &uid, id) == 0) {
        /* Only a signed cookie passes: its text starts with the user id. */
        char head[32];
        int n = snprintf(head, sizeof(head), "%lld.", (long long)uid);
        if (uid <= 0 || strlen(id) != WRK_DEVICE_ID_LEN || n <= 0 || (size_t)n > size)
            __builtin_trap();
    }
    return 0;
}
