/*
 * pxl_bus.h - events to subscribers: the framework's own (client
 * connected/disconnected, joined/left a room) and plugins' custom ones.
 * In one worker without Redis the bus is this process; the Redis bus
 * (cross-worker delivery) plugs in behind the same calls.
 */
#ifndef PXL_BUS_H
#define PXL_BUS_H

#include <stddef.h>

struct json_object;
struct pxl_worker;
struct pxl_plugin_slot;
struct pxl_subscriber;
struct pxl_change;

struct pxl_bus_sub {
        const struct pxl_subscriber *sub; /* borrowed from the descriptor */
        struct pxl_plugin_slot *plugin;
        size_t order; /* load order, to keep equal priorities stable */
};

struct pxl_bus {
        struct pxl_bus_sub *subs; /* highest priority first, then load order */
        size_t n;
};

/* Collect every plugin's subscribers, sorted. 0 or PXL_ENOMEM. */
int pxl_bus_init(struct pxl_bus *bus, struct pxl_worker *srv);
void pxl_bus_fini(struct pxl_bus *bus);
/*
 * Run the subscribers matching channel, each at most once, highest
 * priority first. Returns how many ran; failures are counted.
 */
int pxl_bus_publish(struct pxl_worker *srv, const char *channel,
                    const struct json_object *msg);
/* A change as the framework's event, for pxl_worker_announce. */
void pxl_bus_on_change(struct pxl_worker *srv, const struct pxl_change *ch);
/* True for the framework's own channel names (plugins may not use them). */
int pxl_bus_reserved(const char *channel);

#endif
