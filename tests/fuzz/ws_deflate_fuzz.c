/* Fuzz target for interface/ws_deflate.c. The first byte picks the piece
 * size; the rest is read three ways: as a Sec-WebSocket-Extensions value (an
 * accepted offer's response must itself be an acceptable offer with the same
 * window), as a compressed message inflated in pieces (the same outcome as
 * inflated whole, never more than the maximum), and as a message that must
 * survive compression and inflation unchanged (and shrink to the same
 * payload, when it shrinks). */
#include "interface/ws_deflate.h"
#include "common/error.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ifc_ws_deflater_t *deflater;
static ifc_ws_inflater_t *inflater, *inflater2;

static void negotiate(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    char response[IFC_WS_DEFLATE_RESPONSE_MAX];
    uint8_t bits = 0;
    int rc = ifc_ws_deflate_negotiate(copy, size, response, &bits);
    free(copy);
    if (rc == 0)
        return;
    if (rc != 1 || bits < 8 || bits > 15 || strlen(response) >= IFC_WS_DEFLATE_RESPONSE_MAX ||
        strncmp(response, "permessage-deflate; ", 20) != 0)
        abort();
    char again[IFC_WS_DEFLATE_RESPONSE_MAX];
    uint8_t bits2 = 0;
    if (ifc_ws_deflate_negotiate(response, strlen(response), again, &bits2) != 1 || bits2 != bits ||
        strcmp(again, response) != 0)
        abort();
}

static void inflate_pieces(const uint8_t *data, size_t size, size_t step)
{
    const size_t max = 4096;
    ifc_ws_inflate_begin(inflater, max);
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += step) {
        size_t n = size - off < step ? size - off : step;
        uint8_t *piece = malloc(n);
        memcpy(piece, data + off, n);
        rc = ifc_ws_inflate_feed(inflater, piece, n);
        free(piece);
    }
    const uint8_t *out = NULL, *out2 = NULL;
    size_t len = 0, len2 = 0;
    if (rc == 0)
        rc = ifc_ws_inflate_end(inflater, &out, &len);
    if (rc != 0 && rc != MC_ETOOBIG && rc != MC_EINVAL)
        abort();
    if (rc == 0 && (out == NULL || len > max))
        abort();
    int rc2 = ifc_ws_inflate_message(inflater2, max, data, size, &out2, &len2);
    if (rc2 != rc || (rc == 0 && (len2 != len || (len > 0 && memcmp(out, out2, len) != 0))))
        abort();
}

static void round_trip(const uint8_t *data, size_t size)
{
    size_t cap = ifc_ws_deflate_bound(size);
    uint8_t *c = malloc(cap);
    size_t n = 0;
    if (ifc_ws_deflate(deflater, data, size, c, cap, &n) != 0)
        abort();
    const uint8_t *out;
    size_t len;
    if (ifc_ws_inflate_message(inflater, size, c, n, &out, &len) != 0 || len != size ||
        (size > 0 && memcmp(out, data, size) != 0))
        abort();
    /* Shrunk, it is the same payload, when that payload, the 4 bytes cut off
     * and the byte zlib needs spare fit in the message's length. */
    const uint8_t *s;
    size_t sn;
    int rc = ifc_ws_deflate_shrink(deflater, data, size, &s, &sn);
    if (n + 5 <= size ? rc != 0 || sn != n || memcmp(s, c, sn) != 0 : rc != MC_ETOOBIG)
        abort();
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!deflater && (ifc_ws_deflater_new(&deflater) != 0 || ifc_ws_inflater_new(&inflater) != 0 ||
                      ifc_ws_inflater_new(&inflater2) != 0))
        abort();
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1;
    data++;
    size--;
    negotiate(data, size);
    inflate_pieces(data, size, step);
    round_trip(data, size);
    return 0;
}
