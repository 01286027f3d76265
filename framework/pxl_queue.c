/*
 * pxl_queue.c - background jobs (pxl.h's pxl_job_*): the half common to
 * both back ends (pxl_queue_int.h). Every worker claims what is due for
 * the queues its plugins process, up to each processor's concurrency,
 * runs it, decides the outcome (completed, retried after its backoff,
 * dead) and has the back end record it; the bus tells every worker
 * (jobCompleted, jobFailed, jobProgress). The back end is Redis Streams
 * with a `redis` group (pxl_queue_redis.c), else SQLite
 * (pxl_queue_sqlite.c).
 *
 * At least once: a claim holds the job while it runs here; a worker
 * that dies stops holding it, and after queue.stalled_after any worker
 * claims it again. An outcome is recorded only by the owner of the
 * attempt it belongs to, so a late one changes nothing.
 *
 * Ownership: the service state (struct pxl_queue) owns the lines, the
 * jobs running here and the back end's state. A struct pxl_job belongs
 * to the plugin from the processor call until it ends it; pxl frees it
 * then (one still running when the worker stops stays valid, detached,
 * until ended or pxl_queue_fini).
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

#include "pxl/pxl.h"
#include "pxl_bus.h"
#include "pxl_cron.h"
#include "pxl_db.h"
#include "pxl_histogram.h"
#include "pxl_int.h"
#include "pxl_json.h"
#include "pxl_log.h"
#include "pxl_plugin.h"
#include "pxl_queue.h"
#include "pxl_queue_int.h"
#include "pxl_queue_pool.h"
#include "pxl_time.h"
#include "pxl_worker.h"

#define DEFAULT_ATTEMPTS   3
#define DEFAULT_BACKOFF_MS 1000
#define TEN_YEARS_MS       315360000000ULL

/* One of queue.schedules, ticking in every worker. */
struct pxl_queue_schedule {
        struct pxl_queue *q;
        const struct pxl_schedule_conf *conf; /* the app file's */
        struct pxl_queue_line *qu;
        struct pxl_cron cron;
        struct json_object *payload;
        struct event *timer;
        int64_t tick; /* the tick it waits for, seconds since the epoch */
};

static const struct pxl_service queue_service;

/* Jobs still running when their worker stopped (see queue_stop). */
static LIST_HEAD(, pxl_job) detached = LIST_HEAD_INITIALIZER(detached);

static struct pxl_queue *queue_of(const struct pxl_worker *srv)
{
        return srv ? pxl_worker_service_state(srv, &queue_service) : NULL;
}

struct pxl_queue *pxl_queue_of(const struct pxl_worker *srv)
{
        return queue_of(srv);
}

struct pxl_queue_line *pxl_queue_line_find(struct pxl_queue *q,
                                           const char *name)
{
        for (size_t i = 0; name != NULL && i < q->n; i++)
                if (strcmp(q->v[i].name, name) == 0)
                        return &q->v[i];
        return NULL;
}

/*
 * The wall clock, read now: job times are promises ("not before run_at",
 * "after timeout_ms") that the loop's cached time, up to a turn stale
 * and from a coarse clock, would break by milliseconds.
 */
int64_t pxl_queue_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void stop_queues(struct pxl_queue *q);

void pxl_queue_hold(struct pxl_queue *q)
{
        q->inflight++;
}

void pxl_queue_release(struct pxl_queue *q)
{
        q->inflight--;
        /* The last answer to a queue already stopped: it goes now. */
        if (q->orphaned && q->inflight == 0)
                stop_queues(q);
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

static void claim(struct pxl_queue_line *qu);

static void arm(struct pxl_queue_line *qu, int64_t at)
{
        int64_t now = pxl_queue_now_ms();

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
        struct pxl_queue_line *qu = arg;

        (void)fd;
        (void)what;
        qu->timer_at = 0;
        /* Something is due: a back end waiting for news looks now. */
        if (qu->claiming && qu->q->be->wake != NULL)
                qu->q->be->wake(qu);
        claim(qu);
}


static void start_job(struct pxl_queue_line *qu, struct pxl_job *job);
static void finish(struct pxl_job *job, const char *error,
                   struct json_object *result);
static void job_free(struct pxl_job *job);

static struct pxl_job *job_new(struct pxl_queue_line *qu,
                               const struct pxl_queue_claim *c)
{
        struct pxl_job *job = calloc(1, sizeof(*job));

        if (job == NULL)
                return NULL;
        job->queue = qu;
        job->id = strdup(c->id ? c->id : "");
        job->token = c->token ? strdup(c->token) : NULL;
        job->attempt = c->attempt;
        job->attempts = c->attempts;
        job->backoff_ms = c->backoff_ms;
        job->backoff_exp = c->backoff_exp;
        job->timeout_ms = c->timeout_ms;
        job->keep = c->keep;
        job->started_ms = pxl_queue_now_ms();
        if (job->id == NULL || (c->token != NULL && job->token == NULL)) {
                free(job->id);
                free(job->token);
                free(job);
                return NULL;
        }
        pxl_histogram_add(qu->wait_ms,
                          (uint64_t)(job->started_ms > c->due
                                             ? job->started_ms - c->due
                                             : 0));
        return job;
}

void pxl_queue_claimed(struct pxl_queue_line *qu,
                       const struct pxl_queue_claim *jobs, size_t n,
                       const char *error, int64_t wake_at, bool limited)
{
        struct pxl_queue *q = qu->q;
        size_t asked = qu->asked;

        /* Stopping: the give-back, queued after us, returns these. */
        if (q->stopping) {
                qu->claiming = false;
                return;
        }
        if (error != NULL)
                pxl_logs(PXL_LOG_WARN, "queue %s: cannot claim jobs: %s",
                         qu->name, error);
        /*
         * Still claiming while they start: a job that ends in its call
         * must not claim more while the rest of this batch is not yet
         * counted in running (its claim waits in again).
         */
        for (size_t r = 0; r < n; r++) {
                struct pxl_job *job = job_new(qu, &jobs[r]);

                if (job == NULL) {
                        /* Ours now: it runs again after stalled_after. */
                        pxl_logs(PXL_LOG_ERR,
                                 "queue %s: job %s not started: out of memory",
                                 qu->name, jobs[r].id);
                        continue;
                }
                qu->running++;
                LIST_INSERT_HEAD(&q->jobs, job, link);
                /* Numbers keep their text, as in a client's message. */
                if (jobs[r].payload == NULL ||
                    pxl_json_build(jobs[r].payload, jobs[r].payload_len, 64,
                                   &job->payload) < 0) {
                        pxl_logs(PXL_LOG_ERR,
                                 "queue %s: job %s: payload unreadable: dead",
                                 qu->name, job->id);
                        job->attempts = job->attempt;
                        finish(job, "payload is not JSON", NULL);
                        job_free(job);
                        continue;
                }
                start_job(qu, job);
        }
        qu->claiming = false;
        if (limited) {
                qu->again = false;
        } else if (error == NULL && (qu->again || (n > 0 && n >= asked))) {
                qu->again = false;
                claim(qu); /* there may be more */
                return;
        }
        arm(qu, wake_at);
}

/* Take what is due, up to the free places. */
static void claim(struct pxl_queue_line *qu)
{
        struct pxl_queue *q = qu->q;

        if (q->stopping || qu->running >= qu->capacity)
                return;
        if (qu->claiming) {
                qu->again = true;
                return;
        }
        qu->claiming = true;
        qu->asked = qu->capacity - qu->running;
        if (qu->asked > PXL_QUEUE_MAX_CLAIM)
                qu->asked = PXL_QUEUE_MAX_CLAIM;
        q->be->claim(qu, qu->asked);
}

/* ---- outcomes ----------------------------------------------------------- */

static void job_free(struct pxl_job *job)
{
        LIST_REMOVE(job, link);
        if (job->timeout_ev != NULL)
                event_free(job->timeout_ev);
        json_object_put(job->payload);
        free(job->token);
        free(job->id);
        free(job);
}

/* An outcome recorded: tell everyone, when it was still this attempt's. */
struct outcome {
        const char *name; /* the event */
        struct json_object *event;
};

static void recorded(struct pxl_queue *q, void *arg, bool ok)
{
        struct outcome *o = arg;

        if (o == NULL)
                return;
        if (ok)
                publish(q, o->name, json_object_get(o->event));
        json_object_put(o->event);
        free(o);
}

/*
 * Decide how the job ended (error NULL: completed with result, taken),
 * have the back end record it and free its place; the struct stays
 * while the plugin may still hold it (a timeout ended it first).
 */
static void finish(struct pxl_job *job, const char *error,
                   struct json_object *result)
{
        struct pxl_queue_line *qu = job->queue;
        struct pxl_queue *q = qu->q;
        struct outcome *o = calloc(1, sizeof(*o));
        struct pxl_queue_outcome oc = {.now = pxl_queue_now_ms()};

        job->ended = true;
        atomic_store(&job->decided, true);
        if (job->timeout_ev != NULL)
                evtimer_del(job->timeout_ev);
        pxl_histogram_add(qu->run_ms,
                          (uint64_t)(oc.now > job->started_ms
                                             ? oc.now - job->started_ms
                                             : 0));
        if (o != NULL && (o->event = event_of(job, qu->name)) == NULL) {
                free(o);
                o = NULL;
        }
        if (error == NULL) {
                qu->processed++;
                oc.end = PXL_QUEUE_COMPLETED;
                if (result != NULL)
                        oc.result = json_object_to_json_string_ext(
                                result, JSON_C_TO_STRING_PLAIN);
                if (o != NULL) {
                        o->name = "jobCompleted";
                        json_object_object_add(o->event, "result",
                                               json_object_get(result));
                }
        } else {
                bool retry = job->attempt < job->attempts;
                uint64_t wait = job->backoff_ms;

                qu->failed++;
                oc.error = error;
                if (retry) {
                        qu->retried++;
                        if (job->backoff_exp)
                                for (unsigned i = 1;
                                     i < job->attempt && wait < 86400000; i++)
                                        wait *= 2;
                        oc.end = PXL_QUEUE_RETRY;
                        oc.retry_at = oc.now + (int64_t)wait;
                } else {
                        qu->died++;
                        oc.end = PXL_QUEUE_DEAD;
                }
                if (o != NULL) {
                        o->name = "jobFailed";
                        json_object_object_add(o->event, "error",
                                               json_object_new_string(error));
                        json_object_object_add(o->event, "dead",
                                               json_object_new_boolean(!retry));
                        if (retry)
                                json_object_object_add(
                                        o->event, "retryAt",
                                        json_object_new_int64(oc.retry_at));
                }
        }
        q->be->finish(job, &oc, recorded, o);
        if (oc.end == PXL_QUEUE_RETRY)
                arm(qu, oc.retry_at);
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
        if (pxl_queue_now_ms() - job->started_ms < job->timeout_ms) {
                struct timeval tv = pxl_ms_timeval(
                        (uint64_t)(job->timeout_ms -
                                   (pxl_queue_now_ms() - job->started_ms)) +
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

static void start_job(struct pxl_queue_line *qu, struct pxl_job *job)
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
        q->be->progress(job, json_object_to_json_string_ext(
                                     (struct json_object *)progress,
                                     JSON_C_TO_STRING_PLAIN));
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
                free(job->token);
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
        struct pxl_queue_line *qu;
        struct pxl_plugin_slot *plugin;
        pxl_job_added_fn *fn;
        void *arg;
        int64_t run_at;
        char id[];
};

static void added(struct pxl_queue *q, void *arg, bool existed,
                  const char *error)
{
        struct adding *a = arg;

        if (error == NULL && !existed && !q->stopping) {
                if (a->run_at <= pxl_queue_now_ms())
                        claim(a->qu);
                else
                        arm(a->qu, a->run_at);
        }
        if (a->fn != NULL) {
                struct pxl_ctx ctx;

                pxl_ctx_init(&ctx, q->srv, a->plugin, NULL);
                a->fn(&ctx, a->id, existed, error, a->arg);
                pxl_ctx_fini(&ctx);
        }
        free(a);
}

static bool good_id(const char *id)
{
        size_t n = strlen(id);

        if (n == 0 || n > PXL_QUEUE_MAX_ID)
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
        struct pxl_queue_line *qu;
        struct pxl_queue_new nj;
        struct adding *a;
        char made[64];
        int rc;

        if (q == NULL || q->stopping)
                return PXL_ECLOSED;
        conf = &q->srv->conf->queue;
        if ((qu = pxl_queue_line_find(q, queue)) == NULL) {
                pxl_log(ctx, PXL_LOG_WARN,
                        "pxl_job_add: no processor for queue \"%s\"",
                        queue ? queue : "(null)");
                return PXL_EINVAL;
        }
        nj.payload = json_object_to_json_string_ext(
                (struct json_object *)payload, JSON_C_TO_STRING_PLAIN);
        nj.payload_len = strlen(nj.payload);
        if (nj.payload_len > conf->max_payload) {
                pxl_log(ctx, PXL_LOG_WARN,
                        "pxl_job_add: queue %s: payload of %zu bytes is over "
                        "queue.max_payload (%u)",
                        queue, nj.payload_len, conf->max_payload);
                return PXL_EINVAL;
        }
        if (o->id != NULL && !good_id(o->id)) {
                pxl_log(ctx, PXL_LOG_WARN,
                        "pxl_job_add: queue %s: a job id is 1 to %d "
                        "printable bytes",
                        queue, PXL_QUEUE_MAX_ID);
                return PXL_EINVAL;
        }
        if (o->id == NULL)
                snprintf(made, sizeof(made), "%s-%u.%u-%" PRIu64,
                         q->srv->node_id, q->srv->worker_index,
                         q->srv->worker_gen, ++q->seq);
        nj.queue = qu->name;
        nj.id = o->id ? o->id : made;
        nj.now = pxl_queue_now_ms();
        nj.run_at = o->run_at_ms > 0
                            ? o->run_at_ms
                            : nj.now + (int64_t)(o->delay_ms > TEN_YEARS_MS
                                                         ? TEN_YEARS_MS
                                                         : o->delay_ms);
        nj.priority = o->priority;
        nj.attempts = o->attempts ? o->attempts : DEFAULT_ATTEMPTS;
        nj.backoff_ms = o->backoff_ms ? o->backoff_ms : DEFAULT_BACKOFF_MS;
        nj.backoff_exp = o->backoff_exponential;
        nj.timeout_ms = o->timeout_ms;
        nj.keep = o->keep_completed ? o->keep_completed : conf->keep_completed;
        a = calloc(1, sizeof(*a) + strlen(nj.id) + 1);
        if (a == NULL)
                return PXL_ENOMEM;
        a->qu = qu;
        a->plugin = ctx->plugin;
        a->fn = fn;
        a->arg = arg;
        a->run_at = nj.run_at;
        memcpy(a->id, nj.id, strlen(nj.id) + 1);
        rc = q->be->add(q, tx, &nj, added, a);
        if (rc < 0)
                free(a);
        return rc;
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
        if (q->be->in_tx != NULL && q->be->in_tx(q)) {
                rc = add_job(q, &ctx, tx, queue, payload, options, fn, arg);
        } else {
                pxl_log(&ctx, PXL_LOG_WARN,
                        "pxl_job_add_tx: the jobs cannot be added in the "
                        "app's database (it is not SQLite): use pxl_job_add");
                rc = PXL_EINVAL;
        }
        pxl_ctx_fini(&ctx);
        return rc;
}

/* ---- schedules ---------------------------------------------------------- */

/* The first tick after `after` (seconds), or -1 for none. */
static int64_t tick_after(const struct pxl_queue_schedule *sc, int64_t after)
{
        if (sc->conf->cron != NULL)
                return pxl_cron_next(&sc->cron, after);
        return (after / sc->conf->every + 1) * sc->conf->every;
}

static void arm_schedule(struct pxl_queue_schedule *sc)
{
        int64_t now = pxl_queue_now_ms();
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
        struct pxl_queue_schedule *sc = arg;
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
        char id[PXL_QUEUE_MAX_ID + 1];
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
        sc->tick = tick_after(sc, pxl_queue_now_ms() / 1000 > sc->tick ? pxl_queue_now_ms() / 1000
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
                struct pxl_queue_schedule *sc = &q->sched[q->nsched];
                const struct pxl_schedule_conf *c = &conf->schedules[i];

                sc->q = q;
                sc->conf = c;
                sc->qu = pxl_queue_line_find(q, c->queue); /* install checked it */
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
                sc->tick = tick_after(sc, pxl_queue_now_ms() / 1000);
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


/* ---- leases and figures ------------------------------------------------- */

static unsigned lease_every_ms(const struct pxl_queue *q)
{
        unsigned ms = q->srv->conf->queue.stalled_after * 1000 / 3;

        return ms < 100 ? 100 : ms;
}

static void on_lease(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_queue *q = arg;
        struct timeval tv = pxl_ms_timeval(lease_every_ms(q));

        (void)fd;
        (void)what;
        if (!LIST_EMPTY(&q->jobs))
                q->be->renew(q);
        evtimer_add(q->lease_timer, &tv);
}

/* The store's counts, once a second, for pxl_metrics(). */
static void on_count(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_queue *q = arg;
        struct timeval tv = pxl_ms_timeval(1000);

        (void)fd;
        (void)what;
        q->be->count(q);
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
                const struct pxl_queue_line *qu = &q->v[i];
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
                free(job->token);
                free(job->id);
                free(job);
        }
}


/* ---- the service -------------------------------------------------------- */

static bool installed(const struct pxl_worker *srv)
{
        for (unsigned i = 0; i < srv->nservices; i++)
                if (srv->services[i] == &queue_service)
                        return true;
        return false;
}

/* Redis when the app file has a redis group; else SQLite. */
static const struct pxl_queue_backend *backend_of(const struct pxl_config *conf)
{
        return conf->redis.enabled ? &pxl_queue_redis : &pxl_queue_sqlite;
}

int pxl_queue_prepare(const struct pxl_worker *srv, struct pxl_str *errors)
{
        if (!installed(srv))
                return 0;
        if (backend_of(srv->conf) == &pxl_queue_sqlite)
                return pxl_queue_sqlite_prepare(srv, errors);
        return pxl_queue_redis_prepare(srv, errors);
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
        if (q->be_state != NULL)
                q->be->stop(q);
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
        q->be = backend_of(srv->conf);
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
        q->lease_timer = evtimer_new(srv->base, on_lease, q);
        q->count_timer = evtimer_new(srv->base, on_count, q);
        if (q->v == NULL || q->lease_timer == NULL || q->count_timer == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                stop_queues(q);
                return PXL_ENOMEM;
        }
        for (size_t i = 0; i < srv->plugins.n; i++) {
                const struct pxl_processor *p =
                        pxl_plugin_processors(srv->plugins.v[i].desc);

                for (; p != NULL && p->queue != NULL; p++) {
                        struct pxl_queue_line *qu = &q->v[q->n++];

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
        if (q->be->start(q, errors) < 0 || start_schedules(q, errors) < 0) {
                stop_queues(q);
                return PXL_ERR;
        }
        pxl_worker_set_service_state(srv, &queue_service, q);
        tv = pxl_ms_timeval(lease_every_ms(q));
        evtimer_add(q->lease_timer, &tv);
        on_count(-1, 0, q);
        for (size_t i = 0; i < q->n; i++)
                arm(&q->v[i], pxl_queue_now_ms());
        return PXL_OK;
}

/* Run the loop until the back end has answered, 5 s at most. */
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
         * The outcomes already sent are written first (calls not awaited
         * run in no promised order); then everything still ours goes
         * back, jobs a claim in flight takes included.
         */
        drain(q);
        q->be->give_back(q);
        /* Every call answered before q goes: their callbacks name it. */
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
        evtimer_del(q->lease_timer);
        q->be->stop(q);
        pxl_worker_set_service_state(srv, &queue_service, NULL);
        /*
         * Calls still unanswered (a lock held elsewhere longer than we
         * waited) name q in their callbacks, which the app's database
         * runs as it closes, after us: the last of them frees q.
         */
        if (q->inflight > 0) {
                q->orphaned = true;
                return;
        }
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

        if (n == 0 || n > PXL_QUEUE_MAX_NAME)
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
        if (backend_of(srv->conf) == &pxl_queue_sqlite)
                pxl_queue_sqlite_setup(srv->conf);
        if (pxl_worker_add_service(srv, &queue_service) < 0 ||
            pxl_worker_add_reporter(srv, report, NULL) < 0) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        return PXL_OK;
}

