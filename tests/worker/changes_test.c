/* Changes made elsewhere (worker/changes.c) reaching the sockets of a world
 * (tests/support/world.h): logouts, deactivations, room changes, dead
 * interfaces. */
#include "common/clock.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/log.h"
#include "common/wire.h"
#include "worker/changes.h"
#include "worker/token.h"
#include "tests/support/world.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

/* As Django's: a logout ends one session. ann logs in on a phone and on a
 * desktop; logging out on the phone closes the phone's socket only. */
static void logout_ends_that_session_and_closes_its_sockets_only(void **state)
{
    ts_world_t *w = *state;
    char phone[256], desk[256];
    ts_sock_t p, d;
    ts_log_in_and_connect(w, "ann", "ifc.t!1", phone, sizeof(phone), &p);
    ts_log_in_and_connect(w, "ann", "ifc.u!1", desk, sizeof(desk), &d);
    char csrf[40];
    sscanf(phone, "csrftoken=%32s", csrf);
    char body[100];
    snprintf(body, sizeof(body), "csrfmiddlewaretoken=%s", csrf);
    ts_http_reply_t r;
    ts_http(w, "POST", "/accounts/logout/", "", phone, NULL, body, &r);
    assert_int_equal(r.status, 302);
    assert_non_null(strstr(r.cookies, "sessionid=; Max-Age=0"));
    free(r.body);
    ts_http(w, "GET", "/", "", phone, NULL, "", &r);
    assert_int_equal(r.status, 302);
    free(r.body);
    ts_http(w, "GET", "/", "", desk, NULL, "", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    ts_expect_close(w, p.channel, MC_CLOSE_SESSION_ENDED);
    assert_false(ts_pending(w, d.channel));
    /* The desktop's socket goes on. */
    ts_ws_send(w, &d, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, d.channel, "{\"join\":\"1\"");
    /* No group the change log could name holds a token. */
    char token[64];
    const char *at = strstr(phone, "sessionid=");
    assert_non_null(at);
    snprintf(token, sizeof(token), "%s", at + strlen("sessionid="));
    for (size_t i = 0; i < w->fake.nmembers; i++)
        assert_null(strstr(w->fake.members[i].group, token));
}

static void deactivating_closes_every_socket_of_the_user(void **state)
{
    ts_world_t *w = *state;
    const char *who[] = {"ann", "ann", "bob"}; /* ann with two sessions */
    const char *channels[] = {"ifc.t!1", "ifc.u!1", "ifc.t!2"};
    ts_sock_t s[3];
    for (int i = 0; i < 3; i++) {
        char cookie[256];
        ts_log_in_and_connect(w, who[i], channels[i], cookie, sizeof(cookie), &s[i]);
    }
    ts_ctl(w, "", "user deactivate ann");
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    ts_expect_close(w, s[0].channel, MC_CLOSE_SESSION_ENDED);
    ts_expect_close(w, s[1].channel, MC_CLOSE_SESSION_ENDED);
    assert_false(ts_pending(w, s[2].channel));
}

static void a_dead_interface_s_sockets_leave_their_rooms(void **state)
{
    ts_world_t *w = *state;
    char ca[256], cb[256];
    ts_login(w, "ann", "pw-ann", ca, sizeof(ca));
    ts_login(w, "bob", "pw-bob", cb, sizeof(cb));
    ts_sock_t a1, a2, b, b2;
    ts_ws_connect(w, ca, "ifc.dead!1", &a1);
    ts_ws_connect(w, ca, "ifc.live!2", &a2);
    ts_ws_connect(w, cb, "ifc.dead!3", &b);
    ts_ws_connect(w, cb, "ifc.live!4", &b2);
    w->app.port.notify_enter_leave = 0;
    ts_ws_send(w, &b2, "{\"command\":\"join\",\"room\":1}");
    ts_ws_send(w, &a1, "{\"command\":\"join\",\"room\":1}");
    ts_ws_send(w, &a2, "{\"command\":\"join\",\"room\":1}");
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
    ts_ws_send(w, &b2, "{\"command\":\"leave\",\"room\":1}");
    ts_ws_send(w, &a1, "{\"command\":\"join\",\"room\":1}");
    w->app.port.notify_enter_leave = 1;
    w->fake.read = w->fake.nout;
    /* The fake keeps no group for the dead process's sockets any more. */
    ts_world_group_discard(w, "room-1", a1.channel);
    ts_world_group_discard(w, "room-1", b.channel);
    assert_int_equal(wrk_changes_process_gone(&w->app, "ifc.dead"), 0);
    /* bob had only the dead socket in the room: he left; ann is still in. */
    ts_expect_text(w, a2.channel,
                   "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":5}");
    assert_false(ts_pending(w, a2.channel));
    ts_ws_send(w, &a2, "{\"command\":\"who\",\"room\":1}");
    ts_expect_text(w, a2.channel, "{\"who\":\"1\",\"members\":[\"ann\"]}");
    assert_int_equal(wrk_changes_process_gone(&w->app, "ifc.dead"), 0); /* again: nothing */
    assert_false(ts_pending(w, a2.channel));
}

static void room_changes_reach_sockets(void **state)
{
    ts_world_t *w = *state;
    char ca[256], cs[256];
    ts_login(w, "ann", "pw-ann", ca, sizeof(ca));
    ts_login(w, "sue", "pw-sue", cs, sizeof(cs));
    ts_sock_t a, s;
    ts_ws_connect(w, ca, "ifc.t!1", &a);
    ts_ws_connect(w, cs, "ifc.t!2", &s);
    w->app.port.notify_enter_leave = 0;
    ts_ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    ts_ws_send(w, &s, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, a.channel, "{\"join\"");
    ts_expect_text_has(w, s.channel, "{\"join\"");
    /* An admin makes the lobby staff-only: ann is taken out, sue stays. */
    ts_ctl(w, "", "room staff-only 1 on");
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    ts_expect_text(w, a.channel, "{\"rooms\":[]}");
    ts_expect_text(w, s.channel,
                   "{\"rooms\":[{\"id\":\"1\",\"title\":\"Lobby\",\"staff_only\":true},"
                   "{\"id\":\"2\",\"title\":\"Staff\",\"staff_only\":true}]}");
    ts_expect_text(w, a.channel, "{\"leave\":\"1\"}");
    assert_false(ts_pending(w, s.channel));
    /* A deleted room: everyone leaves. */
    ts_ctl(w, "", "room rm 1");
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    ts_expect_text_has(w, s.channel, "{\"rooms\":[{\"id\":\"2\"");
    ts_expect_text(w, s.channel, "{\"leave\":\"1\"}");
    /* A user losing staff has its sockets closed: still logged in, with
     * other rights. */
    ts_ctl(w, "", "user staff sue off");
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    ts_expect_close(w, s.channel, MC_CLOSE_RIGHTS_CHANGED);
    /* Nothing new: nothing sent. */
    size_t before = w->fake.nout;
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    assert_int_equal(w->fake.nout, before);
}

/* A user made staff keeps the session: the socket closes with "rights
 * changed" and the page reconnects at once, with a staff scope that sees
 * the staff rooms. */
static void gaining_staff_reconnects_with_a_fresh_scope(void **state)
{
    ts_world_t *w = *state;
    char cookie[256];
    ts_sock_t a;
    ts_log_in_and_connect(w, "ann", "ifc.t!1", cookie, sizeof(cookie), &a);
    assert_false(a.scope.is_staff);
    ts_ctl(w, "", "user staff ann on");
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    ts_expect_close(w, a.channel, MC_CLOSE_RIGHTS_CHANGED);
    ts_ws_disconnect(w, &a);
    ts_ws_open(w, cookie, "ifc.t!2");
    mc_envelope_t env;
    ts_next_for(w, "ifc.t!2", &env);
    assert_int_equal(env.type, MC_ENV_WS_ACCEPT);
    assert_true(env.scope.is_staff);
    mc_envelope_clear(&env);
    ts_expect_text_has(w, "ifc.t!2", "\"title\":\"Staff\"");
}

/* More ended sessions at once than one round holds (a burst of logouts),
 * then a staff member demoted: every change is handled, the demotion too,
 * in the same poll. Before, the poll handled 128 and skipped the rest,
 * and sue kept hearing the staff room. */
static void a_burst_of_changes_is_handled_to_the_last(void **state)
{
    ts_world_t *w = *state;
    char cookie[256];
    ts_sock_t s;
    ts_log_in_and_connect(w, "sue", "ifc.t!1", cookie, sizeof(cookie), &s);
    ts_ws_send(w, &s, "{\"command\":\"join\",\"room\":2}");
    ts_expect_text_has(w, s.channel, "{\"join\":\"2\"");
    wrk_user_t ann;
    assert_int_equal(wrk_store_user_by_name(w->app.store, "ann", &ann), 0);
    char token[40];
    for (int i = 0; i < 300; i++) {
        snprintf(token, sizeof(token), "burst-%d", i);
        assert_int_equal(wrk_store_session_add(w->app.store, token, ann.id, INT64_MAX), 0);
        assert_int_equal(wrk_store_session_delete(w->app.store, token), 0);
    }
    ts_ctl(w, "", "user staff sue off");
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    ts_expect_close(w, s.channel, MC_CLOSE_RIGHTS_CHANGED);
}

/* A session that expires ends like any other: its sockets close, and the
 * page goes to the login form. Before, they stayed open for as long as
 * the socket lived. */
static void an_expired_session_s_sockets_close(void **state)
{
    ts_world_t *w = *state;
    wrk_user_t ann;
    assert_int_equal(wrk_store_user_by_name(w->app.store, "ann", &ann), 0);
    char token[WRK_TOKEN_HEX_LEN + 1], cookie[64];
    assert_int_equal(wrk_token_new(token), 0);
    int64_t expires = mc_now_ms() + 200;
    assert_int_equal(wrk_store_session_add(w->app.store, token, ann.id, expires), 0);
    snprintf(cookie, sizeof(cookie), "sessionid=%s", token);
    ts_sock_t a;
    ts_ws_connect(w, cookie, "ifc.t!1", &a);
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    assert_false(ts_pending(w, a.channel));
    /* The poll after the expiry: the event waited for is the clock's. */
    while (mc_now_ms() <= expires) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    ts_expect_close(w, a.channel, MC_CLOSE_SESSION_ENDED);
}

/* A password reset by an admin (chatctl) ends every session of the user:
 * a stolen cookie does not outlive it. Before, every session went on for
 * up to two weeks. */
static void a_password_reset_ends_every_session(void **state)
{
    ts_world_t *w = *state;
    char phone[256], desk[256], bob[256];
    ts_sock_t p, d, b;
    ts_log_in_and_connect(w, "ann", "ifc.t!1", phone, sizeof(phone), &p);
    ts_log_in_and_connect(w, "ann", "ifc.t!2", desk, sizeof(desk), &d);
    ts_log_in_and_connect(w, "bob", "ifc.t!3", bob, sizeof(bob), &b);
    ts_ctl(w, "new-pw\\n", "user passwd ann");
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    ts_expect_close(w, p.channel, MC_CLOSE_SESSION_ENDED);
    ts_expect_close(w, d.channel, MC_CLOSE_SESSION_ENDED);
    assert_false(ts_pending(w, b.channel));
    assert_int_equal(ts_status(w, "GET", "/", phone, ""), 302);
    assert_int_equal(ts_status(w, "GET", "/", bob, ""), 200);
}

/* Staff changing their own password in the staff API stay logged in where
 * they did it; their other sessions end. */
static void one_s_own_new_password_keeps_the_session_that_set_it(void **state)
{
    ts_world_t *w = *state;
    char here[256], there[256];
    ts_sock_t h, t;
    ts_log_in_and_connect(w, "sue", "ifc.t!1", here, sizeof(here), &h);
    ts_log_in_and_connect(w, "sue", "ifc.t!2", there, sizeof(there), &t);
    assert_int_equal(ts_status(w, "POST", "/admin/api/users/3", here, "{\"password\":\"pw-new\"}"),
                     200);
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    ts_expect_close(w, t.channel, MC_CLOSE_SESSION_ENDED);
    assert_false(ts_pending(w, h.channel));
    assert_int_equal(ts_status(w, "GET", "/admin/", here, ""), 200);
    assert_int_equal(ts_status(w, "GET", "/admin/", there, ""), 302);
}

#define T(name) cmocka_unit_test_setup_teardown(name, ts_world_setup, ts_world_teardown)

int main(void)
{
    mc_log_init("changes_test", MC_LOG_OFF);
    const struct CMUnitTest tests[] = {
        T(logout_ends_that_session_and_closes_its_sockets_only),
        T(deactivating_closes_every_socket_of_the_user),
        T(a_dead_interface_s_sockets_leave_their_rooms),
        T(room_changes_reach_sockets),
        T(gaining_staff_reconnects_with_a_fresh_scope),
        T(a_burst_of_changes_is_handled_to_the_last),
        T(an_expired_session_s_sockets_close),
        T(a_password_reset_ends_every_session),
        T(one_s_own_new_password_keeps_the_session_that_set_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
