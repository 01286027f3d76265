/*
 * pxl_plugin.c - loads plugins: dlopen, the descriptor checks (header
 * first, nothing else read before it passes), route registration, and
 * the init/fini calls. It never unloads code while clients are served.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pxl/pxl.h"
#include "pxl_int.h"
#include "pxl_log.h"
#include "pxl_plugin.h"
#include "pxl_router.h"
#include "pxl_timer.h"

/* The smallest descriptor we can read: ABI 1.0 ended after raw_handler. */
#define PXL_PLUGIN_SIZE_1_0                                                    \
        (offsetof(struct pxl_plugin, raw_handler) + sizeof(pxl_handler_fn *))

static void plugin_error(struct pxl_str *errors,
                         const struct pxl_plugin_conf *pc, const char *fmt,
                         ...) PXL_PRINTF(3, 4);

/* "app.cfg:LINE: plugins[N]: PATH: TEXT", the line of its entry. */
static void plugin_error(struct pxl_str *errors,
                         const struct pxl_plugin_conf *pc, const char *fmt, ...)
{
        char text[1024], key[32];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        snprintf(key, sizeof(key), "plugins[%d]", pc->index);
        (void)pxl_str_report(errors, pc->file, pc->line, key, "%s: %s",
                             pc->path, text);
}

/* Why dlopen failed, without the path dlerror repeats; a file that is
 * not there is said so plainly. */
static const char *open_error(const char *path)
{
        const char *why;
        size_t n = strlen(path);

        if (access(path, R_OK) != 0)
                return strerror(errno);
        why = dlerror();
        if (why == NULL)
                return "cannot load";
        if (strncmp(why, path, n) == 0 && strncmp(why + n, ": ", 2) == 0)
                why += n + 2;
        return why;
}

/* Returns NULL when the header is acceptable, else why not. */
static const char *check_header(const struct pxl_plugin_hdr *h, char *why,
                                size_t cap)
{
        if (h->magic != PXL_PLUGIN_MAGIC)
                return "not a pxl plugin (bad magic in pxl_plugin)";
        bool newer = h->abi_major > PXL_ABI_MAJOR ||
                     (h->abi_major == PXL_ABI_MAJOR &&
                      h->abi_minor > PXL_ABI_MINOR);

        if (newer || h->abi_major != PXL_ABI_MAJOR) {
                snprintf(why, cap, "ABI %u.%u is %s this pxl-serve (%d.%d)",
                         h->abi_major, h->abi_minor,
                         newer ? "newer than" : "incompatible with",
                         PXL_ABI_MAJOR, PXL_ABI_MINOR);
                return why;
        }
        if (h->size < PXL_PLUGIN_SIZE_1_0) {
                snprintf(why, cap, "descriptor size %u is smaller than ABI %d.0's (%zu)",
                         h->size, PXL_ABI_MAJOR, PXL_PLUGIN_SIZE_1_0);
                return why;
        }
        if (h->build_sig != PXL_BUILD_SIG) {
                snprintf(why, cap,
                         "built for another platform or json-c (build signature %08x, ours %08x)",
                         h->build_sig, PXL_BUILD_SIG);
                return why;
        }
        return NULL;
}

const struct pxl_subscriber *pxl_plugin_subscribers(const struct pxl_plugin *d)
{
        /* Fields after the ones a plugin was built with are not there. */
        if (d->hdr.size < offsetof(struct pxl_plugin, subscribers) +
                                  sizeof(d->subscribers))
                return NULL;
        return d->subscribers;
}

const struct pxl_setting *pxl_plugin_settings(const struct pxl_plugin *d)
{
        if (d->hdr.size <
            offsetof(struct pxl_plugin, settings) + sizeof(d->settings))
                return NULL;
        return d->settings;
}

const struct pxl_processor *pxl_plugin_processors(const struct pxl_plugin *d)
{
        if (d->hdr.size < offsetof(struct pxl_plugin, processors) +
                                  sizeof(d->processors))
                return NULL;
        return d->processors;
}

static int register_routes(struct pxl_plugins *ps, struct pxl_plugin_slot *s,
                           struct pxl_router *router, struct pxl_str *errors)
{
        const struct pxl_route *r = s->desc->routes;
        int bad = 0;

        for (; r != NULL && r->type != NULL; r++) {
                const struct pxl_router_entry *taken = NULL;
                int rc;

                if (r->type[0] == '\0' || r->action == NULL ||
                    r->action[0] == '\0' || r->handler == NULL) {
                        plugin_error(errors, s->conf,
                                     "route \"%s/%s\" needs a type, an action and a handler",
                                     r->type, r->action ? r->action : "");
                        bad = 1;
                        continue;
                }
                rc = pxl_router_add(router, r->type, r->action, r->handler, s,
                                    &taken);
                if (rc == PXL_EDECLINED) {
                        plugin_error(errors, s->conf,
                                     "route \"%s/%s\" is already claimed by plugin \"%s\" (%s)",
                                     r->type, r->action,
                                     taken->plugin->desc->name,
                                     taken->plugin->path);
                        bad = 1;
                } else if (rc < 0) {
                        plugin_error(errors, s->conf, "out of memory");
                        return PXL_ENOMEM;
                }
        }
        for (const struct pxl_subscriber *sub = pxl_plugin_subscribers(s->desc);
             sub != NULL && sub->channel != NULL; sub++) {
                if (sub->channel[0] == '\0' || sub->handler == NULL) {
                        plugin_error(errors, s->conf,
                                     "subscriber \"%s\" needs a channel and a handler",
                                     sub->channel);
                        bad = 1;
                }
        }
        if (s->desc->raw_handler != NULL) {
                if (ps->raw != NULL) {
                        plugin_error(errors, s->conf,
                                     "a raw handler is already registered by plugin \"%s\" (%s)",
                                     ps->raw->desc->name, ps->raw->path);
                        bad = 1;
                } else {
                        ps->raw = s;
                }
        }
        return bad ? PXL_ERR : PXL_OK;
}

static int load_one(struct pxl_plugins *ps, const struct pxl_config *conf,
                    const struct pxl_plugin_conf *pc, struct pxl_router *router,
                    struct pxl_str *errors)
{
        const struct pxl_setting *table;
        int rc, src;
        struct pxl_plugin_slot *s = &ps->v[ps->n];
        const struct pxl_plugin *desc;
        char why[256];
        const char *bad;
        void *h;

        h = dlopen(pc->path, RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
                plugin_error(errors, pc, "cannot load: %s", open_error(pc->path));
                return PXL_ERR;
        }
        desc = dlsym(h, "pxl_plugin");
        if (desc == NULL) {
                plugin_error(errors, pc,
                             "no pxl_plugin symbol (not a pxl plugin, or not exported)");
                dlclose(h);
                return PXL_ERR;
        }
        bad = check_header(&desc->hdr, why, sizeof(why));
        if (bad != NULL) {
                plugin_error(errors, pc, "%s", bad);
                dlclose(h);
                return PXL_ERR;
        }
        if (desc->name == NULL || desc->name[0] == '\0') {
                plugin_error(errors, pc, "the descriptor has no name");
                dlclose(h);
                return PXL_ERR;
        }
        for (size_t i = 0; i < ps->n; i++) {
                if (strcmp(ps->v[i].desc->name, desc->name) == 0) {
                        plugin_error(errors, pc,
                                     "a plugin named \"%s\" is already loaded from %s",
                                     desc->name, ps->v[i].path);
                        dlclose(h);
                        return PXL_ERR;
                }
        }
        s->desc = desc;
        s->handle = h;
        s->settings = pc->settings;
        s->conf = pc;
        s->path = strdup(pc->path);
        if (s->path == NULL) {
                dlclose(h);
                return PXL_ENOMEM;
        }
        ps->n++;
        rc = register_routes(ps, s, router, errors);
        /* Its settings are checked now, so that -t reports them. */
        table = pxl_plugin_settings(desc);
        if (table != NULL) {
                src = pxl_conf_settings(conf, pc, s->path, table, &s->values,
                                        errors);
                if (src < 0 && rc != PXL_ENOMEM)
                        rc = src;
        }
        return rc;
}

int pxl_plugins_load(struct pxl_plugins *ps, const struct pxl_config *conf,
                     struct pxl_router *router, struct pxl_str *errors)
{
        int rc = PXL_OK;

        /* Every field, one by one: after a memset of *ps scan-build does
         * not know that ps->n is 0, and reports load_one reading an
         * empty slot below it. */
        ps->n = 0;
        ps->raw = NULL;
        ps->v = calloc(conf->nplugins + 1, sizeof(*ps->v));
        if (ps->v == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        /* Check them all, so -t reports every problem at once. */
        for (size_t i = 0; i < conf->nplugins; i++)
                if (load_one(ps, conf, &conf->plugins[i], router, errors) < 0)
                        rc = PXL_ERR;
        return rc;
}

int pxl_plugins_init(struct pxl_plugins *ps, struct pxl_worker *srv,
                     struct pxl_str *errors)
{
        for (size_t i = 0; i < ps->n; i++) {
                struct pxl_plugin_slot *s = &ps->v[i];
                struct pxl_ctx ctx;
                int rc;

                /* From here on fini is owed, even if init fails halfway. */
                s->init_ran = true;
                if (s->desc->init == NULL)
                        continue;
                pxl_ctx_init(&ctx, srv, s, NULL);
                rc = s->desc->init(&ctx, s->settings);
                if (rc < 0) {
                        plugin_error(errors, s->conf, "init failed: %s",
                                     ctx.error ? ctx.error : pxl_strerror(rc));
                        pxl_ctx_fini(&ctx);
                        return PXL_ERR;
                }
                pxl_ctx_fini(&ctx);
        }
        return PXL_OK;
}

void pxl_plugins_fini(struct pxl_plugins *ps, struct pxl_worker *srv)
{
        for (size_t i = ps->n; i-- > 0;) {
                struct pxl_plugin_slot *s = &ps->v[i];
                struct pxl_ctx ctx;

                if (!s->init_ran)
                        continue;
                if (s->desc->fini != NULL) {
                        pxl_ctx_init(&ctx, srv, s, NULL);
                        s->desc->fini(&ctx);
                        pxl_ctx_fini(&ctx);
                }
                /* What fini did not cancel never runs. */
                pxl_timers_close(s);
                s->init_ran = false;
        }
}

/* A reload's predecessor of a slot's values, kept until unload. */
struct pxl_retired_values {
        union pxl_conf_value *values;
        struct pxl_retired_values *next;
};

void pxl_plugins_unload(struct pxl_plugins *ps)
{
        for (size_t i = 0; i < ps->n; i++) {
                const struct pxl_setting *table =
                        pxl_plugin_settings(ps->v[i].desc);
                struct pxl_retired_values *r;

                while ((r = ps->v[i].retired) != NULL) {
                        ps->v[i].retired = r->next;
                        pxl_conf_settings_free(table, r->values);
                        free(r);
                }
                if (table != NULL)
                        pxl_conf_settings_free(table, ps->v[i].values);
                pxl_timers_close(&ps->v[i]); /* a fini that never ran */
                free(ps->v[i].path);
                dlclose(ps->v[i].handle);
        }
        free(ps->v);
        memset(ps, 0, sizeof(*ps));
}

static pxl_reload_fn *reload_hook(const struct pxl_plugin *d)
{
        if (d->hdr.size <
            offsetof(struct pxl_plugin, reload) + sizeof(d->reload))
                return NULL;
        return d->reload;
}

int pxl_plugins_check_settings(const struct pxl_plugins *ps,
                               const struct pxl_config *next,
                               union pxl_conf_value ***values,
                               struct pxl_str *errors)
{
        int rc = PXL_OK;

        *values = NULL;
        if (next->nplugins != ps->n)
                return 1;
        for (size_t i = 0; i < ps->n; i++)
                if (strcmp(next->plugins[i].path, ps->v[i].path) != 0)
                        return 1;
        *values = calloc(ps->n + 1, sizeof(**values));
        if (*values == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        for (size_t i = 0; i < ps->n; i++) {
                const struct pxl_setting *table =
                        pxl_plugin_settings(ps->v[i].desc);

                if (table != NULL &&
                    pxl_conf_settings(next, &next->plugins[i], ps->v[i].path,
                                      table, &(*values)[i], errors) < 0)
                        rc = PXL_ERR;
        }
        if (rc < 0) {
                pxl_plugins_reload_cancel(ps, *values);
                *values = NULL;
        }
        return rc;
}

void pxl_plugins_reload_cancel(const struct pxl_plugins *ps,
                               union pxl_conf_value **values)
{
        for (size_t i = 0; values != NULL && i < ps->n; i++)
                pxl_conf_settings_free(pxl_plugin_settings(ps->v[i].desc),
                                       values[i]);
        free(values);
}

void pxl_plugins_reload(struct pxl_plugins *ps, struct pxl_worker *srv,
                        const struct pxl_config *next,
                        union pxl_conf_value **values)
{
        for (size_t i = 0; i < ps->n; i++) {
                struct pxl_plugin_slot *s = &ps->v[i];
                struct pxl_retired_values *r = NULL;
                pxl_reload_fn *hook = reload_hook(s->desc);
                struct pxl_ctx ctx;
                int rc;

                /* Out of memory: the old values stay, the hook waits. */
                if (s->values != NULL &&
                    (r = malloc(sizeof(*r))) == NULL) {
                        pxl_conf_settings_free(pxl_plugin_settings(s->desc),
                                               values[i]);
                        pxl_log_ctx(PXL_LOG_ERR, s->desc->name, NULL,
                                    "out of memory taking reloaded settings");
                        continue;
                }
                if (r != NULL) {
                        r->values = s->values;
                        r->next = s->retired;
                        s->retired = r;
                }
                s->values = values[i];
                s->conf = &next->plugins[i];
                s->settings = next->plugins[i].settings;
                if (!s->init_ran || hook == NULL)
                        continue;
                pxl_ctx_init(&ctx, srv, s, NULL);
                rc = hook(&ctx, s->settings);
                if (rc < 0)
                        pxl_log_ctx(PXL_LOG_ERR, s->desc->name, NULL,
                                    "reload failed: %s",
                                    ctx.error ? ctx.error : pxl_strerror(rc));
                pxl_ctx_fini(&ctx);
        }
        free(values);
}

/*
 * The value of the calling plugin's setting name of type t, or NULL
 * (logged: the plugin asks for something its table does not declare).
 */
static const union pxl_conf_value *setting_value(const struct pxl_ctx *ctx,
                                                 const char *name,
                                                 enum pxl_setting_type t)
{
        static const char *const types[] = {"", "an integer", "a boolean",
                                            "a string"};
        const struct pxl_plugin_slot *s = ctx != NULL ? ctx->plugin : NULL;
        const struct pxl_setting *table =
                s != NULL ? pxl_plugin_settings(s->desc) : NULL;

        for (size_t i = 0; table != NULL && s->values != NULL && name != NULL &&
                           table[i].name != NULL;
             i++)
                if (strcmp(table[i].name, name) == 0 && table[i].type == t)
                        return &s->values[i];
        pxl_log(ctx, PXL_LOG_ERR,
                "setting \"%s\" is not declared as %s in the plugin's "
                "settings table",
                name != NULL ? name : "(null)", types[t]);
        return NULL;
}

int64_t pxl_setting_int(const struct pxl_ctx *ctx, const char *name)
{
        const union pxl_conf_value *v =
                setting_value(ctx, name, PXL_SETTING_INT);

        return v != NULL ? v->i : 0;
}

bool pxl_setting_bool(const struct pxl_ctx *ctx, const char *name)
{
        const union pxl_conf_value *v =
                setting_value(ctx, name, PXL_SETTING_BOOL);

        return v != NULL && v->b;
}

const char *pxl_setting_string(const struct pxl_ctx *ctx, const char *name)
{
        const union pxl_conf_value *v =
                setting_value(ctx, name, PXL_SETTING_STRING);

        return v != NULL ? v->s : NULL;
}
