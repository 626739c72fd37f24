/*
 * worker/order.h: the rooms' order locks, shared by the workers of one
 * database.
 *
 * A room's lock is held by one worker at a time: storing a chat message of
 * the room and publishing it happen under it, and so do joining the room's
 * group and reading its history (worker/port.h says how the outbox keeps
 * it). So every interface gets a room's messages in the order of their ids,
 * and a socket that joins gets each message once. Other rooms are not held
 * up. Where the locks live follows the database:
 *  - PostgreSQL: advisory locks of the worker's store connection, held on
 *    the database server, so workers on every host take turns. A worker
 *    that dies loses them with its connection; one that stops answering
 *    loses them when the server ends its idle connection
 *    (wrk_store_options_t.idle_timeout_ms), and its batch, never
 *    committed, is redone by the worker that takes over its envelopes.
 *  - sqlite: an open-file-description lock (fcntl(2)) on byte N of the file
 *    <db>-order.lock for room N, beside the database that only the workers
 *    of its host reach; the kernel drops the locks of a worker that dies.
 */
#ifndef MC_WORKER_ORDER_H
#define MC_WORKER_ORDER_H

#include <stdint.h>

#include "worker/store.h"

typedef struct wrk_order {
    int fd;             /* private: the lock file, -1 for none */
    wrk_store_t *store; /* private: the store that holds the locks, or NULL */
} wrk_order_t;

/* Opens the order locks of the database at db_path, whose connection is
 * store (borrowed; it outlives the locks; NULL: a sqlite file's locks).
 * ":memory:" (one worker, nothing to share) has none and every lock is
 * granted at once. Returns 0 or MC_EIO (the lock file cannot be opened;
 * logged). */
int wrk_order_open(wrk_order_t *order, wrk_store_t *store, const char *db_path);
/* Closes the file, releasing every lock held. Safe to call twice. */
void wrk_order_close(wrk_order_t *order);

/* Takes room's lock, waiting for it. Returns 0. A failing lock (which no
 * holder causes: the database is away) is logged and counts as taken:
 * order suffers, not the chat. */
int wrk_order_lock(wrk_order_t *order, int64_t room);
/* Takes the locks of rooms[0..n) (at most WRK_STORE_LOCK_ROOMS_MAX, in any
 * order, repeats allowed), waiting for each, as wrk_order_lock: in
 * increasing order, as every worker takes several, so that two workers
 * never wait for each other. Take them holding none. */
int wrk_order_lock_rooms(wrk_order_t *order, const int64_t *rooms, size_t n);
void wrk_order_unlock(wrk_order_t *order, int64_t room);
/* Releases every lock this worker holds, in one step. */
void wrk_order_unlock_all(wrk_order_t *order);

#endif
