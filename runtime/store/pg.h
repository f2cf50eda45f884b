/* pg: one PostgreSQL connection driven by the event loop through libpq's
 * asynchronous API, in pipeline mode: connecting, sending statements and
 * reading their results never block the loop, and many statements may be
 * in flight at once (one round trip for a whole batch, as group commit
 * wants). Results come back to each statement's callback in the order the
 * statements were sent.
 *
 * A batch is the statements sent between two pl_pg_sync calls: when one of
 * them fails, the rest of its batch is not run (their callbacks get an
 * error saying so) and the next batch runs as usual. Wrap a batch in BEGIN
 * and COMMIT to make it one transaction.
 *
 * This is the connection the PostgreSQL backend of the store is built on
 * (issue 11); nothing in the runtime uses it yet. */
#ifndef PL_PG_H
#define PL_PG_H

#include <event2/event.h>
#include <libpq-fe.h>

typedef struct pl_pg pl_pg;

/* A statement's outcome: its result (borrowed for the call: PGRES_TUPLES_OK
 * or PGRES_COMMAND_OK) and error NULL, or result NULL and the error (the
 * server's message, or why it never ran). */
typedef void (*pl_pg_result_fn)(const PGresult *result, const char *error, void *ud);
/* The connection is up (error NULL) or down (error says why: it failed to
 * connect, in time or at all, or was lost; statements in flight got that
 * error already). */
typedef void (*pl_pg_state_fn)(pl_pg *pg, const char *error, void *ud);

/* Every callback (results, on_state, notifications) is called from the
 * loop, never from inside a call of this interface, and may call any of
 * it, pl_pg_free included. */

/* Starts connecting to conninfo (a libpq connection string or URI) on base;
 * on_state is called once the connection is up or has failed (within the
 * string's connect_timeout, else 10 s). Host names are looked up by libpq
 * before it returns, blocking: give hostaddr (or a socket folder) where
 * the loop must not wait. NULL only when libpq cannot even start (out of
 * memory: err says so). */
pl_pg *pl_pg_connect(struct event_base *base, const char *conninfo, pl_pg_state_fn on_state, void *ud,
                     char **err);
/* Closes the connection; statements still in flight get no callback. */
void pl_pg_free(pl_pg *pg);
/* Connects again to the same database once the connection is down (after
 * on_state said so): on_state says how it went, as the first time. What
 * was prepared on the old connection is gone. -1 while up or connecting. */
int pl_pg_reconnect(pl_pg *pg);

/* A notification (NOTIFY channel, payload) on a channel this connection
 * LISTENs to (send "LISTEN channel" through pl_pg_exec first): how a node
 * hears of what another node committed. fn may be NULL (they are dropped). */
typedef void (*pl_pg_notify_fn)(const char *channel, const char *payload, void *ud);
void pl_pg_on_notify(pl_pg *pg, pl_pg_notify_fn fn, void *ud);

int pl_pg_is_up(const pl_pg *pg);
/* Statements sent and not yet answered. */
size_t pl_pg_in_flight(const pl_pg *pg);
struct event_base *pl_pg_base(const pl_pg *pg);

/* Prepares sql as statement name (parameters $1..$n, their types inferred). */
int pl_pg_prepare(pl_pg *pg, const char *name, const char *sql, pl_pg_result_fn done, void *ud);
/* Runs prepared statement name with nparams text parameters (NULL: SQL
 * NULL); sql instead of name (name NULL) runs sql unprepared, with the
 * same parameters. 0 when queued: done is called once, later. -1 when it
 * was not: the connection is down (or broke just now: what was queued
 * fails from the loop), or the call was wrong (no SQL, too many
 * parameters: logged, the connection stays as it was). The same holds for
 * pl_pg_prepare and pl_pg_sync. */
int pl_pg_exec(pl_pg *pg, const char *name, const char *sql, int nparams, const char *const *params,
               pl_pg_result_fn done, void *ud);
/* Ends the batch and sends what is buffered; done (may be NULL) is called
 * when every statement of the batch has been answered. */
int pl_pg_sync(pl_pg *pg, pl_pg_result_fn done, void *ud);

#endif
