/*
 * worker/store_publishing.c: the marks of rooms whose messages are stored
 * but maybe not yet published (worker/store.h, Publishing).
 *
 * A room's mark is one row: pending while a batch's messages wait to be
 * published, with the room's last message id before the batch (after_id:
 * every message past it may be unpublished, since only the holder of the
 * room's order lock stores there) and the batch's senders, one JSON line
 * per message: [user id, client id, connection]. A batch that finds the
 * mark pending (its last holder never cleared it) keeps after_id and adds
 * its senders, so that one who stops before publishing leaves both
 * batches to the next; past 64 KiB of senders (batches that cannot
 * publish, Redis being away) it adds none: their messages will reach
 * their senders as everyone else's, without "own".
 *
 * Each statement names one room: a list of rooms unpacked from a JSON
 * parameter (or an IN list) costs sqlite a temporary b-tree of its own per
 * run, more than the work itself. A batch queues one statement per room,
 * which PostgreSQL still gets in its one round trip.
 */
#include "worker/store_impl.h"
#include "common/error.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A room's mark, when pending. */
static const wrk_sql_t sql_pending = {
    .text = "SELECT room_id, after_id, senders FROM publishing WHERE room_id = ?1 AND pending = 1"};

/* A room's messages in (?2, ?3), oldest first, by the index of its
 * messages. */
static const wrk_sql_t sql_left = {
    .text = "SELECT m.id, m.room_id, m.user_id, u.username, m.body, m.created, m.edited, "
            "m.deleted, m.client_id FROM messages m JOIN users u ON u.id = m.user_id "
            "WHERE m.room_id = ?1 AND m.id > ?2 AND m.id < ?3 AND m.deleted = 0 "
            "ORDER BY m.id LIMIT 500"};
_Static_assert(WRK_STORE_SINCE_MAX == 500, "the limit above");

/* Marks room ?1 pending with senders ?2; one pending already keeps its
 * after_id and gains the senders. */
static const wrk_sql_t sql_mark = {
    .text = "INSERT INTO publishing(room_id, after_id, senders, pending) "
            "VALUES (?1, coalesce((SELECT max(id) FROM messages WHERE room_id = ?1), 0), ?2, 1) "
            "ON CONFLICT (room_id) DO UPDATE SET "
            "after_id = CASE WHEN publishing.pending = 1 THEN publishing.after_id "
            "ELSE excluded.after_id END, "
            "senders = CASE WHEN publishing.pending = 0 THEN excluded.senders "
            "WHEN length(publishing.senders) < 65536 THEN publishing.senders || excluded.senders "
            "ELSE publishing.senders END, pending = 1"};

/* Room ?1's newest message that went out for sure: below what its pending
 * mark may have left unpublished, else its newest. */
static const wrk_sql_t sql_published_last = {
    .text = "SELECT coalesce((SELECT after_id FROM publishing WHERE room_id = ?1 AND pending = 1), "
            "(SELECT max(id) FROM messages WHERE room_id = ?1), 0)"};

static const wrk_sql_t sql_clear = {
    .text = "UPDATE publishing SET pending = 0, senders = '' WHERE room_id = ?1 AND pending = 1"};

void wrk_unpublished_list_clear(wrk_unpublished_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        wrk_message_clear(&l->items[i].m);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* The distinct rooms of rooms[0..n) into out, in the order they first
 * come. Returns their number, 0 when n is 0 or past
 * WRK_STORE_LOCK_ROOMS_MAX. */
static size_t distinct_rooms(const int64_t *rooms, size_t n, int64_t out[WRK_STORE_LOCK_ROOMS_MAX])
{
    if (n > WRK_STORE_LOCK_ROOMS_MAX)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < k && out[j] != rooms[i])
            j++;
        if (j == k)
            out[k++] = rooms[i];
    }
    return k;
}

/* The connection in senders (JSON lines) that sent user_id's message named
 * client_id, copied into out[size] ("" when none). */
static void sender_of(const char *senders, int64_t user_id, const char *client_id, char *out,
                      size_t size)
{
    out[0] = '\0';
    for (const char *line = senders; *line && !out[0];) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        cJSON *e = cJSON_ParseWithLength(line, len);
        const cJSON *u = cJSON_GetArrayItem(e, 0), *c = cJSON_GetArrayItem(e, 1),
                    *who = cJSON_GetArrayItem(e, 2);
        if (cJSON_IsNumber(u) && (int64_t)u->valuedouble == user_id && cJSON_IsString(c) &&
            strcmp(c->valuestring, client_id) == 0 && cJSON_IsString(who))
            snprintf(out, size, "%s", who->valuestring);
        cJSON_Delete(e);
        line += len + (end ? 1 : 0);
    }
}

void wrk__marks_clear(wrk__marks_t *marks)
{
    for (size_t i = 0; i < marks->n; i++)
        free(marks->v[i].senders);
    free(marks->v);
    memset(marks, 0, sizeof(*marks));
}

/* Adds the row of sql_pending, if any, to the marks. */
static void collect_mark(void *arg, wrk_db_stmt_t *st, int rc)
{
    wrk__marks_t *marks = arg;
    if (rc == WRK_DB_ROW) {
        struct wrk__mark *v = realloc(marks->v, (marks->n + 1) * sizeof(*v));
        if (!v) {
            rc = MC_ENOMEM;
        } else {
            marks->v = v;
            struct wrk__mark *m = &v[marks->n];
            m->room = wrk_db_int(st, 0);
            m->after_id = wrk_db_int(st, 1);
            size_t len;
            if ((m->senders = wrk__dup_text(st, 2, &len)))
                marks->n++;
            else
                rc = MC_ENOMEM;
        }
    }
    if (rc < 0 && !marks->rc)
        marks->rc = rc;
}

/* The statement of sql_pending for room, or NULL. */
static wrk_db_stmt_t *pending_stmt(wrk_store_t *s, int64_t room)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_pending);
    if (st)
        wrk_db_bind_int(st, 1, room);
    return st;
}

int wrk__queue_pending(wrk_store_t *s, const int64_t *rooms, size_t n, wrk__marks_t *marks)
{
    wrk__marks_clear(marks); /* a run again after a conflict */
    int64_t distinct[WRK_STORE_LOCK_ROOMS_MAX];
    size_t k = distinct_rooms(rooms, n, distinct);
    if (!k)
        return wrk__fail(s, "publishing marks: no rooms, or too many", MC_EINVAL);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < k; i++) {
        wrk_db_stmt_t *st = pending_stmt(s, distinct[i]);
        rc = st ? wrk__queue(s, st, collect_mark, marks) : MC_EDB;
    }
    return rc;
}

static int by_id(const void *a, const void *b)
{
    int64_t x = ((const wrk_unpublished_t *)a)->m.id, y = ((const wrk_unpublished_t *)b)->m.id;
    return x < y ? -1 : x > y;
}

/* Appends to out the messages mark left in its room below before. */
static int read_left(wrk_store_t *s, const struct wrk__mark *mark, int64_t before,
                     wrk_unpublished_list_t *out)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_left);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, mark->room);
    wrk_db_bind_int(st, 2, mark->after_id);
    wrk_db_bind_int(st, 3, before);
    int rc;
    while ((rc = wrk__step(s, st, "unpublished messages")) == WRK_DB_ROW) {
        wrk_unpublished_t *items = realloc(out->items, (out->n + 1) * sizeof(*items));
        if (!items) {
            rc = MC_ENOMEM;
            break;
        }
        out->items = items;
        wrk_unpublished_t *u = &items[out->n];
        if (wrk__read_message(st, &u->m)) {
            rc = MC_ENOMEM;
            break;
        }
        out->n++;
        size_t len;
        sender_of(mark->senders, u->m.user_id, wrk_db_text(st, 8, &len), u->sender,
                  sizeof(u->sender));
    }
    wrk_db_reset(st);
    return rc < 0 ? rc : 0;
}

int wrk__unpublished_of(wrk_store_t *s, const wrk__marks_t *marks, const wrk_new_message_t *added,
                        size_t n, wrk_unpublished_list_t *out)
{
    memset(out, 0, sizeof(*out));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < marks->n; i++) {
        /* Only this batch stored in the room since: below its first. */
        int64_t before = INT64_MAX;
        for (size_t k = 0; k < n; k++)
            if (added[k].rc == 0 && !added[k].duplicate &&
                added[k].stored.room_id == marks->v[i].room && added[k].stored.id < before)
                before = added[k].stored.id;
        rc = read_left(s, &marks->v[i], before, out);
    }
    if (rc) {
        wrk_unpublished_list_clear(out);
        return rc;
    }
    if (out->n)
        qsort(out->items, out->n, sizeof(*out->items), by_id);
    for (; out->n > WRK_STORE_SINCE_MAX; out->n--) /* the oldest go out, the others are lost */
        wrk_message_clear(&out->items[out->n - 1].m);
    return 0;
}

int wrk_store_unpublished(wrk_store_t *s, const int64_t *rooms, size_t n,
                          wrk_unpublished_list_t *out)
{
    memset(out, 0, sizeof(*out));
    int64_t distinct[WRK_STORE_LOCK_ROOMS_MAX];
    size_t k = distinct_rooms(rooms, n, distinct);
    if (!k)
        return wrk__fail(s, "publishing marks: no rooms, or too many", MC_EINVAL);
    wrk__marks_t marks = {0};
    for (size_t i = 0; i < k && !marks.rc; i++) {
        wrk_db_stmt_t *st = pending_stmt(s, distinct[i]);
        if (!st) {
            marks.rc = MC_EDB;
            break;
        }
        collect_mark(&marks, st, wrk__step(s, st, "publishing marks"));
        wrk_db_reset(st);
    }
    int rc = marks.rc ? marks.rc : wrk__unpublished_of(s, &marks, NULL, 0, out);
    wrk__marks_clear(&marks);
    return rc;
}

typedef struct room_list {
    const int64_t *v;
    size_t n;
} room_list_t;

/* Queues the clearing of the marks of a room_list_t. */
static int queue_clears(wrk_store_t *s, void *arg)
{
    const room_list_t *rooms = arg;
    for (size_t i = 0; i < rooms->n; i++) {
        wrk_db_stmt_t *st = wrk__stmt(s, &sql_clear);
        if (!st)
            return MC_EDB;
        wrk_db_bind_int(st, 1, rooms->v[i]);
        int rc = wrk__queue(s, st, NULL, NULL);
        if (rc)
            return rc;
    }
    return 0;
}

int wrk_store_published_last(wrk_store_t *s, int64_t room, int64_t *id)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_published_last);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, room);
    return wrk__query_int(s, st, id, "published messages");
}

int wrk_store_published(wrk_store_t *s, const int64_t *rooms, size_t n)
{
    int64_t distinct[WRK_STORE_LOCK_ROOMS_MAX];
    room_list_t list = {distinct, distinct_rooms(rooms, n, distinct)};
    if (!list.n)
        return n ? MC_EINVAL : 0;
    return wrk__queued_batch(s, queue_clears, &list);
}

/* Appends msg's line to senders ([user id, client id, connection] as JSON,
 * and a newline) when it has a client id and a sender: only then can it be
 * told apart. Returns 0 or MC_ENOMEM. */
static int add_sender(char **senders, size_t *len, const wrk_new_message_t *msg)
{
    if (!msg->client_id || !msg->sender)
        return 0;
    cJSON *line = cJSON_CreateArray();
    char *text = NULL;
    if (!line || !cJSON_AddItemToArray(line, cJSON_CreateNumber((double)msg->user_id)) ||
        !cJSON_AddItemToArray(line, cJSON_CreateString(msg->client_id)) ||
        !cJSON_AddItemToArray(line, cJSON_CreateString(msg->sender)) ||
        !(text = cJSON_PrintUnformatted(line))) {
        cJSON_Delete(line);
        return MC_ENOMEM;
    }
    cJSON_Delete(line);
    size_t add = strlen(text);
    char *grown = realloc(*senders, *len + add + 2);
    if (grown) {
        memcpy(grown + *len, text, add);
        *len += add;
        grown[(*len)++] = '\n';
        grown[*len] = '\0';
        *senders = grown;
    }
    free(text);
    return grown ? 0 : MC_ENOMEM;
}

/* Queues the mark of room with the senders of its messages in msgs, when
 * it has any: a message without a client id is not marked, as a batch run
 * again stores it again (worker/store.h). */
static int queue_mark(wrk_store_t *s, int64_t room, const wrk_new_message_t *msgs, size_t n)
{
    char *senders = NULL;
    size_t len = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (msgs[i].room_id == room)
            rc = add_sender(&senders, &len, &msgs[i]);
    if (rc == 0 && senders) {
        wrk_db_stmt_t *st = wrk__stmt(s, &sql_mark);
        if (st) {
            wrk_db_bind_int(st, 1, room);
            wrk_db_bind_text(st, 2, senders, len);
            rc = wrk__queue(s, st, NULL, NULL); /* sent now: senders may go */
        } else {
            rc = MC_EDB;
        }
    }
    free(senders);
    return rc;
}

int wrk__queue_mark(wrk_store_t *s, const wrk_new_message_t *msgs, size_t n)
{
    int64_t rooms[WRK_STORE_LOCK_ROOMS_MAX], distinct[WRK_STORE_LOCK_ROOMS_MAX];
    if (n > WRK_STORE_LOCK_ROOMS_MAX)
        return wrk__fail(s, "publishing marks: too many rooms", MC_EINVAL);
    for (size_t i = 0; i < n; i++)
        rooms[i] = msgs[i].room_id;
    size_t k = distinct_rooms(rooms, n, distinct);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < k; i++)
        rc = queue_mark(s, distinct[i], msgs, n);
    return rc;
}
