/* wrk_store_copy: a sqlite store copied into an empty store of the backend
 * under test (sqlite, then PostgreSQL) reads the same, call for call, and
 * goes on from where the original was. */
#include "common/error.h"
#include "common/log.h"
#include "tests/support/store_fixture.h"
#include "worker/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef ts_store_t fixture_t;

/* What the source holds, beyond the fixture's ann, bob and Lobby. */
typedef struct source {
    wrk_store_t *s;
    int64_t carl, staff_room, gone_room, edited, deleted, last_message, whisper, gone_session;
} source_t;

static void fill(fixture_t *f, source_t *src)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/source.sqlite3", f->dir);
    assert_int_equal(wrk_store_open(&src->s, path, NULL), 0);
    wrk_store_t *s = src->s;
    assert_int_equal(wrk_store_migrate(s, NULL, NULL), 0);
    int64_t ann, bob, lobby;
    assert_int_equal(wrk_store_user_add(s, "ann", "$argon2id$v=19$ann", 0, &ann), 0);
    assert_int_equal(wrk_store_user_add(s, "bob", "$argon2id$v=19$bob", 1, &bob), 0);
    assert_int_equal(wrk_store_user_add(s, "carl", "$argon2id$v=19$carl", 0, &src->carl), 0);
    assert_int_equal(wrk_store_user_set_active(s, src->carl, 0), 0);
    assert_int_equal(wrk_store_user_set_superuser(s, bob, 1), 0);
    char secret[64];
    assert_int_equal(wrk_store_secret(s, "device-cookie-key", "k3y", secret, sizeof(secret)), 0);
    assert_int_equal(wrk_store_room_add(s, "Lobby", 0, &lobby), 0);
    assert_int_equal(wrk_store_room_add(s, "Staff", 1, &src->staff_room), 0);
    assert_int_equal(wrk_store_room_add(s, "Gone", 0, &src->gone_room), 0);
    assert_int_equal(wrk_store_room_delete(s, src->gone_room), 0);
    /* 2,500 messages: the copy reads them in pages. */
    assert_int_equal(wrk_store_batch_begin(s), 0);
    for (int i = 0; i < 2500; i++) {
        char body[32], cid[16];
        snprintf(body, sizeof(body), "message %d", i);
        snprintf(cid, sizeof(cid), "c%d", i);
        wrk_message_t m;
        /* ann, who is no staff, writes in the lobby only. */
        assert_int_equal(wrk_store_message_add(s, i % 3 ? lobby : src->staff_room,
                                               i % 2 && i % 3 ? ann : bob, body, strlen(body),
                                               i % 5 ? cid : NULL, 1000 + i, &m, NULL),
                         0);
        if (i == 10)
            src->edited = m.id;
        if (i == 11)
            src->deleted = m.id;
        src->last_message = m.id;
        wrk_message_clear(&m);
    }
    assert_int_equal(wrk_store_batch_end(s, 1), 0);
    assert_int_equal(wrk_store_message_edit(s, src->edited, "edited", 6, 9000), 0);
    assert_int_equal(wrk_store_message_delete(s, src->deleted), 0);
    assert_int_equal(wrk_store_whisper_add(s, ann, bob, "psst", 4, NULL, 5000, NULL, NULL), 0);
    wrk_whisper_t w;
    assert_int_equal(wrk_store_whisper_add(s, bob, ann, "what", 4, "w1", 6000, &w, NULL), 0);
    src->whisper = w.id;
    wrk_whisper_clear(&w);
    assert_int_equal(wrk_store_session_add(s, "token-ann", ann, INT64_MAX), 0);
    assert_int_equal(wrk_store_session_add(s, "token-gone", bob, INT64_MAX), 0);
    wrk_user_t u;
    assert_int_equal(wrk_store_session_user(s, "token-gone", 0, &u, &src->gone_session), 0);
    assert_int_equal(wrk_store_session_delete(s, "token-gone"), 0);
    /* Presence and login failures are of the moment: not copied. */
    assert_int_equal(wrk_store_presence_add(s, "ifc.a!1", lobby, ann), 0);
    assert_int_equal(wrk_store_login_failure_add(s, WRK_LIMIT_USER, "ann", 1, 60000, NULL), 0);
}

static int list_user(void *arg, const wrk_user_t *u)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 1024 - n, "%lld %s %d %d %d;", (long long)u->id, u->username, u->is_staff,
             u->is_active, u->is_superuser);
    return 0;
}

static int list_room(void *arg, const wrk_room_t *r)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 1024 - n, "%lld %s %d;", (long long)r->id, r->title, r->staff_only);
    return 0;
}

static void same_messages(const wrk_message_list_t *a, const wrk_message_list_t *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->truncated, b->truncated);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->items[i].id, b->items[i].id);
        assert_int_equal(a->items[i].room_id, b->items[i].room_id);
        assert_string_equal(a->items[i].username, b->items[i].username);
        assert_string_equal(a->items[i].body, b->items[i].body);
        assert_int_equal(a->items[i].created_ms, b->items[i].created_ms);
        assert_int_equal(a->items[i].edited_ms, b->items[i].edited_ms);
    }
}

/* Every read of the store's contract answers the same on both. */
static void same_reads(wrk_store_t *a, wrk_store_t *b, const source_t *src)
{
    char la[1024] = "", lb[1024] = "";
    assert_int_equal(wrk_store_user_each(a, list_user, la), 0);
    assert_int_equal(wrk_store_user_each(b, list_user, lb), 0);
    assert_string_equal(la, lb);
    la[0] = lb[0] = '\0';
    assert_int_equal(wrk_store_room_each(a, list_room, la), 0);
    assert_int_equal(wrk_store_room_each(b, list_room, lb), 0);
    assert_string_equal(la, lb);
    const char *names[] = {"ann", "bob", "carl"};
    for (size_t i = 0; i < 3; i++) {
        wrk_user_t ua, ub;
        assert_int_equal(wrk_store_user_by_name(a, names[i], &ua), 0);
        assert_int_equal(wrk_store_user_by_name(b, names[i], &ub), 0);
        assert_string_equal(ua.password, ub.password);
        assert_int_equal(ua.is_active, ub.is_active);
    }
    for (int64_t room = 1; room <= src->staff_room; room++) {
        wrk_message_list_t ma, mb;
        assert_int_equal(wrk_store_messages_since(a, room, 0, WRK_STORE_SINCE_MAX, &ma), 0);
        assert_int_equal(wrk_store_messages_since(b, room, 0, WRK_STORE_SINCE_MAX, &mb), 0);
        same_messages(&ma, &mb);
        wrk_message_list_clear(&ma);
        wrk_message_list_clear(&mb);
        assert_int_equal(wrk_store_messages_before(a, room, src->last_message - 700, 300, &ma), 0);
        assert_int_equal(wrk_store_messages_before(b, room, src->last_message - 700, 300, &mb), 0);
        same_messages(&ma, &mb);
        wrk_message_list_clear(&ma);
        wrk_message_list_clear(&mb);
    }
    char secret[64];
    assert_int_equal(wrk_store_secret(b, "device-cookie-key", "other", secret, sizeof(secret)), 0);
    assert_string_equal(secret, "k3y");
    wrk_message_t m;
    assert_int_equal(wrk_store_message_get(b, src->deleted, &m), 0);
    assert_int_equal(m.deleted, 1);
    assert_string_equal(m.body, "");
    wrk_message_clear(&m);
    assert_int_equal(wrk_store_message_get(b, src->edited, &m), 0);
    assert_string_equal(m.body, "edited");
    assert_int_equal(m.edited_ms, 9000);
    wrk_message_clear(&m);
    wrk_whisper_list_t wa, wb;
    assert_int_equal(wrk_store_whispers_since(a, 1, 0, 10, &wa), 0);
    assert_int_equal(wrk_store_whispers_since(b, 1, 0, 10, &wb), 0);
    assert_int_equal(wa.n, 2);
    assert_int_equal(wb.n, wa.n);
    for (size_t i = 0; i < wa.n; i++) {
        assert_int_equal(wa.items[i].id, wb.items[i].id);
        assert_string_equal(wa.items[i].from, wb.items[i].from);
        assert_string_equal(wa.items[i].body, wb.items[i].body);
        assert_int_equal(wa.items[i].created_ms, wb.items[i].created_ms);
    }
    wrk_whisper_list_clear(&wa);
    wrk_whisper_list_clear(&wb);
    wrk_user_t ua, ub;
    int64_t sa, sb;
    assert_int_equal(wrk_store_session_user(a, "token-ann", 0, &ua, &sa), 0);
    assert_int_equal(wrk_store_session_user(b, "token-ann", 0, &ub, &sb), 0);
    assert_int_equal(ua.id, ub.id);
    assert_int_equal(sa, sb);
    assert_int_equal(wrk_store_session_user(b, "token-gone", 0, &ub, NULL), MC_ENOTFOUND);
}

/* The copy goes on where the source was: no id handed out before (even
 * of a thing deleted) is given again, and a replayed send is still known. */
static void goes_on(wrk_store_t *b, const source_t *src)
{
    int64_t id;
    assert_int_equal(wrk_store_room_add(b, "New", 0, &id), 0);
    assert_true(id > src->gone_room);
    assert_int_equal(wrk_store_user_add(b, "dora", "$h", 0, &id), 0);
    assert_true(id > src->carl);
    wrk_whisper_t w;
    int dup = 0;
    assert_int_equal(wrk_store_whisper_add(b, 1, 2, "x", 1, NULL, 1, &w, NULL), 0);
    assert_true(w.id > src->whisper);
    wrk_whisper_clear(&w);
    /* bob's whisper named w1 is known: sent again, it is the one copied. */
    assert_int_equal(wrk_store_whisper_add(b, 2, 1, "what", 4, "w1", 1, &w, &dup), 0);
    assert_int_equal(dup, 1);
    assert_int_equal(w.id, src->whisper);
    wrk_whisper_clear(&w);
    assert_int_equal(wrk_store_session_add(b, "token-new", 1, INT64_MAX), 0);
    wrk_user_t u;
    assert_int_equal(wrk_store_session_user(b, "token-new", 0, &u, &id), 0);
    assert_true(id > src->gone_session);
    wrk_message_t m;
    assert_int_equal(wrk_store_message_add(b, 1, 1, "again", 5, "c1", 1, &m, &dup), 0);
    assert_int_equal(dup, 1);
    assert_string_equal(m.body, "message 1");
    wrk_message_clear(&m);
    assert_int_equal(wrk_store_message_add(b, 1, 1, "new", 3, "c-new", 1, &m, &dup), 0);
    assert_int_equal(dup, 0);
    assert_true(m.id > src->last_message);
    wrk_message_clear(&m);
    /* Workers starting on the copy have no change of the copy to react to. */
    int64_t from, to;
    assert_int_equal(wrk_store_change_claim(b, &from, &to), 0);
    assert_true(to > from); /* the new room, added above */
    assert_int_equal(to - from, 1);
}

/* A new store of the backend under test, migrated or not. */
static wrk_store_t *open_target(fixture_t *f, int migrate)
{
    char target[192];
    ts_store_fresh(f, 0, target, sizeof(target));
    wrk_store_t *to;
    assert_int_equal(wrk_store_open(&to, target, NULL), 0);
    if (migrate)
        assert_int_equal(wrk_store_migrate(to, NULL, NULL), 0);
    return to;
}

static int64_t progress_calls;

static void on_progress(void *arg, const char *table, int64_t done, int64_t total)
{
    (void)arg, (void)table;
    assert_true(done <= total);
    progress_calls++;
}

static void a_copy_reads_the_same_and_goes_on(void **state)
{
    fixture_t *f = *state;
    source_t src = {0};
    fill(f, &src);
    wrk_store_t *to = open_target(f, 1);
    wrk_store_copy_counts_t n;
    progress_calls = 0;
    assert_int_equal(wrk_store_copy(src.s, to, on_progress, NULL, &n), 0);
    assert_int_equal(n.users, 3);
    assert_int_equal(n.rooms, 2);
    assert_int_equal(n.sessions, 1);
    assert_int_equal(n.messages, 2500);
    assert_int_equal(n.whispers, 2);
    assert_int_equal(n.secrets, 1);
    assert_true(progress_calls >= 7); /* messages come in three pages */
    same_reads(src.s, to, &src);
    wrk_presence_list_t p;
    assert_int_equal(wrk_store_presence_list(to, 0, &p), 0);
    assert_int_equal(p.n, 0);
    wrk_presence_list_clear(&p);
    long failures;
    assert_int_equal(wrk_store_login_failures(to, WRK_LIMIT_USER, "ann", 2, 60000, &failures, NULL),
                     0);
    assert_int_equal(failures, 0);
    /* And back again, into sqlite. */
    char path[128];
    snprintf(path, sizeof(path), "%s/back.sqlite3", f->dir);
    wrk_store_t *back;
    assert_int_equal(wrk_store_open(&back, path, NULL), 0);
    assert_int_equal(wrk_store_migrate(back, NULL, NULL), 0);
    assert_int_equal(wrk_store_copy(to, back, NULL, NULL, &n), 0);
    same_reads(src.s, back, &src);
    goes_on(to, &src);
    goes_on(back, &src);
    wrk_store_close(back);
    wrk_store_close(to);
    wrk_store_close(src.s);
}

/* The fixture's store holds users and a room: nothing is written there. */
static void a_copy_refuses_a_store_that_is_not_empty(void **state)
{
    fixture_t *f = *state;
    source_t src = {0};
    fill(f, &src);
    wrk_store_copy_counts_t n;
    assert_int_equal(wrk_store_copy(src.s, f->s, NULL, NULL, &n), MC_EEXIST);
    assert_non_null(strstr(wrk_store_errmsg(f->s), "not empty (it holds users, rooms)"));
    assert_int_equal(n.users, 0);
    char list[1024] = "";
    assert_int_equal(wrk_store_user_each(f->s, list_user, list), 0);
    assert_string_equal(list, "1 ann 0 1 0;2 bob 1 1 0;");
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(f->s, f->room, 10, &l), 0);
    assert_int_equal(l.n, 0);
    wrk_message_list_clear(&l);
    wrk_store_close(src.s);
}

static void a_copy_needs_migrated_stores(void **state)
{
    fixture_t *f = *state;
    source_t src = {0};
    fill(f, &src);
    wrk_store_t *to = open_target(f, 0);
    wrk_store_copy_counts_t n;
    assert_int_equal(wrk_store_copy(src.s, to, NULL, NULL, &n), MC_EINVAL);
    assert_non_null(strstr(wrk_store_errmsg(to), "migrate"));
    wrk_store_close(to);
    wrk_store_close(src.s);
}

int main(void)
{
    mc_log_init("store_copy_test", MC_LOG_ERROR);
    const struct CMUnitTest both[] = {
        TS_STORE_TEST(a_copy_reads_the_same_and_goes_on),
        TS_STORE_TEST(a_copy_refuses_a_store_that_is_not_empty),
        TS_STORE_TEST(a_copy_needs_migrated_stores),
    };
    return ts_store_run_both(both, sizeof(both) / sizeof(both[0]));
}
