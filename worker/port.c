/*
 * worker/port.c: the output port of worker/port.h: the outbox and its
 * order locks, the sends after it, and the texts several callers send.
 */
#include "worker/port.h"
#include "common/clock.h"
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

/* src (NULL: "") into dst[0..size), cut to fit: as snprintf "%s" would,
 * without its cost on every message. */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static int send_error(wrk_port_t *port, const char *channel, const char *code, int64_t room,
                      const char *command, const char *client_id, int done);
static int takes_answer(wrk_port_t *port, const char *channel);
static void send_mark(wrk_port_t *port, const char *channel);

/* ---- The outbox and the order locks ------------------------------------------ */

static void recover(wrk_port_t *port, const int64_t *rooms, size_t n);

void wrk_port_order_lock(wrk_port_t *port, int64_t room)
{
    wrk_port_flush(port);
    wrk_order_lock(&port->order, room);
    recover(port, &room, 1);
}

void wrk_port_order_unlock(wrk_port_t *port, int64_t room)
{
    wrk_order_unlock(&port->order, room);
}

int wrk_port_post(wrk_port_t *port, int64_t room, int64_t user_id, const char *body,
                  size_t body_len, const char *name, const char *client_id, const char *sender)
{
    if ((name && strlen(name) > WRK_CLIENT_ID_MAX) ||
        (client_id && strlen(client_id) > WRK_CLIENT_ID_MAX))
        return MC_EINVAL;
    if (port->nout == WRK_OUTBOX_MAX)
        wrk_port_flush(port);
    char *copy = malloc(body_len + 1);
    if (!copy)
        return MC_ENOMEM;
    memcpy(copy, body, body_len);
    copy[body_len] = '\0';
    struct wrk_pending *p = &port->outbox[port->nout++];
    p->room = room;
    p->user_id = user_id;
    p->body = copy;
    p->body_len = body_len;
    copy_text(p->name, sizeof(p->name), name);
    copy_text(p->client_id, sizeof(p->client_id), client_id);
    copy_text(p->sender, sizeof(p->sender), sender);
    p->done = takes_answer(port, sender);
    return 0;
}

static void user_gone(wrk_port_t *port, const char *channel, int done);

/* Answers a message that was not stored: rc is what the store said. The
 * error is the answer the message would have been. */
static void answer_refused(wrk_port_t *port, const struct wrk_pending *p, int rc)
{
    if (rc == MC_ECLOSED)
        user_gone(port, p->sender, p->done);
    else
        send_error(port, p->sender,
                   rc == MC_ENOTFOUND ? MC_ERROR_ROOM_INVALID
                   : rc == MC_EDENIED ? MC_ERROR_ROOM_ACCESS_DENIED
                                      : MC_ERROR_SERVER_BUSY,
                   p->room, "send", p->client_id, p->done);
}

/* The envelope that publishes stored message m to its room: text for
 * every member, and for the sender (own, may be NULL) the same with
 * "own":true, marked done when it answers the sender's websocket.receive. */
static int room_message(const wrk_message_t *m, const char *own, int done, char **data, size_t *len)
{
    char *text;
    int rc = wrk_reply_message(m, 0, &text);
    if (rc)
        return rc;
    mc_envelope_t env = {
        .type = MC_ENV_WS_SEND, .body = text, .body_len = strlen(text), .own = own, .done = done};
    rc = mc_envelope_encode(&env, data, len);
    free(text);
    return rc;
}

/* A stored message to publish, the connection that sent it ("" or NULL:
 * none known), and whether it answers that connection's websocket.receive. */
typedef struct publishable {
    const wrk_message_t *m;
    const char *sender;
    int done;
} publishable_t;

/* Publishes msgs[0..n) to their rooms in this order, each with its id as
 * its seq (so that one published before delivers nothing: chl.h, and
 * wrk_port_room_add), WRK_OUTBOX_MAX to a round trip. Returns 0 or the
 * first failure (logged); a message that cannot be encoded is left out
 * (logged). */
static int publish(wrk_port_t *port, const publishable_t *msgs, size_t n)
{
    int failed = 0;
    for (size_t from = 0; from < n; from += WRK_OUTBOX_MAX) {
        wrk_outgoing_t out[WRK_OUTBOX_MAX];
        char groups[WRK_OUTBOX_MAX][MC_GROUP_NAME_MAX];
        char *data[WRK_OUTBOX_MAX];
        size_t k = 0;
        for (size_t i = from; i < n && i < from + WRK_OUTBOX_MAX; i++) {
            const char *own = msgs[i].sender && msgs[i].sender[0] ? msgs[i].sender : NULL;
            int rc = room_message(msgs[i].m, own, msgs[i].done, &data[k], &out[k].len);
            if (rc) {
                mc_error("worker: cannot encode message %lld: %s", (long long)msgs[i].m->id,
                         mc_strerror(rc));
                continue;
            }
            mc_group_room(groups[k], msgs[i].m->room_id);
            out[k] =
                (wrk_outgoing_t){groups[k], NULL, data[k], out[k].len, (uint64_t)msgs[i].m->id};
            k++;
        }
        int rc = k ? port->sink.group_send(port->sink.ctx, out, k) : 0;
        if (rc && !failed) {
            mc_warn("worker: publishing %zu message(s): %s", k, mc_strerror(rc));
            failed = rc;
        }
        for (size_t i = 0; i < k; i++)
            free(data[i]);
    }
    return failed;
}

/* Publishes what an earlier holder of rooms[0..n)'s order locks stored and
 * left unpublished, before anything newer of them; holding the locks. */
static void recover(wrk_port_t *port, const int64_t *rooms, size_t n)
{
    wrk_unpublished_list_t l;
    if (wrk_store_unpublished(port->store, rooms, n, &l) != 0) {
        mc_warn("worker: unpublished messages: %s", wrk_store_errmsg(port->store));
        return;
    }
    if (l.n) {
        publishable_t msgs[WRK_STORE_SINCE_MAX];
        for (size_t i = 0; i < l.n; i++)
            msgs[i] = (publishable_t){&l.items[i].m, l.items[i].sender, 0};
        mc_info("worker: publishing %zu message(s) another worker stored and left", l.n);
        if (publish(port, msgs, l.n) == 0)
            wrk_store_published(port->store, rooms, n);
    }
    wrk_unpublished_list_clear(&l);
}

void wrk_port_flush(wrk_port_t *port)
{
    size_t n = port->nout;
    if (n == 0)
        return;
    port->nout = 0; /* what this sends (errors) comes after, not before */
    int64_t rooms[WRK_OUTBOX_MAX];
    wrk_new_message_t m[WRK_OUTBOX_MAX];
    for (size_t i = 0; i < n; i++) {
        const struct wrk_pending *p = &port->outbox[i];
        rooms[i] = p->room;
        m[i] = (wrk_new_message_t){.room_id = p->room,
                                   .user_id = p->user_id,
                                   .body = p->body,
                                   .body_len = p->body_len,
                                   .client_id = p->name[0] ? p->name : NULL,
                                   .sender = p->sender};
    }
    wrk_order_lock_rooms(&port->order, rooms, n);
    /* One transaction stores the messages and marks their rooms; it reads
     * what an earlier batch left unpublished there, which goes first. */
    wrk_unpublished_list_t stale;
    int rc = wrk_store_messages_add(port->store, m, n, mc_now_ms(), &stale);
    if (rc)
        mc_error("worker: storing %zu message(s): %s", n, wrk_store_errmsg(port->store));
    publishable_t msgs[WRK_STORE_SINCE_MAX + WRK_OUTBOX_MAX];
    size_t k = 0;
    for (size_t i = 0; i < stale.n; i++)
        msgs[k++] = (publishable_t){&stale.items[i].m, stale.items[i].sender, 0};
    /* A replayed message (a duplicate) too: its name lets it through only
     * if it never was, so its answer goes apart. */
    for (size_t i = 0; i < n; i++)
        if (m[i].rc == 0)
            msgs[k++] = (publishable_t){&m[i].stored, port->outbox[i].sender,
                                        port->outbox[i].done && !m[i].duplicate};
    if (rc == 0 && publish(port, msgs, k) == 0)
        wrk_store_published(port->store, rooms, n);
    wrk_order_unlock_all(&port->order);
    wrk_unpublished_list_clear(&stale);
    for (size_t i = 0; i < n; i++) {
        if (m[i].rc)
            answer_refused(port, &port->outbox[i], m[i].rc);
        else if (port->outbox[i].done && m[i].duplicate)
            send_mark(port, port->outbox[i].sender);
        wrk_message_clear(&m[i].stored);
        free(port->outbox[i].body);
        port->outbox[i].body = NULL;
    }
}

/* USER_HAS_TO_LOGIN, marked done as given, and the close. */
static void user_gone(wrk_port_t *port, const char *channel, int done)
{
    send_error(port, channel, MC_ERROR_USER_HAS_TO_LOGIN, 0, NULL, NULL, done);
    wrk_port_send_close(port, channel, MC_CLOSE_SESSION_ENDED);
}

void wrk_port_user_gone(wrk_port_t *port, const char *channel)
{
    user_gone(port, channel, 0);
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
        wrk_outgoing_t msg = {to, once, data, len, 0};
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
    copy_text(port->answer_to, sizeof(port->answer_to), channel);
    port->answered = 0;
}

/* The "done" mark alone (an empty text: no frame) to channel. */
static void send_mark(wrk_port_t *port, const char *channel)
{
    mc_envelope_t mark = {.type = MC_ENV_WS_SEND, .body = "", .done = 1};
    emit(port, channel, 0, NULL, &mark);
}

void wrk_port_answer_end(wrk_port_t *port)
{
    if (port->answer_to[0] && !port->answered) {
        port->answered = 1;
        send_mark(port, port->answer_to);
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
    return port->sink.group_add(port->sink.ctx, group, channel, 0);
}

int wrk_port_room_add(wrk_port_t *port, int64_t room, const char *channel)
{
    wrk_port_flush(port);
    int64_t last = 0;
    if (wrk_store_published_last(port->store, room, &last) != 0) /* a replay may reach it twice */
        mc_warn("worker: room %" PRId64 "'s last message: %s", room, wrk_store_errmsg(port->store));
    char group[MC_GROUP_NAME_MAX];
    mc_group_room(group, room);
    return port->sink.group_add(port->sink.ctx, group, channel, (uint64_t)last);
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
