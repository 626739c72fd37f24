/*
 * worker/store_pg.c: the PostgreSQL driver of worker/store_db.h, on libpq.
 *
 * A statement is prepared on the server at its first run, with the types of
 * the values bound then (integers are int8, text and NULL are text), and its
 * ?N parameters rewritten to $N. Parameters travel in binary, so text needs
 * no terminating NUL and integers no formatting; rows come back as text.
 * Every run fetches its rows at once: the store's queries return at most a
 * few hundred, and those that could return more page through them.
 *
 * Queued runs go out in pipeline mode, buffered, and flush sends them with
 * one sync point after the last: one write, one round trip; it reads their
 * results in order.
 *
 * A connection that the server closed (a restart, an idle timeout) is found
 * before the next statement is sent, and reopened when no transaction was
 * open on it: prepared statements are prepared again, on first use. A
 * transaction open on a lost connection is lost with it: its statements
 * fail until it is rolled back. Outside a transaction, a statement undone by
 * a serialization failure or a deadlock runs again.
 */
#include "worker/store_db.h"
#include "common/error.h"
#include "common/log.h"

#include <endian.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PG_PARAMS_MAX 16
#define PG_INT8 20 /* type oids, fixed in every PostgreSQL */
#define PG_TEXT 25

/* A run queued for the pipeline. */
typedef struct pg_queued {
    struct pg_stmt *st;
    wrk_db_done_fn done;
    void *arg;
    int prepares; /* its statement is prepared in the same pipeline, first */
    int sent;     /* it went out: its results come back */
} pg_queued_t;

struct wrk_db {
    PGconn *conn;
    pg_queued_t *queued; /* runs sent, whose results flush reads */
    size_t nqueued, queued_cap;
    int queue_rc;         /* the failure of the runs that did not go out, 0: none */
    int lost;             /* the connection is in a state nothing can use: replace it */
    long idle_timeout_ms; /* set on each connection, 0: none */
    unsigned generation;  /* counts connections: statements prepared on an older one are gone */
    unsigned names;       /* statement names handed out on this connection */
    int tx;               /* a transaction is open (as of the last statement) */
    int64_t changes;
    wrk_store_stats_t stats;
    char err[256];
};

typedef struct pg_stmt {
    wrk_db_stmt_t head;
    wrk_db_t *db;
    char *sql; /* $N parameters */
    char name[16];
    unsigned prepared; /* the generation it was prepared in, 0: not yet */
    int nparams;
    Oid types[PG_PARAMS_MAX];
    const char *values[PG_PARAMS_MAX];
    int lengths[PG_PARAMS_MAX];
    int formats[PG_PARAMS_MAX];
    uint64_t ints[PG_PARAMS_MAX]; /* int8 values in network order */
    PGresult *res;
    int ran, row, nrows;
    int commits; /* COMMIT: on a failed transaction it rolls back instead */
} pg_stmt_t;

static void set_err(wrk_db_t *db, const char *text)
{
    snprintf(db->err, sizeof(db->err), "%s", text && *text ? text : "unknown error");
    size_t n = strlen(db->err);
    while (n && (db->err[n - 1] == '\n' || db->err[n - 1] == ' '))
        db->err[--n] = '\0';
}

/* The MC_E* code of a failed result (err set). */
static int result_error(wrk_db_t *db, const PGresult *res)
{
    set_err(db, res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return res ? MC_EDB : MC_ENOMEM;
    if (strcmp(state, "23505") == 0)
        return MC_EEXIST;
    if (strcmp(state, "23503") == 0 || strcmp(state, "42P01") == 0)
        return MC_ENOTFOUND;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return MC_EAGAIN;
    if (strncmp(state, "22", 2) == 0)
        return MC_EINVAL;
    return MC_EDB;
}

/* A connection that is gone (PQTRANS_UNKNOWN) keeps what it was: a
 * transaction open on it is lost, which connection_ready then says. */
static void track_transaction(wrk_db_t *db)
{
    PGTransactionStatusType t = PQtransactionStatus(db->conn);
    if (t != PQTRANS_UNKNOWN)
        db->tx = t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

/* Notices (such as "relation exists, skipping") are no news for the chat. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    mc_debug("store: postgresql: %s", message);
}

/* Sets what every connection needs: the server ends one that stays idle
 * past idle_timeout_ms (in a transaction, or from PostgreSQL 14 also out of
 * one), so that a process that stopped answering frees its locks. */
static int setup_session(wrk_db_t *db)
{
    if (db->idle_timeout_ms <= 0)
        return 0;
    char sql[160];
    int n = snprintf(sql, sizeof(sql), "SET idle_in_transaction_session_timeout = %ld",
                     db->idle_timeout_ms);
    if (PQserverVersion(db->conn) >= 140000)
        snprintf(sql + n, sizeof(sql) - (size_t)n, "; SET idle_session_timeout = %ld",
                 db->idle_timeout_ms);
    PGresult *r = PQexec(db->conn, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : MC_EDB;
    if (rc)
        set_err(db, PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

/* Reads what arrived while no statement ran: nothing, or the last words of
 * a server that closed the connection (an error, then the end of input),
 * after which the connection's status says it is gone. */
static void read_pending(wrk_db_t *db)
{
    struct pollfd p = {.fd = PQsocket(db->conn), .events = POLLIN};
    for (int i = 0; i < 8 && PQstatus(db->conn) == CONNECTION_OK && poll(&p, 1, 0) == 1; i++) {
        if (!PQconsumeInput(db->conn)) {
            mc_warn("store: the connection to the database was lost: %s", PQerrorMessage(db->conn));
            break;
        }
        PQisBusy(db->conn); /* parses it: a notice goes to on_notice */
    }
}

/* Before a statement is sent: reopens a connection the server closed, when
 * no transaction was open on it. */
static int connection_ready(wrk_db_t *db)
{
    read_pending(db);
    if (PQstatus(db->conn) == CONNECTION_OK && !db->lost)
        return 0;
    if (db->tx) {
        db->tx = 0; /* lost with the connection: the next statement reconnects */
        set_err(db, "the connection to the database was lost in a transaction");
        return MC_EDB;
    }
    db->lost = 0;
    PQreset(db->conn);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        set_err(db, PQerrorMessage(db->conn));
        return MC_EDB;
    }
    db->generation++;
    mc_info("store: reconnected to the database");
    return setup_session(db);
}

static void close_db(wrk_db_t *db)
{
    if (!db)
        return;
    PQfinish(db->conn);
    free(db->queued);
    free(db);
}

static int open_db(wrk_db_t **out, const char *target, const wrk_store_options_t *opts, char *err,
                   size_t errsize)
{
    *out = NULL;
    wrk_db_t *db = calloc(1, sizeof(*db));
    if (!db) {
        snprintf(err, errsize, "no memory");
        return MC_ENOMEM;
    }
    db->idle_timeout_ms = opts ? opts->idle_timeout_ms : 0;
    /* Settings of the target itself come last and win. */
    const char *keys[] = {"connect_timeout", "application_name", "client_encoding", "dbname", NULL};
    const char *values[] = {"10", "multichat", "UTF8", target, NULL};
    db->conn = PQconnectdbParams(keys, values, 1);
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
        snprintf(err, errsize, "%s", db->conn ? PQerrorMessage(db->conn) : "no memory");
        size_t n = strlen(err);
        while (n && err[n - 1] == '\n')
            err[--n] = '\0';
        int rc = db->conn ? MC_EDB : MC_ENOMEM;
        close_db(db);
        return rc;
    }
    PQsetNoticeProcessor(db->conn, on_notice, NULL);
    db->generation = 1;
    if (setup_session(db)) {
        snprintf(err, errsize, "%s", db->err);
        close_db(db);
        return MC_EDB;
    }
    *out = db;
    return 0;
}

static const char *errmsg(const wrk_db_t *db)
{
    return db->err[0] ? db->err : "no error";
}

/* Copies sql with ?N rewritten to $N (outside quotes); *nparams gets the
 * largest N. NULL when a parameter is unnumbered or past PG_PARAMS_MAX. */
static char *rewrite(const char *sql, int *nparams)
{
    char *out = malloc(strlen(sql) + 1); /* "$N" is as long as "?N" */
    if (!out)
        return NULL;
    char quote = 0, *o = out;
    const char *p = sql;
    *nparams = 0;
    while (*p) {
        if (quote || *p == '\'' || *p == '"') {
            quote = !quote ? *p : *p == quote ? 0 : quote;
            *o++ = *p++;
            continue;
        }
        if (*p != '?') {
            *o++ = *p++;
            continue;
        }
        int n = 0;
        *o++ = '$';
        for (p++; *p >= '0' && *p <= '9' && n <= PG_PARAMS_MAX; p++)
            n = n * 10 + (*p - '0'), *o++ = *p;
        if (n < 1 || n > PG_PARAMS_MAX) {
            free(out);
            return NULL;
        }
        if (n > *nparams)
            *nparams = n;
    }
    *o = '\0';
    return out;
}

static void reset(wrk_db_stmt_t *st);

static int prepare(wrk_db_t *db, const char *sql, wrk_db_stmt_t **out)
{
    *out = NULL;
    pg_stmt_t *s = calloc(1, sizeof(*s));
    if (!s)
        return MC_ENOMEM;
    s->sql = rewrite(sql, &s->nparams);
    if (!s->sql) {
        free(s);
        set_err(db, "a statement's parameters are not ?1 to ?16");
        return MC_EDB;
    }
    s->head.drv = &wrk_db_pg;
    s->db = db;
    s->commits = strncmp(sql, "COMMIT", 6) == 0;
    snprintf(s->name, sizeof(s->name), "mc%u", ++db->names);
    reset(&s->head);
    *out = &s->head;
    return 0;
}

static void finalize(wrk_db_stmt_t *st)
{
    if (!st)
        return;
    pg_stmt_t *s = (pg_stmt_t *)st;
    PQclear(s->res);
    free(s->sql);
    free(s);
}

static void bind_int(wrk_db_stmt_t *st, int i, int64_t v)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    if (i < 1 || i > s->nparams)
        return;
    s->ints[i - 1] = htobe64((uint64_t)v);
    s->types[i - 1] = PG_INT8;
    s->values[i - 1] = (const char *)&s->ints[i - 1];
    s->lengths[i - 1] = 8;
}

static void bind_text(wrk_db_stmt_t *st, int i, const char *text, size_t len)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    if (i < 1 || i > s->nparams)
        return;
    s->types[i - 1] = PG_TEXT;
    s->values[i - 1] = text;
    s->lengths[i - 1] = (int)len;
}

static void bind_null(wrk_db_stmt_t *st, int i)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    if (i < 1 || i > s->nparams)
        return;
    s->types[i - 1] = PG_TEXT;
    s->values[i - 1] = NULL;
    s->lengths[i - 1] = 0;
}

/* Runs the statement once, preparing it first on this connection if need be. */
static int run(pg_stmt_t *s)
{
    wrk_db_t *db = s->db;
    for (;;) {
        int rc = connection_ready(db);
        if (rc)
            return rc;
        if (s->prepared != db->generation) {
            PGresult *r = PQprepare(db->conn, s->name, s->sql, s->nparams, s->types);
            rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : result_error(db, r);
            PQclear(r);
            if (rc) {
                track_transaction(db);
                return rc;
            }
            s->prepared = db->generation;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        s->res =
            PQexecPrepared(db->conn, s->name, s->nparams, s->values, s->lengths, s->formats, 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        db->stats.statements++;
        db->stats.ns += (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
        ExecStatusType status = PQresultStatus(s->res);
        int was_tx = db->tx;
        track_transaction(db);
        if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
            s->nrows = PQntuples(s->res);
            db->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
            return 0;
        }
        rc = result_error(db, s->res);
        PQclear(s->res);
        s->res = NULL;
        /* On its own, a statement undone by a conflict committed nothing. */
        if (rc == MC_EAGAIN && !was_tx && !db->tx) {
            db->stats.busy_retries++;
            continue;
        }
        return rc;
    }
}

static int step(wrk_db_stmt_t *st)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    if (!s->ran) {
        int rc = run(s);
        if (rc)
            return rc;
        s->ran = 1;
        s->row = 0;
    } else if (s->row < s->nrows) {
        s->row++;
    }
    return s->row < s->nrows ? WRK_DB_ROW : WRK_DB_DONE;
}

static int64_t column_int(wrk_db_stmt_t *st, int col)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    if (!s->res || s->row >= s->nrows || PQgetisnull(s->res, s->row, col))
        return 0;
    return strtoll(PQgetvalue(s->res, s->row, col), NULL, 10);
}

static const char *column_text(wrk_db_stmt_t *st, int col, size_t *len)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    if (!s->res || s->row >= s->nrows || PQgetisnull(s->res, s->row, col)) {
        *len = 0;
        return "";
    }
    *len = (size_t)PQgetlength(s->res, s->row, col);
    return PQgetvalue(s->res, s->row, col);
}

static int column_is_null(wrk_db_stmt_t *st, int col)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    return !s->res || s->row >= s->nrows || PQgetisnull(s->res, s->row, col);
}

static void reset(wrk_db_stmt_t *st)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    PQclear(s->res);
    s->res = NULL;
    s->ran = s->row = s->nrows = 0;
    for (int i = 0; i < s->nparams; i++) {
        s->types[i] = PG_TEXT;
        s->values[i] = NULL;
        s->lengths[i] = 0;
        s->formats[i] = 1; /* binary */
    }
}

static int queue(wrk_db_stmt_t *st, wrk_db_done_fn done, void *arg)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    wrk_db_t *db = s->db;
    if (db->nqueued == db->queued_cap) {
        size_t cap = db->queued_cap ? 2 * db->queued_cap : 16;
        pg_queued_t *q = realloc(db->queued, cap * sizeof(*q));
        if (!q)
            return MC_ENOMEM;
        db->queued = q;
        db->queued_cap = cap;
    }
    if (db->nqueued == 0) {
        db->queue_rc = connection_ready(db);
        if (!db->queue_rc && !PQenterPipelineMode(db->conn)) {
            set_err(db, PQerrorMessage(db->conn));
            db->queue_rc = MC_EDB;
        }
    }
    pg_queued_t *q = &db->queued[db->nqueued++];
    *q = (pg_queued_t){s, done, arg, 0, 0};
    if (!db->queue_rc && s->prepared != db->generation) {
        q->prepares = 1;
        s->prepared = db->generation; /* undone by flush if it failed */
    }
    /* A send that fails leaves the pipeline in no known state: the runs
     * sent get their results, the connection is replaced after them. */
    if (!db->queue_rc &&
        ((q->prepares && !PQsendPrepare(db->conn, s->name, s->sql, s->nparams, s->types)) ||
         !PQsendQueryPrepared(db->conn, s->name, s->nparams, s->values, s->lengths, s->formats,
                              0))) {
        set_err(db, PQerrorMessage(db->conn));
        db->queue_rc = MC_EDB;
        db->lost = 1;
    }
    q->sent = !db->queue_rc;
    reset(st);
    return 0;
}

/* The results of the run q up to its sync point: 0 and its own result in
 * q->st, or the failure. A result missing where one is due means the
 * connection is gone: MC_EDB, and *broken is set. */
static int collect(wrk_db_t *db, pg_queued_t *q, int *broken)
{
    PGresult *r;
    int rc = 0;
    if (q->prepares) {
        r = PQgetResult(db->conn);
        if (!r) {
            *broken = 1;
            return MC_EDB;
        }
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            rc = result_error(db, r);
            q->st->prepared = 0;
        }
        PQclear(r);
        while ((r = PQgetResult(db->conn)))
            PQclear(r);
    }
    r = PQgetResult(db->conn);
    if (!r) {
        *broken = 1;
        return MC_EDB;
    }
    ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_COMMAND_OK && q->st->commits && strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
        set_err(db, "the transaction failed and was rolled back");
        rc = MC_EDB;
        PQclear(r);
    } else if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        q->st->res = r;
        q->st->nrows = PQntuples(r);
        db->changes = strtoll(PQcmdTuples(r), NULL, 10);
    } else {
        if (status != PGRES_PIPELINE_ABORTED) /* else its prepare said why */
            rc = result_error(db, r);
        rc = rc ? rc : MC_EDB;
        PQclear(r);
    }
    PGresult *more;
    while ((more = PQgetResult(db->conn)))
        PQclear(more);
    return rc;
}

static int flush(wrk_db_t *db)
{
    if (db->nqueued == 0)
        return 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int failed = db->queue_rc, broken = 0;
    if (!failed && !PQpipelineSync(db->conn)) {
        set_err(db, PQerrorMessage(db->conn));
        failed = MC_EDB;
        db->lost = 1;
        for (size_t i = 0; i < db->nqueued; i++)
            db->queued[i].sent = 0;
    }
    for (size_t i = 0; i < db->nqueued; i++) {
        pg_queued_t *q = &db->queued[i];
        int rc = !q->sent ? failed : broken ? MC_EDB : collect(db, q, &broken);
        if (broken && !failed) {
            set_err(db, PQerrorMessage(db->conn));
            failed = MC_EDB;
        }
        db->stats.statements++;
        q->st->ran = 1;
        q->done(q->arg, &q->st->head, rc ? rc : q->st->nrows ? WRK_DB_ROW : WRK_DB_DONE);
        reset(&q->st->head);
    }
    if (!broken && db->nqueued && db->queued[0].sent) {
        PGresult *sync = PQgetResult(db->conn);
        if (!sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
            broken = 1;
        PQclear(sync);
    }
    db->nqueued = 0;
    db->queue_rc = 0;
    if (PQpipelineStatus(db->conn) != PQ_PIPELINE_OFF && !PQexitPipelineMode(db->conn)) {
        if (!failed)
            set_err(db, PQerrorMessage(db->conn));
        failed = MC_EDB;
        db->lost = 1;
    }
    track_transaction(db);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    db->stats.ns += (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
    return failed;
}

static int64_t changes(wrk_db_t *db)
{
    return db->changes;
}

static void stats(const wrk_db_t *db, wrk_store_stats_t *out)
{
    *out = db->stats;
}

static enum wrk_db_tx in_transaction(wrk_db_t *db)
{
    if (PQstatus(db->conn) != CONNECTION_OK || db->lost)
        return db->tx ? WRK_DB_TX_FAILED : WRK_DB_TX_NONE;
    switch (PQtransactionStatus(db->conn)) {
    case PQTRANS_INTRANS:
        return WRK_DB_TX_OPEN;
    case PQTRANS_INERROR:
        return WRK_DB_TX_FAILED;
    default:
        return WRK_DB_TX_NONE;
    }
}

static int exec_script(wrk_db_t *db, const char *script)
{
    int rc = connection_ready(db);
    if (rc)
        return rc;
    PGresult *r = PQexec(db->conn, script);
    ExecStatusType status = PQresultStatus(r);
    rc = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? 0 : result_error(db, r);
    PQclear(r);
    track_transaction(db);
    return rc;
}

const wrk_db_driver_t wrk_db_pg = {
    .name = "postgresql",
    .dialect = WRK_DB_PG,
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
