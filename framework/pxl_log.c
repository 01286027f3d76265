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
static int log_worker = -1; /* no worker field */

static const char *const level_names[] = {"err", "warn", "notice", "info",
                                          "debug"};

void pxl_log_setup(int level, int format)
{
        log_level = level;
        log_format = format;
}

void pxl_log_set_worker(int worker)
{
        log_worker = worker;
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

/*
 * A line is built in memory and written with one call: workers of a
 * cluster share stderr, and a line written in pieces could interleave
 * with another process's line.
 */
struct line {
        char b[4096]; /* msg is under 1024 bytes: a line fits, escaped */
        size_t n;
};

static void put(struct line *l, const char *s, size_t len)
{
        size_t room = sizeof(l->b) - 1 - l->n; /* 1 kept for the newline */

        if (len > room)
                len = room;
        memcpy(l->b + l->n, s, len);
        l->n += len;
}

static void put_str(struct line *l, const char *s)
{
        put(l, s, strlen(s));
}

static void PXL_PRINTF(2, 3) put_fmt(struct line *l, const char *fmt, ...)
{
        char buf[256];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n > 0)
                put(l, buf,
                    (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* logfmt quotes a value when it has spaces, quotes or '='. */
static void put_logfmt_value(struct line *l, const char *v)
{
        if (v[0] != '\0' && strpbrk(v, " \"=\\\n\t") == NULL) {
                put_str(l, v);
                return;
        }
        put(l, "\"", 1);
        for (; *v; v++) {
                if (*v == '"' || *v == '\\')
                        put(l, "\\", 1);
                if (*v == '\n')
                        put(l, "\\n", 2);
                else
                        put(l, v, 1);
        }
        put(l, "\"", 1);
}

static void put_json_field(struct line *l, const char *key, const char *v)
{
        char buf[1024];
        size_t n = pxl_json_escape(buf, sizeof(buf), v, strlen(v));

        put_fmt(l, ",\"%s\":", key);
        put_str(l, n < sizeof(buf) ? buf : "\"...\"");
}

static void put_field_value(struct line *l, const struct pxl_log_field *f)
{
        if (f->real)
                put_fmt(l, "%.0f", f->d);
        else
                put_fmt(l, "%lld", f->i);
}

static void write_line(int level, const char *plugin, const char *client,
                       const char *msg, const struct pxl_log_field *fields,
                       size_t nfields);

void pxl_log_ctxv(int level, const char *plugin, const char *client,
                  const char *fmt, va_list ap)
{
        char msg[1024];

        if (!pxl_log_enabled(level))
                return;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        write_line(level, plugin, client, msg, NULL, 0);
}

void pxl_log_fields(int level, const char *msg,
                    const struct pxl_log_field *fields, size_t n)
{
        if (pxl_log_enabled(level))
                write_line(level, NULL, NULL, msg, fields, n);
}

static void write_line(int level, const char *plugin, const char *client,
                       const char *msg, const struct pxl_log_field *fields,
                       size_t nfields)
{
        char ts[64];
        struct line l;
        struct timeval tv;
        struct tm tm;

        if (level < 0)
                level = 0;
        if (level > PXL_LOG_DEBUG)
                level = PXL_LOG_DEBUG;
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

        l.n = 0;
        if (log_format == PXL_LOG_JSON) {
                put_fmt(&l, "{\"ts\":\"%s\",\"level\":\"%s\"", ts,
                        level_names[level]);
                if (log_worker == PXL_LOG_WORKER_MASTER)
                        put_str(&l, ",\"worker\":\"master\"");
                else if (log_worker >= 0)
                        put_fmt(&l, ",\"worker\":%d", log_worker);
                if (plugin)
                        put_json_field(&l, "plugin", plugin);
                if (client)
                        put_json_field(&l, "client", client);
                put_json_field(&l, "msg", msg);
                for (size_t i = 0; i < nfields; i++) {
                        put_fmt(&l, ",\"%s\":", fields[i].key);
                        put_field_value(&l, &fields[i]);
                }
                put_str(&l, "}");
        } else {
                put_fmt(&l, "ts=%s level=%s", ts, level_names[level]);
                if (log_worker == PXL_LOG_WORKER_MASTER)
                        put_str(&l, " worker=master");
                else if (log_worker >= 0)
                        put_fmt(&l, " worker=%d", log_worker);
                if (plugin) {
                        put_str(&l, " plugin=");
                        put_logfmt_value(&l, plugin);
                }
                if (client) {
                        put_str(&l, " client=");
                        put_logfmt_value(&l, client);
                }
                put_str(&l, " msg=");
                put_logfmt_value(&l, msg);
                for (size_t i = 0; i < nfields; i++) {
                        put_fmt(&l, " %s=", fields[i].key);
                        put_field_value(&l, &fields[i]);
                }
        }
        l.b[l.n++] = '\n';
        fwrite(l.b, 1, l.n, stderr);
        fflush(stderr);
}

void pxl_log_ctx(int level, const char *plugin, const char *client,
                 const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        pxl_log_ctxv(level, plugin, client, fmt, ap);
        va_end(ap);
}

void pxl_log_lines(int level, const char *prefix, const struct pxl_str *text)
{
        const char *line = text->p, *end;

        if (text->len == 0 || !pxl_log_enabled(level))
                return;
        while ((end = strchr(line, '\n')) != NULL) {
                pxl_logs(level, "%s%.*s", prefix, (int)(end - line), line);
                line = end + 1;
        }
}
