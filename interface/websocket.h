/*
 * interface/websocket.h: WebSocket sessions (RFC 6455) on a connection:
 * the switch from HTTP, frames in and out, pings, and the close handshake.
 *
 * A session is a chat socket, whose text messages go to the workers
 * through the caller (ifc_websocket_read hands them out), or the echo
 * endpoint of the conformance tests, which answers every message with
 * itself. Pings are answered with pongs; a close frame is answered with
 * the same code and the connection finishes; a frame that breaks the
 * protocol closes it with the code ws_frame.h names (1002, 1007, 1009); a
 * binary message on the chat socket closes it with 1003.
 *
 * Slow readers: every socket has a send queue bounded by send_buffer bytes
 * (one message larger than that may go out when the queue is empty). A
 * socket whose queue would pass the bound is closed: the message is
 * dropped, a close frame 1008 (policy violation) is queued behind what is
 * already queued, the socket is counted in closed_slow, and nothing more is
 * read from it or queued for it; memory stays within the bound.
 *
 * Budget: every frame a chat socket sends but a close costs a token of a
 * bucket of socket_burst frames refilled at socket_rate a second, and its
 * length of a bucket of socket_kib_rate KiB a second (holding four seconds
 * of that, and at least one largest message); a compressed message costs
 * its length once inflated. A frame over budget is
 * dropped and counted in rate_limited. The first refusal of a run is
 * answered with {"error":"RATE_LIMITED"}, the others are not; once
 * socket_close_after more have been refused in the run, the socket is
 * closed with 1008 (closed_rate). A run ends with a frame taken a second
 * or more after the last refusal. The echo endpoint has no budget.
 *
 * Answers cost too: the text of every answer a worker gives to a chat
 * socket's own message (ifc_websocket_charge_answer; a history page, a
 * join with its history) is taken from its bucket of bytes even when the
 * bucket does not hold it, which may go into debt by up to
 * socket_answer_debt_ms of its rate. A socket in debt is refused as
 * above until the debt is paid back: one that keeps pulling large answers
 * pays for them at socket_kib_rate. Messages of others are never
 * charged. A chat socket whose client address (limit.h) had a socket
 * closed for its rate within socket_penalty_ms starts with a second's
 * worth of each bucket (socket_rate frames, socket_kib_rate KiB), not
 * the whole bursts.
 *
 * Compression (permessage-deflate, RFC 7692, on the terms of ws_deflate.h)
 * when the server's ws_deflate setting is on and the client offers it: the
 * 101 carries the response, and the socket keeps only the window bits
 * granted (one byte). A compressed message is inflated, up to the
 * socket's maximum message (else 1009), by the process's one inflater; bad
 * compressed data, or a text message that is not UTF-8 once inflated,
 * closes with 1007. A text or binary message goes out compressed to such a
 * socket when it has at least IFC_WEBSOCKET_DEFLATE_MIN bytes, fits the
 * socket's window and shrinks; else plain. Control frames are never
 * compressed.
 *
 * Liveness: a socket that has sent no whole frame for ping_interval_ms gets
 * an empty ping; if no frame (a pong or anything else) arrives within
 * another interval, it is closed with 1001 (going away) and counted in
 * closed_timeout. 1001 rather than 1011: nothing went wrong inside the
 * server, which is leaving a peer it takes for gone; a client that is in
 * fact alive treats it as it treats a restart (1001 too) and reconnects.
 */
#ifndef MC_INTERFACE_WEBSOCKET_H
#define MC_INTERFACE_WEBSOCKET_H

#include <stddef.h>
#include <stdint.h>

#include "interface/peer.h"
#include "interface/ws_frame.h"

/* Charges chat socket p for an answer of bytes to its own message (see
 * Budget above). Does nothing for other sockets or with
 * socket_answer_debt_ms 0. */
void ifc_websocket_charge_answer(ifc_peer_t *p, size_t bytes);

/* Answers the current request, an upgrade ifc_handshake_check took, with
 * 101: the connection becomes a session of kind (IFC_PEER_CHAT or
 * IFC_PEER_ECHO), its HTTP side is released, and it reads on. */
void ifc_websocket_upgrade(ifc_peer_t *p, ifc_peer_kind_t kind);

/* Refuses the upgrade with status (400, 403, 426 with the version we
 * speak, 503, 504) and closes after it; counted in upgrades_rejected. */
void ifc_websocket_refuse(ifc_peer_t *p, int status);

/* Reads frames from data[0..len) (a session's input), answering pings and
 * close frames and echoing on the echo endpoint. Returns 1 with a chat text
 * message in *text[0..*text_len) (valid until the next call) and how much
 * it took in *used; the caller hands it on and calls again with the rest,
 * even when no byte is left. Returns 0 once everything is taken or the
 * connection closes. */
int ifc_websocket_read(ifc_peer_t *p, const uint8_t *data, size_t len, size_t *used,
                       const uint8_t **text, size_t *text_len);

/* A whole unmasked frame of data[0..len) in a new shared buffer (one
 * reference), or NULL. */
ifc_buf_t *ifc_websocket_frame(ifc_ws_opcode_t op, const void *data, size_t len);

/* Sends a frame encoded already (takes a reference of frame), within the
 * send buffer (see above). */
void ifc_websocket_send_frame(ifc_peer_t *p, ifc_buf_t *frame);

/* Sends one frame of data[0..len), within the send buffer: a text or
 * binary message compressed when the socket takes it so (see above). */
void ifc_websocket_send(ifc_peer_t *p, ifc_ws_opcode_t op, const void *data, size_t len);

/* Messages shorter than this go out plain: the few bytes deflate would save
 * are not worth its call. */
#define IFC_WEBSOCKET_DEFLATE_MIN 64

/* One text or binary message for one socket or many (a group's): its plain
 * frame and its compressed one, each encoded once, when a socket first
 * needs it, and shared by every socket that gets it. data must stay valid
 * until the last send. All fields are private. */
typedef struct ifc_websocket_message {
    ifc_ws_opcode_t op;
    const void *data;
    size_t len;
    ifc_buf_t *plain, *deflated;
    int deflate_tried; /* deflated was made, or found not worth it */
} ifc_websocket_message_t;

void ifc_websocket_message_init(ifc_websocket_message_t *m, ifc_ws_opcode_t op, const void *data,
                                size_t len);

/* Sends m to p, compressed or plain (see above), within the send buffer. */
void ifc_websocket_send_message(ifc_peer_t *p, ifc_websocket_message_t *m);

/* Drops m's references to its frames. */
void ifc_websocket_message_clear(ifc_websocket_message_t *m);

/* Sends a close frame with code (MC_CLOSE_NO_STATUS or 0: none), past the
 * send buffer if need be (it is the last one), and finishes the
 * connection. Does nothing once a close is under way. */
void ifc_websocket_close(ifc_peer_t *p, int code);
/* The same with reason (NULL: none) in the frame; a reason over 123 bytes
 * or not UTF-8 is left out. */
void ifc_websocket_close_reason(ifc_peer_t *p, int code, const char *reason);

/* Releases the session's parser (a connection that is gone). */
void ifc_websocket_clear(ifc_peer_t *p);

#endif
