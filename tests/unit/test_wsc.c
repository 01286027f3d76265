/*
 * test_wsc.c - unit tests for the pure parts of the outbound client
 * (pxl_wsc_int.h): URL parsing, the 101 response head (also split at
 * every byte), the reconnect schedule, and the top-level key lookup and
 * integer reader pxl-bench scans replies with. No sockets.
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

/* ---- the 101 response
 * -------------------------------------------------------- */

static const char resp_101[] =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "\r\n";

static void test_response_101(void **state)
{
        struct pxl_wsc_response r;
        char buf[sizeof(resp_101) + 8];
        size_t n = strlen(resp_101);

        (void)state;
        /* Frames may follow the head in the same read. */
        memcpy(buf, resp_101, n);
        memcpy(buf + n, "\x81\x02hi", 4);
        assert_int_equal(pxl_wsc_parse_response(buf, n + 4, 8192, &r),
                         (ssize_t)n);
        assert_int_equal(r.status, 101);
        assert_int_equal(r.reason.len, strlen("Switching Protocols"));
        assert_memory_equal(r.reason.p, "Switching Protocols", r.reason.len);
        assert_int_equal(r.upgrade.len, 9);
        assert_memory_equal(r.upgrade.p, "websocket", 9);
        assert_true(r.connection_upgrade);
        assert_int_equal(r.accept.len, 28);
        assert_memory_equal(r.accept.p, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28);
        assert_null(r.extensions.p);
        assert_null(r.protocol.p);
        assert_int_equal(r.head_len, n);
}

static void test_response_split(void **state)
{
        struct pxl_wsc_response r;
        size_t n = strlen(resp_101), i;

        (void)state;
        /* Every prefix is "need more"; exact-size copies catch overreads. */
        for (i = 0; i < n; i++) {
                char *p = malloc(i ? i : 1);

                assert_non_null(p);
                memcpy(p, resp_101, i);
                assert_int_equal(pxl_wsc_parse_response(p, i, 8192, &r),
                                 PXL_HTTP_NEED_MORE);
                free(p);
        }
}

static void test_response_headers(void **state)
{
        static const char text[] =
                "HTTP/1.1 101 OK\r\n"
                "upgrade:WebSocket\r\n"
                "connection: keep-alive\r\n"
                "CONNECTION:  keep-alive, Upgrade \r\n"
                "sec-websocket-accept:   abc  \r\n"
                "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                "Sec-WebSocket-Protocol: chat\r\n"
                "X-Other: \t tab \r\n"
                "\r\n";
        struct pxl_wsc_response r;

        (void)state;
        assert_true(pxl_wsc_parse_response(text, strlen(text), 8192, &r) > 0);
        assert_true(r.connection_upgrade);
        assert_int_equal(r.upgrade.len, 9);
        assert_memory_equal(r.upgrade.p, "WebSocket", 9);
        assert_int_equal(r.accept.len, 3);
        assert_memory_equal(r.accept.p, "abc", 3);
        assert_non_null(r.extensions.p);
        assert_non_null(r.protocol.p);
}

static void test_response_refusal(void **state)
{
        static const char text[] = "HTTP/1.1 401 Unauthorized\r\n"
                                   "Content-Type: text/plain; charset=utf-8\r\n"
                                   "Content-Length: 13\r\n"
                                   "Connection: close\r\n"
                                   "\r\n"
                                   "Invalid token";
        struct pxl_wsc_response r;
        ssize_t n = pxl_wsc_parse_response(text, strlen(text), 8192, &r);

        (void)state;
        assert_int_equal(n, (ssize_t)(strlen(text) - 13));
        assert_int_equal(r.status, 401);
        assert_int_equal(r.reason.len, 12);
        assert_true(r.has_content_length);
        assert_int_equal(r.content_length, 13);
        assert_false(r.connection_upgrade);
        /* A status line without a reason phrase is fine. */
        assert_true(pxl_wsc_parse_response("HTTP/1.0 503\r\n\r\n", 16, 8192,
                                           &r) > 0);
        assert_int_equal(r.status, 503);
        assert_int_equal(r.reason.len, 0);
}

static void test_response_bad(void **state)
{
        static const char *const bad[] = {
                "HTTP/2 101 x\r\n\r\n",
                "HTTP/1.1 10 x\r\n\r\n",
                "HTTP/1.1 1011 x\r\n\r\n",
                "http/1.1 101 x\r\n\r\n",
                "HTTP/1.1 101x\r\n\r\n",
                "HTTP/1.1 101 x\r\nUpgrade websocket\r\n\r\n",
                "HTTP/1.1 101 x\r\n folded: no\r\n\r\n",
                "HTTP/1.1 101 x\r\nA: b\nC: d\r\n\r\n",
                "HTTP/1.1 101 x\r\nA: b\x01\r\n\r\n",
                "HTTP/1.1 101 x\r\n: empty\r\n\r\n",
                "HTTP/1.1 101 x\r\nContent-Length: 1x\r\n\r\n",
                "HTTP/1.1 101 x\r\nContent-Length: 1234567890123\r\n\r\n",
                "HTTP/1.1 101 x\r\nBad Name: y\r\n\r\n",
        };
        struct pxl_wsc_response r;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (pxl_wsc_parse_response(bad[i], strlen(bad[i]), 8192, &r) !=
                    PXL_HTTP_BAD)
                        fail_msg("accepted %s", bad[i]);
        }
}

static void test_response_too_large(void **state)
{
        struct pxl_wsc_response r;
        char buf[300];

        (void)state;
        memset(buf, 'a', sizeof(buf));
        memcpy(buf, "HTTP/1.1 101 x\r\nX: ", 19);
        assert_int_equal(pxl_wsc_parse_response(buf, 100, 256, &r),
                         PXL_HTTP_NEED_MORE);
        assert_int_equal(pxl_wsc_parse_response(buf, 256, 256, &r),
                         PXL_HTTP_TOO_LARGE);
        assert_int_equal(pxl_wsc_parse_response(buf, sizeof(buf), 256, &r),
                         PXL_HTTP_TOO_LARGE);
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
                cmocka_unit_test(test_response_101),
                cmocka_unit_test(test_response_split),
                cmocka_unit_test(test_response_headers),
                cmocka_unit_test(test_response_refusal),
                cmocka_unit_test(test_response_bad),
                cmocka_unit_test(test_response_too_large),
                cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_json_find),
                cmocka_unit_test(test_json_int),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
