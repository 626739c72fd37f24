/* Fuzz target for interface/handshake.c: a request parsed and checked as an
 * upgrade; base64 decoding and re-encoding round-trips. */
#include "interface/handshake.h"
#include "common/error.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ifc_http_parser_t p;
    size_t used;
    ifc_http_parser_init(&p, NULL);
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    if (ifc_http_feed(&p, copy, size, &used) == IFC_HTTP_REQUEST) {
        char accept[IFC_WS_ACCEPT_LEN + 1];
        const char *allowed = size > 0 && (data[0] & 1) ? "*" : NULL;
        int rc = ifc_handshake_check(ifc_http_request(&p), allowed, 1, "http", accept);
        if (rc != 0 && rc != 400 && rc != 403 && rc != 426)
            abort();
        if (rc == 0 && strlen(accept) != IFC_WS_ACCEPT_LEN)
            abort();
        ifc_http_next(&p);
    }
    ifc_http_parser_clear(&p);

    uint8_t out[256];
    if (size <= 256) {
        int n = ifc_base64_decode(copy, size, out, sizeof(out));
        if (n >= 0) {
            char re[4 * 256 / 3 + 8];
            size_t m = ifc_base64_encode(out, (size_t)n, re);
            /* Canonical inputs come back unchanged; others (non-zero pad
             * bits) at least keep their length. */
            if (m != size)
                abort();
        }
    }
    free(copy);
    return 0;
}
