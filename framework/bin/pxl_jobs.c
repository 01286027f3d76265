/*
 * pxl_jobs.c - the pxl-jobs program: what an operator sees of an app's
 * jobs (counts per queue, one job, the dead ones) and the changes an
 * operator makes (retry dead jobs, remove completed ones). The store is
 * chosen as pxl-serve chooses it: Redis with a `redis` group
 * (pxl_jobs_redis.c), else SQLite (pxl_jobs_sqlite.c); both answer in
 * the rows of pxl_jobs.h, and only this file prints. Blocking on
 * purpose: a command, never the server's loop.
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

#include <json-c/json.h>

#include "config.h"
#include "pxl/pxl.h"
#include "pxl_conf.h"
#include "pxl_jobs.h"
#include "pxl_str.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Text columns are as wide as their widest value, up to this. */
#define MAX_WIDTH 200

const struct pxl_jobs_column pxl_jobs_queue_columns[QC_N] = {
        [QC_QUEUE] = {"queue", K_TEXT},
        [QC_WAITING] = {"waiting", K_INT},
        [QC_DELAYED] = {"delayed", K_INT},
        [QC_ACTIVE] = {"active", K_INT},
        [QC_COMPLETED] = {"completed", K_INT},
        [QC_DEAD] = {"dead", K_INT},
};

const struct pxl_jobs_column pxl_jobs_dead_columns[DC_N] = {
        [DC_ID] = {"id", K_TEXT},
        [DC_ATTEMPT] = {"attempt", K_INT},
        [DC_ATTEMPTS] = {"attempts", K_INT},
        [DC_ERROR] = {"error", K_TEXT},
        [DC_FINISHED_AT] = {"finished_at", K_TIME},
};

/* The fields of a job, in the order show prints them. */
const struct pxl_jobs_column pxl_jobs_job_columns[JC_N] = {
        [JC_QUEUE] = {"queue", K_TEXT},
        [JC_ID] = {"id", K_TEXT},
        [JC_STATE] = {"state", K_TEXT},
        [JC_PRIORITY] = {"priority", K_INT},
        [JC_ATTEMPT] = {"attempt", K_INT},
        [JC_ATTEMPTS] = {"attempts", K_INT},
        [JC_BACKOFF_MS] = {"backoff_ms", K_INT},
        [JC_BACKOFF_EXP] = {"backoff_exp", K_INT},
        [JC_TIMEOUT_MS] = {"timeout_ms", K_INT},
        [JC_KEEP] = {"keep", K_INT},
        [JC_RUN_AT] = {"run_at", K_TIME},
        [JC_LEASE_UNTIL] = {"lease_until", K_TIME},
        [JC_OWNER] = {"owner", K_TEXT},
        [JC_CREATED_AT] = {"created_at", K_TIME},
        [JC_STARTED_AT] = {"started_at", K_TIME},
        [JC_FINISHED_AT] = {"finished_at", K_TIME},
        [JC_PAYLOAD] = {"payload", K_JSON},
        [JC_PROGRESS] = {"progress", K_JSON},
        [JC_RESULT] = {"result", K_JSON},
        [JC_ERROR] = {"error", K_STRING},
};

struct command {
        const char *name;
        int nargs;      /* arguments after the command */
        unsigned flags; /* the options it takes */
        int (*run)(struct pxl_jobs *j, char **args);
};

enum { OPT_JSON = 1, OPT_ALL = 2, OPT_OLDER_THAN = 4 };

static void usage(FILE *f)
{
        fprintf(f,
                "usage: pxl-jobs [-h] [-V] app.cfg COMMAND [ARGS]\n"
                "\n"
                "Look at and repair the background jobs of the app described\n"
                "by app.cfg: in Redis when it has a redis group, else in its\n"
                "SQLite database (database.path) or else in queue.path.\n"
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
                "  -h, --help     show this help\n"
                "  -V, --version  print the version, then exit\n"
                "  --json  one JSON object per line, for scripts\n"
                "  --   end of options (for an id that starts with '-')\n"
                "\n"
                "Exit status: 0 done, 1 error (config, database, Redis),\n"
                "2 usage, 3 no such job (or retry of a job that is not\n"
                "dead). See pxl-jobs(1).\n");
}

int64_t pxl_jobs_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int out_of_memory(void)
{
        fputs("pxl-jobs: out of memory\n", stderr);
        return JOBS_ERROR;
}

/* ---- rows --------------------------------------------------------------- */

struct pxl_jobs_value *pxl_jobs_row_new(struct pxl_jobs_rows *r)
{
        struct pxl_jobs_value *row;

        if (r->n == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 16;
                struct pxl_jobs_value *v;

                if (cap > SIZE_MAX / sizeof(*v) / r->ncols)
                        return NULL;
                v = realloc(r->v, cap * r->ncols * sizeof(*v));
                if (v == NULL)
                        return NULL;
                r->v = v;
                r->cap = cap;
        }
        row = r->v + r->n++ * r->ncols;
        memset(row, 0, r->ncols * sizeof(*row));
        return row;
}

bool pxl_jobs_set(struct pxl_jobs_value *v, const char *s, size_t len)
{
        free(v->s);
        v->s = NULL;
        v->len = 0;
        if (s == NULL)
                return true;
        if ((v->s = malloc(len + 1)) == NULL)
                return false;
        memcpy(v->s, s, len);
        v->s[len] = '\0';
        v->len = len;
        return true;
}

bool pxl_jobs_set_int(struct pxl_jobs_value *v, int64_t n)
{
        char buf[24];

        return pxl_jobs_set(v, buf,
                            (size_t)snprintf(buf, sizeof(buf), "%" PRId64, n));
}

void pxl_jobs_rows_fini(struct pxl_jobs_rows *r)
{
        for (size_t i = 0; i < r->n * r->ncols; i++)
                free(r->v[i].s);
        free(r->v);
        r->v = NULL;
        r->n = r->cap = 0;
}

static int64_t int_of(const struct pxl_jobs_value *v)
{
        return v->s != NULL ? strtoll(v->s, NULL, 10) : 0;
}

/* The widest value of column col (bytes), at least min, at most 200. */
static int widest(const struct pxl_jobs_rows *r, size_t col, int min)
{
        size_t w = (size_t)min;

        for (size_t i = 0; i < r->n; i++)
                if (r->v[i * r->ncols + col].len > w)
                        w = r->v[i * r->ncols + col].len;
        return w > MAX_WIDTH ? MAX_WIDTH : (int)w;
}

/* ---- printing ----------------------------------------------------------- */

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

/*
 * A stored JSON text as a JSON value in *v (NULL is null), anything that
 * does not parse as a string. false when out of memory.
 */
static bool parse_json(const struct pxl_jobs_value *val, struct json_object **v)
{
        struct json_tokener *tok;

        *v = NULL;
        if (val->s == NULL)
                return true;
        tok = json_tokener_new();
        if (tok == NULL)
                return false;
        /* With its NUL: a number at the end is complete, not cut short. */
        *v = json_tokener_parse_ex(tok, val->s, (int)val->len + 1);
        if (json_tokener_get_error(tok) != json_tokener_success ||
            (size_t)json_tokener_get_parse_end(tok) != val->len) {
                json_object_put(*v);
                *v = json_object_new_string_len(val->s, (int)val->len);
                json_tokener_free(tok);
                return *v != NULL;
        }
        json_tokener_free(tok);
        return true;
}

/*
 * A row as one JSON object, the columns' names as keys: text as
 * strings, numbers as numbers, a time as ms and as ISO 8601 in NAME_iso,
 * stored JSON parsed; unset values are null. NULL when out of memory.
 */
static struct json_object *row_object(const struct pxl_jobs_column *cols,
                                      const struct pxl_jobs_value *row,
                                      size_t ncols)
{
        struct json_object *o = json_object_new_object();
        char iso[32], key[48];

        for (size_t i = 0; o != NULL && i < ncols; i++) {
                const struct pxl_jobs_value *val = &row[i];
                struct json_object *v = NULL, *t = NULL;
                bool ok = true;

                switch (cols[i].kind) {
                case K_TEXT:
                case K_STRING:
                        if (val->s != NULL)
                                ok = (v = json_object_new_string_len(
                                              val->s, (int)val->len)) != NULL;
                        break;
                case K_INT:
                        if (val->s != NULL)
                                ok = (v = json_object_new_int64(int_of(val))) !=
                                     NULL;
                        break;
                case K_TIME:
                        if (val->s != NULL)
                                ok = (v = json_object_new_int64(int_of(val))) !=
                                             NULL &&
                                     (t = json_object_new_string(iso_time(
                                              int_of(val), iso))) != NULL;
                        break;
                case K_JSON:
                        ok = parse_json(val, &v);
                        break;
                }
                /* A value that could not be added is still ours. */
                if (!ok || json_object_object_add(o, cols[i].name, v) != 0) {
                        json_object_put(v);
                        ok = false;
                }
                snprintf(key, sizeof(key), "%s_iso", cols[i].name);
                if (ok && cols[i].kind == K_TIME &&
                    json_object_object_add(o, key, t) == 0)
                        t = NULL;
                else if (cols[i].kind == K_TIME)
                        ok = false;
                json_object_put(t);
                if (!ok) {
                        json_object_put(o);
                        o = NULL;
                }
        }
        return o;
}

/* --json: every row as one JSON object a line. */
static int print_json(const struct pxl_jobs_column *cols,
                      const struct pxl_jobs_rows *r)
{
        for (size_t i = 0; i < r->n; i++) {
                struct json_object *o =
                        row_object(cols, r->v + i * r->ncols, r->ncols);

                if (o == NULL)
                        return out_of_memory();
                puts(json_object_to_json_string_ext(o, JSON_FLAGS));
                json_object_put(o);
        }
        return JOBS_DONE;
}

/* An error on one line: control characters become spaces. */
static void print_oneline(const char *s)
{
        for (; s != NULL && *s != '\0'; s++)
                putchar((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
        putchar('\n');
}

/* show as "name  value" lines; "-" for a field that is not set. */
static int print_job(const struct pxl_jobs_value *row)
{
        char iso[32];

        for (size_t i = 0; i < JC_N; i++) {
                const struct pxl_jobs_value *val = &row[i];
                struct json_object *v = NULL;

                printf("%-12s ", pxl_jobs_job_columns[i].name);
                if (val->s == NULL) {
                        puts("-");
                        continue;
                }
                switch (pxl_jobs_job_columns[i].kind) {
                case K_TEXT:
                case K_INT:
                        puts(val->s);
                        break;
                case K_TIME:
                        printf("%s %s\n", iso_time(int_of(val), iso), val->s);
                        break;
                case K_JSON:
                        if (!parse_json(val, &v))
                                return out_of_memory();
                        puts(json_object_to_json_string_ext(v, JSON_FLAGS));
                        json_object_put(v);
                        break;
                case K_STRING:
                        v = json_object_new_string_len(val->s, (int)val->len);
                        if (v == NULL)
                                return out_of_memory();
                        puts(json_object_to_json_string_ext(v, JSON_FLAGS));
                        json_object_put(v);
                        break;
                }
        }
        return JOBS_DONE;
}

/* ---- commands ----------------------------------------------------------- */

/* pxl-jobs app.cfg queues [--json] */
static int cmd_queues(struct pxl_jobs *j, char **args)
{
        struct pxl_jobs_rows r = {.ncols = QC_N};
        int w, rc;

        (void)args;
        rc = j->store->queues(j, &r);
        if (rc == JOBS_DONE && j->json) {
                rc = print_json(pxl_jobs_queue_columns, &r);
        } else if (rc == JOBS_DONE) {
                w = widest(&r, QC_QUEUE, 5);
                printf("%-*s %8s %8s %8s %9s %8s\n", w, "QUEUE", "WAITING",
                       "DELAYED", "ACTIVE", "COMPLETED", "DEAD");
                for (size_t i = 0; i < r.n; i++) {
                        const struct pxl_jobs_value *v = r.v + i * r.ncols;

                        printf("%-*s %8" PRId64 " %8" PRId64 " %8" PRId64
                               " %9" PRId64 " %8" PRId64 "\n",
                               w, v[QC_QUEUE].s, int_of(&v[QC_WAITING]),
                               int_of(&v[QC_DELAYED]), int_of(&v[QC_ACTIVE]),
                               int_of(&v[QC_COMPLETED]), int_of(&v[QC_DEAD]));
                }
        }
        pxl_jobs_rows_fini(&r);
        return rc;
}

static int not_found(const char *queue, const char *id)
{
        fprintf(stderr, "pxl-jobs: no job \"%s\" in queue \"%s\"\n", id, queue);
        return JOBS_NOT_FOUND;
}

/* pxl-jobs app.cfg show QUEUE ID [--json] */
static int cmd_show(struct pxl_jobs *j, char **args)
{
        struct pxl_jobs_rows r = {.ncols = JC_N};
        int rc = j->store->show(j, args[0], args[1], &r);

        if (rc == JOBS_NOT_FOUND)
                rc = not_found(args[0], args[1]);
        else if (rc == JOBS_DONE && j->json)
                rc = print_json(pxl_jobs_job_columns, &r);
        else if (rc == JOBS_DONE && r.n > 0)
                rc = print_job(r.v);
        pxl_jobs_rows_fini(&r);
        return rc;
}

/* pxl-jobs app.cfg dead QUEUE [--json] */
static int cmd_dead(struct pxl_jobs *j, char **args)
{
        struct pxl_jobs_rows r = {.ncols = DC_N};
        char iso[32], tries[48];
        int w, rc;

        rc = j->store->dead(j, args[0], &r);
        if (rc == JOBS_DONE && j->json) {
                rc = print_json(pxl_jobs_dead_columns, &r);
        } else if (rc == JOBS_DONE) {
                w = widest(&r, DC_ID, 2);
                printf("%-*s %8s %-24s %s\n", w, "ID", "ATTEMPTS", "DIED",
                       "ERROR");
                for (size_t i = 0; i < r.n; i++) {
                        const struct pxl_jobs_value *v = r.v + i * r.ncols;

                        snprintf(tries, sizeof(tries), "%" PRId64 "/%" PRId64,
                                 int_of(&v[DC_ATTEMPT]),
                                 int_of(&v[DC_ATTEMPTS]));
                        printf("%-*s %8s %-24s ", w, v[DC_ID].s, tries,
                               v[DC_FINISHED_AT].s != NULL
                                       ? iso_time(int_of(&v[DC_FINISHED_AT]),
                                                  iso)
                                       : "-");
                        print_oneline(v[DC_ERROR].s);
                }
        }
        pxl_jobs_rows_fini(&r);
        return rc;
}

/*
 * pxl-jobs app.cfg retry QUEUE ID | retry QUEUE --all
 * A dead job waits again from now with its attempts anew; its error
 * stays until it runs, so `show` still tells why it died.
 */
static int cmd_retry(struct pxl_jobs *j, char **args)
{
        const char *id = j->all ? NULL : args[1];
        char *state = NULL;
        int64_t n = 0;
        int rc = j->store->retry(j, args[0], id, &n, &state);

        if (rc == JOBS_DONE && id != NULL && n == 0 && state == NULL) {
                rc = not_found(args[0], id);
        } else if (rc == JOBS_DONE && id != NULL && n == 0) {
                fprintf(stderr,
                        "pxl-jobs: job \"%s\" in queue \"%s\" is %s, not "
                        "dead\n",
                        id, args[0], state);
                rc = JOBS_NOT_FOUND;
        } else if (rc == JOBS_DONE) {
                printf("%" PRId64 " retried\n", n);
        }
        free(state);
        return rc;
}

/* pxl-jobs app.cfg clean QUEUE [--older-than SECONDS] */
static int cmd_clean(struct pxl_jobs *j, char **args)
{
        int64_t n = 0;
        int rc = j->store->clean(
                j, args[0],
                j->older_than >= 0 ? j->now - j->older_than * 1000 : -1, &n);

        if (rc == JOBS_DONE)
                printf("%" PRId64 " removed\n", n);
        return rc;
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
        struct pxl_jobs j = {.older_than = -1};
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
        conf = pxl_conf_load(argv[optind], NULL, &errors);
        if (conf == NULL || conf->nerrors > 0) {
                if (errors.len > 0)
                        fputs(errors.p, stderr);
                pxl_conf_free(conf);
                pxl_str_fini(&errors);
                return JOBS_ERROR;
        }
        j.now = pxl_jobs_now_ms();
        /* Where pxl-serve keeps them (pxl_queue.c's backend_of). */
        j.store = conf->redis.enabled ? &pxl_jobs_redis : &pxl_jobs_sqlite;
        rc = j.store->open(&j, conf);
        if (rc == JOBS_DONE)
                rc = cmd->run(&j, argv + optind + 2);
        j.store->close(&j);
        if (rc == JOBS_DONE && (fflush(stdout) != 0 || ferror(stdout))) {
                fprintf(stderr, "pxl-jobs: writing the output: %s\n",
                        strerror(errno));
                rc = JOBS_ERROR;
        }
        pxl_conf_free(conf);
        pxl_str_fini(&errors);
        return rc;
}
