/*
 * pxl_queue_int.h - the queue's parts and the contract between its
 * common half (pxl_queue.c: processors, outcomes, timeouts, events,
 * schedules, figures) and the back end that stores the jobs:
 * pxl_queue_sqlite.c (SQLite through the database layer) or
 * pxl_queue_redis.c (Redis Streams, with a `redis` group).
 *
 * The common half decides; the back end stores and answers. Every
 * back-end call answers later, from the loop, through the callback it
 * was given (never inside the call), and counts itself in q->inflight
 * (pxl_queue_hold/_release) until it has answered, so that stopping
 * can wait for it.
 */
#ifndef PXL_QUEUE_INT_H
#define PXL_QUEUE_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "pxl/pxl.h"

struct event;
struct json_object;
struct pxl_db;
struct pxl_db_tx;
struct pxl_histogram;
struct pxl_plugin_slot;
struct pxl_queue_pool;
struct pxl_str;
struct pxl_worker;
struct pxl_queue;

#define PXL_QUEUE_MAX_ID    128
#define PXL_QUEUE_MAX_NAME  64
#define PXL_QUEUE_MAX_CLAIM 64 /* jobs one claim takes at most */
/*
 * A schedule's tick stays at least this long after it completed, so that
 * a worker whose tick rang late finds it (trimming spares it).
 */
#define PXL_QUEUE_SCHEDULE_KEEP_MS 60000

/* A queue this worker processes. */
struct pxl_queue_line {
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
        /* The store's counts for the queue, as of the last look. */
        int64_t waiting, delayed, active, completed, dead;
        /* This worker's, since it started. */
        uint64_t processed, failed, retried, died;
        struct pxl_histogram *wait_ms; /* due to start */
        struct pxl_histogram *run_ms;  /* start to end */
        void *be; /* the back end's, per queue */
};

struct pxl_job {
        LIST_ENTRY(pxl_job) link; /* q->jobs, or detached */
        struct pxl_queue_line *queue;
        char *id;
        char *token; /* the back end's name for this run, or NULL */
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

struct pxl_queue_backend;

struct pxl_queue {
        struct pxl_worker *srv;
        const struct pxl_queue_backend *be;
        void *be_state; /* the back end's, per worker */
        struct pxl_queue_line *v;
        size_t n;
        struct pxl_queue_schedule *sched;
        size_t nsched;
        LIST_HEAD(, pxl_job) jobs;
        struct event *lease_timer;
        struct event *count_timer;
        char owner[64];    /* NODE/WORKER/PID: who holds a lease */
        uint64_t seq;      /* for ids made here */
        unsigned inflight; /* back-end calls not yet answered */
        bool orphaned;     /* stopped with some: freed by the last */
        bool stopping;
        struct pxl_queue_pool *pool; /* for blocking processors, or NULL */
};

/* A job to store (pxl_job_add, a schedule's tick, pxl-jobs's retry). */
struct pxl_queue_new {
        const char *queue;
        const char *id;
        const char *payload; /* JSON text */
        size_t payload_len;
        int64_t priority;
        int64_t run_at; /* ms since the epoch */
        int64_t now;
        unsigned attempts, backoff_ms, timeout_ms, keep;
        bool backoff_exp;
};

/* A job a claim took, as the back end hands it over (all borrowed). */
struct pxl_queue_claim {
        const char *id;
        const char *token; /* the back end's name for this run, or NULL */
        const char *payload;
        size_t payload_len;
        unsigned attempt, attempts, backoff_ms, timeout_ms, keep;
        bool backoff_exp;
        int64_t due; /* when it became due (ms) */
};

enum pxl_queue_end { PXL_QUEUE_COMPLETED, PXL_QUEUE_RETRY, PXL_QUEUE_DEAD };

/* How a run ended, for the back end to record. */
struct pxl_queue_outcome {
        enum pxl_queue_end end;
        const char *result; /* COMPLETED: JSON text, or NULL */
        const char *error;  /* RETRY, DEAD: why */
        int64_t now;
        int64_t retry_at; /* RETRY */
};

/*
 * The answer to an add: existed when the id was there; error NULL, or
 * why the job was not stored.
 */
typedef void pxl_queue_added_fn(struct pxl_queue *q, void *arg, bool existed,
                                const char *error);
/* The answer to a finish: recorded is false when the run was no longer
 * this worker's (a stalled job claimed elsewhere) or on an error. */
typedef void pxl_queue_recorded_fn(struct pxl_queue *q, void *arg,
                                   bool recorded);

struct pxl_queue_backend {
        const char *name;
        /* Per worker, once the queues are known (q->v). */
        int (*start)(struct pxl_queue *q, struct pxl_str *errors);
        /* After give_back and the drain; frees what start made. */
        void (*stop)(struct pxl_queue *q);
        /*
         * Store nj (in tx when not NULL; only a back end whose jobs
         * share the app's database accepts one). PXL_OK and done later,
         * or an error now and done never.
         */
        int (*add)(struct pxl_queue *q, struct pxl_db_tx *tx,
                   const struct pxl_queue_new *nj, pxl_queue_added_fn *done,
                   void *arg);
        /*
         * Take up to n due jobs of qu (a stalled one included) within
         * its rate limit, then call pxl_queue_claimed once.
         */
        void (*claim)(struct pxl_queue_line *qu, unsigned n);
        /* Something may be due now: stop waiting (may be NULL). */
        void (*wake)(struct pxl_queue_line *qu);
        /* Record how job's run ended, if the run is still ours. */
        void (*finish)(struct pxl_job *job, const struct pxl_queue_outcome *o,
                       pxl_queue_recorded_fn *done, void *arg);
        void (*progress)(struct pxl_job *job, const char *json);
        /* Keep the runs of q->jobs that have not ended ours. */
        void (*renew)(struct pxl_queue *q);
        /* Stopping: every run of ours goes back, to run at once elsewhere. */
        void (*give_back)(struct pxl_queue *q);
        /* Refresh the counts of every line (waiting... dead). */
        void (*count)(struct pxl_queue *q);
        /* add accepts a transaction of the app's database (may be NULL). */
        bool (*in_tx)(const struct pxl_queue *q);
};

extern const struct pxl_queue_backend pxl_queue_sqlite;
extern const struct pxl_queue_backend pxl_queue_redis;

struct pxl_config;

/* Before serving, blocking: what each back end needs made once. */
int pxl_queue_sqlite_prepare(const struct pxl_worker *srv,
                             struct pxl_str *errors);
int pxl_queue_redis_prepare(const struct pxl_worker *srv,
                            struct pxl_str *errors);
/* SQLite's process-wide settings, when the jobs have a file of their own. */
void pxl_queue_sqlite_setup(const struct pxl_config *conf);

/*
 * A claim's answer: n jobs (borrowed), error NULL or why none;
 * wake_at, when to look again if nothing more is claimable now (ms);
 * limited when the rate limit allowed none (look at wake_at, not
 * before).
 */
void pxl_queue_claimed(struct pxl_queue_line *qu,
                       const struct pxl_queue_claim *jobs, size_t n,
                       const char *error, int64_t wake_at, bool limited);

/* A back-end call in flight, and its answer (which may free q). */
void pxl_queue_hold(struct pxl_queue *q);
void pxl_queue_release(struct pxl_queue *q);

struct pxl_db_result;

/* A statement's answer (pxl_queue_db.c). */
typedef void pxl_queue_db_fn(struct pxl_queue *q,
                             const struct pxl_db_result *res, void *arg);
/*
 * Run sql with p (taken) on db, or in tx when it is not NULL; done (may
 * be NULL) gets the result, later. On an error now done runs never.
 */
int pxl_queue_db_run(struct pxl_queue *q, struct pxl_db *db,
                     struct pxl_db_tx *tx, const char *sql,
                     struct json_object *p, pxl_queue_db_fn *done, void *arg);
/*
 * Insert nj into table (the jobs table, or the outbox: the same
 * columns), unless its (queue, id) is there; done as for an add.
 */
int pxl_queue_db_insert(struct pxl_queue *q, struct pxl_db *db,
                        struct pxl_db_tx *tx, const char *table,
                        const struct pxl_queue_new *nj,
                        pxl_queue_added_fn *done, void *arg);

/* srv's queue while it runs, else NULL. */
struct pxl_queue *pxl_queue_of(const struct pxl_worker *srv);

/* The wall clock now, in ms since the epoch. */
int64_t pxl_queue_now_ms(void);

/* The line of queue name, or NULL. */
struct pxl_queue_line *pxl_queue_line_find(struct pxl_queue *q,
                                           const char *name);

#endif
