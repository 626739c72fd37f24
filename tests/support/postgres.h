/*
 * tests/support/postgres.h: a private PostgreSQL server for one test
 * program, started by tests/support/postgres.sh (which holds the details:
 * initdb in a temporary folder, a free loopback port, an unprivileged user
 * when run as root).
 *
 * Start it once per program: a server takes a second or two to start, a
 * database on it a few hundredths. The server goes away with ts_pg_stop,
 * or with the test process, whichever comes first.
 */
#ifndef MC_TESTS_SUPPORT_POSTGRES_H
#define MC_TESTS_SUPPORT_POSTGRES_H

#include <stddef.h>
#include <sys/types.h>

typedef struct ts_pg {
    pid_t pid;     /* read-only: the script's pid, 0 when stopped */
    int in;        /* private: the script's stdin; closing it stops the server */
    char url[128]; /* read-only: postgresql://mc@127.0.0.1:PORT/postgres */
} ts_pg_t;

/* Starts a server (tests/support/postgres.sh under $MC_SOURCE, or under
 * the current directory). Returns 0, or -1 with the reason on stderr. */
int ts_pg_start(ts_pg_t *pg);

/* Stops the server and removes its files. */
void ts_pg_stop(ts_pg_t *pg);

/* Writes into url[size] the URL of database db on the server. */
void ts_pg_url(const ts_pg_t *pg, const char *db, char *url, size_t size);

/* Runs sql (statements whose results are not read) on database db, as the
 * server's superuser. Returns 0, or -1 with the reason on stderr. */
int ts_pg_exec(const ts_pg_t *pg, const char *db, const char *sql);

/* Runs query on database db and returns the first column of its first row
 * as an integer; -1 on error (reason on stderr) or without a row. */
long long ts_pg_int(const ts_pg_t *pg, const char *db, const char *query);

#endif
