/*
 * pxl_str.h - a growable byte buffer (pure). Used to assemble fragmented
 * messages and to build outgoing JSON without a malloc per message.
 */
#ifndef PXL_STR_H
#define PXL_STR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct pxl_str {
        char *p;
        size_t len;
        size_t cap;
};

/* Make room for `more` bytes after len. Returns 0 or PXL_ENOMEM. */
int pxl_str_reserve(struct pxl_str *s, size_t more);
int pxl_str_append(struct pxl_str *s, const void *buf, size_t len);
/* Append a C string literal or NUL-terminated string. */
int pxl_str_puts(struct pxl_str *s, const char *cstr);
/* Append s escaped as a JSON string literal, with its quotes. */
int pxl_str_json_string(struct pxl_str *s, const char *str, size_t len);
/* Write n bytes as 2n lowercase hex digits and a NUL to out. */
void pxl_hex(char *out, const unsigned char *raw, size_t n);
/* Forget the contents; keep the memory when it is small, else free it. */
void pxl_str_reset(struct pxl_str *s, size_t keep_cap);
void pxl_str_fini(struct pxl_str *s);

/*
 * Append one line of a report, "FILE:LINE: KEY: TEXT\n", the one shape
 * of pxl's config, plugin and auth errors: ":LINE" is left out when line
 * is 0 or less, "KEY: " when key is NULL, and TEXT comes from fmt. All
 * or nothing: 0, or PXL_ENOMEM with s unchanged.
 */
int pxl_str_report(struct pxl_str *s, const char *file, int line,
                   const char *key, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
int pxl_str_vreport(struct pxl_str *s, const char *file, int line,
                    const char *key, const char *fmt, va_list ap)
        __attribute__((format(printf, 5, 0)));
/*
 * Put report lines in the order of what they name: the files in the
 * order they first appear, and in each file by line (lines without a
 * number first); equal ones keep their order. 0, or PXL_ENOMEM with s
 * unchanged.
 */
int pxl_str_sort_reports(struct pxl_str *s);

#endif
