/*
 * tests/support/endpoint.h: a process endpoint (chl_proc_t) that records
 * what it is told, for the tests of the channel layer's endpoint files
 * (tests/channel-layer/proc*_test.c, batch_test.c, link_test.c), on the
 * Redis of tests/support/redis_fixture.h.
 *
 * Its handlers write each event as a line of text, in order: "msg 7 hi"
 * (a message for connection 7), "msg 1,2 hi" (one group message for the
 * local members 1 and 2, in increasing order), "add 7 room", "del 7 room";
 * and count calls, deliveries, memberships and Redis's ups and downs. The
 * helpers fail the test (cmocka) when a call does not do what they expect.
 */
#ifndef MC_TESTS_SUPPORT_ENDPOINT_H
#define MC_TESTS_SUPPORT_ENDPOINT_H

#include "channel-layer/chl.h"

#include <stdint.h>
#include <uv.h>

#define TS_EP_MAX_EVENTS 64

/* What one endpoint saw, in order. */
typedef struct ts_ep {
    chl_proc_t *proc;
    int ups, downs, state;
    int calls; /* on_message calls */
    int msgs;  /* deliveries: connections in those calls */
    int adds, discards;
    char events[TS_EP_MAX_EVENTS][96];
    int nevents;
    int close_on_message; /* set: the endpoint closes itself in on_message */
} ts_ep_t;

/* The recording handlers; their ctx is the ts_ep_t. */
extern const chl_proc_handlers_t ts_ep_handlers;

/* Opens e ("ifc" endpoint) on loop with cfg and runs the loop until Redis
 * is up for it. */
void ts_ep_open(uv_loop_t *loop, ts_ep_t *e, const chl_config_t *cfg);

/* Initialises loop, then opens e on it as ts_ep_open does, with cfg or,
 * when cfg is NULL, the settings of the fixture's Redis. */
void ts_ep_start(uv_loop_t *loop, ts_ep_t *e, const chl_config_t *cfg);

/* Closes the endpoints a and b (either may be NULL), runs the loop dry and
 * checks that nothing was left on it; then closes the loop. */
void ts_ep_finish(uv_loop_t *loop, ts_ep_t *a, ts_ep_t *b);

/* Writes the channel of e's connection conn into buf (128 bytes). */
void ts_ep_member(const ts_ep_t *e, uint64_t conn, char *buf);

/* Conditions for ts_run_until (tests/support/loop.h); arg is a ts_ep_t. */
int ts_ep_is_up(void *arg);       /* Redis is up for it */
int ts_ep_one_message(void *arg); /* it had a delivery */
int ts_ep_down_seen(void *arg);   /* it was told Redis is down */
int ts_ep_up_again(void *arg);    /* up, after being up before */

/* The completions of pushes (chl_send_cb) counted, the first 8 statuses
 * kept: pass ts_pushed as the callback and a ts_pushes_t as its arg. */
typedef struct ts_pushes {
    int calls;
    int status[8];
} ts_pushes_t;

void ts_pushed(void *arg, int status);
int ts_one_pushed(void *arg);   /* a condition: one completion came */
int ts_three_pushed(void *arg); /* three came */

#endif
