/* store_types: the types of the storage interface, which store.h (the
 * calls) and store_backend.h (a backend's table of them) both use. */
#ifndef PL_STORE_TYPES_H
#define PL_STORE_TYPES_H

#include <jansson.h>
#include <stdint.h>

struct event_base;

typedef struct pl_store pl_store;

typedef struct {
    const char *bot;
    const char *channel;
    const char *user;
} pl_session_key;

typedef enum { PL_SYNC_NORMAL, PL_SYNC_FULL } pl_store_sync;

/* pl_store_read_figures's: the sessions stored, the jobs pending, and the
 * database's size in bytes (SQLite: the file and its WAL, or the pages of
 * an in-memory database; PostgreSQL: pg_database_size). */
typedef struct {
    int64_t sessions, jobs_pending, bytes;
} pl_store_figures;

/* pl_store_session_take's answer (store.h). */
typedef void (*pl_store_taken_fn)(int rc, int held, int64_t turn, int handled, const char *state,
                                  const char *err, void *ud);
/* pl_store_listen's: another node committed lines of a session (store.h). */
typedef void (*pl_store_heard_fn)(const pl_session_key *key, int handoff, void *ud);
/* pl_store_offload's: the work, given the store to run it on (another
 * thread's connection, or the caller's own), and what follows on the loop. */
typedef void (*pl_store_work_fn)(pl_store *store, void *ud);
typedef void (*pl_store_done_fn)(void *ud);

#endif
