/*
 * fuzz_conn.c - libFuzzer harness for whole server-side connections: the
 * HTTP upgrade, frames in and out, the router, and the system, bench,
 * chat and echo plugins (compiled in, not dlopen'ed), over socket pairs
 * into a worker set up by hand (no listener, no signals, no Redis), so
 * that state carried between frames, handlers and clients is fuzzed too.
 *
 * Input: one byte choosing the app (bit 0: app 0 or app 1, below), then
 * segments separated by SEP. A segment is a control byte and the bytes
 * one client writes:
 *   bit 0     the client: A or B (opened on first use, and again after
 *             the server hung up on it)
 *   bits 1-3  write in pieces of 1, 2, 3, 5, 8, 17 or 64 bytes (0: all at
 *             once), the event loop running between writes; past 256
 *             small writes in an input, the rest of a segment goes at once
 *   bits 4-6  then: 1 heartbeat sweep (ping), 2 idle sweep (4000 to all,
 *             as max_idle is 0), 3 shutdown (1001 to all), 4 the client
 *             hangs up, 5 it half-closes (SHUT_WR), 6 it stops (or starts
 *             again) reading what the server writes, 7 shutdown and
 *             its timeout at once (1001 to all, then every connection
 *             dropped: what a second signal does)
 *   bit 7     hold: do not run the loop after this segment, so that the
 *             server reads it in the same iteration as the next one (the
 *             other client's, say, or data followed by a hang-up)
 * Both clients then hang up and the loop runs until the server has freed
 * them; the worker must then be empty again (no client, user, room,
 * pooled record or queued connection left over).
 *
 * What the server writes is checked as a client would: an HTTP status
 * line and head; after a 101, well-formed unmasked frames, text frames
 * one strict JSON object with a string "type", nothing after a close.
 * Logging is at "err" only: warnings about fuzzed clients would drown
 * libFuzzer's output.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_bus.h"
#include "pxl_clients.h"
#include "pxl_conf.h"
#include "pxl_conn.h"
#include "pxl_log.h"
#include "pxl_plugin.h"
#include "pxl_router.h"
#include "pxl_server.h"
#include "pxl_ws_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x, why)                                                          \
        do {                                                                   \
                if (!(x)) {                                                    \
                        fprintf(stderr, "fuzz_conn: %s (%s)\n", why, #x);      \
                        abort();                                               \
                }                                                              \
        } while (0)

/* Separates segments; make_conn_seeds.py uses the same bytes. */
#define SEP     "\xffPXL"
#define SEP_LEN 4

/*
 * The plugin descriptors, each compiled from its plugin's source with
 * -Dpxl_plugin=pxl_plugin_NAME (run-fuzzers.sh), since every plugin
 * names its descriptor pxl_plugin. The macro renames the struct tag in
 * those files too; the layout is the same struct pxl_plugin.
 */
extern const struct pxl_plugin pxl_plugin_system, pxl_plugin_bench,
        pxl_plugin_chat, pxl_plugin_echo;

/*
 * fuzzkit: routes for what system and bench never do, so that the
 * fuzzer reaches them too: deferred replies (answered by the harness
 * at the start of the next segment, and after both clients hung up),
 * closes and kicks from the server side, metadata, sends to all, to
 * users and to one client, bus events and hooks that send.
 */
#define MAX_PENDING 8
static struct pending {
        struct pxl_defer *d;
        int how; /* 0 reply, 1 fail, 2 cancel, 3 reply only while alive */
        struct json_object *value;
} pending[MAX_PENDING];
static unsigned npending;

/* data[key], borrowed, or NULL. */
static struct json_object *arg(const struct pxl_msg *msg, const char *key)
{
        struct json_object *d = pxl_msg_data(msg), *v = NULL;

        if (json_object_is_type(d, json_type_object))
                json_object_object_get_ex(d, key, &v);
        return v;
}

static const char *str_arg(const struct pxl_msg *msg, const char *key)
{
        struct json_object *v = arg(msg, key);

        return json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static int int_arg(const struct pxl_msg *msg, const char *key, int def)
{
        struct json_object *v = arg(msg, key);

        return json_object_is_type(v, json_type_int) ? json_object_get_int(v)
                                                     : def;
}

static void resolve_pending(void)
{
        for (unsigned i = 0; i < npending; i++) {
                struct pending *p = &pending[i];

                switch (p->how) {
                case 1:
                        pxl_defer_fail(p->d, "deferred failure %d", (int)i);
                        json_object_put(p->value);
                        break;
                case 2:
                        pxl_defer_cancel(p->d);
                        json_object_put(p->value);
                        break;
                case 3:
                        if (!pxl_defer_alive(p->d)) {
                                pxl_defer_cancel(p->d);
                                json_object_put(p->value);
                                break;
                        }
                        /* fall through */
                default:
                        pxl_defer_reply(p->d, p->value);
                        break;
                }
        }
        npending = 0;
}

/* fuzz/defer {how, value}: answered later by the harness. */
static int fk_defer(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct pending *p;

        if (npending == MAX_PENDING)
                return pxl_fail(ctx, "too many pending");
        p = &pending[npending];
        p->d = pxl_defer(ctx);
        if (p->d == NULL)
                return pxl_fail(ctx, "cannot defer");
        p->how = int_arg(msg, "how", 0) & 3;
        p->value = json_object_get(arg(msg, "value"));
        npending++;
        return PXL_DEFERRED;
}

/* The n-th client (oldest first), or NULL. */
struct nth {
        int n;
        const struct pxl_client *c;
};

static int nth_cb(const struct pxl_client *c, void *arg_)
{
        struct nth *w = arg_;

        if (w->n-- == 0) {
                w->c = c;
                return 1;
        }
        return 0;
}

static const char *client_arg(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        struct nth w = {int_arg(msg, "who", -1), NULL};

        if (w.n < 0)
                return pxl_ctx_client_id(ctx);
        pxl_clients_foreach(ctx, nth_cb, &w);
        return w.c ? pxl_client_id(w.c) : "nobody";
}

/* fuzz/close {code, reason}: the server closes this client. */
static int fk_close(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        int rc = pxl_close(ctx, int_arg(msg, "code", 1000),
                           str_arg(msg, "reason"));

        return rc < 0 ? pxl_fail(ctx, "%s", pxl_strerror(rc)) : PXL_OK;
}

/* fuzz/kick {who, code, reason}: close a client by id. */
static int fk_kick(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        int rc = pxl_disconnect_client(ctx, client_arg(ctx, msg),
                                       int_arg(msg, "code", 4000),
                                       str_arg(msg, "reason"));

        return pxl_reply(ctx, json_object_new_int(rc));
}

/* fuzz/meta {who, key, value}: set (or delete) a key, reply what it is. */
static int fk_meta(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *id = client_arg(ctx, msg), *key = str_arg(msg, "key");
        const struct pxl_client *c;
        int rc;

        if (key == NULL)
                return pxl_fail(ctx, "key is required");
        rc = pxl_client_set_meta(ctx, id, key,
                                 json_object_get(arg(msg, "value")));
        if (rc < 0)
                return pxl_fail(ctx, "%s", pxl_strerror(rc));
        c = pxl_client_find(ctx, id);
        return pxl_reply(ctx,
                         json_object_get(c ? pxl_client_meta(c, key) : NULL));
}

/* fuzz/join {who, room}: put a client (maybe another one) in a room. */
static int fk_join(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *room = str_arg(msg, "room");

        if (room == NULL)
                return pxl_fail(ctx, "room is required");
        return pxl_reply(ctx, json_object_new_int(pxl_room_join(
                                      ctx, client_arg(ctx, msg), room)));
}

/* fuzz/send {to, room, exclude, users, who, data, text}: the sends. */
static int fk_send(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *to = str_arg(msg, "to");
        struct json_object *out, *users = arg(msg, "users");
        int n = 0;

        out = pxl_msg_new("fuzz", "sent", json_object_get(arg(msg, "data")));
        if (to == NULL) {
                n = pxl_send_json(ctx, out);
        } else if (strcmp(to, "all") == 0) {
                n = pxl_send_to_all(ctx, out, str_arg(msg, "exclude"), NULL,
                                    NULL);
        } else if (strcmp(to, "room") == 0) {
                const char *room = str_arg(msg, "room");

                n = room ? pxl_send_to_room(ctx, room, out,
                                            str_arg(msg, "exclude"))
                         : PXL_EINVAL;
        } else if (strcmp(to, "client") == 0) {
                n = pxl_send_to_client(ctx, client_arg(ctx, msg), out);
        } else if (strcmp(to, "users") == 0 &&
                   json_object_is_type(users, json_type_array)) {
                const struct json_object *ids[8];
                size_t k = json_object_array_length(users);

                k = k < 8 ? k : 8;
                for (size_t i = 0; i < k; i++)
                        ids[i] = json_object_array_get_idx(users, i);
                n = pxl_send_to_users(ctx, ids, k, out);
        } else if (strcmp(to, "raw") == 0) {
                const char *text = str_arg(msg, "text");

                /* Binary: raw text need not be the JSON checked above. */
                n = pxl_send_raw(ctx, text ? text : "", text ? strlen(text) : 0,
                                 true);
        }
        json_object_put(out);
        return pxl_reply(ctx, json_object_new_int(n));
}

/* fuzz/publish {name, msg}: a bus event (the subscriber below may send). */
static int fk_publish(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        const char *name = str_arg(msg, "name");
        int n;

        n = pxl_publish(ctx, name ? name : "fuzz.event", arg(msg, "msg"));
        return pxl_reply(ctx, json_object_new_int(n));
}

static int fk_nothing(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        (void)ctx;
        (void)msg;
        return PXL_OK;
}

static int fk_error(struct pxl_ctx *ctx, const struct pxl_msg *msg)
{
        (void)ctx;
        (void)msg;
        return PXL_ERR; /* no text: "Unknown error" */
}

/* Every bus event; "fuzz.all" ones go to every client. */
static int fk_event(struct pxl_ctx *ctx, const char *channel,
                    const struct json_object *msg)
{
        struct json_object *out;
        int n;

        if (strcmp(channel, "fuzz.all") != 0)
                return PXL_OK;
        out = pxl_msg_new("fuzz", "event",
                          json_object_get((struct json_object *)msg));
        n = pxl_send_to_all(ctx, out, NULL, NULL, NULL);
        json_object_put(out);
        return n < 0 ? n : PXL_OK;
}

/* Hooks that do something: a welcome message, a goodbye to the rest. */
static void fk_connect(struct pxl_ctx *ctx)
{
        pxl_client_set_meta(ctx, pxl_ctx_client_id(ctx), "hooked",
                            json_object_new_boolean(1));
}

static void fk_disconnect(struct pxl_ctx *ctx, int code)
{
        struct json_object *out;

        /* To the leaving client too: it must not be sent to any more. */
        out = pxl_msg_new("fuzz", "gone", json_object_new_int(code));
        pxl_send_to_all(ctx, out, NULL, NULL, NULL);
        json_object_put(out);
}

static const struct pxl_route fk_routes[] = {
        {"fuzz", "defer", fk_defer},     {"fuzz", "close", fk_close},
        {"fuzz", "kick", fk_kick},       {"fuzz", "meta", fk_meta},
        {"fuzz", "join", fk_join},       {"fuzz", "send", fk_send},
        {"fuzz", "publish", fk_publish}, {"fuzz", "nothing", fk_nothing},
        {"fuzz", "error", fk_error},     PXL_ROUTE_END,
};

static const struct pxl_subscriber fk_subscribers[] = {
        {"*", 0, fk_event},
        PXL_SUBSCRIBER_END,
};

static const struct pxl_plugin fuzzkit = {
        .hdr = PXL_PLUGIN_HDR,
        .name = "fuzzkit",
        .version = "1.0.0",
        .routes = fk_routes,
        .on_connect = fk_connect,
        .on_disconnect = fk_disconnect,
        .subscribers = fk_subscribers,
};

/*
 * App 0: anonymous or optional tokens, several rooms per client, small
 * limits (a burst of 6 messages, one connection upgrading at a time,
 * 16-byte member fields, tiny metadata). App 1: a token (with issuer)
 * and an Origin required, one room per client, one connection at most,
 * members-only roomMembers, presence lists, no greeting frames, and a
 * raw handler (echo) for binary messages.
 */
static const char app0[] =
        "name = \"fuzz0\";\n"
        "limits = { max_message_size = 4096; max_frame_size = 2048;\n"
        "  max_json_depth = 8; max_header_size = 1024; max_connections = 8;\n"
        "  max_output_bytes = 2048; max_handshakes = 1; rate = 1000;\n"
        "  burst = 6; max_metadata_entry_size = 64;\n"
        "  max_metadata_size = 256; };\n"
        "log = { level = \"err\"; };\n"
        "auth = { jwt = { secret = \"fuzz-secret\"; }; };\n"
        "rooms = { max_name_length = 16; max_per_client = 3;\n"
        "  notify_members = true; max_member_field_length = 16; };\n";

static const char app1[] =
        "name = \"fuzz1\";\n"
        "listen = { origins = [ \"http://fuzz.test\",\n"
        "  \"https://fuzz.test\" ]; };\n"
        "limits = { max_message_size = 1024; max_frame_size = 1024;\n"
        "  max_json_depth = 4; max_header_size = 1024; max_connections = 1;\n"
        "  max_output_bytes = 1024; };\n"
        "log = { level = \"err\"; };\n"
        "auth = { jwt = { secret = \"fuzz-secret\"; required = true;\n"
        "  issuer = \"pxl-fuzz\"; }; };\n"
        "rooms = { multiple = false; members_visible_to = \"members\";\n"
        "  notify_members = true; };\n"
        "presence = { client_list = true; include_payload = true; };\n"
        "connected_frame = false;\n";

static const struct pxl_plugin *const plugins0[] = {
        &pxl_plugin_system, &pxl_plugin_bench, &pxl_plugin_chat, &fuzzkit, NULL,
};
static const struct pxl_plugin *const plugins1[] = {
        &pxl_plugin_system, &pxl_plugin_bench, &pxl_plugin_chat,
        &pxl_plugin_echo,   &fuzzkit,          NULL,
};

static struct pxl_worker servers[2];
/* PXL_FUZZ_TRACE set: print what each client reads, to check the seeds. */
static bool trace;

/* What pxl_plugins_load does after dlopen: slots, routes, the raw handler. */
static void add_plugins(struct pxl_worker *srv,
                        const struct pxl_plugin *const *descs)
{
        struct pxl_plugins *ps = &srv->plugins;
        size_t n = 0;

        while (descs[n] != NULL)
                n++;
        free(ps->v);
        ps->v = calloc(n + 1, sizeof(*ps->v));
        CHECK(ps->v != NULL, "out of memory");
        for (size_t i = 0; i < n; i++) {
                struct pxl_plugin_slot *s = &ps->v[i];

                s->desc = descs[i];
                /* pxl_plugins_unload dlcloses it: a handle that may be. */
                s->handle = dlopen(NULL, RTLD_NOW);
                s->path = strdup(descs[i]->name);
                CHECK(s->handle != NULL && s->path != NULL, "plugin slot");
                for (const struct pxl_route *r = s->desc->routes;
                     r != NULL && r->type != NULL; r++) {
                        const struct pxl_router_entry *taken = NULL;

                        CHECK(pxl_router_add(srv->router, r->type, r->action,
                                             r->handler, s, &taken) == 0,
                              "route registration");
                }
                if (s->desc->raw_handler != NULL)
                        ps->raw = s;
                ps->n++;
        }
        /* pxl_server_init built the bus before there were plugins. */
        pxl_bus_fini(&srv->bus);
        CHECK(pxl_bus_init(&srv->bus, srv) == 0, "bus");
}

/* pxl_server_init, then the part of pxl_server_run before binding. */
static void server_setup(struct pxl_worker *srv, const char *text,
                         const char *name,
                         const struct pxl_plugin *const *descs)
{
        struct pxl_str errors = {0};
        struct pxl_config *conf;

        conf = pxl_conf_load_string(text, name, NULL, &errors);
        if (conf == NULL || conf->nerrors > 0 ||
            pxl_server_init(srv, conf, &errors) < 0) {
                fprintf(stderr, "fuzz_conn: %s: %s", name,
                        errors.p ? errors.p : "cannot load\n");
                abort();
        }
        pxl_str_fini(&errors);
        pxl_log_setup(conf->log_level, conf->log_format);
        add_plugins(srv, descs);
        CHECK(pxl_server_loop_init(srv, &errors) == 0, "event loop");
        CHECK(pxl_plugins_init(&srv->plugins, srv, &errors) == 0,
              "plugin init");
        pxl_str_fini(&errors);
}

/* ---- the client side: one end of a socket pair, and what it reads */

struct peer {
        char name;      /* 'A' or 'B' */
        int fd;         /* -1: no connection */
        bool reading;   /* drain what the server writes */
        bool head_done; /* the HTTP response head was read */
        bool upgraded;  /* it said 101: frames follow */
        bool closed;    /* the server sent a close frame */
        bool msg_open;  /* a data message is being assembled */
        uint8_t msg_op;
        struct pxl_ws_parser parser;
        uint8_t *in; /* server bytes not parsed yet */
        size_t in_len, in_cap;
        uint8_t *msg; /* the data message so far */
        size_t msg_len, msg_cap;
};

static void put(uint8_t **p, size_t *len, size_t *cap, const void *d, size_t n)
{
        if (*len + n > *cap) {
                size_t c = *cap ? *cap : 4096;

                while (c < *len + n)
                        c *= 2;
                *p = realloc(*p, c);
                CHECK(*p != NULL, "out of memory");
                *cap = c;
        }
        if (n)
                memcpy(*p + *len, d, n);
        *len += n;
}

static void peer_open(struct pxl_worker *srv, struct peer *p)
{
        int sv[2], small = 1; /* the kernel rounds it up to its minimum */

        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                         sv) == 0,
              "socketpair");
        /* A small server send buffer fills as soon as the client lags. */
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        p->fd = sv[1];
        p->reading = true;
        p->head_done = p->upgraded = p->closed = p->msg_open = false;
        p->in_len = p->msg_len = 0;
        pxl_ws_parser_init(&p->parser, 0, 0, false);
        pxl_conn_accept(srv, sv[0], NULL, 0);
}

static void peer_hangup(struct peer *p)
{
        if (p->fd >= 0)
                close(p->fd);
        p->fd = -1;
}

/* A whole message from the server: text is one JSON object with a type. */
static void check_message(struct peer *p)
{
        struct json_tokener *tok;
        struct json_object *o, *type;

        if (trace)
                fprintf(stderr, "  %c %s %.*s\n", p->name,
                        p->msg_op == PXL_WS_OP_TEXT ? "text" : "binary",
                        (int)p->msg_len, (const char *)p->msg);
        if (p->msg_op != PXL_WS_OP_TEXT)
                return;
        tok = json_tokener_new();
        CHECK(tok != NULL, "out of memory");
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                            JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, (const char *)p->msg, (int)p->msg_len);
        if (o == NULL || json_tokener_get_parse_end(tok) != p->msg_len ||
            !json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, "type", &type) ||
            !json_object_is_type(type, json_type_string)) {
                fprintf(stderr, "fuzz_conn: server sent \"%.*s\"\n",
                        (int)p->msg_len, (const char *)p->msg);
                CHECK(0, "a text message is not a JSON object with a type");
        }
        json_object_put(o);
        json_tokener_free(tok);
}

static void parse_frames(struct peer *p)
{
        size_t pos = 0;

        while (pos < p->in_len) {
                struct pxl_ws_event ev;
                size_t n = pxl_ws_parse(&p->parser, p->in + pos,
                                        p->in_len - pos, &ev);

                pos += n;
                if (ev.type == PXL_WS_EV_NEED_MORE)
                        break;
                CHECK(ev.type != PXL_WS_EV_ERROR,
                      "the server sent a bad frame");
                CHECK(!p->closed, "the server sent a frame after its close");
                switch (ev.type) {
                case PXL_WS_EV_DATA:
                        if (!p->msg_open) {
                                p->msg_open = true;
                                p->msg_op = ev.opcode;
                                p->msg_len = 0;
                        }
                        put(&p->msg, &p->msg_len, &p->msg_cap, ev.data, ev.len);
                        if (ev.fin) {
                                p->msg_open = false;
                                check_message(p);
                        }
                        break;
                case PXL_WS_EV_CLOSE:
                        CHECK(!p->msg_open,
                              "a close in the middle of a message");
                        p->closed = true;
                        if (trace)
                                fprintf(stderr, "  %c close %u %.*s\n", p->name,
                                        ev.close_code, (int)ev.reason_len,
                                        (const char *)ev.reason);
                        break;
                default:
                        if (trace)
                                fprintf(stderr, "  %c %s %zu bytes\n", p->name,
                                        ev.type == PXL_WS_EV_PING ? "ping"
                                                                  : "pong",
                                        ev.len);
                        break;
                }
        }
        memmove(p->in, p->in + pos, p->in_len - pos);
        p->in_len -= pos;
}

/* The response head: a status line, then headers up to an empty line. */
static void parse_head(struct peer *p)
{
        const uint8_t *end;
        size_t head;

        end = memmem(p->in, p->in_len, "\r\n\r\n", 4);
        if (end == NULL) {
                CHECK(p->in_len < 4096, "no end to the response head");
                return;
        }
        head = (size_t)(end - p->in) + 4;
        CHECK(head >= 12 && memcmp(p->in, "HTTP/1.1 ", 9) == 0,
              "not an HTTP/1.1 status line");
        p->head_done = true;
        if (trace)
                fprintf(stderr, "  %c %.12s\n", p->name, (const char *)p->in);
        p->upgraded = memcmp(p->in + 9, "101 ", 4) == 0;
        if (!p->upgraded) {
                p->in_len = 0; /* the refusal's body: not looked at */
                return;
        }
        memmove(p->in, p->in + head, p->in_len - head);
        p->in_len -= head;
        parse_frames(p);
}

/* Read what the server wrote; returns the bytes read. */
static size_t peer_read(struct peer *p)
{
        static uint8_t buf[16384];
        size_t total = 0;

        while (p->fd >= 0 && p->reading) {
                ssize_t n = read(p->fd, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0) { /* the server hung up (or reset) */
                        if (trace)
                                fprintf(stderr, "  %c eof\n", p->name);
                        peer_hangup(p);
                        break;
                }
                total += (size_t)n;
                if (!p->head_done || p->upgraded)
                        put(&p->in, &p->in_len, &p->in_cap, buf, (size_t)n);
                if (!p->head_done)
                        parse_head(p);
                else if (p->upgraded)
                        parse_frames(p);
                if ((size_t)n < sizeof(buf))
                        break; /* drained for now: spare the EAGAIN read */
        }
        return total;
}

/* Both clients read what is waiting for them (one poll to find out). */
static size_t peers_read(struct peer *peers)
{
        struct pollfd pfd[2];
        size_t got = 0;
        nfds_t n = 0;

        for (int i = 0; i < 2; i++)
                if (peers[i].fd >= 0 && peers[i].reading) {
                        pfd[n].fd = peers[i].fd;
                        pfd[n].events = POLLIN;
                        n++;
                }
        if (n == 0 || poll(pfd, n, 0) <= 0)
                return 0;
        for (int i = 0; i < 2; i++)
                for (nfds_t k = 0; k < n; k++)
                        if (peers[i].fd == pfd[k].fd && pfd[k].revents != 0)
                                got += peer_read(&peers[i]);
        return got;
}

/* Bytes written by the client that the server has not read yet. */
static int unread(const struct peer *p)
{
        int n = 0;

        if (p->fd < 0 || ioctl(p->fd, SIOCOUTQ, &n) < 0)
                return 0;
        return n;
}

/*
 * Run the loop until it settles: an iteration that leaves no event
 * active and gives the clients nothing to read, after which the server
 * reads no more of what they wrote (it may have stopped reading).
 */
static void settle(struct pxl_worker *srv, struct peer *peers)
{
        int last = -1;

        for (int i = 0; i < 100000; i++) {
                int left;

                CHECK(event_base_loop(srv->base, EVLOOP_NONBLOCK) >= 0,
                      "event loop");
                if (peers_read(peers) > 0)
                        continue;
                if (event_base_get_num_events(srv->base,
                                              EVENT_BASE_COUNT_ACTIVE) > 0)
                        continue;
                left = unread(&peers[0]) + unread(&peers[1]);
                if (left == 0 || left == last)
                        return;
                last = left;
        }
        CHECK(0, "the event loop does not settle");
}

static void peer_write(struct peer *p, const uint8_t *d, size_t n)
{
        while (n > 0 && p->fd >= 0) {
                ssize_t w = write(p->fd, d, n);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return; /* full (the server stopped reading) or gone */
                d += w;
                n -= (size_t)w;
        }
}

/* Small writes per input: enough for partial reads, not too slow. */
#define MAX_PIECES 256
static unsigned pieces;

static const size_t piece_sizes[8] = {0, 1, 2, 3, 5, 8, 17, 64};

static void segment(struct pxl_worker *srv, struct peer *peers,
                    const uint8_t *seg, size_t len)
{
        uint8_t ctl = len > 0 ? seg[0] : 0;
        struct peer *p = &peers[ctl & 1];
        size_t piece = piece_sizes[(ctl >> 1) & 7];
        unsigned action = (ctl >> 4) & 7;
        bool hold = (ctl & 0x80) != 0;

        if (len > 0) {
                seg++;
                len--;
        }
        if (npending > 0) {
                resolve_pending();
                settle(srv, peers);
        }
        if (trace)
                fprintf(stderr, "%c writes %zu bytes (control 0x%02x)\n",
                        p->name, len, ctl);
        if (p->fd < 0 && len > 0)
                peer_open(srv, p);
        /* At most MAX_PIECES small writes, then the rest at once. */
        while (len > 0) {
                size_t n = piece == 0 || len < piece ? len : piece;

                if (piece != 0 && n == piece && ++pieces > MAX_PIECES)
                        n = len;
                peer_write(p, seg, n);
                seg += n;
                len -= n;
                if (!hold && (len > 0 || action == 0))
                        settle(srv, peers);
        }
        switch (action) {
        case 1:
                pxl_conn_heartbeat(srv);
                break;
        case 2:
                pxl_conn_sweep_idle(srv);
                break;
        case 3:
                pxl_conn_shutdown_all(srv);
                break;
        case 4:
                peer_hangup(p);
                break;
        case 5:
                if (p->fd >= 0)
                        shutdown(p->fd, SHUT_WR);
                break;
        case 6:
                p->reading = !p->reading;
                break;
        case 7: /* as after a signal: 1001 first, nobody left open */
                pxl_conn_shutdown_all(srv);
                pxl_conn_close_all(srv);
                break;
        default:
                return;
        }
        if (!hold)
                settle(srv, peers);
}

/* The worker forgot every client: nothing may outlive its connection. */
static void check_empty(struct pxl_worker *srv)
{
        CHECK(srv->nconns == 0 && srv->nopen == 0, "connections counted");
        CHECK(TAILQ_EMPTY(&srv->handshaking) && TAILQ_EMPTY(&srv->conns) &&
                      TAILQ_EMPTY(&srv->closing) && TAILQ_EMPTY(&srv->dead) &&
                      srv->nhandshaking == 0,
              "connections listed");
        CHECK(SLIST_EMPTY(&srv->dirty), "dirty list");
        CHECK(srv->conn_pool.live == 0, "pooled connections");
        CHECK(srv->client_pool.live == 0, "pooled clients");
        CHECK(srv->clients.count == 0 && TAILQ_EMPTY(&srv->client_order),
              "clients registered");
        CHECK(srv->users.count == 0, "users indexed");
        CHECK(srv->rooms.count == 0, "rooms left");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static bool ready;
        struct peer peers[2] = {{.name = 'A', .fd = -1},
                                {.name = 'B', .fd = -1}};
        struct pxl_worker *srv;
        const uint8_t *end = data + size, *p;
        int i;

        if (!ready) {
                signal(SIGPIPE, SIG_IGN);
                trace = getenv("PXL_FUZZ_TRACE") != NULL;
                server_setup(&servers[0], app0, "app0.cfg", plugins0);
                server_setup(&servers[1], app1, "app1.cfg", plugins1);
                ready = true;
        }
        if (size < 1)
                return 0;
        srv = &servers[data[0] & 1];
        pieces = 0;
        p = data + 1;
        while (p <= end) {
                const uint8_t *sep = memmem(p, (size_t)(end - p), SEP, SEP_LEN);
                const uint8_t *stop = sep ? sep : end;

                segment(srv, peers, p, (size_t)(stop - p));
                if (sep == NULL)
                        break;
                p = sep + SEP_LEN;
        }
        peer_hangup(&peers[0]);
        peer_hangup(&peers[1]);
        settle(srv, peers);
        resolve_pending(); /* to clients that are gone by now */
        /* At least once: freed bufferevents are finalized by the loop. */
        i = 0;
        do
                settle(srv, peers);
        while (srv->nconns > 0 && ++i < 1000);
        CHECK(srv->nconns == 0, "a connection outlives its hung-up client");
        check_empty(srv);
        for (i = 0; i < 2; i++) {
                free(peers[i].in);
                free(peers[i].msg);
        }
        return 0;
}
