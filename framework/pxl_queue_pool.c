/*
 * pxl_queue_pool.c - the threads that run the queue's blocking
 * processors (pxl_queue_pool.h): a queue of work the threads take from,
 * and a list of callbacks they hand back to the loop, through an
 * eventfd the loop watches (the loop has no evthread). It knows nothing
 * of jobs: pxl_queue.c decides what runs here and what a done does.
 *
 * Locking: p->lock guards p->todo, p->back, p->stopping and p->woken,
 * and nothing else. A task belongs to whoever has it on a list, or to
 * the thread running its work. The loop's: p->threads, p->nthreads,
 * p->ev and p->efd (threads only write to the eventfd).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>

#include "pxl/pxl.h"
#include "pxl_queue_pool.h"
#include "pxl_str.h"

struct task {
        TAILQ_ENTRY(task) link;
        pxl_queue_pool_fn *work; /* NULL: a post */
        pxl_queue_pool_done_fn *done;
        pxl_queue_pool_fn *fn; /* a post's */
        void *arg;
        bool ran; /* work returned */
};

TAILQ_HEAD(task_list, task);

struct pxl_queue_pool {
        /* Under lock. */
        pthread_mutex_t lock;
        pthread_cond_t cond;   /* todo has work, or stopping */
        struct task_list todo; /* work no thread took yet, in order */
        struct task_list back; /* dones and posts for the loop, in order */
        bool stopping;         /* threads leave after the work they run */
        bool woken;            /* efd written since the loop collected */

        /* The loop's. */
        int efd;
        struct event *ev;
        pthread_t *threads;
        unsigned nthreads; /* started: to join */
};

static void wake(struct pxl_queue_pool *p)
{
        uint64_t one = 1;
        ssize_t n;

        do
                n = write(p->efd, &one, sizeof(one));
        while (n < 0 && errno == EINTR);
        /* EAGAIN: the counter is full, and the loop wakes anyway. */
}

/* Under p->lock: queue t for the loop; whether the caller must wake it. */
static bool hand_back(struct pxl_queue_pool *p, struct task *t)
{
        TAILQ_INSERT_TAIL(&p->back, t, link);
        if (p->woken)
                return false;
        p->woken = true;
        return true;
}

static void *thread_main(void *arg)
{
        struct pxl_queue_pool *p = arg;
        struct task *t;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                while (!p->stopping && TAILQ_EMPTY(&p->todo))
                        pthread_cond_wait(&p->cond, &p->lock);
                /* Stopping: free hands back what is still queued. */
                if (p->stopping)
                        break;
                t = TAILQ_FIRST(&p->todo);
                TAILQ_REMOVE(&p->todo, t, link);
                pthread_mutex_unlock(&p->lock);

                t->work(t->arg);
                t->ran = true;

                pthread_mutex_lock(&p->lock);
                if (hand_back(p, t)) {
                        pthread_mutex_unlock(&p->lock);
                        wake(p);
                        pthread_mutex_lock(&p->lock);
                }
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

/* The loop's side of a task; frees it. */
static void deliver(struct task *t)
{
        if (t->work == NULL)
                t->fn(t->arg);
        else
                t->done(t->arg, t->ran);
        free(t);
}

/* The threads handed callbacks back. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_queue_pool *p = arg;
        struct task_list mine;
        struct task *t;
        uint64_t n;
        ssize_t got;

        (void)what;
        /* Read first: a hand-back after this read wakes us again. */
        do
                got = read(fd, &n, sizeof(n));
        while (got < 0 && errno == EINTR);
        TAILQ_INIT(&mine);
        pthread_mutex_lock(&p->lock);
        TAILQ_CONCAT(&mine, &p->back, link);
        p->woken = false;
        pthread_mutex_unlock(&p->lock);
        /* Callbacks may run or post more: this list is ours alone. */
        while ((t = TAILQ_FIRST(&mine)) != NULL) {
                TAILQ_REMOVE(&mine, t, link);
                deliver(t);
        }
}

int pxl_queue_pool_run(struct pxl_queue_pool *p, pxl_queue_pool_fn *work,
                       pxl_queue_pool_done_fn *done, void *arg)
{
        struct task *t = calloc(1, sizeof(*t));
        bool stopping;

        if (t == NULL)
                return PXL_ENOMEM;
        t->work = work;
        t->done = done;
        t->arg = arg;
        pthread_mutex_lock(&p->lock);
        stopping = p->stopping;
        if (stopping) {
                pthread_mutex_unlock(&p->lock);
                free(t);
                return PXL_ECLOSED;
        }
        TAILQ_INSERT_TAIL(&p->todo, t, link); /* p->todo owns t */
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        return PXL_OK;
}

int pxl_queue_pool_post(struct pxl_queue_pool *p, pxl_queue_pool_fn *fn,
                        void *arg)
{
        struct task *t = calloc(1, sizeof(*t));
        bool w;

        if (t == NULL)
                return PXL_ENOMEM;
        t->fn = fn;
        t->arg = arg;
        pthread_mutex_lock(&p->lock);
        w = hand_back(p, t);
        pthread_mutex_unlock(&p->lock);
        if (w)
                wake(p);
        return PXL_OK;
}

static void report(struct pxl_str *errors, const char *what, int err)
{
        char line[256];

        snprintf(line, sizeof(line), "queue: %s: %s\n", what, strerror(err));
        pxl_str_puts(errors, line);
}

struct pxl_queue_pool *pxl_queue_pool_new(struct event_base *base,
                                          unsigned threads,
                                          struct pxl_str *errors)
{
        struct pxl_queue_pool *p = calloc(1, sizeof(*p));
        sigset_t all, old;
        int rc = 0;

        if (p == NULL) {
                pxl_str_puts(errors, "queue: out of memory\n");
                return NULL;
        }
        if (threads == 0)
                threads = 1;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        TAILQ_INIT(&p->todo);
        TAILQ_INIT(&p->back);
        p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (p->efd < 0) {
                report(errors, "eventfd", errno);
                goto fail;
        }
        p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, on_wake, p);
        p->threads = calloc(threads, sizeof(*p->threads));
        if (p->ev == NULL || p->threads == NULL || event_add(p->ev, NULL)) {
                pxl_str_puts(errors, "queue: out of memory\n");
                goto fail;
        }
        /* Signals stay with the loop's thread (libevent's handlers). */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        while (p->nthreads < threads) {
                rc = pthread_create(&p->threads[p->nthreads], NULL, thread_main,
                                    p);
                if (rc != 0)
                        break;
                p->nthreads++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
                report(errors, "cannot start a thread", rc);
                goto fail;
        }
        return p;
fail:
        pxl_queue_pool_free(p);
        return NULL;
}

void pxl_queue_pool_free(struct pxl_queue_pool *p)
{
        struct task *t;

        if (p == NULL)
                return;
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        /* Each thread returns from the work it runs, then leaves. */
        for (unsigned i = 0; i < p->nthreads; i++)
                pthread_join(p->threads[i], NULL);
        p->nthreads = 0;
        /*
         * Alone now (posts from the callbacks below join back): what
         * ran first, in order, then what never will.
         */
        for (;;) {
                pthread_mutex_lock(&p->lock);
                t = TAILQ_FIRST(&p->back);
                if (t != NULL)
                        TAILQ_REMOVE(&p->back, t, link);
                else if ((t = TAILQ_FIRST(&p->todo)) != NULL)
                        TAILQ_REMOVE(&p->todo, t, link);
                pthread_mutex_unlock(&p->lock);
                if (t == NULL)
                        break;
                deliver(t);
        }
        if (p->ev != NULL)
                event_free(p->ev);
        if (p->efd >= 0)
                close(p->efd);
        free(p->threads);
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        free(p);
}
