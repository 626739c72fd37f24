/*
 * interface/ws_frame.c: the RFC 6455 frame parser and encoder (see
 * ws_frame.h). The parser is a two-state machine: it gathers a frame header
 * into hdr[], then copies and unmasks the payload into the control buffer or
 * the message being assembled.
 */
#include "interface/ws_frame.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define MSG_MIN_CAP 256

void ifc_ws_parser_init(ifc_ws_parser_t *p, size_t max_message)
{
    memset(p, 0, sizeof(*p));
    p->max_message = max_message;
    p->hdr_need = 2;
    mc_utf8_init(&p->utf8);
}

void ifc_ws_parser_allow_rsv1(ifc_ws_parser_t *p)
{
    p->rsv1_allowed = 1;
}

/* Frees the message that was delivered (or is abandoned). */
static void release_message(ifc_ws_parser_t *p)
{
    free(p->msg);
    p->msg = NULL;
    p->msg_len = p->msg_cap = 0;
}

static void release_control(ifc_ws_parser_t *p)
{
    free(p->ctrl);
    p->ctrl = NULL;
    p->ctrl_delivered = 0;
}

void ifc_ws_parser_clear(ifc_ws_parser_t *p)
{
    release_message(p);
    release_control(p);
}

int ifc_ws_parser_error(const ifc_ws_parser_t *p)
{
    return p->error;
}

int ifc_ws_close_code_valid(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static int fail(ifc_ws_parser_t *p, int code)
{
    p->error = (uint16_t)code;
    ifc_ws_parser_clear(p);
    return MC_EPROTO;
}

static int is_control(int opcode)
{
    return opcode & 0x8;
}

/* Checks the first two header bytes, as soon as they are there. */
static int check_start(ifc_ws_parser_t *p)
{
    uint8_t b0 = p->hdr[0], b1 = p->hdr[1];
    int opcode = b0 & 0x0F;
    int len7 = b1 & 0x7F;
    int rsv1 = (b0 & 0x40) != 0;
    if (b0 & 0x30)
        return fail(p, MC_CLOSE_PROTOCOL_ERROR); /* RSV2-3: no extension defines them */
    if (rsv1 && (!p->rsv1_allowed || (opcode != IFC_WS_OP_TEXT && opcode != IFC_WS_OP_BINARY)))
        return fail(p, MC_CLOSE_PROTOCOL_ERROR); /* RSV1: only a compressed message's start */
    if (!(b1 & 0x80))
        return fail(p, MC_CLOSE_PROTOCOL_ERROR); /* client frames must be masked */
    switch (opcode) {
    case IFC_WS_OP_CONTINUATION:
        if (!p->msg_opcode)
            return fail(p, MC_CLOSE_PROTOCOL_ERROR);
        break;
    case IFC_WS_OP_TEXT:
    case IFC_WS_OP_BINARY:
        if (p->msg_opcode)
            return fail(p, MC_CLOSE_PROTOCOL_ERROR);
        break;
    case IFC_WS_OP_CLOSE:
    case IFC_WS_OP_PING:
    case IFC_WS_OP_PONG:
        if (!(b0 & 0x80) || len7 > IFC_WS_MAX_CONTROL)
            return fail(p, MC_CLOSE_PROTOCOL_ERROR);
        break;
    default:
        return fail(p, MC_CLOSE_PROTOCOL_ERROR);
    }
    p->fin = (b0 & 0x80) != 0;
    p->opcode = (uint8_t)opcode;
    if (opcode == IFC_WS_OP_TEXT || opcode == IFC_WS_OP_BINARY)
        p->msg_compressed = rsv1;
    p->masked = 1;
    p->hdr_need = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4);
    return 0;
}

/* The header is complete: decode the length and check the size limit. */
static int check_header(ifc_ws_parser_t *p)
{
    int len7 = p->hdr[1] & 0x7F;
    uint64_t len = (uint64_t)len7;
    size_t pos = 2;
    if (len7 == 126) {
        len = ((uint64_t)p->hdr[2] << 8) | p->hdr[3];
        if (len < 126)
            return fail(p, MC_CLOSE_PROTOCOL_ERROR);
        pos = 4;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | p->hdr[2 + i];
        if (len >> 63 || len <= 0xFFFF)
            return fail(p, MC_CLOSE_PROTOCOL_ERROR);
        pos = 10;
    }
    memcpy(p->mask, p->hdr + pos, 4);
    if (!is_control(p->opcode)) {
        if (len > p->max_message || p->msg_len > p->max_message - len)
            return fail(p, MC_CLOSE_TOO_BIG);
        if (p->opcode != IFC_WS_OP_CONTINUATION) {
            p->msg_opcode = p->opcode;
            mc_utf8_init(&p->utf8);
        }
    } else if (len > 0 && !(p->ctrl = malloc(IFC_WS_MAX_CONTROL))) {
        return fail(p, MC_CLOSE_INTERNAL_ERROR);
    }
    p->plen = len;
    p->pdone = 0;
    p->in_payload = 1;
    return 0;
}

/* Makes room for need bytes of message. The buffer doubles, so a message
 * sent in many small frames costs amortised linear copying, and it never
 * holds more than twice the bytes received nor more than the maximum. */
static int grow(ifc_ws_parser_t *p, size_t need)
{
    if (need <= p->msg_cap)
        return 0;
    size_t cap = p->msg_cap ? p->msg_cap : MSG_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > p->max_message)
        cap = need > p->max_message ? need : p->max_message;
    uint8_t *m = realloc(p->msg, cap);
    if (!m)
        return MC_ENOMEM;
    p->msg = m;
    p->msg_cap = cap;
    return 0;
}

static void unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4], uint64_t at)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] ^ mask[(at + i) & 3];
}

/* A whole frame has been read: turn it into an event, or not (a non-final
 * fragment). Returns IFC_WS_EVENT, IFC_WS_NEED_MORE or MC_EPROTO. */
static int finish_frame(ifc_ws_parser_t *p, ifc_ws_event_t *ev)
{
    p->in_payload = 0;
    p->hdr_len = 0;
    p->hdr_need = 2;
    if (is_control(p->opcode)) {
        ev->opcode = (ifc_ws_opcode_t)p->opcode;
        ev->data = p->ctrl ? p->ctrl : (const uint8_t *)"";
        p->ctrl_delivered = 1;
        ev->len = (size_t)p->plen;
        ev->close_code = 0;
        ev->compressed = 0;
        if (p->opcode == IFC_WS_OP_CLOSE) {
            ev->close_code = MC_CLOSE_NO_STATUS;
            if (p->plen == 1)
                return fail(p, MC_CLOSE_PROTOCOL_ERROR);
            if (p->plen >= 2) {
                int code = (p->ctrl[0] << 8) | p->ctrl[1];
                if (!ifc_ws_close_code_valid(code))
                    return fail(p, MC_CLOSE_PROTOCOL_ERROR);
                if (mc_utf8_check(p->ctrl + 2, (size_t)p->plen - 2) != 0)
                    return fail(p, MC_CLOSE_INVALID_DATA);
                ev->close_code = code;
                ev->data = p->ctrl + 2;
                ev->len = (size_t)p->plen - 2;
            }
        }
        return IFC_WS_EVENT;
    }
    p->msg_len += (size_t)p->plen;
    if (!p->fin)
        return IFC_WS_NEED_MORE;
    if (p->msg_opcode == IFC_WS_OP_TEXT && !p->msg_compressed && !mc_utf8_complete(&p->utf8))
        return fail(p, MC_CLOSE_INVALID_DATA);
    ev->opcode = (ifc_ws_opcode_t)p->msg_opcode;
    ev->data = p->msg ? p->msg : (const uint8_t *)""; /* an empty message has no buffer */
    ev->len = p->msg_len;
    ev->close_code = 0;
    ev->compressed = p->msg_compressed;
    p->delivered = 1;
    return IFC_WS_EVENT;
}

int ifc_ws_parse(ifc_ws_parser_t *p, const void *data, size_t len, size_t *used, ifc_ws_event_t *ev)
{
    const uint8_t *in = data;
    size_t off = 0;
    int rc;
    *used = 0;
    if (p->error)
        return MC_EPROTO;
    if (p->delivered) {
        p->delivered = 0;
        p->msg_opcode = 0;
        release_message(p);
    }
    if (p->ctrl_delivered)
        release_control(p);
    for (;;) {
        if (!p->in_payload) {
            while (p->hdr_len < p->hdr_need && off < len) {
                p->hdr[p->hdr_len++] = in[off++];
                if (p->hdr_len == 2 && (rc = check_start(p)) != 0) {
                    *used = off;
                    return rc;
                }
            }
            if (p->hdr_len < p->hdr_need) {
                *used = off;
                return IFC_WS_NEED_MORE;
            }
            if ((rc = check_header(p)) != 0) {
                *used = off;
                return rc;
            }
        }
        size_t n = len - off;
        if ((uint64_t)n > p->plen - p->pdone)
            n = (size_t)(p->plen - p->pdone);
        if (n > 0) {
            uint8_t *dst;
            if (is_control(p->opcode)) {
                dst = p->ctrl + p->pdone;
            } else {
                size_t at = p->msg_len + (size_t)p->pdone;
                if (grow(p, at + n) != 0) {
                    *used = off;
                    return fail(p, MC_CLOSE_INTERNAL_ERROR);
                }
                dst = p->msg + at;
            }
            unmask(dst, in + off, n, p->mask, p->pdone);
            if (!is_control(p->opcode) && p->msg_opcode == IFC_WS_OP_TEXT && !p->msg_compressed &&
                mc_utf8_feed(&p->utf8, dst, n) != 0) {
                *used = off + n;
                return fail(p, MC_CLOSE_INVALID_DATA);
            }
            p->pdone += n;
            off += n;
        }
        if (p->pdone < p->plen) {
            *used = off;
            return IFC_WS_NEED_MORE;
        }
        rc = finish_frame(p, ev);
        if (rc != IFC_WS_NEED_MORE) {
            *used = off;
            return rc;
        }
        if (off == len) {
            *used = off;
            return IFC_WS_NEED_MORE;
        }
    }
}

size_t ifc_ws_frame_header(uint8_t out[IFC_WS_MAX_HEADER], ifc_ws_opcode_t opcode, int flags,
                           uint64_t len)
{
    out[0] = (uint8_t)((flags & IFC_WS_FIN ? 0x80 : 0) | (flags & IFC_WS_RSV1 ? 0x40 : 0) |
                       (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

int ifc_ws_frame_encode(ifc_ws_opcode_t opcode, const void *payload, size_t len, uint8_t **out,
                        size_t *out_len)
{
    uint8_t hdr[IFC_WS_MAX_HEADER];
    if (is_control(opcode) && len > IFC_WS_MAX_CONTROL)
        return MC_EINVAL;
    size_t h = ifc_ws_frame_header(hdr, opcode, IFC_WS_FIN, len);
    if (len > SIZE_MAX - h)
        return MC_ETOOBIG;
    uint8_t *buf = malloc(h + len);
    if (!buf)
        return MC_ENOMEM;
    memcpy(buf, hdr, h);
    if (len > 0)
        memcpy(buf + h, payload, len);
    *out = buf;
    *out_len = h + len;
    return 0;
}

int ifc_ws_close_encode(int code, const char *reason, size_t reason_len,
                        uint8_t out[2 + IFC_WS_MAX_CONTROL], size_t *out_len)
{
    if (code == 0) {
        out[0] = 0x80 | IFC_WS_OP_CLOSE;
        out[1] = 0;
        *out_len = 2;
        return 0;
    }
    if (reason_len > IFC_WS_MAX_CLOSE_REASON || code < 0 || code > 0xFFFF)
        return MC_ETOOBIG;
    out[0] = 0x80 | IFC_WS_OP_CLOSE;
    out[1] = (uint8_t)(2 + reason_len);
    out[2] = (uint8_t)(code >> 8);
    out[3] = (uint8_t)code;
    if (reason_len > 0)
        memcpy(out + 4, reason, reason_len);
    *out_len = 4 + reason_len;
    return 0;
}
