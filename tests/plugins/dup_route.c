/* Claims echo/echo, which plugins/echo already owns. */
#include <pxl/pxl.h>

static int dup_echo(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        (void)ctx;
        (void)msg;
        return PXL_OK;
}

static const struct pxl_route dup_routes[] = {
        {"echo", "echo", dup_echo},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "dup_route",
        .routes = dup_routes,
};
