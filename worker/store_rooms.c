/*
 * worker/store_rooms.c: rooms, their order locks, and the presence of
 * connections in them (worker/store.h).
 *
 * Joining and leaving count a user's other connections in the room, then
 * change the table: two workers doing that at once for one user must take
 * turns, or both would see the other connection and neither announce the
 * departure. sqlite's write transactions take turns already; PostgreSQL's
 * take an advisory lock for presence first.
 */
#include "worker/store_impl.h"
#include "common/error.h"
#include "common/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const wrk_sql_t sql_room_add = {
    .text = "INSERT INTO rooms(title, staff_only) VALUES (?1, ?2) RETURNING id"};
static const wrk_sql_t sql_room_get = {.text =
                                           "SELECT id, title, staff_only FROM rooms WHERE id = ?1"};
static const wrk_sql_t sql_room_rename = {.text = "UPDATE rooms SET title = ?2 WHERE id = ?1"};
static const wrk_sql_t sql_room_staff_only = {.text =
                                                  "UPDATE rooms SET staff_only = ?2 WHERE id = ?1"};
static const wrk_sql_t sql_room_delete = {.text = "DELETE FROM rooms WHERE id = ?1"};
static const wrk_sql_t sql_room_each = {.text =
                                            "SELECT id, title, staff_only FROM rooms ORDER BY id"};

#define PRESENCE_COLUMNS                                                                           \
    "SELECT p.channel, p.room_id, p.user_id, u.username, u.is_staff "                              \
    "FROM presence p JOIN users u ON u.id = p.user_id "

static const wrk_sql_t sql_presence_lock = {.text = "",
                                            .pg = "SELECT pg_advisory_xact_lock(28003, 3)"};
static const wrk_sql_t sql_presence_add = {.text =
                                               "INSERT INTO presence(channel, room_id, user_id) "
                                               "VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"};
static const wrk_sql_t sql_presence_remove = {
    .text = "DELETE FROM presence WHERE channel = ?1 AND room_id = ?2"};
static const wrk_sql_t sql_presence_remove_all = {.text =
                                                      "DELETE FROM presence WHERE channel = ?1"};
static const wrk_sql_t sql_presence_room = {.text = PRESENCE_COLUMNS
                                            "WHERE p.room_id = ?1 ORDER BY u.username, p.channel"};
static const wrk_sql_t sql_presence_all = {.text =
                                               PRESENCE_COLUMNS "ORDER BY u.username, p.channel"};
static const wrk_sql_t sql_presence_others = {
    .text = "SELECT count(*) FROM presence WHERE room_id = ?2 AND user_id = ?3 AND channel != ?1"};
/* ?1 a channel, or with ?2 = 1 the prefix of channels; ?3 a room or 0. */
#define PRESENCE_MATCH                                                                             \
    "(CASE WHEN ?2 = 1 THEN substr(channel, 1, length(?1)) = ?1 ELSE channel = ?1 END) "           \
    "AND (?3 = 0 OR room_id = ?3)"
static const wrk_sql_t sql_presence_match = {
    .text = PRESENCE_COLUMNS "WHERE " PRESENCE_MATCH " ORDER BY p.room_id, u.username"};
static const wrk_sql_t sql_presence_delete_match = {
    .text = "DELETE FROM presence WHERE " PRESENCE_MATCH};
static const wrk_sql_t sql_presence_count = {
    .text = "SELECT count(*) FROM presence WHERE room_id = ?1 AND user_id = ?2"};

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
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_room_add);
    if (!st)
        return MC_EDB;
    wrk_db_bind_text(st, 1, title, strlen(title));
    wrk_db_bind_int(st, 2, staff_only ? 1 : 0);
    int64_t got;
    int rc = wrk__query_int(s, st, &got, "add room");
    if (rc == 0 && id)
        *id = got;
    return rc;
}

static void read_room(wrk_db_stmt_t *st, wrk_room_t *r)
{
    r->id = wrk_db_int(st, 0);
    wrk__copy_text(st, 1, r->title, sizeof(r->title));
    r->staff_only = (int)wrk_db_int(st, 2);
}

int wrk_store_room_get(wrk_store_t *s, int64_t id, wrk_room_t *out)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_room_get);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, id);
    int rc = wrk__step(s, st, "room");
    if (rc == WRK_DB_ROW)
        read_room(st, out);
    wrk_db_reset(st);
    if (rc < 0)
        return rc;
    return rc == WRK_DB_ROW ? 0 : MC_ENOTFOUND;
}

int wrk_store_room_rename(wrk_store_t *s, int64_t id, const char *title)
{
    if (check_title(title))
        return MC_EINVAL;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_room_rename);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, id);
    wrk_db_bind_text(st, 2, title, strlen(title));
    return wrk__update_one(s, st, "rename room");
}

int wrk_store_room_set_staff_only(wrk_store_t *s, int64_t id, int staff_only)
{
    return wrk__set_flag(s, &sql_room_staff_only, id, staff_only, "set staff-only");
}

int wrk_store_room_delete(wrk_store_t *s, int64_t id)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_room_delete);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, id);
    return wrk__update_one(s, st, "delete room");
}

int wrk_store_room_each(wrk_store_t *s, int (*fn)(void *arg, const wrk_room_t *r), void *arg)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_room_each);
    if (!st)
        return MC_EDB;
    int rc, ret = 0;
    while ((rc = wrk__step(s, st, "list rooms")) == WRK_DB_ROW) {
        wrk_room_t r;
        read_room(st, &r);
        if ((ret = fn(arg, &r)) != 0)
            break;
    }
    wrk_db_reset(st);
    return ret ? ret : rc;
}

/* ---- Order locks ----------------------------------------------------------- */

/* Advisory locks of class 28004 ("mc" 4), keyed by the room id's low 31
 * bits: rooms 2^31 apart share one, which orders more than it must, no
 * less. */
#define ORDER_KEY "28004, CAST(?1 % 2147483648 AS INTEGER)"
static const wrk_sql_t sql_order_lock = {.text = "",
                                         .pg = "SELECT pg_advisory_lock(" ORDER_KEY ")"};
static const wrk_sql_t sql_order_try_lock = {
    .text = "", .pg = "SELECT CASE WHEN pg_try_advisory_lock(" ORDER_KEY ") THEN 1 ELSE 0 END"};
static const wrk_sql_t sql_order_unlock = {.text = "",
                                           .pg = "SELECT pg_advisory_unlock(" ORDER_KEY ")"};
static const wrk_sql_t sql_order_unlock_all = {.text = "", .pg = "SELECT pg_advisory_unlock_all()"};
/* ?1: keys as an array literal, "{k1,k2,...}", taken in that order. */
static const wrk_sql_t sql_order_lock_keys = {
    .text = "",
    .pg =
        "SELECT count(pg_advisory_lock(28004, CAST(k AS INTEGER))) FROM "
        "(SELECT k FROM unnest(CAST(?1 AS BIGINT[])) WITH ORDINALITY AS a(k, i) ORDER BY i) AS s"};

int wrk_store_has_order_locks(const wrk_store_t *s)
{
    return *wrk__sql_text(s, &sql_order_lock) != '\0';
}

/* Runs the order lock statement q for room; *out (may be NULL) its value. */
static int order_call(wrk_store_t *s, const wrk_sql_t *q, int64_t room, int64_t *out)
{
    if (!wrk_store_has_order_locks(s)) {
        if (out)
            *out = 1;
        return 0;
    }
    wrk_db_stmt_t *st = wrk__stmt(s, q);
    if (!st)
        return MC_EDB;
    if (q != &sql_order_unlock_all)
        wrk_db_bind_int(st, 1, room);
    int64_t v;
    int rc = wrk__query_int(s, st, &v, "order lock");
    if (out)
        *out = v;
    return rc;
}

int wrk_store_order_lock(wrk_store_t *s, int64_t room, int wait)
{
    if (wait)
        return order_call(s, &sql_order_lock, room, NULL);
    int64_t got = 0;
    int rc = order_call(s, &sql_order_try_lock, room, &got);
    return rc ? rc : got ? 0 : MC_EAGAIN;
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int wrk_store_order_lock_rooms(wrk_store_t *s, const int64_t *rooms, size_t n)
{
    if (!wrk_store_has_order_locks(s) || n == 0)
        return 0;
    if (n > WRK_STORE_LOCK_ROOMS_MAX)
        return MC_EINVAL;
    int64_t keys[WRK_STORE_LOCK_ROOMS_MAX];
    for (size_t i = 0; i < n; i++)
        keys[i] = rooms[i] % 2147483648;
    qsort(keys, n, sizeof(keys[0]), by_value);
    char list[WRK_STORE_LOCK_ROOMS_MAX * 12 + 3];
    size_t len = 0;
    list[len++] = '{';
    for (size_t i = 0; i < n; i++)
        if (i == 0 || keys[i] != keys[i - 1])
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%lld", len > 1 ? "," : "",
                                    (long long)keys[i]);
    list[len++] = '}';
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_order_lock_keys);
    if (!st)
        return MC_EDB;
    wrk_db_bind_text(st, 1, list, len);
    int64_t taken;
    return wrk__query_int(s, st, &taken, "order locks");
}

int wrk_store_order_unlock(wrk_store_t *s, int64_t room)
{
    return order_call(s, &sql_order_unlock, room, NULL);
}

int wrk_store_order_unlock_all(wrk_store_t *s)
{
    return order_call(s, &sql_order_unlock_all, 0, NULL);
}

/* ---- Presence -------------------------------------------------------------- */

static int check_channel(const char *channel)
{
    return strlen(channel) >= sizeof(((wrk_presence_t *)0)->channel) ? MC_EINVAL : 0;
}

int wrk_store_presence_add(wrk_store_t *s, const char *channel, int64_t room_id, int64_t user_id)
{
    if (check_channel(channel))
        return MC_EINVAL;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_presence_add);
    if (!st)
        return MC_EDB;
    wrk_db_bind_text(st, 1, channel, strlen(channel));
    wrk_db_bind_int(st, 2, room_id);
    wrk_db_bind_int(st, 3, user_id);
    return wrk__exec(s, st, "add presence");
}

int wrk_store_presence_remove(wrk_store_t *s, const char *channel, int64_t room_id)
{
    wrk_db_stmt_t *st = wrk__stmt(s, room_id ? &sql_presence_remove : &sql_presence_remove_all);
    if (!st)
        return MC_EDB;
    wrk_db_bind_text(st, 1, channel, strlen(channel));
    if (room_id)
        wrk_db_bind_int(st, 2, room_id);
    return wrk__exec(s, st, "remove presence");
}

typedef struct join_args {
    const char *channel;
    int64_t room_id, user_id;
    int *first;
} join_args_t;

static int presence_join(wrk_store_t *s, void *arg)
{
    join_args_t *a = arg;
    int rc = wrk__run(s, &sql_presence_lock, "lock presence");
    if (rc)
        return rc;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_presence_others);
    if (!st)
        return MC_EDB;
    wrk_db_bind_text(st, 1, a->channel, strlen(a->channel));
    wrk_db_bind_int(st, 2, a->room_id);
    wrk_db_bind_int(st, 3, a->user_id);
    int64_t others;
    rc = wrk__query_int(s, st, &others, "count presence");
    if (rc)
        return rc;
    rc = wrk_store_presence_add(s, a->channel, a->room_id, a->user_id);
    /* A connection joining again is no new arrival. */
    *a->first = rc == 0 && others == 0 && s->drv->changes(s->db) == 1;
    return rc;
}

int wrk_store_presence_join(wrk_store_t *s, const char *channel, int64_t room_id, int64_t user_id,
                            int *first)
{
    *first = 0;
    if (check_channel(channel))
        return MC_EINVAL;
    join_args_t a = {channel, room_id, user_id, first};
    return wrk__in_batch(s, presence_join, &a);
}

static int read_presence_rows(wrk_store_t *s, wrk_db_stmt_t *st, wrk_presence_list_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t cap = 0;
    int rc;
    while ((rc = wrk__step(s, st, "presence")) == WRK_DB_ROW) {
        if (out->n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            wrk_presence_t *items = realloc(out->items, ncap * sizeof(*items));
            if (!items) {
                rc = MC_ENOMEM;
                break;
            }
            out->items = items;
            cap = ncap;
        }
        wrk_presence_t *p = &out->items[out->n++];
        wrk__copy_text(st, 0, p->channel, sizeof(p->channel));
        p->room_id = wrk_db_int(st, 1);
        p->user_id = wrk_db_int(st, 2);
        wrk__copy_text(st, 3, p->username, sizeof(p->username));
        p->is_staff = (int)wrk_db_int(st, 4);
    }
    wrk_db_reset(st);
    if (rc < 0)
        wrk_presence_list_clear(out);
    return rc;
}

typedef struct leave_args {
    const char *channel;
    int prefix;
    int64_t room_id;
    wrk_presence_list_t *gone;
} leave_args_t;

static void bind_match(wrk_db_stmt_t *st, const leave_args_t *a)
{
    wrk_db_bind_text(st, 1, a->channel, strlen(a->channel));
    wrk_db_bind_int(st, 2, a->prefix ? 1 : 0);
    wrk_db_bind_int(st, 3, a->room_id);
}

/* Keeps in rows, once per room and user, those with no connection left
 * there: the departures the rooms hear of. */
static int keep_departures(wrk_store_t *s, wrk_presence_list_t *rows)
{
    size_t kept = 0;
    for (size_t i = 0; i < rows->n; i++) {
        const wrk_presence_t *p = &rows->items[i];
        int seen = 0;
        for (size_t j = 0; j < kept && !seen; j++)
            seen = rows->items[j].room_id == p->room_id && rows->items[j].user_id == p->user_id;
        if (seen)
            continue;
        wrk_db_stmt_t *st = wrk__stmt(s, &sql_presence_count);
        if (!st)
            return MC_EDB;
        wrk_db_bind_int(st, 1, p->room_id);
        wrk_db_bind_int(st, 2, p->user_id);
        int64_t left;
        int rc = wrk__query_int(s, st, &left, "count presence");
        if (rc)
            return rc;
        if (left == 0)
            rows->items[kept++] = *p;
    }
    rows->n = kept;
    return 0;
}

static int presence_leave(wrk_store_t *s, void *arg)
{
    leave_args_t *a = arg;
    wrk_presence_list_t rows = {0};
    int rc = wrk__run(s, &sql_presence_lock, "lock presence");
    wrk_db_stmt_t *st = rc ? NULL : wrk__stmt(s, &sql_presence_match);
    if (!st)
        return rc ? rc : MC_EDB;
    bind_match(st, a);
    rc = read_presence_rows(s, st, &rows);
    if (rc)
        return rc;
    st = wrk__stmt(s, &sql_presence_delete_match);
    if (!st)
        rc = MC_EDB;
    if (rc == 0) {
        bind_match(st, a);
        rc = wrk__exec(s, st, "remove presence");
    }
    if (rc == 0)
        rc = keep_departures(s, &rows);
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
    return wrk__in_batch(s, presence_leave, &a);
}

void wrk_presence_list_clear(wrk_presence_list_t *l)
{
    free(l->items);
    memset(l, 0, sizeof(*l));
}

int wrk_store_presence_list(wrk_store_t *s, int64_t room_id, wrk_presence_list_t *out)
{
    memset(out, 0, sizeof(*out));
    wrk_db_stmt_t *st = wrk__stmt(s, room_id ? &sql_presence_room : &sql_presence_all);
    if (!st)
        return MC_EDB;
    if (room_id)
        wrk_db_bind_int(st, 1, room_id);
    return read_presence_rows(s, st, out);
}
