/*
 * test_utf8.c - unit tests for framework/pxl_utf8.c (the incremental
 * validator). Covers the Markus Kuhn stress cases, code point boundaries,
 * the exact fail-fast position, splits at every position and an exhaustive
 * comparison with a naive decoder. Framing is tested in test_ws_codec.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pxl_utf8.h"

/* The reference decoder, shared with the fuzzers. */
#include "../fuzz/ref_utf8.h"

/* Outcomes in the vector tables besides a fail position (>= 0). */
#define OK         (-1) /* valid and complete */
#define INCOMPLETE (-2) /* no bad byte, but it stops inside a character */

struct vec {
        const char *name;
        const char *bytes;
        size_t len;
        int expect;
};

#define V(name, s, expect)                                                     \
        {                                                                      \
                name, s, sizeof(s) - 1, expect                                 \
        }

static size_t encode(uint32_t cp, uint8_t *out)
{
        if (cp < 0x80) {
                out[0] = (uint8_t)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (uint8_t)(0xc0 | cp >> 6);
                out[1] = (uint8_t)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (uint8_t)(0xe0 | cp >> 12);
                out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
                out[2] = (uint8_t)(0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (uint8_t)(0xf0 | cp >> 18);
        out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (uint8_t)(0x80 | (cp & 0x3f));
        return 4;
}

/* Feed one byte at a time: index of the byte that fails, or OK/INCOMPLETE. */
static int byte_by_byte(const uint8_t *s, size_t n)
{
        struct pxl_utf8 u;
        size_t i;

        pxl_utf8_init(&u);
        for (i = 0; i < n; i++) {
                if (pxl_utf8_feed(&u, s + i, 1) < 0)
                        return (int)i;
        }
        return pxl_utf8_complete(&u) ? OK : INCOMPLETE;
}

/* The outcome of a whole-buffer feed, without the position. */
static int whole(const uint8_t *s, size_t n)
{
        struct pxl_utf8 u;

        pxl_utf8_init(&u);
        if (pxl_utf8_feed(&u, s, n) < 0)
                return 0;
        return pxl_utf8_complete(&u) ? OK : INCOMPLETE;
}

static int coarse(int expect)
{
        return expect >= 0 ? 0 : expect;
}

static void check_vec(const struct vec *v)
{
        const uint8_t *s = (const uint8_t *)v->bytes;
        int got = byte_by_byte(s, v->len);

        if (got != v->expect)
                fail_msg("%s: expected %d, got %d", v->name, v->expect, got);
        assert_int_equal(whole(s, v->len), coarse(v->expect));
        assert_int_equal(pxl_utf8_valid(s, v->len), v->expect == OK);
        assert_int_equal(ref_valid(s, v->len), v->expect == OK);
}

static void check_table(const struct vec *t, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++)
                check_vec(&t[i]);
}

#define CHECK_TABLE(t) check_table(t, sizeof(t) / sizeof(t[0]))

/* Kuhn's UTF-8-test.txt, sections 1, 2 and 5.3, plus neighbours. */
static const struct vec valid_vecs[] = {
        V("empty", "", OK),
        V("1 kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", OK),
        V("2.1.1 U+0000", "\x00", OK),
        V("2.1.2 U+0080", "\xc2\x80", OK),
        V("2.1.3 U+0800", "\xe0\xa0\x80", OK),
        V("2.1.4 U+10000", "\xf0\x90\x80\x80", OK),
        V("2.2.1 U+007F", "\x7f", OK),
        V("2.2.2 U+07FF", "\xdf\xbf", OK),
        V("2.2.3 U+FFFF", "\xef\xbf\xbf", OK),
        V("2.2.4 U+10FFFF", "\xf4\x8f\xbf\xbf", OK),
        V("2.3.1 U+D7FF", "\xed\x9f\xbf", OK),
        V("2.3.2 U+E000", "\xee\x80\x80", OK),
        V("2.3.3 U+FFFD", "\xef\xbf\xbd", OK),
        V("5.3.1 U+FFFE", "\xef\xbf\xbe", OK),
        V("5.3.3 U+FDD0", "\xef\xb7\x90", OK),
        V("5.3.4 U+1FFFF", "\xf0\x9f\xbf\xbf", OK),
        V("U+1000 (E1)", "\xe1\x80\x80", OK),
        V("U+CFFF (EC)", "\xec\xbf\xbf", OK),
        V("U+40000 (F1)", "\xf1\x80\x80\x80", OK),
        V("U+FFFFF (F3)", "\xf3\xbf\xbf\xbf", OK),
        V("U+100000 (F4)", "\xf4\x80\x80\x80", OK),
        V("emoji", "\xf0\x9f\x98\x80", OK),
        V("mixed", "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", OK),
        V("ascii run", "The quick brown fox jumps over the lazy dog 0123456789",
          OK),
};

static const struct vec invalid_vecs[] = {
        /* 2.3.5 and neighbours: just above U+10FFFF. */
        V("U+110000", "\xf4\x90\x80\x80", 1),
        V("F4 BF BF BF", "\xf4\xbf\xbf\xbf", 1),
        V("F5", "\xf5\x80\x80\x80", 0),
        V("F7 BF BF BF", "\xf7\xbf\xbf\xbf", 0),
        /* 3.1 unexpected continuation bytes. */
        V("3.1.1 80", "\x80", 0),
        V("3.1.2 BF", "\xbf", 0),
        V("3.1.3 80 BF", "\x80\xbf", 0),
        V("3.1.8 80 BF x7", "\x80\xbf\x80\xbf\x80\xbf\x80", 0),
        V("continuation after a char", "\xc3\xa9\x80", 2),
        /* 3.2 lonely start characters followed by a space. */
        V("3.2.1 C0 20", "\xc0\x20", 0),
        V("3.2.1 C2 20", "\xc2\x20", 1),
        V("3.2.1 DF 20", "\xdf\x20", 1),
        V("3.2.2 E0 20", "\xe0\x20", 1),
        V("3.2.2 EF 20", "\xef\x20", 1),
        V("3.2.3 F0 20", "\xf0\x20", 1),
        V("3.2.3 F4 20", "\xf4\x20", 1),
        V("3.2.3 F7 20", "\xf7\x20", 0),
        V("3.2.4 F8 20", "\xf8\x20", 0),
        V("3.2.5 FC 20", "\xfc\x20", 0),
        /* 3.3 sequences with the last byte missing. */
        V("3.3.1 C0", "\xc0", 0),
        V("3.3.2 E0 80", "\xe0\x80", 1),
        V("3.3.3 F0 80 80", "\xf0\x80\x80", 1),
        V("3.3.4 F8 80 80 80", "\xf8\x80\x80\x80", 0),
        V("3.3.5 FC 80 80 80 80", "\xfc\x80\x80\x80\x80", 0),
        V("3.3.6 DF", "\xdf", INCOMPLETE),
        V("3.3.7 EF BF", "\xef\xbf", INCOMPLETE),
        V("3.3.8 F7 BF BF", "\xf7\xbf\xbf", 0),
        V("3.3.9 FB BF BF BF", "\xfb\xbf\xbf\xbf", 0),
        V("3.3.10 FD BF BF BF BF", "\xfd\xbf\xbf\xbf\xbf", 0),
        V("C2", "\xc2", INCOMPLETE),
        V("E0 A0", "\xe0\xa0", INCOMPLETE),
        V("F0 90 80", "\xf0\x90\x80", INCOMPLETE),
        V("F4 8F BF", "\xf4\x8f\xbf", INCOMPLETE),
        V("ED 9F", "\xed\x9f", INCOMPLETE),
        /* 3.4 concatenation of incomplete sequences. */
        V("3.4 C0 E0 80 ...", "\xc0\xe0\x80\xf0\x80\x80\xdf\xef\xbf", 0),
        V("3.4 DF EF BF", "\xdf\xef\xbf", 1),
        V("3.4 EF BF F4 8F BF", "\xef\xbf\xf4\x8f\xbf", 2),
        /* 3.5 impossible bytes. */
        V("3.5.1 FE", "\xfe", 0),
        V("3.5.2 FF", "\xff", 0),
        V("3.5.3 FE FE FF FF", "\xfe\xfe\xff\xff", 0),
        /* 4.1 overlong '/'. */
        V("4.1.1 C0 AF", "\xc0\xaf", 0),
        V("4.1.2 E0 80 AF", "\xe0\x80\xaf", 1),
        V("4.1.3 F0 80 80 AF", "\xf0\x80\x80\xaf", 1),
        V("4.1.4 F8 80 80 80 AF", "\xf8\x80\x80\x80\xaf", 0),
        V("4.1.5 FC 80 80 80 80 AF", "\xfc\x80\x80\x80\x80\xaf", 0),
        /* 4.2 maximum overlong sequences. */
        V("4.2.1 C1 BF", "\xc1\xbf", 0),
        V("4.2.2 E0 9F BF", "\xe0\x9f\xbf", 1),
        V("4.2.3 F0 8F BF BF", "\xf0\x8f\xbf\xbf", 1),
        V("4.2.4 F8 87 BF BF BF", "\xf8\x87\xbf\xbf\xbf", 0),
        V("4.2.5 FC 83 BF BF BF BF", "\xfc\x83\xbf\xbf\xbf\xbf", 0),
        /* 4.3 overlong NUL. */
        V("4.3.1 C0 80", "\xc0\x80", 0),
        V("4.3.2 E0 80 80", "\xe0\x80\x80", 1),
        V("4.3.3 F0 80 80 80", "\xf0\x80\x80\x80", 1),
        V("4.3.4 F8 80 80 80 80", "\xf8\x80\x80\x80\x80", 0),
        V("4.3.5 FC 80 80 80 80 80", "\xfc\x80\x80\x80\x80\x80", 0),
        /* 5.1 single UTF-16 surrogates. */
        V("5.1.1 U+D800", "\xed\xa0\x80", 1),
        V("5.1.2 U+DB7F", "\xed\xad\xbf", 1),
        V("5.1.3 U+DB80", "\xed\xae\x80", 1),
        V("5.1.4 U+DBFF", "\xed\xaf\xbf", 1),
        V("5.1.5 U+DC00", "\xed\xb0\x80", 1),
        V("5.1.6 U+DF80", "\xed\xbe\x80", 1),
        V("5.1.7 U+DFFF", "\xed\xbf\xbf", 1),
        /* 5.2 paired UTF-16 surrogates. */
        V("5.2.1 U+D800 U+DC00", "\xed\xa0\x80\xed\xb0\x80", 1),
        V("5.2.8 U+DBFF U+DFFF", "\xed\xaf\xbf\xed\xbf\xbf", 1),
        /* Bad bytes after valid text: the position must be exact. */
        V("ascii then 80", "hello world!\x80", 12),
        V("kosme then surrogate",
          "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", 12),
        V("long ascii then FF",
          "0123456789abcdef0123456789abcdef0123456789abcdef\xff", 48),
};

static void test_valid_vectors(void **state)
{
        (void)state;
        CHECK_TABLE(valid_vecs);
}

static void test_invalid_vectors(void **state)
{
        (void)state;
        CHECK_TABLE(invalid_vecs);
}

/* Every lead byte C0..FF followed by a space (Kuhn 3.2, all of it). */
static void test_lonely_start_bytes(void **state)
{
        unsigned b;

        (void)state;
        for (b = 0xc0; b <= 0xff; b++) {
                uint8_t s[2] = {(uint8_t)b, ' '};
                bool never = b <= 0xc1 || b >= 0xf5;

                assert_int_equal(byte_by_byte(s, 2), never ? 0 : 1);
                assert_int_equal(byte_by_byte(s, 1), never ? 0 : INCOMPLETE);
        }
}

/* Kuhn 3.1.9: every continuation byte alone fails at once. */
static void test_lonely_continuations(void **state)
{
        uint8_t all[64];
        unsigned b;

        (void)state;
        for (b = 0x80; b <= 0xbf; b++) {
                uint8_t s[3] = {'a', (uint8_t)b, 'a'};

                all[b - 0x80] = (uint8_t)b;
                assert_int_equal(byte_by_byte(s, 3), 1);
        }
        assert_int_equal(byte_by_byte(all, sizeof(all)), 0);
}

/* The boundaries the brief names, one by one, by code point. */
static void test_boundaries(void **state)
{
        static const struct {
                uint32_t cp;
                size_t len;
        } ok[] = {{0x7f, 1},   {0x80, 2},    {0x7ff, 2},
                  {0x800, 3},  {0xd7ff, 3},  {0xe000, 3},
                  {0xffff, 3}, {0x10000, 4}, {0x10ffff, 4}};
        uint8_t s[4];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                size_t n = encode(ok[i].cp, s);

                assert_int_equal(n, ok[i].len);
                assert_int_equal(byte_by_byte(s, n), OK);
                assert_true(pxl_utf8_valid(s, n));
        }
        /* U+110000 with the plain 4-byte pattern: F4 90 80 80. */
        assert_int_equal(encode(0x110000, s), 4);
        assert_memory_equal(s, "\xf4\x90\x80\x80", 4);
        assert_int_equal(byte_by_byte(s, 4), 1);
        /* The biggest 4-byte pattern, U+1FFFFF: F7 BF BF BF. */
        assert_int_equal(encode(0x1fffff, s), 4);
        assert_int_equal(byte_by_byte(s, 4), 0);
}

/* Every scalar value is accepted, every surrogate refused at byte 2. */
static void test_all_code_points(void **state)
{
        uint8_t s[4];
        uint32_t cp;

        (void)state;
        for (cp = 0; cp <= 0x10ffff; cp++) {
                size_t n = encode(cp, s);
                bool surrogate = cp >= 0xd800 && cp <= 0xdfff;

                if (surrogate) {
                        assert_int_equal(byte_by_byte(s, n), 1);
                        assert_false(pxl_utf8_valid(s, n));
                } else if (!pxl_utf8_valid(s, n)) {
                        fail_msg("U+%04X refused", (unsigned)cp);
                }
        }
}

/* The example from the brief: two feeds, the second fails at ED A0. */
static void test_fail_fast_across_feeds(void **state)
{
        const uint8_t a[] = "\xce\xba\xe1\xbd";
        const uint8_t b[] = "\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80";
        struct pxl_utf8 u;
        size_t i;

        (void)state;
        pxl_utf8_init(&u);
        assert_int_equal(pxl_utf8_feed(&u, a, sizeof(a) - 1), 0);
        assert_false(pxl_utf8_complete(&u));
        assert_int_equal(pxl_utf8_feed(&u, b, sizeof(b) - 1), -1);

        /* Byte by byte: ED still fine, A0 is the first bad byte. */
        pxl_utf8_init(&u);
        assert_int_equal(pxl_utf8_feed(&u, a, sizeof(a) - 1), 0);
        for (i = 0; i < 7; i++)
                assert_int_equal(pxl_utf8_feed(&u, b + i, 1), 0);
        assert_int_equal(pxl_utf8_feed(&u, b + 7, 1), 0);  /* ED */
        assert_int_equal(pxl_utf8_feed(&u, b + 8, 1), -1); /* A0 */
}

static void test_sticky_reject(void **state)
{
        struct pxl_utf8 u;

        (void)state;
        pxl_utf8_init(&u);
        assert_int_equal(pxl_utf8_feed(&u, (const uint8_t *)"\xff", 1), -1);
        assert_false(pxl_utf8_complete(&u));
        assert_int_equal(pxl_utf8_feed(&u, (const uint8_t *)"abc", 3), -1);
        assert_int_equal(pxl_utf8_feed(&u, (const uint8_t *)"", 0), -1);
        assert_false(pxl_utf8_complete(&u));
        /* init makes it usable again */
        pxl_utf8_init(&u);
        assert_int_equal(pxl_utf8_feed(&u, (const uint8_t *)"abc", 3), 0);
        assert_true(pxl_utf8_complete(&u));
}

static void test_empty_feed(void **state)
{
        struct pxl_utf8 u;

        (void)state;
        pxl_utf8_init(&u);
        assert_true(pxl_utf8_complete(&u));
        assert_int_equal(pxl_utf8_feed(&u, NULL, 0), 0);
        assert_true(pxl_utf8_complete(&u));
        assert_int_equal(pxl_utf8_feed(&u, (const uint8_t *)"\xe2", 1), 0);
        assert_int_equal(pxl_utf8_feed(&u, NULL, 0), 0);
        assert_false(pxl_utf8_complete(&u));
        assert_int_equal(pxl_utf8_feed(&u, (const uint8_t *)"\x82\xac", 2), 0);
        assert_true(pxl_utf8_complete(&u));
        assert_true(pxl_utf8_valid(NULL, 0));
}

/* Outcome of feeding s in three parts cut at i and j. */
static int split3(const uint8_t *s, size_t n, size_t i, size_t j)
{
        struct pxl_utf8 u;

        pxl_utf8_init(&u);
        if (pxl_utf8_feed(&u, s, i) < 0 ||
            pxl_utf8_feed(&u, s + i, j - i) < 0 ||
            pxl_utf8_feed(&u, s + j, n - j) < 0)
                return 0;
        return pxl_utf8_complete(&u) ? OK : INCOMPLETE;
}

static void split_table(const struct vec *t, size_t count)
{
        size_t k, i, j;

        for (k = 0; k < count; k++) {
                const uint8_t *s = (const uint8_t *)t[k].bytes;
                size_t n = t[k].len;

                for (i = 0; i <= n; i++) {
                        for (j = i; j <= n; j++) {
                                if (split3(s, n, i, j) != coarse(t[k].expect))
                                        fail_msg("%s: split %zu/%zu", t[k].name,
                                                 i, j);
                        }
                }
        }
}

static void test_split_every_position(void **state)
{
        (void)state;
        split_table(valid_vecs, sizeof(valid_vecs) / sizeof(valid_vecs[0]));
        split_table(invalid_vecs,
                    sizeof(invalid_vecs) / sizeof(invalid_vecs[0]));
}

/*
 * The 8-byte ASCII skip must not jump over a bad byte, whatever the
 * alignment of the buffer and the position of the byte.
 */
static void test_fast_path_positions(void **state)
{
        static const char *const inserts[] = {"\x80", "\xc0\x80", "\xff",
                                              "\xed\xa0\x80", "\xf4\x90"};
        uint8_t *mem = malloc(64 + 8);
        size_t off, pos, k;

        (void)state;
        assert_non_null(mem);
        for (off = 0; off < 8; off++) {
                uint8_t *s = mem + off;

                for (pos = 0; pos < 64; pos++) {
                        for (k = 0; k < 5; k++) {
                                size_t il = strlen(inserts[k]);
                                int bad = (k == 3 || k == 4) ? 1 : 0;

                                if (pos + il > 64)
                                        continue;
                                memset(s, 'x', 64);
                                memcpy(s + pos, inserts[k], il);
                                assert_int_equal(byte_by_byte(s, 64),
                                                 (int)pos + bad);
                                assert_int_equal(whole(s, 64), 0);
                        }
                        /* a valid 4-byte character at every position */
                        if (pos + 4 <= 64) {
                                memset(s, 'x', 64);
                                memcpy(s + pos, "\xf0\x9f\x98\x80", 4);
                                assert_true(pxl_utf8_valid(s, 64));
                        }
                        /* a truncated one at the very end */
                        memset(s, 'x', 64);
                        s[63] = 0xe2;
                        assert_int_equal(whole(s, 64), INCOMPLETE);
                }
        }
        free(mem);
}

/* All strings of 1, 2 and 3 bytes against the naive decoder. */
static void test_exhaustive_short(void **state)
{
        uint8_t s[3];
        unsigned a, b, c;

        (void)state;
        for (a = 0; a < 256; a++) {
                s[0] = (uint8_t)a;
                assert_int_equal(pxl_utf8_valid(s, 1), ref_valid(s, 1));
                for (b = 0; b < 256; b++) {
                        s[1] = (uint8_t)b;
                        assert_int_equal(pxl_utf8_valid(s, 2), ref_valid(s, 2));
                        for (c = 0; c < 256; c++) {
                                s[2] = (uint8_t)c;
                                if (pxl_utf8_valid(s, 3) != ref_valid(s, 3))
                                        fail_msg("%02x %02x %02x", a, b, c);
                        }
                }
        }
}

/* 4-byte strings: every lead and second byte, edge values for the rest. */
static void test_exhaustive_four(void **state)
{
        static const uint8_t tail[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90,
                                       0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xff};
        uint8_t s[4];
        unsigned a, b, c, d;

        (void)state;
        for (a = 0xc0; a < 256; a++) {
                s[0] = (uint8_t)a;
                for (b = 0; b < 256; b++) {
                        s[1] = (uint8_t)b;
                        for (c = 0; c < sizeof(tail); c++) {
                                s[2] = tail[c];
                                for (d = 0; d < sizeof(tail); d++) {
                                        s[3] = tail[d];
                                        if (pxl_utf8_valid(s, 4) !=
                                            ref_valid(s, 4))
                                                fail_msg("%02x %02x %02x %02x",
                                                         s[0], s[1], s[2],
                                                         s[3]);
                                }
                        }
                }
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_vectors),
                cmocka_unit_test(test_invalid_vectors),
                cmocka_unit_test(test_lonely_start_bytes),
                cmocka_unit_test(test_lonely_continuations),
                cmocka_unit_test(test_boundaries),
                cmocka_unit_test(test_all_code_points),
                cmocka_unit_test(test_fail_fast_across_feeds),
                cmocka_unit_test(test_sticky_reject),
                cmocka_unit_test(test_empty_feed),
                cmocka_unit_test(test_split_every_position),
                cmocka_unit_test(test_fast_path_positions),
                cmocka_unit_test(test_exhaustive_short),
                cmocka_unit_test(test_exhaustive_four),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
