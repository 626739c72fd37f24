/*
 * worker/store_copy.c: copying one store into another that holds nothing
 * yet, whatever their backends (worker/store.h, wrk_store_copy).
 *
 * Each table is read in pages, in key order, and written with the same keys,
 * in one transaction on the target; the source is read in one transaction
 * too, so the copy is of one moment. What is transient (presence, login
 * failures, the change log) is not copied. Each table's id counter is set
 * past the ids the source ever handed out, so that an id of something
 * deleted before the copy is not given again after it.
 */
#include "worker/store_impl.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>

#define PAGE 1000 /* rows read at once */

typedef struct table {
    const char *name;
    const char *kinds; /* per column: i an integer, t text, n text or NULL; the
                        * first is the key: an id (i), or a name (t) */
    wrk_sql_t page;    /* the rows with a key above ?1, ?2 at most, by key */
    wrk_sql_t insert;
} table_t;

/* In the order their references need. */
static const table_t tables[] = {
    {"users",
     "ittiii",
     {.text = "SELECT id, username, password, is_staff, is_active, is_superuser FROM users "
              "WHERE id > ?1 ORDER BY id LIMIT ?2"},
     {.text = "INSERT INTO users(id, username, password, is_staff, is_active, is_superuser) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"}},
    {"rooms",
     "iti",
     {.text = "SELECT id, title, staff_only FROM rooms WHERE id > ?1 ORDER BY id LIMIT ?2"},
     {.text = "INSERT INTO rooms(id, title, staff_only) VALUES (?1, ?2, ?3)"}},
    {"sessions",
     "itii",
     {.text = "SELECT id, token_hash, user_id, expires FROM sessions WHERE id > ?1 "
              "ORDER BY id LIMIT ?2"},
     {.text = "INSERT INTO sessions(id, token_hash, user_id, expires) VALUES (?1, ?2, ?3, ?4)"}},
    {"messages",
     "iiitiiin",
     {.text =
          "SELECT id, room_id, user_id, body, created, edited, deleted, client_id FROM messages "
          "WHERE id > ?1 ORDER BY id LIMIT ?2"},
     {.text =
          "INSERT INTO messages(id, room_id, user_id, body, created, edited, deleted, client_id) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"}},
    {"whispers",
     "iiitin",
     {.text = "SELECT id, from_id, to_id, body, created, client_id FROM whispers WHERE id > ?1 "
              "ORDER BY id LIMIT ?2"},
     {.text = "INSERT INTO whispers(id, from_id, to_id, body, created, client_id) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"}},
    {"secrets",
     "tt",
     {.text = "SELECT name, value FROM secrets WHERE name > ?1 ORDER BY name LIMIT ?2"},
     {.text = "INSERT INTO secrets(name, value) VALUES (?1, ?2)"}},
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

static const wrk_sql_t sql_counts = {
    .text = "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM rooms), "
            "(SELECT count(*) FROM sessions), (SELECT count(*) FROM messages), "
            "(SELECT count(*) FROM whispers), (SELECT count(*) FROM secrets)"};
/* The last id table ?1 handed out (0: none). */
static const wrk_sql_t sql_last_id = {
    .text = "",
    .sqlite = "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?1), 0)",
    .pg = "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence(?1, 'id')), 0)"};
/* Makes table ?1 hand out ids above ?2 (in two steps on sqlite). */
static const wrk_sql_t sql_last_id_set = {
    .text = "",
    .sqlite = "UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1",
    .pg = "SELECT CASE WHEN ?2 > 0 THEN setval(pg_get_serial_sequence(?1, 'id'), ?2) END"};
static const wrk_sql_t sql_last_id_add = {
    .text = "",
    .sqlite = "INSERT INTO sqlite_sequence(name, seq) SELECT ?1, ?2 "
              "WHERE ?2 > 0 AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1)"};
/* Fresh statistics, so that the first queries on the copy are planned as
 * for a database that has been in use (sqlite plans without them). */
static const wrk_sql_t sql_analyze = {.text = "", .pg = "ANALYZE"};
/* Nobody needs to react to the changes the copy itself logged. */
static const wrk_sql_t sql_changes_seen = {
    .text =
        "UPDATE change_cursor SET seq = (SELECT coalesce(max(seq), 0) FROM changes) WHERE id = 1"};

/* The rows of each table, in the order of tables[]. */
static int count_rows(wrk_store_t *s, int64_t n[NTABLES])
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_counts);
    if (!st)
        return MC_EDB;
    int rc = wrk__step(s, st, "count rows");
    for (size_t i = 0; i < NTABLES; i++)
        n[i] = rc == WRK_DB_ROW ? wrk_db_int(st, (int)i) : 0;
    wrk_db_reset(st);
    return rc < 0 ? rc : 0;
}

static int last_id(wrk_store_t *s, const char *table, int64_t *id)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_last_id);
    if (!st)
        return MC_EDB;
    wrk_db_bind_text(st, 1, table, strlen(table));
    return wrk__query_int(s, st, id, "last id");
}

static int set_last_id(wrk_store_t *s, const char *table, int64_t id)
{
    const wrk_sql_t *steps[] = {&sql_last_id_set, &sql_last_id_add};
    for (size_t i = 0; i < 2; i++) {
        if (!*wrk__sql_text(s, steps[i]))
            continue;
        wrk_db_stmt_t *st = wrk__stmt(s, steps[i]);
        if (!st)
            return MC_EDB;
        wrk_db_bind_text(st, 1, table, strlen(table));
        wrk_db_bind_int(st, 2, id);
        int rc = wrk__exec(s, st, "set last id");
        if (rc)
            return rc;
    }
    return 0;
}

/* Binds column c of the row read by from as parameter c + 1 of to. */
static void bind_column(wrk_db_stmt_t *to, wrk_db_stmt_t *from, int c, char kind)
{
    size_t len;
    const char *text;
    switch (kind) {
    case 'i':
        wrk_db_bind_int(to, c + 1, wrk_db_int(from, c));
        break;
    case 'n':
        if (wrk_db_is_null(from, c)) {
            wrk_db_bind_null(to, c + 1);
            break;
        }
        /* fall through */
    default:
        text = wrk_db_text(from, c, &len);
        wrk_db_bind_text(to, c + 1, text, len);
        break;
    }
}

/* Copies table t, total rows, in pages; *done counts the rows copied. */
static int copy_table(wrk_store_t *from, wrk_store_t *to, const table_t *t, int64_t total,
                      int64_t *done, wrk_store_copy_progress_fn progress, void *arg)
{
    int ncols = (int)strlen(t->kinds), by_name = t->kinds[0] == 't';
    int64_t after = 0;
    char after_name[1024] = "";
    for (;;) {
        wrk_db_stmt_t *page = wrk__stmt(from, &t->page);
        if (!page)
            return MC_EDB;
        if (by_name)
            wrk_db_bind_text(page, 1, after_name, strlen(after_name));
        else
            wrk_db_bind_int(page, 1, after);
        wrk_db_bind_int(page, 2, PAGE);
        int rc, rows = 0;
        while ((rc = wrk__step(from, page, t->name)) == WRK_DB_ROW) {
            wrk_db_stmt_t *ins = wrk__stmt(to, &t->insert);
            if (!ins) {
                rc = MC_EDB;
                break;
            }
            for (int c = 0; c < ncols; c++)
                bind_column(ins, page, c, t->kinds[c]);
            if (by_name)
                wrk__copy_text(page, 0, after_name, sizeof(after_name));
            else
                after = wrk_db_int(page, 0);
            if ((rc = wrk__exec(to, ins, t->name)) != 0)
                break;
            rows++;
        }
        wrk_db_reset(page);
        if (rc < 0)
            return rc;
        *done += rows;
        if (progress)
            progress(arg, t->name, *done, total);
        if (rows < PAGE)
            return 0;
    }
}

static int copy_all(wrk_store_t *from, wrk_store_t *to, wrk_store_copy_progress_fn progress,
                    void *arg, int64_t copied[NTABLES])
{
    int64_t there[NTABLES], total[NTABLES];
    int rc = count_rows(to, there);
    if (rc)
        return rc;
    char held[128] = "";
    for (size_t i = 0; i < NTABLES; i++)
        if (there[i])
            snprintf(held + strlen(held), sizeof(held) - strlen(held), "%s%s", *held ? ", " : "",
                     tables[i].name);
    if (*held) {
        snprintf(to->errmsg, sizeof(to->errmsg),
                 "the target database is not empty (it holds %s): copy into an empty one", held);
        return MC_EEXIST;
    }
    if ((rc = count_rows(from, total)) != 0)
        return rc;
    for (size_t i = 0; i < NTABLES && rc == 0; i++) {
        const table_t *t = &tables[i];
        int64_t last = 0;
        rc = copy_table(from, to, t, total[i], &copied[i], progress, arg);
        if (rc == 0 && t->kinds[0] == 'i')
            rc = last_id(from, t->name, &last);
        if (rc == 0 && t->kinds[0] == 'i')
            rc = set_last_id(to, t->name, last);
    }
    return rc ? rc : wrk__run(to, &sql_changes_seen, "change cursor");
}

int wrk_store_copy(wrk_store_t *from, wrk_store_t *to, wrk_store_copy_progress_fn progress,
                   void *arg, wrk_store_copy_counts_t *counts)
{
    memset(counts, 0, sizeof(*counts));
    int vfrom = 0, vto = 0;
    int rc = wrk_store_version(from, &vfrom);
    if (rc == 0)
        rc = wrk_store_version(to, &vto);
    if (rc)
        return rc;
    if (vfrom != WRK_STORE_SCHEMA_VERSION || vto != WRK_STORE_SCHEMA_VERSION) {
        snprintf(to->errmsg, sizeof(to->errmsg),
                 "both databases must be at schema version %d (migrate them): they are at %d "
                 "and %d",
                 WRK_STORE_SCHEMA_VERSION, vfrom, vto);
        return MC_EINVAL;
    }
    if ((rc = wrk_store_batch_begin(from)) != 0)
        return rc;
    if ((rc = wrk_store_batch_begin(to)) != 0) {
        wrk_store_batch_end(from, 0);
        return rc;
    }
    int64_t copied[NTABLES] = {0};
    from->errmsg[0] = to->errmsg[0] = '\0';
    rc = copy_all(from, to, progress, arg, copied);
    if (rc && !to->errmsg[0]) /* the source failed */
        snprintf(to->errmsg, sizeof(to->errmsg), "reading the source: %.200s", from->errmsg);
    int end = wrk_store_batch_end(to, rc == 0);
    wrk_store_batch_end(from, 0);
    if (rc == 0 && (rc = end) == 0 && (rc = wrk__run(to, &sql_analyze, "analyze")) == 0)
        *counts = (wrk_store_copy_counts_t){copied[0], copied[1], copied[2],
                                            copied[3], copied[4], copied[5]};
    return rc;
}
