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

static const char *secure(const wrk_app_t *app)
{
    return app->cfg.https ? "; Secure" : "";
}

static void set_csrf_cookie(wrk_app_t *app, response_t *r, const request_t *q)
{
    add_header(r, "set-cookie", "csrftoken=%s; Max-Age=%ld; Path=/; SameSite=Lax%s", q->csrf,
               CSRF_COOKIE_AGE, secure(app));
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
    char token[WRK_TOKEN_HEX_LEN + 1], msg[160];
    int rc = !user || !*user || !pass || strlen(user) > MC_USERNAME_MAX
                 ? MC_EINVAL
                 : wrk_session_login(app, user, pass, plen, env->client, token);
    switch (rc) {
    case 0:
        /* As Django does: a new CSRF token at login. */
        if (wrk_token_new(q->csrf) == 0)
            q->csrf_new = 1;
        redirect(r, safe_next(next));
        add_header(r, "set-cookie", "sessionid=%s; Max-Age=%ld; Path=/; HttpOnly; SameSite=Lax%s",
                   token, app->cfg.session_ttl_s, secure(app));
        break;
    case MC_EINVAL:
        login_page(app, r, q, next, "Please enter a username and a password.", 200);
        break;
    case MC_EAGAIN:
        snprintf(msg, sizeof(msg), "Too many failed logins. Try again in %ld minutes.",
                 (app->cfg.login_window_s + 59) / 60);
        login_page(app, r, q, next, msg, 429);
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
    add_header(r, "set-cookie", "sessionid=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax%s",
               secure(app));
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
    const cJSON *title, *staff_only, *username, *password, *is_staff, *is_active;
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
        store_error(r, rc, "a title has 1 to 200 bytes");
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
    changed(r, rc, "a title has 1 to 200 bytes");
}

static void admin_room_delete(wrk_app_t *app, response_t *r, const request_t *q,
                              const admin_request_t *a)
{
    (void)q;
    changed(r, wrk_store_room_delete(app->store, a->id), "a title has 1 to 200 bytes");
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

static void admin_user_add(wrk_app_t *app, response_t *r, const request_t *q,
                           const admin_request_t *a)
{
    (void)q;
    char hash[WRK_PASSWORD_HASH_MAX];
    int64_t id;
    int rc;
    if (!a->username || !a->password || !*a->password->valuestring)
        set_json_error(r, 400, "a user needs a username and a password");
    else if ((rc = hash_password(app, a->password, hash)))
        store_error(r, rc, "the password is too long");
    else if ((rc = wrk_store_user_add(app->store, a->username->valuestring, hash,
                                      cJSON_IsTrue(a->is_staff), &id)))
        store_error(r, rc, "a username has 1 to 150 bytes");
    else
        created(r, id, 0);
}

static void admin_user_change(wrk_app_t *app, response_t *r, const request_t *q,
                              const admin_request_t *a)
{
    (void)q;
    wrk_user_t u;
    char hash[WRK_PASSWORD_HASH_MAX];
    int rc = wrk_store_user_by_id(app->store, a->id, &u);
    if (rc == 0 && a->password && (rc = hash_password(app, a->password, hash)) == 0)
        rc = wrk_store_user_set_password(app->store, a->id, hash);
    if (rc == 0 && a->is_staff)
        rc = wrk_store_user_set_staff(app->store, a->id, cJSON_IsTrue(a->is_staff));
    if (rc == 0 && a->is_active)
        rc = wrk_store_user_set_active(app->store, a->id, cJSON_IsTrue(a->is_active));
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
    if ((a->title && !cJSON_IsString(a->title)) ||
        (a->staff_only && !cJSON_IsBool(a->staff_only)) ||
        (a->username && !cJSON_IsString(a->username)) ||
        (a->password && !cJSON_IsString(a->password)) ||
        (a->is_staff && !cJSON_IsBool(a->is_staff)) ||
        (a->is_active && !cJSON_IsBool(a->is_active))) {
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
    if (wrk_session_cookie(env, "csrftoken", q.csrf)) {
        if (wrk_token_new(q.csrf))
            q.csrf[0] = '\0';
        q.csrf_new = 1;
    }
    q.has_user = wrk_session_user(app, env, &q.user, NULL) == 0;
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
