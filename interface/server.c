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
#include "interface/respond.h"
#include "interface/static.h"
#include "interface/websocket.h"

#define CHAT_PATH "/chat/stream/"

struct ifc_server {
    ifc_peers_t peers; /* first: the layers' shared part */
    ifc_server_config_t cfg;
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t shutdown_timer;
    int handles; /* ours, the connection hub counting as one */
    int listening, freed;
    int port;
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
    free(srv);
}

static void srv_maybe_free(ifc_server_t *srv)
{
    if (srv->freed && srv->handles == 0 && srv->live == 0)
        srv_release(srv);
}

/* ---- Routes ----------------------------------------------------------------- */

static int path_is(const ifc_http_request_t *req, const char *path)
{
    size_t n = strlen(path);
    return req->path_len == n && memcmp(req->path, path, n) == 0;
}

static void route(ifc_server_t *srv, ifc_peer_t *p, const ifc_http_request_t *req)
{
    const char *echo = srv->cfg.echo_path;
    if (echo && *echo && path_is(req, echo)) {
        int rc = ifc_handshake_check(req, NULL, 0, p->accept);
        if (rc != 0)
            ifc_websocket_refuse(p, rc);
        else
            ifc_websocket_upgrade(p, IFC_PEER_ECHO);
        return;
    }
    if (path_is(req, CHAT_PATH)) {
        int rc = ifc_handshake_check(req, srv->cfg.allowed_origins, 1, p->accept);
        if (rc != 0)
            ifc_websocket_refuse(p, rc);
        else
            ifc_bridge_forward(p, req, MC_ENV_WS_CONNECT);
        return;
    }
    if (req->upgrade)
        p->keep_alive = 0; /* what follows is not HTTP: answer, then close */
    if (path_is(req, "/healthz"))
        ifc_respond_health(p);
    else if (path_is(req, "/metrics"))
        ifc_respond_metrics(p);
    else if (req->path_len >= 8 && memcmp(req->path, "/static/", 8) == 0)
        ifc_respond_static(p, req);
    else
        ifc_bridge_forward(p, req, MC_ENV_HTTP_REQUEST);
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
            while (ifc_websocket_read(p, data + off, len - off, &used, &text, &text_len) == 1) {
                off += used;
                ifc_bridge_receive(p, text, text_len);
            }
            return len;
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
    srv->live++;
    if (ifc_conn_accept(&srv->peers.conns, &p->conn, listener) != 0)
        return; /* freed by on_freed */
    if (ifc_respond_start(p) != 0)
        ifc_conn_close(&p->conn);
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
    srv->peers.cfg = &srv->cfg;
    srv->peers.bus = *bus;
    srv->peers.pushed = on_pushed;
    if (cfg->ws_deflate && (ifc_ws_deflater_new(&srv->peers.deflater) != 0 ||
                            ifc_ws_inflater_new(&srv->peers.inflater) != 0)) {
        srv_release(srv);
        return MC_ENOMEM;
    }
    if (ifc_static_root(cfg->web_root, srv->peers.root, sizeof(srv->peers.root)) != 0) {
        mc_warn("web root %s not found: static files answer 404", cfg->web_root);
        snprintf(srv->peers.root, sizeof(srv->peers.root), "/nonexistent");
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
        srv_release(srv);
        errno = e;
        return MC_EIO;
    }
    static const ifc_conn_hooks_t hooks = {on_input, on_written, on_closing, on_freed};
    ifc_conns_init(&srv->peers.conns, loop, &hooks, &srv->peers.m.conn);
    srv->handles++;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    srv->handles++;
    uv_timer_init(loop, &srv->shutdown_timer);
    srv->shutdown_timer.data = srv;
    srv->handles++;
    if (uv_tcp_open(&srv->listener, fd) != 0 ||
        uv_listen((uv_stream_t *)&srv->listener, 511, on_connection) != 0) {
        mc_error("cannot listen on %s", cfg->listen);
        srv->freed = 1;
        uv_close((uv_handle_t *)&srv->listener, on_srv_close);
        uv_close((uv_handle_t *)&srv->shutdown_timer, on_srv_close);
        ifc_conns_close(&srv->peers.conns, on_hub_closed);
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
    if (srv->listening) {
        srv->listening = 0;
        uv_close((uv_handle_t *)&srv->listener, on_srv_close);
    }
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
    if (srv->listening) {
        srv->listening = 0;
        uv_close((uv_handle_t *)&srv->listener, on_srv_close);
    }
    uv_close((uv_handle_t *)&srv->shutdown_timer, on_srv_close);
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
