/*
 * pxl_queue_sql.h - where the queue keeps its jobs without Redis: one
 * table in SQLite (the app's database, or queue.path), shared by the
 * workers (pxl_queue.c) and the operator's command (pxl-jobs).
 *
 * A job's state:
 *   waiting    stored; runs from run_at on (before then it counts as
 *              delayed); a failed job waits here for its retry
 *   active     claimed by owner until lease_until; a lease that runs
 *              out (the worker died) makes it claimable again
 *   completed  done, result kept (the newest keep of the queue)
 *   dead       failed attempts times; kept until retried or removed
 * attempt counts the runs started (a run given back at a graceful
 * shutdown is not counted). Times are milliseconds since the epoch.
 *
 * pxl_queue_limits holds a rate-limited queue's GCRA state: tat, when
 * the next start is allowed (microseconds since the epoch), and how
 * many starts the last reservation granted.
 */
#ifndef PXL_QUEUE_SQL_H
#define PXL_QUEUE_SQL_H

#define PXL_QUEUE_SCHEMA                                                       \
        "CREATE TABLE IF NOT EXISTS pxl_jobs ("                                \
        "queue TEXT NOT NULL, "                                                \
        "id TEXT NOT NULL, "                                                   \
        "state TEXT NOT NULL DEFAULT 'waiting', "                              \
        "payload TEXT NOT NULL, "                                              \
        "priority INTEGER NOT NULL DEFAULT 0, "                                \
        "run_at INTEGER NOT NULL, "                                            \
        "attempt INTEGER NOT NULL DEFAULT 0, "                                 \
        "attempts INTEGER NOT NULL, "                                          \
        "backoff_ms INTEGER NOT NULL, "                                        \
        "backoff_exp INTEGER NOT NULL, "                                       \
        "timeout_ms INTEGER NOT NULL, "                                        \
        "keep INTEGER NOT NULL, "                                              \
        "lease_until INTEGER, "                                                \
        "owner TEXT, "                                                         \
        "progress TEXT, "                                                      \
        "result TEXT, "                                                        \
        "error TEXT, "                                                         \
        "created_at INTEGER NOT NULL, "                                        \
        "started_at INTEGER, "                                                 \
        "finished_at INTEGER, "                                                \
        "PRIMARY KEY (queue, id)); "                                           \
        "CREATE INDEX IF NOT EXISTS pxl_jobs_ready ON pxl_jobs "               \
        "(queue, state, priority DESC, run_at); "                              \
        "CREATE INDEX IF NOT EXISTS pxl_jobs_finished ON pxl_jobs "            \
        "(queue, state, finished_at); "                                        \
        "CREATE TABLE IF NOT EXISTS pxl_queue_limits ("                        \
        "queue TEXT PRIMARY KEY, "                                             \
        "tat INTEGER NOT NULL DEFAULT 0, "                                     \
        "granted INTEGER NOT NULL DEFAULT 0)"

/*
 * With Redis, pxl_job_add_tx writes the job to pxl_job_outbox in the
 * app's database (PostgreSQL or SQLite: the same text serves both), in
 * the transaction; after the commit a worker moves it to Redis (an add
 * by id, so moving twice adds once) and deletes the row. lease_until
 * (ms) keeps two workers from moving a row at once; a worker that died
 * mid-move leaves it to the others once the lease is over.
 */
#define PXL_QUEUE_OUTBOX_SCHEMA                                                \
        "CREATE TABLE IF NOT EXISTS pxl_job_outbox ("                          \
        "queue TEXT NOT NULL, "                                                \
        "id TEXT NOT NULL, "                                                   \
        "payload TEXT NOT NULL, "                                              \
        "priority BIGINT NOT NULL, "                                           \
        "run_at BIGINT NOT NULL, "                                             \
        "attempts INTEGER NOT NULL, "                                          \
        "backoff_ms INTEGER NOT NULL, "                                        \
        "backoff_exp INTEGER NOT NULL, "                                       \
        "timeout_ms INTEGER NOT NULL, "                                        \
        "keep INTEGER NOT NULL, "                                              \
        "created_at BIGINT NOT NULL, "                                         \
        "lease_until BIGINT NOT NULL DEFAULT 0, "                              \
        "PRIMARY KEY (queue, id))"

#endif
