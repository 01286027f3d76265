/*
 * peer - a second plugin for the tests: it reads what testkit stored, to
 * show that client metadata set by one plugin is visible to another.
 */
#include <pxl/pxl.h>

/* data {clientId, key}: that client's metadata value (or null). */
static int peer_meta(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *d = pxl_msg_data(msg), *id = NULL, *key = NULL;
        const struct pxl_client *c;

        if (d) {
                json_object_object_get_ex(d, "clientId", &id);
                json_object_object_get_ex(d, "key", &key);
        }
        c = pxl_client_find(ctx, json_object_get_string(id));
        if (c == NULL)
                return pxl_fail(ctx, "no such client");
        return pxl_reply(ctx, json_object_get(
                                      pxl_client_meta(c, json_object_get_string(key))));
}

static const struct pxl_route peer_routes[] = {
        {"peer", "meta", peer_meta},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "peer",
        .routes = peer_routes,
};
