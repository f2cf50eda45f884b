/* retention: how long a bot keeps what shoppers said (docs/privacy.md).
 *
 * A bot with "retention_days" in its bot.json has a durable daily job of
 * parley's own (jobs.h, pl_jobs_on_system: channel PL_STORE_SYSTEM_CHANNEL,
 * user "_retention", name "retention"), which survives restarts and fires
 * once a day on one node. Each time it purges the bot's transcript rows,
 * analytics events, handled inbound messages and sent (or given up) calls
 * older than that many days: in batches, each a short statement of its own
 * handed to the store (pl_store_offload), the loop serving between them;
 * then it logs what it removed. Sessions and orders are not purged. */
#ifndef PL_RETENTION_H
#define PL_RETENTION_H

#include <event2/event.h>

#include "core/bot.h"
#include "jobs.h"
#include "store/store.h"

typedef struct pl_retention pl_retention;

/* The job's parts (the reserved channel is store.h's). */
#define PL_RETENTION_USER "_retention"
#define PL_RETENTION_JOB "retention"
/* Rows a batch removes at most. */
#define PL_RETENTION_BATCH 1000

/* Finds a served bot by name (NULL when it is not served). */
typedef pl_bot *(*pl_retention_bot_fn)(const char *name, void *ud);

/* Fires through jobs (its system jobs: pl_jobs_on_system is set here). */
pl_retention *pl_retention_new(struct event_base *base, pl_store *store, pl_jobs *jobs, pl_retention_bot_fn find_bot,
                               void *ud);
/* Stops the purges in progress (after the store was drained: none of their
 * batches is in the store's hands then). */
void pl_retention_free(pl_retention *retention);

/* After each load of bot: with retention_days, its daily job is scheduled
 * unless it is already (the first run is due at once); without, a pending
 * one is cancelled. */
void pl_retention_watch(pl_retention *retention, pl_bot *bot);

#endif
