/*
 * interface/limit.c: token buckets and the table of client addresses (see
 * limit.h).
 */
#include "interface/limit.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* ---- Buckets ------------------------------------------------------------------- */

/* Brings used up to date. Only the time that bought whole tokens is
 * spent, so that frequent takes at a slow rate still regain tokens. */
static void refill(ifc_bucket_t *b, uint32_t now, uint32_t rate)
{
    if (b->used == 0) {
        b->at = now;
        return;
    }
    uint64_t gained = (uint64_t)(uint32_t)(now - b->at) * rate / 1000;
    if (gained >= b->used) {
        b->used = 0;
        b->at = now;
    } else {
        b->used -= (uint32_t)gained;
        b->at += (uint32_t)(gained * 1000 / rate);
    }
}

int ifc_bucket_take(ifc_bucket_t *b, uint32_t now, uint32_t rate, uint32_t burst, uint32_t cost)
{
    if (rate == 0)
        return 1;
    refill(b, now, rate);
    if ((uint64_t)b->used + cost > burst)
        return 0;
    b->used += cost;
    return 1;
}

void ifc_bucket_charge(ifc_bucket_t *b, uint32_t now, uint32_t rate, uint32_t cap, uint32_t cost)
{
    if (rate == 0)
        return;
    refill(b, now, rate);
    uint64_t used = (uint64_t)b->used + cost;
    if (used > cap)
        used = cap > b->used ? cap : b->used;
    b->used = (uint32_t)used;
}

int ifc_bucket_full(const ifc_bucket_t *b, uint32_t now, uint32_t rate)
{
    return b->used == 0 || rate == 0 || (uint64_t)(uint32_t)(now - b->at) * rate / 1000 >= b->used;
}

/* ---- The table of addresses ----------------------------------------------------- */

static uint64_t addr_hash_key(const ifc_ip_t *key)
{
    return mc_table_hash_bytes(key->bytes, sizeof(key->bytes)) ^ key->family;
}

static uint64_t addr_hash(const mc_table_link_t *link)
{
    return addr_hash_key(&MC_TABLE_ENTRY(link, ifc_addr_t, in_table)->key);
}

void ifc_addrs_init(ifc_addrs_t *t, uint32_t max_open, uint32_t rate, uint32_t burst,
                    uint32_t penalty_ms)
{
    memset(t, 0, sizeof(*t));
    mc_table_init(&t->table, addr_hash);
    t->max_open = max_open;
    t->rate = rate;
    t->burst = burst;
    t->penalty_ms = penalty_ms;
}

void ifc_addrs_clear(ifc_addrs_t *t)
{
    for (size_t i = 0; i < t->table.nslots; i++) {
        for (mc_table_link_t *l = t->table.slots[i], *next; l; l = next) {
            next = l->next;
            free(MC_TABLE_ENTRY(l, ifc_addr_t, in_table));
        }
    }
    mc_table_clear(&t->table);
}

/* The entry of key, made when there is none. */
static ifc_addr_t *find_or_add(ifc_addrs_t *t, const ifc_ip_t *key)
{
    uint64_t hash = addr_hash_key(key);
    for (mc_table_link_t **at = mc_table_chain(&t->table, hash); *at; at = &(*at)->next) {
        ifc_addr_t *a = MC_TABLE_ENTRY(*at, ifc_addr_t, in_table);
        if (ifc_ip_equal(&a->key, key))
            return a;
    }
    ifc_addr_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->key = *key;
    if (mc_table_add(&t->table, &a->in_table, hash) != 0) {
        free(a);
        return NULL;
    }
    return a;
}

int ifc_addrs_admit(ifc_addrs_t *t, const ifc_ip_t *ip, uint32_t now, int hold, ifc_addr_t **held,
                    uint32_t *in_row)
{
    *held = NULL;
    *in_row = 0;
    if (t->max_open == 0 && t->rate == 0)
        return 0;
    ifc_ip_t key;
    ifc_ip_limit_key(ip, &key);
    ifc_addr_t *a = find_or_add(t, &key);
    if (!a)
        return MC_ENOMEM;
    int rc = 0;
    if (hold && t->max_open && a->open >= t->max_open)
        rc = IFC_ADDR_TOO_MANY_OPEN;
    else if (!ifc_bucket_take(&a->opened, now, t->rate, t->burst, 1))
        rc = IFC_ADDR_TOO_FAST;
    if (rc) {
        *in_row = ++a->refused;
        return rc;
    }
    a->refused = 0;
    if (hold) {
        a->open++;
        *held = a;
    }
    return 0;
}

void ifc_addrs_release(ifc_addrs_t *t, ifc_addr_t *a)
{
    (void)t;
    if (a && a->open > 0)
        a->open--;
}

void ifc_addrs_penalize(ifc_addrs_t *t, ifc_addr_t *a, uint32_t now)
{
    if (!a || t->penalty_ms == 0)
        return;
    a->penalized = 1;
    a->penalty_at = now;
}

int ifc_addrs_penalized(const ifc_addrs_t *t, const ifc_addr_t *a, uint32_t now)
{
    return a && a->penalized && (uint32_t)(now - a->penalty_at) < t->penalty_ms;
}

void ifc_addrs_sweep(ifc_addrs_t *t, uint32_t now)
{
    for (size_t i = 0; i < t->table.nslots; i++) {
        for (mc_table_link_t **at = &t->table.slots[i]; *at;) {
            ifc_addr_t *a = MC_TABLE_ENTRY(*at, ifc_addr_t, in_table);
            if (a->open == 0 && ifc_bucket_full(&a->opened, now, t->rate) &&
                !ifc_addrs_penalized(t, a, now)) {
                mc_table_unlink(&t->table, at);
                free(a);
            } else {
                at = &(*at)->next;
            }
        }
    }
}

size_t ifc_addrs_count(const ifc_addrs_t *t)
{
    return t->table.count;
}
