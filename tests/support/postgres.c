#include "tests/support/postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int ts_pg_start(ts_pg_t *pg)
{
    memset(pg, 0, sizeof(*pg));
    pg->in = -1;
    char script[512];
    const char *source = getenv("MC_SOURCE");
    snprintf(script, sizeof(script), "%s/tests/support/postgres.sh", source ? source : ".");
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]), close(in[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        execl(script, script, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", script, strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]), close(out[0]);
        return -1;
    }
    pg->pid = pid;
    pg->in = in[1];
    /* The script's one line, once the server answers. */
    FILE *f = fdopen(out[0], "r");
    int ok = f && fgets(pg->url, sizeof(pg->url), f) && strncmp(pg->url, "postgresql://", 13) == 0;
    if (f)
        fclose(f);
    else
        close(out[0]);
    pg->url[strcspn(pg->url, "\n")] = '\0';
    if (!ok) {
        fprintf(stderr, "ts_pg_start: %s did not start a server\n", script);
        ts_pg_stop(pg);
        return -1;
    }
    return 0;
}

void ts_pg_stop(ts_pg_t *pg)
{
    if (pg->in >= 0)
        close(pg->in);
    pg->in = -1;
    if (pg->pid > 0) {
        int status;
        while (waitpid(pg->pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    pg->pid = 0;
}

void ts_pg_url(const ts_pg_t *pg, const char *db, char *url, size_t size)
{
    const char *slash = strrchr(pg->url, '/');
    int base = slash ? (int)(slash - pg->url) : 0;
    snprintf(url, size, "%.*s/%s", base, pg->url, db);
}

/* Runs sql on database db; *res gets its result (the caller clears it),
 * or NULL when the server cannot be reached (reason on stderr). */
static void query(const ts_pg_t *pg, const char *db, const char *sql, PGresult **res)
{
    char url[192];
    ts_pg_url(pg, db, url, sizeof(url));
    PGconn *c = PQconnectdb(url);
    *res = NULL;
    if (PQstatus(c) == CONNECTION_OK)
        *res = PQexec(c, sql);
    else
        fprintf(stderr, "ts_pg: %s", PQerrorMessage(c));
    PQfinish(c);
}

int ts_pg_exec(const ts_pg_t *pg, const char *db, const char *sql)
{
    PGresult *r;
    query(pg, db, sql, &r);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc && r)
        fprintf(stderr, "ts_pg_exec: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

long long ts_pg_int(const ts_pg_t *pg, const char *db, const char *sql)
{
    PGresult *r;
    query(pg, db, sql, &r);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else if (r)
        fprintf(stderr, "ts_pg_int: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return v;
}
