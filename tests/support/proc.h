/*
 * tests/support/proc.h: real child processes and free loopback ports for the
 * integration tests.
 *
 * Children are started with PR_SET_PDEATHSIG, so a test that crashes never
 * leaves servers behind, and with no descriptor of the test but stdin,
 * stdout and stderr.
 */
#ifndef MC_TESTS_SUPPORT_PROC_H
#define MC_TESTS_SUPPORT_PROC_H

#include <sys/types.h>

/* Returns a TCP port on 127.0.0.1 that was free a moment ago (the kernel
 * picked it for a socket bound to port 0), or -1. */
int ts_free_port(void);

/* Starts argv[0] (searched in PATH) with argv, stdout and stderr appended to
 * log_path (or inherited when NULL). Returns the child's pid, or -1. */
pid_t ts_spawn(const char *const argv[], const char *log_path);

/* Sends sig to pid and reaps it. Returns the exit status from waitpid, or -1. */
int ts_kill_wait(pid_t pid, int sig);

/* Polls until a TCP connection to 127.0.0.1:port succeeds or timeout_ms passes.
 * Returns 0 when it connected, -1 on timeout. */
int ts_wait_port(int port, int timeout_ms);

#endif
