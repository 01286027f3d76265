/*
 * pxl_prom.c - writes the Prometheus text exposition format 0.0.4:
 * HELP and TYPE lines, samples with one optional label, names made from
 * JSON keys. Pure: it appends to a pxl_str and knows no metric; which
 * figures exist and whether each is a counter is pxl_endpoints.c's.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pxl/pxl.h"
#include "pxl_prom.h"

static bool name_char(char c, bool first)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
               c == ':' || (!first && c >= '0' && c <= '9');
}

bool pxl_prom_name_ok(const char *name)
{
        if (name == NULL || name[0] == '\0')
                return false;
        for (size_t i = 0; name[i] != '\0'; i++)
                if (!name_char(name[i], i == 0))
                        return false;
        return true;
}

/* text with backslash and newline (and quote in a label) escaped. */
static int put_escaped(struct pxl_str *s, const char *text, bool quote)
{
        for (const char *p = text; *p != '\0'; p++) {
                int rc;

                if (*p == '\\')
                        rc = pxl_str_puts(s, "\\\\");
                else if (*p == '\n')
                        rc = pxl_str_puts(s, "\\n");
                else if (quote && *p == '"')
                        rc = pxl_str_puts(s, "\\\"");
                else
                        rc = pxl_str_append(s, p, 1);
                if (rc < 0)
                        return rc;
        }
        return PXL_OK;
}

int pxl_prom_family(struct pxl_str *s, const char *name, const char *type,
                    const char *help)
{
        if (!pxl_prom_name_ok(name))
                return PXL_EINVAL;
        if (pxl_str_puts(s, "# HELP ") < 0 || pxl_str_puts(s, name) < 0 ||
            pxl_str_puts(s, " ") < 0 || put_escaped(s, help, false) < 0 ||
            pxl_str_puts(s, "\n# TYPE ") < 0 || pxl_str_puts(s, name) < 0 ||
            pxl_str_puts(s, " ") < 0 || pxl_str_puts(s, type) < 0 ||
            pxl_str_puts(s, "\n") < 0)
                return PXL_ENOMEM;
        return PXL_OK;
}

static void format_value(char *buf, size_t cap, double v)
{
        if (isnan(v))
                snprintf(buf, cap, "NaN");
        else if (isinf(v))
                snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
        else if (v >= -9007199254740992.0 && v <= 9007199254740992.0 &&
                 v == (double)(long long)v)
                snprintf(buf, cap, "%lld", (long long)v);
        else
                snprintf(buf, cap, "%.17g", v);
}

int pxl_prom_label(struct pxl_str *labels, const char *name, const char *value)
{
        if (!pxl_prom_name_ok(name) || strchr(name, ':') != NULL)
                return PXL_EINVAL;
        if ((labels->len > 0 && pxl_str_puts(labels, ",") < 0) ||
            pxl_str_puts(labels, name) < 0 || pxl_str_puts(labels, "=\"") < 0 ||
            put_escaped(labels, value, true) < 0 ||
            pxl_str_puts(labels, "\"") < 0)
                return PXL_ENOMEM;
        return PXL_OK;
}

int pxl_prom_sample(struct pxl_str *s, const char *name, const char *labels,
                    double v)
{
        char num[40];

        if (!pxl_prom_name_ok(name))
                return PXL_EINVAL;
        format_value(num, sizeof(num), v);
        if (pxl_str_puts(s, name) < 0)
                return PXL_ENOMEM;
        if (labels != NULL && labels[0] != '\0' &&
            (pxl_str_puts(s, "{") < 0 || pxl_str_puts(s, labels) < 0 ||
             pxl_str_puts(s, "}") < 0))
                return PXL_ENOMEM;
        if (pxl_str_puts(s, " ") < 0 || pxl_str_puts(s, num) < 0 ||
            pxl_str_puts(s, "\n") < 0)
                return PXL_ENOMEM;
        return PXL_OK;
}

int pxl_prom_name_from_key(char *out, size_t cap, const char *key)
{
        size_t n = strnlen(out, cap);

        if (n == cap)
                return -1;
        for (const char *p = key; *p != '\0'; p++) {
                char c = *p;
                bool upper = c >= 'A' && c <= 'Z';

                /* "waitMs" -> "wait_ms"; "HTTPCode" keeps its run. */
                if (upper && p != key && !(p[-1] >= 'A' && p[-1] <= 'Z') &&
                    n > 0 && out[n - 1] != '_') {
                        if (n + 1 >= cap)
                                return -1;
                        out[n++] = '_';
                }
                if (upper)
                        c = (char)(c - 'A' + 'a');
                else if (!name_char(c, false))
                        c = '_';
                if (n + 1 >= cap)
                        return -1;
                out[n++] = c;
        }
        out[n] = '\0';
        return (int)n;
}
