/*
 * pxl_redis.h - connections to Redis: a command connection (commands,
 * PUBLISH) and a subscribed one, hiredis async on an event loop.
 * Connecting, AUTH/SELECT, reconnecting with capped backoff and the
 * channels to keep subscribed live here. It knows no worker: its owner
 * (the cluster view) gives the loop, the config and its callbacks, and
 * each channel's subscriber gets that channel's messages.
 */
#ifndef PXL_REDIS_H
#define PXL_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pxl_str.h"

struct event_base;
struct pxl_redis;

/* The app file's redis group (checked by pxl_conf.c). */
struct pxl_redis_conf {
        bool enabled;        /* the redis group is present */
        char *host;
        unsigned port;
        char *socket;        /* unix socket path; replaces host and port */
        char *user;          /* ACL user (AUTH user password) */
        char *password;
        unsigned database;   /* SELECT */
        bool required;       /* refuse to start while Redis is down */
        unsigned connect_timeout;   /* seconds */
        unsigned retry_max_delay;   /* seconds: cap of the reconnect backoff */
        unsigned heartbeat_interval; /* seconds */
        unsigned dead_after;        /* seconds without a heartbeat */
};

struct redisReply;

/*
 * A reply to pxl_redis_queue_command: reply is NULL when the connection went away
 * before the answer came (or at shutdown). Borrowed for the call. owner
 * is the owner's arg.
 */
typedef void pxl_redis_cb(void *owner, struct redisReply *reply, void *arg);
/* A message on a subscribed channel (all borrowed for the call). */
typedef void pxl_redis_message_cb(void *arg, const char *channel,
                                  size_t chlen, const char *msg, size_t len);

/* Who uses the connections: copied by pxl_redis_start. */
struct pxl_redis_owner {
        struct event_base *base;
        const struct pxl_redis_conf *conf; /* borrowed for the life */
        const char *app;                   /* the namespace: "pxl:APP:" */
        const char *file;                  /* the app file, for errors */
        void (*up)(void *arg);             /* connected (again) */
        void (*down)(void *arg);           /* lost */
        void *arg;
        /* Counted as they happen (the worker's metrics). */
        uint64_t *published, *received, *dropped;
        /*
         * One connection for blocking commands (XREADGROUP BLOCK): no
         * subscriber, and stopping drops what is pending at once instead
         * of waiting for replies that may be seconds away.
         */
        bool blocking;
};

/*
 * Create the connections. With conf->required a Redis that cannot be
 * reached, or refuses AUTH, is an error in errors; otherwise this only
 * logs and retries in the background. Returns NULL on error.
 */
struct pxl_redis *pxl_redis_start(const struct pxl_redis_owner *owner,
                                  struct pxl_str *errors);
/*
 * Close both connections after flushing what is queued, giving pending
 * commands up to a second; runs the owner's loop until then. Frees r.
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
int pxl_redis_queue_command(struct pxl_redis *r, pxl_redis_cb *cb, void *arg, int argc,
                  const char **argv, const size_t *argvlen);
/*
 * PUBLISH; a publish that cannot be made (Redis down) or that fails is
 * counted in redisDropped. PXL_ECLOSED when down.
 */
int pxl_redis_queue_publish(struct pxl_redis *r, const char *channel, size_t chlen,
                      const char *msg, size_t len);

/*
 * Keep channel subscribed while its count is above 0 (through
 * reconnects); its messages go to fn. Unsubscribing is lazy: a channel
 * whose count is 0 at the next sweep is dropped, so a room emptied and
 * joined again at once costs nothing.
 */
int pxl_redis_chan_ref(struct pxl_redis *r, const char *channel, size_t len,
                       pxl_redis_message_cb *fn, void *arg);
void pxl_redis_chan_unref(struct pxl_redis *r, const char *channel,
                          size_t len);
/* Unsubscribe the channels nobody uses any more (called once a second). */
void pxl_redis_sweep(struct pxl_redis *r);

/*
 * A Lua script run by its SHA1 (EVALSHA), sent whole again (EVAL) when
 * Redis does not have it (NOSCRIPT: a restarted or flushed Redis).
 */
struct pxl_redis_script {
        const char *text;
        char sha[41];
};

/* Compute s's SHA1 from text (kept borrowed); PXL_ERR if it cannot. */
int pxl_redis_script_init(struct pxl_redis_script *s, const char *text);

/*
 * Run script s with nkeys keys then the other arguments (argv, binary
 * safe, copied) on the command connection; as pxl_redis_queue_command.
 */
int pxl_redis_queue_script(struct pxl_redis *r, const struct pxl_redis_script *s,
                           pxl_redis_cb *cb, void *arg, int nkeys, int argc,
                           const char **argv, const size_t *argvlen);

/* Where conf connects, for messages: "host:port" or the socket path. */
void pxl_redis_where(const struct pxl_redis_conf *conf, char *out, size_t cap);

/*
 * A blocking connection for a command (pxl-jobs) or a check before
 * serving (redis.required): connected, and every later command
 * answered, within conf->connect_timeout; AUTH (user and password, or
 * the password) and SELECT done. The caller frees it with redisFree.
 * NULL with why filled in ("AUTH refused: ...") when it cannot be had.
 */
struct redisContext;
struct redisContext *
pxl_redis_connect_blocking(const struct pxl_redis_conf *conf, char *why,
                           size_t cap);

/* Borrowed: "pxl:" app ":", the app's namespace in Redis. */
const char *pxl_redis_app_prefix(const struct pxl_redis *r);

#endif
