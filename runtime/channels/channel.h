/* channel: the interface every messaging-platform adapter implements, the
 * registry of adapters, and each bot's channel settings.
 *
 * An adapter has two halves. Inbound: verify the platform's signature or
 * secret, parse its webhook body, and normalise what it carries into
 * events (a shopper's message, or a delivery status). Outbound: render a
 * turn's channel-neutral replies (text, choices, cards, images, payment
 * links) into the platform's API calls — degrading what the platform cannot
 * show — or, for a synchronous channel (voice), into the webhook's answer.
 *
 * Adapters are plain C over plain data (no evhttp, no store), so a C test
 * can drive them with fixed vectors. Secrets are never in the bot folder:
 * the manifest names environment variables, read when a request needs them. */
#ifndef PL_CHANNEL_H
#define PL_CHANNEL_H

#include <jansson.h>
#include <stddef.h>

struct pl_http_client;

/* One bot's settings for one channel: the manifest's "channels" entry. */
typedef struct {
    const char *bot;       /* the bot's name */
    const char *channel;   /* "whatsapp" ... */
    const json_t *settings; /* the manifest object (borrowed) */
} pl_channel_config;

/* The value of a setting: settings.<key>, else the environment variable
 * named by settings.<key>_env. NULL when neither is set (empty counts as
 * not set). */
const char *pl_channel_setting(const pl_channel_config *cfg, const char *key);

/* A setting the channel cannot work without: its value, or NULL with
 * out->status = 503 and *err naming what to set ("the whatsapp channel of
 * bot 'barista' needs app_secret: set BARISTA_WA_SECRET"). */
const char *pl_channel_require(const pl_channel_config *cfg, const char *key, int *status,
                               char **err);

/* The platform API's base URL: the operator's PARLEY_<CHANNEL>_API_BASE
 * (upper case; tests point it at fakes), else fallback. A bot.json cannot
 * change it. */
const char *pl_channel_api_base(const pl_channel_config *cfg, const char *fallback);

/* An inbound webhook request, as the adapter sees it. */
typedef struct {
    const char *method;    /* "GET", "POST" */
    const char *url;       /* the public URL the platform called (Twilio signs it) */
    const char *query;     /* the raw query string, or NULL */
    const char *body;      /* NUL-terminated */
    size_t body_len;
    /* A request header by name (case-insensitive), or NULL. */
    const char *(*header)(const void *ctx, const char *name);
    const void *header_ctx;
    long long now;         /* seconds since the epoch (for timestamp checks) */
    /* The payload a short key stands for (see pl_outbound.short_payload):
     * new string, or NULL when the key is unknown. */
    char *(*long_payload)(const void *ctx, const char *key);
    const void *payload_ctx;
    /* For an adapter that must fetch something before it can judge a
     * request (Alexa: the certificate chain that signed it): the client to
     * fetch with (borrowed), and what to call when the fetch is over. NULL
     * http or again: nothing can be fetched, and such a request is refused
     * (503). See inbound's PL_AGAIN. */
    struct pl_http_client *http;
    void (*again)(void *ctx);
    void *again_ctx;
} pl_webhook;

/* What an adapter made of a webhook. */
typedef struct {
    int status;       /* the HTTP status to answer (200 unless the adapter says) */
    char *answer;     /* body to answer with (new string), or NULL for "" */
    char *answer_type; /* its Content-Type (new string), or NULL for text/plain */
    /* Events, each an object:
     *   {"kind": "message", "id": platform message id (for de-duplication),
     *    "user": "...", "text"?: "...", "payload"?: "...", "locale"?: "...",
     *    "info"?: {...facts for msg.channel: display_name, phone ...}}
     *   {"kind": "status", "id": id of the message sent, "user": "...",
     *    "status": "sent" | "delivered" | "read" | "failed", "detail"?: ...}
     * A message may also carry "ack": an API call to make at once (such as
     * Telegram's answerCallbackQuery), in the outbox request form below. */
    json_t *events;   /* new array (empty for a handshake) */
} pl_inbound;

void pl_inbound_clear(pl_inbound *in);

/* The context an outbound rendering needs. */
typedef struct {
    const char *user;        /* the platform's id for the shopper */
    /* The facts of the inbound message (msg.channel); for a turn no message
     * of the shopper's ran (unasked: a payment's result, a reminder, an
     * agent's words), those of their last message, kept in the session;
     * NULL when there are none. */
    const json_t *info;
    int unasked;
    const char *locale;      /* the session's locale, or NULL */
    int done;                /* the conversation is over (no flow is open) */
    /* For platforms that limit payload length: stores payload and returns a
     * short key (new string, at most 16 bytes) that pl_webhook.long_payload
     * turns back into it. NULL outside a commit. */
    char *(*short_payload)(void *ctx, const char *payload);
    void *payload_ctx;
    /* When the shopper last wrote (seconds, parley's clock; 0: not known),
     * and whether the turn carries a person's words (an agent's reply):
     * for platforms with a messaging window (pl_channel_adapter.window_s). */
    long long heard_at;
    int by_agent;
    /* Set by the outbox: the window is past, and the replies go only
     * because they are a person's (the adapter tags them as the platform
     * asks). */
    int outside_window;
} pl_outbound;

/* Outgoing API calls are JSON objects, stored in the outbox as they are:
 *   {"method": "POST", "path": "/messages" (appended to the API base),
 *    "headers": {...}, "body": "..." (text, sent as is), "content_type": "..."}
 * A mail sent by SMTP names its envelope instead of a method:
 *   {"path": "", "mail_from": "shop@example.com", "mail_rcpt": ["..."],
 *    "body": the whole message (RFC 5322, CRLF line ends)}
 * Credentials are not in them: the adapter's authorize adds them at send
 * time, so the store holds no secrets. */

typedef struct pl_channel_adapter {
    const char *name;
    /* The API base URL when nothing overrides it. */
    const char *default_api_base;
    /* 1 when the platform waits for the answer in the webhook's response
     * (voice); 0 when replies go out through the outbox. */
    int synchronous;
    /* Verifies and parses a webhook. On PL_ERR, out->status is the 4xx to
     * answer (401/403 for a bad signature or secret, 400 for a body that
     * cannot be parsed) and *err says why; nothing is stored or run.
     * PL_AGAIN: the adapter is fetching what it needs through req->http
     * and will call req->again(req->again_ctx) once, later, on the loop,
     * whether the fetch worked or not; out is untouched and nothing needs
     * freeing. The caller then calls inbound again with the same request
     * (its body and headers: the adapter keeps neither), best from inside
     * again, while the adapter surely still holds what was fetched; that
     * call answers as above (or, should the result be gone, PL_AGAIN once
     * more). */
    int (*inbound)(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                   char **err);
    /* Renders one turn's replies (a JSON array, borrowed) into a new array of
     * API calls, in sending order. Asynchronous channels only. */
    int (*render)(const pl_channel_config *cfg, const pl_outbound *to, const json_t *replies,
                  json_t **calls, char **err);
    /* Synchronous channels: renders the replies into the webhook's answer
     * (new body string and content type). */
    int (*answer)(const pl_channel_config *cfg, const pl_outbound *to, const json_t *replies,
                  char **body, const char **content_type, char **err);
    /* Adds credentials to a stored call right before it is sent: may set
     * headers, replace the URL (the adapter frees the old *url and sets a
     * new one), or set basic auth (*user_pwd new "user:password"). NULL when
     * no credentials are needed. A failure counts as a failed attempt. */
    int (*authorize)(const pl_channel_config *cfg, json_t *headers, char **url, char **user_pwd,
                     char **err);
    /* Optional: reads a failed answer the way the platform means it. The
     * outbox retries network errors, 429 and 5xx and gives up on other 4xx;
     * this may say otherwise (*retry 1 for a transient error the platform
     * reports with a 4xx) and give the delay it asks for (*delay_s >= 0,
     * e.g. from a JSON body), or leave both as they are. */
    void (*retry_hint)(long status, const char *body, int *retry, long *delay_s);
    /* Optional, for platforms that report a failure inside a 2xx answer
     * (Slack's {"ok": false}, WeChat's non-zero errcode): 1 when the answer
     * means the call failed, with *why (new) saying what the platform said
     * and *retry / *delay_s set as retry_hint sets them (the outbox starts
     * from no retry and no delay); 0 when the call was taken. credential
     * is what prepare named for the call (0 without prepare), so that a
     * refusal of a credential since replaced does not drop the new one. */
    int (*refused)(const pl_channel_config *cfg, long credential, long status, const char *body, int *retry,
                   long *delay_s, char **why);
    /* The platform's messaging window, in seconds (0: none): past window_s
     * since the shopper last wrote, the outbox does not queue a turn's
     * replies (a reminder) but logs and counts them; a person's words
     * (pl_outbound.by_agent) still go until agent_window_s, with
     * pl_outbound.outside_window set. */
    long window_s;
    long agent_window_s;
    /* 1 when calls go to a server that the bot's own settings name (email:
     * the SMTP relay of its bot.json, which authorize puts in the URL)
     * rather than to the platform's API: a manifest is not the operator's,
     * so unless the operator set PARLEY_<CHANNEL>_API_BASE such calls
     * connect only to public addresses (pl_http_request.public_only) and
     * an SMTP one only over TLS. */
    int host_from_settings;
    /* 1 when the platform posts the files a shopper sends inside its
     * webhook (email: Mailgun posts each mail with its attachments): the
     * server takes this channel's webhook up to PARLEY_EMAIL_MAX_BODY
     * (32 MiB) where every other route stops at 64 KiB, so that a shopper's
     * words are not lost with their photo. */
    int takes_files;
    /* Optional, for platforms whose calls need a credential that is fetched
     * first (WeChat's access token): run before authorize. PL_OK when it is
     * at hand, with *credential a number naming it (it changes whenever the
     * credential does); PL_AGAIN after starting a fetch through http
     * (borrowed), and ready(ud) then runs once, later, on the loop, whether
     * the fetch worked or not (the caller asks again from there), unless
     * forget(ud) came first; PL_ERR with *err when it cannot be had now
     * (counted as a failed attempt, retried). */
    int (*prepare)(const pl_channel_config *cfg, struct pl_http_client *http, void (*ready)(void *ud),
                   void *ud, long *credential, char **err);
    /* With prepare: ready must not run for ud (the queue that asked is
     * being freed, and the HTTP client may go next): the adapter drops
     * whatever it holds of ud, and a fetch no one waits for any more. */
    void (*forget)(void *ud);
} pl_channel_adapter;

/* The adapter for a channel name, or NULL (registry.c's table). */
const pl_channel_adapter *pl_channel_find(const char *name);

/* Channels with no adapter of their own: rest (the HTTP API) and console
 * (parley chat) answer synchronously inside parley. */
int pl_channel_is_internal(const char *name);

/* Whether parley can send this channel's shoppers something they did not
 * ask for (through the outbox, or the web chat's event stream). */
int pl_channel_can_push(const char *name);

/* Helpers shared by adapters ------------------------------------------------ */

/* Constant-time comparison of a received signature or secret with the
 * expected one: both are hashed (SHA-256) and the digests compared with
 * libcrypto's CRYPTO_memcmp, so not even the length leaks; 1 when equal. */
int pl_channel_signature_equal(const char *received, const char *expected);
/* The same for a hex signature, received in either case (NULL: none),
 * against the expected one in lower case. */
int pl_channel_hex_signature_equal(const char *received, const char *expected);

/* bytes in lower-case hex (new). */
char *pl_channel_hex(const unsigned char *bytes, size_t n);

/* HMAC of data with key: "sha256" or "sha1"; hex (lower case) or base64. */
char *pl_channel_hmac_hex(const char *algorithm, const char *key, const char *data, size_t len);
char *pl_channel_hmac_base64(const char *algorithm, const char *key, const char *data,
                             size_t len);

/* The digest ("sha1" or "sha256") of parts, in order, as lower-case hex
 * (new). With ends, each part is followed by a NUL byte, so that ("ab",
 * "c") and ("a", "bc") differ; without, the parts are simply joined. A NULL
 * part is left out (not even its NUL). */
char *pl_channel_digest_hex(const char *algorithm, const char *const *parts, size_t n, int ends);

/* A new API call object {"method", "path", "body", "content_type"}; body is
 * dumped from json (stolen) when given. */
json_t *pl_channel_call(const char *method, const char *path, json_t *json_body);

/* The texts of a reply flattened for platforms without buttons: the text,
 * then cards as "• Title — price. subtitle" lines, then the choices as
 * "1) Title" lines, then a link as "Title: URL". `first` numbers the first
 * choice (choices count across a turn's replies). */
char *pl_channel_plain_text(const json_t *reply, int first, const char *locale);

/* The short key for a payload: "~" and 12 characters of a hash of it. */
char *pl_channel_payload_key(const char *payload);

/* "€4.50" / "¥450" for a {amount, currency} price in a locale. */
char *pl_channel_price(const json_t *price, const char *locale);

/* Text measured as the platforms count it, in UTF-16 code units (an emoji
 * outside the BMP counts 2), for their length limits. */
size_t pl_channel_text_units(const char *s);
/* The units of the character a UTF-8 byte starts: 0 for a continuation
 * byte, 2 for a 4-byte sequence, else 1. */
size_t pl_channel_char_units(unsigned char lead);
/* Bytes of the longest prefix of s holding at most max units; it ends on a
 * character boundary. */
size_t pl_channel_prefix_bytes(const char *s, size_t max);
/* The same for a limit in bytes of UTF-8 (Instagram, WeChat): at most max
 * bytes, ending on a character boundary. */
size_t pl_channel_prefix_utf8(const char *s, size_t max);
/* s cut to at most max units, ending in "…" when it had to be cut (new). */
char *pl_channel_shortened(const char *s, size_t max);
/* Whether s has something besides white space. */
int pl_channel_has_words(const char *s);
/* Where the next piece of s ends when a message holds at most its first n
 * bytes (measured as the platform counts, ending on a character boundary):
 * n when s ends there; else after the last line break, else the last
 * space, in the piece's second half, with *skip 1 (the separator is left
 * out); else n (at least 1, so that a split always moves on). */
size_t pl_channel_piece_end(const char *s, size_t n, size_t *skip);
/* Whether url is a web address a platform can open (http:// or https://). */
int pl_channel_is_web_url(const char *url);
/* A payload as the flow set it (new JSON string): a short key of
 * pl_outbound.short_payload is looked up; anything else, or a key the
 * store no longer knows, is as it came. */
json_t *pl_channel_long_payload(const pl_webhook *req, const char *payload);
/* A payload as a button or option carries it (new): the payload itself when
 * the platform takes it (1 to max bytes), else a short key standing for it
 * (pl_outbound.short_payload); NULL when it fits neither (no key can be
 * stored outside a commit). */
char *pl_channel_fitting_payload(const pl_outbound *to, const char *payload, size_t max);
/* The label of a link's button: its title cut to max units, else "Open
 * link" in the session's language (new). */
char *pl_channel_link_label(const char *title, size_t max, const char *locale);
/* The label of a card's button: the channel's card_button setting, else
 * "Choose" in the session's language (borrowed). */
const char *pl_channel_card_button(const pl_channel_config *cfg, const char *locale);

/* A form body (application/x-www-form-urlencoded, or multipart/form-data
 * read into the same shape): its fields in the order they came, names and
 * values decoded, each owned by the form. */
typedef struct {
    char *name;
    char *value;
} pl_channel_field;

typedef struct {
    pl_channel_field *items;
    size_t n, cap;
} pl_channel_form;

/* Decodes an application/x-www-form-urlencoded text into f (which must be
 * empty) with libevent's decoder ('+' is a space, %XX a byte, in names
 * too). PL_ERR when the text is not a form; f is then empty. */
int pl_channel_form_parse(const char *text, pl_channel_form *f);
/* Appends a field (name and value copied). */
void pl_channel_form_add(pl_channel_form *f, const char *name, const char *value);
/* The first value of a field (borrowed), or NULL. */
const char *pl_channel_form_get(const pl_channel_form *f, const char *name);
/* The first field whose name or value is not UTF-8 text, or NULL. */
const pl_channel_field *pl_channel_form_not_utf8(const pl_channel_form *f);
void pl_channel_form_free(pl_channel_form *f);

/* URLs and query strings ------------------------------------------------------ */

/* s percent-encoded as RFC 3986 says (every byte but ALPHA, DIGIT, "-",
 * ".", "_" and "~" as %XX, hex in upper case): a query value, or an OAuth
 * 1.0a signature's parts (new). */
char *pl_channel_percent_encode(const char *s);
/* Decodes a query value in place: %XX is a byte, '+' a space. */
void pl_channel_percent_decode(char *s);
/* A parameter of a raw query string (NULL: none), decoded: new string, or
 * NULL when absent. */
char *pl_channel_query_param(const char *query, const char *name);

#endif
