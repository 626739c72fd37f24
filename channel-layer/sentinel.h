/*
 * channel-layer/sentinel.h: connecting to a shard's server, through Redis
 * Sentinel when the shard names a master.
 *
 * A plain shard is one server. A Sentinel shard's server is found the way
 * Redis's Sentinel client spec describes:
 *   1. ask the sentinels in turn, starting with the one that answered last,
 *      SENTINEL get-master-addr-by-name <name>;
 *   2. connect to the address named (AUTH, SELECT);
 *   3. keep the connection only if ROLE says "master": during a failover a
 *      sentinel may still name the old master, or name a replica that has
 *      not been promoted yet. Then the next sentinel is asked.
 * When no sentinel names a reachable master the call fails and the caller
 * tries again after its backoff. Everything is blocking with short timeouts
 * and keeps no shared state, so that the asynchronous endpoint can run it
 * on libuv's thread pool.
 *
 * Both clients also listen to one sentinel of each Sentinel shard for the
 * +switch-master event (as the spec's clients should), and leave a master
 * the sentinels replaced as soon as they say so, even while its connection
 * still answers: an old master that is partitioned from the sentinels, or
 * that they have not made a replica yet, takes writes that are lost when
 * it is. The blocking client polls its subscription (chl__watch_poll, here)
 * before each call; the endpoint subscribes on its loop (sub.h).
 */
#ifndef MC_CHANNEL_LAYER_SENTINEL_H
#define MC_CHANNEL_LAYER_SENTINEL_H

#include "channel-layer/internal.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define CHL__SENTINEL_TIMEOUT_MS 500 /* to connect to a sentinel and hear its answer */

/* Connects to the server of shard a, authenticated and on its db, with
 * command_timeout_ms on every later command. For a Sentinel shard, *next
 * (in/out) is the index of the sentinel asked first; it is left at the one
 * whose answer was used. Returns 0 with *out (the caller's to redisFree)
 * and *at (the server's address), or MC_EREDIS with a reason in why (no
 * password, no message contents). */
int chl__server_connect(const chl__addr_t *a, long connect_timeout_ms, long command_timeout_ms,
                        size_t *next, chl__server_t *at, redisContext **out, char *why,
                        size_t why_size);

/* What a search on the thread pool found: status 0 and at (valid during
 * the call), or MC_EREDIS and why. next is the sentinel to ask first the
 * next time. Runs on the loop. */
typedef void (*chl__found_cb)(void *arg, int status, const chl__server_t *at, size_t next,
                              const char *why);
typedef struct chl__finding chl__finding_t;

/* Runs chl__server_connect for a copy of shard a on libuv's thread pool,
 * closes the connection it made, and calls cb on loop with the address.
 * Returns the search, or NULL when out of memory (cb never runs then). */
chl__finding_t *chl__server_find(uv_loop_t *loop, const chl__addr_t *a, long connect_timeout_ms,
                                 size_t next, chl__found_cb cb, void *arg);

/* cb will not run; the search frees itself once its thread is done (the
 * loop runs until then). */
void chl__server_find_cancel(chl__finding_t *f);

/* The payload of a +switch-master event, "<name> <old host> <old port>
 * <new host> <new port>" (len bytes, any bytes): 0 and *to when it says
 * that master moved, MC_ENOTFOUND when it is about another master,
 * MC_EPROTO when it is not such a payload. */
int chl__switch_parse(const char *payload, size_t len, const char *master, chl__server_t *to);

/* A reply read on a connection subscribed to +switch-master: as
 * chl__switch_parse when it is a message of that channel, MC_ENOTFOUND for
 * anything else (the subscription's confirmation). */
int chl__switch_event(const redisReply *r, const char *master, chl__server_t *to);

#define CHL__WATCH_BACKOFF_MIN_MS 500
#define CHL__WATCH_BACKOFF_MAX_MS 8000

/* A blocking client's subscription to +switch-master on one sentinel of a
 * shard. Zero it to start; chl__watch_close releases it. */
typedef struct chl__watch {
    redisContext *ctx; /* subscribed, or NULL */
    size_t next;       /* the sentinel tried next */
    int64_t retry_at;  /* monotonic ms before which none is tried again */
    long backoff_ms;
    int warned; /* that no sentinel can be heard was logged */
} chl__watch_t;

/* What the sentinels of shard a (shard i, for the log) said since the last
 * call, without waiting for more: 1 and *to when they moved its master (the
 * last move they told), else 0. Without a subscription it first subscribes
 * (blocking, CHL__SENTINEL_TIMEOUT_MS per sentinel tried), unless the
 * backoff after a failure is still running: 0 then, and the caller goes on
 * with what it has. */
int chl__watch_poll(chl__watch_t *w, const chl__addr_t *a, size_t i, chl__server_t *to);

/* Closes the subscription; w may be used again. */
void chl__watch_close(chl__watch_t *w);

/* Whether an error reply means that the server is no longer a master, so
 * the shard's master must be found again: READONLY (a replica now) or
 * UNBLOCKED (a blocked call ended because the server was demoted). */
int chl__not_master(const char *error);

#endif
