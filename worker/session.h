/*
 * worker/session.h: who is asking: logins, sessions and the tokens that
 * carry them, as Django's auth and CSRF middleware do it.
 *
 * A login checks a username and a password against the store (argon2id,
 * worker/password.h) and opens a session: a random token
 * (worker/token.h) the browser keeps in the sessionid cookie, stored hashed.
 * Cookies sent over HTTPS are named with the __Host- prefix
 * (__Host-sessionid: Secure, for this host only, path /); over plain HTTP
 * with the names Django uses. A request's cookies are read by both names,
 * the __Host- one first.
 * A request or a new socket is then someone's through that cookie; a socket
 * already accepted is someone's through its scope, checked against the
 * user as the store has it now (deactivated is gone at once). Unsafe HTTP
 * requests must echo the csrftoken cookie.
 *
 * Logins are throttled so that guessing is slow and nobody is locked out by
 * someone else's failures (OWASP's device cookies, worker/device.h):
 *  - a browser holding a device cookie of the user (it logged in as that
 *    user before) is refused only after login_max_failures failures of its
 *    own in the window; nothing else slows it;
 *  - any other browser is refused after login_max_failures failures of the
 *    username from its address, or login_addr_max_failures failures from
 *    its address whatever the username; and once the username has failed
 *    login_backoff_after times from such browsers, each further try must
 *    wait 1 s, 2 s, 4 s... (at most the window) after the last failure.
 * A refused login checks no password and counts no failure.
 *
 * Called by the views (HTTP) and the consumer (WebSocket); below them, above
 * the worker's state (worker/app.h) and the store. Nothing here sends.
 */
#ifndef MC_WORKER_SESSION_H
#define MC_WORKER_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"
#include "common/form.h"
#include "worker/app.h"
#include "worker/device.h"
#include "worker/token.h"

#define WRK_SESSION_COOKIE "sessionid"
#define WRK_CSRF_COOKIE "csrftoken"
#define WRK_COOKIE_PREFIX_SECURE "__Host-"

/* Copies into out, with a NUL, the value of the request's cookie
 * __Host-<name>, or else name, when it is a well-formed token. Returns 0,
 * or MC_ENOTFOUND (no Cookie header, no such cookie, not a token). */
int wrk_session_cookie(const mc_envelope_t *env, const char *name, char out[WRK_TOKEN_HEX_LEN + 1]);

/* The user of the request's sessionid cookie. Returns 0, *user and
 * *session (may be NULL) the session's id; MC_ENOTFOUND (no cookie,
 * unknown or expired session, inactive user); MC_EDB. */
int wrk_session_user(wrk_app_t *app, const mc_envelope_t *env, wrk_user_t *user, int64_t *session);

/* The user a socket's scope names, as the store has it now. Returns 0 and
 * *user; MC_ENOTFOUND when the scope names nobody, or a user who is gone
 * or inactive; MC_EDB. */
int wrk_session_scope_user(wrk_app_t *app, const mc_envelope_t *env, wrk_user_t *user);

/* Why a login was refused before its password was checked. */
typedef enum wrk_login_refusal {
    WRK_LOGIN_REFUSED_NOT = 0,
    WRK_LOGIN_REFUSED_USER_ADDR, /* the username failed too often from this address */
    WRK_LOGIN_REFUSED_ADDR,      /* this address failed too often */
    WRK_LOGIN_REFUSED_BACKOFF,   /* the username failed too often: wait */
    WRK_LOGIN_REFUSED_DEVICE,    /* this browser's device cookie failed too often */
} wrk_login_refusal_t;

/* One login. */
typedef struct wrk_login {
    const char *username;              /* in */
    const char *password;              /* in: password_len bytes */
    size_t password_len;               /* in */
    char token[WRK_TOKEN_HEX_LEN + 1]; /* out: the new session's token */
    char device[WRK_DEVICE_MAX + 1];   /* out: a device cookie to set */
    wrk_login_refusal_t refused;       /* out */
    long retry_after_s;                /* out: a refusal lasts at most this long */
} wrk_login_t;

/* Logs l->username in with its password, asked by the request env (its
 * client address and its device cookie). Returns 0 with l->token and
 * l->device filled. MC_EDENIED: no such active user or a wrong password
 * (the failure counts, as the header says). MC_EAGAIN: refused before any
 * check (l->refused, l->retry_after_s). MC_EIO or MC_EDB: the session
 * could not be made. Every failure and refusal is logged. */
int wrk_session_login(wrk_app_t *app, const mc_envelope_t *env, wrk_login_t *l);

/* Ends the session of the request's sessionid cookie, if it has one; the
 * user's other sessions go on. Returns 0 or MC_EDB. */
int wrk_session_logout(wrk_app_t *app, const mc_envelope_t *env);

/* Whether an unsafe request carries the csrftoken cookie's value, expected
 * (NULL when the request had no such cookie: nothing to compare with), in
 * the form's csrfmiddlewaretoken field (form may be NULL) or else in the
 * X-CSRFToken header. Returns 1 or 0. */
int wrk_session_csrf_ok(const mc_envelope_t *env, const char *expected, const mc_form_t *form);

#endif
