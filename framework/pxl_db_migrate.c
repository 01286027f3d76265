/*
 * pxl_db_migrate.c - the app's migrations: a folder of NNN_name.sql files
 * applied in name order, each in its own transaction together with its
 * row in pxl_migrations (name, SHA-256 of the file, when). Blocking, on
 * purpose: it runs once, at the start, before any worker serves (in the
 * master of a cluster), or alone for `pxl-serve --migrate`.
 *
 * Several machines starting at once: PostgreSQL serialises them with an
 * advisory lock held for the whole run; SQLite with BEGIN IMMEDIATE per
 * file, re-reading inside it whether another process applied the file.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "pxl/pxl.h"
#include "pxl_conf.h"
#include "pxl_db.h"
#include "pxl_db_int.h"
#include "pxl_str.h"

struct migration {
        char *name; /* NNN_name.sql */
        unsigned long long number;
        char *sql;
        char sum[65]; /* SHA-256, hex */
};

struct migrations {
        const char *dir;
        struct migration *v;
        size_t n;
};

static void migrations_free(struct migrations *m)
{
        for (size_t i = 0; i < m->n; i++) {
                free(m->v[i].name);
                free(m->v[i].sql);
        }
        free(m->v);
        m->v = NULL;
        m->n = 0;
}

/* NNN_name.sql: digits, an underscore, a name, ".sql". */
static bool migration_name(const char *name, unsigned long long *number)
{
        const char *p = name;
        size_t len = strlen(name);

        if (len < 6 || strcmp(name + len - 4, ".sql") != 0)
                return false;
        while (*p >= '0' && *p <= '9')
                p++;
        if (p == name || *p != '_' || p + 1 == name + len - 4)
                return false;
        *number = strtoull(name, NULL, 10);
        return true;
}

static int by_name(const void *a, const void *b)
{
        return strcmp(((const struct migration *)a)->name,
                      ((const struct migration *)b)->name);
}

static int read_sql(const char *path, struct migration *m,
                    struct pxl_str *errors)
{
        FILE *f = fopen(path, "rb");
        struct pxl_str text = {0};
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        char buf[8192];
        size_t n;

        if (f == NULL) {
                pxl_str_report(errors, path, 0, NULL, "cannot read: %s",
                               strerror(errno));
                return PXL_ERR;
        }
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                if (pxl_str_append(&text, buf, n) < 0)
                        break;
        if (ferror(f) || n > 0 || pxl_str_append(&text, "", 1) < 0) {
                pxl_str_report(errors, path, 0, NULL, "cannot read: %s",
                               ferror(f) ? strerror(errno) : "out of memory");
                fclose(f);
                pxl_str_fini(&text);
                return PXL_ERR;
        }
        fclose(f);
        if (strlen(text.p) != text.len - 1) {
                pxl_str_report(errors, path, 0, NULL,
                               "contains a NUL byte: not SQL text");
                pxl_str_fini(&text);
                return PXL_ERR;
        }
        EVP_Digest(text.p, text.len - 1, md, &mdlen, EVP_sha256(), NULL);
        pxl_hex(m->sum, md, mdlen);
        m->sql = text.p; /* taken */
        return 0;
}

/* Read the folder: every NNN_name.sql, sorted, with its text and sum. */
static int migrations_load(const char *dir, struct migrations *m,
                           bool read_files, struct pxl_str *errors)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        size_t cap = 0;
        int rc = 0;

        m->dir = dir;
        if (d == NULL) {
                pxl_str_report(errors, dir, 0, NULL,
                               "database.migrations: cannot open: %s",
                               strerror(errno));
                return PXL_ERR;
        }
        while ((e = readdir(d)) != NULL) {
                size_t len = strlen(e->d_name);
                unsigned long long number;
                char path[4096];

                if (len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0)
                        continue; /* a README or an editor's file */
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                if (!migration_name(e->d_name, &number)) {
                        pxl_str_report(errors, path, 0, NULL,
                                       "not a migration name: want "
                                       "NNN_name.sql (digits, '_', a name)");
                        rc = PXL_ERR;
                        continue;
                }
                if (m->n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct migration *v = realloc(m->v, ncap * sizeof(*v));

                        if (v == NULL) {
                                rc = PXL_ENOMEM;
                                break;
                        }
                        m->v = v;
                        cap = ncap;
                }
                memset(&m->v[m->n], 0, sizeof(m->v[m->n]));
                m->v[m->n].number = number;
                if ((m->v[m->n].name = strdup(e->d_name)) == NULL) {
                        rc = PXL_ENOMEM;
                        break;
                }
                m->n++;
                if (read_files && read_sql(path, &m->v[m->n - 1], errors) < 0)
                        rc = PXL_ERR;
        }
        closedir(d);
        if (rc == PXL_ENOMEM)
                pxl_str_puts(errors, "out of memory\n");
        if (m->n > 1)
                qsort(m->v, m->n, sizeof(*m->v), by_name);
        for (size_t i = 1; i < m->n; i++)
                if (m->v[i].number == m->v[i - 1].number) {
                        pxl_str_report(errors, dir, 0, NULL,
                                       "%s and %s have the same number",
                                       m->v[i - 1].name, m->v[i].name);
                        rc = PXL_ERR;
                }
        return rc;
}

int pxl_db_check_migrations(const struct pxl_config *conf,
                            struct pxl_str *errors)
{
        struct migrations m = {0};
        int rc;

        if (!conf->database.enabled || conf->database.migrations == NULL)
                return 0;
        rc = migrations_load(conf->database.migrations, &m, false, errors);
        migrations_free(&m);
        return rc < 0 ? PXL_ERR : 0;
}

/* ---- one connection, either kind, used synchronously ---------------- */

struct mig_conn {
        PGconn *pg;
        sqlite3 *lite;
        char *error; /* the last failure's text */
};

static void conn_error(struct mig_conn *c, const char *text)
{
        free(c->error);
        c->error = strdup(text ? text : "unknown error");
}

static void pg_error(struct mig_conn *c, const PGresult *res)
{
        const char *msg =
                res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        char buf[1024];

        if (msg == NULL) {
                conn_error(c, PQerrorMessage(c->pg));
                if (c->error != NULL)
                        c->error[strcspn(c->error, "\n")] = '\0';
                return;
        }
        snprintf(buf, sizeof(buf), "%s", msg);
        if (PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) != NULL)
                snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
                         " (at character %s)",
                         PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION));
        conn_error(c, buf);
}

/* Run SQL text, any number of statements, without results. */
static int conn_exec(struct mig_conn *c, const char *sql)
{
        if (c->pg != NULL) {
                PGresult *res = PQexec(c->pg, sql);
                ExecStatusType st = PQresultStatus(res);
                int rc = 0;

                if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
                    st != PGRES_EMPTY_QUERY) {
                        pg_error(c, res);
                        rc = PXL_ERR;
                }
                PQclear(res);
                return rc;
        } else {
                char *msg = NULL;

                if (sqlite3_exec(c->lite, sql, NULL, NULL, &msg) == SQLITE_OK)
                        return 0;
                conn_error(c, msg ? msg : sqlite3_errmsg(c->lite));
                sqlite3_free(msg);
                return PXL_ERR;
        }
}

/*
 * The checksum recorded for name: 1 with sum filled, 0 when the file was
 * never applied, PXL_ERR.
 */
static int conn_applied(struct mig_conn *c, const char *name, char sum[65])
{
        static const char q[] = "SELECT checksum FROM pxl_migrations "
                                "WHERE name = $1";
        int rc = 0;

        if (c->pg != NULL) {
                PGresult *res =
                        PQexecParams(c->pg, q, 1, NULL, &name, NULL, NULL, 0);

                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                        pg_error(c, res);
                        rc = PXL_ERR;
                } else if (PQntuples(res) == 1) {
                        snprintf(sum, 65, "%s", PQgetvalue(res, 0, 0));
                        rc = 1;
                }
                PQclear(res);
        } else {
                sqlite3_stmt *st = NULL;
                int step;

                if (sqlite3_prepare_v2(c->lite, q, -1, &st, NULL) !=
                    SQLITE_OK) {
                        conn_error(c, sqlite3_errmsg(c->lite));
                        return PXL_ERR;
                }
                sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
                step = sqlite3_step(st);
                if (step == SQLITE_ROW) {
                        snprintf(sum, 65, "%s",
                                 (const char *)sqlite3_column_text(st, 0));
                        rc = 1;
                } else if (step != SQLITE_DONE) {
                        conn_error(c, sqlite3_errmsg(c->lite));
                        rc = PXL_ERR;
                }
                sqlite3_finalize(st);
        }
        return rc;
}

static int conn_record(struct mig_conn *c, const char *name, const char *sum)
{
        static const char q[] = "INSERT INTO pxl_migrations (name, checksum) "
                                "VALUES ($1, $2)";
        const char *values[2] = {name, sum};
        int rc = 0;

        if (c->pg != NULL) {
                PGresult *res =
                        PQexecParams(c->pg, q, 2, NULL, values, NULL, NULL, 0);

                if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                        pg_error(c, res);
                        rc = PXL_ERR;
                }
                PQclear(res);
        } else {
                sqlite3_stmt *st = NULL;

                if (sqlite3_prepare_v2(c->lite, q, -1, &st, NULL) !=
                    SQLITE_OK) {
                        conn_error(c, sqlite3_errmsg(c->lite));
                        return PXL_ERR;
                }
                sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, sum, -1, SQLITE_STATIC);
                if (sqlite3_step(st) != SQLITE_DONE) {
                        conn_error(c, sqlite3_errmsg(c->lite));
                        rc = PXL_ERR;
                }
                sqlite3_finalize(st);
        }
        return rc;
}

/* Any 64-bit key is ours: "pxl migrations" in ASCII, truncated. */
#define MIGRATION_LOCK "7370786c6d696772"

static int conn_open(const struct pxl_config *conf, struct mig_conn *c,
                     struct pxl_str *errors)
{
        const struct pxl_db_conf *db = &conf->database;

        if (db->postgresql) {
                char timeout[16], *password = NULL;
                const char *keys[5], *values[5];
                int k = 0;

                if (pxl_db_password(db, &password, errors) < 0)
                        return PXL_ERR;
                snprintf(timeout, sizeof(timeout), "%u", db->connect_timeout);
                keys[k] = "dbname"; /* expanded: a URL or a conninfo */
                values[k++] = db->url;
                if (password != NULL) {
                        keys[k] = "password";
                        values[k++] = password;
                }
                keys[k] = "connect_timeout";
                values[k++] = timeout;
                keys[k] = "fallback_application_name";
                values[k++] = "pxl-migrate";
                keys[k] = values[k] = NULL;
                c->pg = PQconnectdbParams(keys, values, 1);
                if (password != NULL) {
                        explicit_bzero(password, strlen(password));
                        free(password);
                }
                if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
                        const char *msg =
                                c->pg ? PQerrorMessage(c->pg) : "out of memory";

                        pxl_str_report(errors, conf->file, 0, "database",
                                       "cannot connect to PostgreSQL: %.*s",
                                       (int)strcspn(msg, "\n"), msg);
                        return PXL_ERR;
                }
                if (conn_exec(c, "SET client_min_messages = warning") < 0 ||
                    conn_exec(c, "SELECT pg_advisory_lock(x'" MIGRATION_LOCK
                                 "'::bigint)") < 0 ||
                    conn_exec(c, "CREATE TABLE IF NOT EXISTS pxl_migrations ("
                                 "name text PRIMARY KEY, "
                                 "checksum text NOT NULL, "
                                 "applied_at timestamptz NOT NULL "
                                 "DEFAULT now())") < 0) {
                        pxl_str_report(errors, conf->file, 0, "database",
                                       "migrations: %s", c->error);
                        return PXL_ERR;
                }
                return 0;
        }
        if (sqlite3_open_v2(db->path, &c->lite,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            NULL) != SQLITE_OK) {
                pxl_str_report(errors, conf->file, 0, "database",
                               "cannot open %s: %s", db->path,
                               c->lite ? sqlite3_errmsg(c->lite)
                                       : "out of memory");
                return PXL_ERR;
        }
        /* Another server starting at once waits rather than fails. */
        sqlite3_busy_timeout(c->lite, db->busy_timeout > 5000
                                              ? (int)db->busy_timeout
                                              : 5000);
        if (conn_exec(c, "PRAGMA journal_mode = WAL") < 0 ||
            conn_exec(c, "PRAGMA foreign_keys = ON") < 0 ||
            conn_exec(c, "CREATE TABLE IF NOT EXISTS pxl_migrations ("
                         "name TEXT PRIMARY KEY, checksum TEXT NOT NULL, "
                         "applied_at TEXT NOT NULL "
                         "DEFAULT CURRENT_TIMESTAMP)") < 0) {
                pxl_str_report(errors, conf->file, 0, "database", "%s: %s",
                               db->path, c->error);
                return PXL_ERR;
        }
        return 0;
}

static void conn_close(struct mig_conn *c)
{
        if (c->pg != NULL)
                PQfinish(c->pg); /* the advisory lock goes with it */
        if (c->lite != NULL)
                sqlite3_close(c->lite);
        free(c->error);
        memset(c, 0, sizeof(*c));
}

/*
 * One file: 1 applied now, 0 applied before (same sum), PXL_ERR with the
 * reason in errors. Nothing of a file that fails stays.
 */
static int apply(struct mig_conn *c, const char *dir, const struct migration *m,
                 struct pxl_str *errors)
{
        char sum[65], path[4096];
        int rc;

        snprintf(path, sizeof(path), "%s/%s", dir, m->name);

        if (conn_exec(c, c->pg ? "BEGIN" : "BEGIN IMMEDIATE") < 0)
                goto fail;
        rc = conn_applied(c, m->name, sum);
        if (rc < 0)
                goto fail_rollback;
        if (rc == 1) {
                conn_exec(c, "ROLLBACK");
                if (strcmp(sum, m->sum) == 0)
                        return 0;
                pxl_str_report(errors, path, 0, NULL,
                               "changed since it was applied (checksum "
                               "%.12s..., applied %.12s...): add a new "
                               "migration instead of editing this one",
                               m->sum, sum);
                return PXL_ERR;
        }
        if (conn_exec(c, m->sql) < 0 || conn_record(c, m->name, m->sum) < 0)
                goto fail_rollback;
        if (conn_exec(c, "COMMIT") < 0)
                goto fail_rollback;
        return 1;
fail_rollback:
        pxl_str_report(errors, path, 0, NULL, "%s", c->error);
        conn_exec(c, "ROLLBACK");
        return PXL_ERR;
fail:
        pxl_str_report(errors, path, 0, NULL, "%s", c->error);
        return PXL_ERR;
}

int pxl_db_migrate(const struct pxl_config *conf, struct pxl_str *applied,
                   unsigned *before, struct pxl_str *errors)
{
        struct migrations m = {0};
        struct mig_conn c = {0};
        int rc;

        *before = 0;
        if (!conf->database.enabled || conf->database.migrations == NULL)
                return 0;
        rc = migrations_load(conf->database.migrations, &m, true, errors);
        if (rc == 0)
                rc = conn_open(conf, &c, errors);
        for (size_t i = 0; rc == 0 && i < m.n; i++) {
                int r = apply(&c, m.dir, &m.v[i], errors);

                if (r < 0) {
                        rc = PXL_ERR;
                } else if (r == 0) {
                        (*before)++;
                } else if (pxl_str_puts(applied, m.v[i].name) < 0 ||
                           pxl_str_puts(applied, "\n") < 0) {
                        pxl_str_puts(errors, "out of memory\n");
                        rc = PXL_ENOMEM;
                }
        }
        conn_close(&c);
        migrations_free(&m);
        return rc < 0 ? PXL_ERR : 0;
}

int pxl_db_exec(const struct pxl_config *conf, const char *sql,
                struct pxl_str *errors)
{
        struct mig_conn c = {0};
        int rc = conn_open(conf, &c, errors);

        if (rc == 0 && conn_exec(&c, sql) < 0) {
                pxl_str_report(errors, conf->file, 0, "database", "%s",
                               c.error);
                rc = PXL_ERR;
        }
        conn_close(&c);
        return rc;
}
