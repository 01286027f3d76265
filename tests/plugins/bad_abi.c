/* A plugin claiming a future ABI: the loader must refuse it by name. */
#include <pxl/pxl.h>

PXL_PLUGIN_EXPORT const struct pxl_plugin pxl_plugin = {
        .hdr = {PXL_PLUGIN_MAGIC, PXL_ABI_MAJOR, PXL_ABI_MINOR + 7,
                (uint32_t)sizeof(struct pxl_plugin), PXL_BUILD_SIG},
        .name = "bad_abi",
};
