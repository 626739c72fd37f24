/* Tests of interface/static.c: path decoding that cannot leave the web root,
 * symlinks, content types and ETags. */
#include "interface/static.h"
#include "common/error.h"
#include "tests/support/guard.h"

#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static int decode(const char *path, char *out, size_t size)
{
    guard_t g;
    size_t len = strlen(path);
    char *copy = (char *)guard_copy(&g, path, len);
    int rc = ifc_static_decode(copy, len, out, size);
    guard_free(&g);
    return rc;
}

static void expect_ok(const char *path, const char *want)
{
    char out[IFC_STATIC_PATH_MAX];
    assert_int_equal(decode(path, out, sizeof(out)), 0);
    assert_string_equal(out, want);
}

static void expect_refused(const char *path)
{
    char out[IFC_STATIC_PATH_MAX];
    assert_int_equal(decode(path, out, sizeof(out)), MC_EINVAL);
}

static void paths_are_decoded(void **state)
{
    (void)state;
    expect_ok("app.js", "app.js");
    expect_ok("css/site.css", "css/site.css");
    expect_ok("/css//./site.css", "css/site.css");
    expect_ok("a%20b.txt", "a b.txt");
    expect_ok("%E2%82%AC.txt", "\xe2\x82\xac.txt");
    expect_ok("", "index.html");
    expect_ok("docs/", "docs/index.html");
    expect_ok("x..y", "x..y");
}

static void escapes_from_the_root_are_refused(void **state)
{
    (void)state;
    expect_refused("..");
    expect_refused("../etc/passwd");
    expect_refused("a/../../etc/passwd");
    expect_refused("%2e%2e/etc/passwd");
    expect_refused("%2E%2E/x");
    expect_refused(".%2e/x");
    expect_refused("a%2f..%2fb");
    expect_refused("a%2Fb");
    expect_refused("a%5cb");
    expect_refused("a\\b");
    expect_refused("a%00.txt");
    expect_refused("a%0a");
    expect_refused("a%");
    expect_refused("a%2");
    expect_refused("a%zz");
    expect_refused(".git/config");
    expect_refused("x/.env");
    char out[8];
    assert_int_equal(decode("abcdefghijk", out, sizeof(out)), MC_ETOOBIG);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void files_resolve_only_under_the_root(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/static_test.XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char path[PATH_MAX], root[PATH_MAX], target[PATH_MAX];
    snprintf(path, sizeof(path), "%s/web", tmpl);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/web/sub", tmpl);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/secret.txt", tmpl);
    write_file(path, "secret");
    snprintf(path, sizeof(path), "%s/web/app.js", tmpl);
    write_file(path, "let x = 1;\n");
    snprintf(path, sizeof(path), "%s/web/out.txt", tmpl);
    snprintf(target, sizeof(target), "%s/secret.txt", tmpl);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof(path), "%s/web/in.js", tmpl);
    assert_int_equal(symlink("app.js", path), 0);
    snprintf(path, sizeof(path), "%s/web", tmpl);
    assert_int_equal(ifc_static_root(path, root, sizeof(root)), 0);

    ifc_static_file_t f;
    assert_int_equal(ifc_static_open(root, "app.js", &f), 0);
    assert_int_equal(f.size, 11);
    assert_string_equal(f.content_type, "text/javascript; charset=utf-8");
    char etag[IFC_STATIC_ETAG_MAX];
    ifc_static_etag(f.size, f.mtime, etag);
    assert_string_equal(f.etag, etag);
    close(f.fd);
    assert_int_equal(ifc_static_open(root, "in.js", &f), 0);
    close(f.fd);
    assert_int_equal(ifc_static_open(root, "out.txt", &f), MC_ENOTFOUND);
    assert_int_equal(ifc_static_open(root, "sub", &f), MC_ENOTFOUND);
    assert_int_equal(ifc_static_open(root, "missing.css", &f), MC_ENOTFOUND);
    assert_int_equal(ifc_static_root("/no/such/dir", root, sizeof(root)), MC_ENOTFOUND);

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
    assert_int_equal(system(cmd), 0);
}

static void content_types_and_etags(void **state)
{
    (void)state;
    assert_string_equal(ifc_static_content_type("a/index.HTML"), "text/html; charset=utf-8");
    assert_string_equal(ifc_static_content_type("s.css"), "text/css; charset=utf-8");
    assert_string_equal(ifc_static_content_type("i.png"), "image/png");
    assert_string_equal(ifc_static_content_type("i.svg"), "image/svg+xml");
    assert_string_equal(ifc_static_content_type("noext"), "application/octet-stream");
    assert_string_equal(ifc_static_content_type("dir.d/noext"), "application/octet-stream");
    char e[IFC_STATIC_ETAG_MAX];
    ifc_static_etag(500, 0x65a1b2c3, e);
    assert_string_equal(e, "\"1f4-65a1b2c3\"");
    const char *v1 = "\"x\", W/\"1f4-65a1b2c3\"";
    assert_true(ifc_static_etag_match(v1, strlen(v1), e));
    assert_true(ifc_static_etag_match("*", 1, e));
    assert_false(ifc_static_etag_match("\"1f4\"", 5, e));
    assert_false(ifc_static_etag_match("", 0, e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(paths_are_decoded),
        cmocka_unit_test(escapes_from_the_root_are_refused),
        cmocka_unit_test(files_resolve_only_under_the_root),
        cmocka_unit_test(content_types_and_etags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
