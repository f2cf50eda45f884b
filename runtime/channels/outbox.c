/* outbox: rendering at commit, the per-session send queues, retries and
 * dead letters; see outbox.h. Sending goes through http_client.c; state
 * changes are written back in one transaction per loop turn. */
#define _GNU_SOURCE
#include "outbox.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "base/metrics.h"
#include "event/http_client.h"

typedef struct call {
    struct call *next;
    int64_t id;
    json_t *body; /* the stored call object */
    int attempts;
    int64_t next_at;
    int cleared; /* several nodes: no other node's earlier call waits (earlier_elsewhere) */
    long credential; /* what the adapter's prepare named for the last attempt */
} call;

/* The calls of one session (bot, channel, user), sent one at a time. */
typedef struct queue {
    struct queue *next_queue;
    char *bot, *channel, *user;
    call *head, *tail;
    int in_flight;
    int preparing; /* in_flight: waiting for the adapter's prepare to call back */
    int staged; /* calls queued in a commit not yet durable (pl_outbox_release) */
    int listed; /* a mark while pl_outbox_release goes through its queues */
    struct event *retry_timer;
    struct pl_outbox *outbox;
} queue;

typedef struct update {
    struct update *next;
    int64_t id;
    char state[8];
    int attempts;
    int64_t next_at;
    char *error;
} update;

/* A write-back of state changes, handed to the store's thread. */
typedef struct {
    update *list;
    char *err;
} state_write;

struct pl_outbox {
    struct event_base *base;
    pl_store *store;
    pl_http_client *http;
    pl_outbox_lookup_fn lookup;
    void *lookup_ud;
    queue *queues;
    call *queued;         /* stored in the open transaction, not yet committed */
    queue **queued_into;  /* the queue each of those goes to (parallel list) */
    size_t nqueued, capqueued;
    update *updates;      /* state changes to write back */
    struct event *flush_ev;
    size_t pending;
    pl_outbox_stats stats;
    long retry_ms, retry_max_ms;
    int max_attempts;
    struct event *lease_ev; /* pl_outbox_share's */
    int64_t lease_ms;       /* 0: the only node */
    int64_t lease_ok_ms;    /* monotonic ms of the last renew the database took */
    int renewing;           /* a renewal is with the store's thread */
    pl_metric_reader *depth; /* parley_outbox_depth */
};

/* What /metrics shows of sending, by bot and channel (docs/metrics.md);
 * the depth is read from the queues when asked (outbox_depth). */
static struct {
    pl_metric *sent, *retries, *dead;
} metrics;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void make_metrics(void) {
    metrics.sent = pl_metric_counter("parley_outbox_sent_total", "Outgoing platform calls sent (the platform took them)",
                                     "bot,channel");
    metrics.retries = pl_metric_counter("parley_outbox_retries_total",
                                        "Failed attempts of outgoing platform calls that are tried again", "bot,channel");
    metrics.dead = pl_metric_counter("parley_outbox_dead_letters_total",
                                     "Outgoing platform calls given up (not retried, or out of attempts)", "bot,channel");
}

static void count_call(pl_metric *m, const queue *q) {
    pl_metric_add(m, (const char *[]){q->bot, q->channel}, 1);
}

static long env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    char *end = NULL;
    long n = v ? strtol(v, &end, 10) : 0;
    return v && end != v && n > 0 ? n : fallback;
}

/* --- queues ----------------------------------------------------------------- */

static void send_next(queue *q);
static void schedule_retry(queue *q, long delay_ms);
/* How soon a call waiting for another node's earlier one looks again. */
#define EARLIER_RETRY_MS 20

static queue *queue_for(pl_outbox *o, const char *bot, const char *channel, const char *user) {
    for (queue *q = o->queues; q; q = q->next_queue)
        if (strcmp(q->user, user) == 0 && strcmp(q->channel, channel) == 0 && strcmp(q->bot, bot) == 0)
            return q;
    queue *q = calloc(1, sizeof *q);
    if (!q) abort();
    q->bot = pl_strdup(bot);
    q->channel = pl_strdup(channel);
    q->user = pl_strdup(user);
    q->outbox = o;
    q->next_queue = o->queues;
    o->queues = q;
    return q;
}

static void queue_free(queue *q) {
    for (call *c = q->head, *n; c; c = n) {
        n = c->next;
        json_decref(c->body);
        free(c);
    }
    if (q->retry_timer) event_free(q->retry_timer);
    free(q->bot);
    free(q->channel);
    free(q->user);
    free(q);
}

/* Drops an empty, idle queue (queues live only while they have work). */
static void queue_drop_if_idle(queue *q) {
    if (q->head || q->in_flight || q->staged) return;
    pl_outbox *o = q->outbox;
    queue **link = &o->queues;
    while (*link != q) link = &(*link)->next_queue;
    *link = q->next_queue;
    queue_free(q);
}

static void append(queue *q, call *c) {
    c->next = NULL;
    if (q->tail) q->tail->next = c;
    else q->head = c;
    q->tail = c;
    q->outbox->pending++;
}

/* --- write-back of state changes ------------------------------------------- */

/* On the store's thread (pl_store_offload): the changes in one transaction. */
static void write_states(pl_store *store, void *ud) {
    state_write *w = ud;
    int ok = pl_store_begin(store, &w->err) == PL_OK;
    int64_t now = pl_now_ms();
    for (update *u = w->list; ok && u; u = u->next)
        ok = pl_store_outbox_update(store, u->id, u->state, u->attempts, u->next_at, u->error, now, &w->err) ==
             PL_OK;
    if (ok) ok = pl_store_commit(store, &w->err) == PL_OK;
    if (!ok) pl_store_rollback(store);
}

static void states_written(void *ud) {
    state_write *w = ud;
    if (w->err)
        pl_error("outbox: could not record delivery states (%s); they may be sent again after a restart", w->err);
    free(w->err);
    for (update *u = w->list, *n; u; u = n) {
        n = u->next;
        free(u->error);
        free(u);
    }
    free(w);
}

static void on_flush(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_outbox *o = arg;
    if (!o->updates) return;
    state_write *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->list = o->updates;
    o->updates = NULL;
    pl_store_offload(o->store, write_states, states_written, w);
}

static void record(pl_outbox *o, const call *c, const char *state, const char *error) {
    update *u = calloc(1, sizeof *u);
    if (!u) abort();
    u->id = c->id;
    snprintf(u->state, sizeof u->state, "%s", state);
    u->attempts = c->attempts;
    u->next_at = c->next_at;
    u->error = error ? pl_strdup(error) : NULL;
    u->next = o->updates;
    o->updates = u;
    if (!u->next) event_active(o->flush_ev, EV_WRITE, 0);
}

/* --- sending ---------------------------------------------------------------- */

static void on_retry_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    send_next(arg);
}

/* Pops the head call (sent or dead) and goes on with the next one. */
static void done_with_head(queue *q) {
    call *c = q->head;
    q->head = c->next;
    if (!q->head) q->tail = NULL;
    q->outbox->pending--;
    json_decref(c->body);
    free(c);
    send_next(q);
}

/* The wait before another attempt: the backoff, doubling up to
 * retry_max_ms; or longer when the platform says how long (Retry-After,
 * X's x-rate-limit-reset: at most a day, http_client.c), which is waited in
 * full, so that a platform's rate-limit window does not use up a call's
 * attempts. */
static long backoff_ms(const pl_outbox *o, int attempts, long retry_after) {
    long ms = o->retry_ms;
    for (int i = 1; i < attempts && ms < o->retry_max_ms; i++) ms *= 2;
    if (ms > o->retry_max_ms) ms = o->retry_max_ms;
    return retry_after >= 0 && retry_after * 1000 > ms ? retry_after * 1000 : ms;
}

static void schedule_retry(queue *q, long delay_ms) {
    if (!q->retry_timer) q->retry_timer = evtimer_new(q->outbox->base, on_retry_timer, q);
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    evtimer_add(q->retry_timer, &tv);
}

static void failed_attempt(queue *q, const char *why, int retry, long retry_after);

/* A 2xx answer that says the call failed (pl_channel_adapter.refused):
 * counted as a failed attempt; 1 when it was one. When the bot stopped
 * serving the channel while the call was out, the answer cannot be judged:
 * that is a failed attempt too (retried), never "sent". */
static int refused_in_answer(queue *q, const pl_http_response *res) {
    const pl_channel_adapter *adapter = pl_channel_find(q->channel);
    pl_channel_config cfg;
    if (!adapter || !adapter->refused) return 0;
    if (!q->outbox->lookup(q->bot, q->channel, &cfg, q->outbox->lookup_ud)) {
        failed_attempt(q, "the answer could not be judged: the bot no longer serves this channel", 1, -1);
        return 1;
    }
    int retry = 0;
    long retry_after = -1;
    char *said = NULL;
    int failed = adapter->refused(&cfg, q->head->credential, res->status, res->body, &retry, &retry_after, &said);
    if (!failed) return 0;
    char *why = pl_strdupf("HTTP %ld, refused: %.300s", res->status, said ? said : res->body);
    failed_attempt(q, why, retry, retry_after);
    free(why);
    free(said);
    return 1;
}

static void on_response(const pl_http_response *res, void *arg) {
    queue *q = arg;
    pl_outbox *o = q->outbox;
    call *c = q->head;
    q->in_flight = 0;
    c->attempts++;
    if (res->status >= 200 && res->status < 300) {
        if (refused_in_answer(q, res)) return;
        o->stats.sent++;
        count_call(metrics.sent, q);
        record(o, c, "sent", NULL);
        done_with_head(q);
        return;
    }
    const char *protocol = json_object_get(c->body, "mail_from") ? "SMTP" : "HTTP";
    char *why = res->status ? pl_strdupf("%s %ld: %.300s", protocol, res->status, res->body)
                            : pl_strdupf("%s", res->error ? res->error : "no answer");
    int retry = res->status == 0 || res->status == 429 || res->status >= 500;
    long retry_after = res->retry_after;
    const pl_channel_adapter *adapter = pl_channel_find(q->channel);
    if (res->status && adapter && adapter->retry_hint) adapter->retry_hint(res->status, res->body, &retry, &retry_after);
    failed_attempt(q, why, retry, retry_after);
    free(why);
}

/* A failed attempt of the head call: retried after a backoff, or a dead
 * letter when it may not be retried or has used its attempts. */
static void failed_attempt(queue *q, const char *why, int retry, long retry_after) {
    pl_outbox *o = q->outbox;
    call *c = q->head;
    if (!retry || c->attempts >= o->max_attempts) {
        o->stats.dead++;
        count_call(metrics.dead, q);
        pl_error("[%s] %s/%s: outgoing message %lld is a dead letter after %d attempt%s: %s",
                 q->bot, q->channel, q->user, (long long)c->id, c->attempts,
                 c->attempts == 1 ? "" : "s", why);
        record(o, c, "dead", why);
        done_with_head(q);
        return;
    }
    long delay = backoff_ms(o, c->attempts, retry_after);
    c->next_at = pl_now_ms() + delay;
    o->stats.retried++;
    count_call(metrics.retries, q);
    pl_warn("[%s] %s/%s: sending message %lld failed (%s); retry %d in %ld ms", q->bot, q->channel,
            q->user, (long long)c->id, why, c->attempts, delay);
    record(o, c, "pending", why);
    schedule_retry(q, delay);
}

/* Several nodes: a call of an earlier turn of the same shopper, queued by
 * another node and not yet sent, goes first. The head call is asked about
 * once (the store's thread answers; the queue counts as in flight
 * meanwhile): while such a call waits, this queue looks again soon; once
 * none does, none can come (the later turn ran after the earlier one
 * committed its calls), and the head is sent and retried without asking. */
typedef struct {
    queue *q;
    int64_t id;
    int waiting;
    char *err;
} order_check;

static void check_order(pl_store *store, void *ud) {
    order_check *k = ud;
    queue *q = k->q;
    if (pl_store_outbox_earlier(store, q->bot, q->channel, q->user, k->id, &k->waiting, &k->err) != PL_OK)
        k->waiting = 1;
}

static void order_checked(void *ud) {
    order_check *k = ud;
    queue *q = k->q;
    q->in_flight = 0;
    if (k->err) pl_warn("outbox: %s", k->err);
    if (!k->waiting) q->head->cleared = 1;
    free(k->err);
    free(k);
    if (q->head->cleared) send_next(q);
    else schedule_retry(q, EARLIER_RETRY_MS);
}

static int earlier_elsewhere(queue *q, call *c) {
    if (c->cleared) return 0;
    order_check *k = calloc(1, sizeof *k);
    if (!k) abort();
    *k = (order_check){.q = q, .id = c->id};
    q->in_flight = 1;
    pl_store_offload(q->outbox->store, check_order, order_checked, k);
    return 1;
}

/* The head call could not be started (no credential: an unset variable, a
 * token that cannot be had; no transfer): a failed attempt, retried. */
static void cannot_send(queue *q, const char *why) {
    q->head->attempts++;
    char *failed = pl_strdupf("cannot send: %s", why ? why : "?");
    failed_attempt(q, failed, 1, -1);
    free(failed);
}

/* pl_channel_adapter.prepare's ready: the queue asks again. */
static void on_prepared(void *arg) {
    queue *q = arg;
    q->in_flight = 0;
    q->preparing = 0;
    send_next(q);
}

/* Builds the request for the head call and starts it. */
static void send_next(queue *q) {
    pl_outbox *o = q->outbox;
    call *c = q->head;
    if (!c) {
        queue_drop_if_idle(q);
        return;
    }
    if (q->in_flight) return;
    if (o->lease_ms && pl_monotonic_us() / 1000 - o->lease_ok_ms > o->lease_ms) {
        /* several nodes: this node's hold of its calls has lapsed (the
         * database did not hear it renew), so another may be sending them */
        schedule_retry(q, 1000);
        return;
    }
    int64_t wait = c->next_at - pl_now_ms();
    if (wait > 0) {
        schedule_retry(q, (long)wait);
        return;
    }
    if (o->lease_ms && earlier_elsewhere(q, c)) return;
    pl_channel_config cfg;
    const pl_channel_adapter *adapter = pl_channel_find(q->channel);
    if (!adapter || !o->lookup(q->bot, q->channel, &cfg, o->lookup_ud)) {
        pl_warn("[%s] %s is not served now; message %lld waits", q->bot, q->channel, (long long)c->id);
        schedule_retry(q, o->retry_max_ms);
        return;
    }
    if (adapter->prepare) {
        /* a credential fetched first (WeChat's access token): the queue
         * waits for it as for a call in flight */
        char *why = NULL;
        int ready = adapter->prepare(&cfg, o->http, on_prepared, q, &c->credential, &why);
        if (ready == PL_AGAIN) q->in_flight = q->preparing = 1;
        if (ready == PL_ERR) cannot_send(q, why);
        free(why);
        if (ready != PL_OK) return;
    }
    json_t *headers = json_deep_copy(json_object_get(c->body, "headers"));
    if (!headers) headers = json_object();
    const char *content_type = json_string_value(json_object_get(c->body, "content_type"));
    if (content_type) json_object_set_new(headers, "Content-Type", json_string(content_type));
    char *url = pl_strdupf("%s%s", pl_channel_api_base(&cfg, adapter->default_api_base),
                           json_string_value(json_object_get(c->body, "path")));
    char *user_pwd = NULL, *err = NULL;
    int rc = adapter->authorize ? adapter->authorize(&cfg, headers, &url, &user_pwd, &err) : PL_OK;
    const char *body = json_string_value(json_object_get(c->body, "body"));
    const char *mail_from = json_string_value(json_object_get(c->body, "mail_from"));
    /* a server the bot's manifest named, not the operator */
    int bots_host = adapter->host_from_settings && !pl_channel_api_base(&cfg, NULL);
    pl_http_request req = {
        .method = mail_from ? "MAIL" : json_string_value(json_object_get(c->body, "method")),
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .user_pwd = user_pwd,
        .public_only = bots_host,
        .mail_from = mail_from,
        .mail_rcpt = json_object_get(c->body, "mail_rcpt"),
        .mail_require_tls = bots_host,
    };
    if (rc == PL_OK) rc = pl_http_fetch(o->http, &req, on_response, q, &err);
    if (rc == PL_OK) q->in_flight = 1;
    else cannot_send(q, err);
    free(err);
    free(url);
    free(user_pwd);
    json_decref(headers);
}

/* --- queueing at commit ------------------------------------------------------- */

int64_t *pl_outbox_stage_call(pl_outbox *o, const char *bot, const char *channel, const char *user,
                              const json_t *body) {
    call *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->body = json_deep_copy(body);
    c->next_at = pl_now_ms();
    if (o->nqueued == o->capqueued) {
        o->capqueued = o->capqueued ? o->capqueued * 2 : 16;
        o->queued_into = realloc(o->queued_into, sizeof *o->queued_into * o->capqueued);
        if (!o->queued_into) abort();
    }
    queue *q = queue_for(o, bot, channel, user);
    q->staged++;
    o->queued_into[o->nqueued++] = q;
    c->next = o->queued;
    o->queued = c;
    return &c->id;
}

/* The call's row goes into the open batch; its id is known once the batch
 * is settled (pl_store_outbox_add), before the call is released. */
static int store_call(pl_outbox *o, const char *bot, const char *channel, const char *user,
                      const json_t *body, char **err) {
    char *text = json_dumps(body, JSON_COMPACT);
    int64_t *id = pl_outbox_stage_call(o, bot, channel, user, body);
    int rc = pl_store_outbox_add(o->store, bot, channel, user, text, pl_now_ms(), id, err);
    free(text);
    return rc; /* a failure fails the batch, which drops what it staged */
}

typedef struct {
    pl_outbox *outbox;
    const char *bot;
} payload_ctx;

/* pl_outbound.short_payload: the key is stored in this commit's transaction. */
static char *short_payload(void *arg, const char *payload) {
    payload_ctx *ctx = arg;
    char *key = pl_channel_payload_key(payload);
    char *err = NULL;
    if (pl_store_payload_put(ctx->outbox->store, ctx->bot, key, payload, &err) != PL_OK) {
        pl_error("[%s] cannot store a choice payload: %s", ctx->bot, err);
        free(err);
    }
    return key;
}

/* The platform's messaging window (pl_channel_adapter.window_s): 1 when
 * the turn's replies may not go (logged and counted); a person's words
 * past the window but within agent_window_s go marked outside_window. */
static int past_window(pl_outbox *o, const char *bot, const char *channel, const pl_channel_adapter *adapter,
                       pl_outbound *to) {
    if (!adapter->window_s || to->heard_at <= 0) return 0;
    long long quiet = pl_now_ms() / 1000 - to->heard_at;
    if (quiet <= adapter->window_s) return 0;
    if (to->by_agent && quiet <= adapter->agent_window_s) {
        to->outside_window = 1;
        return 0;
    }
    o->stats.outside_window++;
    pl_warn("[%s] %s/%s: not sent: the shopper last wrote %lld h ago, past %s's %ld-hour messaging window%s",
            bot, channel, to->user, quiet / 3600, channel, adapter->window_s / 3600,
            to->by_agent ? " (and past the window for a person's replies)" : "");
    return 1;
}

int pl_outbox_queue(pl_outbox *o, const char *bot, const char *channel, const pl_outbound *given,
                    const json_t *replies, char **err) {
    const pl_channel_adapter *adapter = pl_channel_find(channel);
    pl_channel_config cfg;
    if (!adapter || adapter->synchronous || !adapter->render || !o->lookup(bot, channel, &cfg, o->lookup_ud))
        return PL_OK;
    payload_ctx ctx = {o, bot};
    pl_outbound to_with_map = *given;
    if (past_window(o, bot, channel, adapter, &to_with_map)) return PL_OK;
    to_with_map.short_payload = short_payload;
    to_with_map.payload_ctx = &ctx;
    const pl_outbound *to = &to_with_map;
    json_t *calls = NULL;
    char *why = NULL;
    if (adapter->render(&cfg, to, replies, &calls, &why) != PL_OK) {
        pl_error("[%s] %s/%s: the replies could not be rendered for %s: %s", bot, channel, to->user,
                 channel, why ? why : "?");
        free(why);
        return PL_OK;
    }
    size_t i;
    json_t *body;
    int rc = PL_OK;
    json_array_foreach(calls, i, body) {
        if ((rc = store_call(o, bot, channel, to->user, body, err)) != PL_OK) break;
    }
    json_decref(calls);
    return rc;
}

struct pl_outbox_staged {
    call **calls;  /* oldest first */
    queue **into;  /* the queue each goes to */
    size_t n;
};

pl_outbox_staged *pl_outbox_take_staged(pl_outbox *o) {
    if (o->nqueued == 0) return NULL;
    pl_outbox_staged *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->n = o->nqueued;
    s->calls = calloc(s->n, sizeof *s->calls);
    s->into = malloc(sizeof *s->into * s->n);
    if (!s->calls || !s->into) abort();
    /* o->queued is newest first; queued_into is oldest first */
    call *c = o->queued;
    for (size_t i = s->n; i-- > 0; c = c->next) s->calls[i] = c;
    memcpy(s->into, o->queued_into, sizeof *s->into * s->n);
    o->queued = NULL;
    o->nqueued = 0;
    return s;
}

void pl_outbox_release(pl_outbox_staged *s, int committed) {
    if (!s) return; /* nothing queued in that commit */
    for (size_t i = 0; i < s->n; i++) {
        /* a call staged for a row the commit did not make (an ack of a
         * redelivery) is dropped like one of a rollback */
        if (committed && s->calls[i]->id) append(s->into[i], s->calls[i]);
        else {
            json_decref(s->calls[i]->body);
            free(s->calls[i]);
        }
    }
    /* a queue stays while any of its calls here is still to be sent: one
     * listed twice must outlive the first send_next (which may empty it) */
    if (committed)
        for (size_t i = 0; i < s->n; i++) send_next(s->into[i]);
    for (size_t i = 0; i < s->n; i++) s->into[i]->staged--;
    /* each queue once (it may be listed several times, and is freed by
     * the first drop) */
    size_t unique = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->into[i]->listed) continue;
        s->into[i]->listed = 1;
        s->into[unique++] = s->into[i];
    }
    for (size_t i = 0; i < unique; i++) {
        s->into[i]->listed = 0;
        queue_drop_if_idle(s->into[i]);
    }
    free(s->calls);
    free(s->into);
    free(s);
}

static int holds_call(const pl_outbox *o, int64_t id) {
    for (const queue *q = o->queues; q; q = q->next_queue)
        for (const call *c = q->head; c; c = c->next)
            if (c->id == id) return 1;
    return 0;
}

/* Queues the stored calls this node is to send (rows of
 * pl_store_outbox_pending: all of them, or with several nodes those no live
 * node holds) and starts sending; how many it took. */
static long take_rows(pl_outbox *o, json_t *rows) {
    size_t i;
    json_t *row;
    long taken = 0;
    json_array_foreach(rows, i, row) {
        /* a call of this node's that it still has (several nodes: the store
         * gives back this node's own calls too once they are a lease old,
         * for those a commit of unknown outcome left behind) */
        if (holds_call(o, json_integer_value(json_object_get(row, "id")))) continue;
        taken++;
        queue *q = queue_for(o, json_string_value(json_object_get(row, "bot")),
                             json_string_value(json_object_get(row, "channel")),
                             json_string_value(json_object_get(row, "user")));
        call *c = calloc(1, sizeof *c);
        if (!c) abort();
        c->id = json_integer_value(json_object_get(row, "id"));
        c->body = json_incref(json_object_get(row, "call"));
        c->attempts = (int)json_integer_value(json_object_get(row, "attempts"));
        c->next_at = json_integer_value(json_object_get(row, "next_at"));
        append(q, c);
    }
    for (queue *q = o->queues, *next; q; q = next) {
        next = q->next_queue;
        send_next(q);
    }
    return taken;
}

int pl_outbox_resume(pl_outbox *o, char **err) {
    json_t *rows = NULL;
    if (pl_store_outbox_pending(o->store, &rows, err) != PL_OK) return PL_ERR;
    long taken = take_rows(o, rows);
    json_decref(rows);
    if (taken > 0) pl_info("outbox: resuming %ld outgoing message%s", taken, taken == 1 ? "" : "s");
    return PL_OK;
}

/* Several nodes: every third of a lease, this node renews its hold of the
 * calls it has, and takes over those of a node that stopped renewing (on
 * the store's thread, one renewal at a time). */
typedef struct {
    pl_outbox *outbox;
    int renewed;
    json_t *rows;
    char *err;
} lease_renewal;

static void renew_lease(pl_store *store, void *ud) {
    lease_renewal *r = ud;
    r->renewed = pl_store_outbox_renew(store, 0, &r->err) == PL_OK;
    if (r->renewed && pl_store_outbox_pending(store, &r->rows, &r->err) != PL_OK) r->rows = NULL;
}

static void lease_renewed(void *ud) {
    lease_renewal *r = ud;
    pl_outbox *o = r->outbox;
    o->renewing = 0;
    if (r->renewed) o->lease_ok_ms = pl_monotonic_us() / 1000;
    long taken = r->rows ? take_rows(o, r->rows) : 0;
    if (r->err) pl_warn("outbox: %s", r->err);
    else if (taken > 0)
        pl_info("outbox: took over %ld outgoing message%s of a node that stopped", taken, taken == 1 ? "" : "s");
    json_decref(r->rows);
    free(r->err);
    free(r);
}

static void on_lease(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_outbox *o = arg;
    if (o->renewing) return;
    lease_renewal *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->outbox = o;
    o->renewing = 1;
    pl_store_offload(o->store, renew_lease, lease_renewed, r);
}

void pl_outbox_share(pl_outbox *o, int64_t lease_ms) {
    o->lease_ms = lease_ms;
    o->lease_ok_ms = pl_monotonic_us() / 1000;
    if (o->lease_ev) event_free(o->lease_ev);
    o->lease_ev = event_new(o->base, -1, EV_PERSIST, on_lease, o);
    int64_t every = lease_ms / 3 > 0 ? lease_ms / 3 : 1;
    struct timeval tv = {(time_t)(every / 1000), (suseconds_t)(every % 1000) * 1000};
    event_add(o->lease_ev, &tv);
}

size_t pl_outbox_pending(const pl_outbox *o) { return o->pending; }
pl_outbox_stats pl_outbox_get_stats(const pl_outbox *o) { return o->stats; }

/* parley_outbox_depth: the calls queued or in flight here, per bot and
 * channel (the queues are few: one a session with calls to send). */
static void outbox_depth(pl_metric_out *out, void *ud) {
    pl_outbox *o = ud;
    const queue **seen = NULL;
    size_t *depth = NULL, n = 0, cap = 0;
    for (const queue *q = o->queues; q; q = q->next_queue) {
        size_t calls = 0;
        for (const call *c = q->head; c; c = c->next) calls++;
        size_t i = 0;
        while (i < n && (strcmp(seen[i]->bot, q->bot) != 0 || strcmp(seen[i]->channel, q->channel) != 0)) i++;
        if (i == n) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                seen = realloc(seen, sizeof *seen * cap);
                depth = realloc(depth, sizeof *depth * cap);
                if (!seen || !depth) abort();
            }
            seen[n] = q;
            depth[n++] = 0;
        }
        depth[i] += calls;
    }
    for (size_t i = 0; i < n; i++) pl_metric_sample(out, (const char *[]){seen[i]->bot, seen[i]->channel}, (double)depth[i]);
    free(seen);
    free(depth);
}

pl_outbox *pl_outbox_new(struct event_base *base, pl_store *store, pl_http_client *http,
                         pl_outbox_lookup_fn lookup, void *ud) {
    pthread_once(&metrics_once, make_metrics);
    pl_outbox *o = calloc(1, sizeof *o);
    if (!o) abort();
    o->base = base;
    o->store = store;
    o->http = http;
    o->lookup = lookup;
    o->lookup_ud = ud;
    o->flush_ev = event_new(base, -1, 0, on_flush, o);
    o->retry_ms = env_long("PARLEY_OUTBOX_RETRY_MS", 1000);
    o->retry_max_ms = env_long("PARLEY_OUTBOX_RETRY_MAX_MS", 300000);
    o->max_attempts = (int)env_long("PARLEY_OUTBOX_MAX_ATTEMPTS", 8);
    o->depth = pl_metric_reader_add("parley_outbox_depth",
                                    "Outgoing platform calls this node has queued or in flight, by bot and channel",
                                    PL_METRIC_GAUGE, "bot,channel", outbox_depth, o);
    return o;
}

void pl_outbox_free(pl_outbox *o) {
    if (!o) return;
    pl_metric_reader_remove(o->depth);
    if (o->updates) on_flush(-1, 0, o);
    if (o->lease_ev) {
        /* what this node did not send, another takes over at once */
        char *err = NULL;
        if (pl_store_outbox_renew(o->store, 1, &err) != PL_OK) pl_warn("outbox: %s", err);
        free(err);
        event_free(o->lease_ev);
    }
    for (queue *q = o->queues, *n; q; q = n) {
        n = q->next_queue;
        /* a prepare's ready must not run into the freed queue */
        const pl_channel_adapter *adapter = q->preparing ? pl_channel_find(q->channel) : NULL;
        if (adapter && adapter->forget) adapter->forget(q);
        queue_free(q);
    }
    for (call *c = o->queued, *n; c; c = n) {
        n = c->next;
        json_decref(c->body);
        free(c);
    }
    free(o->queued_into);
    event_free(o->flush_ev);
    free(o);
}
