/* A worker's counters (worker/metrics.c) and the Prometheus text they
 * render to. */
#include "common/error.h"
#include "worker/metrics.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static char *render(const wrk_metrics_t *m)
{
    char *text;
    size_t len;
    assert_int_equal(wrk_metrics_render(m, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    return text;
}

static void has_line(const char *text, const char *line)
{
    char want[256];
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (!strstr(text, want))
        fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void counters_render_by_label(void **state)
{
    (void)state;
    static wrk_metrics_t m;
    memset(&m, 0, sizeof(m));
    wrk_metrics_count(&m, WRK_M_COMMANDS, "join");
    wrk_metrics_count(&m, WRK_M_COMMANDS, "send");
    wrk_metrics_count(&m, WRK_M_COMMANDS, "send");
    wrk_metrics_count(&m, WRK_M_LOGIN_REFUSALS, "backoff");
    m.queue_depth = 7;
    m.db_ns = 1500000000;
    snprintf(m.process, sizeof(m.process), "wrk.h.\"1\"");
    char *text = render(&m);
    has_line(text, "# TYPE chat_worker_commands_total counter");
    has_line(text, "chat_worker_commands_total{command=\"join\"} 1");
    has_line(text, "chat_worker_commands_total{command=\"send\"} 2");
    has_line(text, "chat_worker_login_refusals_total{reason=\"backoff\"} 1");
    has_line(text, "chat_worker_queue_depth 7");
    has_line(text, "chat_worker_db_seconds_total 1.500000");
    has_line(text, "chat_worker_info{process=\"wrk.h.\\\"1\\\"\"} 1");
    free(text);
}

/* A family holds a bounded number of labels: the rest count as "other". */
static void too_many_labels_count_as_other(void **state)
{
    (void)state;
    static wrk_metrics_t m;
    memset(&m, 0, sizeof(m));
    static char names[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "c%d", i);
        wrk_metrics_count(&m, WRK_M_COMMANDS, names[i]);
    }
    assert_int_equal(m.families[WRK_M_COMMANDS].n, WRK_METRICS_LABELS);
    char *text = render(&m);
    has_line(text, "chat_worker_commands_total{command=\"c14\"} 1");
    has_line(text, "chat_worker_commands_total{command=\"other\"} 25");
    free(text);
}

/* Buckets are cumulative, +Inf is the count, the sum is in seconds. */
static void handling_time_is_a_histogram(void **state)
{
    (void)state;
    static wrk_metrics_t m;
    memset(&m, 0, sizeof(m));
    wrk_metrics_observe(&m, "websocket.receive", 200000);     /* 0.2 ms */
    wrk_metrics_observe(&m, "websocket.receive", 3000000);    /* 3 ms */
    wrk_metrics_observe(&m, "websocket.receive", 9000000000); /* 9 s */
    wrk_metrics_observe(&m, "http.request", 1000000);         /* 1 ms: on the bound */
    char *text = render(&m);
    const char *h = "chat_worker_envelope_seconds";
    char line[160];
    snprintf(line, sizeof(line), "%s_bucket{type=\"websocket.receive\",le=\"0.0005\"} 1", h);
    has_line(text, line);
    snprintf(line, sizeof(line), "%s_bucket{type=\"websocket.receive\",le=\"0.005\"} 2", h);
    has_line(text, line);
    snprintf(line, sizeof(line), "%s_bucket{type=\"websocket.receive\",le=\"2.5\"} 2", h);
    has_line(text, line);
    snprintf(line, sizeof(line), "%s_bucket{type=\"websocket.receive\",le=\"+Inf\"} 3", h);
    has_line(text, line);
    snprintf(line, sizeof(line), "%s_count{type=\"websocket.receive\"} 3", h);
    has_line(text, line);
    snprintf(line, sizeof(line), "%s_sum{type=\"websocket.receive\"} 9.003200000", h);
    has_line(text, line);
    snprintf(line, sizeof(line), "%s_bucket{type=\"http.request\",le=\"0.001\"} 1", h);
    has_line(text, line);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counters_render_by_label),
        cmocka_unit_test(too_many_labels_count_as_other),
        cmocka_unit_test(handling_time_is_a_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
