/* hiredis contexts on libuv through the channel layer's adapter, against a
 * real redis-server and against a peer that resets the connection: every
 * failure reaches the context's callbacks through the loop's own events,
 * with no timer to rescue a context that would otherwise wait forever. */
#include "channel-layer/adapter.h"
#include "tests/support/loop.h"
#include "tests/support/proc.h"
#include "tests/support/redis.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#define WAIT_MS 2000

/* What the callbacks of one context saw. */
typedef struct seen {
    int connected, connect_failed, disconnected, disconnect_status;
    int replies, null_replies;
    char last[64];
} seen_t;

static void on_connect(const redisAsyncContext *ac, int status)
{
    seen_t *s = ac->data;
    if (status == REDIS_OK)
        s->connected = 1;
    else
        s->connect_failed = 1;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    seen_t *s = ac->data;
    s->disconnected = 1;
    s->disconnect_status = status;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    seen_t *s = ac->data;
    redisReply *r = reply;
    if (!r) {
        s->null_replies++;
        return;
    }
    s->replies++;
    snprintf(s->last, sizeof(s->last), "%s", r->str ? r->str : "");
}

static redisAsyncContext *open_async(uv_loop_t *loop, int port, seen_t *s)
{
    memset(s, 0, sizeof(*s));
    redisAsyncContext *ac = redisAsyncConnect("127.0.0.1", port);
    assert_non_null(ac);
    assert_int_equal(ac->err, 0);
    ac->data = s;
    assert_int_equal(chl__uv_attach(ac, loop), REDIS_OK);
    assert_int_equal(chl__uv_attach(ac, loop), REDIS_ERR); /* once only */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

static int connect_settled(void *arg)
{
    const seen_t *s = arg;
    return s->connected || s->connect_failed;
}

static int gone(void *arg)
{
    return ((const seen_t *)arg)->disconnected;
}

static int replied(void *arg)
{
    return ((const seen_t *)arg)->replies > 0;
}

static void a_refused_connection_is_reported(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    seen_t s;
    open_async(&loop, ts_free_port(), &s); /* nothing listens there */
    assert_true(ts_run_until(&loop, connect_settled, &s, WAIT_MS));
    assert_int_equal(s.connect_failed, 1);
    uv_run(&loop, UV_RUN_DEFAULT); /* hiredis freed the context; its handle closes */
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void commands_run_and_a_killed_server_is_noticed(void **state)
{
    (void)state;
    ts_redis_t redis;
    assert_int_equal(ts_redis_start(&redis), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    seen_t s;
    redisAsyncContext *ac = open_async(&loop, redis.port, &s);
    assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "PING"), REDIS_OK);
    assert_true(ts_run_until(&loop, replied, &s, WAIT_MS));
    assert_int_equal(s.connected, 1);
    assert_string_equal(s.last, "PONG");
    assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "BLPOP never 0"), REDIS_OK);
    ts_redis_halt(&redis, 1);
    assert_true(ts_run_until(&loop, gone, &s, WAIT_MS));
    assert_int_equal(s.disconnect_status, REDIS_ERR);
    assert_int_equal(s.null_replies, 1); /* the pending BLPOP */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    ts_redis_stop(&redis);
}

/* What the pipeline test saw: replies in order, and those of the commands
 * sent from inside a callback. */
typedef struct pipeline {
    seen_t *s;
    int next, wrong, again;
} pipeline_t;

static void on_counted(redisAsyncContext *ac, void *reply, void *priv)
{
    pipeline_t *p = priv;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer != ++p->next)
        p->wrong++;
    if (p->next == 50) /* a command sent from a reply's callback goes out too */
        redisAsyncCommand(ac, on_reply, NULL, "ECHO again");
}

static int fifty_and_again(void *arg)
{
    const pipeline_t *p = arg;
    return p->next == 50 && p->s->replies == 2;
}

static int three_replies(void *arg)
{
    return ((const seen_t *)arg)->replies == 3;
}

/* Commands queued together leave together and are answered in order; one
 * larger than the socket takes at once waits for the socket to drain, and
 * the ones after it still come back. */
static void queued_commands_are_written_and_answered_in_order(void **state)
{
    (void)state;
    ts_redis_t redis;
    assert_int_equal(ts_redis_start(&redis), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    seen_t s;
    redisAsyncContext *ac = open_async(&loop, redis.port, &s);
    assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "DEL n"), REDIS_OK);
    assert_true(ts_run_until(&loop, replied, &s, WAIT_MS));
    pipeline_t p = {&s, 0, 0, 0};
    for (int i = 0; i < 50; i++)
        assert_int_equal(redisAsyncCommand(ac, on_counted, &p, "INCR n"), REDIS_OK);
    assert_true(ts_run_until(&loop, fifty_and_again, &p, WAIT_MS));
    assert_int_equal(p.wrong, 0);
    assert_string_equal(s.last, "again");
    /* 16 MiB: far more than a socket buffer holds */
    size_t big = 16u << 20;
    char *value = malloc(big);
    assert_non_null(value);
    memset(value, 'v', big);
    s.replies = 0;
    assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "SET big %b", value, big), REDIS_OK);
    free(value);
    assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "STRLEN big"), REDIS_OK);
    assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "ECHO after"), REDIS_OK);
    assert_true(ts_run_until(&loop, three_replies, &s, 10 * WAIT_MS));
    assert_string_equal(s.last, "after");
    redisAsyncFree(ac);
    uv_run(&loop, UV_RUN_DEFAULT); /* every handle of the adapter closes */
    assert_int_equal(uv_loop_close(&loop), 0);
    ts_redis_stop(&redis);
}

/* A listening socket on a free loopback port. */
static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void a_reset_connection_is_noticed(void **state)
{
    (void)state;
    int port, lfd = listen_loopback(&port);
    uv_loop_t loop;
    uv_loop_init(&loop);
    seen_t s;
    redisAsyncContext *ac = open_async(&loop, port, &s);
    assert_true(ts_run_until(&loop, connect_settled, &s, WAIT_MS));
    assert_int_equal(s.connected, 1);
    assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "PING"), REDIS_OK);
    int peer = accept(lfd, NULL, NULL);
    assert_true(peer >= 0);
    /* the peer goes away with a reset, as a crashed host or a firewall
     * would: the client's socket is in error, not at its end */
    struct linger now = {1, 0};
    assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_LINGER, &now, sizeof(now)), 0);
    close(peer);
    close(lfd);
    assert_true(ts_run_until(&loop, gone, &s, WAIT_MS));
    assert_int_equal(s.disconnect_status, REDIS_ERR);
    assert_int_equal(s.null_replies, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_refused_connection_is_reported),
        cmocka_unit_test(commands_run_and_a_killed_server_is_noticed),
        cmocka_unit_test(queued_commands_are_written_and_answered_in_order),
        cmocka_unit_test(a_reset_connection_is_noticed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
