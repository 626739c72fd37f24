/* Tests of interface/handshake.c: SHA-1 and base64 vectors, the RFC 6455
 * example key, and the status of each refused upgrade. */
#include "interface/handshake.h"
#include "common/error.h"
#include "tests/support/guard.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void hex20(const uint8_t d[20], char out[41])
{
    for (int i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void sha1_matches_fips_vectors(void **state)
{
    (void)state;
    uint8_t d[20];
    char h[41];
    ifc_sha1("", 0, d);
    hex20(d, h);
    assert_string_equal(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    ifc_sha1("abc", 3, d);
    hex20(d, h);
    assert_string_equal(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ifc_sha1(two, strlen(two), d);
    hex20(d, h);
    assert_string_equal(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    char *mil = malloc(1000000);
    memset(mil, 'a', 1000000);
    ifc_sha1(mil, 1000000, d);
    hex20(d, h);
    assert_string_equal(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(mil);
    /* Lengths around the padding boundary (55, 56, 64). */
    char buf[64];
    memset(buf, 'a', sizeof(buf));
    ifc_sha1(buf, 55, d);
    hex20(d, h);
    assert_string_equal(h, "c1c8bbdc22796e28c0e15163d20899b65621d65a");
    ifc_sha1(buf, 56, d);
    hex20(d, h);
    assert_string_equal(h, "c2db330f6083854c99d4b5bfb6e8f29f201be699");
    ifc_sha1(buf, 64, d);
    hex20(d, h);
    assert_string_equal(h, "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

static void base64_matches_rfc4648(void **state)
{
    (void)state;
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[16];
        uint8_t back[8];
        assert_int_equal(ifc_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out),
                         strlen(coded[i]));
        assert_string_equal(out, coded[i]);
        guard_t g;
        char *c = (char *)guard_copy(&g, coded[i], strlen(coded[i]));
        assert_int_equal(ifc_base64_decode(c, strlen(coded[i]), back, sizeof(back)),
                         (int)strlen(plain[i]));
        guard_free(&g);
        assert_memory_equal(back, plain[i], strlen(plain[i]));
    }
    uint8_t b[16];
    assert_int_equal(ifc_base64_decode("Zg=", 3, b, sizeof(b)), MC_EINVAL);
    assert_int_equal(ifc_base64_decode("Z===", 4, b, sizeof(b)), MC_EINVAL);
    assert_int_equal(ifc_base64_decode("Zg==Zg==", 8, b, sizeof(b)), MC_EINVAL);
    assert_int_equal(ifc_base64_decode("Zm9*", 4, b, sizeof(b)), MC_EINVAL);
    assert_int_equal(ifc_base64_decode("Zm9vYmFy", 8, b, 5), MC_ETOOBIG);
}

static void accept_key_matches_rfc6455_example(void **state)
{
    (void)state;
    char out[IFC_WS_ACCEPT_LEN + 1];
    guard_t g;
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    char *k = (char *)guard_copy(&g, key, 24);
    assert_int_equal(ifc_ws_accept_key(k, 24, out), 0);
    guard_free(&g);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(ifc_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ", 22, out), MC_EINVAL);
    assert_int_equal(ifc_ws_accept_key("dGhlIHNhbXBsZSBub25jZXg=", 24, out), MC_EINVAL);
    assert_int_equal(ifc_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ*=", 24, out), MC_EINVAL);
}

/* Parses a request that came over scheme and runs the handshake check on
 * it. */
static int check_over(const char *scheme, const char *raw, const char *allowed, int check_origin,
                      char *accept)
{
    ifc_http_parser_t p;
    size_t used;
    ifc_http_parser_init(&p, NULL);
    assert_int_equal(ifc_http_feed(&p, raw, strlen(raw), &used), IFC_HTTP_REQUEST);
    int rc = ifc_handshake_check(ifc_http_request(&p), allowed, check_origin, scheme, accept);
    ifc_http_next(&p);
    ifc_http_parser_clear(&p);
    return rc;
}

static int check(const char *raw, const char *allowed, int check_origin, char *accept)
{
    return check_over("http", raw, allowed, check_origin, accept);
}

#define REQ(method, extra)                                                                         \
    method " /chat/stream/ HTTP/1.1\r\nHost: chat.example:8000\r\n" extra "\r\n"
#define GOOD_HEADERS                                                                               \
    "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"                                    \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

static void handshake_statuses(void **state)
{
    (void)state;
    char a[IFC_WS_ACCEPT_LEN + 1];
    assert_int_equal(
        check(REQ("GET", GOOD_HEADERS "Origin: http://chat.example:8000\r\n"), NULL, 1, a), 0);
    assert_string_equal(a, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* Origin: default is the request's own Host; absent is refused. */
    assert_int_equal(
        check(REQ("GET", GOOD_HEADERS "Origin: http://evil.example:8000\r\n"), NULL, 1, a), 403);
    assert_int_equal(check(REQ("GET", GOOD_HEADERS "Origin: http://chat.example\r\n"), NULL, 1, a),
                     403);
    assert_int_equal(check(REQ("GET", GOOD_HEADERS), NULL, 1, a), 403);
    assert_int_equal(check(REQ("GET", GOOD_HEADERS), NULL, 0, a), 0);
    assert_int_equal(check(REQ("GET", GOOD_HEADERS), "*", 1, a), 0);
    assert_int_equal(check(REQ("GET", GOOD_HEADERS "Origin: https://a.example\r\n"),
                           "http://b.example, https://a.example", 1, a),
                     0);
    assert_int_equal(check(REQ("GET", GOOD_HEADERS "Origin: http://chat.example:8000\r\n"),
                           "https://a.example", 1, a),
                     403);
    /* Version 13 only. */
    assert_int_equal(check(REQ("GET", "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                      "Sec-WebSocket-Version: 8\r\n"),
                           "*", 1, a),
                     426);
    assert_int_equal(check(REQ("GET", "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
                           "*", 1, a),
                     426);
    /* Malformed upgrades. */
    assert_int_equal(check(REQ("POST", GOOD_HEADERS "Content-Length: 0\r\n"), "*", 1, a), 400);
    assert_int_equal(check(REQ("GET", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
                           "*", 1, a),
                     400);
    assert_int_equal(check(REQ("GET", "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
                           "*", 1, a),
                     400);
    assert_int_equal(check(REQ("GET", "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n"),
                           "*", 1, a),
                     400);
    assert_int_equal(
        check("GET /chat/stream/ HTTP/1.0\r\nHost: h\r\n" GOOD_HEADERS "\r\n", "*", 1, a), 400);
}

static void origin_rules(void **state)
{
    (void)state;
    assert_true(ifc_origin_allowed("http://H:1", 10, "h:1", 3, "http", NULL));
    assert_false(ifc_origin_allowed("http://h:1/x", 12, "h:1", 3, "http", NULL));
    assert_false(ifc_origin_allowed("h:1", 3, "h:1", 3, "http", ""));
    assert_false(ifc_origin_allowed("http://h", 8, NULL, 0, "http", NULL));
    assert_true(ifc_origin_allowed(NULL, 0, "h", 1, "http", "a, *"));
    assert_false(ifc_origin_allowed(NULL, 0, "h", 1, "http", "http://h"));
}

/* The default origin is the request's own, scheme included: a page of the
 * plain-http site may not open the socket of the https one of the same
 * host, nor the other way round. */
static void default_origin_compares_the_scheme(void **state)
{
    (void)state;
    char a[IFC_WS_ACCEPT_LEN + 1];
    const char *https = REQ("GET", GOOD_HEADERS "Origin: https://chat.example:8000\r\n");
    const char *http = REQ("GET", GOOD_HEADERS "Origin: http://chat.example:8000\r\n");
    assert_int_equal(check_over("http", https, NULL, 1, a), 403);
    assert_int_equal(check_over("https", https, NULL, 1, a), 0);
    assert_int_equal(check_over("https", http, NULL, 1, a), 403);
    assert_int_equal(check_over("HTTPS", https, NULL, 1, a), 0);
    assert_false(ifc_origin_allowed("https://h:1", 11, "h:1", 3, "http", NULL));
    assert_false(ifc_origin_allowed("httpx://h:1", 11, "h:1", 3, "http", NULL));
    assert_false(ifc_origin_allowed("http:/h:1", 9, "h:1", 3, "http", NULL));
    assert_false(ifc_origin_allowed("http://h:1", 10, "h:1", 3, NULL, NULL));
    /* A list names whole origins, the scheme in them. */
    assert_int_equal(check_over("http", https, "https://chat.example:8000", 1, a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha1_matches_fips_vectors),
        cmocka_unit_test(base64_matches_rfc4648),
        cmocka_unit_test(accept_key_matches_rfc6455_example),
        cmocka_unit_test(handshake_statuses),
        cmocka_unit_test(origin_rules),
        cmocka_unit_test(default_origin_compares_the_scheme),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
