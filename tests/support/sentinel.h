/*
 * tests/support/sentinel.h: Redis masters watched by three redis-sentinel
 * processes, for the failover tests.
 *
 * Each set is a master and one replica; the same three sentinels watch every
 * set with quorum 2, call a master down after 1 s without an answer and
 * give a failover 2 s. All listen on free loopback ports, keep their files
 * in temporary directories and die with the test process. Start returns
 * once a failover could happen: the replicas are in sync and every sentinel
 * knows the replica and the two other sentinels.
 */
#ifndef MC_TESTS_SUPPORT_SENTINEL_H
#define MC_TESTS_SUPPORT_SENTINEL_H

#include "tests/support/redis.h"

#include <stddef.h>

#define TS_SENTINELS 3
#define TS_SENTINEL_SETS_MAX 2

typedef struct ts_sentinel_set {
    char name[16];      /* read-only: the master's name, "mc-0", "mc-1" */
    ts_redis_t node[2]; /* read-only: node[0] starts as the master, node[1] replicates it */
} ts_sentinel_set_t;

typedef struct ts_sentinels {
    ts_sentinel_set_t set[TS_SENTINEL_SETS_MAX];
    size_t nsets;
    ts_redis_t sentinel[TS_SENTINELS];
    /* read-only: one shard per set, "redis+sentinel://127.0.0.1:A,...:C/mc-0,..." */
    char url[512];
} ts_sentinels_t;

/* Starts nsets (1 or 2) sets and the sentinels, and waits until they are
 * ready for a failover. Returns 0 or -1 (everything started is stopped). */
int ts_sentinels_start(ts_sentinels_t *s, size_t nsets);

/* Stops every process and removes their directories. */
void ts_sentinels_stop(ts_sentinels_t *s);

/* Waits up to timeout_ms until every sentinel that answers names the same
 * node of set `set` as its master, that node says so itself (ROLE), and it
 * is not `other` (may be NULL). Returns the node, or NULL. */
ts_redis_t *ts_sentinels_master(ts_sentinels_t *s, size_t set, const ts_redis_t *other,
                                long timeout_ms);

/* A failover by hand: SENTINEL FAILOVER of set `set` on the first
 * sentinel that answers. The master stays up; the sentinels promote its
 * replica and make it a replica some seconds after they announce the new
 * master, and until then it still takes writes. Returns 0 or -1. */
int ts_sentinels_failover(ts_sentinels_t *s, size_t set);

/* How many clients of sentinel i are subscribed to a channel (CLIENT
 * LIST's sub=), or -1 when it does not answer. */
int ts_sentinels_subscribers(const ts_sentinels_t *s, size_t i);

/* Whether node says it is a master (ROLE). */
int ts_sentinels_is_master(const ts_redis_t *node);

#endif
