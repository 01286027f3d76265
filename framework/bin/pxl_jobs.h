/*
 * pxl_jobs.h - inside pxl-jobs: what a store of jobs (SQLite,
 * pxl_jobs_sqlite.c; Redis, pxl_jobs_redis.c) answers each command
 * with, as rows of text values, which pxl_jobs.c alone prints. The
 * columns are named and typed here once, so both stores print alike.
 */
#ifndef PXL_JOBS_H
#define PXL_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pxl_config;

/* Exit statuses, as pxl-jobs(1) lists them. */
enum {
        JOBS_DONE = 0,
        JOBS_ERROR = 1,     /* config, database, Redis */
        JOBS_USAGE = 2,     /* the command line */
        JOBS_NOT_FOUND = 3, /* no such job, or retry of one not dead */
};

/* How a column is printed. */
enum pxl_jobs_kind {
        K_TEXT,   /* as it is */
        K_INT,    /* a number */
        K_TIME,   /* ms since the epoch, also as ISO 8601 (NAME_iso) */
        K_JSON,   /* stored JSON; a text that is not JSON as a string */
        K_STRING, /* a JSON string in show, to stay on one line */
};

struct pxl_jobs_column {
        const char *name;
        enum pxl_jobs_kind kind;
};

/* queues: one row per queue that has jobs, by name. */
enum {
        QC_QUEUE,
        QC_WAITING,
        QC_DELAYED,
        QC_ACTIVE,
        QC_COMPLETED,
        QC_DEAD,
        QC_N
};
/* dead QUEUE: one row per dead job, the oldest death first. */
enum { DC_ID, DC_ATTEMPT, DC_ATTEMPTS, DC_ERROR, DC_FINISHED_AT, DC_N };
/* show QUEUE ID: one row, every field of the job. */
enum {
        JC_QUEUE,
        JC_ID,
        JC_STATE,
        JC_PRIORITY,
        JC_ATTEMPT,
        JC_ATTEMPTS,
        JC_BACKOFF_MS,
        JC_BACKOFF_EXP,
        JC_TIMEOUT_MS,
        JC_KEEP,
        JC_RUN_AT,
        JC_LEASE_UNTIL,
        JC_OWNER,
        JC_CREATED_AT,
        JC_STARTED_AT,
        JC_FINISHED_AT,
        JC_PAYLOAD,
        JC_PROGRESS,
        JC_RESULT,
        JC_ERROR,
        JC_N
};

extern const struct pxl_jobs_column pxl_jobs_queue_columns[QC_N];
extern const struct pxl_jobs_column pxl_jobs_dead_columns[DC_N];
extern const struct pxl_jobs_column pxl_jobs_job_columns[JC_N];

/* A value as text; s NULL: not set (an SQL NULL, a missing field). */
struct pxl_jobs_value {
        char *s;
        size_t len;
};

/* Rows of ncols values each (owned). */
struct pxl_jobs_rows {
        size_t ncols, n, cap;
        struct pxl_jobs_value *v; /* row i is v + i * ncols */
};

/* A new row of unset values at the end; NULL when out of memory. */
struct pxl_jobs_value *pxl_jobs_row_new(struct pxl_jobs_rows *r);
/* Set v to a copy of s (len bytes; NULL: unset); false: out of memory. */
bool pxl_jobs_set(struct pxl_jobs_value *v, const char *s, size_t len);
bool pxl_jobs_set_int(struct pxl_jobs_value *v, int64_t n);
void pxl_jobs_rows_fini(struct pxl_jobs_rows *r);

/* CLOCK_REALTIME in ms since the epoch, the clock of the jobs' times. */
int64_t pxl_jobs_now_ms(void);

/* The command being run, and the store's own state. */
struct pxl_jobs {
        const struct pxl_jobs_store *store;
        void *be;           /* the store's */
        int64_t now;        /* ms since the epoch, read once */
        bool json;          /* --json: one JSON object per line */
        bool all;           /* retry --all */
        int64_t older_than; /* clean --older-than, seconds; -1 = unset */
};

/*
 * A store of jobs. Each function says what went wrong on stderr itself
 * and returns JOBS_ERROR then; a store that has no jobs yet answers as
 * an empty one, and creates nothing.
 */
struct pxl_jobs_store {
        const char *name;
        int (*open)(struct pxl_jobs *j, const struct pxl_config *conf);
        void (*close)(struct pxl_jobs *j);
        /* Rows of pxl_jobs_queue_columns, by queue name (bytes). */
        int (*queues)(struct pxl_jobs *j, struct pxl_jobs_rows *out);
        /* A row of pxl_jobs_job_columns, or JOBS_NOT_FOUND. */
        int (*show)(struct pxl_jobs *j, const char *queue, const char *id,
                    struct pxl_jobs_rows *out);
        /* Rows of pxl_jobs_dead_columns. */
        int (*dead)(struct pxl_jobs *j, const char *queue,
                    struct pxl_jobs_rows *out);
        /*
         * Dead jobs back to waiting from j->now, attempt 0: id, or every
         * dead job of the queue when id is NULL. *n: how many. When id
         * was not retried, *state is its state (a copy; NULL: no such
         * job).
         */
        int (*retry)(struct pxl_jobs *j, const char *queue, const char *id,
                     int64_t *n, char **state);
        /* Remove completed jobs; before >= 0: only those finished
         * earlier (ms). *n: how many. */
        int (*clean)(struct pxl_jobs *j, const char *queue, int64_t before,
                     int64_t *n);
};

extern const struct pxl_jobs_store pxl_jobs_sqlite;
extern const struct pxl_jobs_store pxl_jobs_redis;

#endif
