/* CHAT_REDIS_URL comes from the operator's environment: the parser of the
 * shard list must hold for any bytes, and what it accepts must be a ring
 * whose every name lands on a shard with a server or a master to find. */
#include "channel-layer/internal.h"
#include "common/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    mc_log_init("fuzz", MC_LOG_OFF); /* a refused list is logged: not once per input */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *urls = malloc(size + 1);
    if (!urls)
        return 0;
    memcpy(urls, data, size);
    urls[size] = '\0';
    chl__ring_t ring;
    if (chl__ring_init(&ring, urls) == 0) {
        if (ring.nshards < 1 || ring.nshards > CHL__MAX_SHARDS)
            abort();
        for (size_t i = 0; i < ring.nshards; i++) {
            const chl__addr_t *a = &ring.addrs[i];
            int sentinel = a->master[0] != '\0', socket = !sentinel && a->port == 0;
            if (sentinel ? (a->nsentinels < 1 || a->nsentinels > CHL__MAX_SENTINELS)
                : socket ? (a->host[0] != '/' || strlen(a->host) < 2 ||
                            strlen(a->host) > CHL__SOCKET_PATH_MAX)
                         : (!a->host[0] || a->port < 1 || a->port > 65535))
                abort();
            if (a->db < 0 || a->db > 9999)
                abort();
        }
        if (chl__ring_channel(&ring, "ifc.h.1.ab!2") >= ring.nshards ||
            chl__ring_name(&ring, urls, size) >= ring.nshards)
            abort();
    }
    chl__ring_clear(&ring);
    free(urls);
    return 0;
}
