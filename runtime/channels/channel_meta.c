/* channel_meta: what Messenger and Instagram Direct share (channel_meta.h).
 * Both are Meta's Graph API: the same webhook handshake and signature, the
 * same messaging events, the same Send API. This file owns them: the GET
 * verification handshake, the X-Hub-Signature-256 check, parsing of the
 * webhook's messaging events into parley events, the rendering of a turn's
 * replies into Send API calls (text, quick replies, generic-template
 * carousels, images, button templates with a URL button for a reply's
 * link, degraded where the platform has limits; the HUMAN_AGENT tag for a
 * person's words past the 24-hour window), and the access token added at
 * send time. What differs (the webhook's object, the text limit, the
 * token's setting) is the platform's pl_meta_platform; channel_messenger.c
 * and channel_instagram.c are the two adapters. Uses channel.c's helpers
 * and jansson; nothing else.
 *
 * Every platform field used is the one Meta documents:
 *   Webhook setup, verification request (hub.mode, hub.verify_token,
 *   hub.challenge) and payload signature (X-Hub-Signature-256: "sha256=" and
 *   the lower-case hex HMAC-SHA256 of the raw body keyed by the app secret):
 *     https://developers.facebook.com/docs/messenger-platform/webhooks
 *     https://developers.facebook.com/docs/graph-api/webhooks/getting-started
 *   Webhook body ({"object": "page", "entry": [{"id", "time", "messaging":
 *   [...]}]}) and its events:
 *     https://developers.facebook.com/docs/messenger-platform/reference/webhook-events
 *     .../webhook-events/messages          (sender.id, recipient.id, timestamp,
 *                                           message.mid, .text, .quick_reply.payload,
 *                                           .attachments[].type/.payload.url)
 *     .../webhook-events/message-echoes    (message.is_echo)
 *     .../webhook-events/messaging_postbacks (postback.mid, .title, .payload)
 *     .../webhook-events/message-deliveries (delivery.mids, .watermark)
 *     .../webhook-events/message-reads     (read.watermark)
 *   Send API (POST /me/messages?access_token=PAGE_ACCESS_TOKEN with
 *   recipient.id, messaging_type "RESPONSE", message.text of at most 2000
 *   characters or message.attachment):
 *     https://developers.facebook.com/docs/messenger-platform/reference/send-api
 *   Quick replies (at most 13; content_type "text", title at most 20
 *   characters, payload at most 1000 characters):
 *     https://developers.facebook.com/docs/messenger-platform/send-messages/quick-replies
 *   Generic template (attachment type "template", payload.template_type
 *   "generic", at most 10 elements; title and subtitle at most 80
 *   characters, image_url, at most 3 buttons):
 *     https://developers.facebook.com/docs/messenger-platform/reference/template/generic
 *   Postback button (type "postback", title at most 20 characters, payload
 *   at most 1000 characters):
 *     https://developers.facebook.com/docs/messenger-platform/send-messages/buttons/postback
 *   Button template (attachment type "template", payload.template_type
 *   "button", text of at most 640 characters above 1 to 3 buttons):
 *     https://developers.facebook.com/docs/messenger-platform/send-messages/template/button
 *   URL button (type "web_url", url, title at most 20 characters):
 *     https://developers.facebook.com/docs/messenger-platform/send-messages/buttons/url
 *   A message's quick_replies go with its text or its attachment:
 *     https://developers.facebook.com/docs/messenger-platform/reference/buttons/quick-replies
 *   appsecret_proof (hex HMAC-SHA256 of the access token keyed by the app
 *   secret), sent along when the app secret is known:
 *     https://developers.facebook.com/docs/graph-api/securing-requests
 *
 * Character limits are counted in UTF-16 code units (a character outside
 * the Basic Multilingual Plane counts twice), which is never fewer than the
 * characters Meta counts; payload limits are counted in bytes, for the
 * same reason. */
#define _GNU_SOURCE
#include "channel_meta.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/json_shape.h"

enum {
    QUICK_REPLIES_MAX = 13,
    QUICK_REPLY_TITLE_MAX = 20,
    PAYLOAD_MAX = 1000,
    ELEMENTS_MAX = 10,
    ELEMENT_TEXT_MAX = 80,
    BUTTON_TITLE_MAX = 20,
    BUTTON_TEMPLATE_TEXT_MAX = 640,
};

/* --- settings and small helpers ---------------------------------------------- */

/* --- inbound: handshake and signature ----------------------------------------- */

/* GET: Meta's verification request. Answers hub.challenge when
 * hub.mode is "subscribe" and hub.verify_token is the configured one. */
static int handshake(const pl_meta_platform *p, const pl_channel_config *cfg, const pl_webhook *req,
                     pl_inbound *out, char **err) {
    const char *expected = pl_channel_require(cfg, "verify_token", &out->status, err);
    if (!expected) return PL_ERR;
    char *mode = pl_channel_query_param(req->query, "hub.mode");
    char *token = pl_channel_query_param(req->query, "hub.verify_token");
    char *challenge = pl_channel_query_param(req->query, "hub.challenge");
    int rc = PL_ERR;
    if (!mode || !token || !challenge) {
        out->status = 400;
        pl_fail(err, "a %s verification request needs hub.mode, hub.verify_token and hub.challenge", p->title);
    } else if (strcmp(mode, "subscribe") != 0) {
        out->status = 400;
        pl_fail(err, "hub.mode is '%.40s', not 'subscribe'", mode);
    } else if (!pl_channel_signature_equal(token, expected)) {
        out->status = 403;
        pl_fail(err, "hub.verify_token is not the verify_token of this bot's %s channel", cfg->channel);
    } else {
        out->status = 200;
        out->answer = challenge;
        challenge = NULL;
        out->events = json_array();
        rc = PL_OK;
    }
    free(mode);
    free(token);
    free(challenge);
    return rc;
}

/* POST: X-Hub-Signature-256 must be "sha256=" and the HMAC-SHA256 of the
 * raw body keyed by the app secret, compared in constant time. */
static int verify_signature(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                            char **err) {
    const char *secret = pl_channel_require(cfg, "app_secret", &out->status, err);
    if (!secret) return PL_ERR;
    const char *header = req->header ? req->header(req->header_ctx, "X-Hub-Signature-256") : NULL;
    if (!header || strncmp(header, "sha256=", 7) != 0) {
        out->status = 401;
        return pl_fail(err, "no X-Hub-Signature-256: sha256=... header");
    }
    char *expected = pl_channel_hmac_hex("sha256", secret, req->body, req->body_len);
    int equal = pl_channel_hex_signature_equal(header + 7, expected);
    free(expected);
    if (equal) return PL_OK;
    out->status = 403;
    return pl_fail(err, "X-Hub-Signature-256 does not match the body signed with the app secret");
}

/* --- inbound: events ---------------------------------------------------------- */

/* What one webhook's events are parsed with. */
typedef struct {
    const pl_meta_platform *p;
    const pl_webhook *req;
    json_t *events;
} inbound_ctx;

/* The event's timestamp as text (a number in messages, a string in the
 * postback reference), or NULL. */
static char *timestamp_of(const json_t *item) {
    const json_t *t = json_object_get(item, "timestamp");
    if (json_is_integer(t)) return pl_strdupf("%lld", (long long)json_integer_value(t));
    if (json_is_string(t)) return pl_strdup(json_string_value(t));
    return NULL;
}

/* A new message event for sender: its id is the message id, else
 * sender:timestamp (de-duplication); info carries the platform and the
 * page or account it came to. */
static json_t *message_event(const inbound_ctx *x, const json_t *item, const char *sender, const char *mid) {
    json_t *ev = json_pack("{s:s, s:s}", "kind", "message", "user", sender);
    char *ts = mid ? NULL : timestamp_of(item);
    if (mid) json_object_set_new(ev, "id", json_string(mid));
    else if (ts) json_object_set_new(ev, "id", json_sprintf("%s:%s", sender, ts));
    free(ts);
    json_t *info = json_pack("{s:s}", "platform", x->p->name);
    const char *page = pl_json_str(json_object_get(item, "recipient"), "id");
    if (page) json_object_set_new(info, strcmp(x->p->object, "page") == 0 ? "page_id" : "account_id", json_string(page));
    json_object_set_new(ev, "info", info);
    return ev;
}

/* attachments[] as [{type, url?}] for msg.channel.attachments. */
static json_t *attachment_list(const json_t *attachments) {
    json_t *list = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(attachments, i, a) {
        json_t *one = json_object();
        if (pl_json_str(a, "type")) json_object_set_new(one, "type", json_string(pl_json_str(a, "type")));
        const char *url = pl_json_str(json_object_get(a, "payload"), "url");
        if (url) json_object_set_new(one, "url", json_string(url));
        json_array_append_new(list, one);
    }
    return list;
}

/* The story a message is about, for msg.channel.story (new), or NULL:
 * a reply to the account's story (message.reply_to.story: {url, id}) or a
 * mention of the account in the shopper's story (an attachment of type
 * story_mention, its payload.url the story's). */
static json_t *story_of(const json_t *message) {
    const json_t *story = json_object_get(json_object_get(message, "reply_to"), "story");
    if (json_is_object(story))
        return json_pack("{s:s, s:s?, s:s?}", "kind", "reply", "url", pl_json_str(story, "url"), "id", pl_json_str(story, "id"));
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(message, "attachments"), i, a) {
        const char *type = pl_json_str(a, "type");
        if (type && strcmp(type, "story_mention") == 0)
            return json_pack("{s:s, s:s?}", "kind", "mention", "url", pl_json_str(json_object_get(a, "payload"), "url"));
    }
    return NULL;
}

static void add_message(const inbound_ctx *x, const json_t *item, const char *sender) {
    const json_t *message = json_object_get(item, "message");
    if (json_is_true(json_object_get(message, "is_echo"))) return;    /* our own reply */
    if (json_is_true(json_object_get(message, "is_deleted"))) return; /* taken back: nothing to answer */
    json_t *ev = message_event(x, item, sender, pl_json_str(message, "mid"));
    json_t *info = json_object_get(ev, "info");
    const char *text = pl_json_str(message, "text");
    if (text && *text) json_object_set_new(ev, "text", json_string(text));
    const char *payload = pl_json_str(json_object_get(message, "quick_reply"), "payload");
    if (payload) json_object_set_new(ev, "payload", pl_channel_long_payload(x->req, payload));
    const json_t *attachments = json_object_get(message, "attachments");
    if (json_array_size(attachments) > 0) json_object_set_new(info, "attachments", attachment_list(attachments));
    json_t *story = story_of(message);
    if (story) json_object_set_new(info, "story", story);
    json_array_append_new(x->events, ev);
}

/* A tapped postback button: its payload, and its title as what was said. */
static void add_postback(const inbound_ctx *x, const json_t *item, const char *sender) {
    const json_t *postback = json_object_get(item, "postback");
    json_t *ev = message_event(x, item, sender, pl_json_str(postback, "mid"));
    const char *title = pl_json_str(postback, "title");
    if (title && *title) json_object_set_new(ev, "text", json_string(title));
    const char *payload = pl_json_str(postback, "payload");
    if (payload) json_object_set_new(ev, "payload", pl_channel_long_payload(x->req, payload));
    json_array_append_new(x->events, ev);
}

static json_t *status_event(const char *sender, const char *status, const char *mid,
                            const json_t *watermark) {
    json_t *ev = json_pack("{s:s, s:s, s:s}", "kind", "status", "user", sender, "status", status);
    if (mid) json_object_set_new(ev, "id", json_string(mid));
    if (watermark) json_object_set_new(ev, "detail", json_pack("{s:O}", "watermark", watermark));
    return ev;
}

/* delivery: one status per delivered mid; mids may be absent, and then
 * only the watermark says what was delivered. */
static void add_delivery(const json_t *item, const char *sender, json_t *events) {
    const json_t *delivery = json_object_get(item, "delivery");
    const json_t *watermark = json_object_get(delivery, "watermark");
    const json_t *mids = json_object_get(delivery, "mids");
    size_t i;
    json_t *mid;
    json_array_foreach(mids, i, mid) {
        if (json_is_string(mid))
            json_array_append_new(events, status_event(sender, "delivered", json_string_value(mid), watermark));
    }
    if (json_array_size(mids) == 0)
        json_array_append_new(events, status_event(sender, "delivered", NULL, watermark));
}

/* One entry.messaging[] item. A read is Messenger's watermark or
 * Instagram's mid. Events parley does not use (reactions, referrals,
 * opt-ins, standby) are left out without a turn. */
static void add_messaging(const inbound_ctx *x, const json_t *item) {
    const char *sender = pl_json_str(json_object_get(item, "sender"), "id");
    if (!sender) return; /* user_ref senders (plugins) cannot be answered by id */
    const json_t *read = json_object_get(item, "read");
    if (json_is_object(json_object_get(item, "message")))
        add_message(x, item, sender);
    else if (json_is_object(json_object_get(item, "postback")))
        add_postback(x, item, sender);
    else if (json_is_object(json_object_get(item, "delivery")))
        add_delivery(item, sender, x->events);
    else if (json_is_object(read))
        json_array_append_new(x->events, status_event(sender, "read", pl_json_str(read, "mid"), json_object_get(read, "watermark")));
}

/* What add_messaging and the functions it calls read of a webhook;
 * entries and events of other kinds (standby, changes, reactions) are
 * acknowledged unread. A fallback attachment's payload may be null. The
 * sender's id and message ids may not be empty: a session and the
 * de-duplication of retries are keyed by them. */
static const pl_shape_rule body_shape[] = {
    {"entry", PL_SHAPE_ARRAY | PL_SHAPE_REQUIRED},
    {"entry[]", PL_SHAPE_OBJECT},
    {"entry[].messaging", PL_SHAPE_ARRAY},
    {"entry[].messaging[]", PL_SHAPE_OBJECT},
    {"entry[].messaging[].sender", PL_SHAPE_OBJECT},
    {"entry[].messaging[].sender.id", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY},
    {"entry[].messaging[].recipient", PL_SHAPE_OBJECT},
    {"entry[].messaging[].recipient.id", PL_SHAPE_STRING},
    {"entry[].messaging[].timestamp", PL_SHAPE_INTEGER | PL_SHAPE_STRING},
    {"entry[].messaging[].message", PL_SHAPE_OBJECT},
    {"entry[].messaging[].message.mid", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY},
    {"entry[].messaging[].message.text", PL_SHAPE_STRING},
    {"entry[].messaging[].message.is_echo", PL_SHAPE_BOOLEAN},
    {"entry[].messaging[].message.is_deleted", PL_SHAPE_BOOLEAN},
    {"entry[].messaging[].message.quick_reply", PL_SHAPE_OBJECT},
    {"entry[].messaging[].message.quick_reply.payload", PL_SHAPE_STRING},
    {"entry[].messaging[].message.reply_to", PL_SHAPE_OBJECT},
    {"entry[].messaging[].message.reply_to.story", PL_SHAPE_OBJECT},
    {"entry[].messaging[].message.reply_to.story.url", PL_SHAPE_STRING},
    {"entry[].messaging[].message.reply_to.story.id", PL_SHAPE_STRING},
    {"entry[].messaging[].message.attachments", PL_SHAPE_ARRAY},
    {"entry[].messaging[].message.attachments[]", PL_SHAPE_OBJECT},
    {"entry[].messaging[].message.attachments[].type", PL_SHAPE_STRING},
    {"entry[].messaging[].message.attachments[].payload", PL_SHAPE_OBJECT | PL_SHAPE_NULL},
    {"entry[].messaging[].message.attachments[].payload.url", PL_SHAPE_STRING},
    {"entry[].messaging[].postback", PL_SHAPE_OBJECT},
    {"entry[].messaging[].postback.mid", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY},
    {"entry[].messaging[].postback.title", PL_SHAPE_STRING},
    {"entry[].messaging[].postback.payload", PL_SHAPE_STRING},
    {"entry[].messaging[].delivery", PL_SHAPE_OBJECT},
    {"entry[].messaging[].delivery.mids", PL_SHAPE_ARRAY},
    {"entry[].messaging[].delivery.mids[]", PL_SHAPE_STRING},
    {"entry[].messaging[].delivery.watermark", PL_SHAPE_NUMBER},
    {"entry[].messaging[].read", PL_SHAPE_OBJECT},
    {"entry[].messaging[].read.watermark", PL_SHAPE_NUMBER},
    {"entry[].messaging[].read.mid", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY},
};

/* The body: {"object": p->object, "entry": [{"messaging": [...]}, ...]}.
 * One of another object, or of the wrong shape, is refused with 400 naming
 * why. */
static int parse_body(const pl_meta_platform *p, const pl_webhook *req, pl_inbound *out, char **err) {
    json_error_t jerr;
    json_t *root = json_loadb(req->body, req->body_len, 0, &jerr);
    int rc = PL_ERR;
    const char *object = pl_json_str(root, "object");
    char *why = NULL;
    if (!root) {
        pl_fail(err, "the body is not JSON: %s (line %d)", jerr.text, jerr.line);
    } else if (!object || strcmp(object, p->object) != 0) {
        pl_fail(err, "the body's object is '%.40s', not '%s' (%s)", object ? object : "(none)", p->object,
                p->object_hint);
    } else if (pl_json_shape_check(root, NULL, body_shape, sizeof body_shape / sizeof *body_shape, &why) != PL_OK) {
        pl_fail(err, "the body is not a %s webhook of the documented shape: %s", p->title, why);
    } else {
        inbound_ctx x = {p, req, json_array()};
        size_t i, j;
        json_t *entry, *item;
        json_array_foreach(json_object_get(root, "entry"), i, entry) {
            json_array_foreach(json_object_get(entry, "messaging"), j, item) add_messaging(&x, item);
        }
        out->events = x.events;
        out->status = 200;
        rc = PL_OK;
    }
    if (rc != PL_OK) out->status = 400;
    free(why);
    json_decref(root);
    return rc;
}

int pl_meta_inbound(const pl_meta_platform *p, const pl_channel_config *cfg, const pl_webhook *req,
                    pl_inbound *out, char **err) {
    if (strcmp(req->method, "GET") == 0) return handshake(p, cfg, req, out, err);
    if (verify_signature(cfg, req, out, err) != PL_OK) return PL_ERR;
    return parse_body(p, req, out, err);
}

/* --- outbound ---------------------------------------------------------------- */

typedef struct {
    const pl_meta_platform *p;
    const pl_outbound *to;
    const char *card_button; /* the title of a card's postback button */
    json_t *calls;           /* the API calls so far, in sending order */
    int next_choice;         /* the number of the turn's next choice: typed numbers
                              * count across all replies (the engine's offered list) */
} render_ctx;

/* The choices as quick_replies (new), or NULL when they cannot all be:
 * more than 13, an empty title, or a payload that fits nowhere. */
static json_t *quick_replies(const render_ctx *r, const json_t *choices) {
    if (json_array_size(choices) > QUICK_REPLIES_MAX) return NULL;
    json_t *list = json_array();
    size_t i;
    json_t *choice;
    json_array_foreach(choices, i, choice) {
        const char *title = pl_json_str(choice, "title"), *payload = pl_json_str(choice, "payload");
        char *fitted = title && *title ? pl_channel_fitting_payload(r->to, payload ? payload : title, PAYLOAD_MAX) : NULL;
        if (!fitted) {
            json_decref(list);
            return NULL;
        }
        char *short_title = pl_channel_shortened(title, QUICK_REPLY_TITLE_MAX);
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "content_type", "text", "title",
                                              short_title, "payload", fitted));
        free(short_title);
        free(fitted);
    }
    return list;
}

/* Bytes of the longest prefix of s that fits the platform's text limit
 * (counted in UTF-8 bytes or UTF-16 units); it ends on a character
 * boundary. */
static size_t text_prefix(const pl_meta_platform *p, const char *s) {
    return p->text_in_bytes ? pl_channel_prefix_utf8(s, p->text_max) : pl_channel_prefix_bytes(s, p->text_max);
}

/* Appends text as messages within the platform's limit (2000 characters
 * on Messenger, 1000 bytes on Instagram), broken after a line or a word
 * where one is near the end of a piece. */
static void add_text(const render_ctx *r, json_t *messages, const char *text) {
    const char *p = text;
    while (*p) {
        size_t skip, n = pl_channel_piece_end(p, text_prefix(r->p, p), &skip);
        json_array_append_new(messages, json_pack("{s:s%}", "text", p, n));
        p += n + skip;
    }
}

/* "€2.50 · description" for a card's subtitle (new). */
static char *card_subtitle(const render_ctx *r, const json_t *card) {
    const json_t *price = json_object_get(card, "price");
    const char *subtitle = pl_json_str(card, "subtitle");
    char *amount = json_is_object(price) && pl_json_str(price, "currency") ? pl_channel_price(price, r->to->locale) : NULL;
    char *joined = amount && subtitle ? pl_strdupf("%s · %s", amount, subtitle)
                                      : pl_strdup(amount ? amount : subtitle);
    char *fitted = pl_channel_shortened(joined, ELEMENT_TEXT_MAX);
    free(joined);
    free(amount);
    return fitted;
}

/* One generic-template element for a card (new). */
static json_t *card_element(const render_ctx *r, const json_t *card) {
    const char *title = pl_json_str(card, "title");
    char *short_title = pl_channel_shortened(title && *title ? title : "…", ELEMENT_TEXT_MAX);
    json_t *el = json_pack("{s:s}", "title", short_title);
    free(short_title);
    char *subtitle = card_subtitle(r, card);
    if (*subtitle) json_object_set_new(el, "subtitle", json_string(subtitle));
    free(subtitle);
    const char *image = pl_json_str(card, "image");
    if (pl_channel_is_web_url(image))
        json_object_set_new(el, "image_url", json_string(image));
    const char *payload = pl_json_str(card, "payload");
    char *fitted = payload ? pl_channel_fitting_payload(r->to, payload, PAYLOAD_MAX) : NULL;
    if (fitted) {
        char *label = pl_channel_shortened(r->card_button, BUTTON_TITLE_MAX);
        json_object_set_new(el, "buttons", json_pack("[{s:s, s:s, s:s}]", "type", "postback", "title",
                                                     label, "payload", fitted));
        free(label);
    }
    free(fitted);
    return el;
}

/* Appends the cards as carousels of at most 10 elements. An element needs
 * something besides its title; a card with nothing more (no price, image,
 * description or payload) is a line of text after the carousels instead. */
static void add_carousels(const render_ctx *r, json_t *messages, const json_t *cards) {
    json_t *elements = json_array();
    char *lines = NULL;
    size_t i;
    json_t *card;
    json_array_foreach(cards, i, card) {
        json_t *el = card_element(r, card);
        if (json_object_size(el) > 1) {
            json_array_append_new(elements, el);
        } else {
            char *joined = pl_strdupf("%s%s• %s", lines ? lines : "", lines ? "\n" : "", pl_json_str(el, "title"));
            free(lines);
            lines = joined;
            json_decref(el);
        }
        size_t n = json_array_size(elements);
        if (n == ELEMENTS_MAX || (n > 0 && i + 1 == json_array_size(cards))) {
            json_t *payload = json_pack("{s:s, s:o}", "template_type", "generic", "elements", elements);
            json_array_append_new(messages, json_pack("{s:{s:s, s:o}}", "attachment", "type", "template",
                                                      "payload", payload));
            elements = json_array();
        }
    }
    json_decref(elements);
    if (lines) add_text(r, messages, lines);
    free(lines);
}

/* The reply's link when it can be a URL button (its url is http or https),
 * borrowed; else NULL. */
static const json_t *button_link(const json_t *reply) {
    const json_t *link = json_object_get(reply, "link");
    const char *url = pl_json_str(link, "url");
    if (!pl_channel_is_web_url(url)) return NULL;
    return link;
}

/* The text of a reply (new): its text, its choices numbered as the turn
 * counts them when numbered (they cannot be quick replies), and a link that
 * cannot be a button as a "Title: URL" line. */
static char *reply_text(const render_ctx *r, const json_t *reply, int numbered) {
    json_t *view = json_pack("{s:O?}", "text", json_object_get(reply, "text"));
    if (numbered) json_object_set(view, "choices", json_object_get(reply, "choices"));
    json_t *link = json_object_get(reply, "link");
    if (link && !button_link(reply)) json_object_set(view, "link", link);
    char *text = pl_channel_plain_text(view, r->next_choice, r->to->locale);
    json_decref(view);
    return text;
}

/* Appends a link (borrowed; its url checked by button_link) as a button
 * template: a text above one URL button titled with the link's title (cut
 * to 20 characters with "…"; "Open link" in the session's language when it
 * has none). The text is `text` when it has words (the caller keeps it
 * within 640 characters), else the link's title, else its URL: the
 * template requires one. */
static void add_link(const render_ctx *r, json_t *messages, const json_t *link, const char *text) {
    const char *url = pl_json_str(link, "url"), *title = pl_json_str(link, "title");
    char *label = pl_channel_link_label(title, BUTTON_TITLE_MAX, r->to->locale);
    char *above = pl_channel_shortened(pl_channel_has_words(text) ? text : pl_channel_has_words(title) ? title : url, BUTTON_TEMPLATE_TEXT_MAX);
    json_t *payload = json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}", "template_type", "button", "text", above,
                                "buttons", "type", "web_url", "url", url, "title", label);
    json_array_append_new(messages, json_pack("{s:{s:s, s:o}}", "attachment", "type", "template",
                                              "payload", payload));
    free(above);
    free(label);
}

/* Appends an image reply (an http or https URL) as an image attachment. */
static void add_image(json_t *messages, const char *image) {
    if (!pl_channel_is_web_url(image)) return;
    json_array_append_new(messages, json_pack("{s:{s:s, s:{s:s, s:b}}}", "attachment", "type", "image",
                                              "payload", "url", image, "is_reusable", 1));
}

/* A message's call: a reply (RESPONSE) within the messaging window; past
 * it (the outbox let it through: a person's words), tagged HUMAN_AGENT. */
static json_t *send_call(const render_ctx *r, const json_t *message) {
    json_t *body = json_pack("{s:{s:s}, s:O}", "recipient", "id", r->to->user, "message", message);
    if (r->to->outside_window) {
        json_object_set_new(body, "messaging_type", json_string("MESSAGE_TAG"));
        json_object_set_new(body, "tag", json_string("HUMAN_AGENT"));
    } else {
        json_object_set_new(body, "messaging_type", json_string("RESPONSE"));
    }
    return pl_channel_call("POST", "/me/messages", body);
}

/* One reply: its text (with numbered choices when they cannot be quick
 * replies), its image, then its cards as carousels; the quick replies go
 * on the last message, the one the platform shows them under. A link (a
 * payment page) is a button template that carries the text when it fits
 * one (640 characters); a longer text goes first and the button follows
 * under the link's title. */
static void render_reply(render_ctx *r, const json_t *reply) {
    const json_t *choices = json_object_get(reply, "choices");
    const json_t *cards = json_object_get(reply, "cards");
    const json_t *link = button_link(reply);
    const char *text = pl_json_str(reply, "text");
    int has_text = text && *text;
    json_t *quick = json_array_size(choices) > 0 && (has_text || json_array_size(cards) > 0 || link)
                        ? quick_replies(r, choices) : NULL;
    char *body = reply_text(r, reply, !quick && json_array_size(choices) > 0);
    r->next_choice += (int)json_array_size(choices);
    json_t *messages = json_array();
    if (link && pl_channel_text_units(body) <= BUTTON_TEMPLATE_TEXT_MAX) {
        add_link(r, messages, link, body);
    } else {
        add_text(r, messages, body);
        if (link) add_link(r, messages, link, NULL);
    }
    free(body);
    add_image(messages, pl_json_str(reply, "image"));
    add_carousels(r, messages, cards);
    if (quick) json_object_set_new(json_array_get(messages, json_array_size(messages) - 1), "quick_replies", quick);
    size_t i;
    json_t *message;
    json_array_foreach(messages, i, message) json_array_append_new(r->calls, send_call(r, message));
    json_decref(messages);
}

int pl_meta_render(const pl_meta_platform *p, const pl_channel_config *cfg, const pl_outbound *to,
                   const json_t *replies, json_t **calls, char **err) {
    if (!to->user) return pl_fail(err, "no %s recipient to send to", p->title);
    render_ctx r = {p, to, pl_channel_card_button(cfg, to->locale), json_array(), 1};
    size_t i;
    json_t *reply;
    json_array_foreach(replies, i, reply) render_reply(&r, reply);
    *calls = r.calls;
    return PL_OK;
}

/* The access token goes in the access_token query parameter (as the Send
 * API reference writes it), with appsecret_proof when the app secret is
 * known; neither is ever stored in the outbox. */
int pl_meta_authorize(const pl_meta_platform *p, const pl_channel_config *cfg, json_t *headers, char **url,
                      char **err) {
    (void)headers;
    const char *token = pl_channel_require(cfg, p->token_setting, NULL, err);
    if (!token) return PL_ERR;
    const char *secret = pl_channel_setting(cfg, "app_secret");
    char *encoded = pl_channel_percent_encode(token);
    char *proof = secret ? pl_channel_hmac_hex("sha256", secret, token, strlen(token)) : NULL;
    char *with = pl_strdupf("%s%caccess_token=%s%s%s", *url, strchr(*url, '?') ? '&' : '?', encoded,
                            proof ? "&appsecret_proof=" : "", proof ? proof : "");
    free(encoded);
    free(proof);
    free(*url);
    *url = with;
    return PL_OK;
}

/* The Graph API reports throttling and temporary failures with a 4xx too:
 * error codes 1, 2, 4, 17, 32, 341, 613 or "is_transient": true
 * (https://developers.facebook.com/docs/graph-api/guides/error-handling). */
void pl_meta_retry_hint(long status, const char *body, int *retry, long *delay_s) {
    (void)status;
    (void)delay_s;
    json_t *j = json_loads(body ? body : "", 0, NULL);
    json_t *error = json_object_get(j, "error");
    json_int_t code = json_integer_value(json_object_get(error, "code"));
    static const json_int_t transient[] = {1, 2, 4, 17, 32, 341, 613};
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
        if (code == transient[i]) *retry = 1;
    if (json_is_true(json_object_get(error, "is_transient"))) *retry = 1;
    json_decref(j);
}
