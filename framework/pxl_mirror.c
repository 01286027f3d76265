/*
 * pxl_mirror.c - the cluster seen from one worker, kept in step through
 * Redis (names below, P = "pxl:" app ":"):
 *
 *   P events          every worker's client changes, custom events
 *   P all             send to everybody
 *   P room:NAME       send to a room; subscribed while NAME has local members
 *   P worker:ID       sends to given clients of worker ID, and requests
 *                     (close, join, leave, metadata) for them
 *   P workers         set of live worker ids
 *   P alive:ID        heartbeat key, expires after redis.dead_after
 *   P clients:ID      hash clientId -> client state JSON, "#seq" -> SEQ
 *
 * A worker owns its clients: it writes their state to its hash, then
 * publishes the change on events with the next number of its sequence.
 * The others apply changes in sequence order. A snapshot (the hash) says
 * up to which number it is complete, so events at or below it are skipped
 * and a gap in the numbers (messages lost while a connection was down)
 * asks for a new snapshot; events wait while one is on its way. Custom
 * events and departures are not client state: they carry number 0 and
 * are applied when they come.
 *
 * Every heartbeat a Lua script refreshes this worker's alive key, removes
 * workers whose key expired, and returns the live ones: their clients are
 * dropped here (members of their rooms get clientLeft) within dead_after
 * plus one heartbeat. A worker that stops cleanly, or is restarted by the
 * master, is dropped at once.
 *
 * Sends reach local clients directly; one PUBLISH then carries the
 * message to the workers that have recipients (exactly once each: a
 * worker delivers only to its own clients and ignores its own messages).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_bus.h"
#include "pxl_clients.h"
#include "pxl_conn.h"
#include "pxl_frame.h"
#include "pxl_int.h"
#include "pxl_log.h"
#include "pxl_mirror.h"
#include "pxl_redis.h"
#include "pxl_rooms.h"
#include "pxl_server.h"
#include "pxl_wire.h"
#include "pxl_ws_codec.h"

/* An event received while the peer's snapshot is on its way. */
struct held {
        struct held *next;
        size_t len;
        char msg[];
};

struct pxl_peer {
        struct pxl_map_node node; /* m->peers, keyed by id */
        uint64_t last_seq;        /* last event applied, or the snapshot's */
        unsigned born_round;      /* heartbeat round when first heard of */
        bool syncing;             /* snapshot requested, events held */
        struct held *held, **held_tail;
        size_t id_len;
        char id[];
};

struct pxl_mirror {
        struct pxl_worker *srv;
        struct pxl_redis *redis;
        char self[64];
        size_t self_len;
        char prev[64]; /* this slot's previous worker, to purge; "" if none */
        char prefix[80];
        size_t prefix_len;
        uint64_t seq;
        unsigned round;         /* heartbeats sent */
        bool resync;            /* next heartbeat answer: snapshot all peers */
        int64_t hb_sent_ms;     /* unanswered heartbeat, or 0 */
        int64_t up_ms;          /* when Redis last came (back) up */
        struct event *tick;
        struct pxl_map peers;
        struct pxl_str msg;     /* message being built */
        struct pxl_str key;     /* key or channel name being built */
        struct pxl_str key2;
};

/* Refresh our heartbeat, forget dead workers, return the live ones. */
static const char heartbeat_lua[] =
        "local p, me = ARGV[1], ARGV[2]\n"
        "redis.call('SET', p..'alive:'..me, '1', 'PX', ARGV[3])\n"
        "redis.call('SADD', p..'workers', me)\n"
        "local live = {}\n"
        "for _, w in ipairs(redis.call('SMEMBERS', p..'workers')) do\n"
        "  if redis.call('EXISTS', p..'alive:'..w) == 1 then\n"
        "    live[#live + 1] = w\n"
        "  else\n"
        "    redis.call('SREM', p..'workers', w)\n"
        "    redis.call('DEL', p..'clients:'..w)\n"
        "  end\n"
        "end\n"
        "return live\n";

/* Take a worker out of the cluster's state (ours at exit, or a dead one). */
static const char forget_lua[] =
        "local p, w = ARGV[1], ARGV[2]\n"
        "redis.call('DEL', p..'alive:'..w, p..'clients:'..w)\n"
        "redis.call('SREM', p..'workers', w)\n"
        "return 1\n";

static void drop_peer(struct pxl_mirror *m, struct pxl_peer *p);
static void handle_event(struct pxl_mirror *m, struct pxl_peer *p,
                         const char *msg, size_t len);
static void apply_event(struct pxl_mirror *m, struct pxl_peer *p,
                        const struct pxl_wire *w);
static void hold(struct pxl_peer *p, const char *msg, size_t len);

/* ---- names -------------------------------------------------------------- */

/* P + what + suffix in buf (reset first); NUL-terminated. NULL (and
 * *len 0) when out of memory. */
static const char *name(struct pxl_mirror *m, struct pxl_str *buf,
                        const char *what, const char *suffix, size_t slen,
                        size_t *len)
{
        *len = 0;
        pxl_str_reset(buf, 4096);
        if (pxl_str_append(buf, m->prefix, m->prefix_len) < 0 ||
            pxl_str_puts(buf, what) < 0 ||
            (slen > 0 && pxl_str_append(buf, suffix, slen) < 0) ||
            pxl_str_append(buf, "", 1) < 0)
                return NULL;
        *len = buf->len - 1;
        return buf->p;
}

static struct pxl_peer *peer_get(struct pxl_mirror *m, const char *id,
                                 size_t len)
{
        struct pxl_map_node *n = pxl_map_get(&m->peers, id, len);

        return n ? pxl_container_of(n, struct pxl_peer, node) : NULL;
}

static struct pxl_peer *peer_add(struct pxl_mirror *m, const char *id,
                                 size_t len)
{
        struct pxl_peer *p = peer_get(m, id, len);

        if (p != NULL)
                return p;
        if (len >= sizeof(m->self) || (p = calloc(1, sizeof(*p) + len + 1)) == NULL)
                return NULL;
        memcpy(p->id, id, len);
        p->id_len = len;
        p->node.key = p->id;
        p->node.key_len = len;
        p->born_round = m->round;
        p->held_tail = &p->held;
        if (pxl_map_put(&m->peers, &p->node) < 0) {
                free(p);
                return NULL;
        }
        return p;
}

static void free_held(struct pxl_peer *p)
{
        struct held *h, *next;

        for (h = p->held; h != NULL; h = next) {
                next = h->next;
                free(h);
        }
        p->held = NULL;
        p->held_tail = &p->held;
}

/* ---- sending to Redis ----------------------------------------------------- */

/*
 * Publish one message on ch (NULL: its name could not be built): the
 * header line, then body a, then, when b is not NULL, a NUL byte and b
 * (the two-part bodies of pxl_wire.h). PXL_OK once queued.
 */
static int send_msg(struct pxl_mirror *m, const char *ch, size_t chlen,
                    uint64_t seq, char kind, const char *arg, size_t arg_len,
                    const char *a, size_t alen, const char *b, size_t blen)
{
        if (ch == NULL)
                return PXL_ENOMEM;
        pxl_str_reset(&m->msg, 1 << 16);
        if (pxl_wire_head(&m->msg, m->self, m->self_len, seq, kind, arg,
                          arg_len) < 0 ||
            pxl_str_append(&m->msg, a, alen) < 0 ||
            (b != NULL && (pxl_str_append(&m->msg, "", 1) < 0 ||
                           pxl_str_append(&m->msg, b, blen) < 0)))
                return PXL_ENOMEM;
        return pxl_redis_queue_publish(m->redis, ch, chlen, m->msg.p, m->msg.len);
}

/* The same on the events channel. */
static int send_event(struct pxl_mirror *m, uint64_t seq, char kind,
                      const char *arg, size_t arg_len, const char *a,
                      size_t alen, const char *b, size_t blen)
{
        size_t chlen;
        const char *ch = name(m, &m->key, "events", NULL, 0, &chlen);

        return send_msg(m, ch, chlen, seq, kind, arg, arg_len, a, alen, b,
                        blen);
}

static int cmd(struct pxl_mirror *m, pxl_redis_cb *cb, void *arg, int argc,
               const char **argv, const size_t *lens)
{
        return pxl_redis_queue_command(m->redis, cb, arg, argc, argv, lens);
}

static void run_forget(struct pxl_mirror *m, const char *worker, size_t len)
{
        const char *argv[5] = {"EVAL", forget_lua, "0", m->prefix, worker};
        size_t lens[5] = {4, sizeof(forget_lua) - 1, 1, m->prefix_len, len};

        cmd(m, NULL, NULL, 5, argv, lens);
}

/* ---- client state --------------------------------------------------------- */

/* {"id","userId","token","meta","lastActivity","rooms":[[name,userId]]} */
static struct json_object *state_json(const struct pxl_client *c)
{
        struct json_object *o = json_object_new_object();
        struct json_object *rooms = json_object_new_array();

        if (o == NULL || rooms == NULL) {
                json_object_put(o);
                json_object_put(rooms);
                return NULL;
        }
        json_object_object_add(o, "id", json_object_new_string(c->id));
        json_object_object_add(o, "userId", json_object_get(c->user_id));
        json_object_object_add(o, "token", json_object_get(c->token));
        json_object_object_add(o, "meta", json_object_get(c->meta));
        json_object_object_add(o, "lastActivity",
                               json_object_new_int64(c->last_activity_ms));
        for (size_t i = 0; i < c->nrooms; i++) {
                struct json_object *e = json_object_new_array();
                const struct pxl_room *r = c->rooms[i].room;

                json_object_array_add(e, json_object_new_string_len(
                                                 r->name, (int)r->name_len));
                json_object_array_add(e, json_object_get(c->rooms[i].user_id));
                json_object_array_add(rooms, e);
        }
        json_object_object_add(o, "rooms", rooms);
        return o;
}

static const char *state_text(struct json_object *o, size_t *len)
{
        const char *s = json_object_to_json_string_length(
                o, JSON_C_TO_STRING_PLAIN, len);

        return s;
}

static void seq_text(uint64_t seq, char *buf, size_t cap, size_t *len)
{
        *len = (size_t)snprintf(buf, cap, "%" PRIu64, seq);
}

static void mirror_client_changed(struct pxl_worker *srv, struct pxl_client *c)
{
        struct pxl_mirror *m = srv->mirror;
        struct json_object *o;
        const char *text, *key;
        size_t tlen, klen, slen;
        char seqs[24];

        if (m == NULL || c->peer != NULL || c->gone)
                return;
        m->seq++;
        if (!pxl_redis_up(m->redis)) {
                srv->metrics.redis_dropped++;
                return; /* the snapshot written on reconnect has it */
        }
        if ((o = state_json(c)) == NULL)
                return;
        text = state_text(o, &tlen);
        seq_text(m->seq, seqs, sizeof(seqs), &slen);
        key = name(m, &m->key, "clients:", m->self, m->self_len, &klen);
        if (key != NULL) {
                const char *argv[6] = {"HSET", key, c->id, text, "#seq", seqs};
                size_t lens[6] = {4, klen, 32, tlen, 4, slen};

                cmd(m, NULL, NULL, 6, argv, lens);
        }
        send_event(m, m->seq, 'c', c->id, 32, text, tlen, NULL, 0);
        json_object_put(o);
}

static void mirror_client_gone(struct pxl_worker *srv, struct pxl_client *c,
                            int code)
{
        struct pxl_mirror *m = srv->mirror;
        const char *key;
        size_t klen, slen;
        char seqs[24], codes[16];
        int n;

        if (m == NULL || c->peer != NULL || c->gone)
                return;
        c->gone = true; /* leaving its rooms now publishes nothing */
        m->seq++;
        if (!pxl_redis_up(m->redis)) {
                srv->metrics.redis_dropped++;
                return;
        }
        seq_text(m->seq, seqs, sizeof(seqs), &slen);
        key = name(m, &m->key, "clients:", m->self, m->self_len, &klen);
        if (key != NULL) {
                /* The record goes before the number that says it went. */
                const char *del[3] = {"HDEL", key, c->id};
                size_t dl[3] = {4, klen, 32};
                const char *set[4] = {"HSET", key, "#seq", seqs};
                size_t sl[4] = {4, klen, 4, slen};

                cmd(m, NULL, NULL, 3, del, dl);
                cmd(m, NULL, NULL, 4, set, sl);
        }
        n = snprintf(codes, sizeof(codes), "%d", code);
        send_event(m, m->seq, 'd', c->id, 32, codes, (size_t)n, NULL, 0);
}

static void mirror_publish_custom(struct pxl_worker *srv, const char *ev_name,
                               const struct json_object *msg)
{
        struct pxl_mirror *m = srv->mirror;
        const char *text;
        size_t tlen;

        if (m == NULL)
                return;
        if (!pxl_redis_up(m->redis)) {
                srv->metrics.redis_dropped++;
                return;
        }
        text = json_object_to_json_string_length(
                (struct json_object *)msg, JSON_C_TO_STRING_PLAIN, &tlen);
        send_event(m, 0, 'p', NULL, 0, ev_name, strlen(ev_name), text, tlen);
}

/* ---- applying other workers' state ---------------------------------------- */

static void remove_remote(struct pxl_worker *srv, struct pxl_client *c,
                          int code)
{
        pxl_worker_announce(srv, &(struct pxl_change){
                                         .kind = PXL_CHANGE_GONE,
                                         .client = c,
                                         .user_id = c->user_id,
                                         .close_code = code});
        pxl_client_remove(srv, c);
}

/*
 * Remove p's clients that carry the mark; members of their rooms are
 * told. The ids are collected first because each removal runs
 * subscribers, which may change the registry.
 */
static void remove_marked(struct pxl_worker *srv, const struct pxl_peer *p)
{
        struct pxl_client *c;
        char (*ids)[33];
        size_t n = 0, k = 0;

        TAILQ_FOREACH(c, &srv->client_order, order)
                n += c->mark && c->peer == p;
        if (n == 0)
                return;
        if ((ids = calloc(n, sizeof(*ids))) == NULL) {
                /* No memory for the list: one scan per client. */
                for (;;) {
                        TAILQ_FOREACH(c, &srv->client_order, order)
                                if (c->mark && c->peer == p)
                                        break;
                        if (c == NULL)
                                return;
                        remove_remote(srv, c, PXL_CLOSE_ABNORMAL);
                }
        }
        TAILQ_FOREACH(c, &srv->client_order, order)
                if (c->mark && c->peer == p && k < n)
                        memcpy(ids[k++], c->id, 33);
        for (size_t i = 0; i < k; i++)
                if ((c = pxl_clients_get(srv, ids[i])) != NULL && c->peer == p)
                        remove_remote(srv, c, PXL_CLOSE_ABNORMAL);
        free(ids);
}

static bool in_rooms(struct json_object *rooms, const char *name, size_t len)
{
        size_t n = json_object_array_length(rooms);

        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(rooms, i);
                struct json_object *rn = json_object_array_get_idx(e, 0);

                if (json_object_is_type(rn, json_type_string) &&
                    (size_t)json_object_get_string_len(rn) == len &&
                    memcmp(json_object_get_string(rn), name, len) == 0)
                        return true;
        }
        return false;
}

/* JSON text another worker sent (json-c's own output); NULL if bad. */
static struct json_object *parse_json(const char *text, size_t len)
{
        struct json_tokener *tok = json_tokener_new();
        struct json_object *o;

        if (tok == NULL)
                return NULL;
        o = json_tokener_parse_ex(tok, text, (int)len);
        json_tokener_free(tok);
        return o;
}

static struct json_object *member(const struct json_object *o, const char *k)
{
        struct json_object *v = NULL;

        json_object_object_get_ex(o, k, &v);
        return v;
}

/* Make our record of p's client match its state; the client's events run. */
static void apply_state(struct pxl_mirror *m, struct pxl_peer *p,
                        const char *text, size_t len)
{
        struct pxl_worker *srv = m->srv;
        struct json_object *o = parse_json(text, len);
        struct json_object *id, *rooms, *meta, *seen;
        struct pxl_client *c;
        bool fresh = false;

        id = member(o, "id");
        rooms = member(o, "rooms");
        if (!json_object_is_type(id, json_type_string) ||
            json_object_get_string_len(id) != 32 ||
            !json_object_is_type(rooms, json_type_array)) {
                pxl_logs(PXL_LOG_WARN, "redis: bad client state from %s",
                         p->id);
                json_object_put(o);
                return;
        }
        c = pxl_clients_get(srv, json_object_get_string(id));
        if (c != NULL && c->peer == NULL) {
                json_object_put(o); /* ours: we know better */
                return;
        }
        if (c == NULL) {
                c = pxl_client_add(srv, NULL, json_object_get_string(id),
                                   json_object_get(member(o, "userId")),
                                   json_object_get(member(o, "token")));
                if (c == NULL) {
                        json_object_put(o);
                        return;
                }
                fresh = true;
        }
        c->peer = p;
        c->mark = false;
        meta = member(o, "meta");
        json_object_put(c->meta);
        c->meta = json_object_is_type(meta, json_type_object) ? json_object_get(meta)
                                                              : NULL;
        if ((seen = member(o, "lastActivity")) != NULL)
                c->last_activity_ms = json_object_get_int64(seen);
        if (fresh)
                pxl_worker_announce(srv, &(struct pxl_change){
                                                 .kind = PXL_CHANGE_CONNECTED,
                                                 .client = c,
                                                 .user_id = c->user_id});
        /* Leaves first: with rooms.multiple off a join would leave anyway. */
        for (size_t i = c->nrooms; i-- > 0;) {
                const struct pxl_room *r = c->rooms[i].room;

                if (!in_rooms(rooms, r->name, r->name_len))
                        pxl_rooms_remove_member(srv, c, r->name, r->name_len, false);
        }
        for (size_t i = 0; i < json_object_array_length(rooms); i++) {
                struct json_object *e = json_object_array_get_idx(rooms, i);
                struct json_object *rn = json_object_array_get_idx(e, 0);
                const char *rname;
                size_t rlen;

                if (!json_object_is_type(rn, json_type_string))
                        continue;
                rname = json_object_get_string(rn);
                rlen = (size_t)json_object_get_string_len(rn);
                pxl_rooms_add_member(srv, c, rname, rlen,
                               json_object_get(json_object_array_get_idx(e, 1)));
        }
        json_object_put(o);
}

static void custom_event(struct pxl_mirror *m, const char *body, size_t len)
{
        const char *ev, *text;
        size_t evlen, tlen;
        struct json_object *o;
        char *ev_name;

        pxl_wire_split(body, len, &ev, &evlen, &text, &tlen);
        if (text == NULL || (ev_name = strndup(ev, evlen)) == NULL)
                return;
        o = parse_json(text, tlen);
        pxl_bus_publish(m->srv, ev_name, o);
        json_object_put(o);
        free(ev_name);
}

struct snapshot_req {
        struct pxl_mirror *m;
        size_t len;
        char id[];
};

static void apply_snapshot(struct pxl_mirror *m, struct pxl_peer *p,
                           const redisReply *rep)
{
        struct pxl_worker *srv = m->srv;
        struct pxl_client *c;
        uint64_t floor = 0;
        struct held *h, *next;

        for (size_t i = 0; i + 1 < rep->elements; i += 2)
                if (rep->element[i]->len == 4 &&
                    memcmp(rep->element[i]->str, "#seq", 4) == 0)
                        floor = strtoull(rep->element[i + 1]->str, NULL, 10);
        TAILQ_FOREACH(c, &srv->client_order, order)
                c->mark = c->peer == p;
        for (size_t i = 0; i + 1 < rep->elements; i += 2)
                if (rep->element[i]->len == 32)
                        apply_state(m, p, rep->element[i + 1]->str,
                                    rep->element[i + 1]->len);
        /* Those not in the snapshot have gone. */
        remove_marked(srv, p);
        p->last_seq = floor;
        p->syncing = false;
        /*
         * Events that came meanwhile, newer than the snapshot. A gap among
         * them is not asked about again: the hash is written before each
         * event is published, so a snapshot read after we subscribed
         * misses nothing but what a lost connection lost (and a reconnect
         * resyncs everything). One of them may drop p itself.
         */
        h = p->held;
        p->held = NULL;
        p->held_tail = &p->held;
        for (; h != NULL; h = next) {
                struct pxl_wire w;

                next = h->next;
                if (pxl_wire_parse(h->msg, h->len, &w) == 0 &&
                    (p = peer_get(m, w.origin, w.origin_len)) != NULL) {
                        if (p->syncing) {
                                hold(p, h->msg, h->len);
                        } else if (w.seq > p->last_seq) {
                                p->last_seq = w.seq;
                                apply_event(m, p, &w);
                        }
                }
                free(h);
        }
}

static void on_snapshot(void *owner, struct redisReply *rep, void *arg)
{
        struct pxl_worker *srv = owner;
        struct snapshot_req *req = arg;
        struct pxl_mirror *m = srv->mirror;
        struct pxl_peer *p = m ? peer_get(m, req->id, req->len) : NULL;

        if (p != NULL) {
                if (rep != NULL && rep->type == REDIS_REPLY_ARRAY) {
                        apply_snapshot(m, p, rep);
                } else {
                        /* Lost the connection: the reconnect resyncs. */
                        p->syncing = false;
                        free_held(p);
                }
        }
        free(req);
}

static void request_snapshot(struct pxl_mirror *m, struct pxl_peer *p)
{
        struct snapshot_req *req;
        const char *key;
        size_t klen;

        if (p->syncing)
                return;
        key = name(m, &m->key, "clients:", p->id, p->id_len, &klen);
        req = malloc(sizeof(*req) + p->id_len);
        if (key == NULL || req == NULL) {
                free(req);
                return;
        }
        req->m = m;
        req->len = p->id_len;
        memcpy(req->id, p->id, p->id_len);
        {
                const char *argv[2] = {"HGETALL", key};
                size_t lens[2] = {7, klen};

                if (cmd(m, on_snapshot, req, 2, argv, lens) < 0) {
                        free(req);
                        return;
                }
        }
        p->syncing = true;
}

static void hold(struct pxl_peer *p, const char *msg, size_t len)
{
        struct held *h = malloc(sizeof(*h) + len);

        if (h == NULL)
                return; /* the snapshot still brings the state */
        h->next = NULL;
        h->len = len;
        memcpy(h->msg, msg, len);
        *p->held_tail = h;
        p->held_tail = &h->next;
}

/*
 * A departure's close code: the body's digits, at most its length (a
 * held event is a copy, not a NUL-terminated string); 1006 when none.
 */
static int close_code(const char *body, size_t len)
{
        int code = 0;
        size_t i;

        for (i = 0; i < len && i < 4 && body[i] >= '0' && body[i] <= '9'; i++)
                code = code * 10 + (body[i] - '0');
        return i > 0 ? code : PXL_CLOSE_ABNORMAL;
}

static void apply_event(struct pxl_mirror *m, struct pxl_peer *p,
                        const struct pxl_wire *w)
{
        struct pxl_worker *srv = m->srv;
        struct pxl_client *c;
        struct pxl_peer *dead;
        char id[33];

        switch (w->kind) {
        case 'c':
                apply_state(m, p, w->body, w->body_len);
                break;
        case 'd':
                if (w->arg_len != 32)
                        break;
                memcpy(id, w->arg, 32);
                id[32] = '\0';
                c = pxl_clients_get(srv, id);
                if (c != NULL && c->peer == p)
                        remove_remote(srv, c,
                                      close_code(w->body, w->body_len));
                break;
        case 'p':
                custom_event(m, w->body, w->body_len);
                break;
        case 's':
                request_snapshot(m, p);
                break;
        case 'g':
                /* A worker is gone: p itself, or p's predecessor. */
                dead = peer_get(m, w->arg, w->arg_len);
                if (dead != NULL)
                        drop_peer(m, dead);
                break;
        default:
                break;
        }
}

static void handle_event(struct pxl_mirror *m, struct pxl_peer *p,
                         const char *msg, size_t len)
{
        struct pxl_wire w;

        if (pxl_wire_parse(msg, len, &w) < 0)
                return;
        if (w.seq == 0) {
                /* Custom events and departures are not client state. */
                apply_event(m, p, &w);
                return;
        }
        if (p->syncing) {
                hold(p, msg, len);
                return;
        }
        if (w.seq <= p->last_seq)
                return; /* already in the snapshot we applied */
        if (w.seq != p->last_seq + 1) {
                /* Missed some: the snapshot has them, this one waits. */
                hold(p, msg, len);
                request_snapshot(m, p);
                return;
        }
        p->last_seq = w.seq;
        apply_event(m, p, &w);
}

/* Drop a worker and every client of it; members of their rooms are told. */
static void drop_peer(struct pxl_mirror *m, struct pxl_peer *p)
{
        struct pxl_worker *srv = m->srv;
        struct pxl_client *c;
        size_t n = 0;

        TAILQ_FOREACH(c, &srv->client_order, order) {
                c->mark = c->peer == p;
                n += c->mark;
        }
        pxl_logs(PXL_LOG_NOTICE, "redis: worker %s is gone (%zu clients)",
                 p->id, n);
        remove_marked(srv, p);
        free_held(p);
        pxl_map_remove(&m->peers, &p->node);
        free(p);
}

/* ---- heartbeat -------------------------------------------------------------- */

static void on_heartbeat(void *owner, struct redisReply *rep, void *arg)
{
        struct pxl_worker *srv = owner;
        struct pxl_mirror *m = srv->mirror;
        unsigned round = (unsigned)(uintptr_t)arg;
        struct pxl_map_iter it;
        struct pxl_map_node *n;
        bool resync;

        if (m == NULL)
                return;
        m->hb_sent_ms = 0;
        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
                if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
                        pxl_logs(PXL_LOG_ERR, "redis: heartbeat failed: %s",
                                 rep->str);
                return;
        }
        resync = m->resync;
        m->resync = false;
        /* Live workers we have not heard of yet: learn their clients. */
        for (size_t i = 0; i < rep->elements; i++) {
                const redisReply *e = rep->element[i];
                struct pxl_peer *p;

                if (e->type != REDIS_REPLY_STRING ||
                    (e->len == m->self_len && memcmp(e->str, m->self, e->len) == 0))
                        continue;
                p = peer_get(m, e->str, e->len);
                if (p == NULL) {
                        p = peer_add(m, e->str, e->len);
                        if (p != NULL)
                                request_snapshot(m, p);
                } else if (resync) {
                        request_snapshot(m, p);
                }
        }
        /*
         * Known workers that are not live any more (and were known then).
         * Not just after we reconnected: a Redis that restarted empty has
         * no alive keys until the others are back too.
         */
        if (pxl_worker_now_ms(srv) - m->up_ms <
            (int64_t)srv->conf->redis.dead_after * 1000)
                return;
        pxl_map_iter_init(&it, &m->peers);
        while ((n = pxl_map_iter_next(&it)) != NULL) {
                struct pxl_peer *p = pxl_container_of(n, struct pxl_peer, node);
                bool live = false;

                for (size_t i = 0; i < rep->elements && !live; i++)
                        live = rep->element[i]->len == p->id_len &&
                               memcmp(rep->element[i]->str, p->id, p->id_len) == 0;
                if (!live && p->born_round < round)
                        drop_peer(m, p);
        }
}

static void heartbeat(struct pxl_mirror *m)
{
        char ttl[24];
        int n = snprintf(ttl, sizeof(ttl), "%u",
                         m->srv->conf->redis.dead_after * 1000u);
        const char *argv[6] = {"EVAL", heartbeat_lua, "0", m->prefix, m->self,
                               ttl};
        size_t lens[6] = {4, sizeof(heartbeat_lua) - 1, 1, m->prefix_len,
                          m->self_len, (size_t)n};

        m->round++;
        if (cmd(m, on_heartbeat, (void *)(uintptr_t)m->round, 6, argv, lens) == 0 &&
            m->hb_sent_ms == 0)
                m->hb_sent_ms = pxl_worker_now_ms(m->srv);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_mirror *m = arg;
        int64_t limit = (int64_t)m->srv->conf->redis.dead_after * 1000;

        (void)fd;
        (void)what;
        if (!pxl_redis_up(m->redis))
                return;
        if (m->hb_sent_ms != 0 &&
            pxl_worker_now_ms(m->srv) - m->hb_sent_ms > limit) {
                m->hb_sent_ms = 0;
                pxl_redis_reset(m->redis, "no answer to the heartbeat");
                return;
        }
        heartbeat(m);
        pxl_redis_sweep(m->redis);
}

/* Rewrite our hash from our clients, then tell the others to reload it. */
static void write_snapshot(struct pxl_mirror *m)
{
        struct pxl_worker *srv = m->srv;
        enum { CHUNK = 128 };
        const char *argv[2 + 2 * CHUNK + 2];
        size_t lens[2 + 2 * CHUNK + 2];
        struct json_object *states[CHUNK];
        struct pxl_client *c = TAILQ_FIRST(&srv->client_order);
        const char *key;
        size_t klen, slen;
        char seqs[24];

        key = name(m, &m->key, "clients:", m->self, m->self_len, &klen);
        if (key == NULL)
                return;
        argv[0] = "DEL";
        lens[0] = 3;
        argv[1] = key;
        lens[1] = klen;
        cmd(m, NULL, NULL, 2, argv, lens);
        m->seq++;
        seq_text(m->seq, seqs, sizeof(seqs), &slen);
        for (;;) {
                int argc = 2, ns = 0;

                argv[0] = "HSET";
                lens[0] = 4;
                for (; c != NULL && ns < CHUNK; c = TAILQ_NEXT(c, order)) {
                        if (c->peer != NULL || c->gone)
                                continue;
                        if ((states[ns] = state_json(c)) == NULL)
                                continue;
                        argv[argc] = c->id;
                        lens[argc++] = 32;
                        argv[argc] = state_text(states[ns], &lens[argc]);
                        argc++;
                        ns++;
                }
                if (c == NULL) {
                        /* The last chunk carries the number. */
                        argv[argc] = "#seq";
                        lens[argc++] = 4;
                        argv[argc] = seqs;
                        lens[argc++] = slen;
                }
                if (argc > 2)
                        cmd(m, NULL, NULL, argc, argv, lens);
                for (int i = 0; i < ns; i++)
                        json_object_put(states[i]);
                if (c == NULL)
                        break;
        }
        send_event(m, m->seq, 's', NULL, 0, "", 0, NULL, 0);
}

/* The Redis connections are up (again). */
static void mirror_up(void *arg)
{
        struct pxl_worker *srv = arg;
        struct pxl_mirror *m = srv->mirror;

        if (m == NULL)
                return;
        if (m->up_ms != 0)
                srv->metrics.redis_reconnects++; /* up before: a reconnect */
        m->up_ms = pxl_worker_now_ms(srv);
        m->hb_sent_ms = 0;
        if (m->prev[0] != '\0') {
                /*
                 * Our slot's previous worker died: its clients are gone.
                 * Forgotten before our heartbeat lists the live workers.
                 */
                size_t plen = strlen(m->prev);

                run_forget(m, m->prev, plen);
                send_event(m, 0, 'g', m->prev, plen, "", 0, NULL, 0);
                m->prev[0] = '\0';
        }
        /* Alive before any client state we publish, or others drop us. */
        heartbeat(m);
        write_snapshot(m);
        m->resync = true; /* the heartbeat's answer reloads every peer */
}

static void mirror_down(void *arg)
{
        struct pxl_worker *srv = arg;
        struct pxl_mirror *m = srv->mirror;

        if (m != NULL)
                m->hb_sent_ms = 0;
        /* Remote records stay as they were until the resync corrects them. */
}

/* ---- receiving -------------------------------------------------------------- */

static bool is_self(const struct pxl_mirror *m, const char *s, size_t len)
{
        return len == m->self_len && memcmp(s, m->self, len) == 0;
}

static struct pxl_frame *body_frame(struct pxl_worker *srv,
                                    const struct pxl_wire *w)
{
        struct pxl_frame *f = pxl_frame_new(PXL_WS_OP_TEXT, w->body,
                                            w->body_len);

        if (f != NULL)
                srv->metrics.frames_encoded++;
        return f;
}

static bool excluded(const struct pxl_wire *w, const struct pxl_client *c)
{
        return w->arg_len == 32 && memcmp(w->arg, c->id, 32) == 0;
}

static void deliver_all(struct pxl_worker *srv, const struct pxl_wire *w)
{
        struct pxl_frame *f = body_frame(srv, w);
        struct pxl_client *c;

        if (f == NULL)
                return;
        TAILQ_FOREACH(c, &srv->client_order, order)
                if (c->conn != NULL && !excluded(w, c))
                        pxl_client_deliver(srv, c, f);
        pxl_frame_unref(f);
}

static void deliver_room(struct pxl_worker *srv, const char *room,
                         size_t len, const struct pxl_wire *w)
{
        struct pxl_room *r = pxl_rooms_get(srv, room, len);
        struct pxl_frame *f;

        if (r == NULL || r->nlocal == 0 || (f = body_frame(srv, w)) == NULL)
                return;
        for (size_t i = 0; i < r->nmembers; i++)
                if (r->members[i]->conn != NULL && !excluded(w, r->members[i]))
                        pxl_client_deliver(srv, r->members[i], f);
        pxl_frame_unref(f);
}

/* The local client named by a request's arg, or NULL. */
static struct pxl_client *local_target(struct pxl_worker *srv,
                                       const char *id, size_t len)
{
        char buf[33];
        struct pxl_client *c;

        if (len != 32)
                return NULL;
        memcpy(buf, id, 32);
        buf[32] = '\0';
        c = pxl_clients_get(srv, buf);
        return c != NULL && c->peer == NULL && c->conn != NULL ? c : NULL;
}

static void set_meta(struct pxl_worker *srv, struct pxl_client *c,
                     const char *body, size_t len)
{
        const char *k, *v;
        size_t klen, vlen;
        struct json_object *o = NULL;
        char *key;

        pxl_wire_split(body, len, &k, &klen, &v, &vlen);
        if ((key = strndup(k, klen)) == NULL)
                return;
        if (v == NULL || (o = parse_json(v, vlen)) != NULL)
                pxl_client_meta_put(srv, c, key, o);
        free(key);
}

static void direct(struct pxl_worker *srv, const struct pxl_wire *w)
{
        struct pxl_client *c;
        struct pxl_frame *f;

        if (w->kind == 't') {
                if ((f = body_frame(srv, w)) == NULL)
                        return;
                for (size_t i = 0; i + 32 <= w->arg_len; i += 33)
                        if ((c = local_target(srv, w->arg + i, 32)) != NULL)
                                pxl_client_deliver(srv, c, f);
                pxl_frame_unref(f);
                return;
        }
        if ((c = local_target(srv, w->arg, w->arg_len)) == NULL)
                return;
        switch (w->kind) {
        case 'x': {
                char *text = strndup(w->body, w->body_len), *reason;
                long code = text ? strtol(text, &reason, 10) : 0;

                if (text != NULL && code > 0 &&
                    pxl_ws_close_code_valid((unsigned)code))
                        pxl_conn_ws_close(c->conn, (uint16_t)code,
                                          *reason == ' ' ? reason + 1 : NULL);
                free(text);
                break;
        }
        case 'j':
                pxl_rooms_add_member(srv, c, w->body, w->body_len, NULL);
                break;
        case 'l':
                pxl_rooms_remove_member(srv, c, w->body, w->body_len, true);
                break;
        case 'm':
                set_meta(srv, c, w->body, w->body_len);
                break;
        default:
                break;
        }
}

static bool starts(const char *s, size_t len, const char *lit, size_t *skip)
{
        size_t n = strlen(lit);

        if (len < n || memcmp(s, lit, n) != 0)
                return false;
        *skip = n;
        return true;
}

/* A message on one of the cluster's channels. */
static void mirror_message(void *arg, const char *channel, size_t chlen,
                           const char *msg, size_t len)
{
        struct pxl_worker *srv = arg;
        struct pxl_mirror *m = srv->mirror;
        struct pxl_wire w;
        struct pxl_peer *p;
        const char *rest;
        size_t rlen, skip;

        if (m == NULL || chlen < m->prefix_len ||
            memcmp(channel, m->prefix, m->prefix_len) != 0)
                return;
        if (pxl_wire_parse(msg, len, &w) < 0) {
                pxl_logs(PXL_LOG_WARN, "redis: malformed message on %.*s",
                         (int)chlen, channel);
                return;
        }
        if (is_self(m, w.origin, w.origin_len))
                return; /* delivered here when it was sent */
        rest = channel + m->prefix_len;
        rlen = chlen - m->prefix_len;
        if (rlen == 6 && memcmp(rest, "events", 6) == 0) {
                p = peer_add(m, w.origin, w.origin_len);
                if (p != NULL)
                        handle_event(m, p, msg, len);
        } else if (rlen == 3 && memcmp(rest, "all", 3) == 0 && w.kind == 'a') {
                deliver_all(srv, &w);
        } else if (starts(rest, rlen, "room:", &skip) && w.kind == 'r') {
                deliver_room(srv, rest + skip, rlen - skip, &w);
        } else if (starts(rest, rlen, "worker:", &skip) &&
                   is_self(m, rest + skip, rlen - skip)) {
                direct(srv, &w);
        }
}

/* ---- sending to other workers ------------------------------------------------- */

static bool mirror_reaches(struct pxl_worker *srv)
{
        return srv->mirror != NULL && pxl_redis_up(srv->mirror->redis);
}

static const char *frame_payload(const struct pxl_frame *f)
{
        return (const char *)f->data + (f->len - f->payload_len);
}

static void send_to_channel(struct pxl_mirror *m, const char *ch, size_t chlen,
                            char kind, const char *exclude,
                            const struct pxl_frame *f)
{
        send_msg(m, ch, chlen, 0, kind, exclude, exclude ? strlen(exclude) : 0,
                 frame_payload(f), f->payload_len, NULL, 0);
}

static void mirror_send_all(struct pxl_worker *srv, const struct pxl_frame *f,
                         const char *exclude)
{
        struct pxl_mirror *m = srv->mirror;
        const char *ch;
        size_t len;

        if (m == NULL || (ch = name(m, &m->key, "all", NULL, 0, &len)) == NULL)
                return;
        send_to_channel(m, ch, len, 'a', exclude, f);
}

static void mirror_send_room(struct pxl_worker *srv, const struct pxl_room *r,
                          const struct pxl_frame *f, const char *exclude)
{
        struct pxl_mirror *m = srv->mirror;
        const char *ch;
        size_t len;

        if (m == NULL || r->nmembers == r->nlocal)
                return; /* no member elsewhere */
        ch = name(m, &m->key, "room:", r->name, r->name_len, &len);
        if (ch != NULL)
                send_to_channel(m, ch, len, 'r', exclude, f);
}

static int by_peer(const void *a, const void *b)
{
        const struct pxl_client *x = *(struct pxl_client *const *)a;
        const struct pxl_client *y = *(struct pxl_client *const *)b;
        uintptr_t px = (uintptr_t)x->peer, py = (uintptr_t)y->peer;

        return px < py ? -1 : px > py;
}

static int mirror_send_clients(struct pxl_worker *srv,
                            struct pxl_client *const *cs, size_t n,
                            const struct pxl_frame *f)
{
        struct pxl_mirror *m = srv->mirror;
        struct pxl_client **v;
        int sent = 0;

        if (m == NULL || n == 0)
                return 0;
        if ((v = malloc(n * sizeof(*v))) == NULL)
                return PXL_ENOMEM;
        memcpy(v, cs, n * sizeof(*v));
        qsort(v, n, sizeof(*v), by_peer);
        /* One message per worker: "t" with the ids joined by commas. */
        for (size_t i = 0; i < n;) {
                const struct pxl_peer *p = v[i]->peer;
                const char *ch;
                size_t j, len;

                pxl_str_reset(&m->key2, 1 << 16);
                for (j = i; j < n && v[j]->peer == p; j++) {
                        if (j > i)
                                pxl_str_append(&m->key2, ",", 1);
                        pxl_str_append(&m->key2, v[j]->id, 32);
                }
                ch = name(m, &m->key, "worker:", p->id, p->id_len, &len);
                if (send_msg(m, ch, len, 0, 't', m->key2.p, m->key2.len,
                             frame_payload(f), f->payload_len, NULL, 0) == 0)
                        sent += (int)(j - i);
                i = j;
        }
        free(v);
        return sent;
}

static int mirror_forward(struct pxl_worker *srv, const struct pxl_client *c,
                       char kind, const char *a, size_t alen, const char *b,
                       size_t blen)
{
        struct pxl_mirror *m = srv->mirror;
        const char *ch;
        size_t len;

        if (m == NULL || c->peer == NULL)
                return PXL_EINVAL;
        ch = name(m, &m->key, "worker:", c->peer->id, c->peer->id_len, &len);
        return send_msg(m, ch, len, 0, kind, c->id, 32, a, alen, b, blen);
}

/* A room got its first member here (add) or lost its last one. */
static void mirror_room_local(struct pxl_worker *srv, const char *room,
                              size_t room_len, bool add)
{
        struct pxl_mirror *m = srv->mirror;
        const char *ch;
        size_t len;

        if (m == NULL)
                return;
        ch = name(m, &m->key, "room:", room, room_len, &len);
        if (ch == NULL)
                return;
        if (add)
                pxl_redis_chan_ref(m->redis, ch, len, mirror_message, srv);
        else
                pxl_redis_chan_unref(m->redis, ch, len);
}

/* ---- start and stop -------------------------------------------------------------- */

static int ref_name(struct pxl_mirror *m, const char *what, const char *suffix,
                    size_t slen)
{
        size_t len;
        const char *ch = name(m, &m->key, what, suffix, slen, &len);

        return ch ? pxl_redis_chan_ref(m->redis, ch, len, mirror_message,
                                       m->srv)
                  : PXL_ENOMEM;
}

static int mirror_start(struct pxl_worker *srv, struct pxl_str *errors)
{
        struct pxl_mirror *m;
        struct timeval tv = {(time_t)srv->conf->redis.heartbeat_interval, 0};

        if (!srv->conf->redis.enabled)
                return PXL_OK;
        if ((m = calloc(1, sizeof(*m))) == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        srv->mirror = m;
        m->srv = srv;
        m->self_len = (size_t)snprintf(m->self, sizeof(m->self), "%s-%u-%u",
                                       srv->node_id, srv->worker_index,
                                       srv->worker_gen);
        if (srv->worker_gen > 0)
                snprintf(m->prev, sizeof(m->prev), "%s-%u-%u", srv->node_id,
                         srv->worker_index, srv->worker_gen - 1);
        m->prefix_len = (size_t)snprintf(m->prefix, sizeof(m->prefix),
                                         "pxl:%s:", srv->conf->name);
        m->tick = event_new(srv->base, -1, EV_PERSIST, tick_cb, m);
        if (m->tick == NULL || event_add(m->tick, &tv) < 0) {
                pxl_str_puts(errors, "cannot create the Redis heartbeat\n");
                return PXL_ERR;
        }
        m->redis = pxl_redis_start(
                &(struct pxl_redis_owner){
                        .base = srv->base,
                        .conf = &srv->conf->redis,
                        .app = srv->conf->name,
                        .file = srv->conf->file,
                        .up = mirror_up,
                        .down = mirror_down,
                        .arg = srv,
                        .published = &srv->metrics.redis_published,
                        .received = &srv->metrics.redis_received,
                        .dropped = &srv->metrics.redis_dropped},
                errors);
        if (m->redis == NULL)
                return PXL_ERR;
        srv->redis = m->redis; /* the plugins' Redis API uses it too */
        if (ref_name(m, "events", NULL, 0) < 0 || ref_name(m, "all", NULL, 0) < 0 ||
            ref_name(m, "worker:", m->self, m->self_len) < 0) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        pxl_logs(PXL_LOG_INFO, "redis: this worker is %s in app channels %s*",
                 m->self, m->prefix);
        return PXL_OK;
}

static void mirror_stop(struct pxl_worker *srv)
{
        struct pxl_mirror *m = srv->mirror;
        struct pxl_map_iter it;
        struct pxl_map_node *n;

        if (m == NULL)
                return;
        if (pxl_redis_up(m->redis)) {
                /* The others drop our remaining clients at once. */
                run_forget(m, m->self, m->self_len);
                send_event(m, 0, 'g', m->self, m->self_len, "", 0, NULL, 0);
        }
        pxl_redis_stop(m->redis);
        m->redis = NULL;
        srv->redis = NULL;
        srv->mirror = NULL;
        /* Records of other workers' clients point at the peers freed below. */
        for (struct pxl_client *c = TAILQ_FIRST(&srv->client_order), *next;
             c != NULL; c = next) {
                next = TAILQ_NEXT(c, order);
                if (c->peer != NULL)
                        pxl_client_remove(srv, c);
        }
        if (m->tick != NULL)
                event_free(m->tick);
        pxl_map_iter_init(&it, &m->peers);
        while ((n = pxl_map_iter_next(&it)) != NULL) {
                struct pxl_peer *p = pxl_container_of(n, struct pxl_peer, node);

                free_held(p);
                pxl_map_remove(&m->peers, n);
                free(p);
        }
        pxl_map_fini(&m->peers);
        pxl_str_fini(&m->msg);
        pxl_str_fini(&m->key);
        pxl_str_fini(&m->key2);
        free(m);
}

/* ---- what the core sees of the mirror ------------------------------------ */

static void mirror_on_change(struct pxl_worker *srv,
                             const struct pxl_change *ch, void *arg)
{
        (void)arg;
        switch (ch->kind) {
        case PXL_CHANGE_JOINED:
        case PXL_CHANGE_LEFT:
                if (ch->room_edge)
                        mirror_room_local(srv, ch->room, ch->room_len,
                                          ch->kind == PXL_CHANGE_JOINED);
                mirror_client_changed(srv, ch->client);
                break;
        case PXL_CHANGE_CONNECTED:
        case PXL_CHANGE_META:
                mirror_client_changed(srv, ch->client);
                break;
        case PXL_CHANGE_GONE:
                mirror_client_gone(srv, ch->client, ch->close_code);
                break;
        case PXL_CHANGE_LEFT_ALL:
                break;
        }
}

static const struct pxl_remote mirror_remote = {
        .reaches = mirror_reaches,
        .forward = mirror_forward,
        .send_clients = mirror_send_clients,
        .send_all = mirror_send_all,
        .send_room = mirror_send_room,
        .publish = mirror_publish_custom,
};

/* For health checks: both Redis connections are open. */
static bool redis_up(const struct pxl_worker *srv, void *arg)
{
        (void)arg;
        return pxl_redis_up(srv->redis);
}

static const struct pxl_service mirror_service = {
        .name = "cluster view",
        .start = mirror_start,
        .stop = mirror_stop,
};

int pxl_mirror_install(struct pxl_worker *srv)
{
        if (!srv->conf->redis.enabled)
                return PXL_OK;
        if (pxl_worker_add_service(srv, &mirror_service) < 0 ||
            pxl_worker_watch(srv, mirror_on_change, NULL) < 0 ||
            pxl_worker_add_dependency(srv, "redis", srv->conf->redis.required,
                                      redis_up, NULL) < 0)
                return PXL_ENOMEM;
        srv->remote = &mirror_remote;
        return PXL_OK;
}
