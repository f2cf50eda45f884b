/* channel_wechat: the WeChat Official Accounts adapter (channel.h).
 *
 * Owns the WeChat half of parley: the server-verification handshake, the
 * signature on every push (and msg_signature in safe mode), decrypting
 * safe-mode messages (and the encrypting that is its mirror), parsing the
 * pushed XML with libxml2 into parley events, remembering the plaintext
 * pushes it took against replays of their query, rendering a turn's replies
 * into customer-service messages (text with numbered choices and payment
 * links, news articles for cards and pictures), and the access token those
 * calls need: fetched through the outbox's HTTP client before a call
 * (prepare), cached per bot and app id until it expires, dropped when
 * WeChat says it no longer holds (refused). Uses channel.c's helpers,
 * jansson, libxml2 and libcrypto (AES-256-CBC, base64); sending, retries
 * and dead letters are the outbox's.
 *
 * Every platform field used is the one WeChat documents:
 *   Server verification (GET signature, timestamp, nonce, echostr; signature
 *   = hex SHA-1 of token, timestamp and nonce sorted and joined; echostr
 *   answered as it came) and the signed pushes (the same three parameters on
 *   every POST), with the documented examples used as test vectors:
 *     https://developers.weixin.qq.com/doc/oplatform/Website_App/WeChat_Login/message_push.md
 *     https://developers.weixin.qq.com/doc/subscription/guide/dev/push/encryption.md
 *   Standard messages (XML: ToUserName, FromUserName, CreateTime, MsgType,
 *   Content, MsgId; PicUrl of an image, Recognition of a voice message;
 *   de-duplicate retries by MsgId; WeChat waits 5 seconds and retries three
 *   times, so parley answers "success" at once):
 *     https://developers.weixin.qq.com/doc/service/en/guide/product/message/Receiving_standard_messages.html
 *   Event pushes (MsgType event; Event subscribe with an optional EventKey
 *   "qrscene_..." and CLICK with the menu item's EventKey; de-duplicate by
 *   FromUserName + CreateTime):
 *     https://developers.weixin.qq.com/doc/service/Account_Management/Wechat_Accreditation_Event_Push.html
 *   Safe mode (encrypt_type=aes and msg_signature in the query; the body's
 *   Encrypt; AESKey = base64 decode of EncodingAESKey + "="; AES-256-CBC,
 *   IV = the key's first 16 bytes, PKCS#7 padding to 32-byte blocks;
 *   plaintext = 16 random bytes, the message's length in 4 bytes of network
 *   order, the message, the app id; msg_signature = SHA-1 of token,
 *   timestamp, nonce and Encrypt sorted), whose sample code
 *   (cryptoDemo.zip, linked from the guide) gives the decryption vector the
 *   C test uses:
 *     https://developers.weixin.qq.com/doc/oplatform/en/Third-party_Platforms/Message_Encryption/Technical_Plan.html
 *     https://developers.weixin.qq.com/doc/service/en/Message_Management/Message_encryption_and_decryption_instructions.html
 *   Customer-service messages (POST /cgi-bin/message/custom/send
 *   ?access_token=...; touser, msgtype text with text.content, which may
 *   hold <a href="...">links</a>, or news with one article {title,
 *   description, url, picurl}; within 48 hours of the shopper's last
 *   message, 5 messages per message the shopper sent and 3 per menu click or
 *   subscription):
 *     https://developers.weixin.qq.com/doc/service/api/customer/message/api_sendcustommessage
 *   The text limit the page leaves out, 2048 bytes (WeChat answers 45002
 *   "content size out of limit" past it), per WeChat's developer community:
 *     https://developers.weixin.qq.com/community/develop/doc/00084e2936c340b9015a753405b800
 *   The stable access token (POST /cgi-bin/stable_token with grant_type
 *   client_credential, appid, secret; normal mode returns the token in force,
 *   so several parley nodes share one instead of revoking each other's as
 *   GET /cgi-bin/token would; {"access_token", "expires_in"}):
 *     https://developers.weixin.qq.com/doc/service/en/api/base/api_getstableaccesstoken.html
 *   Failures come as HTTP 200 with {"errcode": n, "errmsg": "..."}; the
 *   codes read here (-1 busy, 40001/40014/42001 the token, 45009 the quota,
 *   45015 the 48-hour window, 45047 the message count):
 *     https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
 *
 * Choices are numbered lines the shopper answers with the number (the
 * engine resolves "2" against what it offered), not msgmenu messages:
 * WeChat sends those only for verified accounts, never for test accounts,
 * and their taps are not documented for Official Accounts. */
#define _GNU_SOURCE
#include "channel.h"
#include "channel_wechat.h"

#include <ctype.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/json_shape.h"
#include "event/http_client.h"

#define WECHAT_API_BASE "https://api.weixin.qq.com"

enum {
    BODY_MAX = 64 * 1024,       /* a push is a few hundred bytes; more is not WeChat */
    CLOCK_SKEW_S = 300,         /* a signed push older or newer than this is refused */
    NONCE_MAX = 64,             /* WeChat's nonces are ten digits or so */
    SEEN_PER_BOT = 4096,        /* plaintext pushes remembered per bot against replays */
    TEXT_MAX_BYTES = 2048,      /* text.content of a customer-service message */
    QUOTA_MESSAGE = 5,          /* messages a shopper's message allows */
    QUOTA_EVENT = 3,            /* ... a menu click or subscription allows */
    WINDOW_S = 48 * 3600,       /* customer-service messages go this long after the shopper's last */
    ARTICLE_TITLE_MAX = 64,     /* parley's caps for a news article: WeChat shows */
    ARTICLE_DESCRIPTION_MAX = 120, /* about two lines of each and documents none */
    AES_KEY_CHARS = 43,
    TOKEN_MARGIN_S = 300,       /* a token is renewed this long before WeChat says it ends */
    TOKEN_FAILED_HOLD_MS = 1000, /* a failed fetch is not repeated sooner than this */
    TOKEN_FETCH_TIMEOUT_MS = 10000, /* the stable_token request's timeout */
    TOKEN_FETCH_LOST_MS = 5000, /* a fetch this much older than that never came back */
    TOKEN_REFUSED_AGAIN_MS = 60000, /* a refused token that a fetch gave back again is
                                     * not fetched again for this long */
};

/* --- signatures -------------------------------------------------------------------- */

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *pl_wechat_signature(const char *const *parts, size_t n) {
    const char *sorted[8];
    if (n > sizeof sorted / sizeof *sorted) return NULL;
    for (size_t i = 0; i < n; i++) sorted[i] = parts[i] ? parts[i] : "";
    qsort(sorted, n, sizeof *sorted, compare_strings);
    return pl_channel_digest_hex("sha1", sorted, n, 0);
}

/* 1 when received (any case) is the signature of parts, compared in constant time. */
static int signature_matches(const char *received, const char *const *parts, size_t n) {
    char *expected = pl_wechat_signature(parts, n);
    int equal = pl_channel_hex_signature_equal(received, expected);
    free(expected);
    return equal;
}

/* --- safe mode: AES-256-CBC --------------------------------------------------------- */

/* Standard base64 (s, n bytes) decoded: new buffer and *len, or NULL when
 * s is not base64. */
static unsigned char *base64_decode(const char *s, size_t n, size_t *len) {
    if (n == 0 || n % 4 != 0 || n > (size_t)INT32_MAX) return NULL;
    size_t pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=') {
            if (i < n - 2) return NULL;
            pad++;
        } else if (pad || !(isalnum(c) || c == '+' || c == '/')) {
            return NULL;
        }
    }
    unsigned char *out = malloc(n / 4 * 3 + 1);
    if (!out) abort();
    int got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (got < 0 || (size_t)got < pad) {
        free(out);
        return NULL;
    }
    *len = (size_t)got - pad;
    return out;
}

static char *base64_encode(const unsigned char *data, size_t n) {
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out) abort();
    EVP_EncodeBlock((unsigned char *)out, data, (int)n);
    return out;
}

/* The 32-byte AES key of an EncodingAESKey (43 letters and digits). */
static int aes_key_of(const char *encoding_aes_key, unsigned char key[32], char **err) {
    size_t n = encoding_aes_key ? strlen(encoding_aes_key) : 0;
    int ok = n == AES_KEY_CHARS;
    for (size_t i = 0; ok && i < n; i++) ok = isalnum((unsigned char)encoding_aes_key[i]);
    char padded[AES_KEY_CHARS + 2];
    size_t len = 0;
    unsigned char *raw = NULL;
    if (ok) {
        snprintf(padded, sizeof padded, "%s=", encoding_aes_key);
        raw = base64_decode(padded, AES_KEY_CHARS + 1, &len);
    }
    if (!raw || len != 32) {
        free(raw);
        return pl_fail(err, "the EncodingAESKey is not 43 letters and digits");
    }
    memcpy(key, raw, 32);
    OPENSSL_cleanse(raw, len);
    free(raw);
    return PL_OK;
}

/* AES-256-CBC of in (n bytes, a multiple of the block) with IV = the key's
 * first 16 bytes and no padding of its own (WeChat pads to 32). */
static int aes_cbc(int encrypt, const unsigned char key[32], const unsigned char *in, size_t n,
                   unsigned char *out) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, tail = 0;
    int ok = ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, key, encrypt) == 1 &&
             EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
             EVP_CipherUpdate(ctx, out, &len, in, (int)n) == 1 &&
             EVP_CipherFinal_ex(ctx, out + len, &tail) == 1 && (size_t)(len + tail) == n;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? PL_OK : PL_ERR;
}

char *pl_wechat_encrypt(const char *encoding_aes_key, const char *app_id, const char *xml, size_t len,
                        const unsigned char *random16, char **err) {
    unsigned char key[32];
    if (aes_key_of(encoding_aes_key, key, err) != PL_OK) return NULL;
    if (len > UINT32_MAX / 2) {
        pl_fail(err, "the message is too long to encrypt");
        return NULL;
    }
    size_t app_len = strlen(app_id);
    size_t plain_len = 16 + 4 + len + app_len;
    size_t pad = 32 - plain_len % 32;
    size_t total = plain_len + pad;
    unsigned char *plain = malloc(total), *cipher = malloc(total);
    if (!plain || !cipher) abort();
    if (random16) memcpy(plain, random16, 16);
    else if (RAND_bytes(plain, 16) != 1) abort();
    plain[16] = (unsigned char)(len >> 24);
    plain[17] = (unsigned char)(len >> 16);
    plain[18] = (unsigned char)(len >> 8);
    plain[19] = (unsigned char)len;
    memcpy(plain + 20, xml, len);
    memcpy(plain + 20 + len, app_id, app_len);
    memset(plain + plain_len, (int)pad, pad);
    char *out = NULL;
    if (aes_cbc(1, key, plain, total, cipher) == PL_OK) out = base64_encode(cipher, total);
    else pl_fail(err, "AES-256-CBC failed");
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(plain, total);
    free(plain);
    free(cipher);
    return out;
}

int pl_wechat_decrypt(const char *encoding_aes_key, const char *encrypted, char **xml, size_t *len,
                      char **app_id, char **err) {
    unsigned char key[32];
    if (aes_key_of(encoding_aes_key, key, err) != PL_OK) return PL_ERR;
    size_t n = 0;
    unsigned char *cipher = base64_decode(encrypted, strlen(encrypted), &n);
    unsigned char *plain = cipher && n > 0 && n % 16 == 0 ? malloc(n) : NULL;
    int rc = PL_ERR;
    if (!plain) {
        pl_fail(err, "Encrypt is not base64 of whole AES blocks");
    } else if (aes_cbc(0, key, cipher, n, plain) != PL_OK) {
        pl_fail(err, "AES-256-CBC failed");
    } else {
        size_t pad = plain[n - 1], i = 0;
        while (pad >= 1 && pad <= 32 && pad <= n && i < pad && plain[n - 1 - i] == pad) i++;
        size_t plain_len = i == pad && pad >= 1 ? n - pad : 0;
        size_t xml_len = plain_len >= 20 ? ((size_t)plain[16] << 24 | (size_t)plain[17] << 16 |
                                            (size_t)plain[18] << 8 | plain[19])
                                         : 0;
        if (pad < 1 || pad > 32 || i != pad) {
            pl_fail(err, "the decrypted message's padding is not PKCS#7 (is the EncodingAESKey this bot's?)");
        } else if (plain_len < 20 || xml_len > plain_len - 20) {
            pl_fail(err, "the decrypted message is not random bytes, a length, the message and the app id");
        } else if (memchr(plain + 20 + xml_len, '\0', plain_len - 20 - xml_len)) {
            pl_fail(err, "the decrypted message's app id holds a NUL byte");
        } else {
            *xml = pl_strndup((const char *)plain + 20, xml_len);
            *len = xml_len;
            *app_id = pl_strndup((const char *)plain + 20 + xml_len, plain_len - 20 - xml_len);
            rc = PL_OK;
        }
    }
    OPENSSL_cleanse(key, sizeof key);
    if (plain) OPENSSL_cleanse(plain, n);
    free(plain);
    free(cipher);
    return rc;
}

/* --- the pushed XML ------------------------------------------------------------------- */

/* The elements of a push that parley reads: children of <xml>. */
enum { F_TO, F_FROM, F_TIME, F_TYPE, F_CONTENT, F_MSGID, F_EVENT, F_EVENTKEY, F_RECOGNITION, F_PICURL,
       F_ENCRYPT, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "EventKey",
    "Recognition", "PicUrl", "Encrypt",
};

typedef struct {
    char *f[F_COUNT];
} push;

static void push_clear(push *p) {
    for (int i = 0; i < F_COUNT; i++) free(p->f[i]);
    memset(p, 0, sizeof *p);
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void) { xmlInitParser(); }

/* SAX: a DOCTYPE (where entities, and so billion laughs and XXE, are
 * declared) stops the parse; WeChat never sends one. */
static void refuse_subset(void *ctx, const xmlChar *name, const xmlChar *external_id,
                          const xmlChar *system_id) {
    (void)name;
    (void)external_id;
    (void)system_id;
    xmlParserCtxtPtr parser = ctx;
    *(int *)parser->_private = 1;
    xmlStopParser(parser);
}

/* Parses a push with libxml2: no network, no DTD (refused), no entity
 * substitution, no output. The document (caller frees) or NULL and *err. */
static xmlDocPtr parse_xml(const char *body, size_t len, char **err) {
    pthread_once(&xml_once, xml_init);
    if (len > BODY_MAX) {
        pl_fail(err, "the body is larger than %d bytes", BODY_MAX);
        return NULL;
    }
    xmlParserCtxtPtr parser = xmlNewParserCtxt();
    if (!parser) abort();
    int doctype = 0;
    parser->_private = &doctype;
    parser->sax->internalSubset = refuse_subset;
    parser->sax->externalSubset = refuse_subset;
    xmlDocPtr doc = xmlCtxtReadMemory(parser, body, (int)len, NULL, NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOERROR |
                                          XML_PARSE_NOWARNING);
    if (doctype) {
        xmlFreeDoc(doc);
        doc = NULL;
        pl_fail(err, "the body declares a DOCTYPE, which WeChat never sends");
    } else if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(parser);
        const char *message = e && e->message ? e->message : "not well-formed";
        int n = (int)strcspn(message, "\n");
        pl_fail(err, "the body is not XML: %.*s (line %d)", n > 120 ? 120 : n, message, e ? e->line : 0);
    }
    xmlFreeParserCtxt(parser);
    return doc;
}

/* The text of an element that may hold only text (CDATA is text here) and
 * comments; NULL when it holds elements. New string. */
static char *element_text(xmlNodePtr el) {
    for (xmlNodePtr c = el->children; c; c = c->next)
        if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE && c->type != XML_COMMENT_NODE)
            return NULL;
    xmlChar *content = xmlNodeGetContent(el);
    char *text = pl_strdup(content ? (const char *)content : "");
    xmlFree(content);
    return text;
}

static int all_digits(const char *s) {
    size_t n = strspn(s, "0123456789");
    return n > 0 && n <= 20 && s[n] == '\0';
}

/* Reads <xml>'s elements into p; other elements are left unread. PL_ERR
 * with *err for a document of another shape. */
static int read_push(const char *body, size_t len, push *p, char **err) {
    xmlDocPtr doc = parse_xml(body, len, err);
    if (!doc) return PL_ERR;
    int rc = PL_OK;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root || strcmp((const char *)root->name, "xml") != 0) {
        rc = pl_fail(err, "the body's root element is <%.40s>, not <xml>", root ? (const char *)root->name : "");
    }
    for (xmlNodePtr el = root ? root->children : NULL; rc == PL_OK && el; el = el->next) {
        if (el->type != XML_ELEMENT_NODE) continue;
        for (int i = 0; i < F_COUNT; i++) {
            if (strcmp((const char *)el->name, field_names[i]) != 0) continue;
            if (p->f[i]) rc = pl_fail(err, "<%s> appears twice", field_names[i]);
            else if (!(p->f[i] = element_text(el))) rc = pl_fail(err, "<%s> holds elements, not text", field_names[i]);
            break;
        }
    }
    xmlFreeDoc(doc);
    if (rc == PL_OK && p->f[F_TIME] && !all_digits(p->f[F_TIME]))
        rc = pl_fail(err, "<CreateTime> is not a number");
    if (rc == PL_OK && p->f[F_MSGID] && !all_digits(p->f[F_MSGID]))
        rc = pl_fail(err, "<MsgId> is not a number");
    return rc;
}

/* What a message (not the outer envelope of a safe-mode push) needs. */
static int check_message(const push *p, char **err) {
    static const int required[] = {F_TO, F_FROM, F_TIME, F_TYPE};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!p->f[required[i]] || !*p->f[required[i]])
            return pl_fail(err, "the message has no <%s>", field_names[required[i]]);
    if (strcmp(p->f[F_TYPE], "event") == 0 && (!p->f[F_EVENT] || !*p->f[F_EVENT]))
        return pl_fail(err, "the event has no <Event>");
    if (strcmp(p->f[F_TYPE], "event") != 0 && !p->f[F_MSGID])
        return pl_fail(err, "the %.20s message has no <MsgId>", p->f[F_TYPE]);
    return PL_OK;
}

/* --- inbound ------------------------------------------------------------------------- */

typedef struct {
    const pl_channel_config *cfg;
    const pl_webhook *req;
    pl_channel_form query;
    const char *token;
    const char *timestamp, *nonce; /* of the query (borrowed), once verify_signature passed */
    long long at;                  /* the timestamp, once check_timestamp passed */
} inbound_ctx;

static const char *param(inbound_ctx *in, const char *name) {
    return pl_channel_form_get(&in->query, name);
}

/* signature, timestamp and nonce: 401 when absent, 403 when they do not
 * match the token. */
static int verify_signature(inbound_ctx *in, pl_inbound *out, char **err) {
    const char *sig = param(in, "signature");
    in->timestamp = param(in, "timestamp");
    in->nonce = param(in, "nonce");
    if (!sig || !in->timestamp || !in->nonce) {
        out->status = 401;
        return pl_fail(err, "no signature, timestamp and nonce in the query");
    }
    const char *parts[] = {in->token, in->timestamp, in->nonce};
    if (signature_matches(sig, parts, 3)) return PL_OK;
    out->status = 403;
    return pl_fail(err, "signature does not match the token, timestamp and nonce");
}

/* GET: WeChat's server verification; echostr is answered as it came. */
static int handshake(inbound_ctx *in, pl_inbound *out, char **err) {
    if (verify_signature(in, out, err) != PL_OK) return PL_ERR;
    const char *echo = param(in, "echostr");
    if (!echo) {
        out->status = 400;
        return pl_fail(err, "a verification request without echostr");
    }
    out->status = 200;
    out->answer = pl_strdup(echo);
    out->events = json_array();
    return PL_OK;
}

/* The plaintext signature covers no body, so a push must be fresh. */
static int check_timestamp(inbound_ctx *in, pl_inbound *out, char **err) {
    if (!all_digits(in->timestamp)) {
        out->status = 400;
        return pl_fail(err, "timestamp is not a number");
    }
    in->at = strtoll(in->timestamp, NULL, 10);
    long long skew = in->at - in->req->now;
    if (skew <= CLOCK_SKEW_S && skew >= -CLOCK_SKEW_S) return PL_OK;
    out->status = 403;
    return pl_fail(err, "timestamp %lld is more than %d s from this server's clock (replayed or delayed)",
                   in->at, CLOCK_SKEW_S);
}

/* Safe mode: msg_signature over the outer push's Encrypt, then the message
 * inside, which must be for this bot's app id; *p becomes that message. */
static int decrypt_push(inbound_ctx *in, const char *aes_key, push *p, pl_inbound *out, char **err) {
    const char *msg_sig = param(in, "msg_signature");
    if (!msg_sig) {
        out->status = 401;
        return pl_fail(err, "a safe-mode push without msg_signature");
    }
    const char *encrypted = p->f[F_ENCRYPT];
    if (!encrypted || !*encrypted) {
        out->status = 400;
        return pl_fail(err, "a safe-mode push without <Encrypt>");
    }
    const char *parts[] = {in->token, in->timestamp, in->nonce, encrypted};
    if (!signature_matches(msg_sig, parts, 4)) {
        out->status = 403;
        return pl_fail(err, "msg_signature does not match the token, timestamp, nonce and Encrypt");
    }
    const char *app_id = pl_channel_require(in->cfg, "app_id", &out->status, err);
    if (!app_id) return PL_ERR;
    char *xml = NULL, *for_app = NULL, *why = NULL;
    size_t len = 0;
    int rc = PL_ERR;
    out->status = 400;
    if (pl_wechat_decrypt(aes_key, encrypted, &xml, &len, &for_app, &why) != PL_OK) {
        pl_fail(err, "Encrypt cannot be read with this bot's EncodingAESKey: %s", why);
    } else if (strcmp(for_app, app_id) != 0) {
        out->status = 403;
        pl_fail(err, "the message is encrypted for app id '%.40s', not this bot's app_id", for_app);
    } else {
        push_clear(p);
        if (read_push(xml, len, p, &why) == PL_OK) rc = PL_OK;
        else pl_fail(err, "the decrypted message: %s", why);
    }
    free(why);
    free(xml);
    free(for_app);
    return rc;
}

/* A message event for p (new): its platform id and the facts msg.channel
 * gets. */
static json_t *message_event(const push *p, const char *id) {
    json_t *info = json_pack("{s:s, s:s, s:s, s:s}", "platform", "wechat", "openid", p->f[F_FROM],
                             "account", p->f[F_TO], "type", p->f[F_TYPE]);
    if (p->f[F_EVENT]) json_object_set_new(info, "event", json_string(p->f[F_EVENT]));
    if (p->f[F_EVENTKEY] && *p->f[F_EVENTKEY]) json_object_set_new(info, "event_key", json_string(p->f[F_EVENTKEY]));
    if (p->f[F_PICURL] && *p->f[F_PICURL]) json_object_set_new(info, "pic_url", json_string(p->f[F_PICURL]));
    return json_pack("{s:s, s:s, s:s, s:o}", "kind", "message", "id", id, "user", p->f[F_FROM], "info", info);
}

/* The events of one message: a shopper's message of any type is a turn
 * (text: Content; voice: WeChat's Recognition when it has one); of events,
 * subscribe (a first hello) and CLICK (a menu item: its EventKey is the
 * payload) are turns, the others (unsubscribe, SCAN, LOCATION, VIEW ...)
 * are acknowledged and left alone. */
static json_t *events_of(const push *p) {
    json_t *events = json_array();
    const char *type = p->f[F_TYPE];
    if (strcmp(type, "event") != 0) {
        json_t *ev = message_event(p, p->f[F_MSGID]);
        const char *text = strcmp(type, "text") == 0 ? p->f[F_CONTENT]
                           : strcmp(type, "voice") == 0 ? p->f[F_RECOGNITION] : NULL;
        if (text && *text) json_object_set_new(ev, "text", json_string(text));
        json_array_append_new(events, ev);
        return events;
    }
    const char *event = p->f[F_EVENT];
    if (strcmp(event, "subscribe") != 0 && strcmp(event, "CLICK") != 0) return events;
    char *id = pl_strdupf("%s:%s:%s", p->f[F_FROM], p->f[F_TIME], event);
    json_t *ev = message_event(p, id);
    free(id);
    if (strcmp(event, "CLICK") == 0 && p->f[F_EVENTKEY] && *p->f[F_EVENTKEY])
        json_object_set_new(ev, "payload", json_string(p->f[F_EVENTKEY]));
    json_array_append_new(events, ev);
    return events;
}

/* --- plaintext pushes seen: replays ------------------------------------------------- */

/* A plaintext push's signature covers the token, timestamp and nonce, not
 * the body: whoever saw one signed query (a proxy's access log) could post
 * any body with it while the timestamp is fresh. So each bot remembers the
 * timestamp and nonce of the plaintext pushes it took, with a digest of
 * the body, until the timestamp is too old to pass check_timestamp: the
 * same query again with the same body is WeChat's redelivery (the MsgId
 * de-duplicates it), with another body a replay. The memory is per bot and
 * bounded per bot (past SEEN_PER_BOT the push with the oldest timestamp
 * makes room), so one brand's pushes never push out another's; and it is
 * this process's: with several nodes, a replay that reaches another node
 * than the original is not caught there (safe mode's msg_signature covers
 * the body and needs none of this). */
typedef struct {
    long long at;            /* the push's timestamp */
    char nonce[NONCE_MAX + 1];
    char digest[65];         /* hex SHA-256 of the body */
} seen_push;

typedef struct seen_bot {
    struct seen_bot *next;
    char *bot;
    seen_push *items;
    size_t n, cap;
} seen_bot;

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static seen_bot *seen;
static int seen_freed_at_exit;

void pl_wechat_forget_pushes(void) {
    pthread_mutex_lock(&seen_lock);
    while (seen) {
        seen_bot *b = seen;
        seen = b->next;
        free(b->items);
        free(b->bot);
        free(b);
    }
    pthread_mutex_unlock(&seen_lock);
}

/* What this use of (at, nonce) is for bot: 0 the first (now remembered),
 * 1 again with the same body, -1 again with another body. */
static int seen_use(const char *bot, long long at, const char *nonce, const char *digest, long long now) {
    pthread_mutex_lock(&seen_lock);
    seen_bot *b = seen;
    while (b && strcmp(b->bot, bot) != 0) b = b->next;
    if (!b) {
        if (!seen_freed_at_exit) {
            seen_freed_at_exit = 1;
            atexit(pl_wechat_forget_pushes);
        }
        b = calloc(1, sizeof *b);
        if (!b) abort();
        b->bot = pl_strdup(bot);
        b->next = seen;
        seen = b;
    }
    int use = 0;
    size_t slot = SIZE_MAX;
    for (size_t i = 0; i < b->n && use == 0; i++) {
        seen_push *p = &b->items[i];
        if (p->at == at && strcmp(p->nonce, nonce) == 0) use = strcmp(p->digest, digest) == 0 ? 1 : -1;
        else if (slot == SIZE_MAX && p->at < now - CLOCK_SKEW_S) slot = i; /* can no longer pass */
    }
    if (use == 0) {
        if (slot == SIZE_MAX && b->n < SEEN_PER_BOT) {
            if (b->n == b->cap) {
                b->cap = b->cap ? b->cap * 2 : 64;
                b->items = realloc(b->items, b->cap * sizeof *b->items);
                if (!b->items) abort();
            }
            slot = b->n++;
        } else if (slot == SIZE_MAX) {
            slot = 0;
            for (size_t i = 1; i < b->n; i++)
                if (b->items[i].at < b->items[slot].at) slot = i;
        }
        seen_push *p = &b->items[slot];
        p->at = at;
        snprintf(p->nonce, sizeof p->nonce, "%s", nonce);
        snprintf(p->digest, sizeof p->digest, "%s", digest);
    }
    pthread_mutex_unlock(&seen_lock);
    return use;
}

/* A plaintext push whose query came before with another body: 403. */
static int check_replay(inbound_ctx *in, pl_inbound *out, char **err) {
    if (strlen(in->nonce) > NONCE_MAX) {
        out->status = 400;
        return pl_fail(err, "the nonce is longer than %d characters", NONCE_MAX);
    }
    if (strlen(in->req->body) != in->req->body_len) {
        out->status = 400;
        return pl_fail(err, "the body holds a NUL byte");
    }
    const char *parts[] = {in->req->body};
    char *digest = pl_channel_digest_hex("sha256", parts, 1, 0);
    int use = seen_use(in->cfg->bot, in->at, in->nonce, digest, in->req->now);
    free(digest);
    if (use >= 0) return PL_OK;
    out->status = 403;
    return pl_fail(err, "the signature's timestamp and nonce came before with another body: a replay");
}

/* POST: a signed push; in safe mode (the bot has an EncodingAESKey, or the
 * push says encrypt_type=aes) encrypted and signed with msg_signature too.
 * A bot with a key refuses plaintext pushes: their signature covers no
 * body. Answered "success" once recorded. */
static int receive(inbound_ctx *in, pl_inbound *out, char **err) {
    if (verify_signature(in, out, err) != PL_OK || check_timestamp(in, out, err) != PL_OK) return PL_ERR;
    const char *encrypt_type = param(in, "encrypt_type");
    const char *aes_key = pl_channel_setting(in->cfg, "encoding_aes_key");
    int safe = encrypt_type && strcmp(encrypt_type, "aes") == 0;
    if (encrypt_type && !safe && strcmp(encrypt_type, "raw") != 0) {
        out->status = 400;
        return pl_fail(err, "unknown encrypt_type '%.20s'", encrypt_type);
    }
    if (aes_key && !safe) {
        out->status = 403;
        return pl_fail(err, "this bot's wechat channel is in safe mode (encoding_aes_key is set): "
                            "a push that is not encrypted is refused");
    }
    if (safe && !(aes_key = pl_channel_require(in->cfg, "encoding_aes_key", &out->status, err))) return PL_ERR;
    push p = {0};
    char *why = NULL;
    int rc = PL_ERR;
    out->status = 400;
    if (read_push(in->req->body, in->req->body_len, &p, &why) != PL_OK) {
        pl_fail(err, "%s", why);
    } else if (safe && decrypt_push(in, aes_key, &p, out, err) != PL_OK) {
        /* out->status and *err say why */
    } else if (check_message(&p, &why) != PL_OK) {
        out->status = 400;
        pl_fail(err, "%s", why);
    } else if (!safe && check_replay(in, out, err) != PL_OK) {
        /* out->status and *err say why */
    } else {
        out->status = 200;
        out->answer = pl_strdup("success");
        out->events = events_of(&p);
        rc = PL_OK;
    }
    free(why);
    push_clear(&p);
    return rc;
}

static int wechat_inbound(const pl_channel_config *cfg, const pl_webhook *req, pl_inbound *out,
                          char **err) {
    inbound_ctx in = {.cfg = cfg, .req = req};
    int rc = PL_ERR;
    if (pl_channel_form_parse(req->query, &in.query) != PL_OK) {
        out->status = 400;
        pl_fail(err, "the query string cannot be parsed");
    } else if ((in.token = pl_channel_require(cfg, "token", &out->status, err))) {
        rc = strcmp(req->method, "GET") == 0 ? handshake(&in, out, err) : receive(&in, out, err);
    }
    pl_channel_form_free(&in.query);
    return rc;
}

/* --- outbound -------------------------------------------------------------------------- */

typedef struct {
    const pl_outbound *to;
    int news;          /* cards and pictures as news articles (else text lines) */
    json_t *calls;
    char *pending;     /* text not yet in a call: what follows joins it */
    int next_choice;   /* choices are numbered across the turn */
} render_ctx;

static const char *lang(const render_ctx *r) { return r->to->locale ? r->to->locale : ""; }

static void add_call(render_ctx *r, const char *msgtype, json_t *content) {
    json_t *body = json_pack("{s:s, s:s, s:o}", "touser", r->to->user, "msgtype", msgtype, msgtype, content);
    json_array_append_new(r->calls, pl_channel_call("POST", "/cgi-bin/message/custom/send", body));
}

/* Where to end a text message of s (longer than TEXT_MAX_BYTES): at the
 * last blank line, line break or space in the second half of the room,
 * else on the last character boundary that fits; *skip is the
 * separator's length. */
static size_t text_cut(const char *s, size_t *skip) {
    size_t fit = pl_channel_prefix_utf8(s, TEXT_MAX_BYTES);
    static const char *const separators[] = {"\n\n", "\n", " "};
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(separators[k]);
        for (size_t i = fit - n + 1; i-- > fit / 2;) {
            if (memcmp(s + i, separators[k], n) == 0) {
                *skip = n;
                return i;
            }
        }
    }
    *skip = 0;
    return fit;
}

/* The pending text as text messages of at most 2048 bytes. */
static void flush_text(render_ctx *r) {
    const char *p = r->pending;
    while (p && pl_channel_has_words(p)) {
        size_t n = strlen(p), skip = 0;
        if (n > TEXT_MAX_BYTES) n = text_cut(p, &skip);
        add_call(r, "text", json_pack("{s:s%}", "content", p, n));
        p += n + skip;
    }
    free(r->pending);
    r->pending = NULL;
}

static void add_text(render_ctx *r, const char *text, const char *sep) {
    if (!pl_channel_has_words(text)) return;
    char *joined = r->pending ? pl_strdupf("%s%s%s", r->pending, sep, text) : pl_strdup(text);
    free(r->pending);
    r->pending = joined;
}

static void add_article(render_ctx *r, const char *title, const char *description, const char *url,
                        const char *picurl) {
    flush_text(r);
    char *t = pl_channel_shortened(pl_channel_has_words(title) ? title : "…", ARTICLE_TITLE_MAX);
    json_t *article = json_pack("{s:s, s:s, s:s}", "title", t, "url", url, "picurl", picurl);
    if (pl_channel_has_words(description)) {
        char *d = pl_channel_shortened(description, ARTICLE_DESCRIPTION_MAX);
        json_object_set_new(article, "description", json_string(d));
        free(d);
    }
    add_call(r, "news", json_pack("{s:[o]}", "articles", article));
    free(t);
}

/* A card as a news article: its picture, its price and description, and
 * its own url (else the picture) to open. */
static void add_card(render_ctx *r, const json_t *card) {
    const json_t *price = json_object_get(card, "price");
    char *amount = json_is_object(price) && pl_json_str(price, "currency") ? pl_channel_price(price, r->to->locale) : NULL;
    const char *subtitle = pl_json_str(card, "subtitle"), *image = pl_json_str(card, "image");
    char *description = amount && subtitle ? pl_strdupf("%s · %s", amount, subtitle)
                                           : pl_strdup(amount ? amount : subtitle);
    const char *url = pl_channel_is_web_url(pl_json_str(card, "url")) ? pl_json_str(card, "url") : image;
    add_article(r, pl_json_str(card, "title"), description, url, image);
    free(description);
    free(amount);
}

/* A link as WeChat's text messages allow: <a href="url">title</a>; a URL
 * that cannot sit in the attribute is shown as "title: url". New string. */
static char *link_line(const char *title, const char *url) {
    int fits = pl_channel_is_web_url(url) && !strpbrk(url, "\"<> \t\r\n");
    const char *label = pl_channel_has_words(title) ? title : url;
    if (!fits) return pl_strdupf("%s%s%s", pl_channel_has_words(title) ? title : "", pl_channel_has_words(title) ? ": " : "", url);
    char *clean = pl_strdup(label);
    for (char *c = clean; *c; c++)
        if (*c == '<' || *c == '>') *c = ' ';
    char *line = pl_strdupf("<a href=\"%s\">%s</a>", url, clean);
    free(clean);
    return line;
}

/* Appends line to *text (a new string, replaced), after a line break when
 * *text is not empty. */
static void add_line(char **text, const char *line) {
    char *joined = **text ? pl_strdupf("%s\n%s", *text, line) : pl_strdup(line);
    free(*text);
    *text = joined;
}

/* A reply's picture: "image" as a URL or {"url", "title"?}. */
static void add_image(render_ctx *r, const json_t *image, char **tail) {
    const char *url = json_is_string(image) ? json_string_value(image) : pl_json_str(image, "url");
    if (!url || !*url) return;
    const char *title = pl_json_str(image, "title");
    const char *l = lang(r);
    if (!pl_channel_has_words(title)) title = strncmp(l, "zh", 2) == 0 ? "图片" : strncmp(l, "ja", 2) == 0 ? "写真" : "Picture";
    if (r->news && pl_channel_is_web_url(url)) {
        add_article(r, title, NULL, url, url);
        return;
    }
    char *line = link_line(title, url);
    add_line(tail, line);
    free(line);
}

/* One reply: its text and the cards that stay text lines, the cards that
 * are news articles, then its choices as numbered lines (answered with the
 * number), its link and its picture. Text joins the turn's text before and
 * after it, so a turn is as few messages as it can be. */
static void render_reply(render_ctx *r, const json_t *reply) {
    const json_t *cards = json_object_get(reply, "cards");
    json_t *lines = json_array(), *articles = json_array();
    size_t i;
    json_t *card;
    json_array_foreach(cards, i, card) {
        if (!json_is_object(card)) continue;
        json_array_append(r->news && pl_channel_is_web_url(pl_json_str(card, "image")) ? articles : lines, card);
    }
    json_t *head = json_pack("{s:O?, s:O}", "text", json_object_get(reply, "text"), "cards", lines);
    char *text = pl_channel_plain_text(head, r->next_choice, r->to->locale);
    add_text(r, text, "\n\n");
    free(text);
    json_array_foreach(articles, i, card) add_card(r, card);
    const json_t *choices = json_object_get(reply, "choices");
    json_t *view = json_object();
    if (json_is_array(choices)) json_object_set(view, "choices", (json_t *)choices);
    char *tail = pl_channel_plain_text(view, r->next_choice, r->to->locale);
    r->next_choice += (int)json_array_size(choices);
    const json_t *link = json_object_get(reply, "link");
    if (pl_json_str(link, "url")) {
        char *line = link_line(pl_json_str(link, "title"), pl_json_str(link, "url"));
        add_line(&tail, line);
        free(line);
    }
    add_image(r, json_object_get(reply, "image"), &tail);
    add_text(r, tail, json_array_size(articles) ? "\n\n" : "\n");
    free(tail);
    json_decref(view);
    json_decref(head);
    json_decref(lines);
    json_decref(articles);
}

static json_t *render_turn(const pl_outbound *to, const json_t *replies, int news) {
    render_ctx r = {.to = to, .news = news, .calls = json_array(), .next_choice = 1};
    size_t i;
    json_t *reply;
    json_array_foreach(replies, i, reply) {
        if (json_is_object(reply)) render_reply(&r, reply);
    }
    flush_text(&r);
    return r.calls;
}

/* Renders a turn into customer-service messages. WeChat allows 5 of them
 * per message the shopper sent (3 after a menu click or a subscription):
 * when news articles would pass that, the cards and pictures become text
 * lines of the turn's one text message instead. */
static int wechat_render(const pl_channel_config *cfg, const pl_outbound *to, const json_t *replies,
                         json_t **calls, char **err) {
    (void)cfg;
    if (!to->user || !*to->user) return pl_fail(err, "no WeChat recipient (openid) to send to");
    size_t quota = pl_json_str(to->info, "event") ? QUOTA_EVENT : QUOTA_MESSAGE;
    *calls = render_turn(to, replies, 1);
    if (json_array_size(*calls) > quota) {
        json_decref(*calls);
        *calls = render_turn(to, replies, 0);
    }
    return PL_OK;
}

/* --- the access token ---------------------------------------------------------------------- */

/* The token of one bot's app, shared by its queues; brands never share
 * one (the key is the bot and the app id). A fetch in flight is on one
 * HTTP client and holds the queues waiting for it; a queue that goes
 * (forget) leaves its fetch, and a fetch that no one waits for any more is
 * abandoned: its answer, should it still come, is dropped. All of it runs
 * on the loop. */
typedef struct waiter {
    struct waiter *next;
    void (*ready)(void *ud);
    void *ud;
} waiter;

struct token_entry;

typedef struct fetch {
    struct fetch *next;
    struct token_entry *entry;  /* NULL once abandoned */
    struct pl_http_client *http;
    int64_t started_ms;         /* monotonic */
    waiter *waiters;
} fetch;

typedef struct token_entry {
    struct token_entry *next;
    char *bot, *app_id;
    char *token;           /* NULL: none at hand */
    long generation;       /* counts the tokens fetched: which one a call went with */
    int64_t use_until_ms;  /* monotonic */
    int64_t fetched_ms;
    char *refused;         /* the token WeChat last refused, until the next fetch */
    int same_again;        /* that fetch gave the refused token back */
    fetch *fetches;        /* in flight, at most one per HTTP client */
    char *error;           /* the last fetch's failure (never the endpoint's body) */
    int64_t failed_ms;
} token_entry;

static token_entry *tokens;
static fetch *abandoned;  /* freed by their answer, or at exit (their client was freed first) */
static int tokens_freed_at_exit;

static int64_t mono_ms(void) { return pl_monotonic_us() / 1000; }

static void entry_drop_token(token_entry *e) {
    if (e->token) OPENSSL_cleanse(e->token, strlen(e->token));
    free(e->token);
    e->token = NULL;
}

static void free_waiters(waiter *w) {
    for (waiter *n; w; w = n) {
        n = w->next;
        free(w);
    }
}

/* f, taken out of its entry's list, no longer has waiters: it waits for
 * its answer (or the exit) among the abandoned. */
static void abandon(fetch *f) {
    free_waiters(f->waiters);
    f->waiters = NULL;
    f->entry = NULL;
    f->next = abandoned;
    abandoned = f;
}

void pl_wechat_forget_tokens(void) {
    while (tokens) {
        token_entry *e = tokens;
        tokens = e->next;
        while (e->fetches) {
            fetch *f = e->fetches;
            e->fetches = f->next;
            abandon(f);
        }
        entry_drop_token(e);
        free(e->refused);
        free(e->bot);
        free(e->app_id);
        free(e->error);
        free(e);
    }
}

/* At exit no loop runs: no answer can come for the abandoned fetches. */
static void free_tokens_at_exit(void) {
    pl_wechat_forget_tokens();
    while (abandoned) {
        fetch *f = abandoned;
        abandoned = f->next;
        free(f);
    }
}

static token_entry *entry_for(const char *bot, const char *app_id, int create) {
    for (token_entry *e = tokens; e; e = e->next)
        if (strcmp(e->bot, bot) == 0 && strcmp(e->app_id, app_id) == 0) return e;
    if (!create) return NULL;
    if (!tokens_freed_at_exit) {
        tokens_freed_at_exit = 1;
        atexit(free_tokens_at_exit);
    }
    token_entry *e = calloc(1, sizeof *e);
    if (!e) abort();
    e->bot = pl_strdup(bot);
    e->app_id = pl_strdup(app_id);
    e->next = tokens;
    tokens = e;
    return e;
}

/* The stable_token answer into e: a token held until TOKEN_MARGIN_S (or
 * half its life, when shorter) before it ends, or what went wrong — named,
 * never quoted: an answer without a usable expires_in may still hold the
 * token, which must not reach a log or the outbox's error column. */
static void take_answer(token_entry *e, const pl_http_response *res) {
    json_t *j = res->status == 200 ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    const char *token = pl_json_str(j, "access_token");
    json_t *expires = json_object_get(j, "expires_in");
    json_t *code = json_object_get(j, "errcode");
    free(e->error);
    e->error = NULL;
    if (token && *token && json_is_integer(expires) && json_integer_value(expires) > 0) {
        json_int_t life = json_integer_value(expires);
        entry_drop_token(e);
        e->token = pl_strdup(token);
        e->generation++;
        json_int_t margin = life > 2 * TOKEN_MARGIN_S ? TOKEN_MARGIN_S : life / 2;
        e->fetched_ms = mono_ms();
        e->use_until_ms = e->fetched_ms + (int64_t)(life - margin) * 1000;
        e->same_again = e->refused && strcmp(e->refused, token) == 0;
        free(e->refused);
        e->refused = NULL;
        json_decref(j);
        return;
    }
    e->failed_ms = mono_ms();
    if (!token && json_is_integer(code) && json_integer_value(code) != 0)
        e->error = pl_strdupf("errcode %lld: %.200s", (long long)json_integer_value(code),
                              pl_json_str(j, "errmsg") ? pl_json_str(j, "errmsg") : "");
    else if (token && *token)
        e->error = pl_strdup("the stable_token answer has an access_token but no positive whole expires_in");
    else if (j)
        e->error = pl_strdup("the stable_token answer has no access_token");
    else if (res->status == 200)
        e->error = pl_strdup("the stable_token answer is not JSON");
    else if (res->status)
        e->error = pl_strdupf("the stable_token endpoint answered HTTP %ld", res->status);
    else
        e->error = pl_strdup(res->error ? res->error : "no answer");
    json_decref(j);
}

/* A fetch's answer: taken into its entry (unless abandoned), then everyone
 * waiting is told. */
static void on_token(const pl_http_response *res, void *ud) {
    fetch *f = ud;
    token_entry *e = f->entry;
    fetch **link = e ? &e->fetches : &abandoned;
    while (*link != f) link = &(*link)->next;
    *link = f->next;
    waiter *list = f->waiters;
    free(f);
    if (!e) return;
    take_answer(e, res);
    for (waiter *w = list, *n; w; w = n) {
        n = w->next;
        w->ready(w->ud);
        free(w);
    }
}

/* Starts a fetch of e's token on http (new, in e's list), or NULL with *err. */
static fetch *fetch_token(const pl_channel_config *cfg, token_entry *e, struct pl_http_client *http,
                          const char *secret, char **err) {
    char *url = pl_strdupf("%s/cgi-bin/stable_token", pl_channel_api_base(cfg, WECHAT_API_BASE));
    json_t *body_json = json_pack("{s:s, s:s, s:s}", "grant_type", "client_credential", "appid", e->app_id,
                                  "secret", secret);
    char *body = json_dumps(body_json, JSON_COMPACT);
    json_t *headers = json_pack("{s:s}", "Content-Type", "application/json");
    pl_http_request req = {.method = "POST", .url = url, .headers = headers, .body = body,
                           .body_len = strlen(body), .max_response = 64 * 1024,
                           .timeout_ms = TOKEN_FETCH_TIMEOUT_MS};
    fetch *f = calloc(1, sizeof *f);
    if (!f) abort();
    *f = (fetch){.next = e->fetches, .entry = e, .http = http, .started_ms = mono_ms()};
    if (pl_http_fetch(http, &req, on_token, f, err) == PL_OK) {
        e->fetches = f;
    } else {
        free(f);
        f = NULL;
    }
    OPENSSL_cleanse(body, strlen(body));
    free(body);
    json_decref(body_json);
    json_decref(headers);
    free(url);
    return f;
}

/* pl_channel_adapter.prepare: the token at hand (PL_OK, *credential its
 * generation), or fetched now (PL_AGAIN; ready runs once the answer is
 * in, whatever it says). Queues of one HTTP client share its fetch; one
 * older than the request's timeout never came back (its client was freed
 * without the outbox forgetting its queues), so it is abandoned and its
 * waiters join a new one. A fetch that just failed is not repeated at
 * once: the call fails (PL_ERR) and the outbox retries it later. */
static int wechat_prepare(const pl_channel_config *cfg, struct pl_http_client *http, void (*ready)(void *ud),
                          void *ud, long *credential, char **err) {
    const char *app_id = pl_channel_require(cfg, "app_id", NULL, err);
    const char *secret = app_id ? pl_channel_require(cfg, "app_secret", NULL, err) : NULL;
    if (!secret) return PL_ERR;
    token_entry *e = entry_for(cfg->bot, app_id, 1);
    int64_t now = mono_ms();
    if (e->token && now < e->use_until_ms) {
        *credential = e->generation;
        return PL_OK;
    }
    fetch **link = &e->fetches;
    while (*link && (*link)->http != http) link = &(*link)->next;
    fetch *f = *link;
    int lost = f && now - f->started_ms > TOKEN_FETCH_TIMEOUT_MS + TOKEN_FETCH_LOST_MS;
    if (!f && e->error && now - e->failed_ms < TOKEN_FAILED_HOLD_MS)
        return pl_fail(err, "no WeChat access token: %s", e->error);
    if (!http) return pl_fail(err, "no HTTP client to fetch a WeChat access token with");
    if (!f || lost) {
        fetch *fresh = fetch_token(cfg, e, http, secret, err);
        if (!fresh) return PL_ERR;
        if (lost) {
            for (link = &fresh->next; *link != f; link = &(*link)->next) {}
            *link = f->next;
            fresh->waiters = f->waiters;
            f->waiters = NULL;
            abandon(f);
        }
        f = fresh;
    }
    waiter *w = calloc(1, sizeof *w);
    if (!w) abort();
    *w = (waiter){f->waiters, ready, ud};
    f->waiters = w;
    return PL_AGAIN;
}

/* pl_channel_adapter.forget: ud's queue is going; a fetch left without
 * waiters is abandoned. */
static void wechat_forget(void *ud) {
    for (token_entry *e = tokens; e; e = e->next) {
        for (fetch **link = &e->fetches; *link;) {
            fetch *f = *link;
            for (waiter **wl = &f->waiters; *wl;) {
                waiter *w = *wl;
                if (w->ud == ud) {
                    *wl = w->next;
                    free(w);
                } else {
                    wl = &w->next;
                }
            }
            if (f->waiters) {
                link = &f->next;
            } else {
                *link = f->next;
                abandon(f);
            }
        }
    }
}

/* The token goes in the access_token query parameter, never in the outbox. */
static int wechat_authorize(const pl_channel_config *cfg, json_t *headers, char **url, char **user_pwd,
                            char **err) {
    (void)headers;
    (void)user_pwd;
    const char *app_id = pl_channel_require(cfg, "app_id", NULL, err);
    if (!app_id) return PL_ERR;
    token_entry *e = entry_for(cfg->bot, app_id, 0);
    if (!e || !e->token) return pl_fail(err, "no WeChat access token at hand");
    char *encoded = pl_channel_percent_encode(e->token);
    char *with = pl_strdupf("%s%caccess_token=%s", *url, strchr(*url, '?') ? '&' : '?', encoded);
    free(encoded);
    free(*url);
    *url = with;
    return PL_OK;
}

/* pl_channel_adapter.refused: WeChat answers 200 with a non-zero
 * errcode. A token it no longer takes is dropped and fetched again once —
 * unless the call went with an older token than the one at hand, which is
 * kept and the call sent again with it; when that fetch gave the same token
 * back (WeChat's stable token still holds it), it is not fetched again for
 * a while, and the retries go on with backoff. */
static int wechat_refused(const pl_channel_config *cfg, long credential, long status, const char *body,
                          int *retry, long *delay_s, char **why) {
    (void)status;
    json_t *j = json_loads(body ? body : "", 0, NULL);
    json_t *code_json = json_object_get(j, "errcode");
    long long code = json_integer_value(code_json);
    const char *msg = pl_json_str(j, "errmsg");
    if (!json_is_integer(code_json) || code == 0) {
        json_decref(j);
        return 0;
    }
    const char *what = "WeChat refused the message";
    if (code == 40001 || code == 40014 || code == 42001) {
        const char *app_id = pl_channel_setting(cfg, "app_id");
        token_entry *e = app_id ? entry_for(cfg->bot, app_id, 0) : NULL;
        *retry = 1;
        if (e && e->token && credential != e->generation) {
            what = "the message went with an access token replaced since: sending it with the new one";
            *delay_s = 0;
        } else if (e && e->token && e->same_again && mono_ms() - e->fetched_ms < TOKEN_REFUSED_AGAIN_MS) {
            what = "the access token was refused again, and a new fetch gives the same one";
        } else {
            what = "the access token is no longer valid: fetching a new one";
            if (e && e->token) {
                free(e->refused);
                e->refused = pl_strdup(e->token);
                entry_drop_token(e);
            }
            *delay_s = 0;
        }
    } else if (code == -1 || code == 45009) {
        *retry = 1;
        what = code == -1 ? "WeChat is busy" : "the API's call quota is used up";
    } else if (code == 45015) {
        what = "outside WeChat's 48-hour customer-service window (the shopper has not written for 48 hours, "
               "or unfollowed the account)";
    } else if (code == 45047) {
        what = "past WeChat's quota of customer-service messages since the shopper last wrote "
               "(5 per message, 3 per menu click or subscription)";
    }
    *why = pl_strdupf("%s (errcode %lld: %.200s)", what, code, msg ? msg : "");
    json_decref(j);
    return 1;
}

const pl_channel_adapter pl_channel_wechat = {
    .name = "wechat",
    .default_api_base = WECHAT_API_BASE,
    .synchronous = 0,
    .inbound = wechat_inbound,
    .render = wechat_render,
    .authorize = wechat_authorize,
    .prepare = wechat_prepare,
    .forget = wechat_forget,
    .refused = wechat_refused,
    /* past 48 hours the outbox does not queue a turn (WeChat would refuse it
     * with 45015); a person's replies get no longer window */
    .window_s = WINDOW_S,
    .agent_window_s = WINDOW_S,
};
