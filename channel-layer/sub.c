/*
 * channel-layer/sub.c: an endpoint listens to its sentinels (see sub.h):
 * each Sentinel shard subscribes to +switch-master on one of its sentinels,
 * another one after a failure, with a backoff; when they announce that the
 * shard's master moved, the shard's links go to the new one at once
 * (chl__link_move), from a zero timer.
 */
#include "channel-layer/sub.h"
#include "channel-layer/adapter.h"
#include "common/error.h"
#include "common/log.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

static void sub_connect(chl__sentinel_sub_t *s);

static const chl__addr_t *addr_of(const chl__sentinel_sub_t *s)
{
    return &s->links->ring->addrs[s->shard];
}

static void on_retry(uv_timer_t *t)
{
    chl__sentinel_sub_t *s = t->data;
    if (!*s->links->closing)
        sub_connect(s);
}

/* The subscription is down (its context gone or going): the next sentinel
 * is tried after the backoff, which doubles up to CHL__WATCH_BACKOFF_MAX_MS.
 * Until then a failover is still found when the master fails. */
static void sub_failed(chl__sentinel_sub_t *s)
{
    chl__links_t *ls = s->links;
    const chl__addr_t *a = addr_of(s);
    s->ac = NULL;
    if (*ls->closing || uv_is_active((uv_handle_t *)&s->retry))
        return;
    if (!s->warned)
        mc_warn("channel-layer: %s: shard %zu: sentinel %s:%d of master %s cannot be heard; "
                "trying the others (meanwhile a failover is found when the master fails)",
                ls->name, s->shard, a->sentinels[s->next].host, a->sentinels[s->next].port,
                a->master);
    s->warned = 1;
    s->next = (s->next + 1) % a->nsentinels;
    s->backoff_ms = s->backoff_ms ? 2 * s->backoff_ms : CHL__WATCH_BACKOFF_MIN_MS;
    if (s->backoff_ms > CHL__WATCH_BACKOFF_MAX_MS)
        s->backoff_ms = CHL__WATCH_BACKOFF_MAX_MS;
    uv_timer_start(&s->retry, on_retry, (uint64_t)s->backoff_ms, 0);
}

static void on_move(uv_timer_t *t)
{
    chl__sentinel_sub_t *s = t->data;
    chl__links_t *ls = s->links;
    if (*ls->closing)
        return;
    chl__link_move(&ls->cmd[s->shard], &s->moved_to);
    if (ls->pop->shard == s->shard)
        chl__link_move(ls->pop, &s->moved_to);
}

/* Every reply on the subscription: its confirmation, then each event. */
static void on_event(redisAsyncContext *ac, void *reply, void *priv)
{
    chl__sentinel_sub_t *s = priv;
    chl__links_t *ls = s->links;
    const chl__addr_t *a = addr_of(s);
    (void)ac;
    if (!reply || *ls->closing)
        return; /* the context is going; its disconnect callback says so */
    const redisReply *r = reply;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "subscribe") == 0) {
        if (s->warned)
            mc_info("channel-layer: %s: shard %zu: listening to sentinel %s:%d again", ls->name,
                    s->shard, a->sentinels[s->next].host, a->sentinels[s->next].port);
        s->warned = 0;
        s->backoff_ms = 0;
        return;
    }
    chl__server_t to;
    if (chl__switch_event(r, a->master, &to) != 0)
        return;
    mc_warn("channel-layer: %s: shard %zu: the sentinels moved master %s to %s:%d", ls->name,
            s->shard, a->master, to.host, to.port);
    s->moved_to = to;
    uv_timer_start(&s->move, on_move, 0, 0);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    chl__sentinel_sub_t *s = ac->data;
    if (status != REDIS_OK)
        sub_failed(s); /* hiredis frees ac after this callback */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    sub_failed(ac->data);
}

static void sub_connect(chl__sentinel_sub_t *s)
{
    chl__links_t *ls = s->links;
    const chl__server_t *at = &addr_of(s)->sentinels[s->next];
    redisAsyncContext *ac = redisAsyncConnect(at->host, at->port);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        sub_failed(s);
        return;
    }
    ac->data = s;
    if (chl__uv_attach(ac, ls->loop) != REDIS_OK ||
        redisAsyncCommand(ac, on_event, s, "SUBSCRIBE +switch-master") != REDIS_OK) {
        redisAsyncFree(ac);
        sub_failed(s);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    s->ac = ac;
}

void chl__sub_init(chl__links_t *links, chl__sentinel_sub_t *s, size_t shard)
{
    s->links = links;
    s->shard = shard;
    uv_timer_init(links->loop, &s->retry);
    uv_timer_init(links->loop, &s->move);
    s->retry.data = s;
    s->move.data = s;
    *links->handles += 2;
    if (addr_of(s)->master[0] && addr_of(s)->nsentinels > 0)
        sub_connect(s);
}

void chl__sub_stop(chl__sentinel_sub_t *s)
{
    uv_timer_stop(&s->retry);
    uv_timer_stop(&s->move);
}

void chl__sub_close(chl__sentinel_sub_t *s, uv_close_cb close_cb, void *data)
{
    redisAsyncContext *ac = s->ac;
    s->ac = NULL;
    if (ac)
        redisAsyncFree(ac); /* its callbacks run now: the endpoint is closing */
    s->retry.data = data;
    s->move.data = data;
    uv_close((uv_handle_t *)&s->retry, close_cb);
    uv_close((uv_handle_t *)&s->move, close_cb);
}
