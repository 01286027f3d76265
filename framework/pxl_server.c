/*
 * pxl_server.c - one worker's life: configure (plugins, routes), start
 * (bind, plugin init), run (event loop), shut down (stop accepting, 1001
 * to every client, drain, fini, free). Connections are pxl_conn.c's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "pxl/pxl.h"
#include "pxl_auth.h"
#include "pxl_clients.h"
#include "pxl_conn.h"
#include "pxl_listen.h"
#include "pxl_log.h"
#include "pxl_notify.h"
#include "pxl_redis_api.h"
#include "pxl_reload.h"
#include "pxl_rooms.h"
#include "pxl_router.h"
#include "pxl_server.h"
#include "pxl_time.h"

/* Load the certificate now, so -t and a bad key fail before binding. */
static int tls_setup(struct pxl_worker *srv, struct pxl_str *errors)
{
        const struct pxl_config *conf = srv->conf;
        const char *key = NULL, *path = NULL, *what = NULL, *why;
        const config_setting_t *s;
        unsigned long err;

        if (conf->tls_cert == NULL || conf->tls_key == NULL)
                return PXL_OK; /* plain ws://, or a config error already */
        srv->tls = SSL_CTX_new(TLS_server_method());
        if (srv->tls == NULL)
                what = "cannot create a TLS context";
        else if (SSL_CTX_set_min_proto_version(srv->tls, TLS1_2_VERSION) != 1)
                what = "cannot require TLS 1.2";
        else if (SSL_CTX_use_certificate_chain_file(srv->tls, conf->tls_cert) != 1)
                key = "listen.tls.certificate", path = conf->tls_cert;
        else if (SSL_CTX_use_PrivateKey_file(srv->tls, conf->tls_key,
                                             SSL_FILETYPE_PEM) != 1)
                key = "listen.tls.key", path = conf->tls_key;
        else if (SSL_CTX_check_private_key(srv->tls) != 1)
                key = "listen.tls.key", what = "does not match the certificate";
        if (what == NULL && key == NULL)
                return PXL_OK;
        err = ERR_peek_last_error();
        if (ERR_GET_REASON(err) == X509_R_KEY_VALUES_MISMATCH)
                key = "listen.tls.key", what = "does not match the certificate";
        /* The first error says why; the last only that PEM failed. */
        why = ERR_GET_REASON(ERR_peek_error()) == PEM_R_NO_START_LINE
                      ? "not PEM (no -----BEGIN line)"
                      : ERR_reason_error_string(ERR_peek_error());
        s = key != NULL ? config_lookup(&conf->cfg, key) : NULL;
        if (what != NULL)
                pxl_str_report(errors, conf->file,
                               s != NULL ? config_setting_source_line(s) : 0,
                               key, "%s", what);
        else
                pxl_str_report(errors, conf->file,
                               s != NULL ? config_setting_source_line(s) : 0,
                               key, "cannot load %s: %s", path,
                               why != NULL ? why : "not PEM");
        ERR_clear_error();
        return PXL_ERR;
}

/* Three priorities: new events get the middle one (1); 2 runs last. */
#define PXL_PRIOS 3
#define PXL_PRIO_FLUSH 2

int pxl_server_init(struct pxl_worker *srv, struct pxl_config *conf,
                    struct pxl_str *errors)
{
        int rc;

        memset(srv, 0, sizeof(*srv));
        SLIST_INIT(&srv->dirty);
        pxl_pool_init(&srv->client_pool, sizeof(struct pxl_client), 256);
        pxl_pool_init(&srv->conn_pool, pxl_conn_size(), 256);
        TAILQ_INIT(&srv->handshaking);
        TAILQ_INIT(&srv->conns);
        TAILQ_INIT(&srv->closing);
        TAILQ_INIT(&srv->dead);
        srv->reserve_fd = -1;
        TAILQ_INIT(&srv->client_order);
        srv->ready_fd = -1;
        srv->conf = conf;
        srv->io = &pxl_conn_io;
        srv->router = pxl_router_new();
        if (srv->router == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        rc = pxl_plugins_load(&srv->plugins, conf, srv->router, errors);
        if (pxl_bus_init(&srv->bus, srv) < 0) {
                pxl_str_puts(errors, "out of memory\n");
                rc = PXL_ENOMEM;
        }
        if (tls_setup(srv, errors) < 0)
                rc = PXL_ERR;
        /* The key is read now, so -t reports an unusable one. */
        if (conf->auth.enabled && conf->nerrors == 0) {
                srv->auth = pxl_auth_new(&conf->auth, conf->file, errors);
                if (srv->auth == NULL)
                        rc = PXL_ERR;
        }
        return rc;
}

static void maybe_done(struct pxl_worker *srv)
{
        if (srv->stopping && srv->nconns == 0)
                event_base_loopexit(srv->base, NULL);
}

void pxl_server_conn_gone(struct pxl_worker *srv, bool was_open)
{
        srv->nconns--;
        if (was_open)
                srv->nopen--;
        maybe_done(srv);
}

#define ACCEPT_BACKOFF_MIN_MS 100
#define ACCEPT_BACKOFF_MAX_MS 1000
#define ACCEPT_LOG_EVERY_MS 10000
#define ACCEPT_SHED_MAX 256 /* waiting clients closed per failure */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
        struct pxl_worker *srv = arg;

        (void)l;
        srv->accept_backoff_ms = 0;
        pxl_conn_accept(srv, fd, sa, salen);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_worker *srv = arg;

        (void)fd;
        (void)what;
        if (srv->listener != NULL)
                evconnlistener_enable(srv->listener);
}

/*
 * Out of descriptors the listener stays readable and accept fails at
 * once: instead of spinning, give the spare descriptor up to accept the
 * waiting clients and close them (they learn at once rather than timing
 * out), then pause the listener, 100 ms doubling to 1 s while it lasts.
 * One log line per 10 s says how often it happened.
 */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
        struct pxl_worker *srv = arg;
        int err = EVUTIL_SOCKET_ERROR();
        int64_t now = pxl_worker_now_ms(srv);
        struct timeval tv;

        srv->metrics.accept_errors++;
        if ((err == EMFILE || err == ENFILE) && srv->reserve_fd >= 0) {
                int fd, shed = 0;

                close(srv->reserve_fd);
                while (shed < ACCEPT_SHED_MAX &&
                       (fd = accept(evconnlistener_get_fd(l), NULL,
                                    NULL)) >= 0) {
                        close(fd);
                        shed++;
                }
                srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        srv->accept_backoff_ms =
                srv->accept_backoff_ms == 0
                        ? ACCEPT_BACKOFF_MIN_MS
                        : srv->accept_backoff_ms * 2 > ACCEPT_BACKOFF_MAX_MS
                                  ? ACCEPT_BACKOFF_MAX_MS
                                  : srv->accept_backoff_ms * 2;
        if (now - srv->accept_logged_ms >= ACCEPT_LOG_EVERY_MS) {
                pxl_logs(PXL_LOG_WARN,
                         "accept failed: %s (%u more times since the last "
                         "report); pausing new connections for %u ms",
                         evutil_socket_error_to_string(err),
                         srv->accept_unlogged, srv->accept_backoff_ms);
                srv->accept_logged_ms = now;
                srv->accept_unlogged = 0;
        } else {
                srv->accept_unlogged++;
        }
        evconnlistener_disable(l);
        tv = pxl_ms_timeval(srv->accept_backoff_ms);
        evtimer_add(srv->accept_timer, &tv);
}

static void stop_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_worker *srv = arg;

        (void)fd;
        (void)what;
        pxl_logs(PXL_LOG_NOTICE,
                 "shutdown timeout: dropping %u clients that did not close",
                 srv->nconns);
        pxl_conn_close_all(srv);
        event_base_loopexit(srv->base, NULL);
}


static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        pxl_conn_reap(arg);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        pxl_conn_expire(arg);
}

static void flusher_cb(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        pxl_conn_flush_all(arg);
}

/* Present when AddressSanitizer's allocator stands in for malloc. */
extern void __sanitizer_purge_allocator(void) __attribute__((weak));

/*
 * pxl-serve keeps freed heap for bursts (M_TRIM_THRESHOLD): once a second
 * with no traffic after some, give what is free back to the system, so a
 * burst (a slow client's queue, a flood) does not hold memory for good.
 */
static void give_back_memory(struct pxl_worker *srv)
{
        const struct pxl_metrics *m = &srv->metrics;
        bool quiet = m->per_sec.messages_in == 0 &&
                     m->per_sec.messages_out == 0 &&
                     m->per_sec.connects == 0 && m->per_sec.disconnects == 0;

        if (!quiet) {
                srv->heap_trimmed = false;
                return;
        }
        if (srv->heap_trimmed)
                return;
        srv->heap_trimmed = true;
        if (__sanitizer_purge_allocator != NULL)
                __sanitizer_purge_allocator();
#ifdef __GLIBC__
        else
                malloc_trim(0);
#endif
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        pxl_metrics_tick(arg);
        give_back_memory(arg);
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        pxl_conn_sweep_idle(arg);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        pxl_conn_heartbeat(arg);
}

static void heartbeat_check_cb(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        pxl_conn_heartbeat_expire(arg);
}

/* A persistent timer every `secs` seconds; NULL (and no timer) if secs 0. */
static int periodic(struct pxl_worker *srv, struct event **ev, unsigned secs,
                    event_callback_fn cb)
{
        struct timeval tv = {(time_t)secs, 0};

        if (secs == 0)
                return PXL_OK;
        *ev = event_new(srv->base, -1, EV_PERSIST, cb, srv);
        if (*ev == NULL || event_add(*ev, &tv) < 0)
                return PXL_ENOMEM;
        return PXL_OK;
}

/* The periodic sweeps at the intervals of the config (after a reload). */
int pxl_server_retime(struct pxl_worker *srv)
{
        const struct pxl_config *conf = srv->conf;

        if (srv->base == NULL) /* a cluster's master: no loop, no sweeps */
                return PXL_OK;
        if (srv->idle_timer != NULL)
                event_free(srv->idle_timer);
        if (srv->heartbeat_timer != NULL)
                event_free(srv->heartbeat_timer);
        srv->idle_timer = srv->heartbeat_timer = NULL;
        if (periodic(srv, &srv->idle_timer,
                     conf->max_idle ? conf->check_interval : 0, idle_cb) < 0 ||
            periodic(srv, &srv->heartbeat_timer, conf->heartbeat_interval,
                     heartbeat_cb) < 0) {
                pxl_logs(PXL_LOG_ERR, "out of memory re-arming the idle and "
                                      "heartbeat sweeps");
                return PXL_ENOMEM;
        }
        return PXL_OK;
}

/* Ten batches a second while shutdown_spread lasts. */
#define SPREAD_TICK_MS 100

static void spread_cb(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_worker *srv = arg;

        (void)fd;
        (void)what;
        if (pxl_conn_shutdown_some(srv, srv->spread_batch) <
            srv->spread_batch)
                event_del(srv->spread_timer); /* every client told */
}

/*
 * shutdown_spread: the 1001 closes go out oldest first in batches over
 * that many seconds, so that thousands of clients do not reconnect (to
 * the other servers) in the same second. False: all at once.
 */
static bool spread_closes(struct pxl_worker *srv)
{
        struct timeval tick = {0, SPREAD_TICK_MS * 1000};
        unsigned ticks = srv->conf->shutdown_spread * (1000 / SPREAD_TICK_MS);

        if (ticks == 0 || srv->nopen <= 1)
                return false;
        srv->spread_timer =
                event_new(srv->base, -1, EV_PERSIST, spread_cb, srv);
        if (srv->spread_timer == NULL || event_add(srv->spread_timer, &tick))
                return false;
        srv->spread_batch = (srv->nopen + ticks - 1) / ticks;
        pxl_conn_shutdown_all_upgrading(srv);
        spread_cb(-1, 0, srv);
        return true;
}

static void begin_shutdown(struct pxl_worker *srv, int signo)
{
        struct timeval tv = {(time_t)srv->conf->shutdown_timeout, 0};

        if (srv->stopping) {
                pxl_logs(PXL_LOG_NOTICE, "second signal %d: stopping now",
                         signo);
                event_base_loopbreak(srv->base);
                return;
        }
        srv->stopping = true;
        pxl_notify_stopping();
        pxl_logs(PXL_LOG_NOTICE,
                 "signal %d: shutting down, closing %u clients", signo,
                 srv->nopen);
        /* With an HTTP hook (health) the listener answers the drain. */
        if (srv->listener != NULL && srv->nhttp == 0) {
                evconnlistener_free(srv->listener);
                srv->listener = NULL;
        }
        if (!spread_closes(srv))
                pxl_conn_shutdown_all(srv);
        tv.tv_sec += (time_t)srv->conf->shutdown_spread;
        srv->stop_timer = evtimer_new(srv->base, stop_timeout_cb, srv);
        if (srv->stop_timer != NULL)
                evtimer_add(srv->stop_timer, &tv);
        maybe_done(srv);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
        (void)what;
        begin_shutdown(arg, (int)sig);
}

/* SIGHUP: a worker of a cluster leaves "needs a restart" to its master. */
static void reload_cb(evutil_socket_t sig, short what, void *arg)
{
        struct pxl_worker *srv = arg;

        (void)sig;
        (void)what;
        if (!srv->stopping)
                (void)pxl_reload(srv, srv->conf->workers <= 1);
}

/* SIGUSR1: logrotate moved the log file; write to a new one. */
static void reopen_cb(evutil_socket_t sig, short what, void *arg)
{
        (void)sig;
        (void)what;
        (void)arg;
        pxl_log_reopen_logged("SIGUSR1");
}

static int bind_listener(struct pxl_worker *srv, struct pxl_str *errors)
{
        struct addrinfo *ai;
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        char line[512];
        unsigned flags;

        ai = pxl_listen_resolve(srv->conf->host, srv->conf->port,
                                srv->conf->file, errors);
        if (ai == NULL)
                return PXL_ERR;
        flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                LEV_OPT_CLOSE_ON_EXEC;
        /* Workers share the port; the kernel spreads connections. */
        if (srv->conf->workers > 1)
                flags |= LEV_OPT_REUSEABLE_PORT;
        srv->listener = evconnlistener_new_bind(
                srv->base, accept_cb, srv, flags, (int)srv->conf->backlog,
                ai->ai_addr, (int)ai->ai_addrlen);
        if (srv->listener == NULL) {
                snprintf(line, sizeof(line), "%s: cannot listen on %s:%u: %s\n",
                         srv->conf->file, srv->conf->host, srv->conf->port,
                         strerror(errno));
                pxl_str_puts(errors, line);
                freeaddrinfo(ai);
                return PXL_ERR;
        }
        freeaddrinfo(ai);
        evconnlistener_set_error_cb(srv->listener, accept_error_cb);
        /* scan-build does not see getsockname fill it (glibc's union). */
        memset(&ss, 0, sizeof(ss));
        if (getsockname(evconnlistener_get_fd(srv->listener),
                        (struct sockaddr *)&ss, &sslen) == 0)
                srv->port = ntohs(ss.ss_family == AF_INET6
                                          ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
        return PXL_OK;
}

/*
 * Every client is a file descriptor: raise the soft limit so that
 * limits.max_connections can be reached, as far as the hard limit allows.
 */
static void raise_fd_limit(const struct pxl_worker *srv)
{
        rlim_t want = (rlim_t)srv->conf->limits.max_connections + 64;
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
                return;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
                              ? want
                              : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
                pxl_logs(PXL_LOG_WARN,
                         "limits.max_connections %u needs %llu open files; "
                         "this process may open %llu",
                         srv->conf->limits.max_connections,
                         (unsigned long long)want,
                         (unsigned long long)rl.rlim_cur);
}

/* A cluster's master learns that this worker serves (pxl_cluster.c). */
static void tell_ready(struct pxl_worker *srv)
{
        char b = 'r';

        if (srv->ready_fd < 0)
                return;
        /* A master that is gone does not need to know: ignore errors. */
        while (write(srv->ready_fd, &b, 1) < 0 && errno == EINTR)
                ;
        close(srv->ready_fd);
        srv->ready_fd = -1;
}

int pxl_server_loop_init(struct pxl_worker *srv, struct pxl_str *errors)
{
        srv->base = event_base_new();
        /* Events default to the middle priority; the flusher runs last. */
        if (srv->base == NULL || event_base_priority_init(srv->base, PXL_PRIOS) < 0) {
                pxl_str_puts(errors, "cannot create the event loop\n");
                return PXL_ERR;
        }
        /* Deadlines of every connection: one timer, no timer per client. */
        srv->deadline_timer = evtimer_new(srv->base, deadline_cb, srv);
        /* Pings of one tick share a deadline: one timer, none per client. */
        srv->heartbeat_check = evtimer_new(srv->base, heartbeat_check_cb, srv);
        srv->accept_timer = evtimer_new(srv->base, accept_resume_cb, srv);
        srv->reaper = event_new(srv->base, -1, 0, reaper_cb, srv);
        srv->flusher = event_new(srv->base, -1, 0, flusher_cb, srv);
        /* After every I/O callback of an iteration: one writev per client. */
        if (srv->flusher == NULL ||
            event_priority_set(srv->flusher, PXL_PRIO_FLUSH) < 0) {
                pxl_str_puts(errors, "cannot create the output flusher\n");
                return PXL_ERR;
        }
        if (srv->deadline_timer == NULL || srv->heartbeat_check == NULL ||
            srv->accept_timer == NULL || srv->reaper == NULL ||
            periodic(srv, &srv->tick_timer, 1, tick_cb) < 0 ||
            periodic(srv, &srv->idle_timer,
                     srv->conf->max_idle ? srv->conf->check_interval : 0,
                     idle_cb) < 0 ||
            periodic(srv, &srv->heartbeat_timer, srv->conf->heartbeat_interval,
                     heartbeat_cb) < 0) {
                pxl_str_puts(errors, "cannot create timers\n");
                return PXL_ERR;
        }
        return PXL_OK;
}

int pxl_server_run(struct pxl_worker *srv, struct pxl_str *errors)
{
        sigset_t stop_signals;
        int rc;

        signal(SIGPIPE, SIG_IGN);
        raise_fd_limit(srv);
        if (pxl_server_loop_init(srv, errors) < 0)
                return PXL_ERR;
        srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        srv->sig_term = evsignal_new(srv->base, SIGTERM, signal_cb, srv);
        srv->sig_int = evsignal_new(srv->base, SIGINT, signal_cb, srv);
        srv->sig_hup = evsignal_new(srv->base, SIGHUP, reload_cb, srv);
        srv->sig_usr1 = evsignal_new(srv->base, SIGUSR1, reopen_cb, srv);
        if (srv->sig_term == NULL || srv->sig_int == NULL ||
            srv->sig_hup == NULL || srv->sig_usr1 == NULL ||
            evsignal_add(srv->sig_term, NULL) < 0 ||
            evsignal_add(srv->sig_int, NULL) < 0 ||
            evsignal_add(srv->sig_hup, NULL) < 0 ||
            evsignal_add(srv->sig_usr1, NULL) < 0) {
                pxl_str_puts(errors, "cannot install signal handlers\n");
                return PXL_ERR;
        }
        /* A cluster worker starts with these blocked; one sent early runs. */
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGTERM);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGHUP);
        sigaddset(&stop_signals, SIGUSR1);
        sigprocmask(SIG_UNBLOCK, &stop_signals, NULL);
        /* A required Redis that is down stops us before we listen. */
        if (pxl_worker_start_services(srv, errors) < 0)
                return PXL_ERR;
        if (bind_listener(srv, errors) < 0)
                return PXL_ERR;
        rc = pxl_plugins_init(&srv->plugins, srv, errors);
        if (rc < 0)
                return rc;
        pxl_logs(PXL_LOG_NOTICE,
                 "app \"%s\" listening on %s:%u%s (%s, %zu routes)",
                 srv->conf->name, srv->conf->host, srv->port, srv->conf->path,
                 srv->tls ? "wss" : "ws", pxl_router_count(srv->router));
        tell_ready(srv);
        {
                char status[512];

                /* One process (a cluster's master speaks for workers). */
                snprintf(status, sizeof(status), "listening on %s:%u%s",
                         srv->conf->host, srv->port, srv->conf->path);
                pxl_notify_ready(status);
        }
        event_base_dispatch(srv->base);
        pxl_worker_stop_services(srv);
        pxl_logs(PXL_LOG_NOTICE, "stopped");
        return PXL_OK;
}

void pxl_server_fini(struct pxl_worker *srv)
{
        /* Disconnect hooks run before fini, so plugins see every client go. */
        pxl_conn_close_all(srv);
        pxl_worker_stop_services(srv);
        pxl_redis_api_fini(srv);
        pxl_clients_fini(srv);
        pxl_rooms_fini(srv);
        pxl_pool_fini(&srv->client_pool);
        pxl_pool_fini(&srv->conn_pool);
        pxl_map_fini(&srv->users);
        pxl_plugins_fini(&srv->plugins, srv);
        pxl_auth_free(srv->auth);
        if (srv->reaper != NULL)
                event_free(srv->reaper);
        if (srv->flusher != NULL)
                event_free(srv->flusher);
        if (srv->tick_timer != NULL)
                event_free(srv->tick_timer);
        if (srv->idle_timer != NULL)
                event_free(srv->idle_timer);
        if (srv->heartbeat_timer != NULL)
                event_free(srv->heartbeat_timer);
        if (srv->heartbeat_check != NULL)
                event_free(srv->heartbeat_check);
        if (srv->deadline_timer != NULL)
                event_free(srv->deadline_timer);
        if (srv->accept_timer != NULL)
                event_free(srv->accept_timer);
        if (srv->reserve_fd >= 0)
                close(srv->reserve_fd);
        pxl_map_fini(&srv->addrs);
        if (srv->listener != NULL)
                evconnlistener_free(srv->listener);
        if (srv->stop_timer != NULL)
                event_free(srv->stop_timer);
        if (srv->spread_timer != NULL)
                event_free(srv->spread_timer);
        if (srv->sig_term != NULL)
                event_free(srv->sig_term);
        if (srv->sig_int != NULL)
                event_free(srv->sig_int);
        if (srv->sig_hup != NULL)
                event_free(srv->sig_hup);
        if (srv->sig_usr1 != NULL)
                event_free(srv->sig_usr1);
        if (srv->ready_fd >= 0)
                close(srv->ready_fd);
        pxl_router_free(srv->router);
        pxl_bus_fini(&srv->bus);
        if (srv->tls != NULL)
                SSL_CTX_free(srv->tls);
        pxl_plugins_unload(&srv->plugins);
        pxl_str_fini(&srv->scratch);
        if (srv->base != NULL)
                event_base_free(srv->base);
        pxl_conf_free(srv->conf);
        memset(srv, 0, sizeof(*srv));
}
