/*
 * pxl_db.c - the app's database as plugins see it (pxl.h's pxl_db_*):
 * parameters from JSON, results and their JSON, transactions kept in
 * order on one connection, and the service that runs a back end
 * (pxl_db_sqlite.c or pxl_db_pg.c) in each serving worker. The core
 * knows none of it: the service and a watcher of departed clients are
 * the hooks it plugs into.
 *
 * Every job has one owner at a time: the transaction's queue, the back
 * end (submit .. pxl_db_done), or the ready list of jobs finished here
 * without reaching a back end. Callbacks run from the loop only, never
 * inside the pxl_db_* call that queued them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_db.h"
#include "pxl_db_int.h"
#include "pxl_int.h"
#include "pxl_log.h"
#include "pxl_worker.h"

/* ---- parameters ------------------------------------------------------- */

/* pxl_db_bytes marks its strings with this tag as their userdata. */
static const char bytes_tag = 'b';

struct json_object *pxl_db_bytes(const void *buf, size_t len)
{
        struct json_object *o;

        if (len > INT32_MAX) /* json-c's string length is an int */
                return NULL;
        o = json_object_new_string_len(buf ? buf : "", (int)len);
        if (o != NULL)
                json_object_set_userdata(o, (void *)&bytes_tag, NULL);
        return o;
}

static bool is_bytes(struct json_object *v)
{
        return json_object_get_userdata(v) == &bytes_tag;
}

/* A number's kind from its text: INT when it is an integer int64 holds. */
static enum pxl_db_param_kind number_kind(const char *text, int64_t *i)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0')
                return PXL_DB_PARAM_NUMBER;
        *i = v;
        return PXL_DB_PARAM_INT;
}

/* JSON's number grammar: a database's "NaN" or "1e5000" stays a string. */
static bool json_number_text(const char *s)
{
        const char *p = s;

        if (*p == '-')
                p++;
        if (*p == '0')
                p++;
        else if (*p >= '1' && *p <= '9')
                while (*p >= '0' && *p <= '9')
                        p++;
        else
                return false;
        if (*p == '.') {
                if (*++p < '0' || *p > '9')
                        return false;
                while (*p >= '0' && *p <= '9')
                        p++;
        }
        if (*p == 'e' || *p == 'E') {
                p++;
                if (*p == '+' || *p == '-')
                        p++;
                if (*p < '0' || *p > '9')
                        return false;
                while (*p >= '0' && *p <= '9')
                        p++;
        }
        return *p == '\0';
}

/*
 * One parameter's kind and text (borrowed from v or static). Text of
 * numbers, objects and arrays is json-c's, valid until v prints again.
 */
static int param_of(struct json_object *v, size_t k, struct pxl_db_param *p,
                    char *err, size_t errlen)
{
        memset(p, 0, sizeof(*p));
        switch (json_object_get_type(v)) {
        case json_type_null:
                p->kind = PXL_DB_PARAM_NULL;
                return 0;
        case json_type_boolean:
                p->kind = PXL_DB_PARAM_BOOL;
                p->i = json_object_get_boolean(v);
                p->text = p->i ? "true" : "false";
                break;
        case json_type_int:
        case json_type_double:
                /* A parsed number prints as it was written. */
                p->text = json_object_to_json_string_ext(
                        v, JSON_C_TO_STRING_PLAIN);
                if (!json_number_text(p->text)) { /* NaN, Infinity */
                        snprintf(err, errlen,
                                 "parameter $%zu: not a finite number", k);
                        return PXL_EINVAL;
                }
                p->kind = number_kind(p->text, &p->i);
                break;
        case json_type_string:
                p->text = json_object_get_string(v);
                p->len = (size_t)json_object_get_string_len(v);
                if (is_bytes(v)) {
                        p->kind = PXL_DB_PARAM_BYTES;
                        return 0;
                }
                p->kind = PXL_DB_PARAM_TEXT;
                if (memchr(p->text, '\0', p->len) != NULL) {
                        snprintf(err, errlen,
                                 "parameter $%zu: text contains a NUL byte "
                                 "(pass binary data with pxl_db_bytes)",
                                 k);
                        return PXL_EINVAL;
                }
                return 0;
        case json_type_object:
        case json_type_array:
                /* JSON for a json/jsonb (or text) column. */
                p->kind = PXL_DB_PARAM_TEXT;
                p->text = json_object_to_json_string_ext(
                        v, JSON_C_TO_STRING_PLAIN);
                break;
        }
        p->len = strlen(p->text);
        return 0;
}

int pxl_db_params(const struct json_object *params, struct pxl_db_param **out,
                  size_t *n, char *err, size_t errlen)
{
        struct json_object *arr = (struct json_object *)params;
        size_t count = 0, bytes = 0;
        struct pxl_db_param *v;
        char *text;
        int rc;

        *out = NULL;
        *n = 0;
        if (arr != NULL && !json_object_is_type(arr, json_type_array)) {
                snprintf(err, errlen, "params must be a JSON array");
                return PXL_EINVAL;
        }
        if (arr != NULL)
                count = json_object_array_length(arr);
        if (count == 0)
                return 0;
        /* Sizes first: one allocation holds the array and every text. */
        for (size_t k = 0; k < count; k++) {
                struct pxl_db_param p;

                rc = param_of(json_object_array_get_idx(arr, k), k + 1, &p, err,
                              errlen);
                if (rc < 0)
                        return rc;
                bytes += p.text ? p.len + 1 : 0;
        }
        v = malloc(count * sizeof(*v) + bytes);
        if (v == NULL)
                return PXL_ENOMEM;
        text = (char *)(v + count);
        for (size_t k = 0; k < count; k++) {
                rc = param_of(json_object_array_get_idx(arr, k), k + 1, &v[k],
                              err, errlen);
                if (rc < 0) { /* cannot differ from the first pass */
                        free(v);
                        return rc;
                }
                if (v[k].text == NULL)
                        continue;
                memcpy(text, v[k].text, v[k].len);
                text[v[k].len] = '\0';
                v[k].text = text;
                text += v[k].len + 1;
        }
        *out = v;
        *n = count;
        return 0;
}

/* ---- SQL text ------------------------------------------------------- */

/* Past white space, semicolons and comments, as SQLite's tokenizer. */
const char *pxl_db_sql_skip_blank(const char *p, const char *end)
{
        while (p < end) {
                if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
                    *p == '\f' || *p == ';') {
                        p++;
                } else if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
                        p = memchr(p, '\n', (size_t)(end - p));
                        if (!p)
                                return end;
                } else if (end - p >= 2 && p[0] == '/' && p[1] == '*') {
                        const char *q = p + 2;

                        /* SQLite ends an open comment at the end. */
                        while (q < end &&
                               !(q[0] == '*' && q + 1 < end && q[1] == '/'))
                                q++;
                        if (q >= end)
                                return end;
                        p = q + 2;
                } else {
                        break;
                }
        }
        return p;
}

/* The keyword at *p (after blanks), advancing *p past it. */
static bool keyword(const char **p, const char *end, const char *word)
{
        const char *q = pxl_db_sql_skip_blank(*p, end);
        size_t n = strlen(word);

        if ((size_t)(end - q) < n || strncasecmp(q, word, n) != 0)
                return false;
        if (q + n < end &&
            ((q[n] >= 'a' && q[n] <= 'z') || (q[n] >= 'A' && q[n] <= 'Z') ||
             (q[n] >= '0' && q[n] <= '9') || q[n] == '_'))
                return false;
        *p = q + n;
        return true;
}

/*
 * BEGIN, START TRANSACTION, COMMIT, END, ABORT or ROLLBACK (but not
 * ROLLBACK TO, which stays inside the transaction). A plain query must
 * not open or end one: the pooled connection (or SQLite's writer or a
 * reader) would be left holding it, or a pxl_db_begin transaction
 * would end behind pxl's back.
 */
static bool is_tx_control(const char *sql)
{
        const char *p = sql, *end = sql + strlen(sql);

        if (keyword(&p, end, "BEGIN") || keyword(&p, end, "COMMIT") ||
            keyword(&p, end, "END") || keyword(&p, end, "ABORT") ||
            (keyword(&p, end, "START") && keyword(&p, end, "TRANSACTION")))
                return true;
        if (!keyword(&p, end, "ROLLBACK"))
                return false;
        if (!keyword(&p, end, "TRANSACTION"))
                keyword(&p, end, "WORK");
        return !keyword(&p, end, "TO");
}

/* ---- results ---------------------------------------------------------- */

void pxl_db_result_fail(struct pxl_db_result *r, const char *sqlstate,
                        const char *fmt, ...)
{
        va_list ap;
        char *text = NULL;

        va_start(ap, fmt);
        if (vasprintf(&text, fmt, ap) < 0)
                text = NULL;
        va_end(ap);
        free(r->error);
        /* Out of memory still fails the job, with a static-free text. */
        r->error = text ? text : strdup("out of memory");
        snprintf(r->sqlstate, sizeof(r->sqlstate), "%s",
                 sqlstate ? sqlstate : "");
}

int pxl_db_result_columns(struct pxl_db_result *r, size_t ncols)
{
        r->ncols = ncols;
        r->nrows = 0;
        return 0;
}

int pxl_db_result_put(struct pxl_db_result *r, enum pxl_db_kind kind,
                      const char *p, size_t len)
{
        struct pxl_db_cell *c;

        if (r->ncells == r->cells_cap) {
                size_t cap = r->cells_cap ? r->cells_cap * 2 : 16;
                struct pxl_db_cell *cells =
                        realloc(r->cells, cap * sizeof(*cells));

                if (cells == NULL)
                        return PXL_ENOMEM;
                r->cells = cells;
                r->cells_cap = cap;
        }
        c = &r->cells[r->ncells];
        c->off = r->text.len;
        c->len = p ? len : 0;
        c->kind = kind;
        c->null = p == NULL;
        /* Every value NUL-terminated: plugins read them as C strings. */
        if (pxl_str_reserve(&r->text, c->len + 1) < 0)
                return PXL_ENOMEM;
        if (p != NULL && len > 0)
                memcpy(r->text.p + r->text.len, p, len);
        r->text.p[r->text.len + c->len] = '\0';
        r->text.len += c->len + 1;
        r->ncells++;
        if (r->ncols > 0 && r->ncells > r->ncols &&
            (r->ncells - r->ncols) % r->ncols == 0)
                r->nrows++;
        return 0;
}

void pxl_db_result_fini(struct pxl_db_result *r)
{
        if (r->ops != NULL && r->ops->release != NULL)
                r->ops->release(r);
        free(r->error);
        free(r->cells);
        pxl_str_fini(&r->text);
        memset(r, 0, sizeof(*r));
}

const char *pxl_db_error(const struct pxl_db_result *res)
{
        return res->error;
}

const char *pxl_db_sqlstate(const struct pxl_db_result *res)
{
        return res->sqlstate;
}

size_t pxl_db_rows(const struct pxl_db_result *res)
{
        return res->nrows;
}

size_t pxl_db_columns(const struct pxl_db_result *res)
{
        return res->ncols;
}

int64_t pxl_db_affected(const struct pxl_db_result *res)
{
        return res->affected;
}

const char *pxl_db_column_name(const struct pxl_db_result *res, size_t col)
{
        if (col >= res->ncols)
                return NULL;
        if (res->ops != NULL)
                return res->ops->column_name(res, col);
        return res->text.p + res->cells[col].off;
}

static const struct pxl_db_cell *cell(const struct pxl_db_result *res,
                                      size_t row, size_t col)
{
        return &res->cells[res->ncols * (row + 1) + col];
}

const char *pxl_db_value(const struct pxl_db_result *res, size_t row,
                         size_t col, size_t *len)
{
        const struct pxl_db_cell *c;

        if (len != NULL)
                *len = 0;
        if (row >= res->nrows || col >= res->ncols)
                return NULL;
        if (res->ops != NULL)
                return res->ops->value(res, row, col, len);
        c = cell(res, row, col);
        if (c->null)
                return NULL;
        if (len != NULL)
                *len = c->len;
        return res->text.p + c->off;
}

static enum pxl_db_kind kind_of(const struct pxl_db_result *res, size_t row,
                                size_t col)
{
        if (res->ops != NULL)
                return res->ops->kind(res, row, col);
        return cell(res, row, col)->kind;
}

static struct json_object *value_json(const struct pxl_db_result *res,
                                      size_t row, size_t col, int *rc)
{
        size_t len;
        const char *v = pxl_db_value(res, row, col, &len);
        struct json_object *o = NULL;
        int64_t i;

        *rc = 0;
        if (v == NULL)
                return NULL; /* SQL NULL is JSON null */
        switch (kind_of(res, row, col)) {
        case PXL_DB_NUMBER:
                if (!json_number_text(v))
                        break;
                if (number_kind(v, &i) == PXL_DB_PARAM_INT)
                        o = json_object_new_int64(i);
                else /* keeps every digit on output */
                        o = json_object_new_double_s(strtod(v, NULL), v);
                goto done;
        case PXL_DB_BOOL:
                o = json_object_new_boolean(v[0] == 't' || v[0] == '1');
                goto done;
        case PXL_DB_JSON:
                o = json_tokener_parse(v);
                if (o != NULL || (len == 4 && memcmp(v, "null", 4) == 0))
                        return o;
                break;
        case PXL_DB_TEXT:
                break;
        }
        o = json_object_new_string_len(v, (int)len);
done:
        if (o == NULL)
                *rc = PXL_ENOMEM;
        return o;
}

struct json_object *pxl_db_row_json(const struct pxl_db_result *res, size_t row)
{
        struct json_object *obj;

        if (row >= res->nrows || (obj = json_object_new_object()) == NULL)
                return NULL;
        for (size_t col = 0; col < res->ncols; col++) {
                int rc;
                struct json_object *v = value_json(res, row, col, &rc);

                if (rc < 0 ||
                    json_object_object_add(obj, pxl_db_column_name(res, col),
                                           v) < 0) {
                        json_object_put(v);
                        json_object_put(obj);
                        return NULL;
                }
        }
        return obj;
}

struct json_object *pxl_db_rows_json(const struct pxl_db_result *res)
{
        struct json_object *arr = json_object_new_array_ext((int)res->nrows);

        if (arr == NULL)
                return NULL;
        for (size_t row = 0; row < res->nrows; row++) {
                struct json_object *obj = pxl_db_row_json(res, row);

                if (obj == NULL || json_object_array_add(arr, obj) < 0) {
                        json_object_put(obj);
                        json_object_put(arr);
                        return NULL;
                }
        }
        return arr;
}

/* ---- the worker's database ------------------------------------------- */

TAILQ_HEAD(tx_list, pxl_db_tx);

struct pxl_db {
        struct pxl_worker *srv;
        const struct pxl_db_conf *conf; /* borrowed: the app file's, or ours */
        const struct pxl_db_backend *backend;
        void *state;    /* the back end's */
        bool started;   /* the back end runs */
        bool stopping;  /* new jobs fail at once */
        size_t pending; /* jobs not yet delivered */
        /* For pxl_metrics(): statements answered, and those that failed. */
        uint64_t answered, failed;
        struct pxl_db_job_list ready; /* finished here, to deliver */
        struct event *ready_ev;
        struct tx_list txs; /* not yet freed */
};

/* What pxl_db.c keeps of a job; the job and it are one allocation. */
struct pxl_db_private {
        struct pxl_plugin_slot *plugin;
        pxl_db_result_fn *fn;
        void *arg;
        struct pxl_db_tx *tx;
        bool internal;       /* a rollback of ours: no plugin waits on it */
        bool refused;        /* its parameters were: it fails unsent */
        bool commit_refused; /* a COMMIT run as ROLLBACK after a failure */
};

struct pxl_db_tx {
        TAILQ_ENTRY(pxl_db_tx) link;
        struct pxl_db *db;
        struct pxl_plugin_slot *plugin;
        char *client_id;              /* whose request began it, or NULL */
        struct pxl_db_job_list queue; /* waiting for the one running */
        void *conn;                   /* the back end's, while bound */
        struct pxl_db_job *running;
        unsigned njobs; /* made and not yet delivered */
        bool ended;     /* the plugin committed or rolled back */
        bool dropped;   /* nobody will end it: freed when idle */
        /* the first error ("" none): what follows fails with it */
        char failed[512];
        char failed_state[6]; /* and its SQLSTATE */
        struct commit_hook *on_commit; /* pxl_db_tx_on_commit's, newest first */
};

struct commit_hook {
        struct commit_hook *next;
        void (*fn)(void *arg);
        void *arg;
};

static const struct pxl_service db_service;

static struct pxl_db *db_of(const struct pxl_ctx *ctx)
{
        if (ctx == NULL || ctx->srv == NULL)
                return NULL;
        return pxl_worker_service_state(ctx->srv, &db_service);
}

struct event_base *pxl_db_base(const struct pxl_db *db)
{
        return db->srv->base;
}

const struct pxl_db_conf *pxl_db_conf(const struct pxl_db *db)
{
        return db->conf;
}

const char *pxl_db_file(const struct pxl_db *db)
{
        return db->srv->conf->file;
}

static struct pxl_db_job *job_new(struct pxl_db *db, enum pxl_db_job_kind kind,
                                  const char *sql,
                                  const struct json_object *params,
                                  struct pxl_plugin_slot *plugin,
                                  pxl_db_result_fn *fn, void *arg, int *rc)
{
        size_t len = strlen(sql);
        struct pxl_db_job *job;
        struct pxl_db_param *pv;
        size_t np;
        char err[160];

        job = calloc(1, sizeof(*job) + sizeof(struct pxl_db_private) + len + 1);
        if (job == NULL) {
                *rc = PXL_ENOMEM;
                return NULL;
        }
        job->priv = (struct pxl_db_private *)(job + 1);
        job->kind = kind;
        job->sql = memcpy(job->priv + 1, sql, len + 1);
        job->sql_len = len;
        job->priv->plugin = plugin;
        job->priv->fn = fn;
        job->priv->arg = arg;
        *rc = pxl_db_params(params, &pv, &np, err, sizeof(err));
        if (*rc == PXL_ENOMEM) {
                free(job);
                return NULL;
        }
        /* A bad parameter is the query's failure, told through fn. */
        if (*rc < 0) {
                pxl_db_result_fail(&job->result, NULL, "%s", err);
                job->priv->refused = true;
        } else if (kind == PXL_DB_QUERY &&
                   pxl_db_sql_skip_blank(job->sql, job->sql + len) ==
                           job->sql + len) {
                pxl_db_result_fail(&job->result, NULL, "empty statement");
                job->priv->refused = true;
        } else if (kind == PXL_DB_QUERY && is_tx_control(job->sql)) {
                pxl_db_result_fail(&job->result, NULL,
                                   "use pxl_db_begin, pxl_db_commit and "
                                   "pxl_db_rollback for transactions");
                job->priv->refused = true;
        }
        job->params = pv;
        job->nparams = np;
        db->pending++;
        *rc = 0;
        return job;
}

static void job_free(struct pxl_db_job *job)
{
        pxl_db_result_fini(&job->result);
        free((void *)job->params);
        free(job);
}

/* Finish job here, without a back end: delivered from the loop. */
static void finish_here(struct pxl_db *db, struct pxl_db_job *job,
                        const char *error)
{
        if (error != NULL && job->result.error == NULL)
                pxl_db_result_fail(&job->result, NULL, "%s", error);
        TAILQ_INSERT_TAIL(&db->ready, job, link);
        event_active(db->ready_ev, 0, 0);
}

static void submit(struct pxl_db *db, struct pxl_db_job *job)
{
        if (job->priv->refused) {
                finish_here(db, job, NULL);
                return;
        }
        if (db->stopping) {
                finish_here(db, job, "database stopped");
                return;
        }
        /*
         * Past max_pending new work is refused, never a transaction's
         * next step: its connection stays bound until COMMIT or ROLLBACK
         * reaches the back end.
         */
        if (db->pending > pxl_db_conf(db)->max_pending &&
            (job->priv->tx == NULL || job->kind == PXL_DB_BEGIN)) {
                finish_here(db, job, "database busy");
                return;
        }
        db->backend->submit(db, db->state, job);
}

static void tx_pump(struct pxl_db_tx *tx);
static void tx_maybe_free(struct pxl_db_tx *tx);

/* Record why the rest of tx fails (the first failure, unless replace). */
static void tx_fail(struct pxl_db_tx *tx, const char *why, const char *sqlstate,
                    bool replace)
{
        if (tx->failed[0] != '\0' && !replace)
                return;
        snprintf(tx->failed, sizeof(tx->failed), "%s", why);
        snprintf(tx->failed_state, sizeof(tx->failed_state), "%s",
                 sqlstate ? sqlstate : "");
}

static void deliver(struct pxl_db *db, struct pxl_db_job *job)
{
        struct pxl_db_private *priv = job->priv;
        struct pxl_db_tx *tx = priv->tx;
        struct pxl_ctx ctx;

        db->pending--;
        db->answered++;
        if (job->result.error != NULL)
                db->failed++;
        if (tx != NULL) {
                if (tx->running == job)
                        tx->running = NULL;
                if (job->result.error != NULL &&
                    (job->kind == PXL_DB_QUERY || job->kind == PXL_DB_BEGIN))
                        tx_fail(tx, job->result.error, job->result.sqlstate,
                                false);
                /* It ran, but its transaction is being undone. */
                if (tx->dropped && job->kind == PXL_DB_QUERY &&
                    job->result.error == NULL)
                        pxl_db_result_fail(&job->result, tx->failed_state, "%s",
                                           tx->failed);
                if (priv->commit_refused && job->result.error == NULL)
                        pxl_db_result_fail(&job->result, tx->failed_state,
                                           "transaction rolled back: %s",
                                           tx->failed);
        }
        if (tx != NULL && job->kind == PXL_DB_COMMIT &&
            job->result.error == NULL) {
                for (struct commit_hook *h = tx->on_commit; h != NULL;
                     h = h->next)
                        h->fn(h->arg);
        }
        if (priv->fn != NULL && !priv->internal) {
                pxl_ctx_init(&ctx, db->srv, priv->plugin, NULL);
                priv->fn(&ctx, &job->result, priv->arg);
                pxl_ctx_fini(&ctx);
        }
        job_free(job);
        if (tx != NULL) {
                tx->njobs--;
                tx_pump(tx);
                tx_maybe_free(tx);
        }
}

void pxl_db_done(struct pxl_db *db, struct pxl_db_job *job)
{
        deliver(db, job);
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_db *db = arg;
        struct pxl_db_job_list batch = TAILQ_HEAD_INITIALIZER(batch);
        struct pxl_db_job *job;

        (void)fd;
        (void)what;
        /* Only this batch: what its callbacks finish waits for the next. */
        TAILQ_CONCAT(&batch, &db->ready, link);
        while ((job = TAILQ_FIRST(&batch)) != NULL) {
                TAILQ_REMOVE(&batch, job, link);
                deliver(db, job);
        }
}

/* ---- transactions ----------------------------------------------------- */

/* Run the next job of tx when none runs. */
static void tx_pump(struct pxl_db_tx *tx)
{
        struct pxl_db *db = tx->db;
        struct pxl_db_job *job;

        if (tx->running != NULL || (job = TAILQ_FIRST(&tx->queue)) == NULL)
                return;
        TAILQ_REMOVE(&tx->queue, job, link);
        /*
         * A COMMIT after a failure is a rollback: the back end runs
         * ROLLBACK and the plugin hears why (deliver).
         */
        if (job->kind == PXL_DB_COMMIT && tx->failed[0] != '\0') {
                job->kind = PXL_DB_ROLLBACK;
                job->sql = "ROLLBACK";
                job->sql_len = strlen(job->sql);
                job->priv->commit_refused = true;
        }
        if (tx->conn == NULL && job->kind != PXL_DB_BEGIN) {
                /* Nothing bound (BEGIN failed, connection lost, dropped). */
                if (job->kind == PXL_DB_ROLLBACK && !job->priv->commit_refused)
                        finish_here(db, job, NULL);
                else
                        finish_here(db, job,
                                    tx->failed[0] ? tx->failed
                                                  : "transaction not open");
                return;
        }
        if (tx->failed[0] != '\0' && job->kind == PXL_DB_QUERY) {
                finish_here(db, job, tx->failed);
                tx_pump(tx);
                return;
        }
        tx->running = job;
        job->tx_conn = &tx->conn;
        submit(db, job);
}

static struct pxl_db_tx *tx_new(struct pxl_db *db, struct pxl_ctx *ctx)
{
        struct pxl_db_tx *tx = calloc(1, sizeof(*tx));

        if (tx == NULL)
                return NULL;
        if (ctx->conn != NULL && ctx->client_id != NULL &&
            (tx->client_id = strdup(ctx->client_id)) == NULL) {
                free(tx);
                return NULL;
        }
        tx->db = db;
        tx->plugin = ctx->plugin;
        TAILQ_INIT(&tx->queue);
        TAILQ_INSERT_TAIL(&db->txs, tx, link);
        return tx;
}

static void tx_free(struct pxl_db_tx *tx)
{
        while (tx->on_commit != NULL) {
                struct commit_hook *h = tx->on_commit;

                tx->on_commit = h->next;
                free(h);
        }
        if (tx->db != NULL) /* NULL: detached at shutdown */
                TAILQ_REMOVE(&tx->db->txs, tx, link);
        free(tx->client_id);
        free(tx);
}

/*
 * The plugin owns tx until it commits or rolls back, even after its
 * client left (that only rolls back and releases the connection): gone
 * once ended and nothing of it remains.
 */
static void tx_maybe_free(struct pxl_db_tx *tx)
{
        if (tx->ended && tx->njobs == 0 && tx->conn == NULL)
                tx_free(tx);
}

static int tx_add(struct pxl_db_tx *tx, enum pxl_db_job_kind kind,
                  const char *sql, const struct json_object *params,
                  pxl_db_result_fn *fn, void *arg, bool internal, bool first)
{
        struct pxl_db_job *job;
        int rc;

        job = job_new(tx->db, kind, sql, params, tx->plugin, fn, arg, &rc);
        if (job == NULL)
                return rc;
        job->priv->tx = tx;
        job->priv->internal = internal;
        tx->njobs++;
        if (first)
                TAILQ_INSERT_HEAD(&tx->queue, job, link);
        else
                TAILQ_INSERT_TAIL(&tx->queue, job, link);
        tx_pump(tx);
        return PXL_OK;
}

struct pxl_db_tx *pxl_db_begin(struct pxl_ctx *ctx)
{
        struct pxl_db *db = db_of(ctx);
        struct pxl_db_tx *tx;

        if (db == NULL || (tx = tx_new(db, ctx)) == NULL)
                return NULL;
        if (tx_add(tx, PXL_DB_BEGIN, "BEGIN", NULL, NULL, NULL, true, false) <
            0) {
                tx_free(tx);
                return NULL;
        }
        return tx;
}

int pxl_db_tx_query(struct pxl_db_tx *tx, const char *sql,
                    const struct json_object *params, pxl_db_result_fn *fn,
                    void *arg)
{
        int rc;

        if (tx == NULL || tx->ended)
                return PXL_EINVAL;
        if (tx->db == NULL)
                return PXL_ECLOSED;
        /* Refused here, as pxl_db_query does: and the statement is missed. */
        if (sql == NULL || (params != NULL &&
                            !json_object_is_type((struct json_object *)params,
                                                 json_type_array))) {
                tx_fail(tx, pxl_strerror(PXL_EINVAL), NULL, false);
                return PXL_EINVAL;
        }
        rc = tx_add(tx, PXL_DB_QUERY, sql, params, fn, arg, false, false);
        /* A statement left out: the transaction must not commit. */
        if (rc < 0)
                tx_fail(tx, pxl_strerror(rc), NULL, false);
        return rc;
}

static int tx_end(struct pxl_db_tx *tx, bool commit, pxl_db_result_fn *fn,
                  void *arg)
{
        int rc;

        if (tx == NULL || tx->ended)
                return PXL_EINVAL;
        tx->ended = true;
        if (tx->db == NULL) { /* the worker stopped: nothing left to end */
                tx_free(tx);
                return PXL_ECLOSED;
        }
        rc = tx_add(tx, commit ? PXL_DB_COMMIT : PXL_DB_ROLLBACK,
                    commit ? "COMMIT" : "ROLLBACK", NULL, fn, arg, false,
                    false);
        if (rc < 0) {
                /* Still consumed: roll back without telling anyone. */
                if (tx_add(tx, PXL_DB_ROLLBACK, "ROLLBACK", NULL, NULL, NULL,
                           true, false) < 0 &&
                    tx->conn == NULL)
                        tx_maybe_free(tx);
        }
        return rc;
}

int pxl_db_tx_on_commit(struct pxl_db_tx *tx, void (*fn)(void *arg),
                        void *arg)
{
        struct commit_hook *h;

        if (tx == NULL || tx->ended || tx->db == NULL)
                return PXL_EINVAL;
        if ((h = malloc(sizeof(*h))) == NULL)
                return PXL_ENOMEM;
        h->fn = fn;
        h->arg = arg;
        h->next = tx->on_commit;
        tx->on_commit = h;
        return PXL_OK;
}

struct pxl_worker *pxl_db_tx_worker(const struct pxl_db_tx *tx)
{
        return tx->db && !tx->ended ? tx->db->srv : NULL;
}

struct pxl_plugin_slot *pxl_db_tx_plugin(const struct pxl_db_tx *tx)
{
        return tx->plugin;
}

int pxl_db_commit(struct pxl_db_tx *tx, pxl_db_result_fn *fn, void *arg)
{
        return tx_end(tx, true, fn, arg);
}

int pxl_db_rollback(struct pxl_db_tx *tx, pxl_db_result_fn *fn, void *arg)
{
        return tx_end(tx, false, fn, arg);
}

/*
 * Nobody will end tx (its client left, or the worker stops): fail what
 * waits with why, and roll back what was done, unless stopping (the
 * back end's connections close, which rolls back).
 */
static void tx_drop(struct pxl_db_tx *tx, const char *why)
{
        struct pxl_db_job *job;

        tx->dropped = true;
        tx_fail(tx, why, NULL, true);
        while ((job = TAILQ_FIRST(&tx->queue)) != NULL) {
                TAILQ_REMOVE(&tx->queue, job, link);
                finish_here(tx->db, job,
                            job->kind == PXL_DB_ROLLBACK ? NULL : why);
        }
        if (!tx->db->stopping &&
            (tx->conn != NULL ||
             (tx->running != NULL && tx->running->kind == PXL_DB_BEGIN)))
                tx_add(tx, PXL_DB_ROLLBACK, "ROLLBACK", NULL, NULL, NULL, true,
                       false);
        tx_maybe_free(tx);
}

static void db_on_change(struct pxl_worker *srv, const struct pxl_change *ch,
                         void *arg)
{
        struct pxl_db *db = pxl_worker_service_state(srv, &db_service);
        struct pxl_db_tx *tx, *next;
        const char *id;

        (void)arg;
        if (db == NULL || ch->kind != PXL_CHANGE_GONE ||
            !pxl_client_is_local(ch->client))
                return;
        id = pxl_client_id(ch->client);
        for (tx = TAILQ_FIRST(&db->txs); tx != NULL; tx = next) {
                next = TAILQ_NEXT(tx, link);
                if (!tx->dropped && !tx->ended && tx->client_id != NULL &&
                    strcmp(tx->client_id, id) == 0)
                        tx_drop(tx, "transaction rolled back: the client "
                                    "disconnected");
        }
}

/* ---- queries ---------------------------------------------------------- */

int pxl_db_run(struct pxl_db *db, struct pxl_plugin_slot *plugin,
               const char *sql, const struct json_object *params,
               pxl_db_result_fn *fn, void *arg)
{
        struct pxl_db_job *job;
        int rc;

        if (db == NULL)
                return PXL_ECLOSED;
        if (sql == NULL || (params != NULL &&
                            !json_object_is_type((struct json_object *)params,
                                                 json_type_array)))
                return PXL_EINVAL;
        job = job_new(db, PXL_DB_QUERY, sql, params, plugin, fn, arg, &rc);
        if (job == NULL)
                return rc;
        submit(db, job);
        return PXL_OK;
}

int pxl_db_query(struct pxl_ctx *ctx, const char *sql,
                 const struct json_object *params, pxl_db_result_fn *fn,
                 void *arg)
{
        return pxl_db_run(db_of(ctx), ctx ? ctx->plugin : NULL, sql, params, fn,
                          arg);
}

/* ---- the service ------------------------------------------------------ */

struct pxl_db *pxl_db_open(struct pxl_worker *srv,
                           const struct pxl_db_conf *conf,
                           struct pxl_str *errors)
{
        struct pxl_db *db = calloc(1, sizeof(*db));

        if (db == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return NULL;
        }
        db->srv = srv;
        db->conf = conf;
        db->backend = conf->postgresql ? &pxl_db_postgresql : &pxl_db_sqlite;
        TAILQ_INIT(&db->ready);
        TAILQ_INIT(&db->txs);
        db->ready_ev = event_new(srv->base, -1, 0, on_ready, db);
        if (db->ready_ev == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                pxl_db_close(db);
                return NULL;
        }
        if (db->backend->start(db, &db->state, errors) < 0) {
                pxl_db_close(db);
                return NULL;
        }
        db->started = true;
        return db;
}

void pxl_db_close(struct pxl_db *db)
{
        struct pxl_db_tx *tx, *next;

        if (db == NULL)
                return;
        db->stopping = true;
        /* What waits in transactions fails; the back end ends the rest. */
        for (tx = TAILQ_FIRST(&db->txs); tx != NULL; tx = next) {
                next = TAILQ_NEXT(tx, link);
                if (!tx->dropped)
                        tx_drop(tx, "database stopped");
        }
        if (db->started)
                db->backend->stop(db, db->state);
        db->started = false;
        while (!TAILQ_EMPTY(&db->ready))
                on_ready(-1, 0, db);
        /*
         * Those the plugins have not ended stay theirs (fini may end
         * them), detached: ending one only frees it.
         */
        while ((tx = TAILQ_FIRST(&db->txs)) != NULL) {
                TAILQ_REMOVE(&db->txs, tx, link);
                tx->db = NULL;
                if (tx->ended)
                        tx_free(tx);
        }
        if (db->ready_ev != NULL)
                event_free(db->ready_ev);
        free(db);
}

struct pxl_db *pxl_db_app(const struct pxl_worker *srv)
{
        return pxl_worker_service_state(srv, &db_service);
}

static int db_start(struct pxl_worker *srv, struct pxl_str *errors)
{
        struct pxl_db *db = pxl_db_open(srv, &srv->conf->database, errors);

        if (db == NULL)
                return PXL_ERR;
        pxl_worker_set_service_state(srv, &db_service, db);
        return PXL_OK;
}

static void db_stop(struct pxl_worker *srv)
{
        struct pxl_db *db = pxl_db_app(srv);

        pxl_worker_set_service_state(srv, &db_service, NULL);
        pxl_db_close(db);
}

static const struct pxl_service db_service = {
        .name = "database",
        .start = db_start,
        .stop = db_stop,
};

/*
 * "database": {driver, pending, queries, failed, transactions} in
 * pxl_metrics(): the app's database in this worker (statements waiting
 * or running, answered since the start, of which failed; transactions
 * not yet freed).
 */
static void report(const struct pxl_worker *srv, struct json_object *out,
                   void *arg)
{
        struct pxl_db *db = pxl_db_app(srv);
        struct json_object *o;
        struct pxl_db_tx *tx;
        int64_t ntx = 0;

        (void)arg;
        if (db == NULL || (o = json_object_new_object()) == NULL)
                return;
        TAILQ_FOREACH(tx, &db->txs, link)
        {
                ntx++;
        }
        json_object_object_add(o, "driver",
                               json_object_new_string(db->conf->postgresql
                                                              ? "postgresql"
                                                              : "sqlite"));
        json_object_object_add(o, "pending",
                               json_object_new_int64((int64_t)db->pending));
        json_object_object_add(o, "queries",
                               json_object_new_int64((int64_t)db->answered));
        json_object_object_add(o, "failed",
                               json_object_new_int64((int64_t)db->failed));
        json_object_object_add(o, "transactions", json_object_new_int64(ntx));
        json_object_object_add(out, "database", o);
}

/* For health checks: the back end runs and can take queries. */
static bool db_up(const struct pxl_worker *srv, void *arg)
{
        const struct pxl_db *db = pxl_db_app(srv);

        (void)arg;
        return db != NULL && db->started &&
               (db->backend->up == NULL || db->backend->up(db->state));
}

int pxl_db_install(struct pxl_worker *srv)
{
        const struct pxl_db_backend *backend;

        if (!srv->conf->database.enabled)
                return PXL_OK;
        backend = srv->conf->database.postgresql ? &pxl_db_postgresql
                                                 : &pxl_db_sqlite;
        if (backend->setup != NULL)
                backend->setup();
        if (pxl_worker_add_service(srv, &db_service) < 0 ||
            pxl_worker_watch(srv, db_on_change, NULL) < 0 ||
            pxl_worker_add_reporter(srv, report, NULL) < 0 ||
            pxl_worker_add_dependency(srv, "database",
                                      srv->conf->database.required, db_up,
                                      NULL) < 0)
                return PXL_ENOMEM;
        return PXL_OK;
}

/* ---- shared with the migrations --------------------------------------- */

int pxl_db_password(const struct pxl_db_conf *conf, char **out,
                    struct pxl_str *errors)
{
        *out = NULL;
        if (conf->password_env != NULL) {
                const char *v = getenv(conf->password_env);

                if (v == NULL) {
                        pxl_str_report(errors, "database.password_env", 0, NULL,
                                       "the environment has no %s",
                                       conf->password_env);
                        return PXL_ERR;
                }
                *out = strdup(v);
        } else if (conf->password_file != NULL) {
                FILE *f = fopen(conf->password_file, "r");
                char buf[4096];
                size_t n;

                if (f == NULL) {
                        pxl_str_report(errors, conf->password_file, 0, NULL,
                                       "cannot read: %s", strerror(errno));
                        return PXL_ERR;
                }
                n = fread(buf, 1, sizeof(buf) - 1, f);
                fclose(f);
                buf[n] = '\0';
                buf[strcspn(buf, "\r\n")] = '\0';
                *out = strdup(buf);
                explicit_bzero(buf, sizeof(buf));
        } else {
                return 0;
        }
        if (*out == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        return 0;
}
