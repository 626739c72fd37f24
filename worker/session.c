/*
 * worker/session.c: logins, sessions and CSRF checks (worker/session.h).
 */
#include "worker/session.h"
#include "common/clock.h"
#include "common/cookie.h"
#include "common/error.h"
#include "common/log.h"

#include <string.h>

int wrk_session_cookie(const mc_envelope_t *env, const char *name, char out[WRK_TOKEN_HEX_LEN + 1])
{
    const char *hdr = mc_envelope_header(env, "cookie");
    const char *v;
    size_t vlen;
    if (!hdr || mc_cookie_find(hdr, strlen(hdr), name, &v, &vlen) || !wrk_token_valid(v, vlen))
        return MC_ENOTFOUND;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
    return 0;
}

int wrk_session_user(wrk_app_t *app, const mc_envelope_t *env, wrk_user_t *user, int64_t *session)
{
    char token[WRK_TOKEN_HEX_LEN + 1];
    if (wrk_session_cookie(env, "sessionid", token))
        return MC_ENOTFOUND;
    return wrk_store_session_user(app->store, token, mc_now_ms(), user, session);
}

int wrk_session_scope_user(wrk_app_t *app, const mc_envelope_t *env, wrk_user_t *user)
{
    if (!env->has_scope || env->scope.user_id <= 0)
        return MC_ENOTFOUND;
    int rc = wrk_store_user_by_id(app->store, env->scope.user_id, user);
    return rc == 0 && !user->is_active ? MC_ENOTFOUND : rc;
}

int wrk_session_login(wrk_app_t *app, const char *username, const char *password, size_t len,
                      const char *client, char token[WRK_TOKEN_HEX_LEN + 1])
{
    int64_t now = mc_now_ms(), window = app->cfg.login_window_s * 1000;
    const char *addr = client ? client : "";
    long by_user = 0, by_addr = 0;
    wrk_store_login_failures(app->store, WRK_LIMIT_USER, username, now, window, &by_user);
    wrk_store_login_failures(app->store, WRK_LIMIT_ADDR, addr, now, window, &by_addr);
    if (by_user >= app->cfg.login_max_failures || by_addr >= app->cfg.login_max_failures)
        return MC_EAGAIN;
    wrk_user_t u;
    int found = wrk_store_user_by_name(app->store, username, &u) == 0 && u.is_active;
    /* An unknown user costs one verification too: the time tells nothing. */
    if (wrk_password_verify(&app->pw, found ? u.password : NULL, password, len) != 0) {
        wrk_store_login_failure_add(app->store, WRK_LIMIT_USER, username, now, window, NULL);
        wrk_store_login_failure_add(app->store, WRK_LIMIT_ADDR, addr, now, window, NULL);
        mc_info("worker: failed login from %s", addr);
        return MC_EDENIED;
    }
    wrk_store_login_failure_reset(app->store, WRK_LIMIT_USER, username);
    int rc = wrk_token_new(token);
    if (rc == 0)
        rc = wrk_store_session_add(app->store, token, u.id, now + app->cfg.session_ttl_s * 1000);
    return rc;
}

int wrk_session_logout(wrk_app_t *app, const mc_envelope_t *env)
{
    char token[WRK_TOKEN_HEX_LEN + 1];
    if (wrk_session_cookie(env, "sessionid", token))
        return 0;
    return wrk_store_session_delete(app->store, token);
}

int wrk_session_csrf_ok(const mc_envelope_t *env, const char *expected, const mc_form_t *form)
{
    if (!expected)
        return 0;
    /* As Django: the form field first, then the header. */
    size_t glen = 0;
    const char *given = form ? mc_form_get(form, "csrfmiddlewaretoken", &glen) : NULL;
    if (!given) {
        given = mc_envelope_header(env, "x-csrftoken");
        glen = given ? strlen(given) : 0;
    }
    return given && wrk_token_equal(given, glen, expected, strlen(expected));
}
