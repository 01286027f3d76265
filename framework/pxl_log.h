/*
 * pxl_log.h - the process logger: level filter, logfmt or JSON lines on
 * stderr. Callers pass their context (plugin, client); the logger formats.
 */
#ifndef PXL_LOG_H
#define PXL_LOG_H

#include <stdarg.h>

#include <stdbool.h>
#include <stddef.h>

#include "pxl/pxl.h"
#include "pxl_str.h"

enum pxl_log_format { PXL_LOG_LOGFMT = 0, PXL_LOG_JSON };

void pxl_log_setup(int level, int format);
/*
 * In a cluster, every line names its process: worker=N for worker N,
 * worker=master for PXL_LOG_WORKER_MASTER; -1 (the default) adds nothing.
 */
#define PXL_LOG_WORKER_MASTER (-2)
void pxl_log_set_worker(int worker);
int pxl_log_level_from_name(const char *name); /* -1 if unknown */
/* True when a message at `level` would be written. */
int pxl_log_enabled(int level);
/* plugin and client may be NULL. */
void pxl_log_ctxv(int level, const char *plugin, const char *client,
                  const char *fmt, va_list ap) PXL_PRINTF(4, 0);
void pxl_log_ctx(int level, const char *plugin, const char *client,
                 const char *fmt, ...) PXL_PRINTF(4, 5);
#define pxl_logs(level, ...) pxl_log_ctx((level), NULL, NULL, __VA_ARGS__)

/* Each "...\n" line of text as a line of its own at level, after prefix. */
void pxl_log_lines(int level, const char *prefix, const struct pxl_str *text);

/* A field of a line that carries figures: a whole number, or not. */
struct pxl_log_field {
        const char *key; /* [a-z_]: needs no quoting in either format */
        bool real;
        long long i;
        double d;
};
/*
 * msg then the fields, each its own key: KEY=VALUE in logfmt, a JSON
 * number in json (a metrics line that a collector reads as numbers).
 */
void pxl_log_fields(int level, const char *msg,
                    const struct pxl_log_field *fields, size_t n);

#endif
