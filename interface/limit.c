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

void ifc_addrs_init(ifc_addrs_t *t, uint32_t max_open, uint32_t rate, uint32_t burst,
                    uint32_t penalty_ms)
{
    memset(t, 0, sizeof(*t));
    t->max_open = max_open;
    t->rate = rate;
    t->burst = burst;
    t->penalty_ms = penalty_ms;
}

void ifc_addrs_clear(ifc_addrs_t *t)
{
    for (size_t i = 0; i < t->nslots; i++) {
        for (ifc_addr_t *a = t->slots[i], *n; a; a = n) {
            n = a->next;
            free(a);
        }
    }
    free(t->slots);
    t->slots = NULL;
    t->nslots = t->count = 0;
}

static size_t slot_of(const ifc_addrs_t *t, const ifc_ip_t *key)
{
    uint64_t h = 1469598103934665603ull ^ key->family; /* FNV-1a */
    for (size_t i = 0; i < sizeof(key->bytes); i++)
        h = (h ^ key->bytes[i]) * 1099511628211ull;
    return (size_t)(h ^ (h >> 32)) & (t->nslots - 1);
}

static int grow(ifc_addrs_t *t)
{
    size_t n = t->nslots ? 2 * t->nslots : 64;
    ifc_addr_t **slots = calloc(n, sizeof(*slots));
    if (!slots)
        return MC_ENOMEM;
    ifc_addr_t **old = t->slots;
    size_t old_n = t->nslots;
    t->slots = slots;
    t->nslots = n;
    for (size_t i = 0; i < old_n; i++) {
        for (ifc_addr_t *a = old[i], *next; a; a = next) {
            next = a->next;
            size_t s = slot_of(t, &a->key);
            a->next = slots[s];
            slots[s] = a;
        }
    }
    free(old);
    return 0;
}

/* The entry of key, made when there is none. */
static ifc_addr_t *find_or_add(ifc_addrs_t *t, const ifc_ip_t *key)
{
    if (t->nslots) {
        for (ifc_addr_t *a = t->slots[slot_of(t, key)]; a; a = a->next)
            if (ifc_ip_equal(&a->key, key))
                return a;
    }
    if (t->count >= t->nslots && grow(t) != 0)
        return NULL;
    ifc_addr_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->key = *key;
    size_t s = slot_of(t, key);
    a->next = t->slots[s];
    t->slots[s] = a;
    t->count++;
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
    for (size_t i = 0; i < t->nslots; i++) {
        for (ifc_addr_t **p = &t->slots[i]; *p;) {
            ifc_addr_t *a = *p;
            if (a->open == 0 && ifc_bucket_full(&a->opened, now, t->rate) &&
                !ifc_addrs_penalized(t, a, now)) {
                *p = a->next;
                free(a);
                t->count--;
            } else {
                p = &a->next;
            }
        }
    }
}

size_t ifc_addrs_count(const ifc_addrs_t *t)
{
    return t->count;
}
