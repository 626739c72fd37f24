/*
 * interface/respond.h: HTTP exchanges on a connection: requests in, one at
 * a time, and their responses out, in order; the files of the web root,
 * /healthz and /metrics are answered here.
 *
 * A connection starts as HTTP (ifc_respond_start). Its input goes through
 * ifc_respond_read, which gives out one request at a time; the caller
 * answers it (here, or through a worker) and the next request is read once
 * the answer is out. Pipelined requests are thus answered in order, and
 * input is not read on while a request waits for its answer, a static file
 * goes out, or the send queue is over the send buffer: a client cannot
 * make the server buffer without bound.
 *
 * Every response carries Content-Security-Policy (our own files only, no
 * inline code, no framing), X-Content-Type-Options: nosniff,
 * Referrer-Policy: same-origin and X-Frame-Options: DENY, unless the
 * headers given set one of them (a worker's response: then its value goes
 * out, once). An answer to HEAD is its head only, with the content-length
 * of the body it would have had.
 *
 * After a response the connection reads its next request, or, without
 * keep-alive or after an error status of the parser, finishes (conn.h).
 * Time limits: a request head must arrive within header_timeout_ms once it
 * has begun (else 408), and an idle keep-alive connection is closed after
 * idle_timeout_ms (before its first request the header timeout applies).
 *
 * Static files go out in 64 KiB chunks read on the loop, each once the
 * previous one is written (see file_next in respond.c for why not uv_fs).
 */
#ifndef MC_INTERFACE_RESPOND_H
#define MC_INTERFACE_RESPOND_H

#include <stddef.h>

#include "interface/http.h"
#include "interface/peer.h"

/* A new connection speaks HTTP: its parser, and the head timer. Returns 0
 * or MC_ENOMEM (then close it). */
int ifc_respond_start(ifc_peer_t *p);

/* ifc_respond_read found nothing to do now: the caller keeps the rest of
 * its input for later (see above). */
#define IFC_RESPOND_LATER 2

/* Reads data[0..len) up to the next request and stores in *used how much
 * it took. Returns IFC_HTTP_REQUEST with a request to answer
 * (ifc_http_request(p->http), counted, with the connection's timer stopped
 * and keep-alive decided), IFC_HTTP_NEED_MORE when it took everything, or
 * IFC_RESPOND_LATER. A malformed or oversized request is answered here
 * with its status, and the rest of the input dropped. */
int ifc_respond_read(ifc_peer_t *p, const uint8_t *data, size_t len, size_t *used);

/* Answers the current request with status, headers[0..n) (n at most
 * MC_ENVELOPE_MAX_HEADERS) and body[0..body_len), then goes on (see
 * above). */
void ifc_respond(ifc_peer_t *p, int status, const ifc_http_header_t *headers, size_t n,
                 const void *body, size_t body_len);

/* Answers with a short text/plain body made of the reason phrase. */
void ifc_respond_simple(ifc_peer_t *p, int status);

/* Answers a request for /static/... with the file of the web root (200,
 * 304 for a matching If-None-Match, 404, 405 for other methods than GET
 * and HEAD). */
void ifc_respond_static(ifc_peer_t *p, const ifc_http_request_t *req);

/* Answers /healthz ("ok") and /metrics (Prometheus text of the counters,
 * and chat_interface_info{process="NAME"} 1 naming this process). */
void ifc_respond_health(ifc_peer_t *p);
void ifc_respond_metrics(ifc_peer_t *p);

/* The connection's send queue emptied: the next chunk of a file, or the
 * next request when the connection waits for nothing. */
void ifc_respond_written(ifc_peer_t *p);

/* Releases the HTTP side: the parser and an open file (an upgrade, or a
 * connection that is gone). */
void ifc_respond_clear(ifc_peer_t *p);

#endif
