/* pipeline: per-session mailboxes, turn dispatch, batched commit and
 * delivery; see pipeline.h. Uses turn.c for the Lua side and store.h for
 * the one transaction per batch. */
#include "pipeline.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "base/common.h"
#include "base/log.h"
#include "base/metrics.h"
#include "sandbox/json_text.h"
#include "sandbox/usage.h"
#include "store/syncer.h"

typedef enum { ITEM_MESSAGE, ITEM_ERASE, ITEM_RECORD } item_kind;

typedef struct item {
    struct pl_pipeline *pipe;
    struct item *next_in_box;   /* the session's queue */
    struct item *next_in_batch; /* the commit batch */
    struct mailbox *box;
    item_kind kind;
    pl_bot *bot;
    pl_message *msg;
    pl_deliver_fn deliver;
    void *ud;
    pl_turn_result result;
    int status; /* 200, or 503 when its session could not be read */
    /* ITEM_RECORD: the webhook's events, the inbox row of each (0 for a
     * duplicate or a status), and whom to tell */
    json_t *events;
    int64_t *inbox_ids;
    int64_t erased; /* ITEM_ERASE: 1 when there was something to erase (known once settled) */
    pl_recorded_fn recorded;
    pl_record_writer writer; /* makes the events inside the transaction */
    void *writer_ud;
    struct event *later;     /* runs the item again after a pause (a retry, the bot's share) */
    int retries;             /* of an acknowledged message whose commit failed */
    int64_t dispatched_us;   /* when its turn was dispatched (parley_turn_duration_seconds) */
} item;

/* A committed batch waiting for its fdatasync. */
typedef struct flight {
    struct flight *next;
    item *batch;
    uint64_t commit; /* the store's commit count just after it */
    size_t items;
    int jobs_touched;
    pl_outbox_staged *staged; /* its outbox calls, sent once it is durable */
    int64_t started_us; /* when its write began (parley_commit_duration_seconds) */
} flight;

typedef struct mailbox {
    struct mailbox *next_in_bucket;
    char *key; /* bot \x1f channel \x1f user */
    item *head, *tail;
    /* Several nodes (pl_store_session_take): whether this node holds the
     * session, and its count of committed turns (-1: unchecked) */
    int taken;
    int taking; /* a take is in flight */
    uint64_t epoch; /* pl_store_session_epoch when taken */
    int64_t turn;
    int take_tries; /* while another node holds it */
} mailbox;

struct pl_pipeline {
    struct event_base *base;
    pl_store *store;
    mailbox **buckets;
    size_t nbuckets, nboxes;
    item *batch_head, *batch_tail;
    size_t batch_items; /* in the batch forming */
    struct event *commit_ev;
    /* Off-loop durability (syncer.h): the batches written and waiting for
     * the fdatasync that covers them, oldest first; meanwhile the next
     * batch forms (write_formed_batch says when it is written).
     * wait_durable: replies wait for the sync (--sync full). */
    pl_syncer *syncer;
    int wait_durable;
    struct flight *flights, *last_flight;
    int holding;          /* the next write waits for the thread's checkpoint */
    /* A batch whose commit the store sent without waiting (PostgreSQL),
     * until its outcome comes on the store's socket (answer_ev). */
    struct flight *awaited;
    struct event *answer_ev;
    uint64_t held_frames; /* the WAL's frames at the last hold */
    pl_outbox *outbox;
    void (*jobs_changed)(void *ud);
    void *jobs_ud;
    pl_committed_fn committed;
    void *committed_ud;
    int64_t (*before_turn)(void *ud); /* pl_pipeline_before_turn */
    void *before_turn_ud;
    int listening; /* to other nodes' commits (pl_store_listen) */
    int jobs_touched; /* in the open transaction */
    size_t pending;
    uint64_t committed_items, transactions;
};

/* What /metrics shows of the message path (docs/metrics.md). */
static struct {
    pl_metric *messages, *turn_seconds, *commit_seconds, *batch_items, *duplicates;
} metrics;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void make_metrics(void) {
    metrics.messages = pl_metric_counter("parley_messages_total", "Messages handled: turns run, by bot and channel",
                                         "bot,channel");
    metrics.turn_seconds = pl_metric_histogram(
        "parley_turn_duration_seconds", "Time from a turn's dispatch to its result, waits for I/O included", "bot",
        pl_metric_seconds, pl_metric_seconds_count);
    metrics.commit_seconds = pl_metric_histogram(
        "parley_commit_duration_seconds", "Time from a batch's write to its durability (its fdatasync or the database's answer)",
        "", pl_metric_seconds, pl_metric_seconds_count);
    metrics.batch_items = pl_metric_histogram("parley_commit_batch_size",
                                              "Items (turns, webhook records, erasures) written in one transaction",
                                              "", pl_metric_sizes, pl_metric_sizes_count);
    metrics.duplicates = pl_metric_counter("parley_inbox_duplicates_total",
                                           "Messages a platform delivered again, recognised and not handled twice",
                                           "bot,channel");
    pl_turn_metrics();
}

static void run_item(pl_pipeline *pipe, item *it);
static void complete(pl_pipeline *pipe, item *it, int committed);
static void retry_later(pl_pipeline *pipe, item *it);
static void item_free(item *it);
static void release_session(pl_pipeline *pipe, struct mailbox *box, item *it);

/* --- the mailbox table (chained hash, grows at load factor 1) ------------ */

/* bot, channel and user joined by \x1f (a copy, not a format: every
 * message makes one) */
static char *session_key(const char *bot, const char *channel, const char *user) {
    size_t b = strlen(bot), c = strlen(channel), u = strlen(user);
    char *key = malloc(b + c + u + 3);
    if (!key) abort();
    memcpy(key, bot, b);
    key[b] = '\x1f';
    memcpy(key + b + 1, channel, c);
    key[b + 1 + c] = '\x1f';
    memcpy(key + b + c + 2, user, u + 1);
    return key;
}

static size_t bucket_of(const pl_pipeline *pipe, const char *key) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % pipe->nbuckets);
}

static void grow(pl_pipeline *pipe) {
    size_t old_n = pipe->nbuckets;
    mailbox **old = pipe->buckets;
    pipe->nbuckets = old_n * 2;
    pipe->buckets = calloc(pipe->nbuckets, sizeof *pipe->buckets);
    if (!pipe->buckets) abort();
    for (size_t i = 0; i < old_n; i++) {
        for (mailbox *b = old[i], *next; b; b = next) {
            next = b->next_in_bucket;
            size_t at = bucket_of(pipe, b->key);
            b->next_in_bucket = pipe->buckets[at];
            pipe->buckets[at] = b;
        }
    }
    free(old);
}

/* Finds or creates the mailbox; takes ownership of key. */
static mailbox *mailbox_get(pl_pipeline *pipe, char *key) {
    size_t at = bucket_of(pipe, key);
    for (mailbox *b = pipe->buckets[at]; b; b = b->next_in_bucket) {
        if (strcmp(b->key, key) == 0) {
            free(key);
            return b;
        }
    }
    if (pipe->nboxes + 1 > pipe->nbuckets) {
        grow(pipe);
        at = bucket_of(pipe, key);
    }
    mailbox *b = calloc(1, sizeof *b);
    if (!b) abort();
    b->key = key;
    b->next_in_bucket = pipe->buckets[at];
    pipe->buckets[at] = b;
    pipe->nboxes++;
    return b;
}

static void mailbox_drop(pl_pipeline *pipe, mailbox *box) {
    mailbox **link = &pipe->buckets[bucket_of(pipe, box->key)];
    while (*link != box) link = &(*link)->next_in_bucket;
    *link = box->next_in_bucket;
    pipe->nboxes--;
    free(box->key);
    free(box);
}

/* --- commit ---------------------------------------------------------------- */

static void batch_add(pl_pipeline *pipe, item *it) {
    it->next_in_batch = NULL;
    if (pipe->batch_tail) pipe->batch_tail->next_in_batch = it;
    else pipe->batch_head = it;
    pipe->batch_tail = it;
    pipe->batch_items++;
    /* An activated event runs after the events already active in this loop
     * turn, so every turn finished in this loop turn joins one transaction;
     * a batch write_formed_batch let wait is looked at again once it has
     * grown as big as the one syncing. */
    if (pipe->batch_head == it || (pipe->last_flight && pipe->batch_items == pipe->last_flight->items))
        event_active(pipe->commit_ev, EV_WRITE, 0);
}

/* The replies from index `from` on, as JSON text (new). */
static char *dump_from(const json_t *replies, size_t from) {
    json_t *rest = json_array();
    for (size_t i = from; i < json_array_size(replies); i++) json_array_append(rest, json_array_get(replies, i));
    char *text = json_dumps(rest, JSON_COMPACT);
    json_decref(rest);
    return text;
}

/* Appends `"key":` and the tree's text after a comma unless first. */
static int put_member_tree(pl_json_text *t, int first, const char *key, const json_t *value) {
    char *dumped = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    int ok = dumped && (first || pl_json_text_char(t, ',')) && pl_json_text_char(t, '"') &&
             pl_json_text_put(t, key, strlen(key)) && pl_json_text_put(t, "\":", 2) &&
             pl_json_text_put(t, dumped, strlen(dumped));
    free(dumped);
    return ok;
}

/* The message as its transcript line (new text), written without a tree:
 * what json_dumps of {"text", "payload", "locale", "event", "info"} (those
 * present) wrote, a string that is not UTF-8 left out as json_string left
 * it out. NULL when it cannot be written (the commit then fails). */
static char *message_text(const pl_message *m) {
    pl_json_text t = {0};
    int ok = pl_json_text_char(&t, '{'), first = 1;
    const char *const keys[] = {"text", "payload", "locale"};
    const char *const values[] = {m->text, m->payload, m->locale};
    for (int i = 0; i < 3 && ok; i++) {
        if (!values[i]) continue;
        size_t mark = t.len;
        int bad = 0;
        ok = (first || pl_json_text_char(&t, ',')) && pl_json_text_char(&t, '"') &&
             pl_json_text_put(&t, keys[i], strlen(keys[i])) && pl_json_text_put(&t, "\":", 2) &&
             pl_json_text_string(&t, values[i], strlen(values[i]), &bad);
        if (!ok && bad) { /* left out */
            t.len = mark;
            ok = 1;
        } else {
            first = 0;
        }
    }
    if (ok && m->event) {
        ok = put_member_tree(&t, first, "event", m->event);
        first = 0;
    }
    if (ok && m->channel_info) ok = put_member_tree(&t, first, "info", m->channel_info);
    if (ok && pl_json_text_char(&t, '}')) return pl_json_text_finish(&t, NULL);
    pl_json_text_discard(&t);
    return NULL;
}

static int write_message(pl_store *store, item *it, int64_t now, char **err) {
    pl_session_key key = {it->msg->bot, it->msg->channel, it->msg->user};
    if (pl_turn_ignored(&it->result)) /* no line, no activity: only the mailbox learns it was handled */
        return it->msg->inbox_id ? pl_store_inbox_done(store, it->msg->inbox_id, now, err) : PL_OK;
    /* the message's line and one line for everything the bot said, but for
     * what an earlier event already recorded (it waited for this answer on
     * a channel that cannot push): one row */
    size_t recorded = (size_t)json_integer_value(json_object_get(it->result.effects, "recorded"));
    char *fresh = recorded ? dump_from(pl_turn_replies(&it->result), recorded) : NULL;
    char *body = message_text(it->msg);
    /* the turn's analytics events are kept in its row */
    const pl_turn_events *e = &it->result.events;
    pl_store_events events = {.conv = e->conv, .locale = it->result.locale, .step = e->step, .names = e->names,
                              .list = e->list};
    int rc = pl_store_transcript_add_turn(store, &key, body, it->msg->received_at,
                                          fresh ? fresh : it->result.replies_text, now, e->names ? &events : NULL,
                                          err);
    free(body);
    free(fresh);
    if (rc == PL_OK && it->result.session_json)
        rc = pl_store_session_put(store, &key, it->result.session_json, it->box->turn, now, err);
    if (rc == PL_OK && it->msg->inbox_id) rc = pl_store_inbox_done(store, it->msg->inbox_id, now, err);
    /* other nodes' streams of this session hear of it once committed */
    if (rc == PL_OK)
        rc = pl_store_announce(store, &key, json_object_get(it->result.effects, "handoff") != NULL, err);
    return rc;
}

/* The jobs a turn scheduled or cancelled, in its transaction. "after" is
 * in seconds from now (the test clock's now). */
static int write_jobs(pl_pipeline *pipe, item *it, int64_t now, char **err) {
    size_t i;
    json_t *job;
    json_array_foreach(json_object_get(it->result.effects, "jobs"), i, job) {
        const char *op = json_string_value(json_object_get(job, "op"));
        const char *name = json_string_value(json_object_get(job, "name"));
        if (!op || !name) continue;
        int rc;
        if (strcmp(op, "cancel") == 0) {
            rc = pl_store_job_cancel(pipe->store, it->msg->bot, it->msg->channel, it->msg->user, name, NULL, err);
        } else {
            json_t *at = json_object_get(job, "at");
            int64_t fire_at = json_is_number(at) ? (int64_t)(json_number_value(at) * 1000)
                                                 : now + (int64_t)(json_number_value(json_object_get(job, "after")) * 1000);
            char *data = json_dumps(json_object_get(job, "data") ? json_object_get(job, "data") : json_null(),
                                    JSON_COMPACT | JSON_ENCODE_ANY);
            rc = pl_store_job_put(pipe->store, it->msg->bot, it->msg->channel, it->msg->user, name, data, fire_at,
                                  now, err);
            free(data);
        }
        if (rc != PL_OK) return rc;
        pipe->jobs_touched = 1;
    }
    return PL_OK;
}

/* A turn's handoff change ({"state": "waiting" | "active" | "closed", ...};
 * "none" or no state: the row goes). */
static int write_handoff(pl_pipeline *pipe, item *it, int64_t now, char **err) {
    const json_t *h = json_object_get(it->result.effects, "handoff");
    const char *state = json_string_value(json_object_get(h, "state"));
    pl_session_key key = {it->msg->bot, it->msg->channel, it->msg->user};
    int gone = !state || strcmp(state, "none") == 0;
    return pl_store_handoff_put(pipe->store, &key, gone ? NULL : h, now, err);
}

/* Replies for a platform that is not answered in the HTTP response go to
 * the outbox, in the same transaction as the turn. */
static int queue_outbound(pl_pipeline *pipe, item *it, char **err) {
    if (!pipe->outbox || pl_channel_is_internal(it->msg->channel)) return PL_OK;
    /* only a platform's adapter renders (pl_outbox_queue does nothing for
     * web chat): elsewhere the replies' tree is not made for it */
    const pl_channel_adapter *adapter = pl_channel_find(it->msg->channel);
    if (!adapter || adapter->synchronous || !adapter->render) return PL_OK;
    const char *cause = json_string_value(json_object_get(it->msg->event, "type"));
    pl_outbound to = {.user = it->msg->user, .locale = it->result.locale, .done = it->result.done,
                      .heard_at = it->result.heard_at, .by_agent = cause && strcmp(cause, "agent") == 0,
                      .unasked = it->msg->event != NULL};
    to.info = it->msg->channel_info ? it->msg->channel_info : it->result.heard_facts;
    return pl_outbox_queue(pipe->outbox, it->msg->bot, it->msg->channel, &to, pl_turn_replies(&it->result), err);
}

static const char *event_channel(const item *it, const json_t *event) {
    const char *channel = json_string_value(json_object_get(event, "channel"));
    return channel ? channel : it->msg->channel;
}

/* One event of a record into store's open transaction; an "ack" the
 * platform is answered with goes into the outbox (NULL: none is, off the
 * loop). */
static int write_event(pl_store *store, pl_outbox *outbox, item *it, size_t i, const json_t *event, int64_t now,
                       char **err) {
    const char *kind = json_string_value(json_object_get(event, "kind"));
    const char *user = json_string_value(json_object_get(event, "user"));
    const char *channel = event_channel(it, event);
    if (!user) return PL_OK;
    char *body = json_dumps(event, JSON_COMPACT);
    int rc = PL_OK;
    if (kind && strcmp(kind, "status") == 0) {
        /* a platform's retried status is recorded once */
        const char *message_id = json_string_value(json_object_get(event, "id"));
        const char *status = json_string_value(json_object_get(event, "status"));
        char *status_key = pl_strdupf("status:%s:%s:%s", user, message_id ? message_id : "-", status ? status : "-");
        rc = pl_store_status_record(store, it->msg->bot, channel, status_key, user, body, now, err);
        free(status_key);
    } else {
        const char *platform_id = json_string_value(json_object_get(event, "id"));
        char *fallback_id = platform_id ? NULL : pl_strdupf("%s-%lld-%zu", user, (long long)now, i);
        const char *id = platform_id ? platform_id : fallback_id;
        json_t *ack = json_object_get(event, "ack");
        /* the row's id is wanted after the commit (the message's mailbox); a
         * new event's acknowledgement to the platform goes into the outbox
         * in the same statement, and is dropped for a redelivery */
        if (ack && outbox) {
            char *call = json_dumps(ack, JSON_COMPACT);
            int64_t *call_id = pl_outbox_stage_call(outbox, it->msg->bot, channel, user, ack);
            rc = pl_store_inbox_record_answered(store, it->msg->bot, channel, id, user, body, now, call,
                                                &it->inbox_ids[i], call_id, err);
            free(call);
        } else {
            rc = pl_store_inbox_record(store, it->msg->bot, channel, id, user, body, now, &it->inbox_ids[i], err);
        }
        free(fallback_id);
    }
    free(body);
    return rc;
}

static int write_record(pl_store *store, pl_outbox *outbox, item *it, int64_t now, char **err) {
    if (it->writer) {
        json_array_clear(it->events);
        if (it->writer(store, it->writer_ud, it->events, err) != PL_OK) return PL_ERR;
        free(it->inbox_ids);
        it->inbox_ids = calloc(json_array_size(it->events) + 1, sizeof *it->inbox_ids);
        if (!it->inbox_ids) abort();
    }
    size_t i;
    json_t *event;
    json_array_foreach(it->events, i, event) {
        if (write_event(store, outbox, it, i, event, now, err) != PL_OK) return PL_ERR;
    }
    return PL_OK;
}

/* Whether there was anything to erase is known once the batch is settled
 * (PostgreSQL reads it with the COMMIT's outcome): 404 then, in
 * finish_batch. */
static int write_erase(pl_store *store, item *it, char **err) {
    pl_session_key key = {it->msg->bot, it->msg->channel, it->msg->user};
    pl_turn_forget(it->bot, it->msg->channel, it->msg->user);
    it->erased = 0;
    return pl_store_session_erase(store, &key, &it->erased, err);
}

static int write_item(pl_pipeline *pipe, item *it, int64_t now, char **err) {
    switch (it->kind) {
    case ITEM_MESSAGE:
        if (write_message(pipe->store, it, now, err) != PL_OK) return PL_ERR;
        if (it->result.effects && write_jobs(pipe, it, now, err) != PL_OK) return PL_ERR;
        if (json_object_get(it->result.effects, "handoff") && write_handoff(pipe, it, now, err) != PL_OK)
            return PL_ERR;
        return queue_outbound(pipe, it, err);
    case ITEM_ERASE: return write_erase(pipe->store, it, err);
    case ITEM_RECORD: return write_record(pipe->store, pipe->outbox, it, now, err);
    }
    return PL_ERR;
}

/* Writes a batch in one transaction; returns PL_OK or PL_ERR. *later is
 * 1 when the store sent its commit without waiting for the outcome
 * (PostgreSQL: on_store_answer reads it). */
static int write_batch(pl_pipeline *pipe, item *batch, int *later, char **err) {
    pl_store *store = pipe->store;
    *later = 0;
    if (pl_store_begin_batch(store, err) != PL_OK) return PL_ERR;
    int64_t now = pl_now_ms();
    for (item *it = batch; it; it = it->next_in_batch) {
        if (it->status != 200) continue;
        if (write_item(pipe, it, now, err) != PL_OK) {
            pl_store_rollback(store);
            return PL_ERR;
        }
    }
    return pl_store_commit_batch(store, later, err);
}

static void enqueue(pl_pipeline *pipe, item *it);
static item *new_item(pl_pipeline *pipe, item_kind kind, pl_bot *bot, pl_message *msg,
                      pl_deliver_fn deliver, void *ud);

static void item_free(item *it) {
    if (it->later) event_free(it->later);
    pl_turn_result_clear(&it->result);
    pl_message_free(it->msg);
    free(it);
}

static void on_later(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    item *it = arg;
    run_item(it->pipe, it);
}

/* Runs the head item of a mailbox again after ms milliseconds. */
static void run_later(pl_pipeline *pipe, item *it, int64_t ms) {
    if (!it->later) it->later = evtimer_new(pipe->base, on_later, it);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(it->later, &tv);
}

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 5000

/* first, doubled for each try up to the sixth, at most max. */
static int64_t backoff_ms(int64_t first, int tries, int64_t max) {
    int64_t ms = first << (tries < 6 ? tries : 6);
    return ms < max ? ms : max;
}

/* The result of an item that runs no turn: no replies. */
static void no_replies(item *it) {
    it->result.replies = json_array();
    it->result.replies_text = pl_strdup("[]");
}

/* Answers a shopper waiting for one 503: retry after retry_after s. */
static void refuse(pl_pipeline *pipe, item *it, int retry_after, char *error) {
    it->status = 503;
    it->result.retry_after = retry_after;
    no_replies(it);
    it->result.error = error;
    complete(pipe, it, 1);
}

static void retry_later(pl_pipeline *pipe, item *it) {
    pl_turn_result_clear(&it->result);
    int64_t ms = backoff_ms(RETRY_FIRST_MS, it->retries, RETRY_MAX_MS);
    if (it->retries++ == 0)
        pl_warn("[%s] %s/%s: a received message could not be committed; retrying until it is", it->msg->bot,
                it->msg->channel, it->msg->user);
    run_later(pipe, it, ms);
}

/* After its commit, a webhook's new messages go to their mailboxes. */
static void complete_record(pl_pipeline *pipe, item *it, int committed) {
    if (committed) {
        size_t i;
        json_t *event;
        json_array_foreach(it->events, i, event) {
            if (!it->inbox_ids[i]) {
                /* a message with no row of its own: seen before */
                const char *kind = json_string_value(json_object_get(event, "kind"));
                if ((!kind || strcmp(kind, "status") != 0) && json_object_get(event, "user"))
                    pl_metric_add(metrics.duplicates, (const char *[]){it->msg->bot, event_channel(it, event)}, 1);
                continue;
            }
            pl_message *msg = pl_message_from_event(it->msg->bot, event_channel(it, event), event, it->inbox_ids[i]);
            enqueue(pipe, new_item(pipe, ITEM_MESSAGE, it->bot, msg, NULL, NULL));
        }
    }
    pipe->pending--;
    if (it->recorded) it->recorded(committed ? 200 : 503, it->ud);
    json_decref(it->events);
    free(it->inbox_ids);
    pl_turn_result_clear(&it->result);
    pl_message_free(it->msg);
    free(it);
}

/* Delivers a committed item, frees it and starts its session's next one.
 * A message a platform was told is received (it has an inbox row) is never
 * dropped: when it could not be committed, it runs again later, still at
 * the head of its session's mailbox. */
static void complete(pl_pipeline *pipe, item *it, int committed) {
    if (it->kind == ITEM_RECORD) {
        complete_record(pipe, it, committed);
        return;
    }
    int status = committed ? it->status : 503;
    if (status == 503 && it->kind == ITEM_MESSAGE && it->msg->inbox_id) {
        retry_later(pipe, it);
        return;
    }
    if (it->deliver) it->deliver(status, it->msg, &it->result, it->ud);
    mailbox *box = it->box;
    box->head = it->next_in_box;
    if (!box->head) box->tail = NULL;
    if (!box->head) release_session(pipe, box, it);
    item_free(it);
    pipe->pending--;
    if (box->head) run_item(pipe, box->head);
    else mailbox_drop(pipe, box);
}

/* After a batch's commit (and, with a sync thread, its fdatasync): wakes
 * the outbox and the jobs, tells the listeners, delivers the items. */
static void finish_batch(pl_pipeline *pipe, item *batch, int committed, int jobs_touched,
                         pl_outbox_staged *staged, const char *err, int64_t started_us) {
    if (committed)
        pl_metric_observe(metrics.commit_seconds, NULL, (double)(pl_monotonic_us() - started_us) / 1e6);
    for (item *it = batch; committed && it; it = it->next_in_batch)
        if (it->kind == ITEM_ERASE && it->status == 200 && !it->erased) it->status = 404;
    pl_outbox_release(staged, committed);
    if (committed && jobs_touched && pipe->jobs_changed) pipe->jobs_changed(pipe->jobs_ud);
    for (item *it = batch; committed && pipe->committed && it; it = it->next_in_batch) {
        if (it->kind != ITEM_MESSAGE || it->status != 200) continue;
        pl_session_key key = {it->msg->bot, it->msg->channel, it->msg->user};
        pipe->committed(&key, json_object_get(it->result.effects, "handoff") != NULL, pipe->committed_ud);
    }
    pipe->transactions++;
    for (item *it = batch; committed && it; it = it->next_in_batch) pipe->committed_items++;
    if (!committed) {
        pl_error("commit failed, %s: answering 503 (senders retry); received messages run again", err);
        /* the cached sessions are ahead of the store now, and the turn
         * counts may be behind another node's: taken again when they run */
        for (item *it = batch; it; it = it->next_in_batch) {
            if (it->kind == ITEM_RECORD) continue;
            if (it->kind == ITEM_MESSAGE) pl_turn_forget(it->bot, it->msg->channel, it->msg->user);
            release_session(pipe, it->box, it);
        }
    }
    for (item *it = batch; committed && it; it = it->next_in_batch) {
        if (it->kind == ITEM_RECORD || it->status != 200 || it->box->turn < 0) continue;
        if (it->kind == ITEM_ERASE) it->box->turn = 0;
        else if (it->result.session_json) it->box->turn++;
    }
    for (item *it = batch, *next; it; it = next) {
        next = it->next_in_batch;
        complete(pipe, it, committed);
    }
}

static void write_formed_batch(pl_pipeline *pipe);

/* The outcome of the batch whose commit the store sent (PostgreSQL) has
 * come, or part of it: once it is settled the batch is finished, and the
 * batch that formed meanwhile is written. */
static void on_store_answer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_pipeline *pipe = arg;
    flight *f = pipe->awaited;
    if (!f) return;
    int committed = 0;
    char *err = NULL;
    if (!pl_store_batch_poll(pipe->store, 0, &committed, &err)) {
        event_add(pipe->answer_ev, NULL);
        return;
    }
    pipe->awaited = NULL;
    finish_batch(pipe, f->batch, committed, f->jobs_touched, f->staged, err, f->started_us);
    free(err);
    free(f);
    write_formed_batch(pipe);
}

/* A batch the store committed without waiting waits for its outcome on the
 * store's socket; the next batch forms meanwhile (group commit), and is
 * written once this one is settled. */
static void await_store(pl_pipeline *pipe, item *batch, size_t items, pl_outbox_staged *staged, int64_t started_us) {
    flight *f = calloc(1, sizeof *f);
    if (!f) abort();
    *f = (flight){.batch = batch, .items = items, .jobs_touched = pipe->jobs_touched, .staged = staged,
                  .started_us = started_us};
    pipe->awaited = f;
    int fd = pl_store_batch_fd(pipe->store);
    if (!pipe->answer_ev || event_get_fd(pipe->answer_ev) != fd) { /* connected again since */
        if (pipe->answer_ev) event_free(pipe->answer_ev);
        pipe->answer_ev = event_new(pipe->base, fd, EV_READ, on_store_answer, pipe);
    }
    /* the answer may be in libpq's buffer already (read while sending):
     * one look now, then the socket says when more has come */
    event_active(pipe->answer_ev, EV_READ, 0);
}

/* Writes the batch formed so far in one transaction; then either finishes
 * it, or hands its durability to the sync thread and finishes it in
 * on_durable, once the fdatasync covering it is done. While a written
 * batch waits for its fdatasync (--sync full), the next one goes on
 * forming until the sync is done (on_durable writes it) or it is as big as
 * the batch syncing. With turn threads a pass of the loop brings only the
 * turns finished since the last, and writing each pass's few at once made
 * transactions of four messages where a loop running the turns itself made
 * twenty: a transaction writes every page it touches whole, so that was
 * twice the pages, locks and syncs a message. A batch as big as the one
 * syncing is written at once, so that a loop too busy to hear of the sync
 * soon does not keep the sync thread waiting. */
/* Whether the WAL has grown enough that the next write waits for the sync
 * thread's checkpoint (syncer.h); once per PL_SYNCER_HOLD_AGAIN_BYTES of
 * growth at most, so that a checkpoint a reader keeps from finishing does
 * not hold every write. */
static int checkpoint_due(pl_pipeline *pipe) {
    uint64_t frames = pl_store_wal_frames(pipe->store);
    if (frames < pipe->held_frames) pipe->held_frames = 0; /* the WAL started over */
    if (frames * PL_SYNCER_PAGE_BYTES < PL_SYNCER_CHECKPOINT_BYTES) return 0;
    if (pipe->held_frames && (frames - pipe->held_frames) * PL_SYNCER_PAGE_BYTES < PL_SYNCER_HOLD_AGAIN_BYTES) return 0;
    pipe->held_frames = frames;
    return 1;
}

static void write_formed_batch(pl_pipeline *pipe) {
    item *batch = pipe->batch_head;
    if (!batch || pipe->holding || pipe->awaited) return;
    if (pipe->wait_durable && pipe->last_flight && pipe->batch_items < pipe->last_flight->items) return;
    if (pipe->syncer && checkpoint_due(pipe)) {
        pipe->holding = 1;
        pl_syncer_request_checkpoint(pipe->syncer);
        return;
    }
    size_t items = pipe->batch_items;
    pipe->batch_head = pipe->batch_tail = NULL;
    pipe->batch_items = 0;
    char *err = NULL;
    pipe->jobs_touched = 0;
    int later = 0;
    int64_t started_us = pl_monotonic_us();
    int committed = write_batch(pipe, batch, &later, &err) == PL_OK;
    pl_outbox_staged *staged = pipe->outbox ? pl_outbox_take_staged(pipe->outbox) : NULL;
    pl_metric_observe(metrics.batch_items, NULL, (double)items);
    if (committed && later) {
        await_store(pipe, batch, items, staged, started_us);
        return;
    }
    if (committed && pipe->syncer && pipe->wait_durable) {
        flight *f = calloc(1, sizeof *f);
        if (!f) abort();
        *f = (flight){.batch = batch, .commit = pl_store_commits(pipe->store), .items = items,
                      .jobs_touched = pipe->jobs_touched, .staged = staged, .started_us = started_us};
        if (pipe->last_flight) pipe->last_flight->next = f;
        else pipe->flights = f;
        pipe->last_flight = f;
        pl_syncer_request(pipe->syncer);
        return;
    }
    finish_batch(pipe, batch, committed, pipe->jobs_touched, staged, err, started_us);
    free(err);
}

static void on_commit(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    write_formed_batch(arg);
}

/* The batches the last fdatasync covers are delivered, oldest first. */
static void on_durable(void *ud) {
    pl_pipeline *pipe = ud;
    uint64_t synced = pl_syncer_synced(pipe->syncer);
    while (pipe->flights && pipe->flights->commit <= synced) {
        flight *f = pipe->flights;
        pipe->flights = f->next;
        if (!pipe->flights) pipe->last_flight = NULL;
        finish_batch(pipe, f->batch, 1, f->jobs_touched, f->staged, NULL, f->started_us);
        free(f);
    }
    pipe->holding = 0;
    write_formed_batch(pipe);
}

/* --- dispatch -------------------------------------------------------------- */

/* A turn may finish at once or after waiting for I/O; either way its item
 * joins the commit batch then. */
static void on_turn_done(pl_turn_result *result, void *ud) {
    item *it = ud;
    it->result = *result;
    it->status = result->status;
    memset(result, 0, sizeof *result);
    pl_metric_add(metrics.messages, (const char *[]){it->msg->bot, it->msg->channel}, 1);
    pl_metric_observe(metrics.turn_seconds, (const char *[]){it->msg->bot},
                      (double)(pl_monotonic_us() - it->dispatched_us) / 1e6);
    /* a turn gives the replies' text, a failed one may give only a tree */
    if (!it->result.replies_text)
        it->result.replies_text = it->result.replies ? json_dumps(it->result.replies, JSON_COMPACT) : pl_strdup("[]");
    batch_add(it->pipe, it);
}

/* A bot over its share of the loop (usage.h) waits: a message someone
 * waits for an answer to is refused at once with 503 and when to retry
 * (the sender retries), one a platform delivered and was acknowledged
 * runs later. Either way no other bot's shoppers queue behind it. */
static int over_share(pl_pipeline *pipe, item *it) {
    pl_usage *usage = pl_bot_usage(it->bot);
    int64_t wait = pl_usage_wait_ms(usage);
    if (wait == 0) return 0;
    if (it->deliver && !it->msg->inbox_id) {
        pl_usage_held(usage, 1);
        refuse(pipe, it, (int)((wait + 999) / 1000),
               pl_strdupf("bot '%s' is over its share of the server's time", it->msg->bot));
        return 1;
    }
    pl_usage_held(usage, 0);
    run_later(pipe, it, wait);
    return 1;
}

/* A bot file saved a moment ago, its write perhaps still to come: the
 * host's hook (pl_pipeline_before_turn) says how long to wait, and the turn
 * runs then, on the saved code, as over_share's do; the loop goes on. */
static int waits_for_reload(pl_pipeline *pipe, item *it) {
    int64_t wait = pipe->before_turn ? pipe->before_turn(pipe->before_turn_ud) : 0;
    if (wait <= 0) return 0;
    run_later(pipe, it, wait);
    return 1;
}

/* Lets other nodes have the session (its mailbox is empty, or its turn
 * count is to be read again). */
static void release_session(pl_pipeline *pipe, mailbox *box, item *it) {
    it->msg->session_known = 0; /* taken again, read again */
    if (!box->taken) return;
    pl_session_key key = {it->msg->bot, it->msg->channel, it->msg->user};
    pl_store_session_release(pipe->store, &key);
    box->taken = 0;
}

#define TAKE_FIRST_MS 2
#define TAKE_MAX_MS 100
/* How long a shopper waiting for an answer waits for a session another
 * node holds before the answer is 503 (the sender retries). */
#define TAKE_PATIENCE_MS 30000

static void on_taken(int rc, int held, int64_t turn, int handled, const char *state, const char *err, void *ud);

/* The head item's session is this node's to run (pl_store_session_take):
 * 1 when taken. Otherwise the item runs again once the store has answered
 * (on_taken). One node (SQLite) takes every session at once. */
static int take_session(pl_pipeline *pipe, item *it) {
    mailbox *box = it->box;
    if (!pl_store_is_shared(pipe->store)) {
        box->taken = 1;
        box->turn = -1;
        return 1;
    }
    /* a take of an earlier connection of the store's (it dropped: the
     * database let go of the session) holds nothing */
    if (box->taken && box->epoch != pl_store_session_epoch(pipe->store)) box->taken = 0;
    /* a recovered message may be a second copy of one handled meanwhile:
     * the session is taken afresh, and the take says whether it was */
    if (box->taken && it->msg->recovered) release_session(pipe, box, it);
    if (box->taken) return 1;
    if (box->taking) return 0;
    box->taking = 1;
    pl_session_key key = {it->msg->bot, it->msg->channel, it->msg->user};
    pl_store_session_take(pipe->store, &key, it->msg->inbox_id, on_taken, it);
    return 0;
}

/* The store's answer for the head item's session. Another node has it, or
 * the store did not answer: the item runs again shortly, and a shopper
 * waiting for an answer gets 503 once that has lasted TAKE_PATIENCE_MS. An
 * inbound message another node already handled is dropped here. */
static void on_taken(int rc, int held, int64_t turn, int handled, const char *state, const char *err, void *ud) {
    item *it = ud;
    pl_pipeline *pipe = it->pipe;
    mailbox *box = it->box;
    box->taking = 0;
    if (rc == PL_OK && held) {
        box->taken = 1;
        box->epoch = pl_store_session_epoch(pipe->store);
        box->take_tries = 0;
        box->turn = turn;
        it->msg->recovered = 0;
        if (handled) {
            pl_info("[%s] %s/%s: message %lld was handled on another node", it->msg->bot, it->msg->channel,
                    it->msg->user, (long long)it->msg->inbox_id);
            /* no turn reads the session now: the next one must not find a
             * copy kept before another node's turns */
            pl_turn_forget(it->bot, it->msg->channel, it->msg->user);
            no_replies(it);
            complete(pipe, it, 1);
            return;
        }
        /* the turn starts from the session as taken, never a kept copy */
        free(it->msg->stored_session);
        it->msg->stored_session = state ? pl_strdup(state) : NULL;
        it->msg->session_known = 1;
        run_item(pipe, it);
        return;
    }
    if (rc != PL_OK && box->take_tries == 0)
        pl_warn("[%s] %s/%s: %s; trying again", it->msg->bot, it->msg->channel, it->msg->user, err);
    int64_t ms = backoff_ms(TAKE_FIRST_MS, box->take_tries++, TAKE_MAX_MS);
    if (it->deliver && !it->msg->inbox_id && box->take_tries * TAKE_MAX_MS > TAKE_PATIENCE_MS) {
        box->take_tries = 0;
        refuse(pipe, it, 1, pl_strdup("the conversation is busy on another node"));
        return;
    }
    run_later(pipe, it, ms);
}

/* Handles the head of a mailbox: runs its turn (or prepares its erasure)
 * and adds it to the commit batch. */
static void run_item(pl_pipeline *pipe, item *it) {
    it->status = 200;
    if (!take_session(pipe, it)) return;
    if (it->kind == ITEM_ERASE) {
        no_replies(it);
        batch_add(pipe, it);
        return;
    }
    if (waits_for_reload(pipe, it) || over_share(pipe, it)) return;
    it->dispatched_us = pl_monotonic_us();
    pl_turn_dispatch(it->bot, it->msg, pipe->store, on_turn_done, it);
}

static void enqueue(pl_pipeline *pipe, item *it) {
    it->box = mailbox_get(pipe, session_key(it->msg->bot, it->msg->channel, it->msg->user));
    it->next_in_box = NULL;
    int idle = it->box->head == NULL;
    if (it->box->tail) it->box->tail->next_in_box = it;
    else it->box->head = it;
    it->box->tail = it;
    pipe->pending++;
    if (idle) run_item(pipe, it);
}

static item *new_item(pl_pipeline *pipe, item_kind kind, pl_bot *bot, pl_message *msg,
                      pl_deliver_fn deliver, void *ud) {
    item *it = calloc(1, sizeof *it);
    if (!it) abort();
    it->pipe = pipe;
    it->kind = kind;
    it->bot = bot;
    it->msg = msg;
    it->deliver = deliver;
    it->ud = ud;
    return it;
}

void pl_pipeline_before_turn(pl_pipeline *pipe, int64_t (*before_turn)(void *ud), void *ud) {
    pipe->before_turn = before_turn;
    pipe->before_turn_ud = ud;
}

void pl_pipeline_post(pl_pipeline *pipe, pl_bot *bot, pl_message *msg, pl_deliver_fn deliver,
                      void *ud) {
    enqueue(pipe, new_item(pipe, ITEM_MESSAGE, bot, msg, deliver, ud));
}

void pl_pipeline_erase(pl_pipeline *pipe, pl_bot *bot, const char *channel, const char *user,
                       pl_deliver_fn deliver, void *ud) {
    pl_message *msg = pl_message_new(pl_bot_name(bot), channel, user);
    enqueue(pipe, new_item(pipe, ITEM_ERASE, bot, msg, deliver, ud));
}

size_t pl_pipeline_pending(const pl_pipeline *pipe) { return pipe->pending; }

void pl_pipeline_set_outbox(pl_pipeline *pipe, pl_outbox *outbox) { pipe->outbox = outbox; }

/* Another node committed lines of a session: the same listeners hear of it. */
static void on_heard(const pl_session_key *key, int handoff, void *ud) {
    pl_pipeline *pipe = ud;
    if (pipe->committed) pipe->committed(key, handoff, pipe->committed_ud);
}

void pl_pipeline_on_committed(pl_pipeline *pipe, pl_committed_fn fn, void *ud) {
    pipe->committed = fn;
    pipe->committed_ud = ud;
    if (!fn || pipe->listening || !pl_store_is_shared(pipe->store)) return;
    char *err = NULL;
    if (pl_store_listen(pipe->store, pipe->base, on_heard, pipe, &err) == PL_OK) pipe->listening = 1;
    else pl_warn("streams will not hear of other nodes' commits: %s", err);
    free(err);
}

void pl_pipeline_on_jobs(pl_pipeline *pipe, void (*changed)(void *ud), void *ud) {
    pipe->jobs_changed = changed;
    pipe->jobs_ud = ud;
}

/* A pending record item of events (stolen). */
static item *new_record(pl_pipeline *pipe, pl_bot *bot, const char *channel, json_t *events, pl_recorded_fn done,
                        void *ud) {
    item *it = new_item(pipe, ITEM_RECORD, bot, pl_message_new(pl_bot_name(bot), channel, "-"), NULL, ud);
    it->events = events;
    it->inbox_ids = calloc(json_array_size(events) + 1, sizeof *it->inbox_ids);
    if (!it->inbox_ids) abort();
    it->recorded = done;
    it->status = 200;
    no_replies(it);
    pipe->pending++;
    return it;
}

/* A record whose writer reads what it writes (a payment confirmation, a
 * merchant's update, a job fired), on a database server: its own
 * transaction on the store's thread, whose reads do not hold the loop (in a
 * batch they would); the events' messages then go to their mailboxes as a
 * batch's would. Nothing in it answers a platform (no outbox off the loop). */
typedef struct {
    pl_pipeline *pipe;
    item *it;
    int committed;
    char *err;
} record_alone;

static void write_record_alone(pl_store *store, void *ud) {
    record_alone *r = ud;
    r->committed = pl_store_begin(store, &r->err) == PL_OK &&
                   write_record(store, NULL, r->it, pl_now_ms(), &r->err) == PL_OK &&
                   pl_store_commit(store, &r->err) == PL_OK;
    if (!r->committed) pl_store_rollback(store);
}

static void record_written(void *ud) {
    record_alone *r = ud;
    if (r->committed) {
        r->pipe->transactions++;
        r->pipe->committed_items++;
    } else {
        pl_error("[%s] commit failed, %s: answering 503 (senders retry)", r->it->msg->bot, r->err ? r->err : "?");
    }
    complete_record(r->pipe, r->it, r->committed);
    free(r->err);
    free(r);
}

void pl_pipeline_record_with(pl_pipeline *pipe, pl_bot *bot, pl_record_writer write,
                             void *write_ud, pl_recorded_fn done, void *ud) {
    if (pl_store_offload_later(pipe->store)) {
        item *it = new_record(pipe, bot, "-", json_array(), done, ud);
        it->writer = write;
        it->writer_ud = write_ud;
        record_alone *r = calloc(1, sizeof *r);
        if (!r) abort();
        *r = (record_alone){.pipe = pipe, .it = it};
        pl_store_offload(pipe->store, write_record_alone, record_written, r);
        return;
    }
    pl_pipeline_record(pipe, bot, "-", json_array(), done, ud);
    item *it = pipe->batch_tail;
    it->writer = write;
    it->writer_ud = write_ud;
}

void pl_pipeline_record(pl_pipeline *pipe, pl_bot *bot, const char *channel, json_t *events,
                        pl_recorded_fn done, void *ud) {
    batch_add(pipe, new_record(pipe, bot, channel, events, done, ud));
}

void pl_pipeline_stats(const pl_pipeline *pipe, uint64_t *items, uint64_t *transactions) {
    *items = pipe->committed_items;
    *transactions = pipe->transactions;
}

pl_pipeline *pl_pipeline_new(struct event_base *base, pl_store *store) {
    pthread_once(&metrics_once, make_metrics);
    pl_pipeline *pipe = calloc(1, sizeof *pipe);
    if (!pipe) abort();
    pipe->base = base;
    pipe->store = store;
    pipe->nbuckets = 1024;
    pipe->buckets = calloc(pipe->nbuckets, sizeof *pipe->buckets);
    if (!pipe->buckets) abort();
    pipe->commit_ev = event_new(base, -1, 0, on_commit, pipe);
    char *err = NULL;
    /* SQLite's calls run on the loop, its long reads on a thread */
    int rc = pl_store_is_shared(store) ? pl_store_use_loop(store, base, &err)
                                       : pl_store_use_read_thread(store, base, &err);
    if (rc != PL_OK) {
        pl_warn("store: %s", err);
        free(err);
    }
    return pipe;
}

int pl_pipeline_sync_off_loop(pl_pipeline *pipe, int wait_durable, char **err) {
    const char *path = pl_store_defer_sync(pipe->store);
    if (!path) return PL_OK;
    if (pl_syncer_start(pipe->base, pipe->store, path, on_durable, pipe, &pipe->syncer, err) != PL_OK) return PL_ERR;
    pipe->wait_durable = wait_durable;
    return PL_OK;
}

void pl_pipeline_sync_stats(const pl_pipeline *pipe, uint64_t *syncs, uint64_t *checkpoints) {
    *syncs = *checkpoints = 0;
    if (pipe->syncer) pl_syncer_stats(pipe->syncer, syncs, checkpoints);
}

static void free_records(item *batch) {
    for (item *it = batch, *next; it; it = next) {
        next = it->next_in_batch;
        if (it->kind != ITEM_RECORD) continue;
        json_decref(it->events);
        free(it->inbox_ids);
        pl_turn_result_clear(&it->result);
        pl_message_free(it->msg);
        free(it);
    }
}

void pl_pipeline_free(pl_pipeline *pipe) {
    if (!pipe) return;
    /* what was written is synced before the store closes, and the outcome
     * of a commit sent is awaited */
    pl_syncer_stop(pipe->syncer);
    if (pipe->awaited) {
        int committed = 0;
        char *err = NULL;
        pl_store_batch_poll(pipe->store, 1, &committed, &err);
        free(err);
        free_records(pipe->awaited->batch);
        pl_outbox_release(pipe->awaited->staged, 0);
        free(pipe->awaited);
    }
    if (pipe->answer_ev) event_free(pipe->answer_ev);
    /* takes in flight answer no more: their items are freed below */
    pl_store_use_loop(pipe->store, NULL, NULL);
    /* Every item is in its session's mailbox, except webhook records, which
     * are only in the batch. */
    free_records(pipe->batch_head);
    for (flight *f = pipe->flights, *next; f; f = next) {
        next = f->next;
        free_records(f->batch);
        pl_outbox_release(f->staged, 0);
        free(f);
    }
    for (size_t i = 0; i < pipe->nbuckets; i++) {
        for (mailbox *b = pipe->buckets[i], *next; b; b = next) {
            next = b->next_in_bucket;
            for (item *it = b->head, *n; it; it = n) {
                n = it->next_in_box;
                item_free(it);
            }
            free(b->key);
            free(b);
        }
    }
    free(pipe->buckets);
    event_free(pipe->commit_ev);
    free(pipe);
}
