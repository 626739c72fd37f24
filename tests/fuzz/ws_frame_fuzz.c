/* Fuzz target for interface/ws_frame.c: the first byte picks the piece size
 * (and, when odd, a socket that negotiated permessage-deflate), the rest is a
 * client's byte stream. Events must respect the limits, and uncompressed text
 * messages must be valid UTF-8. */
#include "interface/ws_frame.h"
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
    int rsv1 = data[0] & 1;
    data++;
    size--;
    const size_t max = 4096;
    ifc_ws_parser_t p;
    ifc_ws_parser_init(&p, max);
    if (rsv1)
        ifc_ws_parser_allow_rsv1(&p);
    size_t off = 0;
    int stop = 0;
    while (off < size && !stop) {
        size_t n = size - off < step ? size - off : step;
        uint8_t *piece = malloc(n);
        memcpy(piece, data + off, n);
        size_t at = 0;
        for (;;) {
            size_t used;
            ifc_ws_event_t ev;
            int rc = ifc_ws_parse(&p, piece + at, n - at, &used, &ev);
            if (used > n - at)
                abort();
            at += used;
            if (rc == IFC_WS_EVENT) {
                if (ev.opcode == IFC_WS_OP_TEXT && !ev.compressed &&
                    mc_utf8_check(ev.data, ev.len) != 0)
                    abort();
                if (ev.compressed &&
                    (!rsv1 || (ev.opcode != IFC_WS_OP_TEXT && ev.opcode != IFC_WS_OP_BINARY)))
                    abort();
                if ((ev.opcode == IFC_WS_OP_TEXT || ev.opcode == IFC_WS_OP_BINARY) && ev.len > max)
                    abort();
                if ((ev.opcode & 0x8) && ev.len > IFC_WS_MAX_CONTROL)
                    abort();
                if (ev.opcode == IFC_WS_OP_CLOSE && ev.close_code != 1005 &&
                    !ifc_ws_close_code_valid(ev.close_code))
                    abort();
                continue;
            }
            if (rc == IFC_WS_NEED_MORE) {
                if (at != n)
                    abort();
                break;
            }
            int code = ifc_ws_parser_error(&p);
            if (code != 1002 && code != 1007 && code != 1009)
                abort();
            stop = 1;
            break;
        }
        free(piece);
        off += n;
    }
    ifc_ws_parser_clear(&p);

    /* The encoder's output parses back once masked: not needed for the
     * server, but the header must have a valid shortest form. */
    uint8_t h[IFC_WS_MAX_HEADER];
    size_t hl = ifc_ws_frame_header(h, IFC_WS_OP_BINARY, IFC_WS_FIN, size);
    if (hl != (size < 126 ? 2u : size <= 0xFFFF ? 4u : 10u))
        abort();
    return 0;
}
