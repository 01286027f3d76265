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
#include "pxl_log.h"
#include "pxl_mirror.h"
#include "pxl_server.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: pxl-serve [-t] [-T] [-h] [-V] app.cfg\n"
                "\n"
                "Serve the WebSocket app described by app.cfg (libconfig).\n"
                "\n"
                "  -t   check the config and load every plugin, then exit:\n"
                "       0 when all is well, 1 after printing every problem\n"
                "  -T   print every config key with its type, default and\n"
                "       meaning, then exit\n"
                "  -h   show this help\n"
                "  -V   print the version and plugin ABI, then exit\n"
                "\n"
                "Environment: PXL_PLUGIN_PATH, a colon-separated list of\n"
                "directories searched for plugins named without a path.\n"
                "With workers > 1, a master process runs that many workers on\n"
                "the same port and restarts those that die.\n"
                "Signals: SIGTERM or SIGINT close every client with 1001 and\n"
                "exit 0; a second one stops at once. See pxl-serve(1).\n");
}

static int fail(const struct pxl_str *errors)
{
        if (errors->len > 0)
                fputs(errors->p, stderr);
        return 1;
}

/* Config warnings stop nothing: -t prints them, a start logs them. */
static void show_warnings(const struct pxl_str *w, bool test_only)
{
        const char *line = w->p, *end;

        if (w->len == 0)
                return;
        if (test_only) {
                fputs(w->p, stderr);
                return;
        }
        while ((end = strchr(line, '\n')) != NULL) {
                pxl_logs(PXL_LOG_WARN, "%.*s", (int)(end - line), line);
                line = end + 1;
        }
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
        bool test_only = false;
        int opt, rc;

        /*
         * A broadcast allocates and frees a buffer chain per recipient in
         * one loop iteration; without this glibc gives that memory back
         * (brk) and faults it in again on every publish.
         */
        mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
        mallopt(M_TOP_PAD, 4 * 1024 * 1024);
        while ((opt = getopt(argc, argv, "tThV")) != -1) {
                switch (opt) {
                case 't':
                        test_only = true;
                        break;
                case 'T':
                        pxl_conf_print_keys();
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("pxl-serve %s (plugin ABI %d.%d)\n",
                               PACKAGE_VERSION, PXL_ABI_MAJOR, PXL_ABI_MINOR);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc - 1) {
                usage(stderr);
                return 2;
        }
        conf = pxl_conf_load(argv[optind], &errors);
        if (conf == NULL) {
                rc = fail(&errors);
                pxl_str_fini(&errors);
                return rc;
        }
        pxl_log_setup(conf->log_level, conf->log_format);
        show_warnings(&conf->warnings, test_only);
        /* The master's lines say so from the start; workers change it. */
        if (conf->workers > 1 && !test_only)
                pxl_log_set_worker(PXL_LOG_WORKER_MASTER);
        /* Plugins are checked even after config errors: report them all. */
        rc = pxl_server_init(&srv, conf, &errors);
        if (conf->nerrors > 0)
                rc = PXL_ERR;
        /* With a redis section, the worker is one of a cluster. */
        if (rc == 0 && pxl_mirror_install(&srv) < 0) {
                pxl_str_puts(&errors, "out of memory\n");
                rc = PXL_ENOMEM;
        }
        if (rc == 0 && test_only)
                printf("%s: ok (%zu plugins)\n", argv[optind],
                       srv.plugins.n);
        if (rc == 0 && !test_only)
                rc = serve(&srv, &errors);
        /* In a cluster, each worker returns here too and ends the same way. */
        pxl_server_fini(&srv);
        rc = rc < 0 ? fail(&errors) : 0;
        pxl_str_fini(&errors);
        return rc;
}
