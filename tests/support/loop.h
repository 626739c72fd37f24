/*
 * tests/support/loop.h: waiting in a test: on a libuv loop until a
 * condition holds, or a pause between two looks at a condition.
 */
#ifndef MC_TESTS_SUPPORT_LOOP_H
#define MC_TESTS_SUPPORT_LOOP_H

#include <uv.h>

/* Runs loop until cond(arg) holds or timeout_ms have passed; returns
 * whether it held. A ticking timer ends every turn of the loop, so the
 * condition is looked at regularly even when nothing else happens. */
int ts_run_until(uv_loop_t *loop, int (*cond)(void *arg), void *arg, long timeout_ms);

/* Sleeps ms milliseconds: the pause between polls of a condition that has
 * no event to wait for, in a loop bounded by the caller's deadline. */
void ts_pause_ms(long ms);

#endif
