/*
 * channel-layer/link.h: an endpoint's connections to Redis, the links
 * (link.c).
 *
 * Links: one command connection per shard, plus one connection to the shard
 * of the endpoint's list that loops on a blocking pop. A link finds its
 * server (a Sentinel shard asks its sentinels, on the thread pool), connects,
 * authenticates, selects its db and, for a command link, loads the scripts
 * before it counts as up. A link that fails (a socket error, the server
 * closing, a reply saying the server is no longer a master, or no answer
 * within CHL__LINK_STALL_MS) is reopened from a timer with a backoff. A link
 * that comes up calls the endpoint's on_up hook; when all of them are up, or
 * one of them no longer is, the links call on_state.
 *
 * The links of one endpoint share a chl__links_t, which the endpoint fills
 * in before chl__link_init and keeps, with what it points to, until the
 * links' retry timers are closed. The links never free it nor call into the
 * endpoint other than through its two hooks.
 */
#ifndef MC_CHANNEL_LAYER_LINK_H
#define MC_CHANNEL_LAYER_LINK_H

#include "channel-layer/internal.h"
#include "channel-layer/sentinel.h"

#include <hiredis/async.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define CHL__LINK_BACKOFF_MIN_MS 50
#define CHL__LINK_BACKOFF_MAX_MS 1000
/* A link that has waited this long for a connection or a reply (a pop
 * blocks for 1 s only) talks to a server that is stuck: it is dropped. */
#define CHL__LINK_STALL_MS 2500

typedef struct chl__links chl__links_t;

enum chl__link_role { CHL__LINK_CMD, CHL__LINK_POP };

typedef struct chl__link {
    chl__links_t *links;
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

/* What each shard's links know of its server. */
typedef struct chl__link_shard {
    chl__server_t at;     /* the server reached last ("" before the first) */
    size_t next_sentinel; /* the sentinel asked first */
    int warned;           /* the current outage was logged */
} chl__link_shard_t;

/* What the links of an endpoint share, and what they need of it. */
struct chl__links {
    uv_loop_t *loop;
    const char *name;          /* the endpoint's, for the log */
    const chl__ring_t *ring;   /* the shards' addresses */
    const int *closing;        /* nonzero once the endpoint closes */
    const uint64_t *polled_at; /* uv_now when the loop last began to poll */
    int *handles;              /* the endpoint's uv handles not yet closed */
    chl_stats_t *stats;
    chl__link_shard_t *shards; /* one per shard */
    chl__link_t *cmd;          /* one per shard */
    chl__link_t *pop;
    char (*sha)[41]; /* the scripts' SHAs, CHL__S_COUNT of them */
    int reported;    /* the last state given to on_state */
    /* l is up (connected, set up, the scripts loaded for a command link). */
    void (*on_up)(chl__link_t *l);
    /* Every link is up (up = 1), or one no longer is (0): changes only. */
    void (*on_state)(void *ctx, int up);
    void *ctx; /* the endpoint's, for on_state; on_up finds it in l->links */
};

/* Sets up link l of links (its retry timer counts in *links->handles). */
void chl__link_init(chl__links_t *links, chl__link_t *l, size_t shard, enum chl__link_role role);

/* Starts connecting l: finds its server, then connects. */
void chl__link_connect(chl__link_t *l);

/* Book-keeping for the stall check: every command sent on a link is
 * counted until its callback runs (which calls chl__link_replied). */
void chl__link_sent(chl__link_t *l);
void chl__link_replied(const redisAsyncContext *ac);

/* An error reply r on ac: a server that is no longer a master is left, so
 * that the link finds the master again. Returns 1 when it was that. */
int chl__link_not_master(redisAsyncContext *ac, const char *error);

/* Drops every link that waited past CHL__LINK_STALL_MS; from a timer,
 * never from a hiredis callback. */
void chl__links_check_stall(chl__links_t *links);

/* Frees l's context (pending callbacks run now, with NULL replies) and
 * gives up a search under way. For closing. */
void chl__link_free(chl__link_t *l);

/* The sentinels announced that l's master is now at to: unless l is there
 * already, it leaves its server (pending callbacks run now, with NULL
 * replies) or gives up its search or its backoff, and finds the master
 * again at once. From a timer, never from a hiredis callback. */
void chl__link_move(chl__link_t *l, const chl__server_t *to);

#endif
