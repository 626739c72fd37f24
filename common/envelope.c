#include "common/envelope.h"
#include "common/error.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
    [MC_ENV_HTTP_REQUEST] = "http.request",    [MC_ENV_HTTP_RESPONSE] = "http.response",
    [MC_ENV_WS_CONNECT] = "websocket.connect", [MC_ENV_WS_ACCEPT] = "websocket.accept",
    [MC_ENV_WS_RECEIVE] = "websocket.receive", [MC_ENV_WS_SEND] = "websocket.send",
    [MC_ENV_WS_CLOSE] = "websocket.close",     [MC_ENV_WS_DISCONNECT] = "websocket.disconnect",
};
#define TYPE_COUNT (sizeof(type_names) / sizeof(type_names[0]))

/* Which fields each type carries, so decode and encode share one table. */
enum field {
    F_REPLY = 1 << 0,
    F_METHOD = 1 << 1,
    F_PATH = 1 << 2,
    F_QUERY = 1 << 3,
    F_CLIENT = 1 << 4,
    F_HEADERS = 1 << 5,
    F_BODY = 1 << 6, /* "body" */
    F_TEXT = 1 << 7, /* "text", same storage as body */
    F_STATUS = 1 << 8,
    F_CODE = 1 << 9,
    F_SCOPE = 1 << 10,
    F_GROUPS = 1 << 11,
    F_EXCEPT = 1 << 12,
    F_OWN = 1 << 13,
};

static const unsigned type_fields[] = {
    [MC_ENV_HTTP_REQUEST] = F_REPLY | F_METHOD | F_PATH | F_QUERY | F_CLIENT | F_HEADERS | F_BODY,
    [MC_ENV_HTTP_RESPONSE] = F_STATUS | F_HEADERS | F_BODY,
    [MC_ENV_WS_CONNECT] = F_REPLY | F_PATH | F_QUERY | F_CLIENT | F_HEADERS,
    [MC_ENV_WS_ACCEPT] = F_SCOPE,
    [MC_ENV_WS_RECEIVE] = F_REPLY | F_SCOPE | F_GROUPS | F_TEXT,
    [MC_ENV_WS_SEND] = F_TEXT | F_EXCEPT | F_OWN,
    [MC_ENV_WS_CLOSE] = F_CODE,
    [MC_ENV_WS_DISCONNECT] = F_REPLY | F_SCOPE | F_GROUPS | F_CODE,
};

/* Fields a decoder insists on; the others default to "" or 0. */
static const unsigned type_required[] = {
    [MC_ENV_HTTP_REQUEST] = F_REPLY | F_METHOD | F_PATH,
    [MC_ENV_HTTP_RESPONSE] = F_STATUS,
    [MC_ENV_WS_CONNECT] = F_REPLY | F_PATH,
    [MC_ENV_WS_ACCEPT] = F_SCOPE,
    [MC_ENV_WS_RECEIVE] = F_REPLY | F_TEXT,
    [MC_ENV_WS_SEND] = F_TEXT,
    [MC_ENV_WS_CLOSE] = 0,
    [MC_ENV_WS_DISCONNECT] = F_REPLY,
};

static const struct {
    unsigned field;
    const char *key;
    size_t offset;
} string_fields[] = {
    {F_REPLY, "reply", offsetof(mc_envelope_t, reply)},
    {F_METHOD, "method", offsetof(mc_envelope_t, method)},
    {F_PATH, "path", offsetof(mc_envelope_t, path)},
    {F_QUERY, "query", offsetof(mc_envelope_t, query)},
    {F_CLIENT, "client", offsetof(mc_envelope_t, client)},
    {F_EXCEPT, "except", offsetof(mc_envelope_t, except)},
    {F_OWN, "own", offsetof(mc_envelope_t, own)},
};
#define STRING_FIELD_COUNT (sizeof(string_fields) / sizeof(string_fields[0]))

const char *mc_envelope_type_name(mc_envelope_type_t type)
{
    return (unsigned)type < TYPE_COUNT ? type_names[type] : "unknown";
}

static const char **string_slot(mc_envelope_t *env, size_t i)
{
    return (const char **)((char *)env + string_fields[i].offset);
}

static int decode_int(const cJSON *item, long min, long max, int *out)
{
    if (!cJSON_IsNumber(item) || item->valuedouble < (double)min ||
        item->valuedouble > (double)max || item->valuedouble != (double)(long)item->valuedouble)
        return MC_EINVAL;
    *out = (int)item->valuedouble;
    return 0;
}

static int decode_scope(const cJSON *obj, mc_scope_t *scope)
{
    if (!cJSON_IsObject(obj))
        return MC_EINVAL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "user_id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "username");
    const cJSON *staff = cJSON_GetObjectItemCaseSensitive(obj, "is_staff");
    /* 2^53: the largest id a JSON number carries exactly. */
    if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 9007199254740992.0 ||
        id->valuedouble != (double)(int64_t)id->valuedouble)
        return MC_EINVAL;
    if (!cJSON_IsString(name) || !cJSON_IsBool(staff))
        return MC_EINVAL;
    size_t len = strlen(name->valuestring);
    if (len > MC_USERNAME_MAX)
        return MC_ETOOBIG;
    scope->user_id = (int64_t)id->valuedouble;
    memcpy(scope->username, name->valuestring, len + 1);
    scope->is_staff = cJSON_IsTrue(staff);
    return 0;
}

static int decode_headers(const cJSON *arr, mc_envelope_t *env)
{
    if (!cJSON_IsArray(arr))
        return MC_EINVAL;
    const cJSON *pair;
    cJSON_ArrayForEach(pair, arr)
    {
        if (env->nheaders == MC_ENVELOPE_MAX_HEADERS)
            return MC_ETOOBIG;
        const cJSON *name = cJSON_GetArrayItem(pair, 0);
        const cJSON *value = cJSON_GetArrayItem(pair, 1);
        if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !cJSON_IsString(name) ||
            !cJSON_IsString(value))
            return MC_EINVAL;
        env->headers[env->nheaders].name = name->valuestring;
        env->headers[env->nheaders].value = value->valuestring;
        env->nheaders++;
    }
    return 0;
}

static int decode_groups(const cJSON *arr, mc_envelope_t *env)
{
    if (!cJSON_IsArray(arr))
        return MC_EINVAL;
    const cJSON *g;
    cJSON_ArrayForEach(g, arr)
    {
        if (env->ngroups == MC_ENVELOPE_MAX_GROUPS)
            return MC_ETOOBIG;
        if (!cJSON_IsString(g))
            return MC_EINVAL;
        env->groups[env->ngroups++] = g->valuestring;
    }
    return 0;
}

static int decode_fields(const cJSON *root, mc_envelope_t *env)
{
    unsigned fields = type_fields[env->type], required = type_required[env->type];

    for (size_t i = 0; i < STRING_FIELD_COUNT; i++) {
        if (!(fields & string_fields[i].field))
            continue;
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, string_fields[i].key);
        if (!item && !(required & string_fields[i].field)) {
            *string_slot(env, i) = "";
            continue;
        }
        if (!cJSON_IsString(item))
            return MC_EINVAL;
        *string_slot(env, i) = item->valuestring;
    }

    if (fields & (F_BODY | F_TEXT)) {
        const char *key = (fields & F_BODY) ? "body" : "text";
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
        if (!item && !(required & (F_BODY | F_TEXT))) {
            env->body = "";
        } else if (!cJSON_IsString(item)) {
            return MC_EINVAL;
        } else {
            env->body = item->valuestring;
        }
        env->body_len = strlen(env->body);
    }

    const cJSON *item;
    int rc;
    if ((fields & F_HEADERS) && (item = cJSON_GetObjectItemCaseSensitive(root, "headers")) &&
        (rc = decode_headers(item, env)))
        return rc;
    if ((fields & F_GROUPS) && (item = cJSON_GetObjectItemCaseSensitive(root, "groups")) &&
        (rc = decode_groups(item, env)))
        return rc;
    if (fields & F_STATUS) {
        item = cJSON_GetObjectItemCaseSensitive(root, "status");
        if ((item || (required & F_STATUS)) && decode_int(item, 100, 599, &env->status))
            return MC_EINVAL;
    }
    if (fields & F_CODE) {
        item = cJSON_GetObjectItemCaseSensitive(root, "code");
        env->code = 1000;
        if (item && decode_int(item, 1000, 4999, &env->code))
            return MC_EINVAL;
    }
    if (fields & F_SCOPE) {
        item = cJSON_GetObjectItemCaseSensitive(root, "scope");
        if (item) {
            if ((rc = decode_scope(item, &env->scope)))
                return rc;
            env->has_scope = 1;
        } else if (required & F_SCOPE) {
            return MC_EINVAL;
        }
    }
    return 0;
}

int mc_envelope_decode(mc_envelope_t *env, const char *data, size_t len)
{
    memset(env, 0, sizeof(*env));
    if (len > MC_ENVELOPE_MAX_BYTES)
        return MC_ETOOBIG;

    cJSON *root = cJSON_ParseWithLength(data, len);
    if (!root)
        return MC_EINVAL;
    env->tree = root;

    int rc = MC_EINVAL;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (cJSON_IsObject(root) && cJSON_IsString(type)) {
        for (size_t t = 0; t < TYPE_COUNT; t++) {
            if (strcmp(type->valuestring, type_names[t]) == 0) {
                env->type = (mc_envelope_type_t)t;
                rc = decode_fields(root, env);
                break;
            }
        }
    }
    if (rc)
        mc_envelope_clear(env);
    return rc;
}

void mc_envelope_clear(mc_envelope_t *env)
{
    cJSON_Delete(env->tree);
    memset(env, 0, sizeof(*env));
}

static cJSON *encode_scope(const mc_scope_t *scope)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj || !cJSON_AddNumberToObject(obj, "user_id", (double)scope->user_id) ||
        !cJSON_AddStringToObject(obj, "username", scope->username) ||
        !cJSON_AddBoolToObject(obj, "is_staff", scope->is_staff)) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

static int encode_fields(const mc_envelope_t *env, cJSON *root)
{
    unsigned fields = type_fields[env->type];
    for (size_t i = 0; i < STRING_FIELD_COUNT; i++) {
        if (!(fields & string_fields[i].field))
            continue;
        const char *v = *string_slot((mc_envelope_t *)env, i);
        /* An optional field left empty is left out: decoding defaults it. */
        if ((!v || !*v) && !(type_required[env->type] & string_fields[i].field))
            continue;
        if (!cJSON_AddStringToObject(root, string_fields[i].key, v ? v : ""))
            return MC_ENOMEM;
    }
    if (fields & F_HEADERS) {
        cJSON *arr = cJSON_AddArrayToObject(root, "headers");
        if (!arr)
            return MC_ENOMEM;
        for (size_t i = 0; i < env->nheaders && i < MC_ENVELOPE_MAX_HEADERS; i++) {
            cJSON *pair = cJSON_CreateArray();
            if (!pair)
                return MC_ENOMEM;
            cJSON_AddItemToArray(arr, pair);
            if (!cJSON_AddItemToArray(pair, cJSON_CreateString(env->headers[i].name)) ||
                !cJSON_AddItemToArray(pair, cJSON_CreateString(env->headers[i].value)))
                return MC_ENOMEM;
        }
    }
    if (fields & (F_BODY | F_TEXT)) {
        /* The body is (pointer, length): copy it to add the NUL cJSON wants. */
        char *copy = malloc(env->body_len + 1);
        if (!copy)
            return MC_ENOMEM;
        if (env->body_len)
            memcpy(copy, env->body, env->body_len);
        copy[env->body_len] = '\0';
        cJSON *s = cJSON_AddStringToObject(root, (fields & F_BODY) ? "body" : "text", copy);
        free(copy);
        if (!s)
            return MC_ENOMEM;
    }
    if ((fields & F_STATUS) && !cJSON_AddNumberToObject(root, "status", env->status))
        return MC_ENOMEM;
    if ((fields & F_CODE) && !cJSON_AddNumberToObject(root, "code", env->code ? env->code : 1000))
        return MC_ENOMEM;
    if ((fields & F_SCOPE) && (env->has_scope || env->type == MC_ENV_WS_ACCEPT)) {
        cJSON *scope = encode_scope(&env->scope);
        if (!scope)
            return MC_ENOMEM;
        cJSON_AddItemToObject(root, "scope", scope);
    }
    if (fields & F_GROUPS) {
        cJSON *arr = cJSON_AddArrayToObject(root, "groups");
        if (!arr)
            return MC_ENOMEM;
        for (size_t i = 0; i < env->ngroups && i < MC_ENVELOPE_MAX_GROUPS; i++)
            if (!cJSON_AddItemToArray(arr, cJSON_CreateString(env->groups[i])))
                return MC_ENOMEM;
    }
    return 0;
}

int mc_envelope_encode(const mc_envelope_t *env, char **out, size_t *len)
{
    *out = NULL;
    if ((unsigned)env->type >= TYPE_COUNT)
        return MC_EINVAL;
    if (env->body_len > MC_ENVELOPE_MAX_BYTES)
        return MC_ETOOBIG;
    cJSON *root = cJSON_CreateObject();
    if (!root || !cJSON_AddStringToObject(root, "type", type_names[env->type])) {
        cJSON_Delete(root);
        return MC_ENOMEM;
    }
    int rc = encode_fields(env, root);
    char *text = rc ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (rc)
        return rc;
    if (!text)
        return MC_ENOMEM;
    size_t n = strlen(text);
    if (n > MC_ENVELOPE_MAX_BYTES) {
        cJSON_free(text);
        return MC_ETOOBIG;
    }
    *out = text;
    *len = n;
    return 0;
}

const char *mc_envelope_header(const mc_envelope_t *env, const char *name)
{
    for (size_t i = 0; i < env->nheaders; i++)
        if (strcmp(env->headers[i].name, name) == 0)
            return env->headers[i].value;
    return NULL;
}
