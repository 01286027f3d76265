/*
 * jobtest - a plugin for the queue tests: processors for a few queues,
 * routes that add jobs with every option, and a subscriber that tells
 * clients how their jobs ended. Everything the processors and the
 * subscriber see goes to a file (settings.log), one JSON object a line,
 * written with one write(2) each: it survives kill -9, so that the test
 * counts runs exactly.
 *
 * Log lines ("at": milliseconds since the epoch, CLOCK_REALTIME; "pid":
 * the process that wrote it, as workers may share one log):
 *   {"ev":"start","queue","id","attempt","payload","at"}  a run began
 *   {"ev":"end","queue","id","attempt","how","at"}  the run ends: written
 *        just before pxl_job_complete or pxl_job_fail is called, or the
 *        processor returns; how is complete, fail, ok (returns PXL_OK),
 *        error (returns PXL_ERR), defer (its timer) or release
 *   {"ev":"rc","queue","id","attempt","rc","at"}  what that call returned
 *        (PXL_ECLOSED: the job had timed out); not for the returns
 *   {"ev":"progress","queue","id","attempt","rc","at"}
 *   {"ev":"jobCompleted"|"jobFailed"|"jobProgress","msg","at","sent"}
 *        a bus event as the subscriber got it; sent: the clients it was
 *        forwarded to
 *   {"ev":"added","queue","id","existed","error","at"}  a job/add outcome
 *   {"ev":"tx","queue","id","existed","addError","rowError","commit",
 *        "error","at"}  a job/addtx transaction ended: commit true when
 *        it asked for a commit, error NULL when that (or the rollback)
 *        happened
 *
 * Queues (one processor function; the payload, an object, says what a
 * run does):
 *   work      concurrency 1        many      concurrency 4
 *   flaky     concurrency 4        slow      concurrency 2, timeout 1000 ms
 *   progress  concurrency 1        delay     concurrency 16
 *   keep      concurrency 1        rated     concurrency 8
 *   sched     concurrency 4
 * (the tests give rated a rate limit and sched a schedule)
 * payload keys:
 *   client       a client id: the bus events of the job go to it (sent
 *                by the worker that ran the job, which noted it: its
 *                sends reach its own clients only)
 *   resultClient true: the result carries client too ("client"), and
 *                every worker's subscriber sends jobCompleted to it, so
 *                that it reaches the client wherever it is connected
 *                (pxl-plugin(3), Events)
 *   failUntil    N: attempts below N fail ("failing attempt A")
 *   failWhile    a path: attempts fail likewise while that file exists
 *                (a bug the test "fixes" by removing it)
 *   failHow      "fail" (pxl_job_fail, the default) or "return" (the
 *                processor returns PXL_ERR without ending the job)
 *   progress     [values]: pxl_job_progress with each before ending
 *   how          "complete" (the default: pxl_job_complete during the
 *                call), "ok" (return PXL_OK), "defer" (complete after ms
 *                from a libevent timer), "hold" (until job/release)
 *   ms           defer's wait; msByAttempt [ms...] per attempt instead
 *   hold         the name job/release uses (how "hold")
 *   holdUntil    hold only on attempts up to this one; later ones complete
 *   value        copied into the result
 *   then         {queue, payload, options}: add this job from the
 *                processor before ending
 * A result is {"attempt": A, "value": value} (and "client" with
 * resultClient).
 *
 * Routes (type "job"):
 *   job/add {queue, payload, options:{id, delayMs, runAtMs, attempts,
 *           backoffMs, exponential, priority, timeoutMs, keepCompleted}}
 *           -> {id, existed, addedAt} once stored, or the error frame
 *           "pxl_job_add: <pxl_strerror>" when pxl_job_add refuses, or the
 *           error the added callback got
 *   job/addtx {queue, payload, options, row, commit, commitAfterMs}
 *           pxl_db_begin; INSERT INTO jt_rows (name) VALUES (row) (the
 *           test makes the table); pxl_job_add_tx; after commitAfterMs
 *           (0: at once) pxl_db_commit when commit is true, else
 *           pxl_db_rollback -> once all three ended, the tx log line's
 *           object (without ev and at). Refused at once: "pxl_db_begin:
 *           no transaction; pxl_job_add_tx(NULL): <pxl_strerror>" without
 *           a database, "pxl_job_add_tx: <pxl_strerror>" when it refuses
 *           the transaction (it is rolled back)
 *   job/release {hold} -> how many held runs it completed
 *   job/running -> runs this worker has not ended (timed-out ones too)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <pxl/pxl.h>

static const struct pxl_setting jt_settings[] = {
        {.name = "log",
         .type = PXL_SETTING_STRING,
         .required = true,
         .min = 1,
         .max = 4095,
         .help = "file the runs and bus events are appended to"},
        PXL_SETTING_END,
};

/* A run this worker started and has not ended. */
struct run {
        struct run *next, *prev;
        struct jobtest *jt;
        struct pxl_job *job;
        struct event *timer; /* how "defer" */
        char *hold;          /* how "hold" */
        char *queue, *id;    /* copies, for the log after a timeout */
        unsigned attempt;
        struct json_object *value; /* payload.value */
        char *client;              /* payload.client with resultClient */
};

struct jobtest {
        char *log;
        struct run runs; /* list head */
        /* "queue\nid" -> client id, from payload.client */
        struct json_object *clients;
};

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Append o (taken) with "at" to the log, one line, one write. */
static void jt_log(struct jobtest *jt, struct json_object *o)
{
        const char *text;
        size_t len;
        char *line;
        int fd;

        json_object_object_add(o, "at", json_object_new_int64(now_ms()));
        json_object_object_add(o, "pid", json_object_new_int64(getpid()));
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        len = strlen(text);
        line = malloc(len + 1);
        if (line != NULL) {
                memcpy(line, text, len);
                line[len] = '\n';
                fd = open(jt->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                          0644);
                if (fd >= 0) {
                        ssize_t n = write(fd, line, len + 1);

                        (void)n;
                        close(fd);
                }
                free(line);
        }
        json_object_put(o);
}

static struct json_object *run_line(const char *ev, const struct run *r)
{
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "ev", json_object_new_string(ev));
        json_object_object_add(o, "queue", json_object_new_string(r->queue));
        json_object_object_add(o, "id", json_object_new_string(r->id));
        json_object_object_add(o, "attempt", json_object_new_int64(r->attempt));
        return o;
}

static struct json_object *key_of(struct json_object *obj, const char *key)
{
        struct json_object *v = NULL;

        if (json_object_is_type(obj, json_type_object))
                json_object_object_get_ex(obj, key, &v);
        return v;
}

static const char *str_of(struct json_object *obj, const char *key)
{
        struct json_object *v = key_of(obj, key);

        return json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static int64_t int_of(struct json_object *obj, const char *key, int64_t def)
{
        struct json_object *v = key_of(obj, key);

        return json_object_is_type(v, json_type_int) ? json_object_get_int64(v)
                                                     : def;
}

static char *client_key(const char *queue, const char *id)
{
        size_t n = strlen(queue) + strlen(id) + 2;
        char *k = malloc(n);

        if (k != NULL)
                snprintf(k, n, "%s\n%s", queue, id);
        return k;
}

static void run_free(struct run *r)
{
        r->prev->next = r->next;
        r->next->prev = r->prev;
        if (r->timer != NULL)
                event_free(r->timer);
        json_object_put(r->value);
        free(r->client);
        free(r->hold);
        free(r->queue);
        free(r->id);
        free(r);
}

static struct json_object *result_of(const struct run *r)
{
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "attempt", json_object_new_int64(r->attempt));
        json_object_object_add(o, "value", json_object_get(r->value));
        if (r->client != NULL)
                json_object_object_add(o, "client",
                                       json_object_new_string(r->client));
        return o;
}

static void log_end(struct run *r, const char *how)
{
        struct json_object *o = run_line("end", r);

        json_object_object_add(o, "how", json_object_new_string(how));
        jt_log(r->jt, o);
}

static int log_rc(struct run *r, int rc)
{
        struct json_object *o = run_line("rc", r);

        json_object_object_add(o, "rc", json_object_new_int(rc));
        jt_log(r->jt, o);
        return rc;
}

/* Complete r's job (a deferred or held run) and forget r. */
static void run_complete(struct run *r, bool held)
{
        log_end(r, held ? "release" : "defer");
        log_rc(r, pxl_job_complete(r->job, result_of(r)));
        run_free(r);
}

static void run_timer(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        run_complete(arg, false);
}

/* ---- adding jobs -------------------------------------------------------- */

struct add_req {
        struct jobtest *jt;
        struct pxl_defer *defer; /* NULL: added by a processor */
        char *queue;
        int64_t added_at;
};

static void added(struct pxl_ctx *ctx, const char *id, bool existed,
                  const char *error, void *arg)
{
        struct add_req *a = arg;
        struct json_object *o = json_object_new_object();

        (void)ctx;
        json_object_object_add(o, "ev", json_object_new_string("added"));
        json_object_object_add(o, "queue", json_object_new_string(a->queue));
        json_object_object_add(o, "id",
                               id != NULL ? json_object_new_string(id) : NULL);
        json_object_object_add(o, "existed", json_object_new_boolean(existed));
        json_object_object_add(o, "error",
                               error != NULL ? json_object_new_string(error)
                                             : NULL);
        jt_log(a->jt, o);
        if (a->defer != NULL) {
                if (error != NULL) {
                        pxl_defer_fail(a->defer, "%s", error);
                } else {
                        struct json_object *r = json_object_new_object();

                        json_object_object_add(
                                r, "id",
                                id != NULL ? json_object_new_string(id) : NULL);
                        json_object_object_add(
                                r, "existed", json_object_new_boolean(existed));
                        json_object_object_add(
                                r, "addedAt",
                                json_object_new_int64(a->added_at));
                        pxl_defer_reply(a->defer, r);
                }
        }
        free(a->queue);
        free(a);
}

/* spec {queue, payload, options}: pxl_job_add; fn's arg takes defer. */
static int add_job(struct pxl_ctx *ctx, struct jobtest *jt,
                   struct json_object *spec, struct pxl_defer *defer)
{
        struct json_object *opts = key_of(spec, "options");
        struct pxl_job_options o = {0};
        struct add_req *a;
        const char *queue = str_of(spec, "queue");
        int rc;

        o.id = str_of(opts, "id");
        o.delay_ms = (uint64_t)int_of(opts, "delayMs", 0);
        o.run_at_ms = int_of(opts, "runAtMs", 0);
        o.attempts = (unsigned)int_of(opts, "attempts", 0);
        o.backoff_ms = (unsigned)int_of(opts, "backoffMs", 0);
        o.backoff_exponential =
                json_object_get_boolean(key_of(opts, "exponential"));
        o.priority = (int)int_of(opts, "priority", 0);
        o.timeout_ms = (unsigned)int_of(opts, "timeoutMs", 0);
        o.keep_completed = (unsigned)int_of(opts, "keepCompleted", 0);
        a = calloc(1, sizeof(*a));
        if (a == NULL)
                return PXL_ENOMEM;
        a->jt = jt;
        a->defer = defer;
        a->queue = strdup(queue != NULL ? queue : "(null)");
        if (a->queue == NULL) {
                free(a);
                return PXL_ENOMEM;
        }
        a->added_at = now_ms();
        rc = pxl_job_add(ctx, queue, key_of(spec, "payload"),
                         opts != NULL ? &o : NULL, added, a);
        if (rc != PXL_OK) {
                free(a->queue);
                free(a);
        }
        return rc;
}

static int job_add(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct jobtest *jt = pxl_ctx_plugin_data(ctx);
        struct pxl_defer *d = pxl_defer(ctx);
        int rc;

        if (d == NULL)
                return pxl_fail(ctx, "cannot defer");
        rc = add_job(ctx, jt, pxl_msg_data(msg), d);
        if (rc != PXL_OK) /* the router cancels d */
                return pxl_fail(ctx, "pxl_job_add: %s", pxl_strerror(rc));
        return PXL_DEFERRED;
}

/* ---- adding jobs in a transaction --------------------------------------- */

struct tx_req {
        struct jobtest *jt;
        struct pxl_defer *defer;
        struct pxl_db_tx *tx;
        struct event *timer; /* commitAfterMs */
        int64_t end_at;      /* when it may end (ms since the epoch) */
        bool commit;
        int pending;             /* callbacks still to come: row, added, end */
        struct json_object *out; /* the tx line */
};

static void tx_settle(struct tx_req *t)
{
        if (--t->pending > 0)
                return;
        json_object_object_add(t->out, "ev", json_object_new_string("tx"));
        jt_log(t->jt, json_object_get(t->out));
        json_object_object_del(t->out, "ev");
        json_object_object_del(t->out, "at");
        json_object_object_del(t->out, "pid");
        pxl_defer_reply(t->defer, t->out);
        if (t->timer != NULL)
                event_free(t->timer);
        free(t);
}

static struct json_object *str_or_null(const char *s)
{
        return s != NULL ? json_object_new_string(s) : NULL;
}

static void tx_row(struct pxl_ctx *ctx, const struct pxl_db_result *res,
                   void *arg)
{
        struct tx_req *t = arg;

        (void)ctx;
        json_object_object_add(t->out, "rowError",
                               str_or_null(pxl_db_error(res)));
        tx_settle(t);
}

static void tx_added(struct pxl_ctx *ctx, const char *id, bool existed,
                     const char *error, void *arg)
{
        struct tx_req *t = arg;

        (void)ctx;
        json_object_object_add(t->out, "id", str_or_null(id));
        json_object_object_add(t->out, "existed",
                               json_object_new_boolean(existed));
        json_object_object_add(t->out, "addError", str_or_null(error));
        tx_settle(t);
}

static void tx_ended(struct pxl_ctx *ctx, const struct pxl_db_result *res,
                     void *arg)
{
        struct tx_req *t = arg;

        (void)ctx;
        json_object_object_add(t->out, "error", str_or_null(pxl_db_error(res)));
        tx_settle(t);
}

static void tx_end(struct tx_req *t)
{
        int rc = t->commit ? pxl_db_commit(t->tx, tx_ended, t)
                           : pxl_db_rollback(t->tx, tx_ended, t);

        t->tx = NULL;
        if (rc != PXL_OK) {
                json_object_object_add(
                        t->out, "error",
                        json_object_new_string(pxl_strerror(rc)));
                tx_settle(t);
        }
}

static void tx_timer(evutil_socket_t fd, short what, void *arg)
{
        struct tx_req *t = arg;
        int64_t left = t->end_at - now_ms();

        (void)fd;
        (void)what;
        /* A timer armed from the loop's cached time may ring early. */
        if (left > 0) {
                struct timeval tv = {.tv_sec = (time_t)(left / 1000),
                                     .tv_usec =
                                             (suseconds_t)(left % 1000 * 1000)};

                if (evtimer_add(t->timer, &tv) == 0)
                        return;
        }
        tx_end(t);
}

static int job_addtx(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct jobtest *jt = pxl_ctx_plugin_data(ctx);
        struct json_object *data = pxl_msg_data(msg);
        struct json_object *opts = key_of(data, "options");
        struct json_object *params;
        struct pxl_job_options o = {0};
        const char *queue = str_of(data, "queue");
        const char *row = str_of(data, "row");
        int64_t after = int_of(data, "commitAfterMs", 0);
        struct pxl_defer *d;
        struct pxl_db_tx *tx;
        struct tx_req *t;
        int rc;

        o.id = str_of(opts, "id");
        o.delay_ms = (uint64_t)int_of(opts, "delayMs", 0);
        o.attempts = (unsigned)int_of(opts, "attempts", 0);
        tx = pxl_db_begin(ctx);
        if (tx == NULL) {
                rc = pxl_job_add_tx(NULL, queue, key_of(data, "payload"),
                                    opts != NULL ? &o : NULL, NULL, NULL);
                return pxl_fail(ctx,
                                "pxl_db_begin: no transaction; "
                                "pxl_job_add_tx(NULL): %s",
                                pxl_strerror(rc));
        }
        d = pxl_defer(ctx);
        t = calloc(1, sizeof(*t));
        if (d == NULL || t == NULL) {
                free(t);
                pxl_db_rollback(tx, NULL, NULL);
                return pxl_fail(ctx, "out of memory");
        }
        t->jt = jt;
        t->defer = d;
        t->tx = tx;
        t->commit = json_object_get_boolean(key_of(data, "commit"));
        t->out = json_object_new_object();
        json_object_object_add(t->out, "queue", str_or_null(queue));
        json_object_object_add(t->out, "commit",
                               json_object_new_boolean(t->commit));
        rc = pxl_job_add_tx(tx, queue, key_of(data, "payload"),
                            opts != NULL ? &o : NULL, tx_added, t);
        if (rc != PXL_OK) {
                pxl_db_rollback(tx, NULL, NULL);
                json_object_put(t->out);
                free(t);
                return pxl_fail(ctx, "pxl_job_add_tx: %s", pxl_strerror(rc));
        }
        t->pending = 3;
        params = json_object_new_array();
        json_object_array_add(params, str_or_null(row));
        rc = pxl_db_tx_query(tx, "INSERT INTO jt_rows (name) VALUES ($1)",
                             params, tx_row, t);
        json_object_put(params);
        if (rc != PXL_OK) {
                json_object_object_add(
                        t->out, "rowError",
                        json_object_new_string(pxl_strerror(rc)));
                t->pending--;
        }
        if (after > 0) {
                struct timeval tv = {
                        .tv_sec = (time_t)(after / 1000),
                        .tv_usec = (suseconds_t)(after % 1000 * 1000)};

                t->end_at = now_ms() + after;
                t->timer = evtimer_new(pxl_ctx_event_base(ctx), tx_timer, t);
                if (t->timer != NULL && evtimer_add(t->timer, &tv) == 0)
                        return PXL_DEFERRED;
        }
        tx_end(t);
        return PXL_DEFERRED;
}

static int job_release(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct jobtest *jt = pxl_ctx_plugin_data(ctx);
        const char *name = str_of(pxl_msg_data(msg), "hold");
        int n = 0;

        if (name == NULL)
                return pxl_fail(ctx, "hold must be a string");
        for (struct run *r = jt->runs.next, *next; r != &jt->runs; r = next) {
                next = r->next;
                if (r->hold != NULL && strcmp(r->hold, name) == 0) {
                        run_complete(r, true);
                        n++;
                }
        }
        return pxl_reply(ctx, json_object_new_int(n));
}

static int job_running(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct jobtest *jt = pxl_ctx_plugin_data(ctx);
        int n = 0;

        (void)msg;
        for (struct run *r = jt->runs.next; r != &jt->runs; r = r->next)
                n++;
        return pxl_reply(ctx, json_object_new_int(n));
}

/* ---- the processor ------------------------------------------------------ */

/* End the run now: fail it with "failing attempt A". */
static int run_fail(struct run *r, const char *why)
{
        log_end(r, "fail");
        if (why != NULL)
                log_rc(r, pxl_job_fail(r->job, "%s", why));
        else
                log_rc(r,
                       pxl_job_fail(r->job, "failing attempt %u", r->attempt));
        run_free(r);
        return PXL_OK;
}

/* The processor returns rc without ending the job. */
static int run_return(struct run *r, const char *how, int rc)
{
        log_end(r, how);
        run_free(r);
        return rc;
}

static int process(struct pxl_ctx *ctx, struct pxl_job *job)
{
        struct jobtest *jt = pxl_ctx_plugin_data(ctx);
        struct json_object *p = pxl_job_payload(job), *o, *steps, *then;
        struct run *r = calloc(1, sizeof(*r));
        const char *client = str_of(p, "client"), *how = str_of(p, "how");
        const char *fail_how = str_of(p, "failHow");
        const char *fail_while = str_of(p, "failWhile");
        int64_t ms;

        if (r == NULL)
                return PXL_ENOMEM;
        r->jt = jt;
        r->job = job;
        r->queue = strdup(pxl_job_queue(job));
        r->id = strdup(pxl_job_id(job));
        r->attempt = pxl_job_attempt(job);
        r->value = json_object_get(key_of(p, "value"));
        if (client != NULL &&
            json_object_get_boolean(key_of(p, "resultClient")))
                r->client = strdup(client);
        r->next = jt->runs.next;
        r->prev = &jt->runs;
        r->next->prev = r;
        jt->runs.next = r;
        if (r->queue == NULL || r->id == NULL) {
                run_free(r);
                return PXL_ENOMEM;
        }
        o = run_line("start", r);
        json_object_object_add(o, "payload", json_object_get(p));
        jt_log(jt, o);
        if (client != NULL) {
                char *k = client_key(r->queue, r->id);

                if (k != NULL)
                        json_object_object_add(jt->clients, k,
                                               json_object_new_string(client));
                free(k);
        }
        steps = key_of(p, "progress");
        for (size_t i = 0; json_object_is_type(steps, json_type_array) &&
                           i < json_object_array_length(steps);
             i++) {
                int rc = pxl_job_progress(job,
                                          json_object_array_get_idx(steps, i));

                o = run_line("progress", r);
                json_object_object_add(o, "rc", json_object_new_int(rc));
                jt_log(jt, o);
        }
        then = key_of(p, "then");
        if (then != NULL) {
                int rc = add_job(ctx, jt, then, NULL);

                if (rc != PXL_OK)
                        return run_fail(r, pxl_strerror(rc));
        }
        if ((int64_t)r->attempt < int_of(p, "failUntil", 0) ||
            (fail_while != NULL && access(fail_while, F_OK) == 0)) {
                if (fail_how != NULL && strcmp(fail_how, "return") == 0)
                        return run_return(r, "error", PXL_ERR);
                return run_fail(r, NULL);
        }
        if (how != NULL && strcmp(how, "hold") == 0 &&
            (int64_t)r->attempt <= int_of(p, "holdUntil", INT64_MAX)) {
                const char *name = str_of(p, "hold");

                r->hold = strdup(name != NULL ? name : "");
                if (r->hold == NULL)
                        return run_fail(r, "no memory");
                return PXL_DEFERRED;
        }
        if (how != NULL && strcmp(how, "defer") == 0) {
                struct json_object *by = key_of(p, "msByAttempt");
                struct timeval tv;

                ms = int_of(p, "ms", 0);
                if (json_object_is_type(by, json_type_array) &&
                    r->attempt - 1 < json_object_array_length(by))
                        ms = json_object_get_int64(
                                json_object_array_get_idx(by, r->attempt - 1));
                tv.tv_sec = (time_t)(ms / 1000);
                tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
                r->timer = evtimer_new(pxl_ctx_event_base(ctx), run_timer, r);
                if (r->timer == NULL || evtimer_add(r->timer, &tv) < 0)
                        return run_fail(r, "no timer");
                return PXL_DEFERRED;
        }
        if (how != NULL && strcmp(how, "ok") == 0)
                return run_return(r, "ok", PXL_OK);
        log_end(r, "complete");
        log_rc(r, pxl_job_complete(job, result_of(r)));
        run_free(r);
        return PXL_OK;
}

/* ---- bus events --------------------------------------------------------- */

static int on_job_event(struct pxl_ctx *ctx, const char *channel,
                        const struct json_object *msg)
{
        struct jobtest *jt = pxl_ctx_plugin_data(ctx);
        struct json_object *m = (struct json_object *)msg, *o, *c = NULL;
        const char *queue = str_of(m, "queue"), *id = str_of(m, "id");
        struct json_object *dead = key_of(m, "dead");
        char *k = NULL;
        int sent = 0;

        if (jt == NULL)
                return PXL_EINVAL;
        if (queue != NULL && id != NULL)
                k = client_key(queue, id);
        /* Not ours: a completion may name its client (resultClient). */
        if (k != NULL && !json_object_object_get_ex(jt->clients, k, &c) &&
            strcmp(channel, "jobCompleted") == 0 &&
            str_of(key_of(m, "result"), "client") != NULL)
                c = key_of(key_of(m, "result"), "client");
        if (c != NULL) {
                struct json_object *out =
                        pxl_msg_new("job", channel, json_object_get(m));

                sent = pxl_send_to_client(ctx, json_object_get_string(c), out);
                json_object_put(out);
                if (strcmp(channel, "jobCompleted") == 0 ||
                    (strcmp(channel, "jobFailed") == 0 &&
                     json_object_get_boolean(dead)))
                        json_object_object_del(jt->clients, k);
        }
        free(k);
        o = json_object_new_object();
        json_object_object_add(o, "ev", json_object_new_string(channel));
        json_object_object_add(o, "msg", json_object_get(m));
        json_object_object_add(o, "sent", json_object_new_int(sent));
        jt_log(jt, o);
        return PXL_OK;
}

/* ---- plugin ------------------------------------------------------------- */

static int jt_init(struct pxl_ctx *ctx, const config_setting_t *settings)
{
        struct jobtest *jt = calloc(1, sizeof(*jt));

        (void)settings;
        if (jt == NULL)
                return pxl_ctx_fail(ctx, "out of memory");
        pxl_ctx_set_plugin_data(ctx, jt);
        jt->runs.next = jt->runs.prev = &jt->runs;
        jt->log = strdup(pxl_setting_string(ctx, "log"));
        jt->clients = json_object_new_object();
        if (jt->log == NULL || jt->clients == NULL)
                return pxl_ctx_fail(ctx, "out of memory");
        return PXL_OK;
}

/*
 * Runs still here at the end (held or deferred ones a test left, or
 * timed-out ones whose late ending never came) are only forgotten: what
 * becomes of a job still running at shutdown is the framework's business.
 */
static void jt_fini(struct pxl_ctx *ctx)
{
        struct jobtest *jt = pxl_ctx_plugin_data(ctx);

        if (jt == NULL)
                return;
        while (jt->runs.next != &jt->runs)
                run_free(jt->runs.next);
        json_object_put(jt->clients);
        free(jt->log);
        free(jt);
        pxl_ctx_set_plugin_data(ctx, NULL);
}

static const struct pxl_route jt_routes[] = {
        {"job", "add", job_add},
        {"job", "addtx", job_addtx},
        {"job", "release", job_release},
        {"job", "running", job_running},
        PXL_ROUTE_END,
};

static const struct pxl_subscriber jt_subscribers[] = {
        {"jobCompleted", 0, on_job_event},
        {"jobFailed", 0, on_job_event},
        {"jobProgress", 0, on_job_event},
        PXL_SUBSCRIBER_END,
};

static const struct pxl_processor jt_processors[] = {
        {.queue = "work", .fn = process, .concurrency = 1},
        {.queue = "many", .fn = process, .concurrency = 4},
        {.queue = "flaky", .fn = process, .concurrency = 4},
        {.queue = "slow", .fn = process, .concurrency = 2, .timeout_ms = 1000},
        {.queue = "progress", .fn = process, .concurrency = 1},
        {.queue = "delay", .fn = process, .concurrency = 16},
        {.queue = "keep", .fn = process, .concurrency = 1},
        {.queue = "rated", .fn = process, .concurrency = 8},
        {.queue = "sched", .fn = process, .concurrency = 4},
        PXL_PROCESSOR_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "jobtest",
        .version = "1.0.0",
        .routes = jt_routes,
        .init = jt_init,
        .fini = jt_fini,
        .subscribers = jt_subscribers,
        .settings = jt_settings,
        .processors = jt_processors,
};
