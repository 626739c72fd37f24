/*
 * worker/service.c: chat-worker (worker/service.h): settings, the sink over
 * the channel layer, and the loop that feeds envelopes to the dispatch and
 * changes to the change poller.
 */
#include "worker/service.h"
#include "channel-layer/chl.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "common/wire.h"
#include "worker/app.h"
#include "worker/changes.h"
#include "worker/command.h"
#include "worker/dispatch.h"
#include "worker/scrape.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define POP_TIMEOUT_MS 1000
#define CHANGES_EVERY_MS 1000
#define REQUEUE_EVERY_MS 3000
#define REAP_EVERY_MS 2000
#define PURGE_EVERY_MS (3600 * 1000)
#define CHANGES_KEPT_MS (24 * 3600 * 1000)

static int sink_send(void *ctx, const char *channel, const char *data, size_t len)
{
    return chl_send(ctx, channel, data, len);
}

static int sink_group_add(void *ctx, const char *group, const char *channel, uint64_t seq)
{
    return chl_group_add_after(ctx, group, channel, seq);
}

static int sink_group_discard(void *ctx, const char *group, const char *channel)
{
    return chl_group_discard(ctx, group, channel);
}

static int sink_group_send(void *ctx, const wrk_outgoing_t *msgs, size_t n)
{
    chl_group_msg_t m[WRK_OUTBOX_MAX];
    if (n > WRK_OUTBOX_MAX)
        return MC_EINVAL;
    for (size_t i = 0; i < n; i++)
        m[i] =
            (chl_group_msg_t){msgs[i].group, msgs[i].once, msgs[i].data, msgs[i].len, msgs[i].seq};
    size_t dropped = 0;
    int rc = chl_group_send_many(ctx, m, n, &dropped);
    if (dropped)
        mc_warn("worker: %zu interface(s) missed a group message (full)", dropped);
    return rc;
}

static int sink_rate_take(void *ctx, const char *key, double rate, long burst, int *allowed,
                          long *refused)
{
    return chl_rate_take(ctx, key, rate, burst, allowed, refused);
}

static int on_process_gone(void *arg, const char *process)
{
    return wrk_changes_process_gone(arg, process);
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether one of the (blocked) stop signals is pending. */
static int stop_requested(const sigset_t *stops)
{
    sigset_t pending;
    if (sigpending(&pending))
        return 0;
    return (sigismember(stops, SIGINT) && sigismember(&pending, SIGINT) == 1) ||
           (sigismember(stops, SIGTERM) && sigismember(&pending, SIGTERM) == 1);
}

/* Envelopes popped at once: under load one round trip acknowledges a batch
 * and fetches the next; idle, a batch is the one envelope that came. */
#define BATCH 32

/* What the loop knows besides the app: the channel layer, the queue and
 * the metrics endpoint (NULL when off). */
typedef struct loop {
    wrk_app_t *app;
    chl_t *chl;
    const char *queue;
    wrk_scrape_t *scrape;
} loop_t;

/* Gives the metrics endpoint the app's counts, with what the channel layer
 * and the store counted, and in_flight envelopes in hand. */
static void publish(const loop_t *l, size_t in_flight)
{
    if (!l->scrape)
        return;
    wrk_metrics_t *m = &l->app->metrics;
    const chl_stats_t *cs = chl_stats(l->chl);
    wrk_store_stats_t ss;
    wrk_store_stats(l->app->store, &ss);
    m->in_flight = in_flight;
    m->redis_errors = cs->redis_errors;
    m->redis_reconnects = cs->reconnects;
    m->db_statements = ss.statements;
    m->db_busy_retries = ss.busy_retries;
    m->db_ns = ss.ns;
    wrk_scrape_publish(l->scrape, m);
}

static int run(const loop_t *l, long heartbeat_ttl_ms, const sigset_t *stops)
{
    wrk_app_t *app = l->app;
    chl_t *chl = l->chl;
    const char *queue = l->queue;
    int64_t next_changes = 0, next_requeue = 0, next_purge = 0, next_reap = 0;
    long backoff = 0;
    uint64_t handled = 0;
    chl_message_t done[BATCH], next[BATCH];
    size_t ndone = 0;
    while (!stop_requested(stops)) {
        int64_t now = mc_mono_ms();
        if (now >= next_requeue) {
            size_t n = 0;
            if (chl_requeue_dead(chl, &n) == 0 && n)
                mc_info("worker: requeued %zu envelope(s) of dead workers", n);
            app->metrics.requeued += n;
            next_requeue = now + REQUEUE_EVERY_MS;
        }
        if (now >= next_reap) {
            chl_reap_processes(chl, on_process_gone, app, NULL);
            next_reap = now + REAP_EVERY_MS;
        }
        if (now >= next_changes) {
            wrk_changes_poll(app);
            size_t depth = 0;
            if (l->scrape && chl_queue_length(chl, queue, &depth) == 0)
                app->metrics.queue_depth = depth;
            next_changes = now + CHANGES_EVERY_MS;
        }
        if (now >= next_purge) {
            /* Old changes, and the login failure counts of every username
             * ever tried once their window is over. */
            wrk_store_purge(app->store, mc_now_ms(), CHANGES_KEPT_MS);
            wrk_store_login_failures_purge(app->store, mc_now_ms(), app->cfg.login_window_s * 1000,
                                           NULL);
            next_purge = now + PURGE_EVERY_MS;
        }
        /* Every envelope handled is acknowledged, whatever the outcome: it
         * was answered (or cannot be), and a poison envelope must not come
         * back forever. */
        size_t n = 0;
        int rc = chl_queue_next(chl, queue, POP_TIMEOUT_MS, done, ndone, next, BATCH, &n);
        if (rc != MC_EREDIS) {
            for (size_t i = 0; i < ndone; i++)
                chl_message_free(&done[i]);
            ndone = 0;
        }
        publish(l, ndone + n);
        if (rc == MC_EAGAIN)
            continue;
        if (rc) {
            /* Redis is away: the channel layer reconnects; do not spin. The
             * handled envelopes are acknowledged by the next call. */
            backoff = backoff ? (backoff < 2000 ? backoff * 2 : 2000) : 50;
            mc_warn("worker: popping %s: %s; retrying in %ld ms", queue, mc_strerror(rc), backoff);
            pause_ms(backoff);
            continue;
        }
        backoff = 0;
        app->metrics.batches++;
        int64_t beat = mc_mono_ms();
        for (size_t i = 0; i < n; i++) {
            /* A slow batch (logins hash passwords) keeps its heartbeat, or
             * another worker would take it for dead and requeue it. */
            if (mc_mono_ms() - beat > heartbeat_ttl_ms / 4) {
                chl_requeue_dead(chl, NULL);
                beat = mc_mono_ms();
            }
            wrk_dispatch_envelope(app, next[i].data, next[i].len);
            done[ndone++] = next[i];
            handled++;
        }
        wrk_port_flush(&app->port); /* published before acknowledged */
        publish(l, ndone);
    }
    for (size_t i = 0; i < ndone; i++) {
        if (chl_ack(chl, &done[i]))
            mc_warn("worker: ack failed; the envelope may be handled again");
        chl_message_free(&done[i]);
    }
    mc_info("worker: stopping after %llu envelope(s)", (unsigned long long)handled);
    return 0;
}

int wrk_service_main(int argc, char **argv)
{
    wrk_settings_t cfg;
    wrk_settings_defaults(&cfg);
    chl_config_t chl_cfg;
    chl_config_defaults(&chl_cfg);
    chl_cfg.gather_us = 5000; /* tests/bench/cost.md: what it saves and costs */
    const char *db = "var/chat.sqlite3", *queue = MC_WORKER_QUEUE, *level_name = "info";
    const char *redis = "redis://127.0.0.1:6379", *metrics_listen = "";
    long process_list_mib = chl_cfg.process_bytes >> 20;
    mc_option_t opts[] = {
        {"--redis", "CHAT_REDIS_URL", MC_OPT_STRING, &redis, 0, 0,
         "Redis URL(s), comma-separated for shards; redis+sentinel://h1,h2,h3/NAME for a master "
         "watched by Redis Sentinel"},
        {"--db", "CHAT_DB", MC_OPT_STRING, &db, 0, 0,
         "the database: a sqlite file, or a postgresql:// URI or conninfo"},
        {"--db-idle-timeout", "CHAT_DB_IDLE_TIMEOUT_MS", MC_OPT_INT, &cfg.db_idle_timeout_ms, 0,
         3600000,
         "PostgreSQL: ms after which the server ends a worker's idle connection, freeing the "
         "rooms it holds in order (a stopped worker's); 0 never"},
        {"--queue", "CHAT_WORKER_QUEUE", MC_OPT_STRING, &queue, 0, 0, "the worker queue"},
        {"--heartbeat-ttl", "CHAT_HEARTBEAT_TTL_MS", MC_OPT_INT, &chl_cfg.heartbeat_ttl_ms, 300,
         3600000,
         "this worker counts as dead (another requeues the envelopes it held) once its "
         "heartbeat is this old, ms"},
        {"--web-root", "CHAT_WEB_ROOT", MC_OPT_STRING, &cfg.web_root, 0, 0,
         "folder holding templates/"},
        {"--message-max", "CHAT_MESSAGE_MAX", MC_OPT_INT, &cfg.message_max, 1, 1 << 20,
         "bytes of one chat message"},
        {"--notify-enter-leave", "CHAT_NOTIFY_ENTER_LEAVE", MC_OPT_BOOL, &cfg.notify_enter_leave, 0,
         0, "tell a room who enters and leaves"},
        {"--session-ttl", "CHAT_SESSION_TTL", MC_OPT_INT, &cfg.session_ttl_s, 60, 366L * 86400,
         "seconds a login lasts"},
        {"--https", "CHAT_HTTPS", MC_OPT_BOOL, &cfg.https, 0, 0,
         "every request came over TLS, whatever the interface says: cookies are Secure, "
         "__Host- named"},
        {"--login-max-failures", "CHAT_LOGIN_MAX_FAILURES", MC_OPT_INT, &cfg.login_max_failures, 1,
         1000000,
         "failed logins of one username from one address (or one browser with a device cookie) "
         "before they are refused for the window"},
        {"--login-address-max-failures", "CHAT_LOGIN_ADDRESS_MAX_FAILURES", MC_OPT_INT,
         &cfg.login_addr_max_failures, 1, 1000000,
         "failed logins from one address, any usernames, before it is refused for the window "
         "(browsers with a device cookie are not)"},
        {"--login-backoff-after", "CHAT_LOGIN_BACKOFF_AFTER", MC_OPT_INT, &cfg.login_backoff_after,
         1, 1000000,
         "failed logins of one username from browsers without its device cookie, after which "
         "each try waits 1 s, 2 s, 4 s... after the last"},
        {"--login-window", "CHAT_LOGIN_WINDOW", MC_OPT_INT, &cfg.login_window_s, 1, 86400,
         "seconds failed logins are counted (and a refusal lasts at most)"},
        {"--argon2-memory", "CHAT_ARGON2_MEMORY_KIB", MC_OPT_INT, &cfg.argon2_m, 8, 4194304,
         "argon2id memory cost of new hashes, KiB"},
        {"--argon2-time", "CHAT_ARGON2_TIME", MC_OPT_INT, &cfg.argon2_t, 1, 100, "argon2id passes"},
        {"--argon2-lanes", "CHAT_ARGON2_LANES", MC_OPT_INT, &cfg.argon2_p, 1, 64, "argon2id lanes"},
        {"--rate-messages", "CHAT_RATE_MESSAGES", MC_OPT_INT, &cfg.rate_messages, 0, 1000000,
         "messages (sends, edits, deletes, whispers) a user may send a second; 0: no limit"},
        {"--rate-burst", "CHAT_RATE_BURST", MC_OPT_INT, &cfg.rate_burst, 1, 1000000,
         "messages a user may send at once, above the rate"},
        {"--rate-close-after", "CHAT_RATE_CLOSE_AFTER", MC_OPT_INT, &cfg.rate_close_after, 0,
         1000000, "refusals in a row after which the socket is closed (1008); 0: never"},
        {"--rate-connects", "CHAT_RATE_CONNECTS", MC_OPT_INT, &cfg.rate_connects, 0, 1000000,
         "new WebSockets a user may open a second (a handshake without a valid session costs "
         "nothing); 0: no limit"},
        {"--rate-connect-burst", "CHAT_RATE_CONNECT_BURST", MC_OPT_INT, &cfg.rate_connect_burst, 1,
         1000000, "new WebSockets a user may open at once"},
        {"--rate-notices", "CHAT_RATE_NOTICES", MC_OPT_INT, &cfg.rate_notices, 0, 1000000,
         "enter and leave notices of one user in one room a minute; 0: no limit"},
        {"--rate-notice-burst", "CHAT_RATE_NOTICE_BURST", MC_OPT_INT, &cfg.rate_notice_burst, 1,
         1000000, "enter and leave notices of one user in one room at once, above the rate"},
        {"--socket-rooms", "CHAT_SOCKET_ROOMS", MC_OPT_INT, &cfg.socket_rooms, 1,
         WRK_SOCKET_ROOMS_MAX, "rooms one socket may be in (TOO_MANY_ROOMS past it)"},
        {"--metrics-listen", "CHAT_METRICS_LISTEN", MC_OPT_STRING, &metrics_listen, 0, 0,
         "address:port of the Prometheus metrics endpoint (GET /metrics); empty: none"},
        {"--process-list-mib", "CHAT_PROCESS_LIST_MIB", MC_OPT_INT, &process_list_mib, 1, 4096,
         "what the reply list of one interface may hold; a full one refuses more, MiB"},
        {"--gather-us", "CHAT_WORKER_GATHER_US", MC_OPT_INT, &chl_cfg.gather_us, 0, 1000000,
         "under load (envelopes come faster than one at a time), the next batch this many "
         "microseconds after the last: what comes meanwhile is handled together, for less "
         "work a message and up to this much more latency; 0: every batch at once"},
        {"--log-level", "CHAT_LOG_LEVEL", MC_OPT_STRING, &level_name, 0, 0,
         "debug, info, warn, error or off"},
    };
    size_t nopts = sizeof(opts) / sizeof(opts[0]);
    char err[256];
    int rc = mc_config_parse(opts, nopts, argc, argv, NULL, err, sizeof(err));
    if (rc == MC_CONFIG_HELP) {
        mc_config_usage(stdout, "chat-worker", "[options]", opts, nopts);
        return 0;
    }
    enum mc_log_level level = MC_LOG_INFO;
    if (rc == 0 && mc_log_parse_level(level_name, &level)) {
        snprintf(err, sizeof(err), "--log-level: unknown level \"%s\"", level_name);
        rc = MC_EINVAL;
    }
    if (rc == 0 && chl_cfg.gather_us / 1000 > chl_cfg.heartbeat_ttl_ms / 4) {
        /* It waits between pops, which keep its heartbeat fresh. */
        snprintf(err, sizeof(err), "--gather-us: at most a quarter of --heartbeat-ttl");
        rc = MC_EINVAL;
    }
    if (rc) {
        fprintf(stderr, "chat-worker: %s\n", err);
        return 2;
    }
    mc_log_init("chat-worker", level);

    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigprocmask(SIG_BLOCK, &stops, NULL);
    signal(SIGPIPE, SIG_IGN); /* a Redis gone from its Unix socket is an error, not a death */

    chl_cfg.redis_urls = redis;
    chl_cfg.process_bytes = process_list_mib << 20;
    chl_t *chl = NULL;
    rc = chl_open(&chl, &chl_cfg, NULL);
    if (rc) {
        mc_error("worker: cannot reach Redis at %s: %s", redis, mc_strerror(rc));
        return 1;
    }
    wrk_sink_t sink = {.ctx = chl,
                       .send = sink_send,
                       .group_add = sink_group_add,
                       .group_discard = sink_group_discard,
                       .group_send = sink_group_send,
                       .rate_take = sink_rate_take};
    wrk_app_t app;
    char db_name[256]; /* without a password */
    wrk_store_describe(db, db_name, sizeof(db_name));
    rc = wrk_app_init(&app, &cfg, db, &sink);
    if (rc) {
        mc_error("worker: cannot open the database %s: %s", db_name, mc_strerror(rc));
        chl_close(chl);
        return 1;
    }
    loop_t loop = {.app = &app, .chl = chl, .queue = queue};
    if (*metrics_listen) {
        rc = wrk_scrape_start(&loop.scrape, metrics_listen);
        if (rc) {
            mc_error("worker: cannot serve metrics on %s: %s", metrics_listen, mc_strerror(rc));
            wrk_app_close(&app);
            chl_close(chl);
            return 1;
        }
        snprintf(app.metrics.process, sizeof(app.metrics.process), "%s", chl_name(chl));
        publish(&loop, 0); /* scrapes before the first pop see who answers */
        mc_info("worker: metrics on http://%s/metrics", metrics_listen);
    }
    mc_info("worker: %s serving queue \"%s\" with %s", chl_name(chl), queue, db_name);
    rc = run(&loop, chl_cfg.heartbeat_ttl_ms, &stops);
    wrk_scrape_stop(loop.scrape);
    wrk_app_close(&app);
    chl_close(chl);
    return rc;
}
