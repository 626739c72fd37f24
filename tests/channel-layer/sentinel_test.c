/* The blocking client and the process endpoint on Redis Sentinel: a
 * master, its replica and three real redis-sentinel processes per test.
 * They find the master by name, follow a failover after the master is
 * killed without being reopened, find the master again when a server
 * answers READONLY, and leave a master as soon as the sentinels announce
 * that they replaced it, while it still takes writes. */
#include "channel-layer/chl.h"
#include "common/clock.h"
#include "common/error.h"
#include "channel-layer/sentinel.h"
#include "tests/support/loop.h"
#include "tests/support/sentinel.h"

#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#define FAILOVER_WAIT_MS 30000 /* generous: the sentinels need about 3 s */

static ts_sentinels_t sentinels;

static int start_one(void **state)
{
    (void)state;
    return ts_sentinels_start(&sentinels, 1);
}

static int start_two(void **state)
{
    (void)state;
    return ts_sentinels_start(&sentinels, 2);
}

static int stop(void **state)
{
    (void)state;
    ts_sentinels_stop(&sentinels);
    return 0;
}

static chl_t *open_on(const char *url, const char *name)
{
    chl_config_t cfg;
    chl_config_defaults(&cfg);
    cfg.redis_urls = url;
    chl_t *chl = NULL;
    assert_int_equal(chl_open(&chl, &cfg, name), 0);
    return chl;
}

/* Sends until a send succeeds; every failure meanwhile must be MC_EREDIS.
 * Returns how many failed. */
static int send_until_it_succeeds(chl_t *chl, const char *channel, const char *msg)
{
    int64_t deadline = mc_mono_ms() + FAILOVER_WAIT_MS;
    int failed = 0, rc;
    while ((rc = chl_send(chl, channel, msg, strlen(msg))) != 0 && mc_mono_ms() < deadline) {
        assert_int_equal(rc, MC_EREDIS);
        failed++;
        ts_pause_ms(20);
    }
    assert_int_equal(rc, 0);
    return failed;
}

static void receive_one(chl_t *chl, const char *channel, const char *want)
{
    const char *const chans[] = {channel};
    chl_message_t m;
    assert_int_equal(chl_receive(chl, chans, 1, 2000, &m), 0);
    assert_string_equal(m.data, want);
    chl_message_free(&m);
}

static void the_master_is_found_by_its_name(void **state)
{
    (void)state;
    ts_redis_t *master = &sentinels.set[0].node[0];
    chl_t *chl = open_on(sentinels.url, NULL);
    assert_int_equal(chl_send(chl, "c", "hello", 5), 0);
    assert_int_equal(ts_redis_int(master, "LLEN mc:c"), 1);
    receive_one(chl, "c", "hello");
    assert_int_equal(chl_stats(chl)->failovers, 0);
    chl_close(chl);

    /* a name the sentinels do not watch, and sentinels that do not answer */
    char url[600];
    snprintf(url, sizeof(url), "redis+sentinel://127.0.0.1:%d/nobody", sentinels.sentinel[0].port);
    chl_config_t cfg;
    chl_config_defaults(&cfg);
    cfg.redis_urls = url;
    assert_int_equal(chl_open(&chl, &cfg, NULL), MC_EREDIS);
    snprintf(url, sizeof(url), "redis+sentinel://127.0.0.1:%d/%s", master->port,
             sentinels.set[0].name); /* a data server is no sentinel */
    assert_int_equal(chl_open(&chl, &cfg, NULL), MC_EREDIS);
    cfg.redis_urls = "redis+sentinel://127.0.0.1:1,127.0.0.1:2/mc-0";
    int64_t t0 = mc_mono_ms();
    assert_int_equal(chl_open(&chl, &cfg, NULL), MC_EREDIS);
    assert_true(mc_mono_ms() - t0 < 3000);
}

static void a_killed_master_is_replaced_without_reopening(void **state)
{
    (void)state;
    ts_redis_t *master = &sentinels.set[0].node[0], *replica = &sentinels.set[0].node[1];
    chl_t *chl = open_on(sentinels.url, "wrk-failover");
    chl_message_t m;
    assert_int_equal(chl_queue_push(chl, "q", "a", 1), 0);
    assert_int_equal(chl_queue_pop(chl, "q", 1000, &m), 0);
    assert_int_equal(chl_ack(chl, &m), 0);
    chl_message_free(&m);

    ts_redis_halt(master, 1); /* kill -9 */
    int failed = send_until_it_succeeds(chl, "c", "after");
    assert_true(failed >= 1); /* it did notice */
    assert_ptr_equal(ts_sentinels_master(&sentinels, 0, master, 5000), replica);
    assert_int_equal(ts_redis_int(replica, "LLEN mc:c"), 1);
    receive_one(chl, "c", "after");

    /* the reliable queue works on the new master: push, pop, ack */
    assert_int_equal(chl_queue_push(chl, "q", "b", 1), 0);
    assert_int_equal(chl_queue_pop(chl, "q", 1000, &m), 0);
    assert_string_equal(m.data, "b");
    assert_int_equal(ts_redis_int(replica, "LLEN mc:inflight:wrk-failover"), 1);
    assert_int_equal(chl_ack(chl, &m), 0);
    chl_message_free(&m);
    assert_int_equal(ts_redis_int(replica, "SISMEMBER mc:workers wrk-failover"), 1);

    assert_int_equal(chl_stats(chl)->failovers, 1);
    assert_true(chl_stats(chl)->reconnects >= 1);
    chl_close(chl);
}

/* Makes the replica of set 0 the master by hand, the way a failover would
 * but without the sentinels' disconnecting of clients, and points the
 * sentinels at it: a client still connected to the old master now gets
 * READONLY replies. */
static void swap_roles_behind_the_clients_back(void)
{
    ts_redis_t *old = &sentinels.set[0].node[0], *new = &sentinels.set[0].node[1];
    const char *name = sentinels.set[0].name;
    for (size_t k = 0; k < TS_SENTINELS; k++)
        ts_redis_int(&sentinels.sentinel[k], "SENTINEL REMOVE %s", name);
    ts_redis_int(new, "REPLICAOF NO ONE");
    ts_redis_int(old, "REPLICAOF 127.0.0.1 %d", new->port);
    for (size_t k = 0; k < TS_SENTINELS; k++)
        ts_redis_int(&sentinels.sentinel[k], "SENTINEL MONITOR %s 127.0.0.1 %d 2", name, new->port);
    assert_ptr_equal(ts_sentinels_master(&sentinels, 0, old, 5000), new);
}

static void a_readonly_reply_makes_the_client_find_the_master_again(void **state)
{
    (void)state;
    ts_redis_t *new = &sentinels.set[0].node[1];
    chl_t *chl = open_on(sentinels.url, NULL);
    assert_int_equal(chl_send(chl, "c", "a", 1), 0);
    swap_roles_behind_the_clients_back();

    /* the old master answers READONLY: that send fails, the next finds the
     * new master */
    assert_int_equal(chl_send(chl, "c", "b", 1), MC_EREDIS);
    assert_int_equal(send_until_it_succeeds(chl, "c", "c"), 0);
    assert_int_equal(ts_redis_int(new, "LLEN mc:c"), 2); /* "a" (replicated) and "c" */
    assert_int_equal(chl_stats(chl)->failovers, 1);
    receive_one(chl, "c", "a");
    receive_one(chl, "c", "c");
    chl_close(chl);
}

/* A failover by hand leaves the old master up, and a master still for some
 * seconds: a client that went on writing there would lose its writes when
 * it is made a replica. The sentinels' +switch-master moves the client at
 * once: its next call goes to the new master, without an error first. */
static void a_client_leaves_a_master_as_soon_as_the_sentinels_replace_it(void **state)
{
    (void)state;
    ts_redis_t *old = &sentinels.set[0].node[0], *new = &sentinels.set[0].node[1];
    chl_t *chl = open_on(sentinels.url, NULL);
    assert_int_equal(chl_send(chl, "c", "a", 1), 0);
    assert_int_equal(ts_sentinels_failover(&sentinels, 0), 0);
    assert_ptr_equal(ts_sentinels_master(&sentinels, 0, old, FAILOVER_WAIT_MS), new);
    assert_true(ts_sentinels_is_master(old)); /* not made a replica yet */
    assert_int_equal(chl_send(chl, "c", "b", 1), 0);
    assert_int_equal(ts_redis_int(new, "LLEN mc:c"), 2); /* "a" (replicated) and "b" */
    assert_int_equal(ts_redis_int(old, "LLEN mc:c"), 1);
    assert_int_equal(chl_stats(chl)->failovers, 1);
    receive_one(chl, "c", "a");
    receive_one(chl, "c", "b");
    chl_close(chl);
}

/* The number of lists mc:ch-<i> that node holds, of n. */
static int lists_on(const ts_redis_t *node, int n)
{
    int held = 0;
    for (int i = 0; i < n; i++)
        held += ts_redis_int(node, "EXISTS mc:ch-%d", i) == 1;
    return held;
}

static void each_sentinel_shard_follows_its_own_master(void **state)
{
    (void)state;
    enum { N = 40 };
    ts_sentinel_set_t *a = &sentinels.set[0], *b = &sentinels.set[1];
    chl_t *chl = open_on(sentinels.url, NULL);
    char ch[32];
    for (int i = 0; i < N; i++) {
        snprintf(ch, sizeof(ch), "ch-%d", i);
        assert_int_equal(chl_send(chl, ch, "1", 1), 0);
    }
    int on_a = lists_on(&a->node[0], N), on_b = lists_on(&b->node[0], N);
    assert_int_equal(on_a + on_b, N);
    assert_true(on_a > 0 && on_b > 0);

    ts_redis_halt(&b->node[0], 1);
    assert_ptr_equal(ts_sentinels_master(&sentinels, 1, &b->node[0], FAILOVER_WAIT_MS),
                     &b->node[1]);
    for (int i = 0; i < N; i++) {
        snprintf(ch, sizeof(ch), "ch-%d", i);
        send_until_it_succeeds(chl, ch, "2");
    }
    /* every channel stayed on its shard: a got no new list, and b's new
     * master holds all of b's */
    assert_int_equal(lists_on(&a->node[0], N), on_a);
    assert_int_equal(lists_on(&b->node[1], N), on_b);
    assert_int_equal(chl_stats(chl)->failovers, 1);
    chl_close(chl);
}

typedef struct search {
    int done, status, port;
    size_t next;
} search_t;

static void on_found(void *arg, int status, const chl__server_t *at, size_t next, const char *why)
{
    search_t *s = arg;
    (void)why;
    s->done = 1;
    s->status = status;
    s->port = status == 0 ? at->port : 0;
    s->next = next;
}

static int search_done(void *arg)
{
    return ((const search_t *)arg)->done;
}

static void a_loop_finds_the_master_on_the_thread_pool(void **state)
{
    (void)state;
    chl__ring_t ring;
    assert_int_equal(chl__ring_init(&ring, sentinels.url), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    search_t s = {0};
    assert_non_null(chl__server_find(&loop, &ring.addrs[0], 1000, 2, on_found, &s));
    assert_true(ts_run_until(&loop, search_done, &s, 5000));
    assert_int_equal(s.status, 0);
    assert_int_equal(s.port, sentinels.set[0].node[0].port);
    assert_int_equal(s.next, 2); /* the sentinel asked first answered */

    /* a search given up on frees itself and calls nobody */
    search_t gone = {0};
    chl__server_find_cancel(chl__server_find(&loop, &ring.addrs[0], 1000, 0, on_found, &gone));
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(gone.done, 0);

    /* and one that finds nothing says why */
    ts_redis_halt(&sentinels.set[0].node[0], 1);
    search_t none = {0};
    assert_non_null(chl__server_find(&loop, &ring.addrs[0], 1000, 0, on_found, &none));
    assert_true(ts_run_until(&loop, search_done, &none, 5000));
    assert_int_equal(none.status, MC_EREDIS);
    assert_int_equal(uv_loop_close(&loop), 0);
    chl__ring_clear(&ring);
}

/* ---- the process endpoint (chl_proc_t) ---- */

typedef struct ep {
    chl_proc_t *proc;
    int up, ups, downs, adds;
    char last[128]; /* "1 text" of the last message */
    int pushed, push_status;
} ep_t;

static void ep_message(void *ctx, const uint64_t *conns, size_t n, const char *data, size_t len)
{
    ep_t *e = ctx;
    snprintf(e->last, sizeof(e->last), "%llu%s %.*s", (unsigned long long)conns[0],
             n > 1 ? "+" : "", (int)len, data);
}

static void ep_add(void *ctx, uint64_t conn, const char *group)
{
    (void)conn;
    (void)group;
    ((ep_t *)ctx)->adds++;
}

static void ep_state(void *ctx, int up)
{
    ep_t *e = ctx;
    e->up = up;
    if (up)
        e->ups++;
    else
        e->downs++;
}

static const chl_proc_handlers_t ep_handlers = {ep_message, ep_add, NULL, ep_state};

static int ep_is_up(void *arg)
{
    return ((const ep_t *)arg)->up;
}

static int ep_came_back(void *arg)
{
    const ep_t *e = arg;
    return e->up && e->downs >= 1 && e->ups >= 2;
}

static int ep_added(void *arg)
{
    return ((const ep_t *)arg)->adds >= 1;
}

static int ep_got_message(void *arg)
{
    return ((const ep_t *)arg)->last[0] != '\0';
}

static void ep_on_pushed(void *arg, int status)
{
    ep_t *e = arg;
    e->pushed++;
    e->push_status = status;
}

static int ep_push_done(void *arg)
{
    return ((const ep_t *)arg)->pushed >= 1;
}

static void ep_open(uv_loop_t *loop, ep_t *e)
{
    memset(e, 0, sizeof(*e));
    chl_config_t cfg;
    chl_config_defaults(&cfg);
    cfg.redis_urls = sentinels.url;
    assert_int_equal(chl_proc_open(&e->proc, loop, &cfg, "ifc", &ep_handlers, e), 0);
    assert_true(ts_run_until(loop, ep_is_up, e, 10000));
}

/* Pushes one message from the endpoint; its completion status. */
static int ep_push(uv_loop_t *loop, ep_t *e, const char *msg)
{
    e->pushed = 0;
    int rc = chl_proc_queue_push(e->proc, "q", msg, strlen(msg), ep_on_pushed, e);
    if (rc != 0)
        return rc;
    assert_true(ts_run_until(loop, ep_push_done, e, 5000));
    return e->push_status;
}

static void ep_finish(uv_loop_t *loop, ep_t *e)
{
    chl_proc_close(e->proc);
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

static int room_has_one_member(void *arg)
{
    return ts_redis_int(arg, "ZCARD mc:group:room") == 1;
}

static void an_endpoint_follows_a_failover_and_keeps_its_groups(void **state)
{
    (void)state;
    ts_redis_t *master = &sentinels.set[0].node[0], *replica = &sentinels.set[0].node[1];
    uv_loop_t loop;
    uv_loop_init(&loop);
    ep_t e;
    ep_open(&loop, &e);
    chl_t *w = open_on(sentinels.url, "wrk-group");
    char ch[128];
    assert_int_equal(chl_proc_channel(e.proc, 1, ch, sizeof(ch)), 0);
    assert_int_equal(chl_group_add(w, "room", ch), 0);
    assert_true(ts_run_until(&loop, ep_added, &e, 5000));

    ts_redis_halt(master, 1);
    assert_true(ts_run_until(&loop, ep_came_back, &e, FAILOVER_WAIT_MS));
    assert_ptr_equal(ts_sentinels_master(&sentinels, 0, master, 5000), replica);
    assert_int_equal(chl_proc_stats(e.proc)->failovers, 1);
    /* the endpoint told the new master about its member, which never
     * joined again, and the worker's room message reaches it */
    assert_true(ts_run_until(&loop, room_has_one_member, replica, 5000));
    int64_t deadline = mc_mono_ms() + FAILOVER_WAIT_MS;
    int rc;
    while ((rc = chl_group_send(w, "room", "after", 5, NULL)) == MC_EREDIS &&
           mc_mono_ms() < deadline)
        ts_pause_ms(20);
    assert_int_equal(rc, 0);
    assert_true(ts_run_until(&loop, ep_got_message, &e, 5000));
    assert_string_equal(e.last, "1 after");
    assert_int_equal(ep_push(&loop, &e, "job"), 0);
    assert_int_equal(ts_redis_int(replica, "LLEN mc:q"), 1);
    chl_close(w);
    ep_finish(&loop, &e);
}

static void an_endpoint_leaves_a_master_that_answers_readonly(void **state)
{
    (void)state;
    ts_redis_t *new = &sentinels.set[0].node[1];
    uv_loop_t loop;
    uv_loop_init(&loop);
    ep_t e;
    ep_open(&loop, &e);
    assert_int_equal(ep_push(&loop, &e, "before"), 0);
    swap_roles_behind_the_clients_back();
    /* the old master refuses the write; the endpoint finds the new one */
    assert_int_equal(ep_push(&loop, &e, "refused"), MC_EREDIS);
    assert_true(ts_run_until(&loop, ep_came_back, &e, FAILOVER_WAIT_MS));
    assert_int_equal(ep_push(&loop, &e, "after"), 0);
    assert_int_equal(ts_redis_int(new, "LLEN mc:q"), 2); /* "before" (replicated) and "after" */
    assert_int_equal(chl_proc_stats(e.proc)->failovers, 1);
    ep_finish(&loop, &e);
}

/* The endpoint's links are on a master that keeps answering after the
 * sentinels replaced it: they follow the announcement, not a READONLY or a
 * lost connection, and keep the process's memberships on the new master. */
static void an_endpoint_leaves_a_master_as_soon_as_the_sentinels_replace_it(void **state)
{
    (void)state;
    ts_redis_t *old = &sentinels.set[0].node[0], *new = &sentinels.set[0].node[1];
    uv_loop_t loop;
    uv_loop_init(&loop);
    ep_t e;
    ep_open(&loop, &e);
    chl_t *w = open_on(sentinels.url, "wrk-switch");
    char ch[128];
    assert_int_equal(chl_proc_channel(e.proc, 1, ch, sizeof(ch)), 0);
    assert_int_equal(chl_group_add(w, "room", ch), 0);
    assert_true(ts_run_until(&loop, ep_added, &e, 5000));
    assert_int_equal(ep_push(&loop, &e, "before"), 0);

    assert_int_equal(ts_sentinels_failover(&sentinels, 0), 0);
    assert_true(ts_run_until(&loop, ep_came_back, &e, FAILOVER_WAIT_MS));
    assert_true(ts_sentinels_is_master(old)); /* it moved before the old one was demoted */
    assert_int_equal(chl_proc_stats(e.proc)->failovers, 1);
    assert_ptr_equal(ts_sentinels_master(&sentinels, 0, old, 5000), new);
    assert_int_equal(ep_push(&loop, &e, "after"), 0);
    assert_int_equal(ts_redis_int(new, "LLEN mc:q"), 2); /* "before" (replicated) and "after" */
    assert_int_equal(ts_redis_int(old, "LLEN mc:q"), 1);
    assert_true(ts_run_until(&loop, room_has_one_member, new, 5000));
    assert_int_equal(chl_group_send(w, "room", "after", 5, NULL), 0);
    assert_true(ts_run_until(&loop, ep_got_message, &e, 5000));
    assert_string_equal(e.last, "1 after");
    chl_close(w);
    ep_finish(&loop, &e);
}

typedef struct listening {
    size_t sentinel; /* the sentinel that must have the subscriber */
} listening_t;

static int sentinel_has_a_subscriber(void *arg)
{
    return ts_sentinels_subscribers(&sentinels, ((const listening_t *)arg)->sentinel) > 0;
}

/* The endpoint listens to one sentinel at a time. When that one dies, it
 * listens to the next, and still leaves a replaced master at once. */
static void an_endpoint_hears_the_next_sentinel_when_its_own_dies(void **state)
{
    (void)state;
    ts_redis_t *old = &sentinels.set[0].node[0], *new = &sentinels.set[0].node[1];
    uv_loop_t loop;
    uv_loop_init(&loop);
    ep_t e;
    ep_open(&loop, &e);
    listening_t first = {0}, second = {1};
    assert_true(ts_run_until(&loop, sentinel_has_a_subscriber, &first, 5000));
    assert_int_equal(ts_sentinels_subscribers(&sentinels, 1), 0);

    ts_redis_halt(&sentinels.sentinel[0], 1);
    assert_true(ts_run_until(&loop, sentinel_has_a_subscriber, &second, 10000));
    assert_true(e.up); /* losing a sentinel is not losing Redis */
    assert_int_equal(e.downs, 0);

    assert_int_equal(ts_sentinels_failover(&sentinels, 0), 0);
    assert_true(ts_run_until(&loop, ep_came_back, &e, FAILOVER_WAIT_MS));
    assert_true(ts_sentinels_is_master(old)); /* the announcement moved it, not a READONLY */
    assert_ptr_equal(ts_sentinels_master(&sentinels, 0, old, 5000), new);
    assert_int_equal(ep_push(&loop, &e, "after"), 0);
    assert_int_equal(ts_redis_int(new, "LLEN mc:q"), 1);
    ep_finish(&loop, &e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(the_master_is_found_by_its_name, start_one, stop),
        cmocka_unit_test_setup_teardown(a_killed_master_is_replaced_without_reopening, start_one,
                                        stop),
        cmocka_unit_test_setup_teardown(a_readonly_reply_makes_the_client_find_the_master_again,
                                        start_one, stop),
        cmocka_unit_test_setup_teardown(each_sentinel_shard_follows_its_own_master, start_two,
                                        stop),
        cmocka_unit_test_setup_teardown(a_loop_finds_the_master_on_the_thread_pool, start_one,
                                        stop),
        cmocka_unit_test_setup_teardown(an_endpoint_follows_a_failover_and_keeps_its_groups,
                                        start_one, stop),
        cmocka_unit_test_setup_teardown(an_endpoint_leaves_a_master_that_answers_readonly,
                                        start_one, stop),
        cmocka_unit_test_setup_teardown(
            a_client_leaves_a_master_as_soon_as_the_sentinels_replace_it, start_one, stop),
        cmocka_unit_test_setup_teardown(
            an_endpoint_leaves_a_master_as_soon_as_the_sentinels_replace_it, start_one, stop),
        cmocka_unit_test_setup_teardown(an_endpoint_hears_the_next_sentinel_when_its_own_dies,
                                        start_one, stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
