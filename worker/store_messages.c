/*
 * worker/store_messages.c: chat messages and whispers (worker/store.h).
 *
 * A message names its room in the same statement that stores it, so that
 * a message for a room that is gone stores nothing and fails no statement:
 * on PostgreSQL a failed statement would undo the whole batch it is in.
 */
#include "worker/store_impl.h"
#include "common/error.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

#define MESSAGE_COLUMNS                                                                            \
    "SELECT m.id, m.room_id, m.user_id, u.username, m.body, m.created, m.edited, m.deleted "       \
    "FROM messages m JOIN users u ON u.id = m.user_id "

/* Stores a message and returns it as MESSAGE_COLUMNS do, when its user is
 * active and may be in its room: the checks a sender needs come with the
 * insert rather than as queries of their own. A room or user that is not
 * there stores nothing and fails no statement (on PostgreSQL a failed
 * statement undoes the whole batch it is in). sqlite gathers the rows of a
 * RETURNING clause in a temporary b-tree of the statement's own, which
 * costs more than the insert: there the next statement (sql_message_stored)
 * reads the row stored, if any. */
#define MESSAGE_ADD                                                                                \
    "INSERT INTO messages(room_id, user_id, body, created, client_id) "                            \
    "SELECT r.id, u.id, ?3, ?4, ?5 FROM rooms r, users u "                                         \
    "WHERE r.id = ?1 AND u.id = ?2 AND u.is_active = 1 "                                           \
    "AND (r.staff_only = 0 OR u.is_staff = 1) ON CONFLICT (user_id, client_id) DO NOTHING"
static const wrk_sql_t sql_message_add = {
    .text = MESSAGE_ADD " RETURNING id, room_id, user_id, "
                        "(SELECT username FROM users WHERE users.id = messages.user_id), body, "
                        "created, edited, deleted",
    .sqlite = MESSAGE_ADD};
static const wrk_sql_t sql_message_stored = {
    .text = "", .sqlite = MESSAGE_COLUMNS "WHERE m.id = last_insert_rowid() AND changes() = 1"};
static const wrk_sql_t sql_message_by_client_id = {
    .text = "SELECT id FROM messages WHERE user_id = ?1 AND client_id = ?2"};
static const wrk_sql_t sql_message_get = {.text = MESSAGE_COLUMNS "WHERE m.id = ?1"};
static const wrk_sql_t sql_message_edit = {
    .text = "UPDATE messages SET body = ?2, edited = ?3 WHERE id = ?1 AND deleted = 0"};
/* The text of a deleted message is gone, not hidden. */
static const wrk_sql_t sql_message_delete = {
    .text = "UPDATE messages SET deleted = 1, body = '' WHERE id = ?1 AND deleted = 0"};
/* Newest first, ?2 at most; ?3 the bound of since and before. */
static const wrk_sql_t sql_messages_last = {
    .text = MESSAGE_COLUMNS "WHERE m.room_id = ?1 AND m.deleted = 0 ORDER BY m.id DESC LIMIT ?2"};
static const wrk_sql_t sql_messages_since = {
    .text = MESSAGE_COLUMNS
    "WHERE m.room_id = ?1 AND m.id > ?3 AND m.deleted = 0 ORDER BY m.id DESC LIMIT ?2"};
static const wrk_sql_t sql_messages_before = {
    .text = MESSAGE_COLUMNS
    "WHERE m.room_id = ?1 AND m.id < ?3 AND m.deleted = 0 ORDER BY m.id DESC LIMIT ?2"};

/* Whispers are numbered in the order they commit: on PostgreSQL the insert
 * takes an advisory lock (held to the commit) before it draws the id. One
 * whose (sender, client id) is taken stores nothing and returns no row. */
#define WHISPER_ADDED "ON CONFLICT (from_id, client_id) DO NOTHING RETURNING id"
static const wrk_sql_t sql_whisper_add = {
    .text = "INSERT INTO whispers(from_id, to_id, body, created, client_id) "
            "VALUES (?1, ?2, ?3, ?4, ?5) " WHISPER_ADDED,
    .pg = "INSERT INTO whispers(from_id, to_id, body, created, client_id) "
          "SELECT ?1, ?2, ?3, ?4, ?5 "
          "FROM (SELECT pg_advisory_xact_lock(28003, 4)) AS in_commit_order " WHISPER_ADDED};
static const wrk_sql_t sql_whisper_by_client_id = {
    .text = "SELECT id FROM whispers WHERE from_id = ?1 AND client_id = ?2"};
#define WHISPER_COLUMNS                                                                            \
    "SELECT w.id, f.username, t.username, w.body, w.created "                                      \
    "FROM whispers w JOIN users f ON f.id = w.from_id JOIN users t ON t.id = w.to_id "
static const wrk_sql_t sql_whisper_get = {.text = WHISPER_COLUMNS "WHERE w.id = ?1"};
static const wrk_sql_t sql_whispers_since = {
    .text = WHISPER_COLUMNS "WHERE w.id IN (SELECT id FROM whispers WHERE from_id = ?1 AND id > ?3 "
                            "UNION SELECT id FROM whispers WHERE to_id = ?1 AND id > ?3) "
                            "ORDER BY w.id DESC LIMIT ?2"};

#define BODY_MAX ((size_t)1 << 30)

_Static_assert(sizeof(wrk_message_t) <= WRK_REVERSE_MAX && sizeof(wrk_whisper_t) <= WRK_REVERSE_MAX,
               "lists of messages and whispers can be reversed");

int wrk_store_message_get(wrk_store_t *s, int64_t id, wrk_message_t *out)
{
    memset(out, 0, sizeof(*out));
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_message_get);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, id);
    int rc = wrk__step(s, st, "message");
    if (rc == WRK_DB_ROW)
        rc = wrk__read_message(st, out);
    else if (rc == WRK_DB_DONE)
        rc = MC_ENOTFOUND;
    wrk_db_reset(st);
    return rc;
}

/* The id of the message user_id stored with client_id, or MC_ENOTFOUND. */
static int message_by_client_id(wrk_store_t *s, int64_t user_id, const char *client_id, int64_t *id)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_message_by_client_id);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, user_id);
    wrk_db_bind_text(st, 2, client_id, strlen(client_id));
    return wrk__query_int(s, st, id, "find message");
}

/* Whether the row an insert of sql_message_add stored is read by
 * sql_message_stored, not returned by the insert. */
static int has_stored_query(const wrk_store_t *s)
{
    return wrk__sql_text(s, &sql_message_stored)[0] != '\0';
}

/* Binds m's values to sql_message_add's statement st. Returns 0 or
 * MC_EINVAL (a body or client id past its limit). */
static int bind_message(wrk_db_stmt_t *st, int64_t room_id, int64_t user_id, const char *body,
                        size_t body_len, const char *client_id, int64_t now_ms)
{
    if (body_len > BODY_MAX || (client_id && strlen(client_id) > WRK_CLIENT_ID_MAX))
        return MC_EINVAL;
    wrk_db_bind_int(st, 1, room_id);
    wrk_db_bind_int(st, 2, user_id);
    wrk_db_bind_text(st, 3, body, body_len);
    wrk_db_bind_int(st, 4, now_ms);
    if (client_id)
        wrk_db_bind_text(st, 5, client_id, strlen(client_id));
    return 0;
}

/* After an insert of sql_message_add stored nothing: the unique (user,
 * client id) refused it and the message is stored already (only its sender
 * can have made it, so it stays), or the room is gone, or the user is gone
 * or inactive, or may not post there. */
static int stored_nothing(wrk_store_t *s, int64_t room_id, int64_t user_id, const char *client_id,
                          wrk_message_t *out, int *duplicate)
{
    int64_t id;
    int rc = client_id ? message_by_client_id(s, user_id, client_id, &id) : MC_ENOTFOUND;
    if (rc == 0) {
        *duplicate = 1;
        return wrk_store_message_get(s, id, out);
    }
    if (rc != MC_ENOTFOUND)
        return rc;
    wrk_room_t room;
    if ((rc = wrk_store_room_get(s, room_id, &room)) != 0)
        return rc;
    wrk_user_t user;
    rc = wrk_store_user_by_id(s, user_id, &user);
    return rc == MC_ENOTFOUND || (rc == 0 && !user.is_active) ? MC_ECLOSED : rc ? rc : MC_EDENIED;
}

#define STORED_NOTHING 1 /* an insert's result: look for why */

int wrk_store_message_add(wrk_store_t *s, int64_t room_id, int64_t user_id, const char *body,
                          size_t body_len, const char *client_id, int64_t now_ms,
                          wrk_message_t *out, int *duplicate)
{
    memset(out, 0, sizeof(*out));
    int dup_unused;
    if (!duplicate)
        duplicate = &dup_unused;
    *duplicate = 0;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_message_add), *stored = NULL;
    if (!st || (has_stored_query(s) && !(stored = wrk__stmt(s, &sql_message_stored))))
        return MC_EDB;
    int rc = bind_message(st, room_id, user_id, body, body_len, client_id, now_ms);
    if (rc == 0)
        rc = wrk__step(s, st, "add message");
    if (rc == WRK_DB_DONE && stored) {
        wrk_db_reset(st);
        st = stored;
        rc = wrk__step(s, st, "message stored");
    }
    if (rc == WRK_DB_ROW)
        rc = wrk__read_message(st, out) == 0 ? 0 : MC_ENOMEM;
    else if (rc == WRK_DB_DONE)
        rc = STORED_NOTHING;
    wrk_db_reset(st);
    if (rc == STORED_NOTHING)
        rc = stored_nothing(s, room_id, user_id, client_id, out, duplicate);
    return rc;
}

/* The result of one queued insert of wrk_store_messages_add. */
static void message_added(void *arg, wrk_db_stmt_t *st, int rc)
{
    wrk_new_message_t *m = arg;
    wrk_message_clear(&m->stored); /* a run again after a conflict */
    if (rc == WRK_DB_ROW)
        m->rc = wrk__read_message(st, &m->stored) == 0 ? 0 : MC_ENOMEM;
    else
        m->rc = rc == WRK_DB_DONE ? STORED_NOTHING : rc;
}

typedef struct new_messages {
    wrk_new_message_t *v;
    size_t n;
    int64_t now_ms;
    int pending; /* read the rooms' pending marks first */
    wrk__marks_t marks;
} new_messages_t;

/* The queued runs of wrk_store_messages_add: what earlier batches left
 * unpublished in these rooms, the rooms' marks, the messages. */
static int queue_messages(wrk_store_t *s, void *arg)
{
    new_messages_t *a = arg;
    int rc;
    if (a->pending) {
        int64_t rooms[WRK_STORE_MESSAGES_MAX];
        for (size_t i = 0; i < a->n; i++)
            rooms[i] = a->v[i].room_id;
        if ((rc = wrk__queue_pending(s, rooms, a->n, &a->marks)) != 0)
            return rc;
    }
    if ((rc = wrk__queue_mark(s, a->v, a->n)) != 0)
        return rc;
    int then_read = has_stored_query(s);
    for (size_t i = 0; i < a->n; i++) {
        wrk_new_message_t *m = &a->v[i];
        wrk_db_stmt_t *st = wrk__stmt(s, &sql_message_add);
        if (!st)
            return MC_EDB;
        m->rc =
            bind_message(st, m->room_id, m->user_id, m->body, m->body_len, m->client_id, a->now_ms);
        if (m->rc) {
            wrk_db_reset(st);
            continue;
        }
        if ((rc = wrk__queue(s, st, then_read ? NULL : message_added, m)) != 0)
            return rc;
        if (then_read && (!(st = wrk__stmt(s, &sql_message_stored)) ||
                          (rc = wrk__queue(s, st, message_added, m)) != 0))
            return st ? rc : MC_EDB;
    }
    return 0;
}

int wrk_store_messages_add(wrk_store_t *s, wrk_new_message_t *msgs, size_t n, int64_t now_ms,
                           wrk_unpublished_list_t *stale)
{
    for (size_t i = 0; i < n; i++) {
        memset(&msgs[i].stored, 0, sizeof(msgs[i].stored));
        msgs[i].duplicate = 0;
    }
    if (stale)
        memset(stale, 0, sizeof(*stale));
    new_messages_t a = {msgs, n, now_ms, stale != NULL, {0}};
    int rc = n > WRK_STORE_MESSAGES_MAX ? MC_EINVAL : wrk__queued_batch(s, queue_messages, &a);
    for (size_t i = 0; i < n; i++) {
        wrk_new_message_t *m = &msgs[i];
        if (rc) {
            wrk_message_clear(&m->stored);
            m->rc = rc;
        } else if (m->rc == STORED_NOTHING) {
            m->rc =
                stored_nothing(s, m->room_id, m->user_id, m->client_id, &m->stored, &m->duplicate);
        }
    }
    /* Stored: they go on, whatever becomes of what was left before them. */
    int left = rc == 0 && stale ? a.marks.rc : 0;
    if (rc == 0 && stale && !left && a.marks.n)
        left = wrk__unpublished_of(s, &a.marks, msgs, n, stale);
    if (left)
        mc_warn("store: reading the unpublished messages: %s", mc_strerror(left));
    wrk__marks_clear(&a.marks);
    return rc;
}

int wrk_store_message_edit(wrk_store_t *s, int64_t id, const char *body, size_t body_len,
                           int64_t now_ms)
{
    if (body_len > BODY_MAX)
        return MC_EINVAL;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_message_edit);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, id);
    wrk_db_bind_text(st, 2, body, body_len);
    wrk_db_bind_int(st, 3, now_ms);
    return wrk__update_one(s, st, "edit message");
}

int wrk_store_message_delete(wrk_store_t *s, int64_t id)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_message_delete);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, id);
    return wrk__update_one(s, st, "delete message");
}

/* Runs a message query that returns rows newest first (LIMIT ?2 is
 * limit + 1, to tell truncation) and fills out oldest first with at most
 * limit of them. */
static int message_query(wrk_store_t *s, const wrk_sql_t *q, int64_t room_id, int64_t bound,
                         long limit, wrk_message_list_t *out)
{
    memset(out, 0, sizeof(*out));
    if (limit < 0)
        return MC_EINVAL;
    if (limit == 0)
        return 0;
    wrk_db_stmt_t *st = wrk__stmt(s, q);
    if (!st)
        return MC_EDB;
    out->items = calloc((size_t)limit, sizeof(*out->items));
    if (!out->items)
        return MC_ENOMEM;
    wrk_db_bind_int(st, 1, room_id);
    wrk_db_bind_int(st, 2, (int64_t)limit + 1);
    if (q != &sql_messages_last)
        wrk_db_bind_int(st, 3, bound);
    int rc;
    while ((rc = wrk__step(s, st, "messages")) == WRK_DB_ROW) {
        if (out->n == (size_t)limit) {
            out->truncated = 1;
            rc = WRK_DB_DONE;
            break;
        }
        if ((rc = wrk__read_message(st, &out->items[out->n])) != 0)
            break;
        out->n++;
    }
    wrk_db_reset(st);
    if (rc) {
        wrk_message_list_clear(out);
        return rc;
    }
    wrk__reverse(out->items, out->n, sizeof(*out->items));
    return 0;
}

int wrk_store_messages_last(wrk_store_t *s, int64_t room_id, long limit, wrk_message_list_t *out)
{
    return message_query(s, &sql_messages_last, room_id, 0, limit, out);
}

int wrk_store_messages_since(wrk_store_t *s, int64_t room_id, int64_t since, long limit,
                             wrk_message_list_t *out)
{
    if (limit > WRK_STORE_SINCE_MAX)
        limit = WRK_STORE_SINCE_MAX;
    return message_query(s, &sql_messages_since, room_id, since, limit, out);
}

int wrk_store_messages_before(wrk_store_t *s, int64_t room_id, int64_t before, long limit,
                              wrk_message_list_t *out)
{
    return message_query(s, &sql_messages_before, room_id, before, limit, out);
}

/* ---- Whispers -------------------------------------------------------------- */

/* Fills *w from a row of WHISPER_COLUMNS. */
static int read_whisper(wrk_db_stmt_t *st, wrk_whisper_t *w)
{
    memset(w, 0, sizeof(*w));
    w->id = wrk_db_int(st, 0);
    wrk__copy_text(st, 1, w->from, sizeof(w->from));
    wrk__copy_text(st, 2, w->to, sizeof(w->to));
    w->body = wrk__dup_text(st, 3, &w->body_len);
    w->created_ms = wrk_db_int(st, 4);
    return w->body ? 0 : MC_ENOMEM;
}

static int whisper_get(wrk_store_t *s, int64_t id, wrk_whisper_t *out)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_whisper_get);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, id);
    int rc = wrk__step(s, st, "whisper");
    if (rc == WRK_DB_ROW)
        rc = read_whisper(st, out);
    else if (rc == WRK_DB_DONE)
        rc = MC_ENOTFOUND;
    wrk_db_reset(st);
    return rc;
}

int wrk_store_whisper_add(wrk_store_t *s, int64_t from_id, int64_t to_id, const char *body,
                          size_t body_len, const char *client_id, int64_t now_ms,
                          wrk_whisper_t *out, int *duplicate)
{
    if (out)
        memset(out, 0, sizeof(*out));
    int dup_unused;
    if (!duplicate)
        duplicate = &dup_unused;
    *duplicate = 0;
    if (body_len > BODY_MAX || (client_id && strlen(client_id) > WRK_CLIENT_ID_MAX))
        return MC_EINVAL;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_whisper_add);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, from_id);
    wrk_db_bind_int(st, 2, to_id);
    wrk_db_bind_text(st, 3, body, body_len);
    wrk_db_bind_int(st, 4, now_ms);
    if (client_id)
        wrk_db_bind_text(st, 5, client_id, strlen(client_id));
    int64_t id;
    int rc = wrk__query_int(s, st, &id, "add whisper");
    if (rc == MC_ENOTFOUND && client_id) {
        /* The unique (sender, client id) refused it: stored already. */
        st = wrk__stmt(s, &sql_whisper_by_client_id);
        if (!st)
            return MC_EDB;
        wrk_db_bind_int(st, 1, from_id);
        wrk_db_bind_text(st, 2, client_id, strlen(client_id));
        rc = wrk__query_int(s, st, &id, "find whisper");
        *duplicate = rc == 0;
    }
    if (rc || !out)
        return rc;
    return whisper_get(s, id, out);
}

void wrk_whisper_clear(wrk_whisper_t *w)
{
    free(w->body);
    memset(w, 0, sizeof(*w));
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
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_whispers_since);
    if (!st)
        return MC_EDB;
    out->items = calloc((size_t)limit, sizeof(*out->items));
    if (!out->items)
        return MC_ENOMEM;
    wrk_db_bind_int(st, 1, user_id);
    wrk_db_bind_int(st, 2, (int64_t)limit + 1);
    wrk_db_bind_int(st, 3, since);
    int rc;
    while ((rc = wrk__step(s, st, "whispers")) == WRK_DB_ROW) {
        if (out->n == (size_t)limit) {
            out->truncated = 1;
            rc = WRK_DB_DONE;
            break;
        }
        if ((rc = read_whisper(st, &out->items[out->n])) != 0)
            break;
        out->n++;
    }
    wrk_db_reset(st);
    if (rc) {
        wrk_whisper_list_clear(out);
        return rc;
    }
    wrk__reverse(out->items, out->n, sizeof(*out->items));
    return 0;
}
