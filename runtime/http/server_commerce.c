/* server_commerce: the HTTP routes of commerce — the test provider's
 * payment page, providers' webhooks, the orders API for the merchant's
 * systems (behind the bot's API token) and the test-only clock; see
 * server_commerce.h. */
#define _GNU_SOURCE
#include "server_commerce.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "base/common.h"
#include "base/log.h"
#include "base/secrets.h"
#include "commerce/commerce.h"
#include "conn.h"
#include "reply.h"
#include "store_reply.h"

/* A request waiting for a commit; req becomes NULL if the client leaves. */
typedef struct {
    struct evhttp_request *req;
    pl_bot *bot;
    pl_store *store;
    int64_t order_id;
    char *action; /* test page: "pay" or "decline" */
    char *locale; /* test page: the shopper's */
} waiting;

static void on_gone(void *arg) {
    ((waiting *)arg)->req = NULL;
}

static waiting *wait_for(struct evhttp_request *req, pl_bot *bot, pl_store *store, int64_t id) {
    waiting *w = calloc(1, sizeof *w);
    if (!w) abort();
    *w = (waiting){req, bot, store, id, NULL, NULL};
    pl_conn_on_gone(req, on_gone, w);
    return w;
}

/* Releases w; returns the request to answer, or NULL when the client left. */
static struct evhttp_request *done_waiting(waiting *w) {
    struct evhttp_request *req = w->req;
    if (req) pl_conn_forget(req);
    free(w->action);
    free(w->locale);
    free(w);
    return req;
}

static int64_t parse_id(const char *s) {
    char *end = NULL;
    long long id = strtoll(s, &end, 10);
    return end && *end == '\0' && id > 0 ? (int64_t)id : 0;
}

/* The order without what only parley and the provider may see. */
static json_t *public_order(json_t *order) {
    json_object_del(order, "token");
    return order;
}

/* A read of one order (or a shopper's orders) for a request, off the loop
 * (store_reply.h), and what the answer needs besides. */
typedef struct {
    pl_app *app;
    pl_bot *bot;
    int64_t id;
    char *user, *channel;  /* list_orders' */
    char *token, *action;  /* the test page's */
    int post;              /* the test page's: a POST */
    char *problems;        /* after a test action: what the confirmation said */
    char *locale;          /* the test page's: the shopper's (their session's) */
    json_t *found;         /* the order, or the list */
    int failed;            /* the store did not answer */
} order_read;

static order_read *new_order_read(pl_app *app, pl_bot *bot, int64_t id) {
    order_read *r = calloc(1, sizeof *r);
    if (!r) abort();
    *r = (order_read){.app = app, .bot = bot, .id = id};
    return r;
}

static void order_read_free(order_read *r) {
    json_decref(r->found);
    free(r->user);
    free(r->channel);
    free(r->token);
    free(r->action);
    free(r->problems);
    free(r->locale);
    free(r);
}

static void read_order(pl_store *store, void *ud) {
    order_read *r = ud;
    char *err = NULL;
    if (pl_store_order_get(store, pl_bot_name(r->bot), r->id, &r->found, &err) != PL_OK) {
        pl_error("%s", err);
        r->failed = 1;
    }
    free(err);
}


/* The order, and for the test page the locale of the shopper's session
 * (none when the session is gone: the page is then in English). */
static void read_order_for_page(pl_store *store, void *ud) {
    order_read *r = ud;
    read_order(store, r);
    if (!r->found) return;
    pl_session_key key = {json_string_value(json_object_get(r->found, "bot")),
                          json_string_value(json_object_get(r->found, "channel")),
                          json_string_value(json_object_get(r->found, "user"))};
    char *state = NULL, *err = NULL;
    if (key.bot && key.channel && key.user && pl_store_session_get(store, &key, &state, &err) != PL_OK)
        pl_warn("the test payment page of order %lld is in English: %s", (long long)r->id, err);
    json_t *session = state ? json_loads(state, 0, NULL) : NULL;
    const char *locale = json_string_value(json_object_get(session, "locale"));
    r->locale = locale ? pl_strdup(locale) : NULL;
    json_decref(session);
    free(state);
    free(err);
}

/* --- the test provider's page -------------------------------------------------------- */

/* The order the test page's link names, or NULL once answered (503, 404). */
static json_t *order_with_token(struct evhttp_request *req, order_read *r) {
    if (r->failed) {
        pl_reply_error(req, 503, "the store is unavailable");
        return NULL;
    }
    json_t *order = r->found;
    const char *expected = order ? json_string_value(json_object_get(order, "token")) : NULL;
    /* an erased shopper's order has no token (and no page) any more */
    if (!order || !r->token || !expected || !*expected || !pl_channel_signature_equal(r->token, expected) ||
        strcmp(json_string_value(json_object_get(order, "provider")), "test") != 0) {
        pl_reply_error(req, 404, "no such payment (a wrong or expired link)");
        return NULL;
    }
    return order;
}

static void answer_test_action(struct evhttp_request *req, void *ud) {
    order_read *r = ud;
    if (req && (r->failed || !r->found)) {
        pl_reply_error(req, 503, "the payment could not be recorded; please retry");
    } else if (req) {
        const char *state = json_string_value(json_object_get(r->found, "state"));
        int paid = strcmp(r->action, "pay") == 0;
        pl_test_page_note note = strcmp(state, "paid") == 0 ? (paid ? PL_TEST_PAGE_PAID_NOW : PL_TEST_PAGE_ALREADY_PAID)
                                 : strcmp(state, "failed") == 0 ? PL_TEST_PAGE_DECLINED
                                                                : PL_TEST_PAGE_NO_LONGER;
        char *html = pl_payments_test_page(r->found, pl_bot_name(r->bot), r->locale, note, r->problems);
        pl_reply_text(req, 200, html, "text/html; charset=utf-8");
        free(html);
    }
    order_read_free(r);
}

static void after_test_action(int status, const char *problems, void *ud) {
    waiting *w = ud;
    order_read *r = new_order_read(NULL, w->bot, w->order_id);
    r->action = pl_strdup(w->action);
    r->problems = problems ? pl_strdup(problems) : NULL;
    r->locale = w->locale;
    w->locale = NULL;
    pl_store *store = w->store;
    struct evhttp_request *req = done_waiting(w);
    if (!req) order_read_free(r);
    else if (status == 503) answer_test_action(req, r);
    else pl_reply_after_store(req, store, read_order, answer_test_action, r);
}

/* The test page once its order is read: the page (GET), or the shopper's
 * pay or decline applied (POST). */
static void answer_test_page(struct evhttp_request *req, void *ud) {
    order_read *r = ud;
    json_t *order = req ? order_with_token(req, r) : NULL;
    const char *action = r->action;
    if (order && !r->post) {
        char *html = pl_payments_test_page(order, pl_bot_name(r->bot), r->locale, PL_TEST_PAGE_FORM, NULL);
        pl_reply_text(req, 200, html, "text/html; charset=utf-8");
        free(html);
    } else if (order && (!action || (strcmp(action, "pay") != 0 && strcmp(action, "decline") != 0))) {
        pl_reply_error(req, 400, "action must be pay or decline");
    } else if (order && strcmp(json_string_value(json_object_get(order, "state")), "pending") != 0) {
        /* the page closed once the order was decided, as a provider's does */
        pl_test_page_note note = strcmp(json_string_value(json_object_get(order, "state")), "paid") == 0
                                     ? PL_TEST_PAGE_ALREADY_PAID
                                     : PL_TEST_PAGE_NO_LONGER;
        char *html = pl_payments_test_page(order, pl_bot_name(r->bot), r->locale, note, NULL);
        pl_reply_text(req, 200, html, "text/html; charset=utf-8");
        free(html);
    } else if (order) {
        waiting *w = wait_for(req, r->bot, pl_app_store(r->app), r->id);
        w->action = pl_strdup(action);
        w->locale = r->locale; /* the answer's page speaks it too */
        r->locale = NULL;
        json_t *conf = json_pack("[{s:I, s:s, s:O, s:O, s:b}]", "order_id", (json_int_t)r->id, "status",
                                 strcmp(action, "pay") == 0 ? "paid" : "failed", "amount",
                                 json_object_get(order, "total"), "currency", json_object_get(order, "currency"),
                                 "only_if_pending", 1);
        pl_commerce_confirm(pl_app_commerce(r->app), r->bot, conf, after_test_action, w);
    }
    order_read_free(r);
}

static void test_page(pl_app *app, struct evhttp_request *req, pl_bot *bot, int64_t id) {
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    if (cmd == EVHTTP_REQ_GET) {
        pl_request_query(req, &params);
    } else if (cmd == EVHTTP_REQ_POST) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        char *body = pl_strndup(len ? (const char *)evbuffer_pullup(in, -1) : "", len);
        evhttp_parse_query_str(body, &params);
        free(body);
    } else {
        pl_reply_405(req, "GET, POST");
        return;
    }
    order_read *r = new_order_read(app, bot, id);
    const char *token = evhttp_find_header(&params, "token"), *action = evhttp_find_header(&params, "action");
    r->token = token ? pl_strdup(token) : NULL;
    r->action = action ? pl_strdup(action) : NULL;
    r->post = cmd == EVHTTP_REQ_POST;
    evhttp_clear_headers(&params);
    pl_reply_after_store(req, pl_app_store(app), read_order_for_page, answer_test_page, r);
}

/* --- providers' webhooks ------------------------------------------------------------------ */

static void after_webhook(int status, const char *problems, void *ud) {
    struct evhttp_request *req = done_waiting(ud);
    if (!req) return;
    if (status == 200) pl_reply_json(req, 200, json_pack("{s:b}", "received", 1));
    else if (status == 503) pl_reply_error(req, 503, "the confirmation could not be stored; please retry");
    else pl_reply_error(req, 400, "%s", problems ? problems : "rejected");
}

static const char *header_of(const void *ctx, const char *name) {
    return evhttp_find_header((struct evkeyvalq *)ctx, name);
}

static void provider_webhook(pl_app *app, struct evhttp_request *req, pl_bot *bot, const char *name) {
    pl_payment_ctx ctx;
    char *err = NULL;
    const pl_payment_provider *p = pl_commerce_provider(pl_app_commerce(app), bot, &ctx, &err);
    if (!p || strcmp(p->name, name) != 0 || !p->webhook) {
        free(err);
        pl_reply_error(req, 404, "bot '%s' does not take payments through %s", pl_bot_name(bot), name);
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        pl_reply_405(req, "POST");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = pl_strndup(len ? (const char *)evbuffer_pullup(in, -1) : "", len);
    pl_webhook hook = {.method = "POST", .url = evhttp_request_get_uri(req), .body = body, .body_len = len,
                       .header = header_of, .header_ctx = evhttp_request_get_input_headers(req),
                       .now = pl_now_ms() / 1000};
    json_t *confirmations = NULL;
    int status = 400;
    if (p->webhook(&ctx, &hook, &confirmations, &status, &err) != PL_OK) {
        pl_warn("[%s] %s webhook refused (%d): %s", pl_bot_name(bot), name, status, err ? err : "?");
        pl_reply_error(req, status >= 400 ? status : 400, "%s", err ? err : "refused");
    } else {
        waiting *w = wait_for(req, bot, pl_app_store(app), 0);
        pl_commerce_confirm(pl_app_commerce(app), bot, confirmations, after_webhook, w);
    }
    free(err);
    free(body);
}

/* --- Stripe's return pages ------------------------------------------------------------------ */

/* GET /v1/bots/{bot}/payments/stripe/return?order=N&result=success|cancel:
 * where Stripe's hosted page sends the shopper back when bot.json names no
 * success_url / cancel_url. Words only: whether the order is paid is for
 * Stripe's signed webhook to say, never for a redirect anyone can open. */
static void stripe_return_page(struct evhttp_request *req) {
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        pl_reply_405(req, "GET, HEAD");
        return;
    }
    struct evkeyvalq params;
    pl_request_query(req, &params);
    const char *result = evhttp_find_header(&params, "result");
    const char *order = evhttp_find_header(&params, "order");
    int64_t id = order ? parse_id(order) : 0;
    int paid = result && strcmp(result, "success") == 0;
    if (!result || (!paid && strcmp(result, "cancel") != 0)) {
        pl_reply_error(req, 400, "result must be success or cancel");
    } else {
        char *number = id ? pl_strdupf("Order #%lld", (long long)id) : pl_strdup("Your order");
        char *html = pl_strdupf(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>%s</title><style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;"
            "padding:0 1rem}.note{color:#666}</style></head><body><h1>%s</h1><p id=\"result\">%s</p>"
            "<p class=\"note\">%s</p></body></html>\n",
            paid ? "Thank you" : "Payment cancelled", number,
            paid ? "Thank you — you can go back to the chat." : "Payment cancelled — you can go back to the chat.",
            paid ? "The chat confirms your order as soon as the payment is through."
                 : "Nothing was charged. The chat can send you a new payment link.");
        pl_reply_text(req, 200, html, "text/html; charset=utf-8");
        free(html);
        free(number);
    }
    evhttp_clear_headers(&params);
}

void pl_route_payments(pl_app *app, struct evhttp_request *req, pl_bot *bot, char **seg, int n) {
    if (n == 6 && strcmp(seg[4], "test") == 0) {
        int64_t id = parse_id(seg[5]);
        if (!id) pl_reply_error(req, 404, "no such order");
        else test_page(app, req, bot, id);
    } else if (n == 6 && strcmp(seg[4], "stripe") == 0 && strcmp(seg[5], "return") == 0) {
        stripe_return_page(req);
    } else if (n == 5) {
        provider_webhook(app, req, bot, seg[4]);
    } else {
        pl_reply_error(req, 404, "no such endpoint");
    }
}

/* --- the orders API ------------------------------------------------------------------------ */

static int api_allowed(struct evhttp_request *req, pl_bot *bot) {
    const char *env = json_string_value(json_object_get(pl_bot_manifest(bot), "api_token_env"));
    return pl_bearer_allowed(req, env ? pl_secrets_get(pl_bot_name(bot), env) : NULL, env, "orders API of this bot");
}

static void read_orders(pl_store *store, void *ud) {
    order_read *r = ud;
    char *err = NULL;
    if (pl_store_orders_of(store, pl_bot_name(r->bot), r->channel, r->user, 100, &r->found, &err) != PL_OK) {
        pl_error("%s", err);
        r->failed = 1;
    }
    free(err);
}

static void answer_orders(struct evhttp_request *req, void *ud) {
    order_read *r = ud;
    if (req && r->failed) {
        pl_reply_error(req, 503, "the store is unavailable");
    } else if (req) {
        size_t i;
        json_t *o;
        json_array_foreach(r->found, i, o) public_order(o);
        pl_reply_json(req, 200, json_pack("{s:O}", "orders", r->found));
    }
    order_read_free(r);
}

static void list_orders(pl_app *app, struct evhttp_request *req, pl_bot *bot) {
    struct evkeyvalq params;
    pl_request_query(req, &params);
    const char *user = evhttp_find_header(&params, "user"), *channel = evhttp_find_header(&params, "channel");
    if (!user) {
        pl_reply_error(req, 400, "give the shopper: ?user=ID (and &channel=NAME)");
    } else {
        order_read *r = new_order_read(app, bot, 0);
        r->user = pl_strdup(user);
        r->channel = channel ? pl_strdup(channel) : NULL;
        pl_reply_after_store(req, pl_app_store(app), read_orders, answer_orders, r);
    }
    evhttp_clear_headers(&params);
}

/* The order as it is now (after an update: status 200, else the update's
 * answer). */
static void answer_order(struct evhttp_request *req, void *ud) {
    order_read *r = ud;
    if (!req) {
    } else if (r->failed) {
        pl_reply_error(req, 503, "the store is unavailable");
    } else if (!r->found) {
        pl_reply_error(req, 404, "no order %lld for bot '%s'", (long long)r->id, pl_bot_name(r->bot));
    } else {
        pl_reply_json(req, 200, public_order(json_incref(r->found)));
    }
    order_read_free(r);
}

static void get_order(pl_app *app, struct evhttp_request *req, pl_bot *bot, int64_t id) {
    pl_reply_after_store(req, pl_app_store(app), read_order, answer_order, new_order_read(app, bot, id));
}

static void after_update(int status, const char *problems, void *ud) {
    waiting *w = ud;
    int64_t id = w->order_id;
    pl_store *store = w->store;
    pl_bot *bot = w->bot;
    struct evhttp_request *req = done_waiting(w);
    if (!req) return;
    if (status == 404) pl_reply_error(req, 404, "no order %lld for bot '%s'", (long long)id, pl_bot_name(bot));
    else if (status != 200)
        pl_reply_error(req, status, "%s", problems ? problems : "the update could not be stored");
    else pl_reply_after_store(req, store, read_order, answer_order, new_order_read(NULL, bot, id));
}

static void update_order(pl_app *app, struct evhttp_request *req, pl_bot *bot, int64_t id) {
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        pl_reply_405(req, "POST");
        return;
    }
    char *why = NULL;
    json_t *body = pl_read_json_body(req, &why);
    const char *status = body ? json_string_value(json_object_get(body, "status")) : NULL;
    json_t *tracking = body ? json_object_get(body, "tracking_url") : NULL;
    if (!body) pl_reply_error(req, 400, "%s", why);
    else if (!status || !*status || strlen(status) > 40)
        pl_reply_error(req, 400, "\"status\" must be a short string such as \"shipped\"");
    else if (tracking && !json_is_string(tracking))
        pl_reply_error(req, 400, "\"tracking_url\" must be a string");
    else {
        waiting *w = wait_for(req, bot, pl_app_store(app), id);
        pl_commerce_update(pl_app_commerce(app), bot, id, status, json_string_value(tracking), after_update, w);
    }
    free(why);
    json_decref(body);
}

void pl_route_orders(pl_app *app, struct evhttp_request *req, pl_bot *bot, char **seg, int n) {
    if (!api_allowed(req, bot)) return;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    int64_t id = n >= 5 ? parse_id(seg[4]) : 0;
    if (n == 4) {
        if (cmd == EVHTTP_REQ_GET) list_orders(app, req, bot);
        else pl_reply_405(req, "GET");
    } else if (n == 5 && id) {
        if (cmd == EVHTTP_REQ_GET) get_order(app, req, bot, id);
        else pl_reply_405(req, "GET");
    } else if (n == 6 && id && strcmp(seg[5], "status") == 0) {
        update_order(app, req, bot, id);
    } else {
        pl_reply_error(req, 404, "no such endpoint");
    }
}

/* --- the test-only clock ---------------------------------------------------------------------- */

void pl_route_test_clock(pl_app *app, struct evhttp_request *req) {
    int open;
    json_t *body = pl_read_test_body(req, &open);
    json_t *advance = body ? json_object_get(body, "advance") : NULL;
    if (!open) {
        /* (answered) */
    } else if (!json_is_number(advance) || json_number_value(advance) < 0) {
        pl_reply_error(req, 400, "send {\"advance\": seconds}");
    } else {
        pl_clock_advance((int64_t)(json_number_value(advance) * 1000));
        pl_app_clock_moved(app);
        char stamp[40];
        pl_format_time(pl_now_ms(), stamp, sizeof stamp);
        pl_reply_json(req, 200, json_pack("{s:s}", "now", stamp));
    }
    json_decref(body);
}
