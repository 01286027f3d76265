/*
 * bench - the routes the side-by-side benchmark drives (PROTOCOL.md,
 * "Bench routes"): bench/echo replies with the request's data,
 * bench/publish delivers a payload to every member of a room, encoded
 * once, then tells the publisher how many local deliveries it made, and
 * bench/user replies with one row of the app database's bench_users.
 */
#include <pxl/pxl.h>

/* The data goes back as the text it came in: no objects are built. */
static int bench_echo(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        size_t len;
        const char *json = pxl_msg_data_json(msg, &len);

        if (json == NULL)
                return PXL_OK;
        return pxl_reply_json(ctx, json, len);
}

static int count_local(const struct pxl_client *c,
                       const struct json_object *user_id, void *arg)
{
        (void)user_id;
        if (pxl_client_is_local(c))
                (*(int *)arg)++;
        return 0;
}

/*
 * bench/publish {roomName, payload} -> {"delivered": N}, N the members
 * of this worker (PROTOCOL.md): the send's own count also counts members
 * of other workers once the message is on its way to them.
 */
static int bench_publish(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *data = pxl_msg_data(msg), *room = NULL;
        struct json_object *payload = NULL, *out, *d, *reply;
        const char *bad;
        int n;

        if (json_object_is_type(data, json_type_object)) {
                json_object_object_get_ex(data, "roomName", &room);
                json_object_object_get_ex(data, "payload", &payload);
        }
        if ((bad = pxl_room_name_error(ctx, room)) != NULL)
                return pxl_fail(ctx, "%s", bad);
        d = json_object_new_object();
        json_object_object_add(d, "roomName", json_object_get(room));
        /* An absent payload is delivered as null. */
        json_object_object_add(d, "payload", json_object_get(payload));
        out = pxl_msg_new("bench", "message", d);
        n = pxl_send_to_room(ctx, json_object_get_string(room), out, NULL);
        json_object_put(out);
        if (n < 0)
                return pxl_fail(ctx, "publish failed: %s", pxl_strerror(n));
        n = 0;
        pxl_room_members(ctx, json_object_get_string(room), count_local, &n);
        reply = json_object_new_object();
        json_object_object_add(reply, "delivered", json_object_new_int(n));
        return pxl_reply(ctx, reply);
}

#define USER_SQL                                                               \
        "SELECT id, name, email, created FROM bench_users WHERE id = $1"

static void user_done(struct pxl_ctx *ctx, const struct pxl_db_result *res,
                      void *arg)
{
        struct pxl_defer *d = arg;
        const char *err = pxl_db_error(res);
        struct json_object *row;

        (void)ctx;
        if (err != NULL) {
                pxl_defer_fail(d, "%s", err);
                return;
        }
        if (pxl_db_rows(res) == 0) {
                pxl_defer_fail(d, "User not found");
                return;
        }
        row = pxl_db_row_json(res, 0);
        if (row == NULL) {
                pxl_defer_fail(d, "Out of memory");
                return;
        }
        pxl_defer_reply(d, row);
}

/*
 * bench/user {id} -> the row {id, name, email, created} of bench_users
 * with that primary key, read through the app's database pool (the
 * benchmark's "db" scenario creates and fills the table).
 */
static int bench_user(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *data = pxl_msg_data(msg), *id = NULL, *params;
        struct pxl_defer *d;
        int rc;

        if (json_object_is_type(data, json_type_object))
                json_object_object_get_ex(data, "id", &id);
        if (!json_object_is_type(id, json_type_int))
                return pxl_fail(ctx, "Invalid id");
        d = pxl_defer(ctx);
        params = json_object_new_array_ext(1);
        if (d == NULL || params == NULL ||
            json_object_array_add(params, json_object_get(id)) < 0) {
                pxl_defer_cancel(d);
                json_object_put(params);
                return pxl_fail(ctx, "Out of memory");
        }
        rc = pxl_db_query(ctx, USER_SQL, params, user_done, d);
        json_object_put(params);
        if (rc != PXL_OK) {
                /* user_done will not run: answer here. */
                pxl_defer_fail(d, "%s",
                               rc == PXL_ECLOSED ? "database unavailable"
                                                 : pxl_strerror(rc));
        }
        return PXL_DEFERRED;
}

static const struct pxl_route bench_routes[] = {
        {"bench", "echo", bench_echo},
        {"bench", "publish", bench_publish},
        {"bench", "user", bench_user},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "bench",
        .version = "1.0.0",
        .routes = bench_routes,
};
