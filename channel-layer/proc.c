/*
 * channel-layer/proc.c: the asynchronous process endpoint chl_proc_t (see
 * chl.h and proc.h): what its process list holds, dispatched; its
 * heartbeat; sends and membership changes; what a server reached anew is
 * told; life cycle. Its connections to Redis are in link.c, its
 * subscriptions to the sentinels in sub.c, its script calls in request.c,
 * and the queue pushes of a loop turn, sent together, in batch.c.
 */
#include "channel-layer/proc.h"
#include "common/error.h"
#include "common/log.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pop_again(chl_proc_t *p);

/* ---- dispatch of what the process list holds ---- */

int chl_proc_conn_of(const chl_proc_t *proc, const char *channel, size_t len, uint64_t *conn)
{
    size_t nl = proc->name_len;
    if (len <= nl + 1 || memcmp(channel, proc->name, nl) != 0 || channel[nl] != '!')
        return MC_EPROTO;
    uint64_t v = 0;
    for (size_t i = nl + 1; i < len; i++) {
        uint64_t digit = (uint64_t)(channel[i] - '0');
        if (channel[i] < '0' || channel[i] > '9' || v > (UINT64_MAX - digit) / 10)
            return MC_EPROTO;
        v = v * 10 + digit;
    }
    *conn = v;
    return 0;
}

/* A group message goes to the handler once, with the local members. */
static void dispatch_group(chl_proc_t *p, const chl__frame_t *f)
{
    const uint64_t *members;
    int had;
    size_t n = chl__local_members_for(p->local, f->name, f->name_len, f->seq, &members, &had);
    p->stats.repeated += (uint64_t)had;
    if (n == 0 || !p->h.on_message)
        return;
    /* The handler may change memberships while it runs: it gets a copy. */
    if (n > p->scratch_cap) {
        uint64_t *s = realloc(p->scratch, n * sizeof(*s));
        if (!s) {
            mc_error("channel-layer: out of memory fanning out to %zu members", n);
            return;
        }
        p->scratch = s;
        p->scratch_cap = n;
    }
    memcpy(p->scratch, members, n * sizeof(*members));
    p->h.on_message(p->ctx, p->scratch, n, f->payload, f->len);
}

static void dispatch(chl_proc_t *p, const char *el, size_t len)
{
    chl__frame_t f;
    uint64_t conn = 0;
    char group[CHL__NAME_MAX + 1];
    if (chl__frame_parse(&f, el, len) != 0 || f.name_len > CHL__NAME_MAX)
        goto malformed;
    if (f.deadline && f.deadline < mc_now_ms()) {
        p->stats.expired++;
        return;
    }
    switch (f.kind) {
    case CHL__MSG:
        if (chl_proc_conn_of(p, f.name, f.name_len, &conn) != 0)
            goto malformed;
        p->stats.received++;
        if (p->h.on_message)
            p->h.on_message(p->ctx, &conn, 1, f.payload, f.len);
        return;
    case CHL__GROUP:
        p->stats.received++;
        dispatch_group(p, &f);
        return;
    case CHL__ADD:
    case CHL__DISCARD:
        if (chl_proc_conn_of(p, f.payload, f.len, &conn) != 0)
            goto malformed;
        memcpy(group, f.name, f.name_len);
        group[f.name_len] = '\0';
        if (f.kind == CHL__ADD) {
            int rc = chl__local_add(p->local, f.name, f.name_len, conn, f.seq);
            if (rc < 0)
                mc_error("channel-layer: out of memory adding a member to %s", group);
            else if (rc == 1 && p->h.on_group_add)
                p->h.on_group_add(p->ctx, conn, group);
        } else if (chl__local_remove(p->local, f.name, f.name_len, conn) == 1 &&
                   p->h.on_group_discard) {
            p->h.on_group_discard(p->ctx, conn, group);
        }
        return;
    }
malformed:
    p->stats.malformed++;
    mc_warn("channel-layer: %s: skipped a malformed element of %zu bytes", p->name, len);
}

/* What a pop took leaves the list's byte counter (chl.h): one DECRBY on
 * the pop link, ahead of the next pop. A pop that took fewer than it asked
 * for emptied the list, and the push that makes it long again counts it
 * again: nothing to send then. Best effort: a count that is lost heals
 * once the list is found short. */
static void popped(chl_proc_t *p, size_t elements, size_t bytes)
{
    if (elements < (size_t)atoi(CHL__PROC_POP_COUNT) || !p->pop.up || !p->pop.ac)
        return;
    char n[24];
    chl__decimal(n, (long)bytes);
    const char *argv[3] = {"DECRBY", p->bytes_key, n};
    size_t lens[3] = {6, strlen(p->bytes_key), strlen(n)};
    if (chl__command_send(&p->pop, chl__on_plain_reply, NULL, 3, argv, lens) == 0)
        chl__link_sent(&p->pop);
}

static void on_pop(redisAsyncContext *ac, void *reply, void *priv)
{
    chl_proc_t *p = priv;
    redisReply *r = reply;
    chl__link_replied(ac);
    if (!r || p->closing)
        return; /* the link is down or closing; a reconnect pops again */
    if (r->type == REDIS_REPLY_ERROR) {
        p->stats.redis_errors++;
        if (!chl__link_not_master(ac, r->str)) {
            mc_error("channel-layer: %s: pop failed: %.120s", p->name, r->str);
            redisAsyncDisconnect(ac); /* back off instead of spinning */
        }
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_ARRAY) {
        redisReply *els = r->element[1];
        size_t bytes = 0;
        for (size_t i = 0; i < els->elements; i++)
            if (els->element[i]->type == REDIS_REPLY_STRING)
                bytes += els->element[i]->len;
        popped(p, els->elements, bytes);
        for (size_t i = 0; i < els->elements && !p->closing; i++)
            if (els->element[i]->type == REDIS_REPLY_STRING)
                dispatch(p, els->element[i]->str, els->element[i]->len);
    }
    pop_again(p);
}

static void pop_again(chl_proc_t *p)
{
    if (p->closing || !p->pop.up || !p->pop.ac)
        return;
    if (redisAsyncFormattedCommand(p->pop.ac, on_pop, p, p->pop_command, p->pop_command_len) ==
        REDIS_OK)
        chl__link_sent(&p->pop);
}

/* ---- a live process, a watched loop ---- */

/* Says that this process lives: its heartbeat, and its name in the
 * registry beside it, so that workers find it once the heartbeat expires
 * (chl_reap_processes). */
static void heartbeat(chl_proc_t *p)
{
    chl__link_t *l = &p->cmd[p->pop.shard];
    if (p->closing || !l->up)
        return;
    if (redisAsyncCommand(l->ac, chl__on_plain_reply, NULL, "SET %s 1 PX %ld", p->hb_key,
                          p->cfg.heartbeat_ttl_ms) == REDIS_OK)
        chl__link_sent(l);
    if (redisAsyncCommand(l->ac, chl__on_plain_reply, NULL, "SADD %s %s", p->procs_key, p->name) ==
        REDIS_OK)
        chl__link_sent(l);
}

static void on_heartbeat(uv_timer_t *t)
{
    heartbeat(t->data);
}

/* Notes when the loop last began to wait for input (the stall check
 * counts only silence while it listened: link.c). */
static void on_prepare(uv_prepare_t *h)
{
    chl_proc_t *p = h->data;
    p->polled_at = uv_now(p->loop);
}

static void on_watch(uv_timer_t *t)
{
    chl_proc_t *p = t->data;
    if (!p->closing)
        chl__links_check_stall(&p->links);
}

/* ---- sends and memberships ---- */

int chl_proc_queue_push(chl_proc_t *proc, const char *queue, const void *msg, size_t len,
                        chl_send_cb cb, void *arg)
{
    long bang;
    if (!proc || chl__check_channel(queue, &bang) != 0 || (!msg && len))
        return MC_EINVAL;
    if (len > CHL__MSG_MAX)
        return MC_ETOOBIG;
    if (proc->closing)
        return MC_ECLOSED;
    chl__req_t *req = chl__req_new();
    if (!req)
        return MC_ENOMEM;
    size_t flen;
    int rc = chl__frame_build(&req->frame, &flen, CHL__MSG, mc_now_ms() + proc->cfg.expiry_ms,
                              queue, 0, msg, len);
    if (rc != 0) {
        free(req);
        return rc;
    }
    size_t shard;
    if (bang >= 0) {
        size_t pre = strlen(proc->cfg.prefix);
        if (pre + (size_t)bang + 2 > CHL__KEY_MAX) {
            chl__req_free(req);
            return MC_ETOOBIG;
        }
        memcpy(req->bufs[0], proc->cfg.prefix, pre);
        memcpy(req->bufs[0] + pre, queue, (size_t)bang + 1); /* with its '!' */
        req->bufs[0][pre + (size_t)bang + 1] = '\0';
        shard = chl__ring_channel(&proc->ring, queue);
        chl__decimal(req->bufs[1], proc->cfg.process_capacity);
        memcpy(req->bufs[2], proc->list_ttl, sizeof(proc->list_ttl));
    } else {
        if (chl__key(req->bufs[0], CHL__KEY_MAX, proc->cfg.prefix, queue, NULL) != 0) {
            chl__req_free(req);
            return MC_ETOOBIG;
        }
        /* Queues are popped on every shard: any shard that is up will do,
         * the one this loop turn's pushes go to first. */
        size_t ns = proc->ring.nshards;
        if (!chl__batch_shard(&proc->batch, &shard))
            shard = proc->push_next++ % ns;
        for (size_t k = 0; k < ns && !proc->cmd[shard].up; k++)
            shard = (shard + 1) % ns;
        if (!proc->cmd[shard].up || !proc->cmd[shard].ac) {
            chl__req_free(req);
            return MC_EREDIS;
        }
        char *frame = req->frame;
        req->frame = NULL;
        rc = chl__batch_add(&proc->batch, shard, req->bufs[0], proc->cfg.queue_capacity, frame,
                            flen, cb, arg);
        chl__req_free(req);
        return rc;
    }
    req->script = CHL__S_SEND;
    req->cb = cb;
    req->arg = arg;
    /* A process list: EVALSHA sha 2 list counter capacity ttl max-bytes frame */
    if (chl__bytes_key(req->bufs[3], CHL__KEY_MAX, proc->cfg.prefix, req->bufs[0]) != 0) {
        chl__req_free(req);
        return MC_ETOOBIG;
    }
    req->argc = 9;
    req->argv[2] = "2";
    req->argv[3] = req->bufs[0];
    req->argv[4] = req->bufs[3];
    req->argv[5] = req->bufs[1];
    req->argv[6] = req->bufs[2];
    req->argv[7] = proc->list_bytes;
    req->argv[8] = req->frame;
    req->lens[8] = flen;
    return chl__req_send(&proc->links, shard, req);
}

static void on_group_done(void *arg, int status)
{
    chl_proc_t *p = arg;
    if (status != 0 && status != MC_ECLOSED)
        mc_warn("channel-layer: %s: a membership change failed: %s", p->name, mc_strerror(status));
}

/* Records in Redis that conn is in group (CHL__S_GADD) or no longer is
 * (CHL__S_GDISC), on the group's shard. Returns as chl__req_send. */
static int group_change(chl_proc_t *p, enum chl__script_id script, const char *group, uint64_t conn)
{
    chl__req_t *req = chl__req_new();
    if (!req)
        return MC_ENOMEM;
    const char *pre = p->cfg.prefix;
    snprintf(req->bufs[0], CHL__KEY_MAX, "%sgroup:%s", pre, group);
    snprintf(req->bufs[1], CHL__KEY_MAX, "%sgroupp:%s", pre, group);
    snprintf(req->bufs[2], CHL__KEY_MAX, "%spgroups:%s", pre, p->name);
    snprintf(req->bufs[3], CHL__KEY_MAX, "%s!%llu", p->name, (unsigned long long)conn);
    snprintf(req->bufs[4], CHL__KEY_MAX, "%s", group);
    snprintf(req->bufs[5], CHL__KEY_MAX, "%ld", p->cfg.group_expiry_s);
    req->script = script;
    req->cb = on_group_done;
    req->arg = p;
    req->argc = script == CHL__S_GADD ? 10 : 9;
    req->argv[2] = "3";
    req->argv[3] = req->bufs[0];
    req->argv[4] = req->bufs[1];
    req->argv[5] = req->bufs[2];
    req->argv[6] = req->bufs[3]; /* ARGV: member, process, group[, expiry] */
    req->argv[7] = p->name;
    req->argv[8] = req->bufs[4];
    req->argv[9] = req->bufs[5];
    return chl__req_send(&p->links, chl__ring_name(&p->ring, group, strlen(group)), req);
}

struct forget_ctx {
    chl_proc_t *p;
    uint64_t conn;
    int rc;
};

static void forget_one(void *arg, const char *group)
{
    struct forget_ctx *fc = arg;
    int rc = group_change(fc->p, CHL__S_GDISC, group, fc->conn);
    if (rc != 0 && rc != MC_EREDIS)
        fc->rc = rc;
}

int chl_proc_forget_conn(chl_proc_t *proc, uint64_t conn)
{
    struct forget_ctx fc = {proc, conn, 0};
    if (!proc->closing)
        chl__local_each_group(proc->local, conn, forget_one, &fc);
    chl__local_forget(proc->local, conn);
    return fc.rc;
}

void chl_proc_each_group(const chl_proc_t *proc, uint64_t conn,
                         void (*fn)(void *arg, const char *group), void *arg)
{
    chl__local_each_group(proc->local, conn, fn, arg);
}

/* ---- a server reached anew ---- */

struct readd_ctx {
    chl_proc_t *p;
    size_t shard;
    size_t n;
};

static void readd_group(void *arg, const char *group, const uint64_t *conns, size_t n)
{
    struct readd_ctx *rc = arg;
    if (chl__ring_name(&rc->p->ring, group, strlen(group)) != rc->shard)
        return;
    for (size_t i = 0; i < n; i++)
        if (group_change(rc->p, CHL__S_GADD, group, conns[i]) == 0)
            rc->n++;
}

/* The links' on_up hook: l is up. The pop link pops; a command link makes
 * its server know this process (heartbeat and registry on the pop's shard,
 * and the memberships of every local connection in groups that live on its
 * shard). */
static void on_link_up(chl__link_t *l)
{
    chl_proc_t *p = l->links->ctx;
    if (l->role == CHL__LINK_POP) {
        pop_again(p);
        return;
    }
    if (l->shard == p->pop.shard)
        heartbeat(p); /* say at once that this process lives */
    /* The server may have lost the groups (a restart, a replica promoted
     * before it had them): every live connection stays in its groups. */
    struct readd_ctx rc = {p, l->shard, 0};
    chl__local_each(p->local, readd_group, &rc);
    if (rc.n)
        mc_info("channel-layer: %s: shard %zu: %zu memberships recorded again", p->name, l->shard,
                rc.n);
}

/* The links' on_state hook: Redis as a whole is up or down. */
static void on_links_state(void *ctx, int up)
{
    chl_proc_t *p = ctx;
    if (p->h.on_redis_state)
        p->h.on_redis_state(p->ctx, up);
}

/* ---- life cycle ---- */

static void proc_free(chl_proc_t *p)
{
    chl__local_free(p->local);
    free(p->scratch);
    free(p->cmd);
    free(p->links.shards);
    free(p->subs);
    chl__ring_clear(&p->ring);
    free(p->pop_command);
    free(p->cfg_mem);
    free(p);
}

static void on_handle_closed(uv_handle_t *h)
{
    chl_proc_t *p = h->data;
    if (--p->handles == 0)
        proc_free(p);
}

static void close_handle(chl_proc_t *p, uv_handle_t *h)
{
    h->data = p;
    uv_close(h, on_handle_closed);
}

static void on_closer(uv_timer_t *t)
{
    chl_proc_t *p = t->data;
    chl__link_free(&p->pop);
    for (size_t i = 0; i < p->ring.nshards; i++)
        chl__link_free(&p->cmd[i]);
    chl__batch_close(&p->batch, on_handle_closed, p); /* its pushes end with MC_ECLOSED */
    close_handle(p, (uv_handle_t *)&p->heartbeat);
    close_handle(p, (uv_handle_t *)&p->watch);
    close_handle(p, (uv_handle_t *)&p->prepare);
    close_handle(p, (uv_handle_t *)&p->closer);
    close_handle(p, (uv_handle_t *)&p->pop.retry);
    for (size_t i = 0; i < p->ring.nshards; i++) {
        close_handle(p, (uv_handle_t *)&p->cmd[i].retry);
        chl__sub_close(&p->subs[i], on_handle_closed, p);
    }
}

void chl_proc_close(chl_proc_t *proc)
{
    if (!proc || proc->closing)
        return;
    proc->closing = 1;
    uv_timer_stop(&proc->heartbeat);
    uv_timer_stop(&proc->watch);
    uv_prepare_stop(&proc->prepare);
    uv_timer_stop(&proc->pop.retry);
    for (size_t i = 0; i < proc->ring.nshards; i++) {
        uv_timer_stop(&proc->cmd[i].retry);
        chl__sub_stop(&proc->subs[i]);
    }
    uv_timer_start(&proc->closer, on_closer, 0, 0);
}

int chl_proc_open(chl_proc_t **out, uv_loop_t *loop, const chl_config_t *cfg, const char *kind,
                  const chl_proc_handlers_t *handlers, void *ctx)
{
    *out = NULL;
    if (!loop || !kind || chl__check_plain(kind) != 0 || strlen(kind) > 32)
        return MC_EINVAL;
    chl_proc_t *p = calloc(1, sizeof(*p));
    if (!p)
        return MC_ENOMEM;
    int rc = chl__config_copy(&p->cfg, &p->cfg_mem, cfg);
    if (rc == 0)
        rc = chl__ring_init(&p->ring, p->cfg.redis_urls);
    if (rc == 0) {
        p->cmd = calloc(p->ring.nshards, sizeof(*p->cmd));
        p->links.shards = calloc(p->ring.nshards, sizeof(*p->links.shards));
        p->subs = calloc(p->ring.nshards, sizeof(*p->subs));
        p->local = chl__local_new();
        if (!p->cmd || !p->links.shards || !p->subs || !p->local)
            rc = MC_ENOMEM;
    }
    if (rc != 0) {
        proc_free(p);
        return rc;
    }
    chl__make_name(p->name, sizeof(p->name), kind);
    p->name_len = strlen(p->name);
    if (chl__key(p->list_key, sizeof(p->list_key), p->cfg.prefix, p->name, "!") != 0 ||
        chl__key(p->bytes_key, sizeof(p->bytes_key), p->cfg.prefix, "bytes:", p->name) != 0 ||
        chl__key(p->hb_key, sizeof(p->hb_key), p->cfg.prefix, "hb:", p->name) != 0 ||
        chl__key(p->procs_key, sizeof(p->procs_key), p->cfg.prefix, "procs", NULL) != 0) {
        proc_free(p);
        return MC_EINVAL;
    }
    const char *pop[] = {"BLMPOP", CHL__PROC_POP_TIMEOUT, "1", p->list_key, "RIGHT",
                         "COUNT",  CHL__PROC_POP_COUNT};
    size_t pop_lens[7];
    for (int i = 0; i < 7; i++)
        pop_lens[i] = strlen(pop[i]);
    p->pop_command = malloc(chl__resp_size(7, pop_lens));
    if (!p->pop_command) {
        proc_free(p);
        return MC_ENOMEM;
    }
    p->pop_command_len = chl__resp_write(p->pop_command, 7, pop, pop_lens);
    chl__decimal(p->list_ttl, p->cfg.group_expiry_s * 1000);
    chl__decimal(p->list_bytes, p->cfg.process_bytes);
    p->loop = loop;
    p->ctx = ctx;
    if (handlers)
        p->h = *handlers;
    p->links.loop = loop;
    p->links.name = p->name;
    p->links.ring = &p->ring;
    p->links.closing = &p->closing;
    p->links.polled_at = &p->polled_at;
    p->links.handles = &p->handles;
    p->links.stats = &p->stats;
    p->links.cmd = p->cmd;
    p->links.pop = &p->pop;
    p->links.sha = p->sha;
    p->links.reported = 0; /* down until every link is up; only changes are reported */
    p->links.on_up = on_link_up;
    p->links.on_state = on_links_state;
    p->links.ctx = p;
    uv_timer_init(loop, &p->heartbeat);
    p->heartbeat.data = p;
    uv_timer_init(loop, &p->watch);
    p->watch.data = p;
    uv_timer_init(loop, &p->closer);
    p->closer.data = p;
    uv_prepare_init(loop, &p->prepare);
    p->prepare.data = p;
    uv_prepare_start(&p->prepare, on_prepare);
    p->handles = 4;
    chl__batch_init(&p->batch, &p->links);
    for (size_t i = 0; i < p->ring.nshards; i++)
        chl__link_init(&p->links, &p->cmd[i], i, CHL__LINK_CMD);
    chl__link_init(&p->links, &p->pop, chl__ring_name(&p->ring, p->name, p->name_len),
                   CHL__LINK_POP);
    for (size_t i = 0; i < p->ring.nshards; i++)
        chl__link_connect(&p->cmd[i]);
    chl__link_connect(&p->pop);
    for (size_t i = 0; i < p->ring.nshards; i++)
        chl__sub_init(&p->links, &p->subs[i], i);
    uint64_t every = (uint64_t)(p->cfg.heartbeat_ttl_ms / 3 > 0 ? p->cfg.heartbeat_ttl_ms / 3 : 1);
    uv_timer_start(&p->heartbeat, on_heartbeat, 0, every);
    uv_timer_start(&p->watch, on_watch, CHL__PROC_WATCH_MS, CHL__PROC_WATCH_MS);
    *out = p;
    return 0;
}

const char *chl_proc_name(const chl_proc_t *proc)
{
    return proc->name;
}

const chl_stats_t *chl_proc_stats(const chl_proc_t *proc)
{
    return &proc->stats;
}

int chl_proc_channel(const chl_proc_t *proc, uint64_t conn, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s!%llu", proc->name, (unsigned long long)conn);
    return (n < 0 || (size_t)n >= size) ? MC_ETOOBIG : 0;
}
