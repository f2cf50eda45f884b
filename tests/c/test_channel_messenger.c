/* test_channel_messenger: the Messenger adapter (channel_messenger.c) on
 * fixed vectors — the verification handshake, X-Hub-Signature-256, webhook
 * parsing, rendering of each reply shape with Messenger's limits and how it
 * degrades past them, and the token added at send time. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/text.h"
#include "channels/channel.h"
#include "check.h"
#include "webhook_fixture.h"

/* The adapter itself (channel.c reaches it the same way). */
extern const pl_channel_adapter pl_channel_messenger;

#define VERIFY_ENV "BARISTA_TEST_MESSENGER_VERIFY"
#define SECRET_ENV "BARISTA_TEST_MESSENGER_SECRET"
#define TOKEN_ENV "BARISTA_TEST_MESSENGER_TOKEN"
#define SECRET "app-secret-42"
#define TOKEN "EAAB page token/+="

static json_t *settings;

static pl_channel_config config(void) {
    return (pl_channel_config){"barista", "messenger", settings};
}

static void set_env(void) {
    setenv(VERIFY_ENV, "verify me", 1);
    setenv(SECRET_ENV, SECRET, 1);
    setenv(TOKEN_ENV, TOKEN, 1);
}

/* --- webhook requests ------------------------------------------------------------ */


#define HOOK_URL "https://bot.example/v1/bots/barista/channels/messenger"

static int get(const char *query, pl_inbound *in, char **err) {
    pl_channel_config cfg = config();
    return webhook_get(&pl_channel_messenger, &cfg, HOOK_URL, query, in, err);
}

/* POSTs body with the X-Hub-Signature-256 header given (NULL: signed
 * correctly with the test secret; "": no header). */
static int post(const char *body, const char *signature, pl_inbound *in, char **err) {
    pl_channel_config cfg = config();
    return webhook_post_signed(&pl_channel_messenger, &cfg, HOOK_URL, body, "X-Hub-Signature-256", signature,
                               SECRET, 0, in, err);
}

/* A webhook body with one entry holding the given messaging items (JSON). */
static char *page_body(const char *messaging) {
    char *body = malloc(strlen(messaging) + 128);
    sprintf(body, "{\"object\":\"page\",\"entry\":[{\"id\":\"PAGE1\",\"time\":1458692752478,\"messaging\":[%s]}]}",
            messaging);
    return body;
}

/* Parses a correctly signed body; the events (new) or NULL. */
static json_t *events_of(const char *messaging) {
    char *body = page_body(messaging), *err = NULL;
    pl_inbound in;
    json_t *events = events_taken(post(body, NULL, &in, &err), &in, err);
    free(body);
    return events;
}

/* --- handshake --------------------------------------------------------------------- */

TEST(adapter_is_registered) {
    CHECK(pl_channel_find("messenger") == &pl_channel_messenger);
    CHECK_STR(pl_channel_messenger.default_api_base, "https://graph.facebook.com/v19.0");
    CHECK(pl_channel_messenger.synchronous == 0);
    CHECK(pl_channel_messenger.render && pl_channel_messenger.authorize);
    /* Meta's messaging window: 24 hours, 7 days for a person's words */
    CHECK(pl_channel_messenger.window_s == 24 * 3600 && pl_channel_messenger.agent_window_s == 7 * 24 * 3600);
}

TEST(handshake_answers_the_challenge) {
    pl_inbound in;
    char *err = NULL;
    CHECK(get("hub.mode=subscribe&hub.verify_token=verify%20me&hub.challenge=1158201444", &in, &err) == 0);
    CHECK(in.status == 200);
    CHECK_STR(in.answer, "1158201444");
    CHECK(json_array_size(in.events) == 0);
    pl_inbound_clear(&in);
    /* '+' is a space too, and the order of the parameters does not matter */
    CHECK(get("hub.challenge=abc&hub.verify_token=verify+me&hub.mode=subscribe", &in, &err) == 0);
    CHECK_STR(in.answer, "abc");
    pl_inbound_clear(&in);
    free(err);
}

TEST(handshake_refuses) {
    pl_inbound in;
    char *err = NULL;
    CHECK(get("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", &in, &err) != 0);
    CHECK(in.status == 403);
    CHECK(in.answer == NULL && in.events == NULL);
    CHECK(err && strstr(err, "verify_token"));
    free(err), err = NULL;
    pl_inbound_clear(&in);
    CHECK(get("hub.mode=subscribe&hub.verify_token=verify%20m&hub.challenge=1", &in, &err) != 0);
    CHECK(in.status == 403);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    CHECK(get("hub.mode=unsubscribe&hub.verify_token=verify%20me&hub.challenge=1", &in, &err) != 0);
    CHECK(in.status == 400);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    CHECK(get("hub.mode=subscribe&hub.verify_token=verify%20me", &in, &err) != 0);
    CHECK(in.status == 400);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    CHECK(get(NULL, &in, &err) != 0);
    CHECK(in.status == 400);
    free(err);
    pl_inbound_clear(&in);
}

TEST(handshake_without_verify_token_is_503) {
    unsetenv(VERIFY_ENV);
    pl_inbound in;
    char *err = NULL;
    CHECK(get("hub.mode=subscribe&hub.verify_token=&hub.challenge=1", &in, &err) != 0);
    CHECK(in.status == 503);
    CHECK(err && strstr(err, VERIFY_ENV));
    free(err);
    pl_inbound_clear(&in);
    set_env();
}

/* --- signature ------------------------------------------------------------------------ */

static const char *TEXT_ITEM =
    "{\"sender\":{\"id\":\"PSID1\"},\"recipient\":{\"id\":\"PAGE1\"},\"timestamp\":1458692752478,"
    "\"message\":{\"mid\":\"m_1\",\"text\":\"hello, world!\"}}";

TEST(signature_good) {
    char *body = page_body(TEXT_ITEM), *err = NULL;
    pl_inbound in;
    CHECK(post(body, NULL, &in, &err) == 0);
    CHECK(in.status == 200);
    CHECK(json_array_size(in.events) == 1);
    pl_inbound_clear(&in);
    /* upper-case hex digits are the same signature */
    char *hex = pl_channel_hmac_hex("sha256", SECRET, body, strlen(body));
    char upper[80];
    snprintf(upper, sizeof upper, "sha256=%s", hex);
    for (char *p = upper + 7; *p; p++) *p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
    CHECK(post(body, upper, &in, &err) == 0);
    pl_inbound_clear(&in);
    free(hex);
    free(body);
    free(err);
}

TEST(signature_bad_or_missing) {
    char *body = page_body(TEXT_ITEM), *err = NULL;
    pl_inbound in;
    /* signed with another secret */
    char *other = pl_channel_hmac_hex("sha256", "not-the-secret", body, strlen(body));
    char header_value[80];
    snprintf(header_value, sizeof header_value, "sha256=%s", other);
    CHECK(post(body, header_value, &in, &err) != 0);
    CHECK(in.status == 403 && in.events == NULL);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    /* the right signature of another body */
    char *tampered = page_body(TEXT_ITEM);
    char *sig = pl_channel_hmac_hex("sha256", SECRET, body, strlen(body));
    snprintf(header_value, sizeof header_value, "sha256=%s", sig);
    tampered[strlen(tampered) - 10] = 'X';
    CHECK(post(tampered, header_value, &in, &err) != 0);
    CHECK(in.status == 403 && in.events == NULL);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    /* truncated */
    header_value[40] = '\0';
    CHECK(post(body, header_value, &in, &err) != 0);
    CHECK(in.status == 403);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    /* the old SHA-1 header form is not accepted */
    CHECK(post(body, "sha1=0123456789abcdef0123456789abcdef01234567", &in, &err) != 0);
    CHECK(in.status == 401);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    /* no header at all */
    CHECK(post(body, "", &in, &err) != 0);
    CHECK(in.status == 401 && in.events == NULL);
    CHECK(err && strstr(err, "X-Hub-Signature-256"));
    free(err);
    pl_inbound_clear(&in);
    free(other);
    free(sig);
    free(tampered);
    free(body);
}

TEST(signature_without_app_secret_is_503) {
    unsetenv(SECRET_ENV);
    char *body = page_body(TEXT_ITEM), *err = NULL;
    pl_inbound in;
    CHECK(post(body, "sha256=00", &in, &err) != 0);
    CHECK(in.status == 503 && in.events == NULL);
    CHECK(err && strstr(err, SECRET_ENV));
    free(err);
    pl_inbound_clear(&in);
    free(body);
    set_env();
}

/* --- parsing -------------------------------------------------------------------------------- */

TEST(parse_text) {
    json_t *events = events_of(TEXT_ITEM);
    CHECK(json_array_size(events) == 1);
    json_t *ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "kind"), "message");
    CHECK_STR(field(ev, "id"), "m_1");
    CHECK_STR(field(ev, "user"), "PSID1");
    CHECK_STR(field(ev, "text"), "hello, world!");
    CHECK(json_object_get(ev, "payload") == NULL);
    json_t *info = json_object_get(ev, "info");
    CHECK_STR(field(info, "platform"), "messenger");
    CHECK_STR(field(info, "page_id"), "PAGE1");
    json_decref(events);
}

TEST(parse_quick_reply) {
    json_t *events = events_of(
        "{\"sender\":{\"id\":\"PSID1\"},\"recipient\":{\"id\":\"PAGE1\"},\"timestamp\":1458692752478,"
        "\"message\":{\"mid\":\"m_2\",\"text\":\"Latte · €3.80\",\"quick_reply\":{\"payload\":\"latte\"}}}");
    json_t *ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "payload"), "latte");
    CHECK_STR(field(ev, "text"), "Latte · €3.80");
    CHECK_STR(field(ev, "id"), "m_2");
    json_decref(events);
}

TEST(parse_short_payload_key) {
    char long_payload[1200];
    memset(long_payload, 'p', sizeof long_payload - 1);
    long_payload[sizeof long_payload - 1] = '\0';
    char *key = fake_short_payload(NULL, long_payload);
    char item[512];
    snprintf(item, sizeof item,
             "{\"sender\":{\"id\":\"PSID1\"},\"recipient\":{\"id\":\"PAGE1\"},\"timestamp\":1,"
             "\"message\":{\"mid\":\"m_3\",\"text\":\"Big\",\"quick_reply\":{\"payload\":\"%s\"}}},"
             "{\"sender\":{\"id\":\"PSID1\"},\"recipient\":{\"id\":\"PAGE1\"},\"timestamp\":2,"
             "\"postback\":{\"mid\":\"m_4\",\"title\":\"Choose\",\"payload\":\"%s\"}},"
             "{\"sender\":{\"id\":\"PSID1\"},\"recipient\":{\"id\":\"PAGE1\"},\"timestamp\":3,"
             "\"message\":{\"mid\":\"m_5\",\"text\":\"x\",\"quick_reply\":{\"payload\":\"~unknownkey12\"}}}",
             key, key);
    json_t *events = events_of(item);
    CHECK(json_array_size(events) == 3);
    CHECK_STR(field(json_array_get(events, 0), "payload"), long_payload);
    CHECK_STR(field(json_array_get(events, 1), "payload"), long_payload);
    /* a key nobody stored is passed on as it came */
    CHECK_STR(field(json_array_get(events, 2), "payload"), "~unknownkey12");
    json_decref(events);
    free(key);
    map_clear();
}

TEST(parse_postback) {
    json_t *events = events_of(
        "{\"sender\":{\"id\":\"PSID2\"},\"recipient\":{\"id\":\"PAGE1\"},\"timestamp\":1527459824,"
        "\"postback\":{\"mid\":\"m_pb\",\"title\":\"Choose\",\"payload\":\"croissant\"}},"
        "{\"sender\":{\"id\":\"PSID2\"},\"recipient\":{\"id\":\"PAGE1\"},\"timestamp\":\"1527459825\","
        "\"postback\":{\"title\":\"Get Started\",\"payload\":\"GET_STARTED\"}}");
    CHECK(json_array_size(events) == 2);
    json_t *ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "kind"), "message");
    CHECK_STR(field(ev, "id"), "m_pb");
    CHECK_STR(field(ev, "user"), "PSID2");
    CHECK_STR(field(ev, "payload"), "croissant");
    CHECK_STR(field(ev, "text"), "Choose");
    CHECK_STR(field(json_object_get(ev, "info"), "page_id"), "PAGE1");
    /* without a mid the id is sender and timestamp (the reference writes it as a string) */
    CHECK_STR(field(json_array_get(events, 1), "id"), "PSID2:1527459825");
    CHECK_STR(field(json_array_get(events, 1), "payload"), "GET_STARTED");
    json_decref(events);
}

TEST(parse_echo_is_ignored) {
    json_t *events = events_of(
        "{\"sender\":{\"id\":\"PAGE1\"},\"recipient\":{\"id\":\"PSID1\"},\"timestamp\":1457764197627,"
        "\"message\":{\"is_echo\":true,\"app_id\":1517776481860111,\"mid\":\"m_echo\",\"text\":\"Hi!\"}}");
    CHECK(events && json_array_size(events) == 0);
    json_decref(events);
}

TEST(parse_delivery_and_read) {
    json_t *events = events_of(
        "{\"sender\":{\"id\":\"PSID1\"},\"recipient\":{\"id\":\"PAGE1\"},"
        "\"delivery\":{\"mids\":[\"m_a\",\"m_b\"],\"watermark\":1458668856253}},"
        "{\"sender\":{\"id\":\"PSID1\"},\"recipient\":{\"id\":\"PAGE1\"},"
        "\"delivery\":{\"watermark\":1458668856300}},"
        "{\"sender\":{\"id\":\"PSID1\"},\"recipient\":{\"id\":\"PAGE1\"},\"timestamp\":1458668856463,"
        "\"read\":{\"watermark\":1458668856253}}");
    CHECK(json_array_size(events) == 4);
    json_t *a = json_array_get(events, 0), *b = json_array_get(events, 1);
    CHECK_STR(field(a, "kind"), "status");
    CHECK_STR(field(a, "status"), "delivered");
    CHECK_STR(field(a, "id"), "m_a");
    CHECK_STR(field(a, "user"), "PSID1");
    CHECK(json_integer_value(json_object_get(json_object_get(a, "detail"), "watermark")) == 1458668856253LL);
    CHECK_STR(field(b, "id"), "m_b");
    json_t *no_mids = json_array_get(events, 2);
    CHECK_STR(field(no_mids, "status"), "delivered");
    CHECK(json_object_get(no_mids, "id") == NULL);
    CHECK(json_integer_value(json_object_get(json_object_get(no_mids, "detail"), "watermark")) == 1458668856300LL);
    json_t *read = json_array_get(events, 3);
    CHECK_STR(field(read, "kind"), "status");
    CHECK_STR(field(read, "status"), "read");
    CHECK_STR(field(read, "user"), "PSID1");
    json_decref(events);
}

TEST(parse_several_entries) {
    const char *body =
        "{\"object\":\"page\",\"entry\":["
        "{\"id\":\"PAGE1\",\"time\":1,\"messaging\":[{\"sender\":{\"id\":\"A\"},\"recipient\":{\"id\":\"PAGE1\"},"
        "\"timestamp\":1,\"message\":{\"mid\":\"m_a1\",\"text\":\"one\"}}]},"
        "{\"id\":\"PAGE2\",\"time\":2,\"messaging\":[{\"sender\":{\"id\":\"B\"},\"recipient\":{\"id\":\"PAGE2\"},"
        "\"timestamp\":2,\"message\":{\"mid\":\"m_b1\",\"attachments\":[{\"type\":\"image\","
        "\"payload\":{\"url\":\"https://cdn.example/cat.jpg\"}}]}}]},"
        "{\"id\":\"PAGE1\",\"time\":3}]}";
    pl_inbound in;
    char *err = NULL;
    CHECK(post(body, NULL, &in, &err) == 0);
    CHECK(json_array_size(in.events) == 2);
    json_t *a = json_array_get(in.events, 0), *b = json_array_get(in.events, 1);
    CHECK_STR(field(a, "user"), "A");
    CHECK_STR(field(a, "text"), "one");
    CHECK_STR(field(b, "user"), "B");
    CHECK_STR(field(json_object_get(b, "info"), "page_id"), "PAGE2");
    CHECK(json_object_get(b, "text") == NULL);
    json_t *att = json_array_get(json_object_get(json_object_get(b, "info"), "attachments"), 0);
    CHECK_STR(field(att, "type"), "image");
    CHECK_STR(field(att, "url"), "https://cdn.example/cat.jpg");
    pl_inbound_clear(&in);
    free(err);
}

TEST(parse_refuses_other_bodies) {
    const char *bodies[] = {"not json", "[1,2]", "{\"object\":\"instagram\",\"entry\":[]}",
                            "{\"object\":\"page\"}"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        pl_inbound in;
        char *err = NULL;
        CHECK(post(bodies[i], NULL, &in, &err) != 0);
        CHECK(in.status == 400 && in.events == NULL);
        CHECK(err != NULL);
        free(err);
        pl_inbound_clear(&in);
    }
}

/* A signed body of the wrong shape: 400 naming the place, no events. */
static void check_refused_shape(const char *body, const char *place) {
    pl_inbound in;
    char *err = NULL;
    CHECK(post(body, NULL, &in, &err) != 0);
    CHECK(in.status == 400 && in.events == NULL);
    if (!err || !strstr(err, place)) printf("#   %s -> %s (expected %s)\n", body, err ? err : "(accepted)", place);
    CHECK(err && strstr(err, place));
    free(err);
    pl_inbound_clear(&in);
}

#define FROM "\"sender\":{\"id\":\"P\"},\"recipient\":{\"id\":\"PAGE\"},"

TEST(parse_refuses_bodies_of_the_wrong_shape) {
    check_refused_shape("{\"object\":\"page\",\"entry\":{}}", "entry");
    check_refused_shape("{\"object\":\"page\",\"entry\":[7]}", "entry[0] must be an object");
    check_refused_shape("{\"object\":\"page\",\"entry\":[{\"messaging\":{\"sender\":{\"id\":\"1\"}}}]}",
                        "entry[0].messaging must be an array");
    static const struct {
        const char *item, *place;
    } cases[] = {
        {"\"hi\"", "entry[0].messaging[0] must be an object"},
        {"{\"sender\":\"P\",\"message\":{\"text\":\"x\"}}", "messaging[0].sender must be an object"},
        {"{\"sender\":{\"id\":42},\"message\":{\"text\":\"x\"}}", "messaging[0].sender.id must be a non-empty string"},
        {"{\"sender\":{\"id\":\"\"},\"message\":{\"text\":\"x\"}}", "messaging[0].sender.id must be a non-empty string"},
        {"{" FROM "\"message\":{\"mid\":\"\",\"text\":\"x\"}}", "message.mid must be a non-empty string"},
        {"{" FROM "\"timestamp\":1.5,\"message\":{\"text\":\"x\"}}", "timestamp must be a string or an integer"},
        {"{" FROM "\"message\":\"hello\"}", "messaging[0].message must be an object"},
        {"{" FROM "\"message\":{\"mid\":\"m\",\"text\":[\"x\"]}}", "message.text must be a string"},
        {"{" FROM "\"message\":{\"mid\":\"m\",\"is_echo\":\"yes\"}}", "message.is_echo must be true or false"},
        {"{" FROM "\"message\":{\"quick_reply\":\"latte\"}}", "message.quick_reply must be an object"},
        {"{" FROM "\"message\":{\"attachments\":{\"type\":\"image\"}}}", "message.attachments must be an array"},
        {"{" FROM "\"message\":{\"attachments\":[{\"type\":\"image\",\"payload\":{\"url\":5}}]}}",
         "attachments[0].payload.url must be a string"},
        {"{" FROM "\"postback\":[\"latte\"]}", "messaging[0].postback must be an object"},
        {"{" FROM "\"postback\":{\"payload\":{\"sku\":\"latte\"}}}", "postback.payload must be a string"},
        {"{" FROM "\"delivery\":{\"mids\":\"m_1\"}}", "delivery.mids must be an array"},
        {"{" FROM "\"delivery\":{\"mids\":[\"m_1\",2]}}", "delivery.mids[1] must be a string"},
        {"{" FROM "\"read\":{\"watermark\":\"1\"}}", "read.watermark must be a number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *body = page_body(cases[i].item);
        check_refused_shape(body, cases[i].place);
        free(body);
    }
}

TEST(parse_accepts_unknown_fields_and_kinds) {
    /* fallback attachments carry a null payload; reactions, referrals and
     * standby entries are not read; new fields are not looked at */
    char *body = page_body("{" FROM "\"timestamp\":1,\"message\":{\"mid\":\"m\",\"new\":{},\"attachments\":["
                           "{\"type\":\"fallback\",\"payload\":null,\"title\":\"t\"}]}},"
                           "{" FROM "\"reaction\":{\"reaction\":\"love\",\"mid\":7}},"
                           "{" FROM "\"referral\":\"x\"}");
    pl_inbound in;
    char *err = NULL;
    CHECK(post(body, NULL, &in, &err) == 0);
    CHECK(in.status == 200 && json_array_size(in.events) == 1);
    pl_inbound_clear(&in);
    free(body);
    const char *standby = "{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"standby\":[{\"sender\":7}]}]}";
    CHECK(post(standby, NULL, &in, &err) == 0);
    CHECK(in.status == 200 && json_array_size(in.events) == 0);
    pl_inbound_clear(&in);
    free(err);
}

/* --- rendering ----------------------------------------------------------------------------------- */

/* Renders replies (JSON text) for PSID9; the calls (new). */
static json_t *render_with(const char *replies_json, const char *locale, int with_map) {
    pl_channel_config cfg = config();
    pl_outbound to = {.user = "PSID9", .locale = locale,
                      .short_payload = with_map ? fake_short_payload : NULL};
    json_error_t jerr;
    json_t *replies = json_loads(replies_json, 0, &jerr);
    if (!replies) printf("#   bad test JSON: %s\n", jerr.text);
    json_t *calls = NULL;
    char *err = NULL;
    if (pl_channel_messenger.render(&cfg, &to, replies, &calls, &err) != 0) printf("#   render: %s\n", err);
    free(err);
    json_decref(replies);
    return calls;
}

static json_t *render(const char *replies_json) { return render_with(replies_json, "en", 1); }

/* The message of call i, checking the call's documented shape (new). */
static json_t *message_of(const json_t *calls, size_t i) {
    const json_t *call = json_array_get(calls, i);
    CHECK_STR(field(call, "method"), "POST");
    CHECK_STR(field(call, "path"), "/me/messages");
    CHECK_STR(field(call, "content_type"), "application/json");
    CHECK(json_object_get(call, "headers") == NULL);
    json_t *body = json_loads(field(call, "body") ? field(call, "body") : "null", 0, NULL);
    CHECK_STR(field(json_object_get(body, "recipient"), "id"), "PSID9");
    CHECK_STR(field(body, "messaging_type"), "RESPONSE");
    json_t *message = json_incref(json_object_get(body, "message"));
    json_decref(body);
    return message;
}

/* UTF-16 code units of a UTF-8 string. */
static size_t units(const char *s) { return pl_channel_text_units(s); }

TEST(render_text) {
    json_t *calls = render("[{\"text\":\"Hi, I'm Bea.\"},{\"text\":\"Which drink?\"}]");
    CHECK(json_array_size(calls) == 2);
    json_t *m = message_of(calls, 0);
    CHECK_STR(field(m, "text"), "Hi, I'm Bea.");
    CHECK(json_object_size(m) == 1);
    json_decref(m);
    m = message_of(calls, 1);
    CHECK_STR(field(m, "text"), "Which drink?");
    json_decref(m);
    json_decref(calls);
    /* nothing to say: no call */
    calls = render("[{}]");
    CHECK(calls && json_array_size(calls) == 0);
    json_decref(calls);
}

TEST(render_quick_replies) {
    json_t *calls = render(
        "[{\"text\":\"Which drink?\",\"choices\":["
        "{\"title\":\"Latte · €3.80\",\"payload\":\"latte\"},"
        "{\"title\":\"Add White Chocolate Matcha Cookie\",\"payload\":\"matcha_cookie\"},"
        "{\"title\":\"抹茶ホワイトチョコクッキーを追加してください、お願いします\",\"payload\":\"ja\"},"
        "{\"title\":\"12345678901234567890\",\"payload\":\"exactly20\"}]}]");
    CHECK(json_array_size(calls) == 1);
    json_t *m = message_of(calls, 0);
    CHECK_STR(field(m, "text"), "Which drink?");
    json_t *qr = json_object_get(m, "quick_replies");
    CHECK(json_array_size(qr) == 4);
    CHECK_STR(field(json_array_get(qr, 0), "content_type"), "text");
    CHECK_STR(field(json_array_get(qr, 0), "title"), "Latte · €3.80");
    CHECK_STR(field(json_array_get(qr, 0), "payload"), "latte");
    CHECK_STR(field(json_array_get(qr, 1), "title"), "Add White Chocolate…");
    CHECK_STR(field(json_array_get(qr, 1), "payload"), "matcha_cookie");
    CHECK(units(field(json_array_get(qr, 2), "title")) == 20);
    CHECK_STR(field(json_array_get(qr, 2), "title"), "抹茶ホワイトチョコクッキーを追加してく…");
    CHECK_STR(field(json_array_get(qr, 3), "title"), "12345678901234567890");
    json_decref(m);
    json_decref(calls);
}

TEST(render_more_than_13_choices_become_numbered_text) {
    char *thirteen = reply_with_choices("Pick", 13), *fourteen = reply_with_choices("More", 14);
    char replies[4096];
    snprintf(replies, sizeof replies, "[%s]", thirteen);
    json_t *calls = render(replies);
    json_t *m = message_of(calls, 0);
    CHECK(json_array_size(json_object_get(m, "quick_replies")) == 13);
    json_decref(m);
    json_decref(calls);
    /* 14 choices after 13 quick replies: numbered on from 14, as the engine
     * counts the turn's choices when a number is typed */
    snprintf(replies, sizeof replies, "[%s,%s]", thirteen, fourteen);
    calls = render(replies);
    CHECK(json_array_size(calls) == 2);
    m = message_of(calls, 1);
    CHECK(json_object_get(m, "quick_replies") == NULL);
    const char *text = field(m, "text");
    CHECK(text && strncmp(text, "More\n14) Choice 1\n15) Choice 2\n", 31) == 0);
    CHECK(text && strstr(text, "\n27) Choice 14"));
    json_decref(m);
    json_decref(calls);
    free(thirteen);
    free(fourteen);
}

TEST(render_choices_without_text) {
    json_t *calls = render("[{\"text\":\"Hello\"},{\"choices\":[{\"title\":\"Yes\",\"payload\":\"y\"},"
                           "{\"title\":\"No\",\"payload\":\"n\"}]}]");
    CHECK(json_array_size(calls) == 2);
    json_t *m = message_of(calls, 1);
    CHECK_STR(field(m, "text"), "1) Yes\n2) No");
    CHECK(json_object_get(m, "quick_replies") == NULL);
    json_decref(m);
    json_decref(calls);
}

static const char *CARD_CROISSANT =
    "{\"sku\":\"croissant\",\"title\":\"Butter Croissant\",\"subtitle\":\"Flaky and buttery\","
    "\"image\":\"https://images.parley.example/barista/croissant.jpg\","
    "\"price\":{\"amount\":250,\"currency\":\"EUR\"},\"payload\":\"croissant\"}";

TEST(render_cards_as_a_carousel) {
    char replies[2048];
    snprintf(replies, sizeof replies,
             "[{\"cards\":[%s,{\"sku\":\"x\",\"title\":\"%s\",\"image\":\"/relative.jpg\","
             "\"price\":{\"amount\":180,\"currency\":\"EUR\"},\"payload\":\"x\"},"
             "{\"sku\":\"nopayload\",\"title\":\"Described\",\"subtitle\":\"Just words\"},"
             "{\"sku\":\"bare\",\"title\":\"Plain\"}]}]",
             CARD_CROISSANT,
             "An extraordinarily long product title that goes on and on well past eighty characters in all");
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 2);
    json_t *m = message_of(calls, 0);
    CHECK(json_object_get(m, "text") == NULL);
    json_t *att = json_object_get(m, "attachment");
    CHECK_STR(field(att, "type"), "template");
    json_t *payload = json_object_get(att, "payload");
    CHECK_STR(field(payload, "template_type"), "generic");
    json_t *els = json_object_get(payload, "elements");
    CHECK(json_array_size(els) == 3);
    json_t *e0 = json_array_get(els, 0);
    CHECK_STR(field(e0, "title"), "Butter Croissant");
    CHECK_STR(field(e0, "subtitle"), "€2.50 · Flaky and buttery");
    CHECK_STR(field(e0, "image_url"), "https://images.parley.example/barista/croissant.jpg");
    json_t *buttons = json_object_get(e0, "buttons");
    CHECK(json_array_size(buttons) == 1);
    CHECK_STR(field(json_array_get(buttons, 0), "type"), "postback");
    CHECK_STR(field(json_array_get(buttons, 0), "title"), "Choose");
    CHECK_STR(field(json_array_get(buttons, 0), "payload"), "croissant");
    json_t *e1 = json_array_get(els, 1);
    CHECK(units(field(e1, "title")) == 80);
    CHECK(strstr(field(e1, "title"), "…") != NULL);
    CHECK_STR(field(e1, "subtitle"), "€1.80");
    CHECK(json_object_get(e1, "image_url") == NULL);
    json_t *e2 = json_array_get(els, 2);
    CHECK_STR(field(e2, "title"), "Described");
    CHECK_STR(field(e2, "subtitle"), "Just words");
    CHECK(json_object_get(e2, "buttons") == NULL);
    json_decref(m);
    /* a card with nothing but a title cannot be an element: it is a line of text */
    m = message_of(calls, 1);
    CHECK_STR(field(m, "text"), "• Plain");
    json_decref(m);
    json_decref(calls);
    /* in Japanese the button speaks Japanese */
    snprintf(replies, sizeof replies, "[{\"cards\":[%s]}]", CARD_CROISSANT);
    calls = render_with(replies, "ja", 1);
    m = message_of(calls, 0);
    json_t *b = json_array_get(json_object_get(json_array_get(json_object_get(json_object_get(
                                   json_object_get(m, "attachment"), "payload"), "elements"), 0), "buttons"), 0);
    CHECK_STR(field(b, "title"), "これにする");
    json_decref(m);
    json_decref(calls);
}

TEST(render_more_than_10_cards_become_several_carousels) {
    char replies[16384];
    size_t len = (size_t)sprintf(replies, "[{\"text\":\"Our pastries\",\"cards\":[");
    for (int i = 0; i < 23; i++)
        len += (size_t)sprintf(replies + len, "%s{\"sku\":\"s%d\",\"title\":\"Card %d\",\"payload\":\"s%d\","
                               "\"price\":{\"amount\":100,\"currency\":\"EUR\"}}", i ? "," : "", i, i, i);
    sprintf(replies + len, "]}]");
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 4);
    json_t *m = message_of(calls, 0);
    CHECK_STR(field(m, "text"), "Our pastries");
    json_decref(m);
    size_t want[] = {10, 10, 3};
    for (size_t i = 0; i < 3; i++) {
        m = message_of(calls, i + 1);
        json_t *els = json_object_get(json_object_get(json_object_get(m, "attachment"), "payload"), "elements");
        CHECK(json_array_size(els) == want[i]);
        json_decref(m);
    }
    m = message_of(calls, 3);
    json_t *last = json_array_get(json_object_get(json_object_get(json_object_get(m, "attachment"), "payload"), "elements"), 2);
    CHECK_STR(field(last, "title"), "Card 22");
    json_decref(m);
    json_decref(calls);
}

TEST(render_text_cards_and_choices) {
    char replies[2048];
    snprintf(replies, sizeof replies,
             "[{\"text\":\"Butter Croissant would go nicely with that\",\"cards\":[%s],"
             "\"choices\":[{\"title\":\"Add Butter Croissant\",\"payload\":\"croissant\"},"
             "{\"title\":\"No, thanks\",\"payload\":\"no\"}]}]",
             CARD_CROISSANT);
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 2);
    json_t *text = message_of(calls, 0), *carousel = message_of(calls, 1);
    CHECK_STR(field(text, "text"), "Butter Croissant would go nicely with that");
    CHECK(json_object_get(text, "quick_replies") == NULL);
    CHECK(json_object_get(carousel, "attachment") != NULL);
    json_t *qr = json_object_get(carousel, "quick_replies");
    CHECK(json_array_size(qr) == 2);
    CHECK_STR(field(json_array_get(qr, 0), "title"), "Add Butter Croissant");
    CHECK_STR(field(json_array_get(qr, 1), "payload"), "no");
    json_decref(text);
    json_decref(carousel);
    json_decref(calls);
}

TEST(render_long_payloads) {
    char payload[1501];
    memset(payload, 'q', 1500);
    payload[1500] = '\0';
    char replies[4096];
    snprintf(replies, sizeof replies,
             "[{\"text\":\"Pick\",\"choices\":[{\"title\":\"Big\",\"payload\":\"%s\"},"
             "{\"title\":\"Small\",\"payload\":\"s\"}],"
             "\"cards\":[{\"sku\":\"b\",\"title\":\"Big card\",\"payload\":\"%s\"}]}]",
             payload, payload);
    /* with a payload map: a short key stands for the long payload */
    json_t *calls = render(replies);
    json_t *carousel = message_of(calls, 1);
    json_t *qr = json_object_get(carousel, "quick_replies");
    const char *key = field(json_array_get(qr, 0), "payload");
    CHECK(key && key[0] == '~' && strlen(key) <= 16);
    char *back = key ? fake_long_payload(NULL, key) : NULL;
    CHECK_STR(back, payload);
    free(back);
    CHECK_STR(field(json_array_get(qr, 1), "payload"), "s");
    json_t *button = json_array_get(json_object_get(json_array_get(json_object_get(json_object_get(
                                        json_object_get(carousel, "attachment"), "payload"), "elements"), 0), "buttons"), 0);
    CHECK_STR(field(button, "payload"), key);
    json_decref(carousel);
    json_decref(calls);
    map_clear();
    /* without one (outside a commit): numbered text, and a card without its button */
    calls = render_with(replies, "en", 0);
    json_t *text = message_of(calls, 0);
    CHECK_STR(field(text, "text"), "Pick\n1) Big\n2) Small");
    carousel = message_of(calls, 1);
    CHECK(json_object_get(carousel, "quick_replies") == NULL);
    json_t *el = json_array_get(json_object_get(json_object_get(json_object_get(carousel, "attachment"), "payload"), "elements"), 0);
    CHECK(json_object_get(el, "buttons") == NULL);
    json_decref(text);
    json_decref(carousel);
    json_decref(calls);
}

TEST(render_long_text_is_split) {
    size_t n = 4500;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) text[i] = i % 10 == 9 && i + 1 < n ? ' ' : 'a';
    text[n] = '\0';
    char *replies = malloc(n + 128);
    sprintf(replies, "[{\"text\":\"%s\",\"choices\":[{\"title\":\"OK\",\"payload\":\"ok\"}]}]", text);
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 3);
    char *joined = calloc(1, n + 16);
    for (size_t i = 0; i < json_array_size(calls); i++) {
        json_t *m = message_of(calls, i);
        const char *t = field(m, "text");
        CHECK(t && units(t) <= 2000);
        /* broken between words: the pieces joined by a space are the text */
        if (t && strlen(joined) + strlen(t) + 1 <= n + 1)
            sprintf(joined + strlen(joined), "%s%s", i ? " " : "", t);
        /* the quick replies go under the last piece */
        CHECK((json_object_get(m, "quick_replies") != NULL) == (i == 2));
        json_decref(m);
    }
    CHECK_STR(joined, text);
    free(joined);
    json_decref(calls);
    /* a text without spaces is cut at a character boundary */
    char *ja = malloc(2100 * 3 + 64);
    size_t len = (size_t)sprintf(ja, "[{\"text\":\"");
    for (int i = 0; i < 2100; i++) len += (size_t)sprintf(ja + len, "あ");
    sprintf(ja + len, "\"}]");
    calls = render(ja);
    CHECK(json_array_size(calls) == 2);
    json_t *m = message_of(calls, 0);
    CHECK(units(field(m, "text")) == 2000);
    json_decref(m);
    m = message_of(calls, 1);
    CHECK(units(field(m, "text")) == 100);
    json_decref(m);
    json_decref(calls);
    free(ja);
    free(text);
    free(replies);
}

/* --- links (a payment page) ------------------------------------------------------------------------ */

#define PAY_URL "http://127.0.0.1:8080/v1/bots/barista/payments/test/15?token=Zq3x"
#define PAY_LINK "{\"title\":\"Pay €3.80\",\"url\":\"" PAY_URL "\"}"

/* The payload of a message's button template, after checking the template
 * keeps the documented shape and limits: text of 1 to 640 characters, one
 * web_url button titled with 1 to 20 characters of valid UTF-8. */
static json_t *button_template(json_t *m) {
    json_t *att = json_object_get(m, "attachment");
    json_t *payload = json_object_get(att, "payload");
    CHECK_STR(field(att, "type"), "template");
    CHECK_STR(field(payload, "template_type"), "button");
    CHECK(json_object_get(m, "text") == NULL);
    const char *text = field(payload, "text");
    CHECK(text && *text && units(text) <= 640);
    json_t *buttons = json_object_get(payload, "buttons");
    CHECK(json_array_size(buttons) == 1);
    json_t *b = json_array_get(buttons, 0);
    CHECK_STR(field(b, "type"), "web_url");
    CHECK(json_object_size(b) == 3 && field(b, "url"));
    const char *title = field(b, "title");
    CHECK(title && *title && units(title) <= 20 && pl_text_is_utf8(title, strlen(title)));
    return payload;
}

static const char *url_button(const json_t *payload, const char *key) {
    return field(json_array_get(json_object_get(payload, "buttons"), 0), key);
}

TEST(render_link_alone_is_a_button_template) {
    json_t *calls = render("[{\"link\":" PAY_LINK "}]");
    CHECK(json_array_size(calls) == 1);
    json_t *m = message_of(calls, 0);
    json_t *t = button_template(m);
    CHECK_STR(field(t, "text"), "Pay €3.80"); /* a text is required: the title */
    CHECK_STR(url_button(t, "title"), "Pay €3.80");
    CHECK_STR(url_button(t, "url"), PAY_URL);
    CHECK(json_object_get(m, "quick_replies") == NULL);
    json_decref(m);
    json_decref(calls);
    /* no title: the URL above a button that says what it does, in the locale */
    calls = render_with("[{\"link\":{\"url\":\"https://pay.example/o/15\"}}]", "ja", 1);
    m = message_of(calls, 0);
    t = button_template(m);
    CHECK_STR(field(t, "text"), "https://pay.example/o/15");
    CHECK_STR(url_button(t, "title"), "リンクを開く");
    json_decref(m);
    json_decref(calls);
}

TEST(render_link_with_text_is_one_button_template) {
    json_t *calls = render("[{\"text\":\"Here's your order.\"},"
                           "{\"text\":\"Order #15: €3.80. Tap below to pay securely ☕\",\"link\":" PAY_LINK "}]");
    CHECK(json_array_size(calls) == 2);
    json_t *first = message_of(calls, 0), *pay = message_of(calls, 1);
    CHECK_STR(field(first, "text"), "Here's your order.");
    json_t *t = button_template(pay);
    CHECK_STR(field(t, "text"), "Order #15: €3.80. Tap below to pay securely ☕");
    CHECK_STR(url_button(t, "title"), "Pay €3.80");
    CHECK_STR(url_button(t, "url"), PAY_URL);
    json_decref(first);
    json_decref(pay);
    json_decref(calls);
}

TEST(render_link_with_choices_keeps_the_quick_replies_last) {
    /* the quick replies ride on the button template, the reply's last message */
    json_t *calls = render("[{\"text\":\"Order #15: €3.80.\",\"choices\":[{\"title\":\"Cancel order\","
                           "\"payload\":\"cancel\"}],\"link\":" PAY_LINK "}]");
    CHECK(json_array_size(calls) == 1);
    json_t *m = message_of(calls, 0);
    json_t *t = button_template(m);
    CHECK_STR(field(t, "text"), "Order #15: €3.80.");
    json_t *qr = json_object_get(m, "quick_replies");
    CHECK(json_array_size(qr) == 1);
    CHECK_STR(field(json_array_get(qr, 0), "payload"), "cancel");
    json_decref(m);
    json_decref(calls);
    /* without text the link's message still carries them as quick replies */
    calls = render("[{\"choices\":[{\"title\":\"Yes\",\"payload\":\"y\"}],\"link\":" PAY_LINK "}]");
    CHECK(json_array_size(calls) == 1);
    m = message_of(calls, 0);
    t = button_template(m);
    CHECK_STR(field(t, "text"), "Pay €3.80");
    CHECK(json_array_size(json_object_get(m, "quick_replies")) == 1);
    json_decref(m);
    json_decref(calls);
    /* with cards: the text and its button first, the carousel last with the quick replies */
    char replies[2048];
    snprintf(replies, sizeof replies,
             "[{\"text\":\"Pay, or add a pastry\",\"cards\":[%s],\"choices\":[{\"title\":\"No, thanks\","
             "\"payload\":\"no\"}],\"link\":" PAY_LINK "}]",
             CARD_CROISSANT);
    calls = render(replies);
    CHECK(json_array_size(calls) == 2);
    json_t *pay = message_of(calls, 0), *carousel = message_of(calls, 1);
    t = button_template(pay);
    CHECK_STR(field(t, "text"), "Pay, or add a pastry");
    CHECK(json_object_get(pay, "quick_replies") == NULL);
    CHECK_STR(field(json_object_get(json_object_get(carousel, "attachment"), "payload"), "template_type"), "generic");
    CHECK(json_array_size(json_object_get(carousel, "quick_replies")) == 1);
    json_decref(pay);
    json_decref(carousel);
    json_decref(calls);
    /* more than 13 choices: numbered lines in the button template's text */
    char *fourteen = reply_with_choices("Pick", 14);
    char *with_link = malloc(strlen(fourteen) + 256);
    sprintf(with_link, "[%.*s,\"link\":" PAY_LINK "}]", (int)strlen(fourteen) - 1, fourteen);
    calls = render(with_link);
    CHECK(json_array_size(calls) == 1);
    m = message_of(calls, 0);
    t = button_template(m);
    CHECK(field(t, "text") && strncmp(field(t, "text"), "Pick\n1) Choice 1\n", 17) == 0);
    CHECK(field(t, "text") && strstr(field(t, "text"), "\n14) Choice 14"));
    CHECK(json_object_get(m, "quick_replies") == NULL);
    json_decref(m);
    json_decref(calls);
    free(with_link);
    free(fourteen);
}

TEST(render_link_long_title_is_cut_on_a_character_boundary) {
    /* 18 characters, then an emoji (2 units) that would straddle the cut */
    json_t *calls = render("[{\"link\":{\"title\":\"Pay for order #15 \xF0\x9F\x98\x80 now\",\"url\":\"https://pay.example/o/15\"}}]");
    json_t *m = message_of(calls, 0);
    json_t *t = button_template(m);
    CHECK_STR(url_button(t, "title"), "Pay for order #15 …");
    CHECK_STR(field(t, "text"), "Pay for order #15 \xF0\x9F\x98\x80 now"); /* whole above the button */
    json_decref(m);
    json_decref(calls);
    calls = render("[{\"link\":{\"title\":\"ご注文の合計金額をこちらのボタンから安全にお支払い\","
                   "\"url\":\"https://pay.example/o/15\"}}]");
    m = message_of(calls, 0);
    t = button_template(m);
    CHECK(units(url_button(t, "title")) == 20);
    CHECK_STR(url_button(t, "title"), "ご注文の合計金額をこちらのボタンから安…");
    json_decref(m);
    json_decref(calls);
}

TEST(render_link_with_long_text_follows_it) {
    /* 700 characters: too long for a button template, short for a text message */
    char *text = malloc(701);
    memset(text, 'w', 700);
    text[700] = '\0';
    char *replies = malloc(1024);
    sprintf(replies, "[{\"text\":\"%s\",\"choices\":[{\"title\":\"OK\",\"payload\":\"ok\"}],\"link\":" PAY_LINK "}]", text);
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 2);
    json_t *first = message_of(calls, 0), *pay = message_of(calls, 1);
    CHECK_STR(field(first, "text"), text);
    CHECK(json_object_get(first, "quick_replies") == NULL);
    json_t *t = button_template(pay);
    CHECK_STR(field(t, "text"), "Pay €3.80");
    CHECK_STR(url_button(t, "url"), PAY_URL);
    CHECK(json_array_size(json_object_get(pay, "quick_replies")) == 1);
    json_decref(first);
    json_decref(pay);
    json_decref(calls);
    free(replies);
    free(text);
    /* past 2000: split text, then the button */
    size_t n = 4500;
    text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) text[i] = i % 10 == 9 && i + 1 < n ? ' ' : 'a';
    text[n] = '\0';
    replies = malloc(n + 256);
    sprintf(replies, "[{\"text\":\"%s\",\"link\":" PAY_LINK "}]", text);
    calls = render(replies);
    CHECK(json_array_size(calls) == 4);
    for (size_t i = 0; i < 3; i++) {
        json_t *m = message_of(calls, i);
        CHECK(field(m, "text") && units(field(m, "text")) <= 2000);
        json_decref(m);
    }
    pay = message_of(calls, 3);
    button_template(pay);
    json_decref(pay);
    json_decref(calls);
    free(replies);
    free(text);
}

TEST(render_link_that_is_not_a_web_address_stays_in_the_text) {
    json_t *calls = render("[{\"text\":\"Questions?\",\"link\":{\"title\":\"Call us\",\"url\":\"tel:+31201234567\"}}]");
    CHECK(json_array_size(calls) == 1);
    json_t *m = message_of(calls, 0);
    CHECK_STR(field(m, "text"), "Questions?\nCall us: tel:+31201234567");
    json_decref(m);
    json_decref(calls);
}

/* --- authorize ---------------------------------------------------------------------------------------- */

TEST(authorize_adds_the_page_token) {
    pl_channel_config cfg = config();
    json_t *headers = json_object();
    char *url = strdup("https://graph.facebook.com/v19.0/me/messages"), *user_pwd = NULL, *err = NULL;
    CHECK(pl_channel_messenger.authorize(&cfg, headers, &url, &user_pwd, &err) == 0);
    char *proof = pl_channel_hmac_hex("sha256", SECRET, TOKEN, strlen(TOKEN));
    char want[256];
    snprintf(want, sizeof want,
             "https://graph.facebook.com/v19.0/me/messages?access_token=EAAB%%20page%%20token%%2F%%2B%%3D"
             "&appsecret_proof=%s", proof);
    CHECK_STR(url, want);
    CHECK(json_object_size(headers) == 0);
    CHECK(user_pwd == NULL);
    free(url);
    /* a URL with a query already */
    url = strdup("http://127.0.0.1:9/me/messages?x=1");
    CHECK(pl_channel_messenger.authorize(&cfg, headers, &url, &user_pwd, &err) == 0);
    CHECK(strncmp(url, "http://127.0.0.1:9/me/messages?x=1&access_token=", 48) == 0);
    free(url);
    free(proof);
    /* no token: an error naming the variable, the URL untouched */
    unsetenv(TOKEN_ENV);
    url = strdup("https://graph.facebook.com/v19.0/me/messages");
    CHECK(pl_channel_messenger.authorize(&cfg, headers, &url, &user_pwd, &err) != 0);
    CHECK(err && strstr(err, TOKEN_ENV));
    CHECK_STR(url, "https://graph.facebook.com/v19.0/me/messages");
    free(url);
    free(err);
    json_decref(headers);
    set_env();
}

TEST(rendered_calls_hold_no_secret) {
    char replies[1024];
    snprintf(replies, sizeof replies, "[{\"text\":\"Hi\",\"cards\":[%s]}]", CARD_CROISSANT);
    json_t *calls = render(replies);
    char *dump = json_dumps(calls, JSON_COMPACT);
    CHECK(dump && !strstr(dump, "page token") && !strstr(dump, "page%20token") && !strstr(dump, SECRET) &&
          !strstr(dump, "access_token"));
    free(dump);
    json_decref(calls);
}

int main(void) {
    settings = json_pack("{s:s, s:s, s:s}", "verify_token_env", VERIFY_ENV, "app_secret_env", SECRET_ENV,
                         "page_access_token_env", TOKEN_ENV);
    set_env();
    RUN(adapter_is_registered);
    RUN(handshake_answers_the_challenge);
    RUN(handshake_refuses);
    RUN(handshake_without_verify_token_is_503);
    RUN(signature_good);
    RUN(signature_bad_or_missing);
    RUN(signature_without_app_secret_is_503);
    RUN(parse_text);
    RUN(parse_quick_reply);
    RUN(parse_short_payload_key);
    RUN(parse_postback);
    RUN(parse_echo_is_ignored);
    RUN(parse_delivery_and_read);
    RUN(parse_several_entries);
    RUN(parse_refuses_other_bodies);
    RUN(parse_refuses_bodies_of_the_wrong_shape);
    RUN(parse_accepts_unknown_fields_and_kinds);
    RUN(render_text);
    RUN(render_quick_replies);
    RUN(render_more_than_13_choices_become_numbered_text);
    RUN(render_choices_without_text);
    RUN(render_cards_as_a_carousel);
    RUN(render_more_than_10_cards_become_several_carousels);
    RUN(render_text_cards_and_choices);
    RUN(render_long_payloads);
    RUN(render_long_text_is_split);
    RUN(render_link_alone_is_a_button_template);
    RUN(render_link_with_text_is_one_button_template);
    RUN(render_link_with_choices_keeps_the_quick_replies_last);
    RUN(render_link_long_title_is_cut_on_a_character_boundary);
    RUN(render_link_with_long_text_follows_it);
    RUN(render_link_that_is_not_a_web_address_stays_in_the_text);
    RUN(authorize_adds_the_page_token);
    RUN(rendered_calls_hold_no_secret);
    json_decref(settings);
    return check_done();
}
