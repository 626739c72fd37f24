/* The blocking client (channel-layer/sync.c) against a private
 * redis-server: sends and receives, pushes and their capacity, limits,
 * expiry, malformed data, rate limits, and scripts and registration
 * found again after a flush or a restart. Its queues are tested in
 * sync_queue_test.c, its groups in sync_group_test.c. */
#include "channel-layer/chl.h"
#include "common/clock.h"
#include "common/error.h"
#include "tests/support/loop.h"
#include "tests/support/redis_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static ts_redis_t *const redis = &ts_redis_fixture;

static void send_then_receive_returns_the_payload(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
    assert_non_null(chl_name(chl));
    assert_int_equal(chl_send(chl, "worker", "hello", 5), 0);
    const char *const chans[] = {"worker"};
    chl_message_t m;
    assert_int_equal(chl_receive(chl, chans, 1, 1000, &m), 0);
    assert_string_equal(m.channel, "worker");
    assert_int_equal(m.len, 5);
    assert_memory_equal(m.data, "hello", 5);
    assert_int_equal(m.data[5], '\0');
    chl_message_free(&m);
    assert_int_equal(chl_stats(chl)->sent, 1);
    assert_int_equal(chl_stats(chl)->received, 1);
    chl_close(chl);
}

static void messages_arrive_in_order_and_binary_safe(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
    const char bin[] = {'a', '\0', '\n', '|', 'b'};
    assert_int_equal(chl_send(chl, "c", bin, sizeof(bin)), 0);
    assert_int_equal(chl_send(chl, "c", "", 0), 0);
    const char *const chans[] = {"c"};
    chl_message_t m;
    assert_int_equal(chl_receive(chl, chans, 1, 1000, &m), 0);
    assert_int_equal(m.len, sizeof(bin));
    assert_memory_equal(m.data, bin, sizeof(bin));
    chl_message_free(&m);
    assert_int_equal(chl_receive(chl, chans, 1, 1000, &m), 0);
    assert_int_equal(m.len, 0);
    chl_message_free(&m);
    chl_close(chl);
}

static void receive_times_out_with_eagain(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
    const char *const chans[] = {"empty"};
    chl_message_t m;
    long long t0 = mc_mono_ms();
    assert_int_equal(chl_receive(chl, chans, 1, 100, &m), MC_EAGAIN);
    long long took = mc_mono_ms() - t0;
    assert_true(took >= 90 && took < 2000);
    chl_close(chl);
}

static void receive_waits_on_several_channels(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
    assert_int_equal(chl_send(chl, "b", "x", 1), 0);
    assert_int_equal(chl_send(chl, "proc1!42", "y", 1), 0);
    const char *const chans[] = {"a", "b", "proc1!"};
    chl_message_t m;
    assert_int_equal(chl_receive(chl, chans, 3, 1000, &m), 0);
    int saw_b = strcmp(m.channel, "b") == 0;
    chl_message_free(&m);
    assert_int_equal(chl_receive(chl, chans, 3, 1000, &m), 0);
    if (saw_b)
        assert_string_equal(m.channel, "proc1!42");
    else
        assert_string_equal(m.channel, "b");
    chl_message_free(&m);
    chl_close(chl);
}

static void bad_arguments_are_refused(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
    static const char *const bad[] = {"", "a b", "a!b!c", "!x", "caf\xc3\xa9", "a:b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(chl_send(chl, bad[i], "x", 1), MC_EINVAL);
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(chl_send(chl, longname, "x", 1), MC_EINVAL);
    size_t big = 1024 * 1024 + 1;
    char *huge = calloc(1, big);
    assert_non_null(huge);
    assert_int_equal(chl_send(chl, "c", huge, big), MC_ETOOBIG);
    assert_int_equal(chl_queue_push(chl, "q", huge, big), MC_ETOOBIG);
    assert_int_equal(chl_group_send(chl, "g", huge, big, NULL), MC_ETOOBIG);
    free(huge);
    assert_int_equal(chl_queue_push(chl, "p!1", "x", 1), MC_EINVAL);
    assert_int_equal(chl_group_add(chl, "room", "notaprocess"), MC_EINVAL);
    assert_int_equal(chl_group_add(chl, "room", "proc!"), MC_EINVAL);
    assert_int_equal(chl_group_add(chl, "bad group", "proc!1"), MC_EINVAL);
    assert_int_equal(chl_group_discard(chl, "", "proc!1"), MC_EINVAL);
    assert_int_equal(chl_group_send(chl, "", "x", 1, NULL), MC_EINVAL);
    assert_int_equal(chl_forget_process(chl, "a!b"), MC_EINVAL);
    chl_message_t m;
    const char *const chans[] = {"ok", "bad name"};
    assert_int_equal(chl_receive(chl, chans, 2, 10, &m), MC_EINVAL);
    assert_int_equal(chl_receive(chl, chans, 0, 10, &m), MC_EINVAL);
    assert_int_equal(chl_ack(chl, NULL), MC_EINVAL);
    assert_int_equal(ts_redis_int(redis, "DBSIZE"), 0);
    chl_close(chl);

    chl_t *none = NULL;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.redis_urls = "http://127.0.0.1:1";
    assert_int_equal(chl_open(&none, &cfg, NULL), MC_EINVAL);
    cfg.redis_urls = "redis://127.0.0.1:99999";
    assert_int_equal(chl_open(&none, &cfg, NULL), MC_EINVAL);
    cfg.redis_urls = "redis://127.0.0.1:1";
    assert_int_equal(chl_open(&none, &cfg, NULL), MC_EREDIS);
    cfg = ts_redis_fixture_config();
    assert_int_equal(chl_open(&none, &cfg, "bad name"), MC_EINVAL);
    assert_null(none);
    chl_close(NULL);
}

static void send_past_capacity_is_full_and_queues_nothing(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.capacity = 3;
    cfg.process_capacity = 2;
    chl_t *chl = ts_redis_fixture_client(&cfg, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_send(chl, "c", "x", 1), 0);
    assert_int_equal(chl_send(chl, "c", "y", 1), MC_EFULL);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:c"), 3);
    /* every connection of a process shares its one list and its capacity */
    assert_int_equal(chl_send(chl, "p!1", "x", 1), 0);
    assert_int_equal(chl_send(chl, "p!2", "x", 1), 0);
    assert_int_equal(chl_send(chl, "p!3", "x", 1), MC_EFULL);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p!"), 2);
    assert_int_equal(chl_stats(chl)->full, 2);
    assert_int_equal(chl_stats(chl)->sent, 5);
    chl_message_t m;
    const char *const chans[] = {"p!"};
    assert_int_equal(chl_receive(chl, chans, 1, 1000, &m), 0);
    assert_string_equal(m.channel, "p!1");
    chl_message_free(&m);
    chl_close(chl);
}

static void expired_messages_are_skipped_and_counted(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.expiry_ms = 30;
    chl_t *chl = ts_redis_fixture_client(&cfg, NULL);
    assert_int_equal(chl_send(chl, "c", "old", 3), 0);
    /* the list itself expires with its newest message, so look at it first */
    assert_true(ts_redis_int(redis, "PTTL mc:c") > 0);
    long long t0 = mc_mono_ms();
    while (mc_mono_ms() - t0 <= 40) /* the condition is the clock itself */
        ts_pause_ms(5);
    /* an element that expired long ago, written as another client would */
    assert_int_equal(ts_redis_int(redis, "RPUSH mc:d %s", "m1|d\nancient"), 1);
    chl_close(chl);

    chl = ts_redis_fixture_client(NULL, NULL);
    assert_int_equal(chl_send(chl, "d", "fresh", 5), 0);
    const char *const chans[] = {"c", "d"};
    chl_message_t m;
    assert_int_equal(chl_receive(chl, chans, 2, 1000, &m), 0);
    assert_string_equal(m.data, "fresh");
    chl_message_free(&m);
    assert_int_equal(chl_receive(chl, chans, 2, 50, &m), MC_EAGAIN);
    assert_true(chl_stats(chl)->expired >= 1);
    assert_int_equal(chl_stats(chl)->received, 1);
    chl_close(chl);
}

static void malformed_elements_are_skipped_and_counted(void **state)
{
    (void)state;
    static const char *const garbage[] = {"garbage", "m|c\nx",  "x123|c\nz",
                                          "m12c\nz", "m12|\nz", "m99999999999999999999999|c\nz"};
    size_t n = sizeof(garbage) / sizeof(garbage[0]);
    for (size_t i = 0; i < n; i++)
        assert_true(ts_redis_int(redis, "RPUSH mc:c %s", garbage[i]) > 0);
    assert_true(ts_redis_int(redis, "RPUSH mc:c %b", "", (size_t)0) > 0);
    assert_true(ts_redis_int(redis, "RPUSH mc:q %b", "", (size_t)0) > 0);
    assert_true(ts_redis_int(redis, "RPUSH mc:q %s", "not a frame") > 0);
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
    assert_int_equal(chl_send(chl, "c", "good", 4), 0);
    const char *const chans[] = {"c"};
    chl_message_t m;
    assert_int_equal(chl_receive(chl, chans, 1, 1000, &m), 0);
    assert_string_equal(m.data, "good");
    chl_message_free(&m);
    assert_int_equal(chl_stats(chl)->malformed, n + 1);
    /* a queue skips it too, and leaves nothing in flight */
    assert_int_equal(chl_queue_pop(chl, "q", 50, &m), MC_EAGAIN);
    assert_int_equal(chl_stats(chl)->malformed, n + 3);
    char key[128];
    snprintf(key, sizeof(key), "mc:inflight:%s", chl_name(chl));
    assert_int_equal(ts_redis_int(redis, "LLEN %s", key), 0);
    chl_close(chl);
}

/* A push is one LPUSH: its answer is the capacity check. A reliable queue
 * and the process lists that group sends fill do not expire (the reaper
 * removes a dead process's list); an ordinary channel, and a process list
 * sent to directly, expire after their newest message. */
static void pushes_check_capacity_with_the_push_itself(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.queue_capacity = 3;
    cfg.process_bytes = 4096; /* counted from the first message (scripts.c) */
    chl_t *chl = ts_redis_fixture_client(&cfg, NULL);
    ts_redis_int(redis, "CONFIG RESETSTAT");
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_queue_push(chl, "jobs", "j", 1), 0);
    assert_int_equal(chl_queue_push(chl, "jobs", "over", 4), MC_EFULL);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:jobs"), 3);
    assert_int_equal(ts_redis_calls(redis, "lpush"), 4);
    assert_int_equal(ts_redis_calls(redis, "lpop"), 1);
    assert_int_equal(ts_redis_calls(redis, "llen"), 1); /* the test's own */
    assert_int_equal(ts_redis_calls(redis, "pexpire"), 0);
    assert_int_equal(ts_redis_int(redis, "PTTL mc:jobs"), -1);
    assert_int_equal(chl_group_add(chl, "room", "p1!1"), 0);
    ts_redis_int(redis, "PERSIST mc:p1!"); /* as if the group sends had made it */
    assert_int_equal(chl_group_send(chl, "room", "g", 1, NULL), 0);
    assert_int_equal(ts_redis_int(redis, "PTTL mc:p1!"), -1);
    assert_int_equal(chl_send(chl, "p1!1", "direct", 6), 0);
    assert_true(ts_redis_int(redis, "PTTL mc:p1!") > 60000);
    /* The list's byte count does not expire either: it goes with the list
     * (sync_group_test.c: processes_without_heartbeat_are_reaped_once). */
    assert_int_equal(ts_redis_int(redis, "EXISTS mc:bytes:p1"), 1);
    assert_int_equal(ts_redis_int(redis, "PTTL mc:bytes:p1"), -1);
    chl_close(chl);
}

static void queue_capacity_is_its_own(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.capacity = 1;
    cfg.queue_capacity = 2;
    chl_t *chl = ts_redis_fixture_client(&cfg, NULL);
    assert_int_equal(chl_queue_push(chl, "jobs", "1", 1), 0);
    assert_int_equal(chl_queue_push(chl, "jobs", "2", 1), 0);
    assert_int_equal(chl_queue_push(chl, "jobs", "3", 1), MC_EFULL);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:jobs"), 2);
    chl_close(chl);
}

static void rate_take_is_a_token_bucket(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
    int ok;
    long refused;
    /* A slow refill (one token in 1000 s): the burst, then refusals counted. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(chl_rate_take(chl, "user-1", 0.001, 3, &ok, &refused), 0);
        assert_int_equal(ok, 1);
        assert_int_equal(refused, 0);
    }
    for (long i = 1; i <= 4; i++) {
        assert_int_equal(chl_rate_take(chl, "user-1", 0.001, 3, &ok, &refused), 0);
        assert_int_equal(ok, 0);
        assert_int_equal(refused, i);
    }
    /* Another key has its own bucket, on any process ("::1" is a fine key). */
    chl_t *other = ts_redis_fixture_client(NULL, NULL);
    assert_int_equal(chl_rate_take(other, "conn:::1", 0.001, 1, &ok, NULL), 0);
    assert_int_equal(ok, 1);
    assert_int_equal(chl_rate_take(chl, "conn:::1", 0.001, 1, &ok, NULL), 0);
    assert_int_equal(ok, 0);
    chl_close(other);
    assert_true(ts_redis_int(redis, "PTTL mc:rate:user-1") > 0); /* it expires */
    /* A fast refill: refused once empty, allowed again soon after. */
    int i = 0;
    do
        assert_int_equal(chl_rate_take(chl, "fast", 20, 2, &ok, NULL), 0);
    while (ok && ++i < 100);
    assert_int_equal(ok, 0);
    long long deadline = mc_mono_ms() + 3000;
    while (!ok && mc_mono_ms() < deadline)
        assert_int_equal(chl_rate_take(chl, "fast", 20, 2, &ok, &refused), 0);
    assert_int_equal(ok, 1);
    assert_int_equal(refused, 0);
    assert_int_equal(chl_rate_take(chl, "", 1, 1, &ok, NULL), MC_EINVAL);
    assert_int_equal(chl_rate_take(chl, "k", 0, 1, &ok, NULL), MC_EINVAL);
    assert_int_equal(chl_rate_take(chl, "k", 1, 0, &ok, NULL), MC_EINVAL);
    chl_close(chl);
}

static void scripts_come_back_after_a_flush(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
    assert_int_equal(chl_send(chl, "c", "a", 1), 0);
    ts_redis_int(redis, "SCRIPT FLUSH");
    assert_int_equal(chl_send(chl, "c", "b", 1), 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:c"), 2);
    chl_close(chl);
}

static void a_restarted_redis_is_found_again(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
    assert_int_equal(chl_send(chl, "c", "a", 1), 0);
    assert_int_equal(ts_redis_restart(redis), 0);
    int rc = chl_send(chl, "c", "b", 1);
    long long t0 = mc_mono_ms();
    while (rc != 0 && mc_mono_ms() - t0 < 5000) {
        assert_int_equal(rc, MC_EREDIS);
        ts_pause_ms(20);
        rc = chl_send(chl, "c", "b", 1);
    }
    assert_int_equal(rc, 0);
    assert_true(chl_stats(chl)->reconnects >= 1);
    const char *const chans[] = {"c"};
    chl_message_t m;
    assert_int_equal(chl_receive(chl, chans, 1, 1000, &m), 0);
    assert_string_equal(m.data, "b");
    chl_message_free(&m);

    /* while it is down, calls fail fast instead of hanging */
    ts_redis_halt(redis, 1);
    t0 = mc_mono_ms();
    assert_int_equal(chl_send(chl, "c", "x", 1), MC_EREDIS);
    assert_int_equal(chl_receive(chl, chans, 1, 100, &m), MC_EREDIS);
    assert_int_equal(chl_queue_pop(chl, "q", 100, &m), MC_EREDIS);
    assert_true(mc_mono_ms() - t0 < 3000);
    assert_true(chl_stats(chl)->redis_errors >= 1);
    assert_int_equal(ts_redis_restart(redis), 0);
    t0 = mc_mono_ms();
    while ((rc = chl_send(chl, "c", "y", 1)) != 0 && mc_mono_ms() - t0 < 5000)
        ts_pause_ms(20);
    assert_int_equal(rc, 0);
    chl_close(chl);
}

static void a_worker_registers_again_on_a_restarted_redis_at_once(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    chl_t *worker = ts_redis_fixture_client(&cfg, "wrk-again"),
          *other = ts_redis_fixture_client(NULL, NULL);
    chl_message_t m;
    assert_int_equal(chl_queue_pop(worker, "q", 10, &m), MC_EAGAIN);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:workers wrk-again"), 1);
    assert_int_equal(ts_redis_restart(redis), 0); /* an empty server */

    /* any call reconnects, and the worker is known again before its next pop */
    int rc;
    long long t0 = mc_mono_ms();
    while ((rc = chl_send(worker, "c", "x", 1)) != 0 && mc_mono_ms() - t0 < 5000)
        ts_pause_ms(20);
    assert_int_equal(rc, 0);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:workers wrk-again"), 1);
    assert_true(ts_redis_int(redis, "PTTL mc:hb:wrk-again") > 0);
    /* a client that never popped a queue is no worker */
    while ((rc = chl_send(other, "c", "y", 1)) != 0 && mc_mono_ms() - t0 < 5000)
        ts_pause_ms(20);
    assert_int_equal(rc, 0);
    assert_int_equal(ts_redis_int(redis, "SCARD mc:workers"), 1);
    chl_close(worker);
    chl_close(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(send_then_receive_returns_the_payload, ts_redis_fixture_flush),
        cmocka_unit_test_setup(messages_arrive_in_order_and_binary_safe, ts_redis_fixture_flush),
        cmocka_unit_test_setup(receive_times_out_with_eagain, ts_redis_fixture_flush),
        cmocka_unit_test_setup(receive_waits_on_several_channels, ts_redis_fixture_flush),
        cmocka_unit_test_setup(bad_arguments_are_refused, ts_redis_fixture_flush),
        cmocka_unit_test_setup(send_past_capacity_is_full_and_queues_nothing,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(expired_messages_are_skipped_and_counted, ts_redis_fixture_flush),
        cmocka_unit_test_setup(malformed_elements_are_skipped_and_counted, ts_redis_fixture_flush),
        cmocka_unit_test_setup(pushes_check_capacity_with_the_push_itself, ts_redis_fixture_flush),
        cmocka_unit_test_setup(queue_capacity_is_its_own, ts_redis_fixture_flush),
        cmocka_unit_test_setup(rate_take_is_a_token_bucket, ts_redis_fixture_flush),
        cmocka_unit_test_setup(scripts_come_back_after_a_flush, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_restarted_redis_is_found_again, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_worker_registers_again_on_a_restarted_redis_at_once,
                               ts_redis_fixture_flush),
    };
    return cmocka_run_group_tests(tests, ts_redis_fixture_start, ts_redis_fixture_stop);
}
