/*
 * interface/handshake.h: the server side of the WebSocket opening handshake
 * (RFC 6455 section 4.2), with SHA-1 and base64 written here so that the
 * interface needs no crypto library. SHA-1 serves only the handshake's
 * Sec-WebSocket-Accept, where the RFC requires it; it protects nothing.
 *
 * ifc_handshake_check decides, from a parsed request, whether to switch
 * protocols, and otherwise which status to answer:
 *   400  not GET, not HTTP/1.1 or later, no "Upgrade: websocket", no
 *        "Connection: upgrade", a Sec-WebSocket-Key that is not the base64
 *        of 16 bytes;
 *   426  Sec-WebSocket-Version other than 13 (answer with
 *        "Sec-WebSocket-Version: 13");
 *   403  an Origin not allowed.
 * The Origin allow-list is a comma-separated list of origins
 * ("https://chat.example.com", "http://localhost:8000") or "*" for any.
 * With an empty or NULL list the request's own origin is the only allowed
 * one: the Origin's scheme must be the request's (https when a trusted
 * proxy says the client came over TLS, else http: proxy.h) and its host
 * and port must equal the Host header. A request without Origin is refused
 * unless the list holds "*".
 */
#ifndef MC_INTERFACE_HANDSHAKE_H
#define MC_INTERFACE_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "interface/http.h"

#define IFC_WS_ACCEPT_LEN 28 /* base64 of 20 bytes */

/* SHA-1 of data[0..len) into out. */
void ifc_sha1(const void *data, size_t len, uint8_t out[20]);

/* Writes the padded base64 of in[0..len) and a NUL into out (of size at
 * least 4 * ((len + 2) / 3) + 1). Returns the length written. */
size_t ifc_base64_encode(const uint8_t *in, size_t len, char *out);

/* Decodes padded base64 into out (capacity size). Returns the number of
 * bytes, or MC_EINVAL (bad character, bad padding) or MC_ETOOBIG. */
int ifc_base64_decode(const char *in, size_t len, uint8_t *out, size_t size);

/* Computes Sec-WebSocket-Accept for a client key, NUL-terminated in out.
 * Returns 0, or MC_EINVAL when key is not the base64 of 16 bytes. */
int ifc_ws_accept_key(const char *key, size_t key_len, char out[IFC_WS_ACCEPT_LEN + 1]);

/* 1 when origin (e.g. "http://h:8000") is allowed for a request to host
 * (the Host header) that came over scheme ("http" or "https") by the list
 * allowed (see above), else 0. */
int ifc_origin_allowed(const char *origin, size_t origin_len, const char *host, size_t host_len,
                       const char *scheme, const char *allowed);

/* Checks an upgrade request that came over scheme. check_origin 0 skips
 * the Origin test (the echo endpoint). Returns 0 with the accept value in
 * accept, or the HTTP status to answer (400, 403, 426). */
int ifc_handshake_check(const ifc_http_request_t *req, const char *allowed, int check_origin,
                        const char *scheme, char accept[IFC_WS_ACCEPT_LEN + 1]);

#endif
