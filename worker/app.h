/*
 * worker/app.h: the worker's application: every envelope an interface sends
 * (http.request, websocket.connect/receive/disconnect) is handled here, and
 * the answers leave through a wrk_sink_t.
 *
 * The sink is the only way out: chat-worker plugs the channel layer into it
 * (chl_send, chl_group_*), tests plug in a recorder. A wrk_app_t is built
 * once by main and passed down; it owns its store connection and is used by
 * one thread. Handling never fails on bad input: a bad request is answered
 * (an HTTP status, {"error":CODE}, websocket.close); only a database or
 * memory failure returns an error, and the envelope is then answered with
 * 500 / SERVER_BUSY where that is possible.
 */
#ifndef MC_WORKER_APP_H
#define MC_WORKER_APP_H

#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"
#include "common/wire.h"
#include "worker/password.h"
#include "worker/store.h"

/* A message to a group. */
typedef struct wrk_outgoing {
    const char *group;
    const char *once; /* NULL: not named */
    const char *data;
    size_t len;
} wrk_outgoing_t;

/* Where answers go. Each function returns 0 or a negative MC_E* code. */
typedef struct wrk_sink {
    void *ctx;
    int (*send)(void *ctx, const char *channel, const char *data, size_t len);
    int (*group_add)(void *ctx, const char *group, const char *channel);
    int (*group_discard)(void *ctx, const char *group, const char *channel);
    /* Sends msgs[0..n) (at most WRK_OUTBOX_MAX) to their groups, in order,
     * in one round trip. A message whose once names one sent before
     * delivers nothing, so a replayed envelope's message arrives once. */
    int (*group_send)(void *ctx, const wrk_outgoing_t *msgs, size_t n);
    /* Takes a token from the bucket key shared by every worker (rate per
     * second, burst): *allowed, and *refused the refusals in a row. NULL:
     * nothing is limited. */
    int (*rate_take)(void *ctx, const char *key, double rate, long burst, int *allowed,
                     long *refused);
} wrk_sink_t;

/* Settings, read-only after start-up (chat-worker fills them from flags and
 * CHAT_* variables). */
typedef struct wrk_settings {
    long message_max;        /* bytes of one chat message, default 4096 */
    int notify_enter_leave;  /* send msg_type 4/5 notices, default on */
    long session_ttl_s;      /* default two weeks */
    int https;               /* mark cookies Secure */
    const char *web_root;    /* holds templates/, default "web" */
    long login_max_failures; /* per username and per address in a window, default 5 */
    long login_window_s;     /* default 900 */
    long argon2_m, argon2_t, argon2_p;
    long rate_messages; /* per user: sends, edits, deletes, whispers a second, default 5; 0 off */
    long rate_burst;    /* ... and at once, default 20 */
    long rate_close_after;   /* refusals in a row that close the socket with 1008, default 20 */
    long rate_connects;      /* per client address: new WebSockets a second, default 20; 0 off */
    long rate_connect_burst; /* ... and at once, default 60 */
} wrk_settings_t;

void wrk_settings_defaults(wrk_settings_t *s);

#define WRK_OUTBOX_MAX 32

typedef struct wrk_app {
    wrk_settings_t cfg; /* read-only */
    wrk_store_t *store; /* owned */
    wrk_password_t pw;  /* read-only */
    wrk_sink_t sink;    /* read-only */
    int order_fd;       /* private: the order locks' file, -1 for none */
    /* private: chat messages stored but not yet published, each holding its
     * room's order lock (wrk__group_message, wrk_app_flush) */
    struct wrk_pending {
        char group[MC_GROUP_NAME_MAX], once[32], sender[160];
        char *data;
        size_t len;
        int64_t room;
    } outbox[WRK_OUTBOX_MAX];
    size_t nout;
    int in_tx; /* private: the outbox's messages are in an open sqlite batch */
} wrk_app_t;

/* Opens the store at db_path, migrates it and prepares the password
 * hasher. Workers sharing db_path also share the order locks, in the file
 * db_path + "-order.lock" (none for ":memory:"). Returns 0, MC_EDB, MC_EINVAL (bad argon2
 * parameters), MC_ENOMEM. */
int wrk_app_init(wrk_app_t *app, const wrk_settings_t *cfg, const char *db_path,
                 const wrk_sink_t *sink);
void wrk_app_close(wrk_app_t *app);

/* Handles one envelope from the worker queue (data[0..len), JSON). An
 * envelope that does not decode, or of a type a worker does not handle, is
 * logged and dropped (returns MC_EINVAL). Returns 0 once answered. */
int wrk_app_handle(wrk_app_t *app, const char *data, size_t len);

/* Commits the chat messages that wait in the outbox (they are stored in one
 * sqlite transaction), publishes them in one round trip, and releases their
 * rooms' order locks. Anything else the worker sends
 * publishes them first, so nothing overtakes them; the worker's loop calls
 * this after each batch, before acknowledging it. */
void wrk_app_flush(wrk_app_t *app);

/* Reacts to changes made anywhere (this or another worker, chatctl) since
 * the last call by any worker: pushes room lists, takes sockets out of rooms
 * that were deleted or became staff-only, closes the sockets opened with a
 * session that logged out (the user's other sessions keep theirs) and every
 * socket of users who were deactivated or lost staff. Call every second or
 * so. */
int wrk_app_poll_changes(wrk_app_t *app);

/* An interface process died (its heartbeat expired; the channel layer has
 * dropped its group memberships): forgets its sockets' presence and tells
 * each room of the users who had no other socket there. */
int wrk_app_process_gone(wrk_app_t *app, const char *process);

/* ---- For the worker's modules (views, consumer) -------------------------- */

/* websocket.send of text to one connection. */
int wrk__send_text(wrk_app_t *app, const char *channel, const char *text);
/* websocket.send of text to a group; except (may be NULL) names a connection
 * the interface skips (it got its own copy). */
int wrk__group_text(wrk_app_t *app, const char *group, const char *text, const char *except);
/* Opens the outbox's sqlite transaction, if none is open: the chat message
 * about to be stored joins the others of the batch. Returns 0 or MC_EDB. */
int wrk__outbox_begin(wrk_app_t *app);
/* Chat message id of room to the room's group: every member gets text, and
 * the member channel own (the sender) gets it ending in ,"own":true: one
 * group send carries both, so the sender's copy costs no second push, and a
 * replay of the same message delivers nothing (the send is named by id).
 * Call it holding the room's order lock (wrk__order_lock_send); the message
 * waits in the outbox, which keeps the lock until it is published. */
int wrk__group_message(wrk_app_t *app, int64_t room, int64_t id, const char *text, const char *own);
/* The sink's send, group_add and group_discard, after the outbox. */
int wrk__send_data(wrk_app_t *app, const char *channel, const char *data, size_t len);
int wrk__group_add(wrk_app_t *app, const char *group, const char *channel);
int wrk__group_discard(wrk_app_t *app, const char *group, const char *channel);
/* websocket.close with code, to one connection or a group. */
int wrk__send_close(wrk_app_t *app, const char *channel, int code);
int wrk__group_close(wrk_app_t *app, const char *group, int code);
/* {"error":CODE} with room (0: none) and command (NULL: none). */
int wrk__send_error(wrk_app_t *app, const char *channel, const char *code, int64_t room,
                    const char *command);
/* A room's order lock, held by one worker of the database at a time:
 * storing a chat message of the room and publishing it happen under it, and
 * so do joining the room's group and reading its history. So every
 * interface gets a room's messages in the order of their ids, and a socket
 * that joins gets each message once: in the history (stored before it
 * joined) or live (after). Other rooms are not held up. A fcntl(2) lock on
 * byte <room> of the lock file: a worker that dies holding it releases it. */
void wrk__order_lock(wrk_app_t *app, int64_t room);
void wrk__order_unlock(wrk_app_t *app, int64_t room);
/* The order lock for storing a chat message: it may be held by the outbox
 * already. Never waits while the outbox holds other rooms' locks (it
 * publishes them first), so two workers cannot wait on each other. */
void wrk__order_lock_send(wrk_app_t *app, int64_t room);
/* The enter (4) or leave (5) notice of username to room's group, unless
 * notices are off; except as in wrk__group_text. */
void wrk__notice(wrk_app_t *app, int64_t room, const char *username, int msg_type,
                 const char *except);
/* Whether the rate limit named key (rate a second, burst) allows one more;
 * *refused gets the refusals in a row. Without a limiter, with rate 0 or
 * when Redis fails, everything is allowed. */
int wrk__rate_take(wrk_app_t *app, const char *key, long rate, long burst, long *refused);
/* The room list a user may see, as the {"rooms":[...]} event. */
int wrk__rooms_text(wrk_app_t *app, int is_staff, char **out);

#endif
