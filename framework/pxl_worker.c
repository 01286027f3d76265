/*
 * pxl_worker.c - what the worker's layers share: the loop's cached time
 * (every check in one iteration sees the same now), weak references to
 * connections, the announcement of changes to whatever watches them, and
 * the services that run beside the core.
 */
#include <stdlib.h>
#include <sys/time.h>

#include <event2/event.h>

#include "pxl/pxl.h"
#include "pxl_bus.h"
#include "pxl_clients.h"
#include "pxl_worker.h"

void pxl_conn_ref_put(struct pxl_conn_ref *ref)
{
        if (ref != NULL && --ref->refs == 0)
                free(ref);
}

int64_t pxl_worker_now_us(const struct pxl_worker *srv)
{
        struct timeval tv;

        if (srv->base == NULL ||
            event_base_gettimeofday_cached(srv->base, &tv) < 0)
                gettimeofday(&tv, NULL);
        return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

int64_t pxl_worker_now_ms(const struct pxl_worker *srv)
{
        return pxl_worker_now_us(srv) / 1000;
}

int pxl_worker_watch(struct pxl_worker *srv, pxl_change_fn *fn, void *arg)
{
        if (srv->nwatchers == PXL_WORKER_WATCHERS)
                return PXL_ENOMEM;
        srv->watchers[srv->nwatchers].fn = fn;
        srv->watchers[srv->nwatchers].arg = arg;
        srv->nwatchers++;
        return PXL_OK;
}

void pxl_worker_announce(struct pxl_worker *srv, const struct pxl_change *ch)
{
        pxl_presence_on_change(srv, ch);
        for (unsigned i = 0; i < srv->nwatchers; i++)
                srv->watchers[i].fn(srv, ch, srv->watchers[i].arg);
        pxl_bus_on_change(srv, ch);
}

int pxl_worker_add_reporter(struct pxl_worker *srv, pxl_report_fn *fn,
                            void *arg)
{
        if (srv->nreporters == PXL_WORKER_REPORTERS)
                return PXL_ENOMEM;
        srv->reporters[srv->nreporters].fn = fn;
        srv->reporters[srv->nreporters].arg = arg;
        srv->nreporters++;
        return PXL_OK;
}

int pxl_worker_add_dependency(struct pxl_worker *srv, const char *name,
                              bool required, pxl_up_fn *up, void *arg)
{
        if (srv->ndeps == PXL_WORKER_DEPENDENCIES)
                return PXL_ENOMEM;
        srv->deps[srv->ndeps++] = (struct pxl_dependency){
                .name = name, .required = required, .up = up, .arg = arg};
        return PXL_OK;
}

int pxl_worker_serve_http(struct pxl_worker *srv, pxl_http_fn *fn, void *arg)
{
        if (srv->nhttp == PXL_WORKER_HTTP)
                return PXL_ENOMEM;
        srv->http[srv->nhttp].fn = fn;
        srv->http[srv->nhttp++].arg = arg;
        return PXL_OK;
}

int pxl_worker_answer_http(struct pxl_worker *srv,
                           const struct pxl_http_request *req,
                           const struct sockaddr *peer, struct pxl_str *out)
{
        for (unsigned i = 0; i < srv->nhttp; i++) {
                out->len = 0;
                if (srv->http[i].fn(srv, req, peer, out, srv->http[i].arg) > 0)
                        return 1;
        }
        return 0;
}

int pxl_worker_add_service(struct pxl_worker *srv,
                           const struct pxl_service *svc)
{
        if (srv->nservices == PXL_WORKER_SERVICES)
                return PXL_ENOMEM;
        srv->services[srv->nservices++] = svc;
        return PXL_OK;
}

static int service_slot(const struct pxl_worker *srv,
                        const struct pxl_service *svc)
{
        for (unsigned i = 0; i < srv->nservices; i++)
                if (srv->services[i] == svc)
                        return (int)i;
        return -1;
}

void *pxl_worker_service_state(const struct pxl_worker *srv,
                               const struct pxl_service *svc)
{
        int i = service_slot(srv, svc);

        return i < 0 ? NULL : srv->service_state[i];
}

int pxl_worker_set_service_state(struct pxl_worker *srv,
                                 const struct pxl_service *svc, void *state)
{
        int i = service_slot(srv, svc);

        if (i < 0)
                return PXL_EINVAL;
        srv->service_state[i] = state;
        return PXL_OK;
}

int pxl_worker_start_services(struct pxl_worker *srv, struct pxl_str *errors)
{
        while (srv->nstarted < srv->nservices) {
                const struct pxl_service *svc = srv->services[srv->nstarted++];

                /* Counted as started: stop copes with a start half done. */
                if (svc->start(srv, errors) < 0) {
                        pxl_worker_stop_services(srv);
                        return PXL_ERR;
                }
        }
        return PXL_OK;
}

void pxl_worker_stop_services(struct pxl_worker *srv)
{
        while (srv->nstarted > 0) {
                const struct pxl_service *svc = srv->services[--srv->nstarted];

                svc->stop(srv);
        }
}
