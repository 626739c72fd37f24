/*
 * interface/main.c: bin/chat-interface, the stateless HTTP and WebSocket
 * front. Reads its settings (flags, CHAT_* variables, defaults), opens its
 * process channel on the channel layer, starts the server and runs the loop
 * until SIGTERM or SIGINT, then shuts down gracefully within a bound.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "channel-layer/chl.h"
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "interface/server.h"

typedef struct app {
    uv_loop_t *loop;
    ifc_server_t *srv;
    chl_proc_t *proc;
    uv_signal_t sigterm, sigint;
    int stopping;
} app_t;

/* ---- The bus over the channel layer ------------------------------------------ */

static int bus_push(void *ctx, const char *queue, const void *msg, size_t len,
                    void (*cb)(void *arg, int status), void *arg)
{
    app_t *app = ctx;
    return chl_proc_queue_push(app->proc, queue, msg, len, cb, arg);
}

static int bus_reply_channel(void *ctx, uint64_t conn, char *buf, size_t size)
{
    app_t *app = ctx;
    return chl_proc_channel(app->proc, conn, buf, size);
}

static int bus_conn_of(void *ctx, const char *channel, size_t len, uint64_t *conn)
{
    app_t *app = ctx;
    return chl_proc_conn_of(app->proc, channel, len, conn);
}

static void bus_forget(void *ctx, uint64_t conn)
{
    app_t *app = ctx;
    chl_proc_forget_conn(app->proc, conn);
}

static void bus_each_group(void *ctx, uint64_t conn, void (*fn)(void *, const char *), void *arg)
{
    app_t *app = ctx;
    chl_proc_each_group(app->proc, conn, fn, arg);
}

static void on_message(void *ctx, const uint64_t *conns, size_t n, const char *data, size_t len)
{
    app_t *app = ctx;
    if (app->srv)
        ifc_server_on_message(app->srv, conns, n, data, len);
}

static void on_group(void *ctx, uint64_t conn, const char *group)
{
    /* The channel layer keeps the local membership that each_group reports. */
    (void)ctx;
    (void)conn;
    (void)group;
}

static void on_redis_state(void *ctx, int up)
{
    app_t *app = ctx;
    if (app->srv)
        ifc_server_redis_state(app->srv, up, chl_proc_stats(app->proc)->failovers);
    mc_log(up ? MC_LOG_INFO : MC_LOG_WARN, "redis %s", up ? "up" : "down");
}

/* ---- Shutdown ----------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_drained(void *arg)
{
    app_t *app = arg;
    mc_info("connections closed, exiting");
    ifc_server_free(app->srv);
    app->srv = NULL;
    chl_proc_close(app->proc);
    app->proc = NULL;
    uv_close((uv_handle_t *)&app->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&app->sigint, on_handle_closed);
}

static void on_signal(uv_signal_t *s, int signum)
{
    app_t *app = s->data;
    if (app->stopping)
        return;
    app->stopping = 1;
    mc_info("signal %d: shutting down", signum);
    ifc_server_shutdown(app->srv, on_drained, app);
}

int main(int argc, char **argv)
{
    ifc_server_config_t cfg;
    ifc_server_config_defaults(&cfg);
    const char *redis = "redis://127.0.0.1:6379";
    const char *log_level = "info";
    const char *none = "";
    cfg.allowed_origins = none;
    cfg.echo_path = none;
    cfg.metrics_listen = none;
    cfg.trusted_proxies = none;
    long send_buffer_kib = cfg.send_buffer / 1024;
    chl_config_t ccfg;
    chl_config_defaults(&ccfg);
    mc_option_t opts[] = {
        {"--listen", "CHAT_LISTEN", MC_OPT_STRING, &cfg.listen, 0, 0, "address:port to listen on"},
        {"--redis", "CHAT_REDIS_URL", MC_OPT_STRING, &redis, 0, 0,
         "Redis URL(s), comma-separated to shard; redis+sentinel://h1,h2,h3/NAME for a master "
         "watched by Redis Sentinel"},
        {"--web", "CHAT_WEB_ROOT", MC_OPT_STRING, &cfg.web_root, 0, 0, "web root for /static/"},
        {"--log-level", "CHAT_LOG_LEVEL", MC_OPT_STRING, &log_level, 0, 0,
         "debug, info, warn, error or off"},
        {"--allowed-origins", "CHAT_ALLOWED_ORIGINS", MC_OPT_STRING, &cfg.allowed_origins, 0, 0,
         "origins allowed to open the chat WebSocket, comma-separated, or *; "
         "empty: the request's own Host"},
        {"--max-message", "CHAT_MAX_MESSAGE", MC_OPT_INT, &cfg.max_message, 125, 16 << 20,
         "largest chat WebSocket message, bytes"},
        {"--echo-path", "CHAT_ECHO_PATH", MC_OPT_STRING, &cfg.echo_path, 0, 0,
         "path of an echo WebSocket endpoint (off when empty)"},
        {"--echo-max-message", "CHAT_ECHO_MAX_MESSAGE", MC_OPT_INT, &cfg.echo_max_message, 125,
         256 << 20, "largest echo WebSocket message, bytes"},
        {"--ping-interval", "CHAT_PING_INTERVAL_MS", MC_OPT_INT, &cfg.ping_interval_ms, 10, 3600000,
         "a WebSocket silent this long is pinged, and closed with 1001 when "
         "silent for as long again, ms"},
        {"--header-timeout", "CHAT_HEADER_TIMEOUT_MS", MC_OPT_INT, &cfg.header_timeout_ms, 10,
         3600000, "time allowed for a request head, ms (then 408)"},
        {"--idle-timeout", "CHAT_IDLE_TIMEOUT_MS", MC_OPT_INT, &cfg.idle_timeout_ms, 10, 3600000,
         "idle keep-alive connections are closed after this, ms"},
        {"--reply-timeout", "CHAT_REPLY_TIMEOUT_MS", MC_OPT_INT, &cfg.reply_timeout_ms, 10, 3600000,
         "time a worker has to answer, ms (then 504)"},
        {"--send-buffer", "CHAT_SEND_BUFFER_KIB", MC_OPT_INT, &send_buffer_kib, 16, 1 << 20,
         "bytes queued per socket; a WebSocket past it is closed with 1008, KiB"},
        {"--heartbeat-ttl", "CHAT_HEARTBEAT_TTL_MS", MC_OPT_INT, &ccfg.heartbeat_ttl_ms, 300,
         3600000,
         "this process counts as dead (its sockets leave their rooms) once its "
         "heartbeat is this old, ms"},
        {"--ws-deflate", "CHAT_WS_DEFLATE", MC_OPT_BOOL, &cfg.ws_deflate, 0, 0,
         "accept permessage-deflate: WebSocket messages compressed (on or off)"},
        {"--shutdown-timeout", "CHAT_SHUTDOWN_TIMEOUT_MS", MC_OPT_INT, &cfg.shutdown_timeout_ms, 10,
         600000, "bound on a graceful shutdown, ms"},
        {"--metrics-listen", "CHAT_METRICS_LISTEN", MC_OPT_STRING, &cfg.metrics_listen, 0, 0,
         "address:port of /metrics (and /healthz), this process's own; off when empty"},
        {"--trusted-proxies", "CHAT_TRUSTED_PROXIES", MC_OPT_STRING, &cfg.trusted_proxies, 0, 0,
         "addresses and blocks (10.0.0.0/8, ::1) of proxies whose X-Forwarded-For and "
         "X-Forwarded-Proto are believed, comma-separated"},
        {"--address-open-max", "CHAT_ADDRESS_OPEN_MAX", MC_OPT_INT, &cfg.address_open_max, 0,
         1 << 24, "connections one client address may hold open (per process); 0: no limit"},
        {"--address-rate", "CHAT_ADDRESS_RATE", MC_OPT_INT, &cfg.address_rate, 0, 1 << 24,
         "new connections one client address may open a second (per process; through a "
         "trusted proxy, requests); 0: no limit"},
        {"--address-burst", "CHAT_ADDRESS_BURST", MC_OPT_INT, &cfg.address_burst, 1, 1 << 24,
         "...and at once"},
        {"--socket-rate", "CHAT_SOCKET_RATE", MC_OPT_INT, &cfg.socket_rate, 0, 1 << 20,
         "frames a chat socket may send a second (RATE_LIMITED beyond); 0: no limit"},
        {"--socket-burst", "CHAT_SOCKET_BURST", MC_OPT_INT, &cfg.socket_burst, 1, 1 << 20,
         "...and at once"},
        {"--socket-kib-rate", "CHAT_SOCKET_KIB_RATE", MC_OPT_INT, &cfg.socket_kib_rate, 0, 1 << 20,
         "KiB of messages a chat socket may send a second; 0: no limit"},
        {"--socket-answer-debt-ms", "CHAT_SOCKET_ANSWER_DEBT_MS", MC_OPT_INT,
         &cfg.socket_answer_debt_ms, 0, 1000,
         "answers to a chat socket's own messages cost its bytes too, in debt up to this "
         "many ms of its rate; 0: answers cost nothing"},
        {"--socket-penalty-ms", "CHAT_SOCKET_PENALTY_MS", MC_OPT_INT, &cfg.socket_penalty_ms, 0,
         86400000,
         "for this long after one of its chat sockets was closed for its rate, a client "
         "address's new chat sockets start with a second's budget, not a whole burst; 0: off"},
        {"--socket-in-flight", "CHAT_SOCKET_IN_FLIGHT", MC_OPT_INT, &cfg.socket_in_flight, 0, 65535,
         "messages of a chat socket the workers may owe answers to before it is read "
         "on; 0: no limit"},
        {"--socket-close-after", "CHAT_SOCKET_CLOSE_AFTER", MC_OPT_INT, &cfg.socket_close_after, 0,
         255,
         "frames over budget after RATE_LIMITED before the socket is closed with 1008; "
         "0: never"},
    };
    size_t nopts = sizeof(opts) / sizeof(opts[0]);
    char err[256];
    int first;
    int rc = mc_config_parse(opts, nopts, argc, argv, &first, err, sizeof(err));
    if (rc == MC_CONFIG_HELP) {
        mc_config_usage(stdout, "chat-interface", "[options]", opts, nopts);
        return 0;
    }
    enum mc_log_level level;
    if (rc != 0 || first != argc || mc_log_parse_level(log_level, &level) != 0) {
        fprintf(stderr, "chat-interface: %s\n", rc != 0 ? err : "bad argument or log level");
        return 2;
    }
    cfg.send_buffer = send_buffer_kib * 1024;
    mc_log_init("interface", level);
    signal(SIGPIPE, SIG_IGN);

    app_t app;
    memset(&app, 0, sizeof(app));
    app.loop = uv_default_loop();
    ifc_bus_t bus = {&app, bus_push, bus_reply_channel, bus_conn_of, bus_forget, bus_each_group};
    ccfg.redis_urls = redis;
    chl_proc_handlers_t handlers = {on_message, on_group, on_group, on_redis_state};
    if ((rc = chl_proc_open(&app.proc, app.loop, &ccfg, "ifc", &handlers, &app)) != 0) {
        mc_error("channel layer: %s", mc_strerror(rc));
        return 1;
    }
    cfg.instance = chl_proc_name(app.proc);
    if ((rc = ifc_server_start(&app.srv, app.loop, &cfg, &bus)) != 0) {
        chl_proc_close(app.proc);
        uv_run(app.loop, UV_RUN_DEFAULT);
        return 1;
    }
    uv_signal_init(app.loop, &app.sigterm);
    uv_signal_init(app.loop, &app.sigint);
    app.sigterm.data = app.sigint.data = &app;
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    mc_info("listening on %s (port %d), web root %s%s%s", cfg.listen, ifc_server_port(app.srv),
            cfg.web_root, *cfg.echo_path ? ", echo at " : "", cfg.echo_path);
    if (*cfg.metrics_listen)
        mc_info("metrics on %s (port %d)", cfg.metrics_listen, ifc_server_metrics_port(app.srv));
    uv_run(app.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(app.loop);
    if (rc != 0)
        mc_warn("loop closed with handles left: %s", uv_strerror(rc));
    return 0;
}
