/*
 * ref_utf8.h - the reference UTF-8 rules the tests judge pxl_utf8.c by,
 * shared by fuzz_utf8.c, fuzz_ws_codec.c and tests/unit/test_utf8.c. It is
 * deliberately a different method from the DFA: decode each character,
 * then check its value, so that the two cannot share a mistake. Slow and
 * plain on purpose. The functions are static inline so that a file using
 * only some of them still builds without unused-function warnings.
 */
#ifndef PXL_REF_UTF8_H
#define PXL_REF_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* For the fuzzers: abort() rather than assert(), to survive -DNDEBUG. */
#define CHECK(x)                                                               \
        do {                                                                   \
                if (!(x))                                                      \
                        abort();                                               \
        } while (0)

/* Whole-buffer verdict: decode, then judge the value. */
static inline bool ref_valid(const uint8_t *s, size_t n)
{
        size_t i = 0;

        while (i < n) {
                uint32_t c = s[i], min;
                size_t k, j;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if ((c & 0xe0) == 0xc0) {
                        k = 1, c &= 0x1f, min = 0x80;
                } else if ((c & 0xf0) == 0xe0) {
                        k = 2, c &= 0x0f, min = 0x800;
                } else if ((c & 0xf8) == 0xf0) {
                        k = 3, c &= 0x07, min = 0x10000;
                } else {
                        return false;
                }
                if (n - i - 1 < k)
                        return false;
                for (j = 1; j <= k; j++) {
                        if ((s[i + j] & 0xc0) != 0x80)
                                return false;
                        c = c << 6 | (s[i + j] & 0x3f);
                }
                if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
                        return false;
                i += k + 1;
        }
        return true;
}

/* Length of the sequence a lead byte starts; 0 if it starts none. */
static inline size_t ref_seq_len(uint8_t c)
{
        if (c < 0x80)
                return 1;
        if (c >= 0xc0 && c < 0xe0)
                return 2;
        if (c >= 0xe0 && c < 0xf0)
                return 3;
        if (c >= 0xf0 && c < 0xf8)
                return 4;
        return 0;
}

/* Can the truncated character t[0..m) (m < 4) still become valid? */
static inline bool ref_completable(const uint8_t *t, size_t m)
{
        static const uint8_t fill[] = {0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf};
        size_t need, combos, i, j, x;
        uint8_t c[4];

        if (m == 0)
                return true;
        need = ref_seq_len(t[0]);
        if (need <= m)
                return false;
        memcpy(c, t, m);
        combos = 1;
        for (i = m; i < need; i++)
                combos *= sizeof(fill);
        for (j = 0; j < combos; j++) {
                for (x = j, i = m; i < need; i++, x /= sizeof(fill))
                        c[i] = fill[x % sizeof(fill)];
                if (ref_valid(c, need))
                        return true;
        }
        return false;
}

/*
 * Step over whole characters from *at. False on an invalid one (or a
 * truncated one that can never be completed); otherwise *at is left at the
 * start of the trailing incomplete character.
 */
static inline bool ref_walk(const uint8_t *s, size_t n, size_t *at)
{
        size_t i = *at;

        while (i < n) {
                size_t k = ref_seq_len(s[i]);

                if (k == 0)
                        return false;
                if (n - i < k)
                        break;
                if (!ref_valid(s + i, k))
                        return false;
                i += k;
        }
        *at = i;
        return ref_completable(s + i, n - i);
}

/*
 * True when s[0..n) is the start of some valid text: whole valid
 * characters, then a truncated one that some continuation bytes complete.
 */
static inline bool ref_prefix_ok(const uint8_t *s, size_t n)
{
        size_t at = 0;

        return ref_walk(s, n, &at);
}

#endif
