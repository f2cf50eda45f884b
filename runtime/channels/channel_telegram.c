/* channel_telegram: the Telegram Bot API adapter (see channel.h).
 *
 * Owns: checking a webhook's secret header, turning an Update (a message or
 * a tapped inline button) into parley events, rendering replies into Bot API
 * calls (sendMessage with an inline keyboard, sendPhoto for product cards,
 * answerCallbackQuery as a tap's "ack"), and putting the bot token into the
 * method URL at send time. Uses channel.c's helpers (settings, HMAC and
 * constant-time compare from libcrypto, plain-text fallbacks, prices) and
 * jansson; sending, retries and the payload map are the core's.
 *
 * Every platform field used here follows the Bot API documentation,
 * https://core.telegram.org/bots/api — each section by its anchor:
 *   #making-requests        POST https://api.telegram.org/bot<token>/METHOD with a JSON body
 *   #setwebhook             secret_token comes back in "X-Telegram-Bot-Api-Secret-Token"
 *   #update                 update_id (reused at random after a week without updates),
 *                           message, callback_query
 *   #message                message_id, from, chat, text, caption, contact; the content
 *                           fields (photo, sticker, voice, location ...) name its kind
 *   #user                   id, first_name, last_name, username, language_code (IETF tag)
 *   #chat                   id, type, title, first_name, last_name
 *   #contact                phone_number, user_id
 *   #callbackquery          id, from, message (MaybeInaccessibleMessage: its chat), data
 *   #sendmessage            chat_id (Integer or String), text (1-4096 characters),
 *                           reply_markup
 *   #sendphoto              chat_id, photo (an HTTP URL), caption (0-1024 characters),
 *                           reply_markup
 *   #inlinekeyboardmarkup   inline_keyboard: rows of InlineKeyboardButton
 *   #inlinekeyboardbutton   text, callback_data (1-64 bytes), url
 *   #answercallbackquery    callback_query_id (needed after every tap, or the app spins)
 * Telegram counts text length in UTF-16 code units (its entity offsets are
 * UTF-16, https://core.telegram.org/api/entities#entity-length); counting
 * so here never undercounts. */
#define _GNU_SOURCE
#include "channel.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/json_shape.h"

#define TG_DEFAULT_API_BASE "https://api.telegram.org"
#define TG_SECRET_HEADER "X-Telegram-Bot-Api-Secret-Token"
#define TG_TEXT_MAX 4096
#define TG_CAPTION_MAX 1024
#define TG_CALLBACK_DATA_MAX 64
/* Buttons go two to a row when every title is at most this long. */
#define TG_SHORT_TITLE 16

/* --- text measured the way Telegram measures it ------------------------------ */

/* Where to end a chunk of s that must be at most cut bytes: the last blank
 * line, else line break, else space in its second half (so chunks are not
 * tiny), else cut itself. *skip is the separator's length. */
static size_t chunk_end(const char *s, size_t cut, size_t *skip) {
    static const char *const separators[] = {"\n\n", "\n", " "};
    for (size_t k = 0; k < sizeof separators / sizeof *separators; k++) {
        size_t len = strlen(separators[k]);
        for (size_t i = cut - len + 1; i-- > cut / 2;) {
            if (memcmp(s + i, separators[k], len) == 0) {
                *skip = len;
                return i;
            }
        }
    }
    *skip = 0;
    return cut;
}

/* text split into chunks of at most TG_TEXT_MAX units (new array). */
static json_t *split_text(const char *text) {
    json_t *chunks = json_array();
    const char *p = text;
    while (pl_channel_text_units(p) > TG_TEXT_MAX) {
        size_t skip = 0;
        size_t end = chunk_end(p, pl_channel_prefix_bytes(p, TG_TEXT_MAX), &skip);
        json_array_append_new(chunks, json_stringn(p, end));
        p += end + skip;
    }
    if (*p) json_array_append_new(chunks, json_string(p));
    return chunks;
}

/* --- inbound ------------------------------------------------------------------ */

/* The secret header against the secret_token setting. Both are reduced to
 * an HMAC of one length before the constant-time compare, so neither the
 * contents nor the length of the secret show in the timing. */
static int check_secret(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                        char **err) {
    const char *expected = pl_channel_require(cfg, "secret_token", &out->status, err);
    if (!expected) return PL_ERR;
    const char *got = req->header ? req->header(req->header_ctx, TG_SECRET_HEADER) : NULL;
    if (!got || !*got) {
        out->status = 401;
        return pl_fail(err, "no %s header: set the webhook with setWebhook's secret_token",
                       TG_SECRET_HEADER);
    }
    static const char key[] = "parley telegram secret";
    char *want = pl_channel_hmac_hex("sha256", key, expected, strlen(expected));
    char *have = pl_channel_hmac_hex("sha256", key, got, strlen(got));
    int equal = pl_channel_signature_equal(have, want);
    free(want);
    free(have);
    if (equal) return PL_OK;
    out->status = 403;
    return pl_fail(err, "the %s header does not match the channel's secret_token",
                   TG_SECRET_HEADER);
}

/* A Telegram id (an integer) as a string, or NULL. */
static char *id_text(const json_t *id) {
    if (json_is_integer(id)) return pl_strdupf("%lld", (long long)json_integer_value(id));
    if (json_is_string(id)) return pl_strdup(json_string_value(id));
    return NULL;
}

static const char *field(const json_t *object, const char *key) {
    return json_string_value(json_object_get(object, key));
}

/* "First Last" of a User or Chat, or NULL when it has neither. */
static char *display_name(const json_t *who) {
    const char *first = field(who, "first_name"), *last = field(who, "last_name");
    if (first && last) return pl_strdupf("%s %s", first, last);
    if (first || last) return pl_strdup(first ? first : last);
    return field(who, "title") ? pl_strdup(field(who, "title")) : NULL;
}

/* The facts msg.channel shows a flow (new object). The phone is only the
 * sender's own: a shared contact carries user_id, and a forwarded
 * stranger's card must not become the shopper's number. */
static json_t *sender_info(const json_t *from, const json_t *chat, const json_t *contact) {
    json_t *info = json_pack("{s:s}", "platform", "telegram");
    char *name = display_name(from ? from : chat);
    if (name) json_object_set_new(info, "display_name", json_string(name));
    free(name);
    if (field(from, "username"))
        json_object_set_new(info, "username", json_string(field(from, "username")));
    if (field(chat, "type"))
        json_object_set_new(info, "chat_type", json_string(field(chat, "type")));
    const json_t *owner = json_object_get(contact, "user_id");
    if (field(contact, "phone_number") && owner && json_equal(owner, json_object_get(from, "id")))
        json_object_set_new(info, "phone", json_string(field(contact, "phone_number")));
    return info;
}

/* A message event for the chat; the strings are copied. type names what
 * was sent: a Message field ("text", "photo" ...) or "callback_query". */
static json_t *new_event(const char *id, const char *user, const json_t *from, const json_t *chat,
                         const json_t *contact, const char *type) {
    json_t *event = json_pack("{s:s, s:s, s:s}", "kind", "message", "id", id, "user", user);
    json_t *info = sender_info(from, chat, contact);
    json_object_set_new(info, "type", json_string(type));
    json_object_set_new(event, "info", info);
    if (field(from, "language_code"))
        json_object_set_new(event, "locale", json_string(field(from, "language_code")));
    return event;
}

/* The kinds of content a shopper can send (Message's fields). A message
 * with none of them is a service message (a member joined, a pin ...).
 * animation comes before document and venue before location, since such
 * messages carry both fields. */
static const char *content_kind(const json_t *message) {
    static const char *const kinds[] = {
        "text",    "photo",   "animation", "video",    "video_note", "voice", "audio", "document",
        "sticker", "contact", "venue",     "location", "poll",       "dice",  "game",  "story",
        "paid_media",
    };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (json_object_get(message, kinds[i])) return kinds[i];
    return NULL;
}

/* Update.message: what a shopper sent becomes an event with its text (or
 * a photo's caption); other content (a sticker, a voice note, a location)
 * arrives without text and with msg.channel.type naming it, so a flow can
 * answer it. Service messages are acknowledged and left alone. The id adds
 * chat and message id to update_id, which Telegram may reuse after a week
 * without updates. */
static void parse_message(const char *update_id, const json_t *message, json_t *events) {
    const json_t *chat = json_object_get(message, "chat");
    const char *kind = content_kind(message);
    const char *text = field(message, "text") ? field(message, "text") : field(message, "caption");
    char *user = id_text(json_object_get(chat, "id"));
    char *message_id = id_text(json_object_get(message, "message_id"));
    if (user && kind) {
        char *id = pl_strdupf("%s:%s:%s", update_id, user, message_id ? message_id : "");
        json_t *event = new_event(id, user, json_object_get(message, "from"), chat,
                                  json_object_get(message, "contact"), kind);
        if (text) json_object_set_new(event, "text", json_string(text));
        json_array_append_new(events, event);
        free(id);
    }
    free(user);
    free(message_id);
}

/* callback_data back to the choice's payload: a "~" key is looked up in
 * the payload map; an unknown key arrives as it is (the flow will not
 * recognise it and asks again) rather than failing the update. */
static char *tapped_payload(const pl_webhook *req, const char *data) {
    if (data[0] == '~' && req->long_payload) {
        char *payload = req->long_payload(req->payload_ctx, data);
        if (payload) return payload;
    }
    return pl_strdup(data);
}

/* Update.callback_query: a tapped inline button is a message with the
 * button's payload, and its "ack" answers the query so the shopper's app
 * stops its progress indicator. The chat is the message's; a button on an
 * inline-mode message has none, and then the sender's private chat (whose
 * id is the user's) is used. Queries without data (games) are left alone. */
static void parse_callback(const pl_webhook *req, const char *update_id, const json_t *query,
                           json_t *events) {
    const char *query_id = field(query, "id"), *data = field(query, "data");
    const json_t *from = json_object_get(query, "from");
    const json_t *chat = json_object_get(json_object_get(query, "message"), "chat");
    char *user = id_text(json_object_get(chat ? chat : from, "id"));
    if (query_id && data && user) {
        char *id = pl_strdupf("%s:%s", update_id, query_id);
        json_t *event = new_event(id, user, from, chat, NULL, "callback_query");
        char *payload = tapped_payload(req, data);
        json_object_set_new(event, "payload", json_string(payload));
        json_object_set_new(event, "ack",
                            pl_channel_call("POST", "/answerCallbackQuery",
                                            json_pack("{s:s}", "callback_query_id", query_id)));
        json_array_append_new(events, event);
        free(payload);
        free(id);
    }
    free(user);
}

/* What parse_message and parse_callback read of an Update; other kinds of
 * update (edited_message, inline_query ...) are acknowledged unread. */
static const pl_shape_rule update_shape[] = {
    {"update_id", PL_SHAPE_INTEGER | PL_SHAPE_REQUIRED},
    {"message", PL_SHAPE_OBJECT},
    {"message.message_id", PL_SHAPE_INTEGER},
    {"message.from", PL_SHAPE_OBJECT},
    {"message.from.id", PL_SHAPE_INTEGER},
    {"message.from.first_name", PL_SHAPE_STRING},
    {"message.from.last_name", PL_SHAPE_STRING},
    {"message.from.username", PL_SHAPE_STRING},
    {"message.from.language_code", PL_SHAPE_STRING},
    {"message.chat", PL_SHAPE_OBJECT | PL_SHAPE_REQUIRED},
    {"message.chat.id", PL_SHAPE_INTEGER | PL_SHAPE_REQUIRED},
    {"message.chat.type", PL_SHAPE_STRING},
    {"message.chat.title", PL_SHAPE_STRING},
    {"message.chat.first_name", PL_SHAPE_STRING},
    {"message.chat.last_name", PL_SHAPE_STRING},
    {"message.text", PL_SHAPE_STRING},
    {"message.caption", PL_SHAPE_STRING},
    {"message.contact", PL_SHAPE_OBJECT},
    {"message.contact.phone_number", PL_SHAPE_STRING},
    {"message.contact.user_id", PL_SHAPE_INTEGER},
    {"callback_query", PL_SHAPE_OBJECT},
    {"callback_query.id", PL_SHAPE_STRING | PL_SHAPE_REQUIRED},
    {"callback_query.data", PL_SHAPE_STRING},
    {"callback_query.from", PL_SHAPE_OBJECT | PL_SHAPE_REQUIRED},
    {"callback_query.from.id", PL_SHAPE_INTEGER | PL_SHAPE_REQUIRED},
    {"callback_query.from.first_name", PL_SHAPE_STRING},
    {"callback_query.from.last_name", PL_SHAPE_STRING},
    {"callback_query.from.username", PL_SHAPE_STRING},
    {"callback_query.from.language_code", PL_SHAPE_STRING},
    {"callback_query.message", PL_SHAPE_OBJECT},
    {"callback_query.message.chat", PL_SHAPE_OBJECT | PL_SHAPE_REQUIRED},
    {"callback_query.message.chat.id", PL_SHAPE_INTEGER | PL_SHAPE_REQUIRED},
    {"callback_query.message.chat.type", PL_SHAPE_STRING},
    {"callback_query.message.chat.title", PL_SHAPE_STRING},
    {"callback_query.message.chat.first_name", PL_SHAPE_STRING},
    {"callback_query.message.chat.last_name", PL_SHAPE_STRING},
};

/* The Update in the body (new), or NULL with *err: not JSON, not an
 * object, or not of the documented shape (the place named). */
static json_t *read_update(const pl_webhook *req, char **err) {
    json_error_t jerr;
    json_t *update = json_loadb(req->body ? req->body : "", req->body_len, 0, &jerr);
    char *why = NULL;
    if (!json_is_object(update))
        pl_fail(err, "not a Telegram Update: %s", update ? "not a JSON object" : jerr.text);
    else if (pl_json_shape_check(update, NULL, update_shape, sizeof update_shape / sizeof *update_shape, &why) != PL_OK)
        pl_fail(err, "not a Telegram Update of the documented shape: %s", why);
    else return update;
    free(why);
    json_decref(update);
    return NULL;
}

static int tg_inbound(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                      char **err) {
    if (check_secret(cfg, req, out, err) != PL_OK) return PL_ERR;
    if (req->method && strcmp(req->method, "POST") != 0) {
        out->status = 405;
        return pl_fail(err, "Telegram delivers updates with POST");
    }
    json_t *update = read_update(req, err);
    if (!update) {
        out->status = 400;
        return PL_ERR;
    }
    char *update_id = id_text(json_object_get(update, "update_id"));
    out->events = json_array();
    const json_t *message = json_object_get(update, "message");
    const json_t *query = json_object_get(update, "callback_query");
    if (message) parse_message(update_id, message, out->events);
    else if (query) parse_callback(req, update_id, query, out->events);
    /* other kinds (edited_message, channel_post, inline_query,
     * my_chat_member ...) are acknowledged without events */
    free(update_id);
    json_decref(update);
    return PL_OK;
}

/* --- outbound ------------------------------------------------------------------ */

/* sendMessage's chat_id is "Integer or String": chat ids are integers,
 * "@channelusername" a string. */
static json_t *chat_id(const char *user) {
    const char *p = user[0] == '-' ? user + 1 : user;
    size_t digits = strspn(p, "0123456789");
    if (digits > 0 && digits <= 18 && p[digits] == '\0')
        return json_integer(strtoll(user, NULL, 10));
    return json_string(user);
}

/* callback_data for a payload (new string): the payload itself when it
 * fits in 64 bytes, else a short key from the payload map. Payloads that
 * begin with "~" are mapped too, so that every "~" tap is a key. */
static char *callback_data(const pl_outbound *to, const char *payload) {
    size_t len = strlen(payload);
    if (len >= 1 && len <= TG_CALLBACK_DATA_MAX && payload[0] != '~') return pl_strdup(payload);
    if (to->short_payload) return to->short_payload(to->payload_ctx, payload);
    /* outside a commit there is no map: the key is still the one the map
     * would hold, so a later mapping of the same payload resolves it */
    return pl_channel_payload_key(payload);
}

/* One InlineKeyboardButton (new). */
static json_t *button(const pl_outbound *to, const char *title, const char *payload) {
    char *data = callback_data(to, payload ? payload : "");
    const char *text = title && *title ? title : (payload && *payload ? payload : "?");
    json_t *b = json_pack("{s:s, s:s}", "text", text, "callback_data", data);
    free(data);
    return b;
}

/* Buttons (array, borrowed) laid out as an InlineKeyboardMarkup (new), or
 * NULL when there are none: two to a row when all titles are short. */
static json_t *keyboard(const json_t *buttons) {
    size_t n = json_array_size(buttons);
    if (n == 0) return NULL;
    size_t per_row = 2, i;
    json_t *b;
    json_array_foreach(buttons, i, b) {
        if (pl_channel_text_units(field(b, "text")) > TG_SHORT_TITLE) per_row = 1;
    }
    json_t *rows = json_array(), *row = NULL;
    json_array_foreach(buttons, i, b) {
        if (i % per_row == 0) json_array_append_new(rows, row = json_array());
        json_array_append(row, b);
    }
    return json_pack("{s:o}", "inline_keyboard", rows);
}

/* What one reply becomes, gathered before the calls are made. */
typedef struct {
    json_t *buttons;    /* the keyboard's buttons, in order */
    json_t *flat_cards; /* cards without an image: shown as text lines */
    json_t *photo_cards;
} reply_parts;

static int has_data(const json_t *buttons, const char *data) {
    size_t i;
    json_t *b;
    json_array_foreach(buttons, i, b) {
        const char *other = field(b, "callback_data");
        if (data && other && strcmp(other, data) == 0) return 1;
    }
    return 0;
}

/* A card goes to the photos when it has a picture, else to the text lines
 * and, unless a choice already offers its payload, to the keyboard. */
static void gather_card(const pl_outbound *to, json_t *card, reply_parts *parts) {
    if (field(card, "image")) {
        json_array_append(parts->photo_cards, card);
        return;
    }
    json_array_append(parts->flat_cards, card);
    if (!field(card, "payload")) return;
    json_t *b = button(to, field(card, "title"), field(card, "payload"));
    if (!has_data(parts->buttons, field(b, "callback_data"))) json_array_append(parts->buttons, b);
    json_decref(b);
}

/* A link ({"url", "title"}: a payment page) is a URL button. */
static void gather_link(const json_t *link, reply_parts *parts) {
    const char *url = field(link, "url"), *title = field(link, "title");
    if (!url) return;
    json_t *b = json_pack("{s:s, s:s}", "text", title && *title ? title : url, "url", url);
    json_array_append_new(parts->buttons, b);
}

static void gather(const pl_outbound *to, const json_t *reply, reply_parts *parts) {
    parts->buttons = json_array();
    parts->flat_cards = json_array();
    parts->photo_cards = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(reply, "choices"), i, item) {
        if (json_is_object(item))
            json_array_append_new(parts->buttons,
                                  button(to, field(item, "title"), field(item, "payload")));
    }
    json_array_foreach(json_object_get(reply, "cards"), i, item) {
        if (json_is_object(item)) gather_card(to, item, parts);
    }
    gather_link(json_object_get(reply, "link"), parts);
}

static void parts_clear(reply_parts *parts) {
    json_decref(parts->buttons);
    json_decref(parts->flat_cards);
    json_decref(parts->photo_cards);
}

/* The text of the reply's message (new string, possibly ""): its text and
 * the lines of picture-less cards. sendMessage needs a text, so a keyboard
 * without one gets its choices as numbered lines (or its first title). */
static char *message_text(const json_t *reply, const reply_parts *parts, int first_choice,
                          const char *locale) {
    const char *said = field(reply, "text");
    /* Telegram refuses a text of only white space ("message text is empty") */
    int has_text = said && said[strspn(said, " \t\r\n")];
    json_t *shown = json_object();
    if (has_text) json_object_set_new(shown, "text", json_string(said));
    json_object_set(shown, "cards", parts->flat_cards);
    if (json_array_size(parts->buttons) > 0 && !has_text && json_array_size(parts->flat_cards) == 0)
        json_object_set(shown, "choices", json_object_get(reply, "choices"));
    char *text = pl_channel_plain_text(shown, first_choice, locale);
    json_decref(shown);
    if (*text || json_array_size(parts->buttons) == 0) return text;
    free(text);
    return pl_strdup(field(json_array_get(parts->buttons, 0), "text"));
}

/* sendMessage calls for text (chunks of at most 4096), the keyboard (new
 * or NULL, stolen) on the last. */
static void add_messages(json_t *calls, const char *user, const char *text, json_t *markup) {
    json_t *chunks = split_text(text);
    size_t n = json_array_size(chunks), i;
    json_t *chunk;
    json_array_foreach(chunks, i, chunk) {
        json_t *body = json_pack("{s:o, s:O}", "chat_id", chat_id(user), "text", chunk);
        if (i + 1 == n && markup) json_object_set(body, "reply_markup", markup);
        json_array_append_new(calls, pl_channel_call("POST", "/sendMessage", body));
    }
    json_decref(markup);
    json_decref(chunks);
}

/* A card's caption: "Title — €2.50", then its subtitle (new string). */
static char *card_caption(const json_t *card, const char *locale) {
    const json_t *price = json_object_get(card, "price");
    char *amount = json_is_object(price) ? pl_channel_price(price, locale) : NULL;
    const char *title = field(card, "title") ? field(card, "title") : "";
    const char *subtitle = field(card, "subtitle");
    char *caption = pl_strdupf("%s%s%s%s%s", title, amount ? " — " : "", amount ? amount : "",
                               subtitle ? "\n" : "", subtitle ? subtitle : "");
    free(amount);
    char *cut = pl_channel_shortened(caption, TG_CAPTION_MAX);
    free(caption);
    return cut;
}

/* sendPhoto for a card: the picture, its caption and one button. */
static json_t *photo_call(const pl_outbound *to, const json_t *card) {
    char *caption = card_caption(card, to->locale);
    json_t *body = json_pack("{s:o, s:s, s:s}", "chat_id", chat_id(to->user), "photo",
                             field(card, "image"), "caption", caption);
    free(caption);
    if (field(card, "payload")) {
        json_t *only = json_pack("[o]", button(to, field(card, "title"), field(card, "payload")));
        json_object_set_new(body, "reply_markup", keyboard(only));
        json_decref(only);
    }
    return pl_channel_call("POST", "/sendPhoto", body);
}

/* sendPhoto for a reply's own picture ("image": a URL, or {"url": ...}),
 * or NULL when it has none. */
static json_t *image_call(const pl_outbound *to, const json_t *reply) {
    const json_t *image = json_object_get(reply, "image");
    const char *url = json_is_string(image) ? json_string_value(image) : field(image, "url");
    if (!url) return NULL;
    json_t *body = json_pack("{s:o, s:s}", "chat_id", chat_id(to->user), "photo", url);
    return pl_channel_call("POST", "/sendPhoto", body);
}

/* One reply: its message (text, picture-less cards, keyboard), then a
 * photo per card with a picture, then its own picture. Choices number
 * from *first_choice, which moves past them. */
static void render_reply(const pl_outbound *to, const json_t *reply, int *first_choice,
                         json_t *calls) {
    reply_parts parts;
    gather(to, reply, &parts);
    char *text = message_text(reply, &parts, *first_choice, to->locale);
    if (*text) add_messages(calls, to->user, text, keyboard(parts.buttons));
    free(text);
    size_t i;
    json_t *card;
    json_array_foreach(parts.photo_cards, i, card) {
        json_array_append_new(calls, photo_call(to, card));
    }
    json_t *image = image_call(to, reply);
    if (image) json_array_append_new(calls, image);
    *first_choice += (int)json_array_size(json_object_get(reply, "choices"));
    parts_clear(&parts);
}

/* Never fails: what cannot be shown is shown as text or left out. */
static int tg_render(const pl_channel_config *cfg, const pl_outbound *to, const json_t *replies,
                     json_t **calls, char **err) {
    (void)cfg;
    (void)err;
    *calls = json_array();
    int first_choice = 1;
    size_t i;
    json_t *reply;
    json_array_foreach(replies, i, reply) {
        if (json_is_object(reply)) render_reply(to, reply, &first_choice, *calls);
    }
    return PL_OK;
}

/* --- credentials ------------------------------------------------------------------ */

/* A bot token is "<digits>:<letters, digits, - and _>"; anything else would
 * change the URL's meaning, so it is refused rather than escaped. */
static int token_is_plain(const char *token) {
    static const char allowed[] =
        "0123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
    return *token && strspn(token, allowed) == strlen(token);
}

/* The stored call's URL is <base><path>; Telegram's is
 * <base>/bot<token><path>. *url is replaced (the old string freed). */
static int tg_authorize(const pl_channel_config *cfg, json_t *headers, char **url, char **user_pwd,
                        char **err) {
    (void)headers;
    (void)user_pwd;
    const char *token = pl_channel_require(cfg, "bot_token", NULL, err);
    if (!token) return PL_ERR;
    if (!token_is_plain(token))
        return pl_fail(err, "the telegram channel of bot '%s': bot_token is not a token "
                            "BotFather gives (digits, ':', letters, '-', '_')", cfg->bot);
    const char *base = pl_channel_api_base(cfg, TG_DEFAULT_API_BASE);
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/') n--;
    if (strncmp(*url, base, n) != 0)
        return pl_fail(err, "the call's URL is not under the telegram API base %s", base);
    const char *path = *url + n;
    while (path[0] == '/' && path[1] == '/') path++;
    char *with_token = pl_strdupf("%.*s/bot%s%s", (int)n, base, token, path);
    free(*url);
    *url = with_token;
    return PL_OK;
}

/* Telegram answers a flood with 429 and {"parameters": {"retry_after": N}}
 * in the body (https://core.telegram.org/bots/api#responseparameters). */
static void tg_retry_hint(long status, const char *body, int *retry, long *delay_s) {
    (void)status;
    json_t *j = json_loads(body ? body : "", 0, NULL);
    json_t *after = json_object_get(json_object_get(j, "parameters"), "retry_after");
    if (json_is_integer(after) && json_integer_value(after) >= 0) {
        *retry = 1;
        *delay_s = (long)json_integer_value(after);
    }
    json_decref(j);
}

const pl_channel_adapter pl_channel_telegram = {
    .name = "telegram",
    .default_api_base = TG_DEFAULT_API_BASE,
    .synchronous = 0,
    .inbound = tg_inbound,
    .render = tg_render,
    .answer = NULL,
    .authorize = tg_authorize,
    .retry_hint = tg_retry_hint,
};
