/*
 * worker/command.c: the client's WebSocket protocol (worker/command.h):
 * a text frame parsed into a command, and the server's replies encoded,
 * both on cJSON.
 */
#include "worker/command.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/json_out.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Whole numbers above this are not exact in a JSON double. */
#define MAX_EXACT_ID 9007199254740991LL

static const struct {
    const char *name;
    wrk_command_kind_t kind;
    int needs_room;
    int takes_client_id; /* the commands that change something */
} commands[] = {
    {"join", WRK_CMD_JOIN, 1, 0},         {"leave", WRK_CMD_LEAVE, 1, 0},
    {"send", WRK_CMD_SEND, 1, 1},         {"history", WRK_CMD_HISTORY, 1, 0},
    {"edit", WRK_CMD_EDIT, 1, 1},         {"delete", WRK_CMD_DELETE, 1, 1},
    {"whisper", WRK_CMD_WHISPER, 0, 1},   {"who", WRK_CMD_WHO, 1, 0},
    {"whispers", WRK_CMD_WHISPERS, 0, 0},
};

void wrk_command_clear(wrk_command_t *cmd)
{
    free(cmd->message);
    memset(cmd, 0, sizeof(*cmd));
}

/* A JSON number that is a whole number in [min, MAX_EXACT_ID]. */
static int whole_number(const cJSON *item, int64_t min, int64_t *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double d = item->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)min || d > (double)MAX_EXACT_ID)
        return -1;
    *out = (int64_t)d;
    return 0;
}

/* A room id: a positive whole number, or a string of 1 to 15 decimal digits
 * naming one. */
static int room_id(const cJSON *item, int64_t *out)
{
    if (cJSON_IsString(item)) {
        const char *s = item->valuestring;
        size_t n = strlen(s);
        if (n == 0 || n > 15)
            return -1;
        int64_t v = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return -1;
            v = v * 10 + (s[i] - '0');
        }
        if (v < 1)
            return -1;
        *out = v;
        return 0;
    }
    return whole_number(item, 1, out);
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

/* Whether s[0..n) (UTF-8) holds a control character other than tab and
 * newline: C0, DEL, or C1 (U+0080..U+009F, C2 80..C2 9F). Chat text has
 * no use for them; they do not render, cost 6 bytes escaped, and carry
 * terminal escapes into logs. */
static int has_control(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n; i++) {
        if ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\n') || s[i] == 0x7f)
            return 1;
        if (s[i] == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)
            return 1;
    }
    return 0;
}

/* Whether a JSON text escapes a NUL (\u0000) in one of its strings, or
 * has a \u without four hex digits, which is not JSON and which cJSON
 * reads as a NUL: cJSON would end the string there and the rest of it
 * would be lost without a word; a NUL is a control character like the
 * others. Outside strings valid JSON has no backslash, so every one
 * starts an escape. */
static int has_nul_escape(const char *text, size_t len)
{
    const char *p = text, *end = text + len, *b;
    while ((b = memchr(p, '\\', (size_t)(end - p))) && end - b >= 2) {
        if (b[1] == 'u' && (end - b < 6 || memcmp(b + 2, "0000", 4) == 0 ||
                            !isxdigit((unsigned char)b[2]) || !isxdigit((unsigned char)b[3]) ||
                            !isxdigit((unsigned char)b[4]) || !isxdigit((unsigned char)b[5])))
            return 1;
        p = b + 2; /* past the escaped character: JSON "\\u0000" is a backslash and text */
    }
    return 0;
}

/* Whether the message item (a string of n bytes) would cost more than
 * WRK_MESSAGE_COST_MAX in a reply: escaped by cJSON, then by the envelope.
 * Without control characters a byte costs at most 4 there, so only long
 * messages are weighed. */
static int too_costly(const cJSON *item, size_t n, int *failed)
{
    *failed = 0;
    if (n <= (WRK_MESSAGE_COST_MAX - 8) / 4)
        return 0;
    char *printed = cJSON_PrintUnformatted(item);
    if (!printed) {
        *failed = 1;
        return 0;
    }
    size_t cost = mc_envelope_string_len(printed, strlen(printed));
    free(printed);
    return cost > WRK_MESSAGE_COST_MAX;
}

static int parse_tree(const cJSON *root, size_t message_max, wrk_command_t *cmd, const char **code)
{
    *code = MC_ERROR_BAD_REQUEST;
    if (!cJSON_IsObject(root))
        return MC_EINVAL;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "command");
    if (!cJSON_IsString(name))
        return MC_EINVAL;
    size_t i;
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name->valuestring) == 0)
            break;
    if (i == sizeof(commands) / sizeof(commands[0])) {
        *code = MC_ERROR_UNKNOWN_COMMAND;
        return MC_EINVAL;
    }
    cmd->kind = commands[i].kind;
    cmd->name = commands[i].name;
    cmd->limit = WRK_HISTORY_DEFAULT;

    /* Read first, so that every later error names the command it answers. */
    const cJSON *item;
    if (commands[i].takes_client_id &&
        (item = cJSON_GetObjectItemCaseSensitive(root, "client_id")) && !cJSON_IsNull(item)) {
        if (!cJSON_IsString(item) || strlen(item->valuestring) == 0 ||
            strlen(item->valuestring) > WRK_CLIENT_ID_MAX)
            return MC_EINVAL;
        strcpy(cmd->client_id, item->valuestring);
    }

    if (commands[i].needs_room) {
        const cJSON *room = cJSON_GetObjectItemCaseSensitive(root, "room");
        if (!room)
            return MC_EINVAL;
        if (room_id(room, &cmd->room)) {
            *code = MC_ERROR_ROOM_INVALID;
            return MC_EINVAL;
        }
        cmd->has_room = 1;
    }

    switch (cmd->kind) {
    case WRK_CMD_JOIN:
    case WRK_CMD_WHISPERS:
        if ((item = cJSON_GetObjectItemCaseSensitive(root, "since")) && !cJSON_IsNull(item)) {
            if (whole_number(item, 0, &cmd->since))
                return MC_EINVAL;
            cmd->has_since = 1;
        }
        break;
    case WRK_CMD_HISTORY:
        if ((item = cJSON_GetObjectItemCaseSensitive(root, "before")) && !cJSON_IsNull(item)) {
            if (whole_number(item, 1, &cmd->before))
                return MC_EINVAL;
            cmd->has_before = 1;
        }
        if ((item = cJSON_GetObjectItemCaseSensitive(root, "limit")) && !cJSON_IsNull(item)) {
            int64_t limit;
            if (whole_number(item, 1, &limit) || limit > WRK_HISTORY_MAX)
                return MC_EINVAL;
            cmd->limit = (long)limit;
        }
        break;
    case WRK_CMD_EDIT:
    case WRK_CMD_DELETE:
        if (whole_number(cJSON_GetObjectItemCaseSensitive(root, "id"), 1, &cmd->id))
            return MC_EINVAL;
        break;
    case WRK_CMD_WHISPER: {
        item = cJSON_GetObjectItemCaseSensitive(root, "to");
        if (!cJSON_IsString(item))
            return MC_EINVAL;
        size_t n = strlen(item->valuestring);
        if (n == 0 || n > MC_USERNAME_MAX) {
            *code = MC_ERROR_USER_INVALID;
            return MC_EINVAL;
        }
        memcpy(cmd->to, item->valuestring, n + 1);
        break;
    }
    case WRK_CMD_SEND:
    case WRK_CMD_LEAVE:
    case WRK_CMD_WHO:
        break;
    }

    if (cmd->kind == WRK_CMD_SEND || cmd->kind == WRK_CMD_EDIT || cmd->kind == WRK_CMD_WHISPER) {
        item = cJSON_GetObjectItemCaseSensitive(root, "message");
        if (!cJSON_IsString(item))
            return MC_EINVAL;
        size_t n = strlen(item->valuestring);
        if (n > message_max) {
            *code = MC_ERROR_MESSAGE_TOO_LONG;
            return MC_EINVAL;
        }
        if (blank(item->valuestring, n)) {
            *code = MC_ERROR_MESSAGE_EMPTY;
            return MC_EINVAL;
        }
        if (has_control(item->valuestring, n))
            return MC_EINVAL;
        int failed;
        if (too_costly(item, n, &failed)) {
            *code = MC_ERROR_MESSAGE_TOO_LONG;
            return MC_EINVAL;
        }
        if (failed) {
            *code = MC_ERROR_SERVER_BUSY;
            return MC_ENOMEM;
        }
        cmd->message = malloc(n + 1);
        if (!cmd->message) {
            *code = MC_ERROR_SERVER_BUSY;
            return MC_ENOMEM;
        }
        memcpy(cmd->message, item->valuestring, n + 1);
        cmd->message_len = n;
    }
    *code = NULL;
    return 0;
}

int wrk_command_parse(const char *text, size_t len, size_t message_max, wrk_command_t *cmd,
                      const char **code)
{
    memset(cmd, 0, sizeof(*cmd));
    *code = MC_ERROR_BAD_REQUEST;
    /* A frame far larger than any valid command is refused before parsing:
     * JSON escapes grow a message at most six times. */
    if (message_max > SIZE_MAX / 8 || len > 6 * message_max + 4096) {
        *code = MC_ERROR_MESSAGE_TOO_LONG;
        return MC_EINVAL;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root)
        return MC_EINVAL;
    int rc = parse_tree(root, message_max, cmd, code);
    cJSON_Delete(root);
    if (rc == 0 && has_nul_escape(text, len)) {
        *code = MC_ERROR_BAD_REQUEST;
        rc = MC_EINVAL;
    }
    return rc;
}

/* ---- Replies ------------------------------------------------------------- */

/* Adds "key":"<id>". */
static int add_id_string(cJSON *obj, const char *key, int64_t id)
{
    char buf[MC_JSON_INT_MAX];
    mc_json_int_text(buf, id);
    return cJSON_AddStringToObject(obj, key, buf) ? 0 : MC_ENOMEM;
}

/* Adds "key":<integer>, printed exactly (a double would round past 2^53). */
static int add_int(cJSON *obj, const char *key, int64_t v)
{
    char buf[MC_JSON_INT_MAX];
    mc_json_int_text(buf, v);
    return cJSON_AddRawToObject(obj, key, buf) ? 0 : MC_ENOMEM;
}

static int add_string(cJSON *obj, const char *key, const char *s)
{
    return cJSON_AddStringToObject(obj, key, s) ? 0 : MC_ENOMEM;
}

static int finish(cJSON *obj, int rc, char **out)
{
    *out = NULL;
    if (rc == 0 && obj)
        *out = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return rc ? rc : *out ? 0 : MC_ENOMEM;
}

/* A message as history lists it: wrk_reply_message's text without "own". */
static cJSON *message_object(const wrk_message_t *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int rc = add_id_string(o, "room", m->room_id);
    rc = rc ? rc : add_string(o, "message", m->body);
    rc = rc ? rc : add_string(o, "username", m->username);
    rc = rc ? rc : add_int(o, "msg_type", MC_MSG_MESSAGE);
    rc = rc ? rc : add_int(o, "id", m->id);
    rc = rc ? rc : add_int(o, "ts", m->created_ms);
    if (!rc && m->edited_ms)
        rc = add_int(o, "edited", m->edited_ms);
    if (rc) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* What text costs as the text of an envelope. */
static int text_cost(const cJSON *item, size_t *cost)
{
    char *printed = cJSON_PrintUnformatted(item);
    if (!printed)
        return MC_ENOMEM;
    *cost = mc_envelope_string_len(printed, strlen(printed));
    free(printed);
    return 0;
}

/* Moves the newest entries of all (an array, oldest first, that the caller
 * deletes) that fit into arr, a member of obj: obj's text, with arr empty
 * and "truncated":true right after arr, must stay within budget once they
 * are in. Then drops "truncated" unless entries were left out or more is
 * set (the list was cut already). Returns 0, MC_ENOMEM or MC_ETOOBIG. */
static int fit_newest(cJSON *obj, cJSON *arr, cJSON *all, int more, size_t budget)
{
    size_t used;
    int rc = text_cost(obj, &used);
    if (rc)
        return rc;
    if (used > budget)
        return MC_ETOOBIG;
    /* From the newest (the child's prev is the last entry) down. */
    size_t n = (size_t)cJSON_GetArraySize(all), kept = 0;
    cJSON *e = n ? all->child->prev : NULL;
    for (; kept < n; kept++, e = e->prev) {
        size_t cost;
        if ((rc = text_cost(e, &cost)) != 0)
            return rc;
        cost = cost - 2 + 1; /* inside the reply's quotes, and a comma */
        if (cost > budget - used)
            break;
        used += cost;
    }
    cJSON *next, *k = kept == n ? all->child : e->next;
    for (; k; k = next) {
        next = k->next;
        cJSON_AddItemToArray(arr, cJSON_DetachItemViaPointer(all, k));
    }
    if (!more && cJSON_GetArraySize(all) == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "truncated");
    return 0;
}

/* Adds "key":[...] (and the "truncated":true fit_newest may drop) to obj
 * and puts the messages of list into all, oldest first, for fit_newest. */
static int add_messages(cJSON *obj, const char *key, const wrk_message_list_t *list, cJSON **arr,
                        cJSON *all)
{
    *arr = cJSON_AddArrayToObject(obj, key);
    if (!*arr || !cJSON_AddTrueToObject(obj, "truncated"))
        return MC_ENOMEM;
    for (size_t i = 0; i < list->n; i++) {
        cJSON *m = message_object(&list->items[i]);
        if (!m)
            return MC_ENOMEM;
        cJSON_AddItemToArray(all, m);
    }
    return 0;
}

static int add_names(cJSON *obj, const char *key, const char *const *names, size_t n)
{
    cJSON *arr = cJSON_AddArrayToObject(obj, key);
    if (!arr)
        return MC_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateString(names[i]);
        if (!s)
            return MC_ENOMEM;
        cJSON_AddItemToArray(arr, s);
    }
    return 0;
}

int wrk_reply_join(int64_t room, const char *title, const wrk_message_list_t *history,
                   const char *const *members, size_t nmembers, size_t budget, char **out)
{
    cJSON *o = cJSON_CreateObject(), *all = cJSON_CreateArray(), *arr = NULL;
    int rc = o && all ? add_id_string(o, "join", room) : MC_ENOMEM;
    rc = rc ? rc : add_string(o, "title", title);
    if (!rc && history)
        rc = add_messages(o, "history", history, &arr, all);
    if (!rc && members)
        rc = add_names(o, "members", members, nmembers);
    if (!rc && history)
        rc = fit_newest(o, arr, all, history->truncated, budget);
    cJSON_Delete(all);
    return finish(o, rc, out);
}

int wrk_reply_leave(int64_t room, char **out)
{
    cJSON *o = cJSON_CreateObject();
    int rc = o ? add_id_string(o, "leave", room) : MC_ENOMEM;
    return finish(o, rc, out);
}

/* A chat message goes to a room with every message sent, so its text is
 * written straight (common/json_out.h), byte for byte what printing
 * message_object gives. */
int wrk_reply_message(const wrk_message_t *m, int own, char **out)
{
    *out = NULL;
    if (!m->body)
        return MC_EINVAL;
    char num[MC_JSON_INT_MAX];
    size_t body_len = strlen(m->body), len;
    mc_json_out_t o = {0};
    mc_json_reserve(&o, body_len + 192);
    MC_JSON_PUT(&o, "{\"room\":");
    mc_json_put_string(&o, num, mc_json_int_text(num, m->room_id));
    MC_JSON_PUT(&o, ",\"message\":");
    mc_json_put_string(&o, m->body, body_len);
    MC_JSON_PUT(&o, ",\"username\":");
    mc_json_put_string(&o, m->username, strlen(m->username));
    _Static_assert(MC_MSG_MESSAGE == 0, "a chat message's msg_type is 0");
    MC_JSON_PUT(&o, ",\"msg_type\":0,\"id\":");
    mc_json_put_int(&o, m->id);
    MC_JSON_PUT(&o, ",\"ts\":");
    mc_json_put_int(&o, m->created_ms);
    if (m->edited_ms) {
        MC_JSON_PUT(&o, ",\"edited\":");
        mc_json_put_int(&o, m->edited_ms);
    }
    if (own)
        MC_JSON_PUT(&o, ",\"own\":true");
    MC_JSON_PUT(&o, "}");
    return mc_json_finish(&o, out, &len);
}

int wrk_reply_notice(int64_t room, const char *username, mc_msg_type_t type, char **out)
{
    cJSON *o = cJSON_CreateObject();
    int rc = o ? add_id_string(o, "room", room) : MC_ENOMEM;
    rc = rc ? rc : (cJSON_AddNullToObject(o, "message") ? 0 : MC_ENOMEM);
    rc = rc ? rc : add_string(o, "username", username);
    rc = rc ? rc : add_int(o, "msg_type", type);
    return finish(o, rc, out);
}

/* Adds "client_id":ID unless client_id is NULL or "". */
static int add_client_id(cJSON *obj, int rc, const char *client_id)
{
    if (rc || !client_id || !client_id[0])
        return rc;
    return add_string(obj, "client_id", client_id);
}

int wrk_reply_error(const char *code, int64_t room, const char *command, const char *client_id,
                    char **out)
{
    cJSON *o = cJSON_CreateObject();
    int rc = o ? add_string(o, "error", code) : MC_ENOMEM;
    if (!rc && room > 0)
        rc = add_id_string(o, "room", room);
    if (!rc && command)
        rc = add_string(o, "command", command);
    return finish(o, add_client_id(o, rc, client_id), out);
}

int wrk_reply_history(int64_t room, const wrk_message_list_t *list, size_t budget, char **out)
{
    cJSON *o = cJSON_CreateObject(), *all = cJSON_CreateArray(), *arr = NULL;
    int rc = o && all ? add_id_string(o, "history", room) : MC_ENOMEM;
    rc = rc ? rc : add_messages(o, "messages", list, &arr, all);
    rc = rc ? rc : fit_newest(o, arr, all, list->truncated, budget);
    cJSON_Delete(all);
    return finish(o, rc, out);
}

int wrk_reply_edited(const wrk_message_t *m, const char *client_id, char **out)
{
    cJSON *o = cJSON_CreateObject();
    int rc = o ? add_int(o, "edited", m->id) : MC_ENOMEM;
    rc = rc ? rc : add_id_string(o, "room", m->room_id);
    rc = rc ? rc : add_string(o, "message", m->body);
    rc = rc ? rc : add_int(o, "ts", m->edited_ms);
    return finish(o, add_client_id(o, rc, client_id), out);
}

int wrk_reply_deleted(int64_t id, int64_t room, const char *client_id, char **out)
{
    cJSON *o = cJSON_CreateObject();
    int rc = o ? add_int(o, "deleted", id) : MC_ENOMEM;
    rc = rc ? rc : add_id_string(o, "room", room);
    return finish(o, add_client_id(o, rc, client_id), out);
}

static cJSON *whisper_object(int64_t id, const char *from, const char *to, const char *message,
                             int64_t ts)
{
    cJSON *o = cJSON_CreateObject();
    int rc = o ? add_int(o, "whisper", id) : MC_ENOMEM;
    rc = rc ? rc : add_string(o, "from", from);
    rc = rc ? rc : add_string(o, "to", to);
    rc = rc ? rc : add_string(o, "message", message);
    rc = rc ? rc : add_int(o, "ts", ts);
    if (rc) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int wrk_reply_whisper(const wrk_whisper_t *w, const char *client_id, char **out)
{
    cJSON *o = whisper_object(w->id, w->from, w->to, w->body, w->created_ms);
    return finish(o, add_client_id(o, o ? 0 : MC_ENOMEM, client_id), out);
}

int wrk_reply_whispers(const wrk_whisper_list_t *list, size_t budget, char **out)
{
    cJSON *o = cJSON_CreateObject(), *all = cJSON_CreateArray();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "whispers") : NULL;
    int rc = arr && all && cJSON_AddTrueToObject(o, "truncated") ? 0 : MC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < list->n; i++) {
        const wrk_whisper_t *w = &list->items[i];
        cJSON *item = whisper_object(w->id, w->from, w->to, w->body, w->created_ms);
        if (!item)
            rc = MC_ENOMEM;
        else
            cJSON_AddItemToArray(all, item);
    }
    rc = rc ? rc : fit_newest(o, arr, all, list->truncated, budget);
    cJSON_Delete(all);
    return finish(o, rc, out);
}

int wrk_reply_who(int64_t room, const char *const *members, size_t n, char **out)
{
    cJSON *o = cJSON_CreateObject();
    int rc = o ? add_id_string(o, "who", room) : MC_ENOMEM;
    rc = rc ? rc : add_names(o, "members", members, n);
    return finish(o, rc, out);
}

int wrk_reply_rooms(const wrk_room_t *rooms, size_t n, char **out)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "rooms") : NULL;
    int rc = arr ? 0 : MC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        cJSON *r = cJSON_CreateObject();
        if (!r) {
            rc = MC_ENOMEM;
            break;
        }
        cJSON_AddItemToArray(arr, r);
        rc = add_id_string(r, "id", rooms[i].id);
        rc = rc ? rc : add_string(r, "title", rooms[i].title);
        rc =
            rc ? rc : (cJSON_AddBoolToObject(r, "staff_only", rooms[i].staff_only) ? 0 : MC_ENOMEM);
    }
    return finish(o, rc, out);
}
