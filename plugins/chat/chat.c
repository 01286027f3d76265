/*
 * chat - the example app's chat controller: say something to a room you
 * joined with system/joinRoom, and read what was said there before.
 * Shows rooms, the authenticated user, a broadcast that is encoded once
 * for every member, and the database: with a database group in the app
 * file, messages are stored (table chat_messages, made by
 * migrations/001_chat_messages.sql) and chat/history reads them back;
 * without one, chat works and keeps nothing. And a background job:
 * chat/remind says something to a room later, through the queue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <pxl/pxl.h>

#define MAX_TEXT      2000
#define HISTORY_LIMIT 50  /* messages chat/history returns by default */
#define HISTORY_MAX   200 /* and at most */

/* A request's room, which the caller must have joined: NULL or why not. */
static const char *joined_room(struct pxl_ctx *ctx, struct json_object *data,
                               struct json_object **room)
{
        const char *bad;

        *room = NULL;
        if (json_object_is_type(data, json_type_object))
                json_object_object_get_ex(data, "roomName", room);
        if ((bad = pxl_room_name_error(ctx, *room)) != NULL)
                return bad;
        if (!pxl_room_has(ctx, json_object_get_string(*room),
                          pxl_ctx_client_id(ctx)))
                return "join the room first";
        return NULL;
}

/* A said message on its way to the table: the sender's reply waits. */
struct saying {
        struct pxl_defer *d;
        struct json_object *reply; /* {"delivered": N}, owned */
};

static void stored(struct pxl_ctx *ctx, const struct pxl_db_result *res,
                   void *arg)
{
        struct saying *s = arg;
        const char *id = pxl_db_value(res, 0, 0, NULL);

        (void)ctx;
        if (pxl_db_error(res) != NULL) {
                pxl_defer_fail(s->d, "message not stored: %s",
                               pxl_db_error(res));
                json_object_put(s->reply);
        } else {
                if (id != NULL)
                        json_object_object_add(
                                s->reply, "id",
                                json_object_new_int64(strtoll(id, NULL, 10)));
                pxl_defer_reply(s->d, s->reply);
        }
        free(s);
}

/* Store what was said; PXL_DEFERRED, or PXL_ECLOSED without a database. */
static int store(struct pxl_ctx *ctx, const char *room,
                 const struct pxl_client *me, struct json_object *text,
                 int64_t sent_at, struct json_object *reply)
{
        struct json_object *params = json_object_new_array();
        struct json_object *user = pxl_client_user_id(me);
        struct saying *s = calloc(1, sizeof(*s));
        int rc = PXL_ENOMEM;

        if (params == NULL || s == NULL)
                goto out;
        json_object_array_add(params, json_object_new_string(room));
        json_object_array_add(params,
                              json_object_new_string(pxl_client_id(me)));
        json_object_array_add(
                params,
                user ? json_object_new_string(json_object_get_string(user))
                     : NULL);
        json_object_array_add(params, json_object_get(text));
        json_object_array_add(params, json_object_new_int64(sent_at));
        s->reply = reply;
        if ((s->d = pxl_defer(ctx)) == NULL)
                goto out;
        rc = pxl_db_query(ctx,
                          "INSERT INTO chat_messages "
                          "(room, client_id, user_id, text, sent_at) "
                          "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                          params, stored, s);
        if (rc == PXL_OK) {
                json_object_put(params);
                return PXL_DEFERRED;
        }
        pxl_defer_cancel(s->d);
out:
        json_object_put(params);
        free(s);
        return rc;
}
/*
 * chat/say {"roomName": R, "text": T}: every member of R gets
 * {"type":"chat","action":"message","data":{roomName, clientId, userId,
 * text, sentAt}}; the sender gets {"delivered": N}.
 */
static int chat_say(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *data = pxl_msg_data(msg), *room, *text = NULL;
        const struct pxl_client *me = pxl_ctx_client(ctx);
        struct json_object *out, *d, *reply;
        const char *bad;
        struct timeval tv;
        int64_t sent_at;
        int n, rc;

        if ((bad = joined_room(ctx, data, &room)) != NULL)
                return pxl_fail(ctx, "%s", bad);
        json_object_object_get_ex(data, "text", &text);
        if (!json_object_is_type(text, json_type_string) ||
            json_object_get_string_len(text) == 0)
                return pxl_fail(ctx, "text is required");
        if (json_object_get_string_len(text) > MAX_TEXT)
                return pxl_fail(ctx, "text is longer than %d bytes", MAX_TEXT);

        gettimeofday(&tv, NULL);
        sent_at = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
        d = json_object_new_object();
        json_object_object_add(d, "roomName", json_object_get(room));
        json_object_object_add(d, "clientId",
                               json_object_new_string(pxl_client_id(me)));
        json_object_object_add(d, "userId",
                               json_object_get(pxl_client_user_id(me)));
        json_object_object_add(d, "text", json_object_get(text));
        json_object_object_add(d, "sentAt", json_object_new_int64(sent_at));
        out = pxl_msg_new("chat", "message", d);
        n = pxl_send_to_room(ctx, json_object_get_string(room), out, NULL);
        json_object_put(out);
        if (n < 0)
                return pxl_fail(ctx, "could not send: %s", pxl_strerror(n));
        reply = json_object_new_object();
        json_object_object_add(reply, "delivered", json_object_new_int(n));
        rc = store(ctx, json_object_get_string(room), me, text, sent_at, reply);
        if (rc == PXL_DEFERRED)
                return rc;       /* the reply goes once the message is stored */
        if (rc != PXL_ECLOSED) { /* ECLOSED: no database, nothing kept */
                json_object_put(reply);
                return pxl_fail(ctx, "message not stored: %s",
                                pxl_strerror(rc));
        }
        return pxl_reply(ctx, reply);
}

static void history_read(struct pxl_ctx *ctx, const struct pxl_db_result *res,
                         void *arg)
{
        struct pxl_defer *d = arg;
        struct json_object *reply, *rows;

        (void)ctx;
        if (pxl_db_error(res) != NULL) {
                pxl_defer_fail(d, "%s", pxl_db_error(res));
                return;
        }
        if ((rows = pxl_db_rows_json(res)) == NULL) {
                pxl_defer_fail(d, "out of memory");
                return;
        }
        reply = json_object_new_object();
        json_object_object_add(reply, "messages", rows);
        pxl_defer_reply(d, reply);
}

/*
 * chat/history {"roomName": R, "limit": N}: the last N (default 50, at
 * most 200) messages said in R, oldest first, as chat/message's data
 * plus their id. Members only, like chat/say.
 */
static int chat_history(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *data = pxl_msg_data(msg), *room, *limit = NULL;
        struct json_object *params;
        struct pxl_defer *d;
        const char *bad;
        int64_t n = HISTORY_LIMIT;
        int rc;

        if ((bad = joined_room(ctx, data, &room)) != NULL)
                return pxl_fail(ctx, "%s", bad);
        if (json_object_object_get_ex(data, "limit", &limit)) {
                if (!json_object_is_type(limit, json_type_int) ||
                    json_object_get_int64(limit) < 1 ||
                    json_object_get_int64(limit) > HISTORY_MAX)
                        return pxl_fail(ctx,
                                        "limit must be an integer from 1 to "
                                        "%d",
                                        HISTORY_MAX);
                n = json_object_get_int64(limit);
        }
        params = json_object_new_array();
        json_object_array_add(params, json_object_get(room));
        json_object_array_add(params, json_object_new_int64(n));
        if ((d = pxl_defer(ctx)) == NULL) {
                json_object_put(params);
                return pxl_fail(ctx, "out of memory");
        }
        /* The newest N, turned oldest first; aliases are the JSON keys. */
        rc = pxl_db_query(ctx,
                          "SELECT id, room AS \"roomName\", "
                          "client_id AS \"clientId\", user_id AS \"userId\", "
                          "text, sent_at AS \"sentAt\" FROM "
                          "(SELECT * FROM chat_messages WHERE room = $1 "
                          "ORDER BY id DESC LIMIT $2) AS newest ORDER BY id",
                          params, history_read, d);
        json_object_put(params);
        if (rc == PXL_OK)
                return PXL_DEFERRED;
        pxl_defer_cancel(d);
        return pxl_fail(ctx, "%s",
                        rc == PXL_ECLOSED ? "this app keeps no history (no "
                                            "database group)"
                                          : pxl_strerror(rc));
}

/* The reminder's job was stored: the sender hears its id. */
static void reminder_added(struct pxl_ctx *ctx, const char *id, bool existed,
                           const char *error, void *arg)
{
        struct pxl_defer *d = arg;
        struct json_object *reply;

        (void)ctx;
        (void)existed;
        if (error != NULL) {
                pxl_defer_fail(d, "reminder not stored: %s", error);
                return;
        }
        reply = json_object_new_object();
        json_object_object_add(reply, "id", json_object_new_string(id));
        pxl_defer_reply(d, reply);
}

/*
 * chat/remind {"roomName": R, "text": T, "delayMs": N}: in N ms (1 ms to
 * a day) every member of R then gets {"type":"chat","action":"reminder",
 * "data":{roomName, text, from}}; the sender gets {"id": JOB}. Members
 * only. The reminder is a job: it survives a restart of the server.
 */
static int chat_remind(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *data = pxl_msg_data(msg), *room, *text = NULL;
        struct json_object *delay = NULL, *payload;
        struct pxl_job_options opts = {.attempts = 3, .backoff_ms = 1000};
        struct pxl_defer *d;
        const char *bad;
        int rc;

        if ((bad = joined_room(ctx, data, &room)) != NULL)
                return pxl_fail(ctx, "%s", bad);
        json_object_object_get_ex(data, "text", &text);
        json_object_object_get_ex(data, "delayMs", &delay);
        if (!json_object_is_type(text, json_type_string) ||
            json_object_get_string_len(text) == 0 ||
            json_object_get_string_len(text) > MAX_TEXT)
                return pxl_fail(ctx, "text is required (at most %d bytes)",
                                MAX_TEXT);
        if (!json_object_is_type(delay, json_type_int) ||
            json_object_get_int64(delay) < 1 ||
            json_object_get_int64(delay) > 86400000)
                return pxl_fail(ctx, "delayMs must be an integer from 1 to "
                                     "86400000");
        opts.delay_ms = (uint64_t)json_object_get_int64(delay);
        payload = json_object_new_object();
        json_object_object_add(payload, "roomName", json_object_get(room));
        json_object_object_add(payload, "text", json_object_get(text));
        json_object_object_add(payload, "from",
                               json_object_new_string(pxl_ctx_client_id(ctx)));
        if ((d = pxl_defer(ctx)) == NULL) {
                json_object_put(payload);
                return pxl_fail(ctx, "out of memory");
        }
        rc = pxl_job_add(ctx, "chat.reminders", payload, &opts, reminder_added,
                         d);
        json_object_put(payload);
        if (rc == PXL_OK)
                return PXL_DEFERRED;
        pxl_defer_cancel(d);
        return pxl_fail(ctx, "reminder not stored: %s", pxl_strerror(rc));
}

/* The chat.reminders processor: the room hears the reminder now. */
static int remind_room(struct pxl_ctx *ctx, struct pxl_job *job)
{
        struct json_object *p = pxl_job_payload(job), *room = NULL, *out, *r;
        int n;

        json_object_object_get_ex(p, "roomName", &room);
        if (!json_object_is_type(room, json_type_string))
                return pxl_job_fail(job, "no roomName in the payload");
        out = pxl_msg_new("chat", "reminder", json_object_get(p));
        n = pxl_send_to_room(ctx, json_object_get_string(room), out, NULL);
        json_object_put(out);
        if (n < 0)
                return pxl_job_fail(job, "could not send: %s", pxl_strerror(n));
        r = json_object_new_object();
        json_object_object_add(r, "delivered", json_object_new_int(n));
        return pxl_job_complete(job, r);
}

static const struct pxl_processor chat_processors[] = {
        {.queue = "chat.reminders",
         .fn = remind_room,
         .concurrency = 4,
         .timeout_ms = 10000},
        PXL_PROCESSOR_END,
};

static const struct pxl_route chat_routes[] = {
        {"chat", "say", chat_say},
        {"chat", "history", chat_history},
        {"chat", "remind", chat_remind},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "chat",
        .version = "1.2.0",
        .routes = chat_routes,
        .processors = chat_processors,
};
