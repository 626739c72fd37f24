/* The connection layer's timers (interface/conn.c): many connections'
 * timers under the hub's one libuv timer fire once each, in the order of
 * their due times, and a timer stopped or started again in a callback
 * keeps its word. Connections here are records without sockets: timers
 * need none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <cmocka.h>

#include "common/error.h"
#include "interface/conn.h"
#include "tests/support/loop.h"

#define N 300

static struct {
    uv_loop_t loop;
    ifc_conns_t *hub;
    ifc_conn_t conns[N];
    uint64_t fired_at[N];
    int fired[N], order[N], nfired;
} t;

static size_t input(ifc_conn_t *c, const uint8_t *data, size_t len)
{
    (void)c, (void)data;
    return len;
}

static void nothing(ifc_conn_t *c)
{
    (void)c;
}

static void setup_hub(void)
{
    static ifc_conn_counts_t counts;
    memset(&t.fired, 0, sizeof(t.fired));
    t.nfired = 0;
    uv_loop_init(&t.loop);
    t.hub = calloc(1, sizeof(*t.hub));
    assert_non_null(t.hub);
    ifc_conn_hooks_t hooks = {input, nothing, nothing, nothing};
    assert_int_equal(ifc_conns_init(t.hub, &t.loop, &hooks, &counts), 0);
    memset(t.conns, 0, sizeof(t.conns));
    for (int i = 0; i < N; i++) {
        t.conns[i].hub = t.hub;
        t.conns[i].id = (uint64_t)i;
    }
}

static void teardown_hub(void)
{
    ifc_conns_close(t.hub, NULL);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t.loop), 0);
    free(t.hub);
}

static void record(ifc_conn_t *c)
{
    int i = (int)c->id;
    t.fired[i]++;
    t.fired_at[i] = uv_now(&t.loop);
    t.order[t.nfired++] = i;
}

static int all_fired(void *arg)
{
    return t.nfired >= *(int *)arg;
}

static long due_ms(int i)
{
    return 1 + (i * 37) % 97; /* 1..97 ms, in no order */
}

static void timers_fire_once_each_in_the_order_of_their_due_times(void **state)
{
    (void)state;
    setup_hub();
    for (int i = 0; i < N; i++)
        ifc_conn_timer_start(&t.conns[i], due_ms(i), record);
    /* a third started again, later, and a third stopped */
    for (int i = 0; i < N; i += 3)
        ifc_conn_timer_start(&t.conns[i], due_ms(i) + 50, record);
    for (int i = 1; i < N; i += 3)
        ifc_conn_timer_stop(&t.conns[i]);
    int want = N - (N + 1) / 3;
    assert_true(ts_run_until(&t.loop, all_fired, &want, 5000));
    ts_run_until(&t.loop, all_fired, &(int){N}, 200); /* nothing more comes */
    assert_int_equal(t.nfired, want);
    for (int i = 0; i < N; i++)
        assert_int_equal(t.fired[i], i % 3 == 1 ? 0 : 1);
    for (int k = 1; k < t.nfired; k++) {
        int a = t.order[k - 1], b = t.order[k];
        long da = due_ms(a) + (a % 3 == 0 ? 50 : 0), db = due_ms(b) + (b % 3 == 0 ? 50 : 0);
        assert_true(da <= db); /* started in one turn: due order is firing order */
    }
    teardown_hub();
}

/* Conn 0 fires at 5 ms: it stops conn 1 (due at 30 ms) and starts itself
 * again, twice; conn 2 starts conn 1 again from its own callback. */
static void again(ifc_conn_t *c)
{
    record(c);
    if (t.fired[0] == 1)
        ifc_conn_timer_stop(&t.conns[1]);
    if (t.fired[0] < 3)
        ifc_conn_timer_start(c, 5, again);
}

static void revive(ifc_conn_t *c)
{
    record(c);
    ifc_conn_timer_start(&t.conns[1], 1, record);
}

static void callbacks_stop_and_start_timers(void **state)
{
    (void)state;
    setup_hub();
    ifc_conn_timer_start(&t.conns[0], 5, again);
    ifc_conn_timer_start(&t.conns[1], 30, record);
    ifc_conn_timer_start(&t.conns[2], 60, revive);
    int want = 5;
    assert_true(ts_run_until(&t.loop, all_fired, &want, 5000));
    assert_int_equal(t.fired[0], 3);
    assert_int_equal(t.fired[2], 1);
    assert_int_equal(t.fired[1], 1); /* once only: after the revival */
    assert_true(t.fired_at[1] >= t.fired_at[2]);
    teardown_hub();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers_fire_once_each_in_the_order_of_their_due_times),
        cmocka_unit_test(callbacks_stop_and_start_timers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
