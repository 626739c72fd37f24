/* The memberships of a process endpoint (channel-layer/proc.c): a group
 * message reaches the local members in one call, after the membership
 * changes sent before it; a forgotten connection leaves its groups; a
 * Redis that comes back empty learns the memberships again. */
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

struct fanout_wait {
    ts_ep_t *a, *b;
    int amsgs, bmsgs, aadds, badds;
};

static int fanout_done(void *arg)
{
    struct fanout_wait *w = arg;
    return w->a->msgs >= w->amsgs && w->b->msgs >= w->bmsgs && w->a->adds >= w->aadds &&
           w->b->adds >= w->badds;
}

static int count_events(const ts_ep_t *e, const char *text)
{
    int n = 0;
    for (int i = 0; i < e->nevents; i++)
        n += strcmp(e->events[i], text) == 0;
    return n;
}

static void collect_group(void *arg, const char *group)
{
    char *out = arg;
    strcat(out, group);
    strcat(out, ";");
}

static void groups_fan_out_to_local_members(void **state)
{
    (void)state;
    uv_loop_t loop;
    chl_config_t cfg = ts_redis_fixture_config();
    ts_ep_t a, b;
    ts_ep_start(&loop, &a, &cfg);
    ts_ep_open(&loop, &b, &cfg);
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    char m[128];
    ts_ep_member(&a, 1, m);
    assert_int_equal(chl_group_add(w, "room", m), 0);
    ts_ep_member(&a, 2, m);
    assert_int_equal(chl_group_add(w, "room", m), 0);
    ts_ep_member(&b, 5, m);
    assert_int_equal(chl_group_add(w, "room", m), 0);
    ts_ep_member(&a, 3, m);
    assert_int_equal(chl_group_add(w, "other", m), 0);
    size_t dropped = 9;
    assert_int_equal(chl_group_send(w, "room", "m1", 2, &dropped), 0);
    assert_int_equal(dropped, 0);
    struct fanout_wait fw = {&a, &b, 2, 1, 3, 1};
    assert_true(ts_run_until(&loop, fanout_done, &fw, 5000));
    /* the memberships came first, in order, then the message: one call
     * per process, with its members of the group */
    assert_string_equal(a.events[0], "add 1 room");
    assert_string_equal(a.events[1], "add 2 room");
    assert_string_equal(a.events[2], "add 3 other");
    assert_string_equal(a.events[3], "msg 1,2 m1");
    assert_int_equal(a.nevents, 4);
    assert_int_equal(a.calls, 1);
    assert_string_equal(b.events[0], "add 5 room");
    assert_string_equal(b.events[1], "msg 5 m1");
    assert_int_equal(b.calls, 1);
    char groups[256] = "";
    chl_proc_each_group(a.proc, 1, collect_group, groups);
    assert_string_equal(groups, "room;");

    ts_ep_member(&a, 2, m);
    assert_int_equal(chl_group_discard(w, "room", m), 0);
    assert_int_equal(chl_group_send(w, "room", "m2", 2, NULL), 0);
    fw.amsgs = 3;
    fw.bmsgs = 2;
    assert_true(ts_run_until(&loop, fanout_done, &fw, 5000));
    assert_int_equal(a.discards, 1);
    assert_int_equal(count_events(&a, "del 2 room"), 1);
    assert_int_equal(count_events(&a, "msg 1 m2"), 1);
    assert_int_equal(a.calls, 2);
    assert_int_equal(count_events(&b, "msg 5 m2"), 1);
    chl_close(w);
    ts_ep_finish(&loop, &a, &b);
}

/* A connection added and sent to at once, without a turn of the loop in
 * between, is a member by the time the message arrives. */
static void a_membership_change_comes_ahead_of_later_messages(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    char m[128];
    for (uint64_t c = 1; c <= 20; c++) {
        ts_ep_member(&a, c, m);
        assert_int_equal(chl_group_add(w, "room", m), 0);
        assert_int_equal(chl_group_send(w, "room", "x", 1, NULL), 0);
    }
    struct fanout_wait fw = {&a, &a, 210, 0, 20, 0};
    assert_true(ts_run_until(&loop, fanout_done, &fw, 5000));
    /* conn c joined before message c, so it saw messages c..20 */
    assert_int_equal(a.msgs, 210);
    assert_int_equal(a.calls, 20);
    assert_int_equal(a.adds, 20);
    assert_string_equal(a.events[0], "add 1 room");
    assert_string_equal(a.events[1], "msg 1 x");
    assert_string_equal(a.events[2], "add 2 room");
    assert_string_equal(a.events[3], "msg 1,2 x");
    assert_string_equal(a.events[5], "msg 1,2,3 x");
    chl_close(w);
    ts_ep_finish(&loop, &a, NULL);
}

static int three_repeated(void *arg)
{
    return chl_proc_stats(((ts_ep_t *)arg)->proc)->repeated >= 3;
}

/* A group message with a seq reaches the members only when its seq is
 * above the last one they were handed: one sent again after Redis forgot
 * its name (here: sent under another name, or none) arrives once. */
static void a_group_message_sent_again_in_order_arrives_once(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    char m[128];
    ts_ep_member(&a, 1, m);
    assert_int_equal(chl_group_add(w, "room-1", m), 0);
    ts_ep_member(&a, 2, m);
    assert_int_equal(chl_group_add(w, "room-2", m), 0);
    const chl_group_msg_t sends[] = {
        {"room-1", "msg-5", "five", 4, 5},
        {"room-1", "msg-5-again", "five again", 10, 5}, /* the name was lost */
        {"room-1", NULL, "three", 5, 3},                /* older than one handed */
        {"room-2", "msg-4", "four", 4, 4},              /* another group's order */
        {"room-1", NULL, "an edit", 7, 0},              /* no seq: always */
        {"room-1", "msg-6", "six", 3, 6},
        {"room-1", NULL, "five once more", 14, 5},
    };
    assert_int_equal(chl_group_send_many(w, sends, 7, NULL), 0);
    struct fanout_wait fw = {&a, &a, 4, 0, 2, 0};
    assert_true(ts_run_until(&loop, fanout_done, &fw, 5000));
    /* the three it had had, or older, are counted and not handed */
    assert_true(ts_run_until(&loop, three_repeated, &a, 5000));
    assert_int_equal(a.msgs, 4);
    assert_string_equal(a.events[2], "msg 1 five");
    assert_string_equal(a.events[3], "msg 2 four");
    assert_string_equal(a.events[4], "msg 1 an edit");
    assert_string_equal(a.events[5], "msg 1 six");
    assert_int_equal(a.nevents, 6);
    chl_close(w);
    ts_ep_finish(&loop, &a, NULL);
}

/* A member added after a seq (chl_group_add_after) is not handed a message
 * at or below it: one sent again once the member joined (a replayed
 * envelope, without a name) reaches nobody, though the group was new on
 * the process (its only member had left). Adding again with a lower seq
 * does not lower it. */
static void a_member_added_after_a_seq_is_not_handed_it_again(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    char m1[128], m2[128];
    ts_ep_member(&a, 1, m1);
    ts_ep_member(&a, 2, m2);
    const chl_group_msg_t five = {"room-1", NULL, "five", 4, 5};
    assert_int_equal(chl_group_add(w, "room-1", m1), 0);
    assert_int_equal(chl_group_send_many(w, &five, 1, NULL), 0);
    assert_int_equal(chl_group_discard(w, "room-1", m1), 0);
    assert_int_equal(chl_group_add_after(w, "room-1", m2, 5), 0);
    assert_int_equal(chl_group_add_after(w, "room-1", m2, 3), 0);
    const chl_group_msg_t sends[] = {
        {"room-1", NULL, "five again", 10, 5},
        {"room-1", NULL, "four", 4, 4},
        {"room-1", NULL, "six", 3, 6},
    };
    assert_int_equal(chl_group_send_many(w, sends, 3, NULL), 0);
    struct fanout_wait fw = {&a, &a, 2, 0, 2, 0};
    assert_true(ts_run_until(&loop, fanout_done, &fw, 5000));
    assert_int_equal(chl_proc_stats(a.proc)->repeated, 2); /* "six" came after them */
    assert_int_equal(a.nevents, 5);
    assert_string_equal(a.events[0], "add 1 room-1");
    assert_string_equal(a.events[1], "msg 1 five");
    assert_string_equal(a.events[2], "del 1 room-1");
    assert_string_equal(a.events[3], "add 2 room-1");
    assert_string_equal(a.events[4], "msg 2 six");
    chl_close(w);
    ts_ep_finish(&loop, &a, NULL);
}

struct redis_wait {
    const char *cmd;
    const char *arg;
    long long want;
};

static int redis_says(void *arg)
{
    struct redis_wait *rw = arg;
    return ts_redis_int(redis, rw->cmd, rw->arg) == rw->want;
}

static void a_forgotten_connection_leaves_its_groups(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    char m[128];
    ts_ep_member(&a, 1, m);
    assert_int_equal(chl_group_add(w, "room", m), 0);
    assert_int_equal(chl_group_add(w, "room2", m), 0);
    ts_ep_member(&a, 2, m);
    assert_int_equal(chl_group_add(w, "room", m), 0);
    struct fanout_wait fw = {&a, &a, 0, 0, 3, 0};
    assert_true(ts_run_until(&loop, fanout_done, &fw, 5000));
    assert_int_equal(chl_proc_forget_conn(a.proc, 1), 0);
    assert_int_equal(a.discards, 0); /* the caller knows: no callback */
    char groups[256] = "";
    chl_proc_each_group(a.proc, 1, collect_group, groups);
    assert_string_equal(groups, "");
    struct redis_wait rw = {"ZCARD %s", "mc:group:room2", 0};
    assert_true(ts_run_until(&loop, redis_says, &rw, 5000));
    rw.arg = "mc:group:room";
    rw.want = 1;
    assert_true(ts_run_until(&loop, redis_says, &rw, 5000));
    assert_int_equal(chl_proc_forget_conn(a.proc, 12345), 0); /* unknown: nothing to do */

    /* the last member of the process in room goes: the process leaves it */
    assert_int_equal(chl_proc_forget_conn(a.proc, 2), 0);
    rw.cmd = "HLEN %s";
    rw.arg = "mc:groupp:room";
    rw.want = 0;
    assert_true(ts_run_until(&loop, redis_says, &rw, 5000));
    chl_close(w);
    ts_ep_finish(&loop, &a, NULL);
}

static int three_adds(void *arg)
{
    return ((const ts_ep_t *)arg)->adds >= 3;
}

static int in_redis_again(void *arg)
{
    (void)arg;
    return ts_redis_int(redis, "ZCARD mc:group:room") == 2;
}

/* A Redis that comes back empty has lost the groups: the endpoint records
 * its connections' memberships again, and registers itself again, so that
 * its sockets go on hearing their rooms without joining again. */
static void a_restarted_redis_learns_the_memberships_again(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    char ch1[128], ch2[128];
    ts_ep_member(&a, 1, ch1);
    ts_ep_member(&a, 2, ch2);
    assert_int_equal(chl_group_add(w, "room", ch1), 0);
    assert_int_equal(chl_group_add(w, "room", ch2), 0);
    assert_int_equal(chl_group_add(w, "other", ch2), 0);
    assert_true(ts_run_until(&loop, three_adds, &a, 5000));

    assert_int_equal(ts_redis_restart(redis), 0); /* empty */
    assert_true(ts_run_until(&loop, ts_ep_down_seen, &a, 5000));
    assert_true(ts_run_until(&loop, ts_ep_up_again, &a, 5000));
    assert_true(ts_run_until(&loop, in_redis_again, NULL, 5000));
    assert_int_equal(ts_redis_int(redis, "ZCARD mc:group:other"), 1);
    char hb[160], pg[160];
    snprintf(hb, sizeof(hb), "EXISTS mc:hb:%s", chl_proc_name(a.proc));
    snprintf(pg, sizeof(pg), "SCARD mc:pgroups:%s", chl_proc_name(a.proc));
    assert_int_equal(ts_redis_int(redis, hb), 1);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:procs %s", chl_proc_name(a.proc)), 1);
    assert_int_equal(ts_redis_int(redis, pg), 2);

    /* a room's message reaches both members, who never joined again */
    int rc;
    while ((rc = chl_group_send(w, "room", "again", 5, NULL)) == MC_EREDIS)
        ; /* the blocking client's first call after the restart reconnects */
    assert_int_equal(rc, 0);
    a.msgs = 0;
    assert_true(ts_run_until(&loop, ts_ep_one_message, &a, 5000));
    assert_string_equal(a.events[a.nevents - 1], "msg 1,2 again");
    chl_close(w);
    ts_ep_finish(&loop, &a, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(groups_fan_out_to_local_members, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_membership_change_comes_ahead_of_later_messages,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_forgotten_connection_leaves_its_groups, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_group_message_sent_again_in_order_arrives_once,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_member_added_after_a_seq_is_not_handed_it_again,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_restarted_redis_learns_the_memberships_again,
                               ts_redis_fixture_flush),
    };
    return cmocka_run_group_tests(tests, ts_redis_fixture_start, ts_redis_fixture_stop);
}
