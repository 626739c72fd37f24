/*
 * worker/port.h: the worker's output port: everything the worker sends
 * leaves through here, to one connection or to a group, by way of a
 * wrk_sink_t.
 *
 * The sink is the only way out: chat-worker plugs the channel layer into it
 * (chl_send, chl_group_*), tests plug in a recorder. The port owns the
 * outbox (chat messages posted, stored and published together under their
 * rooms' order locks) and flushes it before anything else it sends, so
 * nothing overtakes a chat message. It also builds the texts several
 * callers send alike: errors, enter and leave notices, room lists; and
 * takes tokens of the rate limits shared by every worker.
 *
 * Used by the consumer, the views and the change poller (worker/app.h
 * embeds one port per worker); one thread. Texts are NUL-terminated JSON
 * from worker/command.h's encoders and borrowed for the call. Sending
 * returns 0 or the sink's negative MC_E* code (logged); a failed send is
 * not retried.
 */
#ifndef MC_WORKER_PORT_H
#define MC_WORKER_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"
#include "common/wire.h"
#include "worker/order.h"
#include "worker/store.h"

/* A message to a group. */
typedef struct wrk_outgoing {
    const char *group;
    const char *once; /* NULL: not named */
    const char *data;
    size_t len;
    uint64_t seq; /* a room message's id, else 0 (chl_group_msg_t) */
} wrk_outgoing_t;

/* Where answers go. Each function returns 0 or a negative MC_E* code. */
typedef struct wrk_sink {
    void *ctx;
    int (*send)(void *ctx, const char *channel, const char *data, size_t len);
    /* seq: as chl_group_add_after (0: none) */
    int (*group_add)(void *ctx, const char *group, const char *channel, uint64_t seq);
    int (*group_discard)(void *ctx, const char *group, const char *channel);
    /* Sends msgs[0..n) (at most WRK_OUTBOX_MAX) to their groups, in order,
     * in one round trip. A message whose once names one sent before
     * delivers nothing, nor does one whose seq is not above the last its
     * group was sent or added after, so a replayed envelope's message
     * arrives once. */
    int (*group_send)(void *ctx, const wrk_outgoing_t *msgs, size_t n);
    /* Takes a token from the bucket key shared by every worker (rate per
     * second, burst): *allowed, and *refused the refusals in a row. NULL:
     * nothing is limited. */
    int (*rate_take)(void *ctx, const char *key, double rate, long burst, int *allowed,
                     long *refused);
} wrk_sink_t;

#define WRK_OUTBOX_MAX 32

typedef struct wrk_port {
    wrk_sink_t sink;        /* read-only */
    wrk_store_t *store;     /* read-only, borrowed: the outbox's messages, the room list */
    int notify_enter_leave; /* public: send msg_type 4/5 notices (settings copy) */
    long notice_rate;       /* public: notices of one user in one room a minute, 0: no limit */
    long notice_burst;      /* public: ... and at once */
    wrk_order_t order;      /* private */
    /* private: chat messages posted, to be stored and published together
     * (wrk_port_post, wrk_port_flush) */
    struct wrk_pending {
        int64_t room, user_id;
        char *body; /* malloc'd */
        size_t body_len;
        char name[WRK_CLIENT_ID_MAX + 1];      /* what it is stored under, "" none */
        char client_id[WRK_CLIENT_ID_MAX + 1]; /* the client's own, "" none */
        char sender[160];
        int done; /* it answers the sender's websocket.receive */
    } outbox[WRK_OUTBOX_MAX];
    size_t nout;
    /* private: the socket whose websocket.receive is being answered
     * (wrk_port_answer_begin), and whether its answer went out */
    char answer_to[160];
    int answered;
} wrk_port_t;

/* Sets the port up over sink and store (borrowed, both outlive the port),
 * with the order locks of the database at db_path (worker/order.h).
 * Returns 0 or MC_EIO. */
int wrk_port_init(wrk_port_t *port, const wrk_sink_t *sink, wrk_store_t *store, const char *db_path,
                  int notify_enter_leave);
/* Publishes what waits, then releases the order locks. */
void wrk_port_close(wrk_port_t *port);

/* Posts a chat message of user_id to room, sent by the connection sender:
 * it waits in the outbox for wrk_port_flush, which stores the outbox's
 * messages together and publishes them. name (may be NULL) is what it is
 * stored under (a replay of the same name by the same user is stored and
 * delivered once); client_id (may be NULL) the client's own, which an
 * error about the message repeats. A full outbox is flushed first.
 * Returns 0, MC_ENOMEM or MC_EINVAL (a name or client_id too long). */
int wrk_port_post(wrk_port_t *port, int64_t room, int64_t user_id, const char *body,
                  size_t body_len, const char *name, const char *client_id, const char *sender);

/* Stores the messages posted since the last flush, publishes them, and
 * answers those it could not store. Under their rooms' order locks, taken
 * together (worker/order.h): one transaction stores them all (their ids
 * increase in the order they were posted), one round trip to the channel
 * layer publishes them to their rooms' groups: every member gets the
 * message, and its sender gets it ending in ,"own":true. Each is named by
 * its id, so that a message posted again (a replayed envelope) is
 * delivered once. Anything else the port sends flushes first, so nothing
 * overtakes a chat message; the worker's loop calls this after each batch
 * of envelopes, before acknowledging it. A message refused is answered
 * ROOM_INVALID, ROOM_ACCESS_DENIED or USER_HAS_TO_LOGIN (wrk_port_user_gone);
 * when the transaction fails, nothing is published and each sender gets
 * SERVER_BUSY. */
void wrk_port_flush(wrk_port_t *port);

/* env (any type) to one connection. */
int wrk_port_send(wrk_port_t *port, const char *channel, const mc_envelope_t *env);
/* websocket.send of text to one connection. */
int wrk_port_send_text(wrk_port_t *port, const char *channel, const char *text);
/* websocket.send of text to a group; except (may be NULL) names a connection
 * the interface skips (it got its own copy). */
int wrk_port_group_text(wrk_port_t *port, const char *group, const char *text, const char *except);
/* The same, named once (mc_once_* of common/wire.h): a name sent before
 * delivers nothing, so that an envelope handled again, or a command the
 * client sent again, reaches the group once. */
int wrk_port_group_text_once(wrk_port_t *port, const char *group, const char *once,
                             const char *text, const char *except);
/* websocket.close with code (and its reason, mc_close_reason), to one
 * connection or a group. */
int wrk_port_send_close(wrk_port_t *port, const char *channel, int code);
int wrk_port_group_close(wrk_port_t *port, const char *group, int code);
/* {"error":CODE} with room (0: none), command and client_id (NULL or "":
 * none), so that the client knows which of its commands it answers. */
int wrk_port_send_error(wrk_port_t *port, const char *channel, const char *code, int64_t room,
                        const char *command, const char *client_id);
/* The enter (MC_MSG_ENTER) or leave (MC_MSG_LEAVE) notice of username to
 * room's group, unless notices are off; except as in wrk_port_group_text.
 *
 * Call it for every arrival and departure of a user in a room (the first
 * socket in, the last one out), which alternate. A user who flaps is held
 * to notice_rate a minute (burst notice_burst) per room, by a token bucket
 * that every worker shares: an enter over the rate is not announced, nor
 * the leave that ends it, so the room is not left showing a member who has
 * gone. A leave is announced when its enter was (its take is then the
 * first refusal after an allowed one), or when its own take is allowed.
 * So a room hears at most two notices for each token the bucket gives. */
void wrk_port_notice(wrk_port_t *port, int64_t room, const char *username, mc_msg_type_t msg_type,
                     const char *except);

/* Every websocket.receive gets exactly one answer, marked "done"
 * (common/envelope.h), by which the interface counts the socket's
 * messages in flight. Between begin and end, the first websocket.send or
 * websocket.close to channel, or chat message posted with it as sender,
 * is marked; end sends the mark alone (an empty text) when nothing was.
 * A posted message answers when wrk_port_flush publishes it, or refuses
 * it; a replay whose message went out before delivers nothing, and its
 * mark then goes alone. */
void wrk_port_answer_begin(wrk_port_t *port, const char *channel);
void wrk_port_answer_end(wrk_port_t *port);

/* Puts a connection into a group, or takes it out. */
int wrk_port_group_add(wrk_port_t *port, const char *group, const char *channel);
/* Puts a connection into room's group, after the room's newest published
 * message (wrk_store_published_last): what was published before, the
 * join's history has, and a message published again does not reach it.
 * Call it holding the room's order lock (wrk_port_order_lock). */
int wrk_port_room_add(wrk_port_t *port, int64_t room, const char *channel);
int wrk_port_group_discard(wrk_port_t *port, const char *group, const char *channel);

/* The room list a user may see, as the {"rooms":[...]} event: *out is
 * malloc'd, the caller frees it. Returns 0, MC_EDB or MC_ENOMEM. */
int wrk_port_rooms_text(wrk_port_t *port, int is_staff, char **out);

/* Whether the rate limit named key (rate a second, burst) allows one more;
 * *refused gets the refusals in a row. Without a limiter, with rate 0 or
 * when Redis fails, everything is allowed. */
int wrk_port_rate_take(wrk_port_t *port, const char *key, double rate, long burst, long *refused);

/* Room's order lock for a join or a reading of history: publishes the
 * outbox first, then waits for the lock. */
void wrk_port_order_lock(wrk_port_t *port, int64_t room);
void wrk_port_order_unlock(wrk_port_t *port, int64_t room);

/* Tells the connection channel that its user is gone or no longer active
 * (USER_HAS_TO_LOGIN) and closes it: its session ended. */
void wrk_port_user_gone(wrk_port_t *port, const char *channel);

#endif
