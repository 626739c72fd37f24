/* The order locks of workers that share a database: one per room, so that
 * rooms never wait on each other, released when their holder lets go. */
#include "common/error.h"
#include "worker/order.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

static char dir[64], db[128], lockfile[160];

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
    wrk_order_t a, b; /* two workers of one database */
    assert_int_equal(wrk_order_open(&a, NULL, db), 0);
    assert_int_equal(wrk_order_open(&b, NULL, db), 0);

    assert_int_equal(wrk_order_lock(&a, 1), 0);
    assert_int_equal(lock_state(1), F_WRLCK);
    assert_int_equal(lock_state(2), F_UNLCK);
    assert_int_equal(wrk_order_try_lock(&b, 1), MC_EAGAIN);

    /* Another worker takes room 2 while room 1 is held: were the lock one
     * for the whole database, this call would never return. */
    assert_int_equal(wrk_order_lock(&b, 2), 0);
    assert_int_equal(lock_state(2), F_WRLCK);

    wrk_order_unlock(&a, 1);
    assert_int_equal(lock_state(1), F_UNLCK);
    assert_int_equal(wrk_order_try_lock(&b, 1), 0);
    wrk_order_unlock(&b, 1);
    wrk_order_unlock(&b, 2);
    assert_int_equal(lock_state(2), F_UNLCK);

    /* A worker that goes away holding a room's lock releases it. */
    assert_int_equal(wrk_order_lock(&b, 3), 0);
    assert_int_equal(lock_state(3), F_WRLCK);
    wrk_order_close(&b);
    assert_int_equal(lock_state(3), F_UNLCK);
    wrk_order_close(&a);
    wrk_order_close(&a); /* twice is harmless */
}

/* The outbox lets go of all its rooms at once. */
static void every_room_is_released_in_one_step(void **state)
{
    (void)state;
    wrk_order_t a, b;
    assert_int_equal(wrk_order_open(&a, NULL, db), 0);
    assert_int_equal(wrk_order_open(&b, NULL, db), 0);
    assert_int_equal(wrk_order_lock(&a, 4), 0);
    assert_int_equal(wrk_order_lock(&a, 9), 0);
    assert_int_equal(wrk_order_lock(&b, 7), 0);
    wrk_order_unlock_all(&a);
    assert_int_equal(lock_state(4), F_UNLCK);
    assert_int_equal(lock_state(9), F_UNLCK);
    assert_int_equal(lock_state(7), F_WRLCK); /* another worker's */
    wrk_order_close(&a);
    wrk_order_close(&b);
}

/* One worker on a database in memory has nothing to share: no file. */
static void a_database_in_memory_has_no_lock_file(void **state)
{
    (void)state;
    wrk_order_t o;
    assert_int_equal(wrk_order_open(&o, NULL, ":memory:"), 0);
    assert_int_equal(wrk_order_lock(&o, 1), 0);
    assert_int_equal(wrk_order_try_lock(&o, 1), 0);
    wrk_order_close(&o);
    assert_int_equal(access(":memory:-order.lock", F_OK), -1);
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
        cmocka_unit_test(every_room_is_released_in_one_step),
        cmocka_unit_test(a_database_in_memory_has_no_lock_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
