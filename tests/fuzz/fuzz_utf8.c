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
#include "ref_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
