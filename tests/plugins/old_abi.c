/*
 * A plugin built against ABI 1.1, before settings tables: its descriptor
 * ends after subscribers. The loader must accept it, read nothing past
 * its end, and hand init the settings group unchecked, as 1.1 did.
 */
#define pxl_plugin pxl_plugin_of_today /* the 1.2 type and symbol, unused */
#include <pxl/pxl.h>
#undef pxl_plugin

#include <stdlib.h>

/* struct pxl_plugin as ABI 1.1 had it. */
struct pxl_plugin_1_1 {
        struct pxl_plugin_hdr hdr;
        const char *name;
        const char *version;
        const struct pxl_route *routes;
        pxl_init_fn *init;
        pxl_fini_fn *fini;
        pxl_connect_fn *on_connect;
        pxl_disconnect_fn *on_disconnect;
        pxl_handler_fn *raw_handler;
        const struct pxl_subscriber *subscribers;
};

static int old_answer = -1;

/* By hand, as 1.1 plugins do: any key may be there. */
static int old_init(struct pxl_ctx *ctx, const config_setting_t *settings)
{
        (void)ctx;
        if (settings == NULL ||
            !config_setting_lookup_int(settings, "answer", &old_answer))
                old_answer = 0;
        return PXL_OK;
}

static int old_get(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        (void)msg;
        return pxl_reply(ctx, json_object_new_int(old_answer));
}

static const struct pxl_route old_routes[] = {
        {"old", "get", old_get},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin_1_1 pxl_plugin = {
        .hdr = {PXL_PLUGIN_MAGIC, 1, 1, (uint32_t)sizeof(struct pxl_plugin_1_1),
                PXL_BUILD_SIG},
        .name = "old_abi",
        .version = "1.1.0",
        .routes = old_routes,
        .init = old_init,
};
