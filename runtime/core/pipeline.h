/* pipeline: the path of one message after its channel has parsed it —
 * session mailbox, turn, commit, delivery (DESIGN.md section 1).
 *
 * Messages of one session (bot, channel, user) are handled one at a time in
 * arrival order: each session has a mailbox, and its next message starts
 * only after the previous one is committed. Finished turns are committed in
 * batches: the turns finished in one loop turn go into one transaction, or,
 * while an earlier batch waits for its fdatasync, the turns finished until
 * it is durable (or until they are as many); one fdatasync covers every
 * transaction written before it, and only then are the replies delivered. */
#ifndef PL_PIPELINE_H
#define PL_PIPELINE_H

#include <event2/event.h>
#include <jansson.h>

#include "bot.h"
#include "channels/outbox.h"
#include "store/store.h"
#include "turn.h"

typedef struct pl_pipeline pl_pipeline;

/* Called once per posted item after its commit. status is 200 when the turn
 * and its commit succeeded (the replies may still be the bot's fallback),
 * 503 when the store could not commit (nothing was recorded; the channel
 * should let the sender retry). result is borrowed: its replies as JSON and
 * as text. */
typedef void (*pl_deliver_fn)(int status, const pl_message *msg, const pl_turn_result *result,
                              void *ud);

pl_pipeline *pl_pipeline_new(struct event_base *base, pl_store *store);
void pl_pipeline_free(pl_pipeline *pipe);

/* Queues msg (ownership passes) on its session's mailbox; deliver may be
 * NULL (a platform message whose replies go out through the outbox). */
void pl_pipeline_post(pl_pipeline *pipe, pl_bot *bot, pl_message *msg, pl_deliver_fn deliver,
                      void *ud);

/* Queues the erasure of a session and its transcript behind the messages
 * already in its mailbox (so nothing in flight brings it back). deliver's
 * status is 200 (erased), 404 (nothing stored) or 503. */
void pl_pipeline_erase(pl_pipeline *pipe, pl_bot *bot, const char *channel, const char *user,
                       pl_deliver_fn deliver, void *ud);

/* Called after each commit for every session that got transcript lines in
 * it (handoff is 1 when its handoff state changed too): the web chat and
 * agent streams send what is new. With several nodes on one database, also
 * for the commits of the other nodes (pl_store_listen). */
typedef void (*pl_committed_fn)(const pl_session_key *key, int handoff, void *ud);
void pl_pipeline_on_committed(pl_pipeline *pipe, pl_committed_fn fn, void *ud);

/* Called after every commit that scheduled or cancelled jobs. */
void pl_pipeline_on_jobs(pl_pipeline *pipe, void (*changed)(void *ud), void *ud);

/* before_turn(ud) runs on the loop before each message's turn is started:
 * the host loads a reload still waiting for quiet there and returns 0 (a
 * message sent after a save runs the saved code), or returns the ms the
 * turn is to wait for a save still being written (app.c, watch.h); the
 * turn then runs that much later, its shopper's next messages behind it. */
void pl_pipeline_before_turn(pl_pipeline *pipe, int64_t (*before_turn)(void *ud), void *ud);

/* Replies to asynchronous channels go to this outbox at commit. */
void pl_pipeline_set_outbox(pl_pipeline *pipe, pl_outbox *outbox);

/* Records what a channel's webhook delivered (events as in channel.h,
 * stolen) in the next commit: inbox rows for messages (a platform id seen
 * before is ignored), transcript lines for delivery statuses, "ack" calls
 * in the outbox. Only after that commit is done called (200, or 503 when
 * nothing could be stored), and each new message is posted to its
 * session's mailbox. */
typedef void (*pl_recorded_fn)(int status, void *ud);
void pl_pipeline_record(pl_pipeline *pipe, pl_bot *bot, const char *channel, json_t *events,
                        pl_recorded_fn done, void *ud);

/* Like pl_pipeline_record for events that parley makes itself (payment
 * confirmations, fired jobs, order updates): in the next commit write runs
 * inside the transaction and appends message events to `events` — each
 * may name its own "channel" — which are recorded in the inbox like a
 * platform's (their "id" de-duplicates) and then posted. A writer returning
 * PL_ERR rolls the whole commit back. On a database server (PostgreSQL),
 * whose reads the loop must not wait for, the write is a transaction of
 * its own on the store's thread (pl_store_offload) instead: write then
 * touches nothing but the store it is given and ud. */
typedef int (*pl_record_writer)(pl_store *store, void *ud, json_t *events, char **err);
void pl_pipeline_record_with(pl_pipeline *pipe, pl_bot *bot, pl_record_writer write,
                             void *write_ud, pl_recorded_fn done, void *ud);

/* Messages queued or in flight (for tests and graceful stop). */
size_t pl_pipeline_pending(const pl_pipeline *pipe);

/* Items committed and transactions used so far (items per transaction
 * says how well commits are batched). */
void pl_pipeline_stats(const pl_pipeline *pipe, uint64_t *items, uint64_t *transactions);

/* Moves the store's syncs and checkpoints to a sync thread (syncer.h), so
 * that the loop never waits on the disk. wait_durable (--sync full):
 * replies and acknowledgements wait until their batch is fdatasync'ed; the
 * next batch forms meanwhile. Without it (--sync normal) they go out after
 * the write, and the thread syncs every PL_SYNCER_IDLE_MS. Nothing changes
 * for a store without a file (":memory:"). */
int pl_pipeline_sync_off_loop(pl_pipeline *pipe, int wait_durable, char **err);
/* fdatasyncs and checkpoints the sync thread has done. */
void pl_pipeline_sync_stats(const pl_pipeline *pipe, uint64_t *syncs, uint64_t *checkpoints);

#endif
