/*
 * worker/changes.c: what the worker does about changes made elsewhere
 * (worker/changes.h): it reads the store's change log and tells the
 * sockets concerned through the port.
 */
#include "worker/changes.h"
#include "common/error.h"
#include "common/log.h"
#include "worker/command.h"
#include "worker/port.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
            wrk_port_group_discard(&app->port, group, l.items[i].channel);
            wrk_port_send_text(&app->port, l.items[i].channel, leave);
            /* Those still allowed in hear of the last socket of a user. */
            wrk_presence_list_t left;
            if (wrk_store_presence_leave(app->store, l.items[i].channel, 0, room_id, &left) == 0 &&
                left.n && !gone)
                wrk_port_notice(&app->port, room_id, left.items[0].username, MC_MSG_LEAVE, NULL);
            wrk_presence_list_clear(&left);
        }
    }
    free(leave);
    wrk_presence_list_clear(&l);
}

int wrk_changes_poll(wrk_app_t *app)
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
        if (wrk_port_rooms_text(&app->port, 0, &text) == 0) {
            wrk_port_group_text(&app->port, MC_GROUP_ROOMS, text, NULL);
            free(text);
        }
        if (wrk_port_rooms_text(&app->port, 1, &text) == 0) {
            wrk_port_group_text(&app->port, MC_GROUP_ROOMS_STAFF, text, NULL);
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
        wrk_port_group_close(&app->port, c.closes[i], MC_CLOSE_POLICY_VIOLATION);
    return 0;
}

int wrk_changes_process_gone(wrk_app_t *app, const char *process)
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
        wrk_port_notice(&app->port, gone.items[i].room_id, gone.items[i].username, MC_MSG_LEAVE,
                        NULL);
    if (gone.n)
        mc_info("worker: %s is gone: %zu departure(s) from rooms", process, gone.n);
    wrk_presence_list_clear(&gone);
    return 0;
}
