/*
 * timers - the timers of pxl.h (ABI 1.5) as routes, for
 * tests/integration/test_timers.py: one-shot and repeating timers that
 * tell the client that armed them each time they run, cancelling from a
 * route and from the timer's own callback, and a repeating timer armed
 * in init. It uses pxl.h alone: no libevent.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <pxl/pxl.h>

/* A timer a client armed, and what its runs report. */
struct tm_entry {
        LIST_ENTRY(tm_entry) link;
        struct pxl_timer *timer;
        int id;
        char client[33]; /* who armed it: each run is sent there */
        int64_t armed_ns;
        int runs;
        bool repeat;
        bool cancel_inside; /* a one-shot cancels itself as it runs */
        int cancel_at; /* a repeating one cancels itself on this run; 0: never */
};

struct tm_state {
        LIST_HEAD(, tm_entry) entries;
        int next_id;
        struct pxl_timer *ticker; /* armed in init, never cancelled */
        int ticks;
};

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void entry_free(struct tm_entry *e)
{
        LIST_REMOVE(e, link);
        free(e);
}

/* Each run: timer/fired {id, run, elapsedMs, hasClient, pluginData}. */
static void tm_fire(struct pxl_ctx *ctx, void *arg)
{
        struct tm_entry *e = arg;
        struct json_object *d = json_object_new_object(), *m;
        bool last;

        e->runs++;
        json_object_object_add(d, "id", json_object_new_int(e->id));
        json_object_object_add(d, "run", json_object_new_int(e->runs));
        json_object_object_add(
                d, "elapsedMs",
                json_object_new_double((double)(now_ns() - e->armed_ns) /
                                       1e6));
        /* A timer's ctx is the plugin's, with no client (like init's). */
        json_object_object_add(
                d, "hasClient",
                json_object_new_boolean(pxl_ctx_client_id(ctx) != NULL));
        json_object_object_add(
                d, "pluginData",
                json_object_new_boolean(pxl_ctx_plugin_data(ctx) != NULL));
        m = pxl_msg_new("timer", "fired", d);
        if (m != NULL)
                pxl_send_to_client(ctx, e->client, m);
        json_object_put(m);
        /*
         * A one-shot's last run is this one; a repeating timer's is the
         * one that cancels it. Cancelling inside the callback is allowed
         * for both (for a one-shot it changes nothing).
         */
        last = e->cancel_at != 0 && e->runs >= e->cancel_at;
        if (last || e->cancel_inside)
                pxl_timer_cancel(e->timer);
        if (last || !e->repeat)
                entry_free(e);
}

/*
 * timer/after {"ms": N, "cancelInside": B} and timer/every {"ms": N,
 * "cancelAt": K}: arm a timer; the reply {"id": ID} comes before any run.
 */
static int tm_arm(struct pxl_ctx *ctx, const struct pxl_msg *msg,
                  bool repeat)
{
        struct tm_state *st = pxl_ctx_plugin_data(ctx);
        struct json_object *d = pxl_msg_data(msg), *v;
        struct tm_entry *e;
        int ms = 0;

        if (d != NULL && json_object_object_get_ex(d, "ms", &v))
                ms = json_object_get_int(v);
        if (ms < 0)
                return pxl_fail(ctx, "data.ms must be 0 or more");
        e = calloc(1, sizeof(*e));
        if (e == NULL)
                return pxl_fail(ctx, "out of memory");
        e->id = ++st->next_id;
        strncpy(e->client, pxl_ctx_client_id(ctx), sizeof(e->client) - 1);
        e->repeat = repeat;
        if (repeat && d != NULL && json_object_object_get_ex(d, "cancelAt", &v))
                e->cancel_at = json_object_get_int(v);
        if (!repeat && d != NULL &&
            json_object_object_get_ex(d, "cancelInside", &v))
                e->cancel_inside = json_object_get_boolean(v);
        e->armed_ns = now_ns();
        LIST_INSERT_HEAD(&st->entries, e, link);
        e->timer = repeat ? pxl_timer_every(ctx, (unsigned)ms, tm_fire, e)
                          : pxl_timer_after(ctx, (unsigned)ms, tm_fire, e);
        if (e->timer == NULL) {
                entry_free(e);
                return pxl_fail(ctx, "cannot arm a timer");
        }
        v = json_object_new_object();
        json_object_object_add(v, "id", json_object_new_int(e->id));
        return pxl_reply(ctx, v);
}

static int tm_after(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        return tm_arm(ctx, msg, false);
}

static int tm_every(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        return tm_arm(ctx, msg, true);
}

/* timer/cancel {"id": ID} -> true, or false for no such armed timer. */
static int tm_cancel(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct tm_state *st = pxl_ctx_plugin_data(ctx);
        struct json_object *v;
        struct tm_entry *e;
        int id = -1;

        if (json_object_object_get_ex(pxl_msg_data(msg), "id", &v))
                id = json_object_get_int(v);
        LIST_FOREACH(e, &st->entries, link) {
                if (e->id == id) {
                        pxl_timer_cancel(e->timer);
                        entry_free(e);
                        return pxl_reply(ctx, json_object_new_boolean(true));
                }
        }
        return pxl_reply(ctx, json_object_new_boolean(false));
}

/* timer/ticks -> how often the timer armed in init has run. */
static int tm_ticks(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct tm_state *st = pxl_ctx_plugin_data(ctx);

        (void)msg;
        return pxl_reply(ctx, json_object_new_int(st->ticks));
}

static void tm_tick(struct pxl_ctx *ctx, void *arg)
{
        struct tm_state *st = arg;

        if (pxl_ctx_plugin_data(ctx) != st)
                pxl_log(ctx, PXL_LOG_ERR, "a timer ran with another ctx");
        st->ticks++;
}

static int tm_init(struct pxl_ctx *ctx, const config_setting_t *settings)
{
        struct tm_state *st = calloc(1, sizeof(*st));

        (void)settings;
        if (st == NULL)
                return pxl_ctx_fail(ctx, "out of memory");
        LIST_INIT(&st->entries);
        pxl_ctx_set_plugin_data(ctx, st);
        st->ticker = pxl_timer_every(ctx, 20, tm_tick, st);
        if (st->ticker == NULL)
                return pxl_ctx_fail(ctx, "cannot arm the ticker");
        return PXL_OK;
}

/*
 * Frees what the entries hold but leaves every timer armed, the ticker
 * too: pxl frees them after this returns, and none of them runs again
 * (they would use freed entries: ASan would tell).
 */
static void tm_fini(struct pxl_ctx *ctx)
{
        struct tm_state *st = pxl_ctx_plugin_data(ctx);

        if (st == NULL)
                return;
        while (!LIST_EMPTY(&st->entries))
                entry_free(LIST_FIRST(&st->entries));
        if (st->ticks > 0)
                pxl_log(ctx, PXL_LOG_INFO, "ticker ran %d times", st->ticks);
        free(st);
        pxl_ctx_set_plugin_data(ctx, NULL);
}

static const struct pxl_route tm_routes[] = {
        {"timer", "after", tm_after},
        {"timer", "every", tm_every},
        {"timer", "cancel", tm_cancel},
        {"timer", "ticks", tm_ticks},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "timers",
        .version = "1.0.0",
        .routes = tm_routes,
        .init = tm_init,
        .fini = tm_fini,
};
