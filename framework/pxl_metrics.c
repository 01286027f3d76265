/*
 * pxl_metrics.c - the per-worker counters: per-second rates, the JSON
 * snapshot plugins read, and the periodic log line. Counting itself is
 * done where things happen (conn, router, clients).
 */
#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_int.h"
#include "pxl_log.h"
#include "pxl_metrics.h"
#include "pxl_worker.h"

#define RATE 1
#define NORATE 0

void pxl_metrics_tick(struct pxl_worker *srv)
{
        struct pxl_metrics *m = &srv->metrics;

#define PXL_RATE(name, prom, key, help, rate)                                  \
        if (rate)                                                              \
                m->per_sec.name = (double)(m->name - m->last.name);            \
        m->last.name = m->name;
        PXL_COUNTERS(PXL_RATE)
#undef PXL_RATE
        m->ticks++;
        if (srv->conf->metrics_log_interval != 0 &&
            m->ticks % srv->conf->metrics_log_interval == 0) {
                const struct pxl_log_field f[] = {
                        {"connections", false, srv->nopen, 0},
                        {"rooms", false, (long long)srv->rooms.count, 0},
                        {"messages_in", false, (long long)m->messages_in, 0},
                        {"messages_out", false, (long long)m->messages_out, 0},
                        {"in_per_sec", true, 0, m->per_sec.messages_in},
                        {"out_per_sec", true, 0, m->per_sec.messages_out},
                        {"bytes_in", false, (long long)m->bytes_in, 0},
                        {"bytes_out", false, (long long)m->bytes_out, 0},
                        {"connects", false, (long long)m->connects, 0},
                        {"disconnects", false, (long long)m->disconnects, 0},
                        {"auth_failures", false, (long long)m->auth_failures,
                         0},
                };

                pxl_log_fields(PXL_LOG_INFO, "metrics", f,
                               sizeof(f) / sizeof(*f));
        }
}

struct json_object *pxl_metrics_json(const struct pxl_worker *srv)
{
        const struct pxl_metrics *m = &srv->metrics;
        struct json_object *o = json_object_new_object();
        struct json_object *rates = json_object_new_object();

        if (o == NULL || rates == NULL) {
                json_object_put(o);
                json_object_put(rates);
                return NULL;
        }
        json_object_object_add(o, "connections",
                               json_object_new_int64(srv->nopen));
        json_object_object_add(o, "handshaking",
                               json_object_new_int64(srv->nhandshaking));
        json_object_object_add(o, "clients",
                               json_object_new_int64((int64_t)srv->clients.count));
        json_object_object_add(o, "rooms",
                               json_object_new_int64((int64_t)srv->rooms.count));
#define PXL_JSON(name, prom, key, help, rate)                                  \
        json_object_object_add(o, key,                                         \
                               json_object_new_int64((int64_t)m->name));       \
        if (rate)                                                              \
                json_object_object_add(                                        \
                        rates, key, json_object_new_double(m->per_sec.name));
        PXL_COUNTERS(PXL_JSON)
#undef PXL_JSON
        json_object_object_add(o, "perSecond", rates);
        for (unsigned i = 0; i < srv->nreporters; i++)
                srv->reporters[i].fn(srv, o, srv->reporters[i].arg);
        return o;
}

struct json_object *pxl_metrics(const struct pxl_ctx *ctx)
{
        return pxl_metrics_json(pxl_ctx_server(ctx));
}
