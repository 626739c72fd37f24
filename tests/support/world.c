/*
 * tests/support/world.c: one worker in-process for the worker's tests
 * (tests/support/world.h): a fake channel layer behind its sink, a real
 * sqlite file, chatctl for the admin's side.
 */
#include "tests/support/world.h"
#include "channel-layer/internal.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/wire.h"
#include "worker/changes.h"
#include "worker/dispatch.h"
#include "worker/port.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* Counts an answer ("done") to channel. */
static void answer(ts_fake_t *f, const char *channel)
{
    size_t i;
    for (i = 0; i < f->nanswers; i++)
        if (!strcmp(f->answers[i].channel, channel))
            break;
    if (i == f->nanswers) {
        assert_true(f->nanswers < sizeof(f->answers) / sizeof(f->answers[0]));
        snprintf(f->answers[f->nanswers++].channel, sizeof(f->answers[0].channel), "%s", channel);
    }
    f->answers[i].n++;
}

/* Records what channel gets. With mine, a "done" mark is channel's answer;
 * an envelope that carries only the mark is no frame and is not kept. */
static void record_for(ts_fake_t *f, const char *channel, const char *data, size_t len, int mine)
{
    mc_envelope_t env;
    assert_int_equal(mc_envelope_decode(&env, data, len), 0);
    int mark_only = env.type == MC_ENV_WS_SEND && env.done && env.body_len == 0;
    if (mine && env.done)
        answer(f, channel);
    mc_envelope_clear(&env);
    if (mark_only)
        return;
    assert_true(f->nout < TS_WORLD_MAX_OUT);
    snprintf(f->out[f->nout].channel, sizeof(f->out[0].channel), "%s", channel);
    f->out[f->nout].data = strndup(data, len);
    f->nout++;
}

static int fake_send(void *ctx, const char *channel, const char *data, size_t len)
{
    ts_fake_t *f = ctx;
    int fail = f->fail_next_send;
    f->fail_next_send = 0;
    if (fail)
        return fail;
    if (len > CHL__MSG_MAX)
        return MC_ETOOBIG;
    record_for(f, channel, data, len, 1);
    return 0;
}

static int fake_group_add(void *ctx, const char *group, const char *channel, uint64_t seq)
{
    ts_fake_t *f = ctx;
    for (size_t i = 0; i < f->nmembers; i++)
        if (!strcmp(f->members[i].group, group) && !strcmp(f->members[i].channel, channel)) {
            if (seq > f->members[i].seq)
                f->members[i].seq = seq;
            return 0;
        }
    assert_true(f->nmembers < TS_WORLD_MAX_MEMBERS);
    snprintf(f->members[f->nmembers].group, 64, "%s", group);
    snprintf(f->members[f->nmembers].channel, 128, "%s", channel);
    f->members[f->nmembers].seq = seq;
    f->nmembers++;
    return 0;
}

static int fake_group_discard(void *ctx, const char *group, const char *channel)
{
    ts_fake_t *f = ctx;
    for (size_t i = 0; i < f->nmembers; i++) {
        if (!strcmp(f->members[i].group, group) && !strcmp(f->members[i].channel, channel)) {
            f->members[i] = f->members[--f->nmembers];
            return 0;
        }
    }
    return 0;
}

/* Delivers to every member as Redis and the interface do: a name used
 * before delivers nothing, nor a seq not above the last one a member was
 * handed or added after; the except member gets nothing, the own member
 * gets the text ending in ,"own":true. */
static int fake_deliver(ts_fake_t *f, const char *group, const char *once, uint64_t seq,
                        const char *data, size_t len)
{
    for (size_t i = 0; once && i < f->nnames; i++)
        if (!strcmp(f->names[i], once))
            return 0;
    if (once) {
        assert_true(f->nnames < TS_WORLD_MAX_OUT);
        snprintf(f->names[f->nnames++], sizeof(f->names[0]), "%s", once);
    }
    mc_envelope_t env;
    assert_int_equal(mc_envelope_decode(&env, data, len), 0);
    for (size_t i = 0; i < f->nmembers; i++) {
        const char *member = f->members[i].channel;
        if (strcmp(f->members[i].group, group) != 0 ||
            (env.except && !strcmp(env.except, member)) || (seq && seq <= f->members[i].seq))
            continue;
        if (seq)
            f->members[i].seq = seq;
        if (env.type != MC_ENV_WS_SEND || strcmp(env.own, member) != 0) {
            record_for(f, member, data, len, 0);
            continue;
        }
        assert_true(env.body_len > 1 && env.body[env.body_len - 1] == '}');
        char text[8192];
        int n = snprintf(text, sizeof(text), "%.*s,\"own\":true}", (int)env.body_len - 1, env.body);
        assert_true(n > 0 && (size_t)n < sizeof(text));
        mc_envelope_t copy = {
            .type = MC_ENV_WS_SEND, .body = text, .body_len = (size_t)n, .done = env.done};
        char *out;
        size_t out_len;
        assert_int_equal(mc_envelope_encode(&copy, &out, &out_len), 0);
        record_for(f, member, out, out_len, 1);
        free(out);
    }
    mc_envelope_clear(&env);
    return 0;
}

static int fake_group_send(void *ctx, const wrk_outgoing_t *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (msgs[i].len > CHL__MSG_MAX)
            return MC_ETOOBIG;
    for (size_t i = 0; i < n; i++)
        fake_deliver(ctx, msgs[i].group, msgs[i].once, msgs[i].seq, msgs[i].data, msgs[i].len);
    return 0;
}

static int fake_rate_take(void *ctx, const char *key, double rate, long burst, int *allowed,
                          long *refused)
{
    ts_fake_t *f = ctx;
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

/* Encodes env as an interface does and handles it; with flush, as the
 * worker's loop handles a batch of one: the chat messages it stored are
 * published before the next (else they wait for the batch's end). */
static void handle_envelope(ts_world_t *w, const mc_envelope_t *env, int flush)
{
    char *data;
    size_t len;
    assert_int_equal(mc_envelope_encode(env, &data, &len), 0);
    assert_int_equal(wrk_dispatch_envelope(&w->app, data, len), 0);
    free(data);
    if (flush)
        wrk_port_flush(&w->app.port);
}

static char *ctl_path(void)
{
    static char path[512];
    const char *b = getenv("MC_BUILD");
    snprintf(path, sizeof(path), "%s/bin/chatctl", b ? b : "build/asan");
    return path;
}

void ts_ctl(ts_world_t *w, const char *input, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "printf '%s' | CHAT_ARGON2_MEMORY_KIB=64 CHAT_ARGON2_TIME=1 %s --db %s %s >/dev/null",
             input, ctl_path(), w->db, args);
    assert_int_equal(system(cmd), 0);
}

int ts_world_setup(void **state)
{
    ts_world_t *w = calloc(1, sizeof(*w));
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
    ts_ctl(w, "pw-ann\\n", "user add ann --password-stdin");
    ts_ctl(w, "pw-bob\\n", "user add bob --password-stdin");
    ts_ctl(w, "pw-sue\\n", "user add sue --staff --password-stdin");
    ts_ctl(w, "", "room add Lobby");
    ts_ctl(w, "", "room add Staff --staff-only");
    /* Changes made so far are old news. */
    assert_int_equal(wrk_changes_poll(&w->app), 0);
    *state = w;
    return 0;
}

int ts_world_teardown(void **state)
{
    ts_world_t *w = *state;
    wrk_app_close(&w->app);
    for (size_t i = 0; i < w->fake.nout; i++)
        free(w->fake.out[i].data);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
    assert_int_equal(system(cmd), 0);
    free(w);
    return 0;
}

void ts_next_for(ts_world_t *w, const char *channel, mc_envelope_t *env)
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

int ts_pending(ts_world_t *w, const char *channel)
{
    for (size_t i = w->fake.read; i < w->fake.nout; i++)
        if (strcmp(w->fake.out[i].channel, channel) == 0 && w->fake.out[i].data[0])
            return 1;
    return 0;
}

void ts_expect_text(ts_world_t *w, const char *channel, const char *want)
{
    mc_envelope_t env;
    ts_next_for(w, channel, &env);
    assert_int_equal(env.type, MC_ENV_WS_SEND);
    assert_string_equal(env.body, want);
    mc_envelope_clear(&env);
}

char *ts_next_text(ts_world_t *w, const char *channel)
{
    mc_envelope_t env;
    ts_next_for(w, channel, &env);
    assert_int_equal(env.type, MC_ENV_WS_SEND);
    char *t = strdup(env.body);
    mc_envelope_clear(&env);
    return t;
}

void ts_expect_text_has(ts_world_t *w, const char *channel, const char *part)
{
    char *t = ts_next_text(w, channel);
    if (!strstr(t, part))
        fail_msg("%s lacks %s", t, part);
    free(t);
}

void ts_http_body(ts_world_t *w, const char *method, const char *path, const char *query,
                  const char *cookie, const char *csrf_header, const char *body, size_t body_len,
                  ts_http_reply_t *out)
{
    mc_envelope_t env = {.type = MC_ENV_HTTP_REQUEST,
                         .reply = "ifc.t!h",
                         .method = method,
                         .path = path,
                         .query = query,
                         .client = w->client ? w->client : "10.0.0.1",
                         .scheme = w->scheme,
                         .body = body,
                         .body_len = body_len};
    if (cookie)
        env.headers[env.nheaders++] = (mc_header_t){"cookie", cookie};
    if (csrf_header)
        env.headers[env.nheaders++] = (mc_header_t){"x-csrftoken", csrf_header};
    handle_envelope(w, &env, 1);
    mc_envelope_t r;
    ts_next_for(w, "ifc.t!h", &r);
    assert_int_equal(r.type, MC_ENV_HTTP_RESPONSE);
    memset(out, 0, sizeof(*out));
    out->status = r.status;
    for (size_t i = 0; i < r.nheaders; i++) {
        if (!strcmp(r.headers[i].name, "location"))
            snprintf(out->location, sizeof(out->location), "%s", r.headers[i].value);
        if (!strcmp(r.headers[i].name, "retry-after"))
            out->retry_after = atol(r.headers[i].value);
        if (!strcmp(r.headers[i].name, "set-cookie")) {
            strncat(out->cookies, r.headers[i].value,
                    sizeof(out->cookies) - strlen(out->cookies) - 2);
            strcat(out->cookies, "\n");
        }
    }
    out->body = strdup(r.body ? r.body : "");
    mc_envelope_clear(&r);
}

void ts_http(ts_world_t *w, const char *method, const char *path, const char *query,
             const char *cookie, const char *csrf_header, const char *body, ts_http_reply_t *out)
{
    ts_http_body(w, method, path, query, cookie, csrf_header, body, strlen(body), out);
}

int ts_status(ts_world_t *w, const char *method, const char *path, const char *cookie,
              const char *body)
{
    char csrf[40] = "";
    const char *at = cookie ? strstr(cookie, "csrftoken=") : NULL;
    if (at)
        sscanf(at, "csrftoken=%32[0-9a-f]", csrf);
    ts_http_reply_t r;
    ts_http(w, method, path, "", cookie, csrf[0] ? csrf : NULL, body, &r);
    free(r.body);
    return r.status;
}

int ts_cookie_value(const ts_http_reply_t *r, const char *name, char *out, size_t size)
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

void ts_login(ts_world_t *w, const char *user, const char *password, char *cookie, size_t size)
{
    ts_http_reply_t r;
    char csrf[64], session[64], body[256], cookie1[128];
    ts_http(w, "GET", "/accounts/login/", "next=/", NULL, NULL, "", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(ts_cookie_value(&r, "csrftoken", csrf, sizeof(csrf)), 0);
    assert_non_null(strstr(r.body, csrf));
    free(r.body);
    snprintf(cookie1, sizeof(cookie1), "csrftoken=%s", csrf);
    snprintf(body, sizeof(body), "username=%s&password=%s&next=%%2F&csrfmiddlewaretoken=%s", user,
             password, csrf);
    ts_http(w, "POST", "/accounts/login/", "", cookie1, NULL, body, &r);
    assert_int_equal(r.status, 302);
    assert_string_equal(r.location, "/");
    assert_non_null(strstr(r.cookies, "; HttpOnly; SameSite=Lax"));
    assert_int_equal(ts_cookie_value(&r, "sessionid", session, sizeof(session)), 0);
    assert_int_equal(ts_cookie_value(&r, "csrftoken", csrf, sizeof(csrf)), 0);
    free(r.body);
    snprintf(cookie, size, "csrftoken=%s; sessionid=%s", csrf, session);
}

void ts_ws_open(ts_world_t *w, const char *cookie, const char *channel)
{
    mc_envelope_t env = {.type = MC_ENV_WS_CONNECT,
                         .reply = channel,
                         .method = "GET",
                         .path = "/chat/stream/",
                         .query = "",
                         .client = "10.0.0.1"};
    if (cookie)
        env.headers[env.nheaders++] = (mc_header_t){"cookie", cookie};
    handle_envelope(w, &env, 1);
}

void ts_ws_connect(ts_world_t *w, const char *cookie, const char *channel, ts_sock_t *s)
{
    ts_ws_open(w, cookie, channel);
    mc_envelope_t r;
    ts_next_for(w, channel, &r);
    assert_int_equal(r.type, MC_ENV_WS_ACCEPT);
    assert_int_equal(r.has_scope, 1);
    snprintf(s->channel, sizeof(s->channel), "%s", channel);
    s->scope = r.scope;
    mc_envelope_clear(&r);
    ts_expect_text_has(w, channel, "{\"rooms\":[");
}

static void ws_receive(ts_world_t *w, const ts_sock_t *s, const char *text, const char *id,
                       int flush)
{
    mc_envelope_t env = {.type = MC_ENV_WS_RECEIVE,
                         .reply = s->channel,
                         .has_scope = 1,
                         .scope = s->scope,
                         .body = text,
                         .body_len = strlen(text),
                         .id = id};
    for (size_t i = 0; i < w->fake.nmembers; i++)
        if (!strcmp(w->fake.members[i].channel, s->channel))
            env.groups[env.ngroups++] = w->fake.members[i].group;
    handle_envelope(w, &env, flush);
}

void ts_ws_send_in_batch(ts_world_t *w, const ts_sock_t *s, const char *text)
{
    ws_receive(w, s, text, NULL, 0);
}

void ts_ws_send_named(ts_world_t *w, const ts_sock_t *s, const char *text, const char *id)
{
    ws_receive(w, s, text, id, 1);
}

void ts_ws_send(ts_world_t *w, const ts_sock_t *s, const char *text)
{
    ts_ws_send_in_batch(w, s, text);
    wrk_port_flush(&w->app.port);
}

void ts_ws_disconnect(ts_world_t *w, const ts_sock_t *s)
{
    mc_envelope_t env = {.type = MC_ENV_WS_DISCONNECT,
                         .reply = s->channel,
                         .has_scope = 1,
                         .scope = s->scope,
                         .code = 1001};
    for (size_t i = 0; i < w->fake.nmembers; i++)
        if (!strcmp(w->fake.members[i].channel, s->channel))
            env.groups[env.ngroups++] = w->fake.members[i].group;
    handle_envelope(w, &env, 1);
}

void ts_expect_close(ts_world_t *w, const char *channel, int code)
{
    mc_envelope_t env;
    ts_next_for(w, channel, &env);
    assert_int_equal(env.type, MC_ENV_WS_CLOSE);
    assert_int_equal(env.code, code);
    const char *reason = mc_close_reason(code);
    assert_string_equal(env.reason, reason ? reason : "");
    mc_envelope_clear(&env);
}

void ts_log_in_and_connect(ts_world_t *w, const char *user, const char *channel, char *cookie,
                           size_t size, ts_sock_t *s)
{
    char password[64];
    snprintf(password, sizeof(password), "pw-%s", user);
    ts_login(w, user, password, cookie, size);
    ts_ws_connect(w, cookie, channel, s);
}

void ts_ann_and_bob_in_the_lobby(ts_world_t *w, ts_sock_t *a, ts_sock_t *b)
{
    char ca[256], cb[256];
    ts_login(w, "ann", "pw-ann", ca, sizeof(ca));
    ts_login(w, "bob", "pw-bob", cb, sizeof(cb));
    ts_ws_connect(w, ca, "ifc.t!1", a);
    ts_ws_connect(w, cb, "ifc.u!1", b);
    ts_ws_send(w, a, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, a->channel, "{\"join\":\"1\"");
    ts_ws_send(w, b, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, b->channel, "{\"join\":\"1\"");
    if (w->app.port.notify_enter_leave)
        ts_expect_text_has(w, a->channel, "\"msg_type\":4");
}

void ts_world_group_add(ts_world_t *w, const char *group, const char *channel)
{
    fake_group_add(&w->fake, group, channel, 0);
}

void ts_world_group_discard(ts_world_t *w, const char *group, const char *channel)
{
    fake_group_discard(&w->fake, group, channel);
}

int ts_answers(ts_world_t *w, const char *channel)
{
    for (size_t i = 0; i < w->fake.nanswers; i++)
        if (!strcmp(w->fake.answers[i].channel, channel))
            return w->fake.answers[i].n;
    return 0;
}
