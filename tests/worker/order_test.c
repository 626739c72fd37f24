/* The order locks of workers that share a database: one per room, so that
 * rooms never wait on each other, released when their holder lets go. */
#include "common/error.h"
#include "worker/order.h"

#include <fcntl.h>
#include <pthread.h>
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

    /* Another worker takes room 2 while room 1 is held: were the lock one
     * for the whole database, this call would never return. */
    assert_int_equal(wrk_order_lock(&b, 2), 0);
    assert_int_equal(lock_state(2), F_WRLCK);

    wrk_order_unlock(&a, 1);
    assert_int_equal(lock_state(1), F_UNLCK);
    assert_int_equal(wrk_order_lock(&b, 1), 0); /* granted at once */
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

/* Several rooms at once, in any order, repeats allowed. */
static void rooms_are_locked_together(void **state)
{
    (void)state;
    wrk_order_t a;
    assert_int_equal(wrk_order_open(&a, NULL, db), 0);
    int64_t rooms[] = {9, 4, 9, 6};
    assert_int_equal(wrk_order_lock_rooms(&a, rooms, 4), 0);
    assert_int_equal(lock_state(4), F_WRLCK);
    assert_int_equal(lock_state(5), F_UNLCK);
    assert_int_equal(lock_state(6), F_WRLCK);
    assert_int_equal(lock_state(9), F_WRLCK);
    wrk_order_unlock_all(&a);
    assert_int_equal(lock_state(9), F_UNLCK);
    wrk_order_close(&a);
}

/* Workers that each take the same rooms, named in opposite orders, take
 * turns: never each holding one and waiting for the other's. */
typedef struct taker {
    const int64_t *rooms;
    int rounds;
} taker_t;

static void *take_turns(void *arg)
{
    taker_t *t = arg;
    wrk_order_t o;
    if (wrk_order_open(&o, NULL, db))
        return NULL;
    for (int i = 0; i < t->rounds; i++) {
        wrk_order_lock_rooms(&o, t->rooms, 3);
        wrk_order_unlock_all(&o);
    }
    wrk_order_close(&o);
    return t;
}

static void workers_locking_the_same_rooms_never_wait_for_each_other(void **state)
{
    (void)state;
    int64_t up[] = {1, 2, 3}, down[] = {3, 2, 1};
    taker_t a = {up, 20000}, b = {down, 20000};
    alarm(60); /* a deadlock ends the test program */
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, take_turns, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, take_turns, &b), 0);
    void *ra, *rb;
    assert_int_equal(pthread_join(ta, &ra), 0);
    assert_int_equal(pthread_join(tb, &rb), 0);
    alarm(0);
    assert_ptr_equal(ra, &a);
    assert_ptr_equal(rb, &b);
}

/* One worker on a database in memory has nothing to share: no file. */
static void a_database_in_memory_has_no_lock_file(void **state)
{
    (void)state;
    wrk_order_t o;
    assert_int_equal(wrk_order_open(&o, NULL, ":memory:"), 0);
    int64_t rooms[] = {1, 1};
    assert_int_equal(wrk_order_lock(&o, 1), 0);
    assert_int_equal(wrk_order_lock_rooms(&o, rooms, 2), 0);
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
        cmocka_unit_test(rooms_are_locked_together),
        cmocka_unit_test(workers_locking_the_same_rooms_never_wait_for_each_other),
        cmocka_unit_test(a_database_in_memory_has_no_lock_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
