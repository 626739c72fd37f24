/*
 * worker/session.h: who is asking: logins, sessions and the tokens that
 * carry them, as Django's auth and CSRF middleware do it.
 *
 * A login checks a username and a password against the store (argon2id,
 * worker/password.h), counts failures per username and per client address
 * and refuses for a while past a limit, and opens a session: a random token
 * (worker/token.h) the browser keeps in the sessionid cookie, stored hashed.
 * A request or a new socket is then someone's through that cookie; a socket
 * already accepted is someone's through its scope, checked against the
 * user as the store has it now (deactivated is gone at once). Unsafe HTTP
 * requests must echo the csrftoken cookie.
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
#include "worker/token.h"

/* Copies into out, with a NUL, the value of the request's cookie name when
 * it is a well-formed token. Returns 0, or MC_ENOTFOUND (no Cookie header,
 * no such cookie, not a token). */
int wrk_session_cookie(const mc_envelope_t *env, const char *name, char out[WRK_TOKEN_HEX_LEN + 1]);

/* The user of the request's sessionid cookie. Returns 0, *user and
 * *session (may be NULL) the session's id; MC_ENOTFOUND (no cookie,
 * unknown or expired session, inactive user); MC_EDB. */
int wrk_session_user(wrk_app_t *app, const mc_envelope_t *env, wrk_user_t *user, int64_t *session);

/* The user a socket's scope names, as the store has it now. Returns 0 and
 * *user; MC_ENOTFOUND when the scope names nobody, or a user who is gone
 * or inactive; MC_EDB. */
int wrk_session_scope_user(wrk_app_t *app, const mc_envelope_t *env, wrk_user_t *user);

/* Logs username in with password[0..len), asked from address client:
 * returns 0 and a new session's token in token. MC_EDENIED: no such active
 * user or a wrong password (the failure counts against the username and the
 * address). MC_EAGAIN: either has failed login_max_failures times within
 * login_window_s; nothing was checked. MC_EIO or MC_EDB: the session could
 * not be made. */
int wrk_session_login(wrk_app_t *app, const char *username, const char *password, size_t len,
                      const char *client, char token[WRK_TOKEN_HEX_LEN + 1]);

/* Ends the session of the request's sessionid cookie, if it has one; the
 * user's other sessions go on. Returns 0 or MC_EDB. */
int wrk_session_logout(wrk_app_t *app, const mc_envelope_t *env);

/* Whether an unsafe request carries the csrftoken cookie's value, expected
 * (NULL when the request had no such cookie: nothing to compare with), in
 * the form's csrfmiddlewaretoken field (form may be NULL) or else in the
 * X-CSRFToken header. Returns 1 or 0. */
int wrk_session_csrf_ok(const mc_envelope_t *env, const char *expected, const mc_form_t *form);

#endif
