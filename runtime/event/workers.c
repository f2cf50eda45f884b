/* workers: the turn threads and the task queues between them and the
 * loop; see workers.h. Owns the threads, their event bases and queues. */
#define _GNU_SOURCE
#include "workers.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/common.h"

/* --- a task queue: many producers, one consumer (Vyukov's intrusive MPSC
 * queue), woken through an eventfd only when it was not woken already ---- */

typedef struct task {
    _Atomic(struct task *) next;
    pl_task_fn fn;
    void *arg;
} task;

typedef struct {
    _Atomic(task *) head; /* producers push here */
    task *tail;           /* the consumer pops here */
    task anchor; /* the node the queue keeps when empty */
    int efd;
    _Atomic int signalled;
    struct event *ev;
} queue;

static void queue_link(queue *q, task *t) {
    atomic_store_explicit(&t->next, NULL, memory_order_relaxed);
    task *prev = atomic_exchange_explicit(&q->head, t, memory_order_acq_rel);
    atomic_store_explicit(&prev->next, t, memory_order_release);
}

static void queue_push(queue *q, task *t) {
    queue_link(q, t);
    if (!atomic_exchange(&q->signalled, 1)) {
        uint64_t one = 1;
        ssize_t n = write(q->efd, &one, sizeof one);
        (void)n; /* only fails when the counter is full, and then it is readable */
    }
}

/* The oldest task, or NULL when there is none (or a producer is halfway
 * through a push: it signals once it is through). */
static task *queue_pop(queue *q) {
    task *tail = q->tail;
    task *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &q->anchor) {
        if (!next) return NULL;
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next) {
        q->tail = next;
        return tail;
    }
    if (tail != atomic_load_explicit(&q->head, memory_order_acquire)) return NULL;
    queue_link(q, &q->anchor);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (!next) return NULL;
    q->tail = next;
    return tail;
}

static void run_queued(queue *q) {
    for (task *t; (t = queue_pop(q));) {
        pl_task_fn fn = t->fn;
        void *targ = t->arg;
        free(t);
        fn(targ);
    }
}

/* Runs every task queued so far (the eventfd's reader). The flag is
 * cleared first: a task pushed from now on signals again. */
static void on_queue(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    queue *q = arg;
    uint64_t n;
    ssize_t got = read(fd, &n, sizeof n);
    (void)got;
    atomic_store(&q->signalled, 0);
    /* the flag's store before the queue's loads: a producer that saw it
     * set has linked its task where these loads see it */
    atomic_thread_fence(memory_order_seq_cst);
    run_queued(q);
}

static int queue_init(queue *q, struct event_base *base, char **err) {
    memset(q, 0, sizeof *q);
    atomic_store(&q->head, &q->anchor);
    q->tail = &q->anchor;
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) return pl_fail(err, "threads: eventfd: %s", strerror(errno));
    q->ev = event_new(base, q->efd, EV_READ | EV_PERSIST, on_queue, q);
    event_add(q->ev, NULL);
    return PL_OK;
}

static void queue_free(queue *q) {
    if (q->ev) event_free(q->ev);
    if (q->efd >= 0) close(q->efd);
    for (task *t; (t = queue_pop(q));) free(t);
}

static void post(queue *q, pl_task_fn fn, void *arg) {
    task *t = malloc(sizeof *t);
    if (!t) abort();
    t->fn = fn;
    t->arg = arg;
    queue_push(q, t);
}

/* --- the threads -------------------------------------------------------------- */

typedef struct worker {
    pl_workers *pool;
    size_t index;
    pthread_t thread;
    struct event_base *base;
    queue inbox;
    int started;
} worker;

struct pl_workers {
    struct event_base *loop;
    queue loop_inbox;
    worker *workers;
    size_t n;
    size_t exited; /* workers whose last task reached the loop (pl_workers_stop) */
};

static _Thread_local worker *this_worker;

int pl_worker_index(void) { return this_worker ? (int)this_worker->index : -1; }

static void note_exit(void *arg) { ((pl_workers *)arg)->exited++; }

static void *worker_main(void *arg) {
    worker *wk = arg;
    this_worker = wk;
    event_base_dispatch(wk->base);
    /* the last word to the loop, which waits for it in pl_workers_stop */
    post(&wk->pool->loop_inbox, note_exit, wk->pool);
    return NULL;
}

static void stop_here(void *arg) { event_base_loopbreak(arg); }

int pl_workers_start(struct event_base *loop, size_t n, pl_workers **out, char **err) {
    pl_workers *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->loop = loop;
    w->n = n;
    w->workers = calloc(n, sizeof *w->workers);
    if (!w->workers) abort();
    w->loop_inbox.efd = -1;
    if (queue_init(&w->loop_inbox, loop, err) != PL_OK) goto fail;
    for (size_t i = 0; i < n; i++) {
        worker *wk = &w->workers[i];
        wk->pool = w;
        wk->index = i;
        wk->inbox.efd = -1;
        wk->base = event_base_new();
        if (!wk->base) {
            pl_fail(err, "threads: cannot create an event base");
            goto fail;
        }
        if (queue_init(&wk->inbox, wk->base, err) != PL_OK) goto fail;
    }
    /* the workers take no process signals but the deadline timer's, which
     * each thread's own timer sends to that thread only (sandbox/run.c) */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGRTMIN);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (size_t i = 0; i < n; i++) {
        int rc = pthread_create(&w->workers[i].thread, NULL, worker_main, &w->workers[i]);
        if (rc != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            pl_fail(err, "threads: cannot start a worker: %s", strerror(rc));
            goto fail;
        }
        w->workers[i].started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    *out = w;
    return PL_OK;
fail:
    pl_workers_stop(w);
    return PL_ERR;
}

void pl_workers_stop(pl_workers *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++)
        if (w->workers[i].started) post(&w->workers[i].inbox, stop_here, w->workers[i].base);
    /* a worker may be waiting for the loop (pl_workers_call_loop): the
     * loop's tasks keep running, each batch as its eventfd wakes it, until
     * every worker has said it exits */
    size_t started = 0;
    for (size_t i = 0; i < w->n; i++) started += w->workers[i].started != 0;
    while (w->exited < started) {
        struct pollfd ready = {.fd = w->loop_inbox.efd, .events = POLLIN};
        if (poll(&ready, 1, -1) < 0 && errno != EINTR) break;
        on_queue(w->loop_inbox.efd, EV_READ, &w->loop_inbox);
    }
    for (size_t i = 0; i < w->n; i++)
        if (w->workers[i].started) pthread_join(w->workers[i].thread, NULL);
    run_queued(&w->loop_inbox);
    for (size_t i = 0; i < w->n; i++) {
        worker *wk = &w->workers[i];
        if (wk->base) {
            queue_free(&wk->inbox);
            event_base_free(wk->base);
        }
    }
    queue_free(&w->loop_inbox);
    free(w->workers);
    free(w);
}

size_t pl_workers_count(const pl_workers *w) { return w ? w->n : 0; }

size_t pl_workers_shard(const pl_workers *w, const char *bot, const char *channel, const char *user) {
    uint64_t h = 1469598103934665603ULL;
    const char *parts[] = {bot, channel, user};
    for (int i = 0; i < 3; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ 0x1f) * 1099511628211ULL;
    }
    return (size_t)(h % w->n);
}

void pl_workers_post(pl_workers *w, size_t i, pl_task_fn fn, void *arg) { post(&w->workers[i].inbox, fn, arg); }

void pl_workers_post_loop(pl_workers *w, pl_task_fn fn, void *arg) { post(&w->loop_inbox, fn, arg); }

/* --- a worker waits for the loop ------------------------------------------------ */

typedef struct {
    pl_task_fn fn;
    void *arg;
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int done;
} loop_call;

static void run_loop_call(void *arg) {
    loop_call *c = arg;
    c->fn(c->arg);
    pthread_mutex_lock(c->mu);
    c->done = 1;
    pthread_cond_signal(c->cv);
    pthread_mutex_unlock(c->mu);
}

void pl_workers_call_loop(pl_task_fn fn, void *arg) {
    worker *wk = this_worker;
    if (!wk) {
        fn(arg);
        return;
    }
    static _Thread_local pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static _Thread_local pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    loop_call c = {.fn = fn, .arg = arg, .mu = &mu, .cv = &cv};
    post(&wk->pool->loop_inbox, run_loop_call, &c);
    pthread_mutex_lock(&mu);
    while (!c.done) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}
