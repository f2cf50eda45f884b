/* test_channel_twilio: the Twilio Messaging adapter (channel_twilio.c)
 * driven through its pl_channel_adapter with fixed vectors: signatures
 * computed independently (Python's hmac/hashlib/base64, and the example of
 * Twilio's own webhook-security page), inbound messages and status
 * callbacks, rendering (choices numbered across replies, cards, long text
 * split at paragraph, sentence and word boundaries) and basic auth. */
#define _GNU_SOURCE
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channels/channel.h"
#include "check.h"

/* defined in channel_twilio.c; channel.h only exposes pl_channel_find */
extern const pl_channel_adapter pl_channel_twilio;

#define TOKEN "12345"
#define SID "AC0123456789abcdef0123456789abcdef"
#define URL "https://parley.example/v1/bots/barista/channels/twilio"

static const char *SETTINGS =
    "{\"account_sid\": \"" SID "\", \"auth_token\": \"" TOKEN "\", \"from\": \"+15550001111\"}";

/* --- helpers -------------------------------------------------------------------- */

static const char *signature_header(const void *ctx, const char *name) {
    return strcasecmp(name, "X-Twilio-Signature") == 0 ? ctx : NULL;
}

/* Calls the adapter's inbound on a request; returns its result code. */
static int inbound(const char *settings, const char *method, const char *url, const char *query,
                   const char *body, const char *signature, pl_inbound *out, char **err) {
    json_t *s = json_loads(settings, 0, NULL);
    pl_channel_config cfg = {"barista", "twilio", s};
    pl_webhook req = {
        .method = method,
        .url = url,
        .query = query,
        .body = body,
        .body_len = strlen(body),
        .header = signature_header,
        .header_ctx = signature,
        .now = 1700000000,
    };
    memset(out, 0, sizeof *out);
    out->status = 200;
    int rc = pl_channel_twilio.inbound(&cfg, &req, out, err);
    json_decref(s);
    return rc;
}

/* The signature of url + already sorted "name", "value", ... pairs (NULL
 * ends them), for the cases beyond the fixed vectors. New string. */
static char *sign(const char *url, const char *const *pairs) {
    char *text = strdup(url);
    for (size_t i = 0; pairs[i]; i += 2) {
        char *next = NULL;
        if (asprintf(&next, "%s%s%s", text, pairs[i], pairs[i + 1]) < 0) abort();
        free(text);
        text = next;
    }
    char *sig = pl_channel_hmac_base64("sha1", TOKEN, text, strlen(text));
    free(text);
    return sig;
}

/* A form body from the same pairs (values form-encoded). New string. */
static char *form_of(const char *const *pairs) {
    char *body = strdup("");
    for (size_t i = 0; pairs[i]; i += 2) {
        char *v = evhttp_uriencode(pairs[i + 1], -1, 1), *next = NULL;
        if (asprintf(&next, "%s%s%s=%s", body, *body ? "&" : "", pairs[i], v) < 0) abort();
        free(v);
        free(body);
        body = next;
    }
    return body;
}

/* Signs and posts pairs to URL; returns the result code. */
static int post_signed(const char *settings, const char *const *pairs, pl_inbound *out, char **err) {
    char *sig = sign(URL, pairs), *body = form_of(pairs);
    int rc = inbound(settings, "POST", URL, NULL, body, sig, out, err);
    free(sig);
    free(body);
    return rc;
}

/* Renders replies (JSON text) with settings; returns the calls (new) or
 * NULL with *err. */
static json_t *render(const char *settings, const char *replies, char **err) {
    json_t *s = json_loads(settings, 0, NULL), *r = json_loads(replies, 0, NULL);
    pl_channel_config cfg = {"barista", "twilio", s};
    pl_outbound to = {.user = "+15551234567", .locale = "en"};
    json_t *calls = NULL;
    int rc = pl_channel_twilio.render(&cfg, &to, r, &calls, err);
    json_decref(s);
    json_decref(r);
    if (rc != 0) {
        json_decref(calls);
        return NULL;
    }
    return calls;
}

/* The form fields of a call's body as [[name, value], ...] (new). */
static json_t *fields_of(const json_t *call) {
    struct evkeyvalq q = {NULL, &q.tqh_first};
    json_t *list = json_array();
    if (evhttp_parse_query_str(json_string_value(json_object_get(call, "body")), &q) == 0)
        for (struct evkeyval *kv = q.tqh_first; kv; kv = kv->next.tqe_next)
            json_array_append_new(list, json_pack("[s, s]", kv->key, kv->value));
    evhttp_clear_headers(&q);
    return list;
}

/* The first value of name in fields (borrowed), or NULL. */
static const char *field(const json_t *fields, const char *name) {
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
        if (strcmp(json_string_value(json_array_get(f, 0)), name) == 0) return json_string_value(json_array_get(f, 1));
    return NULL;
}

static size_t field_count(const json_t *fields, const char *name) {
    size_t i, n = 0;
    json_t *f;
    json_array_foreach(fields, i, f) n += strcmp(json_string_value(json_array_get(f, 0)), name) == 0;
    return n;
}

/* The Body of the i-th call (new string, "" when none). */
static char *body_of(const json_t *calls, size_t i) {
    json_t *fields = fields_of(json_array_get(calls, i));
    char *body = strdup(field(fields, "Body") ? field(fields, "Body") : "");
    json_decref(fields);
    return body;
}

/* UTF-16 code units in a UTF-8 string (what Twilio's 1,600 may count). */
static size_t units(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xC0) != 0x80 ? (*p >= 0xF0 ? 2 : 1) : 0;
    return n;
}

static const json_t *event0(const pl_inbound *in) { return json_array_get(in->events, 0); }
static const char *ev(const pl_inbound *in, const char *key) {
    return json_string_value(json_object_get(event0(in), key));
}
static const char *info(const pl_inbound *in, const char *key) {
    return json_string_value(json_object_get(json_object_get(event0(in), "info"), key));
}

/* --- signatures ------------------------------------------------------------------ */

/* The body of the fixed vector, in an order Twilio might send (unsorted). */
static const char *VECTOR_BODY =
    "To=%2B15557654321&From=%2B15551234567&Body=Hi+there+%2B+more+%C3%BC+%26+co"
    "&MessageSid=SM0123456789abcdef0123456789abcdef&AccountSid=" SID
    "&NumMedia=0&ProfileName=Ada&FromCountry=US";
/* python3: base64(hmac(b"12345", URL + sorted name+value, sha1)) */
static const char *VECTOR_SIG = "HNYS7i2w5X1/DLlnvczj+vilkos=";
/* the same over https://parley.example:443/... */
static const char *VECTOR_SIG_443 = "/nJMKQSbpmb31ViK33z1+AA011U=";

TEST(signature_fixed_vector_and_message) {
    pl_inbound in;
    char *err = NULL;
    CHECK(inbound(SETTINGS, "POST", URL, NULL, VECTOR_BODY, VECTOR_SIG, &in, &err) == 0);
    CHECK(in.status == 200);
    CHECK(json_array_size(in.events) == 1);
    CHECK_STR(ev(&in, "kind"), "message");
    CHECK_STR(ev(&in, "id"), "SM0123456789abcdef0123456789abcdef");
    CHECK_STR(ev(&in, "user"), "+15551234567");
    CHECK_STR(ev(&in, "text"), "Hi there + more ü & co");
    CHECK_STR(info(&in, "platform"), "sms");
    CHECK_STR(info(&in, "phone"), "+15551234567");
    CHECK_STR(info(&in, "display_name"), "Ada");
    CHECK_STR(info(&in, "to"), "+15557654321");
    CHECK_STR(info(&in, "country"), "US");
    CHECK(strstr(in.answer, "<Response></Response>") != NULL);
    CHECK_STR(in.answer_type, "text/xml");
    pl_inbound_clear(&in);
    free(err);
}

TEST(signature_with_or_without_default_port) {
    pl_inbound in;
    char *err = NULL;
    /* signed with :443, configured without */
    CHECK(inbound(SETTINGS, "POST", URL, NULL, VECTOR_BODY, VECTOR_SIG_443, &in, &err) == 0);
    pl_inbound_clear(&in);
    /* signed without, configured with :443 */
    CHECK(inbound(SETTINGS, "POST", "https://parley.example:443/v1/bots/barista/channels/twilio", NULL,
                  VECTOR_BODY, VECTOR_SIG, &in, &err) == 0);
    pl_inbound_clear(&in);
    /* another port is another URL */
    CHECK(inbound(SETTINGS, "POST", "https://parley.example:8443/v1/bots/barista/channels/twilio", NULL,
                  VECTOR_BODY, VECTOR_SIG, &in, &err) != 0);
    CHECK(in.status == 403);
    pl_inbound_clear(&in);
    free(err);
}

/* The example on https://www.twilio.com/docs/usage/webhooks/webhooks-security
 * (a voice request, so no MessageSid: the signature passes, the body is
 * then refused as not a message). */
TEST(signature_twilio_docs_example) {
    const char *body = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234"
                       "&From=%2B12349013030&To=%2B18005551212";
    const char *sig = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
    pl_inbound in;
    char *err = NULL;
    CHECK(inbound(SETTINGS, "POST", "https://mycompany.com/myapp.php?foo=1&bar=2", NULL, body, sig, &in,
                  &err) != 0);
    CHECK(in.status == 400);
    CHECK(err && strstr(err, "MessageSid"));
    pl_inbound_clear(&in);
    /* a configured public_url without the query: the request's query is signed too */
    CHECK(inbound(SETTINGS, "POST", "https://mycompany.com/myapp.php", "foo=1&bar=2", body, sig, &in, &err) != 0);
    CHECK(in.status == 400);
    pl_inbound_clear(&in);
    free(err);
}

TEST(bad_or_missing_signature_is_403) {
    pl_inbound in;
    char *err = NULL;
    char wrong[64];
    snprintf(wrong, sizeof wrong, "%s", VECTOR_SIG);
    wrong[3] = wrong[3] == 'A' ? 'B' : 'A';
    const char *cases[] = {wrong, NULL, "", "HNYS7i2w5X1/DLlnvczj+vilkos", "HNYS7i2w5X1/DLlnvczj+vilkos==",
                           "hnys7i2w5x1/dllnvczj+vilkos="};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        CHECK(inbound(SETTINGS, "POST", URL, NULL, VECTOR_BODY, cases[i], &in, &err) != 0);
        CHECK(in.status == 403);
        CHECK(in.events == NULL);
        pl_inbound_clear(&in);
    }
    /* a tampered body, another URL, another token */
    char *tampered = strdup(VECTOR_BODY);
    tampered[strlen("To=%2B1555765432")] = '9';
    CHECK(inbound(SETTINGS, "POST", URL, NULL, tampered, VECTOR_SIG, &in, &err) != 0 && in.status == 403);
    pl_inbound_clear(&in);
    CHECK(inbound(SETTINGS, "POST", "http://parley.example/v1/bots/barista/channels/twilio", NULL,
                  VECTOR_BODY, VECTOR_SIG, &in, &err) != 0 && in.status == 403);
    pl_inbound_clear(&in);
    CHECK(inbound("{\"auth_token\": \"54321\"}", "POST", URL, NULL, VECTOR_BODY, VECTOR_SIG, &in, &err) != 0 &&
          in.status == 403);
    pl_inbound_clear(&in);
    /* a parameter added after signing */
    char *extra = NULL;
    if (asprintf(&extra, "%s&Extra=1", VECTOR_BODY) < 0) abort();
    CHECK(inbound(SETTINGS, "POST", URL, NULL, extra, VECTOR_SIG, &in, &err) != 0 && in.status == 403);
    pl_inbound_clear(&in);
    free(extra);
    free(tampered);
    free(err);
}

TEST(missing_auth_token_is_503) {
    unsetenv("BARISTA_TEST_TWILIO_TOKEN_UNSET");
    pl_inbound in;
    char *err = NULL;
    CHECK(inbound("{\"auth_token_env\": \"BARISTA_TEST_TWILIO_TOKEN_UNSET\"}", "POST", URL, NULL, VECTOR_BODY,
                  VECTOR_SIG, &in, &err) != 0);
    CHECK(in.status == 503);
    CHECK(err && strstr(err, "BARISTA_TEST_TWILIO_TOKEN_UNSET"));
    CHECK(in.events == NULL);
    pl_inbound_clear(&in);
    /* the token from the environment works */
    setenv("BARISTA_TEST_TWILIO_TOKEN_SET", TOKEN, 1);
    CHECK(inbound("{\"auth_token_env\": \"BARISTA_TEST_TWILIO_TOKEN_SET\"}", "POST", URL, NULL, VECTOR_BODY, VECTOR_SIG,
                  &in, &err) == 0);
    pl_inbound_clear(&in);
    free(err);
}

/* --- inbound parsing ------------------------------------------------------------- */

/* python3: the status callback below, signed over URL */
TEST(status_callback_fixed_vector) {
    const char *body = "ApiVersion=2010-04-01&AccountSid=" SID "&ErrorCode=30003&From=%2B15557654321"
                       "&MessageSid=SM9999&MessageStatus=undelivered&SmsStatus=undelivered&To=%2B15551234567";
    pl_inbound in;
    char *err = NULL;
    CHECK(inbound(SETTINGS, "POST", URL, NULL, body, "xcDp+4WLUufkTPPKJn70xdBwZYw=", &in, &err) == 0);
    CHECK(json_array_size(in.events) == 1);
    CHECK_STR(ev(&in, "kind"), "status");
    CHECK_STR(ev(&in, "id"), "SM9999");
    CHECK_STR(ev(&in, "user"), "+15551234567");
    CHECK_STR(ev(&in, "status"), "failed");
    CHECK_STR(ev(&in, "detail"), "error 30003");
    pl_inbound_clear(&in);
    free(err);
}

TEST(status_callbacks_mapped_or_skipped) {
    const char *map[][2] = {{"sent", "sent"}, {"delivered", "delivered"}, {"read", "read"},
                            {"failed", "failed"}, {"queued", NULL}, {"sending", NULL}, {"accepted", NULL}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        const char *pairs[] = {"AccountSid", SID, "MessageSid", "SM1", "MessageStatus", map[i][0], "To", "+1555", NULL};
        pl_inbound in;
        char *err = NULL;
        CHECK(post_signed(SETTINGS, pairs, &in, &err) == 0);
        CHECK(in.status == 200);
        if (map[i][1]) CHECK_STR(ev(&in, "status"), map[i][1]);
        else CHECK(json_array_size(in.events) == 0);
        CHECK(in.answer && strstr(in.answer, "<Response>"));
        pl_inbound_clear(&in);
        free(err);
    }
}

TEST(message_with_media_and_no_body) {
    const char *pairs[] = {"AccountSid", SID, "From", "+15551234567", "MediaContentType0", "image/jpeg",
                           "MediaUrl0", "https://api.twilio.com/media/1", "MediaUrl1", "https://api.twilio.com/media/2",
                           "MessageSid", "MM1", "NumMedia", "2", "To", "+15557654321", NULL};
    pl_inbound in;
    char *err = NULL;
    CHECK(post_signed(SETTINGS, pairs, &in, &err) == 0);
    CHECK_STR(ev(&in, "text"), "");
    CHECK(info(&in, "display_name") == NULL);
    const json_t *media = json_object_get(json_object_get(event0(&in), "info"), "media");
    CHECK(json_array_size(media) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(media, 0), "url")), "https://api.twilio.com/media/1");
    CHECK_STR(json_string_value(json_object_get(json_array_get(media, 0), "type")), "image/jpeg");
    pl_inbound_clear(&in);
    free(err);
}

TEST(message_without_sid_or_from_is_400) {
    const char *no_sid[] = {"Body", "hi", "From", "+1555", NULL};
    const char *no_from[] = {"Body", "hi", "MessageSid", "SM2", NULL};
    pl_inbound in;
    char *err = NULL;
    CHECK(post_signed(SETTINGS, no_sid, &in, &err) != 0 && in.status == 400);
    pl_inbound_clear(&in);
    CHECK(post_signed(SETTINGS, no_from, &in, &err) != 0 && in.status == 400);
    CHECK(err && strstr(err, "From"));
    pl_inbound_clear(&in);
    free(err);
}

/* Signed forms whose bytes are not UTF-8 (a value, a name): 400 with a
 * reason, no event. They once left the reason out, and the log said "?". */
TEST(a_form_that_is_not_utf8_is_400) {
    const char *bad_value[] = {"Body", "caf\xe9", "From", "+1555", "MessageSid", "SM9", NULL};
    const char *bad_sid[] = {"Body", "hi", "From", "+1555", "MessageSid", "SM\xC3", NULL};
    const char *bad_name[] = {"B\xffody", "hi", "From", "+1555", "MessageSid", "SM9", NULL};
    const char *const *forms[] = {bad_value, bad_sid, bad_name};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        pl_inbound in;
        char *err = NULL;
        CHECK(post_signed(SETTINGS, forms[i], &in, &err) != 0);
        CHECK(in.status == 400 && in.events == NULL);
        CHECK(err && strstr(err, "not UTF-8 text"));
        if (i < 2) CHECK(err && strstr(err, i == 0 ? "Body" : "MessageSid"));
        pl_inbound_clear(&in);
        free(err);
    }
}

/* NumMedia says how many MediaUrlN to read: one that is no number is a
 * form of the wrong shape (400), not "no media". */
TEST(num_media_that_is_no_number_is_400) {
    static const char *const counts[] = {"two", "", "-1", "1.5", "12345678901"};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        const char *pairs[] = {"From", "+1555", "MediaUrl0", "https://m/0", "MessageSid", "SM9", "NumMedia", counts[i], NULL};
        pl_inbound in;
        char *err = NULL;
        CHECK(post_signed(SETTINGS, pairs, &in, &err) != 0);
        CHECK(in.status == 400 && in.events == NULL);
        CHECK(err && strstr(err, "NumMedia"));
        pl_inbound_clear(&in);
        free(err);
    }
    const char *zero[] = {"From", "+1555", "MessageSid", "SM9", "NumMedia", "0", NULL};
    pl_inbound in;
    char *err = NULL;
    CHECK(post_signed(SETTINGS, zero, &in, &err) == 0 && json_array_size(in.events) == 1);
    pl_inbound_clear(&in);
    free(err);
}

TEST(get_webhook_reads_the_query) {
    /* Twilio set to GET: parameters in the query, which is in the signed URL */
    const char *query = "MessageSid=SM3&From=%2B15551234567&To=%2B15557654321&Body=2";
    char *url = NULL;
    if (asprintf(&url, "%s?%s", URL, query) < 0) abort();
    const char *none[] = {NULL};
    char *sig = sign(url, none);
    pl_inbound in;
    char *err = NULL;
    CHECK(inbound(SETTINGS, "GET", url, query, "", sig, &in, &err) == 0);
    CHECK_STR(ev(&in, "text"), "2");
    CHECK_STR(ev(&in, "id"), "SM3");
    pl_inbound_clear(&in);
    free(sig);
    free(url);
    free(err);
}

/* --- rendering --------------------------------------------------------------------- */

TEST(render_one_message_with_choices_numbered_across_replies) {
    char *err = NULL;
    json_t *calls = render(SETTINGS,
                           "[{\"text\": \"Hi!\"},"
                           " {\"text\": \"Which drink?\", \"choices\": [{\"title\": \"Espresso\", \"payload\": \"e\"},"
                           "   {\"title\": \"Latte\", \"payload\": \"l\"}]},"
                           " {\"text\": \"Or a pastry?\", \"choices\": [{\"title\": \"Croissant\", \"payload\": \"c\"},"
                           "   {\"title\": \"No thanks\", \"payload\": \"n\"}]}]",
                           &err);
    CHECK(calls && json_array_size(calls) == 1);
    const json_t *call = json_array_get(calls, 0);
    CHECK_STR(json_string_value(json_object_get(call, "method")), "POST");
    CHECK_STR(json_string_value(json_object_get(call, "path")), "/2010-04-01/Accounts/" SID "/Messages.json");
    CHECK_STR(json_string_value(json_object_get(call, "content_type")), "application/x-www-form-urlencoded");
    json_t *fields = fields_of(call);
    CHECK_STR(field(fields, "To"), "+15551234567");
    CHECK_STR(field(fields, "From"), "+15550001111");
    CHECK_STR(field(fields, "Body"), "Hi!\n\nWhich drink?\n1) Espresso\n2) Latte\n\nOr a pastry?\n3) Croissant\n4) No thanks");
    CHECK(field(fields, "StatusCallback") == NULL);
    json_decref(fields);
    json_decref(calls);
    /* the stored call holds no secret */
    calls = render("{\"account_sid\": \"" SID "\", \"auth_token\": \"s3cr3t-t0ken\", \"from\": \"+1\"}",
                   "[{\"text\": \"hi\"}]", &err);
    char *dump = json_dumps(calls, 0);
    CHECK(dump && strstr(dump, "s3cr3t") == NULL && strstr(dump, "Authorization") == NULL);
    free(dump);
    json_decref(calls);
    free(err);
}

TEST(render_form_encoding) {
    char *err = NULL;
    json_t *calls = render(SETTINGS, "[{\"text\": \"a+b = c & d\\nü 100%\"}]", &err);
    const char *raw = json_string_value(json_object_get(json_array_get(calls, 0), "body"));
    CHECK(raw && strstr(raw, "To=%2B15551234567"));
    CHECK(raw && strstr(raw, "Body=a%2Bb+%3D+c+%26+d%0A%C3%BC+100%25"));
    char *body = body_of(calls, 0);
    CHECK_STR(body, "a+b = c & d\nü 100%");
    free(body);
    json_decref(calls);
    free(err);
}

static const char *CARDS =
    "[{\"text\": \"Goes well with that:\","
    "  \"cards\": [{\"title\": \"Butter Croissant\", \"subtitle\": \"a classic with coffee.\","
    "              \"image\": \"https://img.example/croissant.jpg\", \"price\": {\"amount\": 250, \"currency\": \"EUR\"}},"
    "             {\"title\": \"Mystery\", \"image\": \"https://img.example/mystery.jpg\"}],"
    "  \"choices\": [{\"title\": \"Add Butter Croissant\", \"payload\": \"croissant\"}]},"
    " {\"text\": \"Our shop:\", \"image\": \"https://img.example/shop.jpg\"}]";

TEST(render_cards_as_text_lines) {
    char *err = NULL;
    json_t *calls = render(SETTINGS, CARDS, &err);
    CHECK(json_array_size(calls) == 1);
    json_t *fields = fields_of(json_array_get(calls, 0));
    CHECK_STR(field(fields, "Body"), "Goes well with that:\n- Butter Croissant, €2.50: a classic with coffee.\n"
                                     "- Mystery\n1) Add Butter Croissant\n\nOur shop:\nhttps://img.example/shop.jpg");
    CHECK(field_count(fields, "MediaUrl") == 0);
    json_decref(fields);
    json_decref(calls);
    free(err);
}

TEST(render_cards_as_mms_when_turned_on) {
    char *err = NULL;
    json_t *calls = render("{\"account_sid\": \"" SID "\", \"from\": \"+15550001111\", \"mms\": true}", CARDS, &err);
    CHECK(json_array_size(calls) == 1);
    json_t *fields = fields_of(json_array_get(calls, 0));
    CHECK(field_count(fields, "MediaUrl") == 3);
    CHECK_STR(field(fields, "MediaUrl"), "https://img.example/croissant.jpg");
    CHECK(strstr(field(fields, "Body"), "https://") == NULL);
    json_decref(fields);
    json_decref(calls);
    free(err);
}

/* A text of n paragraphs of about `size` characters each. */
static char *paragraphs(int n, int size) {
    char *text = strdup("");
    for (int p = 0; p < n; p++) {
        char *para = NULL;
        if (asprintf(&para, "Paragraph %d.", p + 1) < 0) abort();
        while ((int)strlen(para) < size) {
            char *longer = NULL;
            if (asprintf(&longer, "%s Sentence of paragraph %d goes on.", para, p + 1) < 0) abort();
            free(para);
            para = longer;
        }
        char *next = NULL;
        if (asprintf(&next, "%s%s%s", text, *text ? "\n\n" : "", para) < 0) abort();
        free(text);
        free(para);
        text = next;
    }
    return text;
}

/* Renders one reply with text; returns the calls. */
static json_t *render_text(const char *text, char **err) {
    json_t *replies = json_pack("[{s:s}]", "text", text);
    char *r = json_dumps(replies, 0);
    json_t *calls = render(SETTINGS, r, err);
    free(r);
    json_decref(replies);
    return calls;
}

TEST(render_splits_at_paragraphs) {
    char *text = paragraphs(7, 500), *err = NULL;
    json_t *calls = render_text(text, &err);
    CHECK(json_array_size(calls) >= 3);
    char *joined = strdup("");
    for (size_t i = 0; i < json_array_size(calls); i++) {
        char *body = body_of(calls, i), *next = NULL;
        CHECK(units(body) <= 1600);
        if (i + 1 < json_array_size(calls)) CHECK(units(body) > 800); /* no needlessly short message */
        CHECK(strncmp(body, "Paragraph ", 10) == 0); /* each message starts a paragraph */
        CHECK(body[strlen(body) - 1] == '.');
        if (asprintf(&next, "%s%s%s", joined, *joined ? "\n\n" : "", body) < 0) abort();
        free(joined);
        joined = next;
        free(body);
    }
    CHECK_STR(joined, text); /* nothing lost, nothing added */
    free(joined);
    json_decref(calls);
    free(text);
    free(err);
}

TEST(render_splits_at_sentences_then_words) {
    char *err = NULL;
    /* one paragraph of sentences */
    char *text = paragraphs(1, 4000);
    json_t *calls = render_text(text, &err);
    CHECK(json_array_size(calls) == 3);
    for (size_t i = 0; i < json_array_size(calls); i++) {
        char *body = body_of(calls, i);
        CHECK(units(body) <= 1600);
        CHECK(body[strlen(body) - 1] == '.');
        if (i > 0) CHECK(strncmp(body, "Sentence of paragraph", 21) == 0);
        free(body);
    }
    json_decref(calls);
    free(text);
    /* words without sentence ends: cut between words */
    text = strdup("");
    for (int i = 0; i < 700; i++) {
        char *next = NULL;
        if (asprintf(&next, "%s%slorem", text, i ? " " : "") < 0) abort();
        free(text);
        text = next;
    }
    calls = render_text(text, &err);
    CHECK(json_array_size(calls) == 3);
    for (size_t i = 0; i < json_array_size(calls); i++) {
        char *body = body_of(calls, i), *save = NULL;
        CHECK(units(body) <= 1600);
        for (char *w = strtok_r(body, " ", &save); w; w = strtok_r(NULL, " ", &save)) CHECK_STR(w, "lorem");
        free(body);
    }
    json_decref(calls);
    free(text);
    free(err);
}

TEST(render_splits_unbroken_text_on_character_boundaries) {
    char *err = NULL;
    /* 1,000 emoji: 2 UTF-16 units each, so 800 fit in one message */
    char *text = calloc(1000 * 4 + 1, 1);
    for (int i = 0; i < 1000; i++) memcpy(text + 4 * i, "\xF0\x9F\x98\x80", 4);
    json_t *calls = render_text(text, &err);
    CHECK(json_array_size(calls) == 2);
    char *a = body_of(calls, 0), *b = body_of(calls, 1);
    CHECK(strlen(a) == 800 * 4 && strlen(b) == 200 * 4);
    free(a);
    free(b);
    json_decref(calls);
    free(text);
    /* 3,300 two-byte letters: 1,600 + 1,600 + 100 */
    text = calloc(3300 * 2 + 1, 1);
    for (int i = 0; i < 3300; i++) memcpy(text + 2 * i, "\xC3\xA9", 2);
    calls = render_text(text, &err);
    CHECK(json_array_size(calls) == 3);
    char *c = body_of(calls, 2);
    CHECK(strlen(c) == 200);
    free(c);
    json_decref(calls);
    free(text);
    free(err);
}

TEST(render_degrades) {
    char *err = NULL;
    /* nothing to say: nothing sent */
    json_t *calls = render(SETTINGS, "[]", &err);
    CHECK(calls && json_array_size(calls) == 0);
    json_decref(calls);
    calls = render(SETTINGS, "[{}, {\"text\": \"\"}, 42, \"x\"]", &err);
    CHECK(calls && json_array_size(calls) == 0);
    json_decref(calls);
    /* odd shapes still render */
    calls = render(SETTINGS,
                   "[{\"choices\": [{\"payload\": \"p\"}, {\"title\": \"B\"}], \"cards\": [{}, {\"price\": 3}],"
                   "  \"link\": {\"url\": \"https://pay.example/1\", \"title\": \"Pay\"}}]",
                   &err);
    char *body = body_of(calls, 0);
    CHECK_STR(body, "1) \n2) B\nPay: https://pay.example/1");
    free(body);
    json_decref(calls);
    free(err);
}

TEST(render_sender_settings) {
    char *err = NULL;
    /* no from and no messaging service: an error naming the variable */
    unsetenv("BARISTA_TEST_TWILIO_FROM_UNSET");
    json_t *calls = render("{\"account_sid\": \"" SID "\", \"from_env\": \"BARISTA_TEST_TWILIO_FROM_UNSET\"}", "[{\"text\": \"hi\"}]",
                           &err);
    CHECK(calls == NULL);
    CHECK(err && strstr(err, "BARISTA_TEST_TWILIO_FROM_UNSET"));
    calls = render("{\"from\": \"+1\"}", "[{\"text\": \"hi\"}]", &err);
    CHECK(calls == NULL && err && strstr(err, "account_sid"));
    /* a messaging service instead of From; status callbacks to public_url */
    calls = render("{\"account_sid\": \"" SID "\", \"messaging_service_sid\": \"MG1\", \"public_url\": \"" URL "\"}",
                   "[{\"text\": \"hi\"}]", &err);
    json_t *fields = fields_of(json_array_get(calls, 0));
    CHECK_STR(field(fields, "MessagingServiceSid"), "MG1");
    CHECK(field(fields, "From") == NULL);
    CHECK_STR(field(fields, "StatusCallback"), URL);
    json_decref(fields);
    json_decref(calls);
    calls = render("{\"account_sid\": \"" SID "\", \"from\": \"+1\", \"public_url\": \"" URL "\", \"status_callback\": false}",
                   "[{\"text\": \"hi\"}]", &err);
    fields = fields_of(json_array_get(calls, 0));
    CHECK(field(fields, "StatusCallback") == NULL);
    json_decref(fields);
    json_decref(calls);
    free(err);
}

/* --- authorize --------------------------------------------------------------------- */

static int authorize(const char *settings, char **user_pwd, char **err) {
    json_t *s = json_loads(settings, 0, NULL), *headers = json_object();
    pl_channel_config cfg = {"barista", "twilio", s};
    char *url = NULL;
    int rc = pl_channel_twilio.authorize(&cfg, headers, &url, user_pwd, err);
    CHECK(url == NULL);
    CHECK(json_object_size(headers) == 0);
    json_decref(headers);
    json_decref(s);
    return rc;
}

TEST(authorize_basic_auth) {
    char *user_pwd = NULL, *err = NULL;
    CHECK(authorize(SETTINGS, &user_pwd, &err) == 0);
    CHECK_STR(user_pwd, SID ":" TOKEN);
    free(user_pwd);
    user_pwd = NULL;
    CHECK(authorize("{\"account_sid\": \"" SID "\", \"auth_token\": \"t\", \"api_key_sid\": \"SK1\", \"api_key_secret\": \"s\"}",
                    &user_pwd, &err) == 0);
    CHECK_STR(user_pwd, "SK1:s");
    free(user_pwd);
    user_pwd = NULL;
    unsetenv("BARISTA_TEST_TWILIO_TOKEN_UNSET");
    CHECK(authorize("{\"account_sid\": \"" SID "\", \"auth_token_env\": \"BARISTA_TEST_TWILIO_TOKEN_UNSET\"}", &user_pwd, &err) != 0);
    CHECK(user_pwd == NULL);
    CHECK(err && strstr(err, "BARISTA_TEST_TWILIO_TOKEN_UNSET"));
    free(err);
}

TEST(adapter_registered) {
    CHECK(pl_channel_find("twilio") == &pl_channel_twilio);
    CHECK_STR(pl_channel_twilio.default_api_base, "https://api.twilio.com");
    CHECK(pl_channel_twilio.synchronous == 0);
}

int main(void) {
    RUN(adapter_registered);
    RUN(signature_fixed_vector_and_message);
    RUN(signature_with_or_without_default_port);
    RUN(signature_twilio_docs_example);
    RUN(bad_or_missing_signature_is_403);
    RUN(missing_auth_token_is_503);
    RUN(status_callback_fixed_vector);
    RUN(status_callbacks_mapped_or_skipped);
    RUN(message_with_media_and_no_body);
    RUN(message_without_sid_or_from_is_400);
    RUN(a_form_that_is_not_utf8_is_400);
    RUN(num_media_that_is_no_number_is_400);
    RUN(get_webhook_reads_the_query);
    RUN(render_one_message_with_choices_numbered_across_replies);
    RUN(render_form_encoding);
    RUN(render_cards_as_text_lines);
    RUN(render_cards_as_mms_when_turned_on);
    RUN(render_splits_at_paragraphs);
    RUN(render_splits_at_sentences_then_words);
    RUN(render_splits_unbroken_text_on_character_boundaries);
    RUN(render_degrades);
    RUN(render_sender_settings);
    RUN(authorize_basic_auth);
    return check_done();
}
