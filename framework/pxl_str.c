/*
 * pxl_str.c - the growable byte buffer. Knows nothing of sockets or JSON
 * grammar; JSON string escaping is delegated to pxl_json.c.
 */
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
