/*
 * channel-layer/chl.h: the channel layer, the only code that talks to Redis.
 *
 * It has the semantics of channels_redis, in C on hiredis 0.14:
 *
 *  - A channel is a name. Ordinary channels ("worker") are Redis lists that
 *    any number of processes pop. Process-specific channels are named
 *    "<process>!<conn>": every message for any connection of one process goes
 *    to ONE list, which that process pops once for all its connections and
 *    dispatches locally by <conn>.
 *  - Every message carries a deadline (now + expiry, default 60 s); a receiver
 *    drops expired messages and counts them. Every list has a capacity; a send
 *    to a full list fails with MC_EFULL and queues nothing. Nothing blocks.
 *    A process list is bounded in bytes too (process_bytes), since one of
 *    its messages may be 1 MiB: a process that falls behind makes its
 *    senders fail with MC_EFULL before it fills Redis's memory. (Its count
 *    of bytes goes down after a pop that may have left something, and is
 *    kept only while the list is long enough to reach the bound: a push
 *    that makes a short list long counts what it holds, so that a lost
 *    count heals: what is pushed between a pop and its count may go
 *    uncounted, and a list may hold up to twice the bound for a moment.)
 *    The count has no expiry: it goes with the list when the process is
 *    reaped. A Redis out of memory ("OOM" errors) is full too, not down.
 *  - Groups ("room-5") hold process-specific channels. Redis knows, per group,
 *    which processes have members and how many; each process knows its own
 *    local members. group_send pushes ONE copy per process holding members,
 *    and the process fans out locally, so its cost grows with processes, not
 *    members. Membership changes travel through the process's own list ahead
 *    of later messages, so a connection told "joined" sees every later message.
 *    Members not refreshed within the group expiry (default 86400 s) are
 *    dropped, by a send to the group at most a few seconds later.
 *  - Reliable queues: chl_queue_pop moves a message into the caller's own
 *    in-flight list (BLMOVE); chl_ack deletes it when handled. A worker that
 *    dies stops refreshing its heartbeat key; a live worker requeues its
 *    in-flight messages (chl_requeue_dead).
 *  - Sharding: with several Redis URLs (comma-separated), a channel lives on
 *    the shard chosen by consistent hashing of its PROCESS part (the text
 *    before '!'), for sends and receives alike; a group lives on the shard of
 *    its name; queues are pushed to one shard and popped from every shard.
 *  - A lost connection is re-established with backoff; until then calls fail
 *    with MC_EREDIS. Never a crash, never a hang. A server reached anew may
 *    have lost everything (a restart, a promoted replica that lagged): each
 *    front end tells it again what live state needs (scripts, the worker's
 *    or process's registration, and the process endpoint's memberships of
 *    its live connections).
 *  - A shard's server may be reached over its Unix socket
 *    ("unix:///run/redis/redis.sock"), which costs both sides less CPU per
 *    command than loopback TCP. A program using the layer must ignore
 *    SIGPIPE: a write to a socket whose server has gone raises it at once
 *    on a Unix socket (TCP takes a second write to do so), and the layer
 *    wants the EPIPE, to reconnect.
 *  - Redis Sentinel: a shard may name a master watched by sentinels
 *    ("redis+sentinel://h1,h2,h3/NAME"). Its server is asked of the
 *    sentinels at every connect and checked with ROLE; a lost connection or
 *    a reply saying the server is no longer a master (READONLY) makes the
 *    client find the master again. A shard's place on the hash ring follows
 *    its master's name, so a failover moves no channel. A master found at a
 *    new address is logged and counted (stats.failovers).
 *
 * Two front ends share one implementation of the Redis side:
 *  - chl_t, blocking, for the worker's loop (one per thread);
 *  - chl_proc_t, asynchronous, on a libuv loop, for the interface: its
 *    process channel, local group table and non-blocking sends.
 *
 * Payloads are opaque bytes (JSON in practice), never NUL-terminated by
 * contract; what a callback receives is valid only while it runs.
 */
#ifndef MC_CHANNEL_LAYER_CHL_H
#define MC_CHANNEL_LAYER_CHL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct chl_config {
    /* "redis://[:password@]host[:port][/db]",
     * "unix://[:password@]/path/to/redis.sock[?db=N]" or
     * "redis+sentinel://[:password@]h1[:port],h2[:port].../NAME[/db]",
     * several comma-separated for shards (internal.h has the grammar) */
    const char *redis_urls;
    const char *prefix;    /* prefix of every Redis key, default "mc:" */
    long expiry_ms;        /* message lifetime, default 60000 */
    long capacity;         /* per ordinary and per process list, default 100 */
    long process_capacity; /* per process list (all its connections), default 10000 */
    long process_bytes;    /* ...and its bytes, default 32 MiB */
    long queue_capacity;   /* per reliable queue, default 10000 */
    long group_expiry_s;   /* default 86400 */
    long heartbeat_ttl_ms; /* a worker is dead once its heartbeat is this old, default 10000 */
    long gather_us; /* chl_queue_next under load: one batch per this many µs, default 0 (none);
                     * at most a quarter of heartbeat_ttl_ms */
} chl_config_t;

/* Fills *cfg with the defaults above. */
void chl_config_defaults(chl_config_t *cfg);

/* A received message. The caller owns it until chl_message_free. */
typedef struct chl_message {
    char *channel; /* the channel it was sent to, NUL-terminated */
    char *data;    /* the payload, data[len] == '\0' for the convenience of parsers */
    size_t len;
    uint64_t seq;   /* a group message's seq (chl_group_msg_t), 0: none */
    void *internal; /* private: what chl_ack needs */
} chl_message_t;

void chl_message_free(chl_message_t *msg);

/* Counters, read-only for callers. */
typedef struct chl_stats {
    uint64_t sent, received, expired, full, group_dropped, redis_errors, reconnects;
    uint64_t malformed; /* elements in Redis that were not ours, skipped */
    uint64_t repeated;  /* group messages the members had had (chl_group_msg_t seq) */
    uint64_t failovers; /* a Sentinel shard's master was found at a new address */
} chl_stats_t;

/* ---- Blocking client ---------------------------------------------------- */

typedef struct chl chl_t;

/* Connects to every shard. name is this client's identity for reliable
 * queues and heartbeats (e.g. "wrk.host.1234.ab12"); NULL makes one.
 * Returns 0 and *out, MC_EINVAL for a bad URL list, MC_EREDIS when a shard
 * cannot be reached, MC_ENOMEM. */
int chl_open(chl_t **out, const chl_config_t *cfg, const char *name);
void chl_close(chl_t *chl); /* chl_close(NULL) does nothing */
const char *chl_name(const chl_t *chl);
const chl_stats_t *chl_stats(const chl_t *chl);

/* Appends msg to channel. Returns 0, MC_EFULL (at capacity, nothing queued),
 * MC_ETOOBIG (over 1 MiB), MC_EREDIS. */
int chl_send(chl_t *chl, const char *channel, const void *msg, size_t len);

/* Waits up to timeout_ms (0: forever) for a message on any of the channels
 * (one blocking call, at most 64 channels), skipping expired ones. Returns 0
 * and *out, MC_EAGAIN on timeout, MC_EINVAL, MC_EREDIS. Not reliable: a crash
 * after the pop loses the message. For a process channel pass "<process>!";
 * out->channel then names the connection, or the group for a group copy;
 * membership control messages are skipped there (they are for chl_proc_t).
 * Elements that are not ours are skipped and counted (stats.malformed). */
int chl_receive(chl_t *chl, const char *const *channels, size_t n, long timeout_ms,
                chl_message_t *out);

/* Reliable queues. chl_queue_push is chl_send to a queue (capacity
 * queue_capacity). chl_queue_pop waits up to timeout_ms for a message on the
 * queue (on every shard), moving it into this client's in-flight list and
 * keeping its heartbeat fresh (a pop refreshes it when it would otherwise
 * be older than a quarter of heartbeat_ttl_ms on return); chl_ack removes
 * it from there once handled. Returns as chl_send and chl_receive. */
int chl_queue_push(chl_t *chl, const char *queue, const void *msg, size_t len);
int chl_queue_pop(chl_t *chl, const char *queue, long timeout_ms, chl_message_t *out);
/* The worker's loop in one round trip (per shard): acknowledges done[0..ndone)
 * (messages of chl_queue_pop or chl_queue_next, handled; the caller still
 * frees them), then waits up to timeout_ms for the queue and moves up to max
 * messages (at most CHL_QUEUE_BATCH) into the in-flight list and out[0..*n):
 * up to max at once, without waiting, when some may wait (the first call
 * after connecting, after a full batch, or after a message that
 * chl_proc_queue_push marked as having more behind it), else the first
 * to come, alone. chl_queue_push's messages are never marked.
 * A worker that dies before its next call has its batch handled again.
 * done being the whole of the last call's messages from a shard (as a
 * worker's loop acknowledges) costs that shard one command (an LPOP of the
 * newest in flight), any other set one per message (LREM).
 * With cfg.gather_us, a call that follows a batch of two or more (but
 * fewer than max), or a marked message taken alone, that this client took
 * less than gather_us ago first waits out the rest of that time, then
 * takes what came meanwhile, up to max, in one move: under load a worker
 * takes at most one batch per gather_us, and a batch shares its round
 * trips and transactions among more messages. A call after an unmarked
 * batch of one (messages come no faster than they are handled), after a
 * full batch or after a quiet moment does not wait.
 * Returns 0 (*n >= 1), MC_EAGAIN when none came (the acknowledgements were
 * made), MC_EINVAL, or MC_EREDIS (the acknowledgements may be lost: the
 * messages stay in flight). */
#define CHL_QUEUE_BATCH 64
int chl_queue_next(chl_t *chl, const char *queue, long timeout_ms, const chl_message_t *done,
                   size_t ndone, chl_message_t *out, size_t max, size_t *n);
/* Returns 0, MC_EINVAL (msg did not come from chl_queue_pop), MC_ENOTFOUND
 * (no longer in flight: acked already, or requeued as if this client had
 * died), MC_EREDIS. */
int chl_ack(chl_t *chl, const chl_message_t *msg);

/* Refreshes this client's heartbeat, then moves the in-flight messages of
 * every client whose heartbeat has expired back to the head of their queue.
 * Stores in *requeued how many (may be NULL). Call every few seconds. */
int chl_requeue_dead(chl_t *chl, size_t *requeued);
/* Stores in *n how many messages wait in queue, on every shard (those in
 * flight aside). Returns 0, MC_EINVAL (a bad name), or MC_EREDIS (then *n
 * counts the shards that answered). */
int chl_queue_length(chl_t *chl, const char *queue, size_t *n);

/* Groups. channel must be process-specific ("<process>!<conn>").
 * group_add puts the membership change into the process's list and then into
 * the group, in that order; adding twice refreshes. group_discard undoes it;
 * discarding a non-member is not an error. group_send delivers msg to every
 * member; a full process list drops that process's copy, counts it and goes
 * on; *dropped (may be NULL) gets the number of processes that missed it.
 * Returns 0, MC_EINVAL (channel not process-specific, empty group), MC_EREDIS;
 * group_add also MC_EFULL when the process's list is full (nothing recorded).
 * A discard is queued even to a full list, so that the process forgets. */
int chl_group_add(chl_t *chl, const char *group, const char *channel);
/* chl_group_add to a group whose messages carry seqs (chl_group_msg_t),
 * when every message of the group up to seq was sent before (a room's
 * messages up to the newest that its history has): the process endpoint
 * of channel then hands its members of group nothing at or below seq, so
 * that such a message sent again (a replayed envelope) does not reach the
 * new member, who has it, nor anyone else twice. seq 0 is chl_group_add. */
int chl_group_add_after(chl_t *chl, const char *group, const char *channel, uint64_t seq);
int chl_group_discard(chl_t *chl, const char *group, const char *channel);
int chl_group_send(chl_t *chl, const char *group, const void *msg, size_t len, size_t *dropped);
/* group_send of a message named name (plain, like a group name): each shard
 * marks the name and pushes its copies in one atomic step, and a name
 * marked already within two expiries pushes nothing, so an envelope replayed
 * after a crash delivers its message once. */
int chl_group_send_once(chl_t *chl, const char *group, const char *name, const void *msg,
                        size_t len, size_t *dropped);
/* chl_group_send_once of each of msgs[0..n), in order: with one shard, in
 * one round trip. *dropped (may be NULL) gets the copies dropped in all.
 * Returns 0 or the first error; the other messages are sent all the same. */
typedef struct chl_group_msg {
    const char *group;
    const char *name; /* NULL: not named */
    const void *msg;
    size_t len;
    /* 0, or the message's place in its group's order (a room's message
     * ids): a process endpoint hands its members a group message with a
     * seq only when it is above the last seq it handed there, or was told
     * of by chl_group_add_after. So a message sent again arrives once
     * without a name, and after Redis lost its names (a restart, a
     * failover). A group's seqs must grow in the order they are sent.
     * (The blocking client's receive passes seqs on: chl_message_t.) */
    uint64_t seq;
} chl_group_msg_t;
int chl_group_send_many(chl_t *chl, const chl_group_msg_t *msgs, size_t n, size_t *dropped);

/* Drops every membership of a process (one whose heartbeat is gone), so
 * its members stop counting in groups. Returns 0 or MC_EREDIS. */
int chl_forget_process(chl_t *chl, const char *process);

/* Finds the process endpoints (chl_proc_t) whose heartbeat has expired:
 * each is forgotten (chl_forget_process) and handed to fn (may be NULL)
 * with its name, so that the caller drops what it keeps about the
 * process's connections. Of several callers, one only gets each dead
 * process. *reaped (may be NULL) gets how many. Call every few seconds.
 * Returns 0 or MC_EREDIS. */
int chl_reap_processes(chl_t *chl, int (*fn)(void *arg, const char *process), void *arg,
                       size_t *reaped);

/* Rate limiting shared by every process: a token bucket named key (any
 * bytes but NUL, at most 200), full at first with burst tokens and refilled
 * at rate tokens a second. Takes one token: *allowed is 1 when there was
 * one, else 0. *refused (may be NULL) gets the number of refusals in a row
 * since the last allowed take (0 when allowed). Buckets left alone vanish
 * once they would be full again. Returns 0, MC_EINVAL (empty or long key,
 * rate <= 0, burst < 1), MC_EREDIS. */
int chl_rate_take(chl_t *chl, const char *key, double rate, long burst, int *allowed,
                  long *refused);

/* ---- Asynchronous process endpoint (libuv) ------------------------------ */

typedef struct chl_proc chl_proc_t;

typedef struct chl_proc_handlers {
    /* A message for local connections, once: conns[0..n) is the one
     * connection it was sent to (n is 1), or, for a group message, the
     * group's local members when it arrived (n >= 1; a group without local
     * members calls nothing). conns is valid only during the call, and
     * memberships may change in it (the array is a copy). */
    void (*on_message)(void *ctx, const uint64_t *conns, size_t n, const char *data, size_t len);
    /* conn was added to / removed from group (by any worker). */
    void (*on_group_add)(void *ctx, uint64_t conn, const char *group);
    void (*on_group_discard)(void *ctx, uint64_t conn, const char *group);
    /* Redis connection state changed: up is 1 when all shards are reachable.
     * The endpoint starts down, so the first call says up. A lost
     * connection is noticed from its socket at once, a server that stops
     * answering within a few seconds; when it is back, the endpoint has
     * already recorded again its connections' memberships, so they need
     * not join their groups again. */
    void (*on_redis_state)(void *ctx, int up);
} chl_proc_handlers_t;

/* Starts popping this process's channel on loop. kind is the first part of
 * the process name ("ifc"); the name becomes "<kind>.<host>.<pid>.<random>".
 * handlers and ctx are kept. Returns 0, MC_EINVAL, MC_ENOMEM. Connecting
 * happens in the background; until Redis answers, sends fail fast. */
int chl_proc_open(chl_proc_t **out, uv_loop_t *loop, const chl_config_t *cfg, const char *kind,
                  const chl_proc_handlers_t *handlers, void *ctx);

/* Stops popping and closes Redis; the struct is freed once libuv has closed
 * every handle (run the loop). Pending send callbacks run with MC_ECLOSED.
 * May be called from any handler; no handler runs after it returns.
 * chl_proc_close(NULL) and a second call do nothing. */
void chl_proc_close(chl_proc_t *proc);

const char *chl_proc_name(const chl_proc_t *proc);
const chl_stats_t *chl_proc_stats(const chl_proc_t *proc);

/* Writes "<process>!<conn>" into buf. Returns 0 or MC_ETOOBIG. */
int chl_proc_channel(const chl_proc_t *proc, uint64_t conn, char *buf, size_t size);

/* The connection that channel[0..len) names when it is one of this
 * process's ("<process>!<conn>", conn in decimal): returns 0 and *conn, or
 * MC_EPROTO (another process's channel, or not a connection's channel).
 * The one parser of connection channels: received messages and members
 * named inside payloads (a message's sender) are read with it. */
int chl_proc_conn_of(const chl_proc_t *proc, const char *channel, size_t len, uint64_t *conn);

/* Completion of an asynchronous send: status 0, MC_EFULL, MC_EREDIS, MC_ECLOSED. */
typedef void (*chl_send_cb)(void *arg, int status);

/* Pushes msg onto a reliable queue (for workers; any shard that is up) or,
 * for "<process>!<conn>", into that process's list. The data is copied
 * before the call returns. Returns 0, MC_EINVAL, MC_ETOOBIG, MC_ENOMEM,
 * MC_EREDIS (the shard is not connected now), MC_ECLOSED. If it returns an
 * error, cb never runs; otherwise cb (may be NULL) runs exactly once, on the
 * loop, with 0, MC_EFULL, MC_EREDIS or MC_ECLOSED. A loop turn's pushes to
 * a queue go in one LPUSH; those past its capacity are taken back out (for
 * a round trip the queue holds them too: a worker that takes one then has
 * it, and its push succeeded). Those that will have others behind them in
 * the queue (all of one LPUSH but its newest, and all while this
 * endpoint's last LPUSH there found others waiting) are marked so, which
 * tells the worker that takes one to take a batch next (chl_queue_next). */
int chl_proc_queue_push(chl_proc_t *proc, const char *queue, const void *msg, size_t len,
                        chl_send_cb cb, void *arg);

/* The connection is gone: forget its local memberships (on_group_discard is
 * NOT called) and discard them in Redis (best effort: while a shard is down
 * its memberships are left to the group expiry). Returns 0 or MC_ENOMEM. */
int chl_proc_forget_conn(chl_proc_t *proc, uint64_t conn);

/* Calls fn for every group conn belongs to locally; fn must not change
 * memberships (no chl_proc_forget_conn from it). */
void chl_proc_each_group(const chl_proc_t *proc, uint64_t conn,
                         void (*fn)(void *arg, const char *group), void *arg);

#endif
