/*
 * worker/port.c: the output port of worker/port.h: the outbox and its
 * order locks, the sends after it, and the texts several callers send.
 */
#include "worker/port.h"
#include "common/error.h"
#include "common/log.h"
#include "worker/command.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wrk_port_init(wrk_port_t *port, const wrk_sink_t *sink, wrk_store_t *store, const char *db_path,
                  int notify_enter_leave)
{
    memset(port, 0, sizeof(*port));
    port->sink = *sink;
    port->store = store;
    port->notify_enter_leave = notify_enter_leave;
    return wrk_order_open(&port->order, store, db_path);
}

void wrk_port_close(wrk_port_t *port)
{
    wrk_port_flush(port);
    wrk_order_close(&port->order);
}

static int send_error(wrk_port_t *port, const char *channel, const char *code, int64_t room,
                      const char *command, const char *client_id, int done);

/* ---- The outbox and the order locks ------------------------------------------ */

static int outbox_holds(const wrk_port_t *port, int64_t room)
{
    for (size_t i = 0; i < port->nout; i++)
        if (port->outbox[i].room == room)
            return 1;
    return 0;
}

void wrk_port_order_lock(wrk_port_t *port, int64_t room)
{
    wrk_port_flush(port);
    wrk_order_lock(&port->order, room);
}

void wrk_port_order_lock_send(wrk_port_t *port, int64_t room)
{
    if (port->nout == WRK_OUTBOX_MAX)
        wrk_port_flush(port);
    if (outbox_holds(port, room))
        return;
    if (port->nout && wrk_order_try_lock(&port->order, room) == 0)
        return;
    wrk_port_flush(port);
    wrk_order_lock(&port->order, room);
}

void wrk_port_order_unlock(wrk_port_t *port, int64_t room)
{
    if (!outbox_holds(port, room)) /* else the outbox releases it once published */
        wrk_order_unlock(&port->order, room);
}

int wrk_port_outbox_begin(wrk_port_t *port)
{
    if (port->in_tx)
        return 0;
    int rc = wrk_store_batch_begin(port->store);
    port->in_tx = rc == 0;
    return rc;
}

/* Empties the outbox: releases its rooms' order locks (the only ones the
 * worker holds while the outbox is not empty: a join publishes it before
 * it locks) in one step, and frees the messages (the other fields of
 * outbox[0..n) stay readable). */
static void outbox_clear(wrk_port_t *port)
{
    size_t n = port->nout;
    port->nout = 0;
    wrk_order_unlock_all(&port->order);
    for (size_t i = 0; i < n; i++) {
        free(port->outbox[i].data);
        port->outbox[i].data = NULL;
    }
}

void wrk_port_flush(wrk_port_t *port)
{
    int stored = 1;
    if (port->in_tx) {
        port->in_tx = 0;
        if (wrk_store_batch_end(port->store, 1) != 0) {
            mc_error("worker: storing %zu message(s): %s", port->nout,
                     wrk_store_errmsg(port->store));
            stored = 0;
        }
    }
    if (port->nout == 0)
        return;
    if (!stored) {
        /* Nothing of the batch is kept: tell each sender, publish nothing;
         * the error is the answer the message would have been. */
        size_t n = port->nout;
        outbox_clear(port);
        for (size_t i = 0; i < n; i++)
            send_error(port, port->outbox[i].sender, MC_ERROR_SERVER_BUSY, port->outbox[i].room,
                       "send", port->outbox[i].client_id, port->outbox[i].done);
        return;
    }
    wrk_outgoing_t msgs[WRK_OUTBOX_MAX];
    for (size_t i = 0; i < port->nout; i++)
        msgs[i] = (wrk_outgoing_t){port->outbox[i].group, port->outbox[i].once,
                                   port->outbox[i].data, port->outbox[i].len};
    int rc = port->sink.group_send(port->sink.ctx, msgs, port->nout);
    if (rc)
        mc_warn("worker: publishing %zu message(s): %s", port->nout, mc_strerror(rc));
    outbox_clear(port);
}

/* ---- Sending ------------------------------------------------------------------- */

static int encode(const mc_envelope_t *env, char **out, size_t *len)
{
    int rc = mc_envelope_encode(env, out, len);
    if (rc)
        mc_error("worker: cannot encode %s: %s", mc_envelope_type_name(env->type), mc_strerror(rc));
    return rc;
}

/* Whether what goes to channel now is the answer of the websocket.receive
 * being handled (wrk_port_answer_begin): the first thing that does. */
static int takes_answer(wrk_port_t *port, const char *channel)
{
    if (port->answered || !port->answer_to[0] || !channel || strcmp(channel, port->answer_to) != 0)
        return 0;
    port->answered = 1;
    return 1;
}

/* Sends env to one connection, or (to_group) to a group with the send named
 * once (NULL: not named), after the outbox. A websocket.send or close to one
 * connection may be the answer of its websocket.receive: then it goes
 * marked. */
static int emit(wrk_port_t *port, const char *to, int to_group, const char *once,
                const mc_envelope_t *env)
{
    wrk_port_flush(port);
    char *data;
    size_t len;
    mc_envelope_t marked;
    if (!to_group && !env->done && (env->type == MC_ENV_WS_SEND || env->type == MC_ENV_WS_CLOSE) &&
        takes_answer(port, to)) {
        marked = *env;
        marked.done = 1;
        env = &marked;
    }
    int rc = encode(env, &data, &len);
    if (rc)
        return rc;
    if (to_group) {
        wrk_outgoing_t msg = {to, once, data, len};
        rc = port->sink.group_send(port->sink.ctx, &msg, 1);
    } else {
        rc = port->sink.send(port->sink.ctx, to, data, len);
    }
    if (rc && to_group)
        mc_warn("worker: group_send %s: %s", to, mc_strerror(rc));
    else if (rc)
        mc_warn("worker: send %s to %s: %s", mc_envelope_type_name(env->type), to, mc_strerror(rc));
    free(data);
    return rc;
}

int wrk_port_send(wrk_port_t *port, const char *channel, const mc_envelope_t *env)
{
    return emit(port, channel, 0, NULL, env);
}

int wrk_port_send_text(wrk_port_t *port, const char *channel, const char *text)
{
    mc_envelope_t env = {.type = MC_ENV_WS_SEND, .body = text, .body_len = strlen(text)};
    return emit(port, channel, 0, NULL, &env);
}

int wrk_port_group_text(wrk_port_t *port, const char *group, const char *text, const char *except)
{
    return wrk_port_group_text_once(port, group, NULL, text, except);
}

int wrk_port_group_text_once(wrk_port_t *port, const char *group, const char *once,
                             const char *text, const char *except)
{
    mc_envelope_t env = {
        .type = MC_ENV_WS_SEND, .body = text, .body_len = strlen(text), .except = except};
    return emit(port, group, 1, once, &env);
}

int wrk_port_group_message(wrk_port_t *port, int64_t room, int64_t id, const char *text,
                           const char *own, const char *client_id)
{
    mc_envelope_t env = {
        .type = MC_ENV_WS_SEND, .body = text, .body_len = strlen(text), .own = own};
    if (port->nout == WRK_OUTBOX_MAX) /* wrk_port_order_lock_send made room: not reached */
        return MC_EFULL;
    char *data;
    size_t len;
    env.done = !port->apart && takes_answer(port, own);
    int rc = encode(&env, &data, &len);
    if (rc) {
        port->answered = port->answered && !env.done; /* the caller answers with an error */
        return rc;
    }
    struct wrk_pending *o = &port->outbox[port->nout++];
    mc_group_room(o->group, room);
    mc_once_message(o->once, id);
    snprintf(o->sender, sizeof(o->sender), "%s", own);
    snprintf(o->client_id, sizeof(o->client_id), "%s", client_id ? client_id : "");
    o->data = data;
    o->len = len;
    o->room = room;
    o->done = env.done;
    return 0;
}

int wrk_port_send_close(wrk_port_t *port, const char *channel, int code)
{
    mc_envelope_t env = {.type = MC_ENV_WS_CLOSE, .code = code, .reason = mc_close_reason(code)};
    return emit(port, channel, 0, NULL, &env);
}

int wrk_port_group_close(wrk_port_t *port, const char *group, int code)
{
    mc_envelope_t env = {.type = MC_ENV_WS_CLOSE, .code = code, .reason = mc_close_reason(code)};
    return emit(port, group, 1, NULL, &env);
}

/* {"error":CODE} to channel, marked done as given (else as emit decides). */
static int send_error(wrk_port_t *port, const char *channel, const char *code, int64_t room,
                      const char *command, const char *client_id, int done)
{
    char *text;
    int rc = wrk_reply_error(code, room, command, client_id, &text);
    if (rc)
        return rc;
    mc_envelope_t env = {
        .type = MC_ENV_WS_SEND, .body = text, .body_len = strlen(text), .done = done};
    rc = emit(port, channel, 0, NULL, &env);
    free(text);
    return rc;
}

int wrk_port_send_error(wrk_port_t *port, const char *channel, const char *code, int64_t room,
                        const char *command, const char *client_id)
{
    return send_error(port, channel, code, room, command, client_id, 0);
}

void wrk_port_answer_begin(wrk_port_t *port, const char *channel)
{
    snprintf(port->answer_to, sizeof(port->answer_to), "%s", channel ? channel : "");
    port->answered = 0;
    port->apart = 0;
}

void wrk_port_answer_apart(wrk_port_t *port)
{
    port->apart = 1;
}

void wrk_port_answer_end(wrk_port_t *port)
{
    if (port->answer_to[0] && !port->answered) {
        mc_envelope_t mark = {.type = MC_ENV_WS_SEND, .body = "", .done = 1};
        port->answered = 1;
        emit(port, port->answer_to, 0, NULL, &mark);
    }
    port->answer_to[0] = '\0';
}

/* Whether the room hears this enter or leave of username (see port.h). */
static int notice_due(wrk_port_t *port, int64_t room, const char *username, mc_msg_type_t msg_type)
{
    if (port->notice_rate <= 0)
        return 1;
    char key[MC_USERNAME_MAX + 64];
    snprintf(key, sizeof(key), "notice:room-%" PRId64 ":%s", room, username);
    long refused;
    if (wrk_port_rate_take(port, key, (double)port->notice_rate / 60.0, port->notice_burst,
                           &refused))
        return 1;
    return msg_type == MC_MSG_LEAVE && refused == 1;
}

void wrk_port_notice(wrk_port_t *port, int64_t room, const char *username, mc_msg_type_t msg_type,
                     const char *except)
{
    if (!port->notify_enter_leave || !notice_due(port, room, username, msg_type))
        return;
    char group[MC_GROUP_NAME_MAX], *text;
    mc_group_room(group, room);
    if (wrk_reply_notice(room, username, msg_type, &text) == 0) {
        wrk_port_group_text(port, group, text, except);
        free(text);
    }
}

int wrk_port_group_add(wrk_port_t *port, const char *group, const char *channel)
{
    wrk_port_flush(port);
    return port->sink.group_add(port->sink.ctx, group, channel);
}

int wrk_port_group_discard(wrk_port_t *port, const char *group, const char *channel)
{
    wrk_port_flush(port);
    return port->sink.group_discard(port->sink.ctx, group, channel);
}

/* ---- Rate limits and room lists ------------------------------------------------- */

int wrk_port_rate_take(wrk_port_t *port, const char *key, double rate, long burst, long *refused)
{
    *refused = 0;
    if (!port->sink.rate_take || rate <= 0)
        return 1;
    int allowed = 1;
    int rc =
        port->sink.rate_take(port->sink.ctx, key, rate, burst > 0 ? burst : 1, &allowed, refused);
    if (rc) {
        /* Redis is away: the chat goes on unlimited rather than stopping. */
        mc_warn("worker: rate limit %s: %s", key, mc_strerror(rc));
        return 1;
    }
    return allowed;
}

typedef struct room_vec {
    wrk_room_t *items;
    size_t n, cap;
    int is_staff;
} room_vec_t;

static int collect_room(void *arg, const wrk_room_t *r)
{
    room_vec_t *v = arg;
    if (r->staff_only && !v->is_staff)
        return 0;
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 16;
        wrk_room_t *items = realloc(v->items, cap * sizeof(*items));
        if (!items)
            return MC_ENOMEM;
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n++] = *r;
    return 0;
}

int wrk_port_rooms_text(wrk_port_t *port, int is_staff, char **out)
{
    room_vec_t v = {.is_staff = is_staff};
    int rc = wrk_store_room_each(port->store, collect_room, &v);
    if (rc == 0)
        rc = wrk_reply_rooms(v.items, v.n, out);
    free(v.items);
    return rc;
}
