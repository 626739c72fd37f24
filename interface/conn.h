/*
 * interface/conn.h: the connection layer of bin/chat-interface: one TCP
 * socket per client with its input, its send queue, its timer and its
 * close, and nothing of what travels on it (HTTP, WebSocket and the
 * workers are the layers above: peer.h).
 *
 * The layer above embeds an ifc_conn_t first in its own struct, accepts
 * into it with ifc_conn_accept, and hears back through four hooks:
 *   input    bytes arrived: it returns how many it used; the rest is kept,
 *            and reading stops until ifc_conn_resume;
 *   written  a write completed and the send queue is empty (not called
 *            while the connection is finishing: that is this layer's);
 *   closing  the connection is closing: it has left the table, its handles
 *            are being closed; nothing can be written any more;
 *   freed    its last handle is closed: the owner frees its struct.
 * Input comes from reads and from ifc_conn_resume, closing from
 * ifc_conn_close (whoever calls it), the others from libuv callbacks.
 *
 * Input is read into one buffer shared by every connection (64 KiB) and
 * handed to the input hook from there; only bytes the hook did not use are
 * copied, per connection, so a client cannot make the server buffer
 * without bound: reading stops until they are used.
 *
 * Output goes out of shared, reference-counted buffers (ifc_buf_t), so that
 * one frame written to many sockets exists once. A connection that corks
 * (WebSockets do) gathers what one loop turn writes to it while nothing is
 * queued, and writes it with one write(2) at the end of the turn: the group
 * messages of one pop from Redis, say. Any other write first writes what is
 * corked, so order is kept. ifc_conn_write queues without limit (HTTP
 * stops reading instead); ifc_conn_write_within refuses what would pass a
 * bound (a WebSocket's slow reader).
 *
 * Closing: ifc_conn_close closes at once. ifc_conn_finish writes out the
 * queue, sends the FIN and reads and discards until the peer closes too,
 * all within 2 s: closing a socket with unread input makes the kernel send
 * a reset, which would destroy the last bytes (a close frame, a response)
 * before the peer read them.
 *
 * Ownership: the hub (ifc_conns_t, one per server) keeps every open
 * connection in a table by id; callbacks that outlive a connection carry
 * its id, looked up with ifc_conns_find, never a pointer. Each connection
 * embeds its uv handle and is freed by its owner in the freed hook, never
 * under a running callback. The connections' timers share the hub's.
 */
#ifndef MC_INTERFACE_CONN_H
#define MC_INTERFACE_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/table.h"
#include "interface/ip.h"

#define IFC_CONN_READ_BUF (64 * 1024)
#define IFC_CONN_CORK_MAX 4 /* frames a connection gathers before one write(2) */
#define IFC_CONN_CLOSE_GRACE_MS 2000

/* A shared byte buffer: whoever keeps it holds a reference. */
typedef struct ifc_buf {
    int refs;
    size_t len;
    uint8_t data[];
} ifc_buf_t;

/* A buffer of len bytes with one reference, or NULL. */
ifc_buf_t *ifc_buf_new(size_t len);

/* Drops a reference; the last one frees. NULL does nothing. */
void ifc_buf_unref(ifc_buf_t *b);

typedef struct ifc_conn ifc_conn_t;
typedef struct ifc_conns ifc_conns_t;
typedef void (*ifc_conn_timer_cb)(ifc_conn_t *c);

typedef struct ifc_conn_hooks {
    size_t (*input)(ifc_conn_t *c, const uint8_t *data, size_t len);
    void (*written)(ifc_conn_t *c);
    void (*closing)(ifc_conn_t *c);
    void (*freed)(ifc_conn_t *c);
} ifc_conn_hooks_t;

/* What the layer counts; the caller owns the struct (its metrics). */
typedef struct ifc_conn_counts {
    uint64_t open, accepted; /* sockets open now, and accepted in all */
    uint64_t bytes_in, bytes_out;
} ifc_conn_counts_t;

struct ifc_conn {
    /* read-only */
    uint64_t id;
    ifc_conns_t *hub;
    ifc_conn_t *next;        /* in the hub's list of open connections */
    ifc_ip_t peer;           /* the peer's address */
    size_t queued;           /* bytes handed to uv_write, not yet written */
    ifc_conn_timer_cb timer; /* what the running timer calls, or NULL */
    unsigned closing : 1;    /* ifc_conn_close ran: nothing more happens */
    unsigned finishing : 1;  /* ifc_conn_finish ran: nothing more is queued */
    /* set by the layer above */
    unsigned corks : 1; /* writes of a loop turn go out together (see above) */
    unsigned held : 1;  /* a request is being answered: kept input waits */
    /* private */
    unsigned reading : 1, shut : 1, in_input : 1, corked_in : 1;
    int handles;
    mc_table_link_t in_table; /* by id */
    ifc_conn_t *prev;
    ifc_conn_t *corked_next;
    uint8_t *kept; /* input the hook did not use yet */
    size_t kept_len;
    ifc_buf_t *cork[IFC_CONN_CORK_MAX];
    unsigned ncork;
    uint32_t timer_at; /* its place in the hub's timer heap, + 1; 0: no timer runs */
    uint64_t due;      /* loop time the timer fires at */
    uv_tcp_t tcp;
};

/* The connections of one server. All fields are private. */
struct ifc_conns {
    uv_loop_t *loop;
    ifc_conn_hooks_t hooks;
    ifc_conn_counts_t *counts;
    uint64_t next_id;
    mc_table_t table; /* id -> connection */
    ifc_conn_t *list;
    ifc_conn_t *corked;   /* connections with corked frames */
    uv_check_t check;     /* after each loop turn: writes corked frames */
    uv_prepare_t prepare; /* before the loop waits: the same, for frames timers corked */
    /* The connections' timers: a binary heap by due time under one libuv
     * timer, rather than a libuv timer in each connection (152 bytes). */
    ifc_conn_t **timers;
    size_t ntimers, timers_cap;
    uv_timer_t timer;
    int handles;
    void (*closed)(ifc_conns_t *hub);
    uint8_t rbuf[IFC_CONN_READ_BUF];
};

/* Prepares the hub on loop; hooks are copied, counts is kept and updated.
 * Returns 0 (the hub holds three uv handles until ifc_conns_close). */
int ifc_conns_init(ifc_conns_t *hub, uv_loop_t *loop, const ifc_conn_hooks_t *hooks,
                   ifc_conn_counts_t *counts);

/* Closes every connection at once and the hub's handles; closed runs once
 * those are closed (the connections' freed hooks run on their own). */
void ifc_conns_close(ifc_conns_t *hub, void (*closed)(ifc_conns_t *hub));

/* The open connection with this id, or NULL (closing ones have left). */
ifc_conn_t *ifc_conns_find(const ifc_conns_t *hub, uint64_t id);

/* The first open connection (then ->next), and how many are open. */
ifc_conn_t *ifc_conns_first(const ifc_conns_t *hub);
size_t ifc_conns_count(const ifc_conns_t *hub);

/* Accepts a pending connection of listener into c, which the caller has
 * zeroed, gives it an id and starts reading. Returns 0; or an error, and
 * then c is closing already: its freed hook runs later (its closing hook
 * does not). */
int ifc_conn_accept(ifc_conns_t *hub, ifc_conn_t *c, uv_stream_t *listener);

/* Queues b (takes a reference) without limit. Returns 0, MC_ECLOSED
 * (closing: dropped), or MC_ENOMEM / MC_EIO (the connection is closed). */
int ifc_conn_write(ifc_conn_t *c, ifc_buf_t *b);

/* The same, unless the connection is finishing (MC_ECLOSED) or something
 * is queued and b would take the queue past bound bytes: then nothing is
 * queued and it returns MC_EFULL. */
int ifc_conn_write_within(ifc_conn_t *c, ifc_buf_t *b, size_t bound);

/* ifc_conn_write of a copy of data[0..len). */
int ifc_conn_write_copy(ifc_conn_t *c, const void *data, size_t len);

/* Starts the connection's one timer: cb runs after ms (at least 1), once,
 * unless the timer is started again or stopped first. */
void ifc_conn_timer_start(ifc_conn_t *c, long ms, ifc_conn_timer_cb cb);
void ifc_conn_timer_stop(ifc_conn_t *c);

/* Hands the kept input to the input hook again; once all of it is used
 * and no request is held, reading starts again. */
void ifc_conn_resume(ifc_conn_t *c);

/* Closes gracefully (see above); a second call only lingers once the
 * queue is empty. */
void ifc_conn_finish(ifc_conn_t *c);

/* Closes at once: the closing hook runs now, the freed hook later. A
 * second call does nothing. */
void ifc_conn_close(ifc_conn_t *c);

#endif
