/* channel_alexa: the Alexa custom skill (voice) adapter, parley's one
 * synchronous channel: Alexa waits for the skill's answer in the response to
 * its webhook call, so `answer` renders a turn's replies into that response.
 *
 * Owns: the checks Amazon requires of a skill hosted as a web service (the
 * SignatureCertChainUrl rules; downloading, caching and validating the
 * signing certificate chain: trusted root, validity dates, the SAN
 * echo-api.amazon.com; the Signature-256 RSA/SHA-256 signature over the raw
 * body), the skill id and the 150-second timestamp window; turning
 * LaunchRequest / IntentRequest / SessionEndedRequest into message events;
 * rendering replies as SSML speech, a reprompt, a Simple card and
 * shouldEndSession. Uses jansson, libcrypto (X509, EVP), the shared
 * asynchronous HTTP client for the chain's download (inbound answers
 * PL_AGAIN meanwhile: see chain_for), libcurl's URL API, and channel.h's
 * helpers. Like every adapter it is plain C over plain data: no evhttp, no
 * store.
 *
 * Every platform field used here is from Amazon's documentation:
 *  - request/response JSON (version, session{new, sessionId,
 *    application.applicationId, user.userId}, context.System{application,
 *    user, device.deviceId}, request{type, requestId, timestamp, locale,
 *    intent{name, slots{<name>{name, value}}}, reason}; response{outputSpeech
 *    {type "SSML", ssml}, reprompt{outputSpeech}, card{type "Simple", title,
 *    content}, shouldEndSession}; the 8000-character limits):
 *    https://developer.amazon.com/en-US/docs/alexa/custom-skills/request-and-response-json-reference.html
 *  - request types: https://developer.amazon.com/en-US/docs/alexa/custom-skills/request-types-reference.html
 *  - verifying that a request came from Alexa (certificate URL rules,
 *    chain, SAN, Signature-256 over the body, timestamp within 150 s):
 *    https://developer.amazon.com/en-US/docs/alexa/custom-skills/host-a-custom-skill-as-a-web-service.html
 *  - built-in intents (AMAZON.HelpIntent, StopIntent, CancelIntent,
 *    FallbackIntent, NavigateHomeIntent):
 *    https://developer.amazon.com/en-US/docs/alexa/custom-skills/standard-built-in-intents.html
 *  - SSML (characters to escape, <break>):
 *    https://developer.amazon.com/en-US/docs/alexa/custom-skills/
 *    speech-synthesis-markup-language-ssml-reference.html
 *  - text responses (under 8000 characters):
 *    https://developer.amazon.com/en-US/docs/alexa/custom-skills/best-practice-text-response.html
 *  - the catch-all slot type AMAZON.SearchQuery:
 *    https://developer.amazon.com/en-US/docs/alexa/custom-skills/slot-type-reference.html#searchquery
 *
 * The certificate caches and downloads below are plain statics: adapters
 * run on the event loop's thread only. */
#define _GNU_SOURCE
#include "channel.h"

#include <ctype.h>
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/common.h"
#include "base/json_shape.h"
#include "base/money.h"
#include "event/http_client.h"

#define TIMESTAMP_TOLERANCE 150 /* seconds either way (Amazon: 150) */
#define SPEECH_LIMIT 8000       /* characters of outputSpeech.ssml */
#define CARD_LIMIT 8000         /* characters of card title + content */
#define CERT_HOST "s3.amazonaws.com"
#define CERT_PATH "/echo.api/"
#define SIGNING_DOMAIN "echo-api.amazon.com"
#define CHAIN_MAX_BYTES (64 * 1024)
#define DOWNLOAD_TIMEOUT_MS 3000L
#define GOOD_CHAINS 8                /* chains cached, by URL */
#define GOOD_BYTES (256 * 1024)      /* PEM bytes cached in all */
#define BAD_HOSTS 16                 /* hosts remembered as failed */
#define BAD_HOST_SECONDS 60          /* for this long */
#define FETCHES 4                    /* downloads in flight at most */
#define WAITERS 64                   /* requests waiting for them at most */
#define PAUSE "<break strength=\"medium\"/>" /* SSML for a line break */
#define ANSWER_TYPE "application/json;charset=UTF-8"
#define EMPTY_ANSWER "{\"version\":\"1.0\",\"response\":{}}"
#define LEAVE_ANSWER "{\"version\":\"1.0\",\"response\":{\"shouldEndSession\":true}}"

/* --- small helpers ------------------------------------------------------------ */

typedef struct {
    char *s;
    size_t len, cap;
} text_buf;

static void tb_add(text_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->s, cap);
        if (!grown) abort();
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void tb_puts(text_buf *b, const char *s) { tb_add(b, s, strlen(s)); }

/* The text built so far (new string; "" when nothing was added). */
static char *tb_take(text_buf *b) {
    char *s = b->s ? b->s : pl_strdup("");
    memset(b, 0, sizeof *b);
    return s;
}

/* The value at a dotted path of objects ("request.intent.name"), borrowed. */
static const json_t *at(const json_t *v, const char *path) {
    char key[64];
    while (v && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key) return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        path += n + (path[n] == '.');
    }
    return v;
}

static const char *string_at(const json_t *v, const char *path) {
    return json_string_value(at(v, path));
}

/* A yes/no setting: a JSON boolean in bot.json, or "true"/"false" (1/0,
 * yes/no, on/off) given directly or through <key>_env. */
static int setting_flag(const pl_channel_config *cfg, const char *key, int fallback) {
    const json_t *v = json_object_get(cfg->settings, key);
    if (json_is_boolean(v)) return json_is_true(v);
    const char *s = pl_channel_setting(cfg, key);
    if (!s) return fallback;
    static const char *const no[] = {"false", "0", "no", "off"}, *const yes[] = {"true", "1", "yes", "on"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, no[i]) == 0) return 0;
        if (strcasecmp(s, yes[i]) == 0) return 1;
    }
    return fallback;
}

static const char *setting_or(const pl_channel_config *cfg, const char *key, const char *fallback) {
    const char *v = pl_channel_setting(cfg, key);
    return v ? v : fallback;
}

/* --- the request timestamp ------------------------------------------------------ */

static int read_digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's). */
static long long days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Seconds since the epoch of an ISO 8601 date-time as Alexa sends it in
 * request.timestamp ("2026-11-23T15:47:55Z"); a fraction of a second and a
 * numeric offset ("+09:00") are accepted too. -1 when it is not one. */
static long long parse_timestamp(const char *s) {
    int y, mo, d, h, mi, sec, oh = 0, om = 0;
    if (!s || strlen(s) < 20 || !read_digits(s, 4, &y) || s[4] != '-' || !read_digits(s + 5, 2, &mo) ||
        s[7] != '-' || !read_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !read_digits(s + 11, 2, &h) || s[13] != ':' || !read_digits(s + 14, 2, &mi) || s[16] != ':' ||
        !read_digits(s + 17, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    const char *p = s + 19;
    if (*p == '.' && isdigit((unsigned char)p[1]))
        for (p++; isdigit((unsigned char)*p); p++) {}
    int sign = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        if (!read_digits(p + 1, 2, &oh)) return -1;
        p += 3;
        if (*p == ':') p++;
        if (!read_digits(p, 2, &om) || oh > 23 || om > 59) return -1;
        p += 2;
    } else {
        return -1;
    }
    if (*p) return -1;
    long long t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return t - sign * (oh * 3600 + om * 60);
}

/* Amazon: refuse a request whose timestamp is more than 150 seconds away
 * from now, so that a captured request cannot be replayed later. */
static int check_timestamp(const json_t *body, long long now, char **err) {
    const char *stamp = string_at(body, "request.timestamp");
    long long when = parse_timestamp(stamp);
    if (when < 0) return pl_fail(err, "request.timestamp is missing or not an ISO 8601 time");
    long long skew = now > when ? now - when : when - now;
    if (skew > TIMESTAMP_TOLERANCE)
        return pl_fail(err, "request.timestamp %s is %lld s %s now (more than %d s): "
                       "a replayed request or a wrong clock",
                       stamp, skew, when < now ? "before" : "after", TIMESTAMP_TOLERANCE);
    return PL_OK;
}

/* --- the skill id ------------------------------------------------------------------ */

/* 1 when id is one of the comma-separated ids in list. */
static int is_listed(const char *list, const char *id) {
    size_t n = strlen(id);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',') p++;
        size_t len = strcspn(p, ", ");
        if (len == n && len > 0 && strncmp(p, id, n) == 0) return 1;
        p += len;
    }
    return 0;
}

/* Every application id the request carries must be the skill's:
 * context.System.application (always sent) and session.application (sent
 * with a session). The id is not a secret, so a plain compare will do. */
static int check_skill_id(const char *skill_ids, const json_t *body, char **err) {
    const char *in_context = string_at(body, "context.System.application.applicationId");
    const char *in_session = string_at(body, "session.application.applicationId");
    if (!in_context && !in_session) return pl_fail(err, "the request names no skill (applicationId)");
    const char *wrong = in_context && !is_listed(skill_ids, in_context) ? in_context
                        : in_session && !is_listed(skill_ids, in_session) ? in_session
                                                                          : NULL;
    if (wrong) return pl_fail(err, "the request is for another skill (%s)", wrong);
    return PL_OK;
}

/* --- the certificate URL -------------------------------------------------------------- */

/* path[0..len) with "." and ".." segments resolved (RFC 3986, 5.2.4); new. */
static char *remove_dot_segments(const char *path, size_t len) {
    text_buf out = {0};
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        while (j < len && path[j] != '/') j++;
        const char *seg = path + i + 1;
        size_t n = j - i - 1;
        int last = j >= len;
        if (n == 1 && seg[0] == '.') {
            if (last) tb_puts(&out, "/");
        } else if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            while (out.len > 0 && out.s[out.len - 1] != '/') out.len--;
            if (out.len > 0) out.s[--out.len] = '\0';
            if (last) tb_puts(&out, "/");
        } else {
            tb_puts(&out, "/");
            tb_add(&out, seg, n);
        }
        i = j;
    }
    if (out.len == 0) tb_puts(&out, "/");
    return tb_take(&out);
}

/* Where to download the chain from, when url follows Amazon's rules for
 * SignatureCertChainUrl: after normalising, the protocol is https and the
 * host s3.amazonaws.com (both case-insensitive), the path starts with
 * /echo.api/ (case-sensitive), and a port, if given, is 443. Returns the URL
 * rebuilt from the normalised parts (new), or NULL with *why. Stricter than
 * the documentation in two ways that Amazon's own URLs never need: a user
 * name ("x@host") and percent-encoding or backslashes in the path are
 * refused, so the path checked is the path fetched. */
static char *amazon_cert_url(const char *url, const char **why) {
    const char *sep = strstr(url, "://");
    if (!sep || sep - url != 5 || strncasecmp(url, "https", 5) != 0) {
        *why = "its protocol is not https";
        return NULL;
    }
    const char *authority = sep + 3;
    size_t alen = strcspn(authority, "/?#");
    if (memchr(authority, '@', alen)) {
        *why = "it carries a user name";
        return NULL;
    }
    const char *colon = memchr(authority, ':', alen);
    size_t hlen = colon ? (size_t)(colon - authority) : alen;
    if (hlen != strlen(CERT_HOST) || strncasecmp(authority, CERT_HOST, hlen) != 0) {
        *why = "its host is not " CERT_HOST;
        return NULL;
    }
    size_t port_len = colon ? alen - hlen - 1 : 0;
    if (colon && (port_len == 0 || port_len > 5 || strspn(colon + 1, "0123456789") < port_len ||
                  atoi(colon + 1) != 443)) {
        *why = "its port is not 443";
        return NULL;
    }
    const char *path = authority + alen;
    size_t plen = strcspn(path, "?#");
    if (*path != '/' || memchr(path, '%', plen) || memchr(path, '\\', plen)) {
        *why = "its path is missing or encoded";
        return NULL;
    }
    char *normal = remove_dot_segments(path, plen);
    char *out = NULL;
    if (strncmp(normal, CERT_PATH, strlen(CERT_PATH)) != 0) {
        *why = "its path does not start with " CERT_PATH;
    } else {
        const char *query = path + plen;
        int qlen = *query == '?' ? (int)strcspn(query, "#") : 0;
        out = pl_strdupf("https://" CERT_HOST "%s%.*s", normal, qlen, query);
    }
    free(normal);
    return out;
}

/* Tests only: PARLEY_ALEXA_CERT_URL_PREFIX ("http://127.0.0.1:8123/echo.api/",
 * "file:///tmp/x/echo.api/") lets a test serve its own chain. A URL that
 * starts with it (and has no dot segment or escape after it) is fetched as it is, with the
 * prefix's protocol; every other URL must follow Amazon's rules. */
static char *test_cert_url(const char *url, char *protocol, size_t size) {
    const char *prefix = getenv("PARLEY_ALEXA_CERT_URL_PREFIX");
    if (!prefix || !*prefix || strncmp(url, prefix, strlen(prefix)) != 0) return NULL;
    if (strstr(url + strlen(prefix) - 1, "/.") || strchr(url, '%') || strchr(url, '\\')) return NULL;
    size_t n = strcspn(prefix, ":");
    if (n + 1 > size) return NULL;
    for (size_t i = 0; i < n; i++) protocol[i] = (char)tolower((unsigned char)prefix[i]);
    protocol[n] = '\0';
    if (strcmp(protocol, "http") != 0 && strcmp(protocol, "https") != 0 && strcmp(protocol, "file") != 0)
        return NULL;
    return pl_strdup(url);
}

/* The URL to fetch the chain from (new) and its protocol, or NULL with *err. */
static char *cert_download_url(const char *url, char *protocol, size_t size, char **err) {
    char *test = test_cert_url(url, protocol, size);
    if (test) return test;
    const char *why = "?";
    char *amazon = amazon_cert_url(url, &why);
    if (!amazon) pl_fail(err, "SignatureCertChainUrl %s is not Amazon's: %s", url, why);
    else snprintf(protocol, size, "https");
    return amazon;
}

/* --- the certificate chain -------------------------------------------------------------- */

/* The PEM certificates of pem in order (new stack), or NULL with *err. */
static STACK_OF(X509) *parse_chain(const char *pem, char **err) {
    BIO *bio = BIO_new_mem_buf(pem, -1);
    STACK_OF(X509) *chain = sk_X509_new_null();
    if (!bio || !chain) abort();
    X509 *cert;
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
        if (!sk_X509_push(chain, cert)) abort();
    ERR_clear_error(); /* the end of the data reads as an error */
    BIO_free(bio);
    if (sk_X509_num(chain) == 0) {
        sk_X509_free(chain);
        pl_fail(err, "the certificate chain holds no PEM certificate");
        return NULL;
    }
    return chain;
}

/* The trusted roots, loaded once per CA file (NULL: the system's). */
static struct {
    char *ca_file;
    X509_STORE *store;
    int loaded;
} trust;

static X509_STORE *trust_store(const char *ca_file, char **err) {
    if (trust.loaded && (ca_file ? trust.ca_file && strcmp(ca_file, trust.ca_file) == 0 : !trust.ca_file))
        return trust.store;
    X509_STORE *store = X509_STORE_new();
    if (!store) abort();
    if (!(ca_file ? X509_STORE_load_file(store, ca_file) : X509_STORE_set_default_paths(store))) {
        X509_STORE_free(store);
        ERR_clear_error();
        pl_fail(err, "cannot load the trusted root certificates from %s",
                ca_file ? ca_file : "the system's default paths");
        return NULL;
    }
    X509_STORE_free(trust.store);
    free(trust.ca_file);
    trust.store = store;
    trust.ca_file = ca_file ? pl_strdup(ca_file) : NULL;
    trust.loaded = 1;
    return store;
}

/* Amazon's checks of the signing certificate (the chain's first): its Not
 * Before and Not After dates hold at now, echo-api.amazon.com is among its
 * Subject Alternative Names (a DNS name, exactly: no wildcard, not the
 * subject's CN), and the chain leads to a trusted root. A failure is a 401,
 * except roots that cannot be loaded (503: the server's fault). */
static int check_chain(STACK_OF(X509) *chain, long long now, const char *ca_file, int *status,
                       char **err) {
    X509 *signing = sk_X509_value(chain, 0);
    time_t t = (time_t)now;
    *status = 401;
    if (X509_cmp_time(X509_get0_notBefore(signing), &t) != -1)
        return pl_fail(err, "the signing certificate is not valid yet");
    if (X509_cmp_time(X509_get0_notAfter(signing), &t) != 1)
        return pl_fail(err, "the signing certificate has expired");
    unsigned flags = X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_WILDCARDS;
    if (X509_check_host(signing, SIGNING_DOMAIN, 0, flags, NULL) != 1) {
        ERR_clear_error();
        return pl_fail(err, "the signing certificate is not issued to " SIGNING_DOMAIN " (SAN)");
    }
    X509_STORE *store = trust_store(ca_file, err);
    if (!store) {
        *status = 503;
        return PL_ERR;
    }
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!ctx) abort();
    int ok = X509_STORE_CTX_init(ctx, store, signing, chain) == 1;
    if (ok) {
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), t);
        ok = X509_verify_cert(ctx) == 1;
    }
    int code = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    if (!ok)
        return pl_fail(err, "the signing certificate does not lead to a trusted root: %s",
                       X509_verify_cert_error_string(code));
    return PL_OK;
}

/* --- the certificate caches and downloads ----------------------------------------------------
 *
 * The adapter answers on the loop, so the first request signed with a new
 * certificate URL must not wait for its download there: chain_for starts
 * it on the shared asynchronous client (req->http) and returns PL_AGAIN;
 * the server calls inbound again when the download is over, and that call
 * finds the result here. Downloads are bounded: FETCHES in flight at most,
 * WAITERS requests waiting for them, CHAIN_MAX_BYTES and
 * DOWNLOAD_TIMEOUT_MS each. A host that did not answer (down, or slow past
 * the timeout) is not fetched from again for BAD_HOST_SECONDS, whatever
 * the path, so junk URLs on a host that hangs cannot keep the download
 * slots busy; a URL that answered with an error or an invalid chain is
 * refused as long, by itself only — a request naming a junk path on
 * Amazon's host must not refuse the host's real certificates to everyone.
 * A chain already cached is still used.
 * Times are the requests' (pl_webhook.now: the test clock in tests). */

/* Chains downloaded and found valid, by URL, oldest first: at most
 * GOOD_CHAINS, holding GOOD_BYTES of PEM between them. A cached chain is
 * checked again at every use: it may expire. */
static struct {
    char *url;
    STACK_OF(X509) *chain;
    size_t bytes;
} good[GOOD_CHAINS];
static size_t good_count, good_bytes;

/* Hosts that did not answer, and URLs whose answer was no valid chain:
 * when, and why. */
static struct {
    char *host; /* a host, or a whole URL */
    long long at;
    char *why;
} bad[BAD_HOSTS];
static size_t bad_next;

typedef struct {
    void (*again)(void *ctx);
    void *ctx;
} waiter;

/* A download, and the requests waiting for it. Once done, it stays until
 * every waiter has been called (and has found the result in it). */
typedef struct fetch {
    struct fetch *next;
    char *url, *host;
    int done;
    char *pem;   /* what came (new), or NULL */
    size_t pem_len;
    char *error; /* why nothing usable came (new), or NULL */
    int unanswered; /* the host did not answer at all */
    waiter *waiters;
    size_t nwaiters;
} fetch;
static fetch *fetches;
static size_t fetches_in_flight, waiters_in_all;

static void forget_oldest_good(void) {
    free(good[0].url);
    sk_X509_pop_free(good[0].chain, X509_free);
    good_bytes -= good[0].bytes;
    memmove(good, good + 1, --good_count * sizeof *good);
}

static void remember_good(const char *url, STACK_OF(X509) *chain /* stolen */, size_t bytes) {
    while (good_count > 0 && (good_count == GOOD_CHAINS || good_bytes + bytes > GOOD_BYTES)) forget_oldest_good();
    good[good_count].url = pl_strdup(url);
    good[good_count].chain = chain;
    good[good_count].bytes = bytes;
    good_bytes += bytes;
    good_count++;
}

static STACK_OF(X509) *cached_chain(const char *url) {
    for (size_t i = 0; i < good_count; i++)
        if (strcmp(good[i].url, url) == 0) return good[i].chain;
    return NULL;
}

static void remember_bad(const char *host, long long now, const char *why) {
    size_t i = 0;
    while (i < BAD_HOSTS && !(bad[i].host && strcmp(bad[i].host, host) == 0)) i++;
    if (i == BAD_HOSTS) {
        i = bad_next++ % BAD_HOSTS;
        free(bad[i].host);
        bad[i].host = pl_strdup(host);
    }
    free(bad[i].why);
    bad[i].why = pl_strdup(why);
    bad[i].at = now;
}

/* PL_ERR with *err when the host or URL failed less than BAD_HOST_SECONDS
 * before now. */
static int refuse_bad(const char *host_or_url, long long now, char **err) {
    for (size_t i = 0; i < BAD_HOSTS; i++)
        if (bad[i].host && strcmp(bad[i].host, host_or_url) == 0 && now >= bad[i].at &&
            now - bad[i].at < BAD_HOST_SECONDS)
            return pl_fail(err, "the certificate %s %s failed less than %d s ago (%s): it is not downloaded from "
                           "until then", strchr(host_or_url, '/') ? "URL" : "host", host_or_url, BAD_HOST_SECONDS,
                           bad[i].why);
    return PL_OK;
}

/* The host of a download URL, lower case (new); "" for a file:// URL. */
static char *host_of(const char *url) {
    CURLU *h = curl_url();
    char *host = NULL;
    if (!h) abort();
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK || curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        host = NULL;
    char *out = pl_strdup(host ? host : "");
    for (char *p = out; *p; p++) *p = (char)tolower((unsigned char)*p);
    curl_free(host);
    curl_url_cleanup(h);
    return out;
}

static fetch *find_fetch(const char *url) {
    fetch *f = fetches;
    while (f && strcmp(f->url, url) != 0) f = f->next;
    return f;
}

static void free_fetch(fetch *f) {
    fetch **at = &fetches;
    while (*at != f) at = &(*at)->next;
    *at = f->next;
    free(f->url);
    free(f->host);
    free(f->pem);
    free(f->error);
    free(f->waiters);
    free(f);
}

static int too_many_waiting(int *status, char **err) {
    *status = 503;
    return pl_fail(err, "too many requests are waiting for certificate downloads (%d); try again", WAITERS);
}

/* The request waits for f: PL_AGAIN, or 503 when too many wait. */
static int join(fetch *f, const pl_webhook *req, int *status, char **err) {
    if (waiters_in_all >= WAITERS) return too_many_waiting(status, err);
    waiter *grown = realloc(f->waiters, (f->nwaiters + 1) * sizeof *grown);
    if (!grown) abort();
    f->waiters = grown;
    f->waiters[f->nwaiters++] = (waiter){req->again, req->again_ctx};
    waiters_in_all++;
    return PL_AGAIN;
}

/* pl_http_fetch's callback: keeps the result, lets every waiter look at it,
 * then forgets the download (the caches hold what it taught). */
static void on_chain_fetched(const pl_http_response *res, void *ud) {
    fetch *f = ud;
    int file = strncmp(f->url, "file:", 5) == 0;
    f->done = 1;
    fetches_in_flight--;
    if (res->outcome == PL_HTTP_ANSWERED && (file || res->status == 200)) {
        f->pem = pl_strndup(res->body, res->body_len);
        f->pem_len = res->body_len;
    } else if (res->outcome == PL_HTTP_TOO_LARGE) {
        f->error = pl_strdupf("cannot download the certificate chain %s: it is larger than %d KiB", f->url,
                              CHAIN_MAX_BYTES / 1024);
    } else if (res->outcome == PL_HTTP_ANSWERED) {
        f->error = pl_strdupf("cannot download the certificate chain %s: HTTP %ld", f->url, res->status);
    } else {
        f->error = pl_strdupf("cannot download the certificate chain %s: %s", f->url, res->error ? res->error : "?");
        f->unanswered = 1;
    }
    for (size_t i = 0; i < f->nwaiters; i++) {
        waiters_in_all--;
        f->waiters[i].again(f->waiters[i].ctx);
    }
    free_fetch(f);
}

/* Starts downloading url (protocol for libcurl) from host; PL_AGAIN, or 503. */
static int start_fetch(const char *url, const char *protocol, const char *host, const pl_webhook *req,
                       int *status, char **err) {
    *status = 503;
    if (!req->http || !req->again) return pl_fail(err, "certificate chains cannot be downloaded here");
    if (fetches_in_flight >= FETCHES)
        return pl_fail(err, "too many certificate downloads in flight (%d); try again", FETCHES);
    if (waiters_in_all >= WAITERS) return too_many_waiting(status, err); /* before anything starts */
    fetch *f = calloc(1, sizeof *f);
    if (!f) abort();
    f->url = pl_strdup(url);
    f->host = pl_strdup(host);
    pl_http_request r = {.method = "GET", .url = url, .timeout_ms = DOWNLOAD_TIMEOUT_MS, .protocols = protocol,
                         .max_response = CHAIN_MAX_BYTES};
    char *why = NULL;
    if (pl_http_fetch(req->http, &r, on_chain_fetched, f, &why) != PL_OK) {
        free(f->url);
        free(f->host);
        free(f);
        pl_fail(err, "cannot start downloading the certificate chain %s: %s", url, why);
        free(why);
        return PL_ERR;
    }
    f->next = fetches;
    fetches = f;
    fetches_in_flight++;
    return join(f, req, status, err);
}

/* The chain a finished download brought, validated; a failure (not the
 * server's own: 503) marks the host bad. */
static int use_download(fetch *f, long long now, const char *ca_file, STACK_OF(X509) **chain, int *status,
                        char **err) {
    *status = 401;
    STACK_OF(X509) *parsed = NULL;
    int rc = f->error ? pl_fail(err, "%s", f->error) : PL_OK;
    if (rc == PL_OK && !(parsed = parse_chain(f->pem, err))) rc = PL_ERR;
    if (rc == PL_OK) rc = check_chain(parsed, now, ca_file, status, err);
    if (rc == PL_OK) {
        remember_good(f->url, parsed, f->pem_len);
        *chain = parsed;
        return PL_OK;
    }
    sk_X509_pop_free(parsed, X509_free);
    if (*status == 401) remember_bad(f->unanswered ? f->host : f->url, now, *err);
    return PL_ERR;
}

/* The valid chain at url (borrowed from the cache): PL_OK; PL_ERR with
 * *status and *err; or PL_AGAIN when req waits for its download. */
static int chain_for(const char *url, const char *protocol, const pl_webhook *req, const char *ca_file,
                     STACK_OF(X509) **chain, int *status, char **err) {
    *status = 401;
    *chain = cached_chain(url);
    if (*chain) return check_chain(*chain, req->now, ca_file, status, err);
    fetch *f = find_fetch(url);
    if (f && f->done) return use_download(f, req->now, ca_file, chain, status, err);
    if (f) return join(f, req, status, err);
    char *host = host_of(url);
    int rc = refuse_bad(host, req->now, err);
    if (rc == PL_OK) rc = refuse_bad(url, req->now, err);
    if (rc == PL_OK) rc = start_fetch(url, protocol, host, req, status, err);
    free(host);
    return rc;
}

/* --- the signature ---------------------------------------------------------------------- */

/* What the headers claim: where the chain is and the signature. */
typedef struct {
    char *url;          /* where to download the chain (new) */
    char protocol[8];   /* its protocol, for libcurl */
    const char *signature; /* base64 (borrowed from the request) */
    const EVP_MD *md;
} signature_claim;

/* Reads SignatureCertChainUrl and Signature-256 (RSA over SHA-256 of the
 * body; the older Signature header, SHA-1, only when legacy_sha1_signature
 * is on) and checks the URL's rules. Cheap: no network. */
static int read_claim(const pl_channel_config *cfg, const pl_webhook *req, signature_claim *claim,
                      char **err) {
    const char *url = req->header(req->header_ctx, "SignatureCertChainUrl");
    claim->signature = req->header(req->header_ctx, "Signature-256");
    claim->md = EVP_sha256();
    if (!claim->signature && setting_flag(cfg, "legacy_sha1_signature", 0)) {
        claim->signature = req->header(req->header_ctx, "Signature");
        claim->md = EVP_sha1();
    }
    if (!url || !*url) return pl_fail(err, "the request is not signed (no SignatureCertChainUrl header)");
    if (!claim->signature || !*claim->signature)
        return pl_fail(err, "the request is not signed (no Signature-256 header)");
    claim->url = cert_download_url(url, claim->protocol, sizeof claim->protocol, err);
    return claim->url ? PL_OK : PL_ERR;
}

/* The bytes of a base64 text (new), or NULL when it is not base64. */
static unsigned char *base64_decode(const char *in, int *out_len) {
    size_t n = strlen(in);
    if (n > 4096) return NULL;
    unsigned char *out = malloc(n + 4);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    if (!out || !ctx) abort();
    int len = 0, last = 0;
    EVP_DecodeInit(ctx);
    int ok = EVP_DecodeUpdate(ctx, out, &len, (const unsigned char *)in, (int)n) >= 0 &&
             EVP_DecodeFinal(ctx, out + len, &last) >= 0;
    EVP_ENCODE_CTX_free(ctx);
    if (!ok || len + last == 0) {
        free(out);
        return NULL;
    }
    *out_len = len + last;
    return out;
}

/* 1 when sig_b64 is the signing key's signature of body (the raw bytes, as
 * received) with md. Verification is libcrypto's: nothing is compared by
 * hand. */
static int signature_holds(X509 *signing, const signature_claim *claim, const char *body, size_t len) {
    int sig_len = 0;
    unsigned char *sig = base64_decode(claim->signature, &sig_len);
    EVP_PKEY *key = X509_get0_pubkey(signing);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) abort();
    int ok = sig && key && EVP_DigestVerifyInit(ctx, NULL, claim->md, NULL, key) == 1 &&
             EVP_DigestVerify(ctx, sig, (size_t)sig_len, (const unsigned char *)body, len) == 1;
    EVP_MD_CTX_free(ctx);
    free(sig);
    ERR_clear_error();
    return ok;
}

/* The trusted roots: settings.ca_file (or ca_file_env), else the
 * environment's PARLEY_ALEXA_CA_FILE (tests), else the system's. */
static const char *ca_file_of(const pl_channel_config *cfg) {
    const char *file = pl_channel_setting(cfg, "ca_file");
    if (!file) file = getenv("PARLEY_ALEXA_CA_FILE");
    return file && *file ? file : NULL;
}

/* PL_OK, PL_ERR with *status, or PL_AGAIN (the chain is being downloaded). */
static int check_signature(const pl_channel_config *cfg, const pl_webhook *req,
                           const signature_claim *claim, int *status, char **err) {
    STACK_OF(X509) *chain = NULL;
    int rc = chain_for(claim->url, claim->protocol, req, ca_file_of(cfg), &chain, status, err);
    if (rc != PL_OK) return rc;
    if (!signature_holds(sk_X509_value(chain, 0), claim, req->body, req->body_len)) {
        *status = 401;
        return pl_fail(err, "the request's signature does not match its body");
    }
    return PL_OK;
}

/* --- the request --------------------------------------------------------------------------- */

/* The values of an intent's slots, joined by spaces; only the first one
 * with a value when first_only (new, "" when none has one). */
static char *slot_values(const json_t *slots, int first_only) {
    text_buf words = {0};
    const char *key;
    json_t *slot;
    json_object_foreach((json_t *)slots, key, slot) {
        const char *value = json_string_value(json_object_get(slot, "value"));
        if (!value || !*value) continue;
        if (words.len) tb_puts(&words, " ");
        tb_puts(&words, value);
        if (first_only) break;
    }
    return tb_take(&words);
}

/* What the shopper said in an IntentRequest, as text (new) and payload
 * (static or NULL). Returns 0 for an intent that leaves the skill with no
 * turn (AMAZON.NavigateHomeIntent: "go home").
 *  - the catch-all intent (settings.catch_all_intent, "CatchAllIntent"):
 *    the value of its slot (settings.catch_all_slot, "utterance"; else the
 *    first slot with a value): the shopper's words;
 *  - AMAZON.HelpIntent: "help"; AMAZON.StopIntent, AMAZON.CancelIntent:
 *    "cancel" (and the answer ends the session). Both also carry the payload
 *    "intent:<name>", which starts the router intent of that name in any
 *    locale (the words "help"/"cancel" only match in English);
 *  - AMAZON.FallbackIntent: "" (the flow's not-understood path);
 *  - any other intent: its slot values joined by spaces, or "". */
static int intent_words(const pl_channel_config *cfg, const json_t *intent, char **text,
                        const char **payload) {
    const char *name = json_string_value(json_object_get(intent, "name"));
    name = name ? name : "";
    const json_t *slots = json_object_get(intent, "slots");
    *payload = NULL;
    if (strcmp(name, "AMAZON.NavigateHomeIntent") == 0) return 0;
    if (strcmp(name, "AMAZON.HelpIntent") == 0) {
        *text = pl_strdup("help");
        *payload = "intent:help";
    } else if (strcmp(name, "AMAZON.StopIntent") == 0 || strcmp(name, "AMAZON.CancelIntent") == 0) {
        *text = pl_strdup("cancel");
        *payload = "intent:cancel";
    } else if (strcmp(name, "AMAZON.FallbackIntent") == 0) {
        *text = pl_strdup("");
    } else if (strcmp(name, setting_or(cfg, "catch_all_intent", "CatchAllIntent")) == 0) {
        const json_t *slot = json_object_get(slots, setting_or(cfg, "catch_all_slot", "utterance"));
        const char *said = string_at(slot, "value");
        *text = said ? pl_strdup(said) : slot_values(slots, 1);
    } else {
        *text = slot_values(slots, 0);
    }
    return 1;
}

/* The facts a flow may need, for msg.channel (new). No tokens: the store
 * keeps this object in the transcript. */
static json_t *channel_info(const json_t *body, const char *type, const char *intent) {
    json_t *info = json_pack("{s:s, s:s}", "platform", "alexa", "request_type", type);
    const char *device = string_at(body, "context.System.device.deviceId");
    const char *session = string_at(body, "session.sessionId");
    const json_t *is_new = at(body, "session.new");
    if (device) json_object_set_new(info, "device_id", json_string(device));
    if (session) json_object_set_new(info, "alexa_session", json_string(session));
    if (json_is_boolean(is_new)) json_object_set_new(info, "new_session", json_boolean(json_is_true(is_new)));
    if (intent) json_object_set_new(info, "intent", json_string(intent));
    return info;
}

/* Answers Alexa directly, with no turn (a request that is not a message). */
static int answer_directly(pl_inbound *out, const char *answer) {
    out->answer = pl_strdup(answer);
    out->answer_type = pl_strdup(ANSWER_TYPE);
    return PL_OK;
}

/* A LaunchRequest or IntentRequest as a message event in out->events. */
static int read_message(const pl_channel_config *cfg, const json_t *body, const char *type,
                        pl_inbound *out, char **err) {
    const char *user = string_at(body, "session.user.userId");
    if (!user) user = string_at(body, "context.System.user.userId");
    if (!user || !*user) {
        out->status = 400;
        return pl_fail(err, "the request names no user (session.user.userId)");
    }
    const json_t *intent = at(body, "request.intent");
    char *text = NULL;
    const char *payload = NULL;
    if (strcmp(type, "IntentRequest") == 0) {
        if (!json_is_object(intent)) {
            out->status = 400;
            return pl_fail(err, "an IntentRequest without request.intent");
        }
        if (!intent_words(cfg, intent, &text, &payload)) return answer_directly(out, LEAVE_ANSWER);
    }
    json_t *event = json_pack("{s:s, s:s}", "kind", "message", "user", user);
    const char *id = string_at(body, "request.requestId");
    const char *locale = string_at(body, "request.locale");
    if (id) json_object_set_new(event, "id", json_string(id));
    if (text) json_object_set_new(event, "text", json_string(text));
    if (payload) json_object_set_new(event, "payload", json_string(payload));
    if (locale) json_object_set_new(event, "locale", json_string(locale));
    const char *intent_name = json_string_value(json_object_get(intent, "name"));
    json_t *info = channel_info(body, type, intent_name);
    /* the skill opened again: a shopper mid-conversation hears the question again */
    if (strcmp(type, "LaunchRequest") == 0) json_object_set_new(info, "resume", json_true());
    json_object_set_new(event, "info", info);
    json_array_append_new(out->events, event);
    free(text);
    return PL_OK;
}

/* What the checks above and read_message read of a request; the parts of
 * other request types (SessionEndedRequest's error ...) are not looked at. */
static const pl_shape_rule request_shape[] = {
    {"version", PL_SHAPE_STRING},
    {"session", PL_SHAPE_OBJECT},
    {"session.new", PL_SHAPE_BOOLEAN},
    {"session.sessionId", PL_SHAPE_STRING},
    {"session.application", PL_SHAPE_OBJECT},
    {"session.application.applicationId", PL_SHAPE_STRING},
    {"session.user", PL_SHAPE_OBJECT},
    {"session.user.userId", PL_SHAPE_STRING},
    {"context", PL_SHAPE_OBJECT},
    {"context.System", PL_SHAPE_OBJECT},
    {"context.System.application", PL_SHAPE_OBJECT},
    {"context.System.application.applicationId", PL_SHAPE_STRING},
    {"context.System.user", PL_SHAPE_OBJECT},
    {"context.System.user.userId", PL_SHAPE_STRING},
    {"context.System.device", PL_SHAPE_OBJECT},
    {"context.System.device.deviceId", PL_SHAPE_STRING},
    {"request", PL_SHAPE_OBJECT | PL_SHAPE_REQUIRED},
    {"request.type", PL_SHAPE_STRING | PL_SHAPE_REQUIRED},
    {"request.requestId", PL_SHAPE_STRING},
    {"request.timestamp", PL_SHAPE_STRING},
    {"request.locale", PL_SHAPE_STRING},
    {"request.intent", PL_SHAPE_OBJECT},
    {"request.intent.name", PL_SHAPE_STRING},
    {"request.intent.slots", PL_SHAPE_OBJECT},
    {"request.intent.slots.*", PL_SHAPE_OBJECT},
    {"request.intent.slots.*.value", PL_SHAPE_STRING},
};

/* LaunchRequest: a message without text (the flow greets); IntentRequest: a
 * message with the shopper's words; SessionEndedRequest (Alexa closed the
 * session: the shopper left, stayed silent, or an error) and any other
 * request type: acknowledged with an empty response and no turn. A body of
 * the wrong shape is refused (400, the place named). */
static int read_request(const pl_channel_config *cfg, const json_t *body, pl_inbound *out, char **err) {
    char *why = NULL;
    if (pl_json_shape_check(body, NULL, request_shape, sizeof request_shape / sizeof *request_shape, &why) != PL_OK) {
        out->status = 400;
        pl_fail(err, "the request is not of the documented shape: %s", why);
        free(why);
        return PL_ERR;
    }
    const char *type = string_at(body, "request.type");
    out->events = json_array();
    if (strcmp(type, "LaunchRequest") == 0 || strcmp(type, "IntentRequest") == 0)
        return read_message(cfg, body, type, out, err);
    return answer_directly(out, EMPTY_ANSWER);
}

/* Checks, cheapest first, so that the certificate download (the only slow
 * step) happens only for a request that names this skill, is fresh, and
 * points at an allowed URL: the signature headers and URL rules (401), the
 * body (400), the skill id (403), the timestamp (400), then the chain and
 * the signature (401). Settings: skill_id (required; a comma-separated list
 * for several skills), verify_signature (default true). */
static int alexa_inbound(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                         char **err) {
    if (strcmp(req->method, "POST") != 0) {
        out->status = 405;
        return pl_fail(err, "Alexa calls this endpoint with POST");
    }
    const char *skill_ids = pl_channel_require(cfg, "skill_id", &out->status, err);
    if (!skill_ids) return PL_ERR;
    int verify = setting_flag(cfg, "verify_signature", 1);
    signature_claim claim = {NULL, "", NULL, NULL};
    json_t *body = NULL;
    int rc = PL_ERR, status = 401;
    if (verify && read_claim(cfg, req, &claim, err) != PL_OK) {
        out->status = 401;
        goto done;
    }
    body = json_loadb(req->body, req->body_len, 0, NULL);
    if (!json_is_object(body)) {
        out->status = 400;
        pl_fail(err, "the body is not a JSON object");
    } else if (check_skill_id(skill_ids, body, err) != PL_OK) {
        out->status = 403;
    } else if (check_timestamp(body, req->now, err) != PL_OK) {
        out->status = 400;
    } else if (verify && (rc = check_signature(cfg, req, &claim, &status, err)) != PL_OK) {
        if (rc == PL_ERR) out->status = status; /* PL_AGAIN leaves out as it was */
    } else {
        out->status = 200;
        rc = read_request(cfg, body, out, err);
    }
done:
    free(claim.url);
    json_decref(body);
    return rc;
}

/* --- speech ------------------------------------------------------------------------------- */

/* Decodes one UTF-8 character at s into *cp; returns its length (1 with
 * U+FFFD for a byte that starts no valid character). */
static size_t utf8_decode(const unsigned char *s, unsigned *cp) {
    size_t n = s[0] < 0x80    ? 1
               : s[0] >= 0xF8 ? 0
               : s[0] >= 0xF0 ? 4
               : s[0] >= 0xE0 ? 3
               : s[0] >= 0xC2 ? 2
                              : 0;
    *cp = 0xFFFD;
    if (n == 0) return 1;
    unsigned v = n == 1 ? s[0] : s[0] & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 1;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if ((n == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)))
        return 1;
    *cp = v;
    return n;
}

/* Emoji and pictographs: a voice cannot say them. */
static int is_pictograph(unsigned cp) {
    return (cp >= 0x2300 && cp <= 0x23FF) || (cp >= 0x25A0 && cp <= 0x27BF) ||
           (cp >= 0x2B00 && cp <= 0x2BFF) || (cp >= 0x1F000 && cp <= 0x1FAFF) ||
           (cp >= 0xFE00 && cp <= 0xFE0F) || cp == 0x200D || cp == 0x20E3 || (cp >= 0xE0020 && cp <= 0xE007F);
}

/* text as it can be spoken (new): runs of spaces one space, no space at
 * either end; line breaks, and pictographs between words (which often end
 * a sentence: "I'm Bea ☕ What can I get you?"), one line break: a pause. */
static char *speakable(const char *text) {
    text_buf b = {0};
    int space = 0, newline = 0;
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    while (*s) {
        unsigned cp;
        size_t n = utf8_decode(s, &cp);
        if (cp == '\n' || is_pictograph(cp)) {
            newline = 1;
        } else if (cp == ' ' || cp == '\t' || cp == '\r') {
            space = 1;
        } else if (cp != 0xFFFD) {
            if (b.len && (newline || space)) tb_puts(&b, newline ? "\n" : " ");
            space = newline = 0;
            tb_add(&b, (const char *)s, n);
        }
        s += n;
    }
    return tb_take(&b);
}

/* Appends text to SSML in b, escaped as XML (& < > " '), a line break as a
 * pause; stops before b would pass limit characters, at a character
 * boundary. Returns 0 when text did not fit whole. */
static int append_ssml(text_buf *b, const char *text, size_t limit) {
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        unsigned cp;
        size_t n = utf8_decode(s, &cp);
        const char *escaped = *s == '&'    ? "&amp;"
                              : *s == '<'  ? "&lt;"
                              : *s == '>'  ? "&gt;"
                              : *s == '"'  ? "&quot;"
                              : *s == '\'' ? "&apos;"
                              : *s == '\n' ? PAUSE
                                           : NULL;
        size_t len = escaped ? strlen(escaped) : n;
        if (b->len + len > limit) return 0;
        if (escaped) tb_puts(b, escaped);
        else tb_add(b, (const char *)s, n);
        s += n;
    }
    return 1;
}

/* How a list of choices is read out, per language. */
typedef struct {
    const char *lang, *intro, *sep, *last_sep, *end, *comma, *link_sent;
} phrasing;

static const phrasing phrasings[] = {
    {"en", "You can say: ", ", ", " or ", ".", ", ", "The link is in your Alexa app."},
    {"ja", "次のように言えます：", "、", "、または", "。", "、", "リンクはAlexaアプリに送りました。"},
    {"de", "Du kannst sagen: ", ", ", " oder ", ".", ", ", "Den Link findest du in der Alexa-App."},
    {"fr", "Vous pouvez dire : ", ", ", " ou ", ".", ", ", "Le lien est dans votre application Alexa."},
    {"es", "Puedes decir: ", ", ", " o ", ".", ", ", "El enlace está en tu app de Alexa."},
    {"it", "Puoi dire: ", ", ", " o ", ".", ", ", "Il link è nella tua app Alexa."},
    {"pt", "Você pode dizer: ", ", ", " ou ", ".", ", ", "O link está no seu app Alexa."},
};

/* 1 when locale ("en", "en-US", "ja_JP") is in language lang. */
static int in_language(const char *locale, const char *lang) {
    return locale && strncmp(locale, lang, 2) == 0 &&
           (locale[2] == '\0' || locale[2] == '-' || locale[2] == '_');
}

static const phrasing *phrasing_for(const char *locale) {
    for (size_t i = 0; i < sizeof phrasings / sizeof *phrasings; i++)
        if (in_language(locale, phrasings[i].lang)) return &phrasings[i];
    return &phrasings[0];
}

/* Currencies whose names an English voice says. */
static const struct {
    const char *code, *one, *many, *minor_one, *minor_many;
} currency_names[] = {
    {"EUR", "euro", "euros", "cent", "cents"},    {"USD", "dollar", "dollars", "cent", "cents"},
    {"GBP", "pound", "pounds", "penny", "pence"}, {"CAD", "dollar", "dollars", "cent", "cents"},
    {"AUD", "dollar", "dollars", "cent", "cents"}, {"JPY", "yen", "yen", "", ""},
};

/* "2 euros 50", "1 euro", "50 cents", "450 yen" (new), or NULL for a
 * currency without English names here. */
static char *english_price(long long amount, const char *currency) {
    for (size_t i = 0; amount >= 0 && i < sizeof currency_names / sizeof *currency_names; i++) {
        if (strcmp(currency, currency_names[i].code) != 0) continue;
        const char *one = currency_names[i].one, *many = currency_names[i].many;
        if (pl_money_decimals(currency) == 0) return pl_strdupf("%lld %s", amount, amount == 1 ? one : many);
        long long major = amount / 100, minor = amount % 100;
        const char *cent = minor == 1 ? currency_names[i].minor_one : currency_names[i].minor_many;
        if (major == 0) return pl_strdupf("%lld %s", minor, cent);
        if (minor == 0) return pl_strdupf("%lld %s", major, major == 1 ? one : many);
        return pl_strdupf("%lld %s %02lld", major, major == 1 ? one : many, minor);
    }
    return NULL;
}

/* A price as a voice says it (new): "2 euros 50" in English, "450円" in
 * Japanese; other languages and currencies as written ("4,50 €"). NULL
 * when the price has no currency. */
static char *spoken_price(const json_t *price, const char *locale) {
    const char *currency = json_string_value(json_object_get(price, "currency"));
    if (!currency) return NULL;
    long long amount = json_integer_value(json_object_get(price, "amount"));
    char *said = NULL;
    if (in_language(locale, "ja") && strcmp(currency, "JPY") == 0) said = pl_strdupf("%lld円", amount);
    else if (in_language(locale, "en")) said = english_price(amount, currency);
    return said ? said : pl_channel_price(price, locale);
}

/* A product card read out: "Butter Croissant, 2 euros 50." (new). */
static char *card_sentence(const json_t *card, const char *locale, const phrasing *w) {
    char *title = speakable(json_string_value(json_object_get(card, "title")));
    char *price = spoken_price(json_object_get(card, "price"), locale);
    char *s = pl_strdupf("%s%s%s%s", title, price ? w->comma : "", price ? price : "", w->end);
    free(title);
    free(price);
    return s;
}

/* A choice's title as said: the default bot's product choices append
 * " · €3.80" (conversation.lua, C:product_choices); the price after the
 * middle dot is dropped, because what a list read out should offer is what
 * the shopper can say back, and six prices make a long list. Other titles
 * ("Large +€0.90") are read as they are. New. */
static char *choice_title(const char *title) {
    const char *dot = title ? strstr(title, " \xC2\xB7 ") : NULL;
    char *cut = dot ? pl_strndup(title, (size_t)(dot - title)) : pl_strdup(title ? title : "");
    char *said = speakable(cut);
    free(cut);
    return said;
}

/* "You can say: Latte, Cappuccino or Espresso." for every choice of the
 * turn (new), or NULL when there are none. */
static char *choices_sentence(const json_t *replies, const phrasing *w) {
    json_t *titles = json_array();
    size_t i, j;
    const json_t *reply, *choice;
    json_array_foreach(replies, i, reply) {
        json_array_foreach(json_object_get(reply, "choices"), j, choice) {
            char *title = choice_title(json_string_value(json_object_get(choice, "title")));
            if (*title) json_array_append_new(titles, json_string(title));
            free(title);
        }
    }
    size_t n = json_array_size(titles);
    text_buf b = {0};
    for (i = 0; i < n; i++) {
        tb_puts(&b, i == 0 ? w->intro : i == n - 1 ? w->last_sep : w->sep);
        tb_puts(&b, json_string_value(json_array_get(titles, i)));
    }
    if (n) tb_puts(&b, w->end);
    json_decref(titles);
    return n ? tb_take(&b) : NULL;
}

/* The text of the turn's last reply that has one (borrowed), or NULL. */
static const char *last_text(const json_t *replies) {
    for (size_t i = json_array_size(replies); i > 0; i--) {
        const char *text = json_string_value(json_object_get(json_array_get(replies, i - 1), "text"));
        if (text && *text) return text;
    }
    return NULL;
}

/* What goes between the text so far and the next piece: a space after a
 * sentence's end, else a pause ("One Large Latte, coming up ✨" has lost
 * its end with its emoji). */
static const char *pause_after(const char *text) {
    static const char *const ends[] = {".", "!", "?", ":", ";", ",", "\xE3\x80\x82" /* 。 */,
                                       "\xEF\xBC\x81" /* ！ */, "\xEF\xBC\x9F" /* ？ */, "/>"};
    size_t len = strlen(text);
    for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
        size_t n = strlen(ends[i]);
        if (len >= n && memcmp(text + len - n, ends[i], n) == 0) return " ";
    }
    return "\n";
}

/* The SSML of pieces (plain texts, said in order) and then tail, within
 * Alexa's limit (new). The tail (the choices) is kept whole when the pieces
 * are too long: it says what the shopper can answer. */
static char *render_ssml(const json_t *pieces, const char *tail) {
    static const char open[] = "<speak>", close[] = "</speak>";
    size_t reserve = strlen(close);
    if (tail) {
        text_buf probe = {0};
        append_ssml(&probe, tail, SPEECH_LIMIT / 2);
        reserve += probe.len + strlen(PAUSE);
        free(probe.s);
    }
    text_buf b = {0};
    tb_puts(&b, open);
    size_t i;
    const json_t *piece;
    json_array_foreach(pieces, i, piece) {
        if (b.len > strlen(open) && !append_ssml(&b, pause_after(b.s), SPEECH_LIMIT - reserve)) break;
        if (!append_ssml(&b, json_string_value(piece), SPEECH_LIMIT - reserve)) break;
    }
    if (tail) {
        if (b.len > strlen(open)) append_ssml(&b, pause_after(b.s), SPEECH_LIMIT - strlen(close));
        append_ssml(&b, tail, SPEECH_LIMIT - strlen(close));
    }
    tb_puts(&b, close);
    return tb_take(&b);
}

/* {"type": "SSML", "ssml": ...} (new), or NULL if it is not valid UTF-8. */
static json_t *speech(const char *ssml) {
    json_t *s = json_string(ssml);
    return s ? json_pack("{s:s, s:o}", "type", "SSML", "ssml", s) : NULL;
}

/* The URL of a reply's link (a payment link), borrowed, or NULL. */
static const char *link_url(const json_t *reply) {
    return string_at(reply, "link.url");
}

/* The turn as read out: each reply's text, then its product cards as
 * "title, price", then its link's title and where to find the link (the
 * card in the Alexa app: a voice cannot open a URL); images are not said.
 * When the shopper said stop, only the first text (the bot's
 * acknowledgement: what a restarted flow says next is not for a shopper
 * who is leaving). New array of plain strings. */
static json_t *spoken_pieces(const json_t *replies, const char *locale, const phrasing *w, int stop) {
    json_t *pieces = json_array();
    size_t i, j;
    const json_t *reply, *card;
    json_array_foreach(replies, i, reply) {
        char *text = speakable(json_string_value(json_object_get(reply, "text")));
        if (*text) json_array_append_new(pieces, json_string(text));
        free(text);
        if (stop && json_array_size(pieces) > 0) break;
        json_array_foreach(json_object_get(reply, "cards"), j, card) {
            char *said = card_sentence(card, locale, w);
            json_array_append_new(pieces, json_string(said));
            free(said);
        }
        if (link_url(reply)) {
            char *title = speakable(string_at(reply, "link.title"));
            if (*title) json_array_append_new(pieces, json_string(title));
            json_array_append_new(pieces, json_string(w->link_sent));
            free(title);
        }
    }
    return pieces;
}

/* The Simple card for the Alexa app (new): the texts as written (emoji
 * kept), the product cards as "• title — price" lines and links as
 * "title: URL", within Alexa's limit. */
static json_t *simple_card(const pl_channel_config *cfg, const json_t *replies, const char *locale) {
    const char *title = setting_or(cfg, "card_title", cfg->bot);
    text_buf b = {0};
    size_t i, j;
    const json_t *reply, *card;
    json_array_foreach(replies, i, reply) {
        const char *text = json_string_value(json_object_get(reply, "text"));
        if (text && *text) {
            if (b.len) tb_puts(&b, "\n");
            tb_puts(&b, text);
        }
        json_array_foreach(json_object_get(reply, "cards"), j, card) {
            const json_t *amount = json_object_get(card, "price");
            char *price = json_object_get(amount, "currency") ? pl_channel_price(amount, locale) : NULL;
            const char *name = json_string_value(json_object_get(card, "title"));
            char *line = pl_strdupf("• %s%s%s", name ? name : "", price ? " — " : "", price ? price : "");
            if (b.len) tb_puts(&b, "\n");
            tb_puts(&b, line);
            free(line);
            free(price);
        }
        if (link_url(reply)) {
            const char *name = string_at(reply, "link.title");
            char *line = pl_strdupf("%s%s%s", name ? name : "", name ? ": " : "", link_url(reply));
            if (b.len) tb_puts(&b, "\n");
            tb_puts(&b, line);
            free(line);
        }
    }
    char *content = tb_take(&b);
    size_t room = CARD_LIMIT > strlen(title) ? CARD_LIMIT - strlen(title) : 0, end = 0;
    for (const unsigned char *s = (const unsigned char *)content; s[end];) {
        unsigned cp;
        size_t n = utf8_decode(s + end, &cp);
        if (end + n > room) break;
        end += n;
    }
    content[end] = '\0';
    json_t *out = json_pack("{s:s, s:s, s:s}", "type", "Simple", "title", title, "content", content);
    free(content);
    return out;
}

/* Whether the answer closes the Alexa session. The shopper said stop or
 * cancel: yes. Otherwise, with settings.end_session "auto" (the default):
 * when the flow is over (no flow open after the turn, as the order summary
 * leaves it) and the turn offers no choices; "never": only on stop. */
static int ends_session(const pl_channel_config *cfg, int done, int stop, int has_choices) {
    if (stop) return 1;
    if (strcmp(setting_or(cfg, "end_session", "auto"), "never") == 0 || has_choices) return 0;
    return done;
}

/* The reprompt, said when the shopper stays silent (new): the choices
 * again, else the last text; NULL when there is nothing to say. */
static json_t *reprompt(const json_t *replies, const char *choices) {
    const char *text = last_text(replies);
    if (!choices && !text) return NULL;
    char *said = choices ? pl_strdup(choices) : speakable(text);
    json_t *one = json_pack("[s]", said);
    char *ssml = render_ssml(one, NULL);
    json_t *out = speech(ssml);
    json_decref(one);
    free(said);
    free(ssml);
    return out ? json_pack("{s:o}", "outputSpeech", out) : NULL;
}

/* 1 when a reply of the turn carries a link. */
static int has_link(const json_t *replies) {
    size_t i;
    const json_t *reply;
    json_array_foreach(replies, i, reply) if (link_url(reply)) return 1;
    return 0;
}

/* Renders one turn into Alexa's response: outputSpeech (SSML: the texts,
 * the cards as "title, price", links by title, then the choices read out),
 * a reprompt while the session stays open (the choices again, else the last
 * text), a Simple card (settings.card: "end", the default, on the answer
 * that closes the session or carries a link; "always"; "never"), and
 * shouldEndSession. */
static int alexa_answer(const pl_channel_config *cfg, const pl_outbound *to, const json_t *replies,
                        char **body, const char **content_type, char **err) {
    const char *intent = json_string_value(json_object_get(to->info, "intent"));
    int stop = intent && (strcmp(intent, "AMAZON.StopIntent") == 0 ||
                          strcmp(intent, "AMAZON.CancelIntent") == 0);
    const phrasing *w = phrasing_for(to->locale);
    char *choices = stop ? NULL : choices_sentence(replies, w);
    int ending = ends_session(cfg, to->done, stop, choices != NULL);
    json_t *pieces = spoken_pieces(replies, to->locale, w, stop);
    char *ssml = render_ssml(pieces, choices);
    json_t *said = speech(ssml);
    json_t *again = ending ? NULL : reprompt(replies, choices);
    json_decref(pieces);
    free(ssml);
    free(choices);
    if (!said) {
        json_decref(again);
        return pl_fail(err, "the speech is not valid UTF-8");
    }
    json_t *response = json_pack("{s:o}", "outputSpeech", said);
    if (again) json_object_set_new(response, "reprompt", again);
    const char *card = setting_or(cfg, "card", "end");
    if (strcmp(card, "always") == 0 || (strcmp(card, "end") == 0 && (ending || has_link(replies))))
        json_object_set_new(response, "card", simple_card(cfg, replies, to->locale));
    json_object_set_new(response, "shouldEndSession", json_boolean(ending));
    json_t *root = json_pack("{s:s, s:o}", "version", "1.0", "response", response);
    *body = json_dumps(root, JSON_COMPACT);
    *content_type = ANSWER_TYPE;
    json_decref(root);
    return PL_OK;
}

const pl_channel_adapter pl_channel_alexa = {
    .name = "alexa",
    .synchronous = 1,
    .inbound = alexa_inbound,
    .answer = alexa_answer,
};
