/* The blocking client against a private redis-server: sends and receives,
 * limits, expiry, reliable queues, groups, malformed data and reconnects. */
#include "channel-layer/chl.h"
#include "common/clock.h"
#include "common/error.h"
#include "tests/support/redis_fixture.h"

#include <hiredis/hiredis.h>
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

static ts_redis_t *const redis = &ts_redis_fixture;

static chl_t *open_with(const chl_config_t *cfg, const char *name)
{
    chl_t *chl = NULL;
    assert_int_equal(chl_open(&chl, cfg, name), 0);
    assert_non_null(chl);
    return chl;
}

static chl_t *open_default(void)
{
    chl_config_t cfg = ts_redis_fixture_config();
    return open_with(&cfg, NULL);
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The number of calls of one command since the last CONFIG RESETSTAT. */
static long command_calls(const char *command)
{
    return ts_redis_calls(redis, command);
}

static void send_then_receive_returns_the_payload(void **state)
{
    (void)state;
    chl_t *chl = open_default();
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
    chl_t *chl = open_default();
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
    chl_t *chl = open_default();
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
    chl_t *chl = open_default();
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
    chl_t *chl = open_default();
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
    chl_t *chl = open_with(&cfg, NULL);
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
    chl_t *chl = open_with(&cfg, NULL);
    assert_int_equal(chl_send(chl, "c", "old", 3), 0);
    /* the list itself expires with its newest message, so look at it first */
    assert_true(ts_redis_int(redis, "PTTL mc:c") > 0);
    long long t0 = mc_mono_ms();
    while (mc_mono_ms() - t0 <= 40) /* the condition is the clock itself */
        pause_ms(5);
    /* an element that expired long ago, written as another client would */
    assert_int_equal(ts_redis_int(redis, "RPUSH mc:d %s", "m1|d\nancient"), 1);
    chl_close(chl);

    chl = open_default();
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
    chl_t *chl = open_default();
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

static void queue_pop_moves_to_in_flight_until_acked(void **state)
{
    (void)state;
    chl_t *chl = open_with(&(chl_config_t){.redis_urls = redis->url}, "wrk-a");
    assert_int_equal(chl_queue_push(chl, "jobs", "one", 3), 0);
    assert_int_equal(chl_queue_push(chl, "jobs", "two", 3), 0);
    chl_message_t m;
    assert_int_equal(chl_queue_pop(chl, "jobs", 1000, &m), 0);
    assert_string_equal(m.data, "one");
    assert_string_equal(m.channel, "jobs");
    assert_int_equal(ts_redis_int(redis, "LLEN mc:inflight:wrk-a"), 1);
    size_t waiting = 9;
    assert_int_equal(chl_queue_length(chl, "jobs", &waiting), 0);
    assert_int_equal(waiting, 1); /* the one in flight is not waiting */
    assert_int_equal(ts_redis_int(redis, "EXISTS mc:hb:wrk-a"), 1);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:workers wrk-a"), 1);
    assert_int_equal(chl_ack(chl, &m), 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:inflight:wrk-a"), 0);
    assert_int_equal(chl_ack(chl, &m), MC_ENOTFOUND);
    chl_message_free(&m);
    assert_int_equal(chl_queue_pop(chl, "jobs", 1000, &m), 0);
    assert_string_equal(m.data, "two");
    assert_int_equal(chl_ack(chl, &m), 0);
    chl_message_free(&m);
    assert_int_equal(chl_queue_pop(chl, "jobs", 20, &m), MC_EAGAIN);
    assert_int_equal(chl_queue_length(chl, "jobs", &waiting), 0);
    assert_int_equal(waiting, 0);
    assert_int_equal(chl_queue_length(chl, "no spaces", &waiting), MC_EINVAL);
    chl_close(chl);
}

static void queue_next_acknowledges_a_batch_and_fetches_the_next(void **state)
{
    (void)state;
    chl_t *chl = open_with(&(chl_config_t){.redis_urls = redis->url}, "wrk-b");
    for (int i = 0; i < 5; i++) {
        char m[16];
        snprintf(m, sizeof(m), "m%d", i);
        assert_int_equal(chl_queue_push(chl, "jobs", m, strlen(m)), 0);
    }
    assert_int_equal(ts_redis_int(redis, "LPUSH mc:jobs junk"), 6); /* not a frame, last in line */
    chl_message_t a[CHL_QUEUE_BATCH], b[CHL_QUEUE_BATCH];
    size_t na = 0, nb = 0;
    /* Up to max at once, oldest first, all in flight. */
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, NULL, 0, a, 3, &na), 0);
    assert_int_equal(na, 3);
    assert_string_equal(a[0].data, "m0");
    assert_string_equal(a[2].data, "m2");
    assert_int_equal(ts_redis_int(redis, "LLEN mc:inflight:wrk-b"), 3);
    /* The next call acknowledges those and takes the rest; junk is dropped. */
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, a, na, b, 10, &nb), 0);
    assert_int_equal(nb, 2);
    assert_string_equal(b[0].data, "m3");
    assert_string_equal(b[1].data, "m4");
    assert_int_equal(ts_redis_int(redis, "LLEN mc:inflight:wrk-b"), 2);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:jobs"), 0);
    for (size_t i = 0; i < na; i++)
        chl_message_free(&a[i]);
    /* Nothing left: the acknowledgements are made all the same. */
    assert_int_equal(chl_queue_next(chl, "jobs", 20, b, nb, a, 10, &na), MC_EAGAIN);
    assert_int_equal(na, 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:inflight:wrk-b"), 0);
    for (size_t i = 0; i < nb; i++)
        chl_message_free(&b[i]);
    /* Scripts flushed: the first two still come (BLMOVE and LMOVE), then
     * the batch script, loaded again, brings the rest. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_queue_push(chl, "jobs", "again", 5), 0);
    ts_redis_int(redis, "SCRIPT FLUSH"); /* answers OK, not a number */
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, NULL, 0, a, 10, &na), 0);
    assert_int_equal(na, 2);
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, a, na, b, 10, &nb), 0);
    assert_int_equal(nb, 1);
    for (size_t i = 0; i < na; i++)
        chl_message_free(&a[i]);
    for (size_t i = 0; i < nb; i++)
        chl_message_free(&b[i]);
    assert_int_equal(chl_queue_next(chl, "jobs", 20, NULL, 0, a, CHL_QUEUE_BATCH + 1, &na),
                     MC_EINVAL);
    chl_close(chl);
}

static void free_all(chl_message_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        chl_message_free(&m[i]);
}

/* A worker that found the queue empty waits for the next envelope with
 * one BLMOVE, and takes the one behind it, if any, with one LMOVE: both
 * plain commands. One that found more takes them in one script call,
 * oldest first. */
static void a_worker_waits_alone_when_idle_and_takes_batches_when_not(void **state)
{
    (void)state;
    chl_t *chl = open_with(&(chl_config_t){.redis_urls = redis->url}, "wrk-w");
    chl_message_t a[CHL_QUEUE_BATCH], b[CHL_QUEUE_BATCH];
    size_t na = 0, nb = 0;
    assert_int_equal(chl_queue_push(chl, "jobs", "m0", 2), 0);
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, NULL, 0, a, 10, &na), 0);
    assert_int_equal(na, 1); /* the first look takes what is there: the queue is empty now */
    assert_int_equal(chl_queue_push(chl, "jobs", "m1", 2), 0);
    ts_redis_int(redis, "CONFIG RESETSTAT"); /* the pops' commands only */
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, a, na, b, 10, &nb), 0);
    assert_int_equal(nb, 1);
    assert_string_equal(b[0].data, "m1");
    assert_int_equal(command_calls("blmove"), 1);
    assert_int_equal(command_calls("lmove"), 1); /* nothing behind it */
    assert_int_equal(command_calls("evalsha"), 0);
    free_all(a, na);
    /* Three come at once: BLMOVE brings the first, LMOVE the second, and
     * the next call takes the rest without waiting. */
    const char *three[] = {"m2", "m3", "m4"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_queue_push(chl, "jobs", three[i], 2), 0);
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, b, nb, a, 10, &na), 0);
    assert_int_equal(na, 2);
    assert_string_equal(a[0].data, "m2");
    assert_string_equal(a[1].data, "m3");
    free_all(b, nb);
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, NULL, 0, b, 10, &nb), 0);
    assert_int_equal(nb, 1);
    assert_string_equal(b[0].data, "m4");
    assert_int_equal(command_calls("blmove"), 2);
    assert_int_equal(command_calls("rpop"), 1);
    /* in flight newest first, as requeueing expects */
    assert_int_equal(ts_redis_int(redis, "LLEN mc:inflight:wrk-w"), 3);
    redisContext *c = redisConnect("127.0.0.1", redis->port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "LINDEX mc:inflight:wrk-w 0");
    assert_true(r && r->type == REDIS_REPLY_STRING && strstr(r->str, "\nm4"));
    freeReplyObject(r);
    r = redisCommand(c, "LINDEX mc:inflight:wrk-w 2");
    assert_true(r && r->type == REDIS_REPLY_STRING && strstr(r->str, "\nm2"));
    freeReplyObject(r);
    redisFree(c);
    free_all(a, na);
    free_all(b, nb);
    chl_close(chl);
}

/* A worker popping a steady stream writes its heartbeat every so often,
 * not with every pop, and never lets it lapse. */
static void pops_keep_the_heartbeat_alive_without_writing_it_each_time(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.heartbeat_ttl_ms = 400;
    chl_t *chl = open_with(&cfg, "wrk-beat");
    chl_message_t m[1], done[1];
    size_t n = 0, ndone = 0;
    assert_int_equal(chl_queue_next(chl, "jobs", 20, NULL, 0, m, 1, &n), MC_EAGAIN);
    ts_redis_int(redis, "CONFIG RESETSTAT");
    int pops = 0;
    long long t0 = mc_mono_ms();
    while (mc_mono_ms() - t0 < 1500) {
        assert_int_equal(chl_queue_push(chl, "jobs", "x", 1), 0);
        assert_int_equal(chl_queue_next(chl, "jobs", 50, done, ndone, m, 1, &n), 0);
        for (size_t i = 0; i < ndone; i++)
            chl_message_free(&done[i]);
        done[0] = m[0];
        ndone = n;
        pops++;
        assert_true(ts_redis_int(redis, "PTTL mc:hb:wrk-beat") > 0);
        if (pops % 20 == 0) /* idle pops too, each blocking until it times out */
            assert_int_equal(chl_queue_next(chl, "jobs", 60, NULL, 0, m, 1, &n), MC_EAGAIN);
    }
    for (size_t i = 0; i < ndone; i++)
        chl_message_free(&done[i]);
    assert_true(pops > 100);
    /* a quarter of the TTL between writes: about 15 in 1.5 s */
    long sets = command_calls("set");
    assert_true(sets >= 3);
    assert_true(sets < pops / 4);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:workers wrk-beat"), 1);
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
    chl_t *chl = open_with(&cfg, NULL);
    ts_redis_int(redis, "CONFIG RESETSTAT");
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_queue_push(chl, "jobs", "j", 1), 0);
    assert_int_equal(chl_queue_push(chl, "jobs", "over", 4), MC_EFULL);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:jobs"), 3);
    assert_int_equal(command_calls("lpush"), 4);
    assert_int_equal(command_calls("lpop"), 1);
    assert_int_equal(command_calls("llen"), 1); /* the test's own */
    assert_int_equal(command_calls("pexpire"), 0);
    assert_int_equal(ts_redis_int(redis, "PTTL mc:jobs"), -1);
    assert_int_equal(chl_group_add(chl, "room", "p1!1"), 0);
    ts_redis_int(redis, "PERSIST mc:p1!"); /* as if the group sends had made it */
    assert_int_equal(chl_group_send(chl, "room", "g", 1, NULL), 0);
    assert_int_equal(ts_redis_int(redis, "PTTL mc:p1!"), -1);
    assert_int_equal(chl_send(chl, "p1!1", "direct", 6), 0);
    assert_true(ts_redis_int(redis, "PTTL mc:p1!") > 60000);
    /* The list's byte count does not expire either: it goes with the list
     * (processes_without_heartbeat_are_reaped_once). */
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
    chl_t *chl = open_with(&cfg, NULL);
    assert_int_equal(chl_queue_push(chl, "jobs", "1", 1), 0);
    assert_int_equal(chl_queue_push(chl, "jobs", "2", 1), 0);
    assert_int_equal(chl_queue_push(chl, "jobs", "3", 1), MC_EFULL);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:jobs"), 2);
    chl_close(chl);
}

/* A child pops a message and is killed before it acks; a live worker finds
 * it once the child's heartbeat expired and puts the message back. */
static void dead_workers_in_flight_messages_are_requeued(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.heartbeat_ttl_ms = 200;
    chl_t *live = open_with(&cfg, "wrk-live");
    assert_int_equal(chl_queue_push(live, "jobs", "precious", 8), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        chl_t *child = NULL;
        chl_message_t m;
        if (chl_open(&child, &cfg, "wrk-dead") == 0 && chl_queue_pop(child, "jobs", 2000, &m) == 0)
            (void)!write(fds[1], "p", 1);
        raise(SIGKILL);
        _exit(1);
    }
    close(fds[1]);
    char c = 0;
    assert_int_equal(read(fds[0], &c, 1), 1);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(ts_redis_int(redis, "LLEN mc:jobs"), 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:inflight:wrk-dead"), 1);

    /* Nothing is requeued while the heartbeat lives; once it is gone, the
     * message is, exactly once. (The heartbeat may expire between a look at
     * it and a call, so each call is judged by what holds after it.) */
    size_t requeued = 99, total = 0;
    long long t0 = mc_mono_ms();
    while (total == 0 && mc_mono_ms() - t0 < 5000) {
        assert_int_equal(chl_requeue_dead(live, &requeued), 0);
        if (requeued > 0)
            assert_int_equal(ts_redis_int(redis, "EXISTS mc:hb:wrk-dead"), 0);
        else
            pause_ms(10);
        total += requeued;
    }
    assert_int_equal(total, 1);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:workers wrk-dead"), 0);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:workers wrk-live"), 1);
    chl_message_t m;
    assert_int_equal(chl_queue_pop(live, "jobs", 1000, &m), 0);
    assert_string_equal(m.data, "precious");
    assert_int_equal(chl_ack(live, &m), 0);
    chl_message_free(&m);
    assert_int_equal(chl_requeue_dead(live, &requeued), 0);
    assert_int_equal(requeued, 0);
    chl_close(live);
}

static void group_send_reaches_each_process_once(void **state)
{
    (void)state;
    chl_t *chl = open_default();
    assert_int_equal(chl_group_add(chl, "room-1", "p1!1"), 0);
    assert_int_equal(chl_group_add(chl, "room-1", "p1!2"), 0);
    assert_int_equal(chl_group_add(chl, "room-1", "p2!1"), 0);
    assert_int_equal(chl_group_add(chl, "room-1", "p2!1"), 0); /* a refresh */
    assert_int_equal(chl_group_add(chl, "room-2", "p3!1"), 0);
    assert_int_equal(ts_redis_int(redis, "ZCARD mc:group:room-1"), 3);
    assert_int_equal(ts_redis_int(redis, "HINCRBY mc:groupp:room-1 p1 0"), 2);
    assert_int_equal(ts_redis_int(redis, "HLEN mc:groupp:room-1"), 2);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p1!"), 2); /* the two controls */
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p2!"), 2);
    size_t dropped = 9;
    assert_int_equal(chl_group_send(chl, "room-1", "hi", 2, &dropped), 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p1!"), 3);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p2!"), 3);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p3!"), 1); /* not a member */

    /* a blocking reader of a process channel skips the controls and gets
     * the copy, named after its group */
    const char *const chans[] = {"p1!"};
    chl_message_t m;
    assert_int_equal(chl_receive(chl, chans, 1, 1000, &m), 0);
    assert_string_equal(m.channel, "room-1");
    assert_string_equal(m.data, "hi");
    chl_message_free(&m);

    assert_int_equal(chl_group_discard(chl, "room-1", "p1!1"), 0);
    assert_int_equal(ts_redis_int(redis, "HEXISTS mc:groupp:room-1 p1"), 1);
    assert_int_equal(chl_group_discard(chl, "room-1", "p1!2"), 0);
    assert_int_equal(ts_redis_int(redis, "HEXISTS mc:groupp:room-1 p1"), 0);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:pgroups:p1 room-1"), 0);
    assert_int_equal(chl_group_discard(chl, "room-1", "p1!2"), 0); /* not a member: fine */
    assert_int_equal(ts_redis_int(redis, "HLEN mc:groupp:room-1"), 1);
    assert_int_equal(chl_group_send(chl, "room-1", "again", 5, &dropped), 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p1!"), 3); /* 3 discards, no copy */
    assert_int_equal(chl_group_send(chl, "nobody", "x", 1, &dropped), 0);
    assert_int_equal(dropped, 0);
    chl_close(chl);
}

static void a_named_group_send_delivers_once(void **state)
{
    (void)state;
    chl_t *chl = open_default();
    assert_int_equal(chl_group_add(chl, "room-1", "p1!1"), 0);
    assert_int_equal(chl_group_add(chl, "room-1", "p2!1"), 0);
    size_t dropped = 9;
    assert_int_equal(chl_group_send_once(chl, "room-1", "msg-7", "seven", 5, &dropped), 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p1!"), 2); /* the control and the copy */
    /* A replay of the same message pushes nothing; another name does. */
    assert_int_equal(chl_group_send_once(chl, "room-1", "msg-7", "seven", 5, &dropped), 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p1!"), 2);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p2!"), 2);
    assert_int_equal(chl_group_send_once(chl, "room-1", "msg-8", "eight", 5, &dropped), 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p1!"), 3);
    /* The name outlives a replayed envelope (two expiries), then goes. */
    long long ttl = ts_redis_int(redis, "PTTL mc:once:msg-7");
    assert_true(ttl > 60000 && ttl <= 120000);
    assert_int_equal(chl_group_send_once(chl, "room-1", "bad!name", "x", 1, &dropped), MC_EINVAL);
    /* Several at once, in order: a bad one is refused, the others go. */
    const chl_group_msg_t many[] = {{"room-1", "msg-9", "nine", 4},
                                    {"bad!group", NULL, "x", 1},
                                    {"room-1", "msg-7", "seven", 5}, /* sent before */
                                    {"room-1", NULL, "ten", 3}};
    assert_int_equal(chl_group_send_many(chl, many, 4, &dropped), MC_EINVAL);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p2!"), 5);
    const char *const chans[] = {"p2!"};
    const char *want[] = {"seven", "eight", "nine", "ten"};
    for (int i = 0; i < 4; i++) {
        chl_message_t m;
        assert_int_equal(chl_receive(chl, chans, 1, 1000, &m), 0);
        assert_string_equal(m.data, want[i]);
        chl_message_free(&m);
    }
    chl_close(chl);
}

/* With one shard, a batch of group messages is one script call: each
 * process list gets what is for it in one LPUSH, in the batch's order, and
 * one that would pass its capacity keeps the oldest and drops the newest. */
static void a_batch_of_group_messages_is_one_call(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.process_capacity = 4;
    chl_t *chl = open_with(&cfg, NULL);
    assert_int_equal(chl_group_add(chl, "r1", "p1!1"), 0);
    assert_int_equal(chl_group_add(chl, "r1", "p2!1"), 0);
    assert_int_equal(chl_group_add(chl, "r2", "p1!2"), 0);
    /* p1's list holds its two memberships: room for two more */
    const chl_group_msg_t batch[] = {
        {"r1", "msg-1", "a", 1}, {"r2", "msg-2", "b", 1}, {"r1", "msg-3", "c", 1}};
    ts_redis_int(redis, "CONFIG RESETSTAT");
    size_t dropped = 9;
    assert_int_equal(chl_group_send_many(chl, batch, 3, &dropped), 0);
    assert_int_equal(dropped, 1); /* c, for p1 */
    assert_int_equal(command_calls("evalsha"), 1);
    assert_int_equal(command_calls("lpush"), 2);
    assert_int_equal(command_calls("hkeys"), 2);
    const char *const p1[] = {"p1!"}, *const p2[] = {"p2!"};
    const char *want1[] = {"a", "b"}, *want2[] = {"a", "c"};
    chl_message_t m;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(chl_receive(chl, p1, 1, 1000, &m), 0);
        assert_string_equal(m.data, want1[i]);
        chl_message_free(&m);
        assert_int_equal(chl_receive(chl, p2, 1, 1000, &m), 0);
        assert_string_equal(m.data, want2[i]);
        chl_message_free(&m);
    }
    assert_int_equal(chl_receive(chl, p1, 1, 20, &m), MC_EAGAIN);
    /* each name is marked, dropped copies or not: a replay sends nothing */
    assert_int_equal(chl_group_send_many(chl, batch, 3, &dropped), 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p2!"), 0);
    chl_close(chl);
}

static void group_send_costs_one_push_per_process(void **state)
{
    (void)state;
    chl_t *chl = open_default();
    char member[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(member, sizeof(member), "ifc-%d!%d", i % 4, i);
        assert_int_equal(chl_group_add(chl, "big", member), 0);
    }
    assert_int_equal(ts_redis_int(redis, "ZCARD mc:group:big"), 1000);
    assert_int_equal(ts_redis_int(redis, "HLEN mc:groupp:big"), 4);
    ts_redis_int(redis, "CONFIG RESETSTAT");
    size_t dropped = 9;
    assert_int_equal(chl_group_send(chl, "big", "m", 1, &dropped), 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(command_calls("lpush"), 4);
    assert_int_equal(command_calls("zadd"), 0);
    chl_close(chl);
}

static void a_full_process_list_drops_only_its_copy(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.process_capacity = 3;
    chl_t *chl = open_with(&cfg, NULL);
    assert_int_equal(chl_group_add(chl, "room", "p1!1"), 0);
    assert_int_equal(chl_group_add(chl, "room", "p2!1"), 0);
    assert_int_equal(chl_send(chl, "p2!1", "a", 1), 0);
    assert_int_equal(chl_send(chl, "p2!1", "b", 1), 0); /* p2's list is full now */
    size_t dropped = 0;
    assert_int_equal(chl_group_send(chl, "room", "hi", 2, &dropped), 0);
    assert_int_equal(dropped, 1);
    assert_int_equal(chl_stats(chl)->group_dropped, 1);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p1!"), 2);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p2!"), 3);
    /* a full list refuses a new member too, and records nothing */
    assert_int_equal(chl_group_add(chl, "room", "p2!2"), MC_EFULL);
    assert_int_equal(ts_redis_int(redis, "ZCARD mc:group:room"), 2);
    /* but a discard always gets through */
    assert_int_equal(chl_group_discard(chl, "room", "p2!1"), 0);
    assert_int_equal(ts_redis_int(redis, "ZCARD mc:group:room"), 1);
    chl_close(chl);
}

static void members_expire_after_the_group_expiry(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.group_expiry_s = 1;
    chl_t *chl = open_with(&cfg, NULL);
    assert_int_equal(chl_group_add(chl, "room", "p1!1"), 0);
    assert_int_equal(chl_group_send(chl, "room", "x", 1, NULL), 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p1!"), 2);
    long long t0 = mc_mono_ms();
    while (ts_redis_int(redis, "HLEN mc:groupp:room") > 0 && mc_mono_ms() - t0 < 5000) {
        assert_int_equal(chl_group_send(chl, "room", "y", 1, NULL), 0);
        pause_ms(20);
    }
    assert_int_equal(ts_redis_int(redis, "ZCARD mc:group:room"), 0);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:pgroups:p1 room"), 0);
    long before = ts_redis_int(redis, "LLEN mc:p1!");
    assert_int_equal(chl_group_send(chl, "room", "z", 1, NULL), 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p1!"), before);
    chl_close(chl);
}

/* Looking for stale members takes two commands (TIME, ZRANGEBYSCORE): a
 * sender does it with its first send to a group in a few seconds only. */
static void group_sends_look_for_stale_members_now_and_then(void **state)
{
    (void)state;
    chl_t *chl = open_default();
    assert_int_equal(chl_group_add(chl, "room", "p1!1"), 0);
    ts_redis_int(redis, "CONFIG RESETSTAT");
    long long t0 = mc_mono_ms();
    for (int i = 0; i < 50; i++)
        assert_int_equal(chl_group_send(chl, "room", "m", 1, NULL), 0);
    long long took = mc_mono_ms() - t0;
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p1!"), 51); /* the add and 50 copies */
    long looks = command_calls("zrangebyscore");
    assert_true(looks >= 1);
    assert_true(looks <= 1 + took / 2000);
    assert_int_equal(command_calls("time"), looks);
    chl_close(chl);
}

static void forget_process_drops_all_its_memberships(void **state)
{
    (void)state;
    chl_t *chl = open_default();
    assert_int_equal(chl_group_add(chl, "g1", "dead!1"), 0);
    assert_int_equal(chl_group_add(chl, "g1", "dead!2"), 0);
    assert_int_equal(chl_group_add(chl, "g2", "dead!1"), 0);
    assert_int_equal(chl_group_add(chl, "g2", "alive!1"), 0);
    assert_int_equal(chl_forget_process(chl, "dead"), 0);
    assert_int_equal(ts_redis_int(redis, "ZCARD mc:group:g1"), 0);
    assert_int_equal(ts_redis_int(redis, "ZCARD mc:group:g2"), 1);
    assert_int_equal(ts_redis_int(redis, "HEXISTS mc:groupp:g2 dead"), 0);
    assert_int_equal(ts_redis_int(redis, "HEXISTS mc:groupp:g2 alive"), 1);
    assert_int_equal(ts_redis_int(redis, "EXISTS mc:pgroups:dead"), 0);
    assert_int_equal(chl_forget_process(chl, "unknown"), 0);
    chl_close(chl);
}

static int note_reaped(void *arg, const char *process)
{
    char *buf = arg;
    strcat(buf, process);
    strcat(buf, ";");
    return 0;
}

static void processes_without_heartbeat_are_reaped_once(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.process_bytes = 4096; /* counted from the first message (scripts.c) */
    chl_t *chl = open_with(&cfg, NULL);
    ts_redis_int(redis, "SADD mc:procs ifc.dead ifc.alive");
    ts_redis_int(redis, "SET mc:hb:ifc.alive 1 PX 60000");
    assert_int_equal(chl_group_add(chl, "room-1", "ifc.dead!1"), 0);
    assert_int_equal(chl_group_add(chl, "room-1", "ifc.alive!1"), 0);
    assert_int_equal(chl_group_send(chl, "room-1", "m", 1, NULL), 0);
    char seen[256] = "";
    size_t n;
    assert_int_equal(chl_reap_processes(chl, note_reaped, seen, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(seen, "ifc.dead;");
    /* what waited for the dead process goes with it, and its byte count */
    assert_int_equal(ts_redis_int(redis, "EXISTS mc:ifc.dead!"), 0);
    assert_int_equal(ts_redis_int(redis, "EXISTS mc:bytes:ifc.dead"), 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:ifc.alive!"), 2);
    assert_int_equal(ts_redis_int(redis, "EXISTS mc:bytes:ifc.alive"), 1);
    assert_int_equal(ts_redis_int(redis, "ZCARD mc:group:room-1"), 1);
    assert_int_equal(ts_redis_int(redis, "HEXISTS mc:groupp:room-1 ifc.dead"), 0);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:procs ifc.alive"), 1);
    /* Reaped once: a second call (another worker) finds nothing. */
    seen[0] = '\0';
    assert_int_equal(chl_reap_processes(chl, note_reaped, seen, &n), 0);
    assert_int_equal(n, 0);
    assert_string_equal(seen, "");
    chl_close(chl);
}

static void rate_take_is_a_token_bucket(void **state)
{
    (void)state;
    chl_t *chl = open_default();
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
    chl_t *other = open_default();
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
    chl_t *chl = open_default();
    assert_int_equal(chl_send(chl, "c", "a", 1), 0);
    ts_redis_int(redis, "SCRIPT FLUSH");
    assert_int_equal(chl_send(chl, "c", "b", 1), 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:c"), 2);
    chl_close(chl);
}

static void a_restarted_redis_is_found_again(void **state)
{
    (void)state;
    chl_t *chl = open_default();
    assert_int_equal(chl_send(chl, "c", "a", 1), 0);
    assert_int_equal(ts_redis_restart(redis), 0);
    int rc = chl_send(chl, "c", "b", 1);
    long long t0 = mc_mono_ms();
    while (rc != 0 && mc_mono_ms() - t0 < 5000) {
        assert_int_equal(rc, MC_EREDIS);
        pause_ms(20);
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
        pause_ms(20);
    assert_int_equal(rc, 0);
    chl_close(chl);
}

static void a_worker_registers_again_on_a_restarted_redis_at_once(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    chl_t *worker = open_with(&cfg, "wrk-again"), *other = open_default();
    chl_message_t m;
    assert_int_equal(chl_queue_pop(worker, "q", 10, &m), MC_EAGAIN);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:workers wrk-again"), 1);
    assert_int_equal(ts_redis_restart(redis), 0); /* an empty server */

    /* any call reconnects, and the worker is known again before its next pop */
    int rc;
    long long t0 = mc_mono_ms();
    while ((rc = chl_send(worker, "c", "x", 1)) != 0 && mc_mono_ms() - t0 < 5000)
        pause_ms(20);
    assert_int_equal(rc, 0);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:workers wrk-again"), 1);
    assert_true(ts_redis_int(redis, "PTTL mc:hb:wrk-again") > 0);
    /* a client that never popped a queue is no worker */
    while ((rc = chl_send(other, "c", "y", 1)) != 0 && mc_mono_ms() - t0 < 5000)
        pause_ms(20);
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
        cmocka_unit_test_setup(queue_pop_moves_to_in_flight_until_acked, ts_redis_fixture_flush),
        cmocka_unit_test_setup(queue_next_acknowledges_a_batch_and_fetches_the_next,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_worker_waits_alone_when_idle_and_takes_batches_when_not,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(pops_keep_the_heartbeat_alive_without_writing_it_each_time,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(pushes_check_capacity_with_the_push_itself, ts_redis_fixture_flush),
        cmocka_unit_test_setup(queue_capacity_is_its_own, ts_redis_fixture_flush),
        cmocka_unit_test_setup(dead_workers_in_flight_messages_are_requeued,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(group_send_reaches_each_process_once, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_named_group_send_delivers_once, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_batch_of_group_messages_is_one_call, ts_redis_fixture_flush),
        cmocka_unit_test_setup(group_send_costs_one_push_per_process, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_full_process_list_drops_only_its_copy, ts_redis_fixture_flush),
        cmocka_unit_test_setup(members_expire_after_the_group_expiry, ts_redis_fixture_flush),
        cmocka_unit_test_setup(group_sends_look_for_stale_members_now_and_then,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(forget_process_drops_all_its_memberships, ts_redis_fixture_flush),
        cmocka_unit_test_setup(rate_take_is_a_token_bucket, ts_redis_fixture_flush),
        cmocka_unit_test_setup(processes_without_heartbeat_are_reaped_once, ts_redis_fixture_flush),
        cmocka_unit_test_setup(scripts_come_back_after_a_flush, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_restarted_redis_is_found_again, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_worker_registers_again_on_a_restarted_redis_at_once,
                               ts_redis_fixture_flush),
    };
    return cmocka_run_group_tests(tests, ts_redis_fixture_start, ts_redis_fixture_stop);
}
