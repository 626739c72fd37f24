/*
 * interface/websocket.c: WebSocket sessions (see websocket.h): the 101
 * answer with permessage-deflate negotiated, frames read (and inflated) and
 * written (and compressed), pings, slow readers and the close handshake.
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

/* The largest message the socket takes, inflated or not. */
static size_t max_message(const ifc_peer_t *p)
{
    const ifc_server_config_t *cfg = p->peers->cfg;
    return (size_t)(p->kind == IFC_PEER_CHAT ? cfg->max_message : cfg->echo_max_message);
}

/* ---- Frames out ------------------------------------------------------------ */

/* A whole frame with flags (IFC_WS_FIN, IFC_WS_RSV1) in a new shared buffer. */
static ifc_buf_t *frame_with(ifc_ws_opcode_t op, int flags, const void *data, size_t len)
{
    uint8_t hdr[IFC_WS_MAX_HEADER];
    size_t hl = ifc_ws_frame_header(hdr, op, flags, len);
    ifc_buf_t *b = ifc_buf_new(hl + len);
    if (b) {
        memcpy(b->data, hdr, hl);
        if (len)
            memcpy(b->data + hl, data, len);
    }
    return b;
}

ifc_buf_t *ifc_websocket_frame(ifc_ws_opcode_t op, const void *data, size_t len)
{
    return frame_with(op, IFC_WS_FIN, data, len);
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

void ifc_websocket_message_init(ifc_websocket_message_t *m, ifc_ws_opcode_t op, const void *data,
                                size_t len)
{
    memset(m, 0, sizeof(*m));
    m->op = op;
    m->data = data;
    m->len = len;
}

void ifc_websocket_message_clear(ifc_websocket_message_t *m)
{
    ifc_buf_unref(m->plain);
    ifc_buf_unref(m->deflated);
    m->plain = m->deflated = NULL;
}

/* m's compressed frame, or NULL when it is too short or does not shrink. */
static ifc_buf_t *deflated_frame(ifc_peers_t *peers, const ifc_websocket_message_t *m)
{
    const uint8_t *z;
    size_t zl;
    if (m->len < IFC_WEBSOCKET_DEFLATE_MIN ||
        ifc_ws_deflate_shrink(peers->deflater, m->data, m->len, &z, &zl) != 0)
        return NULL;
    return frame_with(m->op, IFC_WS_FIN | IFC_WS_RSV1, z, zl);
}

void ifc_websocket_send_message(ifc_peer_t *p, ifc_websocket_message_t *m)
{
    ifc_buf_t *f = NULL;
    if (p->deflate && ifc_ws_deflate_fits(p->deflate, m->len)) {
        if (!m->deflate_tried) {
            m->deflate_tried = 1;
            m->deflated = deflated_frame(p->peers, m);
        }
        f = m->deflated;
    }
    if (f) {
        p->peers->m.frames_deflated++;
    } else {
        if (!m->plain)
            m->plain = ifc_websocket_frame(m->op, m->data, m->len);
        f = m->plain;
    }
    if (!f) {
        ifc_conn_close(&p->conn);
        return;
    }
    ifc_websocket_send_frame(p, f);
}

void ifc_websocket_send(ifc_peer_t *p, ifc_ws_opcode_t op, const void *data, size_t len)
{
    ifc_websocket_message_t m;
    ifc_websocket_message_init(&m, op, data, len);
    if (op == IFC_WS_OP_TEXT || op == IFC_WS_OP_BINARY) {
        ifc_websocket_send_message(p, &m);
    } else if ((m.plain = ifc_websocket_frame(op, data, len)) != NULL) {
        ifc_websocket_send_frame(p, m.plain); /* control frames go plain */
    } else {
        ifc_conn_close(&p->conn);
    }
    ifc_websocket_message_clear(&m);
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

static void start_budget(ifc_peer_t *p);

void ifc_websocket_upgrade(ifc_peer_t *p, ifc_peer_kind_t kind)
{
    const ifc_server_config_t *cfg = p->peers->cfg;
    char head[512], deflate[IFC_WS_DEFLATE_RESPONSE_MAX], accept[IFC_WS_ACCEPT_LEN + 1];
    size_t hl, nh = 3, kl;
    uint8_t bits = 0;
    ifc_http_header_t h[] = {{"upgrade", 7, "websocket", 9},
                             {"connection", 10, "Upgrade", 7},
                             {"sec-websocket-accept", 20, accept, IFC_WS_ACCEPT_LEN},
                             {"sec-websocket-extensions", 24, deflate, 0}};
    /* The request is still there: it is released below. The answer to its
     * key is made again here rather than kept from the check: every socket
     * would carry it for its whole life. */
    const ifc_http_request_t *req = p->http ? ifc_http_request(p->http) : NULL;
    const char *key = req ? ifc_http_header(req, "sec-websocket-key", &kl) : NULL;
    int bad = !key || ifc_ws_accept_key(key, kl, accept) != 0;
    if (p->peers->deflater && req && ifc_ws_deflate_negotiate_request(req, deflate, &bits) == 1)
        h[nh++].value_len = strlen(deflate);
    ifc_conn_timer_stop(&p->conn);
    ifc_peer_wait(p, IFC_WAIT_NONE);
    p->ws = bad ? NULL : malloc(sizeof(*p->ws));
    if (!p->ws || ifc_http_response_head(head, sizeof(head), 101, h, nh, -1, 1, &hl) != 0) {
        free(p->ws); /* not a parser yet */
        p->ws = NULL;
        ifc_conn_close(&p->conn);
        return;
    }
    p->kind = kind;
    if (kind == IFC_PEER_CHAT)
        start_budget(p);
    ifc_ws_parser_init(p->ws, max_message(p));
    if (bits) {
        ifc_ws_parser_allow_rsv1(p->ws);
        p->deflate = bits;
        p->peers->m.upgrades_deflate++;
    }
    ifc_conn_write_copy(&p->conn, head, hl);
    ifc_respond_clear(p);
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

/* Puts a compressed message's inflation in its place. Returns 0, or -1
 * after closing the connection: bad data, a text that is not UTF-8 (1007),
 * too big (1009). */
static int inflate_message(ifc_peer_t *p, ifc_ws_event_t *ev)
{
    const uint8_t *out;
    size_t len;
    int rc =
        ifc_ws_inflate_message(p->peers->inflater, max_message(p), ev->data, ev->len, &out, &len);
    if (rc == 0 && ev->opcode == IFC_WS_OP_TEXT && mc_utf8_check(out, len) != 0)
        rc = MC_EINVAL;
    if (rc != 0) {
        ifc_websocket_close(p, ifc_ws_inflate_close_code(rc));
        return -1;
    }
    p->peers->m.messages_inflated++;
    ev->data = out;
    ev->len = len;
    return 0;
}

/* The byte bucket of a chat socket: its rate, and its burst of four
 * seconds of the rate, never less than one largest message. */
static void byte_budget(const ifc_server_config_t *cfg, uint32_t *rate, uint32_t *burst)
{
    *rate = (uint32_t)cfg->socket_kib_rate * 1024;
    uint64_t b = (uint64_t)*rate * 4;
    if (b < (uint64_t)cfg->max_message)
        b = (uint64_t)cfg->max_message;
    *burst = b > UINT32_MAX ? UINT32_MAX : (uint32_t)b;
}

/* A new chat socket's budget: full, or, when its address was lately
 * closed for its rate, a second's worth of each (what a person's page
 * sends at once fits in it). */
static void start_budget(ifc_peer_t *p)
{
    const ifc_server_config_t *cfg = p->peers->cfg;
    uint32_t now = (uint32_t)uv_now(p->conn.hub->loop);
    memset(&p->frames, 0, sizeof(p->frames));
    memset(&p->bytes, 0, sizeof(p->bytes));
    if (!ifc_addrs_penalized(&p->peers->addrs, p->addr, now))
        return;
    uint32_t rate, burst;
    byte_budget(cfg, &rate, &burst);
    ifc_bucket_charge(&p->bytes, now, rate, burst, burst > rate ? burst - rate : 0);
    uint32_t frate = (uint32_t)cfg->socket_rate, fburst = (uint32_t)cfg->socket_burst;
    ifc_bucket_charge(&p->frames, now, frate, fburst, fburst > frate ? fburst - frate : 0);
}

void ifc_websocket_charge_answer(ifc_peer_t *p, size_t bytes)
{
    const ifc_server_config_t *cfg = p->peers->cfg;
    if (p->kind != IFC_PEER_CHAT || cfg->socket_answer_debt_ms <= 0 || bytes == 0)
        return;
    uint32_t rate, burst;
    byte_budget(cfg, &rate, &burst);
    uint64_t cap = burst + (uint64_t)rate * (uint64_t)cfg->socket_answer_debt_ms / 1000;
    ifc_bucket_charge(&p->bytes, (uint32_t)uv_now(p->conn.hub->loop), rate,
                      cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap,
                      bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes);
}

/* The budget of a chat socket (see websocket.h): frames cost tokens, and
 * bytes (a message's, inflated) theirs. Returns 1 when they may be
 * handled. */
static int within_budget(ifc_peer_t *p, uint32_t frames, size_t bytes)
{
    const ifc_server_config_t *cfg = p->peers->cfg;
    uint32_t now = (uint32_t)uv_now(p->conn.hub->loop);
    uint32_t byte_rate, byte_burst;
    byte_budget(cfg, &byte_rate, &byte_burst);
    if (ifc_bucket_take(&p->frames, now, (uint32_t)cfg->socket_rate, (uint32_t)cfg->socket_burst,
                        frames) &&
        ifc_bucket_take(&p->bytes, now, byte_rate, byte_burst,
                        bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes)) {
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
        ifc_addrs_penalize(&p->peers->addrs, p->addr, now);
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
        /* A close is always heard; everything else of a chat socket costs
         * (a compressed message's bytes once inflated, below). */
        int chat = p->kind == IFC_PEER_CHAT;
        if (chat && ev.opcode != IFC_WS_OP_CLOSE &&
            !within_budget(p, 1, ev.compressed ? 0 : ev.len))
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
        case IFC_WS_OP_TEXT:
            if (ev.opcode == IFC_WS_OP_BINARY && p->kind == IFC_PEER_CHAT) {
                ifc_websocket_close(p, MC_CLOSE_UNSUPPORTED_DATA);
            } else if (ev.compressed && inflate_message(p, &ev) != 0) {
                break; /* closed */
            } else if (chat && ev.compressed && !within_budget(p, 0, ev.len)) {
                break; /* over the budget of bytes */
            } else if (p->kind == IFC_PEER_ECHO) {
                ifc_websocket_send(p, ev.opcode, ev.data, ev.len);
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
