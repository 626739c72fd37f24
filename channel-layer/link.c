/*
 * channel-layer/link.c: an endpoint's connections to Redis (see link.h):
 * finding a shard's server, connecting and setting the connection up,
 * noticing that it is lost or stuck, and trying again.
 */
#include "channel-layer/link.h"
#include "channel-layer/adapter.h"
#include "common/error.h"
#include "common/log.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINK_FIND_TIMEOUT_MS 1000 /* to connect to a master the sentinels name */

static void report_state(chl__links_t *ls)
{
    if (*ls->closing)
        return;
    int up = ls->pop->up;
    for (size_t i = 0; i < ls->ring->nshards; i++)
        up = up && ls->cmd[i].up;
    if (up != ls->reported) {
        ls->reported = up;
        mc_info("channel-layer: %s: redis %s", ls->name, up ? "up" : "down");
        if (ls->on_state)
            ls->on_state(ls->ctx, up);
    }
}

static void on_retry(uv_timer_t *t)
{
    chl__link_t *l = t->data;
    if (!*l->links->closing)
        chl__link_connect(l);
}

/* The link is down (its context gone or going): tries again after the
 * backoff, which doubles up to CHL__LINK_BACKOFF_MAX_MS. */
static void link_schedule(chl__link_t *l)
{
    chl__links_t *ls = l->links;
    l->ac = NULL;
    l->up = 0;
    l->connecting = 0;
    l->pending = 0;
    if (*ls->closing || uv_is_active((uv_handle_t *)&l->retry))
        return;
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : CHL__LINK_BACKOFF_MIN_MS;
    if (l->backoff_ms > CHL__LINK_BACKOFF_MAX_MS)
        l->backoff_ms = CHL__LINK_BACKOFF_MAX_MS;
    uv_timer_start(&l->retry, on_retry, (uint64_t)l->backoff_ms, 0);
    report_state(ls);
}

/* Logs the first failure of an outage of shard i, not every retry. */
static void shard_failed(chl__links_t *ls, size_t i, const char *why)
{
    ls->stats->redis_errors++;
    if (*ls->closing || ls->shards[i].warned)
        return;
    ls->shards[i].warned = 1;
    mc_warn("channel-layer: %s: shard %zu: %s; retrying", ls->name, i, why);
}

void chl__link_sent(chl__link_t *l)
{
    if (l->pending++ == 0)
        l->since = uv_now(l->links->loop);
}

void chl__link_replied(const redisAsyncContext *ac)
{
    chl__link_t *l = ac->data;
    if (l->pending > 0)
        l->pending--;
    l->since = uv_now(l->links->loop);
}

int chl__link_not_master(redisAsyncContext *ac, const char *error)
{
    chl__link_t *l = ac->data;
    if (!chl__not_master(error))
        return 0;
    if (l->ac == ac && !*l->links->closing) {
        char at[CHL__SERVER_TEXT];
        mc_warn("channel-layer: %s: shard %zu: %s is no longer the master", l->links->name,
                l->shard, chl__server_text(&l->links->shards[l->shard].at, at));
        l->up = 0;                /* sends fail fast from now on */
        redisAsyncDisconnect(ac); /* once the replies under way are in */
        report_state(l->links);
    }
    return 1;
}

/* Drops a link whose server does not answer. Pending callbacks run with
 * NULL replies. */
static void link_check_stall(chl__link_t *l)
{
    uint64_t polled = *l->links->polled_at;
    if (!l->ac || (!l->connecting && l->pending == 0))
        return;
    /* Silent means silent while the loop listened: a poll for input began
     * CHL__LINK_STALL_MS after the last progress and brought none. After a
     * long turn of this process's own (a large batch fanned out to many
     * sockets), replies that arrived meanwhile are still unread: that is no
     * dead server, and a busy process must not take it for one. */
    if (polled < l->since || polled - l->since < CHL__LINK_STALL_MS)
        return;
    mc_warn("channel-layer: %s: shard %zu does not answer; reconnecting", l->links->name, l->shard);
    l->links->stats->redis_errors++;
    redisAsyncContext *ac = l->ac;
    l->ac = NULL;
    l->up = 0; /* callbacks that run now may send: they must find the link down */
    redisAsyncFree(ac);
    link_schedule(l);
}

void chl__links_check_stall(chl__links_t *ls)
{
    link_check_stall(ls->pop);
    for (size_t i = 0; i < ls->ring->nshards && !*ls->closing; i++)
        link_check_stall(&ls->cmd[i]);
}

static void link_ready(chl__link_t *l)
{
    chl__links_t *ls = l->links;
    l->up = 1;
    l->backoff_ms = 0;
    if (l->ever_up)
        ls->stats->reconnects++;
    l->ever_up = 1;
    ls->on_up(l);
    report_state(ls);
}

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *priv)
{
    chl__link_t *l = ac->data;
    redisReply *r = reply;
    int id = (int)(intptr_t)priv;
    chl__link_replied(ac);
    if (!r || *l->links->closing)
        return; /* the link is going away; its disconnect reschedules it */
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        mc_error("channel-layer: script %d does not load", id);
        l->links->stats->redis_errors++;
        redisAsyncDisconnect(ac);
        return;
    }
    memcpy(l->links->sha[id], r->str, 41);
    if (--l->loading == 0)
        link_ready(l);
}

/* The reply to AUTH or SELECT (priv names it): an error gives the
 * connection up. */
static char auth_command[] = "AUTH", select_command[] = "SELECT";

static void on_setup(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *r = reply;
    chl__link_replied(ac);
    if (r && r->type == REDIS_REPLY_ERROR) {
        chl__link_t *l = ac->data;
        mc_error("channel-layer: %s: shard %zu: %s refused: %.120s", l->links->name, l->shard,
                 (const char *)priv, r->str);
        l->links->stats->redis_errors++;
        redisAsyncDisconnect(ac);
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac; /* hiredis hands out its own context */
    chl__link_t *l = ac->data;
    chl__links_t *ls = l->links;
    l->connecting = 0;
    char at[CHL__SERVER_TEXT];
    chl__server_text(&ls->shards[l->shard].at, at);
    if (status != REDIS_OK) {
        char why[CHL__SERVER_TEXT + 32];
        snprintf(why, sizeof(why), "%s does not answer", at);
        shard_failed(ls, l->shard, why);
        link_schedule(l); /* hiredis frees ac after this callback */
        return;
    }
    if (*ls->closing)
        return;
    if (ls->shards[l->shard].warned)
        mc_info("channel-layer: %s: shard %zu: %s answers again", ls->name, l->shard, at);
    ls->shards[l->shard].warned = 0;
    const chl__addr_t *a = &ls->ring->addrs[l->shard];
    if (a->password[0] && redisAsyncCommand(ac, on_setup, auth_command, "AUTH %b", a->password,
                                            strlen(a->password)) == REDIS_OK)
        chl__link_sent(l);
    if (a->db && redisAsyncCommand(ac, on_setup, select_command, "SELECT %d", a->db) == REDIS_OK)
        chl__link_sent(l);
    if (l->role == CHL__LINK_POP) {
        link_ready(l);
        return;
    }
    l->loading = CHL__S_COUNT;
    for (int id = 0; id < CHL__S_COUNT; id++)
        if (redisAsyncCommand(ac, on_script_loaded, (void *)(intptr_t)id, "SCRIPT LOAD %s",
                              chl__script(id)) == REDIS_OK)
            chl__link_sent(l);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    chl__link_t *l = cac->data;
    if (status != REDIS_OK)
        l->links->stats->redis_errors++;
    if (!*l->links->closing && l->ac == cac) /* not dropped on purpose (stall, move): lost */
        mc_warn("channel-layer: %s: lost shard %zu", l->links->name, l->shard);
    link_schedule(l);
}

/* Connects l to the server at; a new address for a Sentinel shard's master
 * is a failover, logged and counted once per shard. */
static void link_open(chl__link_t *l, const chl__server_t *at)
{
    chl__links_t *ls = l->links;
    chl__link_shard_t *s = &ls->shards[l->shard];
    l->at = *at;
    if (strcmp(s->at.host, at->host) != 0 || s->at.port != at->port) {
        if (s->at.host[0]) {
            mc_warn("channel-layer: %s: shard %zu: master %s moved from %s:%d to %s:%d", ls->name,
                    l->shard, ls->ring->addrs[l->shard].master, s->at.host, s->at.port, at->host,
                    at->port);
            ls->stats->failovers++;
        }
        s->at = *at;
    }
    redisAsyncContext *ac =
        at->port ? redisAsyncConnect(at->host, at->port) : redisAsyncConnectUnix(at->host);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        shard_failed(ls, l->shard, "no connection can be made");
        link_schedule(l);
        return;
    }
    ac->data = l;
    if (chl__uv_attach(ac, ls->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        shard_failed(ls, l->shard, "the connection cannot join the loop");
        link_schedule(l);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    l->connecting = 1;
    l->since = uv_now(ls->loop);
}

static void on_found(void *arg, int status, const chl__server_t *at, size_t next, const char *why)
{
    chl__link_t *l = arg;
    chl__links_t *ls = l->links;
    l->finding = NULL;
    ls->shards[l->shard].next_sentinel = next;
    if (status != 0) {
        shard_failed(ls, l->shard, why);
        link_schedule(l);
        return;
    }
    link_open(l, at);
}

void chl__link_connect(chl__link_t *l)
{
    chl__links_t *ls = l->links;
    const chl__addr_t *a = &ls->ring->addrs[l->shard];
    if (!a->master[0]) {
        chl__server_t at;
        memcpy(at.host, a->host, sizeof(at.host));
        at.port = a->port;
        link_open(l, &at);
        return;
    }
    /* The search blocks on sockets: it runs on the thread pool. */
    l->connecting = 1;
    l->finding = chl__server_find(ls->loop, a, LINK_FIND_TIMEOUT_MS,
                                  ls->shards[l->shard].next_sentinel, on_found, l);
    if (!l->finding) {
        shard_failed(ls, l->shard, "out of memory");
        link_schedule(l);
    }
}

void chl__link_free(chl__link_t *l)
{
    chl__server_find_cancel(l->finding);
    l->finding = NULL;
    redisAsyncContext *ac = l->ac;
    l->ac = NULL;
    l->up = 0;
    if (ac)
        redisAsyncFree(ac); /* pending callbacks run now, with NULL replies */
}

void chl__link_move(chl__link_t *l, const chl__server_t *to)
{
    chl__links_t *ls = l->links;
    if (*ls->closing || (l->ac && strcmp(l->at.host, to->host) == 0 && l->at.port == to->port))
        return;
    chl__server_find_cancel(l->finding); /* it may have heard the old master named */
    l->finding = NULL;
    redisAsyncContext *ac = l->ac;
    l->ac = NULL;
    l->up = 0; /* callbacks that run now may send: they must find the link down */
    if (ac)
        redisAsyncFree(ac); /* its disconnect callback schedules a retry, made now instead */
    uv_timer_stop(&l->retry);
    l->connecting = 0;
    l->pending = 0;
    l->backoff_ms = 0;
    report_state(ls);
    chl__link_connect(l);
}

void chl__link_init(chl__links_t *ls, chl__link_t *l, size_t shard, enum chl__link_role role)
{
    l->links = ls;
    l->shard = shard;
    l->role = role;
    uv_timer_init(ls->loop, &l->retry);
    l->retry.data = l;
    (*ls->handles)++;
}
