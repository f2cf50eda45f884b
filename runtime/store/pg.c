/* pg: one PostgreSQL connection on the event loop; see pg.h. Owns the
 * libpq connection, its socket's events, the connect deadline and the
 * queue of statements and sync points whose results have not come back.
 *
 * libpq: "Asynchronous Command Processing" (PQconnectStart/PQconnectPoll,
 * PQsetnonblocking, PQflush, PQconsumeInput, PQisBusy) and "Pipeline Mode"
 * (PQenterPipelineMode, PQpipelineSync, PGRES_PIPELINE_SYNC and
 * PGRES_PIPELINE_ABORTED) in the PostgreSQL manual's chapter on libpq.
 *
 * Callbacks may free the connection: every entry from the loop or from the
 * caller counts itself in `depth`, pl_pg_free inside one only marks the
 * connection freed, and the outermost entry frees it on its way out. */
#include "pg.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"

/* Seconds to connect when the connection string sets no connect_timeout
 * (PQconnectPoll never times out by itself). */
#define CONNECT_TIMEOUT_S 10

typedef struct item {
    struct item *next;
    int is_sync;
    int answered; /* a statement whose first result went to done */
    pl_pg_result_fn done;
    void *ud;
} item;

struct pl_pg {
    struct event_base *base;
    char *conninfo;
    PGconn *conn;
    evutil_socket_t fd;
    struct event *read_ev, *write_ev;
    struct event *connect_ev;    /* while connecting: the one wait libpq asked for */
    struct event *connect_timer; /* while connecting: the deadline */
    long connect_timeout_s;
    int up;
    int depth; /* entries running now (see the top) */
    int freed; /* pl_pg_free was called during one */
    pl_pg_state_fn on_state;
    void *ud;
    pl_pg_notify_fn on_notify;
    void *notify_ud;
    item *head, *tail;
    size_t in_flight;
    char *error; /* why the connection is down, once it is */
};

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_writable(evutil_socket_t fd, short what, void *arg);

static void enter(pl_pg *pg) { pg->depth++; }

static void destroy(pl_pg *pg);

/* Ends an entry; 1 when the connection was freed during it (and is gone). */
static int leave(pl_pg *pg) {
    if (--pg->depth > 0 || !pg->freed) return 0;
    destroy(pg);
    return 1;
}

/* The message without libpq's trailing newline (new). */
static char *message_of(const char *text) {
    size_t len = text ? strlen(text) : 0;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ')) len--;
    return len ? pl_strndup(text, len) : pl_strdup("the database gave no reason");
}

/* (Re)creates the socket's events when libpq's socket changed (it may while
 * connecting, trying one address after another). */
static void watch_socket(pl_pg *pg) {
    evutil_socket_t fd = PQsocket(pg->conn);
    if (fd == pg->fd && pg->read_ev) return;
    if (pg->read_ev) event_free(pg->read_ev);
    if (pg->write_ev) event_free(pg->write_ev);
    pg->read_ev = pg->write_ev = NULL;
    pg->fd = fd;
    if (fd < 0) return;
    pg->read_ev = event_new(pg->base, fd, EV_READ | EV_PERSIST, on_readable, pg);
    pg->write_ev = event_new(pg->base, fd, EV_WRITE | EV_PERSIST, on_writable, pg);
    if (!pg->read_ev || !pg->write_ev) abort();
}

/* Takes the oldest item off the queue (the caller calls its done). */
static item *pop(pl_pg *pg) {
    item *it = pg->head;
    pg->head = it->next;
    if (!pg->head) pg->tail = NULL;
    if (!it->is_sync) pg->in_flight--;
    return it;
}

static void stop_connecting(pl_pg *pg) {
    if (pg->connect_ev) event_free(pg->connect_ev);
    if (pg->connect_timer) event_free(pg->connect_timer);
    pg->connect_ev = pg->connect_timer = NULL;
}

/* The connection is down: every item waiting gets why, then on_state
 * (none once a callback freed the connection). */
static void go_down(pl_pg *pg, const char *why) {
    free(pg->error);
    pg->error = message_of(why);
    pg->up = 0;
    stop_connecting(pg);
    if (pg->read_ev) event_del(pg->read_ev);
    if (pg->write_ev) event_del(pg->write_ev);
    while (pg->head && !pg->freed) {
        item *it = pop(pg);
        if (it->done && !it->answered) it->done(NULL, pg->error, it->ud);
        free(it);
    }
    if (!pg->freed && pg->on_state) pg->on_state(pg, pg->error, pg->ud);
}

/* One result (or libpq's NULL that ends a statement's results) for the
 * oldest item. Returns 0 when nothing more can be read now. */
static int take_result(pl_pg *pg) {
    if (!pg->head || pg->freed || PQisBusy(pg->conn)) return 0;
    PGresult *r = PQgetResult(pg->conn);
    item *it = pg->head;
    if (it->is_sync) {
        if (!r) return 0; /* its PGRES_PIPELINE_SYNC has not come yet */
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_PIPELINE_SYNC) {
            /* the connection's end (connection_failed says so), or the
             * queue and libpq out of step: either way it is over */
            char *why = st == PGRES_FATAL_ERROR ? message_of(PQresultErrorMessage(r))
                                                : pl_strdup("the database's answers no longer match what was sent");
            PQclear(r);
            if (PQstatus(pg->conn) != CONNECTION_BAD) go_down(pg, why);
            free(why);
            return 0;
        }
        PQclear(r);
        it = pop(pg);
        if (it->done) it->done(NULL, NULL, it->ud);
        free(it);
        return 1;
    }
    if (!r) { /* the end of this statement's results */
        it = pop(pg);
        if (it->done && !it->answered) it->done(NULL, "the database sent no result", it->ud);
        free(it);
        return 1;
    }
    if (!it->answered) {
        it->answered = 1;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            if (it->done) it->done(r, NULL, it->ud);
        } else if (it->done) {
            char *why = st == PGRES_PIPELINE_ABORTED ? pl_strdup("not run: an earlier statement of its batch failed")
                      : st == PGRES_EMPTY_QUERY      ? pl_strdup("the statement is empty")
                                                     : message_of(PQresultErrorMessage(r));
            it->done(NULL, why, it->ud);
            free(why);
        }
    }
    PQclear(r);
    return 1;
}

/* Hands over what libpq has read and parsed: results, then notifications. */
static void deliver_read(pl_pg *pg) {
    while (take_result(pg)) {
    }
    for (PGnotify *n; pg->up && !pg->freed && (n = PQnotifies(pg->conn));) {
        if (pg->on_notify) pg->on_notify(n->relname, n->extra, pg->notify_ud);
        PQfreemem(n);
    }
}

/* The socket failed: what libpq had read already is still delivered
 * (a COMMIT whose answer came in is a COMMIT done), then the rest fails. */
static void connection_failed(pl_pg *pg) {
    char *why = message_of(PQerrorMessage(pg->conn));
    size_t bound = pg->in_flight * 4 + 16; /* libpq ends each statement's results */
    for (size_t i = 0; i < bound && take_result(pg); i++) {
    }
    if (!pg->freed && pg->up) go_down(pg, why);
    free(why);
}

/* Sends what libpq has buffered; waits for the socket when it could not
 * send it all. A partial send may have read answers into libpq's buffer,
 * which the socket's readiness would not tell: a read pass is scheduled. */
static void flush_out(pl_pg *pg) {
    int rc = PQflush(pg->conn);
    if (rc < 0) {
        connection_failed(pg);
        return;
    }
    if (rc > 0) event_add(pg->write_ev, NULL);
    else event_del(pg->write_ev);
    if (pg->head) event_active(pg->read_ev, EV_READ, 1);
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_pg *pg = arg;
    if (!pg->up) return;
    enter(pg);
    if (!PQconsumeInput(pg->conn)) connection_failed(pg);
    else deliver_read(pg);
    leave(pg);
}

static void on_writable(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_pg *pg = arg;
    if (!pg->up) return;
    enter(pg);
    flush_out(pg);
    leave(pg);
}

/* The server's notices ("relation already exists, skipping") go to the
 * log at debug level instead of libpq's stderr. */
static void on_notice(void *arg, const char *message) {
    (void)arg;
    char *text = message_of(message);
    pl_debug("postgresql: %s", text);
    free(text);
}

/* --- connecting -------------------------------------------------------------- */

static void on_connect_ready(evutil_socket_t fd, short what, void *arg);

/* One wait (what: EV_READ, EV_WRITE, or EV_TIMEOUT with fd -1 for "at once")
 * before the next step of connecting. */
static void wait_to_connect(pl_pg *pg, evutil_socket_t fd, short what) {
    if (pg->connect_ev) event_free(pg->connect_ev);
    pg->connect_ev = event_new(pg->base, fd, what, on_connect_ready, pg);
    if (!pg->connect_ev) abort();
    struct timeval now = {0, 0};
    event_add(pg->connect_ev, fd < 0 ? &now : NULL);
}

static void poll_connect(pl_pg *pg) {
    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        go_down(pg, PQerrorMessage(pg->conn));
        return;
    }
    PostgresPollingStatusType st = PQconnectPoll(pg->conn);
    if (st == PGRES_POLLING_FAILED) {
        go_down(pg, PQerrorMessage(pg->conn));
        return;
    }
    if (st == PGRES_POLLING_OK) {
        if (PQsetnonblocking(pg->conn, 1) != 0 || !PQenterPipelineMode(pg->conn)) {
            go_down(pg, PQerrorMessage(pg->conn));
            return;
        }
        stop_connecting(pg);
        watch_socket(pg);
        pg->up = 1;
        event_add(pg->read_ev, NULL);
        if (pg->on_state) pg->on_state(pg, NULL, pg->ud);
        return;
    }
    /* waits for the socket once, in the direction libpq asks */
    wait_to_connect(pg, PQsocket(pg->conn), st == PGRES_POLLING_READING ? EV_READ : EV_WRITE);
}

static void on_connect_ready(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_pg *pg = arg;
    enter(pg);
    poll_connect(pg);
    leave(pg);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_pg *pg = arg;
    enter(pg);
    char *why = pl_strdupf("no answer from the database within %ld s of connecting", pg->connect_timeout_s);
    go_down(pg, why);
    free(why);
    leave(pg);
}

/* The connection string's connect_timeout, else CONNECT_TIMEOUT_S. */
static long connect_timeout_s(PGconn *conn) {
    long seconds = CONNECT_TIMEOUT_S;
    PQconninfoOption *options = PQconninfo(conn);
    for (PQconninfoOption *o = options; o && o->keyword; o++)
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && atol(o->val) > 0) seconds = atol(o->val);
    PQconninfoFree(options);
    return seconds;
}

/* Starts a connection to pg->conninfo: 0, or -1 when libpq cannot even
 * start (out of memory). */
static int start_connecting(pl_pg *pg) {
    PGconn *conn = PQconnectStart(pg->conninfo);
    if (!conn) return -1;
    pg->conn = conn;
    PQsetNoticeProcessor(conn, on_notice, pg);
    /* libpq's first step is as if PQconnectPoll had asked to write; a bad
     * connection string fails at once, said from the loop all the same */
    if (PQstatus(conn) == CONNECTION_BAD || PQsocket(conn) < 0) {
        wait_to_connect(pg, -1, EV_TIMEOUT);
        return 0;
    }
    wait_to_connect(pg, PQsocket(conn), EV_WRITE);
    pg->connect_timer = evtimer_new(pg->base, on_connect_timeout, pg);
    if (!pg->connect_timer) abort();
    pg->connect_timeout_s = connect_timeout_s(conn);
    struct timeval deadline = {pg->connect_timeout_s, 0};
    evtimer_add(pg->connect_timer, &deadline);
    return 0;
}

pl_pg *pl_pg_connect(struct event_base *base, const char *conninfo, pl_pg_state_fn on_state, void *ud, char **err) {
    pl_pg *pg = calloc(1, sizeof *pg);
    if (!pg) abort();
    pg->base = base;
    pg->fd = -1;
    pg->on_state = on_state;
    pg->ud = ud;
    pg->conninfo = pl_strdup(conninfo);
    if (start_connecting(pg) != 0) {
        pl_fail(err, "cannot start connecting to the database: out of memory");
        free(pg->conninfo);
        free(pg);
        return NULL;
    }
    return pg;
}

int pl_pg_reconnect(pl_pg *pg) {
    if (pg->up || pg->freed || pg->connect_ev || pg->connect_timer) return -1;
    if (pg->read_ev) event_free(pg->read_ev);
    if (pg->write_ev) event_free(pg->write_ev);
    pg->read_ev = pg->write_ev = NULL;
    pg->fd = -1;
    PQfinish(pg->conn);
    pg->conn = NULL;
    if (start_connecting(pg) != 0) return -1;
    return 0;
}

static void destroy(pl_pg *pg) {
    if (pg->read_ev) event_free(pg->read_ev);
    if (pg->write_ev) event_free(pg->write_ev);
    stop_connecting(pg);
    while (pg->head) free(pop(pg));
    if (pg->conn) PQfinish(pg->conn);
    free(pg->conninfo);
    free(pg->error);
    free(pg);
}

void pl_pg_free(pl_pg *pg) {
    if (!pg) return;
    if (pg->depth > 0) pg->freed = 1; /* the outermost entry frees it */
    else destroy(pg);
}

void pl_pg_on_notify(pl_pg *pg, pl_pg_notify_fn fn, void *ud) {
    pg->on_notify = fn;
    pg->notify_ud = ud;
}

int pl_pg_is_up(const pl_pg *pg) { return pg->up && !pg->freed; }
size_t pl_pg_in_flight(const pl_pg *pg) { return pg->in_flight; }
struct event_base *pl_pg_base(const pl_pg *pg) { return pg->base; }

/* --- sending ------------------------------------------------------------------ */

static void push(pl_pg *pg, int is_sync, pl_pg_result_fn done, void *ud) {
    item *it = calloc(1, sizeof *it);
    if (!it) abort();
    it->is_sync = is_sync;
    it->done = done;
    it->ud = ud;
    if (pg->tail) pg->tail->next = it;
    else pg->head = it;
    pg->tail = it;
    if (!is_sync) pg->in_flight++;
}

/* After libpq took (sent = 1) or refused (0) a statement or sync point:
 * queues it. A refusal because the connection broke is found by a read
 * pass from the loop, which fails what was queued (never from inside the
 * caller's call); one for the caller's own mistake leaves the connection
 * as it was. libpq also sends on its own once its buffer is full, and may
 * read answers while it does, which the socket's readiness would not tell:
 * a read pass is scheduled either way. Returns what the public call does. */
static int queued(pl_pg *pg, int sent, int is_sync, pl_pg_result_fn done, void *ud) {
    event_active(pg->read_ev, EV_READ, 1);
    if (!sent) {
        if (PQstatus(pg->conn) != CONNECTION_BAD)
            pl_warn("postgresql: a statement was refused: %s", PQerrorMessage(pg->conn));
        return -1;
    }
    push(pg, is_sync, done, ud);
    return 0;
}

int pl_pg_prepare(pl_pg *pg, const char *name, const char *sql, pl_pg_result_fn done, void *ud) {
    if (!pl_pg_is_up(pg) || !name || !sql) return -1;
    return queued(pg, PQsendPrepare(pg->conn, name, sql, 0, NULL), 0, done, ud);
}

int pl_pg_exec(pl_pg *pg, const char *name, const char *sql, int nparams, const char *const *params,
               pl_pg_result_fn done, void *ud) {
    if (!pl_pg_is_up(pg) || (!name && !sql) || nparams < 0 || nparams > 65535 || (nparams > 0 && !params)) return -1;
    int sent = name ? PQsendQueryPrepared(pg->conn, name, nparams, params, NULL, NULL, 0)
                    : PQsendQueryParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    return queued(pg, sent, 0, done, ud);
}

int pl_pg_sync(pl_pg *pg, pl_pg_result_fn done, void *ud) {
    if (!pl_pg_is_up(pg)) return -1;
    if (queued(pg, PQpipelineSync(pg->conn), 1, done, ud) != 0) return -1;
    /* a send that fails is found by the read pass queued() scheduled */
    if (PQflush(pg->conn) > 0) event_add(pg->write_ev, NULL);
    return 0;
}
