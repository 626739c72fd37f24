/*
 * worker/consumer.c: the chat's WebSocket commands (worker/consumer.h):
 * accepting a socket, each command of a frame, a socket's departure.
 */
#include "worker/consumer.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/json_out.h"
#include "common/log.h"
#include "worker/command.h"
#include "worker/port.h"
#include "worker/session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether the envelope says the socket is in room's group. */
static int joined(const mc_envelope_t *env, int64_t room)
{
    char group[MC_GROUP_NAME_MAX];
    mc_group_room(group, room);
    for (size_t i = 0; i < env->ngroups; i++)
        if (strcmp(env->groups[i], group) == 0)
            return 1;
    return 0;
}

/* How many rooms the envelope says the socket is in. */
static long rooms_joined(const mc_envelope_t *env)
{
    long n = 0;
    for (size_t i = 0; i < env->ngroups; i++)
        n += mc_group_is_room(env->groups[i]);
    return n;
}

/* Sends text (encoded with rc) to the socket and frees it. Returns 0 once
 * it went out. Otherwise no answer is lost in silence: the client is told
 * SERVER_BUSY, with the room and command, and the failure is returned
 * (MC_ENOMEM or MC_ETOOBIG from the encoder; MC_ETOOBIG, MC_EFULL or
 * MC_EREDIS from the channel layer). */
static int reply(wrk_app_t *app, const char *channel, char *text, int rc, const wrk_command_t *c)
{
    if (rc == 0 && text)
        rc = wrk_port_send_text(&app->port, channel, text);
    else if (rc == 0)
        rc = MC_ENOMEM;
    free(text);
    if (rc)
        wrk_port_send_error(&app->port, channel, MC_ERROR_SERVER_BUSY, c->has_room ? c->room : 0,
                            c->name, c->client_id);
    return rc;
}

/* Answers command c with the error code, naming what it answers: its
 * room, its name and its client_id. */
static void refuse(wrk_app_t *app, const mc_envelope_t *env, const wrk_command_t *c,
                   const char *code)
{
    wrk_port_send_error(&app->port, env->reply, code, c->has_room ? c->room : 0, c->name,
                        c->client_id);
}

/* What a command that was answered, if with an error, returns: only a
 * failure of memory is the worker's own (worker/dispatch.h). */
static int answered(int rc)
{
    return rc == MC_ENOMEM ? rc : 0;
}

int wrk_consumer_connect(wrk_app_t *app, const mc_envelope_t *env)
{
    /* The session first: a handshake without a valid one is refused and
     * costs nobody's quota, so that made-up cookies from one address do
     * not lock out the users who share it (behind one proxy or NAT). */
    wrk_user_t u;
    int64_t session;
    int rc = wrk_session_user(app, env, &u, &session);
    if (rc) {
        wrk_port_send_close(&app->port, env->reply, MC_CLOSE_POLICY_VIOLATION);
        return rc == MC_ENOTFOUND ? 0 : rc;
    }
    /* New sockets per user, across every interface and worker; a refusal
     * closes before the accept (the interface answers 403). */
    char key[48];
    long refused;
    snprintf(key, sizeof(key), "conn:user-%lld", (long long)u.id);
    if (!wrk_port_rate_take(&app->port, key, app->cfg.rate_connects, app->cfg.rate_connect_burst,
                            &refused)) {
        wrk_metrics_count(&app->metrics, WRK_M_RATE_LIMITED, "connects");
        if (refused == 1)
            mc_warn("worker: too many new sockets of %s (from %s); refusing", u.username,
                    env->client && *env->client ? env->client : "?");
        wrk_port_send_close(&app->port, env->reply, MC_CLOSE_POLICY_VIOLATION);
        return 0;
    }
    mc_envelope_t accept = {.type = MC_ENV_WS_ACCEPT, .has_scope = 1};
    accept.scope.user_id = u.id;
    accept.scope.is_staff = u.is_staff;
    snprintf(accept.scope.username, sizeof(accept.scope.username), "%s", u.username);
    rc = wrk_port_send(&app->port, env->reply, &accept);
    if (rc)
        return rc;
    char group[MC_GROUP_NAME_MAX];
    mc_group_user(group, u.id);
    wrk_port_group_add(&app->port, u.is_staff ? MC_GROUP_ROOMS_STAFF : MC_GROUP_ROOMS, env->reply);
    wrk_port_group_add(&app->port, group, env->reply);
    /* Named by the session's id, never its token: group names reach Redis. */
    mc_group_session(group, session);
    wrk_port_group_add(&app->port, group, env->reply);
    char *rooms;
    rc = wrk_port_rooms_text(&app->port, u.is_staff, &rooms);
    if (rc)
        return rc;
    rc = wrk_port_send_text(&app->port, env->reply, rooms);
    free(rooms);
    return rc;
}

/* The socket's user as the store has it now. When it is gone or no longer
 * active, the client is told (USER_HAS_TO_LOGIN, and a socket that had a
 * user closes: its session ended) and MC_ENOTFOUND returned; a failing
 * store is answered SERVER_BUSY. */
static int user_check(wrk_app_t *app, const mc_envelope_t *env, wrk_user_t *u)
{
    int rc = wrk_session_scope_user(app, env, u);
    if (rc == MC_ENOTFOUND && env->has_scope && env->scope.user_id > 0)
        wrk_port_user_gone(&app->port, env->reply);
    else if (rc)
        wrk_port_send_error(&app->port, env->reply,
                            rc == MC_ENOTFOUND ? MC_ERROR_USER_HAS_TO_LOGIN : MC_ERROR_SERVER_BUSY,
                            0, NULL, NULL);
    return rc;
}

/* Checks that the room exists and that u may be in it. Answers the error
 * itself and returns non-zero when not. */
static int room_for(wrk_app_t *app, const mc_envelope_t *env, const wrk_user_t *u,
                    const wrk_command_t *c, wrk_room_t *room)
{
    int rc = wrk_store_room_get(app->store, c->room, room);
    if (rc == MC_ENOTFOUND) {
        refuse(app, env, c, MC_ERROR_ROOM_INVALID);
        return rc;
    }
    if (rc) {
        refuse(app, env, c, MC_ERROR_SERVER_BUSY);
        return rc;
    }
    if (room->staff_only && !u->is_staff) {
        refuse(app, env, c, MC_ERROR_ROOM_ACCESS_DENIED);
        return MC_EDENIED;
    }
    return 0;
}

/* The distinct usernames present in a room, for "who" and join replies. */
typedef struct names {
    const char **v;
    size_t n;
    wrk_presence_list_t list;
} names_t;

static int room_names(wrk_app_t *app, int64_t room, names_t *out)
{
    memset(out, 0, sizeof(*out));
    int rc = wrk_store_presence_list(app->store, room, &out->list);
    if (rc)
        return rc;
    out->v = calloc(out->list.n + 1, sizeof(*out->v));
    if (!out->v) {
        wrk_presence_list_clear(&out->list);
        return MC_ENOMEM;
    }
    for (size_t i = 0; i < out->list.n; i++) {
        const char *name = out->list.items[i].username;
        if (out->n == 0 || strcmp(out->v[out->n - 1], name) != 0)
            out->v[out->n++] = name;
    }
    return 0;
}

static void names_clear(names_t *n)
{
    free(n->v);
    wrk_presence_list_clear(&n->list);
}

static int do_join(wrk_app_t *app, const mc_envelope_t *env, const wrk_user_t *u,
                   const wrk_command_t *c)
{
    wrk_room_t room;
    if (room_for(app, env, u, c, &room))
        return 0;
    /* The interface carries a socket's groups in each envelope, up to a
     * fixed number: a socket in more rooms would lose some in silence. */
    int was_in = joined(env, c->room);
    if (!was_in && rooms_joined(env) >= app->cfg.socket_rooms) {
        refuse(app, env, c, MC_ERROR_TOO_MANY_ROOMS);
        return 0;
    }
    char group[MC_GROUP_NAME_MAX];
    mc_group_room(group, c->room);
    /* Under the order lock, every message is either published before the
     * socket is in the group and read as history, or published after it
     * and not read: never both, never neither. */
    wrk_port_order_lock(&app->port, c->room);
    int rc = wrk_port_room_add(&app->port, c->room, env->reply);
    if (rc) {
        wrk_port_order_unlock(&app->port, c->room);
        refuse(app, env, c, MC_ERROR_SERVER_BUSY);
        return rc;
    }
    /* A user with several sockets in the room counts once: the room hears
     * of the first only. */
    int first = 0;
    wrk_store_presence_join(app->store, env->reply, c->room, u->id, &first);
    wrk_message_list_t history;
    rc = c->has_since ? wrk_store_messages_since(app->store, c->room, c->since, WRK_STORE_SINCE_MAX,
                                                 &history)
                      : wrk_store_messages_last(app->store, c->room, WRK_HISTORY_DEFAULT, &history);
    wrk_port_order_unlock(&app->port, c->room);
    if (rc == 0 && !c->has_since)
        history.truncated = 0; /* "the last 50" is no cut */
    names_t names = {0};
    char *text = NULL;
    if (rc == 0)
        rc = room_names(app, c->room, &names);
    if (rc == 0)
        rc = wrk_reply_join(c->room, room.title, &history, names.v, names.n, WRK_REPLY_BUDGET,
                            &text);
    wrk_message_list_clear(&history);
    names_clear(&names);
    rc = reply(app, env->reply, text, rc, c);
    if (rc) {
        /* The client was told the join failed: it is not in the room, for
         * the room either (unless it was already). */
        if (!was_in) {
            wrk_port_group_discard(&app->port, group, env->reply);
            wrk_store_presence_remove(app->store, env->reply, c->room);
        }
        return answered(rc);
    }
    if (first)
        wrk_port_notice(&app->port, c->room, u->username, MC_MSG_ENTER, env->reply);
    return 0;
}

static int do_leave(wrk_app_t *app, const mc_envelope_t *env, const wrk_user_t *u,
                    const wrk_command_t *c)
{
    if (!joined(env, c->room)) {
        wrk_room_t room;
        int rc = wrk_store_room_get(app->store, c->room, &room);
        if (rc == MC_ENOTFOUND) {
            refuse(app, env, c, MC_ERROR_ROOM_INVALID);
            return 0;
        }
    } else {
        /* As the example does: the room, the leaver included, hears of it
         * before the leaver is taken out of the group; but only when this
         * was the user's last socket in the room. */
        wrk_presence_list_t gone;
        if (wrk_store_presence_leave(app->store, env->reply, 0, c->room, &gone) == 0 && gone.n)
            wrk_port_notice(&app->port, c->room, u->username, MC_MSG_LEAVE, NULL);
        wrk_presence_list_clear(&gone);
        char group[MC_GROUP_NAME_MAX];
        mc_group_room(group, c->room);
        wrk_port_group_discard(&app->port, group, env->reply);
    }
    char *text = NULL;
    int rc = wrk_reply_leave(c->room, &text);
    return answered(reply(app, env->reply, text, rc, c));
}

/* The name a message is stored under, so that a send handled twice (its
 * first worker died before acknowledging it) is stored once: the client's
 * client_id, else the id the interface gave the envelope; of a long one,
 * its last WRK_CLIENT_ID_MAX bytes, where what makes it unique is (the
 * process's pid and random part, and the counter). */
static const char *dedupe_name(const mc_envelope_t *env, const wrk_command_t *c)
{
    if (c->client_id[0])
        return c->client_id;
    if (!env->id || !env->id[0])
        return NULL;
    size_t n = strlen(env->id);
    return n > WRK_CLIENT_ID_MAX ? env->id + n - WRK_CLIENT_ID_MAX : env->id;
}

static int do_send(wrk_app_t *app, const mc_envelope_t *env, const wrk_user_t *u,
                   const wrk_command_t *c)
{
    if (!joined(env, c->room)) {
        wrk_room_t room;
        if (room_for(app, env, u, c, &room) == 0)
            refuse(app, env, c, MC_ERROR_ROOM_ACCESS_DENIED);
        return 0;
    }
    /* Stored with the batch's other messages, under the room's order lock,
     * and published to the room: interfaces get a room's messages in the
     * order of their ids, whichever worker stored them. The store checks
     * the user and the room with the insert itself; the port answers a
     * refusal. */
    int rc = wrk_port_post(&app->port, c->room, u->id, c->message, c->message_len,
                           dedupe_name(env, c), c->client_id[0] ? c->client_id : NULL, env->reply);
    if (rc)
        refuse(app, env, c, MC_ERROR_SERVER_BUSY);
    return rc;
}

static int do_history(wrk_app_t *app, const mc_envelope_t *env, const wrk_user_t *u,
                      const wrk_command_t *c)
{
    wrk_room_t room;
    if (room_for(app, env, u, c, &room))
        return 0;
    wrk_message_list_t l;
    int rc = c->has_before ? wrk_store_messages_before(app->store, c->room, c->before, c->limit, &l)
                           : wrk_store_messages_last(app->store, c->room, c->limit, &l);
    char *text = NULL;
    if (rc == 0) {
        rc = wrk_reply_history(c->room, &l, WRK_REPLY_BUDGET, &text);
        wrk_message_list_clear(&l);
    }
    return answered(reply(app, env->reply, text, rc, c));
}

/* The event text of an edit, a deletion or a whisper, exactly once: the
 * socket whose command caused it gets own (which names the command's
 * client_id) directly, so that a command sent again after a reconnection
 * learns that it took effect; the other sockets of group get text by a
 * group send named once, which an envelope handled again or a command sent
 * again delivers nothing with. */
static void publish(wrk_app_t *app, const mc_envelope_t *env, const char *group, const char *once,
                    const char *text, const char *own)
{
    wrk_port_send_text(&app->port, env->reply, own);
    wrk_port_group_text_once(&app->port, group, once, text, env->reply);
}

/* An edit or deletion is idempotent: the text it sets is set again, a
 * message deleted stays so, and a deletion of a message deleted already
 * (by this command handled before, or by someone else) is answered as
 * done. Its event reaches the room once (publish): an edit's send is named
 * by its author and its client_id (or the envelope's id), a deletion's by
 * the message. */
static int do_edit_delete(wrk_app_t *app, const mc_envelope_t *env, const wrk_user_t *u,
                          const wrk_command_t *c)
{
    wrk_room_t room;
    if (room_for(app, env, u, c, &room))
        return 0;
    wrk_message_t m;
    int rc = wrk_store_message_get(app->store, c->id, &m);
    if (rc == 0 && (m.room_id != c->room || (m.deleted && c->kind == WRK_CMD_EDIT)))
        rc = MC_ENOTFOUND;
    int64_t author = m.user_id; /* zeroed or filled: either way safe */
    int deleted = m.deleted;
    wrk_message_clear(&m);
    if (rc) {
        refuse(app, env, c, rc == MC_ENOTFOUND ? MC_ERROR_MESSAGE_INVALID : MC_ERROR_SERVER_BUSY);
        return rc == MC_ENOTFOUND ? 0 : rc;
    }
    if (author != u->id && !u->is_staff) {
        refuse(app, env, c, MC_ERROR_NOT_ALLOWED);
        return 0;
    }
    char once[MC_ONCE_NAME_MAX];
    const char *key = dedupe_name(env, c);
    char *text = NULL, *own = NULL;
    if (c->kind == WRK_CMD_EDIT) {
        rc = wrk_store_message_edit(app->store, c->id, c->message, c->message_len, mc_now_ms());
        if (rc == 0)
            rc = wrk_store_message_get(app->store, c->id, &m);
        if (rc == 0) {
            rc = wrk_reply_edited(&m, NULL, &text);
            rc = rc ? rc : wrk_reply_edited(&m, c->client_id, &own);
            wrk_message_clear(&m);
        }
        mc_once_edit(once, c->id, u->id, key ? key : "");
    } else {
        rc = deleted ? 0 : wrk_store_message_delete(app->store, c->id);
        if (rc == MC_ENOTFOUND)
            rc = 0; /* deleted by someone else meanwhile: done all the same */
        rc = rc ? rc : wrk_reply_deleted(c->id, c->room, NULL, &text);
        rc = rc ? rc : wrk_reply_deleted(c->id, c->room, c->client_id, &own);
        mc_once_delete(once, c->id);
    }
    if (rc == 0) {
        char group[MC_GROUP_NAME_MAX];
        mc_group_room(group, c->room);
        /* Without a name (no client_id, an envelope without id) the send
         * cannot be told from another edit: it is not named. */
        publish(app, env, group, c->kind == WRK_CMD_EDIT && !key ? NULL : once, text, own);
    } else {
        refuse(app, env, c, rc == MC_ENOTFOUND ? MC_ERROR_MESSAGE_INVALID : MC_ERROR_SERVER_BUSY);
    }
    free(text);
    free(own);
    return rc == MC_ENOTFOUND || rc == 0 ? 0 : rc;
}

static int do_whisper(wrk_app_t *app, const mc_envelope_t *env, const wrk_user_t *u,
                      const wrk_command_t *c)
{
    wrk_user_t to;
    int rc = wrk_store_user_by_name(app->store, c->to, &to);
    if (rc == 0 && !to.is_active)
        rc = MC_ENOTFOUND;
    if (rc) {
        refuse(app, env, c, rc == MC_ENOTFOUND ? MC_ERROR_USER_INVALID : MC_ERROR_SERVER_BUSY);
        return rc == MC_ENOTFOUND ? 0 : rc;
    }
    /* Stored first: its id comes from the database, unique across workers,
     * and a user who is away gets it on reconnecting ("whispers"). Named as
     * a message is, it is stored once, and a whisper handled again is the
     * one stored, sent under the same names. */
    wrk_whisper_t w;
    int again = 0;
    rc = wrk_store_whisper_add(app->store, u->id, to.id, c->message, c->message_len,
                               dedupe_name(env, c), mc_now_ms(), &w, &again);
    /* A client_id used again for another recipient: the whisper stored
     * under it goes to its own recipient. */
    if (rc == 0 && again && strcmp(w.to, to.username) != 0)
        rc = wrk_store_user_by_name(app->store, w.to, &to);
    if (rc) {
        wrk_whisper_clear(&w);
        refuse(app, env, c, rc == MC_ENOTFOUND ? MC_ERROR_USER_INVALID : MC_ERROR_SERVER_BUSY);
        return rc == MC_ENOTFOUND ? 0 : rc;
    }
    char *text = NULL, *own = NULL;
    rc = wrk_reply_whisper(&w, NULL, &text);
    rc = rc ? rc : wrk_reply_whisper(&w, c->client_id, &own);
    int64_t id = w.id;
    wrk_whisper_clear(&w);
    if (rc) {
        free(text);
        return answered(reply(app, env->reply, own, rc, c));
    }
    /* Every socket of both users: the recipient's first. */
    char group[MC_GROUP_NAME_MAX], once[MC_ONCE_NAME_MAX];
    mc_group_user(group, to.id);
    mc_once_whisper(once, id, 0);
    publish(app, env, group, once, text, own);
    if (to.id != u->id) {
        mc_group_user(group, u->id);
        mc_once_whisper(once, id, 1);
        wrk_port_group_text_once(&app->port, group, once, text, env->reply);
    }
    free(text);
    free(own);
    return 0;
}

static int do_whispers(wrk_app_t *app, const mc_envelope_t *env, const wrk_user_t *u,
                       const wrk_command_t *c)
{
    wrk_whisper_list_t l;
    int rc = wrk_store_whispers_since(app->store, u->id, c->has_since ? c->since : 0,
                                      c->has_since ? WRK_STORE_SINCE_MAX : WRK_HISTORY_DEFAULT, &l);
    if (rc == 0 && !c->has_since)
        l.truncated = 0; /* "the last 50" is no cut */
    char *text = NULL;
    if (rc == 0) {
        rc = wrk_reply_whispers(&l, WRK_REPLY_BUDGET, &text);
        wrk_whisper_list_clear(&l);
    }
    return answered(reply(app, env->reply, text, rc, c));
}

static int do_who(wrk_app_t *app, const mc_envelope_t *env, const wrk_user_t *u,
                  const wrk_command_t *c)
{
    wrk_room_t room;
    if (room_for(app, env, u, c, &room))
        return 0;
    names_t names;
    char *text = NULL;
    int rc = room_names(app, c->room, &names);
    if (rc == 0) {
        rc = wrk_reply_who(c->room, names.v, names.n, &text);
        names_clear(&names);
    }
    return answered(reply(app, env->reply, text, rc, c));
}

int wrk_consumer_receive(wrk_app_t *app, const mc_envelope_t *env)
{
    wrk_command_t c;
    const char *code;
    int bad = wrk_command_parse(env->body ? env->body : "", env->body_len,
                                (size_t)app->cfg.message_max, &c, &code);
    wrk_user_t u;
    int rc = 0;
    if (!bad && c.kind == WRK_CMD_SEND && env->has_scope && env->scope.user_id > 0) {
        /* The busiest command checks its user with the insert that stores
         * the message (do_send): one query, not two. */
        memset(&u, 0, sizeof(u));
        u.id = env->scope.user_id;
        u.is_staff = env->scope.is_staff;
        u.is_active = 1;
        _Static_assert(sizeof(u.username) == sizeof(env->scope.username), "one username size");
        memcpy(u.username, env->scope.username, sizeof(u.username));
    } else {
        rc = user_check(app, env, &u);
    }
    if (rc) {
        wrk_command_clear(&c);
        return rc == MC_ENOTFOUND ? 0 : rc;
    }
    wrk_metrics_count(&app->metrics, WRK_M_COMMANDS, bad ? "invalid" : c.name);
    if (bad) {
        refuse(app, env, &c, code);
        wrk_command_clear(&c);
        return bad == MC_ENOMEM ? bad : 0;
    }
    if (c.kind == WRK_CMD_SEND || c.kind == WRK_CMD_EDIT || c.kind == WRK_CMD_DELETE ||
        c.kind == WRK_CMD_WHISPER) {
        /* Per user, across every socket, interface and worker. Nothing is
         * stored when refused; a client that keeps on is closed. */
        char key[48] = "msg:user-";
        long refused;
        mc_json_int_text(key + sizeof("msg:user-") - 1, u.id);
        if (!wrk_port_rate_take(&app->port, key, app->cfg.rate_messages, app->cfg.rate_burst,
                                &refused)) {
            wrk_metrics_count(&app->metrics, WRK_M_RATE_LIMITED, "messages");
            refuse(app, env, &c, MC_ERROR_RATE_LIMITED);
            if (app->cfg.rate_close_after > 0 && refused >= app->cfg.rate_close_after) {
                mc_info("worker: closing a socket of %s: still sending after %ld refusals",
                        u.username, refused);
                wrk_port_send_close(&app->port, env->reply, MC_CLOSE_POLICY_VIOLATION);
            }
            wrk_command_clear(&c);
            return 0;
        }
    }
    switch (c.kind) {
    case WRK_CMD_JOIN:
        rc = do_join(app, env, &u, &c);
        break;
    case WRK_CMD_LEAVE:
        rc = do_leave(app, env, &u, &c);
        break;
    case WRK_CMD_SEND:
        rc = do_send(app, env, &u, &c);
        break;
    case WRK_CMD_HISTORY:
        rc = do_history(app, env, &u, &c);
        break;
    case WRK_CMD_EDIT:
    case WRK_CMD_DELETE:
        rc = do_edit_delete(app, env, &u, &c);
        break;
    case WRK_CMD_WHISPER:
        rc = do_whisper(app, env, &u, &c);
        break;
    case WRK_CMD_WHO:
        rc = do_who(app, env, &u, &c);
        break;
    case WRK_CMD_WHISPERS:
        rc = do_whispers(app, env, &u, &c);
        break;
    }
    wrk_command_clear(&c);
    return rc;
}

int wrk_consumer_disconnect(wrk_app_t *app, const mc_envelope_t *env)
{
    for (size_t i = 0; i < env->ngroups; i++)
        wrk_port_group_discard(&app->port, env->groups[i], env->reply);
    wrk_presence_list_t gone;
    int rc = wrk_store_presence_leave(app->store, env->reply, 0, 0, &gone);
    if (rc)
        return rc;
    for (size_t i = 0; i < gone.n; i++)
        wrk_port_notice(&app->port, gone.items[i].room_id, gone.items[i].username, MC_MSG_LEAVE,
                        NULL);
    wrk_presence_list_clear(&gone);
    return 0;
}