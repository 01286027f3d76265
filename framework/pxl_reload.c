/*
 * pxl_reload.c - SIGHUP in one process: the app file is loaded and
 * checked as at start (its plugins' settings and auth keys too) before
 * anything changes, then the config takes the new values it can take
 * while serving, the verifier of tokens is replaced, timers follow the
 * new intervals and the plugins get their new settings. A serving
 * worker's signal event calls it; a cluster's master calls it and then
 * passes the signal on (pxl_cluster.c).
 */
#include <stdlib.h>

#include "pxl/pxl.h"
#include "pxl_auth.h"
#include "pxl_conf.h"
#include "pxl_log.h"
#include "pxl_notify.h"
#include "pxl_plugin.h"
#include "pxl_reload.h"
#include "pxl_server.h"

int pxl_reload(struct pxl_worker *srv, bool report_restart)
{
        struct pxl_config *conf = srv->conf, *next;
        struct pxl_str errors = {0}, restart = {0};
        union pxl_conf_value **values = NULL;
        struct pxl_auth *auth = NULL;
        struct pxl_log_settings ls;
        int settings = 1;
        bool ok;

        pxl_notify_reloading();
        pxl_logs(PXL_LOG_NOTICE, "SIGHUP: reloading %s", conf->file);
        next = pxl_conf_load(conf->file, (const char *const *)conf->overrides,
                             &errors);
        ok = next != NULL && next->nerrors == 0;
        if (ok)
                settings = pxl_plugins_check_settings(&srv->plugins, next,
                                                      &values, &errors);
        ok = ok && settings >= 0;
        if (ok && next->auth.enabled)
                ok = (auth = pxl_auth_new(&next->auth, next->file,
                                          &errors)) != NULL;
        /* Last, as it takes effect: the new log destination must open. */
        if (ok) {
                pxl_conf_log_settings(next, &ls);
                ok = pxl_log_configure(&ls, &errors) == 0;
        }
        if (!ok) {
                pxl_str_sort_reports(&errors);
                pxl_log_lines(PXL_LOG_ERR, "reload refused: ", &errors);
                pxl_logs(PXL_LOG_ERR, "reload refused: the running "
                                      "configuration stays");
                if (values != NULL)
                        pxl_plugins_reload_cancel(&srv->plugins, values);
                pxl_auth_free(auth);
                pxl_conf_free(next);
                pxl_str_fini(&errors);
                pxl_notify_ready(NULL);
                return PXL_ERR;
        }
        pxl_log_lines(PXL_LOG_WARN, "reload: ", &next->warnings);
        /* From here on next belongs to conf. */
        pxl_conf_reload(conf, next, &restart);
        if (report_restart)
                pxl_log_lines(PXL_LOG_WARN, "reload: ", &restart);
        pxl_auth_free(srv->auth);
        srv->auth = auth;
        pxl_server_retime(srv);
        if (settings == 0)
                pxl_plugins_reload(&srv->plugins, srv, next, values);
        pxl_logs(PXL_LOG_NOTICE, "reloaded %s", conf->file);
        pxl_str_fini(&restart);
        pxl_str_fini(&errors);
        pxl_notify_ready(NULL);
        return PXL_OK;
}
