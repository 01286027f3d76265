/*
 * settings - a plugin with a setting of each type (ABI 1.2): pxl-serve
 * checks its settings group at load; settings/get answers with the
 * values init and a handler read, defaults where the app file sets none.
 */
#include <pxl/pxl.h>

static const struct pxl_setting st_settings[] = {
        {.name = "count",
         .type = PXL_SETTING_INT,
         .min = 1,
         .max = 100,
         .def.i = 7,
         .help = "an integer with a range"},
        {.name = "big",
         .type = PXL_SETTING_INT,
         .min = -5000000000LL,
         .max = 5000000000LL,
         .def.i = -4000000000LL,
         .help = "beyond 32 bits, negative by default"},
        {.name = "any", .type = PXL_SETTING_INT, .help = "no range at all"},
        {.name = "flag",
         .type = PXL_SETTING_BOOL,
         .def.b = true,
         .help = "a boolean, true by default"},
        {.name = "word",
         .type = PXL_SETTING_STRING,
         .min = 2,
         .max = 8,
         .def.s = "abc",
         .help = "a string of 2 to 8 bytes"},
        {.name = "path",
         .type = PXL_SETTING_STRING,
         .help = "a string without a default"},
        PXL_SETTING_END,
};

/* Read in init, to show that values are there before any client. */
static int64_t count_at_init;

static int st_init(struct pxl_ctx *ctx, const config_setting_t *settings)
{
        (void)settings;
        count_at_init = pxl_setting_int(ctx, "count");
        return PXL_OK;
}

static int st_get(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *o = json_object_new_object();
        const char *path = pxl_setting_string(ctx, "path");

        (void)msg;
        json_object_object_add(o, "count",
                               json_object_new_int64(count_at_init));
        json_object_object_add(
                o, "big", json_object_new_int64(pxl_setting_int(ctx, "big")));
        json_object_object_add(
                o, "any", json_object_new_int64(pxl_setting_int(ctx, "any")));
        json_object_object_add(
                o, "flag",
                json_object_new_boolean(pxl_setting_bool(ctx, "flag")));
        json_object_object_add(
                o, "word",
                json_object_new_string(pxl_setting_string(ctx, "word")));
        json_object_object_add(
                o, "path", path != NULL ? json_object_new_string(path) : NULL);
        return pxl_reply(ctx, o);
}

/* A name the table lacks, or the wrong type: 0/false/NULL and an ERR line. */
static int st_undeclared(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct json_object *o = json_object_new_object();

        (void)msg;
        json_object_object_add(
                o, "nosuch",
                json_object_new_int64(pxl_setting_int(ctx, "nosuch")));
        json_object_object_add(
                o, "countAsBool",
                json_object_new_boolean(pxl_setting_bool(ctx, "count")));
        return pxl_reply(ctx, o);
}

static const struct pxl_route st_routes[] = {
        {"settings", "get", st_get},
        {"settings", "undeclared", st_undeclared},
        PXL_ROUTE_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "settings",
        .version = "1.0.0",
        .routes = st_routes,
        .init = st_init,
        .settings = st_settings,
};
