/* test_channel_slack: the Slack adapter (channel_slack.c) on fixed vectors —
 * the signing secret (Slack's own documented example first), the five-minute
 * window, url_verification, message.im events and what is ignored, tapped
 * buttons (block_actions), malformed bodies, the rendering of each reply
 * shape into chat.postMessage with Block Kit's limits and how it degrades
 * past them, the token added at send time, and {"ok": false} answers. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "channels/channel.h"
#include "check.h"
#include "webhook_fixture.h"

extern const pl_channel_adapter pl_channel_slack;

#define SECRET_ENV "BARISTA_TEST_SLACK_SIGNING_SECRET"
#define TOKEN_ENV "BARISTA_TEST_SLACK_BOT_TOKEN"
#define SECRET "e2e5f0c1-signing"
#define TOKEN "xoxb-17-test-token"
#define NOW 1767225600LL

static json_t *settings;

static pl_channel_config config(void) { return (pl_channel_config){"barista", "slack", settings}; }

static void set_env(void) {
    setenv(SECRET_ENV, SECRET, 1);
    setenv(TOKEN_ENV, TOKEN, 1);
}

/* --- webhook requests ---------------------------------------------------------------- */


/* "v0=" and the hex HMAC-SHA256 of "v0:ts:body" keyed by secret (new). */
static char *sign(const char *secret, const char *ts, const char *body) {
    char *base = malloc(strlen(ts) + strlen(body) + 8);
    sprintf(base, "v0:%s:%s", ts, body);
    char *hex = pl_channel_hmac_hex("sha256", secret, base, strlen(base));
    char *sig = malloc(strlen(hex) + 4);
    sprintf(sig, "v0=%s", hex);
    free(hex);
    free(base);
    return sig;
}

/* POSTs body with the given headers at time now; the adapter's answer. */
static int deliver(const char *body, const header *headers, long long now, pl_inbound *in, char **err) {
    pl_channel_config cfg = config();
    pl_webhook req = {.method = "POST", .url = "https://bot.example/v1/bots/barista/channels/slack",
                      .body = body, .body_len = strlen(body), .header = find_header,
                      .header_ctx = headers, .now = now, .long_payload = fake_long_payload};
    return webhook_inbound(&pl_channel_slack, &cfg, &req, in, err);
}

/* POSTs body signed correctly now (a JSON body, or a form when form). */
static int post_as(const char *body, int form, const char *retry_num, pl_inbound *in, char **err) {
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", NOW);
    char *sig = sign(SECRET, ts, body);
    header headers[] = {{"Content-Type", form ? "application/x-www-form-urlencoded" : "application/json"},
                        {"X-Slack-Request-Timestamp", ts},
                        {"X-Slack-Signature", sig},
                        {retry_num ? "X-Slack-Retry-Num" : "X-Other", retry_num ? retry_num : ""},
                        {NULL, NULL}};
    int rc = deliver(body, headers, NOW, in, err);
    free(sig);
    return rc;
}

static int post(const char *body, pl_inbound *in, char **err) { return post_as(body, 0, NULL, in, err); }

/* An event_callback carrying event (JSON), from workspace T1 to app A1
 * whose bot user is UBOT. */
static char *callback(const char *event, const char *event_id) {
    char *body = malloc(strlen(event) + 512);
    sprintf(body,
            "{\"token\":\"x\",\"team_id\":\"T1\",\"api_app_id\":\"A1\",\"event\":%s,"
            "\"type\":\"event_callback\",\"event_id\":\"%s\",\"event_time\":1767225590,"
            "\"authorizations\":[{\"team_id\":\"T1\",\"user_id\":\"UBOT\",\"is_bot\":true}]}",
            event, event_id);
    return body;
}

/* The events of a correctly signed event_callback (new), or NULL. */
static json_t *events_of(const char *event) {
    char *body = callback(event, "Ev01"), *err = NULL;
    pl_inbound in;
    int rc = post(body, &in, &err);
    if (rc != 0) printf("#   inbound failed: %s\n", err);
    json_t *events = rc == 0 && in.status == 200 ? json_incref(in.events) : NULL;
    pl_inbound_clear(&in);
    free(body);
    free(err);
    return events;
}

/* A form body: payload=<percent-encoded JSON> (new). */
static char *form_of(const char *json) {
    char *encoded = pl_channel_percent_encode(json);
    char *form = pl_strdupf("payload=%s", encoded);
    free(encoded);
    return form;
}

/* A block_actions payload from U7 in DM D7 with one action (JSON). */
static char *block_actions(const char *action) {
    char *json = malloc(strlen(action) + 512);
    sprintf(json,
            "{\"type\":\"block_actions\",\"user\":{\"id\":\"U7\",\"username\":\"sam\",\"team_id\":\"T1\"},"
            "\"api_app_id\":\"A1\",\"team\":{\"id\":\"T1\",\"domain\":\"shop\"},"
            "\"container\":{\"type\":\"message\",\"message_ts\":\"1767225500.000100\",\"channel_id\":\"D7\"},"
            "\"channel\":{\"id\":\"D7\",\"name\":\"directmessage\"},\"trigger_id\":\"1.2.3\","
            "\"actions\":[%s]}",
            action);
    char *form = form_of(json);
    free(json);
    return form;
}

static json_t *tap_events(const char *action) {
    char *body = block_actions(action), *err = NULL;
    pl_inbound in;
    json_t *events = events_taken(post_as(body, 1, NULL, &in, &err), &in, err);
    free(body);
    return events;
}

/* --- the signature ---------------------------------------------------------------------- */

TEST(adapter_is_registered) {
    CHECK(pl_channel_find("slack") == &pl_channel_slack);
    CHECK_STR(pl_channel_slack.default_api_base, "https://slack.com/api");
    CHECK(pl_channel_slack.synchronous == 0);
    CHECK(pl_channel_slack.render && pl_channel_slack.authorize && pl_channel_slack.refused);
    CHECK(pl_channel_can_push("slack"));
}

/* Slack's worked example ("Verifying requests from Slack"): its signing
 * secret, timestamp and slash-command body give this signature. */
#define DOC_SECRET "8f742231b10e8888abcd99yyyzzz85a5"
#define DOC_TIMESTAMP "1531420618"
#define DOC_BODY                                                                                             \
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"       \
    "channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"         \
    "response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&" \
    "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
#define DOC_SIGNATURE "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

TEST(signature_documented_example) {
    char *sig = sign(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY);
    CHECK_STR(sig, DOC_SIGNATURE);
    free(sig);
    json_t *doc = json_pack("{s:s}", "signing_secret", DOC_SECRET);
    pl_channel_config cfg = {"barista", "slack", doc};
    header headers[] = {{"Content-Type", "application/x-www-form-urlencoded"},
                        {"X-Slack-Request-Timestamp", DOC_TIMESTAMP},
                        {"X-Slack-Signature", DOC_SIGNATURE},
                        {NULL, NULL}};
    pl_webhook req = {.method = "POST", .body = DOC_BODY, .body_len = strlen(DOC_BODY), .header = find_header,
                      .header_ctx = headers, .now = 1531420618LL + 120};
    pl_inbound in = {.status = 200};
    char *err = NULL;
    /* the signature holds; a slash command is no interactivity payload, so
     * the body itself is refused — with 400, not 401/403 */
    CHECK(pl_channel_slack.inbound(&cfg, &req, &in, &err) != 0);
    CHECK(in.status == 400);
    CHECK(err && strstr(err, "payload"));
    free(err);
    err = NULL;
    pl_inbound_clear(&in);
    /* one byte of the body changed: 403 */
    req.body_len--;
    CHECK(pl_channel_slack.inbound(&cfg, &req, &in, &err) != 0);
    CHECK(in.status == 403);
    free(err);
    err = NULL;
    pl_inbound_clear(&in);
    /* the same request six minutes later is a replay: 401 */
    req.body_len++;
    req.now = 1531420618LL + 360;
    CHECK(pl_channel_slack.inbound(&cfg, &req, &in, &err) != 0);
    CHECK(in.status == 401);
    CHECK(err && strstr(err, "5 minutes"));
    free(err);
    pl_inbound_clear(&in);
    json_decref(doc);
}

TEST(signature_refusals) {
    const char *body = "{\"type\":\"url_verification\",\"challenge\":\"abc\"}";
    char ts[32], old[32], soon[32], edge[32];
    snprintf(ts, sizeof ts, "%lld", NOW);
    snprintf(old, sizeof old, "%lld", NOW - 301);
    snprintf(soon, sizeof soon, "%lld", NOW + 301);
    snprintf(edge, sizeof edge, "%lld", NOW - 300);
    char *good = sign(SECRET, ts, body), *wrong = sign("not-the-secret", ts, body);
    char *stale = sign(SECRET, old, body), *future = sign(SECRET, soon, body), *at_edge = sign(SECRET, edge, body);
    char *upper = strdup(good);
    for (char *p = upper + 3; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    struct {
        const char *ts, *sig;
        int status;
    } cases[] = {
        {ts, good, 200},   {ts, upper, 200}, {edge, at_edge, 200}, {ts, NULL, 401},   {NULL, good, 401},
        {"12a", good, 401}, {"", good, 401},   {old, stale, 401},    {soon, future, 401}, {ts, wrong, 403},
        {ts, "v0=", 403},  {ts, "v1=00", 401}, {ts, good + 3, 401}, {old, good, 401},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        header headers[] = {{cases[i].ts ? "X-Slack-Request-Timestamp" : "X-A", cases[i].ts ? cases[i].ts : ""},
                            {cases[i].sig ? "X-Slack-Signature" : "X-B", cases[i].sig ? cases[i].sig : ""},
                            {NULL, NULL}};
        pl_inbound in;
        char *err = NULL;
        int rc = deliver(body, headers, NOW, &in, &err);
        if (in.status != cases[i].status) printf("#   case %zu: %d (%s)\n", i, in.status, err ? err : "");
        CHECK(in.status == cases[i].status);
        CHECK((rc == 0) == (cases[i].status == 200));
        CHECK(rc == 0 || (err && *err));
        free(err);
        pl_inbound_clear(&in);
    }
    /* a tampered body under a good signature */
    header headers[] = {{"X-Slack-Request-Timestamp", ts}, {"X-Slack-Signature", good}, {NULL, NULL}};
    pl_inbound in;
    char *err = NULL;
    CHECK(deliver("{\"type\":\"url_verification\",\"challenge\":\"abd\"}", headers, NOW, &in, &err) != 0);
    CHECK(in.status == 403);
    free(err);
    pl_inbound_clear(&in);
    free(good);
    free(wrong);
    free(stale);
    free(future);
    free(at_edge);
    free(upper);
}

TEST(signature_without_signing_secret_is_503) {
    unsetenv(SECRET_ENV);
    pl_inbound in;
    char *err = NULL;
    CHECK(post("{\"type\":\"url_verification\",\"challenge\":\"abc\"}", &in, &err) != 0);
    CHECK(in.status == 503);
    CHECK(err && strstr(err, SECRET_ENV));
    free(err);
    pl_inbound_clear(&in);
    set_env();
}

TEST(only_posts) {
    pl_channel_config cfg = config();
    pl_webhook req = {.method = "GET", .query = "a=b", .body = "", .header = find_header, .now = NOW};
    pl_inbound in = {.status = 200};
    char *err = NULL;
    CHECK(pl_channel_slack.inbound(&cfg, &req, &in, &err) != 0);
    CHECK(in.status == 405);
    free(err);
    pl_inbound_clear(&in);
}

/* --- the Events API ------------------------------------------------------------------------ */

TEST(url_verification_answers_the_challenge) {
    pl_inbound in;
    char *err = NULL;
    CHECK(post("{\"token\":\"Jhj5dZrVaK7ZwHHjRyZWjbDl\",\"challenge\":\"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P\","
               "\"type\":\"url_verification\"}", &in, &err) == 0);
    CHECK(in.status == 200);
    CHECK_STR(in.answer, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    CHECK_STR(in.answer_type, "text/plain");
    CHECK(json_is_array(in.events) && json_array_size(in.events) == 0);
    pl_inbound_clear(&in);
    CHECK(post("{\"type\":\"url_verification\"}", &in, &err) != 0);
    CHECK(in.status == 400 && err && strstr(err, "challenge"));
    free(err);
    pl_inbound_clear(&in);
}

static const char *DM =
    "{\"client_msg_id\":\"5f1c\",\"type\":\"message\",\"text\":\"a latte &amp; a croissant &lt;3\","
    "\"user\":\"U7\",\"ts\":\"1767225589.000200\",\"team\":\"T1\",\"channel\":\"D7\","
    "\"event_ts\":\"1767225589.000200\",\"channel_type\":\"im\"}";

TEST(parse_direct_message) {
    json_t *events = events_of(DM);
    CHECK(json_array_size(events) == 1);
    json_t *ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "kind"), "message");
    CHECK_STR(field(ev, "id"), "Ev01");
    CHECK_STR(field(ev, "user"), "U7");
    CHECK_STR(field(ev, "text"), "a latte & a croissant <3");
    CHECK(json_object_get(ev, "payload") == NULL);
    json_t *want = json_pack("{s:s, s:s, s:s, s:s}", "platform", "slack", "team_id", "T1", "channel_id", "D7",
                             "user_id", "U7");
    CHECK(json_equal(json_object_get(ev, "info"), want));
    json_decref(want);
    json_decref(events);
}

TEST(a_redelivery_is_the_same_event) {
    char *body = callback(DM, "Ev0PV52K21"), *err = NULL;
    pl_inbound first, again;
    CHECK(post(body, &first, &err) == 0);
    CHECK(post_as(body, 0, "1", &again, &err) == 0);
    CHECK(again.status == 200);
    CHECK(json_array_size(first.events) == 1 && json_equal(first.events, again.events));
    CHECK_STR(field(json_array_get(again.events, 0), "id"), "Ev0PV52K21");
    pl_inbound_clear(&first);
    pl_inbound_clear(&again);
    free(body);
    free(err);
}

TEST(ignored_without_a_turn) {
    const char *ignored[] = {
        /* another bot, and the app's own messages (its bot user, its app id) */
        "{\"type\":\"message\",\"subtype\":\"bot_message\",\"text\":\"hi\",\"bot_id\":\"B1\",\"channel\":\"D7\","
        "\"channel_type\":\"im\"}",
        "{\"type\":\"message\",\"text\":\"hi\",\"user\":\"U9\",\"bot_id\":\"B9\",\"channel\":\"D7\",\"channel_type\":\"im\"}",
        "{\"type\":\"message\",\"text\":\"Which drink?\",\"user\":\"UBOT\",\"channel\":\"D7\",\"channel_type\":\"im\"}",
        "{\"type\":\"message\",\"text\":\"hi\",\"user\":\"U5\",\"app_id\":\"A1\",\"channel\":\"D7\",\"channel_type\":\"im\"}",
        /* edits, deletions, any subtype */
        "{\"type\":\"message\",\"subtype\":\"message_changed\",\"hidden\":true,\"channel\":\"D7\",\"channel_type\":\"im\","
        "\"message\":{\"type\":\"message\",\"user\":\"U7\",\"text\":\"a mocha\"},\"previous_message\":{\"text\":\"a latte\"}}",
        "{\"type\":\"message\",\"subtype\":\"message_deleted\",\"hidden\":true,\"channel\":\"D7\",\"channel_type\":\"im\","
        "\"deleted_ts\":\"1.2\"}",
        "{\"type\":\"message\",\"subtype\":\"file_share\",\"user\":\"U7\",\"text\":\"\",\"channel\":\"D7\",\"channel_type\":\"im\"}",
        /* not a DM */
        "{\"type\":\"message\",\"text\":\"hi\",\"user\":\"U7\",\"channel\":\"C1\",\"channel_type\":\"channel\"}",
        "{\"type\":\"message\",\"text\":\"hi\",\"user\":\"U7\",\"channel\":\"G1\"}",
        /* nothing said */
        "{\"type\":\"message\",\"text\":\"  \",\"user\":\"U7\",\"channel\":\"D7\",\"channel_type\":\"im\"}",
        "{\"type\":\"message\",\"user\":\"U7\",\"channel\":\"D7\",\"channel_type\":\"im\"}",
        /* other events, whose fields differ ("user" an object) */
        "{\"type\":\"app_home_opened\",\"user\":\"U7\",\"channel\":\"D7\",\"tab\":\"messages\"}",
        "{\"type\":\"user_change\",\"user\":{\"id\":\"U7\"}}",
    };
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++) {
        json_t *events = events_of(ignored[i]);
        if (!events || json_array_size(events) != 0) printf("#   case %zu\n", i);
        CHECK(events && json_array_size(events) == 0);
        json_decref(events);
    }
    /* Slack's notice that it drops events for a while, and types it may add */
    const char *bodies[] = {"{\"token\":\"x\",\"type\":\"app_rate_limited\",\"team_id\":\"T1\","
                            "\"minute_rate_limited\":1518467820,\"api_app_id\":\"A1\"}",
                            "{\"type\":\"something_new\",\"x\":[1]}"};
    for (size_t i = 0; i < 2; i++) {
        pl_inbound in;
        char *err = NULL;
        CHECK(post(bodies[i], &in, &err) == 0);
        CHECK(in.status == 200 && json_array_size(in.events) == 0 && !in.answer);
        pl_inbound_clear(&in);
        free(err);
    }
}

TEST(malformed_bodies_are_400) {
    struct {
        const char *body, *why;
    } cases[] = {
        {"", "not JSON"},
        {"{\"type\":", "not JSON"},
        {"[1,2]", "no type"},
        {"{\"event\":{}}", "no type"},
        {"{\"type\":7}", "no type"},
        {"{\"type\":\"event_callback\",\"event_id\":\"Ev1\"}", "event is missing"},
        {"{\"type\":\"event_callback\",\"event_id\":\"Ev1\",\"event\":\"message\"}", "event must be an object"},
        {"{\"type\":\"event_callback\",\"event_id\":\"Ev1\",\"event\":{\"text\":\"hi\"}}", "event.type"},
        {"{\"type\":\"event_callback\",\"event\":{\"type\":\"message\"}}", "event_id"},
        {"{\"type\":\"event_callback\",\"event_id\":\"\",\"event\":{\"type\":\"message\"}}", "event_id"},
        {"{\"type\":\"event_callback\",\"event_id\":\"Ev1\",\"authorizations\":{},\"event\":{\"type\":\"message\"}}",
         "authorizations"},
        {"{\"type\":\"event_callback\",\"event_id\":\"Ev1\",\"event\":{\"type\":\"message\",\"user\":7,"
         "\"channel_type\":\"im\",\"text\":\"hi\"}}", "event.user"},
        {"{\"type\":\"event_callback\",\"event_id\":\"Ev1\",\"event\":{\"type\":\"message\",\"user\":\"\","
         "\"channel_type\":\"im\",\"text\":\"hi\"}}", "event.user"},
        {"{\"type\":\"event_callback\",\"event_id\":\"Ev1\",\"event\":{\"type\":\"message\",\"user\":\"U1\","
         "\"channel_type\":\"im\",\"text\":[\"hi\"]}}", "event.text"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pl_inbound in;
        char *err = NULL;
        int rc = post(cases[i].body, &in, &err);
        if (rc == 0 || in.status != 400 || !err || !strstr(err, cases[i].why))
            printf("#   case %zu: %d %s\n", i, in.status, err ? err : "(no reason)");
        CHECK(rc != 0 && in.status == 400 && err && strstr(err, cases[i].why));
        CHECK(in.events == NULL);
        free(err);
        pl_inbound_clear(&in);
    }
}

/* --- interactivity ---------------------------------------------------------------------------- */

TEST(tap_of_a_choice) {
    json_t *events = tap_events("{\"action_id\":\"choice-1\",\"block_id\":\"b\",\"text\":{\"type\":\"plain_text\","
                                "\"text\":\"Latte · €3.80\",\"emoji\":true},\"value\":\"latte\",\"type\":\"button\","
                                "\"action_ts\":\"1767225595.123456\"}");
    CHECK(json_array_size(events) == 1);
    json_t *ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "kind"), "message");
    CHECK_STR(field(ev, "id"), "1767225595.123456:U7");
    CHECK_STR(field(ev, "user"), "U7");
    CHECK_STR(field(ev, "payload"), "latte");
    CHECK_STR(field(ev, "text"), "Latte · €3.80");
    json_t *want = json_pack("{s:s, s:s, s:s, s:s}", "platform", "slack", "team_id", "T1", "channel_id", "D7",
                             "user_id", "U7");
    CHECK(json_equal(json_object_get(ev, "info"), want));
    json_decref(want);
    json_decref(events);
}

TEST(tap_of_a_long_payload_key) {
    char *payload = malloc(2600);
    memset(payload, 'x', 2599);
    payload[2599] = '\0';
    char *key = fake_short_payload(NULL, payload);
    char action[256];
    snprintf(action, sizeof action, "{\"action_id\":\"choice-1\",\"text\":{\"type\":\"plain_text\",\"text\":\"Big\"},"
                                    "\"value\":\"%s\",\"type\":\"button\",\"action_ts\":\"1.5\"}", key);
    json_t *events = tap_events(action);
    CHECK_STR(field(json_array_get(events, 0), "payload"), payload);
    json_decref(events);
    /* a key nobody stored stays as it was */
    events = tap_events("{\"action_id\":\"c\",\"value\":\"~AAAAAAAAAAAA\",\"type\":\"button\",\"action_ts\":\"1.6\"}");
    CHECK_STR(field(json_array_get(events, 0), "payload"), "~AAAAAAAAAAAA");
    CHECK(json_object_get(json_array_get(events, 0), "text") == NULL);
    json_decref(events);
    free(key);
    free(payload);
    map_clear();
}

TEST(taps_without_a_turn) {
    /* the payment link's URL button, a button without value, a select menu */
    const char *actions[] = {
        "{\"action_id\":\"link\",\"text\":{\"type\":\"plain_text\",\"text\":\"Pay\"},\"url\":\"https://pay.example/1\","
        "\"type\":\"button\",\"action_ts\":\"1.1\"}",
        "{\"action_id\":\"x\",\"text\":{\"type\":\"plain_text\",\"text\":\"X\"},\"type\":\"button\",\"action_ts\":\"1.2\"}",
        "{\"action_id\":\"s\",\"type\":\"static_select\",\"selected_option\":{\"value\":\"v\"},\"action_ts\":\"1.3\"}",
    };
    for (size_t i = 0; i < sizeof actions / sizeof *actions; i++) {
        json_t *events = tap_events(actions[i]);
        CHECK(events && json_array_size(events) == 0);
        json_decref(events);
    }
    /* other interactions: acknowledged unread */
    char *body = form_of("{\"type\":\"view_submission\",\"user\":{\"id\":\"U7\"},\"view\":{}}"), *err = NULL;
    pl_inbound in;
    CHECK(post_as(body, 1, NULL, &in, &err) == 0);
    CHECK(in.status == 200 && json_array_size(in.events) == 0);
    pl_inbound_clear(&in);
    free(body);
    free(err);
}

TEST(malformed_interactions_are_400) {
    const char *payloads[] = {
        "[1]",
        "not json",
        "{\"type\":\"block_actions\",\"actions\":[]}",
        "{\"type\":\"block_actions\",\"user\":{\"id\":\"\"},\"actions\":[]}",
        "{\"type\":\"block_actions\",\"user\":{\"id\":\"U7\"},\"actions\":{}}",
        "{\"type\":\"block_actions\",\"user\":{\"id\":\"U7\"},\"actions\":[{\"type\":\"button\",\"value\":7}]}",
        "{\"type\":\"block_actions\",\"user\":{\"id\":\"U7\"},\"channel\":\"D7\",\"actions\":[]}",
    };
    /* besides the payloads: a form without payload, a cut payload, and a
     * good tap's form with its name in another case (form names are exact)
     * or with bytes that are not UTF-8 */
    char *tap = block_actions("{\"type\":\"button\",\"action_id\":\"c1\",\"value\":\"latte\","
                              "\"action_ts\":\"1767225600.1\",\"text\":{\"type\":\"plain_text\",\"text\":\"Latte\"}}");
    char *upper = pl_strdupf("PAYLOAD%s", tap + strlen("payload"));
    char *latin1 = pl_strdupf("%s&note=caf%%E9", tap);
    const char *forms[] = {"text=hello", "payload=%7B%22type", upper, latin1};
    size_t nforms = sizeof forms / sizeof *forms;
    for (size_t i = 0; i < sizeof payloads / sizeof *payloads + nforms; i++) {
        char *body = i < nforms ? strdup(forms[i]) : form_of(payloads[i - nforms]);
        pl_inbound in;
        char *err = NULL;
        int rc = post_as(body, 1, NULL, &in, &err);
        if (rc == 0 || in.status != 400) printf("#   case %zu: %d\n", i, in.status);
        CHECK(rc != 0 && in.status == 400 && err && *err);
        CHECK(in.events == NULL);
        free(err);
        free(body);
        pl_inbound_clear(&in);
    }
    free(tap);
    free(upper);
    free(latin1);
}

/* --- rendering ------------------------------------------------------------------------------------- */

static json_t *dm_info;

/* Renders replies (JSON text) for U7 in DM D7; the calls (new). */
static json_t *render_with(const char *replies_json, const json_t *info, int with_map) {
    pl_channel_config cfg = config();
    pl_outbound to = {.user = "U7", .info = info, .locale = "en",
                      .short_payload = with_map ? fake_short_payload : NULL};
    json_error_t jerr;
    json_t *replies = json_loads(replies_json, 0, &jerr);
    if (!replies) printf("#   bad test JSON: %s\n", jerr.text);
    json_t *calls = NULL;
    char *err = NULL;
    if (pl_channel_slack.render(&cfg, &to, replies, &calls, &err) != 0) printf("#   render: %s\n", err);
    free(err);
    json_decref(replies);
    return calls;
}

static json_t *render(const char *replies_json) { return render_with(replies_json, dm_info, 1); }

/* UTF-16 code units of a UTF-8 string; 0 for none. */
static size_t units(const char *s) { return s ? pl_channel_text_units(s) : 0; }

/* The body of call i, checking the call's documented shape and limits (new). */
static json_t *message_of(const json_t *calls, size_t i) {
    const json_t *call = json_array_get(calls, i);
    CHECK_STR(field(call, "method"), "POST");
    CHECK_STR(field(call, "path"), "/chat.postMessage");
    CHECK_STR(field(call, "content_type"), "application/json; charset=utf-8");
    json_t *body = json_loads(field(call, "body") ? field(call, "body") : "null", 0, NULL);
    CHECK(field(body, "channel") && *field(body, "channel"));
    CHECK(units(field(body, "text")) > 0 && units(field(body, "text")) <= 4000);
    json_t *blocks = json_object_get(body, "blocks");
    CHECK(json_array_size(blocks) >= 1 && json_array_size(blocks) <= 50);
    size_t b;
    json_t *block;
    json_array_foreach(blocks, b, block) {
        const char *type = field(block, "type");
        if (type && strcmp(type, "section") == 0) {
            CHECK_STR(field(json_object_get(block, "text"), "type"), "mrkdwn");
            CHECK(units(field(json_object_get(block, "text"), "text")) <= 3000);
        } else if (type && strcmp(type, "actions") == 0) {
            size_t n = json_array_size(json_object_get(block, "elements"));
            CHECK(n >= 1 && n <= 25);
        } else {
            CHECK_STR(type, "image");
        }
    }
    return body;
}

/* Block j of call i's message (new reference). */
static json_t *block_of(const json_t *calls, size_t i, size_t j) {
    json_t *body = message_of(calls, i);
    json_t *block = json_incref(json_array_get(json_object_get(body, "blocks"), j));
    json_decref(body);
    return block;
}

static const char *section_text(const json_t *block) { return field(json_object_get(block, "text"), "text"); }

TEST(render_text) {
    json_t *calls = render("[{\"text\":\"Hi, I'm Bea.\"},{\"text\":\"Tea & cake <now> *please*\"}]");
    CHECK(json_array_size(calls) == 2);
    json_t *body = message_of(calls, 0);
    CHECK_STR(field(body, "channel"), "D7");
    CHECK_STR(field(body, "text"), "Hi, I'm Bea.");
    CHECK(json_array_size(json_object_get(body, "blocks")) == 1);
    CHECK_STR(section_text(json_array_get(json_object_get(body, "blocks"), 0)), "Hi, I'm Bea.");
    json_decref(body);
    body = message_of(calls, 1);
    CHECK_STR(field(body, "text"), "Tea &amp; cake &lt;now&gt; *please*");
    CHECK_STR(section_text(json_array_get(json_object_get(body, "blocks"), 0)), "Tea &amp; cake &lt;now&gt; *please*");
    json_decref(body);
    json_decref(calls);
    /* nothing to say: no call */
    calls = render("[{}, {\"text\":\"  \"}]");
    CHECK(calls && json_array_size(calls) == 0);
    json_decref(calls);
    /* no DM known (an agent's reply, a reminder): the user's id */
    calls = render_with("[{\"text\":\"Still there?\"}]", NULL, 1);
    body = message_of(calls, 0);
    CHECK_STR(field(body, "channel"), "U7");
    json_decref(body);
    json_decref(calls);
}

TEST(render_long_text_is_split_into_sections) {
    size_t n = 6999;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) text[i] = i % 10 == 9 ? ' ' : (i % 100 == 50 ? '&' : 'a');
    text[n] = '\0';
    json_t *replies = json_pack("[{s:s}]", "text", text);
    char *replies_json = json_dumps(replies, 0);
    json_t *calls = render(replies_json);
    CHECK(json_array_size(calls) == 1);
    json_t *body = message_of(calls, 0);
    json_t *blocks = json_object_get(body, "blocks");
    CHECK(json_array_size(blocks) == 3);
    /* the pieces end on words and say everything, escaped */
    size_t total = 0, i;
    json_t *block;
    json_array_foreach(blocks, i, block) {
        const char *s = section_text(block);
        CHECK(s && s[strlen(s) - 1] != ' ' && strstr(s, "&amp;"));
        for (const char *p = s; p && *p; p++) total += strncmp(p, "&amp;", 5) == 0 ? (p += 4, 1) : 1;
    }
    CHECK(total >= n - 2 && total <= n);
    /* the notification text is cut to 4000, with "…" */
    const char *fallback = field(body, "text");
    CHECK(units(fallback) <= 4000 && strstr(fallback, "…"));
    json_decref(body);
    json_decref(calls);
    free(replies_json);
    json_decref(replies);
    free(text);
}

TEST(render_choices_as_buttons) {
    json_t *calls = render(
        "[{\"text\":\"Which drink?\",\"choices\":["
        "{\"title\":\"Latte · €3.80\",\"payload\":\"latte\"},"
        "{\"title\":\"An extraordinarily long choice title that goes on and on well past seventy-five characters\","
        "\"payload\":\"long\"},"
        "{\"title\":\"Mocha\"}]}]");
    CHECK(json_array_size(calls) == 1);
    json_t *body = message_of(calls, 0);
    json_t *blocks = json_object_get(body, "blocks");
    CHECK(json_array_size(blocks) == 2);
    CHECK_STR(section_text(json_array_get(blocks, 0)), "Which drink?");
    json_t *actions = json_array_get(blocks, 1);
    CHECK_STR(field(actions, "type"), "actions");
    json_t *elements = json_object_get(actions, "elements");
    CHECK(json_array_size(elements) == 3);
    json_t *b = json_array_get(elements, 0);
    CHECK_STR(field(b, "type"), "button");
    CHECK_STR(field(json_object_get(b, "text"), "type"), "plain_text");
    CHECK_STR(field(json_object_get(b, "text"), "text"), "Latte · €3.80");
    CHECK_STR(field(b, "value"), "latte");
    CHECK_STR(field(b, "action_id"), "choice-1");
    b = json_array_get(elements, 1);
    CHECK(units(field(json_object_get(b, "text"), "text")) == 75);
    CHECK(strstr(field(json_object_get(b, "text"), "text"), "…") != NULL);
    CHECK_STR(field(b, "action_id"), "choice-2");
    /* no payload: the title is the value */
    CHECK_STR(field(json_array_get(elements, 2), "value"), "Mocha");
    /* the notification names the choices as numbers the shopper may type */
    const char *text = field(body, "text");
    CHECK(text && strncmp(text, "Which drink?\n1) Latte · €3.80\n2) An extra", 42) == 0 && strstr(text, "\n3) Mocha"));
    json_decref(body);
    json_decref(calls);
}

TEST(render_more_than_25_choices_take_two_actions_blocks) {
    char *two = reply_with_choices("First", 2), *thirty = reply_with_choices("Pick", 30);
    char replies[8192];
    snprintf(replies, sizeof replies, "[%s,%s]", two, thirty);
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 2);
    json_t *body = message_of(calls, 1);
    json_t *blocks = json_object_get(body, "blocks");
    CHECK(json_array_size(blocks) == 3);
    CHECK(json_array_size(json_object_get(json_array_get(blocks, 1), "elements")) == 25);
    CHECK(json_array_size(json_object_get(json_array_get(blocks, 2), "elements")) == 5);
    /* numbered across the turn: the second reply's first choice is 3 */
    json_t *first = json_array_get(json_object_get(json_array_get(blocks, 1), "elements"), 0);
    CHECK_STR(field(first, "action_id"), "choice-3");
    CHECK(strstr(field(body, "text"), "\n3) Choice 1\n") && strstr(field(body, "text"), "\n32) Choice 30"));
    json_decref(body);
    json_decref(calls);
    free(two);
    free(thirty);
}

TEST(render_long_payloads) {
    char *payload = malloc(2101);
    memset(payload, 'p', 2100);
    payload[2100] = '\0';
    char *exactly = malloc(2001);
    memset(exactly, 'e', 2000);
    exactly[2000] = '\0';
    json_t *replies = json_pack("[{s:s, s:[{s:s, s:s}, {s:s, s:s}]}]", "text", "Pick", "choices", "title", "Big",
                                "payload", payload, "title", "Edge", "payload", exactly);
    char *json = json_dumps(replies, 0);
    json_t *calls = render(json);
    json_t *block = block_of(calls, 0, 1);
    json_t *elements = json_object_get(block, "elements");
    const char *key = field(json_array_get(elements, 0), "value");
    CHECK(key && key[0] == '~' && strlen(key) <= 16);
    char *back = key ? fake_long_payload(NULL, key) : NULL;
    CHECK_STR(back, payload);
    free(back);
    CHECK_STR(field(json_array_get(elements, 1), "value"), exactly);
    json_decref(block);
    json_decref(calls);
    /* outside a commit no key can be stored: the choices are numbered lines */
    calls = render_with(json, dm_info, 0);
    json_t *body = message_of(calls, 0);
    json_t *blocks = json_object_get(body, "blocks");
    CHECK(json_array_size(blocks) == 1);
    CHECK_STR(section_text(json_array_get(blocks, 0)), "Pick\n1) Big\n2) Edge");
    json_decref(body);
    json_decref(calls);
    free(json);
    json_decref(replies);
    free(payload);
    free(exactly);
    map_clear();
}

static const char *CARD_CROISSANT =
    "{\"sku\":\"croissant\",\"title\":\"Butter Croissant\",\"subtitle\":\"Flaky & buttery\","
    "\"image\":\"https://images.parley.example/barista/croissant.jpg\","
    "\"price\":{\"amount\":250,\"currency\":\"EUR\"},\"payload\":\"croissant\"}";

TEST(render_cards) {
    char replies[2048];
    snprintf(replies, sizeof replies,
             "[{\"text\":\"Goes well with:\",\"cards\":[%s,"
             "{\"sku\":\"cookie\",\"title\":\"Cookie\",\"price\":{\"amount\":180,\"currency\":\"EUR\"},\"payload\":\"cookie\"},"
             "{\"sku\":\"rel\",\"title\":\"Relative\",\"image\":\"/relative.jpg\"}],"
             "\"choices\":[{\"title\":\"No thanks\",\"payload\":\"no\"}]}]",
             CARD_CROISSANT);
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 1);
    json_t *body = message_of(calls, 0);
    json_t *blocks = json_object_get(body, "blocks");
    CHECK(json_array_size(blocks) == 6);
    /* the croissant: a section with its picture, its button right under it */
    json_t *card = json_array_get(blocks, 1);
    CHECK_STR(section_text(card), "*Butter Croissant*\n€2.50 · Flaky &amp; buttery");
    json_t *image = json_object_get(card, "accessory");
    CHECK_STR(field(image, "type"), "image");
    CHECK_STR(field(image, "image_url"), "https://images.parley.example/barista/croissant.jpg");
    CHECK_STR(field(image, "alt_text"), "Butter Croissant");
    json_t *button = json_array_get(json_object_get(json_array_get(blocks, 2), "elements"), 0);
    CHECK_STR(field(button, "value"), "croissant");
    CHECK_STR(field(json_object_get(button, "text"), "text"), "Choose");
    CHECK_STR(field(button, "action_id"), "card-1");
    /* the cookie has no picture: its button is the section's accessory */
    card = json_array_get(blocks, 3);
    CHECK_STR(section_text(card), "*Cookie*\n€1.80");
    CHECK_STR(field(json_object_get(card, "accessory"), "type"), "button");
    CHECK_STR(field(json_object_get(card, "accessory"), "value"), "cookie");
    /* a picture that is not a web address is left out; no payload, no button */
    card = json_array_get(blocks, 4);
    CHECK_STR(section_text(card), "*Relative*");
    CHECK(json_object_get(card, "accessory") == NULL);
    /* the choices come last */
    CHECK_STR(field(json_array_get(blocks, 5), "type"), "actions");
    const char *text = field(body, "text");
    CHECK(text && strstr(text, "• Butter Croissant — €2.50 · Flaky &amp; buttery\n• Cookie — €1.80\n• Relative\n1) No thanks"));
    json_decref(body);
    json_decref(calls);
}

TEST(render_more_than_50_blocks_take_several_messages) {
    /* 30 cards with pictures are 60 blocks, plus the text and the choices */
    size_t cap = 64 * 1024;
    char *replies = malloc(cap);
    size_t len = (size_t)sprintf(replies, "[{\"text\":\"Our menu\",\"cards\":[");
    for (int i = 1; i <= 30; i++)
        len += (size_t)snprintf(replies + len, cap - len,
                                "%s{\"title\":\"Item %d\",\"image\":\"https://img.example/%d.jpg\",\"payload\":\"i%d\"}",
                                i > 1 ? "," : "", i, i, i);
    snprintf(replies + len, cap - len, "],\"choices\":[{\"title\":\"Done\",\"payload\":\"done\"}]}]");
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 2);
    json_t *first = message_of(calls, 0), *second = message_of(calls, 1);
    CHECK(json_array_size(json_object_get(first, "blocks")) == 50);
    CHECK(json_array_size(json_object_get(second, "blocks")) == 12);
    CHECK(strncmp(field(first, "text"), "Our menu\n• Item 1", 17) == 0);
    CHECK(strncmp(field(second, "text"), "• Item 25\n", 10) == 0 && strstr(field(second, "text"), "1) Done"));
    json_decref(first);
    json_decref(second);
    json_decref(calls);
    free(replies);
}

TEST(render_payment_link_as_a_url_button) {
    json_t *calls = render("[{\"text\":\"Order #12: €4.70. Tap to pay.\",\"link\":{\"title\":\"Pay €4.70\","
                           "\"url\":\"https://pay.example/v1/bots/barista/payments/test/12?token=ab12\"}}]");
    CHECK(json_array_size(calls) == 1);
    json_t *body = message_of(calls, 0);
    json_t *blocks = json_object_get(body, "blocks");
    CHECK(json_array_size(blocks) == 2);
    CHECK_STR(section_text(json_array_get(blocks, 0)), "Order #12: €4.70. Tap to pay.");
    json_t *button = json_array_get(json_object_get(json_array_get(blocks, 1), "elements"), 0);
    CHECK_STR(field(button, "type"), "button");
    CHECK_STR(field(json_object_get(button, "text"), "text"), "Pay €4.70");
    CHECK_STR(field(button, "url"), "https://pay.example/v1/bots/barista/payments/test/12?token=ab12");
    CHECK(json_object_get(button, "value") == NULL);
    CHECK(strstr(section_text(json_array_get(blocks, 0)), "https://") == NULL);
    CHECK(strstr(field(body, "text"), "Pay €4.70: https://pay.example/"));
    json_decref(body);
    json_decref(calls);
    /* not a web address, or too long for a button: a line of text */
    char *url = malloc(3100);
    strcpy(url, "https://pay.example/");
    memset(url + 20, 'u', 3000);
    url[3020] = '\0';
    json_t *replies = json_pack("[{s:{s:s, s:s}}, {s:{s:s}}]", "link", "title", "Pay", "url", "tel:+4912345",
                                "link", "url", url);
    char *json = json_dumps(replies, 0);
    calls = render(json);
    CHECK(json_array_size(calls) == 2);
    json_t *block = block_of(calls, 0, 0);
    CHECK_STR(section_text(block), "Pay: tel:+4912345");
    json_decref(block);
    body = message_of(calls, 1);
    CHECK_STR(field(json_array_get(json_object_get(body, "blocks"), 0), "type"), "section");
    json_decref(body);
    json_decref(calls);
    free(json);
    json_decref(replies);
    free(url);
}

TEST(render_image) {
    json_t *calls = render("[{\"text\":\"Here it is\",\"image\":{\"url\":\"https://img.example/latte.jpg\",\"alt\":\"A latte\"}},"
                           "{\"image\":\"https://img.example/2.jpg\"}]");
    CHECK(json_array_size(calls) == 2);
    json_t *block = block_of(calls, 0, 1);
    CHECK_STR(field(block, "type"), "image");
    CHECK_STR(field(block, "image_url"), "https://img.example/latte.jpg");
    CHECK_STR(field(block, "alt_text"), "A latte");
    json_decref(block);
    json_t *body = message_of(calls, 1);
    CHECK_STR(field(json_array_get(json_object_get(body, "blocks"), 0), "alt_text"), "image");
    CHECK_STR(field(body, "text"), "https://img.example/2.jpg");
    json_decref(body);
    json_decref(calls);
}

TEST(rendered_calls_hold_no_secret) {
    char replies[1024];
    snprintf(replies, sizeof replies, "[{\"text\":\"Hi\",\"cards\":[%s]}]", CARD_CROISSANT);
    json_t *calls = render(replies);
    char *dump = json_dumps(calls, JSON_COMPACT);
    CHECK(dump && !strstr(dump, TOKEN) && !strstr(dump, SECRET) && !strstr(dump, "Authorization"));
    free(dump);
    json_decref(calls);
}

/* --- sending ------------------------------------------------------------------------------- */

TEST(authorize_adds_the_bot_token) {
    pl_channel_config cfg = config();
    json_t *headers = json_object();
    char *url = strdup("https://slack.com/api/chat.postMessage"), *user_pwd = NULL, *err = NULL;
    CHECK(pl_channel_slack.authorize(&cfg, headers, &url, &user_pwd, &err) == 0);
    CHECK_STR(field(headers, "Authorization"), "Bearer " TOKEN);
    CHECK_STR(url, "https://slack.com/api/chat.postMessage");
    CHECK(user_pwd == NULL);
    unsetenv(TOKEN_ENV);
    json_object_clear(headers);
    CHECK(pl_channel_slack.authorize(&cfg, headers, &url, &user_pwd, &err) != 0);
    CHECK(err && strstr(err, TOKEN_ENV));
    CHECK(json_object_size(headers) == 0);
    free(err);
    free(url);
    json_decref(headers);
    set_env();
}

TEST(refused_reads_ok_false) {
    pl_channel_config cfg = config();
    struct {
        const char *body;
        int refused, retry;
        const char *why;
    } cases[] = {
        {"{\"ok\":true,\"channel\":\"D7\",\"ts\":\"1.2\"}", 0, 0, NULL},
        {"{\"ok\":true,\"warning\":\"missing_charset\"}", 0, 0, NULL},
        {"not json", 0, 0, NULL},
        {"", 0, 0, NULL},
        {"{\"ok\":false,\"error\":\"invalid_auth\"}", 1, 0, "invalid_auth"},
        {"{\"ok\":false,\"error\":\"channel_not_found\"}", 1, 0, "channel_not_found"},
        {"{\"ok\":false,\"error\":\"invalid_blocks\",\"errors\":[\"x\"]}", 1, 0, "invalid_blocks"},
        {"{\"ok\":false,\"error\":\"ratelimited\"}", 1, 1, "ratelimited"},
        {"{\"ok\":false,\"error\":\"internal_error\"}", 1, 1, "internal_error"},
        {"{\"ok\":false,\"error\":\"fatal_error\"}", 1, 1, "fatal_error"},
        {"{\"ok\":false,\"error\":\"service_unavailable\"}", 1, 1, "service_unavailable"},
        {"{\"ok\":false}", 1, 0, "ok: false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int retry = 0;
        long delay = -1;
        char *why = NULL;
        int refused = pl_channel_slack.refused(&cfg, 0, 200, cases[i].body, &retry, &delay, &why);
        CHECK(refused == cases[i].refused);
        CHECK(retry == cases[i].retry);
        CHECK(delay == -1);
        if (cases[i].why) CHECK_STR(why, cases[i].why);
        else CHECK(why == NULL);
        free(why);
    }
}

int main(void) {
    settings = json_pack("{s:s, s:s}", "signing_secret_env", SECRET_ENV, "bot_token_env", TOKEN_ENV);
    dm_info = json_pack("{s:s, s:s, s:s, s:s}", "platform", "slack", "team_id", "T1", "channel_id", "D7",
                        "user_id", "U7");
    set_env();
    RUN(adapter_is_registered);
    RUN(signature_documented_example);
    RUN(signature_refusals);
    RUN(signature_without_signing_secret_is_503);
    RUN(only_posts);
    RUN(url_verification_answers_the_challenge);
    RUN(parse_direct_message);
    RUN(a_redelivery_is_the_same_event);
    RUN(ignored_without_a_turn);
    RUN(malformed_bodies_are_400);
    RUN(tap_of_a_choice);
    RUN(tap_of_a_long_payload_key);
    RUN(taps_without_a_turn);
    RUN(malformed_interactions_are_400);
    RUN(render_text);
    RUN(render_long_text_is_split_into_sections);
    RUN(render_choices_as_buttons);
    RUN(render_more_than_25_choices_take_two_actions_blocks);
    RUN(render_long_payloads);
    RUN(render_cards);
    RUN(render_more_than_50_blocks_take_several_messages);
    RUN(render_payment_link_as_a_url_button);
    RUN(render_image);
    RUN(rendered_calls_hold_no_secret);
    RUN(authorize_adds_the_bot_token);
    RUN(refused_reads_ok_false);
    json_decref(dm_info);
    json_decref(settings);
    return check_done();
}
