/*
 * channel-layer/proc.c: the asynchronous process endpoint chl_proc_t (see
 * chl.h), on a libuv loop with hiredis's libuv adapter.
 *
 * Links: one command connection per shard, plus one connection to the shard
 * of this process's list that loops on a blocking pop and dispatches what it
 * gets. A link that fails is reopened from a uv_timer with a backoff. Scripts
 * are loaded on every command link before it counts as up.
 *
 * Closing never frees under a running callback: chl_proc_close marks the
 * endpoint and starts a zero timer; the timer (outside every hiredis
 * callback) frees the hiredis contexts, which runs their pending callbacks
 * with NULL replies, then closes our handles; the last close callback frees
 * the struct.
 */
#include "channel-layer/internal.h"
#include "channel-layer/local.h"
#include "common/error.h"
#include "common/log.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROC_BACKOFF_MIN_MS 50
#define PROC_BACKOFF_MAX_MS 2000
#define PROC_POP_TIMEOUT "1" /* seconds a blocking pop waits before it is made again */
#define PROC_POP_COUNT "128" /* elements taken by one pop */
/* A link that has waited this long for a connection or a reply (a pop
 * blocks for 1 s only) talks to a server that is stuck: it is dropped. */
#define PROC_STALL_MS 3000

enum link_role { LINK_CMD, LINK_POP };

typedef struct proc_link {
    chl_proc_t *proc;
    size_t shard;
    enum link_role role;
    redisAsyncContext *ac; /* NULL while down */
    int up;                /* connected, selected, scripts loaded */
    int loading;           /* SCRIPT LOAD replies still to come */
    int ever_up;
    int connecting;
    int pending;    /* commands sent and not answered */
    uint64_t since; /* uv_now of the last progress while connecting or pending */
    long backoff_ms;
    uv_timer_t retry;
} proc_link_t;

struct chl_proc {
    uv_loop_t *loop;
    chl_config_t cfg;
    char *cfg_mem;
    char name[CHL__NAME_MAX + 1];
    size_t name_len;
    char list_key[CHL__KEY_MAX]; /* "<prefix><name>!" */
    char hb_key[CHL__KEY_MAX];
    char procs_key[CHL__KEY_MAX]; /* the registry of process endpoints */
    chl__ring_t ring;
    chl_proc_handlers_t h;
    void *ctx;
    chl_stats_t stats;
    proc_link_t *cmd; /* one per shard */
    proc_link_t pop;  /* on the shard of list_key */
    char sha[CHL__S_COUNT][41];
    chl__local_t *local;
    uint64_t *scratch; /* members of a group while its message fans out */
    size_t scratch_cap;
    uv_timer_t heartbeat;
    uv_timer_t closer;
    uv_prepare_t prepare; /* notes when the loop last began to poll */
    uint64_t polled_at;
    int handles; /* uv handles not yet closed */
    int closing;
    int reported; /* last state given to on_redis_state */
    size_t push_next;
};

/* An asynchronous script call, kept until its reply so that a server that
 * lost the script (NOSCRIPT) can be asked again with the script itself. */
typedef struct proc_req {
    chl_proc_t *proc;
    enum chl__script_id script;
    chl_send_cb cb;
    void *arg;
    int retried;
    int argc;
    const char *argv[10];
    size_t lens[10];
    char *frame; /* owned */
    char bufs[5][CHL__KEY_MAX];
} proc_req_t;

static void link_connect(proc_link_t *l);

static void report_state(chl_proc_t *p)
{
    if (p->closing)
        return;
    int up = p->pop.up;
    for (size_t i = 0; i < p->ring.nshards; i++)
        up = up && p->cmd[i].up;
    if (up != p->reported) {
        p->reported = up;
        mc_info("channel-layer: %s: redis %s", p->name, up ? "up" : "down");
        if (p->h.on_redis_state)
            p->h.on_redis_state(p->ctx, up);
    }
}

static void on_retry(uv_timer_t *t)
{
    proc_link_t *l = t->data;
    if (!l->proc->closing)
        link_connect(l);
}

static void link_schedule(proc_link_t *l)
{
    chl_proc_t *p = l->proc;
    l->ac = NULL;
    l->up = 0;
    l->connecting = 0;
    l->pending = 0;
    if (p->closing || uv_is_active((uv_handle_t *)&l->retry))
        return;
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : PROC_BACKOFF_MIN_MS;
    if (l->backoff_ms > PROC_BACKOFF_MAX_MS)
        l->backoff_ms = PROC_BACKOFF_MAX_MS;
    uv_timer_start(&l->retry, on_retry, (uint64_t)l->backoff_ms, 0);
    report_state(p);
}

static void pop_again(chl_proc_t *p);
static void on_heartbeat(uv_timer_t *t);

/* Book-keeping for the stall check: every command sent on a link is
 * counted until its callback runs. */
static void link_sent(proc_link_t *l)
{
    if (l->pending++ == 0)
        l->since = uv_now(l->proc->loop);
}

static void link_replied(const redisAsyncContext *ac)
{
    proc_link_t *l = ac->data;
    if (l->pending > 0)
        l->pending--;
    l->since = uv_now(l->proc->loop);
}

/* Drops a link whose server does not answer; called from a timer, never
 * from a hiredis callback. Pending callbacks run with NULL replies. Silent
 * means silent while the loop listened: a poll for input began
 * PROC_STALL_MS after the last progress and brought none. After a long
 * turn of this process's own (a large batch fanned out to many sockets),
 * replies that arrived meanwhile are still unread: that is no dead server,
 * and a busy process must not take it for one. */
static void link_check_stall(proc_link_t *l)
{
    if (!l->ac || (!l->connecting && l->pending == 0))
        return;
    if (l->proc->polled_at < l->since || l->proc->polled_at - l->since < PROC_STALL_MS)
        return;
    mc_warn("channel-layer: %s: shard %zu does not answer; reconnecting", l->proc->name, l->shard);
    l->proc->stats.redis_errors++;
    redisAsyncContext *ac = l->ac;
    l->ac = NULL;
    l->up = 0; /* callbacks that run now may send: they must find the link down */
    redisAsyncFree(ac);
    link_schedule(l);
}

static void link_ready(proc_link_t *l)
{
    chl_proc_t *p = l->proc;
    l->up = 1;
    l->backoff_ms = 0;
    if (l->ever_up)
        p->stats.reconnects++;
    l->ever_up = 1;
    if (l->role == LINK_POP)
        pop_again(p);
    else if (l->shard == p->pop.shard)
        on_heartbeat(&p->heartbeat); /* say at once that this process lives */
    report_state(p);
}

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *priv)
{
    proc_link_t *l = ac->data;
    redisReply *r = reply;
    int id = (int)(intptr_t)priv;
    link_replied(ac);
    if (!r || l->proc->closing)
        return; /* the link is going away; its disconnect reschedules it */
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        mc_error("channel-layer: script %d does not load", id);
        l->proc->stats.redis_errors++;
        redisAsyncDisconnect(ac);
        return;
    }
    memcpy(l->proc->sha[id], r->str, 41);
    if (--l->loading == 0)
        link_ready(l);
}

static void on_select(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    redisReply *r = reply;
    link_replied(ac);
    if (r && r->type == REDIS_REPLY_ERROR) {
        proc_link_t *l = ac->data;
        mc_error("channel-layer: SELECT failed: %.120s", r->str);
        l->proc->stats.redis_errors++;
        redisAsyncDisconnect(ac);
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac; /* hiredis hands out its own context */
    proc_link_t *l = ac->data;
    chl_proc_t *p = l->proc;
    l->connecting = 0;
    if (status != REDIS_OK) {
        p->stats.redis_errors++;
        link_schedule(l); /* hiredis frees ac after this callback */
        return;
    }
    if (p->closing)
        return;
    const chl__addr_t *a = &p->ring.addrs[l->shard];
    if (a->db && redisAsyncCommand(ac, on_select, NULL, "SELECT %d", a->db) == REDIS_OK)
        link_sent(l);
    if (l->role == LINK_POP) {
        link_ready(l);
        return;
    }
    l->loading = CHL__S_COUNT;
    for (int id = 0; id < CHL__S_COUNT; id++)
        if (redisAsyncCommand(ac, on_script_loaded, (void *)(intptr_t)id, "SCRIPT LOAD %s",
                              chl__script(id)) == REDIS_OK)
            link_sent(l);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    proc_link_t *l = cac->data;
    if (status != REDIS_OK)
        l->proc->stats.redis_errors++;
    if (!l->proc->closing)
        mc_warn("channel-layer: %s: lost shard %zu", l->proc->name, l->shard);
    link_schedule(l);
}

static void link_connect(proc_link_t *l)
{
    chl_proc_t *p = l->proc;
    const chl__addr_t *a = &p->ring.addrs[l->shard];
    redisAsyncContext *ac = redisAsyncConnect(a->host, a->port);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        p->stats.redis_errors++;
        link_schedule(l);
        return;
    }
    ac->data = l;
    if (redisLibuvAttach(ac, p->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        p->stats.redis_errors++;
        link_schedule(l);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    l->connecting = 1;
    l->since = uv_now(p->loop);
}

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
    size_t n = chl__local_members(p->local, f->name, f->name_len, &members);
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
            int rc = chl__local_add(p->local, f.name, f.name_len, conn);
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

static void on_req_reply(redisAsyncContext *ac, void *reply, void *priv);

/* What a pop took leaves the list's byte counter (chl.h). Sent on the pop
 * link, ahead of the next pop, which keeps the count in step with what
 * the pops take. Best effort: a count that is lost heals once the list is
 * empty. */
static void popped(chl_proc_t *p, size_t bytes)
{
    proc_req_t *req = calloc(1, sizeof(*req));
    if (!req || !p->pop.up || !p->pop.ac ||
        chl__bytes_key(req->bufs[0], CHL__KEY_MAX, p->cfg.prefix, p->list_key) != 0) {
        free(req);
        return;
    }
    snprintf(req->bufs[1], CHL__KEY_MAX, "%zu", bytes);
    req->proc = p;
    req->script = CHL__S_POPPED;
    req->argc = 6; /* EVALSHA sha 2 list counter bytes */
    req->argv[0] = "EVALSHA";
    req->argv[1] = p->sha[CHL__S_POPPED];
    req->argv[2] = "2";
    req->argv[3] = p->list_key;
    req->argv[4] = req->bufs[0];
    req->argv[5] = req->bufs[1];
    for (int i = 0; i < req->argc; i++)
        req->lens[i] = strlen(req->argv[i]);
    if (redisAsyncCommandArgv(p->pop.ac, on_req_reply, req, req->argc, req->argv, req->lens) !=
        REDIS_OK) {
        free(req);
        return;
    }
    link_sent(&p->pop);
}

static void on_pop(redisAsyncContext *ac, void *reply, void *priv)
{
    chl_proc_t *p = priv;
    redisReply *r = reply;
    link_replied(ac);
    if (!r || p->closing)
        return; /* the link is down or closing; a reconnect pops again */
    if (r->type == REDIS_REPLY_ERROR) {
        mc_error("channel-layer: %s: pop failed: %.120s", p->name, r->str);
        p->stats.redis_errors++;
        redisAsyncDisconnect(ac); /* back off instead of spinning */
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_ARRAY) {
        redisReply *els = r->element[1];
        size_t bytes = 0;
        for (size_t i = 0; i < els->elements; i++)
            if (els->element[i]->type == REDIS_REPLY_STRING)
                bytes += els->element[i]->len;
        popped(p, bytes);
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
    if (redisAsyncCommand(p->pop.ac, on_pop, p, "BLMPOP %s 1 %s RIGHT COUNT %s", PROC_POP_TIMEOUT,
                          p->list_key, PROC_POP_COUNT) == REDIS_OK)
        link_sent(&p->pop);
}

/* ---- commands ---- */

static void on_heartbeat_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)reply;
    (void)priv;
    link_replied(ac);
}

static void on_prepare(uv_prepare_t *h)
{
    chl_proc_t *p = h->data;
    p->polled_at = uv_now(p->loop);
}

static void on_heartbeat(uv_timer_t *t)
{
    chl_proc_t *p = t->data;
    if (p->closing)
        return;
    link_check_stall(&p->pop);
    for (size_t i = 0; i < p->ring.nshards; i++)
        link_check_stall(&p->cmd[i]);
    proc_link_t *l = &p->cmd[p->pop.shard];
    if (!l->up)
        return;
    if (redisAsyncCommand(l->ac, on_heartbeat_reply, NULL, "SET %s 1 PX %ld", p->hb_key,
                          p->cfg.heartbeat_ttl_ms) == REDIS_OK)
        link_sent(l);
    /* Registered beside the heartbeat, so that workers find this process
     * once the heartbeat expires (chl_reap_processes). */
    if (redisAsyncCommand(l->ac, on_heartbeat_reply, NULL, "SADD %s %s", p->procs_key, p->name) ==
        REDIS_OK)
        link_sent(l);
}

static void req_free(proc_req_t *req)
{
    free(req->frame);
    free(req);
}

static void on_req_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    proc_req_t *req = priv;
    chl_proc_t *p = req->proc;
    redisReply *r = reply;
    int status;
    link_replied(ac);
    if (!r) {
        status = p->closing ? MC_ECLOSED : MC_EREDIS;
    } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "OOM", 3) == 0) {
        /* Redis is out of memory: full, like a list at its capacity, and
         * not down; what the sender learns is the same. */
        p->stats.full++;
        status = MC_EFULL;
    } else if (r->type == REDIS_REPLY_ERROR) {
        if (!req->retried && strncmp(r->str, "NOSCRIPT", 8) == 0 && !p->closing) {
            /* EVAL with the body runs it and caches it again. */
            req->retried = 1;
            req->argv[0] = "EVAL";
            req->argv[1] = chl__script(req->script);
            req->lens[0] = 4;
            req->lens[1] = strlen(req->argv[1]);
            if (redisAsyncCommandArgv(ac, on_req_reply, req, req->argc, req->argv, req->lens) ==
                REDIS_OK) {
                link_sent(ac->data);
                return;
            }
        }
        mc_warn("channel-layer: %s: script failed: %.120s", p->name, r->str);
        p->stats.redis_errors++;
        status = MC_EREDIS;
    } else if (req->script == CHL__S_SEND) {
        status = (r->type == REDIS_REPLY_INTEGER && r->integer == 1) ? 0 : MC_EFULL;
        if (status == 0)
            p->stats.sent++;
        else
            p->stats.full++;
    } else {
        status = 0;
    }
    if (req->cb)
        req->cb(req->arg, status);
    req_free(req);
}

/* Sends req on the command link of shard. Returns 0 (the reply callback
 * owns req now) or an error (req is freed, no callback runs). */
static int req_send(chl_proc_t *p, size_t shard, proc_req_t *req)
{
    proc_link_t *l = &p->cmd[shard];
    if (p->closing) {
        req_free(req);
        return MC_ECLOSED;
    }
    if (!l->up || !l->ac) {
        req_free(req);
        return MC_EREDIS;
    }
    req->proc = p;
    req->argv[0] = "EVALSHA";
    req->argv[1] = p->sha[req->script];
    for (int i = 0; i < req->argc; i++)
        if (i < 2 || !req->lens[i])
            req->lens[i] = strlen(req->argv[i]);
    if (redisAsyncCommandArgv(l->ac, on_req_reply, req, req->argc, req->argv, req->lens) !=
        REDIS_OK) {
        req_free(req);
        return MC_EREDIS;
    }
    link_sent(l);
    return 0;
}

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
    proc_req_t *req = calloc(1, sizeof(*req));
    if (!req)
        return MC_ENOMEM;
    size_t flen;
    int rc = chl__frame_build(&req->frame, &flen, CHL__MSG, mc_now_ms() + proc->cfg.expiry_ms,
                              queue, msg, len);
    if (rc != 0) {
        free(req);
        return rc;
    }
    size_t shard;
    long cap;
    if (bang >= 0) {
        snprintf(req->bufs[0], CHL__KEY_MAX, "%s%.*s!", proc->cfg.prefix, (int)bang, queue);
        shard = chl__ring_channel(&proc->ring, queue);
        cap = proc->cfg.process_capacity;
    } else {
        snprintf(req->bufs[0], CHL__KEY_MAX, "%s%s", proc->cfg.prefix, queue);
        /* Queues are popped on every shard: any shard that is up will do. */
        size_t ns = proc->ring.nshards;
        shard = proc->push_next++ % ns;
        for (size_t k = 0; k < ns && !proc->cmd[shard].up; k++)
            shard = (shard + 1) % ns;
        cap = proc->cfg.queue_capacity;
    }
    snprintf(req->bufs[1], CHL__KEY_MAX, "%ld", cap);
    snprintf(req->bufs[2], CHL__KEY_MAX, "%ld", proc->cfg.expiry_ms);
    req->script = CHL__S_SEND;
    req->cb = cb;
    req->arg = arg;
    /* EVALSHA sha 1 list capacity ttl frame, or for a process list
     * EVALSHA sha 2 list counter capacity ttl frame max-bytes */
    int proc_list = bang >= 0 &&
                    chl__bytes_key(req->bufs[3], CHL__KEY_MAX, proc->cfg.prefix, req->bufs[0]) == 0;
    int k = 2;
    req->argv[k++] = proc_list ? "2" : "1";
    req->argv[k++] = req->bufs[0];
    if (proc_list)
        req->argv[k++] = req->bufs[3];
    req->argv[k++] = req->bufs[1];
    req->argv[k++] = req->bufs[2];
    req->lens[k] = flen;
    req->argv[k++] = req->frame;
    if (proc_list) {
        snprintf(req->bufs[4], CHL__KEY_MAX, "%ld", proc->cfg.process_bytes);
        req->argv[k++] = req->bufs[4];
    }
    req->argc = k;
    return req_send(proc, shard, req);
}

static void on_discard_done(void *arg, int status)
{
    chl_proc_t *p = arg;
    if (status != 0 && status != MC_ECLOSED)
        mc_warn("channel-layer: %s: a discard failed: %s", p->name, mc_strerror(status));
}

struct forget_ctx {
    chl_proc_t *p;
    uint64_t conn;
    int rc;
};

static void forget_one(void *arg, const char *group)
{
    struct forget_ctx *fc = arg;
    chl_proc_t *p = fc->p;
    proc_req_t *req = calloc(1, sizeof(*req));
    if (!req) {
        fc->rc = MC_ENOMEM;
        return;
    }
    const char *pre = p->cfg.prefix;
    snprintf(req->bufs[0], CHL__KEY_MAX, "%sgroup:%s", pre, group);
    snprintf(req->bufs[1], CHL__KEY_MAX, "%sgroupp:%s", pre, group);
    snprintf(req->bufs[2], CHL__KEY_MAX, "%spgroups:%s", pre, p->name);
    snprintf(req->bufs[3], CHL__KEY_MAX, "%s!%llu", p->name, (unsigned long long)fc->conn);
    snprintf(req->bufs[4], CHL__KEY_MAX, "%s", group);
    req->script = CHL__S_GDISC;
    req->cb = on_discard_done;
    req->arg = p;
    req->argc = 9;
    req->argv[2] = "3";
    req->argv[3] = req->bufs[0];
    req->argv[4] = req->bufs[1];
    req->argv[5] = req->bufs[2];
    req->argv[6] = req->bufs[3]; /* ARGV: member, process, group */
    req->argv[7] = p->name;
    req->argv[8] = req->bufs[4];
    size_t shard = chl__ring_name(&p->ring, group, strlen(group));
    int rc = req_send(p, shard, req);
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

/* ---- life cycle ---- */

static void proc_free(chl_proc_t *p)
{
    chl__local_free(p->local);
    free(p->scratch);
    free(p->cmd);
    chl__ring_clear(&p->ring);
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

static void link_free(proc_link_t *l)
{
    redisAsyncContext *ac = l->ac;
    l->ac = NULL;
    l->up = 0;
    if (ac)
        redisAsyncFree(ac); /* pending callbacks run now, with NULL replies */
}

static void on_closer(uv_timer_t *t)
{
    chl_proc_t *p = t->data;
    link_free(&p->pop);
    for (size_t i = 0; i < p->ring.nshards; i++)
        link_free(&p->cmd[i]);
    close_handle(p, (uv_handle_t *)&p->heartbeat);
    close_handle(p, (uv_handle_t *)&p->closer);
    close_handle(p, (uv_handle_t *)&p->prepare);
    close_handle(p, (uv_handle_t *)&p->pop.retry);
    for (size_t i = 0; i < p->ring.nshards; i++)
        close_handle(p, (uv_handle_t *)&p->cmd[i].retry);
}

void chl_proc_close(chl_proc_t *proc)
{
    if (!proc || proc->closing)
        return;
    proc->closing = 1;
    uv_timer_stop(&proc->heartbeat);
    uv_prepare_stop(&proc->prepare);
    uv_timer_stop(&proc->pop.retry);
    for (size_t i = 0; i < proc->ring.nshards; i++)
        uv_timer_stop(&proc->cmd[i].retry);
    uv_timer_start(&proc->closer, on_closer, 0, 0);
}

static void link_init(chl_proc_t *p, proc_link_t *l, size_t shard, enum link_role role)
{
    l->proc = p;
    l->shard = shard;
    l->role = role;
    uv_timer_init(p->loop, &l->retry);
    l->retry.data = l;
    p->handles++;
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
        p->local = chl__local_new();
        if (!p->cmd || !p->local)
            rc = MC_ENOMEM;
    }
    if (rc != 0) {
        proc_free(p);
        return rc;
    }
    chl__make_name(p->name, sizeof(p->name), kind);
    p->name_len = strlen(p->name);
    if (chl__key(p->list_key, sizeof(p->list_key), p->cfg.prefix, p->name, "!") != 0 ||
        chl__key(p->hb_key, sizeof(p->hb_key), p->cfg.prefix, "hb:", p->name) != 0 ||
        chl__key(p->procs_key, sizeof(p->procs_key), p->cfg.prefix, "procs", NULL) != 0) {
        proc_free(p);
        return MC_EINVAL;
    }
    p->loop = loop;
    p->ctx = ctx;
    if (handlers)
        p->h = *handlers;
    p->reported = 0; /* down until every link is up; only changes are reported */
    uv_timer_init(loop, &p->heartbeat);
    p->heartbeat.data = p;
    uv_timer_init(loop, &p->closer);
    p->closer.data = p;
    uv_prepare_init(loop, &p->prepare);
    p->prepare.data = p;
    uv_prepare_start(&p->prepare, on_prepare);
    p->handles = 3;
    for (size_t i = 0; i < p->ring.nshards; i++)
        link_init(p, &p->cmd[i], i, LINK_CMD);
    link_init(p, &p->pop, chl__ring_name(&p->ring, p->name, p->name_len), LINK_POP);
    for (size_t i = 0; i < p->ring.nshards; i++)
        link_connect(&p->cmd[i]);
    link_connect(&p->pop);
    uint64_t every = (uint64_t)(p->cfg.heartbeat_ttl_ms / 3 > 0 ? p->cfg.heartbeat_ttl_ms / 3 : 1);
    uv_timer_start(&p->heartbeat, on_heartbeat, 0, every);
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
