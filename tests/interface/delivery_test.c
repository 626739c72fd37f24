/* What workers send reaches the chat sockets of bin/chat-interface: a
 * group message once to each member, the sender's copy marked own, none to
 * the member it skips; a message to one socket to that socket only; a
 * group close to every member; compressed to the members that negotiated
 * permessage-deflate, plain to the others. The test plays the worker with the blocking
 * channel-layer client, over real sockets and a private Redis. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "channel-layer/chl.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/wire.h"
#include "tests/interface/ws_client.h"
#include "tests/support/proc.h"
#include "tests/support/redis_fixture.h"

#define NSOCKETS 3

static pid_t server = -1;
static int port;
static char webdir[64];
static chl_t *worker;

static int setup(void **state)
{
    if (ts_redis_fixture_start(state) != 0)
        return -1;
    snprintf(webdir, sizeof(webdir), "/tmp/ifc_delivery.XXXXXX");
    if (!mkdtemp(webdir))
        return -1;
    char log[128];
    snprintf(log, sizeof(log), "%s/interface.log", webdir);
    port = ts_free_port();
    const char *extra[] = {"--allowed-origins", "*", NULL};
    server = wc_start_interface(port, ts_redis_fixture.url, webdir, log, extra);
    chl_config_t cfg = ts_redis_fixture_config();
    return server > 0 && chl_open(&worker, &cfg, "wrk-test") == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    chl_close(worker);
    if (server > 0)
        ts_kill_wait(server, SIGKILL);
    ts_redis_fixture_stop(state);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", webdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Pops the next envelope of the workers' queue, which must be of type. */
static void pop_envelope(mc_envelope_type_t type, mc_envelope_t *env, chl_message_t *msg)
{
    assert_int_equal(chl_queue_pop(worker, "worker", 30000, msg), 0);
    assert_int_equal(chl_ack(worker, msg), 0);
    assert_int_equal(mc_envelope_decode(env, msg->data, msg->len), 0);
    assert_int_equal(env->type, type);
}

static void send_envelope(const char *to, int to_group, const mc_envelope_t *env)
{
    char *data;
    size_t len;
    assert_int_equal(mc_envelope_encode(env, &data, &len), 0);
    if (to_group)
        assert_int_equal(chl_group_send(worker, to, data, len, NULL), 0);
    else
        assert_int_equal(chl_send(worker, to, data, len), 0);
    free(data);
}

/* Opens a chat socket that the worker accepts, offering extensions (NULL:
 * none); its reply channel goes to channel (128 bytes), the value of the
 * 101's sec-websocket-extensions to answer (256 bytes). */
static int open_chat_offering(char *channel, const char *extensions, char *answer)
{
    int fd = wc_dial(port);
    ws_request_offering(fd, "/chat/stream/", extensions);
    mc_envelope_t env;
    chl_message_t msg;
    pop_envelope(MC_ENV_WS_CONNECT, &env, &msg);
    snprintf(channel, 128, "%s", env.reply);
    mc_envelope_clear(&env);
    chl_message_free(&msg);
    mc_envelope_t accept = {.type = MC_ENV_WS_ACCEPT, .has_scope = 1};
    accept.scope.user_id = 1;
    snprintf(accept.scope.username, sizeof(accept.scope.username), "ann");
    send_envelope(channel, 0, &accept);
    ws_read_101(fd, answer, 256);
    return fd;
}

static int open_chat(char *channel)
{
    char answer[256];
    int fd = open_chat_offering(channel, NULL, answer);
    assert_string_equal(answer, "");
    return fd;
}

/* websocket.send of text to a group or a channel. */
static void send_text(const char *to, int to_group, const char *text, const char *own,
                      const char *except)
{
    mc_envelope_t env = {.type = MC_ENV_WS_SEND,
                         .body = text,
                         .body_len = strlen(text),
                         .own = own ? own : "",
                         .except = except ? except : ""};
    send_envelope(to, to_group, &env);
}

static void expect_text(int fd, const char *text)
{
    uint8_t p[512];
    size_t len;
    assert_int_equal(read_frame(fd, p, sizeof(p) - 1, &len), 1);
    p[len] = '\0';
    assert_string_equal((char *)p, text);
}

static void group_messages_reach_each_member_once(void **state)
{
    (void)state;
    int fd[NSOCKETS];
    char ch[NSOCKETS][128];
    for (int i = 0; i < NSOCKETS; i++) {
        fd[i] = open_chat(ch[i]);
        assert_int_equal(chl_group_add(worker, "room-1", ch[i]), 0);
    }
    /* The sender (0) gets its copy marked own, the member skipped (1)
     * gets nothing, the others (2) the message as it is. */
    send_text("room-1", 1, "{\"room\":\"1\",\"message\":\"hi\"}", ch[0], ch[1]);
    send_text("room-1", 1, "{\"room\":\"1\",\"message\":\"next\"}", NULL, NULL);
    expect_text(fd[0], "{\"room\":\"1\",\"message\":\"hi\",\"own\":true}");
    expect_text(fd[2], "{\"room\":\"1\",\"message\":\"hi\"}");
    for (int i = 0; i < NSOCKETS; i++)
        expect_text(fd[i], "{\"room\":\"1\",\"message\":\"next\"}");

    /* An empty object gets no comma; text that is no object goes out as
     * it is, to the sender too. */
    send_text("room-1", 1, "{}", ch[2], NULL);
    send_text("room-1", 1, "[1]", ch[2], NULL);
    expect_text(fd[2], "{\"own\":true}");
    expect_text(fd[2], "[1]");
    for (int i = 0; i < 2; i++) {
        expect_text(fd[i], "{}");
        expect_text(fd[i], "[1]");
    }

    /* A message to one socket reaches that one only. */
    send_text(ch[1], 0, "{\"to\":1}", NULL, NULL);
    send_text("room-1", 1, "{\"after\":1}", NULL, NULL);
    expect_text(fd[1], "{\"to\":1}");
    for (int i = 0; i < NSOCKETS; i++)
        expect_text(fd[i], "{\"after\":1}");

    /* Garbage sent to the group is dropped for each member, and the
     * sockets go on. */
    long long dropped = wc_metric(port, "chat_interface_replies_dropped_total");
    assert_int_equal(chl_group_send(worker, "room-1", "not json", 8, NULL), 0);
    send_text("room-1", 1, "{\"still\":1}", NULL, NULL);
    for (int i = 0; i < NSOCKETS; i++)
        expect_text(fd[i], "{\"still\":1}");
    assert_int_equal(wc_metric(port, "chat_interface_replies_dropped_total"), dropped + NSOCKETS);

    /* A group close closes every member, and each says goodbye to the
     * workers with the code. */
    mc_envelope_t close_env = {.type = MC_ENV_WS_CLOSE, .code = MC_CLOSE_SESSION_ENDED};
    send_envelope("room-1", 1, &close_env);
    for (int i = 0; i < NSOCKETS; i++) {
        expect_close(fd[i], MC_CLOSE_SESSION_ENDED);
        close(fd[i]);
    }
    int seen[NSOCKETS] = {0};
    for (int n = 0; n < NSOCKETS; n++) {
        mc_envelope_t env;
        chl_message_t msg;
        pop_envelope(MC_ENV_WS_DISCONNECT, &env, &msg);
        assert_int_equal(env.code, MC_CLOSE_SESSION_ENDED);
        assert_int_equal(env.ngroups, 1);
        assert_string_equal(env.groups[0], "room-1");
        for (int i = 0; i < NSOCKETS; i++)
            seen[i] += strcmp(env.reply, ch[i]) == 0;
        mc_envelope_clear(&env);
        chl_message_free(&msg);
    }
    for (int i = 0; i < NSOCKETS; i++)
        assert_int_equal(seen[i], 1);
}

/* permessage-deflate ------------------------------------------------------- */

#define R_BASE "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

/* Expects a text frame holding text: compressed (then it inflates with a
 * window of 2^bits bytes, from fewer bytes than text) or plain. */
static void expect_message(int fd, const char *text, int bits, int compressed)
{
    static uint8_t p[64 * 1024], m[64 * 1024];
    size_t len;
    int fin, rsv;
    assert_int_equal(read_frame_rsv(fd, p, sizeof(p) - 1, &len, &fin, &rsv), 1);
    assert_int_equal(fin, 1);
    assert_int_equal(rsv, compressed ? 4 : 0);
    if (compressed) {
        long n = wc_inflate(p, len, bits, m, sizeof(m) - 1);
        assert_true(n > (long)len);
        memcpy(p, m, (size_t)n);
        len = (size_t)n;
    }
    p[len] = '\0';
    assert_string_equal((char *)p, text);
}

/* A chat message of about len bytes, and its sender's copy. */
static void chat_text(size_t len, char *text, char *own, size_t size)
{
    int n = snprintf(text, size, "{\"room\":\"2\",\"user\":\"ann\",\"message\":\"");
    while ((size_t)n + 8 < len)
        n += snprintf(text + n, size - (size_t)n, "la %d ", n % 7);
    snprintf(text + n, size - (size_t)n, "\"}");
    snprintf(own, size, "%.*s,\"own\":true}", (int)strlen(text) - 1, text);
}

static void group_messages_reach_deflate_and_plain_members_alike(void **state)
{
    (void)state;
    /* Two members that negotiated the extension, one that did not, one that
     * asked for a server window of 2^8 bytes. */
    enum { ZIP, ZIP2, PLAIN, SMALL, N };
    static const char *const offers[N] = {"permessage-deflate; client_max_window_bits",
                                          "permessage-deflate", NULL,
                                          "permessage-deflate; server_max_window_bits=8"};
    static const char *const answers[N] = {R_BASE, R_BASE, "", R_BASE "; server_max_window_bits=8"};
    int fd[N];
    char ch[N][128], answer[256];
    for (int i = 0; i < N; i++) {
        fd[i] = open_chat_offering(ch[i], offers[i], answer);
        assert_string_equal(answer, answers[i]);
        assert_int_equal(chl_group_add(worker, "room-3", ch[i]), 0);
    }
    char text[1024], own[1024];

    /* 600 bytes: compressed for ZIP2, too long for SMALL's window; the
     * sender's own copy (ZIP's) goes plain. */
    long long deflated = wc_metric(port, "chat_interface_frames_deflated_total");
    chat_text(600, text, own, sizeof(text));
    send_text("room-3", 1, text, ch[ZIP], NULL);
    expect_message(fd[ZIP], own, 15, 0);
    expect_message(fd[ZIP2], text, 15, 1);
    expect_message(fd[PLAIN], text, 15, 0);
    expect_message(fd[SMALL], text, 8, 0);
    assert_int_equal(wc_metric(port, "chat_interface_frames_deflated_total"), deflated + 1);

    /* 200 bytes fit SMALL's window. */
    chat_text(200, text, own, sizeof(text));
    send_text("room-3", 1, text, NULL, NULL);
    expect_message(fd[ZIP], text, 15, 1);
    expect_message(fd[ZIP2], text, 15, 1);
    expect_message(fd[PLAIN], text, 15, 0);
    expect_message(fd[SMALL], text, 8, 1);

    /* Short messages go plain to everyone; a message for one socket is
     * compressed for it. */
    send_text("room-3", 1, "{\"short\":1}", ch[ZIP], NULL);
    chat_text(300, text, own, sizeof(text));
    send_text(ch[ZIP2], 0, text, NULL, NULL);
    expect_message(fd[ZIP], "{\"short\":1,\"own\":true}", 15, 0);
    for (int i = ZIP2; i < N; i++)
        expect_message(fd[i], "{\"short\":1}", 15, 0);
    expect_message(fd[ZIP2], text, 15, 1);

    /* A compressed message from a client reaches the workers inflated. */
    chat_text(400, text, own, sizeof(text));
    size_t zl;
    uint8_t *z = wc_deflate(text, strlen(text), &zl);
    frame(fd[ZIP], 1, 4, 1, 1, z, zl);
    free(z);
    mc_envelope_t env;
    chl_message_t msg;
    pop_envelope(MC_ENV_WS_RECEIVE, &env, &msg);
    assert_int_equal(env.body_len, strlen(text));
    assert_memory_equal(env.body, text, env.body_len);
    mc_envelope_clear(&env);
    chl_message_free(&msg);

    mc_envelope_t close_env = {.type = MC_ENV_WS_CLOSE, .code = MC_CLOSE_NORMAL};
    send_envelope("room-3", 1, &close_env);
    for (int i = 0; i < N; i++) {
        expect_close(fd[i], MC_CLOSE_NORMAL);
        close(fd[i]);
        pop_envelope(MC_ENV_WS_DISCONNECT, &env, &msg);
        mc_envelope_clear(&env);
        chl_message_free(&msg);
    }

    /* What a chat socket inflates is held to its maximum (64 KiB). */
    int bomb = open_chat_offering(ch[0], offers[0], answer);
    char *big = malloc(64 * 1024 + 1);
    assert_non_null(big);
    memset(big, 'a', 64 * 1024 + 1);
    z = wc_deflate(big, 64 * 1024 + 1, &zl);
    frame(bomb, 1, 4, 1, 1, z, zl);
    expect_close(bomb, MC_CLOSE_TOO_BIG);
    close(bomb);
    pop_envelope(MC_ENV_WS_DISCONNECT, &env, &msg);
    assert_int_equal(env.code, MC_CLOSE_TOO_BIG);
    mc_envelope_clear(&env);
    chl_message_free(&msg);
    free(z);
    free(big);
}

/* Sends a text frame from a client socket. */
static void say(int fd, const char *text)
{
    frame(fd, 1, 0, 1, 1, text, strlen(text));
}

/* Waits (polling, at most 10 s) until the interface's metric is want. */
static void metric_becomes(const char *name, long long want)
{
    long long got = -1;
    for (int i = 0; i < 1000 && (got = wc_metric(port, name)) != want; i++)
        usleep(10000); /* between polls of a condition */
    assert_int_equal(got, want);
}

/* Pops websocket.receive envelopes until one carries text, which it
 * returns (the caller frees it) with its id. */
static void pop_receive(char *id, size_t size, char *text, size_t tsize)
{
    mc_envelope_t env;
    chl_message_t msg;
    pop_envelope(MC_ENV_WS_RECEIVE, &env, &msg);
    snprintf(id, size, "%s", env.id ? env.id : "");
    snprintf(text, tsize, "%.*s", (int)env.body_len, env.body);
    mc_envelope_clear(&env);
    chl_message_free(&msg);
}

/* Redis dies and comes back empty: the chat sockets stay open, a message
 * sent meanwhile is answered SERVER_BUSY with what names it, the socket
 * that closed meanwhile has its disconnect delivered afterwards, and the
 * sockets that stayed are told to resync and hear their room again
 * without joining it again. */
static void a_redis_outage_keeps_the_sockets_and_loses_nothing_silently(void **state)
{
    (void)state;
    int fd[2];
    char ch[2][128];
    for (int i = 0; i < 2; i++) {
        fd[i] = open_chat(ch[i]);
        assert_int_equal(chl_group_add(worker, "room-2", ch[i]), 0);
    }
    /* every receive is named by the interface, uniquely */
    char id1[256], id2[256], text[256];
    say(fd[0], "{\"command\":\"who\",\"room\":2}");
    pop_receive(id1, sizeof(id1), text, sizeof(text));
    say(fd[0], "{\"command\":\"who\",\"room\":2}");
    pop_receive(id2, sizeof(id2), text, sizeof(text));
    assert_int_equal(strncmp(id1, "ifc.", 4), 0);
    assert_string_not_equal(id1, id2);
    send_text("room-2", 1, "{\"before\":1}", NULL, NULL);
    for (int i = 0; i < 2; i++)
        expect_text(fd[i], "{\"before\":1}");

    ts_redis_halt(&ts_redis_fixture, 1);
    metric_becomes("chat_interface_redis_up", 0);
    say(fd[0], "{\"command\":\"send\",\"room\":2,\"message\":\"x\",\"client_id\":\"c-9\"}");
    expect_text(fd[0], "{\"error\":\"SERVER_BUSY\",\"command\":\"send\",\"room\":\"2\","
                       "\"client_id\":\"c-9\"}");
    frame(fd[1], 1, 0, 8, 1, "\x03\xe8", 2); /* socket 1 leaves */
    expect_close(fd[1], 1000);
    close(fd[1]);
    metric_becomes("chat_interface_disconnects_pending", 1);

    assert_int_equal(ts_redis_restart(&ts_redis_fixture), 0); /* empty */
    metric_becomes("chat_interface_redis_up", 1);
    metric_becomes("chat_interface_disconnects_pending", 0);
    mc_envelope_t env;
    chl_message_t msg;
    int rc;
    while ((rc = chl_queue_pop(worker, "worker", 5000, &msg)) == MC_EREDIS)
        ; /* the worker's first call after the restart reconnects */
    assert_int_equal(rc, 0);
    assert_int_equal(chl_ack(worker, &msg), 0);
    assert_int_equal(mc_envelope_decode(&env, msg.data, msg.len), 0);
    assert_int_equal(env.type, MC_ENV_WS_DISCONNECT);
    assert_string_equal(env.reply, ch[1]);
    assert_int_equal(env.code, 1000);
    mc_envelope_clear(&env);
    chl_message_free(&msg);

    /* socket 0 never closed: it is told to ask for what it may have
     * missed, and hears room 2 without joining again */
    expect_text(fd[0], "{\"resync\":true}");
    send_text("room-2", 1, "{\"after\":1}", NULL, NULL);
    expect_text(fd[0], "{\"after\":1}");
    say(fd[0], "{\"command\":\"send\",\"room\":2,\"message\":\"x\",\"client_id\":\"c-9\"}");
    pop_receive(id1, sizeof(id1), text, sizeof(text));
    assert_non_null(strstr(text, "c-9"));
    assert_int_equal(wc_metric(port, "chat_interface_redis_losses_total"), 1);
    assert_int_equal(wc_metric(port, "chat_interface_busy_replies_total"), 1);
    assert_int_equal(wc_metric(port, "chat_interface_resyncs_total"), 1);
    close(fd[0]);
    pop_envelope(MC_ENV_WS_DISCONNECT, &env, &msg);
    mc_envelope_clear(&env);
    chl_message_free(&msg);
}

/* Answers lost with a Redis that died are owed no more: a socket whose
 * messages in flight (4) went unanswered when Redis died, and whose next
 * one waits for them, goes on as soon as Redis is back, not after the
 * reply timeout. */
static void answers_lost_with_redis_hold_nothing_back(void **state)
{
    (void)state;
    char ch[128], id[256], text[256];
    int fd = open_chat(ch);
    /* One marked answer: the interface counts what is in flight. */
    say(fd, "{\"command\":\"who\",\"room\":2}");
    pop_receive(id, sizeof(id), text, sizeof(text));
    mc_envelope_t done = {
        .type = MC_ENV_WS_SEND, .body = "{\"ok\":1}", .body_len = 8, .own = "", .except = ""};
    done.done = 1;
    send_envelope(ch, 0, &done);
    expect_text(fd, "{\"ok\":1}");
    for (int i = 0; i < 5; i++) {
        char t[64];
        snprintf(t, sizeof(t), "{\"command\":\"who\",\"room\":%d}", 10 + i);
        say(fd, t);
    }
    for (int i = 0; i < 4; i++)
        pop_receive(id, sizeof(id), text, sizeof(text));
    chl_message_t msg;
    assert_int_equal(chl_queue_pop(worker, "worker", 300, &msg), MC_EAGAIN); /* held */

    ts_redis_halt(&ts_redis_fixture, 1);
    metric_becomes("chat_interface_redis_up", 0);
    assert_int_equal(ts_redis_restart(&ts_redis_fixture), 0);
    metric_becomes("chat_interface_redis_up", 1);
    expect_text(fd, "{\"resync\":true}");
    int rc;
    while ((rc = chl_queue_pop(worker, "worker", 5000, &msg)) == MC_EREDIS)
        ; /* the worker's first call after the restart reconnects */
    assert_int_equal(rc, 0);
    assert_int_equal(chl_ack(worker, &msg), 0);
    mc_envelope_t env;
    assert_int_equal(mc_envelope_decode(&env, msg.data, msg.len), 0);
    assert_int_equal(env.type, MC_ENV_WS_RECEIVE);
    snprintf(text, sizeof(text), "%.*s", (int)env.body_len, env.body);
    assert_non_null(strstr(text, "\"room\":14"));
    mc_envelope_clear(&env);
    chl_message_free(&msg);
    close(fd);
    pop_envelope(MC_ENV_WS_DISCONNECT, &env, &msg);
    mc_envelope_clear(&env);
    chl_message_free(&msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(group_messages_reach_each_member_once),
        cmocka_unit_test(group_messages_reach_deflate_and_plain_members_alike),
        cmocka_unit_test(a_redis_outage_keeps_the_sockets_and_loses_nothing_silently),
        cmocka_unit_test(answers_lost_with_redis_hold_nothing_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
