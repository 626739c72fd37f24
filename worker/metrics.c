/*
 * worker/metrics.c: a worker's counters and their Prometheus text
 * (worker/metrics.h).
 */
#include "worker/metrics.h"
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds of the histogram buckets, in seconds. */
static const double bucket_s[WRK_METRICS_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1,    2.5};

static const struct {
    const char *name, *label, *help;
} families[WRK_M_FAMILIES] = {
    [WRK_M_ENVELOPES] = {"chat_worker_envelopes_total", "type",
                         "Envelopes handled, by type (\"undecodable\": dropped)."},
    [WRK_M_COMMANDS] = {"chat_worker_commands_total", "command",
                        "WebSocket commands handled (\"invalid\": refused as malformed)."},
    [WRK_M_RATE_LIMITED] = {"chat_worker_rate_limited_total", "limit",
                            "Refusals by a rate limit: chat messages of a user, new sockets of "
                            "an address."},
    [WRK_M_LOGINS] = {"chat_worker_logins_total", "result",
                      "Login attempts: ok, failed (a wrong password or no such user), refused "
                      "(throttled before any check)."},
    [WRK_M_LOGIN_REFUSALS] = {"chat_worker_login_refusals_total", "reason",
                              "Logins refused by a throttle, by which one."},
};

void wrk_metrics_count(wrk_metrics_t *m, enum wrk_metric_family f, const char *label)
{
    wrk_metric_counters_t *c = &m->families[f];
    size_t i = 0;
    while (i < c->n && strcmp(c->labels[i], label) != 0)
        i++;
    if (i == c->n) {
        if (c->n >= WRK_METRICS_LABELS - 1 && strcmp(label, "other") != 0) {
            wrk_metrics_count(m, f, "other");
            return;
        }
        c->labels[c->n++] = label;
    }
    c->counts[i]++;
}

void wrk_metrics_observe(wrk_metrics_t *m, const char *label, int64_t ns)
{
    size_t i = 0;
    while (i < m->nhandling && strcmp(m->handling[i].label, label) != 0)
        i++;
    if (i == m->nhandling) {
        if (i == WRK_METRICS_HISTOGRAMS)
            return; /* more types than a worker handles: not reached */
        m->handling[m->nhandling++].label = label;
    }
    wrk_metric_histogram_t *h = &m->handling[i];
    size_t b = 0;
    while (b < WRK_METRICS_BUCKETS && (double)ns > bucket_s[b] * 1e9)
        b++;
    h->buckets[b]++;
    h->count++;
    h->sum_ns += ns;
}

/* A growing text buffer; a failed allocation is sticky. */
typedef struct text {
    char *buf;
    size_t len, cap;
    int failed;
} text_t;

static void put(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(text_t *t, const char *fmt, ...)
{
    for (int tries = 0; !t->failed && tries < 2; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
        } else if (t->buf && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        } else {
            size_t cap = t->cap ? t->cap : 4096;
            while (cap - t->len <= (size_t)n)
                cap *= 2;
            char *b = realloc(t->buf, cap);
            if (!b)
                t->failed = 1;
            t->buf = b ? b : t->buf;
            t->cap = b ? cap : t->cap;
        }
    }
}

/* A label value with \, " and newline escaped, as the format asks. */
static const char *escaped(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (; *in && o + 3 < size; in++) {
        if (*in == '\\' || *in == '"' || *in == '\n')
            out[o++] = '\\';
        out[o++] = *in == '\n' ? 'n' : *in;
    }
    out[o] = '\0';
    return out;
}

static void head(text_t *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar(text_t *t, const char *name, const char *type, const char *help, uint64_t v)
{
    head(t, name, type, help);
    put(t, "%s %llu\n", name, (unsigned long long)v);
}

int wrk_metrics_render(const wrk_metrics_t *m, char **out, size_t *len)
{
    text_t t = {0};
    char esc[128];
    for (int f = 0; f < WRK_M_FAMILIES; f++) {
        const wrk_metric_counters_t *c = &m->families[f];
        head(&t, families[f].name, "counter", families[f].help);
        for (size_t i = 0; i < c->n; i++)
            put(&t, "%s{%s=\"%s\"} %llu\n", families[f].name, families[f].label,
                escaped(c->labels[i], esc, sizeof(esc)), (unsigned long long)c->counts[i]);
    }
    const char *hist = "chat_worker_envelope_seconds";
    head(&t, hist, "histogram", "Time to handle one envelope, by type.");
    for (size_t i = 0; i < m->nhandling; i++) {
        const wrk_metric_histogram_t *h = &m->handling[i];
        escaped(h->label, esc, sizeof(esc));
        uint64_t below = 0;
        for (size_t b = 0; b < WRK_METRICS_BUCKETS; b++) {
            below += h->buckets[b];
            put(&t, "%s_bucket{type=\"%s\",le=\"%g\"} %llu\n", hist, esc, bucket_s[b],
                (unsigned long long)below);
        }
        put(&t, "%s_bucket{type=\"%s\",le=\"+Inf\"} %llu\n", hist, esc,
            (unsigned long long)h->count);
        put(&t, "%s_sum{type=\"%s\"} %.9f\n", hist, esc, (double)h->sum_ns / 1e9);
        put(&t, "%s_count{type=\"%s\"} %llu\n", hist, esc, (unsigned long long)h->count);
    }
    scalar(&t, "chat_worker_queue_depth", "gauge",
           "Envelopes waiting in the worker queue, on every shard (sampled each second).",
           m->queue_depth);
    scalar(&t, "chat_worker_in_flight_envelopes", "gauge",
           "Envelopes this worker popped and has not acknowledged yet.", m->in_flight);
    scalar(&t, "chat_worker_requeued_envelopes_total", "counter",
           "In-flight envelopes of dead workers this worker put back in the queue.", m->requeued);
    scalar(&t, "chat_worker_batches_total", "counter",
           "Batches of envelopes popped from the queue and handled together.", m->batches);
    scalar(&t, "chat_worker_redis_errors_total", "counter", "Redis calls that failed.",
           m->redis_errors);
    scalar(&t, "chat_worker_redis_reconnects_total", "counter",
           "Connections to Redis made again after one was lost.", m->redis_reconnects);
    scalar(&t, "chat_worker_db_statements_total", "counter", "Database statements run.",
           m->db_statements);
    head(&t, "chat_worker_db_seconds_total", "counter", "Time database statements took.");
    put(&t, "chat_worker_db_seconds_total %.6f\n", (double)m->db_ns / 1e9);
    scalar(&t, "chat_worker_db_busy_retries_total", "counter",
           "Database statements retried because the database was busy.", m->db_busy_retries);
    if (m->process[0]) {
        head(&t, "chat_worker_info", "gauge", "Which worker process answered.");
        put(&t, "chat_worker_info{process=\"%s\"} 1\n", escaped(m->process, esc, sizeof(esc)));
    }
    if (t.failed || !t.buf) {
        free(t.buf);
        return MC_ENOMEM;
    }
    *out = t.buf;
    *len = t.len;
    return 0;
}
