/* workers: the turn threads (`--threads N`).
 *
 * With one thread, turns run on the event loop as they always did and this
 * module is not started. With N > 1, N worker threads run the turns, each
 * with its own event base, its own Lua state per bot and the sessions it
 * owns: a session belongs to the worker pl_workers_shard picks for its key,
 * so one shopper's messages are still handled one at a time and in order
 * (the pipeline's mailboxes, on the loop, keep that order). The loop keeps
 * everything else: HTTP, channels, the store, commits, outbox, jobs,
 * streams. The two sides talk only through task queues (lock-free, one
 * consumer each, woken by an eventfd), plus pl_workers_call_loop, with
 * which a worker has the loop run something for it (a store read, a C
 * function of the commerce or HTTP modules) while it waits. The loop never
 * waits for a worker. */
#ifndef PL_WORKERS_H
#define PL_WORKERS_H

#include <event2/event.h>
#include <stddef.h>

typedef struct pl_workers pl_workers;
typedef void (*pl_task_fn)(void *arg);

/* Starts n worker threads; tasks for the loop run on loop's base. */
int pl_workers_start(struct event_base *loop, size_t n, pl_workers **out, char **err);
/* Stops and joins the threads (their queues must be idle: drain first). */
void pl_workers_stop(pl_workers *w);

size_t pl_workers_count(const pl_workers *w);
/* The worker that owns the session (bot, channel, user). */
size_t pl_workers_shard(const pl_workers *w, const char *bot, const char *channel, const char *user);

/* Runs fn(arg) on worker i's thread, in the order posted. */
void pl_workers_post(pl_workers *w, size_t i, pl_task_fn fn, void *arg);
/* Runs fn(arg) on the loop's thread, in the order posted by each thread. */
void pl_workers_post_loop(pl_workers *w, pl_task_fn fn, void *arg);

/* The index of the worker running the calling thread, or -1 on the loop
 * (and in every process without workers). */
int pl_worker_index(void);
/* On a worker: runs fn(arg) on the loop and returns once it ran. On the
 * loop: runs fn(arg) at once. */
void pl_workers_call_loop(pl_task_fn fn, void *arg);

#endif
