/* test_channel_alexa: the Alexa custom skill adapter (channel_alexa.c) over
 * fixed vectors: skill id, timestamp window, certificate URL rules, the
 * certificate chain and the request signature (with a root CA, an
 * intermediate and a signing certificate made by the openssl command line
 * in a temporary folder, served through file:// URLs and downloaded by the
 * real asynchronous client on a libevent loop), the bounds on downloads
 * (in flight, waiting, a host that failed), each request type, and the
 * answer's SSML, choices, reprompt, card and end of session. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"
#include "channels/channel.h"
#include "check.h"
#include "event/http_client.h"

extern const pl_channel_adapter pl_channel_alexa;

#define SKILL "amzn1.ask.skill.test-0001"
#define DAY (24 * 3600LL)
/* Frees an error message and forgets it: pl_fail frees what *err held. */
#define DROP(p) (free(p), (p) = NULL)

static char dir[64] = "/tmp/parley-alexa-XXXXXX"; /* keys, certificates, chains */
static long long now;                                /* the tests' clock */
static int pki_ready;
static int dir_made; /* mkdtemp made dir: remove it at the end */
static struct event_base *base;      /* the loop certificate downloads run on */
static pl_http_client *http;
static int downloads; /* how many times inbound answered PL_AGAIN (started or joined a download) */
static long long window; /* BAD_HOST_SECONDS windows used up, see fresh_window */

/* A time past every failure remembered so far (a failed host is refused
 * for 60 s), on the tests' clock. */
static long long fresh_window(void) { return now + 61 * ++window; }

/* --- fixtures --------------------------------------------------------------------- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *cmd = pl_vstrdupf(fmt, ap);
    va_end(ap);
    char *quiet = pl_strdupf("cd %s && (%s) >/dev/null 2>&1", dir, cmd);
    int ok = system(quiet) == 0;
    if (!ok) printf("#   failed: %s\n", cmd);
    free(cmd);
    free(quiet);
    return ok;
}

static const char pki_conf[] =
    "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = x\n"
    "[ca_ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
    "subjectKeyIdentifier = hash\n"
    "[leaf_ext]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
    "subjectAltName = DNS:echo-api.amazon.com\n"
    "[nosan_ext]\nbasicConstraints = CA:FALSE\nsubjectAltName = DNS:example.com\n";

/* A root CA, an intermediate, the signing certificate (SAN
 * echo-api.amazon.com, valid for 2 days from now), one without that SAN and
 * a self-signed rogue; chains in echo.api/. */
static int make_pki(void) {
    if (!mkdtemp(dir)) return 0;
    dir_made = 1;
    char *conf = pl_strdupf("%s/pki.cnf", dir);
    FILE *f = fopen(conf, "w");
    free(conf);
    if (!f) return 0;
    fputs(pki_conf, f);
    fclose(f);
    return sh("mkdir echo.api") &&
           sh("openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 "
              "-subj /CN=Test-Root -config pki.cnf -extensions ca_ext") &&
           sh("openssl req -new -newkey rsa:2048 -nodes -keyout int.key -out int.csr -subj /CN=Test-Inter -config pki.cnf") &&
           sh("openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out int.pem -days 30 "
              "-extfile pki.cnf -extensions ca_ext") &&
           sh("openssl req -new -newkey rsa:2048 -nodes -keyout sign.key -out sign.csr -subj /CN=echo-api -config pki.cnf") &&
           sh("openssl x509 -req -in sign.csr -CA int.pem -CAkey int.key -CAcreateserial -out sign.pem -days 2 "
              "-extfile pki.cnf -extensions leaf_ext") &&
           sh("openssl x509 -req -in sign.csr -CA int.pem -CAkey int.key -CAcreateserial -out nosan.pem -days 2 "
              "-extfile pki.cnf -extensions nosan_ext") &&
           sh("openssl req -x509 -new -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.pem -days 2 "
              "-subj /CN=echo-api.amazon.com -config pki.cnf -extensions leaf_ext") &&
           sh("cat sign.pem int.pem > echo.api/good.pem && cat nosan.pem int.pem > echo.api/nosan.pem && "
              "cp rogue.pem echo.api/rogue.pem && echo junk > echo.api/junk.pem && "
              "cat sign.pem > echo.api/leaf-only.pem");
}

static char *cert_url(const char *name) { return pl_strdupf("file://%s/echo.api/%s", dir, name); }

static char *path_in(const char *name) { return pl_strdupf("%s/%s", dir, name); }

/* The base64 signature of body with the PEM key in dir/key_name. */
static char *sign(const char *key_name, const char *body, const EVP_MD *md) {
    char *path = path_in(key_name);
    FILE *f = fopen(path, "r");
    free(path);
    EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t n = 0;
    unsigned char *sig = NULL;
    char *b64 = NULL;
    if (key && ctx && EVP_DigestSignInit(ctx, NULL, md, NULL, key) == 1 &&
        EVP_DigestSign(ctx, NULL, &n, (const unsigned char *)body, strlen(body)) == 1 && (sig = malloc(n)) &&
        EVP_DigestSign(ctx, sig, &n, (const unsigned char *)body, strlen(body)) == 1) {
        b64 = malloc(4 * ((n + 2) / 3) + 1);
        EVP_EncodeBlock((unsigned char *)b64, sig, (int)n);
    }
    free(sig);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return b64;
}

static char *iso_time(long long t) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return pl_strdup(buf);
}

/* A request envelope (new text); intent is JSON text or NULL. */
static char *envelope_with(const char *type, const char *user, const char *intent, const char *stamp,
                           const char *context_skill, const char *session_skill) {
    json_t *app = json_pack("{s:s}", "applicationId", context_skill);
    json_t *root = json_pack(
        "{s:s, s:{s:b, s:s, s:{s:s}, s:{s:s}}, s:{s:{s:o, s:{s:s}, s:{s:s}}}, s:{s:s, s:s, s:s, s:s}}",
        "version", "1.0", "session", "new", 1, "sessionId", "amzn1.echo-api.session.42", "application",
        "applicationId", session_skill, "user", "userId", user, "context", "System", "application", app,
        "user", "userId", user, "device", "deviceId", "amzn1.ask.device.7", "request", "type", type,
        "requestId", "amzn1.echo-api.request.99", "timestamp", stamp, "locale", "en-US");
    if (intent) json_object_set_new(json_object_get(root, "request"), "intent", json_loads(intent, 0, NULL));
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

static char *envelope(const char *type, const char *intent, long long at) {
    char *stamp = iso_time(at);
    char *text = envelope_with(type, "amzn1.ask.account.shopper", intent, stamp, SKILL, SKILL);
    free(stamp);
    return text;
}

/* Request headers: a few name/value pairs, looked up case-insensitively. */
typedef struct {
    const char *name[4], *value[4];
} headers;

static const char *header_of(const void *ctx, const char *name) {
    const headers *h = ctx;
    for (int i = 0; i < 4; i++)
        if (h->name[i] && strcasecmp(h->name[i], name) == 0) return h->value[i];
    return NULL;
}

/* One webhook call as the server makes it: inbound, and when it answers
 * PL_AGAIN, inbound again from inside pl_webhook.again. */
typedef struct {
    pl_channel_config cfg;
    pl_webhook req;
    pl_inbound *in;
    char **err;
    int rc;
} attempt;

static void try_inbound(void *arg) {
    attempt *a = arg;
    a->rc = pl_channel_alexa.inbound(&a->cfg, &a->req, a->in, a->err);
    if (a->rc == PL_AGAIN) downloads++;
}

static void start_attempt(attempt *a, const json_t *settings, const char *method, const char *body,
                          const headers *h, long long at, pl_inbound *in, char **err) {
    static const headers none = {{NULL}, {NULL}};
    *a = (attempt){.cfg = {"barista", "alexa", settings}, .in = in, .err = err};
    a->req = (pl_webhook){.method = method, .url = "https://parley.example/v1/bots/barista/channels/alexa",
                          .body = body, .body_len = strlen(body), .header = header_of,
                          .header_ctx = h ? h : &none, .now = at, .http = http, .again = try_inbound,
                          .again_ctx = a};
    memset(in, 0, sizeof *in);
    in->status = 200;
    try_inbound(a);
}

/* Runs the loop until every attempt is answered. */
static void finish_attempts(attempt *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        while (a[i].rc == PL_AGAIN) event_base_loop(base, EVLOOP_ONCE);
}

static int run_inbound(const json_t *settings, const char *method, const char *body, const headers *h,
                       long long at, pl_inbound *in, char **err) {
    attempt a;
    start_attempt(&a, settings, method, body, h, at, in, err);
    finish_attempts(&a, 1);
    return a.rc;
}

/* inbound without signature checks; returns the HTTP status. */
static int post_unsigned(const char *body, long long at, pl_inbound *in) {
    json_t *settings = json_pack("{s:s, s:b}", "skill_id", SKILL, "verify_signature", 0);
    char *err = NULL;
    int rc = run_inbound(settings, "POST", body, NULL, at, in, &err);
    if (rc != PL_OK && in->status < 400) printf("#   refused with status %d\n", in->status);
    DROP(err);
    json_decref(settings);
    return rc == PL_OK ? 200 : in->status;
}

/* inbound with body signed by key_name and the chain at chain_name; the
 * status, and *why (new) when refused. */
static int post_signed(const json_t *settings, const char *body, const char *chain_name, const char *key_name,
                       const char *signature_header, long long at, char **why) {
    char *url = chain_name ? cert_url(chain_name) : NULL;
    char *sig = key_name ? sign(key_name, body, strcmp(signature_header, "Signature") == 0 ? EVP_sha1() : EVP_sha256()) : NULL;
    headers h = {{"SignatureCertChainUrl", signature_header}, {url, sig}};
    pl_inbound in;
    char *err = NULL;
    int rc = run_inbound(settings, "POST", body, &h, at, &in, &err);
    int status = rc == PL_OK ? 200 : in.status;
    if (why) *why = err ? err : pl_strdup("");
    else DROP(err);
    pl_inbound_clear(&in);
    free(url);
    free(sig);
    return status;
}

static json_t *skill_settings(void) { return json_pack("{s:s}", "skill_id", SKILL); }

static int has_quietly(const char *text, const char *part) { return text && strstr(text, part); }

static const json_t *first_event(const pl_inbound *in) { return json_array_get(in->events, 0); }

static const char *event_str(const pl_inbound *in, const char *key) {
    return json_string_value(json_object_get(first_event(in), key));
}

static int has(const char *text, const char *part) {
    int ok = text && strstr(text, part);
    if (!ok) printf("#   \"%s\" not in \"%s\"\n", part, text ? text : "(null)");
    return ok;
}

/* --- skill id and timestamp --------------------------------------------------------- */

TEST(skill_id_is_checked) {
    pl_inbound in;
    char *body = envelope("LaunchRequest", NULL, now);
    CHECK(post_unsigned(body, now, &in) == 200);
    CHECK(json_array_size(in.events) == 1);
    pl_inbound_clear(&in);
    free(body);

    char *stamp = iso_time(now);
    struct {
        const char *context, *session;
        int status;
    } cases[] = {
        {SKILL, SKILL, 200},
        {"amzn1.ask.skill.other", SKILL, 403},
        {SKILL, "amzn1.ask.skill.other", 403},
        {"amzn1.ask.skill.other", "amzn1.ask.skill.other", 403},
        {"", "", 403},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        body = envelope_with("LaunchRequest", "u", NULL, stamp, cases[i].context, cases[i].session);
        int status = post_unsigned(body, now, &in);
        if (status != cases[i].status) printf("#   case %zu: %d, want %d\n", i, status, cases[i].status);
        CHECK(status == cases[i].status);
        pl_inbound_clear(&in);
        free(body);
    }
    free(stamp);

    /* several skills share one bot: a comma-separated list */
    json_t *two = json_pack("{s:s, s:b}", "skill_id", "amzn1.ask.skill.a, " SKILL, "verify_signature", 0);
    char *err = NULL;
    body = envelope("LaunchRequest", NULL, now);
    CHECK(run_inbound(two, "POST", body, NULL, now, &in, &err) == PL_OK);
    pl_inbound_clear(&in);
    json_decref(two);

    /* no skill id configured: the server's fault, 503, and it says what to set */
    json_t *unset = json_pack("{s:s}", "skill_id_env", "BARISTA_TEST_UNSET_ALEXA_SKILL");
    CHECK(run_inbound(unset, "POST", body, NULL, now, &in, &err) == PL_ERR);
    CHECK(in.status == 503);
    CHECK(has(err, "BARISTA_TEST_UNSET_ALEXA_SKILL"));
    DROP(err);
    pl_inbound_clear(&in);
    json_decref(unset);
    free(body);
}

static int status_at_offset(long long offset) {
    pl_inbound in;
    char *body = envelope("LaunchRequest", NULL, now + offset);
    int status = post_unsigned(body, now, &in);
    pl_inbound_clear(&in);
    free(body);
    return status;
}

static int status_with_stamp(const char *stamp) {
    pl_inbound in;
    char *body = envelope_with("LaunchRequest", "u", NULL, stamp, SKILL, SKILL);
    int status = post_unsigned(body, now, &in);
    pl_inbound_clear(&in);
    free(body);
    return status;
}

TEST(timestamp_window) {
    CHECK(status_at_offset(0) == 200);
    CHECK(status_at_offset(-149) == 200);
    CHECK(status_at_offset(-150) == 200);
    CHECK(status_at_offset(-151) == 400);
    CHECK(status_at_offset(149) == 200);
    CHECK(status_at_offset(151) == 400);
    CHECK(status_at_offset(-DAY) == 400);

    /* a fraction of a second and a numeric offset are ISO 8601 too */
    time_t tt = (time_t)(now + 9 * 3600);
    struct tm tm;
    gmtime_r(&tt, &tm);
    char stamp[48];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S.250+09:00", &tm);
    CHECK(status_with_stamp(stamp) == 200);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S+0900", &tm);
    CHECK(status_with_stamp(stamp) == 200);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm); /* 9 hours off */
    CHECK(status_with_stamp(stamp) == 400);
    CHECK(status_with_stamp("yesterday") == 400);
    CHECK(status_with_stamp("2026-13-01T00:00:00Z") == 400);
    CHECK(status_with_stamp("") == 400);
    char *ok = iso_time(now);
    ok[strlen(ok) - 1] = '\0'; /* no zone */
    CHECK(status_with_stamp(ok) == 400);
    free(ok);
}

/* --- the certificate URL ------------------------------------------------------------ */

TEST(cert_url_rules) {
    /* The URL rules run before anything slow: a request for another skill
     * with an allowed URL gets past them (403 for the skill), one with a
     * refused URL stops there (401). Nothing is downloaded. */
    char *prefix = pl_strdup(getenv("PARLEY_ALEXA_CERT_URL_PREFIX"));
    unsetenv("PARLEY_ALEXA_CERT_URL_PREFIX");
    static const struct {
        const char *url;
        int ok;
    } urls[] = {
        /* Amazon's examples of valid URLs */
        {"https://s3.amazonaws.com/echo.api/echo-api-cert.pem", 1},
        {"https://s3.amazonaws.com:443/echo.api/echo-api-cert.pem", 1},
        {"https://s3.amazonaws.com/echo.api/../echo.api/echo-api-cert.pem", 1},
        /* case-insensitive protocol and host */
        {"HTTPS://S3.AmazonAWS.com/echo.api/echo-api-cert-4.pem", 1},
        {"https://s3.amazonaws.com/echo.api/./echo-api-cert.pem", 1},
        /* Amazon's examples of invalid URLs */
        {"http://s3.amazonaws.com/echo.api/echo-api-cert.pem", 0},
        {"https://notamazon.com/echo.api/echo-api-cert.pem", 0},
        {"https://s3.amazonaws.com/EcHo.aPi/echo-api-cert.pem", 0},
        {"https://s3.amazonaws.com/invalid.path/echo-api-cert.pem", 0},
        {"https://s3.amazonaws.com:563/echo.api/echo-api-cert.pem", 0},
        /* more that must not pass */
        {"https://s3.amazonaws.com/echo.api/../invalid.path/echo-api-cert.pem", 0},
        {"https://s3.amazonaws.com/echo.api", 0},
        {"https://s3.amazonaws.com", 0},
        {"https://s3.amazonaws.com.evil.example/echo.api/echo-api-cert.pem", 0},
        {"https://evil.example/s3.amazonaws.com/echo.api/echo-api-cert.pem", 0},
        {"https://s3.amazonaws.com@evil.example/echo.api/echo-api-cert.pem", 0},
        {"https://evil.example@s3.amazonaws.com/echo.api/echo-api-cert.pem", 0},
        {"https://s3.amazonaws.com:/echo.api/echo-api-cert.pem", 0},
        {"https://s3.amazonaws.com:4430/echo.api/echo-api-cert.pem", 0},
        {"https://s3.amazonaws.com:443x/echo.api/echo-api-cert.pem", 0},
        {"https://s3.amazonaws.com/echo.api/%2e%2e/x/cert.pem", 0},
        {"https://s3.amazonaws.com/echo.api\\..\\x/cert.pem", 0},
        {"file:///etc/echo.api/cert.pem", 0},
        {"s3.amazonaws.com/echo.api/echo-api-cert.pem", 0},
        {"", 0},
    };
    char *stamp = iso_time(now);
    char *body = envelope_with("LaunchRequest", "u", NULL, stamp, "amzn1.ask.skill.other", "amzn1.ask.skill.other");
    json_t *settings = skill_settings();
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        headers h = {{"SignatureCertChainUrl", "Signature-256"}, {urls[i].url, "c2lnbmF0dXJl"}};
        pl_inbound in;
        char *err = NULL;
        CHECK(run_inbound(settings, "POST", body, &h, now, &in, &err) == PL_ERR);
        int want = urls[i].ok ? 403 : 401;
        if (in.status != want) printf("#   %s: %d (%s), want %d\n", urls[i].url, in.status, err, want);
        CHECK(in.status == want);
        DROP(err);
        pl_inbound_clear(&in);
    }
    json_decref(settings);
    free(body);
    free(stamp);
    if (prefix) setenv("PARLEY_ALEXA_CERT_URL_PREFIX", prefix, 1);
    free(prefix);
}

/* --- the signature ---------------------------------------------------------------------- */

TEST(signature_is_verified) {
    if (!pki_ready) {
        CHECK(!"no test certificates");
        return;
    }
    json_t *settings = skill_settings();
    char *body = envelope("LaunchRequest", NULL, now);
    char *why = NULL;
    int before = downloads;
    CHECK(post_signed(settings, body, "good.pem", "sign.key", "Signature-256", now, &why) == 200);
    free(why);
    CHECK(downloads == before + 1);

    /* the chain is cached by URL: no second download */
    CHECK(sh("mv echo.api/good.pem echo.api/good.pem.away"));
    CHECK(post_signed(settings, body, "good.pem", "sign.key", "Signature-256", now, &why) == 200);
    free(why);
    CHECK(downloads == before + 1);
    CHECK(sh("mv echo.api/good.pem.away echo.api/good.pem"));

    /* a body that is not the one signed */
    char *other = envelope("LaunchRequest", NULL, now + 1);
    char *sig = sign("sign.key", body, EVP_sha256());
    char *url = cert_url("good.pem");
    headers h = {{"SignatureCertChainUrl", "Signature-256"}, {url, sig}};
    pl_inbound in;
    char *err = NULL;
    CHECK(run_inbound(settings, "POST", other, &h, now, &in, &err) == PL_ERR);
    CHECK(in.status == 401);
    CHECK(has(err, "signature does not match"));
    DROP(err);
    pl_inbound_clear(&in);

    /* the right chain, but signed by another key */
    CHECK(post_signed(settings, body, "good.pem", "rogue.key", "Signature-256", now, &why) == 401);
    CHECK(has(why, "signature does not match"));
    free(why);

    /* missing headers, or a signature that is not base64 */
    CHECK(post_signed(settings, body, NULL, "sign.key", "Signature-256", now, &why) == 401);
    CHECK(has(why, "SignatureCertChainUrl"));
    free(why);
    CHECK(post_signed(settings, body, "good.pem", NULL, "Signature-256", now, &why) == 401);
    CHECK(has(why, "Signature-256"));
    free(why);
    h.value[1] = "%%% not base64 %%%";
    CHECK(run_inbound(settings, "POST", body, &h, now, &in, &err) == PL_ERR && in.status == 401);
    DROP(err);
    pl_inbound_clear(&in);

    /* the older SHA-1 "Signature" header: only when asked for */
    CHECK(post_signed(settings, body, "good.pem", "sign.key", "Signature", now, &why) == 401);
    free(why);
    json_t *legacy = json_pack("{s:s, s:b}", "skill_id", SKILL, "legacy_sha1_signature", 1);
    CHECK(post_signed(legacy, body, "good.pem", "sign.key", "Signature", now, &why) == 200);
    free(why);
    json_decref(legacy);

    /* verify_signature false skips it (documented for local testing) */
    json_t *off = json_pack("{s:s, s:s}", "skill_id", SKILL, "verify_signature", "false");
    CHECK(post_signed(off, body, NULL, NULL, "Signature-256", now, &why) == 200);
    free(why);
    json_decref(off);

    free(url);
    free(sig);
    free(other);
    free(body);
    json_decref(settings);
}

/* A signed LaunchRequest at time `at`; the status and *why. */
static int signed_launch(const char *chain, const char *key, long long at, char **why) {
    json_t *settings = skill_settings();
    char *body = envelope("LaunchRequest", NULL, at);
    int status = post_signed(settings, body, chain, key, "Signature-256", at, why);
    free(body);
    json_decref(settings);
    return status;
}

TEST(chain_is_checked) {
    if (!pki_ready) {
        CHECK(!"no test certificates");
        return;
    }
    /* each failure marks the host (here: local files) bad for a minute, so
     * each case runs in a window of its own */
    static const struct {
        const char *chain, *key, *why;
    } bad_chains[] = {
        {"nosan.pem", "sign.key", "echo-api.amazon.com"},
        {"rogue.pem", "rogue.key", "trusted root"},
        {"leaf-only.pem", "sign.key", "trusted root"}, /* no intermediate */
        {"junk.pem", "sign.key", "no PEM certificate"},
        {"missing.pem", "sign.key", "cannot download"},
    };
    char *why = NULL;
    for (size_t i = 0; i < sizeof bad_chains / sizeof *bad_chains; i++) {
        CHECK(signed_launch(bad_chains[i].chain, bad_chains[i].key, fresh_window(), &why) == 401);
        CHECK(has(why, bad_chains[i].why));
        free(why);
    }

    /* the signing certificate's dates, checked again when it comes from the cache */
    CHECK(signed_launch("good.pem", "sign.key", now + 3 * DAY, &why) == 401);
    CHECK(has(why, "expired"));
    free(why);
    CHECK(sh("cp echo.api/good.pem echo.api/early.pem"));
    CHECK(signed_launch("early.pem", "sign.key", now - DAY, &why) == 401);
    CHECK(has(why, "not valid yet"));
    free(why);

    /* a host that failed is not fetched from again for a minute, whatever
     * the path; a chain already cached is still used meanwhile */
    long long at = fresh_window();
    CHECK(signed_launch("late.pem", "sign.key", at, &why) == 401);
    free(why);
    CHECK(sh("cp echo.api/good.pem echo.api/late.pem && cp echo.api/good.pem echo.api/other-path.pem"));
    int before = downloads;
    CHECK(signed_launch("late.pem", "sign.key", at + 30, &why) == 401);
    CHECK(has(why, "less than"));
    free(why);
    CHECK(signed_launch("other-path.pem", "sign.key", at + 59, &why) == 401);
    CHECK(has(why, "less than"));
    free(why);
    CHECK(downloads == before);
    CHECK(signed_launch("good.pem", "sign.key", at + 30, &why) == 200);
    free(why);
    CHECK(signed_launch("late.pem", "sign.key", at + 61, &why) == 200);
    free(why);
    CHECK(downloads == before + 1);

    /* other trusted roots: the chain no longer leads to one */
    char *rogue_root = path_in("rogue.pem"), *root = path_in("ca.pem");
    CHECK(sh("cp echo.api/good.pem echo.api/other-root.pem"));
    setenv("PARLEY_ALEXA_CA_FILE", rogue_root, 1);
    CHECK(signed_launch("other-root.pem", "sign.key", fresh_window(), &why) == 401);
    CHECK(has(why, "trusted root"));
    free(why);
    setenv("PARLEY_ALEXA_CA_FILE", "/nonexistent/roots.pem", 1);
    CHECK(signed_launch("good.pem", "sign.key", fresh_window(), &why) == 503);
    CHECK(has(why, "/nonexistent/roots.pem"));
    free(why);
    setenv("PARLEY_ALEXA_CA_FILE", root, 1);
    CHECK(signed_launch("good.pem", "sign.key", fresh_window(), &why) == 200);
    free(why);
    free(rogue_root);
    free(root);
}

/* A socket on 127.0.0.1 that listens: a certificate host that takes
 * connections (see hold_connection) and never answers. Returns the fd. */
static int silent_host(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

#define HANGING 4  /* the adapter's cap on downloads in flight */
#define WAITING 64 /* and on requests waiting for them */

static int held[HANGING + 1], nheld;

/* The silent host's accept: keeps the connection, never reads or writes. */
static void hold_connection(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    (void)arg;
    int conn = accept(fd, NULL, NULL);
    if (conn >= 0 && nheld < HANGING + 1) held[nheld++] = conn;
    else if (conn >= 0) close(conn);
}

/* Requests naming certificates on a host that never answers wait without
 * holding anything up; the caps bound them; once the host fails, it is
 * refused for a minute whatever the path. */
TEST(downloads_are_bounded) {
    int port = 0, fd = silent_host(&port);
    CHECK(fd >= 0);
    if (fd < 0) return;
    struct event *accepting = event_new(base, fd, EV_READ | EV_PERSIST, hold_connection, NULL);
    event_add(accepting, NULL);
    char *saved = pl_strdup(getenv("PARLEY_ALEXA_CERT_URL_PREFIX"));
    char *prefix = pl_strdupf("http://127.0.0.1:%d/echo.api/", port);
    setenv("PARLEY_ALEXA_CERT_URL_PREFIX", prefix, 1);
    long long at = fresh_window();
    char *body = envelope("LaunchRequest", NULL, at);
    json_t *settings = skill_settings();
    static attempt a[WAITING + 2];
    static pl_inbound in[WAITING + 2];
    static char *errs[WAITING + 2];
    static headers h[WAITING + 2];
    static char urls[WAITING + 2][96];
    size_t n = 0;
    /* HANGING downloads of distinct paths, then everyone else waits on the first one's */
    for (; n < WAITING + 1; n++) {
        snprintf(urls[n], sizeof urls[n], "%scert-%zu.pem", prefix, n < HANGING ? n : 0);
        h[n] = (headers){{"SignatureCertChainUrl", "Signature-256"}, {urls[n], "c2lnbmF0dXJl"}};
        start_attempt(&a[n], settings, "POST", body, &h[n], at, &in[n], &errs[n]);
    }
    for (size_t i = 0; i < WAITING; i++) CHECK(a[i].rc == PL_AGAIN);
    while (nheld < HANGING) event_base_loop(base, EVLOOP_ONCE); /* every download is connected, and hangs */
    CHECK(a[WAITING].rc == PL_ERR && in[WAITING].status == 503 && has(errs[WAITING], "waiting"));
    /* one more distinct path: too many downloads in flight */
    snprintf(urls[n], sizeof urls[n], "%scert-%d.pem", prefix, HANGING);
    h[n] = (headers){{"SignatureCertChainUrl", "Signature-256"}, {urls[n], "c2lnbmF0dXJl"}};
    start_attempt(&a[n], settings, "POST", body, &h[n], at, &in[n], &errs[n]);
    CHECK(a[n].rc == PL_ERR && in[n].status == 503 && has(errs[n], "in flight"));
    n++;

    /* meanwhile an unsigned request (verify_signature off) is answered at once */
    pl_inbound quick;
    CHECK(post_unsigned(body, at, &quick) == 200);
    pl_inbound_clear(&quick);

    /* the host hangs up: every waiting request gets its answer */
    event_free(accepting);
    close(fd);
    for (int i = 0; i < nheld; i++) close(held[i]);
    finish_attempts(a, WAITING);
    CHECK(nheld == HANGING);
    for (size_t i = 0; i < WAITING; i++) {
        CHECK(a[i].rc == PL_ERR && in[i].status == 401);
        if (i < HANGING) CHECK(has(errs[i], "cannot download") && !has_quietly(errs[i], "Couldn't connect"));
    }

    /* and the host is refused for a minute, whatever the path */
    int before = downloads;
    char *why = NULL;
    headers other = {{"SignatureCertChainUrl", "Signature-256"}, {NULL, "c2lnbmF0dXJl"}};
    char *url = pl_strdupf("%sanother-path.pem", prefix);
    other.value[0] = url;
    pl_inbound refused;
    CHECK(run_inbound(settings, "POST", body, &other, at + 59, &refused, &why) == PL_ERR);
    CHECK(refused.status == 401 && has(why, "failed less than"));
    CHECK(downloads == before);
    free(why);
    pl_inbound_clear(&refused);

    for (size_t i = 0; i < n; i++) {
        free(errs[i]);
        pl_inbound_clear(&in[i]);
    }
    free(url);
    json_decref(settings);
    free(body);
    setenv("PARLEY_ALEXA_CERT_URL_PREFIX", saved, 1);
    free(saved);
    free(prefix);
}

/* --- requests ----------------------------------------------------------------------------- */

TEST(launch_request) {
    pl_inbound in;
    char *body = envelope("LaunchRequest", NULL, now);
    CHECK(post_unsigned(body, now, &in) == 200);
    CHECK(json_array_size(in.events) == 1);
    CHECK_STR(event_str(&in, "kind"), "message");
    CHECK_STR(event_str(&in, "id"), "amzn1.echo-api.request.99");
    CHECK_STR(event_str(&in, "user"), "amzn1.ask.account.shopper");
    CHECK_STR(event_str(&in, "locale"), "en-US");
    CHECK(json_object_get(first_event(&in), "text") == NULL);
    CHECK(json_object_get(first_event(&in), "payload") == NULL);
    const json_t *info = json_object_get(first_event(&in), "info");
    CHECK_STR(json_string_value(json_object_get(info, "platform")), "alexa");
    CHECK_STR(json_string_value(json_object_get(info, "device_id")), "amzn1.ask.device.7");
    CHECK_STR(json_string_value(json_object_get(info, "alexa_session")), "amzn1.echo-api.session.42");
    CHECK_STR(json_string_value(json_object_get(info, "request_type")), "LaunchRequest");
    CHECK(json_is_true(json_object_get(info, "new_session")));
    CHECK(in.answer == NULL);
    pl_inbound_clear(&in);
    free(body);
}

/* The first event of an IntentRequest for intent (JSON text); new inbound. */
static int intent_request(const char *intent, json_t *settings, pl_inbound *in) {
    char *body = envelope("IntentRequest", intent, now);
    char *err = NULL;
    json_t *own = settings ? NULL : json_pack("{s:s, s:b}", "skill_id", SKILL, "verify_signature", 0);
    int rc = run_inbound(settings ? settings : own, "POST", body, NULL, now, in, &err);
    if (rc != PL_OK) printf("#   %s: %s\n", intent, err);
    DROP(err);
    free(body);
    json_decref(own);
    return rc;
}

static int says(const char *intent, const char *text, const char *payload) {
    pl_inbound in;
    int ok = intent_request(intent, NULL, &in) == PL_OK && json_array_size(in.events) == 1;
    const char *got_text = event_str(&in, "text"), *got_payload = event_str(&in, "payload");
    ok = ok && got_text && strcmp(got_text, text) == 0 &&
         (payload ? got_payload && strcmp(got_payload, payload) == 0 : got_payload == NULL);
    if (!ok) printf("#   %s -> text \"%s\" payload \"%s\"\n", intent, got_text, got_payload);
    pl_inbound_clear(&in);
    return ok;
}

TEST(intent_requests) {
    CHECK(says("{\"name\":\"CatchAllIntent\",\"confirmationStatus\":\"NONE\",\"slots\":{\"utterance\":"
               "{\"name\":\"utterance\",\"value\":\"a large latte\",\"confirmationStatus\":\"NONE\"}}}",
               "a large latte", NULL));
    CHECK(says("{\"name\":\"CatchAllIntent\",\"slots\":{\"utterance\":{\"name\":\"utterance\"}}}", "", NULL));
    CHECK(says("{\"name\":\"CatchAllIntent\"}", "", NULL));
    CHECK(says("{\"name\":\"AMAZON.HelpIntent\",\"slots\":{}}", "help", "intent:help"));
    CHECK(says("{\"name\":\"AMAZON.StopIntent\"}", "cancel", "intent:cancel"));
    CHECK(says("{\"name\":\"AMAZON.CancelIntent\"}", "cancel", "intent:cancel"));
    CHECK(says("{\"name\":\"AMAZON.FallbackIntent\"}", "", NULL));
    CHECK(says("{\"name\":\"OrderIntent\",\"slots\":{\"size\":{\"name\":\"size\",\"value\":\"large\"},"
               "\"drink\":{\"name\":\"drink\",\"value\":\"latte\"},\"milk\":{\"name\":\"milk\"}}}",
               "large latte", NULL));
    CHECK(says("{\"name\":\"AMAZON.YesIntent\"}", "", NULL));

    /* the catch-all's names are settings; its slot, else its first value */
    json_t *mine = json_pack("{s:s, s:b, s:s, s:s}", "skill_id", SKILL, "verify_signature", 0,
                             "catch_all_intent", "ShopperSaid", "catch_all_slot", "words");
    pl_inbound in;
    CHECK(intent_request("{\"name\":\"ShopperSaid\",\"slots\":{\"other\":{\"name\":\"other\",\"value\":\"x\"},"
                         "\"words\":{\"name\":\"words\",\"value\":\"two cappuccinos\"}}}",
                         mine, &in) == PL_OK);
    CHECK_STR(event_str(&in, "text"), "two cappuccinos");
    pl_inbound_clear(&in);
    CHECK(intent_request("{\"name\":\"ShopperSaid\",\"slots\":{\"query\":{\"name\":\"query\",\"value\":\"a mocha\"},"
                         "\"more\":{\"name\":\"more\",\"value\":\"y\"}}}",
                         mine, &in) == PL_OK);
    CHECK_STR(event_str(&in, "text"), "a mocha");
    pl_inbound_clear(&in);
    json_decref(mine);

    /* the intent's name reaches the flow as msg.channel.intent */
    CHECK(intent_request("{\"name\":\"AMAZON.StopIntent\"}", NULL, &in) == PL_OK);
    CHECK_STR(json_string_value(json_object_get(json_object_get(first_event(&in), "info"), "intent")),
              "AMAZON.StopIntent");
    CHECK_STR(json_string_value(json_object_get(json_object_get(first_event(&in), "info"), "request_type")),
              "IntentRequest");
    pl_inbound_clear(&in);

    /* "go home" leaves the skill: no turn, an answer that ends the session */
    CHECK(intent_request("{\"name\":\"AMAZON.NavigateHomeIntent\"}", NULL, &in) == PL_OK);
    CHECK(json_array_size(in.events) == 0);
    CHECK_STR(in.answer, "{\"version\":\"1.0\",\"response\":{\"shouldEndSession\":true}}");
    CHECK(has(in.answer_type, "application/json"));
    pl_inbound_clear(&in);
}

TEST(session_ended_and_other_requests) {
    static const char *const types[] = {"SessionEndedRequest", "System.ExceptionEncountered",
                                        "CanFulfillIntentRequest"};
    for (size_t i = 0; i < 3; i++) {
        pl_inbound in;
        char *body = envelope(types[i], NULL, now);
        CHECK(post_unsigned(body, now, &in) == 200);
        CHECK(json_array_size(in.events) == 0);
        CHECK_STR(in.answer, "{\"version\":\"1.0\",\"response\":{}}");
        CHECK(has(in.answer_type, "application/json"));
        pl_inbound_clear(&in);
        free(body);
    }
}

TEST(bad_requests) {
    pl_inbound in;
    char *err = NULL;
    json_t *settings = json_pack("{s:s, s:b}", "skill_id", SKILL, "verify_signature", 0);
    char *body = envelope("LaunchRequest", NULL, now);
    CHECK(run_inbound(settings, "GET", body, NULL, now, &in, &err) == PL_ERR && in.status == 405);
    DROP(err);
    pl_inbound_clear(&in);
    CHECK(post_unsigned("{not json", now, &in) == 400);
    pl_inbound_clear(&in);
    CHECK(post_unsigned("[1, 2]", now, &in) == 400);
    pl_inbound_clear(&in);
    free(body);

    char *stamp = iso_time(now);
    body = envelope_with("IntentRequest", "u", NULL, stamp, SKILL, SKILL); /* no intent */
    CHECK(post_unsigned(body, now, &in) == 400);
    pl_inbound_clear(&in);
    free(body);
    json_t *no_user = json_pack("{s:{s:{s:{s:s}}}, s:{s:s, s:s}}", "context", "System", "application",
                                "applicationId", SKILL, "request", "type", "LaunchRequest", "timestamp", stamp);
    body = json_dumps(no_user, 0);
    CHECK(post_unsigned(body, now, &in) == 400);
    pl_inbound_clear(&in);
    free(body);
    json_object_del(json_object_get(no_user, "request"), "type");
    body = json_dumps(no_user, 0);
    CHECK(post_unsigned(body, now, &in) == 400);
    pl_inbound_clear(&in);
    free(body);
    json_decref(no_user);
    free(stamp);
    json_decref(settings);
}

/* A request (made from a good one by replacing the value at a dotted path
 * with `value`, JSON) refused with 400 naming the place. */
static void check_refused_shape(const char *path, const char *value, const char *place) {
    char *stamp = iso_time(now);
    char *good = envelope_with("IntentRequest", "amzn1.ask.account.shopper",
                               "{\"name\": \"CatchAllIntent\", \"slots\": {\"utterance\": {\"name\": \"utterance\", "
                               "\"value\": \"a latte\"}}}",
                               stamp, SKILL, SKILL);
    json_t *root = json_loads(good, 0, NULL), *parent = root;
    char key[64];
    for (const char *p = path; parent;) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
        if (!p[n]) break;
        parent = json_object_get(parent, key);
        p += n + 1;
    }
    json_object_set_new(parent, key, json_loads(value, JSON_DECODE_ANY, NULL));
    char *body = json_dumps(root, 0);
    json_t *settings = json_pack("{s:s, s:b}", "skill_id", SKILL, "verify_signature", 0);
    pl_inbound in;
    char *err = NULL;
    CHECK(run_inbound(settings, "POST", body, NULL, now, &in, &err) == PL_ERR);
    CHECK(in.status == 400 && json_array_size(in.events) == 0);
    if (!err || !strstr(err, place)) printf("#   %s = %s -> %s (expected %s)\n", path, value, err ? err : "(accepted)", place);
    CHECK(err && strstr(err, place));
    free(err);
    pl_inbound_clear(&in);
    json_decref(settings);
    free(body);
    json_decref(root);
    free(good);
    free(stamp);
}

/* Parts of the wrong type are refused, not read as absent: a session that
 * is a string no longer makes the user come from elsewhere, an intent's
 * slots that are an array no longer make an empty utterance. */
TEST(requests_of_the_wrong_shape_are_400) {
    check_refused_shape("request.intent.slots", "[\"a latte\"]", "request.intent.slots must be an object");
    check_refused_shape("request.intent.slots.utterance", "\"a latte\"", "request.intent.slots.utterance must be an object");
    check_refused_shape("request.intent.slots.utterance.value", "42", "slots.utterance.value must be a string");
    check_refused_shape("request.intent.name", "null", "request.intent.name must be a string");
    check_refused_shape("request.intent", "\"CatchAllIntent\"", "request.intent must be an object");
    check_refused_shape("request.type", "[\"IntentRequest\"]", "request.type must be a string");
    check_refused_shape("request.locale", "1", "request.locale must be a string");
    check_refused_shape("session", "\"amzn1.echo-api.session.42\"", "session must be an object");
    check_refused_shape("session.user", "[]", "session.user must be an object");
    check_refused_shape("session.user.userId", "7", "session.user.userId must be a string");
    check_refused_shape("session.new", "\"yes\"", "session.new must be true or false");
    check_refused_shape("context.System.device", "\"echo\"", "context.System.device must be an object");
}

/* --- answers ------------------------------------------------------------------------------- */

/* The SSML of an outputSpeech object, checking its type. */
static const char *ssml_of(const json_t *speech) {
    if (!speech) return NULL;
    const char *type = json_string_value(json_object_get(speech, "type"));
    if (!type || strcmp(type, "SSML") != 0) printf("#   outputSpeech.type is %s\n", type);
    return json_string_value(json_object_get(speech, "ssml"));
}

typedef struct {
    json_t *root;
    const char *ssml, *reprompt;
    int end;
    const json_t *card;
} answer;

/* Renders replies (JSON text) for a session in locale; info may be NULL. */
/* Whether the flow is over after the rendered turn (pl_outbound.done). */
static int flow_done;

static answer render(const char *replies_json, const char *locale, const char *info_json, json_t *settings) {
    json_t *replies = json_loads(replies_json, 0, NULL);
    json_t *info = info_json ? json_loads(info_json, 0, NULL) : NULL;
    json_t *own = settings ? NULL : skill_settings();
    pl_channel_config cfg = {"barista", "alexa", settings ? settings : own};
    pl_outbound to = {.user = "amzn1.ask.account.shopper", .info = info, .locale = locale, .done = flow_done};
    char *body = NULL, *err = NULL;
    const char *type = NULL;
    answer a = {0};
    if (!replies) printf("#   bad test JSON: %s\n", replies_json);
    if (pl_channel_alexa.answer(&cfg, &to, replies, &body, &type, &err) != PL_OK) printf("#   answer: %s\n", err);
    else if (!type || !strstr(type, "application/json")) printf("#   content type %s\n", type);
    a.root = body ? json_loads(body, 0, NULL) : NULL;
    const json_t *response = json_object_get(a.root, "response");
    a.ssml = ssml_of(json_object_get(response, "outputSpeech"));
    a.reprompt = ssml_of(json_object_get(json_object_get(response, "reprompt"), "outputSpeech"));
    a.end = json_is_true(json_object_get(response, "shouldEndSession"));
    a.card = json_object_get(response, "card");
    if (!json_is_boolean(json_object_get(response, "shouldEndSession"))) printf("#   no shouldEndSession\n");
    const char *version = json_string_value(json_object_get(a.root, "version"));
    if (!version || strcmp(version, "1.0") != 0) printf("#   version is %s\n", version);
    free(body);
    DROP(err);
    json_decref(replies);
    json_decref(info);
    json_decref(own);
    return a;
}

static const char *card_field(const answer *a, const char *key) {
    return json_string_value(json_object_get(a->card, key));
}

TEST(answer_speaks_in_order_and_escapes) {
    /* emoji are not said, but the pause they made is kept; a reply that
     * does not end a sentence is followed by a pause too */
    answer a = render("[{\"text\": \"Fish & chips <now>, \\\"quoted\\\" and it's  hot ☕\"},"
                      " {\"text\": \"Second ✨ line\\n\\nthird  line.\"}, {\"text\": \"Fourth.\"}]",
                      "en", NULL, NULL);
    CHECK_STR(a.ssml, "<speak>Fish &amp; chips &lt;now&gt;, &quot;quoted&quot; and it&apos;s hot"
                      "<break strength=\"medium\"/>Second<break strength=\"medium\"/>line"
                      "<break strength=\"medium\"/>third line. Fourth.</speak>");
    /* a flow still open keeps the session open, with a reprompt */
    CHECK(!a.end);
    json_decref(a.root);
    /* the flow said its last word: the session ends */
    flow_done = 1;
    a = render("[{\"text\": \"Fourth.\"}]", "en", NULL, NULL);
    flow_done = 0;
    CHECK(a.end);
    CHECK(a.reprompt == NULL);
    json_decref(a.root);
}

TEST(answer_reads_choices) {
    const char *drinks = "[{\"text\": \"Which drink would you like?\", \"choices\": ["
                         "{\"title\": \"Latte · €3.80\", \"payload\": \"latte\"},"
                         "{\"title\": \"Cappuccino · €3.60\", \"payload\": \"cappuccino\"},"
                         "{\"title\": \"Espresso · €2.40\", \"payload\": \"espresso\"}]}]";
    answer a = render(drinks, "en", NULL, NULL);
    CHECK_STR(a.ssml, "<speak>Which drink would you like? You can say: Latte, Cappuccino or Espresso.</speak>");
    CHECK_STR(a.reprompt, "<speak>You can say: Latte, Cappuccino or Espresso.</speak>");
    CHECK(!a.end);
    CHECK(a.card == NULL);
    json_decref(a.root);

    /* choices of several replies, in order; titles that are not product choices stay whole */
    a = render("[{\"text\": \"One Large Latte, coming up!\"},"
               " {\"text\": \"What size?\", \"choices\": [{\"title\": \"Small\", \"payload\": \"s\"},"
               " {\"title\": \"Large +€0.90\", \"payload\": \"l\"}]},"
               " {\"choices\": [{\"title\": \"No thanks 🙅\", \"payload\": \"no\"}]}]",
               "en", NULL, NULL);
    CHECK_STR(a.ssml, "<speak>One Large Latte, coming up! What size? You can say: Small, Large +€0.90 or No thanks.</speak>");
    json_decref(a.root);

    a = render("[{\"text\": \"Anything else?\", \"choices\": [{\"title\": \"That's all\", \"payload\": \"done\"}]}]",
               "en", NULL, NULL);
    CHECK_STR(a.ssml, "<speak>Anything else? You can say: That&apos;s all.</speak>");
    json_decref(a.root);

    a = render("[{\"text\": \"どのお飲み物にしますか？\", \"choices\": [{\"title\": \"カフェラテ · ¥450\", \"payload\": \"l\"},"
               " {\"title\": \"抹茶ラテ\", \"payload\": \"m\"}]}]",
               "ja", NULL, NULL);
    CHECK_STR(a.ssml, "<speak>どのお飲み物にしますか？ 次のように言えます：カフェラテ、または抹茶ラテ。</speak>");
    CHECK(!a.end);
    json_decref(a.root);
}

TEST(answer_reads_cards) {
    answer a = render("[{\"text\": \"Butter Croissant would go nicely with that.\", \"cards\": ["
                      "{\"sku\": \"croissant\", \"title\": \"Butter Croissant\", \"subtitle\": \"a classic\","
                      " \"price\": {\"amount\": 250, \"currency\": \"EUR\"}, \"payload\": \"croissant\"},"
                      "{\"sku\": \"biscotti\", \"title\": \"Almond Biscotti\", \"price\": {\"amount\": 100, \"currency\": \"EUR\"}}],"
                      " \"choices\": [{\"title\": \"Add Butter Croissant\", \"payload\": \"croissant\"},"
                      " {\"title\": \"No thanks\", \"payload\": \"no\"}]}]",
                      "en", NULL, NULL);
    CHECK_STR(a.ssml, "<speak>Butter Croissant would go nicely with that. Butter Croissant, 2 euros 50. "
                      "Almond Biscotti, 1 euro. You can say: Add Butter Croissant or No thanks.</speak>");
    json_decref(a.root);

    static const struct {
        long long amount;
        const char *currency, *locale, *said;
    } prices[] = {
        {5, "EUR", "en", "5 cents"},      {1, "USD", "en", "1 cent"},        {1999, "USD", "en", "19 dollars 99"},
        {305, "GBP", "en", "3 pounds 05"}, {450, "JPY", "en", "450 yen"},     {450, "JPY", "ja", "450円"},
        {250, "EUR", "de", "2,50 €"},      {250, "EUR", "ja", "€2.50"},       {1200, "CHF", "en", "12.00 CHF"},
    };
    for (size_t i = 0; i < sizeof prices / sizeof *prices; i++) {
        char *replies = pl_strdupf("[{\"cards\": [{\"sku\": \"x\", \"title\": \"X\", \"price\": "
                                   "{\"amount\": %lld, \"currency\": \"%s\"}}]}]",
                                   prices[i].amount, prices[i].currency);
        a = render(replies, prices[i].locale, NULL, NULL);
        char *want = pl_strdupf("<speak>X%s%s%s</speak>", strcmp(prices[i].locale, "ja") == 0 ? "、" : ", ",
                                prices[i].said, strcmp(prices[i].locale, "ja") == 0 ? "。" : ".");
        CHECK_STR(a.ssml, want);
        free(want);
        free(replies);
        json_decref(a.root);
    }
}

TEST(answer_reprompts_a_question) {
    answer a = render("[{\"text\": \"Sorry, I didn't get that.\"}, {\"text\": \"What's your name?\"}]", "en", NULL, NULL);
    CHECK(!a.end);
    CHECK_STR(a.reprompt, "<speak>What&apos;s your name?</speak>");
    json_decref(a.root);
    a = render("[{\"text\": \"お名前は？\"}]", "ja", NULL, NULL);
    CHECK(!a.end);
    CHECK_STR(a.reprompt, "<speak>お名前は？</speak>");
    json_decref(a.root);
}

TEST(answer_ends_the_session) {
    const char *summary = "[{\"text\": \"Here's your order:\\n1 × Latte (Large) — €4.70\\nTotal: €4.70. Thank you! ☕\"}]";
    flow_done = 1; /* the order summary closes the main flow */
    answer a = render(summary, "en", NULL, NULL);
    flow_done = 0;
    CHECK(a.end);
    CHECK(a.reprompt == NULL);
    CHECK_STR(a.ssml, "<speak>Here&apos;s your order:<break strength=\"medium\"/>1 × Latte (Large) — €4.70"
                      "<break strength=\"medium\"/>Total: €4.70. Thank you!</speak>");
    /* the order, as written, in the Alexa app */
    CHECK_STR(card_field(&a, "type"), "Simple");
    CHECK_STR(card_field(&a, "title"), "barista");
    CHECK_STR(card_field(&a, "content"), "Here's your order:\n1 × Latte (Large) — €4.70\nTotal: €4.70. Thank you! ☕");
    json_decref(a.root);

    json_t *settings = json_pack("{s:s, s:s, s:s}", "skill_id", SKILL, "card", "never", "end_session", "never");
    a = render(summary, "en", NULL, settings);
    CHECK(!a.end);
    CHECK(a.card == NULL);
    CHECK(has(a.reprompt, "Thank you!"));
    json_decref(a.root);
    json_decref(settings);

    settings = json_pack("{s:s, s:s, s:s}", "skill_id", SKILL, "card", "always", "card_title", "Bea's Coffee");
    a = render("[{\"text\": \"Which size?\", \"cards\": [{\"sku\": \"x\", \"title\": \"Latte\","
               " \"price\": {\"amount\": 380, \"currency\": \"EUR\"}}], \"choices\": [{\"title\": \"Small\", \"payload\": \"s\"}]}]",
               "en", NULL, settings);
    CHECK(!a.end);
    CHECK_STR(card_field(&a, "title"), "Bea's Coffee");
    CHECK_STR(card_field(&a, "content"), "Which size?\n• Latte — €3.80");
    json_decref(a.root);
    json_decref(settings);
}

TEST(answer_to_stop) {
    /* the router's cancel, then the restarted flow's greeting: only the
     * acknowledgement is said, and the session ends */
    const char *replies = "[{\"text\": \"No worries, I've cleared your order.\"},"
                          " {\"text\": \"Hi! I'm Bea ☕ What can I get you?\"},"
                          " {\"text\": \"Which drink?\", \"choices\": [{\"title\": \"Latte · €3.80\", \"payload\": \"latte\"}]}]";
    static const char *const intents[] = {"{\"intent\": \"AMAZON.StopIntent\", \"platform\": \"alexa\"}",
                                          "{\"intent\": \"AMAZON.CancelIntent\"}"};
    for (int i = 0; i < 2; i++) {
        answer a = render(replies, "en", intents[i], NULL);
        CHECK_STR(a.ssml, "<speak>No worries, I&apos;ve cleared your order.</speak>");
        CHECK(a.end);
        CHECK(a.reprompt == NULL);
        json_decref(a.root);
    }
    /* any other intent: everything is said */
    answer a = render(replies, "en", "{\"intent\": \"AMAZON.HelpIntent\"}", NULL);
    CHECK(has(a.ssml, "What can I get you? Which drink? You can say: Latte.</speak>"));
    CHECK(!a.end);
    json_decref(a.root);
}

TEST(answer_degrades_links_and_images) {
    /* a payment link cannot be opened by voice: its title is said, the
     * link goes to the Alexa app's card; an image is not said at all */
    answer a = render("[{\"text\": \"Your total is €7.20.\", \"image\": \"https://img.example/latte.jpg\","
                      " \"link\": {\"title\": \"Pay €7.20\", \"url\": \"https://pay.example/c/123?a=1&b=2\"}}]",
                      "en", NULL, NULL);
    CHECK_STR(a.ssml, "<speak>Your total is €7.20. Pay €7.20<break strength=\"medium\"/>"
                      "The link is in your Alexa app.</speak>");
    CHECK(a.ssml && !strstr(a.ssml, "https:"));
    CHECK_STR(card_field(&a, "content"), "Your total is €7.20.\nPay €7.20: https://pay.example/c/123?a=1&b=2");
    json_decref(a.root);

    /* with choices the session stays open, and the card still carries the link */
    a = render("[{\"text\": \"Ready to pay?\", \"link\": {\"title\": \"支払う\", \"url\": \"https://pay.example/x\"},"
               " \"choices\": [{\"title\": \"キャンセル\", \"payload\": \"cancel\"}]}]",
               "ja", NULL, NULL);
    CHECK(!a.end);
    CHECK(has(a.ssml, "支払う<break strength=\"medium\"/>リンクはAlexaアプリに送りました。 次のように言えます：キャンセル。"));
    CHECK(has(card_field(&a, "content"), "支払う: https://pay.example/x"));
    json_decref(a.root);
}

/* 1 when s is valid UTF-8 (jansson checks). */
static int valid_utf8(const char *s) {
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

TEST(answer_stays_within_limits) {
    char *long_text = malloc(601);
    for (int i = 0; i < 600; i += 3) memcpy(long_text + i, i % 2 ? "é&" : "&é", 3);
    long_text[600] = '\0';
    char *replies = pl_strdup("[");
    for (int i = 0; i < 40; i++) {
        char *more = pl_strdupf("%s{\"text\": \"%s\"},", replies, long_text);
        free(replies);
        replies = more;
    }
    char *all = pl_strdupf("%s{\"text\": \"Which one?\", \"choices\": [{\"title\": \"A & B\", \"payload\": \"a\"},"
                           " {\"title\": \"C\", \"payload\": \"c\"}]}]",
                           replies);
    answer a = render(all, "en", NULL, NULL);
    CHECK(a.ssml && strlen(a.ssml) <= 8000);
    CHECK(a.ssml && valid_utf8(a.ssml));
    CHECK(has(a.ssml, " You can say: A &amp; B or C.</speak>"));
    CHECK(a.ssml && strncmp(a.ssml, "<speak>", 7) == 0);
    CHECK(a.ssml && !strstr(a.ssml, "&am ") && !strstr(a.ssml, "&a<"));
    CHECK(!a.end);
    json_decref(a.root);

    /* the card's title and content stay within 8000 characters too */
    json_t *settings = json_pack("{s:s, s:s}", "skill_id", SKILL, "card", "always");
    a = render(all, "en", NULL, settings);
    CHECK(strlen(card_field(&a, "title")) + strlen(card_field(&a, "content")) <= 8000);
    CHECK(valid_utf8(card_field(&a, "content")));
    json_decref(a.root);
    json_decref(settings);
    free(all);
    free(replies);
    free(long_text);

    flow_done = 1;
    a = render("[]", "en", NULL, NULL);
    flow_done = 0;
    CHECK_STR(a.ssml, "<speak></speak>");
    CHECK(a.end);
    json_decref(a.root);
}

int main(void) {
    base = event_base_new();
    http = pl_http_client_new(base, NULL);
    pki_ready = make_pki();
    /* after the certificates' Not Before (the time they were made) */
    now = (long long)time(NULL) + 2;
    if (!pki_ready) printf("# could not make the test certificates in %s\n", dir);
    char *prefix = pl_strdupf("file://%s/echo.api/", dir), *roots = path_in("ca.pem");
    setenv("PARLEY_ALEXA_CERT_URL_PREFIX", prefix, 1);
    setenv("PARLEY_ALEXA_CA_FILE", roots, 1);
    free(prefix);
    free(roots);
    RUN(skill_id_is_checked);
    RUN(timestamp_window);
    RUN(cert_url_rules);
    RUN(signature_is_verified);
    RUN(chain_is_checked);
    RUN(downloads_are_bounded);
    RUN(launch_request);
    RUN(intent_requests);
    RUN(session_ended_and_other_requests);
    RUN(bad_requests);
    RUN(requests_of_the_wrong_shape_are_400);
    RUN(answer_speaks_in_order_and_escapes);
    RUN(answer_reads_choices);
    RUN(answer_reads_cards);
    RUN(answer_reprompts_a_question);
    RUN(answer_ends_the_session);
    RUN(answer_to_stop);
    RUN(answer_degrades_links_and_images);
    RUN(answer_stays_within_limits);
    if (dir_made) sh("rm -rf %s", dir);
    pl_http_client_free(http);
    event_base_free(base);
    return check_done();
}
