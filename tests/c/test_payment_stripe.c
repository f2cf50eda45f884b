/* test_payment_stripe: the Stripe provider (payment_stripe.c) driven through
 * its pl_payment_provider. Webhooks: Stripe-Signature vectors computed
 * independently (Python's hmac/hashlib), several v1 values, stale and
 * future timestamps, malformed and missing headers, and each event's
 * confirmation. Checkout Sessions: create_link against a tiny evhttp
 * listener on loopback that records the request (method, path, headers,
 * form fields) and answers as told: an order with and without a discount,
 * a 5xx retried with the same Idempotency-Key, Stripe's 4xx, no answer. */
#define _GNU_SOURCE
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"
#include "check.h"
#include "commerce/payments.h"

#define SECRET "whsec_parley_test_0123456789abcdef"

/* The provider as the registry has it. */
static const pl_payment_provider *stripe(void) { return pl_payments_find("stripe"); }
#define T0 1700000000LL

/* --- logging ------------------------------------------------------------------------ */

static char logged[8192];

static void log_sink(pl_log_level level, const char *line, void *ud) {
    (void)level;
    (void)ud;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "%s\n", line);
}

/* --- webhooks ------------------------------------------------------------------------ */

/* The fixed vector: python3 -c 'import hmac,hashlib; print(hmac.new(SECRET,
 * b"1700000000." + BODY, hashlib.sha256).hexdigest())' */
static const char *VECTOR_BODY =
    "{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\",\"data\":{\"object\":{\"id\":\"cs_test_1\","
    "\"client_reference_id\":\"42\",\"metadata\":{\"order_id\":\"42\",\"bot\":\"barista\"},\"amount_total\":720,"
    "\"currency\":\"eur\",\"payment_status\":\"paid\",\"payment_intent\":\"pi_42\"}}}";
static const char *VECTOR_SIG = "f9de6090b82ae322b3aaa18b295a785d80cc5268238febabb504567b73e8b014";
/* the same body and time signed with "whsec_old_secret" */
static const char *VECTOR_SIG_OLD = "f87238a9154f482a08693ded1934281e48b09f9cc5573670ec89c2790d1139e6";
/* a body with UTF-8 in it */
static const char *VECTOR_BODY_UTF8 = "{\"id\":\"evt_2\",\"type\":\"ping\",\"data\":{\"object\":{\"name\":\"Caf\xc3\xa9 \xe2\x98\x95\"}}}";
static const char *VECTOR_SIG_UTF8 = "98e3b02b5ee3c8e04cd63e45bc729bb33ffe976de97027c271338d376ef4227f";

static const char *header_of(const void *ctx, const char *name) {
    return strcasecmp(name, "Stripe-Signature") == 0 ? ctx : NULL;
}

typedef struct {
    int rc;
    int status;
    char *err;
    json_t *confirmations;
} hook_result;

static void hook_clear(hook_result *r) {
    free(r->err);
    json_decref(r->confirmations);
    memset(r, 0, sizeof *r);
}

/* Calls the provider's webhook with settings (JSON text), a body, a
 * Stripe-Signature header (or NULL) and the time now. */
static hook_result webhook(const char *settings, const char *body, const char *signature, long long now) {
    json_t *s = json_loads(settings, 0, NULL);
    pl_payment_ctx ctx = {{"barista", "payments", s}, "https://parley.example", NULL};
    pl_webhook req = {.method = "POST", .url = "https://parley.example/v1/bots/barista/payments/stripe",
                      .body = body, .body_len = strlen(body), .header = header_of, .header_ctx = signature,
                      .now = now};
    hook_result r = {0};
    r.status = 0;
    r.rc = stripe()->webhook(&ctx, &req, &r.confirmations, &r.status, &r.err);
    json_decref(s);
    return r;
}

static const char *SETTINGS = "{\"provider\": \"stripe\", \"secret_key\": \"sk_test_123\", \"webhook_secret\": \"" SECRET "\"}";

/* "t=<t>,v1=<HMAC of t.body with secret>" (new string). */
static char *sign(const char *secret, long long t, const char *body) {
    char *payload = pl_strdupf("%lld.%s", t, body);
    char *mac = pl_channel_hmac_hex("sha256", secret, payload, strlen(payload));
    char *header = pl_strdupf("t=%lld,v1=%s", t, mac);
    free(mac);
    free(payload);
    return header;
}

/* A signed event of type over object (JSON text), taken at T0. */
static hook_result event(const char *type, const char *object) {
    char *body = pl_strdupf("{\"id\":\"evt_test\",\"object\":\"event\",\"type\":\"%s\",\"data\":{\"object\":%s}}", type, object);
    char *sig = sign(SECRET, T0, body);
    hook_result r = webhook(SETTINGS, body, sig, T0);
    free(sig);
    free(body);
    return r;
}

static const json_t *conf0(const hook_result *r) { return json_array_get(r->confirmations, 0); }
static const char *conf_str(const hook_result *r, const char *key) {
    return json_string_value(json_object_get(conf0(r), key));
}
static long long conf_int(const hook_result *r, const char *key) {
    return (long long)json_integer_value(json_object_get(conf0(r), key));
}

TEST(signature_fixed_vector) {
    char *header = pl_strdupf("t=%lld,v1=%s", T0, VECTOR_SIG);
    hook_result r = webhook(SETTINGS, VECTOR_BODY, header, T0);
    CHECK(r.rc == PL_OK);
    CHECK(r.status == 200);
    CHECK(json_array_size(r.confirmations) == 1);
    CHECK(conf_int(&r, "order_id") == 42);
    CHECK_STR(conf_str(&r, "status"), "paid");
    CHECK(conf_int(&r, "amount") == 720);
    CHECK_STR(conf_str(&r, "currency"), "EUR");
    CHECK_STR(conf_str(&r, "payment_ref"), "pi_42");
    CHECK(json_object_size(conf0(&r)) == 5);
    hook_clear(&r);
    free(header);
    header = pl_strdupf("t=%lld,v1=%s", T0, VECTOR_SIG_UTF8);
    r = webhook(SETTINGS, VECTOR_BODY_UTF8, header, T0);
    CHECK(r.rc == PL_OK);
    CHECK(json_array_size(r.confirmations) == 0);
    hook_clear(&r);
    free(header);
}

TEST(signature_several_v1_and_other_schemes) {
    /* rolling secrets: the old one's signature first, the right one second */
    char *header = pl_strdupf("t=%lld,v1=%s,v1=%s", T0, VECTOR_SIG_OLD, VECTOR_SIG);
    hook_result r = webhook(SETTINGS, VECTOR_BODY, header, T0);
    CHECK(r.rc == PL_OK);
    CHECK(json_array_size(r.confirmations) == 1);
    hook_clear(&r);
    free(header);
    /* spaces after commas, and a v0 that is ignored */
    header = pl_strdupf("t=%lld, v0=%s, v1=%s", T0, "deadbeef", VECTOR_SIG);
    r = webhook(SETTINGS, VECTOR_BODY, header, T0);
    CHECK(r.rc == PL_OK);
    hook_clear(&r);
    free(header);
    /* the right value under another scheme does not count */
    header = pl_strdupf("t=%lld,v0=%s,v1=%s", T0, VECTOR_SIG, VECTOR_SIG_OLD);
    r = webhook(SETTINGS, VECTOR_BODY, header, T0);
    CHECK(r.rc == PL_ERR);
    CHECK(r.status == 401);
    CHECK(r.confirmations == NULL);
    hook_clear(&r);
    free(header);
    /* the old secret alone no longer does */
    header = pl_strdupf("t=%lld,v1=%s", T0, VECTOR_SIG_OLD);
    r = webhook(SETTINGS, VECTOR_BODY, header, T0);
    CHECK(r.rc == PL_ERR);
    CHECK(r.status == 401);
    CHECK(r.err && strstr(r.err, "does not match"));
    hook_clear(&r);
    free(header);
}

TEST(signature_wrong_body_time_or_case) {
    char *header = pl_strdupf("t=%lld,v1=%s", T0 + 1, VECTOR_SIG);
    hook_result r = webhook(SETTINGS, VECTOR_BODY, header, T0);
    CHECK(r.rc == PL_ERR && r.status == 401); /* t is signed too */
    hook_clear(&r);
    free(header);
    header = pl_strdupf("t=%lld,v1=%s", T0, VECTOR_SIG);
    char *changed = pl_strdup(VECTOR_BODY);
    changed[strlen(changed) - 10] = 'x';
    r = webhook(SETTINGS, changed, header, T0);
    CHECK(r.rc == PL_ERR && r.status == 401);
    hook_clear(&r);
    free(changed);
    free(header);
    /* Stripe sends lower-case hex; an upper-case copy is not its signature */
    char *upper = pl_strdup(VECTOR_SIG);
    for (char *p = upper; *p; p++) *p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
    header = pl_strdupf("t=%lld,v1=%s", T0, upper);
    r = webhook(SETTINGS, VECTOR_BODY, header, T0);
    CHECK(r.rc == PL_ERR && r.status == 401);
    hook_clear(&r);
    free(header);
    free(upper);
    /* another endpoint's secret */
    r = webhook("{\"webhook_secret\": \"whsec_other\"}", VECTOR_BODY, "t=1700000000,v1=f9de6090b82ae322b3aaa18b295a785d80cc5268238febabb504567b73e8b014", T0);
    CHECK(r.rc == PL_ERR && r.status == 401);
    hook_clear(&r);
}

TEST(signature_tolerance_300_seconds) {
    char *header = pl_strdupf("t=%lld,v1=%s", T0, VECTOR_SIG);
    long long nows[] = {T0 + 300, T0 - 300, T0 + 301, T0 - 301, T0 + 86400};
    int ok[] = {1, 1, 0, 0, 0};
    for (size_t i = 0; i < sizeof nows / sizeof *nows; i++) {
        hook_result r = webhook(SETTINGS, VECTOR_BODY, header, nows[i]);
        CHECK((r.rc == PL_OK) == ok[i]);
        if (!ok[i]) {
            CHECK(r.status == 401);
            CHECK(r.err && strstr(r.err, nows[i] > T0 ? "old" : "ahead"));
            CHECK(r.confirmations == NULL);
        }
        hook_clear(&r);
    }
    free(header);
}

TEST(signature_missing_or_malformed) {
    const char *bad[] = {"", "garbage", "t=abc,v1=" "f9de6090b82ae322b3aaa18b295a785d80cc5268238febabb504567b73e8b014",
                         "v1=f9de6090b82ae322b3aaa18b295a785d80cc5268238febabb504567b73e8b014", "t=1700000000",
                         "t=1700000000,v1=", "t=1700000000,t=1700000000,v1=f9de6090b82ae322b3aaa18b295a785d80cc5268238febabb504567b73e8b014",
                         "t=-5,v1=ab", "t=17000000001234567,v1=ab", "t=1700000000x,v1=ab"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hook_result r = webhook(SETTINGS, VECTOR_BODY, bad[i], T0);
        CHECK(r.rc == PL_ERR);
        CHECK(r.status == 400);
        CHECK(r.err && strstr(r.err, "Stripe-Signature"));
        if (r.rc != PL_ERR || r.status != 400) printf("#   header %s: %d %d %s\n", bad[i], r.rc, r.status, r.err ? r.err : "");
        hook_clear(&r);
    }
    hook_result r = webhook(SETTINGS, VECTOR_BODY, NULL, T0);
    CHECK(r.rc == PL_ERR && r.status == 400);
    CHECK(r.err && strstr(r.err, "no Stripe-Signature"));
    hook_clear(&r);
}

TEST(webhook_secret_not_set) {
    unsetenv("BARISTA_TEST_STRIPE_WHSEC_UNSET");
    char *header = pl_strdupf("t=%lld,v1=%s", T0, VECTOR_SIG);
    hook_result r = webhook("{\"webhook_secret_env\": \"BARISTA_TEST_STRIPE_WHSEC_UNSET\"}", VECTOR_BODY, header, T0);
    CHECK(r.rc == PL_ERR);
    CHECK(r.status == 503);
    CHECK(r.err && strstr(r.err, "BARISTA_TEST_STRIPE_WHSEC_UNSET"));
    hook_clear(&r);
    setenv("BARISTA_TEST_STRIPE_WHSEC", SECRET, 1);
    r = webhook("{\"webhook_secret_env\": \"BARISTA_TEST_STRIPE_WHSEC\"}", VECTOR_BODY, header, T0);
    CHECK(r.rc == PL_OK);
    hook_clear(&r);
    unsetenv("BARISTA_TEST_STRIPE_WHSEC");
    free(header);
}

TEST(body_not_an_event) {
    const char *bodies[] = {"not json", "[]", "{\"type\":\"checkout.session.completed\"}", "{\"data\":{\"object\":{}}}",
                            "{\"type\":\"checkout.session.completed\",\"data\":{\"object\":[]}}"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        char *sig = sign(SECRET, T0, bodies[i]);
        hook_result r = webhook(SETTINGS, bodies[i], sig, T0);
        CHECK(r.rc == PL_ERR && r.status == 400);
        CHECK(r.err && strstr(r.err, "not a Stripe event"));
        hook_clear(&r);
        free(sig);
    }
}

#define META "\"metadata\":{\"order_id\":\"7\",\"bot\":\"barista\"}"

TEST(event_completed) {
    hook_result r = event("checkout.session.completed",
                          "{\"id\":\"cs_1\",\"client_reference_id\":\"7\"," META ",\"amount_total\":470,"
                          "\"currency\":\"eur\",\"payment_status\":\"paid\",\"payment_intent\":\"pi_7\"}");
    CHECK(r.rc == PL_OK && r.status == 200);
    CHECK(json_array_size(r.confirmations) == 1);
    CHECK(conf_int(&r, "order_id") == 7);
    CHECK_STR(conf_str(&r, "status"), "paid");
    CHECK(conf_int(&r, "amount") == 470);
    CHECK_STR(conf_str(&r, "currency"), "EUR");
    CHECK_STR(conf_str(&r, "payment_ref"), "pi_7");
    hook_clear(&r);
    /* the asynchronous methods' success says the same */
    r = event("checkout.session.async_payment_succeeded",
              "{\"id\":\"cs_1\"," META ",\"amount_total\":470,\"currency\":\"eur\",\"payment_status\":\"paid\",\"payment_intent\":\"pi_7\"}");
    CHECK(r.rc == PL_OK && json_array_size(r.confirmations) == 1);
    CHECK_STR(conf_str(&r, "status"), "paid");
    hook_clear(&r);
}

TEST(event_completed_not_paid_yet_or_not_ours) {
    logged[0] = '\0';
    hook_result r = event("checkout.session.completed",
                          "{\"id\":\"cs_1\"," META ",\"amount_total\":470,\"currency\":\"eur\",\"payment_status\":\"unpaid\",\"payment_intent\":\"pi_7\"}");
    CHECK(r.rc == PL_OK && r.status == 200);
    CHECK(json_array_size(r.confirmations) == 0);
    CHECK(strstr(logged, "payment_status") != NULL);
    hook_clear(&r);
    /* another bot on the same Stripe account */
    r = event("checkout.session.completed",
              "{\"id\":\"cs_1\",\"metadata\":{\"order_id\":\"7\",\"bot\":\"florist\"},\"amount_total\":470,\"currency\":\"eur\","
              "\"payment_status\":\"paid\"}");
    CHECK(r.rc == PL_OK && json_array_size(r.confirmations) == 0);
    CHECK(strstr(logged, "another bot") != NULL);
    hook_clear(&r);
    /* a sale parley did not make: no metadata, a client_reference_id of the shop's own */
    r = event("checkout.session.completed",
              "{\"id\":\"cs_2\",\"client_reference_id\":\"7\",\"metadata\":{},\"amount_total\":470,\"currency\":\"eur\","
              "\"payment_status\":\"paid\"}");
    CHECK(r.rc == PL_OK && json_array_size(r.confirmations) == 0);
    CHECK(strstr(logged, "did not make") != NULL);
    hook_clear(&r);
    /* ours, but not an order number */
    r = event("checkout.session.completed",
              "{\"id\":\"cs_3\",\"metadata\":{\"order_id\":\"7x\",\"bot\":\"barista\"},\"amount_total\":470,\"currency\":\"eur\","
              "\"payment_status\":\"paid\"}");
    CHECK(r.rc == PL_ERR && r.status == 400);
    CHECK(r.err && strstr(r.err, "7x"));
    hook_clear(&r);
}

TEST(event_expired_and_async_failed) {
    hook_result r = event("checkout.session.expired",
                          "{\"id\":\"cs_1\"," META ",\"amount_total\":470,\"currency\":\"eur\",\"payment_status\":\"unpaid\",\"payment_intent\":null}");
    CHECK(r.rc == PL_OK && json_array_size(r.confirmations) == 1);
    CHECK(conf_int(&r, "order_id") == 7);
    CHECK_STR(conf_str(&r, "status"), "expired");
    CHECK(conf_int(&r, "amount") == 470);
    CHECK_STR(conf_str(&r, "currency"), "EUR");
    CHECK(json_object_get(conf0(&r), "payment_ref") == NULL);
    hook_clear(&r);
    r = event("checkout.session.async_payment_failed",
              "{\"id\":\"cs_1\"," META ",\"amount_total\":470,\"currency\":\"eur\",\"payment_status\":\"unpaid\",\"payment_intent\":\"pi_7\"}");
    CHECK(r.rc == PL_OK && json_array_size(r.confirmations) == 1);
    CHECK_STR(conf_str(&r, "status"), "failed");
    CHECK(json_object_get(conf0(&r), "payment_ref") == NULL);
    hook_clear(&r);
}

TEST(event_payment_failed) {
    hook_result r = event("payment_intent.payment_failed",
                          "{\"id\":\"pi_7\",\"object\":\"payment_intent\"," META ",\"amount\":470,\"currency\":\"eur\","
                          "\"last_payment_error\":{\"code\":\"card_declined\"}}");
    CHECK(r.rc == PL_OK && json_array_size(r.confirmations) == 1);
    CHECK(conf_int(&r, "order_id") == 7);
    CHECK_STR(conf_str(&r, "status"), "failed");
    CHECK(conf_int(&r, "amount") == 470);
    CHECK_STR(conf_str(&r, "currency"), "EUR");
    hook_clear(&r);
    r = event("payment_intent.payment_failed", "{\"id\":\"pi_8\",\"metadata\":{},\"amount\":470,\"currency\":\"eur\"}");
    CHECK(r.rc == PL_OK && json_array_size(r.confirmations) == 0);
    hook_clear(&r);
}

TEST(event_charge_refunded) {
    hook_result r = event("charge.refunded",
                          "{\"id\":\"ch_7\",\"object\":\"charge\",\"payment_intent\":\"pi_7\",\"amount\":470,"
                          "\"amount_refunded\":470,\"refunded\":true,\"currency\":\"eur\"," META "}");
    CHECK(r.rc == PL_OK && json_array_size(r.confirmations) == 1);
    CHECK_STR(conf_str(&r, "ref"), "pi_7");
    CHECK_STR(conf_str(&r, "status"), "refunded");
    CHECK(conf_int(&r, "amount") == 470);
    CHECK_STR(conf_str(&r, "currency"), "EUR");
    CHECK(json_object_get(conf0(&r), "order_id") == NULL);
    hook_clear(&r);
    /* without metadata the PaymentIntent still finds the order */
    r = event("charge.refunded", "{\"id\":\"ch_7\",\"payment_intent\":\"pi_7\",\"amount\":470,\"amount_refunded\":470,"
                                 "\"refunded\":true,\"currency\":\"eur\",\"metadata\":{}}");
    CHECK(r.rc == PL_OK && json_array_size(r.confirmations) == 1);
    hook_clear(&r);
    /* a partial refund leaves the order paid */
    r = event("charge.refunded", "{\"id\":\"ch_7\",\"payment_intent\":\"pi_7\",\"amount\":470,\"amount_refunded\":100,"
                                 "\"refunded\":false,\"currency\":\"eur\"," META "}");
    CHECK(r.rc == PL_OK && json_array_size(r.confirmations) == 0);
    hook_clear(&r);
    /* another bot's charge */
    r = event("charge.refunded", "{\"id\":\"ch_9\",\"payment_intent\":\"pi_9\",\"amount\":470,\"amount_refunded\":470,"
                                 "\"refunded\":true,\"currency\":\"eur\",\"metadata\":{\"bot\":\"florist\",\"order_id\":\"7\"}}");
    CHECK(r.rc == PL_OK && json_array_size(r.confirmations) == 0);
    hook_clear(&r);
}

TEST(event_unknown_type_acknowledged) {
    logged[0] = '\0';
    hook_result r = event("customer.created", "{\"id\":\"cus_1\"}");
    CHECK(r.rc == PL_OK && r.status == 200);
    CHECK(json_is_array(r.confirmations) && json_array_size(r.confirmations) == 0);
    CHECK(strstr(logged, "customer.created") != NULL);
    hook_clear(&r);
}

TEST(event_isk_amounts_in_stripe_units) {
    /* 1,500 ISK is 150000 in Stripe's API */
    hook_result r = event("checkout.session.completed",
                          "{\"id\":\"cs_1\"," META ",\"amount_total\":150000,\"currency\":\"isk\",\"payment_status\":\"paid\",\"payment_intent\":\"pi_7\"}");
    CHECK(conf_int(&r, "amount") == 1500);
    CHECK_STR(conf_str(&r, "currency"), "ISK");
    hook_clear(&r);
    r = event("checkout.session.completed",
              "{\"id\":\"cs_1\"," META ",\"amount_total\":150050,\"currency\":\"isk\",\"payment_status\":\"paid\",\"payment_intent\":\"pi_7\"}");
    CHECK(conf_int(&r, "amount") == -1); /* a fraction of a króna matches no order */
    hook_clear(&r);
}

/* --- a fake Stripe on loopback ----------------------------------------------------------- */

typedef struct {
    struct event_base *base;
    struct evhttp *http;
    int port;
    int answers[4]; /* HTTP status of each answer in turn */
    const char *answer_body;
    const char *list_body; /* the answer to GET /v1/checkout/sessions?... */
    int seen;
    json_t *requests; /* [{method, uri, headers {lower-case name: value}, fields {name: value}, body}] */
} fake_stripe;

/* The form fields of a body: names and values decoded (new object). */
static json_t *form_fields(const char *body) {
    struct evkeyvalq q = {NULL, &q.tqh_first};
    json_t *fields = json_object();
    if (evhttp_parse_query_str(body, &q) == 0) {
        for (struct evkeyval *kv = q.tqh_first; kv; kv = kv->next.tqe_next) {
            char *name = evhttp_uridecode(kv->key, 1, NULL);
            json_object_set_new(fields, name, json_string(kv->value));
            free(name);
        }
    }
    evhttp_clear_headers(&q);
    return fields;
}

static void on_fake_request(struct evhttp_request *req, void *arg) {
    fake_stripe *f = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = pl_strndup(len ? (const char *)evbuffer_pullup(in, -1) : "", len);
    json_t *headers = json_object();
    for (struct evkeyval *kv = evhttp_request_get_input_headers(req)->tqh_first; kv; kv = kv->next.tqe_next) {
        char *lower = pl_strdup(kv->key);
        for (char *p = lower; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        json_object_set_new(headers, lower, json_string(kv->value));
        free(lower);
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    json_array_append_new(f->requests, json_pack("{s:s, s:s, s:o, s:o, s:s}", "method",
                                                 cmd == EVHTTP_REQ_POST ? "POST" : cmd == EVHTTP_REQ_GET ? "GET" : "other",
                                                 "uri", evhttp_request_get_uri(req), "headers", headers, "fields",
                                                 form_fields(body), "body", body));
    free(body);
    int status = f->answers[f->seen < 4 ? f->seen : 3];
    f->seen++;
    struct evbuffer *out = evbuffer_new();
    const char *uri = evhttp_request_get_uri(req);
    size_t ulen = strlen(uri);
    if (status == 200 && cmd == EVHTTP_REQ_GET)
        evbuffer_add_printf(out, "%s", f->list_body);
    else if (status == 200 && ulen > 7 && strcmp(uri + ulen - 7, "/expire") == 0)
        evbuffer_add_printf(out, "{\"id\":\"cs_open_1\",\"object\":\"checkout.session\",\"status\":\"expired\"}");
    else if (status == 200)
        evbuffer_add_printf(out, "%s", f->answer_body);
    else
        evbuffer_add_printf(out, "{\"error\":{\"type\":\"invalid_request_error\",\"message\":\"No such thing (fake %d)\"}}", status);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, "fake", out);
    evbuffer_free(out);
}

static void fake_start(fake_stripe *f, struct event_base *base) {
    memset(f, 0, sizeof *f);
    f->base = base;
    f->http = evhttp_new(base);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl);
    f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    f->requests = json_array();
    f->answers[0] = f->answers[1] = f->answers[2] = f->answers[3] = 200;
    f->answer_body = "{\"id\":\"cs_test_abc\",\"object\":\"checkout.session\",\"url\":\"https://checkout.stripe.com/c/pay/cs_test_abc\"}";
    f->list_body = "{\"object\":\"list\",\"data\":[{\"id\":\"cs_open_1\",\"object\":\"checkout.session\",\"status\":\"open\"}]}";
    evhttp_set_gencb(f->http, on_fake_request, f);
}

static void fake_stop(fake_stripe *f) {
    evhttp_free(f->http);
    json_decref(f->requests);
}

typedef struct {
    int calls;
    char *url, *ref, *err;
} link_result;

static void on_link(const char *url, const char *ref, const char *err, void *ud) {
    link_result *r = ud;
    r->calls++;
    r->url = url ? pl_strdup(url) : NULL;
    r->ref = ref ? pl_strdup(ref) : NULL;
    r->err = err ? pl_strdup(err) : NULL;
}

static void link_clear(link_result *r) {
    free(r->url);
    free(r->ref);
    free(r->err);
    memset(r, 0, sizeof *r);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

/* Runs create_link for order (JSON text) with settings; waits for done.
 * Returns create_link's own result code. */
static int create(fake_stripe *f, pl_http_client *http, const char *settings, const char *order_text, link_result *out,
                  char **err) {
    json_t *s = json_loads(settings, 0, NULL), *order = json_loads(order_text, 0, NULL);
    if (!order) printf("#   bad order JSON in the test\n");
    pl_payment_ctx ctx = {{"barista", "payments", s}, "https://parley.example/", http};
    memset(out, 0, sizeof *out);
    int rc = stripe()->create_link(&ctx, order, on_link, out, err);
    int late = 0;
    struct event *deadline = evtimer_new(f->base, on_deadline, &late);
    struct timeval tv = {10, 0};
    evtimer_add(deadline, &tv);
    while (rc == PL_OK && out->calls == 0 && !late) event_base_loop(f->base, EVLOOP_ONCE);
    event_free(deadline);
    json_decref(s);
    json_decref(order);
    return rc;
}

static const char *ORDER_PLAIN =
    "{\"id\": 12, \"bot\": \"barista\", \"channel\": \"rest\", \"user\": \"u1\", \"currency\": \"EUR\","
    " \"subtotal\": 720, \"discount\": 0, \"total\": 720, \"token\": \"00112233445566778899aabbccddeeff\","
    " \"lines\": [{\"sku\": \"latte\", \"title\": \"Latte\", \"qty\": 1, \"unit_price\": 470, \"total\": 470,"
    "              \"options\": {\"size\": \"large\"}, \"option_titles\": [\"Large\"]},"
    "             {\"sku\": \"croissant\", \"title\": \"Butter Croissant\", \"qty\": 2, \"unit_price\": 125, \"total\": 250,"
    "              \"options\": {}, \"option_titles\": []}]}";

static const char *ORDER_DISCOUNT =
    "{\"id\": 13, \"bot\": \"barista\", \"channel\": \"rest\", \"user\": \"u1\", \"currency\": \"EUR\","
    " \"subtotal\": 720, \"discount\": 72, \"total\": 648, \"discount_code\": \"WELCOME10\","
    " \"token\": \"ffeeddccbbaa99887766554433221100\","
    " \"lines\": [{\"sku\": \"latte\", \"title\": \"Latte\", \"qty\": 1, \"unit_price\": 470, \"total\": 470,"
    "              \"options\": {\"size\": \"large\", \"milk\": \"oat\"}, \"option_titles\": [\"Large\", \"Oat milk\"]},"
    "             {\"sku\": \"croissant\", \"title\": \"Butter Croissant & co\", \"qty\": 1, \"unit_price\": 250, \"total\": 250,"
    "              \"options\": {}, \"option_titles\": []}]}";

static char *settings_for(const fake_stripe *f) {
    (void)f;
    return pl_strdup("{\"provider\": \"stripe\", \"secret_key\": \"sk_test_123\", \"webhook_secret\": \"" SECRET "\"}");
}

static const char *req_field(const fake_stripe *f, size_t i, const char *name) {
    return json_string_value(json_object_get(json_object_get(json_array_get(f->requests, i), "fields"), name));
}
static const char *req_header(const fake_stripe *f, size_t i, const char *name) {
    return json_string_value(json_object_get(json_object_get(json_array_get(f->requests, i), "headers"), name));
}
static const char *req_str(const fake_stripe *f, size_t i, const char *key) {
    return json_string_value(json_object_get(json_array_get(f->requests, i), key));
}

/* A loopback port nobody listens on (bound, then closed). */
static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

static struct event_base *base;
static pl_http_client *http;

static void use_fake(const fake_stripe *f) {
    char *url = pl_strdupf("http://127.0.0.1:%d/", f->port);
    setenv("PARLEY_STRIPE_API_BASE", url, 1);
    free(url);
}

TEST(create_session_without_discount) {
    fake_stripe f;
    fake_start(&f, base);
    use_fake(&f);
    char *settings = settings_for(&f), *err = NULL;
    link_result r;
    CHECK(create(&f, http, settings, ORDER_PLAIN, &r, &err) == PL_OK);
    CHECK(r.calls == 1);
    CHECK_STR(r.url, "https://checkout.stripe.com/c/pay/cs_test_abc");
    CHECK_STR(r.ref, "cs_test_abc");
    CHECK(r.err == NULL);
    CHECK(json_array_size(f.requests) == 1);
    CHECK_STR(req_str(&f, 0, "method"), "POST");
    CHECK_STR(req_str(&f, 0, "uri"), "/v1/checkout/sessions");
    CHECK_STR(req_header(&f, 0, "authorization"), "Bearer sk_test_123");
    CHECK_STR(req_header(&f, 0, "content-type"), "application/x-www-form-urlencoded");
    const char *key = req_header(&f, 0, "idempotency-key");
    CHECK(key && strncmp(key, "parley-barista-order-12-", 24) == 0 && strlen(key) == 24 + 16);
    CHECK(req_header(&f, 0, "stripe-version") == NULL);
    const char *expect[][2] = {
        {"mode", "payment"},
        {"client_reference_id", "12"},
        {"metadata[order_id]", "12"},
        {"metadata[bot]", "barista"},
        {"payment_intent_data[metadata][order_id]", "12"},
        {"payment_intent_data[metadata][bot]", "barista"},
        {"line_items[0][price_data][currency]", "eur"},
        {"line_items[0][price_data][unit_amount]", "470"},
        {"line_items[0][price_data][product_data][name]", "Latte (Large)"},
        {"line_items[0][quantity]", "1"},
        {"line_items[1][price_data][currency]", "eur"},
        {"line_items[1][price_data][unit_amount]", "125"},
        {"line_items[1][price_data][product_data][name]", "Butter Croissant"},
        {"line_items[1][quantity]", "2"},
        {"success_url", "https://parley.example/v1/bots/barista/payments/stripe/return?order=12&result=success"},
        {"cancel_url", "https://parley.example/v1/bots/barista/payments/stripe/return?order=12&result=cancel"},
    };
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) CHECK_STR(req_field(&f, 0, expect[i][0]), expect[i][1]);
    CHECK(json_object_size(json_object_get(json_array_get(f.requests, 0), "fields")) == sizeof expect / sizeof *expect);
    /* brackets and spaces are form-encoded on the wire */
    CHECK(strstr(req_str(&f, 0, "body"), "metadata%5Border_id%5D=12") != NULL);
    CHECK(strstr(req_str(&f, 0, "body"), "Butter+Croissant") != NULL);
    link_clear(&r);
    /* the same order again: the same key (Stripe answers with the same Session) */
    CHECK(create(&f, http, settings, ORDER_PLAIN, &r, &err) == PL_OK);
    CHECK_STR(req_header(&f, 1, "idempotency-key"), key);
    CHECK_STR(req_str(&f, 1, "body"), req_str(&f, 0, "body"));
    link_clear(&r);
    free(settings);
    free(err);
    fake_stop(&f);
}

TEST(create_session_with_discount_is_one_line) {
    fake_stripe f;
    fake_start(&f, base);
    use_fake(&f);
    char *err = NULL;
    link_result r;
    const char *settings = "{\"secret_key\": \"sk_test_456\", \"success_url\": \"https://shop.example/thanks\","
                           " \"cancel_url\": \"https://shop.example/cart\", \"api_version\": \"2024-06-20\","
                           " \"expires_after_minutes\": 60}";
    long long before = pl_now_ms() / 1000;
    CHECK(create(&f, http, settings, ORDER_DISCOUNT, &r, &err) == PL_OK);
    CHECK(r.calls == 1 && r.url && !r.err);
    CHECK_STR(req_header(&f, 0, "authorization"), "Bearer sk_test_456");
    CHECK_STR(req_header(&f, 0, "stripe-version"), "2024-06-20");
    const char *key = req_header(&f, 0, "idempotency-key");
    CHECK(key && strncmp(key, "parley-barista-order-13-", 24) == 0);
    const char *expect[][2] = {
        {"mode", "payment"},
        {"client_reference_id", "13"},
        {"metadata[order_id]", "13"},
        {"metadata[bot]", "barista"},
        {"payment_intent_data[metadata][order_id]", "13"},
        {"payment_intent_data[metadata][bot]", "barista"},
        {"line_items[0][price_data][currency]", "eur"},
        {"line_items[0][price_data][unit_amount]", "648"},
        {"line_items[0][price_data][product_data][name]", "Order #13"},
        {"line_items[0][price_data][product_data][description]",
         "1 × Latte (Large, Oat milk), 1 × Butter Croissant & co; code WELCOME10"},
        {"line_items[0][quantity]", "1"},
        {"success_url", "https://shop.example/thanks"},
        {"cancel_url", "https://shop.example/cart"},
    };
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) CHECK_STR(req_field(&f, 0, expect[i][0]), expect[i][1]);
    const char *expires = req_field(&f, 0, "expires_at");
    long long at = expires ? atoll(expires) : 0;
    CHECK(at >= before + 3600 && at <= pl_now_ms() / 1000 + 3600);
    CHECK(json_object_size(json_object_get(json_array_get(f.requests, 0), "fields")) == sizeof expect / sizeof *expect + 1);
    link_clear(&r);
    free(err);
    fake_stop(&f);
}

TEST(create_session_odd_lines_and_isk) {
    fake_stripe f;
    fake_start(&f, base);
    use_fake(&f);
    char *settings = settings_for(&f), *err = NULL;
    link_result r;
    /* a line whose total is not unit price × quantity: one line for the exact total */
    const char *odd = "{\"id\": 14, \"currency\": \"EUR\", \"subtotal\": 333, \"discount\": 0, \"total\": 333,"
                      " \"lines\": [{\"title\": \"Thirds\", \"qty\": 3, \"unit_price\": 111, \"total\": 333},"
                      "             {\"title\": \"Gift\", \"qty\": 1, \"unit_price\": 1, \"total\": 0}]}";
    CHECK(create(&f, http, settings, odd, &r, &err) == PL_OK);
    CHECK_STR(req_field(&f, 0, "line_items[0][price_data][unit_amount]"), "333");
    CHECK_STR(req_field(&f, 0, "line_items[0][price_data][product_data][name]"), "Order #14");
    CHECK(req_field(&f, 0, "line_items[1][quantity]") == NULL);
    /* no token: the key is the bot and the order alone */
    CHECK_STR(req_header(&f, 0, "idempotency-key"), "parley-barista-order-14");
    link_clear(&r);
    /* ISK: Stripe counts hundredths of a króna */
    const char *isk = "{\"id\": 15, \"currency\": \"ISK\", \"subtotal\": 1500, \"discount\": 0, \"total\": 1500,"
                      " \"lines\": [{\"title\": \"Kaffi\", \"qty\": 2, \"unit_price\": 750, \"total\": 1500}]}";
    f.answer_body = "{\"id\":\"cs_isk\",\"url\":\"https://checkout.stripe.com/c/pay/cs_isk\",\"amount_total\":150000}";
    CHECK(create(&f, http, settings, isk, &r, &err) == PL_OK);
    CHECK_STR(req_field(&f, 1, "line_items[0][price_data][currency]"), "isk");
    CHECK_STR(req_field(&f, 1, "line_items[0][price_data][unit_amount]"), "75000");
    CHECK_STR(r.ref, "cs_isk");
    link_clear(&r);
    /* a Session whose total is not the order's is refused */
    f.answer_body = "{\"id\":\"cs_bad\",\"url\":\"https://checkout.stripe.com/c/pay/cs_bad\",\"amount_total\":1}";
    CHECK(create(&f, http, settings, ORDER_PLAIN, &r, &err) == PL_OK);
    CHECK(r.calls == 1 && r.url == NULL && r.err && strstr(r.err, "totals 1"));
    link_clear(&r);
    free(settings);
    free(err);
    fake_stop(&f);
}

TEST(create_session_retry_and_failures) {
    fake_stripe f;
    fake_start(&f, base);
    use_fake(&f);
    char *settings = settings_for(&f), *err = NULL;
    link_result r;
    /* 500 then 200: retried once with the same key and body */
    f.answers[0] = 500;
    CHECK(create(&f, http, settings, ORDER_PLAIN, &r, &err) == PL_OK);
    CHECK(r.calls == 1 && r.url && !r.err);
    CHECK(json_array_size(f.requests) == 2);
    CHECK_STR(req_header(&f, 1, "idempotency-key"), req_header(&f, 0, "idempotency-key"));
    CHECK_STR(req_str(&f, 1, "body"), req_str(&f, 0, "body"));
    link_clear(&r);
    /* 500 twice: an error naming Stripe's answer */
    f.seen = 0;
    f.answers[0] = f.answers[1] = 503;
    CHECK(create(&f, http, settings, ORDER_PLAIN, &r, &err) == PL_OK);
    CHECK(r.calls == 1 && r.url == NULL && r.ref == NULL);
    CHECK(r.err && strstr(r.err, "503") && strstr(r.err, "No such thing"));
    CHECK(json_array_size(f.requests) == 4);
    link_clear(&r);
    /* a 4xx is not retried */
    f.seen = 0;
    f.answers[0] = 400;
    f.answers[1] = 200;
    CHECK(create(&f, http, settings, ORDER_PLAIN, &r, &err) == PL_OK);
    CHECK(r.calls == 1 && r.url == NULL && r.err && strstr(r.err, "400") && strstr(r.err, "No such thing (fake 400)"));
    CHECK(json_array_size(f.requests) == 5);
    link_clear(&r);
    /* a 2xx that is not a Session */
    f.seen = 0;
    f.answers[0] = 200;
    f.answer_body = "{\"object\":\"list\"}";
    CHECK(create(&f, http, settings, ORDER_PLAIN, &r, &err) == PL_OK);
    CHECK(r.calls == 1 && r.url == NULL && r.err && strstr(r.err, "no Session"));
    link_clear(&r);
    /* nobody listening (tried twice) */
    int port = closed_port();
    char *nowhere = pl_strdupf("http://127.0.0.1:%d", port);
    setenv("PARLEY_STRIPE_API_BASE", nowhere, 1);
    CHECK(create(&f, http, settings, ORDER_PLAIN, &r, &err) == PL_OK);
    CHECK(r.calls == 1 && r.url == NULL && r.err && strstr(r.err, "cannot reach Stripe") && strstr(r.err, nowhere));
    link_clear(&r);
    free(nowhere);
    free(settings);
    free(err);
    fake_stop(&f);
}

TEST(create_session_settings) {
    fake_stripe f;
    fake_start(&f, base);
    char *err = NULL;
    link_result r;
    /* no secret key: refused at once, done not called */
    unsetenv("BARISTA_TEST_STRIPE_SK_UNSET");
    CHECK(create(&f, http, "{\"secret_key_env\": \"BARISTA_TEST_STRIPE_SK_UNSET\"}", ORDER_PLAIN, &r, &err) == PL_ERR);
    CHECK(r.calls == 0);
    CHECK(err && strstr(err, "BARISTA_TEST_STRIPE_SK_UNSET"));
    free(err);
    err = NULL;
    /* expires_after_minutes outside Stripe's 30 minutes to 24 hours */
    CHECK(create(&f, http, "{\"secret_key\": \"sk\", \"expires_after_minutes\": 10}", ORDER_PLAIN, &r, &err) == PL_ERR);
    CHECK(r.calls == 0 && err && strstr(err, "expires_after_minutes"));
    free(err);
    err = NULL;
    /* the address is the operator's (PARLEY_STRIPE_API_BASE): an api_base in
     * the settings is ignored, so a bot.json cannot send the key elsewhere */
    use_fake(&f);
    char *settings = pl_strdupf("{\"secret_key_env\": \"BARISTA_TEST_STRIPE_SK\", \"api_base\": \"http://127.0.0.1:9\"}");
    setenv("BARISTA_TEST_STRIPE_SK", "sk_test_from_env", 1);
    CHECK(create(&f, http, settings, ORDER_PLAIN, &r, &err) == PL_OK);
    CHECK(r.calls == 1 && r.url);
    CHECK(json_array_size(f.requests) == 1);
    CHECK_STR(req_header(&f, 0, "authorization"), "Bearer sk_test_from_env");
    link_clear(&r);
    free(settings);
    /* a variable outside the bot's namespace is never read */
    setenv("OTHER_BRAND_STRIPE_SK", "sk_live_other", 1);
    CHECK(create(&f, http, "{\"secret_key_env\": \"OTHER_BRAND_STRIPE_SK\"}", ORDER_PLAIN, &r, &err) == PL_ERR);
    CHECK(r.calls == 0 && json_array_size(f.requests) == 1);
    free(err);
    err = NULL;
    unsetenv("OTHER_BRAND_STRIPE_SK");
    unsetenv("BARISTA_TEST_STRIPE_SK");
    free(err);
    fake_stop(&f);
}

/* Runs the loop until the fake has seen n requests (or 10 s passed). */
static void wait_requests(fake_stripe *f, int n) {
    int late = 0;
    struct event *deadline = evtimer_new(f->base, on_deadline, &late);
    struct timeval tv = {10, 0};
    evtimer_add(deadline, &tv);
    while (f->seen < n && !late) event_base_loop(f->base, EVLOOP_ONCE);
    /* let the last answer reach the client */
    for (int i = 0; i < 50 && pl_http_in_flight(http) > 0 && !late; i++) event_base_loop(f->base, EVLOOP_ONCE);
    event_free(deadline);
}

/* A failed payment's webhook with the HTTP client at hand. */
static hook_result failed_with_http(void) {
    json_t *s = json_loads(SETTINGS, 0, NULL);
    pl_payment_ctx ctx = {{"barista", "payments", s}, "https://parley.example", http};
    const char *body = "{\"id\":\"evt_f\",\"type\":\"payment_intent.payment_failed\",\"data\":{\"object\":"
                       "{\"id\":\"pi_7\"," META ",\"amount\":470,\"currency\":\"eur\"}}}";
    char *sig = sign(SECRET, T0, body);
    pl_webhook req = {.method = "POST", .body = body, .body_len = strlen(body), .header = header_of, .header_ctx = sig,
                      .now = T0};
    hook_result r = {0};
    r.rc = stripe()->webhook(&ctx, &req, &r.confirmations, &r.status, &r.err);
    free(sig);
    json_decref(s);
    return r;
}

TEST(payment_failed_closes_the_open_page) {
    fake_stripe f;
    fake_start(&f, base);
    use_fake(&f);
    logged[0] = '\0';
    hook_result r = failed_with_http();
    CHECK(r.rc == PL_OK && json_array_size(r.confirmations) == 1);
    CHECK_STR(conf_str(&r, "status"), "failed");
    hook_clear(&r);
    wait_requests(&f, 2);
    CHECK(json_array_size(f.requests) == 2);
    CHECK_STR(req_str(&f, 0, "method"), "GET");
    CHECK_STR(req_str(&f, 0, "uri"), "/v1/checkout/sessions?payment_intent=pi_7&limit=1");
    CHECK_STR(req_header(&f, 0, "authorization"), "Bearer sk_test_123");
    CHECK_STR(req_str(&f, 1, "method"), "POST");
    CHECK_STR(req_str(&f, 1, "uri"), "/v1/checkout/sessions/cs_open_1/expire");
    CHECK_STR(req_str(&f, 1, "body"), "");
    CHECK(strstr(logged, "closed the payment page of order 7") != NULL);
    /* a page that is no longer open is left alone */
    f.list_body = "{\"object\":\"list\",\"data\":[{\"id\":\"cs_open_1\",\"status\":\"complete\"}]}";
    r = failed_with_http();
    hook_clear(&r);
    wait_requests(&f, 3);
    CHECK(json_array_size(f.requests) == 3);
    /* Stripe refusing is logged, nothing else */
    logged[0] = '\0';
    f.answers[3] = 500;
    f.list_body = "{\"object\":\"list\",\"data\":[{\"id\":\"cs_open_1\",\"status\":\"open\"}]}";
    r = failed_with_http();
    CHECK(r.rc == PL_OK);
    hook_clear(&r);
    wait_requests(&f, 4);
    CHECK(strstr(logged, "could not find the payment page of order 7") != NULL);
    fake_stop(&f);
}

int main(void) {
    pl_log_set_sink(log_sink, NULL, 1);
    char *err = NULL;
    base = event_base_new();
    http = pl_http_client_new(base, &err);
    RUN(signature_fixed_vector);
    RUN(signature_several_v1_and_other_schemes);
    RUN(signature_wrong_body_time_or_case);
    RUN(signature_tolerance_300_seconds);
    RUN(signature_missing_or_malformed);
    RUN(webhook_secret_not_set);
    RUN(body_not_an_event);
    RUN(event_completed);
    RUN(event_completed_not_paid_yet_or_not_ours);
    RUN(event_expired_and_async_failed);
    RUN(event_payment_failed);
    RUN(event_charge_refunded);
    RUN(event_unknown_type_acknowledged);
    RUN(event_isk_amounts_in_stripe_units);
    RUN(create_session_without_discount);
    RUN(create_session_with_discount_is_one_line);
    RUN(create_session_odd_lines_and_isk);
    RUN(create_session_retry_and_failures);
    RUN(create_session_settings);
    RUN(payment_failed_closes_the_open_page);
    pl_http_client_free(http);
    event_base_free(base);
    pl_log_set_sink(NULL, NULL, 0);
    return check_done();
}
