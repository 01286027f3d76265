/*
 * pxl_db.h - the app's database as the programs see it: the service that
 * runs it in each serving worker, and the migrations applied before
 * serving. Plugins use pxl.h's pxl_db_* functions.
 */
#ifndef PXL_DB_H
#define PXL_DB_H

#include <stdbool.h>

#include "pxl/pxl.h"

struct pxl_worker;
struct pxl_config;
struct pxl_str;

struct pxl_db;
struct pxl_db_conf;
struct pxl_plugin_slot;

/* With a database group: run the database in srv's workers. */
int pxl_db_install(struct pxl_worker *srv);

/*
 * For the subsystems above: the app's database while its worker serves
 * (NULL without one), or one of their own on conf (borrowed; it must
 * outlive the database), opened on srv's loop and closed by
 * pxl_db_close, which ends every query first. pxl_db_run is
 * pxl_db_query for them: plugin may be NULL.
 */
struct pxl_db *pxl_db_app(const struct pxl_worker *srv);
struct pxl_db *pxl_db_open(struct pxl_worker *srv,
                           const struct pxl_db_conf *conf,
                           struct pxl_str *errors);
void pxl_db_close(struct pxl_db *db);
/* Whose transaction: its worker (NULL once detached) and its plugin. */
struct pxl_worker *pxl_db_tx_worker(const struct pxl_db_tx *tx);
struct pxl_plugin_slot *pxl_db_tx_plugin(const struct pxl_db_tx *tx);
int pxl_db_run(struct pxl_db *db, struct pxl_plugin_slot *plugin,
               const char *sql, const struct json_object *params,
               pxl_db_result_fn *fn, void *arg);
/*
 * Have fn(arg) run, from the loop, once tx has committed (never when it
 * rolls back or fails). PXL_ENOMEM, PXL_EINVAL for an ended tx.
 */
int pxl_db_tx_on_commit(struct pxl_db_tx *tx, void (*fn)(void *arg),
                        void *arg);

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

/*
 * Run sql (statements without results) on conf's database, blocking:
 * for what a subsystem makes once before serving. 0 or PXL_ERR with the
 * reason in errors.
 */
int pxl_db_exec(const struct pxl_config *conf, const char *sql,
                struct pxl_str *errors);

#endif
