/*
 * worker/store_sqlite.c: the sqlite driver of worker/store_db.h.
 *
 * The database is one file in WAL mode, shared by any number of processes.
 * A statement that meets a busy database (once busy_timeout has passed) is
 * reset and retried with a growing pause, without limit: a write is never
 * dropped. Inside a transaction only its BEGIN may be retried so: sqlite may
 * have undone the transaction of a statement that failed busy.
 */
#include "worker/store_db.h"
#include "common/error.h"
#include "common/log.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wrk_db {
    sqlite3 *db;
    wrk_store_stats_t stats;
};

typedef struct sqlite_stmt {
    wrk_db_stmt_t head;
    sqlite3_stmt *st;
    wrk_db_t *db;
    int begins; /* the statement opens a transaction: it may be retried */
} sqlite_stmt_t;

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int is_busy(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

static int error_code(int rc)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return MC_EEXIST;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return MC_ENOTFOUND;
    case SQLITE_NOMEM:
        return MC_ENOMEM;
    default:
        return MC_EDB;
    }
}

static int exec_script(wrk_db_t *db, const char *script)
{
    long pause = 1;
    for (;;) {
        int rc = sqlite3_exec(db->db, script, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            return 0;
        if (!is_busy(rc) || !sqlite3_get_autocommit(db->db))
            return error_code(sqlite3_extended_errcode(db->db));
        db->stats.busy_retries++;
        pause_ms(pause);
        if (pause < 100)
            pause *= 2;
    }
}

/* sqlite's profile of each statement that finished: its time, in ns. */
static int on_profile(unsigned type, void *ctx, void *stmt, void *ns)
{
    wrk_db_t *db = ctx;
    (void)stmt;
    if (type == SQLITE_TRACE_PROFILE) {
        db->stats.statements++;
        db->stats.ns += *(const sqlite3_int64 *)ns;
    }
    return 0;
}

static void close_db(wrk_db_t *db)
{
    if (!db)
        return;
    sqlite3_close(db->db);
    free(db);
}

static int open_db(wrk_db_t **out, const char *path, const wrk_store_options_t *opts, char *err,
                   size_t errsize)
{
    *out = NULL;
    wrk_db_t *db = calloc(1, sizeof(*db));
    if (!db) {
        snprintf(err, errsize, "no memory");
        return MC_ENOMEM;
    }
    long busy = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    int rc = sqlite3_open_v2(
        path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errsize, "%s", db->db ? sqlite3_errmsg(db->db) : "no memory");
        close_db(db);
        return rc == SQLITE_NOMEM ? MC_ENOMEM : MC_EDB;
    }
    sqlite3_extended_result_codes(db->db, 1);
    sqlite3_busy_timeout(db->db, (int)busy);
    sqlite3_trace_v2(db->db, SQLITE_TRACE_PROFILE, on_profile, db);
    if (exec_script(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                        "PRAGMA foreign_keys = ON;")) {
        snprintf(err, errsize, "pragmas: %s", sqlite3_errmsg(db->db));
        close_db(db);
        return MC_EDB;
    }
    *out = db;
    return 0;
}

static const char *errmsg(const wrk_db_t *db)
{
    return sqlite3_errmsg(db->db);
}

static int prepare(wrk_db_t *db, const char *sql, wrk_db_stmt_t **out)
{
    *out = NULL;
    sqlite_stmt_t *s = calloc(1, sizeof(*s));
    if (!s)
        return MC_ENOMEM;
    if (sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL) != SQLITE_OK) {
        free(s);
        return MC_EDB;
    }
    s->head.drv = &wrk_db_sqlite;
    s->db = db;
    s->begins = strncmp(sql, "BEGIN", 5) == 0;
    *out = &s->head;
    return 0;
}

static void finalize(wrk_db_stmt_t *st)
{
    if (!st)
        return;
    sqlite_stmt_t *s = (sqlite_stmt_t *)st;
    sqlite3_finalize(s->st);
    free(s);
}

static void bind_int(wrk_db_stmt_t *st, int i, int64_t v)
{
    sqlite3_bind_int64(((sqlite_stmt_t *)st)->st, i, v);
}

static void bind_text(wrk_db_stmt_t *st, int i, const char *text, size_t len)
{
    sqlite3_bind_text(((sqlite_stmt_t *)st)->st, i, text, (int)len, SQLITE_STATIC);
}

static void bind_null(wrk_db_stmt_t *st, int i)
{
    sqlite3_bind_null(((sqlite_stmt_t *)st)->st, i);
}

static int step(wrk_db_stmt_t *st)
{
    sqlite_stmt_t *s = (sqlite_stmt_t *)st;
    long pause = 1;
    for (;;) {
        int rc = sqlite3_step(s->st);
        if (rc == SQLITE_ROW)
            return WRK_DB_ROW;
        if (rc == SQLITE_DONE)
            return WRK_DB_DONE;
        if (!is_busy(rc) || (!s->begins && !sqlite3_get_autocommit(s->db->db)))
            return error_code(sqlite3_extended_errcode(s->db->db));
        mc_warn("store: database busy, retrying");
        s->db->stats.busy_retries++;
        sqlite3_reset(s->st);
        pause_ms(pause);
        if (pause < 100)
            pause *= 2;
    }
}

static int64_t column_int(wrk_db_stmt_t *st, int col)
{
    return sqlite3_column_int64(((sqlite_stmt_t *)st)->st, col);
}

static const char *column_text(wrk_db_stmt_t *st, int col, size_t *len)
{
    sqlite3_stmt *s = ((sqlite_stmt_t *)st)->st;
    const char *t = (const char *)sqlite3_column_text(s, col);
    *len = t ? (size_t)sqlite3_column_bytes(s, col) : 0;
    return t ? t : "";
}

static int column_is_null(wrk_db_stmt_t *st, int col)
{
    return sqlite3_column_type(((sqlite_stmt_t *)st)->st, col) == SQLITE_NULL;
}

static void reset(wrk_db_stmt_t *st)
{
    sqlite3_stmt *s = ((sqlite_stmt_t *)st)->st;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* sqlite runs in the process: a queued run runs at once. */
static int queue(wrk_db_stmt_t *st, wrk_db_done_fn done, void *arg)
{
    done(arg, st, step(st));
    reset(st);
    return 0;
}

static int flush(wrk_db_t *db)
{
    (void)db;
    return 0;
}

static int64_t changes(wrk_db_t *db)
{
    return sqlite3_changes64(db->db);
}

static void stats(const wrk_db_t *db, wrk_store_stats_t *out)
{
    *out = db->stats;
}

static enum wrk_db_tx in_transaction(wrk_db_t *db)
{
    return sqlite3_get_autocommit(db->db) ? WRK_DB_TX_NONE : WRK_DB_TX_OPEN;
}

const wrk_db_driver_t wrk_db_sqlite = {
    .name = "sqlite",
    .dialect = WRK_DB_SQLITE,
    .open = open_db,
    .close = close_db,
    .errmsg = errmsg,
    .prepare = prepare,
    .finalize = finalize,
    .bind_int = bind_int,
    .bind_text = bind_text,
    .bind_null = bind_null,
    .step = step,
    .column_int = column_int,
    .column_text = column_text,
    .column_is_null = column_is_null,
    .reset = reset,
    .queue = queue,
    .flush = flush,
    .changes = changes,
    .in_transaction = in_transaction,
    .exec_script = exec_script,
    .stats = stats,
};
