/*
 * pxl_endpoints.c - GET /health and GET /metrics for operators, on the
 * WebSocket listener (the worker's HTTP hook) or on an admin listener;
 * each worker's figures in its slot of a mapping the node shares. Parsing
 * is pxl_http.c's, the text format pxl_prom.c's, allow lists pxl_allow.c's.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_allow.h"
#include "pxl_endpoints.h"
#include "pxl_http.h"
#include "pxl_listen.h"
#include "pxl_log.h"
#include "pxl_prom.h"
#include "pxl_time.h"

/* A worker's slot is refreshed this often, and at each of its scrapes. */
#define PUBLISH_MS 250
/* Process figures (a walk of /proc/self/fd) once in this many publishes. */
#define PROCESS_EVERY 4
/* Figures of the reporters (the database, the queues) a slot keeps. */
#define FIGURES_MAX 256 /* 10 a queue: 25 queues and the database */
#define FIGURE_NAME 64
#define DEP_NAME    16

#define NORATE                                 0
#define RATE                                   1
#define PXL_COUNT(name, prom, key, help, rate) +1
enum { NCOUNTERS = 0 PXL_COUNTERS(PXL_COUNT) };
#undef PXL_COUNT

/* The gauges every worker has, in the order they are exposed. */
static const struct {
        const char *name, *type, *help;
} gauges[] = {
        {"pxl_connections", "gauge", "WebSocket clients connected (upgraded)"},
        {"pxl_handshaking", "gauge", "connections still in the HTTP upgrade"},
        {"pxl_clients", "gauge",
         "client records: this worker's clients and, with Redis, the "
         "mirrored clients of other workers"},
        {"pxl_rooms", "gauge", "rooms with a member"},
        {"process_resident_memory_bytes", "gauge",
         "resident memory size in bytes"},
        {"process_open_fds", "gauge", "open file descriptors"},
        {"process_cpu_seconds_total", "counter",
         "user and system CPU time spent in seconds"},
        {"process_start_time_seconds", "gauge",
         "start time of the process since the epoch in seconds"},
};
enum {
        G_CONNECTIONS,
        G_HANDSHAKING,
        G_CLIENTS,
        G_ROOMS,
        G_RSS,
        G_FDS,
        G_CPU,
        G_START,
        NGAUGES
};

/* A reporter's figure: "pxl_queue_waiting" {queue="mail"} 3. */
struct figure {
        char name[FIGURE_NAME];
        char label[16]; /* "" when none */
        char value[48];
        bool counter;
        double v;
};

/* One worker's figures in the node's shared mapping. */
struct slot {
        uint64_t seq; /* odd while its worker writes it */
        int32_t pid;  /* 0: never written */
        double counters[NCOUNTERS];
        double gauges[NGAUGES];
        unsigned ndeps;
        struct {
                char name[DEP_NAME];
                bool up;
        } deps[PXL_WORKER_DEPENDENCIES];
        unsigned nfigures;
        struct figure figures[FIGURES_MAX];
};

struct admin_conn;
LIST_HEAD(admin_list, admin_conn);

struct endpoints {
        struct slot *slots; /* MAP_SHARED, one per worker */
        size_t nslots;
        double started; /* node start, seconds since the epoch */
        struct pxl_allow_net *metrics_allow, *health_allow;
        size_t nmetrics_allow, nhealth_allow; /* health: 0 = any */
        /* in a serving worker */
        struct pxl_worker *srv;
        struct evconnlistener *admin;
        struct admin_list conns;
        struct event *publish_timer;
        unsigned publishes;
        double process[4];  /* the last G_RSS..G_START figures */
        struct slot *draft; /* this worker's figures, before publishing */
        struct pxl_str body;
};

static struct endpoints *installed;

/* ---- this worker's figures ---------------------------------------------- */

static double now_seconds(void)
{
        struct timeval tv;

        gettimeofday(&tv, NULL);
        return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double open_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        double n = 0;

        if (d == NULL)
                return 0;
        while ((de = readdir(d)) != NULL)
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1; /* the directory's own descriptor */
}

static double resident_bytes(void)
{
        FILE *f = fopen("/proc/self/statm", "r");
        unsigned long size = 0, rss = 0;

        if (f == NULL)
                return 0;
        if (fscanf(f, "%lu %lu", &size, &rss) != 2)
                rss = 0;
        fclose(f);
        return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

static void process_figures(struct endpoints *e, double out[4])
{
        struct rusage ru;

        out[0] = resident_bytes();
        out[1] = open_fds();
        out[2] = 0;
        if (getrusage(RUSAGE_SELF, &ru) == 0)
                out[2] = (double)ru.ru_utime.tv_sec +
                         (double)ru.ru_utime.tv_usec / 1e6 +
                         (double)ru.ru_stime.tv_sec +
                         (double)ru.ru_stime.tv_usec / 1e6;
        out[3] = e->started;
}

/* Counted ever since the start; every other figure is a level. */
static bool is_counter_key(const char *key)
{
        static const char *const counters[] = {"queries", "failed", "processed",
                                               "retried", "died"};

        for (size_t i = 0; i < sizeof(counters) / sizeof(*counters); i++)
                if (strcmp(key, counters[i]) == 0)
                        return true;
        return false;
}

/* "queues" -> "queue": the group's name, one of it. */
static void singular(char *out, size_t cap, const char *group)
{
        size_t n = strlen(group);

        if (n > 1 && group[n - 1] == 's')
                n--;
        snprintf(out, cap, "%.*s", (int)n, group);
}

static void add_figure(struct slot *sl, const char *group, const char *key,
                       const char *label, const char *value,
                       struct json_object *v)
{
        struct figure *f;
        char g[FIGURE_NAME];

        static bool told;

        if (!json_object_is_type(v, json_type_int) &&
            !json_object_is_type(v, json_type_double))
                return;
        if (sl->nfigures == FIGURES_MAX) {
                if (!told)
                        pxl_logs(PXL_LOG_WARN,
                                 "metrics: more than %d figures of the "
                                 "database and the queues; /metrics leaves "
                                 "the rest out",
                                 FIGURES_MAX);
                told = true;
                return;
        }
        f = &sl->figures[sl->nfigures];
        memset(f, 0, sizeof(*f));
        singular(g, sizeof(g), group);
        snprintf(f->name, sizeof(f->name), "pxl_");
        if (pxl_prom_name_from_key(f->name, sizeof(f->name), g) < 0 ||
            pxl_prom_name_from_key(f->name, sizeof(f->name), "_") < 0 ||
            pxl_prom_name_from_key(f->name, sizeof(f->name), key) < 0)
                return;
        f->counter = is_counter_key(key);
        if (f->counter &&
            pxl_prom_name_from_key(f->name, sizeof(f->name), "_total") < 0)
                return;
        if (label != NULL) {
                snprintf(f->label, sizeof(f->label), "%.*s",
                         (int)sizeof(f->label) - 1, g);
                snprintf(f->value, sizeof(f->value), "%.*s",
                         (int)sizeof(f->value) - 1, value);
        }
        f->v = json_object_get_double(v);
        sl->nfigures++;
}

/*
 * The reporters' snapshot, flattened: {"database":{"queries":3}} is
 * pxl_database_queries_total, {"queues":{"mail":{"waiting":1}}} is
 * pxl_queue_waiting{queue="mail"}. Texts, booleans and anything deeper
 * (quantiles) are left out.
 */
static void report_figures(struct pxl_worker *srv, struct slot *sl)
{
        struct json_object *o = json_object_new_object();
        struct json_object_iterator g, gend, k, kend, f, fend;

        sl->nfigures = 0;
        if (o == NULL)
                return;
        for (unsigned i = 0; i < srv->nreporters; i++)
                srv->reporters[i].fn(srv, o, srv->reporters[i].arg);
        for (g = json_object_iter_begin(o), gend = json_object_iter_end(o);
             !json_object_iter_equal(&g, &gend); json_object_iter_next(&g)) {
                const char *group = json_object_iter_peek_name(&g);
                struct json_object *gv = json_object_iter_peek_value(&g);

                if (!json_object_is_type(gv, json_type_object))
                        continue;
                for (k = json_object_iter_begin(gv),
                    kend = json_object_iter_end(gv);
                     !json_object_iter_equal(&k, &kend);
                     json_object_iter_next(&k)) {
                        const char *key = json_object_iter_peek_name(&k);
                        struct json_object *v = json_object_iter_peek_value(&k);

                        if (!json_object_is_type(v, json_type_object)) {
                                add_figure(sl, group, key, NULL, NULL, v);
                                continue;
                        }
                        for (f = json_object_iter_begin(v),
                            fend = json_object_iter_end(v);
                             !json_object_iter_equal(&f, &fend);
                             json_object_iter_next(&f))
                                add_figure(sl, group,
                                           json_object_iter_peek_name(&f),
                                           group, key,
                                           json_object_iter_peek_value(&f));
                }
        }
        json_object_put(o);
}

/* The bytes of a slot from pid to its last figure in use. */
#define SLOT_HEAD offsetof(struct slot, pid)
static size_t slot_used(const struct slot *sl)
{
        unsigned n = sl->nfigures <= FIGURES_MAX ? sl->nfigures : 0;

        return offsetof(struct slot, figures) + n * sizeof(struct figure);
}

/*
 * This worker's figures, made in a draft (the reporters allocate), then
 * copied into its slot as a seqlock's writer: readers retry while seq
 * is odd, which lasts one memcpy.
 */
static void publish(struct endpoints *e, bool with_process)
{
        struct pxl_worker *srv = e->srv;
        struct slot *sl =
                &e->slots[srv->worker_index < e->nslots ? srv->worker_index
                                                        : 0];
        struct slot *d = e->draft;
        const struct pxl_metrics *m = &srv->metrics;
        unsigned i = 0;
        uint64_t seq;

        if (d == NULL)
                return;
        if (with_process || e->publishes++ % PROCESS_EVERY == 0)
                process_figures(e, e->process);
        d->pid = (int32_t)getpid();
#define PXL_COPY(name, prom, key, help, rate)                                  \
        d->counters[i++] = (double)m->name;
        PXL_COUNTERS(PXL_COPY)
#undef PXL_COPY
        d->gauges[G_CONNECTIONS] = srv->nopen;
        d->gauges[G_HANDSHAKING] = srv->nhandshaking;
        d->gauges[G_CLIENTS] = (double)srv->clients.count;
        d->gauges[G_ROOMS] = (double)srv->rooms.count;
        memcpy(&d->gauges[G_RSS], e->process, sizeof(e->process));
        d->ndeps = srv->ndeps;
        for (i = 0; i < srv->ndeps; i++) {
                snprintf(d->deps[i].name, DEP_NAME, "%s", srv->deps[i].name);
                d->deps[i].up = srv->deps[i].up(srv, srv->deps[i].arg);
        }
        report_figures(srv, d);
        seq = sl->seq;
        __atomic_store_n(&sl->seq, seq + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        memcpy((char *)sl + SLOT_HEAD, (const char *)d + SLOT_HEAD,
               slot_used(d) - SLOT_HEAD);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        __atomic_store_n(&sl->seq, seq + 2, __ATOMIC_RELEASE);
}

/* A worker that died leaves its slot until its successor writes it. */
static bool alive(int32_t pid)
{
        return pid != 0 &&
               (pid == getpid() || kill(pid, 0) == 0 || errno == EPERM);
}

/*
 * A consistent copy of slot i (the seqlock's reader side); false when
 * the slot was never written or its worker is gone.
 */
static bool read_slot(const struct endpoints *e, size_t i, struct slot *out)
{
        const struct slot *sl = &e->slots[i];

        for (int tries = 0; tries < 100; tries++) {
                uint64_t a = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);

                if (a % 2 == 0) {
                        /* The fixed part, then the figures in use. */
                        memcpy(out, (const void *)sl,
                               offsetof(struct slot, figures));
                        memcpy(out->figures, (const void *)sl->figures,
                               slot_used(out) - offsetof(struct slot, figures));
                        __atomic_thread_fence(__ATOMIC_SEQ_CST);
                        if (__atomic_load_n(&sl->seq, __ATOMIC_RELAXED) == a)
                                break;
                }
                sched_yield();
        }
        return out->nfigures <= FIGURES_MAX &&
               out->ndeps <= PXL_WORKER_DEPENDENCIES && alive(out->pid);
}

/*
 * Slot i's connections, for health: one aligned double read without
 * the copy (a figure up to PUBLISH_MS old either way); 0 when gone.
 */
static double slot_connections(const struct endpoints *e, size_t i)
{
        const struct slot *sl = &e->slots[i];
        double v;

        __atomic_load(&sl->gauges[G_CONNECTIONS], &v, __ATOMIC_RELAXED);
        return alive(__atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE)) ? v : 0;
}

/* ---- /metrics ---------------------------------------------------------- */

struct scrape {
        struct slot *v; /* the live slots */
        size_t *index;  /* their worker numbers */
        size_t n;
        bool cluster; /* label samples with worker="N" */
        struct pxl_str labels;
};

static const char *worker_labels(struct scrape *sc, size_t k,
                                 const struct figure *f)
{
        char idx[24];

        sc->labels.len = 0;
        if (sc->labels.p != NULL)
                sc->labels.p[0] = '\0';
        if (sc->cluster) {
                snprintf(idx, sizeof(idx), "%zu", sc->index[k]);
                pxl_prom_label(&sc->labels, "worker", idx);
        }
        if (f != NULL && f->label[0] != '\0')
                pxl_prom_label(&sc->labels, f->label, f->value);
        return sc->labels.p;
}

static bool family_seen(const struct scrape *sc, size_t k, size_t j)
{
        const char *name = sc->v[k].figures[j].name;

        for (size_t a = 0; a <= k; a++)
                for (size_t b = 0; b < (a == k ? j : sc->v[a].nfigures); b++)
                        if (strcmp(sc->v[a].figures[b].name, name) == 0)
                                return true;
        return false;
}

static void render_metrics(struct scrape *sc, struct pxl_str *out)
{
        size_t c = 0;

#define PXL_FAMILY(name, prom, key, help, rate)                                \
        pxl_prom_family(out, "pxl_" prom "_total", "counter", help);           \
        for (size_t k = 0; k < sc->n; k++)                                     \
                pxl_prom_sample(out, "pxl_" prom "_total",                     \
                                worker_labels(sc, k, NULL),                    \
                                sc->v[k].counters[c]);                         \
        c++;
        PXL_COUNTERS(PXL_FAMILY)
#undef PXL_FAMILY
        for (size_t g = 0; g < NGAUGES; g++) {
                pxl_prom_family(out, gauges[g].name, gauges[g].type,
                                gauges[g].help);
                for (size_t k = 0; k < sc->n; k++)
                        pxl_prom_sample(out, gauges[g].name,
                                        worker_labels(sc, k, NULL),
                                        sc->v[k].gauges[g]);
        }
        /* Dependencies: the same in every worker (one config). */
        for (size_t d = 0; sc->n > 0 && d < sc->v[0].ndeps; d++) {
                char name[64], help[96];

                snprintf(name, sizeof(name), "pxl_%s_up",
                         sc->v[0].deps[d].name);
                snprintf(help, sizeof(help), "1 while %s is up, else 0",
                         sc->v[0].deps[d].name);
                pxl_prom_family(out, name, "gauge", help);
                for (size_t k = 0; k < sc->n; k++)
                        if (d < sc->v[k].ndeps)
                                pxl_prom_sample(out, name,
                                                worker_labels(sc, k, NULL),
                                                sc->v[k].deps[d].up);
        }
        /* The reporters' figures, each family once, in order of appearance. */
        for (size_t k = 0; k < sc->n; k++)
                for (size_t j = 0; j < sc->v[k].nfigures; j++) {
                        const struct figure *f = &sc->v[k].figures[j];
                        char help[128];

                        if (family_seen(sc, k, j))
                                continue;
                        snprintf(help, sizeof(help), "pxl_metrics() figure %s",
                                 f->name + 4);
                        pxl_prom_family(out, f->name,
                                        f->counter ? "counter" : "gauge", help);
                        for (size_t a = k; a < sc->n; a++)
                                for (size_t b = 0; b < sc->v[a].nfigures; b++)
                                        if (strcmp(sc->v[a].figures[b].name,
                                                   f->name) == 0)
                                                pxl_prom_sample(
                                                        out, f->name,
                                                        worker_labels(
                                                                sc, a,
                                                                &sc->v[a].figures
                                                                         [b]),
                                                        sc->v[a].figures[b].v);
                }
}

/* Every live worker's slot, this one's fresh. */
static int gather(struct endpoints *e, struct scrape *sc)
{
        memset(sc, 0, sizeof(*sc));
        publish(e, true);
        sc->v = calloc(e->nslots, sizeof(*sc->v));
        sc->index = calloc(e->nslots, sizeof(*sc->index));
        if (sc->v == NULL || sc->index == NULL)
                return PXL_ENOMEM;
        sc->cluster = e->nslots > 1;
        for (size_t i = 0; i < e->nslots; i++)
                if (read_slot(e, i, &sc->v[sc->n]))
                        sc->index[sc->n++] = i;
        return PXL_OK;
}

static void scrape_fini(struct scrape *sc)
{
        free(sc->v);
        free(sc->index);
        pxl_str_fini(&sc->labels);
}

/* ---- /health ----------------------------------------------------------- */

/* 200 or 503, and the JSON body. No round trip: flags the worker keeps. */
static int render_health(struct endpoints *e, struct pxl_str *out)
{
        struct pxl_worker *srv = e->srv;
        const char *status = "ok";
        long long conns = srv->nopen;
        char line[160];

        for (size_t i = 0; i < e->nslots; i++)
                if (i != srv->worker_index)
                        conns += (long long)slot_connections(e, i);
        for (unsigned i = 0; i < srv->ndeps; i++)
                if (srv->deps[i].required &&
                    !srv->deps[i].up(srv, srv->deps[i].arg))
                        status = "degraded";
        if (srv->stopping)
                status = "draining";
        snprintf(line, sizeof(line),
                 "{\"status\":\"%s\",\"uptime\":%lld,\"connections\":%lld",
                 status, (long long)(now_seconds() - e->started), conns);
        pxl_str_puts(out, line);
        for (unsigned i = 0; i < srv->ndeps; i++) {
                snprintf(
                        line, sizeof(line), ",\"%s\":\"%s\"", srv->deps[i].name,
                        srv->deps[i].up(srv, srv->deps[i].arg) ? "up" : "down");
                pxl_str_puts(out, line);
        }
        pxl_str_puts(out, "}\n");
        return strcmp(status, "ok") == 0 ? 200 : 503;
}

/* ---- HTTP -------------------------------------------------------------- */

static bool path_is(const struct pxl_http_request *req, const char *path)
{
        return req->path.len == strlen(path) &&
               memcmp(req->path.p, path, req->path.len) == 0;
}

static bool method_is(const struct pxl_http_request *req, const char *m)
{
        return req->method.len == strlen(m) &&
               memcmp(req->method.p, m, req->method.len) == 0;
}

/* Head and body (the head alone for HEAD) into out. */
static void respond(struct pxl_str *out, int status, const char *type,
                    const char *body, size_t len, bool head_only,
                    const char *extra)
{
        char head[512];
        size_t n = pxl_http_format_head(head, sizeof(head), status, type, len,
                                        false, extra);

        pxl_str_append(out, head, n < sizeof(head) ? n : sizeof(head) - 1);
        if (!head_only)
                pxl_str_append(out, body, len);
}

static void respond_text(struct pxl_str *out, int status, const char *text,
                         bool head_only, const char *extra)
{
        char body[128];
        int n = snprintf(body, sizeof(body), "%s\n", text);

        respond(out, status, "text/plain; charset=utf-8", body, (size_t)n,
                head_only, extra);
}

/*
 * The answer to a request for one of our paths (1), or 0: not ours.
 * Every answer closes the connection after it.
 */
static int answer(struct endpoints *e, const struct pxl_http_request *req,
                  const struct sockaddr *peer, struct pxl_str *out)
{
        const char *cfg_health = e->srv->conf->endpoints.health_path;
        const char *cfg_metrics = e->srv->conf->endpoints.metrics_path;
        bool health = path_is(req, cfg_health);
        bool head = method_is(req, "HEAD");
        struct scrape sc;
        int status;

        if (!health && !path_is(req, cfg_metrics))
                return 0;
        if (health ? e->nhealth_allow > 0 &&
                             !pxl_allow_match(e->health_allow, e->nhealth_allow,
                                              peer)
                   : !pxl_allow_match(e->metrics_allow, e->nmetrics_allow,
                                      peer)) {
                respond_text(out, 403, "Forbidden", head, NULL);
                return 1;
        }
        if (!method_is(req, "GET") && !head) {
                respond_text(out, 405, "Method Not Allowed", false,
                             "Allow: GET, HEAD\r\n");
                return 1;
        }
        e->body.len = 0;
        if (health) {
                status = render_health(e, &e->body);
                respond(out, status, "application/json", e->body.p, e->body.len,
                        head, "Cache-Control: no-store\r\n");
                return 1;
        }
        if (gather(e, &sc) < 0) {
                scrape_fini(&sc);
                respond_text(out, 500, "Out of memory", head, NULL);
                return 1;
        }
        render_metrics(&sc, &e->body);
        scrape_fini(&sc);
        respond(out, 200, PXL_PROM_CONTENT_TYPE, e->body.p, e->body.len, head,
                NULL);
        return 1;
}

/* The WebSocket listener's hook (no admin group). */
static int http_hook(struct pxl_worker *srv, const struct pxl_http_request *req,
                     const struct sockaddr *peer, struct pxl_str *out,
                     void *arg)
{
        (void)srv;
        return answer(arg, req, peer, out);
}

/* ---- the admin listener: one request per connection, then close -------- */

struct admin_conn {
        LIST_ENTRY(admin_conn) link;
        struct endpoints *e;
        struct bufferevent *bev;
        struct sockaddr_storage peer;
};

static void admin_close(struct admin_conn *ac)
{
        LIST_REMOVE(ac, link);
        bufferevent_free(ac->bev);
        free(ac);
}

static void admin_written_cb(struct bufferevent *bev, void *arg)
{
        (void)bev;
        admin_close(arg);
}

static void admin_event_cb(struct bufferevent *bev, short what, void *arg)
{
        (void)bev;
        (void)what;
        admin_close(arg); /* EOF, error or timeout */
}

static void admin_read_cb(struct bufferevent *bev, void *arg)
{
        struct admin_conn *ac = arg;
        struct endpoints *e = ac->e;
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t max = e->srv->conf->limits.max_header_size;
        size_t have = evbuffer_get_length(in);
        size_t look = have < max + 1 ? have : max + 1;
        struct pxl_http_request req;
        struct pxl_str *out = &e->srv->scratch;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
        ssize_t head = pxl_http_parse_request(p, look, max, &req);

        if (head == PXL_HTTP_NEED_MORE)
                return;
        out->len = 0;
        if (head < 0)
                respond_text(out, 400,
                             head == PXL_HTTP_TOO_LARGE
                                     ? "Request header too large"
                                     : "Malformed HTTP request",
                             false, NULL);
        else if (answer(e, &req, (const struct sockaddr *)&ac->peer, out) == 0)
                respond_text(out, 404, "Not Found", method_is(&req, "HEAD"),
                             NULL);
        bufferevent_disable(bev, EV_READ);
        bufferevent_setcb(bev, NULL, admin_written_cb, admin_event_cb, ac);
        bufferevent_write(bev, out->p, out->len);
}

static void admin_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                            struct sockaddr *sa, int salen, void *arg)
{
        struct endpoints *e = arg;
        struct admin_conn *ac = calloc(1, sizeof(*ac));
        struct timeval tv = {(time_t)e->srv->conf->limits.handshake_timeout, 0};

        (void)l;
        if (ac == NULL ||
            (ac->bev = bufferevent_socket_new(e->srv->base, fd,
                                              BEV_OPT_CLOSE_ON_FREE)) == NULL) {
                free(ac);
                evutil_closesocket(fd);
                return;
        }
        ac->e = e;
        if (salen > 0 && (size_t)salen <= sizeof(ac->peer))
                memcpy(&ac->peer, sa, (size_t)salen);
        LIST_INSERT_HEAD(&e->conns, ac, link);
        bufferevent_set_timeouts(ac->bev, &tv, &tv);
        bufferevent_setcb(ac->bev, admin_read_cb, NULL, admin_event_cb, ac);
        bufferevent_enable(ac->bev, EV_READ);
}

static int admin_listen(struct endpoints *e, struct pxl_str *errors)
{
        const struct pxl_config *conf = e->srv->conf;
        unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                         LEV_OPT_CLOSE_ON_EXEC;
        struct addrinfo *ai = pxl_listen_resolve(conf->endpoints.admin_host,
                                                 conf->endpoints.admin_port,
                                                 conf->file, errors);

        if (ai == NULL)
                return PXL_ERR;
        /* Every worker listens; whichever answers sees all the slots. */
        if (conf->workers > 1)
                flags |= LEV_OPT_REUSEABLE_PORT;
        e->admin =
                evconnlistener_new_bind(e->srv->base, admin_accept_cb, e, flags,
                                        64, ai->ai_addr, (int)ai->ai_addrlen);
        freeaddrinfo(ai);
        if (e->admin == NULL) {
                pxl_str_report(errors, conf->file, 0, "admin",
                               "cannot listen on %s:%u: %s",
                               conf->endpoints.admin_host,
                               conf->endpoints.admin_port, strerror(errno));
                return PXL_ERR;
        }
        if (e->srv->worker_index == 0) {
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);
                unsigned port = conf->endpoints.admin_port;

                memset(&ss, 0, sizeof(ss));
                if (getsockname(evconnlistener_get_fd(e->admin),
                                (struct sockaddr *)&ss, &len) == 0)
                        port = ntohs(ss.ss_family == AF_INET6
                                             ? ((struct sockaddr_in6 *)&ss)
                                                       ->sin6_port
                                             : ((struct sockaddr_in *)&ss)
                                                       ->sin_port);
                pxl_logs(PXL_LOG_NOTICE, "admin listener on %s:%u (%s, %s)",
                         conf->endpoints.admin_host, port,
                         conf->endpoints.health_path,
                         conf->endpoints.metrics_path);
        }
        return PXL_OK;
}

/* ---- the service -------------------------------------------------------- */

static void publish_cb(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        publish(arg, false);
}

static void endpoints_stop(struct pxl_worker *srv);

static int endpoints_start(struct pxl_worker *srv, struct pxl_str *errors)
{
        struct endpoints *e = installed;
        struct timeval tv = pxl_ms_timeval(PUBLISH_MS);

        e->srv = srv;
        LIST_INIT(&e->conns);
        e->draft = calloc(1, sizeof(*e->draft));
        if (e->draft == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        if (srv->conf->endpoints.admin) {
                if (admin_listen(e, errors) < 0)
                        return PXL_ERR;
        } else if (pxl_worker_serve_http(srv, http_hook, e) < 0) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        publish(e, true);
        /* One worker alone publishes at its scrapes only. */
        if (e->nslots > 1) {
                e->publish_timer =
                        event_new(srv->base, -1, EV_PERSIST, publish_cb, e);
                if (e->publish_timer == NULL ||
                    event_add(e->publish_timer, &tv) < 0) {
                        pxl_str_puts(errors, "out of memory\n");
                        return PXL_ENOMEM;
                }
        }
        return PXL_OK;
}

static void endpoints_stop(struct pxl_worker *srv)
{
        struct endpoints *e = installed;

        (void)srv;
        if (e == NULL || e->srv == NULL)
                return;
        /* One walk, then empty (scan-build reads a LIST_FIRST loop as a
         * use after free). */
        for (struct admin_conn *ac = LIST_FIRST(&e->conns), *next; ac != NULL;
             ac = next) {
                next = LIST_NEXT(ac, link);
                bufferevent_free(ac->bev);
                free(ac);
        }
        LIST_INIT(&e->conns);
        if (e->admin != NULL)
                evconnlistener_free(e->admin);
        e->admin = NULL;
        if (e->publish_timer != NULL)
                event_free(e->publish_timer);
        e->publish_timer = NULL;
        free(e->draft);
        e->draft = NULL;
        pxl_str_fini(&e->body);
}

static const struct pxl_service endpoints_service = {
        .name = "endpoints",
        .start = endpoints_start,
        .stop = endpoints_stop,
};

/* The allow list of strings (checked by pxl_conf.c) as networks. */
static int parse_allow(char **list, struct pxl_allow_net **out, size_t *n)
{
        size_t count = 0;
        const char *why;

        while (list != NULL && list[count] != NULL)
                count++;
        *n = 0;
        *out = calloc(count + 1, sizeof(**out));
        if (*out == NULL)
                return PXL_ENOMEM;
        for (size_t i = 0; i < count; i++)
                if (pxl_allow_parse(list[i], &(*out)[*n], &why) == 0)
                        (*n)++;
        return PXL_OK;
}

int pxl_endpoints_install(struct pxl_worker *srv, struct pxl_str *errors)
{
        const struct pxl_endpoints_conf *c = &srv->conf->endpoints;
        static char *loopback[] = {"127.0.0.0/8", "::1", NULL};
        struct endpoints *e = calloc(1, sizeof(*e));

        if (e == NULL)
                goto oom;
        installed = e;
        e->started = now_seconds();
        e->nslots = srv->conf->workers > 1 ? srv->conf->workers : 1;
        e->slots =
                mmap(NULL, e->nslots * sizeof(*e->slots),
                     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (e->slots == MAP_FAILED) {
                e->slots = NULL;
                pxl_str_report(errors, srv->conf->file, 0, NULL,
                               "cannot map the workers' metrics: %s",
                               strerror(errno));
                return PXL_ERR;
        }
        if (parse_allow(c->metrics_allow != NULL ? c->metrics_allow : loopback,
                        &e->metrics_allow, &e->nmetrics_allow) < 0 ||
            parse_allow(c->health_allow, &e->health_allow, &e->nhealth_allow) <
                    0 ||
            pxl_worker_add_service(srv, &endpoints_service) < 0)
                goto oom;
        return PXL_OK;
oom:
        pxl_str_puts(errors, "out of memory\n");
        return PXL_ENOMEM;
}

void pxl_endpoints_fini(void)
{
        struct endpoints *e = installed;

        if (e == NULL)
                return;
        if (e->slots != NULL)
                munmap(e->slots, e->nslots * sizeof(*e->slots));
        free(e->metrics_allow);
        free(e->health_allow);
        pxl_str_fini(&e->body);
        free(e);
        installed = NULL;
}
