/*
 * pxl_queue_redis.c - the queue's jobs in Redis (with a `redis` group):
 * Redis Streams, one consumer group per queue and priority level, the
 * keys and scripts of pxl_queue_lua.h. Every worker on every machine
 * shares the queues.
 *
 * Commands go on the worker's command connection (srv->redis, the
 * cluster view's); each queue has a connection of its own for the
 * blocking XREADGROUP that waits for new jobs when a claim found none,
 * so that a job added anywhere starts at once without polling fast.
 * A timer of the common half (a delayed job due, a retry) interrupts
 * that wait with CLIENT UNBLOCK, and so does the line's own timer when
 * the next delayed job the claim saw is due: Redis ends a BLOCK only at
 * its own timer (every 1/hz s, 100 ms by default), too late for a
 * delayed job's start. A rate-limited queue never waits there: a
 * blocking read would bypass the limit.
 *
 * At least once: a delivered entry stays in this worker's pending list
 * until its outcome is recorded; its idle time is reset while it runs
 * (renew) and another worker takes it over (XAUTOCLAIM) once it has
 * been idle for queue.stalled_after.
 *
 * Ownership: struct redis_queue (q->be_state) owns the lines' state and
 * their blocking connections.
 */
#include <inttypes.h>
#include <stdio.h>
#include <sys/queue.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_conf.h"
#include "pxl_db.h"
#include "pxl_log.h"
#include "pxl_queue_int.h"
#include "pxl_queue_lua.h"
#include "pxl_queue_sql.h"
#include "pxl_redis.h"
#include "pxl_str.h"
#include "pxl_time.h"
#include "pxl_worker.h"

enum script {
        S_SETUP,
        S_ADD,
        S_CLAIM,
        S_START,
        S_FINISH,
        S_RENEW,
        S_PROGRESS,
        S_GIVE_BACK,
        S_COUNT,
        S_N
};

static const char *const script_text[S_N] = {
        [S_SETUP] = PXL_QUEUE_LUA_SETUP,
        [S_ADD] = PXL_QUEUE_LUA_ADD,
        [S_CLAIM] = PXL_QUEUE_LUA_CLAIM,
        [S_START] = PXL_QUEUE_LUA_START,
        [S_FINISH] = PXL_QUEUE_LUA_FINISH,
        [S_RENEW] = PXL_QUEUE_LUA_RENEW,
        [S_PROGRESS] = PXL_QUEUE_LUA_PROGRESS,
        [S_GIVE_BACK] = PXL_QUEUE_LUA_GIVE_BACK,
        [S_COUNT] = PXL_QUEUE_LUA_COUNT,
};

/* Computed once per process, read-only after. */
static struct pxl_redis_script scripts[S_N];
static bool scripts_ready;

#define UNAVAILABLE "queue unavailable"
#define BATCH_MAX   64 /* adds or outcomes in one script call */
#define ITEM_ARGS   9  /* an add's arguments (an outcome has 8) */
#define MAX_ARGS    (4 + ITEM_ARGS * BATCH_MAX)
#define OUTBOX_BATCH    100
#define OUTBOX_LEASE_MS 2000 /* a row being moved, for others to leave */
#define OUTBOX_SWEEP_MS 1000  /* rows whose mover died, or missed */

struct redis_queue;
struct item;
STAILQ_HEAD(item_list, item);

/* Adds or outcomes of one queue waiting for the end of the loop turn. */
struct batch {
        int script; /* enum script */
        struct redis_line *rl;
        struct item_list items;
        struct event *ev; /* active while items wait */
};

/* One queue's state here (qu->be). */
struct redis_line {
        struct pxl_queue_line *qu;
        struct redis_queue *rq;
        struct pxl_redis *blocking; /* for XREADGROUP BLOCK only */
        long long client_id;        /* blocking's, for CLIENT UNBLOCK; 0 */
        bool blocked;               /* a blocking read is in flight */
        struct event *due_timer;    /* the next delayed job is due */
        bool set_up;                /* SETUP answered since the start */
        int64_t stalled_looked_ms;  /* the last claim that looked (ms) */
        int64_t trimmed_ms;         /* the last claim that trimmed (ms) */
        struct batch adds, finishes;
        char **levels;              /* in use, highest first */
        size_t nlevels;
        uint64_t unused_counts[3]; /* blocking's publish counters */
        size_t key_len;
        char key[]; /* Q: P "q:" NAME ":" */
};

struct redis_queue {
        struct pxl_queue *q;
        struct pxl_redis *redis; /* srv->redis: borrowed */
        struct pxl_db *db;       /* the app's, for the outbox; or NULL */
        struct event *sweep_timer;
        bool sweeping; /* an outbox sweep is in flight */
        bool sweep_again;
        char prefix[96];      /* P */
        char queues_key[112]; /* P "queues" */
};

static struct redis_line *line_of(const struct pxl_queue_line *qu)
{
        return qu->be;
}

static int64_t poll_at(const struct pxl_queue *q)
{
        return pxl_queue_now_ms() + q->srv->conf->queue.poll_interval;
}

/* ---- calls -------------------------------------------------------------- */

typedef void reply_fn(struct pxl_queue *q, struct redisReply *reply,
                      void *arg);

struct call {
        struct pxl_queue *q;
        reply_fn *done;
        void *arg;
};

static void call_done(void *owner, struct redisReply *reply, void *arg)
{
        struct call *c = arg;
        struct pxl_queue *q = c->q;

        (void)owner;
        if (c->done != NULL)
                c->done(q, reply, c->arg);
        free(c);
        pxl_queue_release(q);
}

/*
 * Run script s with key and args on the command connection; done (may
 * be NULL) gets the reply, NULL when Redis went away. PXL_ECLOSED while
 * Redis is down, and done runs never.
 */
static int run(struct pxl_queue *q, enum script s, const char *key,
               int argc, const char **argv, const size_t *lens, reply_fn *done,
               void *arg)
{
        struct redis_queue *rq = q->be_state;
        const char *av[MAX_ARGS + 1];
        size_t al[MAX_ARGS + 1];
        struct call *c;
        int rc;

        if (argc > MAX_ARGS)
                return PXL_EINVAL;
        if ((c = malloc(sizeof(*c))) == NULL)
                return PXL_ENOMEM;
        c->q = q;
        c->done = done;
        c->arg = arg;
        av[0] = key;
        al[0] = strlen(key);
        for (int i = 0; i < argc; i++) {
                av[i + 1] = argv[i];
                al[i + 1] = lens ? lens[i] : strlen(argv[i]);
        }
        rc = pxl_redis_queue_script(rq->redis, &scripts[s], call_done, c, 1,
                                    argc + 1, av, al);
        if (rc < 0) {
                free(c);
                return rc;
        }
        pxl_queue_hold(q);
        return PXL_OK;
}

static const char *reply_error(const struct redisReply *r)
{
        if (r == NULL)
                return UNAVAILABLE;
        return r->type == REDIS_REPLY_ERROR ? r->str : NULL;
}

static long long num_of(const struct redisReply *e)
{
        if (e == NULL)
                return 0;
        if (e->type == REDIS_REPLY_INTEGER)
                return e->integer;
        if (e->type == REDIS_REPLY_STRING)
                return strtoll(e->str, NULL, 10);
        return 0;
}

static const char *str_of(const struct redisReply *e, size_t *len)
{
        if (e == NULL || e->type != REDIS_REPLY_STRING) {
                if (len != NULL)
                        *len = 0;
                return NULL;
        }
        if (len != NULL)
                *len = e->len;
        return e->str;
}

/* e's string as a script argument, or "" for anything else. */
static void arg_str(const char **arg, size_t *len, const struct redisReply *e)
{
        *arg = str_of(e, len);
        if (*arg == NULL)
                *arg = "";
}

/* ---- claiming ----------------------------------------------------------- */

static void set_levels(struct redis_line *rl, const struct redisReply *lv)
{
        bool same = lv->elements == rl->nlevels;
        char **v;

        for (size_t i = 0; same && i < lv->elements; i++)
                same = str_of(lv->element[i], NULL) != NULL &&
                       strcmp(rl->levels[i], lv->element[i]->str) == 0;
        if (same || (v = calloc(lv->elements + 1, sizeof(*v))) == NULL)
                return;
        for (size_t i = 0; i < lv->elements; i++)
                if ((v[i] = strdup(str_of(lv->element[i], NULL)
                                           ? lv->element[i]->str
                                           : "0")) == NULL) {
                        for (size_t k = 0; k < i; k++)
                                free(v[k]);
                        free(v);
                        return;
                }
        for (size_t i = 0; i < rl->nlevels; i++)
                free(rl->levels[i]);
        free(rl->levels);
        rl->levels = v;
        rl->nlevels = lv->elements;
}

static void block(struct redis_line *rl, int64_t wake_at);
static void redis_wake(struct pxl_queue_line *qu);

static void on_due(evutil_socket_t fd, short what, void *arg)
{
        struct redis_line *rl = arg;

        (void)fd;
        (void)what;
        redis_wake(rl->qu);
}

/* CLAIM's and START's answer: {wake, limited, {levels}, job...}. */
static void claimed(struct pxl_queue *q, struct redisReply *r, void *arg)
{
        struct pxl_queue_line *qu = arg;
        struct redis_line *rl = line_of(qu);
        struct pxl_queue_claim jobs[PXL_QUEUE_MAX_CLAIM];
        int64_t wake_at = poll_at(q), wake;
        size_t n = 0;

        /* Stopping (rl may be gone): the give-back returns these. */
        if (q->stopping || rl == NULL) {
                pxl_queue_claimed(qu, NULL, 0, NULL, wake_at, false);
                return;
        }
        if (reply_error(r) != NULL || r->type != REDIS_REPLY_ARRAY ||
            r->elements < 3 || r->element[2]->type != REDIS_REPLY_ARRAY) {
                if (r != NULL && r->type == REDIS_REPLY_ERROR)
                        rl->set_up = false; /* a flushed Redis, say */
                pxl_queue_claimed(qu, NULL, 0,
                                  reply_error(r) ? reply_error(r)
                                                 : "unexpected reply",
                                  wake_at, false);
                return;
        }
        wake = num_of(r->element[0]);
        if (num_of(r->element[1]) != 0) {
                pxl_queue_claimed(qu, NULL, 0, NULL, wake, true);
                return;
        }
        set_levels(rl, r->element[2]);
        if (wake >= 0 && wake < wake_at)
                wake_at = wake;
        for (size_t i = 3; i < r->elements && n < PXL_QUEUE_MAX_CLAIM; i++) {
                const struct redisReply *e = r->element[i];
                struct pxl_queue_claim *j = &jobs[n];

                if (e->type != REDIS_REPLY_ARRAY || e->elements < 10)
                        continue;
                j->id = str_of(e->element[0], NULL);
                j->token = str_of(e->element[1], NULL);
                j->payload = str_of(e->element[2], &j->payload_len);
                j->attempt = (unsigned)num_of(e->element[3]);
                j->attempts = (unsigned)num_of(e->element[4]);
                j->backoff_ms = (unsigned)num_of(e->element[5]);
                j->backoff_exp = num_of(e->element[6]) != 0;
                j->timeout_ms = (unsigned)num_of(e->element[7]);
                j->keep = (unsigned)num_of(e->element[8]);
                j->due = num_of(e->element[9]);
                if (j->id != NULL && j->token != NULL)
                        n++;
        }
        /* None: wait for news on the blocking connection. */
        if (n == 0 && qu->rate == 0 && !q->stopping &&
            pxl_redis_up(rl->blocking) && rl->client_id > 0) {
                block(rl, wake_at);
                if (rl->blocked && wake >= 0) {
                        int64_t now = pxl_queue_now_ms();
                        struct timeval tv = pxl_ms_timeval(
                                (uint64_t)(wake > now ? wake - now : 0));

                        evtimer_add(rl->due_timer, &tv);
                }
                return;
        }
        pxl_queue_claimed(qu, jobs, n, NULL, wake_at, false);
}

static void set_up_done(struct pxl_queue *q, struct redisReply *r, void *arg)
{
        struct redis_line *rl = line_of(arg);

        (void)q;
        if (rl != NULL && reply_error(r) == NULL)
                rl->set_up = true;
}

static void redis_claim(struct pxl_queue_line *qu, unsigned n)
{
        struct pxl_queue *q = qu->q;
        struct redis_line *rl = line_of(qu);
        const struct pxl_queue_conf *conf = &q->srv->conf->queue;
        char sn[16], now[24], stalled[24], interval[24], now_us[24];
        const char *argv[8] = {sn,       q->owner, now, stalled,
                               interval, now_us,   "0", "0"};
        int64_t t = pxl_queue_now_ms();

        /*
         * Stalled jobs: a walk of the pending entries, so four times a
         * stalled_after at most, not at every claim of a busy queue.
         */
        if (t - rl->stalled_looked_ms >= (int64_t)conf->stalled_after * 250) {
                rl->stalled_looked_ms = t;
                argv[6] = "1";
        }
        /* Acknowledged entries go once a second. */
        if (t - rl->trimmed_ms >= 1000) {
                rl->trimmed_ms = t;
                argv[7] = "1";
        }

        snprintf(sn, sizeof(sn), "%u", n);
        snprintf(now, sizeof(now), "%" PRId64, t);
        snprintf(stalled, sizeof(stalled), "%u", conf->stalled_after * 1000);
        snprintf(interval, sizeof(interval), "%u",
                 qu->rate ? 1000000 / qu->rate : 0);
        snprintf(now_us, sizeof(now_us), "%" PRId64, t * 1000);
        if (!rl->set_up) {
                const char *sa[2] = {rl->rq->queues_key, qu->name};

                run(q, S_SETUP, rl->key, 2, sa, NULL, set_up_done, qu);
        }
        /* Redis down: pxl_redis logs the outage once; look again later. */
        if (run(q, S_CLAIM, rl->key, 8, argv, NULL, claimed, qu) < 0)
                pxl_queue_claimed(qu, NULL, 0, NULL, poll_at(q), false);
}

/* What a blocking read delivered: start those runs. */
static void delivered(void *owner, struct redisReply *r, void *arg)
{
        struct redis_line *rl = arg;
        struct pxl_queue_line *qu = rl->qu;
        struct pxl_queue *q = qu->q;
        const char *argv[MAX_ARGS];
        size_t lens[MAX_ARGS];
        char now[24];
        int argc = 2;

        (void)owner;
        rl->blocked = false;
        evtimer_del(rl->due_timer);
        if (q->stopping)
                return; /* the give-back returns what it took */
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
                /* NULL: the connection went (pxl_redis says so once). */
                if (r != NULL)
                        rl->set_up = false; /* NOGROUP: a flushed Redis */
                pxl_queue_claimed(qu, NULL, 0, r ? r->str : NULL, poll_at(q),
                                  false);
                return;
        }
        if (r->type != REDIS_REPLY_ARRAY) { /* timed out, or woken */
                qu->again = true;
                pxl_queue_claimed(qu, NULL, 0, NULL, poll_at(q), false);
                return;
        }
        snprintf(now, sizeof(now), "%" PRId64, pxl_queue_now_ms());
        argv[0] = q->owner;
        argv[1] = now;
        lens[0] = strlen(q->owner);
        lens[1] = strlen(now);
        for (size_t s = 0; s < r->elements; s++) {
                const struct redisReply *st = r->element[s];
                const char *key;
                size_t klen;

                if (st->type != REDIS_REPLY_ARRAY || st->elements < 2 ||
                    (key = str_of(st->element[0], &klen)) == NULL ||
                    klen < rl->key_len + 2 ||
                    st->element[1]->type != REDIS_REPLY_ARRAY)
                        continue;
                for (size_t i = 0; i < st->element[1]->elements; i++) {
                        const struct redisReply *en =
                                st->element[1]->element[i];
                        const struct redisReply *f =
                                en->elements > 1 ? en->element[1] : NULL;
                        bool pair = f != NULL &&
                                    f->type == REDIS_REPLY_ARRAY &&
                                    f->elements >= 2;

                        if (en->type != REDIS_REPLY_ARRAY ||
                            str_of(en->element[0], NULL) == NULL ||
                            argc + 4 > MAX_ARGS)
                                continue;
                        argv[argc] = key + rl->key_len + 2; /* LEVEL */
                        lens[argc++] = klen - rl->key_len - 2;
                        arg_str(&argv[argc], &lens[argc], en->element[0]);
                        argc++;
                        /* An entry without fields: START drops it. */
                        arg_str(&argv[argc], &lens[argc],
                                pair ? f->element[0] : NULL);
                        argc++;
                        arg_str(&argv[argc], &lens[argc],
                                pair ? f->element[1] : NULL);
                        argc++;
                }
        }
        /* Down: what it took runs again after queue.stalled_after. */
        if (run(q, S_START, rl->key, argc, argv, lens, claimed, qu) < 0)
                pxl_queue_claimed(qu, NULL, 0, NULL, poll_at(q), false);
}

/*
 * Wait on the blocking connection, until wake_at at most, for new
 * entries in the queue's streams (every level), taking up to what the
 * claim asked for.
 */
static void block(struct redis_line *rl, int64_t wake_at)
{
        struct pxl_queue_line *qu = rl->qu;
        struct pxl_queue *q = qu->q;
        size_t nl = rl->nlevels ? rl->nlevels : 1;
        const char **argv = calloc(9 + 2 * nl, sizeof(*argv));
        size_t *lens = calloc(9 + 2 * nl, sizeof(*lens));
        char **keys = calloc(nl, sizeof(*keys));
        char count[16], ms[24];
        int64_t wait = wake_at - pxl_queue_now_ms();
        int argc = 0, rc = PXL_ENOMEM;

        snprintf(count, sizeof(count), "%u", qu->asked);
        snprintf(ms, sizeof(ms), "%" PRId64, wait > 1 ? wait : 1);
        if (argv != NULL && lens != NULL && keys != NULL) {
                const char *head[] = {"XREADGROUP", "GROUP", "pxl", q->owner,
                                      "COUNT", count, "BLOCK", ms, "STREAMS"};

                for (size_t i = 0; i < sizeof(head) / sizeof(*head); i++)
                        argv[argc++] = head[i];
                rc = PXL_OK;
                for (size_t i = 0; i < nl && rc == PXL_OK; i++) {
                        const char *lv = rl->nlevels ? rl->levels[i] : "0";
                        size_t len = rl->key_len + 2 + strlen(lv) + 1;

                        if ((keys[i] = malloc(len)) == NULL)
                                rc = PXL_ENOMEM;
                        else
                                snprintf(keys[i], len, "%ss:%s", rl->key, lv);
                        argv[argc++] = keys[i] ? keys[i] : "";
                }
                for (size_t i = 0; i < nl; i++)
                        argv[argc++] = ">";
                for (int i = 0; i < argc; i++)
                        lens[i] = strlen(argv[i]);
        }
        if (rc == PXL_OK)
                rc = pxl_redis_queue_command(rl->blocking, delivered, rl, argc,
                                             argv, lens);
        for (size_t i = 0; keys != NULL && i < nl; i++)
                free(keys[i]);
        free(keys);
        free(argv);
        free(lens);
        if (rc < 0) {
                pxl_queue_claimed(qu, NULL, 0, NULL, wake_at, false);
                return;
        }
        rl->blocked = true;
}

/* A timer rang (something due): the blocking read returns now. */
static void redis_wake(struct pxl_queue_line *qu)
{
        struct redis_line *rl = line_of(qu);
        char id[24];
        const char *argv[3] = {"CLIENT", "UNBLOCK", id};
        size_t lens[3] = {6, 7, 0};

        if (!rl->blocked || rl->client_id <= 0)
                return;
        lens[2] = (size_t)snprintf(id, sizeof(id), "%lld", rl->client_id);
        pxl_redis_queue_command(rl->rq->redis, NULL, NULL, 3, argv, lens);
}

/* ---- batches ------------------------------------------------------------ */

/*
 * Adds and outcomes wait for the end of the loop turn that made them,
 * then go to Redis in one script call per queue and kind (up to
 * BATCH_MAX each): a script call costs Redis about as much as the
 * commands of one job in it. Each counts as a call in flight
 * (pxl_queue_hold) until answered, so that stopping waits for it.
 */
struct item;
typedef void item_fn(struct pxl_queue *q, struct item *it, long long result,
                     const char *error);

struct item {
        STAILQ_ENTRY(item) link;
        item_fn *done; /* result: the script's 1 or 0 for it; or error */
        pxl_queue_added_fn *added;
        pxl_queue_recorded_fn *recorded;
        void *arg;
        const char *queue; /* borrowed from the plugin's table */
        int argc;
        const char *argv[ITEM_ARGS];
        size_t lens[ITEM_ARGS];
        char data[]; /* the arguments' bytes */
};

struct flight {
        struct batch *b;
        struct item_list items;
};

static struct item *item_new(int argc, const char *const *argv,
                             const size_t *lens)
{
        size_t total = 0;
        struct item *it;
        char *p;

        for (int i = 0; i < argc; i++)
                total += lens[i];
        if ((it = calloc(1, sizeof(*it) + total)) == NULL)
                return NULL;
        it->argc = argc;
        p = it->data;
        for (int i = 0; i < argc; i++) {
                memcpy(p, argv[i], lens[i]);
                it->argv[i] = p;
                it->lens[i] = lens[i];
                p += lens[i];
        }
        return it;
}

static void batch_put(struct batch *b, struct item *it)
{
        struct pxl_queue *q = b->rl->qu->q;

        if (STAILQ_EMPTY(&b->items))
                event_active(b->ev, EV_TIMEOUT, 1);
        STAILQ_INSERT_TAIL(&b->items, it, link);
        pxl_queue_hold(q);
}

/* Answer every item of list (result from r, or error) and free it. */
static void answer(struct pxl_queue *q, struct item_list *list,
                   const struct redisReply *r, const char *error)
{
        struct item *it;
        size_t i = 0;

        while ((it = STAILQ_FIRST(list)) != NULL) {
                const struct redisReply *e =
                        error == NULL && i < r->elements ? r->element[i]
                                                         : NULL;

                STAILQ_REMOVE_HEAD(list, link);
                it->done(q, it, num_of(e),
                         error ? error : e ? NULL : "unexpected reply");
                i++;
                free(it);
                pxl_queue_release(q);
        }
}

static void flown(struct pxl_queue *q, struct redisReply *r, void *arg)
{
        struct flight *f = arg;
        const char *error = reply_error(r);

        if (error == NULL && r->type != REDIS_REPLY_ARRAY)
                error = "unexpected reply";
        answer(q, &f->items, r, error);
        free(f);
}

/* The end of the turn: send what waits, BATCH_MAX items a call. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
        struct batch *b = arg;
        struct redis_line *rl = b->rl;
        struct pxl_queue *q = rl->qu->q;
        const char *argv[MAX_ARGS];
        size_t lens[MAX_ARGS];
        char now[24], spare[24];

        (void)fd;
        (void)what;
        snprintf(now, sizeof(now), "%" PRId64, pxl_queue_now_ms());
        snprintf(spare, sizeof(spare), "%" PRId64,
                 pxl_queue_now_ms() - PXL_QUEUE_SCHEDULE_KEEP_MS);
        while (!STAILQ_EMPTY(&b->items)) {
                struct flight *f = malloc(sizeof(*f));
                int argc = 0, n = 0;
                struct item *it;

                if (b->script == S_FINISH) {
                        argv[argc++] = q->owner;
                        argv[argc++] = now;
                        argv[argc++] = spare;
                } else {
                        argv[argc++] = now;
                }
                for (int i = 0; i < argc; i++)
                        lens[i] = strlen(argv[i]);
                if (f == NULL) {
                        answer(q, &b->items, NULL, "out of memory");
                        return;
                }
                f->b = b;
                STAILQ_INIT(&f->items);
                while ((it = STAILQ_FIRST(&b->items)) != NULL &&
                       n < BATCH_MAX) {
                        STAILQ_REMOVE_HEAD(&b->items, link);
                        STAILQ_INSERT_TAIL(&f->items, it, link);
                        for (int i = 0; i < it->argc; i++) {
                                argv[argc] = it->argv[i];
                                lens[argc++] = it->lens[i];
                        }
                        n++;
                }
                if (run(q, b->script, rl->key, argc, argv, lens, flown, f) <
                    0) {
                        answer(q, &f->items, NULL, UNAVAILABLE);
                        free(f);
                }
        }
}

static int batch_init(struct batch *b, struct redis_line *rl, int s,
                      struct event_base *base)
{
        b->script = s;
        b->rl = rl;
        STAILQ_INIT(&b->items);
        b->ev = event_new(base, -1, 0, on_flush, b);
        return b->ev ? PXL_OK : PXL_ENOMEM;
}

/* Stopped with items waiting (the drain ran out of time): they fail. */
static void batch_fini(struct batch *b, struct pxl_queue *q)
{
        if (b->ev == NULL)
                return;
        answer(q, &b->items, NULL, UNAVAILABLE);
        event_free(b->ev);
        b->ev = NULL;
}

/* ---- outcomes and the rest --------------------------------------------- */

static void recorded(struct pxl_queue *q, struct item *it, long long result,
                     const char *error)
{
        /* Lost with the connection, it runs again: not an error here. */
        if (error != NULL)
                pxl_logs(strcmp(error, UNAVAILABLE) ? PXL_LOG_ERR
                                                    : PXL_LOG_WARN,
                         "queue %s: cannot record a job's outcome: %s",
                         it->queue, error);
        it->recorded(q, it->arg, error == NULL && result == 1);
}

static void redis_finish(struct pxl_job *job, const struct pxl_queue_outcome *o,
                         pxl_queue_recorded_fn *done, void *arg)
{
        struct pxl_queue_line *qu = job->queue;
        struct pxl_queue *q = qu->q;
        const char *slash = job->token ? strchr(job->token, '/') : NULL;
        char attempt[16], retry_at[24], keep[16];
        const char *argv[8] = {job->id,
                               attempt,
                               o->end == PXL_QUEUE_COMPLETED ? "c"
                               : o->end == PXL_QUEUE_RETRY   ? "r"
                                                             : "d",
                               o->end == PXL_QUEUE_COMPLETED
                                       ? (o->result ? o->result : "")
                                       : o->error,
                               retry_at,
                               job->token,
                               slash ? slash + 1 : "",
                               keep};
        size_t lens[8];
        struct item *it;

        if (slash == NULL || !pxl_redis_up(line_of(qu)->rq->redis)) {
                if (slash != NULL)
                        pxl_logs(PXL_LOG_WARN,
                                 "queue %s: job %s: outcome not recorded "
                                 "(%s): it runs again after "
                                 "queue.stalled_after",
                                 qu->name, job->id, UNAVAILABLE);
                done(q, arg, false);
                return;
        }
        snprintf(attempt, sizeof(attempt), "%u", job->attempt);
        snprintf(retry_at, sizeof(retry_at), "%" PRId64, o->retry_at);
        snprintf(keep, sizeof(keep), "%u", job->keep);
        for (int i = 0; i < 8; i++)
                lens[i] = strlen(argv[i]);
        lens[5] = (size_t)(slash - job->token); /* the level */
        if ((it = item_new(8, argv, lens)) == NULL) {
                done(q, arg, false);
                return;
        }
        it->done = recorded;
        it->recorded = done;
        it->arg = arg;
        it->queue = qu->name;
        batch_put(&line_of(qu)->finishes, it);
}

static void redis_progress(struct pxl_job *job, const char *json)
{
        const char *argv[3] = {job->id, job->queue->q->owner, json};

        run(job->queue->q, S_PROGRESS, line_of(job->queue)->key, 3, argv, NULL,
            NULL, NULL);
}

static void added(struct pxl_queue *q, struct item *it, long long result,
                  const char *error)
{
        it->added(q, it->arg, error == NULL && result == 0, error);
}

/* An add of nj, as ADD takes it, to wait for the end of the turn. */
static struct item *add_item(const struct pxl_queue_new *nj)
{
        char prio[24], run_at[24], attempts[16], backoff[16];
        char timeout[16], keep[16];
        const char *argv[9] = {nj->id,      nj->payload,
                               prio,        run_at,
                               attempts,    backoff,
                               nj->backoff_exp ? "1" : "0",
                               timeout,     keep};
        size_t lens[9];

        snprintf(prio, sizeof(prio), "%" PRId64, nj->priority);
        snprintf(run_at, sizeof(run_at), "%" PRId64, nj->run_at);
        snprintf(attempts, sizeof(attempts), "%u", nj->attempts);
        snprintf(backoff, sizeof(backoff), "%u", nj->backoff_ms);
        snprintf(timeout, sizeof(timeout), "%u", nj->timeout_ms);
        snprintf(keep, sizeof(keep), "%u", nj->keep);
        for (int i = 0; i < 9; i++)
                lens[i] = strlen(argv[i]);
        lens[1] = nj->payload_len;
        return item_new(9, argv, lens);
}

static int outbox_add(struct pxl_queue *q, struct pxl_db_tx *tx,
                      const struct pxl_queue_new *nj, pxl_queue_added_fn *done,
                      void *arg);

static int redis_add(struct pxl_queue *q, struct pxl_db_tx *tx,
                     const struct pxl_queue_new *nj, pxl_queue_added_fn *done,
                     void *arg)
{
        struct pxl_queue_line *qu = pxl_queue_line_find(q, nj->queue);
        struct item *it;

        if (qu == NULL)
                return PXL_EINVAL;
        if (tx != NULL)
                return outbox_add(q, tx, nj, done, arg);
        /* Down: not lost, refused; the plugin may add it again later. */
        if (!pxl_redis_up(line_of(qu)->rq->redis)) {
                pxl_logs(PXL_LOG_WARN,
                         "pxl_job_add: queue %s: %s (Redis is down): "
                         "job %s not added",
                         nj->queue, UNAVAILABLE, nj->id);
                return PXL_EAGAIN;
        }
        if ((it = add_item(nj)) == NULL)
                return PXL_ENOMEM;
        it->done = added;
        it->added = done;
        it->arg = arg;
        it->queue = qu->name;
        batch_put(&line_of(qu)->adds, it);
        return PXL_OK;
}

/* ---- the outbox --------------------------------------------------------- */

/* Run sql with p (taken) on the app's database, or in tx. */
static int db_run(struct pxl_queue *q, struct pxl_db_tx *tx, const char *sql,
                  struct json_object *p, pxl_queue_db_fn *done, void *arg)
{
        return pxl_queue_db_run(q, ((struct redis_queue *)q->be_state)->db,
                                tx, sql, p, done, arg);
}

static void sweep(struct pxl_queue *q);

/* A transaction with jobs committed: move them now. */
static void committed(void *arg)
{
        struct pxl_queue *q = pxl_queue_of(arg);

        if (q != NULL && q->be == &pxl_queue_redis && !q->stopping)
                sweep(q);
}

/* pxl_job_add_tx: a row of the outbox, in tx; moved after the commit. */
static int outbox_add(struct pxl_queue *q, struct pxl_db_tx *tx,
                      const struct pxl_queue_new *nj, pxl_queue_added_fn *done,
                      void *arg)
{
        struct redis_queue *rq = q->be_state;
        int rc;

        if (rq->db == NULL)
                return PXL_EINVAL;
        rc = pxl_queue_db_insert(q, rq->db, tx, "pxl_job_outbox", nj, done,
                                 arg);
        /* Not told of the commit: the sweep moves it within a second. */
        if (rc == PXL_OK)
                (void)pxl_db_tx_on_commit(tx, committed, q->srv);
        return rc;
}

/* A row moved to Redis (or there already): it leaves the outbox. */
static void moved(struct pxl_queue *q, struct item *it, long long result,
                  const char *error)
{
        struct json_object *key = it->arg;

        (void)result;
        if (error == NULL && !q->stopping)
                db_run(q, NULL,
                       "DELETE FROM pxl_job_outbox WHERE queue = $1 AND "
                       "id = $2",
                       json_object_get(key), NULL, NULL);
        else if (error != NULL)
                pxl_logs(PXL_LOG_WARN,
                         "queue: a committed job stays in the outbox (%s); "
                         "moved later",
                         error);
        json_object_put(key);
}

/* Rows leased to this worker: add each to Redis, then delete it. */
static void swept(struct pxl_queue *q, const struct pxl_db_result *res,
                  void *arg)
{
        struct redis_queue *rq = q->be_state;
        size_t n = pxl_db_rows(res);

        (void)arg;
        if (rq == NULL) /* answered as the app's database closed */
                return;
        rq->sweeping = false;
        if (pxl_db_error(res) != NULL) {
                pxl_logs(PXL_LOG_WARN, "queue: cannot read the outbox: %s",
                         pxl_db_error(res));
                return;
        }
        for (size_t r = 0; r < n; r++) {
                const char *row[9];
                size_t lens[9];
                struct pxl_queue_line *qu =
                        pxl_queue_line_find(q, pxl_db_value(res, r, 0, NULL));
                struct json_object *key = json_object_new_array();
                struct item *it;

                for (int c = 0; c < 9; c++) {
                        row[c] = pxl_db_value(res, r, (size_t)c + 1, &lens[c]);
                        if (row[c] == NULL)
                                row[c] = "", lens[c] = 0;
                }
                if (key == NULL || qu == NULL ||
                    (it = item_new(9, row, lens)) == NULL) {
                        json_object_put(key); /* its lease ends: later */
                        continue;
                }
                json_object_array_add(key, json_object_new_string(qu->name));
                json_object_array_add(key, json_object_new_string(row[0]));
                it->done = moved;
                it->arg = key;
                it->queue = qu->name;
                batch_put(&line_of(qu)->adds, it);
        }
        if (n >= OUTBOX_BATCH || rq->sweep_again) {
                rq->sweep_again = false;
                sweep(q);
        }
}

/*
 * Lease a batch of the outbox's rows nobody is moving (the outer
 * condition again, so that PostgreSQL rechecks it on a row another
 * worker leased meanwhile) and move them.
 */
static void sweep(struct pxl_queue *q)
{
        struct redis_queue *rq = q->be_state;
        int64_t now = pxl_queue_now_ms();
        struct json_object *p;

        if (rq == NULL || rq->db == NULL || q->stopping ||
            !pxl_redis_up(rq->redis))
                return;
        if (rq->sweeping) {
                rq->sweep_again = true;
                return;
        }
        p = json_object_new_array();
        if (p != NULL) {
                json_object_array_add(p, json_object_new_int64(now));
                json_object_array_add(
                        p, json_object_new_int64(now + OUTBOX_LEASE_MS));
                json_object_array_add(p, json_object_new_int64(OUTBOX_BATCH));
        }
        if (db_run(q, NULL,
                   "UPDATE pxl_job_outbox SET lease_until = $2 "
                   "WHERE lease_until < $1 AND (queue, id) IN "
                   "(SELECT queue, id FROM pxl_job_outbox "
                   "WHERE lease_until < $1 ORDER BY created_at LIMIT $3) "
                   "RETURNING queue, id, payload, priority, run_at, "
                   "attempts, backoff_ms, backoff_exp, timeout_ms, keep",
                   p, swept, NULL) == 0)
                rq->sweeping = true;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_queue *q = arg;
        struct redis_queue *rq = q->be_state;
        struct timeval tv = pxl_ms_timeval(OUTBOX_SWEEP_MS);

        (void)fd;
        (void)what;
        sweep(q);
        evtimer_add(rq->sweep_timer, &tv);
}

static bool redis_in_tx(const struct pxl_queue *q)
{
        return ((const struct redis_queue *)q->be_state)->db != NULL;
}

static void redis_renew(struct pxl_queue *q)
{
        for (size_t i = 0; i < q->n; i++) {
                struct pxl_queue_line *qu = &q->v[i];
                const char *argv[1 + 3 * PXL_QUEUE_MAX_CLAIM];
                size_t lens[1 + 3 * PXL_QUEUE_MAX_CLAIM];
                struct pxl_job *job;
                int argc = 1;

                argv[0] = q->owner;
                lens[0] = strlen(q->owner);
                LIST_FOREACH(job, &q->jobs, link)
                {
                        const char *slash;

                        if (job->queue != qu || job->ended ||
                            job->token == NULL ||
                            (slash = strchr(job->token, '/')) == NULL)
                                continue;
                        argv[argc] = job->token;
                        lens[argc++] = (size_t)(slash - job->token);
                        argv[argc] = slash + 1;
                        lens[argc++] = strlen(slash + 1);
                        argv[argc] = job->id;
                        lens[argc++] = strlen(job->id);
                        if (argc + 3 > (int)(sizeof(argv) / sizeof(*argv))) {
                                run(q, S_RENEW, line_of(qu)->key, argc, argv,
                                    lens, NULL, NULL);
                                argc = 1;
                        }
                }
                if (argc > 1)
                        run(q, S_RENEW, line_of(qu)->key, argc, argv, lens,
                            NULL, NULL);
        }
}

static void counted(struct pxl_queue *q, struct redisReply *r, void *arg)
{
        (void)arg;
        if (reply_error(r) != NULL || r->type != REDIS_REPLY_ARRAY)
                return;
        for (size_t i = 0; i < r->elements; i++) {
                const struct redisReply *e = r->element[i];
                struct pxl_queue_line *qu;

                if (e->type != REDIS_REPLY_ARRAY || e->elements < 6 ||
                    (qu = pxl_queue_line_find(q, str_of(e->element[0],
                                                        NULL))) == NULL)
                        continue;
                qu->waiting = num_of(e->element[1]);
                qu->delayed = num_of(e->element[2]);
                qu->active = num_of(e->element[3]);
                qu->completed = num_of(e->element[4]);
                qu->dead = num_of(e->element[5]);
        }
}

static void redis_count(struct pxl_queue *q)
{
        struct redis_queue *rq = q->be_state;
        const char **argv = calloc(q->n + 1, sizeof(*argv));
        char now[24];

        if (argv == NULL)
                return;
        snprintf(now, sizeof(now), "%" PRId64, pxl_queue_now_ms());
        argv[0] = now;
        for (size_t i = 0; i < q->n; i++)
                argv[i + 1] = q->v[i].name;
        if ((int)q->n < MAX_ARGS)
                run(q, S_COUNT, rq->prefix, (int)q->n + 1, argv, NULL, counted,
                    NULL);
        free(argv);
}

static void given_back(struct pxl_queue *q, struct redisReply *r, void *arg)
{
        struct pxl_queue_line *qu = arg;

        (void)q;
        if (reply_error(r) != NULL)
                pxl_logs(PXL_LOG_WARN,
                         "queue %s: running jobs not given back (%s): they "
                         "run again after queue.stalled_after",
                         qu->name, reply_error(r));
}

static void redis_give_back(struct pxl_queue *q)
{
        for (size_t i = 0; i < q->n; i++) {
                struct pxl_queue_line *qu = &q->v[i];
                const char *argv[1] = {q->owner};

                /* What the blocking read takes before this is given too. */
                redis_wake(qu);
                if (run(q, S_GIVE_BACK, line_of(qu)->key, 1, argv, NULL,
                        given_back, qu) < 0)
                        given_back(q, NULL, qu);
        }
}

/* ---- the back end ------------------------------------------------------- */

static void on_client_id(void *owner, struct redisReply *r, void *arg)
{
        struct redis_line *rl = arg;

        (void)owner;
        if (r != NULL && r->type == REDIS_REPLY_INTEGER)
                rl->client_id = r->integer;
}

static void blocking_up(void *arg)
{
        struct redis_line *rl = arg;
        const char *argv[2] = {"CLIENT", "ID"};
        size_t lens[2] = {6, 2};

        rl->client_id = 0;
        pxl_redis_queue_command(rl->blocking, on_client_id, rl, 2, argv, lens);
}

static void blocking_down(void *arg)
{
        struct redis_line *rl = arg;

        rl->client_id = 0;
}

/* With an app database: the outbox of pxl_job_add_tx. */
int pxl_queue_redis_prepare(const struct pxl_worker *srv,
                            struct pxl_str *errors)
{
        if (!srv->conf->database.enabled)
                return 0;
        return pxl_db_exec(srv->conf, PXL_QUEUE_OUTBOX_SCHEMA, errors);
}

static void line_free(struct redis_line *rl)
{
        if (rl == NULL)
                return;
        batch_fini(&rl->adds, rl->qu->q);
        batch_fini(&rl->finishes, rl->qu->q);
        pxl_redis_stop(rl->blocking); /* its pending read answers NULL */
        if (rl->due_timer != NULL)
                event_free(rl->due_timer);
        for (size_t i = 0; i < rl->nlevels; i++)
                free(rl->levels[i]);
        free(rl->levels);
        free(rl);
}

static void redis_stop(struct pxl_queue *q)
{
        struct redis_queue *rq = q->be_state;

        if (rq == NULL)
                return;
        for (size_t i = 0; i < q->n; i++) {
                line_free(q->v[i].be);
                q->v[i].be = NULL;
        }
        if (rq->sweep_timer != NULL)
                event_free(rq->sweep_timer);
        q->be_state = NULL;
        free(rq);
}

static int redis_start(struct pxl_queue *q, struct pxl_str *errors)
{
        struct pxl_worker *srv = q->srv;
        struct redis_queue *rq;

        if (!scripts_ready) {
                for (int s = 0; s < S_N; s++)
                        if (pxl_redis_script_init(&scripts[s],
                                                  script_text[s]) < 0) {
                                pxl_str_puts(errors, "queue: cannot hash the "
                                                     "Lua scripts\n");
                                return PXL_ERR;
                        }
                scripts_ready = true;
        }
        if (srv->redis == NULL) {
                pxl_str_puts(errors, "queue: no Redis connection\n");
                return PXL_ERR;
        }
        if ((rq = calloc(1, sizeof(*rq))) == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        q->be_state = rq;
        rq->q = q;
        rq->redis = srv->redis;
        snprintf(rq->prefix, sizeof(rq->prefix), "%s",
                 pxl_redis_app_prefix(srv->redis));
        snprintf(rq->queues_key, sizeof(rq->queues_key), "%squeues",
                 rq->prefix);
        rq->db = pxl_db_app(srv);
        if (rq->db != NULL) {
                struct timeval tv = pxl_ms_timeval(OUTBOX_SWEEP_MS / 10);

                if ((rq->sweep_timer = evtimer_new(srv->base, on_sweep, q)) ==
                    NULL) {
                        pxl_str_puts(errors, "out of memory\n");
                        return PXL_ENOMEM;
                }
                evtimer_add(rq->sweep_timer, &tv); /* first soon */
        }
        for (size_t i = 0; i < q->n; i++) {
                struct pxl_queue_line *qu = &q->v[i];
                size_t klen = strlen(rq->prefix) + strlen(qu->name) + 3;
                struct redis_line *rl = calloc(1, sizeof(*rl) + klen + 1);

                if (rl == NULL) {
                        pxl_str_puts(errors, "out of memory\n");
                        return PXL_ENOMEM;
                }
                qu->be = rl;
                rl->qu = qu;
                rl->rq = rq;
                rl->key_len = (size_t)snprintf(rl->key, klen + 1, "%sq:%s:",
                                               rq->prefix, qu->name);
                if (batch_init(&rl->adds, rl, S_ADD, srv->base) < 0 ||
                    batch_init(&rl->finishes, rl, S_FINISH, srv->base) < 0) {
                        pxl_str_puts(errors, "out of memory\n");
                        return PXL_ENOMEM;
                }
                if (qu->rate != 0)
                        continue; /* never waits on a blocking read */
                rl->due_timer = evtimer_new(srv->base, on_due, rl);
                if (rl->due_timer == NULL) {
                        pxl_str_puts(errors, "out of memory\n");
                        return PXL_ENOMEM;
                }
                rl->blocking = pxl_redis_start(
                        &(struct pxl_redis_owner){
                                .base = srv->base,
                                .conf = &srv->conf->redis,
                                .app = srv->conf->name,
                                .file = srv->conf->file,
                                .up = blocking_up,
                                .down = blocking_down,
                                .arg = rl,
                                .published = &rl->unused_counts[0],
                                .received = &rl->unused_counts[1],
                                .dropped = &rl->unused_counts[2],
                                .blocking = true},
                        errors);
                if (rl->blocking == NULL)
                        return PXL_ERR;
        }
        return PXL_OK;
}

const struct pxl_queue_backend pxl_queue_redis = {
        .name = "redis",
        .start = redis_start,
        .stop = redis_stop,
        .add = redis_add,
        .claim = redis_claim,
        .wake = redis_wake,
        .finish = redis_finish,
        .progress = redis_progress,
        .renew = redis_renew,
        .give_back = redis_give_back,
        .count = redis_count,
        .in_tx = redis_in_tx,
};
