/*
 * test_wire.c - the header line of worker-to-worker messages: what
 * pxl_wire_head writes pxl_wire_parse reads back, malformed headers are
 * refused, and two-part bodies split at the first NUL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pxl/pxl.h"
#include "pxl_wire.h"

static void test_round_trip(void **state)
{
        struct pxl_str s = {0};
        struct pxl_wire w;

        (void)state;
        assert_int_equal(pxl_wire_head(&s, "ab12-0-3", 8, 42, 'c',
                                       "0123456789abcdef0123456789abcdef", 32),
                         0);
        assert_int_equal(pxl_str_puts(&s, "{\"id\":1}\n2"), 0);
        assert_int_equal(pxl_wire_parse(s.p, s.len, &w), 0);
        assert_int_equal(w.origin_len, 8);
        assert_memory_equal(w.origin, "ab12-0-3", 8);
        assert_true(w.seq == 42);
        assert_int_equal(w.kind, 'c');
        assert_int_equal(w.arg_len, 32);
        assert_memory_equal(w.arg, "0123456789abcdef", 16);
        /* The body is everything after the first newline, newlines too. */
        assert_int_equal(w.body_len, 10);
        assert_memory_equal(w.body, "{\"id\":1}\n2", 10);
        pxl_str_fini(&s);
}

static void test_no_arg_and_empty_body(void **state)
{
        struct pxl_str s = {0};
        struct pxl_wire w;

        (void)state;
        assert_int_equal(pxl_wire_head(&s, "n-1-0", 5, 0, 's', NULL, 0), 0);
        assert_int_equal(s.len, strlen("n-1-0 0 s -\n"));
        assert_memory_equal(s.p, "n-1-0 0 s -\n", s.len);
        assert_int_equal(pxl_wire_parse(s.p, s.len, &w), 0);
        assert_int_equal(w.arg_len, 0);
        assert_int_equal(w.body_len, 0);
        assert_true(w.seq == 0);
        pxl_str_fini(&s);
}

static void test_largest_sequence(void **state)
{
        struct pxl_str s = {0};
        struct pxl_wire w;

        (void)state;
        assert_int_equal(pxl_wire_head(&s, "w", 1, UINT64_MAX, 'c', NULL, 0), 0);
        assert_int_equal(s.len, strlen("w 18446744073709551615 c -\n"));
        assert_memory_equal(s.p, "w 18446744073709551615 c -\n", s.len);
        assert_int_equal(pxl_wire_parse(s.p, s.len, &w), 0);
        assert_true(w.seq == UINT64_MAX);
        pxl_str_fini(&s);
}

static void test_head_refuses_bad_words(void **state)
{
        struct pxl_str s = {0};

        (void)state;
        assert_int_equal(pxl_wire_head(&s, "", 0, 1, 'c', NULL, 0), PXL_EINVAL);
        assert_int_equal(pxl_wire_head(&s, "a b", 3, 1, 'c', NULL, 0), PXL_EINVAL);
        assert_int_equal(pxl_wire_head(&s, "a", 1, 1, ' ', NULL, 0), PXL_EINVAL);
        assert_int_equal(pxl_wire_head(&s, "a", 1, 1, 'c', "x\ny", 3), PXL_EINVAL);
        assert_int_equal(s.len, 0);
        pxl_str_fini(&s);
}

static void test_parse_refuses_malformed(void **state)
{
        static const char *const bad[] = {
                "",                       /* no newline */
                "w 1 c -",                /* no newline */
                "w 1 c\n",                /* no arg */
                "w 1 c \n",               /* empty arg */
                " 1 c -\n",               /* empty origin */
                "w  c -\n",               /* empty seq */
                "w x c -\n",              /* seq not a number */
                "w 1x c -\n",             /* seq not a number */
                "w 99999999999999999999 c -\n", /* over 2^64 - 1 */
                "w 1 cc -\n",             /* kind of two characters */
                "w 1 c a b\n",            /* a space in arg */
                "w 1 c -",                /* header without newline */
        };
        struct pxl_wire w;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                assert_int_equal(pxl_wire_parse(bad[i], strlen(bad[i]), &w),
                                 PXL_EPROTO);
        /* A NUL inside the header line is refused too. */
        assert_int_equal(pxl_wire_parse("w\0 1 c -\n", 9, &w), PXL_EPROTO);
        /* The largest sequence number is fine. */
        assert_int_equal(pxl_wire_parse("w 18446744073709551615 c -\n", 27, &w), 0);
        assert_true(w.seq == UINT64_MAX);
}

static void test_split(void **state)
{
        const char *a, *b;
        size_t alen, blen;

        (void)state;
        pxl_wire_split("key\0{\"v\":1}", 11, &a, &alen, &b, &blen);
        assert_int_equal(alen, 3);
        assert_memory_equal(a, "key", 3);
        assert_int_equal(blen, 7);
        assert_memory_equal(b, "{\"v\":1}", 7);
        pxl_wire_split("key", 3, &a, &alen, &b, &blen);
        assert_int_equal(alen, 3);
        assert_null(b);
        assert_int_equal(blen, 0);
        pxl_wire_split("k\0", 2, &a, &alen, &b, &blen);
        assert_int_equal(alen, 1);
        assert_non_null(b);
        assert_int_equal(blen, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_no_arg_and_empty_body),
                cmocka_unit_test(test_largest_sequence),
                cmocka_unit_test(test_head_refuses_bad_words),
                cmocka_unit_test(test_parse_refuses_malformed),
                cmocka_unit_test(test_split),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
