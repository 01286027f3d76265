/* A settings table with mistakes: the loader refuses it by path and key. */
#include <pxl/pxl.h>

static const struct pxl_setting bad_settings[] = {
        {.name = "level",
         .type = PXL_SETTING_INT,
         .min = 1,
         .max = 10,
         .help = "the default 0 is out of range"},
        {.name = "name",
         .type = PXL_SETTING_STRING,
         .min = 3,
         .max = 8,
         .def.s = "x",
         .help = "the default is too short"},
        {.name = "level", .type = PXL_SETTING_BOOL, .help = "declared twice"},
        {.name = "span",
         .type = PXL_SETTING_INT,
         .min = 5,
         .max = 1,
         .def.i = 3,
         .help = "an empty range"},
        {.name = "colour",
         .type = (enum pxl_setting_type)9,
         .help = "no such type"},
        PXL_SETTING_END,
};

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "bad_settings",
        .settings = bad_settings,
};
