/*
 * worker/store_impl.h: what the store's own files share, and nothing else
 * may include: the connection, its statement cache, and the helpers with
 * which worker/store_*.c write each query once for every backend.
 *
 * A query is a wrk_sql_t: one text for every backend, with ?N parameters,
 * and where a backend spells it otherwise, that backend's own text (an
 * empty own text: the backend has nothing to run there, say a lock that
 * its transactions give already). Statements are prepared on first use and
 * kept, per connection, until it closes or migrates.
 */
#ifndef MC_WORKER_STORE_IMPL_H
#define MC_WORKER_STORE_IMPL_H

#include "worker/store.h"
#include "worker/store_db.h"

typedef struct wrk_sql {
    const char *text;   /* every backend, unless one has its own below */
    const char *sqlite; /* sqlite's own text, or NULL */
    const char *pg;     /* PostgreSQL's own text, or NULL */
} wrk_sql_t;

#define WRK_STORE_CACHE_SLOTS 128 /* a power of two, well above the number of queries */
/* Runs one wrk__queued_batch may queue: a batch of messages queues its
 * BEGIN and COMMIT, two per room and two per message. */
#define WRK_STORE_QUEUE_MAX (2 + 2 * WRK_STORE_LOCK_ROOMS_MAX + 2 * WRK_STORE_MESSAGES_MAX)

struct wrk_store {
    const wrk_db_driver_t *drv;
    wrk_db_t *db;
    int in_batch;
    char errmsg[256];
    /* the runs of the wrk__queued_batch under way, and its first failure */
    struct wrk_queued_run {
        wrk_store_t *s;
        wrk_db_done_fn done;
        void *arg;
    } runs[WRK_STORE_QUEUE_MAX];
    size_t nruns;
    int run_failed;
    struct wrk_cached {
        const wrk_sql_t *q;
        wrk_db_stmt_t *st;
    } cache[WRK_STORE_CACHE_SLOTS];
};

/* The text of q for this store's backend ("" when it has nothing to run). */
const char *wrk__sql_text(const wrk_store_t *s, const wrk_sql_t *q);

/* The prepared statement of q, reset and with no bindings, or NULL (errmsg
 * says why). q must have text for this backend. */
wrk_db_stmt_t *wrk__stmt(wrk_store_t *s, const wrk_sql_t *q);

/* Finalizes every cached statement (after the schema changed). */
void wrk__forget_statements(wrk_store_t *s);

/* Records in errmsg that `what` failed with rc and returns rc. */
int wrk__fail(wrk_store_t *s, const char *what, int rc);

/* Steps st; a failure is recorded as wrk__fail(what). Returns WRK_DB_ROW,
 * WRK_DB_DONE or a negative code. */
int wrk__step(wrk_store_t *s, wrk_db_stmt_t *st, const char *what);

/* Runs st to its end and resets it: for statements whose rows, if any, are
 * not read. Returns 0 or a negative code. */
int wrk__exec(wrk_store_t *s, wrk_db_stmt_t *st, const char *what);

/* wrk__exec, and MC_ENOTFOUND when it changed no row. */
int wrk__update_one(wrk_store_t *s, wrk_db_stmt_t *st, const char *what);

/* Runs q (?1 a row's id, ?2 a flag) with the flag on (1) or off (0):
 * MC_ENOTFOUND when there is no such row. */
int wrk__set_flag(wrk_store_t *s, const wrk_sql_t *q, int64_t id, int on, const char *what);

/* Runs a query whose parameters are bound and stores its first column of
 * its one row in *out (0 without a row: MC_ENOTFOUND then). Resets st. */
int wrk__query_int(wrk_store_t *s, wrk_db_stmt_t *st, int64_t *out, const char *what);

/* Prepares and runs q, which takes no parameters and whose rows are not
 * read; does nothing where the backend's text for it is empty. */
int wrk__run(wrk_store_t *s, const wrk_sql_t *q, const char *what);

/* Copies column col as text into dst[size], cut to fit, NUL-terminated. */
void wrk__copy_text(wrk_db_stmt_t *st, int col, char *dst, size_t size);

/* A malloc'd, NUL-terminated copy of column col, its length in *len; NULL
 * when out of memory. */
char *wrk__dup_text(wrk_db_stmt_t *st, int col, size_t *len);

/* Runs fn(s, arg) in a batch of its own unless one is open already. A batch
 * of its own that the database undid (MC_EAGAIN) runs again. */
int wrk__in_batch(wrk_store_t *s, int (*fn)(wrk_store_t *s, void *arg), void *arg);

/* Queues a run of st, as the driver's queue does (worker/store_db.h), in
 * the batch of wrk__queued_batch: only fn there calls it. Returns 0 or
 * MC_ENOMEM / MC_ETOOBIG (past WRK_STORE_QUEUE_MAX runs). */
int wrk__queue(wrk_store_t *s, wrk_db_stmt_t *st, wrk_db_done_fn done, void *arg);

/* Runs, in one transaction of their own and (PostgreSQL) one round trip,
 * the runs that fn(s, arg) queues with wrk__queue: when one fails, nothing
 * of them is kept. Returns 0 once they are committed, or the first failure
 * (errmsg says why); each run's done is told its own result either way. A
 * transaction the database undid to break a deadlock runs again, fn and
 * all. Not inside a batch (MC_EINVAL). */
int wrk__queued_batch(wrk_store_t *s, int (*fn)(wrk_store_t *s, void *arg), void *arg);

/* Reads a message (store_message_row.c) from the columns of st: id,
 * room_id, user_id, username, body, created, edited, deleted. Returns 0 or
 * MC_ENOMEM. */
int wrk__read_message(wrk_db_stmt_t *st, wrk_message_t *m);

/* Publishing (store_publishing.c): the marks a batch finds pending in
 * its rooms, read by a queued run; the caller keeps marks until the
 * flush, then finds them there (and the run's result in rc). */
typedef struct wrk__marks {
    struct wrk__mark {
        int64_t room, after_id;
        char *senders; /* malloc'd */
    } * v;
    size_t n;
    int rc;
} wrk__marks_t;
int wrk__queue_pending(wrk_store_t *s, const int64_t *rooms, size_t n, wrk__marks_t *marks);
void wrk__marks_clear(wrk__marks_t *marks);
/* The messages marks left unpublished (at most WRK_STORE_SINCE_MAX, oldest
 * first), once added[0..n) (which stored after them) are stored. */
int wrk__unpublished_of(wrk_store_t *s, const wrk__marks_t *marks, const wrk_new_message_t *added,
                        size_t n, wrk_unpublished_list_t *out);
/* Queues the marking of the rooms of msgs[0..n), with their senders (those
 * with a client_id and a sender: only they can be told apart). */
int wrk__queue_mark(wrk_store_t *s, const wrk_new_message_t *msgs, size_t n);

/* Puts the items of an array of n elements of size (at most
 * WRK_REVERSE_MAX) bytes in reverse order (queries that read newest first
 * return oldest first). */
#define WRK_REVERSE_MAX 512
void wrk__reverse(void *items, size_t n, size_t size);

#endif
