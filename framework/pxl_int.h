/*
 * pxl_int.h - what the framework's files share and plugins never see:
 * the layouts behind the opaque struct pxl_ctx and pxl_defer (pxl_msg's
 * is in pxl_msg.h, which the outbound client shares).
 */
#ifndef PXL_INT_H
#define PXL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pxl/pxl.h"
#include "pxl_json.h"
#include "pxl_msg.h" /* struct pxl_msg */

struct pxl_worker;
struct pxl_conn;
struct pxl_plugin_slot;

struct pxl_ctx {
        struct pxl_worker *srv;
        struct pxl_plugin_slot *plugin;
        struct pxl_conn *conn; /* NULL outside client calls */
        /*
         * A subscriber runs on every worker: its sends reach only this
         * worker's clients, so that together they reach each one once.
         */
        bool local_only;
        const char *client_id; /* also set in the disconnect hook */
        /* request state, filled by the handler through pxl_reply & co */
        struct json_object *response;
        bool has_response;
        const char *response_json; /* pxl_reply_json text (borrowed) */
        size_t response_json_len;
        char *error;          /* pxl_fail / pxl_ctx_fail text (malloc'd) */
        struct pxl_defer *defer;
        /* raw spans of the request, for replies */
        struct pxl_json_span type_raw, action_raw, request_id;
};

static inline struct pxl_worker *pxl_ctx_server(const struct pxl_ctx *ctx)
{
        return ctx->srv;
}

void pxl_ctx_init(struct pxl_ctx *ctx, struct pxl_worker *srv,
                  struct pxl_plugin_slot *plugin, struct pxl_conn *conn);
/* Free what a handler left in ctx (response, error). */
void pxl_ctx_fini(struct pxl_ctx *ctx);

#endif
