#include "worker/views.h"
#include "common/cookie.h"
#include "common/error.h"
#include "common/form.h"
#include "common/log.h"
#include "common/clock.h"
#include "worker/command.h"
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
    char session[WRK_TOKEN_HEX_LEN + 1];
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

/* ---- Sessions and CSRF ------------------------------------------------------ */

/* Copies the value of cookie name into out when it is a well-formed token. */
static int token_cookie(const mc_envelope_t *env, const char *name, char out[WRK_TOKEN_HEX_LEN + 1])
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

int wrk_views_session_user(wrk_app_t *app, const mc_envelope_t *env, wrk_user_t *user,
                           int64_t *session)
{
    char token[WRK_TOKEN_HEX_LEN + 1];
    if (token_cookie(env, "sessionid", token))
        return MC_ENOTFOUND;
    return wrk_store_session_user(app->store, token, mc_now_ms(), user, session);
}

static const char *secure(const wrk_app_t *app)
{
    return app->cfg.https ? "; Secure" : "";
}

static void set_csrf_cookie(wrk_app_t *app, response_t *r, const request_t *q)
{
    add_header(r, "set-cookie", "csrftoken=%s; Max-Age=%ld; Path=/; SameSite=Lax%s", q->csrf,
               CSRF_COOKIE_AGE, secure(app));
}

/* Whether an unsafe request carries the csrftoken cookie's value in the form
 * field or the X-CSRFToken header. */
static int csrf_ok(const request_t *q, const mc_form_t *form)
{
    if (q->csrf_new)
        return 0; /* no cookie: nothing to compare with */
    /* As Django: the form field first, then the header. */
    size_t glen = 0;
    const char *given = form ? mc_form_get(form, "csrfmiddlewaretoken", &glen) : NULL;
    if (!given) {
        given = mc_envelope_header(q->env, "x-csrftoken");
        glen = given ? strlen(given) : 0;
    }
    return given && wrk_token_equal(given, glen, q->csrf, strlen(q->csrf));
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

static void view_login(wrk_app_t *app, response_t *r, request_t *q)
{
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
    if (!user || !*user || !pass || strlen(user) > MC_USERNAME_MAX) {
        login_page(app, r, q, next, "Please enter a username and a password.", 200);
        mc_form_clear(&form);
        goto out;
    }
    int64_t now = mc_now_ms(), window = app->cfg.login_window_s * 1000;
    const char *addr = env->client ? env->client : "";
    long by_user = 0, by_addr = 0;
    wrk_store_login_failures(app->store, WRK_LIMIT_USER, user, now, window, &by_user);
    wrk_store_login_failures(app->store, WRK_LIMIT_ADDR, addr, now, window, &by_addr);
    if (by_user >= app->cfg.login_max_failures || by_addr >= app->cfg.login_max_failures) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Too many failed logins. Try again in %ld minutes.",
                 (app->cfg.login_window_s + 59) / 60);
        login_page(app, r, q, next, msg, 429);
        mc_form_clear(&form);
        goto out;
    }
    wrk_user_t u;
    int found = wrk_store_user_by_name(app->store, user, &u) == 0 && u.is_active;
    int ok = wrk_password_verify(&app->pw, found ? u.password : NULL, pass, plen) == 0;
    if (!ok) {
        wrk_store_login_failure_add(app->store, WRK_LIMIT_USER, user, now, window, NULL);
        wrk_store_login_failure_add(app->store, WRK_LIMIT_ADDR, addr, now, window, NULL);
        mc_info("worker: failed login from %s", addr);
        login_page(app, r, q, next,
                   "Please enter a correct username and password. Note that both fields may be "
                   "case-sensitive.",
                   200);
        mc_form_clear(&form);
        goto out;
    }
    wrk_store_login_failure_reset(app->store, WRK_LIMIT_USER, user);
    char token[WRK_TOKEN_HEX_LEN + 1];
    int rc = wrk_token_new(token);
    if (rc == 0)
        rc = wrk_store_session_add(app->store, token, u.id, now + app->cfg.session_ttl_s * 1000);
    if (rc) {
        set_text(r, 500, "Server error: the session could not be stored\n");
        mc_form_clear(&form);
        goto out;
    }
    /* As Django does: a new CSRF token at login. */
    if (wrk_token_new(q->csrf) == 0)
        q->csrf_new = 1;
    redirect(r, safe_next(next));
    add_header(r, "set-cookie", "sessionid=%s; Max-Age=%ld; Path=/; HttpOnly; SameSite=Lax%s",
               token, app->cfg.session_ttl_s, secure(app));
    mc_form_clear(&form);
out:
    if (have_query)
        mc_form_clear(&query);
}

static void view_logout(wrk_app_t *app, response_t *r, request_t *q)
{
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
    if (q->session[0])
        wrk_store_session_delete(app->store, q->session);
    redirect(r, "/accounts/login/");
    add_header(r, "set-cookie", "sessionid=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax%s",
               secure(app));
}

static void view_index(wrk_app_t *app, response_t *r, const request_t *q, const char *tpl,
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
    if (wrk__rooms_text(app, all || q->user.is_staff, &text)) {
        set_text(r, 500, "Server error\n");
        return;
    }
    r->status = 200;
    set_body(r, text, strlen(text), "application/json");
    add_header(r, "cache-control", "no-store");
}

/* ---- Staff API ----------------------------------------------------------------- */

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

static void view_admin_api(wrk_app_t *app, response_t *r, const request_t *q, const char *rest)
{
    const char *m = q->env->method;
    if (!q->has_user || !q->user.is_staff) {
        set_json_error(r, 403, "staff only");
        return;
    }
    if (unsafe_method(m) && !csrf_ok(q, NULL)) {
        set_json_error(r, 403, "CSRF verification failed");
        return;
    }
    cJSON *body = NULL;
    if (strcmp(m, "POST") == 0) {
        body = cJSON_ParseWithLength(q->env->body ? q->env->body : "", q->env->body_len);
        if (!cJSON_IsObject(body)) {
            cJSON_Delete(body);
            set_json_error(r, 400, "the body must be a JSON object");
            return;
        }
    }
    const cJSON *title = cJSON_GetObjectItemCaseSensitive(body, "title");
    const cJSON *staff_only = cJSON_GetObjectItemCaseSensitive(body, "staff_only");
    const cJSON *username = cJSON_GetObjectItemCaseSensitive(body, "username");
    const cJSON *password = cJSON_GetObjectItemCaseSensitive(body, "password");
    const cJSON *is_staff = cJSON_GetObjectItemCaseSensitive(body, "is_staff");
    const cJSON *is_active = cJSON_GetObjectItemCaseSensitive(body, "is_active");
    if ((title && !cJSON_IsString(title)) || (staff_only && !cJSON_IsBool(staff_only)) ||
        (username && !cJSON_IsString(username)) || (password && !cJSON_IsString(password)) ||
        (is_staff && !cJSON_IsBool(is_staff)) || (is_active && !cJSON_IsBool(is_active))) {
        cJSON_Delete(body);
        set_json_error(r, 400, "a field has the wrong type");
        return;
    }
    int64_t id = 0;
    int rc = 0;
    if (strcmp(rest, "rooms") == 0 && strcmp(m, "GET") == 0) {
        view_rooms(app, r, q, 1);
    } else if (strcmp(rest, "rooms") == 0 && strcmp(m, "POST") == 0) {
        if (!title) {
            set_json_error(r, 400, "a room needs a title");
        } else if ((rc = wrk_store_room_add(app->store, title->valuestring,
                                            cJSON_IsTrue(staff_only), &id))) {
            store_error(r, rc, "a title has 1 to 200 bytes");
        } else {
            cJSON *o = cJSON_CreateObject();
            char ids[24];
            snprintf(ids, sizeof(ids), "%" PRId64, id);
            if (o)
                cJSON_AddStringToObject(o, "id", ids);
            set_json(r, 201, o);
        }
    } else if (strncmp(rest, "rooms/", 6) == 0 && parse_id(rest + 6, &id) == 0) {
        if (strcmp(m, "DELETE") == 0) {
            rc = wrk_store_room_delete(app->store, id);
        } else if (strcmp(m, "POST") == 0) {
            if (title)
                rc = wrk_store_room_rename(app->store, id, title->valuestring);
            if (rc == 0 && staff_only)
                rc = wrk_store_room_set_staff_only(app->store, id, cJSON_IsTrue(staff_only));
        } else {
            rc = 1;
            set_json_error(r, 405, "method not allowed");
        }
        if (rc < 0)
            store_error(r, rc, "a title has 1 to 200 bytes");
        else if (rc == 0)
            set_json(r, 200, cJSON_CreateObject());
    } else if (strcmp(rest, "users") == 0 && strcmp(m, "GET") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON *arr = o ? cJSON_AddArrayToObject(o, "users") : NULL;
        if (!arr || wrk_store_user_each(app->store, user_row, arr)) {
            cJSON_Delete(o);
            set_json_error(r, 500, "server error");
        } else {
            set_json(r, 200, o);
        }
    } else if (strcmp(rest, "users") == 0 && strcmp(m, "POST") == 0) {
        char hash[WRK_PASSWORD_HASH_MAX];
        if (!username || !password || !*password->valuestring) {
            set_json_error(r, 400, "a user needs a username and a password");
        } else if ((rc = wrk_password_hash(&app->pw, password->valuestring,
                                           strlen(password->valuestring), hash))) {
            store_error(r, rc, "the password is too long");
        } else if ((rc = wrk_store_user_add(app->store, username->valuestring, hash,
                                            cJSON_IsTrue(is_staff), &id))) {
            store_error(r, rc, "a username has 1 to 150 bytes");
        } else {
            cJSON *o = cJSON_CreateObject();
            char ids[24];
            snprintf(ids, sizeof(ids), "%" PRId64, id);
            if (o)
                cJSON_AddRawToObject(o, "id", ids);
            set_json(r, 201, o);
        }
    } else if (strncmp(rest, "users/", 6) == 0 && parse_id(rest + 6, &id) == 0 &&
               strcmp(m, "POST") == 0) {
        wrk_user_t u;
        rc = wrk_store_user_by_id(app->store, id, &u);
        if (rc == 0 && password) {
            char hash[WRK_PASSWORD_HASH_MAX];
            rc = *password->valuestring ? wrk_password_hash(&app->pw, password->valuestring,
                                                            strlen(password->valuestring), hash)
                                        : MC_EINVAL;
            if (rc == 0)
                rc = wrk_store_user_set_password(app->store, id, hash);
        }
        if (rc == 0 && is_staff)
            rc = wrk_store_user_set_staff(app->store, id, cJSON_IsTrue(is_staff));
        if (rc == 0 && is_active)
            rc = wrk_store_user_set_active(app->store, id, cJSON_IsTrue(is_active));
        if (rc)
            store_error(r, rc, "the password is empty or too long");
        else
            set_json(r, 200, cJSON_CreateObject());
    } else {
        set_json_error(r, 404, "no such endpoint");
    }
    cJSON_Delete(body);
}

/* ---- Routing -------------------------------------------------------------------- */

static void route(wrk_app_t *app, response_t *r, request_t *q)
{
    const char *path = q->env->path, *m = q->env->method;
    int get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    if (strcmp(path, "/accounts/login/") == 0) {
        view_login(app, r, q);
    } else if (strcmp(path, "/accounts/logout/") == 0) {
        view_logout(app, r, q);
    } else if (strncmp(path, "/admin/api/", 11) == 0) {
        view_admin_api(app, r, q, path + 11);
    } else if (!get) {
        set_text(r, 405, "Method not allowed\n");
        add_header(r, "allow", "GET, HEAD");
    } else if (strcmp(path, "/") == 0) {
        view_index(app, r, q, "index.html", "/");
    } else if (strcmp(path, "/admin/") == 0) {
        view_index(app, r, q, "admin.html", "/admin/");
    } else if (strcmp(path, "/api/rooms") == 0) {
        if (!q->has_user)
            set_json_error(r, 403, "USER_HAS_TO_LOGIN");
        else
            view_rooms(app, r, q, 0);
    } else {
        set_text(r, 404, "Not found\n");
    }
}

int wrk_views_request(wrk_app_t *app, const mc_envelope_t *env)
{
    request_t q = {.env = env};
    response_t r = {.status = 500};
    if (token_cookie(env, "csrftoken", q.csrf)) {
        if (wrk_token_new(q.csrf)) {
            q.csrf[0] = '\0';
        }
        q.csrf_new = 1;
    }
    if (token_cookie(env, "sessionid", q.session) == 0 &&
        wrk_store_session_user(app->store, q.session, mc_now_ms(), &q.user, NULL) == 0)
        q.has_user = 1;
    route(app, &r, &q);
    if (q.csrf_new && q.csrf[0])
        set_csrf_cookie(app, &r, &q);
    mc_envelope_t out = {.type = MC_ENV_HTTP_RESPONSE, .status = r.status};
    memcpy(out.headers, r.headers, r.nheaders * sizeof(r.headers[0]));
    out.nheaders = r.nheaders;
    out.body = r.body ? r.body : "";
    out.body_len = r.body ? r.body_len : 0;
    char *data;
    size_t len;
    int rc = mc_envelope_encode(&out, &data, &len);
    free(r.body);
    if (rc) {
        mc_error("worker: cannot encode a response: %s", mc_strerror(rc));
        return rc;
    }
    rc = wrk__send_data(app, env->reply, data, len);
    free(data);
    if (rc)
        mc_warn("worker: response to %s not sent: %s", env->reply, mc_strerror(rc));
    return rc;
}
