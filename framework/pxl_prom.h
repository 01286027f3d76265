/*
 * pxl_prom.h - the Prometheus text exposition format 0.0.4, written
 * (pure; no I/O, no globals): family headers, samples, metric names
 * made from JSON keys. What is exposed is pxl_endpoints.c's choice.
 */
#ifndef PXL_PROM_H
#define PXL_PROM_H

#include <stdbool.h>
#include <stddef.h>

#include "pxl_str.h"

#define PXL_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
bool pxl_prom_name_ok(const char *name);

/*
 * "# HELP name help" (help escaped: backslash, newline) and
 * "# TYPE name type" (type: "counter" or "gauge"). PXL_ENOMEM, or
 * PXL_EINVAL for a name that is not a metric name.
 */
int pxl_prom_family(struct pxl_str *s, const char *name, const char *type,
                    const char *help);

/*
 * Append name="value" to a label list (a comma first when labels is not
 * empty), the value escaped (backslash, quote, newline). PXL_EINVAL for
 * a name that is not a label name.
 */
int pxl_prom_label(struct pxl_str *labels, const char *name, const char *value);

/*
 * One sample line: name, {labels} when labels is neither NULL nor empty
 * (made with pxl_prom_label), then the value: integral values up to
 * 2^53 without an exponent, NaN and +Inf/-Inf spelled as the format
 * wants.
 */
int pxl_prom_sample(struct pxl_str *s, const char *name, const char *labels,
                    double v);

/*
 * A metric name from a prefix and a JSON key path part: "pxl_" +
 * "waitMs" -> "pxl_wait_ms" (camelCase to snake_case; any character
 * not allowed in a name becomes '_'). Appends to out (NUL-terminated,
 * cap bytes in all); returns the length, or -1 when it does not fit.
 */
int pxl_prom_name_from_key(char *out, size_t cap, const char *key);

#endif
