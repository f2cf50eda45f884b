/* store: the SQLite backend of the storage interface (store.h).
 * Owns the connection, the migrations and the prepared statements. */
#include "store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

enum {
    ST_SESSION_GET,
    ST_SESSION_PUT,
    ST_SESSION_DEL,
    ST_TRANSCRIPT_ADD,
    ST_TRANSCRIPT_DEL,
    ST_TRANSCRIPT_GET,
    ST_COUNT
};

static const char *const statement_sql[ST_COUNT] = {
    [ST_SESSION_GET] = "SELECT state FROM sessions WHERE bot = ?1 AND channel = ?2 AND user = ?3",
    [ST_SESSION_PUT] = "INSERT INTO sessions (bot, channel, user, state, updated_at) "
                       "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (bot, channel, user) "
                       "DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    [ST_SESSION_DEL] = "DELETE FROM sessions WHERE bot = ?1 AND channel = ?2 AND user = ?3",
    [ST_TRANSCRIPT_ADD] = "INSERT INTO transcript (bot, channel, user, at, direction, body) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_TRANSCRIPT_DEL] = "DELETE FROM transcript WHERE bot = ?1 AND channel = ?2 AND user = ?3",
    [ST_TRANSCRIPT_GET] = "SELECT at, direction, body FROM (SELECT id, at, direction, body "
                          "FROM transcript WHERE bot = ?1 AND channel = ?2 AND user = ?3 "
                          "ORDER BY id DESC LIMIT ?4) ORDER BY id",
};

/* Numbered migrations: the index + 1 is the schema version. Append only. */
static const char *const migrations[] = {
    "CREATE TABLE sessions ("
    "  bot TEXT NOT NULL, channel TEXT NOT NULL, user TEXT NOT NULL,"
    "  state TEXT NOT NULL, updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (bot, channel, user)) WITHOUT ROWID;"
    "CREATE TABLE transcript ("
    "  id INTEGER PRIMARY KEY, bot TEXT NOT NULL, channel TEXT NOT NULL, user TEXT NOT NULL,"
    "  at INTEGER NOT NULL, direction TEXT NOT NULL, body TEXT NOT NULL);"
    "CREATE INDEX transcript_by_session ON transcript (bot, channel, user, id);"
    "CREATE TABLE products ("
    "  bot TEXT NOT NULL, sku TEXT NOT NULL, position INTEGER NOT NULL, data TEXT NOT NULL,"
    "  PRIMARY KEY (bot, sku)) WITHOUT ROWID;",
};

struct pl_store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
};

static int db_fail(pl_store *store, char **err, const char *what) {
    return pl_fail(err, "store: %s: %s", what, sqlite3_errmsg(store->db));
}

static int exec_sql(pl_store *store, const char *sql, char **err) {
    char *msg = NULL;
    if (sqlite3_exec(store->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        pl_fail(err, "store: %s", msg ? msg : sqlite3_errmsg(store->db));
        sqlite3_free(msg);
        return PL_ERR;
    }
    return PL_OK;
}

static int schema_version(pl_store *store) {
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(store->db, "SELECT max(version) FROM schema_migrations", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return version;
}

static int migrate(pl_store *store, char **err) {
    if (exec_sql(store,
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 "  version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                 err) != PL_OK)
        return PL_ERR;
    int have = schema_version(store);
    int want = (int)(sizeof migrations / sizeof migrations[0]);
    for (int v = have + 1; v <= want; v++) {
        char *record = pl_strdupf("INSERT INTO schema_migrations VALUES (%d, %lld)", v,
                                  (long long)pl_now_ms());
        int rc = exec_sql(store, "BEGIN", err);
        if (rc == PL_OK) rc = exec_sql(store, migrations[v - 1], err);
        if (rc == PL_OK) rc = exec_sql(store, record, err);
        if (rc == PL_OK) rc = exec_sql(store, "COMMIT", err);
        free(record);
        if (rc != PL_OK) {
            exec_sql(store, "ROLLBACK", NULL);
            char *inner = *err;
            *err = pl_strdupf("migration %d failed: %s", v, inner);
            free(inner);
            return PL_ERR;
        }
    }
    return PL_OK;
}

int pl_store_open(const char *path, pl_store_sync sync, pl_store **out, char **err) {
    pl_store *store = calloc(1, sizeof *store);
    if (!store) abort();
    if (sqlite3_open_v2(path, &store->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        pl_fail(err, "store: cannot open %s: %s", path, sqlite3_errmsg(store->db));
        pl_store_close(store);
        return PL_ERR;
    }
    sqlite3_busy_timeout(store->db, 5000);
    const char *pragmas = sync == PL_SYNC_FULL
                              ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                              : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
    if (exec_sql(store, pragmas, err) != PL_OK || migrate(store, err) != PL_OK) {
        pl_store_close(store);
        return PL_ERR;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(store->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &store->stmt[i], NULL) != SQLITE_OK) {
            db_fail(store, err, "prepare");
            pl_store_close(store);
            return PL_ERR;
        }
    }
    *out = store;
    return PL_OK;
}

void pl_store_close(pl_store *store) {
    if (!store) return;
    for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(store->stmt[i]);
    sqlite3_close(store->db);
    free(store);
}

int pl_store_begin(pl_store *store, char **err) { return exec_sql(store, "BEGIN", err); }

int pl_store_commit(pl_store *store, char **err) { return exec_sql(store, "COMMIT", err); }

void pl_store_rollback(pl_store *store) {
    if (!sqlite3_get_autocommit(store->db)) exec_sql(store, "ROLLBACK", NULL);
}

/* Resets st and binds the session key to ?1..?3. */
static sqlite3_stmt *bind_key(pl_store *store, int which, const pl_session_key *key) {
    sqlite3_stmt *st = store->stmt[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_text(st, 1, key->bot, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key->channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, key->user, -1, SQLITE_STATIC);
    return st;
}

/* Steps a statement that returns no rows. */
static int step_done(pl_store *store, sqlite3_stmt *st, char **err, const char *what) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? PL_OK : db_fail(store, err, what);
}

int pl_store_session_get(pl_store *store, const pl_session_key *key, char **state_json,
                         char **err) {
    sqlite3_stmt *st = bind_key(store, ST_SESSION_GET, key);
    int rc = sqlite3_step(st);
    *state_json = NULL;
    if (rc == SQLITE_ROW) {
        *state_json = pl_strndup((const char *)sqlite3_column_text(st, 0),
                                 (size_t)sqlite3_column_bytes(st, 0));
        rc = SQLITE_DONE;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? PL_OK : db_fail(store, err, "load session");
}

int pl_store_session_put(pl_store *store, const pl_session_key *key, const char *state_json,
                         int64_t now_ms, char **err) {
    sqlite3_stmt *st = bind_key(store, ST_SESSION_PUT, key);
    sqlite3_bind_text(st, 4, state_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms);
    return step_done(store, st, err, "save session");
}

int pl_store_session_erase(pl_store *store, const pl_session_key *key, int *found, char **err) {
    if (step_done(store, bind_key(store, ST_SESSION_DEL, key), err, "erase session") != PL_OK)
        return PL_ERR;
    *found = sqlite3_changes(store->db) > 0;
    if (step_done(store, bind_key(store, ST_TRANSCRIPT_DEL, key), err, "erase transcript") !=
        PL_OK)
        return PL_ERR;
    *found = *found || sqlite3_changes(store->db) > 0;
    return PL_OK;
}

int64_t pl_store_session_count(pl_store *store) {
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(store->db, "SELECT count(*) FROM sessions", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

int pl_store_transcript_add(pl_store *store, const pl_session_key *key, const char *direction,
                            const char *body_json, int64_t now_ms, char **err) {
    sqlite3_stmt *st = bind_key(store, ST_TRANSCRIPT_ADD, key);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_text(st, 5, direction, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, body_json, -1, SQLITE_STATIC);
    return step_done(store, st, err, "add transcript line");
}

int pl_store_transcript_get(pl_store *store, const pl_session_key *key, int limit,
                            json_t **lines, char **err) {
    sqlite3_stmt *st = bind_key(store, ST_TRANSCRIPT_GET, key);
    sqlite3_bind_int(st, 4, limit);
    json_t *out = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *body = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
        json_array_append_new(out, json_pack("{s:I, s:s, s:o}", "at",
                                             (json_int_t)sqlite3_column_int64(st, 0), "direction",
                                             (const char *)sqlite3_column_text(st, 1), "body",
                                             body ? body : json_null()));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(out);
        return db_fail(store, err, "read transcript");
    }
    *lines = out;
    return PL_OK;
}

int pl_store_catalog_replace(pl_store *store, const char *bot, const json_t *products,
                             char **err) {
    sqlite3_stmt *del = NULL, *ins = NULL;
    int rc = exec_sql(store, "SAVEPOINT catalog", err);
    if (rc != PL_OK) return rc;
    if (sqlite3_prepare_v2(store->db, "DELETE FROM products WHERE bot = ?1", -1, &del, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(store->db,
                           "INSERT INTO products (bot, sku, position, data) VALUES (?1, ?2, ?3, ?4)",
                           -1, &ins, NULL) != SQLITE_OK) {
        rc = db_fail(store, err, "replace catalog");
        goto done;
    }
    sqlite3_bind_text(del, 1, bot, -1, SQLITE_STATIC);
    if ((rc = step_done(store, del, err, "clear catalog")) != PL_OK) goto done;
    size_t i;
    json_t *product;
    json_array_foreach(products, i, product) {
        char *data = json_dumps(product, JSON_COMPACT);
        sqlite3_bind_text(ins, 1, bot, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, json_string_value(json_object_get(product, "sku")), -1,
                          SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, (sqlite3_int64)i);
        sqlite3_bind_text(ins, 4, data, -1, free);
        if ((rc = step_done(store, ins, err, "insert product")) != PL_OK) goto done;
    }
done:
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    if (rc == PL_OK) return exec_sql(store, "RELEASE catalog", err);
    exec_sql(store, "ROLLBACK TO catalog; RELEASE catalog", NULL);
    return rc;
}

int64_t pl_store_catalog_count(pl_store *store, const char *bot) {
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(store->db, "SELECT count(*) FROM products WHERE bot = ?1", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, bot, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}
