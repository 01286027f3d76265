/*
 * test_urlpath.c - unit tests for framework/pxl_urlpath.c: request paths
 * to relative file paths (every escape attempt refused), content types
 * and HTTP dates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "pxl_urlpath.h"

static int resolve(const char *path, char *out, size_t cap, bool *index)
{
        return pxl_urlpath_resolve(path, strlen(path), out, cap, index);
}

static void good_paths(void **state)
{
        static const struct {
                const char *path, *file;
                bool index;
        } v[] = {
                {"/", "index.html", true},
                {"/index.html", "index.html", false},
                {"/app.js", "app.js", false},
                {"/docs/", "docs/index.html", true},
                {"/docs", "docs", false},
                {"//a///b.css", "a/b.css", false},
                {"/./a/./b", "a/b", false},
                {"/a/.", "a/index.html", true},
                {"/%61%62c.txt", "abc.txt", false},
                {"/caf%C3%A9.html", "caf\xc3\xa9.html", false},
                {"/a%20b", "a b", false},
                {"/.well-known/x", ".well-known/x", false},
                {"/a..b/c..", "a..b/c..", false},
        };
        char out[256];
        bool index;

        (void)state;
        for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
                assert_int_equal(resolve(v[i].path, out, sizeof(out), &index),
                                 0);
                assert_string_equal(out, v[i].file);
                assert_int_equal(index, v[i].index);
        }
}

static void escapes_refused(void **state)
{
        static const char *const bad[] = {
                "",              /* no path */
                "a/b",           /* not from the root */
                "/..",           "/../etc/passwd", "/a/../../b",
                "/a/..",         "/%2e%2e/x",      "/%2E%2E",
                "/.%2e/x",       "/a%2fb",         "/a%2F..%2Fb",
                "/a%5cb",        "/a\\b",          "/%00",
                "/a%00.html",    "/%",             "/%4",
                "/%zz",          "/a%0a",          "/\x01",
                "/.git/config",  "/.env",          "/a/.hidden",
                "/%2egit",
        };
        char out[256];
        bool index;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                int rc = resolve(bad[i], out, sizeof(out), &index);

                if (rc != 400)
                        fail_msg("\"%s\" gave %d, want 400", bad[i], rc);
        }
        /* A NUL in the middle of the bytes, not only escaped. */
        assert_int_equal(pxl_urlpath_resolve("/a\0b", 4, out, sizeof(out),
                                             &index),
                         400);
}

static void too_long(void **state)
{
        char out[8];
        bool index;

        (void)state;
        assert_int_equal(resolve("/abcdefgh", out, sizeof(out), &index), 414);
        assert_int_equal(resolve("/abcdefg", out, sizeof(out), &index), 0);
        assert_int_equal(resolve("/", out, sizeof(out), &index), 414);
        assert_int_equal(resolve("/abc/def/", out, sizeof(out), &index), 414);
}

static void types(void **state)
{
        (void)state;
        assert_string_equal(pxl_urlpath_type("index.html"),
                            "text/html; charset=utf-8");
        assert_string_equal(pxl_urlpath_type("a/pxl.JS"),
                            "text/javascript; charset=utf-8");
        assert_string_equal(pxl_urlpath_type("x.css"),
                            "text/css; charset=utf-8");
        assert_string_equal(pxl_urlpath_type("i.png"), "image/png");
        assert_string_equal(pxl_urlpath_type("m.wasm"), "application/wasm");
        assert_string_equal(pxl_urlpath_type("noext"),
                            "application/octet-stream");
        assert_string_equal(pxl_urlpath_type("dir.d/noext"),
                            "application/octet-stream");
}

static void dates(void **state)
{
        char out[30];

        (void)state;
        pxl_http_date(784111777, out);
        assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_int_equal(pxl_http_date_parse(out, strlen(out)), 784111777);
        assert_int_equal(pxl_http_date_parse("Sun, 06 Nov 1994 08:49:37 UTC",
                                             29),
                         -1);
        assert_int_equal(pxl_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT",
                                             30),
                         -1);
        assert_int_equal(pxl_http_date_parse("Sun, 06 Foo 1994 08:49:37 GMT",
                                             29),
                         -1);
        assert_int_equal(pxl_http_date_parse("Sun, 06 Nov 1994 25:49:37 GMT",
                                             29),
                         -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(good_paths), cmocka_unit_test(escapes_refused),
                cmocka_unit_test(too_long),   cmocka_unit_test(types),
                cmocka_unit_test(dates),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
