/*
 * pxl_redis.c - a worker's two connections to Redis on its event loop
 * (hiredis async, libevent adapter): "cmd" for commands and PUBLISH, "sub"
 * for SUBSCRIBE, since a subscribed connection can do nothing else.
 *
 * Life: start() opens both; each sends AUTH (and cmd SELECT) then PING,
 * and the PING's answer marks it ready. Both ready = up: the channels in
 * use are subscribed and the owner's up callback runs. Any failure
 * closes both, and a timer retries after 0.1 s doubling up to
 * redis.retry_max_delay. One log line per change of state. What the
 * messages mean is for whoever subscribed (the cluster view, the
 * plugins' API).
 *
 * hiredis frees a context after its disconnect callback: the pointers
 * here are cleared in the callbacks and never used after.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "pxl/pxl.h"
#include "pxl_log.h"
#include "pxl_map.h"
#include "pxl_redis.h"
#include "pxl_str.h"
#include "pxl_time.h"

enum chan_state { CH_OFF, CH_SUBSCRIBING, CH_ON, CH_UNSUBSCRIBING };

struct chan {
        struct pxl_map_node node; /* r->chans, keyed by name */
        pxl_redis_message_cb *fn; /* who gets its messages */
        void *arg;
        unsigned refs;
        enum chan_state state;
        size_t len;
        char name[];
};

struct pxl_redis {
        struct pxl_redis_owner owner; /* copied at start */
        const struct pxl_redis_conf *conf;
        redisAsyncContext *cmd, *sub;
        bool cmd_ready, sub_ready, up;
        bool was_up;      /* for the state log: lost vs. cannot reach */
        bool down_logged; /* the current outage has been logged */
        bool stopping;
        unsigned attempt; /* failed tries since the last up */
        struct event *retry_timer, *connect_timer;
        struct pxl_map chans;
        char prefix[80]; /* "pxl:" app ":" */
        char where[300]; /* host:port or the socket path, for logs */
};

static void on_connect(const redisAsyncContext *ac, int status);
static void on_disconnect(const redisAsyncContext *ac, int status);
static void on_sub_message(redisAsyncContext *ac, void *reply, void *arg);

bool pxl_redis_up(const struct pxl_redis *r)
{
        return r != NULL && r->up;
}

/* ---- connecting --------------------------------------------------------- */

static void schedule_retry(struct pxl_redis *r)
{
        unsigned cap_ms = r->conf->retry_max_delay * 1000u;
        unsigned delay_ms = 100;
        struct timeval tv;

        if (r->stopping)
                return;
        for (unsigned i = 0; i < r->attempt && delay_ms < cap_ms; i++)
                delay_ms *= 2;
        if (delay_ms > cap_ms)
                delay_ms = cap_ms;
        r->attempt++;
        tv = pxl_ms_timeval(delay_ms);
        evtimer_add(r->retry_timer, &tv);
}

/* Free a context now: its pending callbacks run with a NULL reply. */
static void drop(redisAsyncContext **slot)
{
        redisAsyncContext *ac = *slot;

        if (ac == NULL)
                return;
        *slot = NULL; /* its disconnect callback finds nothing to clear */
        redisAsyncFree(ac);
}

/* Something broke: close what is open, tell the mirror, retry later. */
static void fail(struct pxl_redis *r, const char *why)
{
        bool was_up = r->up;

        r->up = false;
        r->cmd_ready = r->sub_ready = false;
        evtimer_del(r->connect_timer);
        if (!r->stopping && !r->down_logged) {
                r->down_logged = true;
                if (r->was_up)
                        pxl_logs(PXL_LOG_WARN,
                                 "redis %s: connection lost (%s); local clients "
                                 "are still served, reconnecting",
                                 r->where, why);
                else
                        pxl_logs(PXL_LOG_WARN,
                                 "redis %s: cannot connect (%s); local clients "
                                 "are served, retrying in the background",
                                 r->where, why);
        }
        /*
         * Free rather than disconnect: a Redis that stopped answering would
         * keep a clean disconnect waiting for replies forever.
         */
        drop(&r->cmd);
        drop(&r->sub);
        if (was_up && !r->stopping && r->owner.down != NULL)
                r->owner.down(r->owner.arg);
        schedule_retry(r);
}

void pxl_redis_reset(struct pxl_redis *r, const char *why)
{
        fail(r, why);
}

static void resubscribe(struct pxl_redis *r);

static void became_ready(struct pxl_redis *r)
{
        if (!r->cmd_ready || (!r->sub_ready && !r->owner.blocking) || r->up)
                return;
        r->up = true;
        r->was_up = true;
        r->down_logged = false;
        r->attempt = 0;
        evtimer_del(r->connect_timer);
        pxl_logs(PXL_LOG_NOTICE, "redis %s: connected", r->where);
        resubscribe(r);
        if (r->owner.up != NULL)
                r->owner.up(r->owner.arg);
}

static bool reply_failed(const redisReply *reply)
{
        return reply == NULL || reply->type == REDIS_REPLY_ERROR;
}

/* AUTH and SELECT: an error reply means this configuration cannot work. */
static void on_setup_reply(redisAsyncContext *ac, void *reply, void *arg)
{
        struct pxl_redis *r = ac->data;
        redisReply *rep = reply;
        char why[256];

        if (rep == NULL || r == NULL || rep->type != REDIS_REPLY_ERROR)
                return;
        snprintf(why, sizeof(why), "%s refused: %s", (const char *)arg,
                 rep->str);
        fail(r, why);
}

static void on_ping(redisAsyncContext *ac, void *reply, void *arg)
{
        struct pxl_redis *r = ac->data;

        (void)arg;
        if (reply_failed(reply) || r == NULL || r->stopping)
                return;
        if (ac == r->cmd)
                r->cmd_ready = true;
        else if (ac == r->sub)
                r->sub_ready = true;
        became_ready(r);
}

static redisAsyncContext *open_one(struct pxl_redis *r, bool subscriber,
                                   char *why, size_t cap)
{
        const struct pxl_redis_conf *rc = r->conf;
        redisAsyncContext *ac;

        ac = rc->socket ? redisAsyncConnectUnix(rc->socket)
                        : redisAsyncConnect(rc->host, (int)rc->port);
        if (ac == NULL) {
                snprintf(why, cap, "out of memory");
                return NULL;
        }
        if (ac->err) {
                snprintf(why, cap, "%s", ac->errstr);
                redisAsyncFree(ac);
                return NULL;
        }
        ac->data = r;
        if (redisLibeventAttach(ac, r->owner.base) != REDIS_OK) {
                snprintf(why, cap, "cannot watch the socket");
                redisAsyncFree(ac);
                return NULL;
        }
        redisAsyncSetConnectCallback(ac, on_connect);
        redisAsyncSetDisconnectCallback(ac, on_disconnect);
        /* Queued now, written once connected, answered in this order. */
        if (rc->password != NULL && rc->user != NULL)
                redisAsyncCommand(ac, on_setup_reply, (void *)"AUTH",
                                  "AUTH %s %s", rc->user, rc->password);
        else if (rc->password != NULL)
                redisAsyncCommand(ac, on_setup_reply, (void *)"AUTH",
                                  "AUTH %s", rc->password);
        if (!subscriber && rc->database != 0)
                redisAsyncCommand(ac, on_setup_reply, (void *)"SELECT",
                                  "SELECT %u", rc->database);
        redisAsyncCommand(ac, on_ping, NULL, "PING");
        return ac;
}

static void connect_both(struct pxl_redis *r)
{
        struct timeval tv = {(time_t)r->conf->connect_timeout, 0};
        char why[256] = "";

        r->cmd = open_one(r, false, why, sizeof(why));
        if (r->cmd != NULL && !r->owner.blocking)
                r->sub = open_one(r, true, why, sizeof(why));
        if (r->cmd == NULL || (r->sub == NULL && !r->owner.blocking)) {
                fail(r, why);
                return;
        }
        evtimer_add(r->connect_timer, &tv);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        connect_both(arg);
}

static void connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        fail(arg, "timed out connecting");
}

/* Clear the pointer hiredis is about to free; true if it was ours. */
static bool forget(struct pxl_redis *r, const redisAsyncContext *ac)
{
        if (ac == r->cmd) {
                r->cmd = NULL;
                return true;
        }
        if (ac == r->sub) {
                r->sub = NULL;
                return true;
        }
        return false;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
        struct pxl_redis *r = ac->data;

        if (status == REDIS_OK || r == NULL)
                return;
        /* hiredis frees ac after this returns. */
        forget(r, ac);
        fail(r, ac->errstr[0] ? ac->errstr : "connect failed");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
        struct pxl_redis *r = ac->data;

        (void)status;
        if (r == NULL || !forget(r, ac))
                return;
        if (r->stopping) {
                if (r->cmd == NULL && r->sub == NULL)
                        event_base_loopbreak(r->owner.base);
                return;
        }
        fail(r, ac->errstr[0] ? ac->errstr : "closed by the server");
}

void pxl_redis_where(const struct pxl_redis_conf *rc, char *out, size_t cap)
{
        if (rc->socket)
                snprintf(out, cap, "%s", rc->socket);
        else
                snprintf(out, cap, "%s:%u", rc->host, rc->port);
}

redisContext *pxl_redis_connect_blocking(const struct pxl_redis_conf *rc,
                                         char *why, size_t cap)
{
        struct timeval tv = {(time_t)rc->connect_timeout, 0};
        redisContext *c =
                rc->socket
                        ? redisConnectUnixWithTimeout(rc->socket, tv)
                        : redisConnectWithTimeout(rc->host, (int)rc->port, tv);
        redisReply *rep = NULL;

        if (c == NULL || c->err) {
                snprintf(why, cap, "%s", c ? c->errstr : "out of memory");
                goto fail;
        }
        /* A Redis that accepts and never answers does not hang us. */
        if (redisSetTimeout(c, tv) != REDIS_OK) {
                snprintf(why, cap, "cannot set a timeout: %s", c->errstr);
                goto fail;
        }
        if (rc->password != NULL) {
                rep = rc->user ? redisCommand(c, "AUTH %s %s", rc->user,
                                              rc->password)
                               : redisCommand(c, "AUTH %s", rc->password);
                if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
                        snprintf(why, cap, "AUTH refused: %s",
                                 rep ? rep->str : c->errstr);
                        goto fail;
                }
                freeReplyObject(rep);
        }
        rep = redisCommand(c, "SELECT %u", rc->database);
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
                snprintf(why, cap, "SELECT %u refused: %s", rc->database,
                         rep ? rep->str : c->errstr);
                goto fail;
        }
        freeReplyObject(rep);
        return c;
fail:
        if (rep != NULL)
                freeReplyObject(rep);
        if (c != NULL)
                redisFree(c);
        return NULL;
}

struct pxl_redis *pxl_redis_start(const struct pxl_redis_owner *owner,
                                  struct pxl_str *errors)
{
        const struct pxl_redis_conf *rc = owner->conf;
        struct pxl_redis *r;
        redisContext *c = NULL;
        char why[512], line[1024];

        r = calloc(1, sizeof(*r));
        if (r == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return NULL;
        }
        r->owner = *owner;
        r->conf = rc;
        snprintf(r->prefix, sizeof(r->prefix), "pxl:%s:", owner->app);
        pxl_redis_where(rc, r->where, sizeof(r->where));
        r->retry_timer = evtimer_new(owner->base, retry_cb, r);
        r->connect_timer = evtimer_new(owner->base, connect_timeout_cb, r);
        if (r->retry_timer == NULL || r->connect_timer == NULL) {
                pxl_str_puts(errors, "cannot create the Redis timers\n");
                pxl_redis_stop(r);
                return NULL;
        }
        /* Checked before serving: a required Redis must answer now. */
        if (rc->required &&
            (c = pxl_redis_connect_blocking(rc, why, sizeof(why))) == NULL) {
                snprintf(line, sizeof(line),
                         "%s: redis.required is true and Redis at %s cannot "
                         "be used: %s\n",
                         owner->file, r->where, why);
                pxl_str_puts(errors, line);
                pxl_redis_stop(r);
                return NULL;
        }
        if (c != NULL)
                redisFree(c); /* it answered: connect as usual */
        connect_both(r);
        return r;
}

static void chans_free(struct pxl_redis *r)
{
        struct pxl_map_iter it;
        struct pxl_map_node *n;

        pxl_map_iter_init(&it, &r->chans);
        while ((n = pxl_map_iter_next(&it)) != NULL) {
                struct chan *ch = pxl_container_of(n, struct chan, node);

                pxl_map_remove(&r->chans, n);
                free(ch);
        }
        pxl_map_fini(&r->chans);
}

void pxl_redis_stop(struct pxl_redis *r)
{
        struct timeval grace = {1, 0};

        if (r == NULL)
                return;
        r->stopping = true;
        r->up = false;
        if (r->cmd != NULL || r->sub != NULL) {
                /* Flush what is queued (the leave commands), then close. */
                if (r->cmd != NULL)
                        redisAsyncDisconnect(r->cmd);
                if (r->sub != NULL)
                        redisAsyncDisconnect(r->sub);
                if ((r->cmd != NULL || r->sub != NULL) && !r->owner.blocking) {
                        event_base_loopexit(r->owner.base, &grace);
                        event_base_dispatch(r->owner.base);
                }
                /* Whatever did not close in time is dropped now. */
                if (r->cmd != NULL) {
                        redisAsyncContext *ac = r->cmd;

                        r->cmd = NULL;
                        ac->data = NULL;
                        redisAsyncFree(ac);
                }
                if (r->sub != NULL) {
                        redisAsyncContext *ac = r->sub;

                        r->sub = NULL;
                        ac->data = NULL;
                        redisAsyncFree(ac);
                }
        }
        if (r->retry_timer != NULL)
                event_free(r->retry_timer);
        if (r->connect_timer != NULL)
                event_free(r->connect_timer);
        chans_free(r);
        free(r);
}

/* ---- commands ------------------------------------------------------------ */

struct pending_cmd {
        struct pxl_redis *r;
        pxl_redis_cb *cb;
        void *arg;
};

static void on_cmd_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
        struct pending_cmd *p = privdata;

        (void)ac;
        p->cb(p->r->owner.arg, reply, p->arg);
        free(p);
}

int pxl_redis_queue_command(struct pxl_redis *r, pxl_redis_cb *cb, void *arg, int argc,
                  const char **argv, const size_t *argvlen)
{
        struct pending_cmd *p = NULL;

        if (r == NULL || !r->up)
                return PXL_ECLOSED;
        if (cb != NULL) {
                if ((p = malloc(sizeof(*p))) == NULL)
                        return PXL_ENOMEM;
                p->r = r;
                p->cb = cb;
                p->arg = arg;
        }
        if (redisAsyncCommandArgv(r->cmd, cb ? on_cmd_reply : NULL, p, argc,
                                  argv, argvlen) != REDIS_OK) {
                free(p);
                return PXL_ECLOSED;
        }
        return PXL_OK;
}

/* ---- scripts ------------------------------------------------------------ */

int pxl_redis_script_init(struct pxl_redis_script *s, const char *text)
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;

        s->text = text;
        if (EVP_Digest(text, strlen(text), md, &len, EVP_sha1(), NULL) != 1 ||
            len != 20)
                return PXL_ERR;
        pxl_hex(s->sha, md, len);
        s->sha[40] = '\0';
        return PXL_OK;
}

/*
 * A script call in flight: its arguments are kept (one allocation) for
 * the EVAL that follows a NOSCRIPT. argv[0] and argv[1] are EVALSHA and
 * the SHA1, or EVAL and the text; argv[2] the number of keys.
 */
struct script_call {
        struct pxl_redis *r;
        const struct pxl_redis_script *s;
        pxl_redis_cb *cb;
        void *arg;
        int argc;
        const char **argv;
        size_t *lens;
        char nkeys[16];
};

static int send_script(struct script_call *sc);

static void on_script_reply(void *owner, struct redisReply *reply, void *arg)
{
        struct script_call *sc = arg;

        if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
            strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
            sc->argv[1] == sc->s->sha) {
                sc->argv[0] = "EVAL";
                sc->argv[1] = sc->s->text;
                sc->lens[0] = 4;
                sc->lens[1] = strlen(sc->s->text);
                if (send_script(sc) == PXL_OK)
                        return;
                reply = NULL; /* Redis went away meanwhile */
        }
        if (sc->cb != NULL)
                sc->cb(owner, reply, sc->arg);
        free(sc);
}

static int send_script(struct script_call *sc)
{
        return pxl_redis_queue_command(sc->r, on_script_reply, sc, sc->argc,
                                       sc->argv, sc->lens);
}

int pxl_redis_queue_script(struct pxl_redis *r, const struct pxl_redis_script *s,
                           pxl_redis_cb *cb, void *arg, int nkeys, int argc,
                           const char **argv, const size_t *argvlen)
{
        size_t total = sizeof(struct script_call) +
                       (size_t)(argc + 3) * (sizeof(char *) + sizeof(size_t));
        struct script_call *sc;
        char *data;
        int rc;

        if (r == NULL || !r->up)
                return PXL_ECLOSED;
        for (int i = 0; i < argc; i++)
                total += argvlen[i];
        if ((sc = malloc(total)) == NULL)
                return PXL_ENOMEM;
        sc->r = r;
        sc->s = s;
        sc->cb = cb;
        sc->arg = arg;
        sc->argc = argc + 3;
        sc->argv = (const char **)(sc + 1);
        sc->lens = (size_t *)(sc->argv + argc + 3);
        data = (char *)(sc->lens + argc + 3);
        snprintf(sc->nkeys, sizeof(sc->nkeys), "%d", nkeys);
        sc->argv[0] = "EVALSHA";
        sc->argv[1] = s->sha;
        sc->argv[2] = sc->nkeys;
        sc->lens[0] = 7;
        sc->lens[1] = 40;
        sc->lens[2] = strlen(sc->nkeys);
        for (int i = 0; i < argc; i++) {
                memcpy(data, argv[i], argvlen[i]);
                sc->argv[i + 3] = data;
                sc->lens[i + 3] = argvlen[i];
                data += argvlen[i];
        }
        if ((rc = send_script(sc)) < 0)
                free(sc);
        return rc;
}

static void on_publish_reply(void *owner, struct redisReply *reply, void *arg)
{
        struct pxl_redis *r = arg; /* freed only after its contexts */

        (void)owner;
        if (reply_failed(reply))
                (*r->owner.dropped)++;
}

int pxl_redis_queue_publish(struct pxl_redis *r, const char *channel, size_t chlen,
                      const char *msg, size_t len)
{
        const char *argv[3] = {"PUBLISH", channel, msg};
        size_t lens[3] = {7, chlen, len};
        int rc = pxl_redis_queue_command(r, on_publish_reply, r, 3, argv, lens);

        if (rc < 0)
                (*r->owner.dropped)++;
        else
                (*r->owner.published)++;
        return rc;
}

/* ---- subscriptions ------------------------------------------------------- */

static void send_sub(struct pxl_redis *r, struct chan *ch, bool subscribe)
{
        const char *argv[2] = {subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE",
                               ch->name};
        size_t lens[2] = {strlen(argv[0]), ch->len};

        if (!r->up)
                return; /* resubscribe() does it once connected */
        /*
         * hiredis 0.14 drops a channel's callback when an UNSUBSCRIBE is
         * answered, so never SUBSCRIBE while one is in flight: the answer
         * re-subscribes if the channel is wanted again.
         */
        if (redisAsyncCommandArgv(r->sub, on_sub_message, r, 2, argv, lens) ==
            REDIS_OK)
                ch->state = subscribe ? CH_SUBSCRIBING : CH_UNSUBSCRIBING;
}

static void resubscribe(struct pxl_redis *r)
{
        struct pxl_map_iter it;
        struct pxl_map_node *n;

        pxl_map_iter_init(&it, &r->chans);
        while ((n = pxl_map_iter_next(&it)) != NULL) {
                struct chan *ch = pxl_container_of(n, struct chan, node);

                ch->state = CH_OFF;
                if (ch->refs > 0)
                        send_sub(r, ch, true);
        }
}

static struct chan *chan_get(struct pxl_redis *r, const char *name,
                             size_t len)
{
        struct pxl_map_node *n = pxl_map_get(&r->chans, name, len);

        return n ? pxl_container_of(n, struct chan, node) : NULL;
}

int pxl_redis_chan_ref(struct pxl_redis *r, const char *channel, size_t len,
                       pxl_redis_message_cb *fn, void *arg)
{
        struct chan *ch = chan_get(r, channel, len);

        if (ch == NULL) {
                ch = calloc(1, sizeof(*ch) + len + 1);
                if (ch == NULL)
                        return PXL_ENOMEM;
                memcpy(ch->name, channel, len);
                ch->len = len;
                ch->node.key = ch->name;
                ch->node.key_len = len;
                if (pxl_map_put(&r->chans, &ch->node) < 0) {
                        free(ch);
                        return PXL_ENOMEM;
                }
        }
        ch->fn = fn;
        ch->arg = arg;
        if (ch->refs++ == 0 && ch->state == CH_OFF)
                send_sub(r, ch, true);
        return PXL_OK;
}

void pxl_redis_chan_unref(struct pxl_redis *r, const char *channel,
                          size_t len)
{
        struct chan *ch = chan_get(r, channel, len);

        if (ch != NULL && ch->refs > 0)
                ch->refs--;
}

void pxl_redis_sweep(struct pxl_redis *r)
{
        struct pxl_map_iter it;
        struct pxl_map_node *n;

        pxl_map_iter_init(&it, &r->chans);
        while ((n = pxl_map_iter_next(&it)) != NULL) {
                struct chan *ch = pxl_container_of(n, struct chan, node);

                if (ch->refs > 0)
                        continue;
                if (ch->state == CH_ON || ch->state == CH_SUBSCRIBING) {
                        send_sub(r, ch, false);
                } else if (ch->state == CH_OFF) {
                        pxl_map_remove(&r->chans, n);
                        free(ch);
                }
        }
}

static void on_sub_message(redisAsyncContext *ac, void *reply, void *arg)
{
        struct pxl_redis *r = arg;
        redisReply *rep = reply;
        const redisReply *kind, *name;
        struct chan *ch;

        (void)ac;
        if (rep == NULL || r->stopping || rep->type != REDIS_REPLY_ARRAY ||
            rep->elements < 3)
                return;
        kind = rep->element[0];
        name = rep->element[1];
        if (kind->type != REDIS_REPLY_STRING || name->type != REDIS_REPLY_STRING)
                return;
        if (strcmp(kind->str, "message") == 0) {
                const redisReply *payload = rep->element[2];

                if (payload->type != REDIS_REPLY_STRING)
                        return;
                (*r->owner.received)++;
                ch = chan_get(r, name->str, name->len);
                /* An unreferenced channel's subscriber may have gone. */
                if (ch != NULL && ch->refs > 0 && ch->fn != NULL)
                        ch->fn(ch->arg, name->str, name->len, payload->str,
                               payload->len);
                return;
        }
        ch = chan_get(r, name->str, name->len);
        if (ch == NULL)
                return;
        if (strcmp(kind->str, "subscribe") == 0) {
                ch->state = CH_ON;
        } else if (strcmp(kind->str, "unsubscribe") == 0) {
                ch->state = CH_OFF;
                if (ch->refs > 0)
                        send_sub(r, ch, true); /* wanted again meanwhile */
        }
}

const char *pxl_redis_app_prefix(const struct pxl_redis *r)
{
        return r->prefix;
}
