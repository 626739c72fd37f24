/*
 * channel-layer/sub.h: an endpoint listens to its sentinels (sub.c).
 *
 * Each Sentinel shard subscribes to +switch-master on one of its sentinels
 * at a time, another one after a failure, with a backoff. When the
 * sentinels announce a new master, the shard's links (link.h) that are
 * elsewhere go to find it at once, even when their server still answers;
 * never from another context's callback: the move waits for a zero timer.
 */
#ifndef MC_CHANNEL_LAYER_SUB_H
#define MC_CHANNEL_LAYER_SUB_H

#include "channel-layer/link.h"
#include "channel-layer/sentinel.h"

#include <hiredis/async.h>
#include <stddef.h>
#include <uv.h>

/* A Sentinel shard's subscription to +switch-master. */
typedef struct chl__sentinel_sub {
    chl__links_t *links;
    size_t shard;
    redisAsyncContext *ac; /* NULL while down */
    size_t next;           /* the sentinel subscribed to, or tried next */
    long backoff_ms;
    int warned;             /* that no sentinel answers was logged */
    chl__server_t moved_to; /* the master last announced */
    uv_timer_t retry;       /* subscribes again after the backoff */
    uv_timer_t move;        /* sends the links to moved_to, outside hiredis's callbacks */
} chl__sentinel_sub_t;

/* Sets up shard's subscription to the sentinels of links's ring (its two
 * timers count in *links->handles) and, for a Sentinel shard, subscribes. */
void chl__sub_init(chl__links_t *links, chl__sentinel_sub_t *s, size_t shard);

/* Stops its timers (closing). */
void chl__sub_stop(chl__sentinel_sub_t *s);

/* Frees its context and closes its timers with close_cb, their data set to
 * data (closing, from a timer). */
void chl__sub_close(chl__sentinel_sub_t *s, uv_close_cb close_cb, void *data);

#endif
