/*
 * pxl_jobs_redis.c - pxl-jobs' store with a `redis` group: the keys of
 * pxl_queue_lua.h, read and changed with its scripts (every change is
 * one script, atomic) over one blocking hiredis connection, set up as
 * pxl-serve's (socket or host and port, AUTH, SELECT, connect_timeout).
 * It never creates a queue: without its keys there are no jobs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "pxl_conf.h"
#include "pxl_jobs.h"
#include "pxl_queue_int.h"
#include "pxl_queue_lua.h"
#include "pxl_redis.h"

/* Jobs a script looks at per call (see pxl_queue_lua.h). */
#define BATCH     1000
#define TEXT_(x)  #x
#define TEXT(x)   TEXT_(x)
#define BATCH_TXT TEXT(BATCH)

struct redis_jobs {
        redisContext *c;
        char where[300];    /* host:port or the socket, for messages */
        char prefix[80];    /* P: "pxl:" app ":" */
        int64_t stalled_ms; /* queue.stalled_after: a lease's length */
};

static struct redis_jobs *state_of(const struct pxl_jobs *j)
{
        return j->be;
}

/*
 * Run argv; the reply, or NULL after saying why (naming what): no
 * answer, or an error reply. The caller frees it.
 */
static redisReply *call(const struct pxl_jobs *j, const char *what, int argc,
                        const char **argv)
{
        struct redis_jobs *r = state_of(j);
        size_t *lens = calloc((size_t)argc, sizeof(*lens));
        const char *why = "out of memory";
        redisReply *rep = NULL;

        if (lens != NULL) {
                for (int i = 0; i < argc; i++)
                        lens[i] = strlen(argv[i]);
                rep = redisCommandArgv(r->c, argc, argv, lens);
                why = r->c->errstr;
                free(lens);
        }
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "pxl-jobs: redis at %s: %s: %s\n", r->where,
                        what, rep != NULL ? rep->str : why);
                if (rep != NULL)
                        freeReplyObject(rep);
                return NULL;
        }
        return rep;
}

/* EVAL text with key and up to 4 arguments; as call. */
static redisReply *script(const struct pxl_jobs *j, const char *what,
                          const char *text, const char *key, int argc,
                          const char **args)
{
        const char *argv[8] = {"EVAL", text, "1", key};

        for (int i = 0; i < argc && i < 4; i++)
                argv[4 + i] = args[i];
        return call(j, what, 4 + (argc < 4 ? argc : 4), argv);
}

/* Element i of an array reply, or NULL. */
static const redisReply *elem(const redisReply *r, size_t i)
{
        return r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements
                       ? r->element[i]
                       : NULL;
}

/* An integer reply, or a string of digits; 0 for anything else. */
static int64_t num(const redisReply *r)
{
        if (r != NULL && r->type == REDIS_REPLY_INTEGER)
                return r->integer;
        if (r != NULL && r->type == REDIS_REPLY_STRING)
                return strtoll(r->str, NULL, 10);
        return 0;
}

/* v = the string or integer reply r; unset for nil. false: no memory. */
static bool set_reply(struct pxl_jobs_value *v, const redisReply *r)
{
        if (r != NULL && r->type == REDIS_REPLY_INTEGER)
                return pxl_jobs_set_int(v, r->integer);
        if (r != NULL && r->type == REDIS_REPLY_STRING)
                return pxl_jobs_set(v, r->str, r->len);
        return pxl_jobs_set(v, NULL, 0);
}

static int out_of_memory(redisReply *rep)
{
        if (rep != NULL)
                freeReplyObject(rep);
        fputs("pxl-jobs: out of memory\n", stderr);
        return JOBS_ERROR;
}

/*
 * Whether a queue can have that name: pxl_queue.c takes 1 to 64 of
 * a-z 0-9 _ . -. No key is made of any other name: such a queue has no
 * jobs.
 */
static bool good_queue(const char *queue)
{
        size_t n = strlen(queue);

        return n > 0 && n <= PXL_QUEUE_MAX_NAME &&
               strspn(queue, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* Q of queue in out; false when no queue can have that name. */
static bool queue_key(const struct pxl_jobs *j, const char *queue, char *out,
                      size_t cap)
{
        if (!good_queue(queue))
                return false;
        snprintf(out, cap, "%sq:%s:", state_of(j)->prefix, queue);
        return true;
}

/* A job's state as pxl-jobs(1) names it: a delayed one is waiting. */
static const char *state_name(const char *s)
{
        return strcmp(s, "delayed") == 0 ? "waiting" : s;
}

static int redis_open(struct pxl_jobs *j, const struct pxl_config *conf)
{
        struct redis_jobs *r = calloc(1, sizeof(*r));
        char why[512];

        if (r == NULL)
                return out_of_memory(NULL);
        j->be = r;
        pxl_redis_where(&conf->redis, r->where, sizeof(r->where));
        snprintf(r->prefix, sizeof(r->prefix),
                 "pxl:%s:", conf->name != NULL ? conf->name : "");
        r->stalled_ms = (int64_t)conf->queue.stalled_after * 1000;
        r->c = pxl_redis_connect_blocking(&conf->redis, why, sizeof(why));
        if (r->c == NULL) {
                fprintf(stderr, "pxl-jobs: redis at %s cannot be used: %s\n",
                        r->where, why);
                return JOBS_ERROR;
        }
        return JOBS_DONE;
}

static void redis_close(struct pxl_jobs *j)
{
        struct redis_jobs *r = state_of(j);

        if (r != NULL && r->c != NULL)
                redisFree(r->c);
        free(r);
        j->be = NULL;
}

static int by_name(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* P queues, and the counts of each with jobs (PXL_QUEUE_LUA_COUNT). */
static int redis_queues(struct pxl_jobs *j, struct pxl_jobs_rows *out)
{
        const char *argv[] = {"SMEMBERS", NULL};
        char key[128], now[24];
        redisReply *names, *rep = NULL;
        const char **av;
        int ac = 0, rc = JOBS_DONE;

        snprintf(key, sizeof(key), "%squeues", state_of(j)->prefix);
        argv[1] = key;
        if ((names = call(j, "listing the queues", 2, argv)) == NULL)
                return JOBS_ERROR;
        if ((av = calloc(names->elements + 5, sizeof(*av))) == NULL)
                return out_of_memory(names);
        snprintf(now, sizeof(now), "%" PRId64, j->now);
        av[ac++] = "EVAL";
        av[ac++] = PXL_QUEUE_LUA_COUNT;
        av[ac++] = "1";
        av[ac++] = state_of(j)->prefix;
        av[ac++] = now;
        for (size_t i = 0; i < names->elements; i++)
                if (names->element[i]->type == REDIS_REPLY_STRING &&
                    good_queue(names->element[i]->str))
                        av[ac++] = names->element[i]->str;
        qsort(av + 5, (size_t)ac - 5, sizeof(*av), by_name);
        if (ac > 5 && (rep = call(j, "counting the jobs", ac, av)) == NULL)
                rc = JOBS_ERROR;
        /* {NAME, waiting, delayed, active, completed, dead} each. */
        for (size_t i = 0; rep != NULL && i < rep->elements; i++) {
                const redisReply *e = rep->element[i];
                struct pxl_jobs_value *row;
                int64_t any = 0;

                for (size_t k = QC_QUEUE + 1; k < QC_N; k++)
                        any |= num(elem(e, k));
                if (any == 0)
                        continue; /* a queue without jobs is not listed */
                row = pxl_jobs_row_new(out);
                for (size_t k = 0; row != NULL && k < QC_N; k++)
                        if (!set_reply(&row[k], elem(e, k)))
                                row = NULL;
                if (row == NULL) {
                        rc = out_of_memory(NULL);
                        break;
                }
        }
        if (rep != NULL)
                freeReplyObject(rep);
        free(av);
        freeReplyObject(names);
        return rc;
}

/* The column of a job's field named f, or -1. */
static int column_of(const char *f)
{
        for (int i = 0; i < JC_N; i++)
                if (strcmp(pxl_jobs_job_columns[i].name, f) == 0)
                        return i;
        return -1;
}

static int redis_show(struct pxl_jobs *j, const char *queue, const char *id,
                      struct pxl_jobs_rows *out)
{
        const char *args[] = {id};
        const redisReply *h;
        struct pxl_jobs_value *row;
        redisReply *rep;
        int64_t idle;
        char q[160];
        bool ok;

        if (!queue_key(j, queue, q, sizeof(q)))
                return JOBS_NOT_FOUND;
        rep = script(j, "reading the job", PXL_QUEUE_LUA_SHOW, q, 1, args);
        if (rep == NULL)
                return JOBS_ERROR;
        /* {the hash's fields and values, the entry's idle ms or -1} */
        h = elem(rep, 0);
        if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
                freeReplyObject(rep);
                return JOBS_NOT_FOUND;
        }
        idle = num(elem(rep, 1));
        if ((row = pxl_jobs_row_new(out)) == NULL)
                return out_of_memory(rep);
        ok = pxl_jobs_set(&row[JC_QUEUE], queue, strlen(queue)) &&
             pxl_jobs_set(&row[JC_ID], id, strlen(id));
        for (size_t i = 0; ok && i + 1 < h->elements; i += 2) {
                const redisReply *f = h->element[i], *v = h->element[i + 1];
                int c = f->type == REDIS_REPLY_STRING ? column_of(f->str) : -1;

                if (c == JC_STATE && v->type == REDIS_REPLY_STRING)
                        ok = pxl_jobs_set(&row[c], state_name(v->str),
                                          strlen(state_name(v->str)));
                else if (c >= 0 && c != JC_QUEUE && c != JC_ID &&
                         c != JC_LEASE_UNTIL)
                        ok = set_reply(&row[c], v);
        }
        /*
         * The lease: XAUTOCLAIM takes the entry once idle for
         * stalled_after. The idle time is as of the script, which ran
         * just before now (j->now is older: it was read before
         * connecting).
         */
        if (ok && idle >= 0)
                ok = pxl_jobs_set_int(&row[JC_LEASE_UNTIL],
                                      pxl_jobs_now_ms() - idle +
                                              state_of(j)->stalled_ms);
        if (!ok)
                return out_of_memory(rep);
        freeReplyObject(rep);
        return JOBS_DONE;
}

static int redis_dead(struct pxl_jobs *j, const char *queue,
                      struct pxl_jobs_rows *out)
{
        char q[160], after[64] = "";
        const char *args[] = {after, BATCH_TXT};
        int64_t seen = BATCH;

        if (!queue_key(j, queue, q, sizeof(q)))
                return JOBS_DONE;
        while (seen == BATCH) {
                redisReply *rep = script(j, "listing the dead jobs",
                                         PXL_QUEUE_LUA_DEAD, q, 2, args);

                if (rep == NULL)
                        return JOBS_ERROR;
                /* {looked at, the last entry, {id, attempt, ...}...} */
                seen = num(elem(rep, 0));
                snprintf(after, sizeof(after), "%s",
                         elem(rep, 1) != NULL && elem(rep, 1)->str != NULL
                                 ? elem(rep, 1)->str
                                 : "");
                for (size_t i = 2; i < rep->elements; i++) {
                        struct pxl_jobs_value *row = pxl_jobs_row_new(out);

                        for (size_t k = 0; row != NULL && k < DC_N; k++)
                                if (!set_reply(&row[k],
                                               elem(rep->element[i], k)))
                                        row = NULL;
                        if (row == NULL)
                                return out_of_memory(rep);
                }
                freeReplyObject(rep);
        }
        return JOBS_DONE;
}

/*
 * Run a script that changes up to a batch of jobs a call and answers
 * {changed, looked at}, until a batch comes back short; *n: changed.
 */
/*
 * Run a batch script until a batch is not full ({done, looked at});
 * until_idle: or until one does nothing (what it looked at stays).
 */
static int batches(const struct pxl_jobs *j, const char *what, const char *text,
                   const char *key, int argc, const char **args, int64_t *n,
                   bool until_idle)
{
        int64_t seen = BATCH, done = 1;

        while (seen == BATCH && (done > 0 || !until_idle)) {
                redisReply *rep = script(j, what, text, key, argc, args);

                if (rep == NULL)
                        return JOBS_ERROR;
                done = num(elem(rep, 0));
                *n += done;
                seen = num(elem(rep, 1));
                freeReplyObject(rep);
        }
        return JOBS_DONE;
}

static int redis_retry(struct pxl_jobs *j, const char *queue, const char *id,
                       int64_t *n, char **state)
{
        char q[160], key[200], now[24], last[64];
        const char *args[] = {now, id != NULL ? id : "", last, BATCH_TXT};
        const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", "1"};
        const redisReply *s;
        redisReply *rep;

        if (!queue_key(j, queue, q, sizeof(q)))
                return JOBS_DONE;
        snprintf(now, sizeof(now), "%" PRId64, j->now);
        if (id != NULL) {
                rep = script(j, "retrying", PXL_QUEUE_LUA_RETRY, q, 2, args);
                if (rep == NULL)
                        return JOBS_ERROR;
                /* {retried, 1, the state of a job that is not dead} */
                *n = num(elem(rep, 0));
                s = elem(rep, 2);
                if (s != NULL && s->type == REDIS_REPLY_STRING &&
                    (*state = strdup(state_name(s->str))) == NULL)
                        return out_of_memory(rep);
                freeReplyObject(rep);
                return JOBS_DONE;
        }
        /* Every job dead by now: up to the newest entry of Q dead. */
        snprintf(key, sizeof(key), "%sdead", q);
        if ((rep = call(j, "listing the dead jobs", 6, argv)) == NULL)
                return JOBS_ERROR;
        s = elem(elem(rep, 0), 0);
        snprintf(last, sizeof(last), "%s",
                 s != NULL && s->type == REDIS_REPLY_STRING ? s->str : "");
        freeReplyObject(rep);
        if (last[0] == '\0')
                return JOBS_DONE;
        return batches(j, "retrying", PXL_QUEUE_LUA_RETRY, q, 4, args, n,
                       false);
}

static int redis_clean(struct pxl_jobs *j, const char *queue, int64_t before,
                       int64_t *n)
{
        char q[160], max[32] = "+inf", spare[24];
        const char *args[] = {max, BATCH_TXT, spare};

        if (!queue_key(j, queue, q, sizeof(q)))
                return JOBS_DONE;
        if (before >= 0)
                snprintf(max, sizeof(max), "(%" PRId64, before);
        snprintf(spare, sizeof(spare), "%" PRId64,
                 j->now - PXL_QUEUE_SCHEDULE_KEEP_MS);
        return batches(j, "removing completed jobs", PXL_QUEUE_LUA_CLEAN, q, 3,
                       args, n, true);
}

const struct pxl_jobs_store pxl_jobs_redis = {
        .name = "redis",
        .open = redis_open,
        .close = redis_close,
        .queues = redis_queues,
        .show = redis_show,
        .dead = redis_dead,
        .retry = redis_retry,
        .clean = redis_clean,
};
