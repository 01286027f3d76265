/*
 * pxl_bus.c - the in-process bus: the sorted subscriber table and the
 * delivery of one event to the matching subscribers. Who publishes what
 * (clients, rooms, plugins) is decided by the callers.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "pxl/pxl.h"
#include "pxl_bus.h"
#include "pxl_int.h"
#include "pxl_log.h"
#include "pxl_plugin.h"
#include "pxl_worker.h"

static const char *const reserved[] = {
        "clientConnected", "clientDisconnected", "clientJoinedRoom",
        "clientLeftRoom",  "jobCompleted",       "jobFailed",
        "jobProgress"};

int pxl_bus_reserved(const char *channel)
{
        for (size_t i = 0; i < sizeof(reserved) / sizeof(*reserved); i++)
                if (strcmp(channel, reserved[i]) == 0)
                        return 1;
        return 0;
}

/* Descending priority; equal priorities keep load order (index). */
static int by_priority(const void *a, const void *b)
{
        const struct pxl_bus_sub *x = a, *y = b;

        if (x->sub->priority != y->sub->priority)
                return x->sub->priority > y->sub->priority ? -1 : 1;
        return x->order < y->order ? -1 : x->order > y->order;
}

int pxl_bus_init(struct pxl_bus *bus, struct pxl_worker *srv)
{
        size_t n = 0;

        memset(bus, 0, sizeof(*bus));
        for (size_t i = 0; i < srv->plugins.n; i++)
                for (const struct pxl_subscriber *s =
                             pxl_plugin_subscribers(srv->plugins.v[i].desc);
                     s != NULL && s->channel != NULL; s++)
                        n++;
        if (n == 0)
                return PXL_OK;
        bus->subs = calloc(n, sizeof(*bus->subs));
        if (bus->subs == NULL)
                return PXL_ENOMEM;
        for (size_t i = 0; i < srv->plugins.n; i++)
                for (const struct pxl_subscriber *s =
                             pxl_plugin_subscribers(srv->plugins.v[i].desc);
                     s != NULL && s->channel != NULL; s++) {
                        bus->subs[bus->n].sub = s;
                        bus->subs[bus->n].plugin = &srv->plugins.v[i];
                        bus->subs[bus->n].order = bus->n;
                        bus->n++;
                }
        /* qsort is not stable: the order field keeps load order. */
        qsort(bus->subs, bus->n, sizeof(*bus->subs), by_priority);
        return PXL_OK;
}

void pxl_bus_fini(struct pxl_bus *bus)
{
        free(bus->subs);
        memset(bus, 0, sizeof(*bus));
}

int pxl_bus_publish(struct pxl_worker *srv, const char *channel,
                    const struct json_object *msg)
{
        int ran = 0;

        srv->metrics.bus_events++;
        for (size_t i = 0; i < srv->bus.n; i++) {
                const struct pxl_bus_sub *b = &srv->bus.subs[i];
                struct pxl_ctx ctx;
                int rc;

                if (strcmp(b->sub->channel, "*") != 0 &&
                    fnmatch(b->sub->channel, channel, 0) != 0)
                        continue;
                pxl_ctx_init(&ctx, srv, b->plugin, NULL);
                ctx.local_only = true;
                rc = b->sub->handler(&ctx, channel, msg);
                if (rc < 0) {
                        srv->metrics.subscriber_failures++;
                        pxl_log(&ctx, PXL_LOG_WARN,
                                "subscriber on \"%s\" failed on \"%s\": %s",
                                b->sub->channel, channel,
                                ctx.error ? ctx.error : pxl_strerror(rc));
                }
                pxl_ctx_fini(&ctx);
                ran++;
        }
        return ran;
}

/*
 * The framework's own events: {"clientId", "userId"} plus "roomName" for
 * room events and "code" for clientDisconnected. Built only when some
 * subscriber exists.
 */
void pxl_bus_on_change(struct pxl_worker *srv, const struct pxl_change *ch)
{
        static const char *const channels[PXL_CHANGE_GONE + 1] = {
                [PXL_CHANGE_CONNECTED] = "clientConnected",
                [PXL_CHANGE_JOINED] = "clientJoinedRoom",
                [PXL_CHANGE_LEFT] = "clientLeftRoom",
                [PXL_CHANGE_GONE] = "clientDisconnected",
        };
        const char *channel = channels[ch->kind];
        struct json_object *o;

        if (channel == NULL || srv->bus.n == 0)
                return; /* not an event, or nobody listens: build nothing */
        o = json_object_new_object();
        if (o == NULL)
                return;
        json_object_object_add(o, "clientId",
                               json_object_new_string(pxl_client_id(ch->client)));
        json_object_object_add(o, "userId",
                               json_object_get((struct json_object *)ch->user_id));
        if (ch->room != NULL)
                json_object_object_add(o, "roomName",
                                       json_object_new_string_len(
                                               ch->room, (int)ch->room_len));
        if (ch->kind == PXL_CHANGE_GONE)
                json_object_object_add(o, "code",
                                       json_object_new_int(ch->close_code));
        pxl_bus_publish(srv, channel, o);
        json_object_put(o);
}

int pxl_publish(struct pxl_ctx *ctx, const char *name,
                const struct json_object *msg)
{
        if (name == NULL || name[0] == '\0' || pxl_bus_reserved(name))
                return PXL_EINVAL;
        /* The others first: a subscriber here may publish in turn. */
        if (ctx->srv->remote != NULL)
                ctx->srv->remote->publish(ctx->srv, name, msg);
        return pxl_bus_publish(ctx->srv, name, msg);
}
