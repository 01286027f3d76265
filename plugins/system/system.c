/*
 * system - the rooms routes every app of the Node.js framework has
 * (system/joinRoom, system/leaveRoom) plus listRooms, roomMembers and
 * history (pxl). Reply shapes are PROTOCOL.md's; the room logic is the framework's,
 * reached only through <pxl/pxl.h>. No database is ever involved.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <pxl/pxl.h>

/* 2026-11-26T19:30:00.123Z */
static struct json_object *iso_now(void)
{
        struct timeval tv;
        struct tm tm;
        char buf[64];

        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
        return json_object_new_string(buf);
}

static int refuse(struct pxl_ctx *ctx, const char *error)
{
        struct json_object *r = json_object_new_object();

        json_object_object_add(r, "success", json_object_new_boolean(0));
        json_object_object_add(r, "error", json_object_new_string(error));
        json_object_object_add(r, "clientId",
                               json_object_new_string(pxl_ctx_client_id(ctx)));
        return pxl_reply(ctx, r);
}

/*
 * The roomName of a request, or NULL after replying with the reason it
 * is unusable (data missing or not an object counts as no name).
 */
static const char *room_name(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *data = pxl_msg_data(msg), *name = NULL;
        const char *error;

        if (json_object_is_type(data, json_type_object))
                json_object_object_get_ex(data, "roomName", &name);
        error = pxl_room_name_error(ctx, name);
        if (error != NULL) {
                refuse(ctx, error);
                return NULL;
        }
        return json_object_get_string(name);
}

/* data[key] when it is a string, else NULL. */
static const char *string_field(struct json_object *data, const char *key)
{
        struct json_object *v;

        if (json_object_object_get_ex(data, key, &v) &&
            json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return NULL;
}

/*
 * The fields a membership shows are bounded (rooms.max_member_field_length),
 * so a client cannot make the server hold megabytes per room it joins.
 */
static const char *field_too_long(const struct pxl_ctx *ctx,
                                  struct json_object *data)
{
        static const char *const fields[][2] = {
                {"userType", "userType is too long"},
                {"username", "username is too long"},
        };
        struct json_object *v;

        /* Only values that are used count: others give the defaults. */
        if (json_object_object_get_ex(data, "userId", &v) &&
            (json_object_is_type(v, json_type_string) ||
             json_object_is_type(v, json_type_int) ||
             json_object_is_type(v, json_type_double)) &&
            !pxl_room_member_field_ok(ctx, v))
                return "userId is too long";
        for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++)
                if (json_object_object_get_ex(data, fields[i][0], &v) &&
                    json_object_is_type(v, json_type_string) &&
                    !pxl_room_member_field_ok(ctx, v))
                        return fields[i][1];
        return NULL;
}

static int join_room(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *room = room_name(ctx, msg);
        const char *client_id = pxl_ctx_client_id(ctx);
        const struct pxl_client *me = pxl_ctx_client(ctx);
        struct json_object *data = pxl_msg_data(msg), *uid = NULL, *r, *d;
        const char *user_type, *username, *error;
        char default_name[16], text[64 + 65536];
        int rc;

        if (room == NULL)
                return PXL_OK;
        if ((error = field_too_long(ctx, data)) != NULL)
                return refuse(ctx, error);
        /* userId: as given (string or number), else the token's, else our id. */
        if (json_object_object_get_ex(data, "userId", &uid) &&
            (json_object_is_type(uid, json_type_string) ||
             json_object_is_type(uid, json_type_int) ||
             json_object_is_type(uid, json_type_double)))
                uid = json_object_get(uid);
        else if (pxl_client_user_id(me) != NULL)
                uid = json_object_get(pxl_client_user_id(me));
        else
                uid = json_object_new_string(client_id);
        user_type = string_field(data, "userType");
        username = string_field(data, "username");
        snprintf(default_name, sizeof(default_name), "user_%.8s", client_id);

        rc = pxl_room_join_as(ctx, client_id, room, json_object_get(uid));
        if (rc == PXL_EDECLINED) {
                json_object_put(uid);
                return refuse(ctx, "Too many rooms");
        }
        if (rc < 0) {
                json_object_put(uid);
                return pxl_fail(ctx, "Failed to join room");
        }
        d = json_object_new_object();
        json_object_object_add(d, "userId", uid);
        json_object_object_add(d, "userType",
                               json_object_new_string(user_type ? user_type : "user"));
        json_object_object_add(d, "username",
                               json_object_new_string(username ? username : default_name));
        json_object_object_add(d, "roomName", json_object_new_string(room));
        json_object_object_add(d, "joinedAt", iso_now());
        r = json_object_new_object();
        json_object_object_add(r, "success", json_object_new_boolean(1));
        snprintf(text, sizeof(text), "Successfully joined room: %s", room);
        json_object_object_add(r, "message", json_object_new_string(text));
        json_object_object_add(r, "data", d);
        return pxl_reply(ctx, r);
}

static int leave_room(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *room = room_name(ctx, msg);
        struct json_object *r, *d;
        char text[64 + 65536];

        if (room == NULL)
                return PXL_OK;
        /* Not a member: the same success, without a leftRoom frame. */
        if (pxl_room_leave(ctx, pxl_ctx_client_id(ctx), room) < 0)
                return pxl_fail(ctx, "Failed to leave room");
        d = json_object_new_object();
        json_object_object_add(d, "roomName", json_object_new_string(room));
        json_object_object_add(d, "leftAt", iso_now());
        r = json_object_new_object();
        json_object_object_add(r, "success", json_object_new_boolean(1));
        snprintf(text, sizeof(text), "Successfully left room: %s", room);
        json_object_object_add(r, "message", json_object_new_string(text));
        json_object_object_add(r, "data", d);
        json_object_object_add(r, "clientId",
                               json_object_new_string(pxl_ctx_client_id(ctx)));
        return pxl_reply(ctx, r);
}

static int add_room(const char *room, void *arg)
{
        json_object_array_add(arg, json_object_new_string(room));
        return 0;
}

static int list_rooms(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *r = json_object_new_object();
        struct json_object *rooms = json_object_new_array();

        (void)msg;
        pxl_client_rooms(pxl_ctx_client(ctx), add_room, rooms);
        json_object_object_add(r, "rooms", rooms);
        return pxl_reply(ctx, r);
}

static int add_member(const struct pxl_client *c,
                      const struct json_object *user_id, void *arg)
{
        struct json_object *m = json_object_new_object();

        json_object_object_add(m, "clientId",
                               json_object_new_string(pxl_client_id(c)));
        json_object_object_add(m, "userId",
                               json_object_get((struct json_object *)user_id));
        json_object_array_add(arg, m);
        return 0;
}

static int room_members(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *room = room_name(ctx, msg);
        const char *visible_to = "all";
        struct json_object *r, *members;

        if (room == NULL)
                return PXL_OK;
        config_lookup_string(pxl_ctx_config(ctx), "rooms.members_visible_to",
                             &visible_to);
        if (strcmp(visible_to, "members") == 0 &&
            !pxl_room_has(ctx, room, pxl_ctx_client_id(ctx)))
                return refuse(ctx, "Not a member");
        members = json_object_new_array();
        pxl_room_members(ctx, room, add_member, members);
        r = json_object_new_object();
        json_object_object_add(r, "roomName", json_object_new_string(room));
        json_object_object_add(r, "members", members);
        return pxl_reply(ctx, r);
}

/*
 * system/history {roomName, since?, limit?}: the room's kept messages
 * (rooms.history), for members only.
 */
static int history(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *room = room_name(ctx, msg), *since = NULL;
        struct json_object *data = pxl_msg_data(msg), *v, *r;
        int64_t limit = 0;

        if (room == NULL)
                return PXL_OK;
        if (!pxl_room_has(ctx, room, pxl_ctx_client_id(ctx)))
                return refuse(ctx, "Not a member");
        if (json_object_object_get_ex(data, "since", &v) &&
            !json_object_is_type(v, json_type_null)) {
                if (!json_object_is_type(v, json_type_string))
                        return refuse(ctx, "Invalid since: a position "
                                           "\"EPOCH:OFFSET\" is expected");
                since = json_object_get_string(v);
        }
        if (json_object_object_get_ex(data, "limit", &v) &&
            !json_object_is_type(v, json_type_null) &&
            (!json_object_is_type(v, json_type_int) ||
             (limit = json_object_get_int64(v)) < 1))
                return refuse(ctx, "Invalid limit: a positive integer is "
                                   "expected");
        r = pxl_room_history(ctx, room, since,
                             limit > 1000000 ? 0 : (unsigned)limit);
        if (r == NULL)
                return refuse(ctx, "Room history is off");
        return pxl_reply(ctx, r);
}

/*
 * system/resume {token, rooms?}: take over a disconnected client's
 * session (resume), sent as the first request of a connection.
 */
static int resume(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *data = pxl_msg_data(msg), *rooms = NULL, *r;
        const char *token = NULL;

        if (json_object_is_type(data, json_type_object)) {
                token = string_field(data, "token");
                json_object_object_get_ex(data, "rooms", &rooms);
        }
        r = pxl_session_resume(ctx, token ? token : "", rooms);
        if (r == NULL)
                return refuse(ctx, "Session resume is off");
        return pxl_reply(ctx, r);
}

static const struct pxl_route system_routes[] = {
        {"system", "joinRoom", join_room},
        {"system", "leaveRoom", leave_room},
        {"system", "listRooms", list_rooms},
        {"system", "roomMembers", room_members},
        {"system", "history", history},
        {"system", "resume", resume},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "system",
        .version = "1.0.0",
        .routes = system_routes,
};
