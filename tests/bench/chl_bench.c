/*
 * chl_bench: throughput of the channel layer against one Redis.
 *
 *   chl_bench REDIS_URL [MESSAGES]
 *
 * Prints one line per figure:
 *  - blocking send, then blocking receive, one round trip per message;
 *  - send and receive in turn (ping-pong through one channel);
 *  - asynchronous pushes from a process endpoint into its own list
 *    (pipelined by hiredis) and their delivery by its batched pops;
 *  - group_send to a group of 1,000 members over 4 process endpoints:
 *    group sends per second, and deliveries to members per second from the
 *    first send to the last on_message.
 * Keys use the prefix "bench:"; run it against a Redis of its own.
 */
#include "channel-layer/chl.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GROUP_MEMBERS 1000
#define GROUP_PROCS 4

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "chl_bench: %s: %s\n", what, mc_strerror(rc));
    exit(1);
}

static void report(const char *what, long n, double secs, const char *unit)
{
    printf("%-52s %9.0f %s/s  (%ld in %.3f s)\n", what, (double)n / secs, unit, n, secs);
}

typedef struct bench_ep {
    chl_proc_t *proc;
    long *delivered;
    int up;
} bench_ep_t;

/* Counts deliveries: a group message comes once with its local members. */
static void on_message(void *ctx, const uint64_t *conns, size_t n, const char *data, size_t len)
{
    (void)conns;
    (void)data;
    (void)len;
    *((bench_ep_t *)ctx)->delivered += (long)n;
}

static void on_state(void *ctx, int up)
{
    ((bench_ep_t *)ctx)->up = up;
}

static long pushed_ok, pushed_failed;

static void on_pushed(void *arg, int status)
{
    (void)arg;
    if (status == 0)
        pushed_ok++;
    else
        pushed_failed++;
}

static void run_until_count(uv_loop_t *loop, const long *count, long want)
{
    while (*count < want)
        if (uv_run(loop, UV_RUN_ONCE) == 0)
            break;
}

static void run_until_up(uv_loop_t *loop, bench_ep_t *eps, int n)
{
    for (;;) {
        int up = 1;
        for (int i = 0; i < n; i++)
            up = up && eps[i].up;
        if (up)
            return;
        uv_run(loop, UV_RUN_ONCE);
    }
}

static void blocking_figures(const chl_config_t *cfg, long n)
{
    chl_t *chl;
    int rc = chl_open(&chl, cfg, "bench-wrk");
    if (rc)
        die("open", rc);
    static const char payload[] = "{\"type\":\"websocket.receive\",\"text\":\"hello, room\"}";
    const char *const chans[] = {"bench.channel"};
    chl_message_t m;

    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if ((rc = chl_send(chl, "bench.channel", payload, sizeof(payload) - 1)) != 0)
            die("send", rc);
    double t1 = now_s();
    for (long i = 0; i < n; i++) {
        if ((rc = chl_receive(chl, chans, 1, 1000, &m)) != 0)
            die("receive", rc);
        chl_message_free(&m);
    }
    double t2 = now_s();
    report("blocking chl_send", n, t1 - t0, "msg");
    report("blocking chl_receive", n, t2 - t1, "msg");
    report("blocking send+receive (through Redis)", n, t2 - t0, "msg");

    t0 = now_s();
    for (long i = 0; i < n; i++) {
        if ((rc = chl_send(chl, "bench.channel", payload, sizeof(payload) - 1)) != 0)
            die("send", rc);
        if ((rc = chl_receive(chl, chans, 1, 1000, &m)) != 0)
            die("receive", rc);
        chl_message_free(&m);
    }
    report("ping-pong send, receive in turn", n, now_s() - t0, "msg");

    t0 = now_s();
    for (long i = 0; i < n; i++)
        if ((rc = chl_queue_push(chl, "bench.queue", payload, sizeof(payload) - 1)) != 0)
            die("queue push", rc);
    t1 = now_s();
    for (long i = 0; i < n; i++) {
        if ((rc = chl_queue_pop(chl, "bench.queue", 1000, &m)) != 0)
            die("queue pop", rc);
        if ((rc = chl_ack(chl, &m)) != 0)
            die("ack", rc);
        chl_message_free(&m);
    }
    t2 = now_s();
    report("reliable queue push", n, t1 - t0, "msg");
    report("reliable queue pop+ack", n, t2 - t1, "msg");
    chl_close(chl);
}

static void async_figures(const chl_config_t *cfg, long n)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    long delivered = 0;
    bench_ep_t ep = {.delivered = &delivered};
    chl_proc_handlers_t h = {.on_message = on_message, .on_redis_state = on_state};
    int rc = chl_proc_open(&ep.proc, &loop, cfg, "bench", &h, &ep);
    if (rc)
        die("proc open", rc);
    run_until_up(&loop, &ep, 1);
    char ch[128];
    chl_proc_channel(ep.proc, 1, ch, sizeof(ch));
    static const char payload[] = "{\"room\":\"5\",\"message\":\"hello\",\"username\":\"ann\"}";
    pushed_ok = pushed_failed = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if ((rc = chl_proc_queue_push(ep.proc, ch, payload, sizeof(payload) - 1, on_pushed,
                                      NULL)) != 0)
            die("proc push", rc);
    run_until_count(&loop, &delivered, n);
    double t1 = now_s();
    if (pushed_failed)
        fprintf(stderr, "chl_bench: %ld async pushes failed\n", pushed_failed);
    report("async push to a process list + batched pop", delivered, t1 - t0, "msg");
    chl_proc_close(ep.proc);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static void group_figures(const chl_config_t *cfg, long sends)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    long delivered = 0;
    bench_ep_t eps[GROUP_PROCS];
    chl_proc_handlers_t h = {.on_message = on_message, .on_redis_state = on_state};
    memset(eps, 0, sizeof(eps));
    for (int i = 0; i < GROUP_PROCS; i++) {
        eps[i].delivered = &delivered;
        int rc = chl_proc_open(&eps[i].proc, &loop, cfg, "bench", &h, &eps[i]);
        if (rc)
            die("proc open", rc);
    }
    run_until_up(&loop, eps, GROUP_PROCS);
    chl_t *chl;
    int rc = chl_open(&chl, cfg, "bench-grp");
    if (rc)
        die("open", rc);
    for (int i = 0; i < GROUP_MEMBERS; i++) {
        char ch[128];
        chl_proc_channel(eps[i % GROUP_PROCS].proc, (uint64_t)i, ch, sizeof(ch));
        if ((rc = chl_group_add(chl, "bench-room", ch)) != 0)
            die("group add", rc);
    }
    static const char payload[] = "{\"room\":\"5\",\"message\":\"hello\",\"username\":\"ann\"}";
    double t0 = now_s();
    for (long i = 0; i < sends; i++) {
        size_t dropped = 0;
        if ((rc = chl_group_send(chl, "bench-room", payload, sizeof(payload) - 1, &dropped)) != 0)
            die("group send", rc);
        if (dropped)
            fprintf(stderr, "chl_bench: a group send dropped %zu copies\n", dropped);
    }
    double t1 = now_s();
    run_until_count(&loop, &delivered, sends * GROUP_MEMBERS);
    double t2 = now_s();
    report("group_send, 1,000 members on 4 processes", sends, t1 - t0, "send");
    report("  deliveries to members (first send to last)", delivered, t2 - t0, "dlv");
    chl_close(chl);
    for (int i = 0; i < GROUP_PROCS; i++)
        chl_proc_close(eps[i].proc);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: chl_bench REDIS_URL [MESSAGES]\n");
        return 2;
    }
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 20000;
    if (n < 1 || n > 10000000) {
        fprintf(stderr, "chl_bench: MESSAGES must be 1..10000000\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    mc_log_init("chl_bench", MC_LOG_WARN);
    chl_config_t cfg;
    chl_config_defaults(&cfg);
    cfg.redis_urls = argv[1];
    cfg.prefix = "bench:";
    cfg.capacity = n + 1;
    cfg.process_capacity = n + 1;
    cfg.queue_capacity = n + 1;
    printf("chl_bench: %ld messages, Redis %s\n", n, argv[1]);
    blocking_figures(&cfg, n);
    async_figures(&cfg, n);
    group_figures(&cfg, n / 10 > 0 ? n / 10 : 1);
    return 0;
}
