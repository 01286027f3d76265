/*
 * pxl_db_int.h - what the database's files share: the jobs pxl_db.c hands
 * to a back end (pxl_db_pg.c, pxl_db_sqlite.c) and gets back, the
 * parameters and results both speak, and the back end's interface.
 *
 * Threads: everything here runs on the worker's loop thread except the
 * pxl_db_result_* builders and pxl_db_params' reads, which an SQLite pool
 * thread may call on a job it holds (they touch only that job).
 */
#ifndef PXL_DB_INT_H
#define PXL_DB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "pxl/pxl.h"
#include "pxl_conf.h"
#include "pxl_str.h"

struct event_base;
struct pxl_worker;
struct pxl_plugin_slot;
struct pxl_db;

/* ---- parameters: JSON values, converted once on the loop ------------- */

enum pxl_db_param_kind {
        PXL_DB_PARAM_NULL,
        PXL_DB_PARAM_BOOL,   /* i is 0 or 1, text "false" or "true" */
        PXL_DB_PARAM_INT,    /* fits int64: i, and its text */
        PXL_DB_PARAM_NUMBER, /* any other number: its text as written */
        PXL_DB_PARAM_TEXT,   /* UTF-8 text without NUL bytes */
        PXL_DB_PARAM_BYTES,  /* binary: len raw bytes at text */
};

struct pxl_db_param {
        enum pxl_db_param_kind kind;
        const char *text; /* NUL-terminated (BYTES too), NULL for NULL */
        size_t len;
        int64_t i;
};

/*
 * Convert a params array (NULL: none) into *out (one allocation the
 * caller frees with free(); texts point into it). 0, or PXL_EINVAL with
 * a message in err ("parameter $2: text contains a NUL byte ..."), or
 * PXL_ENOMEM. Pure: unit-tested.
 */
int pxl_db_params(const struct json_object *params, struct pxl_db_param **out,
                  size_t *n, char *err, size_t errlen);

/*
 * Past white space, semicolons and comments (-- and C style), as the
 * SQL tokenizers do: what is left of a statement's tail.
 */
const char *pxl_db_sql_skip_blank(const char *p, const char *end);

/* ---- results --------------------------------------------------------- */

/* How a value reads as JSON (SQL NULL aside). */
enum pxl_db_kind {
        PXL_DB_TEXT,   /* a string */
        PXL_DB_NUMBER, /* a number; its text kept as written */
        PXL_DB_BOOL,   /* "t"/"true"/"1" true, else false */
        PXL_DB_JSON,   /* JSON text, embedded (a string if it does not parse) */
};

/* A back end's view of its own result (PostgreSQL: a PGresult). */
struct pxl_db_result_ops {
        const char *(*column_name)(const struct pxl_db_result *r, size_t col);
        /* NULL for SQL NULL; in range. */
        const char *(*value)(const struct pxl_db_result *r, size_t row,
                             size_t col, size_t *len);
        enum pxl_db_kind (*kind)(const struct pxl_db_result *r, size_t row,
                                 size_t col);
        void (*release)(struct pxl_db_result *r); /* frees data */
};

/* One cell of a table: a column name (the first ncols) or a value. */
struct pxl_db_cell {
        size_t off, len; /* in text */
        enum pxl_db_kind kind;
        bool null;
};

/*
 * What a statement gave. A back end fills it either with ops and data
 * (its own storage, read in place) or, ops NULL, as a table built with
 * pxl_db_result_columns/_put, which a pool thread may do.
 */
struct pxl_db_result {
        const struct pxl_db_result_ops *ops;
        void *data;
        size_t nrows, ncols;
        int64_t affected;
        char *error;      /* NULL on success */
        char sqlstate[6]; /* "" when none */
        /* the table, when ops is NULL: ncols names, then rows of values */
        struct pxl_str text;
        struct pxl_db_cell *cells;
        size_t ncells, cells_cap;
};

/* Record a failure (replaces an earlier one). sqlstate may be NULL. */
void pxl_db_result_fail(struct pxl_db_result *r, const char *sqlstate,
                        const char *fmt, ...) PXL_PRINTF(3, 4);
/* Start the table: ncols columns, no rows yet. 0 or PXL_ENOMEM. */
int pxl_db_result_columns(struct pxl_db_result *r, size_t ncols);
/*
 * Append the next cell, row by row after the column names: p NULL is
 * SQL NULL. A row is counted when its last cell is put. 0 or PXL_ENOMEM.
 */
int pxl_db_result_put(struct pxl_db_result *r, enum pxl_db_kind kind,
                      const char *p, size_t len);
/* Free what the result holds (the table, or the back end's data). */
void pxl_db_result_fini(struct pxl_db_result *r);

/* ---- jobs ------------------------------------------------------------ */

enum pxl_db_job_kind {
        PXL_DB_QUERY,
        PXL_DB_BEGIN,    /* reserve a connection for job->tx, run sql */
        PXL_DB_COMMIT,   /* run sql, then release the connection */
        PXL_DB_ROLLBACK, /* the same */
};

/*
 * One statement, from pxl_db.c to the back end and back. The back end
 * holds it from submit until it calls pxl_db_done, having filled result.
 */
struct pxl_db_job {
        TAILQ_ENTRY(pxl_db_job) link; /* the back end's, while it holds it */
        enum pxl_db_job_kind kind;
        const char *sql; /* NUL-terminated, one statement */
        size_t sql_len;
        const struct pxl_db_param *params;
        size_t nparams;
        /*
         * Transactions: NULL outside one. The back end keeps the
         * connection it reserved at BEGIN in *tx_conn (NULL when none is
         * bound: BEGIN failed, or the connection was lost) and clears
         * it when COMMIT or ROLLBACK is done. The jobs of one
         * transaction are submitted one at a time, in order.
         */
        void **tx_conn;
        /* The back end's: its cached statement went stale; sent again. */
        bool stale, retried;
        struct pxl_db_result result;
        /* pxl_db.c's own */
        struct pxl_db_private *priv;
};

TAILQ_HEAD(pxl_db_job_list, pxl_db_job);

/*
 * Hand a finished job back, on the loop thread: its callback runs now
 * and may submit more jobs (so submit must cope with being called from
 * inside the back end's own code that calls this).
 */
void pxl_db_done(struct pxl_db *db, struct pxl_db_job *job);

/* ---- the back ends --------------------------------------------------- */

struct pxl_db_backend {
        const char *name;
        /* Once per process, before the library is first used; may be NULL. */
        void (*setup)(void);
        /*
         * In a serving worker, on its loop: connect, start threads. With
         * database.required, a server that cannot be reached is an error
         * (errors gets "FILE: database: TEXT\n"); otherwise it is logged
         * and retried. *state is the back end's.
         */
        int (*start)(struct pxl_db *db, void **state, struct pxl_str *errors);
        /* Run job; the back end holds it until pxl_db_done. */
        void (*submit)(struct pxl_db *db, void *state, struct pxl_db_job *job);
        /*
         * Finish: every job it holds goes back through pxl_db_done (with
         * its result, or an error "database stopped"); then free state.
         */
        void (*stop)(struct pxl_db *db, void *state);
        /* Queries can run now (a flag, no round trip); NULL: always. */
        bool (*up)(const void *state);
};

extern const struct pxl_db_backend pxl_db_sqlite;
extern const struct pxl_db_backend pxl_db_postgresql;

/* What a back end may read of its database. */
struct event_base *pxl_db_base(const struct pxl_db *db);
const struct pxl_db_conf *pxl_db_conf(const struct pxl_db *db);
/* The app file's name, for "FILE: database: ..." errors. */
const char *pxl_db_file(const struct pxl_db *db);

/*
 * The password for PostgreSQL from database.password_env or
 * database.password_file (trailing newline dropped): a new string in
 * *out, or *out NULL when neither is set. 0, or PXL_ERR with the reason
 * in errors. Shared by the pool and the migrations.
 */
int pxl_db_password(const struct pxl_db_conf *conf, char **out,
                    struct pxl_str *errors);

#endif
