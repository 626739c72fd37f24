/*
 * worker/metrics.h: what a worker counts, and the Prometheus text format
 * (version 0.0.4) that shows it.
 *
 * The worker's loop thread counts into its wrk_metrics_t with plain
 * stores: counters by label (envelopes by type, commands, rate-limit and
 * login refusals), a histogram of handling time by envelope type, and
 * gauges and totals the loop copies in from the channel layer and the
 * store. The metrics endpoint (worker/scrape.h) renders a copy of it, taken
 * under a lock, in its own thread.
 *
 * A leaf of the worker: every layer may count into it; it calls nothing
 * of the worker.
 */
#ifndef MC_WORKER_METRICS_H
#define MC_WORKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define WRK_METRICS_LABELS 16  /* distinct labels of one counter family */
#define WRK_METRICS_BUCKETS 12 /* histogram buckets, +Inf aside */
#define WRK_METRICS_HISTOGRAMS 8

/* Counters by one label. */
enum wrk_metric_family {
    WRK_M_ENVELOPES,      /* chat_worker_envelopes_total{type} */
    WRK_M_COMMANDS,       /* chat_worker_commands_total{command} */
    WRK_M_RATE_LIMITED,   /* chat_worker_rate_limited_total{limit} */
    WRK_M_LOGINS,         /* chat_worker_logins_total{result} */
    WRK_M_LOGIN_REFUSALS, /* chat_worker_login_refusals_total{reason} */
    WRK_M_FAMILIES
};

typedef struct wrk_metric_counters {
    const char *labels[WRK_METRICS_LABELS]; /* static strings */
    uint64_t counts[WRK_METRICS_LABELS];
    size_t n;
} wrk_metric_counters_t;

typedef struct wrk_metric_histogram {
    const char *label;                         /* static: the envelope type */
    uint64_t buckets[WRK_METRICS_BUCKETS + 1]; /* per bucket, not cumulative; the last +Inf */
    uint64_t count;
    int64_t sum_ns;
} wrk_metric_histogram_t;

typedef struct wrk_metrics {
    wrk_metric_counters_t families[WRK_M_FAMILIES];
    wrk_metric_histogram_t handling[WRK_METRICS_HISTOGRAMS]; /* by envelope type */
    size_t nhandling;
    /* Copied in by the loop before each publish. */
    uint64_t queue_depth;      /* envelopes waiting in the worker queue (sampled) */
    uint64_t in_flight;        /* envelopes this worker popped and has not acknowledged */
    uint64_t requeued;         /* envelopes of dead workers put back in the queue */
    uint64_t batches;          /* batches of envelopes popped (envelopes / batches: their size) */
    uint64_t redis_errors;     /* Redis calls that failed */
    uint64_t redis_reconnects; /* connections to Redis made again */
    uint64_t db_statements;    /* database statements run */
    uint64_t db_busy_retries;  /* statements retried because the database was busy */
    int64_t db_ns;             /* time the statements took */
    char process[96];          /* this worker's name in the channel layer */
} wrk_metrics_t;

/* Adds one to the counter of family f with label (a static string; a 17th
 * distinct label of a family counts as "other"). */
void wrk_metrics_count(wrk_metrics_t *m, enum wrk_metric_family f, const char *label);

/* Records one envelope of type label (static) handled in ns nanoseconds. */
void wrk_metrics_observe(wrk_metrics_t *m, const char *label, int64_t ns);

/* Renders m as Prometheus text into a malloc'd *out of *len bytes (the
 * caller frees it). Returns 0 or MC_ENOMEM. */
int wrk_metrics_render(const wrk_metrics_t *m, char **out, size_t *len);

#endif
