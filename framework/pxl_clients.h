/*
 * pxl_clients.h - the client registry of one worker: records by id, the
 * user index, metadata, presence lists, and delivery of shared frames.
 * Rooms are pxl_rooms.c's; sockets are pxl_conn.c's.
 */
#ifndef PXL_CLIENTS_H
#define PXL_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/queue.h>

#include "pxl_map.h"

struct json_object;
struct pxl_change;
struct pxl_conn;
struct pxl_frame;
struct pxl_peer;
struct pxl_room;
struct pxl_worker;
struct pxl_user;

struct pxl_membership {
        struct pxl_room *room;
        size_t index;                /* position in room->members */
        struct json_object *user_id; /* as joined (joinRoom's userId) */
};

struct pxl_client {
        struct pxl_map_node node; /* srv->clients, keyed by id */
        TAILQ_ENTRY(pxl_client) order; /* srv->client_order: oldest first */
        char id[33];
        struct pxl_conn *conn;    /* NULL when connected elsewhere */
        struct pxl_peer *peer;    /* its worker when remote; NULL when ours */
        bool gone;                /* ours and leaving: publish no more changes */
        bool mark;                /* pxl_mirror.c's scratch while resyncing */
        bool resumed;             /* took over a session (system/resume) */
        int64_t last_activity_ms;
        struct json_object *user_id; /* NULL when anonymous */
        struct json_object *token;   /* the JWT payload */
        struct pxl_user *user;       /* index entry, NULL when anonymous */
        struct json_object *meta;    /* object, created on first set */
        uint32_t meta_bytes;         /* its keys and JSON values (ours only) */
        struct pxl_membership *rooms; /* in join order */
        uint16_t nrooms, rooms_cap;   /* rooms.max_per_client <= 65535 */
};

/* 32 lowercase hex characters from the OS's CSPRNG-seeded generator. */
void pxl_client_make_id(char out[33]);

/*
 * Register a client connected here (takes user_id and token, either may be
 * NULL). The caller announces it (PXL_CHANGE_CONNECTED) once the client
 * has been greeted. NULL when out of memory.
 */
struct pxl_client *pxl_client_add(struct pxl_worker *srv, struct pxl_conn *conn,
                                  const char *id, struct json_object *user_id,
                                  struct json_object *token);
/*
 * Give a client of this worker, in no room, another id (not in use): the
 * registry re-keyed, its metadata dropped, marked resumed. The caller
 * announces what that means (pxl_conn_resume_as).
 */
void pxl_client_rekey(struct pxl_worker *srv, struct pxl_client *c,
                      const char *id);
/* Take a client out of its rooms and the registry, and free it. */
void pxl_client_remove(struct pxl_worker *srv, struct pxl_client *c);
struct pxl_client *pxl_clients_get(const struct pxl_worker *srv,
                                   const char *id);
/*
 * The shared frame of a message to clients (NULL for NULL obj or no
 * memory), counted as one encode in the metrics.
 */
struct pxl_frame *pxl_clients_encode(struct pxl_worker *srv,
                                     const struct json_object *obj);
/* Queue a shared frame for one client; 1 when queued, else 0. */
int pxl_client_deliver(struct pxl_worker *srv, struct pxl_client *c,
                       struct pxl_frame *f);
/*
 * Set (value != NULL, taken) or delete (NULL) metadata key of a client
 * of this worker, within limits.max_metadata_*: PXL_EDECLINED (counted)
 * when over them, PXL_ENOMEM. Announces the change.
 */
int pxl_client_meta_put(struct pxl_worker *srv, struct pxl_client *c,
                        const char *key, struct json_object *value);
/*
 * A change as a clientList frame to every local client (if on), at most
 * once per presence.interval: changes in between are coalesced.
 */
void pxl_presence_on_change(struct pxl_worker *srv,
                            const struct pxl_change *ch);
void pxl_clients_fini(struct pxl_worker *srv);

#endif
