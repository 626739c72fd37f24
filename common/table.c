/*
 * common/table.c: the chained hash table of entries that carry their own
 * link (see table.h).
 */
#include "common/table.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

#define TABLE_MIN_SLOTS 16

void mc_table_init(mc_table_t *t, mc_table_hash_fn hash)
{
    memset(t, 0, sizeof(*t));
    t->hash = hash;
}

void mc_table_clear(mc_table_t *t)
{
    free(t->slots);
    t->slots = NULL;
    t->nslots = t->count = 0;
}

/* Fibonacci hashing: the product's top bits, so that keys that differ
 * only in their high bits (or only in their low ones) still spread. */
static size_t slot_of(size_t nslots, uint64_t hash)
{
    uint64_t mixed = hash * 0x9E3779B97F4A7C15ull;
    return (size_t)(mixed ^ (mixed >> 32)) & (nslots - 1);
}

mc_table_link_t **mc_table_chain(const mc_table_t *t, uint64_t hash)
{
    if (t->nslots == 0)
        return (mc_table_link_t **)&t->none;
    return &t->slots[slot_of(t->nslots, hash)];
}

/* Moves every entry into twice the slots; leaves the table as it was when
 * they cannot be had. */
static int grow(mc_table_t *t)
{
    size_t n = t->nslots ? 2 * t->nslots : TABLE_MIN_SLOTS;
    if (n > SIZE_MAX / sizeof(*t->slots))
        return MC_ENOMEM;
    mc_table_link_t **slots = calloc(n, sizeof(*slots));
    if (!slots)
        return MC_ENOMEM;
    for (size_t i = 0; i < t->nslots; i++) {
        for (mc_table_link_t *e = t->slots[i], *next; e; e = next) {
            next = e->next;
            mc_table_link_t **at = &slots[slot_of(n, t->hash(e))];
            e->next = *at;
            *at = e;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
    return 0;
}

int mc_table_add(mc_table_t *t, mc_table_link_t *entry, uint64_t hash)
{
    if (t->count >= t->nslots && grow(t) != 0 && t->nslots == 0)
        return MC_ENOMEM;
    mc_table_link_t **at = &t->slots[slot_of(t->nslots, hash)];
    entry->next = *at;
    *at = entry;
    t->count++;
    return 0;
}

void mc_table_unlink(mc_table_t *t, mc_table_link_t **at)
{
    *at = (*at)->next;
    t->count--;
}

int mc_table_remove(mc_table_t *t, mc_table_link_t *entry, uint64_t hash)
{
    for (mc_table_link_t **at = mc_table_chain(t, hash); *at; at = &(*at)->next) {
        if (*at == entry) {
            mc_table_unlink(t, at);
            return 1;
        }
    }
    return 0;
}

uint64_t mc_table_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}
