/*
 * common/clock.h: the two clocks of Multichat, in milliseconds (and the
 * monotonic one in nanoseconds, for short durations).
 *
 * Wall-clock time is what the chat stores and shows ("ts") and what message
 * deadlines in Redis are compared with across hosts; monotonic time measures
 * intervals and timeouts, immune to clock steps.
 */
#ifndef MC_COMMON_CLOCK_H
#define MC_COMMON_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (UTC), from CLOCK_REALTIME. */
int64_t mc_now_ms(void);

/* Milliseconds from CLOCK_MONOTONIC, for intervals. */
int64_t mc_mono_ms(void);

/* Nanoseconds from CLOCK_MONOTONIC, for durations too short for ms. */
int64_t mc_mono_ns(void);

#endif
