/*
 * worker/store.c: the sqlite backend of worker/store.h, and the only file
 * with SQL in it.
 *
 * Statements are prepared on first use and kept for the life of the
 * connection. Writes that span several statements run in BEGIN IMMEDIATE
 * transactions, so that two connections never deadlock upgrading read locks;
 * any step that meets SQLITE_BUSY (once busy_timeout has passed) is reset
 * and retried with a growing pause, without limit: a write is never dropped.
 */
#include "worker/store.h"
#include "common/error.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/utf8.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Each migration brings the schema from version i to i + 1. Never edit one
 * that has shipped; append a new one. */
static const char *const migrations[] = {
    /* 1: users, sessions, rooms, messages, login failures, change log. */
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  username TEXT NOT NULL UNIQUE,"
    "  password TEXT NOT NULL,"
    "  is_staff INTEGER NOT NULL DEFAULT 0,"
    "  is_active INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE sessions ("
    "  token TEXT PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  expires INTEGER NOT NULL);"
    "CREATE INDEX sessions_user ON sessions(user_id);"
    "CREATE INDEX sessions_expires ON sessions(expires);"
    "CREATE TABLE rooms ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  title TEXT NOT NULL,"
    "  staff_only INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE messages ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id),"
    "  body TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  edited INTEGER NOT NULL DEFAULT 0,"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  client_id TEXT,"
    "  UNIQUE (user_id, client_id));"
    "CREATE INDEX messages_room ON messages(room_id, id);"
    "CREATE TABLE login_failures ("
    "  kind INTEGER NOT NULL,"
    "  key TEXT NOT NULL,"
    "  window_start INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  PRIMARY KEY (kind, key));"
    "CREATE TABLE changes ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind INTEGER NOT NULL,"
    "  ref INTEGER NOT NULL,"
    "  at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)));"
    "CREATE TRIGGER rooms_added AFTER INSERT ON rooms BEGIN"
    "  INSERT INTO changes(kind, ref) VALUES (1, NEW.id); END;"
    "CREATE TRIGGER rooms_changed AFTER UPDATE ON rooms BEGIN"
    "  INSERT INTO changes(kind, ref) VALUES (1, NEW.id); END;"
    "CREATE TRIGGER rooms_deleted AFTER DELETE ON rooms BEGIN"
    "  INSERT INTO changes(kind, ref) VALUES (1, OLD.id); END;"
    "CREATE TRIGGER users_changed AFTER UPDATE OF is_staff, is_active ON users"
    "  WHEN NEW.is_staff != OLD.is_staff OR NEW.is_active != OLD.is_active BEGIN"
    "  INSERT INTO changes(kind, ref) VALUES (2, NEW.id); END;",
    /* 2: presence of connections in rooms, and the cursor of claimed changes.
     * Presence rows outlive their room on purpose: whoever handles the
     * room's deletion still finds the connections to take out. */
    "CREATE TABLE presence ("
    "  channel TEXT NOT NULL,"
    "  room_id INTEGER NOT NULL,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  PRIMARY KEY (channel, room_id));"
    "CREATE INDEX presence_room ON presence(room_id);"
    "CREATE TABLE change_cursor ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  seq INTEGER NOT NULL);"
    "INSERT INTO change_cursor VALUES (1, (SELECT coalesce(max(seq), 0) FROM changes));",
    /* 3: whispers, kept so that a user who reconnects gets those sent
     * meanwhile; their ids come from here, unique across workers. */
    "CREATE TABLE whispers ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  from_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  to_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  body TEXT NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE INDEX whispers_from ON whispers(from_id, id);"
    "CREATE INDEX whispers_to ON whispers(to_id, id);",
    /* 4: sessions get an id that names them in place of their secret token
     * (a logout closes the group of its sockets by it). The implicit rowid
     * could go to the next session once the last one ends, or be renumbered
     * by VACUUM, and a logout would close a stranger's sockets: AUTOINCREMENT
     * never reuses one. Sessions keep their rowids as ids. */
    "CREATE TABLE sessions_v4 ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  token TEXT NOT NULL UNIQUE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  expires INTEGER NOT NULL);"
    "INSERT INTO sessions_v4(id, token, user_id, expires)"
    "  SELECT rowid, token, user_id, expires FROM sessions;"
    "DROP TABLE sessions;"
    "ALTER TABLE sessions_v4 RENAME TO sessions;"
    "CREATE INDEX sessions_user ON sessions(user_id);"
    "CREATE INDEX sessions_expires ON sessions(expires);",
    /* 5: superusers (existing staff stay staff only); a session keeps the
     * SHA-256 of its token, not the token; every session that ends, however
     * it ends, is logged, so that its sockets close; a login failure count
     * remembers its last failure (backoff); secrets every worker of the
     * database shares. The sessions of plain-text tokens end here: their
     * users log in once more. */
    "ALTER TABLE users ADD COLUMN is_superuser INTEGER NOT NULL DEFAULT 0;"
    "CREATE TRIGGER sessions_ended AFTER DELETE ON sessions BEGIN"
    "  INSERT INTO changes(kind, ref) VALUES (4, OLD.id); END;"
    "DELETE FROM sessions;"
    "ALTER TABLE sessions RENAME COLUMN token TO token_hash;"
    "ALTER TABLE login_failures ADD COLUMN last_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX login_failures_start ON login_failures(window_start);"
    "CREATE TABLE secrets ("
    "  name TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL);",
};
#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))
_Static_assert(NMIGRATIONS == WRK_STORE_SCHEMA_VERSION, "one migration per schema version");

/* The columns read_user reads, in its order. */
#define USER_COLUMNS "id, username, password, is_staff, is_active, is_superuser"

#define MESSAGE_COLUMNS                                                                            \
    "SELECT m.id, m.room_id, m.user_id, u.username, m.body, m.created, m.edited, m.deleted "       \
    "FROM messages m JOIN users u ON u.id = m.user_id "

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_VERSION,
    ST_USER_ADD,
    ST_USER_BY_NAME,
    ST_USER_BY_ID,
    ST_USER_SET_PASSWORD,
    ST_USER_SET_STAFF,
    ST_USER_SET_ACTIVE,
    ST_USER_SET_SUPERUSER,
    ST_USER_EACH,
    ST_SESSION_ADD,
    ST_SESSION_USER,
    ST_SESSION_DELETE,
    ST_SESSION_DELETE_USER,
    ST_SESSION_END_OTHERS,
    ST_SESSION_EXPIRED_ANY,
    ST_SESSION_PURGE,
    ST_CHANGE_PURGE,
    ST_ROOM_ADD,
    ST_ROOM_GET,
    ST_ROOM_RENAME,
    ST_ROOM_STAFF_ONLY,
    ST_ROOM_DELETE,
    ST_ROOM_EACH,
    ST_MESSAGE_ADD,
    ST_MESSAGE_BY_CLIENT_ID,
    ST_MESSAGE_GET,
    ST_MESSAGE_EDIT,
    ST_MESSAGE_DELETE,
    ST_MESSAGES_LAST,
    ST_MESSAGES_SINCE,
    ST_MESSAGES_BEFORE,
    ST_FAILURE_ADD,
    ST_FAILURES,
    ST_FAILURE_RESET,
    ST_FAILURE_PURGE,
    ST_SECRET_ADD,
    ST_SECRET_GET,
    ST_CHANGE_LAST,
    ST_CHANGE_EACH,
    ST_PRESENCE_ADD,
    ST_PRESENCE_REMOVE,
    ST_PRESENCE_REMOVE_ALL,
    ST_PRESENCE_ROOM,
    ST_PRESENCE_OTHERS,
    ST_PRESENCE_MATCH,
    ST_PRESENCE_DELETE_MATCH,
    ST_PRESENCE_COUNT,
    ST_PRESENCE_ALL,
    ST_CURSOR_GET,
    ST_CURSOR_SET,
    ST_WHISPER_ADD,
    ST_WHISPERS_SINCE,
    ST_COUNT
};

static const char *const sql[ST_COUNT] = {
    [ST_BEGIN] = ("BEGIN IMMEDIATE"),
    [ST_COMMIT] = ("COMMIT"),
    [ST_ROLLBACK] = ("ROLLBACK"),
    [ST_VERSION] = ("PRAGMA user_version"),
    [ST_USER_ADD] = ("INSERT INTO users(username, password, is_staff) VALUES (?1, ?2, ?3)"),
    [ST_USER_BY_NAME] = ("SELECT " USER_COLUMNS " FROM users WHERE username = ?1"),
    [ST_USER_BY_ID] = ("SELECT " USER_COLUMNS " FROM users WHERE id = ?1"),
    [ST_USER_SET_PASSWORD] = ("UPDATE users SET password = ?2 WHERE id = ?1"),
    [ST_USER_SET_STAFF] = ("UPDATE users SET is_staff = ?2 WHERE id = ?1"),
    [ST_USER_SET_ACTIVE] = ("UPDATE users SET is_active = ?2 WHERE id = ?1"),
    [ST_USER_SET_SUPERUSER] = ("UPDATE users SET is_superuser = ?2 WHERE id = ?1"),
    [ST_USER_EACH] = ("SELECT id, username, '', is_staff, is_active, is_superuser "
                      "FROM users ORDER BY id"),
    [ST_SESSION_ADD] = ("INSERT INTO sessions(token_hash, user_id, expires) VALUES (?1, ?2, ?3)"),
    [ST_SESSION_USER] = ("SELECT u.id, u.username, u.password, u.is_staff, u.is_active, "
                         "u.is_superuser, s.id "
                         "FROM sessions s JOIN users u ON u.id = s.user_id "
                         "WHERE s.token_hash = ?1 AND s.expires > ?2 AND u.is_active = 1"),
    /* A deleted session is logged by the trigger sessions_ended. */
    [ST_SESSION_DELETE] = ("DELETE FROM sessions WHERE token_hash = ?1"),
    [ST_SESSION_DELETE_USER] = ("DELETE FROM sessions WHERE user_id = ?1"),
    [ST_SESSION_END_OTHERS] = ("DELETE FROM sessions WHERE user_id = ?1 AND id != ?2"),
    [ST_SESSION_EXPIRED_ANY] = ("SELECT 1 FROM sessions WHERE expires <= ?1 LIMIT 1"),
    [ST_SESSION_PURGE] = ("DELETE FROM sessions WHERE expires <= ?1"),
    [ST_CHANGE_PURGE] =
        ("DELETE FROM changes WHERE at < ?1 AND seq < (SELECT max(seq) FROM changes)"),
    [ST_ROOM_ADD] = ("INSERT INTO rooms(title, staff_only) VALUES (?1, ?2)"),
    [ST_ROOM_GET] = ("SELECT id, title, staff_only FROM rooms WHERE id = ?1"),
    [ST_ROOM_RENAME] = ("UPDATE rooms SET title = ?2 WHERE id = ?1"),
    [ST_ROOM_STAFF_ONLY] = ("UPDATE rooms SET staff_only = ?2 WHERE id = ?1"),
    [ST_ROOM_DELETE] = ("DELETE FROM rooms WHERE id = ?1"),
    [ST_ROOM_EACH] = ("SELECT id, title, staff_only FROM rooms ORDER BY id"),
    [ST_MESSAGE_ADD] = ("INSERT INTO messages(room_id, user_id, body, created, client_id) "
                        "VALUES (?1, ?2, ?3, ?4, ?5) "
                        "ON CONFLICT (user_id, client_id) DO NOTHING RETURNING id"),
    [ST_MESSAGE_BY_CLIENT_ID] = ("SELECT id FROM messages WHERE user_id = ?1 AND client_id = ?2"),
    [ST_MESSAGE_GET] = (MESSAGE_COLUMNS "WHERE m.id = ?1"),
    [ST_MESSAGE_EDIT] =
        ("UPDATE messages SET body = ?2, edited = ?3 WHERE id = ?1 AND deleted = 0"),
    /* The text of a deleted message is gone, not hidden. */
    [ST_MESSAGE_DELETE] =
        ("UPDATE messages SET deleted = 1, body = '' WHERE id = ?1 AND deleted = 0"),
    [ST_MESSAGES_LAST] =
        (MESSAGE_COLUMNS "WHERE m.room_id = ?1 AND m.deleted = 0 ORDER BY m.id DESC LIMIT ?2"),
    [ST_MESSAGES_SINCE] =
        (MESSAGE_COLUMNS
         "WHERE m.room_id = ?1 AND m.id > ?3 AND m.deleted = 0 ORDER BY m.id DESC LIMIT ?2"),
    [ST_MESSAGES_BEFORE] =
        (MESSAGE_COLUMNS
         "WHERE m.room_id = ?1 AND m.id < ?3 AND m.deleted = 0 ORDER BY m.id DESC LIMIT ?2"),
    [ST_FAILURE_ADD] =
        ("INSERT INTO login_failures(kind, key, window_start, count, last_at) "
         "VALUES (?1, ?2, ?3, 1, ?3) "
         "ON CONFLICT (kind, key) DO UPDATE SET "
         "count = CASE WHEN window_start <= ?3 - ?4 THEN 1 ELSE count + 1 END, "
         "window_start = CASE WHEN window_start <= ?3 - ?4 THEN ?3 ELSE window_start END, "
         "last_at = ?3 "
         "RETURNING count"),
    [ST_FAILURES] = ("SELECT count, last_at FROM login_failures "
                     "WHERE kind = ?1 AND key = ?2 AND window_start > ?3 - ?4"),
    [ST_FAILURE_RESET] = ("DELETE FROM login_failures WHERE kind = ?1 AND key = ?2"),
    [ST_FAILURE_PURGE] = ("DELETE FROM login_failures WHERE window_start <= ?1 - ?2"),
    [ST_SECRET_ADD] = ("INSERT INTO secrets(name, value) VALUES (?1, ?2) "
                       "ON CONFLICT (name) DO NOTHING"),
    [ST_SECRET_GET] = ("SELECT value FROM secrets WHERE name = ?1"),
    [ST_CHANGE_LAST] = ("SELECT coalesce(max(seq), 0) FROM changes"),
    [ST_CHANGE_EACH] = ("SELECT seq, kind, ref FROM changes WHERE seq > ?1 ORDER BY seq"),
    [ST_PRESENCE_ADD] = ("INSERT OR IGNORE INTO presence(channel, room_id, user_id) "
                         "VALUES (?1, ?2, ?3)"),
    [ST_PRESENCE_REMOVE] = ("DELETE FROM presence WHERE channel = ?1 AND room_id = ?2"),
    [ST_PRESENCE_REMOVE_ALL] = ("DELETE FROM presence WHERE channel = ?1"),
    [ST_PRESENCE_ROOM] = ("SELECT p.channel, p.room_id, p.user_id, u.username, u.is_staff "
                          "FROM presence p JOIN users u ON u.id = p.user_id "
                          "WHERE p.room_id = ?1 ORDER BY u.username, p.channel"),
    [ST_PRESENCE_OTHERS] = ("SELECT count(*) FROM presence "
                            "WHERE room_id = ?2 AND user_id = ?3 AND channel != ?1"),
    /* ?1 a channel, or with ?2 = 1 the prefix of channels; ?3 a room or 0. */
    [ST_PRESENCE_MATCH] =
        ("SELECT p.channel, p.room_id, p.user_id, u.username, u.is_staff "
         "FROM presence p JOIN users u ON u.id = p.user_id "
         "WHERE (CASE WHEN ?2 THEN substr(p.channel, 1, length(?1)) = ?1 ELSE p.channel = ?1 END) "
         "AND (?3 = 0 OR p.room_id = ?3) ORDER BY p.room_id, u.username"),
    [ST_PRESENCE_DELETE_MATCH] =
        ("DELETE FROM presence "
         "WHERE (CASE WHEN ?2 THEN substr(channel, 1, length(?1)) = ?1 ELSE channel = ?1 END) "
         "AND (?3 = 0 OR room_id = ?3)"),
    [ST_PRESENCE_COUNT] = ("SELECT count(*) FROM presence WHERE room_id = ?1 AND user_id = ?2"),
    [ST_PRESENCE_ALL] = ("SELECT p.channel, p.room_id, p.user_id, u.username, u.is_staff "
                         "FROM presence p JOIN users u ON u.id = p.user_id "
                         "ORDER BY u.username, p.channel"),
    [ST_CURSOR_GET] = ("SELECT c.seq, (SELECT coalesce(max(seq), 0) FROM changes) "
                       "FROM change_cursor c WHERE c.id = 1"),
    [ST_CURSOR_SET] = ("UPDATE change_cursor SET seq = ?1 WHERE id = 1"),
    [ST_WHISPER_ADD] = ("INSERT INTO whispers(from_id, to_id, body, created) "
                        "VALUES (?1, ?2, ?3, ?4) RETURNING id"),
    [ST_WHISPERS_SINCE] = ("SELECT w.id, f.username, t.username, w.body, w.created "
                           "FROM whispers w JOIN users f ON f.id = w.from_id "
                           "JOIN users t ON t.id = w.to_id "
                           "WHERE w.id IN (SELECT id FROM whispers WHERE from_id = ?1 AND id > ?3 "
                           "UNION SELECT id FROM whispers WHERE to_id = ?1 AND id > ?3) "
                           "ORDER BY w.id DESC LIMIT ?2"),
};

struct wrk_store {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    int in_batch;
    char errmsg[256];
    wrk_store_stats_t stats;
};

static int db_error(wrk_store_t *s, const char *what)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s: %s", what, sqlite3_errmsg(s->db));
    return MC_EDB;
}

const char *wrk_store_errmsg(const wrk_store_t *s)
{
    return s->errmsg;
}

void wrk_store_stats(const wrk_store_t *s, wrk_store_stats_t *out)
{
    *out = s->stats;
}

/* sqlite's profile of each statement that finished: its time, in ns. */
static int on_profile(unsigned type, void *ctx, void *stmt, void *ns)
{
    wrk_store_t *s = ctx;
    (void)stmt;
    if (type == SQLITE_TRACE_PROFILE) {
        s->stats.statements++;
        s->stats.ns += *(const sqlite3_int64 *)ns;
    }
    return 0;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Returns the prepared statement id, reset and with its bindings cleared,
 * or NULL (with errmsg set). */
static sqlite3_stmt *stmt(wrk_store_t *s, enum stmt_id id)
{
    sqlite3_stmt *st = s->stmts[id];
    if (!st) {
        if (sqlite3_prepare_v3(s->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[id],
                               NULL) != SQLITE_OK) {
            db_error(s, "prepare");
            return NULL;
        }
        return s->stmts[id];
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static int is_busy(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

/* Steps st, retrying for as long as the database is busy. Returns the
 * sqlite result code (SQLITE_ROW, SQLITE_DONE or an error). */
static int step(wrk_store_t *s, sqlite3_stmt *st)
{
    long pause = 1;
    for (;;) {
        int rc = sqlite3_step(st);
        if (!is_busy(rc))
            return rc;
        /* Inside an explicit batch only the BEGIN itself may be retried;
         * sqlite may have rolled a failed statement's batch back. */
        if (s->in_batch && st != s->stmts[ST_BEGIN] && !sqlite3_get_autocommit(s->db))
            return rc;
        mc_warn("store: database busy, retrying");
        s->stats.busy_retries++;
        sqlite3_reset(st);
        pause_ms(pause);
        if (pause < 100)
            pause *= 2;
    }
}

/* Runs a statement that returns no row. */
static int exec_done(wrk_store_t *s, sqlite3_stmt *st, const char *what)
{
    int rc = step(s, st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        db_error(s, what);
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return MC_EEXIST;
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return MC_ENOTFOUND;
    }
    return db_error(s, what);
}

static void copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (!t)
        n = 0;
    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

static int exec_script(wrk_store_t *s, const char *text, const char *what)
{
    char *err = NULL;
    long pause = 1;
    for (;;) {
        int rc = sqlite3_exec(s->db, text, NULL, NULL, &err);
        if (rc == SQLITE_OK)
            return 0;
        snprintf(s->errmsg, sizeof(s->errmsg), "%s: %s", what, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        err = NULL;
        if (!is_busy(rc) || !sqlite3_get_autocommit(s->db))
            return MC_EDB;
        s->stats.busy_retries++;
        pause_ms(pause);
        if (pause < 100)
            pause *= 2;
    }
}

int wrk_store_open(wrk_store_t **out, const char *path, const wrk_store_options_t *opts)
{
    *out = NULL;
    wrk_store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return MC_ENOMEM;
    long busy = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    int rc = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (s->db)
            db_error(s, path);
        mc_error("store: cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "no memory");
        wrk_store_close(s);
        return rc == SQLITE_NOMEM ? MC_ENOMEM : MC_EDB;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, (int)busy);
    sqlite3_trace_v2(s->db, SQLITE_TRACE_PROFILE, on_profile, s);
    if (exec_script(s,
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                    "PRAGMA foreign_keys = ON;",
                    "pragmas")) {
        mc_error("store: %s", s->errmsg);
        wrk_store_close(s);
        return MC_EDB;
    }
    *out = s;
    return 0;
}

void wrk_store_close(wrk_store_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    sqlite3_close(s->db);
    free(s);
}

int wrk_store_version(wrk_store_t *s, int *version)
{
    sqlite3_stmt *st = stmt(s, ST_VERSION);
    if (!st)
        return MC_EDB;
    int rc = step(s, st);
    if (rc != SQLITE_ROW)
        return db_error(s, "user_version");
    *version = sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    return 0;
}

int wrk_store_batch_begin(wrk_store_t *s)
{
    if (s->in_batch)
        return MC_EINVAL;
    s->in_batch = 1;
    sqlite3_stmt *st = stmt(s, ST_BEGIN);
    int rc = st ? exec_done(s, st, "begin") : MC_EDB;
    if (rc)
        s->in_batch = 0;
    return rc;
}

int wrk_store_batch_end(wrk_store_t *s, int commit)
{
    if (!s->in_batch)
        return MC_EINVAL;
    int rc = 0;
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_stmt *st = stmt(s, commit ? ST_COMMIT : ST_ROLLBACK);
        rc = st ? exec_done(s, st, commit ? "commit" : "rollback") : MC_EDB;
        if (rc && commit && !sqlite3_get_autocommit(s->db)) {
            sqlite3_stmt *rb = stmt(s, ST_ROLLBACK);
            if (rb)
                exec_done(s, rb, "rollback");
        }
    } else if (commit) {
        /* sqlite rolled the batch back after a failure inside it. */
        snprintf(s->errmsg, sizeof(s->errmsg), "commit: the batch was rolled back");
        rc = MC_EDB;
    }
    s->in_batch = 0;
    return rc;
}

int wrk_store_migrate(wrk_store_t *s, int *from, int *to)
{
    int rc = wrk_store_batch_begin(s);
    if (rc)
        return rc;
    int version = 0;
    rc = wrk_store_version(s, &version);
    if (rc == 0 && version > (int)NMIGRATIONS) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "the database has schema version %d; this program knows up to %d", version,
                 (int)NMIGRATIONS);
        rc = MC_EDB;
    }
    if (from)
        *from = version;
    for (int v = version; rc == 0 && v < (int)NMIGRATIONS; v++) {
        char setv[64];
        snprintf(setv, sizeof(setv), "PRAGMA user_version = %d", v + 1);
        rc = exec_script(s, migrations[v], "migration");
        if (rc == 0)
            rc = exec_script(s, setv, "migration");
        if (rc == 0)
            mc_info("store: migrated to schema version %d", v + 1);
    }
    int end = wrk_store_batch_end(s, rc == 0);
    if (rc == 0)
        rc = end;
    if (rc == 0 && to)
        *to = (int)NMIGRATIONS;
    /* Statements prepared against the old schema are stale now. */
    for (size_t i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->stmts[i]);
        s->stmts[i] = NULL;
    }
    return rc;
}

/* ---- Users --------------------------------------------------------------- */

static void read_user(sqlite3_stmt *st, wrk_user_t *u)
{
    u->id = sqlite3_column_int64(st, 0);
    copy_text(u->username, sizeof(u->username), st, 1);
    copy_text(u->password, sizeof(u->password), st, 2);
    u->is_staff = sqlite3_column_int(st, 3);
    u->is_active = sqlite3_column_int(st, 4);
    u->is_superuser = sqlite3_column_int(st, 5);
}

/* Runs a query that returns at most one user; with session (may be NULL)
 * the query's seventh column is a session id. */
static int one_user(wrk_store_t *s, sqlite3_stmt *st, wrk_user_t *out, int64_t *session)
{
    int rc = step(s, st);
    if (rc == SQLITE_ROW) {
        read_user(st, out);
        if (session)
            *session = sqlite3_column_int64(st, 6);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? MC_ENOTFOUND : db_error(s, "user");
}

int wrk_store_user_add(wrk_store_t *s, const char *username, const char *hash, int is_staff,
                       int64_t *id)
{
    size_t n = strlen(username);
    if (n == 0 || n > MC_USERNAME_MAX || mc_utf8_check(username, n) || strlen(hash) == 0 ||
        strlen(hash) >= WRK_STORE_HASH_MAX)
        return MC_EINVAL;
    sqlite3_stmt *st = stmt(s, ST_USER_ADD);
    if (!st)
        return MC_EDB;
    sqlite3_bind_text(st, 1, username, (int)n, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, is_staff ? 1 : 0);
    int rc = exec_done(s, st, "add user");
    if (rc == 0 && id)
        *id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

int wrk_store_user_by_name(wrk_store_t *s, const char *username, wrk_user_t *out)
{
    sqlite3_stmt *st = stmt(s, ST_USER_BY_NAME);
    if (!st)
        return MC_EDB;
    sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
    return one_user(s, st, out, NULL);
}

int wrk_store_user_by_id(wrk_store_t *s, int64_t id, wrk_user_t *out)
{
    sqlite3_stmt *st = stmt(s, ST_USER_BY_ID);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, id);
    return one_user(s, st, out, NULL);
}

/* Runs an UPDATE or DELETE keyed on id; MC_ENOTFOUND when it touched nothing. */
static int update_one(wrk_store_t *s, sqlite3_stmt *st, const char *what)
{
    int rc = exec_done(s, st, what);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        return MC_ENOTFOUND;
    return rc;
}

int wrk_store_user_set_password(wrk_store_t *s, int64_t id, const char *hash, int64_t keep_session)
{
    if (strlen(hash) == 0 || strlen(hash) >= WRK_STORE_HASH_MAX)
        return MC_EINVAL;
    int own = !s->in_batch;
    int rc = own ? wrk_store_batch_begin(s) : 0;
    if (rc)
        return rc;
    sqlite3_stmt *st = stmt(s, ST_USER_SET_PASSWORD);
    if (!st)
        rc = MC_EDB;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
        rc = update_one(s, st, "set password");
    }
    if (rc == 0)
        rc = wrk_store_user_end_sessions(s, id, keep_session);
    if (own) {
        int end = wrk_store_batch_end(s, rc == 0);
        if (rc == 0)
            rc = end;
    }
    return rc;
}

/* Sets the flag that statement st_id (?1 the row's id, ?2 the flag) sets. */
static int set_flag(wrk_store_t *s, enum stmt_id st_id, int64_t id, int on, const char *what)
{
    sqlite3_stmt *st = stmt(s, st_id);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, on ? 1 : 0);
    return update_one(s, st, what);
}

int wrk_store_user_set_staff(wrk_store_t *s, int64_t id, int is_staff)
{
    return set_flag(s, ST_USER_SET_STAFF, id, is_staff, "set staff");
}

int wrk_store_user_set_superuser(wrk_store_t *s, int64_t id, int is_superuser)
{
    return set_flag(s, ST_USER_SET_SUPERUSER, id, is_superuser, "set superuser");
}

int wrk_store_user_set_active(wrk_store_t *s, int64_t id, int is_active)
{
    int own = !s->in_batch;
    int rc = own ? wrk_store_batch_begin(s) : 0;
    if (rc)
        return rc;
    sqlite3_stmt *st = stmt(s, ST_USER_SET_ACTIVE);
    if (!st)
        rc = MC_EDB;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, is_active ? 1 : 0);
        rc = update_one(s, st, "set active");
    }
    if (rc == 0 && !is_active) {
        st = stmt(s, ST_SESSION_DELETE_USER);
        if (!st)
            rc = MC_EDB;
        else {
            sqlite3_bind_int64(st, 1, id);
            rc = exec_done(s, st, "end sessions");
        }
    }
    if (own) {
        int end = wrk_store_batch_end(s, rc == 0);
        if (rc == 0)
            rc = end;
    }
    return rc;
}

int wrk_store_user_each(wrk_store_t *s, int (*fn)(void *arg, const wrk_user_t *u), void *arg)
{
    sqlite3_stmt *st = stmt(s, ST_USER_EACH);
    if (!st)
        return MC_EDB;
    int rc = step(s, st), ret = 0;
    while (rc == SQLITE_ROW) {
        wrk_user_t u;
        read_user(st, &u);
        ret = fn(arg, &u);
        if (ret)
            break;
        rc = sqlite3_step(st);
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_error(s, "list users");
    sqlite3_reset(st);
    return ret;
}

/* ---- Sessions ------------------------------------------------------------ */

/* Binds the SHA-256 of token (hex) as parameter i; hex must outlive the
 * statement's run. */
static void bind_token(sqlite3_stmt *st, int i, const char *token, char hex[MC_SHA256_HEX_LEN + 1])
{
    mc_sha256_hex(token, strlen(token), hex);
    sqlite3_bind_text(st, i, hex, MC_SHA256_HEX_LEN, SQLITE_STATIC);
}

int wrk_store_session_add(wrk_store_t *s, const char *token, int64_t user_id, int64_t expires_ms)
{
    sqlite3_stmt *st = stmt(s, ST_SESSION_ADD);
    if (!st)
        return MC_EDB;
    char hex[MC_SHA256_HEX_LEN + 1];
    bind_token(st, 1, token, hex);
    sqlite3_bind_int64(st, 2, user_id);
    sqlite3_bind_int64(st, 3, expires_ms);
    return exec_done(s, st, "add session");
}

int wrk_store_session_user(wrk_store_t *s, const char *token, int64_t now_ms, wrk_user_t *out,
                           int64_t *session)
{
    sqlite3_stmt *st = stmt(s, ST_SESSION_USER);
    if (!st)
        return MC_EDB;
    char hex[MC_SHA256_HEX_LEN + 1];
    bind_token(st, 1, token, hex);
    sqlite3_bind_int64(st, 2, now_ms);
    return one_user(s, st, out, session);
}

int wrk_store_session_delete(wrk_store_t *s, const char *token)
{
    sqlite3_stmt *st = stmt(s, ST_SESSION_DELETE);
    if (!st)
        return MC_EDB;
    char hex[MC_SHA256_HEX_LEN + 1];
    bind_token(st, 1, token, hex);
    return exec_done(s, st, "end session");
}

int wrk_store_user_end_sessions(wrk_store_t *s, int64_t user_id, int64_t keep_session)
{
    sqlite3_stmt *st = stmt(s, ST_SESSION_END_OTHERS);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, keep_session);
    return exec_done(s, st, "end sessions");
}

int wrk_store_sessions_expire(wrk_store_t *s, int64_t now_ms, long *ended)
{
    if (ended)
        *ended = 0;
    /* Most calls find nothing: find that out without the write lock. */
    sqlite3_stmt *st = stmt(s, ST_SESSION_EXPIRED_ANY);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, now_ms);
    int rc = step(s, st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return db_error(s, "expired sessions");
    st = stmt(s, ST_SESSION_PURGE);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, now_ms);
    rc = exec_done(s, st, "expire sessions");
    if (rc == 0 && ended)
        *ended = (long)sqlite3_changes(s->db);
    return rc;
}

int wrk_store_purge(wrk_store_t *s, int64_t now_ms, int64_t keep_ms)
{
    int rc = wrk_store_sessions_expire(s, now_ms, NULL);
    if (rc)
        return rc;
    sqlite3_stmt *st = stmt(s, ST_CHANGE_PURGE);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, now_ms - keep_ms);
    return exec_done(s, st, "purge changes");
}

/* ---- Secrets ----------------------------------------------------------------- */

int wrk_store_secret(wrk_store_t *s, const char *name, const char *fresh, char *out, size_t size)
{
    if (!*fresh || strlen(fresh) >= size)
        return MC_EINVAL;
    sqlite3_stmt *st = stmt(s, ST_SECRET_ADD);
    if (!st)
        return MC_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, fresh, -1, SQLITE_STATIC);
    int rc = exec_done(s, st, "add secret");
    if (rc)
        return rc;
    st = stmt(s, ST_SECRET_GET);
    if (!st)
        return MC_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = step(s, st);
    int ret = rc == SQLITE_ROW ? 0 : db_error(s, "secret");
    if (ret == 0 && (size_t)sqlite3_column_bytes(st, 0) >= size)
        ret = MC_ETOOBIG;
    if (ret == 0)
        copy_text(out, size, st, 0);
    sqlite3_reset(st);
    return ret;
}

/* ---- Rooms --------------------------------------------------------------- */

/* Titles and usernames go to every client in WebSocket text frames: one
 * that is not UTF-8 would break each client's socket. */
static int check_title(const char *title)
{
    size_t n = strlen(title);
    return n == 0 || n > WRK_ROOM_TITLE_MAX || mc_utf8_check(title, n) ? MC_EINVAL : 0;
}

int wrk_store_room_add(wrk_store_t *s, const char *title, int staff_only, int64_t *id)
{
    if (check_title(title))
        return MC_EINVAL;
    sqlite3_stmt *st = stmt(s, ST_ROOM_ADD);
    if (!st)
        return MC_EDB;
    sqlite3_bind_text(st, 1, title, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, staff_only ? 1 : 0);
    int rc = exec_done(s, st, "add room");
    if (rc == 0 && id)
        *id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

static void read_room(sqlite3_stmt *st, wrk_room_t *r)
{
    r->id = sqlite3_column_int64(st, 0);
    copy_text(r->title, sizeof(r->title), st, 1);
    r->staff_only = sqlite3_column_int(st, 2);
}

int wrk_store_room_get(wrk_store_t *s, int64_t id, wrk_room_t *out)
{
    sqlite3_stmt *st = stmt(s, ST_ROOM_GET);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, id);
    int rc = step(s, st);
    if (rc == SQLITE_ROW)
        read_room(st, out);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? MC_ENOTFOUND : db_error(s, "room");
}

int wrk_store_room_rename(wrk_store_t *s, int64_t id, const char *title)
{
    if (check_title(title))
        return MC_EINVAL;
    sqlite3_stmt *st = stmt(s, ST_ROOM_RENAME);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, title, -1, SQLITE_STATIC);
    return update_one(s, st, "rename room");
}

int wrk_store_room_set_staff_only(wrk_store_t *s, int64_t id, int staff_only)
{
    return set_flag(s, ST_ROOM_STAFF_ONLY, id, staff_only, "set staff-only");
}

int wrk_store_room_delete(wrk_store_t *s, int64_t id)
{
    sqlite3_stmt *st = stmt(s, ST_ROOM_DELETE);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, id);
    return update_one(s, st, "delete room");
}

int wrk_store_room_each(wrk_store_t *s, int (*fn)(void *arg, const wrk_room_t *r), void *arg)
{
    sqlite3_stmt *st = stmt(s, ST_ROOM_EACH);
    if (!st)
        return MC_EDB;
    int rc = step(s, st), ret = 0;
    while (rc == SQLITE_ROW) {
        wrk_room_t r;
        read_room(st, &r);
        ret = fn(arg, &r);
        if (ret)
            break;
        rc = sqlite3_step(st);
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_error(s, "list rooms");
    sqlite3_reset(st);
    return ret;
}

/* ---- Messages ------------------------------------------------------------ */

void wrk_message_clear(wrk_message_t *m)
{
    free(m->body);
    memset(m, 0, sizeof(*m));
}

void wrk_message_list_clear(wrk_message_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].body);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

static int read_message(sqlite3_stmt *st, wrk_message_t *m)
{
    memset(m, 0, sizeof(*m));
    m->id = sqlite3_column_int64(st, 0);
    m->room_id = sqlite3_column_int64(st, 1);
    m->user_id = sqlite3_column_int64(st, 2);
    copy_text(m->username, sizeof(m->username), st, 3);
    const void *body = sqlite3_column_blob(st, 4);
    size_t n = (size_t)sqlite3_column_bytes(st, 4);
    m->body = malloc(n + 1);
    if (!m->body)
        return MC_ENOMEM;
    if (n)
        memcpy(m->body, body, n);
    m->body[n] = '\0';
    m->body_len = n;
    m->created_ms = sqlite3_column_int64(st, 5);
    m->edited_ms = sqlite3_column_int64(st, 6);
    m->deleted = sqlite3_column_int(st, 7);
    return 0;
}

int wrk_store_message_get(wrk_store_t *s, int64_t id, wrk_message_t *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = stmt(s, ST_MESSAGE_GET);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, id);
    int rc = step(s, st), ret;
    if (rc == SQLITE_ROW)
        ret = read_message(st, out);
    else
        ret = rc == SQLITE_DONE ? MC_ENOTFOUND : db_error(s, "message");
    sqlite3_reset(st);
    return ret;
}

int wrk_store_message_add(wrk_store_t *s, int64_t room_id, int64_t user_id, const char *body,
                          size_t body_len, const char *client_id, int64_t now_ms,
                          wrk_message_t *out, int *duplicate)
{
    memset(out, 0, sizeof(*out));
    int dup_unused;
    if (!duplicate)
        duplicate = &dup_unused;
    *duplicate = 0;
    if (body_len > (size_t)1 << 30 || (client_id && strlen(client_id) > WRK_CLIENT_ID_MAX))
        return MC_EINVAL;
    sqlite3_stmt *st = stmt(s, ST_MESSAGE_ADD);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, room_id);
    sqlite3_bind_int64(st, 2, user_id);
    sqlite3_bind_text(st, 3, body, (int)body_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    if (client_id)
        sqlite3_bind_text(st, 5, client_id, -1, SQLITE_STATIC);
    int64_t id = 0;
    int rc = step(s, st);
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        int ret = db_error(s, "add message");
        return rc == SQLITE_CONSTRAINT_FOREIGNKEY ? MC_ENOTFOUND : ret;
    }
    if (id == 0) {
        /* The unique (user, client id) refused it: the message is stored
         * already. Only its sender can have made it, so it stays. */
        *duplicate = 1;
        st = stmt(s, ST_MESSAGE_BY_CLIENT_ID);
        if (!st)
            return MC_EDB;
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_text(st, 2, client_id ? client_id : "", -1, SQLITE_STATIC);
        rc = step(s, st);
        if (rc == SQLITE_ROW)
            id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (rc != SQLITE_ROW)
            return rc == SQLITE_DONE ? MC_ENOTFOUND : db_error(s, "find message");
    }
    return wrk_store_message_get(s, id, out);
}

int wrk_store_message_edit(wrk_store_t *s, int64_t id, const char *body, size_t body_len,
                           int64_t now_ms)
{
    if (body_len > (size_t)1 << 30)
        return MC_EINVAL;
    sqlite3_stmt *st = stmt(s, ST_MESSAGE_EDIT);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, body, (int)body_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    return update_one(s, st, "edit message");
}

int wrk_store_message_delete(wrk_store_t *s, int64_t id)
{
    sqlite3_stmt *st = stmt(s, ST_MESSAGE_DELETE);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, id);
    return update_one(s, st, "delete message");
}

/* Runs a message query that returns rows newest first, LIMIT ?2 = limit + 1,
 * and fills out oldest first with at most limit of them. */
static int message_query(wrk_store_t *s, enum stmt_id id, int64_t room_id, int64_t bound,
                         long limit, wrk_message_list_t *out)
{
    memset(out, 0, sizeof(*out));
    if (limit < 0)
        return MC_EINVAL;
    if (limit == 0)
        return 0;
    sqlite3_stmt *st = stmt(s, id);
    if (!st)
        return MC_EDB;
    out->items = calloc((size_t)limit, sizeof(*out->items));
    if (!out->items)
        return MC_ENOMEM;
    sqlite3_bind_int64(st, 1, room_id);
    sqlite3_bind_int64(st, 2, (int64_t)limit + 1);
    if (id != ST_MESSAGES_LAST)
        sqlite3_bind_int64(st, 3, bound);
    int rc = step(s, st), ret = 0;
    while (rc == SQLITE_ROW) {
        if (out->n == (size_t)limit) {
            out->truncated = 1;
            rc = SQLITE_DONE;
            break;
        }
        ret = read_message(st, &out->items[out->n]);
        if (ret)
            break;
        out->n++;
        rc = sqlite3_step(st);
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_error(s, "messages");
    sqlite3_reset(st);
    if (ret) {
        wrk_message_list_clear(out);
        return ret;
    }
    for (size_t i = 0, j = out->n ? out->n - 1 : 0; i < j; i++, j--) {
        wrk_message_t t = out->items[i];
        out->items[i] = out->items[j];
        out->items[j] = t;
    }
    return 0;
}

int wrk_store_messages_last(wrk_store_t *s, int64_t room_id, long limit, wrk_message_list_t *out)
{
    return message_query(s, ST_MESSAGES_LAST, room_id, 0, limit, out);
}

int wrk_store_messages_since(wrk_store_t *s, int64_t room_id, int64_t since, long limit,
                             wrk_message_list_t *out)
{
    if (limit > WRK_STORE_SINCE_MAX)
        limit = WRK_STORE_SINCE_MAX;
    return message_query(s, ST_MESSAGES_SINCE, room_id, since, limit, out);
}

int wrk_store_messages_before(wrk_store_t *s, int64_t room_id, int64_t before, long limit,
                              wrk_message_list_t *out)
{
    return message_query(s, ST_MESSAGES_BEFORE, room_id, before, limit, out);
}

/* ---- Login failures ------------------------------------------------------ */

int wrk_store_login_failure_add(wrk_store_t *s, enum wrk_limit_kind kind, const char *key,
                                int64_t now_ms, int64_t window_ms, long *count)
{
    sqlite3_stmt *st = stmt(s, ST_FAILURE_ADD);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_int64(st, 4, window_ms);
    int rc = step(s, st);
    long n = 0;
    if (rc == SQLITE_ROW) {
        n = (long)sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return db_error(s, "count failure");
    if (count)
        *count = n;
    return 0;
}

int wrk_store_login_failures(wrk_store_t *s, enum wrk_limit_kind kind, const char *key,
                             int64_t now_ms, int64_t window_ms, long *count, int64_t *last_ms)
{
    sqlite3_stmt *st = stmt(s, ST_FAILURES);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_int64(st, 4, window_ms);
    int rc = step(s, st);
    *count = rc == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : 0;
    if (last_ms)
        *last_ms = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_error(s, "failures");
}

int wrk_store_login_failure_reset(wrk_store_t *s, enum wrk_limit_kind kind, const char *key)
{
    sqlite3_stmt *st = stmt(s, ST_FAILURE_RESET);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    return exec_done(s, st, "reset failures");
}

int wrk_store_login_failures_purge(wrk_store_t *s, int64_t now_ms, int64_t window_ms, long *purged)
{
    sqlite3_stmt *st = stmt(s, ST_FAILURE_PURGE);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, window_ms);
    int rc = exec_done(s, st, "purge failures");
    if (purged)
        *purged = rc == 0 ? (long)sqlite3_changes(s->db) : 0;
    return rc;
}

/* ---- Change log ---------------------------------------------------------- */

int wrk_store_change_last(wrk_store_t *s, int64_t *seq)
{
    sqlite3_stmt *st = stmt(s, ST_CHANGE_LAST);
    if (!st)
        return MC_EDB;
    int rc = step(s, st);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : db_error(s, "changes");
}

int wrk_store_change_each(wrk_store_t *s, int64_t after,
                          int (*fn)(void *arg, int64_t seq, enum wrk_change_kind kind, int64_t ref),
                          void *arg)
{
    sqlite3_stmt *st = stmt(s, ST_CHANGE_EACH);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, after);
    int rc = step(s, st), ret = 0;
    while (rc == SQLITE_ROW) {
        ret = fn(arg, sqlite3_column_int64(st, 0), (enum wrk_change_kind)sqlite3_column_int(st, 1),
                 sqlite3_column_int64(st, 2));
        if (ret)
            break;
        rc = sqlite3_step(st);
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_error(s, "changes");
    sqlite3_reset(st);
    return ret;
}

/* ---- Presence -------------------------------------------------------------- */

int wrk_store_presence_add(wrk_store_t *s, const char *channel, int64_t room_id, int64_t user_id)
{
    if (strlen(channel) >= sizeof(((wrk_presence_t *)0)->channel))
        return MC_EINVAL;
    sqlite3_stmt *st = stmt(s, ST_PRESENCE_ADD);
    if (!st)
        return MC_EDB;
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, room_id);
    sqlite3_bind_int64(st, 3, user_id);
    return exec_done(s, st, "add presence");
}

int wrk_store_presence_remove(wrk_store_t *s, const char *channel, int64_t room_id)
{
    sqlite3_stmt *st = stmt(s, room_id ? ST_PRESENCE_REMOVE : ST_PRESENCE_REMOVE_ALL);
    if (!st)
        return MC_EDB;
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    if (room_id)
        sqlite3_bind_int64(st, 2, room_id);
    return exec_done(s, st, "remove presence");
}

/* Runs fn inside a batch of its own unless one is open already. */
static int in_batch(wrk_store_t *s, int (*fn)(wrk_store_t *s, void *arg), void *arg)
{
    int own = !s->in_batch;
    int rc = own ? wrk_store_batch_begin(s) : 0;
    if (rc)
        return rc;
    rc = fn(s, arg);
    if (own) {
        int end = wrk_store_batch_end(s, rc == 0);
        if (rc == 0)
            rc = end;
    }
    return rc;
}

/* One integer from a statement whose parameters are bound. */
static int query_int(wrk_store_t *s, sqlite3_stmt *st, int64_t *out, const char *what)
{
    int rc = step(s, st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : db_error(s, what);
}

typedef struct join_args {
    const char *channel;
    int64_t room_id, user_id;
    int *first;
} join_args_t;

static int presence_join(wrk_store_t *s, void *arg)
{
    join_args_t *a = arg;
    sqlite3_stmt *st = stmt(s, ST_PRESENCE_OTHERS);
    if (!st)
        return MC_EDB;
    sqlite3_bind_text(st, 1, a->channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->room_id);
    sqlite3_bind_int64(st, 3, a->user_id);
    int64_t others;
    int rc = query_int(s, st, &others, "count presence");
    if (rc)
        return rc;
    rc = wrk_store_presence_add(s, a->channel, a->room_id, a->user_id);
    /* A connection joining again is no new arrival. */
    *a->first = rc == 0 && others == 0 && sqlite3_changes(s->db) == 1;
    return rc;
}

int wrk_store_presence_join(wrk_store_t *s, const char *channel, int64_t room_id, int64_t user_id,
                            int *first)
{
    *first = 0;
    if (strlen(channel) >= sizeof(((wrk_presence_t *)0)->channel))
        return MC_EINVAL;
    join_args_t a = {channel, room_id, user_id, first};
    return in_batch(s, presence_join, &a);
}

typedef struct leave_args {
    const char *channel;
    int prefix;
    int64_t room_id;
    wrk_presence_list_t *gone;
} leave_args_t;

static int read_presence_rows(wrk_store_t *s, sqlite3_stmt *st, wrk_presence_list_t *out);

static int presence_leave(wrk_store_t *s, void *arg)
{
    leave_args_t *a = arg;
    wrk_presence_list_t rows;
    sqlite3_stmt *st = stmt(s, ST_PRESENCE_MATCH);
    if (!st)
        return MC_EDB;
    sqlite3_bind_text(st, 1, a->channel, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, a->prefix);
    sqlite3_bind_int64(st, 3, a->room_id);
    int rc = read_presence_rows(s, st, &rows);
    if (rc)
        return rc;
    st = stmt(s, ST_PRESENCE_DELETE_MATCH);
    if (!st)
        rc = MC_EDB;
    if (rc == 0) {
        sqlite3_bind_text(st, 1, a->channel, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, a->prefix);
        sqlite3_bind_int64(st, 3, a->room_id);
        rc = exec_done(s, st, "remove presence");
    }
    /* Keep, once per room and user, those with no connection left there. */
    size_t kept = 0;
    for (size_t i = 0; rc == 0 && i < rows.n; i++) {
        const wrk_presence_t *p = &rows.items[i];
        int seen = 0;
        for (size_t j = 0; j < kept && !seen; j++)
            seen = rows.items[j].room_id == p->room_id && rows.items[j].user_id == p->user_id;
        if (seen)
            continue;
        st = stmt(s, ST_PRESENCE_COUNT);
        if (!st) {
            rc = MC_EDB;
            break;
        }
        sqlite3_bind_int64(st, 1, p->room_id);
        sqlite3_bind_int64(st, 2, p->user_id);
        int64_t left;
        rc = query_int(s, st, &left, "count presence");
        if (rc == 0 && left == 0)
            rows.items[kept++] = *p;
    }
    rows.n = kept;
    if (rc)
        wrk_presence_list_clear(&rows);
    *a->gone = rows;
    return rc;
}

int wrk_store_presence_leave(wrk_store_t *s, const char *channel, int prefix, int64_t room_id,
                             wrk_presence_list_t *gone)
{
    memset(gone, 0, sizeof(*gone));
    if (!*channel)
        return MC_EINVAL;
    leave_args_t a = {channel, prefix, room_id, gone};
    return in_batch(s, presence_leave, &a);
}

void wrk_presence_list_clear(wrk_presence_list_t *l)
{
    free(l->items);
    memset(l, 0, sizeof(*l));
}

static int read_presence_rows(wrk_store_t *s, sqlite3_stmt *st, wrk_presence_list_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t cap = 0;
    int rc = step(s, st), ret = 0;
    while (rc == SQLITE_ROW) {
        if (out->n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            wrk_presence_t *items = realloc(out->items, ncap * sizeof(*items));
            if (!items) {
                ret = MC_ENOMEM;
                break;
            }
            out->items = items;
            cap = ncap;
        }
        wrk_presence_t *p = &out->items[out->n++];
        copy_text(p->channel, sizeof(p->channel), st, 0);
        p->room_id = sqlite3_column_int64(st, 1);
        p->user_id = sqlite3_column_int64(st, 2);
        copy_text(p->username, sizeof(p->username), st, 3);
        p->is_staff = sqlite3_column_int(st, 4);
        rc = sqlite3_step(st);
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_error(s, "presence");
    sqlite3_reset(st);
    if (ret)
        wrk_presence_list_clear(out);
    return ret;
}

int wrk_store_presence_list(wrk_store_t *s, int64_t room_id, wrk_presence_list_t *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = stmt(s, room_id ? ST_PRESENCE_ROOM : ST_PRESENCE_ALL);
    if (!st)
        return MC_EDB;
    if (room_id)
        sqlite3_bind_int64(st, 1, room_id);
    return read_presence_rows(s, st, out);
}

int wrk_store_change_claim(wrk_store_t *s, int64_t *from, int64_t *to)
{
    *from = *to = 0;
    /* Most calls find nothing new: find that out without the write lock. */
    sqlite3_stmt *st = stmt(s, ST_CURSOR_GET);
    if (!st)
        return MC_EDB;
    if (!s->in_batch) {
        int r = step(s, st);
        int idle = r == SQLITE_ROW && sqlite3_column_int64(st, 0) >= sqlite3_column_int64(st, 1);
        if (idle)
            *from = *to = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (r != SQLITE_ROW)
            return db_error(s, "change cursor");
        if (idle)
            return 0;
    }
    int own = !s->in_batch;
    int rc = own ? wrk_store_batch_begin(s) : 0;
    if (rc)
        return rc;
    st = stmt(s, ST_CURSOR_GET);
    if (!st)
        rc = MC_EDB;
    if (rc == 0) {
        int r = step(s, st);
        if (r == SQLITE_ROW) {
            *from = sqlite3_column_int64(st, 0);
            *to = sqlite3_column_int64(st, 1);
        } else {
            rc = db_error(s, "change cursor");
        }
        sqlite3_reset(st);
    }
    if (rc == 0 && *to > *from) {
        st = stmt(s, ST_CURSOR_SET);
        if (!st)
            rc = MC_EDB;
        else {
            sqlite3_bind_int64(st, 1, *to);
            rc = exec_done(s, st, "claim changes");
        }
    }
    if (own) {
        int end = wrk_store_batch_end(s, rc == 0);
        if (rc == 0)
            rc = end;
    }
    if (rc)
        *from = *to = 0;
    return rc;
}

/* ---- Whispers -------------------------------------------------------------- */

int wrk_store_whisper_add(wrk_store_t *s, int64_t from_id, int64_t to_id, const char *body,
                          size_t body_len, int64_t now_ms, int64_t *id)
{
    if (body_len > (size_t)1 << 30)
        return MC_EINVAL;
    sqlite3_stmt *st = stmt(s, ST_WHISPER_ADD);
    if (!st)
        return MC_EDB;
    sqlite3_bind_int64(st, 1, from_id);
    sqlite3_bind_int64(st, 2, to_id);
    sqlite3_bind_text(st, 3, body, (int)body_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    int rc = step(s, st);
    int64_t got = 0;
    if (rc == SQLITE_ROW) {
        got = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        int ret = db_error(s, "add whisper");
        return rc == SQLITE_CONSTRAINT_FOREIGNKEY ? MC_ENOTFOUND : ret;
    }
    if (id)
        *id = got;
    return 0;
}

void wrk_whisper_list_clear(wrk_whisper_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].body);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

int wrk_store_whispers_since(wrk_store_t *s, int64_t user_id, int64_t since, long limit,
                             wrk_whisper_list_t *out)
{
    memset(out, 0, sizeof(*out));
    if (limit < 1 || limit > WRK_STORE_SINCE_MAX)
        return MC_EINVAL;
    sqlite3_stmt *st = stmt(s, ST_WHISPERS_SINCE);
    if (!st)
        return MC_EDB;
    out->items = calloc((size_t)limit, sizeof(*out->items));
    if (!out->items)
        return MC_ENOMEM;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, (int64_t)limit + 1);
    sqlite3_bind_int64(st, 3, since);
    int rc = step(s, st), ret = 0;
    while (rc == SQLITE_ROW) {
        if (out->n == (size_t)limit) {
            out->truncated = 1;
            rc = SQLITE_DONE;
            break;
        }
        wrk_whisper_t *w = &out->items[out->n];
        w->id = sqlite3_column_int64(st, 0);
        copy_text(w->from, sizeof(w->from), st, 1);
        copy_text(w->to, sizeof(w->to), st, 2);
        size_t n = (size_t)sqlite3_column_bytes(st, 3);
        const void *body = sqlite3_column_blob(st, 3);
        w->body = malloc(n + 1);
        if (!w->body) {
            ret = MC_ENOMEM;
            break;
        }
        if (n)
            memcpy(w->body, body, n);
        w->body[n] = '\0';
        w->body_len = n;
        w->created_ms = sqlite3_column_int64(st, 4);
        out->n++;
        rc = sqlite3_step(st);
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_error(s, "whispers");
    sqlite3_reset(st);
    if (ret) {
        wrk_whisper_list_clear(out);
        return ret;
    }
    for (size_t i = 0, j = out->n ? out->n - 1 : 0; i < j; i++, j--) {
        wrk_whisper_t t = out->items[i];
        out->items[i] = out->items[j];
        out->items[j] = t;
    }
    return 0;
}
