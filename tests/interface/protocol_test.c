/* Protocol tests of bin/chat-interface over real sockets: hand-made frames
 * and requests, each case asserting the exact close code or status. The
 * echo endpoint needs no worker; the process gets a private Redis. */
#include "tests/support/proc.h"
#include "tests/support/redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "channel-layer/chl.h"
#include "common/envelope.h"
#include "common/error.h"
#include "tests/interface/ws_client.h"

static ts_redis_t redis;
static pid_t server = -1;
static int port;
static char webdir[64];
static char logpath[128];

static int dial(void)
{
    return wc_dial(port);
}

static int ws_open(const char *path)
{
    return wc_ws_open(port, path);
}

static int setup(void **state)
{
    (void)state;
    if (ts_redis_start(&redis) != 0)
        return -1;
    port = ts_free_port();
    snprintf(webdir, sizeof(webdir), "/tmp/ifc_protocol.XXXXXX");
    if (!mkdtemp(webdir))
        return -1;
    char path[256];
    snprintf(path, sizeof(path), "%s/static", webdir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/static/app.js", webdir);
    FILE *f = fopen(path, "w");
    fputs("console.log(1);\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/secret.txt", webdir);
    f = fopen(path, "w");
    fputs("secret\n", f);
    fclose(f);
    snprintf(logpath, sizeof(logpath), "%s/interface.log", webdir);
    const char *extra[] = {
        "--echo-max-message", "1024", "--header-timeout", "300", "--reply-timeout", "500", NULL};
    server = wc_start_interface(port, redis.url, webdir, logpath, extra);
    return server > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (server > 0)
        ts_kill_wait(server, SIGKILL);
    ts_redis_stop(&redis);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", webdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void echo_returns_text_and_binary(void **state)
{
    (void)state;
    int fd = ws_open("/echo/");
    uint8_t p[2048];
    size_t len;
    frame(fd, 1, 0, 1, 1, "hello", 5);
    assert_int_equal(read_frame(fd, p, sizeof(p), &len), 1);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "hello", 5);
    uint8_t bin[300];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (uint8_t)i;
    frame(fd, 1, 0, 2, 1, bin, sizeof(bin));
    assert_int_equal(read_frame(fd, p, sizeof(p), &len), 2);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(p, bin, sizeof(bin));
    /* Fragments with a ping in between: pong first, then the message. */
    frame(fd, 0, 0, 1, 1, "\xe2\x82", 2);
    frame(fd, 1, 0, 9, 1, "pp", 2);
    frame(fd, 1, 0, 0, 1, "\xac!", 2);
    assert_int_equal(read_frame(fd, p, sizeof(p), &len), 10);
    assert_memory_equal(p, "pp", 2);
    assert_int_equal(read_frame(fd, p, sizeof(p), &len), 1);
    assert_int_equal(len, 4);
    assert_memory_equal(p, "\xe2\x82\xac!", 4);
    /* The close handshake echoes the code. */
    frame(fd, 1, 0, 8, 1,
          "\x03\xe8"
          "bye",
          5);
    expect_close(fd, 1000);
    close(fd);
}

static void frame_violations_close_with_their_code(void **state)
{
    (void)state;
    int fd = ws_open("/echo/");
    frame(fd, 1, 0, 1, 0, "x", 1); /* unmasked */
    expect_close(fd, 1002);
    close(fd);
    fd = ws_open("/echo/");
    frame(fd, 1, 4, 1, 1, "x", 1); /* RSV1 */
    expect_close(fd, 1002);
    close(fd);
    fd = ws_open("/echo/");
    frame(fd, 1, 0, 1, 1, "\xed\xa0\x80", 3); /* a surrogate */
    expect_close(fd, 1007);
    close(fd);
    fd = ws_open("/echo/");
    uint8_t big[1025];
    memset(big, 'a', sizeof(big));
    frame(fd, 1, 0, 1, 1, big, sizeof(big)); /* over --echo-max-message */
    expect_close(fd, 1009);
    close(fd);
    fd = ws_open("/echo/");
    frame(fd, 1, 0, 8, 1, "\x03\xed", 2); /* 1005 may not be sent */
    expect_close(fd, 1002);
    close(fd);
    fd = ws_open("/echo/");
    frame(fd, 1, 0, 0, 1, "x", 1); /* continuation of nothing */
    expect_close(fd, 1002);
    close(fd);
    fd = ws_open("/echo/");
    frame(fd, 0, 0, 9, 1, "x", 1); /* fragmented ping */
    expect_close(fd, 1002);
    close(fd);
    fd = ws_open("/echo/");
    frame(fd, 1, 0, 8, 1, "", 0); /* close without a code: answered without one */
    expect_close(fd, 0);
    close(fd);
}

static int http_status(const char *request, char *head, size_t hsize, char *body, size_t bsize)
{
    return wc_http(port, request, head, hsize, body, bsize);
}

static void handshakes_are_checked(void **state)
{
    (void)state;
    char head[2048], body[256], req[1024];
    snprintf(req, sizeof(req),
             "GET /echo/ HTTP/1.1\r\nHost: h\r\n%sSec-WebSocket-Version: 8\r\n\r\n",
             UPGRADE_HEADERS);
    assert_int_equal(http_status(req, head, sizeof(head), body, sizeof(body)), 426);
    assert_non_null(strstr(head, "sec-websocket-version: 13\r\n"));
    assert_int_equal(http_status("GET /echo/ HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
                                 head, sizeof(head), body, sizeof(body)),
                     400);
    snprintf(req, sizeof(req),
             "GET /chat/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\n%sSec-WebSocket-Version: 13\r\n"
             "Origin: http://evil.example\r\n\r\n",
             UPGRADE_HEADERS);
    assert_int_equal(http_status(req, head, sizeof(head), body, sizeof(body)), 403);
}

static void http_limits_get_their_status(void **state)
{
    (void)state;
    char head[2048], body[256];
    size_t big = 17 * 1024;
    char *req = malloc(big + 64);
    snprintf(req, big + 64, "GET / HTTP/1.1\r\nX: ");
    memset(req + strlen(req), 'h', big);
    req[19 + big] = '\0';
    strcat(req, "\r\n\r\n");
    assert_int_equal(http_status(req, head, sizeof(head), body, sizeof(body)), 431);
    snprintf(req, big + 64, "GET /");
    memset(req + 5, 'u', 9000);
    strcpy(req + 9005, " HTTP/1.1\r\n\r\n");
    assert_int_equal(http_status(req, head, sizeof(head), body, sizeof(body)), 414);
    free(req);
    assert_int_equal(http_status("GET / HTTP/2.0\r\n\r\n", head, sizeof(head), body, sizeof(body)),
                     505);
    assert_int_equal(http_status("NONSENSE\r\n\r\n", head, sizeof(head), body, sizeof(body)), 400);
    assert_int_equal(http_status("POST /x HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", head,
                                 sizeof(head), body, sizeof(body)),
                     413);
}

static void pipelined_requests_are_answered_in_order(void **state)
{
    (void)state;
    int fd = dial();
    send_str(fd, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
                 "HEAD /static/app.js HTTP/1.1\r\nHost: h\r\n\r\n"
                 "GET /static/missing.js HTTP/1.1\r\nHost: h\r\n\r\n"
                 "GET /static/app.js HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    char head[2048], body[256];
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 0), 200);
    assert_string_equal(body, "ok\n");
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 1), 200);
    assert_non_null(strstr(head, "content-length: 16\r\n"));
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 0), 404);
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 0), 200);
    assert_string_equal(body, "console.log(1);\n");
    assert_true(at_eof(fd));
    close(fd);
}

static void static_files_are_served_safely(void **state)
{
    (void)state;
    char head[2048], body[256], req[512];
    assert_int_equal(http_status("GET /static/app.js HTTP/1.1\r\nHost: h\r\n\r\n", head,
                                 sizeof(head), body, sizeof(body)),
                     200);
    assert_non_null(strstr(head, "content-type: text/javascript; charset=utf-8\r\n"));
    assert_non_null(strstr(head, "cache-control: "));
    assert_non_null(strstr(head, "last-modified: "));
    const char *e = strstr(head, "etag: ");
    assert_non_null(e);
    char etag[64];
    size_t el = strcspn(e + 6, "\r");
    snprintf(etag, sizeof(etag), "%.*s", (int)el, e + 6);
    snprintf(req, sizeof(req),
             "GET /static/app.js HTTP/1.1\r\nHost: h\r\nIf-None-Match: %s\r\n\r\n", etag);
    assert_int_equal(http_status(req, head, sizeof(head), body, sizeof(body)), 304);
    assert_int_equal(http_status("GET /static/../secret.txt HTTP/1.1\r\n\r\n", head, sizeof(head),
                                 body, sizeof(body)),
                     404);
    assert_int_equal(http_status("GET /static/%2e%2e/secret.txt HTTP/1.1\r\n\r\n", head,
                                 sizeof(head), body, sizeof(body)),
                     404);
    assert_int_equal(http_status("GET /static/..%2fsecret.txt HTTP/1.1\r\n\r\n", head, sizeof(head),
                                 body, sizeof(body)),
                     404);
    assert_int_equal(http_status("POST /static/app.js HTTP/1.1\r\nContent-Length: 0\r\n\r\n", head,
                                 sizeof(head), body, sizeof(body)),
                     405);
}

static void worker_routes_without_a_worker_answer_504(void **state)
{
    (void)state;
    char head[2048], body[256];
    /* Redis takes the request, but no worker answers within the 500 ms. */
    int st =
        http_status("GET / HTTP/1.1\r\nHost: h\r\n\r\n", head, sizeof(head), body, sizeof(body));
    assert_int_equal(st, 504);
}

/* A stand-in for a worker: pops the queue "worker" until the request for
 * path comes (skipping what earlier cases left there), answers it with an
 * http.response of status 200, the headers and the body, and returns the
 * request's method (static text). */
static const char *worker_answers(const char *path, const mc_header_t *headers, size_t n,
                                  const char *body)
{
    chl_config_t cfg;
    chl_config_defaults(&cfg);
    cfg.redis_urls = redis.url;
    chl_t *chl;
    assert_int_equal(chl_open(&chl, &cfg, NULL), 0);
    const char *method = NULL;
    while (!method) {
        chl_message_t msg;
        assert_int_equal(chl_queue_pop(chl, "worker", 5000, &msg), 0);
        mc_envelope_t req;
        assert_int_equal(mc_envelope_decode(&req, msg.data, msg.len), 0);
        if (req.type == MC_ENV_HTTP_REQUEST && strcmp(req.path, path) == 0) {
            method = strcmp(req.method, "HEAD") == 0 ? "HEAD" : "GET";
            mc_envelope_t res;
            memset(&res, 0, sizeof(res));
            res.type = MC_ENV_HTTP_RESPONSE;
            res.status = 200;
            memcpy(res.headers, headers, n * sizeof(*headers));
            res.nheaders = n;
            res.body = body;
            res.body_len = strlen(body);
            char *out;
            size_t len;
            assert_int_equal(mc_envelope_encode(&res, &out, &len), 0);
            assert_int_equal(chl_send(chl, req.reply, out, len), 0);
            free(out);
        }
        mc_envelope_clear(&req);
        chl_ack(chl, &msg);
        chl_message_free(&msg);
    }
    chl_close(chl);
    return method;
}

/* The test as the worker: pops envelopes of the queue, with a timeout. */
static chl_t *as_worker(void)
{
    chl_config_t cfg;
    chl_config_defaults(&cfg);
    cfg.redis_urls = redis.url;
    chl_t *chl;
    assert_int_equal(chl_open(&chl, &cfg, NULL), 0);
    return chl;
}

/* The next envelope on the queue within ms, decoded into *env; 0, or
 * MC_EAGAIN when none came. */
static int next_envelope(chl_t *w, long ms, mc_envelope_t *env)
{
    chl_message_t msg;
    int rc = chl_queue_pop(w, "worker", ms, &msg);
    if (rc != 0)
        return rc;
    assert_int_equal(mc_envelope_decode(env, msg.data, msg.len), 0);
    chl_ack(w, &msg);
    chl_message_free(&msg);
    return 0;
}

/* Sends env to channel as a worker does. */
static void worker_sends(chl_t *w, const char *channel, const mc_envelope_t *env)
{
    char *out;
    size_t len;
    assert_int_equal(mc_envelope_encode(env, &out, &len), 0);
    assert_int_equal(chl_send(w, channel, out, len), 0);
    free(out);
}

/* A queue that refuses a push, full or with Redis out of memory, is no
 * Redis error: the client gets 503 as ever, and /metrics counts it apart
 * (queue_full_total), so that an operator is not sent looking for a dead
 * Redis. */
static void a_full_queue_is_counted_apart_from_redis_errors(void **state)
{
    (void)state;
    char head[2048], body[8192];
    int mp = wc_metrics_port(port);
    long long errors = wc_metric_at(mp, "chat_interface_redis_errors_total");
    long long full = wc_metric_at(mp, "chat_interface_queue_full_total");
    assert_true(errors >= 0 && full >= 0);
    ts_redis_int(&redis, "CONFIG SET maxmemory 1");
    int status =
        http_status("GET /anything HTTP/1.1\r\n\r\n", head, sizeof(head), body, sizeof(body));
    ts_redis_int(&redis, "CONFIG SET maxmemory 0");
    assert_int_equal(status, 503);
    assert_int_equal(wc_metric_at(mp, "chat_interface_queue_full_total"), full + 1);
    assert_int_equal(wc_metric_at(mp, "chat_interface_redis_errors_total"), errors);
}

/* A chat socket holds back what it reads while the workers owe it
 * socket_in_flight (4) answers: one socket never has more of its messages
 * in the workers' queue, and nothing is refused; each answer marked done
 * lets one more through, in order. */
static void a_socket_waits_for_its_answers(void **state)
{
    (void)state;
    chl_t *w = as_worker();
    int fd = dial();
    send_str(fd,
             "GET /chat/stream/ HTTP/1.1\r\nHost: h\r\nOrigin: http://h\r\n"
             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    mc_envelope_t env;
    assert_int_equal(next_envelope(w, 5000, &env), 0);
    assert_int_equal(env.type, MC_ENV_WS_CONNECT);
    char reply[256];
    snprintf(reply, sizeof(reply), "%s", env.reply);
    mc_envelope_clear(&env);
    mc_envelope_t accept = {.type = MC_ENV_WS_ACCEPT, .has_scope = 1, .scope = {7, "ann", 0}};
    worker_sends(w, reply, &accept);
    char head[1024], body[16];
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 1), 101);
    mc_envelope_t answer = {.type = MC_ENV_WS_SEND, .body = "{\"ok\":1}", .body_len = 8, .done = 1};
    mc_envelope_t unmarked = {.type = MC_ENV_WS_SEND, .body = "{\"by\":1}", .body_len = 8};
    uint8_t p[64];
    size_t len;
    /* Ten at once. */
    for (int i = 0; i < 10; i++) {
        char t[8];
        int n = snprintf(t, sizeof(t), "%d", i);
        frame(fd, 1, 0, 1, 1, t, (size_t)n);
    }
    /* Before the first marked answer (workers of an older version mark
     * none), nothing waits: all ten come. Answered, the socket hears each. */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(next_envelope(w, 5000, &env), 0);
        assert_int_equal(env.type, MC_ENV_WS_RECEIVE);
        assert_int_equal(env.body[0], '0' + i);
        mc_envelope_clear(&env);
        worker_sends(w, reply, &answer);
        assert_int_equal(read_frame(fd, p, sizeof(p), &len), 1);
    }
    for (int i = 0; i < 10; i++) {
        char t[8];
        int n = snprintf(t, sizeof(t), "%d", i);
        frame(fd, 1, 0, 1, 1, t, (size_t)n);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(next_envelope(w, 5000, &env), 0);
        assert_int_equal(env.body[0], '0' + i);
        mc_envelope_clear(&env);
    }
    /* The fifth waits; something unmarked for the socket does not free it. */
    assert_int_equal(next_envelope(w, 300, &env), MC_EAGAIN);
    worker_sends(w, reply, &unmarked);
    assert_int_equal(read_frame(fd, p, sizeof(p), &len), 1);
    assert_int_equal(next_envelope(w, 300, &env), MC_EAGAIN);
    /* Each marked answer lets one more through, in order. */
    for (int i = 4; i < 10; i++) {
        worker_sends(w, reply, &answer);
        assert_int_equal(read_frame(fd, p, sizeof(p), &len), 1);
        assert_int_equal(next_envelope(w, 5000, &env), 0);
        assert_int_equal(env.body[0], '0' + i);
        mc_envelope_clear(&env);
    }
    /* A mark alone (an empty text) is no frame. */
    mc_envelope_t mark = {.type = MC_ENV_WS_SEND, .body = "", .done = 1};
    worker_sends(w, reply, &mark);
    worker_sends(w, reply, &unmarked);
    assert_int_equal(read_frame(fd, p, sizeof(p), &len), 1);
    assert_int_equal(len, 8);
    close(fd);
    chl_close(w);
}

/* A compressed message costs the socket's budget its bytes once inflated:
 * 60,000 bytes of one letter deflate to some hundred, and the budget of
 * bytes (64 KiB a second, bursts of four seconds' worth) takes four of
 * them, not more. The rest of the burst is refused, said once. */
static void compressed_messages_cost_their_inflated_bytes(void **state)
{
    (void)state;
    chl_t *w = as_worker();
    int fd = dial();
    send_str(fd, "GET /chat/stream/ HTTP/1.1\r\nHost: h\r\nOrigin: http://h\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
    mc_envelope_t env;
    /* (The disconnects of earlier tests' sockets may come first.) */
    for (;;) {
        assert_int_equal(next_envelope(w, 5000, &env), 0);
        if (env.type == MC_ENV_WS_CONNECT)
            break;
        mc_envelope_clear(&env);
    }
    char reply[256];
    snprintf(reply, sizeof(reply), "%s", env.reply);
    mc_envelope_clear(&env);
    mc_envelope_t accept = {.type = MC_ENV_WS_ACCEPT, .has_scope = 1, .scope = {8, "bea", 0}};
    worker_sends(w, reply, &accept);
    char head[1024], body[16];
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 1), 101);
    assert_non_null(strstr(head, "sec-websocket-extensions: permessage-deflate"));
    enum { N = 8, LEN = 60000 };
    char *msg = malloc(LEN);
    assert_non_null(msg);
    memset(msg, 'a', LEN);
    size_t zl;
    uint8_t *z = wc_deflate(msg, LEN, &zl);
    assert_true(zl < 1000);
    for (int i = 0; i < N; i++)
        frame(fd, 1, 4, 1, 1, z, zl);
    free(z);
    /* As the worker: each message answered, marked done. */
    mc_envelope_t answer = {.type = MC_ENV_WS_SEND, .body = "{\"ok\":1}", .body_len = 8, .done = 1};
    int passed = 0;
    while (passed < N && next_envelope(w, 500, &env) == 0) {
        assert_int_equal(env.type, MC_ENV_WS_RECEIVE);
        assert_int_equal(env.body_len, LEN);
        mc_envelope_clear(&env);
        worker_sends(w, reply, &answer);
        passed++;
    }
    assert_int_equal(passed, 4);
    /* Four answers and one RATE_LIMITED, in some order. */
    uint8_t p[256];
    size_t len;
    int rsv, limited = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(read_frame_rsv(fd, p, sizeof(p), &len, NULL, &rsv), 1);
        assert_int_equal(rsv, 0);
        limited += len == 24 && memcmp(p, "{\"error\":\"RATE_LIMITED\"}", 24) == 0;
    }
    assert_int_equal(limited, 1);
    free(msg);
    close(fd);
    chl_close(w);
}

static const char *const CSP_VALUE =
    "content-security-policy: default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'\r\n";

static void assert_security_headers(const char *head)
{
    assert_non_null(strstr(head, CSP_VALUE));
    assert_non_null(strstr(head, "x-content-type-options: nosniff\r\n"));
    assert_non_null(strstr(head, "referrer-policy: same-origin\r\n"));
    assert_non_null(strstr(head, "x-frame-options: DENY\r\n"));
}

/* A worker's answer to HEAD goes out without its body but with its length:
 * the next response on the connection follows the head directly. */
static void worker_answers_to_head_go_out_without_body(void **state)
{
    (void)state;
    int fd = dial();
    send_str(fd, "HEAD /head-page HTTP/1.1\r\nHost: h\r\n\r\n");
    const mc_header_t h[] = {{"content-type", "text/html; charset=utf-8"}};
    assert_string_equal(worker_answers("/head-page", h, 1, "<p>hello</p>\n"), "HEAD");
    char head[4096], body[256];
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 1), 200);
    assert_non_null(strstr(head, "content-length: 13\r\n"));
    assert_non_null(strstr(head, "content-type: text/html; charset=utf-8\r\n"));
    assert_security_headers(head);
    send_str(fd, "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 0), 200);
    assert_string_equal(body, "ok\n");
    assert_true(at_eof(fd));
    close(fd);
    /* HEAD of a missing static file: a 404 head, no body either. */
    fd = dial();
    send_str(fd, "HEAD /static/missing.js HTTP/1.1\r\nHost: h\r\n\r\n"
                 "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 1), 404);
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 0), 200);
    assert_string_equal(body, "ok\n");
    close(fd);
}

/* Each security header goes out once: the worker's own value when it set
 * one, ours otherwise; static files and our own answers carry all four. */
static void responses_carry_security_headers(void **state)
{
    (void)state;
    char head[4096], body[256];
    int fd = dial();
    send_str(fd, "GET /json HTTP/1.1\r\nHost: h\r\n\r\n");
    const mc_header_t json[] = {{"content-type", "application/json"}};
    assert_string_equal(worker_answers("/json", json, 1, "{\"a\":1}"), "GET");
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 0), 200);
    assert_string_equal(body, "{\"a\":1}");
    assert_security_headers(head);

    send_str(fd, "GET /own HTTP/1.1\r\nHost: h\r\n\r\n");
    const mc_header_t own[] = {{"content-type", "text/html; charset=utf-8"},
                               {"content-security-policy", "default-src 'none'"},
                               {"x-frame-options", "SAMEORIGIN"}};
    assert_string_equal(worker_answers("/own", own, 3, "<p>own</p>"), "GET");
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 0), 200);
    assert_non_null(strstr(head, "content-security-policy: default-src 'none'\r\n"));
    assert_non_null(strstr(head, "x-frame-options: SAMEORIGIN\r\n"));
    assert_null(strstr(head, "frame-ancestors"));
    assert_null(strstr(head, "DENY"));
    assert_non_null(strstr(head, "x-content-type-options: nosniff\r\n"));
    assert_non_null(strstr(head, "referrer-policy: same-origin\r\n"));
    close(fd);

    const char *const ours[] = {"GET /static/app.js HTTP/1.1\r\n\r\n",
                                "GET /static/missing.js HTTP/1.1\r\n\r\n",
                                "GET /healthz HTTP/1.1\r\n\r\n", "GET /metrics HTTP/1.1\r\n\r\n"};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        char big[8192];
        http_status(ours[i], head, sizeof(head), big, sizeof(big));
        assert_security_headers(head);
    }
}

/* The worker sees the path percent-decoded, as ASGI gives it; %00 and a
 * malformed escape stay as they were sent. */
static void worker_paths_are_percent_decoded(void **state)
{
    (void)state;
    int fd = dial();
    send_str(fd, "GET /p%41th%2fx%20y%00%4 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    const mc_header_t h[] = {{"content-type", "text/plain"}};
    assert_string_equal(worker_answers("/pAth/x y%00%4", h, 1, "decoded\n"), "GET");
    char head[2048], body[256];
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 0), 200);
    assert_string_equal(body, "decoded\n");
    close(fd);
}

static void slowloris_is_cut_off_with_408(void **state)
{
    (void)state;
    int fd = dial();
    send_str(fd, "GET /healthz HTTP/1.1\r\nHost: h\r\nX-Slow: a");
    char head[2048], body[256];
    /* The server's 300 ms head timeout answers; recv blocks until then. */
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 0), 408);
    assert_true(at_eof(fd));
    close(fd);
}

/* /metrics names the processes and what they do: it is served on the
 * metrics listener only (a loopback address of the operator's choosing),
 * never on the address the public reaches. */
static void metrics_count_what_happened(void **state)
{
    (void)state;
    char head[2048], body[4096];
    assert_int_equal(
        http_status("GET /metrics HTTP/1.1\r\n\r\n", head, sizeof(head), body, sizeof(body)), 404);
    assert_null(strstr(body, "chat_interface"));
    assert_int_equal(wc_http(wc_metrics_port(port), "GET /metrics HTTP/1.1\r\n\r\n", head,
                             sizeof(head), body, sizeof(body)),
                     200);
    assert_non_null(strstr(body, "chat_interface_open_sockets 1\n"));
    assert_non_null(strstr(body, "chat_interface_upgrades_accepted_total"));
    assert_non_null(strstr(body, "chat_interface_frames_in_total"));
    assert_non_null(strstr(body, "chat_interface_closed_slow_total"));
    assert_non_null(strstr(body, "chat_interface_redis_errors_total"));
    assert_non_null(strstr(body, "chat_interface_queue_full_total"));
    /* The metrics listener serves nothing else. */
    assert_int_equal(wc_http(wc_metrics_port(port), "GET /static/app.js HTTP/1.1\r\n\r\n", head,
                             sizeof(head), body, sizeof(body)),
                     404);
}

static void sigterm_closes_websockets_with_1001(void **state)
{
    (void)state;
    int fd = ws_open("/echo/");
    frame(fd, 1, 0, 1, 1, "x", 1);
    uint8_t p[16];
    size_t len;
    assert_int_equal(read_frame(fd, p, sizeof(p), &len), 1);
    kill(server, SIGTERM);
    expect_close(fd, 1001);
    close(fd);
    int status;
    assert_int_equal(waitpid(server, &status, 0), server);
    server = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(echo_returns_text_and_binary),
        cmocka_unit_test(frame_violations_close_with_their_code),
        cmocka_unit_test(handshakes_are_checked),
        cmocka_unit_test(http_limits_get_their_status),
        cmocka_unit_test(pipelined_requests_are_answered_in_order),
        cmocka_unit_test(static_files_are_served_safely),
        cmocka_unit_test(worker_routes_without_a_worker_answer_504),
        cmocka_unit_test(worker_answers_to_head_go_out_without_body),
        cmocka_unit_test(responses_carry_security_headers),
        cmocka_unit_test(worker_paths_are_percent_decoded),
        cmocka_unit_test(slowloris_is_cut_off_with_408),
        cmocka_unit_test(metrics_count_what_happened),
        cmocka_unit_test(a_socket_waits_for_its_answers),
        cmocka_unit_test(a_full_queue_is_counted_apart_from_redis_errors),
        cmocka_unit_test(compressed_messages_cost_their_inflated_bytes),
        cmocka_unit_test(sigterm_closes_websockets_with_1001),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
