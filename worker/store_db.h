/*
 * worker/store_db.h: the database driver under worker/store.h.
 *
 * A driver is one database's client API behind a small table of functions:
 * open a connection, prepare statements, bind parameters, step through rows
 * and read columns, run a schema script. The chat's queries are written once,
 * over this interface (worker/store_*.c); worker/store_sqlite.c drives sqlite
 * and worker/store_pg.c drives PostgreSQL through libpq. A driver knows
 * nothing of the chat.
 *
 * The contract every driver keeps:
 *  - SQL text numbers its parameters ?1, ?2, ...; a driver that spells them
 *    otherwise rewrites the text once, when it prepares it. A parameter that
 *    is not bound is NULL. Bound text and blobs are borrowed until the
 *    statement is reset: the caller keeps them alive while it steps.
 *  - step runs the statement on its first call and returns WRK_DB_ROW while a
 *    row can be read, then WRK_DB_DONE; or a negative code:
 *      MC_EEXIST     a unique key is taken;
 *      MC_ENOTFOUND  a foreign key finds no row, or a table does not exist;
 *      MC_EINVAL     the database refuses a value (text that is not UTF-8);
 *      MC_EAGAIN     inside a transaction: the database undid it to break a
 *                    deadlock or a serialization conflict; run it again;
 *      MC_EDB        anything else (errmsg says why).
 *    Outside a transaction a driver retries by itself what is safe to retry
 *    (a busy database; a connection found closed before the statement was
 *    sent). After a failure inside a transaction, in_transaction tells
 *    whether the transaction is still usable.
 *  - Columns are numbered from 0 and read 0 or "" when NULL; text read from
 *    a column stays valid until the next step or reset of its statement.
 *  - reset ends a run (a driver releases its rows and read locks there) and
 *    forgets the bindings; the statement stays prepared for the next run.
 *  - queue runs a statement with the bindings it has now and hands its
 *    rows (or its failure) to a callback: at once, or (PostgreSQL) when
 *    flush sends every run queued since in one round trip. Queue only
 *    inside a transaction (its BEGIN may be the first run queued): the runs
 *    behave as if stepped one after the other, in the order queued, and a
 *    failure fails the transaction and the runs after it. queue resets the
 *    statement, so that the next run of it binds anew; nothing but queue
 *    may run on the connection until the flush.
 *  - A connection and its statements are used by one thread at a time.
 */
#ifndef MC_WORKER_STORE_DB_H
#define MC_WORKER_STORE_DB_H

#include <stddef.h>
#include <stdint.h>

#include "worker/store.h"

enum wrk_db_step {
    WRK_DB_DONE = 0, /* no more rows */
    WRK_DB_ROW = 1,  /* a row can be read */
};

/* The spellings of SQL a driver's database understands. */
enum wrk_db_dialect {
    WRK_DB_SQLITE,
    WRK_DB_PG,
};

/* What in_transaction reports. */
enum wrk_db_tx {
    WRK_DB_TX_NONE = 0,   /* autocommit: each statement commits */
    WRK_DB_TX_OPEN = 1,   /* a transaction is open and usable */
    WRK_DB_TX_FAILED = 2, /* a transaction is open but failed: only a rollback ends it */
};

typedef struct wrk_db wrk_db_t; /* one connection; each driver defines it */
typedef struct wrk_db_driver wrk_db_driver_t;
typedef struct wrk_db_stmt wrk_db_stmt_t;

/* Told of a queued run: rc is WRK_DB_ROW (its first row can be read from
 * st during the call, and step reads the next), WRK_DB_DONE (no row) or a
 * negative code. */
typedef void (*wrk_db_done_fn)(void *arg, wrk_db_stmt_t *st, int rc);

/* The head of every driver's statement: a driver's own statement type
 * starts with it, so that the calls below find their driver. */
struct wrk_db_stmt {
    const wrk_db_driver_t *drv;
};

struct wrk_db_driver {
    const char *name; /* "sqlite", "postgresql" */
    enum wrk_db_dialect dialect;
    /* Connects to target (a path; a URI or conninfo). Returns 0 and *out,
     * or MC_EDB / MC_ENOMEM with the reason in err (*out NULL). */
    int (*open)(wrk_db_t **out, const char *target, const wrk_store_options_t *opts, char *err,
                size_t errsize);
    void (*close)(wrk_db_t *db);               /* finalize every statement first */
    const char *(*errmsg)(const wrk_db_t *db); /* the last failure, never NULL */
    /* Prepares sql (?N parameters). Returns 0 and *out, MC_ENOMEM or MC_EDB. */
    int (*prepare)(wrk_db_t *db, const char *sql, wrk_db_stmt_t **out);
    void (*finalize)(wrk_db_stmt_t *st); /* finalize(NULL) does nothing */
    void (*bind_int)(wrk_db_stmt_t *st, int i, int64_t v);
    void (*bind_text)(wrk_db_stmt_t *st, int i, const char *text, size_t len);
    void (*bind_null)(wrk_db_stmt_t *st, int i);
    int (*step)(wrk_db_stmt_t *st);
    int64_t (*column_int)(wrk_db_stmt_t *st, int col);
    const char *(*column_text)(wrk_db_stmt_t *st, int col, size_t *len);
    int (*column_is_null)(wrk_db_stmt_t *st, int col);
    void (*reset)(wrk_db_stmt_t *st);
    /* Queues a run of st (see above); done is called once for it, by queue
     * or by the next flush. Returns 0, or MC_ENOMEM (done is not called). */
    int (*queue)(wrk_db_stmt_t *st, wrk_db_done_fn done, void *arg);
    /* Runs what is queued and calls each run's done, in order. Returns 0, or
     * the failure of the connection (each run was told it). */
    int (*flush)(wrk_db_t *db);
    /* Rows changed by the last INSERT, UPDATE or DELETE run on db. */
    int64_t (*changes)(wrk_db_t *db);
    enum wrk_db_tx (*in_transaction)(wrk_db_t *db);
    /* Runs script (schema statements, no parameters, ';'-separated) in the
     * current transaction, if any. Returns 0 or a step code. */
    int (*exec_script)(wrk_db_t *db, const char *script);
    /* What the connection did since it was opened (worker/store.h). */
    void (*stats)(const wrk_db_t *db, wrk_store_stats_t *out);
};

extern const wrk_db_driver_t wrk_db_sqlite;
extern const wrk_db_driver_t wrk_db_pg;

/* The driver for a CHAT_DB target: PostgreSQL for a postgresql:// or
 * postgres:// URI or a "keyword=value ..." conninfo string, else sqlite
 * (target is a file path). */
const wrk_db_driver_t *wrk_db_driver_for(const char *target);

static inline void wrk_db_bind_int(wrk_db_stmt_t *st, int i, int64_t v)
{
    st->drv->bind_int(st, i, v);
}

static inline void wrk_db_bind_text(wrk_db_stmt_t *st, int i, const char *text, size_t len)
{
    st->drv->bind_text(st, i, text, len);
}

static inline void wrk_db_bind_null(wrk_db_stmt_t *st, int i)
{
    st->drv->bind_null(st, i);
}

static inline int64_t wrk_db_int(wrk_db_stmt_t *st, int col)
{
    return st->drv->column_int(st, col);
}

static inline const char *wrk_db_text(wrk_db_stmt_t *st, int col, size_t *len)
{
    return st->drv->column_text(st, col, len);
}

static inline int wrk_db_is_null(wrk_db_stmt_t *st, int col)
{
    return st->drv->column_is_null(st, col);
}

static inline void wrk_db_reset(wrk_db_stmt_t *st)
{
    st->drv->reset(st);
}

#endif
