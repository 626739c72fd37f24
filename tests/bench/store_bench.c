/*
 * tests/bench/store_bench.c: bin/store-bench, the store's own speed, with
 * no Redis and no sockets: what a worker asks of its database, repeated.
 *
 *   store-bench TARGET [SCALE]
 *
 * TARGET is what CHAT_DB takes: a sqlite file (created; use a fresh one) or
 * an empty PostgreSQL database. Prints one line per operation:
 *
 *   store-bench backend=sqlite op=send_batch32 n=20000 seconds=0.41 per_s=48780 us_each=20.5
 *       cpu_us_each=19.8
 *
 * us_each is wall time per operation; cpu_us_each the CPU time this process
 * spent on it (on a shared machine the steadier figure; it leaves out the
 * time a PostgreSQL server spends).
 * The operations: chat messages stored 32 to a batch, as a busy worker's
 * outbox stores them (send_batch32), and one by one (send_single); the last
 * 50 messages of a room, as a join reads them (history50); a session's
 * user, as every HTTP request and connect reads it (session_user); a
 * connection joining and leaving a room (presence); last, messages stored
 * 32 at once (wrk_store_messages_add: on PostgreSQL one round trip for the
 * 32) and their rooms' publishing marks cleared (worker/store.h,
 * Publishing; send_together32), and the same holding the rooms' order
 * locks from before to after the commit and reading what is left
 * unpublished, as the outbox does (send_together32_ordered;
 * worker/order.h: PostgreSQL's advisory locks, or sqlite's fcntl locks on
 * a file beside it). SCALE (default 1) multiplies every count.
 */
#include "common/clock.h"
#include "common/log.h"
#include "worker/order.h"
#include "worker/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROOMS 10

typedef struct mark {
    int64_t wall_ms;
    double cpu_s;
} mark_t;

static mark_t now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (mark_t){mc_mono_ms(), (double)ts.tv_sec + (double)ts.tv_nsec / 1e9};
}

static void report(const char *backend, const char *op, long n, mark_t start)
{
    mark_t end = now();
    double seconds = (double)(end.wall_ms - start.wall_ms) / 1000.0;
    if (seconds <= 0)
        seconds = 0.001;
    printf("store-bench backend=%s op=%s n=%ld seconds=%.2f per_s=%.0f us_each=%.1f "
           "cpu_us_each=%.1f\n",
           backend, op, n, seconds, (double)n / seconds, seconds * 1e6 / (double)n,
           (end.cpu_s - start.cpu_s) * 1e6 / (double)n);
    fflush(stdout);
}

static void fail(wrk_store_t *s, const char *what)
{
    fprintf(stderr, "store-bench: %s: %s\n", what, s ? wrk_store_errmsg(s) : "cannot open");
    exit(1);
}

typedef struct text {
    char body[64], client_id[32];
} text_t;

static void text_of(long i, text_t *t)
{
    snprintf(t->body, sizeof(t->body), "message number %ld of the benchmark", i);
    snprintf(t->client_id, sizeof(t->client_id), "b-%ld", i);
}

static int send_one(wrk_store_t *s, const int64_t *rooms, int64_t user, long i)
{
    text_t t;
    text_of(i, &t);
    const char *body = t.body, *client_id = t.client_id;
    wrk_message_t m;
    int rc = wrk_store_message_add(s, rooms[i % ROOMS], user, body, strlen(body), client_id,
                                   mc_now_ms(), &m, NULL);
    wrk_message_clear(&m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: store-bench TARGET [SCALE]\n");
        return 2;
    }
    long scale = argc == 3 ? atol(argv[2]) : 1;
    if (scale < 1)
        scale = 1;
    mc_log_init("store-bench", MC_LOG_WARN);
    const char *backend = strstr(argv[1], "://") || strchr(argv[1], '=') ? "postgresql" : "sqlite";
    wrk_store_t *s;
    if (wrk_store_open(&s, argv[1], NULL))
        fail(NULL, argv[1]);
    if (wrk_store_migrate(s, NULL, NULL))
        fail(s, "migrate");
    int64_t user, rooms[ROOMS];
    if (wrk_store_user_add(s, "bench", "$hash", 0, &user))
        fail(s, "add user (use an empty database)");
    for (int r = 0; r < ROOMS; r++)
        if (wrk_store_room_add(s, "bench room", 0, &rooms[r]))
            fail(s, "add room");
    if (wrk_store_session_add(s, "bench-token", user, INT64_MAX))
        fail(s, "add session");

    long n = 20000 * scale, i = 0;
    mark_t t = now();
    while (i < n) {
        if (wrk_store_batch_begin(s))
            fail(s, "begin");
        for (int k = 0; k < 32 && i < n; k++, i++)
            if (send_one(s, rooms, user, i))
                fail(s, "send");
        if (wrk_store_batch_end(s, 1))
            fail(s, "commit");
    }
    report(backend, "send_batch32", n, t);

    long n1 = 2000 * scale;
    t = now();
    for (long k = 0; k < n1; k++, i++)
        if (send_one(s, rooms, user, i))
            fail(s, "send");
    report(backend, "send_single", n1, t);

    n = 5000 * scale;
    t = now();
    for (long k = 0; k < n; k++) {
        wrk_message_list_t l;
        if (wrk_store_messages_last(s, rooms[k % ROOMS], 50, &l) || l.n != 50)
            fail(s, "history");
        wrk_message_list_clear(&l);
    }
    report(backend, "history50", n, t);

    n = 20000 * scale;
    t = now();
    for (long k = 0; k < n; k++) {
        wrk_user_t u;
        if (wrk_store_session_user(s, "bench-token", mc_now_ms(), &u, NULL))
            fail(s, "session");
    }
    report(backend, "session_user", n, t);

    n = 2000 * scale;
    t = now();
    for (long k = 0; k < n; k++) {
        int first;
        wrk_presence_list_t gone;
        if (wrk_store_presence_join(s, "ifc.bench!1", rooms[k % ROOMS], user, &first) ||
            wrk_store_presence_leave(s, "ifc.bench!1", 0, rooms[k % ROOMS], &gone))
            fail(s, "presence");
        wrk_presence_list_clear(&gone);
    }
    report(backend, "presence", n, t);
    wrk_order_t order;
    if (wrk_order_open(&order, s, argv[1]))
        fail(s, "order locks");
    for (int ordered = 0; ordered < 2; ordered++) {
        n = 20000 * scale;
        t = now();
        for (long sent = 0; sent < n;) {
            wrk_new_message_t m[32];
            text_t texts[32];
            int64_t batch_rooms[32];
            size_t k = 0;
            for (; k < 32 && sent < n; k++, sent++, i++) {
                text_of(i, &texts[k]);
                batch_rooms[k] = rooms[i % ROOMS];
                m[k] = (wrk_new_message_t){.room_id = batch_rooms[k],
                                           .user_id = user,
                                           .body = texts[k].body,
                                           .body_len = strlen(texts[k].body),
                                           .client_id = texts[k].client_id,
                                           .sender = "ifc.bench!1"};
            }
            wrk_unpublished_list_t stale;
            if (ordered)
                wrk_order_lock_rooms(&order, batch_rooms, k);
            if (wrk_store_messages_add(s, m, k, mc_now_ms(), ordered ? &stale : NULL))
                fail(s, "send");
            for (size_t j = 0; j < k; j++) {
                if (m[j].rc)
                    fail(s, "send");
                wrk_message_clear(&m[j].stored);
            }
            if (ordered)
                wrk_unpublished_list_clear(&stale);
            if (wrk_store_published(s, batch_rooms, k))
                fail(s, "published");
            if (ordered)
                wrk_order_unlock_all(&order);
        }
        report(backend, ordered ? "send_together32_ordered" : "send_together32", n, t);
    }
    wrk_order_close(&order);

    wrk_store_close(s);
    return 0;
}
