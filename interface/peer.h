/*
 * interface/peer.h: what the layers above the connection layer share.
 *
 * The interface process is built in layers, each a file with its header,
 * each calling only the ones below it:
 *
 *   server.c     the listener, routing of requests, shutdown (server.h)
 *   bridge.c     envelopes to the workers, and their replies (bridge.h)
 *   websocket.c  WebSocket sessions: frames, pings, close (websocket.h)
 *   respond.c    HTTP exchanges: requests in, responses, static files and
 *                /healthz, /metrics out (respond.h)
 *   conn.c       sockets: input, send queues, timer, close (conn.h)
 *
 * under them the parsers and codecs, which touch no socket: http.c,
 * ws_frame.c, ws_deflate.c, handshake.c, static.c, utf8.c. Hooks carry
 * events upwards: the server sets the connection layer's hooks and hands
 * each event to the layer it concerns.
 *
 * ifc_peer_t is one client: its connection, embedded first, and what each
 * layer keeps about it, in sections by owner. ifc_peers_t is what the
 * layers share across clients: the connections, settings, counters and the
 * bus. Both are one per connection and one per server, on the server's
 * loop. The settings, counters and bus types are the server's contract
 * (server.h), declared here because every layer reads them.
 */
#ifndef MC_INTERFACE_PEER_H
#define MC_INTERFACE_PEER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"
#include "interface/conn.h"
#include "interface/handshake.h"
#include "interface/http.h"
#include "interface/limit.h"
#include "interface/ip.h"
#include "interface/ws_deflate.h"
#include "interface/ws_frame.h"

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
    const char *metrics_listen;  /* NULL or "": /metrics is served nowhere */
    const char *trusted_proxies; /* addresses and blocks (ip.h) whose X-Forwarded-* count */
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
    int ws_deflate;              /* accept permessage-deflate (websocket.h) */
    /* Per client address (limit.h), per process; 0: off */
    long address_open_max; /* connections open at once */
    long address_rate;     /* new connections a second... */
    long address_burst;    /* ...and at once */
    /* Per chat socket, before anything reaches the workers (websocket.h) */
    long socket_rate;           /* frames a second; 0: no limit */
    long socket_burst;          /* frames at once */
    long socket_kib_rate;       /* KiB of messages a second; 0: no limit */
    long socket_answer_debt_ms; /* answers charged to the bytes, in debt up to this; 0: not */
    long socket_penalty_ms;     /* after a close for rate, an address's sockets start low */
    long socket_in_flight;      /* messages the workers have not answered yet */
    long socket_close_after;    /* frames refused in a row before a close with 1008 */
} ifc_server_config_t;

/* Counters for /metrics. */
typedef struct ifc_metrics {
    ifc_conn_counts_t conn; /* sockets open and accepted, bytes in and out */
    uint64_t http_requests, upgrades_accepted, upgrades_rejected;
    uint64_t frames_in, frames_out;
    uint64_t envelopes_pushed, push_failures, replies_popped, replies_dropped;
    uint64_t closed_slow, closed_timeout, redis_errors;
    uint64_t queue_full;          /* pushes the worker queue refused, full */
    uint64_t refused_connections; /* over a limit per address: closed, or 429 */
    uint64_t rate_limited;        /* frames refused over a socket's budget */
    uint64_t closed_rate;         /* sockets closed for going on over it */
    uint64_t busy_replies;        /* SERVER_BUSY for a message that could not be queued */
    uint64_t disconnects_lost;    /* disconnects given up on (presence left behind) */
    uint64_t redis_up;            /* gauge: 1 while every shard answers */
    uint64_t redis_losses;        /* times Redis went away */
    uint64_t redis_failovers;     /* a Sentinel master found at a new address */
    uint64_t resyncs;             /* {"resync":true} sent to a socket */
    /* permessage-deflate: sockets that negotiated it, messages inflated,
     * compressed frames sent */
    uint64_t upgrades_deflate, messages_inflated, frames_deflated;
} ifc_metrics_t;

typedef enum ifc_peer_kind {
    IFC_PEER_HTTP,
    IFC_PEER_CHAT, /* the chat WebSocket, whose messages go to the workers */
    IFC_PEER_ECHO, /* the echo WebSocket of the conformance tests */
} ifc_peer_kind_t;

/* What an HTTP connection waits for before it reads its next request. */
typedef enum ifc_peer_wait {
    IFC_WAIT_NONE,
    IFC_WAIT_HTTP,    /* a worker's http.response, or the rest of a static file */
    IFC_WAIT_CONNECT, /* a worker's websocket.accept or websocket.close */
} ifc_peer_wait_t;

typedef struct ifc_peers {
    ifc_conns_t conns; /* first: the hub's closed callback finds the server by it */
    const ifc_server_config_t *cfg;
    ifc_bus_t bus;
    ifc_metrics_t m;
    ifc_cidrs_t trusted; /* the trusted proxies */
    ifc_addrs_t addrs;   /* client addresses: their open connections and rates */
    char root[PATH_MAX]; /* the web root, resolved */
    int stopping;        /* shutting down: no keep-alive */
    int marks_seen;      /* workers mark their answers (bridge.h): in-flight is counted */
    size_t pushes;       /* pushes whose callback has not run */
    /* The bridge's: disconnects kept to be sent again once Redis is back,
     * and the number of receives so far (they are named by it). */
    struct ifc_push *pending;
    size_t npending;
    uint64_t receives;
    /* permessage-deflate, one of each for every socket (ws_deflate.h);
     * NULL when ws_deflate is off */
    ifc_ws_deflater_t *deflater;
    ifc_ws_inflater_t *inflater;
    /* set by the server: a push completed (a shutdown waits for the last) */
    void (*pushed)(struct ifc_peers *peers);
} ifc_peers_t;

/* Who a chat WebSocket belongs to, as the worker accepted it (the scope of
 * common/envelope.h), kept as long as its name is: every idle socket
 * holds one. */
typedef struct ifc_peer_scope {
    int64_t user_id;
    uint8_t is_staff;
    char username[]; /* NUL-terminated */
} ifc_peer_scope_t;

typedef struct ifc_peer {
    ifc_conn_t conn; /* first: the connection layer's part */
    ifc_peers_t *peers;
    uint8_t kind; /* ifc_peer_kind_t */
    uint8_t wait; /* ifc_peer_wait_t: see ifc_peer_wait */
    /* The server (server.c) */
    ifc_addr_t *addr;        /* the client address this connection holds a place of, or NULL */
    unsigned on_metrics : 1; /* accepted on the metrics listener */
    /* HTTP exchanges (respond.c) */
    ifc_http_parser_t *http; /* HTTP only */
    int file_fd;             /* static file being sent, -1 */
    uint64_t file_left;
    unsigned keep_alive : 1; /* for the response being written */
    unsigned head_only : 1;  /* HEAD: no body */
    /* WebSocket sessions (websocket.c) */
    unsigned close_sent : 1; /* a close frame went out */
    unsigned ping_due : 1;   /* a ping is out and no frame came since */
    unsigned limited : 1;    /* RATE_LIMITED went out: a run of refusals */
    uint8_t refused;         /* frames refused since, in the run */
    uint8_t deflate;         /* permessage-deflate: the server window bits granted, 0: none */
    uint16_t close_code;
    uint32_t limited_at;        /* loop time (ms) of the last refusal */
    ifc_bucket_t frames, bytes; /* the socket's budget */
    uint32_t last_in;           /* loop time (ms) of the last whole frame received */
    ifc_ws_parser_t *ws;
    /* The bridge (bridge.c) */
    unsigned disconnected : 1; /* websocket.disconnect sent */
    uint16_t in_flight;        /* websocket.receive pushed and not yet answered */
    uint32_t flight_at;        /* loop time (ms) of the last answer, or the first push */
    ifc_peer_scope_t *scope;   /* chat WebSocket only */
} ifc_peer_t;

/* The peer of connection id, or NULL. */
static inline ifc_peer_t *ifc_peers_find(ifc_peers_t *peers, uint64_t id)
{
    return (ifc_peer_t *)ifc_conns_find(&peers->conns, id);
}

/* Sets what p waits for; while it waits, input it could not take yet
 * stays where it is. */
static inline void ifc_peer_wait(ifc_peer_t *p, ifc_peer_wait_t wait)
{
    p->wait = wait;
    p->conn.held = wait != IFC_WAIT_NONE;
}

#endif
