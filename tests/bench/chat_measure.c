/*
 * tests/bench/chat_measure.c: latencies, percentiles, CPU time and the
 * line of each step of chat-bench (see chat_measure.h).
 */
#include "tests/bench/chat_measure.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void measure_sort(step_t *s)
{
    if (s->nlat)
        qsort(s->lat, s->nlat, sizeof(*s->lat), cmp_u32);
}

double measure_pct_ms(const step_t *s, double q)
{
    if (!s->nlat)
        return 0;
    size_t i = (size_t)ceil(q * (double)s->nlat);
    if (i < 1)
        i = 1;
    if (i > s->nlat)
        i = s->nlat;
    return s->lat[i - 1] / 1000.0;
}

int measure_passed(const bench_t *b, const step_t *s)
{
    return s->received >= s->expected && s->errors == 0 &&
           measure_pct_ms(s, 0.99) <= (double)b->cfg.p99_limit_ms;
}

void measure_record(bench_t *b, step_t *s, uint64_t t_us, uint64_t sent_us)
{
    uint64_t d = t_us > sent_us ? t_us - sent_us : 0;
    if (s->nlat == s->caplat) {
        size_t cap = s->caplat ? 2 * s->caplat : 65536;
        uint32_t *n = realloc(s->lat, cap * sizeof(*n));
        if (!n) {
            b->exit_code = 1;
            return;
        }
        s->lat = n;
        s->caplat = cap;
    }
    s->lat[s->nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    s->received++;
    s->last_rx_us = t_us;
}

/* CPU time of process pid so far, user and system, µs (0 when unknown). */
static uint64_t proc_cpu_us(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* After "pid (name) ": the state and fields 4 to 13, then utime and stime. */
    const char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (!p || !p[1] ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (uint64_t)(ut + st) * 1000000u / (uint64_t)sysconf(_SC_CLK_TCK);
}

static uint64_t self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

void measure_cpu(const bench_t *b, uint64_t *cpu)
{
    for (int i = 0; i < b->npids; i++)
        cpu[i] = proc_cpu_us(b->pids[i]);
    cpu[b->npids] = self_cpu_us();
}

void measure_print_step(const bench_t *b, const step_t *s)
{
    double span =
        (double)((s->last_rx_us > s->start_us ? s->last_rx_us : s->send_end_us) - s->start_us) /
        1e6;
    double secs = (double)(s->send_end_us - s->start_us) / 1e6;
    long lost = s->expected - s->received;
    printf("step rate=%ld attempt=%d clients=%ld rooms=%d seconds=%.2f sent=%ld sent_per_s=%.0f "
           "expected=%ld received=%ld lost=%ld late=%ld errors=%ld deliveries_per_s=%.0f "
           "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f",
           s->rate, s->attempt, b->nready, b->nrooms, secs, s->sent, (double)s->sent / secs,
           s->expected, s->received, lost, s->late, s->errors,
           (double)s->received / (span > 0 ? span : 1e-9), measure_pct_ms(s, 0.5),
           measure_pct_ms(s, 0.9), measure_pct_ms(s, 0.99), measure_pct_ms(s, 1.0));
    /* Bytes on the sockets, CPU per message sent (ours, then --cpu-pids). */
    double per_msg = s->sent ? (double)s->sent : 1;
    printf(" rx_bytes=%llu tx_bytes=%llu rx_bytes_per_delivery=%.1f tx_bytes_per_msg=%.1f "
           "self_cpu_us_per_msg=%.1f",
           (unsigned long long)s->rx_bytes, (unsigned long long)s->tx_bytes,
           (double)s->rx_bytes / (double)(s->received ? s->received : 1),
           (double)s->tx_bytes / per_msg,
           (double)(s->cpu_us[b->npids] - s->cpu0_us[b->npids]) / per_msg);
    for (int i = 0; i < b->npids; i++)
        printf("%s%.1f",
               i ? "," : " pids_cpu_us_per_msg=", (double)(s->cpu_us[i] - s->cpu0_us[i]) / per_msg);
    printf("\n");
    if (b->cfg.flooders)
        printf("flood flooders=%ld frames=%ld refusals=%ld closes=%ld\n", b->cfg.flooders,
               s->flood_frames, s->flood_refusals, s->flood_closes);
    fflush(stdout);
}
