/*
 * interface/http.c: request parsing over llhttp and response heads (see
 * http.h).
 *
 * llhttp hands out pieces of the caller's buffer; every piece is appended to
 * the parser's own buffer and remembered as a span (offset, length), since
 * the buffer may move while it grows. The parser pauses llhttp twice per
 * request: after the head, so that the head's raw size is known exactly (the
 * bytes consumed so far), and after the message, so that pipelined requests
 * come out one at a time.
 */
#include "interface/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"

void ifc_http_limits_default(ifc_http_limits_t *limits)
{
    limits->max_head = IFC_HTTP_MAX_HEAD;
    limits->max_url = IFC_HTTP_MAX_URL;
    limits->max_body = IFC_HTTP_MAX_BODY;
}

static ifc_http_parser_t *parser_of(llhttp_t *h)
{
    return h->data;
}

/* Appends bytes to the buffer. Returns 0 or MC_ENOMEM. The limits bound
 * len, so it fits the 32-bit spans. */
static int append(ifc_http_parser_t *p, const char *at, size_t n)
{
    if (p->cap - p->len < n) {
        size_t cap = p->cap ? p->cap : 1024;
        while (cap - p->len < n)
            cap *= 2;
        char *b = realloc(p->buf, cap);
        if (!b)
            return MC_ENOMEM;
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, at, n);
    p->len += n;
    return 0;
}

static int fail(ifc_http_parser_t *p, int status)
{
    if (!p->status)
        p->status = status;
    return HPE_USER;
}

static int on_message_begin(llhttp_t *h)
{
    ifc_http_parser_t *p = parser_of(h);
    p->len = 0;
    p->nheaders = 0;
    p->url.off = p->url.len = 0;
    p->body.off = p->body.len = 0;
    p->in_field = 0;
    p->in_body = 0;
    p->head_size = p->trailer_bytes = 0;
    return 0;
}

static int on_url(llhttp_t *h, const char *at, size_t n)
{
    ifc_http_parser_t *p = parser_of(h);
    if (n > p->limits.max_url - p->url.len)
        return fail(p, 414);
    if (p->url.len == 0)
        p->url.off = (uint32_t)p->len;
    if (append(p, at, n) != 0)
        return fail(p, 500);
    p->url.len += (uint32_t)n;
    return 0;
}

/* A trailer (a field after a chunked body) counts against the head limit
 * with the head it follows, and is dropped: nothing of the request reads
 * it. n bytes more of it; a field adds its ": " and CRLF. */
static int trailer(ifc_http_parser_t *p, size_t n)
{
    if (n > p->limits.max_head || p->trailer_bytes > p->limits.max_head - n ||
        p->head_size > p->limits.max_head - p->trailer_bytes - n)
        return fail(p, 431);
    p->trailer_bytes += n;
    return 0;
}

/* Room for one more header in both arrays. */
static int grow_fields(ifc_http_parser_t *p)
{
    if (p->nheaders < p->fields_cap)
        return 0;
    size_t cap = p->fields_cap ? 2 * p->fields_cap : 16;
    if (cap > IFC_HTTP_MAX_HEADERS)
        cap = IFC_HTTP_MAX_HEADERS;
    ifc_http__span_t(*f)[2] = realloc(p->fields, cap * sizeof(*f));
    if (!f)
        return MC_ENOMEM;
    p->fields = f;
    ifc_http_header_t *hs = realloc(p->headers, cap * sizeof(*hs));
    if (!hs)
        return MC_ENOMEM;
    p->headers = hs;
    p->fields_cap = cap;
    return 0;
}

static int on_header_field(llhttp_t *h, const char *at, size_t n)
{
    ifc_http_parser_t *p = parser_of(h);
    if (p->in_body) {
        int rc = trailer(p, n + (p->in_field ? 0 : 4));
        p->in_field = 1;
        return rc;
    }
    if (!p->in_field) {
        if (p->nheaders == IFC_HTTP_MAX_HEADERS)
            return fail(p, 431);
        if (grow_fields(p) != 0)
            return fail(p, 500);
        p->fields[p->nheaders][0].off = (uint32_t)p->len;
        p->fields[p->nheaders][0].len = 0;
        p->fields[p->nheaders][1].off = (uint32_t)p->len;
        p->fields[p->nheaders][1].len = 0;
        p->nheaders++;
        p->in_field = 1;
    }
    if (append(p, at, n) != 0)
        return fail(p, 500);
    p->fields[p->nheaders - 1][0].len += (uint32_t)n;
    return 0;
}

static int on_header_field_complete(llhttp_t *h)
{
    ifc_http_parser_t *p = parser_of(h);
    p->in_field = 0;
    if (p->nheaders > 0 && !p->in_body) {
        ifc_http__span_t *s = &p->fields[p->nheaders - 1][0];
        for (uint32_t i = 0; i < s->len; i++) {
            char c = p->buf[s->off + i];
            if (c >= 'A' && c <= 'Z')
                p->buf[s->off + i] = (char)(c - 'A' + 'a');
        }
        p->fields[p->nheaders - 1][1].off = (uint32_t)p->len;
    }
    return 0;
}

static int on_header_value(llhttp_t *h, const char *at, size_t n)
{
    ifc_http_parser_t *p = parser_of(h);
    if (p->in_body)
        return trailer(p, n);
    if (p->nheaders == 0)
        return fail(p, 400);
    if (append(p, at, n) != 0)
        return fail(p, 500);
    p->fields[p->nheaders - 1][1].len += (uint32_t)n;
    return 0;
}

static int on_headers_complete(llhttp_t *h)
{
    ifc_http_parser_t *p = parser_of(h);
    if (h->http_major != 1 || h->http_minor > 1) {
        p->status = 505;
        return -1;
    }
    if ((h->flags & F_CONTENT_LENGTH) && h->content_length > p->limits.max_body) {
        p->status = 413;
        return -1;
    }
    p->in_body = 1;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *h, const char *at, size_t n)
{
    ifc_http_parser_t *p = parser_of(h);
    if (n > p->limits.max_body - p->body.len)
        return fail(p, 413);
    if (p->body.len == 0)
        p->body.off = (uint32_t)p->len;
    if (append(p, at, n) != 0)
        return fail(p, 500);
    p->body.len += (uint32_t)n;
    return 0;
}

static int on_message_complete(llhttp_t *h)
{
    ifc_http_parser_t *p = parser_of(h);
    p->keep_alive = llhttp_should_keep_alive(h);
    p->upgrade = h->upgrade;
    p->ready = 1;
    p->in_body = 0;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void ifc_http_parser_init(ifc_http_parser_t *p, const ifc_http_limits_t *limits)
{
    memset(p, 0, sizeof(*p));
    if (limits)
        p->limits = *limits;
    else
        ifc_http_limits_default(&p->limits);
    llhttp_init(&p->llhttp, HTTP_REQUEST, &settings);
    p->llhttp.data = p;
}

void ifc_http_parser_clear(ifc_http_parser_t *p)
{
    free(p->buf);
    p->buf = NULL;
    p->len = p->cap = 0;
    free(p->fields);
    free(p->headers);
    p->fields = NULL;
    p->headers = NULL;
    p->nheaders = p->fields_cap = 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void build_request(ifc_http_parser_t *p)
{
    ifc_http_request_t *r = &p->req;
    static const char empty[] = "";
    const char *base = p->buf ? p->buf : empty;
    r->method = llhttp_method_name((llhttp_method_t)p->llhttp.method);
    r->target = base + p->url.off;
    r->target_len = p->url.len;
    const char *q = memchr(r->target, '?', r->target_len);
    r->path = r->target;
    r->path_len = q ? (size_t)(q - r->target) : r->target_len;
    r->query = q ? q + 1 : empty;
    r->query_len = q ? r->target_len - r->path_len - 1 : 0;
    r->version_major = p->llhttp.http_major;
    r->version_minor = p->llhttp.http_minor;
    r->headers = p->headers;
    r->nheaders = p->nheaders;
    for (size_t i = 0; i < p->nheaders; i++) {
        const char *v = base + p->fields[i][1].off;
        size_t vl = p->fields[i][1].len;
        while (vl > 0 && is_blank(v[0])) {
            v++;
            vl--;
        }
        while (vl > 0 && is_blank(v[vl - 1]))
            vl--;
        r->headers[i].name = base + p->fields[i][0].off;
        r->headers[i].name_len = p->fields[i][0].len;
        r->headers[i].value = v;
        r->headers[i].value_len = vl;
    }
    r->body = base + p->body.off;
    r->body_len = p->body.len;
    r->keep_alive = p->keep_alive;
    r->upgrade = p->upgrade;
}

static int error_of(ifc_http_parser_t *p, llhttp_errno_t err)
{
    if (!p->status) {
        if (err == HPE_PAUSED_H2_UPGRADE || err == HPE_INVALID_VERSION)
            p->status = 505;
        else
            p->status = 400;
    }
    ifc_http_parser_clear(p);
    if (p->status == 500)
        return MC_ENOMEM;
    if (p->status == 413 || p->status == 414 || p->status == 431)
        return MC_ETOOBIG;
    return MC_EPROTO;
}

int ifc_http_feed(ifc_http_parser_t *p, const void *data, size_t len, size_t *used)
{
    const char *in = data;
    size_t off = 0;
    *used = 0;
    if (p->status)
        return p->status == 413 || p->status == 414 || p->status == 431 ? MC_ETOOBIG : MC_EPROTO;
    if (p->ready)
        return IFC_HTTP_REQUEST;
    int settle = 0;
    while (off < len || settle) {
        size_t n = len - off;
        int in_head = !p->in_body;
        settle = 0;
        if (in_head) {
            if (p->head_bytes >= p->limits.max_head) {
                p->status = 431;
                return error_of(p, HPE_USER);
            }
            if (n > p->limits.max_head - p->head_bytes)
                n = p->limits.max_head - p->head_bytes;
        }
        llhttp_errno_t err = llhttp_execute(&p->llhttp, in + off, n);
        size_t consumed = n;
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            consumed = (size_t)(llhttp_get_error_pos(&p->llhttp) - (in + off));
        } else if (err != HPE_OK) {
            *used = off;
            return error_of(p, err);
        }
        off += consumed;
        if (in_head)
            p->head_bytes += consumed;
        if (p->ready) {
            p->head_bytes = 0;
            build_request(p);
            *used = off;
            return IFC_HTTP_REQUEST;
        }
        if (err == HPE_PAUSED) {
            /* Paused after the head: what was consumed was all head. */
            if (p->in_body) {
                p->head_size = p->head_bytes;
                p->head_bytes = 0;
            }
            llhttp_resume(&p->llhttp);
            /* A request without a body completes without another byte:
             * run llhttp once more even when the input is used up. */
            settle = 1;
        } else if (err == HPE_PAUSED_UPGRADE) {
            /* An upgrade the caller declined: go on with HTTP. */
            llhttp_resume_after_upgrade(&p->llhttp);
        }
    }
    *used = off;
    return IFC_HTTP_NEED_MORE;
}

const ifc_http_request_t *ifc_http_request(const ifc_http_parser_t *p)
{
    return p->ready ? &p->req : NULL;
}

void ifc_http_next(ifc_http_parser_t *p)
{
    if (!p->ready)
        return;
    p->ready = 0;
    memset(&p->req, 0, sizeof(p->req));
    ifc_http_parser_clear(p);
    llhttp_errno_t err = llhttp_get_errno(&p->llhttp);
    if (err == HPE_PAUSED)
        llhttp_resume(&p->llhttp);
    else if (err == HPE_PAUSED_UPGRADE)
        llhttp_resume_after_upgrade(&p->llhttp);
}

int ifc_http_in_progress(const ifc_http_parser_t *p)
{
    return !p->ready && !p->status && (p->head_bytes > 0 || p->in_body);
}

int ifc_http_status(const ifc_http_parser_t *p)
{
    return p->status;
}

static int name_is(const ifc_http_header_t *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && memcmp(h->name, name, n) == 0;
}

const char *ifc_http_header(const ifc_http_request_t *req, const char *name, size_t *len)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (name_is(&req->headers[i], name)) {
            *len = req->headers[i].value_len;
            return req->headers[i].value;
        }
    }
    *len = 0;
    return NULL;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int ifc_http_header_has_token(const ifc_http_request_t *req, const char *name, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!name_is(&req->headers[i], name))
            continue;
        const char *v = req->headers[i].value;
        size_t vl = req->headers[i].value_len, pos = 0;
        while (pos < vl) {
            while (pos < vl && (is_blank(v[pos]) || v[pos] == ','))
                pos++;
            size_t start = pos;
            while (pos < vl && v[pos] != ',')
                pos++;
            size_t end = pos;
            while (end > start && is_blank(v[end - 1]))
                end--;
            if (end - start == tl) {
                size_t k = 0;
                while (k < tl &&
                       lower((unsigned char)v[start + k]) == lower((unsigned char)token[k]))
                    k++;
                if (k == tl)
                    return 1;
            }
        }
    }
    return 0;
}

const char *ifc_http_reason(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

void ifc_http_date(long long unix_seconds, char out[30])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* An output buffer that refuses to overflow. */
typedef struct out {
    char *buf;
    size_t size, len;
    int overflow;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->overflow || n > o->size - o->len) {
        o->overflow = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

static int clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return 0;
    return 1;
}

int ifc_http_response_head(char *buf, size_t size, int status, const ifc_http_header_t *headers,
                           size_t nheaders, long long content_length, int keep_alive,
                           size_t *out_len)
{
    out_t o = {buf, size, 0, 0};
    char line[64];
    if (status < 100 || status > 999)
        return MC_EINVAL;
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    puts_(&o, line);
    puts_(&o, ifc_http_reason(status));
    puts_(&o, "\r\n");
    for (size_t i = 0; i < nheaders; i++) {
        const ifc_http_header_t *h = &headers[i];
        if (h->name_len == 0 || !clean(h->name, h->name_len) || !clean(h->value, h->value_len) ||
            memchr(h->name, ':', h->name_len))
            return MC_EINVAL;
        put(&o, h->name, h->name_len);
        puts_(&o, ": ");
        put(&o, h->value, h->value_len);
        puts_(&o, "\r\n");
    }
    if (content_length >= 0) {
        snprintf(line, sizeof(line), "content-length: %lld\r\n", content_length);
        puts_(&o, line);
    }
    if (!keep_alive)
        puts_(&o, "connection: close\r\n");
    puts_(&o, "\r\n");
    if (o.overflow)
        return MC_ETOOBIG;
    *out_len = o.len;
    return 0;
}

int ifc_http_simple_response(char *buf, size_t size, int status, int keep_alive, size_t *out_len)
{
    const char *reason = ifc_http_reason(status);
    size_t rl = strlen(reason);
    ifc_http_header_t h[2] = {
        {"content-type", 12, "text/plain; charset=utf-8", 25},
        {"cache-control", 13, "no-store", 8},
    };
    size_t head;
    int rc = ifc_http_response_head(buf, size, status, h, 2, (long long)rl + 1, keep_alive, &head);
    if (rc != 0)
        return rc;
    if (size - head < rl + 1)
        return MC_ETOOBIG;
    memcpy(buf + head, reason, rl);
    buf[head + rl] = '\n';
    *out_len = head + rl + 1;
    return 0;
}
