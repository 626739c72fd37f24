/* Tests of common/table.c: entries found by key through growth, removal
 * while walking, entries that move, and keys whose hashes all collide. */
#include "common/table.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

typedef struct item {
    int key;
    mc_table_link_t link;
} item_t;

static uint64_t item_hash(const mc_table_link_t *l)
{
    return (uint64_t)MC_TABLE_ENTRY(l, item_t, link)->key;
}

/* Every key in one chain: only the comparison tells entries apart. */
static uint64_t same_hash(const mc_table_link_t *l)
{
    (void)l;
    return 7;
}

static uint64_t hash_of(const mc_table_t *t, int key)
{
    return t->hash == same_hash ? 7 : (uint64_t)key;
}

static mc_table_link_t **find_link(const mc_table_t *t, int key)
{
    mc_table_link_t **at = mc_table_chain(t, hash_of(t, key));
    while (*at && MC_TABLE_ENTRY(*at, item_t, link)->key != key)
        at = &(*at)->next;
    return at;
}

static item_t *find(const mc_table_t *t, int key)
{
    mc_table_link_t *l = *find_link(t, key);
    return l ? MC_TABLE_ENTRY(l, item_t, link) : NULL;
}

static void empty_table_finds_nothing(void **state)
{
    (void)state;
    mc_table_t t;
    mc_table_init(&t, item_hash);
    assert_null(find(&t, 1));
    item_t a = {.key = 1};
    assert_int_equal(mc_table_remove(&t, &a.link, 1), 0);
    assert_int_equal(t.count, 0);
    mc_table_clear(&t);
}

/* Adds n items, checks each is found (and one never added is not), then
 * removes the odd ones and checks again. */
static void add_find_remove(mc_table_hash_fn hash, int n)
{
    mc_table_t t;
    mc_table_init(&t, hash);
    item_t *items = calloc((size_t)n, sizeof(*items));
    assert_non_null(items);
    for (int i = 0; i < n; i++) {
        items[i].key = i * 100003; /* keys far apart */
        assert_int_equal(mc_table_add(&t, &items[i].link, hash_of(&t, items[i].key)), 0);
    }
    assert_int_equal(t.count, (size_t)n);
    assert_true(t.nslots >= (size_t)n / 2);
    for (int i = 0; i < n; i++)
        assert_ptr_equal(find(&t, items[i].key), &items[i]);
    assert_null(find(&t, -1));
    for (int i = 1; i < n; i += 2)
        assert_int_equal(mc_table_remove(&t, &items[i].link, hash_of(&t, items[i].key)), 1);
    assert_int_equal(t.count, (size_t)(n - n / 2));
    for (int i = 0; i < n; i++)
        assert_ptr_equal(find(&t, items[i].key), i % 2 ? NULL : &items[i]);
    mc_table_clear(&t);
    free(items);
}

static void entries_are_found_through_growth(void **state)
{
    (void)state;
    add_find_remove(item_hash, 5000);
}

static void colliding_hashes_are_told_apart_by_key(void **state)
{
    (void)state;
    add_find_remove(same_hash, 300);
}

/* A sweep unlinks entries while it walks every slot. */
static void unlink_while_walking(void **state)
{
    (void)state;
    mc_table_t t;
    mc_table_init(&t, item_hash);
    item_t items[100];
    for (int i = 0; i < 100; i++) {
        items[i].key = i;
        assert_int_equal(mc_table_add(&t, &items[i].link, (uint64_t)i), 0);
    }
    size_t seen = 0;
    for (size_t s = 0; s < t.nslots; s++) {
        for (mc_table_link_t **at = &t.slots[s]; *at;) {
            seen++;
            if (MC_TABLE_ENTRY(*at, item_t, link)->key % 3 == 0)
                mc_table_unlink(&t, at);
            else
                at = &(*at)->next;
        }
    }
    assert_int_equal(seen, 100);
    assert_int_equal(t.count, 100 - 34);
    for (int i = 0; i < 100; i++)
        assert_ptr_equal(find(&t, i), i % 3 == 0 ? NULL : &items[i]);
    mc_table_clear(&t);
}

/* An entry that moves (realloc) is linked again where the old one was. */
static void a_moved_entry_is_linked_again(void **state)
{
    (void)state;
    mc_table_t t;
    mc_table_init(&t, same_hash);
    item_t *a = malloc(sizeof(*a)), b = {.key = 2}, c = {.key = 3};
    assert_non_null(a);
    a->key = 1;
    assert_int_equal(mc_table_add(&t, &c.link, 7), 0);
    assert_int_equal(mc_table_add(&t, &a->link, 7), 0);
    assert_int_equal(mc_table_add(&t, &b.link, 7), 0);
    mc_table_link_t **at = find_link(&t, 1);
    item_t *moved = malloc(sizeof(*moved));
    assert_non_null(moved);
    memcpy(moved, a, sizeof(*a));
    memset(a, 0xff, sizeof(*a)); /* the old place is garbage now */
    free(a);
    *at = &moved->link;
    assert_ptr_equal(find(&t, 1), moved);
    assert_ptr_equal(find(&t, 2), &b);
    assert_ptr_equal(find(&t, 3), &c);
    assert_int_equal(mc_table_remove(&t, &moved->link, 7), 1);
    assert_null(find(&t, 1));
    assert_ptr_equal(find(&t, 3), &c);
    free(moved);
    mc_table_clear(&t);
}

static void bytes_hash_tells_keys_apart(void **state)
{
    (void)state;
    assert_int_equal(mc_table_hash_bytes("", 0), mc_table_hash_bytes("x", 0));
    assert_int_not_equal(mc_table_hash_bytes("room-1", 6), mc_table_hash_bytes("room-2", 6));
    assert_int_not_equal(mc_table_hash_bytes("ab", 2), mc_table_hash_bytes("ba", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_table_finds_nothing),
        cmocka_unit_test(entries_are_found_through_growth),
        cmocka_unit_test(colliding_hashes_are_told_apart_by_key),
        cmocka_unit_test(unlink_while_walking),
        cmocka_unit_test(a_moved_entry_is_linked_again),
        cmocka_unit_test(bytes_hash_tells_keys_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
