/* payment_stripe: the Stripe provider (see payments.h). It owns the making of
 * a Stripe Checkout Session for an order (a form-encoded POST over the shared
 * libcurl client, http_client.h) and the reading of Stripe's webhooks: the
 * Stripe-Signature check and the mapping of four events (and the two
 * asynchronous-payment ones) into confirmations that commerce.c applies.
 * It uses channel.c's helpers (settings, HMAC, constant-time compare),
 * libevent's URI encoding and jansson. Card data never reaches parley: the
 * shopper pays on Stripe's hosted page.
 *
 * Every Stripe field used here is named in Stripe's published documentation:
 *   Create a Checkout Session: POST /v1/checkout/sessions, form-encoded,
 *   mode=payment, line_items[i][price_data][currency|unit_amount|
 *   product_data][name|description]], line_items[i][quantity],
 *   success_url, cancel_url, client_reference_id, metadata[...],
 *   payment_intent_data[metadata][...], expires_at (30 minutes to 24 hours
 *   ahead); the answer is the Session {id, url, amount_total, ...}:
 *     https://docs.stripe.com/api/checkout/sessions/create
 *     https://docs.stripe.com/api/checkout/sessions/object
 *   Secret keys as "Authorization: Bearer sk_...", form-encoded bodies,
 *   errors as {"error": {"message", "type", "code"}}:
 *     https://docs.stripe.com/api/authentication
 *     https://docs.stripe.com/api/errors
 *   Idempotency-Key (same key and parameters within 24 h: the same answer):
 *     https://docs.stripe.com/api/idempotent_requests
 *   Amounts in the currency's smallest unit, currency codes in lower case;
 *   ISK stays a two-decimal currency in the API (100 = 1 króna) although
 *   ISO 4217, and parley, give it no minor unit:
 *     https://docs.stripe.com/currencies
 *     https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds
 *   Webhook signatures: Stripe-Signature "t=<unix time>,v1=<hex>[,v1=...]"
 *   (several v1 while a secret is rolled), v1 = HMAC-SHA256 with the
 *   endpoint's signing secret of "<t>.<raw body>", compared in constant
 *   time; Stripe's libraries allow 300 s between t and now:
 *     https://docs.stripe.com/webhooks#verify-events
 *     https://docs.stripe.com/webhooks/signature
 *   Events: {id, type, data: {object}}; checkout.session.completed /
 *   .async_payment_succeeded / .async_payment_failed / .expired carry the
 *   Session (client_reference_id, metadata, amount_total, currency,
 *   payment_status "paid" | "unpaid" | "no_payment_required",
 *   payment_intent); payment_intent.payment_failed a PaymentIntent
 *   (id, metadata, amount, currency); charge.refunded a Charge
 *   (payment_intent, amount, amount_refunded, refunded, currency, metadata):
 *     https://docs.stripe.com/api/events/types
 *     https://docs.stripe.com/checkout/fulfillment
 *     https://docs.stripe.com/api/payment_intents/object
 *     https://docs.stripe.com/api/charges/object
 *
 * Settings (bot.json "payments", each also as <key>_env): secret_key
 * (required to make links), webhook_secret (required to take webhooks),
 * success_url, cancel_url (default: parley's own return pages),
 * api_version (sent as Stripe-Version), expires_after_minutes (30-1440;
 * default: Stripe's 24 hours). */
#define _GNU_SOURCE
#include "payments.h"

#include <ctype.h>
#include <event2/http.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "base/log.h"

/* The operator's PARLEY_STRIPE_API_BASE replaces it (tests use a fake). */
#define DEFAULT_API_BASE "https://api.stripe.com"
/* Seconds a signed timestamp may be off from our clock (Stripe's libraries' default). */
#define TOLERANCE_S 300
/* Stripe takes at most 100 line items in payment mode. */
#define MAX_LINE_ITEMS 100
/* The one-line description of a discounted order stops growing here. */
#define DESCRIPTION_MAX 400
/* One attempt; a failed first attempt is retried once with the same key. */
#define ATTEMPT_TIMEOUT_MS 8000L

/* --- settings and amounts ------------------------------------------------------ */

/* Stripe's address comes from the operator only (PARLEY_STRIPE_API_BASE,
 * for tests): never from a bot.json, which could send the secret key to
 * any host. */
static const char *api_base(const pl_payment_ctx *ctx) {
    (void)ctx;
    const char *env = getenv("PARLEY_STRIPE_API_BASE");
    return env && *env ? env : DEFAULT_API_BASE;
}

/* base + path without a doubled slash. New string. */
static char *join_url(const char *base, const char *path) {
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/') n--;
    return pl_strdupf("%.*s%s", (int)n, base, path);
}

/* Stripe's amount unit over parley's (ISO 4217) minor unit. */
static long long stripe_scale(const char *currency) {
    return currency && strcasecmp(currency, "ISK") == 0 ? 100 : 1;
}

/* A Stripe amount in parley's minor units; -1 when it cannot be one. */
static long long from_stripe_amount(long long amount, const char *currency) {
    long long scale = stripe_scale(currency);
    return amount % scale == 0 ? amount / scale : -1;
}

static char *case_copy(const char *s, int (*convert)(int)) {
    char *out = pl_strdup(s ? s : "");
    for (char *p = out; *p; p++) *p = (char)convert((unsigned char)*p);
    return out;
}

static long long int_of(const json_t *obj, const char *key) {
    return (long long)json_integer_value(json_object_get(obj, key));
}

/* --- the form ----------------------------------------------------------------- */

/* Appends name=value, both form-encoded, to *body (a new string that grows). */
static void form_add(char **body, const char *name, const char *value) {
    char *n = evhttp_uriencode(name, -1, 1), *v = evhttp_uriencode(value ? value : "", -1, 1);
    if (!n || !v) abort();
    char *joined = pl_strdupf("%s%s%s=%s", *body, **body ? "&" : "", n, v);
    free(n);
    free(v);
    free(*body);
    *body = joined;
}

static void form_addf(char **body, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void form_addf(char **body, const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *value = pl_vstrdupf(fmt, ap);
    va_end(ap);
    form_add(body, name, value);
    free(value);
}

/* One line item priced inline (price_data), so no Product or Price objects
 * need to exist in the merchant's Stripe account. */
static void form_line(char **body, size_t i, const char *currency, const char *name, const char *description,
                      long long unit_amount, long long qty) {
    char key[96];
    snprintf(key, sizeof key, "line_items[%zu][price_data][currency]", i);
    form_add(body, key, currency);
    snprintf(key, sizeof key, "line_items[%zu][price_data][unit_amount]", i);
    form_addf(body, key, "%lld", unit_amount);
    snprintf(key, sizeof key, "line_items[%zu][price_data][product_data][name]", i);
    form_add(body, key, name);
    if (description) {
        snprintf(key, sizeof key, "line_items[%zu][price_data][product_data][description]", i);
        form_add(body, key, description);
    }
    snprintf(key, sizeof key, "line_items[%zu][quantity]", i);
    form_addf(body, key, "%lld", qty);
}

/* "Latte (Large, Oat milk)": the title and the chosen options. New string. */
static char *line_name(const json_t *line) {
    const char *title = json_string_value(json_object_get(line, "title"));
    if (!title || !*title) title = json_string_value(json_object_get(line, "sku"));
    char *name = pl_strdup(title && *title ? title : "Item");
    int n = 0;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(line, "option_titles"), i, o) {
        if (!json_is_string(o)) continue;
        char *next = pl_strdupf("%s%s%s", name, n++ == 0 ? " (" : ", ", json_string_value(o));
        free(name);
        name = next;
    }
    if (n > 0) {
        char *next = pl_strdupf("%s)", name);
        free(name);
        name = next;
    }
    return name;
}

/* The lines can go to Stripe one by one when Stripe's sum of them is
 * exactly the order's total: no discount (Stripe takes no negative line),
 * each line's total is its unit price times its quantity, and Stripe's
 * limit on line items is kept. */
static int itemizable(const json_t *order) {
    const json_t *lines = json_object_get(order, "lines");
    if (int_of(order, "discount") != 0 || json_array_size(lines) == 0 || json_array_size(lines) > MAX_LINE_ITEMS)
        return 0;
    long long sum = 0;
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) {
        long long unit = int_of(line, "unit_price"), qty = int_of(line, "qty");
        if (unit < 0 || qty <= 0 || qty > 1000000 || unit > 100000000000LL || unit * qty != int_of(line, "total"))
            return 0;
        sum += unit * qty;
    }
    return sum == int_of(order, "total");
}

/* "1 × Latte (Large), 1 × Butter Croissant; code WELCOME10": what the one
 * line of a discounted order stands for, shown on Stripe's page. */
static char *order_description(const json_t *order) {
    char *text = pl_strdup("");
    size_t i;
    json_t *line;
    json_array_foreach(json_object_get(order, "lines"), i, line) {
        char *name = line_name(line);
        char *next = pl_strdupf("%s%s%lld × %s", text, *text ? ", " : "", int_of(line, "qty"), name);
        free(name);
        if (strlen(next) > DESCRIPTION_MAX && *text) {
            free(next);
            next = pl_strdupf("%s, …", text);
            free(text);
            text = next;
            break;
        }
        free(text);
        text = next;
    }
    const char *code = json_string_value(json_object_get(order, "discount_code"));
    if (code && int_of(order, "discount") > 0) {
        char *next = pl_strdupf("%s; code %s", text, code);
        free(text);
        text = next;
    }
    return text;
}

/* The line items: the order's own lines when Stripe's sum of them is the
 * order's total; otherwise (a discount, odd rounding, too many lines) one
 * line "Order #N" for the exact total, with the lines in its description.
 * Either way the Session's amount_total is the order's total, which the
 * webhook later checks the paid amount against. */
static void form_lines(char **body, const json_t *order, const char *currency, long long scale) {
    if (itemizable(order)) {
        size_t i;
        json_t *line;
        json_array_foreach(json_object_get(order, "lines"), i, line) {
            char *name = line_name(line);
            form_line(body, i, currency, name, NULL, int_of(line, "unit_price") * scale, int_of(line, "qty"));
            free(name);
        }
        return;
    }
    char *name = pl_strdupf("Order #%lld", int_of(order, "id"));
    char *description = order_description(order);
    form_line(body, 0, currency, name, *description ? description : NULL, int_of(order, "total") * scale, 1);
    free(description);
    free(name);
}

/* success_url / cancel_url: the settings, else parley's own pages. New string. */
static char *return_url(const pl_payment_ctx *ctx, long long id, const char *result) {
    const char *set = pl_channel_setting(&ctx->cfg, strcmp(result, "success") == 0 ? "success_url" : "cancel_url");
    if (set) return pl_strdup(set);
    char *bot = evhttp_uriencode(ctx->cfg.bot, -1, 0);
    char *path = pl_strdupf("/v1/bots/%s/payments/stripe/return?order=%lld&result=%s", bot, id, result);
    char *url = join_url(ctx->public_base ? ctx->public_base : "", path);
    free(path);
    free(bot);
    return url;
}

/* The form body of POST /v1/checkout/sessions for an order (new string), or
 * NULL with *err. The order's number goes everywhere an event can carry it
 * back: client_reference_id, the Session's metadata and, through
 * payment_intent_data, the PaymentIntent's (so payment_intent.payment_failed
 * names it too); metadata[bot] tells this bot's events from other bots' on
 * the same Stripe account. */
static char *session_form(const pl_payment_ctx *ctx, const json_t *order, char **err) {
    long long id = int_of(order, "id");
    const char *currency = json_string_value(json_object_get(order, "currency"));
    json_t *minutes = json_object_get(ctx->cfg.settings, "expires_after_minutes");
    if (!currency || !*currency) {
        pl_fail(err, "order %lld has no currency", id);
        return NULL;
    }
    json_int_t m = json_integer_value(minutes);
    if (minutes && (!json_is_integer(minutes) || m < 30 || m > 1440)) {
        pl_fail(err, "bot.json: payments.expires_after_minutes must be a whole number from 30 to 1440 "
                     "(Stripe's limits)");
        return NULL;
    }
    char *lower = case_copy(currency, tolower), *body = pl_strdup("");
    char *success = return_url(ctx, id, "success"), *cancel = return_url(ctx, id, "cancel");
    form_add(&body, "mode", "payment");
    form_addf(&body, "client_reference_id", "%lld", id);
    form_addf(&body, "metadata[order_id]", "%lld", id);
    form_add(&body, "metadata[bot]", ctx->cfg.bot);
    form_addf(&body, "payment_intent_data[metadata][order_id]", "%lld", id);
    form_add(&body, "payment_intent_data[metadata][bot]", ctx->cfg.bot);
    form_lines(&body, order, lower, stripe_scale(currency));
    form_add(&body, "success_url", success);
    form_add(&body, "cancel_url", cancel);
    if (minutes) form_addf(&body, "expires_at", "%lld", (long long)(pl_now_ms() / 1000 + m * 60));
    free(success);
    free(cancel);
    free(lower);
    return body;
}

/* The Idempotency-Key: the bot and the order's number, so a create that is
 * sent again gets the same Session back; plus a digest of the order's
 * random token, so that a fresh database numbering its orders from 1 again
 * does not collide with the keys of yesterday's orders (Stripe keeps keys
 * for 24 hours and refuses a known key with other parameters). New string. */
static char *idempotency_key(const char *bot, const json_t *order) {
    const char *token = json_string_value(json_object_get(order, "token"));
    char suffix[20] = "";
    if (token && *token) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL);
        suffix[0] = '-';
        for (int i = 0; i < 8; i++) snprintf(suffix + 1 + 2 * i, 3, "%02x", md[i]);
    }
    return pl_strdupf("parley-%s-order-%lld%s", bot, int_of(order, "id"), suffix);
}

/* --- creating the Checkout Session ----------------------------------------------- */

typedef struct {
    pl_http_client *http;
    char *url;
    char *body;
    json_t *headers;
    int retries_left;
    long long order_id;
    long long amount_total; /* what Stripe's amount_total must be */
    pl_link_done_fn done;
    void *ud;
} create_job;

static void create_job_free(create_job *job) {
    free(job->url);
    free(job->body);
    json_decref(job->headers);
    free(job);
}

static void on_created(const pl_http_response *res, void *ud);

static int send_create(create_job *job, char **err) {
    pl_http_request r = {.method = "POST", .url = job->url, .headers = job->headers, .body = job->body,
                         .body_len = strlen(job->body), .timeout_ms = ATTEMPT_TIMEOUT_MS};
    return pl_http_fetch(job->http, &r, on_created, job, err);
}

/* Stripe's error message from an error answer, else the start of the body. New string. */
static char *stripe_error(const pl_http_response *res) {
    json_t *body = json_loadb(res->body, res->body_len, 0, NULL);
    const char *message = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    char *text = message ? pl_strdup(message) : pl_strndup(res->body, res->body_len > 200 ? 200 : res->body_len);
    json_decref(body);
    return text;
}

/* Reads a 2xx answer: the Session's url and id. PL_ERR with *err when it is
 * not a Session for this order's total. */
static int read_session(const create_job *job, const pl_http_response *res, const char **url, const char **id,
                        json_t **session, char **err) {
    *session = json_loadb(res->body, res->body_len, 0, NULL);
    *url = json_string_value(json_object_get(*session, "url"));
    *id = json_string_value(json_object_get(*session, "id"));
    json_t *total = json_object_get(*session, "amount_total");
    if (!*url || !*id || !**url || !**id) return pl_fail(err, "Stripe's answer has no Session id and url");
    if (json_is_integer(total) && json_integer_value(total) != job->amount_total)
        return pl_fail(err, "Stripe's Session totals %lld, not the order's %lld", (long long)json_integer_value(total),
                       job->amount_total);
    return PL_OK;
}

static void on_created(const pl_http_response *res, void *ud) {
    create_job *job = ud;
    char *err = NULL;
    /* A network failure or a 5xx may not have reached Stripe, or may have:
     * the same Idempotency-Key makes one more try safe either way. */
    if ((res->status == 0 || res->status >= 500) && job->retries_left-- > 0 && send_create(job, &err) == PL_OK) return;
    if (err) {
        /* the second try could not start; err says why */
    } else if (res->status == 0) {
        pl_fail(&err, "cannot reach Stripe at %s: %s", job->url, res->error ? res->error : "no answer");
    } else if (res->status < 200 || res->status > 299) {
        char *why = stripe_error(res);
        pl_fail(&err, "Stripe answered %ld to creating the Checkout Session for order %lld: %s", res->status,
                job->order_id, why);
        free(why);
    }
    const char *url = NULL, *id = NULL;
    json_t *session = NULL;
    if (!err && read_session(job, res, &url, &id, &session, &err) == PL_OK) job->done(url, id, NULL, job->ud);
    else job->done(NULL, NULL, err, job->ud);
    json_decref(session);
    free(err);
    create_job_free(job);
}

/* Starts making the Checkout Session; done runs later, once, on the loop.
 * PL_ERR (done not called) when the bot lacks its secret key or the order
 * cannot be sent. */
static int stripe_create_link(const pl_payment_ctx *ctx, const json_t *order, pl_link_done_fn done, void *ud,
                              char **err) {
    const char *key = pl_channel_require(&ctx->cfg, "secret_key", NULL, err);
    if (!key) return PL_ERR;
    if (!ctx->http) return pl_fail(err, "stripe: no HTTP client in this process");
    char *body = session_form(ctx, order, err);
    if (!body) return PL_ERR;
    create_job *job = calloc(1, sizeof *job);
    if (!job) abort();
    const char *currency = json_string_value(json_object_get(order, "currency"));
    char *auth = pl_strdupf("Bearer %s", key);
    char *idem = idempotency_key(ctx->cfg.bot, order);
    *job = (create_job){.http = ctx->http, .url = join_url(api_base(ctx), "/v1/checkout/sessions"), .body = body,
                        .headers = json_pack("{s:s, s:s, s:s}", "Authorization", auth, "Idempotency-Key", idem,
                                             "Content-Type", "application/x-www-form-urlencoded"),
                        .retries_left = 1, .order_id = int_of(order, "id"),
                        .amount_total = int_of(order, "total") * stripe_scale(currency), .done = done, .ud = ud};
    const char *version = pl_channel_setting(&ctx->cfg, "api_version");
    if (version) json_object_set_new(job->headers, "Stripe-Version", json_string(version));
    free(auth);
    free(idem);
    if (send_create(job, err) != PL_OK) {
        create_job_free(job);
        return PL_ERR;
    }
    return PL_OK;
}

/* --- the Stripe-Signature ----------------------------------------------------------- */

/* Parses "t=...,v1=...[,v1=...]" (other schemes such as v0 are skipped):
 * the timestamp and a new array of the v1 signatures. PL_ERR when there is
 * no single numeric t or no v1. */
static int parse_signature(const char *header, long long *t, json_t **v1) {
    char *copy = pl_strdup(header), *save = NULL;
    int have_t = 0, ok = 1;
    *v1 = json_array();
    for (char *item = strtok_r(copy, ",", &save); item && ok; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ') item++;
        char *eq = strchr(item, '=');
        if (!eq) continue;
        *eq = '\0';
        const char *value = eq + 1;
        if (strcmp(item, "t") == 0) {
            char *end = NULL;
            *t = strtoll(value, &end, 10);
            ok = !have_t && *value && strlen(value) <= 12 && end && (*end == '\0' || *end == ' ') && *t > 0;
            have_t = 1;
        } else if (strcmp(item, "v1") == 0 && *value) {
            json_array_append_new(*v1, json_string(value));
        }
    }
    free(copy);
    if (ok && have_t && json_array_size(*v1) > 0) return PL_OK;
    json_decref(*v1);
    *v1 = NULL;
    return PL_ERR;
}

/* Verifies the request's Stripe-Signature with the endpoint's signing
 * secret: some v1 equals HMAC-SHA256("<t>.<body>") (every v1 is compared,
 * each in constant time) and t is within TOLERANCE_S of req->now. On
 * PL_ERR *status is 400 for a missing or malformed header, 401 for a
 * signature or timestamp that does not hold. */
static int verify_signature(const char *secret, const pl_webhook *req, int *status, char **err) {
    const char *header = req->header ? req->header(req->header_ctx, "Stripe-Signature") : NULL;
    long long t = 0;
    json_t *v1 = NULL;
    *status = 400;
    if (!header || !*header) return pl_fail(err, "no Stripe-Signature header: only Stripe's signed events are taken");
    if (parse_signature(header, &t, &v1) != PL_OK)
        return pl_fail(err, "a malformed Stripe-Signature header (expected t=<time>,v1=<signature>)");
    char *prefix = pl_strdupf("%lld.", t);
    size_t plen = strlen(prefix);
    char *signed_payload = malloc(plen + req->body_len + 1);
    if (!signed_payload) abort();
    memcpy(signed_payload, prefix, plen);
    memcpy(signed_payload + plen, req->body, req->body_len);
    signed_payload[plen + req->body_len] = '\0';
    char *expected = pl_channel_hmac_hex("sha256", secret, signed_payload, plen + req->body_len);
    int match = 0;
    size_t i;
    json_t *sig;
    json_array_foreach(v1, i, sig) match |= pl_channel_signature_equal(json_string_value(sig), expected);
    free(expected);
    free(signed_payload);
    free(prefix);
    json_decref(v1);
    *status = 401;
    if (!match)
        return pl_fail(err, "the Stripe-Signature does not match the body "
                            "(is webhook_secret this endpoint's signing secret?)");
    if (t < req->now - TOLERANCE_S)
        return pl_fail(err, "the Stripe-Signature is %lld s old (more than %d s): a replayed or delayed event",
                       req->now - t, TOLERANCE_S);
    if (t > req->now + TOLERANCE_S)
        return pl_fail(err, "the Stripe-Signature is dated %lld s ahead (more than %d s): check the clock",
                       t - req->now, TOLERANCE_S);
    return PL_OK;
}

/* --- events into confirmations --------------------------------------------------------- */

typedef struct {
    const pl_payment_ctx *ctx;
    const char *bot;
    const char *event_id;
    const char *type;
} event_info;

static void ignored(const event_info *ev, const char *why) {
    pl_info("[%s] stripe: event %s (%s) acknowledged, nothing to apply: %s", ev->bot, ev->event_id, ev->type, why);
}

/* Whether an object's metadata says another bot made it (several bots may
 * share one Stripe account, whose events go to every endpoint). */
static int other_bots(const event_info *ev, const json_t *obj) {
    const char *bot = json_string_value(json_object_get(json_object_get(obj, "metadata"), "bot"));
    return bot && strcmp(bot, ev->bot) != 0;
}

/* The order an object's metadata names: *id > 0, or 0 when the object is
 * not one of this bot's (no metadata[bot] and order_id: not made by
 * parley). PL_ERR when metadata[order_id] is not an order number. */
static int metadata_order(const event_info *ev, const json_t *obj, long long *id, char **err) {
    const json_t *meta = json_object_get(obj, "metadata");
    const char *bot = json_string_value(json_object_get(meta, "bot"));
    const char *text = json_string_value(json_object_get(meta, "order_id"));
    *id = 0;
    if (!bot || strcmp(bot, ev->bot) != 0 || !text) return PL_OK;
    char *end = NULL;
    long long n = strtoll(text, &end, 10);
    if (!*text || !end || *end || n <= 0)
        return pl_fail(err, "event %s: metadata.order_id '%s' is not an order number", ev->event_id, text);
    *id = n;
    return PL_OK;
}

/* {"order_id", "status", "amount", "currency"} from an object's amount
 * field (Stripe's units and lower-case currency back to parley's). */
static json_t *confirmation(long long id, const char *status, const json_t *obj, const char *amount_key) {
    const char *currency = json_string_value(json_object_get(obj, "currency"));
    char *upper = case_copy(currency, toupper);
    json_t *conf = json_pack("{s:I, s:s}", "order_id", (json_int_t)id, "status", status);
    if (json_is_integer(json_object_get(obj, amount_key)))
        json_object_set_new(conf, "amount", json_integer(from_stripe_amount(int_of(obj, amount_key), currency)));
    if (currency) json_object_set_new(conf, "currency", json_string(upper));
    free(upper);
    return conf;
}

/* checkout.session.*: the Session's order; "paid" only once Stripe says
 * the money is there (delayed methods finish with async_payment_*). */
static int map_session(const event_info *ev, const json_t *session, const char *status, json_t *out, char **err) {
    long long id = 0;
    if (metadata_order(ev, session, &id, err) != PL_OK) return PL_ERR;
    if (!id) {
        ignored(ev, other_bots(ev, session) ? "another bot's Checkout Session"
                                            : "a Checkout Session parley did not make");
        return PL_OK;
    }
    const char *payment_status = json_string_value(json_object_get(session, "payment_status"));
    if (strcmp(status, "paid") == 0 && (!payment_status || strcmp(payment_status, "paid") != 0)) {
        ignored(ev, "the payment is not complete yet (payment_status is not \"paid\")");
        return PL_OK;
    }
    json_t *conf = confirmation(id, status, session, "amount_total");
    const char *intent = json_string_value(json_object_get(session, "payment_intent"));
    if (strcmp(status, "paid") == 0 && intent) json_object_set_new(conf, "payment_ref", json_string(intent));
    json_array_append_new(out, conf);
    return PL_OK;
}

static int map_completed(const event_info *ev, const json_t *obj, json_t *out, char **err) {
    return map_session(ev, obj, "paid", out, err);
}

static int map_async_failed(const event_info *ev, const json_t *obj, json_t *out, char **err) {
    return map_session(ev, obj, "failed", out, err);
}

static int map_expired(const event_info *ev, const json_t *obj, json_t *out, char **err) {
    return map_session(ev, obj, "expired", out, err);
}

/* --- closing the page of a failed payment ------------------------------------------------ */

/* A declined card leaves Stripe's page open for another try, but the order
 * is now failed and the chat offers a new link; a later success on the old
 * page would find the order failed (commerce.c moves only pending orders to
 * paid) and take money for no order. So the page is closed: the Session of
 * the PaymentIntent is looked up and, if still open, expired. Fire and
 * forget, logged; the webhook's answer does not wait for it. */
typedef struct {
    pl_http_client *http;
    char *base;
    char *bot;
    long long order_id;
    json_t *headers;
} close_job;

static void close_job_free(close_job *job) {
    free(job->base);
    free(job->bot);
    json_decref(job->headers);
    free(job);
}

static void on_expired(const pl_http_response *res, void *ud) {
    close_job *job = ud;
    if (res->status >= 200 && res->status <= 299)
        pl_info("[%s] stripe: closed the payment page of order %lld after its payment failed", job->bot, job->order_id);
    else
        pl_warn("[%s] stripe: could not close the payment page of order %lld (%ld %s)", job->bot, job->order_id,
                res->status, res->error ? res->error : "");
    close_job_free(job);
}

static void on_listed(const pl_http_response *res, void *ud) {
    close_job *job = ud;
    json_t *list = res->status == 200 ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    const json_t *session = json_array_get(json_object_get(list, "data"), 0);
    const char *id = json_string_value(json_object_get(session, "id"));
    const char *status = json_string_value(json_object_get(session, "status"));
    char *err = NULL;
    int started = 0;
    if (id && status && strcmp(status, "open") == 0) {
        char *enc = evhttp_uriencode(id, -1, 0);
        char *path = pl_strdupf("/v1/checkout/sessions/%s/expire", enc);
        char *url = join_url(job->base, path);
        pl_http_request r = {.method = "POST", .url = url, .headers = job->headers, .body = "", .body_len = 0,
                             .timeout_ms = ATTEMPT_TIMEOUT_MS};
        started = pl_http_fetch(job->http, &r, on_expired, job, &err) == PL_OK;
        free(url);
        free(path);
        free(enc);
    }
    if (!started) {
        if (!id || err || res->status != 200)
            pl_warn("[%s] stripe: could not find the payment page of order %lld to close (%ld %s)", job->bot,
                    job->order_id, res->status, err ? err : res->error ? res->error : "");
        close_job_free(job);
    }
    free(err);
    json_decref(list);
}

static void close_checkout(const event_info *ev, const char *intent, long long order_id) {
    const char *key = pl_channel_setting(&ev->ctx->cfg, "secret_key");
    if (!key || !ev->ctx->http || !intent) return;
    close_job *job = calloc(1, sizeof *job);
    if (!job) abort();
    char *auth = pl_strdupf("Bearer %s", key);
    *job = (close_job){ev->ctx->http, pl_strdup(api_base(ev->ctx)), pl_strdup(ev->bot), order_id,
                       json_pack("{s:s, s:s}", "Authorization", auth, "Content-Type",
                                 "application/x-www-form-urlencoded")};
    const char *version = pl_channel_setting(&ev->ctx->cfg, "api_version");
    if (version) json_object_set_new(job->headers, "Stripe-Version", json_string(version));
    char *enc = evhttp_uriencode(intent, -1, 1);
    char *path = pl_strdupf("/v1/checkout/sessions?payment_intent=%s&limit=1", enc);
    char *url = join_url(job->base, path);
    pl_http_request r = {.method = "GET", .url = url, .headers = job->headers, .timeout_ms = ATTEMPT_TIMEOUT_MS};
    char *err = NULL;
    if (pl_http_fetch(job->http, &r, on_listed, job, &err) != PL_OK) {
        pl_warn("[%s] stripe: could not close the payment page of order %lld: %s", ev->bot, order_id, err);
        close_job_free(job);
    }
    free(err);
    free(url);
    free(path);
    free(enc);
    free(auth);
}

/* payment_intent.payment_failed: the PaymentIntent's metadata came from
 * payment_intent_data[metadata]. */
static int map_payment_failed(const event_info *ev, const json_t *intent, json_t *out, char **err) {
    long long id = 0;
    if (metadata_order(ev, intent, &id, err) != PL_OK) return PL_ERR;
    if (!id) {
        ignored(ev, other_bots(ev, intent) ? "another bot's payment" : "a payment parley did not start");
        return PL_OK;
    }
    json_array_append_new(out, confirmation(id, "failed", intent, "amount"));
    close_checkout(ev, json_string_value(json_object_get(intent, "id")), id);
    return PL_OK;
}

/* charge.refunded: the order is found by its PaymentIntent (stored as its
 * payment_ref when it was paid). A partial refund leaves the order paid:
 * parley's orders are refunded whole or not at all. */
static int map_refunded(const event_info *ev, const json_t *charge, json_t *out, char **err) {
    (void)err;
    const char *intent = json_string_value(json_object_get(charge, "payment_intent"));
    if (other_bots(ev, charge)) ignored(ev, "another bot's charge");
    else if (!intent) ignored(ev, "a charge without a PaymentIntent (not made through parley)");
    else if (!json_is_true(json_object_get(charge, "refunded"))) ignored(ev, "a partial refund (the order stays paid)");
    else {
        const char *currency = json_string_value(json_object_get(charge, "currency"));
        char *upper = case_copy(currency, toupper);
        json_t *conf = json_pack("{s:s, s:s, s:I, s:s}", "ref", intent, "status", "refunded", "amount",
                                 (json_int_t)from_stripe_amount(int_of(charge, "amount_refunded"), currency),
                                 "currency", upper);
        json_array_append_new(out, conf);
        free(upper);
    }
    return PL_OK;
}

typedef int (*event_map)(const event_info *ev, const json_t *obj, json_t *out, char **err);

static const struct {
    const char *type;
    event_map map;
} event_maps[] = {
    {"checkout.session.completed", map_completed},
    {"checkout.session.async_payment_succeeded", map_completed},
    {"checkout.session.async_payment_failed", map_async_failed},
    {"checkout.session.expired", map_expired},
    {"payment_intent.payment_failed", map_payment_failed},
    {"charge.refunded", map_refunded},
};

/* Verifies and reads one event. Unknown types are acknowledged with no
 * confirmation (Stripe sends what the endpoint subscribed to; more is not
 * an error). */
static int stripe_webhook(const pl_payment_ctx *ctx, const pl_webhook *req, json_t **confirmations, int *status,
                          char **err) {
    *confirmations = NULL;
    const char *secret = pl_channel_require(&ctx->cfg, "webhook_secret", status, err);
    if (!secret || verify_signature(secret, req, status, err) != PL_OK) return PL_ERR;
    *status = 400;
    json_t *event = json_loadb(req->body, req->body_len, 0, NULL);
    const char *type = json_string_value(json_object_get(event, "type"));
    const json_t *obj = json_object_get(json_object_get(event, "data"), "object");
    if (!type || !json_is_object(obj)) {
        json_decref(event);
        return pl_fail(err, "the body is not a Stripe event ({\"type\", \"data\": {\"object\"}})");
    }
    const char *id = json_string_value(json_object_get(event, "id"));
    event_info ev = {ctx, ctx->cfg.bot, id ? id : "(no id)", type};
    json_t *out = json_array();
    int rc = PL_OK, known = 0;
    for (size_t i = 0; i < sizeof event_maps / sizeof *event_maps && !known; i++) {
        if (strcmp(type, event_maps[i].type) != 0) continue;
        known = 1;
        rc = event_maps[i].map(&ev, obj, out, err);
    }
    if (!known) ignored(&ev, "parley does not use this event type");
    json_decref(event);
    if (rc != PL_OK) {
        json_decref(out);
        return PL_ERR;
    }
    *status = 200;
    *confirmations = out;
    return PL_OK;
}

const pl_payment_provider pl_payment_stripe = {
    .name = "stripe",
    .default_api_base = DEFAULT_API_BASE,
    .create_link = stripe_create_link,
    .webhook = stripe_webhook,
};
