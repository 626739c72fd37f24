#include "tests/support/store_fixture.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The backend of the run in progress. */
static struct {
    int on_pg;
    ts_pg_t pg;
    int databases; /* made so far: names the next one */
} backend;

int ts_store_on_postgresql(void)
{
    return backend.on_pg;
}

const ts_pg_t *ts_store_server(void)
{
    return &backend.pg;
}

void ts_store_fresh(ts_store_t *f, int migrated, char *target, size_t size)
{
    int n = ++backend.databases;
    if (!backend.on_pg) {
        snprintf(target, size, "%s/db%d.sqlite3", f->dir, n);
        return;
    }
    char name[32], sql[96];
    snprintf(name, sizeof(name), "t%d", n);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s%s", name, migrated ? " TEMPLATE migrated" : "");
    assert_int_equal(ts_pg_exec(&backend.pg, "postgres", sql), 0);
    ts_pg_url(&backend.pg, name, target, size);
}

int ts_store_setup(void **state)
{
    ts_store_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/mc-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    ts_store_fresh(f, 1, f->target, sizeof(f->target));
    assert_int_equal(wrk_store_open(&f->s, f->target, NULL), 0);
    assert_int_equal(wrk_store_migrate(f->s, NULL, NULL), 0);
    assert_int_equal(wrk_store_user_add(f->s, "ann", "$hash-ann", 0, &f->ann), 0);
    assert_int_equal(wrk_store_user_add(f->s, "bob", "$hash-bob", 1, &f->bob), 0);
    assert_int_equal(wrk_store_room_add(f->s, "Lobby", 0, &f->room), 0);
    *state = f;
    return 0;
}

int ts_store_teardown(void **state)
{
    ts_store_t *f = *state;
    wrk_store_close(f->s);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void stop_postgresql(void)
{
    ts_pg_stop(&backend.pg);
}

/* The server (once per program), and a migrated database as the template
 * of the tests'. */
static int start_postgresql(void **state)
{
    (void)state;
    if (backend.pg.pid)
        return 0;
    if (ts_pg_start(&backend.pg) != 0)
        return -1;
    atexit(stop_postgresql);
    if (ts_pg_exec(&backend.pg, "postgres", "CREATE DATABASE migrated") != 0)
        return -1;
    char url[192];
    ts_pg_url(&backend.pg, "migrated", url, sizeof(url));
    wrk_store_t *s;
    if (wrk_store_open(&s, url, NULL) != 0)
        return -1;
    int rc = wrk_store_migrate(s, NULL, NULL);
    wrk_store_close(s);
    return rc;
}

static int run(const char *name, const struct CMUnitTest *tests, size_t n, CMFixtureFunction setup,
               CMFixtureFunction teardown)
{
    struct CMUnitTest *named = calloc(n, sizeof(*named));
    char **names = calloc(n, sizeof(*names));
    assert_true(named && names);
    for (size_t i = 0; i < n; i++) {
        named[i] = tests[i];
        size_t len = strlen(name) + strlen(tests[i].name) + 3;
        names[i] = malloc(len);
        assert_non_null(names[i]);
        snprintf(names[i], len, "%s: %s", name, tests[i].name);
        named[i].name = names[i];
    }
    int failed = _cmocka_run_group_tests(name, named, n, setup, teardown);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(named);
    return failed;
}

int ts_store_run_sqlite(const struct CMUnitTest *tests, size_t n)
{
    backend.on_pg = 0;
    return run("sqlite", tests, n, NULL, NULL);
}

int ts_store_sql(const char *target, const char *sql)
{
    if (strncmp(target, "postgresql://", 13) == 0)
        return ts_pg_exec(&backend.pg, strrchr(target, '/') + 1, sql);
    sqlite3 *db;
    int rc = sqlite3_open(target, &db) == SQLITE_OK &&
                     sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK
                 ? 0
                 : -1;
    if (rc)
        fprintf(stderr, "ts_store_sql: %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}

int ts_store_run_postgresql(const struct CMUnitTest *tests, size_t n)
{
    backend.on_pg = 1;
    return run("postgresql", tests, n, start_postgresql, NULL);
}

long long ts_store_int(const char *target, const char *query)
{
    if (strncmp(target, "postgresql://", 13) == 0)
        return ts_pg_int(&backend.pg, strrchr(target, '/') + 1, query);
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open(target, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, query, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "ts_store_int: %s: %s\n", query, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

int ts_store_run_both(const struct CMUnitTest *tests, size_t n)
{
    return ts_store_run_sqlite(tests, n) + ts_store_run_postgresql(tests, n);
}
