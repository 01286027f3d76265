/*
 * dbtest - a plugin for the database tests: routes (type "db") that hand
 * the pxl_db_* API to a client. Every reply waits for the database
 * (pxl_defer); the SQL and the parameters come from the request as is.
 *
 * A statement's outcome is an object, sent as the reply's response:
 *   success  {"rows": pxl_db_rows_json, "affected": pxl_db_affected,
 *             "columns": [pxl_db_column_name...], "rowCount": pxl_db_rows,
 *             "values": [[pxl_db_value text, or null, per column]...],
 *             "apiOk": true when pxl_db_row_json matches every row and the
 *             accessors return NULL out of range}
 *   failure  {"error": pxl_db_error, "sqlstate": pxl_db_sqlstate}
 * A database failure is a normal reply, so that the test reads both the
 * server's text and the SQLSTATE. An error frame means the API refused
 * the call itself ("pxl_db_query: <pxl_strerror>"): its callback never
 * runs then.
 *
 * db/query {sql, params}   one statement; the reply is its outcome.
 * db/bytes {sql, hex}      sql with one parameter: pxl_db_bytes of the
 *                          bytes hex spells.
 * db/tx {statements: [{sql, params}...], commit: bool}
 *                          pxl_db_begin, every statement queued at once
 *                          (in order), then commit (true) or rollback;
 *                          the reply, once every callback ran:
 *                          {"statements": [outcome...], "end": outcome}.
 * db/hold {sql, params}    begin, run one statement, reply with its
 *                          outcome and keep the transaction open. The
 *                          plugin never ends it when the client leaves:
 *                          rolling it back then is the framework's job.
 * db/release {commit}      end every held transaction of this worker
 *                          (commit when true, else rollback); the reply is
 *                          [outcome...], one per transaction.
 * Transactions still held at fini are rolled back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pxl/pxl.h>

/* A held transaction (db/hold), until db/release or fini. */
struct held {
        struct held *next;
        struct pxl_db_tx *tx;
        struct pxl_defer *defer; /* the db/hold reply, until sent */
};

struct dbtest {
        struct held *held; /* newest first */
};

/* data[key], borrowed, or NULL. */
static struct json_object *arg(const struct pxl_msg *msg, const char *key)
{
        struct json_object *d = pxl_msg_data(msg), *v = NULL;

        if (d != NULL)
                json_object_object_get_ex(d, key, &v);
        return v;
}

/* data[key] as a string, or NULL (then the API sees a NULL sql). */
static const char *str_arg(const struct pxl_msg *msg, const char *key)
{
        struct json_object *v = arg(msg, key);

        return json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static bool same_json(struct json_object *a, struct json_object *b)
{
        const char *sa, *sb;

        if (a == NULL || b == NULL)
                return a == b;
        sa = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
        sb = json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN);
        return sa != NULL && sb != NULL && strcmp(sa, sb) == 0;
}

/* The accessors agree with each other and stop at the edges. */
static bool api_consistent(const struct pxl_db_result *res,
                           struct json_object *rows)
{
        size_t nrows = pxl_db_rows(res), ncols = pxl_db_columns(res);
        struct json_object *past = pxl_db_row_json(res, nrows);
        bool ok = pxl_db_column_name(res, ncols) == NULL &&
                  pxl_db_value(res, nrows, 0, NULL) == NULL &&
                  pxl_db_value(res, 0, ncols, NULL) == NULL && past == NULL;

        json_object_put(past);

        if (rows == NULL || json_object_array_length(rows) != nrows)
                return false;
        for (size_t r = 0; ok && r < nrows; r++) {
                struct json_object *one = pxl_db_row_json(res, r);

                ok = same_json(one, json_object_array_get_idx(rows, r));
                json_object_put(one);
        }
        return ok;
}

static struct json_object *success(const struct pxl_db_result *res)
{
        struct json_object *o = json_object_new_object();
        struct json_object *cols = json_object_new_array();
        struct json_object *values = json_object_new_array();
        struct json_object *rows = pxl_db_rows_json(res);
        size_t nrows = pxl_db_rows(res), ncols = pxl_db_columns(res);

        for (size_t c = 0; c < ncols; c++) {
                const char *name = pxl_db_column_name(res, c);

                json_object_array_add(
                        cols,
                        name != NULL ? json_object_new_string(name) : NULL);
        }
        for (size_t r = 0; r < nrows; r++) {
                struct json_object *row = json_object_new_array();

                for (size_t c = 0; c < ncols; c++) {
                        size_t len = 0;
                        const char *v = pxl_db_value(res, r, c, &len);

                        json_object_array_add(
                                row, v != NULL ? json_object_new_string_len(
                                                         v, (int)len)
                                               : NULL);
                }
                json_object_array_add(values, row);
        }
        json_object_object_add(
                o, "apiOk", json_object_new_boolean(api_consistent(res, rows)));
        json_object_object_add(o, "rows", rows); /* null when it failed */
        json_object_object_add(o, "affected",
                               json_object_new_int64(pxl_db_affected(res)));
        json_object_object_add(o, "columns", cols);
        json_object_object_add(o, "rowCount",
                               json_object_new_int64((int64_t)nrows));
        json_object_object_add(o, "values", values);
        return o;
}

/* A result as the reply's response (a new object). */
static struct json_object *outcome(const struct pxl_db_result *res)
{
        struct json_object *o;
        const char *err;

        if (res == NULL) {
                o = json_object_new_object();
                json_object_object_add(
                        o, "error",
                        json_object_new_string("dbtest: NULL result"));
                return o;
        }
        err = pxl_db_error(res);
        if (err == NULL)
                return success(res);
        o = json_object_new_object();
        json_object_object_add(o, "error", json_object_new_string(err));
        json_object_object_add(o, "sqlstate",
                               json_object_new_string(pxl_db_sqlstate(res)));
        return o;
}

/* An API call's refusal, as a result would say it (fn never runs then). */
static struct json_object *refusal(const char *what, int rc)
{
        struct json_object *o = json_object_new_object();
        char text[128];

        snprintf(text, sizeof(text), "%s: %s", what, pxl_strerror(rc));
        json_object_object_add(o, "error", json_object_new_string(text));
        json_object_object_add(o, "refused", json_object_new_boolean(1));
        return o;
}

/*
 * Refuse a request after pxl_defer(): the router cancels the handle the
 * handler took when it does not return PXL_DEFERRED, so it is left alone
 * here (cancelling it too would free it twice).
 */
static int refuse(struct pxl_ctx *ctx, const char *what, int rc)
{
        return pxl_fail(ctx, "%s: %s", what, pxl_strerror(rc));
}

/* ---- db/query and db/bytes ------------------------------------------- */

static void query_done(struct pxl_ctx *ctx, const struct pxl_db_result *res,
                       void *arg)
{
        (void)ctx;
        pxl_defer_reply(arg, outcome(res));
}

static int run_query(struct pxl_ctx *ctx, const char *sql,
                     const struct json_object *params)
{
        struct pxl_defer *d = pxl_defer(ctx);
        int rc;

        if (d == NULL)
                return pxl_fail(ctx, "cannot defer");
        rc = pxl_db_query(ctx, sql, params, query_done, d);
        if (rc != PXL_OK)
                return refuse(ctx, "pxl_db_query", rc);
        return PXL_DEFERRED;
}

static int db_query(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        return run_query(ctx, str_arg(msg, "sql"), arg(msg, "params"));
}

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static int db_bytes(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *hex = str_arg(msg, "hex");
        size_t n = hex != NULL ? strlen(hex) : 0;
        struct json_object *params, *bytes;
        uint8_t *buf;
        int rc;

        if (hex == NULL || n % 2 != 0)
                return pxl_fail(ctx, "hex must be a string of hex digit pairs");
        buf = malloc(n / 2 + 1);
        if (buf == NULL)
                return pxl_fail(ctx, "out of memory");
        for (size_t i = 0; i < n / 2; i++) {
                int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);

                if (hi < 0 || lo < 0) {
                        free(buf);
                        return pxl_fail(ctx, "hex: bad digit at %zu", 2 * i);
                }
                buf[i] = (uint8_t)(hi << 4 | lo);
        }
        bytes = pxl_db_bytes(buf, n / 2);
        free(buf);
        params = json_object_new_array();
        if (bytes == NULL || params == NULL) {
                json_object_put(bytes);
                json_object_put(params);
                return pxl_fail(ctx, "out of memory");
        }
        json_object_array_add(params, bytes);
        rc = run_query(ctx, str_arg(msg, "sql"), params);
        json_object_put(params); /* borrowed by pxl_db_query */
        return rc;
}

/* ---- db/tx ------------------------------------------------------------ */

struct txreq;

struct txslot {
        struct txreq *req;
        size_t i; /* the statement's index; n for the end */
};

struct txreq {
        struct pxl_defer *defer;
        size_t n;                 /* statements */
        size_t pending;           /* callbacks still to run */
        struct json_object **out; /* n + 1 outcomes */
        struct txslot *slots;     /* n + 1 */
};

static void txreq_free(struct txreq *r)
{
        for (size_t i = 0; i <= r->n; i++)
                json_object_put(r->out[i]);
        free(r->out);
        free(r->slots);
        free(r);
}

/* One outcome in; the reply once all are. */
static void tx_settle(struct txreq *r, size_t i, struct json_object *o)
{
        struct json_object *reply, *stmts;

        r->out[i] = o;
        if (--r->pending > 0)
                return;
        reply = json_object_new_object();
        stmts = json_object_new_array();
        for (size_t k = 0; k < r->n; k++) {
                json_object_array_add(stmts, r->out[k]);
                r->out[k] = NULL;
        }
        json_object_object_add(reply, "statements", stmts);
        json_object_object_add(reply, "end", r->out[r->n]);
        r->out[r->n] = NULL;
        pxl_defer_reply(r->defer, reply);
        txreq_free(r);
}

static void tx_done(struct pxl_ctx *ctx, const struct pxl_db_result *res,
                    void *arg)
{
        struct txslot *s = arg;

        (void)ctx;
        tx_settle(s->req, s->i, outcome(res));
}

static int db_tx(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *stmts = arg(msg, "statements");
        struct json_object *commit = arg(msg, "commit");
        struct pxl_db_tx *tx;
        struct txreq *r;
        size_t n;
        int rc;

        if (!json_object_is_type(stmts, json_type_array))
                return pxl_fail(ctx, "statements must be an array");
        n = json_object_array_length(stmts);
        r = calloc(1, sizeof(*r));
        if (r == NULL)
                return pxl_fail(ctx, "out of memory");
        r->n = n;
        r->pending = n + 1;
        r->out = calloc(n + 1, sizeof(*r->out));
        r->slots = calloc(n + 1, sizeof(*r->slots));
        r->defer = pxl_defer(ctx);
        if (r->out == NULL || r->slots == NULL || r->defer == NULL) {
                free(r->out);
                free(r->slots);
                free(r);
                return pxl_fail(ctx, "out of memory");
        }
        tx = pxl_db_begin(ctx);
        if (tx == NULL) {
                free(r->out);
                free(r->slots);
                free(r);
                return pxl_fail(ctx, "pxl_db_begin returned NULL");
        }
        for (size_t i = 0; i < n; i++) {
                struct json_object *st = json_object_array_get_idx(stmts, i);
                struct json_object *sql = NULL, *params = NULL;

                json_object_object_get_ex(st, "sql", &sql);
                json_object_object_get_ex(st, "params", &params);
                r->slots[i] = (struct txslot){r, i};
                rc = pxl_db_tx_query(tx,
                                     json_object_is_type(sql, json_type_string)
                                             ? json_object_get_string(sql)
                                             : NULL,
                                     params, tx_done, &r->slots[i]);
                if (rc != PXL_OK)
                        tx_settle(r, i, refusal("pxl_db_tx_query", rc));
        }
        r->slots[n] = (struct txslot){r, n};
        if (json_object_get_boolean(commit))
                rc = pxl_db_commit(tx, tx_done, &r->slots[n]);
        else
                rc = pxl_db_rollback(tx, tx_done, &r->slots[n]);
        if (rc != PXL_OK) /* the last outcome: r is gone after this */
                tx_settle(r, n, refusal("commit/rollback", rc));
        return PXL_DEFERRED;
}

/* ---- db/hold and db/release ------------------------------------------ */

static void hold_done(struct pxl_ctx *ctx, const struct pxl_db_result *res,
                      void *arg)
{
        struct held *h = arg;

        (void)ctx;
        pxl_defer_reply(h->defer, outcome(res));
        h->defer = NULL;
}

static int db_hold(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct dbtest *dt = pxl_ctx_plugin_data(ctx);
        struct held *h = calloc(1, sizeof(*h));
        int rc;

        if (h == NULL)
                return pxl_fail(ctx, "out of memory");
        h->defer = pxl_defer(ctx);
        if (h->defer == NULL) {
                free(h);
                return pxl_fail(ctx, "cannot defer");
        }
        h->tx = pxl_db_begin(ctx);
        if (h->tx == NULL) {
                free(h);
                return pxl_fail(ctx, "pxl_db_begin returned NULL");
        }
        h->next = dt->held;
        dt->held = h;
        rc = pxl_db_tx_query(h->tx, str_arg(msg, "sql"), arg(msg, "params"),
                             hold_done, h);
        if (rc != PXL_OK) {
                h->defer = NULL; /* the router cancels it */
                return refuse(ctx, "pxl_db_tx_query", rc);
        }
        return PXL_DEFERRED;
}

struct release {
        struct pxl_defer *defer;
        struct json_object *out; /* array, one outcome per transaction */
        size_t pending;
};

/* One outcome (o NULL: none, the sender's own count) in. */
static void release_settle(struct release *rl, size_t i, struct json_object *o)
{
        if (o != NULL)
                json_object_array_put_idx(rl->out, i, o);
        if (--rl->pending > 0)
                return;
        pxl_defer_reply(rl->defer, rl->out);
        free(rl);
}

struct release_slot {
        struct release *rl;
        size_t i;
};

static void release_done(struct pxl_ctx *ctx, const struct pxl_db_result *res,
                         void *arg)
{
        struct release_slot *s = arg;
        struct release *rl = s->rl;
        size_t i = s->i;

        (void)ctx;
        free(s);
        release_settle(rl, i, outcome(res));
}

static int db_release(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct dbtest *dt = pxl_ctx_plugin_data(ctx);
        bool commit = json_object_get_boolean(arg(msg, "commit"));
        struct release *rl = calloc(1, sizeof(*rl));
        size_t n = 0;

        if (rl == NULL)
                return pxl_fail(ctx, "out of memory");
        rl->out = json_object_new_array();
        rl->defer = pxl_defer(ctx);
        if (rl->out == NULL || rl->defer == NULL) {
                json_object_put(rl->out);
                free(rl);
                return pxl_fail(ctx, "out of memory");
        }
        for (struct held *h = dt->held; h != NULL; h = h->next)
                n++;
        rl->pending = n + 1; /* + 1: none settles before all are sent */
        for (size_t i = 0; i < n; i++) {
                struct held *h = dt->held;
                struct release_slot *s = malloc(sizeof(*s));
                int rc;

                dt->held = h->next;
                if (s == NULL) {
                        rc = PXL_ENOMEM;
                        pxl_db_rollback(h->tx, NULL, NULL);
                } else {
                        *s = (struct release_slot){rl, i};
                        rc = commit ? pxl_db_commit(h->tx, release_done, s)
                                    : pxl_db_rollback(h->tx, release_done, s);
                }
                if (rc != PXL_OK) {
                        free(s);
                        release_settle(rl, i, refusal("end", rc));
                }
                free(h);
        }
        release_settle(rl, n, NULL);
        return PXL_DEFERRED;
}

/* ---- plugin ----------------------------------------------------------- */

static int dbtest_init(struct pxl_ctx *ctx, const config_setting_t *settings)
{
        struct dbtest *dt = calloc(1, sizeof(*dt));

        (void)settings;
        if (dt == NULL)
                return pxl_ctx_fail(ctx, "out of memory");
        pxl_ctx_set_plugin_data(ctx, dt);
        return PXL_OK;
}

static void dbtest_fini(struct pxl_ctx *ctx)
{
        struct dbtest *dt = pxl_ctx_plugin_data(ctx);

        if (dt == NULL)
                return;
        while (dt->held != NULL) {
                struct held *h = dt->held;

                dt->held = h->next;
                pxl_db_rollback(h->tx, NULL, NULL);
                free(h);
        }
        free(dt);
        pxl_ctx_set_plugin_data(ctx, NULL);
}

static const struct pxl_route dbtest_routes[] = {
        {"db", "query", db_query},     {"db", "bytes", db_bytes},
        {"db", "tx", db_tx},           {"db", "hold", db_hold},
        {"db", "release", db_release}, PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "dbtest",
        .version = "1.0.0",
        .routes = dbtest_routes,
        .init = dbtest_init,
        .fini = dbtest_fini,
};
