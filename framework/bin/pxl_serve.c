/*
 * pxl_serve.c - the pxl-serve program: command line, then the worker's
 * configure/start/run/shutdown from pxl_server.c, in one process or, with
 * workers > 1, under the master of pxl_cluster.c. Nothing else lives here.
 */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pxl/pxl.h"
#include "pxl_cluster.h"
#include "pxl_conf.h"
#include "pxl_db.h"
#include "pxl_history.h"
#include "pxl_session.h"
#include "pxl_static.h"
#include "pxl_endpoints.h"
#include "pxl_log.h"
#include "pxl_mirror.h"
#include "pxl_queue.h"
#include "pxl_server.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: pxl-serve [-tTVh] [-p PORT] [-b ADDR] [-l LEVEL]\n"
                "                 [-o KEY=VALUE ...] [--migrate] app.cfg\n"
                "\n"
                "Serve the WebSocket app described by app.cfg (libconfig).\n"
                "\n"
                "  -p, --port PORT        listen on PORT (listen.port)\n"
                "  -b, --bind ADDR        listen on address ADDR (listen.host)\n"
                "  -l, --log-level LEVEL  err, warn, notice, info or debug\n"
                "                         (log.level)\n"
                "  -o, --set KEY=VALUE    set any key of pxl.cfg(5) over the\n"
                "                         file's value; repeatable; a list of\n"
                "                         strings is comma-separated\n"
                "  -t   check the config and load every plugin, then exit:\n"
                "       0 when all is well, 1 after printing every problem\n"
                "       in line order\n"
                "  -T   print every config key with its type, default, range\n"
                "       and meaning, then exit\n"
                "  -h, --help     show this help\n"
                "  -V, --version  print the version and plugin ABI, then exit\n"
                "  --migrate  apply the database migrations not applied yet\n"
                "       (database.migrations), print each, then exit\n"
                "\n"
                "Environment: PXL_PLUGIN_PATH, a colon-separated list of\n"
                "directories searched for plugins named without a path.\n"
                "With workers > 1, a master process runs that many workers on\n"
                "the same port and restarts those that die.\n"
                "A start applies pending migrations before serving, too.\n"
                "Signals: SIGTERM or SIGINT close every client with 1001 and\n"
                "exit 0; a second one stops at once. See pxl-serve(1).\n");
}

/* Every problem, in the order of the lines they name. */
static int fail(struct pxl_str *errors)
{
        pxl_str_sort_reports(errors);
        if (errors->len > 0)
                fputs(errors->p, stderr);
        return 1;
}

/* -p 9000 is -o listen.port=9000: one KEY=VALUE text, owned by argv or
 * made here (and then freed with the list). */
static int add_override(char **list, size_t *n, const char *key,
                        const char *value)
{
        size_t len = strlen(key) + 1 + strlen(value) + 1;

        if ((list[*n] = malloc(len)) == NULL)
                return PXL_ENOMEM;
        snprintf(list[(*n)++], len, "%s=%s", key, value);
        return PXL_OK;
}

static void free_overrides(char **list)
{
        for (size_t i = 0; list != NULL && list[i] != NULL; i++)
                free(list[i]);
        free(list);
}

/* Config warnings stop nothing: -t prints them, a start logs them. */
static void show_warnings(const struct pxl_str *w, bool test_only)
{
        if (test_only && w->len > 0)
                fputs(w->p, stderr);
        else
                pxl_log_lines(PXL_LOG_WARN, "", w);
}

/*
 * Apply the migrations not applied yet: before serving, once (in a
 * cluster, the master, before its workers), or alone for --migrate,
 * which prints what it did.
 */
static int migrate(const struct pxl_config *conf, bool report,
                   struct pxl_str *errors)
{
        struct pxl_str applied = {0};
        unsigned before = 0, n = 0;
        int rc = pxl_db_migrate(conf, &applied, &before, errors);

        for (char *line = applied.p, *end;
             line != NULL && (end = strchr(line, '\n')) != NULL;
             line = end + 1, n++) {
                if (report)
                        printf("applied %.*s\n", (int)(end - line), line);
                else
                        pxl_logs(PXL_LOG_INFO, "migration applied: %.*s",
                                 (int)(end - line), line);
        }
        if (report && rc == 0)
                printf("%u applied, %u were applied before\n", n, before);
        pxl_str_fini(&applied);
        return rc;
}

/* pxl-serve --migrate app.cfg */
static int migrate_only(const struct pxl_config *conf, struct pxl_str *errors)
{
        if (conf->nerrors == 0 && !conf->database.enabled)
                pxl_str_report(errors, conf->file, 0, NULL,
                               "no database group: nothing to migrate");
        else if (conf->nerrors == 0 && conf->database.migrations == NULL)
                pxl_str_report(errors, conf->file, 0, "database.migrations",
                               "not set: nothing to migrate");
        if (errors->len > 0 || conf->nerrors > 0)
                return PXL_ERR;
        return migrate(conf, true, errors);
}

/* The log's destination, or "FILE: log.KEY: why" in errors. */
static int open_log(const struct pxl_config *conf, struct pxl_str *errors)
{
        struct pxl_log_settings ls;
        struct pxl_str why = {0};
        int rc;

        pxl_conf_log_settings(conf, &ls);
        rc = pxl_log_configure(&ls, &why);
        if (why.len > 0 && why.p[why.len - 1] == '\n')
                why.p[--why.len] = '\0';
        if (rc < 0)
                pxl_str_report(errors, conf->file, 0, NULL, "%s",
                               why.p != NULL ? why.p : "out of memory\n");
        pxl_str_fini(&why);
        return rc;
}

/* One process, or a master and its workers (workers > 1). */
static int serve(struct pxl_worker *srv, struct pxl_str *errors)
{
        char node_id[17];

        if (srv->conf->workers > 1)
                return pxl_cluster_run(srv, errors);
        if (pxl_cluster_node_id(node_id) < 0) {
                pxl_str_puts(errors, "cannot make a node id: RAND_bytes "
                                     "failed\n");
                return PXL_ERR;
        }
        pxl_cluster_worker_init(srv, node_id, 0, 0, -1);
        return pxl_server_run(srv, errors);
}

int main(int argc, char **argv)
{
        struct pxl_str errors = {0};
        struct pxl_config *conf;
        struct pxl_worker srv;
        bool test_only = false, migrate_flag = false;
        static const struct option longopts[] = {
                {"migrate", no_argument, NULL, 'M'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {"port", required_argument, NULL, 'p'},
                {"bind", required_argument, NULL, 'b'},
                {"log-level", required_argument, NULL, 'l'},
                {"set", required_argument, NULL, 'o'},
                {NULL, 0, NULL, 0},
        };
        /* At most one override per argument, and the NULL that ends them. */
        char **overrides = calloc((size_t)argc + 1, sizeof(*overrides));
        size_t noverrides = 0;
        int opt, rc = 0;

        /*
         * A broadcast allocates and frees a buffer chain per recipient in
         * one loop iteration; without this glibc gives that memory back
         * (brk) and faults it in again on every publish.
         */
        mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
        mallopt(M_TOP_PAD, 4 * 1024 * 1024);
        if (overrides == NULL) {
                fputs("pxl-serve: out of memory\n", stderr);
                return 1;
        }
        while (rc == 0 && (opt = getopt_long(argc, argv, "tThVp:b:l:o:",
                                             longopts, NULL)) != -1) {
                switch (opt) {
                case 'p':
                        rc = add_override(overrides, &noverrides,
                                          "listen.port", optarg);
                        break;
                case 'b':
                        rc = add_override(overrides, &noverrides,
                                          "listen.host", optarg);
                        break;
                case 'l':
                        rc = add_override(overrides, &noverrides, "log.level",
                                          optarg);
                        break;
                case 'o':
                        rc = (overrides[noverrides++] = strdup(optarg)) == NULL
                                     ? PXL_ENOMEM
                                     : PXL_OK;
                        break;
                case 'M':
                        migrate_flag = true;
                        break;
                case 't':
                        test_only = true;
                        break;
                case 'T':
                        pxl_conf_print_keys();
                        free_overrides(overrides);
                        return 0;
                case 'h':
                        usage(stdout);
                        free_overrides(overrides);
                        return 0;
                case 'V':
                        printf("pxl-serve %s (plugin ABI %d.%d)\n",
                               PACKAGE_VERSION, PXL_ABI_MAJOR, PXL_ABI_MINOR);
                        free_overrides(overrides);
                        return 0;
                default:
                        usage(stderr);
                        free_overrides(overrides);
                        return 2;
                }
        }
        if (rc < 0) {
                fputs("pxl-serve: out of memory\n", stderr);
                free_overrides(overrides);
                return 1;
        }
        if (optind != argc - 1) {
                usage(stderr);
                free_overrides(overrides);
                return 2;
        }
        conf = pxl_conf_load(argv[optind], (const char *const *)overrides,
                             &errors);
        free_overrides(overrides);
        if (conf == NULL) {
                rc = fail(&errors);
                pxl_str_fini(&errors);
                return rc;
        }
        pxl_log_setup(conf->log_level, conf->log_format);
        show_warnings(&conf->warnings, test_only);
        /* Serving: lines go where log.destination says from now on. */
        if (!test_only && !migrate_flag && conf->nerrors == 0 &&
            open_log(conf, &errors) < 0) {
                rc = fail(&errors);
                pxl_conf_free(conf);
                pxl_str_fini(&errors);
                return rc;
        }
        if (migrate_flag) {
                rc = migrate_only(conf, &errors) < 0 ? fail(&errors) : 0;
                pxl_conf_free(conf);
                pxl_str_fini(&errors);
                return rc;
        }
        /* The master's lines say so from the start; workers change it. */
        if (conf->workers > 1 && !test_only)
                pxl_log_set_worker(PXL_LOG_WORKER_MASTER);
        /* Plugins are checked even after config errors: report them all. */
        rc = pxl_server_init(&srv, conf, &errors);
        if (conf->nerrors > 0)
                rc = PXL_ERR;
        /* With a redis section, the worker is one of a cluster. */
        if (rc == 0 &&
            (pxl_mirror_install(&srv) < 0 || pxl_db_install(&srv) < 0 ||
             pxl_history_install(&srv) < 0 ||
             pxl_session_install(&srv) < 0)) {
                pxl_str_puts(&errors, "out of memory\n");
                rc = PXL_ENOMEM;
        }
        if (rc == 0)
                rc = pxl_queue_install(&srv, &errors);
        /* Before the fork: the workers' figures meet in a shared mapping. */
        if (rc == 0)
                rc = pxl_endpoints_install(&srv, &errors);
        /* After the endpoints: their paths are asked first. */
        if (rc == 0)
                rc = pxl_static_install(&srv, &errors);
        /* -t checks the migrations' names; a start applies them. */
        if (rc == 0 && test_only)
                rc = pxl_db_check_migrations(conf, &errors);
        else if (rc == 0)
                rc = migrate(conf, false, &errors);
        if (rc == 0 && !test_only)
                rc = pxl_queue_prepare(&srv, &errors);
        if (rc == 0 && test_only)
                printf("%s: ok (%zu plugin%s)\n", argv[optind],
                       srv.plugins.n, srv.plugins.n == 1 ? "" : "s");
        if (rc == 0 && !test_only)
                rc = serve(&srv, &errors);
        /* In a cluster, each worker returns here too and ends the same way. */
        pxl_server_fini(&srv);
        pxl_queue_fini();
        pxl_endpoints_fini();
        rc = rc < 0 ? fail(&errors) : 0;
        pxl_str_fini(&errors);
        pxl_log_close();
        return rc;
}
