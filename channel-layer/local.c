/* channel-layer/local.c: the local group table (see local.h): two hash
 * tables, of groups and of connections, whose entries point at each
 * other. */
#include "channel-layer/local.h"
#include "common/error.h"
#include "common/table.h"

#include <stdlib.h>
#include <string.h>

typedef struct lgroup {
    mc_table_link_t in_table;
    uint64_t *conns;
    size_t n, cap;
    uint64_t last_seq; /* of the last message handed to the members */
    size_t len;
    char name[]; /* NUL-terminated */
} lgroup_t;

/* A connection and its groups, in one allocation: every socket of an
 * interface has one (a user's and a session's group, the room list, and
 * its rooms), so it grows, by realloc, only past LOCAL_CONN_GROUPS. */
typedef struct lconn {
    mc_table_link_t in_table;
    uint64_t id;
    uint32_t n, cap;
    lgroup_t *groups[];
} lconn_t;

#define LOCAL_CONN_GROUPS 4

struct chl__local {
    mc_table_t groups; /* by name */
    mc_table_t conns;  /* by id */
};

#define GROUP(link) MC_TABLE_ENTRY(link, lgroup_t, in_table)
#define CONN(link) MC_TABLE_ENTRY(link, lconn_t, in_table)

static uint64_t group_hash(const mc_table_link_t *link)
{
    return mc_table_hash_bytes(GROUP(link)->name, GROUP(link)->len);
}

static uint64_t conn_hash(const mc_table_link_t *link)
{
    return CONN(link)->id;
}

chl__local_t *chl__local_new(void)
{
    chl__local_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    mc_table_init(&t->groups, group_hash);
    mc_table_init(&t->conns, conn_hash);
    return t;
}

void chl__local_free(chl__local_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->groups.nslots; i++)
        for (mc_table_link_t *l = t->groups.slots[i], *next; l; l = next) {
            next = l->next;
            free(GROUP(l)->conns);
            free(GROUP(l));
        }
    for (size_t i = 0; i < t->conns.nslots; i++)
        for (mc_table_link_t *l = t->conns.slots[i], *next; l; l = next) {
            next = l->next;
            free(CONN(l));
        }
    mc_table_clear(&t->groups);
    mc_table_clear(&t->conns);
    free(t);
}

/* The link to group name (to NULL when there is none). */
static mc_table_link_t **group_slot(const chl__local_t *t, const char *name, size_t len)
{
    mc_table_link_t **at = mc_table_chain(&t->groups, mc_table_hash_bytes(name, len));
    while (*at && !(GROUP(*at)->len == len && memcmp(GROUP(*at)->name, name, len) == 0))
        at = &(*at)->next;
    return at;
}

static mc_table_link_t **conn_slot(const chl__local_t *t, uint64_t id)
{
    mc_table_link_t **at = mc_table_chain(&t->conns, id);
    while (*at && CONN(*at)->id != id)
        at = &(*at)->next;
    return at;
}

static lgroup_t *group_of(const chl__local_t *t, const char *name, size_t len)
{
    mc_table_link_t *l = *group_slot(t, name, len);
    return l ? GROUP(l) : NULL;
}

static lconn_t *conn_of(const chl__local_t *t, uint64_t id)
{
    mc_table_link_t *l = *conn_slot(t, id);
    return l ? CONN(l) : NULL;
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

int chl__local_add(chl__local_t *t, const char *group, size_t len, uint64_t conn, uint64_t seq)
{
    mc_table_link_t **cs = conn_slot(t, conn);
    lgroup_t *g = group_of(t, group, len);
    lconn_t *c = *cs ? CONN(*cs) : NULL;
    if (g && seq > g->last_seq)
        g->last_seq = seq;
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
        g->last_seq = seq;
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
        /* c moves: the link to it follows (cs points at it) */
        lconn_t *moved = c->cap < UINT32_MAX / 2
                             ? realloc(c, sizeof(*c) + 2 * (size_t)c->cap * sizeof(*c->groups))
                             : NULL;
        if (!moved) {
            if (new_g)
                free(g);
            return MC_ENOMEM;
        }
        c = moved;
        *cs = &c->in_table;
        c->cap *= 2;
    }
    int rc = reserve((void **)&g->conns, &g->cap, g->n, sizeof(*g->conns));
    if (rc == 0 && new_g)
        rc = mc_table_add(&t->groups, &g->in_table, group_hash(&g->in_table));
    if (rc == 0 && new_c && mc_table_add(&t->conns, &c->in_table, conn) != 0) {
        if (new_g)
            mc_table_remove(&t->groups, &g->in_table, group_hash(&g->in_table));
        rc = MC_ENOMEM;
    }
    if (rc != 0) {
        if (new_g) {
            free(g->conns);
            free(g);
        }
        if (new_c)
            free(c);
        return MC_ENOMEM;
    }
    g->conns[g->n++] = conn;
    c->groups[c->n++] = g;
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
        mc_table_unlink(&t->groups, group_slot(t, g->name, g->len));
        free(g->conns);
        free(g);
    }
    if (c->n == 0) {
        mc_table_unlink(&t->conns, conn_slot(t, c->id));
        free(c);
    }
}

int chl__local_remove(chl__local_t *t, const char *group, size_t len, uint64_t conn)
{
    lgroup_t *g = group_of(t, group, len);
    lconn_t *c = conn_of(t, conn);
    if (!g || !c)
        return 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->groups[i] == g) {
            unlink_pair(t, g, c);
            return 1;
        }
    return 0;
}

size_t chl__local_members_for(chl__local_t *t, const char *group, size_t len, uint64_t seq,
                              const uint64_t **conns, int *had)
{
    lgroup_t *g = group_of(t, group, len);
    *had = g && seq && seq <= g->last_seq;
    if (!g || *had) {
        *conns = NULL;
        return 0;
    }
    if (seq)
        g->last_seq = seq;
    *conns = g->conns;
    return g->n;
}

void chl__local_each_group(const chl__local_t *t, uint64_t conn,
                           void (*fn)(void *arg, const char *group), void *arg)
{
    const lconn_t *c = conn_of(t, conn);
    for (size_t i = 0; c && i < c->n; i++)
        fn(arg, c->groups[i]->name);
}

void chl__local_forget(chl__local_t *t, uint64_t conn)
{
    lconn_t *c;
    while ((c = conn_of(t, conn)) != NULL) /* the last unlink frees c */
        unlink_pair(t, c->groups[c->n - 1], c);
}

void chl__local_each(const chl__local_t *t,
                     void (*fn)(void *arg, const char *group, const uint64_t *conns, size_t n),
                     void *arg)
{
    for (size_t i = 0; i < t->groups.nslots; i++)
        for (const mc_table_link_t *l = t->groups.slots[i]; l; l = l->next)
            if (GROUP(l)->n)
                fn(arg, GROUP(l)->name, GROUP(l)->conns, GROUP(l)->n);
}
