/*
 * pxl_bench.c - the pxl-bench program: load scenarios (echo, fanout, idle,
 * churn, db, queue) driven through the outbound client (pxl_wsc.c) on one
 * event loop, latencies recorded in a histogram (pxl_histogram.c), and the
 * server's CPU time and RSS read from /proc. Frames, the upgrade and JSON
 * grammar are the client's and the codecs' business; this file only
 * decides what to send when.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "pxl/pxl.h"
#include "pxl_histogram.h"
#include "pxl_json.h"

#define MAX_PENDING     256  /* connects in flight during setup */
#define SPREAD_PER_ADDR 5000 /* idle: connections per 127.0.0.x source */
#define FD_RESERVE      32   /* descriptors kept for stdio, /proc, ... */
#define SETUP_TIMEOUT_S 60
#define CLOSE_WAIT_S    3
#define ERRORS_SHOWN    3

/* ---- the server, from /proc ---------------------------------------------- */

/* Fields of /proc/PID/stat after the command name. */
static int proc_stat(pid_t pid, pid_t *ppid, unsigned long long *ticks)
{
        char path[64], buf[1024], *p;
        unsigned long long ut = 0, st = 0;
        int pp = 0, n;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "r");
        if (f == NULL)
                return -1;
        n = (int)fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        /* state ppid pgrp session tty tpgid flags minflt cminflt majflt
         * cmajflt utime stime */
        if (p == NULL || sscanf(p + 1,
                                " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u "
                                "%*u %llu %llu",
                                &pp, &ut, &st) != 3)
                return -1;
        if (ppid)
                *ppid = pp;
        if (ticks)
                *ticks = ut + st;
        return 0;
}

/*
 * The server process and its descendants (a forking server's workers
 * count too). Returns how many pids were stored.
 */
static size_t proc_tree(pid_t root, pid_t *out, size_t cap)
{
        pid_t *all = NULL, *par = NULL;
        size_t n = 0, acap = 0, k = 1, i, j;
        struct dirent *de;
        DIR *d;

        if (cap == 0)
                return 0;
        out[0] = root;
        d = opendir("/proc");
        if (d == NULL)
                return 1;
        while ((de = readdir(d)) != NULL) {
                pid_t pid, pp;

                if (!isdigit((unsigned char)de->d_name[0]))
                        continue;
                pid = (pid_t)atoi(de->d_name);
                if (pid == root || proc_stat(pid, &pp, NULL) < 0)
                        continue;
                if (n == acap) {
                        size_t nc = acap ? acap * 2 : 256;
                        pid_t *a = realloc(all, nc * sizeof(*a));
                        pid_t *b = a ? realloc(par, nc * sizeof(*b)) : NULL;

                        if (a)
                                all = a;
                        if (b == NULL)
                                break;
                        par = b;
                        acap = nc;
                }
                all[n] = pid;
                par[n] = pp;
                n++;
        }
        closedir(d);
        /* Breadth first over the parent links. */
        for (i = 0; i < k && k < cap; i++) {
                for (j = 0; j < n && k < cap; j++) {
                        if (par[j] == out[i])
                                out[k++] = all[j];
                }
        }
        free(all);
        free(par);
        return k;
}

/* CPU seconds (user + system) of the server tree, or -1. */
static double server_cpu(pid_t pid)
{
        pid_t pids[64];
        size_t n = proc_tree(pid, pids, 64), i;
        unsigned long long t, sum = 0;

        if (proc_stat(pid, NULL, NULL) < 0)
                return -1;
        for (i = 0; i < n; i++) {
                if (proc_stat(pids[i], NULL, &t) == 0)
                        sum += t;
        }
        return (double)sum / (double)sysconf(_SC_CLK_TCK);
}

/* Resident set size in bytes of the server tree, or -1. */
static long long server_rss(pid_t pid)
{
        pid_t pids[64];
        size_t n = proc_tree(pid, pids, 64), i;
        long long sum = 0;
        bool any = false;

        for (i = 0; i < n; i++) {
                char path[64], line[256];
                long long kb;
                FILE *f;

                snprintf(path, sizeof(path), "/proc/%d/status", (int)pids[i]);
                f = fopen(path, "r");
                if (f == NULL)
                        continue;
                while (fgets(line, sizeof(line), f) != NULL) {
                        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) {
                                sum += kb * 1024;
                                any = true;
                                break;
                        }
                }
                fclose(f);
        }
        return any ? sum : -1;
}

/* ---- state --------------------------------------------------------------- */

enum scenario { SC_ECHO, SC_FANOUT, SC_IDLE, SC_CHURN, SC_DB, SC_QUEUE };
static const char *const scenario_names[] = {"echo",  "fanout", "idle",
                                             "churn", "db",     "queue"};

enum phase { PH_SETUP, PH_RUN, PH_DRAIN, PH_CLOSE };
enum role { R_ECHO, R_SUB, R_PUB, R_IDLE, R_CHURN, R_DB, R_QUEUE };
/*
 * queue: look at the base count, add --jobs flat-out in batches and wait
 * for them, gather the workers' figures, then the same at -r jobs/s for
 * -t seconds.
 */
enum queue_step {
        QS_BASE,
        QS_FLAT,
        QS_FLAT_GATHER,
        QS_PACED,
        QS_PACED_GATHER,
        QS_DONE
};
enum churn_step { CH_CONNECT, CH_JOIN, CH_LEAVE, CH_CLOSE };

/* Which seqs of one publisher a subscriber got: a growable bitmap. */
struct track {
        uint64_t *bits;
        size_t words;
};

struct bench;

/* One run of the queue scenario: what was added, when, and its figures. */
struct queue_phase {
        uint64_t run;    /* the payloads' "r", ours alone */
        uint64_t target; /* jobs to add */
        uint64_t sent, added, add_errors;
        /* The server's CLOCK_MONOTONIC, us: adds and the last completion. */
        int64_t first_add_us, last_add_us, last_done_us;
        uint64_t t0, t1;     /* ours: first add asked, completion seen (ns) */
        double cpu0, cpu1;   /* the --pid tree */
        double also0, also1; /* the --also-pid trees */
        uint64_t started;    /* processor runs, every worker's */
        uint64_t bad;        /* runs with a payload they could not read */
        unsigned answered;   /* workers whose figures were gathered */
        struct pxl_histogram hist; /* add to start, ns */
};

struct bconn {
        struct bench *b;
        struct pxl_wsc *w;
        unsigned idx;
        enum role role;
        bool open;
        unsigned inflight; /* requests or publishes not yet answered */
        uint64_t seq;
        enum churn_step step;
        uint64_t t_start;    /* churn: when the cycle started */
        struct track *track; /* subscriber: one per publisher */
};

struct bench {
        struct event_base *base;

        /* options */
        enum scenario sc;
        const char *host;
        unsigned port;
        const char *path;
        const char *token;
        bool tls;
        unsigned conns, inflight, seconds, subs, pubs, window, payload;
        unsigned idle_n, drain_s;
        double rate;
        pid_t pid;
        pid_t also[8]; /* --also-pid: more processes to count (e.g. Redis) */
        unsigned nalso;
        pid_t db_pid;  /* --db-pid: the database server, counted apart */
        unsigned rows; /* db: ids asked are 1..rows */
        bool json;
        char url[512];
        char room[64];
        bool spread;

        /* connections */
        struct bconn *c;
        unsigned n;
        unsigned launched, pending, nopen, ready, failed, dropped;
        char first_err[256];

        /* the run */
        enum phase phase;
        uint64_t t_setup, t0, t1, drain_until, close_until;
        double cpu0, cpu1;
        double db_cpu0, db_cpu1;
        struct event *end_ev, *tick_ev, *poll_ev, *sig_ev;
        struct pxl_histogram hist;
        uint64_t count, counted; /* unit events; counted = in the window */
        uint64_t errors, bad;
        uint64_t wrong; /* db: replies without the row asked for */
        uint64_t rng;   /* db: xorshift64 state for the ids */
        bool aborted;

        /* fanout */
        uint64_t *pub_sent;
        uint64_t published, acked, distinct, dups, behind;
        uint64_t published_window;
        unsigned rr;

        /* idle */
        long long rss0, rss1;

        /* queue */
        unsigned jobs, batch, workers;
        enum queue_step qstep;
        struct queue_phase flat, paced;
        struct queue_phase *qp;         /* the phase running, or NULL */
        uint64_t q_base;                /* completions seen before the phase */
        uint64_t q_completed, q_failed; /* as of the last look */
        int64_t q_last_done_us;
        bool q_looking;    /* a bench/queueStats in flight */
        unsigned q_adding; /* bench/enqueue requests in flight */
        uint64_t q_look_at, q_progress_at; /* last look asked, last progress */

        /* buffers: one message is built at a time */
        char *buf;
        size_t bufcap;
        char *pad;
};

/* CPU of the --db-pid tree (a PostgreSQL postmaster and its backends),
 * or -1. */
static double db_cpu(const struct bench *b)
{
        return b->db_pid ? server_cpu(b->db_pid) : -1;
}

/* CPU of the --also-pid trees, 0 without any, or -1. */
static double also_cpu(const struct bench *b)
{
        double sum = 0;

        for (unsigned i = 0; sum >= 0 && i < b->nalso; i++) {
                double t = server_cpu(b->also[i]);

                sum = t < 0 ? -1 : sum + t;
        }
        return sum;
}

/* CPU of the server tree plus the --also-pid trees, or -1. */
static double all_cpu(const struct bench *b)
{
        double sum = b->pid ? server_cpu(b->pid) : -1;

        for (unsigned i = 0; sum >= 0 && i < b->nalso; i++) {
                double t = server_cpu(b->also[i]);

                sum = t < 0 ? -1 : sum + t;
        }
        return sum;
}

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void note_error(struct bench *b, const char *fmt, ...) PXL_PRINTF(2, 3);

static void note_error(struct bench *b, const char *fmt, ...)
{
        va_list ap;

        if (b->first_err[0] != '\0')
                return;
        va_start(ap, fmt);
        vsnprintf(b->first_err, sizeof(b->first_err), fmt, ap);
        va_end(ap);
}

static void finish_run(struct bench *b);
static void start_run(struct bench *b);
static void conn_start(struct bconn *c);
static void churn_next(struct bconn *c);

static void abort_run(struct bench *b, const char *why)
{
        if (b->aborted)
                return;
        b->aborted = true;
        fprintf(stderr, "pxl-bench: %s\n", why);
        if (b->phase == PH_SETUP || b->phase == PH_RUN) {
                b->t1 = now_ns();
                b->cpu1 = all_cpu(b);
                b->db_cpu1 = db_cpu(b);
        }
        finish_run(b);
}

/* ---- sending ------------------------------------------------------------- */

/* The padding string of -z bytes, built once. */
static int make_pad(struct bench *b)
{
        size_t n = b->payload;

        b->bufcap = n + 512;
        b->buf = malloc(b->bufcap);
        b->pad = malloc(n + 8);
        if (b->buf == NULL || b->pad == NULL)
                return -1;
        b->pad[0] = '\0';
        if (n > 0) {
                memcpy(b->pad, ",\"p\":\"", 6);
                memset(b->pad + 6, 'x', n);
                memcpy(b->pad + 6 + n, "\"", 2);
        }
        return 0;
}

static void send_built(struct bconn *c, int len)
{
        struct bench *b = c->b;

        if (len < 0 || (size_t)len >= b->bufcap ||
            pxl_wsc_send_text(c->w, b->buf, (size_t)len) < 0) {
                b->bad++;
                return;
        }
        c->inflight++;
}

static void echo_send(struct bconn *c)
{
        struct bench *b = c->b;
        int n = snprintf(b->buf, b->bufcap,
                         "{\"type\":\"bench\",\"action\":\"echo\",\"data\":"
                         "{\"t\":%" PRIu64 ",\"s\":%" PRIu64 "%s}}",
                         now_ns(), c->seq++, b->pad);

        send_built(c, n);
}

/* xorshift64: the ids asked for, 1..rows, spread over the table. */
static unsigned next_id(struct bench *b)
{
        uint64_t x = b->rng;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b->rng = x;
        return 1 + (unsigned)(x % b->rows);
}

/*
 * bench/user {id}: the requestId "T-ID" carries the send time and the id
 * asked for, so replies need no table and may come in any order.
 */
static void db_send(struct bconn *c)
{
        struct bench *b = c->b;
        unsigned id = next_id(b);
        int n = snprintf(b->buf, b->bufcap,
                         "{\"type\":\"bench\",\"action\":\"user\",\"data\":"
                         "{\"id\":%u%s},\"requestId\":\"%" PRIu64 "-%u\"}",
                         id, b->pad, now_ns(), id);

        send_built(c, n);
}

static void publish(struct bconn *c)
{
        struct bench *b = c->b;
        unsigned p = c->idx - b->subs;
        int n = snprintf(b->buf, b->bufcap,
                         "{\"type\":\"bench\",\"action\":\"publish\",\"data\":"
                         "{\"roomName\":\"%s\",\"payload\":{\"t\":%" PRIu64
                         ",\"seq\":%" PRIu64 ",\"pub\":%u%s}}}",
                         b->room, now_ns(), c->seq, p, b->pad);

        send_built(c, n);
        if (n > 0 && (size_t)n < b->bufcap) {
                c->seq++;
                b->pub_sent[p] = c->seq;
                b->published++;
                if (b->phase == PH_RUN)
                        b->published_window++;
        }
}

static void send_room_op(struct bconn *c, const char *action)
{
        struct bench *b = c->b;
        int n = snprintf(b->buf, b->bufcap,
                         "{\"type\":\"system\",\"action\":\"%s\",\"data\":"
                         "{\"roomName\":\"%s\"}}",
                         action, b->room);

        send_built(c, n);
}

/* ---- replies and deliveries ---------------------------------------------- */

static bool json_int_key(const char *obj, size_t len, const char *key,
                         int64_t *v)
{
        struct pxl_json_span s;

        return obj != NULL && pxl_json_find(obj, len, key, &s) &&
               pxl_json_int64(s.p, s.len, v);
}

static void on_echo(struct pxl_wsc *w, const struct pxl_msg *m, void *arg)
{
        struct bconn *c = arg;
        struct bench *b = c->b;
        uint64_t now = now_ns();
        const char *d;
        size_t len;
        int64_t t;

        (void)w;
        d = pxl_wsc_msg_data_json(m, &len);
        if (!json_int_key(d, len, "t", &t) || t < 0) {
                b->bad++;
                return;
        }
        if (c->inflight > 0)
                c->inflight--;
        if (b->phase != PH_RUN)
                return;
        pxl_histogram_add(&b->hist, now - (uint64_t)t);
        b->count++;
        echo_send(c);
}

/* "T-ID" (with its quotes) from db_send. */
static bool parse_db_request_id(const char *p, size_t len, uint64_t *t,
                                int64_t *id)
{
        char tmp[64], *end;
        unsigned long long v;

        if (p == NULL || len < 5 || len >= sizeof(tmp) || p[0] != '"' ||
            p[len - 1] != '"')
                return false;
        memcpy(tmp, p + 1, len - 2);
        tmp[len - 2] = '\0';
        errno = 0;
        v = strtoull(tmp, &end, 10);
        if (errno || end == tmp || *end != '-')
                return false;
        *t = v;
        return pxl_json_int64(end + 1, strlen(end + 1), id);
}

/*
 * The reply to bench/user: the row asked for, {id, name, email,
 * created}. A reply for another id, or without the row, is wrong; the
 * run fails when any is.
 */
static void on_user(struct pxl_wsc *w, const struct pxl_msg *m, void *arg)
{
        struct bconn *c = arg;
        struct bench *b = c->b;
        uint64_t now = now_ns(), t;
        struct pxl_json_span s;
        int64_t asked, got;
        const char *rid, *d;
        size_t rlen, len;

        (void)w;
        rid = pxl_wsc_msg_request_id(m, &rlen);
        if (!parse_db_request_id(rid, rlen, &t, &asked)) {
                b->bad++;
                return;
        }
        if (c->inflight > 0)
                c->inflight--;
        d = pxl_wsc_msg_data_json(m, &len);
        if (!json_int_key(d, len, "id", &got) || got != asked ||
            !pxl_json_find(d, len, "name", &s) || s.kind != PXL_JSON_STRING ||
            !pxl_json_find(d, len, "email", &s) || s.kind != PXL_JSON_STRING ||
            !pxl_json_find(d, len, "created", &s) ||
            s.kind != PXL_JSON_STRING) {
                if (b->wrong++ < ERRORS_SHOWN)
                        fprintf(stderr,
                                "pxl-bench: wrong reply for id %" PRId64
                                ": %.*s\n",
                                asked, (int)(len > 300 ? 300 : len),
                                d ? d : "(no response)");
        }
        if (b->phase != PH_RUN)
                return;
        pxl_histogram_add(&b->hist, now - t);
        b->count++;
        db_send(c);
}

static void on_publish_ack(struct pxl_wsc *w, const struct pxl_msg *m,
                           void *arg)
{
        struct bconn *c = arg;
        struct bench *b = c->b;

        (void)w;
        (void)m;
        if (c->inflight > 0)
                c->inflight--;
        b->acked++;
        if (b->phase == PH_RUN && b->rate <= 0)
                publish(c);
}

/* Mark seq in t; returns false when it was marked already. */
static int track_mark(struct track *t, uint64_t seq)
{
        size_t wi = (size_t)(seq / 64);
        uint64_t bit = (uint64_t)1 << (seq % 64);

        if (wi >= t->words) {
                size_t nw = t->words ? t->words * 2 : 16;
                uint64_t *p;

                while (nw <= wi)
                        nw *= 2;
                p = realloc(t->bits, nw * sizeof(*p));
                if (p == NULL)
                        return -1;
                memset(p + t->words, 0, (nw - t->words) * sizeof(*p));
                t->bits = p;
                t->words = nw;
        }
        if (t->bits[wi] & bit)
                return 0;
        t->bits[wi] |= bit;
        return 1;
}

static void on_delivery(struct pxl_wsc *w, const struct pxl_msg *m, void *arg)
{
        struct bconn *c = arg;
        struct bench *b = c->b;
        uint64_t now = now_ns();
        struct pxl_json_span pl;
        int64_t t, seq, pub;
        const char *d;
        size_t len;
        int r;

        (void)w;
        d = pxl_wsc_msg_data_json(m, &len);
        if (c->role != R_SUB || d == NULL ||
            !pxl_json_find(d, len, "payload", &pl) ||
            !json_int_key(pl.p, pl.len, "t", &t) ||
            !json_int_key(pl.p, pl.len, "seq", &seq) ||
            !json_int_key(pl.p, pl.len, "pub", &pub) || t < 0 || seq < 0 ||
            pub < 0 || (unsigned long long)pub >= b->pubs) {
                b->bad++;
                return;
        }
        r = track_mark(&c->track[pub], (uint64_t)seq);
        if (r < 0) {
                abort_run(b, "out of memory tracking deliveries");
                return;
        }
        if (r == 0) {
                b->dups++;
                return;
        }
        b->distinct++;
        pxl_histogram_add(&b->hist, now - (uint64_t)t);
        if (b->phase == PH_RUN)
                b->count++;
}

static bool reply_success(const struct pxl_msg *m)
{
        struct pxl_json_span s;
        const char *d;
        size_t len;

        d = pxl_wsc_msg_data_json(m, &len);
        return d != NULL && pxl_json_find(d, len, "success", &s) &&
               s.kind == PXL_JSON_TRUE;
}

static void ready_one(struct bench *b)
{
        b->ready++;
        if (b->phase == PH_SETUP && b->ready + b->failed == b->n)
                start_run(b);
}

static void on_join(struct pxl_wsc *w, const struct pxl_msg *m, void *arg)
{
        struct bconn *c = arg;
        struct bench *b = c->b;
        size_t len;
        const uint8_t *p = pxl_msg_payload(m, &len);

        if (c->inflight > 0)
                c->inflight--;
        if (!reply_success(m)) {
                char why[300];

                snprintf(why, sizeof(why), "system/joinRoom failed: %.*s",
                         (int)(len > 200 ? 200 : len), (const char *)p);
                if (c->role == R_CHURN) {
                        b->failed++;
                        note_error(b, "%s", why);
                        c->step = CH_CLOSE;
                        pxl_wsc_close(w, PXL_CLOSE_NORMAL, NULL);
                        return;
                }
                abort_run(b, why);
                return;
        }
        if (c->role == R_SUB) {
                ready_one(b);
                return;
        }
        if (c->role == R_CHURN && c->step == CH_JOIN) {
                c->step = CH_LEAVE;
                send_room_op(c, "leaveRoom");
        }
}

static void on_leave(struct pxl_wsc *w, const struct pxl_msg *m, void *arg)
{
        struct bconn *c = arg;

        (void)m;
        if (c->inflight > 0)
                c->inflight--;
        if (c->role == R_CHURN && c->step == CH_LEAVE) {
                c->step = CH_CLOSE;
                pxl_wsc_close(w, PXL_CLOSE_NORMAL, NULL);
        }
}

/* Unrouted: system/connected, user/leftRoom, and error frames. */
static void on_other(struct pxl_wsc *w, const struct pxl_msg *m, void *arg)
{
        struct bconn *c = arg;
        struct bench *b = c->b;
        const uint8_t *p;
        size_t len;

        (void)w;
        if (strcmp(pxl_msg_type(m), "error") != 0)
                return;
        p = pxl_msg_payload(m, &len);
        if (b->errors++ < ERRORS_SHOWN)
                fprintf(stderr, "pxl-bench: server error: %.*s\n",
                        (int)(len > 300 ? 300 : len), (const char *)p);
        if (c->inflight > 0)
                c->inflight--;
        if (c->role == R_QUEUE) {
                char why[360];

                snprintf(why, sizeof(why), "queue: server error: %.*s",
                         (int)(len > 300 ? 300 : len), (const char *)p);
                abort_run(b, why);
                return;
        }
        if (c->role == R_DB && b->phase == PH_RUN) {
                /* Counted, and the run fails; the load goes on. */
                db_send(c);
                return;
        }
        if (c->role == R_CHURN && c->step != CH_CLOSE) {
                c->step = CH_CLOSE;
                pxl_wsc_close(w, PXL_CLOSE_NORMAL, NULL);
        }
}

/* ---- queue --------------------------------------------------------------- */

#define QUEUE_LOOK_MS 10 /* how often completion is looked at */
#define QUEUE_STALL_S 30 /* no progress for this long fails the run */

static int queue_send(struct bench *b, int len)
{
        if (len < 0 || (size_t)len >= b->bufcap ||
            pxl_wsc_send_text(b->c[0].w, b->buf, (size_t)len) < 0) {
                abort_run(b, "queue: cannot send to the server");
                return -1;
        }
        return 0;
}

/* bench/queueStats: this worker's counts, or (workers > 0) everyone's. */
static void queue_look(struct bench *b, unsigned workers)
{
        int n = snprintf(b->buf, b->bufcap,
                         "{\"type\":\"bench\",\"action\":\"queueStats\","
                         "\"data\":{\"workers\":%u}}",
                         workers);

        if (workers == 0)
                n = snprintf(b->buf, b->bufcap,
                             "{\"type\":\"bench\",\"action\":\"queueStats\","
                             "\"data\":{}}");
        if (queue_send(b, n) == 0 && workers == 0) {
                b->q_looking = true;
                b->q_look_at = now_ns();
        }
}

/* bench/enqueue: the server adds n jobs of the running phase. */
static void queue_add(struct bench *b, uint64_t n)
{
        struct queue_phase *qp = b->qp;
        int len = snprintf(b->buf, b->bufcap,
                           "{\"type\":\"bench\",\"action\":\"enqueue\","
                           "\"data\":{\"n\":%" PRIu64 ",\"run\":%" PRIu64 "}}",
                           n, qp->run);

        if (queue_send(b, len) == 0) {
                qp->sent += n;
                b->q_adding++;
        }
}

static void queue_phase_start(struct bench *b, struct queue_phase *qp,
                              enum queue_step step)
{
        b->qp = qp;
        b->qstep = step;
        b->q_base = b->q_completed;
        qp->cpu0 = b->pid ? server_cpu(b->pid) : -1;
        qp->also0 = also_cpu(b);
        qp->t0 = now_ns();
        b->q_progress_at = qp->t0;
        if (step == QS_FLAT)
                queue_add(b, qp->target < b->batch ? qp->target : b->batch);
        /* QS_PACED: the tick adds them. */
}

static void queue_finish(struct bench *b)
{
        b->qstep = QS_DONE;
        b->qp = NULL;
        b->t1 = now_ns();
        finish_run(b);
}

/* Every job of the phase added and completed: take the figures. */
static void queue_check(struct bench *b)
{
        struct queue_phase *qp = b->qp;

        if (qp == NULL || (b->qstep != QS_FLAT && b->qstep != QS_PACED) ||
            b->q_adding > 0 || qp->sent < qp->target ||
            b->q_completed - b->q_base < qp->added)
                return;
        qp->t1 = now_ns();
        qp->cpu1 = b->pid ? server_cpu(b->pid) : -1;
        qp->also1 = also_cpu(b);
        qp->last_done_us = b->q_last_done_us;
        b->qstep = b->qstep == QS_FLAT ? QS_FLAT_GATHER : QS_PACED_GATHER;
        queue_look(b, b->workers);
}

static void on_enqueue(struct pxl_wsc *w, const struct pxl_msg *m, void *arg)
{
        struct bconn *c = arg;
        struct bench *b = c->b;
        struct queue_phase *qp = b->qp;
        int64_t added, errors, first, last;
        struct pxl_json_span s;
        const char *d;
        size_t len;

        (void)w;
        d = pxl_wsc_msg_data_json(m, &len);
        if (qp == NULL || b->q_adding == 0 ||
            !json_int_key(d, len, "added", &added) ||
            !json_int_key(d, len, "errors", &errors) ||
            !json_int_key(d, len, "firstAddUs", &first) ||
            !json_int_key(d, len, "lastAddUs", &last) || added < 0 ||
            errors < 0) {
                abort_run(b, "queue: unexpected bench/enqueue reply");
                return;
        }
        b->q_adding--;
        qp->added += (uint64_t)added;
        qp->add_errors += (uint64_t)errors;
        if (errors > 0) {
                char why[320];

                if (!pxl_json_find(d, len, "error", &s))
                        s.p = "?", s.len = 1;
                snprintf(why, sizeof(why),
                         "queue: %" PRId64 " jobs could not be added: %.*s",
                         errors, (int)(s.len > 200 ? 200 : s.len), s.p);
                abort_run(b, why);
                return;
        }
        if (added > 0) {
                if (qp->first_add_us == 0 || first < qp->first_add_us)
                        qp->first_add_us = first;
                if (last > qp->last_add_us)
                        qp->last_add_us = last;
        }
        b->q_progress_at = now_ns();
        if (b->qstep == QS_FLAT && qp->sent < qp->target) {
                uint64_t left = qp->target - qp->sent;

                queue_add(b, left < b->batch ? left : b->batch);
        }
        queue_check(b);
}

/* One worker's figures for run qp->run: {runs: {"R": {started, maxUs,
 * hist: [[us, count], ...]}}, bad}. */
static int queue_take(struct queue_phase *qp, struct json_object *wk,
                      uint64_t *max_us)
{
        struct json_object *runs, *r, *v, *h;
        char key[24];

        snprintf(key, sizeof(key), "%" PRIu64, qp->run);
        if (json_object_object_get_ex(wk, "bad", &v))
                qp->bad += (uint64_t)json_object_get_int64(v);
        if (!json_object_object_get_ex(wk, "runs", &runs))
                return -1;
        if (!json_object_object_get_ex(runs, key, &r))
                return 0; /* no job of this run ran there */
        if (!json_object_object_get_ex(r, "started", &v))
                return -1;
        qp->started += (uint64_t)json_object_get_int64(v);
        if (json_object_object_get_ex(r, "maxUs", &v) &&
            (uint64_t)json_object_get_int64(v) > *max_us)
                *max_us = (uint64_t)json_object_get_int64(v);
        if (!json_object_object_get_ex(r, "hist", &h) ||
            !json_object_is_type(h, json_type_array))
                return -1;
        for (size_t i = 0; i < json_object_array_length(h); i++) {
                struct json_object *pair = json_object_array_get_idx(h, i);
                int64_t us, n;

                if (json_object_array_length(pair) != 2)
                        return -1;
                us = json_object_get_int64(json_object_array_get_idx(pair, 0));
                n = json_object_get_int64(json_object_array_get_idx(pair, 1));
                for (int64_t k = 0; k < n; k++)
                        pxl_histogram_add(&qp->hist, (uint64_t)us * 1000u);
        }
        return 0;
}

/* The gathered figures of every worker: {"workers": [...]}. */
static void queue_gathered(struct bench *b, const char *d, size_t len)
{
        struct queue_phase *qp = b->qp;
        struct json_object *o = NULL, *ws = NULL;
        uint64_t max_us = 0;

        if (qp == NULL || pxl_json_build(d, len, 16, &o) != PXL_OK ||
            !json_object_object_get_ex(o, "workers", &ws) ||
            !json_object_is_type(ws, json_type_array)) {
                json_object_put(o);
                abort_run(b, "queue: unexpected bench/queueStats reply");
                return;
        }
        for (size_t i = 0; i < json_object_array_length(ws); i++) {
                if (queue_take(qp, json_object_array_get_idx(ws, i), &max_us) <
                    0) {
                        json_object_put(o);
                        abort_run(b, "queue: unexpected worker figures");
                        return;
                }
                qp->answered++;
        }
        json_object_put(o);
        /* The bucket middles may pass the largest sample; it is exact. */
        if (qp->hist.n > 0)
                qp->hist.max = max_us * 1000u;
        if (b->qstep == QS_FLAT_GATHER && b->paced.target > 0)
                queue_phase_start(b, &b->paced, QS_PACED);
        else
                queue_finish(b);
}

static void on_qstats(struct pxl_wsc *w, const struct pxl_msg *m, void *arg)
{
        struct bconn *c = arg;
        struct bench *b = c->b;
        int64_t completed, failed, last;
        struct pxl_json_span s;
        const char *d;
        size_t len;

        (void)w;
        d = pxl_wsc_msg_data_json(m, &len);
        if (d != NULL && pxl_json_find(d, len, "workers", &s)) {
                if (b->qstep == QS_FLAT_GATHER || b->qstep == QS_PACED_GATHER)
                        queue_gathered(b, d, len);
                return;
        }
        if (!json_int_key(d, len, "completed", &completed) ||
            !json_int_key(d, len, "failed", &failed) ||
            !json_int_key(d, len, "lastCompletedUs", &last) || completed < 0 ||
            failed < 0) {
                abort_run(b, "queue: unexpected bench/queueStats reply");
                return;
        }
        b->q_looking = false;
        if ((uint64_t)completed != b->q_completed)
                b->q_progress_at = now_ns();
        b->q_completed = (uint64_t)completed;
        b->q_failed = (uint64_t)failed;
        b->q_last_done_us = last;
        if (b->qstep == QS_BASE) {
                if (b->flat.target > 0)
                        queue_phase_start(b, &b->flat, QS_FLAT);
                else
                        queue_phase_start(b, &b->paced, QS_PACED);
                return;
        }
        queue_check(b);
}

/* Every ms of the run: the paced adds that are due, and a look. */
static void queue_tick(struct bench *b)
{
        uint64_t now = now_ns();

        if (b->qstep == QS_PACED && b->paced.sent < b->paced.target) {
                struct queue_phase *qp = &b->paced;
                uint64_t due =
                        (uint64_t)((double)(now - qp->t0) * b->rate / 1e9) + 1;

                if (due > qp->target)
                        due = qp->target;
                if (due > qp->sent)
                        queue_add(b, due - qp->sent);
        }
        if ((b->qstep == QS_FLAT || b->qstep == QS_PACED) && !b->q_looking &&
            now - b->q_look_at >= (uint64_t)QUEUE_LOOK_MS * 1000000u)
                queue_look(b, 0);
}

static void queue_stalled(struct bench *b)
{
        const struct queue_phase *qp = b->qp;
        char why[256];

        if (qp == NULL ||
            now_ns() - b->q_progress_at < (uint64_t)QUEUE_STALL_S * 1000000000u)
                return;
        snprintf(why, sizeof(why),
                 "queue: %" PRIu64 " of %" PRIu64 " jobs added and %" PRIu64
                 " completed, no progress for %d s",
                 qp->added, qp->target, b->q_completed - b->q_base,
                 QUEUE_STALL_S);
        abort_run(b, why);
}

static const struct pxl_wsc_route bench_routes[] = {
        {"bench", "echo", on_echo},
        {"bench", "publish", on_publish_ack},
        {"bench", "message", on_delivery},
        {"system", "joinRoom", on_join},
        {"system", "leaveRoom", on_leave},
        {"bench", "user", on_user},
        {"bench", "enqueue", on_enqueue},
        {"bench", "queueStats", on_qstats},
        PXL_WSC_ROUTE_END,
};

/* ---- connections --------------------------------------------------------- */

static void launch(struct bench *b)
{
        while (b->phase == PH_SETUP && b->pending < MAX_PENDING &&
               b->launched < b->n)
                conn_start(&b->c[b->launched++]);
}

static void on_open(struct pxl_wsc *w, void *arg)
{
        struct bconn *c = arg;
        struct bench *b = c->b;

        (void)w;
        c->open = true;
        b->nopen++;
        if (c->role == R_CHURN) {
                c->step = CH_JOIN;
                send_room_op(c, "joinRoom");
                return;
        }
        b->pending--;
        if (c->role == R_SUB)
                send_room_op(c, "joinRoom");
        else
                ready_one(b);
        launch(b);
}

static void churn_done(struct bconn *c, bool ok)
{
        struct bench *b = c->b;
        uint64_t now = now_ns();

        pxl_wsc_free(c->w);
        c->w = NULL;
        c->inflight = 0;
        if (ok && b->phase == PH_RUN) {
                b->count++;
                pxl_histogram_add(&b->hist, now - c->t_start);
        }
        if (b->phase == PH_RUN)
                churn_next(c);
}

static void on_close(struct pxl_wsc *w, int code, const char *reason, void *arg)
{
        struct bconn *c = arg;
        struct bench *b = c->b;
        bool was_open = c->open;

        (void)w;
        c->open = false;
        if (was_open)
                b->nopen--;
        if (c->role == R_CHURN) {
                bool ok = c->step == CH_CLOSE && code == PXL_CLOSE_NORMAL;

                if (!ok) {
                        b->failed++;
                        note_error(b, "%s (close %d)", reason, code);
                }
                churn_done(c, ok);
                return;
        }
        if (!was_open) {
                /* The connection never opened. */
                b->pending--;
                b->failed++;
                note_error(b, "%s", reason);
                if (b->phase == PH_SETUP) {
                        if (b->sc != SC_IDLE) {
                                char why[320];

                                snprintf(why, sizeof(why),
                                         "connection %u failed: %s", c->idx,
                                         reason);
                                abort_run(b, why);
                                return;
                        }
                        launch(b);
                        if (b->ready + b->failed == b->n)
                                start_run(b);
                }
                return;
        }
        if (b->phase != PH_CLOSE) {
                b->dropped++;
                note_error(b, "connection %u closed by the server: %d %s",
                           c->idx, code, reason);
                if (b->sc != SC_IDLE && b->phase != PH_DRAIN) {
                        char why[320];

                        snprintf(why, sizeof(why),
                                 "connection %u closed by the server: %d %s",
                                 c->idx, code, reason);
                        abort_run(b, why);
                }
        }
}

static void conn_start(struct bconn *c)
{
        struct bench *b = c->b;
        struct pxl_wsc_options o;
        char bind[32], err[256];

        memset(&o, 0, sizeof(o));
        o.url = b->url;
        o.token = b->token;
        o.tls_insecure = true;
        o.routes = bench_routes;
        o.on_open = on_open;
        o.on_close = on_close;
        o.on_message = on_other;
        o.arg = c;
        o.connect_timeout_ms = 30000;
        if (b->spread) {
                snprintf(bind, sizeof(bind), "127.0.0.%u",
                         2 + c->idx / SPREAD_PER_ADDR);
                o.bind_address = bind;
        }
        c->open = false;
        c->inflight = 0;
        if (c->role != R_CHURN)
                b->pending++;
        c->w = pxl_wsc_new(b->base, &o, err, sizeof(err));
        if (c->w != NULL)
                return;
        /* Failed before any I/O (descriptors, memory, bind). */
        b->failed++;
        note_error(b, "%s", err);
        if (c->role == R_CHURN)
                return;
        b->pending--;
        if (b->sc != SC_IDLE) {
                char why[320];

                snprintf(why, sizeof(why), "connection %u: %s", c->idx, err);
                abort_run(b, why);
        } else if (b->ready + b->failed == b->n) {
                start_run(b);
        }
}

static void churn_next(struct bconn *c)
{
        c->step = CH_CONNECT;
        c->t_start = now_ns();
        conn_start(c);
        /* A synchronous failure: try again on the next poll tick. */
}

/* ---- phases -------------------------------------------------------------- */

static void arm(struct event *ev, double seconds)
{
        struct timeval tv;

        tv.tv_sec = (time_t)seconds;
        tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
        evtimer_add(ev, &tv);
}

static unsigned fanout_pending(const struct bench *b)
{
        unsigned i, n = 0;

        for (i = b->subs; i < b->n; i++)
                n += b->c[i].inflight;
        return n;
}

static unsigned inflight_total(const struct bench *b)
{
        unsigned i, n = 0;

        for (i = 0; i < b->n; i++)
                n += b->c[i].inflight;
        return n;
}

static bool drained(const struct bench *b)
{
        unsigned i;

        switch (b->sc) {
        case SC_ECHO:
        case SC_DB:
                return inflight_total(b) == 0;
        case SC_FANOUT:
                return fanout_pending(b) == 0 &&
                       b->distinct >= (uint64_t)b->subs * b->published;
        case SC_CHURN:
                for (i = 0; i < b->n; i++) {
                        if (b->c[i].w != NULL)
                                return false;
                }
                return true;
        case SC_QUEUE: /* its phases wait for the jobs themselves */
        default:
                return true;
        }
}

static void end_cb(evutil_socket_t fd, short what, void *arg)
{
        struct bench *b = arg;

        (void)fd;
        (void)what;
        if (b->phase != PH_RUN)
                return;
        b->t1 = now_ns();
        b->cpu1 = all_cpu(b);
        b->db_cpu1 = db_cpu(b);
        if (b->sc == SC_IDLE)
                b->rss1 = server_rss(b->pid);
        b->counted = b->count;
        b->phase = PH_DRAIN;
        b->drain_until = b->t1 + (uint64_t)b->drain_s * 1000000000u;
        if (b->tick_ev)
                evtimer_del(b->tick_ev);
}

static void start_run(struct bench *b)
{
        unsigned i, k;

        if (b->phase != PH_SETUP || b->aborted)
                return;
        if (b->sc == SC_IDLE && b->ready == 0) {
                abort_run(b, "no connection could be opened");
                return;
        }
        b->phase = PH_RUN;
        if (b->sc == SC_IDLE && !b->json)
                fprintf(stderr,
                        "pxl-bench: %u connections open (%u failed), "
                        "holding %u s\n",
                        b->ready, b->failed, b->seconds);
        b->t0 = now_ns();
        b->cpu0 = all_cpu(b);
        b->db_cpu0 = db_cpu(b);
        if (b->sc != SC_QUEUE)
                arm(b->end_ev, b->seconds);
        switch (b->sc) {
        case SC_ECHO:
        case SC_DB:
                for (i = 0; i < b->n; i++) {
                        for (k = 0; k < b->inflight; k++) {
                                if (b->sc == SC_DB)
                                        db_send(&b->c[i]);
                                else
                                        echo_send(&b->c[i]);
                        }
                }
                break;
        case SC_FANOUT:
                if (b->rate > 0) {
                        struct timeval ms = {0, 1000};

                        event_add(b->tick_ev, &ms);
                        break;
                }
                for (i = b->subs; i < b->n; i++) {
                        for (k = 0; k < b->window; k++)
                                publish(&b->c[i]);
                }
                break;
        case SC_CHURN:
                for (i = 0; i < b->n; i++)
                        churn_next(&b->c[i]);
                break;
        case SC_QUEUE: {
                struct timeval ms = {0, 1000};

                b->qstep = QS_BASE;
                queue_look(b, 0);
                event_add(b->tick_ev, &ms);
                break;
        }
        case SC_IDLE:
                break;
        }
}

/* Fixed-rate publishing: catch up with rate * elapsed every tick. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
        struct bench *b = arg;
        uint64_t due;
        unsigned tries;

        (void)fd;
        (void)what;
        if (b->phase != PH_RUN)
                return;
        if (b->sc == SC_QUEUE) {
                queue_tick(b);
                return;
        }
        due = (uint64_t)((double)(now_ns() - b->t0) * b->rate / 1e9) + 1;
        while (b->published_window < due) {
                struct bconn *c = NULL;

                for (tries = 0; tries < b->pubs; tries++) {
                        struct bconn *p = &b->c[b->subs + b->rr];

                        b->rr = (b->rr + 1) % b->pubs;
                        if (p->inflight < b->window && p->open) {
                                c = p;
                                break;
                        }
                }
                if (c == NULL) {
                        b->behind++;
                        break;
                }
                publish(c);
        }
}

/* Setup timeout, drain end, churn restarts and the final close. */
static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
        struct bench *b = arg;
        uint64_t now = now_ns();
        unsigned i;

        (void)fd;
        (void)what;
        switch (b->phase) {
        case PH_SETUP:
                if (now - b->t_setup > (uint64_t)SETUP_TIMEOUT_S * 1000000000u)
                        abort_run(b, "setup did not finish within 60 s");
                break;
        case PH_RUN:
                if (b->sc == SC_QUEUE)
                        queue_stalled(b);
                if (b->sc == SC_CHURN) {
                        for (i = 0; i < b->n; i++) {
                                if (b->c[i].w == NULL)
                                        churn_next(&b->c[i]);
                        }
                }
                break;
        case PH_DRAIN:
                if (drained(b) || now >= b->drain_until)
                        finish_run(b);
                break;
        case PH_CLOSE:
                if (b->nopen == 0 || now >= b->close_until)
                        event_base_loopexit(b->base, NULL);
                break;
        }
}

static void sig_cb(evutil_socket_t fd, short what, void *arg)
{
        struct bench *b = arg;

        (void)fd;
        (void)what;
        if (b->phase == PH_RUN && b->sc == SC_QUEUE) {
                abort_run(b, "interrupted");
                return;
        }
        if (b->phase == PH_RUN) {
                end_cb(-1, 0, b);
                return;
        }
        if (b->phase == PH_SETUP) {
                abort_run(b, "interrupted");
                return;
        }
        event_base_loopexit(b->base, NULL);
}

/* ---- results ------------------------------------------------------------- */

/* (pub, seq) messages that missed at least one subscriber. */
static uint64_t lost_messages(const struct bench *b)
{
        uint64_t lost = 0;
        unsigned p, s;
        size_t wi;

        for (p = 0; p < b->pubs; p++) {
                uint64_t sent = b->pub_sent[p];
                size_t words = (size_t)((sent + 63) / 64);

                for (wi = 0; wi < words; wi++) {
                        uint64_t all = ~(uint64_t)0, valid = ~(uint64_t)0;

                        if (wi == words - 1 && sent % 64)
                                valid = ((uint64_t)1 << (sent % 64)) - 1;
                        for (s = 0; s < b->subs && all; s++) {
                                const struct track *t = &b->c[s].track[p];

                                all &= wi < t->words ? t->bits[wi] : 0;
                        }
                        lost += (uint64_t)__builtin_popcountll(~all & valid);
                }
        }
        return lost;
}

struct out {
        char json[2048];
        size_t len;
};

static void jadd(struct out *o, const char *fmt, ...) PXL_PRINTF(2, 3);

static void jadd(struct out *o, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (o->len >= sizeof(o->json))
                return;
        va_start(ap, fmt);
        n = vsnprintf(o->json + o->len, sizeof(o->json) - o->len, fmt, ap);
        va_end(ap);
        if (n > 0)
                o->len += (size_t)n;
}

static void row(const struct bench *b, const char *name, const char *fmt, ...)
        PXL_PRINTF(3, 4);

static void row(const struct bench *b, const char *name, const char *fmt, ...)
{
        va_list ap;

        if (b->json)
                return;
        printf("  %-22s ", name);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
}

/* CPU seconds of a queue phase: the --pid tree, the --also-pid trees. */
static void queue_cpu(const struct queue_phase *qp, double *server,
                      double *also)
{
        *server = qp->cpu0 >= 0 && qp->cpu1 >= 0 ? qp->cpu1 - qp->cpu0 : -1;
        *also = qp->also0 >= 0 && qp->also1 >= 0 ? qp->also1 - qp->also0 : -1;
}

/* Jobs run more than once, and jobs never started. */
static uint64_t queue_dups(const struct queue_phase *qp)
{
        return qp->started > qp->added ? qp->started - qp->added : 0;
}

static uint64_t queue_lost(const struct queue_phase *qp)
{
        return qp->added > qp->started ? qp->added - qp->started : 0;
}

static void print_queue(const struct bench *b, struct out *o)
{
        const struct queue_phase *f = &b->flat, *r = &b->paced;
        double fsecs = (double)(f->last_done_us - f->first_add_us) / 1e6;
        double rate = fsecs > 0 ? (double)f->added / fsecs : 0;
        double fwin = (double)(f->t1 - f->t0) / 1e9;
        double rwin = (double)(r->t1 - r->t0) / 1e9;
        double radd = (double)(r->last_add_us - r->first_add_us) / 1e6;
        double scpu, acpu, rscpu, racpu, m = (double)f->added / 1e6;
        uint64_t p50 = pxl_histogram_quantile(&r->hist, 0.50);
        uint64_t p99 = pxl_histogram_quantile(&r->hist, 0.99);
        uint64_t p999 = pxl_histogram_quantile(&r->hist, 0.999);
        uint64_t f50 = pxl_histogram_quantile(&f->hist, 0.50);
        uint64_t f99 = pxl_histogram_quantile(&f->hist, 0.99);

        queue_cpu(f, &scpu, &acpu);
        queue_cpu(r, &rscpu, &racpu);
        if (!b->json) {
                printf("pxl-bench queue: %s\n", b->url);
                row(b, "workers", "%u (figures from %u)", b->workers,
                    f->answered ? f->answered : r->answered);
                row(b, "flat-out", "%" PRIu64 " jobs, %u per bench/enqueue",
                    f->added, b->batch);
                row(b, "first add to last done", "%.3f s", fsecs);
                row(b, "jobs/s", "%.0f", rate);
                row(b, "runs",
                    "%" PRIu64 " (%" PRIu64 " twice, %" PRIu64 " never)",
                    f->started, queue_dups(f), queue_lost(f));
                row(b, "add to start p50", "%.1f us", (double)f50 / 1e3);
                row(b, "add to start p99", "%.1f us", (double)f99 / 1e3);
                if (scpu >= 0) {
                        row(b, "server cpu",
                            "%.2f s (%.0f%% of one core), "
                            "%.3f s per 1M jobs",
                            scpu, fwin > 0 ? 100 * scpu / fwin : 0,
                            m > 0 ? scpu / m : 0);
                } else {
                        row(b, "server cpu", "n/a (give --pid)");
                }
                if (b->nalso > 0 && acpu >= 0)
                        row(b, "--also-pid cpu",
                            "%.2f s (%.0f%% of one "
                            "core), %.3f s per 1M jobs",
                            acpu, fwin > 0 ? 100 * acpu / fwin : 0,
                            m > 0 ? acpu / m : 0);
                if (scpu >= 0 && acpu >= 0)
                        row(b, "cpu per 1M jobs", "%.3f s (both)",
                            m > 0 ? (scpu + acpu) / m : 0);
                row(b, "paced",
                    "%" PRIu64 " jobs at %.0f/s (%.2f s of "
                    "adds)",
                    r->added, b->rate, radd);
                row(b, "runs",
                    "%" PRIu64 " (%" PRIu64 " twice, %" PRIu64 " never)",
                    r->started, queue_dups(r), queue_lost(r));
                row(b, "add to start p50", "%.1f us", (double)p50 / 1e3);
                row(b, "add to start p99", "%.1f us", (double)p99 / 1e3);
                row(b, "add to start p99.9", "%.1f us", (double)p999 / 1e3);
                row(b, "add to start max", "%.1f us",
                    (double)r->hist.max / 1e3);
                if (rscpu >= 0 && racpu >= 0)
                        row(b, "cpu while paced",
                            "%.2f s server, %.2f s "
                            "--also-pid (%.0f%% of one core in all)",
                            rscpu, racpu,
                            rwin > 0 ? 100 * (rscpu + racpu) / rwin : 0);
                row(b, "failed jobs", "%" PRIu64 " (bad payloads %" PRIu64 ")",
                    b->q_failed, f->bad > r->bad ? f->bad : r->bad);
        }
        jadd(o,
             ",\"workers\":%u,\"answered\":%u,\"jobs\":%" PRIu64
             ",\"batch\":%u,\"seconds\":%.3f,\"window_s\":%.3f",
             b->workers, f->answered, f->added, b->batch, fsecs, fwin);
        jadd(o,
             ",\"messages\":%" PRIu64 ",\"msgs_per_sec\":%.1f,"
             "\"jobs_per_sec\":%.1f,\"started\":%" PRIu64
             ",\"duplicated\":%" PRIu64 ",\"lost\":%" PRIu64,
             f->added, rate, rate, f->started, queue_dups(f) + queue_dups(r),
             queue_lost(f) + queue_lost(r));
        jadd(o,
             ",\"flat_p50_us\":%.1f,\"flat_p99_us\":%.1f,"
             "\"flat_max_us\":%.1f",
             (double)f50 / 1e3, (double)f99 / 1e3, (double)f->hist.max / 1e3);
        if (scpu >= 0 && acpu >= 0 && m > 0)
                jadd(o,
                     ",\"server_cpu_s\":%.3f,\"also_cpu_s\":%.3f,"
                     "\"cpu_s\":%.3f,\"server_cpu_per_1m\":%.4f,"
                     "\"also_cpu_per_1m\":%.4f,\"cpu_per_1m\":%.4f",
                     scpu, acpu, scpu + acpu, scpu / m, acpu / m,
                     (scpu + acpu) / m);
        else
                jadd(o, ",\"server_cpu_s\":null,\"also_cpu_s\":null,"
                        "\"cpu_s\":null,\"server_cpu_per_1m\":null,"
                        "\"also_cpu_per_1m\":null,\"cpu_per_1m\":null");
        jadd(o,
             ",\"rate\":%.1f,\"rate_jobs\":%" PRIu64
             ",\"rate_started\":%" PRIu64
             ",\"rate_add_seconds\":%.3f,\"rate_window_s\":%.3f",
             b->rate, r->added, r->started, radd, rwin);
        jadd(o,
             ",\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
             "\"max_us\":%.1f",
             (double)p50 / 1e3, (double)p99 / 1e3, (double)p999 / 1e3,
             (double)r->hist.max / 1e3);
        if (rscpu >= 0 && racpu >= 0)
                jadd(o, ",\"rate_server_cpu_s\":%.3f,\"rate_also_cpu_s\":%.3f",
                     rscpu, racpu);
        jadd(o, ",\"jobs_failed\":%" PRIu64 ",\"bad\":%" PRIu64, b->q_failed,
             f->bad > r->bad ? f->bad : r->bad);
}

static void print_results(struct bench *b)
{
        double secs = (double)(b->t1 - b->t0) / 1e9;
        double rate = secs > 0 ? (double)b->counted / secs : 0;
        double cpu = b->cpu0 >= 0 && b->cpu1 >= 0 ? b->cpu1 - b->cpu0 : -1;
        const char *unit = b->sc == SC_ECHO     ? "requests"
                           : b->sc == SC_DB     ? "queries"
                           : b->sc == SC_FANOUT ? "deliveries"
                           : b->sc == SC_CHURN  ? "cycles"
                                                : "connections";
        struct out o = {.len = 0};
        uint64_t lost = 0, lost_deliveries = 0;

        if (b->sc == SC_QUEUE) {
                jadd(&o, "{\"scenario\":\"queue\"");
                print_queue(b, &o);
                row(b, "errors",
                    "%" PRIu64 " error frames, %u failed, %u "
                    "dropped",
                    b->errors, b->failed, b->dropped);
                jadd(&o,
                     ",\"errors\":%" PRIu64 ",\"failed\":%u,"
                     "\"dropped\":%u}",
                     b->errors, b->failed, b->dropped);
                printf("RESULT %s\n", o.json);
                fflush(stdout);
                return;
        }
        if (b->sc == SC_IDLE) {
                /* The unit is the connection; the window is the hold. */
                b->counted = b->ready;
                rate = 0;
        }
        if (!b->json) {
                printf("pxl-bench %s: %s\n", scenario_names[b->sc], b->url);
                switch (b->sc) {
                case SC_ECHO:
                case SC_DB:
                        row(b, "connections", "%u x %u in flight", b->conns,
                            b->inflight);
                        if (b->sc == SC_DB)
                                row(b, "ids", "1..%u at random", b->rows);
                        break;
                case SC_FANOUT:
                        row(b, "subscribers", "%u (room %s)", b->subs, b->room);
                        if (b->rate > 0)
                                row(b, "publishers", "%u at %.0f msg/s total",
                                    b->pubs, b->rate);
                        else
                                row(b, "publishers", "%u flat-out, window %u",
                                    b->pubs, b->window);
                        break;
                case SC_IDLE:
                        row(b, "connections", "%u open, %u failed%s", b->ready,
                            b->failed,
                            b->spread ? " (sources 127.0.0.2..)" : "");
                        break;
                case SC_CHURN:
                        row(b, "workers", "%u", b->conns);
                        break;
                case SC_QUEUE: /* print_queue */
                        break;
                }
                row(b, "window", "%.2f s", secs);
        }
        jadd(&o, "{\"scenario\":\"%s\"", scenario_names[b->sc]);
        jadd(&o, ",\"seconds\":%.3f", secs);
        switch (b->sc) {
        case SC_ECHO:
        case SC_DB:
                jadd(&o, ",\"connections\":%u,\"in_flight\":%u", b->conns,
                     b->inflight);
                if (b->sc == SC_DB)
                        jadd(&o, ",\"rows\":%u", b->rows);
                break;
        case SC_FANOUT:
                jadd(&o, ",\"subscribers\":%u,\"publishers\":%u", b->subs,
                     b->pubs);
                if (b->rate > 0)
                        jadd(&o, ",\"rate\":%.1f", b->rate);
                jadd(&o, ",\"window\":%u", b->window);
                break;
        case SC_IDLE:
                jadd(&o, ",\"connections\":%u", b->ready);
                break;
        case SC_CHURN:
                jadd(&o, ",\"workers\":%u", b->conns);
                break;
        case SC_QUEUE: /* print_queue */
                break;
        }
        if (b->sc != SC_IDLE) {
                row(b, unit, "%" PRIu64, b->counted);
                row(b, "msgs/s", "%.0f %s/s", rate, unit);
                jadd(&o, ",\"messages\":%" PRIu64 ",\"msgs_per_sec\":%.1f",
                     b->counted, rate);
        }
        if (b->sc == SC_FANOUT) {
                double pr = secs > 0 ? (double)b->published_window / secs : 0;
                uint64_t expected;

                lost = lost_messages(b);
                expected = (uint64_t)b->subs * b->published;
                lost_deliveries =
                        expected > b->distinct ? expected - b->distinct : 0;
                row(b, "published", "%" PRIu64 " (%.0f/s in the window)",
                    b->published, pr);
                row(b, "lost", "%" PRIu64 " messages, %" PRIu64 " deliveries",
                    lost, lost_deliveries);
                row(b, "duplicated", "%" PRIu64, b->dups);
                if (b->behind)
                        row(b, "rate not met", "%" PRIu64 " ticks", b->behind);
                jadd(&o,
                     ",\"published\":%" PRIu64 ",\"publishes_per_sec\":%.1f"
                     ",\"deliveries\":%" PRIu64 ",\"lost\":%" PRIu64
                     ",\"lost_deliveries\":%" PRIu64 ",\"duplicated\":%" PRIu64,
                     b->published, pr, b->distinct, lost, lost_deliveries,
                     b->dups);
        }
        if (b->sc != SC_IDLE) {
                const char *what = b->sc == SC_ECHO || b->sc == SC_DB ? "rtt"
                                   : b->sc == SC_FANOUT ? "latency"
                                                        : "cycle";

                uint64_t p50 = pxl_histogram_quantile(&b->hist, 0.50);
                uint64_t p99 = pxl_histogram_quantile(&b->hist, 0.99);
                uint64_t p999 = pxl_histogram_quantile(&b->hist, 0.999);
                char n50[32], n99[32], n999[32];

                snprintf(n50, sizeof(n50), "%s p50", what);
                snprintf(n99, sizeof(n99), "%s p99", what);
                snprintf(n999, sizeof(n999), "%s p99.9", what);
                row(b, n50, "%.1f us", (double)p50 / 1e3);
                row(b, n99, "%.1f us", (double)p99 / 1e3);
                row(b, n999, "%.1f us", (double)p999 / 1e3);
                jadd(&o,
                     ",\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
                     "\"max_us\":%.1f",
                     (double)p50 / 1e3, (double)p99 / 1e3, (double)p999 / 1e3,
                     (double)b->hist.max / 1e3);
        }
        if (b->sc == SC_IDLE) {
                long long grow = b->rss1 - b->rss0;
                double per = b->ready ? (double)grow / b->ready : 0;
                double open_s = (double)(b->t0 - b->t_setup) / 1e9;
                double cps = open_s > 0 ? (double)b->ready / open_s : 0;

                row(b, "opened in", "%.2f s (%.0f connections/s)", open_s, cps);
                jadd(&o, ",\"connects_per_sec\":%.1f", cps);
                row(b, "server rss before", "%lld bytes", b->rss0);
                row(b, "server rss after", "%lld bytes", b->rss1);
                row(b, "rss per connection", "%.0f bytes", per);
                jadd(&o,
                     ",\"rss_before_bytes\":%lld,\"rss_after_bytes\":%lld,"
                     "\"rss_per_conn_bytes\":%.1f",
                     b->rss0, b->rss1, per);
        }
        if (cpu >= 0) {
                double per1m =
                        b->counted ? cpu / ((double)b->counted / 1e6) : 0;

                row(b, "server cpu", "%.2f s (%.0f%% of one core)", cpu,
                    secs > 0 ? 100 * cpu / secs : 0);
                jadd(&o, ",\"server_cpu_s\":%.3f", cpu);
                if (b->sc != SC_IDLE) {
                        row(b, "server cpu per 1M", "%.3f s per 1M %s", per1m,
                            unit);
                        jadd(&o, ",\"server_cpu_per_1m\":%.4f", per1m);
                }
        } else {
                row(b, "server cpu", "n/a (give --pid)");
                jadd(&o, ",\"server_cpu_s\":null,\"server_cpu_per_1m\":null");
        }
        if (b->db_pid && b->db_cpu0 >= 0 && b->db_cpu1 >= 0) {
                double dcpu = b->db_cpu1 - b->db_cpu0;
                double per1m =
                        b->counted ? dcpu / ((double)b->counted / 1e6) : 0;

                row(b, "database cpu", "%.2f s (%.0f%% of one core)", dcpu,
                    secs > 0 ? 100 * dcpu / secs : 0);
                row(b, "database cpu per 1M", "%.3f s per 1M %s", per1m, unit);
                jadd(&o, ",\"db_cpu_s\":%.3f,\"db_cpu_per_1m\":%.4f", dcpu,
                     per1m);
        }
        if (b->sc == SC_DB) {
                row(b, "wrong replies", "%" PRIu64, b->wrong);
                jadd(&o, ",\"wrong\":%" PRIu64, b->wrong);
        }
        row(b, "errors", "%" PRIu64 " error frames, %u failed, %u dropped",
            b->errors, b->failed, b->dropped);
        if (b->first_err[0] && !b->json)
                row(b, "first problem", "%s", b->first_err);
        jadd(&o, ",\"errors\":%" PRIu64 ",\"failed\":%u,\"dropped\":%u}",
             b->errors, b->failed, b->dropped);
        printf("RESULT %s\n", o.json);
        fflush(stdout);
}

static void finish_run(struct bench *b)
{
        unsigned i;

        if (b->phase == PH_CLOSE)
                return;
        if (!b->aborted)
                print_results(b);
        b->phase = PH_CLOSE;
        if (b->tick_ev)
                evtimer_del(b->tick_ev);
        evtimer_del(b->end_ev);
        b->close_until = now_ns() + (uint64_t)CLOSE_WAIT_S * 1000000000u;
        for (i = 0; i < b->n; i++) {
                if (b->c[i].w != NULL)
                        pxl_wsc_close(b->c[i].w, PXL_CLOSE_NORMAL, NULL);
        }
}

/* ---- command line -------------------------------------------------------- */

static void usage(FILE *f)
{
        fprintf(f, "usage: pxl-bench [options] "
                   "echo|fanout|idle|churn|db|queue\n"
                   "\n"
                   "Load a pxl server (plugins system and bench; queue:\n"
                   "benchqueue) and report rates, latencies and the server's\n"
                   "CPU per 1M messages.\n"
                   "\n"
                   "  -H, --host HOST  server host (127.0.0.1)\n"
                   "  -p PORT        server port (8080)\n"
                   "  -P PATH        WebSocket path (/ws)\n"
                   "  -c N           echo, db: connections; churn: workers "
                   "(50)\n"
                   "  -k N           echo, db: requests in flight per "
                   "connection (1)\n"
                   "  -t SECONDS     measured window; idle: hold time; queue:\n"
                   "                 the paced run's length (10)\n"
                   "  -s N           fanout: subscribers (100)\n"
                   "  -n N           fanout: publishers (1)\n"
                   "  -r RATE        fanout: publishes/s in total (default: "
                   "flat-out);\n"
                   "                 queue: jobs/s of the paced run (1000)\n"
                   "  -w N           fanout: unacknowledged publishes per "
                   "publisher (16)\n"
                   "  -z BYTES       padding added to each request or payload "
                   "(0)\n"
                   "  -N N           idle: connections (1000)\n"
                   "  --rows N       db: ids asked for are 1..N, at random "
                   "(10000)\n"
                   "  --jobs N       queue: jobs of the flat-out run (100000)\n"
                   "  --batch N      queue: jobs per bench/enqueue (1000)\n"
                   "  --workers N    queue: the server's workers, whose "
                   "figures\n"
                   "                 are gathered (1)\n"
                   "  --pid PID      the server process, for CPU and RSS\n"
                   "  --also-pid PID another process whose CPU counts as the\n"
                   "                 server's (e.g. redis-server); up to 8\n"
                   "  --db-pid PID   the database server (e.g. PostgreSQL's\n"
                   "                 postmaster): its tree's CPU, apart\n"
                   "  --drain SEC    fanout, echo, churn: wait for stragglers "
                   "(5)\n"
                   "  --token JWT    sent as Authorization: Bearer\n"
                   "  --tls          connect with wss:// (no certificate "
                   "check)\n"
                   "  --json         print only the RESULT line\n"
                   "  -h, --help     show this help\n"
                   "  -V, --version  print the version, then exit\n"
                   "\n"
                   "Output: a table, then one line `RESULT {json}`. "
                   "See pxl-bench(1).\n");
}

static bool parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end != '\0' || v < min || v > max ||
            s[0] == '-')
                return false;
        *out = (unsigned)v;
        return true;
}

enum {
        OPT_PID = 256,
        OPT_JSON,
        OPT_DRAIN,
        OPT_TOKEN,
        OPT_TLS,
        OPT_ALSO_PID,
        OPT_DB_PID,
        OPT_ROWS,
        OPT_JOBS,
        OPT_BATCH,
        OPT_WORKERS,
};

static int parse_args(struct bench *b, int argc, char **argv)
{
        static const struct option longs[] = {
                {"pid", required_argument, NULL, OPT_PID},
                {"also-pid", required_argument, NULL, OPT_ALSO_PID},
                {"db-pid", required_argument, NULL, OPT_DB_PID},
                {"rows", required_argument, NULL, OPT_ROWS},
                {"jobs", required_argument, NULL, OPT_JOBS},
                {"batch", required_argument, NULL, OPT_BATCH},
                {"workers", required_argument, NULL, OPT_WORKERS},
                {"json", no_argument, NULL, OPT_JSON},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {"host", required_argument, NULL, 'H'},
                {"drain", required_argument, NULL, OPT_DRAIN},
                {"token", required_argument, NULL, OPT_TOKEN},
                {"tls", no_argument, NULL, OPT_TLS},
                {NULL, 0, NULL, 0},
        };
        unsigned v;
        int opt, i, li = 0;

        while ((opt = getopt_long(argc, argv, "hVH:p:P:c:k:t:s:n:r:w:z:N:",
                                  longs, &li)) != -1) {
                bool ok = true;
                char *end;

                switch (opt) {
                case 'H':
                        b->host = optarg;
                        break;
                case 'p':
                        ok = parse_uint(optarg, 1, 65535, &b->port);
                        break;
                case 'P':
                        b->path = optarg;
                        ok = optarg[0] == '/';
                        break;
                case 'c':
                        ok = parse_uint(optarg, 1, 1000000, &b->conns);
                        break;
                case 'k':
                        ok = parse_uint(optarg, 1, 100000, &b->inflight);
                        break;
                case 't':
                        ok = parse_uint(optarg, 1, 86400, &b->seconds);
                        break;
                case 's':
                        ok = parse_uint(optarg, 1, 1000000, &b->subs);
                        break;
                case 'n':
                        ok = parse_uint(optarg, 1, 100000, &b->pubs);
                        break;
                case 'r':
                        errno = 0;
                        b->rate = strtod(optarg, &end);
                        ok = errno == 0 && end != optarg && *end == '\0' &&
                             b->rate > 0 && b->rate <= 1e8;
                        break;
                case 'w':
                        ok = parse_uint(optarg, 1, 100000, &b->window);
                        break;
                case 'z':
                        ok = parse_uint(optarg, 0, 16u << 20, &b->payload);
                        break;
                case 'N':
                        ok = parse_uint(optarg, 1, 10000000, &b->idle_n);
                        break;
                case OPT_PID:
                        ok = parse_uint(optarg, 1, 1u << 30, &v);
                        if (ok)
                                b->pid = (pid_t)v;
                        break;
                case OPT_ALSO_PID:
                        ok = b->nalso < sizeof(b->also) / sizeof(*b->also) &&
                             parse_uint(optarg, 1, 1u << 30, &v);
                        if (ok)
                                b->also[b->nalso++] = (pid_t)v;
                        break;
                case OPT_DB_PID:
                        ok = parse_uint(optarg, 1, 1u << 30, &v);
                        if (ok)
                                b->db_pid = (pid_t)v;
                        break;
                case OPT_ROWS:
                        ok = parse_uint(optarg, 1, 1u << 30, &b->rows);
                        break;
                case OPT_JOBS:
                        ok = parse_uint(optarg, 0, 100000000, &b->jobs);
                        break;
                case OPT_BATCH:
                        ok = parse_uint(optarg, 1, 100000, &b->batch);
                        break;
                case OPT_WORKERS:
                        ok = parse_uint(optarg, 1, 1024, &b->workers);
                        break;
                case OPT_DRAIN:
                        ok = parse_uint(optarg, 0, 3600, &b->drain_s);
                        break;
                case OPT_TOKEN:
                        b->token = optarg;
                        break;
                case OPT_TLS:
                        b->tls = true;
                        break;
                case OPT_JSON:
                        b->json = true;
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                case 'V':
                        printf("pxl-bench %s\n", PACKAGE_VERSION);
                        exit(0);
                default:
                        usage(stderr);
                        return -1;
                }
                if (!ok) {
                        if (opt < 256)
                                fprintf(stderr,
                                        "pxl-bench: bad value \"%s\" for "
                                        "-%c\n",
                                        optarg, opt);
                        else
                                fprintf(stderr,
                                        "pxl-bench: bad value \"%s\" for "
                                        "--%s\n",
                                        optarg, longs[li].name);
                        return -1;
                }
        }
        if (optind != argc - 1) {
                usage(stderr);
                return -1;
        }
        for (i = 0; i < (int)(sizeof(scenario_names) / sizeof(*scenario_names));
             i++) {
                if (strcmp(argv[optind], scenario_names[i]) == 0) {
                        b->sc = (enum scenario)i;
                        return 0;
                }
        }
        fprintf(stderr,
                "pxl-bench: unknown scenario \"%s\" (echo, fanout, "
                "idle, churn, db or queue)\n",
                argv[optind]);
        return -1;
}

/* Raise the soft open-file limit to the hard one; return what is usable. */
static unsigned fd_budget(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 1000;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
                getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 10000000)
                return 10000000;
        return rl.rlim_cur > FD_RESERVE ? (unsigned)rl.rlim_cur - FD_RESERVE
                                        : 1;
}

static int setup(struct bench *b)
{
        unsigned budget = fd_budget(), i;
        bool loopback;

        switch (b->sc) {
        case SC_ECHO:
        case SC_CHURN:
        case SC_DB:
                b->n = b->conns;
                break;
        case SC_FANOUT:
                b->n = b->subs + b->pubs;
                break;
        case SC_QUEUE:
                b->n = 1;
                if (b->rate <= 0)
                        b->rate = 1000;
                /* Run numbers no other pxl-bench of this server uses. */
                b->flat.run = ((now_ns() ^ (uint64_t)getpid() << 32) &
                               (((uint64_t)1 << 50) - 1)) *
                              2;
                b->flat.target = b->jobs;
                b->paced.run = b->flat.run + 1;
                b->paced.target = (uint64_t)(b->rate * b->seconds + 0.5);
                break;
        case SC_IDLE:
                b->n = b->idle_n;
                if (b->pid == 0) {
                        fprintf(stderr, "pxl-bench: idle measures the "
                                        "server's memory: give --pid\n");
                        return -1;
                }
                break;
        }
        if (b->n > budget) {
                fprintf(stderr,
                        "pxl-bench: %u connections exceed this process's "
                        "open-file limit (hard limit %u, see ulimit -Hn); "
                        "using %u\n",
                        b->n, budget + FD_RESERVE, budget);
                if (b->sc == SC_FANOUT) {
                        if (budget <= b->pubs)
                                return -1;
                        b->subs = budget - b->pubs;
                        b->n = budget;
                } else {
                        b->n = budget;
                        b->conns = b->idle_n = budget;
                }
        }
        loopback = strncmp(b->host, "127.", 4) == 0;
        b->spread = b->sc == SC_IDLE && loopback && b->n > SPREAD_PER_ADDR;
        if (b->spread && b->n / SPREAD_PER_ADDR > 250) {
                fprintf(stderr, "pxl-bench: too many connections\n");
                return -1;
        }
        snprintf(b->url, sizeof(b->url), "%s://%s%s%s:%u%s",
                 b->tls ? "wss" : "ws", strchr(b->host, ':') ? "[" : "",
                 b->host, strchr(b->host, ':') ? "]" : "", b->port, b->path);
        snprintf(b->room, sizeof(b->room), "pxl-bench-%d", (int)getpid());
        b->c = calloc(b->n ? b->n : 1, sizeof(*b->c));
        if (b->c == NULL || make_pad(b) < 0)
                return -1;
        if (b->sc == SC_FANOUT) {
                b->pub_sent = calloc(b->pubs, sizeof(*b->pub_sent));
                if (b->pub_sent == NULL)
                        return -1;
        }
        for (i = 0; i < b->n; i++) {
                struct bconn *c = &b->c[i];

                c->b = b;
                c->idx = i;
                switch (b->sc) {
                case SC_ECHO:
                        c->role = R_ECHO;
                        break;
                case SC_FANOUT:
                        c->role = i < b->subs ? R_SUB : R_PUB;
                        if (c->role == R_SUB) {
                                c->track = calloc(b->pubs, sizeof(*c->track));
                                if (c->track == NULL)
                                        return -1;
                        }
                        break;
                case SC_IDLE:
                        c->role = R_IDLE;
                        break;
                case SC_CHURN:
                        c->role = R_CHURN;
                        break;
                case SC_DB:
                        c->role = R_DB;
                        break;
                case SC_QUEUE:
                        c->role = R_QUEUE;
                        break;
                }
        }
        return 0;
}

static void cleanup(struct bench *b)
{
        unsigned i, p;

        for (i = 0; b->c != NULL && i < b->n; i++) {
                pxl_wsc_free(b->c[i].w);
                if (b->c[i].track != NULL) {
                        for (p = 0; p < b->pubs; p++)
                                free(b->c[i].track[p].bits);
                        free(b->c[i].track);
                }
        }
        free(b->c);
        free(b->pub_sent);
        free(b->buf);
        free(b->pad);
        if (b->end_ev)
                event_free(b->end_ev);
        if (b->tick_ev)
                event_free(b->tick_ev);
        if (b->poll_ev)
                event_free(b->poll_ev);
        if (b->sig_ev)
                event_free(b->sig_ev);
        if (b->base)
                event_base_free(b->base);
}

int main(int argc, char **argv)
{
        static struct bench bench; /* large: the histogram */
        struct bench *b = &bench;
        struct timeval poll_tv = {0, 50000};
        int rc = 1;

        b->host = "127.0.0.1";
        b->port = 8080;
        b->path = "/ws";
        b->conns = 50;
        b->inflight = 1;
        b->seconds = 10;
        b->subs = 100;
        b->pubs = 1;
        b->window = 16;
        b->idle_n = 1000;
        b->drain_s = 5;
        b->rows = 10000;
        b->jobs = 100000;
        b->batch = 1000;
        b->workers = 1;
        b->cpu0 = b->cpu1 = -1;
        b->db_cpu0 = b->db_cpu1 = -1;
        b->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
        if (parse_args(b, argc, argv) < 0)
                return 2;
        signal(SIGPIPE, SIG_IGN);
        if (b->pid && proc_stat(b->pid, NULL, NULL) < 0) {
                fprintf(stderr, "pxl-bench: no process %d (--pid)\n",
                        (int)b->pid);
                return 2;
        }
        b->base = event_base_new();
        if (b->base == NULL || setup(b) < 0)
                goto out;
        b->end_ev = evtimer_new(b->base, end_cb, b);
        b->tick_ev = event_new(b->base, -1, EV_PERSIST, tick_cb, b);
        b->poll_ev = event_new(b->base, -1, EV_PERSIST, poll_cb, b);
        b->sig_ev = evsignal_new(b->base, SIGINT, sig_cb, b);
        if (!b->end_ev || !b->tick_ev || !b->poll_ev || !b->sig_ev)
                goto out;
        event_add(b->poll_ev, &poll_tv);
        event_add(b->sig_ev, NULL);
        b->t_setup = now_ns();
        if (b->sc == SC_IDLE) {
                b->rss0 = server_rss(b->pid);
                if (b->rss0 < 0) {
                        fprintf(stderr,
                                "pxl-bench: cannot read the RSS of "
                                "process %d\n",
                                (int)b->pid);
                        goto out;
                }
        }
        if (b->sc == SC_CHURN)
                start_run(b);
        else
                launch(b);
        event_base_dispatch(b->base);
        rc = b->aborted ? 1 : 0;
        if (b->sc == SC_DB && !b->aborted && (b->wrong || b->errors)) {
                fprintf(stderr,
                        "pxl-bench: %" PRIu64 " wrong replies, %" PRIu64
                        " error frames: the run fails\n",
                        b->wrong, b->errors);
                rc = 1;
        }
        /*
         * Error frames and not one success (e.g. the bench plugin is not
         * loaded: "Unknown route" for each request) is a failed run, not
         * a rate of 0. The queue scenario aborts on its first error.
         */
        if (rc == 0 && b->sc != SC_IDLE && b->sc != SC_QUEUE &&
            b->count == 0 && b->errors > 0) {
                fprintf(stderr,
                        "pxl-bench: every request failed (%" PRIu64
                        " error frames, no success): the run fails\n",
                        b->errors);
                rc = 1;
        }
out:
        cleanup(b);
        return rc;
}
