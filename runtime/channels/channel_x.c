/* channel_x: the X (Twitter) direct-message adapter (channel.h).
 *
 * Owns the X half of parley: the Account Activity API's Challenge-Response
 * Check, the x-twitter-webhooks-signature check, parsing of the activity
 * webhook's direct_message_events (and read receipts) into parley events,
 * the rendering of a turn's replies into POST direct_messages/events/new
 * calls (text, quick-reply options, a URL button for a payment link,
 * degraded where X has limits), and the OAuth 1.0a signature added at send
 * time (channel_x.h exposes the signer for the C test). Uses channel.c's
 * helpers (settings, HMAC, constant-time compare, plain-text fallback,
 * percent-encoding, UTF-16 lengths), jansson, and libcrypto's RAND_bytes for
 * the OAuth nonce; nothing else.
 *
 * Every platform field used is the one X documents:
 *   Securing webhooks: the CRC (GET ?crc_token=..., answered with JSON
 *   {"response_token": "sha256=" + base64 HMAC-SHA256 of crc_token keyed by
 *   the consumer secret}) and the x-twitter-webhooks-signature header of
 *   every POST ("sha256=" + base64 HMAC-SHA256 of the raw body, same key):
 *     https://developer.x.com/en/docs/x-api/enterprise/account-activity-api/guides/securing-webhooks
 *   Account Activity data objects (for_user_id, direct_message_events,
 *   direct_message_indicate_typing_events, direct_message_mark_read_events,
 *   tweet_create_events, favorite_events ..., users keyed by id with name
 *   and screen_name):
 *     https://developer.x.com/en/docs/x-api/enterprise/account-activity-api/guides/account-activity-data-objects
 *   Message Create object (type "message_create", id, created_timestamp,
 *   message_create.sender_id, .target.recipient_id, .message_data.text,
 *   .quick_reply_response.metadata, .attachment.media):
 *     https://developer.x.com/content/developer-twitter/en/docs/direct-messages/sending-and-receiving/guides/message-create-object
 *   Read receipts (direct_message_mark_read_events: sender_id,
 *   last_read_event_id, target.recipient_id):
 *     https://developer.x.com/en/docs/direct-messages/typing-indicator-and-read-receipts/api-reference/new-read-receipt
 *   Sending (POST /1.1/direct_messages/events/new.json, a JSON body
 *   {"event": {"type": "message_create", "message_create": {"target":
 *   {"recipient_id"}, "message_data": {"text", ...}}}}, user context only;
 *   text of at most 10,000 characters):
 *     https://developer.x.com/en/docs/direct-messages/sending-and-receiving/api-reference/new-event
 *   Quick replies (quick_reply.type "options", at most 20 options; label
 *   at most 36 characters and no URL; description at most 72 and on every
 *   option or none; metadata at most 1,000 characters):
 *     https://developer.x.com/en/docs/direct-messages/quick-replies/api-reference/options
 *   Buttons (message_data.ctas: at most 3 {"type": "web_url", "label",
 *   "url"}, label at most 36 characters):
 *     https://developer.x.com/en/docs/direct-messages/buttons/api-reference/buttons
 *   OAuth 1.0a user context: the signature base string (METHOD, the
 *   encoded base URL, the encoded sorted parameters of the query, the form
 *   body and the oauth_* set), the signing key (encoded consumer secret &
 *   encoded token secret), HMAC-SHA1, and the Authorization header:
 *     https://developer.x.com/en/docs/authentication/oauth-1-0a/creating-a-signature
 *     https://developer.x.com/en/docs/authentication/oauth-1-0a/percent-encoding-parameters
 *     https://developer.x.com/en/docs/authentication/oauth-1-0a/authorizing-a-request
 *   Errors and rate limits (429 with x-rate-limit-reset, the epoch second
 *   the window reopens, and {"errors": [{"code": 88}]}; 130 over capacity,
 *   131 internal error; 420 the old "Enhance your calm"):
 *     https://docs.x.com/fundamentals/rate-limits
 *     https://developer.x.com/en/docs/basics/response-codes
 *
 * Character limits are counted in UTF-16 code units, never fewer than the
 * characters X counts; metadata is counted in bytes, for the same reason.
 * Media upload (a DM's picture attachment) is not done: pictures go as
 * links (see docs/x.md). */
#define _GNU_SOURCE
#include "channel_x.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/common.h"
#include "base/json_shape.h"
#include "channel.h"

#define X_API_BASE "https://api.twitter.com"
#define X_DM_PATH "/1.1/direct_messages/events/new.json"
#define X_SIGNATURE_HEADER "x-twitter-webhooks-signature"
/* Every call this adapter renders is this method, and authorize, which is
 * not told the method, signs for it. */
#define X_METHOD "POST"

enum {
    TEXT_MAX = 10000,
    OPTIONS_MAX = 20,
    LABEL_MAX = 36,
    METADATA_MAX = 1000,
    CTA_LABEL_MAX = 36,
    NONCE_BYTES = 16,
    CRC_TOKEN_MAX = 255,
};

/* --- OAuth 1.0a --------------------------------------------------------------------- */

typedef struct {
    char *name, *value; /* percent-encoded */
} oauth_param;

typedef struct {
    oauth_param *items;
    size_t n, cap;
} oauth_params;

/* Adds name and value (raw) encoded. */
static void param_add(oauth_params *ps, const char *name, const char *value) {
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 16;
        ps->items = realloc(ps->items, ps->cap * sizeof *ps->items);
        if (!ps->items) abort();
    }
    ps->items[ps->n++] = (oauth_param){pl_channel_percent_encode(name), pl_channel_percent_encode(value)};
}

/* Adds the name=value pairs of a query string or form body (joined by '&'),
 * decoded to their raw values first. */
static void param_add_pairs(oauth_params *ps, const char *pairs, size_t len) {
    const char *p = pairs, *end = pairs + len;
    while (p < end) {
        size_t n = strcspn(p, "&");
        if (p + n > end) n = (size_t)(end - p);
        if (n > 0) {
            char *pair = pl_strndup(p, n);
            char *eq = strchr(pair, '=');
            char *value = eq ? eq + 1 : pair + n;
            if (eq) *eq = '\0';
            pl_channel_percent_decode(pair);
            pl_channel_percent_decode(value);
            param_add(ps, pair, value);
            free(pair);
        }
        p += n + 1;
    }
}

static int param_order(const void *a, const void *b) {
    const oauth_param *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static void params_free(oauth_params *ps) {
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->items[i].name);
        free(ps->items[i].value);
    }
    free(ps->items);
}

/* The base string's URL (new): scheme and host in lower case, without the
 * scheme's default port, the query or the fragment; NULL when url is not
 * http(s)://host... */
static char *base_url(const char *url) {
    size_t scheme = strncasecmp(url, "https://", 8) == 0 ? 8 : strncasecmp(url, "http://", 7) == 0 ? 7 : 0;
    if (!scheme) return NULL;
    const char *host = url + scheme;
    size_t host_len = strcspn(host, "/?#"), kept = host_len;
    if (host_len == 0) return NULL;
    const char *path = host + host_len;
    size_t path_len = strcspn(path, "?#");
    const char *port = scheme == 8 ? ":443" : ":80";
    size_t port_len = strlen(port);
    if (host_len > port_len && strncmp(host + host_len - port_len, port, port_len) == 0) kept -= port_len;
    char *out = pl_strdupf("%.*s%.*s%.*s%s", (int)scheme, url, (int)kept, host, (int)path_len, path,
                           path_len ? "" : "/");
    for (char *c = out; c < out + scheme + kept; c++) *c = (char)tolower((unsigned char)*c);
    return out;
}

/* The signature base string (new): METHOD & the encoded base URL & the
 * encoded, sorted parameters (the oauth_* set, the URL's query, the form
 * body); NULL when url is not http(s)://host... */
static char *base_string(const char *method, const char *url, const char *form, const pl_x_credentials *creds,
                         const char *nonce, const char *stamp) {
    char *base = base_url(url);
    if (!base) return NULL;
    oauth_params ps = {0};
    param_add(&ps, "oauth_consumer_key", creds->consumer_key);
    param_add(&ps, "oauth_nonce", nonce);
    param_add(&ps, "oauth_signature_method", "HMAC-SHA1");
    param_add(&ps, "oauth_timestamp", stamp);
    param_add(&ps, "oauth_token", creds->token);
    param_add(&ps, "oauth_version", "1.0");
    const char *query = strchr(url, '?');
    if (query) param_add_pairs(&ps, query + 1, strcspn(query + 1, "#"));
    if (form) param_add_pairs(&ps, form, strlen(form));
    qsort(ps.items, ps.n, sizeof *ps.items, param_order);

    size_t len = 1;
    for (size_t i = 0; i < ps.n; i++) len += strlen(ps.items[i].name) + strlen(ps.items[i].value) + 2;
    char *joined = malloc(len), *o = joined;
    if (!joined) abort();
    *o = '\0';
    for (size_t i = 0; i < ps.n; i++)
        o += sprintf(o, "%s%s=%s", i ? "&" : "", ps.items[i].name, ps.items[i].value);

    char *enc_base = pl_channel_percent_encode(base), *enc_params = pl_channel_percent_encode(joined);
    char *text = pl_strdupf("%s&%s&%s", method, enc_base, enc_params);
    free(enc_params);
    free(enc_base);
    free(joined);
    params_free(&ps);
    free(base);
    return text;
}

/* The signature of a base string (new): base64 HMAC-SHA1 keyed by the
 * encoded consumer secret & the encoded token secret. */
static char *signature_of(const pl_x_credentials *creds, const char *text) {
    char *enc_cs = pl_channel_percent_encode(creds->consumer_secret);
    char *enc_ts = pl_channel_percent_encode(creds->token_secret);
    char *key = pl_strdupf("%s&%s", enc_cs, enc_ts);
    char *sig = pl_channel_hmac_base64("sha1", key, text, strlen(text));
    free(key);
    free(enc_ts);
    free(enc_cs);
    return sig;
}

char *pl_x_oauth_header(const char *method, const char *url, const char *form,
                        const pl_x_credentials *creds, const char *nonce, long long timestamp,
                        char **signature) {
    char stamp[24];
    snprintf(stamp, sizeof stamp, "%lld", timestamp);
    char *text = base_string(method, url, form, creds, nonce, stamp);
    if (!text) return NULL;
    char *sig = signature_of(creds, text);
    char *enc_key = pl_channel_percent_encode(creds->consumer_key);
    char *enc_nonce = pl_channel_percent_encode(nonce);
    char *enc_sig = pl_channel_percent_encode(sig);
    char *enc_token = pl_channel_percent_encode(creds->token);
    char *header = pl_strdupf("OAuth oauth_consumer_key=\"%s\", oauth_nonce=\"%s\", oauth_signature=\"%s\", "
                              "oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"%s\", "
                              "oauth_token=\"%s\", oauth_version=\"1.0\"",
                              enc_key, enc_nonce, enc_sig, stamp, enc_token);
    if (signature) {
        *signature = sig;
        sig = NULL;
    }
    free(enc_token);
    free(enc_sig);
    free(enc_nonce);
    free(enc_key);
    free(sig);
    free(text);
    return header;
}

/* --- inbound: the CRC and the signature ------------------------------------------------ */

/* Whether token is shaped like the crc_tokens X sends (a UUID, or base64
 * text): at most CRC_TOKEN_MAX of [A-Za-z0-9._~+/=-]. The check's answer is
 * the HMAC that also signs a POST's body, keyed alike: answered for any
 * text, the check would sign a forged body for whoever asked. No body can
 * pass this (a JSON body starts with "{"). */
static int crc_token_shaped(const char *token) {
    size_t n = strlen(token);
    return n > 0 && n <= CRC_TOKEN_MAX &&
           strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~+/=-") == n;
}

/* GET: the Challenge-Response Check. Answers {"response_token": "sha256="
 * + base64 HMAC-SHA256 of crc_token keyed by the consumer secret}. */
static int crc(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out, char **err) {
    const char *secret = pl_channel_require(cfg, "consumer_secret", &out->status, err);
    if (!secret) return PL_ERR;
    char *token = pl_channel_query_param(req->query, "crc_token");
    if (!token || !crc_token_shaped(token)) {
        free(token);
        out->status = 400;
        return pl_fail(err, "an X Challenge-Response Check needs a crc_token of at most %d letters, digits "
                            "and ._~+/=- (what X sends)", CRC_TOKEN_MAX);
    }
    char *mac = pl_channel_hmac_base64("sha256", secret, token, strlen(token));
    char *response = pl_strdupf("sha256=%s", mac);
    json_t *answer = json_pack("{s:s}", "response_token", response);
    out->answer = json_dumps(answer, JSON_COMPACT);
    out->answer_type = pl_strdup("application/json");
    out->events = json_array();
    out->status = 200;
    json_decref(answer);
    free(response);
    free(mac);
    free(token);
    return PL_OK;
}

/* POST: x-twitter-webhooks-signature must be "sha256=" and the base64
 * HMAC-SHA256 of the raw body keyed by the consumer secret, compared in
 * constant time. */
static int verify_signature(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                            char **err) {
    const char *secret = pl_channel_require(cfg, "consumer_secret", &out->status, err);
    if (!secret) return PL_ERR;
    const char *header = req->header ? req->header(req->header_ctx, X_SIGNATURE_HEADER) : NULL;
    if (!header || strncmp(header, "sha256=", 7) != 0) {
        out->status = 401;
        return pl_fail(err, "no x-twitter-webhooks-signature: sha256=... header");
    }
    char *expected = pl_channel_hmac_base64("sha256", secret, req->body, req->body_len);
    int equal = pl_channel_signature_equal(header + 7, expected);
    free(expected);
    if (equal) return PL_OK;
    out->status = 403;
    return pl_fail(err, "x-twitter-webhooks-signature does not match the body signed with the consumer secret");
}

/* --- inbound: events --------------------------------------------------------------------- */

/* msg.channel's facts: the platform, the account written to, and the
 * sender's names from the body's users map. */
static json_t *info_of(const json_t *root, const char *sender) {
    json_t *info = json_pack("{s:s, s:s}", "platform", "x", "for_user_id", pl_json_str(root, "for_user_id"));
    const json_t *user = json_object_get(json_object_get(root, "users"), sender);
    if (pl_json_str(user, "screen_name")) json_object_set_new(info, "screen_name", json_string(pl_json_str(user, "screen_name")));
    if (pl_json_str(user, "name")) json_object_set_new(info, "display_name", json_string(pl_json_str(user, "name")));
    return info;
}

/* One direct_message_events[] item from someone else: a message event
 * keyed by the DM event's id (de-duplication). */
static void add_message(const pl_webhook *req, const json_t *root, const json_t *dm, json_t *events) {
    const json_t *create = json_object_get(dm, "message_create");
    const char *sender = pl_json_str(create, "sender_id");
    const json_t *data = json_object_get(create, "message_data");
    json_t *ev = json_pack("{s:s, s:s, s:s}", "kind", "message", "id", pl_json_str(dm, "id"), "user", sender);
    const char *text = pl_json_str(data, "text");
    if (text && *text) json_object_set_new(ev, "text", json_string(text));
    const char *metadata = pl_json_str(json_object_get(data, "quick_reply_response"), "metadata");
    if (metadata && *metadata) json_object_set_new(ev, "payload", pl_channel_long_payload(req, metadata));
    json_t *info = info_of(root, sender);
    const json_t *attachment = json_object_get(data, "attachment");
    if (json_is_object(attachment)) {
        const json_t *media = json_object_get(attachment, "media");
        json_t *one = json_object();
        const char *type = pl_json_str(media, "type") ? pl_json_str(media, "type") : pl_json_str(attachment, "type");
        if (type) json_object_set_new(one, "type", json_string(type));
        if (pl_json_str(media, "media_url_https")) json_object_set_new(one, "url", json_string(pl_json_str(media, "media_url_https")));
        json_object_set_new(info, "attachments", json_pack("[o]", one));
    }
    json_object_set_new(ev, "info", info);
    json_array_append_new(events, ev);
}

/* What the parser reads of an activity webhook; other kinds of activity
 * (tweets, likes, follows, typing ...) are acknowledged unread. The ids a
 * session and de-duplication are keyed by may not be empty. */
static const pl_shape_rule body_shape[] = {
    {"for_user_id", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY},
    {"users", PL_SHAPE_OBJECT},
    {"users.*", PL_SHAPE_OBJECT},
    {"users.*.name", PL_SHAPE_STRING},
    {"users.*.screen_name", PL_SHAPE_STRING},
    {"direct_message_events", PL_SHAPE_ARRAY},
    {"direct_message_events[]", PL_SHAPE_OBJECT},
    {"direct_message_events[].type", PL_SHAPE_STRING | PL_SHAPE_REQUIRED},
    {"direct_message_events[].id", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY | PL_SHAPE_REQUIRED},
    {"direct_message_events[].message_create", PL_SHAPE_OBJECT},
    {"direct_message_events[].message_create.sender_id", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY | PL_SHAPE_REQUIRED},
    {"direct_message_events[].message_create.message_data", PL_SHAPE_OBJECT},
    {"direct_message_events[].message_create.message_data.text", PL_SHAPE_STRING},
    {"direct_message_events[].message_create.message_data.quick_reply_response", PL_SHAPE_OBJECT},
    {"direct_message_events[].message_create.message_data.quick_reply_response.metadata", PL_SHAPE_STRING},
    {"direct_message_events[].message_create.message_data.attachment", PL_SHAPE_OBJECT},
    {"direct_message_events[].message_create.message_data.attachment.type", PL_SHAPE_STRING},
    {"direct_message_events[].message_create.message_data.attachment.media", PL_SHAPE_OBJECT},
    {"direct_message_events[].message_create.message_data.attachment.media.type", PL_SHAPE_STRING},
    {"direct_message_events[].message_create.message_data.attachment.media.media_url_https", PL_SHAPE_STRING},
    {"direct_message_mark_read_events", PL_SHAPE_ARRAY},
    {"direct_message_mark_read_events[]", PL_SHAPE_OBJECT},
    {"direct_message_mark_read_events[].sender_id", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY | PL_SHAPE_REQUIRED},
    {"direct_message_mark_read_events[].last_read_event_id", PL_SHAPE_STRING | PL_SHAPE_NONEMPTY | PL_SHAPE_REQUIRED},
};

/* Whether sender is the account itself: the webhook's for_user_id, or the
 * configured user_id (its own messages come back as events too). */
static int is_own(const char *sender, const char *for_user, const char *account) {
    return strcmp(sender, for_user) == 0 || (account && strcmp(sender, account) == 0);
}

/* The account this bot answers as: the user_id setting, else the user id
 * an access token of X's user context starts with ("<user id>-..."), in
 * buf; NULL when neither says. */
static const char *own_account(const pl_channel_config *cfg, char *buf, size_t size) {
    const char *account = pl_channel_setting(cfg, "user_id");
    if (account) return account;
    const char *token = pl_channel_setting(cfg, "access_token");
    size_t digits = token ? strspn(token, "0123456789") : 0;
    if (digits == 0 || digits >= size || token[digits] != '-') return NULL;
    memcpy(buf, token, digits);
    buf[digits] = '\0';
    return buf;
}

/* The events of a verified body of the documented shape. A body for
 * another subscribed account than this bot's (several brands may share one
 * X app, and so its consumer secret) is acknowledged and ignored: this
 * bot's credentials would answer from the wrong account. */
static void add_events(const pl_channel_config *cfg, const pl_webhook *req, const json_t *root,
                       json_t *events) {
    const char *for_user = pl_json_str(root, "for_user_id");
    char buf[32];
    const char *account = own_account(cfg, buf, sizeof buf);
    if (!for_user || (account && strcmp(for_user, account) != 0)) return;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(root, "direct_message_events"), i, item) {
        const char *sender = pl_json_str(json_object_get(item, "message_create"), "sender_id");
        if (strcmp(pl_json_str(item, "type"), "message_create") != 0 || !sender) continue;
        if (!is_own(sender, for_user, account)) add_message(req, root, item, events);
    }
    /* a shopper read the account's messages up to last_read_event_id (the
     * account's own read receipts are not a status) */
    json_array_foreach(json_object_get(root, "direct_message_mark_read_events"), i, item) {
        const char *sender = pl_json_str(item, "sender_id");
        if (is_own(sender, for_user, account)) continue;
        json_array_append_new(events, json_pack("{s:s, s:s, s:s, s:s}", "kind", "status", "id",
                                                pl_json_str(item, "last_read_event_id"), "user", sender,
                                                "status", "read"));
    }
}

static int parse_body(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out, char **err) {
    json_error_t jerr;
    json_t *root = json_loadb(req->body, req->body_len, 0, &jerr);
    char *why = NULL;
    int rc = PL_ERR;
    if (!root) {
        pl_fail(err, "the body is not JSON: %s (line %d)", jerr.text, jerr.line);
    } else if (!json_is_object(root)) {
        pl_fail(err, "the body is not an Account Activity object");
    } else if (pl_json_shape_check(root, NULL, body_shape, sizeof body_shape / sizeof *body_shape, &why) != PL_OK) {
        pl_fail(err, "the body is not an Account Activity webhook of the documented shape: %s", why);
    } else if (!pl_json_str(root, "for_user_id") && (json_object_get(root, "direct_message_events") ||
                                             json_object_get(root, "direct_message_mark_read_events"))) {
        pl_fail(err, "for_user_id is missing (a string): direct messages need the account they came to");
    } else {
        out->events = json_array();
        add_events(cfg, req, root, out->events);
        out->status = 200;
        rc = PL_OK;
    }
    if (rc != PL_OK) out->status = 400;
    free(why);
    json_decref(root);
    return rc;
}

static int x_inbound(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out, char **err) {
    if (strcmp(req->method, "GET") == 0) return crc(cfg, req, out, err);
    if (verify_signature(cfg, req, out, err) != PL_OK) return PL_ERR;
    return parse_body(cfg, req, out, err);
}

/* --- outbound ------------------------------------------------------------------------ */

typedef struct {
    const pl_outbound *to;
    json_t *calls;   /* the API calls so far, in sending order */
    int next_choice; /* the number of the turn's next choice (typed numbers
                      * count across all replies: the engine's offered list) */
} render_ctx;

/* An option for a title and its payload (new), or NULL when X would
 * refuse it: an empty label, a label with a URL, metadata that fits
 * nowhere. Labels are cut to 36 characters. */
static json_t *option(const render_ctx *r, const char *title, const char *payload) {
    if (!pl_channel_has_words(title) || strstr(title, "://") || strstr(title, "www.")) return NULL;
    char *metadata = pl_channel_fitting_payload(r->to, payload ? payload : title, METADATA_MAX);
    if (!metadata) return NULL;
    char *label = pl_channel_shortened(title, LABEL_MAX);
    json_t *o = json_pack("{s:s, s:s}", "label", label, "metadata", metadata);
    free(label);
    free(metadata);
    return o;
}

/* The choices as options (new), or NULL when they cannot all be: more
 * than 20, or one X would refuse. */
static json_t *choice_options(const render_ctx *r, const json_t *choices) {
    if (json_array_size(choices) == 0 || json_array_size(choices) > OPTIONS_MAX) return NULL;
    json_t *options = json_array();
    size_t i;
    json_t *choice;
    json_array_foreach(choices, i, choice) {
        json_t *o = option(r, pl_json_str(choice, "title"), pl_json_str(choice, "payload"));
        if (!o) {
            json_decref(options);
            return NULL;
        }
        json_array_append_new(options, o);
    }
    return options;
}

static int has_metadata(const json_t *options, const char *metadata) {
    size_t i;
    json_t *o;
    json_array_foreach(options, i, o) {
        if (strcmp(pl_json_str(o, "metadata"), metadata) == 0) return 1;
    }
    return 0;
}

/* A card with a payload is also an option (its title; tapping it picks the
 * product), unless an option already carries its payload, while there is
 * room among the 20. */
static void add_card_options(const render_ctx *r, json_t *options, const json_t *cards) {
    size_t i;
    json_t *card;
    json_array_foreach(cards, i, card) {
        if (json_array_size(options) >= OPTIONS_MAX) return;
        if (!pl_json_str(card, "payload")) continue;
        json_t *o = option(r, pl_json_str(card, "title"), pl_json_str(card, "payload"));
        if (o && !has_metadata(options, pl_json_str(o, "metadata"))) json_array_append(options, o);
        json_decref(o);
    }
}

/* The reply's link as a web_url button (new), or NULL when its url is not
 * http(s). Its label is the link's title cut to 36 characters, else "Open
 * link" in the session's language. */
static json_t *link_button(const render_ctx *r, const json_t *reply) {
    const json_t *link = json_object_get(reply, "link");
    const char *url = pl_json_str(link, "url"), *title = pl_json_str(link, "title");
    if (!pl_channel_is_web_url(url)) return NULL;
    char *label = pl_channel_link_label(title, CTA_LABEL_MAX, r->to->locale);
    json_t *cta = json_pack("{s:s, s:s, s:s}", "type", "web_url", "label", label, "url", url);
    free(label);
    return cta;
}

/* The reply's own picture ("image": a URL, or {"url": ...}), or NULL. */
static const char *image_of(const json_t *reply) {
    const json_t *image = json_object_get(reply, "image");
    const char *url = json_is_string(image) ? json_string_value(image) : pl_json_str(image, "url");
    return pl_channel_is_web_url(url) ? url : NULL;
}

/* The text of a reply (new): its text, its cards as "• Title — price.
 * description" lines (their pictures are left out), its choices numbered as
 * the turn counts them when they cannot be options, a link that cannot be
 * a button as a "Title: URL" line, and its own picture as a URL line (X
 * shows a link's preview; parley uploads no media). */
static char *reply_text(const render_ctx *r, const json_t *reply, int numbered, int link_is_button) {
    json_t *view = json_pack("{s:O?, s:O?}", "text", json_object_get(reply, "text"), "cards",
                             json_object_get(reply, "cards"));
    if (numbered) json_object_set(view, "choices", json_object_get(reply, "choices"));
    json_t *link = json_object_get(reply, "link");
    if (!link_is_button && json_is_string(json_object_get(link, "url"))) json_object_set(view, "link", link);
    char *text = pl_channel_plain_text(view, r->next_choice, r->to->locale);
    json_decref(view);
    const char *image = image_of(reply);
    if (image) {
        char *with = *text ? pl_strdupf("%s\n%s", text, image) : pl_strdup(image);
        free(text);
        text = with;
    }
    return text;
}

/* text split into pieces of at most 10,000 characters, broken after a line
 * or a word in a piece's second half where there is one (new array). */
static json_t *pieces(const char *text) {
    json_t *out = json_array();
    const char *p = text;
    while (pl_channel_text_units(p) > TEXT_MAX) {
        size_t skip, n = pl_channel_piece_end(p, pl_channel_prefix_bytes(p, TEXT_MAX), &skip);
        json_array_append_new(out, json_stringn(p, n));
        p += n + skip;
    }
    if (*p) json_array_append_new(out, json_string(p));
    return out;
}

/* One POST direct_messages/events/new call (message_data stolen). */
static json_t *dm_call(const render_ctx *r, json_t *message_data) {
    json_t *body = json_pack("{s:{s:s, s:{s:{s:s}, s:o}}}", "event", "type", "message_create",
                             "message_create", "target", "recipient_id", r->to->user, "message_data",
                             message_data);
    return pl_channel_call(X_METHOD, X_DM_PATH, body);
}

/* One reply: its text (in pieces of 10,000 characters), the options and a
 * link's button on the last piece, the one X shows them under. Choices are
 * options when the reply has words for them to hang under (a text or
 * cards) and X takes them all; else numbered lines. Cards with a payload
 * are options too where there is room. */
static void render_reply(render_ctx *r, const json_t *reply) {
    const json_t *choices = json_object_get(reply, "choices");
    const json_t *cards = json_object_get(reply, "cards");
    int worded = pl_channel_has_words(pl_json_str(reply, "text")) || json_array_size(cards) > 0;
    json_t *options = worded ? choice_options(r, choices) : NULL;
    int numbered = !options && json_array_size(choices) > 0;
    if (!options) options = json_array();
    add_card_options(r, options, cards);
    json_t *cta = link_button(r, reply);
    char *text = reply_text(r, reply, numbered, cta != NULL);
    r->next_choice += (int)json_array_size(choices);
    if (!pl_channel_has_words(text) && cta) {
        const char *title = pl_json_str(json_object_get(reply, "link"), "title");
        free(text);
        text = pl_strdup(pl_channel_has_words(title) ? title : pl_json_str(cta, "url"));
    }
    json_t *parts = pl_channel_has_words(text) ? pieces(text) : json_array();
    size_t n = json_array_size(parts), i;
    json_t *piece;
    json_array_foreach(parts, i, piece) {
        json_t *data = json_pack("{s:O}", "text", piece);
        if (i + 1 == n && json_array_size(options) > 0)
            json_object_set_new(data, "quick_reply", json_pack("{s:s, s:O}", "type", "options", "options", options));
        if (i + 1 == n && cta) json_object_set_new(data, "ctas", json_pack("[O]", cta));
        json_array_append_new(r->calls, dm_call(r, data));
    }
    json_decref(parts);
    json_decref(cta);
    json_decref(options);
    free(text);
}

static int x_render(const pl_channel_config *cfg, const pl_outbound *to, const json_t *replies,
                    json_t **calls, char **err) {
    (void)cfg;
    if (!to->user || !*to->user) return pl_fail(err, "no X recipient (user id) to send to");
    render_ctx r = {to, json_array(), 1};
    size_t i;
    json_t *reply;
    json_array_foreach(replies, i, reply) {
        if (json_is_object(reply)) render_reply(&r, reply);
    }
    *calls = r.calls;
    return PL_OK;
}

/* --- credentials and answers ----------------------------------------------------------- */

/* Signs the call with the account's OAuth 1.0a user-context credentials
 * (an Authorization header; nothing is stored). The call is a POST (see
 * X_METHOD) with a JSON body, which OAuth 1.0a leaves out of the
 * signature; a query in the URL is signed. */
static int x_authorize(const pl_channel_config *cfg, json_t *headers, char **url, char **user_pwd,
                       char **err) {
    (void)user_pwd;
    pl_x_credentials creds;
    if (!(creds.consumer_key = pl_channel_require(cfg, "consumer_key", NULL, err)) ||
        !(creds.consumer_secret = pl_channel_require(cfg, "consumer_secret", NULL, err)) ||
        !(creds.token = pl_channel_require(cfg, "access_token", NULL, err)) ||
        !(creds.token_secret = pl_channel_require(cfg, "access_token_secret", NULL, err)))
        return PL_ERR;
    unsigned char raw[NONCE_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1) return pl_fail(err, "no random bytes for the OAuth nonce");
    char *nonce = pl_channel_hex(raw, sizeof raw);
    char *header = pl_x_oauth_header(X_METHOD, *url, NULL, &creds, nonce, (long long)time(NULL), NULL);
    free(nonce);
    if (!header) return pl_fail(err, "the call's URL %.200s is not http(s): it cannot be signed", *url);
    json_object_set_new(headers, "Authorization", json_string(header));
    free(header);
    return PL_OK;
}

/* X reports a rate limit (code 88), its own overload (130) and internal
 * errors (131) in {"errors": [{"code", "message"}]}, and once answered
 * 420 for too many calls: all transient. A 429's wait comes from its
 * x-rate-limit-reset header (the HTTP client reads it). */
static void x_retry_hint(long status, const char *body, int *retry, long *delay_s) {
    (void)delay_s;
    if (status == 420) *retry = 1;
    json_t *j = json_loads(body ? body : "", 0, NULL);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(j, "errors"), i, e) {
        json_int_t code = json_integer_value(json_object_get(e, "code"));
        if (code == 88 || code == 130 || code == 131) *retry = 1;
    }
    json_decref(j);
}

const pl_channel_adapter pl_channel_x = {
    .name = "x",
    .default_api_base = X_API_BASE,
    .synchronous = 0,
    .inbound = x_inbound,
    .render = x_render,
    .authorize = x_authorize,
    .retry_hint = x_retry_hint,
};
