/*
 * pxl_log.c - writes one event per line on stderr, in logfmt (default) or
 * JSON. It owns the level filter and the line format; what to log, and
 * when, is decided by the callers.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "pxl_json.h"
#include "pxl_log.h"

static int log_level = PXL_LOG_INFO;
static int log_format = PXL_LOG_LOGFMT;

static const char *const level_names[] = {"err", "warn", "notice", "info",
                                          "debug"};

void pxl_log_setup(int level, int format)
{
        log_level = level;
        log_format = format;
}

int pxl_log_level_from_name(const char *name)
{
        for (size_t i = 0; i < sizeof(level_names) / sizeof(*level_names);
             i++)
                if (strcmp(name, level_names[i]) == 0)
                        return (int)i;
        return -1;
}

int pxl_log_enabled(int level)
{
        return level <= log_level;
}

/* logfmt quotes a value when it has spaces, quotes or '='. */
static void put_logfmt_value(FILE *f, const char *v)
{
        if (v[0] != '\0' && strpbrk(v, " \"=\\\n\t") == NULL) {
                fputs(v, f);
                return;
        }
        fputc('"', f);
        for (; *v; v++) {
                if (*v == '"' || *v == '\\')
                        fputc('\\', f);
                if (*v == '\n')
                        fputs("\\n", f);
                else
                        fputc(*v, f);
        }
        fputc('"', f);
}

static void put_json_field(FILE *f, const char *key, const char *v)
{
        char buf[1024];
        size_t n = pxl_json_escape(buf, sizeof(buf), v, strlen(v));

        fprintf(f, ",\"%s\":%s", key, n < sizeof(buf) ? buf : "\"...\"");
}

void pxl_log_ctxv(int level, const char *plugin, const char *client,
                  const char *fmt, va_list ap)
{
        char msg[1024], ts[64];
        struct timeval tv;
        struct tm tm;

        if (!pxl_log_enabled(level))
                return;
        if (level < 0)
                level = 0;
        if (level > PXL_LOG_DEBUG)
                level = PXL_LOG_DEBUG;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

        flockfile(stderr);
        if (log_format == PXL_LOG_JSON) {
                fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\"", ts,
                        level_names[level]);
                if (plugin)
                        put_json_field(stderr, "plugin", plugin);
                if (client)
                        put_json_field(stderr, "client", client);
                put_json_field(stderr, "msg", msg);
                fputs("}\n", stderr);
        } else {
                fprintf(stderr, "ts=%s level=%s", ts, level_names[level]);
                if (plugin) {
                        fputs(" plugin=", stderr);
                        put_logfmt_value(stderr, plugin);
                }
                if (client) {
                        fputs(" client=", stderr);
                        put_logfmt_value(stderr, client);
                }
                fputs(" msg=", stderr);
                put_logfmt_value(stderr, msg);
                fputc('\n', stderr);
        }
        funlockfile(stderr);
}

void pxl_log_ctx(int level, const char *plugin, const char *client,
                 const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        pxl_log_ctxv(level, plugin, client, fmt, ap);
        va_end(ap);
}
