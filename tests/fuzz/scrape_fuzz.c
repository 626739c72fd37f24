/* Fuzz target of worker/scrape.c's request parser: any bytes give "more"
 * or a status it knows, and a prefix of a request that was answered is
 * never taken for more than it was. */
#include "worker/scrape.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int status = wrk_scrape_request((const char *)data, size);
    if (status != 0 && status != 200 && status != 400 && status != 404 && status != 405 &&
        status != 431)
        __builtin_trap();
    if (status == 0 && size >= WRK_SCRAPE_HEAD_MAX)
        __builtin_trap(); /* a head past the limit must end the wait */
    return 0;
}
