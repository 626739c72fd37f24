/*
 * channel-layer/sync.h: what the files of the blocking client chl_t share
 * (sync.c: shards, scripts, sends and receives; sync_queue.c: reliable
 * queues; sync_group.c: groups and process endpoints that are gone).
 *
 * A chl_t holds one redisContext per shard, opened lazily again after an
 * error with a backoff, so that a call during an outage fails fast with
 * MC_EREDIS and a later call finds the server again. Every call below
 * first brings its shard up (chl__sync_pipeline does), and an I/O error
 * drops the shard's connection for the next call to reopen. Bringing a
 * Sentinel shard up also reads what its sentinels announced: a master
 * they moved is left before the call is made.
 */
#ifndef MC_CHANNEL_LAYER_SYNC_H
#define MC_CHANNEL_LAYER_SYNC_H

#include "channel-layer/internal.h"
#include "channel-layer/sentinel.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define CHL__SYNC_MULTI_SLICE_MS 100 /* blocking slice when keys span shards */
#define CHL__SYNC_SWEEP_MS 2000      /* a group's stale members are looked for this often */
#define CHL__SYNC_SWEPT 256          /* groups whose last look is remembered */

typedef struct chl__sync_shard {
    redisContext *ctx; /* NULL while down */
    int64_t retry_at;  /* monotonic ms before which no reconnect is tried */
    long backoff_ms;
    int ever_up;
    int warned;           /* the current outage was logged */
    chl__server_t at;     /* the server reached last */
    size_t next_sentinel; /* the sentinel asked first */
    chl__watch_t watch;   /* a Sentinel shard's +switch-master subscription */
    int64_t beat_at;      /* monotonic ms of the last heartbeat written; 0: none since connecting */
    size_t waiting;       /* elements the queue held behind the last pop here (1: maybe some) */
    uint64_t moved;       /* the number of the last move here that gave messages */
    size_t head;          /* its messages, the newest in the in-flight list (0: not known) */
    char sha[CHL__S_COUNT][41];
} chl__sync_shard_t;

struct chl {
    chl_config_t cfg;
    char *cfg_mem;
    char name[CHL__NAME_MAX + 1];
    chl__ring_t ring;
    chl__sync_shard_t *shards;
    chl_stats_t stats;
    size_t push_next; /* round robin of queue pushes */
    size_t pop_next;  /* the shard a multi-shard pop blocks on next */
    int registered;   /* popped a queue: keeps a heartbeat on every shard */
    int64_t batch_ns; /* monotonic ns of the last chl_queue_next that took messages */
    size_t batch_n;   /* ...and their number (0 after one that took none) */
    int batch_more;   /* ...and one it waited for had more behind it (CHL__MSG_MORE) */
    /* What every call of this client writes alike, written once (chl_open):
     * its own keys and the numbers of its configuration, in decimal. */
    struct chl__sync_fixed {
        char hb[CHL__KEY_MAX], workers[CHL__KEY_MAX], inflight[CHL__KEY_MAX];
        char hb_ttl[24], expiry[24], once_ttl[24], group_expiry[24], process_capacity[24];
        char process_bytes[24];
        char list_ttl[24]; /* a process list's, in ms: the group expiry */
    } fixed;
    char *out; /* the commands of a pipeline in RESP, before hiredis takes them */
    size_t out_cap;
    /* When a group send of this client last looked for the group's stale
     * members, by a hash of the group's name (a clash only looks again). */
    struct chl__sync_swept {
        uint64_t hash;
        int64_t at; /* monotonic ms */
    } swept[CHL__SYNC_SWEPT];
};

/* Per-message state that chl_ack needs: the exact element, its shard and
 * the move that brought it. */
typedef struct chl__sync_inflight {
    size_t shard;
    uint64_t move;
    size_t len;
    char el[];
} chl__sync_inflight_t;

/* One call of a script: its keys and its arguments (arglens NULL: strlen). */
typedef struct chl__script_call {
    size_t nkeys, nargs;
    const char *const *keys;
    const char *const *args;
    const size_t *arglens;
} chl__script_call_t;

/* Sends a pipeline of n commands (argv form) to shard i and reads n
 * replies into replies[]. Returns 0, or MC_EREDIS or MC_ENOMEM with every
 * reply freed (an I/O error drops the connection; an error reply does
 * not). */
int chl__sync_pipeline(chl_t *chl, size_t i, size_t n, const int *argc, const char **const *argv,
                       const size_t *const *lens, redisReply **replies);

/* One command on shard i: its reply (the caller frees it), or NULL with
 * *rc set (MC_EREDIS also for an error reply, which is logged). */
redisReply *chl__sync_command(chl_t *chl, size_t i, int argc, const char **argv, const size_t *lens,
                              int *rc);

/* A server that answered NOSCRIPT lost its scripts (SCRIPT FLUSH): loads
 * them again, or gives up on the connection. Returns 0 or MC_EREDIS. */
int chl__sync_reload_scripts(chl_t *chl, size_t i);

/* EVALSHA of script id for each of calls[0..n), pipelined in one round trip
 * to shard i: replies[k] gets call k's reply, or NULL when it failed. A
 * server that lost its scripts (NOSCRIPT, e.g. after SCRIPT FLUSH) gets them
 * again and the calls it refused are made once more. Returns 0 when every
 * call has its reply, else the first error. */
int chl__sync_scripts(chl_t *chl, size_t i, enum chl__script_id id, const chl__script_call_t *calls,
                      size_t n, redisReply **replies);

/* chl__sync_scripts of one call: its reply, or NULL with *rc set. */
redisReply *chl__sync_script(chl_t *chl, size_t i, enum chl__script_id id, size_t nkeys,
                             const char *const *keys, size_t nargs, const char *const *args,
                             const size_t *arglens, int *rc);

/* Pushes one frame (kind, deadline, name, seq, msg) onto list key of shard
 * through the send script; cap < 0: no capacity check (a process list is
 * bounded by process_bytes too); the list then expires after ttl ms
 * (decimal, "0": its expiry is left alone). Returns 0, MC_EFULL (counted,
 * nothing pushed), or an error. */
int chl__sync_push_frame(chl_t *chl, size_t shard, const char *key, long cap, const char *ttl,
                         int kind, int64_t deadline, const char *name, uint64_t seq,
                         const void *msg, size_t len);

/* The blocking time of the next call: the rest of the timeout, at most
 * slice_ms; 0 once the deadline passed. deadline 0 waits forever. */
long chl__sync_next_block(int64_t deadline, long slice_ms);

/* Writes ms as Redis's seconds with three decimals ("1.500"). */
void chl__sync_seconds(char buf[32], long ms);

#endif
