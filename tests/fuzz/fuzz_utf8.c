/*
 * fuzz_utf8.c - libFuzzer harness for framework/pxl_utf8.c. The whole input
 * is the text; its first byte also picks a split point. The validator must
 * agree with a naive decoder, give the same answer however the input is
 * split, and fail on exactly the first byte no valid text could continue
 * with. WebSocket framing is fuzzed by fuzz_ws_codec.c.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pxl_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() rather than assert(): the check must survive -DNDEBUG. */
#define CHECK(x)                                                               \
        do {                                                                   \
                if (!(x))                                                      \
                        abort();                                               \
        } while (0)

/* Decode, then judge the value: a different method from the DFA. */
static bool ref_valid(const uint8_t *s, size_t n)
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

static size_t ref_seq_len(uint8_t c)
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

/*
 * True when s[0..n) is the start of some valid text: whole valid
 * characters, then a truncated one that some continuation bytes complete.
 */
static bool ref_prefix_ok(const uint8_t *s, size_t n)
{
        static const uint8_t fill[] = {0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf};
        size_t i = 0, m, need, combos, j, k, x;
        uint8_t c[4];

        while (i < n) {
                need = ref_seq_len(s[i]);
                if (need == 0)
                        return false;
                if (n - i < need)
                        break;
                if (!ref_valid(s + i, need))
                        return false;
                i += need;
        }
        m = n - i;
        if (m == 0)
                return true;
        need = ref_seq_len(s[i]);
        memcpy(c, s + i, m);
        combos = 1;
        for (k = m; k < need; k++)
                combos *= sizeof(fill);
        for (j = 0; j < combos; j++) {
                for (x = j, k = m; k < need; k++, x /= sizeof(fill))
                        c[k] = fill[x % sizeof(fill)];
                if (ref_valid(c, need))
                        return true;
        }
        return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct pxl_utf8 u;
        bool valid = ref_valid(data, size);
        size_t cut = size ? data[0] % (size + 1) : 0;
        size_t i, bad = size;
        int rc;

        CHECK(pxl_utf8_valid(data, size) == valid);

        /* Two pieces: same verdict as one. */
        pxl_utf8_init(&u);
        rc = pxl_utf8_feed(&u, data, cut);
        if (rc == 0)
                rc = pxl_utf8_feed(&u, data + cut, size - cut);
        CHECK((rc == 0 && pxl_utf8_complete(&u)) == valid);

        /* One byte at a time: find where it fails. */
        pxl_utf8_init(&u);
        for (i = 0; i < size; i++) {
                if (pxl_utf8_feed(&u, data + i, 1) < 0) {
                        bad = i;
                        break;
                }
        }
        if (bad < size) {
                /* fail fast: the prefix before was fine, with it not */
                CHECK(!valid);
                CHECK(ref_prefix_ok(data, bad));
                CHECK(!ref_prefix_ok(data, bad + 1));
                /* and the state sticks */
                CHECK(pxl_utf8_feed(&u, (const uint8_t *)"a", 1) < 0);
                CHECK(!pxl_utf8_complete(&u));
                CHECK(rc < 0);
        } else {
                CHECK(ref_prefix_ok(data, size));
                CHECK(pxl_utf8_complete(&u) == valid);
                CHECK(rc == 0);
        }
        return 0;
}
