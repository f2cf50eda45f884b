/* jobs: durable timers for sessions (abandoned-cart reminders, follow-ups).
 *
 * A flow schedules a job by name for its session (c:schedule); the job is
 * written with the turn's commit, survives restarts, and fires once: when
 * due, it is marked fired and its event recorded in the inbox in one
 * transaction, and the session's flow handles the event like a message.
 * Scheduling a name again replaces the pending job; c:cancel removes it.
 * parley's own jobs (pl_jobs_on_system) share the table and the timer.
 * The scheduler keeps one libevent timer for the earliest pending job and
 * looks again after every commit that touched jobs and whenever the test
 * clock moves. */
#ifndef PL_JOBS_H
#define PL_JOBS_H

#include <event2/event.h>

#include "core/bot.h"
#include "core/pipeline.h"
#include "store/store.h"

typedef struct pl_jobs pl_jobs;

/* Finds a served bot by name (NULL when it is not served). */
typedef pl_bot *(*pl_jobs_bot_fn)(const char *name, void *ud);

pl_jobs *pl_jobs_new(struct event_base *base, pl_store *store, pl_pipeline *pipe,
                     pl_jobs_bot_fn find_bot, void *ud);
void pl_jobs_free(pl_jobs *jobs);

/* Looks for the earliest pending job again and sets the timer. */
void pl_jobs_kick(pl_jobs *jobs);

/* Jobs of PL_STORE_SYSTEM_CHANNEL (store.h) are parley's own, never a
 * session's: such a job never reaches a bot's scripts. When one is due it
 * is marked fired and, when its data has "every_ms", scheduled again that
 * long from now, in one transaction; then, if it was still pending, fn
 * runs on the loop with the job ({"id", "bot", "channel", "user", "name",
 * "data", "fire_at"}, borrowed for the call). The job of a bot not served
 * here waits, as a session's does. */
typedef void (*pl_jobs_system_fn)(const json_t *job, void *ud);
void pl_jobs_on_system(pl_jobs *jobs, pl_jobs_system_fn fn, void *ud);
/* Several nodes on one database: jobs other nodes scheduled (a node that
 * died left its own) are looked for at least every lease_ms. */
void pl_jobs_share(pl_jobs *jobs, int64_t lease_ms);

#endif
