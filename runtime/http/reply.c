/* reply: the HTTP API's answers (counted by route and status for /metrics)
 * and the reading of its requests, shared by every file of routes
 * (server.c, webchat.c, agent.c, server_commerce.c); see reply.h. */
#define _GNU_SOURCE
#include "reply.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "base/common.h"
#include "base/log.h"
#include "base/metrics.h"
#include "rest.h"

/* --- counting ------------------------------------------------------------------ */

static pl_metric *requests;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void make_metrics(void) {
    requests = pl_metric_counter("parley_http_requests_total", "HTTP requests answered, by route and status",
                                 "route,status");
}

/* Whether the path's segment i (from 0, "/"-separated, the query left out)
 * is word. */
static int segment_is(const char *path, int i, const char *word) {
    const char *p = path;
    for (; i > 0; i--) {
        p += strcspn(p, "/?#");
        if (*p != '/') return 0;
        p++;
    }
    size_t len = strcspn(p, "/?#");
    return len == strlen(word) && strncmp(p, word, len) == 0;
}

/* How many segments the path has (the query left out). */
static int segments(const char *path) {
    int n = 1;
    for (const char *p = path; *p && *p != '?' && *p != '#'; p++) n += *p == '/';
    return n;
}

/* The route of a request target (its path as sent, not decoded): a name
 * from a fixed set, whatever the client sent, so that the label's values
 * stay few. */
static const char *route_name(const char *target) {
    if (!target || target[0] != '/') return "other";
    const char *p = target + 1;
    int n = segments(p);
    if (n == 1 && segment_is(p, 0, "metrics")) return "metrics";
    if (segment_is(p, 0, "agent")) return "agent";
    if (segment_is(p, 0, "analytics")) return "analytics";
    if (!segment_is(p, 0, "v1") || n < 2) return "other";
    if (segment_is(p, 1, "health")) return "health";
    if (segment_is(p, 1, "agent")) return "agent";
    if (!segment_is(p, 1, "bots") || n < 4) return "other";
    static const struct {
        const char *segment, *route;
    } bot_routes[] = {{"messages", "message"}, {"channels", "webhook"}, {"webchat", "webchat"},
                      {"widget.js", "webchat"}, {"payments", "pay"},    {"orders", "admin"},
                      {"sessions", "admin"},    {"shoppers", "admin"},  {"analytics", "analytics"}};
    for (size_t i = 0; i < sizeof bot_routes / sizeof *bot_routes; i++)
        if (segment_is(p, 3, bot_routes[i].segment)) return bot_routes[i].route;
    return "other";
}

/* n in decimal, written at the end of buf (room for 24 bytes: any size_t
 * and its NUL); returns where it starts. snprintf costs ten times more. */
static const char *decimal(char buf[24], size_t n) {
    char *p = buf + 23;
    *p = '\0';
    do {
        *--p = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    return p;
}

void pl_reply_count(struct evhttp_request *req, int status) {
    pthread_once(&metrics_once, make_metrics);
    char text[24];
    const char *code = text;
    if (status >= 0) code = decimal(text, (size_t)status);
    else snprintf(text, sizeof text, "%d", status);
    pl_metric_add(requests, (const char *[]){route_name(evhttp_request_get_uri(req)), code}, 1);
}

/* --- answers ----------------------------------------------------------------- */

/* The Date header's value for now, made once a second: evhttp would
 * otherwise format it for every answer (a fifth of the cost of sending a
 * message's reply; see docs/speed.md). IMF-fixdate, with its own names of
 * days and months: a locale must not change them. */
static const char *http_date(void) {
    static _Thread_local char text[32];
    static _Thread_local time_t made_for = -1;
    time_t now = time(NULL);
    if (now != made_for) {
        static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        struct tm tm;
        if (!gmtime_r(&now, &tm)) return NULL;
        snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
                 months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        made_for = now;
    }
    return text;
}

/* Whether an answer with this status carries a body (RFC 9110 6.4.1). */
static int has_body(int status) { return status >= 200 && status != 204 && status != 304; }

void pl_reply_send(struct evhttp_request *req, int status, const char *phrase, struct evbuffer *body) {
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    const char *date = http_date();
    if (date && !evhttp_find_header(headers, "Date")) evhttp_add_header(headers, "Date", date);
    if (body && has_body(status) && !evhttp_find_header(headers, "Content-Length")) {
        char length[24];
        evhttp_add_header(headers, "Content-Length", decimal(length, evbuffer_get_length(body)));
    }
    pl_reply_count(req, status);
    /* a body written into the request's own output buffer is sent from there */
    evhttp_send_reply(req, status, phrase, body == evhttp_request_get_output_buffer(req) ? NULL : body);
}

void pl_reply_json(struct evhttp_request *req, int status, json_t *body /* stolen */) {
    struct evbuffer *out = evbuffer_new();
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!text) {
        /* a body jansson could not make (text that is not UTF-8 in it): the
         * answer is still JSON, and says the server is at fault */
        pl_error("an answer (%d) could not be written as JSON", status);
        status = 500;
        text = pl_strdup("{\"error\":\"the answer could not be written\"}");
    }
    evbuffer_add(out, text, strlen(text));
    evbuffer_add(out, "\n", 1);
    free(text);
    json_decref(body);
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", "application/json; charset=utf-8");
    /* every 503 says when to come back */
    if (status == 503 && !evhttp_find_header(headers, "Retry-After")) evhttp_add_header(headers, "Retry-After", "1");
    pl_reply_send(req, status, NULL, out);
    evbuffer_free(out);
}

void pl_reply_unavailable(struct evhttp_request *req, const pl_turn_result *result) {
    if (result && result->retry_after > 0) {
        char seconds[24];
        snprintf(seconds, sizeof seconds, "%d", result->retry_after);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", seconds);
    }
    if (result && result->error) pl_reply_error(req, 503, "%s; please retry later", result->error);
    else pl_reply_error(req, 503, "the message could not be stored; please retry");
}

void pl_reply_error(struct evhttp_request *req, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *reason = pl_vstrdupf(fmt, ap);
    va_end(ap);
    pl_reply_json(req, status, pl_rest_error(reason));
    free(reason);
}

void pl_reply_405(struct evhttp_request *req, const char *allow) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    pl_reply_error(req, 405, "method not allowed here (allowed: %s)", allow);
}

void pl_reply_text(struct evhttp_request *req, int status, const char *body, const char *type) {
    struct evbuffer *out = evbuffer_new();
    if (body) evbuffer_add(out, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      type ? type : "text/plain; charset=utf-8");
    pl_reply_send(req, status, NULL, out);
    evbuffer_free(out);
}

/* --- requests ---------------------------------------------------------------- */

/* The body as a JSON object (new reference), or NULL with *reason (new). */
json_t *pl_read_json_body(struct evhttp_request *req, char **reason) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *data = (const char *)evbuffer_pullup(in, -1);
    return pl_rest_json_object(data, len, reason);
}

json_t *pl_read_test_body(struct evhttp_request *req, int *open) {
    const char *enabled = getenv("PARLEY_TEST_CLOCK");
    *open = 0;
    if (!enabled || strcmp(enabled, "1") != 0) {
        pl_reply_error(req, 404, "no such endpoint");
        return NULL;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        pl_reply_405(req, "POST");
        return NULL;
    }
    *open = 1;
    char *why = NULL;
    json_t *body = pl_read_json_body(req, &why);
    free(why);
    return body;
}

void pl_request_query(struct evhttp_request *req, struct evkeyvalq *params) {
    TAILQ_INIT(params);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (query) evhttp_parse_query_str(query, params);
}

/* Checks the bearer token; answers and returns 0 when not allowed. */
int pl_bearer_allowed(struct evhttp_request *req, const char *token, const char *env_name, const char *what) {
    if (!token || !*token) {
        pl_reply_error(req, 403, "the %s is disabled: set %s to enable it", what,
                       env_name ? env_name : "a token variable (api_token_env in bot.json)");
        return 0;
    }
    const char *auth =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    size_t tlen = strlen(token);
    int ok = auth && strncmp(auth, "Bearer ", 7) == 0 && strlen(auth + 7) == tlen &&
             CRYPTO_memcmp(auth + 7, token, tlen) == 0;
    if (!ok) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
        pl_reply_error(req, 401, "a valid \"Authorization: Bearer <%s>\" is required", env_name);
    }
    return ok;
}
