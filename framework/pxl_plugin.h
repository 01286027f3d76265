/*
 * pxl_plugin.h - the plugin loader: dlopen, descriptor checks, route
 * registration, init/fini. What a plugin may call is in pxl/pxl.h.
 */
#ifndef PXL_PLUGIN_H
#define PXL_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include "pxl/pxl.h"
#include "pxl_conf.h"
#include "pxl_str.h"

struct pxl_router;
struct pxl_worker;

struct pxl_plugin_slot {
        const struct pxl_plugin *desc; /* borrowed from the .so */
        void *handle;                  /* dlopen handle */
        char *path;
        const struct pxl_plugin_conf *conf; /* its entry in the app file */
        const config_setting_t *settings;
        /* One per row of the plugin's settings table (ABI 1.2), or NULL. */
        union pxl_conf_value *values;
        /* Values a reload replaced: strings read from them stay valid. */
        struct pxl_retired_values *retired;
        void *data;     /* the plugin's per-worker state */
        bool init_ran;  /* init was called (fini is owed even if it failed) */
        /* Its armed timers (pxl_timer.c), freed after its fini. */
        LIST_HEAD(, pxl_timer) timers;
        bool timers_closed; /* fini has returned: no new timers */
};

struct pxl_plugins {
        struct pxl_plugin_slot *v;
        size_t n;
        const struct pxl_plugin_slot *raw; /* the one with a raw handler */
};

/*
 * dlopen every plugin of conf, check each descriptor and register its
 * routes in router. Returns 0, or PXL_ERR with one line per refused
 * plugin appended to errors ("path: reason\n").
 */
int pxl_plugins_load(struct pxl_plugins *ps, const struct pxl_config *conf,
                     struct pxl_router *router, struct pxl_str *errors);
/* Run every init in order; the first failure is described in errors. */
int pxl_plugins_init(struct pxl_plugins *ps, struct pxl_worker *srv,
                     struct pxl_str *errors);
/*
 * Run fini (in reverse order) for every plugin whose init ran, and free
 * the timers each left armed once its fini has returned.
 */
void pxl_plugins_fini(struct pxl_plugins *ps, struct pxl_worker *srv);
void pxl_plugins_unload(struct pxl_plugins *ps);

/*
 * A reload's plugin settings: each plugin's group in next, checked
 * against its table into values[i] (an array of ps->n, NULL where the
 * plugin has no table). 1 when next lists other plugins (their settings
 * wait for a restart: nothing is checked), 0 when every group is good,
 * else PXL_ERR with the problems in errors (values freed).
 */
int pxl_plugins_check_settings(const struct pxl_plugins *ps,
                               const struct pxl_config *next,
                               union pxl_conf_value ***values,
                               struct pxl_str *errors);
/* Free what pxl_plugins_check_settings made, for a reload refused. */
void pxl_plugins_reload_cancel(const struct pxl_plugins *ps,
                               union pxl_conf_value **values);
/*
 * Take the checked values (and next's groups, which must outlive the
 * plugins), then run the reload hooks of the plugins whose init ran.
 */
void pxl_plugins_reload(struct pxl_plugins *ps, struct pxl_worker *srv,
                        const struct pxl_config *next,
                        union pxl_conf_value **values);
/* The subscribers of a descriptor, or NULL (none, or an ABI 1.0 plugin). */
const struct pxl_subscriber *pxl_plugin_subscribers(const struct pxl_plugin *d);
/* The settings table of a descriptor, or NULL (none, or ABI 1.0/1.1). */
const struct pxl_setting *pxl_plugin_settings(const struct pxl_plugin *d);
/* ABI 1.4's processors table, or NULL for an older plugin. */
const struct pxl_processor *pxl_plugin_processors(const struct pxl_plugin *d);

#endif
