/*
 * interface/ws_frame.h: RFC 6455 frames, parsed incrementally and encoded.
 *
 * The parser runs on the server side of a WebSocket. It takes the bytes a
 * client sends, in pieces of any size, and returns events: a whole text or
 * binary message (fragments joined), or a control frame (ping, pong, close).
 * It enforces the protocol as it goes and stops at the first violation with
 * the close code the server must send:
 *   - 1002 (protocol error): an unmasked client frame, an RSV bit set (but
 *     RSV1 on the first frame of a text or binary message of a socket that
 *     negotiated permessage-deflate), an unknown opcode, a control frame that
 *     is fragmented or longer than 125 bytes, a length not in its shortest
 *     form or with the top bit set, a continuation frame with no message
 *     open, a new message before the open one ended, a close payload of one
 *     byte or with a code that may not be sent;
 *   - 1007 (invalid data): a text message, or the reason of a close frame,
 *     that is not UTF-8 (checked byte by byte, across fragments; a
 *     compressed message is checked by the caller once inflated);
 *   - 1009 (too big): a message whose length would pass the maximum; the
 *     check runs on the frame header, before any payload is stored.
 * Errors are sticky. The parser owns the message being assembled; it grows
 * with the bytes actually received (never with a length a client merely
 * announces) and is freed once the message has been delivered; a control
 * frame's payload, too, is held only while it is read and delivered, so an
 * idle parser holds no heap memory, and every idle WebSocket has one.
 *
 * The encoder writes server frames: unmasked, with FIN and RSV1 as asked.
 */
#ifndef MC_INTERFACE_WS_FRAME_H
#define MC_INTERFACE_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"
#include "common/utf8.h"

#define IFC_WS_MAX_CONTROL 125 /* payload of a control frame */
#define IFC_WS_MAX_HEADER 14   /* 2 + 8 (length) + 4 (mask) */
#define IFC_WS_MAX_CLOSE_REASON 123

typedef enum ifc_ws_opcode {
    IFC_WS_OP_CONTINUATION = 0x0,
    IFC_WS_OP_TEXT = 0x1,
    IFC_WS_OP_BINARY = 0x2,
    IFC_WS_OP_CLOSE = 0x8,
    IFC_WS_OP_PING = 0x9,
    IFC_WS_OP_PONG = 0xA,
} ifc_ws_opcode_t;

/* What ifc_ws_parse found. Pointers are valid until the next call on the
 * same parser (or ifc_ws_parser_clear). */
typedef struct ifc_ws_event {
    ifc_ws_opcode_t opcode; /* TEXT or BINARY (a whole message), CLOSE, PING, PONG */
    const uint8_t *data;    /* the message, the ping/pong payload, or the close reason */
    size_t len;
    int close_code; /* CLOSE: the code received, or 1005 when the payload was empty */
    int compressed; /* TEXT, BINARY: sent with RSV1; data is the deflated message */
} ifc_ws_event_t;

/* All fields are private. */
typedef struct ifc_ws_parser {
    size_t max_message; /* limit on an assembled message */
    uint8_t *msg;       /* the message being assembled (heap) */
    size_t msg_len, msg_cap;
    uint64_t plen, pdone; /* current frame: payload length and bytes read */
    uint8_t *ctrl;        /* a control frame's payload (heap, while one is read) */
    uint16_t error;       /* close code after a violation, else 0 */
    uint8_t msg_opcode;   /* TEXT or BINARY while a message is open, else 0 */
    uint8_t opcode;
    uint8_t msg_compressed : 1; /* the open message has RSV1 */
    uint8_t rsv1_allowed : 1;   /* permessage-deflate was negotiated */
    uint8_t fin : 1, masked : 1, in_payload : 1;
    uint8_t delivered : 1;      /* the last event was a message: release it on the next call */
    uint8_t ctrl_delivered : 1; /* the last event was a control frame: the same */
    mc_utf8_t utf8;
    uint8_t mask[4];
    uint8_t hdr_len, hdr_need;
    uint8_t hdr[IFC_WS_MAX_HEADER];
} ifc_ws_parser_t;

#define IFC_WS_NEED_MORE 0
#define IFC_WS_EVENT 1

/* Prepares a parser for messages of at most max_message bytes. */
void ifc_ws_parser_init(ifc_ws_parser_t *p, size_t max_message);

/* Accepts RSV1 on the first frame of text and binary messages from now on:
 * the socket negotiated permessage-deflate. */
void ifc_ws_parser_allow_rsv1(ifc_ws_parser_t *p);

/* Releases what the parser holds. The struct may be reused after init. */
void ifc_ws_parser_clear(ifc_ws_parser_t *p);

/* Reads data[0..len) up to the next event and stores in *used how many bytes
 * it consumed (the caller feeds the rest afterwards). Returns IFC_WS_EVENT
 * with *ev filled; IFC_WS_NEED_MORE when every byte was consumed without
 * completing an event; MC_EPROTO on a violation (then ifc_ws_parser_error
 * gives the close code, and every later call returns MC_EPROTO). */
int ifc_ws_parse(ifc_ws_parser_t *p, const void *data, size_t len, size_t *used,
                 ifc_ws_event_t *ev);

/* The close code of the violation that stopped the parser, or 0. */
int ifc_ws_parser_error(const ifc_ws_parser_t *p);

/* 1 when a peer may send code in a close frame (1000-1003, 1007-1014,
 * 3000-4999), else 0. */
int ifc_ws_close_code_valid(int code);

/* Flags of ifc_ws_frame_header. */
#define IFC_WS_FIN 1  /* the last frame of its message */
#define IFC_WS_RSV1 2 /* the first frame of a compressed message */

/* Writes the header of an unmasked server frame with flags (IFC_WS_FIN,
 * IFC_WS_RSV1) into out and returns its length (2, 4 or 10 bytes). */
size_t ifc_ws_frame_header(uint8_t out[IFC_WS_MAX_HEADER], ifc_ws_opcode_t opcode, int flags,
                           uint64_t len);

/* Encodes one whole unmasked frame into a malloc'd buffer the caller frees.
 * Returns 0, MC_EINVAL (a control frame over 125 bytes), MC_ENOMEM. */
int ifc_ws_frame_encode(ifc_ws_opcode_t opcode, const void *payload, size_t len, uint8_t **out,
                        size_t *out_len);

/* Encodes a close frame with code (0: no code and no reason) and a reason
 * of at most 123 bytes into out. Returns 0 or MC_ETOOBIG. */
int ifc_ws_close_encode(int code, const char *reason, size_t reason_len,
                        uint8_t out[2 + IFC_WS_MAX_CONTROL], size_t *out_len);

#endif
