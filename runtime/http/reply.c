/* reply: the HTTP API's answers and the reading of its requests, shared by
 * every file of routes (server.c, webchat.c, agent.c, server_commerce.c);
 * see reply.h. */
#define _GNU_SOURCE
#include "reply.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "base/common.h"
#include "base/log.h"
#include "rest.h"

/* --- answers ----------------------------------------------------------------- */

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
    evhttp_send_reply(req, status, NULL, out);
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
    evhttp_send_reply(req, status, NULL, out);
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
