/*
 * test_wsc.c - unit tests for the pure parts of the outbound client
 * (pxl_wsc_int.h): URL parsing, the reconnect schedule, and the
 * top-level key lookup and integer reader pxl-bench scans replies with.
 * No sockets. The 101 response head is tested with pxl_http.c
 * (test_http.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pxl/pxl.h"
#include "pxl_wsc_int.h"

/* ---- URLs ------------------------------------------------------------------
 */

static void url_ok(const char *url, bool tls, const char *host, bool ipv6,
                   unsigned port, bool port_given, const char *path)
{
        struct pxl_wsc_url u;
        const char *why = "unset";

        assert_int_equal(pxl_wsc_url_parse(url, &u, &why), PXL_OK);
        assert_null(why);
        assert_int_equal(u.tls, tls);
        assert_int_equal(u.host_len, strlen(host));
        assert_memory_equal(u.host, host, u.host_len);
        assert_int_equal(u.ipv6, ipv6);
        assert_int_equal(u.port, port);
        assert_int_equal(u.port_given, port_given);
        assert_int_equal(u.path_len, strlen(path));
        assert_memory_equal(u.path, path, u.path_len);
}

static void url_bad(const char *url, const char *why_part)
{
        struct pxl_wsc_url u;
        const char *why = NULL;

        assert_int_equal(pxl_wsc_url_parse(url, &u, &why), PXL_EINVAL);
        assert_non_null(why);
        if (strstr(why, why_part) == NULL)
                fail_msg("url %s: reason \"%s\" lacks \"%s\"", url, why,
                         why_part);
}

static void test_url_good(void **state)
{
        (void)state;
        url_ok("ws://example.com", false, "example.com", false, 80, false, "");
        url_ok("ws://example.com/", false, "example.com", false, 80, false,
               "/");
        url_ok("WSS://h:8443/p/q?token=a.b&x=1", true, "h", false, 8443, true,
               "/p/q?token=a.b&x=1");
        url_ok("wss://h", true, "h", false, 443, false, "");
        url_ok("ws://127.0.0.1:9001/ws", false, "127.0.0.1", false, 9001, true,
               "/ws");
        url_ok("ws://[::1]:9000/ws", false, "::1", true, 9000, true, "/ws");
        url_ok("ws://[fe80::1]", false, "fe80::1", true, 80, false, "");
        url_ok("ws://h?x=1", false, "h", false, 80, false, "?x=1");
        url_ok("ws://h:65535", false, "h", false, 65535, true, "");
        url_ok("ws://h:1/", false, "h", false, 1, true, "/");
}

static void test_url_bad(void **state)
{
        (void)state;
        url_bad(NULL, "no URL");
        url_bad("", "no URL");
        url_bad("http://h/ws", "scheme");
        url_bad("h:80/ws", "scheme");
        url_bad("ws://", "no host");
        url_bad("ws://:80/ws", "no host");
        url_bad("ws:///ws", "no host");
        url_bad("ws://[]:80", "no host");
        url_bad("ws://h:0", "range");
        url_bad("ws://h:65536", "range");
        url_bad("ws://h:123456", "port");
        url_bad("ws://h:", "port");
        url_bad("ws://h:8a", "port");
        url_bad("ws://h:80:81", "port");
        url_bad("ws://[::1", "unterminated");
        url_bad("ws://[::1]x", "port");
        url_bad("ws://user:pw@h/", "user info");
        url_bad("ws://h/ws#frag", "fragment");
        url_bad("ws://h#frag", "fragment");
        url_bad("ws://h/a b", "space");
        url_bad("ws://h/a\tb", "control");
        url_bad("ws://h/\x7f", "control");
}

/* ---- reconnect schedule
 * ------------------------------------------------------ */

static void test_backoff(void **state)
{
        static const unsigned want[] = {1000,  2000,  4000,  8000,
                                        16000, 30000, 30000, 30000};
        unsigned i;

        (void)state;
        for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                assert_int_equal(pxl_wsc_backoff_ms(i + 1, 1000, 30000),
                                 want[i]);
        assert_int_equal(pxl_wsc_backoff_ms(0, 1000, 30000), 1000);
        assert_int_equal(pxl_wsc_backoff_ms(31, 1000, 30000), 30000);
        assert_int_equal(pxl_wsc_backoff_ms(32, 1000, 30000), 30000);
        assert_int_equal(pxl_wsc_backoff_ms(33, 1000, 30000), 30000);
        assert_int_equal(pxl_wsc_backoff_ms(UINT_MAX, 1000, 30000), 30000);
        assert_int_equal(pxl_wsc_backoff_ms(3, 5000, 1000), 1000);
        assert_int_equal(pxl_wsc_backoff_ms(3, 0, 1000), 0);
        assert_int_equal(pxl_wsc_backoff_ms(20, UINT_MAX, UINT_MAX), UINT_MAX);
        assert_int_equal(pxl_wsc_backoff_ms(2, 100, 30000), 200);
}

/* ---- JSON lookups
 * ------------------------------------------------------------- */

/* pxl_wsc_json_find on an exact-size heap copy (overreads trip ASan). */
static bool find(const char *text, const char *key, struct pxl_json_span *s)
{
        size_t n = strlen(text);
        char *p = malloc(n ? n : 1);
        bool found;

        assert_non_null(p);
        memcpy(p, text, n);
        found = pxl_wsc_json_find(p, n, key, s);
        if (found) {
                /* Re-point into text so the caller can compare after free. */
                s->p = text + (s->p - p);
        }
        free(p);
        return found;
}

static void expect(const char *text, const char *key, const char *val,
                   enum pxl_json_kind kind)
{
        struct pxl_json_span s;

        if (!find(text, key, &s))
                fail_msg("%s: %s not found", text, key);
        assert_int_equal(s.len, strlen(val));
        assert_memory_equal(s.p, val, s.len);
        assert_int_equal(s.kind, kind);
}

static void test_json_find(void **state)
{
        static const char msg[] =
                "{\"type\":\"bench\",\"action\":\"echo\",\"response\":"
                "{\"t\":123,\"s\":[1,{\"t\":9}],\"q\":\"a\\\"}t\"}}";
        struct pxl_json_span s;

        (void)state;
        expect(msg, "type", "\"bench\"", PXL_JSON_STRING);
        expect(msg, "response",
               "{\"t\":123,\"s\":[1,{\"t\":9}],\"q\":\"a\\\"}t\"}",
               PXL_JSON_OBJECT);
        expect("{\"t\":123,\"s\":[1,{\"t\":9}]}", "t", "123", PXL_JSON_NUMBER);
        expect("{\"s\":[1,{\"t\":9}],\"t\":-4}", "t", "-4", PXL_JSON_NUMBER);
        expect(" {\n\t\"a\" : true , \"b\":false,\"c\":null,\"d\":[]} ", "a",
               "true", PXL_JSON_TRUE);
        expect("{\"a\":true,\"b\":false,\"c\":null}", "b", "false",
               PXL_JSON_FALSE);
        expect("{\"a\":true,\"b\":false,\"c\":null}", "c", "null",
               PXL_JSON_NULL);
        expect("{\"a\":1,\"a\":2}", "a", "2", PXL_JSON_NUMBER);
        expect("{\"k\\\"x\":1,\"k\":\"v\\\\\"}", "k", "\"v\\\\\"",
               PXL_JSON_STRING);
        expect("{\"a\":{\"b\":{\"c\":[[[]]]}},\"z\":0}", "z", "0",
               PXL_JSON_NUMBER);
        assert_false(find("{\"s\":{\"t\":1}}", "t", &s));
        assert_false(find("{}", "t", &s));
        assert_false(find("[\"t\",1]", "t", &s));
        assert_false(find("\"t\"", "t", &s));
        assert_false(find("", "t", &s));
        assert_false(find("{\"tt\":1}", "t", &s));
        assert_false(find("{\"t\":1", "x", &s));
        /* Broken text: never past the end, whatever it finds. */
        find("{\"t\":", "t", &s);
        find("{\"t\":\"abc", "t", &s);
        find("{\"t\":[1,2", "t", &s);
        find("{\"t", "t", &s);
        find("{\"t\\", "t", &s);
        find("{\"t\":\"\\", "t", &s);
}

static bool int_of(const char *text, long long *v)
{
        struct pxl_json_span s = {text, strlen(text), PXL_JSON_NUMBER};

        return pxl_wsc_json_int(&s, v);
}

static void test_json_int(void **state)
{
        long long v;

        (void)state;
        assert_true(int_of("0", &v));
        assert_int_equal(v, 0);
        assert_true(int_of("1234567890123", &v));
        assert_int_equal(v, 1234567890123LL);
        assert_true(int_of("-42", &v));
        assert_int_equal(v, -42);
        assert_true(int_of("9223372036854775807", &v));
        assert_true(v == LLONG_MAX);
        assert_true(int_of("-9223372036854775808", &v));
        assert_true(v == LLONG_MIN);
        assert_false(int_of("9223372036854775808", &v));
        assert_false(int_of("-9223372036854775809", &v));
        assert_false(int_of("99999999999999999999999", &v));
        assert_false(int_of("1.5", &v));
        assert_false(int_of("1e3", &v));
        assert_false(int_of("", &v));
        assert_false(int_of("-", &v));
        assert_false(int_of("\"1\"", &v));
        assert_false(int_of("true", &v));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_url_good),
                cmocka_unit_test(test_url_bad),
                cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_json_find),
                cmocka_unit_test(test_json_int),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
