/* A process endpoint's queue pushes (channel-layer/batch.c, request.c):
 * a loop turn's pushes go in one LPUSH and each completes once, those past
 * the capacity taken back out unless a worker took them first; pushes
 * pending at a close end with MC_ECLOSED; a Redis out of memory is full,
 * not down; frames with more behind them are marked. */
#include "channel-layer/chl.h"
#include "common/error.h"
#include "tests/support/endpoint.h"
#include "tests/support/loop.h"
#include "tests/support/redis_fixture.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static ts_redis_t *const redis = &ts_redis_fixture;

static void queue_pushes_complete_once(void **state)
{
    (void)state;
    uv_loop_t loop;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.queue_capacity = 2;
    ts_ep_t a, b;
    ts_ep_start(&loop, &a, &cfg);
    ts_ep_open(&loop, &b, &cfg);
    ts_pushes_t r = {0};
    char data[16] = "job-1";
    ts_redis_int(redis, "CONFIG RESETSTAT");
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", data, 5, ts_pushed, &r), 0);
    strcpy(data, "XXXXX"); /* copied before the call returned */
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "job-2", 5, ts_pushed, &r), 0);
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "job-3", 5, ts_pushed, &r), 0);
    assert_int_equal(chl_proc_queue_push(a.proc, "bad name", "x", 1, ts_pushed, &r), MC_EINVAL);
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", NULL, 1, ts_pushed, &r), MC_EINVAL);
    assert_true(ts_run_until(&loop, ts_three_pushed, &r, 5000));
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

    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    chl_message_t m;
    assert_int_equal(chl_queue_pop(w, "jobs", 1000, &m), 0);
    assert_string_equal(m.data, "job-1");
    assert_int_equal(chl_ack(w, &m), 0);
    chl_message_free(&m);

    /* a push to a process channel reaches that process's connection */
    char ch[128];
    ts_ep_member(&b, 9, ch);
    assert_int_equal(chl_proc_queue_push(a.proc, ch, "direct", 6, NULL, NULL), 0);
    assert_true(ts_run_until(&loop, ts_ep_one_message, &b, 5000));
    assert_string_equal(b.events[0], "msg 9 direct");
    chl_close(w);
    ts_ep_finish(&loop, &a, &b);
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

static int two_pushed(void *arg)
{
    return ((ts_pushes_t *)arg)->calls >= 2;
}

static void a_frame_taken_before_it_went_back_was_pushed(void **state)
{
    (void)state;
    uv_loop_t loop;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.queue_capacity = 1;
    ts_ep_t a;
    ts_ep_start(&loop, &a, &cfg);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, take_newest, redis), 0);
    assert_true(ts_run_until(&loop, consumer_blocked, NULL, 5000));
    ts_pushes_t r = {0};
    ts_redis_int(redis, "CONFIG RESETSTAT");
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "job-1", 5, ts_pushed, &r), 0);
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "job-2", 5, ts_pushed, &r), 0);
    assert_true(ts_run_until(&loop, two_pushed, &r, 5000));
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
    ts_ep_finish(&loop, &a, NULL);
}

static void pending_pushes_end_with_closed(void **state)
{
    (void)state;
    uv_loop_t loop;
    chl_config_t cfg = ts_redis_fixture_config();
    ts_ep_t a;
    ts_ep_start(&loop, &a, &cfg);
    ts_pushes_t r = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, ts_pushed, &r), 0);
    chl_proc_close(a.proc);
    assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, ts_pushed, &r), MC_ECLOSED);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 3);
    for (int i = 0; i < 3; i++)
        assert_true(r.status[i] == 0 || r.status[i] == MC_ECLOSED);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* closed before the loop ever ran, while still connecting */
    uv_loop_init(&loop);
    chl_proc_t *p = NULL;
    assert_int_equal(chl_proc_open(&p, &loop, &cfg, "ifc", &ts_ep_handlers, &a), 0);
    assert_int_equal(chl_proc_queue_push(p, "jobs", "x", 1, NULL, NULL), MC_EREDIS);
    chl_proc_close(p);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(chl_proc_open(&p, &loop, &cfg, "bad kind", &ts_ep_handlers, &a), MC_EINVAL);
}

/* A Redis out of memory refuses a push with an "OOM" error: the sender
 * learns MC_EFULL, as from a full list, and the endpoint does not count
 * it a Redis error nor take Redis for down. */
static void a_redis_out_of_memory_is_full_not_down(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    uint64_t errors = chl_proc_stats(a.proc)->redis_errors;
    ts_redis_int(redis, "CONFIG SET maxmemory 1");
    ts_pushes_t r = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, ts_pushed, &r), 0);
    int done = ts_run_until(&loop, ts_three_pushed, &r, 5000);
    ts_redis_int(redis, "CONFIG SET maxmemory 0");
    assert_true(done);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r.status[i], MC_EFULL);
    assert_int_equal(chl_proc_stats(a.proc)->redis_errors, errors);
    assert_int_equal(chl_proc_stats(a.proc)->full, 3);
    assert_int_equal(a.downs, 0);
    ts_ep_finish(&loop, &a, NULL);
}

/* The first letter of each frame waiting in mc:jobs, oldest first (the
 * next a worker takes): 'M' for one marked as having more behind it. */
static void letters(char *out, size_t size)
{
    redisContext *c = redisConnect("127.0.0.1", redis->port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "LRANGE mc:jobs 0 -1");
    assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements < size);
    for (size_t i = 0; i < r->elements; i++)
        out[i] = r->element[r->elements - 1 - i]->str[0];
    out[r->elements] = '\0';
    freeReplyObject(r);
    redisFree(c);
}

/* Pushes one frame in a loop turn of its own and waits for its answer. */
static void push_one(uv_loop_t *loop, ts_ep_t *a, const char *m)
{
    ts_pushes_t r = {0};
    assert_int_equal(chl_proc_queue_push(a->proc, "jobs", m, strlen(m), ts_pushed, &r), 0);
    assert_true(ts_run_until(loop, ts_one_pushed, &r, 5000));
    assert_int_equal(r.status[0], 0);
}

/* The frames of one LPUSH but the newest have others behind them, and are
 * marked so (a worker that takes one knows to take a batch next); after
 * an LPUSH that found others waiting (its answer longer than its frames),
 * the next push marks its newest frame too, until one finds the queue
 * empty again. */
static void frames_with_more_behind_them_are_marked(void **state)
{
    (void)state;
    uv_loop_t loop;
    ts_ep_t a;
    ts_ep_start(&loop, &a, NULL);
    ts_pushes_t r = {0};
    char seen[16];
    ts_redis_int(redis, "CONFIG RESETSTAT");
    for (int i = 0; i < 3; i++)
        assert_int_equal(chl_proc_queue_push(a.proc, "jobs", "x", 1, ts_pushed, &r), 0);
    assert_true(ts_run_until(&loop, ts_three_pushed, &r, 5000));
    assert_int_equal(ts_redis_calls(redis, "lpush"), 1);
    letters(seen, sizeof(seen));
    assert_string_equal(seen, "MMm");
    push_one(&loop, &a, "y"); /* the last LPUSH found the queue empty */
    letters(seen, sizeof(seen));
    assert_string_equal(seen, "MMmm");
    push_one(&loop, &a, "z"); /* the last found three waiting */
    letters(seen, sizeof(seen));
    assert_string_equal(seen, "MMmmM");
    ts_redis_int(redis, "DEL mc:jobs");
    push_one(&loop, &a, "z"); /* as the last said; this one finds none */
    push_one(&loop, &a, "z");
    letters(seen, sizeof(seen));
    assert_string_equal(seen, "Mm");
    /* A worker takes them as messages like any other. */
    chl_t *w = ts_redis_fixture_client(NULL, "wrk-test");
    chl_message_t m;
    assert_int_equal(chl_queue_pop(w, "jobs", 1000, &m), 0);
    assert_string_equal(m.data, "z");
    assert_string_equal(m.channel, "jobs");
    assert_int_equal(chl_ack(w, &m), 0);
    chl_message_free(&m);
    chl_close(w);
    ts_ep_finish(&loop, &a, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(queue_pushes_complete_once, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_frame_taken_before_it_went_back_was_pushed,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(pending_pushes_end_with_closed, ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_redis_out_of_memory_is_full_not_down, ts_redis_fixture_flush),
        cmocka_unit_test_setup(frames_with_more_behind_them_are_marked, ts_redis_fixture_flush),
    };
    return cmocka_run_group_tests(tests, ts_redis_fixture_start, ts_redis_fixture_stop);
}
