/* The process endpoint (channel-layer/proc.c) with a blocking client
 * beside it: what its process list holds reaches the handler once, for
 * the connections it names; malformed and expired elements are skipped;
 * the list is bounded in bytes and its count follows the pops; closing in
 * a callback is safe. */
#include "channel-layer/chl.h"
#include "common/error.h"
#include "tests/support/endpoint.h"
#include "tests/support/loop.h"
#include "tests/support/redis_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static ts_redis_t *const redis = &ts_redis_fixture;

static void direct_messages_reach_their_connection(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    char ch[128];
    ts_ep_member(&a, 7, ch);
    assert_int_equal(chl_send(w, ch, "hi", 2), 0);
    assert_true(ts_run_until(&loop, ts_ep_one_message, &a, 5000));
    assert_string_equal(a.events[0], "msg 7 hi");
    assert_int_equal(chl_proc_stats(a.proc)->received, 1);
    char small[4];
    assert_int_equal(chl_proc_channel(a.proc, 7, small, sizeof(small)), MC_ETOOBIG);

    /* the process says it is alive */
    char hb[160];
    snprintf(hb, sizeof(hb), "mc:hb:%s", chl_proc_name(a.proc));
    assert_int_equal(ts_redis_int(redis, "EXISTS %s", hb), 1);
    chl_close(w);
    ts_ep_finish(&loop, &a, NULL);
}

/* chl_proc_conn_of reads back what chl_proc_channel writes, and nothing
 * else: another process's channels (one whose name starts with ours too),
 * and names that are not a connection's, name no connection of ours. */
static void channels_name_connections_of_this_process_only(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    char ch[128];
    uint64_t conn = 0;
    ts_ep_member(&a, 42, ch);
    assert_int_equal(chl_proc_conn_of(a.proc, ch, strlen(ch), &conn), 0);
    assert_int_equal(conn, 42);
    assert_int_equal(chl_proc_conn_of(a.proc, ch, strlen(ch) - 1, &conn), 0);
    assert_int_equal(conn, 4); /* the length given counts, not the NUL */
    ts_ep_member(&a, UINT64_MAX, ch);
    assert_int_equal(chl_proc_conn_of(a.proc, ch, strlen(ch), &conn), 0);
    assert_true(conn == UINT64_MAX);
    /* each after this process's name, or alone */
    const struct {
        int named;
        const char *rest;
    } bad[] = {{0, ""},     {0, "!7"},  {0, "worker"}, {0, "ifc.other.1.ab!42"},
               {1, "x!42"}, {1, ""},    {1, "!"},      {1, "!x"},
               {1, "!7x"},  {1, "!-7"}, {1, "7"},      {1, "!18446744073709551616"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(ch, sizeof(ch), "%s%s", bad[i].named ? chl_proc_name(a.proc) : "", bad[i].rest);
        assert_int_equal(chl_proc_conn_of(a.proc, ch, strlen(ch), &conn), MC_EPROTO);
    }
    ts_ep_finish(&loop, &a, NULL);
}

static void closing_inside_a_callback_is_safe(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    char ch[128];
    ts_ep_member(&a, 1, ch);
    assert_int_equal(chl_send(w, ch, "one", 3), 0);
    assert_int_equal(chl_send(w, ch, "two", 3), 0);
    a.close_on_message = 1;
    ts_pushes_t r = {0};
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, ts_pushed, &r), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(a.msgs, 1); /* nothing after the close */
    assert_int_equal(r.calls, 1);
    assert_true(r.status[0] == 0 || r.status[0] == MC_ECLOSED);
    assert_int_equal(uv_loop_close(&loop), 0);
    chl_close(w);
}

static int two_messages(void *arg)
{
    return ((ts_ep_t *)arg)->msgs >= 2;
}

static void malformed_and_expired_elements_are_skipped(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    char key[160], el[200];
    const char *name = chl_proc_name(a.proc);
    snprintf(key, sizeof(key), "mc:%s!", name);
    static const char *const garbage[] = {"garbage", "m1|x", "m0|other!1\nforeign",
                                          "a0|room\nnot-a-member", "z0|room\nq"};
    size_t n = sizeof(garbage) / sizeof(garbage[0]);
    for (size_t i = 0; i < n; i++)
        assert_true(ts_redis_int(redis, "LPUSH %s %s", key, garbage[i]) > 0);
    snprintf(el, sizeof(el), "m0|%s!abc\nnot a number", name);
    assert_true(ts_redis_int(redis, "LPUSH %s %s", key, el) > 0);
    snprintf(el, sizeof(el), "m1|%s!3\nexpired", name);
    assert_true(ts_redis_int(redis, "LPUSH %s %s", key, el) > 0);
    snprintf(el, sizeof(el), "m0|%s!4\nkept", name);
    assert_true(ts_redis_int(redis, "LPUSH %s %s", key, el) > 0);
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    char ch[128];
    ts_ep_member(&a, 5, ch);
    assert_int_equal(chl_send(w, ch, "after", 5), 0);
    assert_true(ts_run_until(&loop, two_messages, &a, 5000));
    assert_string_equal(a.events[0], "msg 4 kept");
    assert_string_equal(a.events[1], "msg 5 after");
    assert_int_equal(chl_proc_stats(a.proc)->malformed, n + 1);
    assert_int_equal(chl_proc_stats(a.proc)->expired, 1);
    chl_close(w);
    ts_ep_finish(&loop, &a, NULL);
}

static int got_all(void *arg)
{
    struct {
        ts_ep_t *e;
        int want;
    } *w = arg;
    return w->e->msgs >= w->want;
}

/* Sends 8 KiB messages to connection 1 of a until its list refuses them;
 * returns how many it took. */
static int fill(chl_t *w, const ts_ep_t *a)
{
    static char msg[8 * 1024];
    char ch[128];
    memset(msg, 'm', sizeof(msg));
    ts_ep_member(a, 1, ch);
    int n = 0, rc;
    while ((rc = chl_send(w, ch, msg, sizeof(msg))) == 0)
        assert_true(++n < 1000);
    assert_int_equal(rc, MC_EFULL);
    return n;
}

/* A process list is bounded in bytes, not only in messages: a process
 * that falls behind makes its senders fail with MC_EFULL (and its group
 * copies be dropped) long before its list holds 10,000 messages of up to
 * 1 MiB; once it has popped what waited, the same room is there again. */
static void a_process_list_is_bounded_in_bytes(void **state)
{
    (void)state;
    uv_loop_t loop;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.process_bytes = 64 * 1024;
    ts_ep_t a;
    ts_ep_start(&loop, &a, &cfg);
    chl_t *w = NULL;
    assert_int_equal(chl_open(&w, &cfg, "wrk-bytes"), 0);
    char ch[128];
    ts_ep_member(&a, 2, ch);
    assert_int_equal(chl_group_add(w, "room", ch), 0);
    /* The endpoint pops only while its loop runs: the list fills. */
    int first = fill(w, &a);
    assert_true(first >= 5 && first <= 8);
    static char big[8 * 1024];
    memset(big, 'g', sizeof(big));
    size_t dropped = 0;
    assert_int_equal(chl_group_send(w, "room", big, sizeof(big), &dropped), 0);
    assert_int_equal(dropped, 1);
    assert_true(chl_stats(w)->full >= 2);
    char key[256];
    snprintf(key, sizeof(key), "mc:%s!", chl_proc_name(a.proc));
    assert_true(ts_redis_int(redis, "LLEN %s", key) <= first);
    /* The endpoint takes them all, and what it took frees the room. */
    struct {
        ts_ep_t *e;
        int want;
    } all = {&a, first};
    assert_true(ts_run_until(&loop, got_all, &all, 5000));
    /* One more may fit: the pop the endpoint has waiting takes the first
     * message at once, before its count is taken away (chl.h). */
    int again = fill(w, &a);
    assert_true(again >= first && again <= first + 1);
    chl_close(w);
    ts_ep_finish(&loop, &a, NULL);
}

/* The bytes a process list holds, by a script of the test's own. */
static long long list_bytes(const char *key)
{
    return ts_redis_int(redis, "EVAL %s 1 %s",
                        "local n=0 for _,v in ipairs(redis.call('LRANGE',KEYS[1],0,-1)) do "
                        "n=n+#v end return n",
                        key);
}

/* The number a key holds, -1 when there is none. */
static long long number_at(const char *key)
{
    return ts_redis_int(redis, "EVAL %s 1 %s",
                        "return tonumber(redis.call('GET', KEYS[1]) or '-1')", key);
}

/* The byte count of a process list is exact while the list fills; a pop
 * that leaves something takes its bytes off the count (one DECRBY). A
 * list too short to reach the bound (31 frames of 1 MiB for 32 MiB) is
 * not counted: the push that makes it longer counts it again. */
static void a_process_lists_byte_count_follows_its_pops(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    char ch[128], list[256], count[256];
    ts_ep_member(&a, 1, ch);
    snprintf(list, sizeof(list), "mc:%s!", chl_proc_name(a.proc));
    snprintf(count, sizeof(count), "mc:bytes:%s", chl_proc_name(a.proc));
    /* The endpoint pops only while its loop runs: 300 wait, but the pop
     * it has waiting may take the first at once. */
    enum { N = 300 };
    for (int i = 0; i < N; i++)
        assert_int_equal(chl_send(w, ch, "0123456789", 10), 0);
    long long held = list_bytes(list), n = ts_redis_int(redis, "LLEN %s", list);
    assert_true(n == N || n == N - 1);
    assert_int_equal(number_at(count), held);
    long long each = held / n;
    assert_int_equal(held, each * n);
    ts_redis_int(redis, "CONFIG RESETSTAT");
    struct {
        ts_ep_t *e;
        int want;
    } all = {&a, N};
    assert_true(ts_run_until(&loop, got_all, &all, 5000));
    /* Pops of 128 leave something and count down; the last one empties the
     * list and sends nothing: what its count still says is stale. */
    long decrs = ts_redis_calls(redis, "decrby");
    assert_true(decrs >= 1 && decrs <= 2);
    assert_int_equal(ts_redis_int(redis, "LLEN %s", list), 0);
    assert_true(number_at(count) <= (n - 128 * decrs) * each);
    /* Pushes onto the short list touch no count; the push that makes it
     * long counts what it holds. */
    long long stale = number_at(count);
    ts_redis_int(redis, "CONFIG RESETSTAT");
    while (ts_redis_int(redis, "LLEN %s", list) < 31)
        assert_int_equal(chl_send(w, ch, "0123456789", 10), 0);
    assert_int_equal(number_at(count), stale);
    assert_int_equal(ts_redis_calls(redis, "set") + ts_redis_calls(redis, "incrby"), 0);
    assert_int_equal(chl_send(w, ch, "0123456789", 10), 0);
    assert_int_equal(number_at(count), list_bytes(list));
    assert_int_equal(number_at(count), 32 * each);
    assert_int_equal(chl_send(w, ch, "0123456789", 10), 0);
    assert_int_equal(number_at(count), 33 * each);
    chl_close(w);
    ts_ep_finish(&loop, &a, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(direct_messages_reach_their_connection, ts_redis_fixture_flush),
        cmocka_unit_test_setup(channels_name_connections_of_this_process_only,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(closing_inside_a_callback_is_safe, ts_redis_fixture_flush),
        cmocka_unit_test_setup(malformed_and_expired_elements_are_skipped, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_process_list_is_bounded_in_bytes, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_process_lists_byte_count_follows_its_pops, ts_redis_fixture_flush),
    };
    return cmocka_run_group_tests(tests, ts_redis_fixture_start, ts_redis_fixture_stop);
}
