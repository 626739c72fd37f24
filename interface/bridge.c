/*
 * interface/bridge.c: envelopes to the workers and their replies (see
 * bridge.h): requests and socket events pushed with the connection's reply
 * channel, push failures and reply timeouts answered, and each reply or
 * group message decoded once and handed to its connections.
 */
#include "interface/bridge.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/error_reply.h"
#include "common/form.h"
#include "common/log.h"
#include "common/wire.h"
#include "interface/respond.h"
#include "interface/websocket.h"

#define WORKER_QUEUE "worker"
#define ENV_ID_MAX 256    /* the process name, a dash and a counter */
#define PENDING_MAX 10000 /* disconnects kept while Redis is away */
#define PENDING_TRIES 5   /* Redis returns a disconnect is sent again on */

/* What a socket hears when its message cannot reach a worker now: which
 * message it was (common/error_reply.h), so that the client can send it
 * again. Counted. */
static void busy(ifc_peer_t *p, const char *text, size_t len)
{
    static const char bare[] = "{\"error\":\"" MC_ERROR_SERVER_BUSY "\"}";
    char *reply = NULL;
    p->peers->m.busy_replies++;
    if (mc_error_reply(MC_ERROR_SERVER_BUSY, text, len, &reply) == 0) {
        ifc_websocket_send(p, IFC_WS_OP_TEXT, reply, strlen(reply));
        free(reply);
    } else {
        ifc_websocket_send(p, IFC_WS_OP_TEXT, bare, sizeof(bare) - 1);
    }
}

/* ---- Envelopes out --------------------------------------------------------- */

/* What a push keeps until its completion, which carries the connection's
 * id, not a pointer: the connection may be gone by then. kept is the
 * client's frame of a websocket.receive (to name it in the error should
 * the push fail) or a whole websocket.disconnect (to send it again). */
struct ifc_push {
    struct ifc_push *next; /* in peers->pending */
    ifc_peers_t *peers;
    uint64_t conn;
    mc_envelope_type_t type;
    int tries;
    size_t len;
    char kept[];
};

/* Keeps a disconnect that could not be pushed, to send it again once
 * Redis is back (ifc_bridge_redis_up): the worker then clears the
 * socket's presence. Bounded in number and in tries. */
static void keep(ifc_peers_t *peers, struct ifc_push *box)
{
    if (++box->tries > PENDING_TRIES || peers->npending >= PENDING_MAX) {
        peers->m.disconnects_lost++;
        mc_warn("conn %llu: its disconnect could not be sent; its presence stays until its "
                "process is gone",
                (unsigned long long)box->conn);
        free(box);
        return;
    }
    box->next = peers->pending;
    peers->pending = box;
    peers->npending++;
}

/* Counts a push failure by its cause: a full queue is no Redis error. */
static void push_failed(ifc_peers_t *peers, int status)
{
    peers->m.push_failures++;
    if (status == MC_EFULL)
        peers->m.queue_full++;
    else if (status == MC_EREDIS)
        peers->m.redis_errors++;
}

static void answered(ifc_peer_t *p);

static void on_pushed(void *arg, int status)
{
    struct ifc_push *box = arg;
    ifc_peers_t *peers = box->peers;
    peers->pushes--;
    if (status == 0) {
        peers->m.envelopes_pushed++;
        free(box);
    } else {
        push_failed(peers, status);
        ifc_peer_t *p = ifc_peers_find(peers, box->conn);
        if (box->type == MC_ENV_WS_DISCONNECT && status != MC_ECLOSED) {
            keep(peers, box);
        } else {
            if (p && (p->wait == IFC_WAIT_HTTP || p->wait == IFC_WAIT_CONNECT)) {
                ifc_conn_timer_stop(&p->conn);
                ifc_respond_simple(p, 503);
            } else if (p && p->kind == IFC_PEER_CHAT) {
                busy(p, box->kept, box->len);
                if (box->type == MC_ENV_WS_RECEIVE)
                    answered(p); /* no worker will answer it */
            }
            free(box);
        }
    }
    peers->pushed(peers);
}

/* Pushes the encoded envelope data[0..len) with box; on failure the box
 * is freed, or kept when it holds a disconnect. Returns as bus.push. */
static int push_boxed(ifc_peers_t *peers, struct ifc_push *box, const char *data, size_t len)
{
    int rc = peers->bus.push(peers->bus.ctx, WORKER_QUEUE, data, len, on_pushed, box);
    if (rc != 0) {
        push_failed(peers, rc);
        if (box->type == MC_ENV_WS_DISCONNECT)
            keep(peers, box);
        else
            free(box);
        return rc;
    }
    peers->pushes++;
    return 0;
}

/* Encodes env with the connection's reply channel and pushes it. A
 * receive's box keeps the client's frame, a disconnect's the envelope. */
static int push_env(ifc_peer_t *p, mc_envelope_t *env)
{
    ifc_peers_t *peers = p->peers;
    char reply[256];
    if (peers->bus.reply_channel(peers->bus.ctx, p->conn.id, reply, sizeof(reply)) != 0)
        return MC_EINVAL;
    env->reply = reply;
    char *out;
    size_t len;
    int rc = mc_envelope_encode(env, &out, &len);
    if (rc != 0)
        return rc;
    size_t keep_len = env->type == MC_ENV_WS_RECEIVE      ? env->body_len
                      : env->type == MC_ENV_WS_DISCONNECT ? len
                                                          : 0;
    struct ifc_push *box = malloc(sizeof(*box) + keep_len);
    if (!box) {
        free(out);
        return MC_ENOMEM;
    }
    *box =
        (struct ifc_push){.peers = peers, .conn = p->conn.id, .type = env->type, .len = keep_len};
    if (keep_len)
        memcpy(box->kept, env->type == MC_ENV_WS_RECEIVE ? env->body : out, keep_len);
    rc = push_boxed(peers, box, out, len);
    free(out);
    return rc;
}

/* Tells every chat socket that messages for it may have been lost while
 * Redis was away, so that its client asks for what it missed. The answers
 * its workers owed it may be lost too (envelopes of a Redis that died):
 * nothing is owed any more, and input held back for them goes on. */
static void resync(ifc_peers_t *peers)
{
    static const char text[] = "{\"" MC_EVENT_RESYNC "\":true}";
    ifc_buf_t *frame = NULL;
    ifc_conn_t *next;
    for (ifc_conn_t *c = ifc_conns_first(&peers->conns); c; c = next) {
        ifc_peer_t *p = (ifc_peer_t *)c;
        next = c->next;
        if (p->kind != IFC_PEER_CHAT || c->closing || c->finishing)
            continue;
        if (!frame && !(frame = ifc_websocket_frame(IFC_WS_OP_TEXT, text, sizeof(text) - 1)))
            return;
        ifc_websocket_send_frame(p, frame);
        peers->m.resyncs++;
        if (p->in_flight) {
            p->in_flight = 0;
            ifc_conn_resume(c);
        }
    }
    ifc_buf_unref(frame);
}

void ifc_bridge_redis_up(ifc_peers_t *peers)
{
    resync(peers);
    struct ifc_push *list = peers->pending;
    size_t n = peers->npending;
    peers->pending = NULL;
    peers->npending = 0;
    if (n)
        mc_info("redis is back: sending %zu disconnects again", n);
    while (list) {
        struct ifc_push *box = list;
        list = box->next;
        box->next = NULL;
        push_boxed(peers, box, box->kept, box->len);
    }
}

void ifc_bridge_free(ifc_peers_t *peers)
{
    if (peers->npending)
        mc_warn("%zu disconnects were never sent; their presence stays until this process "
                "is gone",
                peers->npending);
    while (peers->pending) {
        struct ifc_push *box = peers->pending;
        peers->pending = box->next;
        free(box);
    }
    peers->npending = 0;
}

/* Copies the request's headers as NUL-terminated strings into store. */
static int copy_headers(const ifc_http_request_t *req, mc_envelope_t *env, char *store, size_t size)
{
    size_t o = 0;
    env->nheaders = 0;
    for (size_t i = 0; i < req->nheaders && env->nheaders < MC_ENVELOPE_MAX_HEADERS; i++) {
        const ifc_http_header_t *h = &req->headers[i];
        if (h->name_len + h->value_len + 2 > size - o)
            return MC_ETOOBIG;
        char *name = store + o;
        memcpy(name, h->name, h->name_len);
        name[h->name_len] = '\0';
        o += h->name_len + 1;
        char *value = store + o;
        memcpy(value, h->value, h->value_len);
        value[h->value_len] = '\0';
        o += h->value_len + 1;
        env->headers[env->nheaders].name = name;
        env->headers[env->nheaders].value = value;
        env->nheaders++;
    }
    return 0;
}

/* The path as the worker sees it: percent-decoded, like ASGI's, into out
 * (NUL-terminated, cut at size). A malformed escape, and %00, stay as they
 * are: the path is a C string on the worker's side. */
static void decode_path(const char *in, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < size; i++) {
        unsigned char byte;
        if (in[i] == '%' && mc_percent_byte(in + i, len - i, &byte) == 0 && byte != 0) {
            out[o++] = (char)byte;
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

static void on_reply_timeout(ifc_conn_t *c)
{
    ifc_peer_t *p = (ifc_peer_t *)c;
    p->peers->m.closed_timeout++;
    p->keep_alive = 0;
    if (p->wait == IFC_WAIT_CONNECT)
        p->peers->m.upgrades_rejected++;
    ifc_respond_simple(p, 504);
}

void ifc_bridge_forward(ifc_peer_t *p, const ifc_http_request_t *req, mc_envelope_type_t type,
                        const ifc_client_t *client)
{
    mc_envelope_t env;
    char addr[IFC_IP_TEXT_MAX];
    memset(&env, 0, sizeof(env));
    env.type = type;
    ifc_ip_format(&client->ip, addr);
    env.client = addr;
    env.scheme = ifc_client_scheme(client);
    size_t size = IFC_HTTP_MAX_HEAD + IFC_HTTP_MAX_URL + 16;
    char *store = malloc(size);
    if (!store) {
        ifc_respond_simple(p, 503);
        return;
    }
    char *query = store, *path = query + req->query_len + 1;
    memcpy(query, req->query, req->query_len);
    query[req->query_len] = '\0';
    decode_path(req->path, req->path_len, path, IFC_HTTP_MAX_URL + 1);
    char *hstore = path + strlen(path) + 1;
    env.method = req->method;
    env.path = path;
    env.query = query;
    env.body = req->body_len ? req->body : "";
    env.body_len = req->body_len;
    int rc = copy_headers(req, &env, hstore, size - (size_t)(hstore - store));
    if (rc == 0)
        rc = push_env(p, &env);
    free(store);
    if (rc != 0) {
        ifc_respond_simple(p, rc == MC_ETOOBIG ? 413 : 503);
        return;
    }
    ifc_peer_wait(p, type == MC_ENV_WS_CONNECT ? IFC_WAIT_CONNECT : IFC_WAIT_HTTP);
    ifc_conn_timer_start(&p->conn, p->peers->cfg->reply_timeout_ms, on_reply_timeout);
}

typedef struct groups {
    mc_envelope_t *env;
    char store[8192];
    size_t used;
} groups_t;

static void add_group(void *arg, const char *group)
{
    groups_t *g = arg;
    size_t n = strlen(group) + 1;
    if (g->env->ngroups == MC_ENVELOPE_MAX_GROUPS || n > sizeof(g->store) - g->used)
        return;
    memcpy(g->store + g->used, group, n);
    g->env->groups[g->env->ngroups++] = g->store + g->used;
    g->used += n;
}

/* websocket.receive or websocket.disconnect with the scope and groups. */
static int push_ws(ifc_peer_t *p, mc_envelope_type_t type, const uint8_t *text, size_t len,
                   int code)
{
    ifc_peers_t *peers = p->peers;
    mc_envelope_t env;
    memset(&env, 0, sizeof(env));
    env.type = type;
    env.has_scope = 1;
    env.scope.user_id = p->scope->user_id;
    env.scope.is_staff = p->scope->is_staff;
    memcpy(env.scope.username, p->scope->username, strlen(p->scope->username) + 1);
    env.code = code;
    env.body = (const char *)text;
    env.body_len = len;
    /* A receive is named, so that a worker handling it twice (its first
     * worker died) stores its message once, client_id or not. */
    char id[ENV_ID_MAX];
    if (type == MC_ENV_WS_RECEIVE) {
        snprintf(id, sizeof(id), "%s-%llu", peers->cfg->instance ? peers->cfg->instance : "ifc",
                 (unsigned long long)++peers->receives);
        env.id = id;
    }
    groups_t *g = malloc(sizeof(*g));
    if (!g)
        return MC_ENOMEM;
    g->env = &env;
    g->used = 0;
    peers->bus.each_group(peers->bus.ctx, p->conn.id, add_group, g);
    int rc = push_env(p, &env);
    free(g);
    return rc;
}

void ifc_bridge_receive(ifc_peer_t *p, const uint8_t *text, size_t len)
{
    if (push_ws(p, MC_ENV_WS_RECEIVE, text, len, 0) != 0) {
        busy(p, (const char *)text, len);
        return;
    }
    if (p->in_flight++ == 0)
        p->flight_at = (uint32_t)uv_now(p->conn.hub->loop);
}

int ifc_bridge_held(ifc_peer_t *p)
{
    const ifc_server_config_t *cfg = p->peers->cfg;
    if (p->kind != IFC_PEER_CHAT || cfg->socket_in_flight <= 0 || !p->peers->marks_seen ||
        p->in_flight < cfg->socket_in_flight)
        return 0;
    uint32_t now = (uint32_t)uv_now(p->conn.hub->loop);
    if ((uint32_t)(now - p->flight_at) < (uint32_t)cfg->reply_timeout_ms)
        return 1;
    /* No answer for so long: they were lost (an expired envelope, a reply
     * that found this process's list full). Nothing is owed any more. */
    mc_warn("conn %llu: %u messages unanswered for %ld ms; no longer waiting",
            (unsigned long long)p->conn.id, (unsigned)p->in_flight, cfg->reply_timeout_ms);
    p->in_flight = 0;
    return 0;
}

/* A websocket.receive of p is answered: one less in flight, and input
 * held back for it goes on. */
static void answered(ifc_peer_t *p)
{
    long cap = p->peers->cfg->socket_in_flight;
    int was_held = cap > 0 && p->in_flight >= cap;
    if (p->in_flight > 0)
        p->in_flight--;
    p->flight_at = (uint32_t)uv_now(p->conn.hub->loop);
    if (was_held)
        ifc_conn_resume(&p->conn);
}

void ifc_bridge_disconnect(ifc_peer_t *p)
{
    if (p->kind != IFC_PEER_CHAT || p->disconnected)
        return;
    p->disconnected = 1;
    int code = p->close_code ? p->close_code : MC_CLOSE_ABNORMAL;
    push_ws(p, MC_ENV_WS_DISCONNECT, NULL, 0, code);
    p->peers->bus.forget_conn(p->peers->bus.ctx, p->conn.id);
}

void ifc_bridge_clear(ifc_peer_t *p)
{
    free(p->scope);
    p->scope = NULL;
}

/* ---- Replies back -------------------------------------------------------- */

/* The connection a reply is for, unless it is gone or closing (counted). */
static ifc_peer_t *live(ifc_peers_t *peers, uint64_t id)
{
    ifc_peer_t *p = ifc_peers_find(peers, id);
    if (!p || p->conn.finishing) {
        peers->m.replies_dropped++;
        return NULL;
    }
    return p;
}

static int skip_header(const char *name)
{
    return strcmp(name, "content-length") == 0 || strcmp(name, "connection") == 0 ||
           strcmp(name, "transfer-encoding") == 0;
}

static void http_reply(ifc_peer_t *p, const mc_envelope_t *env)
{
    ifc_http_header_t h[MC_ENVELOPE_MAX_HEADERS];
    size_t n = 0;
    for (size_t i = 0; i < env->nheaders; i++) {
        if (skip_header(env->headers[i].name))
            continue;
        h[n].name = env->headers[i].name;
        h[n].name_len = strlen(env->headers[i].name);
        h[n].value = env->headers[i].value;
        h[n].value_len = strlen(env->headers[i].value);
        n++;
    }
    ifc_conn_timer_stop(&p->conn);
    ifc_respond(p, env->status ? env->status : 200, h, n, env->body, env->body_len);
}

static void accept_socket(ifc_peer_t *p, const mc_scope_t *scope)
{
    size_t n = strnlen(scope->username, MC_USERNAME_MAX);
    p->scope = malloc(sizeof(*p->scope) + n + 1);
    if (!p->scope) {
        ifc_conn_close(&p->conn);
        return;
    }
    p->scope->user_id = scope->user_id;
    p->scope->is_staff = scope->is_staff != 0;
    memcpy(p->scope->username, scope->username, n);
    p->scope->username[n] = '\0';
    ifc_websocket_upgrade(p, IFC_PEER_CHAT);
}

/* Any reply but websocket.send, to one connection. */
static void reply(ifc_peers_t *peers, uint64_t id, const mc_envelope_t *env)
{
    ifc_peer_t *p = live(peers, id);
    if (!p)
        return;
    switch (env->type) {
    case MC_ENV_HTTP_RESPONSE:
        if (p->wait == IFC_WAIT_HTTP && p->file_fd < 0)
            http_reply(p, env);
        else
            peers->m.replies_dropped++;
        break;
    case MC_ENV_WS_ACCEPT:
        if (p->wait == IFC_WAIT_CONNECT)
            accept_socket(p, &env->scope);
        else
            peers->m.replies_dropped++;
        break;
    case MC_ENV_WS_CLOSE:
        if (p->wait == IFC_WAIT_CONNECT) {
            /* Refused before the upgrade: a plain 403. */
            ifc_conn_timer_stop(&p->conn);
            ifc_websocket_refuse(p, 403);
        } else if (p->kind == IFC_PEER_CHAT) {
            ifc_websocket_close_reason(p, env->code ? env->code : MC_CLOSE_NORMAL, env->reason);
        }
        break;
    default:
        peers->m.replies_dropped++;
    }
}

/* The connection a member channel names, or 0 ("" or not ours). */
static uint64_t member(const ifc_peers_t *peers, const char *channel)
{
    uint64_t id;
    if (!channel || !*channel ||
        peers->bus.conn_of(peers->bus.ctx, channel, strlen(channel), &id) != 0)
        return 0;
    return id;
}

/* The sender's frame: the text, a JSON object, with ,"own":true before its
 * closing brace ("{}" has no comma); text that is no object goes out as it
 * is. Always plain: compressing it would cost a second deflate per
 * message for one socket (see send_text). */
static ifc_buf_t *own_frame(const char *text, size_t len)
{
    if (len < 2 || text[len - 1] != '}')
        return ifc_websocket_frame(IFC_WS_OP_TEXT, text, len);
    const char *tail = text[len - 2] == '{' ? "\"own\":true}" : ",\"own\":true}";
    size_t keep = len - 1, add = strlen(tail);
    uint8_t hdr[IFC_WS_MAX_HEADER];
    size_t hl = ifc_ws_frame_header(hdr, IFC_WS_OP_TEXT, IFC_WS_FIN, keep + add);
    ifc_buf_t *b = ifc_buf_new(hl + keep + add);
    if (b) {
        memcpy(b->data, hdr, hl);
        memcpy(b->data + hl, text, keep);
        memcpy(b->data + hl + keep, tail, add);
    }
    return b;
}

/* websocket.send to conns[0..n): the message's frames, plain and
 * compressed, are each encoded once, when a member first needs them, and
 * shared by every member's socket; so is the sender's copy. An empty text
 * carries only the "done" mark: no frame. */
static void send_text(ifc_peers_t *peers, const uint64_t *conns, size_t n, const mc_envelope_t *env)
{
    uint64_t except = member(peers, env->except), own = member(peers, env->own);
    ifc_websocket_message_t all;
    ifc_buf_t *mine = NULL;
    ifc_websocket_message_init(&all, IFC_WS_OP_TEXT, env->body, env->body_len);
    for (size_t i = 0; i < n && env->body_len > 0; i++) {
        ifc_peer_t *p = live(peers, conns[i]);
        if (!p || p->kind != IFC_PEER_CHAT || conns[i] == except)
            continue;
        if (conns[i] != own) {
            ifc_websocket_send_message(p, &all);
            continue;
        }
        if (!mine && !(mine = own_frame(env->body, env->body_len)))
            ifc_conn_close(&p->conn);
        else
            ifc_websocket_send_frame(p, mine);
    }
    ifc_websocket_message_clear(&all);
    ifc_buf_unref(mine);
}

void ifc_bridge_deliver(ifc_peers_t *peers, const uint64_t *conns, size_t n, const char *data,
                        size_t len)
{
    peers->m.replies_popped += n;
    mc_envelope_t env;
    if (mc_envelope_decode(&env, data, len) != 0) {
        peers->m.replies_dropped += n;
        mc_warn("conn %llu%s: undecodable reply of %zu bytes",
                n ? (unsigned long long)conns[0] : 0ull, n > 1 ? " and others" : "", len);
        return;
    }
    if (env.type == MC_ENV_WS_SEND) {
        send_text(peers, conns, n, &env);
    } else {
        for (size_t i = 0; i < n; i++)
            reply(peers, conns[i], &env);
    }
    if (env.done) {
        /* The answer to a websocket.receive: of the sender of a group's
         * message ("own"), or of the one connection it was sent to. */
        peers->marks_seen = 1;
        uint64_t id = env.own && *env.own ? member(peers, env.own) : n == 1 ? conns[0] : 0;
        ifc_peer_t *p = id ? ifc_peers_find(peers, id) : NULL;
        if (p && p->kind == IFC_PEER_CHAT && !p->conn.finishing) {
            /* What a socket's own commands bring it costs its budget
             * (before input held back for it is read on); a group's
             * message (its own copy too) does not. */
            if (!(env.own && *env.own))
                ifc_websocket_charge_answer(p, env.body_len);
            answered(p);
        }
    }
    mc_envelope_clear(&env);
}
