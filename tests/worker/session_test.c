/* Logins, sessions and CSRF (worker/session.c), through the views and the
 * consumer of a world (tests/support/world.h). */
#include "common/envelope.h"
#include "common/error.h"
#include "common/log.h"
#include "common/wire.h"
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
    ts_expect_close(w, a.channel, MC_CLOSE_SESSION_ENDED);
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

/* Logs ann in with the login form; r gets the answer to the POST. The
 * csrftoken cookie is sent under name. */
static void log_in_as_ann(ts_world_t *w, const char *csrf_cookie_name, ts_http_reply_t *r)
{
    const char *csrf = "0123456789abcdef0123456789abcdef";
    char cookie[128], body[160];
    snprintf(cookie, sizeof(cookie), "%s=%s", csrf_cookie_name, csrf);
    snprintf(body, sizeof(body), "username=ann&password=pw-ann&csrfmiddlewaretoken=%s", csrf);
    ts_http(w, "POST", "/accounts/login/", "", cookie, NULL, body, r);
}

/* A request that came over HTTPS gets Secure cookies named __Host-, which
 * a browser sends over HTTPS only and lets no sibling domain set; and they
 * are read back. Before, cookies were Secure only with CHAT_HTTPS set. */
static void over_https_cookies_are_secure_and_for_this_host_only(void **state)
{
    ts_world_t *w = *state;
    w->scheme = "https";
    ts_http_reply_t r;
    ts_http(w, "GET", "/accounts/login/", "", NULL, NULL, "", &r);
    assert_non_null(strstr(r.cookies, "__Host-csrftoken="));
    assert_non_null(strstr(r.cookies, "; Path=/; SameSite=Lax; Secure\n"));
    free(r.body);
    log_in_as_ann(w, "__Host-csrftoken", &r);
    assert_int_equal(r.status, 302);
    assert_non_null(strstr(r.cookies, "__Host-sessionid="));
    assert_non_null(strstr(r.cookies, "; Path=/; HttpOnly; SameSite=Lax; Secure\n"));
    assert_null(strstr(r.cookies, "Domain"));
    char session[64], cookie[128];
    assert_int_equal(ts_cookie_value(&r, "__Host-sessionid", session, sizeof(session)), 0);
    free(r.body);
    snprintf(cookie, sizeof(cookie), "__Host-sessionid=%s", session);
    ts_http(w, "GET", "/", "", cookie, NULL, "", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    ts_sock_t a;
    ts_ws_connect(w, cookie, "ifc.t!1", &a);
    assert_string_equal(a.scope.username, "ann");
}

/* Over plain HTTP the names stay Django's (sessionid, csrftoken), without
 * Secure; CHAT_HTTPS makes every answer's cookies Secure and __Host-. */
static void over_http_cookies_keep_their_plain_names(void **state)
{
    ts_world_t *w = *state;
    ts_http_reply_t r;
    log_in_as_ann(w, "csrftoken", &r);
    assert_int_equal(r.status, 302);
    assert_non_null(strstr(r.cookies, "sessionid="));
    assert_null(strstr(r.cookies, "__Host-"));
    assert_null(strstr(r.cookies, "Secure"));
    free(r.body);
    w->app.cfg.https = 1;
    log_in_as_ann(w, "csrftoken", &r);
    assert_int_equal(r.status, 302);
    assert_non_null(strstr(r.cookies, "__Host-sessionid="));
    assert_non_null(strstr(r.cookies, "; Secure\n"));
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
        T(over_https_cookies_are_secure_and_for_this_host_only),
        T(over_http_cookies_keep_their_plain_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
