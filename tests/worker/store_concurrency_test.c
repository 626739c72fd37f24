/* Several connections to one store at once, as workers on several hosts
 * are: on sqlite and on PostgreSQL. Each test races threads, each with a
 * connection of its own, and checks what must hold whatever the
 * interleaving. */
#include "common/error.h"
#include "common/log.h"
#include "tests/support/store_fixture.h"
#include "worker/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef ts_store_t fixture_t;

#define THREADS 4

/* ---- Writers ------------------------------------------------------------- */

struct writer {
    const char *target;
    int64_t room, user;
    int failures;
    char prefix;
};

#define PER_WRITER 300

static void *write_messages(void *arg)
{
    struct writer *w = arg;
    wrk_store_t *s;
    if (wrk_store_open(&s, w->target, NULL)) {
        w->failures = PER_WRITER;
        return NULL;
    }
    for (int i = 0; i < PER_WRITER; i++) {
        char cid[32];
        snprintf(cid, sizeof(cid), "%c-%d", w->prefix, i);
        wrk_message_t m;
        int dup;
        if (wrk_store_message_add(s, w->room, w->user, cid, strlen(cid), cid, i, &m, &dup) || dup)
            w->failures++;
        wrk_message_clear(&m);
        /* Some writes are batches, to mix lock patterns. */
        if (i % 50 == 0) {
            if (wrk_store_batch_begin(s) ||
                wrk_store_login_failure_add(s, WRK_LIMIT_ADDR, "x", i, 1000, NULL) ||
                wrk_store_batch_end(s, 1))
                w->failures++;
        }
    }
    wrk_store_close(s);
    return NULL;
}

static void two_connections_writing_at_once_lose_nothing(void **state)
{
    fixture_t *f = *state;
    struct writer a = {f->target, f->room, f->ann, 0, 'a'};
    struct writer b = {f->target, f->room, f->bob, 0, 'b'};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, write_messages, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, write_messages, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.failures, 0);
    assert_int_equal(b.failures, 0);
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(f->s, f->room, 4 * PER_WRITER, &l), 0);
    assert_int_equal(l.n, 2 * PER_WRITER);
    assert_int_equal(l.truncated, 0);
    for (size_t i = 1; i < l.n; i++)
        assert_true(l.items[i].id > l.items[i - 1].id);
    wrk_message_list_clear(&l);
}

/* ---- Migrations ------------------------------------------------------------ */

struct migrator {
    const char *target;
    pthread_barrier_t *start;
    int rc, from;
};

static void *migrate(void *arg)
{
    struct migrator *m = arg;
    wrk_store_t *s = NULL;
    m->rc = wrk_store_open(&s, m->target, NULL);
    pthread_barrier_wait(m->start);
    if (m->rc == 0)
        m->rc = wrk_store_migrate(s, &m->from, NULL);
    wrk_store_close(s);
    return NULL;
}

/* Workers that start together all migrate at once: one does the work, the
 * others find it done, and nobody fails. */
static void several_connections_migrate_a_fresh_database_at_once(void **state)
{
    fixture_t *f = *state;
    char target[192];
    ts_store_fresh(f, 0, target, sizeof(target));
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    struct migrator m[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        m[i] = (struct migrator){target, &start, -1, -1};
        assert_int_equal(pthread_create(&t[i], NULL, migrate, &m[i]), 0);
    }
    int fresh = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(m[i].rc, 0);
        fresh += m[i].from == 0;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(fresh, 1);
    wrk_store_t *s;
    int v = 0;
    assert_int_equal(wrk_store_open(&s, target, NULL), 0);
    assert_int_equal(wrk_store_version(s, &v), 0);
    assert_int_equal(v, WRK_STORE_SCHEMA_VERSION);
    assert_int_equal(wrk_store_user_add(s, "ann", "$h", 0, NULL), 0);
    wrk_store_close(s);
}

/* ---- Presence -------------------------------------------------------------- */

#define ROUNDS 25

struct visitor {
    const char *target;
    int64_t room, user;
    int index;
    pthread_barrier_t *step;
    int firsts[ROUNDS], departures[ROUNDS];
    int failures;
};

/* Each round, every thread joins the room with a connection of its own, all
 * as one user, then all leave. */
static void *visit(void *arg)
{
    struct visitor *v = arg;
    wrk_store_t *s;
    if (wrk_store_open(&s, v->target, NULL))
        v->failures++;
    char channel[32];
    snprintf(channel, sizeof(channel), "ifc.%d!1", v->index);
    for (int r = 0; r < ROUNDS; r++) {
        pthread_barrier_wait(v->step);
        if (!v->failures &&
            wrk_store_presence_join(s, channel, v->room, v->user, &v->firsts[r]) != 0)
            v->failures++;
        pthread_barrier_wait(v->step);
        wrk_presence_list_t gone = {0};
        if (!v->failures && wrk_store_presence_leave(s, channel, 0, v->room, &gone) != 0)
            v->failures++;
        v->departures[r] = (int)gone.n;
        wrk_presence_list_clear(&gone);
    }
    wrk_store_close(s);
    return NULL;
}

/* However the joins and leaves of one user's connections interleave, the
 * room hears of one arrival and one departure per round. */
static void presence_counts_a_user_once_across_connections(void **state)
{
    fixture_t *f = *state;
    pthread_barrier_t step;
    pthread_barrier_init(&step, NULL, THREADS);
    struct visitor *v = calloc(THREADS, sizeof(*v));
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        v[i] = (struct visitor){
            .target = f->target, .room = f->room, .user = f->ann, .index = i, .step = &step};
        assert_int_equal(pthread_create(&t[i], NULL, visit, &v[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&step);
    for (int r = 0; r < ROUNDS; r++) {
        int firsts = 0, departures = 0;
        for (int i = 0; i < THREADS; i++) {
            assert_int_equal(v[i].failures, 0);
            firsts += v[i].firsts[r];
            departures += v[i].departures[r];
        }
        assert_int_equal(firsts, 1);
        assert_int_equal(departures, 1);
    }
    free(v);
}

/* ---- The change log ---------------------------------------------------------- */

static void each_change_is_claimed_once(void **state)
{
    fixture_t *f = *state;
    wrk_store_t *other;
    assert_int_equal(wrk_store_open(&other, f->target, NULL), 0);
    int64_t from, to;
    assert_int_equal(wrk_store_change_claim(f->s, &from, &to), 0);
    assert_true(to > from); /* the fixture's room */
    assert_int_equal(wrk_store_change_claim(other, &from, &to), 0);
    assert_int_equal(to, from);
    assert_int_equal(wrk_store_room_rename(f->s, f->room, "New"), 0);
    assert_int_equal(wrk_store_change_claim(other, &from, &to), 0);
    assert_int_equal(to, from + 1);
    int64_t from2, to2;
    assert_int_equal(wrk_store_change_claim(f->s, &from2, &to2), 0);
    assert_int_equal(from2, to2);
    assert_int_equal(from2, to);
    wrk_store_close(other);
}

#define CHANGERS 2
#define CLAIMERS 2
#define CHANGES_EACH 150
#define SEQ_MAX 4096

struct log_race {
    const char *target;
    pthread_mutex_t lock;
    int changers_left; /* under lock */
    int seen[SEQ_MAX]; /* under lock: claims that saw each change */
    int failures;      /* under lock */
};

static void count_failure(struct log_race *r)
{
    pthread_mutex_lock(&r->lock);
    r->failures++;
    pthread_mutex_unlock(&r->lock);
}

/* Renames a room of its own, half the time in a batch that does more work
 * before its commit: a change numbered early may commit late. */
static void *change(void *arg)
{
    struct log_race *r = arg;
    wrk_store_t *s;
    int64_t room = 0;
    int ok =
        wrk_store_open(&s, r->target, NULL) == 0 && wrk_store_room_add(s, "mine", 0, &room) == 0;
    for (int i = 0; ok && i < CHANGES_EACH; i++) {
        int batch = i % 2;
        ok = (!batch || wrk_store_batch_begin(s) == 0) &&
             wrk_store_room_rename(s, room, batch ? "batch" : "alone") == 0;
        for (int k = 0; ok && batch && k < 5; k++)
            ok = wrk_store_login_failure_add(s, WRK_LIMIT_ADDR, "x", k, 1000, NULL) == 0;
        if (ok && batch)
            ok = wrk_store_batch_end(s, 1) == 0;
    }
    if (!ok)
        count_failure(r);
    wrk_store_close(s);
    pthread_mutex_lock(&r->lock);
    r->changers_left--;
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

struct claimed {
    struct log_race *r;
    int64_t to;
};

static int note_seen(void *arg, int64_t seq, enum wrk_change_kind kind, int64_t ref)
{
    struct claimed *c = arg;
    (void)kind, (void)ref;
    if (seq > c->to)
        return 0;
    if (seq < 1 || seq >= SEQ_MAX)
        return -1;
    c->r->seen[seq]++;
    return 0;
}

/* Claims, and reads what it claimed, until the changers are done and a
 * last claim found nothing more. */
static void *claim(void *arg)
{
    struct log_race *r = arg;
    wrk_store_t *s;
    int ok = wrk_store_open(&s, r->target, NULL) == 0;
    for (int idle_after_end = 0; ok && idle_after_end < 2;) {
        pthread_mutex_lock(&r->lock);
        int ended = r->changers_left == 0;
        pthread_mutex_unlock(&r->lock);
        int64_t from, to;
        ok = wrk_store_change_claim(s, &from, &to) == 0;
        if (ok && to > from) {
            struct claimed c = {r, to};
            pthread_mutex_lock(&r->lock);
            ok = wrk_store_change_each(s, from, note_seen, &c) == 0;
            pthread_mutex_unlock(&r->lock);
        } else if (ok && ended) {
            idle_after_end++;
        }
    }
    if (!ok)
        count_failure(r);
    wrk_store_close(s);
    return NULL;
}

static int note_logged(void *arg, int64_t seq, enum wrk_change_kind kind, int64_t ref)
{
    int *logged = arg;
    (void)kind, (void)ref;
    if (seq < 1 || seq >= SEQ_MAX)
        return -1;
    logged[seq] = 1;
    return 0;
}

/* Workers claiming while others change rooms: every change logged is seen
 * by exactly one claim, even one that committed after later-numbered ones. */
static void every_change_is_seen_by_one_claim_while_changes_commit(void **state)
{
    fixture_t *f = *state;
    int64_t from, to;
    assert_int_equal(wrk_store_change_claim(f->s, &from, &to), 0); /* the fixture's */
    static struct log_race r;
    memset(&r, 0, sizeof(r));
    r.target = f->target;
    r.changers_left = CHANGERS;
    pthread_mutex_init(&r.lock, NULL);
    pthread_t t[CHANGERS + CLAIMERS];
    for (int i = 0; i < CHANGERS + CLAIMERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, i < CHANGERS ? change : claim, &r), 0);
    for (int i = 0; i < CHANGERS + CLAIMERS; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_destroy(&r.lock);
    assert_int_equal(r.failures, 0);
    static int logged[SEQ_MAX];
    memset(logged, 0, sizeof(logged));
    assert_int_equal(wrk_store_change_each(f->s, to, note_logged, logged), 0);
    int changes = 0;
    for (int seq = 1; seq < SEQ_MAX; seq++) {
        if (!logged[seq])
            continue;
        changes++;
        assert_int_equal(r.seen[seq], 1);
    }
    assert_int_equal(changes, CHANGERS * (CHANGES_EACH + 1)); /* and their rooms */
}

/* ---- Login failures ---------------------------------------------------------- */

#define FAILURES_EACH 50

static void *fail_logins(void *arg)
{
    const char *target = arg;
    wrk_store_t *s;
    if (wrk_store_open(&s, target, NULL))
        return (void *)1;
    int failures = 0;
    for (int i = 0; i < FAILURES_EACH; i++)
        failures +=
            wrk_store_login_failure_add(s, WRK_LIMIT_USER, "ann", 1000 + i, 60000, NULL) != 0;
    wrk_store_close(s);
    return failures ? (void *)1 : NULL;
}

static void login_failures_add_up_across_connections(void **state)
{
    fixture_t *f = *state;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, fail_logins, f->target), 0);
    for (int i = 0; i < THREADS; i++) {
        void *failed;
        pthread_join(t[i], &failed);
        assert_null(failed);
    }
    long n;
    assert_int_equal(wrk_store_login_failures(f->s, WRK_LIMIT_USER, "ann", 2000, 60000, &n, NULL),
                     0);
    assert_int_equal(n, THREADS * FAILURES_EACH);
}

/* ---- Lost connections (PostgreSQL) ------------------------------------------- */

/* Ends the server side of every store connection to the test's database,
 * as a restart of the server or an idle timeout would. */
static void end_connections(fixture_t *f)
{
    assert_int_equal(ts_store_sql(f->target, "SELECT pg_terminate_backend(pid, 5000) "
                                             "FROM pg_stat_activity "
                                             "WHERE application_name = 'multichat' "
                                             "AND datname = current_database()"),
                     0);
}

static void a_connection_the_server_closed_is_opened_again(void **state)
{
    fixture_t *f = *state;
    wrk_user_t u;
    end_connections(f);
    assert_int_equal(wrk_store_user_by_name(f->s, "ann", &u), 0);
    assert_int_equal(u.id, f->ann);
    /* A batch open on the lost connection is lost with it, and says so. */
    assert_int_equal(wrk_store_batch_begin(f->s), 0);
    assert_int_equal(wrk_store_user_add(f->s, "carl", "$h", 0, NULL), 0);
    end_connections(f);
    assert_int_not_equal(wrk_store_user_add(f->s, "dora", "$h", 0, NULL), 0);
    assert_int_equal(wrk_store_batch_end(f->s, 1), MC_EDB);
    assert_int_equal(wrk_store_user_by_name(f->s, "carl", &u), MC_ENOTFOUND);
    assert_int_equal(wrk_store_user_by_name(f->s, "dora", &u), MC_ENOTFOUND);
    assert_int_equal(wrk_store_user_add(f->s, "carl", "$h", 0, NULL), 0);
}

/* ---- Order locks (PostgreSQL) ------------------------------------------------ */

static void order_locks_hold_one_room_across_connections(void **state)
{
    fixture_t *f = *state;
    wrk_store_t *a, *b;
    assert_int_equal(wrk_store_open(&a, f->target, NULL), 0);
    assert_int_equal(wrk_store_open(&b, f->target, NULL), 0);
    assert_true(wrk_store_has_order_locks(a));
    assert_int_equal(wrk_store_order_lock(a, 1, 1), 0);
    assert_int_equal(wrk_store_order_lock(b, 1, 0), MC_EAGAIN);
    /* Other rooms are not held up, nor room 1 by its neighbour's key. */
    assert_int_equal(wrk_store_order_lock(b, 2, 1), 0);
    assert_int_equal(wrk_store_order_lock(a, 2, 0), MC_EAGAIN);
    assert_int_equal(wrk_store_order_lock(a, 3, 0), 0);
    /* Batches come and go; the locks stay until released. */
    assert_int_equal(wrk_store_batch_begin(a), 0);
    assert_int_equal(wrk_store_batch_end(a, 0), 0);
    assert_int_equal(wrk_store_order_lock(b, 1, 0), MC_EAGAIN);
    assert_int_equal(wrk_store_order_unlock(a, 3), 0);
    assert_int_equal(wrk_store_order_lock(b, 3, 0), 0);
    assert_int_equal(wrk_store_order_unlock_all(a), 0);
    assert_int_equal(wrk_store_order_lock(b, 1, 0), 0);
    /* A connection that ends frees its locks (once its server process has
     * gone: wait for them). */
    wrk_store_close(b);
    assert_int_equal(wrk_store_order_lock(a, 1, 1), 0);
    assert_int_equal(wrk_store_order_lock(a, 2, 1), 0);
    wrk_store_close(a);
}

/* Tries room's lock on s until it is granted, for at most 20 s. */
static int lock_within(wrk_store_t *s, int64_t room)
{
    for (int i = 0; i < 2000; i++) {
        int rc = wrk_store_order_lock(s, room, 0);
        if (rc != MC_EAGAIN)
            return rc;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL); /* polling a condition, bounded by the loop */
    }
    return MC_ETIMEDOUT;
}

/* Connections that hold locks and then stop answering, one inside a batch
 * and one outside: the server ends them once idle past their timeout, and
 * the locks go to the others. */
static void a_connection_that_stops_answering_loses_its_order_locks(void **state)
{
    fixture_t *f = *state;
    wrk_store_options_t opts = {.idle_timeout_ms = 500};
    wrk_store_t *idle, *in_batch, *other;
    assert_int_equal(wrk_store_open(&idle, f->target, &opts), 0);
    assert_int_equal(wrk_store_open(&in_batch, f->target, &opts), 0);
    assert_int_equal(wrk_store_open(&other, f->target, NULL), 0);
    assert_int_equal(wrk_store_order_lock(idle, 1, 1), 0);
    assert_int_equal(wrk_store_order_lock(in_batch, 2, 1), 0);
    assert_int_equal(wrk_store_batch_begin(in_batch), 0);
    wrk_message_t m;
    assert_int_equal(
        wrk_store_message_add(in_batch, f->room, f->ann, "lost", 4, "c-lost", 1, &m, NULL), 0);
    wrk_message_clear(&m);
    assert_int_equal(wrk_store_order_lock(other, 1, 0), MC_EAGAIN);
    assert_int_equal(wrk_store_order_lock(other, 2, 0), MC_EAGAIN);
    assert_int_equal(lock_within(other, 1), 0);
    assert_int_equal(lock_within(other, 2), 0);
    /* The batch was undone with its connection, and says so; the next call
     * goes through a new connection. */
    assert_int_equal(wrk_store_batch_end(in_batch, 1), MC_EDB);
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(in_batch, f->room, 10, &l), 0);
    assert_int_equal(l.n, 0);
    wrk_message_list_clear(&l);
    assert_int_equal(wrk_store_order_lock(idle, 1, 0), MC_EAGAIN);
    wrk_store_close(idle);
    wrk_store_close(in_batch);
    wrk_store_close(other);
}

/* A healthy connection that keeps talking keeps its locks. */
static void a_connection_that_keeps_talking_keeps_its_order_locks(void **state)
{
    fixture_t *f = *state;
    wrk_store_options_t opts = {.idle_timeout_ms = 1000};
    wrk_store_t *busy, *other;
    assert_int_equal(wrk_store_open(&busy, f->target, &opts), 0);
    assert_int_equal(wrk_store_open(&other, f->target, NULL), 0);
    assert_int_equal(wrk_store_order_lock(busy, 1, 1), 0);
    int64_t seq;
    for (int i = 0; i < 25; i++) { /* 2.5 s, past two timeouts, never idle for one */
        assert_int_equal(wrk_store_change_last(busy, &seq), 0);
        assert_int_equal(wrk_store_order_lock(other, 1, 0), MC_EAGAIN);
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL); /* the pause between a worker's calls */
    }
    wrk_store_close(busy);
    wrk_store_close(other);
}

int main(void)
{
    mc_log_init("store_concurrency_test", MC_LOG_ERROR);
    const struct CMUnitTest both[] = {
        TS_STORE_TEST(two_connections_writing_at_once_lose_nothing),
        TS_STORE_TEST(several_connections_migrate_a_fresh_database_at_once),
        TS_STORE_TEST(presence_counts_a_user_once_across_connections),
        TS_STORE_TEST(each_change_is_claimed_once),
        TS_STORE_TEST(every_change_is_seen_by_one_claim_while_changes_commit),
        TS_STORE_TEST(login_failures_add_up_across_connections),
    };
    const struct CMUnitTest postgresql_only[] = {
        TS_STORE_TEST(a_connection_the_server_closed_is_opened_again),
        TS_STORE_TEST(order_locks_hold_one_room_across_connections),
        TS_STORE_TEST(a_connection_that_stops_answering_loses_its_order_locks),
        TS_STORE_TEST(a_connection_that_keeps_talking_keeps_its_order_locks),
    };
    int failed = ts_store_run_both(both, sizeof(both) / sizeof(both[0]));
    failed += ts_store_run_postgresql(postgresql_only,
                                      sizeof(postgresql_only) / sizeof(postgresql_only[0]));
    return failed;
}
