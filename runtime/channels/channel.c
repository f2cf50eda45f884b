/* channel: per-bot channel settings and the helpers adapters share (HMAC,
 * digests in hex, constant-time compare, text fallbacks, lengths as
 * platforms count them, buttons' payloads and labels, form bodies,
 * percent-encoding and query strings);
 * see channel.h. Which adapters exist is registry.c's. Crypto is
 * libcrypto's, form decoding libevent's. */
#define _GNU_SOURCE
#include "channel.h"

#include <ctype.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/money.h"
#include "base/secrets.h"
#include "base/text.h"

void pl_inbound_clear(pl_inbound *in) {
    free(in->answer);
    free(in->answer_type);
    json_decref(in->events);
    memset(in, 0, sizeof *in);
}

const char *pl_channel_setting(const pl_channel_config *cfg, const char *key) {
    const char *direct = json_string_value(json_object_get(cfg->settings, key));
    if (direct && *direct) return direct;
    char *env_key = pl_strdupf("%s_env", key);
    const char *env_name = json_string_value(json_object_get(cfg->settings, env_key));
    free(env_key);
    return env_name ? pl_secrets_get(cfg->bot, env_name) : NULL;
}

const char *pl_channel_require(const pl_channel_config *cfg, const char *key, int *status,
                               char **err) {
    const char *value = pl_channel_setting(cfg, key);
    if (value) return value;
    char *env_key = pl_strdupf("%s_env", key);
    const char *env_name = json_string_value(json_object_get(cfg->settings, env_key));
    free(env_key);
    if (status) *status = 503;
    if (env_name)
        pl_fail(err, "the %s channel of bot '%s' needs %s: set the environment variable %s",
                cfg->channel, cfg->bot, key, env_name);
    else
        pl_fail(err, "the %s channel of bot '%s' needs %s (or %s_env) in bot.json", cfg->channel,
                cfg->bot, key, key);
    return NULL;
}

/* Only the operator points a platform elsewhere (tests do, at fakes): a
 * bot.json that could would send its platform token, or the calls of
 * another brand, wherever it liked. */
const char *pl_channel_api_base(const pl_channel_config *cfg, const char *fallback) {
    const char *base;
    char name[64];
    snprintf(name, sizeof name, "PARLEY_%s_API_BASE", cfg->channel);
    for (char *p = name; *p; p++) *p = (char)toupper((unsigned char)*p);
    base = getenv(name);
    return base && *base ? base : fallback;
}

int pl_channel_signature_equal(const char *received, const char *expected) {
    if (!received || !expected) return 0;
    unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
    unsigned int na = 0, nb = 0;
    EVP_Digest(received, strlen(received), a, &na, EVP_sha256(), NULL);
    EVP_Digest(expected, strlen(expected), b, &nb, EVP_sha256(), NULL);
    return na == nb && CRYPTO_memcmp(a, b, na) == 0;
}

int pl_channel_hex_signature_equal(const char *received, const char *expected) {
    if (!received) return 0;
    char *lower = pl_strdup(received);
    for (char *p = lower; *p; p++) *p = (char)tolower((unsigned char)*p);
    int equal = pl_channel_signature_equal(lower, expected);
    free(lower);
    return equal;
}

static int hmac_raw(const char *algorithm, const char *key, const char *data, size_t len,
                    unsigned char *out, unsigned int *out_len) {
    const EVP_MD *md = strcmp(algorithm, "sha1") == 0 ? EVP_sha1() : EVP_sha256();
    return HMAC(md, key, (int)strlen(key), (const unsigned char *)data, len, out, out_len) != NULL;
}

char *pl_channel_hex(const unsigned char *bytes, size_t n) {
    char *hex = malloc(n * 2 + 1);
    if (!hex) abort();
    for (size_t i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
    hex[2 * n] = '\0';
    return hex;
}

char *pl_channel_hmac_hex(const char *algorithm, const char *key, const char *data, size_t len) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!hmac_raw(algorithm, key, data, len, mac, &n)) return NULL;
    return pl_channel_hex(mac, n);
}

char *pl_channel_hmac_base64(const char *algorithm, const char *key, const char *data,
                             size_t len) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!hmac_raw(algorithm, key, data, len, mac, &n)) return NULL;
    char *b64 = malloc(4 * ((n + 2) / 3) + 1);
    if (!b64) abort();
    EVP_EncodeBlock((unsigned char *)b64, mac, (int)n);
    return b64;
}

char *pl_channel_digest_hex(const char *algorithm, const char *const *parts, size_t n, int ends) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) abort();
    EVP_DigestInit_ex(ctx, strcmp(algorithm, "sha1") == 0 ? EVP_sha1() : EVP_sha256(), NULL);
    for (size_t i = 0; i < n; i++)
        if (parts[i]) EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + (ends ? 1 : 0));
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, digest, &len);
    EVP_MD_CTX_free(ctx);
    return pl_channel_hex(digest, len);
}

json_t *pl_channel_call(const char *method, const char *path, json_t *json_body) {
    json_t *call = json_pack("{s:s, s:s}", "method", method, "path", path);
    if (json_body) {
        char *text = json_dumps(json_body, JSON_COMPACT);
        json_object_set_new(call, "body", json_string(text));
        json_object_set_new(call, "content_type", json_string("application/json"));
        free(text);
        json_decref(json_body);
    }
    return call;
}

char *pl_channel_payload_key(const char *payload) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(payload, strlen(payload), digest, &n, EVP_sha256(), NULL);
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *key = malloc(14);
    if (!key) abort();
    key[0] = '~';
    for (int i = 0; i < 12; i++) key[1 + i] = alphabet[digest[i] & 63];
    key[13] = '\0';
    return key;
}

char *pl_channel_price(const json_t *price, const char *locale) {
    return pl_money_format((long long)json_integer_value(json_object_get(price, "amount")),
                           json_string_value(json_object_get(price, "currency")), locale);
}

/* Appends a line to a growing text. */
static void add_line(char **text, const char *line) {
    char *joined = *text && **text ? pl_strdupf("%s\n%s", *text, line) : pl_strdup(line);
    free(*text);
    *text = joined;
}

char *pl_channel_plain_text(const json_t *reply, int first, const char *locale) {
    char *text = pl_strdup(json_string_value(json_object_get(reply, "text")));
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(reply, "cards"), i, item) {
        json_t *price_json = json_object_get(item, "price");
        char *price = json_is_object(price_json) ? pl_channel_price(price_json, locale) : NULL;
        const char *title = json_string_value(json_object_get(item, "title"));
        const char *subtitle = json_string_value(json_object_get(item, "subtitle"));
        char *line = pl_strdupf("• %s%s%s%s%s", title ? title : "", price ? " — " : "", price ? price : "",
                                subtitle ? ". " : "", subtitle ? subtitle : "");
        add_line(&text, line);
        free(line);
        free(price);
    }
    json_array_foreach(json_object_get(reply, "choices"), i, item) {
        char *line = pl_strdupf("%d) %s", first + (int)i, json_string_value(json_object_get(item, "title")));
        add_line(&text, line);
        free(line);
    }
    json_t *link = json_object_get(reply, "link");
    if (json_is_string(json_object_get(link, "url"))) {
        const char *title = json_string_value(json_object_get(link, "title"));
        char *line = pl_strdupf("%s%s%s", title ? title : "", title ? ": " : "",
                                json_string_value(json_object_get(link, "url")));
        add_line(&text, line);
        free(line);
    }
    return text;
}

/* --- lengths as the platforms count them ----------------------------------------- */

size_t pl_channel_char_units(unsigned char c) {
    if ((c & 0xC0) == 0x80) return 0;
    return c >= 0xF0 ? 2 : 1;
}

size_t pl_channel_text_units(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += pl_channel_char_units(*p);
    return n;
}

size_t pl_channel_prefix_bytes(const char *s, size_t max) {
    size_t units = 0, i = 0;
    for (; s[i]; i++) {
        size_t u = pl_channel_char_units((unsigned char)s[i]);
        if (u && units + u > max) break;
        units += u;
    }
    return i;
}

size_t pl_channel_prefix_utf8(const char *s, size_t max) {
    size_t n = strnlen(s, max + 1);
    if (n <= max) return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--; /* s[n] starts the next character */
    return n;
}

char *pl_channel_shortened(const char *s, size_t max) {
    if (pl_channel_text_units(s) <= max) return pl_strdup(s);
    return pl_strdupf("%.*s…", (int)pl_channel_prefix_bytes(s, max - 1), s);
}

int pl_channel_has_words(const char *s) { return s && s[strspn(s, " \t\r\n")]; }

size_t pl_channel_piece_end(const char *s, size_t n, size_t *skip) {
    *skip = 0;
    if (!s[n]) return n;
    for (const char *breaks = "\n "; *breaks; breaks++) {
        const char *at = memrchr(s, *breaks, n);
        if (at && (size_t)(at - s) > n / 2) {
            *skip = 1;
            return (size_t)(at - s);
        }
    }
    return n ? n : 1;
}

int pl_channel_is_web_url(const char *url) {
    return url && (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0);
}

json_t *pl_channel_long_payload(const pl_webhook *req, const char *payload) {
    if (payload[0] == '~' && req->long_payload) {
        char *original = req->long_payload(req->payload_ctx, payload);
        if (original) {
            json_t *j = json_string(original);
            free(original);
            return j;
        }
    }
    return json_string(payload);
}

char *pl_channel_fitting_payload(const pl_outbound *to, const char *payload, size_t max) {
    size_t n = strlen(payload);
    if (n > 0 && n <= max) return pl_strdup(payload);
    return to->short_payload ? to->short_payload(to->payload_ctx, payload) : NULL;
}

static int is_japanese(const char *locale) { return locale && strncmp(locale, "ja", 2) == 0; }

char *pl_channel_link_label(const char *title, size_t max, const char *locale) {
    if (pl_channel_has_words(title)) return pl_channel_shortened(title, max);
    return pl_strdup(is_japanese(locale) ? "リンクを開く" : "Open link");
}

const char *pl_channel_card_button(const pl_channel_config *cfg, const char *locale) {
    const char *configured = pl_channel_setting(cfg, "card_button");
    if (configured) return configured;
    return is_japanese(locale) ? "これにする" : "Choose";
}

/* --- form bodies -------------------------------------------------------------------- */

void pl_channel_form_add(pl_channel_form *f, const char *name, const char *value) {
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->items = realloc(f->items, f->cap * sizeof *f->items);
        if (!f->items) abort();
    }
    f->items[f->n].name = pl_strdup(name);
    f->items[f->n].value = pl_strdup(value);
    f->n++;
}

void pl_channel_form_free(pl_channel_form *f) {
    for (size_t i = 0; i < f->n; i++) {
        free(f->items[i].name);
        free(f->items[i].value);
    }
    free(f->items);
    memset(f, 0, sizeof *f);
}

/* evhttp_parse_query_str decodes the values; the names, which it leaves as
 * they are, go through evhttp_uridecode. */
int pl_channel_form_parse(const char *text, pl_channel_form *f) {
    struct evkeyvalq pairs = {NULL, &pairs.tqh_first};
    if (evhttp_parse_query_str(text ? text : "", &pairs) != 0) {
        evhttp_clear_headers(&pairs);
        return PL_ERR;
    }
    for (struct evkeyval *kv = pairs.tqh_first; kv; kv = kv->next.tqe_next) {
        char *name = evhttp_uridecode(kv->key, 1, NULL);
        if (!name) abort();
        pl_channel_form_add(f, name, kv->value);
        free(name);
    }
    evhttp_clear_headers(&pairs);
    return PL_OK;
}

const char *pl_channel_form_get(const pl_channel_form *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->items[i].name, name) == 0) return f->items[i].value;
    return NULL;
}

const pl_channel_field *pl_channel_form_not_utf8(const pl_channel_form *f) {
    for (size_t i = 0; i < f->n; i++)
        if (!pl_text_is_utf8(f->items[i].name, strlen(f->items[i].name)) ||
            !pl_text_is_utf8(f->items[i].value, strlen(f->items[i].value)))
            return &f->items[i];
    return NULL;
}

/* --- URLs and query strings ---------------------------------------------------- */

char *pl_channel_percent_encode(const char *s) {
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    if (!out) abort();
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') *o++ = (char)c;
        else o += sprintf(o, "%%%02X", c);
    }
    *o = '\0';
    return out;
}

void pl_channel_percent_decode(char *s) {
    char *o = s;
    for (; *s; s++) {
        if (*s == '+') *o++ = ' ';
        else if (*s == '%' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
            char hex[3] = {s[1], s[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else *o++ = *s;
    }
    *o = '\0';
}

char *pl_channel_query_param(const char *query, const char *name) {
    size_t name_len = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *end = p + strcspn(p, "&");
        if ((size_t)(end - p) > name_len && strncmp(p, name, name_len) == 0 && p[name_len] == '=') {
            char *value = pl_strndup(p + name_len + 1, (size_t)(end - p) - name_len - 1);
            pl_channel_percent_decode(value);
            return value;
        }
        p = *end ? end + 1 : end;
    }
    return NULL;
}
