/* test_channel_telegram: the Telegram Bot API adapter (channel_telegram.c)
 * on fixed vectors: the secret header, Update parsing (messages, taps with
 * plain and mapped payloads, kinds that are only acknowledged), rendering
 * of each reply shape within Telegram's limits, and the token going into
 * the URL at send time and nowhere else. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "channels/channel.h"
#include "check.h"

#define SECRET "s3cret-Token_42"
#define TOKEN "123456:AAEhBP0av-28_Xyz"
#define TG_HEADER "X-Telegram-Bot-Api-Secret-Token"

extern const pl_channel_adapter pl_channel_telegram;
static const pl_channel_adapter *tg = &pl_channel_telegram;

/* --- fixtures ------------------------------------------------------------------ */

/* Request headers: name/value pairs, NULL-terminated. */
static const char *find_header(const void *ctx, const char *name) {
    const char *const *h = ctx;
    for (; h && h[0]; h += 2)
        if (strcasecmp(h[0], name) == 0) return h[1];
    return NULL;
}

/* A tiny payload map, standing in for the store's. */
static struct {
    char key[8][16];
    char *payload[8];
    int n, puts, gets;
} map;

static char *map_put(void *ctx, const char *payload) {
    (void)ctx;
    char *key = pl_channel_payload_key(payload);
    map.puts++;
    for (int i = 0; i < map.n; i++)
        if (strcmp(map.key[i], key) == 0) return key;
    if (map.n < 8) {
        snprintf(map.key[map.n], sizeof map.key[map.n], "%s", key);
        map.payload[map.n++] = pl_strdup(payload);
    }
    return key;
}

static char *map_get(const void *ctx, const char *key) {
    (void)ctx;
    map.gets++;
    for (int i = 0; i < map.n; i++)
        if (strcmp(map.key[i], key) == 0) return pl_strdup(map.payload[i]);
    return NULL;
}

static void map_clear(void) {
    for (int i = 0; i < map.n; i++) free(map.payload[i]);
    memset(&map, 0, sizeof map);
}

static json_t *settings_with_secret(void) {
    return json_pack("{s:s, s:s}", "secret_token", SECRET, "bot_token", TOKEN);
}

/* Runs inbound on body with the given secret header (NULL: none). */
static int inbound(const json_t *settings, const char *secret, const char *body, pl_inbound *out,
                   char **err) {
    pl_channel_config cfg = {"barista", "telegram", settings};
    const char *headers[] = {"Content-Type", "application/json", secret ? TG_HEADER : NULL, secret, NULL};
    pl_webhook req = {
        .method = "POST",
        .url = "https://shop.example/v1/bots/barista/channels/telegram",
        .body = body,
        .body_len = strlen(body),
        .header = find_header,
        .header_ctx = headers,
        .now = 1700000000,
        .long_payload = map_get,
    };
    memset(out, 0, sizeof *out);
    out->status = 200;
    return tg->inbound(&cfg, &req, out, err);
}

static const char *str(const json_t *j, const char *key) { return json_string_value(json_object_get(j, key)); }

/* Renders replies (a JSON text) for chat 4242; returns the calls (new). */
static json_t *render_for(const char *user, const char *replies_json, int with_map) {
    json_t *settings = settings_with_secret();
    pl_channel_config cfg = {"barista", "telegram", settings};
    pl_outbound to = {.user = user, .locale = "en", .short_payload = with_map ? map_put : NULL};
    json_t *replies = json_loads(replies_json, 0, NULL);
    json_t *calls = NULL;
    char *err = NULL;
    int rc = tg->render(&cfg, &to, replies, &calls, &err);
    if (rc != PL_OK) printf("#   render: %s\n", err ? err : "?");
    free(err);
    json_decref(replies);
    json_decref(settings);
    return calls;
}

/* The JSON body of call i (new). */
static json_t *body_of(const json_t *calls, size_t i) {
    return json_loads(str(json_array_get(calls, i), "body"), 0, NULL);
}

static size_t utf16_len(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80) n += *p >= 0xF0 ? 2 : 1;
    return n;
}

/* Every callback_data of a reply_markup is 1-64 bytes. */
static int callback_data_fits(const json_t *markup) {
    size_t i, j;
    json_t *row, *b;
    json_array_foreach(json_object_get(markup, "inline_keyboard"), i, row) {
        json_array_foreach(row, j, b) {
            const char *data = str(b, "callback_data");
            if (data && (strlen(data) < 1 || strlen(data) > 64)) return 0;
        }
    }
    return 1;
}

static const char *MESSAGE_UPDATE =
    "{\"update_id\": 10000, \"message\": {\"message_id\": 7, \"date\": 1700000000,"
    " \"from\": {\"id\": 4242, \"is_bot\": false, \"first_name\": \"Ada\", \"last_name\": \"Lovelace\","
    "          \"username\": \"ada\", \"language_code\": \"ja\"},"
    " \"chat\": {\"id\": 4242, \"type\": \"private\", \"first_name\": \"Ada\"},"
    " \"text\": \"a large latte please\"}}";

/* --- the secret header ------------------------------------------------------------ */

TEST(secret_good) {
    json_t *settings = settings_with_secret();
    pl_inbound out;
    char *err = NULL;
    CHECK(inbound(settings, SECRET, MESSAGE_UPDATE, &out, &err) == PL_OK);
    CHECK(out.status == 200);
    CHECK(json_array_size(out.events) == 1);
    CHECK(err == NULL);
    pl_inbound_clear(&out);
    json_decref(settings);
}

TEST(secret_wrong_is_403) {
    json_t *settings = settings_with_secret();
    pl_inbound out;
    char *err = NULL;
    CHECK(inbound(settings, "s3cret-Token_43", MESSAGE_UPDATE, &out, &err) == PL_ERR);
    CHECK(out.status == 403);
    CHECK(json_array_size(out.events) == 0);
    CHECK(err && strstr(err, TG_HEADER));
    free(err);
    err = NULL;
    /* a prefix of the secret, and the secret with more after it */
    CHECK(inbound(settings, "s3cret", MESSAGE_UPDATE, &out, &err) == PL_ERR && out.status == 403);
    CHECK(inbound(settings, SECRET "x", MESSAGE_UPDATE, &out, &err) == PL_ERR && out.status == 403);
    free(err);
    pl_inbound_clear(&out);
    json_decref(settings);
}

TEST(secret_missing_is_401) {
    json_t *settings = settings_with_secret();
    pl_inbound out;
    char *err = NULL;
    CHECK(inbound(settings, NULL, MESSAGE_UPDATE, &out, &err) == PL_ERR);
    CHECK(out.status == 401);
    CHECK(out.events == NULL);
    free(err);
    err = NULL;
    CHECK(inbound(settings, "", MESSAGE_UPDATE, &out, &err) == PL_ERR && out.status == 401);
    free(err);
    json_decref(settings);
}

TEST(secret_setting_missing_is_503) {
    unsetenv("BARISTA_TEST_TG_SECRET_UNSET");
    json_t *settings = json_pack("{s:s}", "secret_token_env", "BARISTA_TEST_TG_SECRET_UNSET");
    pl_inbound out;
    char *err = NULL;
    CHECK(inbound(settings, SECRET, MESSAGE_UPDATE, &out, &err) == PL_ERR);
    CHECK(out.status == 503);
    CHECK(err && strstr(err, "BARISTA_TEST_TG_SECRET_UNSET"));
    free(err);
    json_decref(settings);
}

TEST(secret_from_environment) {
    setenv("BARISTA_TEST_TG_SECRET", SECRET, 1);
    json_t *settings = json_pack("{s:s}", "secret_token_env", "BARISTA_TEST_TG_SECRET");
    pl_inbound out;
    char *err = NULL;
    CHECK(inbound(settings, SECRET, MESSAGE_UPDATE, &out, &err) == PL_OK);
    pl_inbound_clear(&out);
    CHECK(inbound(settings, "other", MESSAGE_UPDATE, &out, &err) == PL_ERR && out.status == 403);
    free(err);
    unsetenv("BARISTA_TEST_TG_SECRET");
    json_decref(settings);
}

TEST(only_post) {
    json_t *settings = settings_with_secret();
    pl_channel_config cfg = {"barista", "telegram", settings};
    const char *headers[] = {TG_HEADER, SECRET, NULL};
    pl_webhook req = {.method = "GET", .body = "", .header = find_header, .header_ctx = headers};
    pl_inbound out = {.status = 200};
    char *err = NULL;
    CHECK(tg->inbound(&cfg, &req, &out, &err) == PL_ERR);
    CHECK(out.status == 405);
    free(err);
    /* unauthenticated, a GET learns nothing more than a POST would */
    const char *none[] = {NULL};
    req.header_ctx = none;
    err = NULL;
    CHECK(tg->inbound(&cfg, &req, &out, &err) == PL_ERR && out.status == 401);
    free(err);
    json_decref(settings);
}

/* --- parsing ----------------------------------------------------------------------- */

TEST(parse_message) {
    json_t *settings = settings_with_secret();
    pl_inbound out;
    char *err = NULL;
    CHECK(inbound(settings, SECRET, MESSAGE_UPDATE, &out, &err) == PL_OK);
    json_t *e = json_array_get(out.events, 0);
    CHECK_STR(str(e, "kind"), "message");
    CHECK_STR(str(e, "id"), "10000:4242:7");
    CHECK_STR(str(e, "user"), "4242");
    CHECK_STR(str(e, "text"), "a large latte please");
    CHECK_STR(str(e, "locale"), "ja");
    CHECK(json_object_get(e, "payload") == NULL);
    CHECK(json_object_get(e, "ack") == NULL);
    json_t *info = json_object_get(e, "info");
    CHECK_STR(str(info, "platform"), "telegram");
    CHECK_STR(str(info, "display_name"), "Ada Lovelace");
    CHECK_STR(str(info, "username"), "ada");
    CHECK_STR(str(info, "chat_type"), "private");
    CHECK_STR(str(info, "type"), "text");
    CHECK(json_object_get(info, "phone") == NULL);
    pl_inbound_clear(&out);
    json_decref(settings);
}

TEST(parse_group_message_and_caption) {
    json_t *settings = settings_with_secret();
    pl_inbound out;
    char *err = NULL;
    const char *body =
        "{\"update_id\": 10001, \"message\": {\"message_id\": 8, \"date\": 1,"
        " \"from\": {\"id\": 77, \"is_bot\": false, \"first_name\": \"Grace\"},"
        " \"chat\": {\"id\": -1001234567890, \"type\": \"supergroup\", \"title\": \"Coffee club\"},"
        " \"photo\": [{\"file_id\": \"x\", \"file_unique_id\": \"y\", \"width\": 1, \"height\": 1}],"
        " \"caption\": \"this one please\"}}";
    CHECK(inbound(settings, SECRET, body, &out, &err) == PL_OK);
    json_t *e = json_array_get(out.events, 0);
    CHECK_STR(str(e, "user"), "-1001234567890");
    CHECK_STR(str(e, "text"), "this one please");
    CHECK_STR(str(json_object_get(e, "info"), "display_name"), "Grace");
    CHECK_STR(str(json_object_get(e, "info"), "type"), "photo");
    CHECK(json_object_get(e, "locale") == NULL);
    pl_inbound_clear(&out);
    /* content without text arrives named, so a flow can answer it */
    static const char *const kinds[][2] = {
        {"\"sticker\": {\"file_id\": \"s\", \"emoji\": \"x\"}", "sticker"},
        {"\"voice\": {\"file_id\": \"v\", \"duration\": 2}", "voice"},
        {"\"venue\": {\"title\": \"Cafe\"}, \"location\": {\"latitude\": 1.5, \"longitude\": 2.5}", "venue"},
        {"\"location\": {\"latitude\": 1.5, \"longitude\": 2.5}", "location"},
        {"\"animation\": {\"file_id\": \"a\"}, \"document\": {\"file_id\": \"a\"}", "animation"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        char buf[512];
        snprintf(buf, sizeof buf,
                 "{\"update_id\": %zu, \"message\": {\"message_id\": 3, \"date\": 1,"
                 " \"from\": {\"id\": 5, \"is_bot\": false, \"first_name\": \"A\"},"
                 " \"chat\": {\"id\": 5, \"type\": \"private\"}, %s}}",
                 20 + i, kinds[i][0]);
        CHECK(inbound(settings, SECRET, buf, &out, &err) == PL_OK);
        CHECK(json_array_size(out.events) == 1);
        e = json_array_get(out.events, 0);
        CHECK_STR(str(json_object_get(e, "info"), "type"), kinds[i][1]);
        CHECK(json_object_get(e, "text") == NULL);
        pl_inbound_clear(&out);
    }
    json_decref(settings);
}

TEST(parse_contact) {
    json_t *settings = settings_with_secret();
    pl_inbound out;
    char *err = NULL;
    const char *own =
        "{\"update_id\": 10002, \"message\": {\"message_id\": 9, \"date\": 1,"
        " \"from\": {\"id\": 4242, \"is_bot\": false, \"first_name\": \"Ada\"},"
        " \"chat\": {\"id\": 4242, \"type\": \"private\"},"
        " \"contact\": {\"phone_number\": \"+15551234567\", \"first_name\": \"Ada\", \"user_id\": 4242}}}";
    CHECK(inbound(settings, SECRET, own, &out, &err) == PL_OK);
    json_t *e = json_array_get(out.events, 0);
    CHECK(json_array_size(out.events) == 1);
    CHECK_STR(str(json_object_get(e, "info"), "phone"), "+15551234567");
    CHECK_STR(str(json_object_get(e, "info"), "type"), "contact");
    CHECK(json_object_get(e, "text") == NULL);
    pl_inbound_clear(&out);
    /* someone else's card is not the shopper's phone */
    const char *other =
        "{\"update_id\": 10003, \"message\": {\"message_id\": 10, \"date\": 1,"
        " \"from\": {\"id\": 4242, \"is_bot\": false, \"first_name\": \"Ada\"},"
        " \"chat\": {\"id\": 4242, \"type\": \"private\"},"
        " \"contact\": {\"phone_number\": \"+4400000\", \"first_name\": \"Bob\", \"user_id\": 99}}}";
    CHECK(inbound(settings, SECRET, other, &out, &err) == PL_OK);
    CHECK(json_array_size(out.events) == 1);
    CHECK(json_object_get(json_object_get(json_array_get(out.events, 0), "info"), "phone") == NULL);
    pl_inbound_clear(&out);
    json_decref(settings);
}

static const char *callback_update(char *buf, size_t size, const char *data) {
    snprintf(buf, size,
             "{\"update_id\": 10010, \"callback_query\": {\"id\": \"4382bfdwdsb323b2d9\","
             " \"from\": {\"id\": 4242, \"is_bot\": false, \"first_name\": \"Ada\", \"language_code\": \"en\"},"
             " \"message\": {\"message_id\": 11, \"date\": 1, \"chat\": {\"id\": 4242, \"type\": \"private\"},"
             "               \"text\": \"What size?\"},"
             " \"chat_instance\": \"-8930\", \"data\": \"%s\"}}",
             data);
    return buf;
}

TEST(parse_callback_plain) {
    json_t *settings = settings_with_secret();
    pl_inbound out;
    char *err = NULL, buf[1024];
    map_clear();
    CHECK(inbound(settings, SECRET, callback_update(buf, sizeof buf, "large"), &out, &err) == PL_OK);
    CHECK(json_array_size(out.events) == 1);
    json_t *e = json_array_get(out.events, 0);
    CHECK_STR(str(e, "kind"), "message");
    CHECK_STR(str(e, "id"), "10010:4382bfdwdsb323b2d9");
    CHECK_STR(str(e, "user"), "4242");
    CHECK_STR(str(e, "payload"), "large");
    CHECK(json_object_get(e, "text") == NULL);
    CHECK_STR(str(json_object_get(e, "info"), "type"), "callback_query");
    CHECK_STR(str(e, "locale"), "en");
    CHECK_STR(str(json_object_get(e, "info"), "display_name"), "Ada");
    CHECK(map.gets == 0);
    json_t *ack = json_object_get(e, "ack");
    CHECK_STR(str(ack, "method"), "POST");
    CHECK_STR(str(ack, "path"), "/answerCallbackQuery");
    CHECK_STR(str(ack, "content_type"), "application/json");
    json_t *body = json_loads(str(ack, "body"), 0, NULL);
    CHECK_STR(str(body, "callback_query_id"), "4382bfdwdsb323b2d9");
    CHECK(json_object_size(body) == 1);
    json_decref(body);
    pl_inbound_clear(&out);
    json_decref(settings);
}

TEST(parse_callback_mapped) {
    json_t *settings = settings_with_secret();
    pl_inbound out;
    char *err = NULL, buf[1024];
    map_clear();
    const char *long_payload = "size:grande-grande-grande-grande-grande-grande-grande-grande-grande-end";
    char *key = map_put(NULL, long_payload);
    CHECK(key[0] == '~' && strlen(key) <= 16);
    CHECK(inbound(settings, SECRET, callback_update(buf, sizeof buf, key), &out, &err) == PL_OK);
    CHECK_STR(str(json_array_get(out.events, 0), "payload"), long_payload);
    CHECK(map.gets == 1);
    pl_inbound_clear(&out);
    /* a key the map does not know arrives as it is */
    CHECK(inbound(settings, SECRET, callback_update(buf, sizeof buf, "~AAAAAAAAAAAA"), &out, &err) == PL_OK);
    CHECK_STR(str(json_array_get(out.events, 0), "payload"), "~AAAAAAAAAAAA");
    pl_inbound_clear(&out);
    free(key);
    map_clear();
    json_decref(settings);
}

TEST(unknown_kinds_acknowledged) {
    json_t *settings = settings_with_secret();
    static const char *const bodies[] = {
        "{\"update_id\": 1, \"edited_message\": {\"message_id\": 1, \"date\": 1, \"chat\": {\"id\": 5, \"type\": \"private\"}, \"text\": \"x\"}}",
        "{\"update_id\": 2, \"inline_query\": {\"id\": \"q\", \"from\": {\"id\": 5, \"is_bot\": false, \"first_name\": \"A\"}, \"query\": \"\", \"offset\": \"\"}}",
        "{\"update_id\": 3, \"my_chat_member\": {\"chat\": {\"id\": 5, \"type\": \"private\"}}}",
        "{\"update_id\": 4, \"message\": {\"message_id\": 2, \"date\": 1, \"chat\": {\"id\": 5, \"type\": \"group\"},"
        " \"new_chat_members\": [{\"id\": 6, \"is_bot\": false, \"first_name\": \"B\"}]}}",
        "{\"update_id\": 5, \"callback_query\": {\"id\": \"g\", \"from\": {\"id\": 5, \"is_bot\": false, \"first_name\": \"A\"}, \"chat_instance\": \"1\", \"game_short_name\": \"g\"}}",
        "{\"update_id\": 6}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        pl_inbound out;
        char *err = NULL;
        int rc = inbound(settings, SECRET, bodies[i], &out, &err);
        CHECK(rc == PL_OK);
        CHECK(out.status == 200);
        CHECK(out.events && json_array_size(out.events) == 0);
        if (rc != PL_OK) printf("#   body %zu: %s\n", i, err);
        free(err);
        pl_inbound_clear(&out);
    }
    json_decref(settings);
}

TEST(bad_bodies_are_400) {
    json_t *settings = settings_with_secret();
    static const char *const bodies[] = {"", "not json", "[]", "{\"message\": {}}", "{\"update_id\": \"7\"}"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        pl_inbound out;
        char *err = NULL;
        CHECK(inbound(settings, SECRET, bodies[i], &out, &err) == PL_ERR);
        CHECK(out.status == 400);
        CHECK(err != NULL);
        free(err);
        pl_inbound_clear(&out);
    }
    json_decref(settings);
}

/* Updates whose message or callback_query (or what the adapter reads in
 * them) are of the wrong type: 400 naming the place, no events. They used
 * to be acknowledged and dropped without a word in the log. */
TEST(updates_of_the_wrong_shape_are_400) {
    json_t *settings = settings_with_secret();
    static const struct {
        const char *body, *place;
    } cases[] = {
        {"{\"update_id\": 1.5}", "update_id must be an integer"},
        {"{\"update_id\": 1, \"message\": \"hello\"}", "message must be an object"},
        {"{\"update_id\": 1, \"message\": {\"message_id\": 2, \"text\": \"hi\"}}", "message.chat is missing"},
        {"{\"update_id\": 1, \"message\": {\"chat\": [4242], \"text\": \"hi\"}}", "message.chat must be an object"},
        {"{\"update_id\": 1, \"message\": {\"chat\": {\"id\": \"4242\"}, \"text\": \"hi\"}}",
         "message.chat.id must be an integer"},
        {"{\"update_id\": 1, \"message\": {\"chat\": {\"id\": 1}, \"text\": {\"t\": \"hi\"}}}",
         "message.text must be a string"},
        {"{\"update_id\": 1, \"message\": {\"chat\": {\"id\": 1}, \"from\": 5, \"text\": \"hi\"}}",
         "message.from must be an object"},
        {"{\"update_id\": 1, \"message\": {\"chat\": {\"id\": 1}, \"from\": {\"id\": 1, \"language_code\": 7}}}",
         "message.from.language_code must be a string"},
        {"{\"update_id\": 1, \"message\": {\"chat\": {\"id\": 1}, \"contact\": \"+44\"}}",
         "message.contact must be an object"},
        {"{\"update_id\": 1, \"callback_query\": [\"large\"]}", "callback_query must be an object"},
        {"{\"update_id\": 1, \"callback_query\": {\"from\": {\"id\": 1}, \"data\": \"x\"}}",
         "callback_query.id is missing"},
        {"{\"update_id\": 1, \"callback_query\": {\"id\": \"q\", \"data\": \"x\"}}", "callback_query.from is missing"},
        {"{\"update_id\": 1, \"callback_query\": {\"id\": \"q\", \"from\": {\"id\": 1}, \"data\": 5}}",
         "callback_query.data must be a string"},
        {"{\"update_id\": 1, \"callback_query\": {\"id\": \"q\", \"from\": {\"id\": 1}, \"message\": {\"chat\": 1}}}",
         "callback_query.message.chat must be an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pl_inbound out;
        char *err = NULL;
        CHECK(inbound(settings, SECRET, cases[i].body, &out, &err) == PL_ERR);
        CHECK(out.status == 400 && out.events == NULL);
        if (!err || !strstr(err, cases[i].place))
            printf("#   %s -> %s (expected %s)\n", cases[i].body, err ? err : "(accepted)", cases[i].place);
        CHECK(err && strstr(err, cases[i].place));
        free(err);
        pl_inbound_clear(&out);
    }
    json_decref(settings);
}

/* --- rendering ----------------------------------------------------------------------- */

TEST(render_text) {
    json_t *calls = render_for("4242", "[{\"text\": \"Hi! I'm Bea ☕\"}, {\"text\": \"Next\"}]", 1);
    CHECK(json_array_size(calls) == 2);
    json_t *call = json_array_get(calls, 0);
    CHECK_STR(str(call, "method"), "POST");
    CHECK_STR(str(call, "path"), "/sendMessage");
    CHECK_STR(str(call, "content_type"), "application/json");
    json_t *body = body_of(calls, 0);
    CHECK(json_integer_value(json_object_get(body, "chat_id")) == 4242);
    CHECK_STR(str(body, "text"), "Hi! I'm Bea ☕");
    CHECK(json_object_get(body, "reply_markup") == NULL);
    json_decref(body);
    json_decref(calls);
    /* a chat id that is not a number (@channel) goes as a string */
    calls = render_for("@beas_news", "[{\"text\": \"x\"}]", 1);
    body = body_of(calls, 0);
    CHECK_STR(str(body, "chat_id"), "@beas_news");
    json_decref(body);
    json_decref(calls);
    calls = render_for("-1001234567890", "[{\"text\": \"x\"}]", 1);
    body = body_of(calls, 0);
    CHECK(json_integer_value(json_object_get(body, "chat_id")) == -1001234567890LL);
    json_decref(body);
    json_decref(calls);
}

TEST(render_choices_keyboard) {
    map_clear();
    json_t *calls = render_for("4242",
                               "[{\"text\": \"What size for your Latte?\", \"choices\": ["
                               " {\"title\": \"Small\", \"payload\": \"small\"},"
                               " {\"title\": \"Medium +€0.50\", \"payload\": \"medium\"},"
                               " {\"title\": \"Large +€0.90\", \"payload\": \"large\"}]}]",
                               1);
    CHECK(json_array_size(calls) == 1);
    json_t *body = body_of(calls, 0);
    CHECK_STR(str(body, "text"), "What size for your Latte?");
    json_t *rows = json_object_get(json_object_get(body, "reply_markup"), "inline_keyboard");
    /* short titles: two to a row */
    CHECK(json_array_size(rows) == 2);
    CHECK(json_array_size(json_array_get(rows, 0)) == 2);
    CHECK(json_array_size(json_array_get(rows, 1)) == 1);
    json_t *first = json_array_get(json_array_get(rows, 0), 0);
    CHECK_STR(str(first, "text"), "Small");
    CHECK_STR(str(first, "callback_data"), "small");
    CHECK_STR(str(json_array_get(json_array_get(rows, 1), 0), "callback_data"), "large");
    CHECK(map.puts == 0);
    json_decref(body);
    json_decref(calls);
    /* a long title: one button a row */
    calls = render_for("4242",
                       "[{\"text\": \"Anything?\", \"choices\": ["
                       " {\"title\": \"Add Butter Croissant\", \"payload\": \"croissant\"},"
                       " {\"title\": \"No\", \"payload\": \"no\"}]}]",
                       1);
    body = body_of(calls, 0);
    rows = json_object_get(json_object_get(body, "reply_markup"), "inline_keyboard");
    CHECK(json_array_size(rows) == 2);
    CHECK(json_array_size(json_array_get(rows, 0)) == 1);
    json_decref(body);
    json_decref(calls);
}

TEST(render_long_payloads_mapped) {
    map_clear();
    const char *replies =
        "[{\"text\": \"Pick\", \"choices\": ["
        " {\"title\": \"Exactly 64\", \"payload\": \"1234567890123456789012345678901234567890123456789012345678901234\"},"
        " {\"title\": \"Sixty-five\", \"payload\": \"12345678901234567890123456789012345678901234567890123456789012345\"},"
        " {\"title\": \"Tilde\", \"payload\": \"~short\"},"
        " {\"title\": \"Empty\", \"payload\": \"\"},"
        " {\"title\": \"Wide\", \"payload\": \"ラテラテラテラテラテラテラテラテラテラテラテ\"}]}]";
    json_t *calls = render_for("4242", replies, 1);
    json_t *body = body_of(calls, 0);
    json_t *markup = json_object_get(body, "reply_markup");
    CHECK(callback_data_fits(markup));
    json_t *rows = json_object_get(markup, "inline_keyboard");
    const char *d64 = str(json_array_get(json_array_get(rows, 0), 0), "callback_data");
    const char *d65 = str(json_array_get(json_array_get(rows, 0), 1), "callback_data");
    const char *tilde = str(json_array_get(json_array_get(rows, 1), 0), "callback_data");
    const char *empty = str(json_array_get(json_array_get(rows, 1), 1), "callback_data");
    const char *wide = str(json_array_get(json_array_get(rows, 2), 0), "callback_data");
    CHECK(d64 && strlen(d64) == 64 && d64[0] == '1');
    CHECK(d65 && d65[0] == '~' && strlen(d65) <= 16);
    CHECK(tilde && tilde[0] == '~' && strcmp(tilde, "~short") != 0);
    CHECK(empty && empty[0] == '~');
    CHECK(wide && wide[0] == '~'); /* 66 bytes in 22 characters */
    CHECK(map.puts == 4);
    /* each key turns back into its payload */
    char *back = map_get(NULL, d65);
    CHECK_STR(back, "12345678901234567890123456789012345678901234567890123456789012345");
    free(back);
    back = map_get(NULL, tilde);
    CHECK_STR(back, "~short");
    free(back);
    json_decref(body);
    json_decref(calls);
    /* without a map (outside a commit) long payloads still fit */
    map_clear();
    calls = render_for("4242", replies, 0);
    body = body_of(calls, 0);
    CHECK(callback_data_fits(json_object_get(body, "reply_markup")));
    CHECK(map.puts == 0);
    json_decref(body);
    json_decref(calls);
    map_clear();
}

TEST(render_cards_with_images) {
    map_clear();
    json_t *calls = render_for(
        "4242",
        "[{\"text\": \"Butter Croissant would go nicely with that.\","
        "  \"choices\": [{\"title\": \"Add Butter Croissant\", \"payload\": \"croissant\"},"
        "                {\"title\": \"No thanks\", \"payload\": \"no\"}],"
        "  \"cards\": [{\"sku\": \"croissant\", \"title\": \"Butter Croissant\", \"subtitle\": \"a classic with coffee.\","
        "              \"image\": \"https://images.example/croissant.jpg\","
        "              \"price\": {\"amount\": 250, \"currency\": \"EUR\"}, \"payload\": \"croissant\"},"
        "             {\"sku\": \"pain\", \"title\": \"Pain au Chocolat\","
        "              \"image\": \"https://images.example/pain.jpg\","
        "              \"price\": {\"amount\": 280, \"currency\": \"EUR\"}, \"payload\": \"pain_au_chocolat\"}]}]",
        1);
    CHECK(json_array_size(calls) == 3);
    json_t *text = body_of(calls, 0);
    CHECK_STR(str(json_array_get(calls, 0), "path"), "/sendMessage");
    CHECK_STR(str(text, "text"), "Butter Croissant would go nicely with that.");
    CHECK(json_array_size(json_object_get(json_object_get(text, "reply_markup"), "inline_keyboard")) == 2);
    json_decref(text);
    CHECK_STR(str(json_array_get(calls, 1), "path"), "/sendPhoto");
    json_t *photo = body_of(calls, 1);
    CHECK(json_integer_value(json_object_get(photo, "chat_id")) == 4242);
    CHECK_STR(str(photo, "photo"), "https://images.example/croissant.jpg");
    CHECK_STR(str(photo, "caption"), "Butter Croissant — €2.50\na classic with coffee.");
    json_t *b = json_array_get(json_array_get(json_object_get(json_object_get(photo, "reply_markup"), "inline_keyboard"), 0), 0);
    CHECK_STR(str(b, "text"), "Butter Croissant");
    CHECK_STR(str(b, "callback_data"), "croissant");
    json_decref(photo);
    photo = body_of(calls, 2);
    CHECK_STR(str(photo, "caption"), "Pain au Chocolat — €2.80");
    json_decref(photo);
    json_decref(calls);
}

TEST(render_cards_without_images) {
    json_t *calls = render_for(
        "4242",
        "[{\"text\": \"Today:\","
        "  \"choices\": [{\"title\": \"Croissant\", \"payload\": \"croissant\"}],"
        "  \"cards\": [{\"title\": \"Croissant\", \"price\": {\"amount\": 250, \"currency\": \"EUR\"}, \"payload\": \"croissant\"},"
        "             {\"title\": \"Scone\", \"subtitle\": \"warm\", \"price\": {\"amount\": 300, \"currency\": \"EUR\"},"
        "              \"payload\": \"scone\"}]}]",
        1);
    CHECK(json_array_size(calls) == 1);
    json_t *body = body_of(calls, 0);
    CHECK_STR(str(body, "text"), "Today:\n• Croissant — €2.50\n• Scone — €3.00. warm");
    /* the choice, then the card no choice offers */
    json_t *rows = json_object_get(json_object_get(body, "reply_markup"), "inline_keyboard");
    CHECK(json_array_size(rows) == 1);
    CHECK_STR(str(json_array_get(json_array_get(rows, 0), 1), "callback_data"), "scone");
    json_decref(body);
    json_decref(calls);
}

TEST(render_choices_without_text) {
    json_t *calls = render_for("4242",
                               "[{\"text\": \"First\", \"choices\": [{\"title\": \"A\", \"payload\": \"a\"}]},"
                               " {\"choices\": [{\"title\": \"B\", \"payload\": \"b\"}, {\"title\": \"C\", \"payload\": \"c\"}]}]",
                               1);
    CHECK(json_array_size(calls) == 2);
    json_t *body = body_of(calls, 1);
    /* numbered across the turn, as typed numbers are resolved */
    CHECK_STR(str(body, "text"), "2) B\n3) C");
    CHECK(json_object_get(body, "reply_markup") != NULL);
    json_decref(body);
    json_decref(calls);
}

TEST(render_degrades) {
    /* nothing to say, odd shapes, unknown fields: no call, no failure */
    json_t *calls = render_for("4242", "[]", 1);
    CHECK(calls && json_array_size(calls) == 0);
    json_decref(calls);
    calls = render_for("4242", "[{}, 7, \"x\", {\"text\": \"\"}, {\"text\": \" \\n \"}, {\"cards\": [3]}, {\"choices\": [null]}, {\"video\": {}}]", 1);
    CHECK(calls && json_array_size(calls) == 0);
    json_decref(calls);
    calls = render_for("4242", "{\"not\": \"an array\"}", 1);
    CHECK(calls && json_array_size(calls) == 0);
    json_decref(calls);
    /* a card without price or title, a choice without title */
    calls = render_for("4242",
                       "[{\"text\": \"t\", \"choices\": [{\"payload\": \"p\"}],"
                       "  \"cards\": [{\"image\": \"https://i.example/x.jpg\", \"payload\": \"x\"}]}]",
                       1);
    CHECK(json_array_size(calls) == 2);
    json_t *body = body_of(calls, 0);
    CHECK_STR(str(json_array_get(json_array_get(json_object_get(json_object_get(body, "reply_markup"), "inline_keyboard"), 0), 0), "text"), "p");
    json_decref(body);
    body = body_of(calls, 1);
    CHECK_STR(str(body, "caption"), "");
    json_decref(body);
    json_decref(calls);
}

TEST(render_image_and_link) {
    json_t *calls = render_for("4242",
                               "[{\"text\": \"Pay here\", \"link\": {\"url\": \"https://pay.example/o/1\", \"title\": \"Pay €7.20\"},"
                               "  \"image\": \"https://i.example/receipt.png\"}]",
                               1);
    CHECK(json_array_size(calls) == 2);
    json_t *body = body_of(calls, 0);
    json_t *b = json_array_get(json_array_get(json_object_get(json_object_get(body, "reply_markup"), "inline_keyboard"), 0), 0);
    CHECK_STR(str(b, "url"), "https://pay.example/o/1");
    CHECK_STR(str(b, "text"), "Pay €7.20");
    CHECK(json_object_get(b, "callback_data") == NULL);
    json_decref(body);
    CHECK_STR(str(json_array_get(calls, 1), "path"), "/sendPhoto");
    body = body_of(calls, 1);
    CHECK_STR(str(body, "photo"), "https://i.example/receipt.png");
    json_decref(body);
    json_decref(calls);
}

/* A text of n copies of unit joined by sep. */
static char *repeated(const char *unit, const char *sep, int n) {
    size_t len = (strlen(unit) + strlen(sep)) * (size_t)n + 1;
    char *s = calloc(1, len);
    for (int i = 0; i < n; i++) {
        if (i) strcat(s, sep);
        strcat(s, unit);
    }
    return s;
}

static json_t *render_text_of(const char *text, const char *extra) {
    json_t *reply = json_pack("{s:s}", "text", text);
    if (extra) json_object_set_new(reply, "choices", json_loads(extra, 0, NULL));
    json_t *replies = json_pack("[o]", reply);
    char *dumped = json_dumps(replies, 0);
    json_t *calls = render_for("4242", dumped, 1);
    free(dumped);
    json_decref(replies);
    return calls;
}

TEST(render_splits_long_text) {
    /* 600 lines of 9 characters: 5999 units, split at a line break */
    char *text = repeated("line 1234", "\n", 600);
    json_t *calls = render_text_of(text, "[{\"title\": \"OK\", \"payload\": \"ok\"}]");
    CHECK(json_array_size(calls) == 2);
    json_t *a = body_of(calls, 0), *b = body_of(calls, 1);
    const char *ta = str(a, "text"), *tb = str(b, "text");
    CHECK(ta && utf16_len(ta) <= 4096 && tb && utf16_len(tb) <= 4096);
    CHECK(ta && strncmp(ta + strlen(ta) - 9, "line 1234", 9) == 0);
    CHECK(tb && strncmp(tb, "line 1234", 9) == 0);
    CHECK(ta && tb && strlen(ta) + strlen(tb) + 1 == strlen(text));
    CHECK(json_object_get(a, "reply_markup") == NULL);
    CHECK(json_object_get(b, "reply_markup") != NULL);
    json_decref(a);
    json_decref(b);
    json_decref(calls);
    free(text);
    /* exactly 4096 stays one message */
    text = repeated("x", "", 4096);
    calls = render_text_of(text, NULL);
    CHECK(json_array_size(calls) == 1);
    json_decref(calls);
    free(text);
    text = repeated("x", "", 4097);
    calls = render_text_of(text, NULL);
    CHECK(json_array_size(calls) == 2);
    json_decref(calls);
    free(text);
    /* a character outside the BMP counts two units; none is ever cut in half */
    text = repeated("☕🥐", "", 1400); /* 1400 * 3 units */
    calls = render_text_of(text, NULL);
    CHECK(json_array_size(calls) == 2);
    size_t total = 0, i;
    json_t *call;
    json_array_foreach(calls, i, call) {
        json_t *body = json_loads(str(call, "body"), 0, NULL);
        const char *t = str(body, "text");
        CHECK(t && utf16_len(t) <= 4096);
        total += t ? strlen(t) : 0;
        json_decref(body);
    }
    CHECK(total == strlen(text)); /* json_loads checked every chunk is valid UTF-8 */
    json_decref(calls);
    free(text);
    /* no break anywhere: words of 5000 letters */
    text = repeated("y", "", 9000);
    calls = render_text_of(text, NULL);
    CHECK(json_array_size(calls) == 3);
    json_decref(calls);
    free(text);
}

TEST(render_caption_limit) {
    char *subtitle = repeated("word", " ", 400); /* 1999 characters */
    json_t *card = json_pack("{s:s, s:s, s:s, s:s, s:{s:i, s:s}}", "title", "Latte", "subtitle", subtitle, "image",
                             "https://i.example/l.jpg", "payload", "latte", "price", "amount", 380, "currency", "EUR");
    json_t *replies = json_pack("[{s:[o]}]", "cards", card);
    char *dumped = json_dumps(replies, 0);
    json_t *calls = render_for("4242", dumped, 1);
    CHECK(json_array_size(calls) == 1);
    json_t *body = body_of(calls, 0);
    const char *caption = str(body, "caption");
    CHECK(caption && utf16_len(caption) == 1024);
    static const char head[] = "Latte — €3.80\nword word";
    CHECK(caption && strncmp(caption, head, strlen(head)) == 0);
    CHECK(caption && strcmp(caption + strlen(caption) - 3, "…") == 0);
    json_decref(body);
    json_decref(calls);
    free(dumped);
    json_decref(replies);
    free(subtitle);
}

/* --- credentials -------------------------------------------------------------------- */

static int authorize(const json_t *settings, const char *path, char **url, char **err) {
    pl_channel_config cfg = {"barista", "telegram", settings};
    const char *base = pl_channel_api_base(&cfg, tg->default_api_base);
    *url = pl_strdupf("%s%s", base, path);
    json_t *headers = json_object();
    char *user_pwd = NULL;
    int rc = tg->authorize(&cfg, headers, url, &user_pwd, err);
    CHECK(user_pwd == NULL);
    CHECK(json_object_size(headers) == 0);
    json_decref(headers);
    return rc;
}

TEST(authorize_token_in_url) {
    unsetenv("PARLEY_TELEGRAM_API_BASE");
    CHECK_STR(tg->default_api_base, "https://api.telegram.org");
    json_t *settings = settings_with_secret();
    char *url = NULL, *err = NULL;
    CHECK(authorize(settings, "/sendMessage", &url, &err) == PL_OK);
    CHECK_STR(url, "https://api.telegram.org/bot" TOKEN "/sendMessage");
    free(url);
    /* the environment's base, with or without a trailing slash */
    setenv("PARLEY_TELEGRAM_API_BASE", "http://127.0.0.1:9/", 1);
    CHECK(authorize(settings, "/answerCallbackQuery", &url, &err) == PL_OK);
    CHECK_STR(url, "http://127.0.0.1:9/bot" TOKEN "/answerCallbackQuery");
    free(url);
    setenv("PARLEY_TELEGRAM_API_BASE", "http://127.0.0.1:9", 1);
    CHECK(authorize(settings, "/sendPhoto", &url, &err) == PL_OK);
    CHECK_STR(url, "http://127.0.0.1:9/bot" TOKEN "/sendPhoto");
    free(url);
    unsetenv("PARLEY_TELEGRAM_API_BASE");
    json_decref(settings);
}

TEST(authorize_token_from_environment) {
    setenv("BARISTA_TEST_TG_TOKEN", TOKEN, 1);
    json_t *settings = json_pack("{s:s}", "bot_token_env", "BARISTA_TEST_TG_TOKEN");
    char *url = NULL, *err = NULL;
    CHECK(authorize(settings, "/sendMessage", &url, &err) == PL_OK);
    CHECK_STR(url, "https://api.telegram.org/bot" TOKEN "/sendMessage");
    free(url);
    unsetenv("BARISTA_TEST_TG_TOKEN");
    /* unset: refused, naming the variable, never a URL without a token */
    CHECK(authorize(settings, "/sendMessage", &url, &err) == PL_ERR);
    CHECK(err && strstr(err, "BARISTA_TEST_TG_TOKEN"));
    free(url);
    free(err);
    json_decref(settings);
}

TEST(authorize_refuses_odd_tokens) {
    static const char *const tokens[] = {"123:abc/../x", "123:abc?x=1", "123 abc", "123:abc#", ""};
    for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++) {
        json_t *settings = json_pack("{s:s}", "bot_token", tokens[i]);
        char *url = NULL, *err = NULL;
        CHECK(authorize(settings, "/sendMessage", &url, &err) == PL_ERR);
        CHECK(err && !(*tokens[i] && strstr(err, tokens[i])));
        free(url);
        free(err);
        json_decref(settings);
    }
}

TEST(token_never_in_stored_calls) {
    map_clear();
    json_t *calls = render_for("4242",
                               "[{\"text\": \"x\", \"choices\": [{\"title\": \"a\", \"payload\": \"a\"}],"
                               "  \"cards\": [{\"title\": \"c\", \"image\": \"https://i.example/c.jpg\", \"payload\": \"c\"}]}]",
                               1);
    char *dumped = json_dumps(calls, 0);
    CHECK(dumped && strstr(dumped, TOKEN) == NULL && strstr(dumped, "123456") == NULL);
    CHECK(dumped && strstr(dumped, "/bot") == NULL);
    CHECK(dumped && strstr(dumped, SECRET) == NULL);
    free(dumped);
    json_decref(calls);
    /* nor in the ack of a tap */
    json_t *settings = settings_with_secret();
    pl_inbound out;
    char *err = NULL, buf[1024];
    CHECK(inbound(settings, SECRET, callback_update(buf, sizeof buf, "a"), &out, &err) == PL_OK);
    dumped = json_dumps(out.events, 0);
    CHECK(dumped && strstr(dumped, TOKEN) == NULL && strstr(dumped, SECRET) == NULL);
    free(dumped);
    pl_inbound_clear(&out);
    json_decref(settings);
    map_clear();
}

int main(void) {
    RUN(secret_good);
    RUN(secret_wrong_is_403);
    RUN(secret_missing_is_401);
    RUN(secret_setting_missing_is_503);
    RUN(secret_from_environment);
    RUN(only_post);
    RUN(parse_message);
    RUN(parse_group_message_and_caption);
    RUN(parse_contact);
    RUN(parse_callback_plain);
    RUN(parse_callback_mapped);
    RUN(unknown_kinds_acknowledged);
    RUN(bad_bodies_are_400);
    RUN(updates_of_the_wrong_shape_are_400);
    RUN(render_text);
    RUN(render_choices_keyboard);
    RUN(render_long_payloads_mapped);
    RUN(render_cards_with_images);
    RUN(render_cards_without_images);
    RUN(render_choices_without_text);
    RUN(render_degrades);
    RUN(render_image_and_link);
    RUN(render_splits_long_text);
    RUN(render_caption_limit);
    RUN(authorize_token_in_url);
    RUN(authorize_token_from_environment);
    RUN(authorize_refuses_odd_tokens);
    RUN(token_never_in_stored_calls);
    return check_done();
}
