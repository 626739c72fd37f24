/*
 * chat-bench: a load generator for any server that speaks the multichat
 * protocol (this one, or the Django Channels example).
 *
 * It logs users in through the login form as a browser does (GET the form
 * for the csrftoken cookie and the hidden csrfmiddlewaretoken, POST the
 * form, keep the sessionid cookie), then opens WebSockets with those
 * cookies, C sockets for U users (a session serves several sockets), spread
 * over several loopback source addresses and over one or more servers. Each
 * socket joins one of the given rooms; then the program sends chat messages
 * at a total rate, from the sockets in turn, each carrying its send time in
 * its text, and measures the latency of every delivery to every member of
 * the room. A list of rates is run as a ladder, one step after the other,
 * until a step loses messages or its 99th percentile passes a limit.
 *
 * Other modes: --echo-path sends the same messages to an echo WebSocket
 * (no login, no worker: the client's and the interface's own ceiling), and
 * --idle only opens, joins and holds authenticated sockets (memory per socket).
 * --flooders N adds N sockets of users of their own that attack while the
 * steps run: they send history requests, 60 KiB frames that are no command,
 * leaves and joins, as fast as their server reads them, and reconnect when
 * it closes them; what they send and what they are told is reported after
 * each step, and the other sockets are measured as ever.
 *
 * With --deflate every socket offers permessage-deflate as a browser does;
 * where the server accepts it, the client compresses what it sends (each
 * message on its own, as client_no_context_takeover asks) and inflates
 * what arrives compressed. Each step reports the bytes that crossed the
 * sockets both ways (WebSocket frames, no TCP/IP headers), the client's own
 * CPU per message, and with --cpu-pids the CPU per message of those
 * processes (from /proc/PID/stat): the price and the gain of compression.
 *
 * Everything runs on one libuv loop, except the logins, which use blocking
 * sockets in a few threads because the server's password hashing makes each
 * one slow. Output is one "key=value ..." line per step, for scripts.
 *
 * This file reads the options and sets the run up; the parts are
 * chat_login.c (the logins), chat_client.c (the WebSockets),
 * chat_scenario.c (the steps, flooders and idle hold) and chat_measure.c
 * (latencies, CPU and the step lines), over the state of chat_state.h.
 */
#include "common/config.h"
#include "tests/bench/chat_login.h"
#include "tests/bench/chat_scenario.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- Parsing settings ------------------------------------------------------- */

static int parse_targets(bench_t *b)
{
    const char *p = b->cfg.targets;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (b->ntargets == MAX_TARGETS || len == 0 || len >= sizeof(b->targets[0].host))
            return -1;
        target_t *t = &b->targets[b->ntargets++];
        memcpy(t->host, p, len);
        t->host[len] = '\0';
        char ip[64];
        memcpy(ip, p, len);
        ip[len] = '\0';
        char *colon = strrchr(ip, ':');
        if (!colon)
            return -1;
        *colon = '\0';
        long port = strtol(colon + 1, NULL, 10);
        if (port <= 0 || port > 65535 || uv_ip4_addr(ip, (int)port, &t->addr) != 0)
            return -1;
        if (b->cfg.origin && *b->cfg.origin)
            snprintf(t->origin, sizeof(t->origin), "%s", b->cfg.origin);
        else
            snprintf(t->origin, sizeof(t->origin), "http://%.*s", (int)len, p);
        p += len;
        if (*p == ',')
            p++;
    }
    return b->ntargets ? 0 : -1;
}

static int parse_longs(const char *s, long *out, int cap)
{
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v <= 0 || n == cap)
            return -1;
        out[n++] = v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return n;
}

/* ---- Main ------------------------------------------------------------------ */

static void raise_fd_limit(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t need = (rlim_t)want;
    if (rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need)
        fprintf(stderr, "chat-bench: warning: only %lu file descriptors (ulimit -n)\n",
                (unsigned long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
    static bench_t bench;
    bench_t *b = &bench;
    settings_t *s = &b->cfg;
    *s = (settings_t){
        .targets = "127.0.0.1:8000",
        .path = "/chat/stream/",
        .echo_path = "",
        .origin = "",
        .user_prefix = "bench",
        .password = "bench-password",
        .rooms = "1",
        .rates = "100",
        .cpu_pids = "",
        .clients = 100,
        .users = 0,
        .duration_ms = 3000,
        .drain_ms = 2000,
        .p99_limit_ms = 50,
        .message_size = 64,
        .sources = 1,
        .connect_parallel = 200,
        .login_threads = 4,
        .first_user = 1,
        .retries = 1,
    };
    mc_option_t opts[] = {
        {"--target", "CHAT_BENCH_TARGET", MC_OPT_STRING, &s->targets, 0, 0,
         "servers as address:port, comma-separated; sockets are spread over them so that "
         "every room has members on each"},
        {"--path", NULL, MC_OPT_STRING, &s->path, 0, 0, "path of the chat WebSocket"},
        {"--echo-path", NULL, MC_OPT_STRING, &s->echo_path, 0, 0,
         "measure an echo WebSocket at this path instead (no login, no rooms)"},
        {"--origin", NULL, MC_OPT_STRING, &s->origin, 0, 0,
         "Origin header; empty: http://ADDRESS:PORT of each server"},
        {"--clients", NULL, MC_OPT_INT, &s->clients, 1, 2000000, "WebSockets to open"},
        {"--users", NULL, MC_OPT_INT, &s->users, 0, 2000000,
         "users to log in (socket i uses user i mod U); 0: one per socket"},
        {"--user-prefix", NULL, MC_OPT_STRING, &s->user_prefix, 0, 0,
         "user names are PREFIX1, PREFIX2, ..."},
        {"--first-user", NULL, MC_OPT_INT, &s->first_user, 0, 1000000000,
         "number of the first user name"},
        {"--password", "CHAT_BENCH_PASSWORD", MC_OPT_STRING, &s->password, 0, 0,
         "password of every user"},
        {"--rooms", NULL, MC_OPT_STRING, &s->rooms, 0, 0,
         "room ids, comma-separated; socket i joins room i mod R"},
        {"--rates", NULL, MC_OPT_STRING, &s->rates, 0, 0,
         "total messages per second, comma-separated: one step each, in order"},
        {"--duration", NULL, MC_OPT_INT, &s->duration_ms, 100, 3600000,
         "sending time of a step, ms"},
        {"--drain", NULL, MC_OPT_INT, &s->drain_ms, 0, 600000,
         "longest wait for deliveries after a step, ms (then they count as lost)"},
        {"--p99-limit", NULL, MC_OPT_INT, &s->p99_limit_ms, 1, 600000,
         "a step passes with no loss and a 99th percentile up to this, ms"},
        {"--retries", NULL, MC_OPT_INT, &s->retries, 0, MAX_RETRIES,
         "times a failed step runs again before the ladder stops"},
        {"--keep-going", NULL, MC_OPT_BOOL, &s->keep_going, 0, 0,
         "run every step, even after one failed"},
        {"--message-size", NULL, MC_OPT_INT, &s->message_size, 1, MSG_MAX,
         "bytes of message text (at least the time stamp)"},
        {"--sources", NULL, MC_OPT_INT, &s->sources, 1, 250,
         "source addresses 127.0.0.1 .. 127.0.0.N (about 28,000 sockets each)"},
        {"--connect-parallel", NULL, MC_OPT_INT, &s->connect_parallel, 1, 100000,
         "handshakes in flight at once"},
        {"--login-threads", NULL, MC_OPT_INT, &s->login_threads, 1, 64, "logins in parallel"},
        {"--idle", NULL, MC_OPT_BOOL, &s->idle, 0, 0,
         "open the sockets, each joined to its room, print \"idle sockets=N\" and hold them (no "
         "messages)"},
        {"--hold", NULL, MC_OPT_INT, &s->hold_ms, 0, 86400000,
         "with --idle: how long to hold, ms; 0: until SIGINT or SIGTERM"},
        {"--flooders", NULL, MC_OPT_INT, &s->flooders, 0, MAX_FLOODERS,
         "sockets that flood while the steps run (history, 60 KiB junk frames, leave and "
         "join, as fast as the server reads), as users after the others"},
        {"--deflate", NULL, MC_OPT_BOOL, &s->deflate, 0, 0,
         "offer permessage-deflate; compress what is sent and inflate what arrives compressed"},
        {"--cpu-pids", NULL, MC_OPT_STRING, &s->cpu_pids, 0, 0,
         "process ids, comma-separated, whose CPU per message each step reports"},
    };
    size_t nopts = sizeof(opts) / sizeof(opts[0]);
    char err[256];
    int first;
    int rc = mc_config_parse(opts, nopts, argc, argv, &first, err, sizeof(err));
    if (rc == MC_CONFIG_HELP) {
        mc_config_usage(stdout, "chat-bench", "[options]", opts, nopts);
        return 0;
    }
    if (rc != 0 || first != argc) {
        fprintf(stderr, "chat-bench: %s\n", rc ? err : "unexpected argument");
        return 2;
    }
    if (parse_targets(b) != 0) {
        fprintf(stderr, "chat-bench: --target: want IPv4:PORT[,IPv4:PORT...]\n");
        return 2;
    }
    b->nrooms = parse_longs(s->rooms, b->room_ids, MAX_ROOMS);
    b->nrates = parse_longs(s->rates, b->rates, MAX_RATES);
    b->npids = *s->cpu_pids ? parse_longs(s->cpu_pids, b->pids, MAX_PIDS) : 0;
    if (b->nrooms <= 0 || b->nrates <= 0 || b->npids < 0) {
        fprintf(stderr, "chat-bench: --rooms, --rates and --cpu-pids want positive numbers, "
                        "comma-separated\n");
        return 2;
    }
    if (s->deflate &&
        (ifc_ws_deflater_new(&b->deflater) != 0 || ifc_ws_inflater_new(&b->inflater) != 0)) {
        fprintf(stderr, "chat-bench: out of memory\n");
        return 1;
    }
    int echo = echo_mode(b);
    if (s->users == 0 || s->users > s->clients)
        s->users = s->clients;
    raise_fd_limit(s->clients + 64);
    b->rng = (uint32_t)(uv_hrtime() ^ (uint64_t)getpid()) | 1;
    b->clients = calloc((size_t)s->clients, sizeof(*b->clients));
    b->ready = calloc((size_t)s->clients, sizeof(*b->ready));
    if (echo || s->idle)
        s->flooders = 0;
    b->cookies = echo ? NULL : calloc((size_t)(s->users + s->flooders), sizeof(*b->cookies));
    b->junk = s->flooders ? malloc(FLOOD_JUNK) : NULL;
    if (b->junk)
        memset(b->junk, 'j', FLOOD_JUNK);
    if (!b->clients || !b->ready || (!echo && !b->cookies) || (s->flooders && !b->junk)) {
        fprintf(stderr, "chat-bench: out of memory\n");
        return 1;
    }
    b->steps[0].rate = b->rates[0];
    for (long i = 0; i < s->clients; i++) {
        b->clients[i].b = b;
        b->clients[i].idx = (uint32_t)i;
        b->clients[i].room = (uint16_t)(i % b->nrooms);
    }
    if (!echo && login_all(b) != 0)
        return 1;
    scenario_run(b);

    for (int i = 0; i < MAX_STEPS; i++)
        free(b->steps[i].lat);
    free(b->clients);
    free(b->ready);
    free(b->cookies);
    free(b->junk);
    ifc_ws_deflater_free(b->deflater);
    ifc_ws_inflater_free(b->inflater);
    if (b->failed || b->closed_early)
        fprintf(stderr, "chat-bench: %ld sockets failed to open, %ld closed early\n", b->failed,
                b->closed_early);
    return b->exit_code;
}
