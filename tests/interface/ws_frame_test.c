/* Tests of interface/ws_frame.c: every client frame fed whole, split at every
 * byte and one byte at a time, ending on a guard page. */
#include "interface/ws_frame.h"
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
    ifc_ws_parser_t p;
    size_t max;
    char log[1024];
    const char *expect;
    int stopped;
    int rsv1; /* the socket negotiated permessage-deflate */
} run_t;

static void logf_(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(run_t *r, const char *fmt, ...)
{
    size_t n = strlen(r->log);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->log + n, sizeof(r->log) - n, fmt, ap);
    va_end(ap);
}

static void run_reset(void *ctx)
{
    run_t *r = ctx;
    ifc_ws_parser_clear(&r->p);
    ifc_ws_parser_init(&r->p, r->max);
    if (r->rsv1)
        ifc_ws_parser_allow_rsv1(&r->p);
    r->log[0] = '\0';
    r->stopped = 0;
}

static void log_event(run_t *r, const ifc_ws_event_t *ev)
{
    if (ev->compressed)
        logf_(r, "z");
    switch (ev->opcode) {
    case IFC_WS_OP_TEXT:
        logf_(r, "T:%.*s|", (int)ev->len, (const char *)ev->data);
        break;
    case IFC_WS_OP_BINARY: {
        unsigned sum = 0;
        for (size_t i = 0; i < ev->len; i++)
            sum = (sum * 31 + ev->data[i]) & 0xFFFF;
        logf_(r, "B%zu:%u|", ev->len, sum);
        break;
    }
    case IFC_WS_OP_PING:
        logf_(r, "P:%.*s|", (int)ev->len, (const char *)ev->data);
        break;
    case IFC_WS_OP_PONG:
        logf_(r, "O:%.*s|", (int)ev->len, (const char *)ev->data);
        break;
    case IFC_WS_OP_CLOSE:
        logf_(r, "C%d:%.*s|", ev->close_code, (int)ev->len, (const char *)ev->data);
        break;
    default:
        fail_msg("unexpected opcode %d", ev->opcode);
    }
}

static void run_feed(void *ctx, const uint8_t *data, size_t len)
{
    run_t *r = ctx;
    size_t off = 0;
    if (r->stopped)
        return;
    for (;;) {
        size_t used = 99999;
        ifc_ws_event_t ev;
        int rc = ifc_ws_parse(&r->p, data + off, len - off, &used, &ev);
        assert_true(used <= len - off);
        off += used;
        if (rc == IFC_WS_EVENT) {
            log_event(r, &ev);
            continue;
        }
        if (rc == IFC_WS_NEED_MORE) {
            assert_int_equal(off, len);
            return;
        }
        assert_int_equal(rc, MC_EPROTO);
        logf_(r, "E%d|", ifc_ws_parser_error(&r->p));
        r->stopped = 1;
        /* Errors are sticky. */
        assert_int_equal(ifc_ws_parse(&r->p, data, len, &used, &ev), MC_EPROTO);
        return;
    }
}

static void run_check(void *ctx)
{
    run_t *r = ctx;
    assert_string_equal(r->log, r->expect);
}

static const guard_driver_t DRIVER = {run_reset, run_feed, run_check};

/* Appends one client frame to buf; returns the new length. len_form forces
 * the 126/127 length forms (0: shortest). */
static size_t frame(uint8_t *buf, size_t at, int fin, int rsv, int opcode, int masked,
                    const void *payload, size_t len, int len_form)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t *o = buf + at;
    size_t h = 0;
    o[h++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
    uint8_t m = masked ? 0x80 : 0;
    if (len_form == 0 && len < 126) {
        o[h++] = (uint8_t)(m | len);
    } else if ((len_form == 0 && len <= 0xFFFF) || len_form == 126) {
        o[h++] = m | 126;
        o[h++] = (uint8_t)(len >> 8);
        o[h++] = (uint8_t)len;
    } else {
        o[h++] = m | 127;
        for (int i = 0; i < 8; i++)
            o[h++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(o + h, mask, 4);
        h += 4;
    }
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        o[h + i] = masked ? p[i] ^ mask[i & 3] : p[i];
    return at + h + len;
}

static void expect_all_ways_rsv1(int rsv1, size_t max, const uint8_t *in, size_t len,
                                 const char *expect)
{
    run_t r;
    memset(&r, 0, sizeof(r));
    r.max = max;
    r.expect = expect;
    r.rsv1 = rsv1;
    ifc_ws_parser_init(&r.p, max);
    guard_feed_all_ways(&DRIVER, &r, in, len);
    ifc_ws_parser_clear(&r.p);
}

static void expect_all_ways(size_t max, const uint8_t *in, size_t len, const char *expect)
{
    expect_all_ways_rsv1(0, max, in, len, expect);
}

static void text_frame_is_one_message(void **state)
{
    (void)state;
    uint8_t b[64];
    size_t n = frame(b, 0, 1, 0, IFC_WS_OP_TEXT, 1, "Hello", 5, 0);
    expect_all_ways(1024, b, n, "T:Hello|");
    n = frame(b, 0, 1, 0, IFC_WS_OP_TEXT, 1, "", 0, 0);
    expect_all_ways(1024, b, n, "T:|");
}

static void fragments_join_around_control_frames(void **state)
{
    (void)state;
    uint8_t b[128];
    size_t n = frame(b, 0, 0, 0, IFC_WS_OP_TEXT, 1, "Hel", 3, 0);
    n = frame(b, n, 1, 0, IFC_WS_OP_PING, 1, "p", 1, 0);
    n = frame(b, n, 0, 0, IFC_WS_OP_CONTINUATION, 1, "", 0, 0);
    n = frame(b, n, 1, 0, IFC_WS_OP_PONG, 1, "q", 1, 0);
    n = frame(b, n, 1, 0, IFC_WS_OP_CONTINUATION, 1, "lo", 2, 0);
    n = frame(b, n, 1, 0, IFC_WS_OP_TEXT, 1, "again", 5, 0);
    expect_all_ways(1024, b, n, "P:p|O:q|T:Hello|T:again|");
}

static void utf8_is_checked_across_fragments(void **state)
{
    (void)state;
    uint8_t b[128];
    /* U+20AC (E2 82 AC) split between two fragments is valid. */
    size_t n = frame(b, 0, 0, 0, IFC_WS_OP_TEXT, 1, "\xe2\x82", 2, 0);
    n = frame(b, n, 1, 0, IFC_WS_OP_CONTINUATION, 1, "\xac", 1, 0);
    expect_all_ways(1024, b, n, "T:\xe2\x82\xac|");
    /* A message that ends inside a character is not. */
    n = frame(b, 0, 1, 0, IFC_WS_OP_TEXT, 1, "ab\xe2\x82", 4, 0);
    expect_all_ways(1024, b, n, "E1007|");
    /* An invalid byte fails at once, before the frame ends (fail fast). */
    n = frame(b, 0, 1, 0, IFC_WS_OP_TEXT, 1, "a\xc0\xafzzzzzzzz", 11, 0);
    expect_all_ways(1024, b, 4 + 2 + 3, "E1007|");
    /* A surrogate, an overlong, a code point over U+10FFFF. */
    n = frame(b, 0, 1, 0, IFC_WS_OP_TEXT, 1, "\xed\xa0\x80", 3, 0);
    expect_all_ways(1024, b, n, "E1007|");
    n = frame(b, 0, 1, 0, IFC_WS_OP_TEXT, 1, "\xe0\x80\xaf", 3, 0);
    expect_all_ways(1024, b, n, "E1007|");
    n = frame(b, 0, 1, 0, IFC_WS_OP_TEXT, 1, "\xf4\x90\x80\x80", 4, 0);
    expect_all_ways(1024, b, n, "E1007|");
    /* Binary messages are not UTF-8 checked. */
    n = frame(b, 0, 1, 0, IFC_WS_OP_BINARY, 1, "\xff", 1, 0);
    expect_all_ways(1024, b, n, "B1:255|");
}

static void protocol_violations_are_1002(void **state)
{
    (void)state;
    uint8_t b[512];
    uint8_t big[200];
    memset(big, 'x', sizeof(big));
    size_t n = frame(b, 0, 1, 0, IFC_WS_OP_TEXT, 0, "hi", 2, 0);
    expect_all_ways(1024, b, n, "E1002|"); /* unmasked */
    for (int rsv = 1; rsv <= 4; rsv <<= 1) {
        n = frame(b, 0, 1, rsv, IFC_WS_OP_TEXT, 1, "hi", 2, 0);
        expect_all_ways(1024, b, n, "E1002|");
    }
    static const int bad_ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    for (size_t i = 0; i < sizeof(bad_ops) / sizeof(bad_ops[0]); i++) {
        n = frame(b, 0, 1, 0, bad_ops[i], 1, "", 0, 0);
        expect_all_ways(1024, b, n, "E1002|");
    }
    n = frame(b, 0, 0, 0, IFC_WS_OP_PING, 1, "x", 1, 0); /* fragmented control */
    expect_all_ways(1024, b, n, "E1002|");
    n = frame(b, 0, 1, 0, IFC_WS_OP_PING, 1, big, 126, 0); /* control too long */
    expect_all_ways(1024, b, n, "E1002|");
    n = frame(b, 0, 1, 0, IFC_WS_OP_BINARY, 1, big, 100, 126); /* not shortest */
    expect_all_ways(1024, b, n, "E1002|");
    n = frame(b, 0, 1, 0, IFC_WS_OP_BINARY, 1, big, 200, 127); /* not shortest */
    expect_all_ways(1024, b, n, "E1002|");
    uint8_t top[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}; /* top bit set */
    expect_all_ways(1024, top, sizeof(top), "E1002|");
    n = frame(b, 0, 1, 0, IFC_WS_OP_CONTINUATION, 1, "x", 1, 0); /* nothing to continue */
    expect_all_ways(1024, b, n, "E1002|");
    n = frame(b, 0, 0, 0, IFC_WS_OP_TEXT, 1, "a", 1, 0); /* new message inside one */
    n = frame(b, n, 1, 0, IFC_WS_OP_BINARY, 1, "b", 1, 0);
    expect_all_ways(1024, b, n, "E1002|");
}

static void length_forms_are_decoded(void **state)
{
    (void)state;
    size_t sizes[] = {125, 126, 300, 65535, 65536, 70000};
    size_t cap = 70000 + 14;
    uint8_t *payload = malloc(70000), *b = malloc(cap);
    for (size_t i = 0; i < 70000; i++)
        payload[i] = (uint8_t)(i * 7);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = frame(b, 0, 1, 0, IFC_WS_OP_BINARY, 1, payload, sizes[k], 0);
        unsigned sum = 0;
        for (size_t i = 0; i < sizes[k]; i++)
            sum = (sum * 31 + payload[i]) & 0xFFFF;
        char expect[64];
        snprintf(expect, sizeof(expect), "B%zu:%u|", sizes[k], sum);
        run_t r;
        memset(&r, 0, sizeof(r));
        r.max = 1 << 20;
        r.expect = expect;
        ifc_ws_parser_init(&r.p, r.max);
        if (sizes[k] <= 300) {
            guard_feed_all_ways(&DRIVER, &r, b, n);
        } else {
            /* Large frames: whole, then in pieces of 1000 and of 1 byte. */
            size_t steps[] = {n, 1000, 1};
            for (size_t s = 0; s < 3; s++) {
                run_reset(&r);
                for (size_t off = 0; off < n; off += steps[s])
                    guard_feed_piece(&DRIVER, &r, b + off, n - off < steps[s] ? n - off : steps[s]);
                run_check(&r);
            }
        }
        ifc_ws_parser_clear(&r.p);
    }
    free(payload);
    free(b);
}

static void messages_over_the_limit_are_1009(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t n = frame(b, 0, 1, 0, IFC_WS_OP_TEXT, 1, "0123456789abcdefg", 17, 0);
    expect_all_ways(16, b, n, "E1009|");
    n = frame(b, 0, 1, 0, IFC_WS_OP_TEXT, 1, "0123456789abcdef", 16, 0);
    expect_all_ways(16, b, n, "T:0123456789abcdef|");
    n = frame(b, 0, 0, 0, IFC_WS_OP_TEXT, 1, "0123456789", 10, 0);
    n = frame(b, n, 1, 0, IFC_WS_OP_CONTINUATION, 1, "0123456789", 10, 0);
    expect_all_ways(16, b, n, "E1009|");
    /* The limit is checked on the header: a huge announced length fails
     * before any payload arrives. */
    uint8_t huge[] = {0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4};
    expect_all_ways(1 << 20, huge, sizeof(huge), "E1009|");
}

static void close_frames_are_validated(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t n = frame(b, 0, 1, 0, IFC_WS_OP_CLOSE, 1, "", 0, 0);
    expect_all_ways(1024, b, n, "C1005:|");
    n = frame(b, 0, 1, 0, IFC_WS_OP_CLOSE, 1,
              "\x03\xe8"
              "bye",
              5, 0);
    expect_all_ways(1024, b, n, "C1000:bye|");
    n = frame(b, 0, 1, 0, IFC_WS_OP_CLOSE, 1, "\x03", 1, 0);
    expect_all_ways(1024, b, n, "E1002|");
    static const int bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t pl[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        n = frame(b, 0, 1, 0, IFC_WS_OP_CLOSE, 1, pl, 2, 0);
        expect_all_ways(1024, b, n, "E1002|");
    }
    static const int good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                               1010, 1011, 1012, 1013, 1014, 3000, 4999};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint8_t pl[2] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i]};
        char expect[32];
        snprintf(expect, sizeof(expect), "C%d:|", good[i]);
        n = frame(b, 0, 1, 0, IFC_WS_OP_CLOSE, 1, pl, 2, 0);
        expect_all_ways(1024, b, n, expect);
    }
    n = frame(b, 0, 1, 0, IFC_WS_OP_CLOSE, 1, "\x03\xe8\xff", 3, 0);
    expect_all_ways(1024, b, n, "E1007|");
}

/* With permessage-deflate, RSV1 marks the first frame of a compressed
 * message; its payload is deflated, so UTF-8 waits for the inflated text. */
static void rsv1_starts_a_compressed_message_once_negotiated(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t n = frame(b, 0, 1, 4, IFC_WS_OP_TEXT, 1, "\xf2\x48", 2, 0);
    expect_all_ways_rsv1(1, 1024, b, n, "zT:\xf2\x48|");
    expect_all_ways_rsv1(0, 1024, b, n, "E1002|");
    n = frame(b, 0, 1, 4, IFC_WS_OP_BINARY, 1, "\xff", 1, 0);
    expect_all_ways_rsv1(1, 1024, b, n, "zB1:255|");
    /* Fragments: RSV1 on the first only, control frames in between, and the
     * next message is uncompressed again. */
    n = frame(b, 0, 0, 4, IFC_WS_OP_TEXT, 1, "\xc0", 1, 0);
    n = frame(b, n, 1, 0, IFC_WS_OP_PING, 1, "p", 1, 0);
    n = frame(b, n, 0, 0, IFC_WS_OP_CONTINUATION, 1, "\xaf", 1, 0);
    n = frame(b, n, 1, 0, IFC_WS_OP_PONG, 1, "q", 1, 0);
    n = frame(b, n, 1, 0, IFC_WS_OP_CONTINUATION, 1, "\x80", 1, 0);
    n = frame(b, n, 1, 0, IFC_WS_OP_TEXT, 1, "plain", 5, 0);
    expect_all_ways_rsv1(1, 1024, b, n, "P:p|O:q|zT:\xc0\xaf\x80|T:plain|");
    /* An uncompressed text message is still checked as it comes. */
    n = frame(b, 0, 1, 0, IFC_WS_OP_TEXT, 1, "\xc0\xaf", 2, 0);
    expect_all_ways_rsv1(1, 1024, b, n, "E1007|");
    /* RSV1 on a continuation or a control frame, RSV2 or RSV3 anywhere. */
    n = frame(b, 0, 0, 4, IFC_WS_OP_TEXT, 1, "a", 1, 0);
    n = frame(b, n, 1, 4, IFC_WS_OP_CONTINUATION, 1, "b", 1, 0);
    expect_all_ways_rsv1(1, 1024, b, n, "E1002|");
    n = frame(b, 0, 0, 0, IFC_WS_OP_TEXT, 1, "a", 1, 0);
    n = frame(b, n, 1, 4, IFC_WS_OP_CONTINUATION, 1, "b", 1, 0);
    expect_all_ways_rsv1(1, 1024, b, n, "E1002|");
    static const int controls[] = {IFC_WS_OP_PING, IFC_WS_OP_PONG, IFC_WS_OP_CLOSE};
    for (size_t i = 0; i < 3; i++) {
        n = frame(b, 0, 1, 4, controls[i], 1, "", 0, 0);
        expect_all_ways_rsv1(1, 1024, b, n, "E1002|");
    }
    for (int rsv = 1; rsv <= 6; rsv++) {
        if (rsv == 4)
            continue;
        n = frame(b, 0, 1, rsv, IFC_WS_OP_TEXT, 1, "hi", 2, 0);
        expect_all_ways_rsv1(1, 1024, b, n, "E1002|");
    }
    /* The size limit applies to the compressed bytes as they come. */
    n = frame(b, 0, 1, 4, IFC_WS_OP_BINARY, 1, "0123456789abcdefg", 17, 0);
    expect_all_ways_rsv1(1, 16, b, n, "E1009|");
}

static void server_frames_are_encoded_unmasked(void **state)
{
    (void)state;
    uint8_t h[IFC_WS_MAX_HEADER];
    assert_int_equal(ifc_ws_frame_header(h, IFC_WS_OP_TEXT, 1, 5), 2);
    assert_int_equal(h[0], 0x81);
    assert_int_equal(h[1], 5);
    assert_int_equal(ifc_ws_frame_header(h, IFC_WS_OP_BINARY, 1, 126), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal(h[2], 0);
    assert_int_equal(h[3], 126);
    assert_int_equal(ifc_ws_frame_header(h, IFC_WS_OP_BINARY, 0, 65536), 10);
    assert_int_equal(h[0], 0x02);
    assert_int_equal(h[1], 127);
    assert_int_equal(h[7], 1);
    assert_int_equal(ifc_ws_frame_header(h, IFC_WS_OP_TEXT, IFC_WS_FIN | IFC_WS_RSV1, 7), 2);
    assert_int_equal(h[0], 0xC1);
    assert_int_equal(h[1], 7);
    assert_int_equal(ifc_ws_frame_header(h, IFC_WS_OP_BINARY, IFC_WS_RSV1, 7), 2);
    assert_int_equal(h[0], 0x42);
    uint8_t *out;
    size_t len;
    assert_int_equal(ifc_ws_frame_encode(IFC_WS_OP_TEXT, "hey", 3, &out, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "\x81\x03hey", 5);
    free(out);
    uint8_t big[126] = {0};
    assert_int_equal(ifc_ws_frame_encode(IFC_WS_OP_PING, big, 126, &out, &len), MC_EINVAL);
    uint8_t c[2 + IFC_WS_MAX_CONTROL];
    assert_int_equal(ifc_ws_close_encode(1001, "bye", 3, c, &len), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(c,
                        "\x88\x05\x03\xe9"
                        "bye",
                        7);
    assert_int_equal(ifc_ws_close_encode(0, NULL, 0, c, &len), 0);
    assert_int_equal(len, 2);
    char reason[124];
    memset(reason, 'r', sizeof(reason));
    assert_int_equal(ifc_ws_close_encode(1000, reason, 124, c, &len), MC_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_frame_is_one_message),
        cmocka_unit_test(fragments_join_around_control_frames),
        cmocka_unit_test(utf8_is_checked_across_fragments),
        cmocka_unit_test(protocol_violations_are_1002),
        cmocka_unit_test(length_forms_are_decoded),
        cmocka_unit_test(messages_over_the_limit_are_1009),
        cmocka_unit_test(close_frames_are_validated),
        cmocka_unit_test(rsv1_starts_a_compressed_message_once_negotiated),
        cmocka_unit_test(server_frames_are_encoded_unmasked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
