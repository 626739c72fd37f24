/*
 * common/envelope.h: the JSON envelopes that interfaces and workers exchange
 * through the channel layer (DESIGN.md, "Channels and envelopes").
 *
 *   http.request         interface -> worker   reply, method, path, query, headers, body, client,
 *                                              scheme
 *   http.response        worker -> interface   status, headers, body
 *   websocket.connect    interface -> worker   reply, path, query, headers, client, scheme
 *   websocket.accept     worker -> interface   scope
 *   websocket.receive    interface -> worker   reply, scope, groups, text, id
 *   websocket.send       worker -> interface   text, except, own, done
 *   websocket.close      worker -> interface   code, reason, done
 *   websocket.disconnect interface -> worker   reply, scope, groups, code
 *
 * "done" marks the answer to a websocket.receive: a worker marks exactly
 * one envelope for each websocket.receive it handles, the first it sends
 * to that socket (or a group send naming the socket in "own"), or a
 * websocket.send with an empty text that carries the mark only (no frame
 * goes out for it). The interface counts each socket's envelopes still in
 * flight by it.
 *
 * On the wire every envelope is one JSON object whose "type" names it:
 *   {"type":"http.request","reply":"ifc.h.1.ab!7","method":"GET","path":"/",
 *    "query":"","headers":[["cookie","sessionid=..."]],"body":"","client":"127.0.0.1"}
 *   {"type":"websocket.receive","reply":"...","scope":{"user_id":1,"username":"ann",
 *    "is_staff":false},"groups":["room-1"],"text":"{\"command\":\"join\",\"room\":1}"}
 *
 * The body is bytes, (pointer, length): it may hold any byte, a NUL too
 * (\u0000 on the wire), and is never measured with strlen. Every other
 * string (channels, method, path, header names and values, groups) is
 * text without a NUL, as HTTP and the channel names allow no NUL in them.
 *
 * A decoded envelope points into memory that it owns: its strings are valid
 * until mc_envelope_clear. Header names are lower case.
 */
#ifndef MC_COMMON_ENVELOPE_H
#define MC_COMMON_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define MC_ENVELOPE_MAX_BYTES (2 * 1024 * 1024) /* a whole encoded envelope */
#define MC_ENVELOPE_MAX_HEADERS 64
#define MC_ENVELOPE_MAX_GROUPS 256
#define MC_USERNAME_MAX 150 /* bytes, as Django's username field */

typedef enum mc_envelope_type {
    MC_ENV_HTTP_REQUEST,
    MC_ENV_HTTP_RESPONSE,
    MC_ENV_WS_CONNECT,
    MC_ENV_WS_ACCEPT,
    MC_ENV_WS_RECEIVE,
    MC_ENV_WS_SEND,
    MC_ENV_WS_CLOSE,
    MC_ENV_WS_DISCONNECT,
} mc_envelope_type_t;

typedef struct mc_header {
    const char *name; /* lower case */
    const char *value;
} mc_header_t;

/* Who a WebSocket belongs to, as the worker accepted it. */
typedef struct mc_scope {
    int64_t user_id; /* 0: nobody (not logged in) */
    char username[MC_USERNAME_MAX + 1];
    int is_staff;
} mc_scope_t;

typedef struct mc_envelope {
    mc_envelope_type_t type;
    const char *reply;  /* requests: the connection's reply channel */
    const char *method; /* http.request */
    const char *path;   /* http.request, websocket.connect: decoded path */
    const char *query;  /* http.request, websocket.connect: raw query, "" if none */
    const char *client; /* requests: the client's address (behind trusted proxies, the one
                           they name) */
    const char *scheme; /* requests: "https" when the request came over TLS (directly or
                           through a trusted proxy), else "http" or "" (the same) */
    const char *reason; /* websocket.close: the close frame's reason (at most 123
                           bytes of UTF-8: the room a close frame has), "" for none */
    const char *except; /* websocket.send to a group: the one member channel to skip
                           (the sender, who gets its own copy), "" for none */
    const char *own;    /* websocket.send to a group: the one member channel whose copy
                           ends in ,"own":true (the sender's), "" for none; the text
                           must be a JSON object */
    const char *id;     /* websocket.receive: unique to this envelope (the interface's
                           process name and a counter, ending in what makes it unique),
                           so that a worker handling it again (a requeue) can tell;
                           "" or NULL when none */
    mc_header_t headers[MC_ENVELOPE_MAX_HEADERS];
    size_t nheaders;
    const char *body; /* http.request/response body, websocket.receive/send text: */
    size_t body_len;  /* body_len bytes, NULs included (decoded: a NUL follows them) */
    int status;       /* http.response */
    int code;         /* websocket.close, websocket.disconnect */
    int done;         /* websocket.send, websocket.close: answers a websocket.receive */
    int has_scope;    /* websocket.accept, receive, disconnect */
    mc_scope_t scope;
    const char *groups[MC_ENVELOPE_MAX_GROUPS]; /* receive, disconnect */
    size_t ngroups;
    void *arena; /* private: the decoded strings */
} mc_envelope_t;

/* Returns the wire name of a type ("http.request"). */
const char *mc_envelope_type_name(mc_envelope_type_t type);

/* Parses data[0..len) into *env (which need not be initialised). Returns 0;
 * MC_ETOOBIG when len exceeds MC_ENVELOPE_MAX_BYTES or a list its maximum;
 * MC_EINVAL when it is not one JSON object (RFC 8259), the type is unknown,
 * a field the type requires is missing, a field of the type has the wrong
 * JSON type, or a string other than the body holds a NUL; MC_ENOMEM. Keys
 * the type does not use are skipped; of a repeated key the first counts. On
 * error *env is cleared and owns nothing. */
int mc_envelope_decode(mc_envelope_t *env, const char *data, size_t len);

/* Releases what a decoded envelope owns and zeroes it. Safe to call twice. */
void mc_envelope_clear(mc_envelope_t *env);

/* Encodes *env (fields relevant to its type; NULL strings as "") into a
 * malloc'd NUL-terminated buffer the caller frees; the body is taken as
 * body_len bytes, whatever they hold. Returns 0, MC_ENOMEM, or MC_ETOOBIG
 * when the result would exceed MC_ENVELOPE_MAX_BYTES. */
int mc_envelope_encode(const mc_envelope_t *env, char **out, size_t *len);

/* The bytes s[0..n) takes as a JSON string in an encoded envelope, its
 * quotes and escapes included: what a text costs on its way to Redis. */
size_t mc_envelope_string_len(const char *s, size_t n);

/* Returns the value of header name (lower case) or NULL. */
const char *mc_envelope_header(const mc_envelope_t *env, const char *name);

#endif
