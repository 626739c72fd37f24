/*
 * tests/support/redis.h: a private redis-server for one test program.
 *
 * The server listens on a free loopback port, keeps its files in a fresh
 * temporary directory, saves nothing, and dies with the test process.
 */
#ifndef MC_TESTS_SUPPORT_REDIS_H
#define MC_TESTS_SUPPORT_REDIS_H

#include <sys/types.h>

typedef struct ts_redis {
    pid_t pid;       /* read-only: the server's pid, 0 when stopped */
    int port;        /* read-only: its port on 127.0.0.1 */
    char dir[32];    /* read-only: its temporary directory */
    char url[64];    /* read-only: "redis://127.0.0.1:PORT", or "unix://DIR/redis.sock" */
    int unix_socket; /* read-only: it listens on DIR/redis.sock too, and url names that */
    int replica_of;  /* read-only: the port of the master it was started to follow, or 0 */
    int sentinel;    /* read-only: a redis-sentinel rather than a server */
} ts_redis_t;

/* Starts a server and waits until it answers PING. Returns 0 or -1. */
int ts_redis_start(ts_redis_t *r);

/* Starts a server that listens on a Unix socket in its directory as well
 * as on its port (which ts_redis_int uses); url names the socket. Returns
 * 0 or -1. */
int ts_redis_start_unix(ts_redis_t *r);

/* Starts a server that replicates the one on master_port. Returns 0 or -1. */
int ts_redis_start_replica(ts_redis_t *r, int master_port);

/* Starts a redis-sentinel that watches nothing yet (tests/support/sentinel.h
 * tells it what to watch). Returns 0 or -1. */
int ts_redis_start_sentinel(ts_redis_t *r);

/* Stops the server (SIGKILL when hard, else SIGTERM) and keeps the directory
 * and port, so that ts_redis_restart can bring it back as what it was. */
void ts_redis_halt(ts_redis_t *r, int hard);

/* Starts a halted server again on the same port (and socket). Returns 0
 * or -1. */
int ts_redis_restart(ts_redis_t *r);

/* Stops the server and removes its directory. */
void ts_redis_stop(ts_redis_t *r);

/* Runs one command on the server with a fresh blocking connection and
 * returns its integer reply (or the length of an array or string reply),
 * -1 on error. For assertions about what is stored in Redis. */
long long ts_redis_int(const ts_redis_t *r, const char *fmt, ...);

/* The calls of command (lower case: "lpush") since the server's last CONFIG
 * RESETSTAT, those run inside scripts included; -1 on error. */
long ts_redis_calls(const ts_redis_t *r, const char *command);

#endif
