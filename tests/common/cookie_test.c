#include "common/cookie.h"
#include "common/error.h"
#include "tests/support/guard.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static int find(const char *hdr, const char *name, char *out)
{
    guard_t g;
    const char *p = (const char *)guard_copy(&g, hdr, strlen(hdr));
    const char *v;
    size_t vlen;
    int rc = mc_cookie_find(p, strlen(hdr), name, &v, &vlen);
    if (rc == 0) {
        memcpy(out, v, vlen);
        out[vlen] = '\0';
    }
    guard_free(&g);
    return rc;
}

static void cookies_are_found_by_name(void **state)
{
    (void)state;
    char v[256];
    const char *h = "csrftoken=abc123; sessionid=0123456789abcdef; theme=dark";
    assert_int_equal(find(h, "sessionid", v), 0);
    assert_string_equal(v, "0123456789abcdef");
    assert_int_equal(find(h, "csrftoken", v), 0);
    assert_string_equal(v, "abc123");
    assert_int_equal(find(h, "theme", v), 0);
    assert_string_equal(v, "dark");
    assert_int_equal(find(h, "session", v), MC_ENOTFOUND);
    assert_int_equal(find("", "a", v), MC_ENOTFOUND);
}

static void whitespace_and_quotes_are_dropped(void **state)
{
    (void)state;
    char v[256];
    assert_int_equal(find("  a = 1 ;\tb=\"quoted value\"  ;c=", "b", v), 0);
    assert_string_equal(v, "quoted value");
    assert_int_equal(find("  a = 1 ;\tb=\"x\"", "a", v), 0);
    assert_string_equal(v, "1");
    assert_int_equal(find("a=1;c=", "c", v), 0);
    assert_string_equal(v, "");
    assert_int_equal(find("a=\"", "a", v), 0);
    assert_string_equal(v, "\"");
}

static void malformed_pieces_are_skipped(void **state)
{
    (void)state;
    char v[256];
    assert_int_equal(find("garbage; =nameless; ;;x=1", "x", v), 0);
    assert_string_equal(v, "1");
    mc_cookie_t c[4];
    size_t n;
    assert_int_equal(mc_cookie_parse("junk;=v; ;", 10, c, 4, &n), 0);
    assert_int_equal(n, 0);
}

static void first_of_repeated_names_wins(void **state)
{
    (void)state;
    char v[256];
    assert_int_equal(find("a=1; a=2", "a", v), 0);
    assert_string_equal(v, "1");
}

static void control_bytes_are_refused(void **state)
{
    (void)state;
    mc_cookie_t c[4];
    size_t n;
    assert_int_equal(mc_cookie_parse("a=1\r\nb=2", 8, c, 4, &n), MC_EINVAL);
    assert_int_equal(mc_cookie_parse("a=\0", 3, c, 4, &n), MC_EINVAL);
    assert_int_equal(mc_cookie_parse("a=\x7f", 3, c, 4, &n), MC_EINVAL);
    assert_int_equal(mc_cookie_parse("a=1\tb", 5, c, 4, &n), 0);
}

static void limits_are_enforced(void **state)
{
    (void)state;
    mc_cookie_t c[MC_COOKIE_MAX_COUNT];
    size_t n;
    assert_int_equal(mc_cookie_parse("a=1;b=2;c=3", 11, c, 2, &n), MC_ETOOBIG);
    assert_int_equal(mc_cookie_parse("a=1;b=2", 7, c, 2, &n), 0);
    assert_int_equal(n, 2);
    char *big = malloc(MC_COOKIE_MAX_BYTES + 1);
    memset(big, 'a', MC_COOKIE_MAX_BYTES + 1);
    big[0] = 'x';
    big[1] = '=';
    assert_int_equal(mc_cookie_parse(big, MC_COOKIE_MAX_BYTES + 1, c, 4, &n), MC_ETOOBIG);
    assert_int_equal(mc_cookie_parse(big, MC_COOKIE_MAX_BYTES, c, 4, &n), 0);
    free(big);
}

static void every_prefix_parses_without_overread(void **state)
{
    (void)state;
    const char *s = "csrftoken=\"abc\"; sessionid=0123; x";
    for (size_t cut = 0; cut <= strlen(s); cut++) {
        guard_t g;
        const char *p = (const char *)guard_copy(&g, s, cut);
        mc_cookie_t c[8];
        size_t n;
        assert_int_equal(mc_cookie_parse(p, cut, c, 8, &n), 0);
        guard_free(&g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cookies_are_found_by_name),
        cmocka_unit_test(whitespace_and_quotes_are_dropped),
        cmocka_unit_test(malformed_pieces_are_skipped),
        cmocka_unit_test(first_of_repeated_names_wins),
        cmocka_unit_test(control_bytes_are_refused),
        cmocka_unit_test(limits_are_enforced),
        cmocka_unit_test(every_prefix_parses_without_overread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
