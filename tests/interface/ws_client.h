/*
 * tests/interface/ws_client.h: a small blocking HTTP and WebSocket client for
 * the tests that talk to a real bin/chat-interface over loopback: dialling,
 * hand-made frames (masked or not, any RSV bits and opcode), reading server
 * frames and responses, and starting the interface with chosen flags.
 *
 * Every receive has a 5 s SO_RCVTIMEO as a safety net against hangs; it is
 * never a wait that a test relies on. Failures are cmocka assertions, so the
 * header is included after <cmocka.h>.
 */
#ifndef MC_TESTS_INTERFACE_WS_CLIENT_H
#define MC_TESTS_INTERFACE_WS_CLIENT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#include "tests/support/proc.h"

/* Connects to 127.0.0.1:port; rcvbuf > 0 sets SO_RCVBUF before connecting. */
static inline int wc_dial_buf(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {5, 0}; /* a safety net against hangs, not a wait */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static inline int wc_dial(int port)
{
    return wc_dial_buf(port, 0);
}

static inline void send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

static inline void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

static inline void read_exact(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Reads one HTTP response (head, then content-length bytes unless
 * head_only); returns the status and fills head and body. */
static inline int read_response(int fd, char *head, size_t hsize, char *body, size_t bsize,
                                int head_only)
{
    size_t n = 0;
    while (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0) {
        assert_true(n + 1 < hsize);
        assert_int_equal(recv(fd, head + n, 1, 0), 1);
        n++;
    }
    head[n] = '\0';
    int status = atoi(head + 9);
    const char *cl = strstr(head, "content-length: ");
    size_t blen = cl ? (size_t)atol(cl + 16) : 0;
    if (head_only)
        blen = 0;
    assert_true(blen < bsize);
    read_exact(fd, body, blen);
    body[blen] = '\0';
    return status;
}

/* 1 when the peer closed the connection (EOF). */
static inline int at_eof(int fd)
{
    char c;
    return recv(fd, &c, 1, 0) == 0;
}

/* Encodes a client frame into out (len + 14 bytes) and returns its size. */
static inline size_t frame_encode(uint8_t *out, int fin, int rsv, int opcode, int masked,
                                  const void *payload, size_t len)
{
    static const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
    size_t h = 0;
    out[h++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
    uint8_t m = masked ? 0x80 : 0;
    if (len < 126) {
        out[h++] = (uint8_t)(m | len);
    } else if (len <= 0xFFFF) {
        out[h++] = m | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = m | 127;
        for (int i = 0; i < 8; i++)
            out[h++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(out + h, mask, 4);
        h += 4;
    }
    for (size_t i = 0; i < len; i++)
        out[h + i] =
            masked ? ((const uint8_t *)payload)[i] ^ mask[i & 3] : ((const uint8_t *)payload)[i];
    return h + len;
}

/* Sends one frame: rsv is the three RSV bits (4 = RSV1). */
static inline void frame(int fd, int fin, int rsv, int opcode, int masked, const void *payload,
                         size_t len)
{
    uint8_t *b = malloc(len + 14);
    assert_non_null(b);
    send_all(fd, b, frame_encode(b, fin, rsv, opcode, masked, payload, len));
    free(b);
}

/* Reads one server frame, which must be unmasked; fin and rsv (its three
 * RSV bits, 4 = RSV1) may be NULL, and then those bits must be clear.
 * Returns the opcode. */
static inline int read_frame_rsv(int fd, uint8_t *payload, size_t size, size_t *len, int *fin,
                                 int *rsv)
{
    uint8_t h[2];
    read_exact(fd, h, 2);
    assert_int_equal(h[1] & 0x80, 0);
    if (rsv)
        *rsv = (h[0] >> 4) & 7;
    else
        assert_int_equal(h[0] & 0x70, 0);
    uint64_t n = h[1] & 0x7F;
    if (n == 126) {
        uint8_t e[2];
        read_exact(fd, e, 2);
        n = (uint64_t)e[0] << 8 | e[1];
    } else if (n == 127) {
        uint8_t e[8];
        read_exact(fd, e, 8);
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | e[i];
    }
    assert_true(n <= size);
    read_exact(fd, payload, (size_t)n);
    *len = (size_t)n;
    if (fin)
        *fin = h[0] >> 7;
    return h[0] & 0x0F;
}

static inline int read_frame_fin(int fd, uint8_t *payload, size_t size, size_t *len, int *fin)
{
    return read_frame_rsv(fd, payload, size, len, fin, NULL);
}

static inline int read_frame(int fd, uint8_t *payload, size_t size, size_t *len)
{
    return read_frame_fin(fd, payload, size, len, NULL);
}

/* Expects a close frame with code (0: an empty close frame), then EOF. */
static inline void expect_close(int fd, int code)
{
    uint8_t p[256];
    size_t len;
    int op = read_frame(fd, p, sizeof(p), &len);
    assert_int_equal(op, 8);
    if (code == 0) {
        assert_int_equal(len, 0);
    } else {
        assert_true(len >= 2);
        assert_int_equal(p[0] << 8 | p[1], code);
    }
    assert_true(at_eof(fd));
}

/* Closes with 1000, expects 1000 back, then EOF, and closes fd. */
static inline void close_normally(int fd)
{
    frame(fd, 1, 0, 0x8, 1, "\x03\xe8", 2);
    expect_close(fd, 1000);
    close(fd);
}

static const char *const UPGRADE_HEADERS = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/* permessage-deflate on the client's side (RFC 7692), over zlib itself. */

/* Compresses msg[0..len) as one client message with no context (a fresh
 * stream, as client_no_context_takeover asks): raw DEFLATE flushed, its
 * last 4 bytes (00 00 ff ff) cut off. Returns a malloc'd payload of
 * *out_len bytes. */
static inline uint8_t *wc_deflate(const void *msg, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, len) + 16;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    z.next_in = (Bytef *)msg;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
    assert_int_equal(z.avail_in, 0);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    assert_true(n >= 4);
    assert_memory_equal(out + n - 4, "\x00\x00\xff\xff", 4);
    *out_len = n - 4;
    return out;
}

/* Inflates a compressed server message in[0..len) with a window of 2^bits
 * bytes (8..15) into out[0..size). Returns the message's length, or -1 when
 * it is not valid for that window (or longer than size). */
static inline long wc_inflate(const uint8_t *in, size_t len, int bits, uint8_t *out, size_t size)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, -bits), Z_OK);
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    z.next_out = out;
    z.avail_out = (uInt)size;
    int rc = Z_OK;
    for (int piece = 0; piece < 2 && (rc == Z_OK || rc == Z_BUF_ERROR); piece++) {
        z.next_in = (Bytef *)(piece == 0 ? in : tail);
        z.avail_in = (uInt)(piece == 0 ? len : sizeof(tail));
        rc = inflate(&z, Z_SYNC_FLUSH);
        if (z.avail_in != 0 && rc != Z_STREAM_END)
            rc = Z_DATA_ERROR;
    }
    long n =
        (rc == Z_OK || rc == Z_BUF_ERROR || rc == Z_STREAM_END) ? (long)(size - z.avail_out) : -1;
    inflateEnd(&z);
    return n;
}

/* Asks for a WebSocket on fd (already connected) offering extensions (a
 * Sec-WebSocket-Extensions value, or NULL for none). */
static inline void ws_request_offering(int fd, const char *path, const char *extensions)
{
    char req[1024];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
             path, UPGRADE_HEADERS, extensions ? "Sec-WebSocket-Extensions: " : "",
             extensions ? extensions : "", extensions ? "\r\n" : "");
    send_str(fd, req);
}

/* Reads the 101 and copies the value of its sec-websocket-extensions into
 * answer (size bytes; "" when there is none). */
static inline void ws_read_101(int fd, char *answer, size_t size)
{
    char head[2048], body[16];
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 1), 101);
    assert_non_null(strstr(head, "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    const char *ext = strstr(head, "\r\nsec-websocket-extensions: ");
    size_t n = ext ? strcspn(ext + 28, "\r") : 0;
    assert_true(n < size);
    memcpy(answer, ext ? ext + 28 : "", n);
    answer[n] = '\0';
    assert_null(ext ? strstr(ext + 28, "\r\nsec-websocket-extensions: ") : NULL); /* once */
}

/* Both: opens a WebSocket offering extensions, its answer in answer. */
static inline void ws_upgrade_offering(int fd, const char *path, const char *extensions,
                                       char *answer, size_t size)
{
    ws_request_offering(fd, path, extensions);
    ws_read_101(fd, answer, size);
}

/* Opens a WebSocket on fd (already connected), offering no extension. */
static inline void ws_upgrade(int fd, const char *path)
{
    char answer[8];
    ws_upgrade_offering(fd, path, NULL, answer, sizeof(answer));
    assert_string_equal(answer, "");
}

static inline int wc_ws_open(int port, const char *path)
{
    int fd = wc_dial(port);
    ws_upgrade(fd, path);
    return fd;
}

/* One request on a fresh connection; returns the status. */
static inline int wc_http(int port, const char *request, char *head, size_t hsize, char *body,
                          size_t bsize)
{
    int fd = wc_dial(port);
    send_str(fd, request);
    int st = read_response(fd, head, hsize, body, bsize, strncmp(request, "HEAD", 4) == 0);
    close(fd);
    return st;
}

/* The interfaces wc_start_interface started: each one's metrics port. */
static struct {
    pid_t pid;
    int port, metrics;
} wc_started[64];
static size_t wc_nstarted;

/* The metrics port of the interface last started on port, or of pid. */
static inline int wc_metrics_port(int port)
{
    for (size_t i = wc_nstarted; i-- > 0;)
        if (wc_started[i].port == port)
            return wc_started[i].metrics;
    return -1;
}

static inline int wc_metrics_port_of(pid_t pid)
{
    for (size_t i = wc_nstarted; i-- > 0;)
        if (wc_started[i].pid == pid)
            return wc_started[i].metrics;
    return -1;
}

/* The value of a line "name value" of the /metrics the metrics listener on
 * metrics_port serves, or -1 when absent. */
static inline long long wc_metric_at(int metrics_port, const char *name)
{
    char head[2048], body[8192], key[128];
    if (metrics_port <= 0 ||
        wc_http(metrics_port, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", head,
                sizeof(head), body, sizeof(body)) != 200)
        return -1;
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *p = strstr(body, key);
    return p ? atoll(p + strlen(key)) : -1;
}

/* The same, of the interface last started on port. */
static inline long long wc_metric(int port, const char *name)
{
    return wc_metric_at(wc_metrics_port(port), name);
}

/* Starts bin/chat-interface of $MC_BUILD on 127.0.0.1:port with the Redis
 * at redis_url, the web root web, the echo endpoint /echo/, /metrics on a
 * port of its own (wc_metrics_port), no limits per client address (tests
 * open many connections from one; the tests of those limits set them) and
 * the extra flags (NULL-terminated), logging into log; waits until it
 * listens. Returns its pid, or -1. */
static inline pid_t wc_start_interface(int port, const char *redis_url, const char *web,
                                       const char *log, const char *const *extra)
{
    const char *build = getenv("MC_BUILD") ? getenv("MC_BUILD") : "build/asan";
    static char bin[512];
    char listen[64], metrics[64];
    int mport = ts_free_port();
    snprintf(bin, sizeof(bin), "%s/bin/chat-interface", build);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(metrics, sizeof(metrics), "127.0.0.1:%d", mport);
    const char *argv[64] = {bin,       "--listen",       listen, "--redis",
                            redis_url, "--web",          web,    "--echo-path",
                            "/echo/",  "--log-level",    "warn", "--metrics-listen",
                            metrics,   "--address-rate", "0",    "--address-open-max",
                            "0"};
    size_t n = 17;
    for (size_t i = 0; extra && extra[i] && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = ts_spawn(argv, log);
    if (pid < 0 || ts_wait_port(port, 10000) != 0 || ts_wait_port(mport, 10000) != 0)
        return -1;
    if (wc_nstarted < sizeof(wc_started) / sizeof(wc_started[0])) {
        wc_started[wc_nstarted].pid = pid;
        wc_started[wc_nstarted].port = port;
        wc_started[wc_nstarted++].metrics = mport;
    }
    return pid;
}

#endif
