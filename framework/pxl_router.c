/*
 * pxl_router.c - the route table and request/response: envelope checks
 * in PROTOCOL.md's order, the handler call, and the one reply (now or
 * deferred) or error frame per request. Frames and sockets are
 * pxl_conn.c's; JSON grammar is pxl_json.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pxl/pxl.h"
#include "pxl_int.h"
#include "pxl_json.h"
#include "pxl_log.h"
#include "pxl_plugin.h"
#include "pxl_router.h"
#include "pxl_worker.h"
#include "pxl_ws_codec.h"

struct pxl_router {
        struct pxl_router_entry *slots; /* open addressing; type NULL = free */
        size_t cap;                     /* power of two */
        size_t count;
};

struct pxl_defer {
        struct pxl_worker *srv;
        struct pxl_conn_ref *ref;
        /*
         * The request's ctx while its handler runs (NULL after): a
         * handle ended inside the handler unhooks itself from it, so
         * the router does not end it again.
         */
        struct pxl_ctx *in_handler;
        struct pxl_json_span type_raw, action_raw, request_id; /* into raw */
        char raw[];
};

static uint64_t route_hash(const char *type, size_t type_len,
                           const char *action, size_t action_len)
{
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */

        for (size_t i = 0; i < type_len; i++)
                h = (h ^ (unsigned char)type[i]) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL; /* separator no string byte forms */
        for (size_t i = 0; i < action_len; i++)
                h = (h ^ (unsigned char)action[i]) * 1099511628211ULL;
        return h;
}

struct pxl_router *pxl_router_new(void)
{
        struct pxl_router *r = calloc(1, sizeof(*r));

        if (r == NULL)
                return NULL;
        r->cap = 16;
        r->slots = calloc(r->cap, sizeof(*r->slots));
        if (r->slots == NULL) {
                free(r);
                return NULL;
        }
        return r;
}

void pxl_router_free(struct pxl_router *r)
{
        if (r == NULL)
                return;
        free(r->slots);
        free(r);
}

size_t pxl_router_count(const struct pxl_router *r)
{
        return r->count;
}

static struct pxl_router_entry *probe(const struct pxl_router *r,
                                      const char *type, size_t type_len,
                                      const char *action, size_t action_len)
{
        size_t mask = r->cap - 1;
        size_t i = route_hash(type, type_len, action, action_len) & mask;

        for (;; i = (i + 1) & mask) {
                struct pxl_router_entry *e = &r->slots[i];

                if (e->type == NULL)
                        return e;
                if (e->type_len == type_len && e->action_len == action_len &&
                    memcmp(e->type, type, type_len) == 0 &&
                    memcmp(e->action, action, action_len) == 0)
                        return e;
        }
}

static int grow(struct pxl_router *r)
{
        struct pxl_router old = *r;

        r->cap *= 2;
        r->slots = calloc(r->cap, sizeof(*r->slots));
        if (r->slots == NULL) {
                *r = old;
                return PXL_ENOMEM;
        }
        for (size_t i = 0; i < old.cap; i++) {
                struct pxl_router_entry *e = &old.slots[i];

                if (e->type != NULL)
                        *probe(r, e->type, e->type_len, e->action,
                               e->action_len) = *e;
        }
        free(old.slots);
        return PXL_OK;
}

int pxl_router_add(struct pxl_router *r, const char *type, const char *action,
                   pxl_handler_fn *handler, struct pxl_plugin_slot *plugin,
                   const struct pxl_router_entry **taken)
{
        struct pxl_router_entry *e;

        /* Keep the table at most half full so probes stay short. */
        if ((r->count + 1) * 2 > r->cap && grow(r) < 0)
                return PXL_ENOMEM;
        e = probe(r, type, strlen(type), action, strlen(action));
        if (e->type != NULL) {
                *taken = e;
                return PXL_EDECLINED;
        }
        e->type = type;
        e->action = action;
        e->type_len = strlen(type);
        e->action_len = strlen(action);
        e->handler = handler;
        e->plugin = plugin;
        r->count++;
        return PXL_OK;
}

const struct pxl_router_entry *pxl_router_find(const struct pxl_router *r,
                                               const char *type,
                                               size_t type_len,
                                               const char *action,
                                               size_t action_len)
{
        const struct pxl_router_entry *e =
                probe(r, type, type_len, action, action_len);

        return e->type != NULL ? e : NULL;
}

/* ---- replies ---------------------------------------------------------- */

static void put_request_id(struct pxl_str *s, const struct pxl_json_span *rid)
{
        if (rid == NULL || rid->kind == PXL_JSON_NONE)
                return;
        pxl_str_puts(s, ",\"requestId\":");
        pxl_str_append(s, rid->p, rid->len);
}

static void send_scratch(struct pxl_worker *srv, struct pxl_conn *c)
{
        srv->io->send(c, PXL_WS_OP_TEXT, srv->scratch.p, srv->scratch.len);
        pxl_str_reset(&srv->scratch, 64 * 1024);
}

static void send_error(struct pxl_worker *srv, struct pxl_conn *c,
                       const char *text, size_t text_len,
                       const struct pxl_json_span *rid)
{
        struct pxl_str *s = &srv->scratch;

        s->len = 0;
        pxl_str_puts(s, "{\"type\":\"error\",\"action\":\"message\","
                        "\"data\":{\"error\":");
        pxl_str_json_string(s, text, text_len);
        pxl_str_puts(s, "}");
        put_request_id(s, rid);
        if (pxl_str_puts(s, "}") < 0) {
                pxl_log_ctx(PXL_LOG_WARN, NULL, srv->io->id(c),
                            "out of memory building an error reply");
                return;
        }
        send_scratch(srv, c);
}

/*
 * Builds and sends the reply. The response is raw JSON text when json is
 * set, else obj serialised (taken) when has_response.
 */
static void send_reply(struct pxl_worker *srv, struct pxl_conn *c,
                       const struct pxl_json_span *type_raw,
                       const struct pxl_json_span *action_raw,
                       const struct pxl_json_span *rid, bool has_response,
                       struct json_object *obj, const char *json, size_t n)
{
        struct pxl_str *s = &srv->scratch;
        int rc;

        s->len = 0;
        pxl_str_puts(s, "{\"type\":");
        pxl_str_append(s, type_raw->p, type_raw->len);
        pxl_str_puts(s, ",\"action\":");
        pxl_str_append(s, action_raw->p, action_raw->len);
        if (has_response) {
                if (json == NULL) {
                        json = json_object_to_json_string_length(
                                obj, JSON_C_TO_STRING_PLAIN |
                                             JSON_C_TO_STRING_NOSLASHESCAPE,
                                &n);
                }
                pxl_str_puts(s, ",\"response\":");
                pxl_str_append(s, json, n);
                json_object_put(obj);
        }
        put_request_id(s, rid);
        rc = pxl_str_puts(s, "}");
        if (rc < 0) {
                pxl_log_ctx(PXL_LOG_WARN, NULL, srv->io->id(c),
                            "out of memory building a reply");
                return;
        }
        send_scratch(srv, c);
}

/* ---- deferred replies ------------------------------------------------- */

static void copy_span(char **at, struct pxl_json_span *dst,
                      const struct pxl_json_span *src)
{
        *dst = *src;
        if (src->kind == PXL_JSON_NONE)
                return;
        memcpy(*at, src->p, src->len);
        dst->p = *at;
        *at += src->len;
}

struct pxl_defer *pxl_defer(struct pxl_ctx *ctx)
{
        size_t need;
        struct pxl_defer *d;
        char *at;

        if (ctx->conn == NULL || ctx->type_raw.p == NULL) {
                pxl_log(ctx, PXL_LOG_ERR, "pxl_defer called outside a request");
                return NULL;
        }
        if (ctx->defer != NULL)
                return ctx->defer;
        need = ctx->type_raw.len + ctx->action_raw.len +
               (ctx->request_id.kind != PXL_JSON_NONE ? ctx->request_id.len : 0);
        d = calloc(1, sizeof(*d) + need);
        if (d == NULL)
                return NULL;
        d->ref = ctx->srv->io->ref(ctx->conn);
        if (d->ref == NULL) {
                free(d);
                return NULL;
        }
        d->srv = ctx->srv;
        at = d->raw;
        copy_span(&at, &d->type_raw, &ctx->type_raw);
        copy_span(&at, &d->action_raw, &ctx->action_raw);
        copy_span(&at, &d->request_id, &ctx->request_id);
        d->in_handler = ctx;
        ctx->defer = d;
        return d;
}

bool pxl_defer_alive(const struct pxl_defer *d)
{
        return d != NULL && d->ref->conn != NULL &&
               d->srv->io->is_open(d->ref->conn);
}

void pxl_defer_cancel(struct pxl_defer *d)
{
        if (d == NULL)
                return;
        if (d->in_handler != NULL)
                d->in_handler->defer = NULL;
        pxl_conn_ref_put(d->ref);
        free(d);
}

int pxl_defer_reply(struct pxl_defer *d, struct json_object *obj)
{
        int rc = PXL_OK;

        if (d == NULL) {
                json_object_put(obj);
                return PXL_EINVAL;
        }
        if (pxl_defer_alive(d)) {
                send_reply(d->srv, d->ref->conn, &d->type_raw, &d->action_raw,
                           &d->request_id, true, obj, NULL, 0);
        } else {
                json_object_put(obj);
                d->srv->metrics.deferred_dropped++;
                pxl_logs(PXL_LOG_DEBUG, "deferred reply dropped: client gone");
                rc = PXL_ECLOSED;
        }
        pxl_defer_cancel(d);
        return rc;
}

int pxl_defer_fail(struct pxl_defer *d, const char *fmt, ...)
{
        char text[1024];
        va_list ap;
        int rc = PXL_OK;
        int n;

        if (d == NULL)
                return PXL_EINVAL;
        va_start(ap, fmt);
        n = vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        if ((size_t)n >= sizeof(text))
                n = sizeof(text) - 1;
        if (pxl_defer_alive(d))
                send_error(d->srv, d->ref->conn, text, (size_t)n,
                           &d->request_id);
        else {
                d->srv->metrics.deferred_dropped++;
                rc = PXL_ECLOSED;
        }
        pxl_defer_cancel(d);
        return rc;
}

/* ---- dispatch --------------------------------------------------------- */

static const char *const envelope_errors[] = {
        [PXL_ENV_PARSE_ERROR] = "Failed to parse JSON",
        [PXL_ENV_NOT_OBJECT] = "Invalid WebSocket message",
        [PXL_ENV_NO_TYPE] = "Missing WebSocket message type",
        [PXL_ENV_NO_ACTION] = "Missing WebSocket message action",
};

/* Longest type, action or requestId a message line shows, in bytes. */
#define LOG_NAME_MAX 128

static int log_len(size_t len)
{
        return (int)(len < LOG_NAME_MAX ? len : LOG_NAME_MAX);
}

/*
 * log.messages, at level debug: a line per message with its route,
 * size and requestId, never its data (where tokens and secrets go).
 * what is the message's type, or (without an action) what became of it.
 */
static void log_message(struct pxl_worker *srv, struct pxl_conn *c,
                        size_t len, const char *what, size_t wlen,
                        const char *action, size_t alen,
                        const struct pxl_json_span *request_id)
{
        bool rid = request_id != NULL && request_id->kind != PXL_JSON_NONE;

        if (!srv->conf->log_messages || !pxl_log_enabled(PXL_LOG_DEBUG))
                return;
        pxl_log_ctx(PXL_LOG_DEBUG, NULL, srv->io->id(c),
                    "message %s%.*s%s%.*s, %zu bytes%s%.*s",
                    action != NULL ? "" : "(", log_len(wlen), what,
                    action != NULL ? "/" : ")", log_len(alen),
                    action != NULL ? action : "", len,
                    rid ? ", requestId " : "",
                    rid ? log_len(request_id->len) : 0,
                    rid ? request_id->p : "");
}

static void call_raw(struct pxl_worker *srv, struct pxl_conn *c, bool binary,
                     const uint8_t *payload, size_t len)
{
        struct pxl_plugin_slot *p = (struct pxl_plugin_slot *)srv->plugins.raw;
        struct pxl_msg msg = {.payload = payload, .len = len, .binary = binary,
                              .type = "", .action = ""};
        struct pxl_ctx ctx;
        int rc;

        pxl_ctx_init(&ctx, srv, p, c);
        rc = p->desc->raw_handler(&ctx, &msg);
        if (rc < 0 && srv->io->is_open(c)) {
                const char *text = ctx.error ? ctx.error : "Unknown error";

                send_error(srv, c, text, strlen(text), NULL);
        }
        pxl_ctx_fini(&ctx);
}

static void unknown_route(struct pxl_worker *srv, struct pxl_conn *c,
                          const char *type, size_t type_len,
                          const char *action, size_t action_len,
                          const struct pxl_json_span *rid)
{
        struct pxl_str text = {0};

        pxl_str_puts(&text, "Unknown route: ");
        pxl_str_append(&text, type, type_len);
        pxl_str_puts(&text, "/");
        if (pxl_str_append(&text, action, action_len) == 0)
                send_error(srv, c, text.p, text.len, rid);
        pxl_str_fini(&text);
}

static void finish_request(struct pxl_worker *srv, struct pxl_conn *c,
                           struct pxl_ctx *ctx, int rc)
{
        if (rc == PXL_DEFERRED && ctx->defer != NULL) {
                ctx->defer->in_handler = NULL;
                return; /* the plugin owns ctx->defer now */
        }
        if (rc == PXL_DEFERRED) {
                pxl_log(ctx, PXL_LOG_ERR,
                        "handler returned PXL_DEFERRED without pxl_defer()");
                rc = PXL_ERR;
        }
        if (ctx->defer != NULL) {
                /* Replied now after all: the handle must not answer twice. */
                pxl_defer_cancel(ctx->defer);
                ctx->defer = NULL;
        }
        if (!srv->io->is_open(c))
                return;
        if (rc < 0) {
                const char *text = ctx->error ? ctx->error : "Unknown error";

                srv->metrics.err_handler++;
                send_error(srv, c, text, strlen(text), &ctx->request_id);
                return;
        }
        send_reply(srv, c, &ctx->type_raw, &ctx->action_raw, &ctx->request_id,
                   ctx->has_response, ctx->response, ctx->response_json,
                   ctx->response_json_len);
        ctx->response = NULL;
        ctx->has_response = false;
}

void pxl_router_dispatch(struct pxl_worker *srv, struct pxl_conn *c,
                         bool binary, const uint8_t *payload, size_t len)
{
        const struct pxl_router_entry *route;
        struct pxl_envelope env;
        enum pxl_envelope_status st;
        char small[256], *names = small;
        ssize_t tlen, alen;
        struct pxl_ctx ctx;
        struct pxl_msg msg;
        int rc;

        if (srv->plugins.raw != NULL && (binary || srv->conf->raw_text)) {
                const char *what = binary ? "binary, to the raw handler"
                                          : "text, to the raw handler";

                log_message(srv, c, len, what, strlen(what), NULL, 0, NULL);
                call_raw(srv, c, binary, payload, len);
                return;
        }
        st = pxl_json_envelope((const char *)payload, len,
                               srv->conf->limits.max_json_depth, &env);
        if (st != PXL_ENV_OK) {
                const char *text = envelope_errors[st];

                log_message(srv, c, len, text, strlen(text), NULL, 0,
                            st >= PXL_ENV_NO_TYPE ? &env.request_id : NULL);
                if (st == PXL_ENV_PARSE_ERROR)
                        srv->metrics.err_parse++;
                else
                        srv->metrics.err_envelope++;

                send_error(srv, c, text, strlen(text),
                           st >= PXL_ENV_NO_TYPE ? &env.request_id : NULL);
                return;
        }
        /* Decoded names are never longer than their JSON spellings. */
        if (env.type.len + env.action.len + 2 > sizeof(small)) {
                names = malloc(env.type.len + env.action.len + 2);
                if (names == NULL) {
                        pxl_log_ctx(PXL_LOG_WARN, NULL, srv->io->id(c),
                                    "out of memory routing a message");
                        return;
                }
        }
        tlen = pxl_json_unescape(env.type.p, env.type.len, names,
                                 env.type.len + 1);
        alen = pxl_json_unescape(env.action.p, env.action.len,
                                 names + tlen + 1, env.action.len + 1);
        if (tlen < 0 || alen < 0) {
                log_message(srv, c, len, "Failed to parse JSON", 20, NULL, 0,
                            NULL);
                send_error(srv, c, "Failed to parse JSON", 20, NULL);
                goto out;
        }
        log_message(srv, c, len, names, (size_t)tlen, names + tlen + 1,
                    (size_t)alen, &env.request_id);
        route = pxl_router_find(srv->router, names, (size_t)tlen,
                                names + tlen + 1, (size_t)alen);
        if (route == NULL) {
                srv->metrics.err_route++;
                unknown_route(srv, c, names, (size_t)tlen, names + tlen + 1,
                              (size_t)alen, &env.request_id);
                goto out;
        }
        memset(&msg, 0, sizeof(msg));
        msg.payload = payload;
        msg.len = len;
        msg.binary = binary;
        msg.type = names;
        msg.action = names + tlen + 1;
        msg.data = env.data;
        msg.max_depth = srv->conf->limits.max_json_depth;
        pxl_ctx_init(&ctx, srv, route->plugin, c);
        ctx.type_raw = env.type;
        ctx.action_raw = env.action;
        ctx.request_id = env.request_id;
        rc = route->handler(&ctx, &msg);
        finish_request(srv, c, &ctx, rc);
        pxl_ctx_fini(&ctx);
        if (msg.data_obj != NULL)
                json_object_put(msg.data_obj);
out:
        if (names != small)
                free(names);
}
