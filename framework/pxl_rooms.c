/*
 * pxl_rooms.c - rooms: membership both ways, the rooms.* policies (single
 * room, limits, names), leftRoom and member notifications, and delivery to
 * a room with one shared frame. Client records are pxl_clients.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "pxl/pxl.h"
#include "pxl_clients.h"
#include "pxl_frame.h"
#include "pxl_int.h"
#include "pxl_log.h"
#include "pxl_rooms.h"
#include "pxl_worker.h"

struct pxl_room *pxl_rooms_get(const struct pxl_worker *srv, const char *name,
                               size_t len)
{
        struct pxl_map_node *n = pxl_map_get(&srv->rooms, name, len);

        return n ? pxl_container_of(n, struct pxl_room, node) : NULL;
}

static struct pxl_membership *membership(const struct pxl_client *c,
                                         const struct pxl_room *r)
{
        for (size_t i = 0; i < c->nrooms; i++)
                if (c->rooms[i].room == r)
                        return &c->rooms[i];
        return NULL;
}

/* Send one frame built from obj to the members of r except `except`. */
static void tell_members(struct pxl_worker *srv, struct pxl_room *r,
                         const struct pxl_client *except,
                         struct json_object *obj)
{
        struct pxl_frame *f = pxl_clients_encode(srv, obj);

        if (f == NULL)
                return;
        for (size_t i = 0; i < r->nmembers; i++)
                if (r->members[i] != except)
                        pxl_client_deliver(srv, r->members[i], f);
        pxl_frame_unref(f);
}

/* {"type":T,"action":A,"data":{"roomName":R[,"clientId":C,"userId":U]}} */
static struct json_object *room_event(const char *type, const char *action,
                                      const struct pxl_room *r,
                                      const struct pxl_client *c,
                                      struct json_object *user_id)
{
        struct json_object *d = json_object_new_object();

        json_object_object_add(d, "roomName",
                               json_object_new_string_len(r->name, (int)r->name_len));
        if (c != NULL) {
                json_object_object_add(d, "clientId", json_object_new_string(c->id));
                json_object_object_add(d, "userId", json_object_get(user_id));
        }
        return pxl_msg_new(type, action, d);
}

static void notify(struct pxl_worker *srv, struct pxl_room *r,
                   struct pxl_client *c, const char *action,
                   struct json_object *user_id)
{
        struct json_object *o;

        if (!srv->conf->rooms.notify_members || r->nmembers == 0)
                return;
        o = room_event("system", action, r, c, user_id);
        tell_members(srv, r, c, o);
        json_object_put(o);
}

static struct pxl_room *room_create(struct pxl_worker *srv, const char *name,
                                    size_t len)
{
        struct pxl_room *r = calloc(1, sizeof(*r) + len + 1);

        if (r == NULL)
                return NULL;
        memcpy(r->name, name, len);
        r->name_len = len;
        r->node.key = r->name;
        r->node.key_len = len;
        if (pxl_map_put(&srv->rooms, &r->node) < 0) {
                free(r);
                return NULL;
        }
        return r;
}

static void room_destroy(struct pxl_worker *srv, struct pxl_room *r)
{
        pxl_map_remove(&srv->rooms, &r->node);
        free(r->members);
        free(r);
}

/*
 * Remove membership m of c (user_id is freed by the caller). True when c
 * was the room's last member of this worker.
 */
static bool unlink_member(struct pxl_worker *srv, struct pxl_client *c,
                          struct pxl_membership *m)
{
        bool last_local;

        struct pxl_room *r = m->room;
        size_t i = m->index, k = (size_t)(m - c->rooms);

        /* Swap the last member into the hole and fix its back-index. */
        r->members[i] = r->members[--r->nmembers];
        if (i < r->nmembers) {
                struct pxl_membership *moved = membership(r->members[i], r);

                moved->index = i;
        }
        /* Keep the client's rooms in join order. */
        memmove(&c->rooms[k], &c->rooms[k + 1],
                (c->nrooms - k - 1) * sizeof(*c->rooms));
        c->nrooms--;
        last_local = c->peer == NULL && --r->nlocal == 0;
        if (r->nmembers == 0)
                room_destroy(srv, r);
        return last_local;
}

/*
 * Take c out of r. tell_client: it gets user/leftRoom. leaving_all: one
 * of the rooms of pxl_rooms_leave_all.
 */
static int leave(struct pxl_worker *srv, struct pxl_client *c,
                 struct pxl_room *r, bool tell_client, bool leaving_all)
{
        struct pxl_membership *m = r ? membership(c, r) : NULL;
        struct pxl_change ch = {.kind = PXL_CHANGE_LEFT, .client = c,
                                .leaving_all = leaving_all};
        struct json_object *user_id;
        char name_buf[256], *name;

        if (m == NULL)
                return PXL_UNCHANGED;
        if (tell_client) {
                struct json_object *left = room_event("user", "leftRoom", r,
                                                      NULL, NULL);
                struct pxl_frame *f = pxl_clients_encode(srv, left);

                json_object_put(left);
                if (f != NULL) {
                        pxl_client_deliver(srv, c, f);
                        pxl_frame_unref(f);
                }
        }
        user_id = m->user_id;
        notify(srv, r, c, "clientLeft", user_id); /* c itself is skipped */
        /* The change is announced once done, and the room may be gone. */
        name = r->name_len < sizeof(name_buf)
                       ? memcpy(name_buf, r->name, r->name_len + 1)
                       : strdup(r->name);
        ch.room_len = r->name_len;
        ch.room_edge = unlink_member(srv, c, m);
        if (name != NULL) {
                ch.room = name;
                ch.user_id = user_id;
                pxl_worker_announce(srv, &ch);
        }
        if (name != name_buf)
                free(name);
        json_object_put(user_id);
        return PXL_OK;
}

int pxl_rooms_remove_member(struct pxl_worker *srv, struct pxl_client *c,
                    const char *name, size_t len, bool tell_client)
{
        return leave(srv, c, pxl_rooms_get(srv, name, len), tell_client,
                     false);
}

int pxl_rooms_add_member(struct pxl_worker *srv, struct pxl_client *c,
                   const char *name, size_t len, struct json_object *user_id)
{
        const struct pxl_rooms_conf *rc = &srv->conf->rooms;
        struct pxl_room *r = pxl_rooms_get(srv, name, len);
        struct pxl_membership *m;
        bool first_local;

        if (r != NULL && membership(c, r) != NULL) {
                json_object_put(user_id);
                return PXL_UNCHANGED;
        }
        if (!rc->multiple) {
                while (c->nrooms > 0)
                        leave(srv, c, c->rooms[0].room, true, false);
        } else if (c->nrooms >= rc->max_per_client) {
                json_object_put(user_id);
                return PXL_EDECLINED;
        }
        if (c->nrooms == c->rooms_cap) {
                size_t cap = c->rooms_cap ? (size_t)c->rooms_cap * 2 : 2;
                struct pxl_membership *v;

                if (cap > UINT16_MAX)
                        cap = UINT16_MAX;
                v = realloc(c->rooms, cap * sizeof(*v));
                if (v == NULL)
                        goto nomem;
                c->rooms = v;
                c->rooms_cap = (uint16_t)cap;
        }
        if (r == NULL && (r = room_create(srv, name, len)) == NULL)
                goto nomem;
        if (r->nmembers == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 4;
                struct pxl_client **v = realloc(r->members, cap * sizeof(*v));

                if (v == NULL) {
                        if (r->nmembers == 0)
                                room_destroy(srv, r);
                        goto nomem;
                }
                r->members = v;
                r->cap = cap;
        }
        if (user_id == NULL)
                user_id = c->user_id ? json_object_get(c->user_id)
                                     : json_object_new_string(c->id);
        notify(srv, r, c, "clientJoined", user_id);
        m = &c->rooms[c->nrooms++];
        m->room = r;
        m->index = r->nmembers;
        m->user_id = user_id;
        r->members[r->nmembers++] = c;
        first_local = c->peer == NULL && r->nlocal++ == 0;
        pxl_worker_announce(srv, &(struct pxl_change){
                                         .kind = PXL_CHANGE_JOINED,
                                         .client = c,
                                         .room = r->name,
                                         .room_len = r->name_len,
                                         .user_id = user_id,
                                         .room_edge = first_local});
        return PXL_OK;
nomem:
        json_object_put(user_id);
        return PXL_ENOMEM;
}

void pxl_rooms_leave_all(struct pxl_worker *srv, struct pxl_client *c)
{
        bool any = c->nrooms > 0;

        while (c->nrooms > 0)
                leave(srv, c, c->rooms[c->nrooms - 1].room, false, true);
        if (any)
                pxl_worker_announce(srv, &(struct pxl_change){
                                                 .kind = PXL_CHANGE_LEFT_ALL,
                                                 .client = c,
                                                 .user_id = c->user_id});
}

void pxl_rooms_fini(struct pxl_worker *srv)
{
        struct pxl_map_iter it;
        struct pxl_map_node *n;

        /* Clients leave their rooms as they go; this frees any left over. */
        pxl_map_iter_init(&it, &srv->rooms);
        while ((n = pxl_map_iter_next(&it)) != NULL)
                room_destroy(srv, pxl_container_of(n, struct pxl_room, node));
        pxl_map_fini(&srv->rooms);
}

/* ---- plugin API ------------------------------------------------------- */

const char *pxl_room_name_error(const struct pxl_ctx *ctx,
                                const struct json_object *name)
{
        const char *s;
        int len;

        if (!json_object_is_type(name, json_type_string))
                return "Room name is required";
        len = json_object_get_string_len(name);
        if (len == 0)
                return "Room name is required";
        s = json_object_get_string((struct json_object *)name);
        if (memchr(s, '\0', (size_t)len) != NULL)
                return "Invalid room name";
        if ((size_t)len > ctx->srv->conf->rooms.max_name_length)
                return "Room name is too long";
        return NULL;
}

static bool name_ok(const struct pxl_ctx *ctx, const char *room)
{
        size_t len = room ? strlen(room) : 0;

        return len > 0 && len <= ctx->srv->conf->rooms.max_name_length;
}

bool pxl_room_member_field_ok(const struct pxl_ctx *ctx,
                              const struct json_object *value)
{
        size_t len = 0;

        if (json_object_is_type(value, json_type_string))
                len = (size_t)json_object_get_string_len(value);
        else if (value != NULL)
                json_object_to_json_string_length(
                        (struct json_object *)value, JSON_C_TO_STRING_PLAIN,
                        &len);
        return len <= ctx->srv->conf->rooms.max_member_field_length;
}

int pxl_room_join_as(struct pxl_ctx *ctx, const char *client_id,
                     const char *room, struct json_object *user_id)
{
        struct pxl_client *c = pxl_clients_get(ctx->srv, client_id);

        if (c == NULL || !name_ok(ctx, room) ||
            !pxl_room_member_field_ok(ctx, user_id)) {
                json_object_put(user_id);
                return PXL_EINVAL;
        }
        if (c->peer != NULL) {
                /* Its worker owns the membership; the userId is its own. */
                json_object_put(user_id);
                return ctx->srv->remote != NULL
                               ? ctx->srv->remote->forward(ctx->srv, c, 'j',
                                                           room, strlen(room),
                                                           NULL, 0)
                               : PXL_ECLOSED;
        }
        return pxl_rooms_add_member(ctx->srv, c, room, strlen(room), user_id);
}

int pxl_room_join(struct pxl_ctx *ctx, const char *client_id,
                  const char *room)
{
        return pxl_room_join_as(ctx, client_id, room, NULL);
}

int pxl_room_leave(struct pxl_ctx *ctx, const char *client_id,
                   const char *room)
{
        struct pxl_client *c = pxl_clients_get(ctx->srv, client_id);

        if (c == NULL || room == NULL)
                return PXL_EINVAL;
        if (c->peer != NULL)
                return ctx->srv->remote != NULL
                               ? ctx->srv->remote->forward(ctx->srv, c, 'l',
                                                           room, strlen(room),
                                                           NULL, 0)
                               : PXL_ECLOSED;
        return pxl_rooms_remove_member(ctx->srv, c, room, strlen(room), true);
}

bool pxl_room_has(const struct pxl_ctx *ctx, const char *room,
                  const char *client_id)
{
        struct pxl_client *c = pxl_clients_get(ctx->srv, client_id);
        struct pxl_room *r = room ? pxl_rooms_get(ctx->srv, room, strlen(room)) : NULL;

        return c != NULL && r != NULL && membership(c, r) != NULL;
}

int pxl_room_members(const struct pxl_ctx *ctx, const char *room,
                     pxl_member_fn *fn, void *arg)
{
        struct pxl_room *r = room ? pxl_rooms_get(ctx->srv, room, strlen(room)) : NULL;
        int rc;

        for (size_t i = 0; r != NULL && i < r->nmembers; i++) {
                struct pxl_client *c = r->members[i];

                if ((rc = fn(c, membership(c, r)->user_id, arg)) != 0)
                        return rc;
        }
        return 0;
}

size_t pxl_room_count(const struct pxl_ctx *ctx)
{
        return ctx->srv->rooms.count;
}

int pxl_send_to_room(struct pxl_ctx *ctx, const char *room,
                     const struct json_object *obj,
                     const char *exclude_client_id)
{
        struct pxl_room *r = room ? pxl_rooms_get(ctx->srv, room, strlen(room)) : NULL;
        struct pxl_frame *f;
        int sent = 0;
        /* Members elsewhere count as sent: their worker delivers. */
        int remote_counts =
                !ctx->local_only && pxl_worker_reaches_others(ctx->srv) ? 1 : 0;

        if (r == NULL)
                return 0;
        /* Unlike the other sends, a NULL obj goes out as "null". */
        f = ctx->srv->room_frame != NULL
                    ? ctx->srv->room_frame(ctx->srv, r->name, r->name_len, obj,
                                           ctx->srv->room_frame_arg)
                    : pxl_frame_json(obj);
        if (f == NULL)
                return PXL_ENOMEM;
        ctx->srv->metrics.frames_encoded++;
        for (size_t i = 0; i < r->nmembers; i++) {
                struct pxl_client *c = r->members[i];

                if (exclude_client_id && strcmp(c->id, exclude_client_id) == 0)
                        continue;
                if (c->peer == NULL)
                        sent += pxl_client_deliver(ctx->srv, c, f);
                else
                        sent += remote_counts;
        }
        if (!ctx->local_only && ctx->srv->remote != NULL)
                ctx->srv->remote->send_room(ctx->srv, r, f, exclude_client_id);
        pxl_frame_unref(f);
        return sent;
}
