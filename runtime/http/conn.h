/* conn: the connections of the HTTP server — how many may be open at once
 * (accepting pauses at the cap, and for a moment when accept() finds no free
 * descriptor), how long a client has to send a request and may stay idle
 * between requests, the one "the client went away" callback a connection
 * has, and the JSON answers to what libevent refuses before parley sees a
 * request (a malformed head, a head or body over the limits, an unknown
 * method). Built on evhttp's bufferevent hook, evconnlistener and timers. */
#ifndef PL_CONN_H
#define PL_CONN_H

#include <event2/event.h>
#include <event2/http.h>
#include <stddef.h>

/* What `parley serve` was told; 0 takes the default. */
typedef struct {
    int max_connections;  /* open at once: 16384, or 3/4 of the descriptor limit when lower */
    int header_timeout_s; /* to send a whole request (head and body), from its first
                             byte; a new connection's first one, from the accept */
    int idle_timeout_s;   /* between two requests on a kept-alive connection */
} pl_conn_limits;

#define PL_CONN_DEFAULT_MAX 16384
#define PL_CONN_DEFAULT_HEADER_TIMEOUT 10
#define PL_CONN_DEFAULT_IDLE_TIMEOUT 30
/* The request line and headers together (beyond it: 431). */
#define PL_CONN_MAX_HEAD (16 * 1024)

/* A route that takes larger bodies: at most this many requests hold such a
 * limit at once (past that: 503, retry), and each has this many seconds more
 * than the header timeout to be whole. */
#define PL_CONN_LARGE_AT_ONCE 4
#define PL_CONN_LARGE_BODY_TIMEOUT 120

/* Sets the limits the next pl_conns_new applies (before the server starts). */
void pl_conn_set_limits(const pl_conn_limits *limits);

typedef struct pl_conns pl_conns;

/* Takes charge of the connections http accepts: raises the soft
 * RLIMIT_NOFILE to the hard one, fixes the cap (logged, clamped with a
 * warning when it is more than the descriptors allowed), sets http's size
 * limits and timeouts. Bodies over hard_max_body are refused by libevent;
 * max_body is the size the API documents, named in that refusal. Unwatch
 * before freeing http; free the pool after http. */
pl_conns *pl_conns_new(struct event_base *base, struct evhttp *http, size_t max_body, size_t hard_max_body);
/* The body limit of POSTs to path (the request target's path, before
 * percent-decoding), when it is larger than the pool's hard_max_body; else
 * 0. Called as the request line comes in, before the head is read. */
typedef size_t (*pl_conn_body_limit_fn)(const char *path, void *arg);
/* Lets routes take bodies larger than hard_max_body: fn decides which, from
 * the request line alone, before evhttp reads the body; at most
 * PL_CONN_LARGE_AT_ONCE such requests are read at a time. */
void pl_conns_set_body_limit(pl_conns *conns, pl_conn_body_limit_fn fn, void *arg);
/* Pauses and resumes bound's listener: at the cap, and when accept() fails. */
void pl_conns_watch(pl_conns *conns, struct evhttp_bound_socket *bound);
/* Forgets the listener before it is freed; nothing is accepted any more. */
void pl_conns_unwatch(pl_conns *conns);
void pl_conns_free(pl_conns *conns);

/* From the request callback, first: req is whole; its connection has no
 * deadline until the answer has gone out (streams stay open). */
void pl_conn_request_started(struct evhttp_request *req);

/* The client of req's connection went away before the answer. */
typedef void (*pl_conn_gone_fn)(void *arg);
/* Calls fn(arg) once when req's connection closes, unless pl_conn_forget
 * comes first: one callback per connection, the last one set. After fn
 * returns req is freed: whoever holds it drops it in fn. */
void pl_conn_on_gone(struct evhttp_request *req, pl_conn_gone_fn fn, void *arg);
/* Drops the callback (before answering req, or when the waiter is freed). */
void pl_conn_forget(struct evhttp_request *req);

#endif
