/* store: every byte parley keeps goes through this interface.
 *
 * The embedded backend is SQLite in WAL mode (store_sqlite.c); several
 * nodes share a PostgreSQL database (store_pg.c). store.c picks one from
 * where the database is and passes each call to it (store_backend.h).
 * Schema changes are numbered migrations applied at open. Writes happen inside a transaction opened with
 * pl_store_begin and closed with pl_store_commit: the commit stage batches
 * all sessions finished in one loop turn into one transaction. Serving, the
 * store defers its syncs (pl_store_defer_sync) to the sync thread
 * (syncer.h), so the loop never calls fsync or checkpoints.
 * Nothing here knows about Lua, and only pl_store_listen about the event
 * loop, so a C test can drive it.
 *
 * Strings returned through `char **` are new and owned by the caller; `err`
 * messages too. */
#ifndef PL_STORE_H
#define PL_STORE_H

#include "pseudonym.h"
#include "store_types.h"


/* Opens (creating if needed) the database at path, or the PostgreSQL
 * database a postgres:// (postgresql://) URL names, applying the
 * migrations; ":memory:" for tests. sync is SQLite's (PostgreSQL's
 * commits are as durable as its server is set to make them). */
int pl_store_open(const char *path, pl_store_sync sync, pl_store **out, char **err);
/* Several nodes on one database: the name this node holds outgoing calls
 * under (unique to the process) and for how long a hold lasts unless
 * renewed (pl_store_outbox_renew). Without it a store acts as the only
 * node. 1 when the backend serves several nodes (PostgreSQL). */
void pl_store_set_owner(pl_store *store, const char *owner, int64_t lease_ms);
int pl_store_is_shared(const pl_store *store);
/* Round trips to the database server so far, by every connection of the
 * process (0 for SQLite, which runs in the process). */
uint64_t pl_store_round_trips(const pl_store *store);
/* 1 when where names a PostgreSQL database (a postgres:// URL). */
int pl_store_is_postgres(const char *where);
/* "sqlite" or "postgresql". */
const char *pl_store_backend_name(const pl_store *store);
void pl_store_close(pl_store *store);

/* Where the database is: the SQLite file's path (NULL for ":memory:") or
 * the PostgreSQL URL it was opened with. */
const char *pl_store_path(const pl_store *store);
/* A second connection to the same database for another thread: SQLite's
 * is read-only (a turn thread reads sessions with it, pl_store_offload_read's
 * thread exports and figures): pl_store_session_get, pl_store_events_read,
 * pl_store_shopper_export and pl_store_pseudonym work on it; PostgreSQL's
 * serves every call but batches (pl_store_offload's thread uses one). */
int pl_store_open_reader(const char *path, pl_store **out, char **err);
/* Opens an existing database to read what it holds, as it is: read-only
 * (SQLite) or through a reader's connection (PostgreSQL), creating and
 * migrating nothing. Refuses, with the reason, a location that is not a
 * parley database and one whose schema is not this parley's (older or
 * newer). Transcripts, conversations, orders and events can be read. */
int pl_store_open_existing(const char *path, pl_store **out, char **err);

/* Hands syncing to the caller's sync thread: commits are written into the
 * WAL without fsync (but for the WAL's header, once after each reuse of the
 * WAL from its start) and the WAL is never checkpointed by this connection
 * (it is closed with synchronous=FULL again, so its last checkpoint syncs).
 * Returns the database file's path (borrowed), or NULL when there is no
 * file to sync (":memory:"), when nothing changes. */
const char *pl_store_defer_sync(pl_store *store);
/* Thread-safe counters for the sync thread: commits so far, and frames in
 * the WAL after the last commit. */
uint64_t pl_store_commits(const pl_store *store);
uint64_t pl_store_wal_frames(const pl_store *store);

/* Reads a small table of the database: PL_OK when it answers, for the
 * readiness probe (/v1/health/ready). */
int pl_store_ping(pl_store *store, char **err);

/* What GET /metrics reports of the database (pl_store_figures,
 * store_types.h). Counting reads whole tables: off the loop
 * (pl_store_offload). */
int pl_store_read_figures(pl_store *store, pl_store_figures *out, char **err);

int pl_store_begin(pl_store *store, char **err);
int pl_store_commit(pl_store *store, char **err);
/* Ends the open transaction or batch without keeping what it wrote. */
void pl_store_rollback(pl_store *store);

/* The pipeline's batches: a transaction like begin/commit's, whose commit
 * need not be waited for. On SQLite pl_store_commit_batch commits (*later
 * is 0: its outcome is its return). On PostgreSQL it sends the COMMIT and
 * returns (*later is 1); pl_store_batch_poll then reads its outcome once
 * pl_store_batch_fd is readable, so the caller's loop never waits for the
 * server to make the batch durable. Its statements run on a connection of
 * their own; other calls meanwhile run on the main one and see the batch
 * once it has committed. One batch at a time: the next begins once the
 * last is settled. */
int pl_store_begin_batch(pl_store *store, char **err);
int pl_store_commit_batch(pl_store *store, int *later, char **err);
/* The socket to watch for a batch's outcome, or -1. */
int pl_store_batch_fd(const pl_store *store);
/* Reads what has arrived of the outcome of the batch in flight, without
 * waiting (wait 1: until it has come). 1 when it is settled: *committed
 * says whether it committed, and err why not; 0 while it is not. */
int pl_store_batch_poll(pl_store *store, int wait, int *committed, char **err);

/* *state_json is set to the stored session (new string) or NULL if none. */
int pl_store_session_get(pl_store *store, const pl_session_key *key, char **state_json,
                         char **err);
/* turn: the session's count of committed turns as pl_store_session_take
 * read it (-1: not checked). The put fails — and with it the transaction —
 * when another node committed a turn of the session since. */
int pl_store_session_put(pl_store *store, const pl_session_key *key, const char *state_json, int64_t turn,
                         int64_t now_ms, char **err);
/* Several nodes on one database: a node takes a session before its turns
 * run, and releases it once its mailbox is empty. done is called from the
 * loop of pl_store_use_loop (SQLite: before this returns) with rc PL_OK and
 * held 0 while another node has the session (try again soon), or held 1
 * and: turn, the session's count of committed turns for
 * pl_store_session_put to check (-1: nothing to check, SQLite's one node);
 * handled 1 when inbox row inbox_id (0: none) is marked handled already
 * (another node ran that message's turn); state, the stored session (NULL:
 * none; borrowed for the call), the latest, as the taker holds it now. A
 * node that may share sessions (turn >= 0) cannot trust a copy of a session
 * it kept. rc PL_ERR: the store did not answer (err). (pl_store_taken_fn:
 * store_types.h.) */
void pl_store_session_take(pl_store *store, const pl_session_key *key, int64_t inbox_id, pl_store_taken_fn done,
                           void *ud);
void pl_store_session_release(pl_store *store, const pl_session_key *key);
/* Changes whenever the sessions a node held were let go of without a
 * release (PostgreSQL: the connection that took them dropped and connected
 * again): a session taken at another epoch is not held. */
uint64_t pl_store_session_epoch(const pl_store *store);
/* The loop the store's asynchronous work runs on (PostgreSQL: taking and
 * releasing sessions on a connection of its own, and pl_store_offload's
 * thread); NULL detaches it (takes in flight then never call back; handed
 * over calls are drained as by pl_store_drain). */
int pl_store_use_loop(pl_store *store, struct event_base *base, char **err);
/* Starts only the read thread of pl_store_offload_read, whose dones run on
 * base's loop (pl_store_use_loop starts it too): for a SQLite file, whose
 * other calls run on the loop. Stopped by pl_store_drain. */
int pl_store_use_read_thread(pl_store *store, struct event_base *base, char **err);

/* --- calls the loop does not wait for ------------------------------------- */

/* Runs work(store', ud), a sequence of the calls below whose answer the
 * caller needs, without the loop waiting for it, then done(ud) (may be
 * NULL) on the loop. For a store on a database server with a loop
 * (pl_store_use_loop) store' is the connection of a thread of its own
 * (store_thread.h), which runs handed-over work one at a time, in order,
 * and sees everything committed before the work was handed over; the dones
 * follow in the same order. Otherwise (SQLite, no loop) work runs at once
 * on store, and done before this returns. work must touch nothing but
 * store' and ud; what it learns goes into ud for done. */
void pl_store_offload(pl_store *store, pl_store_work_fn work, pl_store_done_fn done, void *ud);
/* As pl_store_offload, for long reads (the analytics figures, exports): on
 * a connection that only reads, on a thread of its own, so that neither the
 * loop nor the other handed-over calls wait for them. work may call only
 * the reading calls (pl_store_events_read ...). Without a loop
 * (pl_store_use_loop, pl_store_use_read_thread), or for ":memory:", work
 * runs at once on store. */
void pl_store_offload_read(pl_store *store, pl_store_work_fn work, pl_store_done_fn done, void *ud);
/* 1 when pl_store_offload_read hands work to its thread. */
int pl_store_offload_read_later(const pl_store *store);
/* 1 when pl_store_offload hands work to the thread (its done comes later,
 * from the loop), 0 when it runs work at once. */
int pl_store_offload_later(const pl_store *store);
/* Work handed over and not yet done. */
size_t pl_store_offloaded(const pl_store *store);
/* Waits until every handed-over work has run, runs the dones on the
 * caller's thread, and stops the thread: work handed over later runs at
 * once. The app drains before it frees what the dones touch. */
void pl_store_drain(pl_store *store);
/* Several nodes: in the open batch, tells the other nodes (once it has
 * committed) that the session got new transcript lines (handoff: and its
 * handoff changed), so that their streams send them. SQLite: nothing. */
int pl_store_announce(pl_store *store, const pl_session_key *key, int handoff, char **err);
/* Calls heard for every announcement another node's commit made, from
 * base's loop (PostgreSQL: LISTEN on a connection of its own, connected
 * again when it drops). SQLite: never. (pl_store_heard_fn: store_types.h.) */
int pl_store_listen(pl_store *store, struct event_base *base, pl_store_heard_fn heard, void *ud, char **err);
/* Erases the session and its transcript, and everything else kept of the
 * shopper: inbound messages, calls to them, jobs, the handoff, analytics
 * events. Their orders stay for the merchant's accounts, pseudonymized:
 * the user becomes pl_store_pseudonym's, the order's token and payment URL
 * are cleared (catalog lines, amounts, channel and the provider's
 * references stay); so do their discount codes' uses, under the same
 * pseudonym. *found is 1 when anything of the shopper was stored, else 0.
 * In a batch on PostgreSQL it is filled in when the batch's outcome is
 * read (the loop does not wait): *found must stay valid until then. */
int pl_store_session_erase(pl_store *store, const pl_session_key *key, int64_t *found, char **err);
int64_t pl_store_session_count(pl_store *store);

/* direction is "in" (what the shopper sent: one message object) or "out"
 * (what the bot answered in that turn: a list of replies). */
int pl_store_transcript_add(pl_store *store, const pl_session_key *key, const char *direction,
                            const char *body_json, int64_t now_ms, char **err);
/* A turn's two lines in one row: the message ("in", at in_at_ms) and the
 * answer ("out", at out_at_ms, the next id); and the turn's analytics
 * events (NULL: none), which the row keeps (the events view: see
 * pl_store_events_read). */
int pl_store_transcript_add_turn(pl_store *store, const pl_session_key *key, const char *in_json,
                                 int64_t in_at_ms, const char *out_json, int64_t out_at_ms,
                                 const pl_store_events *events, char **err);
/* Sets *lines to a new JSON array of {"at", "direction", "body"}, oldest first,
 * at most `limit` of the latest lines. */
int pl_store_transcript_get(pl_store *store, const pl_session_key *key, int limit,
                            json_t **lines, char **err);
/* The lines after line `after_id` (0: from the start), oldest first, at
 * most limit: a new array of {"id", "at", "direction", "body"}. */
int pl_store_transcript_since(pl_store *store, const pl_session_key *key, int64_t after_id,
                              int limit, json_t **lines, char **err);
/* The id of the session's last transcript line, or 0. */
int64_t pl_store_transcript_last_id(pl_store *store, const pl_session_key *key);
/* The conversations of a bot that have transcript lines (for `parley
 * replay`): a new array of {"channel", "user", "first_at", "last_at",
 * "lines"}, in the order they began (their first line), at most limit of
 * them. channel and user, when not NULL, keep only that channel or user. */
int pl_store_conversations(pl_store *store, const char *bot, const char *channel, const char *user, int limit,
                           json_t **list, char **err);

/* --- shoppers: what is kept of one person (docs/privacy.md) ----------------- */

/* A channel whose name begins with '_' is parley's own, never a shopper's:
 * PL_STORE_SYSTEM_CHANNEL holds parley's durable system jobs (the daily
 * retention purge). The admin API refuses to export or erase one. */
#define PL_STORE_SYSTEM_CHANNEL "_parley"
#define PL_STORE_IS_SYSTEM_CHANNEL(channel) ((channel)[0] == '_')

/* What an erased shopper's orders keep in place of the user (pseudonym.h):
 * the same shopper always gets the same pseudonym, so their orders still
 * group; without the database's key it cannot be turned back into the user. */
int pl_store_pseudonym(pl_store *store, const pl_session_key *key, char out[PL_STORE_PSEUDONYM_LEN + 1],
                       char **err);

/* The most rows of each long list an export holds (the latest ones). */
#define PL_STORE_EXPORT_MAX 10000

/* Everything stored about a shopper, read in one snapshot: a new object
 * {"session": state | null, "transcript": [{"id", "at", "direction",
 * "body"}], "orders": [order], "events": [{"id", "at", "conv", "locale",
 * "step", "events": [...]}], "jobs": [{"id", "name", "state", "data",
 * "fire_at", "created_at", "fired_at"}], "handoff": {...} | null, "inbox":
 * [{"id", "platform_id", "message", "received_at", "done_at"}], "outbox":
 * [{"id", "state", "attempts", "call", "created_at", "sent_at"}],
 * "discount_uses": [{"code", "order_id", "used_at"}], "omitted":
 * {"transcript", "events", "jobs", "inbox", "outbox": the count of older
 * rows left out}}, oldest first; the long lists hold at most `limit` of
 * their latest rows. *doc is NULL when nothing of the shopper is stored.
 * Only reads: runs on pl_store_offload_read's connection. */
int pl_store_shopper_export(pl_store *store, const pl_session_key *key, int limit, json_t **doc, char **err);

/* Removes at most limit of a bot's rows of one kind (store_types.h) older
 * than before_ms: one short statement, so that a large backlog, purged in
 * batches (the caller repeats while *removed is limit), never holds a lock
 * for long. */
int pl_store_purge_before(pl_store *store, const char *bot, pl_store_purge_kind kind, int64_t before_ms, int limit,
                          int64_t *removed, char **err);

/* --- analytics events: what turns recorded for the shop's figures ---------
 * A turn's events are kept in its transcript row (pl_store_transcript_add_turn),
 * which costs the message path no row and no index of its own; "events" is
 * the view of the rows that have them, read by bot and time. */

/* The rows q asks for, in (at, id) order: a new array of {"id", "at",
 * "channel", "user", "conv", "locale", "step", "names", "list"} where list
 * is the events' JSON text (a string: a reader parses the rows it needs). */
int pl_store_events_read(pl_store *store, const pl_store_events_query *q, json_t **rows, char **err);
/* Forgets the events of a bot's turns (bot NULL: every bot's) from
 * from_ms to before_ms (their transcript lines stay); *removed counts the
 * turns. */
int pl_store_events_purge(pl_store *store, const char *bot, int64_t from_ms, int64_t before_ms, int64_t *removed,
                          char **err);

/* Day aggregates: the figures of a bot's day (its date in the bot's time
 * zone), one channel and locale ("" when a turn had none), which contain no
 * shopper; what stays of the analytics once retention let the events go.
 * put replaces the day's row. */
int pl_store_analytics_day_put(pl_store *store, const char *bot, const char *day, const char *channel,
                               const char *locale, const char *figures_json, char **err);
/* The rows of days from..to (dates, both included), of one channel and one
 * locale when given (NULL: any): a new array of {"day", "channel",
 * "locale", "figures" (parsed)}, by day. */
int pl_store_analytics_days_read(pl_store *store, const char *bot, const char *from, const char *to,
                                 const char *channel, const char *locale, json_t **rows, char **err);

/* --- handoffs: conversations a person has or will take over ------------------ */

/* Records {"state": "waiting" | "active" | "closed", "reason", "agent",
 * "since" (ms; default now), "display_name", "how"} (upsert), or removes
 * the row when handoff is NULL. A shopper's first handoff gets a visitor
 * number that the row keeps ("Visitor 12" in the agent console): no other
 * row holds it; SQLite gives the highest + 1, PostgreSQL its sequence's
 * next, so that nodes never give one twice. "closed" keeps the row out of the queue for
 * the closed conversations (pl_store_handoffs_closed), with the time it
 * closed, "how" ("close" or "handback") and the agent who did it; a later
 * handoff of the shopper reopens it (since restarts). */
int pl_store_handoff_put(pl_store *store, const pl_session_key *key, const json_t *handoff, int64_t now_ms,
                         char **err);
/* Every open handoff (not closed), waiting before active, oldest first
 * (then by visitor number): a new array of {"bot", "channel", "user",
 * "state", "reason", "agent", "since", "last_at", "display_name",
 * "visitor", "page"}; page is {"url", "title"} of the shopper's latest
 * message that named its page (the web chat's info.page_url), kept on the
 * handoff's row: from the shopper's latest 20 messages when the handoff
 * begins (or reopens), then from each message (pl_store_transcript_add,
 * _add_turn), or null. A visitor number is never given twice. */
int pl_store_handoffs(pl_store *store, json_t **list, char **err);
/* The closed handoffs q asks for (store_types.h): a new array of {"bot",
 * "channel", "user", "reason", "agent", "since", "closed_at", "how",
 * "display_name", "visitor"}, newest closed first. The search reads the
 * transcripts' texts (the shopper's messages, the bot's and agents'
 * replies), case-insensitively for ASCII letters. A search that runs out
 * of its time (q's budget_ms) answers PL_AGAIN with *err saying so. Long:
 * run it on the read thread (pl_store_offload_read). */
int pl_store_handoffs_closed(pl_store *store, const pl_store_closed_query *q, json_t **list, char **err);

/* Replaces the bot's products with `products` (a JSON array of product
 * objects, borrowed) in one transaction of its own. */
int pl_store_catalog_replace(pl_store *store, const char *bot, const json_t *products,
                             char **err);
int64_t pl_store_catalog_count(pl_store *store, const char *bot);

/* --- inbox: inbound channel messages, recorded before they are acknowledged */

/* Records a message a platform delivered. *id is its row, or 0 when the
 * platform already delivered this platform_id (a retry: ignore it). */
int pl_store_inbox_add(pl_store *store, const char *bot, const char *channel,
                       const char *platform_id, const char *user, const char *message_json,
                       int64_t now_ms, int64_t *id, char **err);
/* Marks a message handled (in the transaction that commits its turn). */
int pl_store_inbox_done(pl_store *store, int64_t id, int64_t now_ms, char **err);
/* As pl_store_inbox_add, for a caller that needs *id only once the batch it
 * is in is settled: on PostgreSQL it is read with the COMMIT's outcome
 * (the loop does not wait), so *id must stay valid until then. */
int pl_store_inbox_record(pl_store *store, const char *bot, const char *channel, const char *platform_id,
                          const char *user, const char *message_json, int64_t now_ms, int64_t *id, char **err);
/* As pl_store_inbox_record, and when the message is new, queues call_json
 * (the platform's acknowledgement of it: an outgoing call) in the outbox
 * in the same statement: *call_id is its row, 0 when the message was
 * recorded before. Both come with the batch's outcome on PostgreSQL. */
int pl_store_inbox_record_answered(pl_store *store, const char *bot, const char *channel, const char *platform_id,
                                   const char *user, const char *message_json, int64_t now_ms, const char *call_json,
                                   int64_t *id, int64_t *call_id, char **err);
/* A platform's status event (delivered, read ...), recorded once: its inbox
 * row (platform_id, handled at once) and the session's "status" transcript
 * line; nothing when platform_id was recorded before (a retry). Nothing to
 * wait for in a batch. */
int pl_store_status_record(pl_store *store, const char *bot, const char *channel, const char *platform_id,
                           const char *user, const char *event_json, int64_t now_ms, char **err);
/* For events parley makes itself whose ids are "<prefix><sequence>": the
 * next sequence number after the highest one recorded (1 when none is).
 * Sequences are zero-padded by the caller so that they sort as text. */
int pl_store_inbox_next_seq(pl_store *store, const char *bot, const char *channel, const char *prefix,
                            int64_t *seq, char **err);
/* Messages recorded but not handled (after a crash), received before
 * received_before (INT64_MAX: all), oldest first: a new array of {"id",
 * "bot", "channel", "user", "message"}. */
int pl_store_inbox_pending(pl_store *store, int64_t received_before, json_t **rows, char **err);
/* Forgets handled messages older than the cut-off (their ids no longer
 * de-duplicate). */
int pl_store_inbox_prune(pl_store *store, int64_t before_ms, char **err);

/* --- outbox: API calls to platforms, committed with the turn that made them */

/* *id is the call's row. In a batch on PostgreSQL it is filled in when the
 * batch's outcome is read (the loop does not wait for it): *id must stay
 * valid until the batch is settled, and means nothing before. */
int pl_store_outbox_add(pl_store *store, const char *bot, const char *channel, const char *user,
                        const char *call_json, int64_t now_ms, int64_t *id, char **err);
/* Calls still to send, oldest first: a new array of {"id", "bot",
 * "channel", "user", "call", "attempts", "next_at"}. With several nodes
 * (pl_store_set_owner): the calls no node holds, or whose holder let its
 * lease lapse (it died), which this node now holds — a call another node
 * holds is its to send. */
int pl_store_outbox_pending(pl_store *store, json_t **rows, char **err);
/* This node keeps holding the calls it holds for lease_ms more (release:
 * lets them go at once, for a node that stops). */
int pl_store_outbox_renew(pl_store *store, int release, char **err);
/* state: "pending" (to retry at next_at), "sent" or "dead". */
int pl_store_outbox_update(pl_store *store, int64_t id, const char *state, int attempts,
                           int64_t next_at_ms, const char *error, int64_t now_ms, char **err);
/* Counts of calls by state for a bot (or all bots when bot is NULL). */
/* Several nodes: *waiting is 1 while another node holds a call to the same
 * shopper (bot, channel, user) queued before call id and not yet sent:
 * the shopper gets the calls of consecutive turns in order, whichever nodes
 * ran them. SQLite (one node): always 0. */
int pl_store_outbox_earlier(pl_store *store, const char *bot, const char *channel, const char *user, int64_t id,
                            int *waiting, char **err);
int pl_store_outbox_count(pl_store *store, const char *bot, const char *state, int64_t *n,
                          char **err);

/* --- orders ---------------------------------------------------------------- */

/* Creates an order from a JSON object {"bot", "channel", "user", "currency",
 * "subtotal", "discount", "total", "discount_code"?, "lines", "provider",
 * "token"} in state "pending"; *id is its number. Committed at once: the
 * payment provider needs the number before the turn ends. */
int pl_store_order_create(pl_store *store, const json_t *order, int64_t now_ms, int64_t *id,
                          char **err);
/* The order as an object (new), or NULL when there is none of that bot. */
int pl_store_order_get(pl_store *store, const char *bot, int64_t id, json_t **order, char **err);
/* The shopper's orders, newest first, at most limit (channel NULL: any). */
int pl_store_orders_of(pl_store *store, const char *bot, const char *channel, const char *user,
                       int limit, json_t **orders, char **err);
/* Sets provider_ref / payment_url after the provider made the link. */
int pl_store_order_set_link(pl_store *store, int64_t id, const char *provider_ref,
                            const char *payment_url, int64_t now_ms, char **err);
/* Moves an order from one of the states in `from` ("pending" or
 * "pending,failed") to `to` (and stores payment_ref when given); *changed
 * says whether it was in one of them (so a confirmation that arrives twice
 * changes it once). Inside the caller's transaction. */
int pl_store_order_transition(pl_store *store, int64_t id, const char *from, const char *to,
                              const char *payment_ref, int64_t now_ms, int *changed, char **err);
/* The merchant's fulfilment status ("shipped") and tracking URL. */
int pl_store_order_fulfilment(pl_store *store, int64_t id, const char *status,
                              const char *tracking_url, int64_t now_ms, char **err);
/* The order a provider reference (session or payment id) belongs to, or 0. */
int pl_store_order_by_ref(pl_store *store, const char *bot, const char *ref, int64_t *id,
                          char **err);

/* --- discounts: once-per-shopper codes ----------------------------------------- */

int pl_store_discount_used(pl_store *store, const char *bot, const char *code, const char *user,
                           int *used, char **err);
/* Records a use (inside the paying transaction); *fresh is 0 when it was already used. */
int pl_store_discount_use(pl_store *store, const char *bot, const char *code, const char *user,
                          int64_t order_id, int64_t now_ms, int *fresh, char **err);

/* --- stock ------------------------------------------------------------------- */

/* Brings the stock of a bot's catalog into the store: for each key (a sku,
 * or "sku/option=value") whose catalog stock changed since last time (or
 * is new) the remaining stock becomes the catalog's; unchanged ones keep
 * their remaining count (sold units stay sold across restarts). Keys
 * missing from `catalog_stock` (object key -> integer) are removed. Then
 * *remaining is a new object of every key's remaining stock. */
int pl_store_stock_sync(pl_store *store, const char *bot, const json_t *catalog_stock,
                        json_t **remaining, char **err);
/* Takes qty from key's stock (inside the paying transaction); *left is what
 * remains (negative when oversold). Keys without stock are unlimited. */
int pl_store_stock_take(pl_store *store, const char *bot, const char *key, int64_t qty,
                        int64_t *left, int *tracked, char **err);

/* --- jobs: durable timers ------------------------------------------------------ */

/* Schedules (or reschedules: one pending job per session and name) a job. */
int pl_store_job_put(pl_store *store, const char *bot, const char *channel, const char *user,
                     const char *name, const char *data_json, int64_t fire_at_ms, int64_t now_ms,
                     char **err);
/* Cancels the pending job of that name; *found says whether there was one
 * (found NULL: nobody asks, and a batch on PostgreSQL does not wait). */
int pl_store_job_cancel(pl_store *store, const char *bot, const char *channel, const char *user,
                        const char *name, int *found, char **err);
/* The time of the earliest pending job, or -1 when there is none. */
int pl_store_job_next(pl_store *store, int64_t *fire_at_ms, char **err);
/* Pending jobs due by now (a new array of {"id", "bot", "channel", "user",
 * "name", "data", "fire_at"}), at most limit. */
int pl_store_jobs_due(pl_store *store, int64_t now_ms, int limit, json_t **jobs, char **err);
/* Marks a job fired (inside the transaction that records its event);
 * *changed is 0 when it was no longer pending. */
int pl_store_job_fired(pl_store *store, int64_t id, int64_t now_ms, int *changed, char **err);
/* The session's pending jobs: a new array of {"name", "fire_at", "data"}. */
int pl_store_jobs_of(pl_store *store, const char *bot, const char *channel, const char *user,
                     json_t **jobs, char **err);

/* --- payload map: long choice payloads behind short keys (Telegram) ------ */

int pl_store_payload_put(pl_store *store, const char *bot, const char *key, const char *payload,
                         char **err);
/* *payload is new, or NULL when the key is unknown. */
int pl_store_payload_get(pl_store *store, const char *bot, const char *key, char **payload,
                         char **err);

#endif
