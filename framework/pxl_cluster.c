/*
 * pxl_cluster.c - the master of `workers = N`: reserves the listen port,
 * forks the workers, restarts the ones that die (backoff, then giving up
 * on a crash loop) and passes SIGTERM/SIGINT/SIGUSR1 on (SIGHUP after
 * its own reload), with a signalfd and poll(), never an event loop.
 * Serving is pxl_server.c's, in the workers.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "pxl/pxl.h"
#include "pxl_cluster.h"
#include "pxl_listen.h"
#include "pxl_log.h"
#include "pxl_reload.h"
#include "pxl_notify.h"

#define QUICK_MS       10000 /* a worker that lived less died quickly */
#define FIRST_DELAY_MS 100   /* restart delay, doubled per quick death */
#define MAX_DELAY_MS   10000
#define CRASH_LOOP     5 /* quick deaths in a row: give the slot up */

struct slot {
        pid_t pid;          /* 0: no worker in this slot now */
        int ready_rd;       /* read end of the worker's ready pipe, or -1 */
        bool started;       /* a worker of this slot has been ready */
        bool given_up;      /* crash loop: never started again */
        unsigned starts;    /* workers started in this slot so far */
        unsigned quick;     /* quick deaths in a row */
        int64_t born_ms;    /* when the current worker was forked */
        int64_t restart_ms; /* when to start the next one; 0: not due */
};

struct cluster {
        struct pxl_worker *srv;
        struct slot *slots;
        struct pollfd *pfd; /* signalfd, then one per slot */
        unsigned n;
        int sfd;           /* signalfd: SIGCHLD, SIGTERM, SIGINT, SIGUSR1 */
        int lfd;           /* the port, bound and kept, never listening */
        sigset_t old_mask; /* restored in workers and at the end */
        pid_t self;
        bool running; /* every slot started once: the cluster serves */
        bool stopping;
        unsigned terms; /* SIGTERMs sent to the workers while stopping */
        bool failed;    /* the master exits 1 */
        char node_id[17];
};

int pxl_cluster_node_id(char out[17])
{
        unsigned char raw[4];

        if (RAND_bytes(raw, sizeof(raw)) != 1)
                return PXL_ERR;
        pxl_hex(out, raw, sizeof(raw));
        return PXL_OK;
}

void pxl_cluster_worker_init(struct pxl_worker *srv, const char *node_id,
                             unsigned index, unsigned gen, int ready_fd)
{
        srv->worker_index = index;
        srv->worker_gen = gen;
        snprintf(srv->node_id, sizeof(srv->node_id), "%s", node_id);
        srv->ready_fd = ready_fd;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *signal_name(int sig)
{
        static const struct {
                int sig;
                const char *name;
        } names[] = {
                {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},
                {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
                {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
                {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
                {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"},
                {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
                {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"},
                {SIGTERM, "SIGTERM"}, {SIGXCPU, "SIGXCPU"},
                {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"},
        };

        for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
                if (names[i].sig == sig)
                        return names[i].name;
        return NULL;
}

/* "exited with status 3", "was killed by SIGKILL", ... */
static void describe_status(char *buf, size_t cap, int status)
{
        if (WIFEXITED(status)) {
                snprintf(buf, cap, "exited with status %d",
                         WEXITSTATUS(status));
        } else if (WIFSIGNALED(status)) {
                const char *name = signal_name(WTERMSIG(status));

                if (name != NULL)
                        snprintf(buf, cap, "was killed by %s%s", name,
                                 WCOREDUMP(status) ? " (core dumped)" : "");
                else
                        snprintf(buf, cap, "was killed by signal %d%s",
                                 WTERMSIG(status),
                                 WCOREDUMP(status) ? " (core dumped)" : "");
        } else {
                snprintf(buf, cap, "ended with wait status 0x%x", status);
        }
}

static int reuse(int fd, int opt)
{
        int one = 1;

        return setsockopt(fd, SOL_SOCKET, opt, &one, sizeof(one));
}

/*
 * Bind the listen address with SO_REUSEPORT and keep the socket, not
 * listening, for the master's life: listen.port = 0 becomes one real
 * port that every worker binds too, and that stays ours while a worker
 * restarts. Another program on the port (without SO_REUSEPORT) is
 * reported here, before any worker starts.
 */
static int reserve_port(struct cluster *cl, struct pxl_str *errors)
{
        struct pxl_config *conf = cl->srv->conf;
        struct addrinfo *ai;
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        char line[512];

        /* Zeroed for scan-build, which does not see getsockname fill ss
         * (glibc passes it as a transparent union under _GNU_SOURCE). */
        memset(&ss, 0, sizeof(ss));
        ai = pxl_listen_resolve(conf->host, conf->port, conf->file, errors);
        if (ai == NULL)
                return PXL_ERR;
        cl->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        /* The same options as the workers' listeners (pxl_server.c). */
        if (cl->lfd < 0 || reuse(cl->lfd, SO_REUSEADDR) < 0 ||
            reuse(cl->lfd, SO_REUSEPORT) < 0 ||
            bind(cl->lfd, ai->ai_addr, ai->ai_addrlen) < 0 ||
            getsockname(cl->lfd, (struct sockaddr *)&ss, &sslen) < 0) {
                snprintf(line, sizeof(line), "%s: cannot listen on %s:%u: %s\n",
                         conf->file, conf->host, conf->port, strerror(errno));
                pxl_str_puts(errors, line);
                freeaddrinfo(ai);
                return PXL_ERR;
        }
        freeaddrinfo(ai);
        conf->port = ntohs(ss.ss_family == AF_INET6
                                   ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                   : ((struct sockaddr_in *)&ss)->sin_port);
        return PXL_OK;
}

/* Undo what the master holds; in a worker, before it serves. */
static void cluster_fini(struct cluster *cl)
{
        for (unsigned i = 0; cl->slots != NULL && i < cl->n; i++)
                if (cl->slots[i].ready_rd >= 0)
                        close(cl->slots[i].ready_rd);
        if (cl->sfd >= 0)
                close(cl->sfd);
        if (cl->lfd >= 0)
                close(cl->lfd);
        free(cl->slots);
        free(cl->pfd);
        cl->slots = NULL;
        cl->pfd = NULL;
        cl->sfd = cl->lfd = -1;
}

/* In the new process: become worker `index` and serve. */
static int worker_main(struct cluster *cl, unsigned index, int ready_fd,
                       struct pxl_str *errors)
{
        struct pxl_worker *srv = cl->srv;
        unsigned gen = cl->slots[index].starts;
        pid_t master = cl->self;
        char node_id[17];
        sigset_t mask;

        /* Never outlive the master; it may be gone already. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        memcpy(node_id, cl->node_id, sizeof(node_id));
        /* These stay blocked until the loop can take them. */
        mask = cl->old_mask;
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGUSR1);
        sigprocmask(SIG_SETMASK, &mask, NULL);
        cluster_fini(cl);
        pxl_notify_disable(); /* the master tells systemd */
        pxl_log_set_worker((int)index);
        pxl_cluster_worker_init(srv, node_id, index, gen, ready_fd);
        if (getppid() != master) {
                pxl_str_puts(errors, "the master process is gone\n");
                return PXL_ERR;
        }
        return pxl_server_run(srv, errors);
}

/* Fork the next worker of slot i: 1 in the worker, 0 in the master. */
static int spawn(struct cluster *cl, unsigned i, int *ready_fd)
{
        struct slot *s = &cl->slots[i];
        int p[2];
        pid_t pid;

        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
                pxl_logs(PXL_LOG_WARN, "cannot start worker %u: pipe: %s", i,
                         strerror(errno));
                return PXL_ERR;
        }
        fflush(NULL); /* nothing buffered may be written twice */
        pid = fork();
        if (pid < 0) {
                pxl_logs(PXL_LOG_WARN, "cannot start worker %u: fork: %s", i,
                         strerror(errno));
                close(p[0]);
                close(p[1]);
                return PXL_ERR;
        }
        if (pid == 0) {
                close(p[0]);
                *ready_fd = p[1];
                return 1;
        }
        close(p[1]);
        s->pid = pid;
        s->ready_rd = p[0];
        s->born_ms = now_ms();
        if (s->starts == 0)
                pxl_logs(PXL_LOG_INFO, "worker %u started (pid %d)", i,
                         (int)pid);
        else
                pxl_logs(PXL_LOG_INFO,
                         "worker %u restarted (pid %d, restart %u)", i,
                         (int)pid, s->starts);
        s->starts++;
        return 0;
}

static unsigned live_workers(const struct cluster *cl)
{
        unsigned n = 0;

        for (unsigned i = 0; i < cl->n; i++)
                n += cl->slots[i].pid > 0;
        return n;
}

static bool all_given_up(const struct cluster *cl)
{
        for (unsigned i = 0; i < cl->n; i++)
                if (!cl->slots[i].given_up)
                        return false;
        return true;
}

/* First signal: SIGTERM to every worker, no more restarts. Again: again. */
static void begin_stop(struct cluster *cl, int signo)
{
        if (cl->stopping && signo != 0)
                pxl_logs(PXL_LOG_NOTICE,
                         "second signal %d: workers stop at once", signo);
        else if (signo != 0)
                pxl_logs(PXL_LOG_NOTICE, "signal %d: stopping %u workers",
                         signo, live_workers(cl));
        if (!cl->stopping)
                pxl_notify_stopping();
        cl->stopping = true;
        cl->terms++;
        for (unsigned i = 0; i < cl->n; i++) {
                cl->slots[i].restart_ms = 0;
                if (cl->slots[i].pid > 0)
                        kill(cl->slots[i].pid, SIGTERM);
        }
}

/* Read slot i's ready pipe: a byte means listening, EOF means never. */
static void check_ready(struct cluster *cl, unsigned i)
{
        struct slot *s = &cl->slots[i];
        char b;
        ssize_t r;

        if (s->ready_rd < 0)
                return;
        r = read(s->ready_rd, &b, 1);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        close(s->ready_rd);
        s->ready_rd = -1;
        if (r == 1 && !s->started) {
                s->started = true;
                pxl_logs(PXL_LOG_DEBUG, "worker %u is ready", i);
        }
}

/*
 * Slot i is empty now (`what` says why): start it again after a backoff
 * that doubles for each quick death, or give it up after CRASH_LOOP.
 */
static void schedule_restart(struct cluster *cl, unsigned i, bool quick,
                             const char *what)
{
        struct slot *s = &cl->slots[i];
        int64_t delay = FIRST_DELAY_MS;

        s->quick = quick ? s->quick + 1 : 0;
        if (s->quick >= CRASH_LOOP) {
                pxl_logs(PXL_LOG_WARN, "worker %u %s", i, what);
                pxl_logs(PXL_LOG_ERR,
                         "worker %u is crash-looping (%d exits within %d s of "
                         "starting); not restarting it",
                         i, CRASH_LOOP, QUICK_MS / 1000);
                s->given_up = true;
                return;
        }
        for (unsigned k = 1; k < s->quick && delay < MAX_DELAY_MS; k++)
                delay *= 2;
        if (delay > MAX_DELAY_MS)
                delay = MAX_DELAY_MS;
        pxl_logs(PXL_LOG_WARN, "worker %u %s; restarting in %lld ms", i, what,
                 (long long)delay);
        s->restart_ms = now_ms() + delay;
}

static void worker_died(struct cluster *cl, unsigned i, pid_t pid, int status)
{
        struct slot *s = &cl->slots[i];
        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        /* A second SIGTERM may find a worker past its loop: it dies of it. */
        bool at_once = cl->terms > 1 && WIFSIGNALED(status) &&
                       WTERMSIG(status) == SIGTERM;
        int64_t lived = now_ms() - s->born_ms;
        char how[64], what[128];

        s->pid = 0;
        check_ready(cl, i); /* it may have said so just before dying */
        if (s->ready_rd >= 0) {
                close(s->ready_rd);
                s->ready_rd = -1;
        }
        describe_status(how, sizeof(how), status);
        if (cl->stopping && (clean || at_once)) {
                pxl_logs(PXL_LOG_INFO, "worker %u (pid %d) stopped%s", i,
                         (int)pid, clean ? "" : " (killed by SIGTERM)");
        } else if (!s->started) {
                /* The worker printed why; the master says which it was. */
                pxl_logs(PXL_LOG_ERR, "worker %u failed to start: pid %d %s", i,
                         (int)pid, how);
                cl->failed = true;
                if (!cl->stopping)
                        begin_stop(cl, 0);
        } else if (cl->stopping) {
                pxl_logs(PXL_LOG_ERR, "worker %u (pid %d) %s while stopping", i,
                         (int)pid, how);
                cl->failed = true;
        } else {
                snprintf(what, sizeof(what), "(pid %d) %s after %.1f s",
                         (int)pid, how, (double)lived / 1000);
                schedule_restart(cl, i, lived < QUICK_MS, what);
        }
}

static void reap(struct cluster *cl)
{
        pid_t pid;
        int status;

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                for (unsigned i = 0; i < cl->n; i++)
                        if (cl->slots[i].pid == pid)
                                worker_died(cl, i, pid, status);
}

/*
 * SIGHUP: the master checks the file and takes the new values itself
 * (workers it starts later are forked with them), then passes the
 * signal on; each worker reloads the file on its own. A file with
 * problems goes no further than the master's log.
 */
static void reload(struct cluster *cl)
{
        if (cl->stopping || pxl_reload(cl->srv, true) < 0)
                return;
        for (unsigned i = 0; i < cl->n; i++)
                if (cl->slots[i].pid > 0)
                        kill(cl->slots[i].pid, SIGHUP);
}

/* SIGUSR1: the master's log, then each worker reopens its own. */
static void reopen_logs(struct cluster *cl)
{
        pxl_log_reopen_logged("SIGUSR1");
        for (unsigned i = 0; i < cl->n; i++)
                if (cl->slots[i].pid > 0)
                        kill(cl->slots[i].pid, SIGUSR1);
}

static void read_signals(struct cluster *cl)
{
        struct signalfd_siginfo si;

        while (read(cl->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                        begin_stop(cl, (int)si.ssi_signo);
                else if (si.ssi_signo == SIGHUP)
                        reload(cl);
                else if (si.ssi_signo == SIGUSR1)
                        reopen_logs(cl);
        }
        /* SIGCHLD: reap() runs after every wakeup anyway. */
}

/* Milliseconds until the next restart is due; -1: none. */
static int next_timeout(const struct cluster *cl)
{
        int64_t next = -1, now = now_ms();

        for (unsigned i = 0; i < cl->n; i++) {
                int64_t at = cl->slots[i].restart_ms;

                if (at != 0 && (next < 0 || at < next))
                        next = at;
        }
        if (next < 0)
                return -1;
        return next <= now ? 0 : (int)(next - now);
}

static void check_running(struct cluster *cl)
{
        const struct pxl_config *conf = cl->srv->conf;
        char status[512];

        if (cl->running || cl->stopping)
                return;
        for (unsigned i = 0; i < cl->n; i++)
                if (!cl->slots[i].started)
                        return;
        cl->running = true;
        pxl_logs(PXL_LOG_NOTICE,
                 "cluster of %u workers listening on %s:%u%s (node %s)", cl->n,
                 conf->host, conf->port, conf->path, cl->node_id);
        snprintf(status, sizeof(status), "%u workers listening on %s:%u%s",
                 cl->n, conf->host, conf->port, conf->path);
        pxl_notify_ready(status);
}

static int cluster_init(struct cluster *cl, struct pxl_worker *srv,
                        struct pxl_str *errors)
{
        sigset_t mask;

        memset(cl, 0, sizeof(*cl));
        cl->srv = srv;
        cl->n = srv->conf->workers;
        cl->sfd = cl->lfd = -1;
        cl->self = getpid();
        cl->slots = calloc(cl->n, sizeof(*cl->slots));
        cl->pfd = calloc(cl->n + 1, sizeof(*cl->pfd));
        if (cl->slots == NULL || cl->pfd == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        for (unsigned i = 0; i < cl->n; i++)
                cl->slots[i].ready_rd = -1;
        if (pxl_cluster_node_id(cl->node_id) < 0) {
                pxl_str_puts(errors, "cannot make a node id: RAND_bytes "
                                     "failed\n");
                return PXL_ERR;
        }
        if (reserve_port(cl, errors) < 0)
                return PXL_ERR;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGUSR1);
        if (sigprocmask(SIG_BLOCK, &mask, &cl->old_mask) < 0)
                return PXL_ERR;
        cl->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (cl->sfd < 0) {
                pxl_str_puts(errors, "cannot create a signalfd\n");
                sigprocmask(SIG_SETMASK, &cl->old_mask, NULL);
                return PXL_ERR;
        }
        return PXL_OK;
}

int pxl_cluster_run(struct pxl_worker *srv, struct pxl_str *errors)
{
        struct cluster cl;
        int ready_fd = -1, rc;

        pxl_log_set_worker(PXL_LOG_WORKER_MASTER);
        signal(SIGPIPE, SIG_IGN);
        if (cluster_init(&cl, srv, errors) < 0) {
                cluster_fini(&cl);
                return PXL_ERR;
        }
        for (unsigned i = 0; i < cl.n && !cl.stopping; i++) {
                rc = spawn(&cl, i, &ready_fd);
                if (rc == 1)
                        return worker_main(&cl, i, ready_fd, errors);
                if (rc < 0) {
                        pxl_logs(PXL_LOG_ERR, "worker %u failed to start", i);
                        cl.failed = true;
                        begin_stop(&cl, 0);
                }
        }
        for (;;) {
                int64_t now;
                nfds_t n = 1;

                if (cl.stopping && live_workers(&cl) == 0)
                        break;
                if (!cl.stopping && all_given_up(&cl)) {
                        pxl_logs(PXL_LOG_ERR,
                                 "every worker has been given up; exiting");
                        cl.failed = true;
                        break;
                }
                cl.pfd[0].fd = cl.sfd;
                cl.pfd[0].events = POLLIN;
                for (unsigned i = 0; i < cl.n; i++) {
                        if (cl.slots[i].ready_rd < 0)
                                continue;
                        cl.pfd[n].fd = cl.slots[i].ready_rd;
                        cl.pfd[n].events = POLLIN;
                        n++;
                }
                if (poll(cl.pfd, n, next_timeout(&cl)) < 0 && errno != EINTR) {
                        /* ENOMEM: everything below is non-blocking; retry. */
                        struct timespec pause = {0, 100 * 1000000};

                        pxl_logs(PXL_LOG_WARN, "poll: %s", strerror(errno));
                        nanosleep(&pause, NULL);
                }
                for (unsigned i = 0; i < cl.n; i++)
                        check_ready(&cl, i);
                read_signals(&cl);
                reap(&cl);
                check_running(&cl);
                now = now_ms();
                for (unsigned i = 0; i < cl.n && !cl.stopping; i++) {
                        struct slot *s = &cl.slots[i];

                        if (s->restart_ms == 0 || s->restart_ms > now)
                                continue;
                        s->restart_ms = 0;
                        rc = spawn(&cl, i, &ready_fd);
                        if (rc == 1)
                                return worker_main(&cl, i, ready_fd, errors);
                        if (rc < 0)
                                schedule_restart(&cl, i, true,
                                                 "could not be started");
                }
        }
        pxl_logs(PXL_LOG_NOTICE, "stopped");
        sigprocmask(SIG_SETMASK, &cl.old_mask, NULL);
        cluster_fini(&cl);
        return cl.failed ? PXL_ERR : PXL_OK;
}
