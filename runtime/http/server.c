/* server: routes and handlers of the HTTP API; see server.h.
 * Owns the evhttp instance and the requests waiting for their commit. */
#define _GNU_SOURCE
#include "server.h"
#include "agent.h"
#include "analytics_api.h"
#include "conn.h"
#include "health.h"
#include "metrics_http.h"
#include "reply.h"
#include "store_reply.h"
#include "server_commerce.h"
#include "shoppers.h"
#include "sse.h"
#include "test_reads.h"
#include "webchat.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "base/common.h"
#include "base/log.h"
#include "base/map.h"
#include "base/metrics.h"
#include "channels/channel.h"
#include "rest.h"
#include "sandbox/json_text.h"

struct pl_server {
    pl_app *app;
    struct evhttp *http;
    struct evhttp_bound_socket *socket;
    int port;
    struct pl_webchat *webchat;
    struct pl_agents *agents;
    struct pl_conns *conns;
    pl_health *health;
    pl_metrics_http *metrics;
    pl_map *payloads; /* "bot\x1fkey" -> a long choice payload read from the store (the map never changes a key's) */
    size_t files_max_body; /* the body limit of a webhook that takes files (mail with attachments) */
};

#define MAX_SEGMENTS 8

/* Webhooks refused for a bad signature or secret (the adapter's 401 or
 * 403), by bot and channel. */
static pl_metric *verification_failures;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void make_metrics(void) {
    verification_failures = pl_metric_counter(
        "parley_webhook_verification_failures_total",
        "Platform webhooks refused because their signature or secret did not verify", "bot,channel");
}

/* A request waiting for its turn's commit. req becomes NULL if the client
 * goes away first. */
typedef struct {
    struct evhttp_request *req;
    pl_server *server;
} waiting;

/* --- request helpers --------------------------------------------------------- */

/* A request path's segments, decoded (evhttp_uridecode's way: %XX, no
 * '+'), in one buffer: a path of a few short segments is split with no
 * allocation at all. seg[i] are borrowed from it until segments_free. */
typedef struct {
    char *seg[MAX_SEGMENTS];
    char *heap; /* the decoded text, when it is too long for on_stack */
    char on_stack[256];
} segments;

static int hex_digit(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..len) to out as evhttp_uridecode(s, 0, NULL) does (a '%'
 * with two hex digits after it within s is their byte); returns the end. */
static char *uri_decode(const char *s, size_t len, char *out) {
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hex_digit((unsigned char)s[i + 1])) >= 0 &&
            (lo = hex_digit((unsigned char)s[i + 2])) >= 0) {
            *out++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *out++ = s[i];
        }
    }
    return out;
}

/* Splits a path into decoded segments (empty ones skipped, as strtok
 * does); returns their count, or -1 for no path or more than MAX_SEGMENTS. */
static int split_path_text(const char *path, segments *g) {
    memset(g->seg, 0, sizeof g->seg); /* the segments past the last are NULL */
    g->heap = NULL;
    if (!path) return -1;
    size_t len = strlen(path);
    /* each segment decodes to no more than its text, and its NUL takes the
     * place of the '/' after it (the last one's, of the path's NUL) */
    char *out = len < sizeof g->on_stack ? g->on_stack : (g->heap = malloc(len + 1));
    if (!out) abort();
    int n = 0;
    for (const char *p = path; *p;) {
        size_t slash = strspn(p, "/"), run = strcspn(p + slash, "/");
        p += slash;
        if (!run) break;
        if (n == MAX_SEGMENTS) return -1; /* too many: nothing is returned */
        g->seg[n++] = out;
        out = uri_decode(p, run, out);
        *out++ = '\0';
        p += run;
    }
    return n;
}

static void segments_free(segments *g) { free(g->heap); }

/* The body limit of a POST to path: the webhook of a channel whose
 * platform posts the files shoppers send (pl_channel_adapter.takes_files:
 * email), of a bot that has the channel on, takes them (up to
 * files_max_body); every other route PL_MAX_BODY. conn.c asks as the
 * request line comes in (pl_conn_body_limit_fn: 0 for "the ordinary one"),
 * on_request once the body is in. */
static size_t route_body_limit(pl_server *s, const char *path) {
    /* every POST asks: the others (a message to the HTTP API) go no further */
    if (!path || strncmp(path, "/v1/bots/", 9) != 0 || !strstr(path, "/channels/")) return 0;
    segments g;
    int n = split_path_text(path, &g);
    char **seg = g.seg;
    size_t limit = 0;
    const pl_channel_adapter *adapter = n == 5 ? pl_channel_find(seg[4]) : NULL;
    if (adapter && adapter->takes_files && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "bots") == 0 &&
        strcmp(seg[3], "channels") == 0) {
        pl_bot *bot = pl_app_find_bot(s->app, seg[2]);
        if (bot && pl_bot_channel_settings(bot, seg[4])) limit = s->files_max_body;
    }
    segments_free(&g);
    return limit;
}

static size_t body_limit(const char *path, void *arg) { return route_body_limit(arg, path); }

/* --- POST /v1/bots/{bot}/messages -------------------------------------------- */

static void on_client_gone(void *arg) {
    waiting *w = arg;
    w->req = NULL;
}

/* The request waits for its commit; a client that leaves first is noted. */
static waiting *wait_for_commit(pl_server *s, struct evhttp_request *req) {
    waiting *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->req = req;
    w->server = s;
    pl_conn_on_gone(req, on_client_gone, w);
    return w;
}

/* {"user": ..., "replies": ...} from the replies already dumped once. */
static void send_replies(struct evhttp_request *req, const char *user, const char *replies_text) {
    pl_json_text user_text = {0};
    int bad = 0;
    if (!pl_json_text_string(&user_text, user, strlen(user), &bad)) {
        pl_json_text_discard(&user_text);
        pl_reply_error(req, 500, "the answer could not be written");
        return;
    }
    /* pieces, not a format (the replies can be long), copied into one
     * reservation of the request's own output buffer */
    static const char head[] = "{\"user\":", middle[] = ",\"replies\":", tail[] = "}\n";
    size_t replies_len = strlen(replies_text);
    size_t len = sizeof head - 1 + user_text.len + sizeof middle - 1 + replies_len + sizeof tail - 1;
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    struct evbuffer_iovec room;
    if (evbuffer_reserve_space(out, (ev_ssize_t)len, &room, 1) != 1) abort();
    char *p = room.iov_base;
    p = mempcpy(p, head, sizeof head - 1);
    p = mempcpy(p, user_text.text, user_text.len);
    p = mempcpy(p, middle, sizeof middle - 1);
    p = mempcpy(p, replies_text, replies_len);
    memcpy(p, tail, sizeof tail - 1);
    room.iov_len = len;
    evbuffer_commit_space(out, &room, 1);
    pl_json_text_discard(&user_text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json; charset=utf-8");
    pl_reply_send(req, 200, NULL, out);
}

static void deliver_rest(int status, const pl_message *msg, const pl_turn_result *result, void *ud) {
    waiting *w = ud;
    if (w->req) {
        pl_conn_forget(w->req);
        if (status == 200) send_replies(w->req, msg->user, result->replies_text);
        else pl_reply_unavailable(w->req, result);
    }
    free(w);
}

static void handle_message(pl_server *s, struct evhttp_request *req, pl_bot *bot) {
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        pl_reply_405(req, "POST");
        return;
    }
    char *why = NULL;
    json_t *body = pl_read_json_body(req, &why);
    if (!body) {
        pl_reply_error(req, 400, "%s", why);
        free(why);
        return;
    }
    pl_message *msg = pl_rest_message(pl_bot_name(bot), body, &why);
    json_decref(body);
    if (!msg) {
        pl_reply_error(req, 400, "%s", why);
        free(why);
        return;
    }
    waiting *w = wait_for_commit(s, req);
    pl_pipeline_post(pl_app_pipeline(s->app), bot, msg, deliver_rest, w);
}

/* --- admin: /v1/bots/{bot}/sessions|shoppers/{channel}/{user} ------------------- */

static int admin_allowed(struct evhttp_request *req) {
    return pl_bearer_allowed(req, getenv("PARLEY_ADMIN_TOKEN"), "PARLEY_ADMIN_TOKEN", "admin API");
}

static void deliver_erase(int status, const pl_message *msg, const pl_turn_result *result, void *ud) {
    (void)result;
    waiting *w = ud;
    if (w->req) {
        pl_conn_forget(w->req);
        if (status == 200)
            pl_reply_json(w->req, 200, json_pack("{s:s, s:s, s:s, s:b}", "bot", msg->bot, "channel",
                                              msg->channel, "user", msg->user, "erased", 1));
        else if (status == 404)
            pl_reply_error(w->req, 404, "nothing is stored for this bot, channel and user");
        else
            pl_reply_error(w->req, 503, "the session could not be erased; please retry");
    }
    free(w);
}

typedef struct {
    char *bot, *channel, *user;
    char *state;
    int failed;
} session_read;

static void read_session(pl_store *store, void *ud) {
    session_read *r = ud;
    pl_session_key key = {r->bot, r->channel, r->user};
    char *err = NULL;
    if (pl_store_session_get(store, &key, &r->state, &err) != PL_OK) {
        pl_error("%s", err);
        r->failed = 1;
    }
    free(err);
}

static void answer_session(struct evhttp_request *req, void *ud) {
    session_read *r = ud;
    json_t *session = r->state ? json_loads(r->state, 0, NULL) : NULL;
    if (!req) {
        json_decref(session);
    } else if (r->failed) {
        pl_reply_error(req, 503, "the store is unavailable");
    } else if (!session) {
        pl_reply_error(req, 404, "no session for this bot, channel and user");
    } else {
        json_object_set_new(session, "bot", json_string(r->bot));
        json_object_set_new(session, "channel", json_string(r->channel));
        json_object_set_new(session, "user", json_string(r->user));
        pl_reply_json(req, 200, session);
    }
    free(r->bot);
    free(r->channel);
    free(r->user);
    free(r->state);
    free(r);
}

static void get_session(pl_server *s, struct evhttp_request *req, pl_bot *bot,
                        const char *channel, const char *user) {
    session_read *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->bot = pl_strdup(pl_bot_name(bot));
    r->channel = pl_strdup(channel);
    r->user = pl_strdup(user);
    pl_reply_after_store(req, pl_app_store(s->app), read_session, answer_session, r);
}

/* /sessions/{channel}/{user} (GET: the session) and /shoppers/{channel}/{user}
 * (GET: everything stored, shoppers.c); DELETE on either erases the
 * shopper, queued behind their messages in flight. A channel of parley's
 * own (its system jobs') is no shopper's: never shown, never erased. */
static void handle_session(pl_server *s, struct evhttp_request *req, pl_bot *bot, int whole,
                           const char *channel, const char *user) {
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_DELETE) {
        pl_reply_405(req, "GET, DELETE");
        return;
    }
    if (!admin_allowed(req)) return;
    if (PL_STORE_IS_SYSTEM_CHANNEL(channel)) {
        pl_reply_error(req, 400, "channels whose name begins with '_' are parley's own, never a shopper's");
        return;
    }
    if (cmd == EVHTTP_REQ_GET) {
        if (whole) pl_shopper_export(s->app, req, bot, channel, user);
        else get_session(s, req, bot, channel, user);
        return;
    }
    waiting *w = wait_for_commit(s, req);
    pl_pipeline_erase(pl_app_pipeline(s->app), bot, channel, user, deliver_erase, w);
}

/* --- /v1/bots/{bot}/channels/{channel}: platform webhooks --------------------- */

typedef struct {
    struct evhttp_request *req;
    pl_inbound inbound;
    pl_channel_config cfg;
    const pl_channel_adapter *adapter;
    char *channel;
    json_t *settings; /* a copy: a reload may replace the manifest meanwhile */
} webhook_wait;

static void webhook_wait_free(webhook_wait *w) {
    pl_inbound_clear(&w->inbound);
    json_decref(w->settings);
    free(w->channel);
    free(w);
}

static void on_webhook_gone(void *arg) {
    ((webhook_wait *)arg)->req = NULL;
}

/* The platform is answered once its events are durably recorded. */
static void on_recorded(int status, void *ud) {
    webhook_wait *w = ud;
    if (w->req) {
        pl_conn_forget(w->req);
        if (status == 200) pl_reply_text(w->req, w->inbound.status, w->inbound.answer, w->inbound.answer_type);
        else pl_reply_error(w->req, 503, "the message could not be stored; please retry");
    }
    webhook_wait_free(w);
}

/* A synchronous channel (voice) is answered with the rendered replies. */
static void deliver_sync(int status, const pl_message *msg, const pl_turn_result *result, void *ud) {
    webhook_wait *w = ud;
    if (w->req) {
        pl_conn_forget(w->req);
        char *body = NULL, *err = NULL;
        const char *type = NULL;
        pl_outbound to = {.user = msg->user, .info = msg->channel_info, .locale = result->locale,
                          .done = result->done};
        if (status != 200) pl_reply_unavailable(w->req, result);
        else if (w->adapter->answer(&w->cfg, &to, pl_turn_replies(result), &body, &type, &err) != PL_OK) {
            pl_error("[%s] %s/%s: cannot render the answer: %s", msg->bot, msg->channel, msg->user, err);
            pl_reply_error(w->req, 500, "the answer could not be rendered");
        } else {
            pl_reply_text(w->req, 200, body, type);
        }
        free(body);
        free(err);
    }
    webhook_wait_free(w);
}

static const char *webhook_header(const void *ctx, const char *name) {
    return evhttp_find_header((struct evkeyvalq *)ctx, name);
}

/* Long choice payloads the outbox stored under a key (pl_webhook.long_payload).
 * Where the store answers later (a database server), a webhook that names
 * keys not yet read is parsed, the keys are read off the loop, and the
 * webhook is parsed again with them (retry_webhook); what was read stays in
 * a cache, since a key always names the same payload. */
typedef struct {
    pl_server *server;
    pl_store *store;
    const char *bot;
    const json_t *asked; /* keys read for this request already (a re-run's) */
    json_t *missing;     /* keys to read before a re-run */
} payload_lookup;

#define PAYLOAD_CACHE_MAX 4096

static void free_cached(const char *key, void *value, void *ud) {
    (void)key;
    (void)ud;
    free(value);
}

static void remember_payload(pl_server *s, const char *bot, const char *key, const char *payload) {
    if (pl_map_count(s->payloads) >= PAYLOAD_CACHE_MAX) {
        pl_map_each(s->payloads, free_cached, NULL);
        pl_map_free(s->payloads);
        s->payloads = pl_map_new();
    }
    char *k = pl_strdupf("%s\x1f%s", bot, key);
    free(pl_map_put(s->payloads, k, pl_strdup(payload)));
    free(k);
}

/* The payload stored under key (new), or NULL (logged when the store fails). */
static char *stored_payload(pl_store *store, const char *bot, const char *key) {
    char *payload = NULL, *err = NULL;
    if (pl_store_payload_get(store, bot, key, &payload, &err) != PL_OK) {
        pl_error("[%s] cannot look up a choice payload: %s", bot, err);
        free(err);
    }
    return payload;
}

static int was_asked(const json_t *asked, const char *key) {
    size_t i;
    json_t *k;
    json_array_foreach(asked, i, k) if (strcmp(json_string_value(k), key) == 0) return 1;
    return 0;
}

static char *long_payload(const void *arg, const char *key) {
    const payload_lookup *p = arg;
    char *k = pl_strdupf("%s\x1f%s", p->bot, key);
    const char *cached = pl_map_get(p->server->payloads, k);
    free(k);
    if (cached) return pl_strdup(cached);
    if (pl_store_offload_later(p->store)) {
        /* an unknown key arrives as it is, once it was looked for */
        if (!was_asked(p->asked, key)) json_array_append_new(p->missing, json_string(key));
        return NULL;
    }
    char *payload = stored_payload(p->store, p->bot, key);
    if (payload) remember_payload(p->server, p->bot, key, payload);
    return payload;
}

/* The URL the platform called, as it signed it: the channel's public_url
 * when set (parley behind a proxy), else rebuilt from the Host header. */
static char *public_url(struct evhttp_request *req, const pl_channel_config *cfg) {
    const char *configured = pl_channel_setting(cfg, "public_url");
    if (configured) return pl_strdup(configured);
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    return pl_strdupf("http://%s%s", host ? host : "localhost", evhttp_request_get_uri(req));
}

static void start_sync(pl_server *s, pl_bot *bot, webhook_wait *w) {
    json_t *event = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(w->inbound.events, i, e) {
        const char *kind = json_string_value(json_object_get(e, "kind"));
        if (kind && strcmp(kind, "message") == 0) event = e;
    }
    if (!event) {
        pl_reply_text(w->req, w->inbound.status, w->inbound.answer, w->inbound.answer_type);
        webhook_wait_free(w);
        return;
    }
    pl_conn_on_gone(w->req, on_webhook_gone, w);
    pl_message *msg = pl_message_from_event(pl_bot_name(bot), w->channel, event, 0);
    pl_pipeline_post(pl_app_pipeline(s->app), bot, msg, deliver_sync, w);
}

/* A webhook whose adapter fetches something first (Alexa's certificate
 * chain): handle_channel runs again, from the start, when the fetch is
 * over. req becomes NULL if the platform hangs up meanwhile. */
typedef struct {
    struct evhttp_request *req;
    pl_server *server;
    pl_bot *bot;
    char *channel;
    json_t *asked;   /* long payload keys read for it */
    json_t *found;   /* key -> payload, as read off the loop */
} webhook_retry;

static void on_retry_gone(void *arg) {
    ((webhook_retry *)arg)->req = NULL;
}

static void handle_channel(pl_server *s, struct evhttp_request *req, pl_bot *bot, const char *name,
                           const json_t *asked);

/* pl_webhook.again: called once, on the loop. */
static void retry_webhook(void *arg) {
    webhook_retry *r = arg;
    if (r->req) {
        pl_conn_forget(r->req);
        handle_channel(r->server, r->req, r->bot, r->channel, r->asked);
    }
    json_decref(r->asked);
    json_decref(r->found);
    free(r->channel);
    free(r);
}

static void read_payloads(pl_store *store, void *ud) {
    webhook_retry *r = ud;
    size_t i;
    json_t *key;
    json_array_foreach(r->asked, i, key) {
        char *payload = stored_payload(store, pl_bot_name(r->bot), json_string_value(key));
        if (payload) json_object_set_new(r->found, json_string_value(key), json_string(payload));
        free(payload);
    }
}

static void payloads_read(void *ud) {
    webhook_retry *r = ud;
    const char *key;
    json_t *payload;
    json_object_foreach(r->found, key, payload)
        remember_payload(r->server, pl_bot_name(r->bot), key, json_string_value(payload));
    retry_webhook(r);
}

static void handle_channel(pl_server *s, struct evhttp_request *req, pl_bot *bot, const char *name,
                           const json_t *asked) {
    const pl_channel_adapter *adapter = pl_channel_find(name);
    const json_t *settings = pl_bot_channel_settings(bot, name);
    if (!adapter || !settings) {
        pl_reply_error(req, 404, "the %s channel is not turned on for bot '%s'", name, pl_bot_name(bot));
        return;
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_POST) {
        pl_reply_405(req, "GET, POST");
        return;
    }
    webhook_wait *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->req = req;
    w->adapter = adapter;
    w->channel = pl_strdup(name);
    w->settings = json_deep_copy(settings);
    w->cfg = (pl_channel_config){pl_bot_name(bot), w->channel, w->settings};
    w->inbound.status = 200;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = pl_strndup(len ? (const char *)evbuffer_pullup(in, -1) : "", len);
    char *url = public_url(req, &w->cfg);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    payload_lookup lookup = {s, pl_app_store(s->app), pl_bot_name(bot), asked, json_array()};
    webhook_retry *retry = calloc(1, sizeof *retry);
    if (!retry) abort();
    *retry = (webhook_retry){req, s, bot, NULL, NULL, NULL};
    pl_webhook hook = {
        .method = cmd == EVHTTP_REQ_GET ? "GET" : "POST",
        .url = url,
        .query = uri ? evhttp_uri_get_query(uri) : NULL,
        .body = body,
        .body_len = len,
        .header = webhook_header,
        .header_ctx = evhttp_request_get_input_headers(req),
        .now = pl_now_ms() / 1000,
        .long_payload = long_payload,
        .payload_ctx = &lookup,
        .http = pl_app_http(s->app),
        .again = retry_webhook,
        .again_ctx = retry,
    };
    char *err = NULL;
    int rc = adapter->inbound(&w->cfg, &hook, &w->inbound, &err);
    free(body);
    free(url);
    if (rc == PL_AGAIN) {
        /* the adapter calls retry_webhook when its fetch is over */
        retry->channel = pl_strdup(name);
        pl_conn_on_gone(req, on_retry_gone, retry);
        webhook_wait_free(w);
        json_decref(lookup.missing);
        return;
    }
    if (rc == PL_OK && json_array_size(lookup.missing) > 0) {
        /* parsed again once the long payloads it names are read */
        retry->channel = pl_strdup(name);
        retry->asked = lookup.missing;
        retry->found = json_object();
        pl_conn_on_gone(req, on_retry_gone, retry);
        webhook_wait_free(w);
        pl_store_offload(pl_app_store(s->app), read_payloads, payloads_read, retry);
        return;
    }
    json_decref(lookup.missing);
    free(retry);
    if (rc != PL_OK) {
        int status = w->inbound.status >= 400 ? w->inbound.status : 400;
        if (status == 401 || status == 403)
            pl_metric_add(verification_failures, (const char *[]){pl_bot_name(bot), name}, 1);
        pl_warn("[%s] %s webhook refused (%d): %s", pl_bot_name(bot), name, status, err ? err : "?");
        pl_reply_error(req, status, "%s", err ? err : "the request was refused");
        free(err);
        webhook_wait_free(w);
        return;
    }
    if (!w->inbound.events) w->inbound.events = json_array();
    if (adapter->synchronous) {
        start_sync(s, bot, w);
    } else if (json_array_size(w->inbound.events) == 0) {
        pl_reply_text(req, w->inbound.status, w->inbound.answer, w->inbound.answer_type);
        webhook_wait_free(w);
    } else {
        pl_conn_on_gone(req, on_webhook_gone, w);
        json_t *events = w->inbound.events;
        w->inbound.events = NULL;
        pl_pipeline_record(pl_app_pipeline(s->app), bot, name, events, on_recorded, w);
    }
}

/* --- routing ------------------------------------------------------------------ */

static void route(pl_server *s, struct evhttp_request *req, char **seg, int n) {
    if (pl_health_route(s->health, req, seg, n)) return;
    if (pl_metrics_http_route(s->metrics, req, seg, n)) return;
    if (pl_agents_route(s->agents, req, seg, n)) return;
    if (pl_analytics_route(s->app, req, seg, n)) return;
    if (n == 3 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "test") == 0 && strcmp(seg[2], "clock") == 0) {
        pl_route_test_clock(s->app, req);
        return;
    }
    if (n == 3 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "test") == 0 && strcmp(seg[2], "reads") == 0) {
        pl_route_test_reads(s->app, req);
        return;
    }
    if (n >= 4 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "bots") == 0) {
        pl_bot *bot = pl_app_find_bot(s->app, seg[2]);
        if (!bot) {
            pl_reply_error(req, 404, "no bot named '%s' is served here", seg[2]);
            return;
        }
        if (n == 4 && strcmp(seg[3], "messages") == 0) {
            handle_message(s, req, bot);
            return;
        }
        if (n == 5 && strcmp(seg[3], "channels") == 0) {
            handle_channel(s, req, bot, seg[4], NULL);
            return;
        }
        if (pl_webchat_route(s->webchat, req, bot, seg, n)) return;
        if (n >= 5 && strcmp(seg[3], "payments") == 0) {
            pl_route_payments(s->app, req, bot, seg, n);
            return;
        }
        if (strcmp(seg[3], "orders") == 0) {
            pl_route_orders(s->app, req, bot, seg, n);
            return;
        }
        if (n == 6 && (strcmp(seg[3], "sessions") == 0 || strcmp(seg[3], "shoppers") == 0)) {
            handle_session(s, req, bot, strcmp(seg[3], "shoppers") == 0, seg[4], seg[5]);
            return;
        }
    }
    pl_reply_error(req, 404, "no such endpoint");
}

static void on_request(struct evhttp_request *req, void *arg) {
    pl_server *s = arg;
    pl_conn_request_started(req);
    size_t len = evbuffer_get_length(evhttp_request_get_input_buffer(req));
    if (len > PL_MAX_BODY) {
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        size_t limit = evhttp_request_get_command(req) == EVHTTP_REQ_POST && uri
                           ? route_body_limit(s, evhttp_uri_get_path(uri)) : 0;
        if (len > (limit ? limit : PL_MAX_BODY)) {
            if (limit) pl_warn("a post of %zu bytes to %s was refused: larger than %zu", len,
                               evhttp_request_get_uri(req), limit);
            pl_reply_error(req, 413, "the body is larger than %zu KiB", (limit ? limit : PL_MAX_BODY) / 1024);
            return;
        }
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    segments g;
    int n = split_path_text(uri ? evhttp_uri_get_path(uri) : NULL, &g);
    if (n < 0) pl_reply_error(req, 400, "the request path is malformed");
    else route(s, req, g.seg, n);
    segments_free(&g);
}

/* A commit gave a session new transcript lines: the streams that show it. */
static void on_committed(const pl_session_key *key, int handoff, void *ud) {
    pl_server *s = ud;
    pl_webchat_committed(s->webchat, key);
    pl_agents_committed(s->agents, key, handoff);
}

/* PARLEY_EMAIL_MAX_BODY: bytes, at least PL_HARD_MAX_BODY; by default
 * PL_FILES_MAX_BODY (Mailgun takes mail up to 25 MB, and a post of it in
 * base64-free multipart is about as large). */
static size_t files_max_body(void) {
    const char *v = getenv("PARLEY_EMAIL_MAX_BODY");
    char *end = NULL;
    unsigned long long n = v && *v ? strtoull(v, &end, 10) : 0;
    if (v && *v && (end == v || *end || n < PL_HARD_MAX_BODY || n > (1ULL << 30))) {
        pl_warn("PARLEY_EMAIL_MAX_BODY='%.40s' is not a number of bytes from %d to 1 GiB: %d MiB is used", v,
                PL_HARD_MAX_BODY, PL_FILES_MAX_BODY >> 20);
        n = 0;
    }
    return n ? (size_t)n : PL_FILES_MAX_BODY;
}

pl_server *pl_server_new(pl_app *app, const char *node_name) {
    pthread_once(&metrics_once, make_metrics);
    pl_sse_metrics();
    pl_server *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->app = app;
    s->health = pl_health_new(app, node_name);
    s->metrics = pl_metrics_http_new(app);
    s->webchat = pl_webchat_new(app);
    s->agents = pl_agents_new(app);
    s->payloads = pl_map_new();
    pl_pipeline_on_committed(pl_app_pipeline(app), on_committed, s);
    s->http = evhttp_new(pl_app_base(app));
    /* Bodies up to PL_MAX_BODY are handled; larger ones up to the hard cap
     * get a JSON 413 from on_request; beyond the cap evhttp refuses them
     * itself (also 413, in JSON through conn.c) without buffering them. */
    s->conns = pl_conns_new(pl_app_base(app), s->http, PL_MAX_BODY, PL_HARD_MAX_BODY);
    s->files_max_body = files_max_body();
    pl_conns_set_body_limit(s->conns, body_limit, s);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(s->http, on_request, s);
    return s;
}

int pl_server_listen(pl_server *s, const char *addr, int port, char **err) {
    s->socket = evhttp_bind_socket_with_handle(s->http, addr, (ev_uint16_t)port);
    if (!s->socket) return pl_fail(err, "cannot listen on %s:%d (in use, or not an address here)", addr, port);
    pl_conns_watch(s->conns, s->socket);
    struct sockaddr_storage ss;
    ev_socklen_t len = sizeof ss;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(s->socket);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6) s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return PL_OK;
}

int pl_server_port(const pl_server *s) { return s->port; }

int pl_server_listen_metrics(pl_server *s, const char *addr, int port, char **err) {
    return pl_metrics_http_listen(s->metrics, addr, port, err);
}

int pl_server_metrics_port(const pl_server *s) { return pl_metrics_http_port(s->metrics); }

void pl_server_drain(pl_server *s) { pl_health_set_draining(s->health); }

void pl_server_stop_accepting(pl_server *s) {
    pl_health_set_draining(s->health);
    pl_conns_unwatch(s->conns);
    if (s->socket) evhttp_del_accept_socket(s->http, s->socket);
    s->socket = NULL;
}

void pl_server_free(pl_server *s) {
    if (!s) return;
    pl_pipeline_on_committed(pl_app_pipeline(s->app), NULL, NULL);
    pl_webchat_free(s->webchat);
    pl_agents_free(s->agents);
    pl_map_each(s->payloads, free_cached, NULL);
    pl_map_free(s->payloads);
    pl_conns_unwatch(s->conns); /* evhttp_free frees the listener first */
    evhttp_free(s->http);
    pl_conns_free(s->conns);
    pl_health_free(s->health);
    pl_metrics_http_free(s->metrics);
    free(s);
}
