/*
 * channel-layer/batch.c: the queue pushes of one loop turn, sent together
 * in one script call (see batch.h).
 */
#include "channel-layer/batch.h"
#include "channel-layer/request.h"
#include "common/error.h"
#include "common/log.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_HEAD 7 /* EVALSHA sha 1 key capacity ttl max-bytes */

/* Pushes to one queue on one shard made in one loop turn: one script call
 * for all of them. Each has its own completion. */
struct chl__batch_pushes {
    chl__batch_t *batch;
    size_t shard;
    int retried;
    size_t n;
    char key[CHL__KEY_MAX], cap[24];
    const char *argv[BATCH_HEAD + CHL__BATCH_MAX]; /* then the frames */
    size_t lens[BATCH_HEAD + CHL__BATCH_MAX];
    char *frames[CHL__BATCH_MAX]; /* owned */
    chl_send_cb cbs[CHL__BATCH_MAX];
    void *args[CHL__BATCH_MAX];
};

static void pushes_free(struct chl__batch_pushes *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        free(ps->frames[i]);
    free(ps);
}

/* The first pushed of the frames went; the others get status. */
static void pushes_complete(struct chl__batch_pushes *ps, size_t pushed, int status)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->cbs[i])
            ps->cbs[i](ps->args[i], i < pushed ? 0 : status);
    pushes_free(ps);
}

static void on_batch_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct chl__batch_pushes *ps = priv;
    chl__links_t *links = ps->batch->links;
    redisReply *r = reply;
    chl__link_replied(ac);
    if (!r) {
        pushes_complete(ps, 0, *links->closing ? MC_ECLOSED : MC_EREDIS);
    } else if (chl__out_of_memory(r)) {
        links->stats->full += ps->n; /* full, not down: as a single script call */
        pushes_complete(ps, 0, MC_EFULL);
    } else if (r->type == REDIS_REPLY_ERROR) {
        int demoted = chl__link_not_master(ac, r->str);
        if (!demoted && !ps->retried && strncmp(r->str, "NOSCRIPT", 8) == 0 && !*links->closing) {
            ps->retried = 1; /* EVAL with the body runs it and caches it again */
            ps->argv[0] = "EVAL";
            ps->argv[1] = chl__script(CHL__S_SEND);
            ps->lens[0] = 4;
            ps->lens[1] = strlen(ps->argv[1]);
            if (chl__command_send(ac->data, on_batch_reply, ps, (int)(BATCH_HEAD + ps->n), ps->argv,
                                  ps->lens) == 0) {
                chl__link_sent(ac->data);
                return;
            }
        }
        if (!demoted)
            mc_warn("channel-layer: %s: a push failed: %.120s", links->name, r->str);
        links->stats->redis_errors++;
        pushes_complete(ps, 0, MC_EREDIS);
    } else {
        size_t pushed = r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (size_t)r->integer : 0;
        if (pushed > ps->n)
            pushed = ps->n;
        links->stats->sent += pushed;
        links->stats->full += ps->n - pushed;
        pushes_complete(ps, pushed, MC_EFULL);
    }
}

void chl__batch_flush(chl__batch_t *b)
{
    struct chl__batch_pushes *ps = b->open;
    if (!ps)
        return;
    b->open = NULL;
    uv_check_stop(&b->check);
    uv_prepare_stop(&b->prepare);
    chl__links_t *links = b->links;
    chl__link_t *l = &links->cmd[ps->shard];
    if (*links->closing || !l->up || !l->ac) {
        pushes_complete(ps, 0, *links->closing ? MC_ECLOSED : MC_EREDIS);
        return;
    }
    /* A queue does not expire (ttl 0) and has no bound in bytes. */
    const char *head[BATCH_HEAD] = {"EVALSHA", links->sha[CHL__S_SEND], "1", ps->key, ps->cap, "0",
                                    "0"};
    for (int i = 0; i < BATCH_HEAD; i++) {
        ps->argv[i] = head[i];
        ps->lens[i] = strlen(head[i]);
    }
    if (chl__command_send(l, on_batch_reply, ps, (int)(BATCH_HEAD + ps->n), ps->argv, ps->lens) !=
        0) {
        pushes_complete(ps, 0, MC_EREDIS);
        return;
    }
    chl__link_sent(l);
}

static void on_batch_check(uv_check_t *h)
{
    chl__batch_flush(h->data);
}

static void on_batch_prepare(uv_prepare_t *h)
{
    chl__batch_flush(h->data);
}

int chl__batch_add(chl__batch_t *b, size_t shard, const char *key, long cap, char *frame,
                   size_t flen, chl_send_cb cb, void *arg)
{
    struct chl__batch_pushes *ps = b->open;
    if (ps && (ps->shard != shard || strcmp(ps->key, key) != 0 || ps->n == CHL__BATCH_MAX)) {
        chl__batch_flush(b);
        ps = NULL;
    }
    if (!ps) {
        ps = malloc(sizeof(*ps)); /* its arrays are filled as frames come */
        if (!ps) {
            free(frame);
            return MC_ENOMEM;
        }
        ps->batch = b;
        ps->shard = shard;
        ps->retried = 0;
        ps->n = 0;
        memcpy(ps->key, key, strlen(key) + 1);
        chl__decimal(ps->cap, cap);
        b->open = ps;
        uv_check_start(&b->check, on_batch_check);
        uv_prepare_start(&b->prepare, on_batch_prepare);
    }
    ps->frames[ps->n] = frame;
    ps->argv[BATCH_HEAD + ps->n] = frame;
    ps->lens[BATCH_HEAD + ps->n] = flen;
    ps->cbs[ps->n] = cb;
    ps->args[ps->n] = arg;
    ps->n++;
    return 0;
}

int chl__batch_shard(const chl__batch_t *b, size_t *shard)
{
    if (!b->open)
        return 0;
    *shard = b->open->shard;
    return 1;
}

void chl__batch_init(chl__batch_t *b, chl__links_t *links)
{
    b->links = links;
    b->open = NULL;
    uv_check_init(links->loop, &b->check);
    b->check.data = b;
    uv_prepare_init(links->loop, &b->prepare);
    b->prepare.data = b;
    *links->handles += 2;
}

void chl__batch_close(chl__batch_t *b, uv_close_cb close_cb, void *data)
{
    chl__batch_flush(b);
    b->check.data = data;
    b->prepare.data = data;
    uv_close((uv_handle_t *)&b->check, close_cb);
    uv_close((uv_handle_t *)&b->prepare, close_cb);
}
