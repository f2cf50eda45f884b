/* syncer: the thread that syncs the store's WAL and checkpoints it, off
 * the event loop; see syncer.h. */
#define _GNU_SOURCE
#include "syncer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"

struct pl_syncer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int requested;  /* under mu */
    int checkpoint; /* under mu: the loop holds its writes for a checkpoint */
    int stopping;   /* under mu */
    int efd;       /* the thread writes, the loop reads */
    struct event *ev;
    char *wal_path;
    int wal_fd;
    sqlite3 *checkpointer; /* used by the thread only */
    pl_store *store;
    uint64_t synced_commits; /* the thread's */
    uint64_t checkpointed_frames;
    pl_durable_fn durable;
    void *ud;
    _Atomic uint64_t syncs, checkpoints;
    _Atomic uint64_t synced; /* the store's commit count up to which all is durable */
};

/* fdatasync on the WAL: every commit written before this call is durable
 * after it. A WAL that does not exist yet holds nothing to sync. */
static int sync_wal(pl_syncer *s) {
    if (s->wal_fd < 0) {
        s->wal_fd = open(s->wal_path, O_RDONLY | O_CLOEXEC);
        if (s->wal_fd < 0) return errno == ENOENT ? 0 : -1;
    }
    if (fdatasync(s->wal_fd) != 0) return -1;
    atomic_fetch_add(&s->syncs, 1);
    return 0;
}

/* Copies the WAL into the database file once it has grown (PASSIVE: never
 * waits for the loop's connection; synchronous=FULL on this connection
 * syncs the WAL before and the database file after the copy). */
static void maybe_checkpoint(pl_syncer *s) {
    uint64_t frames = pl_store_wal_frames(s->store);
    if (frames * PL_SYNCER_PAGE_BYTES < PL_SYNCER_CHECKPOINT_BYTES || frames == s->checkpointed_frames) return;
    int log_frames = 0, done_frames = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->checkpointer, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                       &done_frames);
    if (rc == SQLITE_OK) atomic_fetch_add(&s->checkpoints, 1);
    else if (rc != SQLITE_BUSY) pl_warn("store: checkpoint failed: %s", sqlite3_errmsg(s->checkpointer));
    s->checkpointed_frames = frames;
}

/* Waits for a request, PL_SYNCER_IDLE_MS at most; returns whether one
 * came, *checkpoint when the loop holds its writes for a checkpoint, and
 * *stop once the loop asked the thread to stop. */
static int wait_for_request(pl_syncer *s, int *checkpoint, int *stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += PL_SYNCER_IDLE_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&s->mu);
    while (!s->requested && !s->stopping)
        if (pthread_cond_timedwait(&s->wake, &s->mu, &until) == ETIMEDOUT) break;
    int asked = s->requested;
    s->requested = 0;
    *checkpoint = s->checkpoint;
    s->checkpoint = 0;
    *stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return asked;
}

/* One pass: the sync, then the checkpoint when the loop holds its writes
 * for one (a WAL that a checkpoint has copied whole starts over at the
 * next write only if nothing was written meanwhile, so the loop hears of
 * the pass after it), or when nobody asked (idle: the commits made
 * outside the pipeline); then the loop hears of the pass. A checkpoint
 * after every sync while the loop goes on writing never lets the WAL
 * start over: each copies the last few commits and syncs twice. */
static void *syncer_main(void *arg) {
    pl_syncer *s = arg;
    for (;;) {
        int stop = 0, checkpoint = 0;
        int asked = wait_for_request(s, &checkpoint, &stop);
        /* read before the sync: the sync covers at least these commits */
        uint64_t commits = pl_store_commits(s->store);
        if (commits != s->synced_commits) {
            /* After a failed fdatasync the kernel may have dropped the pages
             * and a retry would say they are on disk: nothing written since
             * the last sync can be called durable, so parley stops (what
             * it acknowledged is on disk; the rest runs again from the
             * inbox at the next start). */
            if (sync_wal(s) != 0) {
                pl_error("store: fdatasync of %s failed: %s; stopping (nothing unsynced was acknowledged)",
                         s->wal_path, strerror(errno));
                abort();
            }
            s->synced_commits = commits;
            atomic_store(&s->synced, commits);
        }
        if (checkpoint || !asked) maybe_checkpoint(s);
        if (asked) {
            uint64_t one = 1;
            ssize_t n = write(s->efd, &one, sizeof one);
            (void)n; /* an eventfd write only fails when the counter is full */
        }
        if (stop) return NULL;
    }
}

static void on_durable(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    pl_syncer *s = arg;
    uint64_t n;
    if (read(fd, &n, sizeof n) != sizeof n) return;
    s->durable(s->ud);
}

int pl_syncer_start(struct event_base *base, pl_store *store, const char *db_path, pl_durable_fn durable,
                    void *ud, pl_syncer **out, char **err) {
    pl_syncer *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->store = store;
    s->wal_path = pl_strdupf("%s-wal", db_path);
    s->wal_fd = -1;
    s->durable = durable;
    s->ud = ud;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        pl_fail(err, "store: eventfd: %s", strerror(errno));
        goto fail;
    }
    if (sqlite3_open_v2(db_path, &s->checkpointer, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        sqlite3_exec(s->checkpointer, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK) {
        pl_fail(err, "store: cannot open %s for checkpoints: %s", db_path, sqlite3_errmsg(s->checkpointer));
        goto fail;
    }
    sqlite3_busy_timeout(s->checkpointer, 0);
    s->ev = event_new(base, s->efd, EV_READ | EV_PERSIST, on_durable, s);
    event_add(s->ev, NULL);
    int rc = pl_thread_start_quiet(&s->thread, syncer_main, s);
    if (rc != 0) {
        pl_fail(err, "store: cannot start the sync thread: %s", strerror(rc));
        goto fail;
    }
    *out = s;
    return PL_OK;
fail:
    if (s->ev) event_free(s->ev);
    if (s->efd >= 0) close(s->efd);
    sqlite3_close(s->checkpointer);
    free(s->wal_path);
    free(s);
    return PL_ERR;
}

static void request(pl_syncer *s, int checkpoint) {
    pthread_mutex_lock(&s->mu);
    s->requested = 1;
    s->checkpoint |= checkpoint;
    pthread_mutex_unlock(&s->mu);
    /* after the unlock: woken while the loop still held the mutex, the
     * thread would only wait for it (two more system calls per sync) */
    pthread_cond_signal(&s->wake);
}

void pl_syncer_request(pl_syncer *s) { request(s, 0); }

void pl_syncer_request_checkpoint(pl_syncer *s) { request(s, 1); }

uint64_t pl_syncer_synced(const pl_syncer *s) { return atomic_load(&((pl_syncer *)s)->synced); }

void pl_syncer_stats(const pl_syncer *s, uint64_t *syncs, uint64_t *checkpoints) {
    *syncs = atomic_load(&((pl_syncer *)s)->syncs);
    *checkpoints = atomic_load(&((pl_syncer *)s)->checkpoints);
}

void pl_syncer_stop(pl_syncer *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    event_free(s->ev);
    close(s->efd);
    if (s->wal_fd >= 0) close(s->wal_fd);
    sqlite3_close(s->checkpointer);
    free(s->wal_path);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    free(s);
}
