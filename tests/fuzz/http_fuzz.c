/* Fuzz target for interface/http.c: the first byte picks the piece size, the
 * rest is fed as a connection's bytes, answering every request. The seeds
 * include chunked bodies with trailers. */
#include "interface/http.h"
#include "common/error.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1;
    data++;
    size--;
    ifc_http_limits_t limits = {512, 128, 1024}; /* small, so fuzzing reaches them */
    ifc_http_parser_t p;
    ifc_http_parser_init(&p, &limits);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        /* Each piece in its own allocation, so ASan sees over-reads. */
        uint8_t *piece = malloc(n);
        memcpy(piece, data + off, n);
        size_t at = 0;
        int rc = IFC_HTTP_NEED_MORE;
        while (at < n || rc == IFC_HTTP_REQUEST) {
            size_t used;
            rc = ifc_http_feed(&p, piece + at, n - at, &used);
            if (used > n - at)
                abort();
            at += used;
            if (rc == IFC_HTTP_REQUEST) {
                const ifc_http_request_t *q = ifc_http_request(&p);
                if (!q || q->target_len > limits.max_url || q->body_len > limits.max_body ||
                    q->path_len > q->target_len)
                    abort();
                /* Headers come from the head alone, within its limit:
                 * trailers are counted and dropped. */
                size_t head = 0;
                for (size_t i = 0; i < q->nheaders; i++) {
                    head += q->headers[i].name_len + q->headers[i].value_len;
                    for (size_t k = 0; k < q->headers[i].name_len; k++)
                        if (q->headers[i].name[k] >= 'A' && q->headers[i].name[k] <= 'Z')
                            abort();
                }
                if (head > limits.max_head)
                    abort();
                ifc_http_next(&p);
                rc = IFC_HTTP_NEED_MORE;
                continue;
            }
            if (rc < 0) {
                int st = ifc_http_status(&p);
                if (st != 400 && st != 413 && st != 414 && st != 431 && st != 505)
                    abort();
                break;
            }
        }
        free(piece);
        if (rc < 0)
            break;
        off += n;
    }
    ifc_http_parser_clear(&p);
    return 0;
}
