/*
 * worker/store_changes.c: the change log and its claiming, login failure
 * counters, the secrets the workers share, and the purge of what has
 * expired (worker/store.h).
 *
 * Changes are numbered in the order they commit (on PostgreSQL a trigger
 * sees to it, worker/store_schema.c), so a claim up to the latest number
 * never skips one that commits later. Claiming reads the cursor and moves
 * it in one transaction that holds the cursor's row: two workers claiming
 * at once take turns, and the second finds the cursor moved.
 */
#include "worker/store_impl.h"
#include "common/error.h"

#include <string.h>

static const wrk_sql_t sql_change_last = {.text = "SELECT coalesce(max(seq), 0) FROM changes"};
static const wrk_sql_t sql_change_each = {
    .text = "SELECT seq, kind, ref FROM changes WHERE seq > ?1 ORDER BY seq"};
static const wrk_sql_t sql_cursor_lock = {
    .text = "", .pg = "SELECT seq FROM change_cursor WHERE id = 1 FOR UPDATE"};
static const wrk_sql_t sql_cursor_get = {
    .text = "SELECT c.seq, (SELECT coalesce(max(seq), 0) FROM changes) "
            "FROM change_cursor c WHERE c.id = 1"};
static const wrk_sql_t sql_cursor_set = {.text = "UPDATE change_cursor SET seq = ?1 WHERE id = 1"};
static const wrk_sql_t sql_change_purge = {
    .text = "DELETE FROM changes WHERE at < ?1 AND seq < (SELECT max(seq) FROM changes)"};

static const wrk_sql_t sql_failure_add = {
    .text = "INSERT INTO login_failures(kind, key, window_start, count, last_at) "
            "VALUES (?1, ?2, ?3, 1, ?3) "
            "ON CONFLICT (kind, key) DO UPDATE SET "
            "count = CASE WHEN login_failures.window_start <= ?3 - ?4 THEN 1 "
            "ELSE login_failures.count + 1 END, "
            "window_start = CASE WHEN login_failures.window_start <= ?3 - ?4 THEN ?3 "
            "ELSE login_failures.window_start END, "
            "last_at = ?3 "
            "RETURNING count"};
static const wrk_sql_t sql_failures = {
    .text = "SELECT count, last_at FROM login_failures "
            "WHERE kind = ?1 AND key = ?2 AND window_start > ?3 - ?4"};
static const wrk_sql_t sql_failure_reset = {
    .text = "DELETE FROM login_failures WHERE kind = ?1 AND key = ?2"};
static const wrk_sql_t sql_failure_purge = {
    .text = "DELETE FROM login_failures WHERE window_start <= ?1 - ?2"};
static const wrk_sql_t sql_secret_add = {
    .text = "INSERT INTO secrets(name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING"};
static const wrk_sql_t sql_secret_get = {.text = "SELECT value FROM secrets WHERE name = ?1"};

/* ---- Change log ---------------------------------------------------------- */

int wrk_store_change_last(wrk_store_t *s, int64_t *seq)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_change_last);
    return st ? wrk__query_int(s, st, seq, "changes") : MC_EDB;
}

int wrk_store_change_each(wrk_store_t *s, int64_t after,
                          int (*fn)(void *arg, int64_t seq, enum wrk_change_kind kind, int64_t ref),
                          void *arg)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_change_each);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, after);
    int rc, ret = 0;
    while ((rc = wrk__step(s, st, "changes")) == WRK_DB_ROW) {
        ret =
            fn(arg, wrk_db_int(st, 0), (enum wrk_change_kind)wrk_db_int(st, 1), wrk_db_int(st, 2));
        if (ret)
            break;
    }
    wrk_db_reset(st);
    return ret ? ret : rc;
}

/* Reads the cursor and the latest change into *from and *to. */
static int read_cursor(wrk_store_t *s, int64_t *from, int64_t *to)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_cursor_get);
    if (!st)
        return MC_EDB;
    int rc = wrk__step(s, st, "change cursor");
    if (rc == WRK_DB_ROW) {
        *from = wrk_db_int(st, 0);
        *to = wrk_db_int(st, 1);
    }
    wrk_db_reset(st);
    return rc == WRK_DB_ROW ? 0 : rc < 0 ? rc : wrk__fail(s, "change cursor", MC_EDB);
}

typedef struct claim {
    int64_t from, to;
} claim_t;

static int claim(wrk_store_t *s, void *arg)
{
    claim_t *c = arg;
    int rc = wrk__run(s, &sql_cursor_lock, "lock change cursor");
    if (rc == 0)
        rc = read_cursor(s, &c->from, &c->to);
    if (rc || c->to <= c->from)
        return rc;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_cursor_set);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, c->to);
    return wrk__exec(s, st, "claim changes");
}

int wrk_store_change_claim(wrk_store_t *s, int64_t *from, int64_t *to)
{
    *from = *to = 0;
    claim_t c = {0, 0};
    /* Most calls find nothing new: find that out without writing. */
    if (!s->in_batch) {
        int rc = read_cursor(s, &c.from, &c.to);
        if (rc)
            return rc;
        if (c.to <= c.from) {
            *from = *to = c.from;
            return 0;
        }
    }
    int rc = wrk__in_batch(s, claim, &c);
    if (rc)
        return rc;
    *from = c.from;
    *to = c.to > c.from ? c.to : c.from;
    return 0;
}

int wrk_store_purge(wrk_store_t *s, int64_t now_ms, int64_t keep_ms)
{
    int rc = wrk_store_sessions_expire(s, now_ms, NULL);
    if (rc)
        return rc;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_change_purge);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, now_ms - keep_ms);
    return wrk__exec(s, st, "purge changes");
}

/* ---- Secrets ----------------------------------------------------------------- */

int wrk_store_secret(wrk_store_t *s, const char *name, const char *fresh, char *out, size_t size)
{
    if (!*fresh || strlen(fresh) >= size)
        return MC_EINVAL;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_secret_add);
    if (!st)
        return MC_EDB;
    wrk_db_bind_text(st, 1, name, strlen(name));
    wrk_db_bind_text(st, 2, fresh, strlen(fresh));
    int rc = wrk__exec(s, st, "add secret");
    if (rc)
        return rc;
    st = wrk__stmt(s, &sql_secret_get);
    if (!st)
        return MC_EDB;
    wrk_db_bind_text(st, 1, name, strlen(name));
    rc = wrk__step(s, st, "secret");
    if (rc == WRK_DB_ROW) {
        size_t len;
        wrk_db_text(st, 0, &len);
        rc = len >= size ? MC_ETOOBIG : 0;
        if (rc == 0)
            wrk__copy_text(st, 0, out, size);
    } else if (rc == WRK_DB_DONE) {
        rc = wrk__fail(s, "secret", MC_EDB);
    }
    wrk_db_reset(st);
    return rc;
}

/* ---- Login failures ------------------------------------------------------ */

/* Binds key's kind, key, now_ms and window_ms to q's ?1 to ?4. */
static wrk_db_stmt_t *failure_stmt(wrk_store_t *s, const wrk_sql_t *q, enum wrk_limit_kind kind,
                                   const char *key, int64_t now_ms, int64_t window_ms)
{
    wrk_db_stmt_t *st = wrk__stmt(s, q);
    if (!st)
        return NULL;
    wrk_db_bind_int(st, 1, (int64_t)kind);
    wrk_db_bind_text(st, 2, key, strlen(key));
    wrk_db_bind_int(st, 3, now_ms);
    wrk_db_bind_int(st, 4, window_ms);
    return st;
}

int wrk_store_login_failure_add(wrk_store_t *s, enum wrk_limit_kind kind, const char *key,
                                int64_t now_ms, int64_t window_ms, long *count)
{
    wrk_db_stmt_t *st = failure_stmt(s, &sql_failure_add, kind, key, now_ms, window_ms);
    if (!st)
        return MC_EDB;
    int64_t n;
    int rc = wrk__query_int(s, st, &n, "count failure");
    if (rc == 0 && count)
        *count = (long)n;
    return rc;
}

int wrk_store_login_failures(wrk_store_t *s, enum wrk_limit_kind kind, const char *key,
                             int64_t now_ms, int64_t window_ms, long *count, int64_t *last_ms)
{
    *count = 0;
    if (last_ms)
        *last_ms = 0;
    wrk_db_stmt_t *st = failure_stmt(s, &sql_failures, kind, key, now_ms, window_ms);
    if (!st)
        return MC_EDB;
    int rc = wrk__step(s, st, "failures");
    if (rc == WRK_DB_ROW) { /* none in the window: no row */
        *count = (long)wrk_db_int(st, 0);
        if (last_ms)
            *last_ms = wrk_db_int(st, 1);
    }
    wrk_db_reset(st);
    return rc < 0 ? rc : 0;
}

int wrk_store_login_failure_reset(wrk_store_t *s, enum wrk_limit_kind kind, const char *key)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_failure_reset);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, (int64_t)kind);
    wrk_db_bind_text(st, 2, key, strlen(key));
    return wrk__exec(s, st, "reset failures");
}

int wrk_store_login_failures_purge(wrk_store_t *s, int64_t now_ms, int64_t window_ms, long *purged)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_failure_purge);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, now_ms);
    wrk_db_bind_int(st, 2, window_ms);
    int rc = wrk__exec(s, st, "purge failures");
    if (purged)
        *purged = rc == 0 ? (long)s->drv->changes(s->db) : 0;
    return rc;
}
