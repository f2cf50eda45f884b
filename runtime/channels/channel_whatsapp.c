/* channel_whatsapp: the WhatsApp Cloud API adapter (see channel.h).
 *
 * Owns the Cloud API's webhook (the GET verification handshake, the
 * X-Hub-Signature-256 check, the "messages" field's messages and statuses)
 * and the rendering of replies into POST /{phone-number-id}/messages calls:
 * text, interactive reply buttons, interactive lists, call-to-action URL
 * buttons (a reply's link: a payment page) and images. Uses the
 * helpers of channel.c (settings, HMAC, constant-time compare, plain-text
 * fallback, prices), jansson for every JSON, and libevent's query-string
 * decoder for the handshake. No I/O of its own: outbox.c sends the calls.
 *
 * Settings (bot.json "channels.whatsapp", each also as <key>_env naming an
 * environment variable): phone_number_id, verify_token, app_secret,
 * access_token; optional list_button (the label of the list button) and
 * prompt (the body of an interactive message whose reply has no short text).
 *
 * Platform fields follow Meta's published documentation:
 *   webhook verification (hub.mode, hub.verify_token, hub.challenge) and
 *   payload signature (X-Hub-Signature-256: "sha256=" + hex HMAC-SHA256 of
 *   the raw body keyed with the app secret):
 *     https://developers.facebook.com/docs/graph-api/webhooks/getting-started
 *     https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/create-webhook-endpoint
 *   the "messages" webhook (entry[].changes[].value: metadata.phone_number_id,
 *   contacts[].profile.name, contacts[].wa_id, messages[] with from, id,
 *   timestamp, type and text.body / interactive.button_reply|list_reply
 *   {id, title} / button {payload, text}; statuses[] with id, status,
 *   recipient_id, errors[]):
 *     https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages
 *   sending (messaging_product "whatsapp", recipient_type "individual", to,
 *   type; Authorization: Bearer <access token>):
 *     https://developers.facebook.com/docs/whatsapp/cloud-api/messages/text-messages
 *       text.body at most 4096 characters, text.preview_url
 *     https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-reply-buttons-messages
 *       body.text at most 1024, at most 3 buttons, reply.id at most 256,
 *       reply.title at most 20 and unique
 *     https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-list-messages
 *       action.button at most 20, section title at most 24, at most 10 rows
 *       in all, row id at most 200, row title at most 24, row description
 *       at most 72 (the list's body may be 4096; we keep 1024 for both kinds)
 *     https://developers.facebook.com/docs/whatsapp/cloud-api/messages/image-messages
 *       image.link, image.caption at most 1024
 *     https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-cta-url-messages
 *       interactive.type "cta_url", body.text (required) at most 1024,
 *       action.name "cta_url", action.parameters.display_text at most 20
 *       and action.parameters.url (opened in the shopper's browser)
 *
 * "Characters" are counted as UTF-16 code units, which is never fewer than
 * code points, so a text that fits here fits whichever the platform counts. */
#define _GNU_SOURCE
#include "channel.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "base/common.h"
#include "base/json_shape.h"

#define WA_TEXT_MAX 4096
#define WA_BODY_MAX 1024
#define WA_CAPTION_MAX 1024
#define WA_BUTTONS_MAX 3
#define WA_BUTTON_TITLE_MAX 20
#define WA_BUTTON_ID_MAX 256
#define WA_LIST_ROWS_MAX 10
#define WA_LIST_BUTTON_MAX 20
#define WA_SECTION_TITLE_MAX 24
#define WA_ROW_TITLE_MAX 24
#define WA_ROW_DESCRIPTION_MAX 72
#define WA_ROW_ID_MAX 200
#define WA_CTA_DISPLAY_MAX 20

#define WA_SIGNATURE_HEADER "X-Hub-Signature-256"
#define WA_SIGNATURE_PREFIX "sha256="

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* --- inbound: the verification handshake --------------------------------------- */

/* GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=... is
 * answered with the challenge when the token is the configured one. */
static int handshake(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                     char **err) {
    const char *token = pl_channel_require(cfg, "verify_token", &out->status, err);
    if (!token) return PL_ERR;
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    int rc = PL_ERR;
    if (!req->query || evhttp_parse_query_str(req->query, &params) != 0) {
        out->status = 403;
        pl_fail(err, "whatsapp: the verification request has no readable query string");
        goto done;
    }
    const char *mode = evhttp_find_header(&params, "hub.mode");
    const char *given = evhttp_find_header(&params, "hub.verify_token");
    const char *challenge = evhttp_find_header(&params, "hub.challenge");
    if (!mode || strcmp(mode, "subscribe") != 0 || !pl_channel_signature_equal(given, token)) {
        out->status = 403;
        pl_fail(err, "whatsapp: verification refused (hub.mode must be subscribe and "
                     "hub.verify_token the configured verify_token)");
        goto done;
    }
    if (!challenge) {
        out->status = 400;
        pl_fail(err, "whatsapp: the verification request has no hub.challenge");
        goto done;
    }
    out->status = 200;
    out->answer = pl_strdup(challenge);
    out->answer_type = pl_strdup("text/plain; charset=utf-8");
    rc = PL_OK;
done:
    evhttp_clear_headers(&params);
    return rc;
}

/* --- inbound: the signature ---------------------------------------------------- */

/* X-Hub-Signature-256 must be "sha256=" and the hex HMAC-SHA256 of the raw
 * body keyed with the app secret; compared in constant time. */
static int verify_signature(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                            char **err) {
    const char *secret = pl_channel_require(cfg, "app_secret", &out->status, err);
    if (!secret) return PL_ERR;
    const char *header = req->header ? req->header(req->header_ctx, WA_SIGNATURE_HEADER) : NULL;
    if (!header || !*header) {
        out->status = 401;
        return pl_fail(err, "whatsapp: the request has no " WA_SIGNATURE_HEADER " header");
    }
    size_t prefix = strlen(WA_SIGNATURE_PREFIX);
    char *expected = pl_channel_hmac_hex("sha256", secret, req->body, req->body_len);
    char *received = pl_strdup(strncmp(header, WA_SIGNATURE_PREFIX, prefix) == 0 ? header + prefix : "");
    for (char *p = received; *p; p++)
        if (*p >= 'A' && *p <= 'F') *p = (char)(*p - 'A' + 'a');
    int equal = pl_channel_signature_equal(received, expected);
    free(received);
    free(expected);
    if (equal) return PL_OK;
    out->status = 403;
    return pl_fail(err, "whatsapp: the " WA_SIGNATURE_HEADER " signature does not match the body");
}

/* --- inbound: messages and statuses ------------------------------------------- */

static const char *str_at(const json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

/* The payload a tapped id stands for: a short key made by render is turned
 * back into the flow's payload; anything else is the payload itself. */
static char *resolve_payload(const pl_webhook *req, const char *id) {
    if (id[0] == '~' && strlen(id) == 13 && req->long_payload) {
        char *payload = req->long_payload(req->payload_ctx, id);
        if (payload) return payload;
    }
    return pl_strdup(id);
}

/* The contacts[] entry of the sender (by wa_id, else the only one). */
static const json_t *sender_contact(const json_t *contacts, const char *from) {
    size_t i;
    const json_t *c;
    json_array_foreach(contacts, i, c) {
        const char *wa_id = str_at(c, "wa_id");
        if (wa_id && strcmp(wa_id, from) == 0) return c;
    }
    return json_array_size(contacts) == 1 ? json_array_get(contacts, 0) : NULL;
}

/* Facts for msg.channel: platform, display name (profile name), phone. */
static json_t *message_info(const json_t *contacts, const char *from) {
    const json_t *contact = sender_contact(contacts, from);
    const char *name = str_at(json_object_get(contact, "profile"), "name");
    const char *wa_id = str_at(contact, "wa_id");
    json_t *info = json_pack("{s:s, s:s}", "platform", "whatsapp", "phone", wa_id ? wa_id : from);
    if (name) json_object_set_new(info, "display_name", json_string(name));
    return info;
}

/* Sets text and payload of a tapped choice (event borrowed). */
static void set_choice(json_t *event, const pl_webhook *req, const char *id, const char *title) {
    char *payload = resolve_payload(req, id);
    json_object_set_new(event, "payload", json_string(payload));
    free(payload);
    if (title) json_object_set_new(event, "text", json_string(title));
}

/* Fills the event from the message's content; returns 0 for a kind parley
 * cannot read (image, audio, location, ...), which the caller marks. */
static int read_content(json_t *event, const pl_webhook *req, const json_t *msg, const char *type) {
    if (strcmp(type, "text") == 0) {
        const char *body = str_at(json_object_get(msg, "text"), "body");
        if (!body) return 0;
        json_object_set_new(event, "text", json_string(body));
        return 1;
    }
    if (strcmp(type, "button") == 0) { /* a quick-reply button of a template */
        const json_t *button = json_object_get(msg, "button");
        const char *payload = str_at(button, "payload");
        if (!payload) return 0;
        set_choice(event, req, payload, str_at(button, "text"));
        return 1;
    }
    if (strcmp(type, "interactive") == 0) {
        const json_t *interactive = json_object_get(msg, "interactive");
        const char *kind = str_at(interactive, "type");
        if (!kind || (strcmp(kind, "button_reply") != 0 && strcmp(kind, "list_reply") != 0)) return 0;
        const json_t *reply = json_object_get(interactive, kind);
        const char *id = str_at(reply, "id");
        if (!id) return 0;
        set_choice(event, req, id, str_at(reply, "title"));
        return 1;
    }
    return 0;
}

/* A message event (new), or NULL when the message has no sender or id. */
static json_t *message_event(const pl_webhook *req, const json_t *msg, const json_t *contacts) {
    const char *from = str_at(msg, "from");
    const char *id = str_at(msg, "id");
    const char *type = str_at(msg, "type");
    if (!from || !id) return NULL;
    json_t *info = message_info(contacts, from);
    json_t *event = json_pack("{s:s, s:s, s:s}", "kind", "message", "id", id, "user", from);
    if (!type || !read_content(event, req, msg, type)) {
        /* the flow is told what came, so it can answer politely */
        const char *what = type ? type : "unknown";
        const json_t *interactive = json_object_get(msg, "interactive");
        if (type && strcmp(type, "interactive") == 0 && str_at(interactive, "type"))
            what = str_at(interactive, "type");
        json_object_set_new(info, "type", json_string(what));
    }
    json_object_set_new(event, "info", info);
    return event;
}

static int known_status(const char *status) {
    static const char *const known[] = {"sent", "delivered", "read", "failed"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(status, known[i]) == 0) return 1;
    return 0;
}

/* A status event (new), or NULL for an incomplete or unknown status. */
static json_t *status_event(const json_t *st) {
    const char *id = str_at(st, "id");
    const char *status = str_at(st, "status");
    const char *user = str_at(st, "recipient_id");
    if (!id || !status || !user || !known_status(status)) return NULL;
    json_t *event = json_pack("{s:s, s:s, s:s, s:s}", "kind", "status", "id", id, "user", user,
                              "status", status);
    const json_t *errors = json_object_get(st, "errors");
    if (json_array_size(errors) > 0)
        json_object_set_new(event, "detail", json_deep_copy(json_array_get(errors, 0)));
    return event;
}

/* Appends the events of one change's value. A value for another business
 * phone number than this bot's (one app may serve several) is skipped. */
static void read_value(const pl_channel_config *cfg, const pl_webhook *req, const json_t *value,
                       json_t *events) {
    const char *ours = pl_channel_setting(cfg, "phone_number_id");
    const char *theirs = str_at(json_object_get(value, "metadata"), "phone_number_id");
    if (ours && theirs && strcmp(ours, theirs) != 0) return;
    const json_t *contacts = json_object_get(value, "contacts");
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(value, "messages"), i, item) {
        json_t *event = message_event(req, item, contacts);
        if (event) json_array_append_new(events, event);
    }
    json_array_foreach(json_object_get(value, "statuses"), i, item) {
        json_t *event = status_event(item);
        if (event) json_array_append_new(events, event);
    }
}

/* --- inbound: the body's shape ------------------------------------------------- */

#define COUNT(a) (sizeof(a) / sizeof *(a))

/* What read_delivery walks of a whatsapp_business_account body; the values
 * of "messages" changes are checked apart (value_shape): other fields'
 * changes are acknowledged unread, whatever they hold. */
static const pl_shape_rule delivery_shape[] = {
    {"entry", PL_SHAPE_ARRAY | PL_SHAPE_REQUIRED},
    {"entry[]", PL_SHAPE_OBJECT},
    {"entry[].changes", PL_SHAPE_ARRAY},
    {"entry[].changes[]", PL_SHAPE_OBJECT},
    {"entry[].changes[].field", PL_SHAPE_STRING},
};

/* What read_value, message_event and status_event read of a change. The
 * shopper's id and the message id may not be empty: a session and the
 * de-duplication of retries are keyed by them. */
static const pl_shape_rule value_shape[] = {
    {"value", PL_SHAPE_OBJECT | PL_SHAPE_REQUIRED},
    {"value.metadata", PL_SHAPE_OBJECT},
    {"value.metadata.phone_number_id", PL_SHAPE_STRING},
    {"value.contacts", PL_SHAPE_ARRAY},
    {"value.contacts[]", PL_SHAPE_OBJECT},
    {"value.contacts[].wa_id", PL_SHAPE_STRING},
    {"value.contacts[].profile", PL_SHAPE_OBJECT},
    {"value.contacts[].profile.name", PL_SHAPE_STRING},
    {"value.messages", PL_SHAPE_ARRAY},
    {"value.messages[]", PL_SHAPE_OBJECT},
    {"value.messages[].from", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY},
    {"value.messages[].id", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY},
    {"value.messages[].type", PL_SHAPE_STRING},
    {"value.messages[].text", PL_SHAPE_OBJECT},
    {"value.messages[].text.body", PL_SHAPE_STRING},
    {"value.messages[].button", PL_SHAPE_OBJECT},
    {"value.messages[].button.payload", PL_SHAPE_STRING},
    {"value.messages[].button.text", PL_SHAPE_STRING},
    {"value.messages[].interactive", PL_SHAPE_OBJECT},
    {"value.messages[].interactive.type", PL_SHAPE_STRING},
    {"value.messages[].interactive.button_reply", PL_SHAPE_OBJECT},
    {"value.messages[].interactive.button_reply.id", PL_SHAPE_STRING},
    {"value.messages[].interactive.button_reply.title", PL_SHAPE_STRING},
    {"value.messages[].interactive.list_reply", PL_SHAPE_OBJECT},
    {"value.messages[].interactive.list_reply.id", PL_SHAPE_STRING},
    {"value.messages[].interactive.list_reply.title", PL_SHAPE_STRING},
    {"value.statuses", PL_SHAPE_ARRAY},
    {"value.statuses[]", PL_SHAPE_OBJECT},
    {"value.statuses[].id", PL_SHAPE_STRING},
    {"value.statuses[].status", PL_SHAPE_STRING},
    {"value.statuses[].recipient_id", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY},
    {"value.statuses[].errors", PL_SHAPE_ARRAY},
};

static const pl_shape_rule object_shape[] = {{"object", PL_SHAPE_STRING}};

static int is_messages_change(const json_t *change) {
    const char *field = str_at(change, "field");
    return field && strcmp(field, "messages") == 0;
}

/* PL_OK when the body (an object) has the shape the reading below walks,
 * else PL_ERR with *err naming the place. A body for another kind of
 * object than a WhatsApp Business Account is not looked into. */
static int check_shape(const json_t *root, char **err) {
    if (pl_json_shape_check(root, NULL, object_shape, COUNT(object_shape), err) != PL_OK) return PL_ERR;
    const char *object = str_at(root, "object");
    if (!object || strcmp(object, "whatsapp_business_account") != 0) return PL_OK;
    if (pl_json_shape_check(root, NULL, delivery_shape, COUNT(delivery_shape), err) != PL_OK) return PL_ERR;
    size_t i, j;
    const json_t *entry, *change;
    json_array_foreach(json_object_get(root, "entry"), i, entry) {
        json_array_foreach(json_object_get(entry, "changes"), j, change) {
            if (!is_messages_change(change)) continue;
            char where[64];
            snprintf(where, sizeof where, "entry[%zu].changes[%zu]", i, j);
            if (pl_json_shape_check(change, where, value_shape, COUNT(value_shape), err) != PL_OK) return PL_ERR;
        }
    }
    return PL_OK;
}

/* --- inbound: the delivery ------------------------------------------------------ */

/* Reads a signed POST. A body of the wrong shape is refused (400, the place
 * named) rather than read as if it said nothing: a platform's change or a
 * forgery shows in the log instead of a shopper going unanswered. */
static int read_delivery(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                         char **err) {
    json_error_t jerr;
    json_t *root = json_loadb(req->body, req->body_len, 0, &jerr);
    char *why = NULL;
    out->status = 400;
    if (!json_is_object(root)) {
        json_decref(root);
        return pl_fail(err, "whatsapp: the body is not a JSON object (%s)", jerr.text);
    }
    if (check_shape(root, &why) != PL_OK) {
        json_decref(root);
        pl_fail(err, "whatsapp: the body is not a webhook of the documented shape: %s", why);
        free(why);
        return PL_ERR;
    }
    out->events = json_array();
    const char *object = str_at(root, "object");
    size_t i, j;
    const json_t *entry, *change;
    if (object && strcmp(object, "whatsapp_business_account") == 0) {
        json_array_foreach(json_object_get(root, "entry"), i, entry) {
            json_array_foreach(json_object_get(entry, "changes"), j, change) {
                if (is_messages_change(change)) read_value(cfg, req, json_object_get(change, "value"), out->events);
            }
        }
    }
    json_decref(root);
    out->status = 200;
    return PL_OK;
}

static int wa_inbound(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                      char **err) {
    if (req->method && strcmp(req->method, "GET") == 0) return handshake(cfg, req, out, err);
    if (verify_signature(cfg, req, out, err) != PL_OK) return PL_ERR;
    return read_delivery(cfg, req, out, err);
}

/* --- outbound ------------------------------------------------------------------ */

typedef struct {
    const pl_channel_config *cfg;
    const pl_outbound *to;
    char *path;     /* "/{phone-number-id}/messages" */
    json_t *calls;  /* the calls rendered so far */
    int first;      /* the number of this reply's first choice (counted over the turn) */
} render_ctx;

/* Appends one message call; content is stolen. */
static void emit(render_ctx *r, const char *type, json_t *content) {
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "messaging_product", "whatsapp",
                             "recipient_type", "individual", "to", r->to->user, "type", type);
    json_object_set_new(body, type, content);
    json_array_append_new(r->calls, pl_channel_call("POST", r->path, body));
}

static void emit_text_part(render_ctx *r, const char *text) {
    json_t *content = json_pack("{s:s}", "body", text);
    if (strstr(text, "https://") || strstr(text, "http://"))
        json_object_set_new(content, "preview_url", json_true());
    emit(r, "text", content);
}

/* Text messages, split (at a line break when there is one late enough)
 * where the text is longer than a text message may be. */
static void emit_text(render_ctx *r, const char *text) {
    const char *rest = text;
    while (pl_channel_text_units(rest) > WA_TEXT_MAX) {
        size_t n = pl_channel_prefix_bytes(rest, WA_TEXT_MAX);
        size_t cut = n;
        while (cut > n / 2 && rest[cut - 1] != '\n') cut--;
        if (cut <= n / 2) cut = n;
        char *part = pl_strndup(rest, cut);
        size_t end = strlen(part);
        while (end > 0 && is_space(part[end - 1])) part[--end] = '\0';
        if (*part) emit_text_part(r, part);
        free(part);
        rest += cut;
    }
    if (*rest) emit_text_part(r, rest);
}

/* An image message per card that has an image, captioned with its title,
 * price and subtitle. */
static void emit_card_images(render_ctx *r, const json_t *cards) {
    size_t i;
    const json_t *card;
    json_array_foreach(cards, i, card) {
        const char *image = str_at(card, "image");
        if (!image) continue;
        const char *title = str_at(card, "title");
        const char *subtitle = str_at(card, "subtitle");
        const json_t *price = json_object_get(card, "price");
        char *amount = str_at(price, "currency") ? pl_channel_price(price, r->to->locale) : NULL;
        /* *bold* is WhatsApp's own formatting */
        char *caption = pl_strdupf("%s%s%s%s%s%s%s", title ? "*" : "", title ? title : "",
                                   title ? "*" : "", amount ? (title ? " — " : "") : "",
                                   amount ? amount : "", subtitle ? "\n" : "", subtitle ? subtitle : "");
        char *cut = pl_channel_shortened(caption, WA_CAPTION_MAX);
        emit(r, "image", json_pack("{s:s, s:s}", "link", image, "caption", cut));
        free(cut);
        free(caption);
        free(amount);
    }
}

/* True when s has something besides white space. */

/* The reply's link when it can be a call-to-action URL button (its url is
 * http or https), borrowed; else NULL. */
static const json_t *button_link(const json_t *reply) {
    const json_t *link = json_object_get(reply, "link");
    const char *url = str_at(link, "url");
    if (!pl_channel_is_web_url(url)) return NULL;
    return link;
}

/* The reply's text with the lines of its cards that have no image, with
 * its choices as numbered lines when numbered, and with a link that cannot
 * be a button (not http or https) as a "Title: URL" line (new string). */
static char *body_text(const render_ctx *r, const json_t *reply, int numbered) {
    json_t *view = json_object();
    const char *text = str_at(reply, "text");
    if (text) json_object_set_new(view, "text", json_string(text));
    json_t *link = json_object_get(reply, "link");
    if (link && !button_link(reply)) json_object_set(view, "link", link);
    json_t *plain_cards = json_array();
    size_t i;
    json_t *card;
    json_array_foreach(json_object_get(reply, "cards"), i, card) {
        if (!str_at(card, "image")) json_array_append(plain_cards, card);
    }
    json_object_set_new(view, "cards", plain_cards);
    if (numbered) json_object_set(view, "choices", json_object_get(reply, "choices"));
    char *body = pl_channel_plain_text(view, r->first, r->to->locale);
    json_decref(view);
    return body;
}

/* The id to send for a payload: the payload itself when the platform takes
 * it as it is, else a short key (see pl_outbound), else NULL. New string. */
static char *choice_id(const render_ctx *r, const char *payload, size_t max) {
    size_t n = strlen(payload);
    if (n > 0 && pl_channel_text_units(payload) <= max && !is_space(payload[0]) && !is_space(payload[n - 1]))
        return pl_strdup(payload);
    return r->to->short_payload ? r->to->short_payload(r->to->payload_ctx, payload) : NULL;
}

static void free_ids(char **ids, size_t n) {
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

/* Ids for every choice, unique within the message (new array of new
 * strings), or NULL when some payload cannot be sent. */
static char **choice_ids(const render_ctx *r, const json_t *choices, size_t max) {
    size_t n = json_array_size(choices);
    char **ids = calloc(n ? n : 1, sizeof *ids);
    if (!ids) abort();
    for (size_t i = 0; i < n; i++) {
        const char *payload = str_at(json_array_get(choices, i), "payload");
        ids[i] = payload ? choice_id(r, payload, max) : NULL;
        int clash = 0;
        for (size_t k = 0; ids[i] && k < i; k++) clash |= strcmp(ids[k], ids[i]) == 0;
        if (!ids[i] || clash) {
            free_ids(ids, i + 1);
            return NULL;
        }
    }
    return ids;
}

/* Reply buttons: 1 to 3 choices with distinct titles of 1 to 20 characters. */
static int fits_buttons(const json_t *choices) {
    size_t n = json_array_size(choices);
    if (n == 0 || n > WA_BUTTONS_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        const char *title = str_at(json_array_get(choices, i), "title");
        if (!title || !*title || pl_channel_text_units(title) > WA_BUTTON_TITLE_MAX) return 0;
        for (size_t k = 0; k < i; k++)
            if (strcmp(title, str_at(json_array_get(choices, k), "title")) == 0) return 0;
    }
    return 1;
}

/* A list: 1 to 10 choices whose titles fit a row (a longer title is cut
 * and shown whole in the row's description, so up to 72 characters). */
static int fits_list(const json_t *choices) {
    size_t n = json_array_size(choices);
    if (n == 0 || n > WA_LIST_ROWS_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        const char *title = str_at(json_array_get(choices, i), "title");
        if (!title || !*title || pl_channel_text_units(title) > WA_ROW_DESCRIPTION_MAX) return 0;
    }
    return 1;
}

static json_t *buttons_content(const json_t *choices, char **ids, const char *body) {
    json_t *buttons = json_array();
    for (size_t i = 0; i < json_array_size(choices); i++)
        json_array_append_new(buttons, json_pack("{s:s, s:{s:s, s:s}}", "type", "reply", "reply", "id",
                                                 ids[i], "title",
                                                 str_at(json_array_get(choices, i), "title")));
    return json_pack("{s:s, s:{s:s}, s:{s:o}}", "type", "button", "body", "text", body, "action",
                     "buttons", buttons);
}

/* The label of the list's button (and its one section's title). */
static char *list_label(const render_ctx *r) {
    const char *configured = pl_channel_setting(r->cfg, "list_button");
    if (configured && *configured) return pl_channel_shortened(configured, WA_LIST_BUTTON_MAX);
    const char *locale = r->to->locale;
    return pl_strdup(locale && strncmp(locale, "ja", 2) == 0 ? "選ぶ" : "Choose");
}

static json_t *list_content(const render_ctx *r, const json_t *choices, char **ids, const char *body) {
    json_t *rows = json_array();
    for (size_t i = 0; i < json_array_size(choices); i++) {
        const char *title = str_at(json_array_get(choices, i), "title");
        char *row_title = pl_channel_shortened(title, WA_ROW_TITLE_MAX);
        json_t *row = json_pack("{s:s, s:s}", "id", ids[i], "title", row_title);
        if (strcmp(row_title, title) != 0) json_object_set_new(row, "description", json_string(title));
        json_array_append_new(rows, row);
        free(row_title);
    }
    char *label = list_label(r);
    char *section = pl_channel_shortened(label, WA_SECTION_TITLE_MAX);
    json_t *content = json_pack("{s:s, s:{s:s}, s:{s:s, s:[{s:s, s:o}]}}", "type", "list", "body",
                                "text", body, "action", "button", label, "sections", "title", section,
                                "rows", rows);
    free(section);
    free(label);
    return content;
}

/* The body of an interactive message whose reply has no text that fits. */
static char *prompt_text(const render_ctx *r) {
    const char *configured = pl_channel_setting(r->cfg, "prompt");
    if (configured && *configured) return pl_channel_shortened(configured, WA_BODY_MAX);
    const char *locale = r->to->locale;
    return pl_strdup(locale && strncmp(locale, "ja", 2) == 0 ? "お選びください。" : "Please choose:");
}

/* The label of a link's button: its title, cut to 20 characters with "…",
 * else "Open link" in the session's language (new string). */
static char *link_label(const render_ctx *r, const char *title) {
    if (pl_channel_has_words(title)) return pl_channel_shortened(title, WA_CTA_DISPLAY_MAX);
    const char *locale = r->to->locale;
    return pl_strdup(locale && strncmp(locale, "ja", 2) == 0 ? "リンクを開く" : "Open link");
}

/* A link (borrowed; its url checked by button_link) as a call-to-action URL
 * button message. The body above the button is text when it has words (the
 * caller keeps it within 1024 characters), else the link's title, else its
 * URL: the platform requires one. */
static void emit_link(render_ctx *r, const json_t *link, const char *text) {
    const char *url = str_at(link, "url");
    const char *title = str_at(link, "title");
    char *label = link_label(r, title);
    char *body = pl_channel_has_words(text) ? pl_strdup(text) : pl_channel_shortened(pl_channel_has_words(title) ? title : url, WA_BODY_MAX);
    emit(r, "interactive",
         json_pack("{s:s, s:{s:s}, s:{s:s, s:{s:s, s:s}}}", "type", "cta_url", "body", "text", body,
                   "action", "name", "cta_url", "parameters", "display_text", label, "url", url));
    free(body);
    free(label);
}

/* Choices as buttons or a list: the images of the cards first, then the
 * interactive message whose body is the reply's text (a text message goes
 * first when that text is too long for an interactive body). */
static void emit_interactive(render_ctx *r, const json_t *reply, int as_buttons, char **ids) {
    const json_t *choices = json_object_get(reply, "choices");
    char *text = body_text(r, reply, 0);
    char *body = NULL;
    if (*text && pl_channel_text_units(text) <= WA_BODY_MAX) {
        body = text;
        text = NULL;
    } else {
        if (*text) emit_text(r, text);
        body = prompt_text(r);
    }
    emit_card_images(r, json_object_get(reply, "cards"));
    emit(r, "interactive", as_buttons ? buttons_content(choices, ids, body)
                                      : list_content(r, choices, ids, body));
    free(body);
    free(text);
}

/* One reply as one or more calls, degrading what WhatsApp cannot show:
 * more than 10 choices (or payloads that cannot be sent) become numbered
 * lines, cards without an image become text lines.
 *
 * A link (a payment page) is a call-to-action URL button, always the
 * reply's last message. Its message carries the reply's text when it can:
 * not when the choices already made an interactive message (a message has
 * one kind of interactive action), nor when the text is too long for an
 * interactive body; then the button comes after, under the link's title. */
static void render_reply(render_ctx *r, const json_t *reply) {
    const json_t *choices = json_object_get(reply, "choices");
    const json_t *link = button_link(reply);
    const char *image = str_at(reply, "image");
    int as_buttons = fits_buttons(choices);
    char **ids = NULL;
    if (as_buttons) ids = choice_ids(r, choices, WA_BUTTON_ID_MAX);
    if (!ids) as_buttons = 0;
    if (!ids && fits_list(choices)) ids = choice_ids(r, choices, WA_ROW_ID_MAX);
    if (ids) {
        emit_interactive(r, reply, as_buttons, ids);
        free_ids(ids, json_array_size(choices));
        if (image) emit(r, "image", json_pack("{s:s}", "link", image));
        if (link) emit_link(r, link, NULL);
        return;
    }
    char *text = body_text(r, reply, json_array_size(choices) > 0);
    if (!link) {
        emit_text(r, text);
        emit_card_images(r, json_object_get(reply, "cards"));
        if (image) emit(r, "image", json_pack("{s:s}", "link", image));
    } else {
        if (pl_channel_text_units(text) > WA_BODY_MAX) {
            emit_text(r, text);
            text[0] = '\0';
        }
        emit_card_images(r, json_object_get(reply, "cards"));
        if (image) emit(r, "image", json_pack("{s:s}", "link", image));
        emit_link(r, link, text);
    }
    free(text);
}

static int wa_render(const pl_channel_config *cfg, const pl_outbound *to, const json_t *replies,
                     json_t **calls, char **err) {
    const char *phone = pl_channel_require(cfg, "phone_number_id", NULL, err);
    if (!phone) return PL_ERR;
    if (!to->user) return pl_fail(err, "whatsapp: no recipient");
    render_ctx r = {cfg, to, pl_strdupf("/%s/messages", phone), json_array(), 1};
    size_t i;
    const json_t *reply;
    json_array_foreach(replies, i, reply) {
        render_reply(&r, reply);
        r.first += (int)json_array_size(json_object_get(reply, "choices"));
    }
    free(r.path);
    *calls = r.calls;
    return PL_OK;
}

/* Every call carries the access token as a Bearer token. */
static int wa_authorize(const pl_channel_config *cfg, json_t *headers, char **url, char **user_pwd,
                        char **err) {
    (void)url;
    (void)user_pwd;
    const char *token = pl_channel_require(cfg, "access_token", NULL, err);
    if (!token) return PL_ERR;
    char *value = pl_strdupf("Bearer %s", token);
    json_object_set_new(headers, "Authorization", json_string(value));
    free(value);
    return PL_OK;
}

const pl_channel_adapter pl_channel_whatsapp = {
    .name = "whatsapp",
    .default_api_base = "https://graph.facebook.com/v19.0",
    .synchronous = 0,
    .inbound = wa_inbound,
    .render = wa_render,
    .answer = NULL,
    .authorize = wa_authorize,
};
