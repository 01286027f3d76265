/*
 * test_histogram.c - the latency histogram: exact small values, bucket
 * edges at every power of two, the relative error bound, percentiles of
 * known distributions, an empty histogram, and values past the last bucket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pxl_histogram.h"

#define LAST (PXL_HISTOGRAM_BUCKETS - 1)

/* Large: a histogram is 22 KB, kept off the test's stack. */
static struct pxl_histogram h;

/* |got - want| <= want / 64 (one bucket width), as a cmocka assertion. */
static void assert_near(uint64_t got, uint64_t want)
{
        uint64_t d = got > want ? got - want : want - got;

        if (d > want / 64) {
                print_error("got %llu, want %llu (within %llu)\n",
                            (unsigned long long)got, (unsigned long long)want,
                            (unsigned long long)(want / 64));
                fail();
        }
}

static void test_empty(void **state)
{
        (void)state;
        pxl_histogram_init(&h);
        assert_int_equal(h.n, 0);
        assert_int_equal(h.max, 0);
        assert_int_equal(pxl_histogram_quantile(&h, 0.0), 0);
        assert_int_equal(pxl_histogram_quantile(&h, 0.5), 0);
        assert_int_equal(pxl_histogram_quantile(&h, 1.0), 0);
}

/* Below 128 every value has its own bucket and reads back exactly. */
static void test_small_values_are_exact(void **state)
{
        (void)state;
        for (unsigned v = 0; v < 2 * PXL_HISTOGRAM_SUB; v++) {
                assert_int_equal(pxl_histogram_bucket(v), v);
                assert_int_equal(pxl_histogram_bucket_value(v), v);
        }
        pxl_histogram_init(&h);
        for (uint64_t v = 0; v < 100; v++)
                pxl_histogram_add(&h, v);
        assert_int_equal(h.n, 100);
        assert_int_equal(h.max, 99);
        /* Rank q * n rounded up, counted from 1: p50 is the 50th, 49. */
        assert_int_equal(pxl_histogram_quantile(&h, 0.50), 49);
        assert_int_equal(pxl_histogram_quantile(&h, 0.99), 98);
        assert_int_equal(pxl_histogram_quantile(&h, 0.999), 99);
        assert_int_equal(pxl_histogram_quantile(&h, 1.0), 99);
        /* q = 0 reads the smallest sample. */
        assert_int_equal(pxl_histogram_quantile(&h, 0.0), 0);
        assert_int_equal(pxl_histogram_quantile(&h, 0.001), 0);
}

/* Each power of two from 2^7 to 2^47 starts a run of 64 buckets. */
static void test_bucket_edges(void **state)
{
        (void)state;
        assert_int_equal(pxl_histogram_bucket(127), 127);
        assert_int_equal(pxl_histogram_bucket(128), 128);
        /* 128..255 are 2 wide: 128 and 129 share a bucket. */
        assert_int_equal(pxl_histogram_bucket(129), 128);
        assert_int_equal(pxl_histogram_bucket(130), 129);
        assert_int_equal(pxl_histogram_bucket(255), 191);
        for (unsigned k = 7; k < 48; k++) {
                uint64_t p = (uint64_t)1 << k;
                unsigned first = PXL_HISTOGRAM_SUB +
                                 (k - PXL_HISTOGRAM_SUB_BITS) * PXL_HISTOGRAM_SUB;
                uint64_t width = p >> PXL_HISTOGRAM_SUB_BITS;

                assert_int_equal(pxl_histogram_bucket(p), first);
                assert_int_equal(pxl_histogram_bucket(p - 1), first - 1);
                assert_int_equal(pxl_histogram_bucket(p + width - 1), first);
                assert_int_equal(pxl_histogram_bucket(p + width), first + 1);
                assert_int_equal(pxl_histogram_bucket(2 * p - 1), first + 63);
                /* The middle of the first bucket of the octave. */
                assert_int_equal(pxl_histogram_bucket_value(first),
                                 p + width / 2);
        }
        assert_int_equal(pxl_histogram_bucket(((uint64_t)1 << 48) - 1), LAST);
}

/* Every bucket's value lies in it, and buckets grow with the value. */
static void test_bucket_values_round_trip(void **state)
{
        uint64_t prev = 0;

        (void)state;
        for (unsigned i = 0; i < PXL_HISTOGRAM_BUCKETS; i++) {
                uint64_t v = pxl_histogram_bucket_value(i);

                assert_int_equal(pxl_histogram_bucket(v), i);
                if (i > 0)
                        assert_true(v > prev);
                prev = v;
        }
}

/* A value reads back within half a bucket: under 1/128 of it. */
static void test_relative_error(void **state)
{
        uint64_t x = 88172645463325252ull; /* xorshift64 */

        (void)state;
        for (int i = 0; i < 200000; i++) {
                uint64_t v, got, d;

                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v = x >> (16 + x % 41); /* 2^7 .. 2^48, all magnitudes */
                got = pxl_histogram_bucket_value(pxl_histogram_bucket(v));
                d = got > v ? got - v : v - got;
                assert_true(d * 128 <= v);
        }
}

/* 1 .. 1,000,000 once each: quantiles read as the values of their rank. */
static void test_uniform(void **state)
{
        (void)state;
        pxl_histogram_init(&h);
        for (uint64_t v = 1000000; v >= 1; v--)
                pxl_histogram_add(&h, v);
        assert_int_equal(h.n, 1000000);
        assert_int_equal(h.max, 1000000);
        assert_near(pxl_histogram_quantile(&h, 0.50), 500000);
        assert_near(pxl_histogram_quantile(&h, 0.90), 900000);
        assert_near(pxl_histogram_quantile(&h, 0.99), 990000);
        assert_near(pxl_histogram_quantile(&h, 0.999), 999000);
        assert_int_equal(pxl_histogram_quantile(&h, 1.0), 1000000);
        assert_int_equal(pxl_histogram_quantile(&h, 0.0), 1);
}

/* 99 fast samples and one slow: p50 and p99 fast, p99.9 the slow one. */
static void test_two_points(void **state)
{
        (void)state;
        pxl_histogram_init(&h);
        for (int i = 0; i < 99; i++)
                pxl_histogram_add(&h, 100);
        pxl_histogram_add(&h, 1000000000);
        assert_int_equal(pxl_histogram_quantile(&h, 0.50), 100);
        assert_int_equal(pxl_histogram_quantile(&h, 0.99), 100);
        assert_near(pxl_histogram_quantile(&h, 0.999), 1000000000);
        assert_int_equal(h.max, 1000000000);
}

/* A quantile never reads above the largest sample recorded. */
static void test_never_above_max(void **state)
{
        uint64_t v = 1000; /* bucket 1000..1007, middle 1004 */

        (void)state;
        assert_true(pxl_histogram_bucket_value(pxl_histogram_bucket(v)) > v);
        pxl_histogram_init(&h);
        pxl_histogram_add(&h, v);
        assert_int_equal(pxl_histogram_quantile(&h, 0.5), v);
        assert_int_equal(pxl_histogram_quantile(&h, 1.0), v);
}

/* Past 2^48 everything counts in the last bucket; max stays exact. */
static void test_huge_values(void **state)
{
        uint64_t top = pxl_histogram_bucket_value(LAST);

        (void)state;
        assert_int_equal(pxl_histogram_bucket((uint64_t)1 << 48), LAST);
        assert_int_equal(pxl_histogram_bucket(UINT64_MAX), LAST);
        assert_true(top < ((uint64_t)1 << 48));
        assert_true(top > ((uint64_t)1 << 48) - ((uint64_t)1 << 42));
        pxl_histogram_init(&h);
        pxl_histogram_add(&h, 5);
        pxl_histogram_add(&h, UINT64_MAX);
        pxl_histogram_add(&h, (uint64_t)1 << 60);
        assert_int_equal(h.n, 3);
        assert_int_equal(h.max, UINT64_MAX);
        assert_int_equal(h.c[LAST], 2);
        assert_int_equal(pxl_histogram_quantile(&h, 0.3), 5);
        assert_int_equal(pxl_histogram_quantile(&h, 0.99), top);
        assert_int_equal(pxl_histogram_quantile(&h, 1.0), top);
}

/* init empties a used histogram. */
static void test_init_resets(void **state)
{
        (void)state;
        pxl_histogram_add(&h, 42);
        pxl_histogram_init(&h);
        assert_int_equal(h.n, 0);
        assert_int_equal(h.max, 0);
        for (unsigned i = 0; i < PXL_HISTOGRAM_BUCKETS; i++)
                assert_int_equal(h.c[i], 0);
        assert_int_equal(pxl_histogram_quantile(&h, 0.5), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_small_values_are_exact),
                cmocka_unit_test(test_bucket_edges),
                cmocka_unit_test(test_bucket_values_round_trip),
                cmocka_unit_test(test_relative_error),
                cmocka_unit_test(test_uniform),
                cmocka_unit_test(test_two_points),
                cmocka_unit_test(test_never_above_max),
                cmocka_unit_test(test_huge_values),
                cmocka_unit_test(test_init_resets),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
