/*
 * hello - the example controller: one route, settings from the app file,
 * and the calling client's id. Start here when writing a plugin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pxl/pxl.h>

struct hello {
        char greeting[64];
};

/* hello/greet {"name": "Ada"} -> {"message": "Hello, Ada!", "clientId": ...} */
static int hello_greet(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct hello *h = pxl_ctx_plugin_data(ctx);
        struct json_object *data = pxl_msg_data(msg), *name, *reply;
        const char *who = "world";
        char text[256];

        if (data != NULL && json_object_object_get_ex(data, "name", &name)) {
                if (!json_object_is_type(name, json_type_string))
                        return pxl_fail(ctx, "name must be a string");
                who = json_object_get_string(name);
        }
        snprintf(text, sizeof(text), "%s, %s!", h->greeting, who);
        reply = json_object_new_object();
        json_object_object_add(reply, "message", json_object_new_string(text));
        json_object_object_add(reply, "clientId",
                               json_object_new_string(pxl_ctx_client_id(ctx)));
        return pxl_reply(ctx, reply);
}

static int hello_init(struct pxl_ctx *ctx, const config_setting_t *settings)
{
        struct hello *h = calloc(1, sizeof(*h));
        const char *greeting = "Hello";

        if (h == NULL)
                return pxl_ctx_fail(ctx, "out of memory");
        pxl_ctx_set_plugin_data(ctx, h);
        if (settings != NULL)
                config_setting_lookup_string(settings, "greeting", &greeting);
        if (strlen(greeting) >= sizeof(h->greeting))
                return pxl_ctx_fail(ctx, "settings.greeting: longer than %zu bytes",
                                    sizeof(h->greeting) - 1);
        strcpy(h->greeting, greeting);
        return PXL_OK;
}

static void hello_fini(struct pxl_ctx *ctx)
{
        free(pxl_ctx_plugin_data(ctx));
}

static const struct pxl_route hello_routes[] = {
        {"hello", "greet", hello_greet},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "hello",
        .version = "1.0.0",
        .routes = hello_routes,
        .init = hello_init,
        .fini = hello_fini,
};
