/*
 * pxl_history.c - room history in one process (rooms.history): every
 * frame sent to a room gets "pos":"EPOCH:OFFSET" and is kept, the last
 * `size` of each room for `ttl` seconds, by reference (the frame the
 * members got). A room's history is made by its first message, so
 * rooms without messages cost nothing, and is dropped when it has
 * expired and the room is gone: its next message starts a new epoch.
 * The core's room sends pass through the room_frame hook set here.
 */
#include <errno.h>
#include <json-c/json.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "pxl/pxl.h"
#include "pxl_clients.h"
#include "pxl_frame.h"
#include "pxl_history.h"
#include "pxl_int.h"
#include "pxl_log.h"
#include "pxl_map.h"
#include "pxl_rooms.h"
#include "pxl_ws_codec.h"

#define EPOCH_LEN 8

struct entry {
        uint64_t offset;
        int64_t at_ms;
        struct pxl_frame *frame; /* one reference */
};

struct room_history {
        struct pxl_map_node node; /* histories, by room name */
        char epoch[EPOCH_LEN + 1];
        uint64_t next;  /* the offset of the room's next message, from 1 */
        struct entry *ring; /* size slots; n of them used from head */
        size_t head, n;
        int64_t last_ms; /* when the last message came */
        size_t name_len;
        char name[];
};

struct history {
        struct pxl_worker *srv;
        struct pxl_map rooms; /* struct room_history */
        size_t size;          /* messages kept per room */
        int64_t ttl_ms;
        struct event *sweep;
};

static const struct pxl_service history_service;

static void new_epoch(char *out)
{
        static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
        unsigned char raw[EPOCH_LEN];

        if (RAND_bytes(raw, sizeof(raw)) != 1)
                memset(raw, 0, sizeof(raw)); /* still a valid epoch */
        for (size_t i = 0; i < EPOCH_LEN; i++)
                out[i] = digits[raw[i] % 36];
        out[EPOCH_LEN] = '\0';
}

static struct entry *at(struct room_history *rh, const struct history *h,
                        size_t i)
{
        return &rh->ring[(rh->head + i) % h->size];
}

static void drop_oldest(struct room_history *rh, const struct history *h)
{
        struct entry *e = at(rh, h, 0);

        pxl_frame_unref(e->frame);
        e->frame = NULL;
        rh->head = (rh->head + 1) % h->size;
        rh->n--;
}

static void expire(struct room_history *rh, const struct history *h,
                   int64_t now)
{
        while (rh->n > 0 && at(rh, h, 0)->at_ms + h->ttl_ms <= now)
                drop_oldest(rh, h);
}

static void history_free(struct history *h, struct room_history *rh)
{
        while (rh->n > 0)
                drop_oldest(rh, h);
        pxl_map_remove(&h->rooms, &rh->node);
        free(rh->ring);
        free(rh);
}

static struct room_history *history_get(struct history *h, const char *room,
                                        size_t len, bool make)
{
        struct pxl_map_node *n = pxl_map_get(&h->rooms, room, len);
        struct room_history *rh;

        if (n != NULL || !make)
                return n ? pxl_container_of(n, struct room_history, node)
                         : NULL;
        rh = calloc(1, sizeof(*rh) + len + 1);
        if (rh == NULL)
                return NULL;
        rh->ring = calloc(h->size, sizeof(*rh->ring));
        if (rh->ring == NULL) {
                free(rh);
                return NULL;
        }
        memcpy(rh->name, room, len);
        rh->name_len = len;
        rh->node.key = rh->name;
        rh->node.key_len = len;
        rh->next = 1;
        new_epoch(rh->epoch);
        if (pxl_map_put(&h->rooms, &rh->node) < 0) {
                free(rh->ring);
                free(rh);
                return NULL;
        }
        return rh;
}

/*
 * The room_frame hook: obj as text with "pos" added (an object; any
 * other JSON goes out as it is), kept as the room's newest message.
 */
static struct pxl_frame *room_frame(struct pxl_worker *srv, const char *room,
                                    size_t room_len,
                                    const struct json_object *obj, void *arg)
{
        struct history *h = arg;
        struct room_history *rh = history_get(h, room, room_len, true);
        int64_t now = pxl_worker_now_ms(srv);
        const char *json;
        struct pxl_frame *f;
        struct entry *e;
        char pos[64], *text;
        size_t n, plen;

        if (rh == NULL)
                return NULL;
        json = json_object_to_json_string_length(
                (struct json_object *)obj,
                JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
        if (json == NULL)
                return NULL;
        if (!json_object_is_type(obj, json_type_object) || n < 2) {
                f = pxl_frame_new(PXL_WS_OP_TEXT, json, n);
        } else {
                plen = (size_t)snprintf(pos, sizeof(pos),
                                        "%s\"pos\":\"%s:%llu\"}",
                                        n > 2 ? "," : "", rh->epoch,
                                        (unsigned long long)rh->next);
                if ((text = malloc(n - 1 + plen)) == NULL)
                        return NULL;
                memcpy(text, json, n - 1); /* without its '}' */
                memcpy(text + n - 1, pos, plen);
                f = pxl_frame_new(PXL_WS_OP_TEXT, text, n - 1 + plen);
                free(text);
        }
        if (f == NULL)
                return NULL;
        expire(rh, h, now);
        if (rh->n == h->size)
                drop_oldest(rh, h);
        e = at(rh, h, rh->n++);
        e->offset = rh->next++;
        e->at_ms = now;
        e->frame = f;
        pxl_frame_ref(f);
        rh->last_ms = now;
        return f;
}

/* Once a second: expired messages go; so does the history of a room
 * that is gone once nothing of it is left (its epoch ends). */
static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
        struct history *h = arg;
        int64_t now = pxl_worker_now_ms(h->srv);
        struct pxl_map_iter it;
        struct pxl_map_node *n;

        (void)fd;
        (void)what;
        pxl_map_iter_init(&it, &h->rooms);
        while ((n = pxl_map_iter_next(&it)) != NULL) {
                struct room_history *rh =
                        pxl_container_of(n, struct room_history, node);

                expire(rh, h, now);
                if (rh->n == 0 &&
                    pxl_rooms_get(h->srv, rh->name, rh->name_len) == NULL)
                        history_free(h, rh);
        }
}

/* In the serving worker: the state, the sweep and the rooms' hook. */
static int history_start(struct pxl_worker *srv, struct pxl_str *errors)
{
        struct timeval second = {1, 0};
        struct history *h = calloc(1, sizeof(*h));

        if (h == NULL || pxl_worker_set_service_state(srv, &history_service,
                                                      h) < 0) {
                free(h);
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        h->srv = srv;
        h->size = srv->conf->rooms.history_size;
        h->ttl_ms = (int64_t)srv->conf->rooms.history_ttl * 1000;
        h->sweep = event_new(srv->base, -1, EV_PERSIST, sweep_cb, h);
        if (h->sweep == NULL || event_add(h->sweep, &second) < 0) {
                pxl_str_puts(errors, "cannot start the room history sweep\n");
                return PXL_ERR;
        }
        srv->room_frame = room_frame;
        srv->room_frame_arg = h;
        return PXL_OK;
}

static void history_stop(struct pxl_worker *srv)
{
        struct history *h = pxl_worker_service_state(srv, &history_service);
        struct pxl_map_iter it;
        struct pxl_map_node *n;

        if (h == NULL)
                return;
        if (h->sweep != NULL)
                event_free(h->sweep);
        h->sweep = NULL;
        pxl_map_iter_init(&it, &h->rooms);
        while ((n = pxl_map_iter_next(&it)) != NULL)
                history_free(h, pxl_container_of(n, struct room_history,
                                                 node));
        pxl_map_fini(&h->rooms);
        srv->room_frame = NULL;
        (void)pxl_worker_set_service_state(srv, &history_service, NULL);
        free(h);
}

static const struct pxl_service history_service = {
        .name = "room history",
        .start = history_start,
        .stop = history_stop,
};

int pxl_history_install(struct pxl_worker *srv)
{
        if (!srv->conf->rooms.history)
                return PXL_OK;
        return pxl_worker_add_service(srv, &history_service);
}

/* "EPOCH:OFFSET" of since: the offset when the epoch is rh's, else 0. */
static uint64_t since_offset(const struct room_history *rh, const char *since)
{
        const char *colon = since ? strchr(since, ':') : NULL;
        char *end;
        unsigned long long off;

        if (colon == NULL || (size_t)(colon - since) != EPOCH_LEN ||
            memcmp(since, rh->epoch, EPOCH_LEN) != 0)
                return 0;
        off = strtoull(colon + 1, &end, 10);
        return *end == '\0' ? off : 0;
}

struct json_object *pxl_room_history(const struct pxl_ctx *ctx,
                                     const char *room, const char *since,
                                     unsigned limit)
{
        struct history *h =
                ctx ? pxl_worker_service_state(ctx->srv, &history_service)
                    : NULL;
        struct room_history *rh;
        struct json_object *out, *messages;
        uint64_t after;
        size_t first;

        if (h == NULL || room == NULL)
                return NULL;
        rh = history_get(h, room, strlen(room), true);
        out = json_object_new_object();
        messages = json_object_new_array();
        if (rh == NULL || out == NULL || messages == NULL) {
                json_object_put(out);
                json_object_put(messages);
                return NULL;
        }
        expire(rh, h, pxl_worker_now_ms(ctx->srv));
        after = since_offset(rh, since);
        if (limit == 0 || limit > h->size)
                limit = (unsigned)h->size;
        /* The oldest kept message after `after`, then at most limit. */
        for (first = 0; first < rh->n && at(rh, h, first)->offset <= after;
             first++)
                ;
        for (size_t i = first; i < rh->n && i - first < limit; i++) {
                const struct pxl_frame *f = at(rh, h, i)->frame;
                struct json_tokener *tok = json_tokener_new();
                struct json_object *m = NULL;

                /* The payload is the JSON text members got (no NUL). */
                if (tok != NULL)
                        m = json_tokener_parse_ex(
                                tok,
                                (const char *)f->data +
                                        (f->len - f->payload_len),
                                (int)f->payload_len);
                if (tok != NULL)
                        json_tokener_free(tok);
                json_object_array_add(messages, m);
        }
        json_object_object_add(out, "roomName", json_object_new_string(room));
        json_object_object_add(out, "epoch",
                               json_object_new_string(rh->epoch));
        json_object_object_add(out, "messages", messages);
        return out;
}

/*
 * "EPOCH:OFFSET" of a client: true with *off when it is well formed and
 * of rh's epoch.
 */
static bool position_of(const struct room_history *rh, const char *pos,
                        uint64_t *off)
{
        const char *colon = pos ? strchr(pos, ':') : NULL;
        char *end;

        if (colon == NULL || (size_t)(colon - pos) != EPOCH_LEN ||
            memcmp(pos, rh->epoch, EPOCH_LEN) != 0 || colon[1] < '0' ||
            colon[1] > '9')
                return false;
        errno = 0;
        *off = strtoull(colon + 1, &end, 10);
        return *end == '\0' && errno == 0;
}

int pxl_history_replay(struct pxl_worker *srv, const char *room,
                       const char *since, struct pxl_client *c)
{
        struct history *h = pxl_worker_service_state(srv, &history_service);
        struct room_history *rh;
        uint64_t off;
        size_t first;

        if (h == NULL || room == NULL)
                return PXL_EINVAL;
        rh = history_get(h, room, strlen(room), false);
        if (rh == NULL || !position_of(rh, since, &off) || off >= rh->next)
                return 0;
        expire(rh, h, pxl_worker_now_ms(srv));
        /* Every message after off must still be kept: none missed. */
        if (off + 1 < rh->next &&
            (rh->n == 0 || at(rh, h, 0)->offset > off + 1))
                return 0;
        for (first = 0; first < rh->n && at(rh, h, first)->offset <= off;
             first++)
                ;
        for (size_t i = first; i < rh->n; i++)
                pxl_client_deliver(srv, c, at(rh, h, i)->frame);
        return 1;
}
