/*
 * pxl_str.c - the growable byte buffer. Knows nothing of sockets or JSON
 * grammar; JSON string escaping is delegated to pxl_json.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pxl/pxl.h"
#include "pxl_json.h"
#include "pxl_str.h"

int pxl_str_reserve(struct pxl_str *s, size_t more)
{
        size_t need = s->len + more + 1; /* room for a NUL */
        size_t cap;
        char *p;

        if (need < s->len)
                return PXL_ENOMEM;
        if (need <= s->cap)
                return PXL_OK;
        cap = s->cap ? s->cap : 256;
        while (cap < need) {
                if (cap > SIZE_MAX / 2)
                        return PXL_ENOMEM;
                cap *= 2;
        }
        p = realloc(s->p, cap);
        if (p == NULL)
                return PXL_ENOMEM;
        s->p = p;
        s->cap = cap;
        return PXL_OK;
}

int pxl_str_append(struct pxl_str *s, const void *buf, size_t len)
{
        if (pxl_str_reserve(s, len) < 0)
                return PXL_ENOMEM;
        if (len)
                memcpy(s->p + s->len, buf, len);
        s->len += len;
        s->p[s->len] = '\0';
        return PXL_OK;
}

int pxl_str_puts(struct pxl_str *s, const char *cstr)
{
        return pxl_str_append(s, cstr, strlen(cstr));
}

int pxl_str_json_string(struct pxl_str *s, const char *str, size_t len)
{
        size_t need = pxl_json_escape(NULL, 0, str, len);

        if (pxl_str_reserve(s, need) < 0)
                return PXL_ENOMEM;
        pxl_json_escape(s->p + s->len, need + 1, str, len);
        s->len += need;
        return PXL_OK;
}

void pxl_str_reset(struct pxl_str *s, size_t keep_cap)
{
        if (s->cap > keep_cap) {
                free(s->p);
                s->p = NULL;
                s->cap = 0;
        }
        s->len = 0;
}

void pxl_str_fini(struct pxl_str *s)
{
        free(s->p);
        s->p = NULL;
        s->len = s->cap = 0;
}

void pxl_hex(char *out, const unsigned char *raw, size_t n)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[raw[i] >> 4];
                out[2 * i + 1] = digits[raw[i] & 15];
        }
        out[2 * n] = '\0';
}

/* Append printf-style text; on failure s->len is back where it was. */
static int str_vprintf(struct pxl_str *s, const char *fmt, va_list ap)
{
        va_list again;
        int n;

        va_copy(again, ap);
        n = vsnprintf(NULL, 0, fmt, again);
        va_end(again);
        if (n < 0 || pxl_str_reserve(s, (size_t)n) < 0)
                return PXL_ENOMEM;
        vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
        s->len += (size_t)n;
        return PXL_OK;
}

static int str_printf(struct pxl_str *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static int str_printf(struct pxl_str *s, const char *fmt, ...)
{
        va_list ap;
        int rc;

        va_start(ap, fmt);
        rc = str_vprintf(s, fmt, ap);
        va_end(ap);
        return rc;
}

int pxl_str_vreport(struct pxl_str *s, const char *file, int line,
                    const char *key, const char *fmt, va_list ap)
{
        size_t len = s->len;
        int rc = str_printf(s, "%s", file);

        if (rc == 0 && line > 0)
                rc = str_printf(s, ":%d", line);
        if (rc == 0 && key != NULL)
                rc = str_printf(s, ": %s", key);
        if (rc == 0)
                rc = pxl_str_puts(s, ": ");
        if (rc == 0)
                rc = str_vprintf(s, fmt, ap);
        if (rc == 0)
                rc = pxl_str_puts(s, "\n");
        if (rc < 0 && s->p != NULL) {
                s->len = len;
                s->p[len] = '\0';
        }
        return rc;
}

int pxl_str_report(struct pxl_str *s, const char *file, int line,
                   const char *key, const char *fmt, ...)
{
        va_list ap;
        int rc;

        va_start(ap, fmt);
        rc = pxl_str_vreport(s, file, line, key, fmt, ap);
        va_end(ap);
        return rc;
}
