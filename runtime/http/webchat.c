/* webchat: the widget's HTTP endpoints and the shoppers' event streams;
 * see webchat.h. The transcript is the stream's source of truth: a stream
 * sends the lines after the last one it sent, so reconnecting, reloading
 * and pushing all work the same way. */
#define _GNU_SOURCE
#include "webchat.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "assets.h"
#include "base/common.h"
#include "base/log.h"
#include "base/map.h"
#include "commerce/commerce.h"
#include "conn.h"
#include "reply.h"
#include "sse.h"

#define PING_SECONDS 25
#define REPLAY_PAGE 500

typedef struct stream {
    struct stream *next;
    struct pl_webchat *wc;
    pl_sse *sse;
    char *key; /* bot \x1f user */
    char *bot, *user;
    int64_t last_id;
    int reading; /* a page of lines is being read (pl_store_offload) */
    int again;   /* and more lines were committed meanwhile */
    int closed;  /* the client left (or a read failed and parley ended it) while a page was read: freed once it is */
    int ready;   /* "ready" was sent: the first catch-up is done */
} stream;

/* A page of a stream's lines, read off the loop. */
typedef struct {
    stream *st;
    int64_t after_id;
    json_t *lines;
    char *err;
} page_read;

/* A bot's allowance per shopper: a burst, then one more every refill_s. */
typedef struct {
    double burst, refill_s;
} allowance;

typedef struct {
    double tokens;
    int64_t at_ms;
    allowance allow; /* the bot's, when the bucket was last used */
} bucket;

struct pl_webchat {
    pl_app *app;
    pl_map *streams; /* key -> stream list */
    pl_map *buckets; /* key -> rate bucket */
    struct event *tick;
    size_t open;
};

static char *shopper_key(const char *bot, const char *user) { return pl_strdupf("%s\x1f%s", bot, user); }

/* --- origins (CORS) --------------------------------------------------------------- */

/* scheme://host[:port] of a URL, into buf. */
static void origin_of(const char *url, char *buf, size_t size) {
    const char *host = strstr(url, "://");
    const char *end = host ? strchr(host + 3, '/') : NULL;
    size_t len = end ? (size_t)(end - url) : strlen(url);
    snprintf(buf, size, "%.*s", (int)len, url);
}

/* Whether the request's Origin may use this bot's widget API; adds the CORS
 * headers when it may. No Origin (not a browser, or same-origin GET) is fine. */
static int origin_allowed(pl_webchat *wc, pl_bot *bot, struct evhttp_request *req) {
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    if (!origin) return 1;
    char own[256];
    origin_of(pl_commerce_public_base(pl_app_commerce(wc->app)), own, sizeof own);
    int ok = strcmp(origin, own) == 0;
    size_t i;
    json_t *allowed;
    json_array_foreach(json_object_get(json_object_get(pl_bot_manifest(bot), "webchat"), "origins"), i, allowed) {
        const char *a = json_string_value(allowed);
        if (a && (strcmp(a, "*") == 0 || strcmp(a, origin) == 0)) ok = 1;
    }
    if (ok) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Access-Control-Allow-Origin", origin);
        evhttp_add_header(h, "Access-Control-Expose-Headers", "Retry-After");
        evhttp_add_header(h, "Vary", "Origin");
    }
    return ok;
}

static void preflight(struct evhttp_request *req) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Access-Control-Allow-Methods", "GET, POST");
    evhttp_add_header(h, "Access-Control-Allow-Headers", "Content-Type, Last-Event-ID");
    evhttp_add_header(h, "Access-Control-Max-Age", "600");
    pl_reply_send(req, 204, "No Content", NULL);
}

/* --- the shopper's id and the rate limit -------------------------------------------- */

/* The widget makes ids of 32 random hex characters; anything of 8-128
 * letters, digits, - and _ is taken. */
static int valid_user(const char *user) {
    size_t n = user ? strlen(user) : 0;
    if (n < 8 || n > 128) return 0;
    for (const char *p = user; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') return 0;
    return 1;
}

/* webchat.rate_limit of the bot's manifest (bot.c checked its shape at
 * load), else PL_WEBCHAT_BURST and PL_WEBCHAT_REFILL_S. */
static allowance allowance_of(pl_bot *bot) {
    json_t *limit = json_object_get(json_object_get(pl_bot_manifest(bot), "webchat"), "rate_limit");
    json_t *burst = json_object_get(limit, "burst"), *refill = json_object_get(limit, "refill_seconds");
    return (allowance){json_is_integer(burst) ? (double)json_integer_value(burst) : PL_WEBCHAT_BURST,
                       json_is_number(refill) ? json_number_value(refill) : PL_WEBCHAT_REFILL_S};
}

/* A token bucket per shopper: the bot's burst at once, then one every
 * refill_s seconds. Returns 0 (and the seconds to wait) when the shopper
 * must slow down. */
static int take_token(pl_webchat *wc, pl_bot *bot, const char *key, int *wait_s) {
    allowance allow = allowance_of(bot);
    bucket *b = pl_map_get(wc->buckets, key);
    int64_t now = pl_now_ms();
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b) abort();
        *b = (bucket){allow.burst, now, allow};
        pl_map_put(wc->buckets, key, b);
    }
    b->allow = allow;
    b->tokens += (double)(now - b->at_ms) / 1000.0 / allow.refill_s;
    if (b->tokens > allow.burst) b->tokens = allow.burst;
    b->at_ms = now;
    if (b->tokens < 1.0) {
        *wait_s = (int)((1.0 - b->tokens) * allow.refill_s) + 1;
        return 0;
    }
    b->tokens -= 1.0;
    return 1;
}

/* 429 with Retry-After. */
static void too_many(struct evhttp_request *req, int wait_s, const char *what) {
    char retry[16];
    snprintf(retry, sizeof retry, "%d", wait_s);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", retry);
    pl_reply_error(req, 429, "%s; wait %d s", what, wait_s);
}

/* --- streams ---------------------------------------------------------------------------- */

static void stream_free(stream *st) {
    free(st->key);
    free(st->bot);
    free(st->user);
    free(st);
}

static void stream_catch_up(stream *st);

/* Once the lines before the stream opened are sent: the widget then knows
 * whether the conversation is empty (and may greet on open). No id, so a
 * browser's Last-Event-ID stays the last line's. */
static void stream_ready(stream *st) {
    char data[48];
    snprintf(data, sizeof data, "{\"last_id\":%lld}", (long long)st->last_id);
    pl_sse_event(st->sse, "ready", 0, data);
    st->ready = 1;
}

static void read_page(pl_store *store, void *ud) {
    page_read *p = ud;
    pl_session_key key = {p->st->bot, "webchat", p->st->user};
    pl_store_transcript_since(store, &key, p->after_id, REPLAY_PAGE, &p->lines, &p->err);
}

static void stream_unlink(stream *st);

static void page_read_done(void *ud) {
    page_read *p = ud;
    stream *st = p->st;
    st->reading = 0;
    size_t got = json_array_size(p->lines);
    if (p->err && !st->closed) {
        /* no page, no ready, and nothing would read again: the stream ends,
         * and the browser reconnects with its Last-Event-ID, which reads the
         * lines from there (and then says ready) */
        pl_error("webchat: %s/%s: reading the conversation failed, its stream is ended for the browser to "
                 "reconnect: %s", st->bot, st->user, p->err);
        stream_unlink(st);
        pl_sse_end(st->sse);
        st->closed = 1;
    } else if (p->err) {
        pl_error("webchat: %s", p->err);
    } else if (!st->closed) {
        size_t i;
        json_t *line;
        json_array_foreach(p->lines, i, line) {
            char *data = json_dumps(line, JSON_COMPACT);
            st->last_id = json_integer_value(json_object_get(line, "id"));
            pl_sse_event(st->sse, "line", st->last_id, data);
            free(data);
        }
        if (!st->ready && got < REPLAY_PAGE && !st->again) stream_ready(st);
    }
    json_decref(p->lines);
    free(p->err);
    free(p);
    if (st->closed) stream_free(st);
    else if (got == REPLAY_PAGE || st->again) stream_catch_up(st);
}

/* Sends the lines after the stream's last one, a page at a time, read off
 * the loop; lines committed while a page is read are read after it. */
static void stream_catch_up(stream *st) {
    if (st->reading) {
        st->again = 1;
        return;
    }
    st->reading = 1;
    st->again = 0;
    page_read *p = calloc(1, sizeof *p);
    if (!p) abort();
    *p = (page_read){.st = st, .after_id = st->last_id};
    pl_store_offload(pl_app_store(st->wc->app), read_page, page_read_done, p);
}

/* Takes st out of its shopper's streams: no line is sent to it any more. */
static void stream_unlink(stream *st) {
    pl_webchat *wc = st->wc;
    stream *head = pl_map_get(wc->streams, st->key), **link = &head;
    while (*link && *link != st) link = &(*link)->next;
    if (*link) *link = st->next;
    pl_map_put(wc->streams, st->key, head);
    wc->open--;
}

static void on_stream_closed(pl_sse *sse, void *ud) {
    (void)sse;
    stream *st = ud;
    stream_unlink(st);
    if (st->reading) st->closed = 1; /* freed once its page is read */
    else stream_free(st);
}

static int64_t resume_point(struct evhttp_request *req, struct evkeyvalq *params) {
    const char *from = evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");
    if (!from) from = evhttp_find_header(params, "after");
    return from ? strtoll(from, NULL, 10) : 0;
}

static void open_stream(pl_webchat *wc, struct evhttp_request *req, pl_bot *bot, struct evkeyvalq *params) {
    const char *user = evhttp_find_header(params, "user");
    if (!valid_user(user)) {
        pl_reply_error(req, 400, "give ?user=ID (8-128 letters, digits, - or _)");
        return;
    }
    char *key = shopper_key(pl_bot_name(bot), user);
    int open = 0, wait_s = 0;
    for (stream *other = pl_map_get(wc->streams, key); other; other = other->next) open++;
    int ok = open < PL_WEBCHAT_STREAMS_PER_SHOPPER && take_token(wc, bot, key, &wait_s);
    free(key);
    if (!ok) {
        if (wait_s) too_many(req, wait_s, "too many reconnections");
        else too_many(req, 5, "too many chat windows open for this shopper");
        return;
    }
    stream *st = calloc(1, sizeof *st);
    if (!st) abort();
    st->wc = wc;
    st->bot = pl_strdup(pl_bot_name(bot));
    st->user = pl_strdup(user);
    st->key = shopper_key(st->bot, user);
    st->last_id = resume_point(req, params);
    st->sse = pl_sse_open(req, on_stream_closed, st);
    st->next = pl_map_get(wc->streams, st->key);
    pl_map_put(wc->streams, st->key, st);
    wc->open++;
    stream_catch_up(st);
}

void pl_webchat_committed(pl_webchat *wc, const pl_session_key *key) {
    if (strcmp(key->channel, "webchat") != 0) return;
    char *k = shopper_key(key->bot, key->user);
    for (stream *st = pl_map_get(wc->streams, k); st; st = st->next) stream_catch_up(st);
    free(k);
}

size_t pl_webchat_streams(const pl_webchat *wc) { return wc->open; }

/* --- messages ------------------------------------------------------------------------------ */

typedef struct {
    struct evhttp_request *req;
} waiting;

static void on_gone(void *arg) {
    ((waiting *)arg)->req = NULL;
}

static void accepted(int status, const pl_message *msg, const pl_turn_result *result, void *ud) {
    (void)msg;
    (void)result;
    waiting *w = ud;
    if (w->req) {
        pl_conn_forget(w->req);
        if (status == 200) pl_reply_json(w->req, 202, json_pack("{s:b}", "accepted", 1));
        else pl_reply_unavailable(w->req, result);
    }
    free(w);
}

/* A message with the widget's id was recorded (200; also when that id was
 * recorded before), or nothing could be stored (503). */
static void recorded(int status, void *ud) { accepted(status, NULL, NULL, ud); }

/* Whether id may be the widget's id for a message (8-64 letters, digits, -
 * or _), with which posting the message again is harmless. */
static int valid_message_id(const char *id) {
    size_t n = strlen(id);
    if (n < 8 || n > 64) return 0;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') return 0;
    return 1;
}

/* msg as a message event for the pipeline's record (channel.h), its inbox
 * id made of the shopper and the widget's id for it: a message posted
 * again (its page left while the POST was in flight, and the next page
 * sent it from the outbox it kept) is recorded once and runs once. New. */
static json_t *message_event(const pl_message *msg, const char *id) {
    char *inbox_id = pl_strdupf("%s:%s", msg->user, id);
    json_t *ev = json_pack("{s:s, s:s, s:s}", "kind", "message", "id", inbox_id, "user", msg->user);
    free(inbox_id);
    if (msg->text) json_object_set_new(ev, "text", json_string(msg->text));
    if (msg->payload) json_object_set_new(ev, "payload", json_string(msg->payload));
    if (msg->locale) json_object_set_new(ev, "locale", json_string(msg->locale));
    if (msg->channel_info) json_object_set(ev, "info", msg->channel_info);
    if (msg->event) json_object_set(ev, "event", msg->event);
    json_object_set_new(ev, "received_at", json_integer(msg->received_at));
    return ev;
}

/* Whether the bot greets a shopper who opens the panel (webchat.greet_on_open,
 * on unless false). */
static int greets_on_open(pl_bot *bot) {
    return !json_is_false(json_object_get(json_object_get(pl_bot_manifest(bot), "webchat"), "greet_on_open"));
}

/* url is an absolute http(s) URL with a host, of printable ASCII (what a
 * browser's location.href is): nothing else is shown to agents as a link. */
static int is_web_url(const char *url) {
    size_t scheme = strncasecmp(url, "https://", 8) == 0 ? 8 : strncasecmp(url, "http://", 7) == 0 ? 7 : 0;
    if (!scheme || !url[scheme] || strchr("/?#", url[scheme])) return 0;
    for (const unsigned char *c = (const unsigned char *)url; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f) return 0;
    return 1;
}

/* The length of a character to leave out of a page's title at s (UTF-8,
 * valid: jansson's): C1 controls, and the marks and overrides of
 * bidirectional text (U+061C, U+200E-F, U+202A-E, U+2066-9), which would
 * turn the console's text around; else 0. */
static size_t unshown_at(const unsigned char *s) {
    if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) return 2;
    if (s[0] == 0xd8 && s[1] == 0x9c) return 2;
    if (s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0x8e || s[2] == 0x8f || (s[2] >= 0xaa && s[2] <= 0xae))) return 3;
    if (s[0] == 0xe2 && s[1] == 0x81 && s[2] >= 0xa6 && s[2] <= 0xa9) return 3;
    return 0;
}

/* title without those characters, its control characters (a line break
 * ...) as spaces, trimmed: a new string. */
static char *shown_title(const char *title) {
    char *out = pl_strdup(title), *o = out;
    for (const unsigned char *c = (const unsigned char *)title; *c;) {
        size_t skip = unshown_at(c);
        if (skip) {
            c += skip;
        } else {
            *o++ = *c < 0x20 || *c == 0x7f ? ' ' : (char)*c;
            c++;
        }
    }
    while (o > out && o[-1] == ' ') o--;
    *o = 0;
    char *start = out + strspn(out, " ");
    memmove(out, start, strlen(start) + 1);
    return out;
}

/* The page the shopper is on ({url, title}, optional), for msg.channel
 * (page_url, page_title) and the agent console: bounded, or NULL. A url
 * that is not an absolute http(s) URL drops the page (the message still
 * goes through); the title loses control and bidi override characters. */
static json_t *page_info(const json_t *page, const char **why) {
    const char *url = json_string_value(json_object_get(page, "url"));
    const char *title = json_string_value(json_object_get(page, "title"));
    if (!page) return NULL;
    if (!url || strlen(url) > 2048 || (title && strlen(title) > 300)) {
        *why = "\"page\" must be {\"url\" (up to 2048 bytes), \"title\" (up to 300)}";
        return NULL;
    }
    if (!is_web_url(url)) return NULL;
    char *shown = shown_title(title ? title : "");
    json_t *info = json_pack("{s:s, s:s}", "page_url", url, "page_title", shown);
    free(shown);
    return info;
}

/* A page event {type: "page", url, title, trigger}, only these, bounded
 * (url a web URL, title as shown to agents); or
 * the panel's opening {type: "open"} where the bot greets on open. */
static json_t *widget_event(pl_bot *bot, const json_t *ev, const char **why) {
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *url = json_string_value(json_object_get(ev, "url"));
    const char *title = json_string_value(json_object_get(ev, "title"));
    const char *trigger = json_string_value(json_object_get(ev, "trigger"));
    if (type && strcmp(type, "open") == 0) {
        if (greets_on_open(bot)) return json_pack("{s:s}", "type", "open");
        *why = "this bot does not greet on open (webchat.greet_on_open is false in bot.json)";
        return NULL;
    }
    if (!type || strcmp(type, "page") != 0)
        *why = "\"event\" must be {\"type\": \"page\", \"url\", \"title\", \"trigger\"} or {\"type\": \"open\"}";
    else if (!url || strlen(url) > 2048 || (title && strlen(title) > 300)) *why = "the page's url or title is missing or too long";
    else if (!is_web_url(url)) *why = "the page's url must be an absolute http:// or https:// URL";
    if (*why) return NULL;
    char *shown = shown_title(title ? title : "");
    json_t *event = json_pack("{s:s, s:s, s:s, s:s}", "type", "page", "url", url, "title", shown, "trigger",
                              trigger && strlen(trigger) < 20 ? trigger : "page");
    free(shown);
    return event;
}

static pl_message *parse_message(pl_bot *bot, const json_t *body, const char **why) {
    const char *user = json_string_value(json_object_get(body, "user"));
    const char *text = json_string_value(json_object_get(body, "text"));
    const char *payload = json_string_value(json_object_get(body, "payload"));
    const char *locale = json_string_value(json_object_get(body, "locale"));
    json_t *ev = json_object_get(body, "event");
    json_t *event = NULL;
    if (!valid_user(user)) *why = "\"user\" must be 8-128 letters, digits, - or _";
    else if (text && strlen(text) > 4096) *why = "\"text\" is longer than 4096 bytes";
    else if (payload && strlen(payload) > 1024) *why = "\"payload\" is longer than 1024 bytes";
    else if (locale && strlen(locale) > 35) *why = "\"locale\" is too long";
    else if (ev && (text || payload)) *why = "send \"text\" or \"payload\", or an \"event\" alone";
    else if (ev && !(event = widget_event(bot, ev, why))) return NULL;
    else if (!text && !payload && !ev) *why = "send \"text\", \"payload\" or \"event\"";
    else if (json_object_get(body, "id") && !(json_is_string(json_object_get(body, "id")) &&
                                              valid_message_id(json_string_value(json_object_get(body, "id")))))
        *why = "\"id\" (the message's own, for sending it again safely) must be 8-64 letters, digits, - or _";
    json_t *info = *why ? NULL : page_info(json_object_get(body, "page"), why);
    if (*why) {
        json_decref(event);
        return NULL;
    }
    pl_message *msg = pl_message_new(pl_bot_name(bot), "webchat", user);
    msg->channel_info = info;
    msg->text = text ? pl_strdup(text) : NULL;
    msg->payload = payload ? pl_strdup(payload) : NULL;
    msg->locale = locale ? pl_strdup(locale) : NULL;
    msg->event = event;
    return msg;
}

static void take_message(pl_webchat *wc, struct evhttp_request *req, pl_bot *bot) {
    char *reason = NULL;
    json_t *body = pl_read_json_body(req, &reason);
    if (!body) {
        pl_reply_error(req, 400, "%s", reason);
        free(reason);
        return;
    }
    const char *why = NULL;
    pl_message *msg = parse_message(bot, body, &why);
    char *id = msg && json_object_get(body, "id") ? pl_strdup(json_string_value(json_object_get(body, "id"))) : NULL;
    json_decref(body);
    if (!msg) {
        pl_reply_error(req, 400, "%s", why);
        return;
    }
    char *key = shopper_key(pl_bot_name(bot), msg->user);
    int wait_s = 0;
    int ok = take_token(wc, bot, key, &wait_s);
    free(key);
    if (!ok) {
        too_many(req, wait_s, "too many messages");
        pl_message_free(msg);
        free(id);
        return;
    }
    waiting *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->req = req;
    pl_conn_on_gone(req, on_gone, w);
    if (id) {
        pl_pipeline_record(pl_app_pipeline(wc->app), bot, "webchat", json_pack("[o]", message_event(msg, id)),
                           recorded, w);
        pl_message_free(msg);
        free(id);
    } else {
        pl_pipeline_post(pl_app_pipeline(wc->app), bot, msg, accepted, w);
    }
}

/* --- the widget and its configuration ------------------------------------------------------------ */

static json_t *or_null(json_t *v) { return v ? json_incref(v) : json_null(); }

static void serve_config(struct evhttp_request *req, pl_bot *bot) {
    const json_t *m = pl_bot_manifest(bot);
    json_t *w = json_object_get(m, "webchat");
    json_t *title = json_object_get(w, "title") ? json_object_get(w, "title") : json_object_get(m, "title");
    json_t *locales = json_object_get(m, "locales");
    json_t *config = json_pack("{s:s, s:O, s:o, s:O, s:O, s:{s:o, s:o, s:b}, s:o}", "bot", pl_bot_name(bot), "title",
                               title ? title : json_object_get(m, "name"), "avatar",
                               or_null(json_object_get(w, "avatar") ? json_object_get(w, "avatar") : json_object_get(m, "avatar")),
                               "locales", locales, "default_locale", json_array_get(locales, 0), "greet",
                               "after_seconds", or_null(json_object_get(w, "greet_after_seconds")), "pages",
                               json_object_get(w, "greet_pages") ? json_incref(json_object_get(w, "greet_pages")) : json_array(),
                               "on_open", greets_on_open(bot), "accent", or_null(json_object_get(w, "accent")));
    pl_reply_json(req, 200, config);
}

/* --- routing ----------------------------------------------------------------------------------------------- */

static void webchat_endpoint(pl_webchat *wc, struct evhttp_request *req, pl_bot *bot, const char *what) {
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (!origin_allowed(wc, bot, req)) {
        pl_reply_error(req, 403, "this page's origin may not use bot '%s' (webchat.origins in bot.json)", pl_bot_name(bot));
        return;
    }
    if (cmd == EVHTTP_REQ_OPTIONS) {
        preflight(req);
    } else if (strcmp(what, "config") == 0) {
        if (cmd == EVHTTP_REQ_GET) serve_config(req, bot);
        else pl_reply_405(req, "GET");
    } else if (strcmp(what, "messages") == 0) {
        if (cmd == EVHTTP_REQ_POST) take_message(wc, req, bot);
        else pl_reply_405(req, "POST");
    } else if (strcmp(what, "events") == 0 && cmd == EVHTTP_REQ_GET) {
        struct evkeyvalq params;
        pl_request_query(req, &params);
        open_stream(wc, req, bot, &params);
        evhttp_clear_headers(&params);
    } else if (strcmp(what, "events") == 0) {
        pl_reply_405(req, "GET");
    } else {
        pl_reply_error(req, 404, "no such endpoint");
    }
}

int pl_webchat_route(pl_webchat *wc, struct evhttp_request *req, pl_bot *bot, char **seg, int n) {
    if (n == 4 && strcmp(seg[3], "widget.js") == 0) {
        if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) pl_asset_reply_script(req, "widget.js", "the widget");
        else pl_reply_405(req, "GET");
        return 1;
    }
    if (n == 5 && strcmp(seg[3], "webchat") == 0) {
        webchat_endpoint(wc, req, bot, seg[4]);
        return 1;
    }
    return 0;
}

/* --- housekeeping --------------------------------------------------------------------------------------------- */

static void ping_list(const char *key, void *value, void *ud) {
    (void)key;
    (void)ud;
    for (stream *st = value; st; st = st->next) pl_sse_comment(st->sse, "ping");
}

/* A bucket that has filled up again is forgotten. */
static void forget_full(const char *key, void *value, void *ud) {
    pl_webchat *wc = ud;
    bucket *b = value;
    if ((double)(pl_now_ms() - b->at_ms) / 1000.0 / b->allow.refill_s + b->tokens >= b->allow.burst) {
        pl_map_put(wc->buckets, key, NULL);
        free(b);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_webchat *wc = arg;
    pl_map_each(wc->streams, ping_list, wc);
    pl_map_each(wc->buckets, forget_full, wc);
}

pl_webchat *pl_webchat_new(pl_app *app) {
    pl_webchat *wc = calloc(1, sizeof *wc);
    if (!wc) abort();
    wc->app = app;
    wc->streams = pl_map_new();
    wc->buckets = pl_map_new();
    wc->tick = event_new(pl_app_base(app), -1, EV_PERSIST, on_tick, wc);
    struct timeval every = {PING_SECONDS, 0};
    event_add(wc->tick, &every);
    return wc;
}

static void end_list(const char *key, void *value, void *ud) {
    (void)key;
    (void)ud;
    for (stream *st = value, *next; st; st = next) {
        next = st->next;
        pl_sse_end(st->sse);
        stream_free(st);
    }
}

static void free_bucket(const char *key, void *value, void *ud) {
    (void)key;
    (void)ud;
    free(value);
}

void pl_webchat_free(pl_webchat *wc) {
    if (!wc) return;
    event_free(wc->tick);
    pl_map_each(wc->streams, end_list, wc);
    pl_map_each(wc->buckets, free_bucket, wc);
    pl_map_free(wc->streams);
    pl_map_free(wc->buckets);
    free(wc);
}
