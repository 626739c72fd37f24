/*
 * channel-layer/batch.h: the queue pushes of one loop turn, sent together
 * (batch.c).
 *
 * A process endpoint's pushes to one queue on one shard in one turn of its
 * loop go in one LPUSH, sent at the end of the turn: after its I/O
 * callbacks (a uv_check_t), or before the loop waits (a uv_prepare_t, for
 * what timers pushed). A push to another queue or shard, or past
 * CHL__BATCH_MAX, sends what was gathered first. The LPUSH's answer is the
 * capacity check: the newest frames past the capacity are taken back out,
 * one LREM each (for that round trip the queue holds them too: a worker
 * that takes one then has it, and its push succeeded). Each push keeps its
 * own completion, called once, in the order of the pushes: 0 when it was
 * pushed, MC_EFULL when the queue (or Redis's memory) is full, MC_EREDIS,
 * or MC_ECLOSED once the endpoint closes.
 *
 * Frames that will have more behind them in the queue are marked
 * (CHL__MSG_MORE, internal.h), for the worker that takes one to take a
 * batch next instead of waiting for one envelope at a time: every frame of
 * an LPUSH but its newest (workers take the oldest first), and all of them
 * while the last LPUSH onto that shard found others waiting (a backlog is
 * forming). The mark is a hint: it may be stale or missing.
 *
 * It acts on the endpoint's links (link.h) and reads only what they share.
 */
#ifndef MC_CHANNEL_LAYER_BATCH_H
#define MC_CHANNEL_LAYER_BATCH_H

#include "channel-layer/internal.h"
#include "channel-layer/link.h"

#include <stddef.h>
#include <uv.h>

#define CHL__BATCH_MAX 64 /* pushes in one LPUSH */

typedef struct chl__batch {
    chl__links_t *links;
    struct chl__batch_pushes *open; /* this turn's pushes, or NULL */
    uv_check_t check;               /* sends them after the turn's I/O callbacks */
    uv_prepare_t prepare;           /* or before the loop waits */
    /* Per shard: its last LPUSH's answer said others were waiting. */
    unsigned char backlog[CHL__MAX_SHARDS];
} chl__batch_t;

/* Sets up b on links (its two handles count in *links->handles). */
void chl__batch_init(chl__batch_t *b, chl__links_t *links);

/* Adds frame (owned now, flen bytes) for queue key on shard, whose
 * capacity is cap; cb(arg, status) runs once it went. Returns 0, or
 * MC_ENOMEM (frame is freed, cb does not run). */
int chl__batch_add(chl__batch_t *b, size_t shard, const char *key, long cap, char *frame,
                   size_t flen, chl_send_cb cb, void *arg);

/* The shard of this turn's pushes into *shard: 1, or 0 when none waits. */
int chl__batch_shard(const chl__batch_t *b, size_t *shard);

/* Sends this turn's pushes now. */
void chl__batch_flush(chl__batch_t *b);

/* For closing: sends what waits (their callbacks run with MC_ECLOSED once
 * the endpoint closes) and closes the handles with close_cb, their data
 * set to data. */
void chl__batch_close(chl__batch_t *b, uv_close_cb close_cb, void *data);

#endif
