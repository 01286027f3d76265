/*
 * pxl_wire.c - the header line of worker-to-worker messages (see
 * pxl_wire.h). Pure: unit-tested and fuzzed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pxl/pxl.h"
#include "pxl_wire.h"

static int is_word(const char *s, size_t len)
{
        if (len == 0)
                return 0;
        for (size_t i = 0; i < len; i++)
                if (s[i] == ' ' || s[i] == '\n' || s[i] == '\0')
                        return 0;
        return 1;
}

int pxl_wire_head(struct pxl_str *out, const char *origin, size_t origin_len,
                  uint64_t seq, char kind, const char *arg, size_t arg_len)
{
        char num[32]; /* " " + 20 digits + " K " */
        int n;

        if (!is_word(origin, origin_len) || kind == ' ' || kind == '\n' ||
            kind == '\0' || (arg_len > 0 && !is_word(arg, arg_len)))
                return PXL_EINVAL;
        n = snprintf(num, sizeof(num), " %" PRIu64 " %c ", seq, kind);
        if (pxl_str_append(out, origin, origin_len) < 0 ||
            pxl_str_append(out, num, (size_t)n) < 0 ||
            pxl_str_append(out, arg_len ? arg : "-", arg_len ? arg_len : 1) < 0 ||
            pxl_str_append(out, "\n", 1) < 0)
                return PXL_ENOMEM;
        return PXL_OK;
}

/* The next space-ended word of [*p, end); advances *p past the space. */
static int word(const char **p, const char *end, const char **w, size_t *len)
{
        const char *sp = memchr(*p, ' ', (size_t)(end - *p));

        if (sp == NULL || sp == *p)
                return PXL_EPROTO;
        *w = *p;
        *len = (size_t)(sp - *p);
        *p = sp + 1;
        return PXL_OK;
}

int pxl_wire_parse(const char *msg, size_t len, struct pxl_wire *w)
{
        const char *nl = memchr(msg, '\n', len), *p = msg, *s;
        size_t slen;
        uint64_t seq = 0;

        memset(w, 0, sizeof(*w));
        if (nl == NULL || memchr(msg, '\0', (size_t)(nl - msg)) != NULL)
                return PXL_EPROTO;
        if (word(&p, nl, &w->origin, &w->origin_len) < 0 ||
            word(&p, nl, &s, &slen) < 0 || slen > 20)
                return PXL_EPROTO;
        for (size_t i = 0; i < slen; i++) {
                if (s[i] < '0' || s[i] > '9' ||
                    seq > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
                        return PXL_EPROTO;
                seq = seq * 10 + (uint64_t)(s[i] - '0');
        }
        w->seq = seq;
        /* KIND is one character followed by a space, then ARG. */
        if (nl - p < 3 || p[0] == ' ' || p[1] != ' ')
                return PXL_EPROTO;
        w->kind = p[0];
        p += 2;
        if (p == nl || memchr(p, ' ', (size_t)(nl - p)) != NULL)
                return PXL_EPROTO;
        if (!(nl - p == 1 && p[0] == '-')) {
                w->arg = p;
                w->arg_len = (size_t)(nl - p);
        } else {
                w->arg = p;
                w->arg_len = 0;
        }
        w->body = nl + 1;
        w->body_len = len - (size_t)(nl + 1 - msg);
        return PXL_OK;
}

void pxl_wire_split(const char *body, size_t len, const char **a,
                    size_t *alen, const char **b, size_t *blen)
{
        const char *nul = memchr(body, '\0', len);

        *a = body;
        if (nul == NULL) {
                *alen = len;
                *b = NULL;
                *blen = 0;
                return;
        }
        *alen = (size_t)(nul - body);
        *b = nul + 1;
        *blen = len - *alen - 1;
}
