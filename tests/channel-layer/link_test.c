/* A process endpoint's links to Redis (channel-layer/link.c): it
 * survives a Redis restart, notices a stuck Redis by the stall check and a
 * lost one at once by its socket, finds each again, and does not take a
 * busy loop of its own for a dead Redis. */
#include "channel-layer/chl.h"
#include "channel-layer/link.h" /* the stall and backoff bounds */
#include "common/error.h"
#include "tests/support/endpoint.h"
#include "tests/support/loop.h"
#include "tests/support/redis_fixture.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>
#include <cmocka.h>

static ts_redis_t *const redis = &ts_redis_fixture;

struct restart_wait {
    ts_ep_t *e;
    chl_t *w;
    char ch[128];
    int sent;
};

/* Keeps sending until the blocking client is back too, then waits for the
 * endpoint to get the message. */
static int restarted_and_delivered(void *arg)
{
    struct restart_wait *rw = arg;
    if (!rw->sent && rw->e->state == 1)
        rw->sent = chl_send(rw->w, rw->ch, "back", 4) == 0;
    return rw->sent && rw->e->msgs >= 1;
}

static void endpoints_survive_a_redis_restart(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    struct restart_wait rw = {.e = &a, .w = w};
    ts_ep_member(&a, 1, rw.ch);
    assert_int_equal(chl_group_add(w, "room", rw.ch), 0);
    assert_int_equal(ts_redis_restart(redis), 0);
    assert_true(ts_run_until(&loop, ts_ep_down_seen, &a, 5000));
    assert_true(ts_run_until(&loop, restarted_and_delivered, &rw, 10000));
    assert_string_equal(a.events[a.nevents - 1], "msg 1 back");
    assert_true(a.ups >= 2);
    assert_true(chl_proc_stats(a.proc)->reconnects >= 1);
    assert_true(chl_stats(w)->reconnects >= 1);
    /* the scripts are there again for the endpoint's own calls */
    ts_pushes_t r = {0};
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, ts_pushed, &r), 0);
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "y", 1, ts_pushed, &r), 0);
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "z", 1, ts_pushed, &r), 0);
    assert_true(ts_run_until(&loop, ts_three_pushed, &r, 5000));
    assert_int_equal(r.status[0], 0);
    /* and after a SCRIPT FLUSH, the endpoint loads them again by itself */
    ts_redis_int(redis, "SCRIPT FLUSH");
    r.calls = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "f", 1, ts_pushed, &r), 0);
    assert_true(ts_run_until(&loop, ts_three_pushed, &r, 5000));
    assert_int_equal(r.status[0], 0);
    assert_int_equal(r.status[2], 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:jobs"), 6);
    chl_close(w);
    ts_ep_finish(&loop, &a, NULL);
}

/* A server that stops answering (but keeps its sockets open) is noticed
 * by the stall check, and found again once it answers. */
static void a_stuck_redis_is_noticed_and_found_again(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    assert_int_equal(kill(redis->pid, SIGSTOP), 0);
    ts_pushes_t r = {0};
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, ts_pushed, &r), 0);
    /* each link is dropped once it waited too long for its answer */
    assert_true(ts_run_until(&loop, ts_ep_down_seen, &a, 10000));
    assert_true(ts_run_until(&loop, ts_one_pushed, &r, 10000));
    assert_int_equal(r.status[0], MC_EREDIS);
    assert_int_equal(kill(redis->pid, SIGCONT), 0);
    assert_true(ts_run_until(&loop, ts_ep_up_again, &a, 10000));
    r.calls = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "y", 1, ts_pushed, &r), 0);
    assert_true(ts_run_until(&loop, ts_three_pushed, &r, 5000));
    assert_int_equal(r.status[0], 0);
    ts_ep_finish(&loop, &a, NULL);
}

static int reported_down(void *arg)
{
    return ((const ts_ep_t *)arg)->state == 0;
}

struct refusals {
    const ts_ep_t *e;
    uint64_t from;
};

static int refused_twice(void *arg)
{
    const struct refusals *r = arg;
    return chl_proc_stats(r->e->proc)->redis_errors >= r->from + 2;
}

/* A killed Redis is noticed by the socket, not by a timer, and the
 * endpoint is back soon after Redis is: attempts made while it was down
 * fail at once instead of waiting out the stall check. */
static void a_lost_redis_is_noticed_at_once_and_found_again_promptly(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    /* The bounds are not speed targets: each sits below the next slower
     * mechanism, so the test tells which one acted. A loss seen only by
     * the stall check would be reported after CHL__LINK_STALL_MS; a retry
     * that kept doubling past CHL__LINK_BACKOFF_MAX_MS would come later
     * than twice that. */
    ts_redis_halt(redis, 1);
    assert_true(ts_run_until(&loop, reported_down, &a, CHL__LINK_STALL_MS - 500));
    /* attempts made meanwhile are refused, each at once */
    struct refusals r = {&a, chl_proc_stats(a.proc)->redis_errors};
    assert_true(ts_run_until(&loop, refused_twice, &r, CHL__LINK_STALL_MS - 500));
    assert_int_equal(ts_redis_restart(redis), 0);
    assert_true(ts_run_until(&loop, ts_ep_is_up, &a, 2 * CHL__LINK_BACKOFF_MAX_MS + 1000));
    assert_true(chl_proc_stats(a.proc)->reconnects >= 1);
    ts_ep_finish(&loop, &a, NULL);
}

static void block_the_loop(uv_timer_t *t)
{
    /* What a long turn of the process's own does, e.g. a large batch
     * fanned out to many sockets: the loop reads nothing meanwhile, for
     * longer than CHL__LINK_STALL_MS. */
    long ms = CHL__LINK_STALL_MS + 1500;
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
    nanosleep(&ts, NULL);
    *(int *)t->data = 1;
}

static int flag_set(void *arg)
{
    return *(int *)arg;
}

/* A process that was busy for longer than the stall check's bound, with
 * replies waiting unread in its sockets, has no dead Redis: the check
 * looks only at silence while the loop listened. (It took such a process
 * for one and closed every socket with 1012.) */
static void a_busy_loop_is_not_a_dead_redis(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    char ch[128];
    ts_ep_member(&a, 1, ch);
    uv_timer_t busy;
    int blocked = 0;
    uv_timer_init(&loop, &busy);
    busy.data = &blocked;
    uv_timer_start(&busy, block_the_loop, 10, 0);
    assert_true(ts_run_until(&loop, flag_set, &blocked, 5000));
    assert_int_equal(chl_send(w, ch, "after", 5), 0);
    assert_true(ts_run_until(&loop, ts_ep_one_message, &a, 5000));
    assert_int_equal(a.downs, 0);
    assert_string_equal(a.events[0], "msg 1 after");
    uv_close((uv_handle_t *)&busy, NULL);
    chl_close(w);
    ts_ep_finish(&loop, &a, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(endpoints_survive_a_redis_restart, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_stuck_redis_is_noticed_and_found_again, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_lost_redis_is_noticed_at_once_and_found_again_promptly,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_busy_loop_is_not_a_dead_redis, ts_redis_fixture_flush),
    };
    return cmocka_run_group_tests(tests, ts_redis_fixture_start, ts_redis_fixture_stop);
}
