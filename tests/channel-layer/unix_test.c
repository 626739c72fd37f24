/* The channel layer over a redis-server's Unix socket (unix:// URLs): the
 * blocking client and a process endpoint push, pop and send to groups
 * through it, are seen by the server as clients of the socket, and find
 * the server again by themselves when it restarts on the same path. */
#include "channel-layer/chl.h"
#include "common/clock.h"
#include "common/error.h"
#include "tests/support/endpoint.h"
#include "tests/support/loop.h"
#include "tests/support/redis.h"

#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

static ts_redis_t redis;

static int start_server(void **state)
{
    (void)state;
    if (ts_redis_start_unix(&redis) != 0)
        return -1;
    return strncmp(redis.url, "unix:///", 8) == 0 ? 0 : -1;
}

static int stop_server(void **state)
{
    (void)state;
    ts_redis_stop(&redis);
    return 0;
}

static int flush(void **state)
{
    (void)state;
    ts_redis_int(&redis, "FLUSHALL");
    return ts_redis_int(&redis, "DBSIZE") == 0 ? 0 : -1;
}

static chl_config_t config(void)
{
    chl_config_t cfg;
    chl_config_defaults(&cfg);
    cfg.redis_urls = redis.url;
    return cfg;
}

static chl_t *worker(void)
{
    chl_config_t cfg = config();
    chl_t *w = NULL;
    assert_int_equal(chl_open(&w, &cfg, "wrk-unix"), 0);
    return w;
}

/* How many of the server's clients came in through its Unix socket (CLIENT
 * LIST names the socket as their address), asked over TCP. */
static int socket_clients(void)
{
    redisContext *c = redisConnect("127.0.0.1", redis.port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "CLIENT LIST");
    assert_true(r && r->type == REDIS_REPLY_STRING);
    char addr[96];
    snprintf(addr, sizeof(addr), " addr=%s/redis.sock:", redis.dir);
    int n = 0;
    for (const char *p = r->str; (p = strstr(p, addr)) != NULL; p++)
        n++;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

static void pause_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL); /* between retries of a call that fails fast */
}

static void the_blocking_client_works_over_the_socket(void **state)
{
    (void)state;
    chl_t *w = worker();
    assert_int_equal(chl_send(w, "c", "hello", 5), 0);
    assert_int_equal(socket_clients(), 1);
    const char *const chans[] = {"c"};
    chl_message_t m;
    assert_int_equal(chl_receive(w, chans, 1, 1000, &m), 0);
    assert_string_equal(m.data, "hello");
    chl_message_free(&m);

    /* a reliable queue: push, pop, acknowledge */
    assert_int_equal(chl_queue_push(w, "jobs", "job-1", 5), 0);
    assert_int_equal(chl_queue_pop(w, "jobs", 1000, &m), 0);
    assert_string_equal(m.data, "job-1");
    assert_int_equal(chl_ack(w, &m), 0);
    chl_message_free(&m);
    assert_int_equal(ts_redis_int(&redis, "LLEN mc:inflight:wrk-unix"), 0);

    /* a group send reaches the processes of its members */
    assert_int_equal(chl_group_add(w, "room", "p1!1"), 0);
    assert_int_equal(chl_group_add(w, "room", "p2!1"), 0);
    size_t dropped = 9;
    assert_int_equal(chl_group_send(w, "room", "to all", 6, &dropped), 0);
    assert_int_equal(dropped, 0);
    const char *const procs[][1] = {{"p1!"}, {"p2!"}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(chl_receive(w, procs[i], 1, 1000, &m), 0);
        assert_string_equal(m.channel, "room");
        assert_string_equal(m.data, "to all");
        chl_message_free(&m);
    }
    chl_close(w);
}

static void the_blocking_client_finds_a_restarted_server_on_the_same_path(void **state)
{
    (void)state;
    chl_t *w = worker();
    assert_int_equal(chl_send(w, "c", "a", 1), 0);
    ts_redis_halt(&redis, 1);
    long long t0 = mc_mono_ms();
    assert_int_equal(chl_send(w, "c", "x", 1), MC_EREDIS); /* fails fast while it is gone */
    assert_true(mc_mono_ms() - t0 < 3000);
    assert_int_equal(ts_redis_restart(&redis), 0);
    int rc;
    t0 = mc_mono_ms();
    while ((rc = chl_send(w, "c", "b", 1)) != 0 && mc_mono_ms() - t0 < 5000) {
        assert_int_equal(rc, MC_EREDIS);
        pause_ms(20);
    }
    assert_int_equal(rc, 0);
    assert_true(chl_stats(w)->reconnects >= 1);
    assert_int_equal(socket_clients(), 1);
    const char *const chans[] = {"c"};
    chl_message_t m;
    assert_int_equal(chl_receive(w, chans, 1, 1000, &m), 0);
    assert_string_equal(m.data, "b");
    chl_message_free(&m);
    chl_close(w);
}

static int two_messages(void *arg)
{
    return ((ts_ep_t *)arg)->msgs >= 2;
}

/* An endpoint on a fresh loop, once Redis is up for it, and a worker. */
static chl_t *start(uv_loop_t *loop, ts_ep_t *e)
{
    chl_config_t cfg = config();
    ts_ep_start(loop, e, &cfg);
    return worker();
}

static void an_endpoint_works_over_the_socket(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t e;
    chl_t *w = start(&loop, &e);
    assert_true(socket_clients() >= 3); /* its command and pop links, the worker */

    /* a direct message, then a group's */
    char ch[128];
    ts_ep_member(&e, 7, ch);
    assert_int_equal(chl_send(w, ch, "direct", 6), 0);
    assert_int_equal(chl_group_add(w, "room", ch), 0);
    assert_int_equal(chl_group_send(w, "room", "grouped", 7, NULL), 0);
    assert_true(ts_run_until(&loop, two_messages, &e, 5000));
    assert_int_equal(e.nevents, 3);
    assert_string_equal(e.events[0], "msg 7 direct");
    assert_string_equal(e.events[1], "add 7 room");
    assert_string_equal(e.events[2], "msg 7 grouped");

    /* the endpoint's push reaches the worker's pop */
    ts_pushes_t r = {0};
    assert_int_equal(chl_proc_queue_push(e.proc, "jobs", "job", 3, ts_pushed, &r), 0);
    assert_true(ts_run_until(&loop, ts_one_pushed, &r, 5000));
    assert_int_equal(r.status[0], 0);
    chl_message_t m;
    assert_int_equal(chl_queue_pop(w, "jobs", 1000, &m), 0);
    assert_string_equal(m.data, "job");
    assert_int_equal(chl_ack(w, &m), 0);
    chl_message_free(&m);
    chl_close(w);
    ts_ep_finish(&loop, &e, NULL);
}

static void an_endpoint_finds_a_restarted_server_on_the_same_path(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t e;
    chl_t *w = start(&loop, &e);
    char ch[128];
    ts_ep_member(&e, 3, ch);
    assert_int_equal(chl_send(w, ch, "before", 6), 0);
    assert_true(ts_run_until(&loop, ts_ep_one_message, &e, 5000));
    ts_redis_halt(&redis, 1);
    assert_true(ts_run_until(&loop, ts_ep_down_seen, &e, 5000));
    assert_int_equal(ts_redis_restart(&redis), 0);
    assert_true(ts_run_until(&loop, ts_ep_up_again, &e, 10000));
    assert_true(chl_proc_stats(e.proc)->reconnects >= 1);
    int rc;
    long long t0 = mc_mono_ms();
    while ((rc = chl_send(w, ch, "after", 5)) != 0 && mc_mono_ms() - t0 < 5000)
        pause_ms(20);
    assert_int_equal(rc, 0);
    assert_true(ts_run_until(&loop, two_messages, &e, 5000));
    assert_string_equal(e.events[e.nevents - 1], "msg 3 after");
    chl_close(w);
    ts_ep_finish(&loop, &e, NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the programs do (chl.h) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(the_blocking_client_works_over_the_socket, flush),
        cmocka_unit_test_setup(the_blocking_client_finds_a_restarted_server_on_the_same_path,
                               flush),
        cmocka_unit_test_setup(an_endpoint_works_over_the_socket, flush),
        cmocka_unit_test_setup(an_endpoint_finds_a_restarted_server_on_the_same_path, flush),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
