/* tests/support/endpoint.c: a process endpoint that records what it is
 * told (see endpoint.h). */
#include "tests/support/endpoint.h"
#include "tests/support/loop.h"
#include "tests/support/redis_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void record(ts_ep_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void record(ts_ep_t *e, const char *fmt, ...)
{
    if (e->nevents >= TS_EP_MAX_EVENTS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->events[e->nevents++], sizeof(e->events[0]), fmt, ap);
    va_end(ap);
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Records "msg IDS DATA", the connections in increasing order. */
static void on_message(void *ctx, const uint64_t *conns, size_t n, const char *data, size_t len)
{
    ts_ep_t *e = ctx;
    assert_int_equal(data[len], '\0');
    assert_true(n >= 1 && n <= 64);
    uint64_t ids[64];
    memcpy(ids, conns, n * sizeof(*conns));
    qsort(ids, n, sizeof(*ids), by_id);
    char list[64] = "";
    for (size_t i = 0, o = 0; i < n && o < sizeof(list); i++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%llu", i ? "," : "",
                              (unsigned long long)ids[i]);
    record(e, "msg %s %.*s", list, (int)len, data);
    e->calls++;
    e->msgs += (int)n;
    if (e->close_on_message) {
        chl_proc_close(e->proc);
        chl_proc_close(e->proc); /* twice is harmless */
    }
}

static void on_group_add(void *ctx, uint64_t conn, const char *group)
{
    ts_ep_t *e = ctx;
    record(e, "add %llu %s", (unsigned long long)conn, group);
    e->adds++;
}

static void on_group_discard(void *ctx, uint64_t conn, const char *group)
{
    ts_ep_t *e = ctx;
    record(e, "del %llu %s", (unsigned long long)conn, group);
    e->discards++;
}

static void on_redis_state(void *ctx, int up)
{
    ts_ep_t *e = ctx;
    e->state = up;
    if (up)
        e->ups++;
    else
        e->downs++;
}

const chl_proc_handlers_t ts_ep_handlers = {on_message, on_group_add, on_group_discard,
                                            on_redis_state};

int ts_ep_is_up(void *arg)
{
    return ((ts_ep_t *)arg)->state == 1;
}

void ts_ep_open(uv_loop_t *loop, ts_ep_t *e, const chl_config_t *cfg)
{
    memset(e, 0, sizeof(*e));
    assert_int_equal(chl_proc_open(&e->proc, loop, cfg, "ifc", &ts_ep_handlers, e), 0);
    assert_true(ts_run_until(loop, ts_ep_is_up, e, 5000));
    assert_int_equal(e->ups, 1);
    assert_int_equal(strncmp(chl_proc_name(e->proc), "ifc.", 4), 0);
}

void ts_ep_start(uv_loop_t *loop, ts_ep_t *e, const chl_config_t *cfg)
{
    chl_config_t defaults = ts_redis_fixture_config();
    uv_loop_init(loop);
    ts_ep_open(loop, e, cfg ? cfg : &defaults);
}

void ts_ep_finish(uv_loop_t *loop, ts_ep_t *a, ts_ep_t *b)
{
    chl_proc_close(a ? a->proc : NULL);
    chl_proc_close(b ? b->proc : NULL);
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

void ts_ep_member(const ts_ep_t *e, uint64_t conn, char *buf)
{
    assert_int_equal(chl_proc_channel(e->proc, conn, buf, 128), 0);
}

int ts_ep_one_message(void *arg)
{
    return ((ts_ep_t *)arg)->msgs >= 1;
}

int ts_ep_down_seen(void *arg)
{
    return ((ts_ep_t *)arg)->downs >= 1;
}

int ts_ep_up_again(void *arg)
{
    ts_ep_t *e = arg;
    return e->state == 1 && e->ups >= 2;
}

void ts_pushed(void *arg, int status)
{
    ts_pushes_t *r = arg;
    if (r->calls < 8)
        r->status[r->calls] = status;
    r->calls++;
}

int ts_one_pushed(void *arg)
{
    return ((ts_pushes_t *)arg)->calls >= 1;
}

int ts_three_pushed(void *arg)
{
    return ((ts_pushes_t *)arg)->calls >= 3;
}
