/* test_channel_x: the X direct-message adapter (channel_x.c) on fixed
 * vectors — X's documented OAuth 1.0a signature examples, the CRC answer,
 * x-twitter-webhooks-signature, parsing of Account Activity webhooks (DMs,
 * quick-reply taps, read receipts, the account's own messages, kinds that
 * are ignored, bodies of the wrong shape), rendering of each reply shape
 * with X's limits and how it degrades past them, and the signature added at
 * send time. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/common.h"
#include "channels/channel.h"
#include "channels/channel_x.h"
#include "check.h"
#include "webhook_fixture.h"

extern const pl_channel_adapter pl_channel_x;

#define KEY_ENV "BARISTA_TEST_X_CONSUMER_KEY"
#define SECRET_ENV "BARISTA_TEST_X_CONSUMER_SECRET"
#define TOKEN_ENV "BARISTA_TEST_X_ACCESS_TOKEN"
#define TOKEN_SECRET_ENV "BARISTA_TEST_X_ACCESS_TOKEN_SECRET"
#define USER_ID_ENV "BARISTA_TEST_X_USER_ID"
#define SECRET "x-consumer-secret/42"
#define ACCOUNT "3805104374"

static json_t *settings;

static pl_channel_config config(void) {
    return (pl_channel_config){"barista", "x", settings};
}

static void set_env(void) {
    setenv(KEY_ENV, "ck-e2e", 1);
    setenv(SECRET_ENV, SECRET, 1);
    setenv(TOKEN_ENV, "3805104374-token", 1);
    setenv(TOKEN_SECRET_ENV, "token secret/+", 1);
    setenv(USER_ID_ENV, ACCOUNT, 1);
}

/* --- OAuth 1.0a: X's documented examples -------------------------------------------------- */

/* "Creating a signature" and "Authorizing a request": the same request,
 * keys, nonce and timestamp. */
static const pl_x_credentials DOC_CREDS = {
    "xvz1evFS4wEEPTGEFPHBog", "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
    "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"};
#define DOC_NONCE "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"
#define DOC_TIME 1318622958LL
#define DOC_FORM "status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21"

TEST(adapter_is_registered) {
    CHECK(pl_channel_find("x") == &pl_channel_x);
    CHECK_STR(pl_channel_x.default_api_base, "https://api.twitter.com");
    CHECK(pl_channel_x.synchronous == 0);
    CHECK(pl_channel_x.render && pl_channel_x.authorize && pl_channel_x.retry_hint);
    CHECK(pl_channel_can_push("x"));
}

TEST(oauth_creating_a_signature_example) {
    char *sig = NULL;
    char *authorization = pl_x_oauth_header("POST", "https://api.twitter.com/1.1/statuses/update.json?include_entities=true",
                                     DOC_FORM, &DOC_CREDS, DOC_NONCE, DOC_TIME, &sig);
    CHECK_STR(sig, "hCtSmYh+iHYCEqBWrE7C7hYmtUk=");
    CHECK(authorization && strstr(authorization, "oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\""));
    free(sig);
    free(authorization);
    /* the URL is normalised: scheme and host in lower case, no default port */
    authorization = pl_x_oauth_header("POST", "HTTPS://API.Twitter.com:443/1.1/statuses/update.json?include_entities=true",
                               DOC_FORM, &DOC_CREDS, DOC_NONCE, DOC_TIME, &sig);
    CHECK_STR(sig, "hCtSmYh+iHYCEqBWrE7C7hYmtUk=");
    free(sig);
    free(authorization);
    /* the parameters are sorted whatever their order */
    authorization = pl_x_oauth_header("POST", "https://api.twitter.com/1.1/statuses/update.json?include_entities=true#x",
                               DOC_FORM, &DOC_CREDS, DOC_NONCE, DOC_TIME, &sig);
    CHECK_STR(sig, "hCtSmYh+iHYCEqBWrE7C7hYmtUk=");
    free(sig);
    free(authorization);
}

TEST(oauth_authorizing_a_request_example) {
    /* the page's header, for the request as it was written then (/1/) */
    char *authorization = pl_x_oauth_header("POST", "https://api.twitter.com/1/statuses/update.json?include_entities=true",
                                     DOC_FORM, &DOC_CREDS, DOC_NONCE, DOC_TIME, NULL);
    CHECK_STR(authorization,
              "OAuth oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\", "
              "oauth_nonce=\"kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg\", "
              "oauth_signature=\"tnnArxj06cWHq44gCs1OSKk%2FjLY%3D\", oauth_signature_method=\"HMAC-SHA1\", "
              "oauth_timestamp=\"1318622958\", "
              "oauth_token=\"370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb\", oauth_version=\"1.0\"");
    free(authorization);
}

TEST(oauth_refuses_what_is_not_a_web_url) {
    CHECK(pl_x_oauth_header("POST", "ftp://api.twitter.com/x", NULL, &DOC_CREDS, "n", 1, NULL) == NULL);
    CHECK(pl_x_oauth_header("POST", "https:///path", NULL, &DOC_CREDS, "n", 1, NULL) == NULL);
    CHECK(pl_x_oauth_header("POST", "", NULL, &DOC_CREDS, "n", 1, NULL) == NULL);
    /* odd queries are signed, not tripped over */
    char *h = pl_x_oauth_header("POST", "http://h?&&a&=b&c=%zz&d=%41", NULL, &DOC_CREDS, "n", 1, NULL);
    CHECK(h != NULL);
    free(h);
}

/* --- webhook requests ------------------------------------------------------------------- */


#define HOOK_URL "https://bot.example/v1/bots/barista/channels/x"

static int get(const char *query, pl_inbound *in, char **err) {
    pl_channel_config cfg = config();
    return webhook_get(&pl_channel_x, &cfg, HOOK_URL, query, in, err);
}

/* POSTs body with the x-twitter-webhooks-signature given (NULL: signed
 * correctly with the test secret; "": no header). */
static int post(const char *body, const char *signature, pl_inbound *in, char **err) {
    pl_channel_config cfg = config();
    return webhook_post_signed(&pl_channel_x, &cfg, HOOK_URL, body, "X-Twitter-Webhooks-Signature", signature,
                               SECRET, 1, in, err);
}

/* A DM event from sender (JSON text; data is the message_data's inside). */
static char *dm(const char *id, const char *sender, const char *data) {
    return pl_strdupf("{\"type\":\"message_create\",\"id\":\"%s\",\"created_timestamp\":\"1392078023603\","
                      "\"message_create\":{\"target\":{\"recipient_id\":\"%s\"},\"sender_id\":\"%s\","
                      "\"source_app_id\":\"268278\",\"message_data\":{%s}}}",
                      id, strcmp(sender, ACCOUNT) == 0 ? "1111" : ACCOUNT, sender, data);
}

static const char *USERS =
    "\"users\":{\"1111\":{\"id\":\"1111\",\"created_timestamp\":\"1\",\"name\":\"Ada Lovelace\","
    "\"screen_name\":\"ada\",\"protected\":false,\"verified\":false},"
    "\"" ACCOUNT "\":{\"id\":\"" ACCOUNT "\",\"name\":\"Barista\",\"screen_name\":\"barista\"}}";

/* {"for_user_id": ACCOUNT, "direct_message_events": [events], users}. */
static char *activity(const char *events) {
    return pl_strdupf("{\"for_user_id\":\"%s\",\"direct_message_events\":[%s],%s}", ACCOUNT, events, USERS);
}

/* Parses a correctly signed body (taken); the events (new) or NULL. */
static json_t *events_of(char *body) {
    char *err = NULL;
    pl_inbound in;
    json_t *events = events_taken(post(body, NULL, &in, &err), &in, err);
    free(body);
    return events;
}

/* The status of a correctly signed body (taken); *why its reason. */
static int status_of(char *body, char **why) {
    pl_inbound in;
    char *err = NULL;
    int rc = post(body, NULL, &in, &err);
    int status = in.status;
    if (rc == 0 && status != 200) status = -1;
    if (rc != 0 && in.events) status = -2; /* nothing may be taken from a refused body */
    pl_inbound_clear(&in);
    free(body);
    if (why) *why = err;
    else free(err);
    return status;
}

/* --- the CRC and the signature ------------------------------------------------------------ */

TEST(crc_answers_the_response_token) {
    pl_inbound in;
    char *err = NULL;
    CHECK(get("crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553", &in, &err) == 0);
    CHECK(in.status == 200);
    CHECK_STR(in.answer_type, "application/json");
    /* base64 HMAC-SHA256 of the token keyed by SECRET (Python's hmac) */
    CHECK_STR(in.answer, "{\"response_token\":\"sha256=NcARp6iHkFJmxlHB3ARU4uZeOz7Qegu3OSSKzQ6pK+E=\"}");
    CHECK(json_array_size(in.events) == 0);
    pl_inbound_clear(&in);
    /* the token is decoded from the query first, and other parameters ignored */
    CHECK(get("nonce=1&crc_token=9b4507b3%2D9040-4669-9ca3-6b94edb50553", &in, &err) == 0);
    CHECK(in.answer && strstr(in.answer, "NcARp6iHkFJmxlHB3ARU4uZeOz7Qegu3OSSKzQ6pK+E="));
    pl_inbound_clear(&in);
    free(err);
}

TEST(crc_refuses) {
    pl_inbound in;
    char *err = NULL;
    CHECK(get(NULL, &in, &err) != 0);
    CHECK(in.status == 400 && in.answer == NULL && in.events == NULL);
    CHECK(err && strstr(err, "crc_token"));
    free(err), err = NULL;
    pl_inbound_clear(&in);
    CHECK(get("crc_token=", &in, &err) != 0);
    CHECK(in.status == 400);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    /* the check's HMAC signs a POST's body too: a token that is not shaped
     * like X's (a whole body, too long, spaces) is refused, never signed */
    static const char *const forged[] = {
        "crc_token=%7B%22for_user_id%22%3A%223805104374%22%2C%22direct_message_events%22%3A%5B%5D%7D",
        "crc_token=a+b",
        "crc_token=line%0Abreak",
    };
    for (size_t i = 0; i < sizeof forged / sizeof *forged; i++) {
        CHECK(get(forged[i], &in, &err) != 0);
        CHECK(in.status == 400 && in.answer == NULL);
        free(err), err = NULL;
        pl_inbound_clear(&in);
    }
    char longest[300] = "crc_token=";
    memset(longest + 10, 'A', 255);
    CHECK(get(longest, &in, &err) == 0 && in.status == 200);
    pl_inbound_clear(&in);
    strcat(longest, "A"); /* 256 */
    CHECK(get(longest, &in, &err) != 0 && in.status == 400);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    unsetenv(SECRET_ENV);
    CHECK(get("crc_token=abc", &in, &err) != 0);
    CHECK(in.status == 503);
    CHECK(err && strstr(err, SECRET_ENV));
    free(err);
    pl_inbound_clear(&in);
    set_env();
}

TEST(signature_good_and_bad) {
    char *d = dm("1001", "1111", "\"text\":\"hi\"");
    char *body = activity(d);
    free(d);
    pl_inbound in;
    char *err = NULL;
    CHECK(post(body, NULL, &in, &err) == 0);
    CHECK(in.status == 200 && json_array_size(in.events) == 1);
    pl_inbound_clear(&in);
    /* signed with another secret */
    char *other = pl_channel_hmac_base64("sha256", "not-the-secret", body, strlen(body));
    char value[96];
    snprintf(value, sizeof value, "sha256=%s", other);
    CHECK(post(body, value, &in, &err) != 0);
    CHECK(in.status == 403 && in.events == NULL);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    /* the right signature of another body */
    char *good = pl_channel_hmac_base64("sha256", SECRET, body, strlen(body));
    snprintf(value, sizeof value, "sha256=%s", good);
    char *tampered = strdup(body);
    tampered[strlen(tampered) - 5] = 'Z';
    CHECK(post(tampered, value, &in, &err) != 0);
    CHECK(in.status == 403);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    /* base64 is case-sensitive: a changed case is another signature */
    for (char *p = value + 7; *p; p++)
        if (*p >= 'a' && *p <= 'z') {
            *p = (char)(*p - 32);
            break;
        }
    CHECK(post(body, value, &in, &err) != 0);
    CHECK(in.status == 403);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    /* no sha256= prefix, or no header */
    CHECK(post(body, good, &in, &err) != 0);
    CHECK(in.status == 401);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    CHECK(post(body, "", &in, &err) != 0);
    CHECK(in.status == 401 && in.events == NULL);
    CHECK(err && strstr(err, "x-twitter-webhooks-signature"));
    free(err), err = NULL;
    pl_inbound_clear(&in);
    /* without the consumer secret: 503, naming the variable */
    unsetenv(SECRET_ENV);
    CHECK(post(body, NULL, &in, &err) != 0);
    CHECK(in.status == 503);
    CHECK(err && strstr(err, SECRET_ENV));
    free(err);
    pl_inbound_clear(&in);
    set_env();
    free(good);
    free(other);
    free(tampered);
    free(body);
}

/* --- parsing ---------------------------------------------------------------------------------- */

TEST(parse_text) {
    char *d = dm("110", "1111", "\"text\":\"hello, world!\",\"entities\":{\"hashtags\":[],\"urls\":[]}");
    json_t *events = events_of(activity(d));
    free(d);
    CHECK(json_array_size(events) == 1);
    json_t *ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "kind"), "message");
    CHECK_STR(field(ev, "id"), "110");
    CHECK_STR(field(ev, "user"), "1111");
    CHECK_STR(field(ev, "text"), "hello, world!");
    CHECK(json_object_get(ev, "payload") == NULL);
    json_t *info = json_object_get(ev, "info");
    CHECK_STR(field(info, "platform"), "x");
    CHECK_STR(field(info, "for_user_id"), ACCOUNT);
    CHECK_STR(field(info, "screen_name"), "ada");
    CHECK_STR(field(info, "display_name"), "Ada Lovelace");
    CHECK(json_object_size(info) == 4);
    json_decref(events);
}

TEST(parse_quick_reply_tap) {
    char *d = dm("111", "1111", "\"text\":\"Latte · €3.80\",\"quick_reply_response\":{\"type\":\"options\",\"metadata\":\"latte\"}");
    json_t *events = events_of(activity(d));
    free(d);
    json_t *ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "payload"), "latte");
    CHECK_STR(field(ev, "text"), "Latte · €3.80");
    json_decref(events);
}

TEST(parse_short_payload_key) {
    char long_payload[1300];
    memset(long_payload, 'p', sizeof long_payload - 1);
    long_payload[sizeof long_payload - 1] = '\0';
    char *key = fake_short_payload(NULL, long_payload);
    char data[160];
    snprintf(data, sizeof data, "\"text\":\"Big\",\"quick_reply_response\":{\"type\":\"options\",\"metadata\":\"%s\"}", key);
    char *a = dm("112", "1111", data);
    char *b = dm("113", "1111", "\"text\":\"x\",\"quick_reply_response\":{\"type\":\"options\",\"metadata\":\"~unknownkey12\"}");
    char *both = pl_strdupf("%s,%s", a, b);
    json_t *events = events_of(activity(both));
    CHECK(json_array_size(events) == 2);
    CHECK_STR(field(json_array_get(events, 0), "payload"), long_payload);
    /* a key nobody stored is passed on as it came */
    CHECK_STR(field(json_array_get(events, 1), "payload"), "~unknownkey12");
    json_decref(events);
    free(both);
    free(a);
    free(b);
    free(key);
}

TEST(parse_attachment_is_a_fact) {
    char *d = dm("114", "1111",
                 "\"text\":\"look https://t.co/abc\",\"attachment\":{\"type\":\"media\",\"media\":{\"id\":1,"
                 "\"media_url_https\":\"https://ton.twitter.com/1.1/ton/data/dm/1.jpg\",\"type\":\"photo\"}}");
    json_t *events = events_of(activity(d));
    free(d);
    json_t *att = json_array_get(json_object_get(json_object_get(json_array_get(events, 0), "info"), "attachments"), 0);
    CHECK_STR(field(att, "type"), "photo");
    CHECK_STR(field(att, "url"), "https://ton.twitter.com/1.1/ton/data/dm/1.jpg");
    json_decref(events);
}

TEST(parse_own_messages_are_ignored) {
    /* the account's own DM (its replies come back as events) */
    char *own = dm("120", ACCOUNT, "\"text\":\"Hi! What can I get you?\"");
    char *theirs = dm("121", "1111", "\"text\":\"a latte\"");
    char *both = pl_strdupf("%s,%s", own, theirs);
    json_t *events = events_of(activity(both));
    CHECK(json_array_size(events) == 1);
    CHECK_STR(field(json_array_get(events, 0), "id"), "121");
    json_decref(events);
    free(both);
    /* without a configured user_id, for_user_id says who the account is */
    unsetenv(USER_ID_ENV);
    both = pl_strdupf("%s,%s", own, theirs);
    events = events_of(activity(both));
    CHECK(json_array_size(events) == 1);
    json_decref(events);
    free(both);
    /* without user_id the account is the one the access token starts with:
     * another brand's deliveries (one X app, one consumer secret) are not
     * answered from this account */
    events = events_of(pl_strdupf("{\"for_user_id\":\"9999\",\"direct_message_events\":[%s]}", theirs));
    CHECK(events && json_array_size(events) == 0);
    json_decref(events);
    /* a DM from the configured account to an account subscribed to the same
     * webhook, and one to that other account, are both not ours to answer */
    set_env();
    events = events_of(pl_strdupf("{\"for_user_id\":\"9999\",\"direct_message_events\":[%s]}", theirs));
    CHECK(events && json_array_size(events) == 0);
    json_decref(events);
    free(own);
    free(theirs);
}

TEST(parse_read_receipts) {
    json_t *events = events_of(pl_strdupf(
        "{\"for_user_id\":\"%s\",\"direct_message_mark_read_events\":["
        "{\"created_timestamp\":\"1288834974657\",\"sender_id\":\"1111\",\"last_read_event_id\":\"877260925346103299\","
        "\"target\":{\"recipient_id\":\"%s\"}},"
        "{\"created_timestamp\":\"1288834974658\",\"sender_id\":\"%s\",\"last_read_event_id\":\"121\","
        "\"target\":{\"recipient_id\":\"1111\"}}],%s}",
        ACCOUNT, ACCOUNT, ACCOUNT, USERS));
    CHECK(json_array_size(events) == 1);
    json_t *ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "kind"), "status");
    CHECK_STR(field(ev, "status"), "read");
    CHECK_STR(field(ev, "user"), "1111");
    CHECK_STR(field(ev, "id"), "877260925346103299");
    json_decref(events);
}

TEST(parse_ignores_other_kinds) {
    const char *bodies[] = {
        "{\"for_user_id\":\"" ACCOUNT "\",\"favorite_events\":[{\"id\":\"a\",\"favorited_status\":{}}]}",
        "{\"for_user_id\":\"" ACCOUNT "\",\"tweet_create_events\":[{\"id_str\":\"1\",\"text\":\"@barista hi\"}]}",
        "{\"for_user_id\":\"" ACCOUNT "\",\"direct_message_indicate_typing_events\":[{\"created_timestamp\":\"1\","
        "\"sender_id\":\"1111\",\"target\":{\"recipient_id\":\"" ACCOUNT "\"}}],\"users\":{}}",
        "{\"for_user_id\":\"" ACCOUNT "\",\"follow_events\":[{\"type\":\"follow\"}]}",
        /* a revoke has no for_user_id */
        "{\"user_event\":{\"revoke\":{\"date_time\":\"2018-05-24T09:48:12+00:00\",\"target\":{\"app_id\":\"13090192\"},"
        "\"source\":{\"user_id\":\"63046977\"}}}}",
        /* a DM event of another type, and fields nobody documents yet */
        "{\"for_user_id\":\"" ACCOUNT "\",\"direct_message_events\":[{\"type\":\"reaction_create\",\"id\":\"9\"}],"
        "\"apps\":{\"268278\":{\"id\":\"268278\"}},\"new_field\":[1,2]}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        json_t *events = events_of(strdup(bodies[i]));
        CHECK(events && json_array_size(events) == 0);
        json_decref(events);
    }
}

TEST(parse_refuses_bodies_of_the_wrong_shape) {
    struct {
        const char *body, *reason;
    } cases[] = {
        {"not json", "not JSON"},
        {"[1,2]", "not an Account Activity object"},
        {"{\"for_user_id\":\"" ACCOUNT "\",\"direct_message_events\":{}}", "direct_message_events must be an array"},
        {"{\"for_user_id\":\"" ACCOUNT "\",\"direct_message_events\":[1]}", "direct_message_events[0]"},
        {"{\"for_user_id\":\"" ACCOUNT "\",\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"\","
         "\"message_create\":{\"sender_id\":\"1\"}}]}", "id"},
        {"{\"for_user_id\":\"" ACCOUNT "\",\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"5\","
         "\"message_create\":{\"sender_id\":1}}]}", "sender_id"},
        {"{\"for_user_id\":\"" ACCOUNT "\",\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"5\","
         "\"message_create\":{\"message_data\":{\"text\":\"x\"}}}]}", "sender_id"},
        {"{\"for_user_id\":\"" ACCOUNT "\",\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"5\","
         "\"message_create\":{\"sender_id\":\"1\",\"message_data\":{\"text\":7}}}]}", "text"},
        {"{\"for_user_id\":\"" ACCOUNT "\",\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"5\","
         "\"message_create\":{\"sender_id\":\"1\",\"message_data\":{\"quick_reply_response\":{\"metadata\":[]}}}}]}",
         "metadata"},
        {"{\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"5\","
         "\"message_create\":{\"sender_id\":\"1\"}}]}", "for_user_id"},
        {"{\"for_user_id\":5,\"direct_message_events\":[]}", "for_user_id"},
        {"{\"for_user_id\":\"" ACCOUNT "\",\"users\":{\"1\":\"Ada\"}}", "users"},
        {"{\"for_user_id\":\"" ACCOUNT "\",\"direct_message_mark_read_events\":[{\"sender_id\":\"1\"}]}",
         "last_read_event_id"},
        {"{\"for_user_id\":\"" ACCOUNT "\",\"direct_message_events\":[{\"id\":\"5\"}]}", "type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *why = NULL;
        int status = status_of(strdup(cases[i].body), &why);
        if (status != 400 || !why || !strstr(why, cases[i].reason))
            printf("#   case %zu: %d %s\n", i, status, why ? why : "(no reason)");
        CHECK(status == 400);
        CHECK(why && strstr(why, cases[i].reason));
        free(why);
    }
}

/* --- rendering ------------------------------------------------------------------------------- */

/* Renders replies (JSON text) for shopper 1111; the calls (new). */
static json_t *render_full(const char *replies_json, const char *locale, int with_short) {
    json_t *replies = json_loads(replies_json, 0, NULL);
    CHECK(replies != NULL);
    pl_outbound to = {.user = "1111", .locale = locale, .short_payload = with_short ? fake_short_payload : NULL};
    pl_channel_config cfg = config();
    json_t *calls = NULL;
    char *err = NULL;
    CHECK(pl_channel_x.render(&cfg, &to, replies, &calls, &err) == 0);
    free(err);
    json_decref(replies);
    return calls;
}

static json_t *render(const char *replies_json) {
    return render_full(replies_json, "en", 1);
}

/* The message_data of call i (borrowed by calls), checking the call's
 * documented form on the way. */
static json_t *data_of(const json_t *calls, size_t i) {
    json_t *call = json_array_get(calls, i);
    CHECK_STR(field(call, "method"), "POST");
    CHECK_STR(field(call, "path"), "/1.1/direct_messages/events/new.json");
    CHECK_STR(field(call, "content_type"), "application/json");
    json_t *body = json_loads(field(call, "body"), 0, NULL);
    json_t *event = json_object_get(body, "event");
    CHECK_STR(field(event, "type"), "message_create");
    json_t *create = json_object_get(event, "message_create");
    CHECK_STR(field(json_object_get(create, "target"), "recipient_id"), "1111");
    json_t *data = json_object_get(create, "message_data");
    /* keep data alive with the call: hang it on the call object */
    json_object_set(call, "_data", data);
    json_decref(body);
    return json_object_get(call, "_data");
}

/* UTF-16 code units of a UTF-8 string. */
static size_t units(const char *s) { return pl_channel_text_units(s); }

TEST(render_text) {
    json_t *calls = render("[{\"text\":\"Hi! I'm Bea.\"},{\"text\":\"What can I get you?\"}]");
    CHECK(json_array_size(calls) == 2);
    json_t *d = data_of(calls, 0);
    CHECK_STR(field(d, "text"), "Hi! I'm Bea.");
    CHECK(json_object_size(d) == 1);
    CHECK_STR(field(data_of(calls, 1), "text"), "What can I get you?");
    json_decref(calls);
    /* an empty reply sends nothing */
    calls = render("[{\"text\":\"\"},{\"text\":\"  \"},{}]");
    CHECK(json_array_size(calls) == 0);
    json_decref(calls);
}

TEST(render_quick_reply_options) {
    json_t *calls = render("[{\"text\":\"Which drink?\",\"choices\":["
                           "{\"title\":\"Latte · €3.80\",\"payload\":\"latte\"},"
                           "{\"title\":\"A title that is much longer than thirty-six characters\",\"payload\":\"long\"},"
                           "{\"title\":\"No payload\"}]}]");
    CHECK(json_array_size(calls) == 1);
    json_t *d = data_of(calls, 0);
    CHECK_STR(field(d, "text"), "Which drink?");
    json_t *qr = json_object_get(d, "quick_reply");
    CHECK_STR(field(qr, "type"), "options");
    json_t *options = json_object_get(qr, "options");
    CHECK(json_array_size(options) == 3);
    CHECK_STR(field(json_array_get(options, 0), "label"), "Latte · €3.80");
    CHECK_STR(field(json_array_get(options, 0), "metadata"), "latte");
    const char *cut = field(json_array_get(options, 1), "label");
    CHECK(units(cut) == 36 && strstr(cut, "…"));
    CHECK_STR(field(json_array_get(options, 2), "metadata"), "No payload");
    CHECK(json_object_size(json_array_get(options, 0)) == 2);
    json_decref(calls);
}

TEST(render_too_many_choices_are_numbered) {
    char replies[4096] = "[{\"text\":\"Pick\",\"choices\":[";
    for (int i = 1; i <= 21; i++)
        snprintf(replies + strlen(replies), sizeof replies - strlen(replies), "%s{\"title\":\"C%d\",\"payload\":\"p%d\"}",
                 i > 1 ? "," : "", i, i);
    strcat(replies, "]},{\"text\":\"More\",\"choices\":[{\"title\":\"Next\",\"payload\":\"n\"}]}]");
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 2);
    json_t *d = data_of(calls, 0);
    CHECK(json_object_get(d, "quick_reply") == NULL);
    CHECK(strstr(field(d, "text"), "Pick\n1) C1\n2) C2") != NULL);
    CHECK(strstr(field(d, "text"), "\n21) C21") != NULL);
    /* the next reply's choices count on from 22 (the turn's offered list) */
    json_t *d2 = data_of(calls, 1);
    CHECK(json_array_size(json_object_get(json_object_get(d2, "quick_reply"), "options")) == 1);
    json_decref(calls);
    /* 20 are options */
    char twenty[4096] = "[{\"text\":\"Pick\",\"choices\":[";
    for (int i = 1; i <= 20; i++)
        snprintf(twenty + strlen(twenty), sizeof twenty - strlen(twenty), "%s{\"title\":\"C%d\",\"payload\":\"p%d\"}",
                 i > 1 ? "," : "", i, i);
    strcat(twenty, "]}]");
    calls = render(twenty);
    d = data_of(calls, 0);
    CHECK_STR(field(d, "text"), "Pick");
    CHECK(json_array_size(json_object_get(json_object_get(d, "quick_reply"), "options")) == 20);
    json_decref(calls);
}

TEST(render_choices_x_would_refuse_are_numbered) {
    /* a label with a URL, an empty label */
    json_t *calls = render("[{\"text\":\"Where?\",\"choices\":[{\"title\":\"https://shop.example\",\"payload\":\"a\"},"
                           "{\"title\":\"Here\",\"payload\":\"b\"}]},"
                           "{\"text\":\"And?\",\"choices\":[{\"title\":\"\",\"payload\":\"c\"}]}]");
    json_t *d = data_of(calls, 0);
    CHECK(json_object_get(d, "quick_reply") == NULL);
    CHECK_STR(field(d, "text"), "Where?\n1) https://shop.example\n2) Here");
    CHECK_STR(field(data_of(calls, 1), "text"), "And?\n3) ");
    json_decref(calls);
    /* choices without a text: numbered lines are the message */
    calls = render("[{\"choices\":[{\"title\":\"Yes\",\"payload\":\"y\"},{\"title\":\"No\",\"payload\":\"n\"}]}]");
    d = data_of(calls, 0);
    CHECK_STR(field(d, "text"), "1) Yes\n2) No");
    CHECK(json_object_get(d, "quick_reply") == NULL);
    json_decref(calls);
}

TEST(render_long_payloads) {
    char big[1100];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *replies = pl_strdupf("[{\"text\":\"Go\",\"choices\":[{\"title\":\"Big\",\"payload\":\"%s\"},"
                               "{\"title\":\"Small\",\"payload\":\"s\"}]}]", big);
    json_t *calls = render(replies);
    json_t *options = json_object_get(json_object_get(data_of(calls, 0), "quick_reply"), "options");
    const char *key = field(json_array_get(options, 0), "metadata");
    CHECK(key && key[0] == '~' && strlen(key) <= 16);
    CHECK(map_size > 0 && strcmp(map_payloads[map_size - 1], big) == 0);
    json_decref(calls);
    /* outside a commit no key can be stored: the choices are numbered */
    calls = render_full(replies, "en", 0);
    json_t *d = data_of(calls, 0);
    CHECK(json_object_get(d, "quick_reply") == NULL);
    CHECK_STR(field(d, "text"), "Go\n1) Big\n2) Small");
    json_decref(calls);
    free(replies);
}

TEST(render_cards_are_lines_and_options) {
    json_t *calls = render(
        "[{\"text\":\"Goes nicely with:\",\"cards\":["
        "{\"title\":\"Almond croissant\",\"subtitle\":\"Buttery\",\"price\":{\"amount\":320,\"currency\":\"EUR\"},"
        "\"image\":\"https://cdn.example/c.jpg\",\"payload\":\"croissant\"},"
        "{\"title\":\"Cookie\",\"price\":{\"amount\":250,\"currency\":\"EUR\"},\"payload\":\"cookie\"},"
        "{\"title\":\"Plain\"}],"
        "\"choices\":[{\"title\":\"No thanks\",\"payload\":\"no\"},{\"title\":\"Cookie!\",\"payload\":\"cookie\"}]}]");
    CHECK(json_array_size(calls) == 1);
    json_t *d = data_of(calls, 0);
    const char *text = field(d, "text");
    CHECK_STR(text, "Goes nicely with:\n• Almond croissant — €3.20. Buttery\n• Cookie — €2.50\n• Plain");
    CHECK(strstr(text, "cdn.example") == NULL);
    json_t *options = json_object_get(json_object_get(d, "quick_reply"), "options");
    /* the choices, then the cards whose payload no choice offers */
    CHECK(json_array_size(options) == 3);
    CHECK_STR(field(json_array_get(options, 0), "metadata"), "no");
    CHECK_STR(field(json_array_get(options, 1), "metadata"), "cookie");
    CHECK_STR(field(json_array_get(options, 2), "label"), "Almond croissant");
    CHECK_STR(field(json_array_get(options, 2), "metadata"), "croissant");
    json_decref(calls);
}

TEST(render_link_is_a_button) {
    json_t *calls = render("[{\"text\":\"Order #12: €4.70. Pay here:\",\"link\":{\"title\":\"Pay €4.70\","
                           "\"url\":\"https://pay.example/12?token=abc\"}}]");
    json_t *d = data_of(calls, 0);
    CHECK_STR(field(d, "text"), "Order #12: €4.70. Pay here:");
    json_t *ctas = json_object_get(d, "ctas");
    CHECK(json_array_size(ctas) == 1);
    json_t *cta = json_array_get(ctas, 0);
    CHECK_STR(field(cta, "type"), "web_url");
    CHECK_STR(field(cta, "label"), "Pay €4.70");
    CHECK_STR(field(cta, "url"), "https://pay.example/12?token=abc");
    json_decref(calls);
    /* alone: the link's title is the text; a long title is cut; no title in ja */
    calls = render("[{\"link\":{\"title\":\"Pay for your order of a very large latte now\",\"url\":\"http://127.0.0.1:1/p\"}}]");
    d = data_of(calls, 0);
    CHECK_STR(field(d, "text"), "Pay for your order of a very large latte now");
    cta = json_array_get(json_object_get(d, "ctas"), 0);
    CHECK(units(field(cta, "label")) == 36);
    json_decref(calls);
    calls = render_full("[{\"link\":{\"url\":\"https://pay.example/1\"}}]", "ja", 1);
    d = data_of(calls, 0);
    CHECK_STR(field(d, "text"), "https://pay.example/1");
    CHECK_STR(field(json_array_get(json_object_get(d, "ctas"), 0), "label"), "リンクを開く");
    json_decref(calls);
    /* a link that is not a web address is a line of text */
    calls = render("[{\"text\":\"Call us\",\"link\":{\"title\":\"Phone\",\"url\":\"tel:+3161234\"}}]");
    d = data_of(calls, 0);
    CHECK_STR(field(d, "text"), "Call us\nPhone: tel:+3161234");
    CHECK(json_object_get(d, "ctas") == NULL);
    json_decref(calls);
    /* with choices: the options and the button on the same message */
    calls = render("[{\"text\":\"Pay?\",\"choices\":[{\"title\":\"Later\",\"payload\":\"later\"}],"
                   "\"link\":{\"title\":\"Pay\",\"url\":\"https://pay.example/2\"}}]");
    d = data_of(calls, 0);
    CHECK(json_object_get(d, "quick_reply") && json_object_get(d, "ctas"));
    json_decref(calls);
}

TEST(render_image_is_a_link_line) {
    json_t *calls = render("[{\"text\":\"Here it is\",\"image\":\"https://cdn.example/latte.jpg\"},"
                           "{\"image\":{\"url\":\"https://cdn.example/cookie.jpg\"}},{\"image\":\"file:///etc/passwd\"}]");
    CHECK(json_array_size(calls) == 2);
    CHECK_STR(field(data_of(calls, 0), "text"), "Here it is\nhttps://cdn.example/latte.jpg");
    CHECK_STR(field(data_of(calls, 1), "text"), "https://cdn.example/cookie.jpg");
    json_decref(calls);
}

TEST(render_long_text_is_split) {
    /* 12,000 characters in words: two messages, the options on the last */
    size_t n = 12000;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) text[i] = i % 10 == 9 ? ' ' : 'a';
    text[n] = '\0';
    json_t *replies = json_pack("[{s:s, s:[{s:s, s:s}]}]", "text", text, "choices", "title", "OK", "payload", "ok");
    char *replies_json = json_dumps(replies, 0);
    json_t *calls = render(replies_json);
    CHECK(json_array_size(calls) == 2);
    const char *first = field(data_of(calls, 0), "text"), *second = field(data_of(calls, 1), "text");
    CHECK(units(first) <= 10000 && units(first) > 9000);
    CHECK(strlen(first) + 1 + strlen(second) == n);
    CHECK(json_object_get(data_of(calls, 0), "quick_reply") == NULL);
    CHECK(json_object_get(data_of(calls, 1), "quick_reply") != NULL);
    json_decref(calls);
    free(replies_json);
    json_decref(replies);
    /* one word longer than the limit, with emoji (2 UTF-16 units each) */
    char *emoji = malloc(4 * 6000 + 1);
    for (int i = 0; i < 6000; i++) memcpy(emoji + 4 * i, "\xF0\x9F\x98\x80", 4);
    emoji[4 * 6000] = '\0';
    replies = json_pack("[{s:s}]", "text", emoji);
    replies_json = json_dumps(replies, 0);
    calls = render(replies_json);
    CHECK(json_array_size(calls) == 2);
    CHECK(units(field(data_of(calls, 0), "text")) == 10000);
    CHECK(units(field(data_of(calls, 1), "text")) == 2000);
    json_decref(calls);
    free(replies_json);
    json_decref(replies);
    free(emoji);
    free(text);
}

TEST(render_needs_a_recipient) {
    json_t *replies = json_loads("[{\"text\":\"hi\"}]", 0, NULL);
    pl_outbound to = {.user = NULL};
    pl_channel_config cfg = config();
    json_t *calls = NULL;
    char *err = NULL;
    CHECK(pl_channel_x.render(&cfg, &to, replies, &calls, &err) != 0);
    CHECK(calls == NULL && err != NULL);
    free(err);
    json_decref(replies);
}

/* --- credentials and answers ------------------------------------------------------------------- */

/* The value of a parameter of an Authorization header (new), or NULL. */
static char *oauth_value(const char *auth, const char *name) {
    char *needle = pl_strdupf("%s=\"", name);
    const char *at = strstr(auth, needle);
    char *value = NULL;
    if (at) {
        at += strlen(needle);
        value = pl_strndup(at, strcspn(at, "\""));
    }
    free(needle);
    return value;
}

TEST(authorize_signs_the_call) {
    pl_channel_config cfg = config();
    json_t *headers = json_object();
    char *url = strdup("https://api.twitter.com/1.1/direct_messages/events/new.json");
    char *user_pwd = NULL, *err = NULL;
    CHECK(pl_channel_x.authorize(&cfg, headers, &url, &user_pwd, &err) == 0);
    CHECK_STR(url, "https://api.twitter.com/1.1/direct_messages/events/new.json");
    CHECK(user_pwd == NULL);
    const char *auth = field(headers, "Authorization");
    CHECK(auth && strncmp(auth, "OAuth ", 6) == 0);
    char *key = oauth_value(auth, "oauth_consumer_key"), *token = oauth_value(auth, "oauth_token");
    char *nonce = oauth_value(auth, "oauth_nonce"), *stamp = oauth_value(auth, "oauth_timestamp");
    char *sig = oauth_value(auth, "oauth_signature");
    CHECK_STR(key, "ck-e2e");
    CHECK_STR(token, "3805104374-token");
    CHECK(nonce && strlen(nonce) == 32);
    CHECK(stamp && llabs(atoll(stamp) - (long long)time(NULL)) < 60);
    /* the same signature, recomputed from the header's nonce and time */
    pl_x_credentials creds = {"ck-e2e", SECRET, "3805104374-token", "token secret/+"};
    char *again = pl_x_oauth_header("POST", url, NULL, &creds, nonce, atoll(stamp), NULL);
    CHECK_STR(again, auth);
    CHECK(sig && strlen(sig) > 20);
    /* a second call has another nonce */
    json_t *headers2 = json_object();
    CHECK(pl_channel_x.authorize(&cfg, headers2, &url, &user_pwd, &err) == 0);
    char *nonce2 = oauth_value(field(headers2, "Authorization"), "oauth_nonce");
    CHECK(nonce2 && strcmp(nonce, nonce2) != 0);
    free(nonce2);
    json_decref(headers2);
    free(again);
    free(key);
    free(token);
    free(nonce);
    free(stamp);
    free(sig);
    json_decref(headers);
    /* a secret unset: a failed attempt naming the variable */
    unsetenv(TOKEN_SECRET_ENV);
    headers = json_object();
    CHECK(pl_channel_x.authorize(&cfg, headers, &url, &user_pwd, &err) != 0);
    CHECK(err && strstr(err, TOKEN_SECRET_ENV));
    CHECK(field(headers, "Authorization") == NULL);
    free(err);
    json_decref(headers);
    set_env();
    free(url);
}

TEST(rendered_calls_hold_no_secret) {
    json_t *calls = render("[{\"text\":\"hi\",\"choices\":[{\"title\":\"A\",\"payload\":\"a\"}],"
                           "\"link\":{\"title\":\"Pay\",\"url\":\"https://pay.example/3\"}}]");
    char *dump = json_dumps(calls, 0);
    CHECK(strstr(dump, SECRET) == NULL && strstr(dump, "token secret") == NULL && strstr(dump, "ck-e2e") == NULL);
    CHECK(strstr(dump, "3805104374-token") == NULL && strstr(dump, "Authorization") == NULL);
    free(dump);
    json_decref(calls);
}

TEST(retry_hint_reads_x_errors) {
    int retry = 0;
    long delay = -1;
    pl_channel_x.retry_hint(429, "{\"errors\":[{\"code\":88,\"message\":\"Rate limit exceeded\"}]}", &retry, &delay);
    CHECK(retry == 1 && delay == -1);
    retry = 0;
    pl_channel_x.retry_hint(420, "", &retry, &delay);
    CHECK(retry == 1);
    retry = 0;
    pl_channel_x.retry_hint(403, "{\"errors\":[{\"code\":130,\"message\":\"Over capacity\"}]}", &retry, &delay);
    CHECK(retry == 1);
    retry = 0;
    pl_channel_x.retry_hint(403, "{\"errors\":[{\"code\":349,\"message\":\"You cannot send messages to this user.\"}]}",
                            &retry, &delay);
    CHECK(retry == 0);
    pl_channel_x.retry_hint(400, "not json", &retry, &delay);
    pl_channel_x.retry_hint(400, NULL, &retry, &delay);
    pl_channel_x.retry_hint(400, "{\"errors\":{\"code\":88}}", &retry, &delay);
    CHECK(retry == 0 && delay == -1);
}

int main(void) {
    settings = json_pack("{s:s, s:s, s:s, s:s, s:s}", "consumer_key_env", KEY_ENV, "consumer_secret_env", SECRET_ENV,
                         "access_token_env", TOKEN_ENV, "access_token_secret_env", TOKEN_SECRET_ENV,
                         "user_id_env", USER_ID_ENV);
    set_env();
    RUN(adapter_is_registered);
    RUN(oauth_creating_a_signature_example);
    RUN(oauth_authorizing_a_request_example);
    RUN(oauth_refuses_what_is_not_a_web_url);
    RUN(crc_answers_the_response_token);
    RUN(crc_refuses);
    RUN(signature_good_and_bad);
    RUN(parse_text);
    RUN(parse_quick_reply_tap);
    RUN(parse_short_payload_key);
    RUN(parse_attachment_is_a_fact);
    RUN(parse_own_messages_are_ignored);
    RUN(parse_read_receipts);
    RUN(parse_ignores_other_kinds);
    RUN(parse_refuses_bodies_of_the_wrong_shape);
    RUN(render_text);
    RUN(render_quick_reply_options);
    RUN(render_too_many_choices_are_numbered);
    RUN(render_choices_x_would_refuse_are_numbered);
    RUN(render_long_payloads);
    RUN(render_cards_are_lines_and_options);
    RUN(render_link_is_a_button);
    RUN(render_image_is_a_link_line);
    RUN(render_long_text_is_split);
    RUN(render_needs_a_recipient);
    RUN(authorize_signs_the_call);
    RUN(rendered_calls_hold_no_secret);
    RUN(retry_hint_reads_x_errors);
    map_clear();
    json_decref(settings);
    return check_done();
}
