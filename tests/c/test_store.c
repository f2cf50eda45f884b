/* test_store: the SQLite store (store.h): open and migrations, sessions,
 * transcripts, catalog copies and transactions. */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "check.h"
#include "store/store.h"

static const pl_session_key alice = {"barista", "rest", "alice"};
static const pl_session_key bob = {"barista", "rest", "bob"};
static const pl_session_key alice_console = {"barista", "console", "alice"};
static const pl_session_key alice_other_bot = {"tea", "rest", "alice"};

static pl_store *open_memory(void) {
    pl_store *store = NULL;
    char *err = NULL;
    int rc = pl_store_open(":memory:", PL_SYNC_NORMAL, &store, &err);
    if (rc != 0) printf("#   open failed: %s\n", err);
    free(err);
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
    int rc = pl_store_session_put(store, key, state, 1000, &err);
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

    int found = -1;
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
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"hi\"}", 100, "[{\"text\":\"hello\"}]", 105,
                                       &err) == 0);
    CHECK(add_line(store, &alice, "status", "{\"text\":\"read\"}", 106));
    CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"latte\"}", 107, "[{\"text\":\"size?\"}]", 108,
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
    int found = 0;
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
    /* back to the layout of schema 5: one table of lines */
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "DROP VIEW transcript;"
                       "ALTER TABLE transcript_rows DROP COLUMN reply;"
                       "ALTER TABLE transcript_rows DROP COLUMN reply_at;"
                       "ALTER TABLE transcript_rows RENAME TO transcript;"
                       "DELETE FROM schema_migrations WHERE version = 6;"
                       "INSERT INTO transcript (id, bot, channel, user, at, direction, body) VALUES"
                       " (7, 'barista', 'rest', 'alice', 10, 'in', '{\"text\":\"hi\"}'),"
                       " (8, 'barista', 'rest', 'alice', 11, 'out', '[{\"text\":\"hello\"}]'),"
                       " (9, 'barista', 'rest', 'alice', 12, 'in', '{\"text\":\"latte\"}');",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    store = NULL;
    CHECK(pl_store_open(path, PL_SYNC_NORMAL, &store, &err) == 0);
    if (store) {
        CHECK(pl_store_transcript_add_turn(store, &alice, "{\"text\":\"done\"}", 13, "[{\"text\":\"bye\"}]", 14,
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
    CHECK(query_int(path, "SELECT max(version) FROM schema_migrations") == 6);
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
    int found = 0;
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

int main(void) {
    RUN(open_memory);
    RUN(ping_answers_in_and_out_of_a_transaction);
    RUN(open_file_and_reopen);
    RUN(migrations_recorded_once);
    RUN(open_fails_cleanly);
    RUN(session_put_get_erase);
    RUN(session_state_is_kept_byte_for_byte);
    RUN(transcript_order_and_limit);
    RUN(turn_is_two_lines);
    RUN(old_transcript_kept_by_the_migration);
    RUN(erase_removes_transcript);
    RUN(catalog_replace);
    RUN(catalog_replace_is_atomic);
    RUN(begin_commit_rollback);
    RUN(rollback_is_seen_by_file_reopen);
    RUN(handoff_queue);
    return check_done();
}
