/* http_client: outbound HTTP(S) on the event loop — libcurl's multi
 * interface driven by libevent (socket and timer callbacks), so a request
 * never blocks the loop. Used by the outbox (platform APIs, and mail sent
 * by SMTP the same way) and by anything else that calls out (payment
 * providers, certificate fetches).
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
    const char *protocols;  /* libcurl's list of protocols the URL may use; NULL: "http,https" */
    size_t max_response;    /* bytes of body at most (past it: PL_HTTP_TOO_LARGE); 0: no cap */
    /* Set for a request someone untrusted asked for (a bot's script): it
     * connects only to addresses http_policy.c calls public, checked on the
     * address resolved for the connection, and never through a proxy or a
     * connection opened for another request. Zero for the operator's own
     * (platform APIs, payment providers: local fakes in tests). */
    int public_only;
    /* SMTP, for an smtp:// or smtps:// URL (protocols NULL then means
     * "smtp,smtps"): the envelope's sender and its recipients (an array of
     * address strings, borrowed). body is then the whole message (RFC 5322
     * text, CRLF line ends), sent after DATA; method is not used; user_pwd
     * is the AUTH login. NULL mail_from: an HTTP request. */
    const char *mail_from;
    const json_t *mail_rcpt;
    /* SMTP on smtp://: 1 requires STARTTLS (the transfer fails when the
     * server does not offer it), 0 uses it when offered. smtps:// is TLS
     * from the first byte either way. */
    int mail_require_tls;
} pl_http_request;

/* How a request ended. Redirects are never followed: a 3xx is an answer. */
typedef enum {
    PL_HTTP_ANSWERED = 0, /* status holds the answer's (0 for a file:// URL) */
    PL_HTTP_TIMEOUT,
    PL_HTTP_UNREACHABLE,  /* no answer: name, connection, TLS or protocol failure */
    PL_HTTP_REFUSED,      /* public_only: every address was one a script may not reach */
    PL_HTTP_TOO_LARGE,    /* the body passed max_response: the transfer was stopped */
} pl_http_outcome;

/* For SMTP, status is the server's last reply code: 250 when the mail was
 * taken; when the server refused it (a 4xx or 5xx reply to AUTH, MAIL,
 * RCPT or DATA) the outcome is still PL_HTTP_ANSWERED, with that code and
 * libcurl's account of it as the body. */
typedef struct {
    pl_http_outcome outcome;
    long status;        /* HTTP status, or 0 when there was no (whole) answer */
    const char *body;   /* NUL-terminated (borrowed for the callback) */
    size_t body_len;
    const char *error;  /* what went wrong when status is 0, else NULL */
    long retry_after;   /* seconds from a Retry-After header (on a 429 without one, from
                         * x-rate-limit-reset, X's epoch second of the reset), or -1 */
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
