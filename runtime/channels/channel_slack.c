/* channel_slack: the Slack adapter (channel.h): a Slack app's direct
 * messages.
 *
 * Owns the Slack half of parley: the signing-secret check of every request
 * (Events API callbacks and interactivity payloads arrive at the same
 * URL), the url_verification challenge, parsing of message.im events and
 * of block_actions payloads (a tapped button) into parley events, the
 * rendering of a turn's replies into chat.postMessage calls with Block Kit
 * blocks (mrkdwn sections, buttons in actions blocks, cards as sections
 * with an image and a button, a payment link as a URL button, with a plain
 * `text` fallback for notifications), the bot token added at send time,
 * and Slack's way of refusing a call inside an HTTP 200 ({"ok": false}).
 * Uses channel.c's helpers (settings, HMAC, constant-time compare,
 * plain-text fallback, prices, lengths), libevent's form decoder and
 * jansson; sending and retries are the outbox's.
 *
 * Every platform field used is the one Slack documents:
 *   Signing secret: X-Slack-Request-Timestamp, X-Slack-Signature "v0=" and
 *   the hex HMAC-SHA256 of "v0:" timestamp ":" raw body keyed by the app's
 *   signing secret; requests older than five minutes are replays:
 *     https://api.slack.com/authentication/verifying-requests-from-slack
 *   Events API: the url_verification challenge, the event_callback envelope
 *   (team_id, api_app_id, event, event_id, event_time, authorizations),
 *   app_rate_limited, and redeliveries carrying X-Slack-Retry-Num and
 *   X-Slack-Retry-Reason with the same event_id:
 *     https://api.slack.com/apis/connections/events-api
 *     https://api.slack.com/events/url_verification
 *     https://api.slack.com/events/app_rate_limited
 *   Direct messages: message events with channel_type "im" (channel, user,
 *   text, ts; bot_id and subtype for messages from bots, edits and
 *   deletions), text escaped with &amp; &lt; &gt;:
 *     https://api.slack.com/events/message.im
 *     https://api.slack.com/events/message
 *     https://api.slack.com/reference/surfaces/formatting#escaping
 *   Interactivity: a POST of application/x-www-form-urlencoded with a
 *   `payload` parameter holding JSON; block_actions with user.id, team.id,
 *   channel.id / container.channel_id and actions[] (action_id, type,
 *   text, value, url, action_ts); acknowledged with an HTTP 200:
 *     https://api.slack.com/interactivity/handling
 *     https://api.slack.com/reference/interaction-payloads/block-actions
 *   chat.postMessage (POST /chat.postMessage, Authorization: Bearer with the
 *   bot token, a JSON body of channel, text and blocks; a user's id as the
 *   channel reaches the app's DM with them; text is the notification
 *   fallback when blocks are given, best kept under 4000 characters;
 *   answers {"ok": false, "error": ...} with HTTP 200 when it refuses):
 *     https://api.slack.com/methods/chat.postMessage
 *     https://api.slack.com/web#responses
 *   Rate limits: HTTP 429 with Retry-After in seconds:
 *     https://api.slack.com/apis/rate-limits
 *   Block Kit: at most 50 blocks in a message; section text at most 3000
 *   characters, one accessory; actions at most 25 elements; image block
 *   image_url (at most 3000) and alt_text (at most 2000):
 *     https://api.slack.com/reference/block-kit/blocks
 *   Button: text (plain_text) at most 75 characters, action_id at most 255,
 *   value at most 2000, url at most 3000; image element image_url, alt_text:
 *     https://api.slack.com/reference/block-kit/block-elements
 *     https://api.slack.com/reference/block-kit/composition-objects#text
 *
 * Character limits are counted in UTF-16 code units (never fewer than the
 * characters Slack counts) and mrkdwn is measured after escaping; values
 * are counted in bytes, for the same reason. */
#define _GNU_SOURCE
#include "channel.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "base/json_shape.h"

#define SLACK_API_BASE "https://slack.com/api"

enum {
    SIGNATURE_WINDOW_S = 5 * 60, /* how old (or new) a request's timestamp may be */
    TIMESTAMP_DIGITS_MAX = 18,
    FALLBACK_TEXT_MAX = 4000,    /* the notification text */
    SECTION_TEXT_MAX = 3000,
    BLOCKS_MAX = 50,
    ACTIONS_ELEMENTS_MAX = 25,
    BUTTON_TEXT_MAX = 75,
    BUTTON_VALUE_MAX = 2000,
    BUTTON_URL_MAX = 3000,
    IMAGE_URL_MAX = 3000,
    ALT_TEXT_MAX = 2000,
    CARD_TITLE_MAX = 300,        /* of a card section's 3000: the title in bold */
    CARD_DETAIL_MAX = 2000,      /* and its price and description */
};

static const char *header(const pl_webhook *req, const char *name) {
    return req->header ? req->header(req->header_ctx, name) : NULL;
}

/* --- inbound: the signature ------------------------------------------------------ */

/* A timestamp header: only digits, not too many of them. */
static int timestamp_of(const char *text, long long *out) {
    size_t n = text ? strlen(text) : 0;
    if (n == 0 || n > TIMESTAMP_DIGITS_MAX || strspn(text, "0123456789") != n) return PL_ERR;
    *out = strtoll(text, NULL, 10);
    return PL_OK;
}

/* X-Slack-Signature must be "v0=" and the hex HMAC-SHA256 of
 * "v0:<X-Slack-Request-Timestamp>:<raw body>" keyed by the signing secret,
 * compared in constant time; a timestamp more than five minutes from now
 * is a replay. */
static int verify_signature(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                            char **err) {
    const char *secret = pl_channel_require(cfg, "signing_secret", &out->status, err);
    if (!secret) return PL_ERR;
    const char *ts_text = header(req, "X-Slack-Request-Timestamp");
    const char *signature = header(req, "X-Slack-Signature");
    long long ts = 0;
    const char *missing = NULL;
    if (!signature || strncmp(signature, "v0=", 3) != 0)
        missing = "no X-Slack-Signature: v0=... header";
    else if (timestamp_of(ts_text, &ts) != PL_OK)
        missing = "no X-Slack-Request-Timestamp header of seconds since the epoch";
    else if (ts < req->now - SIGNATURE_WINDOW_S || ts > req->now + SIGNATURE_WINDOW_S)
        missing = "X-Slack-Request-Timestamp is more than 5 minutes from now (a replay?)";
    if (missing) {
        out->status = 401;
        return pl_fail(err, "%s", missing);
    }
    size_t prefix = strlen("v0::") + strlen(ts_text);
    char *base = malloc(prefix + req->body_len + 1);
    if (!base) abort();
    snprintf(base, prefix + 1, "v0:%s:", ts_text);
    if (req->body_len) memcpy(base + prefix, req->body, req->body_len);
    char *hex = pl_channel_hmac_hex("sha256", secret, base, prefix + req->body_len);
    char *expected = pl_strdupf("v0=%s", hex ? hex : "");
    int equal = hex && pl_channel_hex_signature_equal(signature, expected);
    free(expected);
    free(hex);
    free(base);
    if (equal) return PL_OK;
    out->status = 403;
    return pl_fail(err, "X-Slack-Signature does not match the request signed with the signing secret");
}

/* --- inbound: events ------------------------------------------------------------ */

/* Slack's text with &amp; &lt; &gt; turned back into & < > (new). Other
 * markup (<@U123> mentions, <url|label> links) is left as Slack sent it. */
static char *unescaped(const char *s) {
    static const struct {
        const char *entity;
        char c;
    } entities[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}};
    char *out = pl_strdup(s), *o = out;
    while (*s) {
        size_t k = 0, n = sizeof entities / sizeof *entities;
        while (k < n && strncmp(s, entities[k].entity, strlen(entities[k].entity)) != 0) k++;
        if (k < n) {
            *o++ = entities[k].c;
            s += strlen(entities[k].entity);
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

/* msg.channel's facts: the platform, the workspace, the DM's channel (where
 * replies go) and the shopper's Slack user id. */
static json_t *facts(const char *team, const char *channel, const char *user) {
    json_t *info = json_pack("{s:s, s:s}", "platform", "slack", "user_id", user);
    if (team && *team) json_object_set_new(info, "team_id", json_string(team));
    if (channel && *channel) json_object_set_new(info, "channel_id", json_string(channel));
    return info;
}

/* Whether a message event was written by the app itself: its bot user
 * (an authorization with is_bot) or its app id. */
static int from_this_app(const json_t *root, const json_t *event) {
    const char *user = pl_json_str(event, "user");
    const char *app = pl_json_str(event, "app_id"), *own_app = pl_json_str(root, "api_app_id");
    if (app && own_app && strcmp(app, own_app) == 0) return 1;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(root, "authorizations"), i, a) {
        const char *bot_user = pl_json_str(a, "user_id");
        if (json_is_true(json_object_get(a, "is_bot")) && bot_user && user && strcmp(bot_user, user) == 0)
            return 1;
    }
    return 0;
}

/* What add_message reads of a message event. */
static const pl_shape_rule message_shape[] = {
    {"user", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY},
    {"channel", PL_SHAPE_STRING},
    {"channel_type", PL_SHAPE_STRING},
    {"text", PL_SHAPE_STRING},
    {"subtype", PL_SHAPE_STRING},
    {"app_id", PL_SHAPE_STRING},
    {"team", PL_SHAPE_STRING},
};

/* A direct message from a person becomes a message event whose id is the
 * envelope's event_id (a redelivery carries the same one). Messages in
 * other conversations, from bots (bot_id, subtype bot_message) and from
 * this app, edits, deletions and every other subtype are acknowledged
 * without a turn: answering them could loop or answer twice. */
static int add_message(const json_t *root, const json_t *event, json_t *events, char **err) {
    char *why = NULL;
    if (pl_json_shape_check(event, "event", message_shape, sizeof message_shape / sizeof *message_shape,
                            &why) != PL_OK) {
        pl_fail(err, "the body is not an event_callback of the documented shape: %s", why);
        free(why);
        return PL_ERR;
    }
    const char *channel_type = pl_json_str(event, "channel_type"), *user = pl_json_str(event, "user");
    const char *text = pl_json_str(event, "text");
    if (!channel_type || strcmp(channel_type, "im") != 0) return PL_OK;
    if (json_object_get(event, "subtype") || json_object_get(event, "bot_id") || !user) return PL_OK;
    if (from_this_app(root, event) || !text || !pl_channel_has_words(text)) return PL_OK;
    const char *team = pl_json_str(root, "team_id") ? pl_json_str(root, "team_id") : pl_json_str(event, "team");
    char *said = unescaped(text);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:o}", "kind", "message", "id", pl_json_str(root, "event_id"),
                           "user", user, "text", said, "info", facts(team, pl_json_str(event, "channel"), user));
    free(said);
    json_array_append_new(events, ev);
    return PL_OK;
}

/* What the Events API bodies parley reads look like; the event itself is
 * checked once it is known to be a message (other events' fields differ). */
static const pl_shape_rule callback_shape[] = {
    {"event", PL_SHAPE_OBJECT | PL_SHAPE_REQUIRED},
    {"event.type", PL_SHAPE_STRING | PL_SHAPE_REQUIRED},
    {"event_id", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY | PL_SHAPE_REQUIRED},
    {"team_id", PL_SHAPE_STRING},
    {"api_app_id", PL_SHAPE_STRING},
    {"authorizations", PL_SHAPE_ARRAY},
    {"authorizations[]", PL_SHAPE_OBJECT},
    {"authorizations[].user_id", PL_SHAPE_STRING},
    {"authorizations[].is_bot", PL_SHAPE_BOOLEAN},
};

/* A JSON body: the url_verification challenge is answered with itself; an
 * event_callback carries one event; app_rate_limited (Slack dropping
 * events for a while) and types Slack may add are acknowledged unread. */
static int parse_events(const pl_webhook *req, pl_inbound *out, char **err) {
    json_error_t jerr;
    json_t *root = json_loadb(req->body, req->body_len, 0, &jerr);
    const char *type = pl_json_str(root, "type");
    char *why = NULL;
    int rc = PL_ERR;
    out->status = 400;
    if (!root) {
        pl_fail(err, "the body is not JSON: %s (line %d)", jerr.text, jerr.line);
    } else if (!type) {
        pl_fail(err, "the body has no type (an Events API body is an object with a type)");
    } else if (strcmp(type, "url_verification") == 0) {
        const char *challenge = pl_json_str(root, "challenge");
        if (!challenge || !*challenge) {
            pl_fail(err, "a url_verification body needs a challenge (a string)");
        } else {
            out->answer = pl_strdup(challenge);
            out->answer_type = pl_strdup("text/plain");
            rc = PL_OK;
        }
    } else if (strcmp(type, "event_callback") != 0) {
        rc = PL_OK;
    } else if (pl_json_shape_check(root, NULL, callback_shape, sizeof callback_shape / sizeof *callback_shape,
                                   &why) != PL_OK) {
        pl_fail(err, "the body is not an event_callback of the documented shape: %s", why);
    } else {
        json_t *event = json_object_get(root, "event");
        out->events = json_array();
        rc = strcmp(pl_json_str(event, "type"), "message") == 0 ? add_message(root, event, out->events, err)
                                                        : PL_OK;
    }
    if (rc == PL_OK) {
        out->status = 200;
        if (!out->events) out->events = json_array();
    } else {
        json_decref(out->events);
        out->events = NULL;
    }
    free(why);
    json_decref(root);
    return rc;
}

/* What a block_actions payload is read for. */
static const pl_shape_rule actions_shape[] = {
    {"user", PL_SHAPE_OBJECT | PL_SHAPE_REQUIRED},
    {"user.id", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY | PL_SHAPE_REQUIRED},
    {"user.team_id", PL_SHAPE_STRING},
    {"team", PL_SHAPE_OBJECT | PL_SHAPE_NULL},
    {"team.id", PL_SHAPE_STRING},
    {"channel", PL_SHAPE_OBJECT},
    {"channel.id", PL_SHAPE_STRING},
    {"container", PL_SHAPE_OBJECT},
    {"container.channel_id", PL_SHAPE_STRING},
    {"actions", PL_SHAPE_ARRAY | PL_SHAPE_REQUIRED},
    {"actions[]", PL_SHAPE_OBJECT},
    {"actions[].type", PL_SHAPE_STRING},
    {"actions[].value", PL_SHAPE_STRING},
    {"actions[].url", PL_SHAPE_STRING},
    {"actions[].text", PL_SHAPE_OBJECT},
    {"actions[].text.text", PL_SHAPE_STRING},
    {"actions[].action_ts", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY},
};

/* A tapped button of a message parley sent: its value is the choice's
 * payload and its text what the shopper "said"; the id is the action's
 * action_ts and the user (a redelivery carries the same). A URL button
 * (the payment link) opens its page in the browser and also reports the
 * tap: that one, and elements that are not buttons, need no turn. */
static void add_action(const pl_webhook *req, const json_t *payload, const json_t *action,
                       json_t *events) {
    const char *value = pl_json_str(action, "value"), *type = pl_json_str(action, "type"), *ts = pl_json_str(action, "action_ts");
    if (!type || strcmp(type, "button") != 0 || !value || !*value || pl_json_str(action, "url") || !ts) return;
    const json_t *user = json_object_get(payload, "user");
    const char *user_id = pl_json_str(user, "id");
    const char *team = pl_json_str(json_object_get(payload, "team"), "id");
    const char *channel = pl_json_str(json_object_get(payload, "channel"), "id");
    if (!team) team = pl_json_str(user, "team_id");
    if (!channel) channel = pl_json_str(json_object_get(payload, "container"), "channel_id");
    json_t *ev = json_pack("{s:s, s:o, s:s, s:o, s:o}", "kind", "message", "id", json_sprintf("%s:%s", ts, user_id),
                           "user", user_id, "payload", pl_channel_long_payload(req, value), "info",
                           facts(team, channel, user_id));
    const char *text = pl_json_str(json_object_get(action, "text"), "text");
    if (text && *text) json_object_set_new(ev, "text", json_string(text));
    json_array_append_new(events, ev);
}

/* A form body: the interactivity payload. Only block_actions (a tapped
 * button) is taken; other interactions (shortcuts, modals) are not parley's
 * and are acknowledged unread. */
static int parse_interaction(const pl_webhook *req, pl_inbound *out, char **err) {
    pl_channel_form form = {0};
    json_t *payload = NULL;
    char *why = NULL;
    int rc = PL_ERR;
    out->status = 400;
    const char *text = pl_channel_form_parse(req->body, &form) == PL_OK ? pl_channel_form_get(&form, "payload") : NULL;
    json_error_t jerr;
    if (!text) {
        pl_fail(err, "the form has no payload parameter (an interactivity request carries one)");
    } else if (pl_channel_form_not_utf8(&form)) {
        pl_fail(err, "the form is not UTF-8 text");
    } else if (!(payload = json_loads(text, 0, &jerr)) || !pl_json_str(payload, "type")) {
        pl_fail(err, "the payload is not a JSON object with a type%s%s", payload ? "" : ": ",
                payload ? "" : jerr.text);
    } else if (strcmp(pl_json_str(payload, "type"), "block_actions") != 0) {
        rc = PL_OK;
    } else if (pl_json_shape_check(payload, "payload", actions_shape, sizeof actions_shape / sizeof *actions_shape,
                                   &why) != PL_OK) {
        pl_fail(err, "the payload is not a block_actions payload of the documented shape: %s", why);
    } else {
        out->events = json_array();
        size_t i;
        json_t *action;
        json_array_foreach(json_object_get(payload, "actions"), i, action) add_action(req, payload, action, out->events);
        rc = PL_OK;
    }
    if (rc == PL_OK) {
        out->status = 200;
        if (!out->events) out->events = json_array();
    }
    free(why);
    json_decref(payload);
    pl_channel_form_free(&form);
    return rc;
}

/* Whether the request's body is a form (interactivity) rather than JSON
 * (the Events API): its Content-Type says so. */
static int is_form(const pl_webhook *req) {
    const char *type = header(req, "Content-Type");
    return type && strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0;
}

static int slack_inbound(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                         char **err) {
    if (strcmp(req->method, "POST") != 0) {
        out->status = 405;
        return pl_fail(err, "Slack POSTs its events and interactions; %.16s is not taken", req->method);
    }
    if (verify_signature(cfg, req, out, err) != PL_OK) return PL_ERR;
    return is_form(req) ? parse_interaction(req, out, err) : parse_events(req, out, err);
}

/* --- outbound ---------------------------------------------------------------- */

/* The UTF-16 units of the character byte c starts once escaped for mrkdwn. */
static size_t escaped_units(unsigned char c) {
    return c == '&' ? 5 : c == '<' || c == '>' ? 4 : pl_channel_char_units(c);
}

/* Bytes of the longest prefix of s whose escaped form has at most max units
 * (it ends on a character boundary). */
static size_t escaped_prefix_bytes(const char *s, size_t max) {
    size_t units = 0, i = 0;
    for (; s[i]; i++) {
        size_t u = escaped_units((unsigned char)s[i]);
        if (u && units + u > max) break;
        units += u;
    }
    return i;
}

/* n bytes of s with & < > escaped as Slack asks (new). */
static char *escape_n(const char *s, size_t n) {
    char *out = malloc(n * 5 + 1), *o = out;
    if (!out) abort();
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '&') o = stpcpy(o, "&amp;");
        else if (s[i] == '<') o = stpcpy(o, "&lt;");
        else if (s[i] == '>') o = stpcpy(o, "&gt;");
        else *o++ = s[i];
    }
    *o = '\0';
    return out;
}

/* s escaped for mrkdwn and cut so that it holds at most max units, ending
 * in "…" when it had to be cut (new). */
static char *mrkdwn(const char *s, size_t max) {
    size_t n = strlen(s);
    if (escaped_prefix_bytes(s, max) == n) return escape_n(s, n);
    char *cut = escape_n(s, escaped_prefix_bytes(s, max - 1));
    char *with = pl_strdupf("%s…", cut);
    free(cut);
    return with;
}

/* Where the next piece of at most max escaped units of text ends: after a
 * line or a word in its second half where there is one; *skip is the
 * separator's length. */
static size_t piece_end(const char *s, size_t max, size_t *skip) {
    return pl_channel_piece_end(s, escaped_prefix_bytes(s, max), skip);
}

typedef struct {
    const pl_outbound *to;
    const char *channel;     /* where the calls go: the DM, else the user */
    const char *card_button; /* the label of a card's button */
    json_t *calls;           /* the API calls so far, in sending order */
    json_t *blocks;          /* the blocks of the message being built */
    char *fallback;          /* its notification text (plain) */
    int next_choice;         /* the turn's number of the next choice */
} render_ctx;

/* Sends the message being built, if it has anything, and starts another:
 * chat.postMessage with channel, text (the fallback, escaped, at most 4000
 * characters) and blocks. */
static void flush(render_ctx *r) {
    if (json_array_size(r->blocks) > 0) {
        char *text = mrkdwn(pl_channel_has_words(r->fallback) ? r->fallback : "…", FALLBACK_TEXT_MAX);
        json_t *body = json_pack("{s:s, s:s, s:O}", "channel", r->channel, "text", text, "blocks", r->blocks);
        free(text);
        json_t *call = pl_channel_call("POST", "/chat.postMessage", body);
        json_object_set_new(call, "content_type", json_string("application/json; charset=utf-8"));
        json_array_append_new(r->calls, call);
    }
    json_decref(r->blocks);
    r->blocks = json_array();
    free(r->fallback);
    r->fallback = pl_strdup("");
}

/* Adds a block (stolen) and the line it stands for in the fallback text; a
 * message holds at most 50 blocks, so a 51st starts the next message. */
static void add_block(render_ctx *r, json_t *block, const char *plain) {
    if (json_array_size(r->blocks) == BLOCKS_MAX) flush(r);
    json_array_append_new(r->blocks, block);
    if (plain && *plain) {
        char *joined = *r->fallback ? pl_strdupf("%s\n%s", r->fallback, plain) : pl_strdup(plain);
        free(r->fallback);
        r->fallback = joined;
    }
}

static json_t *mrkdwn_text(const char *escaped) {
    return json_pack("{s:s, s:s}", "type", "mrkdwn", "text", escaped);
}

static json_t *plain_text(const char *s) {
    return json_pack("{s:s, s:s, s:b}", "type", "plain_text", "text", s, "emoji", 1);
}

/* Appends text as sections of at most 3000 characters (once escaped). */
static void add_sections(render_ctx *r, const char *text) {
    const char *p = text;
    while (*p) {
        size_t skip, n = piece_end(p, SECTION_TEXT_MAX, &skip);
        char *plain = pl_strndup(p, n), *escaped = escape_n(p, n);
        if (pl_channel_has_words(plain))
            add_block(r, json_pack("{s:s, s:o}", "type", "section", "text", mrkdwn_text(escaped)), plain);
        free(plain);
        free(escaped);
        p += n + skip;
    }
}

/* A button (new) with text cut to 75 characters, the value and action_id. */
static json_t *value_button(const char *title, const char *value, const char *action_id) {
    char *label = pl_channel_shortened(pl_channel_has_words(title) ? title : value, BUTTON_TEXT_MAX);
    json_t *b = json_pack("{s:s, s:o, s:s, s:s}", "type", "button", "text", plain_text(label), "value", value,
                          "action_id", action_id);
    free(label);
    return b;
}

/* The choices as buttons (new array), or NULL when one of them cannot be a
 * button (its payload fits no value): then they are all numbered lines. */
static json_t *choice_buttons(const render_ctx *r, const json_t *choices) {
    json_t *buttons = json_array();
    size_t i;
    json_t *choice;
    json_array_foreach(choices, i, choice) {
        const char *title = pl_json_str(choice, "title"), *payload = pl_json_str(choice, "payload");
        char *value = pl_channel_fitting_payload(r->to, payload ? payload : title ? title : "", BUTTON_VALUE_MAX);
        if (!value) {
            json_decref(buttons);
            return NULL;
        }
        char *id = pl_strdupf("choice-%d", r->next_choice + (int)i);
        json_array_append_new(buttons, value_button(title, value, id));
        free(id);
        free(value);
    }
    return buttons;
}

/* Appends buttons (borrowed) as actions blocks of at most 25; the fallback
 * names them with the turn's numbers (what typing a number picks). */
static void add_actions(render_ctx *r, const json_t *buttons, int first) {
    size_t n = json_array_size(buttons);
    for (size_t at = 0; at < n; at += ACTIONS_ELEMENTS_MAX) {
        json_t *elements = json_array();
        char *lines = pl_strdup("");
        for (size_t i = at; i < n && i < at + ACTIONS_ELEMENTS_MAX; i++) {
            json_t *b = json_array_get(buttons, i);
            json_array_append(elements, b);
            char *joined = pl_strdupf("%s%s%d) %s", lines, *lines ? "\n" : "", first + (int)i,
                                      pl_json_str(json_object_get(b, "text"), "text"));
            free(lines);
            lines = joined;
        }
        add_block(r, json_pack("{s:s, s:o}", "type", "actions", "elements", elements), lines);
        free(lines);
    }
}

static int is_web_url(const char *url, size_t max) { return pl_channel_is_web_url(url) && strlen(url) <= max; }

/* An image element or block's fields: image_url and alt_text. */
static json_t *image_object(const char *type, const char *url, const char *alt) {
    char *cut = pl_channel_shortened(pl_channel_has_words(alt) ? alt : "image", ALT_TEXT_MAX);
    json_t *image = json_pack("{s:s, s:s, s:s}", "type", type, "image_url", url, "alt_text", cut);
    free(cut);
    return image;
}

/* A card: a section with "*Title*" and "price · description", its picture
 * as the section's image accessory, and its payload as a button: the
 * section's accessory when it has no picture, else in an actions block
 * right under it (a section has one accessory). */
static void add_card(render_ctx *r, const json_t *card, int index) {
    const char *title = pl_json_str(card, "title"), *subtitle = pl_json_str(card, "subtitle"), *image = pl_json_str(card, "image");
    const char *payload = pl_json_str(card, "payload");
    const json_t *price = json_object_get(card, "price");
    char *amount = json_is_object(price) && pl_json_str(price, "currency") ? pl_channel_price(price, r->to->locale) : NULL;
    char *detail = amount && subtitle ? pl_strdupf("%s · %s", amount, subtitle)
                                      : pl_strdup(amount ? amount : subtitle ? subtitle : "");
    char *bold = mrkdwn(pl_channel_has_words(title) ? title : "…", CARD_TITLE_MAX);
    char *rest = mrkdwn(detail, CARD_DETAIL_MAX);
    char *text = pl_strdupf("*%s*%s%s", bold, *rest ? "\n" : "", rest);
    char *plain = pl_strdupf("• %s%s%s", title ? title : "", *detail ? " — " : "", detail);
    json_t *section = json_pack("{s:s, s:o}", "type", "section", "text", mrkdwn_text(text));
    char *value = payload ? pl_channel_fitting_payload(r->to, payload, BUTTON_VALUE_MAX) : NULL;
    char *id = pl_strdupf("card-%d", index);
    json_t *button = value ? value_button(r->card_button, value, id) : NULL;
    if (is_web_url(image, IMAGE_URL_MAX)) {
        json_object_set_new(section, "accessory", image_object("image", image, title));
        add_block(r, section, plain);
        if (button) add_block(r, json_pack("{s:s, s:[o]}", "type", "actions", "elements", button), NULL);
    } else {
        if (button) json_object_set_new(section, "accessory", button);
        add_block(r, section, plain);
    }
    free(id);
    free(value);
    free(plain);
    free(text);
    free(rest);
    free(bold);
    free(detail);
    free(amount);
}

/* The reply's own picture ("image": a URL, or {"url", "alt"?}) as an image
 * block; one that is not a web address of at most 3000 is a line of text. */
static void add_image(render_ctx *r, const json_t *reply) {
    const json_t *image = json_object_get(reply, "image");
    const char *url = json_is_string(image) ? json_string_value(image) : pl_json_str(image, "url");
    if (!url) return;
    if (!is_web_url(url, IMAGE_URL_MAX)) {
        add_sections(r, url);
        return;
    }
    const char *alt = pl_json_str(image, "alt");
    add_block(r, image_object("image", url, alt), alt && *alt ? alt : url);
}

/* A link (a payment page) as a URL button titled with the link's title
 * ("Open link" in the session's language when it has none); a link that is
 * not a web address Slack takes is a "Title: URL" line instead. */
static void add_link(render_ctx *r, const json_t *link) {
    const char *url = pl_json_str(link, "url"), *title = pl_json_str(link, "title");
    if (!url) return;
    char *line = pl_strdupf("%s%s%s", pl_channel_has_words(title) ? title : "", pl_channel_has_words(title) ? ": " : "", url);
    if (!is_web_url(url, BUTTON_URL_MAX)) {
        add_sections(r, line);
        free(line);
        return;
    }
    char *label = pl_channel_link_label(title, BUTTON_TEXT_MAX, r->to->locale);
    json_t *button = json_pack("{s:s, s:o, s:s, s:s, s:s}", "type", "button", "text", plain_text(label), "url", url,
                               "action_id", "link", "style", "primary");
    add_block(r, json_pack("{s:s, s:[o]}", "type", "actions", "elements", button), line);
    free(label);
    free(line);
}

/* One reply is one message (more when it needs over 50 blocks): its text
 * as sections, its cards, its picture, its link, then its choices as
 * buttons under everything — or as numbered lines when they cannot be
 * buttons. */
static void render_reply(render_ctx *r, const json_t *reply) {
    json_t *choices = json_object_get(reply, "choices");
    json_t *buttons = json_array_size(choices) > 0 ? choice_buttons(r, choices) : NULL;
    json_t *view = json_pack("{s:O?}", "text", json_object_get(reply, "text"));
    if (json_array_size(choices) > 0 && !buttons) json_object_set(view, "choices", choices);
    char *text = pl_channel_plain_text(view, r->next_choice, r->to->locale);
    json_decref(view);
    add_sections(r, text);
    free(text);
    size_t i;
    json_t *card;
    json_array_foreach(json_object_get(reply, "cards"), i, card) {
        if (json_is_object(card)) add_card(r, card, (int)i + 1);
    }
    add_image(r, reply);
    add_link(r, json_object_get(reply, "link"));
    if (buttons) add_actions(r, buttons, r->next_choice);
    json_decref(buttons);
    r->next_choice += (int)json_array_size(choices);
    flush(r);
}

/* Replies go to the DM the shopper wrote from (msg.channel's channel_id);
 * without one (an agent's reply or a reminder after a restart of the
 * facts), to the user's id, which Slack takes as the app's DM with them. */
static int slack_render(const pl_channel_config *cfg, const pl_outbound *to, const json_t *replies,
                        json_t **calls, char **err) {
    if (!to->user || !*to->user) return pl_fail(err, "no Slack user to send to");
    const char *channel = pl_json_str(to->info, "channel_id");
    render_ctx r = {to, channel && *channel ? channel : to->user, pl_channel_card_button(cfg, to->locale),
                    json_array(), json_array(), pl_strdup(""), 1};
    size_t i;
    json_t *reply;
    json_array_foreach(replies, i, reply) {
        if (json_is_object(reply)) render_reply(&r, reply);
    }
    json_decref(r.blocks);
    free(r.fallback);
    *calls = r.calls;
    return PL_OK;
}

/* The bot token goes in the Authorization header, never in the outbox. */
static int slack_authorize(const pl_channel_config *cfg, json_t *headers, char **url, char **user_pwd,
                           char **err) {
    (void)url;
    (void)user_pwd;
    const char *token = pl_channel_require(cfg, "bot_token", NULL, err);
    if (!token) return PL_ERR;
    json_object_set_new(headers, "Authorization", json_sprintf("Bearer %s", token));
    return PL_OK;
}

/* Slack answers HTTP 200 with {"ok": false, "error": "..."} when it does
 * not take a call. Errors of Slack's side or of the moment are retried;
 * the rest (invalid_auth, channel_not_found, invalid_blocks ...) would
 * fail again and are dead letters at once. */
static int slack_refused(const pl_channel_config *cfg, long credential, long status, const char *body,
                         int *retry, long *delay_s, char **why) {
    (void)cfg;
    (void)credential;
    (void)status;
    (void)delay_s;
    static const char *const transient[] = {"ratelimited", "rate_limited", "internal_error", "fatal_error",
                                            "service_unavailable", "request_timeout", "team_added_to_org"};
    json_t *j = json_loads(body ? body : "", 0, NULL);
    int refused = json_is_false(json_object_get(j, "ok"));
    if (refused) {
        const char *error = pl_json_str(j, "error");
        *why = pl_strdup(error ? error : "ok: false");
        for (size_t i = 0; error && i < sizeof transient / sizeof *transient; i++)
            if (strcmp(error, transient[i]) == 0) *retry = 1;
    }
    json_decref(j);
    return refused;
}

const pl_channel_adapter pl_channel_slack = {
    .name = "slack",
    .default_api_base = SLACK_API_BASE,
    .synchronous = 0,
    .inbound = slack_inbound,
    .render = slack_render,
    .authorize = slack_authorize,
    .refused = slack_refused,
};
