/* pxl_db_pg.c - placeholder until the back end lands. */
#include "pxl_db_int.h"

const struct pxl_db_backend pxl_db_postgresql = {
        .name = "pg",
};
