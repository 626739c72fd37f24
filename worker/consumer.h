/*
 * worker/consumer.h: the chat's WebSocket side (the "consumer" of the
 * multichat example): accepting a socket, its commands, its departure.
 *
 * A socket's state lives with the interface: its scope (who it is, given at
 * accept) and its groups (the rooms it joined, as "room-<id>"), both sent
 * back with every envelope; the store keeps presence for "who". Permissions
 * are checked against the user as the store has it now, not as the scope
 * remembers it.
 *
 * Called by worker/dispatch.h for each websocket.* envelope; who a socket
 * is comes from worker/session.h, the answers leave through the port
 * (worker/port.h), which also keeps a room's messages in order.
 */
#ifndef MC_WORKER_CONSUMER_H
#define MC_WORKER_CONSUMER_H

#include "common/envelope.h"
#include "worker/app.h"

/* websocket.connect: accept with the session's user as scope, join the
 * socket to its room-list, user and session groups and send it the room
 * list; or websocket.close (the interface answers 403) without a valid
 * session. */
int wrk_consumer_connect(wrk_app_t *app, const mc_envelope_t *env);

/* websocket.receive: one command frame, answered per DESIGN.md. */
int wrk_consumer_receive(wrk_app_t *app, const mc_envelope_t *env);

/* websocket.disconnect: leaves every room of the socket (with notices). */
int wrk_consumer_disconnect(wrk_app_t *app, const mc_envelope_t *env);

#endif
