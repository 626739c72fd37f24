/*
 * common/table.h: a chained hash table of entries that carry their own
 * link, for the lookups a process makes per connection or per address.
 *
 * The table owns only its slots: entries are the caller's, linked in by a
 * mc_table_link_t inside them (MC_TABLE_ENTRY finds the entry again), so a
 * lookup costs no allocation and an entry needs one pointer. The caller
 * hashes its key; the table spreads the hash over its slots, whose number
 * doubles once there are as many entries as slots. A lookup walks the
 * chain of its key's hash and compares keys itself:
 *
 *     for (mc_table_link_t **at = mc_table_chain(&t, hash); *at; at = &(*at)->next)
 *         if (key_of(MC_TABLE_ENTRY(*at, entry_t, link)) == key) ...
 *
 * The address of a link (at) is what mc_table_unlink removes, and where an
 * entry that moved (realloc) is linked again (*at = &moved->link).
 */
#ifndef MC_COMMON_TABLE_H
#define MC_COMMON_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct mc_table_link {
    struct mc_table_link *next;
} mc_table_link_t;

/* The entry of type that holds link as its member. */
#define MC_TABLE_ENTRY(link, type, member) ((type *)(void *)((char *)(link)-offsetof(type, member)))

/* The hash of an entry's key, asked again when the slots double. */
typedef uint64_t (*mc_table_hash_fn)(const mc_table_link_t *entry);

/* Callers may read slots, nslots and count (to visit every entry, slot by
 * slot); the rest is private. A zeroed table is not ready: use init. */
typedef struct mc_table {
    mc_table_link_t **slots; /* nslots chains; NULL before the first add */
    size_t nslots, count;
    mc_table_hash_fn hash;
    mc_table_link_t *none; /* the empty chain of a table with no slots */
} mc_table_t;

void mc_table_init(mc_table_t *t, mc_table_hash_fn hash);
/* Frees the slots; the entries are the caller's to free first. */
void mc_table_clear(mc_table_t *t);

/* The address of the first link of hash's chain (of an empty chain when
 * the table has no slots yet). */
mc_table_link_t **mc_table_chain(const mc_table_t *t, uint64_t hash);

/* Links entry in under hash (the caller checked it is not there). Returns
 * 0, or MC_ENOMEM when the table has no slots and cannot get them; when
 * the slots cannot double, the chains only get longer. */
int mc_table_add(mc_table_t *t, mc_table_link_t *entry, uint64_t hash);

/* Takes the entry *at out of its chain. */
void mc_table_unlink(mc_table_t *t, mc_table_link_t **at);

/* Takes entry, linked under hash, out of the table: returns 1, or 0 when
 * it is not there. */
int mc_table_remove(mc_table_t *t, mc_table_link_t *entry, uint64_t hash);

/* FNV-1a of len bytes: a hash for keys that are strings or addresses. */
uint64_t mc_table_hash_bytes(const void *data, size_t len);

#endif
