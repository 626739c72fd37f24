/*
 * interface/limit.h: the counting behind the interface's limits on
 * clients: token buckets, and the table of client addresses with their
 * open connections and the rate of their new ones. No sockets here: the
 * server decides what is counted and what a refusal does (server.h).
 *
 * Everything is per process and on its loop: several interface processes
 * each count on their own. Times are the loop's milliseconds (uv_now) cut
 * to 32 bits; differences are taken modulo 2^32, so the wrap after 49 days
 * costs at most one refill.
 */
#ifndef MC_INTERFACE_LIMIT_H
#define MC_INTERFACE_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/table.h"
#include "interface/ip.h"

/* A token bucket that holds up to burst tokens and gains rate a second.
 * A zeroed bucket is full. */
typedef struct ifc_bucket {
    uint32_t used; /* tokens taken and not yet regained */
    uint32_t at;   /* when used was last brought up to date */
} ifc_bucket_t;

/* Takes cost tokens at time now when the bucket holds them: returns 1; or
 * 0 and takes none. rate 0 means no limit (always 1). A cost above burst
 * never passes. */
int ifc_bucket_take(ifc_bucket_t *b, uint32_t now, uint32_t rate, uint32_t burst, uint32_t cost);

/* Takes cost tokens at time now whether the bucket holds them or not: a
 * bucket may so go into debt, up to used == cap (what is past it is
 * forgiven), and takes nothing until the debt is paid back. rate 0 does
 * nothing. */
void ifc_bucket_charge(ifc_bucket_t *b, uint32_t now, uint32_t rate, uint32_t cap, uint32_t cost);

/* Whether the bucket is full again at time now (nothing to remember). */
int ifc_bucket_full(const ifc_bucket_t *b, uint32_t now, uint32_t rate);

/* One client address (by ifc_ip_limit_key: an IPv6 /64 is one client). */
typedef struct ifc_addr {
    ifc_ip_t key;
    uint32_t open;       /* connections that hold a place (ifc_addrs_admit) */
    uint32_t refused;    /* refusals since the last admission */
    uint32_t penalty_at; /* when one of its sockets was last closed for its rate */
    uint8_t penalized;   /* penalty_at is set */
    ifc_bucket_t opened; /* new connections and requests */
    mc_table_link_t in_table;
} ifc_addr_t;

/* The addresses seen lately. An address is forgotten once it holds no
 * connection and its bucket is full again. All fields are private. */
typedef struct ifc_addrs {
    mc_table_t table;
    uint32_t max_open, rate, burst; /* 0: that limit is off */
    uint32_t penalty_ms;            /* how long a penalty is remembered; 0: never */
} ifc_addrs_t;

/* An empty table with its limits: max_open connections open at once per
 * address, and new ones at rate a second with bursts of burst; a penalty
 * (ifc_addrs_penalize) lasts penalty_ms. */
void ifc_addrs_init(ifc_addrs_t *t, uint32_t max_open, uint32_t rate, uint32_t burst,
                    uint32_t penalty_ms);
void ifc_addrs_clear(ifc_addrs_t *t);

/* Why a client was refused. */
#define IFC_ADDR_TOO_MANY_OPEN 1
#define IFC_ADDR_TOO_FAST 2

/* A new connection (or a request through a proxy) from ip at time now:
 * takes a token of its address and, when hold is set, a place among its
 * open connections, which *held then names (for ifc_addrs_release; else
 * it is NULL). Returns 0; IFC_ADDR_TOO_MANY_OPEN or IFC_ADDR_TOO_FAST
 * (nothing taken; *in_row counts the address's refusals since it was last
 * admitted, this one included, so that a caller logs the first); or
 * MC_ENOMEM. With both limits off nothing is counted. */
int ifc_addrs_admit(ifc_addrs_t *t, const ifc_ip_t *ip, uint32_t now, int hold, ifc_addr_t **held,
                    uint32_t *in_row);

/* A connection that held a place is gone. NULL does nothing. */
void ifc_addrs_release(ifc_addrs_t *t, ifc_addr_t *a);

/* One of a's connections was closed at time now for going on over its
 * rate: remembered for penalty_ms (the address is not forgotten meanwhile).
 * NULL does nothing. */
void ifc_addrs_penalize(ifc_addrs_t *t, ifc_addr_t *a, uint32_t now);

/* Whether a (NULL: no) was penalized within penalty_ms of now. */
int ifc_addrs_penalized(const ifc_addrs_t *t, const ifc_addr_t *a, uint32_t now);

/* Forgets the addresses that have nothing to remember at time now. */
void ifc_addrs_sweep(ifc_addrs_t *t, uint32_t now);

/* How many addresses the table holds. */
size_t ifc_addrs_count(const ifc_addrs_t *t);

#endif
