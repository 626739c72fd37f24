/* Logins, sessions and CSRF (worker/session.c), through the views and the
 * consumer of a world (tests/support/world.h). */
#include "common/envelope.h"
#include "common/error.h"
#include "common/log.h"
#include "tests/support/world.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void a_wrong_password_shows_an_error_and_sets_no_session(void **state)
{
    ts_world_t *w = *state;
    ts_http_reply_t r;
    char csrf[64], cookie[128];
    ts_http(w, "GET", "/accounts/login/", "", NULL, NULL, "", &r);
    assert_int_equal(ts_cookie_value(&r, "csrftoken", csrf, sizeof(csrf)), 0);
    free(r.body);
    snprintf(cookie, sizeof(cookie), "csrftoken=%s", csrf);
    char body[200];
    snprintf(body, sizeof(body), "username=ann&password=nope&csrfmiddlewaretoken=%s", csrf);
    ts_http(w, "POST", "/accounts/login/", "", cookie, NULL, body, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "Please enter a correct username and password"));
    assert_null(strstr(r.cookies, "sessionid"));
    free(r.body);
    /* An unknown user reads the same. */
    snprintf(body, sizeof(body), "username=zed&password=nope&csrfmiddlewaretoken=%s", csrf);
    ts_http(w, "POST", "/accounts/login/", "", cookie, NULL, body, &r);
    assert_non_null(strstr(r.body, "Please enter a correct username and password"));
    free(r.body);
}

static void login_without_csrf_is_forbidden(void **state)
{
    ts_world_t *w = *state;
    ts_http_reply_t r;
    ts_http(w, "POST", "/accounts/login/", "", NULL, NULL, "username=ann&password=pw-ann", &r);
    assert_int_equal(r.status, 403);
    free(r.body);
    ts_http(w, "POST", "/accounts/login/", "", "csrftoken=0123456789abcdef0123456789abcdef", NULL,
            "username=ann&password=pw-ann&csrfmiddlewaretoken=0123456789abcdef0123456789abcdee",
            &r);
    assert_int_equal(r.status, 403);
    free(r.body);
    /* The header works as well as the field. */
    ts_http(w, "POST", "/accounts/login/", "", "csrftoken=0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef", "username=ann&password=pw-ann", &r);
    assert_int_equal(r.status, 302);
    free(r.body);
}

static void too_many_failures_lock_the_login(void **state)
{
    ts_world_t *w = *state;
    const char *cookie = "csrftoken=0123456789abcdef0123456789abcdef";
    ts_http_reply_t r;
    for (int i = 0; i < 3; i++) {
        ts_http(w, "POST", "/accounts/login/", "", cookie, NULL,
                "username=bob&password=bad&csrfmiddlewaretoken=0123456789abcdef0123456789abcdef",
                &r);
        assert_int_equal(r.status, 200);
        free(r.body);
    }
    ts_http(w, "POST", "/accounts/login/", "", cookie, NULL,
            "username=bob&password=pw-bob&csrfmiddlewaretoken=0123456789abcdef0123456789abcdef",
            &r);
    assert_int_equal(r.status, 429);
    assert_non_null(strstr(r.body, "Too many failed logins"));
    assert_null(strstr(r.cookies, "sessionid"));
    free(r.body);
}

static void a_socket_without_a_session_is_refused(void **state)
{
    ts_world_t *w = *state;
    ts_ws_open(w, NULL, "ifc.t!9");
    ts_expect_close(w, "ifc.t!9", 1008);
}

static void a_deactivated_user_is_refused_at_once(void **state)
{
    ts_world_t *w = *state;
    char ca[256];
    ts_login(w, "ann", "pw-ann", ca, sizeof(ca));
    ts_sock_t a;
    ts_ws_connect(w, ca, "ifc.t!1", &a);
    ts_ctl(w, "", "user deactivate ann");
    ts_ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text(w, a.channel, "{\"error\":\"USER_HAS_TO_LOGIN\"}");
    mc_envelope_t env;
    ts_next_for(w, a.channel, &env);
    assert_int_equal(env.type, MC_ENV_WS_CLOSE);
    mc_envelope_clear(&env);
}

/* A form body is bytes: a NUL in it belongs to the field it is in, so a
 * password with a NUL after the right one is a wrong password, not the
 * right one cut short. */
static void a_nul_in_a_form_body_is_part_of_its_field(void **state)
{
    ts_world_t *w = *state;
    const char *csrf = "0123456789abcdef0123456789abcdef";
    const char *cookie = "csrftoken=0123456789abcdef0123456789abcdef";
    static const char body[] = "username=ann&password=pw-ann\0x&next=%2F";
    ts_http_reply_t r;
    ts_http_body(w, "POST", "/accounts/login/", "", cookie, csrf, body, sizeof(body) - 1, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "Please enter a correct username and password"));
    assert_null(strstr(r.cookies, "sessionid"));
    free(r.body);
    static const char right[] = "username=ann&password=pw-ann&next=%2F";
    ts_http_body(w, "POST", "/accounts/login/", "", cookie, csrf, right, sizeof(right) - 1, &r);
    assert_int_equal(r.status, 302);
    free(r.body);
}

#define T(name) cmocka_unit_test_setup_teardown(name, ts_world_setup, ts_world_teardown)

int main(void)
{
    mc_log_init("session_test", MC_LOG_OFF);
    const struct CMUnitTest tests[] = {
        T(a_wrong_password_shows_an_error_and_sets_no_session),
        T(login_without_csrf_is_forbidden),
        T(too_many_failures_lock_the_login),
        T(a_socket_without_a_session_is_refused),
        T(a_deactivated_user_is_refused_at_once),
        T(a_nul_in_a_form_body_is_part_of_its_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
