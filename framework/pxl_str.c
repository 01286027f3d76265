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

struct report_line {
        const char *p;
        size_t len;    /* with its newline */
        size_t file;   /* the first line naming the same file */
        long line;     /* 0 when it names none */
        size_t seq;
};

static int report_order(const void *a, const void *b)
{
        const struct report_line *x = a, *y = b;
        int text;

        if (x->file != y->file)
                return x->file < y->file ? -1 : 1;
        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        /* On one line: plugins[0] before plugins[1], key by key. Lines
         * without a number keep their order (a plugin's table). */
        text = x->line == 0 ? 0
                            : memcmp(x->p, y->p,
                                     x->len < y->len ? x->len : y->len);
        if (text != 0)
                return text;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int pxl_str_sort_reports(struct pxl_str *s)
{
        struct report_line *v;
        size_t n = 0, cap = 0;
        char *sorted;

        if (s->len == 0)
                return PXL_OK;
        for (size_t i = 0; i < s->len; i++)
                cap += s->p[i] == '\n';
        cap++;
        v = calloc(cap, sizeof(*v));
        sorted = malloc(s->len + 1);
        if (v == NULL || sorted == NULL) {
                free(v);
                free(sorted);
                return PXL_ENOMEM;
        }
        for (const char *p = s->p, *end = s->p + s->len; p < end; n++) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *colon, *eol = nl != NULL ? nl : end;
                struct report_line *r = &v[n];

                r->p = p;
                r->len = (size_t)(eol - p) + (nl != NULL);
                r->seq = n;
                r->file = n;
                colon = memchr(p, ':', (size_t)(eol - p));
                if (colon != NULL) {
                        char *after;
                        long line = strtol(colon + 1, &after, 10);

                        if (after > colon + 1 && after < eol && *after == ':' &&
                            line > 0)
                                r->line = line;
                        for (size_t j = 0; j < n; j++) {
                                size_t flen = (size_t)(colon - p);

                                if (v[j].file == j &&
                                    memchr(v[j].p, ':', v[j].len) ==
                                            v[j].p + flen &&
                                    memcmp(v[j].p, p, flen) == 0) {
                                        r->file = j;
                                        break;
                                }
                        }
                }
                p = eol + (nl != NULL);
        }
        qsort(v, n, sizeof(*v), report_order);
        for (size_t i = 0, at = 0; i < n; at += v[i].len, i++)
                memcpy(sorted + at, v[i].p, v[i].len);
        memcpy(s->p, sorted, s->len);
        free(sorted);
        free(v);
        return PXL_OK;
}
