/*
 * @APP@ - the app's controller: a shared object pxl-serve loads from
 * app.cfg. Each route is a {type, action} pair and a handler; a handler
 * answers with pxl_reply() or fails with pxl_fail(), or, for a database
 * query or a timer, answers later through a pxl_defer. See pxl-plugin(3).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <pxl/pxl.h>

/*
 * The controller's settings in app.cfg (`settings = { ... }`), checked by
 * pxl-serve at load, `pxl-serve -t` too: a key not listed here, a value
 * of the wrong type or out of range is reported with its file and line.
 */
static const struct pxl_setting @APP@_settings[] = {
        {.name = "prefix", .type = PXL_SETTING_STRING, .max = 63,
         .def.s = "", .help = "put before every echoed text"},
        {.name = "max_length", .type = PXL_SETTING_INT, .min = 1,
         .max = 1 << 20, .def.i = 1024,
         .help = "longest text echo accepts, in bytes"},
        PXL_SETTING_END,
};

/*
 * A reply that waits for its timer (@APP@/later). The plugin owns the
 * timer and the request's handle until the timer runs; when the client
 * leaves first (or the worker stops) it cancels both.
 */
struct @APP@_wait {
        LIST_ENTRY(@APP@_wait) link;
        struct pxl_timer *timer;
        struct pxl_defer *defer;
        char client[33]; /* the id of the client that asked */
        int ms;
};

/* Per-worker state, filled from the settings. */
struct @APP@ {
        const char *prefix; /* borrowed from the settings until fini */
        size_t max_length;
        LIST_HEAD(, @APP@_wait) waits; /* @APP@/later replies to come */
};

/* @APP@/ping -> "pong" */
static int @APP@_ping(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        (void)msg;
        return pxl_reply(ctx, json_object_new_string("pong"));
}

/* @APP@/echo {"text": "hi"} -> {"text": "<prefix>hi", "clientId": ...} */
static int @APP@_echo(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct @APP@ *app = pxl_ctx_plugin_data(ctx);
        struct json_object *data = pxl_msg_data(msg), *text, *reply;
        const char *s;
        char *out;
        size_t len;

        if (data == NULL || !json_object_object_get_ex(data, "text", &text) ||
            !json_object_is_type(text, json_type_string))
                return pxl_fail(ctx, "data.text must be a string");
        s = json_object_get_string(text);
        len = strlen(s);
        if (len > app->max_length)
                return pxl_fail(ctx, "data.text is longer than %zu bytes",
                                app->max_length);
        out = malloc(strlen(app->prefix) + len + 1);
        if (out == NULL)
                return pxl_fail(ctx, "out of memory");
        strcpy(out, app->prefix);
        strcat(out, s);
        reply = json_object_new_object();
        json_object_object_add(reply, "text", json_object_new_string(out));
        json_object_object_add(reply, "clientId",
                               json_object_new_string(pxl_ctx_client_id(ctx)));
        free(out);
        return pxl_reply(ctx, reply);
}

/* The rows of @APP@/notes: the reply, or the database's error. */
static void @APP@_notes_read(struct pxl_ctx *ctx,
                             const struct pxl_db_result *res, void *arg)
{
        struct pxl_defer *d = arg; /* the request's reply, taken below */
        struct json_object *rows;

        (void)ctx; /* a callback's ctx has no client: answer through d */
        if (pxl_db_error(res) != NULL)
                pxl_defer_fail(d, "%s", pxl_db_error(res));
        else if ((rows = pxl_db_rows_json(res)) == NULL)
                pxl_defer_fail(d, "out of memory");
        else
                pxl_defer_reply(d, rows);
}

/*
 * @APP@/notes {"limit": 10} -> [{"id": 1, "text": "..."}, ...]: the first
 * notes of the table migrations/001_notes.sql made. The value goes in
 * params as $1, never into the SQL text; the reply waits for the rows.
 */
static int @APP@_notes(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *limit = NULL, *params;
        struct pxl_defer *d;
        int rc;

        json_object_object_get_ex(pxl_msg_data(msg), "limit", &limit);
        if (limit != NULL && (!json_object_is_type(limit, json_type_int) ||
                              json_object_get_int64(limit) < 1 ||
                              json_object_get_int64(limit) > 100))
                return pxl_fail(ctx, "data.limit must be 1 to 100");
        if ((d = pxl_defer(ctx)) == NULL)
                return pxl_fail(ctx, "out of memory");
        params = json_object_new_array();
        json_object_array_add(params, limit ? json_object_get(limit)
                                            : json_object_new_int(10));
        rc = pxl_db_query(ctx,
                          "SELECT id, text FROM notes ORDER BY id LIMIT $1",
                          params, @APP@_notes_read, d);
        json_object_put(params); /* pxl_db_query does not keep it */
        if (rc < 0) {            /* then @APP@_notes_read never runs */
                pxl_defer_cancel(d);
                return pxl_fail(ctx, "%s",
                                rc == PXL_ECLOSED
                                        ? "no database group in app.cfg"
                                        : pxl_strerror(rc));
        }
        return PXL_DEFERRED;
}

/* Free a wait that has ended (answered, or both parts cancelled). */
static void @APP@_wait_free(struct @APP@_wait *w)
{
        LIST_REMOVE(w, link);
        free(w);
}

/* The timer of @APP@/later ran: answer. It is freed when this returns. */
static void @APP@_later_fire(struct pxl_ctx *ctx, void *arg)
{
        struct @APP@_wait *w = arg;
        struct json_object *reply = json_object_new_object();

        (void)ctx; /* a timer's ctx has no client: answer through w->defer */
        json_object_object_add(reply, "waitedMs", json_object_new_int(w->ms));
        pxl_defer_reply(w->defer, reply);
        @APP@_wait_free(w);
}

/*
 * @APP@/later {"ms": 500} -> {"waitedMs": 500}, after that many
 * milliseconds: the handler takes a pxl_defer and arms a timer, whose
 * callback answers. Nothing waits on the loop meanwhile.
 */
static int @APP@_later(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct @APP@ *app = pxl_ctx_plugin_data(ctx);
        struct json_object *ms = NULL;
        struct @APP@_wait *w;

        json_object_object_get_ex(pxl_msg_data(msg), "ms", &ms);
        if (ms == NULL || !json_object_is_type(ms, json_type_int) ||
            json_object_get_int64(ms) < 0 ||
            json_object_get_int64(ms) > 60000)
                return pxl_fail(ctx, "data.ms must be 0 to 60000");
        w = calloc(1, sizeof(*w));
        if (w == NULL)
                return pxl_fail(ctx, "out of memory");
        w->ms = json_object_get_int(ms);
        snprintf(w->client, sizeof(w->client), "%s", pxl_ctx_client_id(ctx));
        w->defer = pxl_defer(ctx);
        if (w->defer != NULL)
                w->timer = pxl_timer_after(ctx, (unsigned)w->ms,
                                           @APP@_later_fire, w);
        if (w->timer == NULL) {
                pxl_defer_cancel(w->defer); /* NULL is fine */
                free(w);
                return pxl_fail(ctx, "out of memory");
        }
        LIST_INSERT_HEAD(&app->waits, w, link);
        return PXL_DEFERRED;
}

/* Stop a wait before its timer runs: the timer, then the handle. */
static void @APP@_wait_cancel(struct @APP@_wait *w)
{
        pxl_timer_cancel(w->timer);
        pxl_defer_cancel(w->defer);
        @APP@_wait_free(w);
}

/* A client left: its waits have no one to answer. */
static void @APP@_disconnect(struct pxl_ctx *ctx, int close_code)
{
        struct @APP@ *app = pxl_ctx_plugin_data(ctx);
        struct @APP@_wait *w, *next;
        int n = 0;

        (void)close_code;
        for (w = LIST_FIRST(&app->waits); w != NULL; w = next) {
                next = LIST_NEXT(w, link);
                if (strcmp(w->client, pxl_ctx_client_id(ctx)) == 0) {
                        @APP@_wait_cancel(w);
                        n++;
                }
        }
        if (n > 0)
                pxl_log(ctx, PXL_LOG_INFO, "later replies cancelled: %d", n);
}

/* Runs once per worker, after pxl-serve has checked the settings. */
static int @APP@_init(struct pxl_ctx *ctx, const config_setting_t *settings)
{
        struct @APP@ *app = calloc(1, sizeof(*app));

        (void)settings; /* read through pxl_setting_*() instead */
        if (app == NULL)
                return pxl_ctx_fail(ctx, "out of memory");
        pxl_ctx_set_plugin_data(ctx, app);
        LIST_INIT(&app->waits);
        app->prefix = pxl_setting_string(ctx, "prefix");
        app->max_length = (size_t)pxl_setting_int(ctx, "max_length");
        pxl_log(ctx, PXL_LOG_INFO, "ready prefix=\"%s\" max_length=%zu",
                app->prefix, app->max_length);
        return PXL_OK;
}

/*
 * Also runs after a failed init, so it copes with missing state. Waits
 * still armed are cancelled: pxl would free their timers after fini
 * returns, but the handles and the waits are the plugin's.
 */
static void @APP@_fini(struct pxl_ctx *ctx)
{
        struct @APP@ *app = pxl_ctx_plugin_data(ctx);

        while (app != NULL && !LIST_EMPTY(&app->waits))
                @APP@_wait_cancel(LIST_FIRST(&app->waits));
        free(app);
}

static const struct pxl_route @APP@_routes[] = {
        {"@APP@", "ping", @APP@_ping},
        {"@APP@", "echo", @APP@_echo},
        {"@APP@", "notes", @APP@_notes},
        {"@APP@", "later", @APP@_later},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "@APP@",
        .version = "0.1.0",
        .routes = @APP@_routes,
        .init = @APP@_init,
        .fini = @APP@_fini,
        .on_disconnect = @APP@_disconnect,
        .settings = @APP@_settings,
};
