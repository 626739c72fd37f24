/*
 * worker/store_schema.c: the schema of each backend and the migrations
 * that build it.
 *
 * A schema version means the same tables on every backend; each backend
 * has its own history of migrations to reach it. sqlite's history starts at
 * version 1 and records the version in PRAGMA user_version; PostgreSQL's
 * starts at version 4 (everything sqlite had by then, in one step) and
 * records each version applied in the table schema_migrations. A new
 * version appends one migration to each history. Never edit a migration
 * that has shipped.
 *
 * Migrating runs in one transaction. On PostgreSQL it first takes an
 * advisory lock, so that processes migrating at once take turns: the first
 * migrates, the others find the work done.
 */
#include "worker/store_impl.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>

typedef struct migration {
    int version; /* the version it brings the schema to */
    const char *script;
} migration_t;

static const migration_t sqlite_history[] = {
    /* 1: users, sessions, rooms, messages, login failures, change log. */
    {1, "CREATE TABLE users ("
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
        "  at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS "
        "INTEGER)));"
        "CREATE TRIGGER rooms_added AFTER INSERT ON rooms BEGIN"
        "  INSERT INTO changes(kind, ref) VALUES (1, NEW.id); END;"
        "CREATE TRIGGER rooms_changed AFTER UPDATE ON rooms BEGIN"
        "  INSERT INTO changes(kind, ref) VALUES (1, NEW.id); END;"
        "CREATE TRIGGER rooms_deleted AFTER DELETE ON rooms BEGIN"
        "  INSERT INTO changes(kind, ref) VALUES (1, OLD.id); END;"
        "CREATE TRIGGER users_changed AFTER UPDATE OF is_staff, is_active ON users"
        "  WHEN NEW.is_staff != OLD.is_staff OR NEW.is_active != OLD.is_active BEGIN"
        "  INSERT INTO changes(kind, ref) VALUES (2, NEW.id); END;"},
    /* 2: presence of connections in rooms, and the cursor of claimed changes.
     * Presence rows outlive their room on purpose: whoever handles the
     * room's deletion still finds the connections to take out. */
    {2, "CREATE TABLE presence ("
        "  channel TEXT NOT NULL,"
        "  room_id INTEGER NOT NULL,"
        "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  PRIMARY KEY (channel, room_id));"
        "CREATE INDEX presence_room ON presence(room_id);"
        "CREATE TABLE change_cursor ("
        "  id INTEGER PRIMARY KEY CHECK (id = 1),"
        "  seq INTEGER NOT NULL);"
        "INSERT INTO change_cursor VALUES (1, (SELECT coalesce(max(seq), 0) FROM changes));"},
    /* 3: whispers, kept so that a user who reconnects gets those sent
     * meanwhile; their ids come from here, unique across workers. */
    {3, "CREATE TABLE whispers ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  from_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  to_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  body TEXT NOT NULL,"
        "  created INTEGER NOT NULL);"
        "CREATE INDEX whispers_from ON whispers(from_id, id);"
        "CREATE INDEX whispers_to ON whispers(to_id, id);"},
    /* 4: sessions get an id that names them in place of their secret token
     * (a logout closes the group of its sockets by it). The implicit rowid
     * could go to the next session once the last one ends, or be renumbered
     * by VACUUM, and a logout would close a stranger's sockets: AUTOINCREMENT
     * never reuses one. Sessions keep their rowids as ids. */
    {4, "CREATE TABLE sessions_v4 ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  token TEXT NOT NULL UNIQUE,"
        "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  expires INTEGER NOT NULL);"
        "INSERT INTO sessions_v4(id, token, user_id, expires)"
        "  SELECT rowid, token, user_id, expires FROM sessions;"
        "DROP TABLE sessions;"
        "ALTER TABLE sessions_v4 RENAME TO sessions;"
        "CREATE INDEX sessions_user ON sessions(user_id);"
        "CREATE INDEX sessions_expires ON sessions(expires);"},
    /* 5: superusers (existing staff stay staff only); a session keeps the
     * SHA-256 of its token, not the token; every session that ends, however
     * it ends, is logged, so that its sockets close; a login failure count
     * remembers its last failure (backoff); secrets every worker of the
     * database shares. The sessions of plain-text tokens end here: their
     * users log in once more. */
    {5, "ALTER TABLE users ADD COLUMN is_superuser INTEGER NOT NULL DEFAULT 0;"
        "CREATE TRIGGER sessions_ended AFTER DELETE ON sessions BEGIN"
        "  INSERT INTO changes(kind, ref) VALUES (4, OLD.id); END;"
        "DELETE FROM sessions;"
        "ALTER TABLE sessions RENAME COLUMN token TO token_hash;"
        "ALTER TABLE login_failures ADD COLUMN last_at INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX login_failures_start ON login_failures(window_start);"
        "CREATE TABLE secrets ("
        "  name TEXT PRIMARY KEY,"
        "  value TEXT NOT NULL);"},
    /* 6: a whisper is named by its sender's client_id (or the envelope's
     * id), as messages are, so that a whisper handled twice, or sent again
     * by its client, is stored once. Older whispers have none. */
    {6, "ALTER TABLE whispers ADD COLUMN client_id TEXT;"
        "CREATE UNIQUE INDEX whispers_client_id ON whispers(from_id, client_id);"},
    /* 7: the rooms whose messages are stored but maybe not yet published
     * (worker/store.h, Publishing): a row per room, marked and cleared by
     * every batch, never deleted. */
    {7, "CREATE TABLE publishing ("
        "  room_id INTEGER PRIMARY KEY,"
        "  after_id INTEGER NOT NULL,"
        "  senders TEXT NOT NULL,"
        "  pending INTEGER NOT NULL);"},
};

/* Advisory locks of the chat on PostgreSQL are (28003, n) ("mc" in ASCII):
 * 1 migrations, 2 the change log, 3 presence, 4 whispers. */
static const migration_t pg_history[] = {
    /* 4: the tables of sqlite's version 4. Text compares byte by byte, as
     * in sqlite, whatever the database's locale. Ids are identities that
     * are never reused. The change log and whispers number their rows in
     * the order their transactions commit (an advisory lock held from the
     * number's choice to the commit), so that whoever reads them "after
     * n" never misses one that committed late. */
    {4, "CREATE TABLE users ("
        "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        "  username TEXT COLLATE \"C\" NOT NULL UNIQUE,"
        "  password TEXT NOT NULL,"
        "  is_staff INTEGER NOT NULL DEFAULT 0,"
        "  is_active INTEGER NOT NULL DEFAULT 1);"
        "CREATE TABLE sessions ("
        "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        "  token TEXT COLLATE \"C\" NOT NULL UNIQUE,"
        "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  expires BIGINT NOT NULL);"
        "CREATE INDEX sessions_user ON sessions(user_id);"
        "CREATE INDEX sessions_expires ON sessions(expires);"
        "CREATE TABLE rooms ("
        "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        "  title TEXT COLLATE \"C\" NOT NULL,"
        "  staff_only INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE messages ("
        "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        "  room_id BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
        "  user_id BIGINT NOT NULL REFERENCES users(id),"
        "  body TEXT NOT NULL,"
        "  created BIGINT NOT NULL,"
        "  edited BIGINT NOT NULL DEFAULT 0,"
        "  deleted INTEGER NOT NULL DEFAULT 0,"
        "  client_id TEXT COLLATE \"C\","
        "  UNIQUE (user_id, client_id));"
        "CREATE INDEX messages_room ON messages(room_id, id);"
        "CREATE TABLE login_failures ("
        "  kind INTEGER NOT NULL,"
        "  key TEXT COLLATE \"C\" NOT NULL,"
        "  window_start BIGINT NOT NULL,"
        "  count BIGINT NOT NULL,"
        "  PRIMARY KEY (kind, key));"
        "CREATE SEQUENCE changes_seq;"
        "CREATE TABLE changes ("
        "  seq BIGINT PRIMARY KEY,"
        "  kind INTEGER NOT NULL,"
        "  ref BIGINT NOT NULL,"
        "  at BIGINT NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint);"
        "ALTER SEQUENCE changes_seq OWNED BY changes.seq;"
        "CREATE FUNCTION changes_in_order() RETURNS trigger LANGUAGE plpgsql AS $$"
        "  BEGIN PERFORM pg_advisory_xact_lock(28003, 2);"
        "  NEW.seq := nextval('changes_seq'); RETURN NEW; END $$;"
        "CREATE TRIGGER changes_in_order BEFORE INSERT ON changes"
        "  FOR EACH ROW EXECUTE FUNCTION changes_in_order();"
        "CREATE FUNCTION room_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
        "  BEGIN IF TG_OP = 'DELETE' THEN INSERT INTO changes(kind, ref) VALUES (1, OLD.id);"
        "  ELSE INSERT INTO changes(kind, ref) VALUES (1, NEW.id); END IF;"
        "  RETURN NULL; END $$;"
        "CREATE TRIGGER rooms_changed AFTER INSERT OR UPDATE OR DELETE ON rooms"
        "  FOR EACH ROW EXECUTE FUNCTION room_changed();"
        "CREATE FUNCTION user_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
        "  BEGIN INSERT INTO changes(kind, ref) VALUES (2, NEW.id); RETURN NULL; END $$;"
        "CREATE TRIGGER users_changed AFTER UPDATE OF is_staff, is_active ON users"
        "  FOR EACH ROW WHEN (NEW.is_staff <> OLD.is_staff OR NEW.is_active <> OLD.is_active)"
        "  EXECUTE FUNCTION user_changed();"
        "CREATE TABLE presence ("
        "  channel TEXT COLLATE \"C\" NOT NULL,"
        "  room_id BIGINT NOT NULL,"
        "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  PRIMARY KEY (channel, room_id));"
        "CREATE INDEX presence_room ON presence(room_id);"
        "CREATE TABLE change_cursor ("
        "  id INTEGER PRIMARY KEY CHECK (id = 1),"
        "  seq BIGINT NOT NULL);"
        "INSERT INTO change_cursor VALUES (1, 0);"
        "CREATE TABLE whispers ("
        "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        "  from_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  to_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  body TEXT NOT NULL,"
        "  created BIGINT NOT NULL);"
        "CREATE INDEX whispers_from ON whispers(from_id, id);"
        "CREATE INDEX whispers_to ON whispers(to_id, id);"},
    /* 5: as sqlite's 5. */
    {5, "ALTER TABLE users ADD COLUMN is_superuser INTEGER NOT NULL DEFAULT 0;"
        "CREATE FUNCTION session_ended() RETURNS trigger LANGUAGE plpgsql AS $$"
        "  BEGIN INSERT INTO changes(kind, ref) VALUES (4, OLD.id); RETURN NULL; END $$;"
        "CREATE TRIGGER sessions_ended AFTER DELETE ON sessions"
        "  FOR EACH ROW EXECUTE FUNCTION session_ended();"
        "DELETE FROM sessions;"
        "ALTER TABLE sessions RENAME COLUMN token TO token_hash;"
        "ALTER TABLE login_failures ADD COLUMN last_at BIGINT NOT NULL DEFAULT 0;"
        "CREATE INDEX login_failures_start ON login_failures(window_start);"
        "CREATE TABLE secrets ("
        "  name TEXT COLLATE \"C\" PRIMARY KEY,"
        "  value TEXT NOT NULL);"},
    /* 6: as sqlite's 6. */
    {6, "ALTER TABLE whispers ADD COLUMN client_id TEXT COLLATE \"C\";"
        "CREATE UNIQUE INDEX whispers_client_id ON whispers(from_id, client_id);"},
    /* 7: as sqlite's 7. Its rows change with every batch and keep their
     * keys: room left on each page, updates stay on it (HOT) and need no
     * vacuum to find their space again. */
    {7, "CREATE TABLE publishing ("
        "  room_id BIGINT PRIMARY KEY,"
        "  after_id BIGINT NOT NULL,"
        "  senders TEXT NOT NULL,"
        "  pending INTEGER NOT NULL) WITH (fillfactor = 50);"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(COUNT(sqlite_history) == WRK_STORE_SCHEMA_VERSION,
               "sqlite's history reaches the schema version");

/* What each backend does around its history. */
typedef struct dialect {
    const migration_t *history;
    size_t n;
    const char *prologue;  /* run first in the migration's transaction */
    const char *record[2]; /* what records that a version is applied: [0] version [1] */
} dialect_t;

static const dialect_t dialects[] = {
    [WRK_DB_SQLITE] = {sqlite_history, COUNT(sqlite_history), "", {"PRAGMA user_version = ", ""}},
    [WRK_DB_PG] = {pg_history,
                   COUNT(pg_history),
                   "SELECT pg_advisory_xact_lock(28003, 1);"
                   "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   "  version INTEGER PRIMARY KEY,"
                   "  applied TIMESTAMPTZ NOT NULL DEFAULT now());",
                   {"INSERT INTO schema_migrations(version) VALUES (", ")"}},
};

static const wrk_sql_t sql_version = {.text =
                                          "SELECT coalesce(max(version), 0) FROM schema_migrations",
                                      .sqlite = "PRAGMA user_version"};

int wrk_store_version(wrk_store_t *s, int *version)
{
    *version = 0;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_version);
    if (!st)
        return MC_EDB;
    int64_t v = 0;
    int rc = wrk__query_int(s, st, &v, "schema version");
    if (rc == MC_ENOTFOUND) /* PostgreSQL: no history yet */
        rc = 0;
    *version = (int)v;
    return rc;
}

static int script(wrk_store_t *s, const char *text)
{
    int rc = *text ? s->drv->exec_script(s->db, text) : 0;
    return rc ? wrk__fail(s, "migration", rc) : 0;
}

int wrk_store_migrate(wrk_store_t *s, int *from, int *to)
{
    const dialect_t *d = &dialects[s->drv->dialect];
    int rc = wrk_store_batch_begin(s);
    if (rc)
        return rc;
    int version = 0;
    rc = script(s, d->prologue);
    if (rc == 0)
        rc = wrk_store_version(s, &version);
    if (rc == 0 && version > WRK_STORE_SCHEMA_VERSION) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "the database has schema version %d; this program knows up to %d", version,
                 WRK_STORE_SCHEMA_VERSION);
        rc = MC_EDB;
    }
    if (from)
        *from = version;
    for (size_t i = 0; rc == 0 && i < d->n; i++) {
        const migration_t *m = &d->history[i];
        if (m->version <= version)
            continue;
        char record[128];
        snprintf(record, sizeof(record), "%s%d%s", d->record[0], m->version, d->record[1]);
        rc = script(s, m->script);
        if (rc == 0)
            rc = script(s, record);
        if (rc == 0)
            mc_info("store: migrated to schema version %d", m->version);
    }
    int end = wrk_store_batch_end(s, rc == 0);
    if (rc == 0)
        rc = end;
    if (rc == 0 && to)
        *to = WRK_STORE_SCHEMA_VERSION;
    /* Statements prepared against the old schema are stale now. */
    wrk__forget_statements(s);
    return rc;
}
