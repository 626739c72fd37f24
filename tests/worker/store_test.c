/* The store's behaviour, test by test, on sqlite and on PostgreSQL. */
#include "common/error.h"
#include "common/log.h"
#include "tests/support/store_fixture.h"
#include "worker/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef ts_store_t fixture_t;

static void migrations_are_idempotent(void **state)
{
    fixture_t *f = *state;
    int from = -1, to = -1, v = 0;
    assert_int_equal(wrk_store_migrate(f->s, &from, &to), 0);
    assert_int_equal(from, WRK_STORE_SCHEMA_VERSION);
    assert_int_equal(to, WRK_STORE_SCHEMA_VERSION);
    assert_int_equal(wrk_store_version(f->s, &v), 0);
    assert_int_equal(v, WRK_STORE_SCHEMA_VERSION);
    /* A second connection migrating the same file changes nothing either. */
    wrk_store_t *other;
    assert_int_equal(wrk_store_open(&other, f->target, NULL), 0);
    assert_int_equal(wrk_store_migrate(other, &from, NULL), 0);
    assert_int_equal(from, WRK_STORE_SCHEMA_VERSION);
    wrk_user_t u;
    assert_int_equal(wrk_store_user_by_name(other, "ann", &u), 0);
    wrk_store_close(other);
}

static void a_fresh_database_starts_at_version_zero(void **state)
{
    fixture_t *f = *state;
    char target[192];
    ts_store_fresh(f, 0, target, sizeof(target));
    wrk_store_t *s;
    int from = -1, to = -1, v = -1;
    assert_int_equal(wrk_store_open(&s, target, NULL), 0);
    assert_int_equal(wrk_store_version(s, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(wrk_store_migrate(s, &from, &to), 0);
    assert_int_equal(from, 0);
    assert_int_equal(to, WRK_STORE_SCHEMA_VERSION);
    assert_int_equal(wrk_store_version(s, &v), 0);
    assert_int_equal(v, WRK_STORE_SCHEMA_VERSION);
    wrk_store_close(s);
}

/* A database migrated by a newer program is left alone. */
static void a_newer_schema_is_refused(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(
        ts_store_sql(f->target, ts_store_on_postgresql()
                                    ? "INSERT INTO schema_migrations(version) VALUES (99)"
                                    : "PRAGMA user_version = 99"),
        0);
    int from = -1;
    assert_int_equal(wrk_store_migrate(f->s, &from, NULL), MC_EDB);
    assert_int_equal(from, 99);
    assert_non_null(strstr(wrk_store_errmsg(f->s), "schema version 99"));
    wrk_user_t u;
    assert_int_equal(wrk_store_user_by_name(f->s, "ann", &u), 0);
}

/* Counts the sessions logged as ended in out[0] and keeps their ids in
 * out[1..3]. */
static int ended_sessions(void *arg, int64_t seq, enum wrk_change_kind kind, int64_t ref)
{
    int64_t *out = arg;
    (void)seq;
    if (kind == WRK_CHANGE_SESSION && out[0] < 3)
        out[1 + out[0]++] = ref;
    return 0;
}

/* The sessions of a store of schema version 3, which have no declared id,
 * get their rowids as ids (version 4), then end, each logged by that id,
 * since their tokens are plain text (version 5): their sockets close and
 * their users log in once more. The ids are never given again. (Version 3
 * also indexes sessions by expiry; one index is enough to show that they
 * make way.) */
static void old_sessions_end_by_their_rowids(void **state)
{
    fixture_t *f = *state;
    wrk_store_close(f->s);
    f->s = NULL;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->target, &db), SQLITE_OK);
    const char *v3 = "BEGIN;"
                     "DROP TABLE publishing;"
                     "DROP INDEX whispers_client_id;"
                     "ALTER TABLE whispers DROP COLUMN client_id;"
                     "DROP TRIGGER sessions_ended;"
                     "DROP TABLE secrets;"
                     "DROP INDEX login_failures_start;"
                     "ALTER TABLE login_failures DROP COLUMN last_at;"
                     "ALTER TABLE users DROP COLUMN is_superuser;"
                     "DROP TABLE sessions;"
                     "CREATE TABLE sessions ("
                     "  token TEXT PRIMARY KEY,"
                     "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
                     "  expires INTEGER NOT NULL);"
                     "CREATE INDEX sessions_user ON sessions(user_id);"
                     "INSERT INTO sessions(rowid, token, user_id, expires) VALUES"
                     "  (7, 'old7', 1, 5000), (9, 'old9', 1, 5000);"
                     "PRAGMA user_version = 3;"
                     "COMMIT;";
    assert_int_equal(sqlite3_exec(db, v3, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(wrk_store_open(&f->s, f->target, NULL), 0);
    int from = 0, to = 0;
    assert_int_equal(wrk_store_migrate(f->s, &from, &to), 0);
    assert_int_equal(from, 3);
    assert_int_equal(to, WRK_STORE_SCHEMA_VERSION);
    wrk_user_t u;
    int64_t id = 0;
    assert_int_equal(wrk_store_session_user(f->s, "old9", 0, &u, &id), MC_ENOTFOUND);
    int64_t ended[4] = {0};
    assert_int_equal(wrk_store_change_each(f->s, 0, ended_sessions, ended), 0);
    assert_int_equal(ended[0], 2);
    assert_int_equal(ended[1], 7);
    assert_int_equal(ended[2], 9);
    assert_int_equal(wrk_store_session_add(f->s, "new", f->bob, 5000), 0);
    assert_int_equal(wrk_store_session_user(f->s, "new", 0, &u, &id), 0);
    assert_int_equal(id, 10);
}

static void users_are_added_found_and_changed(void **state)
{
    fixture_t *f = *state;
    wrk_user_t u;
    assert_int_equal(wrk_store_user_add(f->s, "ann", "$x", 0, NULL), MC_EEXIST);
    assert_int_equal(wrk_store_user_add(f->s, "", "$x", 0, NULL), MC_EINVAL);
    assert_int_equal(wrk_store_user_by_name(f->s, "ann", &u), 0);
    assert_int_equal(u.id, f->ann);
    assert_string_equal(u.password, "$hash-ann");
    assert_int_equal(u.is_staff, 0);
    assert_int_equal(u.is_active, 1);
    assert_int_equal(wrk_store_user_by_name(f->s, "nobody", &u), MC_ENOTFOUND);
    assert_int_equal(wrk_store_user_set_password(f->s, f->ann, "$new", 0), 0);
    assert_int_equal(wrk_store_user_set_staff(f->s, f->ann, 1), 0);
    assert_int_equal(wrk_store_user_by_id(f->s, f->ann, &u), 0);
    assert_string_equal(u.password, "$new");
    assert_int_equal(u.is_staff, 1);
    assert_int_equal(u.is_superuser, 0);
    assert_int_equal(wrk_store_user_set_superuser(f->s, f->ann, 1), 0);
    assert_int_equal(wrk_store_user_by_name(f->s, "ann", &u), 0);
    assert_int_equal(u.is_superuser, 1);
    assert_int_equal(wrk_store_user_set_superuser(f->s, 999, 1), MC_ENOTFOUND);
    assert_int_equal(wrk_store_user_set_staff(f->s, 999, 1), MC_ENOTFOUND);
    assert_int_equal(wrk_store_user_set_password(f->s, 999, "$x", 0), MC_ENOTFOUND);
    assert_int_equal(wrk_store_user_by_id(f->s, 999, &u), MC_ENOTFOUND);
}

/* Counts the users in n[0] and the superusers in n[1]. */
static int count_user(void *arg, const wrk_user_t *u)
{
    int *n = arg;
    n[0]++;
    n[1] += u->is_superuser;
    return 0;
}

static void users_are_listed(void **state)
{
    fixture_t *f = *state;
    int n[2] = {0, 0};
    assert_int_equal(wrk_store_user_set_superuser(f->s, f->bob, 1), 0);
    assert_int_equal(wrk_store_user_each(f->s, count_user, n), 0);
    assert_int_equal(n[0], 2);
    assert_int_equal(n[1], 1);
}

/* The kind and ref of the latest change. */
static int last_change(void *arg, int64_t seq, enum wrk_change_kind kind, int64_t ref)
{
    int64_t *out = arg;
    (void)seq;
    out[0] = kind;
    out[1] = ref;
    return 0;
}

static void sessions_expire_and_end(void **state)
{
    fixture_t *f = *state;
    wrk_user_t u;
    assert_int_equal(wrk_store_session_add(f->s, "tok1", f->ann, 2000), 0);
    assert_int_equal(wrk_store_session_add(f->s, "tok1", f->ann, 2000), MC_EEXIST);
    assert_int_equal(wrk_store_session_add(f->s, "tok2", 999, 2000), MC_ENOTFOUND);
    assert_int_equal(wrk_store_session_add(f->s, "tok2", f->ann, 2000), 0);
    int64_t id1 = 0, id2 = 0;
    assert_int_equal(wrk_store_session_user(f->s, "tok1", 1999, &u, &id1), 0);
    assert_string_equal(u.username, "ann");
    assert_int_equal(wrk_store_session_user(f->s, "tok2", 1999, &u, &id2), 0);
    assert_true(id1 > 0 && id2 > 0 && id1 != id2);
    assert_int_equal(wrk_store_session_user(f->s, "tok1", 2000, &u, NULL), MC_ENOTFOUND);
    assert_int_equal(wrk_store_session_user(f->s, "nope", 0, &u, NULL), MC_ENOTFOUND);
    /* Ending one session logs its id; the user's other session goes on. */
    int64_t before;
    assert_int_equal(wrk_store_change_last(f->s, &before), 0);
    assert_int_equal(wrk_store_session_delete(f->s, "tok2"), 0);
    assert_int_equal(wrk_store_session_user(f->s, "tok2", 0, &u, NULL), MC_ENOTFOUND);
    assert_int_equal(wrk_store_session_delete(f->s, "tok2"), 0);
    int64_t after, change[2] = {0, 0};
    assert_int_equal(wrk_store_change_last(f->s, &after), 0);
    assert_int_equal(after, before + 1);
    assert_int_equal(wrk_store_change_each(f->s, before, last_change, change), 0);
    assert_int_equal(change[0], WRK_CHANGE_SESSION);
    assert_int_equal(change[1], id2);
    assert_int_equal(wrk_store_session_user(f->s, "tok1", 0, &u, NULL), 0);
    /* The id of a session that ended, the latest one, is not given again. */
    int64_t id3 = 0;
    assert_int_equal(wrk_store_session_add(f->s, "tok3", f->ann, 2000), 0);
    assert_int_equal(wrk_store_session_user(f->s, "tok3", 0, &u, &id3), 0);
    assert_true(id3 > id2);
    /* Expired sessions end, logged as any other end, once. */
    assert_int_equal(wrk_store_session_add(f->s, "tok4", f->ann, 10), 0);
    int64_t id4 = 0;
    assert_int_equal(wrk_store_session_user(f->s, "tok4", 0, &u, &id4), 0);
    long n = -1;
    assert_int_equal(wrk_store_sessions_expire(f->s, 9, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(wrk_store_change_last(f->s, &before), 0);
    assert_int_equal(wrk_store_sessions_expire(f->s, 100, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(wrk_store_change_each(f->s, before, last_change, change), 0);
    assert_int_equal(change[0], WRK_CHANGE_SESSION);
    assert_int_equal(change[1], id4);
    assert_int_equal(wrk_store_sessions_expire(f->s, 100, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(wrk_store_session_add(f->s, "tok4", f->ann, 1000), 0);
    /* The hourly purge ends them too. */
    assert_int_equal(wrk_store_purge(f->s, 1500, 3600000), 0);
    assert_int_equal(wrk_store_session_user(f->s, "tok4", 0, &u, NULL), MC_ENOTFOUND);
}

static void deactivating_ends_sessions(void **state)
{
    fixture_t *f = *state;
    wrk_user_t u;
    int64_t before, id;
    assert_int_equal(wrk_store_session_add(f->s, "t", f->ann, INT64_MAX), 0);
    assert_int_equal(wrk_store_session_user(f->s, "t", 0, &u, &id), 0);
    assert_int_equal(wrk_store_change_last(f->s, &before), 0);
    assert_int_equal(wrk_store_user_set_active(f->s, f->ann, 0), 0);
    assert_int_equal(wrk_store_session_user(f->s, "t", 0, &u, NULL), MC_ENOTFOUND);
    int64_t ended[4] = {0};
    assert_int_equal(wrk_store_change_each(f->s, before, ended_sessions, ended), 0);
    assert_int_equal(ended[0], 1);
    assert_int_equal(ended[1], id);
    assert_int_equal(wrk_store_user_set_active(f->s, f->ann, 1), 0);
    assert_int_equal(wrk_store_session_user(f->s, "t", 0, &u, NULL), MC_ENOTFOUND);
    assert_int_equal(wrk_store_user_set_active(f->s, 999, 0), MC_ENOTFOUND);
}

/* Whoever reads the database (a backup, a stolen copy) finds no token it
 * could present as a cookie: only their SHA-256. */
static void a_session_s_token_is_kept_hashed(void **state)
{
    fixture_t *f = *state;
    const char *token = "0123456789abcdef0123456789abcdef";
    assert_int_equal(wrk_store_session_add(f->s, token, f->ann, INT64_MAX), 0);
    assert_int_equal(ts_store_int(f->target, "SELECT count(*) FROM sessions"), 1);
    assert_int_equal(ts_store_int(f->target, "SELECT count(*) FROM sessions WHERE token_hash = "
                                             "'3eb1bd439947eb762998e566ccc2e099c791118b2f40579cc4f7"
                                             "da2b5061b7f9'"),
                     1);
    assert_int_equal(ts_store_int(f->target, "SELECT count(*) FROM sessions "
                                             "WHERE token_hash LIKE '%0123456789abcdef%'"),
                     0);
    wrk_user_t u;
    assert_int_equal(wrk_store_session_user(f->s, token, 0, &u, NULL), 0);
    assert_int_equal(u.id, f->ann);
}

/* A new password ends the user's sessions but the one that set it; each
 * end is logged. */
static void a_new_password_ends_the_other_sessions(void **state)
{
    fixture_t *f = *state;
    wrk_user_t u;
    int64_t keep = 0, before;
    assert_int_equal(wrk_store_session_add(f->s, "mine", f->ann, INT64_MAX), 0);
    assert_int_equal(wrk_store_session_add(f->s, "other", f->ann, INT64_MAX), 0);
    assert_int_equal(wrk_store_session_add(f->s, "bobs", f->bob, INT64_MAX), 0);
    assert_int_equal(wrk_store_session_user(f->s, "mine", 0, &u, &keep), 0);
    assert_int_equal(wrk_store_change_last(f->s, &before), 0);
    assert_int_equal(wrk_store_user_set_password(f->s, f->ann, "$new", keep), 0);
    assert_int_equal(wrk_store_session_user(f->s, "mine", 0, &u, NULL), 0);
    assert_int_equal(wrk_store_session_user(f->s, "other", 0, &u, NULL), MC_ENOTFOUND);
    assert_int_equal(wrk_store_session_user(f->s, "bobs", 0, &u, NULL), 0);
    int64_t ended[4] = {0};
    assert_int_equal(wrk_store_change_each(f->s, before, ended_sessions, ended), 0);
    assert_int_equal(ended[0], 1);
    /* Without one to keep, all of them. */
    assert_int_equal(wrk_store_user_end_sessions(f->s, f->ann, 0), 0);
    assert_int_equal(wrk_store_session_user(f->s, "mine", 0, &u, NULL), MC_ENOTFOUND);
}

static int collect_room(void *arg, const wrk_room_t *r)
{
    wrk_room_t *rooms = arg;
    rooms[rooms[0].id++ + 1] = *r;
    return 0;
}

static void rooms_are_managed(void **state)
{
    fixture_t *f = *state;
    int64_t id;
    wrk_room_t r;
    assert_int_equal(wrk_store_room_add(f->s, "Staff", 1, &id), 0);
    assert_int_equal(wrk_store_room_add(f->s, "", 0, NULL), MC_EINVAL);
    assert_int_equal(wrk_store_room_get(f->s, id, &r), 0);
    assert_string_equal(r.title, "Staff");
    assert_int_equal(r.staff_only, 1);
    assert_int_equal(wrk_store_room_rename(f->s, id, "Team"), 0);
    assert_int_equal(wrk_store_room_set_staff_only(f->s, id, 0), 0);
    assert_int_equal(wrk_store_room_get(f->s, id, &r), 0);
    assert_string_equal(r.title, "Team");
    assert_int_equal(r.staff_only, 0);
    wrk_room_t rooms[8] = {{0}};
    assert_int_equal(wrk_store_room_each(f->s, collect_room, rooms), 0);
    assert_int_equal(rooms[0].id, 2);
    assert_string_equal(rooms[1].title, "Lobby");
    assert_string_equal(rooms[2].title, "Team");
    assert_int_equal(wrk_store_room_delete(f->s, id), 0);
    assert_int_equal(wrk_store_room_get(f->s, id, &r), MC_ENOTFOUND);
    assert_int_equal(wrk_store_room_delete(f->s, id), MC_ENOTFOUND);
    assert_int_equal(wrk_store_room_rename(f->s, id, "x"), MC_ENOTFOUND);
    /* Ids are never reused. */
    int64_t next;
    assert_int_equal(wrk_store_room_add(f->s, "Again", 0, &next), 0);
    assert_true(next > id);
}

static void add(fixture_t *f, const char *body, const char *client_id, int64_t *id)
{
    wrk_message_t m;
    int dup;
    assert_int_equal(
        wrk_store_message_add(f->s, f->room, f->ann, body, strlen(body), client_id, 1000, &m, &dup),
        0);
    assert_int_equal(dup, 0);
    if (id)
        *id = m.id;
    wrk_message_clear(&m);
}

static void messages_are_stored_with_id_and_time(void **state)
{
    fixture_t *f = *state;
    wrk_message_t m;
    int dup;
    assert_int_equal(wrk_store_message_add(f->s, f->room, f->ann, "hello", 5, NULL, 1234, &m, &dup),
                     0);
    assert_true(m.id > 0);
    assert_int_equal(m.created_ms, 1234);
    assert_int_equal(m.edited_ms, 0);
    assert_string_equal(m.body, "hello");
    assert_string_equal(m.username, "ann");
    assert_int_equal(dup, 0);
    int64_t first = m.id;
    wrk_message_clear(&m);
    assert_int_equal(wrk_store_message_add(f->s, f->room, f->ann, "x", 1, NULL, 1, &m, &dup), 0);
    assert_true(m.id > first);
    wrk_message_clear(&m);
    assert_int_equal(wrk_store_message_add(f->s, 999, f->ann, "x", 1, NULL, 1, &m, &dup),
                     MC_ENOTFOUND);
}

/* A message is stored only for an active user who may be in the room, and
 * a refusal in a batch keeps the batch's other messages. */
static void only_those_who_may_post_store_messages(void **state)
{
    fixture_t *f = *state;
    int64_t staff_room;
    assert_int_equal(wrk_store_room_add(f->s, "Staff", 1, &staff_room), 0);
    wrk_message_t m;
    assert_int_equal(wrk_store_batch_begin(f->s), 0);
    assert_int_equal(wrk_store_message_add(f->s, staff_room, f->ann, "no", 2, "c-1", 1, &m, NULL),
                     MC_EDENIED);
    assert_int_equal(wrk_store_message_add(f->s, staff_room, f->bob, "yes", 3, "c-2", 1, &m, NULL),
                     0);
    wrk_message_clear(&m);
    assert_int_equal(wrk_store_message_add(f->s, f->room, 4242, "nobody", 6, NULL, 1, &m, NULL),
                     MC_ECLOSED);
    assert_int_equal(wrk_store_batch_end(f->s, 1), 0);
    assert_int_equal(wrk_store_user_set_active(f->s, f->ann, 0), 0);
    assert_int_equal(wrk_store_message_add(f->s, f->room, f->ann, "gone", 4, NULL, 1, &m, NULL),
                     MC_ECLOSED);
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(f->s, staff_room, 10, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].body, "yes");
    wrk_message_list_clear(&l);
    assert_int_equal(wrk_store_messages_last(f->s, f->room, 10, &l), 0);
    assert_int_equal(l.n, 0);
    wrk_message_list_clear(&l);
}

static void a_replayed_client_id_is_stored_once(void **state)
{
    fixture_t *f = *state;
    wrk_message_t a, b;
    int dup;
    assert_int_equal(wrk_store_message_add(f->s, f->room, f->ann, "once", 4, "c-1", 1000, &a, &dup),
                     0);
    assert_int_equal(dup, 0);
    assert_int_equal(wrk_store_message_add(f->s, f->room, f->ann, "once", 4, "c-1", 2000, &b, &dup),
                     0);
    assert_int_equal(dup, 1);
    assert_int_equal(a.id, b.id);
    assert_int_equal(b.created_ms, 1000);
    wrk_message_clear(&b);
    /* The same client id from another user is another message. */
    assert_int_equal(wrk_store_message_add(f->s, f->room, f->bob, "once", 4, "c-1", 1000, &b, &dup),
                     0);
    assert_int_equal(dup, 0);
    assert_true(b.id != a.id);
    wrk_message_clear(&a);
    wrk_message_clear(&b);
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(f->s, f->room, 50, &l), 0);
    assert_int_equal(l.n, 2);
    wrk_message_list_clear(&l);
}

static void edits_and_deletes(void **state)
{
    fixture_t *f = *state;
    int64_t id;
    add(f, "typo", NULL, &id);
    assert_int_equal(wrk_store_message_edit(f->s, id, "fixed", 5, 5000), 0);
    wrk_message_t m;
    assert_int_equal(wrk_store_message_get(f->s, id, &m), 0);
    assert_string_equal(m.body, "fixed");
    assert_int_equal(m.edited_ms, 5000);
    wrk_message_clear(&m);
    assert_int_equal(wrk_store_message_delete(f->s, id), 0);
    assert_int_equal(wrk_store_message_delete(f->s, id), MC_ENOTFOUND);
    assert_int_equal(wrk_store_message_edit(f->s, id, "x", 1, 1), MC_ENOTFOUND);
    assert_int_equal(wrk_store_message_get(f->s, id, &m), 0);
    assert_int_equal(m.deleted, 1);
    assert_string_equal(m.body, ""); /* the text is gone, not hidden */
    assert_int_equal(m.body_len, 0);
    wrk_message_clear(&m);
    assert_int_equal(wrk_store_message_get(f->s, 99999, &m), MC_ENOTFOUND);
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(f->s, f->room, 50, &l), 0);
    assert_int_equal(l.n, 0);
    wrk_message_list_clear(&l);
}

static void history_queries(void **state)
{
    fixture_t *f = *state;
    int64_t ids[60];
    char body[16];
    assert_int_equal(wrk_store_batch_begin(f->s), 0);
    for (int i = 0; i < 60; i++) {
        snprintf(body, sizeof(body), "m%d", i);
        add(f, body, NULL, &ids[i]);
    }
    assert_int_equal(wrk_store_batch_end(f->s, 1), 0);

    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(f->s, f->room, 50, &l), 0);
    assert_int_equal(l.n, 50);
    assert_int_equal(l.truncated, 1);
    assert_string_equal(l.items[0].body, "m10");
    assert_string_equal(l.items[49].body, "m59");
    wrk_message_list_clear(&l);

    assert_int_equal(wrk_store_messages_since(f->s, f->room, ids[54], 500, &l), 0);
    assert_int_equal(l.n, 5);
    assert_int_equal(l.truncated, 0);
    assert_int_equal(l.items[0].id, ids[55]);
    wrk_message_list_clear(&l);

    assert_int_equal(wrk_store_messages_since(f->s, f->room, 0, 10, &l), 0);
    assert_int_equal(l.n, 10);
    assert_int_equal(l.truncated, 1);
    assert_int_equal(l.items[9].id, ids[59]);
    wrk_message_list_clear(&l);

    assert_int_equal(wrk_store_messages_since(f->s, f->room, ids[59], 500, &l), 0);
    assert_int_equal(l.n, 0);
    wrk_message_list_clear(&l);

    assert_int_equal(wrk_store_messages_before(f->s, f->room, ids[10], 5, &l), 0);
    assert_int_equal(l.n, 5);
    assert_int_equal(l.items[0].id, ids[5]);
    assert_int_equal(l.items[4].id, ids[9]);
    assert_int_equal(l.truncated, 1);
    wrk_message_list_clear(&l);

    assert_int_equal(wrk_store_messages_before(f->s, f->room, ids[3], 50, &l), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.truncated, 0);
    wrk_message_list_clear(&l);
}

static void since_is_capped(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(wrk_store_batch_begin(f->s), 0);
    for (int i = 0; i < WRK_STORE_SINCE_MAX + 20; i++)
        add(f, "x", NULL, NULL);
    assert_int_equal(wrk_store_batch_end(f->s, 1), 0);
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_since(f->s, f->room, 0, 100000, &l), 0);
    assert_int_equal(l.n, WRK_STORE_SINCE_MAX);
    assert_int_equal(l.truncated, 1);
    wrk_message_list_clear(&l);
}

static void deleting_a_room_deletes_its_messages(void **state)
{
    fixture_t *f = *state;
    int64_t id;
    add(f, "bye", NULL, &id);
    assert_int_equal(wrk_store_room_delete(f->s, f->room), 0);
    wrk_message_t m;
    assert_int_equal(wrk_store_message_get(f->s, id, &m), MC_ENOTFOUND);
}

static void a_batch_can_be_undone(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(wrk_store_batch_begin(f->s), 0);
    assert_int_equal(wrk_store_batch_begin(f->s), MC_EINVAL);
    assert_int_equal(wrk_store_user_add(f->s, "carl", "$h", 0, NULL), 0);
    assert_int_equal(wrk_store_batch_end(f->s, 0), 0);
    wrk_user_t u;
    assert_int_equal(wrk_store_user_by_name(f->s, "carl", &u), MC_ENOTFOUND);
    assert_int_equal(wrk_store_batch_end(f->s, 1), MC_EINVAL);
}

static void login_failures_are_windowed(void **state)
{
    fixture_t *f = *state;
    long n;
    int64_t last;
    assert_int_equal(wrk_store_login_failures(f->s, WRK_LIMIT_USER, "ann", 0, 1000, &n, &last), 0);
    assert_int_equal(n, 0);
    assert_int_equal(last, 0);
    assert_int_equal(wrk_store_login_failure_add(f->s, WRK_LIMIT_USER, "ann", 100, 1000, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(wrk_store_login_failure_add(f->s, WRK_LIMIT_USER, "ann", 500, 1000, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(wrk_store_login_failure_add(f->s, WRK_LIMIT_ADDR, "ann", 500, 1000, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(wrk_store_login_failures(f->s, WRK_LIMIT_USER, "ann", 1099, 1000, &n, &last),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(last, 500);
    /* The window started at the first failure, at 100. */
    assert_int_equal(wrk_store_login_failures(f->s, WRK_LIMIT_USER, "ann", 1100, 1000, &n, NULL),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(wrk_store_login_failure_add(f->s, WRK_LIMIT_USER, "ann", 1100, 1000, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(wrk_store_login_failure_reset(f->s, WRK_LIMIT_USER, "ann"), 0);
    assert_int_equal(wrk_store_login_failures(f->s, WRK_LIMIT_USER, "ann", 1100, 1000, &n, NULL),
                     0);
    assert_int_equal(n, 0);
}

/* Each username ever tried leaves a row; a row whose window is over is
 * purged, so that guessing random names fills nothing for long. */
static void login_failures_are_purged_once_their_window_is_over(void **state)
{
    fixture_t *f = *state;
    char name[32];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "random-%d", i);
        assert_int_equal(wrk_store_login_failure_add(f->s, WRK_LIMIT_USER, name, i, 1000, NULL), 0);
    }
    assert_int_equal(wrk_store_login_failure_add(f->s, WRK_LIMIT_ADDR, "10.0.0.9", 900, 1000, NULL),
                     0);
    long purged = -1;
    assert_int_equal(wrk_store_login_failures_purge(f->s, 999, 1000, &purged), 0);
    assert_int_equal(purged, 0);
    assert_int_equal(wrk_store_login_failures_purge(f->s, 1025, 1000, &purged), 0);
    assert_int_equal(purged, 26); /* windows that started at 0..25 */
    assert_int_equal(wrk_store_login_failures_purge(f->s, 1899, 1000, &purged), 0);
    assert_int_equal(purged, 24);
    assert_int_equal(ts_store_int(f->target, "SELECT count(*) FROM login_failures"), 1);
    assert_int_equal(
        ts_store_int(f->target, "SELECT count(*) FROM login_failures WHERE key = '10.0.0.9'"), 1);
}

/* A connection counts the statements it ran and their time, for the
 * worker's metrics. */
static void a_connection_counts_its_statements(void **state)
{
    fixture_t *f = *state;
    wrk_store_stats_t before, after;
    wrk_store_stats(f->s, &before);
    wrk_user_t u;
    for (int i = 0; i < 10; i++)
        assert_int_equal(wrk_store_user_by_name(f->s, "ann", &u), 0);
    wrk_store_stats(f->s, &after);
    assert_int_equal(after.statements, before.statements + 10);
    assert_true(after.ns >= before.ns);
    assert_int_equal(after.busy_retries, 0);
}

/* The first worker to ask stores its fresh secret; every later one gets
 * that one. */
static void a_secret_is_made_once(void **state)
{
    fixture_t *f = *state;
    char out[65];
    assert_int_equal(wrk_store_secret(f->s, "device", "first", out, sizeof(out)), 0);
    assert_string_equal(out, "first");
    assert_int_equal(wrk_store_secret(f->s, "device", "second", out, sizeof(out)), 0);
    assert_string_equal(out, "first");
    assert_int_equal(wrk_store_secret(f->s, "other", "third", out, sizeof(out)), 0);
    assert_string_equal(out, "third");
    assert_int_equal(wrk_store_secret(f->s, "device", "", out, sizeof(out)), MC_EINVAL);
    char small[4];
    assert_int_equal(wrk_store_secret(f->s, "device", "abc", small, sizeof(small)), MC_ETOOBIG);
}

struct seen {
    int rooms, users;
    int64_t last;
};

static int on_change(void *arg, int64_t seq, enum wrk_change_kind kind, int64_t ref)
{
    struct seen *s = arg;
    (void)ref;
    assert_true(seq > s->last);
    s->last = seq;
    if (kind == WRK_CHANGE_ROOM)
        s->rooms++;
    if (kind == WRK_CHANGE_USER)
        s->users++;
    return 0;
}

static void changes_are_logged(void **state)
{
    fixture_t *f = *state;
    int64_t start;
    assert_int_equal(wrk_store_change_last(f->s, &start), 0);
    assert_int_equal(wrk_store_room_rename(f->s, f->room, "Hall"), 0);
    assert_int_equal(wrk_store_user_set_staff(f->s, f->ann, 1), 0);
    assert_int_equal(wrk_store_user_set_staff(f->s, f->ann, 1), 0); /* no change: no entry */
    assert_int_equal(wrk_store_user_set_password(f->s, f->ann, "$p", 0), 0);
    struct seen s = {0, 0, start};
    assert_int_equal(wrk_store_change_each(f->s, start, on_change, &s), 0);
    assert_int_equal(s.rooms, 1);
    assert_int_equal(s.users, 1);
}

static void presence_is_tracked_per_connection(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(wrk_store_presence_add(f->s, "ifc.a!1", f->room, f->ann), 0);
    assert_int_equal(wrk_store_presence_add(f->s, "ifc.a!1", f->room, f->ann), 0);
    assert_int_equal(wrk_store_presence_add(f->s, "ifc.a!2", f->room, f->bob), 0);
    assert_int_equal(wrk_store_presence_add(f->s, "ifc.b!1", f->room + 1, f->bob), 0);
    wrk_presence_list_t l;
    assert_int_equal(wrk_store_presence_list(f->s, f->room, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].username, "ann");
    assert_string_equal(l.items[0].channel, "ifc.a!1");
    assert_int_equal(l.items[1].is_staff, 1);
    wrk_presence_list_clear(&l);
    assert_int_equal(wrk_store_presence_remove(f->s, "ifc.a!1", f->room), 0);
    assert_int_equal(wrk_store_presence_remove(f->s, "ifc.a!2", 0), 0);
    assert_int_equal(wrk_store_presence_list(f->s, f->room, &l), 0);
    assert_int_equal(l.n, 0);
    wrk_presence_list_clear(&l);
    assert_int_equal(wrk_store_presence_list(f->s, 0, &l), 0);
    assert_int_equal(l.n, 1);
    wrk_presence_list_clear(&l);
    char longname[200];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(wrk_store_presence_add(f->s, longname, f->room, f->ann), MC_EINVAL);
}

static void presence_counts_users_once_per_room(void **state)
{
    fixture_t *f = *state;
    int first;
    int64_t r2 = f->room + 1;
    assert_int_equal(wrk_store_presence_join(f->s, "ifc.a!1", f->room, f->ann, &first), 0);
    assert_int_equal(first, 1);
    assert_int_equal(wrk_store_presence_join(f->s, "ifc.a!1", f->room, f->ann, &first), 0);
    assert_int_equal(first, 0); /* again */
    assert_int_equal(wrk_store_presence_join(f->s, "ifc.b!1", f->room, f->ann, &first), 0);
    assert_int_equal(first, 0); /* a second socket */
    assert_int_equal(wrk_store_presence_join(f->s, "ifc.a!1", r2, f->ann, &first), 0);
    assert_int_equal(first, 1); /* another room */
    assert_int_equal(wrk_store_presence_join(f->s, "ifc.a!2", f->room, f->bob, &first), 0);
    assert_int_equal(first, 1);
    wrk_presence_list_t gone;
    /* ann's first socket leaves the room: she is still there. */
    assert_int_equal(wrk_store_presence_leave(f->s, "ifc.a!1", 0, f->room, &gone), 0);
    assert_int_equal(gone.n, 0);
    wrk_presence_list_clear(&gone);
    /* Process ifc.a dies: bob has left the room, ann room 2; ann stays in the first. */
    assert_int_equal(wrk_store_presence_leave(f->s, "ifc.a!", 1, 0, &gone), 0);
    assert_int_equal(gone.n, 2);
    assert_int_equal(gone.items[0].room_id, f->room);
    assert_string_equal(gone.items[0].username, "bob");
    assert_int_equal(gone.items[1].room_id, r2);
    assert_string_equal(gone.items[1].username, "ann");
    wrk_presence_list_clear(&gone);
    wrk_presence_list_t l;
    assert_int_equal(wrk_store_presence_list(f->s, 0, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].channel, "ifc.b!1");
    wrk_presence_list_clear(&l);
    /* A prefix is a prefix, not a pattern. */
    assert_int_equal(wrk_store_presence_leave(f->s, "ifc._!", 1, 0, &gone), 0);
    assert_int_equal(gone.n, 0);
    wrk_presence_list_clear(&gone);
    assert_int_equal(wrk_store_presence_leave(f->s, "ifc.b!1", 0, 0, &gone), 0);
    assert_int_equal(gone.n, 1);
    wrk_presence_list_clear(&gone);
}

int main(void)
{
    mc_log_init("store_test", MC_LOG_ERROR);
    const struct CMUnitTest both[] = {
        TS_STORE_TEST(migrations_are_idempotent),
        TS_STORE_TEST(a_fresh_database_starts_at_version_zero),
        TS_STORE_TEST(a_newer_schema_is_refused),
        TS_STORE_TEST(users_are_added_found_and_changed),
        TS_STORE_TEST(users_are_listed),
        TS_STORE_TEST(sessions_expire_and_end),
        TS_STORE_TEST(deactivating_ends_sessions),
        TS_STORE_TEST(a_session_s_token_is_kept_hashed),
        TS_STORE_TEST(a_new_password_ends_the_other_sessions),
        TS_STORE_TEST(rooms_are_managed),
        TS_STORE_TEST(messages_are_stored_with_id_and_time),
        TS_STORE_TEST(only_those_who_may_post_store_messages),
        TS_STORE_TEST(a_replayed_client_id_is_stored_once),
        TS_STORE_TEST(edits_and_deletes),
        TS_STORE_TEST(history_queries),
        TS_STORE_TEST(since_is_capped),
        TS_STORE_TEST(deleting_a_room_deletes_its_messages),
        TS_STORE_TEST(a_batch_can_be_undone),
        TS_STORE_TEST(login_failures_are_windowed),
        TS_STORE_TEST(login_failures_are_purged_once_their_window_is_over),
        TS_STORE_TEST(a_secret_is_made_once),
        TS_STORE_TEST(a_connection_counts_its_statements),
        TS_STORE_TEST(changes_are_logged),
        TS_STORE_TEST(presence_is_tracked_per_connection),
        TS_STORE_TEST(presence_counts_users_once_per_room),
    };
    /* sqlite's own history: version 3 existed there only. */
    const struct CMUnitTest sqlite_only[] = {
        TS_STORE_TEST(old_sessions_end_by_their_rowids),
    };
    int failed = ts_store_run_both(both, sizeof(both) / sizeof(both[0]));
    failed += ts_store_run_sqlite(sqlite_only, sizeof(sqlite_only) / sizeof(sqlite_only[0]));
    return failed;
}
