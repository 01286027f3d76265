/*
 * pxl_db_sqlite.c - the SQLite back end: per worker, one writer
 * connection and database.readers reader connections, each owned by its
 * own thread, fed from the loop. It owns routing (reads to the readers,
 * writes and transactions to the writer), the statement caches, $k
 * binding, results as tables and the WAL's size. pxl_db.c owns the API,
 * params, result JSON and the transactions' bookkeeping.
 *
 * SQLite has no async API and busy_timeout sleeps in the caller, so no
 * statement ever runs on the loop: the loop hands jobs to the threads
 * and gets them back through an eventfd (the loop has no evthread).
 *
 * Locking: s->lock guards the queues the threads take from (rq, wq),
 * the lists they hand back on (done, done_read, bounced), s->stopping
 * and s->woken, and nothing else. A thread's connection, statement
 * cache and scratch buffer are its own while it runs (the loop touches
 * them only before pthread_create and after pthread_join). The routing
 * state (s->rw, s->tx, s->held, s->late, s->stopped) is the loop's. A
 * job belongs to whoever has it on a list; threads never read *tx_conn.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "pxl_db_int.h"
#include "pxl_map.h"

/* Prepared statements kept per connection; past it, prepared per use. */
#define STMT_CACHE_MAX 128
/* SQL texts whose read/write nature the loop remembers. */
#define RW_CACHE_MAX 4096
/*
 * WAL frames past which the writer checkpoints after a commit: passive
 * as SQLite's own autocheckpoint (which our wal_hook replaces), then a
 * RESTART that waits for readers, since a steady stream of readers lets
 * passive checkpoints copy pages but never restart the WAL.
 */
#define WAL_PASSIVE_PAGES 1000
#define WAL_RESTART_PAGES 4000

#define TX_HINT "use pxl_db_begin, pxl_db_commit and pxl_db_rollback"

struct sq;

struct stmt {
        struct pxl_map_node node; /* thr->stmts, keyed by sql */
        sqlite3_stmt *st;
        char sql[];
};

struct thr {
        struct sq *s;
        sqlite3 *conn;
        pthread_t tid;
        bool started; /* tid is valid: join it */
        bool writer;
        struct pxl_map stmts;   /* struct stmt by SQL text */
        struct pxl_str scratch; /* a BLOB's hex text */
        int wal_restart_at;     /* writer: WAL frames for the next RESTART */
};

/* What the loop knows of an SQL text. */
struct rw_entry {
        struct pxl_map_node node; /* s->rw */
        bool write;
        char sql[];
};

/* How a thread hands a job back. */
enum outcome {
        RAN,      /* done; nothing learnt */
        RAN_READ, /* done on a reader: the statement is read-only */
        BOUNCED,  /* not run: a reader found it writes */
};

struct sq {
        struct pxl_db *db;
        const struct pxl_db_conf *conf;

        /* Under lock. */
        pthread_mutex_t lock;
        pthread_cond_t rcond, wcond;   /* readers', the writer's */
        struct pxl_db_job_list rq, wq; /* for a reader, for the writer */
        struct pxl_db_job_list done, done_read, bounced;
        bool stopping; /* threads leave after the job they run */
        bool woken;    /* efd written since the loop last collected */

        /* The loop's. */
        int efd;
        struct event *ev;
        struct thr *threads; /* [0] the writer, then the readers */
        size_t nthreads;
        struct pxl_map rw; /* struct rw_entry by SQL text */
        /*
         * The transaction that has the writer, from the submission of
         * its BEGIN until its COMMIT or ROLLBACK is back (its tx_conn);
         * NULL when none. Meanwhile other writes and BEGINs wait in
         * held, in order.
         */
        void **tx;
        struct pxl_db_job_list held;
        struct pxl_db_job_list late; /* submitted during stop */
        bool stopped;                /* stop has begun: fail at once */
};

/* k of a "$k" name, or 0 when the name is something else. */
static size_t param_number(const char *name)
{
        size_t k = 0;
        const char *p;

        if (!name || name[0] != '$' || !name[1])
                return 0;
        for (p = name + 1; *p; p++) {
                if (*p < '0' || *p > '9')
                        return 0;
                /* Past any sane count: "no value for" it all the same. */
                if (k < 100000000)
                        k = k * 10 + (size_t)(*p - '0');
        }
        return k;
}

/* ---- results --------------------------------------------------------- */

/* SQLite's extended constraint codes as PostgreSQL's SQLSTATEs. */
static const char *sqlstate_of(int ext)
{
        switch (ext) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
                return "23505";
        case SQLITE_CONSTRAINT_FOREIGNKEY:
                return "23503";
        case SQLITE_CONSTRAINT_NOTNULL:
                return "23502";
        case SQLITE_CONSTRAINT_CHECK:
                return "23514";
        default:
                return NULL;
        }
}

/* Record the connection's last error (call right after it happened). */
static void fail_sqlite(struct thr *t, struct pxl_db_result *r)
{
        pxl_db_result_fail(r, sqlstate_of(sqlite3_extended_errcode(t->conn)),
                           "%s", sqlite3_errmsg(t->conn));
}

static int put_value(struct thr *t, struct pxl_db_result *r, sqlite3_stmt *st,
                     int col)
{
        const unsigned char *blob;
        const char *text;
        double d;
        size_t n;

        switch (sqlite3_column_type(st, col)) {
        case SQLITE_NULL:
                return pxl_db_result_put(r, PXL_DB_TEXT, NULL, 0);
        case SQLITE_FLOAT:
                /* SQLite writes "Inf", which is no JSON number. */
                d = sqlite3_column_double(st, col);
                if (isinf(d))
                        return pxl_db_result_put(r, PXL_DB_TEXT,
                                                 d > 0 ? "Infinity"
                                                       : "-Infinity",
                                                 d > 0 ? 8 : 9);
                {
                        /*
                         * SQLite's own text has 15 digits: the shortest
                         * that reads back as the same double instead.
                         */
                        char buf[32];

                        for (int prec = 15; prec <= 17; prec++) {
                                snprintf(buf, sizeof(buf), "%.*g", prec, d);
                                if (strtod(buf, NULL) == d)
                                        break;
                        }
                        return pxl_db_result_put(r, PXL_DB_NUMBER, buf,
                                                 strlen(buf));
                }
        case SQLITE_INTEGER:
                text = (const char *)sqlite3_column_text(st, col);
                if (!text)
                        return PXL_ENOMEM;
                return pxl_db_result_put(r, PXL_DB_NUMBER, text,
                                         (size_t)sqlite3_column_bytes(st, col));
        case SQLITE_BLOB:
                /* As PostgreSQL's bytea text: "\x" and lowercase hex. */
                blob = sqlite3_column_blob(st, col);
                n = (size_t)sqlite3_column_bytes(st, col);
                if (!blob && n)
                        return PXL_ENOMEM;
                t->scratch.len = 0;
                if (pxl_str_reserve(&t->scratch, 2 + 2 * n) < 0)
                        return PXL_ENOMEM;
                t->scratch.p[0] = '\\';
                t->scratch.p[1] = 'x';
                pxl_hex(t->scratch.p + 2, blob, n);
                return pxl_db_result_put(r, PXL_DB_TEXT, t->scratch.p,
                                         2 + 2 * n);
        default: /* SQLITE_TEXT */
                text = (const char *)sqlite3_column_text(st, col);
                n = (size_t)sqlite3_column_bytes(st, col);
                if (!text)
                        return PXL_ENOMEM;
                return pxl_db_result_put(r, PXL_DB_TEXT, text, n);
        }
}

/* ---- running a job, on its thread ------------------------------------ */

/*
 * The statement for sql: from the cache, or prepared (and cached while
 * there is room). *st NULL with 0: the text has no statement. On error
 * the result has it.
 */
static int stmt_get(struct thr *t, const char *sql, size_t len,
                    sqlite3_stmt **st, struct stmt **cached,
                    struct pxl_db_result *r)
{
        struct pxl_map_node *node = pxl_map_get(&t->stmts, sql, len);
        bool keep = t->stmts.count < STMT_CACHE_MAX;
        const char *tail;
        struct stmt *e;
        int rc;

        *st = NULL;
        *cached = NULL;
        if (node) {
                *cached = pxl_container_of(node, struct stmt, node);
                *st = (*cached)->st;
                return 0;
        }
        if (len > 1000000000) {
                pxl_db_result_fail(r, NULL, "statement too long");
                return PXL_EINVAL;
        }
        rc = sqlite3_prepare_v3(t->conn, sql, (int)len,
                                keep ? SQLITE_PREPARE_PERSISTENT : 0, st,
                                &tail);
        if (rc != SQLITE_OK) {
                fail_sqlite(t, r);
                return PXL_ERR;
        }
        if (!*st) {
                pxl_db_result_fail(r, NULL, "empty statement");
                return PXL_EINVAL;
        }
        if (tail && pxl_db_sql_skip_blank(tail, sql + len) != sql + len) {
                sqlite3_finalize(*st);
                *st = NULL;
                pxl_db_result_fail(r, NULL, "one statement per query");
                return PXL_EINVAL;
        }
        if (!keep)
                return 0;
        /* Out of memory here only costs the cache. */
        e = malloc(sizeof(*e) + len + 1);
        if (!e)
                return 0;
        memcpy(e->sql, sql, len);
        e->sql[len] = '\0';
        e->st = *st;
        e->node.key = e->sql;
        e->node.key_len = len;
        if (pxl_map_put(&t->stmts, &e->node) < 0) {
                free(e);
                return 0;
        }
        *cached = e;
        return 0;
}

/* Done with st: ready it for the next use, or finalize it. */
static void stmt_put(sqlite3_stmt *st, struct stmt *cached)
{
        if (!cached) {
                sqlite3_finalize(st);
                return;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
}

static int bind_one(sqlite3_stmt *st, int i, const struct pxl_db_param *p)
{
        switch (p->kind) {
        case PXL_DB_PARAM_NULL:
                return sqlite3_bind_null(st, i);
        case PXL_DB_PARAM_BOOL:
        case PXL_DB_PARAM_INT:
                return sqlite3_bind_int64(st, i, p->i);
        case PXL_DB_PARAM_NUMBER:
                /* Its digits as written; the column's affinity decides. */
        case PXL_DB_PARAM_TEXT:
                if (p->len > 1000000000)
                        return SQLITE_TOOBIG;
                return sqlite3_bind_text(st, i, p->text, (int)p->len,
                                         SQLITE_STATIC);
        case PXL_DB_PARAM_BYTES:
                if (p->len > 1000000000)
                        return SQLITE_TOOBIG;
                /* text is never NULL here, so an empty value is no NULL */
                return sqlite3_bind_blob(st, i, p->text, (int)p->len,
                                         SQLITE_STATIC);
        }
        return SQLITE_MISUSE;
}

/*
 * Bind the job's values to the statement's $k, refusing what PostgreSQL
 * refuses: other kinds of parameter, a $k without a value, values the
 * statement does not use. SQLite takes "$1" as a named parameter (each
 * distinct name once, in order of appearance): walk the names.
 */
static int bind_all(struct thr *t, sqlite3_stmt *st, struct pxl_db_job *job)
{
        int i, n = sqlite3_bind_parameter_count(st);
        size_t used = 0;

        for (i = 1; i <= n; i++) {
                const char *name = sqlite3_bind_parameter_name(st, i);
                size_t k = param_number(name);

                if (!k) {
                        pxl_db_result_fail(&job->result, NULL,
                                           "use $1, $2 ... for parameters "
                                           "(not %s)",
                                           name ? name : "?");
                        return PXL_EINVAL;
                }
                if (k > job->nparams) {
                        pxl_db_result_fail(&job->result, NULL,
                                           "no value for %s: %zu parameter%s "
                                           "given",
                                           name, job->nparams,
                                           job->nparams == 1 ? "" : "s");
                        return PXL_EINVAL;
                }
                if (k > used)
                        used = k;
                if (bind_one(st, i, &job->params[k - 1]) != SQLITE_OK) {
                        fail_sqlite(t, &job->result);
                        return PXL_ERR;
                }
        }
        if (job->nparams > used) {
                pxl_db_result_fail(&job->result, NULL,
                                   "%zu parameter%s given, the statement "
                                   "uses %zu",
                                   job->nparams, job->nparams == 1 ? "" : "s",
                                   used);
                return PXL_EINVAL;
        }
        /* A gap ($1 and $3 of three) is a mistake PostgreSQL refuses too. */
        for (size_t k = 1; (size_t)n < job->nparams && k <= job->nparams; k++) {
                char name[24];

                snprintf(name, sizeof(name), "$%zu", k);
                if (sqlite3_bind_parameter_index(st, name) == 0) {
                        pxl_db_result_fail(&job->result, NULL,
                                           "parameter %s is given but the "
                                           "statement does not use it",
                                           name);
                        return PXL_EINVAL;
                }
        }
        return 0;
}

/* Step st to its end, into the job's table. */
static void exec_stmt(struct thr *t, sqlite3_stmt *st, struct pxl_db_job *job,
                      bool readonly)
{
        struct pxl_db_result *r = &job->result;
        sqlite3_int64 before = sqlite3_total_changes64(t->conn);
        int i, ncols, rc = sqlite3_step(st);

        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                fail_sqlite(t, r);
                return;
        }
        /*
         * Counted after the first step: a cached statement that a schema
         * change made SQLite prepare again (SELECT * after ALTER TABLE)
         * may have other columns than before it.
         */
        ncols = sqlite3_column_count(st);
        if (pxl_db_result_columns(r, (size_t)ncols) < 0)
                goto nomem;
        for (i = 0; i < ncols; i++) {
                const char *name = sqlite3_column_name(st, i);

                if (!name)
                        goto nomem;
                if (pxl_db_result_put(r, PXL_DB_TEXT, name, strlen(name)) < 0)
                        goto nomem;
        }
        for (; rc == SQLITE_ROW; rc = sqlite3_step(st)) {
                for (i = 0; i < ncols; i++)
                        if (put_value(t, r, st, i) < 0)
                                goto nomem;
        }
        if (rc != SQLITE_DONE) {
                fail_sqlite(t, r);
                return;
        }
        /*
         * sqlite3_changes64 keeps the count of the last INSERT, UPDATE or
         * DELETE, so a CREATE after an INSERT would repeat it: trust it
         * only when this statement changed rows.
         */
        if (!readonly && sqlite3_total_changes64(t->conn) != before)
                r->affected = sqlite3_changes64(t->conn);
        return;
nomem:
        pxl_db_result_fail(r, NULL, "out of memory");
}

/* Run sql on t's connection for its own sake (no result): 0 or rc. */
static int exec_plain(struct thr *t, const char *sql)
{
        return sqlite3_exec(t->conn, sql, NULL, NULL, NULL);
}

static enum outcome run(struct thr *t, struct pxl_db_job *job)
{
        const char *sql = job->sql;
        size_t len = job->sql_len;
        struct stmt *cached;
        sqlite3_stmt *st;
        bool readonly;

        if (job->kind == PXL_DB_BEGIN) {
                /* Take the write lock now, not at the first write. */
                sql = "BEGIN IMMEDIATE";
                len = strlen(sql);
        } else if (job->kind == PXL_DB_ROLLBACK &&
                   sqlite3_get_autocommit(t->conn)) {
                /* SQLite already rolled back (after some errors it does). */
                (void)pxl_db_result_columns(&job->result, 0);
                return RAN;
        }
        if (stmt_get(t, sql, len, &st, &cached, &job->result) < 0)
                return RAN;
        readonly = sqlite3_stmt_readonly(st);
        if (!t->writer && !readonly) {
                stmt_put(st, cached);
                return BOUNCED;
        }
        if (bind_all(t, st, job) == 0)
                exec_stmt(t, st, job, readonly);
        stmt_put(st, cached);

        if (!job->tx_conn && !sqlite3_get_autocommit(t->conn)) {
                /* SAVEPOINT outside a transaction opens one: undo. */
                exec_plain(t, "ROLLBACK");
                pxl_db_result_fail(&job->result, NULL,
                                   TX_HINT " for transactions (rolled back)");
        } else if (job->kind == PXL_DB_COMMIT &&
                   !sqlite3_get_autocommit(t->conn)) {
                /*
                 * A failed COMMIT (a deferred foreign key) leaves the
                 * transaction open: end it, so the writer is free; the
                 * COMMIT's error stays.
                 */
                exec_plain(t, "ROLLBACK");
        }
        return t->writer ? RAN : RAN_READ;
}

/* ---- threads --------------------------------------------------------- */

static void wake(struct sq *s)
{
        uint64_t one = 1;
        ssize_t n;

        do
                n = write(s->efd, &one, sizeof(one));
        while (n < 0 && errno == EINTR);
        /* EAGAIN means the counter is full: the loop wakes anyway. */
}

/* Under s->lock: whether the caller must wake the loop. */
static bool need_wake(struct sq *s)
{
        if (s->woken)
                return false;
        s->woken = true;
        return true;
}

static void *thr_main(void *arg)
{
        struct thr *t = arg;
        struct sq *s = t->s;
        struct pxl_db_job_list *q = t->writer ? &s->wq : &s->rq;
        pthread_cond_t *cond = t->writer ? &s->wcond : &s->rcond;
        struct pxl_db_job_list *back;
        struct pxl_db_job *job;
        enum outcome o;
        bool w;

        pthread_mutex_lock(&s->lock);
        for (;;) {
                /* Stopping: what is still queued is failed by stop. */
                while (!s->stopping && TAILQ_EMPTY(q))
                        pthread_cond_wait(cond, &s->lock);
                if (s->stopping)
                        break;
                job = TAILQ_FIRST(q);
                TAILQ_REMOVE(q, job, link);
                pthread_mutex_unlock(&s->lock);

                o = run(t, job);

                pthread_mutex_lock(&s->lock);
                back = o == BOUNCED    ? &s->bounced
                       : o == RAN_READ ? &s->done_read
                                       : &s->done;
                TAILQ_INSERT_TAIL(back, job, link);
                w = need_wake(s);
                if (w) {
                        pthread_mutex_unlock(&s->lock);
                        wake(s);
                        pthread_mutex_lock(&s->lock);
                }
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

/* ---- routing, on the loop -------------------------------------------- */

static void to_thread(struct sq *s, struct pxl_db_job *job, bool writer)
{
        pthread_mutex_lock(&s->lock);
        TAILQ_INSERT_TAIL(writer ? &s->wq : &s->rq, job, link);
        pthread_cond_signal(writer ? &s->wcond : &s->rcond);
        pthread_mutex_unlock(&s->lock);
}

/* A write outside any transaction: after the open one, if any. */
static void to_writer_after_tx(struct sq *s, struct pxl_db_job *job)
{
        if (s->tx)
                TAILQ_INSERT_TAIL(&s->held, job, link);
        else
                to_thread(s, job, true);
}

/* Give the job back on the loop's next turn, never from inside submit. */
static void done_later(struct sq *s, struct pxl_db_job *job)
{
        bool w;

        pthread_mutex_lock(&s->lock);
        TAILQ_INSERT_TAIL(&s->done, job, link);
        w = need_wake(s);
        pthread_mutex_unlock(&s->lock);
        if (w)
                wake(s);
}

/* The writer is free: send what waited, up to the next BEGIN. */
static void tx_end(struct sq *s)
{
        struct pxl_db_job *job;

        s->tx = NULL;
        if (s->stopped)
                return; /* stop fails what is held */
        while ((job = TAILQ_FIRST(&s->held))) {
                TAILQ_REMOVE(&s->held, job, link);
                if (job->tx_conn)
                        s->tx = job->tx_conn; /* a BEGIN */
                to_thread(s, job, true);
                if (s->tx)
                        break;
        }
}

static void rw_learn(struct sq *s, const struct pxl_db_job *job, bool write)
{
        struct pxl_map_node *node;
        struct rw_entry *e;

        node = pxl_map_get(&s->rw, job->sql, job->sql_len);
        if (node) {
                pxl_container_of(node, struct rw_entry, node)->write = write;
                return;
        }
        if (s->rw.count >= RW_CACHE_MAX)
                return;
        e = malloc(sizeof(*e) + job->sql_len + 1);
        if (!e)
                return; /* it will be learnt again */
        memcpy(e->sql, job->sql, job->sql_len);
        e->sql[job->sql_len] = '\0';
        e->write = write;
        e->node.key = e->sql;
        e->node.key_len = job->sql_len;
        if (pxl_map_put(&s->rw, &e->node) < 0)
                free(e);
}

/* Hand a job back to pxl_db.c, keeping the writer's owner up to date. */
static void finish(struct sq *s, struct pxl_db_job *job)
{
        if (job->tx_conn && s->tx == job->tx_conn) {
                if (job->kind == PXL_DB_BEGIN && !job->result.error) {
                        /* A marker: on SQLite it is always the writer. */
                        *job->tx_conn = &s->threads[0];
                } else if (job->kind == PXL_DB_BEGIN ||
                           job->kind == PXL_DB_COMMIT ||
                           job->kind == PXL_DB_ROLLBACK) {
                        /* The writer left it in autocommit (see run). */
                        *job->tx_conn = NULL;
                        tx_end(s);
                }
        }
        pxl_db_done(s->db, job);
}

/* ATTACH, DETACH, or PRAGMA name = value: a setting of one connection. */
static bool connection_setting(const char *sql, size_t len)
{
        const char *p = pxl_db_sql_skip_blank(sql, sql + len);
        size_t left = (size_t)(sql + len - p);

        if ((left >= 6 && strncasecmp(p, "ATTACH", 6) == 0) ||
            (left >= 6 && strncasecmp(p, "DETACH", 6) == 0))
                return true;
        return left >= 6 && strncasecmp(p, "PRAGMA", 6) == 0 &&
               memchr(p, '=', left) != NULL;
}

static void sq_submit(struct pxl_db *db, void *state, struct pxl_db_job *job)
{
        struct sq *s = state;
        struct pxl_map_node *node;

        (void)db;
        if (s->stopped) {
                pxl_db_result_fail(&job->result, NULL, "database stopped");
                TAILQ_INSERT_TAIL(&s->late, job, link);
                return;
        }
        if (job->tx_conn) {
                if (job->kind == PXL_DB_BEGIN) {
                        if (s->tx) {
                                TAILQ_INSERT_TAIL(&s->held, job, link);
                        } else {
                                s->tx = job->tx_conn;
                                to_thread(s, job, true);
                        }
                        return;
                }
                if (s->tx == job->tx_conn && *job->tx_conn) {
                        to_thread(s, job, true);
                        return;
                }
                /* Its BEGIN failed, or it was stopped: nothing to end. */
                if (job->kind == PXL_DB_ROLLBACK)
                        (void)pxl_db_result_columns(&job->result, 0);
                else
                        pxl_db_result_fail(&job->result, NULL,
                                           "no transaction is open");
                done_later(s, job);
                return;
        }
        if (connection_setting(job->sql, job->sql_len)) {
                pxl_db_result_fail(&job->result, NULL,
                                   "ATTACH, DETACH and PRAGMA settings "
                                   "would change one connection of the "
                                   "pool only: not run");
                done_later(s, job);
                return;
        }
        /*
         * Known writes go to the writer; reads, and statements not seen
         * yet, to a reader, which hands a write back unrun. Statements
         * not awaited may so run in any order, as on PostgreSQL's pool:
         * pxl.h promises order only inside a transaction.
         */
        node = pxl_map_get(&s->rw, job->sql, job->sql_len);
        if (node && pxl_container_of(node, struct rw_entry, node)->write)
                to_writer_after_tx(s, job);
        else
                to_thread(s, job, false);
}

/* The threads handed jobs back. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_db_job_list done, done_read, bounced;
        struct sq *s = arg;
        struct pxl_db_job *job;
        uint64_t n;
        ssize_t got;

        (void)what;
        /* Read first: a wake after this read makes another call. */
        do
                got = read(fd, &n, sizeof(n));
        while (got < 0 && errno == EINTR);
        TAILQ_INIT(&done);
        TAILQ_INIT(&done_read);
        TAILQ_INIT(&bounced);
        pthread_mutex_lock(&s->lock);
        TAILQ_CONCAT(&done, &s->done, link);
        TAILQ_CONCAT(&done_read, &s->done_read, link);
        TAILQ_CONCAT(&bounced, &s->bounced, link);
        s->woken = false;
        pthread_mutex_unlock(&s->lock);

        while ((job = TAILQ_FIRST(&bounced))) {
                TAILQ_REMOVE(&bounced, job, link);
                rw_learn(s, job, true);
                to_writer_after_tx(s, job);
        }
        /* pxl_db_done's callbacks may submit: these lists are ours. */
        while ((job = TAILQ_FIRST(&done_read))) {
                TAILQ_REMOVE(&done_read, job, link);
                rw_learn(s, job, false);
                finish(s, job);
        }
        while ((job = TAILQ_FIRST(&done))) {
                TAILQ_REMOVE(&done, job, link);
                finish(s, job);
        }
}

/* ---- start and stop -------------------------------------------------- */

static int on_wal(void *arg, sqlite3 *conn, const char *name, int pages)
{
        struct thr *t = arg;
        int rc;

        /* Small again: restarted by a checkpoint since. */
        if (pages < WAL_RESTART_PAGES)
                t->wal_restart_at = WAL_RESTART_PAGES;
        if (pages >= t->wal_restart_at) {
                rc = sqlite3_wal_checkpoint_v2(
                        conn, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
                /*
                 * Readers kept it busy past busy_timeout (it waits in this
                 * thread, holding up writes): passive ones until the WAL
                 * has grown by another WAL_PASSIVE_PAGES, so that not
                 * every commit waits as long.
                 */
                if (rc != SQLITE_OK)
                        t->wal_restart_at = pages + WAL_PASSIVE_PAGES;
        } else if (pages >= WAL_PASSIVE_PAGES) {
                sqlite3_wal_checkpoint_v2(conn, name, SQLITE_CHECKPOINT_PASSIVE,
                                          NULL, NULL);
        }
        return SQLITE_OK; /* a checkpoint's failure is no commit's */
}

static int open_conn(struct sq *s, struct thr *t, struct pxl_str *errors)
{
        int flags = SQLITE_OPEN_NOMUTEX;
        const char *why;
        int rc;

        flags |= t->writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                           : SQLITE_OPEN_READONLY;
        rc = sqlite3_open_v2(s->conf->path, &t->conn, flags, NULL);
        if (rc != SQLITE_OK)
                goto fail;
        sqlite3_extended_result_codes(t->conn, 1);
        sqlite3_busy_timeout(t->conn, (int)s->conf->busy_timeout);
        /*
         * The file is read first here (open is lazy): a file that is no
         * database fails now, not at the first query.
         */
        rc = exec_plain(t, "PRAGMA foreign_keys=ON");
        if (rc != SQLITE_OK)
                goto fail;
        if (!t->writer)
                return 0;
        rc = exec_plain(t, "PRAGMA journal_mode=WAL");
        if (rc != SQLITE_OK)
                goto fail;
        t->wal_restart_at = WAL_RESTART_PAGES;
        sqlite3_wal_hook(t->conn, on_wal, t);
        return 0;
fail:
        why = t->conn ? sqlite3_errmsg(t->conn) : sqlite3_errstr(rc);
        pxl_str_report(errors, pxl_db_file(s->db), 0, NULL,
                       "database: cannot open %s: %s", s->conf->path, why);
        sqlite3_close(t->conn);
        t->conn = NULL;
        return PXL_ERR;
}

static void thr_fini(struct thr *t)
{
        struct pxl_map_iter it;
        struct pxl_map_node *node;

        pxl_map_iter_init(&it, &t->stmts);
        while ((node = pxl_map_iter_next(&it))) {
                struct stmt *e = pxl_container_of(node, struct stmt, node);

                pxl_map_remove(&t->stmts, node);
                sqlite3_finalize(e->st);
                free(e);
        }
        pxl_map_fini(&t->stmts);
        pxl_str_fini(&t->scratch);
        /* Rolls back a transaction still open at shutdown. */
        sqlite3_close(t->conn);
        t->conn = NULL;
}

/* Join the threads and free everything (no job is left on any list). */
static void sq_free(struct sq *s)
{
        struct pxl_map_iter it;
        struct pxl_map_node *node;
        size_t i;

        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_broadcast(&s->rcond);
        pthread_cond_broadcast(&s->wcond);
        pthread_mutex_unlock(&s->lock);
        for (i = 0; i < s->nthreads; i++)
                if (s->threads[i].started)
                        pthread_join(s->threads[i].tid, NULL);
        /*
         * Readers first: the writer, closing last, checkpoints and
         * removes the WAL (unless another process still uses it).
         */
        for (i = s->nthreads; i-- > 0;)
                thr_fini(&s->threads[i]);
        free(s->threads);
        pxl_map_iter_init(&it, &s->rw);
        while ((node = pxl_map_iter_next(&it))) {
                pxl_map_remove(&s->rw, node);
                free(pxl_container_of(node, struct rw_entry, node));
        }
        pxl_map_fini(&s->rw);
        if (s->ev)
                event_free(s->ev);
        if (s->efd >= 0)
                close(s->efd);
        pthread_cond_destroy(&s->rcond);
        pthread_cond_destroy(&s->wcond);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

static int sq_start(struct pxl_db *db, void **state, struct pxl_str *errors)
{
        const struct pxl_db_conf *conf = pxl_db_conf(db);
        sigset_t all, old;
        struct sq *s;
        size_t i;
        int rc;

        *state = NULL;
        s = calloc(1, sizeof(*s));
        if (!s) {
                pxl_str_report(errors, pxl_db_file(db), 0, NULL,
                               "database: out of memory");
                return PXL_ENOMEM;
        }
        s->db = db;
        s->conf = conf;
        s->efd = -1;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->rcond, NULL);
        pthread_cond_init(&s->wcond, NULL);
        TAILQ_INIT(&s->rq);
        TAILQ_INIT(&s->wq);
        TAILQ_INIT(&s->done);
        TAILQ_INIT(&s->done_read);
        TAILQ_INIT(&s->bounced);
        TAILQ_INIT(&s->held);
        TAILQ_INIT(&s->late);

        s->threads = calloc(1 + (size_t)conf->readers, sizeof(*s->threads));
        if (!s->threads) {
                rc = PXL_ENOMEM;
                goto fail;
        }
        s->nthreads = 1 + (size_t)conf->readers;
        /* The writer first: it creates the file and turns WAL on. */
        for (i = 0; i < s->nthreads; i++) {
                s->threads[i].s = s;
                s->threads[i].writer = i == 0;
                rc = open_conn(s, &s->threads[i], errors);
                if (rc < 0)
                        goto fail;
        }
        s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s->efd < 0) {
                pxl_str_report(errors, pxl_db_file(db), 0, NULL,
                               "database: eventfd: %s", strerror(errno));
                rc = PXL_ERR;
                goto fail;
        }
        s->ev = event_new(pxl_db_base(db), s->efd, EV_READ | EV_PERSIST,
                          on_wake, s);
        if (!s->ev || event_add(s->ev, NULL) < 0) {
                rc = PXL_ENOMEM;
                goto fail;
        }
        /* Signals stay with the loop's thread (libevent's handlers). */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        for (i = 0; i < s->nthreads; i++) {
                rc = pthread_create(&s->threads[i].tid, NULL, thr_main,
                                    &s->threads[i]);
                if (rc != 0)
                        break;
                s->threads[i].started = true;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (i < s->nthreads) {
                pxl_str_report(errors, pxl_db_file(db), 0, NULL,
                               "database: cannot start a thread: %s",
                               strerror(rc));
                rc = PXL_ERR;
                goto fail;
        }
        *state = s;
        return 0;
fail:
        if (rc == PXL_ENOMEM)
                pxl_str_report(errors, pxl_db_file(db), 0, NULL,
                               "database: out of memory");
        sq_free(s);
        return rc;
}

/* Fail every job of list with "database stopped", onto out. */
static void fail_all(struct pxl_db_job_list *list, struct pxl_db_job_list *out)
{
        struct pxl_db_job *job;

        while ((job = TAILQ_FIRST(list))) {
                TAILQ_REMOVE(list, job, link);
                pxl_db_result_fail(&job->result, NULL, "database stopped");
                TAILQ_INSERT_TAIL(out, job, link);
        }
}

static void sq_stop(struct pxl_db *db, void *state)
{
        struct pxl_db_job_list out;
        struct sq *s = state;
        struct pxl_db_job *job;
        size_t i;

        (void)db;
        if (!s)
                return;
        s->stopped = true;
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_broadcast(&s->rcond);
        pthread_cond_broadcast(&s->wcond);
        pthread_mutex_unlock(&s->lock);
        /* Each thread ends the statement it runs, then leaves. */
        for (i = 0; i < s->nthreads; i++) {
                if (s->threads[i].started)
                        pthread_join(s->threads[i].tid, NULL);
                s->threads[i].started = false;
        }

        /* Alone now: what ran first, then what never will. */
        TAILQ_INIT(&out);
        TAILQ_CONCAT(&out, &s->done_read, link);
        TAILQ_CONCAT(&out, &s->done, link);
        fail_all(&s->bounced, &out);
        fail_all(&s->wq, &out);
        fail_all(&s->rq, &out);
        fail_all(&s->held, &out);
        while ((job = TAILQ_FIRST(&out))) {
                TAILQ_REMOVE(&out, job, link);
                finish(s, job);
        }
        /*
         * A transaction still open is rolled back when the writer
         * closes: its connection is lost.
         */
        if (s->tx && *s->tx)
                *s->tx = NULL;
        s->tx = NULL;
        /* Callbacks above may have submitted more: failed at once. */
        while ((job = TAILQ_FIRST(&s->late))) {
                TAILQ_REMOVE(&s->late, job, link);
                pxl_db_done(s->db, job);
        }
        sq_free(s);
}

/*
 * SQLite's memory statistics take a process-wide mutex on every malloc:
 * the reader threads would contend on it. Off before first use.
 */
static void sq_setup(void)
{
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

const struct pxl_db_backend pxl_db_sqlite = {
        .name = "sqlite",
        .setup = sq_setup,
        .start = sq_start,
        .submit = sq_submit,
        .stop = sq_stop,
};
