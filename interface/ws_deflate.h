/*
 * interface/ws_deflate.h: permessage-deflate (RFC 7692) on the server side of
 * a WebSocket: the negotiation in the opening handshake, and the compression
 * and decompression of messages, over zlib. No I/O: bytes in, bytes out.
 *
 * The server's terms. It accepts the first permessage-deflate offer it can
 * honour and always answers with both no-context-takeover parameters:
 *   - server_no_context_takeover: every message is compressed on its own,
 *     from an empty window. The compressed form of a message is then the
 *     same for every socket, so a message for a whole group is compressed
 *     once and one frame goes to every member that negotiated the extension.
 *     One compressor serves the process (ifc_ws_deflater_t).
 *   - client_no_context_takeover: a server may put it in any response,
 *     offered or not, and a client that receives it must not use context
 *     takeover (RFC 7692 section 7.1.1.2). Every client message therefore
 *     inflates from an empty window too, one inflater serves the process
 *     (ifc_ws_inflater_t), and no socket holds zlib state: a socket that
 *     negotiated the extension keeps one byte (its window bits). A client
 *     that keeps its context anyway breaks the agreement: a message that
 *     refers back into an earlier one does not inflate (zlib: "invalid
 *     distance too far back") and the connection is closed with 1007.
 *     Letting such clients keep their context would cost each of their
 *     sockets an inflate stream for its lifetime: 7,160 bytes of zlib state
 *     and a 2^client_max_window_bits window, 39,928 bytes in all for the
 *     default 15 bits (7,416 at the smallest, 8 bits; zlib 1.2.13, x86-64),
 *     against about 1.5 KiB for a whole idle socket today.
 *   - server_max_window_bits=N (8..15), when a client asks for it, is
 *     granted and echoed. Messages are still compressed with a 32 KiB window,
 *     but a message compressed from an empty window refers back at most its
 *     own length, so one of at most 2^N bytes is valid for that client; a
 *     longer one goes to it uncompressed, as RFC 7692 lets each message
 *     choose (ifc_ws_deflate_fits).
 *   - client_max_window_bits, with a value or without, is accepted and not
 *     answered: the inflater's 32 KiB window reads every smaller one.
 * An offer is declined, and the next one considered, when it holds an
 * unknown parameter, a parameter twice, a value on a parameter that takes
 * none, server_max_window_bits without a value, a window size that is not a
 * decimal from 8 to 15 without leading zeros, or bad syntax (RFC 7692
 * section 7; values may be tokens or quoted strings, RFC 6455 section 9.1).
 * Other extensions in the header are ignored.
 *
 * Compression (RFC 7692 section 7.2.1): raw DEFLATE of the whole message,
 * flushed with an empty stored block whose last 4 bytes (00 00 ff ff) are
 * cut off. Decompression (section 7.2.2): the payload, then those 4 bytes,
 * inflated; a message may also end with a final block. The inflated size is
 * capped while inflating, so a small message that would inflate past the
 * maximum (a decompression bomb) stops at the first byte over it.
 *
 * Both the compressor and the inflater belong to one loop thread; their
 * zlib state is allocated once, when they are created.
 */
#ifndef MC_INTERFACE_WS_DEFLATE_H
#define MC_INTERFACE_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "interface/http.h"

/* The longest response value ifc_ws_deflate_negotiate writes, NUL included. */
#define IFC_WS_DEFLATE_RESPONSE_MAX 128

/* The window bits of a socket that negotiated the extension and did not ask
 * for a smaller server window. */
#define IFC_WS_DEFLATE_WINDOW_BITS 15

/*
 * Looks through one Sec-WebSocket-Extensions value (a comma-separated list
 * of offers, in the client's order of preference) for the first
 * permessage-deflate offer the server accepts. Returns 1 with the response
 * value, NUL-terminated, in response and the server window bits granted
 * (8..15) in *window_bits; 0 when no offer is acceptable (then the response
 * carries no Sec-WebSocket-Extensions and nothing is compressed).
 */
int ifc_ws_deflate_negotiate(const char *value, size_t len,
                             char response[IFC_WS_DEFLATE_RESPONSE_MAX], uint8_t *window_bits);

/* The same over every Sec-WebSocket-Extensions line of a request, in order:
 * several lines form one list. */
int ifc_ws_deflate_negotiate_request(const ifc_http_request_t *req,
                                     char response[IFC_WS_DEFLATE_RESPONSE_MAX],
                                     uint8_t *window_bits);

/* 1 when a compressed message of len bytes (before compression) may go to a
 * socket that negotiated window_bits, else 0 (send it uncompressed). */
int ifc_ws_deflate_fits(uint8_t window_bits, size_t len);

/* The compressor. Opaque. */
typedef struct ifc_ws_deflater ifc_ws_deflater_t;

/* Creates a compressor. Returns 0, or MC_ENOMEM. */
int ifc_ws_deflater_new(ifc_ws_deflater_t **out);

/* Frees a compressor; NULL does nothing. */
void ifc_ws_deflater_free(ifc_ws_deflater_t *d);

/* The buffer size with which ifc_ws_deflate always succeeds for a message of
 * len bytes (a little more than len: incompressible data grows). */
size_t ifc_ws_deflate_bound(size_t len);

/*
 * Compresses in[0..len) as one message into the caller's out[0..cap) and
 * stores in *out_len the payload to send in a frame with RSV1 set.
 * Returns 0; MC_ETOOBIG when the result would not fit in cap (a caller that
 * only wants messages that shrink may pass a cap below len and send the
 * message uncompressed on MC_ETOOBIG); MC_ENOMEM.
 */
int ifc_ws_deflate(ifc_ws_deflater_t *d, const void *in, size_t len, uint8_t *out, size_t cap,
                   size_t *out_len);

/*
 * Compresses in[0..len) as one message, as ifc_ws_deflate does, into the
 * compressor's own memory, when that makes it shorter. Returns 0 with the
 * payload in *out[0..*out_len), *out_len < len, valid until the next call
 * on d or its free; MC_ETOOBIG when the message would not shrink (send it
 * uncompressed); MC_ENOMEM. Up to 64 KiB of that memory stays with d
 * between calls; what a longer message needed, until the next call.
 */
int ifc_ws_deflate_shrink(ifc_ws_deflater_t *d, const void *in, size_t len, const uint8_t **out,
                          size_t *out_len);

/* The inflater. Opaque. */
typedef struct ifc_ws_inflater ifc_ws_inflater_t;

/* Creates an inflater. Returns 0, or MC_ENOMEM. */
int ifc_ws_inflater_new(ifc_ws_inflater_t **out);

/* Frees an inflater; NULL does nothing. */
void ifc_ws_inflater_free(ifc_ws_inflater_t *z);

/*
 * Inflates one message given in pieces of any size (its frames' payloads,
 * or any cut of them): begin, feed every piece in order, end. max is the
 * largest inflated message allowed. One message at a time: begin forgets
 * the previous one and its output. feed and end return 0, or the first
 * error of the message, which sticks until the next begin:
 *   MC_ETOOBIG  the message inflates past max (close 1009);
 *   MC_EINVAL   the data is not valid DEFLATE, refers back before the
 *               message's start, or the message ends inside a block (close
 *               1007);
 *   MC_ENOMEM   (close 1011).
 * end stores the inflated message in *out and *out_len: the inflater's
 * memory, valid until the next begin or free (*out is never NULL).
 */
void ifc_ws_inflate_begin(ifc_ws_inflater_t *z, size_t max);
int ifc_ws_inflate_feed(ifc_ws_inflater_t *z, const void *in, size_t len);
int ifc_ws_inflate_end(ifc_ws_inflater_t *z, const uint8_t **out, size_t *out_len);

/* begin, feed and end for a message that is all in one piece. */
int ifc_ws_inflate_message(ifc_ws_inflater_t *z, size_t max, const void *in, size_t len,
                           const uint8_t **out, size_t *out_len);

/* The close code for an error of the inflater: 1009, 1007 or 1011. */
int ifc_ws_inflate_close_code(int rc);

#endif
