/*
 * pxl_mirror.h - the rest of the cluster as this worker sees it, kept in
 * step through Redis: remote workers (peers), a record of every client
 * connected to them (in the same registry and rooms as local clients, with
 * no connection), and delivery to clients that are elsewhere.
 *
 * Without a redis section there is no mirror and every call here does
 * nothing: one worker is the whole app.
 */
#ifndef PXL_MIRROR_H
#define PXL_MIRROR_H

#include <stdbool.h>
#include <stddef.h>

#include "pxl_str.h"

struct json_object;
struct pxl_client;
struct pxl_frame;
struct pxl_redis;
struct pxl_room;
struct pxl_worker;

/* Connect to Redis (srv->base exists) and join the cluster. */
int pxl_mirror_start(struct pxl_worker *srv, struct pxl_str *errors);
/* Leave the cluster (its view drops our clients at once) and disconnect. */
void pxl_mirror_stop(struct pxl_worker *srv);

/* From pxl_redis.c: connected (resync), lost, a message on a channel. */
void pxl_mirror_up(struct pxl_worker *srv);
void pxl_mirror_down(struct pxl_worker *srv);
void pxl_mirror_message(struct pxl_worker *srv, const char *channel,
                        size_t chlen, const char *msg, size_t len);

/* A local client connected, joined or left a room, or changed metadata. */
void pxl_mirror_client_changed(struct pxl_worker *srv, struct pxl_client *c);
/* A local client is going away (before its record is removed). */
void pxl_mirror_client_gone(struct pxl_worker *srv, struct pxl_client *c,
                            int code);
/* A room got its first local member (add) or lost its last one. */
void pxl_mirror_room_local(struct pxl_worker *srv, const struct pxl_room *r,
                           bool add);

/* This worker's Redis connections, or NULL without a redis section. */
struct pxl_redis *pxl_mirror_redis(const struct pxl_worker *srv);

/* Other workers can be sent to now (Redis is up). */
bool pxl_mirror_reaches(const struct pxl_worker *srv);

/*
 * Deliver f (already delivered to local clients) to the clients of other
 * workers: everybody, a room's members, or the given remote clients
 * (grouped per worker). exclude may be NULL. The last returns how many
 * clients it was sent towards.
 */
void pxl_mirror_send_all(struct pxl_worker *srv, const struct pxl_frame *f,
                         const char *exclude);
void pxl_mirror_send_room(struct pxl_worker *srv, const struct pxl_room *r,
                          const struct pxl_frame *f, const char *exclude);
int pxl_mirror_send_clients(struct pxl_worker *srv,
                            struct pxl_client *const *cs, size_t n,
                            const struct pxl_frame *f);

/*
 * Ask the worker of remote client c to act on it: 'x' close (a = code and
 * reason), 'j' join / 'l' leave (a = room), 'm' metadata (a = key,
 * b = JSON text or NULL to delete). PXL_OK once sent.
 */
int pxl_mirror_forward(struct pxl_worker *srv, const struct pxl_client *c,
                       char kind, const char *a, size_t alen, const char *b,
                       size_t blen);

/* A plugin's custom event, for the subscribers of the other workers. */
void pxl_mirror_publish_custom(struct pxl_worker *srv, const char *name,
                               const struct json_object *msg);

#endif
