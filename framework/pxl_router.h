/*
 * pxl_router.h - the (type, action) route table and the dispatch of one
 * message: envelope checks, handler call, reply or error frame.
 */
#ifndef PXL_ROUTER_H
#define PXL_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pxl/pxl.h"

struct pxl_conn;
struct pxl_plugin_slot;
struct pxl_router;
struct pxl_worker;

struct pxl_router_entry {
        const char *type;
        const char *action;
        size_t type_len, action_len;
        pxl_handler_fn *handler;
        struct pxl_plugin_slot *plugin;
};

struct pxl_router *pxl_router_new(void);
void pxl_router_free(struct pxl_router *r);
/*
 * Register a route (type and action are borrowed from the plugin's
 * descriptor, which outlives the router). Returns 0, PXL_ENOMEM, or
 * PXL_EDECLINED when the pair is taken (*taken then names the owner).
 */
int pxl_router_add(struct pxl_router *r, const char *type, const char *action,
                   pxl_handler_fn *handler, struct pxl_plugin_slot *plugin,
                   const struct pxl_router_entry **taken);
const struct pxl_router_entry *pxl_router_find(const struct pxl_router *r,
                                               const char *type,
                                               size_t type_len,
                                               const char *action,
                                               size_t action_len);
size_t pxl_router_count(const struct pxl_router *r);

/*
 * Handle one complete message from c: the raw handler, or the envelope
 * checks, the route's handler and the reply (or error frame).
 */
void pxl_router_dispatch(struct pxl_worker *srv, struct pxl_conn *c,
                         bool binary, const uint8_t *payload, size_t len);

#endif
