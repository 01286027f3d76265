/*
 * pxl_session.c - sessions and system/resume in one process (resume):
 * each greeted client gets a session and a token naming it; when its
 * connection ends the session (clientId, user, metadata, rooms) is kept
 * for resume.ttl seconds, and a new connection that shows the token
 * takes it over once. The frames it missed come from pxl_history.c;
 * the core learns of us only through the greet hook and a watcher.
 */
#include <string.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "pxl/pxl.h"
#include "pxl_clients.h"
#include "pxl_conn.h"
#include "pxl_history.h"
#include "pxl_int.h"
#include "pxl_log.h"
#include "pxl_rooms.h"
#include "pxl_session.h"
#include "pxl_str.h"
#include "pxl_worker.h"

#define SID_LEN    16                 /* random bytes naming a session */
#define MAC_LEN    32                 /* HMAC-SHA256 */
#define TOKEN_RAW  (SID_LEN + MAC_LEN) /* 48 bytes: 64 base64url chars */
#define TOKEN_LEN  64
#define SECRET_LEN 32 /* drawn per start without resume.secret */

struct kept_room {
        char *name;
        struct json_object *user_id; /* the membership's, one reference */
};

struct session {
        struct pxl_map_node node;      /* sessions, by sid (hex) */
        struct pxl_map_node live_node; /* live, by client id, while connected */
        unsigned char sid[SID_LEN];
        char sid_hex[2 * SID_LEN + 1];
        char client_id[33];
        bool connected;
        int64_t expires_ms; /* kept: when it goes */
        /* Kept: the client as it left (one reference each, may be NULL). */
        struct json_object *user_id, *meta;
        struct kept_room *rooms;
        size_t nrooms;
};

struct sessions {
        struct pxl_worker *srv;
        unsigned char *secret;
        size_t secret_len;
        int64_t ttl_ms;
        struct pxl_map all;  /* struct session, by sid */
        struct pxl_map live; /* the connected ones, by client id */
        struct event *sweep;
};

static const struct pxl_service session_service;

/* ---- tokens: base64url(sid || HMAC-SHA256(secret, sid)) --------------- */

static const char b64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* len a multiple of 3; out gets len / 3 * 4 characters and a NUL. */
static void b64url_encode(const unsigned char *in, size_t len, char *out)
{
        for (size_t i = 0; i + 2 < len; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
                             in[i + 2];

                *out++ = b64url[v >> 18 & 63];
                *out++ = b64url[v >> 12 & 63];
                *out++ = b64url[v >> 6 & 63];
                *out++ = b64url[v & 63];
        }
        *out = '\0';
}

static int b64url_value(char ch)
{
        const char *p = ch ? strchr(b64url, ch) : NULL;

        return p ? (int)(p - b64url) : -1;
}

/* Exactly TOKEN_LEN characters of the alphabet into TOKEN_RAW bytes. */
static bool token_decode(const char *token, unsigned char *out)
{
        if (token == NULL || strlen(token) != TOKEN_LEN)
                return false;
        for (size_t i = 0; i < TOKEN_LEN; i += 4) {
                uint32_t v = 0;

                for (size_t j = 0; j < 4; j++) {
                        int d = b64url_value(token[i + j]);

                        if (d < 0)
                                return false;
                        v = v << 6 | (uint32_t)d;
                }
                *out++ = (unsigned char)(v >> 16);
                *out++ = (unsigned char)(v >> 8);
                *out++ = (unsigned char)v;
        }
        return true;
}

static bool mac(const struct sessions *h, const unsigned char *sid,
                unsigned char out[MAC_LEN])
{
        unsigned int n = MAC_LEN;

        return HMAC(EVP_sha256(), h->secret, (int)h->secret_len, sid, SID_LEN,
                    out, &n) != NULL &&
               n == MAC_LEN;
}

/* The token naming s, TOKEN_LEN characters and a NUL; false on failure. */
static bool token_of(const struct sessions *h, const struct session *s,
                     char out[TOKEN_LEN + 1])
{
        unsigned char raw[TOKEN_RAW];

        memcpy(raw, s->sid, SID_LEN);
        if (!mac(h, s->sid, raw + SID_LEN))
                return false;
        b64url_encode(raw, sizeof(raw), out);
        return true;
}

/* The session a token names: NULL for a malformed or forged one. */
static bool token_sid(const struct sessions *h, const char *token,
                      char sid_hex[2 * SID_LEN + 1])
{
        unsigned char raw[TOKEN_RAW], want[MAC_LEN];

        if (!token_decode(token, raw) || !mac(h, raw, want) ||
            CRYPTO_memcmp(want, raw + SID_LEN, MAC_LEN) != 0)
                return false;
        pxl_hex(sid_hex, raw, SID_LEN);
        return true;
}

/* ---- sessions ------------------------------------------------------------ */

static void session_forget_state(struct session *s)
{
        for (size_t i = 0; i < s->nrooms; i++) {
                free(s->rooms[i].name);
                json_object_put(s->rooms[i].user_id);
        }
        free(s->rooms);
        s->rooms = NULL;
        s->nrooms = 0;
        json_object_put(s->user_id);
        json_object_put(s->meta);
        s->user_id = s->meta = NULL;
}

static void session_free(struct sessions *h, struct session *s)
{
        if (s->connected)
                pxl_map_remove(&h->live, &s->live_node);
        pxl_map_remove(&h->all, &s->node);
        session_forget_state(s);
        free(s);
}

static struct session *live_get(struct sessions *h, const char *client_id)
{
        struct pxl_map_node *n = pxl_map_get(&h->live, client_id,
                                             strlen(client_id));

        return n ? pxl_container_of(n, struct session, live_node) : NULL;
}

/* A new session for connected client c (NULL when out of memory). */
static struct session *session_new(struct sessions *h,
                                   const struct pxl_client *c)
{
        struct session *s = calloc(1, sizeof(*s));

        if (s == NULL)
                return NULL;
        if (RAND_bytes(s->sid, SID_LEN) != 1) {
                free(s);
                return NULL;
        }
        pxl_hex(s->sid_hex, s->sid, SID_LEN);
        memcpy(s->client_id, c->id, sizeof(s->client_id));
        s->node.key = s->sid_hex;
        s->node.key_len = 2 * SID_LEN;
        s->live_node.key = s->client_id;
        s->live_node.key_len = 32;
        if (pxl_map_put(&h->all, &s->node) < 0) {
                free(s);
                return NULL;
        }
        if (pxl_map_put(&h->live, &s->live_node) < 0) {
                pxl_map_remove(&h->all, &s->node);
                free(s);
                return NULL;
        }
        s->connected = true;
        return s;
}

/* The greet hook: a session for the new client, its token in the frame. */
static void session_greet(struct pxl_worker *srv, struct pxl_client *c,
                          struct pxl_str *out, void *arg)
{
        struct sessions *h = arg;
        struct session *s = live_get(h, c->id);
        char token[TOKEN_LEN + 1];

        (void)srv;
        if (s == NULL && (s = session_new(h, c)) == NULL)
                return; /* out of memory: this client cannot resume */
        if (!token_of(h, s, token))
                return;
        pxl_str_puts(out, ",\"resumeToken\":\"");
        pxl_str_puts(out, token);
        pxl_str_puts(out, "\"");
}

/* The client as it leaves, kept in s (false when out of memory). */
static bool session_keep(struct sessions *h, struct session *s,
                         const struct pxl_client *c)
{
        s->rooms = c->nrooms ? calloc(c->nrooms, sizeof(*s->rooms)) : NULL;
        if (c->nrooms && s->rooms == NULL)
                return false;
        for (size_t i = 0; i < c->nrooms; i++) {
                const struct pxl_membership *m = &c->rooms[i];

                s->rooms[i].name = strdup(m->room->name);
                if (s->rooms[i].name == NULL)
                        return false;
                s->rooms[i].user_id = json_object_get(m->user_id);
                s->nrooms++;
        }
        s->user_id = json_object_get(c->user_id);
        s->meta = json_object_get(c->meta);
        s->expires_ms = pxl_worker_now_ms(h->srv) + h->ttl_ms;
        return true;
}

/*
 * The watcher: a client that goes leaves its session behind for ttl.
 * Watchers stay after the service stops: the state is looked up, NULL
 * once stopped.
 */
static void session_on_change(struct pxl_worker *srv,
                              const struct pxl_change *ch, void *arg)
{
        struct sessions *h = pxl_worker_service_state(srv, &session_service);
        struct session *s;

        (void)arg;
        if (h == NULL || ch->kind != PXL_CHANGE_GONE ||
            ch->client->conn == NULL ||
            (s = live_get(h, ch->client->id)) == NULL)
                return;
        pxl_map_remove(&h->live, &s->live_node);
        s->connected = false;
        /* Stopping: nobody can come back to this process. */
        if (srv->stopping || !session_keep(h, s, ch->client))
                session_free(h, s);
}

/* Once a second: kept sessions past their ttl go. */
static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
        struct sessions *h = arg;
        int64_t now = pxl_worker_now_ms(h->srv);
        struct pxl_map_iter it;
        struct pxl_map_node *n;

        (void)fd;
        (void)what;
        pxl_map_iter_init(&it, &h->all);
        while ((n = pxl_map_iter_next(&it)) != NULL) {
                struct session *s = pxl_container_of(n, struct session, node);

                if (!s->connected && s->expires_ms <= now)
                        session_free(h, s);
        }
}

static int session_start(struct pxl_worker *srv, struct pxl_str *errors)
{
        struct timeval second = {1, 0};
        const char *secret = srv->conf->resume.secret;
        struct sessions *h = calloc(1, sizeof(*h));

        if (h == NULL ||
            pxl_worker_set_service_state(srv, &session_service, h) < 0) {
                free(h);
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        h->srv = srv;
        h->ttl_ms = (int64_t)srv->conf->resume.ttl * 1000;
        h->secret_len = secret ? strlen(secret) : SECRET_LEN;
        if ((h->secret = malloc(h->secret_len)) == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        if (secret != NULL) {
                memcpy(h->secret, secret, h->secret_len);
        } else if (RAND_bytes(h->secret, SECRET_LEN) != 1) {
                pxl_str_puts(errors, "cannot draw the resume secret\n");
                return PXL_ERR;
        }
        h->sweep = event_new(srv->base, -1, EV_PERSIST, sweep_cb, h);
        if (h->sweep == NULL || event_add(h->sweep, &second) < 0) {
                pxl_str_puts(errors, "cannot start the session sweep\n");
                return PXL_ERR;
        }
        if (pxl_worker_watch(srv, session_on_change, h) < 0) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        srv->greet = session_greet;
        srv->greet_arg = h;
        return PXL_OK;
}

static void session_stop(struct pxl_worker *srv)
{
        struct sessions *h = pxl_worker_service_state(srv, &session_service);
        struct pxl_map_iter it;
        struct pxl_map_node *n;

        if (h == NULL)
                return;
        srv->greet = NULL;
        if (h->sweep != NULL)
                event_free(h->sweep);
        pxl_map_iter_init(&it, &h->all);
        while ((n = pxl_map_iter_next(&it)) != NULL)
                session_free(h, pxl_container_of(n, struct session, node));
        pxl_map_fini(&h->all);
        pxl_map_fini(&h->live);
        if (h->secret != NULL)
                OPENSSL_cleanse(h->secret, h->secret_len);
        free(h->secret);
        (void)pxl_worker_set_service_state(srv, &session_service, NULL);
        free(h);
}

static const struct pxl_service session_service = {
        .name = "sessions",
        .start = session_start,
        .stop = session_stop,
};

int pxl_session_install(struct pxl_worker *srv)
{
        if (!srv->conf->resume.on)
                return PXL_OK;
        return pxl_worker_add_service(srv, &session_service);
}

/* ---- system/resume -------------------------------------------------------- */

/* A user id as the user index matches it (42 and "42" are one user). */
static bool user_text(const struct json_object *u, char *buf, size_t cap,
                      const char **text)
{
        if (json_object_is_type(u, json_type_int)) {
                snprintf(buf, cap, "%" PRId64, json_object_get_int64(u));
                *text = buf;
                return true;
        }
        if (json_object_is_type(u, json_type_string)) {
                *text = json_object_get_string((struct json_object *)u);
                return true;
        }
        return false;
}

/* Both anonymous, or the same JWT user. */
static bool same_user(const struct json_object *a, const struct json_object *b)
{
        char ba[32], bb[32];
        const char *ta, *tb;

        if (a == NULL || b == NULL)
                return a == b;
        return user_text(a, ba, sizeof(ba), &ta) &&
               user_text(b, bb, sizeof(bb), &tb) && strcmp(ta, tb) == 0;
}

static struct json_object *failure(const char *error)
{
        struct json_object *r = json_object_new_object();

        json_object_object_add(r, "success", json_object_new_boolean(0));
        json_object_object_add(r, "error", json_object_new_string(error));
        return r;
}

static bool member_of(const struct pxl_client *c, const char *room)
{
        for (size_t i = 0; i < c->nrooms; i++)
                if (strcmp(c->rooms[i].room->name, room) == 0)
                        return true;
        return false;
}

/* Kept metadata and rooms back on c, the rooms' missed frames sent. */
static struct json_object *restore(struct pxl_worker *srv, struct session *s,
                                   struct pxl_client *c,
                                   struct json_object *rooms_obj)
{
        struct json_object *out = json_object_new_object();

        if (out == NULL)
                return NULL;
        if (s->meta != NULL) {
                json_object_object_foreach(s->meta, key, value)
                        (void)pxl_client_meta_put(srv, c, key,
                                                  json_object_get(value));
        }
        for (size_t i = 0; i < s->nrooms; i++) {
                struct kept_room *r = &s->rooms[i];

                /* Full rooms or rooms.max_per_client lowered: left out. */
                (void)pxl_rooms_add_member(srv, c, r->name, strlen(r->name),
                                           json_object_get(r->user_id));
        }
        /*
         * One thread: the replay is queued before this handler returns,
         * so no newer frame of the room can come between, and the reply
         * follows it.
         */
        if (json_object_is_type(rooms_obj, json_type_object)) {
                json_object_object_foreach(rooms_obj, name, pos)
                {
                        struct json_object *r = json_object_new_object();
                        bool ok = false;

                        if (member_of(c, name) &&
                            json_object_is_type(pos, json_type_string))
                                ok = pxl_history_replay(
                                             srv, name,
                                             json_object_get_string(pos),
                                             c) == 1;
                        json_object_object_add(r, "recovered",
                                               json_object_new_boolean(ok));
                        json_object_object_add(out, name, r);
                }
        }
        return out;
}

struct json_object *pxl_session_resume(struct pxl_ctx *ctx, const char *token,
                                       struct json_object *rooms)
{
        struct pxl_worker *srv = ctx ? ctx->srv : NULL;
        struct sessions *h =
                srv ? pxl_worker_service_state(srv, &session_service) : NULL;
        struct pxl_client *c;
        struct session *s, *mine;
        struct pxl_map_node *n;
        struct json_object *r, *restored;
        char sid[2 * SID_LEN + 1], next[TOKEN_LEN + 1];

        if (h == NULL || ctx->conn == NULL ||
            (c = pxl_clients_get(srv, ctx->client_id)) == NULL)
                return NULL;
        if (!token_sid(h, token, sid))
                return failure("Invalid resume token");
        n = pxl_map_get(&h->all, sid, 2 * SID_LEN);
        s = n ? pxl_container_of(n, struct session, node) : NULL;
        if (s != NULL && !s->connected &&
            s->expires_ms <= pxl_worker_now_ms(srv)) {
                session_free(h, s); /* the sweep had not come yet */
                s = NULL;
        }
        if (s == NULL)
                return failure("Session expired");
        /* Still connected (its own, or one whose drop is not seen yet). */
        if (s->connected)
                return failure("Invalid resume token");
        if (!same_user(s->user_id, c->user_id))
                return failure("Invalid resume token");
        if (pxl_clients_get(srv, s->client_id) != NULL) {
                session_free(h, s);
                return failure("Session expired");
        }
        /* Used once: out of the table before anything can fail. */
        pxl_map_remove(&h->all, &s->node);
        /* The identity this connection had ends: nothing to keep of it. */
        if ((mine = live_get(h, c->id)) != NULL)
                session_free(h, mine);
        if (pxl_conn_resume_as(ctx->conn, s->client_id) < 0) {
                session_forget_state(s);
                free(s);
                return failure("Session expired");
        }
        restored = restore(srv, s, c, rooms);
        session_forget_state(s);
        free(s);
        mine = session_new(h, c);
        if (restored == NULL || mine == NULL || !token_of(h, mine, next)) {
                json_object_put(restored);
                return NULL;
        }
        r = json_object_new_object();
        json_object_object_add(r, "success", json_object_new_boolean(1));
        json_object_object_add(r, "clientId", json_object_new_string(c->id));
        json_object_object_add(r, "resumeToken",
                               json_object_new_string(next));
        json_object_object_add(r, "rooms", restored);
        return r;
}
