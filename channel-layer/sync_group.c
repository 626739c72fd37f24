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
    rc = chl__sync_push_frame(chl, chl__ring_channel(&chl->ring, channel), plist,
                              add ? chl->cfg.process_capacity : -1, add ? CHL__ADD : CHL__DISCARD,
                              0, group, channel, strlen(channel));
    if (rc != 0)
        return rc;
    char ex[24];
    snprintf(ex, sizeof(ex), "%ld", chl->cfg.group_expiry_s);
    const char *kv[3] = {keys[0], keys[1], keys[2]};
    const char *args[4] = {channel, process, group, ex};
    redisReply *r =
        chl__sync_script(chl, chl__ring_name(&chl->ring, group, strlen(group)),
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
    char capb[24], ttlb[24], maxb[24];
    snprintf(capb, sizeof(capb), "%ld", chl->cfg.process_capacity);
    snprintf(ttlb, sizeof(ttlb), "%ld", chl->cfg.expiry_ms);
    snprintf(maxb, sizeof(maxb), "%ld", chl->cfg.process_bytes);
    const char *args[7] = {capb, ttlb, frame, once, once_ttl, maxb, chl->cfg.prefix};
    size_t lens[7] = {strlen(capb), strlen(ttlb),           flen, strlen(once), strlen(once_ttl),
                      strlen(maxb), strlen(chl->cfg.prefix)};
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
        redisReply *r = chl__sync_script(chl, sh, CHL__S_MPUSH, nk, kv, 7, args, lens, &src);
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
    char ex[24], capb[24], ttlb[24], once_ttl[24], maxb[24];
    const char *kv[2];
    const char *args[10];
    size_t lens[10];
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
    snprintf(g->maxb, sizeof(g->maxb), "%ld", chl->cfg.process_bytes);
    /* With one shard the script pushes the copies itself: one round trip. */
    int here = chl->ring.nshards == 1;
    const char *args[10] = {g->ex,    chl->cfg.prefix, here ? "1" : "0", g->capb,     g->ttlb,
                            g->frame, m->group,        g->once,          g->once_ttl, g->maxb};
    memcpy(g->args, args, sizeof(args));
    for (int k = 0; k < 10; k++)
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

static chl__script_call_t gsend_call(const gsend_t *g)
{
    return (chl__script_call_t){2, 10, g->kv, g->args, g->lens};
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
    chl__script_call_t *calls = malloc((n ? n : 1) * sizeof(*calls));
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
        int rc = chl__sync_scripts(chl, 0, CHL__S_GSEND, calls, m, r);
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
            int rc = chl__sync_scripts(chl, g[k].shard, CHL__S_GSEND, &calls[j++], 1, &reply);
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
