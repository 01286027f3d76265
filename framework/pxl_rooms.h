/*
 * pxl_rooms.h - rooms of one worker: membership both ways (room -> members
 * for fan-out, client -> rooms in join order), member notifications and
 * delivery to a room. Client records are pxl_clients.c's.
 */
#ifndef PXL_ROOMS_H
#define PXL_ROOMS_H

#include <stddef.h>

#include "pxl_map.h"

struct json_object;
struct pxl_client;
struct pxl_worker;

struct pxl_room {
        struct pxl_map_node node; /* srv->rooms, keyed by name */
        struct pxl_client **members;
        size_t nmembers, cap;
        size_t nlocal; /* members connected to this worker */
        size_t name_len;
        char name[]; /* NUL-terminated; names never contain NUL */
};

/*
 * Join with the membership's userId (takes user_id; NULL = the client's
 * user id, else its client id). Statuses as pxl_room_join().
 */
int pxl_rooms_add_member(struct pxl_worker *srv, struct pxl_client *c,
                   const char *name, size_t len, struct json_object *user_id);
int pxl_rooms_remove_member(struct pxl_worker *srv, struct pxl_client *c,
                    const char *name, size_t len, bool tell_client);
/* On disconnect: leave every room, telling the other members. */
void pxl_rooms_leave_all(struct pxl_worker *srv, struct pxl_client *c);
struct pxl_room *pxl_rooms_get(const struct pxl_worker *srv, const char *name,
                               size_t len);
void pxl_rooms_fini(struct pxl_worker *srv);

#endif
