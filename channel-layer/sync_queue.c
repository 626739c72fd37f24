/*
 * channel-layer/sync_queue.c: the reliable queues of the blocking client
 * (see chl.h): pops that move messages into this client's in-flight list,
 * acknowledgements that remove them, batches of both in one round trip,
 * and the requeueing of dead workers' messages.
 */
#include "channel-layer/sync.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Removes one exact element from this client's in-flight list. Returns the
 * number removed (0 or 1) or an error. */
static int inflight_remove(chl_t *chl, size_t sh, const char *el, size_t len)
{
    int rc;
    const char *key = chl->fixed.inflight;
    const char *v[4] = {"LREM", key, "1", el};
    size_t l[4] = {4, strlen(key), 1, len};
    redisReply *r = chl__sync_command(chl, sh, 4, v, l, &rc);
    if (!r)
        return rc;
    rc = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : MC_EREDIS;
    freeReplyObject(r);
    return rc;
}

/* Turns an element moved into the in-flight list into *out. Returns 1 when
 * it is a message, 0 when it was malformed or expired: then it is taken out
 * of the in-flight list again and counted. *more is set when it was pushed
 * with more behind it, expired or not. */
static int accept_inflight(chl_t *chl, size_t sh, const redisReply *el, chl_message_t *out,
                           int *more, int *rc)
{
    chl__frame_t f;
    int ok = chl__frame_parse(&f, el->str, el->len) == 0 && f.kind == CHL__MSG;
    *more = ok && f.more;
    if (!ok) {
        chl->stats.malformed++;
        mc_warn("channel-layer: skipped a malformed queue element of %zu bytes", el->len);
    } else if (f.deadline && f.deadline < mc_now_ms()) {
        chl->stats.expired++;
        ok = 0;
    }
    if (!ok) {
        int lr = inflight_remove(chl, sh, el->str, el->len);
        *rc = lr < 0 ? lr : 0;
        return 0;
    }
    chl__sync_inflight_t *in = malloc(sizeof(*in) + el->len);
    *rc = in ? chl__message_fill(out, f.name, f.name_len, f.payload, f.len) : MC_ENOMEM;
    if (*rc != 0) {
        free(in);
        return 0;
    }
    in->shard = sh;
    in->move = 0; /* its move's number comes when the move is done */
    in->len = el->len;
    memcpy(in->el, el->str, el->len);
    out->internal = in;
    chl->stats.received++;
    return 1;
}

/* Whether the next call to shard sh, blocking up to block_ms, refreshes
 * the heartbeat: when it is gone (never written, or the server is new), or
 * when it would be older than a quarter of its TTL by the time the call
 * returns. A caller then finds it at most that old after each pop, as when
 * every pop refreshed it at its start, for two commands every few seconds
 * instead of two a pop. */
static int beat_due(const chl_t *chl, size_t sh, int64_t now, long block_ms)
{
    int64_t at = chl->shards[sh].beat_at;
    return at == 0 || now + block_ms - at > chl->cfg.heartbeat_ttl_ms / 4;
}

/* Whether the acknowledgements for shard sh are every message of the last
 * move there and nothing else: those are the newest elements of the
 * in-flight list (a move pushes on its left, and nothing else does), so
 * one LPOP of their number removes them all, where one LREM each would
 * look for each. Returns their number then, else 0. */
static size_t acks_are_the_head(const chl__sync_shard_t *shard, size_t sh,
                                const chl_message_t *acks, size_t nacks)
{
    size_t mine = 0;
    for (size_t a = 0; a < nacks; a++) {
        const chl__sync_inflight_t *in = acks[a].internal;
        if (!in || in->shard != sh)
            continue;
        if (in->move != shard->moved)
            return 0;
        mine++;
    }
    return shard->head && mine == shard->head ? mine : 0;
}

/* One round trip to shard sh: removes the elements of acks[0..nacks) that
 * live there from the in-flight list, refreshes the heartbeat when it is
 * due, and moves elements of the queue into the in-flight list: when some
 * were waiting at the last look (or block_ms is 0), up to max at once
 * without blocking; else one, waiting up to block_ms for it, whose mark
 * (CHL__MSG_MORE) tells the next call whether more may wait. Adds the
 * messages to out[*n..]; *skipped is set when an element was dropped
 * (malformed or expired). */
static int queue_move_shard(chl_t *chl, size_t sh, const char *qkey, long block_ms,
                            const chl_message_t *acks, size_t nacks, chl_message_t *out, size_t max,
                            size_t *n, int *skipped)
{
    const struct chl__sync_fixed *f = &chl->fixed;
    const char *inflight = f->inflight;
    char tb[32];
    chl__sync_seconds(tb, block_ms);
    enum { MOST = 2 * CHL_QUEUE_BATCH + 2 };
    struct {
        const char *v[6];
        size_t l[6];
    } cmd[MOST];
    const char **av[MOST];
    const size_t *lv[MOST];
    int argc[MOST];
    redisReply *r[MOST];
    size_t k = 0;
    /* Appends one command; an element's length is taken with strlen. */
#define CMD(...)                                                                                   \
    do {                                                                                           \
        const char *w_[] = {__VA_ARGS__};                                                          \
        argc[k] = (int)(sizeof(w_) / sizeof(w_[0]));                                               \
        for (int j_ = 0; j_ < argc[k]; j_++) {                                                     \
            cmd[k].v[j_] = w_[j_];                                                                 \
            cmd[k].l[j_] = strlen(w_[j_]);                                                         \
        }                                                                                          \
        av[k] = cmd[k].v;                                                                          \
        lv[k] = cmd[k].l;                                                                          \
        k++;                                                                                       \
    } while (0)
    chl__sync_shard_t *shard = &chl->shards[sh];
    size_t head = acks_are_the_head(shard, sh, acks, nacks);
    char count[24];
    chl__decimal(count, (long)head);
    if (head)
        CMD("LPOP", inflight, count);
    for (size_t a = 0; a < nacks && !head; a++) {
        const chl__sync_inflight_t *in = acks[a].internal;
        if (!in || in->shard != sh)
            continue;
        CMD("LREM", inflight, "1", "");
        cmd[k - 1].v[3] = in->el; /* binary: its own length */
        cmd[k - 1].l[3] = in->len;
    }
    size_t nlrem = k;
    int64_t now = mc_mono_ms();
    int beat = beat_due(chl, sh, now, block_ms);
    if (beat) {
        CMD("SET", f->hb, "1", "PX", f->hb_ttl);
        CMD("SADD", f->workers, chl->name);
    }
    size_t first = k; /* the pops' replies start here */
    /* A worker that found the queue empty waits for the next envelope
     * alone (a batch script would only find nothing behind it); one that
     * found more takes a batch. Whether the one it waited for has more
     * behind it, its pusher knew (batch.h): a look behind it would cost a
     * command per envelope where they come one at a time. A stale mark
     * costs one batch look that finds nothing; a missing one leaves the
     * worker taking one at a time until a marked envelope comes. */
    int blocking = max > 0 && block_ms > 0 && shard->waiting == 0;
    char nb[24];
    chl__decimal(nb, (long)max);
    if (blocking) {
        CMD("BLMOVE", qkey, inflight, "RIGHT", "LEFT", tb);
    } else if (max > 0) { /* the SHA is filled in when the shard connects, before the send */
        CMD("EVALSHA", shard->sha[CHL__S_MOVEN], "2", qkey, inflight, nb);
    }
#undef CMD
    int rc = chl__sync_pipeline(chl, sh, k, argc, (const char **const *)av, lv, r);
    if (nlrem || k > first || rc != 0)
        shard->head = 0; /* acknowledged, moved past, or not known (a lost reply moved?) */
    if (rc != 0)
        return rc;
    if (beat)
        shard->beat_at = now;
    for (size_t j = 0; j < nlrem; j++)
        if ((r[j]->type == REDIS_REPLY_INTEGER && r[j]->integer == 0) ||
            (head && (r[j]->type != REDIS_REPLY_ARRAY || r[j]->elements < head)))
            mc_warn("channel-layer: a handled message was no longer in flight (requeued as if "
                    "this worker had died); it may be handled twice");
    size_t had = *n;
    if (blocking) {
        shard->waiting = 0; /* unless the element says more came behind it */
    } else if (k > first) {
        /* A full batch may have left more behind; a short one emptied it. */
        const redisReply *moved = r[first];
        shard->waiting = moved->type == REDIS_REPLY_ARRAY && moved->elements < max ? 0 : 1;
    }
    for (size_t j = first; rc == 0 && j < k; j++) {
        /* A BLMOVE's or an LMOVE's element, or the elements the script moved. */
        redisReply *const *el = r[j]->type == REDIS_REPLY_ARRAY ? r[j]->element : &r[j];
        size_t nel = r[j]->type == REDIS_REPLY_ARRAY ? r[j]->elements : 1;
        if (r[j]->type == REDIS_REPLY_ERROR) {
            if (strncmp(r[j]->str, "NOSCRIPT", 8) == 0) {
                chl__sync_reload_scripts(chl, sh); /* nothing was moved: for next time */
                continue;
            }
            mc_warn("channel-layer: queue pop: %.120s", r[j]->str);
            chl->stats.redis_errors++;
            rc = MC_EREDIS;
            continue;
        }
        for (size_t e = 0; rc == 0 && e < nel; e++) {
            if (el[e]->type != REDIS_REPLY_STRING)
                continue;
            int more;
            if (accept_inflight(chl, sh, el[e], &out[*n], &more, &rc))
                (*n)++;
            else
                *skipped = 1;
            if (blocking && more)
                shard->waiting = chl->batch_more = 1;
        }
    }
    for (size_t j = 0; j < k; j++)
        freeReplyObject(r[j]);
    if (rc == 0 && *n > had) {
        /* This move's messages are the newest in flight now. */
        shard->moved++;
        shard->head = *n - had;
        for (size_t e = had; e < *n; e++)
            ((chl__sync_inflight_t *)out[e].internal)->move = shard->moved;
    }
    return rc;
}

int chl_queue_pop(chl_t *chl, const char *queue, long timeout_ms, chl_message_t *out)
{
    size_t n;
    return chl_queue_next(chl, queue, timeout_ms, NULL, 0, out, 1, &n);
}

/* Waits out the rest of cfg.gather_us after a batch of two or more that
 * was not full, or one envelope with more behind it, and then takes what
 * came without blocking first (chl.h). */
static void gather(chl_t *chl, size_t max)
{
    int64_t gather_ns = (int64_t)chl->cfg.gather_us * 1000;
    int64_t wait = chl->batch_ns + gather_ns - mc_mono_ns();
    /* A batch of two or more, or an envelope pushed with others behind
     * it, says envelopes come faster than one at a time: the next
     * gathers. After a batch of one alone, waiting would cost latency and
     * a look that finds nothing; after a full one, more wait. */
    int many = chl->batch_n >= 2 || (chl->batch_n == 1 && chl->batch_more);
    if (!gather_ns || !many || chl->batch_n >= max || wait <= 0)
        return;
    struct timespec ts = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
    nanosleep(&ts, NULL);
    for (size_t sh = 0; sh < chl->ring.nshards; sh++)
        chl->shards[sh].waiting = 1;
}

static int queue_next(chl_t *chl, const char *queue, long timeout_ms, const chl_message_t *done,
                      size_t ndone, chl_message_t *out, size_t max, size_t *n);

int chl_queue_next(chl_t *chl, const char *queue, long timeout_ms, const chl_message_t *done,
                   size_t ndone, chl_message_t *out, size_t max, size_t *n)
{
    gather(chl, max);
    chl->batch_more = 0;
    int rc = queue_next(chl, queue, timeout_ms, done, ndone, out, max, n);
    chl->batch_ns = mc_mono_ns();
    chl->batch_n = rc == 0 ? *n : 0;
    return rc;
}

static int queue_next(chl_t *chl, const char *queue, long timeout_ms, const chl_message_t *done,
                      size_t ndone, chl_message_t *out, size_t max, size_t *n)
{
    char qkey[CHL__KEY_MAX];
    *n = 0;
    if (chl__check_plain(queue) != 0 || timeout_ms < 0 || max < 1 || max > CHL_QUEUE_BATCH ||
        ndone > CHL_QUEUE_BATCH || (ndone && !done))
        return MC_EINVAL;
    int rc = chl__key(qkey, sizeof(qkey), chl->cfg.prefix, queue, NULL);
    if (rc != 0)
        return rc;
    chl->registered = 1; /* pops keep it registered (beat_due); a reconnect does too */
    memset(out, 0, max * sizeof(*out));
    int64_t deadline = timeout_ms ? mc_mono_ms() + timeout_ms : 0;
    size_t ns = chl->ring.nshards;
    /* Pops refresh the heartbeat when due: block for at most half its TTL so
     * that an idle worker never looks dead. */
    long slice = chl->cfg.heartbeat_ttl_ms / 2;
    if (slice > CHL__BLOCK_SLICE_MS)
        slice = CHL__BLOCK_SLICE_MS;
    if (slice < 1)
        slice = 1;
    if (ns > 1) {
        /* The acknowledgements go to each shard first, then the pops. */
        for (size_t sh = 0; sh < ns && ndone; sh++) {
            int skipped = 0;
            rc = queue_move_shard(chl, sh, qkey, 0, done, ndone, out, 0, n, &skipped);
            if (rc != 0)
                return rc;
        }
        ndone = 0;
    }
    for (;;) {
        int skipped = 0;
        if (ns == 1) {
            long block = chl__sync_next_block(deadline, slice);
            rc = queue_move_shard(chl, 0, qkey, block, done, ndone, out, max, n, &skipped);
            ndone = 0;
            if (rc != 0 || *n > 0)
                return rc;
            if (block == 0 && !skipped)
                return MC_EAGAIN;
            continue;
        }
        /* Pushes are spread over every shard: look at each, then block
         * briefly on one after another. */
        for (size_t k = 0; k < ns && *n < max; k++) {
            rc = queue_move_shard(chl, (chl->pop_next + k) % ns, qkey, 0, NULL, 0, out, max - *n, n,
                                  &skipped);
            if (rc != 0)
                return rc;
        }
        if (*n > 0)
            return 0;
        if (skipped)
            continue;
        long block = chl__sync_next_block(deadline, CHL__SYNC_MULTI_SLICE_MS);
        if (block == 0)
            return MC_EAGAIN;
        rc = queue_move_shard(chl, chl->pop_next++ % ns, qkey, block, NULL, 0, out, max, n,
                              &skipped);
        if (rc != 0 || *n > 0)
            return rc;
    }
}

int chl_ack(chl_t *chl, const chl_message_t *msg)
{
    const chl__sync_inflight_t *in = msg ? msg->internal : NULL;
    if (!in || in->shard >= chl->ring.nshards)
        return MC_EINVAL;
    chl__sync_shard_t *shard = &chl->shards[in->shard];
    if (in->move == shard->moved)
        shard->head = 0; /* the newest are no longer that move's alone */
    int rc = inflight_remove(chl, in->shard, in->el, in->len);
    if (rc < 0)
        return rc;
    return rc == 1 ? 0 : MC_ENOTFOUND;
}

int chl_requeue_dead(chl_t *chl, size_t *requeued)
{
    size_t total = 0;
    int rc;
    const char *keys[1] = {chl->fixed.workers};
    const char *args[3] = {chl->cfg.prefix, chl->name, chl->fixed.hb_ttl};
    int first_err = 0;
    for (size_t sh = 0; sh < chl->ring.nshards; sh++) {
        int64_t now = mc_mono_ms();
        redisReply *r = chl__sync_script(chl, sh, CHL__S_REQUEUE, 1, keys, 3, args, NULL, &rc);
        if (!r) {
            first_err = first_err ? first_err : rc;
            continue;
        }
        chl->shards[sh].beat_at = now;
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
            total += (size_t)r->integer;
        freeReplyObject(r);
    }
    if (total)
        mc_info("channel-layer: requeued %zu in-flight messages of dead workers", total);
    if (requeued)
        *requeued = total;
    return first_err;
}

int chl_queue_length(chl_t *chl, const char *queue, size_t *n)
{
    char key[CHL__KEY_MAX];
    *n = 0;
    if (chl__check_plain(queue) != 0)
        return MC_EINVAL;
    int rc = chl__key(key, sizeof(key), chl->cfg.prefix, queue, NULL);
    if (rc != 0)
        return rc;
    const char *argv[2] = {"LLEN", key};
    const size_t lens[2] = {4, strlen(key)};
    int first_err = 0;
    for (size_t sh = 0; sh < chl->ring.nshards; sh++) {
        redisReply *r = chl__sync_command(chl, sh, 2, argv, lens, &rc);
        if (!r) {
            first_err = first_err ? first_err : rc;
            continue;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
            *n += (size_t)r->integer;
        freeReplyObject(r);
    }
    return first_err;
}
