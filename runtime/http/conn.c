/* conn: the HTTP server's connections; see conn.h.
 *
 * evhttp (libevent 2.1) tells nobody about a new connection, but it lets us
 * make each accepted connection's bufferevent (evhttp_set_bevcb). We keep a
 * reference to it and, in a callback activated at once (it runs in the same
 * pass of the loop as the accept, before any byte is read), find the
 * evhttp_connection built around it: the bufferevent's callback argument,
 * or no callbacks at all when evhttp has let it go already. From then on a
 * connection is found by its descriptor, and its close callback — the one
 * slot evhttp gives a connection — is ours: it counts the close and calls
 * the "client gone" callback that handlers set through pl_conn_on_gone.
 * The reference is kept until then: should code set that slot itself, the
 * connection's timer still finds it freed (see lost()), so the count and
 * the cap cannot drift.
 *
 * A connection is READING a request (from its first byte, or from the
 * accept, it has --header-timeout to be whole), BUSY (parley has the request:
 * no deadline, so answers that wait for a commit and event streams are never
 * cut) or IDLE between requests (--idle-timeout). One timer per connection
 * enforces both, lazily: it is never scheduled later than the deadline of
 * the state the connection is in or may enter next, so a change of state
 * costs no timer operation; when it fires it closes the connection or is
 * scheduled again for what is left. A busy keep-alive connection so adds
 * about one timer per header timeout, not one per request. */
#define _GNU_SOURCE
#include "conn.h"

#include <dlfcn.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/common.h"
#include "base/log.h"
#include "reply.h"

/* How long accepting pauses when accept() finds no free descriptor. */
#define RETRY_MS 250
/* How often a connection parley holds (no deadline) is looked at anyway. */
#define AUDIT_MS (60 * 1000)
/* libevent's own timeout restarts with every byte read, so it cannot end a
 * trickled request; ours do. It stays, longer than ours, for what they do
 * not watch: an answer the client does not read. */
#define LIBEVENT_TIMEOUT_S 60

typedef enum { ATTACHING, READING, BUSY, IDLE } conn_state;

typedef struct pl_conn pl_conn;
struct pl_conn {
    pl_conns *pool;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL while ATTACHING */
    struct evhttp_request *req;      /* the request parley has, while BUSY */
    struct evbuffer_cb_entry *watch; /* on the input: a request's first byte */
    struct event *timer;
    conn_state state;
    int fd;
    int64_t since;    /* ms (monotonic): when READING or IDLE began */
    int64_t fires_at; /* ms: when the timer was last scheduled to fire */
    size_t received;  /* bytes of the request being read */
    int throttled;    /* a read high watermark is set */
    int decided;      /* the body limit of the request being read is set */
    size_t granted;   /* a large body limit held from the pool's budget, or 0 */
    int crowded;      /* it asked for one when the budget was spent */
    char *route;      /* then, the path it was asked for (evhttp forgets it in a refusal) */
    pl_conn_gone_fn gone;
    void *gone_arg;
    pl_conn *prev, *next;
};

struct pl_conns {
    struct evconnlistener *listener; /* NULL once unwatched */
    struct event *retry;             /* accepting again after a failed accept() */
    size_t open, cap, max_body;
    size_t hard_max_body; /* a request's body, unless its route allows more */
    size_t buffered_max; /* a connection's unread input: a whole request, no more */
    pl_conn_body_limit_fn body_limit; /* the larger limit of a route, or 0 */
    void *body_limit_arg;
    size_t large_open; /* requests holding a large limit now */
    int64_t header_ms, idle_ms;
    int listening; /* the listener is enabled */
    int starved;   /* paused after a failed accept(), until retry */
    int64_t starved_since; /* ms: the episode's start; 0 when accept() works */
    unsigned failures;     /* accept() failures in this episode */
    pl_conn *all;
    pl_conns *next_pool;
};

static pl_conn_limits limits;
static pl_conns *pools;
/* The attached connections of every pool, by descriptor. */
static pl_conn **by_fd;
static size_t by_fd_size;

static int64_t now_ms(void) { return pl_monotonic_us() / 1000; }

void pl_conn_set_limits(const pl_conn_limits *l) { limits = *l; }

/* --- the table by descriptor ------------------------------------------------------------- */

static int lost(pl_conn *c);

static void remember(pl_conn *c) {
    size_t fd = (size_t)c->fd;
    if (fd >= by_fd_size) {
        size_t size = by_fd_size ? by_fd_size : 256;
        while (size <= fd) size *= 2;
        pl_conn **grown = realloc(by_fd, size * sizeof *grown);
        if (!grown) abort();
        memset(grown + by_fd_size, 0, (size - by_fd_size) * sizeof *grown);
        by_fd = grown;
        by_fd_size = size;
    }
    if (by_fd[fd] && !lost(by_fd[fd])) pl_error("connection on descriptor %zu replaces one still open", fd);
    by_fd[fd] = c;
}

/* The connection of req, or NULL (not one of ours, or gone). */
static pl_conn *conn_of(struct evhttp_request *req) {
    struct evhttp_connection *evcon = req ? evhttp_request_get_connection(req) : NULL;
    if (!evcon) return NULL;
    evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
    if (fd < 0 || (size_t)fd >= by_fd_size) return NULL;
    pl_conn *c = by_fd[fd];
    return c && c->evcon == evcon ? c : NULL;
}

/* --- accepting ---------------------------------------------------------------------------- */

/* The listener is on unless the cap is reached or accept() just failed;
 * while it is off, new connections wait in the kernel's queue. */
static void update_listener(pl_conns *p) {
    int want = !p->starved && p->open < p->cap;
    if (!p->listener || want == p->listening) return;
    p->listening = want;
    if (want) {
        evconnlistener_enable(p->listener);
        pl_debug("listener on: %zu connections open", p->open);
    } else {
        evconnlistener_disable(p->listener);
        if (!p->starved) pl_debug("listener off: %zu connections open, the cap", p->open);
    }
}

/* accept() failed (EMFILE, ENFILE, ENOBUFS, ENOMEM ...): the connection waits
 * in the kernel's queue, and the listener would wake the loop again at once
 * for it. Pause instead, and say so once per episode. */
static void on_accept_error(struct evconnlistener *lev, void *arg) {
    (void)arg; /* evhttp's, not ours: the pool is found by its listener */
    int err = EVUTIL_SOCKET_ERROR();
    pl_conns *p = pools;
    while (p && p->listener != lev) p = p->next_pool;
    if (!p) return;
    if (!p->starved_since) {
        p->starved_since = now_ms();
        p->failures = 0;
        pl_warn("cannot accept connections: %s (%zu open); trying again every %d ms", strerror(err), p->open,
                RETRY_MS);
    }
    p->failures++;
    p->starved = 1;
    update_listener(p);
    struct timeval tv = {0, RETRY_MS * 1000};
    evtimer_add(p->retry, &tv);
}

static void on_retry(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_conns *p = arg;
    p->starved = 0;
    update_listener(p);
}

/* A connection was accepted: an episode of failed accept() is over. */
static void accepting_again(pl_conns *p) {
    if (!p->starved_since) return;
    pl_info("accepting connections again after %.1f s (accept() failed %u times meanwhile; %zu open)",
            (double)(now_ms() - p->starved_since) / 1000.0, p->failures, p->open);
    p->starved_since = 0;
}

/* --- one connection ------------------------------------------------------------------------- */

static void arm(pl_conn *c, int64_t ms) {
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    c->fires_at = now_ms() + ms;
    evtimer_add(c->timer, &tv);
}

/* The soonest a deadline can come from an idle connection: its idle timeout,
 * or the header timeout of a request that starts now. */
static int64_t soonest(const pl_conns *p) { return p->idle_ms < p->header_ms ? p->idle_ms : p->header_ms; }

/* Forgets c and counts its close. evcon_alive: c->evcon may still be used
 * (not when evhttp freed it behind our back). */
static void release(pl_conn *c, int evcon_alive) {
    pl_conns *p = c->pool;
    if (c->granted) p->large_open--;
    free(c->route);
    if (c->evcon) {
        if (evcon_alive) evhttp_connection_set_closecb(c->evcon, NULL, NULL);
        evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->watch);
        if (by_fd[c->fd] == c) by_fd[c->fd] = NULL;
    }
    bufferevent_decref(c->bev);
    event_free(c->timer);
    if (c->prev) c->prev->next = c->next;
    else p->all = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
    p->open--;
    update_listener(p);
}

/* evhttp's close callback: the connection is being freed, whoever ended it.
 * A request whose answer had begun (an event stream) is left to its owner
 * when the client goes (evhttp detaches it): the owner has just been told,
 * so it is freed here. */
static void on_closed(struct evhttp_connection *evcon, void *arg) {
    (void)evcon;
    pl_conn *c = arg;
    struct evhttp_request *req = c->req;
    pl_conn_gone_fn gone = c->gone;
    c->gone = NULL;
    if (gone) gone(c->gone_arg);
    if (req && !evhttp_request_get_connection(req)) evhttp_request_free(req);
    release(c, 1);
}

/* Whether evhttp has freed c's connection without our close callback
 * (bufferevent_free cleared the callbacks of the bufferevent we still
 * hold): only when code set that callback itself. Counts the close then. */
static int lost(pl_conn *c) {
    void *evcon = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
    if (evcon) return 0;
    pl_warn("a connection was closed behind conn.c's back: code set evhttp's close callback itself "
            "(pl_conn_on_gone is the way)");
    release(c, 0);
    return 1;
}

/* While an answer goes out evhttp keeps reading (to see the client leave)
 * into a buffer it never empties: an event stream's client could fill
 * memory. Past a whole request's worth of unread input, reading waits for
 * the buffer to drain. The watermark is set only then: once set, libevent
 * re-arms the read event on every change of the buffer. */
static size_t buffered_max(const pl_conn *c) {
    /* evhttp 2.1 leaves a body with a Content-Length in this buffer until
     * the whole of it is in (evhttp_read_body): a large one needs the room */
    return c->granted ? PL_CONN_MAX_HEAD + c->granted + 64 * 1024 : c->pool->buffered_max;
}

static void throttle(pl_conn *c) {
    c->throttled = 1;
    bufferevent_setwatermark(c->bev, EV_READ, 0, buffered_max(c));
}

/* --- a route's larger body limit ------------------------------------------------------------
 *
 * evhttp holds one body limit per connection, read when a request's head is
 * in; libevent 2.1 calls nobody between the head and the body of a request
 * it serves (evhttp_set_newreqcb, through which one could set a request's
 * header callback, is 2.2's). So the limit is set before evhttp reads the
 * head: the bytes of a request reach the connection's input buffer, and
 * our callback on it (on_input), before evhttp's read callback parses them.
 * Once the request line is whole, its method and target are read the way
 * evhttp 2.1 reads them (evhttp_parse_request_line: the method up to the
 * first space, the target up to the last one, trailing spaces dropped, the
 * target parsed by evhttp_uri_parse_with_flags with
 * EVHTTP_URI_NONCONFORMANT), and the server's body_limit callback says
 * whether the route takes a larger body. Only a POST can. A request whose
 * target we cannot read gets the ordinary limit: reading it differently from
 * evhttp can only refuse a large post, never let another route buffer more.
 * At most PL_CONN_LARGE_AT_ONCE requests hold a large limit at a time: past
 * that one gets the ordinary limit, and its refusal is a 503 to retry. */

static void set_limit(pl_conn *c, size_t limit) {
    evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)limit);
}

/* The request now being read is done with its limit. */
static void undecide(pl_conn *c) {
    if (c->granted) {
        c->pool->large_open--;
        c->granted = 0;
        set_limit(c, c->pool->hard_max_body);
        if (c->throttled) throttle(c);
    }
    c->decided = 0;
    c->crowded = 0;
    free(c->route);
    c->route = NULL;
}

static void decide(pl_conn *c) {
    pl_conns *p = c->pool;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t eol = 0;
    struct evbuffer_ptr at = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
    if (at.pos < 0 && evbuffer_get_length(in) < PL_CONN_MAX_HEAD) return; /* the line is not whole yet */
    c->decided = 1;
    if (at.pos < 0 || (size_t)at.pos >= PL_CONN_MAX_HEAD || !p->body_limit) return;
    char line[PL_CONN_MAX_HEAD];
    evbuffer_copyout(in, line, (size_t)at.pos);
    size_t len = (size_t)at.pos;
    while (len > 0 && line[len - 1] == ' ') len--;
    line[len] = '\0';
    char *target = strchr(line, ' ');
    if (!target || (size_t)(target - line) != 4 || strncmp(line, "POST", 4) != 0) return;
    target++;
    char *version = strrchr(target, ' ');
    if (!version || version == target) return;
    *version = '\0';
    struct evhttp_uri *uri = NULL;
    const char *path = target;
    if (target[0] == '/' && target[1] != '/') {
        /* origin form, nearly every request: the URI parser would take no
         * scheme (a '/' first), no authority, and for the path everything
         * up to '?' or '#', and would only allocate to say so */
        target[strcspn(target, "?#")] = '\0';
    } else {
        uri = evhttp_uri_parse_with_flags(target, EVHTTP_URI_NONCONFORMANT);
        path = uri ? evhttp_uri_get_path(uri) : NULL;
    }
    size_t limit = path ? p->body_limit(path, p->body_limit_arg) : 0;
    if (limit > p->hard_max_body) c->route = pl_strdup(path);
    if (uri) evhttp_uri_free(uri);
    if (limit <= p->hard_max_body) return;
    if (p->large_open >= PL_CONN_LARGE_AT_ONCE) {
        c->crowded = 1;
        return;
    }
    p->large_open++;
    c->granted = limit;
    set_limit(c, limit);
    if (c->throttled) throttle(c);
}

void pl_conns_set_body_limit(pl_conns *p, pl_conn_body_limit_fn fn, void *arg) {
    p->body_limit = fn;
    p->body_limit_arg = arg;
}

/* Bytes arrived (or were consumed): the first byte after IDLE starts a request. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg) {
    (void)buf;
    pl_conn *c = arg;
    if (!info->n_added) return;
    if (c->state == IDLE) {
        c->state = READING;
        c->since = now_ms();
        c->received = 0;
    }
    c->received += info->n_added;
    if (c->state == READING && !c->decided) decide(c);
    if (!c->throttled && info->orig_size + info->n_added - info->n_deleted >= buffered_max(c)) throttle(c);
}

/* The connection evhttp built around c->bev, found once evhttp is done. */
static void attach(pl_conn *c) {
    void *evcon = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
    if (!evcon) { /* evhttp has freed it already (bufferevent_free clears the callbacks) */
        release(c, 0);
        return;
    }
    c->evcon = evcon;
    c->fd = (int)bufferevent_getfd(c->bev);
    remember(c);
    evhttp_connection_set_closecb(c->evcon, on_closed, c);
    c->watch = evbuffer_add_cb(bufferevent_get_input(c->bev), on_input, c);
    c->state = READING;
    c->since = now_ms();
    c->received = evbuffer_get_length(bufferevent_get_input(c->bev));
    arm(c, c->pool->header_ms);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_conn *c = arg;
    if (c->state == ATTACHING) {
        attach(c);
        return;
    }
    if (lost(c)) return;
    if (c->state == BUSY) { /* no deadline; re-armed sooner when the answer has gone out */
        arm(c, AUDIT_MS);
        return;
    }
    pl_conns *p = c->pool;
    int64_t reading_ms = p->header_ms + (c->granted ? PL_CONN_LARGE_BODY_TIMEOUT * 1000LL : 0);
    int64_t left = c->since + (c->state == READING ? reading_ms : p->idle_ms) - now_ms();
    if (left > 0) {
        arm(c, c->state == IDLE && left > p->header_ms ? p->header_ms : left);
        return;
    }
    pl_debug("closing a connection %s", c->state == READING ? "that did not send its request in time" : "idle too long");
    evhttp_connection_free(c->evcon); /* calls on_closed: c is gone */
}

/* evhttp's bevcb: a connection was just accepted. */
static struct bufferevent *new_bufferevent(struct event_base *base, void *arg) {
    pl_conns *p = arg;
    /* options 0, as evhttp's own: it closes the socket itself */
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    pl_conn *c = calloc(1, sizeof *c);
    if (!bev || !c) abort();
    bufferevent_incref(bev); /* until release: evhttp may free it before we look */
    *c = (pl_conn){.pool = p, .bev = bev, .fd = -1, .state = ATTACHING, .next = p->all};
    c->timer = evtimer_new(base, on_timer, c);
    if (p->all) p->all->prev = c;
    p->all = c;
    p->open++;
    accepting_again(p);
    update_listener(p);
    event_active(c->timer, EV_TIMEOUT, 1);
    return bev;
}

/* The answer has gone out: IDLE, or READING when the next request is
 * already buffered (pipelined). */
static void on_answered(struct evhttp_request *req, void *arg) {
    (void)req;
    pl_conn *c = arg;
    c->req = NULL;
    size_t buffered = evbuffer_get_length(bufferevent_get_input(c->bev));
    int64_t now = now_ms();
    c->state = buffered ? READING : IDLE;
    c->since = now;
    c->received = buffered;
    undecide(c);
    if (buffered) decide(c); /* a pipelined request: evhttp reads its head after this */
    int64_t next = soonest(c->pool);
    if (!evtimer_pending(c->timer, NULL) || c->fires_at > now + next) arm(c, next);
}

void pl_conn_request_started(struct evhttp_request *req) {
    pl_conn *c = conn_of(req);
    if (!c) return;
    c->state = BUSY;
    c->req = req;
    evhttp_request_set_on_complete_cb(req, on_answered, c);
}

void pl_conn_on_gone(struct evhttp_request *req, pl_conn_gone_fn fn, void *arg) {
    pl_conn *c = conn_of(req);
    if (!c) {
        pl_error("a request's connection is not known here: its client's leaving will go unnoticed");
        return;
    }
    c->gone = fn;
    c->gone_arg = arg;
}

void pl_conn_forget(struct evhttp_request *req) {
    pl_conn *c = conn_of(req);
    if (!c) return;
    c->gone = NULL;
    c->gone_arg = NULL;
}

/* --- the pool ------------------------------------------------------------------------------------ */

/* The descriptors this process may open, after raising the soft limit to the
 * hard one (Debian's default soft limit, 1024, is far below what a server
 * holding event streams needs). */
static size_t descriptor_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl.rlim_cur = rl.rlim_max;
        else pl_debug("cannot raise the descriptor limit to %llu: %s", (unsigned long long)rl.rlim_max, strerror(errno));
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 30) ? (size_t)1 << 30 : (size_t)rl.rlim_cur;
}

/* The cap: the operator's, clamped to the descriptors there are; by default
 * three quarters of them (the rest for the store, the watcher and outbound
 * HTTP), at most PL_CONN_DEFAULT_MAX. */
static size_t connection_cap(size_t descriptors) {
    size_t asked = limits.max_connections > 0 ? (size_t)limits.max_connections : 0;
    if (!asked) {
        size_t cap = descriptors / 4 * 3;
        return cap < 1 ? 1 : cap > PL_CONN_DEFAULT_MAX ? PL_CONN_DEFAULT_MAX : cap;
    }
    if (asked <= descriptors) return asked;
    pl_warn("--max-connections %zu is more than the %zu descriptors this process may open (RLIMIT_NOFILE): the cap is "
            "%zu, and accepting pauses whenever descriptors run out",
            asked, descriptors, descriptors);
    return descriptors;
}

static void check_error_pages(void);

pl_conns *pl_conns_new(struct event_base *base, struct evhttp *http, size_t max_body, size_t hard_max_body) {
    pl_conns *p = calloc(1, sizeof *p);
    if (!p) abort();
    size_t descriptors = descriptor_limit();
    int header_s = limits.header_timeout_s > 0 ? limits.header_timeout_s : PL_CONN_DEFAULT_HEADER_TIMEOUT;
    int idle_s = limits.idle_timeout_s > 0 ? limits.idle_timeout_s : PL_CONN_DEFAULT_IDLE_TIMEOUT;
    p->cap = connection_cap(descriptors);
    p->max_body = max_body;
    p->hard_max_body = hard_max_body;
    p->buffered_max = PL_CONN_MAX_HEAD + hard_max_body + 64 * 1024; /* + chunk sizes, trailers */
    p->header_ms = header_s * 1000LL;
    p->idle_ms = idle_s * 1000LL;
    p->retry = evtimer_new(base, on_retry, p);
    p->next_pool = pools;
    pools = p;
    int longest = header_s > idle_s ? header_s : idle_s;
    evhttp_set_timeout(http, longest >= LIBEVENT_TIMEOUT_S ? longest + 1 : LIBEVENT_TIMEOUT_S);
    evhttp_set_max_headers_size(http, PL_CONN_MAX_HEAD);
    evhttp_set_max_body_size(http, hard_max_body);
    evhttp_set_bevcb(http, new_bufferevent, p);
    check_error_pages();
    pl_info("connections: at most %zu open (descriptor limit %zu); %d s to send a request, %d s idle between requests",
            p->cap, descriptors, header_s, idle_s);
    return p;
}

void pl_conns_watch(pl_conns *p, struct evhttp_bound_socket *bound) {
    p->listener = evhttp_bound_socket_get_listener(bound);
    p->listening = 1;
    evconnlistener_set_error_cb(p->listener, on_accept_error);
    update_listener(p);
}

void pl_conns_unwatch(pl_conns *p) {
    p->listener = NULL;
    p->listening = 0;
    evtimer_del(p->retry);
}

void pl_conns_free(pl_conns *p) {
    if (!p) return;
    /* evhttp_free has closed every attached connection; only those accepted in
     * the loop's last pass can be left */
    while (p->all) release(p->all, 0);
    event_free(p->retry);
    pl_conns **link = &pools;
    while (*link != p) link = &(*link)->next_pool;
    *link = p->next_pool;
    free(p);
    if (!pools) {
        free(by_fd);
        by_fd = NULL;
        by_fd_size = 0;
    }
}

/* --- libevent's own refusals, in JSON -------------------------------------------------------------
 *
 * Before a request reaches parley, libevent itself refuses a malformed head,
 * a head or body over the limits, a method it does not know or allow, an
 * Expect it does not understand: it calls evhttp_send_error, which writes an
 * HTML page. libevent 2.1 has no hook for that page (later versions have
 * evhttp_set_errorcb). But libevent-2.1.so calls evhttp_send_error through
 * its PLT (`objdump -d` shows the calls in evhttp_handle_request and
 * evhttp_get_body going to evhttp_send_error@plt), and the dynamic linker
 * binds those to the first definition in the process: the executable's,
 * since parley, its sanitizer build and the C tests all link with -Wl,-E
 * (busted's C modules need it anyway). So the definition below answers, with
 * the JSON {"error": ...} every other refusal of the API has.
 *
 * Why this and not something else: every other place to catch the page
 * means parsing HTTP ourselves (a filtering bufferevent) or reaching much
 * further into libevent's private structures. It stops working with a
 * libevent linked statically (the link then fails on the duplicate symbol:
 * loud) or built to bind its own calls (-Bsymbolic, hidden aliases: the pages
 * turn HTML again, silently) — so pl_conns_new warns when the symbol does not
 * resolve here, and tests/c/test_conn.c and tests/e2e/test_connections.py
 * check the answers end to end, under the sanitizers too. Only the name and
 * contract are libevent's: the answer goes out through evhttp_send_reply as
 * any handler's does. */

static void check_error_pages(void) {
    if (dlsym(RTLD_DEFAULT, "evhttp_send_error") != (void *)evhttp_send_error)
        pl_warn("libevent's own error pages are not replaced here: malformed or oversized requests get HTML, not JSON");
}

/* What the client is told, for the statuses libevent refuses with (new). */
static char *refusal(struct evhttp_request *req, int status, const pl_conn *c) {
    size_t body_kib = c ? (c->granted ? c->granted : c->pool->max_body) / 1024 : 0;
    const char *te = evhttp_find_header(evhttp_request_get_input_headers(req), "Transfer-Encoding");
    switch (status) {
    case 400: return pl_strdup("the request is malformed: its request line, a header or its Content-Length cannot be read");
    case 413:
        return pl_strdupf("the body is larger than %zu KiB%s", body_kib,
                          te ? " (or its chunked encoding is broken)" : "");
    case 503: return pl_strdupf("too many large posts are being received at once (at most %d); please retry",
                                PL_CONN_LARGE_AT_ONCE);
    case 417: return pl_strdup("only \"Expect: 100-continue\" is understood");
    case 431: return pl_strdupf("the request line and headers are larger than %d KiB", PL_CONN_MAX_HEAD / 1024);
    case 501: return pl_strdup("this HTTP method is not supported");
    default: return pl_strdupf("the request was refused (%d)", status);
    }
}

void evhttp_send_error(struct evhttp_request *req, int status, const char *reason) {
    pl_conn *c = conn_of(req);
    const char *phrase = reason;
    if (status < 400) status = 400;
    /* libevent says 400 for a head over the limit too; the bytes this request
     * has sent tell the two apart (a broken Content-Length followed by more
     * than the limit of body in the same breath is also called too large) */
    if (status == 400 && c && c->received > PL_CONN_MAX_HEAD) {
        status = 431;
        phrase = "Request Header Fields Too Large";
    }
    if (status == 413 && c && c->route) {
        const char *length = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Length");
        pl_warn("a post to %.200s was refused: %s (Content-Length %.20s)", c->route,
                c->crowded ? "too many large posts at once, 503 to retry" : "over the route's body limit",
                length ? length : "none");
    }
    if (status == 413 && c && c->crowded) {
        status = 503;
        phrase = "Service Unavailable";
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "30");
    }
    char *text = refusal(req, status, c);
    json_t *body = json_pack("{s:s}", "error", text);
    char *dumped = json_dumps(body, JSON_COMPACT);
    struct evbuffer *out = evbuffer_new();
    if (!dumped || !out) abort();
    evbuffer_add_printf(out, "%s\n", dumped);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_remove_header(h, "Content-Type");
    evhttp_add_header(h, "Content-Type", "application/json; charset=utf-8");
    /* what follows on the connection cannot be trusted to start a request */
    evhttp_add_header(h, "Connection", "close");
    if (req->major == 0) { /* no request line was read: answer HTTP/1.1, as libevent's page does */
        req->major = 1;
        req->minor = 1;
    }
    pl_reply_count(req, status);
    evhttp_send_reply(req, status, phrase, out);
    evbuffer_free(out);
    free(dumped);
    json_decref(body);
    free(text);
}
