/* turn: one shopper message run through a bot's current Lua state.
 *
 * The engine's turn runs in its own coroutine under the instruction budget.
 * Its result is plain data: the new session as JSON text and the replies as
 * a JSON array. A script error, a runaway loop or an exhausted memory budget
 * fail only this turn: the session stays as it was, the replies are the
 * bot's fallback, and the error (file:line) is logged. */
#ifndef PL_TURN_H
#define PL_TURN_H

#include <jansson.h>
#include <stdint.h>

#include "bot.h"

/* A normalised inbound message, whatever channel it came from. */
typedef struct {
    char *bot;
    char *channel;       /* "rest", "console", ... */
    char *user;
    char *text;          /* NULL when absent */
    char *payload;       /* NULL when absent */
    char *locale;        /* NULL when absent */
    json_t *channel_info; /* extra fields for msg.channel, or NULL (owned) */
    json_t *event;       /* a non-text event for the flow, or NULL (owned) */
    int64_t received_at;
    int64_t inbox_id;    /* its inbox row when a platform delivered it, else 0 */
    /* Several nodes: the session as the pipeline read it when it took it
     * (stored_session NULL: none stored); the turn starts from it, read
     * after any other node's turn, instead of a kept or read copy. */
    int session_known;
    char *stored_session;
    /* Several nodes: an inbound message recovered from the inbox (another
     * copy of it may be queued, here or on another node): its turn runs
     * only once it has taken its session afresh and found it unhandled. */
    int recovered;
} pl_message;

pl_message *pl_message_new(const char *bot, const char *channel, const char *user);
void pl_message_free(pl_message *msg);

/* A message from a channel event {"user", "text"?, "payload"?, "locale"?,
 * "info"?, "id"?} (see channel.h); new. */
pl_message *pl_message_from_event(const char *bot, const char *channel, const json_t *event,
                                  int64_t inbox_id);

/* A turn's analytics events (docs/analytics.md), one row of the store's
 * events: list NULL when the turn recorded none. */
typedef struct {
    int64_t conv;    /* the shopper's conversation number (0: not known) */
    char *step;      /* "flow.step" where the turn moved the conversation to wait, or NULL */
    char *names;     /* every event's name, each between spaces: " message reply " */
    char *list;      /* those with props, a JSON array of {"name", "props"}, or NULL */
} pl_turn_events;

typedef struct {
    int status;         /* 200; 503 when the session could not be read, or the bot
                         * is over its share of the loop (error says which) */
    char *session_json; /* the new state; NULL when the turn failed */
    json_t *replies;    /* the replies as a tree (an array), or NULL: read them
                         * with pl_turn_replies */
    char *replies_text; /* the replies as JSON text, written once for every use;
                         * set by the pipeline when a turn gave only the tree */
    char *locale;       /* the session's locale after the turn, or NULL */
    int done;           /* no flow is open after the turn (the dialog stack is empty) */
    long long heard_at; /* when the shopper last wrote (the session's heard_at,
                         * seconds on parley's clock), or 0 */
    json_t *heard_facts; /* a turn no message of the shopper's ran (an event) on a
                          * platform's channel: the facts of their last message,
                          * kept in the session (heard_facts), for the adapter; else NULL */
    json_t *effects;    /* what the turn asks of the store besides the session:
                         * {"jobs": [{"op": "put", "name", "after" | "at", "data"}
                         *           | {"op": "cancel", "name"}]}, or NULL */
    pl_turn_events events; /* what the turn records for the shop's figures
                            * (analytics): written with the turn */
    char *error;        /* why the turn failed (file:line: message), else NULL */
    int retry_after;    /* with status 503: seconds after which to try again (0: soon) */
} pl_turn_result;

void pl_turn_result_clear(pl_turn_result *result);
/* Whether the engine ignored the turn's event (effects {"ignored": true}: a
 * web chat panel opened again): nothing of it is stored, not even the
 * message's transcript line. */
int pl_turn_ignored(const pl_turn_result *result);

/* The replies as a tree (borrowed from the result, an array): the turn
 * gives their text, and the tree is made from it on first use and kept in
 * the result, which is therefore not really read-only (no two threads may
 * call this on one result at once). Most replies never need a tree: the
 * HTTP API sends the text. */
json_t *pl_turn_replies(const pl_turn_result *result);

/* Called once per turn with the result; ownership of the result's fields
 * passes to the callee. */
typedef void (*pl_turn_done_fn)(pl_turn_result *result, void *ud);

/* Runs msg (borrowed until done is called) on the bot's current state.
 * The session comes from the state's session cache, or else from the
 * store. done may be called before this function returns.
 *
 * The cache holds, per bot state, the sessions of recent turns as Lua
 * tables, so a shopper's next message needs no read and no decoding. It is
 * valid because every change to a session goes through a turn of this
 * process; whoever changes or erases a session otherwise, or fails to
 * commit a turn's result, must call pl_turn_forget. (Several processes
 * sharing one database would need the cache off.) */
void pl_turn_run(pl_bot *bot, const pl_message *msg, pl_store *store, pl_turn_done_fn done,
                 void *ud);

/* Makes the turns' metric families (parley_script_errors_total), once: the
 * pipeline does at start, so that /metrics names them before any count. */
void pl_turn_metrics(void);

/* --- turn threads (workers.h) -------------------------------------------------
 * With workers, pl_turn_dispatch runs the turn on the worker that owns the
 * session, with that worker's state of the bot, and calls done on the loop;
 * without, it is pl_turn_run. pl_turn_forget and pl_turn_wake, called on
 * the loop, reach the owning worker too. The store and the loop's objects
 * stay the loop's: a worker reads a session through pl_workers_call_loop,
 * and the C functions of the modules that use them are wrapped in
 * pl_turn_on_loop. */
typedef struct pl_workers pl_workers;
void pl_turn_use_workers(pl_workers *workers);
void pl_turn_dispatch(pl_bot *bot, const pl_message *msg, pl_store *store, pl_turn_done_fn done,
                      void *ud);
/* Calls fn, a lua_CFunction, as if L called it, on the loop's thread (the
 * calling worker waits; on the loop it is a plain call). fn may raise
 * errors and may end with pl_turn_wait. For C functions that use the
 * store, the outbound HTTP client or the commerce state. */
int pl_turn_on_loop(lua_State *L, lua_CFunction fn);
/* On a turn thread, runs fn(arg) on the loop and waits (pl_workers_call_loop)
 * for the run of L: the loop's time is charged to that run and its bot, and
 * the watchdog leaves the coroutine alone meanwhile. On the loop, fn(arg). */
typedef void (*pl_turn_task_fn)(void *arg);
void pl_turn_call_loop(lua_State *L, pl_turn_task_fn fn, void *arg);
/* A turn thread ends: what it kept for its turns (its store reader) goes. */
void pl_turn_thread_done(void);

/* --- waiting for I/O inside a turn ------------------------------------------
 * A C function called by a step may start an asynchronous operation (an
 * HTTP call) and wait for it without blocking other sessions:
 *
 *     pl_turn *t = pl_turn_current(L);      -- NULL outside a turn: raise
 *     start the operation, with t in its callback's context
 *     return pl_turn_wait(L, t);            -- yields the turn's coroutine
 *
 * and in the operation's callback: pl_turn_wake(t, push, ud), where push
 * pushes the results onto the coroutine and returns how many; they become
 * the C function's results. Waiting is only possible where Lua can yield
 * (not inside require, a metamethod or a sort comparator): elsewhere
 * pl_turn_wait raises a clear error. */
typedef struct pl_turn pl_turn;

pl_turn *pl_turn_current(lua_State *L);
/* The message the turn handles, and its bot (borrowed). */
const pl_message *pl_turn_message(const pl_turn *turn);
pl_bot *pl_turn_bot(const pl_turn *turn);
int pl_turn_wait(lua_State *L, pl_turn *turn);
/* Raises the error pl_turn_wait would raise where the turn cannot wait:
 * call it before starting the operation (whose answer must find a turn
 * that waits for it). */
void pl_turn_check_wait(lua_State *L, pl_turn *turn);
void pl_turn_wake(pl_turn *turn, int (*push)(lua_State *co, void *ud), void *ud);

/* Drops the cached session of (channel, user) in the bot's current state. */
void pl_turn_forget(pl_bot *bot, const char *channel, const char *user);

/* Sessions kept per bot state: two generations of this many each. */
#define PL_SESSION_CACHE 1024

#endif
