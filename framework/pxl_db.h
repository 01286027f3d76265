/*
 * pxl_db.h - the app's database as the programs see it: the service that
 * runs it in each serving worker, and the migrations applied before
 * serving. Plugins use pxl.h's pxl_db_* functions.
 */
#ifndef PXL_DB_H
#define PXL_DB_H

#include <stdbool.h>

struct pxl_worker;
struct pxl_config;
struct pxl_str;

/* With a database group: run the database in srv's workers. */
int pxl_db_install(struct pxl_worker *srv);

/*
 * The migrations folder of conf (database.migrations): check its file
 * names (-t), or apply what is not applied yet, in name order, each in
 * its own transaction, recording each in pxl_migrations with a
 * checksum. Blocking: for the start, before serving, in one process.
 * 0, or PXL_ERR with every problem in errors ("FILE: TEXT\n"): a
 * file that fails is rolled back and the files after it are not tried.
 * applied gets one "NAME\n" line per file applied now, *before counts
 * those applied earlier (same checksum).
 */
int pxl_db_check_migrations(const struct pxl_config *conf,
                            struct pxl_str *errors);
int pxl_db_migrate(const struct pxl_config *conf, struct pxl_str *applied,
                   unsigned *before, struct pxl_str *errors);

#endif
