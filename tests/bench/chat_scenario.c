/*
 * tests/bench/chat_scenario.c: the steps of chat-bench, the flooders and
 * the idle hold, driven by timers on the loop (see chat_scenario.h).
 */
#include "tests/bench/chat_scenario.h"

#include "tests/bench/chat_client.h"
#include "tests/bench/chat_measure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAMP "mcb "              /* every measured message starts with it */
#define FLOOD_QUEUED (256 * 1024) /* a flooder writes while less waits in its socket */
#define RATE_LIMITED "{\"error\":\"RATE_LIMITED\"}" /* the interface's refusal */

static void start_step(bench_t *b);
static void finish(bench_t *b);

/* ---- Steps ------------------------------------------------------------------ */

/* A message text "mcb STEP SEQ TIME_US xxxx": parses it at p (after "mcb "). */
static void on_stamp(bench_t *b, const char *p, const char *end)
{
    char tmp[64];
    size_t n = (size_t)(end - p) < sizeof(tmp) - 1 ? (size_t)(end - p) : sizeof(tmp) - 1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    char *q;
    long step = strtol(tmp, &q, 10);
    strtoull(q, &q, 10);
    uint64_t sent = strtoull(q, NULL, 10);
    if (b->phase != 1 || step != b->cur) {
        if (step >= 0 && step <= b->cur && step < MAX_STEPS)
            b->steps[step].late++;
        return;
    }
    measure_record(b, &b->steps[step], now_us(), sent);
}

static void end_step(bench_t *b)
{
    step_t *s = &b->steps[b->cur];
    uv_timer_stop(&b->tick);
    measure_cpu(b, s->cpu_us);
    measure_sort(s);
    measure_print_step(b, s);
    int ok = measure_passed(b, s);
    /* A failed step runs again (--retries): on a shared machine one burst of
     * someone else's work should not end the ladder. */
    int retry = !ok && s->attempt < b->cfg.retries;
    int next = b->rate_i + 1;
    b->cur++;
    if (b->stopped || (!retry && (next >= b->nrates || (!ok && !b->cfg.keep_going)))) {
        long best = 0;
        for (int i = 0; i < b->cur; i++)
            if (measure_passed(b, &b->steps[i]) && b->steps[i].rate > best)
                best = b->steps[i].rate;
        printf("best rate=%ld p99_limit_ms=%ld\n", best, b->cfg.p99_limit_ms);
        fflush(stdout);
        finish(b);
        return;
    }
    step_t *n = &b->steps[b->cur];
    if (retry) {
        n->rate = s->rate;
        n->attempt = s->attempt + 1;
    } else {
        b->rate_i = next;
        n->rate = b->rates[next];
    }
    start_step(b);
}

static void send_one(bench_t *b, step_t *s)
{
    client_t *c = b->ready[b->next_sender++ % b->nready];
    if (c->state != C_JOINED)
        return;
    char text[MSG_MAX + 1];
    int n = snprintf(text, sizeof(text), STAMP "%d %llu %llu ", b->cur,
                     (unsigned long long)b->seq++, (unsigned long long)now_us());
    size_t len = (size_t)n;
    size_t want = (size_t)b->cfg.message_size;
    if (want > len) {
        memset(text + len, 'x', want - len);
        len = want;
    }
    if (echo_mode(b)) {
        client_send_frame(c, 0x1, text, len);
        s->expected += 1;
    } else {
        char msg[MSG_MAX + 128];
        int m =
            snprintf(msg, sizeof(msg), "{\"command\":\"send\",\"room\":%ld,\"message\":\"%.*s\"}",
                     b->room_ids[c->room], (int)len, text);
        client_send_frame(c, 0x1, msg, (size_t)m);
        s->expected += b->room_members[c->room];
    }
    s->sent++;
}

static void on_tick(uv_timer_t *t)
{
    bench_t *b = t->data;
    step_t *s = &b->steps[b->cur];
    uint64_t now = now_us();
    if (!s->send_end_us) {
        uint64_t end = s->start_us + (uint64_t)b->cfg.duration_ms * 1000;
        uint64_t until = now < end ? now : end;
        long due = (long)((double)(until - s->start_us) * (double)s->rate / 1e6);
        for (int burst = 0; s->sent < due && burst < 20000; burst++)
            send_one(b, s);
        if (now >= end || b->stopped)
            s->send_end_us = now;
        return;
    }
    /* Draining: wait for what is still due, within --drain. */
    if (s->received >= s->expected || now - s->send_end_us >= (uint64_t)b->cfg.drain_ms * 1000 ||
        b->stopped)
        end_step(b);
}

static void start_step(bench_t *b)
{
    step_t *s = &b->steps[b->cur];
    measure_cpu(b, s->cpu0_us);
    s->start_us = now_us();
    uv_timer_start(&b->tick, on_tick, 0, 1);
}

/* ---- What the sockets report ------------------------------------------------ */

static void on_text(client_t *c, const char *p, size_t len)
{
    bench_t *b = c->b;
    if (c->flood) {
        if (b->phase == 1 && len == sizeof(RATE_LIMITED) - 1 && memcmp(p, RATE_LIMITED, len) == 0)
            b->steps[b->cur].flood_refusals++;
        return;
    }
    if (echo_mode(b)) {
        if (len > 4 && memcmp(p, STAMP, 4) == 0)
            on_stamp(b, p + 4, p + len);
        return;
    }
    if (len >= 7 && memcmp(p, "{\"join\"", 7) == 0) {
        if (c->state == C_OPEN) {
            c->state = C_JOINED;
            b->joined++;
            b->room_members[c->room]++;
        }
        return;
    }
    if (len >= 8 && memcmp(p, "{\"error\"", 8) == 0) {
        if (b->phase == 1)
            b->steps[b->cur].errors++;
        if (b->complaints++ < 5)
            fprintf(stderr, "chat-bench: client %u: %.*s\n", c->idx, (int)(len < 200 ? len : 200),
                    p);
        return;
    }
    const char *m = find(p, len, "\"" STAMP);
    if (m)
        on_stamp(b, m + 5, p + len);
}

/* A socket is open: a flooder starts at once, a measured one joins its
 * room (in the echo mode there is none to join). */
static void on_opened(client_t *c)
{
    bench_t *b = c->b;
    if (c->flood) {
        c->state = C_JOINED;
        return;
    }
    if (!echo_mode(b)) {
        char j[96];
        int n = snprintf(j, sizeof(j), "{\"command\":\"join\",\"room\":%ld}", b->room_ids[c->room]);
        client_send_frame(c, 0x1, j, (size_t)n);
    } else {
        c->state = C_JOINED;
        b->joined++;
    }
}

static void on_closed(client_t *c)
{
    if (c->flood && c->b->phase == 1) {
        /* Closed on it: it comes back, as an attacker would. */
        c->b->steps[c->b->cur].flood_closes++;
        c->state = C_IDLE;
        c->closing = 0;
    }
}

/* ---- Flooders ----------------------------------------------------------------- */

/* The flooders: each one that is open sends its next frames while its
 * socket takes them; each one that was closed connects again. */
static void on_flood_tick(uv_timer_t *t)
{
    bench_t *b = t->data;
    if (b->phase != 1)
        return;
    step_t *s = &b->steps[b->cur];
    b->flood_ticks++;
    for (long i = 0; i < b->cfg.flooders; i++) {
        client_t *c = &b->flooders[i];
        if (c->state == C_IDLE) {
            /* Back every 50 ms: a flood of connections is another test. */
            if (b->flood_ticks % 50 == 0)
                client_connect(b, c);
            continue;
        }
        long room = b->room_ids[0];
        for (int k = 0; k < 64 && c->state == C_JOINED && !c->closing &&
                        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < FLOOD_QUEUED;
             k++) {
            char cmd[128];
            int n = 0;
            switch (c->flood_next++ % 4) {
            case 0:
                n = snprintf(cmd, sizeof(cmd),
                             "{\"command\":\"history\",\"room\":%ld,\"limit\":100}", room);
                break;
            case 1:
                client_send_frame(c, 0x1, b->junk, FLOOD_JUNK);
                break;
            case 2:
                n = snprintf(cmd, sizeof(cmd), "{\"command\":\"leave\",\"room\":%ld}", room);
                break;
            default:
                n = snprintf(cmd, sizeof(cmd), "{\"command\":\"join\",\"room\":%ld,\"since\":0}",
                             room);
                break;
            }
            if (n > 0)
                client_send_frame(c, 0x1, cmd, (size_t)n);
            s->flood_frames++;
        }
    }
}

static void start_flooding(bench_t *b)
{
    for (long i = 0; i < b->cfg.flooders; i++) {
        client_t *c = &b->flooders[i];
        c->b = b;
        c->flood = 1;
        c->idx = (uint32_t)(b->cfg.clients + i);
        client_connect(b, c);
    }
    uv_timer_start(&b->flood_tick, on_flood_tick, 1, 1);
}

/* ---- Phases ------------------------------------------------------------------- */

static void on_hold_done(uv_timer_t *t)
{
    finish(t->data);
}

/* Waits for the join replies, then runs the steps or holds the sockets. */
static void on_wait_joined(uv_timer_t *t)
{
    bench_t *b = t->data;
    if (b->joined < b->nready && !b->stopped && now_us() - b->t0_us < 60 * 1000000ull)
        return;
    uv_timer_stop(t);
    printf("connected clients=%ld failed=%ld joined=%ld deflate=%ld seconds=%.2f "
           "connects_per_s=%.0f\n",
           b->nready, b->failed, b->joined, b->deflate_sockets,
           (double)(now_us() - b->connect_start_us) / 1e6,
           (double)b->nready * 1e6 / (double)(now_us() - b->connect_start_us + 1));
    if (b->cfg.idle) {
        printf("idle sockets=%ld\n", b->nready);
        fflush(stdout);
        b->phase = 2;
        if (b->cfg.hold_ms > 0)
            uv_timer_start(&b->hold, on_hold_done, (uint64_t)b->cfg.hold_ms, 0);
        return;
    }
    fflush(stdout);
    if (b->nready == 0 || b->stopped) {
        b->exit_code = 1;
        finish(b);
        return;
    }
    /* Senders must have joined; keep only those. */
    long n = 0;
    for (long i = 0; i < b->nready; i++)
        if (b->ready[i]->state == C_JOINED)
            b->ready[n++] = b->ready[i];
    b->nready = n;
    b->phase = 1;
    if (b->cfg.flooders)
        start_flooding(b);
    start_step(b);
}

static void on_all_connected(bench_t *b)
{
    b->t0_us = now_us();
    b->phase = 4; /* waiting for joins: no more connects */
    uv_timer_start(&b->tick, on_wait_joined, 0, 5);
}

static void finish(bench_t *b)
{
    if (b->phase == 3)
        return;
    b->phase = 3;
    uv_timer_stop(&b->tick);
    uv_timer_stop(&b->hold);
    uv_timer_stop(&b->flood_tick);
    uv_close((uv_handle_t *)&b->tick, NULL);
    uv_close((uv_handle_t *)&b->hold, NULL);
    uv_close((uv_handle_t *)&b->flood_tick, NULL);
    for (long i = 0; i < b->cfg.flooders; i++)
        client_close(&b->flooders[i]);
    uv_close((uv_handle_t *)&b->sigint, NULL);
    uv_close((uv_handle_t *)&b->sigterm, NULL);
    for (long i = 0; i < b->cfg.clients; i++)
        client_close(&b->clients[i]);
}

static void on_signal(uv_signal_t *s, int signum)
{
    bench_t *b = s->data;
    (void)signum;
    b->stopped = 1;
    if (b->phase != 1)
        finish(b);
}

static const client_hooks_t hooks = {
    .opened = on_opened,
    .text = on_text,
    .closed = on_closed,
    .all_connected = on_all_connected,
};

void scenario_run(bench_t *b)
{
    b->hooks = &hooks;
    b->loop = uv_default_loop();
    uv_timer_init(b->loop, &b->tick);
    uv_timer_init(b->loop, &b->hold);
    uv_timer_init(b->loop, &b->flood_tick);
    b->tick.data = b->hold.data = b->flood_tick.data = b;
    uv_signal_init(b->loop, &b->sigint);
    uv_signal_init(b->loop, &b->sigterm);
    b->sigint.data = b->sigterm.data = b;
    uv_signal_start(&b->sigint, on_signal, SIGINT);
    uv_signal_start(&b->sigterm, on_signal, SIGTERM);
    b->connect_start_us = now_us();
    client_connect_more(b);
    uv_run(b->loop, UV_RUN_DEFAULT);
    uv_loop_close(b->loop);
}
