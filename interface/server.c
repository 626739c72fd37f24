/*
 * interface/server.c: connections, HTTP routing, WebSocket sessions and
 * timeouts of bin/chat-interface (see server.h).
 *
 * A connection is one struct with its uv_tcp_t and uv_timer_t embedded; it
 * is freed by the second close callback. Callbacks that outlive a
 * connection (a push's completion) carry its id, looked up in the
 * connection table, never a pointer. Input is parsed straight from one
 * shared read buffer; bytes that cannot be handled yet (a pipelined request
 * behind one still waiting for its worker) are kept per connection and
 * reading stops until the answer is out, so a client cannot make the
 * server buffer without bound.
 */
#include "interface/server.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/envelope.h"
#include "common/error.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/wire.h"
#include "interface/handshake.h"
#include "interface/http.h"
#include "interface/static.h"
#include "interface/ws_frame.h"

#define CHAT_PATH "/chat/stream/"
#define WORKER_QUEUE "worker"
#define READ_BUF (64 * 1024)
#define FILE_CHUNK (64 * 1024)
#define CLOSE_GRACE_MS 2000
#define CORK_MAX 4 /* frames a WebSocket gathers before one write(2) */

/* What a socket hears when its message cannot reach a worker now. */
static const char server_busy[] = "{\"error\":\"" MC_ERROR_SERVER_BUSY "\"}";

enum conn_kind { K_HTTP, K_WS_CHAT, K_WS_ECHO };
enum wait_kind { W_NONE, W_HTTP, W_CONNECT };
enum timer_kind { T_HEAD, T_IDLE, T_REPLY, T_PING, T_CLOSE };

/* A refcounted byte buffer, shared by every socket a group frame goes to. */
typedef struct sbuf {
    int refs;
    size_t len;
    uint8_t data[];
} sbuf_t;

typedef struct conn conn_t;

struct conn {
    uv_tcp_t tcp; /* first: handle->data is unused, container is the conn */
    uv_timer_t timer;
    uv_shutdown_t shutdown; /* the FIN after the last byte of a closing connection */
    ifc_server_t *srv;
    uint64_t id;
    conn_t *hnext;             /* hash bucket chain */
    conn_t *prev, *next;       /* all connections */
    int kind;                  /* enum conn_kind */
    int wait;                  /* enum wait_kind: a worker's reply is due */
    int handles;               /* open uv handles; freed at 0 */
    int timer_kind;            /* enum timer_kind: what the timer is counting */
    int in_feed;               /* input is being handled: do not re-enter */
    unsigned closing : 1;      /* uv_close called */
    unsigned draining : 1;     /* closing: nothing more is queued, input is discarded */
    unsigned shut : 1;         /* uv_shutdown called: the queue is written out */
    unsigned close_sent : 1;   /* a close frame went out */
    unsigned reading : 1;      /* uv_read_start active */
    unsigned ping_due : 1;     /* a ping is out and no frame came since */
    unsigned keep_alive : 1;   /* for the response being written */
    unsigned head_only : 1;    /* HEAD: no body */
    unsigned disconnected : 1; /* websocket.disconnect sent */
    int close_code;
    ifc_http_parser_t *http; /* HTTP only */
    ifc_ws_parser_t *ws;     /* WebSocket only */
    mc_scope_t *scope;       /* chat WebSocket only */
    uint8_t *pend;           /* input not handled yet */
    size_t pend_len;
    size_t queued;          /* bytes handed to uv_write, not yet written */
    sbuf_t *cork[CORK_MAX]; /* frames waiting for the end of the loop turn */
    unsigned ncork;
    conn_t *corked_next; /* in srv->corked while corked_in */
    unsigned corked_in;
    uint64_t last_in; /* loop time of the last whole frame received */
    int file_fd;      /* static file being sent, -1 */
    uint64_t file_left;
    char accept[IFC_WS_ACCEPT_LEN + 1];
    char client[48];
};

struct ifc_server {
    uv_loop_t *loop;
    ifc_server_config_t cfg;
    ifc_bus_t bus;
    uv_tcp_t listener;
    uv_timer_t shutdown_timer;
    uv_check_t check;     /* after each loop turn: writes corked frames, drops the cache */
    uv_prepare_t prepare; /* before the loop waits: writes corked frames */
    conn_t *corked;       /* connections with corked frames */
    int handles;
    int listening, stopping, freed;
    int port;
    char root[PATH_MAX];
    uint64_t next_id;
    conn_t **table; /* id -> conn */
    size_t table_size, nconns;
    conn_t *conns;
    size_t pushes;     /* pushes whose callback has not run */
    size_t live_conns; /* connections not yet freed */
    void (*done)(void *);
    void *done_arg;
    /* The last frame encoded for an on_message data pointer. */
    char *cache_key; /* a copy of the envelope */
    size_t cache_len;
    sbuf_t *cache_frame;
    uint64_t cache_except; /* the local member the cached group message skips, or 0 */
    uint64_t cache_own;    /* the local member whose copy ends in ,"own":true, or 0 */
    size_t cache_hl;       /* the length of the cached frame's header */
    ifc_metrics_t m;
    uint8_t rbuf[READ_BUF];
};

typedef struct wreq {
    uv_write_t req;
    conn_t *c;
    sbuf_t *buf;
    size_t len; /* the bytes of buf handed to uv_write (its tail) */
} wreq_t;

static void conn_close(conn_t *c);
static void timer_set(conn_t *c, int kind, long ms);
static void conn_input(conn_t *c);
static void ws_close(conn_t *c, int code);
static void check_done(ifc_server_t *srv);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- Buffers, table ----------------------------------------------------- */

static sbuf_t *sbuf_new(size_t len)
{
    sbuf_t *b = malloc(sizeof(*b) + len);
    if (b) {
        b->refs = 1;
        b->len = len;
    }
    return b;
}

static void sbuf_unref(sbuf_t *b)
{
    if (b && --b->refs == 0)
        free(b);
}

static size_t slot(const ifc_server_t *srv, uint64_t id)
{
    return (size_t)(id * 0x9E3779B97F4A7C15ull >> 20) & (srv->table_size - 1);
}

static int table_add(ifc_server_t *srv, conn_t *c)
{
    if (srv->nconns + 1 > srv->table_size) {
        size_t size = srv->table_size ? srv->table_size * 2 : 256;
        conn_t **t = calloc(size, sizeof(*t));
        if (!t)
            return MC_ENOMEM;
        conn_t **old = srv->table;
        size_t old_size = srv->table_size;
        srv->table = t;
        srv->table_size = size;
        for (size_t i = 0; i < old_size; i++) {
            for (conn_t *x = old[i], *n; x; x = n) {
                n = x->hnext;
                size_t s = slot(srv, x->id);
                x->hnext = t[s];
                t[s] = x;
            }
        }
        free(old);
    }
    size_t s = slot(srv, c->id);
    c->hnext = srv->table[s];
    srv->table[s] = c;
    srv->nconns++;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    return 0;
}

static void table_remove(ifc_server_t *srv, conn_t *c)
{
    conn_t **p = &srv->table[slot(srv, c->id)];
    while (*p && *p != c)
        p = &(*p)->hnext;
    if (*p) {
        *p = c->hnext;
        srv->nconns--;
        if (c->prev)
            c->prev->next = c->next;
        else
            srv->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
    }
}

static conn_t *table_find(ifc_server_t *srv, uint64_t id)
{
    if (!srv->table_size)
        return NULL;
    for (conn_t *c = srv->table[slot(srv, id)]; c; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

/* ---- Writing ------------------------------------------------------------- */

static void file_next(conn_t *c);
static void linger(conn_t *c);

static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    conn_t *c = w->c;
    c->queued -= w->len;
    sbuf_unref(w->buf);
    free(w);
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->closing)
        return;
    if (c->file_fd >= 0 && c->queued == 0) {
        file_next(c);
        return;
    }
    if (c->queued == 0) {
        if (c->draining) {
            linger(c);
            return;
        }
        if (c->wait == W_NONE && c->kind == K_HTTP && c->pend_len > 0)
            conn_input(c);
    }
}

/* Hands bufs[0..n) to libuv (each takes a reference), skipping the first
 * done bytes, which are written already. */
static int write_queue(conn_t *c, sbuf_t *const *bufs, size_t n, size_t done)
{
    for (size_t i = 0; i < n; i++) {
        sbuf_t *b = bufs[i];
        if (done >= b->len) {
            done -= b->len;
            continue;
        }
        wreq_t *w = malloc(sizeof(*w));
        if (!w) {
            conn_close(c);
            return MC_ENOMEM;
        }
        w->c = c;
        w->buf = b;
        w->len = b->len - done;
        b->refs++;
        uv_buf_t ub = uv_buf_init((char *)b->data + done, (unsigned)w->len);
        done = 0;
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &ub, 1, on_write) != 0) {
            sbuf_unref(b);
            free(w);
            conn_close(c);
            return MC_EIO;
        }
        c->queued += w->len;
        c->srv->m.bytes_out += w->len;
    }
    return 0;
}

/* Writes a WebSocket's corked frames: one write(2) for all of them when the
 * socket buffer takes them (the usual case), libuv's queue for the rest. */
static int uncork(conn_t *c)
{
    size_t n = c->ncork;
    if (n == 0)
        return 0;
    c->ncork = 0;
    uv_buf_t ub[CORK_MAX];
    for (size_t i = 0; i < n; i++)
        ub[i] = uv_buf_init((char *)c->cork[i]->data, (unsigned)c->cork[i]->len);
    int written = uv_try_write((uv_stream_t *)&c->tcp, ub, (unsigned)n);
    size_t done = written > 0 ? (size_t)written : 0; /* UV_EAGAIN: queue them all */
    c->srv->m.bytes_out += done;
    int rc = write_queue(c, c->cork, n, done);
    for (size_t i = 0; i < n; i++)
        sbuf_unref(c->cork[i]);
    return rc;
}

/* After each loop turn. */
static void uncork_all(ifc_server_t *srv)
{
    while (srv->corked) {
        conn_t *c = srv->corked;
        srv->corked = c->corked_next;
        c->corked_in = 0;
        if (!c->closing)
            uncork(c);
    }
}

/* Hands a shared buffer to libuv (takes a reference), with no limit.
 *
 * A WebSocket with nothing queued corks it: the frames that one loop turn
 * produces for a socket (the group messages of one pop from Redis, say) go
 * out in one write(2) at its end, and a write that completes there needs no
 * queued request and no epoll_ctl to watch for writability. Only WebSockets
 * that are not draining do so, because for them the completion of a write
 * has nothing to do (on_write's follow-ups are for files, HTTP and
 * closing); any other write first writes what is corked, to keep order. */
static int write_raw(conn_t *c, sbuf_t *b)
{
    if (c->ncork == CORK_MAX && uncork(c) != 0)
        return MC_EIO;
    if (c->kind != K_HTTP && !c->draining && !c->closing && c->queued == 0 && c->file_fd < 0) {
        b->refs++;
        c->cork[c->ncork++] = b;
        if (!c->corked_in) {
            c->corked_in = 1;
            c->corked_next = c->srv->corked;
            c->srv->corked = c;
        }
        return 0;
    }
    if (uncork(c) != 0)
        return MC_EIO;
    return write_queue(c, &b, 1, 0);
}

static void slow_close(conn_t *c);

/* Queues a shared buffer (takes a reference). A WebSocket whose queue would
 * pass the send buffer is a slow reader: the buffer is dropped and the
 * socket closed with 1008, so memory does not grow. A closing WebSocket
 * takes nothing more. HTTP connections stop reading instead (conn_feed). */
static int write_buf(conn_t *c, sbuf_t *b)
{
    if (c->closing)
        return MC_ECLOSED;
    if (c->kind != K_HTTP) {
        if (c->draining)
            return MC_ECLOSED;
        if (c->queued > 0 && c->queued + b->len > (size_t)c->srv->cfg.send_buffer) {
            slow_close(c);
            return MC_EFULL;
        }
    }
    return write_raw(c, b);
}

static int write_copy(conn_t *c, const void *data, size_t len)
{
    sbuf_t *b = sbuf_new(len);
    if (!b)
        return MC_ENOMEM;
    memcpy(b->data, data, len);
    int rc = write_buf(c, b);
    sbuf_unref(b);
    return rc;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    if (status < 0 && !c->closing)
        conn_close(c);
}

/* The queue is written out: sends the FIN and waits for the peer's, reading
 * and discarding what it still sends. Closing a socket with unread input
 * makes the kernel send a reset, which would destroy the last bytes (a
 * close frame, a response) before the peer has read them. */
static void linger(conn_t *c)
{
    if (c->closing || c->shut)
        return;
    c->shut = 1;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

/* Closes once what is queued has been written and the peer has closed its
 * side, all within CLOSE_GRACE_MS; input is read and discarded meanwhile. */
static void drain_and_close(conn_t *c)
{
    if (c->closing)
        return;
    if (!c->draining) {
        c->draining = 1;
        timer_set(c, T_CLOSE, CLOSE_GRACE_MS);
        if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
    }
    if (uncork(c) == 0 && c->queued == 0 && c->file_fd < 0)
        linger(c);
}

/* ---- HTTP responses ------------------------------------------------------ */

static void http_finish(conn_t *c);

/* Sent with every response of ours and every worker response that does
 * not set them itself: the browser runs only our own files, never inline
 * code, never inside a frame. */
#define CSP                                                                                        \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
#define NSECURITY 4
static const ifc_http_header_t security_headers[NSECURITY] = {
    {"content-security-policy", 23, CSP, sizeof(CSP) - 1},
    {"x-content-type-options", 22, "nosniff", 7},
    {"referrer-policy", 15, "same-origin", 11},
    {"x-frame-options", 15, "DENY", 4},
};
#define MAX_RESPONSE_HEADERS (MC_ENVELOPE_MAX_HEADERS + NSECURITY)

/* Copies headers[0..n) into out and adds the security headers they lack;
 * returns the count (at most n + NSECURITY). */
static size_t with_security(ifc_http_header_t *out, const ifc_http_header_t *headers, size_t n)
{
    memcpy(out, headers, n * sizeof(*headers));
    size_t o = n;
    for (size_t i = 0; i < NSECURITY; i++) {
        const ifc_http_header_t *s = &security_headers[i];
        size_t j = 0;
        while (j < n && !(headers[j].name_len == s->name_len &&
                          strncasecmp(headers[j].name, s->name, s->name_len) == 0))
            j++;
        if (j == n)
            out[o++] = *s;
    }
    return o;
}

/* Answers the current request; the security headers are added. A HEAD
 * request gets the head only, with the body's content-length. */
static void respond(conn_t *c, int status, const ifc_http_header_t *headers, size_t n,
                    const void *body, size_t body_len)
{
    char head[8192];
    size_t hl;
    ifc_http_header_t all[MAX_RESPONSE_HEADERS];
    assert(n <= MC_ENVELOPE_MAX_HEADERS);
    n = with_security(all, headers, n);
    int rc = ifc_http_response_head(head, sizeof(head), status, all, n, (long long)body_len,
                                    c->keep_alive, &hl);
    if (rc != 0) {
        rc = ifc_http_response_head(head, sizeof(head), 502, NULL, 0, 0, c->keep_alive, &hl);
        body_len = 0;
        if (rc != 0) {
            conn_close(c);
            return;
        }
    }
    size_t total = hl + (c->head_only ? 0 : body_len);
    sbuf_t *b = sbuf_new(total);
    if (!b) {
        conn_close(c);
        return;
    }
    memcpy(b->data, head, hl);
    if (!c->head_only && body_len)
        memcpy(b->data + hl, body, body_len);
    write_buf(c, b);
    sbuf_unref(b);
    http_finish(c);
}

/* A short text/plain answer made of the reason phrase. */
static void respond_simple(conn_t *c, int status)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%s\n", ifc_http_reason(status));
    ifc_http_header_t h[] = {{"content-type", 12, "text/plain; charset=utf-8", 25},
                             {"cache-control", 13, "no-store", 8}};
    respond(c, status, h, 2, body, n > 0 && (size_t)n < sizeof(body) ? (size_t)n : 0);
}

/* The current request is answered: go on with the next one or close. */
static void http_finish(conn_t *c)
{
    c->wait = W_NONE;
    if (c->closing)
        return;
    uv_timer_stop(&c->timer);
    if (!c->keep_alive || ifc_http_status(c->http)) {
        drain_and_close(c);
        return;
    }
    ifc_http_next(c->http);
    timer_set(c, T_IDLE, c->srv->cfg.idle_timeout_ms);
    conn_input(c);
}

/* Sends the next chunk of the static file. The read() runs on the loop, on
 * purpose: the files are the few small assets of the web root, served from
 * the page cache after the first request, where a 64 KiB read costs
 * microseconds, less than a round trip through libuv's threadpool; a chunk
 * is read only once the previous one has been written out, so a slow client
 * never makes the server read ahead or hold more than one chunk. A web root
 * on slow or network storage would want uv_fs_read instead. */
static void file_next(conn_t *c)
{
    if (c->file_left == 0) {
        close(c->file_fd);
        c->file_fd = -1;
        http_finish(c);
        return;
    }
    size_t n = c->file_left < FILE_CHUNK ? (size_t)c->file_left : FILE_CHUNK;
    sbuf_t *b = sbuf_new(n);
    ssize_t r = b ? read(c->file_fd, b->data, n) : -1;
    if (r <= 0) {
        sbuf_unref(b);
        close(c->file_fd);
        c->file_fd = -1;
        conn_close(c);
        return;
    }
    b->len = (size_t)r;
    c->file_left -= (uint64_t)r;
    write_buf(c, b);
    sbuf_unref(b);
}

static void serve_static(conn_t *c, const ifc_http_request_t *req)
{
    char rel[IFC_STATIC_PATH_MAX];
    ifc_static_file_t f;
    /* /static/x is the file static/x of the web root. */
    size_t skip = 1;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        ifc_http_header_t allow = {"allow", 5, "GET, HEAD", 9};
        respond(c, 405, &allow, 1, "", 0);
        return;
    }
    if (ifc_static_decode(req->path + skip, req->path_len - skip, rel, sizeof(rel)) != 0 ||
        ifc_static_open(c->srv->root, rel, &f) != 0) {
        respond_simple(c, 404);
        return;
    }
    char date[30];
    ifc_http_date(f.mtime, date);
    ifc_http_header_t h[] = {
        {"content-type", 12, f.content_type, strlen(f.content_type)},
        {"etag", 4, f.etag, strlen(f.etag)},
        {"last-modified", 13, date, strlen(date)},
        {"cache-control", 13, "public, max-age=300", 19},
        security_headers[0],
        security_headers[1],
        security_headers[2],
        security_headers[3],
    };
    size_t inm_len;
    const char *inm = ifc_http_header(req, "if-none-match", &inm_len);
    if (inm && ifc_static_etag_match(inm, inm_len, f.etag)) {
        close(f.fd);
        char head[2048];
        size_t hl;
        if (ifc_http_response_head(head, sizeof(head), 304, h + 1, 3, -1, c->keep_alive, &hl) == 0)
            write_copy(c, head, hl);
        http_finish(c);
        return;
    }
    char head[2048];
    size_t hl;
    if (ifc_http_response_head(head, sizeof(head), 200, h, 4 + NSECURITY, (long long)f.size,
                               c->keep_alive, &hl) != 0) {
        close(f.fd);
        respond_simple(c, 500);
        return;
    }
    write_copy(c, head, hl);
    if (c->head_only || f.size == 0) {
        close(f.fd);
        http_finish(c);
        return;
    }
    /* The file goes out a chunk at a time: memory stays bounded. */
    c->file_fd = f.fd;
    c->file_left = f.size;
    c->wait = W_HTTP;
    if (c->queued == 0)
        file_next(c);
}

/* "chat_interface_info{process="NAME"} 1": which process answered, when
 * several share an address. Returns the length written (0 without a name
 * or room). */
static int metrics_info(char *out, size_t size, const char *instance)
{
    static const char head[] = "# TYPE chat_interface_info gauge\n"
                               "chat_interface_info{process=\"";
    size_t o = sizeof(head) - 1;
    if (!instance || !*instance || size < o + 2 * strlen(instance) + 8)
        return 0;
    memcpy(out, head, o);
    for (const char *p = instance; *p; p++) {
        if (*p == '"' || *p == '\\' || *p == '\n') /* label values escape these */
            out[o++] = '\\';
        out[o++] = *p == '\n' ? 'n' : *p;
    }
    memcpy(out + o, "\"} 1\n", 6);
    return (int)(o + 5);
}

static void serve_metrics(conn_t *c)
{
    const ifc_metrics_t *m = &c->srv->m;
    char body[4096];
    int n = snprintf(body, sizeof(body),
                     "# TYPE chat_interface_open_sockets gauge\n"
                     "chat_interface_open_sockets %llu\n"
                     "# TYPE chat_interface_accepted_sockets_total counter\n"
                     "chat_interface_accepted_sockets_total %llu\n"
                     "chat_interface_http_requests_total %llu\n"
                     "chat_interface_upgrades_accepted_total %llu\n"
                     "chat_interface_upgrades_rejected_total %llu\n"
                     "chat_interface_frames_in_total %llu\n"
                     "chat_interface_frames_out_total %llu\n"
                     "chat_interface_bytes_in_total %llu\n"
                     "chat_interface_bytes_out_total %llu\n"
                     "chat_interface_envelopes_pushed_total %llu\n"
                     "chat_interface_push_failures_total %llu\n"
                     "chat_interface_replies_popped_total %llu\n"
                     "chat_interface_replies_dropped_total %llu\n"
                     "chat_interface_closed_slow_total %llu\n"
                     "chat_interface_closed_timeout_total %llu\n"
                     "chat_interface_redis_errors_total %llu\n",
                     (unsigned long long)m->open_sockets, (unsigned long long)m->accepted_sockets,
                     (unsigned long long)m->http_requests, (unsigned long long)m->upgrades_accepted,
                     (unsigned long long)m->upgrades_rejected, (unsigned long long)m->frames_in,
                     (unsigned long long)m->frames_out, (unsigned long long)m->bytes_in,
                     (unsigned long long)m->bytes_out, (unsigned long long)m->envelopes_pushed,
                     (unsigned long long)m->push_failures, (unsigned long long)m->replies_popped,
                     (unsigned long long)m->replies_dropped, (unsigned long long)m->closed_slow,
                     (unsigned long long)m->closed_timeout, (unsigned long long)m->redis_errors);
    if (n < 0 || (size_t)n >= sizeof(body)) {
        respond_simple(c, 500);
        return;
    }
    n += metrics_info(body + n, sizeof(body) - (size_t)n, c->srv->cfg.instance);
    ifc_http_header_t h[] = {{"content-type", 12, "text/plain; version=0.0.4", 25},
                             {"cache-control", 13, "no-store", 8}};
    respond(c, 200, h, 2, body, (size_t)n);
}

/* ---- Envelopes to workers -------------------------------------------------- */

static void on_pushed(void *arg, int status)
{
    /* arg carries the connection id, not a pointer: it may be gone. */
    ifc_server_t *srv = NULL;
    uint64_t *box = arg;
    srv = (ifc_server_t *)(uintptr_t)box[1];
    uint64_t id = box[0];
    free(box);
    srv->pushes--;
    if (status == 0) {
        srv->m.envelopes_pushed++;
    } else {
        srv->m.push_failures++;
        if (status == MC_EREDIS)
            srv->m.redis_errors++;
        conn_t *c = table_find(srv, id);
        if (c && !c->closing) {
            if (c->wait == W_HTTP || c->wait == W_CONNECT) {
                uv_timer_stop(&c->timer);
                respond_simple(c, 503);
            } else if (c->kind == K_WS_CHAT) {
                uint8_t *f;
                size_t fl;
                if (ifc_ws_frame_encode(IFC_WS_OP_TEXT, server_busy, sizeof(server_busy) - 1, &f,
                                        &fl) == 0) {
                    write_copy(c, f, fl);
                    free(f);
                }
            }
        }
    }
    check_done(srv);
}

/* Encodes env with the connection's reply channel and pushes it. */
static int push_env(conn_t *c, mc_envelope_t *env)
{
    ifc_server_t *srv = c->srv;
    char reply[256];
    if (srv->bus.reply_channel(srv->bus.ctx, c->id, reply, sizeof(reply)) != 0)
        return MC_EINVAL;
    env->reply = reply;
    char *out;
    size_t len;
    int rc = mc_envelope_encode(env, &out, &len);
    if (rc != 0)
        return rc;
    uint64_t *box = malloc(2 * sizeof(uint64_t));
    if (!box) {
        free(out);
        return MC_ENOMEM;
    }
    box[0] = c->id;
    box[1] = (uint64_t)(uintptr_t)srv;
    rc = srv->bus.push(srv->bus.ctx, WORKER_QUEUE, out, len, on_pushed, box);
    free(out);
    if (rc != 0) {
        free(box);
        srv->m.push_failures++;
        if (rc == MC_EREDIS)
            srv->m.redis_errors++;
        return rc;
    }
    srv->pushes++;
    return 0;
}

/* Copies the request's headers as NUL-terminated strings into store. */
static int copy_headers(const ifc_http_request_t *req, mc_envelope_t *env, char *store, size_t size)
{
    size_t o = 0;
    env->nheaders = 0;
    for (size_t i = 0; i < req->nheaders && env->nheaders < MC_ENVELOPE_MAX_HEADERS; i++) {
        const ifc_http_header_t *h = &req->headers[i];
        if (h->name_len + h->value_len + 2 > size - o)
            return MC_ETOOBIG;
        char *name = store + o;
        memcpy(name, h->name, h->name_len);
        name[h->name_len] = '\0';
        o += h->name_len + 1;
        char *value = store + o;
        memcpy(value, h->value, h->value_len);
        value[h->value_len] = '\0';
        o += h->value_len + 1;
        env->headers[env->nheaders].name = name;
        env->headers[env->nheaders].value = value;
        env->nheaders++;
    }
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes %XX escapes (not %00) into out, NUL-terminated, truncating. */
static void percent_decode(const char *in, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < size; i++) {
        int hi, lo;
        if (in[i] == '%' && len - i >= 3 && (hi = hexval(in[i + 1])) >= 0 &&
            (lo = hexval(in[i + 2])) >= 0 && hi * 16 + lo != 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

/* Sends a request to the workers and waits for the reply. */
static void forward(conn_t *c, const ifc_http_request_t *req, int type)
{
    mc_envelope_t env;
    memset(&env, 0, sizeof(env));
    env.type = (mc_envelope_type_t)type;
    char method[16], *store = malloc(IFC_HTTP_MAX_HEAD + IFC_HTTP_MAX_URL + 16);
    char *body = NULL;
    if (!store) {
        respond_simple(c, 503);
        return;
    }
    char *path = store, *query = store + req->path_len + 1;
    char path_dec[IFC_HTTP_MAX_URL + 1];
    memcpy(path, req->path, req->path_len);
    path[req->path_len] = '\0';
    /* The path as the worker sees it: percent-decoded, like ASGI's. */
    percent_decode(req->path, req->path_len, path_dec, sizeof(path_dec));
    memcpy(query, req->query, req->query_len);
    query[req->query_len] = '\0';
    char *hstore = query + req->query_len + 1;
    size_t hsize = IFC_HTTP_MAX_HEAD + IFC_HTTP_MAX_URL + 16 - (size_t)(hstore - store);
    snprintf(method, sizeof(method), "%s", req->method);
    env.method = method;
    env.path = path_dec;
    env.query = query;
    env.client = c->client;
    if (req->body_len) {
        body = malloc(req->body_len + 1);
        if (!body) {
            free(store);
            respond_simple(c, 503);
            return;
        }
        memcpy(body, req->body, req->body_len);
        body[req->body_len] = '\0';
        env.body = body;
        env.body_len = strlen(body);
    } else {
        env.body = "";
    }
    int rc = copy_headers(req, &env, hstore, hsize);
    if (rc == 0)
        rc = push_env(c, &env);
    free(store);
    free(body);
    if (rc != 0) {
        respond_simple(c, rc == MC_ETOOBIG ? 413 : 503);
        return;
    }
    c->wait = type == MC_ENV_WS_CONNECT ? W_CONNECT : W_HTTP;
    timer_set(c, T_REPLY, c->srv->cfg.reply_timeout_ms);
}

/* ---- WebSocket sessions ----------------------------------------------------- */

static void ws_send(conn_t *c, ifc_ws_opcode_t op, const void *data, size_t len)
{
    uint8_t hdr[IFC_WS_MAX_HEADER];
    size_t hl = ifc_ws_frame_header(hdr, op, 1, len);
    sbuf_t *b = sbuf_new(hl + len);
    if (!b) {
        conn_close(c);
        return;
    }
    memcpy(b->data, hdr, hl);
    if (len)
        memcpy(b->data + hl, data, len);
    c->srv->m.frames_out++;
    write_buf(c, b);
    sbuf_unref(b);
}

/* Sends a close frame (code 1005 or 0: none) with reason (NULL: none; one
 * that is too long or not UTF-8 is left out) and closes after it. The
 * frame is queued even past the send buffer: it is the last one. */
static void ws_close_reason(conn_t *c, int code, const char *reason)
{
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > IFC_WS_MAX_CLOSE_REASON || (rl && mc_utf8_check(reason, rl) != 0))
        rl = 0;
    if (c->closing)
        return;
    if (!c->close_sent) {
        uint8_t f[2 + IFC_WS_MAX_CONTROL];
        size_t fl;
        c->close_sent = 1;
        c->close_code = code;
        sbuf_t *b;
        if (ifc_ws_close_encode(code == MC_CLOSE_NO_STATUS ? 0 : code, reason, rl, f, &fl) == 0 &&
            (b = sbuf_new(fl)) != NULL) {
            memcpy(b->data, f, fl);
            c->srv->m.frames_out++;
            write_raw(c, b);
            sbuf_unref(b);
        }
    }
    drain_and_close(c);
}

static void ws_close(conn_t *c, int code)
{
    ws_close_reason(c, code, NULL);
}

/* The peer does not read as fast as it is sent to: what is queued stays
 * queued (bounded by the send buffer), a close frame 1008 goes after it. */
static void slow_close(conn_t *c)
{
    c->srv->m.closed_slow++;
    mc_info("conn %llu: slow reader closed with 1008 (%zu bytes queued)", (unsigned long long)c->id,
            c->queued);
    ws_close(c, MC_CLOSE_POLICY_VIOLATION);
}

typedef struct groups {
    mc_envelope_t *env;
    char store[8192];
    size_t used;
} groups_t;

static void add_group(void *arg, const char *group)
{
    groups_t *g = arg;
    size_t n = strlen(group) + 1;
    if (g->env->ngroups == MC_ENVELOPE_MAX_GROUPS || n > sizeof(g->store) - g->used)
        return;
    memcpy(g->store + g->used, group, n);
    g->env->groups[g->env->ngroups++] = g->store + g->used;
    g->used += n;
}

/* websocket.receive or websocket.disconnect with the scope and groups. */
static int push_ws(conn_t *c, int type, const uint8_t *text, size_t len, int code)
{
    mc_envelope_t env;
    memset(&env, 0, sizeof(env));
    env.type = (mc_envelope_type_t)type;
    env.has_scope = 1;
    env.scope = *c->scope;
    env.code = code;
    env.client = c->client;
    groups_t *g = malloc(sizeof(*g));
    char *copy = malloc(len + 1);
    if (!g || !copy) {
        free(g);
        free(copy);
        return MC_ENOMEM;
    }
    g->env = &env;
    g->used = 0;
    c->srv->bus.each_group(c->srv->bus.ctx, c->id, add_group, g);
    if (len)
        memcpy(copy, text, len);
    copy[len] = '\0';
    env.body = copy;
    env.body_len = len;
    int rc = push_env(c, &env);
    free(copy);
    free(g);
    return rc;
}

static void send_busy(conn_t *c)
{
    ws_send(c, IFC_WS_OP_TEXT, server_busy, sizeof(server_busy) - 1);
}

static void ws_input(conn_t *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (!c->closing && !c->draining) {
        size_t used;
        ifc_ws_event_t ev;
        int rc = ifc_ws_parse(c->ws, data + off, len - off, &used, &ev);
        off += used;
        if (rc == IFC_WS_NEED_MORE)
            return;
        if (rc < 0) {
            ws_close(c, ifc_ws_parser_error(c->ws));
            return;
        }
        c->srv->m.frames_in++;
        c->ping_due = 0;
        c->last_in = uv_now(c->srv->loop);
        switch (ev.opcode) {
        case IFC_WS_OP_PING:
            ws_send(c, IFC_WS_OP_PONG, ev.data, ev.len);
            break;
        case IFC_WS_OP_PONG:
            break;
        case IFC_WS_OP_CLOSE:
            /* The close handshake echoes the peer's code. */
            ws_close(c, ev.close_code);
            return;
        case IFC_WS_OP_BINARY:
            if (c->kind == K_WS_CHAT) {
                ws_close(c, MC_CLOSE_UNSUPPORTED_DATA);
                return;
            }
            ws_send(c, IFC_WS_OP_BINARY, ev.data, ev.len);
            break;
        case IFC_WS_OP_TEXT:
            if (c->kind == K_WS_ECHO) {
                ws_send(c, IFC_WS_OP_TEXT, ev.data, ev.len);
            } else if (push_ws(c, MC_ENV_WS_RECEIVE, ev.data, ev.len, 0) != 0) {
                send_busy(c);
            }
            break;
        default:
            break;
        }
    }
}

static void upgrade(conn_t *c, int kind, const mc_scope_t *scope)
{
    char head[512];
    size_t hl;
    ifc_http_header_t h[] = {{"upgrade", 7, "websocket", 9},
                             {"connection", 10, "Upgrade", 7},
                             {"sec-websocket-accept", 20, c->accept, strlen(c->accept)}};
    uv_timer_stop(&c->timer);
    c->wait = W_NONE;
    c->ws = malloc(sizeof(*c->ws));
    if (scope) {
        c->scope = malloc(sizeof(*c->scope));
        if (c->scope)
            *c->scope = *scope;
    }
    if (!c->ws || (scope && !c->scope) ||
        ifc_http_response_head(head, sizeof(head), 101, h, 3, -1, 1, &hl) != 0) {
        conn_close(c);
        return;
    }
    ifc_ws_parser_init(c->ws, (size_t)(kind == K_WS_CHAT ? c->srv->cfg.max_message
                                                         : c->srv->cfg.echo_max_message));
    write_copy(c, head, hl);
    ifc_http_parser_free(c->http);
    free(c->http);
    c->http = NULL;
    c->kind = kind;
    c->srv->m.upgrades_accepted++;
    c->last_in = uv_now(c->srv->loop);
    timer_set(c, T_PING, c->srv->cfg.ping_interval_ms);
    conn_input(c);
}

static void reject_upgrade(conn_t *c, int status)
{
    c->srv->m.upgrades_rejected++;
    c->keep_alive = 0;
    if (status == 426) {
        ifc_http_header_t h[] = {{"sec-websocket-version", 21, "13", 2}};
        respond(c, 426, h, 1, "Upgrade Required\n", 17);
    } else {
        respond_simple(c, status);
    }
}

static int path_is(const ifc_http_request_t *req, const char *path)
{
    size_t n = strlen(path);
    return req->path_len == n && memcmp(req->path, path, n) == 0;
}

static void handle_request(conn_t *c, const ifc_http_request_t *req)
{
    ifc_server_t *srv = c->srv;
    srv->m.http_requests++;
    uv_timer_stop(&c->timer);
    c->keep_alive = req->keep_alive && !srv->stopping;
    c->head_only = strcmp(req->method, "HEAD") == 0;
    const char *echo = srv->cfg.echo_path;
    if (echo && *echo && path_is(req, echo)) {
        int rc = ifc_handshake_check(req, NULL, 0, c->accept);
        if (rc != 0)
            reject_upgrade(c, rc);
        else
            upgrade(c, K_WS_ECHO, NULL);
        return;
    }
    if (path_is(req, CHAT_PATH)) {
        int rc = ifc_handshake_check(req, srv->cfg.allowed_origins, 1, c->accept);
        if (rc != 0)
            reject_upgrade(c, rc);
        else
            forward(c, req, MC_ENV_WS_CONNECT);
        return;
    }
    if (req->upgrade)
        c->keep_alive = 0; /* what follows is not HTTP: answer, then close */
    if (path_is(req, "/healthz")) {
        ifc_http_header_t h[] = {{"content-type", 12, "text/plain", 10},
                                 {"cache-control", 13, "no-store", 8}};
        respond(c, 200, h, 2, "ok\n", 3);
    } else if (path_is(req, "/metrics")) {
        serve_metrics(c);
    } else if (req->path_len >= 8 && memcmp(req->path, "/static/", 8) == 0) {
        serve_static(c, req);
    } else {
        forward(c, req, MC_ENV_HTTP_REQUEST);
    }
}

/* Handles data; returns how much was consumed (less when a request waits). */
static size_t conn_feed(conn_t *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len && !c->closing && !c->draining) {
        if (c->kind != K_HTTP) {
            ws_input(c, data + off, len - off);
            return len;
        }
        if (c->wait != W_NONE || c->file_fd >= 0 || c->queued > (size_t)c->srv->cfg.send_buffer)
            return off;
        size_t used;
        int rc = ifc_http_feed(c->http, data + off, len - off, &used);
        off += used;
        if (rc == IFC_HTTP_REQUEST) {
            handle_request(c, ifc_http_request(c->http));
        } else if (rc == IFC_HTTP_NEED_MORE) {
            if (ifc_http_in_progress(c->http) && c->timer_kind != T_HEAD)
                timer_set(c, T_HEAD, c->srv->cfg.header_timeout_ms);
        } else {
            c->keep_alive = 0;
            respond_simple(c, ifc_http_status(c->http) ? ifc_http_status(c->http) : 400);
            return len;
        }
    }
    return c->closing || c->draining ? len : off;
}

/* Goes on with kept input, then reads again when all of it is handled. */
static void conn_input(conn_t *c)
{
    if (c->in_feed || c->closing || c->draining)
        return;
    if (c->pend_len > 0) {
        c->in_feed = 1;
        size_t used = conn_feed(c, c->pend, c->pend_len);
        c->in_feed = 0;
        if (c->closing)
            return;
        memmove(c->pend, c->pend + used, c->pend_len - used);
        c->pend_len -= used;
    }
    if (c->pend_len == 0) {
        free(c->pend);
        c->pend = NULL;
        if (!c->reading && !c->draining && c->wait == W_NONE &&
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
    }
}

/* ---- Connection lifecycle --------------------------------------------------- */

static void conn_freed(ifc_server_t *srv);

static void on_conn_close(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->handles > 0)
        return;
    ifc_server_t *srv = c->srv;
    if (c->http) {
        ifc_http_parser_free(c->http);
        free(c->http);
    }
    if (c->ws) {
        ifc_ws_parser_free(c->ws);
        free(c->ws);
    }
    free(c->scope);
    free(c->pend);
    for (conn_t **p = &srv->corked; c->corked_in && *p; p = &(*p)->corked_next)
        if (*p == c) {
            *p = c->corked_next;
            break;
        }
    for (unsigned i = 0; i < c->ncork; i++)
        sbuf_unref(c->cork[i]);
    free(c);
    conn_freed(srv);
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    ifc_server_t *srv = c->srv;
    if (c->kind == K_WS_CHAT && !c->disconnected) {
        c->disconnected = 1;
        int code = c->close_code ? c->close_code : MC_CLOSE_ABNORMAL;
        push_ws(c, MC_ENV_WS_DISCONNECT, NULL, 0, code);
        srv->bus.forget_conn(srv->bus.ctx, c->id);
    }
    c->closing = 1;
    table_remove(srv, c);
    srv->m.open_sockets--;
    if (c->file_fd >= 0) {
        close(c->file_fd);
        c->file_fd = -1;
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
    uv_close((uv_handle_t *)&c->timer, on_conn_close);
    check_done(srv);
}

static void on_timer(uv_timer_t *t)
{
    conn_t *c = t->data;
    switch (c->timer_kind) {
    case T_HEAD:
        /* Too slow to send a request head: slowloris is cut off. */
        c->srv->m.closed_timeout++;
        if (c->http && ifc_http_in_progress(c->http)) {
            c->keep_alive = 0;
            respond_simple(c, 408);
        } else {
            conn_close(c);
        }
        break;
    case T_IDLE:
        conn_close(c);
        break;
    case T_REPLY:
        c->srv->m.closed_timeout++;
        c->keep_alive = 0;
        if (c->wait == W_CONNECT)
            c->srv->m.upgrades_rejected++;
        respond_simple(c, 504);
        break;
    case T_PING: {
        /* A socket is pinged after an interval without a frame from its
         * peer, and closed when the next interval brings none either. */
        uint64_t interval = (uint64_t)c->srv->cfg.ping_interval_ms;
        uint64_t idle = uv_now(c->srv->loop) - c->last_in;
        if (c->ping_due) {
            c->srv->m.closed_timeout++;
            ws_close(c, MC_CLOSE_GOING_AWAY);
        } else if (idle < interval) {
            timer_set(c, T_PING, (long)(interval - idle));
        } else {
            c->ping_due = 1;
            ws_send(c, IFC_WS_OP_PING, "", 0);
            timer_set(c, T_PING, (long)interval);
        }
        break;
    }
    default:
        conn_close(c);
    }
}

static void timer_set(conn_t *c, int kind, long ms)
{
    c->timer_kind = kind;
    uv_timer_start(&c->timer, on_timer, (uint64_t)(ms > 0 ? ms : 1), 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)c->srv->rbuf, READ_BUF);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->closing)
        return;
    c->srv->m.bytes_in += (uint64_t)nread;
    if (c->draining)
        return; /* closing: what the peer still sends is discarded */
    const uint8_t *data = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    c->in_feed = 1;
    size_t used = conn_feed(c, data, n);
    c->in_feed = 0;
    if (c->closing || used == n)
        return;
    /* Keep the rest and stop reading until it can be handled. */
    uint8_t *p = realloc(c->pend, c->pend_len + n - used);
    if (!p) {
        conn_close(c);
        return;
    }
    c->pend = p;
    memcpy(c->pend + c->pend_len, data + used, n - used);
    c->pend_len += n - used;
    if (c->reading) {
        uv_read_stop(s);
        c->reading = 0;
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    ifc_server_t *srv = server->data;
    if (status < 0)
        return;
    conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = srv;
    c->file_fd = -1;
    c->tcp.data = c;
    c->timer.data = c;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->handles = 2;
    srv->live_conns++;
    c->id = ++srv->next_id;
    c->http = malloc(sizeof(*c->http));
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || !c->http || table_add(srv, c) != 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_conn_close);
        uv_close((uv_handle_t *)&c->timer, on_conn_close);
        return;
    }
    ifc_http_parser_init(c->http, NULL);
    srv->m.open_sockets++;
    srv->m.accepted_sockets++;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->client, sizeof(c->client));
        else
            uv_ip4_name((struct sockaddr_in *)&ss, c->client, sizeof(c->client));
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
    timer_set(c, T_HEAD, srv->cfg.header_timeout_ms);
}

/* ---- Replies from workers ----------------------------------------------------- */

static void drop_cache(ifc_server_t *srv)
{
    free(srv->cache_key);
    srv->cache_key = NULL;
    srv->cache_except = 0;
    srv->cache_own = 0;
    srv->cache_len = 0;
    sbuf_unref(srv->cache_frame);
    srv->cache_frame = NULL;
}

static void on_check(uv_check_t *h)
{
    uncork_all(h->data);
    drop_cache(h->data);
}

/* Frames corked by timers would otherwise wait for the loop's next wakeup. */
static void on_prepare(uv_prepare_t *h)
{
    uncork_all(h->data);
}

static int skip_header(const char *name)
{
    return strcmp(name, "content-length") == 0 || strcmp(name, "connection") == 0 ||
           strcmp(name, "transfer-encoding") == 0;
}

static void http_reply(conn_t *c, const mc_envelope_t *env)
{
    ifc_http_header_t h[MC_ENVELOPE_MAX_HEADERS];
    size_t n = 0;
    for (size_t i = 0; i < env->nheaders; i++) {
        if (skip_header(env->headers[i].name))
            continue;
        h[n].name = env->headers[i].name;
        h[n].name_len = strlen(env->headers[i].name);
        h[n].value = env->headers[i].value;
        h[n].value_len = strlen(env->headers[i].value);
        n++;
    }
    uv_timer_stop(&c->timer);
    respond(c, env->status ? env->status : 200, h, n, env->body, env->body_len);
}

/* The local connection a member channel ("<process>!<conn>") names, or 0
 * ("", another process's, or malformed). Resolved once per group message,
 * so each delivery compares ids instead of formatting channel names. */
static uint64_t local_conn(ifc_server_t *srv, const char *channel)
{
    const char *bang = strrchr(channel, '!');
    if (!bang || bang[1] < '1' || bang[1] > '9')
        return 0;
    char *end;
    unsigned long long id = strtoull(bang + 1, &end, 10);
    char mine[256];
    if (*end || srv->bus.reply_channel(srv->bus.ctx, id, mine, sizeof(mine)) != 0 ||
        strcmp(mine, channel) != 0)
        return 0;
    return id;
}

/* Writes the cached group message to a chat socket. The message may name
 * one member to skip (the joiner of its own enter notice) and one whose
 * copy ends in ,"own":true (the sender of a chat message): the sender's
 * copy travels inside the room's one message instead of as a second one. */
static void deliver_cached(ifc_server_t *srv, conn_t *c, uint64_t id)
{
    if (c->kind != K_WS_CHAT || id == srv->cache_except)
        return;
    srv->m.frames_out++;
    const uint8_t *text = srv->cache_frame->data + srv->cache_hl;
    size_t tl = srv->cache_frame->len - srv->cache_hl;
    if (id != srv->cache_own || tl < 2 || text[tl - 1] != '}') {
        write_buf(c, srv->cache_frame);
        return;
    }
    /* The object's closing brace becomes ,"own":true} ("{}" has no comma). */
    const char *tail = text[tl - 2] == '{' ? "\"own\":true}" : ",\"own\":true}";
    size_t keep = tl - 1, add = strlen(tail);
    uint8_t hdr[IFC_WS_MAX_HEADER];
    size_t hl = ifc_ws_frame_header(hdr, IFC_WS_OP_TEXT, 1, keep + add);
    sbuf_t *b = sbuf_new(hl + keep + add);
    if (!b)
        return;
    memcpy(b->data, hdr, hl);
    memcpy(b->data + hl, text, keep);
    memcpy(b->data + hl + keep, tail, add);
    write_buf(c, b);
    sbuf_unref(b);
}

void ifc_server_on_message(ifc_server_t *srv, uint64_t id, const char *data, size_t len)
{
    srv->m.replies_popped++;
    conn_t *c = table_find(srv, id);
    if (!c || c->closing || c->draining) {
        srv->m.replies_dropped++;
        return;
    }
    /* A group message comes once per local member: its frame is encoded
     * once and shared until the end of this loop turn. */
    if (srv->cache_frame && srv->cache_len == len && memcmp(srv->cache_key, data, len) == 0) {
        deliver_cached(srv, c, id);
        return;
    }
    mc_envelope_t env;
    if (mc_envelope_decode(&env, data, len) != 0) {
        srv->m.replies_dropped++;
        mc_warn("conn %llu: undecodable reply of %zu bytes", (unsigned long long)id, len);
        return;
    }
    switch (env.type) {
    case MC_ENV_HTTP_RESPONSE:
        if (c->wait == W_HTTP && c->file_fd < 0)
            http_reply(c, &env);
        else
            srv->m.replies_dropped++;
        break;
    case MC_ENV_WS_ACCEPT:
        if (c->wait == W_CONNECT)
            upgrade(c, K_WS_CHAT, &env.scope);
        else
            srv->m.replies_dropped++;
        break;
    case MC_ENV_WS_CLOSE:
        if (c->wait == W_CONNECT) {
            /* Refused before the upgrade: a plain 403. */
            uv_timer_stop(&c->timer);
            reject_upgrade(c, 403);
        } else if (c->kind == K_WS_CHAT) {
            ws_close_reason(c, env.code ? env.code : MC_CLOSE_NORMAL, env.reason);
        }
        break;
    case MC_ENV_WS_SEND:
        if (c->kind == K_WS_CHAT) {
            uint8_t hdr[IFC_WS_MAX_HEADER];
            size_t hl = ifc_ws_frame_header(hdr, IFC_WS_OP_TEXT, 1, env.body_len);
            sbuf_t *b = sbuf_new(hl + env.body_len);
            char *key = malloc(len ? len : 1);
            if (b && key) {
                memcpy(b->data, hdr, hl);
                memcpy(b->data + hl, env.body, env.body_len);
                memcpy(key, data, len);
                drop_cache(srv);
                srv->cache_key = key;
                srv->cache_len = len;
                srv->cache_frame = b;
                srv->cache_hl = hl;
                srv->cache_except = local_conn(srv, env.except);
                srv->cache_own = local_conn(srv, env.own);
                deliver_cached(srv, c, id);
            } else {
                sbuf_unref(b);
                free(key);
            }
        }
        break;
    default:
        srv->m.replies_dropped++;
    }
    mc_envelope_clear(&env);
}

void ifc_server_redis_error(ifc_server_t *srv)
{
    srv->m.redis_errors++;
    /* A Redis that comes back may have lost the groups our sockets are in:
     * they would hear nothing more. Closed, their clients reconnect, join
     * again with since, and get what they missed. */
    conn_t *next;
    for (conn_t *c = srv->conns; c; c = next) {
        next = c->next;
        if (c->kind == K_WS_CHAT)
            ws_close(c, MC_CLOSE_SERVICE_RESTART);
    }
}

/* ---- Server ---------------------------------------------------------------- */

void ifc_server_config_defaults(ifc_server_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = "127.0.0.1:8000";
    cfg->web_root = "web";
    cfg->max_message = 64 * 1024;
    cfg->echo_max_message = 16 * 1024 * 1024;
    cfg->ping_interval_ms = 20000;
    cfg->header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 60000;
    cfg->reply_timeout_ms = 30000;
    cfg->send_buffer = 1024 * 1024;
    cfg->shutdown_timeout_ms = 10000;
}

static void srv_maybe_free(ifc_server_t *srv)
{
    if (srv->freed && srv->handles == 0 && srv->live_conns == 0) {
        drop_cache(srv);
        free(srv->table);
        free(srv);
    }
}

static void on_srv_close(uv_handle_t *h)
{
    ifc_server_t *srv = h->data;
    srv->handles--;
    srv_maybe_free(srv);
}

static void conn_freed(ifc_server_t *srv)
{
    srv->live_conns--;
    srv_maybe_free(srv);
}

static void check_done(ifc_server_t *srv)
{
    if (srv->stopping && srv->done && srv->nconns == 0 && srv->pushes == 0) {
        void (*done)(void *) = srv->done;
        srv->done = NULL;
        uv_timer_stop(&srv->shutdown_timer);
        done(srv->done_arg);
    }
}

static int parse_listen(const char *text, struct sockaddr_storage *ss)
{
    char host[128];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof(host))
        return MC_EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1)
        return MC_EINVAL;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    if (host[0] == '[') {
        size_t hl = strlen(host);
        if (hl < 2 || host[hl - 1] != ']')
            return MC_EINVAL;
        host[hl - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : MC_EINVAL;
    }
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ? 0 : MC_EINVAL;
}

int ifc_server_start(ifc_server_t **out, uv_loop_t *loop, const ifc_server_config_t *cfg,
                     const ifc_bus_t *bus)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (parse_listen(cfg->listen, &ss) != 0) {
        mc_error("bad listen address %s", cfg->listen);
        return MC_EINVAL;
    }
    ifc_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return MC_ENOMEM;
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->bus = *bus;
    if (ifc_static_root(cfg->web_root, srv->root, sizeof(srv->root)) != 0) {
        mc_warn("web root %s not found: static files answer 404", cfg->web_root);
        snprintf(srv->root, sizeof(srv->root), "/nonexistent");
    }
    /* SO_REUSEPORT must be set before bind, and libuv 1.44 has no flag for
     * it: the socket is made here and handed to libuv. */
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t sl =
        ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        int e = errno;
        mc_error("cannot bind %s: %s", cfg->listen, strerror(e));
        if (fd >= 0)
            close(fd);
        free(srv);
        errno = e;
        return MC_EIO;
    }
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    srv->handles++;
    uv_timer_init(loop, &srv->shutdown_timer);
    srv->shutdown_timer.data = srv;
    srv->handles++;
    uv_check_init(loop, &srv->check);
    srv->check.data = srv;
    srv->handles++;
    uv_check_start(&srv->check, on_check);
    uv_prepare_init(loop, &srv->prepare);
    srv->prepare.data = srv;
    srv->handles++;
    uv_prepare_start(&srv->prepare, on_prepare);
    if (uv_tcp_open(&srv->listener, fd) != 0 ||
        uv_listen((uv_stream_t *)&srv->listener, 511, on_connection) != 0) {
        mc_error("cannot listen on %s", cfg->listen);
        srv->freed = 1;
        uv_close((uv_handle_t *)&srv->listener, on_srv_close);
        uv_close((uv_handle_t *)&srv->shutdown_timer, on_srv_close);
        uv_close((uv_handle_t *)&srv->check, on_srv_close);
        uv_close((uv_handle_t *)&srv->prepare, on_srv_close);
        return MC_EIO;
    }
    srv->listening = 1;
    struct sockaddr_storage bound;
    int bl = sizeof(bound);
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &bl) == 0)
        srv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                      : ((struct sockaddr_in *)&bound)->sin_port);
    *out = srv;
    return 0;
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    ifc_server_t *srv = t->data;
    while (srv->conns)
        conn_close(srv->conns);
    srv->pushes = 0; /* the bus closes next; its callbacks report MC_ECLOSED */
    check_done(srv);
}

void ifc_server_shutdown(ifc_server_t *srv, void (*done)(void *arg), void *arg)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    srv->done = done;
    srv->done_arg = arg;
    if (srv->listening) {
        srv->listening = 0;
        uv_close((uv_handle_t *)&srv->listener, on_srv_close);
    }
    uv_timer_start(&srv->shutdown_timer, on_shutdown_timeout,
                   (uint64_t)srv->cfg.shutdown_timeout_ms, 0);
    conn_t *next;
    for (conn_t *c = srv->conns; c; c = next) {
        next = c->next;
        if (c->kind != K_HTTP)
            ws_close(c, MC_CLOSE_GOING_AWAY);
        else if (c->wait == W_NONE && c->file_fd < 0)
            drain_and_close(c);
        else
            c->keep_alive = 0;
    }
    check_done(srv);
}

void ifc_server_free(ifc_server_t *srv)
{
    if (!srv)
        return;
    srv->done = NULL;
    while (srv->conns)
        conn_close(srv->conns);
    srv->freed = 1;
    if (srv->listening) {
        srv->listening = 0;
        uv_close((uv_handle_t *)&srv->listener, on_srv_close);
    }
    uv_close((uv_handle_t *)&srv->shutdown_timer, on_srv_close);
    uv_close((uv_handle_t *)&srv->check, on_srv_close);
    uv_close((uv_handle_t *)&srv->prepare, on_srv_close);
}

const ifc_metrics_t *ifc_server_metrics(const ifc_server_t *srv)
{
    return &srv->m;
}

int ifc_server_port(const ifc_server_t *srv)
{
    return srv->port;
}
