/*
 * tests/bench/chat_client.c: the WebSocket client of chat-bench: connect,
 * upgrade, write frames, read frames, close (see chat_client.h).
 */
#include "tests/bench/chat_client.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INFLATE_MAX (16 * 1024 * 1024) /* the largest compressed message read */
#define HANDSHAKE_MAX 4096

static uint32_t rnd(bench_t *b)
{
    /* xorshift32: WebSocket masks and keys need no cryptographic quality here. */
    uint32_t x = b->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return b->rng = x;
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

void client_send_frame(client_t *c, int opcode, const void *payload, size_t len)
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

/* ---- Reading frames -------------------------------------------------------- */

static void on_ready(client_t *c);

static void on_frame(client_t *c, int opcode, const uint8_t *p, size_t len)
{
    switch (opcode) {
    case 0x1:
        c->b->hooks->text(c, (const char *)p, len);
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

static void on_closed(uv_handle_t *h)
{
    client_t *c = h->data;
    free(c->pend);
    c->pend = NULL;
    c->pend_len = c->pend_cap = 0;
    c->b->hooks->closed(c);
}

void client_close(client_t *c)
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
            client_connect_more(b);
    }
}

/* The upgrade succeeded: a measured socket is ready to send (it joins its
 * room in the scenario's hook), and its place goes to the next one. */
static void on_ready(client_t *c)
{
    bench_t *b = c->b;
    if (!c->flood) {
        c->state = C_OPEN;
        b->connecting--;
        b->connected++;
        b->ready[b->nready++] = c;
    }
    b->hooks->opened(c);
    if (!c->flood)
        client_connect_more(b);
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
    int echo = echo_mode(b);
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

void client_connect(bench_t *b, client_t *c)
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

void client_connect_more(bench_t *b)
{
    b->in_connect = 1;
    while (b->phase == 0 && b->connecting < b->cfg.connect_parallel &&
           b->next_connect < b->cfg.clients) {
        client_t *c = &b->clients[b->next_connect++];
        client_connect(b, c);
    }
    b->in_connect = 0;
    if (b->phase == 0 && b->connecting == 0 && b->next_connect >= b->cfg.clients)
        b->hooks->all_connected(b);
}
