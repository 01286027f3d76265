/*
 * pxl_queue_sqlite.c - the queue's jobs without Redis: one table in
 * SQLite (pxl_queue_sql.h), in the app's database or a file of its own
 * (queue.path), reached through the database layer's thread pool, so
 * nothing here blocks the loop.
 *
 * A claim is a lease (owner, lease_until), renewed while the job runs
 * here; a worker that dies stops renewing, and once the lease has run
 * out any worker claims the job again. An outcome is written only where
 * the row is still this owner's and this attempt's, so a late one
 * changes nothing.
 *
 * Ownership: struct sqlite_queue (q->be_state) owns, without an SQLite
 * app database, the database of its own.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "pxl/pxl.h"
#include "pxl_conf.h"
#include "pxl_db.h"
#include "pxl_db_int.h"
#include "pxl_log.h"
#include "pxl_queue.h"
#include "pxl_queue_int.h"
#include "pxl_queue_sql.h"
#include "pxl_worker.h"

#define TRIM_EVERY_MS 1000

struct sqlite_queue {
        struct pxl_db *db;
        bool own_db;
        struct pxl_db_conf own_conf;
};

static struct pxl_db *db_of(const struct pxl_queue *q)
{
        return ((struct sqlite_queue *)q->be_state)->db;
}

/* A params array from a printf-like spec: s string, i int64. */
static struct json_object *params(const char *spec, ...)
{
        struct json_object *a = json_object_new_array();
        va_list ap;

        va_start(ap, spec);
        for (const char *p = spec; a != NULL && *p; p++) {
                struct json_object *v = NULL;
                const char *str;

                switch (*p) {
                case 's':
                        str = va_arg(ap, const char *);
                        v = str ? json_object_new_string(str) : NULL;
                        break;
                case 'i':
                        v = json_object_new_int64(va_arg(ap, int64_t));
                        break;
                }
                if (json_object_array_add(a, v) < 0) {
                        json_object_put(v);
                        json_object_put(a);
                        a = NULL;
                }
        }
        va_end(ap);
        return a;
}

typedef pxl_queue_db_fn statement_fn;

static int run(struct pxl_queue *q, const char *sql, struct json_object *p,
               statement_fn *done, void *arg)
{
        return pxl_queue_db_run(q, db_of(q), NULL, sql, p, done, arg);
}

static int64_t poll_at(const struct pxl_queue *q)
{
        return pxl_queue_now_ms() + q->srv->conf->queue.poll_interval;
}

/* ---- claiming ----------------------------------------------------------- */

/* The next look: when something is due, or at the poll interval. */
static void next_due(struct pxl_queue *q, const struct pxl_db_result *res,
                     void *arg)
{
        struct pxl_queue_line *qu = arg;
        const char *v = pxl_db_value(res, 0, 0, NULL);
        int64_t at = poll_at(q);

        if (pxl_db_error(res) == NULL && v != NULL && strtoll(v, NULL, 10) < at)
                at = strtoll(v, NULL, 10);
        pxl_queue_claimed(qu, NULL, 0, NULL, at, false);
}

static unsigned col_u(const struct pxl_db_result *res, size_t r, size_t c)
{
        const char *v = pxl_db_value(res, r, c, NULL);

        return v ? (unsigned)strtoul(v, NULL, 10) : 0;
}

static void claimed(struct pxl_queue *q, const struct pxl_db_result *res,
                    void *arg)
{
        struct pxl_queue_line *qu = arg;
        size_t n = pxl_db_rows(res);
        struct pxl_queue_claim *jobs;

        if (pxl_db_error(res) != NULL) {
                pxl_queue_claimed(qu, NULL, 0, pxl_db_error(res), poll_at(q),
                                  false);
                return;
        }
        /* Nothing due: when is the next, before the poll interval? */
        if (n == 0 && !q->stopping) {
                if (run(q,
                        "SELECT MIN(CASE state WHEN 'waiting' THEN run_at "
                        "ELSE lease_until END) FROM pxl_jobs "
                        "WHERE queue = $1 AND state IN ('waiting', 'active')",
                        params("s", qu->name), next_due, qu) < 0)
                        pxl_queue_claimed(qu, NULL, 0, NULL, poll_at(q), false);
                return;
        }
        jobs = calloc(n ? n : 1, sizeof(*jobs));
        if (jobs == NULL) {
                /* Ours now: they run again after queue.stalled_after. */
                pxl_queue_claimed(qu, NULL, 0, "out of memory", poll_at(q),
                                  false);
                return;
        }
        for (size_t r = 0; r < n; r++) {
                struct pxl_queue_claim *j = &jobs[r];
                const char *due = pxl_db_value(res, r, 8, NULL);

                j->id = pxl_db_value(res, r, 0, NULL);
                j->payload = pxl_db_value(res, r, 1, &j->payload_len);
                j->attempt = col_u(res, r, 2);
                j->attempts = col_u(res, r, 3);
                j->backoff_ms = col_u(res, r, 4);
                j->backoff_exp = col_u(res, r, 5) != 0;
                j->timeout_ms = col_u(res, r, 6);
                j->keep = col_u(res, r, 7);
                j->due = due ? strtoll(due, NULL, 10) : 0;
        }
        pxl_queue_claimed(qu, jobs, n, NULL, poll_at(q), false);
        free(jobs);
}

/* Take n of what is due (or whose lease ran out). */
static void claim_n(struct pxl_queue_line *qu, unsigned n)
{
        struct pxl_queue *q = qu->q;
        const struct pxl_queue_conf *conf = &q->srv->conf->queue;
        int64_t now = pxl_queue_now_ms();

        if (run(q,
                "UPDATE pxl_jobs SET state = 'active', "
                "attempt = attempt + 1, owner = $3, lease_until = $4, "
                "started_at = $2 WHERE rowid IN (SELECT rowid FROM pxl_jobs "
                "WHERE queue = $1 AND ((state = 'waiting' AND run_at <= $2) "
                "OR (state = 'active' AND lease_until <= $2)) "
                "ORDER BY priority DESC, run_at, rowid LIMIT $5) "
                "RETURNING id, payload, attempt, attempts, backoff_ms, "
                "backoff_exp, timeout_ms, keep, run_at",
                params("sisii", qu->name, now, q->owner,
                       now + (int64_t)conf->stalled_after * 1000, (int64_t)n),
                claimed, qu) < 0)
                pxl_queue_claimed(qu, NULL, 0, "cannot run a statement",
                                  poll_at(q), false);
}

/* How many starts the rate limit grants now; none: when the next is. */
static void granted(struct pxl_queue *q, const struct pxl_db_result *res,
                    void *arg)
{
        struct pxl_queue_line *qu = arg;
        const char *n = pxl_db_value(res, 0, 0, NULL);
        const char *tat = pxl_db_value(res, 0, 1, NULL);

        if (pxl_db_error(res) != NULL || n == NULL || tat == NULL) {
                pxl_queue_claimed(qu, NULL, 0,
                                  pxl_db_error(res) ? pxl_db_error(res)
                                                    : "rate limit not read",
                                  poll_at(q), false);
                return;
        }
        if (strtoll(n, NULL, 10) > 0 && !q->stopping) {
                claim_n(qu, (unsigned)strtoll(n, NULL, 10));
                return;
        }
        pxl_queue_claimed(qu, NULL, 0, NULL, strtoll(tat, NULL, 10) / 1000 + 1,
                          true);
}

/*
 * With a rate limit, first reserve starts in the shared table (GCRA:
 * tat is when the next start is allowed, in microseconds; one interval
 * of burst), so that every worker sharing the jobs keeps to it together.
 */
static void sqlite_claim(struct pxl_queue_line *qu, unsigned n)
{
        struct pxl_queue *q = qu->q;
        int64_t now_us, interval;

        if (qu->rate == 0) {
                claim_n(qu, n);
                return;
        }
        now_us = pxl_queue_now_ms() * 1000;
        interval = 1000000 / qu->rate;
        if (run(q,
                "UPDATE pxl_queue_limits SET "
                "granted = MAX(0, MIN($3, ($2 + $4 - MAX(tat, $2)) / $4)), "
                "tat = MAX(tat, $2) + "
                "MAX(0, MIN($3, ($2 + $4 - MAX(tat, $2)) / $4)) * $4 "
                "WHERE queue = $1 RETURNING granted, tat",
                params("siii", qu->name, now_us, (int64_t)n, interval), granted,
                qu) < 0)
                pxl_queue_claimed(qu, NULL, 0, "cannot run a statement",
                                  poll_at(q), false);
}

/* ---- outcomes ----------------------------------------------------------- */

/* Trim the queue's completed jobs to the newest keep, now and then. */
static void trim(struct pxl_queue_line *qu, unsigned keep, int64_t now)
{
        if (now - qu->trimmed_ms < TRIM_EVERY_MS)
                return;
        qu->trimmed_ms = now;
        run(qu->q,
            "DELETE FROM pxl_jobs WHERE rowid IN (SELECT rowid FROM pxl_jobs "
            "WHERE queue = $1 AND state = 'completed' "
            "AND NOT (id GLOB 'schedule:*' AND finished_at > $3) "
            "ORDER BY finished_at DESC LIMIT -1 OFFSET $2)",
            params("sii", qu->name, (int64_t)keep,
                   now - PXL_QUEUE_SCHEDULE_KEEP_MS),
            NULL, NULL);
}

struct recording {
        pxl_queue_recorded_fn *done;
        void *arg;
        const char *queue; /* for the log */
};

static void recorded(struct pxl_queue *q, const struct pxl_db_result *res,
                     void *arg)
{
        struct recording *rec = arg;

        if (pxl_db_error(res) != NULL)
                pxl_logs(PXL_LOG_ERR,
                         "queue %s: cannot record a job's outcome: %s",
                         rec->queue, pxl_db_error(res));
        rec->done(q, rec->arg,
                  pxl_db_error(res) == NULL && pxl_db_affected(res) > 0);
        free(rec);
}

static void sqlite_finish(struct pxl_job *job, const struct pxl_queue_outcome *o,
                          pxl_queue_recorded_fn *done, void *arg)
{
        struct pxl_queue_line *qu = job->queue;
        struct pxl_queue *q = qu->q;
        struct recording *rec = malloc(sizeof(*rec));
        const char *sql;
        struct json_object *p;

        if (rec == NULL) {
                pxl_logs(PXL_LOG_ERR, "queue %s: job %s: outcome not recorded: "
                         "out of memory", qu->name, job->id);
                done(q, arg, false);
                return;
        }
        rec->done = done;
        rec->arg = arg;
        rec->queue = qu->name;
        if (o->end == PXL_QUEUE_COMPLETED && job->keep == 0) {
                sql = "DELETE FROM pxl_jobs WHERE queue = $1 AND "
                      "id = $2 AND owner = $3 AND attempt = $4";
                p = params("sssi", qu->name, job->id, q->owner,
                           (int64_t)job->attempt);
        } else if (o->end != PXL_QUEUE_RETRY) {
                sql = "UPDATE pxl_jobs SET state = $5, result = $6, "
                      "error = $7, finished_at = $8, owner = NULL, "
                      "lease_until = NULL WHERE queue = $1 AND "
                      "id = $2 AND owner = $3 AND attempt = $4";
                p = params("sssisssi", qu->name, job->id, q->owner,
                           (int64_t)job->attempt,
                           o->end == PXL_QUEUE_DEAD ? "dead" : "completed",
                           o->result, o->error, o->now);
        } else {
                sql = "UPDATE pxl_jobs SET state = 'waiting', "
                      "run_at = $5, error = $6, owner = NULL, "
                      "lease_until = NULL WHERE queue = $1 AND "
                      "id = $2 AND owner = $3 AND attempt = $4";
                p = params("sssiis", qu->name, job->id, q->owner,
                           (int64_t)job->attempt, o->retry_at, o->error);
        }
        if (run(q, sql, p, recorded, rec) < 0) {
                free(rec);
                done(q, arg, false);
                return;
        }
        if (o->end == PXL_QUEUE_COMPLETED && job->keep > 0)
                trim(qu, job->keep, o->now);
}

static void sqlite_progress(struct pxl_job *job, const char *json)
{
        struct pxl_queue *q = job->queue->q;

        run(q,
            "UPDATE pxl_jobs SET progress = $4 WHERE queue = $1 AND id = $2 "
            "AND owner = $3",
            params("ssss", job->queue->name, job->id, q->owner, json), NULL,
            NULL);
}

/* ---- adding ------------------------------------------------------------- */

static int sqlite_add(struct pxl_queue *q, struct pxl_db_tx *tx,
                      const struct pxl_queue_new *nj, pxl_queue_added_fn *done,
                      void *arg)
{
        struct sqlite_queue *s = q->be_state;

        /* One transaction holds both only in one database. */
        if (tx != NULL && s->own_db)
                return PXL_EINVAL;
        return pxl_queue_db_insert(q, s->db, tx, "pxl_jobs", nj, done, arg);
}

/* ---- leases, counts, giving back ----------------------------------------- */

static void sqlite_renew(struct pxl_queue *q)
{
        struct json_object *live = json_object_new_array();
        struct pxl_job *job;
        size_t n = 0;

        /*
         * Only the jobs running here: a row whose outcome could not be
         * written stays ours in the table, and must not be kept alive
         * for ever; its lease runs out and it runs again.
         */
        LIST_FOREACH(job, &q->jobs, link)
        {
                struct json_object *pair = json_object_new_array();

                if (job->ended || pair == NULL) {
                        json_object_put(pair);
                        continue;
                }
                json_object_array_add(pair,
                                      json_object_new_string(job->queue->name));
                json_object_array_add(pair, json_object_new_string(job->id));
                json_object_array_add(pair,
                                      json_object_new_int64(job->attempt));
                json_object_array_add(live, pair);
                n++;
        }
        if (n > 0)
                run(q,
                    "UPDATE pxl_jobs SET lease_until = $2 WHERE owner = $1 "
                    "AND state = 'active' AND (queue, id, attempt) IN "
                    "(SELECT json_extract(value, '$[0]'), "
                    "json_extract(value, '$[1]'), "
                    "json_extract(value, '$[2]') FROM json_each($3))",
                    params("sis", q->owner,
                           pxl_queue_now_ms() +
                                   (int64_t)q->srv->conf->queue.stalled_after *
                                           1000,
                           json_object_to_json_string_ext(
                                   live, JSON_C_TO_STRING_PLAIN)),
                    NULL, NULL);
        json_object_put(live);
}

static void counted(struct pxl_queue *q, const struct pxl_db_result *res,
                    void *arg)
{
        (void)arg;
        if (pxl_db_error(res) != NULL)
                return;
        for (size_t i = 0; i < q->n; i++) {
                struct pxl_queue_line *qu = &q->v[i];

                qu->waiting = qu->delayed = qu->active = 0;
                qu->completed = qu->dead = 0;
        }
        for (size_t r = 0; r < pxl_db_rows(res); r++) {
                struct pxl_queue_line *qu =
                        pxl_queue_line_find(q, pxl_db_value(res, r, 0, NULL));

                if (qu == NULL) /* processed elsewhere: not ours to show */
                        continue;
                qu->waiting = col_u(res, r, 1);
                qu->delayed = col_u(res, r, 2);
                qu->active = col_u(res, r, 3);
                qu->completed = col_u(res, r, 4);
                qu->dead = col_u(res, r, 5);
        }
}

static void sqlite_count(struct pxl_queue *q)
{
        run(q,
            "SELECT queue, SUM(state = 'waiting' AND run_at <= $1), "
            "SUM(state = 'waiting' AND run_at > $1), "
            "SUM(state = 'active'), SUM(state = 'completed'), "
            "SUM(state = 'dead') FROM pxl_jobs GROUP BY queue",
            params("i", pxl_queue_now_ms()), counted, NULL);
}

static void released(struct pxl_queue *q, const struct pxl_db_result *res,
                     void *arg)
{
        (void)q;
        (void)arg;
        if (pxl_db_error(res) != NULL)
                pxl_logs(PXL_LOG_WARN,
                         "queue: running jobs not given back (%s): they "
                         "run again after queue.stalled_after",
                         pxl_db_error(res));
}

static void sqlite_give_back(struct pxl_queue *q)
{
        run(q,
            "UPDATE pxl_jobs SET state = 'waiting', "
            "attempt = attempt - 1, owner = NULL, "
            "lease_until = NULL WHERE owner = $1 AND "
            "state = 'active'",
            params("s", q->owner), released, NULL);
}

/* ---- the back end ------------------------------------------------------- */

/* The file the jobs live in: the app's SQLite database, or our own. */
static const char *jobs_file(const struct pxl_config *conf)
{
        if (conf->database.enabled && !conf->database.postgresql)
                return conf->database.path;
        return conf->queue.path;
}

int pxl_queue_sqlite_prepare(const struct pxl_worker *srv,
                             struct pxl_str *errors)
{
        const char *file = jobs_file(srv->conf);
        sqlite3 *db = NULL;
        char *msg = NULL;
        int rc = 0;

        if (sqlite3_open_v2(file, &db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            NULL) != SQLITE_OK) {
                pxl_str_report(errors, srv->conf->file, 0, "queue",
                               "cannot open %s: %s", file,
                               db ? sqlite3_errmsg(db) : "out of memory");
                rc = PXL_ERR;
        } else {
                sqlite3_busy_timeout(db, 5000);
                if (sqlite3_exec(db,
                                 "PRAGMA journal_mode = WAL; " PXL_QUEUE_SCHEMA,
                                 NULL, NULL, &msg) != SQLITE_OK) {
                        pxl_str_report(errors, srv->conf->file, 0, "queue",
                                       "%s: %s", file,
                                       msg ? msg : sqlite3_errmsg(db));
                        rc = PXL_ERR;
                }
                for (char **r = srv->conf->queue.rate_limits;
                     rc == 0 && r != NULL && *r != NULL; r++) {
                        sqlite3_stmt *st = NULL;

                        sqlite3_prepare_v2(db,
                                           "INSERT INTO pxl_queue_limits "
                                           "(queue) VALUES (?1) ON CONFLICT "
                                           "DO NOTHING",
                                           -1, &st, NULL);
                        sqlite3_bind_text(st, 1, *r, (int)strcspn(*r, "="),
                                          SQLITE_TRANSIENT);
                        if (st == NULL || sqlite3_step(st) != SQLITE_DONE) {
                                pxl_str_report(errors, srv->conf->file, 0,
                                               "queue", "%s: %s", file,
                                               sqlite3_errmsg(db));
                                rc = PXL_ERR;
                        }
                        sqlite3_finalize(st);
                }
        }
        sqlite3_free(msg);
        sqlite3_close(db);
        return rc;
}

void pxl_queue_sqlite_setup(const struct pxl_config *conf)
{
        /* Our own SQLite file: set up as the app's would be. */
        if (pxl_db_sqlite.setup != NULL &&
            (!conf->database.enabled || conf->database.postgresql))
                pxl_db_sqlite.setup();
}

static int sqlite_start(struct pxl_queue *q, struct pxl_str *errors)
{
        struct pxl_worker *srv = q->srv;
        struct sqlite_queue *s = calloc(1, sizeof(*s));

        if (s == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        q->be_state = s;
        s->db = pxl_db_app(srv);
        if (s->db == NULL || srv->conf->database.postgresql) {
                s->own_conf.enabled = true;
                s->own_conf.path = srv->conf->queue.path;
                s->own_conf.busy_timeout = 5000;
                s->own_conf.readers = 1;
                s->own_conf.max_pending = 1000000;
                s->db = pxl_db_open(srv, &s->own_conf, errors);
                s->own_db = s->db != NULL;
        }
        return s->db ? PXL_OK : PXL_ERR;
}

/*
 * The database of our own closes here, which answers what is still
 * queued on it (the app's closes after every service has stopped).
 */
static void sqlite_stop(struct pxl_queue *q)
{
        struct sqlite_queue *s = q->be_state;

        if (s == NULL)
                return;
        q->be_state = NULL;
        if (s->own_db) {
                q->be_state = s; /* the answers it runs name it */
                pxl_db_close(s->db);
                q->be_state = NULL;
        }
        free(s);
}

static bool sqlite_in_tx(const struct pxl_queue *q)
{
        return !((const struct sqlite_queue *)q->be_state)->own_db;
}

const struct pxl_queue_backend pxl_queue_sqlite = {
        .name = "sqlite",
        .start = sqlite_start,
        .stop = sqlite_stop,
        .add = sqlite_add,
        .claim = sqlite_claim,
        .finish = sqlite_finish,
        .progress = sqlite_progress,
        .renew = sqlite_renew,
        .give_back = sqlite_give_back,
        .count = sqlite_count,
        .in_tx = sqlite_in_tx,
};
