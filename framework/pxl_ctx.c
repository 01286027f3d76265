/*
 * pxl_ctx.c - what a plugin reaches through struct pxl_ctx and struct
 * pxl_msg: accessors, the reply setters, sends to the calling client and
 * the plugin logger. Routing and deferred replies live in pxl_router.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pxl/pxl.h"
#include "pxl_int.h"
#include "pxl_log.h"
#include "pxl_plugin.h"
#include "pxl_worker.h"
#include "pxl_ws_codec.h"

void pxl_ctx_init(struct pxl_ctx *ctx, struct pxl_worker *srv,
                  struct pxl_plugin_slot *plugin, struct pxl_conn *conn)
{
        memset(ctx, 0, sizeof(*ctx));
        ctx->srv = srv;
        ctx->plugin = plugin;
        ctx->conn = conn;
        ctx->client_id = conn ? srv->io->id(conn) : NULL;
}

void pxl_ctx_fini(struct pxl_ctx *ctx)
{
        if (ctx->has_response)
                json_object_put(ctx->response);
        ctx->response = NULL;
        ctx->has_response = false;
        free(ctx->error);
        ctx->error = NULL;
}

const char *pxl_strerror(int rc)
{
        switch (rc) {
        case PXL_OK:
                return "ok";
        case PXL_DEFERRED:
                return "deferred";
        case PXL_UNCHANGED:
                return "unchanged";
        case PXL_ERR:
                return "error";
        case PXL_EAGAIN:
                return "try again";
        case PXL_ENOMEM:
                return "out of memory";
        case PXL_EINVAL:
                return "invalid argument";
        case PXL_EPROTO:
                return "protocol error";
        case PXL_ECLOSED:
                return "connection closed";
        case PXL_EDECLINED:
                return "declined";
        default:
                return "unknown error code";
        }
}

/* ---- messages --------------------------------------------------------- */

const char *pxl_msg_type(const struct pxl_msg *msg)
{
        return msg->type;
}

const char *pxl_msg_action(const struct pxl_msg *msg)
{
        return msg->action;
}

bool pxl_msg_has_data(const struct pxl_msg *msg)
{
        return msg->data.kind != PXL_JSON_NONE;
}

struct json_object *pxl_msg_data(const struct pxl_msg *cmsg)
{
        /* The message is ours; only the plugin's view of it is const. */
        struct pxl_msg *msg = (struct pxl_msg *)cmsg;

        if (msg->data_parsed)
                return msg->data_obj;
        msg->data_parsed = true;
        if (msg->data.kind == PXL_JSON_NONE || msg->data.kind == PXL_JSON_NULL)
                return NULL;
        /*
         * The envelope validated the span, so only memory can fail (then
         * data reads as NULL). Not json-c's tokener: it saturates integers
         * beyond 64 bits, and PROTOCOL.md wants numbers used as given.
         */
        if (pxl_json_build(msg->data.p, msg->data.len, msg->max_depth,
                           &msg->data_obj) != PXL_OK)
                msg->data_obj = NULL;
        return msg->data_obj;
}

const uint8_t *pxl_msg_payload(const struct pxl_msg *msg, size_t *len)
{
        if (len != NULL)
                *len = msg->len;
        return msg->payload;
}

bool pxl_msg_is_binary(const struct pxl_msg *msg)
{
        return msg->binary;
}

/* ---- context ---------------------------------------------------------- */

const char *pxl_ctx_app_name(const struct pxl_ctx *ctx)
{
        return ctx->srv->conf->name;
}

const config_t *pxl_ctx_config(const struct pxl_ctx *ctx)
{
        return &ctx->srv->conf->cfg;
}

const char *pxl_ctx_client_id(const struct pxl_ctx *ctx)
{
        return ctx->client_id;
}

void *pxl_ctx_plugin_data(const struct pxl_ctx *ctx)
{
        return ctx->plugin ? ctx->plugin->data : NULL;
}

void pxl_ctx_set_plugin_data(struct pxl_ctx *ctx, void *data)
{
        if (ctx->plugin != NULL)
                ctx->plugin->data = data;
}

void *pxl_ctx_event_base(const struct pxl_ctx *ctx)
{
        return ctx->srv->base;
}

static void set_error(struct pxl_ctx *ctx, const char *fmt, va_list ap)
{
        char *text = NULL;

        if (vasprintf(&text, fmt, ap) < 0)
                text = NULL;
        free(ctx->error);
        ctx->error = text;
}

int pxl_ctx_fail(struct pxl_ctx *ctx, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        set_error(ctx, fmt, ap);
        va_end(ap);
        return PXL_ERR;
}

int pxl_fail(struct pxl_ctx *ctx, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        set_error(ctx, fmt, ap);
        va_end(ap);
        return PXL_ERR;
}

int pxl_reply(struct pxl_ctx *ctx, struct json_object *obj)
{
        if (ctx->has_response)
                json_object_put(ctx->response);
        ctx->response = obj;
        ctx->has_response = true;
        ctx->response_json = NULL;
        return PXL_OK;
}

int pxl_reply_json(struct pxl_ctx *ctx, const char *json, size_t len)
{
        /* What goes on the wire must be JSON whoever wrote it. */
        if (json == NULL ||
            !pxl_json_valid(json, len, ctx->srv->conf->limits.max_json_depth))
                return pxl_fail(ctx, "reply is not valid JSON");
        pxl_reply(ctx, NULL);
        ctx->response_json = json;
        ctx->response_json_len = len;
        return PXL_OK;
}

const char *pxl_msg_data_json(const struct pxl_msg *msg, size_t *len)
{
        if (len != NULL)
                *len = msg->data.kind == PXL_JSON_NONE ? 0 : msg->data.len;
        return msg->data.kind == PXL_JSON_NONE ? NULL : msg->data.p;
}

int pxl_send_json(struct pxl_ctx *ctx, const struct json_object *obj)
{
        const char *json;
        size_t n;

        if (ctx->conn == NULL)
                return PXL_ECLOSED;
        json = json_object_to_json_string_length(
                (struct json_object *)obj,
                JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
        return ctx->srv->io->send(ctx->conn, PXL_WS_OP_TEXT, json, n);
}

int pxl_send_raw(struct pxl_ctx *ctx, const void *buf, size_t len, bool binary)
{
        if (ctx->conn == NULL)
                return PXL_ECLOSED;
        return ctx->srv->io->send(ctx->conn,
                             binary ? PXL_WS_OP_BINARY : PXL_WS_OP_TEXT, buf,
                             len);
}

int pxl_close(struct pxl_ctx *ctx, int code, const char *reason)
{
        if (ctx->conn == NULL)
                return PXL_ECLOSED;
        if (code < 0 || !pxl_ws_close_code_valid((unsigned)code))
                return PXL_EINVAL;
        return ctx->srv->io->close(ctx->conn, (uint16_t)code, reason);
}

void pxl_log(const struct pxl_ctx *ctx, int level, const char *fmt, ...)
{
        const char *plugin = NULL, *client = NULL;
        va_list ap;

        if (ctx != NULL) {
                if (ctx->plugin != NULL)
                        plugin = ctx->plugin->desc->name;
                client = ctx->client_id;
        }
        va_start(ap, fmt);
        pxl_log_ctxv(level, plugin, client, fmt, ap);
        va_end(ap);
}
