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
    ST_INBOX_ADD,
    ST_INBOX_DONE,
    ST_OUTBOX_ADD,
    ST_OUTBOX_UPDATE,
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
    [ST_INBOX_ADD] = "INSERT OR IGNORE INTO inbox (bot, channel, platform_id, user, message, "
                     "received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_INBOX_DONE] = "UPDATE inbox SET done_at = ?2 WHERE id = ?1",
    [ST_OUTBOX_ADD] = "INSERT INTO outbox (bot, channel, user, call, next_at, created_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    [ST_OUTBOX_UPDATE] = "UPDATE outbox SET state = ?2, attempts = ?3, next_at = ?4, "
                         "last_error = ?5, sent_at = CASE WHEN ?2 = 'sent' THEN ?6 END WHERE id = ?1",
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
    /* 2: messaging channels */
    "CREATE TABLE inbox ("
    "  id INTEGER PRIMARY KEY, bot TEXT NOT NULL, channel TEXT NOT NULL,"
    "  platform_id TEXT NOT NULL, user TEXT NOT NULL, message TEXT NOT NULL,"
    "  received_at INTEGER NOT NULL, done_at INTEGER,"
    "  UNIQUE (bot, channel, platform_id));"
    "CREATE INDEX inbox_pending ON inbox (id) WHERE done_at IS NULL;"
    "CREATE TABLE outbox ("
    "  id INTEGER PRIMARY KEY, bot TEXT NOT NULL, channel TEXT NOT NULL, user TEXT NOT NULL,"
    "  call TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',"
    "  attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, last_error TEXT,"
    "  created_at INTEGER NOT NULL, sent_at INTEGER);"
    "CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';"
    "CREATE TABLE payload_map ("
    "  bot TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL,"
    "  PRIMARY KEY (bot, key)) WITHOUT ROWID;",
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

/* --- inbox ---------------------------------------------------------------- */

int pl_store_inbox_add(pl_store *store, const char *bot, const char *channel,
                       const char *platform_id, const char *user, const char *message_json,
                       int64_t now_ms, int64_t *id, char **err) {
    sqlite3_stmt *st = store->stmt[ST_INBOX_ADD];
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, bot, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, platform_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, message_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now_ms);
    if (step_done(store, st, err, "record inbound message") != PL_OK) return PL_ERR;
    *id = sqlite3_changes(store->db) > 0 ? sqlite3_last_insert_rowid(store->db) : 0;
    return PL_OK;
}

int pl_store_inbox_done(pl_store *store, int64_t id, int64_t now_ms, char **err) {
    sqlite3_stmt *st = store->stmt[ST_INBOX_DONE];
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    return step_done(store, st, err, "mark inbound message handled");
}

/* Runs a query and collects each row as an object with the given keys
 * (columns in order; a key starting with '#' is an integer column, '@' a
 * JSON column). */
static int collect_rows(pl_store *store, const char *sql, const char *const *keys, int nkeys,
                        json_t **rows, char **err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(store, err, "query");
    json_t *out = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = json_object();
        for (int i = 0; i < nkeys; i++) {
            const char *key = keys[i];
            json_t *v;
            if (key[0] == '#') {
                v = json_integer(sqlite3_column_int64(st, i));
                key++;
            } else if (key[0] == '@') {
                v = json_loads((const char *)sqlite3_column_text(st, i), 0, NULL);
                key++;
            } else {
                v = json_string((const char *)sqlite3_column_text(st, i));
            }
            json_object_set_new(row, key, v ? v : json_null());
        }
        json_array_append_new(out, row);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(out);
        return db_fail(store, err, "query");
    }
    *rows = out;
    return PL_OK;
}

int pl_store_inbox_pending(pl_store *store, json_t **rows, char **err) {
    static const char *const keys[] = {"#id", "bot", "channel", "user", "@message"};
    return collect_rows(store,
                        "SELECT id, bot, channel, user, message FROM inbox "
                        "WHERE done_at IS NULL ORDER BY id",
                        keys, 5, rows, err);
}

int pl_store_inbox_prune(pl_store *store, int64_t before_ms, char **err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, "DELETE FROM inbox WHERE done_at IS NOT NULL AND done_at < ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(store, err, "prune inbox");
    sqlite3_bind_int64(st, 1, before_ms);
    int rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : db_fail(store, err, "prune inbox");
    sqlite3_finalize(st);
    return rc;
}

/* --- outbox --------------------------------------------------------------- */

int pl_store_outbox_add(pl_store *store, const char *bot, const char *channel, const char *user,
                        const char *call_json, int64_t now_ms, int64_t *id, char **err) {
    sqlite3_stmt *st = store->stmt[ST_OUTBOX_ADD];
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, bot, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, call_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms);
    if (step_done(store, st, err, "queue outgoing message") != PL_OK) return PL_ERR;
    *id = sqlite3_last_insert_rowid(store->db);
    return PL_OK;
}

int pl_store_outbox_pending(pl_store *store, json_t **rows, char **err) {
    static const char *const keys[] = {"#id", "bot", "channel", "user", "@call", "#attempts", "#next_at"};
    return collect_rows(store,
                        "SELECT id, bot, channel, user, call, attempts, next_at FROM outbox "
                        "WHERE state = 'pending' ORDER BY id",
                        keys, 7, rows, err);
}

int pl_store_outbox_update(pl_store *store, int64_t id, const char *state, int attempts,
                           int64_t next_at_ms, const char *error, int64_t now_ms, char **err) {
    sqlite3_stmt *st = store->stmt[ST_OUTBOX_UPDATE];
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, attempts);
    sqlite3_bind_int64(st, 4, next_at_ms);
    if (error) sqlite3_bind_text(st, 5, error, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, now_ms);
    return step_done(store, st, err, "update outgoing message");
}

int pl_store_outbox_count(pl_store *store, const char *bot, const char *state, int64_t *n,
                          char **err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT count(*) FROM outbox WHERE state = ?1 AND (?2 IS NULL OR bot = ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(store, err, "count outbox");
    sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    if (bot) sqlite3_bind_text(st, 2, bot, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? PL_OK : db_fail(store, err, "count outbox");
}

/* --- payload map ------------------------------------------------------------ */

int pl_store_payload_put(pl_store *store, const char *bot, const char *key, const char *payload,
                         char **err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db,
                           "INSERT OR REPLACE INTO payload_map (bot, key, payload) VALUES (?1, ?2, ?3)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(store, err, "map payload");
    sqlite3_bind_text(st, 1, bot, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, payload, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : db_fail(store, err, "map payload");
    sqlite3_finalize(st);
    return rc;
}

int pl_store_payload_get(pl_store *store, const char *bot, const char *key, char **payload,
                         char **err) {
    sqlite3_stmt *st = NULL;
    *payload = NULL;
    if (sqlite3_prepare_v2(store->db, "SELECT payload FROM payload_map WHERE bot = ?1 AND key = ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(store, err, "look up payload");
    sqlite3_bind_text(st, 1, bot, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *payload = pl_strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? PL_OK : db_fail(store, err, "look up payload");
}
