/* commerce: orders, confirmations, merchant updates and live stock; see
 * commerce.h. Writes that must be atomic with the shopper's event go
 * through pl_pipeline_record_with; the order itself is created at once,
 * because the provider needs its number before the turn can go on. */
#define _GNU_SOURCE
#include "commerce.h"

#include <lauxlib.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "core/turn.h"
#include "sandbox/json_lua.h"

struct pl_commerce {
    pl_store *store;
    pl_pipeline *pipe;
    pl_http_client *http;
    char *public_base;
};

pl_commerce *pl_commerce_new(pl_store *store, pl_pipeline *pipe, pl_http_client *http,
                             const char *public_base) {
    pl_commerce *c = calloc(1, sizeof *c);
    if (!c) abort();
    *c = (pl_commerce){store, pipe, http, pl_strdup(public_base)};
    return c;
}

void pl_commerce_free(pl_commerce *c) {
    if (!c) return;
    free(c->public_base);
    free(c);
}

const char *pl_commerce_public_base(const pl_commerce *c) { return c->public_base; }
pl_store *pl_commerce_store(pl_commerce *c) { return c->store; }

static json_t *empty_settings;

const pl_payment_provider *pl_commerce_provider(pl_commerce *c, pl_bot *bot, pl_payment_ctx *ctx,
                                                char **err) {
    const json_t *settings = json_object_get(pl_bot_manifest(bot), "payments");
    if (!json_is_object(settings)) {
        if (!empty_settings) empty_settings = json_object();
        settings = empty_settings;
    }
    const char *name = json_string_value(json_object_get(settings, "provider"));
    pl_channel_config cfg = {pl_bot_name(bot), "payments", settings};
    /* "auto": Stripe once its secret key is set, the test provider until then */
    if (name && strcmp(name, "auto") == 0) name = pl_channel_setting(&cfg, "secret_key") ? "stripe" : "test";
    const pl_payment_provider *p = pl_payments_find(name ? name : "test");
    if (!p) {
        pl_fail(err, "bot.json: payments.provider '%s' is not a provider parley has (test, stripe)", name);
        return NULL;
    }
    *ctx = (pl_payment_ctx){{pl_bot_name(bot), "payments", settings}, c->public_base, c->http};
    return p;
}

json_t *pl_commerce_tidy_order(json_t *order) {
    const char *key;
    json_t *value;
    void *tmp;
    json_object_foreach_safe(order, tmp, key, value) {
        if (json_is_null(value)) json_object_del(order, key);
    }
    json_object_del(order, "token");
    return order;
}

/* --- stock ----------------------------------------------------------------------- */

json_t *pl_commerce_line_keys(const json_t *line) {
    const char *sku = json_string_value(json_object_get(line, "sku"));
    json_t *keys = json_pack("[s]", sku);
    const char *name;
    json_t *value;
    json_object_foreach(json_object_get(line, "options"), name, value) {
        json_t *values = json_is_array(value) ? json_incref(value) : json_pack("[O]", value);
        size_t i;
        json_t *v;
        json_array_foreach(values, i, v) {
            if (!json_is_string(v)) continue;
            char *key = pl_strdupf("%s/%s=%s", sku, name, json_string_value(v));
            json_array_append_new(keys, json_string(key));
            free(key);
        }
        json_decref(values);
    }
    return keys;
}

/* --- confirmations ---------------------------------------------------------------- */

typedef struct {
    pl_commerce *commerce;
    pl_bot *bot;
    json_t *confirmations; /* or, for an update: {"order_id", "status", "tracking_url"} */
    json_t *problems;      /* strings */
    json_t *stock_left;    /* key -> units left, applied to the bot's live stock after the commit */
    int not_found;
    int conflict; /* an update the order's state does not allow (409) */
    pl_applied_fn done;
    void *ud;
} apply_job;

static void problem(apply_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(apply_job *job, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *text = pl_vstrdupf(fmt, ap);
    va_end(ap);
    pl_error("[%s] payment: %s", pl_bot_name(job->bot), text);
    json_array_append_new(job->problems, json_string(text));
    free(text);
}

/* The order a confirmation names: its "order_id", else its provider "ref". */
static json_t *confirmed_order(apply_job *job, pl_store *store, const json_t *conf, char **err, int *failed) {
    int64_t id = json_integer_value(json_object_get(conf, "order_id"));
    const char *ref = json_string_value(json_object_get(conf, "ref"));
    json_t *order = NULL;
    *failed = 0;
    if (!id && ref && pl_store_order_by_ref(store, pl_bot_name(job->bot), ref, &id, err) != PL_OK) *failed = 1;
    if (!*failed && id && pl_store_order_get(store, pl_bot_name(job->bot), id, &order, err) != PL_OK) *failed = 1;
    return order;
}

/* A confirmation with an amount or currency must match the order exactly. */
static int amounts_match(const json_t *conf, const json_t *order) {
    json_t *amount = json_object_get(conf, "amount");
    const char *currency = json_string_value(json_object_get(conf, "currency"));
    if (amount && json_integer_value(amount) != json_integer_value(json_object_get(order, "total"))) return 0;
    if (currency && strcasecmp(currency, json_string_value(json_object_get(order, "currency"))) != 0) return 0;
    return 1;
}

/* Paid: the stock the lines take and the discount code's use. */
static int take_for_paid(apply_job *job, pl_store *store, const json_t *order, char **err) {
    const char *bot = pl_bot_name(job->bot);
    size_t i;
    json_t *line;
    json_array_foreach(json_object_get(order, "lines"), i, line) {
        json_t *keys = pl_commerce_line_keys(line);
        size_t k;
        json_t *key;
        json_array_foreach(keys, k, key) {
            int64_t left = 0;
            int tracked = 0;
            if (pl_store_stock_take(store, bot, json_string_value(key), json_integer_value(json_object_get(line, "qty")),
                                    &left, &tracked, err) != PL_OK) {
                json_decref(keys);
                return PL_ERR;
            }
            if (!tracked) continue;
            json_object_set_new(job->stock_left, json_string_value(key), json_integer(left));
            if (left < 0) pl_warn("[%s] order %lld oversold %s (%lld left)", bot,
                                  (long long)json_integer_value(json_object_get(order, "id")), json_string_value(key), (long long)left);
        }
        json_decref(keys);
    }
    const char *code = json_string_value(json_object_get(order, "discount_code"));
    int fresh = 0;
    if (code && pl_store_discount_use(store, bot, code, json_string_value(json_object_get(order, "user")),
                                      json_integer_value(json_object_get(order, "id")), pl_now_ms(), &fresh, err) != PL_OK)
        return PL_ERR;
    return PL_OK;
}

/* An order whose shopper was erased (pl_store_session_erase cleared its
 * token; every order is made with one): nobody is left to tell of it. */
static int shopper_erased(const json_t *order) {
    const char *token = json_string_value(json_object_get(order, "token"));
    return !token || !*token;
}

/* The event that tells the shopper's session. */
static json_t *order_event(const json_t *order, const char *type, const char *status, const char *key_suffix) {
    json_t *event = json_pack("{s:s, s:s, s:o}", "type", type, "status", status, "order",
                              pl_commerce_tidy_order(json_deep_copy(order)));
    char *id = pl_strdupf("order:%lld:%s", (long long)json_integer_value(json_object_get(order, "id")), key_suffix);
    json_t *msg = json_pack("{s:s, s:s, s:O, s:O, s:o}", "kind", "message", "id", id, "user",
                            json_object_get(order, "user"), "channel", json_object_get(order, "channel"),
                            "event", event);
    free(id);
    return msg;
}

static int apply_one(apply_job *job, pl_store *store, const json_t *conf, json_t *events, char **err) {
    const char *status = json_string_value(json_object_get(conf, "status"));
    const char *from, *to;
    if (!pl_payments_transition(status, &from, &to)) {
        problem(job, "a confirmation with an unknown status '%s'", status ? status : "(none)");
        return PL_OK;
    }
    /* a page that closes once the order is decided (the test provider's) */
    if (json_is_true(json_object_get(conf, "only_if_pending"))) from = "pending";
    int failed = 0;
    json_t *order = confirmed_order(job, store, conf, err, &failed);
    if (failed) return PL_ERR;
    if (!order && !json_object_get(conf, "order_id")) {
        /* found by the provider's reference only: a sale parley did not make
         * (the shop's own, on the same account) is acknowledged, not retried */
        pl_info("[%s] payment: a '%s' confirmation for %s matches no order of this bot; ignored", pl_bot_name(job->bot),
                status, json_string_value(json_object_get(conf, "ref")) ? json_string_value(json_object_get(conf, "ref")) : "-");
        return PL_OK;
    }
    if (!order) {
        problem(job, "a '%s' confirmation for an unknown order (%lld / %s) was rejected", status,
                (long long)json_integer_value(json_object_get(conf, "order_id")),
                json_string_value(json_object_get(conf, "ref")) ? json_string_value(json_object_get(conf, "ref")) : "-");
        return PL_OK;
    }
    int rc = PL_OK, changed = 0;
    long long id = (long long)json_integer_value(json_object_get(order, "id"));
    if (!amounts_match(conf, order)) {
        problem(job, "order %lld: a '%s' confirmation for %lld %s does not match the order's %lld %s; the order stays %s",
                id, status, (long long)json_integer_value(json_object_get(conf, "amount")),
                json_string_value(json_object_get(conf, "currency")), (long long)json_integer_value(json_object_get(order, "total")),
                json_string_value(json_object_get(order, "currency")), json_string_value(json_object_get(order, "state")));
    } else if ((rc = pl_store_order_transition(store, id, from, to, json_string_value(json_object_get(conf, "payment_ref")),
                                               pl_now_ms(), &changed, err)) == PL_OK) {
        if (!changed) {
            pl_info("[%s] order %lld: '%s' confirmation ignored (the order is %s)", pl_bot_name(job->bot), id, status,
                    json_string_value(json_object_get(order, "state")));
        } else {
            const char *was = json_string_value(json_object_get(order, "state"));
            if (strcmp(to, "paid") == 0 && strcmp(was, "pending") != 0)
                pl_warn("[%s] order %lld was paid after it had %s: if the shopper also paid a newer order for the same "
                        "cart, refund one", pl_bot_name(job->bot), id, was);
            json_object_set_new(order, "state", json_string(to));
            if (strcmp(to, "paid") == 0) rc = take_for_paid(job, store, order, err);
            if (rc == PL_OK && !shopper_erased(order)) json_array_append_new(events, order_event(order, "payment", to, to));
            pl_info("[%s] order %lld is %s", pl_bot_name(job->bot), id, to);
        }
    }
    json_decref(order);
    return rc;
}

static int write_confirmations(pl_store *store, void *ud, json_t *events, char **err) {
    apply_job *job = ud;
    json_array_clear(job->problems);
    json_object_clear(job->stock_left);
    size_t i;
    json_t *conf;
    json_array_foreach(job->confirmations, i, conf) {
        if (apply_one(job, store, conf, events, err) != PL_OK) return PL_ERR;
    }
    return PL_OK;
}

static void applied(int status, void *ud) {
    apply_job *job = ud;
    if (status == 200) {
        const char *key;
        json_t *left;
        json_object_foreach(job->stock_left, key, left) pl_bot_stock_set(job->bot, key, left);
    }
    char *problems = NULL;
    if (status == 200 && job->not_found) status = 404;
    else if (status == 200 && job->conflict) status = 409;
    else if (status == 200 && json_array_size(job->problems) > 0) status = 400;
    if (json_array_size(job->problems) > 0) {
        size_t i;
        json_t *p;
        json_array_foreach(job->problems, i, p) {
            char *joined = problems ? pl_strdupf("%s; %s", problems, json_string_value(p)) : pl_strdup(json_string_value(p));
            free(problems);
            problems = joined;
        }
    }
    if (job->done) job->done(status, problems, job->ud);
    free(problems);
    json_decref(job->confirmations);
    json_decref(job->problems);
    json_decref(job->stock_left);
    free(job);
}

static apply_job *new_job(pl_commerce *c, pl_bot *bot, json_t *what, pl_applied_fn done, void *ud) {
    apply_job *job = calloc(1, sizeof *job);
    if (!job) abort();
    *job = (apply_job){.commerce = c, .bot = bot, .confirmations = what, .problems = json_array(),
                       .stock_left = json_object(), .done = done, .ud = ud};
    return job;
}

void pl_commerce_confirm(pl_commerce *c, pl_bot *bot, json_t *confirmations, pl_applied_fn done, void *ud) {
    apply_job *job = new_job(c, bot, confirmations, done, ud);
    pl_pipeline_record_with(c->pipe, bot, write_confirmations, job, applied, job);
}

/* --- merchant updates ------------------------------------------------------------- */

/* Whether the order already has this status (and tracking URL): a
 * merchant's retry is applied once; a corrected URL is news. */
static int same_fulfilment(const json_t *order, const char *status, const char *tracking) {
    const char *now = json_string_value(json_object_get(order, "fulfilment"));
    const char *url = json_string_value(json_object_get(order, "tracking_url"));
    return now && strcmp(now, status) == 0 && (!tracking || (url && strcmp(url, tracking) == 0));
}

/* Each applied update of an order is news of its own: its event id carries
 * the order's next update number (not the time: two updates can come in
 * the same millisecond, and the test clock stands still). */
static int next_update_seq(pl_store *store, const json_t *order, int64_t *seq, char **err) {
    char *prefix = pl_strdupf("order:%lld:update:", (long long)json_integer_value(json_object_get(order, "id")));
    int rc = pl_store_inbox_next_seq(store, json_string_value(json_object_get(order, "bot")),
                                     json_string_value(json_object_get(order, "channel")), prefix, seq, err);
    free(prefix);
    return rc;
}

static int write_update(pl_store *store, void *ud, json_t *events, char **err) {
    apply_job *job = ud;
    int64_t seq = 0;
    const json_t *u = job->confirmations;
    int64_t id = json_integer_value(json_object_get(u, "order_id"));
    const char *status = json_string_value(json_object_get(u, "status"));
    const char *tracking = json_string_value(json_object_get(u, "tracking_url"));
    json_t *order = NULL;
    job->not_found = job->conflict = 0;
    json_array_clear(job->problems);
    if (pl_store_order_get(store, pl_bot_name(job->bot), id, &order, err) != PL_OK) return PL_ERR;
    const char *state = json_string_value(json_object_get(order, "state"));
    int rc = PL_OK;
    if (!order) {
        job->not_found = 1;
    } else if (strcmp(state, "paid") != 0) {
        job->conflict = 1;
        json_array_append_new(job->problems, json_sprintf("order %lld is %s, not paid: there is nothing to fulfil",
                                                          (long long)id, state));
    } else if (!same_fulfilment(order, status, tracking) &&
               (rc = pl_store_order_fulfilment(store, id, status, tracking, pl_now_ms(), err)) == PL_OK &&
               !shopper_erased(order) && (rc = next_update_seq(store, order, &seq, err)) == PL_OK) {
        json_object_set_new(order, "fulfilment", json_string(status));
        if (tracking) json_object_set_new(order, "tracking_url", json_string(tracking));
        char *suffix = pl_strdupf("update:%010lld:%s", (long long)seq, status);
        json_t *event = order_event(order, "order_status", status, suffix);
        if (tracking) json_object_set_new(json_object_get(event, "event"), "tracking_url", json_string(tracking));
        json_array_append_new(events, event);
        free(suffix);
    }
    json_decref(order);
    return rc;
}

void pl_commerce_update(pl_commerce *c, pl_bot *bot, int64_t order_id, const char *status,
                        const char *tracking_url, pl_applied_fn done, void *ud) {
    json_t *u = json_pack("{s:I, s:s}", "order_id", (json_int_t)order_id, "status", status);
    if (tracking_url) json_object_set_new(u, "tracking_url", json_string(tracking_url));
    apply_job *job = new_job(c, bot, u, done, ud);
    pl_pipeline_record_with(c->pipe, bot, write_update, job, applied, job);
}
