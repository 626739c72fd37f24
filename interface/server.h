/*
 * interface/server.h: the network side of bin/chat-interface.
 *
 * One ifc_server_t per process, on one libuv loop. It accepts connections
 * on a SO_REUSEPORT socket (several interface processes may share the
 * address), speaks HTTP/1.1 (keep-alive, pipelining answered in order) and
 * RFC 6455, serves /healthz, /metrics and the files of the web root under
 * /static/ itself, and turns everything else into envelopes for the
 * workers, pushed onto the reliable queue "worker" through a bus (the
 * channel layer in production). Replies come back through
 * ifc_server_on_message, which the bus's owner calls once for each message
 * addressed to this process's connections.
 *
 * Responses: every HTTP response carries Content-Security-Policy (our own
 * files only, no inline code, no framing), X-Content-Type-Options:
 * nosniff, Referrer-Policy: same-origin and X-Frame-Options: DENY, unless a
 * worker's response sets that header itself (then the worker's value goes
 * out, once). An answer to HEAD, ours or a worker's, is its head only, with
 * the content-length of the body it would have had.
 *
 * Static files go out in 64 KiB chunks read on the loop, each once the
 * previous one is written (see file_next in server.c for why not uv_fs).
 *
 * Slow readers: every socket has a send queue bounded by send_buffer bytes
 * (one message larger than that may go out when the queue is empty). A
 * WebSocket whose queue would pass the bound is closed: the message is
 * dropped, a close frame 1008 (policy violation) is queued behind what is
 * already queued, the socket is counted in closed_slow, and nothing more is
 * read from it or queued for it; memory stays within the bound. HTTP
 * connections instead stop reading while their queue is over the bound.
 *
 * Liveness: a WebSocket that has sent no whole frame for ping_interval_ms
 * gets an empty ping; if no frame (a pong or anything else) arrives within
 * another interval, it is closed with 1001 (going away) and counted in
 * closed_timeout. 1001 rather than 1011: nothing went wrong inside the
 * server, which is leaving a peer it takes for gone; a client that is in
 * fact alive treats it as it treats a restart (1001 too) and reconnects.
 * An HTTP connection is closed when no request head has begun within
 * idle_timeout_ms of the last response (before the first request, the
 * header timeout applies), and gets 408 when a head takes longer than
 * header_timeout_ms.
 *
 * Closing: a connection that closes first writes out its queue, then sends
 * its FIN and reads and discards until the peer closes too, all within 2 s
 * (a reset would destroy the last bytes before the peer read them).
 *
 * Ownership: the server owns its connections; each connection embeds its uv
 * handles and is freed in the last close callback. The bus is borrowed and
 * must outlive the server.
 */
#ifndef MC_INTERFACE_SERVER_H
#define MC_INTERFACE_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* What the server needs from the channel layer. ctx is passed back. */
typedef struct ifc_bus {
    void *ctx;
    /* Pushes msg onto queue; the data is copied. Returns 0 (cb then runs
     * once with 0, MC_EFULL, MC_EREDIS or MC_ECLOSED) or an MC_E* error (cb
     * never runs). */
    int (*push)(void *ctx, const char *queue, const void *msg, size_t len,
                void (*cb)(void *arg, int status), void *arg);
    /* Writes the reply channel of connection conn into buf. */
    int (*reply_channel)(void *ctx, uint64_t conn, char *buf, size_t size);
    /* The connection of this process that channel[0..len) names: returns 0
     * and *conn, or an error (another process's channel, or not one). */
    int (*conn_of)(void *ctx, const char *channel, size_t len, uint64_t *conn);
    /* The connection is gone: forget its memberships. */
    void (*forget_conn)(void *ctx, uint64_t conn);
    /* Calls fn for every group conn belongs to. */
    void (*each_group)(void *ctx, uint64_t conn, void (*fn)(void *arg, const char *group),
                       void *arg);
} ifc_bus_t;

typedef struct ifc_server_config {
    const char *listen;          /* "127.0.0.1:8000" or "[::1]:8000" */
    const char *web_root;        /* directory of the static files */
    const char *allowed_origins; /* see handshake.h; NULL or "": the request's Host */
    const char *echo_path;       /* NULL or "": no echo endpoint */
    const char *instance;        /* this process in /metrics (chat_interface_info), or NULL */
    long max_message;            /* chat WebSocket messages, bytes */
    long echo_max_message;       /* echo WebSocket messages, bytes */
    long ping_interval_ms;       /* a WebSocket silent this long is pinged, then closed */
    long header_timeout_ms;      /* a request head must arrive within this */
    long idle_timeout_ms;        /* idle keep-alive connections are closed after this */
    long reply_timeout_ms;       /* a worker must answer within this (else 504) */
    long send_buffer;            /* bytes queued per socket; past it a WebSocket is slow */
    long shutdown_timeout_ms;    /* bound on a graceful shutdown */
} ifc_server_config_t;

/* Counters for /metrics. */
typedef struct ifc_metrics {
    uint64_t open_sockets, accepted_sockets, http_requests;
    uint64_t upgrades_accepted, upgrades_rejected;
    uint64_t frames_in, frames_out, bytes_in, bytes_out;
    uint64_t envelopes_pushed, push_failures, replies_popped, replies_dropped;
    uint64_t closed_slow, closed_timeout, redis_errors;
} ifc_metrics_t;

typedef struct ifc_server ifc_server_t;

/* Fills cfg with the defaults (ping 20 s, 64 KiB messages, 16 MiB echo
 * messages, 10 s head timeout, 60 s idle, 30 s replies, 1 MiB send buffer,
 * 10 s shutdown). */
void ifc_server_config_defaults(ifc_server_config_t *cfg);

/* Creates the server and starts listening. cfg strings must outlive the
 * server. Returns 0 and *out, MC_EINVAL (bad address or web root), MC_EIO
 * (bind or listen failed; errno says why), MC_ENOMEM. */
int ifc_server_start(ifc_server_t **out, uv_loop_t *loop, const ifc_server_config_t *cfg,
                     const ifc_bus_t *bus);

/* A message from a worker (an envelope, data[0..len), read only during the
 * call) for the connections conns[0..n): one connection, or this process's
 * members of a group. A group's websocket.send is encoded into one frame
 * that every member's socket shares; its "except" member gets nothing, its
 * "own" member a copy ending in ,"own":true, encoded once too. */
void ifc_server_on_message(ifc_server_t *srv, const uint64_t *conns, size_t n, const char *data,
                           size_t len);

/* The bus reports that Redis was lost (counted in /metrics): every chat
 * WebSocket is closed with 1012, since the groups it was in may be gone
 * when Redis comes back; clients reconnect and catch up by message id. */
void ifc_server_redis_error(ifc_server_t *srv);

/* Stops accepting, closes every WebSocket with 1001 (sending the
 * disconnects), finishes or drops HTTP requests, and calls done once every
 * connection is closed or shutdown_timeout_ms has passed. Then call
 * ifc_server_free and run the loop until it ends. */
void ifc_server_shutdown(ifc_server_t *srv, void (*done)(void *arg), void *arg);

/* Closes the server's remaining handles; the memory is released once libuv
 * has closed them (run the loop). */
void ifc_server_free(ifc_server_t *srv);

const ifc_metrics_t *ifc_server_metrics(const ifc_server_t *srv);

/* The port actually bound (useful with port 0). */
int ifc_server_port(const ifc_server_t *srv);

#endif
