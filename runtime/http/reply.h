/* reply: the HTTP API's answers (JSON, errors with a reason, 405 with
 * Allow, 503 with Retry-After, text) and the reading of its requests (a
 * JSON body, the query, a bearer token): what every file of routes uses,
 * below them all, so routes never call back into server.c. */
#ifndef PL_REPLY_H
#define PL_REPLY_H

#include <event2/http.h>
#include <jansson.h>

#include "core/turn.h"

/* Sends the answer as evhttp_send_reply does, with the Date header made
 * once a second and Content-Length from the body (evhttp would format both
 * for every answer). Every whole answer of the routes goes through it;
 * libevent's own refusals (conn.c) and event streams keep evhttp's. The
 * body may be the request's own output buffer
 * (evhttp_request_get_output_buffer), written in place. */
void pl_reply_send(struct evhttp_request *req, int status, const char *phrase, struct evbuffer *body);

/* Counts an answer in parley_http_requests_total, by route and status: the
 * route is one of a few fixed names read from the request's path
 * ("message", "webhook", "webchat", "agent", "admin", "pay", "analytics",
 * "health", "metrics", "other"), never the path itself. pl_reply_send
 * counts its answers; an event stream counts its start, and libevent's
 * refusals (conn.c) theirs. */
void pl_reply_count(struct evhttp_request *req, int status);

/* Replies (each sends the whole answer, counted). */
void pl_reply_json(struct evhttp_request *req, int status, json_t *body /* stolen */);
void pl_reply_error(struct evhttp_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void pl_reply_405(struct evhttp_request *req, const char *allow);
void pl_reply_text(struct evhttp_request *req, int status, const char *body, const char *type);
/* 503 for a message that was not handled: the result's reason (the bot is
 * over its share) or that nothing could be stored, and Retry-After. */
void pl_reply_unavailable(struct evhttp_request *req, const pl_turn_result *result);

/* The body as a JSON object (new), or NULL with *reason (new). */
json_t *pl_read_json_body(struct evhttp_request *req, char **reason);

/* For the endpoints that exist only under PARLEY_TEST_CLOCK=1: the POSTed
 * body (new; a JSON object, or NULL when it is not one: answer 400), after
 * checking both; *open is 0 when it answered 404 or 405 itself. */
json_t *pl_read_test_body(struct evhttp_request *req, int *open);

/* Checks "Authorization: Bearer <token>" against token, the value of the
 * environment variable env_name (constant time); answers 403 when token is
 * NULL or empty, or 401 when the given one is wrong, and returns 0 then.
 * `what` names the API in the answer. */
int pl_bearer_allowed(struct evhttp_request *req, const char *token, const char *env_name, const char *what);

/* Fills params (initialised here; the caller clears them) with the
 * request URI's query parameters, decoded. */
void pl_request_query(struct evhttp_request *req, struct evkeyvalq *params);

#endif
