/*
 * fuzz_conf.c - libFuzzer harness for the app file loader
 * (framework/pxl_conf.c) on text: it must either return a config or
 * report at least one "name:line: ..." problem, never crash or leak.
 * Every plugin's settings group is checked against a table with a
 * setting of each type, as the plugin loader does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pxl/pxl.h"
#include "pxl_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct pxl_setting table[] = {
        {.name = "k",
         .type = PXL_SETTING_INT,
         .min = -3,
         .max = 1000,
         .def.i = 5},
        {.name = "n", .type = PXL_SETTING_INT},
        {.name = "flag", .type = PXL_SETTING_BOOL, .def.b = true},
        {.name = "greeting",
         .type = PXL_SETTING_STRING,
         .max = 63,
         .def.s = "Hello"},
        {.name = "need",
         .type = PXL_SETTING_STRING,
         .required = true,
         .min = 1,
         .max = 8},
        PXL_SETTING_END,
};

static void check_settings(const struct pxl_config *conf)
{
        for (size_t i = 0; i < conf->nplugins; i++) {
                struct pxl_str errors = {0};
                union pxl_conf_value *v;
                int rc = pxl_conf_settings(conf, &conf->plugins[i], "x.so",
                                           table, &v, &errors);

                if ((rc == 0) != (v != NULL))
                        abort(); /* values without success, or the reverse */
                if (rc < 0 &&
                    (errors.len == 0 || errors.p[errors.len - 1] != '\n'))
                        abort(); /* refused without saying why */
                if (rc == 0 && (errors.len != 0 || v[4].s == NULL ||
                                v[3].s == NULL || v[0].i < -3 || v[0].i > 1000))
                        abort(); /* accepted what the table refuses */
                pxl_conf_settings_free(table, v);
                pxl_str_fini(&errors);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct pxl_str errors = {0};
        struct pxl_config *conf;
        char *text = malloc(size + 1);

        if (text == NULL)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        conf = pxl_conf_load_string(text, "fuzz.cfg", NULL, &errors);
        if (conf == NULL && (errors.len == 0 || errors.p[errors.len - 1] != '\n'))
                abort(); /* refused without saying why */
        if (conf != NULL && conf->nerrors == 0 && conf->name == NULL)
                abort(); /* accepted without the required key */
        if (conf != NULL && (conf->nerrors > 0) != (errors.len > 0))
                abort(); /* errors counted and reported disagree */
        if (conf != NULL)
                check_settings(conf);
        pxl_conf_free(conf);
        pxl_str_fini(&errors);
        free(text);
        return 0;
}
