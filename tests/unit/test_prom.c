/*
 * test_prom.c - unit tests for the operators' codecs: pxl_prom.c (the
 * Prometheus text format: families, samples, labels, values, names
 * from JSON keys) and pxl_allow.c (allow lists: addresses and CIDR
 * prefixes, IPv4, IPv6 and IPv4-mapped peers). No sockets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "pxl/pxl.h"
#include "pxl_allow.h"
#include "pxl_prom.h"

static void test_names(void **state)
{
        (void)state;
        assert_true(pxl_prom_name_ok("pxl_messages_received_total"));
        assert_true(pxl_prom_name_ok("a:b_c9"));
        assert_true(pxl_prom_name_ok("_x"));
        assert_false(pxl_prom_name_ok("9x"));
        assert_false(pxl_prom_name_ok("a-b"));
        assert_false(pxl_prom_name_ok("a b"));
        assert_false(pxl_prom_name_ok(""));
        assert_false(pxl_prom_name_ok(NULL));
}

static void test_family_and_samples(void **state)
{
        struct pxl_str s = {0}, labels = {0};

        (void)state;
        assert_int_equal(
                pxl_prom_family(&s, "pxl_x_total", "counter", "a \\ b\nc"), 0);
        assert_int_equal(pxl_prom_sample(&s, "pxl_x_total", NULL, 3), 0);
        assert_int_equal(pxl_prom_label(&labels, "worker", "1"), 0);
        assert_int_equal(pxl_prom_label(&labels, "queue", "a\"b\\c\nd"), 0);
        assert_int_equal(pxl_prom_sample(&s, "pxl_x_total", labels.p, 2.5), 0);
        assert_int_equal(pxl_prom_sample(&s, "pxl_x_total", "", 1e300), 0);
        assert_string_equal(s.p, "# HELP pxl_x_total a \\\\ b\\nc\n"
                                 "# TYPE pxl_x_total counter\n"
                                 "pxl_x_total 3\n"
                                 "pxl_x_total{worker=\"1\",queue=\"a\\\"b"
                                 "\\\\c\\nd\"} 2.5\n"
                                 "pxl_x_total 1.0000000000000001e+300\n");
        s.len = 0;
        pxl_prom_sample(&s, "g", NULL, NAN);
        pxl_prom_sample(&s, "g", NULL, INFINITY);
        pxl_prom_sample(&s, "g", NULL, -INFINITY);
        pxl_prom_sample(&s, "g", NULL, -7);
        pxl_prom_sample(&s, "g", NULL, 9007199254740992.0);
        pxl_prom_sample(&s, "g", NULL, 0.25);
        assert_string_equal(s.p, "g NaN\ng +Inf\ng -Inf\ng -7\n"
                                 "g 9007199254740992\ng 0.25\n");
        /* Refused names write nothing. */
        s.len = 0;
        s.p[0] = '\0';
        assert_int_equal(pxl_prom_family(&s, "1x", "gauge", "h"), PXL_EINVAL);
        assert_int_equal(pxl_prom_sample(&s, "a-b", NULL, 1), PXL_EINVAL);
        assert_int_equal(pxl_prom_label(&labels, "a:b", "v"), PXL_EINVAL);
        assert_int_equal(s.len, 0);
        pxl_str_fini(&s);
        pxl_str_fini(&labels);
}

static void test_name_from_key(void **state)
{
        char out[32] = "pxl_";

        (void)state;
        assert_int_equal(pxl_prom_name_from_key(out, sizeof(out), "waitMs"),
                         11);
        assert_string_equal(out, "pxl_wait_ms");
        strcpy(out, "pxl_");
        pxl_prom_name_from_key(out, sizeof(out), "queue");
        pxl_prom_name_from_key(out, sizeof(out), "_");
        pxl_prom_name_from_key(out, sizeof(out), "HTTPCode-x");
        assert_string_equal(out, "pxl_queue_httpcode_x");
        strcpy(out, "pxl_");
        assert_int_equal(pxl_prom_name_from_key(out, 8, "abcdef"), -1);
}

/* The peer address a (IPv6 when it has a ':') in ss. */
static const struct sockaddr *peer(struct sockaddr_storage *ss, const char *a)
{
        memset(ss, 0, sizeof(*ss));
        if (strchr(a, ':') != NULL) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

                s6->sin6_family = AF_INET6;
                assert_int_equal(inet_pton(AF_INET6, a, &s6->sin6_addr), 1);
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

                s4->sin_family = AF_INET;
                assert_int_equal(inet_pton(AF_INET, a, &s4->sin_addr), 1);
        }
        return (const struct sockaddr *)ss;
}

static void test_allow_parse(void **state)
{
        static const char *const good[] = {
                "127.0.0.1",
                "10.0.0.0/8",
                "0.0.0.0/0",
                "192.0.2.7/32",
                "::1",
                "fd00::/8",
                "::/0",
                "2001:db8::1/128",
                "::ffff:127.0.0.1",
        };
        static const char *const bad[] = {
                "",          "localhost", "10.0.0.0/33", "::1/129",
                "10.0.0.0/", "10.0.0/8",  "10.0.0.0/8x", "10.0.0.0/0008",
                "/8",        "1.2.3.4 ",  "fd00::/-1",
        };
        struct pxl_allow_net net;
        const char *why;

        (void)state;
        for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
                why = NULL;
                assert_int_equal(pxl_allow_parse(good[i], &net, &why), 0);
                assert_null(why);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                why = NULL;
                assert_int_equal(pxl_allow_parse(bad[i], &net, &why), -1);
                assert_non_null(why);
        }
        assert_int_equal(pxl_allow_parse("10.1.0.0/14", &net, &why), 0);
        assert_int_equal(net.len, 4);
        assert_int_equal(net.bits, 14);
}

static void test_allow_match(void **state)
{
        struct pxl_allow_net nets[3];
        const char *why;
        struct sockaddr_storage ss;

        (void)state;
        assert_int_equal(pxl_allow_parse("127.0.0.1", &nets[0], &why), 0);
        assert_int_equal(pxl_allow_parse("10.1.0.0/14", &nets[1], &why), 0);
        assert_int_equal(pxl_allow_parse("fd00::/8", &nets[2], &why), 0);
#define IN4(s) peer(&ss, s)
#define IN6(s) peer(&ss, s)
        assert_true(pxl_allow_match(nets, 3, IN4("127.0.0.1")));
        assert_false(pxl_allow_match(nets, 3, IN4("127.0.0.2")));
        assert_true(pxl_allow_match(nets, 3, IN4("10.3.255.255")));
        /* 10.1.0.0/14 is 10.0.0.0 to 10.3.255.255 (host bits ignored). */
        assert_true(pxl_allow_match(nets, 3, IN4("10.0.0.1")));
        assert_false(pxl_allow_match(nets, 3, IN4("10.4.0.0")));
        assert_true(pxl_allow_match(nets, 3, IN6("fdff::1")));
        assert_false(pxl_allow_match(nets, 3, IN6("fe00::1")));
        /* A mapped IPv4 peer is its IPv4 address; ::1 is not 127.0.0.1. */
        assert_true(pxl_allow_match(nets, 3, IN6("::ffff:127.0.0.1")));
        assert_true(pxl_allow_match(nets, 3, IN6("::ffff:10.2.0.9")));
        assert_false(pxl_allow_match(nets, 3, IN6("::1")));
        assert_false(pxl_allow_match(nets, 0, IN4("127.0.0.1")));
        assert_false(pxl_allow_match(nets, 3, NULL));
        /* /0 takes everything of its family. */
        assert_int_equal(pxl_allow_parse("0.0.0.0/0", &nets[0], &why), 0);
        assert_true(pxl_allow_match(nets, 1, IN4("203.0.113.9")));
        assert_false(pxl_allow_match(nets, 1, IN6("2001:db8::1")));
#undef IN4
#undef IN6
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_family_and_samples),
                cmocka_unit_test(test_name_from_key),
                cmocka_unit_test(test_allow_parse),
                cmocka_unit_test(test_allow_match),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
