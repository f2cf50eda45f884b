/* store_thread: the thread that runs the store calls the event loop must
 * not wait for (store.h, pl_store_offload).
 *
 * On a database server every statement is a round trip. The message path
 * goes through the store's own asynchronous connections (batches, takes,
 * LISTEN); everything else — the outbox writing back what it sent, the
 * jobs scheduler looking for due jobs, a script's c:checkout creating its
 * order, the agent console or the orders API reading — is a call of
 * store.h whose answer the caller needs. Such a call is handed to this
 * thread, which runs it on a connection of its own, one at a time in the
 * order they were handed over, and tells the loop through an eventfd; the
 * loop then runs the caller's `done` (in the same order). The caller's
 * code after the call moves into `done`.
 *
 * Started by pl_store_use_loop for a store shared by several nodes
 * (PostgreSQL). Without it (SQLite, whose reads are in the process and
 * whose syncs the syncer thread makes; a store without a loop, as in the
 * command-line tools and tests) a handed-over call runs at once, on the
 * caller's thread and store, and `done` before pl_store_offload returns. */
#ifndef PL_STORE_THREAD_H
#define PL_STORE_THREAD_H

#include <event2/event.h>

#include "store_types.h"

typedef struct pl_store_thread pl_store_thread;

/* Starts the thread with its own connection, store (a second connection to
 * the database, pl_store_open_reader's: everything but batches), which it
 * owns from now on, closed or not; `done`s run on base's loop. */
int pl_store_thread_start(pl_store *store, struct event_base *base, pl_store_thread **out, char **err);
/* Passes the owner of pl_store_set_owner to the thread's connection (in
 * order with the calls handed over before). */
void pl_store_thread_set_owner(pl_store_thread *o, const char *owner, int64_t lease_ms);
/* Queues work for the thread; done follows on the loop. */
void pl_store_thread_post(pl_store_thread *o, pl_store_work_fn work, pl_store_done_fn done, void *ud);
/* Calls handed over and not yet done (for tests and the log). */
size_t pl_store_thread_waiting(const pl_store_thread *o);
/* Lets the thread finish every call handed over, stops it, runs their
 * `done`s on the caller's thread, and closes the connection. */
void pl_store_thread_stop(pl_store_thread *o);

#endif
