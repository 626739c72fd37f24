/*
 * common/envelope.c: the envelope codec of common/envelope.h. It reads and
 * writes the JSON itself (writing through common/json_out.h), because a
 * body is bytes that may hold a NUL (\u0000) and a general JSON library
 * hands strings back NUL-terminated without their length. Decoding makes
 * one allocation, the arena that every decoded string of the envelope
 * lives in.
 */
#include "common/envelope.h"
#include "common/error.h"
#include "common/json_out.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32  /* nesting of a value an envelope may carry and ignore */
#define NUMBER_MAX 63 /* characters of a number */

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
    F_SCHEME = 1 << 14,
    F_REASON = 1 << 15,
    F_ID = 1 << 16,
    F_DONE = 1 << 17,
};

static const unsigned type_fields[] = {
    [MC_ENV_HTTP_REQUEST] =
        F_REPLY | F_METHOD | F_PATH | F_QUERY | F_CLIENT | F_HEADERS | F_BODY | F_SCHEME,
    [MC_ENV_HTTP_RESPONSE] = F_STATUS | F_HEADERS | F_BODY,
    [MC_ENV_WS_CONNECT] = F_REPLY | F_PATH | F_QUERY | F_CLIENT | F_HEADERS | F_SCHEME,
    [MC_ENV_WS_ACCEPT] = F_SCOPE,
    [MC_ENV_WS_RECEIVE] = F_REPLY | F_SCOPE | F_GROUPS | F_TEXT | F_ID,
    [MC_ENV_WS_SEND] = F_TEXT | F_EXCEPT | F_OWN | F_DONE,
    [MC_ENV_WS_CLOSE] = F_CODE | F_REASON | F_DONE,
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

/* A string field, with its key as an encoder writes it after the fields
 * before it. */
#define STRING_FIELD(f, name, member)                                                              \
    {                                                                                              \
        f, ",\"" name "\":", sizeof(name) + 3, offsetof(mc_envelope_t, member)                     \
    }
static const struct {
    unsigned field;
    const char *key; /* ,"name": */
    size_t key_len;
    size_t offset;
} string_fields[] = {
    STRING_FIELD(F_REPLY, "reply", reply),    STRING_FIELD(F_METHOD, "method", method),
    STRING_FIELD(F_PATH, "path", path),       STRING_FIELD(F_QUERY, "query", query),
    STRING_FIELD(F_CLIENT, "client", client), STRING_FIELD(F_EXCEPT, "except", except),
    STRING_FIELD(F_OWN, "own", own),          STRING_FIELD(F_SCHEME, "scheme", scheme),
    STRING_FIELD(F_REASON, "reason", reason), STRING_FIELD(F_ID, "id", id),
};
#define STRING_FIELD_COUNT (sizeof(string_fields) / sizeof(string_fields[0]))

/* The keys a decoder looks for: "type", the string fields in the order
 * above, then the others. */
enum key {
    K_TYPE,
    K_STRINGS, /* K_STRINGS + i is string_fields[i] */
    K_HEADERS = K_STRINGS + STRING_FIELD_COUNT,
    K_BODY,
    K_TEXT,
    K_STATUS,
    K_CODE,
    K_SCOPE,
    K_GROUPS,
    K_DONE,
    KEY_COUNT
};
/* A key a decoder looks for, measured at compile time. */
typedef struct key_name {
    const char *s;
    size_t len;
} key_name_t;
#define K(literal)                                                                                 \
    {                                                                                              \
        literal, sizeof(literal) - 1                                                               \
    }
static const key_name_t key_names[KEY_COUNT] = {
    [K_TYPE] = K("type"),          [K_STRINGS] = K("reply"),     [K_STRINGS + 1] = K("method"),
    [K_STRINGS + 2] = K("path"),   [K_STRINGS + 3] = K("query"), [K_STRINGS + 4] = K("client"),
    [K_STRINGS + 5] = K("except"), [K_STRINGS + 6] = K("own"),   [K_STRINGS + 7] = K("scheme"),
    [K_STRINGS + 8] = K("reason"), [K_STRINGS + 9] = K("id"),    [K_HEADERS] = K("headers"),
    [K_BODY] = K("body"),          [K_TEXT] = K("text"),         [K_STATUS] = K("status"),
    [K_CODE] = K("code"),          [K_SCOPE] = K("scope"),       [K_GROUPS] = K("groups"),
    [K_DONE] = K("done"),
};

enum scope_key { S_USER_ID, S_USERNAME, S_IS_STAFF, SCOPE_KEY_COUNT };
static const key_name_t scope_names[SCOPE_KEY_COUNT] = {K("user_id"), K("username"), K("is_staff")};
#undef K

const char *mc_envelope_type_name(mc_envelope_type_t type)
{
    return (unsigned)type < TYPE_COUNT ? type_names[type] : "unknown";
}

static const char **string_slot(mc_envelope_t *env, size_t i)
{
    return (const char **)((char *)env + string_fields[i].offset);
}

/* ---- Reading JSON (RFC 8259) ------------------------------------------------ */

/* A cursor over the input and the arena that decoded strings go to. Each
 * string decodes to fewer bytes than its token (quotes included) takes, and
 * each token is decoded at most once, so an arena of the input's length
 * plus one never overflows. */
typedef struct reader {
    const char *p, *end;
    char *arena;
    size_t used;
} reader_t;

static int peek(reader_t *r)
{
    if (r->p < r->end && (unsigned char)*r->p > ' ')
        return (unsigned char)*r->p; /* the usual case: no white space */
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
    return r->p < r->end ? (unsigned char)*r->p : -1;
}

static int eat(reader_t *r, char c)
{
    if (peek(r) != (unsigned char)c)
        return 0;
    r->p++;
    return 1;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

/* The code point of a \u escape whose "u" r->p has passed, with the low
 * half of a surrogate pair. */
static int read_escape_u(reader_t *r, unsigned *cp)
{
    unsigned hi, lo;
    if (hex4(r->p, r->end, &hi))
        return MC_EINVAL;
    r->p += 4;
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        return MC_EINVAL;
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = hi;
        return 0;
    }
    if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' || hex4(r->p + 2, r->end, &lo) ||
        lo < 0xDC00 || lo > 0xDFFF)
        return MC_EINVAL;
    r->p += 6;
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Reads the string at the cursor. With out, its bytes and a NUL go to the
 * arena: *out and *len; without, it is only checked. Plain bytes go a word
 * at a time where they can: a decoded string never outgrows its token, so
 * a word written goes where the arena has room for the word read. */
static int read_string(reader_t *r, const char **out, size_t *len)
{
    if (!eat(r, '"'))
        return MC_EINVAL;
    const char *p = r->p, *end = r->end;
    char *o = out ? r->arena + r->used : NULL;
    size_t n = 0;
    for (;;) {
        uint64_t x;
        if (end - p >= 8 && (memcpy(&x, p, 8), mc_json_word_plain(x))) {
            if (o)
                memcpy(o + n, &x, 8);
            n += 8;
            p += 8;
            continue;
        }
        while (p < end && mc_json_plain[(unsigned char)*p]) {
            if (o)
                o[n] = *p;
            n++;
            p++;
        }
        if (p == end || (unsigned char)*p < 0x20)
            return MC_EINVAL; /* cut short, or a raw control character */
        if (*p++ == '"')
            break;
        if (p == end)
            return MC_EINVAL;
        char c = *p++, buf[4];
        size_t k = 1;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            buf[0] = c;
            break;
        case 'b':
            buf[0] = '\b';
            break;
        case 'f':
            buf[0] = '\f';
            break;
        case 'n':
            buf[0] = '\n';
            break;
        case 'r':
            buf[0] = '\r';
            break;
        case 't':
            buf[0] = '\t';
            break;
        case 'u': {
            unsigned cp;
            r->p = p;
            if (read_escape_u(r, &cp))
                return MC_EINVAL;
            p = r->p;
            k = put_utf8(buf, cp);
            break;
        }
        default:
            return MC_EINVAL;
        }
        if (o)
            for (size_t i = 0; i < k; i++)
                o[n + i] = buf[i];
        n += k;
    }
    r->p = p;
    if (o) {
        o[n] = '\0';
        r->used += n + 1;
        *out = o;
        *len = n;
    }
    return 0;
}

/* Reads the number at the cursor (JSON's grammar, at most NUMBER_MAX
 * characters) into *out, when out is not NULL. */
static int read_number(reader_t *r, double *out)
{
    peek(r);
    const char *s = r->p, *p = s, *e = r->end;
#define DIGITS(p) ((p) < e && *(p) >= '0' && *(p) <= '9')
    if (p < e && *p == '-')
        p++;
    if (!DIGITS(p))
        return MC_EINVAL;
    if (*p == '0')
        p++;
    else
        while (DIGITS(p))
            p++;
    if (p < e && *p == '.') {
        p++;
        if (!DIGITS(p))
            return MC_EINVAL;
        while (DIGITS(p))
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (!DIGITS(p))
            return MC_EINVAL;
        while (DIGITS(p))
            p++;
    }
#undef DIGITS
    if (p - s > NUMBER_MAX)
        return MC_EINVAL;
    r->p = p;
    if (!out)
        return 0;
    /* A whole number of up to 15 digits is exact as it is summed (below
     * 2^53), as strtod would give it; the others go to strtod. */
    size_t digits = (size_t)(p - s) - (*s == '-');
    if (digits <= 15 && !memchr(s, '.', (size_t)(p - s)) && !memchr(s, 'e', (size_t)(p - s)) &&
        !memchr(s, 'E', (size_t)(p - s))) {
        int64_t v = 0;
        for (const char *d = p - digits; d < p; d++)
            v = v * 10 + (*d - '0');
        *out = *s == '-' ? -(double)v : (double)v;
        return 0;
    }
    char num[NUMBER_MAX + 1];
    memcpy(num, s, (size_t)(p - s));
    num[p - s] = '\0';
    *out = strtod(num, NULL);
    return 0;
}

static int read_literal(reader_t *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return MC_EINVAL;
    r->p += n;
    return 0;
}

/* Reads true or false into *out. */
static int read_bool(reader_t *r, int *out)
{
    int c = peek(r);
    *out = c == 't';
    return read_literal(r, c == 't' ? "true" : "false");
}

static int skip_value(reader_t *r, int depth);

/* What scan_object found of a key: where its first value starts, and when
 * that value is a string, the string (decoded once, there). */
typedef struct found {
    const char *at;
    const char *str;
    size_t len;
} found_t;

/* Walks the object at the cursor, checking every value; of each of
 * names[0..n) it finds, found[] gets the first value. */
static int scan_object(reader_t *r, const key_name_t *names, size_t n, found_t *found, int depth)
{
    if (!eat(r, '{'))
        return MC_EINVAL;
    if (eat(r, '}'))
        return 0;
    do {
        size_t mark = r->used, klen;
        const char *key;
        if (read_string(r, &key, &klen) || !eat(r, ':'))
            return MC_EINVAL;
        r->used = mark; /* the key is compared now and never kept */
        found_t *f = NULL;
        for (size_t i = 0; i < n && !f; i++)
            if (names[i].len == klen && names[i].s[0] == key[0] &&
                memcmp(names[i].s, key, klen) == 0)
                f = &found[i];
        if (f && !f->at && peek(r) == '"') {
            f->at = r->p;
            if (read_string(r, &f->str, &f->len))
                return MC_EINVAL;
            continue;
        }
        if (f && !f->at)
            f->at = r->p;
        if (skip_value(r, depth + 1))
            return MC_EINVAL;
    } while (eat(r, ','));
    return eat(r, '}') ? 0 : MC_EINVAL;
}

static int skip_value(reader_t *r, int depth)
{
    if (depth > MAX_DEPTH)
        return MC_EINVAL;
    switch (peek(r)) {
    case '"':
        return read_string(r, NULL, NULL);
    case '{':
        return scan_object(r, NULL, 0, NULL, depth);
    case '[':
        r->p++;
        if (eat(r, ']'))
            return 0;
        do {
            if (skip_value(r, depth + 1))
                return MC_EINVAL;
        } while (eat(r, ','));
        return eat(r, ']') ? 0 : MC_EINVAL;
    case 't':
        return read_literal(r, "true");
    case 'f':
        return read_literal(r, "false");
    case 'n':
        return read_literal(r, "null");
    default:
        return read_number(r, NULL);
    }
}

/* A string field of an envelope: a C string, so without a NUL inside. */
static int is_text(const char *s, size_t len)
{
    return s && !memchr(s, '\0', len);
}

static int read_text(reader_t *r, const char **out)
{
    size_t len;
    return read_string(r, out, &len) || !is_text(*out, len) ? MC_EINVAL : 0;
}

/* A whole number in [min, max] (1e3 is 1000, 1.5 is not whole). */
static int read_int(reader_t *r, double min, double max, double *out)
{
    double v;
    if (read_number(r, &v) || v < min || v > max || v != (double)(long long)v)
        return MC_EINVAL;
    *out = v;
    return 0;
}

static int read_scope(reader_t *r, mc_scope_t *scope)
{
    found_t f[SCOPE_KEY_COUNT] = {0};
    if (scan_object(r, scope_names, SCOPE_KEY_COUNT, f, 1))
        return MC_EINVAL;
    if (!f[S_USER_ID].at || !is_text(f[S_USERNAME].str, f[S_USERNAME].len) || !f[S_IS_STAFF].at)
        return MC_EINVAL;
    double id;
    int staff;
    /* 2^53: the largest id a JSON number carries exactly. */
    r->p = f[S_USER_ID].at;
    if (read_int(r, 0, 9007199254740992.0, &id))
        return MC_EINVAL;
    r->p = f[S_IS_STAFF].at;
    if ((*r->p != 't' && *r->p != 'f') || read_bool(r, &staff))
        return MC_EINVAL;
    if (f[S_USERNAME].len > MC_USERNAME_MAX)
        return MC_ETOOBIG;
    scope->user_id = (int64_t)id;
    memcpy(scope->username, f[S_USERNAME].str, f[S_USERNAME].len + 1);
    scope->is_staff = staff;
    return 0;
}

static int read_headers(reader_t *r, mc_envelope_t *env)
{
    if (!eat(r, '['))
        return MC_EINVAL;
    if (eat(r, ']'))
        return 0;
    do {
        if (env->nheaders == MC_ENVELOPE_MAX_HEADERS)
            return MC_ETOOBIG;
        mc_header_t *h = &env->headers[env->nheaders++];
        if (!eat(r, '[') || read_text(r, &h->name) || !eat(r, ',') || read_text(r, &h->value) ||
            !eat(r, ']'))
            return MC_EINVAL;
    } while (eat(r, ','));
    return eat(r, ']') ? 0 : MC_EINVAL;
}

static int read_groups(reader_t *r, mc_envelope_t *env)
{
    if (!eat(r, '['))
        return MC_EINVAL;
    if (eat(r, ']'))
        return 0;
    do {
        if (env->ngroups == MC_ENVELOPE_MAX_GROUPS)
            return MC_ETOOBIG;
        if (read_text(r, &env->groups[env->ngroups++]))
            return MC_EINVAL;
    } while (eat(r, ','));
    return eat(r, ']') ? 0 : MC_EINVAL;
}

/* Reads the fields of env->type from the values scan_object found. */
static int read_fields(reader_t *r, const found_t *f, mc_envelope_t *env)
{
    unsigned fields = type_fields[env->type], required = type_required[env->type];
    int rc;

    for (size_t i = 0; i < STRING_FIELD_COUNT; i++) {
        if (!(fields & string_fields[i].field))
            continue;
        const found_t *s = &f[K_STRINGS + i];
        if (s->at ? !is_text(s->str, s->len) : (required & string_fields[i].field) != 0)
            return MC_EINVAL;
        *string_slot(env, i) = s->at ? s->str : "";
    }
    if (fields & (F_BODY | F_TEXT)) {
        const found_t *s = &f[(fields & F_BODY) ? K_BODY : K_TEXT];
        if (s->at ? !s->str : (required & (F_BODY | F_TEXT)) != 0)
            return MC_EINVAL;
        env->body = s->at ? s->str : "";
        env->body_len = s->at ? s->len : 0;
    }
    if ((fields & F_HEADERS) && (r->p = f[K_HEADERS].at) && (rc = read_headers(r, env)))
        return rc;
    if ((fields & F_GROUPS) && (r->p = f[K_GROUPS].at) && (rc = read_groups(r, env)))
        return rc;
    double v = 0;
    if (fields & F_STATUS) {
        if ((r->p = f[K_STATUS].at) ? read_int(r, 100, 599, &v) : (required & F_STATUS) != 0)
            return MC_EINVAL;
        env->status = (int)v;
    }
    if (fields & F_CODE) {
        v = 1000;
        if ((r->p = f[K_CODE].at) && read_int(r, 1000, 4999, &v))
            return MC_EINVAL;
        env->code = (int)v;
    }
    if ((fields & F_DONE) && (r->p = f[K_DONE].at) &&
        ((*r->p != 't' && *r->p != 'f') || read_bool(r, &env->done)))
        return MC_EINVAL;
    if (fields & F_SCOPE) {
        if ((r->p = f[K_SCOPE].at)) {
            if ((rc = read_scope(r, &env->scope)))
                return rc;
            env->has_scope = 1;
        } else if (required & F_SCOPE) {
            return MC_EINVAL;
        }
    }
    return 0;
}

static int decode(reader_t *r, mc_envelope_t *env)
{
    found_t f[KEY_COUNT] = {0};
    if (scan_object(r, key_names, KEY_COUNT, f, 0) || peek(r) != -1 ||
        !is_text(f[K_TYPE].str, f[K_TYPE].len))
        return MC_EINVAL;
    for (size_t t = 0; t < TYPE_COUNT; t++) {
        if (strcmp(f[K_TYPE].str, type_names[t]) == 0) {
            env->type = (mc_envelope_type_t)t;
            return read_fields(r, f, env);
        }
    }
    return MC_EINVAL;
}

int mc_envelope_decode(mc_envelope_t *env, const char *data, size_t len)
{
    memset(env, 0, sizeof(*env));
    if (len > MC_ENVELOPE_MAX_BYTES)
        return MC_ETOOBIG;
    reader_t r = {.p = data, .end = data + len, .arena = malloc(len + 1)};
    if (!r.arena)
        return MC_ENOMEM;
    env->arena = r.arena;
    int rc = decode(&r, env);
    if (rc)
        mc_envelope_clear(env);
    return rc;
}

void mc_envelope_clear(mc_envelope_t *env)
{
    free(env->arena);
    memset(env, 0, sizeof(*env));
}

/* ---- Writing JSON ------------------------------------------------------------- */

size_t mc_envelope_string_len(const char *s, size_t n)
{
    return mc_json_string_len(s, n);
}

static void put_text(mc_json_out_t *w, const char *s)
{
    mc_json_put_string(w, s ? s : "", s ? strlen(s) : 0);
}

static void encode_fields(mc_json_out_t *w, const mc_envelope_t *env)
{
    unsigned fields = type_fields[env->type];
    for (size_t i = 0; i < STRING_FIELD_COUNT; i++) {
        if (!(fields & string_fields[i].field))
            continue;
        const char *v = *string_slot((mc_envelope_t *)env, i);
        /* An optional field left empty is left out: decoding defaults it. */
        if ((!v || !*v) && !(type_required[env->type] & string_fields[i].field))
            continue;
        mc_json_put(w, string_fields[i].key, string_fields[i].key_len);
        put_text(w, v);
    }
    if (fields & F_HEADERS) {
        MC_JSON_PUT(w, ",\"headers\":[");
        for (size_t i = 0; i < env->nheaders && i < MC_ENVELOPE_MAX_HEADERS; i++) {
            if (i)
                MC_JSON_PUT(w, ",");
            MC_JSON_PUT(w, "[");
            put_text(w, env->headers[i].name);
            MC_JSON_PUT(w, ",");
            put_text(w, env->headers[i].value);
            MC_JSON_PUT(w, "]");
        }
        MC_JSON_PUT(w, "]");
    }
    if (fields & (F_BODY | F_TEXT)) {
        if (fields & F_BODY)
            MC_JSON_PUT(w, ",\"body\":");
        else
            MC_JSON_PUT(w, ",\"text\":");
        mc_json_put_string(w, env->body ? env->body : "", env->body ? env->body_len : 0);
    }
    if (fields & F_STATUS) {
        MC_JSON_PUT(w, ",\"status\":");
        mc_json_put_int(w, env->status);
    }
    if (fields & F_CODE) {
        MC_JSON_PUT(w, ",\"code\":");
        mc_json_put_int(w, env->code ? env->code : 1000);
    }
    if ((fields & F_SCOPE) && (env->has_scope || env->type == MC_ENV_WS_ACCEPT)) {
        MC_JSON_PUT(w, ",\"scope\":{\"user_id\":");
        mc_json_put_int(w, env->scope.user_id);
        MC_JSON_PUT(w, ",\"username\":");
        put_text(w, env->scope.username);
        if (env->scope.is_staff)
            MC_JSON_PUT(w, ",\"is_staff\":true}");
        else
            MC_JSON_PUT(w, ",\"is_staff\":false}");
    }
    if ((fields & F_DONE) && env->done) {
        MC_JSON_PUT(w, ",\"done\":true");
    }
    if (fields & F_GROUPS) {
        MC_JSON_PUT(w, ",\"groups\":[");
        for (size_t i = 0; i < env->ngroups && i < MC_ENVELOPE_MAX_GROUPS; i++) {
            if (i)
                MC_JSON_PUT(w, ",");
            put_text(w, env->groups[i]);
        }
        MC_JSON_PUT(w, "]");
    }
}

int mc_envelope_encode(const mc_envelope_t *env, char **out, size_t *len)
{
    *out = NULL;
    if ((unsigned)env->type >= TYPE_COUNT)
        return MC_EINVAL;
    if (env->body_len > MC_ENVELOPE_MAX_BYTES)
        return MC_ETOOBIG;
    mc_json_out_t w = {.limit = MC_ENVELOPE_MAX_BYTES};
    if (mc_json_reserve(&w, 128 + env->body_len) == 0) {
        MC_JSON_PUT(&w, "{\"type\":\"");
        mc_json_put(&w, type_names[env->type], strlen(type_names[env->type]));
        MC_JSON_PUT(&w, "\"");
        encode_fields(&w, env);
        MC_JSON_PUT(&w, "}");
    }
    return mc_json_finish(&w, out, len);
}

const char *mc_envelope_header(const mc_envelope_t *env, const char *name)
{
    for (size_t i = 0; i < env->nheaders; i++)
        if (strcmp(env->headers[i].name, name) == 0)
            return env->headers[i].value;
    return NULL;
}
