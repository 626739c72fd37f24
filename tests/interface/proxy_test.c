/* Tests of interface/ip.c and interface/proxy.c: addresses and blocks as
 * text, and the client of a request behind trusted proxies, where
 * X-Forwarded-For is read from the right and believed only from them. */
#include "interface/ip.h"
#include "interface/proxy.h"
#include "common/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static ifc_ip_t ip(const char *text)
{
    ifc_ip_t out;
    assert_int_equal(ifc_ip_parse(text, strlen(text), &out), 0);
    return out;
}

static void assert_ip(const ifc_ip_t *got, const char *want)
{
    char text[IFC_IP_TEXT_MAX];
    ifc_ip_format(got, text);
    assert_string_equal(text, want);
}

static void addresses_are_read_strictly(void **state)
{
    (void)state;
    ifc_ip_t a;
    assert_ip((a = ip("192.0.2.1"), &a), "192.0.2.1");
    assert_ip((a = ip("2001:DB8::1"), &a), "2001:db8::1");
    /* An IPv4 address mapped into IPv6 is that IPv4 address. */
    a = ip("::ffff:192.0.2.1");
    assert_int_equal(a.family, 4);
    ifc_ip_t b = ip("192.0.2.1");
    assert_true(ifc_ip_equal(&a, &b));
    const char *bad[] = {"",           "192.0.2", "192.0.2.256",  "010.0.0.1",
                         "192.0.2.1 ", "::g",     "fe80::1%eth0", "[::1]",
                         "1.2.3.4:80", "unknown", "192.0.2.1/32"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ifc_ip_parse(bad[i], strlen(bad[i]), &a), MC_EINVAL);
    /* Only len bytes count: no NUL is needed, none is read past. */
    assert_int_equal(ifc_ip_parse("10.0.0.1junk", 8, &a), 0);
    assert_ip(&a, "10.0.0.1");
    assert_int_equal(ifc_ip_parse("10.0\0.0.1", 9, &a), MC_EINVAL);
}

static void forwarded_entries_may_carry_ports(void **state)
{
    (void)state;
    struct {
        const char *in, *want;
    } ok[] = {{" 192.0.2.1 ", "192.0.2.1"},     {"192.0.2.1:4711", "192.0.2.1"},
              {"[2001:db8::1]", "2001:db8::1"}, {"[2001:db8::1]:443", "2001:db8::1"},
              {"2001:db8::1", "2001:db8::1"},   {"\t::ffff:10.0.0.1", "10.0.0.1"}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ifc_ip_t a;
        assert_int_equal(ifc_ip_parse_forwarded(ok[i].in, strlen(ok[i].in), &a), 0);
        assert_ip(&a, ok[i].want);
    }
    const char *bad[] = {"unknown",
                         "_hidden",
                         "192.0.2.1:",
                         "192.0.2.1:123456",
                         "[192.0.2.1]",
                         "[2001:db8::1",
                         "[2001:db8::1]x",
                         "[2001:db8::1]:",
                         "",
                         "  "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ifc_ip_t a;
        assert_int_equal(ifc_ip_parse_forwarded(bad[i], strlen(bad[i]), &a), MC_EINVAL);
        assert_int_equal(a.family, 0);
    }
}

static void blocks_are_parsed_and_matched(void **state)
{
    (void)state;
    ifc_cidrs_t l;
    assert_int_equal(ifc_cidrs_parse("127.0.0.1, 10.0.0.0/8,::1 fd00::/8,,", &l), 0);
    assert_int_equal(l.n, 4);
    ifc_ip_t a;
    const char *in[] = {"127.0.0.1", "10.255.1.2", "::1", "fd12::3", "::ffff:10.0.0.9"};
    const char *out[] = {"127.0.0.2", "11.0.0.1", "::2", "fe00::1", "192.0.2.1"};
    for (size_t i = 0; i < 5; i++) {
        assert_true(ifc_cidrs_match(&l, (a = ip(in[i]), &a)));
        assert_false(ifc_cidrs_match(&l, (a = ip(out[i]), &a)));
    }
    ifc_cidrs_clear(&l);
    assert_int_equal(ifc_cidrs_parse("0.0.0.0/0", &l), 0);
    assert_true(ifc_cidrs_match(&l, (a = ip("203.0.113.9"), &a)));
    assert_false(ifc_cidrs_match(&l, (a = ip("2001:db8::1"), &a)));
    ifc_cidrs_clear(&l);
    assert_int_equal(ifc_cidrs_parse("192.0.2.128/25", &l), 0);
    assert_true(ifc_cidrs_match(&l, (a = ip("192.0.2.200"), &a)));
    assert_false(ifc_cidrs_match(&l, (a = ip("192.0.2.127"), &a)));
    ifc_cidrs_clear(&l);
    assert_int_equal(ifc_cidrs_parse(NULL, &l), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(ifc_cidrs_parse(" , ", &l), 0);
    assert_int_equal(l.n, 0);
    /* Mistakes are refused, not read as something else. */
    const char *bad[] = {"10.0.0.0/33", "::/129",    "10.1.0.0/8", "10.0.0.0/",
                         "10.0.0.0/08", "localhost", "10.0.0.1/x", "10.0.0.0 /8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ifc_cidrs_parse(bad[i], &l), MC_EINVAL);
        assert_null(l.v);
    }
}

static void an_ipv6_client_is_its_64(void **state)
{
    (void)state;
    ifc_ip_t a = ip("2001:db8:1:2:aaaa::1"), b = ip("2001:db8:1:2:bbbb::9"),
             c = ip("2001:db8:1:3::1");
    ifc_ip_t ka, kb, kc;
    ifc_ip_limit_key(&a, &ka);
    ifc_ip_limit_key(&b, &kb);
    ifc_ip_limit_key(&c, &kc);
    assert_true(ifc_ip_equal(&ka, &kb));
    assert_false(ifc_ip_equal(&ka, &kc));
    ifc_ip_t v4 = ip("192.0.2.1"), k4;
    ifc_ip_limit_key(&v4, &k4);
    assert_true(ifc_ip_equal(&v4, &k4));
}

/* A request with the headers given as "name", "value" pairs (up to 8). */
static void request(ifc_http_request_t *req, const char *const *headers)
{
    static ifc_http_header_t fields[8];
    memset(req, 0, sizeof(*req));
    req->headers = fields;
    for (size_t i = 0; headers[i]; i += 2) {
        assert_true(req->nheaders < sizeof(fields) / sizeof(fields[0]));
        ifc_http_header_t *h = &req->headers[req->nheaders++];
        h->name = headers[i];
        h->name_len = strlen(headers[i]);
        h->value = headers[i + 1];
        h->value_len = strlen(headers[i + 1]);
    }
}

/* The client that peer's request with headers comes from, as text, and
 * whether it came over HTTPS. */
static const char *client_of(const char *trusted, const char *peer, const char *const *headers,
                             int *https)
{
    static char text[IFC_IP_TEXT_MAX];
    ifc_cidrs_t l;
    assert_int_equal(ifc_cidrs_parse(trusted, &l), 0);
    ifc_http_request_t req;
    request(&req, headers);
    ifc_ip_t p = ip(peer);
    ifc_client_t c;
    ifc_proxy_client(&l, &p, &req, &c);
    ifc_ip_format(&c.ip, text);
    if (https)
        *https = c.https;
    ifc_cidrs_clear(&l);
    return text;
}

static void only_trusted_proxies_are_believed(void **state)
{
    (void)state;
    int https;
    const char *nginx[] = {"x-forwarded-for", "203.0.113.7", "x-forwarded-proto", "https", NULL};
    /* From the proxy: its client, over HTTPS. */
    assert_string_equal(client_of("127.0.0.1", "127.0.0.1", nginx, &https), "203.0.113.7");
    assert_true(https);
    /* From anyone else the same headers say nothing. */
    assert_string_equal(client_of("127.0.0.1", "198.51.100.2", nginx, &https), "198.51.100.2");
    assert_false(https);
    assert_string_equal(client_of("", "127.0.0.1", nginx, &https), "127.0.0.1");
    assert_false(https);
    /* A proxy that sends no X-Forwarded-For is the client. */
    const char *none[] = {"host", "h", NULL};
    assert_string_equal(client_of("127.0.0.1", "127.0.0.1", none, &https), "127.0.0.1");
    assert_false(https);
}

static void the_right_most_untrusted_entry_is_the_client(void **state)
{
    (void)state;
    const char *trusted = "127.0.0.1, 10.0.0.0/8";
    /* The client wrote a made-up entry first; nginx appended what it saw. */
    const char *spoof[] = {"x-forwarded-for", "192.0.2.66, 203.0.113.7", NULL};
    assert_string_equal(client_of(trusted, "127.0.0.1", spoof, NULL), "203.0.113.7");
    /* A chain of trusted proxies is walked through. */
    const char *chain[] = {"x-forwarded-for", "192.0.2.66, 203.0.113.7, 10.0.0.5, 10.0.0.6", NULL};
    assert_string_equal(client_of(trusted, "127.0.0.1", chain, NULL), "203.0.113.7");
    /* Several lines are one list, in order. */
    const char *lines[] = {"x-forwarded-for", "192.0.2.66", "x-forwarded-for",
                           "203.0.113.7, 10.0.0.5", NULL};
    assert_string_equal(client_of(trusted, "127.0.0.1", lines, NULL), "203.0.113.7");
    /* All trusted: the left-most. */
    const char *inside[] = {"x-forwarded-for", "10.0.0.9, 10.0.0.5", NULL};
    assert_string_equal(client_of(trusted, "127.0.0.1", inside, NULL), "10.0.0.9");
    /* What is no address ends the walk at the last trusted one. */
    const char *junk[] = {"x-forwarded-for", "203.0.113.7, unknown, 10.0.0.5", NULL};
    assert_string_equal(client_of(trusted, "127.0.0.1", junk, NULL), "10.0.0.5");
    const char *only_junk[] = {"x-forwarded-for", "unknown", NULL};
    assert_string_equal(client_of(trusted, "127.0.0.1", only_junk, NULL), "127.0.0.1");
    /* Ports, brackets, blanks and empty entries. */
    const char *ports[] = {"x-forwarded-for", "[2001:db8::7]:5555 ,, 10.0.0.5:80 ", NULL};
    assert_string_equal(client_of(trusted, "127.0.0.1", ports, NULL), "2001:db8::7");
    /* A dual-stack listener's view of an IPv4 proxy. */
    assert_string_equal(client_of(trusted, "::ffff:127.0.0.1", spoof, NULL), "203.0.113.7");
}

static void the_last_forwarded_proto_says_https(void **state)
{
    (void)state;
    int https;
    const char *cases[][2] = {
        {"https", "1"},       {"HTTPS", "1"},  {"http", "0"},   {"https, http", "0"},
        {"http, https", "1"}, {"https ", "1"}, {"httpsx", "0"}, {"", "0"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *h[] = {"x-forwarded-for", "203.0.113.7", "x-forwarded-proto", cases[i][0],
                           NULL};
        client_of("127.0.0.1", "127.0.0.1", h, &https);
        assert_int_equal(https, cases[i][1][0] == '1');
    }
    assert_string_equal(ifc_client_scheme(&(ifc_client_t){.https = 1}), "https");
    assert_string_equal(ifc_client_scheme(&(ifc_client_t){.https = 0}), "http");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(addresses_are_read_strictly),
        cmocka_unit_test(forwarded_entries_may_carry_ports),
        cmocka_unit_test(blocks_are_parsed_and_matched),
        cmocka_unit_test(an_ipv6_client_is_its_64),
        cmocka_unit_test(only_trusted_proxies_are_believed),
        cmocka_unit_test(the_right_most_untrusted_entry_is_the_client),
        cmocka_unit_test(the_last_forwarded_proto_says_https),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
