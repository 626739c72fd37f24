/* Tests of interface/limit.c: token buckets on a clock the test moves, and
 * the table of client addresses with its open connections and rates. */
#include "interface/limit.h"
#include "common/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void a_bucket_gives_its_burst_then_its_rate(void **state)
{
    (void)state;
    ifc_bucket_t b = {0};
    uint32_t now = 1000;
    for (int i = 0; i < 5; i++)
        assert_true(ifc_bucket_take(&b, now, 10, 5, 1));
    assert_false(ifc_bucket_take(&b, now, 10, 5, 1));
    /* 10 a second: one more every 100 ms, not before. */
    assert_false(ifc_bucket_take(&b, now + 99, 10, 5, 1));
    assert_true(ifc_bucket_take(&b, now + 100, 10, 5, 1));
    assert_false(ifc_bucket_take(&b, now + 100, 10, 5, 1));
    /* Takes every 30 ms at 10 a second still gain a token each 100 ms: no
     * time is lost to rounding. */
    int got = 0;
    for (uint32_t t = now + 130; t <= now + 1130; t += 30) /* to now + 1120 */
        got += ifc_bucket_take(&b, t, 10, 5, 1);
    assert_int_equal(got, 10);
    /* Never more than the burst, however long it rests. */
    now += 100000;
    for (int i = 0; i < 5; i++)
        assert_true(ifc_bucket_take(&b, now, 10, 5, 1));
    assert_false(ifc_bucket_take(&b, now, 10, 5, 1));
    /* Costs above one, and above the burst. */
    ifc_bucket_t bytes = {0};
    assert_true(ifc_bucket_take(&bytes, 0, 1000, 4000, 3000));
    assert_false(ifc_bucket_take(&bytes, 0, 1000, 4000, 1001));
    assert_true(ifc_bucket_take(&bytes, 1, 1000, 4000, 1001));
    assert_false(ifc_bucket_take(&bytes, 100000, 1000, 4000, 4001));
    /* Rate 0 is no limit. */
    ifc_bucket_t off = {0};
    for (int i = 0; i < 1000; i++)
        assert_true(ifc_bucket_take(&off, 0, 0, 1, 1000000));
}

static void a_charge_puts_a_bucket_in_debt_up_to_its_cap(void **state)
{
    (void)state;
    ifc_bucket_t b = {0};
    /* 1000 a second, bursts of 4000, debt up to 5000 taken. */
    ifc_bucket_charge(&b, 0, 1000, 5000, 3000);
    assert_true(ifc_bucket_take(&b, 0, 1000, 4000, 1000));
    ifc_bucket_charge(&b, 0, 1000, 5000, 100000); /* forgiven past the cap */
    /* A second of debt to pay back before one more token. */
    assert_false(ifc_bucket_take(&b, 0, 1000, 4000, 1));
    assert_false(ifc_bucket_take(&b, 1000, 1000, 4000, 1));
    assert_true(ifc_bucket_take(&b, 1001, 1000, 4000, 1));
    /* Rate 0: no limit, nothing charged. */
    ifc_bucket_t off = {0};
    ifc_bucket_charge(&off, 0, 0, 5000, 3000);
    assert_int_equal(off.used, 0);
}

static void a_penalty_is_remembered_for_its_time(void **state)
{
    (void)state;
    ifc_addrs_t t;
    ifc_addrs_init(&t, 2, 10, 5, 1000);
    ifc_ip_t ip;
    assert_int_equal(ifc_ip_parse("192.0.2.7", 9, &ip), 0);
    ifc_addr_t *a;
    uint32_t in_row;
    assert_int_equal(ifc_addrs_admit(&t, &ip, 0, 1, &a, &in_row), 0);
    assert_false(ifc_addrs_penalized(&t, a, 0));
    ifc_addrs_penalize(&t, a, 100);
    ifc_addrs_release(&t, a);
    /* Not forgotten while the penalty lasts, though nothing else is held. */
    ifc_addrs_sweep(&t, 1099);
    assert_int_equal(ifc_addrs_count(&t), 1);
    assert_true(ifc_addrs_penalized(&t, a, 1099));
    assert_false(ifc_addrs_penalized(&t, a, 1100));
    ifc_addrs_sweep(&t, 1100);
    assert_int_equal(ifc_addrs_count(&t), 0);
    assert_false(ifc_addrs_penalized(&t, NULL, 0));
    ifc_addrs_clear(&t);
}

static void a_bucket_survives_the_clock_wrapping(void **state)
{
    (void)state;
    ifc_bucket_t b = {0};
    uint32_t now = UINT32_MAX - 50;
    assert_true(ifc_bucket_take(&b, now, 10, 1, 1));
    assert_false(ifc_bucket_take(&b, now + 10, 10, 1, 1));
    assert_true(ifc_bucket_take(&b, now + 100, 10, 1, 1)); /* past the wrap */
    assert_true(ifc_bucket_full(&b, now + 200, 10));
    assert_false(ifc_bucket_full(&b, now + 150, 10));
}

static ifc_ip_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    ifc_ip_t out = {.family = 4, .bytes = {a, b, c, d}};
    return out;
}

static void addresses_are_limited_one_by_one(void **state)
{
    (void)state;
    ifc_addrs_t t;
    ifc_addrs_init(&t, 3, 10, 5, 0);
    ifc_ip_t a = ip4(192, 0, 2, 1), b = ip4(192, 0, 2, 2);
    ifc_addr_t *held[4];
    uint32_t in_row;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ifc_addrs_admit(&t, &a, 0, 1, &held[i], &in_row), 0);
        assert_non_null(held[i]);
    }
    /* The fourth open connection is refused; another address is not. */
    assert_int_equal(ifc_addrs_admit(&t, &a, 0, 1, &held[3], &in_row), IFC_ADDR_TOO_MANY_OPEN);
    assert_null(held[3]);
    assert_int_equal(in_row, 1);
    assert_int_equal(ifc_addrs_admit(&t, &a, 0, 1, &held[3], &in_row), IFC_ADDR_TOO_MANY_OPEN);
    assert_int_equal(in_row, 2);
    ifc_addr_t *hb;
    assert_int_equal(ifc_addrs_admit(&t, &b, 0, 1, &hb, &in_row), 0);
    /* One closes: room for one more. */
    ifc_addrs_release(&t, held[0]);
    assert_int_equal(ifc_addrs_admit(&t, &a, 0, 1, &held[0], &in_row), 0);
    /* a has used its burst of 5 (4 admitted, 2 refused took nothing): one
     * more request without a place, then too fast. */
    assert_int_equal(ifc_addrs_admit(&t, &a, 0, 0, &held[3], &in_row), 0);
    assert_null(held[3]);
    assert_int_equal(ifc_addrs_admit(&t, &a, 0, 0, &held[3], &in_row), IFC_ADDR_TOO_FAST);
    assert_int_equal(ifc_addrs_admit(&t, &a, 100, 0, &held[3], &in_row), 0);
    for (int i = 0; i < 3; i++)
        ifc_addrs_release(&t, held[i]);
    ifc_addrs_release(&t, hb);
    ifc_addrs_release(&t, NULL);
    ifc_addrs_clear(&t);
}

static void idle_addresses_are_forgotten(void **state)
{
    (void)state;
    ifc_addrs_t t;
    ifc_addrs_init(&t, 2, 10, 5, 0);
    ifc_addr_t *held, *other;
    uint32_t in_row;
    for (uint8_t i = 0; i < 200; i++) {
        ifc_ip_t a = ip4(10, 0, 0, i);
        assert_int_equal(ifc_addrs_admit(&t, &a, 0, 0, &other, &in_row), 0);
    }
    ifc_ip_t kept = ip4(10, 1, 1, 1);
    assert_int_equal(ifc_addrs_admit(&t, &kept, 0, 1, &held, &in_row), 0);
    assert_int_equal(ifc_addrs_count(&t), 201);
    /* Not yet refilled: all remembered. */
    ifc_addrs_sweep(&t, 50);
    assert_int_equal(ifc_addrs_count(&t), 201);
    /* Refilled: only the one holding a connection stays. */
    ifc_addrs_sweep(&t, 1000);
    assert_int_equal(ifc_addrs_count(&t), 1);
    ifc_addrs_release(&t, held);
    ifc_addrs_sweep(&t, 2000);
    assert_int_equal(ifc_addrs_count(&t), 0);
    ifc_addrs_clear(&t);
}

static void an_ipv6_64_is_one_client(void **state)
{
    (void)state;
    ifc_addrs_t t;
    ifc_addrs_init(&t, 2, 0, 1, 0);
    ifc_addr_t *h[3];
    uint32_t in_row;
    ifc_ip_t a = {.family = 6,
                  .bytes = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}};
    ifc_ip_t b = a, c = a;
    b.bytes[15] = 2;
    c.bytes[7] = 2; /* another /64 */
    assert_int_equal(ifc_addrs_admit(&t, &a, 0, 1, &h[0], &in_row), 0);
    assert_int_equal(ifc_addrs_admit(&t, &b, 0, 1, &h[1], &in_row), 0);
    assert_int_equal(ifc_addrs_admit(&t, &b, 0, 1, &h[2], &in_row), IFC_ADDR_TOO_MANY_OPEN);
    assert_int_equal(ifc_addrs_admit(&t, &c, 0, 1, &h[2], &in_row), 0);
    ifc_addrs_clear(&t);
}

static void limits_that_are_off_count_nothing(void **state)
{
    (void)state;
    ifc_addrs_t t;
    ifc_addrs_init(&t, 0, 0, 1, 0);
    ifc_ip_t a = ip4(192, 0, 2, 1);
    ifc_addr_t *h;
    uint32_t in_row;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(ifc_addrs_admit(&t, &a, 0, 1, &h, &in_row), 0);
        assert_null(h);
    }
    assert_int_equal(ifc_addrs_count(&t), 0);
    ifc_addrs_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_bucket_gives_its_burst_then_its_rate),
        cmocka_unit_test(a_charge_puts_a_bucket_in_debt_up_to_its_cap),
        cmocka_unit_test(a_penalty_is_remembered_for_its_time),
        cmocka_unit_test(a_bucket_survives_the_clock_wrapping),
        cmocka_unit_test(addresses_are_limited_one_by_one),
        cmocka_unit_test(idle_addresses_are_forgotten),
        cmocka_unit_test(an_ipv6_64_is_one_client),
        cmocka_unit_test(limits_that_are_off_count_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
