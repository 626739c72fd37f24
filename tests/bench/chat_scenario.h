/*
 * tests/bench/chat_scenario.h: what chat-bench does with its sockets.
 *
 * First every measured socket connects and joins its room. Then, by the
 * settings, one of:
 *   - the rate ladder (the default): steps of --duration ms, one per rate
 *     of --rates, each sending chat messages at that total rate from the
 *     sockets in turn, each carrying its step, a sequence number and its
 *     send time ("mcb STEP SEQ TIME_US xxx..."), and measuring every
 *     delivery to every member of the room; a step that loses a message,
 *     gets an error or passes --p99-limit runs again (--retries), then the
 *     ladder stops (unless --keep-going), and "best rate=..." ends it;
 *   - the echo ladder (--echo-path): the same steps against an echo
 *     WebSocket, no rooms, one delivery per message;
 *   - idle sockets (--idle): "idle sockets=N", then they are held for
 *     --hold ms, or until a signal;
 *   - with --flooders N, N more sockets attack while the steps run: history
 *     requests, 60 KiB frames that are no command, leaves and joins, as fast
 *     as their server reads them, coming back when it closes them.
 * SIGINT or SIGTERM ends the run after the current step.
 */
#ifndef MC_TESTS_BENCH_CHAT_SCENARIO_H
#define MC_TESTS_BENCH_CHAT_SCENARIO_H

#include "tests/bench/chat_state.h"

/* Runs the scenario the settings of b ask for, on the default loop, and
 * returns when it is over and every handle is closed. b is set up (its
 * settings, targets, rooms, rates, sockets and, unless in the echo mode,
 * cookies); b->exit_code says whether it failed. */
void scenario_run(bench_t *b);

#endif
