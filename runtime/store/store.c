/* store: the storage interface's front (store.h): opens the backend that
 * the database's location names — a postgres:// or postgresql:// URL is
 * PostgreSQL (store_pg.c), anything else a SQLite file (store_sqlite.c) —
 * and passes each call to it (store_backend.h). */
#include "store.h"

#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "pseudonym.h"
#include "store_backend.h"
#include "store_thread.h"

int pl_store_is_postgres(const char *where) {
    return where && (strncmp(where, "postgres://", 11) == 0 || strncmp(where, "postgresql://", 13) == 0);
}

int pl_store_open(const char *path, pl_store_sync sync, pl_store **out, char **err) {
    if (pl_store_is_postgres(path)) return pl_store_pg_open(path, out, err);
    return pl_store_sqlite_open(path, sync, out, err);
}

int pl_store_open_reader(const char *path, pl_store **out, char **err) {
    if (pl_store_is_postgres(path)) return pl_store_pg_open_reader(path, out, err);
    return pl_store_sqlite_open_reader(path, out, err);
}

static int check_schema(pl_store *store, const char *path, char **err) {
    int have = 0, latest = 0;
    if (store->backend->schema_version(store, &have, &latest, err) != PL_OK) return PL_ERR;
    const char *shown = pl_store_is_postgres(path) ? "the PostgreSQL database" : path;
    if (have == 0) return pl_fail(err, "%s: not a parley database (it has no schema_migrations)", shown);
    if (have > latest)
        return pl_fail(err, "%s: the database's schema is at version %d, newer than this parley's %d: "
                            "use the newer parley", shown, have, latest);
    if (have < latest)
        return pl_fail(err, "%s: the database's schema is at version %d, older than this parley's %d: "
                            "read a copy once this parley has upgraded it (parley serve migrates)", shown, have,
                       latest);
    return PL_OK;
}

int pl_store_open_existing(const char *path, pl_store **out, char **err) {
    pl_store *store = NULL;
    if (pl_store_open_reader(path, &store, err) != PL_OK) return PL_ERR;
    if (check_schema(store, path, err) != PL_OK) {
        pl_store_close(store);
        return PL_ERR;
    }
    *out = store;
    return PL_OK;
}

const char *pl_store_backend_name(const pl_store *store) { return store->backend->name; }

int pl_store_is_shared(const pl_store *store) { return store->backend->shared; }

uint64_t pl_store_round_trips(const pl_store *store) { return store->backend->round_trips(store); }

void pl_store_set_owner(pl_store *store, const char *owner, int64_t lease_ms) {
    store->backend->set_owner(store, owner, lease_ms);
    free(store->owner);
    store->owner = owner ? pl_strdup(owner) : NULL;
    store->lease_ms = lease_ms;
    if (store->thread) pl_store_thread_set_owner(store->thread, owner, lease_ms);
}

void pl_store_offload(pl_store *store, pl_store_work_fn work, pl_store_done_fn done, void *ud) {
    if (store->thread) {
        pl_store_thread_post(store->thread, work, done, ud);
        return;
    }
    work(store, ud);
    if (done) done(ud);
}

void pl_store_offload_read(pl_store *store, pl_store_work_fn work, pl_store_done_fn done, void *ud) {
    if (store->reads) {
        pl_store_thread_post(store->reads, work, done, ud);
        return;
    }
    work(store, ud);
    if (done) done(ud);
}

int pl_store_offload_later(const pl_store *store) { return store->thread != NULL; }

int pl_store_offload_read_later(const pl_store *store) { return store->reads != NULL; }

size_t pl_store_offloaded(const pl_store *store) {
    return store->thread ? pl_store_thread_waiting(store->thread) : 0;
}

void pl_store_drain(pl_store *store) {
    pl_store_thread *o = store->thread, *reads = store->reads;
    store->thread = store->reads = NULL; /* what the dones hand over from now on runs at once */
    pl_store_thread_stop(reads);
    pl_store_thread_stop(o);
}

/* A store shared by several nodes hands the calls the loop must not wait
 * for to a thread of its own (store_thread.h). */
static int start_thread(pl_store *store, struct event_base *base, char **err) {
    if (!store->backend->shared || store->thread) return PL_OK;
    pl_store *own = NULL;
    if (pl_store_open_reader(store->backend->path(store), &own, err) != PL_OK) return PL_ERR;
    if (pl_store_thread_start(own, base, &store->thread, err) != PL_OK) return PL_ERR;
    if (store->owner) pl_store_thread_set_owner(store->thread, store->owner, store->lease_ms);
    return PL_OK;
}

int pl_store_outbox_renew(pl_store *store, int release, char **err) {
    return store->backend->outbox_renew(store, release, err);
}

int pl_store_announce(pl_store *store, const pl_session_key *key, int handoff, char **err) {
    return store->backend->announce(store, key, handoff, err);
}

int pl_store_listen(pl_store *store, struct event_base *base, pl_store_heard_fn heard, void *ud, char **err) {
    return store->backend->listen(store, base, heard, ud, err);
}

void pl_store_close(pl_store *store) {
    if (!store) return;
    pl_store_drain(store);
    free(store->owner);
    store->backend->close(store);
}

const char *pl_store_path(const pl_store *store) {
    return store->backend->path(store);
}

const char *pl_store_defer_sync(pl_store *store) {
    return store->backend->defer_sync(store);
}

uint64_t pl_store_commits(const pl_store *store) {
    return store->backend->commits(store);
}

uint64_t pl_store_wal_frames(const pl_store *store) {
    return store->backend->wal_frames(store);
}

int pl_store_ping(pl_store *store, char **err) {
    return store->backend->ping(store, err);
}

int pl_store_read_figures(pl_store *store, pl_store_figures *out, char **err) {
    *out = (pl_store_figures){0};
    return store->backend->read_figures(store, out, err);
}

int pl_store_begin(pl_store *store, char **err) {
    return store->backend->begin(store, err);
}

int pl_store_commit(pl_store *store, char **err) {
    return store->backend->commit(store, err);
}

void pl_store_rollback(pl_store *store) {
    store->backend->rollback(store);
}

int pl_store_begin_batch(pl_store *store, char **err) {
    return store->backend->begin_batch(store, err);
}

int pl_store_commit_batch(pl_store *store, int *later, char **err) {
    return store->backend->commit_batch(store, later, err);
}

int pl_store_batch_fd(const pl_store *store) {
    return store->backend->batch_fd(store);
}

int pl_store_batch_poll(pl_store *store, int wait, int *committed, char **err) {
    return store->backend->batch_poll(store, wait, committed, err);
}

int pl_store_session_get(pl_store *store, const pl_session_key *key, char **state_json, char **err) {
    return store->backend->session_get(store, key, state_json, err);
}

int pl_store_session_put(pl_store *store, const pl_session_key *key, const char *state_json, int64_t turn,
                         int64_t now_ms, char **err) {
    return store->backend->session_put(store, key, state_json, turn, now_ms, err);
}

void pl_store_session_take(pl_store *store, const pl_session_key *key, int64_t inbox_id, pl_store_taken_fn done,
                           void *ud) {
    store->backend->session_take(store, key, inbox_id, done, ud);
}

/* Long reads (pl_store_offload_read) get a read connection and a thread
 * of their own, for a database in a file or on a server. */
static int start_reads(pl_store *store, struct event_base *base, char **err) {
    const char *path = store->backend->path(store);
    if (store->reads || !path) return PL_OK;
    pl_store *own = NULL;
    if (pl_store_open_reader(path, &own, err) != PL_OK) return PL_ERR;
    return pl_store_thread_start(own, base, &store->reads, err);
}

int pl_store_use_read_thread(pl_store *store, struct event_base *base, char **err) {
    return start_reads(store, base, err);
}

int pl_store_use_loop(pl_store *store, struct event_base *base, char **err) {
    if (!base) pl_store_drain(store);
    int rc = store->backend->use_loop(store, base, err);
    if (rc == PL_OK && base) rc = start_thread(store, base, err);
    if (rc == PL_OK && base) rc = start_reads(store, base, err);
    return rc;
}

uint64_t pl_store_session_epoch(const pl_store *store) { return store->backend->session_epoch(store); }

void pl_store_session_release(pl_store *store, const pl_session_key *key) {
    store->backend->session_release(store, key);
}

int pl_store_session_erase(pl_store *store, const pl_session_key *key, int64_t *found, char **err) {
    return store->backend->session_erase(store, key, found, err);
}

int64_t pl_store_session_count(pl_store *store) {
    return store->backend->session_count(store);
}

int pl_store_transcript_add(pl_store *store, const pl_session_key *key, const char *direction, const char *body_json, int64_t now_ms, char **err) {
    return store->backend->transcript_add(store, key, direction, body_json, now_ms, err);
}

/* --- shoppers ------------------------------------------------------------------ */

int pl_store_pseudonym(pl_store *store, const pl_session_key *key, char out[PL_STORE_PSEUDONYM_LEN + 1],
                       char **err) {
    return pl_pseudonym_of(store, key, out, err);
}

int pl_store_shopper_export(pl_store *store, const pl_session_key *key, int limit, json_t **doc, char **err) {
    return store->backend->shopper_export(store, key, limit, doc, err);
}

int pl_store_purge_before(pl_store *store, const char *bot, pl_store_purge_kind kind, int64_t before_ms, int limit,
                          int64_t *removed, char **err) {
    return store->backend->purge_before(store, bot, kind, before_ms, limit, removed, err);
}

int pl_store_analytics_day_put(pl_store *store, const char *bot, const char *day, const char *channel,
                               const char *locale, const char *figures_json, char **err) {
    return store->backend->analytics_day_put(store, bot, day, channel, locale, figures_json, err);
}

int pl_store_analytics_days_read(pl_store *store, const char *bot, const char *from, const char *to,
                                 const char *channel, const char *locale, json_t **rows, char **err) {
    return store->backend->analytics_days_read(store, bot, from, to, channel, locale, rows, err);
}

int pl_store_events_read(pl_store *store, const pl_store_events_query *q, json_t **rows, char **err) {
    return store->backend->events_read(store, q, rows, err);
}

int pl_store_events_purge(pl_store *store, const char *bot, int64_t from_ms, int64_t before_ms, int64_t *removed,
                          char **err) {
    return store->backend->events_purge(store, bot, from_ms, before_ms, removed, err);
}

int pl_store_transcript_add_turn(pl_store *store, const pl_session_key *key, const char *in_json, int64_t in_at_ms,
                                 const char *out_json, int64_t out_at_ms, const pl_store_events *events, char **err) {
    return store->backend->transcript_add_turn(store, key, in_json, in_at_ms, out_json, out_at_ms, events, err);
}

int pl_store_transcript_get(pl_store *store, const pl_session_key *key, int limit, json_t **lines, char **err) {
    return store->backend->transcript_get(store, key, limit, lines, err);
}

int pl_store_transcript_since(pl_store *store, const pl_session_key *key, int64_t after_id, int limit, json_t **lines, char **err) {
    return store->backend->transcript_since(store, key, after_id, limit, lines, err);
}

int64_t pl_store_transcript_last_id(pl_store *store, const pl_session_key *key) {
    return store->backend->transcript_last_id(store, key);
}

int pl_store_conversations(pl_store *store, const char *bot, const char *channel, const char *user, int limit,
                           json_t **list, char **err) {
    return store->backend->conversations(store, bot, channel, user, limit, list, err);
}

int pl_store_handoff_put(pl_store *store, const pl_session_key *key, const json_t *handoff, int64_t now_ms, char **err) {
    return store->backend->handoff_put(store, key, handoff, now_ms, err);
}

int pl_store_handoffs(pl_store *store, json_t **list, char **err) {
    return store->backend->handoffs(store, list, err);
}

int pl_store_handoffs_closed(pl_store *store, const pl_store_closed_query *q, json_t **list, char **err) {
    return store->backend->handoffs_closed(store, q, list, err);
}

int pl_store_catalog_replace(pl_store *store, const char *bot, const json_t *products, char **err) {
    return store->backend->catalog_replace(store, bot, products, err);
}

int64_t pl_store_catalog_count(pl_store *store, const char *bot) {
    return store->backend->catalog_count(store, bot);
}

int pl_store_inbox_add(pl_store *store, const char *bot, const char *channel, const char *platform_id, const char *user, const char *message_json, int64_t now_ms, int64_t *id, char **err) {
    return store->backend->inbox_add(store, bot, channel, platform_id, user, message_json, now_ms, id, err);
}

int pl_store_inbox_done(pl_store *store, int64_t id, int64_t now_ms, char **err) {
    return store->backend->inbox_done(store, id, now_ms, err);
}

int pl_store_inbox_record(pl_store *store, const char *bot, const char *channel, const char *platform_id,
                          const char *user, const char *message_json, int64_t now_ms, int64_t *id, char **err) {
    if (store->backend->inbox_record)
        return store->backend->inbox_record(store, bot, channel, platform_id, user, message_json, now_ms, id, err);
    return pl_store_inbox_add(store, bot, channel, platform_id, user, message_json, now_ms, id, err);
}

int pl_store_inbox_record_answered(pl_store *store, const char *bot, const char *channel, const char *platform_id,
                                   const char *user, const char *message_json, int64_t now_ms, const char *call_json,
                                   int64_t *id, int64_t *call_id, char **err) {
    if (store->backend->inbox_record_answered)
        return store->backend->inbox_record_answered(store, bot, channel, platform_id, user, message_json, now_ms,
                                                     call_json, id, call_id, err);
    *call_id = 0;
    int rc = pl_store_inbox_add(store, bot, channel, platform_id, user, message_json, now_ms, id, err);
    if (rc == PL_OK && *id) rc = pl_store_outbox_add(store, bot, channel, user, call_json, now_ms, call_id, err);
    return rc;
}

int pl_store_status_record(pl_store *store, const char *bot, const char *channel, const char *platform_id,
                           const char *user, const char *event_json, int64_t now_ms, char **err) {
    if (store->backend->status_record)
        return store->backend->status_record(store, bot, channel, platform_id, user, event_json, now_ms, err);
    pl_session_key key = {bot, channel, user};
    int64_t seen = 0;
    int rc = pl_store_inbox_add(store, bot, channel, platform_id, user, event_json, now_ms, &seen, err);
    if (rc == PL_OK && seen) rc = pl_store_inbox_done(store, seen, now_ms, err);
    if (rc == PL_OK && seen) rc = pl_store_transcript_add(store, &key, "status", event_json, now_ms, err);
    return rc;
}

int pl_store_inbox_next_seq(pl_store *store, const char *bot, const char *channel, const char *prefix, int64_t *seq, char **err) {
    return store->backend->inbox_next_seq(store, bot, channel, prefix, seq, err);
}

int pl_store_inbox_pending(pl_store *store, int64_t received_before, json_t **rows, char **err) {
    return store->backend->inbox_pending(store, received_before, rows, err);
}

int pl_store_inbox_prune(pl_store *store, int64_t before_ms, char **err) {
    return store->backend->inbox_prune(store, before_ms, err);
}

int pl_store_outbox_add(pl_store *store, const char *bot, const char *channel, const char *user, const char *call_json, int64_t now_ms, int64_t *id, char **err) {
    return store->backend->outbox_add(store, bot, channel, user, call_json, now_ms, id, err);
}

int pl_store_outbox_pending(pl_store *store, json_t **rows, char **err) {
    return store->backend->outbox_pending(store, rows, err);
}

int pl_store_outbox_update(pl_store *store, int64_t id, const char *state, int attempts, int64_t next_at_ms, const char *error, int64_t now_ms, char **err) {
    return store->backend->outbox_update(store, id, state, attempts, next_at_ms, error, now_ms, err);
}

int pl_store_outbox_earlier(pl_store *store, const char *bot, const char *channel, const char *user, int64_t id,
                            int *waiting, char **err) {
    return store->backend->outbox_earlier(store, bot, channel, user, id, waiting, err);
}

int pl_store_outbox_count(pl_store *store, const char *bot, const char *state, int64_t *n, char **err) {
    return store->backend->outbox_count(store, bot, state, n, err);
}

int pl_store_order_create(pl_store *store, const json_t *order, int64_t now_ms, int64_t *id, char **err) {
    return store->backend->order_create(store, order, now_ms, id, err);
}

int pl_store_order_get(pl_store *store, const char *bot, int64_t id, json_t **order, char **err) {
    return store->backend->order_get(store, bot, id, order, err);
}

int pl_store_orders_of(pl_store *store, const char *bot, const char *channel, const char *user, int limit, json_t **orders, char **err) {
    return store->backend->orders_of(store, bot, channel, user, limit, orders, err);
}

int pl_store_order_set_link(pl_store *store, int64_t id, const char *provider_ref, const char *payment_url, int64_t now_ms, char **err) {
    return store->backend->order_set_link(store, id, provider_ref, payment_url, now_ms, err);
}

int pl_store_order_transition(pl_store *store, int64_t id, const char *from, const char *to, const char *payment_ref, int64_t now_ms, int *changed, char **err) {
    return store->backend->order_transition(store, id, from, to, payment_ref, now_ms, changed, err);
}

int pl_store_order_fulfilment(pl_store *store, int64_t id, const char *status, const char *tracking_url, int64_t now_ms, char **err) {
    return store->backend->order_fulfilment(store, id, status, tracking_url, now_ms, err);
}

int pl_store_order_by_ref(pl_store *store, const char *bot, const char *ref, int64_t *id, char **err) {
    return store->backend->order_by_ref(store, bot, ref, id, err);
}

int pl_store_discount_used(pl_store *store, const char *bot, const char *code, const char *user, int *used, char **err) {
    return store->backend->discount_used(store, bot, code, user, used, err);
}

int pl_store_discount_use(pl_store *store, const char *bot, const char *code, const char *user, int64_t order_id, int64_t now_ms, int *fresh, char **err) {
    return store->backend->discount_use(store, bot, code, user, order_id, now_ms, fresh, err);
}

int pl_store_stock_sync(pl_store *store, const char *bot, const json_t *catalog_stock, json_t **remaining, char **err) {
    return store->backend->stock_sync(store, bot, catalog_stock, remaining, err);
}

int pl_store_stock_take(pl_store *store, const char *bot, const char *key, int64_t qty, int64_t *left, int *tracked, char **err) {
    return store->backend->stock_take(store, bot, key, qty, left, tracked, err);
}

int pl_store_job_put(pl_store *store, const char *bot, const char *channel, const char *user, const char *name, const char *data_json, int64_t fire_at_ms, int64_t now_ms, char **err) {
    return store->backend->job_put(store, bot, channel, user, name, data_json, fire_at_ms, now_ms, err);
}

int pl_store_job_cancel(pl_store *store, const char *bot, const char *channel, const char *user, const char *name, int *found, char **err) {
    return store->backend->job_cancel(store, bot, channel, user, name, found, err);
}

int pl_store_job_next(pl_store *store, int64_t *fire_at_ms, char **err) {
    return store->backend->job_next(store, fire_at_ms, err);
}

int pl_store_jobs_due(pl_store *store, int64_t now_ms, int limit, json_t **jobs, char **err) {
    return store->backend->jobs_due(store, now_ms, limit, jobs, err);
}

int pl_store_job_fired(pl_store *store, int64_t id, int64_t now_ms, int *changed, char **err) {
    return store->backend->job_fired(store, id, now_ms, changed, err);
}

int pl_store_jobs_of(pl_store *store, const char *bot, const char *channel, const char *user, json_t **jobs, char **err) {
    return store->backend->jobs_of(store, bot, channel, user, jobs, err);
}

int pl_store_payload_put(pl_store *store, const char *bot, const char *key, const char *payload, char **err) {
    return store->backend->payload_put(store, bot, key, payload, err);
}

int pl_store_payload_get(pl_store *store, const char *bot, const char *key, char **payload, char **err) {
    return store->backend->payload_get(store, bot, key, payload, err);
}
