/*
 * tests/support/loop.h: waiting on a libuv loop in a test.
 */
#ifndef MC_TESTS_SUPPORT_LOOP_H
#define MC_TESTS_SUPPORT_LOOP_H

#include <uv.h>

/* Runs loop until cond(arg) holds or timeout_ms have passed; returns
 * whether it held. A ticking timer ends every turn of the loop, so the
 * condition is looked at regularly even when nothing else happens. */
int ts_run_until(uv_loop_t *loop, int (*cond)(void *arg), void *arg, long timeout_ms);

#endif
