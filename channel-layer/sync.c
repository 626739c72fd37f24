/*
 * channel-layer/sync.c: the blocking client chl_t (see chl.h and sync.h):
 * its shards and their scripts, plain sends and receives, and rate
 * limits. Reliable queues are in sync_queue.c, groups in sync_group.c.
 *
 * A Sentinel shard asks its sentinels for the master at every (re)connect,
 * and a reply that says the server is no longer a master drops the
 * connection, so that the next call finds the new one. A server reached
 * anew may have lost everything (a promoted replica lags, a restart
 * forgets): the scripts are loaded at once, and a worker registers again
 * (heartbeat, workers set).
 */
#include "channel-layer/sentinel.h"
#include "channel-layer/sync.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNC_CONNECT_TIMEOUT_MS 1000
#define SYNC_BACKOFF_MIN_MS 50
#define SYNC_BACKOFF_MAX_MS 2000
#define SYNC_MAX_CHANNELS 64
#define SYNC_OUT_KEPT (64 * 1024) /* a pipeline buffer larger than this is freed after use */

static void shard_down(chl_t *chl, size_t i, const char *why)
{
    chl__sync_shard_t *s = &chl->shards[i];
    if (s->ctx) {
        char at[CHL__SERVER_TEXT];
        mc_warn("channel-layer: shard %zu: %s lost: %s", i, chl__server_text(&s->at, at), why);
        redisFree(s->ctx);
        s->ctx = NULL;
        s->backoff_ms = 0; /* the next call tries at once */
        s->retry_at = 0;
    }
    chl->stats.redis_errors++;
}

static int load_scripts(redisContext *c, chl__sync_shard_t *s)
{
    for (int id = 0; id < CHL__S_COUNT; id++) {
        redisReply *r = redisCommand(c, "SCRIPT LOAD %s", chl__script(id));
        int ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;
        if (ok)
            memcpy(s->sha[id], r->str, 41);
        else if (r && r->type == REDIS_REPLY_ERROR)
            mc_error("channel-layer: script %d does not load: %s", id, r->str);
        freeReplyObject(r);
        if (!ok)
            return MC_EREDIS;
    }
    return 0;
}

/* Refreshes this worker's heartbeat and membership of the workers set on
 * shard i (chl_requeue_dead finds the dead by these). Returns 0 or MC_EREDIS. */
static int register_worker(chl_t *chl, size_t i)
{
    const struct chl__sync_fixed *f = &chl->fixed;
    redisContext *c = chl->shards[i].ctx;
    int ok = redisAppendCommand(c, "SET %s 1 PX %s", f->hb, f->hb_ttl) == REDIS_OK &&
             redisAppendCommand(c, "SADD %s %s", f->workers, chl->name) == REDIS_OK;
    for (int k = 0; k < 2 && ok; k++) {
        void *r = NULL;
        ok = redisGetReply(c, &r) == REDIS_OK && r && ((redisReply *)r)->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
    }
    return ok ? 0 : MC_EREDIS;
}

/* Leaves the master of shard i when its sentinels announced (+switch-master)
 * that another one replaced it: the call about to be made goes to the new
 * one, not to an old master that still takes writes. */
static void follow_sentinels(chl_t *chl, size_t i)
{
    chl__sync_shard_t *s = &chl->shards[i];
    chl__server_t to;
    if (chl__watch_poll(&s->watch, &chl->ring.addrs[i], i, &to) != 1 || !s->ctx)
        return;
    if (strcmp(to.host, s->at.host) == 0 && to.port == s->at.port)
        return;
    char why[CHL__HOST_MAX + 64];
    snprintf(why, sizeof(why), "the sentinels moved the master to %s:%d", to.host, to.port);
    shard_down(chl, i, why);
}

/* Connects shard i: finds its server (through the sentinels for a Sentinel
 * shard), loads the scripts and, for a worker, registers it. */
static int shard_up(chl_t *chl, size_t i)
{
    chl__sync_shard_t *s = &chl->shards[i];
    follow_sentinels(chl, i);
    if (s->ctx)
        return 0;
    int64_t now = mc_mono_ms();
    if (now < s->retry_at)
        return MC_EREDIS;
    const chl__addr_t *a = &chl->ring.addrs[i];
    redisContext *c = NULL;
    chl__server_t at;
    char why[256], text[CHL__SERVER_TEXT];
    int ok = chl__server_connect(a, SYNC_CONNECT_TIMEOUT_MS, CHL__COMMAND_TIMEOUT_MS,
                                 &s->next_sentinel, &at, &c, why, sizeof(why)) == 0;
    if (ok && load_scripts(c, s) != 0) {
        snprintf(why, sizeof(why), "scripts do not load on %s", chl__server_text(&at, text));
        ok = 0;
    }
    if (!ok) {
        if (c)
            redisFree(c);
        if (!s->warned)
            mc_warn("channel-layer: shard %zu: %s; retrying", i, why);
        s->warned = 1;
        s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : SYNC_BACKOFF_MIN_MS;
        if (s->backoff_ms > SYNC_BACKOFF_MAX_MS)
            s->backoff_ms = SYNC_BACKOFF_MAX_MS;
        s->retry_at = now + s->backoff_ms;
        chl->stats.redis_errors++;
        return MC_EREDIS;
    }
    if (s->ever_up && (strcmp(s->at.host, at.host) != 0 || s->at.port != at.port)) {
        mc_warn("channel-layer: shard %zu: master %s moved from %s:%d to %s:%d", i, a->master,
                s->at.host, s->at.port, at.host, at.port);
        chl->stats.failovers++;
    } else if (s->warned) {
        mc_info("channel-layer: shard %zu: %s answers again", i, chl__server_text(&at, text));
    }
    s->ctx = c;
    s->at = at;
    s->backoff_ms = 0;
    s->warned = 0;
    s->beat_at = 0; /* a worker not registered yet is, with its next pop */
    s->waiting = 1;
    if (s->ever_up)
        chl->stats.reconnects++;
    s->ever_up = 1;
    if (chl->registered && register_worker(chl, i) != 0) {
        shard_down(chl, i, "registering the worker failed");
        return MC_EREDIS;
    }
    if (chl->registered)
        s->beat_at = mc_mono_ms();
    return 0;
}

int chl__sync_pipeline(chl_t *chl, size_t i, size_t n, const int *argc, const char **const *argv,
                       const size_t *const *lens, redisReply **replies)
{
    int rc = shard_up(chl, i);
    if (rc != 0)
        return rc;
    redisContext *c = chl->shards[i].ctx;
    /* The whole pipeline in one buffer, handed to hiredis at once. */
    size_t size = 0, used = 0;
    for (size_t k = 0; k < n; k++)
        size += chl__resp_size(argc[k], lens[k]);
    if (size > chl->out_cap) {
        char *out = realloc(chl->out, size);
        if (!out)
            return MC_ENOMEM;
        chl->out = out;
        chl->out_cap = size;
    }
    for (size_t k = 0; k < n; k++)
        used += chl__resp_write(chl->out + used, argc[k], argv[k], lens[k]);
    rc = redisAppendFormattedCommand(c, chl->out, used) == REDIS_OK ? 0 : MC_EREDIS;
    if (chl->out_cap > SYNC_OUT_KEPT) { /* a large message does not stay */
        free(chl->out);
        chl->out = NULL;
        chl->out_cap = 0;
    }
    if (rc != 0) {
        shard_down(chl, i, "append failed");
        return rc;
    }
    int demoted = 0;
    for (size_t k = 0; k < n; k++) {
        void *r = NULL;
        if (redisGetReply(c, &r) != REDIS_OK || !r) {
            shard_down(chl, i, c->errstr);
            for (size_t j = 0; j < k; j++)
                freeReplyObject(replies[j]);
            return MC_EREDIS;
        }
        replies[k] = r;
        demoted |= replies[k]->type == REDIS_REPLY_ERROR && chl__not_master(replies[k]->str);
    }
    /* The replies are the caller's (they are errors); the connection is to
     * a server that is no longer the master, so the next call finds it. */
    if (demoted)
        shard_down(chl, i, "no longer the master");
    return 0;
}

redisReply *chl__sync_command(chl_t *chl, size_t i, int argc, const char **argv, const size_t *lens,
                              int *rc)
{
    redisReply *r = NULL;
    const char **const av[1] = {argv};
    const size_t *const lv[1] = {lens};
    *rc = chl__sync_pipeline(chl, i, 1, &argc, av, lv, &r);
    if (*rc == 0 && r->type == REDIS_REPLY_ERROR) {
        mc_warn("channel-layer: redis error: %.120s", r->str);
        chl->stats.redis_errors++;
        freeReplyObject(r);
        *rc = MC_EREDIS;
        return NULL;
    }
    return r;
}

int chl__sync_reload_scripts(chl_t *chl, size_t i)
{
    if (!chl->shards[i].ctx)
        return MC_EREDIS; /* dropped by the same replies */
    if (load_scripts(chl->shards[i].ctx, &chl->shards[i]) == 0)
        return 0;
    shard_down(chl, i, "scripts do not load");
    return MC_EREDIS;
}

int chl__sync_scripts(chl_t *chl, size_t i, enum chl__script_id id, const chl__script_call_t *calls,
                      size_t n, redisReply **replies)
{
    size_t most = 0;
    for (size_t k = 0; k < n; k++) {
        replies[k] = NULL;
        if (3 + calls[k].nkeys + calls[k].nargs > most)
            most = 3 + calls[k].nkeys + calls[k].nargs;
    }
    int rc = shard_up(chl, i);
    if (rc != 0 || n == 0)
        return rc;
    /* The arrays below in one block, on the stack for a usual call (a
     * batch's group sends on one shard): one allocation, not nine, when
     * it is larger. Eight-byte items first, so that each is aligned. */
    size_t bytes = n * most * (sizeof(const char *) + sizeof(size_t)) +
                   n * (sizeof(const char **) + sizeof(const size_t *) + sizeof(redisReply *) +
                        sizeof(size_t) + 2 * sizeof(int) + 24);
    uint64_t local[512];
    char *block = bytes <= sizeof(local) ? (char *)local : malloc(bytes), *at = block;
    if (!block)
        return MC_ENOMEM;
    const char **v = (const char **)at;
    at += n * most * sizeof(*v);
    size_t *l = (size_t *)at;
    at += n * most * sizeof(*l);
    const char ***pv = (const char ***)at;
    at += n * sizeof(*pv);
    const size_t **pl = (const size_t **)at;
    at += n * sizeof(*pl);
    redisReply **r = (redisReply **)at;
    at += n * sizeof(*r);
    size_t *todo = (size_t *)at;
    at += n * sizeof(*todo);
    int *pc = (int *)at, *pa = pc + n;
    char(*nk)[24] = (char(*)[24])(pa + n);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const chl__script_call_t *c = &calls[k];
        const char **cv = v + k * most;
        size_t *cl = l + k * most;
        chl__decimal(nk[k], (long)c->nkeys);
        cv[0] = "EVALSHA";
        cv[2] = nk[k];
        for (size_t j = 0; j < c->nkeys; j++)
            cv[3 + j] = c->keys[j];
        for (size_t j = 0; j < c->nargs; j++)
            cv[3 + c->nkeys + j] = c->args[j];
        pc[k] = (int)(3 + c->nkeys + c->nargs);
        for (size_t j = 0; j < (size_t)pc[k]; j++)
            cl[j] = (j >= 3 + c->nkeys && c->arglens) ? c->arglens[j - 3 - c->nkeys]
                    : j == 1                          ? 0 /* the SHA: set below */
                                                      : strlen(cv[j]);
        todo[k] = k;
    }
    size_t ntodo = n;
    int first_err = 0;
    for (int attempt = 0; rc == 0 && attempt < 2 && ntodo; attempt++) {
        for (size_t t = 0; t < ntodo; t++) {
            size_t k = todo[t];
            v[k * most + 1] = chl->shards[i].sha[id];
            l[k * most + 1] = strlen(chl->shards[i].sha[id]);
            pv[t] = v + k * most;
            pl[t] = l + k * most;
            pa[t] = pc[k];
        }
        rc = chl__sync_pipeline(chl, i, ntodo, pa, (const char **const *)pv, pl, r);
        if (rc != 0)
            break;
        size_t again = 0;
        for (size_t t = 0; t < ntodo; t++) {
            size_t k = todo[t];
            if (r[t]->type != REDIS_REPLY_ERROR) {
                replies[k] = r[t];
                continue;
            }
            if (strncmp(r[t]->str, "NOSCRIPT", 8) == 0)
                todo[again++] = k;
            else
                mc_warn("channel-layer: script %d failed: %.120s", id, r[t]->str);
            freeReplyObject(r[t]);
            chl->stats.redis_errors++;
            first_err = MC_EREDIS;
        }
        ntodo = again;
        if (ntodo && attempt == 0 && chl__sync_reload_scripts(chl, i) != 0)
            break;
    }
    if (block != (char *)local)
        free(block);
    if (rc == 0)
        for (size_t k = 0; k < n && rc == 0; k++)
            if (!replies[k])
                rc = first_err ? first_err : MC_EREDIS;
    return rc;
}

redisReply *chl__sync_script(chl_t *chl, size_t i, enum chl__script_id id, size_t nkeys,
                             const char *const *keys, size_t nargs, const char *const *args,
                             const size_t *arglens, int *rc)
{
    chl__script_call_t call = {nkeys, nargs, keys, args, arglens};
    redisReply *r;
    *rc = chl__sync_scripts(chl, i, id, &call, 1, &r);
    return r;
}

int chl_open(chl_t **out, const chl_config_t *cfg, const char *name)
{
    *out = NULL;
    if (name && chl__check_plain(name) != 0)
        return MC_EINVAL;
    chl_t *chl = calloc(1, sizeof(*chl));
    if (!chl)
        return MC_ENOMEM;
    int rc = chl__config_copy(&chl->cfg, &chl->cfg_mem, cfg);
    if (rc == 0)
        rc = chl__ring_init(&chl->ring, chl->cfg.redis_urls);
    if (rc == 0) {
        chl->shards = calloc(chl->ring.nshards, sizeof(*chl->shards));
        if (!chl->shards)
            rc = MC_ENOMEM;
    }
    if (rc != 0) {
        chl_close(chl);
        return rc;
    }
    if (name)
        snprintf(chl->name, sizeof(chl->name), "%s", name);
    else
        chl__make_name(chl->name, sizeof(chl->name), "wrk");
    struct chl__sync_fixed *f = &chl->fixed;
    if (chl__key(f->hb, sizeof(f->hb), chl->cfg.prefix, "hb:", chl->name) != 0 ||
        chl__key(f->workers, sizeof(f->workers), chl->cfg.prefix, "workers", NULL) != 0 ||
        chl__key(f->inflight, sizeof(f->inflight), chl->cfg.prefix, "inflight:", chl->name) != 0) {
        chl_close(chl);
        return MC_EINVAL;
    }
    chl__decimal(f->hb_ttl, chl->cfg.heartbeat_ttl_ms);
    chl__decimal(f->expiry, chl->cfg.expiry_ms);
    /* A replay comes from a requeued envelope, which lives at most one
     * expiry: a name kept for two outlives it. */
    chl__decimal(f->once_ttl, 2 * chl->cfg.expiry_ms);
    chl__decimal(f->group_expiry, chl->cfg.group_expiry_s);
    chl__decimal(f->process_capacity, chl->cfg.process_capacity);
    chl__decimal(f->process_bytes, chl->cfg.process_bytes);
    chl__decimal(f->list_ttl, chl->cfg.group_expiry_s * 1000);
    for (size_t i = 0; i < chl->ring.nshards; i++) {
        rc = shard_up(chl, i);
        if (rc != 0) {
            chl_close(chl);
            return rc;
        }
    }
    *out = chl;
    return 0;
}

void chl_close(chl_t *chl)
{
    if (!chl)
        return;
    if (chl->shards)
        for (size_t i = 0; i < chl->ring.nshards; i++) {
            if (chl->shards[i].ctx)
                redisFree(chl->shards[i].ctx);
            chl__watch_close(&chl->shards[i].watch);
        }
    free(chl->shards);
    free(chl->out);
    chl__ring_clear(&chl->ring);
    free(chl->cfg_mem);
    free(chl);
}

const char *chl_name(const chl_t *chl)
{
    return chl->name;
}

const chl_stats_t *chl_stats(const chl_t *chl)
{
    return &chl->stats;
}

int chl__sync_push_frame(chl_t *chl, size_t shard, const char *key, long cap, const char *ttl,
                         int kind, int64_t deadline, const char *name, uint64_t seq,
                         const void *msg, size_t len)
{
    char *frame;
    size_t flen;
    int rc = chl__frame_build(&frame, &flen, kind, deadline, name, seq, msg, len);
    if (rc != 0)
        return rc;
    char capb[24], bytes[CHL__KEY_MAX];
    chl__decimal(capb, cap);
    /* A process list is bounded in bytes too. */
    int proc = chl__bytes_key(bytes, sizeof(bytes), chl->cfg.prefix, key) == 0;
    const char *kv[2] = {key, bytes};
    const char *args[4] = {capb, ttl, chl->fixed.process_bytes, frame};
    size_t lens[4] = {strlen(capb), strlen(ttl), strlen(chl->fixed.process_bytes), flen};
    redisReply *r = chl__sync_script(chl, shard, CHL__S_SEND, proc ? 2 : 1, kv, 4, args, lens, &rc);
    free(frame);
    if (!r)
        return rc;
    rc = (r->type == REDIS_REPLY_INTEGER && r->integer == 1) ? 0 : MC_EFULL;
    freeReplyObject(r);
    if (rc == MC_EFULL)
        chl->stats.full++;
    return rc;
}

/* The list a channel lives in: "<prefix><channel>", or for a process
 * channel "<prefix><process>!". */
static int channel_key(const chl_t *chl, const char *channel, long bang, char *key, size_t size)
{
    if (bang < 0)
        return chl__key(key, size, chl->cfg.prefix, channel, NULL);
    int n = snprintf(key, size, "%s%.*s!", chl->cfg.prefix, (int)bang, channel);
    return (n < 0 || (size_t)n >= size) ? MC_ETOOBIG : 0;
}

int chl_send(chl_t *chl, const char *channel, const void *msg, size_t len)
{
    long bang;
    char key[CHL__KEY_MAX];
    if (chl__check_channel(channel, &bang) != 0 || (!msg && len))
        return MC_EINVAL;
    if (len > CHL__MSG_MAX)
        return MC_ETOOBIG;
    int rc = channel_key(chl, channel, bang, key, sizeof(key));
    if (rc != 0)
        return rc;
    long cap = bang >= 0 ? chl->cfg.process_capacity : chl->cfg.capacity;
    /* An ordinary channel lives as long as its newest message; a process
     * list is removed when the process is reaped, and a long expiry only
     * catches what is sent to it later. */
    const char *ttl = bang >= 0 ? chl->fixed.list_ttl : chl->fixed.expiry;
    rc = chl__sync_push_frame(chl, chl__ring_channel(&chl->ring, channel), key, cap, ttl, CHL__MSG,
                              mc_now_ms() + chl->cfg.expiry_ms, channel, 0, msg, len);
    if (rc == 0)
        chl->stats.sent++;
    return rc;
}

int chl_queue_push(chl_t *chl, const char *queue, const void *msg, size_t len)
{
    char key[CHL__KEY_MAX];
    if (chl__check_plain(queue) != 0 || (!msg && len))
        return MC_EINVAL;
    if (len > CHL__MSG_MAX)
        return MC_ETOOBIG;
    int rc = chl__key(key, sizeof(key), chl->cfg.prefix, queue, NULL);
    if (rc != 0)
        return rc;
    size_t shard = chl->push_next++ % chl->ring.nshards;
    /* A reliable queue does not expire: its messages' deadlines do. */
    rc = chl__sync_push_frame(chl, shard, key, chl->cfg.queue_capacity, "0", CHL__MSG,
                              mc_now_ms() + chl->cfg.expiry_ms, queue, 0, msg, len);
    if (rc == 0)
        chl->stats.sent++;
    return rc;
}

long chl__sync_next_block(int64_t deadline, long slice_ms)
{
    if (deadline == 0)
        return slice_ms;
    int64_t left = deadline - mc_mono_ms();
    if (left <= 0)
        return 0;
    return left < slice_ms ? (long)left : slice_ms;
}

void chl__sync_seconds(char buf[32], long ms)
{
    size_t n = chl__digits(buf, (uint64_t)(ms > 0 ? ms : 0) / 1000);
    unsigned frac = (unsigned)((ms > 0 ? ms : 0) % 1000);
    buf[n++] = '.';
    buf[n++] = (char)('0' + frac / 100);
    buf[n++] = (char)('0' + frac / 10 % 10);
    buf[n++] = (char)('0' + frac % 10);
    buf[n] = '\0';
}

/* Decides what to do with an element popped from a channel. Returns 1 when
 * *out holds a message, 0 when the element was dropped (and counted). */
static int accept_element(chl_t *chl, const char *el, size_t len, chl_message_t *out, int *rc)
{
    chl__frame_t f;
    *rc = 0;
    if (chl__frame_parse(&f, el, len) != 0) {
        chl->stats.malformed++;
        mc_warn("channel-layer: skipped a malformed element of %zu bytes", len);
        return 0;
    }
    if (f.kind == CHL__ADD || f.kind == CHL__DISCARD)
        return 0; /* membership control is for a process endpoint */
    if (f.deadline && f.deadline < mc_now_ms()) {
        chl->stats.expired++;
        return 0;
    }
    *rc = chl__message_fill(out, f.name, f.name_len, f.payload, f.len);
    if (*rc != 0)
        return 0;
    out->seq = f.seq;
    chl->stats.received++;
    return 1;
}

/* One (B)LMPOP over the keys of one shard: block_ms 0 does not block.
 * Returns 0 with *r (nil or [key, [element]]), or MC_EREDIS. */
static int pop_shard(chl_t *chl, size_t shard, const char *const *keys, size_t nkeys, long block_ms,
                     redisReply **r)
{
    const char *v[SYNC_MAX_CHANNELS + 6];
    size_t l[SYNC_MAX_CHANNELS + 6];
    char tb[32], nk[24];
    int argc = 0;
    if (block_ms > 0) {
        chl__sync_seconds(tb, block_ms);
        v[argc++] = "BLMPOP";
        v[argc++] = tb;
    } else {
        v[argc++] = "LMPOP";
    }
    chl__decimal(nk, (long)nkeys);
    v[argc++] = nk;
    for (size_t k = 0; k < nkeys; k++)
        v[argc++] = keys[k];
    v[argc++] = "RIGHT";
    for (int k = 0; k < argc; k++)
        l[k] = strlen(v[k]);
    int rc;
    *r = chl__sync_command(chl, shard, argc, v, l, &rc);
    return rc;
}

/* What was popped from a process list leaves its byte counter (one
 * element: the list may hold more). Best effort: a count that is lost
 * heals once the list is found short (scripts.c). */
static void popped(chl_t *chl, size_t shard, const char *list, size_t len)
{
    char bytes[CHL__KEY_MAX], n[24];
    if (chl__bytes_key(bytes, sizeof(bytes), chl->cfg.prefix, list) != 0)
        return;
    chl__decimal(n, (long)len);
    const char *v[3] = {"DECRBY", bytes, n};
    size_t l[3] = {6, strlen(bytes), strlen(n)};
    int rc;
    freeReplyObject(chl__sync_command(chl, shard, 3, v, l, &rc));
}

/* One pop on one shard over the keys of channels that live there.
 * Returns 0 and *got: 1 a message in *out, 0 nothing there, 2 an element
 * was dropped (expired, malformed, control); or an error. */
static int try_pop(chl_t *chl, size_t sh, char (*keys)[CHL__KEY_MAX], const size_t *shard_of,
                   size_t n, long block_ms, chl_message_t *out, int *got)
{
    const char *mine[SYNC_MAX_CHANNELS];
    size_t nk = 0;
    *got = 0;
    for (size_t i = 0; i < n; i++)
        if (shard_of[i] == sh)
            mine[nk++] = keys[i];
    if (nk == 0)
        return 0;
    redisReply *r;
    int rc = pop_shard(chl, sh, mine, nk, block_ms, &r);
    if (rc != 0)
        return rc;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_ARRAY &&
        r->element[1]->elements == 1 && r->element[1]->element[0]->type == REDIS_REPLY_STRING) {
        redisReply *el = r->element[1]->element[0];
        popped(chl, sh, r->element[0]->str, el->len);
        *got = accept_element(chl, el->str, el->len, out, &rc) ? 1 : 2;
    }
    freeReplyObject(r);
    return rc;
}

int chl_receive(chl_t *chl, const char *const *channels, size_t n, long timeout_ms,
                chl_message_t *out)
{
    char keys[SYNC_MAX_CHANNELS][CHL__KEY_MAX];
    size_t shard_of[SYNC_MAX_CHANNELS];
    memset(out, 0, sizeof(*out));
    if (!channels || n == 0 || n > SYNC_MAX_CHANNELS || timeout_ms < 0)
        return MC_EINVAL;
    int multi = 0;
    for (size_t i = 0; i < n; i++) {
        long bang;
        if (chl__check_channel(channels[i], &bang) != 0)
            return MC_EINVAL;
        int rc = channel_key(chl, channels[i], bang, keys[i], sizeof(keys[i]));
        if (rc != 0)
            return rc;
        shard_of[i] = chl__ring_channel(&chl->ring, channels[i]);
        multi |= shard_of[i] != shard_of[0];
    }
    int64_t deadline = timeout_ms ? mc_mono_ms() + timeout_ms : 0;
    for (;;) {
        int got = 0, rc;
        if (!multi) {
            /* One blocking call over every key. */
            long block = chl__sync_next_block(deadline, CHL__BLOCK_SLICE_MS);
            rc = try_pop(chl, shard_of[0], keys, shard_of, n, block, out, &got);
            if (rc != 0 || got == 1)
                return rc;
            if (got == 0 && block == 0)
                return MC_EAGAIN;
            continue;
        }
        /* Keys on several shards: a quick pass over all of them, then a
         * short block on one shard after another. */
        int dropped = 0;
        for (size_t sh = 0; sh < chl->ring.nshards; sh++) {
            rc = try_pop(chl, sh, keys, shard_of, n, 0, out, &got);
            if (rc != 0 || got == 1)
                return rc;
            dropped |= got == 2;
        }
        if (dropped)
            continue;
        long block = chl__sync_next_block(deadline, CHL__SYNC_MULTI_SLICE_MS);
        if (block == 0)
            return MC_EAGAIN;
        size_t sh = shard_of[chl->pop_next++ % n];
        rc = try_pop(chl, sh, keys, shard_of, n, block, out, &got);
        if (rc != 0 || got == 1)
            return rc;
    }
}

int chl_rate_take(chl_t *chl, const char *key, double rate, long burst, int *allowed, long *refused)
{
    char k[CHL__KEY_MAX], rb[32], bb[24];
    *allowed = 0;
    if (refused)
        *refused = 0;
    if (!key || !*key || strlen(key) > CHL__NAME_MAX || !(rate > 0) || burst < 1)
        return MC_EINVAL;
    int rc = chl__key(k, sizeof(k), chl->cfg.prefix, "rate:", key);
    if (rc != 0)
        return rc;
    snprintf(rb, sizeof(rb), "%.6f", rate);
    snprintf(bb, sizeof(bb), "%ld", burst);
    const char *kv[1] = {k};
    const char *args[2] = {rb, bb};
    redisReply *r = chl__sync_script(chl, chl__ring_name(&chl->ring, key, strlen(key)), CHL__S_RATE,
                                     1, kv, 2, args, NULL, &rc);
    if (!r)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER) {
        rc = MC_EREDIS;
    } else {
        *allowed = r->element[0]->integer == 1;
        if (refused)
            *refused = (long)r->element[1]->integer;
    }
    freeReplyObject(r);
    return rc;
}
