/*
 * hello - the example controller: one route, settings from the app file,
 * and the calling client's id. Start here when writing a plugin.
 */
#include <stdio.h>

#include <pxl/pxl.h>

/* Checked by pxl-serve against the app file at load (pxl-serve -t too). */
static const struct pxl_setting hello_settings[] = {
        {.name = "greeting",
         .type = PXL_SETTING_STRING,
         .max = 63,
         .def.s = "Hello",
         .help = "the word before the name"},
        PXL_SETTING_END,
};

/* hello/greet {"name": "Ada"} -> {"message": "Hello, Ada!", "clientId": ...} */
static int hello_greet(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *greeting = pxl_setting_string(ctx, "greeting");
        struct json_object *data = pxl_msg_data(msg), *name, *reply;
        const char *who = "world";
        char text[256];

        if (data != NULL && json_object_object_get_ex(data, "name", &name)) {
                if (!json_object_is_type(name, json_type_string))
                        return pxl_fail(ctx, "name must be a string");
                who = json_object_get_string(name);
        }
        snprintf(text, sizeof(text), "%s, %s!", greeting, who);
        reply = json_object_new_object();
        json_object_object_add(reply, "message", json_object_new_string(text));
        json_object_object_add(reply, "clientId",
                               json_object_new_string(pxl_ctx_client_id(ctx)));
        return pxl_reply(ctx, reply);
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
        .settings = hello_settings,
};
