#include "tests/support/sentinel.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "tests/support/loop.h"

/* One command on 127.0.0.1:port with a fresh connection; NULL on error. */
static redisReply *ask(int port, const char *fmt, ...)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

/* The value of key in a reply that lists keys and values, or NULL. */
static const char *field(const redisReply *r, const char *key)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, key) == 0 &&
            r->element[i + 1]->type == REDIS_REPLY_STRING)
            return r->element[i + 1]->str;
    return NULL;
}

/* ROLE's first word on port, into role ("" when it does not answer);
 * for a replica, whether its link to the master is up. */
static void role(int port, char *out, size_t size, int *linked)
{
    redisReply *r = ask(port, "ROLE");
    out[0] = '\0';
    *linked = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(out, size, "%s", r->element[0]->str);
        *linked = r->elements > 3 && r->element[3]->type == REDIS_REPLY_STRING &&
                  strcmp(r->element[3]->str, "connected") == 0;
    }
    freeReplyObject(r);
}

/* Whether every sentinel sees the replica and the other sentinels of set i
 * and every replica is in sync. */
static int ready(const ts_sentinels_t *s, size_t i)
{
    char r[16];
    int linked;
    role(s->set[i].node[1].port, r, sizeof(r), &linked);
    if (strcmp(r, "slave") != 0 || !linked)
        return 0;
    for (size_t k = 0; k < TS_SENTINELS; k++) {
        redisReply *m = ask(s->sentinel[k].port, "SENTINEL MASTER %s", s->set[i].name);
        const char *slaves = field(m, "num-slaves"), *others = field(m, "num-other-sentinels");
        int ok = slaves && others && atoi(slaves) == 1 && atoi(others) == TS_SENTINELS - 1;
        freeReplyObject(m);
        if (!ok)
            return 0;
    }
    return 1;
}

static int watch(const ts_sentinels_t *s, size_t k, size_t i)
{
    redisReply *r = ask(s->sentinel[k].port, "SENTINEL MONITOR %s 127.0.0.1 %d 2", s->set[i].name,
                        s->set[i].node[0].port);
    int ok = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    r = ask(s->sentinel[k].port,
            "SENTINEL SET %s down-after-milliseconds 1000 failover-timeout 2000 parallel-syncs 1",
            s->set[i].name);
    ok = ok && r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return ok ? 0 : -1;
}

int ts_sentinels_start(ts_sentinels_t *s, size_t nsets)
{
    memset(s, 0, sizeof(*s));
    if (nsets < 1 || nsets > TS_SENTINEL_SETS_MAX)
        return -1;
    s->nsets = nsets;
    int rc = 0;
    for (size_t i = 0; i < nsets && rc == 0; i++) {
        snprintf(s->set[i].name, sizeof(s->set[i].name), "mc-%d", (int)i);
        rc = ts_redis_start(&s->set[i].node[0]);
        if (rc == 0)
            rc = ts_redis_start_replica(&s->set[i].node[1], s->set[i].node[0].port);
    }
    for (size_t k = 0; k < TS_SENTINELS && rc == 0; k++) {
        rc = ts_redis_start_sentinel(&s->sentinel[k]);
        for (size_t i = 0; i < nsets && rc == 0; i++)
            rc = watch(s, k, i);
    }
    /* sentinels find each other through the master every 2 s */
    int64_t deadline = mc_mono_ms() + 20000;
    for (size_t i = 0; i < nsets && rc == 0; i++) {
        while (!ready(s, i) && mc_mono_ms() < deadline)
            ts_pause_ms(50);
        rc = ready(s, i) ? 0 : -1;
    }
    if (rc != 0) {
        ts_sentinels_stop(s);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < nsets; i++) {
        n += (size_t)snprintf(s->url + n, sizeof(s->url) - n, "%sredis+sentinel://", i ? "," : "");
        for (size_t k = 0; k < TS_SENTINELS; k++)
            n += (size_t)snprintf(s->url + n, sizeof(s->url) - n, "%s127.0.0.1:%d", k ? "," : "",
                                  s->sentinel[k].port);
        n += (size_t)snprintf(s->url + n, sizeof(s->url) - n, "/%s", s->set[i].name);
    }
    return 0;
}

void ts_sentinels_stop(ts_sentinels_t *s)
{
    for (size_t k = 0; k < TS_SENTINELS; k++)
        ts_redis_stop(&s->sentinel[k]);
    for (size_t i = 0; i < TS_SENTINEL_SETS_MAX; i++)
        for (int j = 0; j < 2; j++)
            ts_redis_stop(&s->set[i].node[j]);
}

/* The node of set i on port, or NULL. */
static ts_redis_t *node_at(ts_sentinels_t *s, size_t i, int port)
{
    for (int j = 0; j < 2; j++)
        if (s->set[i].node[j].port == port)
            return &s->set[i].node[j];
    return NULL;
}

ts_redis_t *ts_sentinels_master(ts_sentinels_t *s, size_t set, const ts_redis_t *other,
                                long timeout_ms)
{
    int64_t deadline = mc_mono_ms() + timeout_ms;
    for (;;) {
        int port = 0;
        for (size_t k = 0; k < TS_SENTINELS && port >= 0; k++) {
            redisReply *r =
                ask(s->sentinel[k].port, "SENTINEL get-master-addr-by-name %s", s->set[set].name);
            if (!r)
                continue; /* a sentinel that is down has no say */
            int p = (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                     r->element[1]->type == REDIS_REPLY_STRING)
                        ? atoi(r->element[1]->str)
                        : -1;
            freeReplyObject(r);
            port = (port == 0 || port == p) ? p : -1; /* -1: they disagree */
        }
        ts_redis_t *n = port > 0 ? node_at(s, set, port) : NULL;
        char r[16];
        int linked;
        if (n && n != other) {
            role(n->port, r, sizeof(r), &linked);
            if (strcmp(r, "master") == 0)
                return n;
        }
        if (mc_mono_ms() > deadline)
            return NULL;
        ts_pause_ms(50);
    }
}

int ts_sentinels_failover(ts_sentinels_t *s, size_t set)
{
    for (size_t i = 0; i < TS_SENTINELS; i++) {
        redisReply *r = ask(s->sentinel[i].port, "SENTINEL FAILOVER %s", s->set[set].name);
        if (!r)
            continue; /* that sentinel is down */
        int ok = r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        return ok ? 0 : -1;
    }
    return -1;
}

int ts_sentinels_subscribers(const ts_sentinels_t *s, size_t i)
{
    redisReply *r = ask(s->sentinel[i].port, "CLIENT LIST");
    if (!r || r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return -1;
    }
    int n = 0;
    for (const char *at = r->str; (at = strstr(at, " sub=")) != NULL; at += 5)
        n += at[5] != '0';
    freeReplyObject(r);
    return n;
}

int ts_sentinels_is_master(const ts_redis_t *node)
{
    char r[16];
    int linked;
    role(node->port, r, sizeof(r), &linked);
    return strcmp(r, "master") == 0;
}
