/* channel-layer/local.c: the local group table (see local.h): two chained hash
 * tables that point at each other. */
#include "channel-layer/local.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

typedef struct lgroup {
    struct lgroup *next; /* in its bucket */
    uint64_t *conns;
    size_t n, cap;
    size_t len;
    char name[]; /* NUL-terminated */
} lgroup_t;

/* A connection and its groups, in one allocation: every socket of an
 * interface has one (a user's and a session's group, the room list, and
 * its rooms), so it grows, by realloc, only past LOCAL_CONN_GROUPS. */
typedef struct lconn {
    struct lconn *next;
    uint64_t id;
    uint32_t n, cap;
    lgroup_t *groups[];
} lconn_t;

#define LOCAL_CONN_GROUPS 4

struct chl__local {
    lgroup_t **gb; /* buckets, a power of two */
    size_t gnb, gcount;
    lconn_t **cb;
    size_t cnb, ccount;
};

#define LOCAL_MIN_BUCKETS 16

static size_t hash_name(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 32));
}

static size_t hash_conn(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdull;
    id ^= id >> 33;
    return (size_t)id;
}

chl__local_t *chl__local_new(void)
{
    chl__local_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->gb = calloc(LOCAL_MIN_BUCKETS, sizeof(*t->gb));
    t->cb = calloc(LOCAL_MIN_BUCKETS, sizeof(*t->cb));
    if (!t->gb || !t->cb) {
        chl__local_free(t);
        return NULL;
    }
    t->gnb = t->cnb = LOCAL_MIN_BUCKETS;
    return t;
}

void chl__local_free(chl__local_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->gb && i < t->gnb; i++)
        for (lgroup_t *g = t->gb[i], *next; g; g = next) {
            next = g->next;
            free(g->conns);
            free(g);
        }
    for (size_t i = 0; t->cb && i < t->cnb; i++)
        for (lconn_t *c = t->cb[i], *next; c; c = next) {
            next = c->next;
            free(c);
        }
    free(t->gb);
    free(t->cb);
    free(t);
}

static lgroup_t **group_slot(const chl__local_t *t, const char *name, size_t len)
{
    lgroup_t **slot = &t->gb[hash_name(name, len) & (t->gnb - 1)];
    while (*slot && !((*slot)->len == len && memcmp((*slot)->name, name, len) == 0))
        slot = &(*slot)->next;
    return slot;
}

static lconn_t **conn_slot(const chl__local_t *t, uint64_t id)
{
    lconn_t **slot = &t->cb[hash_conn(id) & (t->cnb - 1)];
    while (*slot && (*slot)->id != id)
        slot = &(*slot)->next;
    return slot;
}

/* Doubles the buckets when the tables get crowded; a failure only leaves
 * them slower. */
static void grow(chl__local_t *t)
{
    if (t->gcount > t->gnb) {
        lgroup_t **nb = calloc(t->gnb * 2, sizeof(*nb));
        if (nb) {
            for (size_t i = 0; i < t->gnb; i++)
                for (lgroup_t *g = t->gb[i], *next; g; g = next) {
                    next = g->next;
                    size_t b = hash_name(g->name, g->len) & (t->gnb * 2 - 1);
                    g->next = nb[b];
                    nb[b] = g;
                }
            free(t->gb);
            t->gb = nb;
            t->gnb *= 2;
        }
    }
    if (t->ccount > t->cnb) {
        lconn_t **nb = calloc(t->cnb * 2, sizeof(*nb));
        if (nb) {
            for (size_t i = 0; i < t->cnb; i++)
                for (lconn_t *c = t->cb[i], *next; c; c = next) {
                    next = c->next;
                    size_t b = hash_conn(c->id) & (t->cnb * 2 - 1);
                    c->next = nb[b];
                    nb[b] = c;
                }
            free(t->cb);
            t->cb = nb;
            t->cnb *= 2;
        }
    }
}

static int reserve(void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    if (ncap > SIZE_MAX / size)
        return MC_ENOMEM;
    void *p = realloc(*items, ncap * size);
    if (!p)
        return MC_ENOMEM;
    *items = p;
    *cap = ncap;
    return 0;
}

int chl__local_add(chl__local_t *t, const char *group, size_t len, uint64_t conn)
{
    lgroup_t **gs = group_slot(t, group, len);
    lconn_t **cs = conn_slot(t, conn);
    lgroup_t *g = *gs;
    lconn_t *c = *cs;
    if (g && c)
        for (size_t i = 0; i < c->n; i++)
            if (c->groups[i] == g)
                return 0;
    int new_g = !g, new_c = !c;
    if (new_g) {
        g = calloc(1, sizeof(*g) + len + 1);
        if (!g)
            return MC_ENOMEM;
        memcpy(g->name, group, len);
        g->len = len;
    }
    if (new_c) {
        c = calloc(1, sizeof(*c) + LOCAL_CONN_GROUPS * sizeof(*c->groups));
        if (!c) {
            if (new_g)
                free(g);
            return MC_ENOMEM;
        }
        c->id = conn;
        c->cap = LOCAL_CONN_GROUPS;
    } else if (c->n == c->cap) {
        /* c moves: the bucket's link to it follows (cs points at it) */
        lconn_t *moved = c->cap < UINT32_MAX / 2
                             ? realloc(c, sizeof(*c) + 2 * (size_t)c->cap * sizeof(*c->groups))
                             : NULL;
        if (!moved) {
            if (new_g)
                free(g);
            return MC_ENOMEM;
        }
        c = *cs = moved;
        c->cap *= 2;
    }
    if (reserve((void **)&g->conns, &g->cap, g->n, sizeof(*g->conns)) != 0) {
        if (new_g)
            free(g);
        if (new_c)
            free(c);
        return MC_ENOMEM;
    }
    g->conns[g->n++] = conn;
    c->groups[c->n++] = g;
    if (new_g) {
        *gs = g;
        t->gcount++;
    }
    if (new_c) {
        *cs = c;
        t->ccount++;
    }
    grow(t);
    return 1;
}

/* Unlinks conn c from group g, freeing either when it becomes empty. */
static void unlink_pair(chl__local_t *t, lgroup_t *g, lconn_t *c)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->conns[i] == c->id) {
            g->conns[i] = g->conns[--g->n];
            break;
        }
    for (size_t i = 0; i < c->n; i++)
        if (c->groups[i] == g) {
            c->groups[i] = c->groups[--c->n];
            break;
        }
    if (g->n == 0) {
        lgroup_t **gs = group_slot(t, g->name, g->len);
        *gs = g->next;
        t->gcount--;
        free(g->conns);
        free(g);
    }
    if (c->n == 0) {
        lconn_t **cs = conn_slot(t, c->id);
        *cs = c->next;
        t->ccount--;
        free(c);
    }
}

int chl__local_remove(chl__local_t *t, const char *group, size_t len, uint64_t conn)
{
    lgroup_t *g = *group_slot(t, group, len);
    lconn_t *c = *conn_slot(t, conn);
    if (!g || !c)
        return 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->groups[i] == g) {
            unlink_pair(t, g, c);
            return 1;
        }
    return 0;
}

size_t chl__local_members(const chl__local_t *t, const char *group, size_t len,
                          const uint64_t **conns)
{
    const lgroup_t *g = *group_slot(t, group, len);
    *conns = g ? g->conns : NULL;
    return g ? g->n : 0;
}

void chl__local_each_group(const chl__local_t *t, uint64_t conn,
                           void (*fn)(void *arg, const char *group), void *arg)
{
    const lconn_t *c = *conn_slot(t, conn);
    for (size_t i = 0; c && i < c->n; i++)
        fn(arg, c->groups[i]->name);
}

void chl__local_forget(chl__local_t *t, uint64_t conn)
{
    lconn_t *c;
    while ((c = *conn_slot(t, conn)) != NULL) /* the last unlink frees c */
        unlink_pair(t, c->groups[c->n - 1], c);
}

void chl__local_each(const chl__local_t *t,
                     void (*fn)(void *arg, const char *group, const uint64_t *conns, size_t n),
                     void *arg)
{
    for (size_t i = 0; i < t->gnb; i++)
        for (const lgroup_t *g = t->gb[i]; g; g = g->next)
            if (g->n)
                fn(arg, g->name, g->conns, g->n);
}
