/* channel_twilio: the Twilio Programmable Messaging (SMS) adapter. It owns
 * the checking of X-Twilio-Signature, the reading of Twilio's form-encoded
 * webhooks (incoming messages and status callbacks), the rendering of a
 * turn's replies into calls to the Messages API, and the basic auth those
 * calls carry. It uses channel.c's helpers (settings, HMAC, constant-time
 * compare, prices, form decoding), libevent's URI encoding, and jansson.
 *
 * Every Twilio field used here is named in Twilio's published documentation:
 *   Webhook signatures (HMAC-SHA1 with the auth token, base64, over the full
 *   URL followed by each POST parameter's name and value sorted by name):
 *     https://www.twilio.com/docs/usage/webhooks/webhooks-security
 *   The incoming-message webhook (application/x-www-form-urlencoded; MessageSid,
 *   AccountSid, From, To, Body, NumMedia, MediaUrlN, MediaContentTypeN,
 *   FromCountry, ProfileName) and the TwiML it expects back:
 *     https://www.twilio.com/docs/messaging/guides/webhook-request
 *     https://www.twilio.com/docs/messaging/twiml
 *   Status callbacks (MessageSid, MessageStatus, ErrorCode; To is the shopper):
 *     https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
 *     https://www.twilio.com/docs/messaging/guides/track-outbound-message-status
 *   Sending: POST /2010-04-01/Accounts/{AccountSid}/Messages.json, form-encoded
 *   To, From or MessagingServiceSid, Body (at most 1,600 characters),
 *   MediaUrl (up to 10, MMS), StatusCallback; HTTP basic auth with
 *   AccountSid:AuthToken (or an API key SID:secret):
 *     https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
 *     https://www.twilio.com/docs/usage/requests-to-twilio
 *   MMS reaches US and Canadian numbers only:
 *     https://www.twilio.com/docs/glossary/what-is-mms
 *     https://www.twilio.com/docs/api/errors/30011
 *
 * Settings (bot.json "channels.twilio", each also as <key>_env): auth_token
 * (required to receive), account_sid and from or messaging_service_sid
 * (required to send), public_url (the URL Twilio signs), optional
 * api_key_sid + api_key_secret (basic auth instead of the auth token),
 * status_callback (URL, or false for none; default public_url), mms (true to
 * send card and reply images as MediaUrl). */
#define _GNU_SOURCE
#include "channel.h"

#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/text.h"

/* Twilio's limit for one message's Body, in characters. We count UTF-16
 * code units (an emoji counts two), which can only undercount what fits. */
#define BODY_LIMIT 1600
/* Twilio accepts at most 10 MediaUrl per message. */
#define MEDIA_LIMIT 10

/* The webhook's answer: no TwiML <Message>, since replies go out through the
 * API (from the outbox, after the commit), not in this response. */
static const char TWIML_EMPTY[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response></Response>\n";

/* --- form parameters (channel.c's pl_channel_form) ----------------------------- */

/* A value that must be there and not be empty, or NULL. */
static const char *form_need(const pl_channel_form *f, const char *name) {
    const char *v = pl_channel_form_get(f, name);
    return v && *v ? v : NULL;
}

/* PL_OK when a form that was parsed (parsed: pl_channel_form_parse's
 * result) can be read into events, else PL_ERR with *err. */
static int form_readable(int parsed, const pl_channel_form *f, char **err) {
    if (parsed != PL_OK) return pl_fail(err, "the body is not application/x-www-form-urlencoded");
    const pl_channel_field *bad = pl_channel_form_not_utf8(f);
    if (!bad) return PL_OK;
    if (!pl_text_is_utf8(bad->name, strlen(bad->name))) return pl_fail(err, "a parameter's name is not UTF-8 text");
    return pl_fail(err, "the parameter %s is not UTF-8 text", bad->name);
}

/* --- the signature ----------------------------------------------------------- */

/* Twilio sorts parameters by name with case-sensitive byte order; equal
 * names (which its messaging webhooks do not send) are ordered by value so
 * the result does not depend on arrival order. */
static int param_order(const void *a, const void *b) {
    const pl_channel_field *x = *(const pl_channel_field *const *)a, *y = *(const pl_channel_field *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* The signed text: the URL, then each parameter's name and value with no
 * separators, sorted by name. New string. */
static char *signed_text(const char *url, const pl_channel_form *f) {
    const pl_channel_field **sorted = calloc(f->n ? f->n : 1, sizeof *sorted);
    if (!sorted) abort();
    size_t len = strlen(url);
    for (size_t i = 0; i < f->n; i++) {
        sorted[i] = &f->items[i];
        len += strlen(f->items[i].name) + strlen(f->items[i].value);
    }
    qsort(sorted, f->n, sizeof *sorted, param_order);
    char *text = malloc(len + 1), *p = text;
    if (!text) abort();
    p = stpcpy(p, url);
    for (size_t i = 0; i < f->n; i++) {
        p = stpcpy(p, sorted[i]->name);
        p = stpcpy(p, sorted[i]->value);
    }
    free(sorted);
    return text;
}

/* The same URL with its default port written out when it had none, or
 * dropped when it had the default one (new string), or NULL. Twilio's own
 * validators accept both forms, since proxies differ in which they show. */
static char *url_port_variant(const char *url) {
    struct evhttp_uri *uri = evhttp_uri_parse_with_flags(url, EVHTTP_URI_NONCONFORMANT);
    if (!uri) return NULL;
    const char *scheme = evhttp_uri_get_scheme(uri);
    int standard = !scheme ? -1 : strcmp(scheme, "https") == 0 ? 443 : strcmp(scheme, "http") == 0 ? 80 : -1;
    int port = evhttp_uri_get_port(uri);
    char *variant = NULL;
    if (standard > 0 && (port == -1 || port == standard)) {
        evhttp_uri_set_port(uri, port == -1 ? standard : -1);
        size_t cap = strlen(url) + 16;
        variant = malloc(cap);
        if (!variant) abort();
        if (!evhttp_uri_join(uri, variant, cap)) {
            free(variant);
            variant = NULL;
        }
    }
    evhttp_uri_free(uri);
    return variant;
}

/* 1 when received is the base64 HMAC-SHA1 of url + params under token. */
static int signature_matches(const char *token, const char *url, const pl_channel_form *params,
                             const char *received) {
    char *text = signed_text(url, params);
    char *expected = pl_channel_hmac_base64("sha1", token, text, strlen(text));
    int ok = pl_channel_signature_equal(received, expected);
    free(expected);
    free(text);
    return ok;
}

/* The URL Twilio signed: the webhook's URL with the request's query string
 * when the URL (a configured public_url) does not carry one. New string. */
static char *signed_url(const pl_webhook *req) {
    if (req->query && *req->query && !strchr(req->url, '?'))
        return pl_strdupf("%s?%s", req->url, req->query);
    return pl_strdup(req->url);
}

/* PL_OK when the request carries Twilio's signature over url and params. */
static int check_signature(const char *token, const pl_webhook *req, const pl_channel_form *params,
                           int *status, char **err) {
    const char *received = req->header ? req->header(req->header_ctx, "X-Twilio-Signature") : NULL;
    if (!received || !*received) {
        *status = 403;
        return pl_fail(err, "the request has no X-Twilio-Signature header");
    }
    char *url = signed_url(req);
    char *variant = url_port_variant(url);
    int ok = signature_matches(token, url, params, received);
    if (!ok && variant) ok = signature_matches(token, variant, params, received);
    free(variant);
    free(url);
    if (ok) return PL_OK;
    *status = 403;
    return pl_fail(err, "X-Twilio-Signature does not match (check the auth token, and that "
                        "public_url is the exact URL set in the Twilio console)");
}

/* --- events ---------------------------------------------------------------------- */

/* Twilio's MessageStatus as one of parley's delivery states, or NULL for
 * the steps before sending (queued, accepted, scheduled, sending), which
 * are not worth a transcript line. */
static const char *status_of(const char *twilio) {
    static const char *const map[][2] = {
        {"sent", "sent"},       {"delivered", "delivered"}, {"read", "read"},
        {"failed", "failed"},   {"undelivered", "failed"},  {"canceled", "failed"},
        {"partially_delivered", "delivered"},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(twilio, map[i][0]) == 0) return map[i][1];
    return NULL;
}

/* A status callback as a status event (new), json null when there is
 * nothing to record, or NULL with *err. The shopper is To: the callback is
 * about a message we sent. */
static json_t *status_event(const pl_channel_form *f, const char *twilio_status, char **err) {
    const char *sid = form_need(f, "MessageSid"), *to = form_need(f, "To");
    if (!sid || !to) {
        pl_fail(err, "the status callback has no %s", sid ? "To" : "MessageSid");
        return NULL;
    }
    const char *status = status_of(twilio_status);
    if (!status) return json_null();
    json_t *event = json_pack("{s:s, s:s, s:s, s:s}", "kind", "status", "id", sid, "user", to,
                              "status", status);
    const char *code = form_need(f, "ErrorCode");
    if (code) json_object_set_new(event, "detail", json_sprintf("error %s", code));
    else if (strcmp(status, twilio_status) != 0)
        json_object_set_new(event, "detail", json_string(twilio_status));
    return event;
}

/* The attached media of an incoming MMS: [{"url", "type"}]. New array. */
static json_t *media_of(const pl_channel_form *f) {
    json_t *list = json_array();
    long n = strtol(pl_channel_form_get(f, "NumMedia") ? pl_channel_form_get(f, "NumMedia") : "0", NULL, 10);
    for (int i = 0; i < n && i < MEDIA_LIMIT; i++) {
        char name[40];
        snprintf(name, sizeof name, "MediaUrl%d", i);
        const char *url = form_need(f, name);
        snprintf(name, sizeof name, "MediaContentType%d", i);
        const char *type = form_need(f, name);
        if (url) json_array_append_new(list, json_pack("{s:s, s:s*}", "url", url, "type", type));
    }
    return list;
}

/* Facts for msg.channel: platform, phone (From), display_name (WhatsApp's
 * ProfileName, when Twilio has one), to (our number), country, media. */
static json_t *info_of(const pl_channel_form *f, const char *from) {
    json_t *info = json_pack("{s:s, s:s}", "platform", "sms", "phone", from);
    const char *name = form_need(f, "ProfileName");
    if (name) json_object_set_new(info, "display_name", json_string(name));
    const char *to = form_need(f, "To");
    if (to) json_object_set_new(info, "to", json_string(to));
    const char *country = form_need(f, "FromCountry");
    if (country) json_object_set_new(info, "country", json_string(country));
    json_t *media = media_of(f);
    if (json_array_size(media) > 0) json_object_set_new(info, "media", media);
    else json_decref(media);
    return info;
}

/* An incoming message as a message event (new), or NULL with *err. The
 * MessageSid is the de-duplication id: Twilio retries with the same one. */
static json_t *message_event(const pl_channel_form *f, char **err) {
    const char *sid = form_need(f, "MessageSid"), *from = form_need(f, "From");
    if (!sid || !from) {
        pl_fail(err, "the message has no %s", sid ? "From" : "MessageSid");
        return NULL;
    }
    const char *count = pl_channel_form_get(f, "NumMedia");
    if (count && (!*count || strlen(count) > 9 || count[strspn(count, "0123456789")])) {
        pl_fail(err, "NumMedia is '%.20s', not a number of media", count);
        return NULL;
    }
    const char *body = pl_channel_form_get(f, "Body");
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "kind", "message", "id", sid, "user", from,
                     "text", body ? body : "", "info", info_of(f, from));
}

/* The event a webhook carries: new object, json null for none, or NULL
 * with *err when the form is not a Twilio message. */
static json_t *event_of(const pl_channel_form *f, char **err) {
    const char *status = form_need(f, "MessageStatus");
    if (status && strcmp(status, "received") != 0 && strcmp(status, "receiving") != 0)
        return status_event(f, status, err);
    return message_event(f, err);
}

/* --- inbound ------------------------------------------------------------------------ */

/* Verifies and reads a webhook. The auth token is checked first (503 when
 * it is not configured), then the signature (403), then the form (400: not
 * a form, not UTF-8, or no message or status callback).
 * Twilio may be set to call with GET: the parameters are then in the
 * query string, which is part of the signed URL. */
static int twilio_inbound(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                          char **err) {
    const char *token = pl_channel_require(cfg, "auth_token", &out->status, err);
    if (!token) return PL_ERR;
    int is_get = req->method && strcmp(req->method, "GET") == 0;
    pl_channel_form fields = {0}, none = {0};
    int parsed = pl_channel_form_parse(is_get ? req->query : req->body, &fields);
    if (!is_get && req->body && strlen(req->body) != req->body_len) parsed = PL_ERR;
    int rc = check_signature(token, req, is_get || parsed != PL_OK ? &none : &fields, &out->status, err);
    if (rc == PL_OK && form_readable(parsed, &fields, err) != PL_OK) {
        out->status = 400;
        rc = PL_ERR;
    }
    json_t *event = rc == PL_OK ? event_of(&fields, err) : NULL;
    pl_channel_form_free(&fields);
    if (rc != PL_OK) return PL_ERR;
    if (!event) {
        out->status = 400;
        return PL_ERR;
    }
    out->status = 200;
    out->answer = pl_strdup(TWIML_EMPTY);
    out->answer_type = pl_strdup("text/xml");
    out->events = json_array();
    if (json_is_object(event)) json_array_append(out->events, event);
    json_decref(event);
    return PL_OK;
}

/* --- rendering: replies as text ---------------------------------------------------- */

/* Appends line to a growing text, separated by sep. */
static void append(char **text, const char *sep, const char *line) {
    if (!line || !*line) return;
    char *joined = *text && **text ? pl_strdupf("%s%s%s", *text, sep, line) : pl_strdup(line);
    free(*text);
    *text = joined;
}

/* An image or link of a reply: a URL string or an object with "url". */
static const char *url_of(const json_t *v) {
    return json_is_string(v) ? json_string_value(v) : json_string_value(json_object_get(v, "url"));
}

static void add_media(json_t *media, const char *url) {
    if (url && *url && json_array_size(media) < MEDIA_LIMIT) json_array_append_new(media, json_string(url));
}

/* One card as a line: "- Title, €2.50: subtitle". Plain ASCII around the
 * merchant's words (no bullet or dash characters outside GSM-7), so our
 * decoration never forces the whole SMS into UCS-2 and its 70-character
 * segments. Missing parts are left out, never printed as "(null)". */
static char *card_line(const json_t *card, const char *locale) {
    const char *title = json_string_value(json_object_get(card, "title"));
    const char *subtitle = json_string_value(json_object_get(card, "subtitle"));
    const json_t *price = json_object_get(card, "price");
    int priced = json_is_integer(json_object_get(price, "amount")) &&
                 json_is_string(json_object_get(price, "currency"));
    if (!title && !priced && !subtitle) return pl_strdup("");
    char *money = priced ? pl_channel_price(price, locale) : NULL;
    char *line = pl_strdupf("- %s%s%s%s%s", title ? title : "", title && money ? ", " : "",
                            money ? money : "", subtitle && *subtitle ? ": " : "",
                            subtitle ? subtitle : "");
    free(money);
    return line;
}

/* One reply as SMS text: its text, its cards as lines, its choices as
 * "n) Title" lines numbered from *next (choices count across the turn, as
 * the engine numbers them), then an image and a link as URLs. With mms,
 * card and reply images go to media (MediaUrl) instead. New string. */
static char *reply_text(const json_t *reply, int *next, const char *locale, int mms, json_t *media) {
    char *text = pl_strdup(json_string_value(json_object_get(reply, "text")));
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(reply, "cards"), i, item) {
        char *line = card_line(item, locale);
        append(&text, "\n", line);
        free(line);
        if (mms) add_media(media, json_string_value(json_object_get(item, "image")));
    }
    json_array_foreach(json_object_get(reply, "choices"), i, item) {
        const char *title = json_string_value(json_object_get(item, "title"));
        char *line = pl_strdupf("%d) %s", (*next)++, title ? title : "");
        append(&text, "\n", line);
        free(line);
    }
    const char *image = url_of(json_object_get(reply, "image"));
    if (mms) add_media(media, image);
    else append(&text, "\n", image);
    const json_t *link = json_object_get(reply, "link");
    const char *link_title = json_string_value(json_object_get(link, "title"));
    if (url_of(link)) {
        char *line = pl_strdupf("%s%s%s", link_title ? link_title : "", link_title ? ": " : "", url_of(link));
        append(&text, "\n", line);
        free(line);
    }
    return text;
}

/* The whole turn as one text, replies separated by a blank line. One SMS
 * instead of one per reply: fewer messages and segments to pay for, and
 * carriers do not keep separate messages in order, while the parts of one
 * long message are reassembled in order on the handset. */
static char *turn_text(const json_t *replies, const char *locale, int mms, json_t *media) {
    char *text = pl_strdup("");
    int next = 1;
    size_t i;
    json_t *reply;
    json_array_foreach(replies, i, reply) {
        if (!json_is_object(reply)) continue;
        char *part = reply_text(reply, &next, locale, mms, media);
        append(&text, "\n\n", part);
        free(part);
    }
    return text;
}

/* --- rendering: splitting long text ---------------------------------------------- */

/* Bytes in the UTF-8 sequence that starts with byte c (1 for stray bytes). */
static size_t seq_len(unsigned char c) {
    return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
}

/* The byte length of the longest prefix of s (len bytes) that ends on a
 * character boundary and holds at most limit UTF-16 code units. */
static size_t prefix_fitting(const char *s, size_t len, size_t limit) {
    size_t i = 0, units = 0;
    while (i < len) {
        size_t n = seq_len((unsigned char)s[i]);
        size_t u = n == 4 ? 2 : 1;
        if (units + u > limit || i + n > len) break;
        units += u;
        i += n;
    }
    return i;
}

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* Where a sentence ends in s[0, n): just after ". ", "! ", "? " (the
 * space stays behind) or after a CJK full stop, exclamation or question
 * mark; the last such place at or after min, else 0. */
static size_t sentence_end(const char *s, size_t n, size_t min) {
    static const char *const cjk[] = {"\xE3\x80\x82", "\xEF\xBC\x81", "\xEF\xBC\x9F"};
    for (size_t i = n; i-- > min;) {
        if ((s[i] == '.' || s[i] == '!' || s[i] == '?') && i + 1 < n && is_space(s[i + 1])) return i + 1;
        for (size_t k = 0; k < 3; k++)
            if (i + 3 <= n && memcmp(s + i, cjk[k], 3) == 0) return i + 3;
    }
    return 0;
}

/* The last occurrence of needle in s[0, n) at or after min, else 0. */
static size_t last_at(const char *s, size_t n, const char *needle, size_t min) {
    size_t k = strlen(needle);
    for (size_t i = n >= k ? n - k + 1 : 0; i-- > min;)
        if (memcmp(s + i, needle, k) == 0) return i;
    return 0;
}

/* Where to end a message that must hold at most fit bytes of s: at the
 * last paragraph break, else line break, else sentence end in the second
 * half of the room (so no message is needlessly short), else at the last
 * space, else at the character boundary fit. */
static size_t cut_at(const char *s, size_t fit) {
    size_t half = fit / 2, at;
    if ((at = last_at(s, fit, "\n\n", half)) > 0) return at;
    if ((at = last_at(s, fit, "\n", half)) > 0) return at;
    if ((at = sentence_end(s, fit, half)) > 0) return at;
    if ((at = last_at(s, fit, " ", 1)) > 0) return at;
    return fit;
}

/* text split into messages of at most limit UTF-16 units (see cut_at),
 * with the whitespace at each cut dropped. New array of strings. */
static json_t *split_text(const char *text, size_t limit) {
    json_t *parts = json_array();
    const char *s = text;
    size_t len = strlen(s);
    while (len > 0) {
        while (len > 0 && is_space(*s)) s++, len--;
        if (len == 0) break;
        size_t fit = prefix_fitting(s, len, limit);
        size_t cut = fit == len ? len : cut_at(s, fit);
        if (cut == 0) cut = seq_len((unsigned char)*s) <= len ? seq_len((unsigned char)*s) : len;
        size_t end = cut;
        while (end > 0 && is_space(s[end - 1])) end--;
        json_array_append_new(parts, json_stringn(s, end));
        s += cut;
        len -= cut;
    }
    return parts;
}

/* --- rendering: API calls --------------------------------------------------------- */

/* name=value&... with both sides form-encoded by libevent (space as '+',
 * '+' itself as %2B, as application/x-www-form-urlencoded wants). */
static void form_add(char **body, const char *name, const char *value) {
    char *n = evhttp_uriencode(name, -1, 1), *v = evhttp_uriencode(value, -1, 1);
    if (!n || !v) abort();
    char *joined = *body ? pl_strdupf("%s&%s=%s", *body, n, v) : pl_strdupf("%s=%s", n, v);
    free(*body);
    *body = joined;
    free(n);
    free(v);
}

/* Whether a boolean setting is on: true, or the string "true" / "1". */
static int setting_on(const pl_channel_config *cfg, const char *key) {
    const json_t *v = json_object_get(cfg->settings, key);
    if (json_is_boolean(v)) return json_is_true(v);
    const char *s = pl_channel_setting(cfg, key);
    return s && (strcmp(s, "true") == 0 || strcmp(s, "1") == 0);
}

/* Who sends and where Twilio reports delivery, shared by a turn's calls. */
typedef struct {
    const char *path_sid;    /* the account SID */
    const char *sender_key;  /* "From" or "MessagingServiceSid" */
    const char *sender;
    const char *status_callback; /* or NULL */
} sender;

static int sender_of(const pl_channel_config *cfg, sender *s, char **err) {
    s->path_sid = pl_channel_require(cfg, "account_sid", NULL, err);
    if (!s->path_sid) return PL_ERR;
    s->sender_key = "MessagingServiceSid";
    s->sender = pl_channel_setting(cfg, "messaging_service_sid");
    if (!s->sender) {
        s->sender_key = "From";
        s->sender = pl_channel_require(cfg, "from", NULL, err);
        if (!s->sender) return PL_ERR;
    }
    const json_t *cb = json_object_get(cfg->settings, "status_callback");
    s->status_callback = json_is_false(cb) ? NULL : pl_channel_setting(cfg, "status_callback");
    if (!s->status_callback && !json_is_false(cb)) s->status_callback = pl_channel_setting(cfg, "public_url");
    return PL_OK;
}

/* One Messages API call (new): Body when text is given, MediaUrl for each
 * of media's URLs. */
static json_t *message_call(const sender *s, const char *to, const char *text, const json_t *media) {
    char *body = NULL;
    form_add(&body, "To", to);
    form_add(&body, s->sender_key, s->sender);
    if (text) form_add(&body, "Body", text);
    size_t i;
    json_t *url;
    json_array_foreach(media, i, url) form_add(&body, "MediaUrl", json_string_value(url));
    if (s->status_callback) form_add(&body, "StatusCallback", s->status_callback);
    char *sid = evhttp_uriencode(s->path_sid, -1, 0);
    if (!sid) abort();
    char *path = pl_strdupf("/2010-04-01/Accounts/%s/Messages.json", sid);
    json_t *call = pl_channel_call("POST", path, NULL);
    json_object_set_new(call, "body", json_string(body));
    json_object_set_new(call, "content_type", json_string("application/x-www-form-urlencoded"));
    free(path);
    free(sid);
    free(body);
    return call;
}

/* Renders a turn: its replies joined into one text (see turn_text), split
 * into messages of at most 1,600 characters; images go along as MediaUrl
 * on the first message when mms is on. Cards stay text lines by default:
 * MMS reaches only US and Canadian numbers, costs more than SMS, and a
 * shopper elsewhere would get error 30011 instead of the reply. A turn with
 * nothing to say sends nothing. */
static int twilio_render(const pl_channel_config *cfg, const pl_outbound *to, const json_t *replies,
                         json_t **calls, char **err) {
    sender s;
    if (sender_of(cfg, &s, err) != PL_OK) return PL_ERR;
    if (!to->user || !*to->user) return pl_fail(err, "the message has no recipient");
    int mms = setting_on(cfg, "mms");
    json_t *media = json_array();
    char *text = turn_text(json_is_array(replies) ? replies : NULL, to->locale, mms, media);
    json_t *parts = split_text(text, BODY_LIMIT);
    *calls = json_array();
    size_t i;
    json_t *part;
    json_array_foreach(parts, i, part)
        json_array_append_new(*calls, message_call(&s, to->user, json_string_value(part), i == 0 ? media : NULL));
    if (json_array_size(parts) == 0 && json_array_size(media) > 0)
        json_array_append_new(*calls, message_call(&s, to->user, NULL, media));
    json_decref(parts);
    json_decref(media);
    free(text);
    return PL_OK;
}

/* Basic auth for the Messages API: an API key SID and secret when both are
 * set (Twilio's advice for production), else AccountSid:AuthToken. */
static int twilio_authorize(const pl_channel_config *cfg, json_t *headers, char **url, char **user_pwd,
                            char **err) {
    (void)headers;
    (void)url;
    const char *key = pl_channel_setting(cfg, "api_key_sid");
    const char *secret = pl_channel_setting(cfg, "api_key_secret");
    if (key && secret) {
        *user_pwd = pl_strdupf("%s:%s", key, secret);
        return PL_OK;
    }
    const char *sid = pl_channel_require(cfg, "account_sid", NULL, err);
    const char *token = sid ? pl_channel_require(cfg, "auth_token", NULL, err) : NULL;
    if (!token) return PL_ERR;
    *user_pwd = pl_strdupf("%s:%s", sid, token);
    return PL_OK;
}

const pl_channel_adapter pl_channel_twilio = {
    .name = "twilio",
    .default_api_base = "https://api.twilio.com",
    .synchronous = 0,
    .inbound = twilio_inbound,
    .render = twilio_render,
    .answer = NULL,
    .authorize = twilio_authorize,
};
