/* Groups of the blocking client (channel-layer/sync_group.c): membership
 * changes, one copy per process with members, named sends delivered once,
 * batches in one call, full lists, expiry of members, and the memberships
 * of processes that are gone. */
#include "channel-layer/chl.h"
#include "common/clock.h"
#include "common/error.h"
#include "tests/support/loop.h"
#include "tests/support/redis_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static ts_redis_t *const redis = &ts_redis_fixture;

static void group_send_reaches_each_process_once(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
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
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
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
    const chl_group_msg_t many[] = {{"room-1", "msg-9", "nine", 4, 0},
                                    {"bad!group", NULL, "x", 1, 0},
                                    {"room-1", "msg-7", "seven", 5, 0}, /* sent before */
                                    {"room-1", NULL, "ten", 3, 0}};
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
    chl_t *chl = ts_redis_fixture_client(&cfg, NULL);
    assert_int_equal(chl_group_add(chl, "r1", "p1!1"), 0);
    assert_int_equal(chl_group_add(chl, "r1", "p2!1"), 0);
    assert_int_equal(chl_group_add(chl, "r2", "p1!2"), 0);
    /* p1's list holds its two memberships: room for two more */
    const chl_group_msg_t batch[] = {
        {"r1", "msg-1", "a", 1, 0}, {"r2", "msg-2", "b", 1, 0}, {"r1", "msg-3", "c", 1, 0}};
    ts_redis_int(redis, "CONFIG RESETSTAT");
    size_t dropped = 9;
    assert_int_equal(chl_group_send_many(chl, batch, 3, &dropped), 0);
    assert_int_equal(dropped, 1); /* c, for p1 */
    assert_int_equal(ts_redis_calls(redis, "evalsha"), 1);
    assert_int_equal(ts_redis_calls(redis, "lpush"), 2);
    assert_int_equal(ts_redis_calls(redis, "hkeys"), 2);
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
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
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
    assert_int_equal(ts_redis_calls(redis, "lpush"), 4);
    assert_int_equal(ts_redis_calls(redis, "zadd"), 0);
    chl_close(chl);
}

static void a_full_process_list_drops_only_its_copy(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.process_capacity = 3;
    chl_t *chl = ts_redis_fixture_client(&cfg, NULL);
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
    chl_t *chl = ts_redis_fixture_client(&cfg, NULL);
    assert_int_equal(chl_group_add(chl, "room", "p1!1"), 0);
    assert_int_equal(chl_group_send(chl, "room", "x", 1, NULL), 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p1!"), 2);
    long long t0 = mc_mono_ms();
    while (ts_redis_int(redis, "HLEN mc:groupp:room") > 0 && mc_mono_ms() - t0 < 5000) {
        assert_int_equal(chl_group_send(chl, "room", "y", 1, NULL), 0);
        ts_pause_ms(20);
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
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
    assert_int_equal(chl_group_add(chl, "room", "p1!1"), 0);
    ts_redis_int(redis, "CONFIG RESETSTAT");
    long long t0 = mc_mono_ms();
    for (int i = 0; i < 50; i++)
        assert_int_equal(chl_group_send(chl, "room", "m", 1, NULL), 0);
    long long took = mc_mono_ms() - t0;
    assert_int_equal(ts_redis_int(redis, "LLEN mc:p1!"), 51); /* the add and 50 copies */
    long looks = ts_redis_calls(redis, "zrangebyscore");
    assert_true(looks >= 1);
    assert_true(looks <= 1 + took / 2000);
    assert_int_equal(ts_redis_calls(redis, "time"), looks);
    chl_close(chl);
}

static void forget_process_drops_all_its_memberships(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(NULL, NULL);
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
    chl_t *chl = ts_redis_fixture_client(&cfg, NULL);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(group_send_reaches_each_process_once, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_named_group_send_delivers_once, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_batch_of_group_messages_is_one_call, ts_redis_fixture_flush),
        cmocka_unit_test_setup(group_send_costs_one_push_per_process, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_full_process_list_drops_only_its_copy, ts_redis_fixture_flush),
        cmocka_unit_test_setup(members_expire_after_the_group_expiry, ts_redis_fixture_flush),
        cmocka_unit_test_setup(group_sends_look_for_stale_members_now_and_then,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(forget_process_drops_all_its_memberships, ts_redis_fixture_flush),
        cmocka_unit_test_setup(processes_without_heartbeat_are_reaped_once, ts_redis_fixture_flush),
    };
    return cmocka_run_group_tests(tests, ts_redis_fixture_start, ts_redis_fixture_stop);
}
