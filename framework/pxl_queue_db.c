/*
 * pxl_queue_db.c - the queue's statements on a database of the database
 * layer, for both back ends: the jobs table of the SQLite back end, and
 * the outbox of pxl_job_add_tx with Redis. Each statement counts as a
 * back-end call in flight (pxl_queue_hold) until it is answered.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_db.h"
#include "pxl_log.h"
#include "pxl_queue_int.h"

struct call {
        struct pxl_queue *q;
        pxl_queue_db_fn *done;
        void *arg;
};

static void call_done(struct pxl_ctx *ctx, const struct pxl_db_result *res,
                      void *arg)
{
        struct call *c = arg;
        struct pxl_queue *q = c->q;

        (void)ctx;
        if (c->done != NULL)
                c->done(q, res, c->arg);
        free(c);
        pxl_queue_release(q);
}

int pxl_queue_db_run(struct pxl_queue *q, struct pxl_db *db,
                     struct pxl_db_tx *tx, const char *sql,
                     struct json_object *p, pxl_queue_db_fn *done, void *arg)
{
        struct call *c = malloc(sizeof(*c));
        int rc = PXL_ENOMEM;

        if (c != NULL && p != NULL) {
                c->q = q;
                c->done = done;
                c->arg = arg;
                rc = tx ? pxl_db_tx_query(tx, sql, p, call_done, c)
                        : pxl_db_run(db, NULL, sql, p, call_done, c);
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
        pxl_queue_hold(q);
        return PXL_OK;
}

struct adding {
        pxl_queue_added_fn *done;
        void *arg;
};

static void inserted(struct pxl_queue *q, const struct pxl_db_result *res,
                     void *arg)
{
        struct adding *a = arg;

        a->done(q, a->arg,
                pxl_db_error(res) == NULL && pxl_db_affected(res) == 0,
                pxl_db_error(res));
        free(a);
}

int pxl_queue_db_insert(struct pxl_queue *q, struct pxl_db *db,
                        struct pxl_db_tx *tx, const char *table,
                        const struct pxl_queue_new *nj,
                        pxl_queue_added_fn *done, void *arg)
{
        const int64_t vals[] = {nj->priority,   nj->run_at,      nj->attempts,
                                nj->backoff_ms, nj->backoff_exp, nj->timeout_ms,
                                nj->keep,       nj->now};
        struct json_object *p = json_object_new_array();
        struct adding *a = malloc(sizeof(*a));
        char sql[512];
        int rc;

        if (p == NULL || a == NULL) {
                json_object_put(p);
                free(a);
                return PXL_ENOMEM;
        }
        a->done = done;
        a->arg = arg;
        json_object_array_add(p, json_object_new_string(nj->queue));
        json_object_array_add(p, json_object_new_string(nj->id));
        json_object_array_add(p, json_object_new_string_len(
                                         nj->payload, (int)nj->payload_len));
        for (size_t i = 0; i < sizeof(vals) / sizeof(*vals); i++)
                json_object_array_add(p, json_object_new_int64(vals[i]));
        snprintf(sql, sizeof(sql),
                 "INSERT INTO %s (queue, id, payload, priority, run_at, "
                 "attempts, backoff_ms, backoff_exp, timeout_ms, keep, "
                 "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
                 "$10, $11) ON CONFLICT (queue, id) DO NOTHING",
                 table);
        rc = pxl_queue_db_run(q, db, tx, sql, p, inserted, a);
        if (rc < 0)
                free(a);
        return rc;
}
