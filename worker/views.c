/*
 * worker/views.c: the HTTP views of worker/views.h: routing, pages, login
 * and logout, the room list and the staff's JSON API, each answered with
 * one http.response.
 */
#include "worker/views.h"
#include "common/error.h"
#include "common/form.h"
#include "common/log.h"
#include "worker/port.h"
#include "worker/session.h"
#include "worker/template.h"
#include "worker/token.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HEADERS 12
#define HEADER_ARENA 2048
#define CSRF_COOKIE_AGE (365L * 24 * 3600)
#define DEVICE_COOKIE_AGE (365L * 24 * 3600)

/* One response being built. Header values live in the arena. */
typedef struct response {
    int status;
    mc_header_t headers[MAX_HEADERS];
    size_t nheaders;
    char arena[HEADER_ARENA];
    size_t used;
    char *body; /* owned */
    size_t body_len;
} response_t;

/* What a request carries that every view needs. */
typedef struct request {
    const mc_envelope_t *env;
    char csrf[WRK_TOKEN_HEX_LEN + 1]; /* the csrftoken cookie, or a new one */
    int csrf_new;                     /* the cookie must be set */
    int has_user;
    wrk_user_t user;
    int64_t session; /* the id of the user's session */
} request_t;

static void add_header(response_t *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_header(response_t *r, const char *name, const char *fmt, ...)
{
    if (r->nheaders == MAX_HEADERS)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->arena + r->used, HEADER_ARENA - r->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= HEADER_ARENA - r->used) {
        mc_error("worker: response header %s does not fit", name);
        return;
    }
    r->headers[r->nheaders].name = name;
    r->headers[r->nheaders].value = r->arena + r->used;
    r->nheaders++;
    r->used += (size_t)n + 1;
}

static void set_body(response_t *r, char *body, size_t len, const char *type)
{
    free(r->body);
    r->body = body;
    r->body_len = len;
    add_header(r, "content-type", "%s", type);
}

static void set_text(response_t *r, int status, const char *text)
{
    r->status = status;
    char *copy = strdup(text);
    set_body(r, copy, copy ? strlen(copy) : 0, "text/plain; charset=utf-8");
}

static void set_json(response_t *r, int status, cJSON *obj)
{
    r->status = status;
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!text) {
        set_text(r, 500, "Server error\n");
        return;
    }
    set_body(r, text, strlen(text), "application/json");
}

static void set_json_error(response_t *r, int status, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    if (o)
        cJSON_AddStringToObject(o, "error", message);
    set_json(r, status, o);
}

static void redirect(response_t *r, const char *location)
{
    r->status = 302;
    add_header(r, "location", "%s", location);
    set_text(r, 302, "");
}

/* ---- Cookies and CSRF ---------------------------------------------------------- */

/* Whether the response's cookies are for HTTPS only: the request came over
 * TLS (directly, or through a proxy the interface trusts), or CHAT_HTTPS
 * says that every request does. */
static int secure(const wrk_app_t *app, const request_t *q)
{
    return app->cfg.https || (q->env->scheme && strcmp(q->env->scheme, "https") == 0);
}

/* Sets cookie name (an empty value and max_age 0 delete it): over HTTPS
 * Secure and named __Host-<name>, which a browser keeps for this host
 * only, whatever a sibling domain or a plain-HTTP answer sets. */
static void set_cookie(const wrk_app_t *app, response_t *r, const request_t *q, const char *name,
                       const char *value, long max_age, int http_only)
{
    int sec = secure(app, q);
    add_header(r, "set-cookie", "%s%s=%s; Max-Age=%ld; Path=/;%s SameSite=Lax%s",
               sec ? WRK_COOKIE_PREFIX_SECURE : "", name, value, max_age,
               http_only ? " HttpOnly;" : "", sec ? "; Secure" : "");
}

static void set_csrf_cookie(wrk_app_t *app, response_t *r, const request_t *q)
{
    set_cookie(app, r, q, WRK_CSRF_COOKIE, q->csrf, CSRF_COOKIE_AGE, 0);
}

static int csrf_ok(const request_t *q, const mc_form_t *form)
{
    return wrk_session_csrf_ok(q->env, q->csrf_new ? NULL : q->csrf, form);
}

static int unsafe_method(const char *m)
{
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "OPTIONS") != 0;
}

/* A redirect target on this site: a path, not "//host" or "/\host". */
static const char *safe_next(const char *next)
{
    if (!next || next[0] != '/' || next[1] == '/' || next[1] == '\\')
        return "/";
    for (const char *p = next; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return "/";
    return strlen(next) > 1024 ? "/" : next;
}

/* ---- Pages ------------------------------------------------------------------- */

static void page(wrk_app_t *app, response_t *r, const char *name, const wrk_template_var_t *vars,
                 size_t n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/templates/%s", app->cfg.web_root, name);
    char *body;
    size_t len;
    int rc = wrk_template_render(path, vars, n, &body, &len);
    if (rc) {
        mc_error("worker: template %s: %s", path, mc_strerror(rc));
        set_text(r, 500, "Server error: a page template is missing\n");
        return;
    }
    r->status = 200;
    set_body(r, body, len, "text/html; charset=utf-8");
    add_header(r, "cache-control", "no-store");
    add_header(r, "x-frame-options", "DENY");
}

static void login_page(wrk_app_t *app, response_t *r, const request_t *q, const char *next,
                       const char *error, int status)
{
    wrk_template_var_t vars[] = {
        {"csrf_token", q->csrf},
        {"next", safe_next(next)},
        {"error", error},
        {"error_hidden", error ? "" : "hidden"},
    };
    page(app, r, "login.html", vars, sizeof(vars) / sizeof(vars[0]));
    if (r->status == 200)
        r->status = status;
}

static void view_login(wrk_app_t *app, response_t *r, request_t *q, const char *rest)
{
    (void)rest;
    const mc_envelope_t *env = q->env;
    mc_form_t query;
    const char *next = NULL;
    int have_query = mc_form_parse(&query, env->query, strlen(env->query)) == 0;
    if (have_query)
        next = mc_form_get(&query, "next", NULL);
    if (strcmp(env->method, "POST") != 0) {
        login_page(app, r, q, next, NULL, 200);
        goto out;
    }
    mc_form_t form;
    if (mc_form_parse(&form, env->body ? env->body : "", env->body_len)) {
        set_text(r, 400, "Bad request: the form does not parse\n");
        goto out;
    }
    if (!csrf_ok(q, &form)) {
        set_text(r, 403, "Forbidden: CSRF verification failed. Reload the login page.\n");
        mc_form_clear(&form);
        goto out;
    }
    const char *user = mc_form_get(&form, "username", NULL);
    size_t plen = 0;
    const char *pass = mc_form_get(&form, "password", &plen);
    const char *fnext = mc_form_get(&form, "next", NULL);
    if (fnext)
        next = fnext;
    wrk_login_t login = {.username = user, .password = pass, .password_len = plen};
    char msg[160];
    int rc = !user || !*user || !pass || strlen(user) > MC_USERNAME_MAX
                 ? MC_EINVAL
                 : wrk_session_login(app, env, &login);
    switch (rc) {
    case 0:
        /* As Django does: a new CSRF token at login. */
        if (wrk_token_new(q->csrf) == 0)
            q->csrf_new = 1;
        redirect(r, safe_next(next));
        set_cookie(app, r, q, WRK_SESSION_COOKIE, login.token, app->cfg.session_ttl_s, 1);
        if (login.device[0])
            set_cookie(app, r, q, WRK_DEVICE_COOKIE, login.device, DEVICE_COOKIE_AGE, 1);
        break;
    case MC_EINVAL:
        login_page(app, r, q, next, "Please enter a username and a password.", 200);
        break;
    case MC_EAGAIN:
        if (login.retry_after_s >= 120)
            snprintf(msg, sizeof(msg), "Too many failed logins. Try again in %ld minutes.",
                     (login.retry_after_s + 59) / 60);
        else
            snprintf(msg, sizeof(msg), "Too many failed logins. Try again in %ld seconds.",
                     login.retry_after_s);
        login_page(app, r, q, next, msg, 429);
        add_header(r, "retry-after", "%ld", login.retry_after_s);
        break;
    case MC_EDENIED:
        login_page(app, r, q, next,
                   "Please enter a correct username and password. Note that both fields may be "
                   "case-sensitive.",
                   200);
        break;
    default:
        set_text(r, 500, "Server error: the session could not be stored\n");
    }
    mc_form_clear(&form);
out:
    if (have_query)
        mc_form_clear(&query);
}

static void view_logout(wrk_app_t *app, response_t *r, request_t *q, const char *rest)
{
    (void)rest;
    if (strcmp(q->env->method, "POST") != 0) {
        set_text(r, 405, "Method not allowed: log out with POST\n");
        add_header(r, "allow", "POST");
        return;
    }
    mc_form_t form;
    int have = mc_form_parse(&form, q->env->body ? q->env->body : "", q->env->body_len) == 0;
    int ok = csrf_ok(q, have ? &form : NULL);
    if (have)
        mc_form_clear(&form);
    if (!ok) {
        set_text(r, 403, "Forbidden: CSRF verification failed.\n");
        return;
    }
    wrk_session_logout(app, q->env);
    redirect(r, "/accounts/login/");
    set_cookie(app, r, q, WRK_SESSION_COOKIE, "", 0, 1);
}

static void view_page(wrk_app_t *app, response_t *r, const request_t *q, const char *tpl,
                      const char *self)
{
    if (!q->has_user) {
        char loc[64];
        snprintf(loc, sizeof(loc), "/accounts/login/?next=%s", self);
        redirect(r, loc);
        return;
    }
    if (strcmp(tpl, "admin.html") == 0 && !q->user.is_staff) {
        set_text(r, 403, "Forbidden: staff only\n");
        return;
    }
    wrk_template_var_t vars[] = {
        {"username", q->user.username},
        {"is_staff", q->user.is_staff ? "true" : "false"},
        {"is_superuser", q->user.is_superuser ? "true" : "false"},
        {"csrf_token", q->csrf},
    };
    page(app, r, tpl, vars, sizeof(vars) / sizeof(vars[0]));
}

static void view_rooms(wrk_app_t *app, response_t *r, const request_t *q, int all)
{
    char *text;
    if (wrk_port_rooms_text(&app->port, all || q->user.is_staff, &text)) {
        set_text(r, 500, "Server error\n");
        return;
    }
    r->status = 200;
    set_body(r, text, strlen(text), "application/json");
    add_header(r, "cache-control", "no-store");
}

/* ---- Staff API ----------------------------------------------------------------- */

/* What a staff API request carries: the fields of its JSON body (NULL when
 * absent; types checked) and the id of the room or user its path names. */
typedef struct admin_request {
    const cJSON *title, *staff_only, *username, *password, *is_staff, *is_active, *is_superuser;
    int64_t id;
} admin_request_t;

static int parse_id(const char *s, int64_t *out)
{
    int64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > INT64_MAX / 10 - 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return v > 0 ? 0 : -1;
}

static void store_error(response_t *r, int rc, const char *what)
{
    if (rc == MC_ENOTFOUND)
        set_json_error(r, 404, "not found");
    else if (rc == MC_EEXIST)
        set_json_error(r, 409, "that name is taken");
    else if (rc == MC_EINVAL || rc == MC_ETOOBIG)
        set_json_error(r, 400, what);
    else
        set_json_error(r, 500, "server error");
}

/* 201 and {"id":ID}: a room's id as a string, as the room list and the
 * chat protocol spell it; a user's as a number, as the user list does. */
static void created(response_t *r, int64_t id, int id_as_string)
{
    char ids[24];
    snprintf(ids, sizeof(ids), "%" PRId64, id);
    cJSON *o = cJSON_CreateObject();
    if (o && !(id_as_string ? cJSON_AddStringToObject(o, "id", ids)
                            : cJSON_AddRawToObject(o, "id", ids))) {
        cJSON_Delete(o);
        o = NULL;
    }
    set_json(r, 201, o);
}

/* 200 and {} after a change, or the store's error. */
static void changed(response_t *r, int rc, const char *what)
{
    if (rc)
        store_error(r, rc, what);
    else
        set_json(r, 200, cJSON_CreateObject());
}

static void admin_rooms(wrk_app_t *app, response_t *r, const request_t *q, const admin_request_t *a)
{
    (void)a;
    view_rooms(app, r, q, 1);
}

static void admin_room_add(wrk_app_t *app, response_t *r, const request_t *q,
                           const admin_request_t *a)
{
    (void)q;
    int64_t id;
    int rc;
    if (!a->title)
        set_json_error(r, 400, "a room needs a title");
    else if ((rc = wrk_store_room_add(app->store, a->title->valuestring,
                                      cJSON_IsTrue(a->staff_only), &id)))
        store_error(r, rc, "a title is 1 to 200 bytes of UTF-8");
    else
        created(r, id, 1);
}

static void admin_room_change(wrk_app_t *app, response_t *r, const request_t *q,
                              const admin_request_t *a)
{
    (void)q;
    int rc = 0;
    if (a->title)
        rc = wrk_store_room_rename(app->store, a->id, a->title->valuestring);
    if (rc == 0 && a->staff_only)
        rc = wrk_store_room_set_staff_only(app->store, a->id, cJSON_IsTrue(a->staff_only));
    changed(r, rc, "a title is 1 to 200 bytes of UTF-8");
}

static void admin_room_delete(wrk_app_t *app, response_t *r, const request_t *q,
                              const admin_request_t *a)
{
    (void)q;
    changed(r, wrk_store_room_delete(app->store, a->id), "a title is 1 to 200 bytes of UTF-8");
}

static int user_row(void *arg, const wrk_user_t *u)
{
    cJSON *arr = arg, *o = cJSON_CreateObject();
    if (!o)
        return MC_ENOMEM;
    cJSON_AddItemToArray(arr, o);
    char id[24];
    snprintf(id, sizeof(id), "%" PRId64, u->id);
    cJSON_AddRawToObject(o, "id", id);
    cJSON_AddStringToObject(o, "username", u->username);
    cJSON_AddBoolToObject(o, "is_staff", u->is_staff);
    cJSON_AddBoolToObject(o, "is_active", u->is_active);
    cJSON_AddBoolToObject(o, "is_superuser", u->is_superuser);
    return 0;
}

static void admin_users(wrk_app_t *app, response_t *r, const request_t *q, const admin_request_t *a)
{
    (void)q, (void)a;
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "users") : NULL;
    if (!arr || wrk_store_user_each(app->store, user_row, arr)) {
        cJSON_Delete(o);
        set_json_error(r, 500, "server error");
    } else {
        set_json(r, 200, o);
    }
}

/* Hashes a new password; an empty one is refused (MC_EINVAL). */
static int hash_password(wrk_app_t *app, const cJSON *password, char hash[WRK_PASSWORD_HASH_MAX])
{
    const char *p = password->valuestring;
    return *p ? wrk_password_hash(&app->pw, p, strlen(p), hash) : MC_EINVAL;
}

/* Whether q's user may do what a asks to target (NULL: a user to make).
 * As Django's tiers: superusers manage everyone; staff manage rooms and the
 * users who are not staff, and their own password; nobody else gives
 * anyone staff or superuser rights. */
static int may_manage(const request_t *q, const wrk_user_t *target, const admin_request_t *a)
{
    if (q->user.is_superuser)
        return 1;
    if (!target)
        return !cJSON_IsTrue(a->is_staff) && !cJSON_IsTrue(a->is_superuser);
    if (a->is_staff || a->is_superuser)
        return 0;
    if (!target->is_staff && !target->is_superuser)
        return 1;
    return target->id == q->user.id && !a->is_active;
}

static void admin_user_add(wrk_app_t *app, response_t *r, const request_t *q,
                           const admin_request_t *a)
{
    char hash[WRK_PASSWORD_HASH_MAX];
    int64_t id;
    int rc;
    /* A superuser is staff too. */
    int superuser = cJSON_IsTrue(a->is_superuser), staff = superuser || cJSON_IsTrue(a->is_staff);
    if (!may_manage(q, NULL, a)) {
        set_json_error(r, 403, "only superusers make staff and superusers");
        return;
    }
    if (!a->username || !a->password || !*a->password->valuestring)
        set_json_error(r, 400, "a user needs a username and a password");
    else if ((rc = hash_password(app, a->password, hash)))
        store_error(r, rc, "the password is too long");
    else if ((rc = wrk_store_batch_begin(app->store)) == 0) {
        rc = wrk_store_user_add(app->store, a->username->valuestring, hash, staff, &id);
        if (rc == 0 && superuser)
            rc = wrk_store_user_set_superuser(app->store, id, 1);
        int end = wrk_store_batch_end(app->store, rc == 0);
        if (rc == 0)
            rc = end;
        if (rc)
            store_error(r, rc, "a username is 1 to 150 bytes of UTF-8");
        else
            created(r, id, 0);
    } else {
        store_error(r, rc, "");
    }
}

/* Applies a's changes to user u (hash: of the new password, or NULL), in
 * one batch of the caller's. */
static int change_user(wrk_app_t *app, const request_t *q, const admin_request_t *a,
                       const wrk_user_t *u, const char *hash)
{
    int rc = 0;
    /* A new password ends the user's sessions: a stolen cookie does not
     * outlive the reset. One's own password keeps the session that set it. */
    if (hash)
        rc = wrk_store_user_set_password(app->store, u->id, hash,
                                         u->id == q->user.id ? q->session : 0);
    /* A superuser is staff too: making a superuser makes staff, unmaking
     * staff unmakes the superuser. */
    int staff = a->is_staff ? cJSON_IsTrue(a->is_staff) : u->is_staff;
    int superuser = a->is_superuser ? cJSON_IsTrue(a->is_superuser) : u->is_superuser;
    if (superuser && a->is_superuser)
        staff = 1;
    if (!staff)
        superuser = 0;
    if (rc == 0 && staff != u->is_staff)
        rc = wrk_store_user_set_staff(app->store, u->id, staff);
    if (rc == 0 && superuser != u->is_superuser)
        rc = wrk_store_user_set_superuser(app->store, u->id, superuser);
    if (rc == 0 && a->is_active)
        rc = wrk_store_user_set_active(app->store, u->id, cJSON_IsTrue(a->is_active));
    return rc;
}

static void admin_user_change(wrk_app_t *app, response_t *r, const request_t *q,
                              const admin_request_t *a)
{
    wrk_user_t u;
    int rc = wrk_store_user_by_id(app->store, a->id, &u);
    if (rc == 0 && !may_manage(q, &u, a)) {
        set_json_error(r, 403, "only superusers manage staff and superusers");
        return;
    }
    /* Hashed before the batch: the database is not held for it. */
    char hash[WRK_PASSWORD_HASH_MAX];
    if (rc == 0 && a->password)
        rc = hash_password(app, a->password, hash);
    if (rc == 0 && (rc = wrk_store_batch_begin(app->store)) == 0) {
        rc = change_user(app, q, a, &u, a->password ? hash : NULL);
        int end = wrk_store_batch_end(app->store, rc == 0);
        if (rc == 0)
            rc = end;
    }
    changed(r, rc, "the password is empty or too long");
}

/* The staff API under /admin/api/: a collection ("rooms") or one of its
 * items ("rooms/ID"), and a method. */
static const struct admin_route {
    const char *collection;
    int item; /* the path ends in /ID */
    const char *method;
    void (*view)(wrk_app_t *app, response_t *r, const request_t *q, const admin_request_t *a);
} admin_routes[] = {
    {"rooms", 0, "GET", admin_rooms},        {"rooms", 0, "POST", admin_room_add},
    {"rooms", 1, "POST", admin_room_change}, {"rooms", 1, "DELETE", admin_room_delete},
    {"users", 0, "GET", admin_users},        {"users", 0, "POST", admin_user_add},
    {"users", 1, "POST", admin_user_change},
};

/* Reads a POST's JSON body into a; answers 400 itself when it is not an
 * object or a field has the wrong type. */
static int admin_body(response_t *r, const request_t *q, cJSON **body, admin_request_t *a)
{
    *body = NULL;
    if (strcmp(q->env->method, "POST") != 0)
        return 0;
    *body = cJSON_ParseWithLength(q->env->body ? q->env->body : "", q->env->body_len);
    if (!cJSON_IsObject(*body)) {
        set_json_error(r, 400, "the body must be a JSON object");
        return -1;
    }
    a->title = cJSON_GetObjectItemCaseSensitive(*body, "title");
    a->staff_only = cJSON_GetObjectItemCaseSensitive(*body, "staff_only");
    a->username = cJSON_GetObjectItemCaseSensitive(*body, "username");
    a->password = cJSON_GetObjectItemCaseSensitive(*body, "password");
    a->is_staff = cJSON_GetObjectItemCaseSensitive(*body, "is_staff");
    a->is_active = cJSON_GetObjectItemCaseSensitive(*body, "is_active");
    a->is_superuser = cJSON_GetObjectItemCaseSensitive(*body, "is_superuser");
    if ((a->title && !cJSON_IsString(a->title)) ||
        (a->staff_only && !cJSON_IsBool(a->staff_only)) ||
        (a->username && !cJSON_IsString(a->username)) ||
        (a->password && !cJSON_IsString(a->password)) ||
        (a->is_staff && !cJSON_IsBool(a->is_staff)) ||
        (a->is_active && !cJSON_IsBool(a->is_active)) ||
        (a->is_superuser && !cJSON_IsBool(a->is_superuser))) {
        set_json_error(r, 400, "a field has the wrong type");
        return -1;
    }
    return 0;
}

static void view_admin_api(wrk_app_t *app, response_t *r, request_t *q, const char *rest)
{
    if (!q->has_user || !q->user.is_staff) {
        set_json_error(r, 403, "staff only");
        return;
    }
    if (unsafe_method(q->env->method) && !csrf_ok(q, NULL)) {
        set_json_error(r, 403, "CSRF verification failed");
        return;
    }
    admin_request_t a = {0};
    cJSON *body;
    if (admin_body(r, q, &body, &a) == 0) {
        const char *slash = strchr(rest, '/');
        size_t clen = slash ? (size_t)(slash - rest) : strlen(rest);
        int item = slash != NULL, known = 0;
        if (item && parse_id(slash + 1, &a.id) != 0)
            clen = 0; /* not an id: no such endpoint */
        for (size_t i = 0; i < sizeof(admin_routes) / sizeof(admin_routes[0]); i++) {
            const struct admin_route *e = &admin_routes[i];
            if (e->item != item || strlen(e->collection) != clen ||
                strncmp(e->collection, rest, clen) != 0)
                continue;
            known = 1;
            if (strcmp(e->method, q->env->method) == 0) {
                e->view(app, r, q, &a);
                known = 2;
                break;
            }
        }
        if (known == 1)
            set_json_error(r, 405, "method not allowed");
        else if (!known)
            set_json_error(r, 404, "no such endpoint");
    }
    cJSON_Delete(body);
}

/* ---- Routing -------------------------------------------------------------------- */

static void view_chat(wrk_app_t *app, response_t *r, request_t *q, const char *rest)
{
    (void)rest;
    view_page(app, r, q, "index.html", "/");
}

static void view_admin(wrk_app_t *app, response_t *r, request_t *q, const char *rest)
{
    (void)rest;
    view_page(app, r, q, "admin.html", "/admin/");
}

static void view_api_rooms(wrk_app_t *app, response_t *r, request_t *q, const char *rest)
{
    (void)rest;
    if (!q->has_user)
        set_json_error(r, 403, "USER_HAS_TO_LOGIN");
    else
        view_rooms(app, r, q, 0);
}

/* Every path the worker answers; the others are 404 (405 unless GET). */
static const struct route {
    const char *path;
    int prefix;     /* path is a prefix, and the view gets the rest */
    int any_method; /* else GET and HEAD only */
    void (*view)(wrk_app_t *app, response_t *r, request_t *q, const char *rest);
} routes[] = {
    {"/accounts/login/", 0, 1, view_login}, {"/accounts/logout/", 0, 1, view_logout},
    {"/admin/api/", 1, 1, view_admin_api},  {"/", 0, 0, view_chat},
    {"/admin/", 0, 0, view_admin},          {"/api/rooms", 0, 0, view_api_rooms},
};

static void route(wrk_app_t *app, response_t *r, request_t *q)
{
    const char *path = q->env->path, *m = q->env->method;
    int get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *e = &routes[i];
        size_t n = strlen(e->path);
        if (e->prefix ? strncmp(path, e->path, n) != 0 : strcmp(path, e->path) != 0)
            continue;
        if (e->any_method || get) {
            e->view(app, r, q, path + n);
            return;
        }
        break;
    }
    if (!get) {
        set_text(r, 405, "Method not allowed\n");
        add_header(r, "allow", "GET, HEAD");
    } else {
        set_text(r, 404, "Not found\n");
    }
}

int wrk_views_request(wrk_app_t *app, const mc_envelope_t *env)
{
    request_t q = {.env = env};
    response_t r = {.status = 500};
    if (wrk_session_cookie(env, WRK_CSRF_COOKIE, q.csrf)) {
        if (wrk_token_new(q.csrf))
            q.csrf[0] = '\0';
        q.csrf_new = 1;
    }
    q.has_user = wrk_session_user(app, env, &q.user, &q.session) == 0;
    route(app, &r, &q);
    if (q.csrf_new && q.csrf[0])
        set_csrf_cookie(app, &r, &q);
    mc_envelope_t out = {.type = MC_ENV_HTTP_RESPONSE, .status = r.status};
    memcpy(out.headers, r.headers, r.nheaders * sizeof(r.headers[0]));
    out.nheaders = r.nheaders;
    out.body = r.body ? r.body : "";
    out.body_len = r.body ? r.body_len : 0;
    int rc = wrk_port_send(&app->port, env->reply, &out);
    free(r.body);
    return rc;
}
