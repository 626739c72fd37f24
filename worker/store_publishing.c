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
 * Lists of rooms travel as one JSON parameter, which each backend unpacks
 * with its own JSON functions: one statement for all the rooms of a batch.
 */
#include "worker/store_impl.h"
#include "common/error.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rooms of the JSON array ?1, as each backend reads it. */
#define ROOMS_PG "SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(?1 AS JSON))"
#define ROOMS_SQLITE "SELECT value FROM json_each(?1)"

/* The rooms' pending marks; the tiny table is read whole. */
#define PENDING(rooms)                                                                             \
    "SELECT room_id, after_id, senders FROM publishing WHERE pending = 1 AND room_id IN (" rooms ")"
static const wrk_sql_t sql_pending = {.text = PENDING(ROOMS_SQLITE), .pg = PENDING(ROOMS_PG)};

/* A room's messages in (?2, ?3), oldest first, by the index of its
 * messages. */
static const wrk_sql_t sql_left = {
    .text = "SELECT m.id, m.room_id, m.user_id, u.username, m.body, m.created, m.edited, "
            "m.deleted, m.client_id FROM messages m JOIN users u ON u.id = m.user_id "
            "WHERE m.room_id = ?1 AND m.id > ?2 AND m.id < ?3 AND m.deleted = 0 "
            "ORDER BY m.id LIMIT 500"};
_Static_assert(WRK_STORE_SINCE_MAX == 500, "the limit above");

/* ?1: [[room, senders], ...]. The SELECT's WHERE tells sqlite that ON
 * CONFLICT is the upsert's, not a join's. */
#define MARK(pairs)                                                                                \
    "INSERT INTO publishing(room_id, after_id, senders, pending) "                                 \
    "SELECT j.r, coalesce((SELECT max(id) FROM messages WHERE room_id = j.r), 0), j.o, 1 "         \
    "FROM (" pairs ") AS j WHERE 1 = 1 ON CONFLICT (room_id) DO UPDATE SET "                       \
    "after_id = CASE WHEN publishing.pending = 1 THEN publishing.after_id "                        \
    "ELSE excluded.after_id END, "                                                                 \
    "senders = CASE WHEN publishing.pending = 0 THEN excluded.senders "                            \
    "WHEN length(publishing.senders) < 65536 THEN publishing.senders || excluded.senders "         \
    "ELSE publishing.senders END, pending = 1"
static const wrk_sql_t sql_mark = {
    .text = MARK("SELECT json_extract(value, '$[0]') AS r, json_extract(value, '$[1]') AS o "
                 "FROM json_each(?1)"),
    .pg = MARK("SELECT CAST(e->>0 AS BIGINT) AS r, e->>1 AS o "
               "FROM json_array_elements(CAST(?1 AS JSON)) AS e")};

#define CLEAR(rooms)                                                                               \
    "UPDATE publishing SET pending = 0, senders = '' WHERE pending = 1 AND room_id IN (" rooms ")"
static const wrk_sql_t sql_clear = {.text = CLEAR(ROOMS_SQLITE), .pg = CLEAR(ROOMS_PG)};

void wrk_unpublished_list_clear(wrk_unpublished_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        wrk_message_clear(&l->items[i].m);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* rooms[0..n) as a JSON array into buf. Returns its length, or 0 when n is
 * out of range. */
static size_t rooms_json(const int64_t *rooms, size_t n, char *buf, size_t size)
{
    if (n == 0 || n > WRK_STORE_LOCK_ROOMS_MAX)
        return 0;
    size_t len = 0;
    buf[len++] = '[';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "", (long long)rooms[i]);
    buf[len++] = ']';
    buf[len] = '\0';
    return len;
}

#define ROOMS_JSON_MAX (WRK_STORE_LOCK_ROOMS_MAX * 21 + 3)

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

/* Collects the rows of sql_pending. */
static void collect_marks(void *arg, wrk_db_stmt_t *st, int rc)
{
    wrk__marks_t *marks = arg;
    wrk__marks_clear(marks); /* a run again after a conflict */
    for (; rc == WRK_DB_ROW; rc = st->drv->step(st)) {
        struct wrk__mark *v = realloc(marks->v, (marks->n + 1) * sizeof(*v));
        if (!v) {
            rc = MC_ENOMEM;
            break;
        }
        marks->v = v;
        struct wrk__mark *m = &v[marks->n];
        m->room = wrk_db_int(st, 0);
        m->after_id = wrk_db_int(st, 1);
        size_t len;
        if (!(m->senders = wrk__dup_text(st, 2, &len))) {
            rc = MC_ENOMEM;
            break;
        }
        marks->n++;
    }
    marks->rc = rc < 0 ? rc : 0;
}

/* sql_pending's statement with rooms bound (json holds them), or NULL. */
static wrk_db_stmt_t *pending_stmt(wrk_store_t *s, const int64_t *rooms, size_t n,
                                   char json[ROOMS_JSON_MAX])
{
    size_t len = rooms_json(rooms, n, json, ROOMS_JSON_MAX);
    if (!len) {
        wrk__fail(s, "publishing marks: no rooms, or too many", MC_EINVAL);
        return NULL;
    }
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_pending);
    if (st)
        wrk_db_bind_text(st, 1, json, len);
    return st;
}

int wrk__queue_pending(wrk_store_t *s, const int64_t *rooms, size_t n, wrk__marks_t *marks)
{
    char json[ROOMS_JSON_MAX]; /* queue sends it: it may go once queue returns */
    memset(marks, 0, sizeof(*marks));
    wrk_db_stmt_t *st = pending_stmt(s, rooms, n, json);
    return st ? wrk__queue(s, st, collect_marks, marks) : MC_EDB;
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
    char json[ROOMS_JSON_MAX];
    wrk_db_stmt_t *st = pending_stmt(s, rooms, n, json);
    if (!st)
        return MC_EDB;
    wrk__marks_t marks = {0};
    collect_marks(&marks, st, wrk__step(s, st, "publishing marks"));
    wrk_db_reset(st);
    int rc = marks.rc ? marks.rc : wrk__unpublished_of(s, &marks, NULL, 0, out);
    wrk__marks_clear(&marks);
    return rc;
}

int wrk_store_published(wrk_store_t *s, const int64_t *rooms, size_t n)
{
    char json[ROOMS_JSON_MAX];
    size_t len = rooms_json(rooms, n, json, sizeof(json));
    if (!len)
        return n ? MC_EINVAL : 0;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_clear);
    if (!st)
        return MC_EDB;
    wrk_db_bind_text(st, 1, json, len);
    return wrk__exec(s, st, "published");
}

/* Appends msg's line to the senders of its room in pairs ([[room,
 * senders], ...]), adding the room when it is new. Returns 0 or MC_ENOMEM. */
static int add_sender(cJSON *pairs, const wrk_new_message_t *msg)
{
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
    cJSON *pair;
    cJSON_ArrayForEach(pair, pairs)
    {
        if ((int64_t)cJSON_GetArrayItem(pair, 0)->valuedouble == msg->room_id)
            break;
    }
    const char *before = pair ? cJSON_GetArrayItem(pair, 1)->valuestring : "";
    size_t len = strlen(before) + strlen(text) + 2;
    char *senders = malloc(len);
    int rc = MC_ENOMEM;
    if (senders) {
        snprintf(senders, len, "%s%s\n", before, text);
        cJSON *value = cJSON_CreateString(senders);
        if (pair && value && cJSON_ReplaceItemInArray(pair, 1, value))
            rc = 0;
        else if (!pair && value) {
            pair = cJSON_CreateArray();
            if (pair && cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)msg->room_id)) &&
                cJSON_AddItemToArray(pair, value) && cJSON_AddItemToArray(pairs, pair))
                rc = 0;
            else
                cJSON_Delete(pair);
        } else {
            cJSON_Delete(value);
        }
    }
    free(senders);
    free(text);
    return rc;
}

int wrk__queue_mark(wrk_store_t *s, const wrk_new_message_t *msgs, size_t n)
{
    cJSON *pairs = cJSON_CreateArray();
    int rc = pairs ? 0 : MC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (msgs[i].client_id && msgs[i].sender)
            rc = add_sender(pairs, &msgs[i]);
    char *json = rc == 0 ? cJSON_PrintUnformatted(pairs) : NULL;
    cJSON_Delete(pairs);
    if (!json)
        return MC_ENOMEM;
    wrk_db_stmt_t *st = strcmp(json, "[]") ? wrk__stmt(s, &sql_mark) : NULL;
    if (st) {
        wrk_db_bind_text(st, 1, json, strlen(json));
        rc = wrk__queue(s, st, NULL, NULL); /* sent now: json may go */
    }
    free(json);
    return rc;
}
