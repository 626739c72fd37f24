/*
 * worker/session.c: logins, sessions and CSRF checks (worker/session.h).
 */
#include "worker/session.h"
#include "common/clock.h"
#include "common/cookie.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

/* The token in cookie name of the Cookie header hdr. */
static int token_cookie(const char *hdr, const char *name, char out[WRK_TOKEN_HEX_LEN + 1])
{
    const char *v;
    size_t vlen;
    if (mc_cookie_find(hdr, strlen(hdr), name, &v, &vlen) || !wrk_token_valid(v, vlen))
        return MC_ENOTFOUND;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
    return 0;
}

int wrk_session_cookie(const mc_envelope_t *env, const char *name, char out[WRK_TOKEN_HEX_LEN + 1])
{
    const char *hdr = mc_envelope_header(env, "cookie");
    char secure[64];
    if (!hdr)
        return MC_ENOTFOUND;
    snprintf(secure, sizeof(secure), "%s%s", WRK_COOKIE_PREFIX_SECURE, name);
    return token_cookie(hdr, secure, out) == 0 ? 0 : token_cookie(hdr, name, out);
}

int wrk_session_user(wrk_app_t *app, const mc_envelope_t *env, wrk_user_t *user, int64_t *session)
{
    char token[WRK_TOKEN_HEX_LEN + 1];
    if (wrk_session_cookie(env, WRK_SESSION_COOKIE, token))
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

/* The request's device cookie, checked. Returns 0, *user_id and its id. */
static int device_cookie(const wrk_app_t *app, const mc_envelope_t *env, int64_t *user_id,
                         char id[WRK_DEVICE_ID_LEN + 1])
{
    const char *hdr = mc_envelope_header(env, "cookie"), *v;
    size_t vlen;
    if (!hdr ||
        (mc_cookie_find(hdr, strlen(hdr), WRK_COOKIE_PREFIX_SECURE WRK_DEVICE_COOKIE, &v, &vlen) &&
         mc_cookie_find(hdr, strlen(hdr), WRK_DEVICE_COOKIE, &v, &vlen)))
        return MC_ENOTFOUND;
    return wrk_device_check(app->device_key, v, vlen, user_id, id);
}

/* A username as a log line may show it: printable ASCII, at most 40 bytes. */
static const char *log_name(const char *name, char out[48])
{
    size_t n = 0;
    for (; name[n] && n < 40; n++)
        out[n] = name[n] >= 0x20 && name[n] < 0x7f ? name[n] : '?';
    strcpy(out + n, name[n] ? "..." : "");
    return out;
}

/* The label of each refusal in chat_worker_login_refusals_total. */
static const char *const refusal_labels[] = {
    [WRK_LOGIN_REFUSED_USER_ADDR] = "user_address",
    [WRK_LOGIN_REFUSED_ADDR] = "address",
    [WRK_LOGIN_REFUSED_BACKOFF] = "backoff",
    [WRK_LOGIN_REFUSED_DEVICE] = "device",
};

static const char *const refusal_names[] = {
    [WRK_LOGIN_REFUSED_USER_ADDR] = "the username failed too often from this address",
    [WRK_LOGIN_REFUSED_ADDR] = "the address failed too often",
    [WRK_LOGIN_REFUSED_BACKOFF] = "the username failed too often: backing off",
    [WRK_LOGIN_REFUSED_DEVICE] = "the device cookie failed too often",
};

/* Whether the throttles let this try through; sets l->refused and
 * l->retry_after_s when not. device: the browser holds a device cookie of
 * the user (its id), NULL otherwise. */
static int throttle_allows(wrk_app_t *app, const char *addr, const char *pair, const char *device,
                           wrk_login_t *l, int64_t now)
{
    int64_t window = app->cfg.login_window_s * 1000, last = 0;
    long n = 0;
    if (device) {
        /* Nothing else: the failures of others elsewhere are not its own. */
        wrk_store_login_failures(app->store, WRK_LIMIT_DEVICE, device, now, window, &n, NULL);
        if (n >= app->cfg.login_max_failures)
            l->refused = WRK_LOGIN_REFUSED_DEVICE;
    } else {
        wrk_store_login_failures(app->store, WRK_LIMIT_USER_ADDR, pair, now, window, &n, NULL);
        if (n >= app->cfg.login_max_failures)
            l->refused = WRK_LOGIN_REFUSED_USER_ADDR;
        n = 0;
        wrk_store_login_failures(app->store, WRK_LIMIT_ADDR, addr, now, window, &n, NULL);
        if (!l->refused && n >= app->cfg.login_addr_max_failures)
            l->refused = WRK_LOGIN_REFUSED_ADDR;
        n = 0;
        wrk_store_login_failures(app->store, WRK_LIMIT_USER, l->username, now, window, &n, &last);
        long over = n - app->cfg.login_backoff_after;
        if (!l->refused && over >= 0) {
            /* 1 s after the last failure, then twice as long each time. */
            int64_t wait = over < 30 ? (int64_t)1000 << over : window;
            wait = wait < window ? wait : window;
            if (now < last + wait) {
                l->refused = WRK_LOGIN_REFUSED_BACKOFF;
                l->retry_after_s = (long)((last + wait - now + 999) / 1000);
            }
        }
    }
    if (l->refused && !l->retry_after_s)
        l->retry_after_s = app->cfg.login_window_s;
    return !l->refused;
}

int wrk_session_login(wrk_app_t *app, const mc_envelope_t *env, wrk_login_t *l)
{
    int64_t now = mc_now_ms(), window = app->cfg.login_window_s * 1000;
    const char *addr = env->client ? env->client : "";
    char pair[sizeof("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]") + MC_USERNAME_MAX + 2];
    char shown[48];
    l->token[0] = l->device[0] = '\0';
    l->refused = WRK_LOGIN_REFUSED_NOT;
    l->retry_after_s = 0;
    snprintf(pair, sizeof(pair), "%.47s/%s", addr, l->username);
    wrk_user_t u;
    int found = wrk_store_user_by_name(app->store, l->username, &u) == 0 && u.is_active;
    /* A device cookie counts for the user it names only. */
    int64_t device_user = 0;
    char device_id[WRK_DEVICE_ID_LEN + 1];
    int trusted =
        found && device_cookie(app, env, &device_user, device_id) == 0 && device_user == u.id;
    if (!throttle_allows(app, addr, pair, trusted ? device_id : NULL, l, now)) {
        mc_warn("worker: login as \"%s\" from %s refused: %s", log_name(l->username, shown), addr,
                refusal_names[l->refused]);
        wrk_metrics_count(&app->metrics, WRK_M_LOGINS, "refused");
        wrk_metrics_count(&app->metrics, WRK_M_LOGIN_REFUSALS, refusal_labels[l->refused]);
        return MC_EAGAIN;
    }
    /* An unknown user costs one verification too: the time tells nothing. */
    if (wrk_password_verify(&app->pw, found ? u.password : NULL, l->password, l->password_len)) {
        if (trusted) {
            wrk_store_login_failure_add(app->store, WRK_LIMIT_DEVICE, device_id, now, window, NULL);
        } else {
            wrk_store_login_failure_add(app->store, WRK_LIMIT_USER_ADDR, pair, now, window, NULL);
            wrk_store_login_failure_add(app->store, WRK_LIMIT_ADDR, addr, now, window, NULL);
            wrk_store_login_failure_add(app->store, WRK_LIMIT_USER, l->username, now, window, NULL);
        }
        mc_info("worker: failed login as \"%s\" from %s%s", log_name(l->username, shown), addr,
                trusted ? " (with its device cookie)" : "");
        wrk_metrics_count(&app->metrics, WRK_M_LOGINS, "failed");
        return MC_EDENIED;
    }
    /* The username's count stays: its owner logging in must not reopen the
     * guessing to everyone else. */
    wrk_store_login_failure_reset(app->store, trusted ? WRK_LIMIT_DEVICE : WRK_LIMIT_USER_ADDR,
                                  trusted ? device_id : pair);
    int rc = wrk_token_new(l->token);
    if (rc == 0)
        rc = wrk_store_session_add(app->store, l->token, u.id, now + app->cfg.session_ttl_s * 1000);
    if (rc == 0)
        wrk_metrics_count(&app->metrics, WRK_M_LOGINS, "ok");
    if (rc == 0 && wrk_device_make(app->device_key, u.id, l->device))
        l->device[0] = '\0'; /* no new device cookie: the login stands */
    return rc;
}

int wrk_session_logout(wrk_app_t *app, const mc_envelope_t *env)
{
    char token[WRK_TOKEN_HEX_LEN + 1];
    if (wrk_session_cookie(env, WRK_SESSION_COOKIE, token))
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
