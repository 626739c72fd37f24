/*
 * tests/bench/chat_state.h: the state every part of chat-bench shares.
 *
 * One bench_t holds a run: its settings, the servers, the rooms and rates,
 * the sockets (client_t, measured ones and flooders), the steps of the
 * ladder with their measurements, and the libuv handles. chat_bench.c fills
 * it from the options, chat_login.c adds the users' cookies, chat_client.c
 * drives its sockets, chat_scenario.c its steps and chat_measure.c its
 * figures. The sockets tell the scenario what happened through the hooks
 * (client_hooks_t), so the socket code knows no scenario.
 *
 * Everything runs on one thread (the loop's), except the logins.
 */
#ifndef MC_TESTS_BENCH_CHAT_STATE_H
#define MC_TESTS_BENCH_CHAT_STATE_H

#include "interface/ws_deflate.h"
#include "interface/handshake.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#define MAX_TARGETS 16
#define MAX_ROOMS 1024
#define MAX_RATES 64
#define MAX_RETRIES 3
#define MAX_STEPS (MAX_RATES * (1 + MAX_RETRIES))
#define MAX_PIDS 8
#define READ_BUF (256 * 1024)
#define COOKIE_MAX 320
#define MSG_MAX 4000
#define MAX_FLOODERS 16
#define FLOOD_JUNK (60 * 1024) /* bytes of a junk frame */

/* ---- Settings -------------------------------------------------------------- */

typedef struct settings {
    const char *targets; /* "127.0.0.1:8000,127.0.0.1:8001" */
    const char *path;
    const char *echo_path;
    const char *origin;
    const char *user_prefix;
    const char *password;
    const char *rooms;
    const char *rates;
    const char *cpu_pids; /* "123,456": processes whose CPU a step reports */
    long clients, users, duration_ms, drain_ms, p99_limit_ms, message_size, sources;
    long connect_parallel, login_threads, hold_ms, first_user, retries, flooders;
    int idle, keep_going, deflate;
} settings_t;

typedef struct target {
    struct sockaddr_in addr;
    char host[64]; /* "127.0.0.1:8000", the Host header */
    char origin[96];
} target_t;

/* ---- State ------------------------------------------------------------------ */

enum client_state { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_JOINED, C_CLOSED };

typedef struct bench bench_t;

/* One WebSocket. Bytes of a frame not yet complete wait in pend (heap),
 * which is freed as soon as it is empty, so an idle client holds none. */
typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    bench_t *b;
    uint8_t *pend;
    uint32_t pend_len, pend_cap;
    uint32_t idx;
    uint16_t room; /* index into bench.rooms */
    uint8_t state;
    uint8_t closing;
    uint8_t flood; /* a flooder (--flooders), not measured */
    uint8_t flood_next;
    uint8_t deflate; /* the server accepted permessage-deflate */
    char accept[IFC_WS_ACCEPT_LEN + 1];
} client_t;

/* What the sockets tell the scenario; each is called on the loop. */
typedef struct client_hooks {
    void (*opened)(client_t *c); /* the upgrade succeeded (a measured one is counted ready) */
    void (*text)(client_t *c, const char *p, size_t len); /* a text message arrived */
    void (*closed)(client_t *c);       /* its handle is closed; it may connect again */
    void (*all_connected)(bench_t *b); /* every measured socket is open or failed */
} client_hooks_t;

typedef struct step {
    long rate;
    int attempt; /* 0, then 1.. for the same rate again after a failure */
    uint64_t start_us, send_end_us, last_rx_us;
    long sent, expected, received, late, errors;
    uint32_t *lat; /* microseconds, one per delivery */
    size_t nlat, caplat;
    long flood_frames, flood_refusals, flood_closes;      /* of the flooders, in the step */
    uint64_t rx_bytes, tx_bytes;                          /* on the sockets, while the step ran */
    uint64_t cpu0_us[MAX_PIDS + 1], cpu_us[MAX_PIDS + 1]; /* the --cpu-pids, then ours */
} step_t;

struct bench {
    uv_loop_t *loop;
    settings_t cfg;
    const client_hooks_t *hooks;
    target_t targets[MAX_TARGETS];
    int ntargets;
    long room_ids[MAX_ROOMS];
    long room_members[MAX_ROOMS];
    int nrooms;
    long rates[MAX_RATES];
    int nrates;
    int rate_i;                  /* rates[rate_i] is being run */
    char (*cookies)[COOKIE_MAX]; /* per user */
    client_t *clients;
    client_t flooders[MAX_FLOODERS];
    uv_timer_t flood_tick;
    uint64_t flood_ticks;
    char *junk;       /* the flooders' junk frame */
    client_t **ready; /* senders, in turn */
    long nready, next_sender;
    long next_connect, connecting, connected, joined, failed, closed_early;
    int phase; /* 0 connecting, 1 running steps, 2 holding idle, 3 done, 4 waiting for joins */
    int cur;   /* current step */
    int stopped;
    step_t steps[MAX_STEPS];
    uv_timer_t tick, hold;
    uv_signal_t sigint, sigterm;
    uint64_t t0_us, connect_start_us;
    uint64_t seq;
    uint32_t rng;
    int exit_code;
    int complaints; /* lines written to stderr about single sockets */
    long pids[MAX_PIDS];
    int npids;
    long deflate_sockets;        /* sockets that negotiated permessage-deflate */
    ifc_ws_deflater_t *deflater; /* --deflate: one of each serves every socket */
    ifc_ws_inflater_t *inflater;
    int in_connect; /* client_connect_more is running: do not re-enter it */
    uint8_t rbuf[READ_BUF];
};

static inline uint64_t now_us(void)
{
    return uv_hrtime() / 1000;
}

/* The echo mode (--echo-path): no login, no rooms. */
static inline int echo_mode(const bench_t *b)
{
    return b->cfg.echo_path && *b->cfg.echo_path;
}

/* The first n in the hl bytes at h, or NULL. */
static inline const char *find(const char *h, size_t hl, const char *n)
{
    return memmem(h, hl, n, strlen(n));
}

#endif
