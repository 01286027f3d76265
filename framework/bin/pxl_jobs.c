/*
 * pxl_jobs.c - the pxl-jobs program: what an operator sees of the jobs
 * table of pxl_queue_sql.h (counts per queue, one job, the dead ones)
 * and the changes an operator makes (retry dead jobs, remove completed
 * ones). Blocking SQLite on purpose: a command, never the server's loop.
 * It never creates the table or the file: without them there are no jobs.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "config.h"
#include "pxl/pxl.h"
#include "pxl_conf.h"
#include "pxl_str.h"

/* Exit statuses, as pxl-jobs(1) lists them. */
enum {
        JOBS_DONE = 0,
        JOBS_ERROR = 1,     /* config, database, SQL */
        JOBS_USAGE = 2,     /* the command line */
        JOBS_NOT_FOUND = 3, /* no such job, or retry of one not dead */
};

/* A busy timeout when the jobs have a file of their own (queue.path). */
#define JOBS_BUSY_TIMEOUT_MS 5000

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct jobs {
        sqlite3 *db;      /* NULL when there are no jobs (no file, no table) */
        const char *path; /* borrowed from the config */
        int64_t now;      /* ms since the epoch, read once */
        bool json;        /* --json: one JSON object per line */
        bool all;         /* retry --all */
        int64_t older_than; /* clean --older-than, seconds; -1 = unset */
};

struct command {
        const char *name;
        int nargs;      /* arguments after the command */
        unsigned flags; /* the options it takes */
        int (*run)(struct jobs *j, char **args);
};

enum { OPT_JSON = 1, OPT_ALL = 2, OPT_OLDER_THAN = 4 };

static void usage(FILE *f)
{
        fprintf(f,
                "usage: pxl-jobs [-h] [-V] app.cfg COMMAND [ARGS]\n"
                "\n"
                "Look at and repair the background jobs of the app described\n"
                "by app.cfg, kept in its SQLite database (database.path) or\n"
                "else in queue.path.\n"
                "\n"
                "  queues [--json]       counts per queue: waiting, delayed,\n"
                "                        active, completed, dead\n"
                "  show QUEUE ID [--json]  every field of one job\n"
                "  dead QUEUE [--json]   the dead jobs: id, attempts, error,\n"
                "                        when they died\n"
                "  retry QUEUE ID        a dead job back to waiting, its\n"
                "  retry QUEUE --all     attempts anew; prints how many\n"
                "  clean QUEUE [--older-than SECONDS]\n"
                "                        remove completed jobs (finished\n"
                "                        more than SECONDS ago); prints how\n"
                "                        many\n"
                "\n"
                "  -h   show this help\n"
                "  -V   print the version, then exit\n"
                "  --json  one JSON object per line, for scripts\n"
                "  --   end of options (for an id that starts with '-')\n"
                "\n"
                "Exit status: 0 done, 1 error (config, database), 2 usage,\n"
                "3 no such job (or retry of a job that is not dead).\n"
                "See pxl-jobs(1).\n");
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ms since the epoch as 2026-12-03T14:29:06.123Z; "?" past gmtime. */
static const char *iso_time(int64_t ms, char out[32])
{
        time_t sec = (time_t)(ms / 1000);
        int frac = (int)(ms % 1000);
        struct tm tm;
        char buf[24];

        if (frac < 0) {
                frac += 1000;
                sec--;
        }
        if (gmtime_r(&sec, &tm) == NULL ||
            strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
                snprintf(out, 32, "?");
                return out;
        }
        snprintf(out, 32, "%s.%03dZ", buf, frac);
        return out;
}

static int db_error(const struct jobs *j, const char *what)
{
        fprintf(stderr, "pxl-jobs: %s: %s: %s\n", j->path, what,
                sqlite3_errmsg(j->db));
        return JOBS_ERROR;
}

/* A statement, or NULL after saying why (naming `what`). */
static sqlite3_stmt *prepare(const struct jobs *j, const char *what,
                             const char *sql)
{
        sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK) {
                db_error(j, what);
                sqlite3_finalize(st);
                return NULL;
        }
        return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/*
 * The file of the jobs: the app's SQLite database, or queue.path. A file
 * or table that is not there yet means no jobs (the runtime makes them
 * on first use), so j->db stays NULL; anything else is an error.
 */
static int jobs_open(struct jobs *j, const struct pxl_config *conf)
{
        unsigned busy = JOBS_BUSY_TIMEOUT_MS;
        sqlite3_stmt *st;
        int rc;

        if (conf->database.enabled && !conf->database.postgresql) {
                j->path = conf->database.path;
                busy = conf->database.busy_timeout;
        } else {
                j->path = conf->queue.path;
        }
        if (j->path == NULL) {
                fprintf(stderr,
                        "pxl-jobs: %s: no file for the jobs (set "
                        "name or queue.path)\n",
                        conf->file);
                return JOBS_ERROR;
        }
        if (access(j->path, F_OK) != 0 && errno == ENOENT)
                return JOBS_DONE;
        rc = sqlite3_open_v2(j->path, &j->db, SQLITE_OPEN_READWRITE, NULL);
        if (rc != SQLITE_OK) {
                fprintf(stderr, "pxl-jobs: %s: cannot open: %s\n", j->path,
                        j->db != NULL ? sqlite3_errmsg(j->db)
                                      : sqlite3_errstr(rc));
                return JOBS_ERROR;
        }
        /* The server may be writing: wait for its locks as it does. */
        sqlite3_busy_timeout(j->db, (int)busy);
        st = prepare(j, "reading the schema",
                     "SELECT 1 FROM sqlite_master "
                     "WHERE type = 'table' AND name = 'pxl_jobs'");
        if (st == NULL)
                return JOBS_ERROR;
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE) {
                sqlite3_close(j->db);
                j->db = NULL;
        } else if (rc != SQLITE_ROW) {
                return db_error(j, "reading the schema");
        }
        return JOBS_DONE;
}

/* Print an object (taken; NULL when out of memory) as one line. */
/* Print o (taken) as a line; ok false: building it ran out of memory. */
static int print_json(struct json_object *o, bool ok)
{
        if (!ok) {
                json_object_put(o);
                o = NULL;
        }
        if (o == NULL) {
                fputs("pxl-jobs: out of memory\n", stderr);
                return JOBS_ERROR;
        }
        puts(json_object_to_json_string_ext(o, JSON_FLAGS));
        json_object_put(o);
        return JOBS_DONE;
}

/* Add key = the text of column i (may be NULL); false when out of memory. */
static bool add_text(struct json_object *o, const char *key, sqlite3_stmt *st,
                     int i)
{
        const char *s = (const char *)sqlite3_column_text(st, i);
        struct json_object *v = NULL;

        if (s != NULL) {
                v = json_object_new_string_len(s, sqlite3_column_bytes(st, i));
                if (v == NULL)
                        return false;
        }
        return json_object_object_add(o, key, v) == 0;
}

static bool add_int(struct json_object *o, const char *key, int64_t n)
{
        struct json_object *v = json_object_new_int64(n);

        return v != NULL && json_object_object_add(o, key, v) == 0;
}

/* Widest text of column 0 of sql (the queue bound as ?1), at least min. */
static int widest(const struct jobs *j, const char *sql, const char *queue,
                  int min)
{
        sqlite3_stmt *st;
        int w = min;

        if (j->db == NULL)
                return w;
        st = prepare(j, "measuring", sql);
        if (st == NULL)
                return -1;
        if (queue != NULL)
                bind_text(st, 1, queue);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > w)
                w = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return w > 200 ? 200 : w;
}

/* pxl-jobs app.cfg queues [--json] */
static int cmd_queues(struct jobs *j, char **args)
{
        sqlite3_stmt *st;
        int w = 5, rc;

        (void)args;
        if (!j->json) {
                w = widest(j,
                           "SELECT max(length(CAST(queue AS BLOB))) "
                           "FROM pxl_jobs",
                           NULL, 5);
                if (w < 0)
                        return JOBS_ERROR;
                printf("%-*s %8s %8s %8s %9s %8s\n", w, "QUEUE", "WAITING",
                       "DELAYED", "ACTIVE", "COMPLETED", "DEAD");
        }
        if (j->db == NULL)
                return JOBS_DONE;
        st = prepare(j, "counting the jobs",
                     "SELECT queue, "
                     "total(state = 'waiting' AND run_at <= ?1), "
                     "total(state = 'waiting' AND run_at > ?1), "
                     "total(state = 'active'), "
                     "total(state = 'completed'), "
                     "total(state = 'dead') "
                     "FROM pxl_jobs GROUP BY queue ORDER BY queue");
        if (st == NULL)
                return JOBS_ERROR;
        sqlite3_bind_int64(st, 1, j->now);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                static const char *const names[] = {
                        "waiting", "delayed", "active", "completed", "dead",
                };
                int64_t n[5];

                for (int i = 0; i < 5; i++)
                        n[i] = sqlite3_column_int64(st, i + 1);
                if (j->json) {
                        struct json_object *o = json_object_new_object();
                        bool ok = o != NULL && add_text(o, "queue", st, 0);

                        for (int i = 0; ok && i < 5; i++)
                                ok = add_int(o, names[i], n[i]);
                        if (print_json(o, ok) != JOBS_DONE) {
                                sqlite3_finalize(st);
                                return JOBS_ERROR;
                        }
                        continue;
                }
                printf("%-*s %8" PRId64 " %8" PRId64 " %8" PRId64 " %9" PRId64
                       " %8" PRId64 "\n",
                       w, (const char *)sqlite3_column_text(st, 0), n[0], n[1],
                       n[2], n[3], n[4]);
        }
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? JOBS_DONE : db_error(j, "counting the jobs");
}

/* How show prints a column. */
enum kind { K_TEXT, K_INT, K_TIME, K_JSON, K_STRING };

static const struct {
        const char *name;
        enum kind kind;
} job_columns[] = {
        {"queue", K_TEXT},      {"id", K_TEXT},
        {"state", K_TEXT},      {"priority", K_INT},
        {"attempt", K_INT},     {"attempts", K_INT},
        {"backoff_ms", K_INT},  {"backoff_exp", K_INT},
        {"timeout_ms", K_INT},  {"keep", K_INT},
        {"run_at", K_TIME},     {"lease_until", K_TIME},
        {"owner", K_TEXT},      {"created_at", K_TIME},
        {"started_at", K_TIME}, {"finished_at", K_TIME},
        {"payload", K_JSON},    {"progress", K_JSON},
        {"result", K_JSON},     {"error", K_STRING},
};
#define NCOLUMNS (sizeof(job_columns) / sizeof(*job_columns))

/*
 * Column i as a JSON value in *v (NULL is null): a stored JSON text
 * parsed, anything that does not parse kept as a string. false when out
 * of memory.
 */
static bool column_json(sqlite3_stmt *st, int i, struct json_object **v)
{
        const char *s = (const char *)sqlite3_column_text(st, i);
        int len = sqlite3_column_bytes(st, i);
        struct json_tokener *tok;

        *v = NULL;
        if (s == NULL)
                return true;
        tok = json_tokener_new();
        if (tok == NULL)
                return false;
        /* With its NUL: a number at the end is complete, not cut short. */
        *v = json_tokener_parse_ex(tok, s, len + 1);
        if (json_tokener_get_error(tok) != json_tokener_success ||
            (size_t)json_tokener_get_parse_end(tok) != (size_t)len) {
                json_object_put(*v);
                *v = json_object_new_string_len(s, len);
                json_tokener_free(tok);
                return *v != NULL;
        }
        json_tokener_free(tok);
        return true;
}

static struct json_object *job_object(sqlite3_stmt *st)
{
        struct json_object *o = json_object_new_object();
        char iso[32], key[32];

        if (o == NULL)
                return NULL;
        for (size_t i = 0; i < NCOLUMNS; i++) {
                const char *name = job_columns[i].name;
                struct json_object *v = NULL;
                bool null = sqlite3_column_type(st, (int)i) == SQLITE_NULL;
                bool ok = true;

                switch (job_columns[i].kind) {
                case K_TEXT:
                case K_STRING:
                        ok = add_text(o, name, st, (int)i);
                        break;
                case K_INT:
                        ok = add_int(o, name, sqlite3_column_int64(st, (int)i));
                        break;
                case K_TIME:
                        snprintf(key, sizeof(key), "%s_iso", name);
                        if (null) {
                                ok = json_object_object_add(o, name, NULL) ==
                                             0 &&
                                     json_object_object_add(o, key, NULL) == 0;
                                break;
                        }
                        iso_time(sqlite3_column_int64(st, (int)i), iso);
                        ok = add_int(o, name, sqlite3_column_int64(st, (int)i));
                        v = ok ? json_object_new_string(iso) : NULL;
                        ok = v != NULL &&
                             json_object_object_add(o, key, v) == 0;
                        break;
                case K_JSON:
                        ok = column_json(st, (int)i, &v) &&
                             json_object_object_add(o, name, v) == 0;
                        break;
                }
                if (!ok) {
                        json_object_put(o);
                        return NULL;
                }
        }
        return o;
}

/* show as "name  value" lines; "-" for a field that is not set. */
static int print_job(sqlite3_stmt *st)
{
        char iso[32];

        for (size_t i = 0; i < NCOLUMNS; i++) {
                const char *s = (const char *)sqlite3_column_text(st, (int)i);
                struct json_object *v;

                printf("%-12s ", job_columns[i].name);
                if (s == NULL) {
                        puts("-");
                        continue;
                }
                switch (job_columns[i].kind) {
                case K_TEXT:
                case K_INT:
                        puts(s);
                        break;
                case K_TIME:
                        printf("%s %s\n",
                               iso_time(sqlite3_column_int64(st, (int)i), iso),
                               s);
                        break;
                case K_JSON:
                case K_STRING:
                        if (job_columns[i].kind == K_JSON) {
                                if (!column_json(st, (int)i, &v))
                                        goto oom;
                        } else {
                                v = json_object_new_string_len(
                                        s, sqlite3_column_bytes(st, (int)i));
                                if (v == NULL)
                                        goto oom;
                        }
                        puts(json_object_to_json_string_ext(v, JSON_FLAGS));
                        json_object_put(v);
                        break;
                }
        }
        return JOBS_DONE;
oom:
        fputs("pxl-jobs: out of memory\n", stderr);
        return JOBS_ERROR;
}

static int not_found(const char *queue, const char *id)
{
        fprintf(stderr, "pxl-jobs: no job \"%s\" in queue \"%s\"\n", id, queue);
        return JOBS_NOT_FOUND;
}

/* pxl-jobs app.cfg show QUEUE ID [--json] */
static int cmd_show(struct jobs *j, char **args)
{
        sqlite3_stmt *st;
        int rc;

        if (j->db == NULL)
                return not_found(args[0], args[1]);
        /* The columns in the order of job_columns. */
        st = prepare(j, "reading the job",
                     "SELECT queue, id, state, priority, attempt, attempts, "
                     "backoff_ms, backoff_exp, timeout_ms, keep, run_at, "
                     "lease_until, owner, created_at, started_at, "
                     "finished_at, payload, progress, result, error "
                     "FROM pxl_jobs WHERE queue = ?1 AND id = ?2");
        if (st == NULL)
                return JOBS_ERROR;
        bind_text(st, 1, args[0]);
        bind_text(st, 2, args[1]);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                rc = not_found(args[0], args[1]);
        else if (rc != SQLITE_ROW)
                rc = db_error(j, "reading the job");
        else if (j->json)
                rc = print_json(job_object(st), true);
        else
                rc = print_job(st);
        sqlite3_finalize(st);
        return rc;
}

/* An error on one line: control characters become spaces. */
static void print_oneline(const char *s)
{
        for (; s != NULL && *s != '\0'; s++)
                putchar((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
        putchar('\n');
}

/* pxl-jobs app.cfg dead QUEUE [--json] */
static int cmd_dead(struct jobs *j, char **args)
{
        sqlite3_stmt *st;
        char iso[32];
        int w = 2, rc;

        if (!j->json) {
                w = widest(j,
                           "SELECT max(length(CAST(id AS BLOB))) "
                           "FROM pxl_jobs "
                           "WHERE queue = ?1 AND state = 'dead'",
                           args[0], 2);
                if (w < 0)
                        return JOBS_ERROR;
                printf("%-*s %8s %-24s %s\n", w, "ID", "ATTEMPTS", "DIED",
                       "ERROR");
        }
        if (j->db == NULL)
                return JOBS_DONE;
        st = prepare(j, "listing the dead jobs",
                     "SELECT id, attempt, attempts, error, finished_at "
                     "FROM pxl_jobs WHERE queue = ?1 AND state = 'dead' "
                     "ORDER BY finished_at, id");
        if (st == NULL)
                return JOBS_ERROR;
        bind_text(st, 1, args[0]);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                bool died = sqlite3_column_type(st, 4) != SQLITE_NULL;
                int64_t at = sqlite3_column_int64(st, 4);
                char tries[48];

                if (j->json) {
                        struct json_object *o = json_object_new_object();
                        struct json_object *v = NULL;
                        bool ok = o != NULL && add_text(o, "id", st, 0) &&
                                  add_int(o, "attempt",
                                          sqlite3_column_int64(st, 1)) &&
                                  add_int(o, "attempts",
                                          sqlite3_column_int64(st, 2)) &&
                                  add_text(o, "error", st, 3) &&
                                  (died ? add_int(o, "finished_at", at)
                                        : json_object_object_add(
                                                  o, "finished_at", NULL) == 0);

                        if (ok && died) {
                                v = json_object_new_string(iso_time(at, iso));
                                ok = v != NULL;
                        }
                        ok = ok && json_object_object_add(o, "finished_at_iso",
                                                          v) == 0;
                        if (print_json(o, ok) != JOBS_DONE) {
                                sqlite3_finalize(st);
                                return JOBS_ERROR;
                        }
                        continue;
                }
                snprintf(tries, sizeof(tries), "%" PRId64 "/%" PRId64,
                         (int64_t)sqlite3_column_int64(st, 1),
                         (int64_t)sqlite3_column_int64(st, 2));
                printf("%-*s %8s %-24s ", w,
                       (const char *)sqlite3_column_text(st, 0), tries,
                       died ? iso_time(at, iso) : "-");
                print_oneline((const char *)sqlite3_column_text(st, 3));
        }
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? JOBS_DONE
                                 : db_error(j, "listing the dead jobs");
}

/* Why retry QUEUE ID changed nothing: no such job, or not dead. */
static int not_dead(const struct jobs *j, const char *queue, const char *id)
{
        sqlite3_stmt *st = prepare(j, "reading the job",
                                   "SELECT state FROM pxl_jobs "
                                   "WHERE queue = ?1 AND id = ?2");
        int rc;

        if (st == NULL)
                return JOBS_ERROR;
        bind_text(st, 1, queue);
        bind_text(st, 2, id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                fprintf(stderr,
                        "pxl-jobs: job \"%s\" in queue \"%s\" is %s, not "
                        "dead\n",
                        id, queue, (const char *)sqlite3_column_text(st, 0));
                rc = JOBS_NOT_FOUND;
        } else if (rc == SQLITE_DONE) {
                rc = not_found(queue, id);
        } else {
                rc = db_error(j, "reading the job");
        }
        sqlite3_finalize(st);
        return rc;
}

/*
 * pxl-jobs app.cfg retry QUEUE ID | retry QUEUE --all
 * A dead job waits again from now with its attempts anew; its error
 * stays until it runs, so `show` still tells why it died.
 */
static int cmd_retry(struct jobs *j, char **args)
{
        sqlite3_stmt *st;
        int rc;

        if (j->db == NULL)
                return j->all ? (puts("0 retried"), JOBS_DONE)
                              : not_found(args[0], args[1]);
        st = prepare(j, "retrying",
                     "UPDATE pxl_jobs SET state = 'waiting', run_at = ?2, "
                     "attempt = 0, lease_until = NULL, owner = NULL, "
                     "finished_at = NULL "
                     "WHERE queue = ?1 AND state = 'dead' "
                     "AND (?3 IS NULL OR id = ?3)");
        if (st == NULL)
                return JOBS_ERROR;
        bind_text(st, 1, args[0]);
        sqlite3_bind_int64(st, 2, j->now);
        if (!j->all)
                bind_text(st, 3, args[1]);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return db_error(j, "retrying");
        if (!j->all && sqlite3_changes(j->db) == 0)
                return not_dead(j, args[0], args[1]);
        printf("%d retried\n", sqlite3_changes(j->db));
        return JOBS_DONE;
}

/* pxl-jobs app.cfg clean QUEUE [--older-than SECONDS] */
static int cmd_clean(struct jobs *j, char **args)
{
        sqlite3_stmt *st;
        int rc;

        if (j->db == NULL) {
                puts("0 removed");
                return JOBS_DONE;
        }
        st = prepare(j, "removing completed jobs",
                     "DELETE FROM pxl_jobs "
                     "WHERE queue = ?1 AND state = 'completed' "
                     "AND (?2 IS NULL OR finished_at < ?2)");
        if (st == NULL)
                return JOBS_ERROR;
        bind_text(st, 1, args[0]);
        if (j->older_than >= 0)
                sqlite3_bind_int64(st, 2, j->now - j->older_than * 1000);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return db_error(j, "removing completed jobs");
        printf("%d removed\n", sqlite3_changes(j->db));
        return JOBS_DONE;
}

static const struct command commands[] = {
        {"queues", 0, OPT_JSON, cmd_queues},
        {"show", 2, OPT_JSON, cmd_show},
        {"dead", 1, OPT_JSON, cmd_dead},
        {"retry", 2, OPT_ALL, cmd_retry}, /* QUEUE --all: one argument */
        {"clean", 1, OPT_OLDER_THAN, cmd_clean},
};

static int usage_error(const char *fmt, ...)
        __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
        va_list ap;

        fputs("pxl-jobs: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\n", stderr);
        usage(stderr);
        return JOBS_USAGE;
}

/* SECONDS: digits only, at most 100 years. */
static bool parse_seconds(const char *s, int64_t *out)
{
        char *end;
        unsigned long long v;

        if (*s < '0' || *s > '9')
                return false;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end != '\0' || v > 100ULL * 366 * 86400)
                return false;
        *out = (int64_t)v;
        return true;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"json", no_argument, NULL, 'j'},
                {"all", no_argument, NULL, 'a'},
                {"older-than", required_argument, NULL, 'o'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {NULL, 0, NULL, 0},
        };
        struct jobs j = {.older_than = -1};
        const struct command *cmd = NULL;
        struct pxl_str errors = {0};
        struct pxl_config *conf;
        unsigned given = 0;
        int opt, nargs, rc;

        while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
                switch (opt) {
                case 'j':
                        j.json = true;
                        given |= OPT_JSON;
                        break;
                case 'a':
                        j.all = true;
                        given |= OPT_ALL;
                        break;
                case 'o':
                        if (!parse_seconds(optarg, &j.older_than))
                                return usage_error("--older-than: \"%s\" is "
                                                   "not a number of seconds",
                                                   optarg);
                        given |= OPT_OLDER_THAN;
                        break;
                case 'h':
                        usage(stdout);
                        return JOBS_DONE;
                case 'V':
                        printf("pxl-jobs %s\n", PACKAGE_VERSION);
                        return JOBS_DONE;
                default:
                        usage(stderr);
                        return JOBS_USAGE;
                }
        }
        if (argc - optind < 2)
                return usage_error("want an app file and a command");
        for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
                if (strcmp(argv[optind + 1], commands[i].name) == 0)
                        cmd = &commands[i];
        if (cmd == NULL)
                return usage_error("unknown command \"%s\"", argv[optind + 1]);
        nargs = cmd->nargs - (j.all ? 1 : 0);
        if (given & ~cmd->flags)
                return usage_error("%s does not take that option", cmd->name);
        if (argc - optind - 2 != nargs)
                return usage_error("%s: wrong number of arguments", cmd->name);
        conf = pxl_conf_load(argv[optind], &errors);
        if (conf == NULL || conf->nerrors > 0) {
                if (errors.len > 0)
                        fputs(errors.p, stderr);
                pxl_conf_free(conf);
                pxl_str_fini(&errors);
                return JOBS_ERROR;
        }
        j.now = now_ms();
        rc = jobs_open(&j, conf);
        if (rc == JOBS_DONE)
                rc = cmd->run(&j, argv + optind + 2);
        if (j.db != NULL)
                sqlite3_close(j.db);
        if (rc == JOBS_DONE && (fflush(stdout) != 0 || ferror(stdout))) {
                fprintf(stderr, "pxl-jobs: writing the output: %s\n",
                        strerror(errno));
                rc = JOBS_ERROR;
        }
        pxl_conf_free(conf);
        pxl_str_fini(&errors);
        return rc;
}
