/* bin/chat-worker as real processes (two of them, on one sqlite file)
 * against a private redis-server, driven by this test acting as an
 * interface: it pushes envelopes onto the worker queue with a blocking
 * chl_t and reads the answers from its own process channel. */
#include "channel-layer/chl.h"
#include "common/envelope.h"
#include "common/error.h"
#include "tests/support/proc.h"
#include "tests/support/redis.h"

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define NWORKERS 2
#define WAIT_MS 15000
#define INBOX 1024

static ts_redis_t redis;
static char dir[64], db[128], ctl[512], worker_bin[512];
static pid_t workers[NWORKERS];
static chl_t *ifc;
static char proc[64];

static struct {
    char channel[160];
    mc_envelope_t env;
    char *data;
    int used;
} inbox[INBOX];
static size_t ninbox;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run_ctl(const char *input, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "printf '%s' | %s --db %s %s >/dev/null", input, ctl, db, args);
    assert_int_equal(system(cmd), 0);
}

static int group_setup(void **state)
{
    (void)state;
    if (ts_redis_start(&redis))
        return -1;
    strcpy(dir, "/tmp/mc-worker-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(db, sizeof(db), "%s/chat.sqlite3", dir);
    const char *b = getenv("MC_BUILD"), *src = getenv("MC_SOURCE");
    snprintf(ctl, sizeof(ctl), "%s/bin/chatctl", b ? b : "build/asan");
    snprintf(worker_bin, sizeof(worker_bin), "%s/bin/chat-worker", b ? b : "build/asan");
    static char web[512];
    snprintf(web, sizeof(web), "%s/web", src ? src : ".");
    setenv("CHAT_WEB_ROOT", web, 1);
    setenv("CHAT_DB", db, 1);
    setenv("CHAT_REDIS_URL", redis.url, 1);
    setenv("CHAT_ARGON2_MEMORY_KIB", "64", 1);
    setenv("CHAT_ARGON2_TIME", "1", 1);
    setenv("CHAT_LOG_LEVEL", "warn", 1);
    setenv("CHAT_RATE_BURST", "100000", 1); /* one user sends a lot here */
    run_ctl("", "migrate");
    run_ctl("pw-ann\\n", "user add ann --password-stdin");
    run_ctl("pw-bob\\n", "user add bob --password-stdin");
    run_ctl("pw-sue\\n", "user add sue --staff --password-stdin");
    run_ctl("", "room add Lobby");
    run_ctl("", "room add Staff --staff-only");
    char log[160];
    snprintf(log, sizeof(log), "%s/worker.log", dir);
    for (int i = 0; i < NWORKERS; i++) {
        const char *argv[] = {worker_bin, NULL};
        workers[i] = ts_spawn(argv, log);
        if (workers[i] <= 0)
            return -1;
    }
    chl_config_t cfg;
    chl_config_defaults(&cfg);
    cfg.redis_urls = redis.url;
    snprintf(proc, sizeof(proc), "ifc.test.%d", (int)getpid());
    return chl_open(&ifc, &cfg, proc) ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int clean = 1;
    for (int i = 0; i < NWORKERS; i++) {
        int status = ts_kill_wait(workers[i], SIGTERM);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "# worker %d ended with status %d\n", i, status);
            clean = 0;
        }
    }
    chl_close(ifc);
    for (size_t i = 0; i < ninbox; i++) {
        mc_envelope_clear(&inbox[i].env);
        free(inbox[i].data);
    }
    char cmd[256];
    if (!clean) {
        snprintf(cmd, sizeof(cmd), "sed 's/^/# /' %s/worker.log >&2", dir);
        (void)system(cmd);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    (void)system(cmd);
    ts_redis_stop(&redis);
    return clean ? 0 : -1;
}

static void push(const mc_envelope_t *env)
{
    char *data;
    size_t len;
    assert_int_equal(mc_envelope_encode(env, &data, &len), 0);
    assert_int_equal(chl_queue_push(ifc, "worker", data, len), 0);
    free(data);
}

static void conn_channel(char *buf, size_t size, int conn)
{
    snprintf(buf, size, "%s!%d", proc, conn);
}

/* Whether a group message of seq was handed on already: as an interface,
 * this test hands a group's messages on only above the last seq it
 * handed there (channel-layer/local.c), so that one published again (a
 * replay) goes no further. */
static int seen_before(const char *group, uint64_t seq)
{
    static struct {
        char group[64];
        uint64_t last;
    } groups[16];
    static size_t ngroups;
    if (!seq)
        return 0;
    size_t i = 0;
    while (i < ngroups && strcmp(groups[i].group, group) != 0)
        i++;
    if (i == ngroups) {
        assert_true(ngroups < sizeof(groups) / sizeof(groups[0]));
        snprintf(groups[ngroups++].group, sizeof(groups[0].group), "%s", group);
    }
    if (seq <= groups[i].last)
        return 1;
    groups[i].last = seq;
    return 0;
}

/* Finds (waiting up to WAIT_MS) an unread envelope sent to channel (a
 * connection's channel or a group) of type, whose text or body contains
 * part (when not NULL). Marks it read and returns it. */
static mc_envelope_t *expect(const char *channel, mc_envelope_type_t type, const char *part)
{
    int64_t deadline = mono_ms() + WAIT_MS;
    size_t i = 0;
    for (;;) {
        for (; i < ninbox; i++) {
            mc_envelope_t *e = &inbox[i].env;
            if (inbox[i].used || strcmp(inbox[i].channel, channel) != 0 || e->type != type)
                continue;
            if (part && (!e->body || !strstr(e->body, part)))
                continue;
            inbox[i].used = 1;
            return e;
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            break;
        char pattern[80];
        snprintf(pattern, sizeof(pattern), "%s!", proc);
        const char *chans[] = {pattern};
        chl_message_t m;
        int rc = chl_receive(ifc, chans, 1, left, &m);
        if (rc == MC_EAGAIN)
            break;
        assert_int_equal(rc, 0);
        if (seen_before(m.channel, m.seq)) {
            chl_message_free(&m);
            continue;
        }
        assert_true(ninbox < INBOX);
        snprintf(inbox[ninbox].channel, sizeof(inbox[0].channel), "%s", m.channel);
        inbox[ninbox].data = strndup(m.data, m.len);
        assert_int_equal(
            mc_envelope_decode(&inbox[ninbox].env, inbox[ninbox].data, strlen(inbox[ninbox].data)),
            0);
        ninbox++;
        chl_message_free(&m);
    }
    fail_msg("no %s for %s containing %s", mc_envelope_type_name(type), channel,
             part ? part : "anything");
    return NULL;
}

/* The raw JSON of an inbox entry (for fields the codec does not know). */
static const char *raw_of(const mc_envelope_t *e)
{
    for (size_t i = 0; i < ninbox; i++)
        if (&inbox[i].env == e)
            return inbox[i].data;
    return "";
}

static int http_conn = 1000;

typedef struct reply {
    int status;
    char cookies[512];
    char location[256];
    char body[4096];
} reply_t;

static void http(const char *method, const char *path, const char *query, const char *cookie,
                 const char *body, reply_t *out)
{
    char channel[96];
    conn_channel(channel, sizeof(channel), ++http_conn);
    mc_envelope_t env = {.type = MC_ENV_HTTP_REQUEST,
                         .reply = channel,
                         .method = method,
                         .path = path,
                         .query = query,
                         .client = "127.0.0.9",
                         .body = body,
                         .body_len = strlen(body)};
    if (cookie)
        env.headers[env.nheaders++] = (mc_header_t){"cookie", cookie};
    push(&env);
    mc_envelope_t *r = expect(channel, MC_ENV_HTTP_RESPONSE, NULL);
    memset(out, 0, sizeof(*out));
    out->status = r->status;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!strcmp(r->headers[i].name, "set-cookie")) {
            strncat(out->cookies, r->headers[i].value,
                    sizeof(out->cookies) - strlen(out->cookies) - 2);
            strcat(out->cookies, "\n");
        }
        if (!strcmp(r->headers[i].name, "location"))
            snprintf(out->location, sizeof(out->location), "%s", r->headers[i].value);
    }
    snprintf(out->body, sizeof(out->body), "%s", r->body ? r->body : "");
}

static void cookie_value(const reply_t *r, const char *name, char *out, size_t size)
{
    char key[64];
    snprintf(key, sizeof(key), "%s=", name);
    const char *p = strstr(r->cookies, key);
    assert_non_null(p);
    p += strlen(key);
    size_t n = strcspn(p, ";\n");
    assert_true(n < size);
    memcpy(out, p, n);
    out[n] = '\0';
}

static void login(const char *user, const char *password, char *cookie, size_t size)
{
    reply_t r;
    char csrf[64], session[64], body[256], c1[128];
    http("GET", "/accounts/login/", "next=/", NULL, "", &r);
    assert_int_equal(r.status, 200);
    cookie_value(&r, "csrftoken", csrf, sizeof(csrf));
    snprintf(c1, sizeof(c1), "csrftoken=%s", csrf);
    snprintf(body, sizeof(body), "username=%s&password=%s&next=%%2F&csrfmiddlewaretoken=%s", user,
             password, csrf);
    http("POST", "/accounts/login/", "", c1, body, &r);
    assert_int_equal(r.status, 302);
    assert_string_equal(r.location, "/");
    cookie_value(&r, "sessionid", session, sizeof(session));
    cookie_value(&r, "csrftoken", csrf, sizeof(csrf));
    snprintf(cookie, size, "csrftoken=%s; sessionid=%s", csrf, session);
}

typedef struct sock {
    char channel[96];
    mc_scope_t scope;
    char group_buf[16][32];
    size_t ngroups;
} sock_t;

static void connect_ws(const char *cookie, int conn, sock_t *s)
{
    memset(s, 0, sizeof(*s));
    conn_channel(s->channel, sizeof(s->channel), conn);
    mc_envelope_t env = {.type = MC_ENV_WS_CONNECT,
                         .reply = s->channel,
                         .path = "/chat/stream/",
                         .query = "",
                         .client = "127.0.0.9"};
    env.headers[env.nheaders++] = (mc_header_t){"cookie", cookie};
    push(&env);
    mc_envelope_t *a = expect(s->channel, MC_ENV_WS_ACCEPT, NULL);
    assert_int_equal(a->has_scope, 1);
    s->scope = a->scope;
    expect(s->channel, MC_ENV_WS_SEND, "{\"rooms\":[");
}

static void track(sock_t *s, const char *group, int in)
{
    for (size_t i = 0; i < s->ngroups; i++) {
        if (!strcmp(s->group_buf[i], group)) {
            if (!in && i != --s->ngroups)
                memcpy(s->group_buf[i], s->group_buf[s->ngroups], sizeof(s->group_buf[i]));
            return;
        }
    }
    if (in)
        snprintf(s->group_buf[s->ngroups++], 32, "%s", group);
}

static void send_ws(sock_t *s, const char *text)
{
    mc_envelope_t env = {.type = MC_ENV_WS_RECEIVE,
                         .reply = s->channel,
                         .has_scope = 1,
                         .scope = s->scope,
                         .body = text,
                         .body_len = strlen(text)};
    for (size_t i = 0; i < s->ngroups; i++)
        env.groups[env.ngroups++] = s->group_buf[i];
    push(&env);
}

static void logs_in_over_http_with_csrf(void **state)
{
    (void)state;
    reply_t r;
    http("GET", "/", "", NULL, "", &r);
    assert_int_equal(r.status, 302);
    assert_string_equal(r.location, "/accounts/login/?next=/");
    http("POST", "/accounts/login/", "", NULL, "username=ann&password=pw-ann", &r);
    assert_int_equal(r.status, 403);
    char cookie[256];
    login("ann", "pw-ann", cookie, sizeof(cookie));
    http("GET", "/", "", cookie, "", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "Signed in as <strong>ann</strong>"));
}

static void two_sockets_see_each_other(void **state)
{
    (void)state;
    char ca[256], cb[256];
    login("ann", "pw-ann", ca, sizeof(ca));
    login("bob", "pw-bob", cb, sizeof(cb));
    sock_t a, b;
    connect_ws(ca, 1, &a);
    connect_ws(cb, 2, &b);
    assert_string_equal(a.scope.username, "ann");

    send_ws(&a, "{\"command\":\"join\",\"room\":1}");
    expect(a.channel, MC_ENV_WS_SEND, "{\"join\":\"1\",\"title\":\"Lobby\",\"history\":[]");
    track(&a, "room-1", 1);
    send_ws(&b, "{\"command\":\"join\",\"room\":\"1\"}");
    expect(b.channel, MC_ENV_WS_SEND, "{\"join\":\"1\"");
    track(&b, "room-1", 1);
    mc_envelope_t *n =
        expect("room-1", MC_ENV_WS_SEND,
               "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":4}");
    assert_non_null(strstr(raw_of(n), b.channel)); /* "except": bob */

    send_ws(&a, "{\"command\":\"send\",\"room\":1,\"message\":\"hello\",\"client_id\":\"k1\"}");
    /* One group message carries every copy: the interface appends
     * "own":true to the copy of the member named in "own". */
    mc_envelope_t *msg = expect("room-1", MC_ENV_WS_SEND, "\"message\":\"hello\"");
    assert_non_null(strstr(msg->body, "{\"room\":\"1\",\"message\":\"hello\",\"username\":\"ann\","
                                      "\"msg_type\":0,\"id\":"));
    assert_null(strstr(msg->body, "own"));
    assert_string_equal(msg->own, a.channel);
    assert_string_equal(msg->except, "");

    /* The replayed send is stored once and handed on once (published
     * again with its id, which an interface had): the next message in the
     * room is bob's. */
    send_ws(&a, "{\"command\":\"send\",\"room\":1,\"message\":\"hello\",\"client_id\":\"k1\"}");
    send_ws(&b, "{\"command\":\"send\",\"room\":1,\"message\":\"after\"}");
    mc_envelope_t *next = expect("room-1", MC_ENV_WS_SEND, "\"msg_type\":0,");
    assert_non_null(strstr(next->body, "\"message\":\"after\""));
    assert_string_equal(next->own, b.channel);

    /* Leave: reply and notice; then sending is denied. */
    send_ws(&b, "{\"command\":\"leave\",\"room\":1}");
    expect(b.channel, MC_ENV_WS_SEND, "{\"leave\":\"1\"}");
    track(&b, "room-1", 0);
    expect("room-1", MC_ENV_WS_SEND, "\"username\":\"bob\",\"msg_type\":5}");
    send_ws(&b, "{\"command\":\"send\",\"room\":1,\"message\":\"x\"}");
    expect(b.channel, MC_ENV_WS_SEND,
           "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"1\",\"command\":\"send\"}");

    /* History and since on rejoin. */
    send_ws(&b, "{\"command\":\"join\",\"room\":1,\"since\":0}");
    expect(b.channel, MC_ENV_WS_SEND, "\"history\":[{\"room\":\"1\",\"message\":\"hello\"");
    track(&b, "room-1", 1);
    send_ws(&b, "{\"command\":\"history\",\"room\":1,\"limit\":5}");
    expect(b.channel, MC_ENV_WS_SEND, "{\"history\":\"1\",\"messages\":[{");

    /* Disconnect: a leave notice. */
    mc_envelope_t d = {.type = MC_ENV_WS_DISCONNECT,
                       .reply = b.channel,
                       .has_scope = 1,
                       .scope = b.scope,
                       .code = 1001};
    d.groups[d.ngroups++] = "room-1";
    push(&d);
    expect("room-1", MC_ENV_WS_SEND, "\"username\":\"bob\",\"msg_type\":5}");
}

static void staff_only_is_refused_at_join_and_send(void **state)
{
    (void)state;
    char ca[256], cs[256];
    login("ann", "pw-ann", ca, sizeof(ca));
    login("sue", "pw-sue", cs, sizeof(cs));
    sock_t a, s;
    connect_ws(ca, 11, &a);
    connect_ws(cs, 12, &s);
    send_ws(&a, "{\"command\":\"join\",\"room\":2}");
    expect(a.channel, MC_ENV_WS_SEND,
           "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"2\",\"command\":\"join\"}");
    send_ws(&s, "{\"command\":\"join\",\"room\":2}");
    expect(s.channel, MC_ENV_WS_SEND, "{\"join\":\"2\",\"title\":\"Staff\"");
    track(&a, "room-2", 1); /* a lying interface cannot get ann in */
    send_ws(&a, "{\"command\":\"send\",\"room\":2,\"message\":\"x\"}");
    expect(a.channel, MC_ENV_WS_SEND,
           "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"2\",\"command\":\"send\"}");
}

static void bad_input_is_answered(void **state)
{
    (void)state;
    char ca[256];
    login("ann", "pw-ann", ca, sizeof(ca));
    sock_t a;
    connect_ws(ca, 21, &a);
    struct {
        const char *in, *out;
    } cases[] = {
        {"{oops", "{\"error\":\"BAD_REQUEST\"}"},
        {"{\"command\":\"dance\"}", "{\"error\":\"UNKNOWN_COMMAND\"}"},
        {"{\"command\":\"join\",\"room\":\"x\"}",
         "{\"error\":\"ROOM_INVALID\",\"command\":\"join\"}"},
        {"{\"command\":\"join\",\"room\":404}",
         "{\"error\":\"ROOM_INVALID\",\"room\":\"404\",\"command\":\"join\"}"},
        {"{\"command\":\"send\",\"room\":1,\"message\":\" \"}",
         "{\"error\":\"MESSAGE_EMPTY\",\"room\":\"1\",\"command\":\"send\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        send_ws(&a, cases[i].in);
        expect(a.channel, MC_ENV_WS_SEND, cases[i].out);
    }
    send_ws(&a, "{\"command\":\"join\",\"room\":1}");
    expect(a.channel, MC_ENV_WS_SEND, "{\"join\":\"1\"");
}

static void changes_by_an_admin_reach_sockets(void **state)
{
    (void)state;
    char ca[256];
    login("ann", "pw-ann", ca, sizeof(ca));
    sock_t a;
    connect_ws(ca, 31, &a);
    run_ctl("", "room add Garden");
    expect("rooms", MC_ENV_WS_SEND, "\"title\":\"Garden\"");
    run_ctl("", "user deactivate bob");
    expect("user-2", MC_ENV_WS_CLOSE, NULL);
}

static void many_sends_through_two_workers_are_stored_once_each(void **state)
{
    (void)state;
    char cs[256];
    login("sue", "pw-sue", cs, sizeof(cs));
    sock_t s;
    connect_ws(cs, 41, &s);
    send_ws(&s, "{\"command\":\"join\",\"room\":1}");
    expect(s.channel, MC_ENV_WS_SEND, "{\"join\":\"1\"");
    track(&s, "room-1", 1);
    enum { N = 100 };
    for (int i = 0; i < N; i++) {
        char text[128];
        snprintf(text, sizeof(text),
                 "{\"command\":\"send\",\"room\":1,\"message\":\"m%d\",\"client_id\":\"b%d\"}", i,
                 i);
        send_ws(&s, text);
        if (i % 10 == 0)
            send_ws(&s, text); /* replays */
    }
    for (int i = 0; i < N; i++) {
        char part[64];
        snprintf(part, sizeof(part), "\"message\":\"m%d\",", i);
        assert_string_equal(expect("room-1", MC_ENV_WS_SEND, part)->own, s.channel);
    }
    /* The replays delivered nothing: the next chat message is the last one. */
    send_ws(&s, "{\"command\":\"send\",\"room\":1,\"message\":\"last\"}");
    assert_non_null(strstr(expect("room-1", MC_ENV_WS_SEND, "\"msg_type\":0,")->body, "\"last\""));
    char query[256];
    snprintf(query, sizeof(query),
             "sqlite3 %s \"SELECT count(*), count(DISTINCT client_id) FROM messages "
             "WHERE client_id LIKE 'b%%'\" | grep -qx '%d|%d'",
             db, N, N);
    assert_int_equal(system(query), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(logs_in_over_http_with_csrf),
        cmocka_unit_test(two_sockets_see_each_other),
        cmocka_unit_test(staff_only_is_refused_at_join_and_send),
        cmocka_unit_test(bad_input_is_answered),
        cmocka_unit_test(changes_by_an_admin_reach_sockets),
        cmocka_unit_test(many_sends_through_two_workers_are_stored_once_each),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
