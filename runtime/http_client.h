/* http_client: outbound HTTP(S) on the event loop — libcurl's multi
 * interface driven by libevent (socket and timer callbacks), so a request
 * never blocks the loop. Used by the outbox (platform APIs) and by anything
 * else that calls out (payment providers, certificate fetches).
 *
 * Requests and responses are plain data; the done callback runs later on
 * the loop, never from inside pl_http_fetch. */
#ifndef PL_HTTP_CLIENT_H
#define PL_HTTP_CLIENT_H

#include <event2/event.h>
#include <jansson.h>

typedef struct pl_http_client pl_http_client;

typedef struct {
    const char *method;     /* "GET", "POST" ... */
    const char *url;
    const json_t *headers;  /* object of name -> value strings, or NULL (borrowed) */
    const char *body;       /* or NULL */
    size_t body_len;
    const char *user_pwd;   /* "user:password" for HTTP basic auth, or NULL */
    long timeout_ms;        /* 0: 10 s */
} pl_http_request;

typedef struct {
    long status;        /* HTTP status, or 0 when there was no answer */
    const char *body;   /* NUL-terminated (borrowed for the callback) */
    size_t body_len;
    const char *error;  /* what went wrong when status is 0, else NULL */
    long retry_after;   /* seconds from a Retry-After header, or -1 */
} pl_http_response;

typedef void (*pl_http_done_fn)(const pl_http_response *response, void *ud);

pl_http_client *pl_http_client_new(struct event_base *base, char **err);
/* Cancels what is in flight (their callbacks do not run) and frees. */
void pl_http_client_free(pl_http_client *client);

/* Starts a request; done runs once, later, on the loop. */
int pl_http_fetch(pl_http_client *client, const pl_http_request *request, pl_http_done_fn done,
                  void *ud, char **err);
size_t pl_http_in_flight(const pl_http_client *client);

#endif
