/* common/error_reply.c: errors that say which frame they answer (see
 * error_reply.h). */
#include "common/error_reply.h"
#include "common/error.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

/* A short string field of in, or NULL. */
static const char *short_string(const cJSON *in, const char *key, size_t max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, key);
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > max)
        return NULL;
    return v->valuestring;
}

/* The room as replies name it: a positive whole number, given as a JSON
 * number or a string of digits; "" when it is neither. */
static void room_of(const cJSON *in, char *buf, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, "room");
    buf[0] = '\0';
    if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble < 9e15 &&
        v->valuedouble == (double)(long long)v->valuedouble) {
        snprintf(buf, size, "%lld", (long long)v->valuedouble);
    } else if (cJSON_IsString(v)) {
        size_t n = strlen(v->valuestring);
        if (n == 0 || n >= size || n > 18 || v->valuestring[0] == '0' ||
            strspn(v->valuestring, "0123456789") != n)
            return;
        memcpy(buf, v->valuestring, n + 1);
    }
}

int mc_error_reply(const char *code, const char *frame, size_t len, char **out)
{
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "error", code);
    cJSON *in = (ok && frame) ? cJSON_ParseWithLength(frame, len) : NULL;
    if (ok && cJSON_IsObject(in)) {
        const char *command = short_string(in, "command", MC_COMMAND_NAME_MAX);
        const char *client_id = short_string(in, "client_id", MC_CLIENT_ID_MAX);
        char room[24];
        room_of(in, room, sizeof(room));
        if (command)
            ok = cJSON_AddStringToObject(o, "command", command) != NULL;
        if (ok && room[0])
            ok = cJSON_AddStringToObject(o, "room", room) != NULL;
        if (ok && client_id)
            ok = cJSON_AddStringToObject(o, "client_id", client_id) != NULL;
    }
    cJSON_Delete(in);
    if (ok)
        *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *out ? 0 : MC_ENOMEM;
}
