/*
 * echo - the conformance plugin: every message comes back verbatim, text
 * as text and binary as binary (the app sets raw_text = true so text is
 * not routed). It also answers echo/echo through the router, which the
 * request/response tests use.
 */
#include <pxl/pxl.h>

static int echo_raw(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        size_t len;
        const uint8_t *p = pxl_msg_payload(msg, &len);

        return pxl_send_raw(ctx, p, len, pxl_msg_is_binary(msg));
}

/* Replies with the request's data; no data gives a reply without response. */
static int echo_echo(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        if (!pxl_msg_has_data(msg))
                return PXL_OK;
        return pxl_reply(ctx, json_object_get(pxl_msg_data(msg)));
}

static const struct pxl_route echo_routes[] = {
        {"echo", "echo", echo_echo},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "echo",
        .version = "1.0.0",
        .routes = echo_routes,
        .raw_handler = echo_raw,
};
