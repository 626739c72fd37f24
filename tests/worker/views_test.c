/* The HTTP views (worker/views.c) in a world (tests/support/world.h): pages,
 * the login form's redirects and the staff API. */
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

static void index_redirects_to_login_without_a_session(void **state)
{
    ts_world_t *w = *state;
    ts_http_reply_t r;
    ts_http(w, "GET", "/", "", NULL, NULL, "", &r);
    assert_int_equal(r.status, 302);
    assert_string_equal(r.location, "/accounts/login/?next=/");
    free(r.body);
    ts_http(w, "GET", "/", "", "sessionid=0123456789abcdef0123456789abcdef", NULL, "", &r);
    assert_int_equal(r.status, 302);
    free(r.body);
}

static void login_then_the_chat_page(void **state)
{
    ts_world_t *w = *state;
    char cookie[256];
    ts_login(w, "ann", "pw-ann", cookie, sizeof(cookie));
    ts_http_reply_t r;
    ts_http(w, "GET", "/", "", cookie, NULL, "", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "data-username=\"ann\""));
    free(r.body);
    ts_http(w, "GET", "/api/rooms", "", cookie, NULL, "", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body,
                        "{\"rooms\":[{\"id\":\"1\",\"title\":\"Lobby\",\"staff_only\":false}]}");
    free(r.body);
}

static void next_must_stay_on_the_site(void **state)
{
    ts_world_t *w = *state;
    const char *bad[] = {"https%3A%2F%2Fevil.example%2F", "%2F%2Fevil.example", "%2F%5Cevil",
                         "javascript%3Aalert(1)"};
    for (size_t i = 0; i < 5; i++) {
        ts_http_reply_t r;
        char body[256];
        const char *next = i < 4 ? bad[i] : "%2Fadmin%2F";
        snprintf(body, sizeof(body),
                 "username=ann&password=pw-ann&next=%s&csrfmiddlewaretoken="
                 "0123456789abcdef0123456789abcdef",
                 next);
        ts_http(w, "POST", "/accounts/login/", "", "csrftoken=0123456789abcdef0123456789abcdef",
                NULL, body, &r);
        assert_int_equal(r.status, 302);
        assert_string_equal(r.location, i < 4 ? "/" : "/admin/");
        free(r.body);
    }
}

static void admin_api_is_for_staff_with_csrf(void **state)
{
    ts_world_t *w = *state;
    char ann[256], sue[256], csrf[40];
    ts_login(w, "ann", "pw-ann", ann, sizeof(ann));
    ts_login(w, "sue", "pw-sue", sue, sizeof(sue));
    sscanf(sue, "csrftoken=%32s", csrf);
    ts_http_reply_t r;
    ts_http(w, "GET", "/admin/api/rooms", "", ann, NULL, "", &r);
    assert_int_equal(r.status, 403);
    free(r.body);
    ts_http(w, "GET", "/admin/", "", ann, NULL, "", &r);
    assert_int_equal(r.status, 403);
    free(r.body);
    ts_http(w, "GET", "/admin/", "", sue, NULL, "", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    ts_http(w, "POST", "/admin/api/rooms", "", sue, NULL, "{\"title\":\"New\"}", &r);
    assert_int_equal(r.status, 403); /* no CSRF header */
    free(r.body);
    ts_http(w, "POST", "/admin/api/rooms", "", sue, csrf,
            "{\"title\":\"New\",\"staff_only\":false}", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"id\":\"3\"}");
    free(r.body);
    ts_http(w, "POST", "/admin/api/rooms/3", "", sue, csrf, "{\"title\":\"Newer\"}", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    ts_http(w, "GET", "/admin/api/rooms", "", sue, NULL, "", &r);
    assert_non_null(strstr(r.body, "\"title\":\"Newer\""));
    assert_non_null(strstr(r.body, "\"title\":\"Staff\""));
    free(r.body);
    ts_http(w, "DELETE", "/admin/api/rooms/3", "", sue, csrf, "", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    ts_http(w, "DELETE", "/admin/api/rooms/3", "", sue, csrf, "", &r);
    assert_int_equal(r.status, 404);
    free(r.body);
    ts_http(w, "POST", "/admin/api/users", "", sue, csrf,
            "{\"username\":\"dan\",\"password\":\"pw-dan\",\"is_staff\":false}", &r);
    assert_int_equal(r.status, 201);
    free(r.body);
    ts_http(w, "POST", "/admin/api/users", "", sue, csrf,
            "{\"username\":\"dan\",\"password\":\"x\"}", &r);
    assert_int_equal(r.status, 409);
    free(r.body);
    ts_http(w, "GET", "/admin/api/users", "", sue, NULL, "", &r);
    assert_non_null(strstr(r.body, "{\"id\":4,\"username\":\"dan\",\"is_staff\":false,"
                                   "\"is_active\":true,\"is_superuser\":false}"));
    free(r.body);
    ts_http(w, "POST", "/admin/api/users/4", "", sue, csrf, "{\"password\":\"pw2\"}", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    char dan[256];
    ts_login(w, "dan", "pw2", dan, sizeof(dan));
    ts_http(w, "POST", "/admin/api/users/4", "", sue, csrf, "{\"is_active\":false}", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    ts_http(w, "GET", "/", "", dan, NULL, "", &r);
    assert_int_equal(r.status, 302); /* deactivated: the session is gone */
    free(r.body);
    ts_http(w, "POST", "/admin/api/users/4", "", sue, csrf, "not json", &r);
    assert_int_equal(r.status, 400);
    free(r.body);
}

/* The staff API's routes: a path it does not know is 404, a method a
 * known path does not take is 405; a new room's id is a string (as in the
 * room list), a new user's a number (as in the user list). */
static void the_staff_api_routes_by_path_then_method(void **state)
{
    ts_world_t *w = *state;
    char sue[256], csrf[40];
    ts_login(w, "sue", "pw-sue", sue, sizeof(sue));
    sscanf(sue, "csrftoken=%32s", csrf);
    const struct {
        const char *method, *path;
        int status;
    } cases[] = {
        {"GET", "/admin/api/nothing", 404},    {"GET", "/admin/api/rooms/x", 404},
        {"GET", "/admin/api/rooms/1/2", 404},  {"GET", "/admin/api/rooms/0", 404},
        {"PUT", "/admin/api/rooms", 405},      {"GET", "/admin/api/rooms/1", 405},
        {"DELETE", "/admin/api/users/1", 405}, {"GET", "/admin/api/users/1", 405},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ts_http_reply_t r;
        ts_http(w, cases[i].method, cases[i].path, "", sue, csrf, "", &r);
        if (r.status != cases[i].status)
            fail_msg("%s %s: %d, not %d", cases[i].method, cases[i].path, r.status,
                     cases[i].status);
        free(r.body);
    }
    ts_http_reply_t r;
    ts_http(w, "POST", "/admin/api/rooms", "", sue, csrf, "{\"title\":\"Porch\"}", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"id\":\"3\"}");
    free(r.body);
    ts_http(w, "POST", "/admin/api/users", "", sue, csrf,
            "{\"username\":\"eve\",\"password\":\"pw-eve\"}", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"id\":4}");
    free(r.body);
}

/* Staff manage rooms and the users who are not staff (and their own
 * password); making staff or superusers, and resetting, deactivating or
 * demoting staff, is for superusers: the server refuses it (403) whatever
 * a page shows. Before, any staff member could make staff, reset another
 * staff member's password and deactivate them. */
static void staff_manage_rooms_and_users_who_are_not_staff(void **state)
{
    ts_world_t *w = *state;
    ts_ctl(w, "pw-tom\\n", "user add tom --staff --password-stdin"); /* id 4 */
    char sue[256];
    ts_login(w, "sue", "pw-sue", sue, sizeof(sue));
    assert_int_equal(ts_status(w, "POST", "/admin/api/rooms", sue, "{\"title\":\"Porch\"}"), 201);
    assert_int_equal(ts_status(w, "POST", "/admin/api/users", sue,
                               "{\"username\":\"dan\",\"password\":\"pw-dan\",\"is_staff\":false}"),
                     201); /* id 5 */
    assert_int_equal(ts_status(w, "POST", "/admin/api/users/5", sue, "{\"password\":\"pw2\"}"),
                     200);
    assert_int_equal(ts_status(w, "POST", "/admin/api/users/1", sue, "{\"is_active\":false}"), 200);
    const struct {
        const char *path, *body;
    } refused[] = {
        {"/admin/api/users", "{\"username\":\"eve\",\"password\":\"p\",\"is_staff\":true}"},
        {"/admin/api/users", "{\"username\":\"eve\",\"password\":\"p\",\"is_superuser\":true}"},
        {"/admin/api/users/5", "{\"is_staff\":true}"},
        {"/admin/api/users/5", "{\"is_superuser\":true}"},
        {"/admin/api/users/4", "{\"password\":\"taken-over\"}"},
        {"/admin/api/users/4", "{\"is_active\":false}"},
        {"/admin/api/users/4", "{\"is_staff\":false}"},
        {"/admin/api/users/3", "{\"is_superuser\":true}"}, /* herself */
        {"/admin/api/users/3", "{\"is_active\":false}"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int status = ts_status(w, "POST", refused[i].path, sue, refused[i].body);
        if (status != 403)
            fail_msg("POST %s %s: %d, not 403", refused[i].path, refused[i].body, status);
    }
    char tom[256];
    ts_login(w, "tom", "pw-tom", tom, sizeof(tom)); /* tom is untouched */
    ts_http_reply_t r;
    ts_http(w, "GET", "/admin/api/users", "", sue, NULL, "", &r);
    assert_non_null(strstr(r.body, "\"username\":\"tom\",\"is_staff\":true,\"is_active\":true"));
    assert_null(strstr(r.body, "\"username\":\"eve\""));
    free(r.body);
}

/* Superusers manage everyone; a superuser is staff too, and staff who lose
 * staff lose superuser. */
static void superusers_manage_staff_and_superusers(void **state)
{
    ts_world_t *w = *state;
    ts_ctl(w, "", "user superuser sue on");
    char sue[256];
    ts_login(w, "sue", "pw-sue", sue, sizeof(sue));
    assert_int_equal(
        ts_status(w, "POST", "/admin/api/users", sue,
                  "{\"username\":\"tom\",\"password\":\"pw-tom\",\"is_superuser\":true}"),
        201); /* id 4: a superuser, so staff */
    assert_int_equal(ts_status(w, "POST", "/admin/api/users/2", sue, "{\"is_staff\":true}"), 200);
    assert_int_equal(ts_status(w, "POST", "/admin/api/users/4", sue, "{\"password\":\"pw-t2\"}"),
                     200);
    assert_int_equal(ts_status(w, "POST", "/admin/api/users/4", sue, "{\"is_staff\":false}"), 200);
    ts_http_reply_t r;
    ts_http(w, "GET", "/admin/api/users", "", sue, NULL, "", &r);
    assert_non_null(strstr(r.body, "\"username\":\"bob\",\"is_staff\":true,\"is_active\":true,"
                                   "\"is_superuser\":false"));
    assert_non_null(strstr(r.body, "\"username\":\"tom\",\"is_staff\":false,\"is_active\":true,"
                                   "\"is_superuser\":false"));
    free(r.body);
    assert_int_equal(ts_status(w, "POST", "/admin/api/users/4", sue, "{\"is_superuser\":true}"),
                     200);
    assert_int_equal(ts_status(w, "POST", "/admin/api/users/4", sue, "{\"is_active\":false}"), 200);
    ts_http(w, "GET", "/admin/api/users", "", sue, NULL, "", &r);
    assert_non_null(strstr(r.body, "\"username\":\"tom\",\"is_staff\":true,\"is_active\":false,"
                                   "\"is_superuser\":true"));
    free(r.body);
}

/* The admin page knows whether its viewer is a superuser, to show only
 * what the viewer may do. */
static void the_admin_page_knows_the_viewer_s_tier(void **state)
{
    ts_world_t *w = *state;
    char sue[256];
    ts_login(w, "sue", "pw-sue", sue, sizeof(sue));
    ts_http_reply_t r;
    ts_http(w, "GET", "/admin/", "", sue, NULL, "", &r);
    assert_non_null(strstr(r.body, "data-superuser=\"false\""));
    free(r.body);
    ts_ctl(w, "", "user superuser sue on");
    ts_http(w, "GET", "/admin/", "", sue, NULL, "", &r);
    assert_non_null(strstr(r.body, "data-superuser=\"true\""));
    free(r.body);
}

/* A room title or a username that is not UTF-8 would reach every client
 * in a text frame and break its socket: the staff API refuses it with a
 * 400 that says why, and the room list stays as it was. Before, it was
 * stored. */
static void titles_and_usernames_must_be_utf8(void **state)
{
    ts_world_t *w = *state;
    char sue[256], csrf[40];
    ts_login(w, "sue", "pw-sue", sue, sizeof(sue));
    sscanf(sue, "csrftoken=%32s", csrf);
    const struct {
        const char *path, *body, *error;
    } bad[] = {
        {"/admin/api/rooms", "{\"title\":\"Caf\xe9\"}", "a title is 1 to 200 bytes of UTF-8"},
        {"/admin/api/rooms", "{\"title\":\"\xc0\xaf\"}", "a title is 1 to 200 bytes of UTF-8"},
        {"/admin/api/rooms/1", "{\"title\":\"Lobby \xed\xa0\x80\"}",
         "a title is 1 to 200 bytes of UTF-8"},
        {"/admin/api/users", "{\"username\":\"\xff\",\"password\":\"p\"}",
         "a username is 1 to 150 bytes of UTF-8"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ts_http_reply_t r;
        ts_http(w, "POST", bad[i].path, "", sue, csrf, bad[i].body, &r);
        assert_int_equal(r.status, 400);
        char want[128];
        snprintf(want, sizeof(want), "{\"error\":\"%s\"}", bad[i].error);
        assert_string_equal(r.body, want);
        free(r.body);
    }
    ts_http_reply_t r;
    ts_http(w, "GET", "/api/rooms", "", sue, NULL, "", &r);
    assert_string_equal(r.body,
                        "{\"rooms\":[{\"id\":\"1\",\"title\":\"Lobby\",\"staff_only\":false},"
                        "{\"id\":\"2\",\"title\":\"Staff\",\"staff_only\":true}]}");
    free(r.body);
    /* Any language's text is welcome. */
    ts_http(w, "POST", "/admin/api/rooms", "", sue, csrf,
            "{\"title\":\"Caf\xc3\xa9 \xe2\x98\x95\"}", &r);
    assert_int_equal(r.status, 201);
    free(r.body);
}

#define T(name) cmocka_unit_test_setup_teardown(name, ts_world_setup, ts_world_teardown)

int main(void)
{
    mc_log_init("views_test", MC_LOG_OFF);
    const struct CMUnitTest tests[] = {
        T(index_redirects_to_login_without_a_session),
        T(login_then_the_chat_page),
        T(next_must_stay_on_the_site),
        T(admin_api_is_for_staff_with_csrf),
        T(the_staff_api_routes_by_path_then_method),
        T(staff_manage_rooms_and_users_who_are_not_staff),
        T(superusers_manage_staff_and_superusers),
        T(the_admin_page_knows_the_viewer_s_tier),
        T(titles_and_usernames_must_be_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
