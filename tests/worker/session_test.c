/* Logins, sessions and CSRF (worker/session.c), through the views and the
 * consumer of a world (tests/support/world.h). */
#include "common/clock.h"
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
#include <time.h>
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

/* One login through the form from address client, with the Cookie header
 * cookies added (NULL: only csrftoken). Returns the status; r (may be NULL)
 * gets the answer, whose body the caller frees. */
static int try_login(ts_world_t *w, const char *client, const char *cookies, const char *user,
                     const char *password, ts_http_reply_t *r)
{
    const char *csrf = "0123456789abcdef0123456789abcdef";
    char cookie[512], body[256];
    snprintf(cookie, sizeof(cookie), "csrftoken=%s%s%s", csrf, cookies ? "; " : "",
             cookies ? cookies : "");
    snprintf(body, sizeof(body), "username=%s&password=%s&csrfmiddlewaretoken=%s", user, password,
             csrf);
    ts_http_reply_t own;
    ts_http_reply_t *out = r ? r : &own;
    w->client = client;
    ts_http(w, "POST", "/accounts/login/", "", cookie, NULL, body, out);
    w->client = NULL;
    if (!r)
        free(own.body);
    return out->status;
}

/* A wrong password is answered 200 with the form and an error; a refusal
 * 429 with Retry-After; a login 302. */
#define WRONG 200
#define REFUSED 429
#define IN 302

/* One username failing from one address: that pair is refused for the
 * window, with how long to wait; the address may still log in as someone
 * else. */
static void failures_from_one_address_refuse_that_username_there(void **state)
{
    ts_world_t *w = *state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(try_login(w, "10.0.0.1", NULL, "bob", "bad", NULL), WRONG);
    ts_http_reply_t r;
    assert_int_equal(try_login(w, "10.0.0.1", NULL, "bob", "pw-bob", &r), REFUSED);
    assert_non_null(strstr(r.body, "Too many failed logins. Try again in 15 minutes."));
    assert_int_equal(r.retry_after, 900);
    assert_null(strstr(r.cookies, "sessionid"));
    free(r.body);
    assert_int_equal(try_login(w, "10.0.0.1", NULL, "ann", "pw-ann", NULL), IN);
}

/* The attack: five wrong passwords for bob from anywhere used to lock the
 * real bob out for 15 minutes, wherever he was. His correct password from
 * his own address is never refused for someone else's failures. */
static void another_address_s_failures_never_refuse_the_owner(void **state)
{
    ts_world_t *w = *state;
    for (int i = 0; i < 5; i++)
        try_login(w, "10.6.6.6", NULL, "bob", "guess", NULL);
    assert_int_equal(try_login(w, "10.6.6.6", NULL, "bob", "pw-bob", NULL), REFUSED);
    assert_int_equal(try_login(w, "10.0.0.2", NULL, "bob", "pw-bob", NULL), IN);
}

/* Many addresses, one guess each: past login_backoff_after failures of
 * the username, each try waits twice as long as the one before after the
 * last failure (1 s, 2 s...), whatever its address. */
static void many_addresses_guessing_one_username_are_slowed(void **state)
{
    ts_world_t *w = *state;
    w->app.cfg.login_backoff_after = 4;
    char addr[32];
    for (int i = 1; i <= 4; i++) {
        snprintf(addr, sizeof(addr), "10.9.0.%d", i);
        assert_int_equal(try_login(w, addr, NULL, "bob", "guess", NULL), WRONG);
    }
    int64_t last = mc_now_ms();
    ts_http_reply_t r;
    assert_int_equal(try_login(w, "10.9.0.5", NULL, "bob", "guess", &r), REFUSED);
    assert_int_equal(r.retry_after, 1);
    assert_non_null(strstr(r.body, "Try again in 1 seconds."));
    free(r.body);
    /* A browser without bob's device cookie is slowed alike, bob's too. */
    assert_int_equal(try_login(w, "10.0.0.2", NULL, "bob", "pw-bob", NULL), REFUSED);
    /* Once the wait is over (the clock is the event), one more guess, and
     * the next wait is 2 s. */
    while (mc_now_ms() < last + 1100) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(try_login(w, "10.9.0.6", NULL, "bob", "guess", NULL), WRONG);
    assert_int_equal(try_login(w, "10.9.0.7", NULL, "bob", "guess", &r), REFUSED);
    assert_int_equal(r.retry_after, 2);
    free(r.body);
    /* Other usernames are not slowed. */
    assert_int_equal(try_login(w, "10.9.0.7", NULL, "ann", "pw-ann", NULL), IN);
}

/* The "device=..." Cookie part of a login's answer, for the next ones. */
static void device_cookie_of(const ts_http_reply_t *r, char *out, size_t size)
{
    char value[200];
    assert_int_equal(ts_cookie_value(r, "device", value, sizeof(value)), 0);
    snprintf(out, size, "device=%s", value);
}

/* bob logged in once in this browser: it holds his device cookie. Then
 * his username is guessed from everywhere, and from his own address (his
 * office's NAT) until it is refused for bob and for everyone. His browser
 * still logs him in at once. */
static void the_owner_with_a_device_cookie_is_never_refused(void **state)
{
    ts_world_t *w = *state;
    w->app.cfg.login_backoff_after = 4;
    w->app.cfg.login_addr_max_failures = 5;
    ts_http_reply_t r;
    assert_int_equal(try_login(w, "10.0.0.2", NULL, "bob", "pw-bob", &r), IN);
    assert_non_null(strstr(r.cookies, "device="));
    assert_non_null(strstr(r.cookies, "; Max-Age=31536000; Path=/; HttpOnly; SameSite=Lax"));
    char device[256];
    device_cookie_of(&r, device, sizeof(device));
    free(r.body);
    char addr[32];
    for (int i = 1; i <= 8; i++) {
        snprintf(addr, sizeof(addr), "10.9.0.%d", i);
        try_login(w, addr, NULL, "bob", "guess", NULL);
    }
    for (int i = 0; i < 3; i++)
        try_login(w, "10.0.0.2", NULL, "bob", "guess", NULL);
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof(name), "nobody%d", i);
        assert_int_equal(try_login(w, "10.0.0.2", NULL, name, "guess", NULL), WRONG);
    }
    assert_int_equal(try_login(w, "10.0.0.2", NULL, "bob", "pw-bob", NULL), REFUSED);
    assert_int_equal(try_login(w, "10.0.0.2", NULL, "ann", "pw-ann", NULL), REFUSED);
    assert_int_equal(try_login(w, "10.0.0.2", device, "bob", "pw-bob", &r), IN);
    /* Each login hands out a fresh device cookie. */
    char again[256];
    device_cookie_of(&r, again, sizeof(again));
    assert_string_not_equal(again, device);
    free(r.body);
    assert_int_equal(try_login(w, "10.0.0.2", device, "bob", "pw-bob", NULL), IN);
}

/* A device cookie counts for its own user, unaltered, and only until it
 * fails login_max_failures times itself: a stolen one buys no more guesses
 * than an address. */
static void a_device_cookie_is_bound_to_its_user_and_its_own_failures(void **state)
{
    ts_world_t *w = *state;
    w->app.cfg.login_backoff_after = 2;
    ts_http_reply_t r;
    assert_int_equal(try_login(w, "10.0.0.2", NULL, "bob", "pw-bob", &r), IN);
    char device[256];
    device_cookie_of(&r, device, sizeof(device));
    free(r.body);
    for (int i = 1; i <= 3; i++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "10.9.0.%d", i);
        try_login(w, addr, NULL, "ann", "guess", NULL);
        try_login(w, addr, NULL, "bob", "guess", NULL);
    }
    /* bob's cookie is no pass for ann; an altered one is no pass at all. */
    assert_int_equal(try_login(w, "10.0.0.2", device, "ann", "pw-ann", NULL), REFUSED);
    char altered[256];
    snprintf(altered, sizeof(altered), "%s", device);
    size_t n = strlen(altered);
    altered[n - 1] = altered[n - 1] == '0' ? '1' : '0';
    assert_int_equal(try_login(w, "10.0.0.2", altered, "bob", "pw-bob", NULL), REFUSED);
    /* Its own failures: three wrong, then it is refused too. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(try_login(w, "10.0.0.3", device, "bob", "guess", NULL), WRONG);
    assert_int_equal(try_login(w, "10.0.0.3", device, "bob", "pw-bob", NULL), REFUSED);
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
        T(failures_from_one_address_refuse_that_username_there),
        T(another_address_s_failures_never_refuse_the_owner),
        T(many_addresses_guessing_one_username_are_slowed),
        T(the_owner_with_a_device_cookie_is_never_refused),
        T(a_device_cookie_is_bound_to_its_user_and_its_own_failures),
        T(a_socket_without_a_session_is_refused),
        T(a_deactivated_user_is_refused_at_once),
        T(a_nul_in_a_form_body_is_part_of_its_field),
        T(over_https_cookies_are_secure_and_for_this_host_only),
        T(over_http_cookies_keep_their_plain_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
