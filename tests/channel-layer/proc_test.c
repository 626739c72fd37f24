/* Process endpoints on one libuv loop with a blocking worker client beside
 * them: direct messages, group membership and fan-out, queue pushes,
 * forgetting connections, closing, malformed data and Redis restarts. */
#include "channel-layer/chl.h"
#include "channel-layer/link.h" /* the stall and backoff bounds */
#include "common/error.h"
#include "tests/support/loop.h"
#include "tests/support/redis_fixture.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

static ts_redis_t *const redis = &ts_redis_fixture;

#define MAX_EVENTS 64

/* What one endpoint saw, in order. */
typedef struct ep {
    chl_proc_t *proc;
    int ups, downs, state;
    int calls; /* on_message calls */
    int msgs;  /* deliveries: connections in those calls */
    int adds, discards;
    char events[MAX_EVENTS][96]; /* "msg 7 hi", "msg 1,2 hi", "add 7 room", "del 7 room" */
    int nevents;
    int close_on_message;
} ep_t;

static void record(ep_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void record(ep_t *e, const char *fmt, ...)
{
    if (e->nevents >= MAX_EVENTS)
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
    ep_t *e = ctx;
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
    ep_t *e = ctx;
    record(e, "add %llu %s", (unsigned long long)conn, group);
    e->adds++;
}

static void on_group_discard(void *ctx, uint64_t conn, const char *group)
{
    ep_t *e = ctx;
    record(e, "del %llu %s", (unsigned long long)conn, group);
    e->discards++;
}

static void on_redis_state(void *ctx, int up)
{
    ep_t *e = ctx;
    e->state = up;
    if (up)
        e->ups++;
    else
        e->downs++;
}

static const chl_proc_handlers_t handlers = {on_message, on_group_add, on_group_discard,
                                             on_redis_state};

static int is_up(void *arg)
{
    return ((ep_t *)arg)->state == 1;
}

static void open_ep(uv_loop_t *loop, ep_t *e, const chl_config_t *cfg)
{
    memset(e, 0, sizeof(*e));
    assert_int_equal(chl_proc_open(&e->proc, loop, cfg, "ifc", &handlers, e), 0);
    assert_true(ts_run_until(loop, is_up, e, 5000));
    assert_int_equal(e->ups, 1);
    assert_int_equal(strncmp(chl_proc_name(e->proc), "ifc.", 4), 0);
}

/* Closes the endpoints, runs the loop dry and checks nothing was left. */
static void finish(uv_loop_t *loop, ep_t *a, ep_t *b)
{
    chl_proc_close(a ? a->proc : NULL);
    chl_proc_close(b ? b->proc : NULL);
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

static chl_t *worker(void)
{
    chl_config_t cfg = ts_redis_fixture_config();
    chl_t *w = NULL;
    assert_int_equal(chl_open(&w, &cfg, "wrk-test"), 0);
    return w;
}

static void member(const ep_t *e, uint64_t conn, char *buf)
{
    assert_int_equal(chl_proc_channel(e->proc, conn, buf, 128), 0);
}

static int one_message(void *arg)
{
    return ((ep_t *)arg)->msgs >= 1;
}

static void direct_messages_reach_their_connection(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
    chl_t *w = worker();
    char ch[128];
    member(&a, 7, ch);
    assert_int_equal(chl_send(w, ch, "hi", 2), 0);
    assert_true(ts_run_until(&loop, one_message, &a, 5000));
    assert_string_equal(a.events[0], "msg 7 hi");
    assert_int_equal(chl_proc_stats(a.proc)->received, 1);
    char small[4];
    assert_int_equal(chl_proc_channel(a.proc, 7, small, sizeof(small)), MC_ETOOBIG);

    /* the process says it is alive */
    char hb[160];
    snprintf(hb, sizeof(hb), "mc:hb:%s", chl_proc_name(a.proc));
    assert_int_equal(ts_redis_int(redis, "EXISTS %s", hb), 1);
    chl_close(w);
    finish(&loop, &a, NULL);
}

/* chl_proc_conn_of reads back what chl_proc_channel writes, and nothing
 * else: another process's channels (one whose name starts with ours too),
 * and names that are not a connection's, name no connection of ours. */
static void channels_name_connections_of_this_process_only(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
    char ch[128];
    uint64_t conn = 0;
    member(&a, 42, ch);
    assert_int_equal(chl_proc_conn_of(a.proc, ch, strlen(ch), &conn), 0);
    assert_int_equal(conn, 42);
    assert_int_equal(chl_proc_conn_of(a.proc, ch, strlen(ch) - 1, &conn), 0);
    assert_int_equal(conn, 4); /* the length given counts, not the NUL */
    member(&a, UINT64_MAX, ch);
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
    finish(&loop, &a, NULL);
}

struct fanout_wait {
    ep_t *a, *b;
    int amsgs, bmsgs, aadds, badds;
};

static int fanout_done(void *arg)
{
    struct fanout_wait *w = arg;
    return w->a->msgs >= w->amsgs && w->b->msgs >= w->bmsgs && w->a->adds >= w->aadds &&
           w->b->adds >= w->badds;
}

static int count_events(const ep_t *e, const char *text)
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
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a, b;
    open_ep(&loop, &a, &cfg);
    open_ep(&loop, &b, &cfg);
    chl_t *w = worker();
    char m[128];
    member(&a, 1, m);
    assert_int_equal(chl_group_add(w, "room", m), 0);
    member(&a, 2, m);
    assert_int_equal(chl_group_add(w, "room", m), 0);
    member(&b, 5, m);
    assert_int_equal(chl_group_add(w, "room", m), 0);
    member(&a, 3, m);
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

    member(&a, 2, m);
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
    finish(&loop, &a, &b);
}

/* A connection added and sent to at once, without a turn of the loop in
 * between, is a member by the time the message arrives. */
static void a_membership_change_comes_ahead_of_later_messages(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
    chl_t *w = worker();
    char m[128];
    for (uint64_t c = 1; c <= 20; c++) {
        member(&a, c, m);
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
    finish(&loop, &a, NULL);
}

struct push_result {
    int calls;
    int status[8];
};

static void on_pushed(void *arg, int status)
{
    struct push_result *r = arg;
    if (r->calls < 8)
        r->status[r->calls] = status;
    r->calls++;
}

static int one_push_done(void *arg)
{
    return ((struct push_result *)arg)->calls >= 1;
}

static int pushes_done_2(void *arg)
{
    return ((struct push_result *)arg)->calls >= 2;
}

static int pushes_done(void *arg)
{
    return ((struct push_result *)arg)->calls >= 3;
}

static void queue_pushes_complete_once(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.queue_capacity = 2;
    ep_t a, b;
    open_ep(&loop, &a, &cfg);
    open_ep(&loop, &b, &cfg);
    struct push_result r = {0};
    char data[16] = "job-1";
    ts_redis_int(redis, "CONFIG RESETSTAT");
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", data, 5, on_pushed, &r), 0);
    strcpy(data, "XXXXX"); /* copied before the call returned */
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "job-2", 5, on_pushed, &r), 0);
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "job-3", 5, on_pushed, &r), 0);
    assert_int_equal(chl_proc_queue_push(a.proc, "bad name", "x", 1, on_pushed, &r), MC_EINVAL);
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", NULL, 1, on_pushed, &r), MC_EINVAL);
    assert_true(ts_run_until(&loop, pushes_done, &r, 5000));
    assert_int_equal(r.calls, 3);
    assert_int_equal(r.status[0], 0);
    assert_int_equal(r.status[1], 0);
    assert_int_equal(r.status[2], MC_EFULL);
    assert_int_equal(chl_proc_stats(a.proc)->full, 1);
    /* pushed in one loop turn: one LPUSH, no script; the one past the
     * capacity was taken back out */
    assert_int_equal(ts_redis_calls(redis, "evalsha"), 0);
    assert_int_equal(ts_redis_calls(redis, "lpush"), 1);
    assert_int_equal(ts_redis_calls(redis, "lrem"), 1);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:jobs"), 2);

    chl_t *w = worker();
    chl_message_t m;
    assert_int_equal(chl_queue_pop(w, "jobs", 1000, &m), 0);
    assert_string_equal(m.data, "job-1");
    assert_int_equal(chl_ack(w, &m), 0);
    chl_message_free(&m);

    /* a push to a process channel reaches that process's connection */
    char ch[128];
    member(&b, 9, ch);
    assert_int_equal(chl_proc_queue_push(a.proc, ch, "direct", 6, NULL, NULL), 0);
    assert_true(ts_run_until(&loop, one_message, &b, 5000));
    assert_string_equal(b.events[0], "msg 9 direct");
    chl_close(w);
    finish(&loop, &a, &b);
}

/* A consumer that waits on the newest end of a queue (BLPOP) takes the
 * newest frame the moment an LPUSH lands, as a worker's pop may take a
 * frame past the capacity before it is taken back. */
static void *take_newest(void *arg)
{
    const ts_redis_t *r = arg;
    redisContext *c = redisConnect("127.0.0.1", r->port);
    redisReply *reply = c && !c->err ? redisCommand(c, "BLPOP mc:jobs 10") : NULL;
    char *got = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
                    ? strdup(reply->element[1]->str)
                    : NULL;
    freeReplyObject(reply);
    redisFree(c);
    return got;
}

static int consumer_blocked(void *arg)
{
    (void)arg;
    redisContext *c = redisConnect("127.0.0.1", redis->port);
    redisReply *r = c && !c->err ? redisCommand(c, "INFO clients") : NULL;
    int blocked = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "blocked_clients:1");
    freeReplyObject(r);
    redisFree(c);
    return blocked;
}

static void a_frame_taken_before_it_went_back_was_pushed(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.queue_capacity = 1;
    ep_t a;
    open_ep(&loop, &a, &cfg);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, take_newest, redis), 0);
    assert_true(ts_run_until(&loop, consumer_blocked, NULL, 5000));
    struct push_result r = {0};
    ts_redis_int(redis, "CONFIG RESETSTAT");
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "job-1", 5, on_pushed, &r), 0);
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "job-2", 5, on_pushed, &r), 0);
    assert_true(ts_run_until(&loop, pushes_done_2, &r, 5000));
    void *got;
    pthread_join(t, &got);
    assert_non_null(got);
    assert_non_null(strstr(got, "job-2")); /* the one past the capacity */
    free(got);
    assert_int_equal(ts_redis_calls(redis, "lrem"), 1); /* it was asked back: gone */
    assert_int_equal(r.status[0], 0);
    assert_int_equal(r.status[1], 0); /* taken, so pushed */
    assert_int_equal(chl_proc_stats(a.proc)->full, 0);
    assert_int_equal(chl_proc_stats(a.proc)->sent, 2);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:jobs"), 1);
    finish(&loop, &a, NULL);
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
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
    chl_t *w = worker();
    char m[128];
    member(&a, 1, m);
    assert_int_equal(chl_group_add(w, "room", m), 0);
    assert_int_equal(chl_group_add(w, "room2", m), 0);
    member(&a, 2, m);
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
    finish(&loop, &a, NULL);
}

static void closing_inside_a_callback_is_safe(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
    chl_t *w = worker();
    char ch[128];
    member(&a, 1, ch);
    assert_int_equal(chl_send(w, ch, "one", 3), 0);
    assert_int_equal(chl_send(w, ch, "two", 3), 0);
    a.close_on_message = 1;
    struct push_result r = {0};
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, on_pushed, &r), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(a.msgs, 1); /* nothing after the close */
    assert_int_equal(r.calls, 1);
    assert_true(r.status[0] == 0 || r.status[0] == MC_ECLOSED);
    assert_int_equal(uv_loop_close(&loop), 0);
    chl_close(w);
}

static void pending_pushes_end_with_closed(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
    struct push_result r = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, on_pushed, &r), 0);
    chl_proc_close(a.proc);
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, on_pushed, &r), MC_ECLOSED);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 3);
    for (int i = 0; i < 3; i++)
        assert_true(r.status[i] == 0 || r.status[i] == MC_ECLOSED);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* closed before the loop ever ran, while still connecting */
    uv_loop_init(&loop);
    chl_proc_t *p = NULL;
    assert_int_equal(chl_proc_open(&p, &loop, &cfg, "ifc", &handlers, &a), 0);
    assert_int_equal(chl_proc_queue_push(p, "jobs", "x", 1, NULL, NULL), MC_EREDIS);
    chl_proc_close(p);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(chl_proc_open(&p, &loop, &cfg, "bad kind", &handlers, &a), MC_EINVAL);
}

static int two_messages(void *arg)
{
    return ((ep_t *)arg)->msgs >= 2;
}

static void malformed_and_expired_elements_are_skipped(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
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
    chl_t *w = worker();
    char ch[128];
    member(&a, 5, ch);
    assert_int_equal(chl_send(w, ch, "after", 5), 0);
    assert_true(ts_run_until(&loop, two_messages, &a, 5000));
    assert_string_equal(a.events[0], "msg 4 kept");
    assert_string_equal(a.events[1], "msg 5 after");
    assert_int_equal(chl_proc_stats(a.proc)->malformed, n + 1);
    assert_int_equal(chl_proc_stats(a.proc)->expired, 1);
    chl_close(w);
    finish(&loop, &a, NULL);
}

struct restart_wait {
    ep_t *e;
    chl_t *w;
    char ch[128];
    int sent;
};

static int down_seen(void *arg)
{
    ep_t *e = arg;
    return e->downs >= 1;
}

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
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
    chl_t *w = worker();
    struct restart_wait rw = {.e = &a, .w = w};
    member(&a, 1, rw.ch);
    assert_int_equal(chl_group_add(w, "room", rw.ch), 0);
    assert_int_equal(ts_redis_restart(redis), 0);
    assert_true(ts_run_until(&loop, down_seen, &a, 5000));
    assert_true(ts_run_until(&loop, restarted_and_delivered, &rw, 10000));
    assert_string_equal(a.events[a.nevents - 1], "msg 1 back");
    assert_true(a.ups >= 2);
    assert_true(chl_proc_stats(a.proc)->reconnects >= 1);
    assert_true(chl_stats(w)->reconnects >= 1);
    /* the scripts are there again for the endpoint's own calls */
    struct push_result r = {0};
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, on_pushed, &r), 0);
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "y", 1, on_pushed, &r), 0);
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "z", 1, on_pushed, &r), 0);
    assert_true(ts_run_until(&loop, pushes_done, &r, 5000));
    assert_int_equal(r.status[0], 0);
    /* and after a SCRIPT FLUSH, the endpoint loads them again by itself */
    ts_redis_int(redis, "SCRIPT FLUSH");
    r.calls = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "f", 1, on_pushed, &r), 0);
    assert_true(ts_run_until(&loop, pushes_done, &r, 5000));
    assert_int_equal(r.status[0], 0);
    assert_int_equal(r.status[2], 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:jobs"), 6);
    chl_close(w);
    finish(&loop, &a, NULL);
}

static int up_again(void *arg)
{
    ep_t *e = arg;
    return e->state == 1 && e->ups >= 2;
}

/* A server that stops answering (but keeps its sockets open) is noticed
 * by the stall check, and found again once it answers. */
static void a_stuck_redis_is_noticed_and_found_again(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
    assert_int_equal(kill(redis->pid, SIGSTOP), 0);
    struct push_result r = {0};
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, on_pushed, &r), 0);
    /* each link is dropped once it waited too long for its answer */
    assert_true(ts_run_until(&loop, down_seen, &a, 10000));
    assert_true(ts_run_until(&loop, one_push_done, &r, 10000));
    assert_int_equal(r.status[0], MC_EREDIS);
    assert_int_equal(kill(redis->pid, SIGCONT), 0);
    assert_true(ts_run_until(&loop, up_again, &a, 10000));
    r.calls = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "y", 1, on_pushed, &r), 0);
    assert_true(ts_run_until(&loop, pushes_done, &r, 5000));
    assert_int_equal(r.status[0], 0);
    finish(&loop, &a, NULL);
}

static int three_adds(void *arg)
{
    return ((const ep_t *)arg)->adds >= 3;
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
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
    chl_t *w = worker();
    char ch1[128], ch2[128];
    member(&a, 1, ch1);
    member(&a, 2, ch2);
    assert_int_equal(chl_group_add(w, "room", ch1), 0);
    assert_int_equal(chl_group_add(w, "room", ch2), 0);
    assert_int_equal(chl_group_add(w, "other", ch2), 0);
    assert_true(ts_run_until(&loop, three_adds, &a, 5000));

    assert_int_equal(ts_redis_restart(redis), 0); /* empty */
    assert_true(ts_run_until(&loop, down_seen, &a, 5000));
    assert_true(ts_run_until(&loop, up_again, &a, 5000));
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
    assert_true(ts_run_until(&loop, one_message, &a, 5000));
    assert_string_equal(a.events[a.nevents - 1], "msg 1,2 again");
    chl_close(w);
    finish(&loop, &a, NULL);
}

static int reported_down(void *arg)
{
    return ((const ep_t *)arg)->state == 0;
}

struct refusals {
    const ep_t *e;
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
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
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
    assert_true(ts_run_until(&loop, is_up, &a, 2 * CHL__LINK_BACKOFF_MAX_MS + 1000));
    assert_true(chl_proc_stats(a.proc)->reconnects >= 1);
    finish(&loop, &a, NULL);
}

static int got_all(void *arg)
{
    struct {
        ep_t *e;
        int want;
    } *w = arg;
    return w->e->msgs >= w->want;
}

/* Sends 8 KiB messages to connection 1 of a until its list refuses them;
 * returns how many it took. */
static int fill(chl_t *w, const ep_t *a)
{
    static char msg[8 * 1024];
    char ch[128];
    memset(msg, 'm', sizeof(msg));
    member(a, 1, ch);
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
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.process_bytes = 64 * 1024;
    ep_t a;
    open_ep(&loop, &a, &cfg);
    chl_t *w = NULL;
    assert_int_equal(chl_open(&w, &cfg, "wrk-bytes"), 0);
    char ch[128];
    member(&a, 2, ch);
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
        ep_t *e;
        int want;
    } all = {&a, first};
    assert_true(ts_run_until(&loop, got_all, &all, 5000));
    /* One more may fit: the pop the endpoint has waiting takes the first
     * message at once, before its count is taken away (chl.h). */
    int again = fill(w, &a);
    assert_true(again >= first && again <= first + 1);
    chl_close(w);
    finish(&loop, &a, NULL);
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
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
    chl_t *w = worker();
    char ch[128], list[256], count[256];
    member(&a, 1, ch);
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
        ep_t *e;
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
    long long len = 0;
    while ((len = ts_redis_int(redis, "LLEN %s", list)) < 31)
        assert_int_equal(chl_send(w, ch, "0123456789", 10), 0);
    assert_int_equal(number_at(count), stale);
    assert_int_equal(ts_redis_calls(redis, "set") + ts_redis_calls(redis, "incrby"), 0);
    assert_int_equal(chl_send(w, ch, "0123456789", 10), 0);
    assert_int_equal(number_at(count), list_bytes(list));
    assert_int_equal(number_at(count), 32 * each);
    assert_int_equal(chl_send(w, ch, "0123456789", 10), 0);
    assert_int_equal(number_at(count), 33 * each);
    chl_close(w);
    finish(&loop, &a, NULL);
}

/* A Redis out of memory refuses a push with an "OOM" error: the sender
 * learns MC_EFULL, as from a full list, and the endpoint does not count
 * it a Redis error nor take Redis for down. */
static void a_redis_out_of_memory_is_full_not_down(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
    uint64_t errors = chl_proc_stats(a.proc)->redis_errors;
    ts_redis_int(redis, "CONFIG SET maxmemory 1");
    struct push_result r = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, on_pushed, &r), 0);
    int done = ts_run_until(&loop, pushes_done, &r, 5000);
    ts_redis_int(redis, "CONFIG SET maxmemory 0");
    assert_true(done);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r.status[i], MC_EFULL);
    assert_int_equal(chl_proc_stats(a.proc)->redis_errors, errors);
    assert_int_equal(chl_proc_stats(a.proc)->full, 3);
    assert_int_equal(a.downs, 0);
    finish(&loop, &a, NULL);
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
    uv_loop_init(&loop);
    chl_config_t cfg = ts_redis_fixture_config();
    ep_t a;
    open_ep(&loop, &a, &cfg);
    chl_t *w = worker();
    char ch[128];
    member(&a, 1, ch);
    uv_timer_t busy;
    int blocked = 0;
    uv_timer_init(&loop, &busy);
    busy.data = &blocked;
    uv_timer_start(&busy, block_the_loop, 10, 0);
    assert_true(ts_run_until(&loop, flag_set, &blocked, 5000));
    assert_int_equal(chl_send(w, ch, "after", 5), 0);
    assert_true(ts_run_until(&loop, one_message, &a, 5000));
    assert_int_equal(a.downs, 0);
    assert_string_equal(a.events[0], "msg 1 after");
    uv_close((uv_handle_t *)&busy, NULL);
    chl_close(w);
    finish(&loop, &a, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(direct_messages_reach_their_connection, ts_redis_fixture_flush),
        cmocka_unit_test_setup(channels_name_connections_of_this_process_only,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(groups_fan_out_to_local_members, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_membership_change_comes_ahead_of_later_messages,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(queue_pushes_complete_once, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_frame_taken_before_it_went_back_was_pushed,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_forgotten_connection_leaves_its_groups, ts_redis_fixture_flush),
        cmocka_unit_test_setup(closing_inside_a_callback_is_safe, ts_redis_fixture_flush),
        cmocka_unit_test_setup(pending_pushes_end_with_closed, ts_redis_fixture_flush),
        cmocka_unit_test_setup(malformed_and_expired_elements_are_skipped, ts_redis_fixture_flush),
        cmocka_unit_test_setup(endpoints_survive_a_redis_restart, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_stuck_redis_is_noticed_and_found_again, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_restarted_redis_learns_the_memberships_again,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_lost_redis_is_noticed_at_once_and_found_again_promptly,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_process_list_is_bounded_in_bytes, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_process_lists_byte_count_follows_its_pops, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_redis_out_of_memory_is_full_not_down, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_busy_loop_is_not_a_dead_redis, ts_redis_fixture_flush),
    };
    return cmocka_run_group_tests(tests, ts_redis_fixture_start, ts_redis_fixture_stop);
}
