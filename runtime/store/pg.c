/* pg: one PostgreSQL connection on the event loop; see pg.h. Owns the
 * libpq connection, its socket's events and the queue of statements and
 * sync points whose results have not come back yet.
 *
 * libpq: "Asynchronous Command Processing" (PQconnectStart/PQconnectPoll,
 * PQsetnonblocking, PQflush, PQconsumeInput, PQisBusy) and "Pipeline Mode"
 * (PQenterPipelineMode, PQpipelineSync, PGRES_PIPELINE_SYNC and
 * PGRES_PIPELINE_ABORTED) in the PostgreSQL manual's chapter on libpq. */
#include "pg.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"

typedef struct item {
    struct item *next;
    int is_sync;
    int answered; /* a statement whose first result went to done */
    pl_pg_result_fn done;
    void *ud;
} item;

struct pl_pg {
    struct event_base *base;
    PGconn *conn;
    evutil_socket_t fd;
    struct event *read_ev, *write_ev;
    struct event *connect_ev; /* while connecting: the one wait libpq asked for */
    int up;
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

/* The message without libpq's trailing newline (new). */
static char *message_of(const char *text) {
    size_t len = text ? strlen(text) : 0;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ')) len--;
    return len ? pl_strndup(text, len) : pl_strdup("the database connection failed");
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

/* The connection is down: every item waiting gets why, then on_state. */
static void go_down(pl_pg *pg, const char *why) {
    free(pg->error);
    pg->error = message_of(why);
    pg->up = 0;
    if (pg->read_ev) event_del(pg->read_ev);
    if (pg->write_ev) event_del(pg->write_ev);
    while (pg->head) {
        item *it = pop(pg);
        if (it->done && !it->answered) it->done(NULL, pg->error, it->ud);
        free(it);
    }
    if (pg->on_state) pg->on_state(pg, pg->error, pg->ud);
}

/* Sends what libpq has buffered; waits for the socket when it could not
 * send it all. */
static void flush_out(pl_pg *pg) {
    int rc = PQflush(pg->conn);
    if (rc < 0) go_down(pg, PQerrorMessage(pg->conn));
    else if (rc > 0) event_add(pg->write_ev, NULL);
    else event_del(pg->write_ev);
}

/* One result (or libpq's NULL that ends a statement's results) for the
 * oldest item. Returns 0 when nothing more can be read now. */
static int take_result(pl_pg *pg) {
    if (!pg->head || PQisBusy(pg->conn)) return 0;
    PGresult *r = PQgetResult(pg->conn);
    item *it = pg->head;
    if (it->is_sync) {
        if (!r) return 0; /* nothing yet */
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st != PGRES_PIPELINE_SYNC) return 1; /* not ours: skipped */
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
                                                     : message_of(PQresultErrorMessage(r));
            it->done(NULL, why, it->ud);
            free(why);
        }
    }
    PQclear(r);
    return 1;
}

static void read_results(pl_pg *pg) {
    if (!PQconsumeInput(pg->conn)) {
        go_down(pg, PQerrorMessage(pg->conn));
        return;
    }
    while (pg->up && take_result(pg)) {
    }
    /* notifications of the channels this connection LISTENs to */
    for (PGnotify *n; pg->up && (n = PQnotifies(pg->conn));) {
        if (pg->on_notify) pg->on_notify(n->relname, n->extra, pg->notify_ud);
        PQfreemem(n);
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_pg *pg = arg;
    if (pg->up) read_results(pg);
}

static void on_writable(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_pg *pg = arg;
    if (pg->up) flush_out(pg);
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
        event_free(pg->connect_ev);
        pg->connect_ev = NULL;
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
    poll_connect(arg);
}

pl_pg *pl_pg_connect(struct event_base *base, const char *conninfo, pl_pg_state_fn on_state, void *ud, char **err) {
    PGconn *conn = PQconnectStart(conninfo);
    if (!conn) {
        pl_fail(err, "cannot start connecting to the database: out of memory");
        return NULL;
    }
    pl_pg *pg = calloc(1, sizeof *pg);
    if (!pg) abort();
    pg->base = base;
    pg->conn = conn;
    pg->fd = -1;
    pg->on_state = on_state;
    pg->ud = ud;
    PQsetNoticeProcessor(conn, on_notice, pg);
    /* libpq's first step is as if PQconnectPoll had asked to write; a bad
     * connection string fails at once, said from the loop all the same */
    if (PQstatus(conn) == CONNECTION_BAD || PQsocket(conn) < 0) wait_to_connect(pg, -1, EV_TIMEOUT);
    else wait_to_connect(pg, PQsocket(conn), EV_WRITE);
    return pg;
}

void pl_pg_free(pl_pg *pg) {
    if (!pg) return;
    if (pg->read_ev) event_free(pg->read_ev);
    if (pg->write_ev) event_free(pg->write_ev);
    if (pg->connect_ev) event_free(pg->connect_ev);
    while (pg->head) free(pop(pg));
    PQfinish(pg->conn);
    free(pg->error);
    free(pg);
}

void pl_pg_on_notify(pl_pg *pg, pl_pg_notify_fn fn, void *ud) {
    pg->on_notify = fn;
    pg->notify_ud = ud;
}

int pl_pg_is_up(const pl_pg *pg) { return pg->up; }
size_t pl_pg_in_flight(const pl_pg *pg) { return pg->in_flight; }

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

/* libpq refused to queue what it was given while up: the connection is
 * unusable; what was queued before gets the error (go_down). */
static int refused(pl_pg *pg) {
    go_down(pg, PQerrorMessage(pg->conn));
    return -1;
}

int pl_pg_prepare(pl_pg *pg, const char *name, const char *sql, pl_pg_result_fn done, void *ud) {
    if (!pg->up) return -1;
    if (!PQsendPrepare(pg->conn, name, sql, 0, NULL)) return refused(pg);
    push(pg, 0, done, ud);
    return 0;
}

int pl_pg_exec(pl_pg *pg, const char *name, const char *sql, int nparams, const char *const *params,
               pl_pg_result_fn done, void *ud) {
    if (!pg->up) return -1;
    int sent = name ? PQsendQueryPrepared(pg->conn, name, nparams, params, NULL, NULL, 0)
                    : PQsendQueryParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (!sent) return refused(pg);
    push(pg, 0, done, ud);
    return 0;
}

int pl_pg_sync(pl_pg *pg, pl_pg_result_fn done, void *ud) {
    if (!pg->up) return -1;
    if (!PQpipelineSync(pg->conn)) return refused(pg);
    push(pg, 1, done, ud);
    flush_out(pg);
    return 0;
}
