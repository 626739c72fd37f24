/*
 * chat-bench: a load generator for any server that speaks the multichat
 * protocol (this one, or the Django Channels example).
 *
 * It logs users in through the login form as a browser does (GET the form
 * for the csrftoken cookie and the hidden csrfmiddlewaretoken, POST the
 * form, keep the sessionid cookie), then opens WebSockets with those
 * cookies, C sockets for U users (a session serves several sockets), spread
 * over several loopback source addresses and over one or more servers. Each
 * socket joins one of the given rooms; then the program sends chat messages
 * at a total rate, from the sockets in turn, each carrying its send time in
 * its text, and measures the latency of every delivery to every member of
 * the room. A list of rates is run as a ladder, one step after the other,
 * until a step loses messages or its 99th percentile passes a limit.
 *
 * Other modes: --echo-path sends the same messages to an echo WebSocket
 * (no login, no worker: the client's and the interface's own ceiling), and
 * --idle only opens, joins and holds authenticated sockets (memory per socket).
 * --flooders N adds N sockets of users of their own that attack while the
 * steps run: they send history requests, 60 KiB frames that are no command,
 * leaves and joins, as fast as their server reads them, and reconnect when
 * it closes them; what they send and what they are told is reported after
 * each step, and the other sockets are measured as ever.
 *
 * With --deflate every socket offers permessage-deflate as a browser does;
 * where the server accepts it, the client compresses what it sends (each
 * message on its own, as client_no_context_takeover asks) and inflates
 * what arrives compressed. Each step reports the bytes that crossed the
 * sockets both ways (WebSocket frames, no TCP/IP headers), the client's own
 * CPU per message, and with --cpu-pids the CPU per message of those
 * processes (from /proc/PID/stat): the price and the gain of compression.
 *
 * Everything runs on one libuv loop, except the logins, which use blocking
 * sockets in a few threads because the server's password hashing makes each
 * one slow. Output is one "key=value ..." line per step, for scripts.
 */
#include "common/config.h"
#include "common/error.h"
#include "interface/handshake.h"
#include "interface/ws_deflate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#define MAX_TARGETS 16
#define MAX_ROOMS 1024
#define MAX_RATES 64
#define MAX_RETRIES 3
#define MAX_STEPS (MAX_RATES * (1 + MAX_RETRIES))
#define MAX_PIDS 8
#define INFLATE_MAX (16 * 1024 * 1024) /* the largest compressed message read */
#define READ_BUF (256 * 1024)
#define LOGIN_RESP_MAX (256 * 1024)
#define COOKIE_MAX 320
#define HANDSHAKE_MAX 4096
#define MSG_MAX 4000
#define STAMP "mcb " /* every measured message starts with it */
#define MAX_FLOODERS 16
#define FLOOD_JUNK (60 * 1024)    /* bytes of a junk frame */
#define FLOOD_QUEUED (256 * 1024) /* a flooder writes while less waits in its socket */
#define RATE_LIMITED "{\"error\":\"RATE_LIMITED\"}" /* the interface's refusal */

/* ---- Settings -------------------------------------------------------------- */

typedef struct settings {
    const char *targets; /* "127.0.0.1:8000,127.0.0.1:8001" */
    const char *path;
    const char *echo_path;
    const char *origin;
    const char *user_prefix;
    const char *password;
    const char *rooms;
    const char *rates;
    const char *cpu_pids; /* "123,456": processes whose CPU a step reports */
    long clients, users, duration_ms, drain_ms, p99_limit_ms, message_size, sources;
    long connect_parallel, login_threads, hold_ms, first_user, retries, flooders;
    int idle, keep_going, deflate;
} settings_t;

typedef struct target {
    struct sockaddr_in addr;
    char host[64]; /* "127.0.0.1:8000", the Host header */
    char origin[96];
} target_t;

/* ---- State ------------------------------------------------------------------ */

enum client_state { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_JOINED, C_CLOSED };

typedef struct bench bench_t;

/* One WebSocket. Bytes of a frame not yet complete wait in pend (heap),
 * which is freed as soon as it is empty, so an idle client holds none. */
typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    bench_t *b;
    uint8_t *pend;
    uint32_t pend_len, pend_cap;
    uint32_t idx;
    uint16_t room; /* index into bench.rooms */
    uint8_t state;
    uint8_t closing;
    uint8_t flood; /* a flooder (--flooders), not measured */
    uint8_t flood_next;
    uint8_t deflate; /* the server accepted permessage-deflate */
    char accept[IFC_WS_ACCEPT_LEN + 1];
} client_t;

typedef struct step {
    long rate;
    int attempt; /* 0, then 1.. for the same rate again after a failure */
    uint64_t start_us, send_end_us, last_rx_us;
    long sent, expected, received, late, errors;
    uint32_t *lat; /* microseconds, one per delivery */
    size_t nlat, caplat;
    long flood_frames, flood_refusals, flood_closes;      /* of the flooders, in the step */
    uint64_t rx_bytes, tx_bytes;                          /* on the sockets, while the step ran */
    uint64_t cpu0_us[MAX_PIDS + 1], cpu_us[MAX_PIDS + 1]; /* the --cpu-pids, then ours */
} step_t;

struct bench {
    uv_loop_t *loop;
    settings_t cfg;
    target_t targets[MAX_TARGETS];
    int ntargets;
    long room_ids[MAX_ROOMS];
    long room_members[MAX_ROOMS];
    int nrooms;
    long rates[MAX_RATES];
    int nrates;
    int rate_i;                  /* rates[rate_i] is being run */
    char (*cookies)[COOKIE_MAX]; /* per user */
    client_t *clients;
    client_t flooders[MAX_FLOODERS];
    uv_timer_t flood_tick;
    uint64_t flood_ticks;
    char *junk;       /* the flooders' junk frame */
    client_t **ready; /* senders, in turn */
    long nready, next_sender;
    long next_connect, connecting, connected, joined, failed, closed_early;
    int phase; /* 0 connecting, 1 running steps, 2 holding idle, 3 done */
    int cur;   /* current step */
    int stopped;
    step_t steps[MAX_STEPS];
    uv_timer_t tick, hold;
    uv_signal_t sigint, sigterm;
    uint64_t t0_us, connect_start_us;
    uint64_t seq;
    uint32_t rng;
    int exit_code;
    int complaints; /* lines written to stderr about single sockets */
    long pids[MAX_PIDS];
    int npids;
    long deflate_sockets;        /* sockets that negotiated permessage-deflate */
    ifc_ws_deflater_t *deflater; /* --deflate: one of each serves every socket */
    ifc_ws_inflater_t *inflater;
    int in_connect; /* connect_more is running: do not re-enter it */
    uint8_t rbuf[READ_BUF];
};

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000;
}

static uint32_t rnd(bench_t *b)
{
    /* xorshift32: WebSocket masks and keys need no cryptographic quality here. */
    uint32_t x = b->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return b->rng = x;
}

/* ---- Parsing settings ------------------------------------------------------- */

static int parse_targets(bench_t *b)
{
    const char *p = b->cfg.targets;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (b->ntargets == MAX_TARGETS || len == 0 || len >= sizeof(b->targets[0].host))
            return -1;
        target_t *t = &b->targets[b->ntargets++];
        memcpy(t->host, p, len);
        t->host[len] = '\0';
        char ip[64];
        memcpy(ip, p, len);
        ip[len] = '\0';
        char *colon = strrchr(ip, ':');
        if (!colon)
            return -1;
        *colon = '\0';
        long port = strtol(colon + 1, NULL, 10);
        if (port <= 0 || port > 65535 || uv_ip4_addr(ip, (int)port, &t->addr) != 0)
            return -1;
        if (b->cfg.origin && *b->cfg.origin)
            snprintf(t->origin, sizeof(t->origin), "%s", b->cfg.origin);
        else
            snprintf(t->origin, sizeof(t->origin), "http://%.*s", (int)len, p);
        p += len;
        if (*p == ',')
            p++;
    }
    return b->ntargets ? 0 : -1;
}

static int parse_longs(const char *s, long *out, int cap)
{
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v <= 0 || n == cap)
            return -1;
        out[n++] = v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return n;
}

/* ---- Logins (blocking, in threads) -------------------------------------------- */

typedef struct login_pool {
    bench_t *b;
    pthread_mutex_t mu;
    long next, done, failed;
    char first_error[256];
} login_pool_t;

/* Sends req to t and reads the whole response into buf (NUL-terminated).
 * Returns the response length, or -1. */
static long http_exchange(const bench_t *b, const target_t *t, long user, const char *req,
                          size_t req_len, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (b->cfg.sources > 1) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(user % b->cfg.sources));
        bind(fd, (struct sockaddr *)&src, sizeof(src));
    }
    long got = -1;
    if (connect(fd, (const struct sockaddr *)&t->addr, sizeof(t->addr)) != 0)
        goto out;
    for (size_t off = 0; off < req_len;) {
        ssize_t w = write(fd, req + off, req_len - off);
        if (w <= 0)
            goto out;
        off += (size_t)w;
    }
    size_t len = 0;
    long need = -1; /* total length once the head and Content-Length are known */
    while (len + 1 < cap && (need < 0 || (long)len < need)) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        char *end = need < 0 ? strstr(buf, "\r\n\r\n") : NULL;
        if (end) {
            long body = 0;
            for (char *h = strstr(buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
                if (strncasecmp(h + 2, "content-length:", 15) == 0)
                    body = strtol(h + 17, NULL, 10);
            need = (long)(end + 4 - buf) + body;
        }
    }
    buf[len] = '\0';
    got = (long)len;
out:
    close(fd);
    return got;
}

/* Copies the value of cookie name from the Set-Cookie headers of resp. */
static int set_cookie(const char *resp, const char *name, char *out, size_t cap)
{
    const char *end = strstr(resp, "\r\n\r\n");
    size_t nl = strlen(name);
    for (const char *h = strstr(resp, "\r\n"); h && (!end || h < end); h = strstr(h + 2, "\r\n")) {
        const char *v = h + 2;
        if (strncasecmp(v, "set-cookie:", 11) != 0)
            continue;
        v += 11;
        while (*v == ' ')
            v++;
        if (strncmp(v, name, nl) != 0 || v[nl] != '=')
            continue;
        v += nl + 1;
        size_t n = strcspn(v, ";\r");
        if (n == 0 || n >= cap)
            return -1;
        memcpy(out, v, n);
        out[n] = '\0';
        return 0;
    }
    return -1;
}

/* Appends s to out, form-urlencoded. */
static size_t form_escape(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    out[n] = '\0';
    return n;
}

static int login_one(bench_t *b, long user, char *resp, char *err, size_t errlen)
{
    const target_t *t = &b->targets[user % b->ntargets];
    char req[2048], name[128], csrf[128], hidden[128], sess[128];
    snprintf(name, sizeof(name), "%s%ld", b->cfg.user_prefix, b->cfg.first_user + user);
    int n = snprintf(req, sizeof(req),
                     "GET /accounts/login/?next=/ HTTP/1.1\r\nHost: %s\r\n"
                     "User-Agent: chat-bench\r\nAccept: text/html\r\n\r\n",
                     t->host);
    long len = http_exchange(b, t, user, req, (size_t)n, resp, LOGIN_RESP_MAX);
    if (len <= 0 || strncmp(resp, "HTTP/1.1 200", 12) != 0) {
        snprintf(err, errlen, "GET /accounts/login/ on %s: %.40s", t->host,
                 len > 0 ? resp : "no answer");
        return -1;
    }
    const char *field = strstr(resp, "name=\"csrfmiddlewaretoken\"");
    const char *val = field ? strstr(field, "value=\"") : NULL;
    if (set_cookie(resp, "csrftoken", csrf, sizeof(csrf)) != 0 || !val) {
        snprintf(err, errlen, "the login form of %s has no csrftoken cookie or field", t->host);
        return -1;
    }
    val += 7;
    size_t vl = strcspn(val, "\"");
    if (vl >= sizeof(hidden))
        return -1;
    memcpy(hidden, val, vl);
    hidden[vl] = '\0';
    char body[1024], e1[256], e2[256], e3[256];
    form_escape(e1, sizeof(e1), hidden);
    form_escape(e2, sizeof(e2), name);
    form_escape(e3, sizeof(e3), b->cfg.password);
    int bl = snprintf(body, sizeof(body),
                      "csrfmiddlewaretoken=%s&username=%s&password=%s&next=%%2F", e1, e2, e3);
    n = snprintf(req, sizeof(req),
                 "POST /accounts/login/ HTTP/1.1\r\nHost: %s\r\nUser-Agent: chat-bench\r\n"
                 "Origin: %s\r\nReferer: %s/accounts/login/\r\nCookie: csrftoken=%s\r\n"
                 "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
                 "\r\n%s",
                 t->host, t->origin, t->origin, csrf, bl, body);
    len = http_exchange(b, t, user, req, (size_t)n, resp, LOGIN_RESP_MAX);
    if (len <= 0 || set_cookie(resp, "sessionid", sess, sizeof(sess)) != 0) {
        snprintf(err, errlen, "login of %s on %s refused: %.40s", name, t->host,
                 len > 0 ? resp : "no answer");
        return -1;
    }
    /* Django renews the CSRF token at login; keep whichever is current. */
    set_cookie(resp, "csrftoken", csrf, sizeof(csrf));
    snprintf(b->cookies[user], COOKIE_MAX, "csrftoken=%s; sessionid=%s", csrf, sess);
    return 0;
}

static void *login_thread(void *arg)
{
    login_pool_t *pool = arg;
    char *resp = malloc(LOGIN_RESP_MAX);
    if (!resp)
        return NULL;
    for (;;) {
        pthread_mutex_lock(&pool->mu);
        long user = pool->next < pool->b->cfg.users + pool->b->cfg.flooders ? pool->next++ : -1;
        pthread_mutex_unlock(&pool->mu);
        if (user < 0)
            break;
        char err[256];
        int rc = login_one(pool->b, user, resp, err, sizeof(err));
        pthread_mutex_lock(&pool->mu);
        if (rc != 0 && pool->failed++ == 0)
            snprintf(pool->first_error, sizeof(pool->first_error), "%s", err);
        pool->done++;
        pthread_mutex_unlock(&pool->mu);
    }
    free(resp);
    return NULL;
}

static int login_all(bench_t *b)
{
    login_pool_t pool = {.b = b};
    pthread_mutex_init(&pool.mu, NULL);
    long all = b->cfg.users + b->cfg.flooders;
    long nt = b->cfg.login_threads < all ? b->cfg.login_threads : all;
    pthread_t th[64];
    if (nt > 64)
        nt = 64;
    uint64_t t0 = now_us();
    for (long i = 0; i < nt; i++)
        pthread_create(&th[i], NULL, login_thread, &pool);
    for (long i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&pool.mu);
    double secs = (double)(now_us() - t0) / 1e6;
    printf("login users=%ld failed=%ld seconds=%.2f logins_per_s=%.0f\n", all, pool.failed, secs,
           (double)all / (secs > 0 ? secs : 1e-9));
    fflush(stdout);
    if (pool.failed) {
        fprintf(stderr, "chat-bench: %ld logins failed; the first: %s\n", pool.failed,
                pool.first_error);
        return -1;
    }
    return 0;
}

/* ---- Writing frames -------------------------------------------------------- */

typedef struct wbuf {
    uv_write_t req;
    size_t len;
    uint8_t data[];
} wbuf_t;

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req->data);
}

static void client_close(client_t *c);

/* Writes len bytes now if the socket takes them, else queues a copy. */
static void client_write(client_t *c, const uint8_t *data, size_t len)
{
    if (c->state == C_CLOSED || c->closing)
        return;
    if (c->b->phase == 1)
        c->b->steps[c->b->cur].tx_bytes += len;
    int w = uv_try_write((uv_stream_t *)&c->tcp, &(uv_buf_t){.base = (char *)data, .len = len}, 1);
    if (w == (int)len)
        return;
    if (w < 0 && w != UV_EAGAIN) {
        client_close(c);
        return;
    }
    size_t done = w > 0 ? (size_t)w : 0;
    wbuf_t *wb = malloc(sizeof(*wb) + len - done);
    if (!wb) {
        client_close(c);
        return;
    }
    memcpy(wb->data, data + done, len - done);
    wb->len = len - done;
    wb->req.data = wb;
    uv_buf_t buf = uv_buf_init((char *)wb->data, (unsigned)wb->len);
    if (uv_write(&wb->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0) {
        free(wb);
        client_close(c);
    }
}

/* Sends one masked client frame (FIN set): a message compressed when the
 * socket negotiated permessage-deflate and it shrinks. */
static void client_send_frame(client_t *c, int opcode, const void *payload, size_t len)
{
    int rsv1 = 0;
    const uint8_t *z;
    size_t zl;
    if (c->deflate && opcode < 0x8 &&
        ifc_ws_deflate_shrink(c->b->deflater, payload, len, &z, &zl) == 0) {
        payload = z;
        len = zl;
        rsv1 = 0x40;
    }
    uint8_t stackbuf[14 + 1024];
    uint8_t *f = len + 14 <= sizeof(stackbuf) ? stackbuf : malloc(len + 14);
    if (!f)
        return;
    size_t h = 0;
    f[h++] = (uint8_t)(0x80 | rsv1 | opcode);
    if (len < 126) {
        f[h++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        f[h++] = 0x80 | 126;
        f[h++] = (uint8_t)(len >> 8);
        f[h++] = (uint8_t)len;
    } else {
        f[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            f[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint32_t m = rnd(c->b);
    uint8_t mask[4] = {(uint8_t)m, (uint8_t)(m >> 8), (uint8_t)(m >> 16), (uint8_t)(m >> 24)};
    memcpy(f + h, mask, 4);
    h += 4;
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        f[h + i] = p[i] ^ mask[i & 3];
    client_write(c, f, h + len);
    if (f != stackbuf)
        free(f);
}

/* ---- Steps and measurements --------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double pct_ms(const step_t *s, double q)
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

static void record(bench_t *b, step_t *s, uint64_t t_us, uint64_t sent_us)
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

/* A message text "mcb STEP SEQ TIME_US xxxx": parses it at p (after "mcb "). */
static void on_stamp(bench_t *b, const char *p, const char *end)
{
    char tmp[64];
    size_t n = (size_t)(end - p) < sizeof(tmp) - 1 ? (size_t)(end - p) : sizeof(tmp) - 1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    char *q;
    long step = strtol(tmp, &q, 10);
    strtoull(q, &q, 10);
    uint64_t sent = strtoull(q, NULL, 10);
    if (b->phase != 1 || step != b->cur) {
        if (step >= 0 && step <= b->cur && step < MAX_STEPS)
            b->steps[step].late++;
        return;
    }
    record(b, &b->steps[step], now_us(), sent);
}

static void start_step(bench_t *b);
static void finish(bench_t *b);

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

/* The CPU of the --cpu-pids, then our own, into cpu[0..npids]. */
static void sample_cpu(const bench_t *b, uint64_t *cpu)
{
    for (int i = 0; i < b->npids; i++)
        cpu[i] = proc_cpu_us(b->pids[i]);
    cpu[b->npids] = self_cpu_us();
}

static void print_step(bench_t *b, const step_t *s)
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
           (double)s->received / (span > 0 ? span : 1e-9), pct_ms(s, 0.5), pct_ms(s, 0.9),
           pct_ms(s, 0.99), pct_ms(s, 1.0));
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

static void end_step(bench_t *b)
{
    step_t *s = &b->steps[b->cur];
    uv_timer_stop(&b->tick);
    sample_cpu(b, s->cpu_us);
    if (s->nlat)
        qsort(s->lat, s->nlat, sizeof(*s->lat), cmp_u32);
    print_step(b, s);
    int ok = s->received >= s->expected && s->errors == 0 &&
             pct_ms(s, 0.99) <= (double)b->cfg.p99_limit_ms;
    /* A failed step runs again (--retries): on a shared machine one burst of
     * someone else's work should not end the ladder. */
    int retry = !ok && s->attempt < b->cfg.retries;
    int next = b->rate_i + 1;
    b->cur++;
    if (b->stopped || (!retry && (next >= b->nrates || (!ok && !b->cfg.keep_going)))) {
        long best = 0;
        for (int i = 0; i < b->cur; i++) {
            const step_t *t = &b->steps[i];
            if (t->received >= t->expected && t->errors == 0 &&
                pct_ms(t, 0.99) <= (double)b->cfg.p99_limit_ms && t->rate > best)
                best = t->rate;
        }
        printf("best rate=%ld p99_limit_ms=%ld\n", best, b->cfg.p99_limit_ms);
        fflush(stdout);
        finish(b);
        return;
    }
    step_t *n = &b->steps[b->cur];
    if (retry) {
        n->rate = s->rate;
        n->attempt = s->attempt + 1;
    } else {
        b->rate_i = next;
        n->rate = b->rates[next];
    }
    start_step(b);
}

static void send_one(bench_t *b, step_t *s)
{
    client_t *c = b->ready[b->next_sender++ % b->nready];
    if (c->state != C_JOINED)
        return;
    char text[MSG_MAX + 1];
    int n = snprintf(text, sizeof(text), STAMP "%d %llu %llu ", b->cur,
                     (unsigned long long)b->seq++, (unsigned long long)now_us());
    size_t len = (size_t)n;
    size_t want = (size_t)b->cfg.message_size;
    if (want > len) {
        memset(text + len, 'x', want - len);
        len = want;
    }
    if (b->cfg.echo_path && *b->cfg.echo_path) {
        client_send_frame(c, 0x1, text, len);
        s->expected += 1;
    } else {
        char msg[MSG_MAX + 128];
        int m =
            snprintf(msg, sizeof(msg), "{\"command\":\"send\",\"room\":%ld,\"message\":\"%.*s\"}",
                     b->room_ids[c->room], (int)len, text);
        client_send_frame(c, 0x1, msg, (size_t)m);
        s->expected += b->room_members[c->room];
    }
    s->sent++;
}

static void on_tick(uv_timer_t *t)
{
    bench_t *b = t->data;
    step_t *s = &b->steps[b->cur];
    uint64_t now = now_us();
    if (!s->send_end_us) {
        uint64_t end = s->start_us + (uint64_t)b->cfg.duration_ms * 1000;
        uint64_t until = now < end ? now : end;
        long due = (long)((double)(until - s->start_us) * (double)s->rate / 1e6);
        for (int burst = 0; s->sent < due && burst < 20000; burst++)
            send_one(b, s);
        if (now >= end || b->stopped)
            s->send_end_us = now;
        return;
    }
    /* Draining: wait for what is still due, within --drain. */
    if (s->received >= s->expected || now - s->send_end_us >= (uint64_t)b->cfg.drain_ms * 1000 ||
        b->stopped)
        end_step(b);
}

static void start_step(bench_t *b)
{
    step_t *s = &b->steps[b->cur];
    sample_cpu(b, s->cpu0_us);
    s->start_us = now_us();
    uv_timer_start(&b->tick, on_tick, 0, 1);
}

/* ---- Reading frames -------------------------------------------------------- */

static const char *find(const char *h, size_t hl, const char *n)
{
    return memmem(h, hl, n, strlen(n));
}

static void on_text(client_t *c, const char *p, size_t len)
{
    bench_t *b = c->b;
    if (c->flood) {
        if (b->phase == 1 && len == sizeof(RATE_LIMITED) - 1 && memcmp(p, RATE_LIMITED, len) == 0)
            b->steps[b->cur].flood_refusals++;
        return;
    }
    if (b->cfg.echo_path && *b->cfg.echo_path) {
        if (len > 4 && memcmp(p, STAMP, 4) == 0)
            on_stamp(b, p + 4, p + len);
        return;
    }
    if (len >= 7 && memcmp(p, "{\"join\"", 7) == 0) {
        if (c->state == C_OPEN) {
            c->state = C_JOINED;
            b->joined++;
            b->room_members[c->room]++;
        }
        return;
    }
    if (len >= 8 && memcmp(p, "{\"error\"", 8) == 0) {
        if (b->phase == 1)
            b->steps[b->cur].errors++;
        if (b->complaints++ < 5)
            fprintf(stderr, "chat-bench: client %u: %.*s\n", c->idx, (int)(len < 200 ? len : 200),
                    p);
        return;
    }
    const char *m = find(p, len, "\"" STAMP);
    if (m)
        on_stamp(b, m + 5, p + len);
}

static void on_ready(client_t *c);

static void on_frame(client_t *c, int opcode, const uint8_t *p, size_t len)
{
    switch (opcode) {
    case 0x1:
        on_text(c, (const char *)p, len);
        break;
    case 0x9:
        client_send_frame(c, 0xA, p, len);
        break;
    case 0x8:
        client_send_frame(c, 0x8, p, len >= 2 ? 2 : 0);
        if (c->b->phase != 3 && !c->flood)
            c->b->closed_early++;
        client_close(c);
        break;
    default:
        break;
    }
}

/* Handles whole frames in data; returns the bytes consumed. */
static size_t parse_frames(client_t *c, const uint8_t *d, size_t len)
{
    size_t off = 0;
    while (len - off >= 2 && c->state != C_CLOSED) {
        const uint8_t *f = d + off;
        size_t avail = len - off, h = 2;
        uint64_t plen = f[1] & 0x7f;
        if (plen == 126) {
            if (avail < 4)
                break;
            plen = ((uint64_t)f[2] << 8) | f[3];
            h = 4;
        } else if (plen == 127) {
            if (avail < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | f[2 + i];
            h = 10;
        }
        if (f[1] & 0x80) /* a server never masks */
            h += 4;
        if (avail < h || avail - h < plen)
            break;
        off += h + (size_t)plen;
        if (!(f[0] & 0x40)) {
            on_frame(c, f[0] & 0x0f, f + h, (size_t)plen);
            continue;
        }
        /* RSV1: a compressed message (the server sends whole frames). */
        const uint8_t *m;
        size_t ml;
        if (!c->deflate || ifc_ws_inflate_message(c->b->inflater, INFLATE_MAX, f + h, (size_t)plen,
                                                  &m, &ml) != 0) {
            if (c->b->complaints++ < 5)
                fprintf(stderr, "chat-bench: client %u: a compressed frame that does not inflate\n",
                        c->idx);
            client_close(c);
            break;
        }
        on_frame(c, f[0] & 0x0f, m, ml);
    }
    return off;
}

static int pend_append(client_t *c, const uint8_t *d, size_t n)
{
    if (c->pend_len + n > c->pend_cap) {
        size_t cap = c->pend_cap ? c->pend_cap : 1024;
        while (cap < c->pend_len + n)
            cap *= 2;
        uint8_t *p = realloc(c->pend, cap);
        if (!p)
            return -1;
        c->pend = p;
        c->pend_cap = (uint32_t)cap;
    }
    memcpy(c->pend + c->pend_len, d, n);
    c->pend_len += (uint32_t)n;
    return 0;
}

static void pend_consume(client_t *c, size_t n)
{
    memmove(c->pend, c->pend + n, c->pend_len - n);
    c->pend_len -= (uint32_t)n;
    if (!c->pend_len) {
        free(c->pend);
        c->pend = NULL;
        c->pend_cap = 0;
    }
}

static void on_frames(client_t *c, const uint8_t *d, size_t n)
{
    if (!c->pend_len) {
        size_t used = parse_frames(c, d, n);
        if (used < n && c->state != C_CLOSED && pend_append(c, d + used, n - used) != 0)
            client_close(c);
        return;
    }
    if (pend_append(c, d, n) != 0) {
        client_close(c);
        return;
    }
    size_t used = parse_frames(c, c->pend, c->pend_len);
    if (c->state != C_CLOSED)
        pend_consume(c, used);
}

static void on_handshake_data(client_t *c, const uint8_t *d, size_t n)
{
    if (pend_append(c, d, n) != 0 || c->pend_len > HANDSHAKE_MAX) {
        client_close(c);
        return;
    }
    const uint8_t *end = memmem(c->pend, c->pend_len, "\r\n\r\n", 4);
    if (!end)
        return;
    size_t head = (size_t)(end + 4 - c->pend);
    const char *acc = find((const char *)c->pend, head, "\r\nSec-WebSocket-Accept: ");
    if (!acc)
        acc = find((const char *)c->pend, head, "\r\nsec-websocket-accept: ");
    if (c->pend_len < 12 || memcmp(c->pend, "HTTP/1.1 101", 12) != 0 || !acc ||
        memcmp(acc + 24, c->accept, IFC_WS_ACCEPT_LEN) != 0) {
        if (c->b->complaints++ < 5 && !c->flood)
            fprintf(stderr, "chat-bench: client %u: upgrade refused: %.*s\n", c->idx,
                    (int)strcspn((const char *)c->pend, "\r"), (const char *)c->pend);
        c->b->failed += !c->flood;
        client_close(c);
        return;
    }
    c->deflate =
        find((const char *)c->pend, head, "\r\nsec-websocket-extensions: permessage-deflate") ||
        find((const char *)c->pend, head, "\r\nSec-WebSocket-Extensions: permessage-deflate");
    c->b->deflate_sockets += c->deflate;
    pend_consume(c, head);
    on_ready(c);
    if (c->pend_len && c->state != C_CLOSED) {
        size_t used = parse_frames(c, c->pend, c->pend_len);
        if (c->state != C_CLOSED)
            pend_consume(c, used);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    client_t *c = h->data;
    buf->base = (char *)c->b->rbuf;
    buf->len = sizeof(c->b->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    client_t *c = s->data;
    if (nread < 0) {
        if (c->b->phase != 3 && !c->flood)
            c->b->closed_early++;
        if (c->state == C_HANDSHAKE && !c->flood)
            c->b->failed++;
        client_close(c);
        return;
    }
    if (c->b->phase == 1)
        c->b->steps[c->b->cur].rx_bytes += (uint64_t)nread;
    if (c->state == C_HANDSHAKE)
        on_handshake_data(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        on_frames(c, (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- Connecting ------------------------------------------------------------- */

/* Socket i joins room i mod R and goes to server (i / R) mod T, so that with
 * several servers every room has members on each of them. */
static const target_t *client_target(const client_t *c)
{
    const bench_t *b = c->b;
    return &b->targets[(c->idx / (uint32_t)b->nrooms) % (uint32_t)b->ntargets];
}

static void connect_more(bench_t *b);
static void all_connected(bench_t *b);

static void on_closed(uv_handle_t *h)
{
    client_t *c = h->data;
    free(c->pend);
    c->pend = NULL;
    c->pend_len = c->pend_cap = 0;
    if (c->flood && c->b->phase == 1) {
        /* Closed on it: it comes back, as an attacker would. */
        c->b->steps[c->b->cur].flood_closes++;
        c->state = C_IDLE;
        c->closing = 0;
    }
}

static void client_close(client_t *c)
{
    if (c->closing || c->state == C_IDLE)
        return;
    bench_t *b = c->b;
    int was_connecting = !c->flood && (c->state == C_CONNECTING || c->state == C_HANDSHAKE);
    c->closing = 1;
    c->state = C_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    if (was_connecting && b->phase == 0) {
        b->connecting--;
        if (!b->in_connect)
            connect_more(b);
    }
}

static void on_ready(client_t *c)
{
    bench_t *b = c->b;
    if (c->flood) {
        c->state = C_JOINED;
        return;
    }
    c->state = C_OPEN;
    b->connecting--;
    b->connected++;
    b->ready[b->nready++] = c;
    if (!(b->cfg.echo_path && *b->cfg.echo_path)) {
        char j[96];
        int n = snprintf(j, sizeof(j), "{\"command\":\"join\",\"room\":%ld}", b->room_ids[c->room]);
        client_send_frame(c, 0x1, j, (size_t)n);
    } else {
        c->state = C_JOINED;
        b->joined++;
    }
    connect_more(b);
}

/* The user of a socket: socket i of the measured ones is user i mod U,
 * flooder i is user U + i. */
static long cookie_of(const client_t *c)
{
    const bench_t *b = c->b;
    return c->flood ? b->cfg.users + (long)(c - b->flooders) : (long)(c->idx % b->cfg.users);
}

static void on_connect(uv_connect_t *req, int status)
{
    client_t *c = req->data;
    bench_t *b = c->b;
    if (status < 0) {
        if (b->complaints++ < 5 && !c->flood)
            fprintf(stderr, "chat-bench: client %u: connect: %s\n", c->idx, uv_strerror(status));
        b->failed += !c->flood;
        client_close(c);
        return;
    }
    if (c->state == C_CLOSED)
        return;
    uv_tcp_nodelay(&c->tcp, 1);
    const target_t *t = client_target(c);
    uint8_t key[16];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)rnd(b);
    char k64[32];
    size_t kl = ifc_base64_encode(key, 16, k64);
    k64[kl] = '\0';
    ifc_ws_accept_key(k64, kl, c->accept);
    int echo = b->cfg.echo_path && *b->cfg.echo_path;
    char req_text[1024];
    int n =
        snprintf(req_text, sizeof(req_text),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: %s\r\n"
                 "User-Agent: chat-bench\r\n%s%s%s%s\r\n",
                 echo ? b->cfg.echo_path : b->cfg.path, t->host, k64, t->origin,
                 b->cfg.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                  "client_max_window_bits\r\n"
                                : "",
                 echo ? "" : "Cookie: ", echo ? "" : b->cookies[cookie_of(c)], echo ? "" : "\r\n");
    c->state = C_HANDSHAKE;
    client_write(c, (const uint8_t *)req_text, (size_t)n);
    if (c->state != C_CLOSED)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void connect_one(bench_t *b, client_t *c)
{
    const target_t *t = client_target(c);
    uv_tcp_init(b->loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    c->state = C_CONNECTING;
    b->connecting += !c->flood;
    int rc = 0;
    if (b->cfg.sources > 1) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->idx % b->cfg.sources));
        rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
    }
    if (rc == 0)
        rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&t->addr, on_connect);
    if (rc != 0) {
        if (b->complaints++ < 5)
            fprintf(stderr, "chat-bench: client %u: connect: %s\n", c->idx, uv_strerror(rc));
        b->failed++;
        client_close(c);
    }
}

static void connect_more(bench_t *b)
{
    b->in_connect = 1;
    while (b->phase == 0 && b->connecting < b->cfg.connect_parallel &&
           b->next_connect < b->cfg.clients) {
        client_t *c = &b->clients[b->next_connect++];
        connect_one(b, c);
    }
    b->in_connect = 0;
    if (b->phase == 0 && b->connecting == 0 && b->next_connect >= b->cfg.clients)
        all_connected(b);
}

static void on_hold_done(uv_timer_t *t);

/* The flooders: each one that is open sends its next frames while its
 * socket takes them; each one that was closed connects again. */
static void on_flood_tick(uv_timer_t *t)
{
    bench_t *b = t->data;
    if (b->phase != 1)
        return;
    step_t *s = &b->steps[b->cur];
    b->flood_ticks++;
    for (long i = 0; i < b->cfg.flooders; i++) {
        client_t *c = &b->flooders[i];
        if (c->state == C_IDLE) {
            /* Back every 50 ms: a flood of connections is another test. */
            if (b->flood_ticks % 50 == 0)
                connect_one(b, c);
            continue;
        }
        long room = b->room_ids[0];
        for (int k = 0; k < 64 && c->state == C_JOINED && !c->closing &&
                        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < FLOOD_QUEUED;
             k++) {
            char cmd[128];
            int n = 0;
            switch (c->flood_next++ % 4) {
            case 0:
                n = snprintf(cmd, sizeof(cmd),
                             "{\"command\":\"history\",\"room\":%ld,\"limit\":100}", room);
                break;
            case 1:
                client_send_frame(c, 0x1, b->junk, FLOOD_JUNK);
                break;
            case 2:
                n = snprintf(cmd, sizeof(cmd), "{\"command\":\"leave\",\"room\":%ld}", room);
                break;
            default:
                n = snprintf(cmd, sizeof(cmd), "{\"command\":\"join\",\"room\":%ld,\"since\":0}",
                             room);
                break;
            }
            if (n > 0)
                client_send_frame(c, 0x1, cmd, (size_t)n);
            s->flood_frames++;
        }
    }
}

static void start_flooding(bench_t *b)
{
    for (long i = 0; i < b->cfg.flooders; i++) {
        client_t *c = &b->flooders[i];
        c->b = b;
        c->flood = 1;
        c->idx = (uint32_t)(b->cfg.clients + i);
        connect_one(b, c);
    }
    uv_timer_start(&b->flood_tick, on_flood_tick, 1, 1);
}

/* Waits for the join replies, then runs the steps or holds the sockets. */
static void on_wait_joined(uv_timer_t *t)
{
    bench_t *b = t->data;
    if (b->joined < b->nready && !b->stopped && now_us() - b->t0_us < 60 * 1000000ull)
        return;
    uv_timer_stop(t);
    printf("connected clients=%ld failed=%ld joined=%ld deflate=%ld seconds=%.2f "
           "connects_per_s=%.0f\n",
           b->nready, b->failed, b->joined, b->deflate_sockets,
           (double)(now_us() - b->connect_start_us) / 1e6,
           (double)b->nready * 1e6 / (double)(now_us() - b->connect_start_us + 1));
    if (b->cfg.idle) {
        printf("idle sockets=%ld\n", b->nready);
        fflush(stdout);
        b->phase = 2;
        if (b->cfg.hold_ms > 0)
            uv_timer_start(&b->hold, on_hold_done, (uint64_t)b->cfg.hold_ms, 0);
        return;
    }
    fflush(stdout);
    if (b->nready == 0 || b->stopped) {
        b->exit_code = 1;
        finish(b);
        return;
    }
    /* Senders must have joined; keep only those. */
    long n = 0;
    for (long i = 0; i < b->nready; i++)
        if (b->ready[i]->state == C_JOINED)
            b->ready[n++] = b->ready[i];
    b->nready = n;
    b->phase = 1;
    if (b->cfg.flooders)
        start_flooding(b);
    start_step(b);
}

static void on_hold_done(uv_timer_t *t)
{
    finish(t->data);
}

static void all_connected(bench_t *b)
{
    b->t0_us = now_us();
    b->phase = 4; /* waiting for joins: no more connects */
    uv_timer_start(&b->tick, on_wait_joined, 0, 5);
}

static void finish(bench_t *b)
{
    if (b->phase == 3)
        return;
    b->phase = 3;
    uv_timer_stop(&b->tick);
    uv_timer_stop(&b->hold);
    uv_timer_stop(&b->flood_tick);
    uv_close((uv_handle_t *)&b->tick, NULL);
    uv_close((uv_handle_t *)&b->hold, NULL);
    uv_close((uv_handle_t *)&b->flood_tick, NULL);
    for (long i = 0; i < b->cfg.flooders; i++)
        client_close(&b->flooders[i]);
    uv_close((uv_handle_t *)&b->sigint, NULL);
    uv_close((uv_handle_t *)&b->sigterm, NULL);
    for (long i = 0; i < b->cfg.clients; i++)
        client_close(&b->clients[i]);
}

static void on_signal(uv_signal_t *s, int signum)
{
    bench_t *b = s->data;
    (void)signum;
    b->stopped = 1;
    if (b->phase != 1)
        finish(b);
}

/* ---- Main ------------------------------------------------------------------ */

static void raise_fd_limit(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t need = (rlim_t)want;
    if (rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need)
        fprintf(stderr, "chat-bench: warning: only %lu file descriptors (ulimit -n)\n",
                (unsigned long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
    static bench_t bench;
    bench_t *b = &bench;
    settings_t *s = &b->cfg;
    *s = (settings_t){
        .targets = "127.0.0.1:8000",
        .path = "/chat/stream/",
        .echo_path = "",
        .origin = "",
        .user_prefix = "bench",
        .password = "bench-password",
        .rooms = "1",
        .rates = "100",
        .cpu_pids = "",
        .clients = 100,
        .users = 0,
        .duration_ms = 3000,
        .drain_ms = 2000,
        .p99_limit_ms = 50,
        .message_size = 64,
        .sources = 1,
        .connect_parallel = 200,
        .login_threads = 4,
        .first_user = 1,
        .retries = 1,
    };
    mc_option_t opts[] = {
        {"--target", "CHAT_BENCH_TARGET", MC_OPT_STRING, &s->targets, 0, 0,
         "servers as address:port, comma-separated; sockets are spread over them so that "
         "every room has members on each"},
        {"--path", NULL, MC_OPT_STRING, &s->path, 0, 0, "path of the chat WebSocket"},
        {"--echo-path", NULL, MC_OPT_STRING, &s->echo_path, 0, 0,
         "measure an echo WebSocket at this path instead (no login, no rooms)"},
        {"--origin", NULL, MC_OPT_STRING, &s->origin, 0, 0,
         "Origin header; empty: http://ADDRESS:PORT of each server"},
        {"--clients", NULL, MC_OPT_INT, &s->clients, 1, 2000000, "WebSockets to open"},
        {"--users", NULL, MC_OPT_INT, &s->users, 0, 2000000,
         "users to log in (socket i uses user i mod U); 0: one per socket"},
        {"--user-prefix", NULL, MC_OPT_STRING, &s->user_prefix, 0, 0,
         "user names are PREFIX1, PREFIX2, ..."},
        {"--first-user", NULL, MC_OPT_INT, &s->first_user, 0, 1000000000,
         "number of the first user name"},
        {"--password", "CHAT_BENCH_PASSWORD", MC_OPT_STRING, &s->password, 0, 0,
         "password of every user"},
        {"--rooms", NULL, MC_OPT_STRING, &s->rooms, 0, 0,
         "room ids, comma-separated; socket i joins room i mod R"},
        {"--rates", NULL, MC_OPT_STRING, &s->rates, 0, 0,
         "total messages per second, comma-separated: one step each, in order"},
        {"--duration", NULL, MC_OPT_INT, &s->duration_ms, 100, 3600000,
         "sending time of a step, ms"},
        {"--drain", NULL, MC_OPT_INT, &s->drain_ms, 0, 600000,
         "longest wait for deliveries after a step, ms (then they count as lost)"},
        {"--p99-limit", NULL, MC_OPT_INT, &s->p99_limit_ms, 1, 600000,
         "a step passes with no loss and a 99th percentile up to this, ms"},
        {"--retries", NULL, MC_OPT_INT, &s->retries, 0, MAX_RETRIES,
         "times a failed step runs again before the ladder stops"},
        {"--keep-going", NULL, MC_OPT_BOOL, &s->keep_going, 0, 0,
         "run every step, even after one failed"},
        {"--message-size", NULL, MC_OPT_INT, &s->message_size, 1, MSG_MAX,
         "bytes of message text (at least the time stamp)"},
        {"--sources", NULL, MC_OPT_INT, &s->sources, 1, 250,
         "source addresses 127.0.0.1 .. 127.0.0.N (about 28,000 sockets each)"},
        {"--connect-parallel", NULL, MC_OPT_INT, &s->connect_parallel, 1, 100000,
         "handshakes in flight at once"},
        {"--login-threads", NULL, MC_OPT_INT, &s->login_threads, 1, 64, "logins in parallel"},
        {"--idle", NULL, MC_OPT_BOOL, &s->idle, 0, 0,
         "open the sockets, each joined to its room, print \"idle sockets=N\" and hold them (no "
         "messages)"},
        {"--hold", NULL, MC_OPT_INT, &s->hold_ms, 0, 86400000,
         "with --idle: how long to hold, ms; 0: until SIGINT or SIGTERM"},
        {"--flooders", NULL, MC_OPT_INT, &s->flooders, 0, MAX_FLOODERS,
         "sockets that flood while the steps run (history, 60 KiB junk frames, leave and "
         "join, as fast as the server reads), as users after the others"},
        {"--deflate", NULL, MC_OPT_BOOL, &s->deflate, 0, 0,
         "offer permessage-deflate; compress what is sent and inflate what arrives compressed"},
        {"--cpu-pids", NULL, MC_OPT_STRING, &s->cpu_pids, 0, 0,
         "process ids, comma-separated, whose CPU per message each step reports"},
    };
    size_t nopts = sizeof(opts) / sizeof(opts[0]);
    char err[256];
    int first;
    int rc = mc_config_parse(opts, nopts, argc, argv, &first, err, sizeof(err));
    if (rc == MC_CONFIG_HELP) {
        mc_config_usage(stdout, "chat-bench", "[options]", opts, nopts);
        return 0;
    }
    if (rc != 0 || first != argc) {
        fprintf(stderr, "chat-bench: %s\n", rc ? err : "unexpected argument");
        return 2;
    }
    if (parse_targets(b) != 0) {
        fprintf(stderr, "chat-bench: --target: want IPv4:PORT[,IPv4:PORT...]\n");
        return 2;
    }
    b->nrooms = parse_longs(s->rooms, b->room_ids, MAX_ROOMS);
    b->nrates = parse_longs(s->rates, b->rates, MAX_RATES);
    b->npids = *s->cpu_pids ? parse_longs(s->cpu_pids, b->pids, MAX_PIDS) : 0;
    if (b->nrooms <= 0 || b->nrates <= 0 || b->npids < 0) {
        fprintf(stderr, "chat-bench: --rooms, --rates and --cpu-pids want positive numbers, "
                        "comma-separated\n");
        return 2;
    }
    if (s->deflate &&
        (ifc_ws_deflater_new(&b->deflater) != 0 || ifc_ws_inflater_new(&b->inflater) != 0)) {
        fprintf(stderr, "chat-bench: out of memory\n");
        return 1;
    }
    int echo = *s->echo_path != '\0';
    if (s->users == 0 || s->users > s->clients)
        s->users = s->clients;
    raise_fd_limit(s->clients + 64);
    b->rng = (uint32_t)(uv_hrtime() ^ (uint64_t)getpid()) | 1;
    b->clients = calloc((size_t)s->clients, sizeof(*b->clients));
    b->ready = calloc((size_t)s->clients, sizeof(*b->ready));
    if (echo || s->idle)
        s->flooders = 0;
    b->cookies = echo ? NULL : calloc((size_t)(s->users + s->flooders), sizeof(*b->cookies));
    b->junk = s->flooders ? malloc(FLOOD_JUNK) : NULL;
    if (b->junk)
        memset(b->junk, 'j', FLOOD_JUNK);
    if (!b->clients || !b->ready || (!echo && !b->cookies) || (s->flooders && !b->junk)) {
        fprintf(stderr, "chat-bench: out of memory\n");
        return 1;
    }
    b->steps[0].rate = b->rates[0];
    for (long i = 0; i < s->clients; i++) {
        b->clients[i].b = b;
        b->clients[i].idx = (uint32_t)i;
        b->clients[i].room = (uint16_t)(i % b->nrooms);
    }
    if (!echo && login_all(b) != 0)
        return 1;

    b->loop = uv_default_loop();
    uv_timer_init(b->loop, &b->tick);
    uv_timer_init(b->loop, &b->hold);
    uv_timer_init(b->loop, &b->flood_tick);
    b->tick.data = b->hold.data = b->flood_tick.data = b;
    uv_signal_init(b->loop, &b->sigint);
    uv_signal_init(b->loop, &b->sigterm);
    b->sigint.data = b->sigterm.data = b;
    uv_signal_start(&b->sigint, on_signal, SIGINT);
    uv_signal_start(&b->sigterm, on_signal, SIGTERM);
    b->connect_start_us = now_us();
    connect_more(b);
    uv_run(b->loop, UV_RUN_DEFAULT);
    uv_loop_close(b->loop);

    for (int i = 0; i < MAX_STEPS; i++)
        free(b->steps[i].lat);
    free(b->clients);
    free(b->ready);
    free(b->cookies);
    free(b->junk);
    ifc_ws_deflater_free(b->deflater);
    ifc_ws_inflater_free(b->inflater);
    if (b->failed || b->closed_early)
        fprintf(stderr, "chat-bench: %ld sockets failed to open, %ld closed early\n", b->failed,
                b->closed_early);
    return b->exit_code;
}
