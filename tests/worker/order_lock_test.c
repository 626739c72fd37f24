/* The order locks of workers that share a database: one per room, so that
 * rooms never wait on each other, released when their holder lets go. */
#include "common/error.h"
#include "worker/app.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

static char dir[64], db[128], lockfile[160];

static int sink_send(void *ctx, const char *channel, const char *data, size_t len)
{
    (void)ctx, (void)channel, (void)data, (void)len;
    return 0;
}

static int sink_group(void *ctx, const char *group, const char *channel)
{
    (void)ctx, (void)group, (void)channel;
    return 0;
}

static int sink_group_send(void *ctx, const wrk_outgoing_t *msgs, size_t n)
{
    (void)ctx, (void)msgs, (void)n;
    return 0;
}

static void open_worker(wrk_app_t *app)
{
    wrk_settings_t cfg;
    wrk_settings_defaults(&cfg);
    cfg.argon2_m = 8; /* hashing is not what this tests */
    wrk_sink_t sink = {.send = sink_send,
                       .group_add = sink_group,
                       .group_discard = sink_group,
                       .group_send = sink_group_send};
    assert_int_equal(wrk_app_init(app, &cfg, db, &sink), 0);
}

/* What a third party sees of byte <room> of the lock file. */
static short lock_state(int64_t room)
{
    int fd = open(lockfile, O_RDWR);
    assert_true(fd >= 0);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = room, .l_len = 1};
    assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
    close(fd);
    return fl.l_type;
}

static void rooms_are_locked_one_by_one(void **state)
{
    (void)state;
    wrk_app_t a, b;
    open_worker(&a);
    open_worker(&b);

    wrk_port_order_lock(&a.port, 1);
    assert_int_equal(lock_state(1), F_WRLCK);
    assert_int_equal(lock_state(2), F_UNLCK);

    /* Another worker takes room 2 while room 1 is held: were the lock one
     * for the whole database, this call would never return. */
    wrk_port_order_lock(&b.port, 2);
    assert_int_equal(lock_state(2), F_WRLCK);

    wrk_port_order_unlock(&a.port, 1);
    assert_int_equal(lock_state(1), F_UNLCK);
    wrk_port_order_unlock(&b.port, 2);
    assert_int_equal(lock_state(2), F_UNLCK);

    /* A worker that goes away holding a room's lock releases it. */
    wrk_port_order_lock(&b.port, 3);
    assert_int_equal(lock_state(3), F_WRLCK);
    wrk_app_close(&b);
    assert_int_equal(lock_state(3), F_UNLCK);
    wrk_app_close(&a);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/mc-order-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(db, sizeof(db), "%s/chat.sqlite3", dir);
    snprintf(lockfile, sizeof(lockfile), "%s-order.lock", db);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rooms_are_locked_one_by_one),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
