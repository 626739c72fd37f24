/*
 * channel-layer/batch.c: the queue pushes of one loop turn, sent together
 * in one LPUSH (see batch.h).
 */
#include "channel-layer/batch.h"
#include "channel-layer/request.h"
#include "common/error.h"
#include "common/log.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_HEAD 2 /* LPUSH key */

/* Pushes to one queue on one shard made in one loop turn: one LPUSH for
 * all of them. Each has its own completion. */
struct chl__batch_pushes {
    chl__batch_t *batch;
    size_t shard;
    size_t n;
    long cap;
    char key[CHL__KEY_MAX];
    const char *argv[BATCH_HEAD + CHL__BATCH_MAX]; /* then the frames */
    size_t lens[BATCH_HEAD + CHL__BATCH_MAX];
    char *frames[CHL__BATCH_MAX]; /* owned */
    chl_send_cb cbs[CHL__BATCH_MAX];
    void *args[CHL__BATCH_MAX];
    int status[CHL__BATCH_MAX]; /* of each frame, while some are taken back */
    size_t first, asked, back;  /* taken back: from first on, asked, answered */
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

/* Each of the frames past the queue's capacity is taken back by its own
 * LREM: 1, it was still in the queue and is refused (full); 0, a worker
 * moved it already and it counts as pushed. */
static void on_take_back(redisAsyncContext *ac, void *reply, void *priv)
{
    struct chl__batch_pushes *ps = priv;
    chl__links_t *links = ps->batch->links;
    redisReply *r = reply;
    chl__link_replied(ac);
    size_t i = ps->first + ps->back++;
    if (!r) /* it may have gone or not: the sender sends again */
        ps->status[i] = *links->closing ? MC_ECLOSED : MC_EREDIS;
    else if (r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        ps->status[i] = MC_EFULL;
    if (ps->status[i] == 0)
        links->stats->sent++;
    else if (ps->status[i] == MC_EFULL)
        links->stats->full++;
    if (ps->back < ps->asked)
        return;
    for (size_t k = 0; k < ps->n; k++)
        if (ps->cbs[k])
            ps->cbs[k](ps->args[k], ps->status[k]);
    pushes_free(ps);
}

/* The LPUSH made the queue longer than its capacity: the newest frames,
 * from fit on, are taken back, each by its bytes, not by its place, which
 * another process's push may have moved (a frame taken back for another
 * equal to it, byte for byte, changes nothing). Until then the queue holds
 * up to a batch more than its capacity for each process that pushes. */
static void take_back(redisAsyncContext *ac, struct chl__batch_pushes *ps, size_t fit)
{
    ps->first = fit;
    ps->asked = ps->back = 0;
    for (size_t i = 0; i < ps->n; i++)
        ps->status[i] = 0;
    for (size_t i = fit; i < ps->n; i++) {
        const char *argv[4] = {"LREM", ps->key, "1", ps->frames[i]};
        size_t lens[4] = {4, strlen(ps->key), 1, ps->lens[BATCH_HEAD + i]};
        if (chl__command_send(ac->data, on_take_back, ps, 4, argv, lens) != 0)
            break; /* this one and the rest stay in the queue: pushed */
        chl__link_sent(ac->data);
        ps->asked++;
    }
    ps->batch->links->stats->sent += ps->n - ps->asked;
    if (ps->asked == 0)
        pushes_complete(ps, ps->n, 0);
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
        links->stats->full += ps->n; /* full, not down: as for a script call */
        pushes_complete(ps, 0, MC_EFULL);
    } else if (r->type != REDIS_REPLY_INTEGER) {
        if (r->type != REDIS_REPLY_ERROR || !chl__link_not_master(ac, r->str))
            mc_warn("channel-layer: %s: a push failed: %.120s", links->name,
                    r->type == REDIS_REPLY_ERROR ? r->str : "not a length");
        links->stats->redis_errors++;
        pushes_complete(ps, 0, MC_EREDIS);
    } else {
        /* The answer is the new length: those past the capacity were the
         * newest, and go back out, as if the queue had refused them. */
        long long before = r->integer - (long long)ps->n;
        ps->batch->backlog[ps->shard] = before > 0;
        size_t fit = ps->n;
        if (ps->cap >= 0 && r->integer > ps->cap)
            fit = before >= ps->cap ? 0 : (size_t)(ps->cap - before);
        if (fit >= ps->n) {
            links->stats->sent += ps->n;
            pushes_complete(ps, ps->n, 0);
        } else {
            take_back(ac, ps, fit);
        }
    }
}

/* Marks the frames that will have more behind them in the queue (batch.h):
 * all but the newest of one LPUSH, and the newest too while the last
 * answer from this shard said a backlog was forming. A hint only: a stale
 * mark costs a worker one look that finds nothing, a missing one a batch
 * it takes later; it saves the worker a look after every wait. */
static void mark_more(const chl__batch_t *b, struct chl__batch_pushes *ps)
{
    size_t marked = b->backlog[ps->shard] ? ps->n : ps->n - 1;
    for (size_t i = 0; i < marked; i++)
        if (ps->frames[i][0] == CHL__MSG)
            ps->frames[i][0] = CHL__MSG_MORE;
}

/* The turn's pushes go in one LPUSH, whose answer is the capacity check (a
 * queue does not expire and has no bound in bytes). A plain command, not a
 * script: this is every envelope's way to the workers, and a script call
 * costs Redis several times an LPUSH. */
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
    mark_more(b, ps);
    ps->argv[0] = "LPUSH";
    ps->lens[0] = 5;
    ps->argv[1] = ps->key;
    ps->lens[1] = strlen(ps->key);
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
        ps->n = 0;
        ps->cap = cap;
        memcpy(ps->key, key, strlen(key) + 1);
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
    memset(b->backlog, 0, sizeof(b->backlog));
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
