/*
 * testkit - a plugin for the integration tests: replies with and without
 * a response, handler errors, deferred replies and errors (also to
 * clients that have left), server-side closes, hook counters, plugin
 * settings, and the metrics (a route, or a log line at each disconnect).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pxl/pxl.h>

static const struct pxl_setting tk_settings[] = {
        {.name = "greeting",
         .type = PXL_SETTING_STRING,
         .max = 63,
         .def.s = "hello",
         .help = "test/stats reports it"},
        {.name = "fail",
         .type = PXL_SETTING_BOOL,
         .help = "init fails (after -t has passed)"},
        {.name = "exit_if_file",
         .type = PXL_SETTING_STRING,
         .min = 1,
         .max = 4095,
         .help = "exit 50 ms after starting while it exists"},
        {.name = "log_metrics",
         .type = PXL_SETTING_BOOL,
         .help = "log the counters at each disconnect"},
        PXL_SETTING_END,
};

struct testkit {
        int connects, disconnects, last_close_code;
        int reloads; /* reload hook calls (SIGHUP) */
        bool log_metrics; /* settings.log_metrics */
};

/* Bus events the subscribers saw (test/events), newest last. */
static struct json_object *tk_events;

struct pending {
        struct pxl_defer *defer;
        struct json_object *value;
        char *error; /* answer with pxl_defer_fail(error) instead */
};

static int tk_echo(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        if (!pxl_msg_has_data(msg))
                return PXL_OK;
        return pxl_reply(ctx, json_object_get(pxl_msg_data(msg)));
}

static int tk_null(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        (void)msg;
        return pxl_reply(ctx, NULL);
}

static int tk_nothing(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        (void)ctx;
        (void)msg;
        return PXL_OK;
}

static int tk_fail(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *d = pxl_msg_data(msg);

        return pxl_fail(ctx, "boom: %s",
                        d ? json_object_get_string(d) : "no data");
}

static int tk_fail_plain(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        (void)ctx;
        (void)msg;
        return PXL_ERR;
}

static void pending_fire(struct pxl_ctx *ctx, void *arg)
{
        struct pending *p = arg;

        (void)ctx;
        if (p->error != NULL)
                pxl_defer_fail(p->defer, "%s", p->error);
        else
                pxl_defer_reply(p->defer, p->value);
        free(p->error);
        free(p);
}

/*
 * data {"delay_ms": N, "value": V}: reply V after N ms; with "error": E
 * (a string), answer with the error E instead (pxl_defer_fail).
 */
static int tk_defer(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *d = pxl_msg_data(msg), *delay, *value = NULL;
        struct json_object *error = NULL;
        struct pending *p;
        int ms = 0;

        if (d && json_object_object_get_ex(d, "delay_ms", &delay))
                ms = json_object_get_int(delay);
        if (d) {
                json_object_object_get_ex(d, "value", &value);
                json_object_object_get_ex(d, "error", &error);
        }
        if (error != NULL && !json_object_is_type(error, json_type_string))
                error = NULL; /* only a string is an error text */
        p = calloc(1, sizeof(*p));
        if (p == NULL)
                return pxl_fail(ctx, "out of memory");
        p->defer = pxl_defer(ctx);
        p->value = json_object_get(value);
        if (error != NULL)
                p->error = strdup(json_object_get_string(error));
        if (p->defer == NULL || (error != NULL && p->error == NULL) ||
            pxl_timer_after(ctx, ms > 0 ? (unsigned)ms : 0, pending_fire,
                            p) == NULL) {
                pxl_defer_cancel(p->defer);
                json_object_put(p->value);
                free(p->error);
                free(p);
                return pxl_fail(ctx, "cannot defer");
        }
        return PXL_DEFERRED;
}

/* data {"code": N, "reason": "..."}: the server closes this client. */
static int tk_close(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *d = pxl_msg_data(msg), *code, *reason = NULL;
        int c = 1000;

        if (d && json_object_object_get_ex(d, "code", &code))
                c = json_object_get_int(code);
        if (d)
                json_object_object_get_ex(d, "reason", &reason);
        if (pxl_close(ctx, c, reason ? json_object_get_string(reason) : NULL) < 0)
                return pxl_fail(ctx, "bad close code %d", c);
        return PXL_OK;
}

static int tk_stats(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct testkit *tk = pxl_ctx_plugin_data(ctx);
        struct json_object *o = json_object_new_object();

        (void)msg;
        json_object_object_add(o, "connects", json_object_new_int(tk->connects));
        json_object_object_add(o, "disconnects",
                               json_object_new_int(tk->disconnects));
        json_object_object_add(o, "lastCloseCode",
                               json_object_new_int(tk->last_close_code));
        json_object_object_add(
                o, "greeting",
                json_object_new_string(pxl_setting_string(ctx, "greeting")));
        json_object_object_add(o, "clientId",
                               json_object_new_string(pxl_ctx_client_id(ctx)));
        json_object_object_add(o, "reloads", json_object_new_int(tk->reloads));
        return pxl_reply(ctx, o);
}

static void tk_connect(struct pxl_ctx *ctx)
{
        struct testkit *tk = pxl_ctx_plugin_data(ctx);

        tk->connects++;
}

/*
 * settings.log_metrics: one line "counters KEY=N KEY=N ..." with every
 * integer metric, for tests whose app has no route to ask (raw_text).
 */
static void log_metrics(struct pxl_ctx *ctx)
{
        struct json_object *m = pxl_metrics(ctx);
        char line[4096] = "";
        size_t n = 0;

        if (m == NULL)
                return;
        json_object_object_foreach(m, key, val) {
                int w;

                if (!json_object_is_type(val, json_type_int))
                        continue;
                w = snprintf(line + n, sizeof(line) - n, " %s=%lld", key,
                             (long long)json_object_get_int64(val));
                if (w < 0 || (size_t)w >= sizeof(line) - n) {
                        line[n] = '\0'; /* no cut-off entry */
                        break;
                }
                n += (size_t)w;
        }
        json_object_put(m);
        pxl_log(ctx, PXL_LOG_INFO, "counters%s", line);
}

static void tk_disconnect(struct pxl_ctx *ctx, int code)
{
        struct testkit *tk = pxl_ctx_plugin_data(ctx);
        struct json_object *bye;

        tk->disconnects++;
        tk->last_close_code = code;
        pxl_log(ctx, PXL_LOG_INFO, "disconnected with %d", code);
        /* A leaving client cannot be sent to, whatever its socket's state. */
        bye = pxl_msg_new("test", "bye", NULL);
        if (bye != NULL &&
            pxl_send_to_client(ctx, pxl_ctx_client_id(ctx), bye) > 0)
                pxl_log(ctx, PXL_LOG_ERR, "sent to a client that has gone");
        json_object_put(bye);
        if (tk->log_metrics)
                log_metrics(ctx);
}

/* A worker that crashes (the cluster tests): no cleanup, no leak check. */
static void tk_exit_now(struct pxl_ctx *ctx, void *arg)
{
        (void)ctx;
        (void)arg;
        _exit(3);
}

static int tk_init(struct pxl_ctx *ctx, const config_setting_t *settings)
{
        struct testkit *tk = calloc(1, sizeof(*tk));
        const char *exit_if = pxl_setting_string(ctx, "exit_if_file");

        (void)settings;
        if (tk == NULL)
                return pxl_ctx_fail(ctx, "out of memory");
        pxl_ctx_set_plugin_data(ctx, tk);
        if (pxl_setting_bool(ctx, "fail"))
                return pxl_ctx_fail(ctx, "settings.fail is true");
        tk->log_metrics = pxl_setting_bool(ctx, "log_metrics");
        /* exit_if_file: exit 50 ms after starting while the file exists. */
        if (exit_if != NULL && access(exit_if, F_OK) == 0) {
                if (pxl_timer_after(ctx, 50, tk_exit_now, NULL) == NULL)
                        return pxl_ctx_fail(ctx, "cannot arm the exit timer");
                pxl_log(ctx, PXL_LOG_INFO, "\"%s\" exists: exiting soon",
                        exit_if);
        }
        return PXL_OK;
}

/* SIGHUP: the settings are the new ones now. */
static int tk_reload(struct pxl_ctx *ctx, const config_setting_t *settings)
{
        struct testkit *tk = pxl_ctx_plugin_data(ctx);

        (void)settings;
        tk->reloads++;
        tk->log_metrics = pxl_setting_bool(ctx, "log_metrics");
        pxl_log(ctx, PXL_LOG_INFO, "reloaded: greeting=%s",
                pxl_setting_string(ctx, "greeting"));
        return 0;
}

static void tk_fini(struct pxl_ctx *ctx)
{
        struct testkit *tk = pxl_ctx_plugin_data(ctx);

        json_object_put(tk_events);
        tk_events = NULL;
        free(tk); /* pxl frees the exit timer, if armed */
        pxl_ctx_set_plugin_data(ctx, NULL);
}

/* This worker's process id (the cluster tests). */
static int tk_pid(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *o = json_object_new_object();

        (void)msg;
        json_object_object_add(o, "pid", json_object_new_int64(getpid()));
        return pxl_reply(ctx, o);
}

/* Whether this client took over a session (resume). */
static int tk_resumed(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        (void)msg;
        return pxl_reply(ctx, json_object_new_boolean(
                                      pxl_client_resumed(pxl_ctx_client(ctx))));
}

/* data[key] as a string, or NULL. */
static const char *str_arg(const struct pxl_msg *msg, const char *key)
{
        struct json_object *d = pxl_msg_data(msg), *v;

        if (d && json_object_object_get_ex(d, key, &v) &&
            json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return NULL;
}

/* data[key], borrowed, or NULL. */
static struct json_object *arg(const struct pxl_msg *msg, const char *key)
{
        struct json_object *d = pxl_msg_data(msg), *v = NULL;

        if (d)
                json_object_object_get_ex(d, key, &v);
        return v;
}

/* data {key, value}: set (or with no value, delete) my metadata key. */
static int tk_set_meta(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *key = str_arg(msg, "key");
        struct json_object *value = arg(msg, "value");

        if (key == NULL)
                return pxl_fail(ctx, "key is required");
        int rc = pxl_client_set_meta(ctx, pxl_ctx_client_id(ctx), key,
                                     json_object_get(value));

        if (rc < 0)
                return pxl_fail(ctx, "cannot set metadata: %s",
                                pxl_strerror(rc));
        return PXL_OK;
}

/* data {clientId, message}: reply with the number of clients reached. */
static int tk_send_to(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        int n = pxl_send_to_client(ctx, str_arg(msg, "clientId"),
                                   arg(msg, "message"));

        return n < 0 ? pxl_fail(ctx, "send failed: %s", pxl_strerror(n))
                     : pxl_reply(ctx, json_object_new_int(n));
}

static bool has_meta_flag(const struct pxl_client *c, void *key)
{
        struct json_object *v = pxl_client_meta(c, key);

        return v != NULL && json_object_get_boolean(v);
}

/* data {message, exclude?: clientId, onlyMeta?: key}: send to everybody. */
static int tk_send_all(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *only = str_arg(msg, "onlyMeta");
        int n = pxl_send_to_all(ctx, arg(msg, "message"),
                                str_arg(msg, "exclude"),
                                only ? has_meta_flag : NULL, (void *)only);

        return n < 0 ? pxl_fail(ctx, "send failed: %s", pxl_strerror(n))
                     : pxl_reply(ctx, json_object_new_int(n));
}

/* data {room, message, exclude?}: send to a room. */
static int tk_send_room(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        int n = pxl_send_to_room(ctx, str_arg(msg, "room"),
                                 arg(msg, "message"), str_arg(msg, "exclude"));

        return n < 0 ? pxl_fail(ctx, "send failed: %s", pxl_strerror(n))
                     : pxl_reply(ctx, json_object_new_int(n));
}

/* data {userIds: [...], message}: send to users. */
static int tk_send_users(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *ids = arg(msg, "userIds");
        const struct json_object *v[64];
        size_t n = 0;
        int sent;

        for (size_t i = 0; ids && i < json_object_array_length(ids) && n < 64; i++)
                v[n++] = json_object_array_get_idx(ids, i);
        sent = pxl_send_to_users(ctx, v, n, arg(msg, "message"));
        return sent < 0 ? pxl_fail(ctx, "send failed: %s", pxl_strerror(sent))
                        : pxl_reply(ctx, json_object_new_int(sent));
}

/* data {clientId, code, reason}: close another client. */
static int tk_kick(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *code = arg(msg, "code");

        if (pxl_disconnect_client(ctx, str_arg(msg, "clientId"),
                                  code ? json_object_get_int(code) : 1000,
                                  str_arg(msg, "reason")) < 0)
                return pxl_fail(ctx, "cannot disconnect");
        return PXL_OK;
}

static int add_id(const struct pxl_client *c, void *arr)
{
        json_object_array_add(arr, json_object_new_string(pxl_client_id(c)));
        return 0;
}

/* data {userId}: the client ids of a user. */
static int tk_user_clients(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *ids = json_object_new_array();

        pxl_user_clients(ctx, arg(msg, "userId"), add_id, ids);
        return pxl_reply(ctx, ids);
}

/* What the framework knows about me: user, token, rooms, metadata key. */
static int tk_whoami(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const struct pxl_client *me = pxl_ctx_client(ctx);
        struct json_object *o = json_object_new_object();
        const char *key = str_arg(msg, "metaKey");

        json_object_object_add(o, "clientId",
                               json_object_new_string(pxl_client_id(me)));
        json_object_object_add(o, "userId",
                               json_object_get(pxl_client_user_id(me)));
        json_object_object_add(o, "token", json_object_get(pxl_client_token(me)));
        json_object_object_add(o, "local",
                               json_object_new_boolean(pxl_client_is_local(me)));
        json_object_object_add(o, "clients",
                               json_object_new_int64((int64_t)pxl_client_count(ctx)));
        json_object_object_add(o, "rooms",
                               json_object_new_int64((int64_t)pxl_room_count(ctx)));
        if (key != NULL)
                json_object_object_add(o, "meta",
                                       json_object_get(pxl_client_meta(me, key)));
        return pxl_reply(ctx, o);
}

static int add_room(const char *room, void *arr)
{
        json_object_array_add(arr, json_object_new_string(room));
        return 0;
}

/*
 * data {clientId, metaKey?}: what this worker knows of any client of the
 * cluster: {found, local, userId, rooms, meta}.
 */
static int tk_client_info(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const struct pxl_client *c = pxl_client_find(ctx, str_arg(msg, "clientId"));
        const char *key = str_arg(msg, "metaKey");
        struct json_object *o = json_object_new_object(), *rooms;

        json_object_object_add(o, "found", json_object_new_boolean(c != NULL));
        if (c == NULL)
                return pxl_reply(ctx, o);
        rooms = json_object_new_array();
        pxl_client_rooms(c, add_room, rooms);
        json_object_object_add(o, "local",
                               json_object_new_boolean(pxl_client_is_local(c)));
        json_object_object_add(o, "userId",
                               json_object_get(pxl_client_user_id(c)));
        json_object_object_add(o, "rooms", rooms);
        if (key != NULL)
                json_object_object_add(o, "meta",
                                       json_object_get(pxl_client_meta(c, key)));
        return pxl_reply(ctx, o);
}

/* data {clientId, room, leave?}: put another client in a room (or out). */
static int tk_room_other(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *leave = arg(msg, "leave");
        int rc = leave && json_object_get_boolean(leave)
                         ? pxl_room_leave(ctx, str_arg(msg, "clientId"),
                                          str_arg(msg, "room"))
                         : pxl_room_join(ctx, str_arg(msg, "clientId"),
                                         str_arg(msg, "room"));

        return rc < 0 ? pxl_fail(ctx, "refused: %s", pxl_strerror(rc))
                      : pxl_reply(ctx, json_object_new_int(rc));
}

/* data {clientId, key, value}: set another client's metadata. */
static int tk_meta_other(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        int rc = pxl_client_set_meta(ctx, str_arg(msg, "clientId"),
                                     str_arg(msg, "key"),
                                     json_object_get(arg(msg, "value")));

        return rc < 0 ? pxl_fail(ctx, "refused: %s", pxl_strerror(rc))
                      : PXL_OK;
}

/* ---- the plugin Redis API --------------------------------------------- */

static void tk_redis_reply(struct pxl_ctx *ctx, const struct json_object *reply,
                           const char *error, void *arg)
{
        struct json_object *o = json_object_new_object();

        (void)ctx;
        json_object_object_add(o, "reply",
                               json_object_get((struct json_object *)reply));
        json_object_object_add(o, "error",
                               error ? json_object_new_string(error) : NULL);
        pxl_defer_reply(arg, o);
}

/* data {args: [strings]}: run a Redis command, reply {reply, error}. */
static int tk_redis(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *args = arg(msg, "args");
        const char *argv[16];
        int argc = 0, rc;
        struct pxl_defer *d;

        for (size_t i = 0; args && i < json_object_array_length(args) && argc < 16; i++)
                argv[argc++] = json_object_get_string(json_object_array_get_idx(args, i));
        if ((d = pxl_defer(ctx)) == NULL)
                return pxl_fail(ctx, "cannot defer");
        rc = pxl_redis_command(ctx, tk_redis_reply, d, argc, argv, NULL);
        if (rc < 0) {
                pxl_defer_cancel(d);
                return pxl_fail(ctx, "redis: %s", pxl_strerror(rc));
        }
        return PXL_DEFERRED;
}

static void tk_redis_message(struct pxl_ctx *ctx, const char *channel,
                             const char *text, size_t len, void *arg)
{
        struct json_object *d = json_object_new_object(), *out;

        (void)arg;
        json_object_object_add(d, "channel", json_object_new_string(channel));
        json_object_object_add(d, "message",
                               json_object_new_string_len(text, (int)len));
        out = pxl_msg_new("test", "redisMessage", d);
        pxl_send_to_all(ctx, out, NULL, NULL, NULL);
        json_object_put(out);
}

/* data {channel, unsubscribe?}: (un)subscribe this worker to a channel. */
static int tk_redis_sub(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *un = arg(msg, "unsubscribe");
        int rc = un && json_object_get_boolean(un)
                         ? pxl_redis_unsubscribe(ctx, str_arg(msg, "channel"))
                         : pxl_redis_subscribe(ctx, str_arg(msg, "channel"),
                                               tk_redis_message, NULL);

        return rc < 0 ? pxl_fail(ctx, "refused: %s", pxl_strerror(rc))
                      : pxl_reply(ctx, json_object_new_string(pxl_redis_prefix(ctx)));
}

/* data {channel, message}: publish a string on a plugin channel. */
static int tk_redis_pub(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *text = str_arg(msg, "message");
        int rc = pxl_redis_publish(ctx, str_arg(msg, "channel"), text,
                                   text ? strlen(text) : 0);

        return rc < 0 ? pxl_fail(ctx, "refused: %s", pxl_strerror(rc))
                      : PXL_OK;
}

static int tk_metrics(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        (void)msg;
        return pxl_reply(ctx, pxl_metrics(ctx));
}

/* ---- bus: what the subscribers saw, in order ---------------------------- */

#define TK_EVENTS 64


static void tk_record(const char *channel, int priority)
{
        struct json_object *e = json_object_new_object();

        if (tk_events == NULL)
                tk_events = json_object_new_array();
        json_object_object_add(e, "channel", json_object_new_string(channel));
        json_object_object_add(e, "priority", json_object_new_int(priority));
        json_object_array_add(tk_events, e);
        if (json_object_array_length(tk_events) > TK_EVENTS)
                json_object_array_del_idx(tk_events, 0, 1);
}

static int tk_sub_test(struct pxl_ctx *ctx, const char *channel,
                       const struct json_object *msg)
{
        (void)ctx;
        (void)msg;
        tk_record(channel, 5);
        return PXL_OK;
}

static int tk_sub_all(struct pxl_ctx *ctx, const char *channel,
                      const struct json_object *msg)
{
        (void)ctx;
        (void)msg;
        tk_record(channel, 0);
        return PXL_OK;
}

static int tk_sub_fail(struct pxl_ctx *ctx, const char *channel,
                       const struct json_object *msg)
{
        (void)msg;
        tk_record(channel, 7);
        return pxl_ctx_fail(ctx, "this subscriber always fails");
}

/* status events are relayed to every client, as a plugin would. */
static int tk_sub_status(struct pxl_ctx *ctx, const char *channel,
                         const struct json_object *msg)
{
        struct json_object *out = pxl_msg_new(
                "system", "status", json_object_get((struct json_object *)msg));
        int n = pxl_send_to_all(ctx, out, NULL, NULL, NULL);

        json_object_put(out);
        tk_record(channel, 9);
        return n < 0 ? n : PXL_OK;
}

/* data {name, message}: publish on the bus; reply with how many ran. */
static int tk_publish(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        int n = pxl_publish(ctx, str_arg(msg, "name"), arg(msg, "message"));

        return n < 0 ? pxl_fail(ctx, "publish refused: %s", pxl_strerror(n))
                     : pxl_reply(ctx, json_object_new_int(n));
}

/* The events recorded so far (and forget them). */
static int tk_events_route(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *e = tk_events ? tk_events : json_object_new_array();

        (void)msg;
        tk_events = NULL;
        return pxl_reply(ctx, e);
}

static const struct pxl_subscriber tk_subscribers[] = {
        {"*", 0, tk_sub_all},
        {"test.*", 5, tk_sub_test},
        {"test.fail", 7, tk_sub_fail},
        {"status", 9, tk_sub_status},
        {"client*", 5, tk_sub_test},
        PXL_SUBSCRIBER_END,
};

static const struct pxl_route tk_routes[] = {
        {"test", "echo", tk_echo},
        {"test", "null", tk_null},
        {"test", "nothing", tk_nothing},
        {"test", "fail", tk_fail},
        {"test", "failPlain", tk_fail_plain},
        {"test", "defer", tk_defer},
        {"test", "close", tk_close},
        {"test", "stats", tk_stats},
        {"test", "setMeta", tk_set_meta},
        {"test", "sendTo", tk_send_to},
        {"test", "sendAll", tk_send_all},
        {"test", "sendRoom", tk_send_room},
        {"test", "sendUsers", tk_send_users},
        {"test", "disconnect", tk_kick},
        {"test", "userClients", tk_user_clients},
        {"test", "whoami", tk_whoami},
        {"test", "metrics", tk_metrics},
        {"test", "publish", tk_publish},
        {"test", "events", tk_events_route},
        {"test", "pid", tk_pid},
        {"test", "resumed", tk_resumed},
        {"test", "clientInfo", tk_client_info},
        {"test", "roomOther", tk_room_other},
        {"test", "metaOther", tk_meta_other},
        {"test", "redis", tk_redis},
        {"test", "redisSub", tk_redis_sub},
        {"test", "redisPub", tk_redis_pub},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "testkit",
        .version = "1.0.0",
        .routes = tk_routes,
        .init = tk_init,
        .fini = tk_fini,
        .on_connect = tk_connect,
        .on_disconnect = tk_disconnect,
        .subscribers = tk_subscribers,
        .settings = tk_settings,
        .reload = tk_reload,
};
