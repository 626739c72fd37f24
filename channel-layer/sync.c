/*
 * The blocking client chl_t: one redisContext per shard, opened lazily again
 * after an error with a backoff, so that a call during an outage fails fast
 * with MC_EREDIS and a later call finds the server again. A Sentinel shard
 * asks its sentinels for the master at every (re)connect, and a reply that
 * says the server is no longer a master drops the connection, so that the
 * next call finds the new one. A server reached anew may have lost
 * everything (a promoted replica lags, a restart forgets): the scripts are
 * loaded at once, and a worker registers again (heartbeat, workers set).
 */
#include "channel-layer/internal.h"
#include "channel-layer/sentinel.h"
#include "common/error.h"
#include "common/log.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNC_CONNECT_TIMEOUT_MS 1000
#define SYNC_BACKOFF_MIN_MS 50
#define SYNC_BACKOFF_MAX_MS 2000
#define SYNC_MULTI_SLICE_MS 100 /* blocking slice when keys span shards */
#define SYNC_MAX_CHANNELS 64
#define SYNC_SMALL_ARGV 16

typedef struct sync_shard {
    redisContext *ctx; /* NULL while down */
    int64_t retry_at;  /* monotonic ms before which no reconnect is tried */
    long backoff_ms;
    int ever_up;
    int warned;           /* the current outage was logged */
    chl__server_t at;     /* the server reached last */
    size_t next_sentinel; /* the sentinel asked first */
    char sha[CHL__S_COUNT][41];
} sync_shard_t;

struct chl {
    chl_config_t cfg;
    char *cfg_mem;
    char name[CHL__NAME_MAX + 1];
    chl__ring_t ring;
    sync_shard_t *shards;
    chl_stats_t stats;
    size_t push_next; /* round robin of queue pushes */
    size_t pop_next;  /* the shard a multi-shard pop blocks on next */
    int registered;   /* popped a queue: keeps a heartbeat on every shard */
};

/* Per-message state that chl_ack needs: the exact element and its shard. */
typedef struct sync_inflight {
    size_t shard;
    size_t len;
    char el[];
} sync_inflight_t;

static void shard_down(chl_t *chl, size_t i, const char *why)
{
    sync_shard_t *s = &chl->shards[i];
    if (s->ctx) {
        mc_warn("channel-layer: shard %zu: %s:%d lost: %s", i, s->at.host, s->at.port, why);
        redisFree(s->ctx);
        s->ctx = NULL;
        s->backoff_ms = 0; /* the next call tries at once */
        s->retry_at = 0;
    }
    chl->stats.redis_errors++;
}

static int load_scripts(redisContext *c, sync_shard_t *s)
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
    char hb[CHL__KEY_MAX], workers[CHL__KEY_MAX], ttl[24];
    if (chl__key(hb, sizeof(hb), chl->cfg.prefix, "hb:", chl->name) != 0 ||
        chl__key(workers, sizeof(workers), chl->cfg.prefix, "workers", NULL) != 0)
        return MC_EREDIS;
    snprintf(ttl, sizeof(ttl), "%ld", chl->cfg.heartbeat_ttl_ms);
    redisContext *c = chl->shards[i].ctx;
    int ok = redisAppendCommand(c, "SET %s 1 PX %s", hb, ttl) == REDIS_OK &&
             redisAppendCommand(c, "SADD %s %s", workers, chl->name) == REDIS_OK;
    for (int k = 0; k < 2 && ok; k++) {
        void *r = NULL;
        ok = redisGetReply(c, &r) == REDIS_OK && r && ((redisReply *)r)->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
    }
    return ok ? 0 : MC_EREDIS;
}

/* Connects shard i: finds its server (through the sentinels for a Sentinel
 * shard), loads the scripts and, for a worker, registers it. */
static int shard_up(chl_t *chl, size_t i)
{
    sync_shard_t *s = &chl->shards[i];
    if (s->ctx)
        return 0;
    int64_t now = mc_mono_ms();
    if (now < s->retry_at)
        return MC_EREDIS;
    const chl__addr_t *a = &chl->ring.addrs[i];
    redisContext *c = NULL;
    chl__server_t at;
    char why[256];
    int ok = chl__server_connect(a, SYNC_CONNECT_TIMEOUT_MS, CHL__COMMAND_TIMEOUT_MS,
                                 &s->next_sentinel, &at, &c, why, sizeof(why)) == 0;
    if (ok && load_scripts(c, s) != 0) {
        snprintf(why, sizeof(why), "scripts do not load on %s:%d", at.host, at.port);
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
        mc_info("channel-layer: shard %zu: %s:%d answers again", i, at.host, at.port);
    }
    s->ctx = c;
    s->at = at;
    s->backoff_ms = 0;
    s->warned = 0;
    if (s->ever_up)
        chl->stats.reconnects++;
    s->ever_up = 1;
    if (chl->registered && register_worker(chl, i) != 0) {
        shard_down(chl, i, "registering the worker failed");
        return MC_EREDIS;
    }
    return 0;
}

/* Sends a pipeline of n commands (argv form) and reads n replies into
 * replies[]. Returns 0, or MC_EREDIS with every reply freed (an I/O error
 * drops the connection; an error reply does not). */
static int shard_pipeline(chl_t *chl, size_t i, size_t n, const int *argc, const char **const *argv,
                          const size_t *const *lens, redisReply **replies)
{
    int rc = shard_up(chl, i);
    if (rc != 0)
        return rc;
    redisContext *c = chl->shards[i].ctx;
    for (size_t k = 0; k < n; k++)
        if (redisAppendCommandArgv(c, argc[k], argv[k], lens[k]) != REDIS_OK) {
            shard_down(chl, i, "append failed");
            return MC_EREDIS;
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

static redisReply *shard_command(chl_t *chl, size_t i, int argc, const char **argv,
                                 const size_t *lens, int *rc)
{
    redisReply *r = NULL;
    const char **const av[1] = {argv};
    const size_t *const lv[1] = {lens};
    *rc = shard_pipeline(chl, i, 1, &argc, av, lv, &r);
    if (*rc == 0 && r->type == REDIS_REPLY_ERROR) {
        mc_warn("channel-layer: redis error: %.120s", r->str);
        chl->stats.redis_errors++;
        freeReplyObject(r);
        *rc = MC_EREDIS;
        return NULL;
    }
    return r;
}

/* A server that answered NOSCRIPT lost its scripts (SCRIPT FLUSH): loads
 * them again, or gives up on the connection. Returns 0 or MC_EREDIS. */
static int reload_scripts(chl_t *chl, size_t i)
{
    if (!chl->shards[i].ctx)
        return MC_EREDIS; /* dropped by the same replies */
    if (load_scripts(chl->shards[i].ctx, &chl->shards[i]) == 0)
        return 0;
    shard_down(chl, i, "scripts do not load");
    return MC_EREDIS;
}

/* One call of a script: its keys and its arguments (arglens NULL: strlen). */
typedef struct script_call {
    size_t nkeys, nargs;
    const char *const *keys;
    const char *const *args;
    const size_t *arglens;
} script_call_t;

/* EVALSHA of script id for each of calls[0..n), pipelined in one round trip
 * to shard i: replies[k] gets call k's reply, or NULL when it failed. A
 * server that lost its scripts (NOSCRIPT, e.g. after SCRIPT FLUSH) gets them
 * again and the calls it refused are made once more. Returns 0 when every
 * call has its reply, else the first error. */
static int run_scripts(chl_t *chl, size_t i, enum chl__script_id id, const script_call_t *calls,
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
    const char **v = malloc(n * most * sizeof(*v));
    size_t *l = malloc(n * most * sizeof(*l));
    const char ***pv = malloc(n * sizeof(*pv));
    const size_t **pl = malloc(n * sizeof(*pl));
    int *pc = malloc(n * sizeof(*pc)), *pa = malloc(n * sizeof(*pa));
    char(*nk)[24] = malloc(n * sizeof(*nk));
    size_t *todo = malloc(n * sizeof(*todo));
    redisReply **r = malloc(n * sizeof(*r));
    rc = (v && l && pv && pl && pc && pa && nk && todo && r) ? 0 : MC_ENOMEM;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const script_call_t *c = &calls[k];
        const char **cv = v + k * most;
        size_t *cl = l + k * most;
        snprintf(nk[k], sizeof(nk[k]), "%zu", c->nkeys);
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
        rc = shard_pipeline(chl, i, ntodo, pa, (const char **const *)pv, pl, r);
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
        if (ntodo && attempt == 0 && reload_scripts(chl, i) != 0)
            break;
    }
    free(v), free(l), free(pv), free(pl), free(pc), free(pa), free(nk), free(todo), free(r);
    if (rc == 0)
        for (size_t k = 0; k < n && rc == 0; k++)
            if (!replies[k])
                rc = first_err ? first_err : MC_EREDIS;
    return rc;
}

static redisReply *run_script(chl_t *chl, size_t i, enum chl__script_id id, size_t nkeys,
                              const char *const *keys, size_t nargs, const char *const *args,
                              const size_t *arglens, int *rc)
{
    script_call_t call = {nkeys, nargs, keys, args, arglens};
    redisReply *r;
    *rc = run_scripts(chl, i, id, &call, 1, &r);
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
        for (size_t i = 0; i < chl->ring.nshards; i++)
            if (chl->shards[i].ctx)
                redisFree(chl->shards[i].ctx);
    free(chl->shards);
    chl__ring_free(&chl->ring);
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

/* Pushes one frame through the send script. cap < 0: no capacity check. */
static int push_frame(chl_t *chl, size_t shard, const char *key, long cap, int kind,
                      int64_t deadline, const char *name, const void *msg, size_t len)
{
    char *frame;
    size_t flen;
    int rc = chl__frame_build(&frame, &flen, kind, deadline, name, msg, len);
    if (rc != 0)
        return rc;
    char capb[24], ttlb[24];
    snprintf(capb, sizeof(capb), "%ld", cap);
    snprintf(ttlb, sizeof(ttlb), "%ld", chl->cfg.expiry_ms);
    const char *args[3] = {capb, ttlb, frame};
    size_t lens[3] = {strlen(capb), strlen(ttlb), flen};
    redisReply *r = run_script(chl, shard, CHL__S_SEND, 1, &key, 3, args, lens, &rc);
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
    rc = push_frame(chl, chl__ring_channel(&chl->ring, channel), key, cap, CHL__MSG,
                    mc_now_ms() + chl->cfg.expiry_ms, channel, msg, len);
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
    rc = push_frame(chl, shard, key, chl->cfg.queue_capacity, CHL__MSG,
                    mc_now_ms() + chl->cfg.expiry_ms, queue, msg, len);
    if (rc == 0)
        chl->stats.sent++;
    return rc;
}

/* The blocking time of the next call: the rest of the timeout, at most
 * slice_ms; 0 once the deadline passed. deadline 0 waits forever. */
static long next_block(int64_t deadline, long slice_ms)
{
    if (deadline == 0)
        return slice_ms;
    int64_t left = deadline - mc_mono_ms();
    if (left <= 0)
        return 0;
    return left < slice_ms ? (long)left : slice_ms;
}

static void seconds(char *buf, size_t size, long ms)
{
    snprintf(buf, size, "%ld.%03ld", ms / 1000, ms % 1000);
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
        seconds(tb, sizeof(tb), block_ms);
        v[argc++] = "BLMPOP";
        v[argc++] = tb;
    } else {
        v[argc++] = "LMPOP";
    }
    snprintf(nk, sizeof(nk), "%zu", nkeys);
    v[argc++] = nk;
    for (size_t k = 0; k < nkeys; k++)
        v[argc++] = keys[k];
    v[argc++] = "RIGHT";
    for (int k = 0; k < argc; k++)
        l[k] = strlen(v[k]);
    int rc;
    *r = shard_command(chl, shard, argc, v, l, &rc);
    return rc;
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
        r->element[1]->type == REDIS_REPLY_ARRAY && r->element[1]->elements == 1 &&
        r->element[1]->element[0]->type == REDIS_REPLY_STRING) {
        redisReply *el = r->element[1]->element[0];
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
            long block = next_block(deadline, CHL__BLOCK_SLICE_MS);
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
        long block = next_block(deadline, SYNC_MULTI_SLICE_MS);
        if (block == 0)
            return MC_EAGAIN;
        size_t sh = shard_of[chl->pop_next++ % n];
        rc = try_pop(chl, sh, keys, shard_of, n, block, out, &got);
        if (rc != 0 || got == 1)
            return rc;
    }
}

/* Removes one exact element from this client's in-flight list. Returns the
 * number removed (0 or 1) or an error. */
static int inflight_remove(chl_t *chl, size_t sh, const char *el, size_t len)
{
    char key[CHL__KEY_MAX];
    int rc = chl__key(key, sizeof(key), chl->cfg.prefix, "inflight:", chl->name);
    if (rc != 0)
        return rc;
    const char *v[4] = {"LREM", key, "1", el};
    size_t l[4] = {4, strlen(key), 1, len};
    redisReply *r = shard_command(chl, sh, 4, v, l, &rc);
    if (!r)
        return rc;
    rc = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : MC_EREDIS;
    freeReplyObject(r);
    return rc;
}

/* Turns an element moved into the in-flight list into *out. Returns 1 when
 * it is a message, 0 when it was malformed or expired: then it is taken out
 * of the in-flight list again and counted. */
static int accept_inflight(chl_t *chl, size_t sh, const redisReply *el, chl_message_t *out, int *rc)
{
    chl__frame_t f;
    int ok = chl__frame_parse(&f, el->str, el->len) == 0 && f.kind == CHL__MSG;
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
    sync_inflight_t *in = malloc(sizeof(*in) + el->len);
    *rc = in ? chl__message_fill(out, f.name, f.name_len, f.payload, f.len) : MC_ENOMEM;
    if (*rc != 0) {
        free(in);
        return 0;
    }
    in->shard = sh;
    in->len = el->len;
    memcpy(in->el, el->str, el->len);
    out->internal = in;
    chl->stats.received++;
    return 1;
}

/* One round trip to shard sh: removes the elements of acks[0..nacks) that
 * live there from the in-flight list, refreshes the heartbeat, and moves up
 * to max elements of the queue into the in-flight list, the first waiting up
 * to block_ms (0: none waits). Adds the messages to out[*n..]; *skipped is
 * set when an element was dropped (malformed or expired). */
static int queue_move_shard(chl_t *chl, size_t sh, const char *qkey, long block_ms,
                            const chl_message_t *acks, size_t nacks, chl_message_t *out, size_t max,
                            size_t *n, int *skipped)
{
    char hb[CHL__KEY_MAX], workers[CHL__KEY_MAX], inflight[CHL__KEY_MAX], ttl[24], tb[32];
    if (chl__key(hb, sizeof(hb), chl->cfg.prefix, "hb:", chl->name) != 0 ||
        chl__key(workers, sizeof(workers), chl->cfg.prefix, "workers", NULL) != 0 ||
        chl__key(inflight, sizeof(inflight), chl->cfg.prefix, "inflight:", chl->name) != 0)
        return MC_ETOOBIG;
    snprintf(ttl, sizeof(ttl), "%ld", chl->cfg.heartbeat_ttl_ms);
    seconds(tb, sizeof(tb), block_ms);
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
    for (size_t a = 0; a < nacks; a++) {
        const sync_inflight_t *in = acks[a].internal;
        if (!in || in->shard != sh)
            continue;
        CMD("LREM", inflight, "1", "");
        cmd[k - 1].v[3] = in->el; /* binary: its own length */
        cmd[k - 1].l[3] = in->len;
    }
    size_t nlrem = k;
    CMD("SET", hb, "1", "PX", ttl);
    CMD("SADD", workers, chl->name);
    size_t rest = max;
    if (block_ms > 0 && max > 0) {
        CMD("BLMOVE", qkey, inflight, "RIGHT", "LEFT", tb);
        rest--;
    }
    char nb[24];
    snprintf(nb, sizeof(nb), "%zu", rest);
    if (rest > 0) /* the SHA is filled in when the shard connects, before the send */
        CMD("EVALSHA", chl->shards[sh].sha[CHL__S_MOVEN], "2", qkey, inflight, nb);
#undef CMD
    int rc = shard_pipeline(chl, sh, k, argc, (const char **const *)av, lv, r);
    if (rc != 0)
        return rc;
    for (size_t j = 0; j < nlrem; j++)
        if (r[j]->type == REDIS_REPLY_INTEGER && r[j]->integer == 0)
            mc_warn("channel-layer: a handled message was no longer in flight (requeued as if "
                    "this worker had died); it may be handled twice");
    for (size_t j = nlrem + 2; rc == 0 && j < k; j++) {
        /* A BLMOVE's element, or the elements the script moved. */
        redisReply *const *el = r[j]->type == REDIS_REPLY_ARRAY ? r[j]->element : &r[j];
        size_t nel = r[j]->type == REDIS_REPLY_ARRAY ? r[j]->elements : 1;
        if (r[j]->type == REDIS_REPLY_ERROR) {
            if (strncmp(r[j]->str, "NOSCRIPT", 8) == 0) {
                reload_scripts(chl, sh); /* nothing was moved: for next time */
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
            if (accept_inflight(chl, sh, el[e], &out[*n], &rc))
                (*n)++;
            else
                *skipped = 1;
        }
    }
    for (size_t j = 0; j < k; j++)
        freeReplyObject(r[j]);
    return rc;
}

int chl_queue_pop(chl_t *chl, const char *queue, long timeout_ms, chl_message_t *out)
{
    size_t n;
    return chl_queue_next(chl, queue, timeout_ms, NULL, 0, out, 1, &n);
}

int chl_queue_next(chl_t *chl, const char *queue, long timeout_ms, const chl_message_t *done,
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
    chl->registered = 1; /* each pop below registers; a reconnect does too */
    memset(out, 0, max * sizeof(*out));
    int64_t deadline = timeout_ms ? mc_mono_ms() + timeout_ms : 0;
    size_t ns = chl->ring.nshards;
    /* Each pop refreshes the heartbeat: block for at most half its TTL so
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
            long block = next_block(deadline, slice);
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
        long block = next_block(deadline, SYNC_MULTI_SLICE_MS);
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
    const sync_inflight_t *in = msg ? msg->internal : NULL;
    if (!in || in->shard >= chl->ring.nshards)
        return MC_EINVAL;
    int rc = inflight_remove(chl, in->shard, in->el, in->len);
    if (rc < 0)
        return rc;
    return rc == 1 ? 0 : MC_ENOTFOUND;
}

int chl_requeue_dead(chl_t *chl, size_t *requeued)
{
    char workers[CHL__KEY_MAX], ttl[24];
    size_t total = 0;
    int rc = chl__key(workers, sizeof(workers), chl->cfg.prefix, "workers", NULL);
    if (rc != 0)
        return rc;
    snprintf(ttl, sizeof(ttl), "%ld", chl->cfg.heartbeat_ttl_ms);
    const char *keys[1] = {workers};
    const char *args[3] = {chl->cfg.prefix, chl->name, ttl};
    int first_err = 0;
    for (size_t sh = 0; sh < chl->ring.nshards; sh++) {
        redisReply *r = run_script(chl, sh, CHL__S_REQUEUE, 1, keys, 3, args, NULL, &rc);
        if (!r) {
            first_err = first_err ? first_err : rc;
            continue;
        }
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

/* Splits "<process>!<conn>" for the group calls: process and its length. */
static int member_parts(const char *channel, char *process, size_t size)
{
    long bang;
    if (chl__check_channel(channel, &bang) != 0 || bang <= 0 || channel[bang + 1] == '\0' ||
        (size_t)bang >= size)
        return MC_EINVAL;
    memcpy(process, channel, (size_t)bang);
    process[bang] = '\0';
    return 0;
}

static int group_keys(const chl_t *chl, const char *group, const char *process,
                      char (*keys)[CHL__KEY_MAX])
{
    if (chl__key(keys[0], CHL__KEY_MAX, chl->cfg.prefix, "group:", group) != 0 ||
        chl__key(keys[1], CHL__KEY_MAX, chl->cfg.prefix, "groupp:", group) != 0 ||
        chl__key(keys[2], CHL__KEY_MAX, chl->cfg.prefix, "pgroups:", process) != 0)
        return MC_ETOOBIG;
    return 0;
}

static int group_change(chl_t *chl, const char *group, const char *channel, int add)
{
    char process[CHL__NAME_MAX + 1], plist[CHL__KEY_MAX], keys[3][CHL__KEY_MAX];
    if (chl__check_plain(group) != 0 || member_parts(channel, process, sizeof(process)) != 0)
        return MC_EINVAL;
    int rc = group_keys(chl, group, process, keys);
    if (rc == 0)
        rc = chl__key(plist, sizeof(plist), chl->cfg.prefix, process, "!");
    if (rc != 0)
        return rc;
    /* The control message goes first: a group message sent after the member
     * is recorded is then behind it in the process's list. A discard is
     * pushed even to a full list, or the process would keep the member. */
    rc = push_frame(chl, chl__ring_channel(&chl->ring, channel), plist,
                    add ? chl->cfg.process_capacity : -1, add ? CHL__ADD : CHL__DISCARD, 0, group,
                    channel, strlen(channel));
    if (rc != 0)
        return rc;
    char ex[24];
    snprintf(ex, sizeof(ex), "%ld", chl->cfg.group_expiry_s);
    const char *kv[3] = {keys[0], keys[1], keys[2]};
    const char *args[4] = {channel, process, group, ex};
    redisReply *r =
        run_script(chl, chl__ring_name(&chl->ring, group, strlen(group)),
                   add ? CHL__S_GADD : CHL__S_GDISC, 3, kv, add ? 4 : 3, args, NULL, &rc);
    freeReplyObject(r);
    return rc;
}

int chl_group_add(chl_t *chl, const char *group, const char *channel)
{
    return group_change(chl, group, channel, 1);
}

int chl_group_discard(chl_t *chl, const char *group, const char *channel)
{
    return group_change(chl, group, channel, 0);
}

/* Pushes one group frame to the processes named in procs[0..n), grouped by
 * the shard of each process list: one script call per shard. */
static int group_fan_out(chl_t *chl, redisReply **procs, size_t n, const char *frame, size_t flen,
                         const char *once, const char *once_ttl, size_t *dropped)
{
    size_t ns = chl->ring.nshards;
    char(*keys)[CHL__KEY_MAX] = malloc(n * sizeof(*keys));
    const char **kv = malloc(n * sizeof(*kv));
    size_t *shard = malloc(n * sizeof(*shard));
    int rc = (keys && kv && shard) ? 0 : MC_ENOMEM, first_err = 0;
    char capb[24], ttlb[24];
    snprintf(capb, sizeof(capb), "%ld", chl->cfg.process_capacity);
    snprintf(ttlb, sizeof(ttlb), "%ld", chl->cfg.expiry_ms);
    const char *args[5] = {capb, ttlb, frame, once, once_ttl};
    size_t lens[5] = {strlen(capb), strlen(ttlb), flen, strlen(once), strlen(once_ttl)};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (procs[i]->type != REDIS_REPLY_STRING || procs[i]->len > CHL__NAME_MAX ||
            chl__key(keys[i], CHL__KEY_MAX, chl->cfg.prefix, procs[i]->str, "!") != 0) {
            shard[i] = SIZE_MAX; /* not a process name we wrote: skip it */
            continue;
        }
        shard[i] = chl__ring_name(&chl->ring, procs[i]->str, procs[i]->len);
    }
    for (size_t sh = 0; rc == 0 && sh < ns; sh++) {
        size_t nk = 0;
        for (size_t i = 0; i < n; i++)
            if (shard[i] == sh)
                kv[nk++] = keys[i];
        if (nk == 0)
            continue;
        int src;
        redisReply *r = run_script(chl, sh, CHL__S_MPUSH, nk, kv, 5, args, lens, &src);
        if (!r) {
            *dropped += nk; /* that shard missed its copies; the others still get theirs */
            first_err = first_err ? first_err : src;
            continue;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer > 0)
            *dropped += (size_t)r->element[0]->integer;
        freeReplyObject(r);
    }
    free(keys);
    free(kv);
    free(shard);
    return rc ? rc : first_err;
}

/* The script call of one group send, ready to run. */
typedef struct gsend {
    char keys[2][CHL__KEY_MAX], once[CHL__KEY_MAX];
    char ex[24], capb[24], ttlb[24], once_ttl[24];
    const char *kv[2];
    const char *args[9];
    size_t lens[9];
    char *frame;
    size_t flen;
    size_t shard; /* of the group */
} gsend_t;

static int gsend_prepare(chl_t *chl, const chl_group_msg_t *m, gsend_t *g)
{
    g->frame = NULL;
    g->once[0] = '\0';
    if (chl__check_plain(m->group) != 0 || (!m->msg && m->len))
        return MC_EINVAL;
    if (m->len > CHL__MSG_MAX)
        return MC_ETOOBIG;
    if (chl__key(g->keys[0], CHL__KEY_MAX, chl->cfg.prefix, "group:", m->group) != 0 ||
        chl__key(g->keys[1], CHL__KEY_MAX, chl->cfg.prefix, "groupp:", m->group) != 0)
        return MC_ETOOBIG;
    if (m->name && (chl__check_plain(m->name) != 0 ||
                    chl__key(g->once, CHL__KEY_MAX, chl->cfg.prefix, "once:", m->name) != 0))
        return MC_EINVAL;
    int rc = chl__frame_build(&g->frame, &g->flen, CHL__GROUP, mc_now_ms() + chl->cfg.expiry_ms,
                              m->group, m->msg, m->len);
    if (rc != 0)
        return rc;
    snprintf(g->ex, sizeof(g->ex), "%ld", chl->cfg.group_expiry_s);
    snprintf(g->capb, sizeof(g->capb), "%ld", chl->cfg.process_capacity);
    snprintf(g->ttlb, sizeof(g->ttlb), "%ld", chl->cfg.expiry_ms);
    /* A replay comes from a requeued envelope, which lives at most one
     * expiry: a name kept for two outlives it. */
    snprintf(g->once_ttl, sizeof(g->once_ttl), "%ld", 2 * chl->cfg.expiry_ms);
    /* With one shard the script pushes the copies itself: one round trip. */
    int here = chl->ring.nshards == 1;
    const char *args[9] = {g->ex,    chl->cfg.prefix, here ? "1" : "0", g->capb,    g->ttlb,
                           g->frame, m->group,        g->once,          g->once_ttl};
    memcpy(g->args, args, sizeof(args));
    for (int k = 0; k < 9; k++)
        g->lens[k] = k == 5 ? g->flen : strlen(args[k]);
    g->kv[0] = g->keys[0];
    g->kv[1] = g->keys[1];
    g->shard = chl__ring_name(&chl->ring, m->group, strlen(m->group));
    return 0;
}

/* Takes the script's reply r (NULL: the call failed with rc) of a prepared
 * send; with several shards, pushes the copies to the other shards. Frees
 * both and returns 0 or the error. */
static int gsend_finish(chl_t *chl, gsend_t *g, redisReply *r, int rc, size_t *dropped)
{
    size_t drop = 0;
    if (r) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
            r->element[0]->type != REDIS_REPLY_INTEGER) {
            rc = MC_EREDIS;
        } else if (chl->ring.nshards == 1) {
            drop = (size_t)r->element[0]->integer;
        } else {
            rc = group_fan_out(chl, r->element + 2, r->elements - 2, g->frame, g->flen, g->once,
                               g->once_ttl, &drop);
        }
        freeReplyObject(r);
    }
    free(g->frame);
    g->frame = NULL;
    if (rc == 0)
        chl->stats.sent++;
    chl->stats.group_dropped += drop;
    chl->stats.full += drop;
    *dropped += drop;
    return rc;
}

static script_call_t gsend_call(const gsend_t *g)
{
    return (script_call_t){2, 9, g->kv, g->args, g->lens};
}

int chl_group_send(chl_t *chl, const char *group, const void *msg, size_t len, size_t *dropped)
{
    return chl_group_send_once(chl, group, NULL, msg, len, dropped);
}

int chl_group_send_once(chl_t *chl, const char *group, const char *name, const void *msg,
                        size_t len, size_t *dropped)
{
    chl_group_msg_t m = {group, name, msg, len};
    return chl_group_send_many(chl, &m, 1, dropped);
}

int chl_group_send_many(chl_t *chl, const chl_group_msg_t *msgs, size_t n, size_t *dropped)
{
    size_t drop = 0;
    int first_err = 0;
    gsend_t *g = malloc((n ? n : 1) * sizeof(*g));
    script_call_t *calls = malloc((n ? n : 1) * sizeof(*calls));
    redisReply **r = malloc((n ? n : 1) * sizeof(*r));
    int *prc = malloc((n ? n : 1) * sizeof(*prc));
    if (!g || !calls || !r || !prc) {
        free(g), free(calls), free(r), free(prc);
        return MC_ENOMEM;
    }
    size_t m = 0; /* the calls of the messages that are well formed, in order */
    for (size_t k = 0; k < n; k++) {
        prc[k] = gsend_prepare(chl, &msgs[k], &g[k]);
        if (prc[k] == 0)
            calls[m++] = gsend_call(&g[k]);
    }
    if (chl->ring.nshards == 1) {
        int rc = run_scripts(chl, 0, CHL__S_GSEND, calls, m, r);
        for (size_t k = 0, j = 0; k < n; k++) {
            if (prc[k] != 0)
                continue;
            redisReply *reply = r[j++];
            prc[k] = gsend_finish(chl, &g[k], reply, reply ? 0 : rc, &drop);
        }
    } else {
        for (size_t k = 0, j = 0; k < n; k++) {
            if (prc[k] != 0)
                continue;
            redisReply *reply;
            int rc = run_scripts(chl, g[k].shard, CHL__S_GSEND, &calls[j++], 1, &reply);
            prc[k] = gsend_finish(chl, &g[k], reply, rc, &drop);
        }
    }
    for (size_t k = 0; k < n; k++) {
        free(g[k].frame);
        if (prc[k] != 0 && !first_err)
            first_err = prc[k];
    }
    free(g), free(calls), free(r), free(prc);
    if (dropped)
        *dropped = drop;
    return first_err;
}

int chl_forget_process(chl_t *chl, const char *process)
{
    char key[CHL__KEY_MAX];
    if (chl__check_plain(process) != 0)
        return MC_EINVAL;
    int rc = chl__key(key, sizeof(key), chl->cfg.prefix, "pgroups:", process);
    if (rc != 0)
        return rc;
    const char *kv[1] = {key};
    const char *args[2] = {chl->cfg.prefix, process};
    int first_err = 0;
    for (size_t sh = 0; sh < chl->ring.nshards; sh++) {
        redisReply *r = run_script(chl, sh, CHL__S_FORGET, 1, kv, 2, args, NULL, &rc);
        if (!r)
            first_err = first_err ? first_err : rc;
        freeReplyObject(r);
    }
    return first_err;
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
    redisReply *r = run_script(chl, chl__ring_name(&chl->ring, key, strlen(key)), CHL__S_RATE, 1,
                               kv, 2, args, NULL, &rc);
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

int chl_reap_processes(chl_t *chl, int (*fn)(void *arg, const char *process), void *arg,
                       size_t *reaped)
{
    char key[CHL__KEY_MAX];
    size_t total = 0;
    if (reaped)
        *reaped = 0;
    int rc = chl__key(key, sizeof(key), chl->cfg.prefix, "procs", NULL);
    if (rc != 0)
        return rc;
    const char *kv[1] = {key};
    const char *args[1] = {chl->cfg.prefix};
    int first_err = 0;
    for (size_t sh = 0; sh < chl->ring.nshards; sh++) {
        redisReply *r = run_script(chl, sh, CHL__S_REAP, 1, kv, 1, args, NULL, &rc);
        if (!r) {
            first_err = first_err ? first_err : rc;
            continue;
        }
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_STRING || chl__check_plain(e->str) != 0)
                continue;
            mc_info("channel-layer: process %s is gone; forgetting its memberships", e->str);
            rc = chl_forget_process(chl, e->str);
            if (rc)
                first_err = first_err ? first_err : rc;
            total++;
            if (fn)
                fn(arg, e->str);
        }
        freeReplyObject(r);
    }
    if (reaped)
        *reaped = total;
    return first_err;
}
