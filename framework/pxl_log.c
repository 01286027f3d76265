/*
 * pxl_log.c - writes one event per line, in logfmt (default) or JSON, to
 * stderr, a file (reopened on SIGUSR1) or syslog (our own datagrams on a
 * unix socket). It owns the level filter, the line format and the
 * destination; what to log, and when, is decided by the callers.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pxl_json.h"
#include "pxl_log.h"
#include "pxl_str.h"

/*
 * Level, format, destination and syslog facility in one word, so that
 * a line reads them together: bits 0-2 level, 3 format, 4-5
 * destination, 6-10 facility.
 */
#define MODE(level, format, dest, facility)                                    \
        ((unsigned)(level) | (unsigned)(format) << 3 | (unsigned)(dest) << 4 | \
         (unsigned)(facility) << 6)
#define MODE_LEVEL(m)    ((int)((m)&7))
#define MODE_FORMAT(m)   ((int)((m) >> 3 & 1))
#define MODE_DEST(m)     ((int)((m) >> 4 & 3))
#define MODE_FACILITY(m) ((int)((m) >> 6 & 31))

static _Atomic unsigned log_mode =
        MODE(PXL_LOG_INFO, PXL_LOG_LOGFMT, PXL_LOG_TO_STDERR,
             PXL_LOG_FACILITY_DAEMON);
static _Atomic int log_worker = -1; /* no worker field */
static _Atomic long log_pid;        /* for syslog lines; 0: ask */
/*
 * The descriptor each destination writes to. A number, once given, stays
 * that destination's for the life of the process: a reopen dup3()s the
 * new file onto it, and a destination given up gets stderr dup3()ed onto
 * it, so a thread that read the number a moment ago never writes to a
 * closed or reused one. -1: not opened yet.
 */
static _Atomic int dest_fd[3] = {2, -1, -1};
/* Set once, by the first configure that names it. */
static char log_tag[64] = "pxl-serve";
static bool log_tag_set;

/* Held by configure, reopen and a syslog reconnect; never by a line. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_path;    /* the file to reopen; under log_lock */
static char *syslog_path; /* the socket to reconnect to; under log_lock */
static _Atomic long syslog_retry_at; /* no reconnect before (s, monotonic) */

static const char *const level_names[] = {"err", "warn", "notice", "info",
                                          "debug"};

static const char *const facility_names[] = {
        "kern",   "user",   "mail",   "daemon", "auth",     "syslog",
        "lpr",    "news",   "uucp",   "cron",   "authpriv", "ftp",
        NULL,     NULL,     NULL,     NULL,     "local0",   "local1",
        "local2", "local3", "local4", "local5", "local6",   "local7"};

static unsigned mode(void)
{
        return atomic_load_explicit(&log_mode, memory_order_acquire);
}

void pxl_log_setup(int level, int format)
{
        unsigned m = mode();

        atomic_store_explicit(
                &log_mode, MODE(level, format, MODE_DEST(m), MODE_FACILITY(m)),
                memory_order_release);
}

void pxl_log_set_worker(int worker)
{
        atomic_store(&log_worker, worker);
        atomic_store(&log_pid, (long)getpid());
}

int pxl_log_level_from_name(const char *name)
{
        for (size_t i = 0; i < sizeof(level_names) / sizeof(*level_names);
             i++)
                if (strcmp(name, level_names[i]) == 0)
                        return (int)i;
        return -1;
}

int pxl_log_facility_from_name(const char *name)
{
        for (size_t i = 0; i < sizeof(facility_names) / sizeof(*facility_names);
             i++)
                if (facility_names[i] != NULL &&
                    strcmp(name, facility_names[i]) == 0)
                        return (int)i;
        return -1;
}

int pxl_log_enabled(int level)
{
        return level <= MODE_LEVEL(atomic_load_explicit(&log_mode,
                                                        memory_order_relaxed));
}

/* ---- destinations ---- */

static void PXL_PRINTF(3, 4)
        report(struct pxl_str *errors, const char *key, const char *fmt, ...)
{
        char buf[512];
        va_list ap;

        if (errors == NULL)
                return;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        pxl_str_puts(errors, key);
        pxl_str_puts(errors, ": ");
        pxl_str_puts(errors, buf);
        pxl_str_puts(errors, "\n");
}

static int open_file(const char *path, struct pxl_str *errors)
{
        int fd =
                open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
                     0640);

        if (fd < 0)
                report(errors, "log.file", "cannot open %s for appending: %s",
                       path, strerror(errno));
        return fd;
}

static int open_syslog(const char *path, struct pxl_str *errors)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path)) {
                report(errors, "log.syslog_socket", "%s: path too long", path);
                return -1;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return fd;
        report(errors, "log.syslog_socket", "cannot connect to %s: %s", path,
               strerror(errno));
        if (fd >= 0)
                close(fd);
        return -1;
}

/* Make fd (taken) the descriptor of dest; under log_lock. */
static void install(int dest, int fd)
{
        int slot = atomic_load(&dest_fd[dest]);

        if (slot < 0) {
                atomic_store(&dest_fd[dest], fd);
                return;
        }
        while (dup3(fd, slot, O_CLOEXEC) < 0 && errno == EINTR)
                ;
        close(fd);
}

/* Let go of dest's file or socket: stragglers write to stderr. */
static void retire(int dest)
{
        int slot = atomic_load(&dest_fd[dest]);

        if (dest == PXL_LOG_TO_STDERR || slot < 0)
                return;
        while (dup3(2, slot, O_CLOEXEC) < 0 && errno == EINTR)
                ;
}

static int replace_string(char **to, const char *s)
{
        char *copy = strdup(s);

        if (copy == NULL)
                return PXL_ENOMEM;
        free(*to);
        *to = copy;
        return PXL_OK;
}

int pxl_log_configure(const struct pxl_log_settings *s, struct pxl_str *errors)
{
        const char *syslog_socket = s->syslog_socket;
        int fd = -1, old_dest;

        if ((s->dest == PXL_LOG_TO_FILE && s->file == NULL) ||
            s->dest < PXL_LOG_TO_STDERR || s->dest > PXL_LOG_TO_SYSLOG ||
            s->level < PXL_LOG_ERR || s->level > PXL_LOG_DEBUG ||
            s->facility < 0 || s->facility > 23) {
                report(errors, "log", "settings out of range");
                return PXL_EINVAL;
        }
        if (syslog_socket == NULL)
                syslog_socket = "/dev/log";
        pthread_mutex_lock(&log_lock);
        if (s->dest == PXL_LOG_TO_FILE)
                fd = open_file(s->file, errors);
        else if (s->dest == PXL_LOG_TO_SYSLOG)
                fd = open_syslog(syslog_socket, errors);
        if (s->dest != PXL_LOG_TO_STDERR && fd < 0) {
                pthread_mutex_unlock(&log_lock);
                return PXL_ERR;
        }
        if ((s->dest == PXL_LOG_TO_FILE &&
             replace_string(&log_path, s->file) < 0) ||
            (s->dest == PXL_LOG_TO_SYSLOG &&
             replace_string(&syslog_path, syslog_socket) < 0)) {
                report(errors, "log", "out of memory");
                close(fd);
                pthread_mutex_unlock(&log_lock);
                return PXL_ENOMEM;
        }
        if (s->tag != NULL && !log_tag_set) {
                snprintf(log_tag, sizeof(log_tag), "%s", s->tag);
                log_tag_set = true;
        }
        if (atomic_load(&log_pid) == 0)
                atomic_store(&log_pid, (long)getpid());
        if (fd >= 0)
                install(s->dest, fd);
        old_dest = MODE_DEST(mode());
        atomic_store_explicit(&log_mode,
                              MODE(s->level, s->format, s->dest, s->facility),
                              memory_order_release);
        if (old_dest != s->dest)
                retire(old_dest);
        pthread_mutex_unlock(&log_lock);
        return PXL_OK;
}

int pxl_log_reopen(struct pxl_str *errors)
{
        int dest, fd = -1, rc = PXL_OK;

        pthread_mutex_lock(&log_lock);
        dest = MODE_DEST(mode());
        if (dest == PXL_LOG_TO_FILE && log_path != NULL)
                fd = open_file(log_path, errors);
        else if (dest == PXL_LOG_TO_SYSLOG && syslog_path != NULL)
                fd = open_syslog(syslog_path, errors);
        else
                dest = PXL_LOG_TO_STDERR;
        if (dest != PXL_LOG_TO_STDERR) {
                if (fd >= 0)
                        install(dest, fd);
                else
                        rc = PXL_ERR;
        }
        pthread_mutex_unlock(&log_lock);
        return rc;
}

void pxl_log_reopen_logged(const char *why)
{
        struct pxl_str err = {0};

        if (pxl_log_reopen(&err) < 0)
                pxl_logs(PXL_LOG_ERR,
                         "%s: %.*s, still writing to the old "
                         "file",
                         why, err.len > 0 ? (int)err.len - 1 : 0,
                         err.p != NULL ? err.p : "");
        else
                pxl_logs(PXL_LOG_INFO, "%s: log reopened", why);
        pxl_str_fini(&err);
}

void pxl_log_close(void)
{
        unsigned m;

        pthread_mutex_lock(&log_lock);
        m = mode();
        atomic_store(&log_mode, MODE(MODE_LEVEL(m), MODE_FORMAT(m),
                                     PXL_LOG_TO_STDERR, MODE_FACILITY(m)));
        for (int d = PXL_LOG_TO_FILE; d <= PXL_LOG_TO_SYSLOG; d++) {
                int fd = atomic_exchange(&dest_fd[d], -1);

                if (fd >= 0)
                        close(fd);
        }
        free(log_path);
        free(syslog_path);
        log_path = syslog_path = NULL;
        pthread_mutex_unlock(&log_lock);
}

/* ---- formatting ---- */

struct line {
        char *b;
        size_t cap, n; /* one byte of cap is kept for the newline */
};

static void put(struct line *l, const char *s, size_t len)
{
        size_t room = l->cap - 1 - l->n;

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

/* A text field: ,"key":"value" in json, " key=value" in logfmt. */
static void put_text(struct line *l, int format, const char *key, const char *v)
{
        char buf[1024];
        size_t n;

        if (format == PXL_LOG_JSON) {
                n = pxl_json_escape(buf, sizeof(buf), v, strlen(v));
                put_fmt(l, ",\"%s\":", key);
                put_str(l, n < sizeof(buf) ? buf : "\"...\"");
        } else {
                put_fmt(l, " %s=", key);
                put_logfmt_value(l, v);
        }
}

/* The fields every line starts with, in logfmt and in JSON. */
static const struct {
        const char *ts, *level, *master, *worker;
} head[2] = {
        {"ts=%s ", "level=%s", " worker=master", " worker=%d"},
        {"\"ts\":\"%s\",", "\"level\":\"%s\"", ",\"worker\":\"master\"",
         ",\"worker\":%d"},
};

size_t pxl_log_format_line(char *buf, size_t cap, const struct pxl_log_line *in)
{
        struct line l = {buf, cap, 0};
        bool json = in->format == PXL_LOG_JSON;
        int level = in->level;

        if (level < 0)
                level = 0;
        if (level > PXL_LOG_DEBUG)
                level = PXL_LOG_DEBUG;
        /* Syslog severities: err 3, warning 4, notice 5, info 6, debug 7. */
        if (in->syslog_tag != NULL)
                put_fmt(&l, "<%d>%s[%ld]: ", in->facility * 8 + level + 3,
                        in->syslog_tag, in->pid);
        if (json)
                put_str(&l, "{");
        if (in->ts != NULL)
                put_fmt(&l, head[json].ts, in->ts);
        put_fmt(&l, head[json].level, level_names[level]);
        if (in->worker == PXL_LOG_WORKER_MASTER)
                put_str(&l, head[json].master);
        else if (in->worker >= 0)
                put_fmt(&l, head[json].worker, in->worker);
        if (in->plugin)
                put_text(&l, in->format, "plugin", in->plugin);
        if (in->client)
                put_text(&l, in->format, "client", in->client);
        put_text(&l, in->format, "msg", in->msg);
        for (size_t i = 0; i < in->ntexts; i++)
                put_text(&l, in->format, in->texts[i].key, in->texts[i].value);
        for (size_t i = 0; i < in->nfields; i++) {
                const struct pxl_log_field *f = &in->fields[i];

                put_fmt(&l, json ? ",\"%s\":" : " %s=", f->key);
                if (f->real)
                        put_fmt(&l, "%.0f", f->d);
                else
                        put_fmt(&l, "%lld", f->i);
        }
        if (json)
                put_str(&l, "}");
        if (in->syslog_tag == NULL)
                l.b[l.n++] = '\n';
        return l.n;
}

/* ---- writing ---- */

static long monotonic_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long)ts.tv_sec;
}

static bool write_all(int fd, const char *b, size_t n)
{
        ssize_t w;

        while ((w = write(fd, b, n)) < 0 && errno == EINTR)
                ;
        return w == (ssize_t)n;
}

/*
 * A datagram to syslog. A socket whose reader went away (the daemon
 * restarted) is reconnected, at most once a second; a line that still
 * cannot go goes to stderr rather than nowhere.
 */
static void send_syslog(char *b, size_t n)
{
        int fd = atomic_load(&dest_fd[PXL_LOG_TO_SYSLOG]);
        long now;

        if (fd >= 0 && send(fd, b, n, MSG_NOSIGNAL) == (ssize_t)n)
                return;
        now = monotonic_s();
        if (now >= atomic_load(&syslog_retry_at)) {
                atomic_store(&syslog_retry_at, now + 1);
                pthread_mutex_lock(&log_lock);
                if (syslog_path != NULL &&
                    MODE_DEST(mode()) == PXL_LOG_TO_SYSLOG &&
                    (fd = open_syslog(syslog_path, NULL)) >= 0)
                        install(PXL_LOG_TO_SYSLOG, fd);
                pthread_mutex_unlock(&log_lock);
                fd = atomic_load(&dest_fd[PXL_LOG_TO_SYSLOG]);
                if (fd >= 0 && send(fd, b, n, MSG_NOSIGNAL) == (ssize_t)n)
                        return;
        }
        /* pxl_log_format_line kept the byte after the line free. */
        b[n] = '\n';
        write_all(2, b, n + 1);
}

/*
 * A line is built in memory and written with one call: workers of a
 * cluster share the file or stderr, and a line written in pieces could
 * interleave with another process's line.
 */
static void write_line(unsigned m, const char *plugin, const char *client,
                       const char *msg, const struct pxl_log_text *texts,
                       size_t ntexts, const struct pxl_log_field *fields,
                       size_t nfields, int level)
{
        char ts[64], b[4096]; /* msg is under 1024 bytes: a line fits */
        struct timeval tv;
        struct tm tm;
        int dest = MODE_DEST(m);
        struct pxl_log_line in = {
                .level = level,
                .format = MODE_FORMAT(m),
                .worker = atomic_load(&log_worker),
                .facility = MODE_FACILITY(m),
                .pid = atomic_load(&log_pid),
                .plugin = plugin,
                .client = client,
                .msg = msg,
                .texts = texts,
                .ntexts = ntexts,
                .fields = fields,
                .nfields = nfields,
        };
        size_t n;

        if (dest == PXL_LOG_TO_SYSLOG) {
                in.syslog_tag = log_tag;
                if (in.pid == 0)
                        in.pid = (long)getpid();
        } else {
                gettimeofday(&tv, NULL);
                gmtime_r(&tv.tv_sec, &tm);
                snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec,
                         (int)(tv.tv_usec / 1000));
                in.ts = ts;
        }
        n = pxl_log_format_line(b, sizeof(b), &in);
        if (dest == PXL_LOG_TO_SYSLOG)
                send_syslog(b, n);
        else
                write_all(atomic_load(&dest_fd[dest]), b, n);
}

void pxl_log_ctxv(int level, const char *plugin, const char *client,
                  const char *fmt, va_list ap)
{
        unsigned m = mode();
        char msg[1024];

        if (level > MODE_LEVEL(m))
                return;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        write_line(m, plugin, client, msg, NULL, 0, NULL, 0, level);
}

void pxl_log_record(int level, const char *client, const char *msg,
                    const struct pxl_log_text *texts, size_t ntexts,
                    const struct pxl_log_field *fields, size_t nfields)
{
        unsigned m = mode();

        if (level <= MODE_LEVEL(m))
                write_line(m, NULL, client, msg, texts, ntexts, fields, nfields,
                           level);
}

void pxl_log_fields(int level, const char *msg,
                    const struct pxl_log_field *fields, size_t n)
{
        pxl_log_record(level, NULL, msg, NULL, 0, fields, n);
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
