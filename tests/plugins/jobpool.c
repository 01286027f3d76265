/*
 * jobpool - a plugin for the blocking-processor tests: a route that adds
 * jobs, and a blocking processor that sleeps on its pool thread.
 *
 * jobpool/add {"id": ID, "payload": P, "attempts": N, "timeoutMs": T}
 *     adds a job to queue "pool.sleep" (attempts and timeoutMs may be
 *     left out); the reply, once it is stored, is {"id", "existed",
 *     "error"}.
 *
 * The processor (blocking, 8 at once) reads P = {"ms": M, "end": E,
 * "progress": B}: with B true it first reports progress {"ms": M}, then
 * sleeps M ms (nanosleep), then ends as E says:
 *   "complete" (or none)  pxl_job_complete with {"start", "end" (ms since
 *                         the epoch, measured on the thread), "queue",
 *                         "attempt"}
 *   "fail"                pxl_job_fail("told to fail"), then returns
 *                         PXL_OK (which must change nothing)
 *   "return"              returns PXL_OK without ending the job
 *   "error"               returns PXL_EINVAL
 *   "deferred"            returns PXL_DEFERRED (not allowed here)
 * An end the framework refuses (the job timed out first) is logged at
 * notice: "jobpool: job ID: late end: TEXT".
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <pxl/pxl.h>

#define QUEUE "pool.sleep"

static int64_t wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
        struct timespec ts = {.tv_sec = ms / 1000,
                              .tv_nsec = (ms % 1000) * 1000000};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* On a pool thread, with ctx NULL. */
static int pool_sleep(struct pxl_ctx *ctx, struct pxl_job *job)
{
        struct json_object *p = pxl_job_payload(job), *v = NULL, *r;
        const char *end = "complete";
        int64_t ms = 0, start;
        char id[160];
        int rc;

        /* Copied: the job is the framework's again once it has ended. */
        snprintf(id, sizeof(id), "%s", pxl_job_id(job));
        if (ctx != NULL)
                return pxl_job_fail(job, "a blocking processor got a ctx");
        if (json_object_object_get_ex(p, "ms", &v))
                ms = json_object_get_int64(v);
        if (json_object_object_get_ex(p, "end", &v))
                end = json_object_get_string(v);
        if (json_object_object_get_ex(p, "progress", &v) &&
            json_object_get_boolean(v)) {
                struct json_object *pr = json_object_new_object();

                json_object_object_add(pr, "ms", json_object_new_int64(ms));
                rc = pxl_job_progress(job, pr);
                json_object_put(pr);
                if (rc != PXL_OK)
                        return pxl_job_fail(job, "progress: %s",
                                            pxl_strerror(rc));
        }
        start = wall_ms();
        sleep_ms(ms);
        if (strcmp(end, "fail") == 0) {
                rc = pxl_job_fail(job, "told to fail");
                if (rc != PXL_OK)
                        pxl_log(NULL, PXL_LOG_NOTICE,
                                "jobpool: job %s: late end: %s", id,
                                pxl_strerror(rc));
                return PXL_OK;
        }
        if (strcmp(end, "return") == 0)
                return PXL_OK;
        if (strcmp(end, "error") == 0)
                return PXL_EINVAL;
        if (strcmp(end, "deferred") == 0)
                return PXL_DEFERRED;
        r = json_object_new_object();
        json_object_object_add(r, "start", json_object_new_int64(start));
        json_object_object_add(r, "end", json_object_new_int64(wall_ms()));
        json_object_object_add(r, "queue",
                               json_object_new_string(pxl_job_queue(job)));
        json_object_object_add(r, "attempt",
                               json_object_new_int64(pxl_job_attempt(job)));
        rc = pxl_job_complete(job, r);
        if (rc != PXL_OK)
                pxl_log(NULL, PXL_LOG_NOTICE, "jobpool: job %s: late end: %s",
                        id, pxl_strerror(rc));
        return PXL_OK;
}

static void added(struct pxl_ctx *ctx, const char *id, bool existed,
                  const char *error, void *arg)
{
        struct pxl_defer *d = arg;
        struct json_object *r = json_object_new_object();

        (void)ctx;
        json_object_object_add(r, "id", json_object_new_string(id));
        json_object_object_add(r, "existed", json_object_new_boolean(existed));
        json_object_object_add(r, "error",
                               error ? json_object_new_string(error) : NULL);
        pxl_defer_reply(d, r);
}

static int pool_add(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *data = pxl_msg_data(msg), *v = NULL, *payload;
        struct pxl_job_options o = {.attempts = 1};
        struct pxl_defer *d;
        int rc;

        if (json_object_object_get_ex(data, "id", &v))
                o.id = json_object_get_string(v);
        if (json_object_object_get_ex(data, "attempts", &v))
                o.attempts = (unsigned)json_object_get_int(v);
        if (json_object_object_get_ex(data, "timeoutMs", &v))
                o.timeout_ms = (unsigned)json_object_get_int(v);
        payload = NULL;
        json_object_object_get_ex(data, "payload", &payload);
        if ((d = pxl_defer(ctx)) == NULL)
                return pxl_fail(ctx, "out of memory");
        rc = pxl_job_add(ctx, QUEUE, payload, &o, added, d);
        if (rc == PXL_OK)
                return PXL_DEFERRED;
        pxl_defer_cancel(d);
        return pxl_fail(ctx, "pxl_job_add: %s", pxl_strerror(rc));
}

static const struct pxl_processor pool_processors[] = {
        {.queue = QUEUE, .fn = pool_sleep, .concurrency = 8, .blocking = true},
        PXL_PROCESSOR_END,
};

static const struct pxl_route pool_routes[] = {
        {"jobpool", "add", pool_add},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "jobpool",
        .version = "1.0.0",
        .routes = pool_routes,
        .processors = pool_processors,
};
