/*
 * channel-layer/proc.h: what the files of the process endpoint chl_proc_t
 * share (proc.c: what the process list holds, commands, life cycle;
 * proc_link.c: the connections to Redis).
 *
 * Links: one command connection per shard, plus one connection to the shard
 * of this process's list that loops on a blocking pop. A link finds its
 * server (a Sentinel shard asks its sentinels, on the thread pool), connects,
 * authenticates, selects its db and, for a command link, loads the scripts
 * before it counts as up. A link that fails (a socket error, the server
 * closing, a reply saying the server is no longer a master, or no answer
 * within CHL__PROC_STALL_MS) is reopened from a timer with a backoff. A
 * command link that comes up tells proc.c (chl__proc_link_up), which makes
 * the server know this process again: a server reached anew may have lost
 * everything (a restart, a promoted replica that lagged).
 *
 * Sentinel shards: the endpoint also listens to one sentinel of the shard
 * for +switch-master (proc_sentinel.c), and when the sentinels announce a
 * new master, the shard's links that are elsewhere go to find it at once,
 * even when their server still answers.
 *
 * Closing never frees under a running callback: chl_proc_close marks the
 * endpoint and starts a zero timer; the timer (outside every hiredis
 * callback) frees the hiredis contexts, which runs their pending callbacks
 * with NULL replies, then closes our handles; the last close callback frees
 * the struct. A link is never dropped from another context's callback
 * either: a move announced by a sentinel waits for a zero timer.
 */
#ifndef MC_CHANNEL_LAYER_PROC_H
#define MC_CHANNEL_LAYER_PROC_H

#include "channel-layer/internal.h"
#include "channel-layer/local.h"
#include "channel-layer/sentinel.h"

#include <hiredis/async.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define CHL__PROC_BACKOFF_MIN_MS 50
#define CHL__PROC_BACKOFF_MAX_MS 1000
#define CHL__PROC_POP_TIMEOUT "1" /* seconds a blocking pop waits before it is made again */
#define CHL__PROC_POP_COUNT "128" /* elements taken by one pop */
/* A link that has waited this long for a connection or a reply (a pop
 * blocks for 1 s only) talks to a server that is stuck: it is dropped. */
#define CHL__PROC_STALL_MS 2500
#define CHL__PROC_WATCH_MS 250 /* how often links are looked at for a stall */

enum chl__link_role { CHL__LINK_CMD, CHL__LINK_POP };

typedef struct chl__link {
    chl_proc_t *proc;
    size_t shard;
    enum chl__link_role role;
    redisAsyncContext *ac;   /* NULL while down */
    chl__finding_t *finding; /* a search for the master under way, or NULL */
    int up;                  /* connected, selected, scripts loaded */
    int loading;             /* SCRIPT LOAD replies still to come */
    int ever_up;
    int connecting;   /* from the search to the connect callback */
    int pending;      /* commands sent and not answered */
    uint64_t since;   /* uv_now of the last progress while connecting or pending */
    chl__server_t at; /* the server it connects or is connected to */
    long backoff_ms;
    uv_timer_t retry;
} chl__link_t;

/* A Sentinel shard's subscription to +switch-master, on one sentinel at a
 * time (proc_sentinel.c). */
typedef struct chl__sentinel_sub {
    chl_proc_t *proc;
    size_t shard;
    redisAsyncContext *ac; /* NULL while down */
    size_t next;           /* the sentinel subscribed to, or tried next */
    long backoff_ms;
    int warned;             /* that no sentinel answers was logged */
    chl__server_t moved_to; /* the master last announced */
    uv_timer_t retry;       /* subscribes again after the backoff */
    uv_timer_t move;        /* sends the links to moved_to, outside hiredis's callbacks */
} chl__sentinel_sub_t;

/* What each shard's links know of its server. */
typedef struct chl__proc_shard {
    chl__server_t at;     /* the server reached last ("" before the first) */
    size_t next_sentinel; /* the sentinel asked first */
    int warned;           /* the current outage was logged */
} chl__proc_shard_t;

struct chl_proc {
    uv_loop_t *loop;
    chl_config_t cfg;
    char *cfg_mem;
    char name[CHL__NAME_MAX + 1];
    size_t name_len;
    char list_key[CHL__KEY_MAX];  /* "<prefix><name>!" */
    char bytes_key[CHL__KEY_MAX]; /* its byte counter, "<prefix>bytes:<name>" */
    char hb_key[CHL__KEY_MAX];
    char procs_key[CHL__KEY_MAX]; /* the registry of process endpoints */
    char *pop_command;            /* the blocking pop of list_key, in RESP: always the same */
    size_t pop_command_len;
    char list_ttl[24];   /* a process list's expiry, ms (the group expiry), in decimal */
    char list_bytes[24]; /* a process list's bound in bytes, in decimal */
    /* Queue pushes of this loop turn, sent together at its end: after its
     * I/O callbacks (batch_check), or before the loop waits (batch_prepare,
     * for what timers pushed). */
    struct proc_batch *batch;
    uv_check_t batch_check;
    uv_prepare_t batch_prepare;
    chl__ring_t ring;
    chl_proc_handlers_t h;
    void *ctx;
    chl_stats_t stats;
    chl__link_t *cmd; /* one per shard */
    chl__link_t pop;  /* on the shard of list_key */
    chl__proc_shard_t *shards;
    chl__sentinel_sub_t *subs; /* one per shard, used by Sentinel shards */
    char sha[CHL__S_COUNT][41];
    chl__local_t *local;
    uint64_t *scratch; /* members of a group while its message fans out */
    size_t scratch_cap;
    uv_timer_t heartbeat;
    uv_timer_t watch; /* the stall check */
    uv_timer_t closer;
    uv_prepare_t prepare; /* notes polled_at: when the loop last began to poll */
    uint64_t polled_at;
    int handles; /* uv handles not yet closed */
    int closing;
    int reported; /* last state given to on_redis_state */
    size_t push_next;
};

/* ---- links (proc_link.c) ---- */

/* Sets up link l of p (its retry timer counts in p->handles). */
void chl__link_init(chl_proc_t *p, chl__link_t *l, size_t shard, enum chl__link_role role);

/* Starts connecting l: finds its server, then connects. */
void chl__link_connect(chl__link_t *l);

/* Book-keeping for the stall check: every command sent on a link is
 * counted until its callback runs (which calls chl__link_replied). */
void chl__link_sent(chl__link_t *l);
void chl__link_replied(const redisAsyncContext *ac);

/* An error reply r on ac: a server that is no longer a master is left, so
 * that the link finds the master again. Returns 1 when it was that. */
int chl__link_not_master(redisAsyncContext *ac, const char *error);

/* Drops every link of p that waited past CHL__PROC_STALL_MS; from a timer,
 * never from a hiredis callback. */
void chl__links_check_stall(chl_proc_t *p);

/* Frees l's context (pending callbacks run now, with NULL replies) and
 * gives up a search under way. For closing. */
void chl__link_free(chl__link_t *l);

/* The sentinels announced that l's master is now at to: unless l is there
 * already, it leaves its server (pending callbacks run now, with NULL
 * replies) or gives up its search or its backoff, and finds the master
 * again at once. From a timer, never from a hiredis callback. */
void chl__link_move(chl__link_t *l, const chl__server_t *to);

/* ---- the sentinels' announcements (proc_sentinel.c) ---- */

/* Sets up shard's subscription (its two timers count in p->handles) and,
 * for a Sentinel shard, subscribes. */
void chl__sub_init(chl_proc_t *p, chl__sentinel_sub_t *s, size_t shard);

/* Stops its timers (closing). */
void chl__sub_stop(chl__sentinel_sub_t *s);

/* Frees its context and closes its timers with close_cb (closing, from a
 * timer). */
void chl__sub_close(chl__sentinel_sub_t *s, uv_close_cb close_cb);

/* ---- what proc.c does when a link is up (proc.c) ---- */

/* l is up: the pop link pops; a command link makes its server know this
 * process (heartbeat and registry on the pop's shard, and the memberships
 * of every local connection in groups that live on its shard). */
void chl__proc_link_up(chl__link_t *l);

#endif
