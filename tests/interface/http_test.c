/* Tests of interface/http.c: every request fed whole, split at every byte and
 * one byte at a time, ending on a guard page; limits with their status. */
#include "interface/http.h"
#include "common/error.h"
#include "tests/support/guard.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

typedef struct run {
    ifc_http_parser_t p;
    char *log;
    size_t log_size;
    const char *expect;
    int stopped;
    int brief; /* log only method, target and body length */
} run_t;

static void logf_(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(run_t *r, const char *fmt, ...)
{
    size_t n = strlen(r->log);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->log + n, r->log_size - n, fmt, ap);
    va_end(ap);
}

static void run_reset(void *ctx)
{
    run_t *r = ctx;
    ifc_http_parser_clear(&r->p);
    ifc_http_parser_init(&r->p, NULL);
    r->log[0] = '\0';
    r->stopped = 0;
}

static void log_request(run_t *r, const ifc_http_request_t *q)
{
    logf_(r, "%s %.*s [%.*s|%.*s] %d.%d ka=%d up=%d", q->method, (int)q->target_len, q->target,
          (int)q->path_len, q->path, (int)q->query_len, q->query, q->version_major,
          q->version_minor, q->keep_alive, q->upgrade);
    if (!r->brief) {
        for (size_t i = 0; i < q->nheaders; i++)
            logf_(r, " %.*s=%.*s", (int)q->headers[i].name_len, q->headers[i].name,
                  (int)q->headers[i].value_len, q->headers[i].value);
        logf_(r, " body=%.*s", (int)q->body_len, q->body);
    } else {
        logf_(r, " body#%zu", q->body_len);
    }
    logf_(r, "\n");
}

static void run_feed(void *ctx, const uint8_t *data, size_t len)
{
    run_t *r = ctx;
    size_t off = 0;
    if (r->stopped)
        return;
    for (;;) {
        size_t used = 99999;
        int rc = ifc_http_feed(&r->p, data + off, len - off, &used);
        assert_true(used <= len - off);
        off += used;
        if (rc == IFC_HTTP_REQUEST) {
            const ifc_http_request_t *q = ifc_http_request(&r->p);
            assert_non_null(q);
            log_request(r, q);
            ifc_http_next(&r->p);
            assert_null(ifc_http_request(&r->p));
            continue;
        }
        if (rc == IFC_HTTP_NEED_MORE) {
            assert_int_equal(off, len);
            return;
        }
        int status = ifc_http_status(&r->p);
        assert_int_equal(rc, status == 400 || status == 505 ? MC_EPROTO : MC_ETOOBIG);
        logf_(r, "status %d\n", status);
        r->stopped = 1;
        return;
    }
}

static void run_check(void *ctx)
{
    run_t *r = ctx;
    assert_string_equal(r->log, r->expect);
}

static const guard_driver_t DRIVER = {run_reset, run_feed, run_check};

static void expect_run(const char *in, size_t len, const char *expect, int brief, int all_ways)
{
    run_t r;
    memset(&r, 0, sizeof(r));
    r.log_size = 65536;
    r.log = calloc(1, r.log_size);
    r.expect = expect;
    r.brief = brief;
    ifc_http_parser_init(&r.p, NULL);
    if (all_ways) {
        guard_feed_all_ways(&DRIVER, &r, in, len);
    } else {
        size_t steps[] = {len, 4096, 7};
        for (size_t s = 0; s < 3; s++) {
            run_reset(&r);
            for (size_t off = 0; off < len; off += steps[s])
                guard_feed_piece(&DRIVER, &r, (const uint8_t *)in + off,
                                 len - off < steps[s] ? len - off : steps[s]);
            run_check(&r);
        }
    }
    ifc_http_parser_clear(&r.p);
    free(r.log);
}

#define EXPECT(in, out) expect_run(in, sizeof(in) - 1, out, 0, 1)

static void a_get_request_is_parsed(void **state)
{
    (void)state;
    EXPECT("GET /chat/x?a=1&b=2 HTTP/1.1\r\nHost: example.com\r\nX-Mixed-Case:  padded value \t\r\n"
           "Empty:\r\n\r\n",
           "GET /chat/x?a=1&b=2 [/chat/x|a=1&b=2] 1.1 ka=1 up=0 host=example.com "
           "x-mixed-case=padded value empty= body=\n");
    EXPECT("GET / HTTP/1.0\r\n\r\n", "GET / [/|] 1.0 ka=0 up=0 body=\n");
    EXPECT("HEAD /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
           "HEAD /a [/a|] 1.0 ka=1 up=0 connection=keep-alive body=\n");
    EXPECT("GET /a HTTP/1.1\r\nConnection: close\r\n\r\n",
           "GET /a [/a|] 1.1 ka=0 up=0 connection=close body=\n");
}

static void bodies_are_read_by_length_and_chunked(void **state)
{
    (void)state;
    EXPECT("POST /login HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world",
           "POST /login [/login|] 1.1 ka=1 up=0 content-length=11 body=hello world\n");
    EXPECT("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n"
           "0\r\n\r\n",
           "POST /c [/c|] 1.1 ka=1 up=0 transfer-encoding=chunked body=hello world\n");
}

static void pipelined_requests_come_out_in_order(void **state)
{
    (void)state;
    EXPECT("GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET /3 "
           "HTTP/1.1\r\n\r\n",
           "GET /1 [/1|] 1.1 ka=1 up=0 body=\n"
           "POST /2 [/2|] 1.1 ka=1 up=0 content-length=2 body=ab\n"
           "GET /3 [/3|] 1.1 ka=1 up=0 body=\n");
}

static void upgrade_requests_are_flagged(void **state)
{
    (void)state;
    EXPECT("GET /chat/stream/ HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
           "GET /chat/stream/ [/chat/stream/|] 1.1 ka=1 up=1 upgrade=websocket "
           "connection=Upgrade body=\n");
}

static void malformed_requests_are_400(void **state)
{
    (void)state;
    EXPECT("GARBAGE\r\n\r\n", "status 400\n");
    EXPECT("GET / HTTP/1.1\r\nBad Header\r\n\r\n", "status 400\n");
    EXPECT("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "status 400\n");
    EXPECT("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "status 400\n");
    EXPECT("GET / HTTP/1.1\r\nHost: a\nb\r\n\r\n", "status 400\n");
    EXPECT("GET / HTTP/1.1\r\n\r\nBROKEN\r\n\r\n", "GET / [/|] 1.1 ka=1 up=0 body=\nstatus 400\n");
}

static void unsupported_versions_are_505(void **state)
{
    (void)state;
    EXPECT("GET / HTTP/2.0\r\n\r\n", "status 505\n");
    EXPECT("GET / HTTP/1.2\r\n\r\n", "status 505\n");
    EXPECT("GET / HTTP/0.9\r\n\r\n", "status 505\n");
}

static char *repeat(const char *head, char c, size_t n, const char *tail)
{
    size_t hl = strlen(head), tl = strlen(tail);
    char *s = malloc(hl + n + tl + 1);
    memcpy(s, head, hl);
    memset(s + hl, c, n);
    memcpy(s + hl + n, tail, tl + 1);
    return s;
}

static void oversized_parts_get_their_status(void **state)
{
    (void)state;
    /* A target of 8 KiB passes, one byte more is 414. */
    char *s = repeat("GET /", 'u', IFC_HTTP_MAX_URL, " HTTP/1.1\r\n\r\n");
    expect_run(s, strlen(s), "status 414\n", 1, 0);
    free(s);
    size_t target = IFC_HTTP_MAX_URL;
    s = repeat("GET /", 'u', target - 1, " HTTP/1.1\r\n\r\n");
    char *want = malloc(3 * IFC_HTTP_MAX_URL);
    snprintf(want, 3 * IFC_HTTP_MAX_URL, "GET %.*s [%.*s|] 1.1 ka=1 up=0 body#0\n", (int)target,
             s + 4, (int)target, s + 4);
    expect_run(s, strlen(s), want, 1, 0);
    free(want);
    free(s);

    /* A head of 16 KiB passes, one more byte is 431. */
    const char *start = "GET / HTTP/1.1\r\nX: ";
    size_t fill = IFC_HTTP_MAX_HEAD - strlen(start) - 4;
    s = repeat(start, 'h', fill, "\r\n\r\n");
    assert_int_equal(strlen(s), IFC_HTTP_MAX_HEAD);
    expect_run(s, strlen(s), "GET / [/|] 1.1 ka=1 up=0 body#0\n", 1, 0);
    free(s);
    s = repeat(start, 'h', fill + 1, "\r\n\r\n");
    expect_run(s, strlen(s), "status 431\n", 1, 0);
    free(s);
    /* As many header lines as allowed pass (the parser's room for them grows
     * on the way); one more is 431. */
    char most[4096] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < IFC_HTTP_MAX_HEADERS; i++)
        snprintf(most + strlen(most), sizeof(most) - strlen(most), "h%d: v\r\n", i);
    strcat(most, "\r\n");
    expect_run(most, strlen(most), "GET / [/|] 1.1 ka=1 up=0 body#0\n", 1, 0);
    char many[4096] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i <= IFC_HTTP_MAX_HEADERS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "h%d: v\r\n", i);
    strcat(many, "\r\n");
    expect_run(many, strlen(many), "status 431\n", 1, 0);

    /* A body over 1 MiB, announced or chunked: 413. */
    char big[128];
    snprintf(big, sizeof(big), "POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
             IFC_HTTP_MAX_BODY + 1);
    EXPECT(big, "status 413\n");
    expect_run(big, strlen(big), "status 413\n", 1, 1);
    s = repeat("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n", 'b',
               IFC_HTTP_MAX_BODY + 1, "\r\n0\r\n\r\n");
    expect_run(s, strlen(s), "status 413\n", 1, 0);
    free(s);
    s = repeat("POST / HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n", 'b', IFC_HTTP_MAX_BODY, "");
    expect_run(s, strlen(s), "POST / [/|] 1.1 ka=1 up=0 body#1048576\n", 1, 0);
    free(s);
}

/* Trailer fields after a chunked body count against the head limit with
 * the head (one huge trailer line grew memory without bound) and are
 * dropped: the request's headers are those of its head. */
static void trailers_count_against_the_head_limit(void **state)
{
    (void)state;
    EXPECT("POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n"
           "X-Trailer: yes\r\nCookie: sessionid=forged\r\n\r\n",
           "POST /t [/t|] 1.1 ka=1 up=0 transfer-encoding=chunked body=ab\n");
    const char *head = "POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ";
    size_t head_len = strlen("POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    /* Head and trailer together at the limit pass; one byte more is 431. */
    size_t fill = IFC_HTTP_MAX_HEAD - head_len - 1 - 4;
    char *s = repeat(head, 't', fill, "\r\n\r\n");
    expect_run(s, strlen(s), "POST /t [/t|] 1.1 ka=1 up=0 body#0\n", 1, 0);
    free(s);
    s = repeat(head, 't', fill + 1, "\r\n\r\n");
    expect_run(s, strlen(s), "status 431\n", 1, 0);
    free(s);
    /* A trailer line far over the limit stops at the limit, whole or in
     * pieces, without waiting for its end. */
    s = repeat(head, 't', 4 * IFC_HTTP_MAX_HEAD, "");
    expect_run(s, strlen(s), "status 431\n", 1, 0);
    free(s);
    /* Many small trailer lines add up too. */
    s = repeat("POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", 'x', 0, "");
    size_t cap = strlen(s) + 6 * 4096 + 8, len = strlen(s);
    s = realloc(s, cap);
    for (int i = 0; i < 4096; i++)
        len += (size_t)snprintf(s + len, cap - len, "a:bc\r\n");
    snprintf(s + len, cap - len, "\r\n");
    expect_run(s, strlen(s), "status 431\n", 1, 0);
    free(s);
}

static void response_heads_are_written_safely(void **state)
{
    (void)state;
    char buf[256];
    size_t len;
    ifc_http_header_t h[] = {{"content-type", 12, "text/html", 9}};
    assert_int_equal(ifc_http_response_head(buf, sizeof(buf), 200, h, 1, 5, 1, &len), 0);
    assert_int_equal(len, strlen("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n"
                                 "content-length: 5\r\n\r\n"));
    assert_memory_equal(
        buf, "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 5\r\n\r\n", len);
    assert_int_equal(ifc_http_response_head(buf, sizeof(buf), 404, NULL, 0, -1, 0, &len), 0);
    assert_memory_equal(buf, "HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n", len);
    ifc_http_header_t evil[] = {{"x", 1, "a\r\nSet-Cookie: b", 16}};
    assert_int_equal(ifc_http_response_head(buf, sizeof(buf), 200, evil, 1, 0, 1, &len), MC_EINVAL);
    ifc_http_header_t colon[] = {{"x:y", 3, "a", 1}};
    assert_int_equal(ifc_http_response_head(buf, sizeof(buf), 200, colon, 1, 0, 1, &len),
                     MC_EINVAL);
    assert_int_equal(ifc_http_response_head(buf, 20, 200, h, 1, 5, 1, &len), MC_ETOOBIG);
    assert_int_equal(ifc_http_simple_response(buf, sizeof(buf), 503, 0, &len), 0);
    assert_true(len > 0);
    assert_memory_equal(buf + len - 20, "Service Unavailable\n", 20);
    char date[30];
    ifc_http_date(784111777, date);
    assert_string_equal(date, "Sun, 06 Nov 1994 08:49:37 GMT");
}

static void header_tokens_are_matched(void **state)
{
    (void)state;
    ifc_http_parser_t p;
    ifc_http_parser_init(&p, NULL);
    const char in[] =
        "GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n";
    size_t used;
    assert_int_equal(ifc_http_feed(&p, in, sizeof(in) - 1, &used), IFC_HTTP_REQUEST);
    const ifc_http_request_t *q = ifc_http_request(&p);
    assert_true(ifc_http_header_has_token(q, "connection", "upgrade"));
    assert_true(ifc_http_header_has_token(q, "upgrade", "websocket"));
    assert_false(ifc_http_header_has_token(q, "connection", "close"));
    assert_false(ifc_http_header_has_token(q, "host", "x"));
    size_t len;
    assert_non_null(ifc_http_header(q, "upgrade", &len));
    assert_int_equal(len, 9);
    ifc_http_next(&p);
    ifc_http_parser_clear(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_get_request_is_parsed),
        cmocka_unit_test(bodies_are_read_by_length_and_chunked),
        cmocka_unit_test(trailers_count_against_the_head_limit),
        cmocka_unit_test(pipelined_requests_come_out_in_order),
        cmocka_unit_test(upgrade_requests_are_flagged),
        cmocka_unit_test(malformed_requests_are_400),
        cmocka_unit_test(unsupported_versions_are_505),
        cmocka_unit_test(oversized_parts_get_their_status),
        cmocka_unit_test(response_heads_are_written_safely),
        cmocka_unit_test(header_tokens_are_matched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
