/*
 * pxl_worker.h - one worker's state, shared by the layers that run in it:
 * the core's registries (clients, users, rooms), config, plugins, router,
 * bus and metrics, and the parts the transport (pxl_conn.c, pxl_server.c)
 * keeps here. One thread per worker: nothing here is locked.
 */
#ifndef PXL_WORKER_H
#define PXL_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "pxl_bus.h"
#include "pxl_conf.h"
#include "pxl_map.h"
#include "pxl_metrics.h"
#include "pxl_plugin.h"
#include "pxl_pool.h"
#include "pxl_str.h"

struct event_base;
struct evconnlistener;
struct event;
struct pxl_conn;
struct pxl_router;
struct pxl_mirror;
struct pxl_auth;
struct ssl_ctx_st;

struct pxl_frame;

/*
 * What the core needs of a client's connection. The transport provides
 * it (pxl_conn.c's pxl_conn_io, set by pxl_server_init): the core sends
 * and closes through it and never names the transport.
 */
struct pxl_conn_io {
        /* Borrowed: the client id, once upgraded. */
        const char *(*id)(const struct pxl_conn *c);
        /* Between the 101 and the start of the close handshake. */
        bool (*is_open)(const struct pxl_conn *c);
        /* Queue one message of opcode (copied); pxl_conn.h's rules. */
        int (*send)(struct pxl_conn *c, uint8_t opcode, const void *buf,
                    size_t len);
        /* Queue a shared frame by reference. */
        int (*send_frame)(struct pxl_conn *c, struct pxl_frame *f);
        /* Start the close handshake (reason may be NULL). */
        int (*close)(struct pxl_conn *c, uint16_t code, const char *reason);
        /* A weak reference for later replies (NULL when out of memory). */
        struct pxl_conn_ref *(*ref)(struct pxl_conn *c);
};

/* A weak handle to a connection: conn goes NULL when it closes. */
struct pxl_conn_ref {
        unsigned refs;
        struct pxl_conn *conn;
};
/* Drop a reference (freed with the last one). */
void pxl_conn_ref_put(struct pxl_conn_ref *ref);

/*
 * What changed about a client (of this worker, or a record of another's),
 * announced once the change is done. pxl_worker_announce tells the
 * presence lists, then every watcher (the cluster view, tomorrow history
 * or the queue's events), then the bus's subscribers, last because they
 * may change things again.
 */
enum pxl_change_kind {
        PXL_CHANGE_CONNECTED, /* greeted; its connect hooks run next */
        PXL_CHANGE_META,      /* a metadata key was set or deleted */
        PXL_CHANGE_JOINED,    /* it joined room */
        PXL_CHANGE_LEFT,      /* it left room */
        PXL_CHANGE_LEFT_ALL,  /* it left every room at once (after the LEFTs) */
        PXL_CHANGE_GONE,      /* disconnected; its record goes next */
};

struct pxl_client;
struct pxl_room;
struct json_object;

struct pxl_change {
        enum pxl_change_kind kind;
        struct pxl_client *client;
        const char *room; /* JOINED, LEFT (the room may be gone) */
        size_t room_len;
        /* JOINED, LEFT: the membership's userId; else the client's */
        const struct json_object *user_id;
        bool room_edge;   /* JOINED: the room's first member here; LEFT: last */
        bool leaving_all; /* LEFT: one of the rooms of a LEFT_ALL */
        int close_code;   /* GONE */
};

typedef void pxl_change_fn(struct pxl_worker *srv, const struct pxl_change *ch,
                           void *arg);

/*
 * The rest of the cluster, for the core's sends and for requests about
 * clients of other workers (pxl_mirror.c installs it); NULL while this
 * worker is the whole app.
 */
struct pxl_remote {
        /* Other workers can be sent to now. */
        bool (*reaches)(struct pxl_worker *srv);
        /*
         * Ask the worker of remote client c to act on it: 'x' close
         * (a = "CODE REASON"), 'j' join / 'l' leave (a = room), 'm'
         * metadata (a = key, b = JSON text or NULL to delete).
         */
        int (*forward)(struct pxl_worker *srv, const struct pxl_client *c,
                       char kind, const char *a, size_t alen, const char *b,
                       size_t blen);
        /* Deliver f (already delivered here) to clients elsewhere. */
        int (*send_clients)(struct pxl_worker *srv,
                            struct pxl_client *const *cs, size_t n,
                            const struct pxl_frame *f);
        void (*send_all)(struct pxl_worker *srv, const struct pxl_frame *f,
                         const char *exclude);
        void (*send_room)(struct pxl_worker *srv, const struct pxl_room *r,
                          const struct pxl_frame *f, const char *exclude);
        /* A plugin's custom bus event, for the other workers' subscribers. */
        void (*publish)(struct pxl_worker *srv, const char *name,
                        const struct json_object *msg);
};

/*
 * Something that runs beside the core in a serving worker (the cluster
 * view today): started before the listener, stopped after the loop.
 */
struct pxl_service {
        const char *name;
        int (*start)(struct pxl_worker *srv, struct pxl_str *errors);
        /* Also after a start that failed halfway. */
        void (*stop)(struct pxl_worker *srv);
};

#define PXL_WORKER_WATCHERS     8
#define PXL_WORKER_SERVICES     8
#define PXL_WORKER_REPORTERS    4
#define PXL_WORKER_DEPENDENCIES 4
#define PXL_WORKER_HTTP         4

/* Adds a subsystem's figures to pxl_metrics() (out is the snapshot). */
typedef void pxl_report_fn(const struct pxl_worker *srv,
                           struct json_object *out, void *arg);

/*
 * What a room's messages pass through (the room history installs it):
 * the frame every member gets, built from obj, or NULL when out of
 * memory. Without it, rooms send pxl_frame_json(obj).
 */
typedef struct pxl_frame *pxl_room_frame_fn(struct pxl_worker *srv,
                                            const char *room, size_t len,
                                            const struct json_object *obj,
                                            void *arg);

/*
 * What system/connected's data carries besides clientId (the sessions
 * install it): append `,"KEY":VALUE` text for client c to out (never
 * srv->scratch, which holds the frame being built).
 */
typedef void pxl_greet_fn(struct pxl_worker *srv, struct pxl_client *c,
                          struct pxl_str *out, void *arg);

/*
 * Whether a server the worker depends on (Redis, the database) is up, as
 * the worker last saw it: a flag it keeps, never a round trip.
 */
typedef bool pxl_up_fn(const struct pxl_worker *srv, void *arg);

/* A dependency, for health checks (pxl_worker_add_dependency). */
struct pxl_dependency {
        const char *name; /* "redis", "database": static */
        bool required;    /* down: the worker serves, but degraded */
        pxl_up_fn *up;
        void *arg;
};

struct pxl_http_request;
struct pxl_str;
struct sockaddr;

/*
 * Answers a plain HTTP request (no Upgrade header) that is not for
 * listen.path, in place of the 404 (pxl_endpoints.c installs it): the
 * whole response goes into out. Returns 1 when it answered, 0 to leave
 * the request its 404. peer is the client's address (NULL if unknown).
 */
typedef int pxl_http_fn(struct pxl_worker *srv,
                        const struct pxl_http_request *req,
                        const struct sockaddr *peer, struct pxl_str *out,
                        void *arg);

struct pxl_redis;

TAILQ_HEAD(pxl_conn_list, pxl_conn);
TAILQ_HEAD(pxl_client_list, pxl_client);
SLIST_HEAD(pxl_dirty_list, pxl_conn);

struct pxl_worker {
        struct event_base *base;
        const struct pxl_conn_io *io; /* the transport's connections */
        struct pxl_config *conf;
        struct pxl_plugins plugins;
        struct pxl_router *router;
        struct evconnlistener *listener;
        struct ssl_ctx_st *tls; /* NULL for plain ws:// */
        struct event *sig_term, *sig_int, *sig_hup;
        struct event *sig_usr1; /* reopen the log file */
        struct event *stop_timer;
        struct event *spread_timer; /* shutdown_spread's batches of 1001 */
        unsigned spread_batch;      /* closes per batch */
        struct event *tick_timer;      /* once a second: metrics */
        struct event *idle_timer;      /* inactivity.check_interval */
        struct event *heartbeat_timer; /* heartbeat.interval */
        struct event *heartbeat_check; /* oldest unanswered ping + timeout */
        int64_t heartbeat_due;         /* that ping's time (ms), 0 = not armed */
        struct event *reaper;          /* frees connections marked done */
        struct event *flusher;       /* writes corked output, lowest priority */
        struct pxl_dirty_list dirty; /* connections with output to write */
        struct pxl_auth *auth;       /* NULL without auth.jwt */
        struct pxl_conn_list handshaking; /* upgrading, oldest first */
        struct pxl_conn_list conns;       /* open */
        struct pxl_conn_list closing;     /* closing, oldest first */
        struct pxl_conn_list dead;        /* closed, waiting for the reaper */
        struct event *deadline_timer;     /* upgrade and close deadlines */
        int64_t deadline_at;              /* when it rings (ms), 0 = idle */
        struct pxl_map addrs;             /* connections per client address */
        /* accept(2) failing (out of descriptors): pause, log sparingly */
        struct event *accept_timer;
        unsigned accept_backoff_ms;
        int reserve_fd; /* given up to shed a client at EMFILE */
        int64_t accept_logged_ms;
        unsigned accept_unlogged;
        /* presence lists: one frame per presence.interval at most */
        struct event *presence_timer;
        int64_t presence_sent_ms;
        const char *presence_pending;        /* the latest kind not yet sent */
        struct pxl_pool client_pool;         /* struct pxl_client records */
        struct pxl_pool conn_pool;           /* struct pxl_conn */
        struct pxl_map clients;              /* struct pxl_client by id */
        struct pxl_client_list client_order; /* the same, oldest first */
        struct pxl_map users;                /* clients by user id */
        struct pxl_map rooms;                /* struct pxl_room by name */
        struct pxl_metrics metrics;
        struct pxl_bus bus;
        struct pxl_mirror
                *mirror; /* the rest of the cluster; NULL without redis */
        struct pxl_redis *redis;   /* its Redis connections; NULL without */
        struct pxl_map redis_subs; /* plugins' channels (pxl_redis_api.c) */
        const struct pxl_remote *remote; /* NULL: this worker is the app */
        pxl_room_frame_fn *room_frame;   /* NULL: rooms keep no history */
        void *room_frame_arg;
        pxl_greet_fn *greet; /* NULL: the greeting has clientId only */
        void *greet_arg;
        struct {
                pxl_change_fn *fn;
                void *arg;
        } watchers[PXL_WORKER_WATCHERS];
        unsigned nwatchers;
        const struct pxl_service *services[PXL_WORKER_SERVICES];
        void *service_state[PXL_WORKER_SERVICES]; /* each service's own */
        unsigned nservices;
        unsigned nstarted;      /* services started, stopped in reverse */
        struct {
                pxl_report_fn *fn;
                void *arg;
        } reporters[PXL_WORKER_REPORTERS];
        unsigned nreporters;
        struct pxl_dependency deps[PXL_WORKER_DEPENDENCIES];
        unsigned ndeps;
        /* Plain HTTP requests on the listener, asked in order; none:
         * all get 404. */
        struct {
                pxl_http_fn *fn;
                void *arg;
        } http[PXL_WORKER_HTTP];
        unsigned nhttp;
        unsigned nconns;        /* all accepted, upgrading included */
        unsigned nopen;         /* upgraded */
        unsigned nhandshaking;  /* on the handshaking list */
        struct pxl_str scratch; /* reply building; reused, never shared */
        bool stopping;
        bool heap_trimmed; /* freed heap given back since the last traffic */
        unsigned port;     /* bound port (listen.port may be 0) */
        /* Who this process is (pxl_cluster.c); one process: 0, 0, -1. */
        unsigned worker_index; /* slot in the cluster, 0..workers-1 */
        unsigned worker_gen;   /* earlier starts of this slot */
        char node_id[17];      /* shared by the workers of one master */
        int ready_fd;          /* one byte written once listening; -1 */
};

/* Be told of every change (PXL_ENOMEM beyond PXL_WORKER_WATCHERS). */
int pxl_worker_watch(struct pxl_worker *srv, pxl_change_fn *fn, void *arg);
/* Tell the presence lists, the watchers and the bus, in that order. */
void pxl_worker_announce(struct pxl_worker *srv, const struct pxl_change *ch);

/* Have fn add to every metrics snapshot (PXL_ENOMEM past the table). */
int pxl_worker_add_reporter(struct pxl_worker *srv, pxl_report_fn *fn,
                            void *arg);

/* Tell health checks about a dependency (PXL_ENOMEM past the table). */
int pxl_worker_add_dependency(struct pxl_worker *srv, const char *name,
                              bool required, pxl_up_fn *up, void *arg);

/*
 * Answer plain HTTP requests on the WebSocket listener with fn too: the
 * handlers are asked in the order they were added until one answers
 * (PXL_ENOMEM past the table). While one is set the listener stays open
 * through the shutdown drain, so it can say "draining".
 */
int pxl_worker_serve_http(struct pxl_worker *srv, pxl_http_fn *fn, void *arg);
/* The first handler's answer to req in out: 1, or 0 when none answers. */
int pxl_worker_answer_http(struct pxl_worker *srv,
                           const struct pxl_http_request *req,
                           const struct sockaddr *peer, struct pxl_str *out);

/* Run svc in this worker (before pxl_server_run). */
int pxl_worker_add_service(struct pxl_worker *srv,
                           const struct pxl_service *svc);
/*
 * A service's own state in this worker, found by the service: NULL
 * until set (and for a service never added). Setting returns PXL_EINVAL
 * for a service not added.
 */
void *pxl_worker_service_state(const struct pxl_worker *srv,
                               const struct pxl_service *svc);
int pxl_worker_set_service_state(struct pxl_worker *srv,
                                 const struct pxl_service *svc, void *state);
/* Start the services in order; on failure stop the started ones. */
int pxl_worker_start_services(struct pxl_worker *srv, struct pxl_str *errors);
/* Stop the started services, last first. */
void pxl_worker_stop_services(struct pxl_worker *srv);

/* Other workers can be sent to now. */
static inline bool pxl_worker_reaches_others(struct pxl_worker *srv)
{
        return srv->remote != NULL && srv->remote->reaches(srv);
}

/* Milliseconds since the epoch, as of this loop iteration. */
int64_t pxl_worker_now_ms(const struct pxl_worker *srv);
/* The same in microseconds. */
int64_t pxl_worker_now_us(const struct pxl_worker *srv);

#endif
