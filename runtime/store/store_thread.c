/* store_thread: the thread of the store calls the loop does not wait for;
 * see store_thread.h. Owns the thread, its connection and its two queues. */
#define _GNU_SOURCE
#include "store_thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/common.h"
#include "store_backend.h"

typedef struct job {
    struct job *next;
    pl_store_work_fn work;
    pl_store_done_fn done;
    void *ud;
    char *owner; /* a job of pl_store_thread_set_owner's (work is NULL) */
    int64_t lease_ms;
} job;

typedef struct {
    job *head, *tail;
} job_list;

struct pl_store_thread {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    job_list todo;   /* under mu: handed over, not yet run */
    job_list done;   /* under mu: run, their done still to call on the loop */
    int stopping;    /* under mu */
    int efd;         /* the thread writes, the loop reads */
    struct event *ev;
    pl_store *store; /* the thread's connection */
    _Atomic size_t waiting;
};

static void list_push(job_list *l, job *j) {
    j->next = NULL;
    if (l->tail) l->tail->next = j;
    else l->head = j;
    l->tail = j;
}

static job *list_take_all(job_list *l) {
    job *all = l->head;
    l->head = l->tail = NULL;
    return all;
}

static void run_job(pl_store_thread *o, job *j) {
    if (j->work) j->work(o->store, j->ud);
    else o->store->backend->set_owner(o->store, j->owner, j->lease_ms);
}

static void *thread_main(void *arg) {
    pl_store_thread *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (!o->todo.head && !o->stopping) pthread_cond_wait(&o->wake, &o->mu);
        job *j = o->todo.head;
        if (!j) break; /* stopping, and nothing is left */
        o->todo.head = j->next;
        if (!o->todo.head) o->todo.tail = NULL;
        pthread_mutex_unlock(&o->mu);
        run_job(o, j);
        pthread_mutex_lock(&o->mu);
        list_push(&o->done, j);
        uint64_t one = 1;
        ssize_t n = write(o->efd, &one, sizeof one);
        (void)n; /* only fails when the counter is full, and then it is readable */
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* Calls the done of every job run so far, in the order they were handed over. */
static void call_dones(pl_store_thread *o) {
    pthread_mutex_lock(&o->mu);
    job *all = list_take_all(&o->done);
    pthread_mutex_unlock(&o->mu);
    for (job *j = all, *next; j; j = next) {
        next = j->next;
        atomic_fetch_sub(&o->waiting, 1);
        if (j->done) j->done(j->ud);
        free(j->owner);
        free(j);
    }
}

static void on_done(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    uint64_t n;
    ssize_t got = read(fd, &n, sizeof n);
    (void)got;
    call_dones(arg);
}

static void post(pl_store_thread *o, job *j) {
    atomic_fetch_add(&o->waiting, 1);
    pthread_mutex_lock(&o->mu);
    list_push(&o->todo, j);
    pthread_cond_signal(&o->wake);
    pthread_mutex_unlock(&o->mu);
}

void pl_store_thread_post(pl_store_thread *o, pl_store_work_fn work, pl_store_done_fn done, void *ud) {
    job *j = calloc(1, sizeof *j);
    if (!j) abort();
    *j = (job){.work = work, .done = done, .ud = ud};
    post(o, j);
}

void pl_store_thread_set_owner(pl_store_thread *o, const char *owner, int64_t lease_ms) {
    job *j = calloc(1, sizeof *j);
    if (!j) abort();
    *j = (job){.owner = owner ? pl_strdup(owner) : NULL, .lease_ms = lease_ms};
    post(o, j);
}

size_t pl_store_thread_waiting(const pl_store_thread *o) { return atomic_load(&o->waiting); }

static void thread_free(pl_store_thread *o) {
    if (o->ev) event_free(o->ev);
    if (o->efd >= 0) close(o->efd);
    if (o->store) o->store->backend->close(o->store);
    pthread_cond_destroy(&o->wake);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

int pl_store_thread_start(pl_store *store, struct event_base *base, pl_store_thread **out, char **err) {
    pl_store_thread *o = calloc(1, sizeof *o);
    if (!o) abort();
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->wake, NULL);
    o->store = store;
    o->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (o->efd < 0) {
        thread_free(o);
        return pl_fail(err, "store: eventfd: %s", strerror(errno));
    }
    o->ev = event_new(base, o->efd, EV_READ | EV_PERSIST, on_done, o);
    event_add(o->ev, NULL);
    int rc = pl_thread_start_quiet(&o->thread, thread_main, o);
    if (rc != 0) {
        thread_free(o);
        return pl_fail(err, "store: cannot start the store thread: %s", strerror(rc));
    }
    *out = o;
    return PL_OK;
}

void pl_store_thread_stop(pl_store_thread *o) {
    if (!o) return;
    pthread_mutex_lock(&o->mu);
    o->stopping = 1;
    pthread_cond_signal(&o->wake);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->thread, NULL);
    call_dones(o);
    thread_free(o);
}
