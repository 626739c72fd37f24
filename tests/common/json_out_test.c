#include "common/json_out.h"
#include "common/error.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* s[0..n) as mc_json_put_string writes it, NUL-terminated, malloc'd. */
static char *written(const char *s, size_t n)
{
    mc_json_out_t o = {0};
    mc_json_put_string(&o, s, n);
    char *out;
    size_t len;
    assert_int_equal(mc_json_finish(&o, &out, &len), 0);
    assert_int_equal(strlen(out), len);
    assert_int_equal(mc_json_string_len(s, n), len);
    return out;
}

/* s (without a NUL) as cJSON prints it. */
static char *printed(const char *s)
{
    cJSON *item = cJSON_CreateString(s);
    assert_non_null(item);
    char *out = cJSON_PrintUnformatted(item);
    assert_non_null(out);
    cJSON_Delete(item);
    return out;
}

static void same_as_cjson(const char *s)
{
    char *ours = written(s, strlen(s)), *theirs = printed(s);
    assert_string_equal(ours, theirs);
    free(ours);
    free(theirs);
}

static void strings_are_escaped_as_cjson_escapes_them(void **state)
{
    (void)state;
    const char *tricky[] = {
        "",
        "plain",
        "\"",
        "\\",
        "a \"quoted\" word and a back\\slash",
        "\\\"\\\"",
        "tab\tnewline\nreturn\rbackspace\bformfeed\f",
        "\x01\x02\x03\x04\x05\x06\x07\x0b\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a"
        "\x1b\x1c\x1d\x1e\x1f",
        "DEL \x7f stays",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",             /* UTF-8: 2, 3 and 4 bytes */
        "\xc2\x80\xc2\x9f C1 controls go as they are",           /* as cJSON: not escaped */
        "invalid \xff\xfe\xc3 UTF-8 \xed\xa0\x80 goes as it is", /* a surrogate too */
        "/ is not escaped </script>",
        "{\"room\":\"1\",\"message\":\"hi\"}", /* a reply inside an envelope */
    };
    for (size_t i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++)
        same_as_cjson(tricky[i]);
    /* Every byte but the NUL, in order and in reverse. */
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    same_as_cjson(all);
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)(256 - i);
    same_as_cjson(all);
}

/* Plain bytes go a word of 8 at a time: a byte to escape at any place of
 * a word, and strings of any length around it, come out as cJSON's. */
static void an_escape_anywhere_in_a_word_is_found(void **state)
{
    (void)state;
    const unsigned char special[] = {'"', '\\', 0x01, '\n', 0x1f};
    const unsigned char near[] = {' ', '!', '#', '[', ']', 0x7f, 0x80, 0xff, 'a'};
    char s[40];
    for (size_t len = 1; len < 34; len++) {
        for (size_t at = 0; at < len; at++) {
            for (size_t k = 0; k < sizeof(special); k++) {
                for (size_t j = 0; j < len; j++)
                    s[j] = (char)near[(j + len) % sizeof(near)];
                s[at] = (char)special[k];
                s[len] = '\0';
                same_as_cjson(s);
            }
        }
    }
}

/* The word test against the byte table, for words of every kind. */
static void the_word_test_agrees_with_the_byte_table(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned char b[8];
        for (int j = 0; j < 8; j++) {
            unsigned v = (unsigned)(seed >> (8 * j)) & 0xff;
            /* Mostly plain bytes, so that words of all plain bytes come too. */
            b[j] = (seed >> 60) < 4 ? (unsigned char)v : (unsigned char)(0x20 + v % 0x5f);
            if (b[j] == '"' || b[j] == '\\')
                b[j] = (seed >> 59) & 1 ? b[j] : 'x';
        }
        uint64_t x;
        memcpy(&x, b, 8);
        int want = 1;
        for (int j = 0; j < 8; j++)
            want &= mc_json_plain[b[j]];
        assert_int_equal(mc_json_word_plain(x), want);
    }
}

/* A NUL is a byte like the others: \u0000, and the rest follows. */
static void a_nul_is_written_and_the_rest_kept(void **state)
{
    (void)state;
    char *out = written("a\0b\0", 4);
    assert_string_equal(out, "\"a\\u0000b\\u0000\"");
    free(out);
}

static void whole_numbers_are_exact(void **state)
{
    (void)state;
    const int64_t values[] = {
        0, 1, -1, 9, 10, -10, 1795530959600, 9007199254740993LL, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char want[32], got[MC_JSON_INT_MAX];
        snprintf(want, sizeof(want), "%" PRId64, values[i]);
        assert_int_equal(mc_json_int_text(got, values[i]), strlen(want));
        assert_string_equal(got, want);
        mc_json_out_t o = {0};
        MC_JSON_PUT(&o, "[");
        mc_json_put_int(&o, values[i]);
        MC_JSON_PUT(&o, "]");
        char *out;
        size_t len;
        assert_int_equal(mc_json_finish(&o, &out, &len), 0);
        char bracketed[40];
        snprintf(bracketed, sizeof(bracketed), "[%s]", want);
        assert_string_equal(out, bracketed);
        free(out);
    }
}

/* A text may take limit bytes and not one more; finishing says so and
 * frees what was written. */
static void the_limit_holds(void **state)
{
    (void)state;
    mc_json_out_t o = {.limit = 10};
    mc_json_put_string(&o, "12345678", 8);
    assert_int_equal(o.rc, 0);
    char *out;
    size_t len;
    assert_int_equal(mc_json_finish(&o, &out, &len), 0);
    assert_string_equal(out, "\"12345678\"");
    free(out);

    o = (mc_json_out_t){.limit = 10};
    mc_json_put_string(&o, "1234\"678", 8); /* 11 bytes escaped */
    MC_JSON_PUT(&o, "x");
    assert_int_equal(mc_json_finish(&o, &out, &len), MC_ETOOBIG);
    assert_null(out);

    /* Room asked for an escape beyond what it takes does not count: a
     * text of exactly the limit, its last byte escaped as the buffer
     * grows, fits; one byte more does not. */
    char edge[253];
    memset(edge, 'a', 251);
    edge[251] = '"';
    edge[252] = '\0';
    o = (mc_json_out_t){.limit = 255};
    mc_json_put_string(&o, edge, 252);
    assert_int_equal(mc_json_finish(&o, &out, &len), 0);
    assert_int_equal(len, 255);
    free(out);
    o = (mc_json_out_t){.limit = 254};
    mc_json_put_string(&o, edge, 252);
    assert_int_equal(mc_json_finish(&o, &out, &len), MC_ETOOBIG);

    /* Past the first buffer: a long string grows it as it goes. */
    char big[5000];
    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = i % 7 ? 'a' : '"';
    big[sizeof(big) - 1] = '\0';
    same_as_cjson(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strings_are_escaped_as_cjson_escapes_them),
        cmocka_unit_test(an_escape_anywhere_in_a_word_is_found),
        cmocka_unit_test(the_word_test_agrees_with_the_byte_table),
        cmocka_unit_test(a_nul_is_written_and_the_rest_kept),
        cmocka_unit_test(whole_numbers_are_exact),
        cmocka_unit_test(the_limit_holds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
