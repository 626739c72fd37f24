/*
 * common/clock.c: the wall clock and the monotonic clock of common/clock.h,
 * from clock_gettime(2).
 */
#include "common/clock.h"

#include <time.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mc_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t mc_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t mc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
