/* The worker's application in-process: envelopes in, and what leaves through
 * the sink recorded by a fake channel layer that keeps group membership and
 * fans group messages out to member channels (skipping "except"), as an
 * interface would. */
#include "common/envelope.h"
#include "common/error.h"
#include "common/log.h"
#include "worker/app.h"
#include "worker/changes.h"
#include "worker/dispatch.h"

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define MAX_OUT 512
#define MAX_MEMBERS 256

typedef struct fake {
    struct {
        char channel[128];
        char *data;
    } out[MAX_OUT];
    size_t nout, read;
    struct {
        char group[64];
        char channel[128];
    } members[MAX_MEMBERS];
    size_t nmembers;
    struct {
        char key[96];
        long taken, refused;
    } buckets[16]; /* never refilled: a burst, then refusals */
    size_t nbuckets;
    char names[MAX_OUT][32]; /* the group sends named so far */
    size_t nnames;
} fake_t;

static void record(fake_t *f, const char *channel, const char *data, size_t len)
{
    assert_true(f->nout < MAX_OUT);
    snprintf(f->out[f->nout].channel, sizeof(f->out[0].channel), "%s", channel);
    f->out[f->nout].data = strndup(data, len);
    f->nout++;
}

static int fake_send(void *ctx, const char *channel, const char *data, size_t len)
{
    record(ctx, channel, data, len);
    return 0;
}

static int fake_group_add(void *ctx, const char *group, const char *channel)
{
    fake_t *f = ctx;
    for (size_t i = 0; i < f->nmembers; i++)
        if (!strcmp(f->members[i].group, group) && !strcmp(f->members[i].channel, channel))
            return 0;
    assert_true(f->nmembers < MAX_MEMBERS);
    snprintf(f->members[f->nmembers].group, 64, "%s", group);
    snprintf(f->members[f->nmembers].channel, 128, "%s", channel);
    f->nmembers++;
    return 0;
}

static int fake_group_discard(void *ctx, const char *group, const char *channel)
{
    fake_t *f = ctx;
    for (size_t i = 0; i < f->nmembers; i++) {
        if (!strcmp(f->members[i].group, group) && !strcmp(f->members[i].channel, channel)) {
            f->members[i] = f->members[--f->nmembers];
            return 0;
        }
    }
    return 0;
}

/* Delivers to every member as Redis and the interface do: a name used
 * before delivers nothing, the except member gets nothing, the own member
 * gets the text ending in ,"own":true. */
static int fake_deliver(fake_t *f, const char *group, const char *once, const char *data,
                        size_t len)
{
    for (size_t i = 0; once && i < f->nnames; i++)
        if (!strcmp(f->names[i], once))
            return 0;
    if (once) {
        assert_true(f->nnames < MAX_OUT);
        snprintf(f->names[f->nnames++], sizeof(f->names[0]), "%s", once);
    }
    mc_envelope_t env;
    assert_int_equal(mc_envelope_decode(&env, data, len), 0);
    for (size_t i = 0; i < f->nmembers; i++) {
        const char *member = f->members[i].channel;
        if (strcmp(f->members[i].group, group) != 0 || (env.except && !strcmp(env.except, member)))
            continue;
        if (env.type != MC_ENV_WS_SEND || strcmp(env.own, member) != 0) {
            record(f, member, data, len);
            continue;
        }
        assert_true(env.body_len > 1 && env.body[env.body_len - 1] == '}');
        char text[8192];
        int n = snprintf(text, sizeof(text), "%.*s,\"own\":true}", (int)env.body_len - 1, env.body);
        assert_true(n > 0 && (size_t)n < sizeof(text));
        mc_envelope_t copy = {.type = MC_ENV_WS_SEND, .body = text, .body_len = (size_t)n};
        char *out;
        size_t out_len;
        assert_int_equal(mc_envelope_encode(&copy, &out, &out_len), 0);
        record(f, member, out, out_len);
        free(out);
    }
    mc_envelope_clear(&env);
    return 0;
}

static int fake_group_send(void *ctx, const wrk_outgoing_t *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fake_deliver(ctx, msgs[i].group, msgs[i].once, msgs[i].data, msgs[i].len);
    return 0;
}

static int fake_rate_take(void *ctx, const char *key, double rate, long burst, int *allowed,
                          long *refused)
{
    fake_t *f = ctx;
    (void)rate;
    size_t i;
    for (i = 0; i < f->nbuckets; i++)
        if (!strcmp(f->buckets[i].key, key))
            break;
    if (i == f->nbuckets) {
        assert_true(f->nbuckets < sizeof(f->buckets) / sizeof(f->buckets[0]));
        snprintf(f->buckets[f->nbuckets++].key, sizeof(f->buckets[0].key), "%s", key);
    }
    *allowed = f->buckets[i].taken < burst;
    if (*allowed) {
        f->buckets[i].taken++;
        f->buckets[i].refused = 0;
    } else {
        f->buckets[i].refused++;
    }
    *refused = f->buckets[i].refused;
    return 0;
}

typedef struct world {
    char dir[64];
    char db[128];
    fake_t fake;
    wrk_app_t app;
    wrk_settings_t cfg;
} world_t;

/* Handles one envelope as the worker's loop does with a batch of one: the
 * chat messages it stored are published before the next. */
static void handle(world_t *w, const char *data, size_t len)
{
    assert_int_equal(wrk_dispatch_envelope(&w->app, data, len), 0);
    wrk_port_flush(&w->app.port);
}

static char *ctl_path(void)
{
    static char path[512];
    const char *b = getenv("MC_BUILD");
    snprintf(path, sizeof(path), "%s/bin/chatctl", b ? b : "build/asan");
    return path;
}

/* Runs chatctl on the world's database (its own process, as an admin would). */
static void ctl(world_t *w, const char *input, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "printf '%s' | CHAT_ARGON2_MEMORY_KIB=64 CHAT_ARGON2_TIME=1 %s --db %s %s >/dev/null",
             input, ctl_path(), w->db, args);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    world_t *w = calloc(1, sizeof(*w));
    strcpy(w->dir, "/tmp/mc-app-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    snprintf(w->db, sizeof(w->db), "%s/chat.sqlite3", w->dir);
    wrk_settings_defaults(&w->cfg);
    w->cfg.argon2_m = 64;
    w->cfg.argon2_t = 1;
    static char root[512];
    const char *src = getenv("MC_SOURCE");
    snprintf(root, sizeof(root), "%s/web", src ? src : ".");
    w->cfg.web_root = root;
    w->cfg.login_max_failures = 3;
    wrk_sink_t sink = {.ctx = &w->fake,
                       .send = fake_send,
                       .group_add = fake_group_add,
                       .group_discard = fake_group_discard,
                       .group_send = fake_group_send,
                       .rate_take = fake_rate_take};
    assert_int_equal(wrk_app_init(&w->app, &w->cfg, w->db, &sink), 0);
    ctl(w, "pw-ann\\n", "user add ann --password-stdin");
    ctl(w, "pw-bob\\n", "user add bob --password-stdin");
    ctl(w, "pw-sue\\n", "user add sue --staff --password-stdin");
    ctl(w, "", "room add Lobby");
    ctl(w, "", "room add Staff --staff-only");
    /* Changes made so far are old news. */
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world_t *w = *state;
    wrk_app_close(&w->app);
    for (size_t i = 0; i < w->fake.nout; i++)
        free(w->fake.out[i].data);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
    assert_int_equal(system(cmd), 0);
    free(w);
    return 0;
}

/* The next recorded envelope for channel, decoded (caller clears), or fails. */
static void next_for(world_t *w, const char *channel, mc_envelope_t *env)
{
    for (size_t i = w->fake.read; i < w->fake.nout; i++) {
        if (strcmp(w->fake.out[i].channel, channel) == 0 && w->fake.out[i].data[0]) {
            char *d = w->fake.out[i].data;
            assert_int_equal(mc_envelope_decode(env, d, strlen(d)), 0);
            w->fake.out[i].data[0] = '\0'; /* consumed */
            return;
        }
    }
    fail_msg("nothing more for %s", channel);
}

/* Whether anything unread is left for channel. */
static int pending(world_t *w, const char *channel)
{
    for (size_t i = w->fake.read; i < w->fake.nout; i++)
        if (strcmp(w->fake.out[i].channel, channel) == 0 && w->fake.out[i].data[0])
            return 1;
    return 0;
}

/* The next websocket.send text for channel must equal want. */
static void expect_text(world_t *w, const char *channel, const char *want)
{
    mc_envelope_t env;
    next_for(w, channel, &env);
    assert_int_equal(env.type, MC_ENV_WS_SEND);
    assert_string_equal(env.body, want);
    mc_envelope_clear(&env);
}

/* The next websocket.send text for channel, copied (caller frees). */
static char *next_text(world_t *w, const char *channel)
{
    mc_envelope_t env;
    next_for(w, channel, &env);
    assert_int_equal(env.type, MC_ENV_WS_SEND);
    char *t = strdup(env.body);
    mc_envelope_clear(&env);
    return t;
}

static void expect_text_has(world_t *w, const char *channel, const char *part)
{
    char *t = next_text(w, channel);
    if (!strstr(t, part))
        fail_msg("%s lacks %s", t, part);
    free(t);
}

typedef struct http_reply {
    int status;
    char location[256];
    char cookies[512];
    char *body;
} http_reply_t;

static void http(world_t *w, const char *method, const char *path, const char *query,
                 const char *cookie, const char *csrf_header, const char *body, http_reply_t *out)
{
    mc_envelope_t env = {.type = MC_ENV_HTTP_REQUEST,
                         .reply = "ifc.t!h",
                         .method = method,
                         .path = path,
                         .query = query,
                         .client = "10.0.0.1",
                         .body = body,
                         .body_len = strlen(body)};
    if (cookie)
        env.headers[env.nheaders++] = (mc_header_t){"cookie", cookie};
    if (csrf_header)
        env.headers[env.nheaders++] = (mc_header_t){"x-csrftoken", csrf_header};
    char *data;
    size_t len;
    assert_int_equal(mc_envelope_encode(&env, &data, &len), 0);
    handle(w, data, len);
    free(data);
    mc_envelope_t r;
    next_for(w, "ifc.t!h", &r);
    assert_int_equal(r.type, MC_ENV_HTTP_RESPONSE);
    memset(out, 0, sizeof(*out));
    out->status = r.status;
    for (size_t i = 0; i < r.nheaders; i++) {
        if (!strcmp(r.headers[i].name, "location"))
            snprintf(out->location, sizeof(out->location), "%s", r.headers[i].value);
        if (!strcmp(r.headers[i].name, "set-cookie")) {
            strncat(out->cookies, r.headers[i].value,
                    sizeof(out->cookies) - strlen(out->cookies) - 2);
            strcat(out->cookies, "\n");
        }
    }
    out->body = strdup(r.body ? r.body : "");
    mc_envelope_clear(&r);
}

/* Copies the value of cookie name from Set-Cookie lines into out. */
static int cookie_value(const http_reply_t *r, const char *name, char *out, size_t size)
{
    char key[64];
    snprintf(key, sizeof(key), "%s=", name);
    const char *p = strstr(r->cookies, key);
    if (!p)
        return -1;
    p += strlen(key);
    size_t n = strcspn(p, ";\n");
    if (n >= size)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* Logs in; fills the Cookie header to send afterwards. */
static void login(world_t *w, const char *user, const char *password, char *cookie, size_t size)
{
    http_reply_t r;
    char csrf[64], session[64], body[256], cookie1[128];
    http(w, "GET", "/accounts/login/", "next=/", NULL, NULL, "", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(cookie_value(&r, "csrftoken", csrf, sizeof(csrf)), 0);
    assert_non_null(strstr(r.body, csrf));
    free(r.body);
    snprintf(cookie1, sizeof(cookie1), "csrftoken=%s", csrf);
    snprintf(body, sizeof(body), "username=%s&password=%s&next=%%2F&csrfmiddlewaretoken=%s", user,
             password, csrf);
    http(w, "POST", "/accounts/login/", "", cookie1, NULL, body, &r);
    assert_int_equal(r.status, 302);
    assert_string_equal(r.location, "/");
    assert_non_null(strstr(r.cookies, "; HttpOnly; SameSite=Lax"));
    assert_int_equal(cookie_value(&r, "sessionid", session, sizeof(session)), 0);
    assert_int_equal(cookie_value(&r, "csrftoken", csrf, sizeof(csrf)), 0);
    free(r.body);
    snprintf(cookie, size, "csrftoken=%s; sessionid=%s", csrf, session);
}

typedef struct sock {
    char channel[64];
    mc_scope_t scope;
} sock_t;

static void ws_connect(world_t *w, const char *cookie, const char *channel, sock_t *s)
{
    mc_envelope_t env = {.type = MC_ENV_WS_CONNECT,
                         .reply = channel,
                         .method = "GET",
                         .path = "/chat/stream/",
                         .query = "",
                         .client = "10.0.0.1"};
    env.headers[env.nheaders++] = (mc_header_t){"cookie", cookie};
    char *data;
    size_t len;
    assert_int_equal(mc_envelope_encode(&env, &data, &len), 0);
    handle(w, data, len);
    free(data);
    mc_envelope_t r;
    next_for(w, channel, &r);
    assert_int_equal(r.type, MC_ENV_WS_ACCEPT);
    assert_int_equal(r.has_scope, 1);
    snprintf(s->channel, sizeof(s->channel), "%s", channel);
    s->scope = r.scope;
    mc_envelope_clear(&r);
    expect_text_has(w, channel, "{\"rooms\":[");
}

/* Sends a frame as the interface would: scope and current groups. */
/* A websocket.receive of text on s, handled as part of a batch: the chat
 * messages it stores wait for the end of the batch (wrk_port_flush). */
static void ws_send_in_batch(world_t *w, const sock_t *s, const char *text)
{
    mc_envelope_t env = {.type = MC_ENV_WS_RECEIVE,
                         .reply = s->channel,
                         .has_scope = 1,
                         .scope = s->scope,
                         .body = text,
                         .body_len = strlen(text)};
    for (size_t i = 0; i < w->fake.nmembers; i++)
        if (!strcmp(w->fake.members[i].channel, s->channel))
            env.groups[env.ngroups++] = w->fake.members[i].group;
    char *data;
    size_t len;
    assert_int_equal(mc_envelope_encode(&env, &data, &len), 0);
    assert_int_equal(wrk_dispatch_envelope(&w->app, data, len), 0);
    free(data);
}

static void ws_send(world_t *w, const sock_t *s, const char *text)
{
    ws_send_in_batch(w, s, text);
    wrk_port_flush(&w->app.port);
}

static void ws_disconnect(world_t *w, const sock_t *s)
{
    mc_envelope_t env = {.type = MC_ENV_WS_DISCONNECT,
                         .reply = s->channel,
                         .has_scope = 1,
                         .scope = s->scope,
                         .code = 1001};
    for (size_t i = 0; i < w->fake.nmembers; i++)
        if (!strcmp(w->fake.members[i].channel, s->channel))
            env.groups[env.ngroups++] = w->fake.members[i].group;
    char *data;
    size_t len;
    assert_int_equal(mc_envelope_encode(&env, &data, &len), 0);
    handle(w, data, len);
    free(data);
}

/* ---- HTTP ---------------------------------------------------------------------- */

static void index_redirects_to_login_without_a_session(void **state)
{
    world_t *w = *state;
    http_reply_t r;
    http(w, "GET", "/", "", NULL, NULL, "", &r);
    assert_int_equal(r.status, 302);
    assert_string_equal(r.location, "/accounts/login/?next=/");
    free(r.body);
    http(w, "GET", "/", "", "sessionid=0123456789abcdef0123456789abcdef", NULL, "", &r);
    assert_int_equal(r.status, 302);
    free(r.body);
}

static void login_then_the_chat_page(void **state)
{
    world_t *w = *state;
    char cookie[256];
    login(w, "ann", "pw-ann", cookie, sizeof(cookie));
    http_reply_t r;
    http(w, "GET", "/", "", cookie, NULL, "", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "data-username=\"ann\""));
    free(r.body);
    http(w, "GET", "/api/rooms", "", cookie, NULL, "", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body,
                        "{\"rooms\":[{\"id\":\"1\",\"title\":\"Lobby\",\"staff_only\":false}]}");
    free(r.body);
}

static void a_wrong_password_shows_an_error_and_sets_no_session(void **state)
{
    world_t *w = *state;
    http_reply_t r;
    char csrf[64], cookie[128];
    http(w, "GET", "/accounts/login/", "", NULL, NULL, "", &r);
    assert_int_equal(cookie_value(&r, "csrftoken", csrf, sizeof(csrf)), 0);
    free(r.body);
    snprintf(cookie, sizeof(cookie), "csrftoken=%s", csrf);
    char body[200];
    snprintf(body, sizeof(body), "username=ann&password=nope&csrfmiddlewaretoken=%s", csrf);
    http(w, "POST", "/accounts/login/", "", cookie, NULL, body, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "Please enter a correct username and password"));
    assert_null(strstr(r.cookies, "sessionid"));
    free(r.body);
    /* An unknown user reads the same. */
    snprintf(body, sizeof(body), "username=zed&password=nope&csrfmiddlewaretoken=%s", csrf);
    http(w, "POST", "/accounts/login/", "", cookie, NULL, body, &r);
    assert_non_null(strstr(r.body, "Please enter a correct username and password"));
    free(r.body);
}

static void login_without_csrf_is_forbidden(void **state)
{
    world_t *w = *state;
    http_reply_t r;
    http(w, "POST", "/accounts/login/", "", NULL, NULL, "username=ann&password=pw-ann", &r);
    assert_int_equal(r.status, 403);
    free(r.body);
    http(w, "POST", "/accounts/login/", "", "csrftoken=0123456789abcdef0123456789abcdef", NULL,
         "username=ann&password=pw-ann&csrfmiddlewaretoken=0123456789abcdef0123456789abcdee", &r);
    assert_int_equal(r.status, 403);
    free(r.body);
    /* The header works as well as the field. */
    http(w, "POST", "/accounts/login/", "", "csrftoken=0123456789abcdef0123456789abcdef",
         "0123456789abcdef0123456789abcdef", "username=ann&password=pw-ann", &r);
    assert_int_equal(r.status, 302);
    free(r.body);
}

static void next_must_stay_on_the_site(void **state)
{
    world_t *w = *state;
    const char *bad[] = {"https%3A%2F%2Fevil.example%2F", "%2F%2Fevil.example", "%2F%5Cevil",
                         "javascript%3Aalert(1)"};
    for (size_t i = 0; i < 5; i++) {
        http_reply_t r;
        char body[256];
        const char *next = i < 4 ? bad[i] : "%2Fadmin%2F";
        snprintf(body, sizeof(body),
                 "username=ann&password=pw-ann&next=%s&csrfmiddlewaretoken="
                 "0123456789abcdef0123456789abcdef",
                 next);
        http(w, "POST", "/accounts/login/", "", "csrftoken=0123456789abcdef0123456789abcdef", NULL,
             body, &r);
        assert_int_equal(r.status, 302);
        assert_string_equal(r.location, i < 4 ? "/" : "/admin/");
        free(r.body);
    }
}

static void too_many_failures_lock_the_login(void **state)
{
    world_t *w = *state;
    const char *cookie = "csrftoken=0123456789abcdef0123456789abcdef";
    http_reply_t r;
    for (int i = 0; i < 3; i++) {
        http(w, "POST", "/accounts/login/", "", cookie, NULL,
             "username=bob&password=bad&csrfmiddlewaretoken=0123456789abcdef0123456789abcdef", &r);
        assert_int_equal(r.status, 200);
        free(r.body);
    }
    http(w, "POST", "/accounts/login/", "", cookie, NULL,
         "username=bob&password=pw-bob&csrfmiddlewaretoken=0123456789abcdef0123456789abcdef", &r);
    assert_int_equal(r.status, 429);
    assert_non_null(strstr(r.body, "Too many failed logins"));
    assert_null(strstr(r.cookies, "sessionid"));
    free(r.body);
}

/* The next envelope for channel must be a websocket.close with code. */
static void expect_close(world_t *w, const char *channel, int code)
{
    mc_envelope_t env;
    next_for(w, channel, &env);
    assert_int_equal(env.type, MC_ENV_WS_CLOSE);
    assert_int_equal(env.code, code);
    mc_envelope_clear(&env);
}

/* Logs user in (password "pw-<user>") as a new device does, and opens a
 * socket on channel with the session; cookie gets the Cookie header. */
static void log_in_and_connect(world_t *w, const char *user, const char *channel, char *cookie,
                               size_t size, sock_t *s)
{
    char password[64];
    snprintf(password, sizeof(password), "pw-%s", user);
    login(w, user, password, cookie, size);
    ws_connect(w, cookie, channel, s);
}

/* As Django's: a logout ends one session. ann logs in on a phone and on a
 * desktop; logging out on the phone closes the phone's socket only. */
static void logout_ends_that_session_and_closes_its_sockets_only(void **state)
{
    world_t *w = *state;
    char phone[256], desk[256];
    sock_t p, d;
    log_in_and_connect(w, "ann", "ifc.t!1", phone, sizeof(phone), &p);
    log_in_and_connect(w, "ann", "ifc.u!1", desk, sizeof(desk), &d);
    char csrf[40];
    sscanf(phone, "csrftoken=%32s", csrf);
    char body[100];
    snprintf(body, sizeof(body), "csrfmiddlewaretoken=%s", csrf);
    http_reply_t r;
    http(w, "POST", "/accounts/logout/", "", phone, NULL, body, &r);
    assert_int_equal(r.status, 302);
    assert_non_null(strstr(r.cookies, "sessionid=; Max-Age=0"));
    free(r.body);
    http(w, "GET", "/", "", phone, NULL, "", &r);
    assert_int_equal(r.status, 302);
    free(r.body);
    http(w, "GET", "/", "", desk, NULL, "", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    expect_close(w, p.channel, 1008);
    assert_false(pending(w, d.channel));
    /* The desktop's socket goes on. */
    ws_send(w, &d, "{\"command\":\"join\",\"room\":1}");
    expect_text_has(w, d.channel, "{\"join\":\"1\"");
    /* No group the change log could name holds a token. */
    char token[64];
    const char *at = strstr(phone, "sessionid=");
    assert_non_null(at);
    snprintf(token, sizeof(token), "%s", at + strlen("sessionid="));
    for (size_t i = 0; i < w->fake.nmembers; i++)
        assert_null(strstr(w->fake.members[i].group, token));
}

static void deactivating_closes_every_socket_of_the_user(void **state)
{
    world_t *w = *state;
    const char *who[] = {"ann", "ann", "bob"}; /* ann with two sessions */
    const char *channels[] = {"ifc.t!1", "ifc.u!1", "ifc.t!2"};
    sock_t s[3];
    for (int i = 0; i < 3; i++) {
        char cookie[256];
        log_in_and_connect(w, who[i], channels[i], cookie, sizeof(cookie), &s[i]);
    }
    ctl(w, "", "user deactivate ann");
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    expect_close(w, s[0].channel, 1008);
    expect_close(w, s[1].channel, 1008);
    assert_false(pending(w, s[2].channel));
}

static void admin_api_is_for_staff_with_csrf(void **state)
{
    world_t *w = *state;
    char ann[256], sue[256], csrf[40];
    login(w, "ann", "pw-ann", ann, sizeof(ann));
    login(w, "sue", "pw-sue", sue, sizeof(sue));
    sscanf(sue, "csrftoken=%32s", csrf);
    http_reply_t r;
    http(w, "GET", "/admin/api/rooms", "", ann, NULL, "", &r);
    assert_int_equal(r.status, 403);
    free(r.body);
    http(w, "GET", "/admin/", "", ann, NULL, "", &r);
    assert_int_equal(r.status, 403);
    free(r.body);
    http(w, "GET", "/admin/", "", sue, NULL, "", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    http(w, "POST", "/admin/api/rooms", "", sue, NULL, "{\"title\":\"New\"}", &r);
    assert_int_equal(r.status, 403); /* no CSRF header */
    free(r.body);
    http(w, "POST", "/admin/api/rooms", "", sue, csrf, "{\"title\":\"New\",\"staff_only\":false}",
         &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"id\":\"3\"}");
    free(r.body);
    http(w, "POST", "/admin/api/rooms/3", "", sue, csrf, "{\"title\":\"Newer\"}", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    http(w, "GET", "/admin/api/rooms", "", sue, NULL, "", &r);
    assert_non_null(strstr(r.body, "\"title\":\"Newer\""));
    assert_non_null(strstr(r.body, "\"title\":\"Staff\""));
    free(r.body);
    http(w, "DELETE", "/admin/api/rooms/3", "", sue, csrf, "", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    http(w, "DELETE", "/admin/api/rooms/3", "", sue, csrf, "", &r);
    assert_int_equal(r.status, 404);
    free(r.body);
    http(w, "POST", "/admin/api/users", "", sue, csrf,
         "{\"username\":\"dan\",\"password\":\"pw-dan\",\"is_staff\":false}", &r);
    assert_int_equal(r.status, 201);
    free(r.body);
    http(w, "POST", "/admin/api/users", "", sue, csrf, "{\"username\":\"dan\",\"password\":\"x\"}",
         &r);
    assert_int_equal(r.status, 409);
    free(r.body);
    http(w, "GET", "/admin/api/users", "", sue, NULL, "", &r);
    assert_non_null(
        strstr(r.body, "{\"id\":4,\"username\":\"dan\",\"is_staff\":false,\"is_active\":true}"));
    free(r.body);
    http(w, "POST", "/admin/api/users/4", "", sue, csrf, "{\"is_staff\":true,\"password\":\"pw2\"}",
         &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    char dan[256];
    login(w, "dan", "pw2", dan, sizeof(dan));
    http(w, "POST", "/admin/api/users/4", "", sue, csrf, "{\"is_active\":false}", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    http(w, "GET", "/", "", dan, NULL, "", &r);
    assert_int_equal(r.status, 302); /* deactivated: the session is gone */
    free(r.body);
    http(w, "POST", "/admin/api/users/4", "", sue, csrf, "not json", &r);
    assert_int_equal(r.status, 400);
    free(r.body);
}

/* ---- WebSocket ----------------------------------------------------------------- */

static void a_socket_without_a_session_is_refused(void **state)
{
    world_t *w = *state;
    mc_envelope_t env = {.type = MC_ENV_WS_CONNECT,
                         .reply = "ifc.t!9",
                         .path = "/chat/stream/",
                         .query = "",
                         .client = "x"};
    char *data;
    size_t len;
    assert_int_equal(mc_envelope_encode(&env, &data, &len), 0);
    handle(w, data, len);
    free(data);
    next_for(w, "ifc.t!9", &env);
    assert_int_equal(env.type, MC_ENV_WS_CLOSE);
    mc_envelope_clear(&env);
}

static void two_sockets_chat_in_a_room(void **state)
{
    world_t *w = *state;
    char ca[256], cb[256];
    login(w, "ann", "pw-ann", ca, sizeof(ca));
    login(w, "bob", "pw-bob", cb, sizeof(cb));
    sock_t a, b;
    ws_connect(w, ca, "ifc.t!1", &a);
    ws_connect(w, cb, "ifc.u!1", &b);
    assert_string_equal(a.scope.username, "ann");

    ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    expect_text(w, a.channel,
                "{\"join\":\"1\",\"title\":\"Lobby\",\"history\":[],\"members\":[\"ann\"]}");
    ws_send(w, &b, "{\"command\":\"join\",\"room\":\"1\"}");
    expect_text_has(
        w, b.channel,
        "{\"join\":\"1\",\"title\":\"Lobby\",\"history\":[],\"members\":[\"ann\",\"bob\"]}");
    expect_text(w, a.channel,
                "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":4}");
    assert_false(pending(w, b.channel)); /* no notice of one's own entry */

    ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"hello\",\"client_id\":\"c1\"}");
    char *own = next_text(w, a.channel);
    char *other = next_text(w, b.channel);
    assert_non_null(strstr(own, "\"own\":true"));
    assert_null(strstr(other, "\"own\""));
    assert_non_null(strstr(other, "{\"room\":\"1\",\"message\":\"hello\",\"username\":\"ann\","
                                  "\"msg_type\":0,\"id\":1,\"ts\":"));
    assert_false(pending(w, a.channel)); /* the sender is skipped in the room copy */
    free(own);
    free(other);

    /* A replayed send is stored once and delivered once. */
    ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"hello\",\"client_id\":\"c1\"}");
    assert_false(pending(w, a.channel));
    assert_false(pending(w, b.channel));
    ws_send(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"hi ann\"}");
    /* Ids increase, with gaps allowed. */
    expect_text_has(w, a.channel,
                    "\"message\":\"hi ann\",\"username\":\"bob\",\"msg_type\":0,\"id\":");
    expect_text_has(w, b.channel, "\"own\":true");

    ws_send(w, &b, "{\"command\":\"who\",\"room\":1}");
    expect_text(w, b.channel, "{\"who\":\"1\",\"members\":[\"ann\",\"bob\"]}");

    /* As in the example, the leaver hears its own leave notice first. */
    ws_send(w, &b, "{\"command\":\"leave\",\"room\":1}");
    expect_text(w, b.channel,
                "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":5}");
    expect_text(w, b.channel, "{\"leave\":\"1\"}");
    expect_text(w, a.channel,
                "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":5}");
    ws_send(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"x\"}");
    expect_text(w, b.channel,
                "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"1\",\"command\":\"send\"}");

    /* History on rejoin, and since. */
    ws_send(w, &b, "{\"command\":\"join\",\"room\":1,\"since\":1}");
    expect_text_has(w, b.channel, "\"history\":[{\"room\":\"1\",\"message\":\"hi ann\"");
    expect_text_has(w, a.channel, "\"msg_type\":4");
    ws_send(w, &b, "{\"command\":\"history\",\"room\":1,\"before\":2}");
    expect_text_has(w, b.channel,
                    "{\"history\":\"1\",\"messages\":[{\"room\":\"1\",\"message\":\"hello\"");

    /* Disconnecting leaves with a notice. */
    ws_disconnect(w, &b);
    expect_text(w, a.channel,
                "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":5}");
    ws_send(w, &a, "{\"command\":\"who\",\"room\":1}");
    expect_text(w, a.channel, "{\"who\":\"1\",\"members\":[\"ann\"]}");
}

/* ann on a and bob on b: logged in, connected and in the Lobby (room 1),
 * their join replies (and bob's enter notice to ann) read. */
static void ann_and_bob_in_the_lobby(world_t *w, sock_t *a, sock_t *b)
{
    char ca[256], cb[256];
    login(w, "ann", "pw-ann", ca, sizeof(ca));
    login(w, "bob", "pw-bob", cb, sizeof(cb));
    ws_connect(w, ca, "ifc.t!1", a);
    ws_connect(w, cb, "ifc.u!1", b);
    ws_send(w, a, "{\"command\":\"join\",\"room\":1}");
    expect_text_has(w, a->channel, "{\"join\":\"1\"");
    ws_send(w, b, "{\"command\":\"join\",\"room\":1}");
    expect_text_has(w, b->channel, "{\"join\":\"1\"");
    if (w->app.port.notify_enter_leave)
        expect_text_has(w, a->channel, "\"msg_type\":4");
}

static void a_batch_publishes_its_messages_together_and_in_order(void **state)
{
    world_t *w = *state;
    sock_t a, b;
    ann_and_bob_in_the_lobby(w, &a, &b);

    /* Two messages in a batch wait for its end... */
    ws_send_in_batch(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"one\"}");
    ws_send_in_batch(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"two\"}");
    assert_false(pending(w, a.channel));
    assert_false(pending(w, b.channel));
    /* ...or for anything else the worker sends, which they never trail. */
    ws_send_in_batch(w, &b, "{\"command\":\"who\",\"room\":1}");
    expect_text_has(w, b.channel, "\"message\":\"one\"");
    expect_text_has(w, b.channel, "\"message\":\"two\",\"username\":\"bob\"");
    expect_text_has(w, b.channel, "{\"who\":\"1\"");
    expect_text_has(w, a.channel, "\"message\":\"one\",\"username\":\"ann\"");
    expect_text_has(w, a.channel, "\"message\":\"two\"");
    ws_send_in_batch(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"three\"}");
    assert_false(pending(w, b.channel));
    wrk_port_flush(&w->app.port);
    expect_text_has(w, b.channel, "\"message\":\"three\"");
    expect_text_has(w, a.channel, "\"own\":true");
}

static void a_user_with_two_sockets_counts_once(void **state)
{
    world_t *w = *state;
    char ca[256], cb[256];
    login(w, "ann", "pw-ann", ca, sizeof(ca));
    login(w, "bob", "pw-bob", cb, sizeof(cb));
    sock_t a1, a2, b;
    ws_connect(w, ca, "ifc.t!1", &a1);
    ws_connect(w, ca, "ifc.u!2", &a2);
    ws_connect(w, cb, "ifc.u!3", &b);
    ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
    expect_text_has(w, b.channel, "{\"join\":\"1\"");
    ws_send(w, &a1, "{\"command\":\"join\",\"room\":1}");
    expect_text_has(w, a1.channel, "\"members\":[\"ann\",\"bob\"]");
    expect_text(w, b.channel,
                "{\"room\":\"1\",\"message\":null,\"username\":\"ann\",\"msg_type\":4}");
    /* The second socket: no second arrival, and ann is listed once. */
    ws_send(w, &a2, "{\"command\":\"join\",\"room\":1}");
    expect_text_has(w, a2.channel, "\"members\":[\"ann\",\"bob\"]}");
    ws_send(w, &a1, "{\"command\":\"join\",\"room\":1}"); /* again: nothing new */
    expect_text_has(w, a1.channel, "{\"join\":\"1\"");
    assert_false(pending(w, b.channel));
    assert_false(pending(w, a1.channel));
    ws_send(w, &b, "{\"command\":\"who\",\"room\":\"1\"}");
    expect_text(w, b.channel, "{\"who\":\"1\",\"members\":[\"ann\",\"bob\"]}");
    /* One socket leaves: ann is still there, nobody hears of it. */
    ws_send(w, &a1, "{\"command\":\"leave\",\"room\":1}");
    expect_text(w, a1.channel, "{\"leave\":\"1\"}");
    assert_false(pending(w, b.channel));
    assert_false(pending(w, a2.channel));
    ws_send(w, &b, "{\"command\":\"who\",\"room\":1}");
    expect_text(w, b.channel, "{\"who\":\"1\",\"members\":[\"ann\",\"bob\"]}");
    /* The last one goes: now ann has left. */
    ws_disconnect(w, &a2);
    expect_text(w, b.channel,
                "{\"room\":\"1\",\"message\":null,\"username\":\"ann\",\"msg_type\":5}");
    assert_false(pending(w, b.channel));
    ws_send(w, &b, "{\"command\":\"who\",\"room\":1}");
    expect_text(w, b.channel, "{\"who\":\"1\",\"members\":[\"bob\"]}");
    ws_disconnect(w, &a1); /* in no room: nothing to say */
    assert_false(pending(w, b.channel));
}

static void a_dead_interface_s_sockets_leave_their_rooms(void **state)
{
    world_t *w = *state;
    char ca[256], cb[256];
    login(w, "ann", "pw-ann", ca, sizeof(ca));
    login(w, "bob", "pw-bob", cb, sizeof(cb));
    sock_t a1, a2, b, b2;
    ws_connect(w, ca, "ifc.dead!1", &a1);
    ws_connect(w, ca, "ifc.live!2", &a2);
    ws_connect(w, cb, "ifc.dead!3", &b);
    ws_connect(w, cb, "ifc.live!4", &b2);
    w->app.port.notify_enter_leave = 0;
    ws_send(w, &b2, "{\"command\":\"join\",\"room\":1}");
    ws_send(w, &a1, "{\"command\":\"join\",\"room\":1}");
    ws_send(w, &a2, "{\"command\":\"join\",\"room\":1}");
    ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
    ws_send(w, &b2, "{\"command\":\"leave\",\"room\":1}");
    ws_send(w, &a1, "{\"command\":\"join\",\"room\":1}");
    w->app.port.notify_enter_leave = 1;
    w->fake.read = w->fake.nout;
    /* The fake keeps no group for the dead process's sockets any more. */
    fake_group_discard(&w->fake, "room-1", a1.channel);
    fake_group_discard(&w->fake, "room-1", b.channel);
    assert_int_equal(wrk_changes_process_gone(&w->app, "ifc.dead"), 0);
    /* bob had only the dead socket in the room: he left; ann is still in. */
    expect_text(w, a2.channel,
                "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":5}");
    assert_false(pending(w, a2.channel));
    ws_send(w, &a2, "{\"command\":\"who\",\"room\":1}");
    expect_text(w, a2.channel, "{\"who\":\"1\",\"members\":[\"ann\"]}");
    assert_int_equal(wrk_changes_process_gone(&w->app, "ifc.dead"), 0); /* again: nothing */
    assert_false(pending(w, a2.channel));
}

static void notices_can_be_switched_off(void **state)
{
    world_t *w = *state;
    w->app.port.notify_enter_leave = 0;
    sock_t a, b;
    ann_and_bob_in_the_lobby(w, &a, &b);
    assert_false(pending(w, a.channel));
}

static void staff_only_rooms_are_refused_at_join_and_send(void **state)
{
    world_t *w = *state;
    char ca[256], cs[256];
    login(w, "ann", "pw-ann", ca, sizeof(ca));
    login(w, "sue", "pw-sue", cs, sizeof(cs));
    sock_t a, s;
    ws_connect(w, ca, "ifc.t!1", &a);
    ws_connect(w, cs, "ifc.t!2", &s);
    ws_send(w, &a, "{\"command\":\"join\",\"room\":2}");
    expect_text(w, a.channel,
                "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"2\",\"command\":\"join\"}");
    ws_send(w, &s, "{\"command\":\"join\",\"room\":2}");
    expect_text_has(w, s.channel, "{\"join\":\"2\",\"title\":\"Staff\"");
    /* A socket that claims the group without the right is refused at send. */
    fake_group_add(&w->fake, "room-2", a.channel);
    ws_send(w, &a, "{\"command\":\"send\",\"room\":2,\"message\":\"sneaky\"}");
    expect_text(w, a.channel,
                "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"2\",\"command\":\"send\"}");
    assert_false(pending(w, s.channel));
}

static void bad_input_is_answered_and_the_socket_stays(void **state)
{
    world_t *w = *state;
    char ca[256];
    login(w, "ann", "pw-ann", ca, sizeof(ca));
    sock_t a;
    ws_connect(w, ca, "ifc.t!1", &a);
    struct {
        const char *in, *out;
    } cases[] = {
        {"not json", "{\"error\":\"BAD_REQUEST\"}"},
        {"[1]", "{\"error\":\"BAD_REQUEST\"}"},
        {"{\"command\":\"fly\"}", "{\"error\":\"UNKNOWN_COMMAND\"}"},
        {"{\"command\":\"join\",\"room\":\"abc\"}",
         "{\"error\":\"ROOM_INVALID\",\"command\":\"join\"}"},
        {"{\"command\":\"join\",\"room\":99}",
         "{\"error\":\"ROOM_INVALID\",\"room\":\"99\",\"command\":\"join\"}"},
        {"{\"command\":\"send\",\"room\":99,\"message\":\"x\"}",
         "{\"error\":\"ROOM_INVALID\",\"room\":\"99\",\"command\":\"send\"}"},
        {"{\"command\":\"send\",\"room\":1,\"message\":\"x\"}",
         "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"1\",\"command\":\"send\"}"},
        {"{\"command\":\"send\",\"room\":1,\"message\":\"\"}",
         "{\"error\":\"MESSAGE_EMPTY\",\"room\":\"1\",\"command\":\"send\"}"},
        {"{\"command\":\"send\",\"room\":1}",
         "{\"error\":\"BAD_REQUEST\",\"room\":\"1\",\"command\":\"send\"}"},
        {"{\"command\":\"edit\",\"room\":1,\"id\":77,\"message\":\"x\"}",
         "{\"error\":\"MESSAGE_INVALID\",\"room\":\"1\",\"command\":\"edit\"}"},
        {"{\"command\":\"whisper\",\"to\":\"nobody\",\"message\":\"x\"}",
         "{\"error\":\"USER_INVALID\",\"command\":\"whisper\"}"},
        {"{\"command\":\"leave\",\"room\":99}",
         "{\"error\":\"ROOM_INVALID\",\"room\":\"99\",\"command\":\"leave\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ws_send(w, &a, cases[i].in);
        expect_text(w, a.channel, cases[i].out);
    }
    /* A message over the limit. */
    char *big = malloc(5000);
    int n = sprintf(big, "{\"command\":\"send\",\"room\":1,\"message\":\"");
    memset(big + n, 'x', 4097);
    strcpy(big + n + 4097, "\"}");
    ws_send(w, &a, big);
    expect_text(w, a.channel,
                "{\"error\":\"MESSAGE_TOO_LONG\",\"room\":\"1\",\"command\":\"send\"}");
    free(big);
    /* The socket still works. */
    ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    expect_text_has(w, a.channel, "{\"join\":\"1\"");
}

static void edits_deletes_and_whispers(void **state)
{
    world_t *w = *state;
    char ca[256], cb[256], cs[256];
    login(w, "ann", "pw-ann", ca, sizeof(ca));
    login(w, "bob", "pw-bob", cb, sizeof(cb));
    login(w, "sue", "pw-sue", cs, sizeof(cs));
    sock_t a, b, s;
    ws_connect(w, ca, "ifc.t!1", &a);
    ws_connect(w, cb, "ifc.t!2", &b);
    ws_connect(w, cs, "ifc.t!3", &s);
    w->app.port.notify_enter_leave = 0;
    ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
    ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"typo\"}");
    expect_text_has(w, a.channel, "{\"join\"");
    expect_text_has(w, b.channel, "{\"join\"");
    expect_text_has(w, a.channel, "\"own\":true");
    expect_text_has(w, b.channel, "\"message\":\"typo\"");
    ws_send(w, &b, "{\"command\":\"edit\",\"room\":1,\"id\":1,\"message\":\"mine now\"}");
    expect_text(w, b.channel, "{\"error\":\"NOT_ALLOWED\",\"room\":\"1\",\"command\":\"edit\"}");
    ws_send(w, &a, "{\"command\":\"edit\",\"room\":1,\"id\":1,\"message\":\"fixed\"}");
    expect_text_has(w, a.channel, "{\"edited\":1,\"room\":\"1\",\"message\":\"fixed\",\"ts\":");
    expect_text_has(w, b.channel, "{\"edited\":1,");
    ws_send(w, &s, "{\"command\":\"delete\",\"room\":1,\"id\":1}");
    expect_text(w, s.channel, "{\"deleted\":1,\"room\":\"1\"}");
    expect_text(w, a.channel, "{\"deleted\":1,\"room\":\"1\"}");
    expect_text(w, b.channel, "{\"deleted\":1,\"room\":\"1\"}");
    /* Deleted is gone: from the database, and from history. */
    wrk_message_t m;
    assert_int_equal(wrk_store_message_get(w->app.store, 1, &m), 0);
    assert_int_equal(m.deleted, 1);
    assert_string_equal(m.body, "");
    wrk_message_clear(&m);
    ws_send(w, &a, "{\"command\":\"edit\",\"room\":1,\"id\":1,\"message\":\"again\"}");
    expect_text(w, a.channel,
                "{\"error\":\"MESSAGE_INVALID\",\"room\":\"1\",\"command\":\"edit\"}");
    ws_send(w, &s, "{\"command\":\"delete\",\"room\":1,\"id\":1}");
    expect_text(w, s.channel,
                "{\"error\":\"MESSAGE_INVALID\",\"room\":\"1\",\"command\":\"delete\"}");
    /* Staff edit others' messages; history shows the edited text and when. */
    ws_send(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"bob says\"}");
    expect_text_has(w, b.channel, "\"id\":2,");
    expect_text_has(w, a.channel, "\"id\":2,");
    ws_send(w, &a, "{\"command\":\"delete\",\"room\":1,\"id\":2}");
    expect_text(w, a.channel, "{\"error\":\"NOT_ALLOWED\",\"room\":\"1\",\"command\":\"delete\"}");
    ws_send(w, &s, "{\"command\":\"edit\",\"room\":1,\"id\":2,\"message\":\"moderated\"}");
    expect_text_has(w, s.channel, "{\"edited\":2,\"room\":\"1\",\"message\":\"moderated\"");
    expect_text_has(w, a.channel, "{\"edited\":2,");
    expect_text_has(w, b.channel, "{\"edited\":2,");
    /* An id of another room is no message of this one. */
    ws_send(w, &s, "{\"command\":\"join\",\"room\":2}");
    expect_text_has(w, s.channel, "{\"join\":\"2\"");
    ws_send(w, &s, "{\"command\":\"delete\",\"room\":2,\"id\":2}");
    expect_text(w, s.channel,
                "{\"error\":\"MESSAGE_INVALID\",\"room\":\"2\",\"command\":\"delete\"}");
    ws_send(w, &a, "{\"command\":\"history\",\"room\":1}");
    char *h = next_text(w, a.channel);
    assert_non_null(strstr(h, "{\"history\":\"1\",\"messages\":[{\"room\":\"1\","
                              "\"message\":\"moderated\",\"username\":\"bob\",\"msg_type\":0,"
                              "\"id\":2,\"ts\":"));
    assert_non_null(strstr(h, "\"edited\":"));
    assert_null(strstr(h, "\"id\":1,")); /* the deleted one is left out */
    free(h);
    ws_send(w, &a, "{\"command\":\"whisper\",\"to\":\"bob\",\"message\":\"psst\"}");
    expect_text_has(w, b.channel,
                    "{\"whisper\":1,\"from\":\"ann\",\"to\":\"bob\",\"message\":\"psst\",\"ts\":");
    expect_text_has(w, a.channel, "{\"whisper\":1,\"from\":\"ann\",\"to\":\"bob\"");
    assert_false(pending(w, s.channel));
    /* Every socket of both users; ids come from the database. */
    sock_t b2;
    ws_connect(w, cb, "ifc.u!9", &b2);
    ws_send(w, &b2, "{\"command\":\"whisper\",\"to\":\"ann\",\"message\":\"hi\"}");
    expect_text_has(w, a.channel, "{\"whisper\":2,\"from\":\"bob\",\"to\":\"ann\"");
    expect_text_has(w, b.channel, "{\"whisper\":2,");
    expect_text_has(w, b2.channel, "{\"whisper\":2,");
    ws_send(w, &s, "{\"command\":\"whisper\",\"to\":\"ann\",\"message\":\"staff\"}");
    expect_text_has(w, a.channel, "{\"whisper\":3,");
    expect_text_has(w, s.channel, "{\"whisper\":3,");
    /* Stored: a socket catches up with those sent since an id, its own only. */
    ws_send(w, &b2, "{\"command\":\"whispers\",\"since\":1}");
    char *t = next_text(w, b2.channel);
    assert_non_null(strstr(t, "{\"whispers\":[{\"whisper\":2,\"from\":\"bob\",\"to\":\"ann\","
                              "\"message\":\"hi\",\"ts\":"));
    assert_null(strstr(t, "\"whisper\":3"));
    assert_null(strstr(t, "\"whisper\":1,"));
    free(t);
    ws_send(w, &a, "{\"command\":\"whispers\"}");
    t = next_text(w, a.channel);
    assert_non_null(strstr(t, "\"whisper\":1,"));
    assert_non_null(strstr(t, "\"whisper\":3,"));
    free(t);
    /* A deactivated user is no one to whisper to. */
    ctl(w, "", "user deactivate bob");
    ws_send(w, &a, "{\"command\":\"whisper\",\"to\":\"bob\",\"message\":\"x\"}");
    expect_text(w, a.channel, "{\"error\":\"USER_INVALID\",\"command\":\"whisper\"}");
}

static void rate_limits_refuse_then_close(void **state)
{
    world_t *w = *state;
    w->app.cfg.rate_burst = 3;
    w->app.cfg.rate_close_after = 2;
    w->app.cfg.rate_connect_burst = 2;
    w->app.port.notify_enter_leave = 0;
    char ca[256], cb[256];
    login(w, "ann", "pw-ann", ca, sizeof(ca));
    login(w, "bob", "pw-bob", cb, sizeof(cb));
    sock_t a, b;
    ws_connect(w, ca, "ifc.t!1", &a);
    ws_connect(w, cb, "ifc.t!2", &b);
    /* A third socket from the same address is refused before any accept. */
    mc_envelope_t env = {.type = MC_ENV_WS_CONNECT,
                         .reply = "ifc.t!3",
                         .path = "/chat/stream/",
                         .client = "10.0.0.1"};
    env.headers[env.nheaders++] = (mc_header_t){"cookie", ca};
    char *data;
    size_t len;
    assert_int_equal(mc_envelope_encode(&env, &data, &len), 0);
    handle(w, data, len);
    free(data);
    mc_envelope_t r;
    next_for(w, "ifc.t!3", &r);
    assert_int_equal(r.type, MC_ENV_WS_CLOSE);
    assert_int_equal(r.code, 1008);
    mc_envelope_clear(&r);
    assert_false(pending(w, "ifc.t!3"));

    ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
    expect_text_has(w, a.channel, "{\"join\"");
    expect_text_has(w, b.channel, "{\"join\"");
    for (int i = 0; i < 3; i++) {
        ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"hi\"}");
        expect_text_has(w, a.channel, "\"own\":true");
        expect_text_has(w, b.channel, "\"message\":\"hi\"");
    }
    /* Over the burst: refused, nothing stored or sent to the room; joins
     * and who are not counted. */
    ws_send(w, &a, "{\"command\":\"whisper\",\"to\":\"bob\",\"message\":\"x\"}");
    expect_text(w, a.channel, "{\"error\":\"RATE_LIMITED\",\"command\":\"whisper\"}");
    ws_send(w, &a, "{\"command\":\"who\",\"room\":1}");
    expect_text_has(w, a.channel, "{\"who\"");
    assert_false(pending(w, b.channel));
    /* bob has his own bucket. */
    ws_send(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"bob\"}");
    expect_text_has(w, b.channel, "\"own\":true");
    expect_text_has(w, a.channel, "\"message\":\"bob\"");
    /* The second refusal in a row closes the socket with 1008. */
    ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"more\"}");
    expect_text(w, a.channel, "{\"error\":\"RATE_LIMITED\",\"room\":\"1\",\"command\":\"send\"}");
    next_for(w, a.channel, &r);
    assert_int_equal(r.type, MC_ENV_WS_CLOSE);
    assert_int_equal(r.code, 1008);
    mc_envelope_clear(&r);
    assert_false(pending(w, b.channel));
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(w->app.store, 1, 50, &l), 0);
    assert_int_equal(l.n, 4);
    wrk_message_list_clear(&l);
}

static void room_changes_reach_sockets(void **state)
{
    world_t *w = *state;
    char ca[256], cs[256];
    login(w, "ann", "pw-ann", ca, sizeof(ca));
    login(w, "sue", "pw-sue", cs, sizeof(cs));
    sock_t a, s;
    ws_connect(w, ca, "ifc.t!1", &a);
    ws_connect(w, cs, "ifc.t!2", &s);
    w->app.port.notify_enter_leave = 0;
    ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    ws_send(w, &s, "{\"command\":\"join\",\"room\":1}");
    expect_text_has(w, a.channel, "{\"join\"");
    expect_text_has(w, s.channel, "{\"join\"");
    /* An admin makes the lobby staff-only: ann is taken out, sue stays. */
    ctl(w, "", "room staff-only 1 on");
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    expect_text(w, a.channel, "{\"rooms\":[]}");
    expect_text(w, s.channel,
                "{\"rooms\":[{\"id\":\"1\",\"title\":\"Lobby\",\"staff_only\":true},"
                "{\"id\":\"2\",\"title\":\"Staff\",\"staff_only\":true}]}");
    expect_text(w, a.channel, "{\"leave\":\"1\"}");
    assert_false(pending(w, s.channel));
    /* A deleted room: everyone leaves. */
    ctl(w, "", "room rm 1");
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    expect_text_has(w, s.channel, "{\"rooms\":[{\"id\":\"2\"");
    expect_text(w, s.channel, "{\"leave\":\"1\"}");
    /* A user losing staff has its sockets closed. */
    ctl(w, "", "user staff sue off");
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    mc_envelope_t env;
    next_for(w, s.channel, &env);
    assert_int_equal(env.type, MC_ENV_WS_CLOSE);
    mc_envelope_clear(&env);
    /* Nothing new: nothing sent. */
    size_t before = w->fake.nout;
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    assert_int_equal(w->fake.nout, before);
}

static void a_deactivated_user_is_refused_at_once(void **state)
{
    world_t *w = *state;
    char ca[256];
    login(w, "ann", "pw-ann", ca, sizeof(ca));
    sock_t a;
    ws_connect(w, ca, "ifc.t!1", &a);
    ctl(w, "", "user deactivate ann");
    ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    expect_text(w, a.channel, "{\"error\":\"USER_HAS_TO_LOGIN\"}");
    mc_envelope_t env;
    next_for(w, a.channel, &env);
    assert_int_equal(env.type, MC_ENV_WS_CLOSE);
    mc_envelope_clear(&env);
}

static void undecodable_envelopes_are_dropped(void **state)
{
    world_t *w = *state;
    assert_int_equal(wrk_dispatch_envelope(&w->app, "nope", 4), MC_EINVAL);
    const char *send = "{\"type\":\"websocket.send\",\"text\":\"x\"}";
    assert_int_equal(wrk_dispatch_envelope(&w->app, send, strlen(send)), MC_EINVAL);
    assert_int_equal(w->fake.nout, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    mc_log_init("app_test", MC_LOG_OFF);
    const struct CMUnitTest tests[] = {
        T(index_redirects_to_login_without_a_session),
        T(login_then_the_chat_page),
        T(a_wrong_password_shows_an_error_and_sets_no_session),
        T(login_without_csrf_is_forbidden),
        T(next_must_stay_on_the_site),
        T(too_many_failures_lock_the_login),
        T(logout_ends_that_session_and_closes_its_sockets_only),
        T(deactivating_closes_every_socket_of_the_user),
        T(admin_api_is_for_staff_with_csrf),
        T(a_socket_without_a_session_is_refused),
        T(two_sockets_chat_in_a_room),
        T(a_batch_publishes_its_messages_together_and_in_order),
        T(a_user_with_two_sockets_counts_once),
        T(a_dead_interface_s_sockets_leave_their_rooms),
        T(notices_can_be_switched_off),
        T(staff_only_rooms_are_refused_at_join_and_send),
        T(bad_input_is_answered_and_the_socket_stays),
        T(edits_deletes_and_whispers),
        T(rate_limits_refuse_then_close),
        T(room_changes_reach_sockets),
        T(a_deactivated_user_is_refused_at_once),
        T(undecodable_envelopes_are_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
