/*
 * pxl.h - the one public header of libpxl. A plugin includes only this.
 *
 * A plugin is a shared object exporting one data symbol, `pxl_plugin`
 * (struct pxl_plugin). pxl-serve reads its header fields first and refuses
 * the plugin unless the ABI matches, then registers its routes.
 *
 * Ownership: pointer parameters are borrowed unless the comment says
 * "takes". Returned pointers belong to the caller unless the comment says
 * "borrowed".
 *
 * ABI changelog (PXL_ABI_MAJOR.PXL_ABI_MINOR):
 *   1.0  first descriptor: routes, raw handler, init/fini,
 *        connect/disconnect hooks. (Unreleased: the clients, rooms,
 *        sending and metrics functions, and the outbound WebSocket
 *        client functions pxl_wsc_*, joined 1.0 before any release.)
 *   1.1  subscribers: server-side handlers of bus events, appended to
 *        the descriptor (a 1.0 plugin simply has none). The Redis
 *        functions pxl_redis_* joined 1.1 before any release.
 *   1.2  settings: the plugin's settings table (struct pxl_setting),
 *        appended to the descriptor; pxl-serve checks the plugin's
 *        settings group against it at load, as it checks the app file,
 *        and init reads the values with pxl_setting_int, _bool and
 *        _string. A 1.0 or 1.1 plugin has no table: its group is passed
 *        to init unchecked, as before.
 *   1.3  database: the pxl_db_* functions (parameterised queries,
 *        results as JSON, transactions) on the app's database group.
 *        The descriptor is unchanged; a host older than 1.3 refuses a
 *        plugin that calls them, naming the symbol.
 *   1.4  queue: the descriptor's processors table (struct
 *        pxl_processor), appended (a 1.3 plugin has none), and the
 *        pxl_job_* functions: background jobs with delays, retries and
 *        dead letters. A processor may be blocking (it runs on a
 *        thread pool: pxl_processor.blocking, last of the struct).
 *   1.5  timers: pxl_timer_after, pxl_timer_every and pxl_timer_cancel,
 *        one-shot and repeating timers on the worker's loop, owned by
 *        the plugin and freed with it. The descriptor is unchanged.
 *   1.6  reload: the descriptor's reload hook, appended (a 1.5 plugin
 *        has none), called in each worker after SIGHUP applied new
 *        settings; pxl_setting_* read the new values from then on.
 *        pxl_room_history (rooms.history) joined 1.6 before any release,
 *        and so did pxl_session_resume and pxl_client_resumed (resume).
 * Functions are only ever added; a plugin that calls one its host lacks
 * is refused at load with the unresolved symbol named.
 */
#ifndef PXL_PXL_H
#define PXL_PXL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <libconfig.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PXL_ABI_MAJOR    1
#define PXL_ABI_MINOR    6
#define PXL_PLUGIN_MAGIC 0x70786c50u /* "Plxp" little-endian: "pxl plugin" */

/*
 * Build signature: things that change struct layouts or calling
 * conventions between a plugin and the host. Size of pointers and of
 * long, and the json-c major version (its types cross the boundary).
 */
#define PXL_BUILD_SIG                                                          \
        ((uint32_t)(sizeof(void *) << 24 | sizeof(long) << 16 |                \
                    (JSON_C_MAJOR_VERSION & 0xff) << 8 |                       \
                    (JSON_C_MINOR_VERSION & 0xff)))

#define PXL_PLUGIN_EXPORT     __attribute__((visibility("default")))
#define PXL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

/* Return codes: 0 success, negative failure, positive non-error status. */
enum pxl_err {
        PXL_OK = 0,
        PXL_ERR = -1,
        PXL_EAGAIN = -2,
        PXL_ENOMEM = -3,
        PXL_EINVAL = -4,
        PXL_EPROTO = -5,
        PXL_ECLOSED = -6,
        PXL_EDECLINED = -7,
};
#define PXL_DEFERRED 1

/* Static string describing rc ("ok", "out of memory", ...). */
const char *pxl_strerror(int rc);

enum pxl_log_level {
        PXL_LOG_ERR = 0,
        PXL_LOG_WARN,
        PXL_LOG_NOTICE,
        PXL_LOG_INFO,
        PXL_LOG_DEBUG,
};

/* Close codes the framework sends (PROTOCOL.md). */
enum pxl_close_code {
        PXL_CLOSE_NORMAL = 1000,
        PXL_CLOSE_GOING_AWAY = 1001,
        PXL_CLOSE_PROTOCOL = 1002,
        PXL_CLOSE_UNSUPPORTED = 1003,
        PXL_CLOSE_NO_STATUS = 1005,
        PXL_CLOSE_ABNORMAL = 1006,
        PXL_CLOSE_BAD_DATA = 1007,
        PXL_CLOSE_POLICY = 1008,
        PXL_CLOSE_TOO_BIG = 1009,
        PXL_CLOSE_INTERNAL = 1011,
        PXL_CLOSE_INACTIVE = 4000,
        PXL_CLOSE_HEARTBEAT = 4001,
        PXL_CLOSE_RATE_LIMITED = 4008,
        PXL_CLOSE_TOO_SLOW = 4009,
};

struct pxl_ctx;   /* opaque; borrowed, valid only during the call */
struct pxl_msg;   /* opaque; borrowed, valid only during the handler */
struct pxl_defer; /* a pending reply, owned by the plugin until answered */

/*
 * A route handler. Returns PXL_OK (the reply goes out now, with the
 * response set by pxl_reply(), or without "response" if none was set),
 * PXL_DEFERRED (after pxl_defer(); answer later with pxl_defer_reply()),
 * or a negative code (an error frame goes out with the text given to
 * pxl_fail(), or "Unknown error").
 */
typedef int pxl_handler_fn(struct pxl_ctx *ctx, const struct pxl_msg *msg);
/* Called once per worker with the plugin's own `settings` group (or NULL). */
typedef int pxl_init_fn(struct pxl_ctx *ctx, const config_setting_t *settings);
/* Called once per worker at shutdown, also after a failed init. */
typedef void pxl_fini_fn(struct pxl_ctx *ctx);
/*
 * ABI 1.6: the app file was reloaded (SIGHUP) and the plugin's settings
 * checked again: pxl_setting_* now return the new values, and settings
 * is the new group (or NULL). The old values stay readable (strings
 * borrowed before stay valid) until the plugin is unloaded. A negative
 * return is logged; the reload stands.
 */
typedef int pxl_reload_fn(struct pxl_ctx *ctx, const config_setting_t *settings);
/*
 * A client finished its handshake. With resume, a connection that takes
 * over a session (system/resume) ends the identity it had (on_disconnect
 * with 1000 for that clientId), then connects again as the old clientId:
 * on_connect runs once more, pxl_client_resumed() true for it, and its
 * metadata and rooms come back right after (rooms as ordinary joins).
 */
typedef void pxl_connect_fn(struct pxl_ctx *ctx);
/* A client is gone; close_code is the code sent or received (1006 if none). */
typedef void pxl_disconnect_fn(struct pxl_ctx *ctx, int close_code);

/*
 * A server-side handler of bus events: the framework's own (channels
 * clientConnected, clientDisconnected, clientJoinedRoom, clientLeftRoom)
 * and plugins' (pxl_publish). ctx has no client; msg is borrowed. Return
 * 0, or a negative code to have the failure counted; the other
 * subscribers run either way.
 */
typedef int pxl_subscriber_fn(struct pxl_ctx *ctx, const char *channel,
                              const struct json_object *msg);

struct pxl_subscriber {
        const char *channel; /* an exact name, "*", or a glob ("chat.*") */
        int priority;        /* higher runs first; equal: load order */
        pxl_subscriber_fn *handler;
};
#define PXL_SUBSCRIBER_END {NULL, 0, NULL}

struct pxl_job; /* a job being processed; see "queue" below */
/*
 * A queue's processor: ends job with pxl_job_complete or pxl_job_fail,
 * during the call or later. Returning without ending it: PXL_OK
 * completes it (no result), a negative code fails it, PXL_DEFERRED
 * leaves it running until one of them is called.
 */
typedef int pxl_processor_fn(struct pxl_ctx *ctx, struct pxl_job *job);

/* Write rows with designated initialisers; what a row leaves out is 0. */
struct pxl_processor {
        const char *queue;   /* [a-z0-9_.-]{1,64}; one plugin per queue */
        pxl_processor_fn *fn;
        unsigned concurrency; /* jobs at once per worker; 0 = 1 */
        unsigned timeout_ms;  /* failed when still running; 0 = queue.timeout */
        /*
         * fn blocks (a file, a subprocess, a library without an async
         * API): it runs on one of the worker's queue.threads threads,
         * with ctx NULL, and may call only what "Blocking processors"
         * (the queue section below) lists.
         */
        bool blocking;
};
#define PXL_PROCESSOR_END {NULL, NULL, 0, 0, false}

struct pxl_route {
        const char *type;
        const char *action;
        pxl_handler_fn *handler;
};
#define PXL_ROUTE_END                                                          \
        {                                                                      \
                NULL, NULL, NULL                                               \
        }

/*
 * A plugin's setting (ABI 1.2): a key of its `settings = { ... }` group
 * in the app file. pxl-serve checks the group against the table at load
 * (so `pxl-serve -t` too), with the framework's own checks and messages:
 * "app.cfg:12: plugins[1].settings.KEY: 0 is out of range 1..100", a
 * value of the wrong type, a required key missing, and any key the
 * table does not name ("unknown key") are errors, and nothing starts.
 * Write rows with designated initialisers; what a row leaves out is 0.
 */
enum pxl_setting_type {
        PXL_SETTING_INT = 1, /* an integer, read with pxl_setting_int */
        PXL_SETTING_BOOL,    /* true or false, pxl_setting_bool */
        PXL_SETTING_STRING,  /* a string, pxl_setting_string */
};

struct pxl_setting {
        const char *name; /* the key in the settings group */
        enum pxl_setting_type type;
        bool required; /* the app file must set it; def is not used */
        /*
         * Inclusive: an integer's value, a string's length in bytes.
         * Both 0: no limit. Not used for booleans.
         */
        int64_t min, max;
        /* The value when the app file does not set the key. */
        union {
                const char *s; /* NULL: none (pxl_setting_string gives NULL) */
                int64_t i;
                bool b;
        } def;
        const char *help; /* one line: what it does, its unit */
};
#define PXL_SETTING_END                                                        \
        {                                                                      \
                NULL, 0, false, 0, 0, {NULL}, NULL                             \
        }

/* Read before anything else in the descriptor; never reordered. */
struct pxl_plugin_hdr {
        uint32_t magic;
        uint16_t abi_major;
        uint16_t abi_minor;
        uint32_t size;
        uint32_t build_sig;
};

struct pxl_plugin {
        struct pxl_plugin_hdr hdr;
        const char *name;
        const char *version;
        const struct pxl_route
                *routes; /* ended by PXL_ROUTE_END; may be NULL */
        pxl_init_fn *init;
        pxl_fini_fn *fini;
        pxl_connect_fn *on_connect;
        pxl_disconnect_fn *on_disconnect;
        /*
         * Receives binary messages (and text ones when the app sets
         * raw_text = true) instead of the JSON router. At most one plugin
         * of an app may set it. Nothing is replied automatically.
         */
        pxl_handler_fn *raw_handler;
        /* ABI 1.1: ended by PXL_SUBSCRIBER_END; may be NULL. */
        const struct pxl_subscriber *subscribers;
        /*
         * ABI 1.2: the plugin's settings, ended by PXL_SETTING_END. NULL:
         * the group is not checked, only passed to init (as for 1.0 and
         * 1.1 plugins); a table with no rows: the group must be empty.
         */
        const struct pxl_setting *settings;
        /* ABI 1.4: ended by PXL_PROCESSOR_END; may be NULL. */
        const struct pxl_processor *processors;
        /* ABI 1.6: after a reload; may be NULL. */
        pxl_reload_fn *reload;
};

/* The one symbol a plugin defines (with PXL_PLUGIN_EXPORT). */
extern const struct pxl_plugin pxl_plugin;

#define PXL_PLUGIN_HDR                                                         \
        {                                                                      \
                PXL_PLUGIN_MAGIC, PXL_ABI_MAJOR, PXL_ABI_MINOR,                \
                        (uint32_t)sizeof(struct pxl_plugin), PXL_BUILD_SIG     \
        }

/* ---- messages ------------------------------------------------------- */

/* Borrowed, NUL-terminated; "" for raw messages. */
const char *pxl_msg_type(const struct pxl_msg *msg);
const char *pxl_msg_action(const struct pxl_msg *msg);
/* True when the request had a "data" key (its value may be JSON null). */
bool pxl_msg_has_data(const struct pxl_msg *msg);
/* Borrowed; parsed on first use. NULL for absent data and for JSON null. */
struct json_object *pxl_msg_data(const struct pxl_msg *msg);
/*
 * Borrowed: the raw JSON text of "data" as the client sent it (already
 * checked strict JSON), and its length; NULL when there is no "data".
 * Costs nothing: use it to pass data on without building objects.
 */
const char *pxl_msg_data_json(const struct pxl_msg *msg, size_t *len);
/* Borrowed: the whole message payload as received. */
const uint8_t *pxl_msg_payload(const struct pxl_msg *msg, size_t *len);
bool pxl_msg_is_binary(const struct pxl_msg *msg);

/* ---- context -------------------------------------------------------- */

/* Borrowed; the app's name from the config. */
const char *pxl_ctx_app_name(const struct pxl_ctx *ctx);
/* Borrowed; the whole app file, validated, for framework keys (rooms.*). */
const config_t *pxl_ctx_config(const struct pxl_ctx *ctx);
/* Borrowed; the calling client's id, or NULL outside a client call. */
const char *pxl_ctx_client_id(const struct pxl_ctx *ctx);
/* Per-worker state of the calling plugin (set in init). */
void *pxl_ctx_plugin_data(const struct pxl_ctx *ctx);
void pxl_ctx_set_plugin_data(struct pxl_ctx *ctx, void *data);
/* From init: report why init failed; pxl-serve prints it and refuses to start.
 */
int pxl_ctx_fail(struct pxl_ctx *ctx, const char *fmt, ...) PXL_PRINTF(2, 3);

/*
 * The calling plugin's settings (ABI 1.2), checked at load: the app
 * file's value, or the table's default. name must be a row of the
 * plugin's table with that type; otherwise an ERR line is logged and
 * the result is 0, false or NULL. Usable from init on, in every call.
 */
int64_t pxl_setting_int(const struct pxl_ctx *ctx, const char *name);
bool pxl_setting_bool(const struct pxl_ctx *ctx, const char *name);
/* Borrowed, valid until the plugin's fini returns; NULL when unset
 * without a default. */
const char *pxl_setting_string(const struct pxl_ctx *ctx, const char *name);

/* Set the reply's "response". Takes obj; NULL sends "response":null. */
int pxl_reply(struct pxl_ctx *ctx, struct json_object *obj);
/*
 * Set the reply's "response" to JSON text, e.g. from pxl_msg_data_json.
 * Borrows json until the handler returns; text that is not strict JSON
 * is refused (the reply becomes an error).
 */
int pxl_reply_json(struct pxl_ctx *ctx, const char *json, size_t len);
/* Set the handler's error text; returns PXL_ERR so `return pxl_fail(...)` reads
 * well. */
int pxl_fail(struct pxl_ctx *ctx, const char *fmt, ...) PXL_PRINTF(2, 3);

/*
 * Take a handle to reply later; the handler then returns PXL_DEFERRED.
 * The handle belongs to the plugin until one of pxl_defer_reply,
 * pxl_defer_fail or pxl_defer_cancel consumes it. A reply to a client
 * that has gone is dropped (and counted). A handler that takes one and
 * then returns anything but PXL_DEFERRED has it cancelled for it, and
 * may also end it itself first (pxl_defer_cancel after a call that
 * failed, then pxl_fail): either way it is ended once.
 */
struct pxl_defer *pxl_defer(struct pxl_ctx *ctx);
int pxl_defer_reply(struct pxl_defer *d,
                    struct json_object *obj); /* takes obj */
int pxl_defer_fail(struct pxl_defer *d, const char *fmt, ...) PXL_PRINTF(2, 3);
void pxl_defer_cancel(struct pxl_defer *d);
/* True while the client that made the request is still connected. */
bool pxl_defer_alive(const struct pxl_defer *d);

/* Send a JSON message to the calling client. Does not take obj. */
int pxl_send_json(struct pxl_ctx *ctx, const struct json_object *obj);
/* Send bytes to the calling client as one text or binary message. */
int pxl_send_raw(struct pxl_ctx *ctx, const void *buf, size_t len, bool binary);
/* Close the calling client with a code and reason (reason may be NULL). */
int pxl_close(struct pxl_ctx *ctx, int code, const char *reason);

/*
 * The event loop of this worker (a struct event_base *), for a plugin
 * that uses libevent itself; the timers below need none of it.
 */
void *pxl_ctx_event_base(const struct pxl_ctx *ctx);

/* ---- timers (ABI 1.5) ------------------------------------------------- */

/*
 * A timer runs fn(ctx, arg) on the worker's loop, later: never inside
 * the call that armed it, and only on the thread of that loop (arm them
 * from init, handlers, hooks and callbacks; never from a blocking
 * processor). ctx is a context of the plugin that armed the timer, with
 * no client, like init's; arg is the plugin's (pxl never frees it).
 *
 * A timer belongs to the plugin that armed it. pxl frees a one-shot
 * timer once its fn has returned; a repeating one when cancelled. After
 * the plugin's fini returns, pxl frees the timers it left without
 * running them (fini itself may still cancel them): a forgotten timer
 * leaks nothing of pxl's and never runs after fini, but what its arg
 * holds is the plugin's to free (fini sees every timer still armed).
 * Every worker runs init: a timer armed there runs on each worker, and
 * its sends reach the whole app, so once per worker.
 */
struct pxl_timer;
typedef void pxl_timer_fn(struct pxl_ctx *ctx, void *arg);

/*
 * Run fn(ctx, arg) once, ms milliseconds from now (0: on the next turn
 * of the loop) as the loop's clock counts, which ticks every few ms.
 * NULL when out of memory, for a NULL fn or a ctx of no plugin, or
 * after the plugin's fini has returned.
 */
struct pxl_timer *pxl_timer_after(struct pxl_ctx *ctx, unsigned ms,
                                  pxl_timer_fn *fn, void *arg);
/* Run fn(ctx, arg) every ms milliseconds (0 counts as 1) until cancelled. */
struct pxl_timer *pxl_timer_every(struct pxl_ctx *ctx, unsigned ms,
                                  pxl_timer_fn *fn, void *arg);
/*
 * Stop t and free it; NULL is ignored. Valid until t is freed: for a
 * one-shot timer, until its fn has returned (inside fn, cancelling is
 * allowed and does nothing more), for a repeating one until cancelled
 * (inside fn it stops the timer: fn does not run again). Cancelling a
 * one-shot timer after it ran is a use after free: clear your pointer
 * to it in fn.
 */
void pxl_timer_cancel(struct pxl_timer *t);

/* ---- clients ---------------------------------------------------------- */

/*
 * A client record: its id, connection, last activity, user (from the JWT),
 * rooms and metadata. Borrowed: valid until the calling handler or hook
 * returns. Every function here takes client ids, never connections, so a
 * caller need not know where a client is connected.
 */
struct pxl_client;

/* The client that made the current request (NULL in init/fini). */
const struct pxl_client *pxl_ctx_client(const struct pxl_ctx *ctx);
/* Look a client up by id; NULL when unknown. */
const struct pxl_client *pxl_client_find(const struct pxl_ctx *ctx,
                                         const char *client_id);
/* Borrowed, like the record: 32 lowercase hex characters. */
const char *pxl_client_id(const struct pxl_client *c);
/* True when the client is connected to this worker. */
bool pxl_client_is_local(const struct pxl_client *c);
/* ABI 1.6: true when it took over a session (system/resume, resume). */
bool pxl_client_resumed(const struct pxl_client *c);
/* Milliseconds since the epoch of its last message or ping. */
int64_t pxl_client_last_activity(const struct pxl_client *c);
/* Borrowed; NULL when anonymous. userId is a JSON integer or string. */
struct json_object *pxl_client_user_id(const struct pxl_client *c);
/* Borrowed; the whole JWT payload, NULL when anonymous. */
struct json_object *pxl_client_token(const struct pxl_client *c);
/* Borrowed; the value of metadata key, NULL when unset. */
struct json_object *pxl_client_meta(const struct pxl_client *c,
                                    const char *key);
/*
 * Set (value != NULL, takes it) or delete (value NULL) a metadata key of a
 * client. Visible to every plugin. PXL_EINVAL for an unknown client.
 */
int pxl_client_set_meta(struct pxl_ctx *ctx, const char *client_id,
                        const char *key, struct json_object *value);

/* Return non-zero to stop an iteration. */
typedef int pxl_client_fn(const struct pxl_client *c, void *arg);
/* Call fn for every client (connected here or elsewhere). */
int pxl_clients_foreach(const struct pxl_ctx *ctx, pxl_client_fn *fn,
                        void *arg);
/* Call fn for every client of a user id (a JSON integer or string). */
int pxl_user_clients(const struct pxl_ctx *ctx,
                     const struct json_object *user_id, pxl_client_fn *fn,
                     void *arg);
size_t pxl_client_count(const struct pxl_ctx *ctx);

/* Rooms a client is in, in the order it joined them (room is borrowed). */
typedef int pxl_room_fn(const char *room, void *arg);
int pxl_client_rooms(const struct pxl_client *c, pxl_room_fn *fn, void *arg);

/* ---- sending ---------------------------------------------------------- */

/*
 * A new message {"type":T,"action":A,"data":D} for the send functions
 * (the caller owns it). Takes data; NULL data gives "data":null.
 */
struct json_object *pxl_msg_new(const char *type, const char *action,
                                struct json_object *data);

/*
 * Every send serialises obj once and frames it once; all recipients share
 * those bytes. None of them takes obj. They return the number of clients
 * the message was queued for (>= 0), or a negative code.
 */
int pxl_send_to_client(struct pxl_ctx *ctx, const char *client_id,
                       const struct json_object *obj);
int pxl_send_to_users(struct pxl_ctx *ctx,
                      const struct json_object *const *user_ids, size_t n,
                      const struct json_object *obj);
int pxl_send_to_room(struct pxl_ctx *ctx, const char *room,
                     const struct json_object *obj,
                     const char *exclude_client_id);
/* pred may be NULL (everybody); exclude_client_id may be NULL. */
typedef bool pxl_client_pred(const struct pxl_client *c, void *arg);
int pxl_send_to_all(struct pxl_ctx *ctx, const struct json_object *obj,
                    const char *exclude_client_id, pxl_client_pred *pred,
                    void *arg);
/* Close a client with a code (1000-4999) and reason (may be NULL). */
int pxl_disconnect_client(struct pxl_ctx *ctx, const char *client_id,
                          int code, const char *reason);

/* ---- rooms ------------------------------------------------------------ */

/* Statuses of join/leave besides PXL_OK: nothing changed. */
#define PXL_UNCHANGED 2

/*
 * The PROTOCOL.md text for a bad room name, or NULL when name (a JSON
 * value, possibly NULL) is a usable room name: "Room name is required",
 * "Invalid room name" (contains U+0000), "Room name is too long".
 */
const char *pxl_room_name_error(const struct pxl_ctx *ctx,
                                const struct json_object *name);
/*
 * True when value (a string, or a number as its text) is at most
 * rooms.max_member_field_length bytes: what a membership may carry as
 * its userId, and what system/joinRoom accepts as userType and username.
 */
bool pxl_room_member_field_ok(const struct pxl_ctx *ctx,
                              const struct json_object *value);
/*
 * Put a client in a room. PXL_OK when it joined, PXL_UNCHANGED when it was
 * already a member, PXL_EDECLINED when it is in rooms.max_per_client rooms,
 * PXL_EINVAL for an unknown client or a bad name. With rooms.multiple =
 * false the client first leaves its current room (and is told so).
 */
int pxl_room_join(struct pxl_ctx *ctx, const char *client_id,
                  const char *room);
/*
 * The same, with the userId this membership shows (takes user_id);
 * PXL_EINVAL also for a user_id that is not pxl_room_member_field_ok.
 */
int pxl_room_join_as(struct pxl_ctx *ctx, const char *client_id,
                     const char *room, struct json_object *user_id);
/*
 * Take a client out of a room; it gets {"type":"user","action":"leftRoom"}.
 * PXL_OK, or PXL_UNCHANGED when it was not a member.
 */
int pxl_room_leave(struct pxl_ctx *ctx, const char *client_id,
                   const char *room);
bool pxl_room_has(const struct pxl_ctx *ctx, const char *room,
                  const char *client_id);
/* A member and the userId it joined with (borrowed). */
typedef int pxl_member_fn(const struct pxl_client *c,
                          const struct json_object *user_id, void *arg);
/*
 * With rooms.history (ABI 1.6): the room's kept messages as
 * {"roomName":R,"epoch":E,"messages":[FRAME...]}, oldest first, each the
 * JSON object members got (with its "pos"); after position since
 * ("EPOCH:OFFSET"; NULL, or another epoch: from the oldest kept), at
 * most limit (0, or more than rooms.history.size: that size). Takes
 * nothing; the caller owns the result. NULL when history is off or out
 * of memory. Membership is the caller's to check (system/history).
 */
struct json_object *pxl_room_history(const struct pxl_ctx *ctx,
                                     const char *room, const char *since,
                                     unsigned limit);
/*
 * With resume (ABI 1.6): system/resume for the calling connection, which
 * takes over the session token names (PROTOCOL.md, "History and
 * resume"): its clientId becomes the old one, metadata and rooms come
 * back, and for each room of rooms (an object mapping names to the last
 * "EPOCH:OFFSET" seen; may be NULL) the frames it missed are queued
 * before this returns. The reply to give: {"success":true,"clientId",
 * "resumeToken","rooms":{R:{"recovered"}}}, or {"success":false,"error":
 * "Invalid resume token" | "Session expired"} with the connection as it
 * was. Borrows token and rooms; the caller owns the result. NULL when
 * resume is off, outside a client's request, or out of memory.
 */
struct json_object *pxl_session_resume(struct pxl_ctx *ctx, const char *token,
                                       struct json_object *rooms);
/* Call fn for every member of a room (in no particular order). */
int pxl_room_members(const struct pxl_ctx *ctx, const char *room,
                     pxl_member_fn *fn, void *arg);
size_t pxl_room_count(const struct pxl_ctx *ctx);

/* ---- bus -------------------------------------------------------------- */

/*
 * Publish an event to the subscribers of every worker (with one worker and
 * no Redis, this worker's). name must not be one of the framework's
 * channels. msg is borrowed. Returns the number of subscribers that ran
 * here, or a negative code.
 */
int pxl_publish(struct pxl_ctx *ctx, const char *name,
                const struct json_object *msg);

/* ---- Redis ------------------------------------------------------------ */

/*
 * With a redis section, every worker has a connection to Redis on its
 * event loop, and plugins may use it. Nothing here blocks: replies and
 * messages arrive in callbacks, with a ctx that has no client (keep a
 * pxl_defer in arg to answer a request). Without a redis section every
 * call returns PXL_ECLOSED; while Redis is down, commands and publishes
 * do (fn never runs), and subscriptions wait for it.
 */

/*
 * A command's answer. reply is the answer as JSON: a string (status and
 * bulk replies), an integer, an array, or NULL for a nil reply; error is
 * NULL, or Redis's error text ("ERR ..."), or "Redis connection lost"
 * when the answer cannot come. Both are borrowed for the call.
 */
typedef void pxl_redis_reply_fn(struct pxl_ctx *ctx,
                                const struct json_object *reply,
                                const char *error, void *arg);
/*
 * Send a command: argc arguments, each argv[i] of argvlen[i] bytes
 * (binary-safe), or NUL-terminated when argvlen is NULL. fn may be NULL.
 * Name your keys under pxl_redis_prefix(). PXL_OK, PXL_ECLOSED,
 * PXL_EINVAL, PXL_ENOMEM.
 */
int pxl_redis_command(struct pxl_ctx *ctx, pxl_redis_reply_fn *fn, void *arg,
                      int argc, const char *const *argv,
                      const size_t *argvlen);
/*
 * Borrowed: the app's namespace in Redis, "pxl:" app name ":"; NULL
 * without a redis section. The framework's names are under it; a
 * plugin's keys belong under it + "u:" (the channels below already are).
 */
const char *pxl_redis_prefix(const struct pxl_ctx *ctx);

/*
 * A message on a plugin channel; channel is the name given to subscribe.
 * Every subscribed worker runs its fn, so, as in a subscriber, sends from
 * fn reach only this worker's clients.
 */
typedef void pxl_redis_message_fn(struct pxl_ctx *ctx, const char *channel,
                                  const char *msg, size_t len, void *arg);
/*
 * Plugin channels, namespaced: channel "jobs" is PREFIX "u:jobs" in
 * Redis, so apps sharing a Redis do not hear each other. A subscription
 * lives until unsubscribed (or the worker stops), across reconnects;
 * subscribing while Redis is down is allowed and takes effect once it is
 * up. One fn per plugin and channel: subscribing again replaces it.
 */
int pxl_redis_subscribe(struct pxl_ctx *ctx, const char *channel,
                        pxl_redis_message_fn *fn, void *arg);
int pxl_redis_unsubscribe(struct pxl_ctx *ctx, const char *channel);
/*
 * Publish len bytes on a plugin channel (to every worker subscribed to
 * it). PXL_OK once queued; while Redis is down the message is dropped,
 * counted in redisDropped, and PXL_ECLOSED returned.
 */
int pxl_redis_publish(struct pxl_ctx *ctx, const char *channel,
                      const void *msg, size_t len);

/* ---- database --------------------------------------------------------- */

/*
 * With a database group in the app file, every worker reaches the app's
 * database: an SQLite file (the default) or PostgreSQL. Nothing here
 * blocks: a query runs on a pool (PostgreSQL connections on the worker's
 * loop, or SQLite threads) and its result arrives in a callback, with a
 * ctx that has no client (keep a pxl_defer in arg to answer a request).
 * Without a database group every call returns PXL_ECLOSED.
 *
 * SQL is one statement with placeholders $1..$n on both back ends; the
 * parameters are a JSON array, element k for $k+1 (params may be NULL
 * for none): null, true/false, numbers (sent as their text, so big
 * integers and decimals keep every digit), strings (text without NUL
 * bytes), and pxl_db_bytes() values for binary data. Never build SQL
 * from strings. Statements are prepared once per connection and cached
 * by their text.
 *
 * Every callback runs exactly once, whatever happens: with the result,
 * or with an error ("database unavailable" while the server is down,
 * "database busy" past database.max_pending queued queries, the
 * server's own text otherwise).
 */
struct pxl_db_result; /* borrowed, valid only during the callback */
struct pxl_db_tx;     /* a transaction, owned by the plugin until ended */

typedef void pxl_db_result_fn(struct pxl_ctx *ctx,
                              const struct pxl_db_result *res, void *arg);

/*
 * Run one statement; fn (may be NULL) gets the result, later, from the
 * loop: never inside this call, even when the query fails at once (a
 * bad parameter, "database busy"). params is borrowed. PXL_OK once
 * queued; PXL_ECLOSED without a database, PXL_EINVAL for a NULL sql or
 * a params that is not an array, PXL_ENOMEM (fn never runs on these).
 * A query outlives the request's client: fn runs even when it has
 * gone (a pxl_defer reply to it is then dropped and counted). Queries
 * not awaited run in no promised order (a pool runs them side by side):
 * issue the next from the callback, or use a transaction, for order.
 * Transaction statements (BEGIN, COMMIT, ROLLBACK...) and empty SQL
 * are refused here: use the transaction functions below.
 */
int pxl_db_query(struct pxl_ctx *ctx, const char *sql,
                 const struct json_object *params, pxl_db_result_fn *fn,
                 void *arg);

/*
 * A parameter of binary data (bytea in PostgreSQL, a BLOB in SQLite):
 * a new JSON string of len bytes marked as binary, to put in a params
 * array (the array takes it). NULL when out of memory.
 */
struct json_object *pxl_db_bytes(const void *buf, size_t len);

/* NULL on success; else the error text (borrowed), for an error reply. */
const char *pxl_db_error(const struct pxl_db_result *res);
/*
 * The SQLSTATE of a failure ("23505" unique violation, "23503" foreign
 * key, "23502" not null, "23514" check, "57014" statement timeout...),
 * SQLite's constraint errors mapped to the same codes; "" when none.
 */
const char *pxl_db_sqlstate(const struct pxl_db_result *res);
size_t pxl_db_rows(const struct pxl_db_result *res);
size_t pxl_db_columns(const struct pxl_db_result *res);
/* Rows inserted, updated or deleted by the statement (0 for a SELECT). */
int64_t pxl_db_affected(const struct pxl_db_result *res);
/* Borrowed; NULL past the last column. */
const char *pxl_db_column_name(const struct pxl_db_result *res, size_t col);
/*
 * Borrowed: a value in its text form (binary data as "\x" and hex
 * digits), with its length in *len when len is not NULL; NULL for SQL
 * NULL or out of range.
 */
const char *pxl_db_value(const struct pxl_db_result *res, size_t row,
                         size_t col, size_t *len);
/*
 * New JSON (the caller owns it): one row as an object of column name to
 * value, or every row as an array of such objects. Numbers stay numbers
 * (with their digits), booleans booleans, PostgreSQL json/jsonb values
 * JSON, SQL NULL null, anything else a string. NULL when out of memory
 * or out of range.
 */
struct json_object *pxl_db_row_json(const struct pxl_db_result *res,
                                    size_t row);
struct json_object *pxl_db_rows_json(const struct pxl_db_result *res);

/*
 * Transactions. pxl_db_begin returns a handle at once; BEGIN, then each
 * pxl_db_tx_query, run in call order on one connection reserved for the
 * transaction (on SQLite: the writer). After a statement fails, the
 * following ones fail at once and commit rolls back. pxl_db_commit and
 * pxl_db_rollback end the transaction and consume the handle; their fn
 * (may be NULL) gets the outcome: an error when the commit did not
 * happen. When the client whose request began it disconnects, the
 * transaction is rolled back at once (its connection goes back to the
 * pool) and every later callback on it says "transaction rolled back:
 * the client disconnected"; the handle stays the plugin's to end with
 * pxl_db_commit or pxl_db_rollback, which then only frees it. The same
 * at shutdown ("database stopped"): after the worker stopped (in fini,
 * say), ending a handle frees it and returns PXL_ECLOSED, fn unrun.
 *
 * A statement that could not be queued (pxl_db_tx_query failing) fails
 * the transaction: a commit then rolls back. The error a commit reports
 * after a failed statement carries that statement's SQLSTATE. A commit
 * or rollback asked for before the client left still runs.
 *
 * pxl_db_begin: NULL without a database or memory. The others: PXL_OK,
 * PXL_EINVAL, PXL_ENOMEM as pxl_db_query. Commit and rollback consume
 * tx even when they fail: the handle must not be used after either
 * call (pxl frees it once its last callback has run).
 */
struct pxl_db_tx *pxl_db_begin(struct pxl_ctx *ctx);
int pxl_db_tx_query(struct pxl_db_tx *tx, const char *sql,
                    const struct json_object *params, pxl_db_result_fn *fn,
                    void *arg);
int pxl_db_commit(struct pxl_db_tx *tx, pxl_db_result_fn *fn, void *arg);
int pxl_db_rollback(struct pxl_db_tx *tx, pxl_db_result_fn *fn, void *arg);

/* ---- queue ------------------------------------------------------------ */

/*
 * Background jobs: a handler (or a subscriber, a processor, init) adds a
 * job to a named queue; the processor a plugin declares for that queue
 * runs it later, on some worker, and the bus tells every worker how it
 * ended: jobCompleted {queue, id, attempt, result}, jobFailed {queue,
 * id, attempt, error, dead, and retryAt (ms) while a retry is left},
 * jobProgress {queue, id, attempt, progress} (see pxl-protocol(7)).
 * A job that fails is retried after its backoff while attempts remain,
 * then kept as dead until pxl-jobs(1) retries or removes it.
 *
 * Delivery is at least once: a job whose worker died while running it
 * runs again after queue.stalled_after. Processors must be idempotent.
 * Jobs live in the app's SQLite database, or in a file of their own
 * (queue.path) without one, so they survive restarts.
 */
struct pxl_job_options {
        /*
         * The job's id; NULL: a new unique one. Adding an id the queue
         * already has adds nothing and reports the existing job.
         */
        const char *id;
        uint64_t delay_ms; /* run no sooner than this from now */
        int64_t run_at_ms; /* or at this time (ms since the epoch); 0 = now */
        unsigned attempts; /* runs in all before it is dead; 0 = 3 */
        unsigned backoff_ms;  /* wait before a retry; 0 = 1000 */
        bool backoff_exponential; /* backoff_ms * 2^(attempt-1) */
        int priority;         /* higher runs first; then oldest first */
        unsigned timeout_ms;  /* 0 = the processor's, else queue.timeout */
        /* completed jobs kept for pxl-jobs; 0 = queue.keep_completed */
        unsigned keep_completed;
};

/*
 * A job's addition: id is the job's (borrowed), existed true when the
 * id was there already; error NULL, or why the job was not added.
 */
typedef void pxl_job_added_fn(struct pxl_ctx *ctx, const char *id,
                              bool existed, const char *error, void *arg);

/*
 * Add a job to queue with payload (borrowed; NULL is null), options
 * (NULL for the defaults). fn (may be NULL) runs later, from the loop,
 * once the job is stored (or could not be). PXL_OK once queued;
 * PXL_EINVAL for a queue no plugin processes, an id that is not 1 to
 * 128 printable bytes or a payload over queue.max_payload (the reason
 * logged); PXL_ECLOSED without a
 * queue (no plugin declares processors, or the worker is stopping);
 * PXL_EAGAIN while the jobs' Redis is down ("queue unavailable" logged:
 * nothing is stored, add it again later); PXL_ENOMEM. fn never runs on
 * these. A processor runs with a ctx that has no client. A delay runs
 * from the call; delays past ten years are cut to ten years.
 */
int pxl_job_add(struct pxl_ctx *ctx, const char *queue,
                const struct json_object *payload,
                const struct pxl_job_options *options, pxl_job_added_fn *fn,
                void *arg);

/*
 * Add a job as part of a database transaction (pxl_db_begin): it exists
 * if and only if the transaction commits, and runs only after. Where
 * the jobs live in the app's SQLite database it is a row of the jobs
 * table; with Redis it is a row of the outbox table pxl_job_outbox in
 * the app's database (PostgreSQL or SQLite), moved to Redis after the
 * commit. PXL_EINVAL where the jobs are in a SQLite file of their own
 * (PostgreSQL without Redis); PXL_ECLOSED for a transaction already
 * ended. fn runs once the job is written in the transaction (it is not
 * visible before the commit), with a ctx of tx's plugin; with Redis,
 * existed tells only of the outbox. Otherwise as pxl_job_add.
 */
int pxl_job_add_tx(struct pxl_db_tx *tx, const char *queue,
                   const struct json_object *payload,
                   const struct pxl_job_options *options, pxl_job_added_fn *fn,
                   void *arg);

/*
 * Blocking processors (pxl_processor.blocking) run on a pool thread of
 * the worker (queue.threads of them), with ctx NULL; pxl owns the loop
 * and everything on it, and the thread touches none of it. Such a
 * processor may call, and only for its own job:
 *   pxl_job_id, pxl_job_queue, pxl_job_payload, pxl_job_attempt (the
 *     job does not change while it runs; the payload is the thread's);
 *   pxl_job_progress, pxl_job_complete, pxl_job_fail: they hand over to
 *     the loop, which publishes and records them in order, and return
 *     at once (PXL_OK once handed over, PXL_ECLOSED once the job has
 *     ended, PXL_ENOMEM when progress could not be handed over);
 *   pxl_log with a NULL ctx;
 *   json-c on the payload and on objects of its own.
 * Nothing else of this header: no pxl_job_add, no database, no sending.
 * A job it has not ended when it returns ends as a loop processor's
 * does (PXL_OK completes it, a negative code fails it), except that
 * PXL_DEFERRED is not allowed and fails it too. The job's timeout
 * counts from the claim, waiting for a free thread included; past it
 * the job has failed and its end is ignored (PXL_ECLOSED), while the
 * thread runs on until the processor returns.
 * A worker that stops waits for the processors that run; jobs waiting
 * for a thread are given back to the queue.
 */

/* Borrowed, valid until the job ends. */
const char *pxl_job_id(const struct pxl_job *job);
const char *pxl_job_queue(const struct pxl_job *job);
struct json_object *pxl_job_payload(const struct pxl_job *job);
/* 1 on the first run, 2 on the first retry... */
unsigned pxl_job_attempt(const struct pxl_job *job);
/* Publish jobProgress {queue, id, attempt, progress} (borrowed) on the bus. */
int pxl_job_progress(struct pxl_job *job, const struct json_object *progress);
/*
 * End the job: completed, with result (taken; may be NULL), or failed
 * with a reason. Either consumes job. After the job's timeout it has
 * already failed: these then only free it, PXL_ECLOSED; the same for a
 * job still running when its worker stopped (it was given back to the
 * queue, and its handle kept until ended, or until after fini).
 */
int pxl_job_complete(struct pxl_job *job, struct json_object *result);
int pxl_job_fail(struct pxl_job *job, const char *fmt, ...) PXL_PRINTF(2, 3);

/* ---- metrics ---------------------------------------------------------- */

/*
 * A snapshot of this worker's counters as a new JSON object (the caller
 * owns it): connections, rooms, messages and bytes in and out, connects,
 * disconnects, errors by kind, auth failures, and per-second rates;
 * with a database group "database", with processors "queues" (keys in
 * pxl-plugin(3)).
 */
struct json_object *pxl_metrics(const struct pxl_ctx *ctx);

/* ---- outbound WebSocket client ---------------------------------------- */

/*
 * A client connection to a WebSocket server (another pxl server, or any
 * RFC 6455 server) on the caller's libevent loop, with the same
 * {type, action, data} routing as the server side: messages go to the
 * handler routed for their (type, action), replies included (their
 * "response" reads as data), everything else to on_message.
 *
 * Link life: pxl_wsc_new connects at once, asynchronously. When a
 * connection (or an attempt) ends without pxl_wsc_close, on_close runs,
 * then, while tries remain, on_reconnecting announces the next attempt
 * after a delay of min(retry_delay_ms * 2^n, retry_max_delay_ms)
 * (1 s, 2 s, 4 s ... 30 s); when they are used up, on_reconnect_failed.
 * Opening resets the count. pxl_wsc_close stops all of it.
 *
 * Callbacks may call any pxl_wsc function on their own client, including
 * pxl_wsc_free. Messages are borrowed, valid until the handler returns.
 * A client belongs to its loop's thread; nothing here is thread-safe.
 */
struct pxl_wsc;
struct event_base;

/* The upgrade succeeded (101 checked); sending works from here on. */
typedef void pxl_wsc_open_fn(struct pxl_wsc *w, void *arg);
/*
 * A connection or an attempt ended: code is the server's close code
 * (1005 for a close without one), or 1006 when no close frame came
 * (refused, reset, timeout, bad handshake). reason is borrowed: the
 * server's close reason, or our error text, never NULL.
 */
typedef void pxl_wsc_close_fn(struct pxl_wsc *w, int code, const char *reason,
                              void *arg);
/* Attempt number `attempt` (1, 2, ...) starts in delay_ms. */
typedef void pxl_wsc_reconnecting_fn(struct pxl_wsc *w, unsigned attempt,
                                     unsigned delay_ms, void *arg);
/* Gave up after `attempts` failed tries; the client stays closed. */
typedef void pxl_wsc_reconnect_failed_fn(struct pxl_wsc *w, unsigned attempts,
                                         void *arg);
/*
 * A message. pxl_msg_type/pxl_msg_action give its envelope ("" when it
 * is not a JSON object with string type and action), pxl_msg_data its
 * "data", or its "response" for a reply, pxl_msg_payload the raw bytes.
 */
typedef void pxl_wsc_msg_fn(struct pxl_wsc *w, const struct pxl_msg *msg,
                            void *arg);

struct pxl_wsc_route {
        const char *type;
        const char *action;
        pxl_wsc_msg_fn *fn;
};
#define PXL_WSC_ROUTE_END                                                      \
        {                                                                      \
                NULL, NULL, NULL                                               \
        }

/* Zero-initialise; every field but url is optional (0/NULL = default). */
struct pxl_wsc_options {
        /* ws://host[:port][/path][?query] or wss://...; IPv6 in [ ] */
        const char *url;
        const char *token;        /* sent as Authorization: Bearer TOKEN */
        const char *origin;       /* sent as Origin */
        const char *bind_address; /* numeric local address to connect from */
        size_t max_message_size;  /* inclusive; default 4 MiB */
        /* Reconnect tries after a failure: 0 = never, -1 = forever. */
        int max_retries;
        unsigned retry_delay_ms;     /* first delay; default 1000 */
        unsigned retry_max_delay_ms; /* cap; default 30000 */
        unsigned connect_timeout_ms; /* TCP + TLS + 101; default 10000 */
        unsigned close_timeout_ms;   /* close handshake; default 5000 */
        /* wss:// only: a CA file instead of the system's, or no checks. */
        const char *tls_ca_file;
        bool tls_insecure; /* no certificate or host name check */
        /* Static routes, borrowed for the client's life; may be NULL. */
        const struct pxl_wsc_route *routes;
        pxl_wsc_open_fn *on_open;
        pxl_wsc_close_fn *on_close;
        pxl_wsc_reconnecting_fn *on_reconnecting;
        pxl_wsc_reconnect_failed_fn *on_reconnect_failed;
        pxl_wsc_msg_fn *on_message; /* unrouted and non-JSON messages */
        void *arg;                  /* passed to every callback */
};

/*
 * Create a client and start connecting on base (borrowed; it must outlive
 * the client). opts is copied. Returns NULL on failure (bad URL or
 * option, unknown host, no memory, TLS setup, no socket), with the
 * reason in err (may be NULL). A host name is resolved here, once, with
 * the system resolver, which may block: prefer numeric addresses in
 * handlers. Reconnects reuse the addresses.
 */
struct pxl_wsc *pxl_wsc_new(struct event_base *base,
                            const struct pxl_wsc_options *opts, char *err,
                            size_t errlen);
/*
 * Route (type, action) to fn, replacing an earlier route for the pair
 * (fn NULL removes it). The strings are copied. Checked before
 * opts.routes. PXL_OK, PXL_EINVAL or PXL_ENOMEM.
 */
int pxl_wsc_route(struct pxl_wsc *w, const char *type, const char *action,
                  pxl_wsc_msg_fn *fn);
/*
 * Send {"type","action","data","requestId"}: data and request_id are
 * borrowed (neither is taken) and left out when NULL; request_id should
 * be a string or a number. PXL_ECLOSED unless open, PXL_ENOMEM.
 */
int pxl_wsc_send(struct pxl_wsc *w, const char *type, const char *action,
                 const struct json_object *data,
                 const struct json_object *request_id);
/* Send len bytes as one text (or binary) message, copied and masked. */
int pxl_wsc_send_text(struct pxl_wsc *w, const void *buf, size_t len);
int pxl_wsc_send_binary(struct pxl_wsc *w, const void *buf, size_t len);
/*
 * Close for good: no reconnect from now on. When open, send a close
 * frame (code 1000, another code RFC 6455 lets a peer send such as
 * 3000..4999, or 0 for none; reason may be NULL) and call on_close when
 * the server has answered; otherwise stop at once, without callbacks.
 * PXL_EINVAL for any other code.
 */
int pxl_wsc_close(struct pxl_wsc *w, int code, const char *reason);
/* Drop the connection at once (no close handshake) and free w. */
void pxl_wsc_free(struct pxl_wsc *w);
bool pxl_wsc_is_open(const struct pxl_wsc *w);
/* Bytes queued for the server and not yet written. */
size_t pxl_wsc_pending(const struct pxl_wsc *w);
/* Borrowed: the clientId from system/connected, or "" until it came. */
const char *pxl_wsc_client_id(const struct pxl_wsc *w);
/* Borrowed: why the last attempt or connection ended ("" while one is
 * under way and well). */
const char *pxl_wsc_error(const struct pxl_wsc *w);
void *pxl_wsc_arg(const struct pxl_wsc *w);

/*
 * For messages given to pxl_wsc callbacks only. Borrowed spans of the
 * raw JSON text: data (or response), and requestId (a string keeps its
 * quotes). NULL with *len 0 when absent.
 */
const char *pxl_wsc_msg_data_json(const struct pxl_msg *msg, size_t *len);
const char *pxl_wsc_msg_request_id(const struct pxl_msg *msg, size_t *len);
/* True when the message is a reply (it had "response", not "data"). */
bool pxl_wsc_msg_is_reply(const struct pxl_msg *msg);

/* ---- logging -------------------------------------------------------- */

/* One logfmt line on stderr; the context (plugin, client) is added. */
void pxl_log(const struct pxl_ctx *ctx, int level, const char *fmt, ...)
        PXL_PRINTF(3, 4);

#ifdef __cplusplus
}
#endif
#endif /* PXL_PXL_H */
