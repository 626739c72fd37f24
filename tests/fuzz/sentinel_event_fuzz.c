/* A sentinel's +switch-master event comes from the network: its parser must
 * hold for any bytes, and what it accepts must name the watched master and
 * an address a connection can be made to. */
#include "channel-layer/sentinel.h"
#include "common/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* On the heap and exactly as long as the input, so that a read past its
     * end is caught. */
    char *payload = malloc(size ? size : 1);
    if (!payload)
        return 0;
    memcpy(payload, data, size);
    chl__server_t to;
    int rc = chl__switch_parse(payload, size, "mc", &to);
    if (rc == 0) {
        size_t n = strnlen(to.host, sizeof(to.host));
        if (n == 0 || n > CHL__HOST_MAX || to.port < 1 || to.port > 65535 || size < 3 ||
            memcmp(payload, "mc ", 3) != 0)
            abort();
    } else if (rc != MC_ENOTFOUND && rc != MC_EPROTO) {
        abort();
    }
    free(payload);
    return 0;
}
