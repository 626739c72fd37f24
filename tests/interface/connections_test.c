/* Connection lifetimes of bin/chat-interface over real sockets: slow
 * readers, pings, idle keep-alive connections, and several processes on one
 * address. Each case starts its own interface with the flags it tests; they
 * share one private Redis. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "tests/interface/ws_client.h"
#include "tests/support/proc.h"
#include "tests/support/redis.h"

static ts_redis_t redis;
static char webdir[64];
static char logpath[128];

static int setup(void **state)
{
    (void)state;
    if (ts_redis_start(&redis) != 0)
        return -1;
    snprintf(webdir, sizeof(webdir), "/tmp/ifc_connections.XXXXXX");
    if (!mkdtemp(webdir))
        return -1;
    snprintf(logpath, sizeof(logpath), "%s/interface.log", webdir);
    /* ASan keeps freed memory in a quarantine (256 MiB by default), which
     * would make RSS grow with every byte echoed; the servers here reuse it
     * at once, so that RSS measures what is actually held. */
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ts_redis_stop(&redis);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", webdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A field of /proc/PID/status in KiB, or -1. */
static long proc_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            v = atol(line + fl + 1);
    if (f)
        fclose(f);
    return v;
}

/* Resets the peak RSS (VmHWM) of pid to its current RSS; 0 when done. */
static int reset_peak_rss(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fputs("5", f) < 0 ? -1 : 0;
    return fclose(f) == 0 ? rc : -1;
}

#define SLOW_SEND_BUFFER_KIB 64
#define SLOW_MESSAGE (16 * 1024)
#define SLOW_MAX_SENT (96L << 20)
#define SLOW_RSS_BOUND_KIB (8 * 1024)

/* A client that sends to the echo endpoint and never reads: once more than
 * the send buffer is queued for it, the server drops what does not fit,
 * queues a close frame 1008 behind what is queued, counts the socket in
 * /metrics, and stops reading it. Its peak RSS meanwhile stays within a
 * bound far below what the client sent. */
static void slow_readers_are_closed_with_1008(void **state)
{
    (void)state;
    int port = ts_free_port();
    const char *extra[] = {"--send-buffer", "64", "--echo-max-message", "65536", NULL};
    pid_t pid = wc_start_interface(port, redis.url, webdir, logpath, extra);
    assert_true(pid > 0);
    /* A small receive buffer keeps what the kernel holds for us small. */
    int fd = wc_dial_buf(port, 4096);
    ws_upgrade(fd, "/echo/");
    static uint8_t msg[SLOW_MESSAGE], out[SLOW_MESSAGE + 14], p[SLOW_MESSAGE];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7);
    size_t flen = frame_encode(out, 1, 0, 2, 1, msg, sizeof(msg));
    /* One round trip first, so that the allocator has warmed up. */
    send_all(fd, out, flen);
    size_t len;
    assert_int_equal(read_frame(fd, p, sizeof(p), &len), 2);
    assert_memory_equal(p, msg, sizeof(msg));
    assert_int_equal(wc_metric(port, "chat_interface_closed_slow_total"), 0);
    long base = proc_status_kib(pid, "VmRSS");
    int have_peak = reset_peak_rss(pid) == 0;
    assert_true(base > 0);

    /* Send whole frames without blocking until the server reports the
     * slow reader (checked whenever the socket stops taking bytes and after
     * every MiB), or far more than any bound has gone out. Once closing,
     * the server reads and discards, so sending never blocks for long. */
    long sent = 0, checked = 0;
    size_t off = 0;
    long long deadline = mc_mono_ms() + 30000;
    int closed = 0;
    while (!closed && sent < SLOW_MAX_SENT && mc_mono_ms() < deadline) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        int ready = poll(&pf, 1, 100);
        if (ready == 1 && (pf.revents & POLLOUT)) {
            ssize_t n = send(fd, out + off, flen - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                sent += n;
                off = (off + (size_t)n) % flen;
                if (sent - checked < (1L << 20))
                    continue;
                checked = sent;
            } else {
                assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
            }
        }
        closed = wc_metric(port, "chat_interface_closed_slow_total") == 1;
    }
    assert_true(closed);
    long peak = have_peak ? proc_status_kib(pid, "VmHWM") : proc_status_kib(pid, "VmRSS");
    print_message("# sent %ld KiB; RSS %ld KiB before, peak %ld KiB\n", sent / 1024, base, peak);
    assert_true(peak - base < SLOW_RSS_BOUND_KIB);

    /* Reading at last: the echoes that were queued, whole, then 1008. */
    size_t echoes = 0;
    int op;
    while ((op = read_frame(fd, p, sizeof(p), &len)) == 2) {
        assert_int_equal(len, sizeof(msg));
        assert_memory_equal(p, msg, sizeof(msg));
        echoes++;
    }
    assert_int_equal(op, 8);
    assert_true(len >= 2);
    assert_int_equal(p[0] << 8 | p[1], 1008);
    assert_true(at_eof(fd));
    assert_true(echoes > 0);
    close(fd);
    assert_int_equal(wc_metric(port, "chat_interface_closed_slow_total"), 1);
    ts_kill_wait(pid, SIGKILL);
}

#define PING_MS 300

/* A client that answers every ping stays open across several intervals;
 * one that answers nothing gets a ping, then, an interval later, 1001. */
static void silent_websockets_are_pinged_then_closed(void **state)
{
    (void)state;
    int port = ts_free_port();
    const char *extra[] = {"--ping-interval", "300", NULL};
    pid_t pid = wc_start_interface(port, redis.url, webdir, logpath, extra);
    assert_true(pid > 0);
    long long before = wc_metric(port, "chat_interface_closed_timeout_total");

    int fd = wc_ws_open(port, "/echo/");
    long long start = mc_mono_ms();
    uint8_t p[256];
    size_t len;
    for (int pings = 0; pings < 4; pings++) {
        assert_int_equal(read_frame(fd, p, sizeof(p), &len), 9);
        assert_int_equal(len, 0);
        frame(fd, 1, 0, 10, 1, p, len);
    }
    assert_true(mc_mono_ms() - start >= 3 * PING_MS);
    frame(fd, 1, 0, 1, 1, "still here", 10);
    int op;
    while ((op = read_frame(fd, p, sizeof(p), &len)) == 9)
        frame(fd, 1, 0, 10, 1, p, len);
    assert_int_equal(op, 1);
    assert_int_equal(len, 10);
    assert_memory_equal(p, "still here", 10);
    frame(fd, 1, 0, 8, 1, "\x03\xe8", 2);
    while ((op = read_frame(fd, p, sizeof(p), &len)) == 9)
        ;
    assert_int_equal(op, 8);
    assert_int_equal(p[0] << 8 | p[1], 1000);
    assert_true(at_eof(fd));
    close(fd);
    assert_int_equal(wc_metric(port, "chat_interface_closed_timeout_total"), before);

    fd = wc_ws_open(port, "/echo/");
    start = mc_mono_ms();
    assert_int_equal(read_frame(fd, p, sizeof(p), &len), 9);
    long long pinged = mc_mono_ms();
    assert_true(pinged - start >= PING_MS - 50);
    expect_close(fd, 1001);
    assert_true(mc_mono_ms() - pinged >= PING_MS - 50);
    close(fd);
    assert_int_equal(wc_metric(port, "chat_interface_closed_timeout_total"), before + 1);
    ts_kill_wait(pid, SIGKILL);
}

#define IDLE_MS 300

/* A keep-alive connection serves requests one after another, and is closed
 * once it has been idle for the idle timeout (not the longer head one). */
static void idle_keep_alive_connections_are_closed(void **state)
{
    (void)state;
    int port = ts_free_port();
    const char *extra[] = {"--idle-timeout", "300", "--header-timeout", "4000", NULL};
    pid_t pid = wc_start_interface(port, redis.url, webdir, logpath, extra);
    assert_true(pid > 0);
    int fd = wc_dial(port);
    char head[2048], body[256];
    for (int i = 0; i < 3; i++) {
        send_str(fd, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 0), 200);
        assert_null(strstr(head, "connection: close"));
    }
    long long answered = mc_mono_ms();
    assert_true(at_eof(fd));
    long long idle = mc_mono_ms() - answered;
    assert_true(idle >= IDLE_MS - 50);
    assert_true(idle < 4000);
    close(fd);
    ts_kill_wait(pid, SIGKILL);
}

/* Two interface processes bind one address (SO_REUSEPORT) and the kernel
 * spreads new connections over both: fresh connections reach each of
 * them, as the accepted sockets each counts on its own metrics listener
 * show. */
static void two_processes_share_one_port(void **state)
{
    (void)state;
    int port = ts_free_port();
    pid_t a = wc_start_interface(port, redis.url, webdir, logpath, NULL);
    assert_true(a > 0);
    /* Once its metrics answer, the second process has bound the port too. */
    pid_t b = wc_start_interface(port, redis.url, webdir, logpath, NULL);
    assert_true(b > 0);
    int ma = wc_metrics_port_of(a), mb = wc_metrics_port_of(b);
    assert_true(ma > 0 && mb > 0 && ma != mb);
    /* The kernel picks a process by a hash of the client's port, so each
     * fresh connection has an even chance of reaching either. */
    long long deadline = mc_mono_ms() + 15000;
    long long got_a = 0, got_b = 0;
    while ((got_a == 0 || got_b == 0) && mc_mono_ms() < deadline) {
        char head[2048], body[256];
        assert_int_equal(wc_http(port, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", head,
                                 sizeof(head), body, sizeof(body)),
                         200);
        got_a = wc_metric_at(ma, "chat_interface_accepted_sockets_total");
        got_b = wc_metric_at(mb, "chat_interface_accepted_sockets_total");
        assert_true(got_a >= 0 && got_b >= 0);
    }
    assert_true(got_a > 0);
    assert_true(got_b > 0);
    ts_kill_wait(a, SIGKILL);
    ts_kill_wait(b, SIGKILL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slow_readers_are_closed_with_1008),
        cmocka_unit_test(silent_websockets_are_pinged_then_closed),
        cmocka_unit_test(idle_keep_alive_connections_are_closed),
        cmocka_unit_test(two_processes_share_one_port),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
