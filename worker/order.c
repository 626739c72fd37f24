/*
 * worker/order.c: the rooms' order locks of worker/order.h: the store's
 * (PostgreSQL), or fcntl(2) locks on one byte per room (sqlite).
 */
#include "worker/order.h"
#include "common/error.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int wrk_order_open(wrk_order_t *order, wrk_store_t *store, const char *db_path)
{
    order->fd = -1;
    order->store = store && wrk_store_has_order_locks(store) ? store : NULL;
    if (order->store || strcmp(db_path, ":memory:") == 0)
        return 0;
    char lock[4096];
    if (snprintf(lock, sizeof(lock), "%s-order.lock", db_path) >= (int)sizeof(lock) ||
        (order->fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        mc_error("worker: cannot open the order lock %s: %s", lock, strerror(errno));
        return MC_EIO;
    }
    return 0;
}

void wrk_order_close(wrk_order_t *order)
{
    if (order->store)
        wrk_order_unlock_all(order);
    order->store = NULL;
    if (order->fd >= 0)
        close(order->fd);
    order->fd = -1;
}

/* Sets bytes [start, start + len) to type (F_WRLCK, F_UNLCK; len 0: to the
 * end), waiting when wait is set. Returns 0, or MC_EAGAIN when wait is 0
 * and another worker holds it. */
static int set_range(wrk_order_t *order, int64_t start, off_t len, short type, int wait)
{
    if (order->fd < 0 || start < 0)
        return 0;
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = (off_t)start, .l_len = len};
    while (fcntl(order->fd, wait && type != F_UNLCK ? F_OFD_SETLKW : F_OFD_SETLK, &fl) != 0) {
        if (!wait && (errno == EAGAIN || errno == EACCES))
            return MC_EAGAIN;
        if (errno != EINTR) {
            mc_warn("worker: order lock of room %" PRId64 ": %s", start, strerror(errno));
            return 0;
        }
    }
    return 0;
}

/* The store's lock call rc for room, as the functions above report it. */
static int by_store(wrk_order_t *order, int64_t room, int rc)
{
    if (rc && rc != MC_EAGAIN)
        mc_warn("worker: order lock of room %" PRId64 ": %s", room, wrk_store_errmsg(order->store));
    return rc == MC_EAGAIN ? rc : 0;
}

int wrk_order_lock(wrk_order_t *order, int64_t room)
{
    return wrk_order_lock_rooms(order, &room, 1);
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int wrk_order_lock_rooms(wrk_order_t *order, const int64_t *rooms, size_t n)
{
    if (order->store)
        return by_store(order, n == 1 ? rooms[0] : 0,
                        wrk_store_order_lock_rooms(order->store, rooms, n));
    if (order->fd < 0 || n == 0)
        return 0;
    int64_t sorted[WRK_STORE_LOCK_ROOMS_MAX];
    if (n > WRK_STORE_LOCK_ROOMS_MAX)
        n = WRK_STORE_LOCK_ROOMS_MAX; /* a bug of the caller: order suffers */
    memcpy(sorted, rooms, n * sizeof(*rooms));
    qsort(sorted, n, sizeof(*sorted), by_value);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || sorted[i] != sorted[i - 1])
            set_range(order, sorted[i], 1, F_WRLCK, 1);
    return 0;
}

void wrk_order_unlock(wrk_order_t *order, int64_t room)
{
    if (order->store)
        by_store(order, room, wrk_store_order_unlock(order->store, room));
    else
        set_range(order, room, 1, F_UNLCK, 0);
}

void wrk_order_unlock_all(wrk_order_t *order)
{
    if (order->store)
        by_store(order, 0, wrk_store_order_unlock_all(order->store));
    else
        set_range(order, 0, 0, F_UNLCK, 0);
}
