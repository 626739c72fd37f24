/* Whispers in the store, on sqlite and on PostgreSQL: kept for both
 * users, stored once per sender and client_id, and kept across the
 * migration that named them. */
#include "common/error.h"
#include "common/log.h"
#include "tests/support/store_fixture.h"
#include "worker/store.h"

#include <string.h>

typedef ts_store_t fixture_t;

/* Stores a whisper and checks what the store gives back; returns its id.
 * *dup (may be NULL) gets whether it was stored already. */
static int64_t whisper(fixture_t *f, int64_t from, int64_t to, const char *body,
                       const char *client_id, int64_t now, int *dup)
{
    wrk_whisper_t w;
    int again = -1;
    assert_int_equal(
        wrk_store_whisper_add(f->s, from, to, body, strlen(body), client_id, now, &w, &again), 0);
    assert_true(again == 0 || again == 1);
    if (dup)
        *dup = again;
    wrk_user_t u;
    assert_int_equal(wrk_store_user_by_name(f->s, w.from, &u), 0);
    assert_int_equal(u.id, from);
    int64_t id = w.id;
    wrk_whisper_clear(&w);
    return id;
}

/* A whisper named by its sender's client_id is stored once, and the one
 * stored is given back, whatever the second call says. */
static void a_replayed_whisper_is_stored_once(void **state)
{
    fixture_t *f = *state;
    int dup;
    int64_t first = whisper(f, f->ann, f->bob, "once", "w-1", 1000, &dup);
    assert_int_equal(dup, 0);
    wrk_whisper_t w;
    assert_int_equal(wrk_store_whisper_add(f->s, f->ann, f->bob, "twice", 5, "w-1", 2000, &w, &dup),
                     0);
    assert_int_equal(dup, 1);
    assert_int_equal(w.id, first);
    assert_string_equal(w.body, "once");
    assert_string_equal(w.to, "bob");
    assert_int_equal(w.created_ms, 1000);
    wrk_whisper_clear(&w);
    /* Another sender's w-1 is another whisper; without a name, each is. */
    assert_true(whisper(f, f->bob, f->ann, "once", "w-1", 1000, &dup) != first);
    assert_int_equal(dup, 0);
    assert_true(whisper(f, f->ann, f->bob, "plain", NULL, 1000, &dup) != first);
    assert_true(whisper(f, f->ann, f->bob, "plain", NULL, 1000, &dup) != first);
    assert_int_equal(dup, 0);
    wrk_whisper_list_t l;
    assert_int_equal(wrk_store_whispers_since(f->s, f->ann, 0, 10, &l), 0);
    assert_int_equal(l.n, 4);
    wrk_whisper_list_clear(&l);
    char big[WRK_CLIENT_ID_MAX + 2];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(wrk_store_whisper_add(f->s, f->ann, f->bob, "x", 1, big, 1, NULL, NULL),
                     MC_EINVAL);
}

/* A store of schema version 5 keeps its whispers, which have no name, and
 * names those stored after the migration. */
static void whispers_of_version_5_are_kept(void **state)
{
    fixture_t *f = *state;
    whisper(f, f->ann, f->bob, "old", NULL, 100, NULL);
    wrk_store_close(f->s);
    f->s = NULL;
    const char *v5 = ts_store_on_postgresql()
                         ? "DROP TABLE publishing; DROP INDEX whispers_client_id; ALTER TABLE "
                           "whispers DROP COLUMN client_id; DELETE FROM schema_migrations WHERE "
                           "version >= 6;"
                         : "DROP TABLE publishing; DROP INDEX whispers_client_id; ALTER TABLE "
                           "whispers DROP COLUMN client_id; PRAGMA user_version = 5;";
    assert_int_equal(ts_store_sql(f->target, v5), 0);
    assert_int_equal(wrk_store_open(&f->s, f->target, NULL), 0);
    int from = 0, to = 0;
    assert_int_equal(wrk_store_migrate(f->s, &from, &to), 0);
    assert_int_equal(from, 5);
    assert_int_equal(to, WRK_STORE_SCHEMA_VERSION);
    int dup;
    int64_t named = whisper(f, f->ann, f->bob, "new", "w-1", 200, &dup);
    assert_int_equal(whisper(f, f->ann, f->bob, "new", "w-1", 300, &dup), named);
    assert_int_equal(dup, 1);
    wrk_whisper_list_t l;
    assert_int_equal(wrk_store_whispers_since(f->s, f->bob, 0, 10, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].body, "old");
    assert_string_equal(l.items[1].body, "new");
    wrk_whisper_list_clear(&l);
}

static void whispers_are_kept_for_both_users(void **state)
{
    fixture_t *f = *state;
    int64_t carl, ids[4];
    assert_int_equal(wrk_store_user_add(f->s, "carl", "$h", 0, &carl), 0);
    ids[0] = whisper(f, f->ann, f->bob, "hi bob", NULL, 100, NULL);
    ids[1] = whisper(f, f->bob, f->ann, "hi ann", NULL, 200, NULL);
    ids[2] = whisper(f, f->bob, carl, "hi carl", NULL, 300, NULL);
    ids[3] = whisper(f, f->ann, f->ann, "note", NULL, 400, NULL);
    assert_int_equal(wrk_store_whisper_add(f->s, f->ann, 999, "x", 1, NULL, 500, NULL, NULL),
                     MC_ENOTFOUND);
    assert_true(ids[0] < ids[1] && ids[1] < ids[2] && ids[2] < ids[3]);
    wrk_whisper_list_t l;
    assert_int_equal(wrk_store_whispers_since(f->s, f->ann, 0, 10, &l), 0);
    assert_int_equal(l.n, 3); /* not bob's to carl */
    assert_int_equal(l.truncated, 0);
    assert_int_equal(l.items[0].id, ids[0]);
    assert_string_equal(l.items[0].from, "ann");
    assert_string_equal(l.items[0].to, "bob");
    assert_string_equal(l.items[0].body, "hi bob");
    assert_int_equal(l.items[0].created_ms, 100);
    assert_string_equal(l.items[1].body, "hi ann");
    assert_int_equal(l.items[2].id, ids[3]); /* a note to oneself, once */
    wrk_whisper_list_clear(&l);
    /* After an id, and the newest when more than the limit. */
    assert_int_equal(wrk_store_whispers_since(f->s, f->ann, ids[0], 1, &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.truncated, 1);
    assert_int_equal(l.items[0].id, ids[3]);
    wrk_whisper_list_clear(&l);
    assert_int_equal(wrk_store_whispers_since(f->s, f->ann, 0, 0, &l), MC_EINVAL);
}

int main(void)
{
    mc_log_init("store_whispers_test", MC_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        TS_STORE_TEST(whispers_are_kept_for_both_users),
        TS_STORE_TEST(a_replayed_whisper_is_stored_once),
        TS_STORE_TEST(whispers_of_version_5_are_kept),
    };
    return ts_store_run_both(tests, sizeof(tests) / sizeof(tests[0]));
}
