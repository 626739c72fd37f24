/*
 * channel-layer/internal.h: what the two front ends (sync*.c, proc.c) share.
 *
 * The Redis side of the channel layer lives here once: names and their
 * checks, the key layout, the framing of a message inside a Redis list, the
 * Lua scripts, the list of shards and the hash ring that maps a channel to
 * its shard. Nothing here does I/O or keeps mutable global state.
 *
 * Key layout (P is the configured prefix, "mc:" by default):
 *
 *   P<channel>            list: an ordinary channel (expires with its newest
 *                         message) or reliable queue (does not expire)
 *   P<process>!           list: everything for the connections of a process;
 *                         removed when the process is reaped, and otherwise
 *                         expires a group expiry after its last direct send
 *   P"bytes:"<process>    string: the bytes that list holds (its second
 *                         bound), while it is long enough to reach it; no
 *                         expiry: removed with the list
 *   P"inflight:"<client>  list: messages a worker popped and has not acked
 *   P"hb:"<client>        string with a TTL: the client is alive
 *   P"workers"            set: clients that may hold in-flight messages
 *   P"procs"              set: process endpoints (chl_proc_t), on the shard
 *                         of their heartbeat, for chl_reap_processes
 *   P"group:"<group>      zset: member channels scored by last add (ms)
 *   P"groupp:"<group>     hash: process -> number of its members
 *   P"pgroups:"<process>  set: groups the process has members in
 *   P"rate:"<key>         hash: a token bucket (tokens, ts, refused)
 *
 * Names are ASGI-like: [A-Za-z0-9._-], channels may have one '!' after a
 * non-empty process part. Keys built with ':' therefore never collide with
 * channel lists, and the framing below needs no escaping.
 *
 * Framing of a list element:  <kind><deadline-ms>|<name>[|<seq>]\n<payload>
 *   kind 'm': a message for channel <name> (a queue's elements name the
 *             queue, which is how requeueing finds its way back);
 *   kind 'M': the same, a queue element that had more behind it when it
 *             was pushed (chl__frame_t.more): a hint for the worker that
 *             takes it to take a batch next (batch.h);
 *   kind 'g': one copy of a message to group <name>;
 *   kind 'a', 'd': membership control, <name> is the group and the payload
 *             the member channel "<process>!<conn>".
 * The deadline is in ms since the Unix epoch; 0 means it never expires.
 * seq (a group copy's, chl_group_msg_t; an add's, chl_group_add_after) is
 * a decimal without leading zeros; none means 0.
 */
#ifndef MC_CHANNEL_LAYER_INTERNAL_H
#define MC_CHANNEL_LAYER_INTERNAL_H

#include "channel-layer/chl.h"
#include "common/clock.h"

#include <stddef.h>
#include <stdint.h>

#define CHL__NAME_MAX 200            /* longest channel, group or client name */
#define CHL__KEY_MAX 256             /* longest key: prefix + kind + name */
#define CHL__MSG_MAX (1024 * 1024)   /* largest payload */
#define CHL__HEADER_MAX 264          /* kind + deadline + '|' + name + '|' + seq + '\n' */
#define CHL__BLOCK_SLICE_MS 2000     /* longest single blocking call */
#define CHL__COMMAND_TIMEOUT_MS 5000 /* socket timeout, above the slice */
#define CHL__VNODES 64               /* points of each shard on the ring */
#define CHL__MAX_SHARDS 64

enum chl__kind {
    CHL__MSG = 'm',
    CHL__MSG_MORE = 'M', /* CHL__MSG with more behind it: parsed as CHL__MSG, more = 1 */
    CHL__GROUP = 'g',
    CHL__ADD = 'a',
    CHL__DISCARD = 'd',
};

/* ---- names and keys (keys.c) ---- */

/* 0 when name is a valid channel (process-specific or not), else MC_EINVAL.
 * *bang gets the index of '!' or -1. */
int chl__check_channel(const char *name, long *bang);
/* 0 when name is a valid group or client name ([A-Za-z0-9._-]{1,200}). */
int chl__check_plain(const char *name);

/* Writes prefix + a + b into key (NUL-terminated). Returns 0 or MC_ETOOBIG. */
int chl__key(char *key, size_t size, const char *prefix, const char *a, const char *b);

/* The byte counter of a process list ("<prefix><process>!"): writes
 * "<prefix>bytes:<process>" into key. Returns 0, MC_EINVAL when list is no
 * process list, MC_ETOOBIG. */
int chl__bytes_key(char *key, size_t size, const char *prefix, const char *list);

/* The process part of a channel: its length (up to '!', else the whole). */
size_t chl__process_len(const char *channel);

/* Copies cfg, filling zero or NULL fields with defaults and duplicating the
 * strings into *owned (freed with free). Returns 0, MC_EINVAL, MC_ENOMEM. */
int chl__config_copy(chl_config_t *dst, char **owned, const chl_config_t *src);

/* Formats a random process or client name "<kind>.<host>.<pid>.<hex>". */
void chl__make_name(char *buf, size_t size, const char *kind);

/* ---- framing (frame.c) ---- */

/* Writes the header of a frame into hdr (seq 0: none). Returns its length,
 * or MC_ETOOBIG. */
int chl__frame_header(char *hdr, size_t size, int kind, int64_t deadline, const char *name,
                      uint64_t seq);

/* Builds a whole frame in one malloc'd buffer: *out and *outlen.
 * Returns 0, MC_ETOOBIG, MC_ENOMEM. */
int chl__frame_build(char **out, size_t *outlen, int kind, int64_t deadline, const char *name,
                     uint64_t seq, const void *payload, size_t len);

typedef struct chl__frame {
    int kind;
    int64_t deadline;
    const char *name; /* points into the element, not NUL-terminated */
    size_t name_len;
    uint64_t seq;        /* 0: none */
    int more;            /* CHL__MSG_MORE: more were behind it when it was pushed */
    const char *payload; /* points into the element */
    size_t len;
} chl__frame_t;

/* Parses an element read from Redis (kind CHL__MSG_MORE comes back as
 * CHL__MSG with more set). Returns 0 or MC_EPROTO. */
int chl__frame_parse(chl__frame_t *f, const char *data, size_t len);

/* Fills a chl_message_t (copies channel and payload). Returns 0 or MC_ENOMEM. */
int chl__message_fill(chl_message_t *out, const char *channel, size_t channel_len,
                      const char *payload, size_t len);

/* ---- commands in Redis's protocol (resp.c) ---- */

/* Writes v in decimal at out (room for 20 digits, no NUL); returns how
 * many digits. */
size_t chl__digits(char *out, uint64_t v);
/* v in decimal, NUL-terminated, into buf. */
void chl__decimal(char buf[24], long v);
/* The bytes a command takes in RESP, argv[0..argc) of lens[i] bytes each,
 * and the command written at out (that many bytes): returns the bytes. */
size_t chl__resp_size(int argc, const size_t *lens);
size_t chl__resp_write(char *out, int argc, const char *const *argv, const size_t *lens);

/* ---- shards and the ring (ring.c) ---- */

#define CHL__HOST_MAX 127        /* longest host name or address */
#define CHL__SOCKET_PATH_MAX 107 /* longest Unix socket path: sun_path less its NUL */
#define CHL__PASSWORD_MAX 128    /* longest password, once decoded */
#define CHL__MAX_SENTINELS 8     /* sentinels listed for one shard */
#define CHL__SENTINEL_PORT 26379 /* a sentinel's port when none is given */

/* A server: a host and TCP port, or (port 0) a Unix socket whose path is
 * in host. Sentinels and the masters they name are always TCP. */
typedef struct chl__server {
    char host[CHL__HOST_MAX + 1];
    int port;
} chl__server_t;

#define CHL__SERVER_TEXT (CHL__HOST_MAX + 8)

/* The server for messages: "host:port", or the socket's path. Returns buf. */
const char *chl__server_text(const chl__server_t *s, char buf[CHL__SERVER_TEXT]);

/* One shard as configured. A plain shard is one server (host, port; port
 * 0 for a Unix socket, as in chl__server_t); a Sentinel shard names a
 * master (master[0] != 0) that the listed sentinels watch, and its server
 * is whichever they promoted last (sentinel.h). */
typedef struct chl__addr {
    char host[CHL__HOST_MAX + 1]; /* a plain shard's server; "" for Sentinel */
    int port;
    int db;
    char password[CHL__PASSWORD_MAX + 1]; /* "" : no AUTH */
    char master[CHL__NAME_MAX + 1];       /* the master's name, or "" */
    chl__server_t sentinels[CHL__MAX_SENTINELS];
    size_t nsentinels;
} chl__addr_t;

typedef struct chl__ring_point {
    uint32_t hash;
    uint32_t shard;
} chl__ring_point_t;

typedef struct chl__ring {
    chl__addr_t *addrs; /* nshards of them */
    size_t nshards;
    chl__ring_point_t *points; /* sorted by hash; nshards * CHL__VNODES */
    size_t npoints;
    const char *why; /* when chl__ring_init refused the list: what is wrong */
} chl__ring_t;

/* Parses the list of shards and builds the ring:
 *
 *   urls     = shard *("," shard)
 *   shard    = "redis://" [auth] server ["/" [db]]
 *            / "unix://" [auth] path ["?db=" db]
 *            / "redis+sentinel://" [auth] sentinel *("," sentinel) "/" name ["/" db]
 *   auth     = ":" password "@"      ; AUTH to the shard's server, %XX escapes
 *   server   = host [":" port]       ; port 6379 by default
 *   sentinel = host [":" port]       ; port 26379 by default
 *   name     = 1*200 of [A-Za-z0-9._-], the master's name in the sentinels
 *   db       = 0 to 9999
 *   path     = "/" 1*106 bytes, %XX escapes (",", "?" and "%" need them):
 *              the server's Unix socket, as long as sun_path allows
 *
 * A comma followed by a scheme starts the next shard; inside a Sentinel
 * shard it separates sentinels. A channel's place on the ring follows the
 * shard's identity, which is its host:port/db (path:0/db for a socket) for
 * a plain shard and its master's name/db for a Sentinel shard, so the
 * order of the list, the sentinels listed and a failover never move a
 * channel. Two shards with one identity are refused. Returns 0, MC_EINVAL (logged, and ring->why
 * says what is wrong), MC_ENOMEM. */
int chl__ring_init(chl__ring_t *ring, const char *urls);
/* Releases what the ring holds (the struct is the caller's). */
void chl__ring_clear(chl__ring_t *ring);

/* The shard of a channel (by its process part) or of a group (by its name). */
size_t chl__ring_channel(const chl__ring_t *ring, const char *channel);
size_t chl__ring_name(const chl__ring_t *ring, const char *name, size_t len);

/* ---- scripts (scripts.c) ---- */

enum chl__script_id {
    CHL__S_SEND,    /* KEYS list[, its byte counter]; ARGV capacity (<0: none), ttl ms (0:
                     * none), max bytes (with a counter), frames... -> how many of the
                     * frames, the first ones, were pushed (the rest: full) */
    CHL__S_MPUSH,   /* KEYS process lists; ARGV capacity, frame, name ("": none), name ttl,
                     * max bytes, prefix -> {dropped, pushed (-1: the name was set already)} */
    CHL__S_GADD,    /* KEYS zset, hash, pgroups; ARGV member, process, group, expiry s */
    CHL__S_GDISC,   /* same keys and ARGV minus expiry -> 1 when it was a member */
    CHL__S_GSEND,   /* KEYS zset, hash; ARGV expiry s (0: no expiry now), prefix, group
                     * -> {0, nprocs, procs...} */
    CHL__S_REQUEUE, /* KEYS workers; ARGV prefix, self, ttl -> number requeued */
    CHL__S_FORGET,  /* KEYS pgroups; ARGV prefix, process -> members removed (and its list,
                     * its byte counter) */
    CHL__S_RATE,    /* KEYS bucket; ARGV rate per s, burst -> {allowed, refused in a row} */
    CHL__S_REAP,    /* KEYS procs; ARGV prefix -> names of processes whose heartbeat is gone */
    CHL__S_MOVEN,   /* KEYS queue, in-flight; ARGV n -> up to n elements moved, oldest first */
    CHL__S_GSENDN,  /* KEYS (zset, hash) per message; ARGV prefix, capacity, name ttl, max
                     * bytes, then per message expiry s (0: no expiry now), group, name ("":
                     * none), frame -> per message copies dropped, or -1 (the name was set
                     * already) */
    CHL__S_COUNT
};

/* The Lua source of a script. */
const char *chl__script(enum chl__script_id id);

#endif
