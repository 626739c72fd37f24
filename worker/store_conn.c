/*
 * worker/store_conn.c: the store's connection: choosing and opening a backend,
 * batches, the statement cache, and the helpers every domain file
 * (worker/store_*.c) runs its queries with.
 */
#include "worker/store_impl.h"
#include "common/error.h"
#include "common/log.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const wrk_sql_t sql_begin = {.text = "BEGIN", .sqlite = "BEGIN IMMEDIATE"};
static const wrk_sql_t sql_commit = {.text = "COMMIT"};
static const wrk_sql_t sql_rollback = {.text = "ROLLBACK"};

static int is_uri(const char *target)
{
    return strncasecmp(target, "postgresql://", 13) == 0 ||
           strncasecmp(target, "postgres://", 11) == 0;
}

/* "keyword=value ...": a word of letters and underscores, then '='. */
static int is_conninfo(const char *target)
{
    const char *p = target;
    while (*p == ' ')
        p++;
    const char *word = p;
    while (islower((unsigned char)*p) || *p == '_')
        p++;
    if (p == word)
        return 0;
    while (*p == ' ')
        p++;
    return *p == '=';
}

const wrk_db_driver_t *wrk_db_driver_for(const char *target)
{
    return is_uri(target) || is_conninfo(target) ? &wrk_db_pg : &wrk_db_sqlite;
}

void wrk_store_describe(const char *target, char *buf, size_t size)
{
    if (wrk_db_driver_for(target) == &wrk_db_sqlite) {
        snprintf(buf, size, "%s", target);
        return;
    }
    PQconninfoOption *opts = PQconninfoParse(target, NULL);
    const char *user = "", *host = "", *port = "", *dbname = "";
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            dbname = o->val;
    }
    snprintf(buf, size, "postgresql://%s%s%s%s%s/%s", user, *user ? "@" : "", host,
             *port ? ":" : "", port, dbname);
    PQconninfoFree(opts);
}

int wrk_store_open(wrk_store_t **out, const char *target, const wrk_store_options_t *opts)
{
    *out = NULL;
    wrk_store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return MC_ENOMEM;
    s->drv = wrk_db_driver_for(target);
    char err[sizeof(s->errmsg)];
    int rc = s->drv->open(&s->db, target, opts, err, sizeof(err));
    if (rc) {
        char name[256];
        wrk_store_describe(target, name, sizeof(name));
        mc_error("store: cannot open %s: %s", name, err);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void wrk_store_close(wrk_store_t *s)
{
    if (!s)
        return;
    wrk__forget_statements(s);
    s->drv->close(s->db);
    free(s);
}

const char *wrk_store_errmsg(const wrk_store_t *s)
{
    return s->errmsg;
}

void wrk_store_stats(const wrk_store_t *s, wrk_store_stats_t *out)
{
    s->drv->stats(s->db, out);
}

const char *wrk_store_backend(const wrk_store_t *s)
{
    return s->drv->name;
}

/* ---- Statements ------------------------------------------------------------ */

const char *wrk__sql_text(const wrk_store_t *s, const wrk_sql_t *q)
{
    const char *own = s->drv->dialect == WRK_DB_PG ? q->pg : q->sqlite;
    return own ? own : q->text;
}

static size_t slot_of(const wrk_sql_t *q)
{
    return (size_t)(((uintptr_t)q >> 3) * 0x9E3779B97F4A7C15ull >> 32) &
           (WRK_STORE_CACHE_SLOTS - 1);
}

wrk_db_stmt_t *wrk__stmt(wrk_store_t *s, const wrk_sql_t *q)
{
    size_t i = slot_of(q);
    while (s->cache[i].q && s->cache[i].q != q)
        i = (i + 1) & (WRK_STORE_CACHE_SLOTS - 1);
    struct wrk_cached *c = &s->cache[i];
    if (c->q) {
        wrk_db_reset(c->st);
        return c->st;
    }
    int rc = s->drv->prepare(s->db, wrk__sql_text(s, q), &c->st);
    if (rc) {
        wrk__fail(s, "prepare", rc);
        return NULL;
    }
    c->q = q;
    return c->st;
}

void wrk__forget_statements(wrk_store_t *s)
{
    for (size_t i = 0; i < WRK_STORE_CACHE_SLOTS; i++) {
        s->drv->finalize(s->cache[i].st);
        s->cache[i].q = NULL;
        s->cache[i].st = NULL;
    }
}

int wrk__fail(wrk_store_t *s, const char *what, int rc)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s: %s", what,
             rc == MC_ENOMEM ? "no memory" : s->drv->errmsg(s->db));
    return rc;
}

int wrk__step(wrk_store_t *s, wrk_db_stmt_t *st, const char *what)
{
    int rc = st->drv->step(st);
    return rc < 0 ? wrk__fail(s, what, rc) : rc;
}

int wrk__exec(wrk_store_t *s, wrk_db_stmt_t *st, const char *what)
{
    int rc = wrk__step(s, st, what);
    wrk_db_reset(st);
    return rc < 0 ? rc : 0;
}

int wrk__update_one(wrk_store_t *s, wrk_db_stmt_t *st, const char *what)
{
    int rc = wrk__exec(s, st, what);
    if (rc == 0 && s->drv->changes(s->db) == 0)
        return MC_ENOTFOUND;
    return rc;
}

int wrk__set_flag(wrk_store_t *s, const wrk_sql_t *q, int64_t id, int on, const char *what)
{
    wrk_db_stmt_t *st = wrk__stmt(s, q);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, id);
    wrk_db_bind_int(st, 2, on ? 1 : 0);
    return wrk__update_one(s, st, what);
}

int wrk__query_int(wrk_store_t *s, wrk_db_stmt_t *st, int64_t *out, const char *what)
{
    int rc = wrk__step(s, st, what);
    *out = rc == WRK_DB_ROW ? wrk_db_int(st, 0) : 0;
    wrk_db_reset(st);
    if (rc < 0)
        return rc;
    return rc == WRK_DB_ROW ? 0 : MC_ENOTFOUND;
}

int wrk__run(wrk_store_t *s, const wrk_sql_t *q, const char *what)
{
    if (!*wrk__sql_text(s, q))
        return 0;
    wrk_db_stmt_t *st = wrk__stmt(s, q);
    return st ? wrk__exec(s, st, what) : MC_EDB;
}

void wrk__copy_text(wrk_db_stmt_t *st, int col, char *dst, size_t size)
{
    size_t n;
    const char *t = wrk_db_text(st, col, &n);
    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

char *wrk__dup_text(wrk_db_stmt_t *st, int col, size_t *len)
{
    const char *t = wrk_db_text(st, col, len);
    char *out = malloc(*len + 1);
    if (!out)
        return NULL;
    if (*len)
        memcpy(out, t, *len);
    out[*len] = '\0';
    return out;
}

void wrk__reverse(void *items, size_t n, size_t size)
{
    unsigned char *a = items, tmp[WRK_REVERSE_MAX];
    if (size > sizeof(tmp))
        abort(); /* a bug: raise WRK_REVERSE_MAX */
    for (size_t i = 0, j = n ? n - 1 : 0; i < j; i++, j--) {
        memcpy(tmp, a + i * size, size);
        memcpy(a + i * size, a + j * size, size);
        memcpy(a + j * size, tmp, size);
    }
}

/* ---- Batches --------------------------------------------------------------- */

int wrk_store_batch_begin(wrk_store_t *s)
{
    if (s->in_batch)
        return MC_EINVAL;
    s->in_batch = 1;
    int rc = wrk__run(s, &sql_begin, "begin");
    if (rc)
        s->in_batch = 0;
    return rc;
}

int wrk_store_batch_end(wrk_store_t *s, int commit)
{
    if (!s->in_batch)
        return MC_EINVAL;
    int rc = 0;
    enum wrk_db_tx tx = s->drv->in_transaction(s->db);
    if (tx == WRK_DB_TX_OPEN) {
        rc = wrk__run(s, commit ? &sql_commit : &sql_rollback, commit ? "commit" : "rollback");
        if (rc && commit && s->drv->in_transaction(s->db) != WRK_DB_TX_NONE)
            wrk__run(s, &sql_rollback, "rollback");
    } else {
        if (tx == WRK_DB_TX_FAILED)
            wrk__run(s, &sql_rollback, "rollback");
        if (commit) {
            /* A failure inside the batch undid it. */
            char cause[sizeof(s->errmsg)];
            snprintf(cause, sizeof(cause), "%s", s->errmsg);
            snprintf(s->errmsg, sizeof(s->errmsg), "commit: the batch was rolled back (%.180s)",
                     cause[0] ? cause : "no cause known");
            rc = MC_EDB;
        }
    }
    s->in_batch = 0;
    return rc;
}

/* Notes the first failure of a queued run and hands its result on. */
static void relay(void *arg, wrk_db_stmt_t *st, int rc)
{
    struct wrk_queued_run *r = arg;
    if (rc < 0 && !r->s->run_failed) {
        r->s->run_failed = rc;
        wrk__fail(r->s, "queued statement", rc);
    }
    if (r->done)
        r->done(r->arg, st, rc);
}

int wrk__queue(wrk_store_t *s, wrk_db_stmt_t *st, wrk_db_done_fn done, void *arg)
{
    if (s->nruns == WRK_STORE_QUEUE_MAX)
        return MC_ETOOBIG;
    struct wrk_queued_run *r = &s->runs[s->nruns];
    *r = (struct wrk_queued_run){s, done, arg};
    int rc = s->drv->queue(st, relay, r);
    if (rc == 0)
        s->nruns++;
    return rc;
}

/* Queues the run of q, which takes no parameters and returns no row. */
static int queue_plain(wrk_store_t *s, const wrk_sql_t *q)
{
    wrk_db_stmt_t *st = wrk__stmt(s, q);
    return st ? wrk__queue(s, st, NULL, NULL) : MC_EDB;
}

int wrk__queued_batch(wrk_store_t *s, int (*fn)(wrk_store_t *s, void *arg), void *arg)
{
    if (s->in_batch)
        return MC_EINVAL;
    for (;;) {
        s->nruns = 0;
        s->run_failed = 0;
        int rc = queue_plain(s, &sql_begin);
        if (rc == 0)
            rc = fn(s, arg);
        /* sqlite has run them already, and keeps what did not fail: it
         * rolls back. PostgreSQL's COMMIT of a failed transaction undoes it
         * (and says so, which the driver reports as a failure). */
        int end = queue_plain(s, rc || s->run_failed ? &sql_rollback : &sql_commit);
        int flushed = s->drv->flush(s->db);
        if (flushed && !s->run_failed)
            wrk__fail(s, "flush", flushed);
        rc = rc ? rc : s->run_failed ? s->run_failed : end ? end : flushed;
        s->nruns = 0;
        if (rc && s->drv->in_transaction(s->db) != WRK_DB_TX_NONE)
            wrk__run(s, &sql_rollback, "rollback");
        if (rc != MC_EAGAIN)
            return rc;
        mc_debug("store: a transaction met a conflict; running it again");
    }
}

int wrk__in_batch(wrk_store_t *s, int (*fn)(wrk_store_t *s, void *arg), void *arg)
{
    if (s->in_batch)
        return fn(s, arg);
    for (;;) {
        int rc = wrk_store_batch_begin(s);
        if (rc)
            return rc;
        rc = fn(s, arg);
        int end = wrk_store_batch_end(s, rc == 0);
        if (rc == 0)
            rc = end;
        if (rc != MC_EAGAIN)
            return rc;
        mc_debug("store: a transaction met a conflict; running it again");
    }
}
