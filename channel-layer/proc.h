/*
 * channel-layer/proc.h: what the process endpoint chl_proc_t (proc.c:
 * what the process list holds, sends and memberships, life cycle) is made
 * of.
 *
 * It stands on its links to Redis (link.h): it fills in their shared
 * chl__links_t and is told through two hooks when a link is up (then a
 * command link makes its server know this process again: a server reached
 * anew may have lost everything, a restart or a promoted replica that
 * lagged) and when Redis as a whole is up or down. For Sentinel shards it
 * also listens to the sentinels (sub.h), which send the links to a new
 * master at once. Its script calls go through request.h, its queue pushes
 * through batch.h, both on those links.
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

#include "channel-layer/batch.h"
#include "channel-layer/internal.h"
#include "channel-layer/local.h"
#include "channel-layer/link.h"
#include "channel-layer/request.h"
#include "channel-layer/sub.h"

#include <hiredis/async.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define CHL__PROC_POP_TIMEOUT "1" /* seconds a blocking pop waits before it is made again */
#define CHL__PROC_POP_COUNT "128" /* elements taken by one pop */
#define CHL__PROC_WATCH_MS 250    /* how often links are looked at for a stall */

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
    chl__batch_t batch;  /* queue pushes of this loop turn, sent together at its end */
    chl__ring_t ring;
    chl_proc_handlers_t h;
    void *ctx;
    chl_stats_t stats;
    chl__links_t links;        /* what the links share; points at cmd and pop */
    chl__link_t *cmd;          /* one per shard */
    chl__link_t pop;           /* on the shard of list_key */
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
    size_t push_next;
};

#endif
