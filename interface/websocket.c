/*
 * interface/websocket.c: WebSocket sessions (see websocket.h): the 101
 * answer, frames read and written, pings, slow readers and the close
 * handshake.
 */
#include "interface/websocket.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/wire.h"
#include "interface/respond.h"

/* What a chat socket hears when it passes its budget. */
static const char rate_limited[] = "{\"error\":\"" MC_ERROR_RATE_LIMITED "\"}";

/* ---- Frames out ------------------------------------------------------------ */

ifc_buf_t *ifc_websocket_frame(ifc_ws_opcode_t op, const void *data, size_t len)
{
    uint8_t hdr[IFC_WS_MAX_HEADER];
    size_t hl = ifc_ws_frame_header(hdr, op, 1, len);
    ifc_buf_t *b = ifc_buf_new(hl + len);
    if (b) {
        memcpy(b->data, hdr, hl);
        if (len)
            memcpy(b->data + hl, data, len);
    }
    return b;
}

/* The peer does not read as fast as it is sent to: what is queued stays
 * queued (bounded by the send buffer), a close frame 1008 goes after it. */
static void slow_close(ifc_peer_t *p)
{
    p->peers->m.closed_slow++;
    mc_info("conn %llu: slow reader closed with 1008 (%zu bytes queued)",
            (unsigned long long)p->conn.id, p->conn.queued);
    ifc_websocket_close(p, MC_CLOSE_POLICY_VIOLATION);
}

void ifc_websocket_send_frame(ifc_peer_t *p, ifc_buf_t *frame)
{
    p->peers->m.frames_out++;
    if (ifc_conn_write_within(&p->conn, frame, (size_t)p->peers->cfg->send_buffer) == MC_EFULL)
        slow_close(p);
}

void ifc_websocket_send(ifc_peer_t *p, ifc_ws_opcode_t op, const void *data, size_t len)
{
    ifc_buf_t *b = ifc_websocket_frame(op, data, len);
    if (!b) {
        ifc_conn_close(&p->conn);
        return;
    }
    ifc_websocket_send_frame(p, b);
    ifc_buf_unref(b);
}

void ifc_websocket_close(ifc_peer_t *p, int code)
{
    ifc_websocket_close_reason(p, code, NULL);
}

void ifc_websocket_close_reason(ifc_peer_t *p, int code, const char *reason)
{
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > IFC_WS_MAX_CLOSE_REASON || (rl && mc_utf8_check(reason, rl) != 0))
        rl = 0;
    if (p->conn.closing)
        return;
    if (!p->close_sent) {
        uint8_t f[2 + IFC_WS_MAX_CONTROL];
        size_t fl;
        p->close_sent = 1;
        p->close_code = code;
        if (ifc_ws_close_encode(code == MC_CLOSE_NO_STATUS ? 0 : code, reason, rl, f, &fl) == 0 &&
            ifc_conn_write_copy(&p->conn, f, fl) != MC_ENOMEM)
            p->peers->m.frames_out++;
    }
    ifc_conn_finish(&p->conn);
}

/* ---- The session's start ---------------------------------------------------- */

/* A socket is pinged after an interval without a frame from its peer, and
 * closed when the next interval brings none either. */
static void on_ping_timer(ifc_conn_t *c)
{
    ifc_peer_t *p = (ifc_peer_t *)c;
    /* Input held back while the workers owe answers is looked at again,
     * so that answers lost for good hold nothing forever (bridge.h). */
    ifc_conn_resume(c);
    if (c->closing || c->finishing)
        return;
    uint32_t interval = (uint32_t)p->peers->cfg->ping_interval_ms;
    uint32_t idle = (uint32_t)uv_now(c->hub->loop) - p->last_in;
    if (p->ping_due) {
        p->peers->m.closed_timeout++;
        ifc_websocket_close(p, MC_CLOSE_GOING_AWAY);
    } else if (idle < interval) {
        ifc_conn_timer_start(c, (long)(interval - idle), on_ping_timer);
    } else {
        p->ping_due = 1;
        ifc_websocket_send(p, IFC_WS_OP_PING, "", 0);
        ifc_conn_timer_start(c, (long)interval, on_ping_timer);
    }
}

void ifc_websocket_upgrade(ifc_peer_t *p, ifc_peer_kind_t kind)
{
    const ifc_server_config_t *cfg = p->peers->cfg;
    char head[512], accept[IFC_WS_ACCEPT_LEN + 1];
    size_t hl, kl;
    /* The answer to the key is made again here rather than kept from the
     * check: every socket would carry it for its whole life. */
    const char *key = ifc_http_header(ifc_http_request(p->http), "sec-websocket-key", &kl);
    int bad = !key || ifc_ws_accept_key(key, kl, accept) != 0;
    ifc_http_header_t h[] = {{"upgrade", 7, "websocket", 9},
                             {"connection", 10, "Upgrade", 7},
                             {"sec-websocket-accept", 20, accept, IFC_WS_ACCEPT_LEN}};
    ifc_conn_timer_stop(&p->conn);
    ifc_peer_wait(p, IFC_WAIT_NONE);
    p->ws = bad ? NULL : malloc(sizeof(*p->ws));
    if (!p->ws || ifc_http_response_head(head, sizeof(head), 101, h, 3, -1, 1, &hl) != 0) {
        ifc_conn_close(&p->conn);
        return;
    }
    ifc_ws_parser_init(p->ws,
                       (size_t)(kind == IFC_PEER_CHAT ? cfg->max_message : cfg->echo_max_message));
    ifc_conn_write_copy(&p->conn, head, hl);
    ifc_respond_clear(p);
    p->kind = kind;
    p->conn.corks = 1;
    p->peers->m.upgrades_accepted++;
    p->last_in = (uint32_t)uv_now(p->conn.hub->loop);
    ifc_conn_timer_start(&p->conn, cfg->ping_interval_ms, on_ping_timer);
    ifc_conn_resume(&p->conn);
}

void ifc_websocket_refuse(ifc_peer_t *p, int status)
{
    p->peers->m.upgrades_rejected++;
    p->keep_alive = 0;
    if (status == 426) {
        ifc_http_header_t h[] = {{"sec-websocket-version", 21, "13", 2}};
        ifc_respond(p, 426, h, 1, "Upgrade Required\n", 17);
    } else {
        ifc_respond_simple(p, status);
    }
}

/* ---- Frames in -------------------------------------------------------------- */

/* The budget of a chat socket (see websocket.h): a frame costs a token and
 * its length in bytes. Returns 1 when the frame may be handled. */
static int within_budget(ifc_peer_t *p, size_t len)
{
    const ifc_server_config_t *cfg = p->peers->cfg;
    uint32_t now = (uint32_t)uv_now(p->conn.hub->loop);
    uint32_t byte_rate = (uint32_t)cfg->socket_kib_rate * 1024;
    /* Four seconds of the rate, and never less than one largest message. */
    uint64_t byte_burst = (uint64_t)byte_rate * 4;
    if (byte_burst < (uint64_t)cfg->max_message)
        byte_burst = (uint64_t)cfg->max_message;
    if (byte_burst > UINT32_MAX)
        byte_burst = UINT32_MAX;
    if (ifc_bucket_take(&p->frames, now, (uint32_t)cfg->socket_rate, (uint32_t)cfg->socket_burst,
                        1) &&
        ifc_bucket_take(&p->bytes, now, byte_rate, (uint32_t)byte_burst,
                        len > UINT32_MAX ? UINT32_MAX : (uint32_t)len)) {
        /* A second without a refusal ends the run. */
        if (p->limited && now - p->limited_at >= 1000) {
            p->limited = 0;
            p->refused = 0;
        }
        return 1;
    }
    p->peers->m.rate_limited++;
    p->limited_at = now;
    if (!p->limited) {
        /* Said once; what follows in the run is dropped unanswered. */
        p->limited = 1;
        mc_info("conn %llu: over its budget of frames; refusing them",
                (unsigned long long)p->conn.id);
        ifc_websocket_send(p, IFC_WS_OP_TEXT, rate_limited, sizeof(rate_limited) - 1);
    } else if (cfg->socket_close_after > 0 && ++p->refused >= cfg->socket_close_after) {
        p->peers->m.closed_rate++;
        mc_info("conn %llu: still over its budget after %d more refused frames; closed with "
                "1008",
                (unsigned long long)p->conn.id, (int)p->refused);
        ifc_websocket_close(p, MC_CLOSE_POLICY_VIOLATION);
    }
    return 0;
}

int ifc_websocket_read(ifc_peer_t *p, const uint8_t *data, size_t len, size_t *used,
                       const uint8_t **text, size_t *text_len)
{
    size_t off = 0;
    int got = 0;
    while (!got && !p->conn.closing && !p->conn.finishing) {
        size_t n;
        ifc_ws_event_t ev;
        int rc = ifc_ws_parse(p->ws, data + off, len - off, &n, &ev);
        off += n;
        if (rc == IFC_WS_NEED_MORE)
            break;
        if (rc < 0) {
            ifc_websocket_close(p, ifc_ws_parser_error(p->ws));
            break;
        }
        p->peers->m.frames_in++;
        p->ping_due = 0;
        p->last_in = (uint32_t)uv_now(p->conn.hub->loop);
        /* A close is always heard; everything else of a chat socket costs. */
        if (p->kind == IFC_PEER_CHAT && ev.opcode != IFC_WS_OP_CLOSE && !within_budget(p, ev.len))
            continue;
        switch (ev.opcode) {
        case IFC_WS_OP_PING:
            ifc_websocket_send(p, IFC_WS_OP_PONG, ev.data, ev.len);
            break;
        case IFC_WS_OP_PONG:
            break;
        case IFC_WS_OP_CLOSE:
            /* The close handshake echoes the peer's code. */
            ifc_websocket_close(p, ev.close_code);
            break;
        case IFC_WS_OP_BINARY:
            if (p->kind == IFC_PEER_CHAT)
                ifc_websocket_close(p, MC_CLOSE_UNSUPPORTED_DATA);
            else
                ifc_websocket_send(p, IFC_WS_OP_BINARY, ev.data, ev.len);
            break;
        case IFC_WS_OP_TEXT:
            if (p->kind == IFC_PEER_ECHO) {
                ifc_websocket_send(p, IFC_WS_OP_TEXT, ev.data, ev.len);
            } else {
                *text = ev.data;
                *text_len = ev.len;
                got = 1;
            }
            break;
        default:
            break;
        }
    }
    *used = off;
    return got;
}

void ifc_websocket_clear(ifc_peer_t *p)
{
    if (p->ws) {
        ifc_ws_parser_clear(p->ws);
        free(p->ws);
        p->ws = NULL;
    }
}
