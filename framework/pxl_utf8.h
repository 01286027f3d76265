/*
 * pxl_utf8.h - incremental UTF-8 validation (pure; no I/O, no globals).
 * Rejects overlong forms, surrogates (U+D800..U+DFFF) and code points
 * above U+10FFFF as soon as the offending byte is seen (fail fast).
 */
#ifndef PXL_UTF8_H
#define PXL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pxl_utf8 {
        uint32_t state; /* 0 = at a character boundary */
};

static inline void pxl_utf8_init(struct pxl_utf8 *u)
{
        u->state = 0;
}

/*
 * Feed the next bytes of a stream. Returns 0 while the stream is valid so
 * far (possibly inside a multi-byte character), -1 on the first invalid
 * byte; after -1 the state stays invalid.
 */
int pxl_utf8_feed(struct pxl_utf8 *u, const uint8_t *buf, size_t len);
/* True when the stream so far ends at a character boundary. */
bool pxl_utf8_complete(const struct pxl_utf8 *u);
/* Whole-buffer check. */
bool pxl_utf8_valid(const uint8_t *buf, size_t len);

#endif
