/*
 * fuzz_wire.c - libFuzzer harness for pxl_wire.c: whatever another worker
 * (or anyone who can PUBLISH to the app's channels) sends, parsing stays
 * inside the message, and what it accepts, written back, reads the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pxl_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *buf, size_t len, const char *p, size_t n)
{
        if (n == 0)
                return;
        if (p < buf || n > len || (size_t)(p - buf) > len - n)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *buf = malloc(size ? size : 1); /* exact size: ASan sees overreads */
        struct pxl_wire w, again;
        struct pxl_str out = {0};
        const char *a, *b;
        size_t alen, blen;

        if (buf == NULL)
                return 0;
        memcpy(buf, data, size);
        if (pxl_wire_parse(buf, size, &w) == 0) {
                inside(buf, size, w.origin, w.origin_len);
                inside(buf, size, w.arg, w.arg_len);
                inside(buf, size, w.body, w.body_len);
                /* What it wrote back reads as the same message. */
                if (pxl_wire_head(&out, w.origin, w.origin_len, w.seq, w.kind,
                                  w.arg, w.arg_len) != 0 ||
                    pxl_str_append(&out, w.body, w.body_len) != 0 ||
                    pxl_wire_parse(out.p, out.len, &again) != 0)
                        abort();
                if (again.origin_len != w.origin_len ||
                    memcmp(again.origin, w.origin, w.origin_len) != 0 ||
                    again.seq != w.seq || again.kind != w.kind ||
                    again.arg_len != w.arg_len ||
                    memcmp(again.arg, w.arg, w.arg_len) != 0 ||
                    again.body_len != w.body_len ||
                    memcmp(again.body, w.body, w.body_len) != 0)
                        abort();
                pxl_wire_split(w.body, w.body_len, &a, &alen, &b, &blen);
                inside(buf, size, a, alen);
                inside(buf, size, b, blen);
        }
        pxl_str_fini(&out);
        free(buf);
        return 0;
}
