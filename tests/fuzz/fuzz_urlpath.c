/*
 * fuzz_urlpath.c - libFuzzer harness for framework/pxl_urlpath.c. The
 * input is a request path; its first byte also picks the output size.
 * Whatever resolve accepts must stay beneath the served folder: no
 * leading '/', no "..", no empty or hidden segment (but .well-known), no
 * backslash, NUL or control character, and it must fit. Types and dates
 * must not crash, and a date must read back as itself.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pxl_urlpath.h"

#define CHECK(c)                                                               \
        do {                                                                   \
                if (!(c))                                                      \
                        abort();                                               \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char out[512], date[30];
        size_t cap = size ? 1 + data[0] % sizeof(out) : sizeof(out);
        bool index;
        int rc = pxl_urlpath_resolve((const char *)data, size, out, cap,
                                     &index);

        if (rc == 0) {
                size_t n = strlen(out);
                const char *seg = out;

                CHECK(n > 0 && n < cap && out[0] != '/');
                for (size_t i = 0; i < n; i++)
                        CHECK((unsigned char)out[i] >= 0x20 &&
                              out[i] != 0x7f && out[i] != '\\');
                for (;;) {
                        const char *end = strchr(seg, '/');
                        size_t len = end ? (size_t)(end - seg) : strlen(seg);

                        CHECK(len > 0);
                        CHECK(seg[0] != '.' ||
                              (len == 11 && memcmp(seg, ".well-known", 11) ==
                                                    0));
                        if (end == NULL)
                                break;
                        seg = end + 1;
                }
                (void)pxl_urlpath_type(out);
        } else {
                CHECK(rc == 400 || rc == 414);
        }
        if (size >= 4) {
                uint32_t raw;
                time_t t;

                memcpy(&raw, data, sizeof(raw));
                t = (time_t)(raw & 0x7fffffff);
                pxl_http_date(t, date);
                CHECK(strlen(date) == 29);
                CHECK(pxl_http_date_parse(date, 29) == t);
                (void)pxl_http_date_parse((const char *)data, size);
        }
        return 0;
}
