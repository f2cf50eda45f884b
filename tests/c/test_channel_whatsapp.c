/* test_channel_whatsapp: the WhatsApp Cloud API adapter (channel_whatsapp.c)
 * driven with fixed vectors: the verification handshake, the signature,
 * each kind of inbound message and status, the rendering of each reply shape
 * with the platform's limits and degradations, and authorize. Every rendered
 * call is also checked against the documented shape (valid_call). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "base/text.h"
#include "channels/channel.h"
#include "check.h"
#include "webhook_fixture.h"

static const pl_channel_adapter *wa;

#define SECRET "app-secret-1"
#define PHONE_ID "106540352242922"

static json_t *settings_json;

static pl_channel_config config(void) {
    if (!settings_json)
        settings_json = json_pack("{s:s, s:s, s:s, s:s}", "phone_number_id", PHONE_ID, "verify_token",
                                  "verify-me", "app_secret", SECRET, "access_token", "EAAtoken");
    return (pl_channel_config){"barista", "whatsapp", settings_json};
}

/* --- requests ------------------------------------------------------------------ */


static char *long_payload(const void *ctx, const char *key) {
    (void)ctx;
    return strcmp(key, "~ABCDEFGHIJKL") == 0 ? pl_strdup("a payload far too long for a button id") : NULL;
}

static char *signature_of(const char *body) { return hub_signature(SECRET, body, 0); }

/* POSTs body with the given signature header value (NULL: none). */
static int post_signed(const pl_channel_config *cfg, const char *body, const char *signature,
                       pl_inbound *out, char **err) {
    header headers[] = {{"x-hub-signature-256", signature}, {NULL, NULL}};
    pl_webhook req = {.method = "POST", .url = "https://example.test/hook", .body = body,
                      .body_len = strlen(body), .header = find_header,
                      .header_ctx = signature ? headers : NULL, .now = 1749416383,
                      .long_payload = long_payload};
    return webhook_inbound(wa, cfg, &req, out, err);
}

/* POSTs body correctly signed; returns the events (borrowed from out). */
static const json_t *post(const char *body, pl_inbound *out) {
    pl_channel_config cfg = config();
    char *sig = signature_of(body);
    char *err = NULL;
    int rc = post_signed(&cfg, body, sig, out, &err);
    if (rc != PL_OK) printf("#   inbound: %s\n", err);
    free(err);
    free(sig);
    return out->events;
}

static int get(const char *query, pl_inbound *out, char **err) {
    pl_channel_config cfg = config();
    return webhook_get(wa, &cfg, "https://example.test/hook", query, out, err);
}

/* A webhook body with one change whose value holds contacts, messages and
 * statuses (JSON fragments, may be empty). */
static char *delivery(const char *phone_id, const char *contacts, const char *messages,
                      const char *statuses) {
    return pl_strdupf(
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\",\"changes\":[{"
        "\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":"
        "\"15550783881\",\"phone_number_id\":\"%s\"},\"contacts\":[%s],\"messages\":[%s],"
        "\"statuses\":[%s]},\"field\":\"messages\"}]}]}",
        phone_id, contacts, messages, statuses);
}

#define SHEENA "{\"profile\":{\"name\":\"Sheena Nelson\"},\"wa_id\":\"16505551234\"}"

static const char *event_str(const json_t *events, size_t i, const char *key) {
    return json_string_value(json_object_get(json_array_get(events, i), key));
}

static const char *info_str(const json_t *events, size_t i, const char *key) {
    return json_string_value(json_object_get(json_object_get(json_array_get(events, i), "info"), key));
}

/* --- the documented shape of a call ---------------------------------------------- */

static size_t units(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xC0) != 0x80) n++;
        if (*p >= 0xF0) n++; /* outside the BMP: a surrogate pair */
    }
    return n;
}

static int within(const json_t *obj, const char *key, size_t max, int required) {
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s) return !required;
    return *s && units(s) <= max;
}

static int valid_buttons(const json_t *action) {
    const json_t *buttons = json_object_get(action, "buttons");
    size_t n = json_array_size(buttons);
    if (n < 1 || n > 3) return 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *b = json_array_get(buttons, i);
        const json_t *reply = json_object_get(b, "reply");
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!type || strcmp(type, "reply") != 0 || !within(reply, "id", 256, 1) ||
            !within(reply, "title", 20, 1))
            return 0;
        for (size_t k = 0; k < i; k++) {
            const json_t *other = json_object_get(json_array_get(buttons, k), "reply");
            if (json_equal(json_object_get(other, "id"), json_object_get(reply, "id")) ||
                json_equal(json_object_get(other, "title"), json_object_get(reply, "title")))
                return 0;
        }
    }
    return 1;
}

static int valid_list(const json_t *action) {
    if (!within(action, "button", 20, 1)) return 0;
    size_t rows = 0, i, j;
    const json_t *section, *row;
    json_array_foreach(json_object_get(action, "sections"), i, section) {
        if (!within(section, "title", 24, 1)) return 0;
        json_array_foreach(json_object_get(section, "rows"), j, row) {
            rows++;
            if (!within(row, "id", 200, 1) || !within(row, "title", 24, 1) ||
                !within(row, "description", 72, 0))
                return 0;
        }
    }
    return rows >= 1 && rows <= 10;
}

/* A call-to-action URL button: action.name "cta_url", display_text of 1 to
 * 20 characters (valid UTF-8: a title cut on a character boundary) and an
 * http(s) url. */
static int valid_cta(const json_t *action) {
    const json_t *params = json_object_get(action, "parameters");
    const char *name = json_string_value(json_object_get(action, "name"));
    const char *label = json_string_value(json_object_get(params, "display_text"));
    const char *url = json_string_value(json_object_get(params, "url"));
    return name && strcmp(name, "cta_url") == 0 && within(params, "display_text", 20, 1) &&
           pl_text_is_utf8(label, strlen(label)) && url &&
           (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0);
}

static int valid_message(const json_t *m) {
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *product = json_string_value(json_object_get(m, "messaging_product"));
    if (!type || !product || strcmp(product, "whatsapp") != 0) return 0;
    if (!within(m, "to", 64, 1)) return 0;
    const json_t *content = json_object_get(m, type);
    if (strcmp(type, "text") == 0) return within(content, "body", 4096, 1);
    if (strcmp(type, "image") == 0)
        return within(content, "link", 2048, 1) && within(content, "caption", 1024, 0);
    if (strcmp(type, "interactive") != 0) return 0;
    const char *kind = json_string_value(json_object_get(content, "type"));
    if (!kind || !within(json_object_get(content, "body"), "text", 1024, 1)) return 0;
    if (strcmp(kind, "button") == 0) return valid_buttons(json_object_get(content, "action"));
    if (strcmp(kind, "list") == 0) return valid_list(json_object_get(content, "action"));
    if (strcmp(kind, "cta_url") == 0) return valid_cta(json_object_get(content, "action"));
    return 0;
}

/* The message of call i (new), after checking the call is a documented
 * POST /{phone-number-id}/messages with a JSON body. */
static json_t *message_at(const json_t *calls, size_t i) {
    const json_t *call = json_array_get(calls, i);
    const char *method = json_string_value(json_object_get(call, "method"));
    const char *path = json_string_value(json_object_get(call, "path"));
    const char *type = json_string_value(json_object_get(call, "content_type"));
    const char *body = json_string_value(json_object_get(call, "body"));
    if (!method || strcmp(method, "POST") != 0 || !path || strcmp(path, "/" PHONE_ID "/messages") != 0 ||
        !type || strcmp(type, "application/json") != 0 || !body) {
        printf("#   call %zu is not a POST /" PHONE_ID "/messages with JSON\n", i);
        return NULL;
    }
    json_t *m = json_loads(body, 0, NULL);
    if (!valid_message(m)) printf("#   call %zu breaks a documented limit: %s\n", i, body);
    return m;
}

static int all_valid(const json_t *calls) {
    int ok = 1;
    for (size_t i = 0; i < json_array_size(calls); i++) {
        json_t *m = message_at(calls, i);
        ok = ok && m && valid_message(m);
        json_decref(m);
    }
    return ok;
}

/* --- rendering ----------------------------------------------------------------- */

static int short_keys_made;

static char *short_payload(void *ctx, const char *payload) {
    (void)ctx;
    short_keys_made++;
    return pl_channel_payload_key(payload);
}

/* Renders replies (JSON text) for user 31612345678; returns the calls (new). */
static json_t *render_for(const char *replies_json, const char *locale, int with_short_keys) {
    pl_channel_config cfg = config();
    pl_outbound to = {.user = "31612345678", .locale = locale,
                      .short_payload = with_short_keys ? short_payload : NULL};
    json_t *replies = json_loads(replies_json, 0, NULL);
    if (!replies) printf("#   bad test JSON: %s\n", replies_json);
    json_t *calls = NULL;
    char *err = NULL;
    if (wa->render(&cfg, &to, replies, &calls, &err) != PL_OK) printf("#   render: %s\n", err);
    free(err);
    json_decref(replies);
    return calls;
}

static json_t *render(const char *replies_json) { return render_for(replies_json, "en", 1); }

static const char *type_of(const json_t *m) { return json_string_value(json_object_get(m, "type")); }

static const char *text_of(const json_t *m) {
    return json_string_value(json_object_get(json_object_get(m, "text"), "body"));
}

static const json_t *interactive_of(const json_t *m) { return json_object_get(m, "interactive"); }

static const char *interactive_body(const json_t *m) {
    return json_string_value(json_object_get(json_object_get(interactive_of(m), "body"), "text"));
}

static const json_t *list_rows(const json_t *m) {
    const json_t *sections = json_object_get(json_object_get(interactive_of(m), "action"), "sections");
    return json_object_get(json_array_get(sections, 0), "rows");
}

static const json_t *buttons_of(const json_t *m) {
    return json_object_get(json_object_get(interactive_of(m), "action"), "buttons");
}

static const char *interactive_kind(const json_t *m) {
    return json_string_value(json_object_get(interactive_of(m), "type"));
}

static const char *cta_field(const json_t *m, const char *key) {
    const json_t *params = json_object_get(json_object_get(interactive_of(m), "action"), "parameters");
    return json_string_value(json_object_get(params, key));
}

static const char *button_field(const json_t *m, size_t i, const char *key) {
    return json_string_value(json_object_get(json_object_get(json_array_get(buttons_of(m), i), "reply"), key));
}

/* "[{"title":"T1","payload":"p1"}, ...]" for n choices */
static char *choices_json(int n, const char *title_fmt) {
    char *out = pl_strdup("[");
    for (int i = 1; i <= n; i++) {
        char *title = pl_strdupf(title_fmt, i);
        char *next = pl_strdupf("%s%s{\"title\":\"%s\",\"payload\":\"p%d\"}", out, i > 1 ? "," : "", title, i);
        free(title);
        free(out);
        out = next;
    }
    char *done = pl_strdupf("%s]", out);
    free(out);
    return done;
}

/* === handshake =================================================================== */

TEST(handshake_answers_the_challenge) {
    pl_inbound in;
    char *err = NULL;
    CHECK(get("hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444", &in, &err) == PL_OK);
    CHECK(in.status == 200);
    CHECK_STR(in.answer, "1158201444");
    CHECK(in.answer_type && strncmp(in.answer_type, "text/plain", 10) == 0);
    CHECK(json_array_size(in.events) == 0);
    pl_inbound_clear(&in);
    free(err);
}

TEST(handshake_refuses_a_wrong_token_or_mode) {
    const char *queries[] = {
        "hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1",
        "hub.mode=subscribe&hub.verify_token=verify-m&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1",
        "hub.verify_token=verify-me&hub.challenge=1",
        "hub.mode=subscribe&hub.challenge=1",
        NULL,
    };
    for (size_t i = 0; i < sizeof queries / sizeof *queries; i++) {
        pl_inbound in;
        char *err = NULL;
        CHECK(get(queries[i], &in, &err) == PL_ERR);
        CHECK(in.status == 403);
        CHECK(err != NULL);
        CHECK(in.answer == NULL);
        pl_inbound_clear(&in);
        free(err);
    }
}

TEST(handshake_without_a_challenge_is_a_bad_request) {
    pl_inbound in;
    char *err = NULL;
    CHECK(get("hub.mode=subscribe&hub.verify_token=verify-me", &in, &err) == PL_ERR);
    CHECK(in.status == 400);
    pl_inbound_clear(&in);
    free(err);
}

TEST(handshake_without_a_configured_token_is_503) {
    json_t *s = json_pack("{s:s}", "verify_token_env", "BARISTA_TEST_WA_UNSET_TOKEN");
    unsetenv("BARISTA_TEST_WA_UNSET_TOKEN");
    pl_channel_config cfg = {"barista", "whatsapp", s};
    pl_webhook req = {.method = "GET", .query = "hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
                      .body = "", .header = find_header};
    pl_inbound in = {.status = 200};
    char *err = NULL;
    CHECK(wa->inbound(&cfg, &req, &in, &err) == PL_ERR);
    CHECK(in.status == 503);
    CHECK(err && strstr(err, "BARISTA_TEST_WA_UNSET_TOKEN"));
    pl_inbound_clear(&in);
    free(err);
    json_decref(s);
}

/* === signature =================================================================== */

#define TEXT_MESSAGE                                                                               \
    "{\"from\":\"16505551234\",\"id\":\"wamid.TEXT1\",\"timestamp\":\"1749416383\",\"type\":\"text\"," \
    "\"text\":{\"body\":\"Does it come in another color?\"}}"

TEST(signature_good_is_accepted) {
    char *body = delivery(PHONE_ID, SHEENA, TEXT_MESSAGE, "");
    pl_inbound in;
    const json_t *events = post(body, &in);
    CHECK(in.status == 200);
    CHECK(json_array_size(events) == 1);
    pl_inbound_clear(&in);
    free(body);
}

TEST(signature_in_upper_case_hex_is_accepted) {
    char *body = delivery(PHONE_ID, SHEENA, TEXT_MESSAGE, "");
    char *sig = signature_of(body);
    for (char *p = sig + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    pl_channel_config cfg = config();
    pl_inbound in;
    char *err = NULL;
    CHECK(post_signed(&cfg, body, sig, &in, &err) == PL_OK);
    pl_inbound_clear(&in);
    free(err);
    free(sig);
    free(body);
}

TEST(signature_bad_or_missing_is_refused) {
    char *body = delivery(PHONE_ID, SHEENA, TEXT_MESSAGE, "");
    char *good = signature_of(body);
    char *flipped = pl_strdup(good);
    flipped[strlen(flipped) - 1] = flipped[strlen(flipped) - 1] == '0' ? '1' : '0';
    char *other_body = pl_strdupf("%s ", body);
    char *of_other = signature_of(other_body);
    struct {
        const char *sig;
        int status;
    } cases[] = {
        {NULL, 401},          {"", 401},
        {flipped, 403},       {good + 7, 403}, /* no "sha256=" */
        {"sha256=", 403},     {"sha1=abc", 403},
        {of_other, 403},      {"sha256=00", 403},
    };
    pl_channel_config cfg = config();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pl_inbound in;
        char *err = NULL;
        CHECK(post_signed(&cfg, body, cases[i].sig, &in, &err) == PL_ERR);
        if (in.status != cases[i].status) printf("#   case %zu: status %d\n", i, in.status);
        CHECK(in.status == cases[i].status);
        CHECK(in.events == NULL || json_array_size(in.events) == 0);
        CHECK(err != NULL);
        pl_inbound_clear(&in);
        free(err);
    }
    free(of_other);
    free(other_body);
    free(flipped);
    free(good);
    free(body);
}

TEST(signature_without_an_app_secret_is_503) {
    json_t *s = json_pack("{s:s, s:s}", "phone_number_id", PHONE_ID, "app_secret_env",
                          "BARISTA_TEST_WA_UNSET_SECRET");
    unsetenv("BARISTA_TEST_WA_UNSET_SECRET");
    pl_channel_config cfg = {"barista", "whatsapp", s};
    char *body = delivery(PHONE_ID, SHEENA, TEXT_MESSAGE, "");
    char *sig = signature_of(body);
    pl_inbound in;
    char *err = NULL;
    CHECK(post_signed(&cfg, body, sig, &in, &err) == PL_ERR);
    CHECK(in.status == 503);
    CHECK(err && strstr(err, "BARISTA_TEST_WA_UNSET_SECRET"));
    pl_inbound_clear(&in);
    free(err);
    free(sig);
    free(body);
    json_decref(s);
}

TEST(settings_come_from_the_environment) {
    json_t *s = json_pack("{s:s, s:s}", "app_secret_env", "BARISTA_TEST_WA_SECRET", "access_token_env",
                          "BARISTA_TEST_WA_TOKEN");
    setenv("BARISTA_TEST_WA_SECRET", SECRET, 1);
    setenv("BARISTA_TEST_WA_TOKEN", "from-env", 1);
    pl_channel_config cfg = {"barista", "whatsapp", s};
    char *body = delivery(PHONE_ID, SHEENA, TEXT_MESSAGE, "");
    char *sig = signature_of(body);
    pl_inbound in;
    char *err = NULL;
    CHECK(post_signed(&cfg, body, sig, &in, &err) == PL_OK);
    CHECK(json_array_size(in.events) == 1);
    json_t *headers = json_object();
    char *url = NULL, *user_pwd = NULL;
    CHECK(wa->authorize(&cfg, headers, &url, &user_pwd, &err) == PL_OK);
    CHECK_STR(json_string_value(json_object_get(headers, "Authorization")), "Bearer from-env");
    json_decref(headers);
    unsetenv("BARISTA_TEST_WA_SECRET");
    unsetenv("BARISTA_TEST_WA_TOKEN");
    pl_inbound_clear(&in);
    free(err);
    free(sig);
    free(body);
    json_decref(s);
}

TEST(a_body_that_is_not_json_is_400) {
    pl_inbound in;
    pl_channel_config cfg = config();
    const char *bodies[] = {"", "not json", "[1,2]", "{\"object\":"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        char *sig = signature_of(bodies[i]);
        char *err = NULL;
        CHECK(post_signed(&cfg, bodies[i], sig, &in, &err) == PL_ERR);
        CHECK(in.status == 400);
        pl_inbound_clear(&in);
        free(err);
        free(sig);
    }
}

/* A signed body of the wrong shape: 400 naming the place, no events. */
static void check_refused_shape(const char *body, const char *place) {
    pl_inbound in;
    pl_channel_config cfg = config();
    char *sig = signature_of(body);
    char *err = NULL;
    CHECK(post_signed(&cfg, body, sig, &in, &err) == PL_ERR);
    CHECK(in.status == 400 && in.events == NULL);
    if (!err || !strstr(err, place)) printf("#   %s -> %s (expected %s)\n", body, err ? err : "(accepted)", place);
    CHECK(err && strstr(err, place));
    pl_inbound_clear(&in);
    free(err);
    free(sig);
}

#define WABA "{\"object\":\"whatsapp_business_account\","
#define CHANGE(value) WABA "\"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":\"messages\",\"value\":" value "}]}]}"

TEST(bodies_of_the_wrong_shape_are_400) {
    check_refused_shape("{\"object\":7,\"entry\":[]}", "object must be a string");
    check_refused_shape(WABA "\"entry\":{\"id\":\"1\"}}", "entry must be an array");
    check_refused_shape(WABA "\"entry\":null}", "entry must be an array");
    check_refused_shape(WABA "\"id\":\"1\"}", "entry is missing");
    check_refused_shape(WABA "\"entry\":[{\"changes\":[]}, \"x\"]}", "entry[1] must be an object");
    check_refused_shape(WABA "\"entry\":[{\"changes\":{}}]}", "entry[0].changes must be an array");
    check_refused_shape(WABA "\"entry\":[{\"changes\":[1]}]}", "entry[0].changes[0] must be an object");
    check_refused_shape(WABA "\"entry\":[{\"changes\":[{\"field\":[\"messages\"]}]}]}",
                        "entry[0].changes[0].field must be a string");
    check_refused_shape(WABA "\"entry\":[{\"changes\":[{\"field\":\"messages\"}]}]}",
                        "entry[0].changes[0].value is missing");
    check_refused_shape(CHANGE("[]"), "entry[0].changes[0].value must be an object");
    check_refused_shape(CHANGE("{\"metadata\":\"106540352242922\"}"), "value.metadata must be an object");
    check_refused_shape(CHANGE("{\"metadata\":{\"phone_number_id\":106540352242922}}"),
                        "value.metadata.phone_number_id must be a string");
    check_refused_shape(CHANGE("{\"contacts\":" SHEENA "}"), "value.contacts must be an array");
    check_refused_shape(CHANGE("{\"contacts\":[{\"profile\":\"Sheena\"}]}"), "value.contacts[0].profile must be");
    check_refused_shape(CHANGE("{\"messages\":" TEXT_MESSAGE "}"), "value.messages must be an array");
    check_refused_shape(CHANGE("{\"messages\":[" TEXT_MESSAGE ",\"hi\"]}"), "value.messages[1] must be an object");
    check_refused_shape(CHANGE("{\"messages\":[{\"from\":16505551234,\"id\":\"w\",\"type\":\"text\"}]}"),
                        "value.messages[0].from must be a non-empty string");
    check_refused_shape(CHANGE("{\"messages\":[{\"from\":\"1\",\"id\":\"w\",\"type\":\"text\",\"text\":\"hi\"}]}"),
                        "value.messages[0].text must be an object");
    check_refused_shape(CHANGE("{\"messages\":[{\"from\":\"1\",\"id\":\"w\",\"type\":\"interactive\","
                               "\"interactive\":{\"type\":\"button_reply\",\"button_reply\":[\"yes\"]}}]}"),
                        "value.messages[0].interactive.button_reply must be an object");
    check_refused_shape(CHANGE("{\"messages\":[{\"from\":\"\",\"id\":\"w\",\"type\":\"text\"}]}"),
                        "value.messages[0].from must be a non-empty string");
    check_refused_shape(CHANGE("{\"messages\":[{\"from\":\"1\",\"id\":\"\",\"type\":\"text\"}]}"),
                        "value.messages[0].id must be a non-empty string");
    check_refused_shape(CHANGE("{\"statuses\":[{\"id\":\"w\",\"status\":\"read\",\"recipient_id\":\"\"}]}"),
                        "value.statuses[0].recipient_id must be a non-empty string");
    check_refused_shape(CHANGE("{\"statuses\":{\"id\":\"w\"}}"), "value.statuses must be an array");
    check_refused_shape(CHANGE("{\"statuses\":[{\"id\":\"w\",\"status\":\"failed\",\"recipient_id\":\"1\","
                               "\"errors\":{\"code\":1}}]}"),
                        "value.statuses[0].errors must be an array");
}

TEST(unknown_fields_and_kinds_of_the_right_shape_are_accepted) {
    /* platforms add fields and kinds: those are not looked at */
    const char *bodies[] = {
        CHANGE("{\"messaging_product\":\"whatsapp\",\"new_thing\":[1,{\"x\":null}],\"messages\":[{\"from\":\"1\","
               "\"id\":\"w\",\"type\":\"reaction\",\"reaction\":{\"emoji\":\"x\"},\"context\":7}]}"),
        WABA "\"entry\":[{\"changes\":[{\"field\":\"history\",\"value\":{\"messages\":\"not read\"}}]}]}",
        "{\"object\":\"page\",\"entry\":\"not read\"}",
        "{\"entry\":[]}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        pl_inbound in;
        const json_t *events = post(bodies[i], &in);
        CHECK(in.status == 200 && events);
        CHECK(json_array_size(events) == (i == 0 ? 1u : 0u));
        pl_inbound_clear(&in);
    }
}

/* === inbound messages ============================================================= */

TEST(text_message_with_contact_name) {
    char *body = delivery(PHONE_ID, SHEENA, TEXT_MESSAGE, "");
    pl_inbound in;
    const json_t *ev = post(body, &in);
    CHECK(json_array_size(ev) == 1);
    CHECK_STR(event_str(ev, 0, "kind"), "message");
    CHECK_STR(event_str(ev, 0, "id"), "wamid.TEXT1");
    CHECK_STR(event_str(ev, 0, "user"), "16505551234");
    CHECK_STR(event_str(ev, 0, "text"), "Does it come in another color?");
    CHECK(event_str(ev, 0, "payload") == NULL);
    CHECK_STR(info_str(ev, 0, "platform"), "whatsapp");
    CHECK_STR(info_str(ev, 0, "display_name"), "Sheena Nelson");
    CHECK_STR(info_str(ev, 0, "phone"), "16505551234");
    CHECK(info_str(ev, 0, "type") == NULL);
    pl_inbound_clear(&in);
    free(body);
}

TEST(button_reply_arrives_as_its_payload) {
    const char *msg =
        "{\"from\":\"16505551234\",\"id\":\"wamid.BTN\",\"timestamp\":\"1749416383\",\"type\":\"interactive\","
        "\"context\":{\"from\":\"15550783881\",\"id\":\"wamid.OUT\"},"
        "\"interactive\":{\"type\":\"button_reply\",\"button_reply\":{\"id\":\"large\",\"title\":\"Large +€0.90\"}}}";
    char *body = delivery(PHONE_ID, SHEENA, msg, "");
    pl_inbound in;
    const json_t *ev = post(body, &in);
    CHECK(json_array_size(ev) == 1);
    CHECK_STR(event_str(ev, 0, "payload"), "large");
    CHECK_STR(event_str(ev, 0, "text"), "Large +€0.90");
    CHECK_STR(event_str(ev, 0, "id"), "wamid.BTN");
    pl_inbound_clear(&in);
    free(body);
}

TEST(list_reply_arrives_as_its_payload) {
    const char *msg =
        "{\"from\":\"16505551234\",\"id\":\"wamid.LIST\",\"timestamp\":\"1749416383\",\"type\":\"interactive\","
        "\"interactive\":{\"type\":\"list_reply\",\"list_reply\":{\"id\":\"flat_white\",\"title\":\"Flat White · €3.90\","
        "\"description\":\"x\"}}}";
    char *body = delivery(PHONE_ID, SHEENA, msg, "");
    pl_inbound in;
    const json_t *ev = post(body, &in);
    CHECK(json_array_size(ev) == 1);
    CHECK_STR(event_str(ev, 0, "payload"), "flat_white");
    CHECK_STR(event_str(ev, 0, "text"), "Flat White · €3.90");
    pl_inbound_clear(&in);
    free(body);
}

TEST(template_button_arrives_as_its_payload) {
    const char *msg = "{\"from\":\"16505551234\",\"id\":\"wamid.TPL\",\"timestamp\":\"1\",\"type\":\"button\","
                      "\"button\":{\"payload\":\"reorder\",\"text\":\"Order again\"}}";
    char *body = delivery(PHONE_ID, SHEENA, msg, "");
    pl_inbound in;
    const json_t *ev = post(body, &in);
    CHECK_STR(event_str(ev, 0, "payload"), "reorder");
    CHECK_STR(event_str(ev, 0, "text"), "Order again");
    pl_inbound_clear(&in);
    free(body);
}

TEST(a_short_key_comes_back_as_the_long_payload) {
    const char *msg =
        "{\"from\":\"16505551234\",\"id\":\"wamid.KEY\",\"timestamp\":\"1\",\"type\":\"interactive\","
        "\"interactive\":{\"type\":\"button_reply\",\"button_reply\":{\"id\":\"~ABCDEFGHIJKL\",\"title\":\"Go\"}}}";
    const char *unknown =
        "{\"from\":\"16505551234\",\"id\":\"wamid.KEY2\",\"timestamp\":\"1\",\"type\":\"interactive\","
        "\"interactive\":{\"type\":\"list_reply\",\"list_reply\":{\"id\":\"~ZZZZZZZZZZZZ\",\"title\":\"Go\"}}}";
    char *both = pl_strdupf("%s,%s", msg, unknown);
    char *body = delivery(PHONE_ID, SHEENA, both, "");
    pl_inbound in;
    const json_t *ev = post(body, &in);
    CHECK(json_array_size(ev) == 2);
    CHECK_STR(event_str(ev, 0, "payload"), "a payload far too long for a button id");
    CHECK_STR(event_str(ev, 1, "payload"), "~ZZZZZZZZZZZZ");
    pl_inbound_clear(&in);
    free(body);
    free(both);
}

TEST(several_messages_in_one_delivery) {
    const char *contacts = SHEENA ",{\"profile\":{\"name\":\"Kenji\"},\"wa_id\":\"819012345678\"}";
    const char *msgs =
        "{\"from\":\"819012345678\",\"id\":\"wamid.A\",\"timestamp\":\"1\",\"type\":\"text\",\"text\":{\"body\":\"こんにちは\"}},"
        "{\"from\":\"16505551234\",\"id\":\"wamid.B\",\"timestamp\":\"2\",\"type\":\"text\",\"text\":{\"body\":\"hi\"}},"
        "{\"from\":\"819012345678\",\"id\":\"wamid.C\",\"timestamp\":\"3\",\"type\":\"text\",\"text\":{\"body\":\"ラテ\"}}";
    char *body = delivery(PHONE_ID, contacts, msgs, "");
    pl_inbound in;
    const json_t *ev = post(body, &in);
    CHECK(json_array_size(ev) == 3);
    CHECK_STR(event_str(ev, 0, "id"), "wamid.A");
    CHECK_STR(info_str(ev, 0, "display_name"), "Kenji");
    CHECK_STR(event_str(ev, 1, "user"), "16505551234");
    CHECK_STR(info_str(ev, 1, "display_name"), "Sheena Nelson");
    CHECK_STR(event_str(ev, 2, "text"), "ラテ");
    CHECK_STR(info_str(ev, 2, "phone"), "819012345678");
    pl_inbound_clear(&in);
    free(body);
}

TEST(several_entries_and_changes) {
    const char *first_change =
        "{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"phone_number_id\":\"" PHONE_ID "\"},"
        "\"contacts\":[" SHEENA "],\"messages\":[" TEXT_MESSAGE "]},\"field\":\"messages\"}";
    const char *second_change =
        "{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"phone_number_id\":\"" PHONE_ID "\"},"
        "\"messages\":[{\"from\":\"447700900123\",\"id\":\"wamid.X\",\"timestamp\":\"1\",\"type\":\"text\","
        "\"text\":{\"body\":\"second\"}}]},\"field\":\"messages\"}";
    char *body = pl_strdupf("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[%s,%s]},"
                            "{\"id\":\"2\",\"changes\":[%s]}]}",
                            first_change, second_change, second_change);
    pl_inbound in;
    const json_t *ev = post(body, &in);
    CHECK(json_array_size(ev) == 3);
    CHECK_STR(event_str(ev, 0, "id"), "wamid.TEXT1");
    CHECK_STR(event_str(ev, 1, "text"), "second");
    CHECK_STR(info_str(ev, 1, "phone"), "447700900123");
    CHECK(info_str(ev, 1, "display_name") == NULL);
    CHECK_STR(event_str(ev, 2, "id"), "wamid.X"); /* the same id twice: the inbox drops the second */
    pl_inbound_clear(&in);
    free(body);
}

TEST(unsupported_kinds_arrive_without_text_and_with_their_type) {
    const char *msgs =
        "{\"from\":\"16505551234\",\"id\":\"wamid.IMG\",\"timestamp\":\"1\",\"type\":\"image\","
        "\"image\":{\"caption\":\"look\",\"mime_type\":\"image/jpeg\",\"sha256\":\"x\",\"id\":\"123\"}},"
        "{\"from\":\"16505551234\",\"id\":\"wamid.LOC\",\"timestamp\":\"1\",\"type\":\"location\","
        "\"location\":{\"latitude\":1.5,\"longitude\":2.5}},"
        "{\"from\":\"16505551234\",\"id\":\"wamid.UNS\",\"timestamp\":\"1\",\"type\":\"unsupported\","
        "\"errors\":[{\"code\":131051,\"title\":\"Message type unknown\"}]},"
        "{\"from\":\"16505551234\",\"id\":\"wamid.NFM\",\"timestamp\":\"1\",\"type\":\"interactive\","
        "\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{\"response_json\":\"{}\"}}}";
    char *body = delivery(PHONE_ID, SHEENA, msgs, "");
    pl_inbound in;
    const json_t *ev = post(body, &in);
    CHECK(json_array_size(ev) == 4);
    const char *types[] = {"image", "location", "unsupported", "nfm_reply"};
    for (size_t i = 0; i < 4; i++) {
        CHECK_STR(event_str(ev, i, "kind"), "message");
        CHECK(event_str(ev, i, "text") == NULL);
        CHECK(event_str(ev, i, "payload") == NULL);
        CHECK_STR(info_str(ev, i, "type"), types[i]);
        CHECK_STR(info_str(ev, i, "display_name"), "Sheena Nelson");
    }
    pl_inbound_clear(&in);
    free(body);
}

TEST(statuses_become_status_events) {
    const char *statuses =
        "{\"id\":\"wamid.OUT1\",\"status\":\"sent\",\"timestamp\":\"1\",\"recipient_id\":\"16505551234\","
        "\"conversation\":{\"id\":\"c1\",\"origin\":{\"type\":\"service\"}},\"pricing\":{\"billable\":false}},"
        "{\"id\":\"wamid.OUT1\",\"status\":\"delivered\",\"timestamp\":\"2\",\"recipient_id\":\"16505551234\"},"
        "{\"id\":\"wamid.OUT1\",\"status\":\"read\",\"timestamp\":\"3\",\"recipient_id\":\"16505551234\"},"
        "{\"id\":\"wamid.OUT2\",\"status\":\"failed\",\"timestamp\":\"4\",\"recipient_id\":\"16505551234\","
        "\"errors\":[{\"code\":131047,\"title\":\"Re-engagement message\"}]},"
        "{\"id\":\"wamid.OUT3\",\"status\":\"warning\",\"timestamp\":\"5\",\"recipient_id\":\"16505551234\"},"
        "{\"status\":\"read\",\"timestamp\":\"6\",\"recipient_id\":\"16505551234\"}";
    char *body = delivery(PHONE_ID, "", "", statuses);
    pl_inbound in;
    const json_t *ev = post(body, &in);
    CHECK(json_array_size(ev) == 4);
    const char *expected[] = {"sent", "delivered", "read", "failed"};
    for (size_t i = 0; i < 4 && i < json_array_size(ev); i++) {
        CHECK_STR(event_str(ev, i, "kind"), "status");
        CHECK_STR(event_str(ev, i, "status"), expected[i]);
        CHECK_STR(event_str(ev, i, "user"), "16505551234");
    }
    CHECK_STR(event_str(ev, 0, "id"), "wamid.OUT1");
    const json_t *detail = json_object_get(json_array_get(ev, 3), "detail");
    CHECK(json_integer_value(json_object_get(detail, "code")) == 131047);
    pl_inbound_clear(&in);
    free(body);
}

TEST(other_numbers_objects_and_fields_are_acknowledged_and_ignored) {
    char *other = delivery("999999999", SHEENA, TEXT_MESSAGE, "");
    pl_inbound in;
    CHECK(json_array_size(post(other, &in)) == 0);
    CHECK(in.status == 200);
    pl_inbound_clear(&in);
    const char *page = "{\"object\":\"page\",\"entry\":[]}";
    CHECK(json_array_size(post(page, &in)) == 0);
    CHECK(in.status == 200);
    pl_inbound_clear(&in);
    const char *template_update =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":"
        "\"message_template_status_update\",\"value\":{\"event\":\"APPROVED\"}}]}]}";
    CHECK(json_array_size(post(template_update, &in)) == 0);
    pl_inbound_clear(&in);
    const char *incomplete = "{\"id\":\"wamid.NOFROM\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}";
    char *no_sender = delivery(PHONE_ID, "", incomplete, "");
    CHECK(json_array_size(post(no_sender, &in)) == 0);
    pl_inbound_clear(&in);
    free(no_sender);
    free(other);
}

/* === rendering =================================================================== */

TEST(text_reply_is_a_text_message) {
    json_t *calls = render("[{\"text\":\"Hi! I'm Bea.\"},{\"text\":\"Pay here: https://pay.example/x\"}]");
    CHECK(json_array_size(calls) == 2);
    CHECK(all_valid(calls));
    json_t *m = message_at(calls, 0);
    CHECK_STR(type_of(m), "text");
    CHECK_STR(text_of(m), "Hi! I'm Bea.");
    CHECK_STR(json_string_value(json_object_get(m, "to")), "31612345678");
    CHECK_STR(json_string_value(json_object_get(m, "recipient_type")), "individual");
    CHECK(json_object_get(json_object_get(m, "text"), "preview_url") == NULL);
    json_decref(m);
    m = message_at(calls, 1);
    CHECK(json_is_true(json_object_get(json_object_get(m, "text"), "preview_url")));
    json_decref(m);
    json_decref(calls);
}

TEST(text_longer_than_4096_is_split) {
    /* 5000 characters in lines of 50 (49 + '\n') */
    char *text = malloc(5001);
    for (int i = 0; i < 5000; i++) text[i] = (i % 50 == 49) ? '\n' : (char)('a' + i % 26);
    text[5000] = '\0';
    json_t *replies = json_pack("[{s:s}]", "text", text);
    char *replies_text = json_dumps(replies, 0);
    json_t *calls = render(replies_text);
    CHECK(json_array_size(calls) == 2);
    CHECK(all_valid(calls));
    json_t *a = message_at(calls, 0), *b = message_at(calls, 1);
    size_t la = strlen(text_of(a)), lb = strlen(text_of(b));
    CHECK(la <= 4096 && la > 2048);
    CHECK(la + lb + 1 == 5000); /* nothing lost but the line break at the cut */
    CHECK(strncmp(text, text_of(a), la) == 0);
    json_decref(a);
    json_decref(b);
    json_decref(calls);
    free(replies_text);
    json_decref(replies);
    free(text);
}

TEST(text_of_wide_characters_is_split_by_utf16_units) {
    /* 3000 emoji (2 units each, 4 bytes each), no line breaks */
    char *text = malloc(3000 * 4 + 1);
    for (int i = 0; i < 3000; i++) memcpy(text + 4 * i, "\xF0\x9F\x98\x80", 4);
    text[3000 * 4] = '\0';
    json_t *replies = json_pack("[{s:s}]", "text", text);
    char *replies_text = json_dumps(replies, 0);
    json_t *calls = render(replies_text);
    CHECK(json_array_size(calls) == 2);
    CHECK(all_valid(calls));
    json_t *a = message_at(calls, 0);
    CHECK(strlen(text_of(a)) == 2048 * 4);
    json_decref(a);
    json_decref(calls);
    free(replies_text);
    json_decref(replies);
    free(text);
}

TEST(three_short_choices_are_reply_buttons) {
    json_t *calls = render("[{\"text\":\"What size for your Latte?\",\"choices\":["
                           "{\"title\":\"Small\",\"payload\":\"small\"},"
                           "{\"title\":\"Medium +€0.50\",\"payload\":\"medium\"},"
                           "{\"title\":\"Large +€0.90\",\"payload\":\"large\"}]}]");
    CHECK(json_array_size(calls) == 1);
    CHECK(all_valid(calls));
    json_t *m = message_at(calls, 0);
    CHECK_STR(type_of(m), "interactive");
    CHECK_STR(json_string_value(json_object_get(interactive_of(m), "type")), "button");
    CHECK_STR(interactive_body(m), "What size for your Latte?");
    CHECK(json_array_size(buttons_of(m)) == 3);
    CHECK_STR(button_field(m, 1, "id"), "medium");
    CHECK_STR(button_field(m, 1, "title"), "Medium +€0.50");
    json_decref(m);
    json_decref(calls);
}

TEST(four_to_ten_choices_are_a_list) {
    for (int n = 4; n <= 10; n++) {
        char *choices = choices_json(n, "Drink %d · €3.80");
        char *replies = pl_strdupf("[{\"text\":\"Which drink?\",\"choices\":%s}]", choices);
        json_t *calls = render(replies);
        CHECK(json_array_size(calls) == 1);
        CHECK(all_valid(calls));
        json_t *m = message_at(calls, 0);
        CHECK_STR(json_string_value(json_object_get(interactive_of(m), "type")), "list");
        CHECK_STR(interactive_body(m), "Which drink?");
        CHECK((int)json_array_size(list_rows(m)) == n);
        const json_t *row = json_array_get(list_rows(m), n - 1);
        char *want = pl_strdupf("p%d", n);
        CHECK_STR(json_string_value(json_object_get(row, "id")), want);
        CHECK(json_object_get(row, "description") == NULL);
        free(want);
        CHECK_STR(json_string_value(json_object_get(json_object_get(interactive_of(m), "action"), "button")),
                  "Choose");
        json_decref(m);
        json_decref(calls);
        free(replies);
        free(choices);
    }
}

TEST(titles_too_long_for_buttons_make_a_list) {
    json_t *calls = render("[{\"text\":\"Add a pastry?\",\"choices\":["
                           "{\"title\":\"Add White Chocolate Matcha Cookie\",\"payload\":\"matcha_cookie\"},"
                           "{\"title\":\"No thanks\",\"payload\":\"no\"}]}]");
    CHECK(json_array_size(calls) == 1);
    CHECK(all_valid(calls));
    json_t *m = message_at(calls, 0);
    CHECK_STR(json_string_value(json_object_get(interactive_of(m), "type")), "list");
    const json_t *row = json_array_get(list_rows(m), 0);
    const char *title = json_string_value(json_object_get(row, "title"));
    CHECK(title && units(title) == 24 && strstr(title, "…"));
    CHECK_STR(json_string_value(json_object_get(row, "description")), "Add White Chocolate Matcha Cookie");
    CHECK_STR(json_string_value(json_object_get(row, "id")), "matcha_cookie");
    json_decref(m);
    json_decref(calls);
}

TEST(button_titles_count_utf16_units_and_must_differ) {
    /* 19 letters and an emoji are 21 units: too long for a button */
    json_t *calls = render("[{\"text\":\"?\",\"choices\":[{\"title\":\"abcdefghijklmnopqrs\xF0\x9F\x98\x80\",\"payload\":\"a\"}]}]");
    json_t *m = message_at(calls, 0);
    CHECK_STR(json_string_value(json_object_get(interactive_of(m), "type")), "list");
    json_decref(m);
    json_decref(calls);
    /* 20 Japanese characters fit a button */
    calls = render("[{\"text\":\"?\",\"choices\":[{\"title\":\"抹茶ホワイトチョコクッキーを追加します。\",\"payload\":\"a\"}]}]");
    m = message_at(calls, 0);
    CHECK_STR(json_string_value(json_object_get(interactive_of(m), "type")), "button");
    CHECK(all_valid(calls));
    json_decref(m);
    json_decref(calls);
    /* two buttons may not share a title */
    calls = render("[{\"text\":\"?\",\"choices\":[{\"title\":\"Same\",\"payload\":\"a\"},{\"title\":\"Same\",\"payload\":\"b\"}]}]");
    m = message_at(calls, 0);
    CHECK_STR(json_string_value(json_object_get(interactive_of(m), "type")), "list");
    CHECK(all_valid(calls));
    json_decref(m);
    json_decref(calls);
}

TEST(more_than_ten_choices_are_numbered_text) {
    char *choices = choices_json(11, "Option %d");
    char *replies = pl_strdupf("[{\"text\":\"Pick one:\",\"choices\":%s}]", choices);
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 1);
    CHECK(all_valid(calls));
    json_t *m = message_at(calls, 0);
    CHECK_STR(type_of(m), "text");
    const char *text = text_of(m);
    CHECK(text && strncmp(text, "Pick one:\n1) Option 1\n2) Option 2", 32) == 0);
    CHECK(text && strstr(text, "\n11) Option 11"));
    json_decref(m);
    json_decref(calls);
    free(replies);
    free(choices);
}

TEST(numbers_count_across_the_replies_of_a_turn) {
    char *many = choices_json(12, "Item %d");
    char *replies = pl_strdupf("[{\"text\":\"Size?\",\"choices\":[{\"title\":\"S\",\"payload\":\"s\"},"
                               "{\"title\":\"L\",\"payload\":\"l\"}]},{\"text\":\"Or:\",\"choices\":%s}]",
                               many);
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 2);
    CHECK(all_valid(calls));
    json_t *m = message_at(calls, 1);
    CHECK(text_of(m) && strncmp(text_of(m), "Or:\n3) Item 1\n", 14) == 0);
    CHECK(text_of(m) && strstr(text_of(m), "\n14) Item 12"));
    json_decref(m);
    json_decref(calls);
    free(replies);
    free(many);
}

TEST(long_payloads_use_short_keys_or_degrade) {
    char long_payload_text[301];
    memset(long_payload_text, 'x', 300);
    long_payload_text[300] = '\0';
    char *replies = pl_strdupf("[{\"text\":\"Go?\",\"choices\":[{\"title\":\"Yes\",\"payload\":\"%s\"},"
                               "{\"title\":\"No\",\"payload\":\"no \"}]}]",
                               long_payload_text);
    short_keys_made = 0;
    json_t *calls = render(replies);
    CHECK(all_valid(calls));
    json_t *m = message_at(calls, 0);
    CHECK_STR(json_string_value(json_object_get(interactive_of(m), "type")), "button");
    char *key = pl_channel_payload_key(long_payload_text);
    CHECK_STR(button_field(m, 0, "id"), key);
    char *key2 = pl_channel_payload_key("no ");
    CHECK_STR(button_field(m, 1, "id"), key2); /* a trailing space is not allowed in an id */
    CHECK(short_keys_made == 2);
    free(key2);
    free(key);
    json_decref(m);
    json_decref(calls);
    /* outside a commit there is no short key: numbered text instead */
    calls = render_for(replies, "en", 0);
    CHECK(json_array_size(calls) == 1);
    m = message_at(calls, 0);
    CHECK_STR(type_of(m), "text");
    CHECK_STR(text_of(m), "Go?\n1) Yes\n2) No");
    json_decref(m);
    json_decref(calls);
    free(replies);
}

TEST(row_ids_longer_than_200_use_short_keys) {
    char payload[231];
    memset(payload, 'y', 230);
    payload[230] = '\0';
    char *choices = choices_json(4, "Row %d");
    /* replace the last payload with the long one */
    json_t *list = json_loads(choices, 0, NULL);
    json_object_set_new(json_array_get(list, 3), "payload", json_string(payload));
    json_t *replies = json_pack("[{s:s, s:o}]", "text", "Pick", "choices", list);
    char *text = json_dumps(replies, 0);
    json_t *calls = render(text);
    CHECK(all_valid(calls));
    json_t *m = message_at(calls, 0);
    char *key = pl_channel_payload_key(payload);
    CHECK_STR(json_string_value(json_object_get(json_array_get(list_rows(m), 3), "id")), key);
    CHECK_STR(json_string_value(json_object_get(json_array_get(list_rows(m), 0), "id")), "p1");
    free(key);
    json_decref(m);
    json_decref(calls);
    free(text);
    json_decref(replies);
    free(choices);
}

TEST(duplicate_payloads_degrade_to_numbered_text) {
    json_t *calls = render("[{\"text\":\"?\",\"choices\":[{\"title\":\"A\",\"payload\":\"same\"},"
                           "{\"title\":\"B\",\"payload\":\"same\"}]}]");
    json_t *m = message_at(calls, 0);
    CHECK_STR(type_of(m), "text");
    CHECK_STR(text_of(m), "?\n1) A\n2) B");
    json_decref(m);
    json_decref(calls);
}

#define PAIRING_CARDS                                                                                   \
    "[{\"sku\":\"croissant\",\"title\":\"Butter Croissant\",\"subtitle\":\"A classic with coffee\","     \
    "\"image\":\"https://images.parley.example/barista/croissant.jpg\",\"price\":{\"amount\":250,"     \
    "\"currency\":\"EUR\"},\"payload\":\"croissant\"},"                                                 \
    "{\"sku\":\"secret\",\"title\":\"Secret Cake\",\"price\":{\"amount\":300,\"currency\":\"EUR\"},"    \
    "\"payload\":\"secret\"}]"

TEST(cards_are_captioned_images_or_text_lines) {
    json_t *calls = render("[{\"text\":\"Our pastries:\",\"cards\":" PAIRING_CARDS "}]");
    CHECK(json_array_size(calls) == 2);
    CHECK(all_valid(calls));
    json_t *text = message_at(calls, 0), *image = message_at(calls, 1);
    CHECK_STR(type_of(text), "text");
    CHECK_STR(text_of(text), "Our pastries:\n• Secret Cake — €3.00");
    CHECK_STR(type_of(image), "image");
    const json_t *img = json_object_get(image, "image");
    CHECK_STR(json_string_value(json_object_get(img, "link")), "https://images.parley.example/barista/croissant.jpg");
    CHECK_STR(json_string_value(json_object_get(img, "caption")), "*Butter Croissant* — €2.50\nA classic with coffee");
    json_decref(text);
    json_decref(image);
    json_decref(calls);
}

TEST(cards_with_choices_show_images_then_the_question) {
    json_t *calls = render("[{\"text\":\"Butter Croissant would go nicely with that.\",\"cards\":" PAIRING_CARDS
                           ",\"choices\":[{\"title\":\"Add Butter Croissant\",\"payload\":\"croissant\"},"
                           "{\"title\":\"No thanks\",\"payload\":\"no\"}]}]");
    CHECK(json_array_size(calls) == 2);
    CHECK(all_valid(calls));
    json_t *image = message_at(calls, 0), *ask = message_at(calls, 1);
    CHECK_STR(type_of(image), "image");
    CHECK_STR(type_of(ask), "interactive");
    CHECK_STR(interactive_body(ask), "Butter Croissant would go nicely with that.\n• Secret Cake — €3.00");
    CHECK_STR(button_field(ask, 0, "title"), "Add Butter Croissant");
    json_decref(image);
    json_decref(ask);
    json_decref(calls);
}

TEST(a_body_too_long_for_interactive_goes_first_as_text) {
    char *long_text = malloc(1201);
    memset(long_text, 'z', 1200);
    long_text[1200] = '\0';
    char *replies = pl_strdupf("[{\"text\":\"%s\",\"choices\":[{\"title\":\"OK\",\"payload\":\"ok\"}]}]", long_text);
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 2);
    CHECK(all_valid(calls));
    json_t *text = message_at(calls, 0), *ask = message_at(calls, 1);
    CHECK_STR(text_of(text), long_text);
    CHECK_STR(interactive_body(ask), "Please choose:");
    json_decref(text);
    json_decref(ask);
    json_decref(calls);
    free(replies);
    free(long_text);
}

TEST(choices_without_text_get_a_prompt_in_the_locale) {
    json_t *calls = render_for("[{\"choices\":[{\"title\":\"はい\",\"payload\":\"yes\"}]}]", "ja", 1);
    json_t *m = message_at(calls, 0);
    CHECK_STR(interactive_body(m), "お選びください。");
    json_decref(m);
    json_decref(calls);
    char *choices = choices_json(5, "行%d");
    char *replies = pl_strdupf("[{\"text\":\"どれ？\",\"choices\":%s}]", choices);
    calls = render_for(replies, "ja", 1);
    CHECK(all_valid(calls));
    m = message_at(calls, 0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(interactive_of(m), "action"), "button")), "選ぶ");
    json_decref(m);
    json_decref(calls);
    free(replies);
    free(choices);
}

TEST(configured_list_label_and_prompt) {
    json_t *s = json_pack("{s:s, s:s, s:s}", "phone_number_id", PHONE_ID, "list_button",
                          "See the whole menu of the day", "prompt", "Tap one:");
    pl_channel_config cfg = {"barista", "whatsapp", s};
    pl_outbound to = {.user = "31612345678", .locale = "en"};
    char *choices = choices_json(4, "Row %d");
    char *text = pl_strdupf("[{\"choices\":%s}]", choices);
    json_t *replies = json_loads(text, 0, NULL);
    json_t *calls = NULL;
    char *err = NULL;
    CHECK(wa->render(&cfg, &to, replies, &calls, &err) == PL_OK);
    CHECK(all_valid(calls));
    json_t *m = message_at(calls, 0);
    const char *label = json_string_value(json_object_get(json_object_get(interactive_of(m), "action"), "button"));
    CHECK(label && units(label) == 20 && strncmp(label, "See the whole menu", 18) == 0);
    CHECK_STR(interactive_body(m), "Tap one:");
    json_decref(m);
    json_decref(calls);
    json_decref(replies);
    free(text);
    free(choices);
    free(err);
    json_decref(s);
}

TEST(a_reply_image_is_an_image_message) {
    json_t *calls = render("[{\"text\":\"Our latte art:\",\"image\":\"https://images.example/art.jpg\"}]");
    CHECK(json_array_size(calls) == 2);
    CHECK(all_valid(calls));
    json_t *m = message_at(calls, 1);
    CHECK_STR(json_string_value(json_object_get(json_object_get(m, "image"), "link")), "https://images.example/art.jpg");
    json_decref(m);
    json_decref(calls);
}

/* --- links (a payment page) ---------------------------------------------------- */

#define PAY_URL "http://127.0.0.1:8080/v1/bots/barista/payments/test/15?token=Zq3x"
#define PAY_LINK "{\"title\":\"Pay €3.80\",\"url\":\"" PAY_URL "\"}"

TEST(a_link_alone_is_a_call_to_action_button) {
    json_t *calls = render("[{\"link\":" PAY_LINK "}]");
    CHECK(json_array_size(calls) == 1);
    CHECK(all_valid(calls));
    json_t *m = message_at(calls, 0);
    CHECK_STR(type_of(m), "interactive");
    CHECK_STR(interactive_kind(m), "cta_url");
    CHECK_STR(interactive_body(m), "Pay €3.80"); /* a body is required: the title */
    CHECK_STR(cta_field(m, "display_text"), "Pay €3.80");
    CHECK_STR(cta_field(m, "url"), PAY_URL);
    json_decref(m);
    json_decref(calls);
    /* no title: the URL above a button that says what it does, in the locale */
    calls = render_for("[{\"link\":{\"url\":\"https://pay.example/o/15\"}}]", "ja", 1);
    CHECK(all_valid(calls));
    m = message_at(calls, 0);
    CHECK_STR(interactive_body(m), "https://pay.example/o/15");
    CHECK_STR(cta_field(m, "display_text"), "リンクを開く");
    json_decref(m);
    json_decref(calls);
    calls = render("[{\"link\":{\"title\":\"  \",\"url\":\"https://pay.example/o/15\"}}]");
    CHECK(all_valid(calls));
    m = message_at(calls, 0);
    CHECK_STR(cta_field(m, "display_text"), "Open link");
    json_decref(m);
    json_decref(calls);
}

TEST(a_link_with_text_is_one_message_and_comes_last) {
    json_t *calls = render("[{\"text\":\"Here's your order.\"},"
                           "{\"text\":\"Order #15: €3.80. Tap below to pay securely ☕\",\"link\":" PAY_LINK "}]");
    CHECK(json_array_size(calls) == 2);
    CHECK(all_valid(calls));
    json_t *first = message_at(calls, 0), *pay = message_at(calls, 1);
    CHECK_STR(text_of(first), "Here's your order.");
    CHECK_STR(interactive_kind(pay), "cta_url");
    CHECK_STR(interactive_body(pay), "Order #15: €3.80. Tap below to pay securely ☕");
    CHECK_STR(cta_field(pay, "display_text"), "Pay €3.80");
    CHECK_STR(cta_field(pay, "url"), PAY_URL);
    json_decref(first);
    json_decref(pay);
    json_decref(calls);
    /* cards and the reply's image go before the button; a card without an
     * image is a line of the button's text */
    calls = render("[{\"text\":\"Your order:\",\"cards\":" PAIRING_CARDS ",\"image\":\"https://images.example/"
                   "receipt.png\",\"link\":" PAY_LINK "}]");
    CHECK(json_array_size(calls) == 3);
    CHECK(all_valid(calls));
    json_t *card = message_at(calls, 0), *image = message_at(calls, 1);
    pay = message_at(calls, 2);
    CHECK_STR(type_of(card), "image");
    CHECK_STR(json_string_value(json_object_get(json_object_get(image, "image"), "link")),
              "https://images.example/receipt.png");
    CHECK_STR(interactive_body(pay), "Your order:\n• Secret Cake — €3.00");
    CHECK_STR(cta_field(pay, "url"), PAY_URL);
    json_decref(card);
    json_decref(image);
    json_decref(pay);
    json_decref(calls);
}

TEST(a_link_with_choices_follows_their_message) {
    /* reply buttons keep the text; the link is its own button after them */
    json_t *calls = render("[{\"text\":\"Order #15: €3.80.\",\"choices\":[{\"title\":\"Cancel order\","
                           "\"payload\":\"cancel\"}],\"link\":" PAY_LINK "}]");
    CHECK(json_array_size(calls) == 2);
    CHECK(all_valid(calls));
    json_t *ask = message_at(calls, 0), *pay = message_at(calls, 1);
    CHECK_STR(interactive_kind(ask), "button");
    CHECK_STR(interactive_body(ask), "Order #15: €3.80.");
    CHECK_STR(button_field(ask, 0, "id"), "cancel");
    CHECK_STR(interactive_kind(pay), "cta_url");
    CHECK_STR(interactive_body(pay), "Pay €3.80");
    CHECK_STR(cta_field(pay, "url"), PAY_URL);
    json_decref(ask);
    json_decref(pay);
    json_decref(calls);
    /* a list too */
    char *choices = choices_json(5, "Row %d");
    char *replies = pl_strdupf("[{\"text\":\"Pick\",\"choices\":%s,\"link\":" PAY_LINK "}]", choices);
    calls = render(replies);
    CHECK(json_array_size(calls) == 2);
    CHECK(all_valid(calls));
    ask = message_at(calls, 0), pay = message_at(calls, 1);
    CHECK_STR(interactive_kind(ask), "list");
    CHECK_STR(interactive_kind(pay), "cta_url");
    json_decref(ask);
    json_decref(pay);
    json_decref(calls);
    free(replies);
    free(choices);
    /* numbered choices are text: they ride above the link's button */
    choices = choices_json(11, "Option %d");
    replies = pl_strdupf("[{\"text\":\"Pick one:\",\"choices\":%s,\"link\":" PAY_LINK "}]", choices);
    calls = render(replies);
    CHECK(json_array_size(calls) == 1);
    CHECK(all_valid(calls));
    pay = message_at(calls, 0);
    CHECK_STR(interactive_kind(pay), "cta_url");
    CHECK(interactive_body(pay) && strncmp(interactive_body(pay), "Pick one:\n1) Option 1\n", 22) == 0);
    CHECK(interactive_body(pay) && strstr(interactive_body(pay), "\n11) Option 11"));
    json_decref(pay);
    json_decref(calls);
    free(replies);
    free(choices);
}

TEST(a_long_link_title_is_cut_on_a_character_boundary) {
    /* 18 characters, then an emoji (2 units) that would straddle the cut */
    json_t *calls = render("[{\"text\":\"Pay here\",\"link\":{\"title\":\"Pay for order #15 \xF0\x9F\x98\x80 now\","
                           "\"url\":\"https://pay.example/o/15\"}}]");
    CHECK(all_valid(calls));
    json_t *m = message_at(calls, 0);
    const char *label = cta_field(m, "display_text");
    CHECK_STR(label, "Pay for order #15 …");
    json_decref(m);
    json_decref(calls);
    /* 25 Japanese characters: 19 and "…"; the whole title is the body */
    calls = render("[{\"link\":{\"title\":\"ご注文の合計金額をこちらのボタンから安全にお支払い\","
                   "\"url\":\"https://pay.example/o/15\"}}]");
    CHECK(all_valid(calls));
    m = message_at(calls, 0);
    label = cta_field(m, "display_text");
    CHECK(label && units(label) == 20 && pl_text_is_utf8(label, strlen(label)));
    CHECK_STR(label, "ご注文の合計金額をこちらのボタンから安…");
    CHECK_STR(interactive_body(m), "ご注文の合計金額をこちらのボタンから安全にお支払い");
    json_decref(m);
    json_decref(calls);
}

TEST(a_link_with_a_long_text_follows_it) {
    /* 1200 characters: too long for a button message's body */
    char *long_text = malloc(1201);
    memset(long_text, 'z', 1200);
    long_text[1200] = '\0';
    char *replies = pl_strdupf("[{\"text\":\"%s\",\"link\":" PAY_LINK "}]", long_text);
    json_t *calls = render(replies);
    CHECK(json_array_size(calls) == 2);
    CHECK(all_valid(calls));
    json_t *text = message_at(calls, 0), *pay = message_at(calls, 1);
    CHECK_STR(text_of(text), long_text);
    CHECK_STR(interactive_kind(pay), "cta_url");
    CHECK_STR(interactive_body(pay), "Pay €3.80");
    CHECK_STR(cta_field(pay, "url"), PAY_URL);
    json_decref(text);
    json_decref(pay);
    json_decref(calls);
    free(replies);
    free(long_text);
    /* past 4096: split text messages, then the button */
    long_text = malloc(5001);
    for (int i = 0; i < 5000; i++) long_text[i] = (i % 50 == 49) ? '\n' : 'q';
    long_text[5000] = '\0';
    json_t *list = json_pack("[{s:s, s:{s:s, s:s}}]", "text", long_text, "link", "title", "Pay €3.80", "url", PAY_URL);
    replies = json_dumps(list, 0);
    calls = render(replies);
    CHECK(json_array_size(calls) == 3);
    CHECK(all_valid(calls));
    json_t *a = message_at(calls, 0), *b = message_at(calls, 1);
    pay = message_at(calls, 2);
    CHECK_STR(type_of(a), "text");
    CHECK_STR(type_of(b), "text");
    CHECK_STR(interactive_kind(pay), "cta_url");
    json_decref(a);
    json_decref(b);
    json_decref(pay);
    json_decref(calls);
    free(replies);
    json_decref(list);
    free(long_text);
}

TEST(a_link_that_is_not_a_web_address_stays_in_the_text) {
    json_t *calls = render("[{\"text\":\"Questions?\",\"link\":{\"title\":\"Call us\",\"url\":\"tel:+31201234567\"}}]");
    CHECK(json_array_size(calls) == 1);
    CHECK(all_valid(calls));
    json_t *m = message_at(calls, 0);
    CHECK_STR(type_of(m), "text");
    CHECK_STR(text_of(m), "Questions?\nCall us: tel:+31201234567");
    json_decref(m);
    json_decref(calls);
}

TEST(empty_replies_send_nothing) {
    json_t *calls = render("[{},{\"text\":\"\"}]");
    CHECK(calls && json_array_size(calls) == 0);
    json_decref(calls);
}

TEST(render_without_a_phone_number_id_fails) {
    json_t *s = json_pack("{s:s}", "phone_number_id_env", "BARISTA_TEST_WA_UNSET_PHONE");
    unsetenv("BARISTA_TEST_WA_UNSET_PHONE");
    pl_channel_config cfg = {"barista", "whatsapp", s};
    pl_outbound to = {.user = "1"};
    json_t *replies = json_pack("[{s:s}]", "text", "hi");
    json_t *calls = NULL;
    char *err = NULL;
    CHECK(wa->render(&cfg, &to, replies, &calls, &err) == PL_ERR);
    CHECK(err && strstr(err, "BARISTA_TEST_WA_UNSET_PHONE"));
    CHECK(calls == NULL);
    free(err);
    json_decref(replies);
    json_decref(s);
}

/* === authorize ==================================================================== */

TEST(authorize_adds_the_bearer_token) {
    pl_channel_config cfg = config();
    json_t *headers = json_pack("{s:s}", "Content-Type", "application/json");
    char *url = NULL, *user_pwd = NULL, *err = NULL;
    CHECK(wa->authorize(&cfg, headers, &url, &user_pwd, &err) == PL_OK);
    CHECK_STR(json_string_value(json_object_get(headers, "Authorization")), "Bearer EAAtoken");
    CHECK_STR(json_string_value(json_object_get(headers, "Content-Type")), "application/json");
    CHECK(url == NULL && user_pwd == NULL);
    json_decref(headers);

    json_t *s = json_pack("{s:s}", "access_token_env", "BARISTA_TEST_WA_UNSET_ACCESS");
    unsetenv("BARISTA_TEST_WA_UNSET_ACCESS");
    pl_channel_config missing = {"barista", "whatsapp", s};
    headers = json_object();
    CHECK(wa->authorize(&missing, headers, &url, &user_pwd, &err) == PL_ERR);
    CHECK(err && strstr(err, "BARISTA_TEST_WA_UNSET_ACCESS"));
    CHECK(json_object_get(headers, "Authorization") == NULL);
    json_decref(headers);
    json_decref(s);
    free(err);
}

TEST(adapter_is_registered) {
    CHECK(wa != NULL);
    CHECK_STR(wa->name, "whatsapp");
    CHECK_STR(wa->default_api_base, "https://graph.facebook.com/v19.0");
    CHECK(wa->synchronous == 0);
    CHECK(wa->render && wa->authorize && wa->inbound);
}

int main(void) {
    wa = pl_channel_find("whatsapp");
    if (!wa) {
        printf("not ok 1 - no whatsapp adapter\n1..1\n");
        return 1;
    }
    RUN(adapter_is_registered);
    RUN(handshake_answers_the_challenge);
    RUN(handshake_refuses_a_wrong_token_or_mode);
    RUN(handshake_without_a_challenge_is_a_bad_request);
    RUN(handshake_without_a_configured_token_is_503);
    RUN(signature_good_is_accepted);
    RUN(signature_in_upper_case_hex_is_accepted);
    RUN(signature_bad_or_missing_is_refused);
    RUN(signature_without_an_app_secret_is_503);
    RUN(settings_come_from_the_environment);
    RUN(a_body_that_is_not_json_is_400);
    RUN(bodies_of_the_wrong_shape_are_400);
    RUN(unknown_fields_and_kinds_of_the_right_shape_are_accepted);
    RUN(text_message_with_contact_name);
    RUN(button_reply_arrives_as_its_payload);
    RUN(list_reply_arrives_as_its_payload);
    RUN(template_button_arrives_as_its_payload);
    RUN(a_short_key_comes_back_as_the_long_payload);
    RUN(several_messages_in_one_delivery);
    RUN(several_entries_and_changes);
    RUN(unsupported_kinds_arrive_without_text_and_with_their_type);
    RUN(statuses_become_status_events);
    RUN(other_numbers_objects_and_fields_are_acknowledged_and_ignored);
    RUN(text_reply_is_a_text_message);
    RUN(text_longer_than_4096_is_split);
    RUN(text_of_wide_characters_is_split_by_utf16_units);
    RUN(three_short_choices_are_reply_buttons);
    RUN(four_to_ten_choices_are_a_list);
    RUN(titles_too_long_for_buttons_make_a_list);
    RUN(button_titles_count_utf16_units_and_must_differ);
    RUN(more_than_ten_choices_are_numbered_text);
    RUN(numbers_count_across_the_replies_of_a_turn);
    RUN(long_payloads_use_short_keys_or_degrade);
    RUN(row_ids_longer_than_200_use_short_keys);
    RUN(duplicate_payloads_degrade_to_numbered_text);
    RUN(cards_are_captioned_images_or_text_lines);
    RUN(cards_with_choices_show_images_then_the_question);
    RUN(a_body_too_long_for_interactive_goes_first_as_text);
    RUN(choices_without_text_get_a_prompt_in_the_locale);
    RUN(configured_list_label_and_prompt);
    RUN(a_reply_image_is_an_image_message);
    RUN(a_link_alone_is_a_call_to_action_button);
    RUN(a_link_with_text_is_one_message_and_comes_last);
    RUN(a_link_with_choices_follows_their_message);
    RUN(a_long_link_title_is_cut_on_a_character_boundary);
    RUN(a_link_with_a_long_text_follows_it);
    RUN(a_link_that_is_not_a_web_address_stays_in_the_text);
    RUN(empty_replies_send_nothing);
    RUN(render_without_a_phone_number_id_fails);
    RUN(authorize_adds_the_bearer_token);
    json_decref(settings_json);
    return check_done();
}
