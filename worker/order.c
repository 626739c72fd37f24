/*
 * worker/order.c: the rooms' order locks of worker/order.h, as fcntl(2)
 * locks on one byte per room.
 */
#include "worker/order.h"
#include "common/error.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int wrk_order_open(wrk_order_t *order, const char *db_path)
{
    order->fd = -1;
    if (strcmp(db_path, ":memory:") == 0)
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
    if (order->fd >= 0)
        close(order->fd);
    order->fd = -1;
}

/* Sets byte <room> to type (F_WRLCK, F_UNLCK), waiting when wait is set.
 * Returns 0, or MC_EAGAIN when wait is 0 and another worker holds it. */
static int set_range(wrk_order_t *order, int64_t room, short type, int wait)
{
    if (order->fd < 0 || room < 0)
        return 0;
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = (off_t)room, .l_len = 1};
    while (fcntl(order->fd, wait && type != F_UNLCK ? F_OFD_SETLKW : F_OFD_SETLK, &fl) != 0) {
        if (!wait && (errno == EAGAIN || errno == EACCES))
            return MC_EAGAIN;
        if (errno != EINTR) {
            mc_warn("worker: order lock of room %" PRId64 ": %s", room, strerror(errno));
            return 0;
        }
    }
    return 0;
}

int wrk_order_lock(wrk_order_t *order, int64_t room)
{
    return set_range(order, room, F_WRLCK, 1);
}

int wrk_order_try_lock(wrk_order_t *order, int64_t room)
{
    return set_range(order, room, F_WRLCK, 0);
}

void wrk_order_unlock(wrk_order_t *order, int64_t room)
{
    set_range(order, room, F_UNLCK, 0);
}
