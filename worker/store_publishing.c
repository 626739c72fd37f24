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
 * batches to the next.
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

#define UNPUBLISHED(rooms)                                                                         \
    "SELECT m.id, m.room_id, m.user_id, u.username, m.body, m.created, m.edited, m.deleted, "      \
    "m.client_id, p.senders FROM publishing p "                                                    \
    "JOIN messages m ON m.room_id = p.room_id AND m.id > p.after_id "                              \
    "JOIN users u ON u.id = m.user_id "                                                            \
    "WHERE p.pending = 1 AND m.deleted = 0 AND p.room_id IN (" rooms ") ORDER BY m.id LIMIT 500"
static const wrk_sql_t sql_unpublished = {.text = UNPUBLISHED(ROOMS_SQLITE),
                                          .pg = UNPUBLISHED(ROOMS_PG)};
_Static_assert(WRK_STORE_SINCE_MAX == 500, "the limit above");

/* ?1: [[room, senders], ...]. The SELECT's WHERE tells sqlite that ON
 * CONFLICT is the upsert's, not a join's. */
#define MARK(pairs)                                                                                \
    "INSERT INTO publishing(room_id, after_id, senders, pending) "                                 \
    "SELECT j.r, coalesce((SELECT max(id) FROM messages WHERE room_id = j.r), 0), j.o, 1 "         \
    "FROM (" pairs ") AS j WHERE 1 = 1 ON CONFLICT (room_id) DO UPDATE SET "                       \
    "after_id = CASE WHEN publishing.pending = 1 THEN publishing.after_id "                        \
    "ELSE excluded.after_id END, "                                                                 \
    "senders = CASE WHEN publishing.pending = 1 THEN publishing.senders || excluded.senders "      \
    "ELSE excluded.senders END, pending = 1"
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

static void collect(void *arg, wrk_db_stmt_t *st, int rc)
{
    wrk__unpublished_run_t *c = arg;
    wrk_unpublished_list_clear(c->out); /* a run again after a conflict */
    size_t cap = 0;
    for (; rc == WRK_DB_ROW; rc = st->drv->step(st)) {
        if (c->out->n == cap) {
            size_t more = cap ? 2 * cap : 8;
            wrk_unpublished_t *items = realloc(c->out->items, more * sizeof(*items));
            if (!items) {
                rc = MC_ENOMEM;
                break;
            }
            c->out->items = items;
            cap = more;
        }
        wrk_unpublished_t *u = &c->out->items[c->out->n];
        if (wrk__read_message(st, &u->m)) {
            rc = MC_ENOMEM;
            break;
        }
        c->out->n++;
        size_t len;
        const char *client_id = wrk_db_text(st, 8, &len), *senders = wrk_db_text(st, 9, &len);
        sender_of(senders, u->m.user_id, client_id, u->sender, sizeof(u->sender));
    }
    c->rc = rc < 0 ? rc : 0;
}

/* sql_unpublished's statement with rooms bound (json holds them), or NULL. */
static wrk_db_stmt_t *unpublished_stmt(wrk_store_t *s, const int64_t *rooms, size_t n,
                                       char json[ROOMS_JSON_MAX])
{
    size_t len = rooms_json(rooms, n, json, ROOMS_JSON_MAX);
    if (!len) {
        wrk__fail(s, "unpublished messages: too many rooms", MC_EINVAL);
        return NULL;
    }
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_unpublished);
    if (st)
        wrk_db_bind_text(st, 1, json, len);
    return st;
}

int wrk__queue_unpublished(wrk_store_t *s, const int64_t *rooms, size_t n,
                           wrk__unpublished_run_t *run)
{
    char json[ROOMS_JSON_MAX]; /* queue sends it: it may go once queue returns */
    run->s = s;
    run->rc = 0;
    wrk_db_stmt_t *st = unpublished_stmt(s, rooms, n, json);
    return st ? wrk__queue(s, st, collect, run) : MC_EDB;
}

int wrk_store_unpublished(wrk_store_t *s, const int64_t *rooms, size_t n,
                          wrk_unpublished_list_t *out)
{
    memset(out, 0, sizeof(*out));
    char json[ROOMS_JSON_MAX];
    wrk_db_stmt_t *st = unpublished_stmt(s, rooms, n, json);
    if (!st)
        return MC_EDB;
    wrk__unpublished_run_t run = {s, out, 0};
    collect(&run, st, wrk__step(s, st, "unpublished messages"));
    wrk_db_reset(st);
    if (run.rc)
        wrk_unpublished_list_clear(out);
    return run.rc;
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

int wrk__queue_marks(wrk_store_t *s, const wrk_new_message_t *msgs, size_t n)
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
