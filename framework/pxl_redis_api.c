/*
 * pxl_redis_api.c - what plugins do with Redis (pxl.h): commands with
 * replies as JSON, and their own channels, namespaced PREFIX "u:" and
 * kept per plugin. The connections are pxl_redis.c's, started by the
 * cluster view (srv->redis); without them every call is PXL_ECLOSED.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_int.h"
#include "pxl_map.h"
#include "pxl_plugin.h"
#include "pxl_redis.h"
#include "pxl_redis_api.h"
#include "pxl_worker.h"

/* A plugin's subscription to one of its channels. */
struct plugin_sub {
        struct plugin_sub *next;
        struct pxl_plugin_slot *plugin;
        pxl_redis_message_fn *fn; /* NULL: unsubscribed during a dispatch */
        void *arg;
        char *name; /* as the plugin named it, without the prefix */
};

/* The plugins subscribed to one channel (srv->redis_subs, by full name). */
struct plugin_chan {
        struct pxl_map_node node;
        struct pxl_worker *srv;
        struct plugin_sub *subs;
        unsigned dispatching; /* messages being handed to subs */
        size_t len;
        char name[];
};

static struct plugin_chan *chan_get(struct pxl_worker *srv, const char *name,
                                    size_t len)
{
        struct pxl_map_node *n = pxl_map_get(&srv->redis_subs, name, len);

        return n ? pxl_container_of(n, struct plugin_chan, node) : NULL;
}

static void subs_free(struct plugin_sub *s)
{
        while (s != NULL) {
                struct plugin_sub *next = s->next;

                free(s->name);
                free(s);
                s = next;
        }
}

void pxl_redis_api_fini(struct pxl_worker *srv)
{
        struct pxl_map_iter it;
        struct pxl_map_node *n;

        pxl_map_iter_init(&it, &srv->redis_subs);
        while ((n = pxl_map_iter_next(&it)) != NULL) {
                struct plugin_chan *ch =
                        pxl_container_of(n, struct plugin_chan, node);

                pxl_map_remove(&srv->redis_subs, n);
                subs_free(ch->subs);
                free(ch);
        }
        pxl_map_fini(&srv->redis_subs);
}

/* Free ch once it has no subscriber and no dispatch walks it. */
static void chan_maybe_free(struct plugin_chan *ch)
{
        if (ch->subs != NULL || ch->dispatching > 0)
                return;
        pxl_map_remove(&ch->srv->redis_subs, &ch->node);
        free(ch);
}

/* Hand a message to the plugins subscribed to a channel. */
static void dispatch(void *arg, const char *channel, size_t chlen,
                     const char *msg, size_t len)
{
        struct plugin_chan *ch = arg;
        struct plugin_sub **pp;

        (void)channel;
        (void)chlen;
        ch->dispatching++;
        for (struct plugin_sub *s = ch->subs; s != NULL; s = s->next) {
                struct pxl_ctx ctx;

                if (s->fn == NULL)
                        continue;
                pxl_ctx_init(&ctx, ch->srv, s->plugin, NULL);
                ctx.local_only = true; /* every subscribed worker runs it */
                s->fn(&ctx, s->name, msg, len, s->arg);
                pxl_ctx_fini(&ctx);
        }
        /* Unsubscribed meanwhile: free them now that nobody walks the list. */
        if (--ch->dispatching > 0)
                return;
        for (pp = &ch->subs; *pp != NULL;) {
                struct plugin_sub *s = *pp;

                if (s->fn != NULL) {
                        pp = &s->next;
                        continue;
                }
                *pp = s->next;
                free(s->name);
                free(s);
        }
        chan_maybe_free(ch);
}

static struct pxl_redis *ctx_redis(const struct pxl_ctx *ctx)
{
        return ctx->srv->redis;
}

const char *pxl_redis_prefix(const struct pxl_ctx *ctx)
{
        struct pxl_redis *r = ctx_redis(ctx);

        return r ? pxl_redis_app_prefix(r) : NULL;
}

/* A reply as JSON; NULL for nil (and for what cannot be built). */
static struct json_object *reply_json(const redisReply *rep)
{
        struct json_object *a;

        switch (rep->type) {
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
                return json_object_new_string_len(rep->str, (int)rep->len);
        case REDIS_REPLY_INTEGER:
                return json_object_new_int64(rep->integer);
        case REDIS_REPLY_ARRAY:
                if ((a = json_object_new_array()) == NULL)
                        return NULL;
                for (size_t i = 0; i < rep->elements; i++)
                        json_object_array_add(a, reply_json(rep->element[i]));
                return a;
        default:
                return NULL;
        }
}

struct plugin_cmd {
        struct pxl_worker *srv;
        struct pxl_plugin_slot *plugin;
        pxl_redis_reply_fn *fn;
        void *arg;
};

static void on_plugin_reply(void *owner, struct redisReply *rep, void *arg)
{
        struct plugin_cmd *pc = arg;
        struct json_object *o = NULL;
        const char *error = NULL;
        struct pxl_ctx ctx;

        if (rep == NULL)
                error = "Redis connection lost";
        else if (rep->type == REDIS_REPLY_ERROR)
                error = rep->str;
        else
                o = reply_json(rep);
        (void)owner;
        pxl_ctx_init(&ctx, pc->srv, pc->plugin, NULL);
        pc->fn(&ctx, o, error, pc->arg);
        pxl_ctx_fini(&ctx);
        json_object_put(o);
        free(pc);
}

int pxl_redis_command(struct pxl_ctx *ctx, pxl_redis_reply_fn *fn, void *arg,
                      int argc, const char *const *argv,
                      const size_t *argvlen)
{
        struct pxl_redis *r = ctx_redis(ctx);
        struct plugin_cmd *pc = NULL;
        size_t *lens = NULL;
        int rc;

        if (argc < 1 || argv == NULL)
                return PXL_EINVAL;
        if (!pxl_redis_up(r))
                return PXL_ECLOSED;
        if (argvlen == NULL) {
                if ((lens = malloc((size_t)argc * sizeof(*lens))) == NULL)
                        return PXL_ENOMEM;
                for (int i = 0; i < argc; i++)
                        lens[i] = strlen(argv[i]);
        }
        if (fn != NULL) {
                if ((pc = malloc(sizeof(*pc))) == NULL) {
                        free(lens);
                        return PXL_ENOMEM;
                }
                pc->srv = ctx->srv;
                pc->plugin = ctx->plugin;
                pc->fn = fn;
                pc->arg = arg;
        }
        rc = pxl_redis_queue_command(r, fn ? on_plugin_reply : NULL, pc, argc,
                           (const char **)argv, lens ? lens : argvlen);
        if (rc < 0)
                free(pc);
        free(lens);
        return rc;
}

/* PREFIX "u:" channel, in buf. */
static int plugin_channel(const struct pxl_redis *r, const char *channel,
                          char *buf, size_t cap, size_t *len)
{
        int n;

        if (channel == NULL || channel[0] == '\0')
                return PXL_EINVAL;
        n = snprintf(buf, cap, "%su:%s", pxl_redis_app_prefix(r), channel);
        if (n < 0 || (size_t)n >= cap)
                return PXL_EINVAL;
        *len = (size_t)n;
        return PXL_OK;
}

int pxl_redis_subscribe(struct pxl_ctx *ctx, const char *channel,
                        pxl_redis_message_fn *fn, void *arg)
{
        struct pxl_redis *r = ctx_redis(ctx);
        struct plugin_chan *ch;
        struct plugin_sub *s;
        char full[1024];
        size_t len;
        int rc;

        if (r == NULL)
                return PXL_ECLOSED;
        if (fn == NULL ||
            plugin_channel(r, channel, full, sizeof(full), &len) < 0)
                return PXL_EINVAL;
        ch = chan_get(ctx->srv, full, len);
        for (s = ch ? ch->subs : NULL; s != NULL; s = s->next)
                if (s->plugin == ctx->plugin && s->fn != NULL) {
                        s->fn = fn;
                        s->arg = arg;
                        return PXL_OK;
                }
        if (ch == NULL) {
                if ((ch = calloc(1, sizeof(*ch) + len + 1)) == NULL)
                        return PXL_ENOMEM;
                memcpy(ch->name, full, len);
                ch->len = len;
                ch->srv = ctx->srv;
                ch->node.key = ch->name;
                ch->node.key_len = len;
                if (pxl_map_put(&ctx->srv->redis_subs, &ch->node) < 0) {
                        free(ch);
                        return PXL_ENOMEM;
                }
        }
        if ((s = calloc(1, sizeof(*s))) == NULL ||
            (s->name = strdup(channel)) == NULL) {
                free(s);
                chan_maybe_free(ch);
                return PXL_ENOMEM;
        }
        if ((rc = pxl_redis_chan_ref(r, full, len, dispatch, ch)) < 0) {
                free(s->name);
                free(s);
                chan_maybe_free(ch);
                return rc;
        }
        s->plugin = ctx->plugin;
        s->fn = fn;
        s->arg = arg;
        s->next = ch->subs;
        ch->subs = s;
        return PXL_OK;
}

int pxl_redis_unsubscribe(struct pxl_ctx *ctx, const char *channel)
{
        struct pxl_redis *r = ctx_redis(ctx);
        struct plugin_chan *ch;
        struct plugin_sub **pp;
        char full[1024];
        size_t len;

        if (r == NULL)
                return PXL_ECLOSED;
        if (plugin_channel(r, channel, full, sizeof(full), &len) < 0 ||
            (ch = chan_get(ctx->srv, full, len)) == NULL)
                return PXL_EINVAL;
        for (pp = &ch->subs; *pp != NULL; pp = &(*pp)->next) {
                struct plugin_sub *s = *pp;

                if (s->plugin != ctx->plugin || s->fn == NULL)
                        continue;
                if (ch->dispatching > 0) {
                        s->fn = NULL; /* freed when the dispatch ends */
                } else {
                        *pp = s->next;
                        free(s->name);
                        free(s);
                        chan_maybe_free(ch);
                }
                pxl_redis_chan_unref(r, full, len);
                return PXL_OK;
        }
        return PXL_EINVAL;
}

int pxl_redis_publish(struct pxl_ctx *ctx, const char *channel,
                      const void *msg, size_t len)
{
        struct pxl_redis *r = ctx_redis(ctx);
        char full[1024];
        size_t flen;

        if (r == NULL)
                return PXL_ECLOSED;
        if (plugin_channel(r, channel, full, sizeof(full), &flen) < 0 ||
            (msg == NULL && len > 0))
                return PXL_EINVAL;
        return pxl_redis_queue_publish(r, full, flen, msg ? msg : "", len);
}
