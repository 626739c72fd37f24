/*
 * interface/server.c: the top of bin/chat-interface's network side (see
 * server.h): the listener, the connection layer's hooks handed on to the
 * layer each event concerns, the routes, and start and shutdown.
 */
#include "interface/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/wire.h"
#include "interface/bridge.h"
#include "interface/handshake.h"
#include "interface/proxy.h"
#include "interface/respond.h"
#include "interface/static.h"
#include "interface/websocket.h"

#define CHAT_PATH "/chat/stream/"
#define SWEEP_EVERY_MS 10000 /* addresses with nothing to remember are forgotten */

struct ifc_server {
    ifc_peers_t peers; /* first: the layers' shared part */
    ifc_server_config_t cfg;
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_tcp_t metrics; /* the metrics listener, when metrics_listen is set */
    uv_timer_t shutdown_timer;
    uv_timer_t sweep_timer;
    int handles; /* ours, the connection hub counting as one */
    int listening, metrics_listening, freed;
    int port, metrics_port;
    size_t live; /* peers not yet freed */
    void (*done)(void *);
    void *done_arg;
};

static ifc_server_t *server_of(ifc_peers_t *peers)
{
    return (ifc_server_t *)peers;
}

static void check_done(ifc_server_t *srv)
{
    if (srv->peers.stopping && srv->done && ifc_conns_count(&srv->peers.conns) == 0 &&
        srv->peers.pushes == 0) {
        void (*done)(void *) = srv->done;
        srv->done = NULL;
        uv_timer_stop(&srv->shutdown_timer);
        done(srv->done_arg);
    }
}

/* Frees the server's memory: its handles are closed, or never opened. */
static void srv_release(ifc_server_t *srv)
{
    ifc_bridge_free(&srv->peers);
    ifc_ws_deflater_free(srv->peers.deflater);
    ifc_ws_inflater_free(srv->peers.inflater);
    ifc_addrs_clear(&srv->peers.addrs);
    ifc_cidrs_clear(&srv->peers.trusted);
    free(srv);
}

static void srv_maybe_free(ifc_server_t *srv)
{
    if (srv->freed && srv->handles == 0 && srv->live == 0)
        srv_release(srv);
}

static uint32_t now_ms(const ifc_server_t *srv)
{
    return (uint32_t)uv_now(srv->loop);
}

/* Takes what a new connection, or a request through a proxy, costs client
 * ip (limit.h); with hold, p keeps a place among its open connections.
 * Returns 0, or counts and logs the refusal and returns non-zero. */
static int admit(ifc_server_t *srv, ifc_peer_t *p, const ifc_ip_t *ip, int hold)
{
    uint32_t in_row;
    int rc = ifc_addrs_admit(&srv->peers.addrs, ip, now_ms(srv), hold, &p->addr, &in_row);
    if (rc == 0)
        return 0;
    srv->peers.m.refused_connections++;
    if (in_row == 1 || rc == MC_ENOMEM) {
        char text[IFC_IP_TEXT_MAX];
        ifc_ip_format(ip, text);
        mc_warn("%s: %s; refusing it", text,
                rc == IFC_ADDR_TOO_MANY_OPEN ? "too many connections open"
                : rc == IFC_ADDR_TOO_FAST    ? "too many new connections a second"
                                             : "out of memory");
    }
    return rc;
}

/* A connection's place among its client's open ones is given back. */
static void release(ifc_server_t *srv, ifc_peer_t *p)
{
    ifc_addrs_release(&srv->peers.addrs, p->addr);
    p->addr = NULL;
}

/* ---- Routes ----------------------------------------------------------------- */

static int path_is(const ifc_http_request_t *req, const char *path)
{
    size_t n = strlen(path);
    return req->path_len == n && memcmp(req->path, path, n) == 0;
}

/* The metrics listener answers /metrics and /healthz, and nothing else. */
static void route_metrics(ifc_peer_t *p, const ifc_http_request_t *req)
{
    if (req->upgrade)
        p->keep_alive = 0;
    if (path_is(req, "/metrics"))
        ifc_respond_metrics(p);
    else if (path_is(req, "/healthz"))
        ifc_respond_health(p);
    else
        ifc_respond_simple(p, 404);
}

static void route(ifc_server_t *srv, ifc_peer_t *p, const ifc_http_request_t *req)
{
    if (p->on_metrics) {
        route_metrics(p, req);
        return;
    }
    ifc_client_t client;
    ifc_proxy_client(&srv->peers.trusted, &p->conn.peer, req, &client);
    int chat = path_is(req, CHAT_PATH);
    if (ifc_cidrs_match(&srv->peers.trusted, &p->conn.peer)) {
        /* A proxy's connection carries many clients' requests: each counts
         * as a new connection of its client, and a chat socket holds a
         * place of its client while it lives. */
        release(srv, p);
        if (admit(srv, p, &client.ip, chat) != 0) {
            if (chat || req->upgrade)
                p->keep_alive = 0;
            ifc_respond_simple(p, 429);
            return;
        }
    }
    const char *echo = srv->cfg.echo_path;
    char accept[IFC_WS_ACCEPT_LEN + 1];
    if (echo && *echo && path_is(req, echo)) {
        int rc = ifc_handshake_check(req, NULL, 0, NULL, accept);
        if (rc != 0)
            ifc_websocket_refuse(p, rc);
        else
            ifc_websocket_upgrade(p, IFC_PEER_ECHO);
        return;
    }
    if (chat) {
        int rc = ifc_handshake_check(req, srv->cfg.allowed_origins, 1, ifc_client_scheme(&client),
                                     accept);
        if (rc != 0)
            ifc_websocket_refuse(p, rc);
        else
            ifc_bridge_forward(p, req, MC_ENV_WS_CONNECT, &client);
        return;
    }
    if (req->upgrade)
        p->keep_alive = 0; /* what follows is not HTTP: answer, then close */
    if (path_is(req, "/healthz"))
        ifc_respond_health(p);
    else if (path_is(req, "/metrics"))
        ifc_respond_simple(p, 404); /* only on the metrics listener: it is not for everyone */
    else if (req->path_len >= 8 && memcmp(req->path, "/static/", 8) == 0)
        ifc_respond_static(p, req);
    else
        ifc_bridge_forward(p, req, MC_ENV_HTTP_REQUEST, &client);
}

/* ---- The connection layer's hooks ------------------------------------------ */

/* Input goes to the HTTP side until an upgrade, then to the WebSocket
 * session, whose chat messages go on to the workers. */
static size_t on_input(ifc_conn_t *c, const uint8_t *data, size_t len)
{
    ifc_peer_t *p = (ifc_peer_t *)c;
    size_t off = 0;
    while (off < len && !c->closing && !c->finishing) {
        size_t used;
        if (p->kind != IFC_PEER_HTTP) {
            const uint8_t *text;
            size_t text_len;
            for (;;) {
                /* While the workers owe it answers, the rest waits. */
                if (ifc_bridge_held(p))
                    return off;
                if (ifc_websocket_read(p, data + off, len - off, &used, &text, &text_len) != 1)
                    return len;
                off += used;
                ifc_bridge_receive(p, text, text_len);
            }
        }
        int rc = ifc_respond_read(p, data + off, len - off, &used);
        off += used;
        if (rc == IFC_HTTP_REQUEST)
            route(server_of(p->peers), p, ifc_http_request(p->http));
        else if (rc == IFC_RESPOND_LATER)
            break;
    }
    return off;
}

static void on_written(ifc_conn_t *c)
{
    ifc_peer_t *p = (ifc_peer_t *)c;
    if (p->kind == IFC_PEER_HTTP)
        ifc_respond_written(p);
}

static void on_closing(ifc_conn_t *c)
{
    ifc_peer_t *p = (ifc_peer_t *)c;
    release(server_of(p->peers), p);
    ifc_bridge_disconnect(p);
    check_done(server_of(p->peers));
}

static void on_freed(ifc_conn_t *c)
{
    ifc_peer_t *p = (ifc_peer_t *)c;
    ifc_server_t *srv = server_of(p->peers);
    ifc_respond_clear(p);
    ifc_websocket_clear(p);
    ifc_bridge_clear(p);
    free(p);
    srv->live--;
    srv_maybe_free(srv);
}

static void on_pushed(ifc_peers_t *peers)
{
    check_done(server_of(peers));
}

static void on_connection(uv_stream_t *listener, int status)
{
    ifc_server_t *srv = listener->data;
    if (status < 0)
        return;
    ifc_peer_t *p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->peers = &srv->peers;
    p->file_fd = -1;
    p->on_metrics = listener == (uv_stream_t *)&srv->metrics;
    srv->live++;
    if (ifc_conn_accept(&srv->peers.conns, &p->conn, listener) != 0)
        return; /* freed by on_freed */
    /* A client over its limits is closed at once, before it costs more; a
     * trusted proxy's connections are counted per request (route). */
    if (!p->on_metrics && !ifc_cidrs_match(&srv->peers.trusted, &p->conn.peer) &&
        admit(srv, p, &p->conn.peer, 1) != 0) {
        ifc_conn_close(&p->conn);
        return;
    }
    if (ifc_respond_start(p) != 0)
        ifc_conn_close(&p->conn);
}

static void on_sweep(uv_timer_t *t)
{
    ifc_server_t *srv = t->data;
    ifc_addrs_sweep(&srv->peers.addrs, now_ms(srv));
}

/* ---- Replies ---------------------------------------------------------------- */

void ifc_server_on_message(ifc_server_t *srv, const uint64_t *conns, size_t n, const char *data,
                           size_t len)
{
    ifc_bridge_deliver(&srv->peers, conns, n, data, len);
}

void ifc_server_redis_state(ifc_server_t *srv, int up, uint64_t failovers)
{
    ifc_metrics_t *m = &srv->peers.m;
    m->redis_failovers = failovers;
    if ((uint64_t)up == m->redis_up)
        return;
    m->redis_up = (uint64_t)up;
    if (!up) {
        /* Sockets stay open: the channel layer records their groups again
         * when Redis is back, and what they send meanwhile is answered
         * SERVER_BUSY, to be sent again. */
        m->redis_errors++;
        m->redis_losses++;
        return;
    }
    if (m->redis_losses) /* not at the start */
        ifc_bridge_redis_up(&srv->peers);
}

/* ---- Start and shutdown ------------------------------------------------------ */

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
    cfg->ws_deflate = 1;
    cfg->address_open_max = 256;
    cfg->address_rate = 50;
    cfg->address_burst = 100;
    cfg->socket_rate = 20;
    cfg->socket_burst = 60;
    cfg->socket_kib_rate = 64;
    cfg->socket_answer_debt_ms = 1000;
    cfg->socket_penalty_ms = 60000;
    cfg->socket_in_flight = 4;
    cfg->socket_close_after = 20;
}

static void on_srv_close(uv_handle_t *h)
{
    ifc_server_t *srv = h->data;
    srv->handles--;
    srv_maybe_free(srv);
}

static void on_hub_closed(ifc_conns_t *hub)
{
    ifc_server_t *srv = server_of((ifc_peers_t *)hub);
    srv->handles--;
    srv_maybe_free(srv);
}

static int parse_listen(const char *text, struct sockaddr_storage *ss)
{
    char host[128];
    const char *colon = strrchr(text, ':');
    memset(ss, 0, sizeof(*ss));
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

/* Binds a socket to ss (shared with other processes when reuseport: the
 * metrics listener is each process's own) and listens on it with h, which
 * is initialised and counted in srv->handles either way. Returns 0 and
 * *port, or MC_EIO (errno says why). */
static int listen_on(ifc_server_t *srv, uv_tcp_t *h, const struct sockaddr_storage *ss,
                     int reuseport, int *port)
{
    uv_tcp_init(srv->loop, h);
    h->data = srv;
    srv->handles++;
    /* SO_REUSEPORT must be set before bind, and libuv 1.44 has no flag for
     * it: the socket is made here and handed to libuv. */
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t sl =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, (const struct sockaddr *)ss, sl) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e;
        return MC_EIO;
    }
    if (uv_tcp_open(h, fd) != 0) {
        close(fd);
        return MC_EIO;
    }
    if (uv_listen((uv_stream_t *)h, 511, on_connection) != 0)
        return MC_EIO;
    struct sockaddr_storage bound;
    int bl = sizeof(bound);
    if (uv_tcp_getsockname(h, (struct sockaddr *)&bound, &bl) == 0)
        *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

static void close_listeners(ifc_server_t *srv)
{
    if (srv->listening) {
        srv->listening = 0;
        uv_close((uv_handle_t *)&srv->listener, on_srv_close);
    }
    if (srv->metrics_listening) {
        srv->metrics_listening = 0;
        uv_close((uv_handle_t *)&srv->metrics, on_srv_close);
    }
}

/* Undoes a start that failed half way: the handles made so far close, and
 * the struct goes with the last of them. */
static int start_failed(ifc_server_t *srv, int rc)
{
    int e = errno;
    srv->freed = 1;
    close_listeners(srv);
    uv_close((uv_handle_t *)&srv->shutdown_timer, on_srv_close);
    uv_close((uv_handle_t *)&srv->sweep_timer, on_srv_close);
    ifc_conns_close(&srv->peers.conns, on_hub_closed);
    errno = e;
    return rc;
}

int ifc_server_start(ifc_server_t **out, uv_loop_t *loop, const ifc_server_config_t *cfg,
                     const ifc_bus_t *bus)
{
    struct sockaddr_storage ss, ms;
    int metrics = cfg->metrics_listen && *cfg->metrics_listen;
    if (parse_listen(cfg->listen, &ss) != 0) {
        mc_error("bad listen address %s", cfg->listen);
        return MC_EINVAL;
    }
    if (metrics && parse_listen(cfg->metrics_listen, &ms) != 0) {
        mc_error("bad metrics listen address %s", cfg->metrics_listen);
        return MC_EINVAL;
    }
    ifc_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return MC_ENOMEM;
    int rc = ifc_cidrs_parse(cfg->trusted_proxies, &srv->peers.trusted);
    if (rc != 0) {
        mc_error("bad trusted proxies \"%s\": addresses or blocks (10.0.0.0/8), comma-separated",
                 cfg->trusted_proxies);
        free(srv);
        return rc;
    }
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->peers.cfg = &srv->cfg;
    srv->peers.bus = *bus;
    srv->peers.pushed = on_pushed;
    ifc_addrs_init(&srv->peers.addrs, (uint32_t)cfg->address_open_max, (uint32_t)cfg->address_rate,
                   (uint32_t)cfg->address_burst, (uint32_t)cfg->socket_penalty_ms);
    if (cfg->ws_deflate && (ifc_ws_deflater_new(&srv->peers.deflater) != 0 ||
                            ifc_ws_inflater_new(&srv->peers.inflater) != 0)) {
        srv_release(srv);
        return MC_ENOMEM;
    }
    if (ifc_static_root(cfg->web_root, srv->peers.root, sizeof(srv->peers.root)) != 0) {
        mc_warn("web root %s not found: static files answer 404", cfg->web_root);
        snprintf(srv->peers.root, sizeof(srv->peers.root), "/nonexistent");
    }
    static const ifc_conn_hooks_t hooks = {on_input, on_written, on_closing, on_freed};
    ifc_conns_init(&srv->peers.conns, loop, &hooks, &srv->peers.m.conn);
    srv->handles++;
    uv_timer_init(loop, &srv->shutdown_timer);
    srv->shutdown_timer.data = srv;
    srv->handles++;
    uv_timer_init(loop, &srv->sweep_timer);
    srv->sweep_timer.data = srv;
    srv->handles++;
    uv_timer_start(&srv->sweep_timer, on_sweep, SWEEP_EVERY_MS, SWEEP_EVERY_MS);
    srv->listening = 1; /* the handle exists from here on */
    const char *failed = NULL;
    if (listen_on(srv, &srv->listener, &ss, 1, &srv->port) != 0)
        failed = cfg->listen;
    else if (metrics && (srv->metrics_listening = 1) &&
             listen_on(srv, &srv->metrics, &ms, 0, &srv->metrics_port) != 0)
        failed = cfg->metrics_listen;
    if (failed) {
        int e = errno;
        mc_error("cannot listen on %s: %s", failed, strerror(e));
        errno = e;
        return start_failed(srv, MC_EIO);
    }
    if (srv->peers.trusted.n)
        mc_info("trusting X-Forwarded-For and X-Forwarded-Proto of %s", cfg->trusted_proxies);
    *out = srv;
    return 0;
}

static void close_all(ifc_server_t *srv)
{
    ifc_conn_t *c;
    while ((c = ifc_conns_first(&srv->peers.conns)) != NULL)
        ifc_conn_close(c);
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    ifc_server_t *srv = t->data;
    close_all(srv);
    srv->peers.pushes = 0; /* the bus closes next; its callbacks report MC_ECLOSED */
    check_done(srv);
}

void ifc_server_shutdown(ifc_server_t *srv, void (*done)(void *arg), void *arg)
{
    if (srv->peers.stopping)
        return;
    srv->peers.stopping = 1;
    srv->done = done;
    srv->done_arg = arg;
    close_listeners(srv);
    uv_timer_start(&srv->shutdown_timer, on_shutdown_timeout,
                   (uint64_t)srv->cfg.shutdown_timeout_ms, 0);
    ifc_conn_t *next;
    for (ifc_conn_t *c = ifc_conns_first(&srv->peers.conns); c; c = next) {
        next = c->next;
        ifc_peer_t *p = (ifc_peer_t *)c;
        if (p->kind != IFC_PEER_HTTP)
            ifc_websocket_close(p, MC_CLOSE_GOING_AWAY);
        else if (p->wait == IFC_WAIT_NONE && p->file_fd < 0)
            ifc_conn_finish(c);
        else
            p->keep_alive = 0;
    }
    check_done(srv);
}

void ifc_server_free(ifc_server_t *srv)
{
    if (!srv)
        return;
    srv->done = NULL;
    close_all(srv);
    srv->freed = 1;
    close_listeners(srv);
    uv_close((uv_handle_t *)&srv->shutdown_timer, on_srv_close);
    uv_close((uv_handle_t *)&srv->sweep_timer, on_srv_close);
    ifc_conns_close(&srv->peers.conns, on_hub_closed);
}

const ifc_metrics_t *ifc_server_metrics(const ifc_server_t *srv)
{
    return &srv->peers.m;
}

int ifc_server_port(const ifc_server_t *srv)
{
    return srv->port;
}

int ifc_server_metrics_port(const ifc_server_t *srv)
{
    return srv->metrics_port;
}
