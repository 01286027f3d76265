/*
 * pxl_queue_pool.h - a pool of threads beside one libevent loop, for the
 * queue's blocking processors: work runs on a pool thread, and what must
 * happen on the loop (a done, a post) comes back to it through an
 * eventfd. Nothing here touches the loop from a thread.
 */
#ifndef PXL_QUEUE_POOL_H
#define PXL_QUEUE_POOL_H

#include <stdbool.h>

struct event_base;
struct pxl_queue_pool;
struct pxl_str;

/*
 * After work: ran is true once work returned on a pool thread, false
 * when the pool was freed before a thread took it (work never ran).
 */
typedef void pxl_queue_pool_done_fn(void *arg, bool ran);
typedef void pxl_queue_pool_fn(void *arg);

/*
 * A pool of threads (1 or more) whose dones and posts run on base's loop
 * (borrowed; it outlives the pool). Call on the loop's thread, in the
 * process that serves (threads do not survive a fork). Signals stay
 * with the loop's thread. NULL on failure, the reason in errors.
 */
struct pxl_queue_pool *pxl_queue_pool_new(struct event_base *base,
                                          unsigned threads,
                                          struct pxl_str *errors);

/*
 * From the loop's thread: run work(arg) on a pool thread (first come,
 * first served), then done(arg, true) on the loop, after every post work
 * made. PXL_OK; PXL_ENOMEM, or PXL_ECLOSED while the pool is being
 * freed: neither function runs then.
 */
int pxl_queue_pool_run(struct pxl_queue_pool *p, pxl_queue_pool_fn *work,
                       pxl_queue_pool_done_fn *done, void *arg);

/*
 * From any thread, the loop's included, while the pool exists: run
 * fn(arg) on the loop soon (on a later turn, never inside this call).
 * Posts of one thread run in order, and before the done of the work
 * that made them. PXL_OK, or PXL_ENOMEM (fn will not run).
 */
int pxl_queue_pool_post(struct pxl_queue_pool *p, pxl_queue_pool_fn *fn,
                        void *arg);

/*
 * From the loop's thread: stop taking work, wait for the work that runs
 * to return (however long it takes), then, on this thread and in order,
 * run the posts and the dones still pending (done(arg, true)) and hand
 * back what no thread took (done(arg, false)). Callbacks here may post
 * (run at once, in this call) but not run. Frees p; NULL is nothing.
 */
void pxl_queue_pool_free(struct pxl_queue_pool *p);

#endif
