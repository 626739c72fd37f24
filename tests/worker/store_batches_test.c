/* Messages stored in batches, as a worker's outbox stores them, on sqlite
 * and on PostgreSQL: each as it would be alone, all or none, and the marks
 * of rooms whose batch is stored but maybe not yet published. */
#include "common/error.h"
#include "common/log.h"
#include "tests/support/store_fixture.h"
#include "worker/store.h"

#include <stdio.h>
#include <string.h>

typedef ts_store_t fixture_t;

/* Messages stored together come back in order, each as it would alone. */
static void messages_are_stored_together_each_as_alone(void **state)
{
    fixture_t *f = *state;
    int64_t gone, staff_room, old;
    assert_int_equal(wrk_store_room_add(f->s, "Gone", 0, &gone), 0);
    assert_int_equal(wrk_store_room_delete(f->s, gone), 0);
    assert_int_equal(wrk_store_room_add(f->s, "Staff", 1, &staff_room), 0);
    wrk_message_t before;
    int dup;
    assert_int_equal(
        wrk_store_message_add(f->s, f->room, f->ann, "before", 6, "c-old", 1000, &before, &dup), 0);
    old = before.id;
    wrk_message_clear(&before);
    char long_id[WRK_CLIENT_ID_MAX + 2];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    wrk_new_message_t m[] = {
        {.room_id = f->room, .user_id = f->ann, .body = "one", .body_len = 3, .client_id = "c-1"},
        {.room_id = gone, .user_id = f->ann, .body = "lost", .body_len = 4, .client_id = "c-2"},
        {.room_id = f->room,
         .user_id = f->ann,
         .body = "before",
         .body_len = 6,
         .client_id = "c-old"},
        {.room_id = staff_room, .user_id = f->ann, .body = "no", .body_len = 2},
        {.room_id = f->room,
         .user_id = f->bob,
         .body = "too long",
         .body_len = 8,
         .client_id = long_id},
        {.room_id = staff_room, .user_id = f->bob, .body = "two", .body_len = 3},
    };
    size_t n = sizeof(m) / sizeof(m[0]);
    assert_int_equal(wrk_store_messages_add(f->s, m, n, 5000, NULL), 0);
    assert_int_equal(m[0].rc, 0);
    assert_int_equal(m[0].duplicate, 0);
    assert_string_equal(m[0].stored.body, "one");
    assert_string_equal(m[0].stored.username, "ann");
    assert_int_equal(m[0].stored.created_ms, 5000);
    assert_int_equal(m[1].rc, MC_ENOTFOUND);
    assert_int_equal(m[2].rc, 0);
    assert_int_equal(m[2].duplicate, 1);
    assert_int_equal(m[2].stored.id, old);
    assert_int_equal(m[3].rc, MC_EDENIED);
    assert_int_equal(m[4].rc, MC_EINVAL);
    assert_int_equal(m[5].rc, 0);
    assert_true(m[5].stored.id > m[0].stored.id && m[0].stored.id > old);
    for (size_t i = 0; i < n; i++)
        wrk_message_clear(&m[i].stored);
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(f->s, f->room, 10, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[1].body, "one");
    wrk_message_list_clear(&l);
}

/* When one insert of messages stored together fails, none is kept. */
static void messages_stored_together_are_kept_all_or_none(void **state)
{
    fixture_t *f = *state;
    /* A trigger behind the store's back refuses one body. */
    assert_int_equal(
        ts_store_sql(f->target,
                     ts_store_on_postgresql()
                         ? "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                           "IF NEW.body = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; "
                           "RETURN NEW; END $$; CREATE TRIGGER boom BEFORE INSERT ON messages "
                           "FOR EACH ROW EXECUTE FUNCTION boom();"
                         : "CREATE TRIGGER boom BEFORE INSERT ON messages WHEN NEW.body = 'boom' "
                           "BEGIN SELECT RAISE(ABORT, 'boom'); END;"),
        0);
    wrk_new_message_t m[] = {
        {.room_id = f->room, .user_id = f->ann, .body = "one", .body_len = 3},
        {.room_id = f->room, .user_id = f->ann, .body = "boom", .body_len = 4},
        {.room_id = f->room, .user_id = f->ann, .body = "three", .body_len = 5},
    };
    assert_int_equal(wrk_store_messages_add(f->s, m, 3, 1, NULL), MC_EDB);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(m[i].rc, MC_EDB);
        assert_null(m[i].stored.body);
    }
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(f->s, f->room, 10, &l), 0);
    assert_int_equal(l.n, 0);
    wrk_message_list_clear(&l);
    /* The connection goes on. */
    m[1].body = "two";
    m[1].body_len = 3;
    assert_int_equal(wrk_store_messages_add(f->s, m, 3, 1, NULL), 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(m[i].rc, 0);
        wrk_message_clear(&m[i].stored);
    }
    assert_int_equal(wrk_store_batch_begin(f->s), 0);
    assert_int_equal(wrk_store_messages_add(f->s, m, 3, 1, NULL), MC_EINVAL);
    assert_int_equal(wrk_store_batch_end(f->s, 0), 0);
}

/* The messages of a batch stored and never published are handed to the
 * next holder of their rooms, with their senders, until published; a
 * batch that finds them left keeps them for the next. A room's newest
 * message published for sure is below them. */
static void a_batch_left_unpublished_is_handed_on(void **state)
{
    fixture_t *f = *state;
    int64_t other;
    assert_int_equal(wrk_store_room_add(f->s, "Other", 0, &other), 0);
    int64_t rooms[] = {f->room, other};
    wrk_unpublished_list_t l;
    wrk_new_message_t a[] = {
        {.room_id = f->room,
         .user_id = f->ann,
         .body = "a1",
         .body_len = 2,
         .client_id = "c-1",
         .sender = "ifc.x!1"},
        {.room_id = other,
         .user_id = f->bob,
         .body = "a2",
         .body_len = 2,
         .client_id = "c-1",
         .sender = "ifc.x!2"},
        {.room_id = f->room, .user_id = f->bob, .body = "a3", .body_len = 2},
    };
    int64_t last = -1;
    assert_int_equal(wrk_store_published_last(f->s, f->room, &last), 0);
    assert_int_equal(last, 0); /* no messages */
    assert_int_equal(wrk_store_messages_add(f->s, a, 3, 1, &l), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(wrk_store_published_last(f->s, f->room, &last), 0);
    assert_int_equal(last, 0); /* stored, maybe not published */
    /* Never published: the next batch of the lobby finds the lobby's. */
    wrk_new_message_t b[] = {{.room_id = f->room,
                              .user_id = f->ann,
                              .body = "b1",
                              .body_len = 2,
                              .client_id = "c-2",
                              .sender = "ifc.y!1"}};
    assert_int_equal(wrk_store_messages_add(f->s, b, 1, 2, &l), 0);
    wrk_message_clear(&b[0].stored);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].m.body, "a1");
    assert_string_equal(l.items[0].sender, "ifc.x!1");
    assert_string_equal(l.items[1].m.body, "a3");
    assert_string_equal(l.items[1].sender, ""); /* no name: no telling who sent it */
    wrk_unpublished_list_clear(&l);
    /* Nor was that one published: the next finds both batches. */
    assert_int_equal(wrk_store_unpublished(f->s, rooms, 2, &l), 0);
    assert_int_equal(l.n, 4);
    const char *bodies[] = {"a1", "a2", "a3", "b1"},
               *senders[] = {"ifc.x!1", "ifc.x!2", "", "ifc.y!1"};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(l.items[i].m.body, bodies[i]);
        assert_string_equal(l.items[i].sender, senders[i]);
        if (i)
            assert_true(l.items[i].m.id > l.items[i - 1].m.id);
    }
    int64_t newest = l.items[3].m.id; /* b1 */
    /* A deleted one is left out. */
    assert_int_equal(wrk_store_message_delete(f->s, l.items[2].m.id), 0);
    wrk_unpublished_list_clear(&l);
    assert_int_equal(wrk_store_unpublished(f->s, rooms, 2, &l), 0);
    assert_int_equal(l.n, 3);
    wrk_unpublished_list_clear(&l);
    /* Published: nothing is left, until the next batch. */
    assert_int_equal(wrk_store_published(f->s, rooms, 2), 0);
    assert_int_equal(wrk_store_unpublished(f->s, rooms, 2, &l), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(wrk_store_published_last(f->s, f->room, &last), 0);
    assert_int_equal(last, newest);
    b[0].client_id = "c-3";
    assert_int_equal(wrk_store_messages_add(f->s, b, 1, 3, &l), 0);
    assert_int_equal(l.n, 0);
    wrk_message_clear(&b[0].stored);
    assert_int_equal(wrk_store_unpublished(f->s, rooms, 2, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].m.body, "b1");
    assert_true(l.items[0].m.id > newest);
    wrk_unpublished_list_clear(&l);
    assert_int_equal(wrk_store_published_last(f->s, f->room, &last), 0);
    assert_int_equal(last, newest);
    for (size_t i = 0; i < 3; i++)
        wrk_message_clear(&a[i].stored);
}

/* A batch as large as a batch may be, each message in a room of its own
 * and a room named twice, is stored and marked room by room; each message
 * is handed on once. */
static void a_full_batch_of_rooms_is_marked_room_by_room(void **state)
{
    fixture_t *f = *state;
    enum { N = WRK_STORE_MESSAGES_MAX };
    int64_t rooms[N];
    char client_ids[N][16];
    wrk_new_message_t m[N];
    for (size_t i = 0; i < N; i++) {
        char title[32];
        snprintf(title, sizeof(title), "Room %zu", i);
        assert_int_equal(wrk_store_room_add(f->s, title, 0, &rooms[i]), 0);
        snprintf(client_ids[i], sizeof(client_ids[i]), "c-%zu", i);
        m[i] = (wrk_new_message_t){.room_id = rooms[i],
                                   .user_id = f->ann,
                                   .body = "hi",
                                   .body_len = 2,
                                   .client_id = client_ids[i],
                                   .sender = "ifc.x!1"};
    }
    wrk_unpublished_list_t l;
    assert_int_equal(wrk_store_messages_add(f->s, m, N, 1, &l), 0);
    assert_int_equal(l.n, 0);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(m[i].rc, 0);
        wrk_message_clear(&m[i].stored);
    }
    assert_int_equal(wrk_store_unpublished(f->s, rooms, N, &l), 0);
    assert_int_equal(l.n, N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(l.items[i].m.room_id, rooms[i]);
        assert_string_equal(l.items[i].sender, "ifc.x!1");
    }
    wrk_unpublished_list_clear(&l);
    int64_t twice[] = {rooms[3], rooms[3]};
    assert_int_equal(wrk_store_unpublished(f->s, twice, 2, &l), 0);
    assert_int_equal(l.n, 1);
    wrk_unpublished_list_clear(&l);
    assert_int_equal(wrk_store_published(f->s, rooms, N), 0);
    assert_int_equal(wrk_store_unpublished(f->s, rooms, N, &l), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(ts_store_int(f->target, "SELECT count(*) FROM publishing WHERE pending = 1"),
                     0);
}

/* A batch that fails marks nothing. */
static void a_batch_that_fails_leaves_no_mark(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(
        ts_store_sql(f->target,
                     ts_store_on_postgresql()
                         ? "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                           "RAISE EXCEPTION 'boom'; END $$; CREATE TRIGGER boom BEFORE INSERT "
                           "ON messages FOR EACH ROW EXECUTE FUNCTION boom();"
                         : "CREATE TRIGGER boom BEFORE INSERT ON messages "
                           "BEGIN SELECT RAISE(ABORT, 'boom'); END;"),
        0);
    wrk_new_message_t m = {.room_id = f->room,
                           .user_id = f->ann,
                           .body = "x",
                           .body_len = 1,
                           .client_id = "c-1",
                           .sender = "ifc.x!1"};
    wrk_unpublished_list_t l;
    assert_int_equal(wrk_store_messages_add(f->s, &m, 1, 1, &l), MC_EDB);
    assert_int_equal(l.n, 0);
    assert_int_equal(wrk_store_unpublished(f->s, &f->room, 1, &l), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(ts_store_int(f->target, "SELECT count(*) FROM publishing WHERE pending = 1"),
                     0);
}

/* In a batch, a message for a room deleted meanwhile is refused, and the
 * batch's other messages are kept. */
static void a_message_for_a_gone_room_fails_alone_in_a_batch(void **state)
{
    fixture_t *f = *state;
    int64_t gone;
    assert_int_equal(wrk_store_room_add(f->s, "Gone", 0, &gone), 0);
    assert_int_equal(wrk_store_room_delete(f->s, gone), 0);
    wrk_message_t m;
    assert_int_equal(wrk_store_batch_begin(f->s), 0);
    assert_int_equal(wrk_store_message_add(f->s, f->room, f->ann, "a", 1, "c-1", 1, &m, NULL), 0);
    wrk_message_clear(&m);
    assert_int_equal(wrk_store_message_add(f->s, gone, f->ann, "b", 1, "c-2", 1, &m, NULL),
                     MC_ENOTFOUND);
    assert_int_equal(wrk_store_message_add(f->s, gone, f->ann, "c", 1, NULL, 1, &m, NULL),
                     MC_ENOTFOUND);
    assert_int_equal(wrk_store_message_add(f->s, f->room, f->ann, "d", 1, "c-3", 1, &m, NULL), 0);
    wrk_message_clear(&m);
    assert_int_equal(wrk_store_batch_end(f->s, 1), 0);
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(f->s, f->room, 10, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].body, "a");
    assert_string_equal(l.items[1].body, "d");
    wrk_message_list_clear(&l);
}

int main(void)
{
    mc_log_init("store_batches_test", MC_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        TS_STORE_TEST(a_message_for_a_gone_room_fails_alone_in_a_batch),
        TS_STORE_TEST(messages_are_stored_together_each_as_alone),
        TS_STORE_TEST(messages_stored_together_are_kept_all_or_none),
        TS_STORE_TEST(a_batch_left_unpublished_is_handed_on),
        TS_STORE_TEST(a_full_batch_of_rooms_is_marked_room_by_room),
        TS_STORE_TEST(a_batch_that_fails_leaves_no_mark),
    };
    return ts_store_run_both(tests, sizeof(tests) / sizeof(tests[0]));
}
