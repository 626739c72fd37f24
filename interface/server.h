/*
 * interface/server.h: the network side of bin/chat-interface, the top of
 * its layers (peer.h draws them).
 *
 * One ifc_server_t per process, on one libuv loop. It accepts connections
 * on a SO_REUSEPORT socket (several interface processes may share the
 * address), speaks HTTP/1.1 (keep-alive, pipelining answered in order:
 * respond.h) and RFC 6455 (websocket.h), serves /healthz, /metrics and the
 * files of the web root under /static/ itself, and turns everything else
 * into envelopes for the workers, pushed onto the reliable queue "worker"
 * through a bus (the channel layer in production; bridge.h). Replies come
 * back through ifc_server_on_message, which the bus's owner calls once per
 * message addressed to this process's connections.
 *
 * Routes: the echo path (when set) and /chat/stream/ open WebSockets,
 * the second only once a worker accepts it; /healthz, /metrics and
 * /static/... are answered here; every other request goes to a worker.
 *
 * Limits and time limits are those of its layers: a bounded send queue per
 * socket, with slow WebSocket readers closed with 1008 (websocket.h);
 * pings and a close with 1001 for silent sockets (websocket.h); a head
 * timeout (408) and an idle timeout for HTTP (respond.h); a reply timeout
 * (504) for requests a worker must answer (bridge.h).
 *
 * Closing: a connection that closes first writes out its queue, then sends
 * its FIN and reads and discards until the peer closes too, all within 2 s
 * (conn.h).
 *
 * Ownership: the server owns its connections; each connection embeds its uv
 * handles and is freed in the last close callback. The bus is borrowed and
 * must outlive the server. The types of its settings (ifc_server_config_t),
 * counters (ifc_metrics_t) and bus (ifc_bus_t) are in peer.h, which every
 * layer reads.
 */
#ifndef MC_INTERFACE_SERVER_H
#define MC_INTERFACE_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "interface/peer.h"

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
 * members of a group, whose frame is then encoded once (bridge.h). */
void ifc_server_on_message(ifc_server_t *srv, const uint64_t *conns, size_t n, const char *data,
                           size_t len);

/* The bus reports Redis's state: up is 1 when every shard answers, and
 * failovers is how many times a Sentinel master was found at a new
 * address (both in /metrics). Chat WebSockets stay open through a loss:
 * the channel layer records their groups again when Redis is back, and a
 * message that cannot be queued meanwhile is answered SERVER_BUSY with its
 * client_id, for the client to send again. Once Redis is back, every chat
 * socket is told {"resync":true} (what Redis held for it may be lost: its
 * client asks for what it missed), and the disconnects of sockets that
 * closed meanwhile are sent, so that their presence is cleared. */
void ifc_server_redis_state(ifc_server_t *srv, int up, uint64_t failovers);

/* Stops accepting, closes every WebSocket with 1001 (sending the
 * disconnects), finishes or drops HTTP requests, and calls done once every
 * connection is closed or shutdown_timeout_ms has passed. Then call
 * ifc_server_free and run the loop until it ends. */
void ifc_server_shutdown(ifc_server_t *srv, void (*done)(void *arg), void *arg);

/* Closes the server's remaining handles; the memory is released once libuv
 * has closed them (run the loop). */
void ifc_server_free(ifc_server_t *srv);

const ifc_metrics_t *ifc_server_metrics(const ifc_server_t *srv);

/* The ports actually bound (useful with port 0); the metrics port is 0
 * without a metrics listener. */
int ifc_server_port(const ifc_server_t *srv);
int ifc_server_metrics_port(const ifc_server_t *srv);

#endif
