/*
 * chat - the example app's chat controller: say something to a room you
 * joined with system/joinRoom. Shows rooms, the authenticated user and a
 * broadcast that is encoded once for every member.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <pxl/pxl.h>

#define MAX_TEXT 2000

/*
 * chat/say {"roomName": R, "text": T}: every member of R gets
 * {"type":"chat","action":"message","data":{roomName, clientId, userId,
 * text, sentAt}}; the sender gets {"delivered": N}.
 */
static int chat_say(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *data = pxl_msg_data(msg), *room = NULL, *text = NULL;
        const struct pxl_client *me = pxl_ctx_client(ctx);
        struct json_object *out, *d, *reply;
        const char *bad;
        struct timeval tv;
        int n;

        if (json_object_is_type(data, json_type_object)) {
                json_object_object_get_ex(data, "roomName", &room);
                json_object_object_get_ex(data, "text", &text);
        }
        if ((bad = pxl_room_name_error(ctx, room)) != NULL)
                return pxl_fail(ctx, "%s", bad);
        if (!json_object_is_type(text, json_type_string) ||
            json_object_get_string_len(text) == 0)
                return pxl_fail(ctx, "text is required");
        if (json_object_get_string_len(text) > MAX_TEXT)
                return pxl_fail(ctx, "text is longer than %d bytes", MAX_TEXT);
        if (!pxl_room_has(ctx, json_object_get_string(room), pxl_client_id(me)))
                return pxl_fail(ctx, "join the room first");

        gettimeofday(&tv, NULL);
        d = json_object_new_object();
        json_object_object_add(d, "roomName", json_object_get(room));
        json_object_object_add(d, "clientId",
                               json_object_new_string(pxl_client_id(me)));
        json_object_object_add(d, "userId",
                               json_object_get(pxl_client_user_id(me)));
        json_object_object_add(d, "text", json_object_get(text));
        json_object_object_add(d, "sentAt",
                               json_object_new_int64((int64_t)tv.tv_sec * 1000 +
                                                     tv.tv_usec / 1000));
        out = pxl_msg_new("chat", "message", d);
        n = pxl_send_to_room(ctx, json_object_get_string(room), out, NULL);
        json_object_put(out);
        if (n < 0)
                return pxl_fail(ctx, "could not send: %s", pxl_strerror(n));
        reply = json_object_new_object();
        json_object_object_add(reply, "delivered", json_object_new_int(n));
        return pxl_reply(ctx, reply);
}

static const struct pxl_route chat_routes[] = {
        {"chat", "say", chat_say},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "chat",
        .version = "1.0.0",
        .routes = chat_routes,
};
