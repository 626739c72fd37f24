/*
 * worker/views.h: the HTTP side of the worker: the chat page, login and
 * logout with CSRF protection as Django does it, the room list and the
 * staff's JSON administration API.
 *
 *   GET  /                  the chat page, or 302 to the login page
 *   GET  /accounts/login/   the login form (sets csrftoken)
 *   POST /accounts/login/   username, password, next, csrfmiddlewaretoken
 *   POST /accounts/logout/  ends the session (the user's other sessions go on)
 *   GET  /admin/            the staff page
 *   GET  /api/rooms         {"rooms":[...]} this user may join
 *   /admin/api/rooms        GET list, POST {title, staff_only}
 *   /admin/api/rooms/ID     POST {title?, staff_only?}, DELETE
 *   /admin/api/users        GET list, POST {username, password, is_staff?, is_superuser?}
 *   /admin/api/users/ID     POST {is_staff?, is_superuser?, is_active?, password?}
 *
 * Unsafe methods need the csrftoken cookie's value in the
 * csrfmiddlewaretoken field or the X-CSRFToken header (403 otherwise).
 * The staff API is for staff; as in Django, only superusers make staff or
 * superusers, or reset, deactivate or demote them (403 otherwise): staff
 * manage rooms, the users who are not staff, and their own password. A
 * superuser is staff too.
 *
 * Called by worker/dispatch.h for each http.request; logins, sessions and
 * CSRF checks come from worker/session.h, the answer leaves through the
 * port (worker/port.h).
 */
#ifndef MC_WORKER_VIEWS_H
#define MC_WORKER_VIEWS_H

#include "common/envelope.h"
#include "worker/app.h"

/* Answers one http.request with one http.response to its reply channel. */
int wrk_views_request(wrk_app_t *app, const mc_envelope_t *env);

#endif
