/* test_store: the storage interface (store.h) — sessions, transcripts,
 * catalog copies, transactions, and every other call — once on SQLite and
 * once on PostgreSQL (the run's private server, a fresh database a case),
 * so both backends keep one contract; then what only SQLite has (its file,
 * its migrations of an old file) and what only several connections to one
 * PostgreSQL database show (de-duplication by constraints). */
#define _GNU_SOURCE
#include <event2/event.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "check.h"
#include "pg_loop.h"
#include "store/store.h"

static const pl_session_key alice = {"barista", "rest", "alice"};
static const pl_session_key bob = {"barista", "rest", "bob"};
static const pl_session_key alice_console = {"barista", "console", "alice"};
static const pl_session_key alice_other_bot = {"tea", "rest", "alice"};

/* The backend the contract cases run on: 0 SQLite (":memory:"), 1
 * PostgreSQL. */
static int on_postgres;

/* A postgres:// URL of a fresh database on the run's server (new), or
 * NULL (the case fails then). */
static char *fresh_database_url(void) {
    static int made;
    char name[64];
    snprintf(name, sizeof name, "parley_test_store_%d", ++made);
    return fresh_database_url_named(name);
}

/* An empty store on the backend of the run: SQLite in memory, or a fresh
 * PostgreSQL database. */
static pl_store *open_memory(void) {
    pl_store *store = NULL;
    char *err = NULL, *url = on_postgres ? fresh_database_url() : NULL;
    if (on_postgres && !url) return NULL;
    int rc = pl_store_open(url ? url : ":memory:", PL_SYNC_NORMAL, &store, &err);
    if (rc != 0) printf("#   open failed: %s\n", err);
    CHECK(rc == 0);
    free(err);
    free(url);
    return rc == 0 ? store : NULL;
}

/* A fresh temporary file name (the file is created empty, SQLite takes it). */
static char *temp_db(void) {
    char *path = strdup("/tmp/parley-test-store-XXXXXX");
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    return path;
}

static void remove_db(const char *path) {
    char side[512];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

/* The stored state of key, or NULL (new string). */
static char *get(pl_store *store, const pl_session_key *key) {
    char *state = (char *)"unset", *err = NULL;
    int rc = pl_store_session_get(store, key, &state, &err);
    if (rc != 0) printf("#   get failed: %s\n", err);
    free(err);
    return rc == 0 ? state : NULL;
}

static int put(pl_store *store, const pl_session_key *key, const char *state) {
    char *err = NULL;
    int rc = pl_store_session_put(store, key, state, -1, 1000, &err);
    if (rc != 0) printf("#   put failed: %s\n", err);
    free(err);
    return rc == 0;
}

TEST(open_memory) {
    pl_store *store = open_memory();
    CHECK(store != NULL);
    if (!store) return;
    CHECK(pl_store_session_count(store) == 0);
    CHECK(pl_store_catalog_count(store, "barista") == 0);
    pl_store_close(store);
}

TEST(ping_answers_in_and_out_of_a_transaction) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    CHECK(pl_store_ping(store, &err) == 0);
    CHECK(pl_store_begin(store, &err) == 0);
    CHECK(pl_store_ping(store, &err) == 0);
    CHECK(put(store, &alice, "{\"v\":1}"));
    CHECK(pl_store_commit(store, &err) == 0);
    CHECK(pl_store_ping(store, &err) == 0);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

TEST(open_file_and_reopen) {
    char *path = temp_db();
    pl_store *store = NULL;
    char *err = NULL;
    CHECK(pl_store_open(path, PL_SYNC_FULL, &store, &err) == 0);
    CHECK(err == NULL);
    if (store) {
        CHECK(put(store, &alice, "{\"n\":1}"));
        pl_store_close(store);
    }
    /* reopening finds the migrations recorded and the data kept */
    store = NULL;
    CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) == 0);
    if (err) printf("#   reopen: %s\n", err);
    free(err);
    err = NULL;
    if (store) {
        char *state = get(store, &alice);
        CHECK_STR(state, "{\"n\":1}");
        free(state);
        CHECK(pl_store_session_count(store) == 1);
        CHECK(put(store, &bob, "{}"));
        pl_store_close(store);
    }
    /* and a third time, after writing with the reopened store */
    store = NULL;
    CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) == 0);
    free(err);
    if (store) {
        CHECK(pl_store_session_count(store) == 2);
        pl_store_close(store);
    }
    remove_db(path);
    free(path);
}

/* Reads one integer with plain SQLite (to look at what the store recorded). */
static long long query_int(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

TEST(migrations_recorded_once) {
    char *path = temp_db();
    for (int round = 0; round < 3; round++) {
        pl_store *store = NULL;
        char *err = NULL;
        CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) == 0);
        free(err);
        pl_store_close(store);
    }
    long long rows = query_int(path, "SELECT count(*) FROM schema_migrations");
    long long top = query_int(path, "SELECT max(version) FROM schema_migrations");
    CHECK(rows >= 1);
    CHECK(rows == top); /* 1..N, each applied once however often the store opened */
    CHECK(query_int(path, "SELECT count(*) FROM schema_migrations WHERE applied_at <= 0") == 0);
    /* the store runs in WAL mode */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    const char *mode = NULL;
    char buf[16] = "";
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        mode = (const char *)sqlite3_column_text(st, 0);
        snprintf(buf, sizeof buf, "%s", mode ? mode : "");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    CHECK_STR(buf, "wal");
    remove_db(path);
    free(path);
}

TEST(open_fails_cleanly) {
    pl_store *store = NULL;
    char *err = NULL;
    CHECK(pl_store_open("/nonexistent-dir-for-parley/x.db", PL_SYNC_NORMAL, &store, &err) != 0);
    CHECK(store == NULL);
    CHECK(err != NULL && strstr(err, "store") != NULL);
    free(err);
    /* a file that is not a database */
    char *path = temp_db();
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("this is not an SQLite database, not even a little bit. ", f);
        for (int i = 0; i < 200; i++) fputs("garbage ", f);
        fclose(f);
    }
    err = NULL;
    CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) != 0);
    CHECK(err != NULL);
    free(err);
    remove_db(path);
    free(path);
}

TEST(session_put_get_erase) {
    pl_store *store = open_memory();
    if (!store) return;
    char *state = get(store, &alice);
    CHECK(state == NULL);
    CHECK(put(store, &alice, "{\"step\":\"greet\"}"));
    state = get(store, &alice);
    CHECK_STR(state, "{\"step\":\"greet\"}");
    free(state);
    /* put replaces */
    CHECK(put(store, &alice, "{\"step\":\"drink\"}"));
    state = get(store, &alice);
    CHECK_STR(state, "{\"step\":\"drink\"}");
    free(state);
    CHECK(pl_store_session_count(store) == 1);
    /* keys differ by bot, channel and user */
    state = get(store, &bob);
    CHECK(state == NULL);
    state = get(store, &alice_console);
    CHECK(state == NULL);
    state = get(store, &alice_other_bot);
    CHECK(state == NULL);
    CHECK(put(store, &alice_console, "{\"c\":1}"));
    CHECK(pl_store_session_count(store) == 2);

    int64_t found = -1;
    char *err = NULL;
    CHECK(pl_store_session_erase(store, &alice, &found, &err) == 0);
    CHECK(found == 1);
    state = get(store, &alice);
    CHECK(state == NULL);
    state = get(store, &alice_console);
    CHECK_STR(state, "{\"c\":1}");
    free(state);
    found = -1;
    CHECK(pl_store_session_erase(store, &alice, &found, &err) == 0);
    CHECK(found == 0);
    found = -1;
    CHECK(pl_store_session_erase(store, &bob, &found, &err) == 0);
    CHECK(found == 0);
    CHECK(pl_store_session_count(store) == 1);
    free(err);
    pl_store_close(store);
}

TEST(session_state_is_kept_byte_for_byte) {
    pl_store *store = open_memory();
    if (!store) return;
    const char *s = "{\"name\":\"カフェラテ\",\"note\":\"a \\\"quoted\\\" word\"}";
    CHECK(put(store, &alice, s));
    char *state = get(store, &alice);
    CHECK_STR(state, s);
    free(state);
    pl_store_close(store);
}

static json_t *transcript(pl_store *store, const pl_session_key *key, int limit) {
    json_t *lines = NULL;
    char *err = NULL;
    if (pl_store_transcript_get(store, key, limit, &lines, &err) != 0) {
        printf("#   transcript_get: %s\n", err);
        free(err);
        return NULL;
    }
    return lines;
}

static int add_line(pl_store *store, const pl_session_key *key, const char *dir, const char *body,
                    int64_t at) {
    char *err = NULL;
    int rc = pl_store_transcript_add(store, key, dir, body, at, &err);
    if (rc != 0) printf("#   transcript_add: %s\n", err);
    free(err);
    return rc == 0;
}

TEST(transcript_order_and_limit) {
    pl_store *store = open_memory();
    if (!store) return;
    CHECK(add_line(store, &alice, "in", "{\"text\":\"hi\"}", 100));
    CHECK(add_line(store, &alice, "out", "{\"text\":\"hello\"}", 101));
    CHECK(add_line(store, &bob, "in", "{\"text\":\"bob here\"}", 102));
    CHECK(add_line(store, &alice, "in", "{\"text\":\"latte\"}", 103));
    /* same timestamp: insertion order decides */
    CHECK(add_line(store, &alice, "out", "{\"text\":\"size?\"}", 103));

    json_t *lines = transcript(store, &alice, 100);
    CHECK(json_array_size(lines) == 4);
    const char *texts[] = {"hi", "hello", "latte", "size?"};
    const char *dirs[] = {"in", "out", "in", "out"};
    for (size_t i = 0; i < 4 && i < json_array_size(lines); i++) {
        json_t *line = json_array_get(lines, i);
        CHECK_STR(json_string_value(json_object_get(json_object_get(line, "body"), "text")), texts[i]);
        CHECK_STR(json_string_value(json_object_get(line, "direction")), dirs[i]);
    }
    CHECK(json_integer_value(json_object_get(json_array_get(lines, 0), "at")) == 100);
    json_decref(lines);

    /* the limit keeps the latest lines, still oldest first */
    lines = transcript(store, &alice, 2);
    CHECK(json_array_size(lines) == 2);
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_array_get(lines, 0), "body"), "text")),
              "latte");
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_array_get(lines, 1), "body"), "text")),
              "size?");
    json_decref(lines);

    lines = transcript(store, &bob, 10);
    CHECK(json_array_size(lines) == 1);
    json_decref(lines);
    lines = transcript(store, &alice_console, 10);
    CHECK(lines != NULL && json_array_size(lines) == 0);
    json_decref(lines);
    pl_store_close(store);
}

/* The lines after after_id, as pl_store_transcript_since gives them. */
static json_t *lines_since(pl_store *store, const pl_session_key *key, int64_t after_id) {
    json_t *lines = NULL;
    char *err = NULL;
    if (pl_store_transcript_since(store, key, after_id, 100, &lines, &err) != 0) printf("#   since: %s\n", err);
    free(err);
    return lines;
}

static int line_is(const json_t *line, json_int_t id, const char *direction, const char *text, json_int_t at) {
    int ok = json_integer_value(json_object_get(line, "id")) == id &&
             strcmp(json_string_value(json_object_get(line, "direction")), direction) == 0 &&
             strcmp(json_string_value(json_object_get(json_object_get(line, "body"), "text")), text) == 0 &&
             json_integer_value(json_object_get(line, "at")) == at;
    if (!ok) {
        char *dump = json_dumps(line, JSON_COMPACT);
        printf("#   line %s is not %lld %s %s at %lld\n", dump, (long long)id, direction, text, (long long)at);
        free(dump);
    }
    return ok;
}

/* A turn's message and answer are one row and two lines: the answer's id
 * is the message's + 1, and the next line's is past both. */
TEST(turn_is_two_lines) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"hi\"}", 100, "[{\"text\":\"hello\"}]", 105, NULL,
                                       &err) == 0);
    CHECK(add_line(store, &alice, "status", "{\"text\":\"read\"}", 106));
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"latte\"}", 107, "[{\"text\":\"size?\"}]", 108, NULL,
                                       &err) == 0);
    json_t *lines = lines_since(store, &alice, 0);
    CHECK(json_array_size(lines) == 5);
    if (json_array_size(lines) == 5) {
        json_int_t first = json_integer_value(json_object_get(json_array_get(lines, 0), "id"));
        CHECK(line_is(json_array_get(lines, 0), first, "in", "hi", 100));
        /* an answer's body is its list of replies */
        json_t *out = json_array_get(lines, 1);
        CHECK(json_integer_value(json_object_get(out, "id")) == first + 1);
        CHECK_STR(json_string_value(json_object_get(out, "direction")), "out");
        CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(out, "body"), 0), "text")), "hello");
        CHECK(json_integer_value(json_object_get(out, "at")) == 105);
        CHECK(line_is(json_array_get(lines, 2), first + 2, "status", "read", 106));
        CHECK(line_is(json_array_get(lines, 3), first + 4, "in", "latte", 107));
        /* resuming after the first answer gives the rest */
        json_t *rest = lines_since(store, &alice, first + 1);
        CHECK(json_array_size(rest) == 3);
        json_decref(rest);
        CHECK(pl_store_transcript_last_id(store, &alice) == first + 5);
    }
    json_decref(lines);
    /* the latest lines, oldest first, count an answer as a line */
    lines = transcript(store, &alice, 2);
    CHECK(json_array_size(lines) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(lines, 0), "direction")), "in");
    json_decref(lines);
    int64_t found = 0;
    CHECK(pl_store_session_erase(store, &alice, &found, &err) == 0 && found == 1);
    lines = lines_since(store, &alice, 0);
    CHECK(lines != NULL && json_array_size(lines) == 0);
    json_decref(lines);
    free(err);
    pl_store_close(store);
}

/* A database written before turns were one row: its lines keep their ids
 * after the migration, and new ones come after them. */
TEST(old_transcript_kept_by_the_migration) {
    char *path = temp_db();
    pl_store *store = NULL;
    char *err = NULL;
    CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) == 0);
    pl_store_close(store);
    /* back to the layout of schema 5: one table of lines (and none of 7's columns) */
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "DROP VIEW transcript;"
                       "DROP VIEW events;"
                       "DROP INDEX transcript_by_time;"
                       "ALTER TABLE transcript_rows DROP COLUMN conv;"
                       "ALTER TABLE transcript_rows DROP COLUMN locale;"
                       "ALTER TABLE transcript_rows DROP COLUMN step;"
                       "ALTER TABLE transcript_rows DROP COLUMN names;"
                       "ALTER TABLE transcript_rows DROP COLUMN list;"
                       "ALTER TABLE transcript_rows DROP COLUMN reply;"
                       "ALTER TABLE transcript_rows DROP COLUMN reply_at;"
                       "ALTER TABLE transcript_rows RENAME TO transcript;"
                       "ALTER TABLE sessions DROP COLUMN seq;"
                       "ALTER TABLE outbox DROP COLUMN owner;"
                       "ALTER TABLE outbox DROP COLUMN lease_until;"
                       "DROP TABLE settings;"
                       "DROP TABLE analytics_days;"
                       "DROP INDEX inbox_by_time;"
                       "DROP INDEX outbox_by_time;"
                       "DROP INDEX jobs_by_shopper;"
                       "DROP INDEX handoffs_by_visitor;"
                       "DROP INDEX handoffs_closed;"
                       "ALTER TABLE handoffs DROP COLUMN visitor;"
                       "ALTER TABLE handoffs DROP COLUMN closed_at;"
                       "ALTER TABLE handoffs DROP COLUMN closed_how;"
                       "ALTER TABLE handoffs DROP COLUMN page;"
                       "DELETE FROM schema_migrations WHERE version >= 6;"
                       "INSERT INTO transcript (id, bot, channel, user, at, direction, body) VALUES"
                       " (7, 'barista', 'rest', 'alice', 10, 'in', '{\"text\":\"hi\"}'),"
                       " (8, 'barista', 'rest', 'alice', 11, 'out', '[{\"text\":\"hello\"}]'),"
                       " (9, 'barista', 'rest', 'alice', 12, 'in', '{\"text\":\"latte\"}');",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    store = NULL;
    CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) == 0);
    if (store) {
        CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"done\"}", 13, "[{\"text\":\"bye\"}]", 14, NULL,
                                           &err) == 0);
        json_t *lines = lines_since(store, &alice, 8);
        CHECK(json_array_size(lines) == 3);
        if (json_array_size(lines) == 3) {
            CHECK(line_is(json_array_get(lines, 0), 9, "in", "latte", 12));
            CHECK(line_is(json_array_get(lines, 1), 11, "in", "done", 13));
            CHECK(json_integer_value(json_object_get(json_array_get(lines, 2), "id")) == 12);
        }
        json_decref(lines);
        lines = lines_since(store, &alice, 0);
        CHECK(json_array_size(lines) == 5);
        CHECK(lines && line_is(json_array_get(lines, 0), 7, "in", "hi", 10));
        json_decref(lines);
        pl_store_close(store);
        /* a line a tool writes into the view comes after the others */
        CHECK(sqlite3_open(path, &db) == SQLITE_OK);
        CHECK(sqlite3_exec(db,
                           "INSERT INTO transcript (bot, channel, user, at, direction, body) VALUES"
                           " ('barista', 'rest', 'alice', 15, 'status', '{\"text\":\"read\"}')",
                           NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);
        store = NULL;
        CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) == 0);
        lines = store ? lines_since(store, &alice, 12) : NULL;
        CHECK(json_array_size(lines) == 1);
        CHECK(lines && line_is(json_array_get(lines, 0), 13, "status", "read", 15));
        json_decref(lines);
        pl_store_close(store);
    }
    CHECK(query_int(path, "SELECT max(version) FROM schema_migrations") == 12);
    free(err);
    remove_db(path);
    free(path);
}

TEST(erase_removes_transcript) {
    pl_store *store = open_memory();
    if (!store) return;
    CHECK(put(store, &alice, "{}"));
    CHECK(add_line(store, &alice, "in", "{\"text\":\"hi\"}", 1));
    CHECK(add_line(store, &bob, "in", "{\"text\":\"hi\"}", 1));
    int64_t found = 0;
    char *err = NULL;
    CHECK(pl_store_session_erase(store, &alice, &found, &err) == 0);
    CHECK(found == 1);
    json_t *lines = transcript(store, &alice, 10);
    CHECK(lines != NULL && json_array_size(lines) == 0);
    json_decref(lines);
    lines = transcript(store, &bob, 10);
    CHECK(json_array_size(lines) == 1);
    json_decref(lines);
    /* a transcript without a session still counts as found */
    found = 0;
    CHECK(pl_store_session_erase(store, &bob, &found, &err) == 0);
    CHECK(found == 1);
    lines = transcript(store, &bob, 10);
    CHECK(json_array_size(lines) == 0);
    json_decref(lines);
    free(err);
    pl_store_close(store);
}

TEST(catalog_replace) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    json_t *first = json_loads("[{\"sku\":\"a\"},{\"sku\":\"b\"},{\"sku\":\"c\"}]", 0, NULL);
    json_t *second = json_loads("[{\"sku\":\"x\"},{\"sku\":\"y\"}]", 0, NULL);
    CHECK(pl_store_catalog_replace(store, "barista", first, &err) == 0);
    CHECK(pl_store_catalog_count(store, "barista") == 3);
    CHECK(pl_store_catalog_replace(store, "tea", second, &err) == 0);
    CHECK(pl_store_catalog_count(store, "tea") == 2);
    /* replacing drops the previous rows of that bot only */
    CHECK(pl_store_catalog_replace(store, "barista", second, &err) == 0);
    CHECK(pl_store_catalog_count(store, "barista") == 2);
    CHECK(pl_store_catalog_count(store, "tea") == 2);
    json_t *empty = json_array();
    CHECK(pl_store_catalog_replace(store, "tea", empty, &err) == 0);
    CHECK(pl_store_catalog_count(store, "tea") == 0);
    CHECK(err == NULL);
    json_decref(first);
    json_decref(second);
    json_decref(empty);
    pl_store_close(store);
}

TEST(catalog_replace_is_atomic) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    json_t *good = json_loads("[{\"sku\":\"a\"},{\"sku\":\"b\"}]", 0, NULL);
    /* the second copy of "x" violates the key: nothing of this list may stay */
    json_t *dup = json_loads("[{\"sku\":\"x\"},{\"sku\":\"y\"},{\"sku\":\"x\"}]", 0, NULL);
    json_t *nosku = json_loads("[{\"sku\":\"z\"},{\"title\":\"no sku\"}]", 0, NULL);
    CHECK(pl_store_catalog_replace(store, "barista", good, &err) == 0);
    CHECK(pl_store_catalog_replace(store, "barista", dup, &err) != 0);
    CHECK(err != NULL);
    free(err);
    err = NULL;
    CHECK(pl_store_catalog_count(store, "barista") == 2);
    CHECK(pl_store_catalog_replace(store, "barista", nosku, &err) != 0);
    free(err);
    err = NULL;
    CHECK(pl_store_catalog_count(store, "barista") == 2);
    /* the store is still usable afterwards, in and out of a transaction */
    CHECK(put(store, &alice, "{}"));
    CHECK(pl_store_begin(store, &err) == 0);
    CHECK(pl_store_catalog_replace(store, "barista", dup, &err) != 0);
    free(err);
    err = NULL;
    CHECK(put(store, &bob, "{}"));
    CHECK(pl_store_commit(store, &err) == 0);
    CHECK(pl_store_catalog_count(store, "barista") == 2);
    CHECK(pl_store_session_count(store) == 2);
    free(err);
    json_decref(good);
    json_decref(dup);
    json_decref(nosku);
    pl_store_close(store);
}

TEST(begin_commit_rollback) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    CHECK(pl_store_begin(store, &err) == 0);
    CHECK(put(store, &alice, "{\"v\":1}"));
    CHECK(add_line(store, &alice, "in", "{}", 1));
    CHECK(pl_store_commit(store, &err) == 0);

    CHECK(pl_store_begin(store, &err) == 0);
    CHECK(put(store, &alice, "{\"v\":2}"));
    CHECK(put(store, &bob, "{\"v\":2}"));
    CHECK(add_line(store, &alice, "in", "{}", 2));
    pl_store_rollback(store);

    char *state = get(store, &alice);
    CHECK_STR(state, "{\"v\":1}");
    free(state);
    state = get(store, &bob);
    CHECK(state == NULL);
    json_t *lines = transcript(store, &alice, 10);
    CHECK(json_array_size(lines) == 1);
    json_decref(lines);

    /* rollback without a transaction is harmless; commit without one fails */
    pl_store_rollback(store);
    CHECK(pl_store_commit(store, &err) != 0);
    CHECK(err != NULL);
    free(err);
    err = NULL;
    /* and a fresh transaction works after all that */
    CHECK(pl_store_begin(store, &err) == 0);
    CHECK(put(store, &bob, "{\"v\":3}"));
    CHECK(pl_store_commit(store, &err) == 0);
    state = get(store, &bob);
    CHECK_STR(state, "{\"v\":3}");
    free(state);
    free(err);
    pl_store_close(store);
}

TEST(rollback_is_seen_by_file_reopen) {
    char *path = temp_db();
    pl_store *store = NULL;
    char *err = NULL;
    CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) == 0);
    if (store) {
        CHECK(pl_store_begin(store, &err) == 0);
        CHECK(put(store, &alice, "{\"kept\":true}"));
        CHECK(pl_store_commit(store, &err) == 0);
        CHECK(pl_store_begin(store, &err) == 0);
        CHECK(put(store, &bob, "{\"kept\":false}"));
        pl_store_rollback(store);
        pl_store_close(store);
    }
    store = NULL;
    CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) == 0);
    if (store) {
        char *state = get(store, &alice);
        CHECK_STR(state, "{\"kept\":true}");
        free(state);
        state = get(store, &bob);
        CHECK(state == NULL);
        pl_store_close(store);
    }
    free(err);
    remove_db(path);
    free(path);
}

/* The agents' queue: waiting before active, oldest first; the shopper's
 * name is kept when a later change does not know it; NULL removes. */
TEST(handoff_queue) {
    pl_store *store = open_memory();
    char *err = NULL;
    json_t *bob_waits = json_pack("{s:s, s:s, s:I, s:s}", "state", "waiting", "reason", "asked", "since",
                                  (json_int_t)2000, "display_name", "Bob B.");
    json_t *alice_active = json_pack("{s:s, s:s, s:I}", "state", "active", "agent", "Mia", "since", (json_int_t)1000);
    json_t *bob_claimed = json_pack("{s:s, s:s, s:I}", "state", "active", "agent", "Leo", "since", (json_int_t)2000);
    CHECK(pl_store_handoff_put(store, &bob, bob_waits, 3000, &err) == PL_OK);
    CHECK(pl_store_handoff_put(store, &alice, alice_active, 3000, &err) == PL_OK);
    json_t *list = NULL;
    CHECK(pl_store_handoffs(store, &list, &err) == PL_OK);
    CHECK(json_array_size(list) == 2);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(list, 0), "user")), "bob") == 0);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(list, 0), "display_name")), "Bob B.") == 0);
    CHECK(json_is_null(json_object_get(json_array_get(list, 1), "display_name")));
    json_decref(list);
    CHECK(pl_store_handoff_put(store, &bob, bob_claimed, 4000, &err) == PL_OK);
    CHECK(pl_store_handoff_put(store, &alice, NULL, 4000, &err) == PL_OK);
    CHECK(pl_store_handoffs(store, &list, &err) == PL_OK);
    CHECK(json_array_size(list) == 1);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(list, 0), "agent")), "Leo") == 0);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(list, 0), "display_name")), "Bob B.") == 0);
    json_decref(list);
    json_decref(bob_waits);
    json_decref(alice_active);
    json_decref(bob_claimed);
    pl_store_close(store);
}

/* --- every other call of the interface ------------------------------------- */

static const char *str(const json_t *o, const char *key) {
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "(none)";
}
static json_int_t num(const json_t *o, const char *key) { return json_integer_value(json_object_get(o, key)); }

/* Lines by id, as the web chat and agent streams replay them. */
TEST(transcript_by_id) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    CHECK(pl_store_transcript_last_id(store, &alice) == 0);
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"hi\"}", 10, "[{\"text\":\"hello\"}]", 11, NULL, &err) == 0);
    CHECK(pl_store_transcript_add(store, &bob, "in", "{\"text\":\"bob\"}", 12, &err) == 0);
    CHECK(pl_store_transcript_add(store, &alice, "status", "{\"status\":\"read\"}", 13, &err) == 0);
    json_t *all = NULL, *after = NULL;
    CHECK(pl_store_transcript_since(store, &alice, 0, 10, &all, &err) == 0);
    CHECK(json_array_size(all) == 3);
    int64_t first = num(json_array_get(all, 0), "id");
    CHECK(num(json_array_get(all, 1), "id") == first + 1); /* the answer is the line after */
    CHECK(strcmp(str(json_array_get(all, 1), "direction"), "out") == 0);
    CHECK(num(json_array_get(all, 1), "at") == 11);
    CHECK(strcmp(str(json_array_get(json_object_get(json_array_get(all, 1), "body"), 0), "text"), "hello") == 0);
    CHECK(strcmp(str(json_array_get(all, 2), "direction"), "status") == 0);
    CHECK(pl_store_transcript_last_id(store, &alice) == num(json_array_get(all, 2), "id"));
    CHECK(pl_store_transcript_since(store, &alice, first + 1, 10, &after, &err) == 0);
    CHECK(json_array_size(after) == 1);
    json_decref(after);
    CHECK(pl_store_transcript_since(store, &alice, 0, 2, &after, &err) == 0);
    CHECK(json_array_size(after) == 2);
    CHECK(err == NULL);
    json_decref(after);
    json_decref(all);
    free(err);
    pl_store_close(store);
}

/* The conversations that have lines, for `parley replay`: one per channel
 * and user of the bot, in the order they began, filtered and limited. */
TEST(conversations_list) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    CHECK(pl_store_transcript_add_turn(store, &bob, "{\"text\":\"hi\"}", 10, "[]", 11, NULL, &err) == 0);
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"hi\"}", 20, "[]", 21, NULL, &err) == 0);
    CHECK(pl_store_transcript_add_turn(store, &bob, "{\"text\":\"again\"}", 30, "[]", 31, NULL, &err) == 0);
    CHECK(pl_store_transcript_add_turn(store, &alice_console, "{\"text\":\"x\"}", 40, "[]", 41, NULL, &err) == 0);
    CHECK(pl_store_transcript_add_turn(store, &alice_other_bot, "{\"text\":\"x\"}", 50, "[]", 51, NULL, &err) == 0);
    json_t *list = NULL;
    CHECK(pl_store_conversations(store, "barista", NULL, NULL, 10, &list, &err) == 0);
    CHECK(json_array_size(list) == 3);
    CHECK(strcmp(str(json_array_get(list, 0), "user"), "bob") == 0);
    CHECK(num(json_array_get(list, 0), "lines") == 4);
    CHECK(num(json_array_get(list, 0), "first_at") == 10);
    CHECK(num(json_array_get(list, 0), "last_at") == 31);
    CHECK(strcmp(str(json_array_get(list, 1), "user"), "alice") == 0);
    CHECK(strcmp(str(json_array_get(list, 2), "channel"), "console") == 0);
    json_decref(list);
    CHECK(pl_store_conversations(store, "barista", "rest", "alice", 10, &list, &err) == 0);
    CHECK(json_array_size(list) == 1);
    json_decref(list);
    CHECK(pl_store_conversations(store, "barista", NULL, NULL, 1, &list, &err) == 0);
    CHECK(json_array_size(list) == 1);
    json_decref(list);
    CHECK(err == NULL);
    pl_store_close(store);
}

/* A platform's retried delivery is recorded once; what is not handled is
 * replayed after a crash, oldest first; handled rows are pruned. */
TEST(inbox_deduplicates_and_replays) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    int64_t a = -1, again = -1, b = -1, other = -1, seq = 0;
    CHECK(pl_store_inbox_add(store, "barista", "whatsapp", "wamid.1", "alice", "{\"text\":\"hi\"}", 100, &a, &err) == 0);
    CHECK(pl_store_inbox_add(store, "barista", "whatsapp", "wamid.1", "alice", "{\"text\":\"hi\"}", 101, &again, &err) == 0);
    CHECK(pl_store_inbox_add(store, "barista", "whatsapp", "wamid.2", "alice", "{\"text\":\"2\"}", 102, &b, &err) == 0);
    CHECK(pl_store_inbox_add(store, "barista", "telegram", "wamid.1", "alice", "{}", 103, &other, &err) == 0);
    CHECK(a > 0 && b > a && other > b);
    CHECK(again == 0);
    CHECK(pl_store_inbox_done(store, a, 200, &err) == 0);
    json_t *rows = NULL;
    CHECK(pl_store_inbox_pending(store, INT64_MAX, &rows, &err) == 0);
    CHECK(json_array_size(rows) == 2);
    CHECK(num(json_array_get(rows, 0), "id") == b);
    CHECK(strcmp(str(json_object_get(json_array_get(rows, 0), "message"), "text"), "2") == 0);
    CHECK(strcmp(str(json_array_get(rows, 0), "user"), "alice") == 0);
    json_decref(rows);
    /* parley's own event ids: the next of a zero-padded sequence */
    CHECK(pl_store_inbox_next_seq(store, "barista", "payment", "pay:", &seq, &err) == 0);
    CHECK(seq == 1);
    CHECK(pl_store_inbox_add(store, "barista", "payment", "pay:000000009", "-", "{}", 104, &a, &err) == 0);
    CHECK(pl_store_inbox_add(store, "barista", "payment", "pay:000000010", "-", "{}", 105, &a, &err) == 0);
    CHECK(pl_store_inbox_add(store, "barista", "payment", "paz:000000099", "-", "{}", 105, &a, &err) == 0);
    CHECK(pl_store_inbox_next_seq(store, "barista", "payment", "pay:", &seq, &err) == 0);
    CHECK(seq == 11);
    /* pruning forgets handled rows before the cut only */
    CHECK(pl_store_inbox_prune(store, 150, &err) == 0);
    CHECK(pl_store_inbox_add(store, "barista", "whatsapp", "wamid.1", "alice", "{}", 300, &again, &err) == 0);
    CHECK(again == 0);
    CHECK(pl_store_inbox_prune(store, 250, &err) == 0);
    CHECK(pl_store_inbox_add(store, "barista", "whatsapp", "wamid.1", "alice", "{}", 300, &again, &err) == 0);
    CHECK(again > 0);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

TEST(outbox_rows) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    int64_t first = 0, second = 0, n = -1;
    CHECK(pl_store_outbox_add(store, "barista", "whatsapp", "alice", "{\"to\":\"alice\"}", 100, &first, &err) == 0);
    CHECK(pl_store_outbox_add(store, "tea", "telegram", "bob", "{\"to\":\"bob\"}", 101, &second, &err) == 0);
    CHECK(first > 0 && second > first);
    json_t *rows = NULL;
    CHECK(pl_store_outbox_pending(store, &rows, &err) == 0);
    CHECK(json_array_size(rows) == 2);
    CHECK(num(json_array_get(rows, 0), "id") == first);
    CHECK(num(json_array_get(rows, 0), "next_at") == 100);
    CHECK(num(json_array_get(rows, 0), "attempts") == 0);
    CHECK(strcmp(str(json_object_get(json_array_get(rows, 0), "call"), "to"), "alice") == 0);
    json_decref(rows);
    CHECK(pl_store_outbox_update(store, first, "pending", 1, 5000, "HTTP 500", 200, &err) == 0);
    CHECK(pl_store_outbox_update(store, second, "sent", 1, 0, NULL, 200, &err) == 0);
    CHECK(pl_store_outbox_pending(store, &rows, &err) == 0);
    CHECK(json_array_size(rows) == 1);
    CHECK(num(json_array_get(rows, 0), "attempts") == 1);
    CHECK(num(json_array_get(rows, 0), "next_at") == 5000);
    json_decref(rows);
    CHECK(pl_store_outbox_count(store, NULL, "sent", &n, &err) == 0);
    CHECK(n == 1);
    CHECK(pl_store_outbox_count(store, "barista", "sent", &n, &err) == 0);
    CHECK(n == 0);
    CHECK(pl_store_outbox_update(store, first, "dead", 5, 0, "gave up", 300, &err) == 0);
    CHECK(pl_store_outbox_count(store, "barista", "dead", &n, &err) == 0);
    CHECK(n == 1);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

static json_t *an_order(const char *user, const char *code) {
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s?, s:[{s:s, s:I}], s:s, s:s}", "bot", "barista", "channel",
                     "rest", "user", user, "currency", "EUR", "subtotal", (json_int_t)760, "discount", (json_int_t)76,
                     "total", (json_int_t)684, "discount_code", code, "lines", "sku", "latte", "qty", (json_int_t)2,
                     "provider", "test", "token", "tok");
}

/* The agents' queue names a shopper: a visitor number kept across
 * handoffs, and the page of their latest message that named one. */
TEST(handoff_visitor_and_page) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    json_t *waits = json_pack("{s:s, s:s}", "state", "waiting", "reason", "asked");
    json_t *closes = json_pack("{s:s, s:s, s:s}", "state", "closed", "how", "close", "agent", "Mia");
    CHECK(pl_store_handoff_put(store, &alice, waits, 1000, &err) == PL_OK);
    CHECK(pl_store_handoff_put(store, &bob, waits, 1000, &err) == PL_OK);
    CHECK(pl_store_transcript_add_turn(store, &alice,
                                       "{\"text\":\"hi\",\"info\":{\"page_url\":\"https://shop.example/a\","
                                       "\"page_title\":\"Shoes\"}}",
                                       1100, "[]", 1101, NULL, &err) == PL_OK);
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"still there?\"}", 1200, "[]", 1201, NULL, &err) ==
          PL_OK);
    json_t *list = NULL;
    CHECK(pl_store_handoffs(store, &list, &err) == PL_OK);
    json_t *a = json_array_get(list, 0), *b = json_array_get(list, 1);
    int64_t alice_no = num(a, "visitor"), bob_no = num(b, "visitor");
    CHECK(alice_no > 0 && bob_no > 0 && alice_no != bob_no);
    CHECK(num(a, "last_at") == 1201); /* the last line: the bot's answer */
    CHECK_STR(str(json_object_get(a, "page"), "url"), "https://shop.example/a");
    CHECK_STR(str(json_object_get(a, "page"), "title"), "Shoes");
    CHECK(json_is_null(json_object_get(b, "page")));
    json_decref(list);
    /* closed, then back in the queue: the same number, a new since */
    CHECK(pl_store_handoff_put(store, &alice, closes, 2000, &err) == PL_OK);
    CHECK(pl_store_handoffs(store, &list, &err) == PL_OK);
    CHECK(json_array_size(list) == 1);
    json_decref(list);
    CHECK(pl_store_handoff_put(store, &alice, waits, 3000, &err) == PL_OK);
    CHECK(pl_store_handoffs(store, &list, &err) == PL_OK);
    CHECK(json_array_size(list) == 2);
    CHECK_STR(str(json_array_get(list, 1), "user"), "alice");
    CHECK(num(json_array_get(list, 1), "visitor") == alice_no);
    CHECK(num(json_array_get(list, 1), "since") == 3000);
    json_decref(list);
    CHECK(err == NULL);
    free(err);
    json_decref(waits);
    json_decref(closes);
    pl_store_close(store);
}

/* Visitor numbers never come again: not after the shopper with the
 * highest number was erased (their handoff row deleted). A page named
 * before the handoff began shows on it. */
TEST(visitor_numbers_never_repeat) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    static const pl_session_key carol = {"barista", "webchat", "carol"};
    json_t *waits = json_pack("{s:s, s:s}", "state", "waiting", "reason", "asked");
    CHECK(pl_store_handoff_put(store, &alice, waits, 1000, &err) == PL_OK);
    CHECK(pl_store_handoff_put(store, &bob, waits, 1000, &err) == PL_OK);
    CHECK(pl_store_handoff_put(store, &bob, waits, 1100, &err) == PL_OK); /* again: the same number */
    json_t *list = NULL;
    CHECK(pl_store_handoffs(store, &list, &err) == PL_OK);
    int64_t alice_no = num(json_array_get(list, 0), "visitor"), bob_no = num(json_array_get(list, 1), "visitor");
    CHECK(alice_no > 0 && bob_no > alice_no);
    json_decref(list);
    CHECK(pl_store_handoff_put(store, &bob, NULL, 1200, &err) == PL_OK); /* the highest number's row goes */
    CHECK(pl_store_transcript_add_turn(store, &carol,
                                       "{\"text\":\"hi\",\"info\":{\"page_url\":\"https://shop.example/c\","
                                       "\"page_title\":\"Cart\"}}",
                                       1250, "[]", 1251, NULL, &err) == PL_OK);
    CHECK(pl_store_handoff_put(store, &carol, waits, 1300, &err) == PL_OK);
    list = NULL;
    CHECK(pl_store_handoffs(store, &list, &err) == PL_OK);
    CHECK(json_array_size(list) == 2);
    json_t *c = json_array_get(list, 1);
    CHECK_STR(str(c, "user"), "carol");
    CHECK(num(c, "visitor") > bob_no);
    CHECK_STR(str(json_object_get(c, "page"), "url"), "https://shop.example/c");
    json_decref(list);
    CHECK(err == NULL);
    free(err);
    json_decref(waits);
    pl_store_close(store);
}

static json_t *closed_of(pl_store *store, const char *bot, const char *search, int64_t order_id, int offset,
                         int limit) {
    pl_store_closed_query q = {.bot = bot, .search = search, .order_id = order_id, .offset = offset, .limit = limit};
    json_t *list = NULL;
    char *err = NULL;
    if (pl_store_handoffs_closed(store, &q, &list, &err) != PL_OK) printf("#   handoffs_closed: %s\n", err);
    free(err);
    return list;
}

/* Closed handoffs: newest closed first, paged, of one bot or all, found
 * by the shopper's name or id, the text of the transcript (the shopper's
 * and the bot's), or an order number. */
TEST(closed_handoffs_searched) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    json_t *waits = json_pack("{s:s, s:s, s:s}", "state", "waiting", "reason", "asked", "display_name", "Bob Ba_r");
    json_t *closes = json_pack("{s:s, s:s, s:s}", "state", "closed", "how", "handback", "agent", "Mia");
    json_t *o = an_order("alice", NULL);
    int64_t order = 0;
    CHECK(pl_store_order_create(store, o, 900, &order, &err) == PL_OK);
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"Where is my parcel?\"}", 1000,
                                       "[{\"text\":\"Let me find a person\"},{\"image\":\"x\"}]", 1001, NULL,
                                       &err) == PL_OK);
    CHECK(pl_store_transcript_add_turn(store, &bob, "{\"text\":\"the text of the in line\"}", 1000, "[]", 1001, NULL,
                                       &err) == PL_OK);
    const pl_session_key *keys[] = {&alice, &bob, &alice_other_bot};
    for (int i = 0; i < 3; i++) {
        CHECK(pl_store_handoff_put(store, keys[i], waits, 1000, &err) == PL_OK);
        CHECK(pl_store_handoff_put(store, keys[i], closes, 2000 + i, &err) == PL_OK);
    }
    CHECK(pl_store_handoff_put(store, &alice_console, waits, 1000, &err) == PL_OK); /* open: not closed */
    json_t *all = closed_of(store, NULL, NULL, 0, 0, 10);
    CHECK(json_array_size(all) == 3);
    CHECK_STR(str(json_array_get(all, 0), "bot"), "tea"); /* the newest closed */
    CHECK_STR(str(json_array_get(all, 2), "user"), "alice");
    CHECK(num(json_array_get(all, 2), "closed_at") == 2000);
    CHECK_STR(str(json_array_get(all, 2), "how"), "handback");
    CHECK_STR(str(json_array_get(all, 2), "agent"), "Mia");
    CHECK_STR(str(json_array_get(all, 2), "reason"), "asked");
    CHECK(num(json_array_get(all, 2), "visitor") > 0);
    json_decref(all);
    json_t *page = closed_of(store, "barista", NULL, 0, 1, 1);
    CHECK(json_array_size(page) == 1);
    CHECK_STR(str(json_array_get(page, 0), "user"), "alice");
    json_decref(page);
    json_t *found = closed_of(store, "barista", "PARCEL", 0, 0, 10); /* the shopper's words, any case */
    CHECK(json_array_size(found) == 1);
    CHECK_STR(str(json_array_get(found, 0), "user"), "alice");
    json_decref(found);
    found = closed_of(store, "barista", "find a person", 0, 0, 10); /* the bot's */
    CHECK(json_array_size(found) == 1);
    json_decref(found);
    found = closed_of(store, "barista", "text", 0, 0, 10); /* a word of bob's, not of the JSON around it */
    CHECK(json_array_size(found) == 1);
    CHECK_STR(str(json_array_get(found, 0), "user"), "bob");
    json_decref(found);
    found = closed_of(store, "barista", "ba_r", 0, 0, 10); /* the name; _ is a letter, not a wildcard */
    CHECK(json_array_size(found) == 2);
    json_decref(found);
    found = closed_of(store, "barista", "%", 0, 0, 10); /* a percent sign, which no text has */
    CHECK(json_array_size(found) == 0);
    json_decref(found);
    char number[32];
    snprintf(number, sizeof number, "%lld", (long long)order);
    found = closed_of(store, "barista", number, order, 0, 10); /* the order's number */
    CHECK(json_array_size(found) == 1);
    CHECK_STR(str(json_array_get(found, 0), "user"), "alice");
    json_decref(found);
    found = closed_of(store, "tea", "parcel", 0, 0, 10); /* another bot's */
    CHECK(json_array_size(found) == 0);
    json_decref(found);
    /* a search reads only the newest `searched` closed handoffs (bob's is
     * barista's newest, alice's the next); a listing has no such bound */
    pl_store_closed_query newest = {.bot = "barista", .search = "parcel", .limit = 10, .searched = 1};
    found = NULL;
    CHECK(pl_store_handoffs_closed(store, &newest, &found, &err) == PL_OK);
    CHECK(json_array_size(found) == 0);
    json_decref(found);
    newest.searched = 2;
    found = NULL;
    CHECK(pl_store_handoffs_closed(store, &newest, &found, &err) == PL_OK);
    CHECK(json_array_size(found) == 1);
    json_decref(found);
    newest.search = NULL;
    newest.searched = 1;
    found = NULL;
    CHECK(pl_store_handoffs_closed(store, &newest, &found, &err) == PL_OK);
    CHECK(json_array_size(found) == 2);
    json_decref(found);
    CHECK(err == NULL);
    free(err);
    json_decref(o);
    json_decref(waits);
    json_decref(closes);
    pl_store_close(store);
}

/* An order is paid once, whatever the provider retries. */
TEST(orders_and_their_states) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    int64_t id = 0, id2 = 0, found = -1;
    json_t *o = an_order("alice", "WELCOME"), *o2 = an_order("alice", NULL), *got = NULL;
    CHECK(pl_store_order_create(store, o, 1000, &id, &err) == 0);
    CHECK(pl_store_order_create(store, o2, 1001, &id2, &err) == 0);
    CHECK(id > 0 && id2 > id);
    CHECK(pl_store_order_get(store, "barista", id, &got, &err) == 0);
    CHECK(got != NULL);
    CHECK(strcmp(str(got, "state"), "pending") == 0);
    CHECK(num(got, "total") == 684);
    CHECK(strcmp(str(got, "discount_code"), "WELCOME") == 0);
    CHECK(num(json_array_get(json_object_get(got, "lines"), 0), "qty") == 2);
    CHECK(json_is_null(json_object_get(got, "paid_at")));
    json_decref(got);
    got = (json_t *)1;
    CHECK(pl_store_order_get(store, "tea", id, &got, &err) == 0); /* another bot's number */
    CHECK(got == NULL);
    CHECK(pl_store_order_set_link(store, id, "cs_1", "https://pay.example/cs_1", 1100, &err) == 0);
    CHECK(pl_store_order_by_ref(store, "barista", "cs_1", &found, &err) == 0);
    CHECK(found == id);
    CHECK(pl_store_order_by_ref(store, "barista", "nope", &found, &err) == 0);
    CHECK(found == 0);
    int changed = -1;
    CHECK(pl_store_order_transition(store, id, "pending,failed", "paid", "pi_1", 1200, &changed, &err) == 0);
    CHECK(changed == 1);
    CHECK(pl_store_order_transition(store, id, "pending,failed", "paid", "pi_1", 1300, &changed, &err) == 0);
    CHECK(changed == 0);
    CHECK(pl_store_order_by_ref(store, "barista", "pi_1", &found, &err) == 0);
    CHECK(found == id);
    CHECK(pl_store_order_fulfilment(store, id, "shipped", "https://track.example/1", 1400, &err) == 0);
    CHECK(pl_store_order_get(store, "barista", id, &got, &err) == 0);
    CHECK(strcmp(str(got, "state"), "paid") == 0);
    CHECK(num(got, "paid_at") == 1200);
    CHECK(strcmp(str(got, "payment_ref"), "pi_1") == 0);
    CHECK(strcmp(str(got, "fulfilment"), "shipped") == 0);
    CHECK(strcmp(str(got, "tracking_url"), "https://track.example/1") == 0);
    json_decref(got);
    json_t *list = NULL;
    CHECK(pl_store_orders_of(store, "barista", NULL, "alice", 10, &list, &err) == 0);
    CHECK(json_array_size(list) == 2);
    CHECK(num(json_array_get(list, 0), "id") == id2); /* newest first */
    json_decref(list);
    CHECK(pl_store_orders_of(store, "barista", "whatsapp", "alice", 10, &list, &err) == 0);
    CHECK(json_array_size(list) == 0);
    json_decref(list);
    CHECK(pl_store_orders_of(store, "barista", "rest", "alice", 1, &list, &err) == 0);
    CHECK(json_array_size(list) == 1);
    json_decref(list);
    CHECK(err == NULL);
    json_decref(o);
    json_decref(o2);
    free(err);
    pl_store_close(store);
}

TEST(discount_once_per_shopper) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    int used = -1, fresh = -1;
    CHECK(pl_store_discount_used(store, "barista", "WELCOME", "alice", &used, &err) == 0);
    CHECK(used == 0);
    CHECK(pl_store_discount_use(store, "barista", "WELCOME", "alice", 1, 100, &fresh, &err) == 0);
    CHECK(fresh == 1);
    CHECK(pl_store_discount_use(store, "barista", "WELCOME", "alice", 2, 200, &fresh, &err) == 0);
    CHECK(fresh == 0);
    CHECK(pl_store_discount_used(store, "barista", "WELCOME", "alice", &used, &err) == 0);
    CHECK(used == 1);
    CHECK(pl_store_discount_used(store, "barista", "WELCOME", "bob", &used, &err) == 0);
    CHECK(used == 0);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

/* An order of `user` on `channel` (an_order's, on another channel). */
static int64_t order_of(pl_store *store, const char *channel, const char *user, const char *code) {
    json_t *o = an_order(user, code);
    json_object_set_new(o, "channel", json_string(channel));
    int64_t id = 0;
    char *err = NULL;
    if (pl_store_order_create(store, o, 1000, &id, &err) != 0) printf("#   order_create: %s\n", err);
    free(err);
    json_decref(o);
    return id;
}

/* The erasure keeps the shopper's orders for the merchant's accounts, under
 * one pseudonym per shopper that names nobody; their discount uses too. */
TEST(erase_pseudonymizes_orders) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    int64_t first = order_of(store, "rest", "alice", "WELCOME"), second = order_of(store, "rest", "alice", NULL);
    int64_t bobs = order_of(store, "rest", "bob", "WELCOME"), console = order_of(store, "console", "alice", NULL);
    CHECK(pl_store_order_set_link(store, first, "cs_1", "https://pay.example/cs_1", 1100, &err) == 0);
    int changed = 0, fresh = 0, used = -1;
    CHECK(pl_store_order_transition(store, first, "pending", "paid", "pi_1", 1200, &changed, &err) == 0);
    CHECK(pl_store_discount_use(store, "barista", "WELCOME", "alice", first, 1200, &fresh, &err) == 0 && fresh);
    CHECK(pl_store_discount_use(store, "barista", "WELCOME", "bob", bobs, 1200, &fresh, &err) == 0 && fresh);
    char p1[PL_STORE_PSEUDONYM_LEN + 1] = "", p2[PL_STORE_PSEUDONYM_LEN + 1] = "", pc[PL_STORE_PSEUDONYM_LEN + 1] = "";
    CHECK(pl_store_pseudonym(store, &alice, p1, &err) == 0);
    CHECK(pl_store_pseudonym(store, &alice, p2, &err) == 0);
    CHECK(pl_store_pseudonym(store, &alice_console, pc, &err) == 0);
    CHECK_STR(p1, p2);
    CHECK(strcmp(p1, pc) != 0); /* another channel, another shopper */
    CHECK(strlen(p1) == PL_STORE_PSEUDONYM_LEN && strncmp(p1, "erased-", 7) == 0);
    CHECK(strspn(p1 + 7, "0123456789abcdef") == 16);
    /* no session and no transcript: the orders alone are something to erase */
    int64_t found = -1;
    CHECK(pl_store_session_erase(store, &alice, &found, &err) == 0);
    CHECK(found == 1);
    json_t *o = NULL;
    int64_t ids[2] = {first, second};
    for (int i = 0; i < 2; i++) {
        CHECK(pl_store_order_get(store, "barista", ids[i], &o, &err) == 0 && o != NULL);
        CHECK_STR(str(o, "user"), p1);
        CHECK_STR(str(o, "channel"), "rest");
        CHECK_STR(str(o, "token"), "");
        CHECK(json_is_null(json_object_get(o, "payment_url")));
        CHECK(num(o, "total") == 684);
        CHECK_STR(str(json_array_get(json_object_get(o, "lines"), 0), "sku"), "latte");
        json_decref(o);
        o = NULL;
    }
    CHECK(pl_store_order_get(store, "barista", first, &o, &err) == 0);
    CHECK_STR(str(o, "state"), "paid");
    CHECK_STR(str(o, "provider_ref"), "cs_1"); /* the provider's references stay, for refunds */
    CHECK_STR(str(o, "payment_ref"), "pi_1");
    json_decref(o);
    json_t *list = NULL;
    CHECK(pl_store_orders_of(store, "barista", NULL, "alice", 10, &list, &err) == 0);
    CHECK(json_array_size(list) == 1 && num(json_array_get(list, 0), "id") == console);
    json_decref(list);
    CHECK(pl_store_orders_of(store, "barista", "rest", p1, 10, &list, &err) == 0);
    CHECK(json_array_size(list) == 2); /* still one shopper's */
    json_decref(list);
    CHECK(pl_store_orders_of(store, "barista", NULL, "bob", 10, &list, &err) == 0);
    CHECK(json_array_size(list) == 1 && strcmp(str(json_array_get(list, 0), "token"), "tok") == 0);
    json_decref(list);
    /* the code's use stays, under the pseudonym */
    CHECK(pl_store_discount_used(store, "barista", "WELCOME", "alice", &used, &err) == 0 && used == 0);
    CHECK(pl_store_discount_used(store, "barista", "WELCOME", p1, &used, &err) == 0 && used == 1);
    CHECK(pl_store_discount_used(store, "barista", "WELCOME", "bob", &used, &err) == 0 && used == 1);
    /* a second erasure finds nothing */
    CHECK(pl_store_session_erase(store, &alice, &found, &err) == 0);
    CHECK(found == 0);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

/* Everything of one shopper, nobody else's; the long lists bounded. */
TEST(shopper_export) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    json_t *doc = (json_t *)1;
    CHECK(pl_store_shopper_export(store, &alice, 100, &doc, &err) == 0);
    CHECK(doc == NULL); /* nothing stored */
    const pl_session_key *everyone[] = {&alice, &bob, &alice_console, &alice_other_bot};
    for (int k = 0; k < 4; k++) {
        const pl_session_key *who = everyone[k];
        CHECK(put(store, who, "{\"cart\":{\"lines\":[]},\"locale\":\"en\"}"));
        for (int i = 0; i < 3; i++)
            CHECK(pl_store_transcript_add_turn(store, who, "{\"text\":\"hi\"}", 100 + 10 * i, "[{\"text\":\"hello\"}]",
                                               101 + 10 * i, NULL, &err) == 0);
        pl_store_events pe = {.conv = 1, .locale = "en", .step = "main.start", .names = " message ",
                              .list = "[]"};
        CHECK(pl_store_transcript_add_turn(store, who, "{\"text\":\"again\"}", 150, "[]", 151, &pe, &err) == 0);
        CHECK(pl_store_job_put(store, who->bot, who->channel, who->user, "reminder", "{\"n\":1}", 5000, 100, &err) == 0);
        char id[32];
        snprintf(id, sizeof id, "m-%d", k);
        int64_t in = 0, out = 0;
        CHECK(pl_store_inbox_add(store, who->bot, who->channel, id, who->user, "{\"text\":\"hi\"}", 90, &in, &err) == 0);
        CHECK(pl_store_outbox_add(store, who->bot, who->channel, who->user, "{\"to\":\"x\"}", 120, &out, &err) == 0);
    }
    json_t *h = json_pack("{s:s, s:s, s:I}", "state", "waiting", "reason", "asked", "since", (json_int_t)200);
    CHECK(pl_store_handoff_put(store, &alice, h, 200, &err) == 0);
    json_decref(h);
    int64_t mine = order_of(store, "rest", "alice", "WELCOME");
    int64_t bobs = order_of(store, "rest", "bob", "WELCOME");
    order_of(store, "console", "alice", NULL);
    int fresh = 0;
    CHECK(pl_store_discount_use(store, "barista", "WELCOME", "alice", mine, 300, &fresh, &err) == 0);
    CHECK(pl_store_discount_use(store, "barista", "WELCOME", "bob", bobs, 300, &fresh, &err) == 0);

    CHECK(pl_store_shopper_export(store, &alice, 100, &doc, &err) == 0);
    CHECK(doc != NULL);
    if (doc) {
        CHECK_STR(str(json_object_get(doc, "session"), "locale"), "en");
        json_t *t = json_object_get(doc, "transcript");
        CHECK(json_array_size(t) == 8);
        CHECK_STR(str(json_array_get(t, 0), "direction"), "in");
        CHECK(num(json_array_get(t, 0), "at") == 100);
        CHECK_STR(str(json_array_get(json_object_get(json_array_get(t, 1), "body"), 0), "text"), "hello");
        json_t *orders = json_object_get(doc, "orders");
        CHECK(json_array_size(orders) == 1 && num(json_array_get(orders, 0), "id") == mine);
        json_t *ev = json_object_get(doc, "events");
        CHECK(json_array_size(ev) == 1);
        CHECK_STR(str(json_array_get(ev, 0), "names"), " message ");
        CHECK(json_array_size(json_object_get(json_array_get(ev, 0), "events")) == 0); /* none with props */
        CHECK_STR(str(json_array_get(ev, 0), "step"), "main.start");
        json_t *jobs = json_object_get(doc, "jobs");
        CHECK(json_array_size(jobs) == 1 && strcmp(str(json_array_get(jobs, 0), "state"), "pending") == 0);
        CHECK(num(json_object_get(json_array_get(jobs, 0), "data"), "n") == 1);
        CHECK_STR(str(json_object_get(doc, "handoff"), "reason"), "asked");
        json_t *inbox = json_object_get(doc, "inbox");
        CHECK(json_array_size(inbox) == 1 && strcmp(str(json_array_get(inbox, 0), "platform_id"), "m-0") == 0);
        CHECK(json_array_size(json_object_get(doc, "outbox")) == 1);
        json_t *uses = json_object_get(doc, "discount_uses");
        CHECK(json_array_size(uses) == 1 && num(json_array_get(uses, 0), "order_id") == mine);
        CHECK(num(json_object_get(doc, "omitted"), "transcript") == 0);
        /* nobody else's: bob's, alice's on the console, another bot's alice */
        char *text = json_dumps(doc, JSON_COMPACT);
        CHECK(text && strstr(text, "bob") == NULL && strstr(text, "m-1") == NULL && strstr(text, "m-2") == NULL &&
              strstr(text, "m-3") == NULL);
        free(text);
        json_decref(doc);
    }
    /* bounded: the latest lines, and how many were left out */
    CHECK(pl_store_shopper_export(store, &alice, 4, &doc, &err) == 0);
    json_t *t = json_object_get(doc, "transcript");
    CHECK(json_array_size(t) == 4);
    CHECK(num(json_array_get(t, 0), "at") == 120);
    CHECK(num(json_array_get(t, 3), "at") == 151);
    CHECK(num(json_object_get(doc, "omitted"), "transcript") == 4);
    CHECK(num(json_object_get(doc, "omitted"), "events") == 0);
    json_decref(doc);
    /* after the erasure: nothing of alice (her order is the pseudonym's) */
    int64_t found = 0;
    CHECK(pl_store_session_erase(store, &alice, &found, &err) == 0 && found == 1);
    doc = (json_t *)1;
    CHECK(pl_store_shopper_export(store, &alice, 100, &doc, &err) == 0);
    CHECK(doc == NULL);
    char pseudonym[PL_STORE_PSEUDONYM_LEN + 1];
    CHECK(pl_store_pseudonym(store, &alice, pseudonym, &err) == 0);
    pl_session_key erased = {"barista", "rest", pseudonym};
    CHECK(pl_store_shopper_export(store, &erased, 100, &doc, &err) == 0);
    CHECK(doc != NULL && json_is_null(json_object_get(doc, "session")));
    CHECK(json_array_size(json_object_get(doc, "orders")) == 1);
    CHECK(json_array_size(json_object_get(doc, "discount_uses")) == 1);
    CHECK(json_array_size(json_object_get(doc, "transcript")) == 0);
    json_decref(doc);
    CHECK(pl_store_shopper_export(store, &bob, 100, &doc, &err) == 0);
    CHECK(doc && json_array_size(json_object_get(doc, "transcript")) == 8);
    json_decref(doc);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

/* Retention's purge: a bot's old rows, in batches, nothing else. */
TEST(purge_before_in_batches) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    for (int i = 0; i < 5; i++) {
        CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"old\"}", 100 + i, "[]", 100 + i, NULL, &err) == 0);
        CHECK(pl_store_transcript_add_turn(store, &alice_other_bot, "{\"text\":\"old\"}", 100 + i, "[]", 100 + i, NULL,
                                           &err) == 0);
    }
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"new\"}", 5000, "[]", 5001, NULL, &err) == 0);
    int64_t removed = -1, total = 0;
    do {
        CHECK(pl_store_purge_before(store, "barista", PL_PURGE_TRANSCRIPT, 1000, 2, &removed, &err) == 0);
        CHECK(removed <= 2);
        total += removed;
    } while (removed == 2);
    CHECK(total == 5);
    json_t *lines = transcript(store, &alice, 100);
    CHECK(json_array_size(lines) == 2 && num(json_array_get(lines, 0), "at") == 5000);
    json_decref(lines);
    lines = transcript(store, &alice_other_bot, 100);
    CHECK(json_array_size(lines) == 10);
    json_decref(lines);
    /* the inbox: handled messages only */
    int64_t a = 0, b = 0, c = 0;
    CHECK(pl_store_inbox_add(store, "barista", "whatsapp", "w1", "alice", "{}", 100, &a, &err) == 0);
    CHECK(pl_store_inbox_add(store, "barista", "whatsapp", "w2", "alice", "{}", 100, &b, &err) == 0);
    CHECK(pl_store_inbox_add(store, "barista", "whatsapp", "w3", "alice", "{}", 5000, &c, &err) == 0);
    CHECK(pl_store_inbox_done(store, a, 101, &err) == 0);
    CHECK(pl_store_inbox_done(store, c, 5001, &err) == 0);
    CHECK(pl_store_purge_before(store, "barista", PL_PURGE_INBOX, 1000, 10, &removed, &err) == 0);
    CHECK(removed == 1);
    json_t *rows = NULL;
    CHECK(pl_store_inbox_pending(store, INT64_MAX, &rows, &err) == 0);
    CHECK(json_array_size(rows) == 1 && num(json_array_get(rows, 0), "id") == b); /* never an unhandled one */
    json_decref(rows);
    /* the outbox: calls sent or given up only */
    CHECK(pl_store_outbox_add(store, "barista", "whatsapp", "alice", "{}", 100, &a, &err) == 0);
    CHECK(pl_store_outbox_add(store, "barista", "whatsapp", "alice", "{}", 100, &b, &err) == 0);
    CHECK(pl_store_outbox_add(store, "barista", "whatsapp", "alice", "{}", 100, &c, &err) == 0);
    CHECK(pl_store_outbox_update(store, a, "sent", 1, 0, NULL, 101, &err) == 0);
    CHECK(pl_store_outbox_update(store, b, "dead", 8, 0, "HTTP 500", 101, &err) == 0);
    CHECK(pl_store_purge_before(store, "tea", PL_PURGE_OUTBOX, 1000, 10, &removed, &err) == 0);
    CHECK(removed == 0);
    CHECK(pl_store_purge_before(store, "barista", PL_PURGE_OUTBOX, 1000, 10, &removed, &err) == 0);
    CHECK(removed == 2);
    CHECK(pl_store_outbox_pending(store, &rows, &err) == 0);
    CHECK(json_array_size(rows) == 1 && num(json_array_get(rows, 0), "id") == c);
    json_decref(rows);
    /* handoffs: closed ones only, by the time they closed */
    json_t *waits = json_pack("{s:s}", "state", "waiting"), *closes = json_pack("{s:s, s:s}", "state", "closed", "how", "close");
    CHECK(pl_store_handoff_put(store, &alice, closes, 100, &err) == 0);
    CHECK(pl_store_handoff_put(store, &bob, closes, 5000, &err) == 0);
    CHECK(pl_store_handoff_put(store, &alice_console, waits, 100, &err) == 0);
    CHECK(pl_store_purge_before(store, "barista", PL_PURGE_CLOSED_HANDOFFS, 1000, 10, &removed, &err) == 0);
    CHECK(removed == 1);
    pl_store_closed_query q = {.bot = "barista", .limit = 10};
    CHECK(pl_store_handoffs_closed(store, &q, &rows, &err) == 0);
    CHECK(json_array_size(rows) == 1 && strcmp(str(json_array_get(rows, 0), "user"), "bob") == 0);
    json_decref(rows);
    CHECK(pl_store_handoffs(store, &rows, &err) == 0);
    CHECK(json_array_size(rows) == 1); /* never an open one */
    json_decref(rows);
    json_decref(waits);
    json_decref(closes);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

/* Sold units stay sold across a reload whose catalog stock is unchanged. */
TEST(stock_sync_and_take) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    json_t *catalog = json_pack("{s:I, s:I}", "croissant", (json_int_t)5, "latte/size=large", (json_int_t)2);
    json_t *left = NULL;
    CHECK(pl_store_stock_sync(store, "barista", catalog, &left, &err) == 0);
    CHECK(num(left, "croissant") == 5);
    json_decref(left);
    int64_t remaining = -1;
    int tracked = -1;
    CHECK(pl_store_stock_take(store, "barista", "croissant", 2, &remaining, &tracked, &err) == 0);
    CHECK(tracked == 1 && remaining == 3);
    CHECK(pl_store_stock_take(store, "barista", "latte/size=large", 3, &remaining, &tracked, &err) == 0);
    CHECK(tracked == 1 && remaining == -1); /* oversold */
    CHECK(pl_store_stock_take(store, "barista", "espresso", 1, &remaining, &tracked, &err) == 0);
    CHECK(tracked == 0);
    CHECK(pl_store_stock_sync(store, "barista", catalog, &left, &err) == 0);
    CHECK(num(left, "croissant") == 3);
    json_decref(left);
    /* a changed catalog count resets; a key gone from the catalog goes */
    json_t *restocked = json_pack("{s:I}", "croissant", (json_int_t)12);
    CHECK(pl_store_stock_sync(store, "barista", restocked, &left, &err) == 0);
    CHECK(num(left, "croissant") == 12);
    CHECK(json_object_size(left) == 1);
    json_decref(left);
    CHECK(pl_store_stock_take(store, "barista", "latte/size=large", 1, &remaining, &tracked, &err) == 0);
    CHECK(tracked == 0);
    CHECK(err == NULL);
    json_decref(catalog);
    json_decref(restocked);
    free(err);
    pl_store_close(store);
}

TEST(jobs_schedule_cancel_fire) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    int64_t next = 0;
    CHECK(pl_store_job_next(store, &next, &err) == 0);
    CHECK(next == -1);
    CHECK(pl_store_job_put(store, "barista", "rest", "alice", "reminder", "{\"n\":1}", 5000, 100, &err) == 0);
    /* one pending job per session and name: this reschedules it */
    CHECK(pl_store_job_put(store, "barista", "rest", "alice", "reminder", "{\"n\":2}", 3000, 200, &err) == 0);
    CHECK(pl_store_job_put(store, "barista", "rest", "bob", "reminder", "null", 4000, 200, &err) == 0);
    CHECK(pl_store_job_put(store, "barista", "rest", "alice", "survey", "{}", 9000, 200, &err) == 0);
    CHECK(pl_store_job_next(store, &next, &err) == 0);
    CHECK(next == 3000);
    json_t *of = NULL, *due = NULL;
    CHECK(pl_store_jobs_of(store, "barista", "rest", "alice", &of, &err) == 0);
    CHECK(json_array_size(of) == 2);
    CHECK(strcmp(str(json_array_get(of, 0), "name"), "reminder") == 0);
    CHECK(num(json_object_get(json_array_get(of, 0), "data"), "n") == 2);
    json_decref(of);
    int found = -1, changed = -1;
    CHECK(pl_store_job_cancel(store, "barista", "rest", "bob", "reminder", &found, &err) == 0);
    CHECK(found == 1);
    CHECK(pl_store_job_cancel(store, "barista", "rest", "bob", "reminder", &found, &err) == 0);
    CHECK(found == 0);
    CHECK(pl_store_job_cancel(store, "barista", "rest", "bob", "reminder", NULL, &err) == 0); /* nobody asks */
    CHECK(pl_store_jobs_due(store, 5000, 10, &due, &err) == 0);
    CHECK(json_array_size(due) == 1);
    int64_t id = num(json_array_get(due, 0), "id");
    CHECK(strcmp(str(json_array_get(due, 0), "user"), "alice") == 0);
    CHECK(num(json_array_get(due, 0), "fire_at") == 3000);
    json_decref(due);
    CHECK(pl_store_job_fired(store, id, 5000, &changed, &err) == 0);
    CHECK(changed == 1);
    CHECK(pl_store_job_fired(store, id, 5001, &changed, &err) == 0);
    CHECK(changed == 0);
    CHECK(pl_store_job_next(store, &next, &err) == 0);
    CHECK(next == 9000);
    /* a fired job does not stop the same name being scheduled again */
    CHECK(pl_store_job_put(store, "barista", "rest", "alice", "reminder", "{}", 7000, 300, &err) == 0);
    CHECK(pl_store_job_next(store, &next, &err) == 0);
    CHECK(next == 7000);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

/* What /metrics reads of the store: sessions, pending jobs, a size. */
TEST(figures_count_sessions_and_jobs) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    pl_store_figures f = {-1, -1, -1};
    CHECK(pl_store_read_figures(store, &f, &err) == 0);
    CHECK(f.sessions == 0 && f.jobs_pending == 0 && f.bytes > 0);
    CHECK(put(store, &alice, "{}"));
    CHECK(put(store, &bob, "{}"));
    CHECK(pl_store_job_put(store, "barista", "rest", "alice", "reminder", "{}", 5000, 100, &err) == 0);
    CHECK(pl_store_job_put(store, "barista", "rest", "bob", "reminder", "{}", 6000, 100, &err) == 0);
    json_t *due = NULL;
    int changed = 0;
    CHECK(pl_store_jobs_due(store, 5000, 10, &due, &err) == 0);
    CHECK(json_array_size(due) == 1);
    CHECK(pl_store_job_fired(store, num(json_array_get(due, 0), "id"), 5000, &changed, &err) == 0);
    json_decref(due);
    CHECK(pl_store_read_figures(store, &f, &err) == 0);
    CHECK(f.sessions == 2 && f.jobs_pending == 1 && f.bytes > 0);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

TEST(payload_map) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL, *payload = (char *)"unset";
    CHECK(pl_store_payload_get(store, "barista", "k1", &payload, &err) == 0);
    CHECK(payload == NULL);
    CHECK(pl_store_payload_put(store, "barista", "k1", "a long payload", &err) == 0);
    CHECK(pl_store_payload_put(store, "barista", "k1", "replaced", &err) == 0);
    CHECK(pl_store_payload_get(store, "barista", "k1", &payload, &err) == 0);
    CHECK_STR(payload, "replaced");
    free(payload);
    CHECK(pl_store_payload_get(store, "tea", "k1", &payload, &err) == 0);
    CHECK(payload == NULL);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

/* --- the pipeline's batches ------------------------------------------------- */

/* The outcome of a batch: at once (SQLite), or read when it comes (wait). */
static int batch_outcome(pl_store *store, int later, int commit_rc, char **err) {
    if (commit_rc != PL_OK || !later) return commit_rc == PL_OK;
    int committed = -1;
    /* without waiting it may or may not have come; then it is waited for */
    if (!pl_store_batch_poll(store, 0, &committed, err)) CHECK(pl_store_batch_poll(store, 1, &committed, err) == 1);
    return committed == 1;
}

/* A batch writes as a transaction; on PostgreSQL its commit is only sent,
 * and the main connection reads it once it is settled. */
TEST(batch_commits_and_is_read_after) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    int later = -1;
    CHECK(pl_store_begin_batch(store, &err) == 0);
    CHECK(put(store, &alice, "{\"batch\":1}"));
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"hi\"}", 1, "[]", 2, NULL, &err) == 0);
    int64_t id = 0;
    /* a statement whose answer the caller reads, amid the others */
    CHECK(pl_store_inbox_add(store, "barista", "whatsapp", "w1", "alice", "{}", 3, &id, &err) == 0);
    CHECK(id > 0);
    CHECK(pl_store_inbox_done(store, id, 4, &err) == 0);
    /* an outgoing call's id is known once the batch is settled (PostgreSQL:
     * read with the COMMIT's outcome, not waited for) */
    int64_t call_id = 0;
    uint64_t trips = pl_store_round_trips(store);
    CHECK(pl_store_outbox_add(store, "barista", "whatsapp", "alice", "{\"to\":\"alice\"}", 5, &call_id, &err) == 0);
    CHECK(pl_store_round_trips(store) == trips);
    int rc = pl_store_commit_batch(store, &later, &err);
    CHECK(later == (on_postgres ? 1 : 0));
    CHECK(pl_store_batch_fd(store) == (on_postgres ? pl_store_batch_fd(store) : -1));
    CHECK(batch_outcome(store, later, rc, &err));
    CHECK(call_id > 0);
    json_t *calls = NULL;
    CHECK(pl_store_outbox_pending(store, &calls, &err) == 0);
    CHECK(json_array_size(calls) == 1);
    CHECK(json_integer_value(json_object_get(json_array_get(calls, 0), "id")) == call_id);
    json_decref(calls);
    char *state = get(store, &alice);
    CHECK_STR(state, "{\"batch\":1}");
    free(state);
    json_t *rows = NULL;
    CHECK(pl_store_inbox_pending(store, INT64_MAX, &rows, &err) == 0);
    CHECK(json_array_size(rows) == 0);
    json_decref(rows);
    /* and the next batch after it */
    CHECK(pl_store_begin_batch(store, &err) == 0);
    CHECK(put(store, &bob, "{\"batch\":2}"));
    rc = pl_store_commit_batch(store, &later, &err);
    CHECK(batch_outcome(store, later, rc, &err));
    state = get(store, &bob);
    CHECK_STR(state, "{\"batch\":2}");
    free(state);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

/* --- pl_store_offload: calls the loop does not wait for ------------------- */

typedef struct {
    int n;               /* the order it was handed over in */
    pthread_t ran_on;    /* the thread work ran on */
    pl_store *ran_with;  /* and its store */
    char *state;         /* what it read */
    int *done_order;     /* the dones' log */
    int *ndone;
    struct event_base *base;
    int breaks;          /* the last done ends the loop */
} handed;

static void handed_work(pl_store *store, void *ud) {
    handed *h = ud;
    h->ran_on = pthread_self();
    h->ran_with = store;
    char *err = NULL;
    pl_session_key key = {"barista", "rest", h->n % 2 ? "alice" : "bob"};
    if (pl_store_session_get(store, &key, &h->state, &err) != PL_OK) free(err);
}

static void handed_done(void *ud) {
    handed *h = ud;
    h->done_order[(*h->ndone)++] = h->n;
    if (h->breaks) event_base_loopbreak(h->base);
}

/* Work handed over sees what was committed before, runs in order, and its
 * done follows in order: on PostgreSQL with a loop on a thread of its own
 * (the loop goes on meanwhile), on SQLite at once on the caller's store. */
TEST(offloaded_calls_run_in_order) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    CHECK(put(store, &alice, "{\"who\":\"alice\"}"));
    struct event_base *base = event_base_new();
    CHECK(pl_store_use_loop(store, base, &err) == PL_OK);
    enum { N = 6 };
    handed h[N];
    int order[N], ndone = 0;
    for (int i = 0; i < N; i++) {
        h[i] = (handed){.n = i, .done_order = order, .ndone = &ndone, .base = base, .breaks = i == N - 1};
        pl_store_offload(store, handed_work, handed_done, &h[i]);
        if (on_postgres) CHECK(ndone == 0 || ndone <= i); /* the loop has not run yet */
    }
    if (on_postgres) {
        CHECK(pl_store_offloaded(store) == N - (size_t)ndone);
        event_base_dispatch(base);
    }
    CHECK(ndone == N);
    for (int i = 0; i < N; i++) {
        CHECK(order[i] == i);
        CHECK(pthread_equal(h[i].ran_on, pthread_self()) == !on_postgres);
        CHECK((h[i].ran_with == store) == !on_postgres);
        if (i % 2) CHECK_STR(h[i].state, "{\"who\":\"alice\"}");
        else CHECK(h[i].state == NULL);
        free(h[i].state);
    }
    CHECK(pl_store_offloaded(store) == 0);
    /* drained: work handed over and not yet done is done before it returns */
    handed last = {.n = 1, .done_order = order, .ndone = &ndone, .base = base};
    ndone = 0;
    pl_store_offload(store, handed_work, handed_done, &last);
    pl_store_drain(store);
    CHECK(ndone == 1);
    CHECK_STR(last.state, "{\"who\":\"alice\"}");
    free(last.state);
    /* and after it, work runs at once on the caller's store */
    last = (handed){.n = 3, .done_order = order, .ndone = &ndone, .base = base};
    pl_store_offload(store, handed_work, handed_done, &last);
    CHECK(ndone == 2);
    CHECK(last.ran_with == store);
    free(last.state);
    CHECK(pl_store_use_loop(store, NULL, &err) == PL_OK);
    free(err);
    pl_store_close(store);
    event_base_free(base);
}

/* What a webhook's batch records without waiting: a message's inbox row,
 * whose id comes with the outcome (0 for a delivery recorded before), and a
 * status, recorded once with its transcript line. */
TEST(webhook_records_in_a_batch) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    int later = -1;
    int64_t first = -1, again = -1, status_line_id = 0;
    CHECK(pl_store_begin_batch(store, &err) == 0);
    uint64_t trips = pl_store_round_trips(store);
    CHECK(pl_store_inbox_record(store, "barista", "whatsapp", "wamid.1", "alice", "{\"text\":\"hi\"}", 1, &first,
                                &err) == 0);
    CHECK(pl_store_status_record(store, "barista", "whatsapp", "status:alice:m1:read", "alice", "{\"status\":\"read\"}",
                                 2, &err) == 0);
    /* a tap the platform is answered for, in the same statement */
    int64_t tap = -1, answer = -1, tap_again = -1, answer_again = -1;
    CHECK(pl_store_inbox_record_answered(store, "barista", "telegram", "cb.1", "bob", "{\"payload\":\"latte\"}", 2,
                                         "{\"path\":\"/answerCallbackQuery\"}", &tap, &answer, &err) == 0);
    CHECK(pl_store_round_trips(store) == trips); /* nothing waited for */
    int rc = pl_store_commit_batch(store, &later, &err);
    CHECK(batch_outcome(store, later, rc, &err));
    CHECK(first > 0);
    /* the same deliveries again */
    CHECK(pl_store_begin_batch(store, &err) == 0);
    CHECK(pl_store_inbox_record(store, "barista", "whatsapp", "wamid.1", "alice", "{\"text\":\"hi\"}", 3, &again,
                                &err) == 0);
    CHECK(pl_store_status_record(store, "barista", "whatsapp", "status:alice:m1:read", "alice", "{\"status\":\"read\"}",
                                 4, &err) == 0);
    CHECK(pl_store_inbox_record_answered(store, "barista", "telegram", "cb.1", "bob", "{\"payload\":\"latte\"}", 4,
                                         "{\"path\":\"/answerCallbackQuery\"}", &tap_again, &answer_again, &err) == 0);
    rc = pl_store_commit_batch(store, &later, &err);
    CHECK(batch_outcome(store, later, rc, &err));
    CHECK(again == 0);
    CHECK(tap > 0 && answer > 0);
    CHECK(tap_again == 0 && answer_again == 0); /* a redelivery is not answered twice */
    json_t *calls = NULL;
    CHECK(pl_store_outbox_pending(store, &calls, &err) == 0);
    CHECK(json_array_size(calls) == 1);
    CHECK(json_integer_value(json_object_get(json_array_get(calls, 0), "id")) == answer);
    json_decref(calls);
    /* one status line; the message waits to be handled, the status does not */
    pl_session_key key = {"barista", "whatsapp", "alice"};
    json_t *lines = NULL, *pending = NULL;
    CHECK(pl_store_transcript_since(store, &key, 0, 10, &lines, &err) == 0);
    CHECK(json_array_size(lines) == 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(lines, 0), "direction")), "status");
    status_line_id = json_integer_value(json_object_get(json_array_get(lines, 0), "id"));
    CHECK(status_line_id > 0);
    CHECK(pl_store_inbox_pending(store, INT64_MAX, &pending, &err) == 0);
    CHECK(json_array_size(pending) == 2); /* the message and the tap */
    CHECK(json_integer_value(json_object_get(json_array_get(pending, 0), "id")) == first);
    json_decref(lines);
    json_decref(pending);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

/* An erasure in a batch: whether there was anything comes with the
 * outcome, without a round trip of its own. */
TEST(erase_in_a_batch) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    CHECK(put(store, &alice, "{\"n\":1}"));
    int later = -1;
    int64_t found_alice = -1, found_bob = -1;
    CHECK(pl_store_begin_batch(store, &err) == 0);
    uint64_t trips = pl_store_round_trips(store);
    CHECK(pl_store_session_erase(store, &alice, &found_alice, &err) == 0);
    CHECK(pl_store_session_erase(store, &bob, &found_bob, &err) == 0);
    CHECK(pl_store_round_trips(store) == trips);
    int rc = pl_store_commit_batch(store, &later, &err);
    CHECK(batch_outcome(store, later, rc, &err));
    CHECK(found_alice == 1);
    CHECK(found_bob == 0);
    char *state = get(store, &alice);
    CHECK(state == NULL);
    free(state);
    free(err);
    pl_store_close(store);
}

/* A statement that fails fails its whole batch — at once, or when the
 * outcome is read — and the next batch is unharmed. */
TEST(batch_failure_keeps_nothing) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    int later = -1;
    CHECK(pl_store_begin_batch(store, &err) == 0);
    CHECK(put(store, &alice, "{\"lost\":true}"));
    /* a line without a body breaks a NOT NULL constraint */
    int rc = pl_store_transcript_add(store, &alice, "in", NULL, 1, &err);
    if (rc == PL_OK) rc = pl_store_commit_batch(store, &later, &err);
    else pl_store_rollback(store);
    CHECK(!batch_outcome(store, later, rc, &err));
    CHECK(err != NULL);
    if (err) printf("#   said: %s\n", err);
    free(err);
    err = NULL;
    char *state = get(store, &alice);
    CHECK(state == NULL);
    free(state);
    /* a wanted answer after a failure in the same batch fails too */
    CHECK(pl_store_begin_batch(store, &err) == 0);
    rc = pl_store_transcript_add(store, &alice, "in", NULL, 1, &err);
    int64_t id = 0;
    if (rc == PL_OK) CHECK(pl_store_inbox_add(store, "barista", "whatsapp", "w2", "alice", "{}", 3, &id, &err) != 0);
    pl_store_rollback(store);
    free(err);
    err = NULL;
    /* the next batch commits */
    CHECK(pl_store_begin_batch(store, &err) == 0);
    CHECK(put(store, &bob, "{\"kept\":true}"));
    rc = pl_store_commit_batch(store, &later, &err);
    CHECK(batch_outcome(store, later, rc, &err));
    state = get(store, &bob);
    CHECK_STR(state, "{\"kept\":true}");
    free(state);
    CHECK(err == NULL);
    free(err);
    pl_store_close(store);
}

/* --- what only several connections to one PostgreSQL database show ----------- */

/* Two nodes' stores on one fresh database (the second open finds it
 * migrated: nothing to do); owned: each holds outgoing calls under a name
 * of its own. 1 when both opened. */
typedef struct {
    char *url;
    pl_store *a, *b;
} two_nodes;

static int two_nodes_open(two_nodes *t, int owned) {
    memset(t, 0, sizeof *t);
    t->url = fresh_database_url();
    CHECK(t->url != NULL);
    if (!t->url) return 0;
    char *err = NULL;
    CHECK(pl_store_open(t->url, PL_SYNC_NORMAL, &t->a, &err) == 0);
    CHECK(pl_store_open(t->url, PL_SYNC_NORMAL, &t->b, &err) == 0);
    free(err);
    if (!t->a || !t->b) return 0;
    if (owned) {
        pl_store_set_owner(t->a, "node-a:1:1", 60000);
        pl_store_set_owner(t->b, "node-b:2:2", 60000);
    }
    return 1;
}

static void two_nodes_close(two_nodes *t) {
    pl_store_close(t->a);
    pl_store_close(t->b);
    free(t->url);
}

/* SQLite: a search of closed handoffs stops at its time budget (1 ms;
 * reading 50,000 lines' JSON takes far longer) with PL_AGAIN, and the
 * connection is fine after it. */
TEST(sqlite_closed_search_stops_at_its_budget) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    CHECK(pl_store_begin(store, &err) == PL_OK);
    for (int i = 0; i < 25000; i++)
        pl_store_transcript_add_turn(store, &alice, "{\"text\":\"where is my parcel?\"}", i, "[{\"text\":\"soon\"}]",
                                     i, NULL, &err);
    json_t *closes = json_pack("{s:s, s:s, s:s}", "state", "closed", "how", "close", "agent", "Mia");
    CHECK(pl_store_handoff_put(store, &alice, closes, 30000, &err) == PL_OK);
    CHECK(pl_store_commit(store, &err) == PL_OK);
    pl_store_closed_query q = {.search = "nobody wrote this", .limit = 10, .budget_ms = 1};
    json_t *found = NULL;
    CHECK(pl_store_handoffs_closed(store, &q, &found, &err) == PL_AGAIN);
    CHECK(found == NULL);
    CHECK(err && strstr(err, "longer than 1 ms"));
    free(err);
    err = NULL;
    q.search = "alice"; /* the shopper's id: found at once, within the default budget */
    q.budget_ms = 0;
    CHECK(pl_store_handoffs_closed(store, &q, &found, &err) == PL_OK);
    CHECK(json_array_size(found) == 1);
    json_decref(found);
    CHECK(err == NULL);
    free(err);
    json_decref(closes);
    pl_store_close(store);
}

/* A search of closed handoffs stops at its time budget (here: waiting for
 * a lock another connection holds) with PL_AGAIN, and the connection is
 * fine after it. */
TEST(postgres_closed_search_stops_at_its_budget) {
    two_nodes t;
    char *err = NULL;
    if (two_nodes_open(&t, 0)) {
        json_t *closes = json_pack("{s:s, s:s, s:s}", "state", "closed", "how", "close", "agent", "Mia");
        CHECK(pl_store_handoff_put(t.a, &alice, closes, 1000, &err) == PL_OK);
        PGconn *holder = PQconnectdb(t.url);
        CHECK(PQstatus(holder) == CONNECTION_OK);
        PQclear(PQexec(holder, "BEGIN"));
        PGresult *locked = PQexec(holder, "LOCK TABLE handoffs IN ACCESS EXCLUSIVE MODE");
        CHECK(PQresultStatus(locked) == PGRES_COMMAND_OK);
        PQclear(locked);
        pl_store_closed_query q = {.search = "alice", .limit = 10, .budget_ms = 200};
        json_t *found = NULL;
        int rc = pl_store_handoffs_closed(t.b, &q, &found, &err);
        CHECK(rc == PL_AGAIN);
        CHECK(found == NULL);
        CHECK(err && strstr(err, "longer than 200 ms"));
        free(err);
        err = NULL;
        PQclear(PQexec(holder, "ROLLBACK"));
        PQfinish(holder);
        CHECK(pl_store_handoffs_closed(t.b, &q, &found, &err) == PL_OK);
        CHECK(json_array_size(found) == 1);
        json_decref(found);
        char *state = get(t.b, &alice); /* no transaction left open */
        free(state);
        CHECK(pl_store_commit(t.b, &err) != 0);
        free(err);
        err = NULL;
        json_decref(closes);
    }
    free(err);
    two_nodes_close(&t);
}

/* Two nodes' connections: a delivery, a discount and a payment confirmation
 * that reach both count once, by the database's constraints. */
TEST(postgres_connections_deduplicate) {
    two_nodes t;
    char *err = NULL;
    if (two_nodes_open(&t, 0)) {
        pl_store *one = t.a, *two = t.b;
        CHECK(strcmp(pl_store_backend_name(one), "postgresql") == 0);
        int64_t a = -1, b = -1, id = 0;
        CHECK(pl_store_inbox_add(one, "barista", "whatsapp", "wamid.9", "alice", "{}", 1, &a, &err) == 0);
        CHECK(pl_store_inbox_add(two, "barista", "whatsapp", "wamid.9", "alice", "{}", 2, &b, &err) == 0);
        CHECK(a > 0 && b == 0);
        json_t *o = an_order("alice", NULL);
        CHECK(pl_store_order_create(one, o, 10, &id, &err) == 0);
        json_decref(o);
        int first = -1, second = -1;
        CHECK(pl_store_begin(one, &err) == 0);
        CHECK(pl_store_order_transition(one, id, "pending", "paid", "pi_9", 20, &first, &err) == 0);
        CHECK(pl_store_commit(one, &err) == 0);
        CHECK(pl_store_begin(two, &err) == 0);
        CHECK(pl_store_order_transition(two, id, "pending", "paid", "pi_9", 21, &second, &err) == 0);
        CHECK(pl_store_commit(two, &err) == 0);
        CHECK(first == 1 && second == 0);
        /* what one connection commits, the other reads */
        CHECK(put(one, &alice, "{\"from\":\"one\"}"));
        char *state = get(two, &alice);
        CHECK_STR(state, "{\"from\":\"one\"}");
        free(state);
        CHECK(pl_store_commit(two, &err) != 0); /* no transaction open */
        free(err);
        err = NULL;
    }
    two_nodes_close(&t);
    free(err);
}

/* Outgoing calls of several nodes: a call is its node's while its lease
 * lasts; one let go of, or whose lease lapsed, goes to the node that claims
 * it; a node gets back its own calls once they are a lease old (a commit
 * whose outcome it lost left them behind), and none it holds fresh. */
TEST(postgres_outbox_leases) {
    two_nodes t;
    char *err = NULL;
    if (two_nodes_open(&t, 1)) {
        pl_store *a = t.a, *b = t.b;
        int64_t id = 0, old = 0;
        int64_t now = pl_now_ms();
        CHECK(pl_store_outbox_add(a, "barista", "whatsapp", "alice", "{}", now, &id, &err) == 0);
        json_t *rows = NULL;
        CHECK(pl_store_outbox_pending(b, &rows, &err) == 0);
        CHECK(json_array_size(rows) == 0); /* a holds it */
        json_decref(rows);
        CHECK(pl_store_outbox_pending(a, &rows, &err) == 0);
        CHECK(json_array_size(rows) == 0); /* fresh: a has it in memory */
        json_decref(rows);
        CHECK(pl_store_outbox_renew(a, 1, &err) == 0); /* a stops */
        CHECK(pl_store_outbox_pending(b, &rows, &err) == 0);
        CHECK(json_array_size(rows) == 1 && num(json_array_get(rows, 0), "id") == id);
        json_decref(rows);
        CHECK(pl_store_outbox_pending(a, &rows, &err) == 0);
        CHECK(json_array_size(rows) == 0); /* b's now */
        json_decref(rows);
        CHECK(pl_store_outbox_add(b, "barista", "whatsapp", "bob", "{}", now - 120000, &old, &err) == 0);
        CHECK(pl_store_outbox_pending(b, &rows, &err) == 0);
        /* its own a lease old only: the one it just claimed is fresh */
        CHECK(json_array_size(rows) == 1 && num(json_array_get(rows, 0), "id") == old);
        json_decref(rows);
        CHECK(err == NULL);
    }
    two_nodes_close(&t);
    free(err);
}

/* A shopper's calls from consecutive turns on two nodes go out in turn
 * order: the later node's waits while the earlier node's is unsent. */
/* Two nodes fire the same due job at once: the second skips the row the
 * first holds (FOR UPDATE SKIP LOCKED) instead of waiting for its commit;
 * and once the first rolls back (it died), the job is there to fire. */
TEST(postgres_job_fired_once_without_waiting) {
    two_nodes t;
    char *err = NULL;
    if (two_nodes_open(&t, 0)) {
        /* node b gives up on a lock after 2 s, so a wait fails the case
         * rather than hanging it */
        pl_store_close(t.b);
        char *impatient = pl_strdupf("%s&options=-c%%20lock_timeout%%3D2000", t.url);
        t.b = NULL;
        CHECK(pl_store_open(impatient, PL_SYNC_NORMAL, &t.b, &err) == 0);
        free(impatient);
        json_t *due = NULL;
        CHECK(pl_store_job_put(t.a, "barista", "rest", "alice", "reminder", "{}", 1000, 1, &err) == 0);
        CHECK(pl_store_jobs_due(t.a, 2000, 10, &due, &err) == 0 && json_array_size(due) == 1);
        int64_t id = json_integer_value(json_object_get(json_array_get(due, 0), "id"));
        json_decref(due);
        int first = -1, second = -1, third = -1;
        CHECK(pl_store_begin(t.a, &err) == 0);
        CHECK(pl_store_job_fired(t.a, id, 2000, &first, &err) == 0 && first == 1);
        CHECK(t.b && pl_store_begin(t.b, &err) == 0);
        CHECK(t.b && pl_store_job_fired(t.b, id, 2000, &second, &err) == 0 && second == 0);
        if (t.b) pl_store_rollback(t.b);
        pl_store_rollback(t.a); /* node a died before its commit */
        CHECK(t.b && pl_store_job_fired(t.b, id, 2000, &third, &err) == 0 && third == 1);
    }
    if (err) printf("#   said: %s\n", err);
    free(err);
    two_nodes_close(&t);
}

TEST(postgres_outbox_turn_order) {
    two_nodes t;
    char *err = NULL;
    if (two_nodes_open(&t, 1)) {
        pl_store *a = t.a, *b = t.b;
        int64_t first = 0, second = 0, other = 0, now = pl_now_ms();
        int waiting = -1;
        CHECK(pl_store_outbox_add(a, "barista", "whatsapp", "alice", "{}", now, &first, &err) == 0);
        CHECK(pl_store_outbox_add(b, "barista", "whatsapp", "alice", "{}", now, &second, &err) == 0);
        CHECK(pl_store_outbox_add(b, "barista", "whatsapp", "bob", "{}", now, &other, &err) == 0);
        CHECK(pl_store_outbox_earlier(b, "barista", "whatsapp", "alice", second, &waiting, &err) == 0);
        CHECK(waiting == 1);
        CHECK(pl_store_outbox_earlier(a, "barista", "whatsapp", "alice", first, &waiting, &err) == 0);
        CHECK(waiting == 0);
        CHECK(pl_store_outbox_earlier(b, "barista", "whatsapp", "bob", other, &waiting, &err) == 0);
        CHECK(waiting == 0); /* another shopper's calls do not wait */
        CHECK(pl_store_outbox_update(a, first, "sent", 1, 0, NULL, now, &err) == 0);
        CHECK(pl_store_outbox_earlier(b, "barista", "whatsapp", "alice", second, &waiting, &err) == 0);
        CHECK(waiting == 0);
        CHECK(err == NULL);
    }
    two_nodes_close(&t);
    free(err);
}

/* A database that cannot be opened says which, and never shows the
 * password given in its URL. */
TEST(postgres_open_fails_cleanly) {
    const char *info = server();
    CHECK(info != NULL);
    if (!info) return;
    const char *host = strstr(info, "host=");
    char *dir = host ? pl_strndup(host + 5, strcspn(host + 5, " ")) : pl_strdup("/nonexistent");
    char *urls[2] = {
        pl_strdupf("postgresql://parley:sekrit@/parley_no_such_database?host=%s&port=5432&connect_timeout=5", dir),
        pl_strdupf("postgres:///parley_no_such_database?host=%s&port=5432&user=parley&password=sekrit", dir),
    };
    for (int i = 0; i < 2; i++) {
        pl_store *store = NULL;
        char *err = NULL;
        CHECK(pl_store_open(urls[i], PL_SYNC_NORMAL, &store, &err) != 0);
        CHECK(store == NULL);
        CHECK(err != NULL && strstr(err, "parley_no_such_database") != NULL);
        CHECK(err != NULL && strstr(err, "sekrit") == NULL);
        if (err) printf("#   said: %s\n", err);
        free(err);
        free(urls[i]);
    }
    free(dir);
}

/* The pseudonyms' key is the database's: made once, kept across opens
 * (the same shopper, the same pseudonym), read by a reader (a thread's
 * connection); another database's is another. */
TEST(pseudonym_key_is_kept_by_the_database) {
    char *path = on_postgres ? fresh_database_url() : temp_db();
    char *other = on_postgres ? fresh_database_url() : temp_db();
    if (!path || !other) {
        CHECK(0);
        free(path);
        free(other);
        return;
    }
    char first[PL_STORE_PSEUDONYM_LEN + 1] = "", again[PL_STORE_PSEUDONYM_LEN + 1] = "",
         elsewhere[PL_STORE_PSEUDONYM_LEN + 1] = "", read_only[PL_STORE_PSEUDONYM_LEN + 1] = "";
    char *err = NULL;
    pl_store *store = NULL, *reader = NULL;
    CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) == 0);
    if (store) CHECK(pl_store_pseudonym(store, &alice, first, &err) == 0);
    pl_store_close(store);
    store = NULL;
    CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) == 0);
    if (store) CHECK(pl_store_pseudonym(store, &alice, again, &err) == 0);
    CHECK(pl_store_open_reader(path, &reader, &err) == 0);
    if (reader) CHECK(pl_store_pseudonym(reader, &alice, read_only, &err) == 0);
    pl_store_close(reader);
    pl_store_close(store);
    store = NULL;
    CHECK(pl_store_open(other, PL_SYNC_NORMAL, &store, &err) == 0);
    if (store) CHECK(pl_store_pseudonym(store, &alice, elsewhere, &err) == 0);
    pl_store_close(store);
    CHECK(strlen(first) == PL_STORE_PSEUDONYM_LEN);
    CHECK_STR(first, again);
    CHECK_STR(first, read_only);
    CHECK(strcmp(first, elsewhere) != 0);
    if (!on_postgres) {
        CHECK(query_int(path, "SELECT count(*) FROM settings WHERE name = 'pseudonym_key' AND length(value) = 64") == 1);
        remove_db(path);
        remove_db(other);
    }
    CHECK(err == NULL);
    free(err);
    free(path);
    free(other);
}

/* pl_store_events_read of one shopper (user and channel given) reads that
 * conversation's events only; without a user, everyone's. */
TEST(events_of_one_shopper) {
    pl_store *store = open_memory();
    if (!store) return;
    char *err = NULL;
    pl_store_events ev = {.conv = 1, .step = "main.start", .names = " message reply "};
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"hi\"}", 100, "[]", 101, &ev, &err) == 0);
    CHECK(pl_store_transcript_add_turn(store, &bob, "{\"text\":\"hi\"}", 102, "[]", 103, &ev, &err) == 0);
    CHECK(pl_store_transcript_add_turn(store, &alice_console, "{\"text\":\"hi\"}", 104, "[]", 105, &ev, &err) == 0);
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"more\"}", 106, "[]", 107, &ev, &err) == 0);
    json_t *rows = NULL;
    pl_store_events_query q = {.bot = "barista", .from_ms = 0, .to_ms = 1000, .channel = "rest", .user = "alice",
                               .after_at = INT64_MIN, .limit = 100};
    CHECK(pl_store_events_read(store, &q, &rows, &err) == PL_OK);
    CHECK(json_array_size(rows) == 2);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        CHECK(strcmp(json_string_value(json_object_get(row, "user")), "alice") == 0);
        CHECK(strcmp(json_string_value(json_object_get(row, "channel")), "rest") == 0);
    }
    json_decref(rows);
    /* paged: after the first row */
    q.limit = 1;
    CHECK(pl_store_events_read(store, &q, &rows, &err) == PL_OK);
    CHECK(json_array_size(rows) == 1);
    q.after_at = json_integer_value(json_object_get(json_array_get(rows, 0), "at"));
    q.after_id = json_integer_value(json_object_get(json_array_get(rows, 0), "id"));
    json_decref(rows);
    CHECK(pl_store_events_read(store, &q, &rows, &err) == PL_OK);
    CHECK(json_array_size(rows) == 1 && json_integer_value(json_object_get(json_array_get(rows, 0), "at")) == 106);
    json_decref(rows);
    pl_store_events_query all = {.bot = "barista", .from_ms = 0, .to_ms = 1000, .after_at = INT64_MIN, .limit = 100};
    CHECK(pl_store_events_read(store, &all, &rows, &err) == PL_OK);
    CHECK(json_array_size(rows) == 4);
    json_decref(rows);
    free(err);
    pl_store_close(store);
}

/* pl_store_open_existing reads a database as it is and refuses what is not
 * this parley's: an empty file (left empty), another schema version. */
TEST(open_existing_reads_only) {
    char *path = temp_db(), *err = NULL;
    pl_store *store = NULL;
    CHECK(pl_store_open_existing(path, &store, &err) != PL_OK);
    CHECK(err && strstr(err, "not a parley database"));
    free(err);
    err = NULL;
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 0);
    CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) == PL_OK);
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"hi\"}", 100, "[]", 101, NULL, &err) == 0);
    pl_store_close(store);
    store = NULL;
    CHECK(pl_store_open_existing(path, &store, &err) == PL_OK);
    json_t *lines = store ? lines_since(store, &alice, 0) : NULL;
    CHECK(json_array_size(lines) == 2);
    json_decref(lines);
    pl_store_close(store);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (999, 0)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    store = NULL;
    CHECK(pl_store_open_existing(path, &store, &err) != PL_OK && store == NULL);
    CHECK(err && strstr(err, "schema is at version 999, newer than this parley's"));
    free(err);
    unlink(path);
    free(path);
}

/* The cases every backend must pass. */
#define CONTRACT(X)                              \
    X(open_memory)                               \
    X(ping_answers_in_and_out_of_a_transaction)  \
    X(session_put_get_erase)                     \
    X(session_state_is_kept_byte_for_byte)       \
    X(transcript_order_and_limit)                \
    X(turn_is_two_lines)                         \
    X(erase_removes_transcript)                  \
    X(catalog_replace)                           \
    X(catalog_replace_is_atomic)                 \
    X(begin_commit_rollback)                     \
    X(handoff_queue)                             \
    X(handoff_visitor_and_page)                  \
    X(visitor_numbers_never_repeat)              \
    X(closed_handoffs_searched)                  \
    X(transcript_by_id)                          \
    X(conversations_list)                        \
    X(inbox_deduplicates_and_replays)            \
    X(outbox_rows)                               \
    X(orders_and_their_states)                   \
    X(discount_once_per_shopper)                 \
    X(erase_pseudonymizes_orders)                \
    X(shopper_export)                            \
    X(purge_before_in_batches)                   \
    X(pseudonym_key_is_kept_by_the_database)     \
    X(stock_sync_and_take)                       \
    X(jobs_schedule_cancel_fire)                 \
    X(payload_map)                               \
    X(batch_commits_and_is_read_after)           \
    X(batch_failure_keeps_nothing)               \
    X(offloaded_calls_run_in_order)              \
    X(webhook_records_in_a_batch)                \
    X(erase_in_a_batch)                          \
    X(figures_count_sessions_and_jobs)           \
    X(events_of_one_shopper)

#define ON_SQLITE(name) RUN_AS("sqlite: " #name, name);
#define ON_POSTGRES(name) RUN_AS("postgresql: " #name, name);

int main(void) {
    CONTRACT(ON_SQLITE)
    RUN(open_file_and_reopen);
    RUN(migrations_recorded_once);
    RUN(open_fails_cleanly);
    RUN(old_transcript_kept_by_the_migration);
    RUN(sqlite_closed_search_stops_at_its_budget);
    RUN(rollback_is_seen_by_file_reopen);
    RUN(open_existing_reads_only);
    if (!getenv("PARLEY_TEST_PG")) {
        /* (without a server each case would have no store to call) */
        printf("not ok %d - postgresql: no server, PARLEY_TEST_PG is not set (tests/pg/cluster.sh)\n", ++check_count);
        check_failed++;
        return check_done();
    }
    on_postgres = 1;
    CONTRACT(ON_POSTGRES)
    RUN(postgres_connections_deduplicate);
    RUN(postgres_closed_search_stops_at_its_budget);
    RUN(postgres_outbox_leases);
    RUN(postgres_outbox_turn_order);
    RUN(postgres_job_fired_once_without_waiting);
    RUN(postgres_open_fails_cleanly);
    return check_done();
}
