/* test_channel_wechat: the WeChat Official Accounts adapter
 * (channel_wechat.c) on fixed vectors — the documented signature examples,
 * safe mode's documented decryption and encryption samples and a round
 * trip, parsing of each kind of push and what is ignored, hostile XML
 * (entities, DOCTYPE, XXE, size), rendering with WeChat's limits and how it
 * degrades past them, and the access token: fetched from a fake
 * stable_token endpoint on the loop, cached, dropped on 42001/40001 once. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "base/common.h"
#include "base/log.h"
#include "channels/channel.h"
#include "channels/channel_wechat.h"
#include "channels/outbox.h"
#include "check.h"
#include "webhook_fixture.h"
#include "event/http_client.h"

extern const pl_channel_adapter pl_channel_wechat;

#define TOKEN_ENV "BARISTA_TEST_WECHAT_TOKEN"
#define APP_ID_ENV "BARISTA_TEST_WECHAT_APP_ID"
#define SECRET_ENV "BARISTA_TEST_WECHAT_SECRET"
#define AES_ENV "BARISTA_TEST_WECHAT_AES"

/* WeChat's own examples: Token "AAAAA" (server verification and a signed
 * push, in the message-push guide), and the message-encryption sample
 * code's token, key, app id, timestamp, nonce, msg_signature and Encrypt. */
#define DOC_TOKEN "AAAAA"
#define SAMPLE_TOKEN "spamtest"
#define SAMPLE_KEY "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
#define SAMPLE_APP_ID "wx2c2769f8efd9abc2"
#define SAMPLE_TIMESTAMP "1409735669"
#define SAMPLE_NONCE "1320562132"
#define SAMPLE_MSG_SIGNATURE "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
#define SAMPLE_ENCRYPT                                                                                       \
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2" \
    "LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIb" \
    "gU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO" \
    "/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669" \
    "WuMyVWQLCzpu9GhglF2PE="

#define NOW 1714037059LL

static json_t *settings, *safe_settings;

static pl_channel_config config(void) { return (pl_channel_config){"barista", "wechat", settings}; }

/* A request with a raw query, a body and a clock. */
static int request(const json_t *s, const char *method, const char *query, const char *body, long long now,
                   pl_inbound *in, char **err) {
    pl_channel_config cfg = {"barista", "wechat", s};
    pl_webhook req = {.method = method, .url = "https://bot.example/v1/bots/barista/channels/wechat",
                      .query = query, .body = body, .body_len = strlen(body), .header = find_header,
                      .now = now};
    return webhook_inbound(&pl_channel_wechat, &cfg, &req, in, err);
}

/* A query signed with the test token (DOC_TOKEN) at NOW with a nonce (new). */
static char *signed_query(const char *nonce) {
    const char *parts[] = {DOC_TOKEN, "1714037059", nonce};
    char *sig = pl_wechat_signature(parts, 3);
    char *query = pl_strdupf("signature=%s&timestamp=1714037059&nonce=%s&openid=oUser", sig, nonce);
    free(sig);
    return query;
}

/* A push signed with the test token at NOW, with a nonce of its own. */
static int post(const char *body, pl_inbound *in, char **err) {
    static int pushes;
    char nonce[24];
    snprintf(nonce, sizeof nonce, "%d", 100000 + ++pushes);
    char *query = signed_query(nonce);
    int rc = request(settings, "POST", query, body, NOW, in, err);
    free(query);
    return rc;
}

static char *text_push(const char *from, const char *content, const char *msg_id) {
    return pl_strdupf("<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>"
                      "<FromUserName><![CDATA[%s]]></FromUserName><CreateTime>1714037059</CreateTime>"
                      "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[%s]]></Content>"
                      "<MsgId>%s</MsgId></xml>",
                      from, content, msg_id);
}

static char *event_push(const char *event, const char *key) {
    return pl_strdupf("<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>"
                      "<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>"
                      "<CreateTime>1714037059</CreateTime><MsgType><![CDATA[event]]></MsgType>"
                      "<Event><![CDATA[%s]]></Event>%s%s%s</xml>",
                      event, key ? "<EventKey><![CDATA[" : "", key ? key : "", key ? "]]></EventKey>" : "");
}

/* The start of a short push of oA's to gh_1, written out by a case. */
#define PUSH_HEAD "<xml><ToUserName>gh_1</ToUserName><FromUserName>oA</FromUserName><CreateTime>1</CreateTime>"

/* The events of a correctly signed push (new), or NULL. */
static json_t *events_of(const char *body) {
    pl_inbound in;
    char *err = NULL;
    int rc = post(body, &in, &err);
    if (rc != PL_OK) printf("#   inbound failed (%d): %s\n", in.status, err);
    json_t *events = rc == PL_OK ? json_incref(in.events) : NULL;
    if (rc == PL_OK && (!in.answer || strcmp(in.answer, "success") != 0)) printf("#   answer %s\n", in.answer);
    pl_inbound_clear(&in);
    free(err);
    return events;
}

/* The events of a signed push of event (with key, or none), or NULL. */
static json_t *events_of_event(const char *event, const char *key) {
    char *body = event_push(event, key);
    json_t *events = events_of(body);
    free(body);
    return events;
}

/* The status a push is refused with (0 if accepted); *why gets the reason. */
static int refused_status(const char *body, char **why) {
    pl_inbound in;
    char *err = NULL;
    int rc = post(body, &in, &err);
    int status = rc == PL_OK ? 0 : in.status;
    if (why) *why = err;
    else free(err);
    pl_inbound_clear(&in);
    return status;
}

/* --- handshake and signature ------------------------------------------------------------ */

TEST(adapter_is_registered) {
    CHECK(pl_channel_find("wechat") == &pl_channel_wechat);
    CHECK_STR(pl_channel_wechat.default_api_base, "https://api.weixin.qq.com");
    CHECK(!pl_channel_wechat.synchronous);
    CHECK(pl_channel_wechat.render && pl_channel_wechat.authorize && pl_channel_wechat.refused &&
          pl_channel_wechat.prepare && pl_channel_wechat.forget);
    /* the customer-service window, for a person's replies too */
    CHECK(pl_channel_wechat.window_s == 48 * 3600);
    CHECK(pl_channel_wechat.agent_window_s == 48 * 3600);
}

TEST(signature_documented_examples) {
    const char *verify[] = {"AAAAA", "1714036504", "1514711492"};
    char *s = pl_wechat_signature(verify, 3);
    CHECK_STR(s, "f464b24fc39322e44b38aa78f5edd27bd1441696");
    free(s);
    const char *push[] = {"AAAAA", "1714037059", "486452656"};
    s = pl_wechat_signature(push, 3);
    CHECK_STR(s, "899cf89e464efb63f54ddac96b0a0a235f53aa78");
    free(s);
    const char *safe[] = {SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE, SAMPLE_ENCRYPT};
    s = pl_wechat_signature(safe, 4);
    CHECK_STR(s, SAMPLE_MSG_SIGNATURE);
    free(s);
}

/* channel.c's digest helper, which the signature is made with */
TEST(digest_hex_joins_or_ends_parts) {
    const char *abc[] = {"a", "b", "c"};
    char *s = pl_channel_digest_hex("sha1", abc, 3, 0);
    CHECK_STR(s, "a9993e364706816aba3e25717850c26c9cd0d89d"); /* SHA-1 of "abc" */
    free(s);
    const char *ended[] = {"a", NULL, "b"};
    s = pl_channel_digest_hex("sha256", ended, 3, 1);
    CHECK_STR(s, "8fb20ef63ced4145fc2e983ffe597d1dcff39154c3bf21f0fa9dde6a0c50fdc9"); /* "a\0b\0" */
    free(s);
    const char *moved[] = {"ab", "c"};
    s = pl_channel_digest_hex("sha256", moved, 2, 1);
    CHECK_STR(s, "629c2f14f654f026086f2aefe1855533d0897f49df86a19073be17b237361b09"); /* "ab\0c\0" */
    free(s);
}

TEST(handshake_answers_echostr_of_the_documented_request) {
    pl_inbound in;
    char *err = NULL;
    CHECK(request(settings, "GET",
                  "signature=f464b24fc39322e44b38aa78f5edd27bd1441696&echostr=4375120948345356249"
                  "&timestamp=1714036504&nonce=1514711492",
                  "", NOW, &in, &err) == PL_OK);
    CHECK(in.status == 200);
    CHECK_STR(in.answer, "4375120948345356249");
    CHECK(in.answer_type == NULL); /* text/plain */
    CHECK(json_array_size(in.events) == 0);
    pl_inbound_clear(&in);
    /* upper-case hex is the same signature */
    CHECK(request(settings, "GET",
                  "signature=F464B24FC39322E44B38AA78F5EDD27BD1441696&echostr=1&timestamp=1714036504&nonce=1514711492",
                  "", NOW, &in, &err) == PL_OK);
    CHECK_STR(in.answer, "1");
    pl_inbound_clear(&in);
}

TEST(handshake_refusals) {
    pl_inbound in;
    char *err = NULL;
    CHECK(request(settings, "GET",
                  "signature=f464b24fc39322e44b38aa78f5edd27bd1441697&echostr=77665544&timestamp=1714036504&nonce=1514711492",
                  "", NOW, &in, &err) == PL_ERR);
    CHECK(in.status == 403);
    CHECK(in.answer == NULL);
    pl_inbound_clear(&in);
    free(err), err = NULL;
    CHECK(request(settings, "GET", "echostr=1&timestamp=1714036504&nonce=1514711492", "", NOW, &in, &err) == PL_ERR);
    CHECK(in.status == 401);
    pl_inbound_clear(&in);
    free(err), err = NULL;
    CHECK(request(settings, "GET", NULL, "", NOW, &in, &err) == PL_ERR);
    CHECK(in.status == 401);
    pl_inbound_clear(&in);
    free(err), err = NULL;
    CHECK(request(settings, "GET", "signature=f464b24fc39322e44b38aa78f5edd27bd1441696&timestamp=1714036504&nonce=1514711492",
                  "", NOW, &in, &err) == PL_ERR);
    CHECK(in.status == 400);
    CHECK(err && strstr(err, "echostr"));
    pl_inbound_clear(&in);
    free(err), err = NULL;
    /* without the token set: 503 naming the variable */
    unsetenv(TOKEN_ENV);
    CHECK(request(settings, "GET", "signature=a&echostr=1&timestamp=1&nonce=1", "", NOW, &in, &err) == PL_ERR);
    CHECK(in.status == 503);
    CHECK(err && strstr(err, TOKEN_ENV));
    setenv(TOKEN_ENV, DOC_TOKEN, 1);
    pl_inbound_clear(&in);
    free(err);
}

TEST(push_signature_refusals) {
    char *body = text_push("oUser", "hi", "1");
    pl_inbound in;
    char *err = NULL;
    /* the documented push signature, but another nonce */
    CHECK(request(settings, "POST", "signature=899cf89e464efb63f54ddac96b0a0a235f53aa78&timestamp=1714037059&nonce=486452657",
                  body, NOW, &in, &err) == PL_ERR);
    CHECK(in.status == 403);
    CHECK(in.events == NULL);
    pl_inbound_clear(&in);
    free(err), err = NULL;
    /* the documented one is accepted */
    CHECK(request(settings, "POST", "signature=899cf89e464efb63f54ddac96b0a0a235f53aa78&timestamp=1714037059&nonce=486452656",
                  body, NOW, &in, &err) == PL_OK);
    CHECK(json_array_size(in.events) == 1);
    pl_inbound_clear(&in);
    /* ... but not an hour later: the signature covers no body */
    CHECK(request(settings, "POST", "signature=899cf89e464efb63f54ddac96b0a0a235f53aa78&timestamp=1714037059&nonce=486452656",
                  body, NOW + 3600, &in, &err) == PL_ERR);
    CHECK(in.status == 403);
    CHECK(err && strstr(err, "timestamp"));
    pl_inbound_clear(&in);
    free(err), err = NULL;
    CHECK(request(settings, "POST", "timestamp=1714037059&nonce=486452656", body, NOW, &in, &err) == PL_ERR);
    CHECK(in.status == 401);
    pl_inbound_clear(&in);
    free(err), err = NULL;
    /* a query libevent cannot parse */
    CHECK(request(settings, "POST", "signature", body, NOW, &in, &err) == PL_ERR);
    CHECK(in.status == 400 || in.status == 401);
    pl_inbound_clear(&in);
    free(err);
    free(body);
}

/* One signed query seen (a proxy's log) is not a licence to post any body
 * with it: the same body again is WeChat's redelivery, another one 403. */
TEST(plaintext_replay_with_another_body_is_refused) {
    pl_wechat_forget_pushes();
    char *query = signed_query("777000111");
    char *body = text_push("oUser", "hi", "900001"), *forged = text_push("oVictim", "refund me", "900002");
    pl_inbound in;
    char *err = NULL;
    CHECK(request(settings, "POST", query, body, NOW, &in, &err) == PL_OK);
    pl_inbound_clear(&in);
    /* WeChat's retry: the same query and body */
    CHECK(request(settings, "POST", query, body, NOW + 5, &in, &err) == PL_OK);
    CHECK(json_array_size(in.events) == 1);
    pl_inbound_clear(&in);
    /* the query with another body, from another openid */
    CHECK(request(settings, "POST", query, forged, NOW + 60, &in, &err) == PL_ERR);
    CHECK(in.status == 403);
    CHECK(in.events == NULL);
    CHECK(err && strstr(err, "replay"));
    pl_inbound_clear(&in);
    free(err), err = NULL;
    /* another bot remembers its own: the same query (its token is the same
     * here) is new there */
    json_t *espresso_settings = json_pack("{s:s}", "token", DOC_TOKEN);
    pl_channel_config espresso = {"espresso", "wechat", espresso_settings};
    pl_webhook req = {.method = "POST", .url = "https://bot.example/v1/bots/espresso/channels/wechat",
                      .query = query, .body = forged, .body_len = strlen(forged), .header = find_header,
                      .now = NOW};
    if (webhook_inbound(&pl_channel_wechat, &espresso, &req, &in, &err) != PL_OK) printf("#   %s\n", err);
    CHECK(in.status == 200 && json_array_size(in.events) == 1);
    pl_inbound_clear(&in);
    /* a brand's flood of pushes does not push out another's memory */
    int taken = 0;
    for (int i = 0; i < 5000; i++) {
        char nonce[24];
        snprintf(nonce, sizeof nonce, "%d", 500000 + i);
        char *q = signed_query(nonce);
        req.query = q;
        taken += webhook_inbound(&pl_channel_wechat, &espresso, &req, &in, &err) == PL_OK;
        pl_inbound_clear(&in);
        free(q);
    }
    CHECK(taken == 5000);
    json_decref(espresso_settings);
    CHECK(request(settings, "POST", query, forged, NOW + 60, &in, &err) == PL_ERR);
    CHECK(in.status == 403);
    pl_inbound_clear(&in);
    free(err), err = NULL;
    /* once the timestamp is stale the push is refused for that anyway */
    CHECK(request(settings, "POST", query, body, NOW + 301, &in, &err) == PL_ERR);
    CHECK(err && strstr(err, "timestamp"));
    pl_inbound_clear(&in);
    free(err);
    free(body);
    free(forged);
    free(query);
    pl_wechat_forget_pushes();
}

/* --- parsing ------------------------------------------------------------------------------- */

TEST(text_message) {
    char *body = text_push("o9AgO5Kd5ggOC-bXrbNODIiE3bGY", "我要一杯拿铁 & <cake>", "6054768590064713728");
    json_t *events = events_of(body);
    CHECK(json_array_size(events) == 1);
    json_t *ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "kind"), "message");
    CHECK_STR(field(ev, "id"), "6054768590064713728");
    CHECK_STR(field(ev, "user"), "o9AgO5Kd5ggOC-bXrbNODIiE3bGY");
    CHECK_STR(field(ev, "text"), "我要一杯拿铁 & <cake>");
    CHECK(json_object_get(ev, "payload") == NULL);
    json_t *info = json_object_get(ev, "info");
    CHECK_STR(field(info, "platform"), "wechat");
    CHECK_STR(field(info, "openid"), "o9AgO5Kd5ggOC-bXrbNODIiE3bGY");
    CHECK_STR(field(info, "account"), "gh_97417a04a28d");
    CHECK_STR(field(info, "type"), "text");
    CHECK(json_object_get(info, "event") == NULL);
    json_decref(events);
    free(body);
    /* plain text (not CDATA) with entities of XML itself */
    events = events_of(PUSH_HEAD "<MsgType>text</MsgType><Content>tea &amp; cake &lt;3 &#x4E2D;</Content><MsgId>42</MsgId></xml>");
    CHECK_STR(field(json_array_get(events, 0), "text"), "tea & cake <3 中");
    json_decref(events);
}

TEST(subscribe_and_click_events) {
    json_t *events = events_of_event("subscribe", NULL);
    CHECK(json_array_size(events) == 1);
    json_t *ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "id"), "o9AgO5Kd5ggOC-bXrbNODIiE3bGY:1714037059:subscribe");
    CHECK(json_object_get(ev, "text") == NULL && json_object_get(ev, "payload") == NULL);
    CHECK_STR(field(json_object_get(ev, "info"), "event"), "subscribe");
    CHECK_STR(field(json_object_get(ev, "info"), "type"), "event");
    json_decref(events);
    events = events_of_event("subscribe", "qrscene_123123");
    CHECK_STR(field(json_object_get(json_array_get(events, 0), "info"), "event_key"), "qrscene_123123");
    json_decref(events);
    events = events_of_event("CLICK", "menu");
    ev = json_array_get(events, 0);
    CHECK_STR(field(ev, "payload"), "menu");
    CHECK_STR(field(ev, "id"), "o9AgO5Kd5ggOC-bXrbNODIiE3bGY:1714037059:CLICK");
    CHECK_STR(field(json_object_get(ev, "info"), "event"), "CLICK");
    json_decref(events);
}

TEST(other_events_are_acknowledged_without_a_turn) {
    const char *ignored[] = {"unsubscribe", "VIEW", "LOCATION", "SCAN", "TEMPLATESENDJOBFINISH"};
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++) {
        json_t *events = events_of_event(ignored[i], "x");
        CHECK(events && json_array_size(events) == 0);
        json_decref(events);
    }
}

TEST(other_message_types_are_turns_with_their_facts) {
    json_t *events = events_of(PUSH_HEAD "<MsgType>image</MsgType><PicUrl>https://mmbiz.example/p.jpg</PicUrl>"
                                         "<MediaId>m</MediaId><MsgId>7</MsgId></xml>");
    json_t *ev = json_array_get(events, 0);
    CHECK(json_object_get(ev, "text") == NULL);
    CHECK_STR(field(json_object_get(ev, "info"), "type"), "image");
    CHECK_STR(field(json_object_get(ev, "info"), "pic_url"), "https://mmbiz.example/p.jpg");
    json_decref(events);
    events = events_of(PUSH_HEAD "<MsgType>voice</MsgType><Recognition>一杯拿铁</Recognition><MsgId>8</MsgId></xml>");
    CHECK_STR(field(json_array_get(events, 0), "text"), "一杯拿铁");
    json_decref(events);
}

TEST(malformed_bodies_are_400_with_a_reason) {
    static const struct {
        const char *body, *reason;
    } cases[] = {
        {"", "not XML"},
        {"{\"ToUserName\": \"gh\"}", "not XML"},
        {"<xml><FromUserName>oA</FromUserName>", "not XML"},
        {"<msg><FromUserName>oA</FromUserName></msg>", "<msg>"},
        {"<xml><ToUserName>g</ToUserName><FromUserName>oA</FromUserName><FromUserName>oB</FromUserName>"
         "<CreateTime>1</CreateTime><MsgType>text</MsgType><MsgId>1</MsgId></xml>", "twice"},
        {"<xml><ToUserName>g</ToUserName><FromUserName><b>oA</b></FromUserName><CreateTime>1</CreateTime>"
         "<MsgType>text</MsgType><MsgId>1</MsgId></xml>", "elements"},
        {"<xml><ToUserName>g</ToUserName><FromUserName>oA</FromUserName><CreateTime>soon</CreateTime>"
         "<MsgType>text</MsgType><MsgId>1</MsgId></xml>", "CreateTime"},
        {"<xml><ToUserName>g</ToUserName><FromUserName>oA</FromUserName><CreateTime>1</CreateTime>"
         "<MsgType>text</MsgType><MsgId>-1</MsgId></xml>", "MsgId"},
        {"<xml><ToUserName>g</ToUserName><FromUserName></FromUserName><CreateTime>1</CreateTime>"
         "<MsgType>text</MsgType><MsgId>1</MsgId></xml>", "FromUserName"},
        {"<xml><ToUserName>g</ToUserName><FromUserName>oA</FromUserName><CreateTime>1</CreateTime>"
         "<MsgType>text</MsgType><Content>hi</Content></xml>", "MsgId"},
        {"<xml><ToUserName>g</ToUserName><FromUserName>oA</FromUserName><CreateTime>1</CreateTime>"
         "<MsgType>event</MsgType></xml>", "Event"},
        {"<xml><ToUserName>g</ToUserName><FromUserName>oA</FromUserName><CreateTime>1</CreateTime>"
         "<Content>hi</Content><MsgId>1</MsgId></xml>", "MsgType"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *why = NULL;
        int status = refused_status(cases[i].body, &why);
        if (status != 400 || !why || !strstr(why, cases[i].reason))
            printf("#   case %zu: %d %s\n", i, status, why ? why : "(no reason)");
        CHECK(status == 400);
        CHECK(why && strstr(why, cases[i].reason));
        free(why);
    }
}

TEST(hostile_xml_is_refused_unread) {
    /* billion laughs: refused at the DOCTYPE, before any expansion */
    char *laughs = pl_strdup("<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY a \"lol\">");
    for (char c = 'b'; c <= 'k'; c++) {
        char *more = pl_strdupf("%s<!ENTITY %c \"&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;\">", laughs, c, c - 1, c - 1,
                                c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
        free(laughs);
        laughs = more;
    }
    char *body = pl_strdupf("%s]><xml><ToUserName>g</ToUserName><FromUserName>oA</FromUserName><CreateTime>1</CreateTime>"
                            "<MsgType>text</MsgType><Content>&k;</Content><MsgId>1</MsgId></xml>", laughs);
    char *why = NULL;
    CHECK(refused_status(body, &why) == 400);
    CHECK(why && strstr(why, "DOCTYPE"));
    free(why);
    free(body);
    free(laughs);
    /* XXE: an external entity is never fetched or read */
    why = NULL;
    CHECK(refused_status("<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><ToUserName>g</ToUserName>"
                         "<FromUserName>oA</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>"
                         "<Content>&x;</Content><MsgId>1</MsgId></xml>", &why) == 400);
    CHECK(why && strstr(why, "DOCTYPE") && !strstr(why, "root:"));
    free(why);
    why = NULL;
    CHECK(refused_status("<!DOCTYPE xml SYSTEM \"http://127.0.0.1:9/x.dtd\"><xml/>", &why) == 400);
    free(why);
    /* an undeclared entity is not well-formed */
    CHECK(refused_status("<xml><ToUserName>g</ToUserName><FromUserName>&x;</FromUserName><CreateTime>1</CreateTime>"
                         "<MsgType>text</MsgType><MsgId>1</MsgId></xml>", NULL) == 400);
    /* more than 64 KiB */
    size_t n = 70 * 1024;
    char *big = malloc(n + 64);
    strcpy(big, "<xml><Content>");
    memset(big + 14, 'a', n);
    strcpy(big + 14 + n, "</Content></xml>");
    why = NULL;
    CHECK(refused_status(big, &why) == 400);
    CHECK(why && strstr(why, "larger"));
    free(why);
    free(big);
    /* deep nesting */
    char *deep = malloc(20 * 1024);
    char *p = stpcpy(deep, "<xml>");
    for (int i = 0; i < 2000; i++) p = stpcpy(p, "<a>");
    strcpy(p, "</xml>");
    CHECK(refused_status(deep, NULL) == 400);
    free(deep);
}

/* --- safe mode ------------------------------------------------------------------------------------ */

TEST(decrypts_the_documented_sample) {
    char *xml = NULL, *app = NULL, *err = NULL;
    size_t len = 0;
    CHECK(pl_wechat_decrypt(SAMPLE_KEY, SAMPLE_ENCRYPT, &xml, &len, &app, &err) == PL_OK);
    CHECK_STR(app, SAMPLE_APP_ID);
    CHECK(xml && strstr(xml, "<Content><![CDATA[abcdteT]]></Content>"));
    CHECK(xml && strstr(xml, "<MsgId>6054768590064713728</MsgId>"));
    CHECK(xml && len == strlen(xml));
    free(xml);
    free(app);
}

TEST(encrypts_the_documented_sample) {
    /* the encryption sample: a fixed random part and a Chinese message */
    char *err = NULL;
    const char *msg = "我是中文abcd123";
    char *out = pl_wechat_encrypt(SAMPLE_KEY, "wxb11529c136998cb6", msg, strlen(msg),
                                  (const unsigned char *)"aaaabbbbccccdddd", &err);
    CHECK_STR(out, "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==");
    free(out);
    /* a round trip with random bytes, over block sizes */
    for (size_t n = 0; n < 70; n += 7) {
        char *plain = malloc(n + 1);
        for (size_t i = 0; i < n; i++) plain[i] = (char)('a' + i % 26);
        plain[n] = '\0';
        char *enc = pl_wechat_encrypt(SAMPLE_KEY, SAMPLE_APP_ID, plain, n, NULL, &err);
        char *xml = NULL, *app = NULL;
        size_t len = 0;
        CHECK(enc && pl_wechat_decrypt(SAMPLE_KEY, enc, &xml, &len, &app, &err) == PL_OK);
        CHECK(len == n && xml && memcmp(xml, plain, n) == 0);
        CHECK_STR(app, SAMPLE_APP_ID);
        free(xml);
        free(app);
        free(enc);
        free(plain);
    }
}

TEST(decrypt_refuses_what_is_not_the_layout) {
    char *xml = NULL, *app = NULL, *err = NULL;
    size_t len = 0;
    static const char *const bad[] = {
        "", "====", "abc", "not base64!", "AAAAAAAAAAAAAAAAAAAAAA==", /* 16 zero bytes: padding 0 */
        "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(pl_wechat_decrypt(SAMPLE_KEY, bad[i], &xml, &len, &app, &err) == PL_ERR);
        CHECK(err != NULL);
        free(err), err = NULL;
    }
    /* another key: the padding does not come out (or the layout does not) */
    CHECK(pl_wechat_decrypt("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg", SAMPLE_ENCRYPT, &xml, &len, &app, &err) == PL_ERR);
    free(err), err = NULL;
    /* a key that is not an EncodingAESKey */
    CHECK(pl_wechat_decrypt("short", SAMPLE_ENCRYPT, &xml, &len, &app, &err) == PL_ERR);
    CHECK(err && strstr(err, "EncodingAESKey"));
    free(err), err = NULL;
    CHECK(pl_wechat_encrypt("abcdefghijklmnopqrstuvwxyz0123456789ABCDEF+", "wx", "x", 1, NULL, &err) == NULL);
    free(err);
}

/* A safe-mode push of the encryption sample, with its query. */
static int safe_post(const char *msg_signature, const char *query_extra, const char *encrypt, pl_inbound *in,
                     char **err) {
    const char *parts[] = {SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE};
    char *sig = pl_wechat_signature(parts, 3);
    char *query = pl_strdupf("signature=%s&timestamp=" SAMPLE_TIMESTAMP "&nonce=" SAMPLE_NONCE "&openid=oyORnuP8q7ou2gfYjqLzSIWZf0rs"
                             "%s%s%s",
                             sig, msg_signature ? "&msg_signature=" : "", msg_signature ? msg_signature : "", query_extra);
    char *body = pl_strdupf("<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt></xml>",
                            encrypt);
    int rc = request(safe_settings, "POST", query, body, 1409735669LL, in, err);
    free(body);
    free(query);
    free(sig);
    return rc;
}

TEST(safe_mode_push_of_the_documented_sample) {
    setenv(TOKEN_ENV, SAMPLE_TOKEN, 1);
    setenv(APP_ID_ENV, SAMPLE_APP_ID, 1);
    pl_inbound in;
    char *err = NULL;
    CHECK(safe_post(SAMPLE_MSG_SIGNATURE, "&encrypt_type=aes", SAMPLE_ENCRYPT, &in, &err) == PL_OK);
    if (err) printf("#   %s\n", err);
    json_t *ev = json_array_get(in.events, 0);
    CHECK_STR(field(ev, "id"), "6054768590064713728");
    CHECK_STR(field(ev, "user"), "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
    CHECK_STR(field(ev, "text"), "abcdteT");
    CHECK_STR(field(json_object_get(ev, "info"), "account"), "gh_10f6c3c3ac5a");
    CHECK_STR(in.answer, "success"); /* WeChat takes "success" unencrypted */
    pl_inbound_clear(&in);
    /* msg_signature missing, or wrong */
    CHECK(safe_post(NULL, "&encrypt_type=aes", SAMPLE_ENCRYPT, &in, &err) == PL_ERR);
    CHECK(in.status == 401);
    pl_inbound_clear(&in);
    free(err), err = NULL;
    CHECK(safe_post("5d197aaffba7e9b25a30732f161a50dee96bd5fb", "&encrypt_type=aes", SAMPLE_ENCRYPT, &in, &err) == PL_ERR);
    CHECK(in.status == 403);
    pl_inbound_clear(&in);
    free(err), err = NULL;
    /* a plaintext push to a bot in safe mode */
    CHECK(safe_post(SAMPLE_MSG_SIGNATURE, "", SAMPLE_ENCRYPT, &in, &err) == PL_ERR);
    CHECK(in.status == 403);
    CHECK(err && strstr(err, "safe mode"));
    pl_inbound_clear(&in);
    free(err), err = NULL;
    /* encrypted for another app */
    setenv(APP_ID_ENV, "wxanotherapp", 1);
    CHECK(safe_post(SAMPLE_MSG_SIGNATURE, "&encrypt_type=aes", SAMPLE_ENCRYPT, &in, &err) == PL_ERR);
    CHECK(in.status == 403);
    CHECK(err && strstr(err, SAMPLE_APP_ID));
    pl_inbound_clear(&in);
    free(err), err = NULL;
    setenv(APP_ID_ENV, SAMPLE_APP_ID, 1);
    /* a correctly signed Encrypt that is not a message of the layout */
    const char *junk = "AAAAAAAAAAAAAAAAAAAAAA==";
    const char *parts[] = {SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE, junk};
    char *sig = pl_wechat_signature(parts, 4);
    CHECK(safe_post(sig, "&encrypt_type=aes", junk, &in, &err) == PL_ERR);
    CHECK(in.status == 400);
    free(sig);
    pl_inbound_clear(&in);
    free(err), err = NULL;
    /* a round trip: our own encryption of a CLICK, with msg_signature */
    const char *click = "<xml><ToUserName>gh_10f6c3c3ac5a</ToUserName><FromUserName>oB</FromUserName>"
                        "<CreateTime>1409735669</CreateTime><MsgType>event</MsgType><Event>CLICK</Event>"
                        "<EventKey>order</EventKey></xml>";
    char *enc = pl_wechat_encrypt(SAMPLE_KEY, SAMPLE_APP_ID, click, strlen(click), NULL, &err);
    const char *parts2[] = {SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE, enc};
    sig = pl_wechat_signature(parts2, 4);
    CHECK(safe_post(sig, "&encrypt_type=aes", enc, &in, &err) == PL_OK);
    CHECK_STR(field(json_array_get(in.events, 0), "payload"), "order");
    pl_inbound_clear(&in);
    free(sig);
    free(enc);
    setenv(TOKEN_ENV, DOC_TOKEN, 1);
    setenv(APP_ID_ENV, "wxapp", 1);
}

TEST(encrypted_push_to_a_bot_without_a_key_is_503) {
    char *body = text_push("oA", "hi", "1");
    const char *parts[] = {DOC_TOKEN, "1714037059", "486452656"};
    char *sig = pl_wechat_signature(parts, 3);
    char *query = pl_strdupf("signature=%s&timestamp=1714037059&nonce=486452656&encrypt_type=aes&msg_signature=00", sig);
    pl_inbound in;
    char *err = NULL;
    CHECK(request(settings, "POST", query, body, NOW, &in, &err) == PL_ERR);
    CHECK(in.status == 503);
    CHECK(err && strstr(err, "encoding_aes_key"));
    pl_inbound_clear(&in);
    free(err), err = NULL;
    free(query);
    query = pl_strdupf("signature=%s&timestamp=1714037059&nonce=486452656&encrypt_type=rot13", sig);
    CHECK(request(settings, "POST", query, body, NOW, &in, &err) == PL_ERR);
    CHECK(in.status == 400);
    pl_inbound_clear(&in);
    free(err);
    free(query);
    free(sig);
    free(body);
}

/* --- rendering -------------------------------------------------------------------------------------- */

static json_t *render_with(const char *replies_json, const json_t *info, const char *locale) {
    json_error_t jerr;
    json_t *replies = json_loads(replies_json, 0, &jerr);
    if (!replies) printf("#   bad test JSON: %s\n", jerr.text);
    pl_channel_config cfg = config();
    pl_outbound to = {.user = "oUser", .info = info, .locale = locale};
    json_t *calls = NULL;
    char *err = NULL;
    if (pl_channel_wechat.render(&cfg, &to, replies, &calls, &err) != PL_OK) printf("#   render failed: %s\n", err);
    free(err);
    json_decref(replies);
    return calls;
}

static json_t *render(const char *replies_json) { return render_with(replies_json, NULL, "en"); }

/* The body of call i, parsed (new), after checking the call's shape. */
static json_t *body_of(const json_t *calls, size_t i) {
    json_t *call = json_array_get(calls, i);
    CHECK_STR(field(call, "method"), "POST");
    CHECK_STR(field(call, "path"), "/cgi-bin/message/custom/send");
    CHECK_STR(field(call, "content_type"), "application/json");
    json_t *body = json_loads(field(call, "body") ? field(call, "body") : "", 0, NULL);
    CHECK_STR(field(body, "touser"), "oUser");
    return body;
}

static char *content_of(const json_t *calls, size_t i) {
    json_t *body = body_of(calls, i);
    CHECK_STR(field(body, "msgtype"), "text");
    char *s = pl_strdup(field(json_object_get(body, "text"), "content"));
    json_decref(body);
    return s;
}

TEST(render_text_and_numbered_choices_across_replies) {
    json_t *calls = render("[{\"text\":\"Which drink?\",\"choices\":[{\"title\":\"Latte\",\"payload\":\"latte\"},"
                           "{\"title\":\"Tea\",\"payload\":\"tea\"}]},{\"text\":\"Or a size?\",\"choices\":"
                           "[{\"title\":\"Small\",\"payload\":\"s\"}]}]");
    CHECK(json_array_size(calls) == 1);
    char *c = content_of(calls, 0);
    CHECK_STR(c, "Which drink?\n1) Latte\n2) Tea\n\nOr a size?\n3) Small");
    free(c);
    json_decref(calls);
    calls = render("[]");
    CHECK(json_array_size(calls) == 0);
    json_decref(calls);
    calls = render("[{\"text\":\"  \"}]");
    CHECK(json_array_size(calls) == 0);
    json_decref(calls);
}

TEST(render_long_text_split_at_2048_bytes_on_character_boundaries) {
    /* 1500 three-byte characters, no spaces: must be cut between characters */
    char *text = malloc(1500 * 3 + 1);
    for (int i = 0; i < 1500; i++) memcpy(text + 3 * i, "茶", 3);
    text[4500] = '\0';
    char *json = pl_strdupf("[{\"text\":\"%s\"}]", text);
    json_t *calls = render(json);
    CHECK(json_array_size(calls) == 3);
    size_t total = 0;
    for (size_t i = 0; i < json_array_size(calls); i++) {
        char *c = content_of(calls, i);
        CHECK(strlen(c) <= 2048 && strlen(c) % 3 == 0);
        total += strlen(c);
        free(c);
    }
    CHECK(total == 4500);
    json_decref(calls);
    free(json);
    /* words: cut at a space, which is dropped */
    char *words = malloc(3000);
    for (int i = 0; i < 2999; i++) words[i] = i % 10 == 9 ? ' ' : 'w';
    words[2999] = '\0';
    json = pl_strdupf("[{\"text\":\"%s\"}]", words);
    calls = render(json);
    CHECK(json_array_size(calls) == 2);
    char *first = content_of(calls, 0), *second = content_of(calls, 1);
    CHECK(strlen(first) <= 2048 && first[strlen(first) - 1] == 'w' && second[0] == 'w');
    CHECK(strlen(first) + strlen(second) + 1 == 2999);
    free(first);
    free(second);
    json_decref(calls);
    free(json);
    free(words);
    free(text);
}

#define CARD_LATTE "{\"title\":\"Latte\",\"subtitle\":\"Silky\",\"price\":{\"amount\":380,\"currency\":\"EUR\"},\"image\":\"https://cdn.example/latte.jpg\",\"payload\":\"latte\"}"
#define CARD_TEA "{\"title\":\"Tea\",\"price\":{\"amount\":250,\"currency\":\"EUR\"},\"payload\":\"tea\"}"

TEST(render_cards_as_news_articles_between_text) {
    json_t *calls = render("[{\"text\":\"Goes well with:\",\"cards\":[" CARD_LATTE "," CARD_TEA "],"
                           "\"choices\":[{\"title\":\"Add latte\",\"payload\":\"latte\"},{\"title\":\"No thanks\",\"payload\":\"no\"}]}]");
    CHECK(json_array_size(calls) == 3);
    char *c = content_of(calls, 0);
    CHECK(strncmp(c, "Goes well with:\n• Tea — €2.50", strlen("Goes well with:\n• Tea — €2.50")) == 0);
    free(c);
    json_t *body = body_of(calls, 1);
    CHECK_STR(field(body, "msgtype"), "news");
    json_t *articles = json_object_get(json_object_get(body, "news"), "articles");
    CHECK(json_array_size(articles) == 1);
    json_t *a = json_array_get(articles, 0);
    CHECK_STR(field(a, "title"), "Latte");
    CHECK_STR(field(a, "description"), "€3.80 · Silky");
    CHECK_STR(field(a, "picurl"), "https://cdn.example/latte.jpg");
    CHECK_STR(field(a, "url"), "https://cdn.example/latte.jpg");
    json_decref(body);
    c = content_of(calls, 2);
    CHECK_STR(c, "1) Add latte\n2) No thanks");
    free(c);
    json_decref(calls);
}

TEST(render_over_the_quota_turns_cards_into_lines) {
    /* six pictured cards: more than 5 messages, so one text with lines */
    char json[4096];
    snprintf(json, sizeof json, "[{\"text\":\"Menu\",\"cards\":[%s,%s,%s,%s,%s,%s]}]", CARD_LATTE, CARD_LATTE,
             CARD_LATTE, CARD_LATTE, CARD_LATTE, CARD_LATTE);
    json_t *calls = render(json);
    CHECK(json_array_size(calls) == 1);
    char *c = content_of(calls, 0);
    CHECK(strstr(c, "• Latte — €3.80. Silky") != NULL);
    free(c);
    json_decref(calls);
    /* two cards after a menu click: 3 messages fit, 4 do not */
    snprintf(json, sizeof json, "[{\"text\":\"Menu\",\"cards\":[%s,%s]}]", CARD_LATTE, CARD_LATTE);
    json_t *info = json_pack("{s:s, s:s}", "platform", "wechat", "event", "CLICK");
    calls = render_with(json, info, "en");
    CHECK(json_array_size(calls) == 3);
    json_decref(calls);
    snprintf(json, sizeof json, "[{\"text\":\"Menu\",\"cards\":[%s,%s]},{\"text\":\"More?\"}]", CARD_LATTE, CARD_LATTE);
    calls = render_with(json, info, "en");
    CHECK(json_array_size(calls) == 1);
    json_decref(calls);
    calls = render_with(json, NULL, "en");
    CHECK(json_array_size(calls) == 4);
    json_decref(calls);
    json_decref(info);
}

TEST(render_payment_link_as_an_anchor) {
    json_t *calls = render("[{\"text\":\"Order #15: €4.70.\",\"link\":{\"title\":\"Pay €4.70\","
                           "\"url\":\"https://pay.example/o/15?token=a&b=c\"}}]");
    CHECK(json_array_size(calls) == 1);
    char *c = content_of(calls, 0);
    CHECK_STR(c, "Order #15: €4.70.\n<a href=\"https://pay.example/o/15?token=a&b=c\">Pay €4.70</a>");
    free(c);
    json_decref(calls);
    /* not a web address, or one that cannot sit in the attribute: plain */
    calls = render("[{\"text\":\"Questions?\",\"link\":{\"title\":\"Call us\",\"url\":\"tel:+31201234567\"}}]");
    c = content_of(calls, 0);
    CHECK_STR(c, "Questions?\nCall us: tel:+31201234567");
    free(c);
    json_decref(calls);
    calls = render("[{\"link\":{\"title\":\"<b>Pay</b>\",\"url\":\"https://pay.example/\\\"onclick\"}}]");
    c = content_of(calls, 0);
    CHECK(strstr(c, "<a href") == NULL);
    free(c);
    json_decref(calls);
    calls = render("[{\"link\":{\"title\":\"<b>Pay</b>\",\"url\":\"https://pay.example/x\"}}]");
    c = content_of(calls, 0);
    CHECK_STR(c, "<a href=\"https://pay.example/x\"> b Pay /b </a>");
    free(c);
    json_decref(calls);
}

TEST(render_image_as_news_or_link) {
    json_t *calls = render_with("[{\"text\":\"Here it is\",\"image\":\"https://cdn.example/cup.png\"}]", NULL, "zh-CN");
    CHECK(json_array_size(calls) == 2);
    json_t *body = body_of(calls, 1);
    json_t *a = json_array_get(json_object_get(json_object_get(body, "news"), "articles"), 0);
    CHECK_STR(field(a, "title"), "图片");
    CHECK_STR(field(a, "picurl"), "https://cdn.example/cup.png");
    json_decref(body);
    json_decref(calls);
    calls = render("[{\"image\":{\"url\":\"ftp://cdn.example/cup.png\",\"title\":\"Cup\"}}]");
    CHECK(json_array_size(calls) == 1);
    char *c = content_of(calls, 0);
    CHECK_STR(c, "Cup: ftp://cdn.example/cup.png");
    free(c);
    json_decref(calls);
}

TEST(render_without_a_recipient_fails) {
    pl_channel_config cfg = config();
    pl_outbound to = {.user = NULL};
    json_t *replies = json_pack("[{s:s}]", "text", "hi"), *calls = NULL;
    char *err = NULL;
    CHECK(pl_channel_wechat.render(&cfg, &to, replies, &calls, &err) == PL_ERR);
    CHECK(err != NULL);
    free(err);
    json_decref(replies);
}

/* --- the access token ------------------------------------------------------------------------------ */

typedef struct {
    struct event_base *base;
    struct evhttp *http;
    int port;
    int requests;
    char last_path[128];
    json_t *last_body;
    const char *answer;
    int hold;                     /* stable_token requests get no answer ... */
    int held;                     /* ... and are counted here */
    int sends;                    /* customer-service messages taken */
    int timed_out;
} fake_token;

static void on_fake(struct evhttp_request *req, void *arg) {
    fake_token *f = arg;
    if (strncmp(evhttp_request_get_uri(req), "/cgi-bin/message/custom/send", 28) == 0) {
        f->sends++;
        struct evbuffer *out = evbuffer_new();
        evbuffer_add_printf(out, "{\"errcode\":0,\"errmsg\":\"ok\"}");
        evhttp_send_reply(req, 200, "OK", out);
        evbuffer_free(out);
        return;
    }
    if (f->hold) {
        f->held++; /* never answered: evhttp frees it with its connection */
        return;
    }
    f->requests++;
    snprintf(f->last_path, sizeof f->last_path, "%s", evhttp_request_get_uri(req));
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    json_decref(f->last_body);
    f->last_body = json_loadb((const char *)evbuffer_pullup(in, -1), n, 0, NULL);
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "%s", f->answer);
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

/* The fake on a free loopback port, PARLEY_WECHAT_API_BASE pointing at it;
 * no token cached. */
static void fake_start(fake_token *f) {
    pl_wechat_forget_tokens();
    f->base = event_base_new();
    f->http = evhttp_new(f->base);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl);
    f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    evhttp_set_gencb(f->http, on_fake, f);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", f->port);
    setenv("PARLEY_WECHAT_API_BASE", base, 1);
}

static void fake_stop(fake_token *f) {
    pl_wechat_forget_tokens();
    evhttp_free(f->http);
    json_decref(f->last_body);
    event_base_free(f->base);
    unsetenv("PARLEY_WECHAT_API_BASE");
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    ((fake_token *)arg)->timed_out = 1;
}

/* Runs the loop until *flag is at least n, or 5 s have passed (a guard:
 * the case fails then). */
static void run_until(fake_token *f, const int *flag, int n) {
    struct event *deadline = evtimer_new(f->base, on_deadline, f);
    struct timeval five = {5, 0};
    evtimer_add(deadline, &five);
    f->timed_out = 0;
    while (*flag < n && !f->timed_out) event_base_loop(f->base, EVLOOP_ONCE);
    event_free(deadline);
}

static int readies;
static void on_ready(void *ud) {
    (void)ud;
    readies++;
}

/* The credential the last prepare named: the token a call would go with. */
static long credential;

static int prepare(const pl_channel_config *cfg, pl_http_client *http, char **err) {
    return pl_channel_wechat.prepare(cfg, http, on_ready, NULL, &credential, err);
}

/* prepare until it stops saying PL_AGAIN (the loop runs the fetch). */
static int prepare_now(fake_token *f, pl_http_client *http, const pl_channel_config *cfg, char **err) {
    int before = readies;
    int rc = prepare(cfg, http, err);
    if (rc != PL_AGAIN) return rc;
    for (int i = 0; i < 2000 && readies == before; i++) event_base_loop(f->base, EVLOOP_ONCE);
    CHECK(readies == before + 1);
    return prepare(cfg, http, err);
}

static char *authorized_url(const pl_channel_config *cfg) {
    char *url = pl_strdup("https://api.weixin.qq.com/cgi-bin/message/custom/send"), *user_pwd = NULL, *err = NULL;
    json_t *headers = json_object();
    if (pl_channel_wechat.authorize(cfg, headers, &url, &user_pwd, &err) != PL_OK) {
        free(url);
        url = NULL;
    }
    json_decref(headers);
    free(err);
    return url;
}

/* The answer to a call that went with the token the last prepare named. */
static int refused(const pl_channel_config *cfg, const char *body, int *retry, long *delay, char **why) {
    *retry = 0;
    *delay = -1;
    *why = NULL;
    return pl_channel_wechat.refused(cfg, credential, 200, body, retry, delay, why);
}

TEST(access_token_fetched_cached_and_refreshed_once) {
    fake_token f = {0};
    fake_start(&f);
    pl_http_client *http = pl_http_client_new(f.base, NULL);
    pl_channel_config cfg = config();
    char *err = NULL;

    /* no token yet: authorize cannot */
    CHECK(authorized_url(&cfg) == NULL);
    f.answer = "{\"access_token\":\"TOKEN/1+\",\"expires_in\":7200}";
    CHECK(prepare_now(&f, http, &cfg, &err) == PL_OK);
    CHECK(f.requests == 1);
    CHECK_STR(f.last_path, "/cgi-bin/stable_token");
    CHECK_STR(field(f.last_body, "grant_type"), "client_credential");
    CHECK_STR(field(f.last_body, "appid"), "wxapp");
    CHECK_STR(field(f.last_body, "secret"), "app-secret");
    char *url = authorized_url(&cfg);
    CHECK_STR(url, "https://api.weixin.qq.com/cgi-bin/message/custom/send?access_token=TOKEN%2F1%2B");
    free(url);
    /* cached: no second fetch */
    CHECK(prepare(&cfg, http, &err) == PL_OK);
    CHECK(f.requests == 1);

    /* another brand with the same app id has its own token */
    json_t *espresso = json_pack("{s:s, s:s, s:s}", "token_env", "ESPRESSO_TEST_WECHAT_TOKEN", "app_id_env",
                                 "ESPRESSO_TEST_WECHAT_APP_ID", "app_secret_env", "ESPRESSO_TEST_WECHAT_SECRET");
    setenv("ESPRESSO_TEST_WECHAT_APP_ID", "wxapp", 1);
    setenv("ESPRESSO_TEST_WECHAT_SECRET", "espresso-secret", 1);
    pl_channel_config other = {"espresso", "wechat", espresso};
    f.answer = "{\"access_token\":\"OTHER\",\"expires_in\":7200}";
    CHECK(prepare_now(&f, http, &other, &err) == PL_OK);
    CHECK(f.requests == 2);
    CHECK_STR(field(f.last_body, "secret"), "espresso-secret");
    url = authorized_url(&other);
    CHECK(url && strstr(url, "access_token=OTHER"));
    free(url);
    url = authorized_url(&cfg);
    CHECK(url && strstr(url, "access_token=TOKEN%2F1%2B"));
    free(url);
    json_decref(espresso);

    /* expired: dropped, fetched again, the call retried */
    int retry;
    long delay;
    char *why;
    CHECK(refused(&cfg, "{\"errcode\":42001,\"errmsg\":\"access_token expired\"}", &retry, &delay, &why) == 1);
    CHECK(retry == 1 && delay == 0);
    CHECK(why && strstr(why, "42001"));
    free(why);
    CHECK(authorized_url(&cfg) == NULL);
    f.answer = "{\"access_token\":\"TOKEN2\",\"expires_in\":7200}";
    CHECK(prepare_now(&f, http, &cfg, &err) == PL_OK);
    CHECK(f.requests == 3);
    url = authorized_url(&cfg);
    CHECK(url && strstr(url, "access_token=TOKEN2"));
    free(url);
    /* refused again: fetched again, but WeChat gives the same token back */
    CHECK(refused(&cfg, "{\"errcode\":40001,\"errmsg\":\"invalid credential\"}", &retry, &delay, &why) == 1);
    CHECK(retry == 1 && delay == 0);
    free(why);
    CHECK(prepare_now(&f, http, &cfg, &err) == PL_OK);
    CHECK(f.requests == 4);
    /* ... so a third refusal does not fetch once more: retried with backoff */
    CHECK(refused(&cfg, "{\"errcode\":40001,\"errmsg\":\"invalid credential\"}", &retry, &delay, &why) == 1);
    CHECK(retry == 1 && delay == -1);
    CHECK(why && strstr(why, "same"));
    free(why);
    CHECK(prepare(&cfg, http, &err) == PL_OK);
    CHECK(f.requests == 4);

    /* the window, the count, busy, success */
    CHECK(refused(&cfg, "{\"errcode\":45015,\"errmsg\":\"response out of time limit\"}", &retry, &delay, &why) == 1);
    CHECK(retry == 0 && why && strstr(why, "48-hour"));
    free(why);
    CHECK(refused(&cfg, "{\"errcode\":45047,\"errmsg\":\"out of response count limit\"}", &retry, &delay, &why) == 1);
    CHECK(retry == 0 && why && strstr(why, "quota"));
    free(why);
    CHECK(refused(&cfg, "{\"errcode\":-1,\"errmsg\":\"system error\"}", &retry, &delay, &why) == 1);
    CHECK(retry == 1);
    free(why);
    CHECK(refused(&cfg, "{\"errcode\":45009,\"errmsg\":\"reach max api daily quota limit\"}", &retry, &delay, &why) == 1);
    CHECK(retry == 1);
    free(why);
    CHECK(refused(&cfg, "{\"errcode\":0,\"errmsg\":\"ok\"}", &retry, &delay, &why) == 0);
    CHECK(refused(&cfg, "{}", &retry, &delay, &why) == 0);
    CHECK(refused(&cfg, "not json", &retry, &delay, &why) == 0);
    CHECK(refused(&cfg, "{\"errcode\":40003,\"errmsg\":\"invalid openid\"}", &retry, &delay, &why) == 1);
    CHECK(retry == 0);
    free(why);

    /* the token endpoint refuses: the call fails (retried later), not a tight loop */
    pl_wechat_forget_tokens();
    f.answer = "{\"errcode\":40013,\"errmsg\":\"invalid appid\"}";
    CHECK(prepare_now(&f, http, &cfg, &err) == PL_ERR);
    CHECK(err && strstr(err, "40013"));
    free(err), err = NULL;
    CHECK(prepare(&cfg, http, &err) == PL_ERR);
    CHECK(f.requests == 5);
    free(err), err = NULL;

    /* without the app secret: refused before any fetch, naming the variable */
    pl_wechat_forget_tokens();
    unsetenv(SECRET_ENV);
    CHECK(prepare(&cfg, http, &err) == PL_ERR);
    CHECK(err && strstr(err, SECRET_ENV));
    free(err), err = NULL;
    setenv(SECRET_ENV, "app-secret", 1);

    pl_http_client_free(http);
    fake_stop(&f);
}

/* A 200 without a usable expires_in may hold the token: the error names
 * what is wrong and quotes nothing of the answer. */
TEST(token_answer_never_echoed_in_errors) {
    fake_token f = {0};
    fake_start(&f);
    pl_http_client *http = pl_http_client_new(f.base, NULL);
    pl_channel_config cfg = config();
    static const char *const answers[] = {
        "{\"access_token\":\"LEAKY-TOKEN\",\"expires_in\":\"7200\"}",
        "{\"access_token\":\"LEAKY-TOKEN\"}",
        "{\"access_token\":\"LEAKY-TOKEN\",\"expires_in\":7200.5}",
        "{\"access_token\":\"LEAKY-TOKEN\",\"expires_in\":0,\"errcode\":0}",
        "not json LEAKY-TOKEN",
        "{\"token\":\"LEAKY-TOKEN\"}",
    };
    for (size_t i = 0; i < sizeof answers / sizeof *answers; i++) {
        pl_wechat_forget_tokens();
        f.answer = answers[i];
        char *err = NULL;
        CHECK(prepare_now(&f, http, &cfg, &err) == PL_ERR);
        if (err && strstr(err, "LEAKY")) printf("#   answer %zu: %s\n", i, err);
        CHECK(err && !strstr(err, "LEAKY") && strstr(err, "stable_token"));
        free(err), err = NULL;
        /* nor the error the next attempts get, within the hold */
        CHECK(prepare(&cfg, http, &err) == PL_ERR);
        CHECK(err && !strstr(err, "LEAKY"));
        free(err);
        CHECK(authorized_url(&cfg) == NULL);
    }
    pl_http_client_free(http);
    fake_stop(&f);
}

/* A 40001 for a call that went with a token replaced since (its answer
 * came after another call's refusal had the token fetched again) keeps
 * the new token: the call is sent again with it at once. */
TEST(refusal_of_an_older_token_keeps_the_new_one) {
    fake_token f = {0};
    fake_start(&f);
    pl_http_client *http = pl_http_client_new(f.base, NULL);
    pl_channel_config cfg = config();
    char *err = NULL, *why = NULL;
    int retry;
    long delay;
    f.answer = "{\"access_token\":\"OLD\",\"expires_in\":7200}";
    CHECK(prepare_now(&f, http, &cfg, &err) == PL_OK);
    long old = credential; /* two calls go out with OLD */
    /* the first is refused: OLD is dropped, NEW fetched */
    CHECK(refused(&cfg, "{\"errcode\":40001,\"errmsg\":\"invalid credential\"}", &retry, &delay, &why) == 1);
    CHECK(retry == 1 && delay == 0);
    free(why);
    f.answer = "{\"access_token\":\"NEW\",\"expires_in\":7200}";
    CHECK(prepare_now(&f, http, &cfg, &err) == PL_OK);
    CHECK(credential != old);
    CHECK(f.requests == 2);
    /* the second one's refusal comes now: NEW stays */
    retry = 0, delay = -1, why = NULL;
    CHECK(pl_channel_wechat.refused(&cfg, old, 200, "{\"errcode\":40001,\"errmsg\":\"invalid credential\"}",
                                         &retry, &delay, &why) == 1);
    CHECK(retry == 1 && delay == 0);
    CHECK(why && strstr(why, "40001") && strstr(why, "replaced"));
    free(why);
    char *url = authorized_url(&cfg);
    CHECK(url && strstr(url, "access_token=NEW"));
    free(url);
    CHECK(prepare(&cfg, http, &err) == PL_OK);
    CHECK(f.requests == 2);
    /* a refusal of NEW itself drops it */
    CHECK(refused(&cfg, "{\"errcode\":42001,\"errmsg\":\"access_token expired\"}", &retry, &delay, &why) == 1);
    free(why);
    CHECK(authorized_url(&cfg) == NULL);
    pl_http_client_free(http);
    fake_stop(&f);
}

static int lookup_wechat(const char *bot, const char *channel, pl_channel_config *cfg, void *ud) {
    (void)ud;
    if (strcmp(bot, "barista") != 0 || strcmp(channel, "wechat") != 0) return 0;
    *cfg = config();
    return 1;
}

/* A message to send, stored as a commit stores it. */
static void store_call(pl_store *store, const char *content) {
    json_t *call = pl_channel_call("POST", "/cgi-bin/message/custom/send",
                                   json_pack("{s:s, s:s, s:{s:s}}", "touser", "oUser", "msgtype", "text", "text",
                                             "content", content));
    char *text = json_dumps(call, JSON_COMPACT), *err = NULL;
    int64_t id = 0;
    CHECK(pl_store_begin(store, &err) == PL_OK);
    CHECK(pl_store_outbox_add(store, "barista", "wechat", "oUser", text, pl_now_ms(), &id, &err) == PL_OK);
    CHECK(pl_store_commit(store, &err) == PL_OK);
    free(err);
    free(text);
    json_decref(call);
}

/* An outbox on http that takes the stored calls and waits for the token
 * (the fake holds its fetch). */
static pl_outbox *outbox_waiting(fake_token *f, pl_store *store, pl_http_client *http) {
    int held = f->held;
    char *err = NULL;
    f->hold = 1;
    pl_outbox *o = pl_outbox_new(f->base, store, http, lookup_wechat, NULL);
    CHECK(pl_outbox_resume(o, &err) == PL_OK);
    run_until(f, &f->held, held + 1);
    CHECK(f->held == held + 1);
    f->hold = 0;
    free(err);
    return o;
}

/* An outbox on http sends the stored call: the token fetched, the message
 * taken. */
static void outbox_sends(fake_token *f, pl_store *store, pl_http_client *http) {
    int sends = f->sends, requests = f->requests;
    char *err = NULL;
    pl_outbox *o = pl_outbox_new(f->base, store, http, lookup_wechat, NULL);
    CHECK(pl_outbox_resume(o, &err) == PL_OK);
    run_until(f, &f->sends, sends + 1);
    CHECK(!f->timed_out);
    CHECK(f->sends == sends + 1 && f->requests == requests + 1);
    /* and its answer is taken: nothing left to send */
    for (int i = 0; i < 1000 && pl_outbox_pending(o) > 0; i++) event_base_loop(f->base, EVLOOP_ONCE);
    CHECK(pl_outbox_pending(o) == 0);
    pl_outbox_free(o);
    free(err);
}

/* An app closes — its outbox, then its HTTP client, which drops the
 * transfers in flight without calling back — while a queue waits for the
 * token's fetch; another app in the same process then sends. */
TEST(outbox_freed_with_a_token_fetch_in_flight) {
    fake_token f = {0};
    fake_start(&f);
    f.answer = "{\"access_token\":\"AFTER\",\"expires_in\":7200}";
    pl_store *store = NULL;
    char *err = NULL;
    CHECK(pl_store_open(":memory:", PL_SYNC_NORMAL, &store, &err) == 0);
    /* the outbox goes, its client stays (as a new client may come at the
     * old one's address): the next outbox on it does not wait for the
     * fetch no one waits for any more */
    store_call(store, "first");
    pl_http_client *http = pl_http_client_new(f.base, NULL);
    pl_outbox_free(outbox_waiting(&f, store, http));
    outbox_sends(&f, store, http);
    pl_http_client_free(http);
    /* both go */
    pl_wechat_forget_tokens();
    store_call(store, "second");
    http = pl_http_client_new(f.base, NULL);
    pl_outbox_free(outbox_waiting(&f, store, http));
    pl_http_client_free(http);
    http = pl_http_client_new(f.base, NULL);
    outbox_sends(&f, store, http);
    pl_http_client_free(http);
    pl_store_close(store);
    free(err);
    fake_stop(&f);
}

TEST(rendered_calls_hold_no_secret) {
    json_t *calls = render("[{\"text\":\"Hi\",\"cards\":[" CARD_LATTE "]}]");
    char *dump = json_dumps(calls, 0);
    CHECK(dump && !strstr(dump, "app-secret") && !strstr(dump, "access_token") && !strstr(dump, DOC_TOKEN));
    free(dump);
    json_decref(calls);
}

int main(void) {
    pl_log_set_sink(NULL, NULL, 1);
    settings = json_pack("{s:s, s:s, s:s}", "token_env", TOKEN_ENV, "app_id_env", APP_ID_ENV, "app_secret_env",
                         SECRET_ENV);
    safe_settings = json_pack("{s:s, s:s, s:s, s:s}", "token_env", TOKEN_ENV, "app_id_env", APP_ID_ENV,
                              "app_secret_env", SECRET_ENV, "encoding_aes_key_env", AES_ENV);
    setenv(TOKEN_ENV, DOC_TOKEN, 1);
    setenv(APP_ID_ENV, "wxapp", 1);
    setenv(SECRET_ENV, "app-secret", 1);
    setenv(AES_ENV, SAMPLE_KEY, 1);
    RUN(adapter_is_registered);
    RUN(signature_documented_examples);
    RUN(digest_hex_joins_or_ends_parts);
    RUN(handshake_answers_echostr_of_the_documented_request);
    RUN(handshake_refusals);
    RUN(push_signature_refusals);
    RUN(plaintext_replay_with_another_body_is_refused);
    RUN(text_message);
    RUN(subscribe_and_click_events);
    RUN(other_events_are_acknowledged_without_a_turn);
    RUN(other_message_types_are_turns_with_their_facts);
    RUN(malformed_bodies_are_400_with_a_reason);
    RUN(hostile_xml_is_refused_unread);
    RUN(decrypts_the_documented_sample);
    RUN(encrypts_the_documented_sample);
    RUN(decrypt_refuses_what_is_not_the_layout);
    RUN(safe_mode_push_of_the_documented_sample);
    RUN(encrypted_push_to_a_bot_without_a_key_is_503);
    RUN(render_text_and_numbered_choices_across_replies);
    RUN(render_long_text_split_at_2048_bytes_on_character_boundaries);
    RUN(render_cards_as_news_articles_between_text);
    RUN(render_over_the_quota_turns_cards_into_lines);
    RUN(render_payment_link_as_an_anchor);
    RUN(render_image_as_news_or_link);
    RUN(render_without_a_recipient_fails);
    RUN(access_token_fetched_cached_and_refreshed_once);
    RUN(token_answer_never_echoed_in_errors);
    RUN(refusal_of_an_older_token_keeps_the_new_one);
    RUN(outbox_freed_with_a_token_fetch_in_flight);
    RUN(rendered_calls_hold_no_secret);
    json_decref(settings);
    json_decref(safe_settings);
    return check_done();
}
