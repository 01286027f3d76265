/*
 * fuzz_conf.c - libFuzzer harness for the app file loader
 * (framework/pxl_conf.c) on text: it must either return a config or
 * report at least one "name:line: ..." problem, never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pxl_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct pxl_str errors = {0};
        struct pxl_config *conf;
        char *text = malloc(size + 1);

        if (text == NULL)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        conf = pxl_conf_load_string(text, "fuzz.cfg", &errors);
        if (conf == NULL && (errors.len == 0 || errors.p[errors.len - 1] != '\n'))
                abort(); /* refused without saying why */
        if (conf != NULL && conf->nerrors == 0 && conf->name == NULL)
                abort(); /* accepted without the required key */
        if (conf != NULL && (conf->nerrors > 0) != (errors.len > 0))
                abort(); /* errors counted and reported disagree */
        pxl_conf_free(conf);
        pxl_str_fini(&errors);
        free(text);
        return 0;
}
