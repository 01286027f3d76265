/*
 * pxl_db_pg.c - the PostgreSQL back end: pool_size libpq connections per
 * worker on its loop (non-blocking connect, pipeline mode, a segment per
 * job, statements prepared once per connection), results read in place.
 * Parameters, result JSON, transaction rules and the plugin API are
 * pxl_db.c's.
 *
 * Jobs finish through a "deliver" event rather than by calling
 * pxl_db_done from inside the I/O code: a callback may submit again, and
 * a submit may take a connection down, so nothing here ever holds a
 * connection or a list position across a plugin's callback.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "pxl_db_int.h"
#include "pxl_log.h"
#include "pxl_map.h"
#include "pxl_time.h"

#define PG_DEPTH      32    /* jobs in flight on one connection */
#define PG_MAX_STMTS  256   /* named statements cached per connection */
#define PG_RETRY_MS   100   /* first reconnect delay, doubled up to the cap */
#define PG_MAX_ADDRS  8     /* addresses kept from resolving the host */
#define PG_MAX_PARAMS 65535 /* the protocol's limit */
#define PG_STALL_MS   20    /* busy this long without an answer: stalled */

/* Type OIDs from pg_type.h (the server header is not installed). */
#define OID_BOOL    16
#define OID_BYTEA   17
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_OID     26
#define OID_JSON    114
#define OID_FLOAT4  700
#define OID_FLOAT8  701
#define OID_NUMERIC 1700
#define OID_JSONB   3802

enum conn_state {
        C_DOWN,       /* closed; the timer reconnects */
        C_CONNECTING, /* PQconnectPoll in progress */
        C_SETUP,      /* connected, SET statement_timeout in flight */
        C_READY,
};

/* A statement prepared (or being prepared) on one connection. */
struct pg_stmt {
        struct pxl_map_node node; /* conn->stmts, keyed by key */
        bool prepared; /* false while its PQsendPrepare is in flight */
        bool retired;  /* out of the map, on conn->retired */
        struct pg_stmt *next_retired;
        char name[16];
        size_t key_len;
        char key[]; /* the SQL, then "\0" and a type letter per param when
                       a param is binary (a different prepared signature) */
};

enum step { S_PREPARE, S_QUERY, S_SYNC };

/* One pipeline segment: [Prepare], the statement, Sync. */
struct pg_flight {
        struct pxl_db_job *job; /* NULL: our own SET statement_timeout */
        struct pg_stmt *prep;   /* prepared by this segment, or NULL */
        struct pg_stmt *used;   /* the named statement it runs, or NULL */
        enum step step;
};

struct pg;

struct pg_conn {
        struct pg *pg;
        unsigned idx;
        enum conn_state state;
        PGconn *conn;
        struct event *rd, *wr; /* on PQsocket; wr only while flushing */
        struct event *timer;   /* connect timeout, or the retry delay */
        unsigned attempt;      /* failed tries since it was last ready */
        bool flushing;         /* PQflush returned 1: wr is armed */
        bool dirty;            /* sent since the last flush */
        bool draining;         /* kept free of new jobs for a BEGIN */
        void **tx;             /* the transaction holding it, or NULL */
        struct pg_flight ring[PG_DEPTH];
        unsigned head, n;
        struct timeval since; /* when the oldest flight became the oldest */
        struct pxl_map stmts;
        struct pg_stmt *retired; /* kept for flights that name them */
        unsigned nstmts, next_stmt;
};

struct pg {
        struct pxl_db *db;
        const struct pxl_db_conf *conf;
        struct event_base *base;
        struct pg_conn *conns;
        unsigned nconns;
        unsigned nready;
        bool failed;      /* nothing up, and an attempt failed since */
        bool down_logged; /* the current outage has been logged */
        bool stopping;
        struct pxl_db_job_list waiting; /* queries, FIFO */
        struct pxl_db_job_list begins;  /* BEGINs waiting for a connection */
        struct pxl_db_job_list done;    /* to hand back from deliver */
        struct event *deliver;
        /* the connection parameters, NULL-terminated */
        const char *kw[10], *val[10];
        char *password, *hosts, *hostaddrs;
        char timeout_sql[48];
};

/* libpq messages span lines ("...\n\tIs the server running..."). */
static void one_line(char *dst, size_t cap, const char *msg)
{
        size_t n = 0;
        bool space = false;

        if (msg == NULL)
                msg = "";
        for (; *msg != '\0' && n + 1 < cap; msg++) {
                if (*msg == '\n' || *msg == '\t' || *msg == '\r' ||
                    *msg == ' ') {
                        space = n > 0;
                        continue;
                }
                if (space && n + 2 < cap)
                        dst[n++] = ' ';
                space = false;
                dst[n++] = *msg;
        }
        dst[n] = '\0';
        if (n == 0)
                snprintf(dst, cap, "unknown error");
}

/* ---- results, read in place ---------------------------------------- */

static const char *res_column_name(const struct pxl_db_result *r, size_t col)
{
        return PQfname(r->data, (int)col);
}

static const char *res_value(const struct pxl_db_result *r, size_t row,
                             size_t col, size_t *len)
{
        if (PQgetisnull(r->data, (int)row, (int)col)) {
                if (len != NULL)
                        *len = 0;
                return NULL;
        }
        if (len != NULL)
                *len = (size_t)PQgetlength(r->data, (int)row, (int)col);
        return PQgetvalue(r->data, (int)row, (int)col);
}

static enum pxl_db_kind res_kind(const struct pxl_db_result *r, size_t row,
                                 size_t col)
{
        const char *v;

        switch (PQftype(r->data, (int)col)) {
        case OID_INT2:
        case OID_INT4:
        case OID_INT8:
        case OID_OID:
        case OID_FLOAT4:
        case OID_FLOAT8:
        case OID_NUMERIC:
                /* JSON has no NaN or infinities: those stay text. */
                v = PQgetvalue(r->data, (int)row, (int)col);
                if (strcmp(v, "NaN") == 0 || strcmp(v, "Infinity") == 0 ||
                    strcmp(v, "-Infinity") == 0)
                        return PXL_DB_TEXT;
                return PXL_DB_NUMBER;
        case OID_BOOL:
                return PXL_DB_BOOL;
        case OID_JSON:
        case OID_JSONB:
                return PXL_DB_JSON;
        default:
                return PXL_DB_TEXT;
        }
}

static void res_release(struct pxl_db_result *r)
{
        PQclear(r->data);
        r->data = NULL;
}

static const struct pxl_db_result_ops pg_result_ops = {
        .column_name = res_column_name,
        .value = res_value,
        .kind = res_kind,
        .release = res_release,
};

/* Forget a result we attached (a failure replaces it). */
static void drop_result(struct pxl_db_result *r)
{
        if (r->ops != NULL && r->ops->release != NULL)
                r->ops->release(r);
        r->ops = NULL;
        r->data = NULL;
        r->nrows = r->ncols = 0;
        r->affected = 0;
}

static int64_t affected_rows(PGresult *res)
{
        static const char *const verbs[] = {"INSERT ", "UPDATE ", "DELETE ",
                                            "MERGE ", "COPY "};
        const char *tag = PQcmdStatus(res);

        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
                if (strncmp(tag, verbs[i], strlen(verbs[i])) == 0)
                        return strtoll(PQcmdTuples(res), NULL, 10);
        return 0;
}

/* The job takes res. */
static void take_result(struct pxl_db_job *job, PGresult *res)
{
        struct pxl_db_result *r = &job->result;

        drop_result(r);
        r->ops = &pg_result_ops;
        r->data = res;
        r->nrows = (size_t)PQntuples(res);
        r->ncols = (size_t)PQnfields(res);
        r->affected = affected_rows(res);
}

/* The server's own text: the primary message, and its SQLSTATE. */
static void fail_from(struct pxl_db_job *job, const PGresult *res)
{
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        char buf[512];

        if (msg == NULL) { /* made by libpq, not the server */
                one_line(buf, sizeof(buf), PQresultErrorMessage(res));
                msg = buf;
        }
        drop_result(&job->result);
        pxl_db_result_fail(&job->result,
                           PQresultErrorField(res, PG_DIAG_SQLSTATE), "%s",
                           msg);
}

/* ---- handing jobs back --------------------------------------------- */

static void finish(struct pg *pg, struct pxl_db_job *job)
{
        TAILQ_INSERT_TAIL(&pg->done, job, link);
        event_active(pg->deliver, EV_TIMEOUT, 1);
}

static void fail_job(struct pg *pg, struct pxl_db_job *job, const char *why)
{
        drop_result(&job->result);
        pxl_db_result_fail(&job->result, NULL, "%s", why);
        finish(pg, job);
}

static void fail_queue(struct pg *pg, struct pxl_db_job_list *q,
                       const char *why)
{
        struct pxl_db_job *job;

        while ((job = TAILQ_FIRST(q)) != NULL) {
                TAILQ_REMOVE(q, job, link);
                fail_job(pg, job, why);
        }
}

/*
 * Only what was done when this started: a callback that submits again
 * and fails at once is handed back on the next turn of the loop, so it
 * cannot keep the loop here.
 */
static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
        struct pg *pg = arg;
        struct pxl_db_job_list now;
        struct pxl_db_job *job;

        (void)fd;
        (void)what;
        TAILQ_INIT(&now);
        TAILQ_CONCAT(&now, &pg->done, link);
        while ((job = TAILQ_FIRST(&now)) != NULL) {
                TAILQ_REMOVE(&now, job, link);
                pxl_db_done(pg->db, job);
        }
}

/* ---- one connection ------------------------------------------------- */

static void io_cb(evutil_socket_t fd, short what, void *arg);
static void pump(struct pg *pg);

static void free_events(struct pg_conn *c)
{
        if (c->rd != NULL)
                event_free(c->rd);
        if (c->wr != NULL)
                event_free(c->wr);
        c->rd = c->wr = NULL;
        c->flushing = false;
}

/*
 * Watch PQsocket for what. While connecting, libpq may close its socket
 * and open another (next address, SSL refused...), perhaps with the same
 * number, so the events are made afresh each time.
 */
static int watch(struct pg_conn *c, short what, bool fresh)
{
        int fd = PQsocket(c->conn);

        if (fd < 0)
                return -1;
        if (fresh || c->rd == NULL) {
                free_events(c);
                c->rd = event_new(c->pg->base, fd, EV_READ | EV_PERSIST, io_cb,
                                  c);
                c->wr = event_new(c->pg->base, fd, EV_WRITE | EV_PERSIST, io_cb,
                                  c);
                if (c->rd == NULL || c->wr == NULL) {
                        free_events(c);
                        return -1;
                }
        }
        if (what & EV_READ)
                event_add(c->rd, NULL);
        else
                event_del(c->rd);
        if (what & EV_WRITE)
                event_add(c->wr, NULL);
        else
                event_del(c->wr);
        c->flushing = (what & EV_WRITE) != 0;
        return 0;
}

static void stmts_free(struct pg_conn *c)
{
        struct pxl_map_iter it;
        struct pxl_map_node *n;

        pxl_map_iter_init(&it, &c->stmts);
        while ((n = pxl_map_iter_next(&it)) != NULL) {
                pxl_map_remove(&c->stmts, n);
                free(pxl_container_of(n, struct pg_stmt, node));
        }
        pxl_map_fini(&c->stmts);
        memset(&c->stmts, 0, sizeof(c->stmts));
        while (c->retired != NULL) {
                struct pg_stmt *st = c->retired;

                c->retired = st->next_retired;
                free(st);
        }
        c->nstmts = 0;
        c->next_stmt = 0;
}

static void stmt_forget(struct pg_conn *c, struct pg_stmt *st)
{
        pxl_map_remove(&c->stmts, &st->node);
        c->nstmts--;
        free(st);
}

/*
 * A prepared statement the server no longer runs: "cached plan must not
 * change result type" after the table changed (0A000), or gone after a
 * DEALLOCATE or DISCARD (26000). The next job prepares it afresh; this
 * one stays counted, as the server may still hold it.
 */
static void stmt_retire(struct pg_conn *c, struct pg_stmt *st)
{
        if (st->retired)
                return;
        pxl_map_remove(&c->stmts, &st->node);
        st->retired = true;
        st->next_retired = c->retired;
        c->retired = st;
}

/* Every job on c gets why; the transaction holding c loses it. */
static void fail_flights(struct pg_conn *c, const char *why)
{
        while (c->n > 0) {
                struct pxl_db_job *job = c->ring[c->head].job;

                c->head = (c->head + 1) % PG_DEPTH;
                c->n--;
                if (job == NULL)
                        continue;
                if (job->tx_conn != NULL && *job->tx_conn == c)
                        *job->tx_conn = NULL;
                fail_job(c->pg, job, why);
        }
        c->head = 0;
        if (c->tx != NULL) {
                *c->tx = NULL;
                c->tx = NULL;
        }
}

static void close_conn(struct pg_conn *c)
{
        free_events(c);
        if (c->timer != NULL)
                evtimer_del(c->timer);
        if (c->conn != NULL)
                PQfinish(c->conn);
        c->conn = NULL;
        stmts_free(c);
        c->dirty = c->draining = false;
}

static void schedule_retry(struct pg_conn *c)
{
        uint64_t cap = (uint64_t)c->pg->conf->retry_max_delay * 1000;
        uint64_t ms = PG_RETRY_MS;
        struct timeval tv;

        for (unsigned i = 0; i < c->attempt && ms < cap; i++)
                ms *= 2;
        if (ms > cap && cap > 0)
                ms = cap;
        c->attempt++;
        tv = pxl_ms_timeval(ms);
        evtimer_add(c->timer, &tv);
}

/*
 * c failed to connect or broke. One log line per change of the whole
 * pool's state; single connections only at debug level.
 */
static void conn_down(struct pg_conn *c, const char *why)
{
        struct pg *pg = c->pg;
        bool was_ready = c->state == C_READY;
        char line[512];

        one_line(line, sizeof(line), why);
        fail_flights(c, pg->stopping ? "database stopped"
                                     : "database connection lost");
        close_conn(c);
        c->state = C_DOWN;
        if (pg->stopping)
                return;
        if (was_ready) {
                pg->nready--;
                c->attempt = 0;
                pxl_logs(PXL_LOG_DEBUG, "database connection %u lost: %s",
                         c->idx, line);
                if (pg->nready == 0) {
                        pxl_logs(PXL_LOG_WARN,
                                 "database connection lost: %s; reconnecting",
                                 line);
                        pg->down_logged = true;
                }
        } else if (pg->nready == 0) {
                if (!pg->down_logged)
                        pxl_logs(PXL_LOG_WARN,
                                 "database: cannot connect to PostgreSQL: %s; "
                                 "retrying in the background",
                                 line);
                else
                        pxl_logs(PXL_LOG_DEBUG, "database connection %u: %s",
                                 c->idx, line);
                pg->down_logged = true;
                /* Nothing waits for a server that is not there. */
                pg->failed = true;
                fail_queue(pg, &pg->waiting, "database unavailable");
                fail_queue(pg, &pg->begins, "database unavailable");
        } else {
                pxl_logs(PXL_LOG_DEBUG, "database connection %u: %s", c->idx,
                         line);
        }
        schedule_retry(c);
}

static void became_ready(struct pg_conn *c)
{
        struct pg *pg = c->pg;

        evtimer_del(c->timer);
        c->state = C_READY;
        c->attempt = 0;
        if (pg->nready++ == 0) {
                pxl_logs(PXL_LOG_NOTICE, "database connected");
                pg->failed = false;
                pg->down_logged = false;
        }
}

static void notice_cb(void *arg, const char *msg)
{
        char line[512];

        (void)arg;
        if (!pxl_log_enabled(PXL_LOG_DEBUG))
                return;
        one_line(line, sizeof(line), msg);
        pxl_logs(PXL_LOG_DEBUG, "database notice: %s", line);
}

static int flush(struct pg_conn *c)
{
        int rc = PQflush(c->conn);

        c->dirty = false;
        if (rc < 0)
                return -1;
        if (rc == 1 && !c->flushing) {
                event_add(c->wr, NULL);
                c->flushing = true;
        } else if (rc == 0 && c->flushing) {
                event_del(c->wr);
                c->flushing = false;
        }
        return 0;
}

static struct pg_flight *push_flight(struct pg_conn *c, struct pxl_db_job *job,
                                     struct pg_stmt *prep)
{
        struct pg_flight *f = &c->ring[(c->head + c->n) % PG_DEPTH];

        f->job = job;
        f->prep = prep;
        f->used = prep;
        f->step = prep != NULL ? S_PREPARE : S_QUERY;
        if (c->n++ == 0)
                event_base_gettimeofday_cached(c->pg->base, &c->since);
        c->dirty = true;
        return f;
}

static void connected(struct pg_conn *c)
{
        struct pg *pg = c->pg;

        if (PQsetnonblocking(c->conn, 1) != 0 ||
            PQenterPipelineMode(c->conn) != 1 || watch(c, EV_READ, false) < 0) {
                conn_down(c, PQerrorMessage(c->conn));
                return;
        }
        if (pg->conf->statement_timeout == 0) {
                became_ready(c);
                return;
        }
        /* The connect timer keeps running: the SET is part of connecting. */
        c->state = C_SETUP;
        push_flight(c, NULL, NULL);
        if (!PQsendQueryParams(c->conn, pg->timeout_sql, 0, NULL, NULL, NULL,
                               NULL, 0) ||
            !PQpipelineSync(c->conn) || flush(c) < 0)
                conn_down(c, PQerrorMessage(c->conn));
}

static void connect_step(struct pg_conn *c)
{
        switch (PQconnectPoll(c->conn)) {
        case PGRES_POLLING_READING:
                if (watch(c, EV_READ, true) < 0)
                        conn_down(c, "cannot watch the socket");
                return;
        case PGRES_POLLING_WRITING:
                if (watch(c, EV_WRITE, true) < 0)
                        conn_down(c, "cannot watch the socket");
                return;
        case PGRES_POLLING_OK:
                connected(c);
                return;
        default:
                conn_down(c, PQerrorMessage(c->conn));
                return;
        }
}

static void conn_open(struct pg_conn *c)
{
        struct pg *pg = c->pg;
        struct timeval tv =
                pxl_ms_timeval((uint64_t)pg->conf->connect_timeout * 1000);

        c->conn = PQconnectStartParams(pg->kw, pg->val, 1);
        if (c->conn == NULL) {
                conn_down(c, "out of memory");
                return;
        }
        PQsetNoticeProcessor(c->conn, notice_cb, pg);
        if (PQstatus(c->conn) == CONNECTION_BAD) {
                conn_down(c, PQerrorMessage(c->conn));
                return;
        }
        c->state = C_CONNECTING;
        /* libpq: before the first PQconnectPoll, wait as for WRITING. */
        if (watch(c, EV_WRITE, true) < 0) {
                conn_down(c, "cannot watch the socket");
                return;
        }
        if (pg->conf->connect_timeout > 0)
                evtimer_add(c->timer, &tv);
}

/* The connect timeout while connecting, the retry delay when down. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
        struct pg_conn *c = arg;

        (void)fd;
        (void)what;
        if (c->state == C_DOWN)
                conn_open(c);
        else if (c->state != C_READY)
                conn_down(c, "timed out connecting");
        pump(c->pg);
}

/* ---- sending ---------------------------------------------------------- */

/*
 * Put job in flight on c as one pipeline segment. 0 when it is in
 * flight or was failed on its own (c is fine); -1 when c broke (job is
 * in flight, the caller takes c down).
 */
static int send_job(struct pg_conn *c, struct pxl_db_job *job)
{
        enum { SMALL = 16 };
        const char *vals_s[SMALL];
        int lens_s[SMALL], fmts_s[SMALL];
        Oid types_s[SMALL];
        const char **vals = vals_s;
        int *lens = lens_s, *fmts = fmts_s;
        Oid *types = types_s;
        void *block = NULL;
        char *key = NULL;
        const char *k = job->sql;
        size_t klen = job->sql_len;
        int n = (int)job->nparams;
        bool binary = false;
        struct pg_stmt *st = NULL, *prep = NULL;
        struct pg_flight *f;
        int ok;

        if (job->nparams > PG_MAX_PARAMS) {
                fail_job(c->pg, job, "too many parameters (at most 65535)");
                return 0;
        }
        if (job->nparams > SMALL) {
                size_t each = sizeof(char *) + 2 * sizeof(int) + sizeof(Oid);

                block = malloc(job->nparams * each);
                if (block == NULL)
                        goto nomem;
                vals = block;
                lens = (int *)(vals + n);
                fmts = lens + n;
                types = (Oid *)(fmts + n);
        }
        for (int i = 0; i < n; i++) {
                const struct pxl_db_param *p = &job->params[i];

                vals[i] = p->text;
                lens[i] = 0;
                fmts[i] = 0;
                types[i] = 0; /* the server infers it */
                switch (p->kind) {
                case PXL_DB_PARAM_NULL:
                        vals[i] = NULL;
                        break;
                case PXL_DB_PARAM_BOOL:
                        vals[i] = p->i ? "true" : "false";
                        break;
                case PXL_DB_PARAM_BYTES:
                        lens[i] = (int)p->len;
                        fmts[i] = 1;
                        types[i] = OID_BYTEA;
                        binary = true;
                        break;
                default:
                        break;
                }
        }
        /*
         * A binary parameter fixes its type at prepare time, so the same
         * SQL with other types is another statement.
         */
        if (binary) {
                key = malloc(job->sql_len + 1 + (size_t)n);
                if (key == NULL)
                        goto nomem;
                memcpy(key, job->sql, job->sql_len);
                key[job->sql_len] = '\0';
                for (int i = 0; i < n; i++)
                        key[job->sql_len + 1 + (size_t)i] =
                                types[i] == OID_BYTEA ? 'b' : 't';
                k = key;
                klen = job->sql_len + 1 + (size_t)n;
        }
        {
                struct pxl_map_node *node = pxl_map_get(&c->stmts, k, klen);

                if (node != NULL)
                        st = pxl_container_of(node, struct pg_stmt, node);
        }
        if (st == NULL && c->nstmts < PG_MAX_STMTS) {
                prep = malloc(sizeof(*prep) + klen);
                if (prep == NULL)
                        goto nomem;
                memcpy(prep->key, k, klen);
                prep->key_len = klen;
                prep->prepared = prep->retired = false;
                prep->next_retired = NULL;
                snprintf(prep->name, sizeof(prep->name), "pxl_%u",
                         ++c->next_stmt);
                prep->node.key = prep->key;
                prep->node.key_len = klen;
                if (pxl_map_put(&c->stmts, &prep->node) < 0) {
                        free(prep);
                        goto nomem;
                }
                c->nstmts++;
        }
        /* From here the job is in flight: a failure is the connection's. */
        f = push_flight(c, job, prep);
        if (prep == NULL && st != NULL && st->prepared)
                f->used = st;
        if (prep != NULL)
                ok = PQsendPrepare(c->conn, prep->name, job->sql,
                                   binary ? n : 0, binary ? types : NULL) &&
                     PQsendQueryPrepared(c->conn, prep->name, n, vals, lens,
                                         fmts, 0);
        else if (f->used != NULL)
                ok = PQsendQueryPrepared(c->conn, st->name, n, vals, lens, fmts,
                                         0);
        else /* being prepared by a job ahead, or the cache is full */
                ok = PQsendQueryParams(c->conn, job->sql, n,
                                       binary ? types : NULL, vals, lens, fmts,
                                       0);
        ok = ok && PQpipelineSync(c->conn);
        free(block);
        free(key);
        return ok ? 0 : -1;

nomem:
        free(block);
        free(key);
        fail_job(c->pg, job, "out of memory");
        return 0;
}

/* ---- reading ---------------------------------------------------------- */

static void complete(struct pg_conn *c)
{
        struct pg_flight *f = &c->ring[c->head];
        struct pxl_db_job *job = f->job;

        c->head = (c->head + 1) % PG_DEPTH;
        c->n--;
        event_base_gettimeofday_cached(c->pg->base, &c->since);
        if (job == NULL) { /* our SET: the connection is usable */
                became_ready(c);
                return;
        }
        /*
         * A cached statement the server no longer runs as prepared (its
         * table changed: 0A000; deallocated: 26000) has been retired:
         * outside a transaction, run the job once more, prepared anew,
         * rather than fail every query pipelined behind the change.
         */
        if (job->tx_conn == NULL && job->stale && !job->retried) {
                job->retried = true;
                pxl_db_result_fini(&job->result); /* the error too */
                TAILQ_INSERT_HEAD(&c->pg->waiting, job, link);
                return; /* io_cb pumps it */
        }
        /* Release the connection before anyone learns the outcome. */
        if (job->tx_conn != NULL && c->tx == job->tx_conn &&
            (job->kind == PXL_DB_COMMIT || job->kind == PXL_DB_ROLLBACK ||
             (job->kind == PXL_DB_BEGIN && job->result.error != NULL))) {
                *job->tx_conn = NULL;
                c->tx = NULL;
        }
        finish(c->pg, job);
}

/* One result of the statement itself (S_QUERY). -1: c must go down. */
static int on_result(struct pg_conn *c, struct pg_flight *f, PGresult *res,
                     char *why, size_t cap)
{
        struct pxl_db_job *job = f->job;

        switch (PQresultStatus(res)) {
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
        case PGRES_EMPTY_QUERY:
                if (job == NULL || job->result.error != NULL)
                        break;
                /* COMMIT in a failed transaction answers ROLLBACK. */
                if (job->kind == PXL_DB_COMMIT &&
                    strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
                        pxl_db_result_fail(&job->result, NULL,
                                           "transaction rolled back");
                        break;
                }
                take_result(job, res);
                return 0;
        case PGRES_PIPELINE_ABORTED:
                /* Its Prepare failed, and the job has that error. */
                if (job != NULL && job->result.error == NULL)
                        pxl_db_result_fail(&job->result, NULL,
                                           "statement not run");
                break;
        case PGRES_COPY_IN:
        case PGRES_COPY_OUT:
        case PGRES_COPY_BOTH:
                /* The pipeline cannot go on past a COPY: start afresh. */
                snprintf(why, cap, "COPY is not supported");
                PQclear(res);
                if (job != NULL) {
                        c->head = (c->head + 1) % PG_DEPTH;
                        c->n--;
                        fail_job(c->pg, job, "COPY is not supported");
                }
                return -1;
        default:
                if (job == NULL) {
                        one_line(why, cap, PQresultErrorMessage(res));
                        PQclear(res);
                        return -1;
                }
                fail_from(job, res);
                if (f->used != NULL &&
                    (strcmp(job->result.sqlstate, "0A000") == 0 ||
                     strcmp(job->result.sqlstate, "26000") == 0)) {
                        stmt_retire(c, f->used);
                        job->stale = true;
                }
                break;
        }
        PQclear(res);
        return 0;
}

/*
 * Match what libpq has for c with its flights, in order: per segment
 * [Prepare's result, NULL], the statement's result(s), NULL, then
 * PIPELINE_SYNC (no NULL after it). -1: c must go down (why says why).
 */
static int read_results(struct pg_conn *c, char *why, size_t cap)
{
        while (c->n > 0 && !PQisBusy(c->conn)) {
                struct pg_flight *f = &c->ring[c->head];
                PGresult *res = PQgetResult(c->conn);

                if (res == NULL && PQstatus(c->conn) == CONNECTION_BAD)
                        goto bad;
                switch (f->step) {
                case S_PREPARE:
                        if (res == NULL) {
                                f->step = S_QUERY;
                                break;
                        }
                        if (f->prep == NULL) { /* no Prepare was sent */
                                PQclear(res);
                                snprintf(why, cap,
                                         "unexpected result from the server");
                                return -1;
                        }
                        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
                                f->prep->prepared = true;
                        } else {
                                /* Not cached: the next try prepares anew. */
                                if (f->job != NULL)
                                        fail_from(f->job, res);
                                stmt_forget(c, f->prep);
                                f->used = NULL;
                        }
                        f->prep = NULL;
                        PQclear(res);
                        break;
                case S_QUERY:
                        if (res == NULL) {
                                f->step = S_SYNC;
                                break;
                        }
                        if (on_result(c, f, res, why, cap) < 0)
                                return -1;
                        break;
                case S_SYNC:
                        if (res == NULL ||
                            PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
                                PQclear(res);
                                snprintf(why, cap,
                                         "unexpected result from the server");
                                return -1;
                        }
                        PQclear(res);
                        complete(c);
                        break;
                }
                if (PQstatus(c->conn) == CONNECTION_BAD)
                        goto bad;
        }
        return 0;
bad:
        one_line(why, cap, PQerrorMessage(c->conn));
        return -1;
}

static int conn_io(struct pg_conn *c, short what, char *why, size_t cap)
{
        PGnotify *note;

        /* Write and read both ways: the server may be blocked on us. */
        if ((what & EV_WRITE) && flush(c) < 0)
                goto bad;
        if ((what & EV_READ) && !PQconsumeInput(c->conn))
                goto bad;
        while ((note = PQnotifies(c->conn)) != NULL)
                PQfreemem(note); /* nobody LISTENs through the pool */
        if (read_results(c, why, cap) < 0)
                return -1;
        if (PQstatus(c->conn) == CONNECTION_BAD)
                goto bad;
        if (c->dirty && flush(c) < 0)
                goto bad;
        return 0;
bad:
        one_line(why, cap, PQerrorMessage(c->conn));
        return -1;
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
        struct pg_conn *c = arg;
        char why[512] = "";

        (void)fd;
        if (c->state == C_CONNECTING)
                connect_step(c);
        else if (c->conn != NULL && conn_io(c, what, why, sizeof(why)) < 0)
                conn_down(c, why);
        pump(c->pg);
}

/* ---- dispatching ------------------------------------------------------ */

/*
 * A pipeline answers in order: whatever is sent behind a slow statement
 * waits for it. A connection busy without an answer for PG_STALL_MS is
 * stalled, and gets jobs only when every usable one is.
 */
static bool stalled(const struct pg_conn *c, const struct timeval *now)
{
        int64_t ms;

        if (c->n == 0)
                return false;
        ms = (int64_t)(now->tv_sec - c->since.tv_sec) * 1000 +
             (now->tv_usec - c->since.tv_usec) / 1000;
        return ms >= PG_STALL_MS;
}

/*
 * The usable connection with the fewest jobs in flight, stalled ones
 * last; NULL to wait (the rest are full, and a stalled one would hold
 * the job longer than waiting for a free slot elsewhere).
 */
static struct pg_conn *pick(struct pg *pg)
{
        struct pg_conn *best = NULL, *slow = NULL;
        bool fresh = false; /* a connection not stalled, even if full */
        struct timeval now;

        event_base_gettimeofday_cached(pg->base, &now);
        for (unsigned i = 0; i < pg->nconns; i++) {
                struct pg_conn *c = &pg->conns[i];

                if (c->state != C_READY || c->tx != NULL || c->draining)
                        continue;
                if (stalled(c, &now)) {
                        if (c->n < PG_DEPTH && (slow == NULL || c->n < slow->n))
                                slow = c;
                        continue;
                }
                fresh = true;
                if (c->n < PG_DEPTH && (best == NULL || c->n < best->n))
                        best = c;
        }
        return best != NULL ? best : fresh ? NULL : slow;
}

/*
 * An idle connection for a transaction. When none is idle, one stops
 * taking queries until it is, so a BEGIN is not starved by a steady
 * stream of them.
 */
static struct pg_conn *pick_begin(struct pg *pg)
{
        struct pg_conn *least = NULL;
        bool draining = false;

        for (unsigned i = 0; i < pg->nconns; i++) {
                struct pg_conn *c = &pg->conns[i];

                if (c->state != C_READY || c->tx != NULL)
                        continue;
                if (c->n == 0)
                        return c;
                draining = draining || c->draining;
                if (least == NULL || c->n < least->n)
                        least = c;
        }
        if (least != NULL && !draining)
                least->draining = true;
        return NULL;
}

static void pump(struct pg *pg)
{
        struct pxl_db_job *job;
        struct pg_conn *c;

        if (pg->stopping)
                return;
        if (TAILQ_EMPTY(&pg->begins))
                for (unsigned i = 0; i < pg->nconns; i++)
                        pg->conns[i].draining = false;
        while ((job = TAILQ_FIRST(&pg->begins)) != NULL &&
               (c = pick_begin(pg)) != NULL) {
                TAILQ_REMOVE(&pg->begins, job, link);
                c->draining = false;
                c->tx = job->tx_conn;
                *job->tx_conn = c;
                if (send_job(c, job) < 0)
                        conn_down(c, PQerrorMessage(c->conn));
        }
        while ((job = TAILQ_FIRST(&pg->waiting)) != NULL &&
               (c = pick(pg)) != NULL) {
                TAILQ_REMOVE(&pg->waiting, job, link);
                if (send_job(c, job) < 0)
                        conn_down(c, PQerrorMessage(c->conn));
        }
        /* One write per connection for everything sent just now. */
        for (unsigned i = 0; i < pg->nconns; i++) {
                c = &pg->conns[i];
                if (c->conn != NULL && c->dirty && flush(c) < 0)
                        conn_down(c, PQerrorMessage(c->conn));
        }
}

static void pg_submit(struct pxl_db *db, void *state, struct pxl_db_job *job)
{
        struct pg *pg = state;
        struct pg_conn *c;

        (void)db;
        if (pg->stopping) {
                fail_job(pg, job, "database stopped");
                return;
        }
        if (job->tx_conn != NULL && job->kind != PXL_DB_BEGIN) {
                c = *job->tx_conn;
                if (c == NULL) {
                        /* Lost with its connection: the server rolled back. */
                        if (job->kind == PXL_DB_ROLLBACK)
                                finish(pg, job);
                        else
                                fail_job(pg, job, "database connection lost");
                        return;
                }
                if (send_job(c, job) < 0)
                        conn_down(c, PQerrorMessage(c->conn));
                pump(pg);
                return;
        }
        if (pg->nready == 0 && pg->failed) {
                fail_job(pg, job, "database unavailable");
                return;
        }
        if (job->kind == PXL_DB_BEGIN && job->tx_conn != NULL)
                TAILQ_INSERT_TAIL(&pg->begins, job, link);
        else
                TAILQ_INSERT_TAIL(&pg->waiting, job, link);
        pump(pg);
}

/* ---- start and stop --------------------------------------------------- */

static void pg_free(struct pg *pg)
{
        if (pg->conns != NULL) {
                for (unsigned i = 0; i < pg->nconns; i++) {
                        close_conn(&pg->conns[i]);
                        if (pg->conns[i].timer != NULL)
                                event_free(pg->conns[i].timer);
                }
                free(pg->conns);
        }
        if (pg->deliver != NULL)
                event_free(pg->deliver);
        if (pg->password != NULL) {
                explicit_bzero(pg->password, strlen(pg->password));
                free(pg->password);
        }
        free(pg->hosts);
        free(pg->hostaddrs);
        free(pg);
}

static int append(char **list, const char *item)
{
        size_t have = *list != NULL ? strlen(*list) : 0;
        char *p = realloc(*list, have + strlen(item) + 2);

        if (p == NULL)
                return PXL_ENOMEM;
        if (have > 0)
                p[have++] = ',';
        strcpy(p + have, item);
        *list = p;
        return 0;
}

/*
 * libpq resolves a host name with a blocking getaddrinfo on every
 * connect. Resolve it once here, where blocking is allowed, and pass the
 * addresses as hostaddr (host stays, for TLS and .pgpass), one entry per
 * address so libpq still tries each in turn.
 */
static int resolve_host(struct pg *pg, const char *host)
{
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
        struct addrinfo *ai, *a;
        char addrs[PG_MAX_ADDRS][NI_MAXHOST];
        unsigned n = 0;
        unsigned char buf[sizeof(struct in6_addr)];

        if (host == NULL || host[0] == '\0' || host[0] == '/' ||
            host[0] == '@' || strchr(host, ',') != NULL ||
            inet_pton(AF_INET, host, buf) == 1 ||
            inet_pton(AF_INET6, host, buf) == 1)
                return 0;
        if (getaddrinfo(host, NULL, &hints, &ai) != 0)
                return 0; /* libpq will say why when it tries */
        for (a = ai; a != NULL && n < PG_MAX_ADDRS; a = a->ai_next) {
                bool dup = false;

                if (getnameinfo(a->ai_addr, a->ai_addrlen, addrs[n],
                                sizeof(addrs[n]), NULL, 0, NI_NUMERICHOST) != 0)
                        continue;
                for (unsigned i = 0; i < n && !dup; i++)
                        dup = strcmp(addrs[i], addrs[n]) == 0;
                if (!dup)
                        n++;
        }
        freeaddrinfo(ai);
        for (unsigned i = 0; i < n; i++)
                if (append(&pg->hosts, host) < 0 ||
                    append(&pg->hostaddrs, addrs[i]) < 0)
                        return PXL_ENOMEM;
        return 0;
}

/*
 * The url first (expanded: a connection string or a URI), then what we
 * impose, since libpq keeps the last value of a repeated keyword.
 */
static int build_params(struct pg *pg, struct pxl_str *errors)
{
        const char *file = pxl_db_file(pg->db);
        PQconninfoOption *opts, *o;
        char *err = NULL;
        const char *host = NULL, *hostaddr = NULL;
        unsigned i = 0;
        int rc;

        opts = PQconninfoParse(pg->conf->url != NULL ? pg->conf->url : "",
                               &err);
        if (opts == NULL) {
                char line[512];

                one_line(line, sizeof(line), err ? err : "out of memory");
                pxl_str_report(errors, file, 0, NULL, "database: url: %s",
                               line);
                PQfreemem(err);
                return PXL_ERR;
        }
        for (o = opts; o->keyword != NULL; o++) {
                if (strcmp(o->keyword, "host") == 0)
                        host = o->val;
                else if (strcmp(o->keyword, "hostaddr") == 0)
                        hostaddr = o->val;
        }
        rc = 0;
        if (hostaddr == NULL || hostaddr[0] == '\0')
                rc = resolve_host(pg, host);
        PQconninfoFree(opts);
        if (rc < 0) {
                pxl_str_report(errors, file, 0, NULL,
                               "database: out of memory");
                return rc;
        }
        pg->kw[i] = "dbname";
        pg->val[i++] = pg->conf->url != NULL ? pg->conf->url : "";
        if (pg->hosts != NULL) {
                pg->kw[i] = "host";
                pg->val[i++] = pg->hosts;
                pg->kw[i] = "hostaddr";
                pg->val[i++] = pg->hostaddrs;
        }
        if (pg->password != NULL) {
                pg->kw[i] = "password";
                pg->val[i++] = pg->password;
        }
        /* Results become JSON, which is UTF-8. */
        pg->kw[i] = "client_encoding";
        pg->val[i++] = "UTF8";
        pg->kw[i] = "fallback_application_name";
        pg->val[i++] = "pxl";
        pg->kw[i] = NULL;
        pg->val[i] = NULL;
        snprintf(pg->timeout_sql, sizeof(pg->timeout_sql),
                 "SET statement_timeout = %u", pg->conf->statement_timeout);
        return 0;
}

/* database.required: connect once now, blocking (we do not serve yet). */
static int check_reachable(struct pg *pg, struct pxl_str *errors)
{
        const char *kw[sizeof(pg->kw) / sizeof(pg->kw[0]) + 1];
        const char *val[sizeof(pg->kw) / sizeof(pg->kw[0]) + 1];
        char timeout[16], line[512];
        unsigned i;
        PGconn *conn;
        int rc = 0;

        for (i = 0; pg->kw[i] != NULL; i++) {
                kw[i] = pg->kw[i];
                val[i] = pg->val[i];
        }
        snprintf(timeout, sizeof(timeout), "%u", pg->conf->connect_timeout);
        kw[i] = "connect_timeout";
        val[i++] = timeout;
        kw[i] = val[i] = NULL;
        conn = PQconnectdbParams(kw, val, 1);
        if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
                one_line(line, sizeof(line),
                         conn ? PQerrorMessage(conn) : "out of memory");
                pxl_str_report(errors, pxl_db_file(pg->db), 0, NULL,
                               "database: cannot connect to PostgreSQL: %s",
                               line);
                rc = PXL_ERR;
        }
        PQfinish(conn);
        return rc;
}

static int pg_start(struct pxl_db *db, void **state, struct pxl_str *errors)
{
        const struct pxl_db_conf *conf = pxl_db_conf(db);
        struct pg *pg;

        pg = calloc(1, sizeof(*pg));
        if (pg == NULL)
                goto nomem;
        pg->db = db;
        pg->conf = conf;
        pg->base = pxl_db_base(db);
        TAILQ_INIT(&pg->waiting);
        TAILQ_INIT(&pg->begins);
        TAILQ_INIT(&pg->done);
        if (pxl_db_password(conf, &pg->password, errors) < 0 ||
            build_params(pg, errors) < 0)
                goto fail;
        pg->nconns = conf->pool_size > 0 ? conf->pool_size : 1;
        pg->conns = calloc(pg->nconns, sizeof(*pg->conns));
        pg->deliver = event_new(pg->base, -1, 0, deliver_cb, pg);
        if (pg->conns == NULL || pg->deliver == NULL)
                goto nomem;
        for (unsigned i = 0; i < pg->nconns; i++) {
                struct pg_conn *c = &pg->conns[i];

                c->pg = pg;
                c->idx = i;
                c->timer = evtimer_new(pg->base, timer_cb, c);
                if (c->timer == NULL)
                        goto nomem;
        }
        if (conf->required && check_reachable(pg, errors) < 0)
                goto fail;
        for (unsigned i = 0; i < pg->nconns; i++)
                conn_open(&pg->conns[i]);
        *state = pg;
        return 0;

nomem:
        pxl_str_report(errors, pxl_db_file(db), 0, NULL,
                       "database: out of memory");
fail:
        if (pg != NULL)
                pg_free(pg);
        return PXL_ERR;
}

static void pg_stop(struct pxl_db *db, void *state)
{
        struct pg *pg = state;

        (void)db;
        if (pg == NULL)
                return;
        pg->stopping = true;
        for (unsigned i = 0; i < pg->nconns; i++) {
                fail_flights(&pg->conns[i], "database stopped");
                close_conn(&pg->conns[i]);
                pg->conns[i].state = C_DOWN;
        }
        fail_queue(pg, &pg->begins, "database stopped");
        fail_queue(pg, &pg->waiting, "database stopped");
        /* Callbacks may submit again: those fail at once, and land here. */
        while (!TAILQ_EMPTY(&pg->done))
                deliver_cb(-1, 0, pg);
        pg_free(pg);
}

/* Some connection of the pool is ready. */
static bool pg_up(const void *state)
{
        const struct pg *pg = state;

        return pg != NULL && pg->nready > 0;
}

const struct pxl_db_backend pxl_db_postgresql = {
        .name = "pg",
        .start = pg_start,
        .submit = pg_submit,
        .stop = pg_stop,
        .up = pg_up,
};
