/* store_backend: what a backend of the storage interface (store.h)
 * provides. store.c picks the backend from where the database is (a file
 * path, or a postgres:// URL) and passes every call of store.h through
 * this table; nothing outside runtime/store/ sees it.
 *
 * A backend's own handle begins with struct pl_store, so that a pl_store *
 * is the backend's handle. Each entry means what the pl_store_* function
 * of the same name says in store.h. */
#ifndef PL_STORE_BACKEND_H
#define PL_STORE_BACKEND_H

#include <stdlib.h>
#include <string.h>

#include "store_types.h"

/* How long a statement waits for a lock held by another connection once
 * the store serves (the loop waits with it). */
#define PL_STORE_BUSY_MS 20

typedef struct pl_store_backend {
    const char *name; /* "sqlite", "postgresql" */
    int shared;       /* several nodes may share the database */
    void (*set_owner)(pl_store *store, const char *owner, int64_t lease_ms);
    int (*outbox_renew)(pl_store *store, int release, char **err);
    uint64_t (*round_trips)(const pl_store *store);
    int (*announce)(pl_store *store, const pl_session_key *key, int handoff, char **err);
    int (*listen)(pl_store *store, struct event_base *base, pl_store_heard_fn heard, void *ud, char **err);
    void (*close)(pl_store *store);
    const char *(*path)(const pl_store *store);
    const char *(*defer_sync)(pl_store *store);
    uint64_t (*commits)(const pl_store *store);
    uint64_t (*wal_frames)(const pl_store *store);
    int (*ping)(pl_store *store, char **err);
    /* The database's schema version (*have, 0 without schema_migrations)
     * and this parley's (*latest). */
    int (*schema_version)(pl_store *store, int *have, int *latest, char **err);
    int (*read_figures)(pl_store *store, pl_store_figures *out, char **err);
    int (*begin)(pl_store *store, char **err);
    int (*commit)(pl_store *store, char **err);
    void (*rollback)(pl_store *store);
    int (*begin_batch)(pl_store *store, char **err);
    int (*commit_batch)(pl_store *store, int *later, char **err);
    int (*batch_fd)(const pl_store *store);
    int (*batch_poll)(pl_store *store, int wait, int *committed, char **err);
    int (*session_get)(pl_store *store, const pl_session_key *key, char **state_json, char **err);
    int (*session_put)(pl_store *store, const pl_session_key *key, const char *state_json, int64_t turn, int64_t now_ms, char **err);
    void (*session_take)(pl_store *store, const pl_session_key *key, int64_t inbox_id, pl_store_taken_fn done, void *ud);
    int (*use_loop)(pl_store *store, struct event_base *base, char **err);
    void (*session_release)(pl_store *store, const pl_session_key *key);
    uint64_t (*session_epoch)(const pl_store *store);
    int (*session_erase)(pl_store *store, const pl_session_key *key, int64_t *found, char **err);
    int64_t (*session_count)(pl_store *store);
    int (*transcript_add)(pl_store *store, const pl_session_key *key, const char *direction, const char *body_json, int64_t now_ms, char **err);
    int (*transcript_add_turn)(pl_store *store, const pl_session_key *key, const char *in_json, int64_t in_at_ms, const char *out_json, int64_t out_at_ms, const pl_store_events *events, char **err);
    int (*transcript_get)(pl_store *store, const pl_session_key *key, int limit, json_t **lines, char **err);
    int (*transcript_since)(pl_store *store, const pl_session_key *key, int64_t after_id, int limit, json_t **lines, char **err);
    int64_t (*transcript_last_id)(pl_store *store, const pl_session_key *key);
    int (*conversations)(pl_store *store, const char *bot, const char *channel, const char *user, int limit, json_t **list, char **err);
    /* The key of pl_store_pseudonym as the database keeps it (a backend
     * makes it when it opens a database that has none). */
    int (*pseudonym_key)(pl_store *store, unsigned char key[PL_STORE_KEY_BYTES], char **err);
    int (*shopper_export)(pl_store *store, const pl_session_key *key, int limit, json_t **doc, char **err);
    int (*purge_before)(pl_store *store, const char *bot, pl_store_purge_kind kind, int64_t before_ms, int limit,
                        int64_t *removed, char **err);
    int (*analytics_day_put)(pl_store *store, const char *bot, const char *day, const char *channel, const char *locale, const char *figures_json, char **err);
    int (*analytics_days_read)(pl_store *store, const char *bot, const char *from, const char *to, const char *channel, const char *locale, json_t **rows, char **err);
    int (*events_read)(pl_store *store, const pl_store_events_query *q, json_t **rows, char **err);
    int (*events_purge)(pl_store *store, const char *bot, int64_t from_ms, int64_t before_ms, int64_t *removed, char **err);
    int (*handoff_put)(pl_store *store, const pl_session_key *key, const json_t *handoff, int64_t now_ms, char **err);
    int (*handoffs)(pl_store *store, json_t **list, char **err);
    int (*handoffs_closed)(pl_store *store, const pl_store_closed_query *q, json_t **list, char **err);
    int (*catalog_replace)(pl_store *store, const char *bot, const json_t *products, char **err);
    int64_t (*catalog_count)(pl_store *store, const char *bot);
    int (*inbox_add)(pl_store *store, const char *bot, const char *channel, const char *platform_id, const char *user, const char *message_json, int64_t now_ms, int64_t *id, char **err);
    int (*inbox_done)(pl_store *store, int64_t id, int64_t now_ms, char **err);
    /* Optional (NULL: store.c uses inbox_add, and inbox_add, inbox_done
     * and transcript_add): a backend's own way to record without waiting. */
    int (*inbox_record)(pl_store *store, const char *bot, const char *channel, const char *platform_id, const char *user, const char *message_json, int64_t now_ms, int64_t *id, char **err);
    int (*inbox_record_answered)(pl_store *store, const char *bot, const char *channel, const char *platform_id, const char *user, const char *message_json, int64_t now_ms, const char *call_json, int64_t *id, int64_t *call_id, char **err);
    int (*status_record)(pl_store *store, const char *bot, const char *channel, const char *platform_id, const char *user, const char *event_json, int64_t now_ms, char **err);
    int (*inbox_next_seq)(pl_store *store, const char *bot, const char *channel, const char *prefix, int64_t *seq, char **err);
    int (*inbox_pending)(pl_store *store, int64_t received_before, json_t **rows, char **err);
    int (*inbox_prune)(pl_store *store, int64_t before_ms, char **err);
    int (*outbox_add)(pl_store *store, const char *bot, const char *channel, const char *user, const char *call_json, int64_t now_ms, int64_t *id, char **err);
    int (*outbox_pending)(pl_store *store, json_t **rows, char **err);
    int (*outbox_update)(pl_store *store, int64_t id, const char *state, int attempts, int64_t next_at_ms, const char *error, int64_t now_ms, char **err);
    int (*outbox_count)(pl_store *store, const char *bot, const char *state, int64_t *n, char **err);
    int (*outbox_earlier)(pl_store *store, const char *bot, const char *channel, const char *user, int64_t id,
                          int *waiting, char **err);
    int (*order_create)(pl_store *store, const json_t *order, int64_t now_ms, int64_t *id, char **err);
    int (*order_get)(pl_store *store, const char *bot, int64_t id, json_t **order, char **err);
    int (*orders_of)(pl_store *store, const char *bot, const char *channel, const char *user, int limit, json_t **orders, char **err);
    int (*order_set_link)(pl_store *store, int64_t id, const char *provider_ref, const char *payment_url, int64_t now_ms, char **err);
    int (*order_transition)(pl_store *store, int64_t id, const char *from, const char *to, const char *payment_ref, int64_t now_ms, int *changed, char **err);
    int (*order_fulfilment)(pl_store *store, int64_t id, const char *status, const char *tracking_url, int64_t now_ms, char **err);
    int (*order_by_ref)(pl_store *store, const char *bot, const char *ref, int64_t *id, char **err);
    int (*discount_used)(pl_store *store, const char *bot, const char *code, const char *user, int *used, char **err);
    int (*discount_use)(pl_store *store, const char *bot, const char *code, const char *user, int64_t order_id, int64_t now_ms, int *fresh, char **err);
    int (*stock_sync)(pl_store *store, const char *bot, const json_t *catalog_stock, json_t **remaining, char **err);
    int (*stock_take)(pl_store *store, const char *bot, const char *key, int64_t qty, int64_t *left, int *tracked, char **err);
    int (*job_put)(pl_store *store, const char *bot, const char *channel, const char *user, const char *name, const char *data_json, int64_t fire_at_ms, int64_t now_ms, char **err);
    int (*job_cancel)(pl_store *store, const char *bot, const char *channel, const char *user, const char *name, int *found, char **err);
    int (*job_next)(pl_store *store, int64_t *fire_at_ms, char **err);
    int (*jobs_due)(pl_store *store, int64_t now_ms, int limit, json_t **jobs, char **err);
    int (*job_fired)(pl_store *store, int64_t id, int64_t now_ms, int *changed, char **err);
    int (*jobs_of)(pl_store *store, const char *bot, const char *channel, const char *user, json_t **jobs, char **err);
    int (*payload_put)(pl_store *store, const char *bot, const char *key, const char *payload, char **err);
    int (*payload_get)(pl_store *store, const char *bot, const char *key, char **payload, char **err);
} pl_store_backend;

struct pl_store {
    const pl_store_backend *backend;
    struct pl_store_thread *thread; /* store.c's: pl_store_offload's thread, while it runs */
    struct pl_store_thread *reads;  /* store.c's: pl_store_offload_read's, while it runs */
    char *owner;                      /* store.c's copy of pl_store_set_owner's, for that thread */
    int64_t lease_ms;
    /* store.c's: pl_store_pseudonym's key, once read (a backend fills it
     * in when it opens a database for writing) */
    unsigned char pseudonym_key[PL_STORE_KEY_BYTES];
    int has_pseudonym_key;
};


/* A shopper's export (pl_store_shopper_export), list by list, as each
 * backend reads it: the SQL of its rows (the shopper, then the limit of a
 * bounded list: its latest rows, oldest first) and, for a bounded list, of
 * its count (NULL: not bounded); the keys name the columns (a key starting
 * with '#' is an integer column, '@' a JSON one). */
typedef struct {
    const char *name;
    const char *sql;
    const char *count;
    const char *const *keys;
    int nkeys;
} export_list;

static const char *const transcript_keys[] = {"#id", "#at", "direction", "@body"};
static const char *const event_keys[] = {"#id", "#at", "#conv", "locale", "step", "@events", "names"};
static const char *const job_keys[] = {"#id", "name", "state", "@data", "#fire_at", "#created_at", "#fired_at"};
static const char *const inbox_keys[] = {"#id", "platform_id", "@message", "#received_at", "#done_at"};
static const char *const outbox_keys[] = {"#id", "state", "#attempts", "@call", "#created_at", "#sent_at"};
static const char *const use_keys[] = {"code", "#order_id", "#used_at"};
static const char *const handoff_keys[] = {"state", "reason", "agent", "#since", "#updated_at", "display_name",
                                           "#visitor", "#closed_at", "how", "@page"};
/* A closed handoff (pl_store_handoffs_closed). */
static const char *const closed_keys[] = {"bot", "channel", "user", "reason", "agent", "#since", "#closed_at", "how",
                                          "display_name", "#visitor"};
/* An open one (pl_store_handoffs). */
static const char *const open_keys[] = {"bot", "channel", "user", "state", "reason", "agent", "#since", "#last_at",
                                        "display_name", "#visitor", "@page"};

#define KEY_COUNT(keys) ((int)(sizeof keys / sizeof *keys))

/* A LIKE pattern (escape character '\\') that finds text containing
 * search: new, owned by the caller. (Here, not in store.c, which the
 * backends do not call back into.) */
static inline char *pl_store_like_pattern(const char *search) {
    size_t n = strlen(search);
    char *out = malloc(2 * n + 3), *o = out;
    if (!out) abort();
    *o++ = '%';
    for (const char *c = search; *c; c++) {
        if (*c == '%' || *c == '_' || *c == '\\') *o++ = '\\';
        *o++ = *c;
    }
    *o++ = '%';
    *o = '\0';
    return out;
}

/* The backends' constructors (store.c calls them). */
int pl_store_sqlite_open(const char *path, pl_store_sync sync, pl_store **out, char **err);
int pl_store_sqlite_open_reader(const char *path, pl_store **out, char **err);
int pl_store_pg_open(const char *url, pl_store **out, char **err);
int pl_store_pg_open_reader(const char *url, pl_store **out, char **err);

#endif
