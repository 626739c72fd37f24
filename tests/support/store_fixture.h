/*
 * tests/support/store_fixture.h: a fresh store for each test, on each
 * backend in turn.
 *
 * ts_store_run_both runs a list of cmocka tests twice: on sqlite, each test
 * with a new file in a temporary folder; then on PostgreSQL, each test with
 * a new database on one private server for the whole program (a copy of a
 * migrated template, which takes a few hundredths of a second). Test names
 * are prefixed with the backend ("postgresql: users_are_listed").
 *
 * With TS_STORE_TEST(fn), *state is a ts_store_t: a migrated store holding
 * users ann (id ann) and bob (staff), and room Lobby (id room).
 */
#ifndef MC_TESTS_SUPPORT_STORE_FIXTURE_H
#define MC_TESTS_SUPPORT_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/support/postgres.h"
#include "worker/store.h"

typedef struct ts_store {
    char dir[64];     /* a temporary folder of the test's own */
    char target[192]; /* the store's file or database URL */
    wrk_store_t *s;
    int64_t ann, bob, room;
} ts_store_t;

int ts_store_setup(void **state);
int ts_store_teardown(void **state);

#define TS_STORE_TEST(fn)                                                                          \
    {                                                                                              \
        .name = #fn, .test_func = fn, .setup_func = ts_store_setup,                                \
        .teardown_func = ts_store_teardown                                                         \
    }

/* Runs tests[0..n) on sqlite, then on PostgreSQL. Returns the number of
 * failed tests (a server that does not start fails them all). */
int ts_store_run_both(const struct CMUnitTest *tests, size_t n);

/* Runs tests[0..n) on sqlite only. Returns the number of failed tests. */
int ts_store_run_sqlite(const struct CMUnitTest *tests, size_t n);

/* Runs tests[0..n) on PostgreSQL only (a server of their own). */
int ts_store_run_postgresql(const struct CMUnitTest *tests, size_t n);

/* Whether the tests run on PostgreSQL now. */
int ts_store_on_postgresql(void);

/* The server of the PostgreSQL run. */
const ts_pg_t *ts_store_server(void);

/* Writes into target[size] the target of a new database of the backend
 * under test: migrated (and empty), or without any table. */
void ts_store_fresh(ts_store_t *f, int migrated, char *target, size_t size);

/* Runs sql (statements whose results are not read) on the database of
 * target, behind the store's back. Returns 0 or -1. */
int ts_store_sql(const char *target, const char *sql);

/* Runs query on the database of target behind the store's back and returns
 * the first column of its first row as an integer; -1 on error or without
 * a row. */
long long ts_store_int(const char *target, const char *query);

#endif
