/*
 * pxl_timer.c - plugins' one-shot and repeating timers on the worker's
 * loop: arming, running with a context of the plugin, cancelling, and
 * freeing those a plugin leaves once its fini has returned. The loop
 * and the plugin records are the worker's and the loader's.
 */
#include <stdlib.h>

#include <event2/event.h>

#include "pxl/pxl.h"
#include "pxl_int.h"
#include "pxl_plugin.h"
#include "pxl_timer.h"
#include "pxl_worker.h"

struct pxl_timer {
        LIST_ENTRY(pxl_timer) link; /* in its plugin's timers */
        struct event *ev;
        struct pxl_worker *srv;
        struct pxl_plugin_slot *plugin;
        pxl_timer_fn *fn;
        void *arg;
        bool repeat;
        bool running;   /* fn is running: a cancel only marks it */
        bool cancelled; /* cancelled while running: freed once fn returns */
};

static void timer_free(struct pxl_timer *t)
{
        LIST_REMOVE(t, link);
        event_free(t->ev);
        free(t);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_timer *t = arg;
        struct pxl_ctx ctx;

        (void)fd;
        (void)what;
        pxl_ctx_init(&ctx, t->srv, t->plugin, NULL);
        t->running = true;
        t->fn(&ctx, t->arg);
        t->running = false;
        pxl_ctx_fini(&ctx);
        if (!t->repeat || t->cancelled)
                timer_free(t);
}

static struct pxl_timer *timer_new(struct pxl_ctx *ctx, unsigned ms,
                                   bool repeat, pxl_timer_fn *fn, void *arg)
{
        struct timeval tv = {(time_t)(ms / 1000),
                             (suseconds_t)(ms % 1000) * 1000};
        struct pxl_timer *t;

        if (ctx == NULL || ctx->plugin == NULL || fn == NULL)
                return NULL;
        if (ctx->plugin->timers_closed) {
                pxl_log(ctx, PXL_LOG_ERR, "timer armed after the plugin's fini");
                return NULL;
        }
        t = calloc(1, sizeof(*t));
        if (t == NULL)
                return NULL;
        t->ev = event_new(ctx->srv->base, -1, repeat ? EV_PERSIST : 0,
                          timer_cb, t);
        if (t->ev == NULL || event_add(t->ev, &tv) < 0) {
                if (t->ev != NULL)
                        event_free(t->ev);
                free(t);
                return NULL;
        }
        t->srv = ctx->srv;
        t->plugin = ctx->plugin;
        t->fn = fn;
        t->arg = arg;
        t->repeat = repeat;
        LIST_INSERT_HEAD(&ctx->plugin->timers, t, link);
        return t;
}

struct pxl_timer *pxl_timer_after(struct pxl_ctx *ctx, unsigned ms,
                                  pxl_timer_fn *fn, void *arg)
{
        return timer_new(ctx, ms, false, fn, arg);
}

struct pxl_timer *pxl_timer_every(struct pxl_ctx *ctx, unsigned ms,
                                  pxl_timer_fn *fn, void *arg)
{
        /* A period of 0 would run the loop in circles. */
        return timer_new(ctx, ms ? ms : 1, true, fn, arg);
}

void pxl_timer_cancel(struct pxl_timer *t)
{
        if (t == NULL)
                return;
        if (t->running) {
                /* Its fn called us: stop it, and free it once fn returns. */
                event_del(t->ev);
                t->cancelled = true;
                return;
        }
        timer_free(t);
}

void pxl_timers_close(struct pxl_plugin_slot *s)
{
        struct pxl_timer *t, *next;

        for (t = LIST_FIRST(&s->timers); t != NULL; t = next) {
                next = LIST_NEXT(t, link);
                event_free(t->ev);
                free(t);
        }
        LIST_INIT(&s->timers);
        s->timers_closed = true;
}
