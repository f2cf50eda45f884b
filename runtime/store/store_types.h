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

/* The bytes of the key of erased shoppers' pseudonyms (pseudonym.h). */
#define PL_STORE_KEY_BYTES 32

/* A turn's analytics events: one row of the events table (store.h). */
typedef struct {
    int64_t conv;       /* the shopper's conversation number */
    const char *locale; /* the session's locale, or NULL */
    const char *step;   /* "flow.step" where the turn moved the conversation to wait, or NULL */
    const char *names;  /* the events' names, each between spaces: " message reply " */
    const char *list;   /* those with props: a JSON array of {"name", "props"}, or NULL */
} pl_store_events;

/* Which events pl_store_events_read reads: a bot's, from_ms <= at < to_ms,
 * of one channel and locale when given (NULL: any; locale "": the turns
 * that had none), of one shopper when user is given (with the channel:
 * read through the conversation's own index), after the row
 * (after_at, after_id) in (at, id) order, at most limit rows. */
typedef struct {
    const char *bot;
    int64_t from_ms, to_ms;
    const char *channel, *locale;
    const char *user; /* NULL: every shopper's; else channel is given too */
    int64_t after_at, after_id;
    int limit;
} pl_store_events_query;

/* What retention purges (store.h, pl_store_purge_before): transcript rows
 * (a turn's message and answer), inbound messages already handled,
 * outgoing calls already sent or given up, and closed handoffs (the agent
 * console's closed conversations, by the time they closed). */
typedef enum { PL_PURGE_TRANSCRIPT, PL_PURGE_INBOX, PL_PURGE_OUTBOX, PL_PURGE_CLOSED_HANDOFFS } pl_store_purge_kind;
/* pl_store_read_figures's: the sessions stored, the jobs pending, and the
 * database's size in bytes (SQLite: the file and its WAL, or the pages of
 * an in-memory database; PostgreSQL: pg_database_size). */
typedef struct {
    int64_t sessions, jobs_pending, bytes;
} pl_store_figures;

/* pl_store_handoffs_closed's question (store.h): the closed handoffs of one
 * bot (NULL: every bot's) whose shopper's name or id, reason, or text of
 * the transcript contains `search` (NULL: any), or whose order number is
 * order_id (0: none); `limit` of them from `offset`, newest closed first.
 * A search reads only the newest `searched` closed handoffs (0:
 * PL_STORE_CLOSED_SEARCHED) and runs for at most `budget_ms` (0:
 * PL_STORE_CLOSED_BUDGET_MS); a listing without a search has no bound. */
typedef struct {
    const char *bot;
    const char *search;
    int64_t order_id;
    int offset, limit;
    int searched, budget_ms;
} pl_store_closed_query;

#define PL_STORE_CLOSED_SEARCHED 5000
#define PL_STORE_CLOSED_BUDGET_MS 3000
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
