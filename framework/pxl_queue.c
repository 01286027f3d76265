/*
 * pxl_queue.c - background jobs (pxl.h's pxl_job_*) without Redis: the
 * jobs live in SQLite (pxl_queue_sql.h), in the app's database or a file
 * of their own, reached through the database layer's thread pool, so
 * nothing here blocks the loop. Every worker claims what is due for the
 * queues its plugins process, up to each processor's concurrency, runs
 * it, and records the outcome; the bus tells every worker
 * (jobCompleted, jobFailed, jobProgress).
 *
 * At least once: a claim is a lease, renewed while the job runs here;
 * a worker that dies stops renewing, and once the lease has run out any
 * worker claims the job again. An outcome is recorded only by the owner
 * of the attempt it belongs to, so a late one changes nothing.
 *
 * Ownership: the service state (struct pxl_queue) owns the queues, the
 * jobs running here and, without an SQLite app database, its own
 * database. A struct pxl_job belongs to the plugin from the processor
 * call until it ends it; pxl frees it then (one still running when the
 * worker stops stays valid, detached, until ended or pxl_queue_fini).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <sqlite3.h>

#include "pxl/pxl.h"
#include "pxl_bus.h"
#include "pxl_db.h"
#include "pxl_cron.h"
#include "pxl_db_int.h"
#include "pxl_histogram.h"
#include "pxl_int.h"
#include "pxl_json.h"
#include "pxl_log.h"
#include "pxl_plugin.h"
#include "pxl_queue.h"
#include "pxl_queue_pool.h"
#include "pxl_queue_sql.h"
#include "pxl_time.h"
#include "pxl_worker.h"

#define DEFAULT_ATTEMPTS   3
#define DEFAULT_BACKOFF_MS 1000
#define MAX_ID_LEN         128
#define MAX_QUEUE_NAME     64
#define MAX_CLAIM          64 /* jobs claimed by one statement */
#define TRIM_EVERY_MS      1000
#define TEN_YEARS_MS       315360000000ULL
/*
 * A schedule's tick stays at least this long after it completed, so that
 * a worker whose tick rang late finds it (trimming spares it).
 */
#define SCHEDULE_KEEP_MS 60000

struct pxl_queue;

/* A queue this worker processes. */
struct queue {
        struct pxl_queue *q;
        const char *name; /* borrowed from the plugin's table */
        struct pxl_plugin_slot *plugin;
        const struct pxl_processor *proc;
        unsigned capacity; /* the processor's concurrency */
        unsigned running;  /* jobs here, claimed and not ended */
        bool claiming;     /* a claim is in flight */
        unsigned asked;    /* by the claim in flight */
        unsigned rate;     /* jobs started a second, cluster-wide; 0 = any */
        bool again;        /* look once more when it is back */
        struct event *timer;
        int64_t timer_at; /* when it rings (ms), 0 = not armed */
        int64_t trimmed_ms;
        /* The table's counts for the queue, as of the last look. */
        int64_t waiting, delayed, active, completed, dead;
        /* This worker's, since it started. */
        uint64_t processed, failed, retried, died;
        struct pxl_histogram *wait_ms; /* run_at to start */
        struct pxl_histogram *run_ms;  /* start to end */
};

/* One of queue.schedules, ticking in every worker. */
struct schedule {
        struct pxl_queue *q;
        const struct pxl_schedule_conf *conf; /* the app file's */
        struct queue *qu;
        struct pxl_cron cron;
        struct json_object *payload;
        struct event *timer;
        int64_t tick; /* the tick it waits for, seconds since the epoch */
};

struct pxl_job {
        LIST_ENTRY(pxl_job) link; /* q->jobs, or detached */
        struct queue *queue;
        char *id;
        struct json_object *payload;
        unsigned attempt, attempts, backoff_ms, timeout_ms, keep;
        bool backoff_exp;
        int64_t started_ms;
        bool in_call; /* inside its processor */
        bool ended;   /* its outcome is decided (ended, or timed out) */
        struct event *timeout_ev;
        /* A blocking processor's: set before the pool has the job. */
        bool blocking;
        atomic_bool decided; /* ended, for its thread to read */
        /* Written by its thread, read by the loop after a hand-over. */
        int t_rc;                     /* what the processor returned */
        int t_end;                    /* 0, or how the thread ended it */
        char *t_error;                /* pxl_job_fail's reason, or NULL */
        struct json_object *t_result; /* pxl_job_complete's */
        bool t_taken;                 /* the loop's: t_end was applied */
};

struct pxl_queue {
        struct pxl_worker *srv;
        struct pxl_db *db;
        bool own_db;
        struct pxl_db_conf own_conf;
        struct queue *v;
        size_t n;
        struct schedule *sched;
        size_t nsched;
        LIST_HEAD(, pxl_job) jobs;
        struct event *lease_timer;
        struct event *count_timer;
        char owner[64];    /* NODE/WORKER/PID: who holds a lease */
        uint64_t seq;      /* for ids made here */
        unsigned inflight; /* our own statements not yet answered */
        bool orphaned;     /* stopped with some: freed by the last */
        bool stopping;
        struct pxl_queue_pool *pool; /* for blocking processors, or NULL */
};

static const struct pxl_service queue_service;

/* Jobs still running when their worker stopped (see queue_stop). */
static LIST_HEAD(, pxl_job) detached = LIST_HEAD_INITIALIZER(detached);

static struct pxl_queue *queue_of(const struct pxl_worker *srv)
{
        return srv ? pxl_worker_service_state(srv, &queue_service) : NULL;
}

static struct queue *find_queue(struct pxl_queue *q, const char *name)
{
        for (size_t i = 0; i < q->n; i++)
                if (strcmp(q->v[i].name, name) == 0)
                        return &q->v[i];
        return NULL;
}

/*
 * The wall clock, read now: job times are promises ("not before run_at",
 * "after timeout_ms") that the loop's cached time, up to a turn stale
 * and from a coarse clock, would break by milliseconds.
 */
static int64_t now_ms(const struct pxl_queue *q)
{
        struct timespec ts;

        (void)q;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- statements --------------------------------------------------------- */

/* A params array from a printf-like spec: s string, i int64, n null. */
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

static void stop_queues(struct pxl_queue *q);

/* What our own statements carry to their callback. */
struct call {
        struct pxl_queue *q;
        void (*done)(struct pxl_queue *q, const struct pxl_db_result *res,
                     void *arg);
        void *arg;
};

static void call_done(struct pxl_ctx *ctx, const struct pxl_db_result *res,
                      void *arg)
{
        struct call *c = arg;

        (void)ctx;
        c->q->inflight--;
        if (c->done != NULL)
                c->done(c->q, res, c->arg);
        /* The last answer to a queue already stopped: it goes now. */
        if (c->q->orphaned && c->q->inflight == 0)
                stop_queues(c->q);
        free(c);
}

/*
 * Run sql with p (taken); done (may be NULL) gets the result. On a
 * failure to queue, done runs never and the reason is logged.
 */
static int run_in(struct pxl_queue *q, struct pxl_db_tx *tx, const char *sql,
                  struct json_object *p,
                  void (*done)(struct pxl_queue *, const struct pxl_db_result *,
                               void *),
                  void *arg)
{
        struct call *c = malloc(sizeof(*c));
        int rc = PXL_ENOMEM;

        if (c != NULL && p != NULL) {
                c->q = q;
                c->done = done;
                c->arg = arg;
                rc = tx ? pxl_db_tx_query(tx, sql, p, call_done, c)
                        : pxl_db_run(q->db, NULL, sql, p, call_done, c);
        }
        json_object_put(p);
        if (rc < 0) {
                free(c);
                /* The others are the caller's to report (a tx ended...). */
                if (rc == PXL_ENOMEM)
                        pxl_logs(PXL_LOG_ERR,
                                 "queue: cannot run a statement: %s",
                                 pxl_strerror(rc));
                return rc;
        }
        q->inflight++;
        return PXL_OK;
}

static int run(struct pxl_queue *q, const char *sql, struct json_object *p,
               void (*done)(struct pxl_queue *, const struct pxl_db_result *,
                            void *),
               void *arg)
{
        return run_in(q, NULL, sql, p, done, arg);
}

/* ---- events ------------------------------------------------------------- */

/* Tell every worker's subscribers (obj taken). */
static void publish(struct pxl_queue *q, const char *name,
                    struct json_object *obj)
{
        if (obj == NULL)
                return;
        if (q->srv->remote != NULL)
                q->srv->remote->publish(q->srv, name, obj);
        pxl_bus_publish(q->srv, name, obj);
        json_object_put(obj);
}

static struct json_object *event_of(const struct pxl_job *job,
                                    const char *qname)
{
        struct json_object *o = json_object_new_object();

        if (o == NULL)
                return NULL;
        json_object_object_add(o, "queue", json_object_new_string(qname));
        json_object_object_add(o, "id", json_object_new_string(job->id));
        json_object_object_add(o, "attempt",
                               json_object_new_int64(job->attempt));
        return o;
}

/* ---- claiming ----------------------------------------------------------- */

static void claim(struct queue *qu);

static void arm(struct queue *qu, int64_t at)
{
        int64_t now = now_ms(qu->q);

        if (qu->timer_at != 0 && qu->timer_at <= at)
                return;
        qu->timer_at = at;
        {
                struct timeval tv = pxl_ms_timeval(at > now ? at - now : 0);

                evtimer_add(qu->timer, &tv);
        }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
        struct queue *qu = arg;

        (void)fd;
        (void)what;
        qu->timer_at = 0;
        claim(qu);
}

/* The next look: when something is due, or at the poll interval. */
static void next_due(struct pxl_queue *q, const struct pxl_db_result *res,
                     void *arg)
{
        struct queue *qu = arg;
        const char *v = pxl_db_value(res, 0, 0, NULL);
        int64_t at = now_ms(q) + q->srv->conf->queue.poll_interval;

        if (pxl_db_error(res) == NULL && v != NULL && strtoll(v, NULL, 10) < at)
                at = strtoll(v, NULL, 10);
        if (!q->stopping)
                arm(qu, at);
}

static void start_job(struct queue *qu, struct pxl_job *job);

static struct pxl_job *job_from_row(struct queue *qu,
                                    const struct pxl_db_result *res, size_t r)
{
        struct pxl_job *job = calloc(1, sizeof(*job));
        const char *payload;
        size_t len;

        if (job == NULL)
                return NULL;
        job->queue = qu;
        job->id = strdup(pxl_db_value(res, r, 0, NULL));
        payload = pxl_db_value(res, r, 1, &len);
        job->attempt =
                (unsigned)strtoul(pxl_db_value(res, r, 2, NULL), NULL, 10);
        job->attempts =
                (unsigned)strtoul(pxl_db_value(res, r, 3, NULL), NULL, 10);
        job->backoff_ms =
                (unsigned)strtoul(pxl_db_value(res, r, 4, NULL), NULL, 10);
        job->backoff_exp = strcmp(pxl_db_value(res, r, 5, NULL), "0") != 0;
        job->timeout_ms =
                (unsigned)strtoul(pxl_db_value(res, r, 6, NULL), NULL, 10);
        job->keep = (unsigned)strtoul(pxl_db_value(res, r, 7, NULL), NULL, 10);
        job->started_ms = now_ms(qu->q);
        {
                int64_t due = strtoll(pxl_db_value(res, r, 8, NULL), NULL, 10);

                pxl_histogram_add(qu->wait_ms,
                                  (uint64_t)(job->started_ms > due
                                                     ? job->started_ms - due
                                                     : 0));
        }
        /* Numbers keep their text, as in a client's message. */
        if (job->id == NULL || payload == NULL ||
            pxl_json_build(payload, len, 64, &job->payload) < 0) {
                free(job->id);
                free(job);
                return NULL;
        }
        return job;
}

static void claimed(struct pxl_queue *q, const struct pxl_db_result *res,
                    void *arg)
{
        struct queue *qu = arg;
        size_t n = pxl_db_rows(res), asked = qu->asked;

        /* Stopping: the give-back, queued after us, returns these rows. */
        if (q->stopping) {
                qu->claiming = false;
                return;
        }
        if (pxl_db_error(res) != NULL) {
                qu->claiming = false;
                pxl_logs(PXL_LOG_WARN, "queue %s: cannot claim jobs: %s",
                         qu->name, pxl_db_error(res));
                arm(qu, now_ms(q) + q->srv->conf->queue.poll_interval);
                return;
        }
        /*
         * Still claiming while they start: a job that ends in its call
         * must not claim more while the rest of this batch is not yet
         * counted in running (its claim waits in again).
         */
        for (size_t r = 0; r < n; r++) {
                struct pxl_job *job = job_from_row(qu, res, r);

                if (job == NULL) {
                        /* Renewed with the others, it would never end. */
                        pxl_logs(PXL_LOG_ERR,
                                 "queue %s: job %s: payload unreadable: dead",
                                 qu->name, pxl_db_value(res, r, 0, NULL));
                        run(q,
                            "UPDATE pxl_jobs SET state = 'dead', owner = NULL, "
                            "lease_until = NULL, error = 'payload is not "
                            "JSON', finished_at = $3 WHERE queue = $1 AND "
                            "id = $2",
                            params("ssi", qu->name,
                                   pxl_db_value(res, r, 0, NULL), now_ms(q)),
                            NULL, NULL);
                        continue;
                }
                qu->running++;
                LIST_INSERT_HEAD(&q->jobs, job, link);
                start_job(qu, job);
        }
        qu->claiming = false;
        if (qu->again || (n > 0 && n >= asked)) {
                qu->again = false;
                claim(qu); /* there may be more */
                return;
        }
        run(q,
            "SELECT MIN(CASE state WHEN 'waiting' THEN run_at "
            "ELSE lease_until END) FROM pxl_jobs "
            "WHERE queue = $1 AND state IN ('waiting', 'active')",
            params("s", qu->name), next_due, qu);
}

/* Take n of what is due (or whose lease ran out). */
static void claim_n(struct queue *qu, unsigned n)
{
        struct pxl_queue *q = qu->q;
        const struct pxl_queue_conf *conf = &q->srv->conf->queue;
        int64_t now = now_ms(q);

        qu->asked = n;
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
                claimed, qu) == 0)
                return;
        qu->claiming = false;
        arm(qu, now + conf->poll_interval);
}

/* How many starts the rate limit grants now; none: when the next is. */
static void granted(struct pxl_queue *q, const struct pxl_db_result *res,
                    void *arg)
{
        struct queue *qu = arg;
        const char *n = pxl_db_value(res, 0, 0, NULL);
        const char *tat = pxl_db_value(res, 0, 1, NULL);

        if (q->stopping) {
                qu->claiming = false;
                return;
        }
        if (pxl_db_error(res) != NULL || n == NULL || tat == NULL) {
                if (pxl_db_error(res) != NULL)
                        pxl_logs(PXL_LOG_WARN,
                                 "queue %s: rate limit not read: %s", qu->name,
                                 pxl_db_error(res));
                qu->claiming = false;
                arm(qu, now_ms(q) + q->srv->conf->queue.poll_interval);
                return;
        }
        if (strtoll(n, NULL, 10) > 0) {
                claim_n(qu, (unsigned)strtoll(n, NULL, 10));
                return;
        }
        qu->claiming = false;
        qu->again = false;
        arm(qu, strtoll(tat, NULL, 10) / 1000 + 1);
}

/*
 * Take what is due, up to the free places. With a rate limit, first
 * reserve starts in the shared table (GCRA: tat is when the next start
 * is allowed, in microseconds; one interval of burst), so that every
 * worker sharing the jobs keeps to it together.
 */
static void claim(struct queue *qu)
{
        struct pxl_queue *q = qu->q;
        unsigned free_places;
        int64_t now_us, interval;

        if (q->stopping || qu->running >= qu->capacity)
                return;
        if (qu->claiming) {
                qu->again = true;
                return;
        }
        free_places = qu->capacity - qu->running;
        if (free_places > MAX_CLAIM)
                free_places = MAX_CLAIM;
        qu->claiming = true;
        if (qu->rate == 0) {
                claim_n(qu, free_places);
                return;
        }
        now_us = pxl_worker_now_us(q->srv);
        interval = 1000000 / qu->rate;
        if (run(q,
                "UPDATE pxl_queue_limits SET "
                "granted = MAX(0, MIN($3, ($2 + $4 - MAX(tat, $2)) / $4)), "
                "tat = MAX(tat, $2) + "
                "MAX(0, MIN($3, ($2 + $4 - MAX(tat, $2)) / $4)) * $4 "
                "WHERE queue = $1 RETURNING granted, tat",
                params("siii", qu->name, now_us, (int64_t)free_places,
                       interval),
                granted, qu) < 0) {
                qu->claiming = false;
                arm(qu, now_ms(q) + q->srv->conf->queue.poll_interval);
        }
}

/* ---- outcomes ----------------------------------------------------------- */

static void job_free(struct pxl_job *job)
{
        LIST_REMOVE(job, link);
        if (job->timeout_ev != NULL)
                event_free(job->timeout_ev);
        json_object_put(job->payload);
        free(job->id);
        free(job);
}

/* Trim the queue's completed jobs to the newest keep, now and then. */
static void trim(struct queue *qu, unsigned keep)
{
        int64_t now = now_ms(qu->q);

        if (now - qu->trimmed_ms < TRIM_EVERY_MS)
                return;
        qu->trimmed_ms = now;
        run(qu->q,
            "DELETE FROM pxl_jobs WHERE rowid IN (SELECT rowid FROM pxl_jobs "
            "WHERE queue = $1 AND state = 'completed' "
            "AND NOT (id GLOB 'schedule:*' AND finished_at > $3) "
            "ORDER BY finished_at DESC LIMIT -1 OFFSET $2)",
            params("sii", qu->name, (int64_t)keep, now - SCHEDULE_KEEP_MS),
            NULL, NULL);
}

/* An outcome recorded: tell everyone, when it was still this attempt's. */
struct outcome {
        struct queue *qu;
        const char *name; /* the event */
        struct json_object *event;
};

static void outcome_free(struct outcome *o)
{
        if (o == NULL)
                return;
        json_object_put(o->event);
        free(o);
}

static void recorded(struct pxl_queue *q, const struct pxl_db_result *res,
                     void *arg)
{
        struct outcome *o = arg;

        if (pxl_db_error(res) != NULL)
                pxl_logs(PXL_LOG_ERR,
                         "queue %s: cannot record a job's "
                         "outcome: %s",
                         o->qu->name, pxl_db_error(res));
        else if (pxl_db_affected(res) > 0)
                publish(q, o->name, json_object_get(o->event));
        outcome_free(o);
}

/* Record an outcome: run sql with p (taken); o (may be NULL) is taken. */
static void record(struct pxl_queue *q, const char *sql, struct json_object *p,
                   struct outcome *o)
{
        if (run(q, sql, p, o ? recorded : NULL, o) < 0)
                outcome_free(o);
}

/*
 * Record how the job ended (error NULL: completed with result, taken)
 * and free its place; the struct stays while the plugin may still hold
 * it (a timeout ended it first).
 */
static void finish(struct pxl_job *job, const char *error,
                   struct json_object *result)
{
        struct queue *qu = job->queue;
        struct pxl_queue *q = qu->q;
        struct outcome *o = calloc(1, sizeof(*o));
        int64_t now = now_ms(q);
        const char *result_text = NULL;

        job->ended = true;
        atomic_store(&job->decided, true);
        if (job->timeout_ev != NULL)
                evtimer_del(job->timeout_ev);
        pxl_histogram_add(
                qu->run_ms,
                (uint64_t)(now > job->started_ms ? now - job->started_ms : 0));
        if (error == NULL)
                qu->processed++;
        else if (job->attempt < job->attempts)
                qu->failed++, qu->retried++;
        else
                qu->failed++, qu->died++;
        if (o == NULL || (o->event = event_of(job, qu->name)) == NULL) {
                free(o);
                o = NULL;
        } else {
                o->qu = qu;
        }
        if (error == NULL) {
                if (result != NULL)
                        result_text = json_object_to_json_string_ext(
                                result, JSON_C_TO_STRING_PLAIN);
                if (o != NULL) {
                        o->name = "jobCompleted";
                        json_object_object_add(o->event, "result",
                                               json_object_get(result));
                }
                if (job->keep == 0)
                        record(q,
                               "DELETE FROM pxl_jobs WHERE queue = $1 AND "
                               "id = $2 AND owner = $3 AND attempt = $4",
                               params("sssi", qu->name, job->id, q->owner,
                                      (int64_t)job->attempt),
                               o);
                else
                        record(q,
                               "UPDATE pxl_jobs SET state = 'completed', "
                               "result = $5, finished_at = $6, owner = NULL, "
                               "lease_until = NULL, error = NULL WHERE "
                               "queue = $1 AND id = $2 AND owner = $3 AND "
                               "attempt = $4",
                               params("sssisi", qu->name, job->id, q->owner,
                                      (int64_t)job->attempt, result_text, now),
                               o);
                if (job->keep > 0)
                        trim(qu, job->keep);
        } else {
                bool retry = job->attempt < job->attempts;
                uint64_t wait = job->backoff_ms;

                if (o != NULL) {
                        o->name = "jobFailed";
                        json_object_object_add(o->event, "error",
                                               json_object_new_string(error));
                        json_object_object_add(o->event, "dead",
                                               json_object_new_boolean(!retry));
                }
                if (!retry) {
                        record(q,
                               "UPDATE pxl_jobs SET state = 'dead', "
                               "error = $5, finished_at = $6, owner = NULL, "
                               "lease_until = NULL WHERE queue = $1 AND "
                               "id = $2 AND owner = $3 AND attempt = $4",
                               params("sssisi", qu->name, job->id, q->owner,
                                      (int64_t)job->attempt, error, now),
                               o);
                } else {
                        if (job->backoff_exp)
                                for (unsigned i = 1;
                                     i < job->attempt && wait < 86400000; i++)
                                        wait *= 2;
                        if (o != NULL)
                                json_object_object_add(
                                        o->event, "retryAt",
                                        json_object_new_int64(now +
                                                              (int64_t)wait));
                        record(q,
                               "UPDATE pxl_jobs SET state = 'waiting', "
                               "run_at = $5, error = $6, owner = NULL, "
                               "lease_until = NULL WHERE queue = $1 AND "
                               "id = $2 AND owner = $3 AND attempt = $4",
                               params("sssiis", qu->name, job->id, q->owner,
                                      (int64_t)job->attempt,
                                      now + (int64_t)wait, error),
                               o);
                        arm(qu, now + (int64_t)wait);
                }
        }
        json_object_put(result);
        qu->running--;
        claim(qu);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_job *job = arg;
        char why[64];

        (void)fd;
        (void)what;
        /* Timers run on a coarse clock: never fail a job early. */
        if (now_ms(job->queue->q) - job->started_ms < job->timeout_ms) {
                struct timeval tv = pxl_ms_timeval(
                        (uint64_t)(job->timeout_ms -
                                   (now_ms(job->queue->q) - job->started_ms)) +
                        1);

                evtimer_add(job->timeout_ev, &tv);
                return;
        }
        snprintf(why, sizeof(why), "timed out after %u ms", job->timeout_ms);
        pxl_logs(PXL_LOG_WARN, "queue %s: job %s %s", job->queue->name, job->id,
                 why);
        finish(job, why, NULL); /* the plugin still holds job */
}

static void run_blocking(struct pxl_job *job);

/* The processor returned rc, its call over: the job ends unless it ran on. */
static void returned(struct pxl_job *job, int rc)
{
        char why[96];

        if (job->ended) { /* ended in the call */
                job_free(job);
                return;
        }
        if (rc == PXL_DEFERRED && !job->blocking)
                return;
        if (rc == PXL_DEFERRED) {
                snprintf(why, sizeof(why),
                         "a blocking processor returned PXL_DEFERRED "
                         "without ending its job");
                pxl_logs(PXL_LOG_WARN, "queue %s: job %s: %s", job->queue->name,
                         job->id, why);
                finish(job, why, NULL);
        } else if (rc < 0) {
                snprintf(why, sizeof(why), "the processor returned: %s",
                         pxl_strerror(rc));
                finish(job, why, NULL);
        } else {
                finish(job, NULL, NULL);
        }
        job_free(job);
}

static void start_job(struct queue *qu, struct pxl_job *job)
{
        struct pxl_queue *q = qu->q;
        struct pxl_ctx ctx;
        struct timeval tv;
        int rc;

        if (job->attempt > job->attempts) { /* its workers kept dying */
                finish(job, "stalled: the worker running it stopped", NULL);
                job_free(job);
                return;
        }
        if (job->timeout_ms == 0)
                job->timeout_ms = qu->proc->timeout_ms
                                          ? qu->proc->timeout_ms
                                          : q->srv->conf->queue.timeout;
        job->timeout_ev = evtimer_new(q->srv->base, on_timeout, job);
        tv = pxl_ms_timeval(job->timeout_ms);
        if (job->timeout_ev != NULL)
                evtimer_add(job->timeout_ev, &tv);
        if (qu->proc->blocking) {
                run_blocking(job);
                return;
        }
        pxl_ctx_init(&ctx, q->srv, qu->plugin, NULL);
        job->in_call = true;
        rc = qu->proc->fn(&ctx, job);
        job->in_call = false;
        pxl_ctx_fini(&ctx);
        returned(job, rc);
}

/* ---- the plugin's calls ------------------------------------------------- */

const char *pxl_job_id(const struct pxl_job *job)
{
        return job->id;
}

const char *pxl_job_queue(const struct pxl_job *job)
{
        return job->queue ? job->queue->name : "";
}

struct json_object *pxl_job_payload(const struct pxl_job *job)
{
        return job->payload;
}

unsigned pxl_job_attempt(const struct pxl_job *job)
{
        return job->attempt;
}

static int progress_on_thread(struct pxl_job *job,
                              const struct json_object *progress);

static int job_progress(struct pxl_job *job, const struct json_object *progress)
{
        struct json_object *ev;
        struct pxl_queue *q;

        if (job == NULL || job->ended || job->queue == NULL)
                return PXL_ECLOSED;
        q = job->queue->q;
        run(q,
            "UPDATE pxl_jobs SET progress = $4 WHERE queue = $1 AND id = $2 "
            "AND owner = $3",
            params("ssss", job->queue->name, job->id, q->owner,
                   json_object_to_json_string_ext(
                           (struct json_object *)progress,
                           JSON_C_TO_STRING_PLAIN)),
            NULL, NULL);
        if ((ev = event_of(job, job->queue->name)) == NULL)
                return PXL_ENOMEM;
        json_object_object_add(ev, "progress",
                               json_object_get((struct json_object *)progress));
        publish(q, "jobProgress", ev);
        return PXL_OK;
}

int pxl_job_progress(struct pxl_job *job, const struct json_object *progress)
{
        if (job != NULL && job->blocking)
                return progress_on_thread(job, progress);
        return job_progress(job, progress);
}

static int end_on_thread(struct pxl_job *job, const char *error,
                         struct json_object *result);

/* The plugin ends job: recorded unless a timeout (or shutdown) did. */
static int end_job(struct pxl_job *job, const char *error,
                   struct json_object *result)
{
        bool late;

        if (job == NULL) {
                json_object_put(result);
                return PXL_EINVAL;
        }
        if (job->queue == NULL) { /* its worker stopped */
                json_object_put(result);
                LIST_REMOVE(job, link);
                json_object_put(job->payload);
                free(job->id);
                free(job);
                return PXL_ECLOSED;
        }
        if (job->blocking)
                return end_on_thread(job, error, result);
        late = job->ended;
        if (!late)
                finish(job, error, result);
        else
                json_object_put(result);
        /* In the call, start_job frees it when the processor returns. */
        if (!job->in_call)
                job_free(job);
        return late ? PXL_ECLOSED : PXL_OK;
}

int pxl_job_complete(struct pxl_job *job, struct json_object *result)
{
        return end_job(job, NULL, result);
}

int pxl_job_fail(struct pxl_job *job, const char *fmt, ...)
{
        char why[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt ? fmt : "failed", ap);
        va_end(ap);
        return end_job(job, why[0] ? why : "failed", NULL);
}

/* ---- blocking processors ----------------------------------------------- */

/*
 * A blocking processor runs on q->pool's threads. Its job stays in
 * q->jobs and in_call until the loop has the processor's return (the
 * pool's done), so the loop frees it only then. The thread reads the
 * job's id, queue, payload and attempt, which nothing changes meanwhile,
 * and decided; it writes only the t_ fields, which the loop reads after
 * a hand-over (a post, or the done: both pass the pool's lock).
 */
enum { T_COMPLETED = 1, T_FAILED };

/* On the loop: record the end the thread made, once. */
static void take_end(struct pxl_job *job)
{
        struct json_object *result = job->t_result;

        if (job->t_end == 0 || job->t_taken)
                return;
        job->t_taken = true;
        job->t_result = NULL;
        if (job->ended) /* timed out first: the late end is ignored */
                json_object_put(result);
        else if (job->t_end == T_FAILED)
                finish(job, job->t_error ? job->t_error : "failed", NULL);
        else
                finish(job, NULL, result);
        free(job->t_error);
        job->t_error = NULL;
}

static void on_end(void *arg)
{
        take_end(arg);
}

/* pxl_job_complete and pxl_job_fail, on the job's thread. */
static int end_on_thread(struct pxl_job *job, const char *error,
                         struct json_object *result)
{
        if (job->t_end != 0 || atomic_load(&job->decided)) {
                json_object_put(result);
                return PXL_ECLOSED;
        }
        job->t_result = result;
        job->t_error = error ? strdup(error) : NULL; /* NULL: "failed" */
        job->t_end = error ? T_FAILED : T_COMPLETED;
        /* Not posted for want of memory: the done records it. */
        (void)pxl_queue_pool_post(job->queue->q->pool, on_end, job);
        return PXL_OK;
}

struct progress_post {
        struct pxl_job *job;
        struct json_object *progress; /* a copy, the post's */
};

static void on_progress(void *arg)
{
        struct progress_post *pp = arg;

        (void)job_progress(pp->job, pp->progress); /* nothing once ended */
        json_object_put(pp->progress);
        free(pp);
}

/* pxl_job_progress, on the job's thread. */
static int progress_on_thread(struct pxl_job *job,
                              const struct json_object *progress)
{
        struct progress_post *pp;

        if (job->t_end != 0 || atomic_load(&job->decided))
                return PXL_ECLOSED;
        pp = calloc(1, sizeof(*pp));
        if (pp == NULL)
                return PXL_ENOMEM;
        pp->job = job;
        /* The plugin's objects stay on its thread: the loop gets a copy. */
        if ((progress != NULL &&
             json_object_deep_copy((struct json_object *)progress,
                                   &pp->progress, NULL) != 0) ||
            pxl_queue_pool_post(job->queue->q->pool, on_progress, pp) < 0) {
                json_object_put(pp->progress);
                free(pp);
                return PXL_ENOMEM;
        }
        return PXL_OK;
}

/* On a pool thread. */
static void blocking_work(void *arg)
{
        struct pxl_job *job = arg;

        job->t_rc = job->queue->proc->fn(NULL, job);
}

/* Back on the loop, after every post the processor made. */
static void blocking_done(void *arg, bool ran)
{
        struct pxl_job *job = arg;

        job->in_call = false;
        take_end(job); /* an end whose post was lost */
        if (ran)
                returned(job, job->t_rc);
        else if (job->ended)
                job_free(job);
        /* Else the pool stopped before it ran: queue_stop gives it back. */
}

static void run_blocking(struct pxl_job *job)
{
        job->blocking = true;
        job->in_call = true;
        if (pxl_queue_pool_run(job->queue->q->pool, blocking_work,
                               blocking_done, job) < 0) {
                job->in_call = false;
                finish(job, "out of memory", NULL);
                job_free(job);
        }
}

/* ---- adding ------------------------------------------------------------- */

struct adding {
        struct pxl_queue *q;
        struct queue *qu;
        struct pxl_plugin_slot *plugin;
        pxl_job_added_fn *fn;
        void *arg;
        int64_t run_at;
        char id[];
};

static void added(struct pxl_queue *q, const struct pxl_db_result *res,
                  void *arg)
{
        struct adding *a = arg;
        bool existed = pxl_db_error(res) == NULL && pxl_db_affected(res) == 0;

        if (pxl_db_error(res) == NULL && !existed && !q->stopping) {
                if (a->run_at <= now_ms(q))
                        claim(a->qu);
                else
                        arm(a->qu, a->run_at);
        }
        if (a->fn != NULL) {
                struct pxl_ctx ctx;

                pxl_ctx_init(&ctx, q->srv, a->plugin, NULL);
                a->fn(&ctx, a->id, existed, pxl_db_error(res), a->arg);
                pxl_ctx_fini(&ctx);
        }
        free(a);
}

static bool good_id(const char *id)
{
        size_t n = strlen(id);

        if (n == 0 || n > MAX_ID_LEN)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
                        return false;
        return true;
}

/* pxl_job_add, in tx when it is not NULL. */
static int add_job(struct pxl_queue *q, struct pxl_ctx *ctx,
                   struct pxl_db_tx *tx, const char *queue,
                   const struct json_object *payload,
                   const struct pxl_job_options *options, pxl_job_added_fn *fn,
                   void *arg)
{
        static const struct pxl_job_options defaults;
        const struct pxl_job_options *o = options ? options : &defaults;
        const struct pxl_queue_conf *conf;
        struct queue *qu;
        struct adding *a;
        const char *text;
        char made[64];
        const char *id;
        int64_t now, run_at;
        size_t len;

        if (q == NULL || q->stopping)
                return PXL_ECLOSED;
        conf = &q->srv->conf->queue;
        if (queue == NULL || (qu = find_queue(q, queue)) == NULL) {
                pxl_log(ctx, PXL_LOG_WARN,
                        "pxl_job_add: no processor for queue \"%s\"",
                        queue ? queue : "(null)");
                return PXL_EINVAL;
        }
        text = json_object_to_json_string_ext((struct json_object *)payload,
                                              JSON_C_TO_STRING_PLAIN);
        len = strlen(text);
        if (len > conf->max_payload) {
                pxl_log(ctx, PXL_LOG_WARN,
                        "pxl_job_add: queue %s: payload of %zu bytes is over "
                        "queue.max_payload (%u)",
                        queue, len, conf->max_payload);
                return PXL_EINVAL;
        }
        if (o->id != NULL && !good_id(o->id)) {
                pxl_log(ctx, PXL_LOG_WARN,
                        "pxl_job_add: queue %s: a job id is 1 to %d "
                        "printable bytes",
                        queue, MAX_ID_LEN);
                return PXL_EINVAL;
        }
        if (o->id == NULL)
                snprintf(made, sizeof(made), "%s-%u.%u-%" PRIu64,
                         q->srv->node_id, q->srv->worker_index,
                         q->srv->worker_gen, ++q->seq);
        id = o->id ? o->id : made;
        a = calloc(1, sizeof(*a) + strlen(id) + 1);
        if (a == NULL)
                return PXL_ENOMEM;
        now = now_ms(q);
        run_at = o->run_at_ms > 0 ? o->run_at_ms
                                  : now + (int64_t)(o->delay_ms > TEN_YEARS_MS
                                                            ? TEN_YEARS_MS
                                                            : o->delay_ms);
        a->q = q;
        a->qu = qu;
        a->plugin = ctx->plugin;
        a->fn = fn;
        a->arg = arg;
        a->run_at = run_at;
        memcpy(a->id, id, strlen(id) + 1);
        {
                struct json_object *p = json_object_new_array();
                int64_t vals[] = {
                        o->priority,
                        run_at,
                        o->attempts ? o->attempts : DEFAULT_ATTEMPTS,
                        o->backoff_ms ? o->backoff_ms : DEFAULT_BACKOFF_MS,
                        o->backoff_exponential,
                        o->timeout_ms,
                        o->keep_completed ? o->keep_completed
                                          : conf->keep_completed,
                        now,
                };

                json_object_array_add(p, json_object_new_string(queue));
                json_object_array_add(p, json_object_new_string(id));
                json_object_array_add(
                        p, json_object_new_string_len(text, (int)len));
                for (size_t i = 0; i < sizeof(vals) / sizeof(*vals); i++)
                        json_object_array_add(p,
                                              json_object_new_int64(vals[i]));
                int rc = run_in(
                        q, tx,
                        "INSERT INTO pxl_jobs (queue, id, payload, "
                        "priority, "
                        "run_at, attempts, backoff_ms, backoff_exp, "
                        "timeout_ms, keep, created_at) VALUES ($1, $2, $3, "
                        "$4, $5, $6, $7, $8, $9, $10, $11) "
                        "ON CONFLICT (queue, id) DO NOTHING",
                        p, added, a);

                if (rc < 0) {
                        free(a);
                        return rc;
                }
        }
        return PXL_OK;
}

int pxl_job_add(struct pxl_ctx *ctx, const char *queue,
                const struct json_object *payload,
                const struct pxl_job_options *options, pxl_job_added_fn *fn,
                void *arg)
{
        return add_job(queue_of(ctx ? ctx->srv : NULL), ctx, NULL, queue,
                       payload, options, fn, arg);
}

int pxl_job_add_tx(struct pxl_db_tx *tx, const char *queue,
                   const struct json_object *payload,
                   const struct pxl_job_options *options, pxl_job_added_fn *fn,
                   void *arg)
{
        struct pxl_worker *srv = tx ? pxl_db_tx_worker(tx) : NULL;
        struct pxl_queue *q = queue_of(srv);
        struct pxl_ctx ctx;
        int rc;

        if (q == NULL)
                return PXL_ECLOSED;
        pxl_ctx_init(&ctx, srv, pxl_db_tx_plugin(tx), NULL);
        /* One transaction holds both only in one database. */
        if (q->own_db) {
                pxl_log(&ctx, PXL_LOG_WARN,
                        "pxl_job_add_tx: the jobs are not in the app's "
                        "database (it is not SQLite): use pxl_job_add");
                rc = PXL_EINVAL;
        } else {
                rc = add_job(q, &ctx, tx, queue, payload, options, fn, arg);
        }
        pxl_ctx_fini(&ctx);
        return rc;
}

/* ---- schedules ---------------------------------------------------------- */

/* The first tick after `after` (seconds), or -1 for none. */
static int64_t tick_after(const struct schedule *sc, int64_t after)
{
        if (sc->conf->cron != NULL)
                return pxl_cron_next(&sc->cron, after);
        return (after / sc->conf->every + 1) * sc->conf->every;
}

static void arm_schedule(struct schedule *sc)
{
        int64_t now = now_ms(sc->q);
        struct timeval tv;

        if (sc->tick < 0) /* a cron date that never comes */
                return;
        tv = pxl_ms_timeval(sc->tick * 1000 > now ? sc->tick * 1000 - now : 0);
        evtimer_add(sc->timer, &tv);
}

/*
 * A tick: every worker adds the tick's job under the same id, so the
 * queue keeps one, whoever comes first. Ticks missed while no worker
 * ran are not made up for.
 */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
        struct schedule *sc = arg;
        struct pxl_queue *q = sc->q;
        /*
         * Kept after it completed (at least the newest one), so that a
         * worker whose tick rings late finds it and adds nothing.
         */
        struct pxl_job_options o = {
                .run_at_ms = sc->tick * 1000,
                .keep_completed = q->srv->conf->queue.keep_completed
                                          ? q->srv->conf->queue.keep_completed
                                          : 1,
        };
        char id[MAX_ID_LEN + 1];
        struct pxl_ctx ctx;

        (void)fd;
        (void)what;
        snprintf(id, sizeof(id), "schedule:%.64s:%" PRId64, sc->conf->name,
                 sc->tick);
        o.id = id;
        pxl_ctx_init(&ctx, q->srv, sc->qu->plugin, NULL);
        if (add_job(q, &ctx, NULL, sc->qu->name, sc->payload, &o, NULL, NULL) <
            0)
                pxl_logs(PXL_LOG_ERR,
                         "queue: schedule %s: tick %" PRId64 " not added",
                         sc->conf->name, sc->tick);
        pxl_ctx_fini(&ctx);
        sc->tick = tick_after(sc, now_ms(q) / 1000 > sc->tick ? now_ms(q) / 1000
                                                              : sc->tick);
        arm_schedule(sc);
}

static const char *conf_file(const struct pxl_queue *q)
{
        return q->srv->conf->file;
}

static int start_schedules(struct pxl_queue *q, struct pxl_str *errors)
{
        const struct pxl_queue_conf *conf = &q->srv->conf->queue;
        char err[160];

        q->sched = calloc(conf->nschedules ? conf->nschedules : 1,
                          sizeof(*q->sched));
        if (q->sched == NULL)
                return PXL_ENOMEM;
        for (size_t i = 0; i < conf->nschedules; i++) {
                struct schedule *sc = &q->sched[q->nsched];
                const struct pxl_schedule_conf *c = &conf->schedules[i];

                sc->q = q;
                sc->conf = c;
                sc->qu = find_queue(q, c->queue); /* install checked it */
                if (c->cron != NULL &&
                    pxl_cron_parse(c->cron, &sc->cron, err, sizeof(err)) < 0) {
                        pxl_str_report(errors, conf_file(q), c->line,
                                       "queue.schedules", "%s: cron: %s",
                                       c->name, err);
                        return PXL_EINVAL;
                }
                if (pxl_json_build(c->payload, strlen(c->payload), 64,
                                   &sc->payload) < 0) {
                        pxl_str_report(errors, conf_file(q), c->line,
                                       "queue.schedules",
                                       "%s: payload is not JSON", c->name);
                        return PXL_EINVAL;
                }
                q->nsched++;
                sc->timer = evtimer_new(q->srv->base, on_tick, sc);
                if (sc->qu == NULL || sc->timer == NULL) {
                        pxl_str_puts(errors, "out of memory\n");
                        return PXL_ENOMEM;
                }
                sc->tick = tick_after(sc, now_ms(q) / 1000);
                arm_schedule(sc);
        }
        return 0;
}

static void stop_schedules(struct pxl_queue *q)
{
        for (size_t i = 0; i < q->nsched; i++) {
                if (q->sched[i].timer != NULL)
                        event_free(q->sched[i].timer);
                json_object_put(q->sched[i].payload);
        }
        free(q->sched);
        q->sched = NULL;
        q->nsched = 0;
}

/* ---- leases ------------------------------------------------------------- */

static unsigned lease_every_ms(const struct pxl_queue *q)
{
        unsigned ms = q->srv->conf->queue.stalled_after * 1000 / 3;

        return ms < 100 ? 100 : ms;
}

static void on_lease(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_queue *q = arg;
        struct timeval tv = pxl_ms_timeval(lease_every_ms(q));

        struct json_object *live = json_object_new_array();
        struct pxl_job *job;
        size_t n = 0;

        (void)fd;
        (void)what;
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
                           now_ms(q) +
                                   (int64_t)q->srv->conf->queue.stalled_after *
                                           1000,
                           json_object_to_json_string_ext(
                                   live, JSON_C_TO_STRING_PLAIN)),
                    NULL, NULL);
        json_object_put(live);
        evtimer_add(q->lease_timer, &tv);
}

/* ---- figures ------------------------------------------------------------ */

static void counted(struct pxl_queue *q, const struct pxl_db_result *res,
                    void *arg)
{
        (void)arg;
        if (pxl_db_error(res) != NULL)
                return;
        for (size_t i = 0; i < q->n; i++) {
                struct queue *qu = &q->v[i];

                qu->waiting = qu->delayed = qu->active = 0;
                qu->completed = qu->dead = 0;
        }
        for (size_t r = 0; r < pxl_db_rows(res); r++) {
                struct queue *qu = find_queue(q, pxl_db_value(res, r, 0, NULL));
                const char *v[5];

                if (qu == NULL) /* processed elsewhere: not ours to show */
                        continue;
                for (int c = 0; c < 5; c++) {
                        v[c] = pxl_db_value(res, r, (size_t)c + 1, NULL);
                        if (v[c] == NULL)
                                v[c] = "0";
                }
                qu->waiting = strtoll(v[0], NULL, 10);
                qu->delayed = strtoll(v[1], NULL, 10);
                qu->active = strtoll(v[2], NULL, 10);
                qu->completed = strtoll(v[3], NULL, 10);
                qu->dead = strtoll(v[4], NULL, 10);
        }
}

/* The table's counts, once a second, for pxl_metrics(). */
static void on_count(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_queue *q = arg;
        struct timeval tv = pxl_ms_timeval(1000);

        (void)fd;
        (void)what;
        run(q,
            "SELECT queue, SUM(state = 'waiting' AND run_at <= $1), "
            "SUM(state = 'waiting' AND run_at > $1), "
            "SUM(state = 'active'), SUM(state = 'completed'), "
            "SUM(state = 'dead') FROM pxl_jobs GROUP BY queue",
            params("i", now_ms(q)), counted, NULL);
        evtimer_add(q->count_timer, &tv);
}

static struct json_object *quantiles(const struct pxl_histogram *h)
{
        struct json_object *o = json_object_new_object();

        json_object_object_add(
                o, "p50",
                json_object_new_int64((int64_t)pxl_histogram_quantile(h, 0.5)));
        json_object_object_add(
                o, "p99",
                json_object_new_int64(
                        (int64_t)pxl_histogram_quantile(h, 0.99)));
        json_object_object_add(o, "max",
                               json_object_new_int64((int64_t)h->max));
        return o;
}

/*
 * "queues": {NAME: {...}} in pxl_metrics(): the table's counts for the
 * whole queue (as of the last second), this worker's counters and its
 * wait (due to started) and run (started to ended) times in ms.
 */
static void report(const struct pxl_worker *srv, struct json_object *out,
                   void *arg)
{
        struct pxl_queue *q = queue_of(srv);
        struct json_object *all;

        (void)arg;
        if (q == NULL || (all = json_object_new_object()) == NULL)
                return;
        for (size_t i = 0; i < q->n; i++) {
                const struct queue *qu = &q->v[i];
                struct json_object *o = json_object_new_object();
                const struct {
                        const char *key;
                        int64_t v;
                } f[] = {
                        {"waiting", qu->waiting},
                        {"delayed", qu->delayed},
                        {"active", qu->active},
                        {"completed", qu->completed},
                        {"dead", qu->dead},
                        {"running", qu->running},
                        {"processed", (int64_t)qu->processed},
                        {"failed", (int64_t)qu->failed},
                        {"retried", (int64_t)qu->retried},
                        {"died", (int64_t)qu->died},
                };

                if (o == NULL)
                        break;
                for (size_t k = 0; k < sizeof(f) / sizeof(*f); k++)
                        json_object_object_add(o, f[k].key,
                                               json_object_new_int64(f[k].v));
                json_object_object_add(o, "waitMs", quantiles(qu->wait_ms));
                json_object_object_add(o, "runMs", quantiles(qu->run_ms));
                json_object_object_add(all, qu->name, o);
        }
        json_object_object_add(out, "queues", all);
}

void pxl_queue_fini(void)
{
        struct pxl_job *job;

        while ((job = LIST_FIRST(&detached)) != NULL) {
                LIST_REMOVE(job, link);
                json_object_put(job->payload);
                free(job->id);
                free(job);
        }
}

/* ---- the service -------------------------------------------------------- */

/* The file the jobs live in: the app's SQLite database, or our own. */
static const char *jobs_file(const struct pxl_config *conf)
{
        if (conf->database.enabled && !conf->database.postgresql)
                return conf->database.path;
        return conf->queue.path;
}

static bool installed(const struct pxl_worker *srv)
{
        for (unsigned i = 0; i < srv->nservices; i++)
                if (srv->services[i] == &queue_service)
                        return true;
        return false;
}

int pxl_queue_prepare(const struct pxl_worker *srv, struct pxl_str *errors)
{
        const char *file = jobs_file(srv->conf);
        sqlite3 *db = NULL;
        char *msg = NULL;
        int rc = 0;

        if (!installed(srv))
                return 0;
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

static void stop_queues(struct pxl_queue *q)
{
        pxl_queue_pool_free(q->pool);
        stop_schedules(q);
        for (size_t i = 0; i < q->n; i++) {
                if (q->v[i].timer != NULL)
                        event_free(q->v[i].timer);
                free(q->v[i].wait_ms);
                free(q->v[i].run_ms);
        }
        free(q->v);
        if (q->lease_timer != NULL)
                event_free(q->lease_timer);
        if (q->count_timer != NULL)
                event_free(q->count_timer);
        if (q->own_db)
                pxl_db_close(q->db);
        free(q);
}

/* N of "QUEUE=N" in queue.rate_limits (checked by the config), or 0. */
static unsigned rate_of(const struct pxl_config *conf, const char *queue)
{
        size_t len = strlen(queue);

        for (char **r = conf->queue.rate_limits; r != NULL && *r != NULL; r++)
                if (strncmp(*r, queue, len) == 0 && (*r)[len] == '=')
                        return (unsigned)strtoul(*r + len + 1, NULL, 10);
        return 0;
}

static int queue_start(struct pxl_worker *srv, struct pxl_str *errors)
{
        struct pxl_queue *q = calloc(1, sizeof(*q));
        struct timeval tv;
        size_t n = 0;

        if (q == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        q->srv = srv;
        LIST_INIT(&q->jobs);
        snprintf(q->owner, sizeof(q->owner), "%s/%u/%d", srv->node_id,
                 srv->worker_index, (int)getpid());
        for (size_t i = 0; i < srv->plugins.n; i++) {
                const struct pxl_processor *p =
                        pxl_plugin_processors(srv->plugins.v[i].desc);

                for (; p != NULL && p->queue != NULL; p++)
                        n++;
        }
        q->v = calloc(n ? n : 1, sizeof(*q->v));
        q->db = pxl_db_app(srv);
        if (q->db == NULL || srv->conf->database.postgresql) {
                q->own_conf.enabled = true;
                q->own_conf.path = srv->conf->queue.path;
                q->own_conf.busy_timeout = 5000;
                q->own_conf.readers = 1;
                q->own_conf.max_pending = 1000000;
                q->own_db = true;
                q->db = pxl_db_open(srv, &q->own_conf, errors);
        }
        q->lease_timer = evtimer_new(srv->base, on_lease, q);
        q->count_timer = evtimer_new(srv->base, on_count, q);
        if (q->v == NULL || q->db == NULL || q->lease_timer == NULL ||
            q->count_timer == NULL) {
                if (q->db == NULL)
                        q->own_db = false;
                pxl_str_puts(errors, q->db ? "out of memory\n" : "");
                stop_queues(q);
                return PXL_ERR;
        }
        for (size_t i = 0; i < srv->plugins.n; i++) {
                const struct pxl_processor *p =
                        pxl_plugin_processors(srv->plugins.v[i].desc);

                for (; p != NULL && p->queue != NULL; p++) {
                        struct queue *qu = &q->v[q->n++];

                        qu->q = q;
                        qu->name = p->queue;
                        qu->plugin = &srv->plugins.v[i];
                        qu->proc = p;
                        qu->capacity = p->concurrency ? p->concurrency : 1;
                        qu->rate = rate_of(srv->conf, p->queue);
                        qu->timer = evtimer_new(srv->base, on_timer, qu);
                        qu->wait_ms = calloc(1, sizeof(*qu->wait_ms));
                        qu->run_ms = calloc(1, sizeof(*qu->run_ms));
                        if (qu->timer == NULL || qu->wait_ms == NULL ||
                            qu->run_ms == NULL) {
                                pxl_str_puts(errors, "out of memory\n");
                                stop_queues(q);
                                return PXL_ENOMEM;
                        }
                }
        }
        for (size_t i = 0; i < q->n && q->pool == NULL; i++) {
                if (!q->v[i].proc->blocking)
                        continue;
                q->pool = pxl_queue_pool_new(srv->base,
                                             srv->conf->queue.threads, errors);
                if (q->pool == NULL) {
                        stop_queues(q);
                        return PXL_ERR;
                }
        }
        if (start_schedules(q, errors) < 0) {
                stop_queues(q);
                return PXL_ERR;
        }
        pxl_worker_set_service_state(srv, &queue_service, q);
        tv = pxl_ms_timeval(lease_every_ms(q));
        evtimer_add(q->lease_timer, &tv);
        on_count(-1, 0, q);
        for (size_t i = 0; i < q->n; i++)
                arm(&q->v[i], now_ms(q));
        return PXL_OK;
}

/* Give back what runs here, so that it runs again at once elsewhere. */
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

/* Run the loop until our statements are answered, 5 s at most. */
static void drain(struct pxl_queue *q)
{
        struct timeval tick = pxl_ms_timeval(50);
        int64_t until = pxl_worker_now_ms(q->srv) + 5000;

        while (q->inflight > 0 && pxl_worker_now_ms(q->srv) < until) {
                event_base_loopexit(q->srv->base, &tick);
                event_base_loop(q->srv->base, EVLOOP_ONCE);
        }
}

static void queue_stop(struct pxl_worker *srv)
{
        struct pxl_queue *q = queue_of(srv);
        struct pxl_job *job;

        if (q == NULL)
                return;
        q->stopping = true;
        /* Blocking processors return first; jobs waiting for one stay. */
        pxl_queue_pool_free(q->pool);
        q->pool = NULL;
        for (size_t i = 0; i < q->nsched; i++)
                evtimer_del(q->sched[i].timer);
        /*
         * The outcomes already sent are written first (statements not
         * awaited run in no promised order); then everything still ours
         * goes back, rows a claim in flight takes included.
         */
        drain(q);
        run(q,
            "UPDATE pxl_jobs SET state = 'waiting', "
            "attempt = attempt - 1, owner = NULL, "
            "lease_until = NULL WHERE owner = $1 AND "
            "state = 'active'",
            params("s", q->owner), released, NULL);
        /*
         * Every statement of ours answered before q goes: their
         * callbacks name it (the app's database closes after us).
         */
        drain(q);
        /*
         * Handles still running stay valid, detached: a callback the
         * database or Redis runs as they stop may still end one (which
         * then only frees it); pxl_queue_fini frees the rest.
         */
        while ((job = LIST_FIRST(&q->jobs)) != NULL) {
                LIST_REMOVE(job, link);
                if (job->timeout_ev != NULL)
                        event_free(job->timeout_ev);
                job->timeout_ev = NULL;
                job->queue = NULL;
                job->ended = true;
                LIST_INSERT_HEAD(&detached, job, link);
        }
        for (size_t i = 0; i < q->n; i++)
                evtimer_del(q->v[i].timer);
        evtimer_del(q->count_timer);
        if (q->own_db) {
                pxl_db_close(q->db);
                q->own_db = false;
        }
        pxl_worker_set_service_state(srv, &queue_service, NULL);
        /*
         * Statements still unanswered (a lock held elsewhere longer than
         * we waited) name q in their callbacks, which the app's database
         * runs as it closes, after us: the last of them frees q.
         */
        if (q->inflight > 0) {
                q->orphaned = true;
                return;
        }
        q->db = NULL;
        stop_queues(q);
}

static const struct pxl_service queue_service = {
        .name = "queue",
        .start = queue_start,
        .stop = queue_stop,
};

static bool good_queue_name(const char *name)
{
        size_t n = strlen(name);

        if (n == 0 || n > MAX_QUEUE_NAME)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((name[i] >= 'a' && name[i] <= 'z') ||
                      (name[i] >= '0' && name[i] <= '9') || name[i] == '_' ||
                      name[i] == '.' || name[i] == '-'))
                        return false;
        return true;
}

/*
 * The first processor of queue name (len bytes) among the plugins, and
 * its plugin in *slot; NULL when no plugin processes it.
 */
static const struct pxl_processor *
find_processor(const struct pxl_worker *srv, const char *name, size_t len,
               const struct pxl_plugin_slot **slot)
{
        for (size_t i = 0; i < srv->plugins.n; i++)
                for (const struct pxl_processor *p =
                             pxl_plugin_processors(srv->plugins.v[i].desc);
                     p != NULL && p->queue != NULL; p++)
                        if (strlen(p->queue) == len &&
                            strncmp(p->queue, name, len) == 0) {
                                if (slot != NULL)
                                        *slot = &srv->plugins.v[i];
                                return p;
                        }
        return NULL;
}

int pxl_queue_install(struct pxl_worker *srv, struct pxl_str *errors)
{
        size_t n = 0;
        int rc = 0;

        for (size_t i = 0; i < srv->plugins.n; i++) {
                const struct pxl_plugin_slot *s = &srv->plugins.v[i];
                /* p itself is always found: first is at worst s. */
                const struct pxl_plugin_slot *first = s;
                const struct pxl_processor *p = pxl_plugin_processors(s->desc);

                for (; p != NULL && p->queue != NULL; p++, n++) {
                        if (!good_queue_name(p->queue) || p->fn == NULL) {
                                pxl_str_report(errors, s->path, 0, NULL,
                                               "processor for queue \"%s\": "
                                               "%s",
                                               p->queue,
                                               p->fn == NULL
                                                       ? "no function"
                                                       : "a queue name is 1 to "
                                                         "64 of a-z 0-9 _ . -");
                                rc = PXL_ERR;
                        }
                        if (find_processor(srv, p->queue, strlen(p->queue),
                                           &first) != p) {
                                pxl_str_report(errors, s->path, 0, NULL,
                                               "queue \"%s\" already has a "
                                               "processor (%s)",
                                               p->queue, first->path);
                                rc = PXL_ERR;
                        }
                }
        }
        for (char **r = srv->conf->queue.rate_limits; r != NULL && *r != NULL;
             r++) {
                size_t len = strcspn(*r, "=");

                if (find_processor(srv, *r, len, NULL) == NULL) {
                        const config_setting_t *list = config_lookup(
                                &srv->conf->cfg, "queue.rate_limits");
                        const config_setting_t *e =
                                list ? config_setting_get_elem(
                                               list,
                                               (unsigned)(r -
                                                          srv->conf->queue
                                                                  .rate_limits))
                                     : NULL;

                        pxl_str_report(errors, srv->conf->file,
                                       e ? config_setting_source_line(e) : 0,
                                       "queue.rate_limits",
                                       "no plugin processes queue \"%.*s\"",
                                       (int)len, *r);
                        rc = PXL_ERR;
                }
        }
        for (size_t i = 0; i < srv->conf->queue.nschedules; i++) {
                const struct pxl_schedule_conf *c =
                        &srv->conf->queue.schedules[i];

                if (find_processor(srv, c->queue, strlen(c->queue), NULL) ==
                    NULL) {
                        pxl_str_report(errors, srv->conf->file, c->line,
                                       "queue.schedules",
                                       "%s: no plugin processes queue \"%s\"",
                                       c->name, c->queue);
                        rc = PXL_ERR;
                }
        }
        if (rc < 0 || n == 0)
                return rc;
        /* Our own SQLite file: set up as the app's would be. */
        if (pxl_db_sqlite.setup != NULL &&
            (!srv->conf->database.enabled || srv->conf->database.postgresql))
                pxl_db_sqlite.setup();
        if (pxl_worker_add_service(srv, &queue_service) < 0 ||
            pxl_worker_add_reporter(srv, report, NULL) < 0) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        return PXL_OK;
}
