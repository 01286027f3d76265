/*
 * pxl_clients.c - the client registry: records by id, the user index,
 * metadata, the presence list, and the plugin API to find, iterate, send
 * to and disconnect clients. Rooms are pxl_rooms.c's, sockets pxl_conn.c's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "pxl/pxl.h"
#include "pxl_clients.h"
#include "pxl_frame.h"
#include "pxl_int.h"
#include "pxl_log.h"
#include "pxl_rooms.h"
#include "pxl_time.h"
#include "pxl_worker.h"
#include "pxl_ws_codec.h"

/* All clients of one user id (a user may have several connections). */
struct pxl_user {
        struct pxl_map_node node; /* srv->users, keyed by key */
        struct pxl_client **clients;
        size_t n, cap;
        char key[];
};

void pxl_client_make_id(char out[33])
{
        unsigned char raw[16];

        if (RAND_bytes(raw, sizeof(raw)) != 1) {
                /* The DRBG failing is not something a client can cause. */
                pxl_logs(PXL_LOG_ERR, "RAND_bytes failed; cannot make ids");
                abort();
        }
        pxl_hex(out, raw, sizeof(raw));
}

/*
 * Users are matched by the text of their id, as the Node.js framework
 * does (String(userId)): 42 and "42" are the same user.
 */
static int user_key(const struct json_object *user_id, char *buf, size_t cap,
                    const char **key, size_t *len)
{
        if (json_object_is_type(user_id, json_type_int)) {
                int n = snprintf(buf, cap, "%" PRId64,
                                 json_object_get_int64(user_id));

                *key = buf;
                *len = (size_t)n;
                return PXL_OK;
        }
        if (json_object_is_type(user_id, json_type_string)) {
                *key = json_object_get_string((struct json_object *)user_id);
                *len = (size_t)json_object_get_string_len(user_id);
                return PXL_OK;
        }
        return PXL_EINVAL;
}

static struct pxl_user *user_get(const struct pxl_worker *srv,
                                 const struct json_object *user_id)
{
        char buf[32];
        const char *key;
        size_t len;

        if (user_id == NULL || user_key(user_id, buf, sizeof(buf), &key, &len) < 0)
                return NULL;
        struct pxl_map_node *n = pxl_map_get(&srv->users, key, len);

        return n ? pxl_container_of(n, struct pxl_user, node) : NULL;
}

static int user_attach(struct pxl_worker *srv, struct pxl_client *c)
{
        char buf[32];
        const char *key;
        size_t len;
        struct pxl_user *u;

        if (user_key(c->user_id, buf, sizeof(buf), &key, &len) < 0)
                return PXL_EINVAL;
        u = user_get(srv, c->user_id);
        if (u == NULL) {
                u = calloc(1, sizeof(*u) + len + 1);
                if (u == NULL)
                        return PXL_ENOMEM;
                memcpy(u->key, key, len);
                u->node.key = u->key;
                u->node.key_len = len;
                if (pxl_map_put(&srv->users, &u->node) < 0) {
                        free(u);
                        return PXL_ENOMEM;
                }
        }
        if (u->n == u->cap) {
                size_t cap = u->cap ? u->cap * 2 : 2;
                struct pxl_client **v = realloc(u->clients, cap * sizeof(*v));

                if (v == NULL) {
                        if (u->n == 0) {
                                pxl_map_remove(&srv->users, &u->node);
                                free(u);
                        }
                        return PXL_ENOMEM;
                }
                u->clients = v;
                u->cap = cap;
        }
        u->clients[u->n++] = c;
        c->user = u;
        return PXL_OK;
}

static void user_detach(struct pxl_worker *srv, struct pxl_client *c)
{
        struct pxl_user *u = c->user;

        if (u == NULL)
                return;
        for (size_t i = 0; i < u->n; i++) {
                if (u->clients[i] == c) {
                        u->clients[i] = u->clients[--u->n];
                        break;
                }
        }
        c->user = NULL;
        if (u->n == 0) {
                pxl_map_remove(&srv->users, &u->node);
                free(u->clients);
                free(u);
        }
}

struct pxl_client *pxl_client_add(struct pxl_worker *srv, struct pxl_conn *conn,
                                  const char *id, struct json_object *user_id,
                                  struct json_object *token)
{
        struct pxl_client *c = pxl_pool_alloc(&srv->client_pool);

        if (c == NULL)
                goto fail;
        memcpy(c->id, id, sizeof(c->id));
        c->conn = conn;
        c->user_id = user_id;
        c->token = token;
        c->last_activity_ms = pxl_worker_now_ms(srv);
        c->node.key = c->id;
        c->node.key_len = 32;
        if (user_id != NULL && user_attach(srv, c) < 0)
                goto fail;
        if (pxl_map_put(&srv->clients, &c->node) < 0) {
                user_detach(srv, c);
                goto fail;
        }
        TAILQ_INSERT_TAIL(&srv->client_order, c, order);
        return c;
fail:
        json_object_put(user_id);
        json_object_put(token);
        pxl_pool_free(&srv->client_pool, c);
        return NULL;
}

void pxl_client_rekey(struct pxl_worker *srv, struct pxl_client *c,
                      const char *id)
{
        char old[33];

        memcpy(old, c->id, sizeof(old));
        pxl_map_remove(&srv->clients, &c->node);
        memcpy(c->id, id, 32);
        c->id[32] = '\0';
        if (pxl_map_put(&srv->clients, &c->node) < 0) {
                /* Out of memory growing the map: it had room for old. */
                memcpy(c->id, old, sizeof(old));
                (void)pxl_map_put(&srv->clients, &c->node);
                return;
        }
        json_object_put(c->meta);
        c->meta = NULL;
        c->meta_bytes = 0;
        c->resumed = true;
}

static void presence_changed(struct pxl_worker *srv, const char *kind);

void pxl_client_remove(struct pxl_worker *srv, struct pxl_client *c)
{
        pxl_rooms_leave_all(srv, c);
        user_detach(srv, c);
        pxl_map_remove(&srv->clients, &c->node);
        TAILQ_REMOVE(&srv->client_order, c, order);
        free(c->rooms);
        json_object_put(c->user_id);
        json_object_put(c->token);
        json_object_put(c->meta);
        pxl_pool_free(&srv->client_pool, c);
        presence_changed(srv, "removeClient");
}

struct pxl_client *pxl_clients_get(const struct pxl_worker *srv,
                                   const char *id)
{
        struct pxl_map_node *n;

        if (id == NULL)
                return NULL;
        n = pxl_map_get(&srv->clients, id, strlen(id));
        return n ? pxl_container_of(n, struct pxl_client, node) : NULL;
}

int pxl_client_deliver(struct pxl_worker *srv, struct pxl_client *c,
                       struct pxl_frame *f)
{
        if (c->conn == NULL)
                return 0;
        return srv->io->send_frame(c->conn, f) == PXL_OK ? 1 : 0;
}

void pxl_clients_fini(struct pxl_worker *srv)
{
        struct pxl_client *c;

        if (srv->presence_timer != NULL) {
                event_free(srv->presence_timer);
                srv->presence_timer = NULL;
        }
        while ((c = TAILQ_FIRST(&srv->client_order)) != NULL)
                pxl_client_remove(srv, c);
        pxl_map_fini(&srv->clients);
        pxl_map_fini(&srv->users);
}

/* ---- presence (opt-in clientList frames) ------------------------------ */

static struct json_object *presence_entry(const struct pxl_worker *srv,
                                          const struct pxl_client *c)
{
        struct json_object *e = json_object_new_object(), *user = NULL;

        json_object_object_add(e, "clientId", json_object_new_string(c->id));
        json_object_object_add(e, "lastActivity",
                               json_object_new_int64(c->last_activity_ms));
        if (c->user_id != NULL) {
                user = json_object_new_object();
                json_object_object_add(user, "userId",
                                       json_object_get(c->user_id));
                if (srv->conf->presence_include_payload && c->token != NULL)
                        json_object_object_add(user, "payload",
                                               json_object_get(c->token));
        }
        json_object_object_add(e, "user", user);
        return e;
}

static void presence_send(struct pxl_worker *srv, const char *kind)
{
        struct json_object *msg, *list;
        struct pxl_client *c;
        struct pxl_frame *f;

        srv->presence_sent_ms = pxl_worker_now_ms(srv);
        /* In connection order, newest last, as the Node.js framework. */
        list = json_object_new_array();
        TAILQ_FOREACH(c, &srv->client_order, order)
                json_object_array_add(list, presence_entry(srv, c));
        /* clientListType sits between action and data, as in Node. */
        msg = json_object_new_object();
        json_object_object_add(msg, "type", json_object_new_string("system"));
        json_object_object_add(msg, "action",
                               json_object_new_string("clientList"));
        json_object_object_add(msg, "clientListType",
                               json_object_new_string(kind));
        json_object_object_add(msg, "data", list);
        f = pxl_clients_encode(srv, msg);
        json_object_put(msg);
        if (f == NULL)
                return;
        TAILQ_FOREACH(c, &srv->client_order, order)
                pxl_client_deliver(srv, c, f);
        pxl_frame_unref(f);
}

static void presence_timer_cb(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_worker *srv = arg;
        const char *kind = srv->presence_pending;

        (void)fd;
        (void)what;
        srv->presence_pending = NULL;
        if (kind != NULL && !srv->stopping)
                presence_send(srv, kind);
}

/*
 * Every list goes to every client: O(clients) frames of O(clients)
 * bytes. Once per presence.interval at most, so that clients coming and
 * going fast cost a bounded amount; the frame then names the latest kind.
 */
static void presence_changed(struct pxl_worker *srv, const char *kind)
{
        int64_t now, interval = srv->conf->presence_interval;
        struct timeval tv;

        if (!srv->conf->presence_client_list || srv->stopping)
                return;
        if (srv->presence_pending != NULL) {
                srv->presence_pending = kind;
                return;
        }
        now = pxl_worker_now_ms(srv);
        if (interval == 0 || now - srv->presence_sent_ms >= interval ||
            srv->base == NULL) {
                presence_send(srv, kind);
                return;
        }
        if (srv->presence_timer == NULL)
                srv->presence_timer = evtimer_new(srv->base, presence_timer_cb,
                                                  srv);
        if (srv->presence_timer == NULL) {
                presence_send(srv, kind);
                return;
        }
        srv->presence_pending = kind;
        interval -= now - srv->presence_sent_ms;
        tv = pxl_ms_timeval((uint64_t)interval);
        evtimer_add(srv->presence_timer, &tv);
}

void pxl_presence_on_change(struct pxl_worker *srv, const struct pxl_change *ch)
{
        static const char *const kinds[PXL_CHANGE_GONE + 1] = {
                [PXL_CHANGE_CONNECTED] = "addClient",
                [PXL_CHANGE_META] = "updateClient",
                [PXL_CHANGE_JOINED] = "clientAddedToRoom",
                [PXL_CHANGE_LEFT] = "clientRemovedFromRoom",
                [PXL_CHANGE_LEFT_ALL] = "clientRemovedFromAllRooms",
        };

        /* Leaving all rooms at once is one list, not one per room. */
        if (kinds[ch->kind] != NULL &&
            !(ch->kind == PXL_CHANGE_LEFT && ch->leaving_all))
                presence_changed(srv, kinds[ch->kind]);
}

/* ---- plugin API ------------------------------------------------------- */

const struct pxl_client *pxl_ctx_client(const struct pxl_ctx *ctx)
{
        return pxl_clients_get(ctx->srv, ctx->client_id);
}

const struct pxl_client *pxl_client_find(const struct pxl_ctx *ctx,
                                         const char *client_id)
{
        return pxl_clients_get(ctx->srv, client_id);
}

const char *pxl_client_id(const struct pxl_client *c)
{
        return c->id;
}

bool pxl_client_is_local(const struct pxl_client *c)
{
        return c->conn != NULL;
}

bool pxl_client_resumed(const struct pxl_client *c)
{
        return c->resumed;
}

int64_t pxl_client_last_activity(const struct pxl_client *c)
{
        return c->last_activity_ms;
}

struct json_object *pxl_client_user_id(const struct pxl_client *c)
{
        return c->user_id;
}

struct json_object *pxl_client_token(const struct pxl_client *c)
{
        return c->token;
}

struct json_object *pxl_client_meta(const struct pxl_client *c,
                                    const char *key)
{
        struct json_object *v = NULL;

        if (c->meta != NULL)
                json_object_object_get_ex(c->meta, key, &v);
        return v;
}

/* A key and its value as they are counted against the metadata limits. */
static size_t meta_entry_size(const char *key, struct json_object *value)
{
        size_t len = 0;

        if (value != NULL)
                json_object_to_json_string_length(value, JSON_C_TO_STRING_PLAIN,
                                                  &len);
        else
                len = 4; /* null */
        return strlen(key) + len;
}

int pxl_client_set_meta(struct pxl_ctx *ctx, const char *client_id,
                        const char *key, struct json_object *value)
{
        struct pxl_client *c = pxl_clients_get(ctx->srv, client_id);

        if (c == NULL || key == NULL) {
                json_object_put(value);
                return PXL_EINVAL;
        }
        if (c->peer != NULL) {
                /*
                 * Its worker owns the record (and checks the client's
                 * total); ours follows its next state. An entry too big
                 * is refused here, where the caller learns of it.
                 */
                size_t len = 0;
                const char *text = NULL;
                int rc;

                if (value != NULL &&
                    meta_entry_size(key, value) >
                            ctx->srv->conf->limits.max_metadata_entry_size) {
                        json_object_put(value);
                        ctx->srv->metrics.metadata_refused++;
                        return PXL_EDECLINED;
                }
                if (value != NULL)
                        text = json_object_to_json_string_length(
                                value, JSON_C_TO_STRING_PLAIN, &len);
                rc = ctx->srv->remote != NULL
                             ? ctx->srv->remote->forward(ctx->srv, c, 'm', key,
                                                         strlen(key), text, len)
                             : PXL_ECLOSED;
                json_object_put(value);
                return rc < 0 ? rc : PXL_OK;
        }
        return pxl_client_meta_put(ctx->srv, c, key, value);
}

int pxl_client_meta_put(struct pxl_worker *srv, struct pxl_client *c,
                        const char *key, struct json_object *value)
{
        const struct pxl_limits *l = &srv->conf->limits;
        struct json_object *old = NULL;
        size_t old_size = 0, new_size = 0;
        bool had;

        had = c->meta != NULL && json_object_object_get_ex(c->meta, key, &old);
        if (had)
                old_size = meta_entry_size(key, old);
        if (value != NULL) {
                new_size = meta_entry_size(key, value);
                if (new_size > l->max_metadata_entry_size ||
                    c->meta_bytes - old_size + new_size > l->max_metadata_size) {
                        json_object_put(value);
                        srv->metrics.metadata_refused++;
                        return PXL_EDECLINED;
                }
                if (c->meta == NULL &&
                    (c->meta = json_object_new_object()) == NULL) {
                        json_object_put(value);
                        return PXL_ENOMEM;
                }
                if (json_object_object_add(c->meta, key, value) < 0) {
                        json_object_put(value);
                        return PXL_ENOMEM;
                }
        } else if (had) {
                json_object_object_del(c->meta, key);
        }
        c->meta_bytes = (uint32_t)(c->meta_bytes - old_size + new_size);
        pxl_worker_announce(srv, &(struct pxl_change){
                                         .kind = PXL_CHANGE_META,
                                         .client = c,
                                         .user_id = c->user_id});
        return PXL_OK;
}

int pxl_clients_foreach(const struct pxl_ctx *ctx, pxl_client_fn *fn,
                        void *arg)
{
        struct pxl_client *c, *next;
        int rc;

        for (c = TAILQ_FIRST(&ctx->srv->client_order); c != NULL; c = next) {
                next = TAILQ_NEXT(c, order);
                if ((rc = fn(c, arg)) != 0)
                        return rc;
        }
        return 0;
}

int pxl_user_clients(const struct pxl_ctx *ctx,
                     const struct json_object *user_id, pxl_client_fn *fn,
                     void *arg)
{
        struct pxl_user *u = user_get(ctx->srv, user_id);
        int rc;

        for (size_t i = 0; u != NULL && i < u->n; i++)
                if ((rc = fn(u->clients[i], arg)) != 0)
                        return rc;
        return 0;
}

size_t pxl_client_count(const struct pxl_ctx *ctx)
{
        return ctx->srv->clients.count;
}

int pxl_client_rooms(const struct pxl_client *c, pxl_room_fn *fn, void *arg)
{
        int rc;

        for (size_t i = 0; i < c->nrooms; i++)
                if ((rc = fn(c->rooms[i].room->name, arg)) != 0)
                        return rc;
        return 0;
}

struct json_object *pxl_msg_new(const char *type, const char *action,
                                struct json_object *data)
{
        struct json_object *o = json_object_new_object();

        if (o == NULL) {
                json_object_put(data);
                return NULL;
        }
        json_object_object_add(o, "type", json_object_new_string(type));
        json_object_object_add(o, "action", json_object_new_string(action));
        json_object_object_add(o, "data", data);
        return o;
}

/*
 * Clients of other workers met while sending, to be sent to in one
 * message per worker (pxl_mirror_send_clients).
 */
struct remote_batch {
        struct pxl_client **v;
        size_t n, cap;
};

static int deliver_or_batch(struct pxl_worker *srv, struct pxl_client *c,
                            struct pxl_frame *f, struct remote_batch *b)
{
        if (c->peer == NULL)
                return pxl_client_deliver(srv, c, f);
        if (b->n == b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 16;
                struct pxl_client **v = realloc(b->v, cap * sizeof(*v));

                if (v == NULL)
                        return 0;
                b->v = v;
                b->cap = cap;
        }
        b->v[b->n++] = c;
        return 0;
}

static int send_batch(const struct pxl_ctx *ctx, struct remote_batch *b,
                      const struct pxl_frame *f)
{
        int n = b->n && !ctx->local_only
                        ? ctx->srv->remote->send_clients(ctx->srv, b->v, b->n, f)
                        : 0;

        free(b->v);
        return n < 0 ? 0 : n;
}

struct pxl_frame *pxl_clients_encode(struct pxl_worker *srv,
                                     const struct json_object *obj)
{
        struct pxl_frame *f = obj ? pxl_frame_json(obj) : NULL;

        if (f != NULL)
                srv->metrics.frames_encoded++;
        return f;
}

int pxl_send_to_client(struct pxl_ctx *ctx, const char *client_id,
                       const struct json_object *obj)
{
        struct pxl_client *c = pxl_clients_get(ctx->srv, client_id);
        struct pxl_frame *f;
        int n;

        if (c == NULL)
                return PXL_EINVAL;
        if ((f = pxl_clients_encode(ctx->srv, obj)) == NULL)
                return PXL_ENOMEM;
        if (c->peer == NULL)
                n = pxl_client_deliver(ctx->srv, c, f);
        else
                n = ctx->local_only || ctx->srv->remote == NULL
                            ? 0
                            : ctx->srv->remote->send_clients(ctx->srv, &c, 1, f);
        pxl_frame_unref(f);
        return n;
}

int pxl_send_to_users(struct pxl_ctx *ctx,
                      const struct json_object *const *user_ids, size_t n,
                      const struct json_object *obj)
{
        struct pxl_frame *f;
        struct remote_batch remote = {0};
        int sent = 0;

        if ((f = pxl_clients_encode(ctx->srv, obj)) == NULL)
                return PXL_ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct pxl_user *u = user_get(ctx->srv, user_ids[i]);
                bool seen = false;

                /* A user named twice still gets each message once. */
                for (size_t j = 0; j < i && !seen && u != NULL; j++)
                        seen = user_get(ctx->srv, user_ids[j]) == u;
                for (size_t k = 0; u != NULL && !seen && k < u->n; k++)
                        sent += deliver_or_batch(ctx->srv, u->clients[k], f,
                                                 &remote);
        }
        sent += send_batch(ctx, &remote, f);
        pxl_frame_unref(f);
        return sent;
}

int pxl_send_to_all(struct pxl_ctx *ctx, const struct json_object *obj,
                    const char *exclude_client_id, pxl_client_pred *pred,
                    void *arg)
{
        struct remote_batch remote = {0};
        struct pxl_client *c;
        struct pxl_frame *f;
        int sent = 0;
        /* Without a predicate the channel "all" reaches the others. */
        int via_all = pxl_worker_reaches_others(ctx->srv) ? 1 : 0;

        if ((f = pxl_clients_encode(ctx->srv, obj)) == NULL)
                return PXL_ENOMEM;
        TAILQ_FOREACH(c, &ctx->srv->client_order, order) {
                if (c->peer != NULL && ctx->local_only)
                        continue;
                if (exclude_client_id != NULL && strcmp(c->id, exclude_client_id) == 0)
                        continue;
                if (pred != NULL && !pred(c, arg))
                        continue;
                if (pred == NULL && c->peer != NULL)
                        sent += via_all;
                else
                        sent += deliver_or_batch(ctx->srv, c, f, &remote);
        }
        /*
         * A predicate runs here on our records of every client, so only
         * the chosen ones are sent to; without one, one PUBLISH does.
         */
        if (pred == NULL && !ctx->local_only && ctx->srv->remote != NULL)
                ctx->srv->remote->send_all(ctx->srv, f, exclude_client_id);
        sent += send_batch(ctx, &remote, f);
        pxl_frame_unref(f);
        return sent;
}

int pxl_disconnect_client(struct pxl_ctx *ctx, const char *client_id,
                          int code, const char *reason)
{
        struct pxl_client *c = pxl_clients_get(ctx->srv, client_id);
        char text[256];
        int n;

        if (c == NULL || (c->conn == NULL && c->peer == NULL))
                return PXL_EINVAL;
        if (code < 0 || !pxl_ws_close_code_valid((unsigned)code))
                return PXL_EINVAL;
        if (c->peer != NULL) {
                /* "CODE REASON" to the worker it is connected to. */
                if (reason != NULL && reason[0] != '\0')
                        n = snprintf(text, sizeof(text), "%d %s", code, reason);
                else
                        n = snprintf(text, sizeof(text), "%d", code);
                if (n < 0 || (size_t)n >= sizeof(text))
                        return PXL_EINVAL; /* a reason is at most 123 bytes */
                return ctx->srv->remote != NULL
                               ? ctx->srv->remote->forward(ctx->srv, c, 'x',
                                                           text, (size_t)n,
                                                           NULL, 0)
                               : PXL_ECLOSED;
        }
        return ctx->srv->io->close(c->conn, (uint16_t)code, reason);
}
