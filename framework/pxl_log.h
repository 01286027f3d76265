/*
 * pxl_log.h - the process logger: level filter, logfmt or JSON lines to
 * stderr, a file or syslog. Callers pass their context (plugin, client);
 * the logger formats and writes.
 */
#ifndef PXL_LOG_H
#define PXL_LOG_H

#include <stdarg.h>

#include <stdbool.h>
#include <stddef.h>

#include "pxl/pxl.h"
#include "pxl_str.h"

struct pxl_str;

enum pxl_log_format { PXL_LOG_LOGFMT = 0, PXL_LOG_JSON };
enum pxl_log_dest { PXL_LOG_TO_STDERR = 0, PXL_LOG_TO_FILE, PXL_LOG_TO_SYSLOG };

#define PXL_LOG_FACILITY_DAEMON 3

/* What log.* of the app file asks for (pxl_conf_log_settings fills it). */
struct pxl_log_settings {
        int level;                 /* PXL_LOG_ERR .. PXL_LOG_DEBUG */
        int format;                /* enum pxl_log_format */
        int dest;                  /* enum pxl_log_dest */
        const char *file;          /* PXL_LOG_TO_FILE: the path to append to */
        const char *syslog_socket; /* PXL_LOG_TO_SYSLOG: a unix datagram
                                    * socket ("/dev/log") */
        int facility;              /* PXL_LOG_TO_SYSLOG: 0 .. 23 */
        const char *tag;           /* syslog tag (the app name); NULL:
                                    * "pxl-serve"; fixed by the first call */
};

/*
 * Apply settings, at start and at any time after (SIGHUP reload). The new
 * destination is opened first: when it cannot be (a file that cannot be
 * opened for appending, a syslog socket nobody listens on), one line
 * "KEY: cannot ...: ERRNO" goes to errors, PXL_ERR is returned and
 * nothing changes. Otherwise level, format and destination all change
 * and 0 is returned. s is borrowed (strings are copied). Settings out
 * of range (file NULL with PXL_LOG_TO_FILE, a level or facility outside
 * its range) are PXL_EINVAL; syslog_socket NULL means "/dev/log".
 *
 * Thread safety: any thread may log at any time, also while this runs.
 * Level, format and destination are one atomic word that each line reads
 * once; each destination writes through a file descriptor number that
 * stays the same for the life of the process (a reopen dup3()s the new
 * file onto it), so a line is never written to a closed or reused
 * descriptor. A line being written while the destination changes goes
 * either to the old one or, when the old one is given up, to stderr.
 * pxl_log_configure and pxl_log_reopen serialise on a mutex taken only
 * by them (and by a syslog reconnect); writing a line takes no lock.
 * Call them from one thread at a time per process anyway (the loop).
 */
int pxl_log_configure(const struct pxl_log_settings *s, struct pxl_str *errors);
/*
 * SIGUSR1: reopen the log file by its path (after logrotate moved it)
 * and reconnect to syslog. Same rules: on failure the old file stays,
 * errors (may be NULL) says why, PXL_ERR. 0 with nothing to reopen.
 */
int pxl_log_reopen(struct pxl_str *errors);
/* pxl_log_reopen, with a line saying how it went ("WHY: ..."). */
void pxl_log_reopen_logged(const char *why);
/* Close the file or socket (at exit; lines after it go to stderr). */
void pxl_log_close(void);

/* Level and format only, destination unchanged (tools, fuzzers). */
void pxl_log_setup(int level, int format);
/*
 * In a cluster, every line names its process: worker=N for worker N,
 * worker=master for PXL_LOG_WORKER_MASTER; -1 (the default) adds nothing.
 * Also takes the process id for syslog lines: call it after a fork.
 */
#define PXL_LOG_WORKER_MASTER (-2)
void pxl_log_set_worker(int worker);
int pxl_log_level_from_name(const char *name); /* -1 if unknown */
/* "daemon", "local0".. as a syslog facility code; -1 if unknown. */
int pxl_log_facility_from_name(const char *name);
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
/* A field whose value is text: quoted as needed, a JSON string in json. */
struct pxl_log_text {
        const char *key; /* [a-z_] */
        const char *value;
};
/*
 * msg then the fields, each its own key: KEY=VALUE in logfmt, a JSON
 * number in json (a metrics line that a collector reads as numbers).
 */
void pxl_log_fields(int level, const char *msg,
                    const struct pxl_log_field *fields, size_t n);
/* The same with a client (may be NULL) and text fields before numbers. */
void pxl_log_record(int level, const char *client, const char *msg,
                    const struct pxl_log_text *texts, size_t ntexts,
                    const struct pxl_log_field *fields, size_t nfields);

/*
 * One line as it is written (pure; the unit tests' way in): ts NULL
 * leaves the timestamp out, syslog_tag non-NULL starts the line with
 * "<PRI>TAG[PID]: " for facility and no newline ends it. Returns the
 * length written to buf (at most cap, which must be 4096 or more).
 */
struct pxl_log_line {
        int level, format, worker, facility;
        long pid;
        const char *ts, *syslog_tag, *plugin, *client, *msg;
        const struct pxl_log_text *texts;
        size_t ntexts;
        const struct pxl_log_field *fields;
        size_t nfields;
};
size_t pxl_log_format_line(char *buf, size_t cap,
                           const struct pxl_log_line *line);

#endif
