/*
 * worker/port.h: the worker's output port: everything the worker sends
 * leaves through here, to one connection or to a group, by way of a
 * wrk_sink_t.
 *
 * The sink is the only way out: chat-worker plugs the channel layer into it
 * (chl_send, chl_group_*), tests plug in a recorder. The port owns the
 * outbox (chat messages stored but not yet published, each holding its
 * room's order lock) and publishes it before anything else it sends, so
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

#define WRK_OUTBOX_MAX 32

typedef struct wrk_port {
    wrk_sink_t sink;        /* read-only */
    wrk_store_t *store;     /* read-only, borrowed: the outbox's batch, the room list */
    int notify_enter_leave; /* public: send msg_type 4/5 notices (settings copy) */
    long notice_rate;       /* public: notices of one user in one room a minute, 0: no limit */
    long notice_burst;      /* public: ... and at once */
    wrk_order_t order;      /* private */
    /* private: chat messages stored but not yet published, each holding its
     * room's order lock (wrk_port_group_message, wrk_port_flush) */
    struct wrk_pending {
        char group[MC_GROUP_NAME_MAX], once[MC_ONCE_NAME_MAX], sender[160];
        char client_id[WRK_CLIENT_ID_MAX + 1]; /* the sender's, "" when none */
        char *data;
        size_t len;
        int64_t room;
        int done; /* it answers the sender's websocket.receive */
    } outbox[WRK_OUTBOX_MAX];
    size_t nout;
    int in_tx; /* private: the outbox's messages are in an open store batch */
    /* private: the socket whose websocket.receive is being answered
     * (wrk_port_answer_begin), and whether its answer went out */
    char answer_to[160];
    int answered, apart;
} wrk_port_t;

/* Sets the port up over sink and store (borrowed, both outlive the port),
 * with the order locks of the database at db_path (worker/order.h).
 * Returns 0 or MC_EIO. */
int wrk_port_init(wrk_port_t *port, const wrk_sink_t *sink, wrk_store_t *store, const char *db_path,
                  int notify_enter_leave);
/* Publishes what waits, then releases the order locks. */
void wrk_port_close(wrk_port_t *port);

/* Commits the chat messages that wait in the outbox (they are stored in one
 * store batch), publishes them in one round trip, and releases their rooms'
 * order locks. Anything else the port sends publishes them first, so
 * nothing overtakes them; the worker's loop calls this after each batch of
 * envelopes, before acknowledging it. When the batch cannot be committed,
 * nothing of it is published and each sender gets SERVER_BUSY. */
void wrk_port_flush(wrk_port_t *port);

/* Opens the outbox's store batch, if none is open: the chat message about
 * to be stored joins the others of the batch. Returns 0 or MC_EDB. */
int wrk_port_outbox_begin(wrk_port_t *port);
/* Chat message id of room to the room's group: every member gets text, and
 * the member channel own (the sender) gets it ending in ,"own":true: one
 * group send carries both, so the sender's copy costs no second push, and a
 * replay of the same message delivers nothing (the send is named by id).
 * Call it holding the room's order lock (wrk_port_order_lock_send); the
 * message waits in the outbox, which keeps the lock until it is published.
 * client_id (may be NULL) is the sender's name for the message, which the
 * SERVER_BUSY of a batch that cannot be stored repeats.
 * Returns 0, MC_ENOMEM or MC_ETOOBIG (then the caller releases the lock). */
int wrk_port_group_message(wrk_port_t *port, int64_t room, int64_t id, const char *text,
                           const char *own, const char *client_id);

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
 * websocket.close to channel, or chat message naming it as sender, is
 * marked; end sends the mark alone (an empty text) when nothing was. */
void wrk_port_answer_begin(wrk_port_t *port, const char *channel);
void wrk_port_answer_end(wrk_port_t *port);
/* The chat message about to be sent may deliver nothing (a replay whose
 * named send went out before): the answer goes out on its own. */
void wrk_port_answer_apart(wrk_port_t *port);

/* Puts a connection into a group, or takes it out. */
int wrk_port_group_add(wrk_port_t *port, const char *group, const char *channel);
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
/* The order lock for storing a chat message: it may be held by the outbox
 * already. Never waits while the outbox holds other rooms' locks (it
 * publishes them first), so two workers cannot wait on each other. */
void wrk_port_order_lock_send(wrk_port_t *port, int64_t room);
/* Releases room's lock, unless the outbox keeps it until it publishes. */
void wrk_port_order_unlock(wrk_port_t *port, int64_t room);

#endif
