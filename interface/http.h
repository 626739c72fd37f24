/*
 * interface/http.h: HTTP/1.x requests parsed over llhttp, and responses
 * written.
 *
 * One ifc_http_parser_t per connection. The caller feeds it the bytes it
 * reads, in pieces of any size; the parser copies what it needs (request
 * line, headers, body) into one buffer of its own and stops after each
 * complete request, so pipelined requests come out one at a time and the
 * caller answers them in order: take the request, answer it, call
 * ifc_http_next, feed the rest. The request's pointers stay valid until
 * ifc_http_next.
 *
 * Limits, each with the status the server answers (the parser then stops
 * for good; the connection must be closed after the answer):
 *   request line and headers over 16 KiB (the raw bytes)    431
 *   the same with the trailer fields of a chunked body
 *   (their names and values, 4 bytes more each)              431
 *   a target (URL) over 8 KiB                                414
 *   a body over 1 MiB (Content-Length or chunked)            413
 *   an HTTP version other than 1.0 or 1.1                    505
 *   more than IFC_HTTP_MAX_HEADERS header lines              431
 *   anything llhttp rejects (malformed)                      400
 * Header names are lower-cased; values lose surrounding blanks. Trailer
 * fields are counted, then dropped: a request's headers are those of its
 * head.
 */
#ifndef MC_INTERFACE_HTTP_H
#define MC_INTERFACE_HTTP_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

#define IFC_HTTP_MAX_HEAD (16 * 1024)
#define IFC_HTTP_MAX_URL (8 * 1024)
#define IFC_HTTP_MAX_BODY (1024 * 1024)
#define IFC_HTTP_MAX_HEADERS 64

typedef struct ifc_http_header {
    const char *name; /* lower case, not NUL-terminated */
    size_t name_len;
    const char *value;
    size_t value_len;
} ifc_http_header_t;

typedef struct ifc_http_request {
    const char *method; /* "GET", static, NUL-terminated */
    const char *target; /* the raw request target: path and query */
    size_t target_len;
    const char *path; /* the target up to '?' (still percent-encoded) */
    size_t path_len;
    const char *query; /* after '?', "" when there is none */
    size_t query_len;
    int version_major, version_minor;
    ifc_http_header_t *headers; /* headers[0..nheaders) */
    size_t nheaders;
    const char *body;
    size_t body_len;
    int keep_alive; /* the connection may carry another request */
    int upgrade;    /* the client asked to switch protocols (Upgrade/CONNECT) */
} ifc_http_request_t;

typedef struct ifc_http_limits {
    size_t max_head, max_url, max_body;
} ifc_http_limits_t;

/* Span of the parser's buffer: an offset and a length. */
typedef struct ifc_http__span {
    uint32_t off, len;
} ifc_http__span_t;

/* All fields are private. */
typedef struct ifc_http_parser {
    llhttp_t llhttp;
    ifc_http_limits_t limits;
    char *buf; /* the current request's bytes */
    size_t len, cap;
    size_t head_bytes;    /* raw bytes of the current head so far */
    size_t head_size;     /* raw bytes of the head, once it is whole */
    size_t trailer_bytes; /* what trailer fields have cost so far */
    ifc_http__span_t url, body;
    /* Each header's name and value as spans of buf, and as the request
     * gives them: both heap, both as long as the request's headers need
     * (a parser lives in every connection that has not upgraded yet). */
    ifc_http__span_t (*fields)[2];
    ifc_http_header_t *headers;
    size_t nheaders, fields_cap;
    int in_field, in_body, ready, status, keep_alive, upgrade;
    ifc_http_request_t req;
} ifc_http_parser_t;

/* Fills *limits with the defaults above. */
void ifc_http_limits_default(ifc_http_limits_t *limits);

/* Prepares a parser; limits may be NULL for the defaults. */
void ifc_http_parser_init(ifc_http_parser_t *p, const ifc_http_limits_t *limits);

/* Releases the parser's buffer. The struct may be reused after init. */
void ifc_http_parser_clear(ifc_http_parser_t *p);

#define IFC_HTTP_NEED_MORE 0
#define IFC_HTTP_REQUEST 1

/*
 * Parses data[0..len) and stores in *used how many bytes were consumed.
 * Returns IFC_HTTP_REQUEST when a whole request is ready (ifc_http_request;
 * the bytes after *used belong to the next request, to be fed after
 * ifc_http_next); IFC_HTTP_NEED_MORE when every byte was consumed; MC_EPROTO
 * or MC_ETOOBIG when the request must be refused with ifc_http_status(p);
 * MC_ENOMEM. While a request is ready, further calls consume nothing and
 * return IFC_HTTP_REQUEST again.
 */
int ifc_http_feed(ifc_http_parser_t *p, const void *data, size_t len, size_t *used);

/* The ready request, or NULL. Valid until ifc_http_next. */
const ifc_http_request_t *ifc_http_request(const ifc_http_parser_t *p);

/* Drops the ready request and prepares for the next one on the connection
 * (its buffer is freed, so an idle keep-alive connection holds none). */
void ifc_http_next(ifc_http_parser_t *p);

/* 1 when bytes of an unfinished request have been fed, else 0. */
int ifc_http_in_progress(const ifc_http_parser_t *p);

/* The status to answer after an error (400, 413, 414, 431, 505), else 0. */
int ifc_http_status(const ifc_http_parser_t *p);

/* Returns the first header named name (lower case) and its length in
 * *len, or NULL. */
const char *ifc_http_header(const ifc_http_request_t *req, const char *name, size_t *len);

/* 1 when some header named name holds token among its comma-separated
 * values (case-insensitive), else 0. */
int ifc_http_header_has_token(const ifc_http_request_t *req, const char *name, const char *token);

/* The reason phrase of a status ("Not Found"), "Unknown" if we have none. */
const char *ifc_http_reason(int status);

/* Writes an RFC 7231 date ("Sun, 06 Nov 1994 08:49:37 GMT") into out. */
void ifc_http_date(long long unix_seconds, char out[30]);

/*
 * Writes a response head into buf: the status line, the headers given,
 * "content-length" (unless content_length is negative), "connection: close"
 * when !keep_alive, and the blank line. Names and values must not contain
 * CR, LF or NUL. Returns 0 with *out_len, MC_EINVAL for such a header,
 * MC_ETOOBIG when buf is too small.
 */
int ifc_http_response_head(char *buf, size_t size, int status, const ifc_http_header_t *headers,
                           size_t nheaders, long long content_length, int keep_alive,
                           size_t *out_len);

/* Writes a complete small response with a text/plain body made of the
 * reason phrase. Returns as ifc_http_response_head. */
int ifc_http_simple_response(char *buf, size_t size, int status, int keep_alive, size_t *out_len);

#endif
