/*
 * interface/conn.c: the connection layer (see conn.h): accepting, reading
 * into the shared buffer, keeping what the layer above could not use yet,
 * writing and corking, the timer, and closing at once or gracefully.
 */
#include "interface/conn.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/error.h"

/* ---- Buffers and the table ------------------------------------------------- */

ifc_buf_t *ifc_buf_new(size_t len)
{
    ifc_buf_t *b = malloc(sizeof(*b) + len);
    if (b) {
        b->refs = 1;
        b->len = len;
    }
    return b;
}

void ifc_buf_unref(ifc_buf_t *b)
{
    if (b && --b->refs == 0)
        free(b);
}

static uint64_t conn_hash(const mc_table_link_t *link)
{
    return MC_TABLE_ENTRY(link, ifc_conn_t, in_table)->id;
}

static int table_add(ifc_conns_t *hub, ifc_conn_t *c)
{
    int rc = mc_table_add(&hub->table, &c->in_table, c->id);
    if (rc != 0)
        return rc;
    c->next = hub->list;
    if (hub->list)
        hub->list->prev = c;
    hub->list = c;
    return 0;
}

static void table_remove(ifc_conns_t *hub, ifc_conn_t *c)
{
    if (!mc_table_remove(&hub->table, &c->in_table, c->id))
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        hub->list = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

ifc_conn_t *ifc_conns_find(const ifc_conns_t *hub, uint64_t id)
{
    for (mc_table_link_t **at = mc_table_chain(&hub->table, id); *at; at = &(*at)->next) {
        ifc_conn_t *c = MC_TABLE_ENTRY(*at, ifc_conn_t, in_table);
        if (c->id == id)
            return c;
    }
    return NULL;
}

ifc_conn_t *ifc_conns_first(const ifc_conns_t *hub)
{
    return hub->list;
}

size_t ifc_conns_count(const ifc_conns_t *hub)
{
    return hub->table.count;
}

/* ---- Writing ---------------------------------------------------------------- */

typedef struct wreq {
    uv_write_t req;
    ifc_conn_t *c;
    ifc_buf_t *buf;
    size_t len; /* the bytes of buf handed to uv_write (its tail) */
} wreq_t;

static void linger(ifc_conn_t *c);

static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    ifc_conn_t *c = w->c;
    c->queued -= w->len;
    ifc_buf_unref(w->buf);
    free(w);
    if (status < 0) {
        ifc_conn_close(c);
        return;
    }
    if (c->closing || c->queued > 0)
        return;
    if (c->finishing)
        linger(c);
    else
        c->hub->hooks.written(c);
}

/* Hands bufs[0..n) to libuv (each takes a reference), skipping the first
 * done bytes, which are written already. */
static int write_queue(ifc_conn_t *c, ifc_buf_t *const *bufs, size_t n, size_t done)
{
    for (size_t i = 0; i < n; i++) {
        ifc_buf_t *b = bufs[i];
        if (done >= b->len) {
            done -= b->len;
            continue;
        }
        wreq_t *w = malloc(sizeof(*w));
        if (!w) {
            ifc_conn_close(c);
            return MC_ENOMEM;
        }
        w->c = c;
        w->buf = b;
        w->len = b->len - done;
        b->refs++;
        uv_buf_t ub = uv_buf_init((char *)b->data + done, (unsigned)w->len);
        done = 0;
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &ub, 1, on_write) != 0) {
            ifc_buf_unref(b);
            free(w);
            ifc_conn_close(c);
            return MC_EIO;
        }
        c->queued += w->len;
        c->hub->counts->bytes_out += w->len;
    }
    return 0;
}

/* Writes the corked buffers: one write(2) for all of them when the socket
 * buffer takes them (the usual case), libuv's queue for the rest. */
static int uncork(ifc_conn_t *c)
{
    size_t n = c->ncork;
    if (n == 0)
        return 0;
    c->ncork = 0;
    uv_buf_t ub[IFC_CONN_CORK_MAX];
    for (size_t i = 0; i < n; i++)
        ub[i] = uv_buf_init((char *)c->cork[i]->data, (unsigned)c->cork[i]->len);
    int written = uv_try_write((uv_stream_t *)&c->tcp, ub, (unsigned)n);
    size_t done = written > 0 ? (size_t)written : 0; /* UV_EAGAIN: queue them all */
    c->hub->counts->bytes_out += done;
    int rc = write_queue(c, c->cork, n, done);
    for (size_t i = 0; i < n; i++)
        ifc_buf_unref(c->cork[i]);
    return rc;
}

static void uncork_all(ifc_conns_t *hub)
{
    while (hub->corked) {
        ifc_conn_t *c = hub->corked;
        hub->corked = c->corked_next;
        c->corked_in = 0;
        if (!c->closing)
            uncork(c);
    }
}

/* A corking connection with nothing queued corks b: a write that completes
 * at the end of the turn needs no queued request and no epoll_ctl to watch
 * for writability. Only connections that are not finishing do so, because
 * for them the completion of a write has nothing to do. */
static int write_raw(ifc_conn_t *c, ifc_buf_t *b)
{
    if (c->ncork == IFC_CONN_CORK_MAX && uncork(c) != 0)
        return MC_EIO;
    if (c->corks && !c->finishing && !c->closing && c->queued == 0) {
        b->refs++;
        c->cork[c->ncork++] = b;
        if (!c->corked_in) {
            c->corked_in = 1;
            c->corked_next = c->hub->corked;
            c->hub->corked = c;
        }
        return 0;
    }
    if (uncork(c) != 0)
        return MC_EIO;
    return write_queue(c, &b, 1, 0);
}

int ifc_conn_write(ifc_conn_t *c, ifc_buf_t *b)
{
    if (c->closing)
        return MC_ECLOSED;
    return write_raw(c, b);
}

int ifc_conn_write_within(ifc_conn_t *c, ifc_buf_t *b, size_t bound)
{
    if (c->closing || c->finishing)
        return MC_ECLOSED;
    if (c->queued > 0 && c->queued + b->len > bound)
        return MC_EFULL;
    return write_raw(c, b);
}

int ifc_conn_write_copy(ifc_conn_t *c, const void *data, size_t len)
{
    ifc_buf_t *b = ifc_buf_new(len);
    if (!b)
        return MC_ENOMEM;
    memcpy(b->data, data, len);
    int rc = ifc_conn_write(c, b);
    ifc_buf_unref(b);
    return rc;
}

/* ---- Timers ----------------------------------------------------------------- */

/* The heap of running timers, earliest first: timers[i]->timer_at is i + 1. */
static void heap_set(ifc_conns_t *hub, size_t i, ifc_conn_t *c)
{
    hub->timers[i] = c;
    c->timer_at = (uint32_t)(i + 1);
}

static void sift_up(ifc_conns_t *hub, size_t i)
{
    ifc_conn_t *c = hub->timers[i];
    while (i > 0 && hub->timers[(i - 1) / 2]->due > c->due) {
        heap_set(hub, i, hub->timers[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(hub, i, c);
}

static void sift_down(ifc_conns_t *hub, size_t i)
{
    ifc_conn_t *c = hub->timers[i];
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= hub->ntimers)
            break;
        if (k + 1 < hub->ntimers && hub->timers[k + 1]->due < hub->timers[k]->due)
            k++;
        if (hub->timers[k]->due >= c->due)
            break;
        heap_set(hub, i, hub->timers[k]);
        i = k;
    }
    heap_set(hub, i, c);
}

static void heap_remove(ifc_conns_t *hub, ifc_conn_t *c)
{
    size_t i = c->timer_at - 1;
    c->timer_at = 0;
    ifc_conn_t *last = hub->timers[--hub->ntimers];
    if (last == c)
        return;
    heap_set(hub, i, last);
    sift_up(hub, i);
    sift_down(hub, last->timer_at - 1);
}

static void on_hub_timer(uv_timer_t *t);

/* Sets the hub's libuv timer to the earliest connection timer. */
static void rearm(ifc_conns_t *hub)
{
    if (hub->ntimers == 0) {
        uv_timer_stop(&hub->timer);
        return;
    }
    uint64_t now = uv_now(hub->loop), due = hub->timers[0]->due;
    uv_timer_start(&hub->timer, on_hub_timer, due > now ? due - now : 0, 0);
}

static void on_hub_timer(uv_timer_t *t)
{
    ifc_conns_t *hub = t->data;
    uint64_t now = uv_now(hub->loop);
    /* A callback may start timers again (at least 1 ms on), stop them, or
     * close connections: each turn looks at the heap as it is. */
    while (hub->ntimers > 0 && hub->timers[0]->due <= now) {
        ifc_conn_t *c = hub->timers[0];
        heap_remove(hub, c);
        ifc_conn_timer_cb cb = c->timer;
        c->timer = NULL;
        if (cb)
            cb(c);
    }
    rearm(hub);
}

void ifc_conn_timer_start(ifc_conn_t *c, long ms, ifc_conn_timer_cb cb)
{
    ifc_conns_t *hub = c->hub;
    if (c->closing)
        return;
    if (!c->timer_at && hub->ntimers == hub->timers_cap) {
        size_t cap = hub->timers_cap ? 2 * hub->timers_cap : 64;
        ifc_conn_t **t = realloc(hub->timers, cap * sizeof(*t));
        if (!t) {
            ifc_conn_close(c); /* a connection without its timeouts is not kept */
            return;
        }
        hub->timers = t;
        hub->timers_cap = cap;
    }
    c->timer = cb;
    c->due = uv_now(hub->loop) + (uint64_t)(ms > 0 ? ms : 1);
    if (c->timer_at) {
        sift_up(hub, c->timer_at - 1);
        sift_down(hub, c->timer_at - 1);
    } else {
        hub->timers[hub->ntimers++] = c;
        sift_up(hub, hub->ntimers - 1);
    }
    if (hub->timers[0] == c)
        rearm(hub);
}

void ifc_conn_timer_stop(ifc_conn_t *c)
{
    c->timer = NULL;
    if (c->timer_at) {
        ifc_conns_t *hub = c->hub;
        int first = hub->timers[0] == c;
        heap_remove(hub, c);
        if (first)
            rearm(hub);
    }
}

/* ---- Closing ---------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
    ifc_conn_t *c = h->data;
    if (--c->handles > 0)
        return;
    ifc_conns_t *hub = c->hub;
    free(c->kept);
    c->kept = NULL;
    for (ifc_conn_t **p = &hub->corked; c->corked_in && *p; p = &(*p)->corked_next)
        if (*p == c) {
            *p = c->corked_next;
            break;
        }
    for (unsigned i = 0; i < c->ncork; i++)
        ifc_buf_unref(c->cork[i]);
    c->ncork = 0;
    hub->hooks.freed(c);
}

static void close_handles(ifc_conn_t *c)
{
    ifc_conn_timer_stop(c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

void ifc_conn_close(ifc_conn_t *c)
{
    if (c->closing)
        return;
    ifc_conns_t *hub = c->hub;
    c->closing = 1;
    table_remove(hub, c);
    hub->counts->open--;
    close_handles(c);
    hub->hooks.closing(c);
}

/* Runs once for every shutdown asked, with UV_ECANCELED when the socket
 * closed first. */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    ifc_conn_t *c = req->data;
    free(req);
    if (status < 0 && !c->closing)
        ifc_conn_close(c);
}

/* The queue is written out: sends the FIN and waits for the peer's,
 * reading and discarding what it still sends. */
static void linger(ifc_conn_t *c)
{
    if (c->closing || c->shut)
        return;
    c->shut = 1;
    /* Asked for once in a socket's life, at its end: not kept in every
     * idle socket. */
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (!req) {
        ifc_conn_close(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        ifc_conn_close(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void read_start(ifc_conn_t *c)
{
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
}

void ifc_conn_finish(ifc_conn_t *c)
{
    if (c->closing)
        return;
    if (!c->finishing) {
        c->finishing = 1;
        ifc_conn_timer_start(c, IFC_CONN_CLOSE_GRACE_MS, ifc_conn_close);
        read_start(c);
    }
    if (uncork(c) == 0 && c->queued == 0)
        linger(c);
}

/* ---- Reading ---------------------------------------------------------------- */

/* Hands data to the input hook; returns how much it used (all of it once
 * the connection closes or finishes: what is left is discarded). */
static size_t feed(ifc_conn_t *c, const uint8_t *data, size_t len)
{
    c->in_input = 1;
    size_t used = c->hub->hooks.input(c, data, len);
    c->in_input = 0;
    return c->closing || c->finishing ? len : used;
}

void ifc_conn_resume(ifc_conn_t *c)
{
    if (c->in_input || c->closing || c->finishing)
        return;
    if (c->kept_len > 0) {
        size_t used = feed(c, c->kept, c->kept_len);
        if (c->closing)
            return;
        memmove(c->kept, c->kept + used, c->kept_len - used);
        c->kept_len -= used;
    }
    if (c->kept_len == 0) {
        free(c->kept);
        c->kept = NULL;
        if (!c->finishing && !c->held)
            read_start(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ifc_conn_t *c = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)c->hub->rbuf, IFC_CONN_READ_BUF);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ifc_conn_t *c = s->data;
    if (nread < 0) {
        ifc_conn_close(c);
        return;
    }
    if (nread == 0 || c->closing)
        return;
    c->hub->counts->bytes_in += (uint64_t)nread;
    if (c->finishing)
        return; /* what the peer still sends is discarded */
    const uint8_t *data = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    size_t used = feed(c, data, n);
    if (c->closing || used == n)
        return;
    /* Keep the rest and stop reading until it can be used. */
    uint8_t *p = realloc(c->kept, c->kept_len + n - used);
    if (!p) {
        ifc_conn_close(c);
        return;
    }
    c->kept = p;
    memcpy(c->kept + c->kept_len, data + used, n - used);
    c->kept_len += n - used;
    if (c->reading) {
        uv_read_stop(s);
        c->reading = 0;
    }
}

/* ---- Accepting, and the hub ------------------------------------------------ */

int ifc_conn_accept(ifc_conns_t *hub, ifc_conn_t *c, uv_stream_t *listener)
{
    c->hub = hub;
    c->tcp.data = c;
    uv_tcp_init(hub->loop, &c->tcp);
    c->handles = 1;
    c->id = ++hub->next_id;
    int rc = uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ? MC_EIO : table_add(hub, c);
    if (rc != 0) {
        c->closing = 1;
        close_handles(c);
        return rc;
    }
    hub->counts->open++;
    hub->counts->accepted++;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
        ifc_ip_from_sockaddr((struct sockaddr *)&ss, &c->peer);
    uv_tcp_nodelay(&c->tcp, 1);
    read_start(c);
    return 0;
}

static void on_check(uv_check_t *h)
{
    uncork_all(h->data);
}

static void on_prepare(uv_prepare_t *h)
{
    uncork_all(h->data);
}

int ifc_conns_init(ifc_conns_t *hub, uv_loop_t *loop, const ifc_conn_hooks_t *hooks,
                   ifc_conn_counts_t *counts)
{
    hub->loop = loop;
    hub->hooks = *hooks;
    hub->counts = counts;
    mc_table_init(&hub->table, conn_hash);
    uv_check_init(loop, &hub->check);
    hub->check.data = hub;
    uv_check_start(&hub->check, on_check);
    uv_prepare_init(loop, &hub->prepare);
    hub->prepare.data = hub;
    uv_prepare_start(&hub->prepare, on_prepare);
    uv_timer_init(loop, &hub->timer);
    hub->timer.data = hub;
    hub->handles = 3;
    return 0;
}

static void on_hub_closed(uv_handle_t *h)
{
    ifc_conns_t *hub = h->data;
    if (--hub->handles > 0)
        return;
    mc_table_clear(&hub->table);
    free(hub->timers);
    hub->timers = NULL;
    hub->ntimers = hub->timers_cap = 0;
    if (hub->closed)
        hub->closed(hub);
}

void ifc_conns_close(ifc_conns_t *hub, void (*closed)(ifc_conns_t *hub))
{
    while (hub->list)
        ifc_conn_close(hub->list);
    hub->closed = closed;
    uv_close((uv_handle_t *)&hub->check, on_hub_closed);
    uv_close((uv_handle_t *)&hub->prepare, on_hub_closed);
    uv_close((uv_handle_t *)&hub->timer, on_hub_closed);
}
