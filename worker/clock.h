/*
 * worker/clock.h: wall-clock time as the chat stores it.
 */
#ifndef MC_WORKER_CLOCK_H
#define MC_WORKER_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (UTC), from CLOCK_REALTIME. */
int64_t wrk_now_ms(void);

/* Milliseconds from CLOCK_MONOTONIC, for intervals. */
int64_t wrk_mono_ms(void);

#endif
