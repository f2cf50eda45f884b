/* test_pg_schema: the store's migrations on PostgreSQL
 * (runtime/store/pg_schema.c), each case on a fresh database of the run's
 * private server: a new database gets every migration once; a second start
 * applies none; three nodes starting at once take turns and the schema is
 * made once; the transcript's view gives a turn's row as two lines (id and
 * id + 1) and takes a line written into it; a database newer than this
 * parley is refused; a failing migration is rolled back whole; the outcome
 * always comes from the loop. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pg_loop.h"
#include "store/pg.h"
#include "store/pg_schema.h"

typedef struct {
    int finished;
    int version;
    char *error;
} migrated;

static void on_migrated(int version, const char *error, void *ud) {
    migrated *m = ud;
    m->finished = 1;
    m->version = version;
    free(m->error);
    m->error = error ? strdup(error) : NULL;
}

/* The rows of one query, as "a|b;c|d" (new), or NULL on error. */
typedef struct {
    int finished;
    char *text;
    char *error;
} rows;

static void on_rows(const PGresult *res, const char *error, void *ud) {
    rows *r = ud;
    if (error) {
        r->error = strdup(error);
        return;
    }
    size_t cap = 64, len = 0;
    r->text = calloc(1, cap);
    for (int i = 0; i < PQntuples(res); i++)
        for (int j = 0; j < PQnfields(res); j++) {
            const char *v = PQgetisnull(res, i, j) ? "NULL" : PQgetvalue(res, i, j);
            size_t need = len + strlen(v) + 2;
            if (need >= cap) r->text = realloc(r->text, cap = need * 2);
            len += (size_t)sprintf(r->text + len, "%s%s", (i || j) ? (j ? "|" : ";") : "", v);
        }
}

static void on_rows_synced(const PGresult *res, const char *error, void *ud) {
    (void)res;
    (void)error;
    ((rows *)ud)->finished = 1;
}

/* Runs sql alone in a batch; its rows as text (new) or NULL. */
static char *query(struct event_base *base, pl_pg *pg, const char *sql) {
    rows r = {0};
    if (pl_pg_exec(pg, NULL, sql, 0, NULL, on_rows, &r) != 0 || pl_pg_sync(pg, on_rows_synced, &r) != 0) return NULL;
    run_until(base, &r.finished);
    if (r.error) printf("#   %s: %s\n", sql, r.error);
    free(r.error);
    return r.text;
}

static int migrate(struct event_base *base, pl_pg *pg, long long now, migrated *m) {
    pl_pg_migrate(pg, now, on_migrated, m);
    run_until(base, &m->finished);
    return m->version;
}

TEST(a_new_database_gets_every_migration_once) {
    pg_case t;
    pg_case_open(&t, "parley_schema_new");
    struct event_base *base = t.base;
    pl_pg *pg = t.pg;
    if (pg) {
        migrated m = {0};
        CHECK(migrate(base, pg, 1000, &m) == pl_pg_schema_latest());
        CHECK(pl_pg_schema_latest() == 12);
        char *text = query(base, pg, "SELECT version, applied_at FROM schema_migrations ORDER BY version");
        CHECK_STR(text, "1|1000;2|1000;3|1000;4|1000;5|1000;6|1000;7|1000;8|1000;9|1000;10|1000;11|1000;12|1000");
        free(text);
        text = query(base, pg,
                     "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables"
                     " WHERE table_schema = 'public'");
        CHECK_STR(text, "analytics_days,discount_uses,events,handoffs,inbox,jobs,orders,outbox,payload_map,products,"
                        "schema_migrations,sessions,settings,stock,transcript,transcript_rows");
        free(text);
        /* started again: nothing to apply, nothing recorded twice */
        migrated again = {0};
        CHECK(migrate(base, pg, 2000, &again) == 12);
        text = query(base, pg, "SELECT count(*), max(applied_at) FROM schema_migrations");
        CHECK_STR(text, "12|1000");
        free(text);
        free(m.error);
        free(again.error);
    }
    pg_case_close(&t);
}

TEST(nodes_starting_at_once_take_turns) {
    char *info = fresh_database("parley_schema_race");
    CHECK(info != NULL);
    struct event_base *base = event_base_new();
    enum { NODES = 3 };
    conn_state s[NODES] = {{0}};
    pl_pg *pg[NODES] = {0};
    migrated m[NODES] = {{0}};
    for (int i = 0; i < NODES; i++) pg[i] = connect_to(base, &s[i], info);
    for (int i = 0; i < NODES; i++) CHECK(pg[i] != NULL);
    if (pg[0] && pg[1] && pg[2]) {
        for (int i = 0; i < NODES; i++) pl_pg_migrate(pg[i], 100 + i, on_migrated, &m[i]);
        for (int i = 0; i < NODES; i++) run_until(base, &m[i].finished);
        for (int i = 0; i < NODES; i++) {
            CHECK(m[i].version == 12);
            CHECK(m[i].error == NULL);
        }
        char *text = query(base, pg[0], "SELECT count(*), count(DISTINCT applied_at) FROM schema_migrations");
        CHECK_STR(text, "12|1"); /* all twelve by one of the nodes */
        free(text);
    }
    for (int i = 0; i < NODES; i++) {
        pl_pg_free(pg[i]);
        free(s[i].error);
        free(m[i].error);
    }
    event_base_free(base);
    free(info);
}

TEST(a_turn_row_is_two_lines_of_the_view) {
    pg_case t;
    pg_case_open(&t, "parley_schema_view");
    struct event_base *base = t.base;
    pl_pg *pg = t.pg;
    if (pg) {
        migrated m = {0};
        CHECK(migrate(base, pg, 1, &m) == 12);
        char *a = query(base, pg,
                        "INSERT INTO transcript_rows (bot, channel, \"user\", at, direction, body, reply_at, reply)"
                        " VALUES ('b', 'rest', 'u', 10, 'in', '{\"text\":\"hi\"}', 11, '[]') RETURNING id");
        char *b = query(base, pg,
                        "INSERT INTO transcript (bot, channel, \"user\", at, direction, body)"
                        " VALUES ('b', 'rest', 'u', 12, 'out', '[{\"text\":\"pushed\"}]')");
        char *c = query(base, pg,
                        "INSERT INTO transcript_rows (bot, channel, \"user\", at, direction, body, reply_at, reply)"
                        " VALUES ('b', 'rest', 'u', 13, 'in', '{\"text\":\"more\"}', 14, '[]') RETURNING id");
        CHECK(a && b && c);
        if (a && c) {
            long first = atol(a), third = atol(c);
            char *lines = query(base, pg, "SELECT id, at, direction FROM transcript ORDER BY id");
            char want[200];
            snprintf(want, sizeof want, "%ld|10|in;%ld|11|out;%ld|12|out;%ld|13|in;%ld|14|out", first, first + 1,
                     first + 2, third, third + 1);
            CHECK_STR(lines, want);
            CHECK(third == first + 4);
            free(lines);
        }
        free(a);
        free(b);
        free(c);
        free(m.error);
    }
    pg_case_close(&t);
}

TEST(a_newer_database_is_refused) {
    pg_case t;
    pg_case_open(&t, "parley_schema_newer");
    struct event_base *base = t.base;
    pl_pg *pg = t.pg;
    if (pg) {
        migrated m = {0};
        CHECK(migrate(base, pg, 1, &m) == 12);
        free(query(base, pg, "INSERT INTO schema_migrations VALUES (99, 5)"));
        migrated newer = {0};
        CHECK(migrate(base, pg, 2, &newer) == -1);
        CHECK(newer.error && strstr(newer.error, "version 99, newer than this parley's 12"));
        /* the connection is still good: the transaction was rolled back */
        char *text = query(base, pg, "SELECT max(version) FROM schema_migrations");
        CHECK_STR(text, "99");
        free(text);
        free(m.error);
        free(newer.error);
    }
    pg_case_close(&t);
}

TEST(a_failing_migration_leaves_nothing_behind) {
    pg_case t;
    pg_case_open(&t, "parley_schema_clash");
    struct event_base *base = t.base;
    pl_pg *pg = t.pg;
    if (pg) {
        /* a table of migration 1's name that someone made by hand */
        free(query(base, pg, "CREATE TABLE products (sku text)"));
        migrated m = {0};
        CHECK(migrate(base, pg, 1, &m) == -1);
        CHECK(m.error && strstr(m.error, "migration 1 failed: ") && strstr(m.error, "\"products\" already exists"));
        /* rolled back whole (not even the versions' table is left), and the
         * connection still serves */
        char *text = query(base, pg,
                           "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables"
                           " WHERE table_schema = 'public'");
        CHECK_STR(text, "products");
        free(text);
        CHECK(pl_pg_is_up(pg));
        free(m.error);
    }
    pg_case_close(&t);
}

TEST(migrating_over_a_connection_that_is_down_answers_from_the_loop) {
    struct event_base *base = event_base_new();
    conn_state s = {.base = base};
    char *err = NULL;
    pl_pg *pg = pl_pg_connect(base, "host=/nonexistent-parley-dir port=5432 user=parley dbname=postgres", on_state,
                              &s, &err);
    CHECK(pg != NULL && run_until(base, &s.down));
    migrated m = {0};
    pl_pg_migrate(pg, 1, on_migrated, &m);
    CHECK(m.finished == 0); /* not from inside the call */
    CHECK(run_until(base, &m.finished));
    CHECK(m.version == -1);
    CHECK(m.error && strstr(m.error, "connection is down"));
    free(m.error);
    pl_pg_free(pg);
    free(s.error);
    free(err);
    event_base_free(base);
}

int main(void) {
    RUN(a_new_database_gets_every_migration_once);
    RUN(nodes_starting_at_once_take_turns);
    RUN(a_turn_row_is_two_lines_of_the_view);
    RUN(a_newer_database_is_refused);
    RUN(a_failing_migration_leaves_nothing_behind);
    RUN(migrating_over_a_connection_that_is_down_answers_from_the_loop);
    return check_done();
}
