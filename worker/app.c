#include "worker/app.h"
#include "common/error.h"
#include "common/log.h"
#include "common/clock.h"
#include "worker/command.h"
#include "worker/consumer.h"
#include "worker/views.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void wrk_settings_defaults(wrk_settings_t *s)
{
    memset(s, 0, sizeof(*s));
    s->message_max = WRK_MESSAGE_MAX_DEFAULT;
    s->notify_enter_leave = 1;
    s->session_ttl_s = 14 * 24 * 3600;
    s->web_root = "web";
    s->login_max_failures = 5;
    s->login_window_s = 900;
    s->argon2_m = WRK_PASSWORD_DEFAULT_M_KIB;
    s->argon2_t = WRK_PASSWORD_DEFAULT_T;
    s->argon2_p = WRK_PASSWORD_DEFAULT_P;
    s->rate_messages = 5;
    s->rate_burst = 20;
    s->rate_close_after = 20;
    s->rate_connects = 20;
    s->rate_connect_burst = 60;
}

int wrk_app_init(wrk_app_t *app, const wrk_settings_t *cfg, const char *db_path,
                 const wrk_sink_t *sink)
{
    memset(app, 0, sizeof(*app));
    app->order_fd = -1;
    app->cfg = *cfg;
    app->sink = *sink;
    int rc = wrk_password_init(&app->pw, (uint32_t)cfg->argon2_m, (uint32_t)cfg->argon2_t,
                               (uint32_t)cfg->argon2_p);
    if (rc) {
        mc_error("worker: argon2 parameters refused: %s", mc_strerror(rc));
        return rc;
    }
    rc = wrk_store_open(&app->store, db_path, NULL);
    if (rc)
        return rc;
    /* The order locks live beside a sqlite file, for the workers of its host. */
    if (strcmp(db_path, ":memory:") != 0 && strcmp(wrk_store_backend(app->store), "sqlite") == 0) {
        char lock[4096];
        if (snprintf(lock, sizeof(lock), "%s-order.lock", db_path) >= (int)sizeof(lock) ||
            (app->order_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
            mc_error("worker: cannot open the order lock %s: %s", lock, strerror(errno));
            wrk_app_close(app);
            return MC_EDB;
        }
    }
    int from = 0, to = 0;
    rc = wrk_store_migrate(app->store, &from, &to);
    if (rc) {
        mc_error("worker: migrating the database: %s", wrk_store_errmsg(app->store));
        wrk_app_close(app);
        return rc;
    }
    return 0;
}

void wrk_app_close(wrk_app_t *app)
{
    wrk_app_flush(app);
    wrk_store_close(app->store);
    app->store = NULL;
    if (app->order_fd >= 0)
        close(app->order_fd);
    app->order_fd = -1;
}

/* Byte <room> of the lock file stands for the room: open-file-description
 * locks (fcntl(2)) on it serialise the workers of one database per room, so
 * rooms never wait on each other, and the kernel drops a dead worker's. */
/* Returns 0, or -1 when wait is 0 and another worker holds the lock. */
static int order_range(wrk_app_t *app, int64_t room, short type, int wait)
{
    if (app->order_fd < 0 || room < 0)
        return 0;
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = (off_t)room, .l_len = 1};
    while (fcntl(app->order_fd, wait && type != F_UNLCK ? F_OFD_SETLKW : F_OFD_SETLK, &fl) != 0) {
        if (!wait && (errno == EAGAIN || errno == EACCES))
            return -1;
        if (errno != EINTR) {
            mc_warn("worker: order lock of room %" PRId64 ": %s", room, strerror(errno));
            return 0;
        }
    }
    return 0;
}

static int outbox_holds(const wrk_app_t *app, int64_t room)
{
    for (size_t i = 0; i < app->nout; i++)
        if (app->outbox[i].room == room)
            return 1;
    return 0;
}

void wrk__order_lock(wrk_app_t *app, int64_t room)
{
    wrk_app_flush(app);
    order_range(app, room, F_WRLCK, 1);
}

void wrk__order_lock_send(wrk_app_t *app, int64_t room)
{
    if (app->nout == WRK_OUTBOX_MAX)
        wrk_app_flush(app);
    if (outbox_holds(app, room))
        return;
    if (app->nout && order_range(app, room, F_WRLCK, 0) == 0)
        return;
    wrk_app_flush(app);
    order_range(app, room, F_WRLCK, 1);
}

void wrk__order_unlock(wrk_app_t *app, int64_t room)
{
    if (!outbox_holds(app, room)) /* else the outbox releases it once published */
        order_range(app, room, F_UNLCK, 0);
}

int wrk__outbox_begin(wrk_app_t *app)
{
    if (app->in_tx)
        return 0;
    int rc = wrk_store_batch_begin(app->store);
    app->in_tx = rc == 0;
    return rc;
}

/* Empties the outbox: releases its rooms' order locks and frees the
 * messages (the other fields of outbox[0..n) stay readable). */
static void outbox_clear(wrk_app_t *app)
{
    size_t n = app->nout;
    app->nout = 0; /* else wrk__order_unlock would leave the rooms locked */
    for (size_t i = 0; i < n; i++) {
        order_range(app, app->outbox[i].room, F_UNLCK, 0);
        free(app->outbox[i].data);
        app->outbox[i].data = NULL;
    }
}

void wrk_app_flush(wrk_app_t *app)
{
    int stored = 1;
    if (app->in_tx) {
        app->in_tx = 0;
        if (wrk_store_batch_end(app->store, 1) != 0) {
            mc_error("worker: storing %zu message(s): %s", app->nout, wrk_store_errmsg(app->store));
            stored = 0;
        }
    }
    if (app->nout == 0)
        return;
    if (!stored) {
        /* Nothing of the batch is kept: tell each sender, publish nothing. */
        size_t n = app->nout;
        outbox_clear(app);
        for (size_t i = 0; i < n; i++)
            wrk__send_error(app, app->outbox[i].sender, MC_ERROR_SERVER_BUSY, app->outbox[i].room,
                            "send");
        return;
    }
    wrk_outgoing_t msgs[WRK_OUTBOX_MAX];
    for (size_t i = 0; i < app->nout; i++)
        msgs[i] = (wrk_outgoing_t){app->outbox[i].group, app->outbox[i].once, app->outbox[i].data,
                                   app->outbox[i].len};
    int rc = app->sink.group_send(app->sink.ctx, msgs, app->nout);
    if (rc)
        mc_warn("worker: publishing %zu message(s): %s", app->nout, mc_strerror(rc));
    outbox_clear(app);
}

/* ---- Output ---------------------------------------------------------------- */

static int encode(const mc_envelope_t *env, char **out, size_t *len)
{
    int rc = mc_envelope_encode(env, out, len);
    if (rc)
        mc_error("worker: cannot encode %s: %s", mc_envelope_type_name(env->type), mc_strerror(rc));
    return rc;
}

/* Sends env to one connection, or (to_group) to a group, after the outbox. */
static int emit(wrk_app_t *app, const char *to, int to_group, const mc_envelope_t *env)
{
    wrk_app_flush(app);
    char *data;
    size_t len;
    int rc = encode(env, &data, &len);
    if (rc)
        return rc;
    if (to_group) {
        wrk_outgoing_t msg = {to, NULL, data, len};
        rc = app->sink.group_send(app->sink.ctx, &msg, 1);
    } else {
        rc = app->sink.send(app->sink.ctx, to, data, len);
    }
    if (rc && to_group)
        mc_warn("worker: group_send %s: %s", to, mc_strerror(rc));
    else if (rc)
        mc_warn("worker: send %s: %s", mc_envelope_type_name(env->type), mc_strerror(rc));
    free(data);
    return rc;
}

int wrk__send_text(wrk_app_t *app, const char *channel, const char *text)
{
    mc_envelope_t env = {.type = MC_ENV_WS_SEND, .body = text, .body_len = strlen(text)};
    return emit(app, channel, 0, &env);
}

int wrk__group_text(wrk_app_t *app, const char *group, const char *text, const char *except)
{
    mc_envelope_t env = {
        .type = MC_ENV_WS_SEND, .body = text, .body_len = strlen(text), .except = except};
    return emit(app, group, 1, &env);
}

int wrk__group_message(wrk_app_t *app, int64_t room, int64_t id, const char *text, const char *own)
{
    mc_envelope_t env = {
        .type = MC_ENV_WS_SEND, .body = text, .body_len = strlen(text), .own = own};
    if (app->nout == WRK_OUTBOX_MAX) /* wrk__order_lock_send made room: not reached */
        return MC_EFULL;
    char *data;
    size_t len;
    int rc = encode(&env, &data, &len);
    if (rc)
        return rc;
    struct wrk_pending *o = &app->outbox[app->nout++];
    mc_group_room(o->group, room);
    snprintf(o->once, sizeof(o->once), "msg-%" PRId64, id);
    snprintf(o->sender, sizeof(o->sender), "%s", own);
    o->data = data;
    o->len = len;
    o->room = room;
    return 0;
}

int wrk__send_data(wrk_app_t *app, const char *channel, const char *data, size_t len)
{
    wrk_app_flush(app);
    return app->sink.send(app->sink.ctx, channel, data, len);
}

int wrk__group_add(wrk_app_t *app, const char *group, const char *channel)
{
    wrk_app_flush(app);
    return app->sink.group_add(app->sink.ctx, group, channel);
}

int wrk__group_discard(wrk_app_t *app, const char *group, const char *channel)
{
    wrk_app_flush(app);
    return app->sink.group_discard(app->sink.ctx, group, channel);
}

int wrk__send_close(wrk_app_t *app, const char *channel, int code)
{
    mc_envelope_t env = {.type = MC_ENV_WS_CLOSE, .code = code};
    return emit(app, channel, 0, &env);
}

int wrk__group_close(wrk_app_t *app, const char *group, int code)
{
    mc_envelope_t env = {.type = MC_ENV_WS_CLOSE, .code = code};
    return emit(app, group, 1, &env);
}

int wrk__send_error(wrk_app_t *app, const char *channel, const char *code, int64_t room,
                    const char *command)
{
    char *text;
    int rc = wrk_reply_error(code, room, command, &text);
    if (rc)
        return rc;
    rc = wrk__send_text(app, channel, text);
    free(text);
    return rc;
}

void wrk__notice(wrk_app_t *app, int64_t room, const char *username, int msg_type,
                 const char *except)
{
    if (!app->cfg.notify_enter_leave)
        return;
    char group[MC_GROUP_NAME_MAX], *text;
    mc_group_room(group, room);
    if (wrk_reply_notice(room, username, (enum wrk_msg_type)msg_type, &text) == 0) {
        wrk__group_text(app, group, text, except);
        free(text);
    }
}

int wrk__rate_take(wrk_app_t *app, const char *key, long rate, long burst, long *refused)
{
    *refused = 0;
    if (!app->sink.rate_take || rate <= 0)
        return 1;
    int allowed = 1;
    int rc = app->sink.rate_take(app->sink.ctx, key, (double)rate, burst > 0 ? burst : 1, &allowed,
                                 refused);
    if (rc) {
        /* Redis is away: the chat goes on unlimited rather than stopping. */
        mc_warn("worker: rate limit %s: %s", key, mc_strerror(rc));
        return 1;
    }
    return allowed;
}

/* ---- Room lists -------------------------------------------------------------- */

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

int wrk__rooms_text(wrk_app_t *app, int is_staff, char **out)
{
    room_vec_t v = {.is_staff = is_staff};
    int rc = wrk_store_room_each(app->store, collect_room, &v);
    if (rc == 0)
        rc = wrk_reply_rooms(v.items, v.n, out);
    free(v.items);
    return rc;
}

/* ---- Dispatch ---------------------------------------------------------------- */

int wrk_app_handle(wrk_app_t *app, const char *data, size_t len)
{
    mc_envelope_t env;
    int rc = mc_envelope_decode(&env, data, len);
    if (rc) {
        mc_warn("worker: dropped an envelope that does not decode (%zu bytes): %s", len,
                mc_strerror(rc));
        return MC_EINVAL;
    }
    switch (env.type) {
    case MC_ENV_HTTP_REQUEST:
        rc = wrk_views_request(app, &env);
        break;
    case MC_ENV_WS_CONNECT:
        rc = wrk_consumer_connect(app, &env);
        break;
    case MC_ENV_WS_RECEIVE:
        rc = wrk_consumer_receive(app, &env);
        break;
    case MC_ENV_WS_DISCONNECT:
        rc = wrk_consumer_disconnect(app, &env);
        break;
    default:
        mc_warn("worker: dropped a %s envelope, which workers do not handle",
                mc_envelope_type_name(env.type));
        rc = MC_EINVAL;
        break;
    }
    mc_envelope_clear(&env);
    return rc;
}

/* ---- Changes made anywhere --------------------------------------------------- */

typedef struct change_set {
    int rooms_changed;
    int64_t rooms[64]; /* rooms whose members must be checked */
    size_t nrooms;
    int all_rooms;                       /* more than fit above: check every presence */
    char closes[128][MC_GROUP_NAME_MAX]; /* groups whose sockets close: user-<id>, session-<id> */
    size_t ncloses;
} change_set_t;

static int note_change(void *arg, int64_t seq, enum wrk_change_kind kind, int64_t ref)
{
    change_set_t *c = arg;
    (void)seq;
    char group[sizeof(c->closes[0])];
    if (kind == WRK_CHANGE_ROOM) {
        c->rooms_changed = 1;
        if (c->nrooms < sizeof(c->rooms) / sizeof(c->rooms[0]))
            c->rooms[c->nrooms++] = ref;
        else
            c->all_rooms = 1;
        return 0;
    }
    /* A logout logged by an earlier version names no session: all the
     * user's sockets close, as they did then. */
    if (kind == WRK_CHANGE_USER || kind == WRK_CHANGE_LOGOUT)
        mc_group_user(group, ref);
    else if (kind == WRK_CHANGE_SESSION)
        mc_group_session(group, ref);
    else
        return 0; /* a kind from a later version */
    for (size_t i = 0; i < c->ncloses; i++)
        if (strcmp(c->closes[i], group) == 0)
            return 0;
    if (c->ncloses < sizeof(c->closes) / sizeof(c->closes[0]))
        strcpy(c->closes[c->ncloses++], group);
    else
        mc_warn("worker: too many user and session changes at once; some sockets stay open");
    return 0;
}

/* Takes the connections out of a room they may no longer be in: the room is
 * gone, or staff-only and they are not staff. */
static void check_room_members(wrk_app_t *app, int64_t room_id)
{
    wrk_room_t room;
    int rc = wrk_store_room_get(app->store, room_id, &room);
    if (rc && rc != MC_ENOTFOUND)
        return;
    int gone = rc == MC_ENOTFOUND;
    wrk_presence_list_t l;
    if (wrk_store_presence_list(app->store, room_id, &l))
        return;
    char group[MC_GROUP_NAME_MAX], *leave = NULL;
    mc_group_room(group, room_id);
    if (wrk_reply_leave(room_id, &leave) == 0) {
        for (size_t i = 0; i < l.n; i++) {
            if (!gone && (!room.staff_only || l.items[i].is_staff))
                continue;
            app->sink.group_discard(app->sink.ctx, group, l.items[i].channel);
            wrk__send_text(app, l.items[i].channel, leave);
            /* Those still allowed in hear of the last socket of a user. */
            wrk_presence_list_t left;
            if (wrk_store_presence_leave(app->store, l.items[i].channel, 0, room_id, &left) == 0 &&
                left.n && !gone)
                wrk__notice(app, room_id, left.items[0].username, WRK_MSG_LEAVE, NULL);
            wrk_presence_list_clear(&left);
        }
    }
    free(leave);
    wrk_presence_list_clear(&l);
}

int wrk_app_poll_changes(wrk_app_t *app)
{
    int64_t from, to;
    int rc = wrk_store_change_claim(app->store, &from, &to);
    if (rc || to == from)
        return rc;
    change_set_t c;
    memset(&c, 0, sizeof(c));
    rc = wrk_store_change_each(app->store, from, note_change, &c);
    if (rc)
        return rc;
    if (c.rooms_changed) {
        char *text;
        if (wrk__rooms_text(app, 0, &text) == 0) {
            wrk__group_text(app, MC_GROUP_ROOMS, text, NULL);
            free(text);
        }
        if (wrk__rooms_text(app, 1, &text) == 0) {
            wrk__group_text(app, MC_GROUP_ROOMS_STAFF, text, NULL);
            free(text);
        }
        if (c.all_rooms) {
            wrk_presence_list_t l;
            if (wrk_store_presence_list(app->store, 0, &l) == 0) {
                for (size_t i = 0; i < l.n; i++)
                    if (i == 0 || l.items[i].room_id != l.items[i - 1].room_id)
                        check_room_members(app, l.items[i].room_id);
                wrk_presence_list_clear(&l);
            }
        } else {
            for (size_t i = 0; i < c.nrooms; i++)
                check_room_members(app, c.rooms[i]);
        }
    }
    /* A session that logged out: close its sockets (Django ends one session,
     * not the user's others). A user deactivated or whose staff flag changed:
     * close all the user's sockets. The client reconnects (or not) with a
     * fresh scope. */
    for (size_t i = 0; i < c.ncloses; i++)
        wrk__group_close(app, c.closes[i], MC_CLOSE_POLICY_VIOLATION);
    return 0;
}

int wrk_app_process_gone(wrk_app_t *app, const char *process)
{
    char prefix[160];
    int n = snprintf(prefix, sizeof(prefix), "%s!", process);
    if (n < 2 || (size_t)n >= sizeof(prefix))
        return MC_EINVAL;
    wrk_presence_list_t gone;
    int rc = wrk_store_presence_leave(app->store, prefix, 1, 0, &gone);
    if (rc)
        return rc;
    for (size_t i = 0; i < gone.n; i++)
        wrk__notice(app, gone.items[i].room_id, gone.items[i].username, WRK_MSG_LEAVE, NULL);
    if (gone.n)
        mc_info("worker: %s is gone: %zu departure(s) from rooms", process, gone.n);
    wrk_presence_list_clear(&gone);
    return 0;
}
