/* The reliable queues of the blocking client (channel-layer/sync_queue.c):
 * pops move messages in flight until acknowledged, batches of both in one
 * round trip, a whole batch acknowledged in one command, an idle worker
 * waits alone, pops keep the heartbeat alive, and a dead worker's
 * messages are requeued once. */
#include "channel-layer/chl.h"
#include "common/clock.h"
#include "common/error.h"
#include "tests/support/endpoint.h"
#include "tests/support/loop.h"
#include "tests/support/redis_fixture.h"

#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

static ts_redis_t *const redis = &ts_redis_fixture;

/* Pushes n messages "<prefix><i>" onto jobs. Returns 0 or the first
 * failure (a forked child cannot assert). */
static int push_n(chl_t *chl, const char *prefix, int n)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        char m[32];
        snprintf(m, sizeof(m), "%s%d", prefix, i);
        rc = chl_queue_push(chl, "jobs", m, strlen(m));
    }
    return rc;
}

struct pushes_of {
    ts_pushes_t done;
    int n;
};

static int all_pushed(void *arg)
{
    const struct pushes_of *p = arg;
    return p->done.calls >= p->n;
}

/* Pushes n messages "<prefix><i>" onto jobs as an interface does: from a
 * process endpoint, in one loop turn, so in one LPUSH whose frames but
 * the newest are marked as having more behind them (batch.h). */
static void push_together(const char *prefix, int n)
{
    uv_loop_t loop;
    ts_ep_t e;
    ts_ep_start(&loop, &e, NULL);
    struct pushes_of p = {.n = n};
    for (int i = 0; i < n; i++) {
        char m[32];
        snprintf(m, sizeof(m), "%s%d", prefix, i);
        assert_int_equal(chl_proc_queue_push(e.proc, "jobs", m, strlen(m), ts_pushed, &p.done), 0);
    }
    assert_true(ts_run_until(&loop, all_pushed, &p, 5000));
    for (int i = 0; i < n && i < 8; i++)
        assert_int_equal(p.done.status[i], 0);
    ts_ep_finish(&loop, &e, NULL);
}

static void queue_pop_moves_to_in_flight_until_acked(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(&(chl_config_t){.redis_urls = redis->url}, "wrk-a");
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
    chl_t *chl = ts_redis_fixture_client(&(chl_config_t){.redis_urls = redis->url}, "wrk-b");
    assert_int_equal(push_n(chl, "m", 5), 0);
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
    /* Scripts flushed: the first still comes (BLMOVE), then the batch
     * script, loaded again, brings the rest. */
    push_together("again", 3);
    ts_redis_int(redis, "SCRIPT FLUSH"); /* answers OK, not a number */
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, NULL, 0, a, 10, &na), 0);
    assert_int_equal(na, 1);
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, a, na, b, 10, &nb), 0);
    assert_int_equal(nb, 2);
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

/* Whether the in-flight list of client wrk holds an element whose payload
 * is data. */
static int in_flight(const char *wrk, const char *data)
{
    redisContext *c = redisConnect("127.0.0.1", redis->port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "LRANGE mc:inflight:%s 0 -1", wrk);
    assert_true(r && r->type == REDIS_REPLY_ARRAY);
    int found = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const char *nl = strchr(r->element[i]->str, '\n');
        found += nl && strcmp(nl + 1, data) == 0;
    }
    freeReplyObject(r);
    redisFree(c);
    return found;
}

/* A batch acknowledged whole is one LPOP: its messages are the newest
 * elements in flight. A part of one goes by its elements, one LREM each,
 * and leaves the others in flight. */
static void a_whole_batch_is_acknowledged_in_one_command(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(&(chl_config_t){.redis_urls = redis->url}, "wrk-k");
    chl_message_t a[CHL_QUEUE_BATCH], b[CHL_QUEUE_BATCH];
    size_t na = 0, nb = 0;
    assert_int_equal(push_n(chl, "m", 6), 0);
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, NULL, 0, a, 3, &na), 0);
    assert_true(na >= 2);
    ts_redis_int(redis, "CONFIG RESETSTAT");
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, a, na, b, 3, &nb), 0);
    assert_int_equal(nb, 3);
    assert_int_equal(ts_redis_calls(redis, "lpop"), 1);
    assert_int_equal(ts_redis_calls(redis, "lrem"), 0);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:inflight:wrk-k"), 3);
    for (size_t i = 0; i < na; i++)
        assert_int_equal(in_flight("wrk-k", a[i].data), 0);
    free_all(a, na);
    /* The oldest of the three only: an LPOP would take the newest. */
    ts_redis_int(redis, "CONFIG RESETSTAT");
    int rc = chl_queue_next(chl, "jobs", 20, b, 1, a, 3, &na);
    assert_true(rc == 0 || rc == MC_EAGAIN);
    assert_int_equal(ts_redis_calls(redis, "lrem"), 1);
    assert_int_equal(ts_redis_calls(redis, "lpop"), 0);
    assert_int_equal(in_flight("wrk-k", b[0].data), 0);
    assert_int_equal(in_flight("wrk-k", b[1].data), 1);
    assert_int_equal(in_flight("wrk-k", b[2].data), 1);
    /* The other two, with what came since: not a whole move, by LREM. */
    memcpy(&a[na], &b[1], 2 * sizeof(b[0]));
    ts_redis_int(redis, "CONFIG RESETSTAT");
    chl_message_t c[CHL_QUEUE_BATCH];
    size_t nc = 0;
    rc = chl_queue_next(chl, "jobs", 20, a, na + 2, c, 3, &nc);
    assert_true(rc == MC_EAGAIN && nc == 0);
    assert_int_equal(ts_redis_calls(redis, "lrem"), (long)na + 2);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:inflight:wrk-k"), 0);
    free_all(a, na + 2);
    chl_message_free(&b[0]);
    chl_close(chl);
}

/* A worker that found the queue empty waits for the next envelope with
 * one BLMOVE, a plain command, and nothing else: whether more came behind
 * it, the envelope's mark says. One that took a marked envelope takes the
 * rest in one script call, oldest first, without waiting. */
static void a_worker_waits_alone_when_idle_and_takes_batches_when_not(void **state)
{
    (void)state;
    chl_t *chl = ts_redis_fixture_client(&(chl_config_t){.redis_urls = redis->url}, "wrk-w");
    chl_message_t a[CHL_QUEUE_BATCH], b[CHL_QUEUE_BATCH];
    size_t na = 0, nb = 0;
    assert_int_equal(chl_queue_push(chl, "jobs", "m0", 2), 0);
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, NULL, 0, a, 10, &na), 0);
    assert_int_equal(na, 1); /* the first look takes what is there: the queue is empty now */
    push_together("m1-", 1);
    ts_redis_int(redis, "CONFIG RESETSTAT"); /* the pops' commands only */
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, a, na, b, 10, &nb), 0);
    assert_int_equal(nb, 1);
    assert_string_equal(b[0].data, "m1-0");
    assert_int_equal(ts_redis_calls(redis, "blmove"), 1);
    assert_int_equal(ts_redis_calls(redis, "lmove"), 0); /* no look behind it */
    assert_int_equal(ts_redis_calls(redis, "evalsha"), 0);
    free_all(a, na);
    /* Unmarked, it had none behind it: the next call waits again. */
    push_together("m2-", 1);
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, b, nb, a, 10, &na), 0);
    assert_int_equal(na, 1);
    assert_string_equal(a[0].data, "m2-0");
    assert_int_equal(ts_redis_calls(redis, "blmove"), 2);
    assert_int_equal(ts_redis_calls(redis, "evalsha"), 0);
    free_all(b, nb);
    /* Three come at once: BLMOVE brings the first, marked, and the next
     * call takes the other two in one script call without waiting. */
    push_together("m", 3);
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, a, na, b, 10, &nb), 0);
    assert_int_equal(nb, 1);
    assert_string_equal(b[0].data, "m0");
    free_all(a, na);
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, NULL, 0, a, 10, &na), 0);
    assert_int_equal(na, 2);
    assert_string_equal(a[0].data, "m1");
    assert_string_equal(a[1].data, "m2");
    assert_int_equal(ts_redis_calls(redis, "blmove"), 3);
    assert_int_equal(ts_redis_calls(redis, "lmove"), 0);
    assert_int_equal(ts_redis_calls(redis, "evalsha"), 1);
    assert_int_equal(ts_redis_calls(redis, "rpop"), 1);
    /* in flight newest first, as requeueing expects */
    assert_int_equal(ts_redis_int(redis, "LLEN mc:inflight:wrk-w"), 3);
    redisContext *c = redisConnect("127.0.0.1", redis->port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "LINDEX mc:inflight:wrk-w 0");
    assert_true(r && r->type == REDIS_REPLY_STRING && strstr(r->str, "\nm2"));
    freeReplyObject(r);
    r = redisCommand(c, "LINDEX mc:inflight:wrk-w 2");
    assert_true(r && r->type == REDIS_REPLY_STRING && strstr(r->str, "\nm0"));
    freeReplyObject(r);
    redisFree(c);
    free_all(a, na);
    free_all(b, nb);
    chl_close(chl);
}

/* Takes the next batch of chl while a child process pushes five
 * messages "m<i>", and checks that the batch is want[0..nwant) and then
 * those five, in order. */
static void next_batch_takes_what_came_meanwhile(chl_t *chl, const chl_config_t *cfg,
                                                 const chl_message_t *done, size_t ndone,
                                                 const char *const *want, size_t nwant)
{
    chl_message_t b[CHL_QUEUE_BATCH];
    size_t nb = 0;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        chl_t *pusher = NULL;
        _exit(chl_open(&pusher, cfg, "ifc-p") == 0 && push_n(pusher, "m", 5) == 0 ? 0 : 1);
    }
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, done, ndone, b, 10, &nb), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(nb, nwant + 5);
    for (size_t i = 0; i < nb; i++) {
        char m[32];
        snprintf(m, sizeof(m), "m%zu", i - nwant);
        assert_string_equal(b[i].data, i < nwant ? want[i] : m);
    }
    free_all(b, nb);
}

/* Five pushed by another process while a client that gathers is busy
 * with a batch of two come in its next batch, all five, in order: it
 * waits out its gathering time (0.4 s here, far longer than five pushes
 * take) before it looks. So does one that waited for an envelope marked
 * as having more behind it: it takes that one alone, then gathers. A
 * setting that could let the heartbeat lapse is refused. */
static void a_client_that_gathers_takes_what_came_meanwhile_in_one_batch(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.gather_us = 400000;
    chl_t *chl = ts_redis_fixture_client(&cfg, "wrk-g");
    chl_message_t a[CHL_QUEUE_BATCH];
    size_t na = 0;
    assert_int_equal(push_n(chl, "first", 2), 0);
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, NULL, 0, a, 10, &na), 0);
    assert_int_equal(na, 2); /* a new client's first look takes a batch */
    next_batch_takes_what_came_meanwhile(chl, &cfg, a, na, NULL, 0);
    free_all(a, na);
    /* Idle: the next waits. Two pushed together: it waits for the first,
     * marked, alone, and gathers the second with the five. */
    assert_int_equal(chl_queue_next(chl, "jobs", 20, NULL, 0, a, 10, &na), MC_EAGAIN);
    push_together("pair", 2);
    assert_int_equal(chl_queue_next(chl, "jobs", 1000, NULL, 0, a, 10, &na), 0);
    assert_int_equal(na, 1);
    assert_string_equal(a[0].data, "pair0");
    const char *pair1 = "pair1";
    next_batch_takes_what_came_meanwhile(chl, &cfg, a, na, &pair1, 1);
    free_all(a, na);
    chl_close(chl);
    chl_t *lapsing = NULL;
    cfg.heartbeat_ttl_ms = 1000;
    cfg.gather_us = 251000;
    assert_int_equal(chl_open(&lapsing, &cfg, "wrk-h"), MC_EINVAL);
}

/* A worker popping a steady stream writes its heartbeat every so often,
 * not with every pop, and never lets it lapse. */
static void pops_keep_the_heartbeat_alive_without_writing_it_each_time(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.heartbeat_ttl_ms = 400;
    chl_t *chl = ts_redis_fixture_client(&cfg, "wrk-beat");
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
    long sets = ts_redis_calls(redis, "set");
    assert_true(sets >= 3);
    assert_true(sets < pops / 4);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:workers wrk-beat"), 1);
    chl_close(chl);
}

/* A child pops a message and is killed before it acks; a live worker finds
 * it once the child's heartbeat expired and puts the message back. The
 * message was pushed with another behind it, so marked (batch.h): marked
 * or not, a queue's element goes back. */
static void dead_workers_in_flight_messages_are_requeued(void **state)
{
    (void)state;
    chl_config_t cfg = ts_redis_fixture_config();
    cfg.heartbeat_ttl_ms = 200;
    chl_t *live = ts_redis_fixture_client(&cfg, "wrk-live");
    push_together("precious", 2);
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
    assert_int_equal(ts_redis_int(redis, "LLEN mc:jobs"), 1);
    assert_int_equal(ts_redis_int(redis, "LLEN mc:inflight:wrk-dead"), 1);
    redisContext *rc = redisConnect("127.0.0.1", redis->port);
    assert_true(rc && !rc->err);
    redisReply *r = redisCommand(rc, "LINDEX mc:inflight:wrk-dead 0");
    assert_true(r && r->type == REDIS_REPLY_STRING && r->str[0] == 'M');
    freeReplyObject(r);
    redisFree(rc);

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
            ts_pause_ms(10);
        total += requeued;
    }
    assert_int_equal(total, 1);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:workers wrk-dead"), 0);
    assert_int_equal(ts_redis_int(redis, "SISMEMBER mc:workers wrk-live"), 1);
    chl_message_t m;
    assert_int_equal(chl_queue_pop(live, "jobs", 1000, &m), 0);
    assert_string_equal(m.data, "precious0");
    assert_int_equal(chl_ack(live, &m), 0);
    chl_message_free(&m);
    assert_int_equal(chl_requeue_dead(live, &requeued), 0);
    assert_int_equal(requeued, 0);
    chl_close(live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(queue_pop_moves_to_in_flight_until_acked, ts_redis_fixture_flush),
        cmocka_unit_test_setup(queue_next_acknowledges_a_batch_and_fetches_the_next,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_whole_batch_is_acknowledged_in_one_command,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_worker_waits_alone_when_idle_and_takes_batches_when_not,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(a_client_that_gathers_takes_what_came_meanwhile_in_one_batch,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(pops_keep_the_heartbeat_alive_without_writing_it_each_time,
                               ts_redis_fixture_flush),
        cmocka_unit_test_setup(dead_workers_in_flight_messages_are_requeued,
                               ts_redis_fixture_flush),
    };
    return cmocka_run_group_tests(tests, ts_redis_fixture_start, ts_redis_fixture_stop);
}
