/* test_channel_instagram: the Instagram Direct adapter (channel_instagram.c
 * on channel_meta.c) on fixed vectors — what is Instagram's own: the
 * webhook's object, story replies and mentions, the events ignored without
 * a turn (echoes, deletions, reactions), reads by message id, text cut at
 * 1000 bytes, images, the HUMAN_AGENT tag past the messaging window, and
 * the token (with the Instagram Login host). What Instagram shares with
 * Messenger is tested at length in test_channel_messenger.c. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channels/channel.h"
#include "check.h"
#include "webhook_fixture.h"

extern const pl_channel_adapter pl_channel_instagram;

#define VERIFY_ENV "BARISTA_TEST_IG_VERIFY"
#define SECRET_ENV "BARISTA_TEST_IG_SECRET"
#define TOKEN_ENV "BARISTA_TEST_IG_TOKEN"
#define SECRET "ig-app-secret"
#define TOKEN "IGQV token/+="

static json_t *settings;

static pl_channel_config config(void) { return (pl_channel_config){"barista", "instagram", settings}; }

#define HOOK_URL "https://bot.example/v1/bots/barista/channels/instagram"

/* POSTs body signed with secret (NULL: no signature header). */
static int post(const char *body, const char *secret, pl_inbound *in, char **err) {
    pl_channel_config cfg = config();
    return webhook_post_signed(&pl_channel_instagram, &cfg, HOOK_URL, body, "X-Hub-Signature-256",
                               secret ? NULL : "", secret, 0, in, err);
}

/* The events of an "instagram" body holding the messaging items (new), or
 * NULL when refused. */
static json_t *events_of(const char *messaging) {
    char *body = NULL, *err = NULL;
    if (asprintf(&body, "{\"object\":\"instagram\",\"entry\":[{\"id\":\"IG1\",\"time\":1569262486134,\"messaging\":[%s]}]}",
                 messaging) < 0)
        abort();
    pl_inbound in;
    json_t *events = events_taken(post(body, SECRET, &in, &err), &in, err);
    free(body);
    return events;
}

#define ITEM(message) \
    "{\"sender\":{\"id\":\"IGSID1\"},\"recipient\":{\"id\":\"IG1\"},\"timestamp\":1569262485349," message "}"

TEST(adapter_is_registered_with_a_window) {
    CHECK(pl_channel_find("instagram") == &pl_channel_instagram);
    CHECK_STR(pl_channel_instagram.default_api_base, "https://graph.facebook.com/v19.0");
    CHECK(pl_channel_instagram.synchronous == 0);
    CHECK(pl_channel_instagram.window_s == 24 * 3600);
    CHECK(pl_channel_instagram.agent_window_s == 7 * 24 * 3600);
    CHECK(pl_channel_can_push("instagram"));
}

TEST(handshake_is_messengers) {
    pl_channel_config cfg = config();
    pl_inbound in;
    char *err = NULL;
    CHECK(webhook_get(&pl_channel_instagram, &cfg, HOOK_URL,
                      "hub.mode=subscribe&hub.verify_token=ig%20verify&hub.challenge=42", &in, &err) == 0);
    CHECK_STR(in.answer, "42");
    pl_inbound_clear(&in);
    CHECK(webhook_get(&pl_channel_instagram, &cfg, HOOK_URL, "hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42",
                      &in, &err) != 0);
    CHECK(in.status == 403);
    CHECK(err && strstr(err, "instagram channel"));
    free(err);
    pl_inbound_clear(&in);
}

TEST(signature_is_checked_first) {
    const char *body = "{\"object\":\"instagram\",\"entry\":[]}";
    pl_inbound in;
    char *err = NULL;
    CHECK(post(body, SECRET, &in, &err) == 0 && in.status == 200);
    pl_inbound_clear(&in);
    CHECK(post(body, "another secret", &in, &err) != 0 && in.status == 403 && in.events == NULL);
    free(err), err = NULL;
    pl_inbound_clear(&in);
    CHECK(post(body, NULL, &in, &err) != 0 && in.status == 401);
    free(err), err = NULL;
    pl_inbound_clear(&in);
}

TEST(a_page_body_is_refused) {
    pl_inbound in;
    char *err = NULL;
    CHECK(post("{\"object\":\"page\",\"entry\":[]}", SECRET, &in, &err) != 0);
    CHECK(in.status == 400);
    CHECK(err && strstr(err, "'page', not 'instagram'"));
    free(err);
    pl_inbound_clear(&in);
}

TEST(parse_text_and_facts) {
    json_t *events = events_of(ITEM("\"message\":{\"mid\":\"ig_m1\",\"text\":\"hi there\"}"));
    CHECK(json_array_size(events) == 1);
    json_t *ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "kind"), "message");
    CHECK_STR(field(ev, "id"), "ig_m1");
    CHECK_STR(field(ev, "user"), "IGSID1");
    CHECK_STR(field(ev, "text"), "hi there");
    json_t *info = json_object_get(ev, "info");
    CHECK_STR(field(info, "platform"), "instagram");
    CHECK_STR(field(info, "account_id"), "IG1");
    CHECK(json_object_get(info, "story") == NULL);
    json_decref(events);
}

TEST(parse_story_reply) {
    json_t *events = events_of(ITEM("\"message\":{\"mid\":\"ig_m2\",\"text\":\"love this mug\","
                                    "\"reply_to\":{\"story\":{\"url\":\"https://cdn.example/s.jpg\",\"id\":\"1799\"}}}"));
    json_t *info = json_object_get(json_array_get(events, 0), "info");
    json_t *story = json_object_get(info, "story");
    CHECK_STR(field(story, "kind"), "reply");
    CHECK_STR(field(story, "url"), "https://cdn.example/s.jpg");
    CHECK_STR(field(story, "id"), "1799");
    CHECK_STR(field(json_array_get(events, 0), "text"), "love this mug");
    json_decref(events);
}

TEST(parse_story_mention) {
    json_t *events = events_of(ITEM("\"message\":{\"mid\":\"ig_m3\",\"attachments\":[{\"type\":\"story_mention\","
                                    "\"payload\":{\"url\":\"https://cdn.example/m.mp4\"}}]}"));
    CHECK(json_array_size(events) == 1);
    json_t *ev = json_array_get(events, 0);
    CHECK(json_object_get(ev, "text") == NULL);
    json_t *info = json_object_get(ev, "info");
    CHECK_STR(field(json_object_get(info, "story"), "kind"), "mention");
    CHECK_STR(field(json_object_get(info, "story"), "url"), "https://cdn.example/m.mp4");
    CHECK_STR(field(json_array_get(json_object_get(info, "attachments"), 0), "type"), "story_mention");
    json_decref(events);
}

TEST(parse_quick_reply_and_postback) {
    json_t *events = events_of(ITEM("\"message\":{\"mid\":\"ig_m4\",\"text\":\"Oat\",\"quick_reply\":{\"payload\":\"milk:oat\"}}") ","
                               ITEM("\"postback\":{\"mid\":\"ig_m5\",\"title\":\"Choose\",\"payload\":\"sku:latte\"}"));
    CHECK(json_array_size(events) == 2);
    CHECK_STR(field(json_array_get(events, 0), "payload"), "milk:oat");
    CHECK_STR(field(json_array_get(events, 1), "payload"), "sku:latte");
    CHECK_STR(field(json_array_get(events, 1), "id"), "ig_m5");
    json_decref(events);
}

TEST(echoes_deletions_and_reactions_make_no_turn) {
    json_t *events = events_of(
        ITEM("\"message\":{\"mid\":\"ig_e1\",\"text\":\"our reply\",\"is_echo\":true}") ","
        ITEM("\"message\":{\"mid\":\"ig_d1\",\"is_deleted\":true}") ","
        ITEM("\"reaction\":{\"mid\":\"ig_m1\",\"action\":\"react\",\"reaction\":\"love\",\"emoji\":\"\\u2764\"}"));
    CHECK(events && json_array_size(events) == 0);
    json_decref(events);
}

TEST(a_read_is_a_status_of_the_message) {
    json_t *events = events_of(ITEM("\"read\":{\"mid\":\"ig_out7\"}"));
    CHECK(json_array_size(events) == 1);
    json_t *ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "kind"), "status");
    CHECK_STR(field(ev, "status"), "read");
    CHECK_STR(field(ev, "id"), "ig_out7");
    json_decref(events);
}

TEST(wrong_shapes_are_refused) {
    static const char *const bad[] = {
        ITEM("\"message\":{\"mid\":\"x\",\"is_deleted\":\"yes\"}"),
        ITEM("\"message\":{\"mid\":\"x\",\"reply_to\":{\"story\":\"s\"}}"),
        ITEM("\"message\":{\"mid\":\"x\",\"reply_to\":{\"story\":{\"url\":5}}}"),
        ITEM("\"read\":{\"mid\":\"\"}"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *body = NULL, *err = NULL;
        if (asprintf(&body, "{\"object\":\"instagram\",\"entry\":[{\"messaging\":[%s]}]}", bad[i]) < 0) abort();
        pl_inbound in;
        CHECK(post(body, SECRET, &in, &err) != 0);
        CHECK(in.status == 400);
        pl_inbound_clear(&in);
        free(body);
        free(err);
    }
}

/* --- rendering ----------------------------------------------------------------------- */

static json_t *render_to(const char *replies_json, int outside_window) {
    pl_channel_config cfg = config();
    pl_outbound to = {.user = "IGSID9", .locale = "en", .outside_window = outside_window};
    json_t *replies = json_loads(replies_json, 0, NULL);
    json_t *calls = NULL;
    char *err = NULL;
    if (pl_channel_instagram.render(&cfg, &to, replies, &calls, &err) != 0) printf("#   render: %s\n", err);
    free(err);
    json_decref(replies);
    return calls;
}

/* Call i's body (new). */
static json_t *body_of(const json_t *calls, size_t i) {
    const json_t *call = json_array_get(calls, i);
    CHECK_STR(field(call, "path"), "/me/messages");
    json_t *body = json_loads(field(call, "body") ? field(call, "body") : "null", 0, NULL);
    CHECK_STR(field(json_object_get(body, "recipient"), "id"), "IGSID9");
    return body;
}

TEST(render_text_is_cut_at_1000_bytes) {
    /* 700 characters of 2 bytes each: 1400 bytes, two messages */
    char text[1500] = "";
    for (int i = 0; i < 700; i++) strcat(text, "\xc3\xa9");
    char *replies = NULL;
    if (asprintf(&replies, "[{\"text\":\"%s\"}]", text) < 0) abort();
    json_t *calls = render_to(replies, 0);
    CHECK(json_array_size(calls) == 2);
    size_t total = 0;
    for (size_t i = 0; i < json_array_size(calls); i++) {
        json_t *body = body_of(calls, i);
        const char *piece = field(json_object_get(body, "message"), "text");
        CHECK(piece && strlen(piece) <= 1000 && strlen(piece) % 2 == 0); /* never half a character */
        total += piece ? strlen(piece) : 0;
        CHECK_STR(field(body, "messaging_type"), "RESPONSE");
        json_decref(body);
    }
    CHECK(total == 1400);
    json_decref(calls);
    free(replies);
}

TEST(render_quick_replies_cards_image_and_link) {
    json_t *calls = render_to("[{\"text\":\"Which milk?\",\"choices\":[{\"title\":\"Oat milk, barista edition\",\"payload\":\"milk:oat\"},"
                              "{\"title\":\"Whole\",\"payload\":\"milk:whole\"}]},"
                              "{\"text\":\"Our picks\",\"image\":\"https://img.example/menu.png\","
                              "\"cards\":[{\"title\":\"Latte\",\"price\":{\"amount\":450,\"currency\":\"EUR\"},\"payload\":\"sku:latte\","
                              "\"image\":\"https://img.example/latte.png\"}]},"
                              "{\"text\":\"Pay here\",\"link\":{\"title\":\"Pay €4.50\",\"url\":\"https://pay.example/o/1\"}}]",
                              0);
    CHECK(json_array_size(calls) == 5);
    json_t *b0 = body_of(calls, 0);
    json_t *quick = json_object_get(json_object_get(b0, "message"), "quick_replies");
    CHECK(json_array_size(quick) == 2);
    CHECK_STR(field(json_array_get(quick, 0), "payload"), "milk:oat");
    CHECK(strlen(field(json_array_get(quick, 0), "title")) <= 20 + 2); /* cut with "…" */
    json_t *b2 = body_of(calls, 2);
    json_t *image = json_object_get(json_object_get(b2, "message"), "attachment");
    CHECK_STR(field(image, "type"), "image");
    CHECK_STR(field(json_object_get(image, "payload"), "url"), "https://img.example/menu.png");
    json_t *b3 = body_of(calls, 3);
    json_t *tpl = json_object_get(json_object_get(json_object_get(b3, "message"), "attachment"), "payload");
    CHECK_STR(field(tpl, "template_type"), "generic");
    CHECK_STR(field(json_array_get(json_object_get(tpl, "elements"), 0), "title"), "Latte");
    json_t *b4 = body_of(calls, 4);
    json_t *button = json_array_get(
        json_object_get(json_object_get(json_object_get(json_object_get(b4, "message"), "attachment"), "payload"), "buttons"),
        0);
    CHECK_STR(field(button, "type"), "web_url");
    CHECK_STR(field(button, "url"), "https://pay.example/o/1");
    json_decref(b0);
    json_decref(b2);
    json_decref(b3);
    json_decref(b4);
    json_decref(calls);
}

TEST(render_past_the_window_is_tagged_human_agent) {
    json_t *calls = render_to("[{\"text\":\"Hi, this is Mia from the shop\"}]", 1);
    json_t *body = body_of(calls, 0);
    CHECK_STR(field(body, "messaging_type"), "MESSAGE_TAG");
    CHECK_STR(field(body, "tag"), "HUMAN_AGENT");
    json_decref(body);
    json_decref(calls);
}

/* --- the token ------------------------------------------------------------------------ */

static char *authorized(const char *url) {
    pl_channel_config cfg = config();
    char *u = strdup(url), *user_pwd = NULL, *err = NULL;
    json_t *headers = json_object();
    if (pl_channel_instagram.authorize(&cfg, headers, &u, &user_pwd, &err) != 0) {
        printf("#   authorize: %s\n", err);
        free(u);
        u = NULL;
    }
    CHECK(user_pwd == NULL && json_object_size(headers) == 0);
    json_decref(headers);
    free(err);
    return u;
}

TEST(authorize_adds_the_token_and_proof) {
    char *url = authorized("https://graph.facebook.com/v19.0/me/messages");
    CHECK(url && strncmp(url, "https://graph.facebook.com/v19.0/me/messages?access_token=IGQV%20token%2F%2B%3D", 77) == 0);
    char *proof = pl_channel_hmac_hex("sha256", SECRET, TOKEN, strlen(TOKEN));
    CHECK(url && strstr(url, proof));
    free(proof);
    free(url);
}

TEST(authorize_with_instagram_login_calls_its_host) {
    json_object_set_new(settings, "login", json_string("instagram"));
    char *url = authorized("https://graph.facebook.com/v19.0/me/messages");
    CHECK(url && strncmp(url, "https://graph.instagram.com/v21.0/me/messages?access_token=", 59) == 0);
    free(url);
    /* an operator's fake is left where it is */
    url = authorized("http://127.0.0.1:9/me/messages");
    CHECK(url && strncmp(url, "http://127.0.0.1:9/me/messages?access_token=", 44) == 0);
    free(url);
    json_object_del(settings, "login");
}

TEST(authorize_without_the_token_fails) {
    unsetenv(TOKEN_ENV);
    pl_channel_config cfg = config();
    char *u = strdup("https://graph.facebook.com/v19.0/me/messages"), *user_pwd = NULL, *err = NULL;
    CHECK(pl_channel_instagram.authorize(&cfg, NULL, &u, &user_pwd, &err) != 0);
    CHECK(err && strstr(err, TOKEN_ENV));
    free(err);
    free(u);
    setenv(TOKEN_ENV, TOKEN, 1);
}

int main(void) {
    settings = json_pack("{s:s, s:s, s:s}", "verify_token_env", VERIFY_ENV, "app_secret_env", SECRET_ENV,
                         "access_token_env", TOKEN_ENV);
    setenv(VERIFY_ENV, "ig verify", 1);
    setenv(SECRET_ENV, SECRET, 1);
    setenv(TOKEN_ENV, TOKEN, 1);
    RUN(adapter_is_registered_with_a_window);
    RUN(handshake_is_messengers);
    RUN(signature_is_checked_first);
    RUN(a_page_body_is_refused);
    RUN(parse_text_and_facts);
    RUN(parse_story_reply);
    RUN(parse_story_mention);
    RUN(parse_quick_reply_and_postback);
    RUN(echoes_deletions_and_reactions_make_no_turn);
    RUN(a_read_is_a_status_of_the_message);
    RUN(wrong_shapes_are_refused);
    RUN(render_text_is_cut_at_1000_bytes);
    RUN(render_quick_replies_cards_image_and_link);
    RUN(render_past_the_window_is_tagged_human_agent);
    RUN(authorize_adds_the_token_and_proof);
    RUN(authorize_with_instagram_login_calls_its_host);
    RUN(authorize_without_the_token_fails);
    json_decref(settings);
    return check_done();
}
