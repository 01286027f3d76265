/*
 * test_wsc.c - unit tests for the pure parts of the outbound client
 * (pxl_wsc_int.h): URL parsing and the reconnect schedule. No sockets.
 * The 101 response head is tested with pxl_http.c (test_http.c), the
 * reply lookups with pxl_json.c (test_json.c).
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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_url_good),
                cmocka_unit_test(test_url_bad),
                cmocka_unit_test(test_backoff),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
