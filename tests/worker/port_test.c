/* The output port (worker/port.c) in a world (tests/support/world.h): the
 * outbox publishes a batch's chat messages together, in order, before
 * anything else, and answers those the store refuses; notices can be
 * switched off. */
#include "common/clock.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/log.h"
#include "worker/port.h"
#include "tests/support/world.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void a_batch_publishes_its_messages_together_and_in_order(void **state)
{
    ts_world_t *w = *state;
    ts_sock_t a, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);

    /* Two messages in a batch wait for its end... */
    ts_ws_send_in_batch(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"one\"}");
    ts_ws_send_in_batch(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"two\"}");
    assert_false(ts_pending(w, a.channel));
    assert_false(ts_pending(w, b.channel));
    /* ...or for anything else the worker sends, which they never trail. */
    ts_ws_send_in_batch(w, &b, "{\"command\":\"who\",\"room\":1}");
    ts_expect_text_has(w, b.channel, "\"message\":\"one\"");
    ts_expect_text_has(w, b.channel, "\"message\":\"two\",\"username\":\"bob\"");
    ts_expect_text_has(w, b.channel, "{\"who\":\"1\"");
    ts_expect_text_has(w, a.channel, "\"message\":\"one\",\"username\":\"ann\"");
    ts_expect_text_has(w, a.channel, "\"message\":\"two\"");
    ts_ws_send_in_batch(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"three\"}");
    assert_false(ts_pending(w, b.channel));
    wrk_port_flush(&w->app.port);
    ts_expect_text_has(w, b.channel, "\"message\":\"three\"");
    ts_expect_text_has(w, a.channel, "\"own\":true");
}

/* In a batch, a message the store refuses is answered, naming it by its
 * client_id, and the batch's others are published; a batch that cannot be
 * stored is answered SERVER_BUSY for each of its messages. */
static void a_batch_answers_the_messages_it_could_not_store(void **state)
{
    ts_world_t *w = *state;
    ts_sock_t a, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);
    ts_world_group_add(w, "room-2", a.channel); /* a claim without the right */
    ts_ws_send_in_batch(w, &a,
                        "{\"command\":\"send\",\"room\":2,\"message\":\"in\","
                        "\"client_id\":\"c-1\"}");
    ts_ws_send_in_batch(w, &a,
                        "{\"command\":\"send\",\"room\":1,\"message\":\"ok\","
                        "\"client_id\":\"c-2\"}");
    wrk_port_flush(&w->app.port);
    ts_expect_text_has(w, a.channel, "\"message\":\"ok\"");
    ts_expect_text(w, a.channel,
                   "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"2\",\"command\":\"send\","
                   "\"client_id\":\"c-1\"}");
    ts_expect_text_has(w, b.channel, "\"message\":\"ok\"");
    assert_false(ts_pending(w, b.channel));

    /* A store that fails: a trigger behind the worker's back. */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "sqlite3 '%s' \"CREATE TRIGGER boom BEFORE INSERT ON messages WHEN NEW.body = "
             "'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END;\"",
             w->db);
    assert_int_equal(system(sql), 0);
    ts_ws_send_in_batch(w, &a,
                        "{\"command\":\"send\",\"room\":1,\"message\":\"fine\","
                        "\"client_id\":\"c-3\"}");
    ts_ws_send_in_batch(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"boom\"}");
    wrk_port_flush(&w->app.port);
    ts_expect_text(w, a.channel,
                   "{\"error\":\"SERVER_BUSY\",\"room\":\"1\",\"command\":\"send\","
                   "\"client_id\":\"c-3\"}");
    ts_expect_text(w, b.channel, "{\"error\":\"SERVER_BUSY\",\"room\":\"1\",\"command\":\"send\"}");
    assert_false(ts_pending(w, a.channel));
    assert_false(ts_pending(w, b.channel));
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(w->app.store, 1, 10, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].body, "ok");
    wrk_message_list_clear(&l);
}

/* Stores a message of user in room as a worker that stopped right after
 * its commit would leave it: stored, its room marked, never published. */
static void store_and_stop(ts_world_t *w, int64_t user, const char *body, const char *client_id,
                           const char *sender)
{
    wrk_store_t *other;
    assert_int_equal(wrk_store_open(&other, w->db, NULL), 0);
    wrk_new_message_t m = {.room_id = 1,
                           .user_id = user,
                           .body = body,
                           .body_len = strlen(body),
                           .client_id = client_id,
                           .sender = sender};
    assert_int_equal(wrk_store_messages_add(other, &m, 1, mc_now_ms(), NULL), 0);
    assert_int_equal(m.rc, 0);
    wrk_message_clear(&m.stored);
    wrk_store_close(other);
}

/* What another worker stored and left unpublished in a room goes out
 * before anything newer of the room: with the next batch, or before a
 * join, whose history holds it then. Its sender gets its own copy. */
static void messages_left_unpublished_go_out_first(void **state)
{
    ts_world_t *w = *state;
    ts_sock_t a, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);
    store_and_stop(w, a.scope.user_id, "left", "c-left", a.channel);
    ts_ws_send(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"after\"}");
    char *own = ts_next_text(w, a.channel);
    assert_non_null(strstr(own, "\"message\":\"left\""));
    assert_non_null(strstr(own, "\"own\":true"));
    free(own);
    ts_expect_text_has(w, a.channel, "\"message\":\"after\"");
    ts_expect_text_has(w, b.channel, "\"message\":\"left\"");
    ts_expect_text_has(w, b.channel, "\"message\":\"after\"");
    assert_false(ts_pending(w, a.channel));
    assert_false(ts_pending(w, b.channel));

    store_and_stop(w, b.scope.user_id, "left again", "c-again", b.channel);
    char cs[256];
    ts_sock_t s;
    ts_log_in_and_connect(w, "sue", "ifc.v!1", cs, sizeof(cs), &s);
    ts_ws_send(w, &s, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, b.channel, "\"message\":\"left again\"");
    ts_expect_text_has(w, a.channel, "\"message\":\"left again\"");
    char *join = ts_next_text(w, s.channel);
    assert_non_null(strstr(join, "\"message\":\"left again\""));
    free(join);
    /* Published once: a batch now finds nothing left. */
    ts_ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"last\"}");
    ts_expect_text_has(w, s.channel, "\"message\":\"last\"");
    assert_false(ts_pending(w, s.channel));
}

static void notices_can_be_switched_off(void **state)
{
    ts_world_t *w = *state;
    w->app.port.notify_enter_leave = 0;
    ts_sock_t a, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);
    assert_false(ts_pending(w, a.channel));
}

/* Reads what is left for channel; counts the enter (4) and leave (5)
 * notices of user among it and checks they alternate, after *last (the
 * type of the one before: 5 at first) which it updates. */
static int notices_of(ts_world_t *w, const char *channel, const char *user, int *last)
{
    char enter[128], leave[128];
    snprintf(enter, sizeof(enter),
             "{\"room\":\"1\",\"message\":null,\"username\":\"%s\",\"msg_type\":4}", user);
    snprintf(leave, sizeof(leave),
             "{\"room\":\"1\",\"message\":null,\"username\":\"%s\",\"msg_type\":5}", user);
    int n = 0;
    while (ts_pending(w, channel)) {
        char *t = ts_next_text(w, channel);
        int type = !strcmp(t, enter) ? 4 : !strcmp(t, leave) ? 5 : 0;
        free(t);
        if (!type)
            continue;
        assert_int_not_equal(type, *last);
        *last = type;
        n++;
    }
    return n;
}

static void a_user_flapping_in_a_room_is_announced_a_bounded_number_of_times(void **state)
{
    ts_world_t *w = *state;
    char ca[256], cb[256], cs[256];
    ts_sock_t a, b, s;
    ts_log_in_and_connect(w, "ann", "ifc.t!1", ca, sizeof(ca), &a);
    ts_log_in_and_connect(w, "bob", "ifc.u!1", cb, sizeof(cb), &b);
    ts_log_in_and_connect(w, "sue", "ifc.u!2", cs, sizeof(cs), &s);
    ts_ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, a.channel, "{\"join\":\"1\"");
    /* 100 join and leave pairs by one socket: each answered, but the room
     * hears at most twice the notice burst (the fake bucket never refills). */
    int last = 5, n = 0;
    for (int i = 0; i < 100; i++) {
        ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
        ts_ws_send(w, &b, "{\"command\":\"leave\",\"room\":1}");
        int replies = 0;
        while (ts_pending(w, b.channel)) {
            char *t = ts_next_text(w, b.channel);
            replies += !strncmp(t, "{\"join\":\"1\"", 9) || !strcmp(t, "{\"leave\":\"1\"}");
            free(t);
        }
        assert_int_equal(replies, 2);
        n += notices_of(w, a.channel, "bob", &last);
        assert_true(n <= 2 * 10);
    }
    assert_true(n >= 2);
    assert_int_equal(last, 5); /* the room does not see bob as there */
    /* Someone else entering and leaving is announced both times. */
    ts_ws_send(w, &s, "{\"command\":\"join\",\"room\":1}");
    ts_ws_send(w, &s, "{\"command\":\"leave\",\"room\":1}");
    last = 5;
    assert_int_equal(notices_of(w, a.channel, "sue", &last), 2);
}

/* A send checks its user with the insert: one deactivated since its socket
 * opened (before the change log closes the socket) stores nothing, and is
 * told so. */
static void a_deactivated_user_s_send_stores_nothing(void **state)
{
    ts_world_t *w = *state;
    ts_sock_t a, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);
    ts_ctl(w, "", "user deactivate ann");
    int before = ts_answers(w, a.channel);
    ts_ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"gone\"}");
    ts_expect_text(w, a.channel, "{\"error\":\"USER_HAS_TO_LOGIN\"}");
    ts_expect_close(w, a.channel, MC_CLOSE_SESSION_ENDED);
    /* The store refused it: the error is its one answer (consumer_test.c:
     * every_command_is_answered_once). */
    assert_int_equal(ts_answers(w, a.channel), before + 1);
    assert_false(ts_pending(w, b.channel));
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(w->app.store, 1, 10, &l), 0);
    assert_int_equal(l.n, 0);
    wrk_message_list_clear(&l);
}

#define T(name) cmocka_unit_test_setup_teardown(name, ts_world_setup, ts_world_teardown)

int main(void)
{
    mc_log_init("port_test", MC_LOG_OFF);
    const struct CMUnitTest tests[] = {
        T(a_batch_publishes_its_messages_together_and_in_order),
        T(a_batch_answers_the_messages_it_could_not_store),
        T(messages_left_unpublished_go_out_first),
        T(notices_can_be_switched_off),
        T(a_user_flapping_in_a_room_is_announced_a_bounded_number_of_times),
        T(a_deactivated_user_s_send_stores_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
