/*
 * tests/bench/chat_measure.h: what chat-bench measures in a step and how
 * it reports it.
 *
 * A step keeps the latency of every delivery (µs, in step_t.lat), the
 * bytes its sockets carried and the CPU time of the --cpu-pids and of
 * chat-bench itself at its start and end; this module records them, reads
 * the percentiles and writes the step's "step ..." line (and "flood ..."
 * with --flooders), one "key=value ..." line each, for scripts.
 */
#ifndef MC_TESTS_BENCH_CHAT_MEASURE_H
#define MC_TESTS_BENCH_CHAT_MEASURE_H

#include "tests/bench/chat_state.h"

/* Counts a delivery at t_us of a message sent at sent_us in s. On no
 * memory it sets b->exit_code and records nothing. */
void measure_record(bench_t *b, step_t *s, uint64_t t_us, uint64_t sent_us);

/* Sorts the latencies of s; the percentiles below want them sorted. */
void measure_sort(step_t *s);

/* The q-quantile (0 < q <= 1) of the latencies of s in ms, 0 without any. */
double measure_pct_ms(const step_t *s, double q);

/* 1 when s lost nothing, had no error and its 99th percentile is within
 * --p99-limit; 0 otherwise. */
int measure_passed(const bench_t *b, const step_t *s);

/* The CPU time so far of the --cpu-pids, then of chat-bench, in µs, into
 * cpu[0..b->npids] (0 for a process that cannot be read). */
void measure_cpu(const bench_t *b, uint64_t *cpu);

/* Prints the lines of a finished, sorted step to stdout. */
void measure_print_step(const bench_t *b, const step_t *s);

#endif
