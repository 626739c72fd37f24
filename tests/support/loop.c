/* tests/support/loop.c: waiting in a test (see loop.h). */
#include "tests/support/loop.h"
#include "common/clock.h"

#include <time.h>

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

int ts_run_until(uv_loop_t *loop, int (*cond)(void *arg), void *arg, long timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    int64_t t0 = mc_mono_ms();
    int ok;
    while (!(ok = cond(arg)) && mc_mono_ms() - t0 < timeout_ms)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

void ts_pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
