/* channel_email: email as a channel (channel.h) — mail in through
 * Mailgun's inbound routes, replies out by SMTP.
 *
 * Owns the checking of Mailgun's webhook signature (timestamp, token and
 * signature fields, a window around the request's time, a token used once),
 * the reading of the routes' parsed-message posts (form-encoded, or
 * multipart/form-data when the mail has attachments) into message events,
 * the refusal to answer mail no person wrote (auto-replies, bounces, mailing
 * lists) or whose sender Mailgun does not vouch for, and a loop guard per
 * address (both tables per bot and per process), the rendering of a turn's replies
 * into one mail (a plain-text and an HTML part, threaded under the
 * shopper's), and the SMTP relay and login added at send time. Uses
 * channel.c's helpers (settings, HMAC, digests, constant-time compare, form
 * bodies, plain-text fallback, prices), GMime for everything MIME
 * (multipart/form-data, address lists, RFC 2047 headers, quoted-printable,
 * the message itself) and jansson. Sending is http_client.c's SMTP through libcurl.
 *
 * What Mailgun documents and this file follows:
 *   Routes and the forward() action (an HTTP POST of the parsed message,
 *   application/x-www-form-urlencoded, or multipart/form-data when the mail
 *   has attachments; fields signature, timestamp, token, subject, sender
 *   (MAIL FROM), from, recipient, message-headers (a JSON list of [name,
 *   value] pairs, order kept), body-plain, body-html, stripped-text (no
 *   quoted parts or signature block; absent when stripping failed),
 *   attachment-count, attachment-x; 200 taken, 406 rejected, other codes
 *   retried for 8 hours):
 *     https://documentation.mailgun.com/docs/mailgun/user-manual/receive-forward-store/receive-http
 *     https://documentation.mailgun.com/docs/mailgun/user-manual/receive-forward-store/routes
 *   Securing webhooks (signature = hex HMAC-SHA256 of timestamp and token
 *   concatenated, keyed with the HTTP webhook signing key; the token is a
 *   random 50-character string, to be cached and refused when seen again;
 *   the timestamp compared with the current time):
 *     https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
 *   SMTP relay (smtp.mailgun.org, STARTTLS on 587, TLS on 465, login with
 *   the domain's SMTP credentials):
 *     https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-smtp
 * And the mail standards the outgoing mail keeps:
 *   RFC 5322 (Message-ID, In-Reply-To and References for threads, Date),
 *   RFC 2045-2047 (MIME, quoted-printable, encoded words in headers),
 *   RFC 2046 section 5.1.4 (multipart/alternative: plain text first),
 *   RFC 3834 (Auto-Submitted: what not to answer, and marking our own mail
 *   so that an auto-responder does not answer it), RFC 2919 (List-Id),
 *   RFC 3461 / RFC 5321 (the null reverse-path of bounces, reply codes:
 *   4yz transient, 5yz permanent):
 *     https://www.rfc-editor.org/rfc/rfc5322
 *     https://www.rfc-editor.org/rfc/rfc2047
 *     https://www.rfc-editor.org/rfc/rfc3834
 *     https://www.rfc-editor.org/rfc/rfc2919
 *     https://www.rfc-editor.org/rfc/rfc5321#section-4.2.1
 *
 * Settings (bot.json "channels.email", each also as <key>_env):
 * signing_key (required to receive), from ("Shop <orders@...>", required to
 * send), smtp_url (smtps://host:465 or smtp://host:587, STARTTLS required;
 * required to send unless the operator's PARLEY_EMAIL_API_BASE names the
 * relay), smtp_user and smtp_password (AUTH), subject (of a mail that does
 * not answer one of the shopper's), signature_max_age (seconds, default
 * 900), loop_limit and loop_window (default 20 messages in 600 seconds),
 * sender_check ("mailgun", the default: Mailgun's SPF, DKIM and spam
 * verdicts must vouch for the sender; "off": trust it). */
#define _GNU_SOURCE
#include "channel.h"

#include <ctype.h>
#include <gmime/gmime.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "base/log.h"
#include "base/map.h"
#include "base/text.h"

enum {
    TOKEN_MAX = 128,          /* Mailgun's tokens are 50 characters */
    ADDRESS_MAX = 254,        /* RFC 5321's longest path, less the brackets */
    TEXT_MAX = 4000,          /* what of a shopper's mail becomes the message (UTF-16 units) */
    SUBJECT_MAX = 200,        /* our subject, before encoding */
    ID_MAX = 250,             /* a Message-Id kept as the de-duplication id */
    HEADERS_MAX = 500,        /* message-headers pairs read */
    FORM_PARTS_MAX = 256,     /* multipart/form-data parts read */
    REFERENCES_MAX = 12,      /* ids in our References header */
    TOKENS_KEPT = 8192,       /* tokens remembered against replays, per bot */
    ADDRESSES_KEPT = 4096,    /* addresses the loop guard counts, per bot */
    MAX_AGE_DEFAULT = 900,
    LOOP_LIMIT_DEFAULT = 20,
    LOOP_WINDOW_DEFAULT = 600,
};

/* --- settings and small helpers ---------------------------------------------- */

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_start(void) { g_mime_init(); }

/* A numeric setting: a JSON integer or a string of digits (from the
 * environment), else fallback. */
static long setting_long(const pl_channel_config *cfg, const char *key, long fallback) {
    const json_t *v = json_object_get(cfg->settings, key);
    if (json_is_integer(v) && json_integer_value(v) > 0) return (long)json_integer_value(v);
    const char *s = pl_channel_setting(cfg, key);
    char *end = NULL;
    long n = s ? strtol(s, &end, 10) : 0;
    return s && end != s && *end == '\0' && n > 0 ? n : fallback;
}

/* --- remembered tokens and the loop guard --------------------------------------- */

/* Both tables are per bot, per process, and bounded per bot: past its size
 * a bot's entries make room among themselves (the expired first, else the
 * oldest), so no brand can push out another's — a brand's posts, signed
 * with its own key and judged by its own settings, reach only its own
 * tables. Only requests whose signature is good reach them, so a stranger
 * cannot fill them. */

typedef struct {
    long long at;    /* first: see make_room */
    char digest[65]; /* hex SHA-256 of the form the token came with */
} seen_token;

typedef struct {
    long long at; /* first: the window's start */
    long count;
} loop_count;

typedef struct {
    pl_map *tokens; /* token -> seen_token (owned) */
    pl_map *loops;  /* address -> loop_count (owned) */
} bot_guard;

static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static pl_map *guards; /* bot name -> bot_guard (owned; one per bot mailed, for the process's life) */

/* The tables of bot, made on first use. Under guard_lock. */
static bot_guard *guard_of(const char *bot) {
    if (!guards) guards = pl_map_new();
    bot_guard *g = pl_map_get(guards, bot);
    if (!g) {
        g = calloc(1, sizeof *g);
        if (!g) abort();
        g->tokens = pl_map_new();
        g->loops = pl_map_new();
        pl_map_put(guards, bot, g);
    }
    return g;
}

typedef struct {
    pl_map *map;
    long long before, now;
    size_t dropped;
    char *oldest; /* a copy of the oldest key kept */
    long long oldest_at;
} room;

static void drop_stale(const char *key, void *value, void *ud) {
    room *r = ud;
    long long at = *(const long long *)value; /* both entry types start with their time */
    if (at < r->before || at > r->now) {
        free(pl_map_put(r->map, key, NULL)); /* removing the entry given is allowed */
        r->dropped++;
    } else if (!r->oldest || at < r->oldest_at) {
        free(r->oldest);
        r->oldest = pl_strdup(key);
        r->oldest_at = at;
    }
}

/* Room for one more in a full table of one bot: its entries older than
 * before (or from a clock that went back) go; when none is, the oldest. */
static void make_room(pl_map *map, long long before, long long now) {
    room r = {map, before, now, 0, NULL, 0};
    pl_map_each(map, drop_stale, &r);
    if (!r.dropped && r.oldest) free(pl_map_put(map, r.oldest, NULL));
    free(r.oldest);
}

/* The entry of key in one of a bot's tables, else a new one (size bytes,
 * zeroed), made room for when the table is full: entries older than before
 * go first. Under guard_lock. */
static void *entry_of(pl_map *map, const char *key, size_t size, size_t kept, long long before, long long now) {
    void *e = pl_map_get(map, key);
    if (e) return e;
    if (pl_map_count(map) >= kept) make_room(map, before, now);
    e = calloc(1, size);
    if (!e) abort();
    pl_map_put(map, key, e);
    return e;
}

/* What a token's use is at bot: 0 the first (now remembered), 1 again with
 * the same form (Mailgun's redelivery: de-duplicated downstream by the
 * Message-Id), -1 again with another form (a replay of a captured
 * signature over a body of someone else's: the signature does not cover
 * the body). A token is remembered for twice the bot's window: one older
 * can never be accepted again. */
static int token_use(const char *bot, const char *token, const char *digest, long long now, long max_age) {
    int use = 0;
    pthread_mutex_lock(&guard_lock);
    seen_token *seen = entry_of(guard_of(bot)->tokens, token, sizeof *seen, TOKENS_KEPT, now - 2 * max_age, now);
    if (*seen->digest && now - seen->at <= 2 * max_age && seen->at <= now) { /* a new entry has no digest yet */
        use = strcmp(seen->digest, digest) == 0 ? 1 : -1;
    } else {
        snprintf(seen->digest, sizeof seen->digest, "%s", digest);
        seen->at = now;
    }
    pthread_mutex_unlock(&guard_lock);
    return use;
}

/* Counts a message from address to bot; 1 when it is more than limit in
 * the window that the address's first counted message opened. */
static int over_loop_limit(const char *bot, const char *address, long long now, long limit, long window) {
    pthread_mutex_lock(&guard_lock);
    loop_count *e = entry_of(guard_of(bot)->loops, address, sizeof *e, ADDRESSES_KEPT, now - window, now);
    if (e->count == 0 || now - e->at >= window || now < e->at) { /* new, or its window is past */
        e->at = now;
        e->count = 0;
    }
    int over = ++e->count > limit;
    pthread_mutex_unlock(&guard_lock);
    return over;
}

/* --- inbound: the form --------------------------------------------------------- */

/* A multipart/form-data body read by GMime into form: each part named by
 * its Content-Disposition's name is a field, except files (a filename),
 * whose names go to files instead: attachments are not kept. PL_ERR with
 * *err when it is no such body, or a field holds a NUL byte. */
static int read_multipart(const char *content_type, const pl_webhook *req, pl_channel_form *form,
                          json_t *files, char **err) {
    if (strpbrk(content_type, "\r\n")) return pl_fail(err, "the Content-Type header spans lines");
    pthread_once(&gmime_once, gmime_start);
    GMimeContentType *type = g_mime_content_type_parse(NULL, content_type);
    const char *boundary = type ? g_mime_content_type_get_parameter(type, "boundary") : NULL;
    int bounded = boundary && *boundary;
    if (type) g_object_unref(type);
    if (!bounded) return pl_fail(err, "multipart/form-data without a boundary");
    char *head = pl_strdupf("Content-Type: %s\r\n\r\n", content_type);
    GMimeStream *all = g_mime_stream_cat_new();
    GMimeStream *a = g_mime_stream_mem_new_with_buffer(head, strlen(head));
    GMimeStream *b = g_mime_stream_mem_new_with_buffer(req->body, req->body_len);
    g_mime_stream_cat_add_source(GMIME_STREAM_CAT(all), a);
    g_mime_stream_cat_add_source(GMIME_STREAM_CAT(all), b);
    g_object_unref(a);
    g_object_unref(b);
    GMimeParser *parser = g_mime_parser_new_with_stream(all);
    g_object_unref(all);
    GMimeObject *top = g_mime_parser_construct_part(parser, NULL);
    g_object_unref(parser);
    free(head);
    int rc = PL_OK;
    if (!top || !GMIME_IS_MULTIPART(top)) {
        rc = pl_fail(err, "the body is not multipart/form-data with a boundary");
    }
    int count = rc == PL_OK ? g_mime_multipart_get_count(GMIME_MULTIPART(top)) : 0;
    for (int i = 0; rc == PL_OK && i < count && i < FORM_PARTS_MAX; i++) {
        GMimeObject *part = g_mime_multipart_get_part(GMIME_MULTIPART(top), i);
        const char *name = GMIME_IS_PART(part) ? g_mime_object_get_content_disposition_parameter(part, "name") : NULL;
        if (!name) continue; /* nested multiparts and unnamed parts carry no field */
        const char *filename = g_mime_part_get_filename(GMIME_PART(part));
        if (filename) {
            if (json_array_size(files) < 50) json_array_append_new(files, json_string(filename));
            continue;
        }
        GMimeStream *out = g_mime_stream_mem_new();
        GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(part));
        if (content) g_mime_data_wrapper_write_to_stream(content, out);
        GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
        if (memchr(bytes->data, '\0', bytes->len)) {
            rc = pl_fail(err, "the field %.60s holds a NUL byte", name);
        } else {
            char *value = pl_strndup((const char *)bytes->data, bytes->len);
            pl_channel_form_add(form, name, value);
            free(value);
        }
        g_object_unref(out);
    }
    if (top) g_object_unref(top);
    return rc;
}

/* The form of a request, by its Content-Type. */
static int read_form(const pl_webhook *req, pl_channel_form *form, json_t *files, char **err) {
    const char *type = req->header ? req->header(req->header_ctx, "Content-Type") : NULL;
    if (!type) return pl_fail(err, "no Content-Type (Mailgun posts a form)");
    if (strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0) {
        if (strlen(req->body) != req->body_len) return pl_fail(err, "the form holds a NUL byte");
        if (pl_channel_form_parse(req->body, form) != PL_OK)
            return pl_fail(err, "the body is not application/x-www-form-urlencoded");
        return PL_OK;
    }
    if (strncasecmp(type, "multipart/form-data", 19) == 0) return read_multipart(type, req, form, files, err);
    return pl_fail(err, "the Content-Type is '%.60s', not a form", type);
}

/* Hex SHA-256 of the form's fields but the signature's, names and values,
 * in order, and the attachments' names: what a token came with (the same
 * mail again gives the same, whatever its multipart boundary). New string. */
static char *form_digest(const pl_channel_form *form, const json_t *files) {
    const char **parts = malloc((2 * form->n + json_array_size(files) + 1) * sizeof *parts);
    if (!parts) abort();
    size_t n = 0;
    for (size_t i = 0; i < form->n; i++) {
        const char *name = form->items[i].name;
        if (strcmp(name, "timestamp") == 0 || strcmp(name, "token") == 0 || strcmp(name, "signature") == 0) continue;
        parts[n++] = name;
        parts[n++] = form->items[i].value;
    }
    size_t i;
    json_t *file;
    json_array_foreach(files, i, file) parts[n++] = json_string_value(file);
    char *hex = pl_channel_digest_hex("sha256", parts, n, 1);
    free(parts);
    return hex;
}

/* --- inbound: the signature ---------------------------------------------------- */

/* Mailgun's signature: hex HMAC-SHA256 of timestamp and token keyed with
 * the signing key, compared in constant time; then the timestamp within
 * signature_max_age of the request's time, and the token not used before
 * for another mail. *fresh: the token is used the first time. */
static int check_signature(const pl_channel_config *cfg, const char *key, const pl_webhook *req,
                           const pl_channel_form *form, const json_t *files, int *status, int *fresh,
                           char **err) {
    const char *ts = pl_channel_form_get(form, "timestamp");
    const char *token = pl_channel_form_get(form, "token");
    const char *signature = pl_channel_form_get(form, "signature");
    *status = 401;
    if (!ts || !*ts || !token || !*token || !signature || !*signature)
        return pl_fail(err, "no Mailgun signature (the timestamp, token and signature fields)");
    *status = 403;
    if (strlen(token) > TOKEN_MAX) return pl_fail(err, "the token is longer than %d characters", TOKEN_MAX);
    if (strlen(ts) > 12 || ts[strspn(ts, "0123456789")])
        return pl_fail(err, "the timestamp is not a number of seconds");
    char *data = pl_strdupf("%s%s", ts, token);
    char *expected = pl_channel_hmac_hex("sha256", key, data, strlen(data));
    int equal = pl_channel_hex_signature_equal(signature, expected);
    free(expected);
    free(data);
    if (!equal) return pl_fail(err, "the signature does not match the timestamp and token signed with the signing key");
    long max_age = setting_long(cfg, "signature_max_age", MAX_AGE_DEFAULT);
    long long age = req->now - strtoll(ts, NULL, 10);
    if (age > max_age || age < -max_age)
        return pl_fail(err, "the signature's timestamp is %lld s from now, more than signature_max_age (%ld s): "
                            "a replay, or a clock that is off", age, max_age);
    char *digest = form_digest(form, files);
    int use = token_use(cfg->bot, token, digest, req->now, max_age);
    free(digest);
    if (use < 0) return pl_fail(err, "the token was already used for another message: a replay");
    *fresh = use == 0;
    return PL_OK;
}

/* --- inbound: the message ------------------------------------------------------------ */

/* Which header of a name header_value reads. */
enum { LAST_OF_NAME, FIRST_OF_NAME };

/* The value of a header of the message, or NULL. Of several of that name,
 * the last (LAST_OF_NAME: Mailgun keeps the order, and what a relay added
 * comes first), or the first (FIRST_OF_NAME: for the headers Mailgun adds
 * on receipt, X-Mailgun-*, which come before the message's own, so that
 * copies a sender wrote into their mail come after them and are not read). */
static const char *header_value(const json_t *headers, const char *name, int which) {
    const char *found = NULL;
    size_t i;
    json_t *pair;
    json_array_foreach(headers, i, pair) {
        if (i >= HEADERS_MAX) break;
        const char *n = json_string_value(json_array_get(pair, 0));
        if (n && strcasecmp(n, name) == 0) {
            found = json_string_value(json_array_get(pair, 1));
            if (which == FIRST_OF_NAME) break;
        }
    }
    return found;
}

/* message-headers: a JSON list of [name, value] string pairs (new), or
 * NULL with *err. */
static json_t *read_headers(const char *text, char **err) {
    json_error_t jerr;
    json_t *list = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_array(list)) {
        pl_fail(err, "message-headers is not a JSON list%s%s", list ? "" : ": ", list ? "" : jerr.text);
        json_decref(list);
        return NULL;
    }
    size_t i;
    json_t *pair;
    json_array_foreach(list, i, pair) {
        if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_string(json_array_get(pair, 0)) ||
            !json_is_string(json_array_get(pair, 1))) {
            pl_fail(err, "message-headers[%zu] is not a [name, value] pair of strings", i);
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

/* The first word of a header value (NULL: none), lower-cased, in buf. */
static const char *first_word(const char *value, char *buf, size_t size) {
    const char *p = value ? value + strspn(value, " \t\r\n") : "";
    size_t n = strcspn(p, " \t\r\n;,");
    if (n >= size) n = size - 1;
    for (size_t i = 0; i < n; i++) buf[i] = (char)tolower((unsigned char)p[i]);
    buf[n] = '\0';
    return buf;
}

/* Why a mail must not be answered (RFC 3834: no person wrote it, or
 * answering would reach many or loop), or NULL. */
static const char *not_for_an_answer(const char *sender, const json_t *headers) {
    char word[32];
    const char *v;
    if (!*sender || strcmp(sender, "<>") == 0) return "a null sender (a bounce)";
    const char *at = strrchr(sender, '@');
    size_t local = at ? (size_t)(at - sender) : strlen(sender);
    if ((local == 13 && strncasecmp(sender, "mailer-daemon", 13) == 0) ||
        (local == 10 && strncasecmp(sender, "postmaster", 10) == 0))
        return "a mail system's sender (a bounce or report)";
    if ((v = header_value(headers, "Auto-Submitted", LAST_OF_NAME)) && strcmp(first_word(v, word, sizeof word), "no") != 0)
        return "Auto-Submitted";
    if ((v = header_value(headers, "Precedence", LAST_OF_NAME))) {
        first_word(v, word, sizeof word);
        if (strcmp(word, "bulk") == 0 || strcmp(word, "junk") == 0 || strcmp(word, "list") == 0)
            return "Precedence: bulk, junk or list";
    }
    if (header_value(headers, "List-Id", LAST_OF_NAME)) return "List-Id (a mailing list)";
    if (header_value(headers, "List-Unsubscribe", LAST_OF_NAME)) return "List-Unsubscribe (a mailing)";
    if (header_value(headers, "X-Autoreply", LAST_OF_NAME) || header_value(headers, "X-Autorespond", LAST_OF_NAME))
        return "X-Autoreply (an auto-responder)";
    if ((v = header_value(headers, "Return-Path", LAST_OF_NAME)) && strcmp(v + strspn(v, " \t"), "<>") == 0)
        return "a null Return-Path (a bounce)";
    return NULL;
}

/* Why a mail's sender cannot be believed, or NULL. The sender (SMTP MAIL
 * FROM) is the shopper, and nothing in the post proves it: Mailgun's own
 * verdicts must, added to the headers when the domain's spam filter is set
 * to "Mark spam with MIME headers" (Receiving → spam filter): X-Mailgun-Spf
 * (Pass, Neutral, Fail or SoftFail: the sending host may send for the
 * sender's domain), X-Mailgun-Dkim-Check-Result (Pass or Fail: a DKIM
 * signature of the mail verified) and X-Mailgun-Sflag (Yes: classified as
 * spam). Answered: not spam, and SPF or DKIM passed. The sender_check
 * setting "off" trusts the sender (a relay that adds no such headers).
 * why is filled into buf. */
static const char *sender_not_believed(const pl_channel_config *cfg, const json_t *headers, char *buf, size_t size) {
    const char *check = pl_channel_setting(cfg, "sender_check");
    if (check && strcmp(check, "off") == 0) return NULL;
    char spf[16], dkim[16], flag[16];
    first_word(header_value(headers, "X-Mailgun-Spf", FIRST_OF_NAME), spf, sizeof spf);
    first_word(header_value(headers, "X-Mailgun-Dkim-Check-Result", FIRST_OF_NAME), dkim, sizeof dkim);
    first_word(header_value(headers, "X-Mailgun-Sflag", FIRST_OF_NAME), flag, sizeof flag);
    if (strcmp(flag, "yes") == 0) {
        snprintf(buf, size, "Mailgun flagged it as spam (X-Mailgun-Sflag: Yes)");
        return buf;
    }
    if (strcmp(spf, "pass") == 0 || strcmp(dkim, "pass") == 0) return NULL;
    snprintf(buf, size,
             "neither SPF nor DKIM passed at Mailgun (X-Mailgun-Spf: %s, X-Mailgun-Dkim-Check-Result: %s): the sender "
             "may be forged%s", *spf ? spf : "none", *dkim ? dkim : "none",
             *spf || *dkim ? "" : " (set the domain's spam filter to mark spam with MIME headers, or sender_check "
                                  "\"off\" for a relay that adds none)");
    return buf;
}

/* The sender as the shopper's id: lower-cased, without angle brackets
 * (new), or NULL when it is not an address one can write to. */
static char *shopper_address(const char *sender) {
    size_t n = strlen(sender);
    if (n >= 2 && sender[0] == '<' && sender[n - 1] == '>') sender++, n -= 2;
    if (n == 0 || n > ADDRESS_MAX) return NULL;
    char *address = pl_strndup(sender, n);
    const char *at = strrchr(address, '@');
    int ok = at && at != address && at[1] && strchr(address, '@') == at;
    for (char *p = address; ok && *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' || c == '"' || c == '\\') ok = 0;
        *p = (char)tolower(c);
    }
    if (!ok) {
        free(address);
        return NULL;
    }
    return address;
}

/* The display name of a From header, decoded (RFC 2047) by GMime (new),
 * or NULL. */
static char *display_name(const char *from) {
    if (!from || !*from) return NULL;
    pthread_once(&gmime_once, gmime_start);
    InternetAddressList *list = internet_address_list_parse(NULL, from);
    InternetAddress *first = list && internet_address_list_length(list) > 0 ? internet_address_list_get_address(list, 0) : NULL;
    const char *name = first ? internet_address_get_name(first) : NULL;
    char *copy = name && *name && g_utf8_validate(name, -1, NULL) ? pl_strdup(name) : NULL;
    for (char *p = copy; p && *p; p++)
        if ((unsigned char)*p < ' ') *p = ' '; /* it goes back into our To header */
    if (list) g_object_unref(list);
    return copy;
}

/* The de-duplication id: the Message-Id, else (none, or one too long) a
 * digest of what identifies the mail, the same for each redelivery. */
static json_t *event_id(const char *message_id, const char *sender, const pl_channel_form *form) {
    if (message_id && *message_id && strlen(message_id) <= ID_MAX) return json_string(message_id);
    const char *parts[] = {message_id ? message_id : "", sender, pl_channel_form_get(form, "subject"),
                           pl_channel_form_get(form, "body-plain"), pl_channel_form_get(form, "timestamp")};
    char *hex = pl_channel_digest_hex("sha256", parts, sizeof parts / sizeof *parts, 1); /* NULL parts left out */
    json_t *id = json_sprintf("sha256:%s", hex);
    free(hex);
    return id;
}

/* The shopper's words: stripped-text (no quoted history, no signature),
 * else body-plain when Mailgun could not strip or stripped it all; cut to
 * TEXT_MAX. New string. */
static char *message_text(const pl_channel_form *form) {
    const char *text = pl_channel_form_get(form, "stripped-text");
    if (!pl_channel_has_words(text)) text = pl_channel_form_get(form, "body-plain");
    GString *trimmed = g_string_new(text ? text + strspn(text, " \t\r\n") : "");
    while (trimmed->len && strchr(" \t\r\n", trimmed->str[trimmed->len - 1])) g_string_truncate(trimmed, trimmed->len - 1);
    char *cut = pl_channel_shortened(trimmed->str, TEXT_MAX);
    g_string_free(trimmed, TRUE);
    return cut;
}

/* Facts for msg.channel: platform, email, display_name, subject,
 * message_id, references (the thread so far), to, attachments (names). */
static json_t *info_of(const pl_channel_form *form, const json_t *headers, const char *address,
                       const char *message_id, const json_t *files) {
    json_t *info = json_pack("{s:s, s:s}", "platform", "email", "email", address);
    char *name = display_name(pl_channel_form_get(form, "from"));
    if (name) json_object_set_new(info, "display_name", json_string(name));
    free(name);
    const char *subject = pl_channel_form_get(form, "subject");
    if (!subject) subject = header_value(headers, "Subject", LAST_OF_NAME);
    if (subject) json_object_set_new(info, "subject", json_string(subject));
    if (message_id && *message_id) json_object_set_new(info, "message_id", json_string(message_id));
    const char *refs = header_value(headers, "References", LAST_OF_NAME);
    if (refs && g_utf8_validate(refs, -1, NULL)) json_object_set_new(info, "references", json_string(refs));
    const char *to = pl_channel_form_get(form, "recipient");
    if (to && *to) json_object_set_new(info, "to", json_string(to));
    if (json_array_size(files) > 0) json_object_set(info, "attachments", (json_t *)files);
    return info;
}

/* A verified form as events: none for mail not to be answered or past the
 * loop guard (acknowledged all the same), else one message. */
static int read_message(const pl_channel_config *cfg, const pl_webhook *req, const pl_channel_form *form,
                        const json_t *files, int fresh, pl_inbound *out, char **err) {
    const pl_channel_field *bad = pl_channel_form_not_utf8(form);
    if (bad) return pl_fail(err, "the field %.60s is not UTF-8 text", bad->name);
    const char *sender = pl_channel_form_get(form, "sender");
    const char *header_text = pl_channel_form_get(form, "message-headers");
    if (!sender) return pl_fail(err, "no sender field");
    if (!header_text) return pl_fail(err, "no message-headers field");
    json_t *headers = read_headers(header_text, err);
    if (!headers) return PL_ERR;
    out->events = json_array();
    out->status = 200;
    int rc = PL_OK;
    char *address = NULL;
    char doubt[320];
    long limit = setting_long(cfg, "loop_limit", LOOP_LIMIT_DEFAULT);
    long window = setting_long(cfg, "loop_window", LOOP_WINDOW_DEFAULT);
    const char *why = not_for_an_answer(sender, headers);
    if (why) {
        pl_info("[%s] email: not answering a mail from '%.80s': %s", cfg->bot, sender, why);
    } else if ((why = sender_not_believed(cfg, headers, doubt, sizeof doubt))) {
        pl_warn("[%s] email: not answering a mail from '%.80s': %s", cfg->bot, sender, why);
    } else if (!(address = shopper_address(sender))) {
        json_decref(out->events);
        out->events = NULL;
        rc = pl_fail(err, "the sender '%.80s' is not an email address", sender);
    } else if (fresh && over_loop_limit(cfg->bot, address, req->now, limit, window)) {
        pl_warn("[%s] email: more than %ld mails from %s in %ld s: ignored (a mail loop?)", cfg->bot, limit, address,
                window);
    } else {
        const char *message_id = header_value(headers, "Message-Id", LAST_OF_NAME);
        if (!message_id) message_id = pl_channel_form_get(form, "Message-Id");
        char *text = message_text(form);
        json_t *ev = json_pack("{s:s, s:o, s:s, s:s, s:o}", "kind", "message", "id",
                               event_id(message_id, address, form), "user", address, "text", text, "info",
                               info_of(form, headers, address, message_id, files));
        json_array_append_new(out->events, ev);
        free(text);
    }
    free(address);
    json_decref(headers);
    return rc;
}

/* Verifies and reads a route's post: the signing key first (503 when not
 * set), then the form (400), the signature (401/403), and the message
 * (400). Mail that must not be answered is acknowledged with no event. */
static int email_inbound(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out, char **err) {
    const char *key = pl_channel_require(cfg, "signing_key", &out->status, err);
    if (!key) return PL_ERR;
    if (strcmp(req->method, "POST") != 0) {
        out->status = 405;
        return pl_fail(err, "Mailgun's routes POST; a %.10s is not a mail", req->method);
    }
    pl_channel_form form = {0};
    json_t *files = json_array();
    int fresh = 0, status = 400;
    int rc = read_form(req, &form, files, err);
    if (rc == PL_OK) rc = check_signature(cfg, key, req, &form, files, &status, &fresh, err);
    if (rc == PL_OK) {
        status = 400;
        rc = read_message(cfg, req, &form, files, fresh, out, err);
    }
    if (rc != PL_OK) out->status = status;
    pl_channel_form_free(&form);
    json_decref(files);
    return rc;
}

/* --- outbound: the words --------------------------------------------------------- */

/* An image of a reply: a URL, or an object with "url". */
static const char *url_of(const json_t *v) {
    return json_is_string(v) ? json_string_value(v) : json_string_value(json_object_get(v, "url"));
}

/* One reply as plain text: channel.c's fallback (text, cards as lines,
 * choices numbered from first, the link as "Title: URL") and its image's
 * URL. New string. */
static char *reply_text(const json_t *reply, int first, const char *locale) {
    char *text = pl_channel_plain_text(reply, first, locale);
    const char *image = url_of(json_object_get(reply, "image"));
    if (pl_channel_is_web_url(image)) {
        char *with = *text ? pl_strdupf("%s\n%s", text, image) : pl_strdup(image);
        free(text);
        text = with;
    }
    return text;
}

/* Text as HTML: escaped, line breaks kept. */
static void add_html_text(GString *html, const char *text) {
    char *escaped = pl_text_html_escape(text);
    for (const char *p = escaped; *p; p++) {
        if (*p == '\n') g_string_append(html, "<br>\n");
        else g_string_append_c(html, *p);
    }
    free(escaped);
}

static void add_html_image(GString *html, const char *url, const char *alt, int width) {
    char *src = pl_text_html_escape(url), *text = pl_text_html_escape(alt ? alt : "");
    g_string_append_printf(html, "<img src=\"%s\" alt=\"%s\" width=\"%d\" style=\"max-width:100%%;height:auto;"
                                 "border-radius:6px\">", src, text, width);
    free(src);
    free(text);
}

/* Cards as a list: image, title, price, description. */
static void add_html_cards(GString *html, const json_t *cards, const char *locale) {
    g_string_append(html, "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" style=\"margin:8px 0\">\n");
    size_t i;
    json_t *card;
    json_array_foreach(cards, i, card) {
        const char *title = json_string_value(json_object_get(card, "title"));
        const char *subtitle = json_string_value(json_object_get(card, "subtitle"));
        const char *image = json_string_value(json_object_get(card, "image"));
        const json_t *price = json_object_get(card, "price");
        char *money = json_is_object(price) && json_is_string(json_object_get(price, "currency"))
                          ? pl_channel_price(price, locale) : NULL;
        g_string_append(html, "<tr><td style=\"padding:6px 12px 6px 0;vertical-align:top\">");
        if (pl_channel_is_web_url(image)) add_html_image(html, image, title, 96);
        g_string_append(html, "</td><td style=\"padding:6px 0;vertical-align:top\"><strong>");
        add_html_text(html, title ? title : "");
        g_string_append(html, "</strong>");
        if (money) {
            g_string_append(html, " — ");
            add_html_text(html, money);
        }
        if (subtitle && *subtitle) {
            g_string_append(html, "<br>\n<span style=\"color:#555\">");
            add_html_text(html, subtitle);
            g_string_append(html, "</span>");
        }
        g_string_append(html, "</td></tr>\n");
        free(money);
    }
    g_string_append(html, "</table>\n");
}

/* One reply as HTML: text, image, cards, the choices as numbered lines (a
 * mail cannot carry buttons that answer: the shopper writes the number
 * back), and a link as a button. */
static void add_html_reply(GString *html, const json_t *reply, int first, const char *locale) {
    const char *text = json_string_value(json_object_get(reply, "text"));
    if (pl_channel_has_words(text)) {
        g_string_append(html, "<p style=\"margin:0 0 12px\">");
        add_html_text(html, text);
        g_string_append(html, "</p>\n");
    }
    const char *image = url_of(json_object_get(reply, "image"));
    if (pl_channel_is_web_url(image)) {
        g_string_append(html, "<p style=\"margin:0 0 12px\">");
        add_html_image(html, image, "", 480);
        g_string_append(html, "</p>\n");
    }
    const json_t *cards = json_object_get(reply, "cards");
    if (json_array_size(cards) > 0) add_html_cards(html, cards, locale);
    const json_t *choices = json_object_get(reply, "choices");
    if (json_array_size(choices) > 0) {
        g_string_append(html, "<p style=\"margin:0 0 12px\">");
        size_t i;
        json_t *choice;
        json_array_foreach(choices, i, choice) {
            const char *title = json_string_value(json_object_get(choice, "title"));
            g_string_append_printf(html, "%s<strong>%d)</strong> ", i ? "<br>\n" : "", first + (int)i);
            add_html_text(html, title ? title : "");
        }
        g_string_append(html, "</p>\n");
    }
    const json_t *link = json_object_get(reply, "link");
    const char *url = url_of(link), *title = json_string_value(json_object_get(link, "title"));
    if (pl_channel_is_web_url(url)) {
        char *href = pl_text_html_escape(url);
        g_string_append_printf(html, "<p style=\"margin:16px 0\"><a href=\"%s\" style=\"display:inline-block;"
                                     "padding:10px 20px;background:#1f6f43;color:#ffffff;text-decoration:none;"
                                     "border-radius:6px;font-weight:bold\">", href);
        add_html_text(html, pl_channel_has_words(title) ? title : url);
        g_string_append(html, "</a></p>\n");
        free(href);
    } else if (url) {
        g_string_append(html, "<p style=\"margin:0 0 12px\">");
        add_html_text(html, title ? title : "");
        g_string_append(html, title ? ": " : "");
        add_html_text(html, url);
        g_string_append(html, "</p>\n");
    }
}

/* --- outbound: the mail -------------------------------------------------------------- */

typedef struct {
    const pl_channel_config *cfg;
    const pl_outbound *to;
    InternetAddressMailbox *from; /* the from setting, parsed */
    const char *domain;           /* of from: our Message-IDs' right side */
} mail_ctx;

/* The subject: "Re: " and the shopper's subject without its own Re:/Fwd:
 * prefixes (so it stays the same along the thread), else the subject
 * setting, else from's display name, else the bot's name. New string. */
static char *subject_of(const mail_ctx *m) {
    const char *theirs = json_string_value(json_object_get(m->to->info, "subject"));
    static const char *const prefixes[] = {"re:", "fwd:", "fw:", "aw:", "sv:", "antw:", "wg:", "tr:"};
    while (theirs) {
        theirs += strspn(theirs, " \t");
        size_t k = 0;
        while (k < sizeof prefixes / sizeof *prefixes && strncasecmp(theirs, prefixes[k], strlen(prefixes[k])) != 0) k++;
        if (k == sizeof prefixes / sizeof *prefixes) break;
        theirs += strlen(prefixes[k]);
    }
    char *subject;
    const char *setting;
    if (pl_channel_has_words(theirs)) subject = pl_strdupf("Re: %s", theirs);
    else if ((setting = pl_channel_setting(m->cfg, "subject"))) subject = pl_strdup(setting);
    else {
        const char *name = internet_address_get_name(INTERNET_ADDRESS(m->from));
        subject = pl_strdup(name && *name ? name : m->cfg->bot);
    }
    for (char *p = subject; *p; p++)
        if (*p == '\r' || *p == '\n' || *p == '\t') *p = ' ';
    char *cut = pl_channel_shortened(subject, SUBJECT_MAX);
    free(subject);
    return cut;
}

/* The conversation's thread root: a Message-ID no mail has, the same for
 * every mail to this shopper from this bot, first in our References, so a
 * mail that answers nothing (a reminder, an agent's reply) still joins
 * the thread in clients that thread by References. New string. */
static char *thread_root(const mail_ctx *m) {
    char *seed = pl_strdupf("%s\n%s", m->cfg->bot, m->to->user);
    char *key = pl_channel_payload_key(seed);
    char *root = pl_strdupf("<thread.%s@%s>", key + 1, m->domain);
    free(key);
    free(seed);
    return root;
}

/* Adds an id to refs unless it is there, empty or too long. */
static void add_reference(GPtrArray *refs, const char *id) {
    if (!id || !*id || strlen(id) > ID_MAX || strpbrk(id, " \t\r\n")) return;
    for (guint i = 0; i < refs->len; i++)
        if (strcmp(g_ptr_array_index(refs, i), id) == 0) return;
    g_ptr_array_add(refs, g_strdup(id));
}

/* In-Reply-To (the shopper's mail) and References: the thread root, the
 * shopper's References and their Message-Id, at most REFERENCES_MAX (the
 * root and the newest). */
static void set_thread(const mail_ctx *m, GMimeMessage *msg) {
    GPtrArray *refs = g_ptr_array_new_with_free_func(g_free);
    char *root = thread_root(m);
    add_reference(refs, root);
    const char *theirs = json_string_value(json_object_get(m->to->info, "references"));
    GMimeReferences *parsed = theirs ? g_mime_references_parse(NULL, theirs) : NULL;
    for (int i = 0; parsed && i < g_mime_references_length(parsed); i++) {
        char *id = pl_strdupf("<%s>", g_mime_references_get_message_id(parsed, i));
        add_reference(refs, id);
        free(id);
    }
    if (parsed) g_mime_references_free(parsed);
    const char *parent = json_string_value(json_object_get(m->to->info, "message_id"));
    if (parent && strlen(parent) <= ID_MAX && !strpbrk(parent, "\r\n")) {
        add_reference(refs, parent);
        g_mime_object_set_header(GMIME_OBJECT(msg), "In-Reply-To", parent, NULL);
    }
    GString *line = g_string_new(NULL);
    guint keep_from = refs->len > REFERENCES_MAX ? refs->len - (REFERENCES_MAX - 1) : 1;
    for (guint i = 0; i < refs->len; i++) {
        if (i > 0 && i < keep_from) continue;
        g_string_append_printf(line, "%s%s", line->len ? " " : "", (char *)g_ptr_array_index(refs, i));
    }
    g_mime_object_set_header(GMIME_OBJECT(msg), "References", line->str, NULL);
    g_string_free(line, TRUE);
    g_ptr_array_free(refs, TRUE);
    free(root);
}

/* A text part of the mail, UTF-8, quoted-printable (new reference). */
static GMimeObject *text_part(const char *subtype, const char *text) {
    GMimePart *part = GMIME_PART(g_mime_text_part_new_with_subtype(subtype));
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(text, strlen(text));
    GMimeDataWrapper *content = g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(part, content);
    g_object_unref(content);
    g_object_unref(stream);
    g_mime_object_set_content_type_parameter(GMIME_OBJECT(part), "charset", "utf-8");
    g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
    return GMIME_OBJECT(part);
}

/* The whole mail (new string, CRLF line ends): headers, and the turn as a
 * multipart/alternative of text and HTML. */
static char *compose(const mail_ctx *m, const char *text, const char *html) {
    GMimeMessage *msg = g_mime_message_new(TRUE);
    g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, internet_address_get_name(INTERNET_ADDRESS(m->from)),
                               internet_address_mailbox_get_addr(m->from));
    const char *name = json_string_value(json_object_get(m->to->info, "display_name"));
    g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, name, m->to->user);
    char *subject = subject_of(m);
    g_mime_message_set_subject(msg, subject, "utf-8");
    free(subject);
    GDateTime *now = g_date_time_new_now_utc();
    g_mime_message_set_date(msg, now);
    g_date_time_unref(now);
    char *id = g_mime_utils_generate_message_id(m->domain);
    g_mime_message_set_message_id(msg, id);
    g_free(id);
    set_thread(m, msg);
    /* RFC 3834: ours is an automatic answer, which auto-responders leave
     * be; Exchange's out-of-office answers are asked not to come */
    g_mime_object_set_header(GMIME_OBJECT(msg), "Auto-Submitted", m->to->unasked ? "auto-generated" : "auto-replied", NULL);
    g_mime_object_set_header(GMIME_OBJECT(msg), "X-Auto-Response-Suppress", "All", NULL);
    GMimeMultipart *alternative = g_mime_multipart_new_with_subtype("alternative");
    GMimeObject *plain = text_part("plain", text), *rich = text_part("html", html);
    g_mime_multipart_add(alternative, plain);
    g_mime_multipart_add(alternative, rich);
    g_object_unref(plain);
    g_object_unref(rich);
    g_mime_message_set_mime_part(msg, GMIME_OBJECT(alternative));
    g_object_unref(alternative);
    GMimeFormatOptions *options = g_mime_format_options_clone(NULL);
    g_mime_format_options_set_newline_format(options, GMIME_NEWLINE_FORMAT_DOS);
    char *written = g_mime_object_to_string(GMIME_OBJECT(msg), options);
    char *copy = pl_strdup(written);
    g_free(written);
    g_mime_format_options_free(options);
    g_object_unref(msg);
    return copy;
}

/* The from setting as one mailbox (a new reference), or NULL with *err. */
static InternetAddressMailbox *from_mailbox(const pl_channel_config *cfg, char **err) {
    const char *from = pl_channel_require(cfg, "from", NULL, err);
    if (!from) return NULL;
    InternetAddressList *list = internet_address_list_parse(NULL, from);
    InternetAddress *first = list && internet_address_list_length(list) == 1 ? internet_address_list_get_address(list, 0) : NULL;
    const char *addr = first && INTERNET_ADDRESS_IS_MAILBOX(first) ? internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(first)) : NULL;
    InternetAddressMailbox *box = NULL;
    if (addr && strchr(addr, '@') && !strpbrk(addr, " <>\r\n")) box = INTERNET_ADDRESS_MAILBOX(g_object_ref(first));
    else pl_fail(err, "the from setting of the email channel ('%.80s') is not one address such as \"Shop <orders@example.com>\"", from);
    if (list) g_object_unref(list);
    return box;
}

/* Renders a turn as one mail: the replies' texts one after another (a blank
 * line between them in the text part), the choices numbered across the
 * turn as the engine counts them, so "2" written back taps the second.
 * One mail rather than one per reply: a turn is one answer, and mail
 * clients do not keep separate mails in order. A turn with nothing to say
 * sends nothing. */
static int email_render(const pl_channel_config *cfg, const pl_outbound *to, const json_t *replies, json_t **calls,
                        char **err) {
    if (!to->user || !*to->user || strpbrk(to->user, " <>\r\n,") || !strchr(to->user, '@'))
        return pl_fail(err, "no email address to send to");
    pthread_once(&gmime_once, gmime_start);
    InternetAddressMailbox *from = from_mailbox(cfg, err);
    if (!from) return PL_ERR;
    const char *addr = internet_address_mailbox_get_addr(from);
    mail_ctx m = {cfg, to, from, strrchr(addr, '@') + 1};
    GString *text = g_string_new(NULL);
    GString *html = g_string_new("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n"
                                 "<body style=\"font-family:Helvetica,Arial,sans-serif;font-size:15px;"
                                 "line-height:1.45;color:#222\">\n");
    int next = 1, said = 0;
    size_t i;
    json_t *reply;
    json_array_foreach(replies, i, reply) {
        if (!json_is_object(reply)) continue;
        char *part = reply_text(reply, next, to->locale);
        if (*part) {
            g_string_append_printf(text, "%s%s", text->len ? "\n\n" : "", part);
            add_html_reply(html, reply, next, to->locale);
            said = 1;
        }
        free(part);
        next += (int)json_array_size(json_object_get(reply, "choices"));
    }
    g_string_append(html, "</body></html>\n");
    g_string_append_c(text, '\n');
    *calls = json_array();
    if (said) {
        char *mail = compose(&m, text->str, html->str);
        json_array_append_new(*calls, json_pack("{s:s, s:s, s:s, s:[s], s:s}", "method", "MAIL", "path", "",
                                                "mail_from", addr, "mail_rcpt", to->user, "body", mail));
        free(mail);
    }
    g_string_free(text, TRUE);
    g_string_free(html, TRUE);
    g_object_unref(from);
    return PL_OK;
}

/* The relay: smtp_url from the bot's settings unless the operator's
 * PARLEY_EMAIL_API_BASE names one (the outbox then also lets it be a local
 * address, and TLS optional); AUTH with smtp_user and smtp_password. */
static int email_authorize(const pl_channel_config *cfg, json_t *headers, char **url, char **user_pwd, char **err) {
    (void)headers;
    if (!pl_channel_api_base(cfg, NULL)) {
        const char *relay = pl_channel_require(cfg, "smtp_url", NULL, err);
        if (!relay) return PL_ERR;
        if (strncmp(relay, "smtp://", 7) != 0 && strncmp(relay, "smtps://", 8) != 0)
            return pl_fail(err, "smtp_url of bot '%s' must start with smtp:// (STARTTLS) or smtps:// (TLS)", cfg->bot);
        free(*url);
        *url = pl_strdup(relay);
    }
    const char *user = pl_channel_setting(cfg, "smtp_user");
    if (user) {
        const char *password = pl_channel_require(cfg, "smtp_password", NULL, err);
        if (!password) return PL_ERR;
        *user_pwd = pl_strdupf("%s:%s", user, password);
    }
    return PL_OK;
}

/* SMTP's reply codes (RFC 5321 4.2.1): 4yz is transient (421 closing, 450,
 * 451 local error, 452 no room: greylisting and throttling too), tried
 * again after the outbox's backoff; 5yz is permanent (no such mailbox,
 * refused), a dead letter at once. */
static void email_retry_hint(long status, const char *body, int *retry, long *delay_s) {
    (void)body;
    (void)delay_s;
    if (status >= 400 && status < 500) *retry = 1;
    else if (status >= 500 && status < 600) *retry = 0;
}

const pl_channel_adapter pl_channel_email = {
    .name = "email",
    .default_api_base = "", /* the bot's smtp_url, set by authorize */
    .synchronous = 0,
    .inbound = email_inbound,
    .render = email_render,
    .authorize = email_authorize,
    .retry_hint = email_retry_hint,
    .host_from_settings = 1,
    .takes_files = 1,
};
