/*
 * interface/respond.c: HTTP exchanges (see respond.h): reading requests one
 * at a time, writing responses with the security headers, keep-alive and
 * its timers, static files a chunk at a time, /healthz and /metrics.
 */
#include "interface/respond.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/error.h"
#include "interface/static.h"

#define FILE_CHUNK (64 * 1024)

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

/* ---- Requests in ------------------------------------------------------------- */

/* Too slow to send a request head: slowloris is cut off. */
static void on_head_timeout(ifc_conn_t *c)
{
    ifc_peer_t *p = (ifc_peer_t *)c;
    p->peers->m.closed_timeout++;
    if (p->http && ifc_http_in_progress(p->http)) {
        p->keep_alive = 0;
        ifc_respond_simple(p, 408);
    } else {
        ifc_conn_close(c);
    }
}

int ifc_respond_start(ifc_peer_t *p)
{
    p->kind = IFC_PEER_HTTP;
    p->file_fd = -1;
    p->http = malloc(sizeof(*p->http));
    if (!p->http)
        return MC_ENOMEM;
    ifc_http_parser_init(p->http, NULL);
    ifc_conn_timer_start(&p->conn, p->peers->cfg->header_timeout_ms, on_head_timeout);
    return 0;
}

int ifc_respond_read(ifc_peer_t *p, const uint8_t *data, size_t len, size_t *used)
{
    ifc_peers_t *peers = p->peers;
    *used = 0;
    if (p->wait != IFC_WAIT_NONE || p->file_fd >= 0 ||
        p->conn.queued > (size_t)peers->cfg->send_buffer)
        return IFC_RESPOND_LATER;
    int rc = ifc_http_feed(p->http, data, len, used);
    if (rc == IFC_HTTP_REQUEST) {
        const ifc_http_request_t *req = ifc_http_request(p->http);
        peers->m.http_requests++;
        ifc_conn_timer_stop(&p->conn);
        p->keep_alive = req->keep_alive && !peers->stopping;
        p->head_only = strcmp(req->method, "HEAD") == 0;
        return IFC_HTTP_REQUEST;
    }
    if (rc == IFC_HTTP_NEED_MORE) {
        if (ifc_http_in_progress(p->http) && p->conn.timer != on_head_timeout)
            ifc_conn_timer_start(&p->conn, peers->cfg->header_timeout_ms, on_head_timeout);
        return IFC_HTTP_NEED_MORE;
    }
    p->keep_alive = 0;
    *used = len;
    ifc_respond_simple(p, ifc_http_status(p->http) ? ifc_http_status(p->http) : 400);
    return IFC_HTTP_NEED_MORE;
}

/* ---- Responses out ----------------------------------------------------------- */

/* The current request is answered: go on with the next one or finish. */
static void http_finish(ifc_peer_t *p)
{
    ifc_peer_wait(p, IFC_WAIT_NONE);
    if (p->conn.closing)
        return;
    ifc_conn_timer_stop(&p->conn);
    if (!p->keep_alive || ifc_http_status(p->http)) {
        ifc_conn_finish(&p->conn);
        return;
    }
    ifc_http_next(p->http);
    ifc_conn_timer_start(&p->conn, p->peers->cfg->idle_timeout_ms, ifc_conn_close);
    ifc_conn_resume(&p->conn);
}

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

void ifc_respond(ifc_peer_t *p, int status, const ifc_http_header_t *headers, size_t n,
                 const void *body, size_t body_len)
{
    char head[8192];
    size_t hl;
    ifc_http_header_t all[MAX_RESPONSE_HEADERS];
    assert(n <= MC_ENVELOPE_MAX_HEADERS);
    n = with_security(all, headers, n);
    int rc = ifc_http_response_head(head, sizeof(head), status, all, n, (long long)body_len,
                                    p->keep_alive, &hl);
    if (rc != 0) {
        rc = ifc_http_response_head(head, sizeof(head), 502, NULL, 0, 0, p->keep_alive, &hl);
        body_len = 0;
        if (rc != 0) {
            ifc_conn_close(&p->conn);
            return;
        }
    }
    size_t total = hl + (p->head_only ? 0 : body_len);
    ifc_buf_t *b = ifc_buf_new(total);
    if (!b) {
        ifc_conn_close(&p->conn);
        return;
    }
    memcpy(b->data, head, hl);
    if (!p->head_only && body_len)
        memcpy(b->data + hl, body, body_len);
    ifc_conn_write(&p->conn, b);
    ifc_buf_unref(b);
    http_finish(p);
}

void ifc_respond_simple(ifc_peer_t *p, int status)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%s\n", ifc_http_reason(status));
    ifc_http_header_t h[] = {{"content-type", 12, "text/plain; charset=utf-8", 25},
                             {"cache-control", 13, "no-store", 8}};
    ifc_respond(p, status, h, 2, body, n > 0 && (size_t)n < sizeof(body) ? (size_t)n : 0);
}

/* ---- Static files ------------------------------------------------------------ */

/* Sends the next chunk of the static file. The read() runs on the loop, on
 * purpose: the files are the few small assets of the web root, served from
 * the page cache after the first request, where a 64 KiB read costs
 * microseconds, less than a round trip through libuv's threadpool; a chunk
 * is read only once the previous one has been written out, so a slow client
 * never makes the server read ahead or hold more than one chunk. A web root
 * on slow or network storage would want uv_fs_read instead. */
static void file_next(ifc_peer_t *p)
{
    if (p->file_left == 0) {
        close(p->file_fd);
        p->file_fd = -1;
        http_finish(p);
        return;
    }
    size_t n = p->file_left < FILE_CHUNK ? (size_t)p->file_left : FILE_CHUNK;
    ifc_buf_t *b = ifc_buf_new(n);
    ssize_t r = b ? read(p->file_fd, b->data, n) : -1;
    if (r <= 0) {
        ifc_buf_unref(b);
        close(p->file_fd);
        p->file_fd = -1;
        ifc_conn_close(&p->conn);
        return;
    }
    b->len = (size_t)r;
    p->file_left -= (uint64_t)r;
    ifc_conn_write(&p->conn, b);
    ifc_buf_unref(b);
}

void ifc_respond_static(ifc_peer_t *p, const ifc_http_request_t *req)
{
    char rel[IFC_STATIC_PATH_MAX];
    ifc_static_file_t f;
    /* /static/x is the file static/x of the web root. */
    size_t skip = 1;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        ifc_http_header_t allow = {"allow", 5, "GET, HEAD", 9};
        ifc_respond(p, 405, &allow, 1, "", 0);
        return;
    }
    if (ifc_static_decode(req->path + skip, req->path_len - skip, rel, sizeof(rel)) != 0 ||
        ifc_static_open(p->peers->root, rel, &f) != 0) {
        ifc_respond_simple(p, 404);
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
    char head[2048];
    size_t hl;
    size_t inm_len;
    const char *inm = ifc_http_header(req, "if-none-match", &inm_len);
    if (inm && ifc_static_etag_match(inm, inm_len, f.etag)) {
        close(f.fd);
        if (ifc_http_response_head(head, sizeof(head), 304, h + 1, 3, -1, p->keep_alive, &hl) == 0)
            ifc_conn_write_copy(&p->conn, head, hl);
        http_finish(p);
        return;
    }
    if (ifc_http_response_head(head, sizeof(head), 200, h, 4 + NSECURITY, (long long)f.size,
                               p->keep_alive, &hl) != 0) {
        close(f.fd);
        ifc_respond_simple(p, 500);
        return;
    }
    ifc_conn_write_copy(&p->conn, head, hl);
    if (p->head_only || f.size == 0) {
        close(f.fd);
        http_finish(p);
        return;
    }
    /* The file goes out a chunk at a time: memory stays bounded. */
    p->file_fd = f.fd;
    p->file_left = f.size;
    ifc_peer_wait(p, IFC_WAIT_HTTP);
    if (p->conn.queued == 0)
        file_next(p);
}

void ifc_respond_written(ifc_peer_t *p)
{
    if (p->file_fd >= 0)
        file_next(p);
    else if (p->wait == IFC_WAIT_NONE)
        ifc_conn_resume(&p->conn);
}

/* ---- /healthz and /metrics -------------------------------------------------- */

void ifc_respond_health(ifc_peer_t *p)
{
    ifc_http_header_t h[] = {{"content-type", 12, "text/plain", 10},
                             {"cache-control", 13, "no-store", 8}};
    ifc_respond(p, 200, h, 2, "ok\n", 3);
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
    for (const char *s = instance; *s; s++) {
        if (*s == '"' || *s == '\\' || *s == '\n') /* label values escape these */
            out[o++] = '\\';
        out[o++] = *s == '\n' ? 'n' : *s;
    }
    memcpy(out + o, "\"} 1\n", 6);
    return (int)(o + 5);
}

void ifc_respond_metrics(ifc_peer_t *p)
{
    const ifc_metrics_t *m = &p->peers->m;
    char body[8192];
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
                     "chat_interface_redis_errors_total %llu\n"
                     "chat_interface_queue_full_total %llu\n"
                     "chat_interface_refused_connections_total %llu\n"
                     "chat_interface_rate_limited_total %llu\n"
                     "chat_interface_closed_rate_total %llu\n"
                     "# TYPE chat_interface_redis_up gauge\n"
                     "chat_interface_redis_up %llu\n"
                     "chat_interface_redis_losses_total %llu\n"
                     "chat_interface_redis_failovers_total %llu\n"
                     "chat_interface_busy_replies_total %llu\n"
                     "chat_interface_resyncs_total %llu\n"
                     "# TYPE chat_interface_disconnects_pending gauge\n"
                     "chat_interface_disconnects_pending %llu\n"
                     "chat_interface_disconnects_lost_total %llu\n",
                     (unsigned long long)m->conn.open, (unsigned long long)m->conn.accepted,
                     (unsigned long long)m->http_requests, (unsigned long long)m->upgrades_accepted,
                     (unsigned long long)m->upgrades_rejected, (unsigned long long)m->frames_in,
                     (unsigned long long)m->frames_out, (unsigned long long)m->conn.bytes_in,
                     (unsigned long long)m->conn.bytes_out, (unsigned long long)m->envelopes_pushed,
                     (unsigned long long)m->push_failures, (unsigned long long)m->replies_popped,
                     (unsigned long long)m->replies_dropped, (unsigned long long)m->closed_slow,
                     (unsigned long long)m->closed_timeout, (unsigned long long)m->redis_errors,
                     (unsigned long long)m->queue_full, (unsigned long long)m->refused_connections,
                     (unsigned long long)m->rate_limited, (unsigned long long)m->closed_rate,
                     (unsigned long long)m->redis_up, (unsigned long long)m->redis_losses,
                     (unsigned long long)m->redis_failovers, (unsigned long long)m->busy_replies,
                     (unsigned long long)m->resyncs, (unsigned long long)p->peers->npending,
                     (unsigned long long)m->disconnects_lost);
    if (n < 0 || (size_t)n >= sizeof(body)) {
        ifc_respond_simple(p, 500);
        return;
    }
    /* permessage-deflate: sockets that took it, messages in and frames out
     * compressed */
    int d =
        snprintf(body + n, sizeof(body) - (size_t)n,
                 "chat_interface_upgrades_deflate_total %llu\n"
                 "chat_interface_messages_inflated_total %llu\n"
                 "chat_interface_frames_deflated_total %llu\n",
                 (unsigned long long)m->upgrades_deflate, (unsigned long long)m->messages_inflated,
                 (unsigned long long)m->frames_deflated);
    if (d < 0 || (size_t)d >= sizeof(body) - (size_t)n) {
        ifc_respond_simple(p, 500);
        return;
    }
    n += d;
    n += metrics_info(body + n, sizeof(body) - (size_t)n, p->peers->cfg->instance);
    ifc_http_header_t h[] = {{"content-type", 12, "text/plain; version=0.0.4", 25},
                             {"cache-control", 13, "no-store", 8}};
    ifc_respond(p, 200, h, 2, body, (size_t)n);
}

void ifc_respond_clear(ifc_peer_t *p)
{
    if (p->file_fd >= 0) {
        close(p->file_fd);
        p->file_fd = -1;
    }
    if (p->http) {
        ifc_http_parser_clear(p->http);
        free(p->http);
        p->http = NULL;
    }
}
