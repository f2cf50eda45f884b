/* test_pg: the PostgreSQL connection of runtime/store/pg.c against the
 * private server tests/run.sh starts for the run (tests/pg/cluster.sh; its
 * connection string in PARLEY_TEST_PG): connecting on the loop, statements
 * sent in a pipeline and answered in order, a batch that is one implicit
 * transaction, a failing statement that stops only the rest of its batch,
 * parameters as text and NULL, a server that is not there, a connection
 * the server drops (and connecting again), notifications (LISTEN/NOTIFY)
 * heard, callbacks that free the connection, a wrong call refused, an answer
 * not held behind the next batch, and a server that never answers. Without PARLEY_TEST_PG each case fails and says why. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>

#include "check.h"
#include "pg_loop.h"
#include "store/pg.h"

/* --- collecting results ---------------------------------------------------- */

typedef struct {
    int count;       /* callbacks so far */
    int order[512];  /* the tag of each callback, in the order they came */
    char *value[512];
    char *error[512];
    int synced;
} results;

typedef struct {
    results *r;
    int tag;
} slot;

static slot slots[512];

static void on_result(const PGresult *res, const char *error, void *ud) {
    slot *sl = ud;
    results *r = sl->r;
    int i = r->count++;
    r->order[i] = sl->tag;
    r->value[i] = res && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    r->error[i] = error ? strdup(error) : NULL;
}

static void on_synced(const PGresult *res, const char *error, void *ud) {
    (void)res;
    results *r = ud;
    r->synced = error ? -1 : 1;
}

static void results_free(results *r) {
    for (int i = 0; i < r->count; i++) {
        free(r->value[i]);
        free(r->error[i]);
    }
    memset(r, 0, sizeof *r);
}

static int exec_tagged(pl_pg *pg, results *r, int tag, const char *sql, int n, const char *const *params) {
    slots[tag] = (slot){r, tag};
    return pl_pg_exec(pg, NULL, sql, n, params, on_result, &slots[tag]);
}

/* Ends the batch on pg and runs the loop until it is answered: 1 then. */
static int batch_answered(struct event_base *base, pl_pg *pg, results *r) {
    r->synced = 0;
    return pl_pg_sync(pg, on_synced, r) == 0 && run_until(base, &r->synced);
}

/* --- cases ------------------------------------------------------------------- */

TEST(connects_on_the_loop) {
    pg_case t;
    pg_case_open(&t, NULL);
    pl_pg *pg = t.pg;
    if (pg) {
        CHECK(pl_pg_is_up(pg));
        CHECK(t.s.up == 1 && t.s.down == 0);
        CHECK(pl_pg_in_flight(pg) == 0);
    }
    pg_case_close(&t);
}

TEST(a_pipeline_is_answered_in_order) {
    pg_case t;
    pg_case_open(&t, NULL);
    struct event_base *base = t.base;
    pl_pg *pg = t.pg;
    if (!pg) goto out;
    static results r;
    results_free(&r);
    CHECK(exec_tagged(pg, &r, 0, "CREATE TEMP TABLE t (n integer)", 0, NULL) == 0);
    slots[1] = (slot){&r, 1};
    CHECK(pl_pg_prepare(pg, "ins", "INSERT INTO t VALUES ($1)", on_result, &slots[1]) == 0);
    char numbers[200][12];
    for (int i = 0; i < 200; i++) {
        snprintf(numbers[i], sizeof numbers[i], "%d", i + 1);
        const char *param[] = {numbers[i]};
        slots[2 + i] = (slot){&r, 2 + i};
        CHECK(pl_pg_exec(pg, "ins", NULL, 1, param, on_result, &slots[2 + i]) == 0);
    }
    CHECK(exec_tagged(pg, &r, 202, "SELECT count(*) || ' ' || sum(n) FROM t", 0, NULL) == 0);
    CHECK(pl_pg_in_flight(pg) == 203);
    CHECK(pl_pg_sync(pg, on_synced, &r) == 0);
    CHECK(r.count == 0); /* nothing is answered before the loop runs */
    CHECK(run_until(base, &r.synced));
    CHECK(r.synced == 1);
    CHECK(r.count == 203);
    for (int i = 0; i < r.count; i++) {
        CHECK(r.order[i] == i);
        CHECK(r.error[i] == NULL);
    }
    CHECK_STR(r.value[202], "200 20100");
    CHECK(pl_pg_in_flight(pg) == 0);
    results_free(&r);
out:
    pg_case_close(&t);
}

TEST(a_failing_statement_stops_only_the_rest_of_its_batch) {
    pg_case t;
    pg_case_open(&t, NULL);
    struct event_base *base = t.base;
    pl_pg *pg = t.pg;
    if (!pg) goto out;
    static results r;
    results_free(&r);
    exec_tagged(pg, &r, 0, "CREATE TEMP TABLE u (n integer)", 0, NULL);
    pl_pg_sync(pg, NULL, NULL);
    /* one batch: an insert, a division by zero, then a statement not run */
    exec_tagged(pg, &r, 1, "INSERT INTO u VALUES (1)", 0, NULL);
    exec_tagged(pg, &r, 2, "SELECT 1 / 0", 0, NULL);
    exec_tagged(pg, &r, 3, "SELECT 'not run'", 0, NULL);
    pl_pg_sync(pg, NULL, NULL);
    /* the next batch runs, and sees the insert rolled back with its batch */
    exec_tagged(pg, &r, 4, "SELECT count(*) FROM u", 0, NULL);
    CHECK(batch_answered(base, pg, &r));
    CHECK(r.count == 5);
    CHECK(r.error[0] == NULL && r.error[1] == NULL);
    CHECK(r.error[2] && strstr(r.error[2], "division by zero"));
    CHECK(r.error[3] && strstr(r.error[3], "not run"));
    CHECK(r.error[4] == NULL);
    CHECK_STR(r.value[4], "0");
    CHECK(pl_pg_is_up(pg));
    results_free(&r);
out:
    pg_case_close(&t);
}

TEST(parameters_are_text_or_null) {
    pg_case t;
    pg_case_open(&t, NULL);
    struct event_base *base = t.base;
    pl_pg *pg = t.pg;
    if (!pg) goto out;
    static results r;
    results_free(&r);
    const char *params[] = {NULL, "h\xc3\xa9llo 'quoted'; DROP TABLE x; --"};
    exec_tagged(pg, &r, 0, "SELECT ($1::text IS NULL)::text || ' ' || $2::text", 2, params);
    CHECK(batch_answered(base, pg, &r));
    CHECK(r.count == 1);
    CHECK_STR(r.value[0], "true h\xc3\xa9llo 'quoted'; DROP TABLE x; --");
    results_free(&r);
out:
    pg_case_close(&t);
}

TEST(a_server_that_is_not_there) {
    struct event_base *base = event_base_new();
    conn_state s = {.base = base};
    char *err = NULL;
    pl_pg *pg = pl_pg_connect(base, "host=/nonexistent-parley-dir port=5432 user=parley dbname=postgres", on_state,
                              &s, &err);
    CHECK(pg != NULL);
    CHECK(run_until(base, &s.down));
    CHECK(s.up == 0 && s.down == 1);
    CHECK(s.error && strstr(s.error, "nonexistent-parley-dir"));
    CHECK(pg && !pl_pg_is_up(pg));
    CHECK(pg && pl_pg_exec(pg, NULL, "SELECT 1", 0, NULL, on_result, NULL) == -1);
    pl_pg_free(pg);
    free(s.error);
    /* a connection string libpq cannot read: said from the loop too */
    conn_state bad = {.base = base};
    pg = pl_pg_connect(base, "no_such_option=1", on_state, &bad, &err);
    CHECK(pg != NULL);
    CHECK(bad.down == 0); /* not from inside pl_pg_connect */
    CHECK(run_until(base, &bad.down));
    CHECK(bad.error && strstr(bad.error, "no_such_option"));
    pl_pg_free(pg);
    free(bad.error);
    free(err);
    event_base_free(base);
}

/* Leaves statement 1 of r on pg waiting for a lock killer holds, then has
 * killer end pg's connection (its answer in k): the server ends it while a
 * statement is in flight, and nothing here waits on a clock. */
static void end_while_in_flight(struct event_base *base, pl_pg *pg, pl_pg *killer, results *r, results *k) {
    static results held;
    results_free(&held);
    exec_tagged(killer, &held, 11, "SELECT pg_advisory_lock(4343)::text", 0, NULL);
    CHECK(batch_answered(base, killer, &held));
    exec_tagged(pg, r, 0, "SELECT pg_backend_pid()::text", 0, NULL);
    CHECK(batch_answered(base, pg, r));
    exec_tagged(pg, r, 1, "SELECT pg_advisory_lock(4343)::text", 0, NULL); /* waits: killer holds it */
    pl_pg_sync(pg, NULL, NULL);
    const char *param[] = {r->value[0] ? r->value[0] : "0"};
    exec_tagged(killer, k, 10, "SELECT pg_terminate_backend($1::integer)::text", 1, param);
    pl_pg_sync(killer, on_synced, k);
    results_free(&held);
}

TEST(a_dropped_connection_fails_what_was_in_flight) {
    struct event_base *base = event_base_new();
    conn_state s = {0}, killer_s = {0};
    pl_pg *pg = connect_up(base, &s);
    pl_pg *killer = pg ? connect_up(base, &killer_s) : NULL;
    CHECK(pg && killer);
    if (!pg || !killer) goto out;
    static results r, k;
    results_free(&r);
    results_free(&k);
    end_while_in_flight(base, pg, killer, &r, &k);
    CHECK(run_until(base, &s.down));
    CHECK(s.down == 1);
    CHECK(s.error != NULL);
    CHECK(r.count == 2);
    CHECK(r.error[1] != NULL); /* the statement in flight got the error */
    CHECK(!pl_pg_is_up(pg));
    CHECK(pl_pg_in_flight(pg) == 0);
    CHECK(run_until(base, &k.synced));
    CHECK_STR(k.value[0], "true");
    /* connecting again: up once more, and it serves */
    CHECK(pl_pg_reconnect(killer) == -1); /* (up: nothing to do) */
    int ups = s.up;
    s.settled = 0;
    CHECK(pl_pg_reconnect(pg) == 0);
    CHECK(run_until(base, &s.settled));
    CHECK(s.up == ups + 1 && pl_pg_is_up(pg));
    results_free(&r);
    exec_tagged(pg, &r, 0, "SELECT 'again'", 0, NULL);
    CHECK(batch_answered(base, pg, &r));
    CHECK_STR(r.value[0], "again");
    results_free(&r);
    results_free(&k);
out:
    pl_pg_free(pg);
    pl_pg_free(killer);
    free(s.error);
    free(killer_s.error);
    event_base_free(base);
}

typedef struct {
    int count, want, enough;
    char channel[4][32];
    char payload[4][64];
} heard;

static void on_notify(const char *channel, const char *payload, void *ud) {
    heard *h = ud;
    if (h->count < 4) {
        snprintf(h->channel[h->count], sizeof h->channel[0], "%s", channel);
        snprintf(h->payload[h->count], sizeof h->payload[0], "%s", payload);
    }
    h->count++;
    h->enough = h->count >= h->want;
}

TEST(a_listener_hears_what_another_connection_committed) {
    struct event_base *base = event_base_new();
    conn_state ls = {0}, ts = {0};
    pl_pg *listener = connect_up(base, &ls);
    pl_pg *talker = listener ? connect_up(base, &ts) : NULL;
    CHECK(listener && talker);
    if (!listener || !talker) goto out;
    heard h = {.want = 2};
    pl_pg_on_notify(listener, on_notify, &h);
    static results r;
    results_free(&r);
    exec_tagged(listener, &r, 0, "LISTEN parley_lines", 0, NULL);
    CHECK(batch_answered(base, listener, &r));
    /* two in one transaction arrive at its commit, in order; one on a
     * channel nobody listens to is not heard */
    static results t;
    results_free(&t);
    const char *first[] = {"{\"bot\":\"b\",\"id\":41}"};
    exec_tagged(talker, &t, 1, "SELECT pg_notify('parley_lines', $1)", 1, first);
    exec_tagged(talker, &t, 2, "NOTIFY parley_elsewhere, 'no'", 0, NULL);
    exec_tagged(talker, &t, 3, "NOTIFY parley_lines, 'second'", 0, NULL);
    CHECK(batch_answered(base, talker, &t));
    CHECK(run_until(base, &h.enough));
    /* a round trip more on the listener: anything else sent would be read by now */
    r.synced = 0;
    exec_tagged(listener, &r, 1, "SELECT 1", 0, NULL);
    CHECK(batch_answered(base, listener, &r));
    CHECK(h.count == 2);
    CHECK_STR(h.channel[0], "parley_lines");
    CHECK_STR(h.payload[0], "{\"bot\":\"b\",\"id\":41}");
    CHECK_STR(h.payload[1], "second");
    results_free(&r);
    results_free(&t);
out:
    pl_pg_free(listener);
    pl_pg_free(talker);
    free(ls.error);
    free(ts.error);
    event_base_free(base);
}

/* --- what a caller may do ----------------------------------------------------- */

typedef struct {
    pl_pg **pg;
    int calls;
} freer;

static void free_in_result(const PGresult *res, const char *error, void *ud) {
    (void)res;
    (void)error;
    freer *f = ud;
    f->calls++;
    pl_pg_free(*f->pg);
    *f->pg = NULL;
}

TEST(a_callback_may_free_the_connection) {
    struct event_base *base = event_base_new();
    conn_state s = {0};
    pl_pg *pg = connect_up(base, &s);
    CHECK(pg != NULL);
    if (pg) {
        /* freed by the first statement's callback: the second gets none */
        freer f = {&pg, 0};
        static results r;
        results_free(&r);
        CHECK(pl_pg_exec(pg, NULL, "SELECT 1", 0, NULL, free_in_result, &f) == 0);
        CHECK(exec_tagged(pg, &r, 0, "SELECT 2", 0, NULL) == 0);
        CHECK(pl_pg_sync(pg, on_synced, &r) == 0);
        CHECK(run_until(base, &f.calls));
        CHECK(pg == NULL);
        CHECK(f.calls == 1);
        CHECK(r.count == 0);
        results_free(&r);
    }
    free(s.error);
    event_base_free(base);
}

static void free_when_down(pl_pg *pg, const char *error, void *ud) {
    on_state(pg, error, ud);
    if (error) pl_pg_free(pg);
}

TEST(on_state_may_free_the_connection) {
    const char *info = server();
    struct event_base *base = event_base_new();
    conn_state s = {.base = base}, killer_s = {0};
    char *err = NULL;
    pl_pg *pg = info ? pl_pg_connect(base, info, free_when_down, &s, &err) : NULL;
    CHECK(pg != NULL);
    if (pg) CHECK(run_until(base, &s.settled) && s.up == 1);
    pl_pg *killer = pg ? connect_up(base, &killer_s) : NULL;
    if (pg && killer) {
        static results r, k;
        results_free(&r);
        results_free(&k);
        /* in flight when the server ends the connection: its failure, then
         * on_state, which frees the connection */
        end_while_in_flight(base, pg, killer, &r, &k);
        CHECK(run_until(base, &s.down));
        CHECK(r.count == 2 && r.error[1] != NULL);
        CHECK(run_until(base, &k.synced));
        results_free(&r);
        results_free(&k);
    }
    pl_pg_free(killer);
    free(s.error);
    free(killer_s.error);
    free(err);
    event_base_free(base);
}

TEST(a_wrong_call_is_refused_and_the_connection_kept) {
    pg_case t;
    pg_case_open(&t, NULL);
    struct event_base *base = t.base;
    pl_pg *pg = t.pg;
    if (pg) {
        static results r;
        results_free(&r);
        CHECK(exec_tagged(pg, &r, 0, "SELECT 'before'", 0, NULL) == 0);
        CHECK(pl_pg_exec(pg, NULL, NULL, 0, NULL, on_result, NULL) == -1);
        CHECK(pl_pg_exec(pg, NULL, "SELECT $1", 70000, NULL, on_result, NULL) == -1);
        CHECK(pl_pg_prepare(pg, NULL, "SELECT 1", on_result, NULL) == -1);
        CHECK(exec_tagged(pg, &r, 1, "SELECT 'after'", 0, NULL) == 0);
        CHECK(pl_pg_sync(pg, on_synced, &r) == 0);
        CHECK(run_until(base, &r.synced));
        CHECK(r.count == 2);
        CHECK_STR(r.value[0], "before");
        CHECK_STR(r.value[1], "after");
        CHECK(pl_pg_is_up(pg) && t.s.down == 0);
        results_free(&r);
    }
    pg_case_close(&t);
}

/* A batch's answer is read while the next batch, too big to send at once,
 * waits on a lock: libpq reads answers while it sends, and those must not
 * wait for the socket to say it is readable again. */
TEST(an_answer_does_not_wait_behind_the_next_batch) {
    struct event_base *base = event_base_new();
    conn_state s = {0}, hs = {0};
    pl_pg *pg = connect_up(base, &s);
    pl_pg *holder = pg ? connect_up(base, &hs) : NULL;
    CHECK(pg && holder);
    if (pg && holder) {
        static results h, r;
        results_free(&h);
        results_free(&r);
        exec_tagged(holder, &h, 0, "SELECT pg_advisory_lock(4242)::text", 0, NULL);
        pl_pg_sync(holder, on_synced, &h);
        CHECK(run_until(base, &h.synced));
        /* batch 1, then at once batch 2 with 8 MB that blocks on the lock */
        results first = {0};
        slots[20] = (slot){&first, 20};
        pl_pg_exec(pg, NULL, "SELECT 'first'", 0, NULL, on_result, &slots[20]);
        pl_pg_sync(pg, on_synced, &first);
        size_t big = 8u << 20;
        char *blob = malloc(big + 1);
        memset(blob, 'x', big);
        blob[big] = '\0';
        const char *param[] = {blob};
        exec_tagged(pg, &r, 0, "SELECT (pg_advisory_lock(4242)::text || length($1))", 1, param);
        pl_pg_sync(pg, on_synced, &r);
        free(blob);
        CHECK(run_until(base, &first.synced));
        CHECK_STR(first.value[0], "first");
        CHECK(r.count == 0); /* still waiting for the lock */
        h.synced = 0;
        exec_tagged(holder, &h, 1, "SELECT pg_advisory_unlock(4242)::text", 0, NULL);
        pl_pg_sync(holder, on_synced, &h);
        CHECK(run_until(base, &r.synced));
        CHECK_STR(r.value[0], "8388608");
        results_free(&first);
        results_free(&h);
        results_free(&r);
    }
    pl_pg_free(pg);
    pl_pg_free(holder);
    free(s.error);
    free(hs.error);
    event_base_free(base);
}

/* A server that takes the connection and never answers: the deadline of
 * the connection string's connect_timeout (libpq's own polling has none). */
TEST(a_silent_server_times_out) {
    evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && listen(fd, 4) == 0 &&
          getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    char info[200];
    snprintf(info, sizeof info, "hostaddr=127.0.0.1 port=%d user=parley dbname=postgres connect_timeout=1",
             ntohs(addr.sin_port));
    struct event_base *base = event_base_new();
    conn_state s = {.base = base};
    char *err = NULL;
    pl_pg *pg = pl_pg_connect(base, info, on_state, &s, &err);
    CHECK(pg != NULL);
    CHECK(run_until(base, &s.down));
    CHECK(s.up == 0);
    CHECK(s.error && strstr(s.error, "within 1 s of connecting"));
    pl_pg_free(pg);
    free(s.error);
    free(err);
    event_base_free(base);
    evutil_closesocket(fd);
}

int main(void) {
    RUN(connects_on_the_loop);
    RUN(a_pipeline_is_answered_in_order);
    RUN(a_failing_statement_stops_only_the_rest_of_its_batch);
    RUN(parameters_are_text_or_null);
    RUN(a_server_that_is_not_there);
    RUN(a_dropped_connection_fails_what_was_in_flight);
    RUN(a_listener_hears_what_another_connection_committed);
    RUN(a_callback_may_free_the_connection);
    RUN(on_state_may_free_the_connection);
    RUN(a_wrong_call_is_refused_and_the_connection_kept);
    RUN(an_answer_does_not_wait_behind_the_next_batch);
    RUN(a_silent_server_times_out);
    return check_done();
}
