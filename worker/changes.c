/*
 * worker/changes.c: what the worker does about changes made elsewhere
 * (worker/changes.h): it reads the store's change log and tells the
 * sockets concerned through the port.
 */
#include "worker/changes.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "worker/command.h"
#include "worker/port.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The changes one round of a poll handles: as many as fit here, in order;
 * the poll goes round until every change it claimed is handled. */
#define ENDS_MAX 128

typedef struct change_set {
    int64_t until;   /* the last change claimed */
    int64_t handled; /* the last change noted here */
    int rooms_changed;
    int64_t rooms[64]; /* rooms whose members must be checked */
    size_t nrooms;
    int all_rooms;              /* more than fit above: check every presence */
    int64_t sessions[ENDS_MAX]; /* sessions that ended */
    size_t nsessions;
    struct {
        int64_t id;
        int logout;    /* a logout logged by an earlier version: its session ended */
    } users[ENDS_MAX]; /* users deactivated, or whose rights changed */
    size_t nusers;
} change_set_t;

#define CHANGE_SET_FULL 1 /* note_change's "stop here, go on in the next round" */

static int note_change(void *arg, int64_t seq, enum wrk_change_kind kind, int64_t ref)
{
    change_set_t *c = arg;
    if (seq > c->until)
        return CHANGE_SET_FULL; /* claimed by another worker */
    if (kind == WRK_CHANGE_ROOM) {
        c->rooms_changed = 1;
        if (c->nrooms < sizeof(c->rooms) / sizeof(c->rooms[0]))
            c->rooms[c->nrooms++] = ref;
        else
            c->all_rooms = 1;
    } else if (kind == WRK_CHANGE_SESSION) {
        if (c->nsessions == ENDS_MAX)
            return CHANGE_SET_FULL;
        c->sessions[c->nsessions++] = ref;
    } else if (kind == WRK_CHANGE_USER || kind == WRK_CHANGE_LOGOUT) {
        int logout = kind == WRK_CHANGE_LOGOUT;
        size_t i = 0;
        while (i < c->nusers && !(c->users[i].id == ref && c->users[i].logout == logout))
            i++;
        if (i == c->nusers) {
            if (c->nusers == ENDS_MAX)
                return CHANGE_SET_FULL;
            c->users[c->nusers].id = ref;
            c->users[c->nusers++].logout = logout;
        }
    } /* else a kind from a later version */
    c->handled = seq;
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

/* Tells every socket what one round of changes means for it. */
static void act(wrk_app_t *app, const change_set_t *c)
{
    if (c->rooms_changed) {
        char *text;
        if (wrk_port_rooms_text(&app->port, 0, &text) == 0) {
            wrk_port_group_text(&app->port, MC_GROUP_ROOMS, text, NULL);
            free(text);
        }
        if (wrk_port_rooms_text(&app->port, 1, &text) == 0) {
            wrk_port_group_text(&app->port, MC_GROUP_ROOMS_STAFF, text, NULL);
            free(text);
        }
        if (c->all_rooms) {
            wrk_presence_list_t l;
            if (wrk_store_presence_list(app->store, 0, &l) == 0) {
                for (size_t i = 0; i < l.n; i++)
                    if (i == 0 || l.items[i].room_id != l.items[i - 1].room_id)
                        check_room_members(app, l.items[i].room_id);
                wrk_presence_list_clear(&l);
            }
        } else {
            for (size_t i = 0; i < c->nrooms; i++)
                check_room_members(app, c->rooms[i]);
        }
    }
    /* A session that ended (Django ends one session at a logout, not the
     * user's others): its sockets close, and their pages go to the login
     * form. First, so that a socket whose session ended hears that. */
    char group[MC_GROUP_NAME_MAX];
    for (size_t i = 0; i < c->nsessions; i++) {
        mc_group_session(group, c->sessions[i]);
        wrk_port_group_close(&app->port, group, MC_CLOSE_SESSION_ENDED);
    }
    /* A user deactivated: every socket of theirs ends so too. A user who
     * gained or lost staff is still logged in: their sockets close with
     * "rights changed" and reconnect with a fresh scope, without the staff
     * rooms they may no longer see (or with them). */
    for (size_t i = 0; i < c->nusers; i++) {
        wrk_user_t u;
        int rc = c->users[i].logout ? MC_ENOTFOUND
                                    : wrk_store_user_by_id(app->store, c->users[i].id, &u);
        if (rc && rc != MC_ENOTFOUND)
            u.is_active = 1; /* the database failed: close anyway, the page asks again */
        int ended = rc == MC_ENOTFOUND || !u.is_active;
        mc_group_user(group, c->users[i].id);
        wrk_port_group_close(&app->port, group,
                             ended ? MC_CLOSE_SESSION_ENDED : MC_CLOSE_RIGHTS_CHANGED);
    }
}

int wrk_changes_poll(wrk_app_t *app)
{
    long expired = 0;
    int rc = wrk_store_sessions_expire(app->store, mc_now_ms(), &expired);
    if (rc)
        mc_warn("worker: ending expired sessions: %s", wrk_store_errmsg(app->store));
    else if (expired)
        mc_info("worker: %ld session(s) expired", expired);
    /* Changes claimed by an earlier poll that failed half-way come first. */
    if (app->changes_to <= app->changes_from) {
        rc = wrk_store_change_claim(app->store, &app->changes_from, &app->changes_to);
        if (rc)
            return rc;
    }
    while (app->changes_from < app->changes_to) {
        change_set_t c;
        memset(&c, 0, sizeof(c));
        c.until = app->changes_to;
        c.handled = app->changes_from;
        rc = wrk_store_change_each(app->store, app->changes_from, note_change, &c);
        if (rc < 0)
            return rc; /* the rest waits for the next poll */
        if (c.handled == app->changes_from) {
            /* Nothing left to read (purged meanwhile): done. */
            app->changes_from = app->changes_to;
            break;
        }
        act(app, &c);
        app->changes_from = c.handled;
    }
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
