/*
 * test_http.c - unit tests for pxl_http.c: request-head parsing (also
 * split at every byte), the RFC 6455 checks in PROTOCOL.md's order, the
 * accept key, the response texts and query parameters; and, for the
 * outbound client, response-head parsing (also split at every byte) and
 * the checks of a 101. No sockets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pxl_http.h"

#define MAX_HEAD 8192

static const char chrome_req[] =
        "GET /ws?token=abc.def HTTP/1.1\r\n"
        "Host: localhost:8080\r\n"
        "Connection: Upgrade\r\n"
        "Pragma: no-cache\r\n"
        "Cache-Control: no-cache\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
        "Upgrade: websocket\r\n"
        "Origin: http://localhost:8080\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Accept-Encoding: gzip, deflate, br\r\n"
        "Accept-Language: en-US,en;q=0.9\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; "
        "client_max_window_bits\r\n"
        "\r\n";

static const char python_req[] =
        "GET /ws HTTP/1.1\r\n"
        "Host: 127.0.0.1:9001\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; "
        "client_max_window_bits\r\n"
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x\r\n"
        "User-Agent: Python/3.11 websockets/10.4\r\n"
        "\r\n";

static const char firefox_req[] =
        "GET /ws HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) "
        "Gecko/20100101 Firefox/121.0\r\n"
        "Accept: */*\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Origin: https://example.com\r\n"
        "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n"
        "Connection: keep-alive, Upgrade\r\n"
        "Upgrade: websocket\r\n"
        "\r\n";

static ssize_t parse(const char *s, struct pxl_http_request *r)
{
        return pxl_http_parse_request(s, strlen(s), MAX_HEAD, r);
}

static void assert_span(struct pxl_http_span sp, const char *text)
{
        if (text == NULL) {
                assert_null(sp.p);
                return;
        }
        assert_non_null(sp.p);
        assert_int_equal(sp.len, strlen(text));
        assert_memory_equal(sp.p, text, sp.len);
}

/* Status of a head given as a string, checked against "/ws". */
static int status_of(const char *s)
{
        struct pxl_http_request r;
        ssize_t n = parse(s, &r);

        if (n <= 0)
                fail_msg("parse %zd for: %s", n, s);
        return pxl_http_check_upgrade(&r, "/ws");
}

static void test_chrome(void **state)
{
        struct pxl_http_request r;
        char key[PXL_WS_ACCEPT_LEN + 1];

        (void)state;
        assert_int_equal(parse(chrome_req, &r), (ssize_t)strlen(chrome_req));
        assert_int_equal(r.head_len, strlen(chrome_req));
        assert_span(r.method, "GET");
        assert_span(r.target, "/ws?token=abc.def");
        assert_span(r.path, "/ws");
        assert_span(r.query, "token=abc.def");
        assert_int_equal(r.version_major, 1);
        assert_int_equal(r.version_minor, 1);
        assert_span(r.host, "localhost:8080");
        assert_span(r.upgrade, "websocket");
        assert_span(r.connection, "Upgrade");
        assert_true(r.connection_upgrade);
        assert_span(r.ws_key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_span(r.ws_version, "13");
        assert_span(r.origin, "http://localhost:8080");
        assert_span(r.authorization, NULL);
        assert_false(r.duplicate_header);
        assert_int_equal(pxl_http_check_upgrade(&r, "/ws"), 0);

        pxl_ws_accept_key(r.ws_key.p, r.ws_key.len, key);
        assert_string_equal(key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_python_and_firefox(void **state)
{
        struct pxl_http_request r;

        (void)state;
        assert_int_equal(parse(python_req, &r), (ssize_t)strlen(python_req));
        assert_span(r.path, "/ws");
        assert_span(r.query, NULL);
        assert_span(r.authorization, "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x");
        assert_span(r.origin, NULL);
        assert_int_equal(pxl_http_check_upgrade(&r, "/ws"), 0);
        assert_int_equal(pxl_http_check_upgrade(&r, "/"), 404);

        assert_int_equal(parse(firefox_req, &r), (ssize_t)strlen(firefox_req));
        assert_span(r.connection, "keep-alive, Upgrade");
        assert_int_equal(pxl_http_check_upgrade(&r, "/ws"), 0);
}

static void test_accept_key(void **state)
{
        char key[PXL_WS_ACCEPT_LEN + 1];

        (void)state;
        /* RFC 6455 1.3. */
        pxl_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, key);
        assert_string_equal(key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        /* Only key_len bytes are read. */
        pxl_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==trailing", 24, key);
        assert_string_equal(key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        /* A second well-known pair, checked with Python hashlib. */
        pxl_ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, key);
        assert_string_equal(key, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
        assert_int_equal(strlen(key), PXL_WS_ACCEPT_LEN);
}

/* Every split of a head is NEED_MORE until the last byte has arrived. */
static void check_splits(const char *req)
{
        size_t n = strlen(req);
        struct pxl_http_request r;

        for (size_t k = 0; k < n; k++) {
                /* A heap copy of exactly k bytes lets ASan see overreads. */
                char *b = malloc(k ? k : 1);

                assert_non_null(b);
                memcpy(b, req, k);
                if (pxl_http_parse_request(b, k, MAX_HEAD, &r) !=
                    PXL_HTTP_NEED_MORE)
                        fail_msg("split at %zu is not NEED_MORE", k);
                free(b);
        }
        assert_int_equal(pxl_http_parse_request(req, n, MAX_HEAD, &r),
                         (ssize_t)n);
}

static void test_splits(void **state)
{
        (void)state;
        check_splits(chrome_req);
        check_splits(python_req);
        check_splits(firefox_req);
}

static void test_pipelined_bytes(void **state)
{
        char buf[1024];
        struct pxl_http_request r;
        size_t n = strlen(python_req);

        (void)state;
        memcpy(buf, python_req, n);
        /* A masked frame right behind the head, even with a bare LF. */
        memcpy(buf + n, "\x81\x85\n\0\r\x01xxxxx", 12);
        assert_int_equal(pxl_http_parse_request(buf, n + 12, MAX_HEAD, &r),
                         (ssize_t)n);
        assert_int_equal(r.head_len, n);
}

static void test_too_large(void **state)
{
        const char *head = "GET /ws HTTP/1.1\r\nHost: a\r\n\r\n"; /* 29 */
        size_t n = strlen(head);
        struct pxl_http_request r;
        char big[200];

        (void)state;
        assert_int_equal(n, 29);
        /* The blank line ends exactly at max_head: accepted. */
        assert_int_equal(pxl_http_parse_request(head, n, n, &r), (ssize_t)n);
        /* One byte past max_head. */
        assert_int_equal(pxl_http_parse_request(head, n, n - 1, &r),
                         PXL_HTTP_TOO_LARGE);
        /* No blank line yet: NEED_MORE up to max_head, then TOO_LARGE. */
        memset(big, 0, sizeof(big));
        memcpy(big, "GET /ws HTTP/1.1\r\nX-Pad: ", 25);
        memset(big + 25, 'a', sizeof(big) - 25);
        assert_int_equal(pxl_http_parse_request(big, 100, 100, &r),
                         PXL_HTTP_NEED_MORE);
        assert_int_equal(pxl_http_parse_request(big, 101, 100, &r),
                         PXL_HTTP_TOO_LARGE);
        assert_int_equal(pxl_http_parse_request(big, sizeof(big), 100, &r),
                         PXL_HTTP_TOO_LARGE);
        /* A blank line beyond max_head does not rescue it. */
        memcpy(big + 150, "\r\n\r\n", 4);
        assert_int_equal(pxl_http_parse_request(big, 154, 100, &r),
                         PXL_HTTP_TOO_LARGE);
        assert_int_equal(pxl_http_parse_request(big, 154, 154, &r), 154);
        assert_int_equal(pxl_http_parse_request(big, 0, 0, &r),
                         PXL_HTTP_NEED_MORE);
        assert_int_equal(pxl_http_parse_request(NULL, 0, MAX_HEAD, &r),
                         PXL_HTTP_NEED_MORE);
        assert_int_equal(pxl_http_parse_request(big, 1, 0, &r),
                         PXL_HTTP_TOO_LARGE);
}

static void test_malformed(void **state)
{
        static const char *const bad[] = {
                /* line endings */
                "GET /ws HTTP/1.1\nHost: a\r\n\r\n",
                "GET /ws HTTP/1.1\r\nHost: a\n\r\n",
                "GET /ws HTTP/1.1\r\nHost: a\r\n\n",
                "GET /ws HTTP/1.1\r\nHost: a\rb\r\n\r\n",
                "GET /ws HTTP/1.1\r\r\nHost: a\r\n\r\n",
                "\r\nGET /ws HTTP/1.1\r\nHost: a\r\n\r\n",
                /* request line */
                "GET /ws\r\n\r\n",
                "GET\r\n\r\n",
                "GET /ws HTTP/1.1 x\r\n\r\n",
                "GET  /ws HTTP/1.1\r\n\r\n",
                "GET /ws  HTTP/1.1\r\n\r\n",
                " GET /ws HTTP/1.1\r\n\r\n",
                "GET /ws HTTP/1.1 \r\n\r\n",
                "GET\t/ws HTTP/1.1\r\n\r\n",
                "GET /w s HTTP/1.1\r\n\r\n",
                "GET /ws http/1.1\r\n\r\n",
                "GET /ws HTTP/1.10\r\n\r\n",
                "GET /ws HTTP/11\r\n\r\n",
                "GET /ws HTTP/1\r\n\r\n",
                "GET /ws HTTP/a.b\r\n\r\n",
                "GET /ws HTTP/1.1x\r\n\r\n",
                "GET /ws HTTPS/1.1\r\n\r\n",
                "G(T /ws HTTP/1.1\r\n\r\n",
                "GET * HTTP/1.1\r\n\r\n",
                "GET ws HTTP/1.1\r\n\r\n",
                "GET ?a HTTP/1.1\r\n\r\n",
                "GET 1http://h/ws HTTP/1.1\r\n\r\n",
                "GET http:/h/ws HTTP/1.1\r\n\r\n",
                "GET http//h/ws HTTP/1.1\r\n\r\n",
                "GET /w\x7fs HTTP/1.1\r\n\r\n",
                "GET /w\xc3\xa9 HTTP/1.1\r\n\r\n",
                /* header lines */
                "GET /ws HTTP/1.1\r\nHost : a\r\n\r\n",
                "GET /ws HTTP/1.1\r\nHost\t: a\r\n\r\n",
                "GET /ws HTTP/1.1\r\nX Y: a\r\n\r\n",
                "GET /ws HTTP/1.1\r\nHost a\r\n\r\n",
                "GET /ws HTTP/1.1\r\n: a\r\n\r\n",
                "GET /ws HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",
                "GET /ws HTTP/1.1\r\nHost: a\r\n\tb\r\n\r\n",
                "GET /ws HTTP/1.1\r\n Host: a\r\n\r\n",
                "GET /ws HTTP/1.1\r\nHost: a\x01\r\n\r\n",
                "GET /ws HTTP/1.1\r\nHost: a\x7f\r\n\r\n",
                "GET /ws HTTP/1.1\r\nHo\x01st: a\r\n\r\n",
                "GET /ws HTTP/1.1\r\nH\xc3\xa9: a\r\n\r\n",
                "GET /ws HTTP/1.1\r\nHost: a\r\nX-Y\r\n\r\n",
        };
        struct pxl_http_request r;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ssize_t n = parse(bad[i], &r);

                if (n != PXL_HTTP_BAD)
                        fail_msg("#%zu: %zd for: %s", i, n, bad[i]);
        }
}

static void test_nul_and_early_bad(void **state)
{
        static const char nul[] = "GET /ws HTTP/1.1\r\nHost: a\0b\r\n\r\n";
        static const char ok_chars[] =
                "GET /ws HTTP/1.1\r\nX-A: \t tab \xc3\xa9 ~!\"\r\n\r\n";
        struct pxl_http_request r;

        (void)state;
        assert_int_equal(
                pxl_http_parse_request(nul, sizeof(nul) - 1, MAX_HEAD, &r),
                PXL_HTTP_BAD);
        /* Garbage is refused before the blank line arrives. */
        assert_int_equal(pxl_http_parse_request("GET /ws HTTP/1.1\r\nHost: \0",
                                                25, MAX_HEAD, &r),
                         PXL_HTTP_BAD);
        assert_int_equal(
                pxl_http_parse_request("GET /ws HTTP/1.1\n", 17, MAX_HEAD, &r),
                PXL_HTTP_BAD);
        assert_int_equal(
                pxl_http_parse_request("\x16\x03\x01\x02\x00", 5, MAX_HEAD, &r),
                PXL_HTTP_BAD);
        assert_int_equal(
                pxl_http_parse_request("GET /ws HTTP/1.1\r", 17, MAX_HEAD, &r),
                PXL_HTTP_NEED_MORE);
        /* HT, SP and obs-text are fine in values. */
        assert_int_equal(parse(ok_chars, &r), (ssize_t)strlen(ok_chars));
}

static void test_headers(void **state)
{
        struct pxl_http_request r;

        (void)state;
        /* Names are case-insensitive, values trimmed of SP and HT. */
        assert_true(parse("GET /ws HTTP/1.1\r\n"
                          "hOsT:  \t a b \t \r\n"
                          "UPGRADE:WebSocket\r\n"
                          "sec-websocket-key:dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "SEC-WEBSOCKET-VERSION:    13   \r\n"
                          "connection: upgrade\r\n"
                          "ORIGIN: null\r\n"
                          "authorization:\r\n"
                          "X-Other: Host: b\r\n"
                          "\r\n",
                          &r) > 0);
        assert_span(r.host, "a b");
        assert_span(r.upgrade, "WebSocket");
        assert_span(r.ws_key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_span(r.ws_version, "13");
        assert_span(r.origin, "null");
        assert_span(r.authorization, "");
        assert_false(r.duplicate_header);
        assert_int_equal(pxl_http_check_upgrade(&r, "/ws"), 0);

        /* Headers that look alike are not ours. */
        assert_true(parse("GET /ws HTTP/1.1\r\nHostx: a\r\nXHost: b\r\n"
                          "Sec-WebSocket-Key2: c\r\n\r\n",
                          &r) > 0);
        assert_span(r.host, NULL);
        assert_span(r.ws_key, NULL);
}

static void test_duplicates(void **state)
{
        static const char *const dup[] = {
                "Host: a\r\n",
                "Upgrade: websocket\r\n",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                "Sec-WebSocket-Version: 13\r\n",
                "Authorization: Bearer x\r\n",
                "Origin: http://a\r\n",
        };
        static const char base[] =
                "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer x\r\n"
                "Origin: http://a\r\n";
        struct pxl_http_request r;
        char buf[512];

        (void)state;
        snprintf(buf, sizeof(buf), "%s\r\n", base);
        assert_int_equal(status_of(buf), 0);
        for (size_t i = 0; i < sizeof(dup) / sizeof(dup[0]); i++) {
                snprintf(buf, sizeof(buf), "%s%s\r\n", base, dup[i]);
                assert_true(parse(buf, &r) > 0);
                assert_true(r.duplicate_header);
                if (pxl_http_check_upgrade(&r, "/ws") != 400)
                        fail_msg("duplicate %s is not 400", dup[i]);
                /* The first occurrence is kept. */
                assert_span(r.host, "a");
        }

        /* Connection is a list: repeats join, any one may say upgrade. */
        assert_true(parse("GET /ws HTTP/1.1\r\nHost: a\r\n"
                          "Connection: keep-alive\r\nUpgrade: websocket\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n",
                          &r) > 0);
        assert_false(r.duplicate_header);
        assert_true(r.connection_upgrade);
        assert_int_equal(pxl_http_check_upgrade(&r, "/ws"), 0);
        assert_true(parse("GET /ws HTTP/1.1\r\nHost: a\r\n"
                          "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Connection: keep-alive\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n",
                          &r) > 0);
        assert_true(r.connection_upgrade);
        assert_int_equal(pxl_http_check_upgrade(&r, "/ws"), 0);
}

static void test_targets(void **state)
{
        struct pxl_http_request r;

        (void)state;
        assert_true(parse("GET http://host:8080/ws?x=1 HTTP/1.1\r\n\r\n", &r) >
                    0);
        assert_span(r.target, "http://host:8080/ws?x=1");
        assert_span(r.path, "/ws");
        assert_span(r.query, "x=1");
        assert_true(parse("GET HTTPS://h/a/b HTTP/1.1\r\n\r\n", &r) > 0);
        assert_span(r.path, "/a/b");
        assert_span(r.query, NULL);
        assert_true(parse("GET ws+x.y-z://h/ws HTTP/1.1\r\n\r\n", &r) > 0);
        assert_span(r.path, "/ws");
        assert_true(parse("GET http://host HTTP/1.1\r\n\r\n", &r) > 0);
        assert_span(r.path, "/");
        assert_true(parse("GET http://host?q HTTP/1.1\r\n\r\n", &r) > 0);
        assert_span(r.path, "/");
        assert_span(r.query, "q");
        assert_true(parse("GET http://user@h:1/ws/ HTTP/1.1\r\n\r\n", &r) > 0);
        assert_span(r.path, "/ws/");

        /* The query starts at the first '?'. */
        assert_true(parse("GET /ws?a=1?b=2 HTTP/1.1\r\n\r\n", &r) > 0);
        assert_span(r.path, "/ws");
        assert_span(r.query, "a=1?b=2");
        assert_true(parse("GET /ws? HTTP/1.1\r\n\r\n", &r) > 0);
        assert_span(r.query, "");
        assert_true(parse("GET / HTTP/1.1\r\n\r\n", &r) > 0);
        assert_span(r.path, "/");
        assert_span(r.query, NULL);
        assert_true(parse("GET /%77s HTTP/1.1\r\n\r\n", &r) > 0);
        assert_span(r.path, "/%77s");
}

/* A valid upgrade with one header line replaced (or removed when ""). */
static int status_with(const char *name, const char *line)
{
        static const char *const lines[][2] = {
                {"host", "Host: server.example.com\r\n"},
                {"upgrade", "Upgrade: websocket\r\n"},
                {"connection", "Connection: Upgrade\r\n"},
                {"key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"},
                {"version", "Sec-WebSocket-Version: 13\r\n"},
        };
        char buf[1024];
        size_t n = 0;

        n += (size_t)snprintf(buf, sizeof(buf), "GET /ws HTTP/1.1\r\n");
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
                n += (size_t)snprintf(
                        buf + n, sizeof(buf) - n, "%s",
                        strcmp(lines[i][0], name) == 0 ? line : lines[i][1]);
        snprintf(buf + n, sizeof(buf) - n, "\r\n");
        return status_of(buf);
}

static void test_check_fields(void **state)
{
        static const struct {
                const char *name, *line;
                int status;
        } t[] = {
                {"", "", 0},
                /* Host */
                {"host", "", 400},
                {"host", "Host:\r\n", 400},
                /* Upgrade */
                {"upgrade", "", 400},
                {"upgrade", "Upgrade: h2c\r\n", 400},
                {"upgrade", "Upgrade: websockets\r\n", 400},
                {"upgrade", "Upgrade: WebSocket\r\n", 0},
                {"upgrade", "Upgrade: h2c, websocket\r\n", 0},
                /* Connection */
                {"connection", "", 400},
                {"connection", "Connection: close\r\n", 400},
                {"connection", "Connection: keep-alive\r\n", 400},
                {"connection", "Connection: upgraded\r\n", 400},
                {"connection", "Connection: keep-alive,upgrade\r\n", 0},
                {"connection", "Connection: UPGRADE , close\r\n", 0},
                /* Sec-WebSocket-Key */
                {"key", "", 400},
                {"key", "Sec-WebSocket-Key:\r\n", 400},
                {"key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n", 400},
                {"key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n", 400},
                {"key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ===\r\n",
                 400},
                /* 15 and 17 bytes */
                {"key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\n", 400},
                {"key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==Zg==\r\n",
                 400},
                {"key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ!==\r\n", 400},
                {"key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j-_==\r\n", 400},
                {"key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ===\r\n", 400},
                {"key", "Sec-WebSocket-Key: ========================\r\n", 400},
                {"key", "Sec-WebSocket-Key: +/+/+/+/+/+/+/+/+/+/+w==\r\n", 0},
                /* Sec-WebSocket-Version: missing is 426 too (pxl_http.c) */
                {"version", "", 400},
                {"version", "Sec-WebSocket-Version: 8\r\n", 426},
                {"version", "Sec-WebSocket-Version: 013\r\n", 426},
                {"version", "Sec-WebSocket-Version: 13, 8\r\n", 426},
                {"version", "Sec-WebSocket-Version:\r\n", 426},
                {"version", "Sec-WebSocket-Version:  13 \r\n", 0},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                int got = status_with(t[i].name, t[i].line);

                if (got != t[i].status)
                        print_error("%s: %s\n", t[i].name, t[i].line);
                assert_int_equal(got, t[i].status);
        }
}

/* The lines a valid upgrade to "/ws" has besides its key and version. */
#define UPGRADE_LINES "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
#define SAMPLE_KEY    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

static void test_check_order(void **state)
{
        static const struct {
                const char *head;
                int status;
        } t[] = {
                /* Path first, even for requests that are bad otherwise. */
                {"GET /other HTTP/1.1\r\n" UPGRADE_LINES SAMPLE_KEY
                 "Sec-WebSocket-Version: 8\r\n\r\n",
                 404},
                {"POST /nope HTTP/1.0\r\n\r\n", 404},
                {"GET /ws/ HTTP/1.1\r\n\r\n", 404},
                {"GET /wsfoo HTTP/1.1\r\n\r\n", 404},
                {"GET /WS HTTP/1.1\r\n\r\n", 404},
                {"GET /w HTTP/1.1\r\n\r\n", 404},
                {"GET /ws/../ws HTTP/1.1\r\n\r\n", 404},
                {"GET http://h/ws/ HTTP/1.1\r\n\r\n", 404},
                /* A plain GET /ws is 400. */
                {"GET /ws HTTP/1.1\r\nHost: a\r\n\r\n", 400},
                /* Method (case-sensitive), then version; both before 426. */
                {"POST /ws HTTP/1.1\r\n" UPGRADE_LINES SAMPLE_KEY
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 400},
                {"get /ws HTTP/1.1\r\n" UPGRADE_LINES SAMPLE_KEY
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 400},
                {"GET /ws HTTP/1.0\r\n" UPGRADE_LINES SAMPLE_KEY
                 "Sec-WebSocket-Version: 8\r\n\r\n",
                 400},
                {"GET /ws HTTP/0.9\r\n" UPGRADE_LINES SAMPLE_KEY
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 400},
                {"GET /ws HTTP/1.2\r\n" UPGRADE_LINES SAMPLE_KEY
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 0},
                /* A bad key and a bad version: 400 wins. */
                {"GET /ws HTTP/1.1\r\n" UPGRADE_LINES
                 "Sec-WebSocket-Key: short==\r\n"
                 "Sec-WebSocket-Version: 8\r\n\r\n",
                 400},
                /* Duplicate version: malformed, so 400 rather than 426. */
                {"GET /ws HTTP/1.1\r\n" UPGRADE_LINES SAMPLE_KEY
                 "Sec-WebSocket-Version: 8\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 400},
                /* Version 8 is 426. */
                {"GET /ws HTTP/1.1\r\n" UPGRADE_LINES SAMPLE_KEY
                 "Sec-WebSocket-Version: 8\r\n\r\n",
                 426},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                int got = status_of(t[i].head);

                if (got != t[i].status)
                        print_error("%s\n", t[i].head);
                assert_int_equal(got, t[i].status);
        }
}

static void test_check_other_paths(void **state)
{
        struct pxl_http_request r;

        (void)state;
        assert_true(parse("GET /api/ws?x HTTP/1.1\r\nHost: a\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n",
                          &r) > 0);
        assert_int_equal(pxl_http_check_upgrade(&r, "/api/ws"), 0);
        assert_int_equal(pxl_http_check_upgrade(&r, "/api"), 404);
        assert_int_equal(pxl_http_check_upgrade(&r, "/api/ws?x"), 404);
        assert_int_equal(pxl_http_check_upgrade(&r, "/ws"), 404);
        assert_int_equal(pxl_http_check_upgrade(&r, ""), 404);
}

static void test_has_token(void **state)
{
        struct pxl_http_span none = {NULL, 0};
#define SPAN(s) ((struct pxl_http_span){s, sizeof(s) - 1})

        (void)state;
        assert_false(pxl_http_has_token(none, "upgrade"));
        assert_false(pxl_http_has_token(SPAN(""), "upgrade"));
        assert_true(pxl_http_has_token(SPAN("upgrade"), "upgrade"));
        assert_true(pxl_http_has_token(SPAN("UpGrade"), "upgrade"));
        assert_true(pxl_http_has_token(SPAN("keep-alive, Upgrade"), "upgrade"));
        assert_true(pxl_http_has_token(SPAN(",,\tupgrade\t,"), "upgrade"));
        assert_true(pxl_http_has_token(SPAN("a,upgrade"), "upgrade"));
        assert_false(pxl_http_has_token(SPAN("upgrade2"), "upgrade"));
        assert_false(pxl_http_has_token(SPAN("up grade"), "upgrade"));
        assert_false(pxl_http_has_token(SPAN("keep-alive"), "upgrade"));
        assert_false(pxl_http_has_token(SPAN("upgrad"), "upgrade"));
        assert_false(pxl_http_has_token(SPAN("\"upgrade\""), "upgrade"));
        assert_true(pxl_http_has_token(SPAN("websocket"), "WebSocket"));
#undef SPAN
}

static void test_format_101(void **state)
{
        static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Accept: "
                                   "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                   "\r\n";
        char out[256];

        (void)state;
        assert_int_equal(pxl_http_format_101(out, sizeof(out),
                                             "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                         strlen(want));
        assert_string_equal(out, want);
        /* snprintf rules when it does not fit. */
        assert_int_equal(
                pxl_http_format_101(out, 10, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                strlen(want));
        assert_string_equal(out, "HTTP/1.1 ");
        assert_int_equal(
                pxl_http_format_101(NULL, 0, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                strlen(want));
}

static void test_format_error(void **state)
{
        static const struct {
                int status;
                const char *reason;
        } st[] = {
                {400, "Bad Request"},         {401, "Unauthorized"},
                {403, "Forbidden"},           {404, "Not Found"},
                {426, "Upgrade Required"},    {500, "Internal Server Error"},
                {503, "Service Unavailable"},
        };
        char out[512], want[512];

        (void)state;
        for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
                size_t n;

                assert_string_equal(pxl_http_reason(st[i].status),
                                    st[i].reason);
                snprintf(want, sizeof(want),
                         "HTTP/1.1 %d %s\r\n"
                         "Content-Type: text/plain; charset=utf-8\r\n"
                         "Content-Length: %zu\r\n"
                         "Connection: close\r\n"
                         "%s\r\n%s\n",
                         st[i].status, st[i].reason, strlen(st[i].reason) + 1,
                         st[i].status == 426 ? "Sec-WebSocket-Version: 13\r\n"
                                             : "",
                         st[i].reason);
                n = pxl_http_format_error(out, sizeof(out), st[i].status, NULL);
                assert_int_equal(n, strlen(want));
                assert_string_equal(out, want);
        }

        assert_string_equal(
                (pxl_http_format_error(out, sizeof(out), 404, NULL), out),
                "HTTP/1.1 404 Not Found\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Length: 10\r\n"
                "Connection: close\r\n"
                "\r\n"
                "Not Found\n");
        assert_string_equal(
                (pxl_http_format_error(out, sizeof(out), 426, NULL), out),
                "HTTP/1.1 426 Upgrade Required\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Length: 17\r\n"
                "Connection: close\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                "\r\n"
                "Upgrade Required\n");
        /* A custom body; Content-Length counts the body's bytes. */
        pxl_http_format_error(out, sizeof(out), 403, "Origin not allowed");
        assert_non_null(strstr(out, "Content-Length: 19\r\n"));
        assert_non_null(strstr(out, "\r\n\r\nOrigin not allowed\n"));
        assert_int_equal(strlen(strstr(out, "\r\n\r\n") + 4), 19);
        assert_int_equal(pxl_http_format_error(NULL, 0, 403, "x"),
                         pxl_http_format_error(out, sizeof(out), 403, "x"));
        assert_int_equal(pxl_http_format_error(NULL, 0, 403, "x"), strlen(out));
        assert_string_equal(pxl_http_reason(101), "Switching Protocols");
        assert_string_equal(pxl_http_reason(999), "Error");
}

static ssize_t qp(const char *query, const char *name, char *out, size_t cap)
{
        struct pxl_http_span q = {query, query != NULL ? strlen(query) : 0};

        return pxl_http_query_param(q, name, out, cap);
}

/* Any response head: the endpoints' 200s, 405 with Allow, keep-alive. */
static void test_format_head(void **state)
{
        char out[512];
        size_t n;

        (void)state;
        n = pxl_http_format_head(out, sizeof(out), 200,
                                 "text/plain; version=0.0.4; charset=utf-8", 42,
                                 false, NULL);
        assert_string_equal(out, "HTTP/1.1 200 OK\r\n"
                                 "Content-Type: text/plain; version=0.0.4; "
                                 "charset=utf-8\r\n"
                                 "Content-Length: 42\r\n"
                                 "Connection: close\r\n"
                                 "\r\n");
        assert_int_equal(n, strlen(out));
        pxl_http_format_head(out, sizeof(out), 405, "text/plain", 0, true,
                             "Allow: GET, HEAD\r\n");
        assert_string_equal(out, "HTTP/1.1 405 Method Not Allowed\r\n"
                                 "Content-Type: text/plain\r\n"
                                 "Content-Length: 0\r\n"
                                 "Connection: keep-alive\r\n"
                                 "Allow: GET, HEAD\r\n"
                                 "\r\n");
        /* snprintf rules: the whole length, whatever fits. */
        assert_int_equal(
                pxl_http_format_head(out, 8, 200, "a", 1, false, NULL),
                pxl_http_format_head(NULL, 0, 200, "a", 1, false, NULL));
        assert_string_equal(out, "HTTP/1.");
        assert_string_equal(pxl_http_reason(200), "OK");
        assert_string_equal(pxl_http_reason(405), "Method Not Allowed");
}

/*
 * What the endpoints rely on: a plain GET for another path parses, has
 * no Upgrade header, and the upgrade check says 404 (its hook's cue).
 */
static void test_plain_request(void **state)
{
        static const char req_text[] = "HEAD /metrics?x=1 HTTP/1.0\r\n"
                                       "Accept: */*\r\n\r\n";
        struct pxl_http_request req;

        (void)state;
        assert_int_equal(pxl_http_parse_request(req_text, strlen(req_text),
                                                MAX_HEAD, &req),
                         (ssize_t)strlen(req_text));
        assert_int_equal(req.method.len, 4);
        assert_memory_equal(req.method.p, "HEAD", 4);
        assert_int_equal(req.path.len, 8);
        assert_memory_equal(req.path.p, "/metrics", 8);
        assert_null(req.upgrade.p);
        assert_int_equal(pxl_http_check_upgrade(&req, "/ws"), 404);
        assert_int_equal(req.version_major * 10 + req.version_minor, 10);
}

static void test_query_param(void **state)
{
        char out[32];

        (void)state;
        assert_int_equal(qp("token=abc", "token", out, sizeof(out)), 3);
        assert_string_equal(out, "abc");
        assert_int_equal(
                qp("a=1&token=x%20y+z%2B%2b%7e%7E", "token", out, sizeof(out)),
                9);
        assert_string_equal(out, "x y z++~~");
        assert_int_equal(qp("a=1&token=", "token", out, sizeof(out)), 0);
        assert_string_equal(out, "");
        assert_int_equal(qp("token", "token", out, sizeof(out)), 0);
        assert_int_equal(qp("token&b=2", "token", out, sizeof(out)), 0);
        assert_int_equal(qp("&&token=a&", "token", out, sizeof(out)), 1);
        assert_string_equal(out, "a");
        assert_int_equal(qp("token=a=b", "token", out, sizeof(out)), 3);
        assert_string_equal(out, "a=b");
        /* The first one wins. */
        assert_int_equal(qp("token=1&token=22", "token", out, sizeof(out)), 1);
        assert_string_equal(out, "1");

        /* Absent: exact, case-sensitive names only. */
        assert_int_equal(qp("a=1&b=2", "token", out, sizeof(out)), -1);
        assert_int_equal(qp("tokenx=1", "token", out, sizeof(out)), -1);
        assert_int_equal(qp("xtoken=1", "token", out, sizeof(out)), -1);
        assert_int_equal(qp("Token=1", "token", out, sizeof(out)), -1);
        assert_int_equal(qp("tok%65n=1", "token", out, sizeof(out)), -1);
        assert_int_equal(qp("", "token", out, sizeof(out)), -1);
        assert_int_equal(qp(NULL, "token", out, sizeof(out)), -1);

        /* Bad escapes, a decoded NUL, and values that do not fit. */
        assert_int_equal(qp("token=%", "token", out, sizeof(out)), -2);
        assert_int_equal(qp("token=%4", "token", out, sizeof(out)), -2);
        assert_int_equal(qp("token=%4&x=1", "token", out, sizeof(out)), -2);
        assert_int_equal(qp("token=%G1", "token", out, sizeof(out)), -2);
        assert_int_equal(qp("token=%1G", "token", out, sizeof(out)), -2);
        assert_int_equal(qp("token=a%00b", "token", out, sizeof(out)), -2);
        assert_int_equal(qp("token=abcd", "token", out, 4), -2);
        assert_int_equal(qp("token=abcd", "token", out, 5), 4);
        assert_string_equal(out, "abcd");
        assert_int_equal(qp("token=", "token", out, 0), -2);
        assert_int_equal(qp("token=", "token", out, 1), 0);
        /* A bad escape elsewhere does not matter. */
        assert_int_equal(qp("x=%&token=ok", "token", out, sizeof(out)), 2);

        /* Straight from a parsed request. */
        {
                struct pxl_http_request r;

                assert_true(parse(chrome_req, &r) > 0);
                assert_int_equal(pxl_http_query_param(r.query, "token", out,
                                                      sizeof(out)),
                                 7);
                assert_string_equal(out, "abc.def");
                assert_true(parse(python_req, &r) > 0);
                assert_int_equal(pxl_http_query_param(r.query, "token", out,
                                                      sizeof(out)),
                                 -1);
        }
}

/* ---- response heads (the outbound client's side) ------------------------ */

static const char resp_101[] =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "\r\n";

/* Parse an exact-size heap copy, so that ASan sees any overread. */
static ssize_t parse_resp(const char *s, size_t len, size_t max_head,
                          struct pxl_http_response *r)
{
        char *p = malloc(len ? len : 1);
        ssize_t n;

        assert_non_null(p);
        memcpy(p, s, len);
        n = pxl_http_parse_response(p, len, max_head, r);
        if (n > 0) {
                /* Re-point the spans into s, for the caller's checks. */
                struct pxl_http_span *sp[] = {&r->reason, &r->upgrade,
                                              &r->accept, &r->extensions,
                                              &r->protocol};

                for (size_t i = 0; i < sizeof(sp) / sizeof(sp[0]); i++)
                        if (sp[i]->p != NULL)
                                sp[i]->p = s + (sp[i]->p - p);
        }
        free(p);
        return n;
}

static ssize_t parse_resp_str(const char *s, struct pxl_http_response *r)
{
        return parse_resp(s, strlen(s), MAX_HEAD, r);
}

static void test_response_101(void **state)
{
        struct pxl_http_response r;
        char buf[sizeof(resp_101) + 8];
        size_t n = strlen(resp_101);

        (void)state;
        /* Frames may follow the head in the same read. */
        memcpy(buf, resp_101, n);
        memcpy(buf + n, "\x81\x02hi", 4);
        assert_int_equal(parse_resp(buf, n + 4, MAX_HEAD, &r), (ssize_t)n);
        assert_int_equal(r.status, 101);
        assert_span(r.reason, "Switching Protocols");
        assert_span(r.upgrade, "websocket");
        assert_true(r.connection_upgrade);
        assert_span(r.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_null(r.extensions.p);
        assert_null(r.protocol.p);
        assert_false(r.has_content_length);
        assert_int_equal(r.head_len, n);
        assert_int_equal(pxl_http_check_101(&r, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                         PXL_HTTP_101_OK);
}

/* Every prefix of a head is NEED_MORE; every prefix of garbage is not OK. */
static void test_response_split(void **state)
{
        struct pxl_http_response r;
        size_t n = strlen(resp_101), i;

        (void)state;
        for (i = 0; i < n; i++)
                if (parse_resp(resp_101, i, MAX_HEAD, &r) != PXL_HTTP_NEED_MORE)
                        fail_msg("split at %zu is not NEED_MORE", i);
        assert_int_equal(parse_resp(resp_101, n, MAX_HEAD, &r), (ssize_t)n);
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
                "X-Other: \t tab \xc3\xa9\r\n"
                "\r\n";
        struct pxl_http_response r;

        (void)state;
        assert_true(parse_resp_str(text, &r) > 0);
        assert_true(r.connection_upgrade);
        assert_span(r.upgrade, "WebSocket");
        assert_span(r.accept, "abc");
        assert_span(r.extensions, "permessage-deflate");
        assert_span(r.protocol, "chat");
        /* The last Upgrade and Content-Length count. */
        assert_true(parse_resp_str("HTTP/1.1 101 x\r\nUpgrade: a\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Content-Length: 5\r\n"
                                   "Content-Length: 007\r\n\r\n",
                                   &r) > 0);
        assert_span(r.upgrade, "websocket");
        assert_true(r.has_content_length);
        assert_int_equal(r.content_length, 7);
        /* Connection without the token, and without any. */
        assert_true(parse_resp_str("HTTP/1.1 101 x\r\nConnection: close, "
                                   "upgraded\r\n\r\n",
                                   &r) > 0);
        assert_false(r.connection_upgrade);
        assert_null(r.upgrade.p);
}

static void test_response_refusal(void **state)
{
        static const char text[] = "HTTP/1.1 401 Unauthorized\r\n"
                                   "Content-Type: text/plain; charset=utf-8\r\n"
                                   "Content-Length: 13\r\n"
                                   "Connection: close\r\n"
                                   "\r\n"
                                   "Invalid token";
        struct pxl_http_response r;

        (void)state;
        assert_int_equal(parse_resp_str(text, &r),
                         (ssize_t)(strlen(text) - 13));
        assert_int_equal(r.status, 401);
        assert_span(r.reason, "Unauthorized");
        assert_true(r.has_content_length);
        assert_int_equal(r.content_length, 13);
        assert_false(r.connection_upgrade);
        assert_int_equal(pxl_http_check_101(&r, "x"), PXL_HTTP_101_REFUSED);
        /* A status line without a reason phrase is fine. */
        assert_int_equal(parse_resp_str("HTTP/1.0 503\r\n\r\n", &r), 16);
        assert_int_equal(r.status, 503);
        assert_non_null(r.reason.p);
        assert_int_equal(r.reason.len, 0);
        assert_int_equal(parse_resp_str("HTTP/1.1 200  \r\n\r\n", &r), 18);
        assert_int_equal(r.reason.len, 0);
        assert_int_equal(parse_resp_str("HTTP/1.1 000 \x80\r\n\r\n", &r), 18);
        assert_int_equal(r.status, 0);
        assert_span(r.reason, "\x80");
}

static void test_response_bad(void **state)
{
        static const char *const bad[] = {
                /* status line */
                "HTTP/2 101 x\r\n\r\n",
                "HTTP/1.1 10 x\r\n\r\n",
                "HTTP/1.1 1011 x\r\n\r\n",
                "http/1.1 101 x\r\n\r\n",
                "HTTP/1.1 101x\r\n\r\n",
                "HTTP/1.x 101 x\r\n\r\n",
                "HTTP/1.1  101 x\r\n\r\n",
                "HTTP/1.1 10a x\r\n\r\n",
                "HTTP/1.1\r\n\r\n",
                " HTTP/1.1 101 x\r\n\r\n",
                "HTTP/1.1 101 x\x01y\r\n\r\n",
                "HTTP/1.1 101 x\x7f\r\n\r\n",
                "SSH-2.0-OpenSSH\r\n\r\n",
                /* line endings */
                "\r\nHTTP/1.1 101 x\r\n\r\n",
                "HTTP/1.1 101 x\n\r\n",
                "HTTP/1.1 101 x\r\n\n",
                "HTTP/1.1 101 x\r\nA: b\nC: d\r\n\r\n",
                "HTTP/1.1 101 x\r\nA: b\rC: d\r\n\r\n",
                "HTTP/1.1 101 x\r\r\n\r\n",
                /* header lines, folding */
                "HTTP/1.1 101 x\r\nUpgrade websocket\r\n\r\n",
                "HTTP/1.1 101 x\r\n folded: no\r\n\r\n",
                "HTTP/1.1 101 x\r\nA: b\r\n\tc\r\n\r\n",
                "HTTP/1.1 101 x\r\nA: b\x01\r\n\r\n",
                "HTTP/1.1 101 x\r\n: empty\r\n\r\n",
                "HTTP/1.1 101 x\r\nBad Name: y\r\n\r\n",
                "HTTP/1.1 101 x\r\nName : y\r\n\r\n",
                "HTTP/1.1 101 x\r\nN\xc3\xa9: y\r\n\r\n",
                /* Content-Length */
                "HTTP/1.1 101 x\r\nContent-Length: 1x\r\n\r\n",
                "HTTP/1.1 101 x\r\nContent-Length: -1\r\n\r\n",
                "HTTP/1.1 101 x\r\nContent-Length:\r\n\r\n",
                "HTTP/1.1 101 x\r\nContent-Length: 1234567890123\r\n\r\n",
        };
        static const char nul[] = "HTTP/1.1 101 x\r\nA: \0\r\n\r\n";
        struct pxl_http_response r;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ssize_t n = parse_resp_str(bad[i], &r);

                if (n != PXL_HTTP_BAD)
                        fail_msg("#%zu: %zd for: %s", i, n, bad[i]);
        }
        /* A NUL is refused like any control character. */
        assert_int_equal(parse_resp(nul, sizeof(nul) - 1, MAX_HEAD, &r),
                         PXL_HTTP_BAD);
}

/* Garbage is refused before the blank line arrives, as in requests. */
static void test_response_early_bad(void **state)
{
        struct pxl_http_response r;

        (void)state;
        assert_int_equal(parse_resp_str("SSH-2.0-OpenSSH_9.2\r\n", &r),
                         PXL_HTTP_BAD);
        assert_int_equal(parse_resp_str("\x16\x03\x01\x02\x00", &r),
                         PXL_HTTP_BAD);
        assert_int_equal(parse_resp_str("HTTP/1.1 101 x\r\nA: \x01", &r),
                         PXL_HTTP_BAD);
        assert_int_equal(parse_resp_str("HTTP/1.1 101 x\n", &r), PXL_HTTP_BAD);
        /* ...but not what may still become a head. */
        assert_int_equal(parse_resp_str("HTTP/1.1 101 x\r", &r),
                         PXL_HTTP_NEED_MORE);
        assert_int_equal(parse_resp_str("HTTP/1.1 101 x\r\nA: b\r\n", &r),
                         PXL_HTTP_NEED_MORE);
        assert_int_equal(parse_resp_str("HTTP/1.1 101 x\r\nA: b\r\n\r", &r),
                         PXL_HTTP_NEED_MORE);
}

static void test_response_too_large(void **state)
{
        const char *head = "HTTP/1.1 101 x\r\nA: b\r\n\r\n"; /* 24 */
        size_t n = strlen(head);
        struct pxl_http_response r;
        char buf[300];

        (void)state;
        assert_int_equal(n, 24);
        /* The blank line ends exactly at max_head: accepted. */
        assert_int_equal(parse_resp(head, n, n, &r), (ssize_t)n);
        assert_int_equal(parse_resp(head, n, n - 1, &r), PXL_HTTP_TOO_LARGE);
        /* No blank line: too large once max_head bytes are here. */
        memset(buf, 'a', sizeof(buf));
        memcpy(buf, "HTTP/1.1 101 x\r\nX: ", 19);
        assert_int_equal(parse_resp(buf, 100, 256, &r), PXL_HTTP_NEED_MORE);
        assert_int_equal(parse_resp(buf, 255, 256, &r), PXL_HTTP_NEED_MORE);
        assert_int_equal(parse_resp(buf, 256, 256, &r), PXL_HTTP_TOO_LARGE);
        assert_int_equal(parse_resp(buf, sizeof(buf), 256, &r),
                         PXL_HTTP_TOO_LARGE);
        /* A blank line beyond max_head does not rescue it. */
        memcpy(buf + 250, "\r\n\r\n", 4);
        assert_int_equal(parse_resp(buf, 254, 200, &r), PXL_HTTP_TOO_LARGE);
        assert_int_equal(parse_resp(buf, 254, 254, &r), 254);
        assert_int_equal(pxl_http_parse_response(NULL, 0, MAX_HEAD, &r),
                         PXL_HTTP_NEED_MORE);
}

/* What the client checks in a 101, in its order (RFC 6455 4.1). */
static void test_check_101(void **state)
{
        static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
        static const struct {
                const char *extra; /* headers after the status line */
                enum pxl_http_101 want;
        } cases[] = {
                {"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                 PXL_HTTP_101_OK},
                {"UPGRADE: WebSocket\r\nConnection: keep-alive, upgrade\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                 PXL_HTTP_101_OK},
                /* Upgrade and Connection */
                {"Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                 PXL_HTTP_101_NO_UPGRADE},
                {"Upgrade: websocket, h2c\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                 PXL_HTTP_101_NO_UPGRADE},
                {"Upgrade: websocket\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                 PXL_HTTP_101_NO_UPGRADE},
                {"Upgrade: websocket\r\nConnection: keep-alive\r\n",
                 PXL_HTTP_101_NO_UPGRADE},
                /* Sec-WebSocket-Accept */
                {"Upgrade: websocket\r\nConnection: Upgrade\r\n",
                 PXL_HTTP_101_BAD_ACCEPT},
                {"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n",
                 PXL_HTTP_101_BAD_ACCEPT},
                {"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n",
                 PXL_HTTP_101_BAD_ACCEPT},
                {"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: S3PPLMBITXAQ9KYGZZHZRBK+XOO=\r\n",
                 PXL_HTTP_101_BAD_ACCEPT},
                /* nothing was offered */
                {"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                 "Sec-WebSocket-Extensions: x\r\n",
                 PXL_HTTP_101_EXTENSION},
                {"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                 "Sec-WebSocket-Protocol:\r\n",
                 PXL_HTTP_101_EXTENSION},
        };
        char accept[PXL_WS_ACCEPT_LEN + 1], head[512];
        struct pxl_http_response r;

        (void)state;
        pxl_ws_accept_key(key, strlen(key), accept);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                snprintf(head, sizeof(head),
                         "HTTP/1.1 101 Switching Protocols\r\n%s\r\n",
                         cases[i].extra);
                assert_true(parse_resp_str(head, &r) > 0);
                if (pxl_http_check_101(&r, accept) != cases[i].want)
                        fail_msg("#%zu: %d, not %d", i,
                                 pxl_http_check_101(&r, accept), cases[i].want);
        }
        /* The status comes first. */
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\n%s\r\n",
                 cases[0].extra);
        assert_true(parse_resp_str(head, &r) > 0);
        assert_int_equal(pxl_http_check_101(&r, accept), PXL_HTTP_101_REFUSED);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_chrome),
                cmocka_unit_test(test_python_and_firefox),
                cmocka_unit_test(test_accept_key),
                cmocka_unit_test(test_splits),
                cmocka_unit_test(test_pipelined_bytes),
                cmocka_unit_test(test_too_large),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_nul_and_early_bad),
                cmocka_unit_test(test_headers),
                cmocka_unit_test(test_duplicates),
                cmocka_unit_test(test_targets),
                cmocka_unit_test(test_check_fields),
                cmocka_unit_test(test_check_order),
                cmocka_unit_test(test_check_other_paths),
                cmocka_unit_test(test_has_token),
                cmocka_unit_test(test_format_101),
                cmocka_unit_test(test_format_error),
                cmocka_unit_test(test_format_head),
                cmocka_unit_test(test_plain_request),
                cmocka_unit_test(test_query_param),
                cmocka_unit_test(test_response_101),
                cmocka_unit_test(test_response_split),
                cmocka_unit_test(test_response_headers),
                cmocka_unit_test(test_response_refusal),
                cmocka_unit_test(test_response_bad),
                cmocka_unit_test(test_response_early_bad),
                cmocka_unit_test(test_response_too_large),
                cmocka_unit_test(test_check_101),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
