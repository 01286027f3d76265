/*
 * pxl_jobs_sqlite.c - pxl-jobs' store without Redis: the jobs table of
 * pxl_queue_sql.h in the app's SQLite database or in queue.path. Queue
 * names and ids are bound as parameters, never SQL text. It never
 * creates the table or the file: without them there are no jobs, and
 * the commands run on an empty table in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pxl_conf.h"
#include "pxl_jobs.h"
#include "pxl_queue_int.h"
#include "pxl_queue_sql.h"
#include "pxl_str.h"

/* A busy timeout when the jobs have a file of their own (queue.path). */
#define JOBS_BUSY_TIMEOUT_MS 5000

struct sqlite_jobs {
        sqlite3 *db;      /* in memory when there is no file or table */
        const char *path; /* borrowed from the config */
};

static struct sqlite_jobs *state_of(const struct pxl_jobs *j)
{
        return j->be;
}

static int db_error(const struct pxl_jobs *j, const char *what)
{
        fprintf(stderr, "pxl-jobs: %s: %s: %s\n", state_of(j)->path, what,
                sqlite3_errmsg(state_of(j)->db));
        return JOBS_ERROR;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/*
 * A statement with queue (unless NULL) bound to ?1, or NULL after
 * saying why (naming `what`).
 */
static sqlite3_stmt *prepare(const struct pxl_jobs *j, const char *what,
                             const char *sql, const char *queue)
{
        sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(state_of(j)->db, sql, -1, &st, NULL) !=
            SQLITE_OK) {
                db_error(j, what);
                sqlite3_finalize(st);
                return NULL;
        }
        if (queue != NULL)
                bind_text(st, 1, queue);
        return st;
}

/*
 * Each row of st as a row of out (its columns in order); JOBS_DONE,
 * or JOBS_ERROR after saying why. st is finalized.
 */
static int collect(const struct pxl_jobs *j, sqlite3_stmt *st, const char *what,
                   struct pxl_jobs_rows *out)
{
        int rc;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct pxl_jobs_value *row = pxl_jobs_row_new(out);

                for (size_t i = 0; row != NULL && i < out->ncols; i++) {
                        /* The text first, then its length (SQLite's rule). */
                        const char *s =
                                (const char *)sqlite3_column_text(st, (int)i);
                        size_t len = (size_t)sqlite3_column_bytes(st, (int)i);

                        if (!pxl_jobs_set(&row[i], s, len))
                                row = NULL;
                }
                if (row == NULL) {
                        sqlite3_finalize(st);
                        fputs("pxl-jobs: out of memory\n", stderr);
                        return JOBS_ERROR;
                }
        }
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? JOBS_DONE : db_error(j, what);
}

/* Run st (finalized), a change: *n rows changed. */
static int change(const struct pxl_jobs *j, sqlite3_stmt *st, const char *what,
                  int64_t *n)
{
        int rc = sqlite3_step(st);

        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return db_error(j, what);
        *n = sqlite3_changes(state_of(j)->db);
        return JOBS_DONE;
}

/* No jobs yet: an empty jobs table, in memory. */
static int no_jobs(struct pxl_jobs *j)
{
        struct sqlite_jobs *s = state_of(j);

        sqlite3_close(s->db);
        s->db = NULL;
        if (sqlite3_open_v2(":memory:", &s->db, SQLITE_OPEN_READWRITE, NULL) !=
                    SQLITE_OK ||
            sqlite3_exec(s->db, PXL_QUEUE_SCHEMA, NULL, NULL, NULL) !=
                    SQLITE_OK)
                return db_error(j, "an empty table in memory");
        return JOBS_DONE;
}

/*
 * The file of the jobs: the app's SQLite database, or queue.path. A file
 * or table that is not there yet means no jobs (the runtime makes them
 * on first use); anything else is an error.
 */
static int sqlite_open(struct pxl_jobs *j, const struct pxl_config *conf)
{
        unsigned busy = JOBS_BUSY_TIMEOUT_MS;
        struct sqlite_jobs *s = calloc(1, sizeof(*s));
        sqlite3_stmt *st;
        int rc;

        if (s == NULL) {
                fputs("pxl-jobs: out of memory\n", stderr);
                return JOBS_ERROR;
        }
        j->be = s;
        if (conf->database.enabled && !conf->database.postgresql) {
                s->path = conf->database.path;
                busy = conf->database.busy_timeout;
        } else {
                s->path = conf->queue.path;
        }
        if (s->path == NULL) {
                fprintf(stderr,
                        "pxl-jobs: %s: no file for the jobs (set "
                        "name or queue.path)\n",
                        conf->file);
                return JOBS_ERROR;
        }
        if (access(s->path, F_OK) != 0 && errno == ENOENT)
                return no_jobs(j);
        rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE, NULL);
        if (rc != SQLITE_OK) {
                fprintf(stderr, "pxl-jobs: %s: cannot open: %s\n", s->path,
                        s->db != NULL ? sqlite3_errmsg(s->db)
                                      : sqlite3_errstr(rc));
                return JOBS_ERROR;
        }
        /* The server may be writing: wait for its locks as it does. */
        sqlite3_busy_timeout(s->db, (int)busy);
        st = prepare(j, "reading the schema",
                     "SELECT 1 FROM sqlite_master "
                     "WHERE type = 'table' AND name = 'pxl_jobs'",
                     NULL);
        if (st == NULL)
                return JOBS_ERROR;
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
                return no_jobs(j);
        return rc == SQLITE_ROW ? JOBS_DONE : db_error(j, "reading the schema");
}

static void sqlite_close(struct pxl_jobs *j)
{
        struct sqlite_jobs *s = state_of(j);

        if (s != NULL && s->db != NULL)
                sqlite3_close(s->db);
        free(s);
        j->be = NULL;
}

static int sqlite_queues(struct pxl_jobs *j, struct pxl_jobs_rows *out)
{
        sqlite3_stmt *st;

        /* The columns of pxl_jobs_queue_columns. */
        st = prepare(j, "counting the jobs",
                     "SELECT queue, "
                     "CAST(total(state = 'waiting' AND run_at <= ?1) AS INT), "
                     "CAST(total(state = 'waiting' AND run_at > ?1) AS INT), "
                     "CAST(total(state = 'active') AS INT), "
                     "CAST(total(state = 'completed') AS INT), "
                     "CAST(total(state = 'dead') AS INT) "
                     "FROM pxl_jobs GROUP BY queue ORDER BY queue",
                     NULL);
        if (st == NULL)
                return JOBS_ERROR;
        sqlite3_bind_int64(st, 1, j->now);
        return collect(j, st, "counting the jobs", out);
}

static int sqlite_show(struct pxl_jobs *j, const char *queue, const char *id,
                       struct pxl_jobs_rows *out)
{
        struct pxl_str sql = {0};
        sqlite3_stmt *st;
        int rc;

        /* The columns of pxl_jobs_job_columns, named alike in the table. */
        rc = pxl_str_puts(&sql, "SELECT ");
        for (size_t i = 0; i < JC_N; i++)
                if ((i > 0 && pxl_str_puts(&sql, ", ") < 0) ||
                    pxl_str_puts(&sql, pxl_jobs_job_columns[i].name) < 0)
                        rc = -1;
        if (rc < 0 ||
            pxl_str_puts(&sql, " FROM pxl_jobs WHERE queue = ?1 AND id = ?2") <
                    0) {
                pxl_str_fini(&sql);
                fputs("pxl-jobs: out of memory\n", stderr);
                return JOBS_ERROR;
        }
        st = prepare(j, "reading the job", sql.p, queue);
        pxl_str_fini(&sql);
        if (st == NULL)
                return JOBS_ERROR;
        bind_text(st, 2, id);
        rc = collect(j, st, "reading the job", out);
        return rc == JOBS_DONE && out->n == 0 ? JOBS_NOT_FOUND : rc;
}

static int sqlite_dead(struct pxl_jobs *j, const char *queue,
                       struct pxl_jobs_rows *out)
{
        sqlite3_stmt *st;

        /* The columns of pxl_jobs_dead_columns. */
        st = prepare(j, "listing the dead jobs",
                     "SELECT id, attempt, attempts, error, finished_at "
                     "FROM pxl_jobs WHERE queue = ?1 AND state = 'dead' "
                     "ORDER BY finished_at, id",
                     queue);
        if (st == NULL)
                return JOBS_ERROR;
        return collect(j, st, "listing the dead jobs", out);
}

/* The state of a job, a copy in *state (NULL: no such job). */
static int job_state(const struct pxl_jobs *j, const char *queue,
                     const char *id, char **state)
{
        sqlite3_stmt *st = prepare(j, "reading the job",
                                   "SELECT state FROM pxl_jobs "
                                   "WHERE queue = ?1 AND id = ?2",
                                   queue);
        int rc;

        if (st == NULL)
                return JOBS_ERROR;
        bind_text(st, 2, id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *state = strdup((const char *)sqlite3_column_text(st, 0));
                rc = *state != NULL ? JOBS_DONE : JOBS_ERROR;
                if (rc != JOBS_DONE)
                        fputs("pxl-jobs: out of memory\n", stderr);
        } else {
                rc = rc == SQLITE_DONE ? JOBS_DONE
                                       : db_error(j, "reading the job");
        }
        sqlite3_finalize(st);
        return rc;
}

static int sqlite_retry(struct pxl_jobs *j, const char *queue, const char *id,
                        int64_t *n, char **state)
{
        sqlite3_stmt *st;
        int rc;

        st = prepare(j, "retrying",
                     "UPDATE pxl_jobs SET state = 'waiting', run_at = ?2, "
                     "attempt = 0, lease_until = NULL, owner = NULL, "
                     "finished_at = NULL "
                     "WHERE queue = ?1 AND state = 'dead' "
                     "AND (?3 IS NULL OR id = ?3)",
                     queue);
        if (st == NULL)
                return JOBS_ERROR;
        sqlite3_bind_int64(st, 2, j->now);
        if (id != NULL)
                bind_text(st, 3, id);
        rc = change(j, st, "retrying", n);
        if (rc == JOBS_DONE && id != NULL && *n == 0)
                return job_state(j, queue, id, state);
        return rc;
}

static int sqlite_clean(struct pxl_jobs *j, const char *queue, int64_t before,
                        int64_t *n)
{
        sqlite3_stmt *st;

        st = prepare(j, "removing completed jobs",
                     "DELETE FROM pxl_jobs "
                     "WHERE queue = ?1 AND state = 'completed' "
                     "AND (?2 IS NULL OR finished_at < ?2) "
                     "AND NOT (id GLOB 'schedule:*' AND finished_at > ?3)",
                     queue);
        if (st == NULL)
                return JOBS_ERROR;
        if (before >= 0)
                sqlite3_bind_int64(st, 2, before);
        /* A tick a late worker must still find: see PXL_QUEUE_LUA_CLEAN. */
        sqlite3_bind_int64(st, 3, j->now - PXL_QUEUE_SCHEDULE_KEEP_MS);
        return change(j, st, "removing completed jobs", n);
}

const struct pxl_jobs_store pxl_jobs_sqlite = {
        .name = "sqlite",
        .open = sqlite_open,
        .close = sqlite_close,
        .queues = sqlite_queues,
        .show = sqlite_show,
        .dead = sqlite_dead,
        .retry = sqlite_retry,
        .clean = sqlite_clean,
};
