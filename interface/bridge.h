/*
 * interface/bridge.h: the bridge between the clients of this process and
 * the workers, over the channel layer (the bus of peer.h).
 *
 * Out: every HTTP request the interface does not answer itself, every
 * chat WebSocket's opening, text message and end becomes an envelope
 * (common/envelope.h) with the connection's reply channel, pushed onto the
 * workers' reliable queue "worker". A push that fails (Redis down, the
 * queue full) is answered at once: 503 to a request, and on a chat socket
 * {"error":"SERVER_BUSY"} naming the message's command, room and client_id
 * (common/error_reply.h), so that the client sends it again; nothing is
 * lost silently. A disconnect that cannot be pushed is kept and pushed
 * again once Redis is back, so that the worker clears the socket's
 * presence. A request whose worker does not answer within
 * reply_timeout_ms gets 504. Every websocket.receive carries an id, the
 * process's name and a counter, on which a worker that handles it a
 * second time (after its first worker died) recognises it.
 *
 * Back: the owner of the bus hands every message for this process's
 * connections to ifc_bridge_deliver, once, with the connections it is for:
 * one (a reply to a request, a message to one socket) or this process's
 * members of a group (a room's message). A group's websocket.send is
 * encoded into one frame that every member's socket shares (and one
 * compressed frame that the members that negotiated permessage-deflate
 * share: websocket.h); its "except" member (the joiner of its own enter
 * notice) gets nothing, and its "own" member (the sender of a chat
 * message) gets a copy whose object ends in ,"own":true, encoded once too,
 * so the sender's copy travels inside the room's one message. That copy
 * goes plain: compressing it would be a second deflate per message, for
 * one socket. The channel layer turns those channel
 * names into connection ids (bus.conn_of): no name is parsed here.
 *
 * In flight: a worker marks one envelope as the answer of each
 * websocket.receive ("done", common/envelope.h). A chat socket with
 * socket_in_flight messages unanswered reads nothing more until an answer
 * comes (ifc_bridge_held): one socket cannot fill the workers' queue, and
 * a client that pipelines many commands is slowed, not refused. Workers of
 * an older version mark nothing: until the first marked answer arrives,
 * nothing is held. Answers that never come are owed no more after the
 * reply timeout, nor once Redis is back after a loss (ifc_bridge_redis_up):
 * they went with it.
 */
#ifndef MC_INTERFACE_BRIDGE_H
#define MC_INTERFACE_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"
#include "interface/http.h"
#include "interface/peer.h"
#include "interface/proxy.h"

/* Sends the current request of client (its address and scheme go in the
 * envelope) to the workers as type (MC_ENV_HTTP_REQUEST, or
 * MC_ENV_WS_CONNECT for a chat socket's handshake) and waits for the
 * answer; answers 413 or 503 itself when it cannot be sent. */
void ifc_bridge_forward(ifc_peer_t *p, const ifc_http_request_t *req, mc_envelope_type_t type,
                        const ifc_client_t *client);

/* Sends a chat socket's text message (websocket.receive, with the socket's
 * scope and groups); answers SERVER_BUSY when it cannot be sent. */
void ifc_bridge_receive(ifc_peer_t *p, const uint8_t *text, size_t len);

/* 1 while a chat socket has socket_in_flight messages unanswered: its
 * input waits (the caller stops reading it) until an answer comes, which
 * resumes it. Answers that have not come for reply_timeout_ms are taken
 * for lost and no longer waited for. */
int ifc_bridge_held(ifc_peer_t *p);

/* A chat socket is closing: sends websocket.disconnect with its close code
 * (1006 when none was exchanged), once, and forgets its groups. */
void ifc_bridge_disconnect(ifc_peer_t *p);

/* A message from a worker (an envelope, data[0..len), read only during the
 * call) for the connections conns[0..n) of this process (see above).
 * Connections that are gone or closing are counted in replies_dropped. */
void ifc_bridge_deliver(ifc_peers_t *peers, const uint64_t *conns, size_t n, const char *data,
                        size_t len);

/* Releases what the bridge keeps about a connection that is gone. */
void ifc_bridge_clear(ifc_peer_t *p);

/* Redis answers again after a loss: every chat socket is told
 * {"resync":true} (messages for it may have been lost with what Redis
 * held: its client joins its rooms again with since), and the disconnects
 * that could not be pushed while Redis was away are pushed now (each is
 * tried on a few returns, then given up and counted in disconnects_lost). */
void ifc_bridge_redis_up(ifc_peers_t *peers);

/* Releases what the bridge keeps for the server (disconnects never sent,
 * logged). */
void ifc_bridge_free(ifc_peers_t *peers);

#endif
