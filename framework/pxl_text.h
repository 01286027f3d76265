/*
 * pxl_text.h - tiny character helpers shared by the pure codecs
 * (pxl_http.c, pxl_json.c, pxl_json_build.c). Internal: not installed.
 */
#ifndef PXL_TEXT_H
#define PXL_TEXT_H

#include <stdbool.h>

static inline bool pxl_is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* The value of one hex digit, either case; -1 if c is not one. */
static inline int pxl_hexval(char c)
{
        if (pxl_is_digit(c))
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Past JSON's insignificant whitespace (RFC 8259: space, tab, LF, CR). */
static inline const char *pxl_json_skip_ws(const char *p, const char *end)
{
        while (p < end &&
               (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        return p;
}

#endif
