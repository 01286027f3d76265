/*
 * pxl_redis.h - one worker's connections to Redis: a command connection
 * (commands, PUBLISH) and a subscribed one, hiredis async on the worker's
 * event loop. Connecting, AUTH/SELECT, reconnecting with capped backoff,
 * the channels to keep subscribed, and the plugin command API live here;
 * what the cluster's messages mean is pxl_mirror.c's.
 */
#ifndef PXL_REDIS_H
#define PXL_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include "pxl_str.h"

struct pxl_redis;
struct pxl_worker;
struct redisReply;

/*
 * A reply to pxl_redis_cmd: reply is NULL when the connection went away
 * before the answer came (or at shutdown). Borrowed for the call.
 */
typedef void pxl_redis_cb(struct pxl_worker *srv, struct redisReply *reply,
                          void *arg);

/*
 * Create the connections of srv (conf->redis.enabled). With
 * redis.required a Redis that cannot be reached, or refuses AUTH, is an
 * error in errors; otherwise this only logs and retries in the
 * background. Returns NULL on error.
 */
struct pxl_redis *pxl_redis_start(struct pxl_worker *srv,
                                  struct pxl_str *errors);
/*
 * Close both connections after flushing what is queued, giving pending
 * commands up to a second; runs srv's loop until then. Frees r.
 */
void pxl_redis_stop(struct pxl_redis *r);

/* Drop both connections and reconnect (Redis stopped answering). */
void pxl_redis_reset(struct pxl_redis *r, const char *why);

/* Both connections are open and authenticated. */
bool pxl_redis_up(const struct pxl_redis *r);

/*
 * Queue a command (argv, binary-safe) on the command connection; cb may be
 * NULL. PXL_ECLOSED while Redis is down (cb is not called).
 */
int pxl_redis_cmd(struct pxl_redis *r, pxl_redis_cb *cb, void *arg, int argc,
                  const char **argv, const size_t *argvlen);
/*
 * PUBLISH; a publish that cannot be made (Redis down) or that fails is
 * counted in redisDropped. PXL_ECLOSED when down.
 */
int pxl_redis_pub(struct pxl_redis *r, const char *channel, size_t chlen,
                      const char *msg, size_t len);

/*
 * Keep channel subscribed while its count is above 0 (through
 * reconnects). Unsubscribing is lazy: a channel whose count is 0 at the
 * next sweep is dropped, so a room emptied and joined again at once costs
 * nothing.
 */
int pxl_redis_chan_ref(struct pxl_redis *r, const char *channel, size_t len);
void pxl_redis_chan_unref(struct pxl_redis *r, const char *channel,
                          size_t len);
/* Unsubscribe the channels nobody uses any more (called once a second). */
void pxl_redis_sweep(struct pxl_redis *r);

#endif
