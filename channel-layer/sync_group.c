/*
 * channel-layer/sync_group.c: groups for the blocking client (see chl.h):
 * membership changes, group sends (one copy per process with members,
 * named sends delivered once, batches in one round trip), and the
 * memberships of process endpoints that are gone.
 */
#include "channel-layer/sync.h"
#include "common/error.h"
#include "common/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int group_change(chl_t *chl, const char *group, const char *channel, int add, uint64_t seq)
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
    rc = chl__sync_push_frame(chl, chl__ring_channel(&chl->ring, channel), plist,
                              add ? chl->cfg.process_capacity : -1, chl->fixed.list_ttl,
                              add ? CHL__ADD : CHL__DISCARD, 0, group, seq, channel,
                              strlen(channel));
    if (rc != 0)
        return rc;
    const char *kv[3] = {keys[0], keys[1], keys[2]};
    const char *args[4] = {channel, process, group, chl->fixed.group_expiry};
    redisReply *r =
        chl__sync_script(chl, chl__ring_name(&chl->ring, group, strlen(group)),
                         add ? CHL__S_GADD : CHL__S_GDISC, 3, kv, add ? 4 : 3, args, NULL, &rc);
    freeReplyObject(r);
    return rc;
}

int chl_group_add(chl_t *chl, const char *group, const char *channel)
{
    return group_change(chl, group, channel, 1, 0);
}

int chl_group_add_after(chl_t *chl, const char *group, const char *channel, uint64_t seq)
{
    return group_change(chl, group, channel, 1, seq);
}

int chl_group_discard(chl_t *chl, const char *group, const char *channel)
{
    return group_change(chl, group, channel, 0, 0);
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
    const struct chl__sync_fixed *f = &chl->fixed;
    const char *args[6] = {f->process_capacity, frame,          once, once_ttl,
                           f->process_bytes,    chl->cfg.prefix};
    size_t lens[6] = {
        strlen(f->process_capacity), flen, strlen(once), strlen(once_ttl), strlen(f->process_bytes),
        strlen(chl->cfg.prefix)};
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
        redisReply *r = chl__sync_script(chl, sh, CHL__S_MPUSH, nk, kv, 6, args, lens, &src);
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

/* One group send, ready to run: its keys, its frame, and its arguments for
 * the script of several shards (gsend; one shard sends a batch: gsendn). */
#define GSEND_ARGS 3
typedef struct gsend {
    char keys[2][CHL__KEY_MAX], once[CHL__KEY_MAX];
    const char *kv[2];
    const char *args[GSEND_ARGS]; /* expiry or "0", prefix, group */
    size_t lens[GSEND_ARGS];
    char *frame;
    size_t flen;
    size_t shard; /* of the group */
} gsend_t;

/* Whether a send to group should look for its stale members: the first
 * send in CHL__SYNC_SWEEP_MS (or in a quarter of the group expiry, when
 * that is shorter) does; the others only push. */
static int sweep_due(chl_t *chl, const char *group)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *c = group; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    struct chl__sync_swept *s = &chl->swept[h % CHL__SYNC_SWEPT];
    int64_t now = mc_mono_ms(), every = chl->cfg.group_expiry_s * 1000 / 4;
    if (every > CHL__SYNC_SWEEP_MS)
        every = CHL__SYNC_SWEEP_MS;
    if (s->at && s->hash == h && now - s->at < every)
        return 0;
    s->hash = h;
    s->at = now;
    return 1;
}

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
                              m->group, m->seq, m->msg, m->len);
    if (rc != 0)
        return rc;
    const char *args[GSEND_ARGS] = {sweep_due(chl, m->group) ? chl->fixed.group_expiry : "0",
                                    chl->cfg.prefix, m->group};
    memcpy(g->args, args, sizeof(args));
    for (int k = 0; k < GSEND_ARGS; k++)
        g->lens[k] = strlen(args[k]);
    g->kv[0] = g->keys[0];
    g->kv[1] = g->keys[1];
    g->shard = chl__ring_name(&chl->ring, m->group, strlen(m->group));
    return 0;
}

/* Counts a send that was made (or failed with rc), drop copies short. */
static int gsend_done(chl_t *chl, int rc, size_t drop, size_t *dropped)
{
    if (rc == 0)
        chl->stats.sent++;
    chl->stats.group_dropped += drop;
    chl->stats.full += drop;
    *dropped += drop;
    return rc;
}

/* Several shards: takes the script's reply r (NULL: the call failed with
 * rc), the processes with members, and pushes the copies to them on their
 * shards. Frees r and returns 0 or the error. */
static int gsend_finish(chl_t *chl, gsend_t *g, redisReply *r, int rc, size_t *dropped)
{
    size_t drop = 0;
    if (r) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
            r->element[0]->type != REDIS_REPLY_INTEGER)
            rc = MC_EREDIS;
        else
            rc = group_fan_out(chl, r->element + 2, r->elements - 2, g->frame, g->flen, g->once,
                               chl->fixed.once_ttl, &drop);
        freeReplyObject(r);
    }
    return gsend_done(chl, rc, drop, dropped);
}

/* One shard: the sends g[0..n) whose prc[] is 0, in one script call (one
 * LPUSH per process list for all of them). Their prc[] get the outcome. */
#define GSENDN_HEAD 4 /* prefix, capacity, name ttl, max bytes; then 4 per message */
static void gsend_batch(chl_t *chl, gsend_t *g, int *prc, size_t n, size_t *dropped)
{
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
        m += prc[k] == 0;
    if (m == 0)
        return;
    const struct chl__sync_fixed *f = &chl->fixed;
    const char **keys = malloc(2 * m * sizeof(*keys));
    const char **args = malloc((GSENDN_HEAD + 4 * m) * sizeof(*args));
    size_t *lens = malloc((GSENDN_HEAD + 4 * m) * sizeof(*lens));
    int rc = keys && args && lens ? 0 : MC_ENOMEM;
    redisReply *r = NULL;
    if (rc == 0) {
        args[0] = chl->cfg.prefix;
        args[1] = f->process_capacity;
        args[2] = f->once_ttl;
        args[3] = f->process_bytes;
        for (size_t k = 0, j = 0; k < n; k++) {
            if (prc[k] != 0)
                continue;
            keys[2 * j] = g[k].keys[0];
            keys[2 * j + 1] = g[k].keys[1];
            const char *a[4] = {g[k].args[0], g[k].args[2], g[k].once, g[k].frame};
            size_t l[4] = {strlen(a[0]), strlen(a[1]), strlen(a[2]), g[k].flen};
            memcpy(&args[GSENDN_HEAD + 4 * j], a, sizeof(a));
            memcpy(&lens[GSENDN_HEAD + 4 * j], l, sizeof(l));
            j++;
        }
        for (size_t i = 0; i < GSENDN_HEAD; i++)
            lens[i] = strlen(args[i]);
        r = chl__sync_script(chl, 0, CHL__S_GSENDN, 2 * m, keys, GSENDN_HEAD + 4 * m, args, lens,
                             &rc);
        if (r && (r->type != REDIS_REPLY_ARRAY || r->elements != m))
            rc = MC_EREDIS;
    }
    for (size_t k = 0, j = 0; k < n; k++) {
        if (prc[k] != 0)
            continue;
        const redisReply *e = rc == 0 ? r->element[j++] : NULL;
        size_t drop =
            e && e->type == REDIS_REPLY_INTEGER && e->integer > 0 ? (size_t)e->integer : 0;
        prc[k] = gsend_done(chl, rc, drop, dropped);
    }
    freeReplyObject(r);
    free(keys), free(args), free(lens);
}

static chl__script_call_t gsend_call(const gsend_t *g)
{
    return (chl__script_call_t){2, GSEND_ARGS, g->kv, g->args, g->lens};
}

int chl_group_send(chl_t *chl, const char *group, const void *msg, size_t len, size_t *dropped)
{
    return chl_group_send_once(chl, group, NULL, msg, len, dropped);
}

int chl_group_send_once(chl_t *chl, const char *group, const char *name, const void *msg,
                        size_t len, size_t *dropped)
{
    chl_group_msg_t m = {group, name, msg, len, 0};
    return chl_group_send_many(chl, &m, 1, dropped);
}

int chl_group_send_many(chl_t *chl, const chl_group_msg_t *msgs, size_t n, size_t *dropped)
{
    size_t drop = 0;
    int first_err = 0;
    /* A lone message, as they come at a low rate, needs no allocation. */
    gsend_t one_g;
    chl__script_call_t one_call;
    int one_prc, alone = n <= 1;
    gsend_t *g = alone ? &one_g : malloc(n * sizeof(*g));
    chl__script_call_t *calls = alone ? &one_call : malloc(n * sizeof(*calls));
    int *prc = alone ? &one_prc : malloc(n * sizeof(*prc));
    if (!g || !calls || !prc) {
        free(g), free(calls), free(prc); /* not alone: allocated or NULL */
        return MC_ENOMEM;
    }
    size_t m = 0; /* the calls of the messages that are well formed, in order */
    for (size_t k = 0; k < n; k++) {
        prc[k] = gsend_prepare(chl, &msgs[k], &g[k]);
        if (prc[k] == 0)
            calls[m++] = gsend_call(&g[k]);
    }
    if (chl->ring.nshards == 1) {
        gsend_batch(chl, g, prc, n, &drop);
    } else {
        for (size_t k = 0, j = 0; k < n; k++) {
            if (prc[k] != 0)
                continue;
            redisReply *reply;
            int rc = chl__sync_scripts(chl, g[k].shard, CHL__S_GSEND, &calls[j++], 1, &reply);
            prc[k] = gsend_finish(chl, &g[k], reply, rc, &drop);
        }
    }
    for (size_t k = 0; k < n; k++) {
        free(g[k].frame);
        if (prc[k] != 0 && !first_err)
            first_err = prc[k];
    }
    if (!alone)
        free(g), free(calls), free(prc);
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
        redisReply *r = chl__sync_script(chl, sh, CHL__S_FORGET, 1, kv, 2, args, NULL, &rc);
        if (!r)
            first_err = first_err ? first_err : rc;
        freeReplyObject(r);
    }
    return first_err;
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
        redisReply *r = chl__sync_script(chl, sh, CHL__S_REAP, 1, kv, 1, args, NULL, &rc);
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
