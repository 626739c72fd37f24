/* The channel layer over three private redis-servers: channels follow their
 * process, groups live on one shard and reach processes on the others,
 * queues spread over every shard. */
#include "channel-layer/chl.h"
#include "common/error.h"
#include "tests/support/loop.h"
#include "tests/support/redis.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#define NSHARDS 3

static ts_redis_t redis[NSHARDS];
static char urls[256], reversed[256];

static int start_servers(void **state)
{
    (void)state;
    for (int i = 0; i < NSHARDS; i++)
        if (ts_redis_start(&redis[i]) != 0)
            return -1;
    snprintf(urls, sizeof(urls), "%s,%s,%s", redis[0].url, redis[1].url, redis[2].url);
    snprintf(reversed, sizeof(reversed), "%s,%s,%s", redis[2].url, redis[1].url, redis[0].url);
    return 0;
}

static int stop_servers(void **state)
{
    (void)state;
    for (int i = 0; i < NSHARDS; i++)
        ts_redis_stop(&redis[i]);
    return 0;
}

static int flush(void **state)
{
    (void)state;
    for (int i = 0; i < NSHARDS; i++) {
        ts_redis_int(&redis[i], "FLUSHALL");
        if (ts_redis_int(&redis[i], "DBSIZE") != 0)
            return -1;
    }
    return 0;
}

static chl_t *open_on(const char *list)
{
    chl_config_t cfg;
    chl_config_defaults(&cfg);
    cfg.redis_urls = list;
    chl_t *chl = NULL;
    assert_int_equal(chl_open(&chl, &cfg, NULL), 0);
    return chl;
}

/* How many servers hold key. */
static int holders(const char *key)
{
    int n = 0;
    for (int i = 0; i < NSHARDS; i++)
        n += ts_redis_int(&redis[i], "EXISTS %s", key) == 1;
    return n;
}

static void direct_sends_reach_the_process_that_reads_them(void **state)
{
    (void)state;
    chl_t *chl = open_on(urls);
    chl_t *other = open_on(reversed); /* the same servers, listed the other way */
    char procs[100][48];
    srand(7);
    for (int i = 0; i < 100; i++) {
        snprintf(procs[i], sizeof(procs[i]), "ifc.h%d.%d.%08x", i % 7, i, (unsigned)rand());
        char ch[64];
        snprintf(ch, sizeof(ch), "%s!%d", procs[i], i);
        assert_int_equal(chl_send(i % 2 ? other : chl, ch, procs[i], strlen(procs[i])), 0);
    }
    for (int i = 0; i < NSHARDS; i++)
        assert_true(ts_redis_int(&redis[i], "DBSIZE") > 10); /* spread over all of them */
    for (int i = 0; i < 100; i++) {
        char key[64], ch[64], want[64];
        snprintf(key, sizeof(key), "mc:%s!", procs[i]);
        assert_int_equal(holders(key), 1);
        snprintf(ch, sizeof(ch), "%s!", procs[i]);
        snprintf(want, sizeof(want), "%s!%d", procs[i], i);
        const char *const chans[] = {ch};
        chl_message_t m;
        assert_int_equal(chl_receive(i % 3 ? chl : other, chans, 1, 1000, &m), 0);
        assert_string_equal(m.channel, want);
        assert_string_equal(m.data, procs[i]);
        chl_message_free(&m);
    }
    chl_close(other);
    chl_close(chl);
}

static void receive_waits_on_channels_of_several_shards(void **state)
{
    (void)state;
    chl_t *chl = open_on(urls);
    char names[12][16];
    const char *chans[12];
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof(names[i]), "chan%d", i);
        chans[i] = names[i];
    }
    assert_int_equal(chl_send(chl, "chan3", "a", 1), 0);
    assert_int_equal(chl_send(chl, "chan9", "b", 1), 0);
    chl_message_t m;
    int seen = 0;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(chl_receive(chl, chans, 12, 1000, &m), 0);
        seen |= strcmp(m.channel, "chan3") == 0 ? 1 : strcmp(m.channel, "chan9") == 0 ? 2 : 4;
        chl_message_free(&m);
    }
    assert_int_equal(seen, 3);
    assert_int_equal(chl_receive(chl, chans, 12, 150, &m), MC_EAGAIN);
    chl_close(chl);
}

static void group_send_reaches_processes_on_every_shard(void **state)
{
    (void)state;
    chl_t *chl = open_on(urls);
    char procs[12][32], ch[64];
    for (int i = 0; i < 12; i++) {
        snprintf(procs[i], sizeof(procs[i]), "ifc.p%d", i);
        for (int c = 0; c < 3; c++) {
            snprintf(ch, sizeof(ch), "%s!%d", procs[i], c);
            assert_int_equal(chl_group_add(chl, "room-1", ch), 0);
        }
    }
    assert_int_equal(holders("mc:group:room-1"), 1);
    size_t dropped = 9;
    assert_int_equal(chl_group_send(chl, "room-1", "hello", 5, &dropped), 0);
    assert_int_equal(dropped, 0);
    for (int i = 0; i < 12; i++) {
        snprintf(ch, sizeof(ch), "%s!", procs[i]);
        const char *const chans[] = {ch};
        chl_message_t m;
        assert_int_equal(chl_receive(chl, chans, 1, 1000, &m), 0);
        assert_string_equal(m.channel, "room-1");
        assert_string_equal(m.data, "hello");
        chl_message_free(&m);
        assert_int_equal(chl_receive(chl, chans, 1, 10, &m), MC_EAGAIN); /* exactly one copy */
    }
    /* A named send marks each shard as it pushes there: a replay adds nothing. */
    for (int round = 0; round < 2; round++)
        assert_int_equal(chl_group_send_once(chl, "room-1", "msg-1", "once", 4, &dropped), 0);
    for (int i = 0; i < 12; i++) {
        snprintf(ch, sizeof(ch), "%s!", procs[i]);
        const char *const chans[] = {ch};
        chl_message_t m;
        assert_int_equal(chl_receive(chl, chans, 1, 1000, &m), 0);
        assert_string_equal(m.data, "once");
        chl_message_free(&m);
        assert_int_equal(chl_receive(chl, chans, 1, 10, &m), MC_EAGAIN);
    }
    /* a process forgotten on every shard leaves every group */
    snprintf(ch, sizeof(ch), "%s!0", procs[0]);
    assert_int_equal(chl_group_add(chl, "room-2", ch), 0);
    assert_int_equal(chl_group_add(chl, "room-3", ch), 0);
    assert_int_equal(chl_forget_process(chl, procs[0]), 0);
    for (int g = 1; g <= 3; g++) {
        char key[64];
        snprintf(key, sizeof(key), "mc:groupp:room-%d", g);
        for (int i = 0; i < NSHARDS; i++)
            assert_int_equal(ts_redis_int(&redis[i], "HEXISTS %s %s", key, procs[0]), 0);
    }
    chl_close(chl);
}

/* The shard of key (-1: none holds it). */
static int holder(const char *key)
{
    for (int i = 0; i < NSHARDS; i++)
        if (ts_redis_int(&redis[i], "EXISTS %s", key) == 1)
            return i;
    return -1;
}

/* A group's copies to processes on other shards are bounded in bytes as
 * well: each list's count lives beside it, and what a process takes from
 * its list makes room again. */
static void process_lists_on_every_shard_are_bounded_in_bytes(void **state)
{
    (void)state;
    chl_config_t cfg;
    chl_config_defaults(&cfg);
    cfg.redis_urls = urls;
    cfg.process_bytes = 4096;
    chl_t *chl = NULL;
    assert_int_equal(chl_open(&chl, &cfg, NULL), 0);
    char procs[12][32], ch[64], key[64];
    for (int i = 0; i < 12; i++) {
        snprintf(procs[i], sizeof(procs[i]), "ifc.p%d", i);
        snprintf(ch, sizeof(ch), "%s!1", procs[i]);
        assert_int_equal(chl_group_add(chl, "room-1", ch), 0);
    }
    static char big[3000];
    memset(big, 'b', sizeof(big));
    size_t dropped = 9;
    assert_int_equal(chl_group_send(chl, "room-1", big, sizeof(big), &dropped), 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(chl_group_send(chl, "room-1", big, sizeof(big), &dropped), 0);
    assert_int_equal(dropped, 12);
    int shards[NSHARDS] = {0};
    for (int i = 0; i < 12; i++) {
        snprintf(ch, sizeof(ch), "mc:%s!", procs[i]);
        snprintf(key, sizeof(key), "mc:bytes:%s", procs[i]);
        assert_int_equal(holders(key), 1);
        assert_int_equal(holder(key), holder(ch));
        shards[holder(ch)]++;
    }
    int used = 0;
    for (int i = 0; i < NSHARDS; i++)
        used += shards[i] > 0;
    assert_true(used >= 2);
    /* procs[0] takes its message (and its join): the room is there again */
    snprintf(ch, sizeof(ch), "%s!", procs[0]);
    const char *const chans[] = {ch};
    chl_message_t m;
    assert_int_equal(chl_receive(chl, chans, 1, 1000, &m), 0);
    assert_int_equal(m.len, sizeof(big));
    chl_message_free(&m);
    assert_int_equal(chl_group_send(chl, "room-1", big, sizeof(big), &dropped), 0);
    assert_int_equal(dropped, 11);
    chl_close(chl);
}

static void queues_spread_over_shards_and_pop_from_all(void **state)
{
    (void)state;
    chl_t *chl = open_on(urls);
    for (int i = 0; i < 9; i++) {
        char msg[16];
        snprintf(msg, sizeof(msg), "j%d", i);
        assert_int_equal(chl_queue_push(chl, "jobs", msg, strlen(msg)), 0);
    }
    for (int i = 0; i < NSHARDS; i++)
        assert_int_equal(ts_redis_int(&redis[i], "LLEN mc:jobs"), 3);
    chl_t *w = open_on(reversed);
    int seen = 0;
    for (int i = 0; i < 9; i++) {
        chl_message_t m;
        assert_int_equal(chl_queue_pop(w, "jobs", 1000, &m), 0);
        seen |= 1 << (m.data[1] - '0');
        assert_int_equal(chl_ack(w, &m), 0);
        chl_message_free(&m);
    }
    assert_int_equal(seen, 0x1ff);
    chl_message_t m;
    assert_int_equal(chl_queue_pop(w, "jobs", 150, &m), MC_EAGAIN);
    chl_close(w);
    chl_close(chl);
}

/* ---- process endpoints over the shards ---- */

typedef struct ep {
    chl_proc_t *proc;
    int up, calls, msgs, adds; /* msgs: deliveries, the connections of the calls */
} ep_t;

static void on_message(void *ctx, const uint64_t *conns, size_t n, const char *data, size_t len)
{
    (void)conns;
    (void)data;
    (void)len;
    ((ep_t *)ctx)->calls++;
    ((ep_t *)ctx)->msgs += (int)n;
}

static void on_group_add(void *ctx, uint64_t conn, const char *group)
{
    (void)conn;
    (void)group;
    ((ep_t *)ctx)->adds++;
}

static void on_redis_state(void *ctx, int up)
{
    ((ep_t *)ctx)->up = up;
}

#define NEPS 6

static int all_up(void *arg)
{
    ep_t *eps = arg;
    for (int i = 0; i < NEPS; i++)
        if (!eps[i].up)
            return 0;
    return 1;
}

static int all_delivered(void *arg)
{
    ep_t *eps = arg;
    for (int i = 0; i < NEPS; i++)
        if (eps[i].msgs < 4 || eps[i].adds < 2)
            return 0;
    return 1;
}

static void endpoints_on_several_shards_get_group_messages(void **state)
{
    (void)state;
    static const chl_proc_handlers_t h = {on_message, on_group_add, NULL, on_redis_state};
    uv_loop_t loop;
    uv_loop_init(&loop);
    chl_config_t cfg;
    chl_config_defaults(&cfg);
    cfg.redis_urls = urls;
    ep_t eps[NEPS];
    memset(eps, 0, sizeof(eps));
    for (int i = 0; i < NEPS; i++)
        assert_int_equal(chl_proc_open(&eps[i].proc, &loop, &cfg, "ifc", &h, &eps[i]), 0);
    assert_true(ts_run_until(&loop, all_up, eps, 5000));
    chl_t *w = open_on(urls);
    for (int i = 0; i < NEPS; i++)
        for (uint64_t c = 1; c <= 2; c++) {
            char ch[128];
            assert_int_equal(chl_proc_channel(eps[i].proc, c, ch, sizeof(ch)), 0);
            assert_int_equal(chl_group_add(w, "room", ch), 0);
        }
    assert_int_equal(chl_group_send(w, "room", "a", 1, NULL), 0);
    assert_int_equal(chl_group_send(w, "room", "b", 1, NULL), 0);
    assert_true(ts_run_until(&loop, all_delivered, eps, 5000));
    for (int i = 0; i < NEPS; i++) {
        assert_int_equal(eps[i].msgs, 4);
        assert_int_equal(eps[i].calls, 2); /* one per group message */
    }
    chl_close(w);
    for (int i = 0; i < NEPS; i++)
        chl_proc_close(eps[i].proc);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(direct_sends_reach_the_process_that_reads_them, flush),
        cmocka_unit_test_setup(receive_waits_on_channels_of_several_shards, flush),
        cmocka_unit_test_setup(group_send_reaches_processes_on_every_shard, flush),
        cmocka_unit_test_setup(process_lists_on_every_shard_are_bounded_in_bytes, flush),
        cmocka_unit_test_setup(queues_spread_over_shards_and_pop_from_all, flush),
        cmocka_unit_test_setup(endpoints_on_several_shards_get_group_messages, flush),
    };
    return cmocka_run_group_tests(tests, start_servers, stop_servers);
}
