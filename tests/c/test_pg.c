/* test_pg: the PostgreSQL connection of runtime/store/pg.c against the
 * private server tests/run.sh starts for the run (tests/pg/cluster.sh; its
 * connection string in PARLEY_TEST_PG): connecting on the loop, statements
 * sent in a pipeline and answered in order, a batch that is one implicit
 * transaction, a failing statement that stops only the rest of its batch,
 * parameters as text and NULL, a server that is not there, a connection
 * the server drops, and notifications (LISTEN/NOTIFY) heard. Without PARLEY_TEST_PG each case fails and says why. */
#include <event2/event.h>
#include <stdlib.h>
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

/* --- cases ------------------------------------------------------------------- */

TEST(connects_on_the_loop) {
    struct event_base *base = event_base_new();
    conn_state s = {0};
    pl_pg *pg = connect_up(base, &s);
    CHECK(pg != NULL);
    if (pg) {
        CHECK(pl_pg_is_up(pg));
        CHECK(s.up == 1 && s.down == 0);
        CHECK(pl_pg_in_flight(pg) == 0);
    }
    pl_pg_free(pg);
    free(s.error);
    event_base_free(base);
}

TEST(a_pipeline_is_answered_in_order) {
    struct event_base *base = event_base_new();
    conn_state s = {0};
    pl_pg *pg = connect_up(base, &s);
    CHECK(pg != NULL);
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
    pl_pg_free(pg);
    free(s.error);
    event_base_free(base);
}

TEST(a_failing_statement_stops_only_the_rest_of_its_batch) {
    struct event_base *base = event_base_new();
    conn_state s = {0};
    pl_pg *pg = connect_up(base, &s);
    CHECK(pg != NULL);
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
    CHECK(pl_pg_sync(pg, on_synced, &r) == 0);
    CHECK(run_until(base, &r.synced));
    CHECK(r.count == 5);
    CHECK(r.error[0] == NULL && r.error[1] == NULL);
    CHECK(r.error[2] && strstr(r.error[2], "division by zero"));
    CHECK(r.error[3] && strstr(r.error[3], "not run"));
    CHECK(r.error[4] == NULL);
    CHECK_STR(r.value[4], "0");
    CHECK(pl_pg_is_up(pg));
    results_free(&r);
out:
    pl_pg_free(pg);
    free(s.error);
    event_base_free(base);
}

TEST(parameters_are_text_or_null) {
    struct event_base *base = event_base_new();
    conn_state s = {0};
    pl_pg *pg = connect_up(base, &s);
    CHECK(pg != NULL);
    if (!pg) goto out;
    static results r;
    results_free(&r);
    const char *params[] = {NULL, "h\xc3\xa9llo 'quoted'; DROP TABLE x; --"};
    exec_tagged(pg, &r, 0, "SELECT ($1::text IS NULL)::text || ' ' || $2::text", 2, params);
    CHECK(pl_pg_sync(pg, on_synced, &r) == 0);
    CHECK(run_until(base, &r.synced));
    CHECK(r.count == 1);
    CHECK_STR(r.value[0], "true h\xc3\xa9llo 'quoted'; DROP TABLE x; --");
    results_free(&r);
out:
    pl_pg_free(pg);
    free(s.error);
    event_base_free(base);
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
    exec_tagged(pg, &r, 0, "SELECT pg_backend_pid()::text", 0, NULL);
    pl_pg_sync(pg, on_synced, &r);
    CHECK(run_until(base, &r.synced));
    char *pid = r.value[0] ? strdup(r.value[0]) : strdup("0");
    r.synced = 0;
    exec_tagged(pg, &r, 1, "SELECT pg_sleep(30)", 0, NULL);
    pl_pg_sync(pg, NULL, NULL);
    const char *param[] = {pid};
    slots[10] = (slot){&k, 10};
    pl_pg_exec(killer, NULL, "SELECT pg_terminate_backend($1::integer)::text", 1, param, on_result, &slots[10]);
    pl_pg_sync(killer, on_synced, &k);
    CHECK(run_until(base, &s.down));
    CHECK(s.down == 1);
    CHECK(s.error != NULL);
    CHECK(r.count == 2);
    CHECK(r.error[1] != NULL); /* the sleep, in flight, got the error */
    CHECK(!pl_pg_is_up(pg));
    CHECK(pl_pg_in_flight(pg) == 0);
    CHECK(run_until(base, &k.synced));
    CHECK_STR(k.value[0], "true");
    free(pid);
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
    CHECK(pl_pg_sync(listener, on_synced, &r) == 0);
    CHECK(run_until(base, &r.synced));
    /* two in one transaction arrive at its commit, in order; one on a
     * channel nobody listens to is not heard */
    static results t;
    results_free(&t);
    const char *first[] = {"{\"bot\":\"b\",\"id\":41}"};
    exec_tagged(talker, &t, 1, "SELECT pg_notify('parley_lines', $1)", 1, first);
    exec_tagged(talker, &t, 2, "NOTIFY parley_elsewhere, 'no'", 0, NULL);
    exec_tagged(talker, &t, 3, "NOTIFY parley_lines, 'second'", 0, NULL);
    CHECK(pl_pg_sync(talker, on_synced, &t) == 0);
    CHECK(run_until(base, &t.synced));
    CHECK(run_until(base, &h.enough));
    /* a round trip more on the listener: anything else sent would be read by now */
    r.synced = 0;
    exec_tagged(listener, &r, 1, "SELECT 1", 0, NULL);
    CHECK(pl_pg_sync(listener, on_synced, &r) == 0);
    CHECK(run_until(base, &r.synced));
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

int main(void) {
    RUN(connects_on_the_loop);
    RUN(a_pipeline_is_answered_in_order);
    RUN(a_failing_statement_stops_only_the_rest_of_its_batch);
    RUN(parameters_are_text_or_null);
    RUN(a_server_that_is_not_there);
    RUN(a_dropped_connection_fails_what_was_in_flight);
    RUN(a_listener_hears_what_another_connection_committed);
    return check_done();
}
