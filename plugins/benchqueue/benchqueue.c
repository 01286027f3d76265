/*
 * benchqueue - the queue benchmark's plugin (pxl-bench's "queue"
 * scenario): a processor that does nothing for queue "bench", a route
 * that adds jobs from inside the worker, and the figures of every
 * worker. It is apart from the bench plugin because a plugin with a
 * processor starts the queue, which the other scenarios must not pay for.
 *
 * Routes (type "bench"):
 *   bench/enqueue {n, run}: adds n jobs (1 to 100,000) to queue "bench"
 *        with the default options, one pxl_job_add each, the payload
 *        {"t": the add's CLOCK_MONOTONIC time in microseconds, "r": run,
 *        an integer from 0 to 2^53 naming the caller's run}; replies
 *        once every add has called back:
 *        {added, errors, error (the first, or null), firstAddUs,
 *        lastAddUs}
 *   bench/queueStats {}: this worker's figures, {pid, completed, failed,
 *        lastCompletedUs}: the jobCompleted and jobFailed events of
 *        queue "bench" it has seen (every worker sees every job's), and
 *        when it saw the last completion (CLOCK_MONOTONIC, us)
 *   bench/queueStats {workers: W}: the same from every worker, with each
 *        worker's runs, gathered over the bus ("benchq.ask" and
 *        "benchq.stats"): {"workers": [{pid, completed, failed,
 *        lastCompletedUs, bad, runs: {"R": {started, maxUs, hist:
 *        [[us, count], ...]}}}, ...]} once W workers have answered;
 *        "only N of W workers answered" after 5 s
 * The processor counts the run and its start minus the payload's t (the
 * add-to-start latency) in a histogram of run r, and returns PXL_OK,
 * which completes the job without a result. A worker keeps the figures
 * of the last 8 runs it has seen; a caller picks run numbers no other
 * caller of the same server uses (pxl-bench: from its pid and clock).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <pxl/pxl.h>

#define BQ_QUEUE       "bench"
#define BQ_RUNS        8 /* runs whose figures a worker keeps */
#define BQ_MAX_RUN     ((int64_t)1 << 53)
#define BQ_MAX_ADD     100000
#define BQ_CONCURRENCY 64 /* tests/bench/ref/queue.mjs uses the same */
#define BQ_GATHER_MS   5000

/*
 * Add-to-start latencies in microseconds, log-linear: below 64 exact,
 * then 32 buckets per power of two (each under 1/32 of its values
 * wide), up to 2^36 us; larger values count in the last bucket.
 */
#define H_SUB_BITS 5
#define H_SUB      (1u << H_SUB_BITS)
#define H_TOP_BIT  36
#define H_BUCKETS  (2 * H_SUB + (H_TOP_BIT - H_SUB_BITS) * H_SUB)

struct bq_hist {
        uint64_t max;
        uint32_t c[H_BUCKETS];
};

struct bq_run {
        int64_t tag;   /* the payloads' "r" */
        uint64_t used; /* when it was last used, in runs seen */
        uint64_t started;
        struct bq_hist hist;
};

/* A bench/queueStats {workers} waiting for the workers' answers. */
struct gather {
        LIST_ENTRY(gather) link;
        struct benchq *bq;
        struct pxl_defer *defer;
        struct event *timer;
        int64_t nonce;
        unsigned want;
        struct json_object *workers; /* the answers so far */
};

struct benchq {
        struct bq_run runs[BQ_RUNS];
        uint64_t clock; /* runs' use count, for the oldest to go */
        uint64_t completed, failed, bad;
        int64_t last_completed_us;
        int64_t nonce;
        LIST_HEAD(, gather) gathers;
};

static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static unsigned hist_bucket(uint64_t v)
{
        unsigned msb;

        if (v < 2 * H_SUB)
                return (unsigned)v;
        msb = 63u - (unsigned)__builtin_clzll(v);
        if (msb > H_TOP_BIT)
                return H_BUCKETS - 1;
        return 2 * H_SUB + (msb - H_SUB_BITS - 1) * H_SUB +
               (unsigned)((v >> (msb - H_SUB_BITS)) - H_SUB);
}

/* The middle of bucket idx, which is what its values read as. */
static uint64_t hist_value(unsigned idx)
{
        unsigned k, shift;

        if (idx < 2 * H_SUB)
                return idx;
        k = idx - 2 * H_SUB;
        shift = k / H_SUB + 1;
        return ((uint64_t)(H_SUB + k % H_SUB) << shift) +
               ((uint64_t)1 << shift) / 2;
}

static void hist_add(struct bq_hist *h, uint64_t v)
{
        h->c[hist_bucket(v)]++;
        if (v > h->max)
                h->max = v;
}

static struct json_object *key_of(const struct json_object *obj,
                                  const char *key)
{
        struct json_object *v = NULL;

        if (json_object_is_type(obj, json_type_object))
                json_object_object_get_ex(obj, key, &v);
        return v;
}

static bool int_key(const struct json_object *obj, const char *key,
                    int64_t *out)
{
        struct json_object *v = key_of(obj, key);

        if (!json_object_is_type(v, json_type_int))
                return false;
        *out = json_object_get_int64(v);
        return true;
}

/* ---- the processor ------------------------------------------------------ */

/* The figures of run tag, a new slot (the least recently used) if need be. */
static struct bq_run *run_of(struct benchq *bq, int64_t tag)
{
        struct bq_run *old = &bq->runs[0];

        for (unsigned i = 0; i < BQ_RUNS; i++) {
                struct bq_run *r = &bq->runs[i];

                if (r->started > 0 && r->tag == tag) {
                        r->used = ++bq->clock;
                        return r;
                }
                if (r->started == 0 ||
                    (old->started > 0 && r->used < old->used))
                        old = r;
        }
        memset(old, 0, sizeof(*old));
        old->tag = tag;
        old->used = ++bq->clock;
        return old;
}

static int bq_process(struct pxl_ctx *ctx, struct pxl_job *job)
{
        struct benchq *bq = pxl_ctx_plugin_data(ctx);
        int64_t start = now_us(), t, tag;
        struct json_object *p = pxl_job_payload(job);
        struct bq_run *r;

        if (!int_key(p, "t", &t) || !int_key(p, "r", &tag) || tag < 0 ||
            tag > BQ_MAX_RUN) {
                bq->bad++;
                return PXL_OK;
        }
        r = run_of(bq, tag);
        r->started++;
        hist_add(&r->hist, start > t ? (uint64_t)(start - t) : 0);
        return PXL_OK; /* completed, no result */
}

static int bq_job_event(struct pxl_ctx *ctx, const char *channel,
                        const struct json_object *msg)
{
        struct benchq *bq = pxl_ctx_plugin_data(ctx);
        struct json_object *q = key_of(msg, "queue");

        if (bq == NULL || !json_object_is_type(q, json_type_string) ||
            strcmp(json_object_get_string(q), BQ_QUEUE) != 0)
                return PXL_OK;
        if (strcmp(channel, "jobCompleted") == 0) {
                bq->completed++;
                bq->last_completed_us = now_us();
        } else {
                bq->failed++;
        }
        return PXL_OK;
}

/* ---- bench/enqueue ------------------------------------------------------ */

struct batch {
        struct pxl_defer *defer;
        unsigned pending; /* adds that have not called back */
        unsigned added, errors;
        char error[256];
        int64_t first_us, last_us;
};

static void batch_reply(struct batch *b)
{
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "added", json_object_new_int64(b->added));
        json_object_object_add(o, "errors", json_object_new_int64(b->errors));
        json_object_object_add(o, "error",
                               b->error[0] ? json_object_new_string(b->error)
                                           : NULL);
        json_object_object_add(o, "firstAddUs",
                               json_object_new_int64(b->first_us));
        json_object_object_add(o, "lastAddUs",
                               json_object_new_int64(b->last_us));
        pxl_defer_reply(b->defer, o);
        free(b);
}

static void bq_added(struct pxl_ctx *ctx, const char *id, bool existed,
                     const char *error, void *arg)
{
        struct batch *b = arg;

        (void)ctx;
        (void)id;
        if (error != NULL || existed) {
                b->errors++;
                if (b->error[0] == '\0')
                        snprintf(b->error, sizeof(b->error), "%s",
                                 error ? error : "the job existed");
        } else {
                b->added++;
        }
        if (--b->pending == 0)
                batch_reply(b);
}

static int bq_enqueue(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *data = pxl_msg_data(msg), *payload, *t;
        struct batch *b;
        int64_t n, run;

        if (!int_key(data, "n", &n) || n < 1 || n > BQ_MAX_ADD)
                return pxl_fail(ctx, "n must be an integer from 1 to %d",
                                BQ_MAX_ADD);
        if (!int_key(data, "run", &run) || run < 0 || run > BQ_MAX_RUN)
                return pxl_fail(ctx, "run must be an integer from 0 to "
                                     "2^53");
        b = calloc(1, sizeof(*b));
        payload = json_object_new_object();
        t = json_object_new_int64(0);
        if (b == NULL || payload == NULL || t == NULL) {
                free(b);
                json_object_put(payload);
                json_object_put(t);
                return pxl_fail(ctx, "out of memory");
        }
        json_object_object_add(payload, "t", t); /* set before each add */
        json_object_object_add(payload, "r", json_object_new_int64(run));
        b->defer = pxl_defer(ctx);
        if (b->defer == NULL) {
                free(b);
                json_object_put(payload);
                return pxl_fail(ctx, "out of memory");
        }
        b->pending = 1; /* this call's own, dropped below */
        for (int64_t i = 0; i < n; i++) {
                int64_t now = now_us();
                int rc;

                json_object_set_int64(t, now);
                if (i == 0)
                        b->first_us = now;
                b->last_us = now;
                b->pending++;
                rc = pxl_job_add(ctx, BQ_QUEUE, payload, NULL, bq_added, b);
                if (rc != PXL_OK) {
                        /* bq_added will not run for this one. */
                        b->pending--;
                        b->errors += (unsigned)(n - i);
                        snprintf(b->error, sizeof(b->error), "pxl_job_add: %s",
                                 pxl_strerror(rc));
                        break;
                }
        }
        json_object_put(payload);
        if (--b->pending == 0)
                batch_reply(b);
        return PXL_DEFERRED;
}

/* ---- bench/queueStats --------------------------------------------------- */

static struct json_object *stats_of(const struct benchq *bq, bool runs)
{
        struct json_object *o = json_object_new_object(), *rs;

        json_object_object_add(o, "pid", json_object_new_int64(getpid()));
        json_object_object_add(o, "completed",
                               json_object_new_int64((int64_t)bq->completed));
        json_object_object_add(o, "failed",
                               json_object_new_int64((int64_t)bq->failed));
        json_object_object_add(o, "lastCompletedUs",
                               json_object_new_int64(bq->last_completed_us));
        if (!runs)
                return o;
        json_object_object_add(o, "bad",
                               json_object_new_int64((int64_t)bq->bad));
        rs = json_object_new_object();
        for (unsigned r = 0; r < BQ_RUNS; r++) {
                const struct bq_run *run = &bq->runs[r];
                struct json_object *ro, *h;
                char name[24];

                if (run->started == 0)
                        continue;
                ro = json_object_new_object();
                h = json_object_new_array();
                json_object_object_add(
                        ro, "started",
                        json_object_new_int64((int64_t)run->started));
                json_object_object_add(
                        ro, "maxUs",
                        json_object_new_int64((int64_t)run->hist.max));
                for (unsigned i = 0; i < H_BUCKETS; i++) {
                        struct json_object *pair;

                        if (run->hist.c[i] == 0)
                                continue;
                        pair = json_object_new_array_ext(2);
                        json_object_array_add(
                                pair,
                                json_object_new_int64((int64_t)hist_value(i)));
                        json_object_array_add(
                                pair, json_object_new_int64(run->hist.c[i]));
                        json_object_array_add(h, pair);
                }
                json_object_object_add(ro, "hist", h);
                snprintf(name, sizeof(name), "%" PRId64, run->tag);
                json_object_object_add(rs, name, ro);
        }
        json_object_object_add(o, "runs", rs);
        return o;
}

static void gather_free(struct gather *g)
{
        LIST_REMOVE(g, link);
        if (g->timer != NULL)
                event_free(g->timer);
        json_object_put(g->workers);
        free(g);
}

static void gather_timeout(evutil_socket_t fd, short what, void *arg)
{
        struct gather *g = arg;

        (void)fd;
        (void)what;
        pxl_defer_fail(g->defer, "only %zu of %u workers answered",
                       json_object_array_length(g->workers), g->want);
        gather_free(g);
}

static int bq_stats(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct benchq *bq = pxl_ctx_plugin_data(ctx);
        struct timeval tv = {BQ_GATHER_MS / 1000, BQ_GATHER_MS % 1000 * 1000};
        struct json_object *ask;
        struct gather *g;
        int64_t want;

        if (!int_key(pxl_msg_data(msg), "workers", &want))
                return pxl_reply(ctx, stats_of(bq, false));
        if (want < 1 || want > 1024)
                return pxl_fail(ctx, "workers must be from 1 to 1024");
        if (want == 1) {
                struct json_object *o = json_object_new_object();
                struct json_object *ws = json_object_new_array();

                json_object_array_add(ws, stats_of(bq, true));
                json_object_object_add(o, "workers", ws);
                return pxl_reply(ctx, o);
        }
        g = calloc(1, sizeof(*g));
        if (g == NULL)
                return pxl_fail(ctx, "out of memory");
        LIST_INSERT_HEAD(&bq->gathers, g, link);
        g->bq = bq;
        g->want = (unsigned)want;
        g->nonce = ++bq->nonce;
        g->workers = json_object_new_array();
        g->timer = evtimer_new(pxl_ctx_event_base(ctx), gather_timeout, g);
        ask = json_object_new_object();
        if (g->workers == NULL || g->timer == NULL || ask == NULL ||
            evtimer_add(g->timer, &tv) < 0 ||
            (g->defer = pxl_defer(ctx)) == NULL) {
                json_object_put(ask);
                gather_free(g);
                return pxl_fail(ctx, "out of memory");
        }
        /*
         * This worker's figures now; the others answer through Redis,
         * never during the call. (A subscriber here would answer inside
         * pxl_publish, and a deferred reply sent before the handler
         * returns gets a second frame from the router, whatever the
         * handler returns.)
         */
        json_object_array_add(g->workers, stats_of(bq, true));
        json_object_object_add(ask, "to", json_object_new_int64(getpid()));
        json_object_object_add(ask, "nonce", json_object_new_int64(g->nonce));
        pxl_publish(ctx, "benchq.ask", ask);
        json_object_put(ask);
        return PXL_DEFERRED;
}

/* The other workers: answer a gather with this worker's figures. */
static int bq_on_ask(struct pxl_ctx *ctx, const char *channel,
                     const struct json_object *msg)
{
        struct benchq *bq = pxl_ctx_plugin_data(ctx);
        struct json_object *o;
        int64_t to, nonce;

        (void)channel;
        if (bq == NULL || !int_key(msg, "to", &to) || to == getpid() ||
            !int_key(msg, "nonce", &nonce))
                return PXL_OK; /* the asker has its own figures */
        o = json_object_new_object();
        json_object_object_add(o, "to", json_object_new_int64(to));
        json_object_object_add(o, "nonce", json_object_new_int64(nonce));
        json_object_object_add(o, "stats", stats_of(bq, true));
        pxl_publish(ctx, "benchq.stats", o);
        json_object_put(o);
        return PXL_OK;
}

/* The asking worker: collect the answers to its gathers. */
static int bq_on_stats(struct pxl_ctx *ctx, const char *channel,
                       const struct json_object *msg)
{
        struct benchq *bq = pxl_ctx_plugin_data(ctx);
        int64_t to, nonce;
        struct gather *g;

        (void)channel;
        if (bq == NULL || !int_key(msg, "to", &to) || to != getpid() ||
            !int_key(msg, "nonce", &nonce))
                return PXL_OK;
        g = LIST_FIRST(&bq->gathers);
        while (g != NULL && g->nonce != nonce)
                g = LIST_NEXT(g, link);
        if (g == NULL)
                return PXL_OK; /* timed out */
        json_object_array_add(g->workers,
                              json_object_get(key_of(msg, "stats")));
        if (json_object_array_length(g->workers) == g->want) {
                struct json_object *o = json_object_new_object();

                json_object_object_add(o, "workers",
                                       json_object_get(g->workers));
                pxl_defer_reply(g->defer, o);
                gather_free(g);
        }
        return PXL_OK;
}

/* ---- plugin ------------------------------------------------------------- */

static int bq_init(struct pxl_ctx *ctx, const config_setting_t *settings)
{
        struct benchq *bq = calloc(1, sizeof(*bq));

        (void)settings;
        if (bq == NULL)
                return pxl_ctx_fail(ctx, "out of memory");
        LIST_INIT(&bq->gathers);
        pxl_ctx_set_plugin_data(ctx, bq);
        return PXL_OK;
}

static void bq_fini(struct pxl_ctx *ctx)
{
        struct benchq *bq = pxl_ctx_plugin_data(ctx);
        struct gather *g, *next;

        if (bq == NULL)
                return;
        for (g = LIST_FIRST(&bq->gathers); g != NULL; g = next) {
                next = LIST_NEXT(g, link);
                pxl_defer_cancel(g->defer);
                gather_free(g);
        }
        free(bq);
        pxl_ctx_set_plugin_data(ctx, NULL);
}

static const struct pxl_route bq_routes[] = {
        {"bench", "enqueue", bq_enqueue},
        {"bench", "queueStats", bq_stats},
        PXL_ROUTE_END,
};

static const struct pxl_subscriber bq_subscribers[] = {
        {"jobCompleted", 0, bq_job_event},
        {"jobFailed", 0, bq_job_event},
        {"benchq.ask", 0, bq_on_ask},
        {"benchq.stats", 0, bq_on_stats},
        PXL_SUBSCRIBER_END,
};

static const struct pxl_processor bq_processors[] = {
        {.queue = BQ_QUEUE, .fn = bq_process, .concurrency = BQ_CONCURRENCY},
        PXL_PROCESSOR_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "benchqueue",
        .version = "1.0.0",
        .routes = bq_routes,
        .init = bq_init,
        .fini = bq_fini,
        .subscribers = bq_subscribers,
        .processors = bq_processors,
};
