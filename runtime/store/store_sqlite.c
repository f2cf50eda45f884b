/* store_sqlite: the SQLite backend of the storage interface (store.h,
 * store_backend.h).
 * Owns the connection, the migrations and the prepared statements. */
#include "store.h"
#include "store_backend.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <threads.h>
#include <time.h>

#include "base/common.h"

enum {
    ST_SESSION_GET,
    ST_SESSION_PUT,
    ST_SESSION_DEL,
    ST_TRANSCRIPT_ADD,
    ST_TRANSCRIPT_DEL,
    ST_TRANSCRIPT_GET,
    ST_TRANSCRIPT_ADD_TURN,
    ST_INBOX_ADD,
    ST_INBOX_DONE,
    ST_OUTBOX_ADD,
    ST_OUTBOX_UPDATE,
    ST_COUNT
};

/* A new transcript row's id: past the last row's answer line, which is the
 * row's id + 1 (migration 6). */
#define NEXT_TRANSCRIPT_ID "(SELECT coalesce(max(id), 0) + 2 FROM transcript_rows)"

static const char *const statement_sql[ST_COUNT] = {
    [ST_SESSION_GET] = "SELECT state FROM sessions WHERE bot = ?1 AND channel = ?2 AND user = ?3",
    [ST_SESSION_PUT] = "INSERT INTO sessions (bot, channel, user, state, updated_at) "
                       "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (bot, channel, user) "
                       "DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    [ST_SESSION_DEL] = "DELETE FROM sessions WHERE bot = ?1 AND channel = ?2 AND user = ?3",
    [ST_TRANSCRIPT_ADD] = "INSERT INTO transcript_rows (id, bot, channel, user, at, direction, body) "
                          "VALUES (" NEXT_TRANSCRIPT_ID ", ?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_TRANSCRIPT_ADD_TURN] = "INSERT INTO transcript_rows (id, bot, channel, user, at, direction, body, reply_at, reply, "
                               "conv, locale, step, names, list) "
                               "VALUES (" NEXT_TRANSCRIPT_ID ", ?1, ?2, ?3, ?4, 'in', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [ST_TRANSCRIPT_DEL] = "DELETE FROM transcript_rows WHERE bot = ?1 AND channel = ?2 AND user = ?3",
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

/* The page ({"url", "title"} as JSON text) of the newest of a shopper's
 * latest 20 messages that named one (the web chat's info.page_url), or
 * NULL: what an open handoff's row keeps (migration 12). */
#define LATEST_PAGE(bot, channel, user)                                                                     \
    "SELECT json_object('url', json_extract(t.body, '$.info.page_url'), "                                  \
    "'title', json_extract(t.body, '$.info.page_title')) FROM (SELECT id, body FROM transcript_rows "      \
    "WHERE bot = " bot " AND channel = " channel " AND user = " user " AND direction = 'in' "              \
    "ORDER BY id DESC LIMIT 20) t WHERE json_extract(t.body, '$.info.page_url') IS NOT NULL "              \
    "ORDER BY t.id DESC LIMIT 1"

/* Numbered migrations: the index + 1 is the schema version. Append only;
 * pg_schema.c has each in PostgreSQL's dialect, under the same number, and
 * a new one goes into both. */
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
    /* 3: commerce */
    "CREATE TABLE orders ("
    "  id INTEGER PRIMARY KEY, bot TEXT NOT NULL, channel TEXT NOT NULL, user TEXT NOT NULL,"
    "  state TEXT NOT NULL, fulfilment TEXT, tracking_url TEXT,"
    "  currency TEXT NOT NULL, subtotal INTEGER NOT NULL, discount INTEGER NOT NULL,"
    "  total INTEGER NOT NULL, discount_code TEXT, lines TEXT NOT NULL,"
    "  provider TEXT NOT NULL, provider_ref TEXT, payment_ref TEXT, payment_url TEXT,"
    "  token TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  paid_at INTEGER);"
    "CREATE INDEX orders_by_user ON orders (bot, channel, user, id);"
    "CREATE TABLE discount_uses ("
    "  bot TEXT NOT NULL, code TEXT NOT NULL, user TEXT NOT NULL, order_id INTEGER NOT NULL,"
    "  used_at INTEGER NOT NULL, PRIMARY KEY (bot, code, user)) WITHOUT ROWID;"
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY, bot TEXT NOT NULL, channel TEXT NOT NULL, user TEXT NOT NULL,"
    "  name TEXT NOT NULL, data TEXT NOT NULL, fire_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending', created_at INTEGER NOT NULL, fired_at INTEGER);"
    "CREATE UNIQUE INDEX jobs_one_pending ON jobs (bot, channel, user, name) WHERE state = 'pending';"
    "CREATE INDEX jobs_due ON jobs (fire_at) WHERE state = 'pending';"
    "CREATE TABLE stock ("
    "  bot TEXT NOT NULL, key TEXT NOT NULL, remaining INTEGER NOT NULL,"
    "  catalog_stock INTEGER NOT NULL, PRIMARY KEY (bot, key)) WITHOUT ROWID;",
    /* 4: human handoff */
    "CREATE TABLE handoffs ("
    "  bot TEXT NOT NULL, channel TEXT NOT NULL, user TEXT NOT NULL, state TEXT NOT NULL,"
    "  reason TEXT, agent TEXT, since INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (bot, channel, user)) WITHOUT ROWID;",
    /* 5: the shopper's name in the agents' queue */
    "ALTER TABLE handoffs ADD COLUMN display_name TEXT;",
    /* 6: a turn's message and answer in one row (one insert, one index
     * entry); `transcript` becomes the view of lines every reader reads.
     * A row's id is its first line's; its answer is the line id + 1, which
     * no row takes (a row's id is the last one's + 2). */
    "ALTER TABLE transcript RENAME TO transcript_rows;"
    "ALTER TABLE transcript_rows ADD COLUMN reply_at INTEGER;"
    "ALTER TABLE transcript_rows ADD COLUMN reply TEXT;"
    "CREATE VIEW transcript AS"
    "  SELECT id, bot, channel, user, at, direction, body FROM transcript_rows"
    "  UNION ALL"
    "  SELECT id + 1, bot, channel, user, reply_at, 'out', reply FROM transcript_rows WHERE reply IS NOT NULL;"
    /* a line written into the view (a tool's, a test's) is a row of its own */
    "CREATE TRIGGER transcript_insert INSTEAD OF INSERT ON transcript BEGIN"
    "  INSERT INTO transcript_rows (id, bot, channel, user, at, direction, body)"
    "  VALUES ((SELECT coalesce(max(id), 0) + 2 FROM transcript_rows), NEW.bot, NEW.channel, NEW.user, NEW.at,"
    "          NEW.direction, NEW.body);"
    "END;",
    /* 7: several nodes (PostgreSQL's; one node on SQLite keeps them as
     * they are): a session's turn count, and who holds an outgoing call */
    "ALTER TABLE sessions ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE outbox ADD COLUMN owner TEXT;"
    "ALTER TABLE outbox ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;",
    /* 8: analytics events, a turn's in its transcript row (no row and no
     * index more per turn); names lists them between spaces, so a reader
     * can skip a row, and list holds those with props. `events` is the view
     * of the rows that have them (read by bot and time: migration 9's
     * transcript_by_time) */
    "ALTER TABLE transcript_rows ADD COLUMN conv INTEGER;"
    "ALTER TABLE transcript_rows ADD COLUMN locale TEXT;"
    "ALTER TABLE transcript_rows ADD COLUMN step TEXT;"
    "ALTER TABLE transcript_rows ADD COLUMN names TEXT;"
    "ALTER TABLE transcript_rows ADD COLUMN list TEXT;"
    "CREATE VIEW events AS"
    "  SELECT id, bot, channel, user, conv, at, locale, step, names, list FROM transcript_rows"
    "  WHERE names IS NOT NULL;",
    /* 9: privacy. The database's own settings (the key of erased shoppers'
     * pseudonyms, made once); what retention purges, found by bot and time;
     * a shopper's jobs found without reading them all (export, erasure) */
    "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX transcript_by_time ON transcript_rows (bot, at);"
    "CREATE INDEX inbox_by_time ON inbox (bot, received_at);"
    "CREATE INDEX outbox_by_time ON outbox (bot, created_at);"
    "CREATE INDEX jobs_by_shopper ON jobs (bot, channel, user);",
    /* 10: the analytics of days whose events retention let go of: a day's
     * figures per channel and locale, with no shopper in them */
    "CREATE TABLE analytics_days ("
    "  bot TEXT NOT NULL, day TEXT NOT NULL, channel TEXT NOT NULL, locale TEXT NOT NULL,"
    "  figures TEXT NOT NULL, PRIMARY KEY (bot, day, channel, locale)) WITHOUT ROWID;",
    /* 11: the agent console's closed conversations (a closed handoff keeps
     * its row) and visitor numbers */
    "ALTER TABLE handoffs ADD COLUMN visitor INTEGER;"
    "ALTER TABLE handoffs ADD COLUMN closed_at INTEGER;"
    "ALTER TABLE handoffs ADD COLUMN closed_how TEXT;"
    "CREATE INDEX handoffs_by_visitor ON handoffs (visitor);"
    "CREATE INDEX handoffs_closed ON handoffs (closed_at) WHERE state = 'closed';",
    /* 12: visitor numbers from a counter that never goes back (settings:
     * handoff_visitors; max + 1 gave an erased shopper's number again), and
     * the page an open handoff's shopper is on, kept on its row (the queue
     * reads no transcript) */
    "ALTER TABLE handoffs ADD COLUMN page TEXT;"
    "INSERT INTO settings (name, value) SELECT 'handoff_visitors', coalesce(max(visitor), 0) FROM handoffs;"
    "UPDATE handoffs SET page = (" LATEST_PAGE("handoffs.bot", "handoffs.channel", "handoffs.user") ") "
    "WHERE state <> 'closed';",
};

/* Statements of run_sql, prepared once per distinct SQL text and kept:
 * preparing (parsing and planning) costs more than most of the statements
 * parley runs. run_sql's callers pass string literals, so the text's
 * address finds its statement; the text itself is compared too, so that
 * a caller passing a string that later dies costs a preparation, never a
 * wrong statement. More distinct texts than slots evict round-robin. */
#define SQL_CACHE 48

typedef struct {
    const char *sql; /* borrowed: the caller's text, compared by address first */
    sqlite3_stmt *st;
} cached_sql;

typedef struct sqlite_store {
    pl_store base; /* first: the interface's handle (store_backend.h) */
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    cached_sql cache[SQL_CACHE];
    int cached, evict_next;
    pl_store_sync sync;
    int deferred; /* pl_store_defer_sync */
    _Atomic uint64_t commits;
    _Atomic uint64_t wal_frames;
} sqlite_store;

static int db_fail(sqlite_store *store, char **err, const char *what) {
    return pl_fail(err, "store: %s: %s", what, sqlite3_errmsg(store->db));
}

static int exec_sql(sqlite_store *store, const char *sql, char **err) {
    char *msg = NULL;
    if (sqlite3_exec(store->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        pl_fail(err, "store: %s", msg ? msg : sqlite3_errmsg(store->db));
        sqlite3_free(msg);
        return PL_ERR;
    }
    return PL_OK;
}

static int schema_version(sqlite_store *store) {
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(store->db, "SELECT max(version) FROM schema_migrations", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return version;
}

static int migrate(sqlite_store *store, char **err) {
    if (exec_sql(store,
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 "  version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                 err) != PL_OK)
        return PL_ERR;
    int have = schema_version(store);
    int want = (int)(sizeof migrations / sizeof migrations[0]);
    /* a newer parley migrated this database: what it added, this one would
     * neither keep up to date nor understand (docs/deployment.md#upgrading) */
    if (have > want)
        return pl_fail(err, "store: %s: the database's schema is at version %d, newer than this parley's %d: "
                            "run the newer parley, or a database of this one's (a backup from before the upgrade)",
                       sqlite3_db_filename(store->db, "main"), have, want);
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

/* Before SQLite's first use: no global memory statistics, whose mutex
 * every allocation of every connection would take (the loop writes while
 * turn threads read). */
static void configure_sqlite(void) { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }
static once_flag configured = ONCE_FLAG_INIT;

static const pl_store_backend sqlite_backend;
static void sqlite_close(pl_store *handle);

static int run_sql(sqlite_store *store, sqlite3_stmt **out_st, const char *sql, const char *types, ...);
static int append_rows(sqlite_store *store, json_t *into, const char *const *keys, int nkeys, char **err,
                       const char *sql, const char *types, ...);

static int sqlite_pseudonym_key(pl_store *handle, unsigned char key[PL_STORE_KEY_BYTES], char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    int rc = run_sql(store, &st, "SELECT value FROM settings WHERE name = 'pseudonym_key'", "");
    if (rc < 0) return db_fail(store, err, "read the pseudonyms' key");
    int ok = rc == SQLITE_ROW && pl_pseudonym_key_from_hex((const char *)sqlite3_column_text(st, 0), key) == PL_OK;
    if (st) sqlite3_reset(st);
    return ok ? PL_OK : pl_fail(err, "store: the database has no key for pseudonyms (settings: pseudonym_key)");
}

/* The pseudonyms' key: made the first time a database is opened to write
 * (the first of several processes to do so wins), and read. */
static int ensure_pseudonym_key(sqlite_store *store, char **err) {
    char hex[2 * PL_STORE_KEY_BYTES + 1];
    pl_pseudonym_new_key_hex(hex);
    if (run_sql(store, NULL, "INSERT INTO settings (name, value) VALUES ('pseudonym_key', ?1) ON CONFLICT DO NOTHING",
                "s", hex) != SQLITE_DONE)
        return db_fail(store, err, "make the pseudonyms' key");
    if (sqlite_pseudonym_key(&store->base, store->base.pseudonym_key, err) != PL_OK) return PL_ERR;
    store->base.has_pseudonym_key = 1;
    return PL_OK;
}

int pl_store_sqlite_open(const char *path, pl_store_sync sync, pl_store **out, char **err) {
    call_once(&configured, configure_sqlite);
    sqlite_store *store = calloc(1, sizeof *store);
    if (!store) abort();
    store->base.backend = &sqlite_backend;
    if (sqlite3_open_v2(path, &store->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        pl_fail(err, "store: cannot open %s: %s", path, sqlite3_errmsg(store->db));
        sqlite_close(&store->base);
        return PL_ERR;
    }
    store->sync = sync;
    sqlite3_busy_timeout(store->db, 5000); /* opening may wait for another process */
    const char *pragmas = sync == PL_SYNC_FULL
                              ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                              : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
    if (exec_sql(store, pragmas, err) != PL_OK || migrate(store, err) != PL_OK) {
        sqlite_close(&store->base);
        return PL_ERR;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(store->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &store->stmt[i], NULL) != SQLITE_OK) {
            db_fail(store, err, "prepare");
            sqlite_close(&store->base);
            return PL_ERR;
        }
    }
    if (ensure_pseudonym_key(store, err) != PL_OK) {
        sqlite_close(&store->base);
        return PL_ERR;
    }
    /* Serving: a lock held elsewhere (a backup, an admin's sqlite3 shell)
     * must not stop the loop for seconds; a commit that cannot get the
     * lock soon fails, and the pipeline retries or answers 503. */
    sqlite3_busy_timeout(store->db, PL_STORE_BUSY_MS);
    *out = &store->base;
    return PL_OK;
}

/* The WAL hook replaces SQLite's automatic checkpoint: it only counts. */
static int on_wal_commit(void *ud, sqlite3 *db, const char *name, int frames) {
    (void)db;
    (void)name;
    sqlite_store *store = ud;
    atomic_store(&store->wal_frames, (uint64_t)frames);
    atomic_fetch_add(&store->commits, 1);
    return SQLITE_OK;
}

static const char *sqlite_defer_sync(pl_store *handle) {
    sqlite_store *store = (sqlite_store *)handle;
    const char *path = sqlite3_db_filename(store->db, "main");
    if (!path || !*path) return NULL;
    /* NORMAL, in WAL mode: no commit is synced here, but the WAL's header
     * is, once, when the WAL is reused from its start after a checkpoint
     * (about once per PL_SYNCER_CHECKPOINT_BYTES of commits): old frames left
     * behind it must not replay over newer pages after a power loss */
    if (exec_sql(store, "PRAGMA synchronous=NORMAL", NULL) != PL_OK) return NULL;
    sqlite3_wal_hook(store->db, on_wal_commit, store);
    store->deferred = 1;
    return path;
}

static uint64_t sqlite_commits(const pl_store *handle) {
    return atomic_load(&((sqlite_store *)handle)->commits);
}

static uint64_t sqlite_wal_frames(const pl_store *handle) {
    return atomic_load(&((sqlite_store *)handle)->wal_frames);
}

static const char *sqlite_path(const pl_store *handle) {
    const sqlite_store *store = (const sqlite_store *)handle;
    const char *path = sqlite3_db_filename(store->db, "main");
    return path && *path ? path : NULL;
}

int pl_store_sqlite_open_reader(const char *path, pl_store **out, char **err) {
    sqlite_store *store = calloc(1, sizeof *store);
    if (!store) abort();
    store->base.backend = &sqlite_backend;
    if (sqlite3_open_v2(path, &store->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        pl_fail(err, "store: cannot open %s to read: %s", path, sqlite3_errmsg(store->db));
        sqlite_close(&store->base);
        return PL_ERR;
    }
    sqlite3_busy_timeout(store->db, PL_STORE_BUSY_MS);
    if (sqlite3_prepare_v3(store->db, statement_sql[ST_SESSION_GET], -1, SQLITE_PREPARE_PERSISTENT,
                           &store->stmt[ST_SESSION_GET], NULL) != SQLITE_OK) {
        if (strstr(sqlite3_errmsg(store->db), "no such table"))
            pl_fail(err, "store: %s: not a parley database (it has no sessions table)", path);
        else db_fail(store, err, "prepare");
        sqlite_close(&store->base);
        return PL_ERR;
    }
    *out = &store->base;
    return PL_OK;
}

static void sqlite_close(pl_store *handle) {
    sqlite_store *store = (sqlite_store *)handle;
    if (!store) return;
    /* the last connection's checkpoint on close syncs as it should */
    if (store->deferred)
        exec_sql(store, store->sync == PL_SYNC_FULL ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL);
    for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(store->stmt[i]);
    for (int i = 0; i < store->cached; i++) sqlite3_finalize(store->cache[i].st);
    sqlite3_close(store->db);
    free(store);
}

static int run_sql(sqlite_store *store, sqlite3_stmt **out_st, const char *sql, const char *types, ...);

/* One transaction per batch: its three statements are run_sql's, prepared
 * once like the rest. */
static int run_control(sqlite_store *store, const char *sql, char **err) {
    if (run_sql(store, NULL, sql, "") == SQLITE_DONE) return PL_OK;
    return pl_fail(err, "store: %s", sqlite3_errmsg(store->db));
}

static int sqlite_begin(pl_store *handle, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    return run_control(store, "BEGIN", err);
}

static int sqlite_commit(pl_store *handle, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    return run_control(store, "COMMIT", err);
}

static void sqlite_rollback(pl_store *handle) {
    sqlite_store *store = (sqlite_store *)handle;
    if (!sqlite3_get_autocommit(store->db)) run_control(store, "ROLLBACK", NULL);
}

/* A batch is a transaction whose commit returns its outcome at once. */
static int sqlite_begin_batch(pl_store *handle, char **err) { return sqlite_begin(handle, err); }

static int sqlite_commit_batch(pl_store *handle, int *later, char **err) {
    *later = 0;
    return sqlite_commit(handle, err);
}

static int sqlite_batch_fd(const pl_store *handle) {
    (void)handle;
    return -1;
}

static int sqlite_batch_poll(pl_store *handle, int wait, int *committed, char **err) {
    (void)handle;
    (void)wait;
    (void)committed;
    (void)err;
    return 0;
}

/* Resets st and binds the session key to ?1..?3. */
static sqlite3_stmt *bind_key(sqlite_store *store, int which, const pl_session_key *key) {
    sqlite3_stmt *st = store->stmt[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_text(st, 1, key->bot, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key->channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, key->user, -1, SQLITE_STATIC);
    return st;
}

/* Steps a statement that returns no rows. */
static int step_done(sqlite_store *store, sqlite3_stmt *st, char **err, const char *what) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? PL_OK : db_fail(store, err, what);
}

static int sqlite_session_get(pl_store *handle, const pl_session_key *key, char **state_json,
                         char **err) {
    sqlite_store *store = (sqlite_store *)handle;
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

static int sqlite_session_put(pl_store *handle, const pl_session_key *key, const char *state_json, int64_t turn,
                              int64_t now_ms, char **err) {
    (void)turn; /* one node: nothing else commits its sessions' turns */
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = bind_key(store, ST_SESSION_PUT, key);
    sqlite3_bind_text(st, 4, state_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms);
    return step_done(store, st, err, "save session");
}

/* One node: its pipeline alone runs the sessions' turns. */
static void sqlite_session_take(pl_store *handle, const pl_session_key *key, int64_t inbox_id,
                                pl_store_taken_fn done, void *ud) {
    (void)handle;
    (void)key;
    (void)inbox_id;
    done(PL_OK, 1, -1, 0, NULL, NULL, ud);
}

static int sqlite_use_loop(pl_store *handle, struct event_base *base, char **err) {
    (void)handle;
    (void)base;
    (void)err;
    return PL_OK;
}

static uint64_t sqlite_session_epoch(const pl_store *handle) {
    (void)handle;
    return 0;
}

static void sqlite_session_release(pl_store *handle, const pl_session_key *key) {
    (void)handle;
    (void)key;
}

static int sqlite_session_erase(pl_store *handle, const pl_session_key *key, int64_t *found, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    char pseudonym[PL_STORE_PSEUDONYM_LEN + 1];
    if (pl_pseudonym_of(handle, key, pseudonym, err) != PL_OK) return PL_ERR;
    if (step_done(store, bind_key(store, ST_SESSION_DEL, key), err, "erase session") != PL_OK)
        return PL_ERR;
    *found = sqlite3_changes(store->db) > 0;
    if (step_done(store, bind_key(store, ST_TRANSCRIPT_DEL, key), err, "erase transcript") !=
        PL_OK)
        return PL_ERR;
    *found = *found || sqlite3_changes(store->db) > 0;
    /* everything else that holds what the shopper said or will be told:
     * inbound messages, calls to them, jobs, the handoff, analytics events;
     * then what the merchant's accounts keep, under the pseudonym: the
     * discount codes' uses of their orders (so a once-per-shopper code
     * stays used), and the orders themselves, without the token and the
     * payment link that were the shopper's (uses first: they find the
     * orders by the user; a use the pseudonym has of the same code already
     * is replaced, never left under the user) */
    static const char *const more[] = {
        "DELETE FROM inbox WHERE bot = ?1 AND channel = ?2 AND user = ?3",
        "DELETE FROM outbox WHERE bot = ?1 AND channel = ?2 AND user = ?3",
        "DELETE FROM jobs WHERE bot = ?1 AND channel = ?2 AND user = ?3",
        "DELETE FROM handoffs WHERE bot = ?1 AND channel = ?2 AND user = ?3",
        "UPDATE OR REPLACE discount_uses SET user = ?4 WHERE bot = ?1 AND user = ?3 AND order_id IN "
        "(SELECT id FROM orders WHERE bot = ?1 AND channel = ?2 AND user = ?3)",
        "UPDATE orders SET user = ?4, token = '', payment_url = NULL WHERE bot = ?1 AND channel = ?2 AND user = ?3",
    };
    for (size_t i = 0; i < sizeof more / sizeof *more; i++) {
        if (run_sql(store, NULL, more[i], "ssss", key->bot, key->channel, key->user, pseudonym) != SQLITE_DONE)
            return db_fail(store, err, "erase session data");
        *found = *found || sqlite3_changes(store->db) > 0;
    }
    return PL_OK;
}

static int64_t sqlite_session_count(pl_store *handle) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(store->db, "SELECT count(*) FROM sessions", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A shopper's message that names its page (the web chat's info.page_url):
 * the page goes on the shopper's open handoff, if any. */
static int keep_page(sqlite_store *store, const pl_session_key *key, const char *in_json, char **err) {
    if (!in_json || !strstr(in_json, "\"page_url\"")) return PL_OK;
    int rc = run_sql(store, NULL,
                     "UPDATE handoffs SET page = json_object('url', json_extract(?4, '$.info.page_url'), "
                     "'title', json_extract(?4, '$.info.page_title')) WHERE bot = ?1 AND channel = ?2 AND user = ?3 "
                     "AND state <> 'closed' AND json_extract(?4, '$.info.page_url') IS NOT NULL",
                     "ssss", key->bot, key->channel, key->user, in_json);
    return rc == SQLITE_DONE ? PL_OK : db_fail(store, err, "keep the shopper's page");
}

static int sqlite_transcript_add(pl_store *handle, const pl_session_key *key, const char *direction,
                            const char *body_json, int64_t now_ms, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = bind_key(store, ST_TRANSCRIPT_ADD, key);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_text(st, 5, direction, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, body_json, -1, SQLITE_STATIC);
    if (step_done(store, st, err, "add transcript line") != PL_OK) return PL_ERR;
    return strcmp(direction, "in") == 0 ? keep_page(store, key, body_json, err) : PL_OK;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v) {
    if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, i);
}

static int sqlite_transcript_add_turn(pl_store *handle, const pl_session_key *key, const char *in_json,
                                      int64_t in_at_ms, const char *out_json, int64_t out_at_ms,
                                      const pl_store_events *events, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = bind_key(store, ST_TRANSCRIPT_ADD_TURN, key);
    sqlite3_bind_int64(st, 4, in_at_ms);
    sqlite3_bind_text(st, 5, in_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, out_at_ms);
    sqlite3_bind_text(st, 7, out_json, -1, SQLITE_STATIC);
    const pl_store_events none = {0};
    const pl_store_events *e = events && events->names ? events : &none;
    if (e->names) sqlite3_bind_int64(st, 8, e->conv);
    else sqlite3_bind_null(st, 8);
    bind_text_or_null(st, 9, e->locale);
    bind_text_or_null(st, 10, e->step);
    bind_text_or_null(st, 11, e->names);
    bind_text_or_null(st, 12, e->list);
    if (step_done(store, st, err, "add transcript lines") != PL_OK) return PL_ERR;
    return keep_page(store, key, in_json, err);
}

static const char *column_text(sqlite3_stmt *st, int i) {
    const char *v = (const char *)sqlite3_column_text(st, i);
    return v ? v : "";
}

static int sqlite_events_read(pl_store *handle, const pl_store_events_query *q, json_t **rows, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    json_t *out = json_array();
    int rc = q->user && q->channel
                 ? run_sql(store, &st,
                           "SELECT id, at, channel, user, conv, locale, step, names, list FROM events"
                           " WHERE bot = ?1 AND channel = ?6 AND user = ?9 AND at >= ?2 AND at < ?3"
                           " AND (at > ?4 OR (at = ?4 AND id > ?5)) AND (?7 IS NULL OR coalesce(locale, '') = ?7)"
                           " ORDER BY at, id LIMIT ?8",
                           "siiiisnis", q->bot, q->from_ms, q->to_ms, q->after_at, q->after_id, q->channel,
                           q->locale, (int64_t)q->limit, q->user)
                 : run_sql(store, &st,
                           "SELECT id, at, channel, user, conv, locale, step, names, list FROM events"
                           " WHERE bot = ?1 AND at >= ?2 AND at < ?3 AND (at > ?4 OR (at = ?4 AND id > ?5))"
                           " AND (?6 IS NULL OR channel = ?6) AND (?7 IS NULL OR coalesce(locale, '') = ?7)"
                           " ORDER BY at, id LIMIT ?8",
                           "siiiinni", q->bot, q->from_ms, q->to_ms, q->after_at, q->after_id, q->channel,
                           q->locale, (int64_t)q->limit);
    while (rc == SQLITE_ROW) {
        json_t *row = json_pack("{s:I, s:I, s:s, s:s, s:I, s:o, s:o, s:s, s:s}", "id",
                                (json_int_t)sqlite3_column_int64(st, 0), "at", (json_int_t)sqlite3_column_int64(st, 1),
                                "channel", column_text(st, 2), "user", column_text(st, 3), "conv",
                                (json_int_t)sqlite3_column_int64(st, 4), "locale",
                                sqlite3_column_type(st, 5) == SQLITE_NULL ? json_null() : json_string(column_text(st, 5)),
                                "step",
                                sqlite3_column_type(st, 6) == SQLITE_NULL ? json_null() : json_string(column_text(st, 6)),
                                "names", column_text(st, 7), "list", column_text(st, 8));
        if (row) json_array_append_new(out, row);
        rc = sqlite3_step(st);
    }
    if (st) sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(out);
        return db_fail(store, err, "read events");
    }
    *rows = out;
    return PL_OK;
}

static int sqlite_events_purge(pl_store *handle, const char *bot, int64_t from_ms, int64_t before_ms,
                               int64_t *removed, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    if (run_sql(store, NULL,
                "UPDATE transcript_rows SET conv = NULL, locale = NULL, step = NULL, names = NULL, list = NULL"
                " WHERE (?1 IS NULL OR bot = ?1) AND at >= ?2 AND at < ?3 AND names IS NOT NULL",
                "nii", bot, from_ms, before_ms) != SQLITE_DONE)
        return db_fail(store, err, "purge events");
    *removed = sqlite3_changes(store->db);
    return PL_OK;
}

static int sqlite_analytics_day_put(pl_store *handle, const char *bot, const char *day, const char *channel,
                                    const char *locale, const char *figures_json, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    if (run_sql(store, NULL,
                "INSERT INTO analytics_days (bot, day, channel, locale, figures) VALUES (?1, ?2, ?3, ?4, ?5)"
                " ON CONFLICT (bot, day, channel, locale) DO UPDATE SET figures = excluded.figures",
                "sssss", bot, day, channel, locale ? locale : "", figures_json) != SQLITE_DONE)
        return db_fail(store, err, "keep a day's analytics");
    return PL_OK;
}

static int sqlite_analytics_days_read(pl_store *handle, const char *bot, const char *from, const char *to,
                                      const char *channel, const char *locale, json_t **rows, char **err) {
    static const char *const keys[] = {"day", "channel", "locale", "@figures"};
    json_t *out = json_array();
    if (append_rows((sqlite_store *)handle, out, keys, 4, err,
                    "SELECT day, channel, locale, figures FROM analytics_days WHERE bot = ?1 AND day >= ?2"
                    " AND day <= ?3 AND (?4 IS NULL OR channel = ?4) AND (?5 IS NULL OR locale = ?5)"
                    " ORDER BY day, channel, locale",
                    "sssnn", bot, from, to, channel, locale) != PL_OK) {
        json_decref(out);
        return PL_ERR;
    }
    *rows = out;
    return PL_OK;
}

static int sqlite_transcript_get(pl_store *handle, const pl_session_key *key, int limit,
                            json_t **lines, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
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

static int sqlite_catalog_replace(pl_store *handle, const char *bot, const json_t *products,
                             char **err) {
    sqlite_store *store = (sqlite_store *)handle;
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

static int64_t sqlite_catalog_count(pl_store *handle, const char *bot) {
    sqlite_store *store = (sqlite_store *)handle;
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

static int sqlite_inbox_add(pl_store *handle, const char *bot, const char *channel,
                       const char *platform_id, const char *user, const char *message_json,
                       int64_t now_ms, int64_t *id, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
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

static int sqlite_inbox_next_seq(pl_store *handle, const char *bot, const char *channel, const char *prefix,
                            int64_t *seq, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    size_t n = strlen(prefix);
    /* the ids after the prefix sort below the prefix with its last byte raised */
    char *above = pl_strdup(prefix);
    if (n) above[n - 1]++;
    int rc = run_sql(store, &st,
                     "SELECT max(platform_id) FROM inbox WHERE bot = ?1 AND channel = ?2 "
                     "AND platform_id > ?3 AND platform_id < ?4",
                     "ssss", bot, channel, prefix, above);
    free(above);
    if (rc < 0) return db_fail(store, err, "read event sequence");
    const char *last = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    *seq = (last ? strtoll(last + n, NULL, 10) : 0) + 1;
    sqlite3_reset(st);
    return PL_OK;
}

static int sqlite_inbox_done(pl_store *handle, int64_t id, int64_t now_ms, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = store->stmt[ST_INBOX_DONE];
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    return step_done(store, st, err, "mark inbound message handled");
}

/* Runs a query and collects each row as an object with the given keys
 * (columns in order; a key starting with '#' is an integer column, '@' a
 * JSON column). */
static int collect_rows(sqlite_store *store, const char *sql, const char *const *keys, int nkeys,
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

static int sqlite_inbox_pending(pl_store *handle, int64_t received_before, json_t **rows, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    static const char *const keys[] = {"#id", "bot", "channel", "user", "@message"};
    char *sql = pl_strdupf("SELECT id, bot, channel, user, message FROM inbox "
                           "WHERE done_at IS NULL AND received_at < %lld ORDER BY id",
                           (long long)received_before);
    int rc = collect_rows(store, sql, keys, 5, rows, err);
    free(sql);
    return rc;
}

static int sqlite_inbox_prune(pl_store *handle, int64_t before_ms, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
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

static int sqlite_outbox_add(pl_store *handle, const char *bot, const char *channel, const char *user,
                        const char *call_json, int64_t now_ms, int64_t *id, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
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

static int sqlite_outbox_pending(pl_store *handle, json_t **rows, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    static const char *const keys[] = {"#id", "bot", "channel", "user", "@call", "#attempts", "#next_at"};
    return collect_rows(store,
                        "SELECT id, bot, channel, user, call, attempts, next_at FROM outbox "
                        "WHERE state = 'pending' ORDER BY id",
                        keys, 7, rows, err);
}

static int sqlite_outbox_update(pl_store *handle, int64_t id, const char *state, int attempts,
                           int64_t next_at_ms, const char *error, int64_t now_ms, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
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

/* One node: it holds every call. */
static void sqlite_set_owner(pl_store *handle, const char *owner, int64_t lease_ms) {
    (void)handle;
    (void)owner;
    (void)lease_ms;
}

static int sqlite_outbox_renew(pl_store *handle, int release, char **err) {
    (void)handle;
    (void)release;
    (void)err;
    return PL_OK;
}

/* One node: its own commits are all there is to hear of. */
static int sqlite_announce(pl_store *handle, const pl_session_key *key, int handoff, char **err) {
    (void)handle;
    (void)key;
    (void)handoff;
    (void)err;
    return PL_OK;
}

static int sqlite_listen(pl_store *handle, struct event_base *base, pl_store_heard_fn heard, void *ud, char **err) {
    (void)handle;
    (void)base;
    (void)heard;
    (void)ud;
    (void)err;
    return PL_OK;
}

static uint64_t sqlite_round_trips(const pl_store *handle) {
    (void)handle;
    return 0; /* in the process: no network */
}

/* One node: its own queue keeps a shopper's calls in order. */
static int sqlite_outbox_earlier(pl_store *handle, const char *bot, const char *channel, const char *user,
                                 int64_t id, int *waiting, char **err) {
    (void)handle;
    (void)bot;
    (void)channel;
    (void)user;
    (void)id;
    (void)err;
    *waiting = 0;
    return PL_OK;
}

static int sqlite_outbox_count(pl_store *handle, const char *bot, const char *state, int64_t *n,
                          char **err) {
    sqlite_store *store = (sqlite_store *)handle;
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

static int sqlite_payload_put(pl_store *handle, const char *bot, const char *key, const char *payload,
                         char **err) {
    sqlite_store *store = (sqlite_store *)handle;
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

static int sqlite_payload_get(pl_store *handle, const char *bot, const char *key, char **payload,
                         char **err) {
    sqlite_store *store = (sqlite_store *)handle;
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

/* --- helpers for one-off statements ------------------------------------------ */

/* The kept statement for sql, prepared now if it is not kept yet, or NULL
 * when it cannot be prepared. */
static sqlite3_stmt *cached_statement(sqlite_store *store, const char *sql) {
    cached_sql *slot = NULL;
    for (int i = 0; i < store->cached; i++) {
        if (store->cache[i].sql != sql) continue;
        if (strcmp(sqlite3_sql(store->cache[i].st), sql) == 0) return store->cache[i].st;
        slot = &store->cache[i]; /* the same address, another text */
        break;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    if (!slot && store->cached < SQL_CACHE) slot = &store->cache[store->cached++];
    if (!slot) {
        slot = &store->cache[store->evict_next];
        store->evict_next = (store->evict_next + 1) % SQL_CACHE;
    }
    if (slot->st) sqlite3_finalize(slot->st);
    *slot = (cached_sql){.sql = sql, .st = st};
    return st;
}

/* Runs sql (a kept statement, see SQL_CACHE), binding each argument by type
 * letter ('s' text, 'i' int64, 'n' text or NULL), one step. Returns the
 * SQLite result (SQLITE_ROW, SQLITE_DONE), or -1 on error. When a row is
 * wanted, *out_st is the statement on that row, borrowed: the caller reads
 * the row and calls sqlite3_reset(*out_st) before running anything else
 * (a statement not reset keeps its read transaction open). */
/* Binds each argument by type letter ('s' text, 'i' int64, 'n' text or
 * NULL) to ?1, ?2 ... */
static void bind_args(sqlite3_stmt *st, const char *types, va_list ap) {
    for (int i = 0; types[i]; i++) {
        if (types[i] == 'i') sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        else {
            const char *v = va_arg(ap, const char *);
            if (v) sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT);
            else sqlite3_bind_null(st, i + 1);
        }
    }
}

static int run_sql(sqlite_store *store, sqlite3_stmt **out_st, const char *sql, const char *types, ...) {
    sqlite3_stmt *st = cached_statement(store, sql);
    if (!st) return -1;
    va_list ap;
    va_start(ap, types);
    bind_args(st, types, ap);
    va_end(ap);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlite3_reset(st);
        return -1;
    }
    if (out_st && rc == SQLITE_ROW) *out_st = st;
    else sqlite3_reset(st);
    return rc;
}

/* The row st is on as an object with the given keys (columns in order; a
 * key starting with '#' is an integer column, '@' a JSON column; NULL is
 * null). */
static json_t *object_of_row(sqlite3_stmt *st, const char *const *keys, int nkeys) {
    json_t *o = json_object();
    for (int i = 0; i < nkeys; i++) {
        const char *key = keys[i];
        int kind = key[0] == '#' || key[0] == '@' ? *key++ : 0;
        json_t *v;
        if (sqlite3_column_type(st, i) == SQLITE_NULL) v = json_null();
        else if (kind == '#') v = json_integer(sqlite3_column_int64(st, i));
        else if (kind == '@') v = json_loads((const char *)sqlite3_column_text(st, i), 0, NULL);
        else v = json_string((const char *)sqlite3_column_text(st, i));
        json_object_set_new(o, key, v ? v : json_null());
    }
    return o;
}

/* Runs sql (kept) with run_sql's arguments and appends every row to into
 * (object_of_row). */
static int append_rows(sqlite_store *store, json_t *into, const char *const *keys, int nkeys, char **err,
                       const char *sql, const char *types, ...) {
    sqlite3_stmt *st = cached_statement(store, sql);
    if (!st) return db_fail(store, err, "query");
    va_list ap;
    va_start(ap, types);
    bind_args(st, types, ap);
    va_end(ap);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(into, object_of_row(st, keys, nkeys));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? PL_OK : db_fail(store, err, "query");
}

/* --- orders ---------------------------------------------------------------------- */

#define ORDER_COLUMNS                                                                        \
    "id, bot, channel, user, state, fulfilment, tracking_url, currency, subtotal, discount, " \
    "total, discount_code, lines, provider, provider_ref, payment_ref, payment_url, token, " \
    "created_at, updated_at, paid_at"

static const char *const order_keys[] = {"#id", "bot", "channel", "user", "state", "fulfilment",
                                         "tracking_url", "currency", "#subtotal", "#discount",
                                         "#total", "discount_code", "@lines", "provider",
                                         "provider_ref", "payment_ref", "payment_url", "token",
                                         "#created_at", "#updated_at", "#paid_at"};
#define ORDER_KEYS ((int)(sizeof order_keys / sizeof *order_keys))

static json_t *order_of_row(sqlite3_stmt *st) { return object_of_row(st, order_keys, ORDER_KEYS); }

static int sqlite_order_create(pl_store *handle, const json_t *o, int64_t now_ms, int64_t *id, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    char *lines = json_dumps(json_object_get(o, "lines"), JSON_COMPACT);
#define S(k) json_string_value(json_object_get(o, k))
#define I(k) (int64_t)json_integer_value(json_object_get(o, k))
    int rc = run_sql(store, NULL,
                     "INSERT INTO orders (bot, channel, user, state, currency, subtotal, discount, "
                     "total, discount_code, lines, provider, token, created_at, updated_at) "
                     "VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                     "ssssiiinsssi", S("bot"), S("channel"), S("user"), S("currency"), I("subtotal"),
                     I("discount"), I("total"), S("discount_code"), lines, S("provider"), S("token"),
                     now_ms);
#undef S
#undef I
    free(lines);
    if (rc != SQLITE_DONE) return db_fail(store, err, "create order");
    *id = sqlite3_last_insert_rowid(store->db);
    return PL_OK;
}

static int sqlite_order_get(pl_store *handle, const char *bot, int64_t id, json_t **order, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    *order = NULL;
    int rc = run_sql(store, &st, "SELECT " ORDER_COLUMNS " FROM orders WHERE id = ?1 AND bot = ?2",
                     "is", id, bot);
    if (rc < 0) return db_fail(store, err, "read order");
    if (rc == SQLITE_ROW) {
        *order = order_of_row(st);
        sqlite3_reset(st);
    }
    return PL_OK;
}

static int sqlite_orders_of(pl_store *handle, const char *bot, const char *channel, const char *user,
                       int limit, json_t **orders, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT " ORDER_COLUMNS " FROM orders WHERE bot = ?1 AND user = ?2 "
                           "AND (?3 IS NULL OR channel = ?3) ORDER BY id DESC LIMIT ?4",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(store, err, "list orders");
    sqlite3_bind_text(st, 1, bot, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
    if (channel) sqlite3_bind_text(st, 3, channel, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, limit);
    json_t *list = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(list, order_of_row(st));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(list);
        return db_fail(store, err, "list orders");
    }
    *orders = list;
    return PL_OK;
}

static int sqlite_order_set_link(pl_store *handle, int64_t id, const char *provider_ref,
                            const char *payment_url, int64_t now_ms, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    int rc = run_sql(store, NULL,
                     "UPDATE orders SET provider_ref = ?2, payment_url = ?3, updated_at = ?4 WHERE id = ?1",
                     "inni", id, provider_ref, payment_url, now_ms);
    return rc == SQLITE_DONE ? PL_OK : db_fail(store, err, "store payment link");
}

static int sqlite_order_transition(pl_store *handle, int64_t id, const char *from, const char *to,
                              const char *payment_ref, int64_t now_ms, int *changed, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    int rc = run_sql(store, NULL,
                     "UPDATE orders SET state = ?3, payment_ref = coalesce(?4, payment_ref), "
                     "updated_at = ?5, paid_at = CASE WHEN ?3 = 'paid' THEN ?5 ELSE paid_at END "
                     "WHERE id = ?1 AND instr(',' || ?2 || ',', ',' || state || ',') > 0",
                     "issni", id, from, to, payment_ref, now_ms);
    if (rc != SQLITE_DONE) return db_fail(store, err, "update order");
    *changed = sqlite3_changes(store->db) > 0;
    return PL_OK;
}

static int sqlite_order_fulfilment(pl_store *handle, int64_t id, const char *status,
                              const char *tracking_url, int64_t now_ms, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    int rc = run_sql(store, NULL,
                     "UPDATE orders SET fulfilment = ?2, tracking_url = coalesce(?3, tracking_url), "
                     "updated_at = ?4 WHERE id = ?1",
                     "isni", id, status, tracking_url, now_ms);
    return rc == SQLITE_DONE ? PL_OK : db_fail(store, err, "update order status");
}

static int sqlite_order_by_ref(pl_store *handle, const char *bot, const char *ref, int64_t *id, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    *id = 0;
    int rc = run_sql(store, &st,
                     "SELECT id FROM orders WHERE bot = ?1 AND (provider_ref = ?2 OR payment_ref = ?2)",
                     "ss", bot, ref);
    if (rc < 0) return db_fail(store, err, "find order");
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    return PL_OK;
}

/* --- discounts --------------------------------------------------------------------- */

static int sqlite_discount_used(pl_store *handle, const char *bot, const char *code, const char *user,
                           int *used, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    int rc = run_sql(store, &st, "SELECT 1 FROM discount_uses WHERE bot = ?1 AND code = ?2 AND user = ?3",
                     "sss", bot, code, user);
    if (rc < 0) return db_fail(store, err, "check discount");
    *used = rc == SQLITE_ROW;
    if (st) sqlite3_reset(st);
    return PL_OK;
}

static int sqlite_discount_use(pl_store *handle, const char *bot, const char *code, const char *user,
                          int64_t order_id, int64_t now_ms, int *fresh, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    int rc = run_sql(store, NULL,
                     "INSERT OR IGNORE INTO discount_uses (bot, code, user, order_id, used_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)",
                     "sssii", bot, code, user, order_id, now_ms);
    if (rc != SQLITE_DONE) return db_fail(store, err, "record discount");
    *fresh = sqlite3_changes(store->db) > 0;
    return PL_OK;
}

/* --- stock --------------------------------------------------------------------------- */

static int sqlite_stock_sync(pl_store *handle, const char *bot, const json_t *catalog_stock,
                        json_t **remaining, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    if (run_sql(store, NULL, "SAVEPOINT stock", "") != SQLITE_DONE) return db_fail(store, err, "sync stock");
    const char *key;
    json_t *v;
    int ok = 1;
    json_object_foreach((json_t *)catalog_stock, key, v) {
        int64_t n = (int64_t)json_integer_value(v);
        ok = ok && run_sql(store, NULL,
                           "INSERT INTO stock (bot, key, remaining, catalog_stock) VALUES (?1, ?2, ?3, ?3) "
                           "ON CONFLICT (bot, key) DO UPDATE SET remaining = excluded.remaining, "
                           "catalog_stock = excluded.catalog_stock "
                           "WHERE stock.catalog_stock <> excluded.catalog_stock",
                           "ssi", bot, key, n) == SQLITE_DONE;
    }
    /* what remains, and the keys the catalog no longer has */
    sqlite3_stmt *st = NULL;
    json_t *out = json_object(), *gone = json_array();
    if (ok && sqlite3_prepare_v2(store->db, "SELECT key, remaining FROM stock WHERE bot = ?1", -1, &st,
                                 NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, bot, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *k = (const char *)sqlite3_column_text(st, 0);
            if (json_object_get(catalog_stock, k))
                json_object_set_new(out, k, json_integer(sqlite3_column_int64(st, 1)));
            else
                json_array_append_new(gone, json_string(k));
        }
        sqlite3_finalize(st);
    }
    size_t i;
    json_t *k;
    json_array_foreach(gone, i, k) {
        ok = ok && run_sql(store, NULL, "DELETE FROM stock WHERE bot = ?1 AND key = ?2", "ss", bot,
                           json_string_value(k)) == SQLITE_DONE;
    }
    json_decref(gone);
    if (!ok) {
        run_sql(store, NULL, "ROLLBACK TO stock", "");
        run_sql(store, NULL, "RELEASE stock", "");
        json_decref(out);
        return db_fail(store, err, "sync stock");
    }
    run_sql(store, NULL, "RELEASE stock", "");
    *remaining = out;
    return PL_OK;
}

static int sqlite_stock_take(pl_store *handle, const char *bot, const char *key, int64_t qty,
                        int64_t *left, int *tracked, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    int rc = run_sql(store, &st,
                     "UPDATE stock SET remaining = remaining - ?3 WHERE bot = ?1 AND key = ?2 RETURNING remaining",
                     "ssi", bot, key, qty);
    if (rc < 0) return db_fail(store, err, "take stock");
    *tracked = rc == SQLITE_ROW;
    *left = *tracked ? sqlite3_column_int64(st, 0) : 0;
    if (st) {
        sqlite3_step(st);
        sqlite3_reset(st);
    }
    return PL_OK;
}

/* --- jobs ----------------------------------------------------------------------------- */

static int sqlite_job_put(pl_store *handle, const char *bot, const char *channel, const char *user,
                     const char *name, const char *data_json, int64_t fire_at_ms, int64_t now_ms,
                     char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    int rc = run_sql(store, NULL,
                     "INSERT INTO jobs (bot, channel, user, name, data, fire_at, created_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                     "ON CONFLICT (bot, channel, user, name) WHERE state = 'pending' "
                     "DO UPDATE SET data = excluded.data, fire_at = excluded.fire_at",
                     "sssssii", bot, channel, user, name, data_json, fire_at_ms, now_ms);
    return rc == SQLITE_DONE ? PL_OK : db_fail(store, err, "schedule job");
}

static int sqlite_job_cancel(pl_store *handle, const char *bot, const char *channel, const char *user,
                        const char *name, int *found, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    int rc = run_sql(store, NULL,
                     "UPDATE jobs SET state = 'cancelled' WHERE bot = ?1 AND channel = ?2 AND user = ?3 "
                     "AND name = ?4 AND state = 'pending'",
                     "ssss", bot, channel, user, name);
    if (rc != SQLITE_DONE) return db_fail(store, err, "cancel job");
    if (found) *found = sqlite3_changes(store->db) > 0;
    return PL_OK;
}

/* A file's size, 0 when it is not there (no WAL yet). */
static int64_t file_size(const char *path, const char *suffix) {
    char *name = pl_strdupf("%s%s", path, suffix);
    struct stat st;
    int64_t size = stat(name, &st) == 0 ? (int64_t)st.st_size : 0;
    free(name);
    return size;
}

static int sqlite_read_figures(pl_store *handle, pl_store_figures *out, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    if (run_sql(store, &st,
                "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM jobs WHERE state = 'pending'),"
                " (SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size())",
                "") != SQLITE_ROW)
        return db_fail(store, err, "count sessions and jobs");
    out->sessions = sqlite3_column_int64(st, 0);
    out->jobs_pending = sqlite3_column_int64(st, 1);
    out->bytes = sqlite3_column_int64(st, 2);
    sqlite3_reset(st);
    const char *path = sqlite_path(handle);
    if (path) out->bytes = file_size(path, "") + file_size(path, "-wal");
    return PL_OK;
}

static int sqlite_ping(pl_store *handle, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    /* a read of a table: SQLite runs "SELECT 1" without touching the file */
    int rc = run_sql(store, &st, "SELECT count(*) FROM schema_migrations", "");
    if (rc < 0) return db_fail(store, err, "ping");
    if (rc == SQLITE_ROW) sqlite3_reset(st);
    return PL_OK;
}

static int sqlite_schema_version(pl_store *handle, int *have, int *latest, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    *latest = (int)(sizeof migrations / sizeof migrations[0]);
    *have = 0;
    int rc = run_sql(store, &st, "SELECT coalesce(max(version), 0) FROM schema_migrations", "");
    if (rc < 0) {
        /* (an empty file, or another program's database) */
        if (strstr(sqlite3_errmsg(store->db), "no such table")) return PL_OK;
        return db_fail(store, err, "read the schema's version");
    }
    if (rc == SQLITE_ROW) {
        *have = sqlite3_column_int(st, 0);
        sqlite3_reset(st);
    }
    return PL_OK;
}

static int sqlite_job_next(pl_store *handle, int64_t *fire_at_ms, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    int rc = run_sql(store, &st, "SELECT min(fire_at) FROM jobs WHERE state = 'pending'", "");
    if (rc < 0) return db_fail(store, err, "next job");
    *fire_at_ms = -1;
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL) *fire_at_ms = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    return PL_OK;
}

static int sqlite_jobs_due(pl_store *handle, int64_t now_ms, int limit, json_t **jobs, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    char *sql = pl_strdupf("SELECT id, bot, channel, user, name, data, fire_at FROM jobs "
                           "WHERE state = 'pending' AND fire_at <= %lld ORDER BY fire_at, id LIMIT %d",
                           (long long)now_ms, limit);
    static const char *const keys[] = {"#id", "bot", "channel", "user", "name", "@data", "#fire_at"};
    int rc = collect_rows(store, sql, keys, 7, jobs, err);
    free(sql);
    return rc;
}

static int sqlite_job_fired(pl_store *handle, int64_t id, int64_t now_ms, int *changed, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    int rc = run_sql(store, NULL,
                     "UPDATE jobs SET state = 'fired', fired_at = ?2 WHERE id = ?1 AND state = 'pending'",
                     "ii", id, now_ms);
    if (rc != SQLITE_DONE) return db_fail(store, err, "fire job");
    *changed = sqlite3_changes(store->db) > 0;
    return PL_OK;
}

static int sqlite_jobs_of(pl_store *handle, const char *bot, const char *channel, const char *user,
                     json_t **jobs, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT name, fire_at, data FROM jobs WHERE bot = ?1 AND channel = ?2 "
                           "AND user = ?3 AND state = 'pending' ORDER BY fire_at",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(store, err, "list jobs");
    sqlite3_bind_text(st, 1, bot, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, user, -1, SQLITE_STATIC);
    json_t *list = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *data = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
        json_array_append_new(list, json_pack("{s:s, s:I, s:o}", "name", (const char *)sqlite3_column_text(st, 0), "fire_at",
                                              (json_int_t)sqlite3_column_int64(st, 1), "data",
                                              data ? data : json_null()));
    }
    sqlite3_finalize(st);
    *jobs = list;
    return PL_OK;
}

/* --- transcript by id ---------------------------------------------------------------- */

static int sqlite_transcript_since(pl_store *handle, const pl_session_key *key, int64_t after_id,
                              int limit, json_t **lines, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = cached_statement(store, "SELECT id, at, direction, body FROM transcript WHERE bot = ?1 "
                                                "AND channel = ?2 AND user = ?3 AND id > ?4 ORDER BY id LIMIT ?5");
    if (!st) return db_fail(store, err, "read transcript");
    sqlite3_bind_text(st, 1, key->bot, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key->channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, key->user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, after_id);
    sqlite3_bind_int(st, 5, limit);
    json_t *out = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *body = json_loads((const char *)sqlite3_column_text(st, 3), 0, NULL);
        json_array_append_new(out, json_pack("{s:I, s:I, s:s, s:o}", "id", (json_int_t)sqlite3_column_int64(st, 0),
                                             "at", (json_int_t)sqlite3_column_int64(st, 1), "direction",
                                             (const char *)sqlite3_column_text(st, 2), "body", body ? body : json_null()));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(out);
        return db_fail(store, err, "read transcript");
    }
    *lines = out;
    return PL_OK;
}

static int sqlite_conversations(pl_store *handle, const char *bot, const char *channel, const char *user,
                                int limit, json_t **list, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT channel, user, min(at), max(at), count(*) FROM transcript WHERE bot = ?1"
                           " AND (?2 IS NULL OR channel = ?2) AND (?3 IS NULL OR user = ?3)"
                           " GROUP BY channel, user ORDER BY min(id) LIMIT ?4",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(store, err, "list conversations");
    sqlite3_bind_text(st, 1, bot, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, user, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, limit);
    json_t *out = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(out, json_pack("{s:s, s:s, s:I, s:I, s:I}", "channel",
                                             (const char *)sqlite3_column_text(st, 0), "user",
                                             (const char *)sqlite3_column_text(st, 1), "first_at",
                                             (json_int_t)sqlite3_column_int64(st, 2), "last_at",
                                             (json_int_t)sqlite3_column_int64(st, 3), "lines",
                                             (json_int_t)sqlite3_column_int64(st, 4)));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(out);
        return db_fail(store, err, "list conversations");
    }
    *list = out;
    return PL_OK;
}

static int64_t sqlite_transcript_last_id(pl_store *handle, const pl_session_key *key) {
    sqlite_store *store = (sqlite_store *)handle;
    sqlite3_stmt *st = NULL;
    int rc = run_sql(store, &st, "SELECT max(id) FROM transcript WHERE bot = ?1 AND channel = ?2 AND user = ?3",
                     "sss", key->bot, key->channel, key->user);
    int64_t id = 0;
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    return id;
}

/* --- handoffs --------------------------------------------------------------------------- */

static const char *field(const json_t *o, const char *name) {
    return json_string_value(json_object_get(o, name));
}

/* A shopper's visitor number: the next of the counter (settings:
 * handoff_visitors, which never goes back) for one who has none yet. */
static int number_visitor(sqlite_store *store, const pl_session_key *key) {
    return run_sql(store, NULL,
                   "INSERT INTO settings (name, value) SELECT 'handoff_visitors', 1 WHERE NOT EXISTS (SELECT 1 "
                   "FROM handoffs WHERE bot = ?1 AND channel = ?2 AND user = ?3 AND visitor IS NOT NULL) "
                   "ON CONFLICT (name) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                   "sss", key->bot, key->channel, key->user);
}

static int put_handoff_row(sqlite_store *store, const pl_session_key *key, const json_t *handoff, int64_t now_ms) {
    json_t *since = json_object_get(handoff, "since");
    const char *state = field(handoff, "state");
    int closed = state && strcmp(state, "closed") == 0;
    /* a closed row reopens with its new since and the page of now */
    return run_sql(store, NULL,
                   "INSERT INTO handoffs (bot, channel, user, state, reason, agent, since, updated_at, display_name, "
                   "visitor, closed_at, closed_how, page) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                   "(SELECT CAST(value AS INTEGER) FROM settings WHERE name = 'handoff_visitors'), "
                   "CASE WHEN ?4 = 'closed' THEN ?8 END, ?10, (" LATEST_PAGE("?1", "?2", "?3") ")) "
                   "ON CONFLICT (bot, channel, user) DO UPDATE SET "
                   "since = CASE WHEN state = 'closed' THEN excluded.since ELSE since END, "
                   "page = CASE WHEN state = 'closed' THEN excluded.page ELSE page END, "
                   "state = excluded.state, reason = coalesce(excluded.reason, reason), agent = excluded.agent, "
                   "updated_at = excluded.updated_at, display_name = coalesce(excluded.display_name, display_name), "
                   "visitor = coalesce(visitor, excluded.visitor), closed_at = excluded.closed_at, "
                   "closed_how = excluded.closed_how",
                   "ssssnniinn", key->bot, key->channel, key->user, state, field(handoff, "reason"),
                   field(handoff, "agent"), json_is_number(since) ? (int64_t)json_number_value(since) : now_ms,
                   now_ms, field(handoff, "display_name"), closed ? field(handoff, "how") : NULL);
}

static int sqlite_handoff_put(pl_store *handle, const pl_session_key *key, const json_t *handoff, int64_t now_ms,
                         char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    if (!handoff) {
        int rc = run_sql(store, NULL, "DELETE FROM handoffs WHERE bot = ?1 AND channel = ?2 AND user = ?3", "sss",
                         key->bot, key->channel, key->user);
        return rc == SQLITE_DONE ? PL_OK : db_fail(store, err, "record handoff");
    }
    /* the number and the row together, inside a batch's transaction or not */
    if (run_control(store, "SAVEPOINT handoff_put", err) != PL_OK) return PL_ERR;
    if (number_visitor(store, key) != SQLITE_DONE || put_handoff_row(store, key, handoff, now_ms) != SQLITE_DONE) {
        db_fail(store, err, "record handoff");
        sqlite3_exec(store->db, "ROLLBACK TO handoff_put; RELEASE handoff_put", NULL, NULL, NULL);
        return PL_ERR;
    }
    return run_control(store, "RELEASE handoff_put", err);
}

static int sqlite_handoffs(pl_store *handle, json_t **list, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    return collect_rows(store,
                        "SELECT h.bot, h.channel, h.user, h.state, h.reason, h.agent, h.since, "
                        /* the last line's time: the newest row's, or its reply's */
                        "(SELECT max(t.at, coalesce(t.reply_at, t.at)) FROM transcript_rows t WHERE t.bot = h.bot "
                        " AND t.channel = h.channel AND t.user = h.user ORDER BY t.id DESC LIMIT 1), "
                        "h.display_name, h.visitor, h.page "
                        "FROM handoffs h WHERE h.state <> 'closed' "
                        "ORDER BY CASE h.state WHEN 'waiting' THEN 0 ELSE 1 END, h.since, h.updated_at, h.visitor",
                        open_keys, KEY_COUNT(open_keys), list, err);
}

/* ?2 in the text of a line: a message's, or any reply's of an answer. */
#define LINE_SAYS(pattern)                                                                                  \
    "((t.direction = 'in' AND json_extract(t.body, '$.text') LIKE " pattern " ESCAPE '\\') OR "          \
    "(t.direction = 'out' AND json_type(t.body) = 'array' AND EXISTS (SELECT 1 FROM json_each(t.body) r " \
    "WHERE json_extract(r.value, '$.text') LIKE " pattern " ESCAPE '\\')))"

/* sqlite3_progress_handler's: nonzero (stop the statement) once the
 * monotonic clock passed the deadline. */
static int past_deadline(void *arg) {
    const int64_t *deadline = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 > *deadline;
}

static int sqlite_handoffs_closed(pl_store *handle, const pl_store_closed_query *q, json_t **list, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    char *pattern = q->search && *q->search ? pl_store_like_pattern(q->search) : NULL;
    sqlite3_stmt *st = NULL;
    /* a search reads the newest ?6 closed handoffs only */
    int rc = sqlite3_prepare_v2(
        store->db,
        "SELECT h.bot, h.channel, h.user, h.reason, h.agent, h.since, h.closed_at, h.closed_how, h.display_name, "
        "h.visitor FROM (SELECT * FROM handoffs WHERE state = 'closed' AND (?1 IS NULL OR bot = ?1) "
        " ORDER BY closed_at DESC, bot, channel, user LIMIT CASE WHEN ?2 IS NULL THEN -1 ELSE ?6 END) h "
        "WHERE (?2 IS NULL "
        " OR h.display_name LIKE ?2 ESCAPE '\\' OR h.user LIKE ?2 ESCAPE '\\' OR h.reason LIKE ?2 ESCAPE '\\' "
        " OR EXISTS (SELECT 1 FROM orders o WHERE o.id = ?3 AND o.bot = h.bot AND o.channel = h.channel "
        "            AND o.user = h.user) "
        " OR EXISTS (SELECT 1 FROM transcript t WHERE t.bot = h.bot AND t.channel = h.channel AND t.user = h.user "
        "            AND " LINE_SAYS("?2") ")) "
        "ORDER BY h.closed_at DESC, h.bot, h.channel, h.user LIMIT ?4 OFFSET ?5",
        -1, &st, NULL);
    json_t *out = json_array();
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t deadline = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 +
                       (q->budget_ms > 0 ? q->budget_ms : PL_STORE_CLOSED_BUDGET_MS);
    if (rc == SQLITE_OK) {
        if (q->bot) sqlite3_bind_text(st, 1, q->bot, -1, SQLITE_STATIC);
        if (pattern) sqlite3_bind_text(st, 2, pattern, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, q->order_id);
        sqlite3_bind_int(st, 4, q->limit);
        sqlite3_bind_int(st, 5, q->offset);
        sqlite3_bind_int(st, 6, q->searched > 0 ? q->searched : PL_STORE_CLOSED_SEARCHED);
        sqlite3_progress_handler(store->db, 1000, past_deadline, &deadline);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(out, object_of_row(st, closed_keys, KEY_COUNT(closed_keys)));
        sqlite3_progress_handler(store->db, 0, NULL, NULL);
    }
    sqlite3_finalize(st);
    free(pattern);
    if (rc == SQLITE_INTERRUPT) {
        json_decref(out);
        pl_fail(err, "the search ran longer than %d ms", q->budget_ms > 0 ? q->budget_ms : PL_STORE_CLOSED_BUDGET_MS);
        return PL_AGAIN;
    }
    if (rc != SQLITE_DONE) {
        json_decref(out);
        return db_fail(store, err, "list closed handoffs");
    }
    *list = out;
    return PL_OK;
}

/* --- shoppers: export and retention ------------------------------------------------ */

#define SHOPPER "bot = ?1 AND channel = ?2 AND user = ?3"

/* An export's lists (store_backend.h): in this backend's SQL, ?1..?3 the
 * shopper and ?4 the limit of a bounded list. */

#define LATEST(columns, table) \
    "SELECT " columns " FROM (SELECT " columns " FROM " table " WHERE " SHOPPER " ORDER BY id DESC LIMIT ?4) ORDER BY id"
#define KEYS(k) k, (int)(sizeof k / sizeof *k)

static const export_list export_lists[] = {
    {"transcript", LATEST("id, at, direction, body", "transcript"), "SELECT count(*) FROM transcript WHERE " SHOPPER,
     KEYS(transcript_keys)},
    {"orders", "SELECT " ORDER_COLUMNS " FROM orders WHERE " SHOPPER " ORDER BY id", NULL, KEYS(order_keys)},
    {"events", LATEST("id, at, conv, locale, step, list, names", "events"), "SELECT count(*) FROM events WHERE " SHOPPER,
     KEYS(event_keys)},
    {"jobs", LATEST("id, name, state, data, fire_at, created_at, fired_at", "jobs"),
     "SELECT count(*) FROM jobs WHERE " SHOPPER, KEYS(job_keys)},
    {"handoff",
     "SELECT state, reason, agent, since, updated_at, display_name, visitor, closed_at, closed_how, page FROM handoffs "
     "WHERE " SHOPPER,
     NULL,
     KEYS(handoff_keys)},
    {"inbox", LATEST("id, platform_id, message, received_at, done_at", "inbox"),
     "SELECT count(*) FROM inbox WHERE " SHOPPER, KEYS(inbox_keys)},
    {"outbox", LATEST("id, state, attempts, call, created_at, sent_at", "outbox"),
     "SELECT count(*) FROM outbox WHERE " SHOPPER, KEYS(outbox_keys)},
    /* the uses of the codes of this shopper's orders (a use names no channel) */
    {"discount_uses",
     "SELECT d.code, d.order_id, d.used_at FROM discount_uses d JOIN orders o ON o.id = d.order_id "
     "WHERE d.bot = ?1 AND d.user = ?3 AND o.bot = ?1 AND o.channel = ?2 AND o.user = ?3 ORDER BY d.used_at, d.code",
     NULL, KEYS(use_keys)},
};

static int export_all(sqlite_store *store, const pl_session_key *key, int limit, json_t *out, int *found,
                      char **err) {
    sqlite3_stmt *st = NULL;
    int rc = run_sql(store, &st, "SELECT state FROM sessions WHERE " SHOPPER, "sss", key->bot, key->channel, key->user);
    if (rc < 0) return db_fail(store, err, "export the session");
    json_t *session = rc == SQLITE_ROW ? json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL) : NULL;
    if (st) sqlite3_reset(st);
    *found = session != NULL;
    json_object_set_new(out, "session", session ? session : json_null());
    /* the counts of what the limit left out, last */
    json_t *omitted = json_object();
    for (size_t i = 0; i < sizeof export_lists / sizeof *export_lists; i++) {
        const export_list *l = &export_lists[i];
        json_t *rows = json_array();
        if (append_rows(store, rows, l->keys, l->nkeys, err, l->sql, "sssi", key->bot, key->channel, key->user,
                        (int64_t)limit) != PL_OK) {
            json_decref(rows);
            json_decref(omitted);
            return PL_ERR;
        }
        *found = *found || json_array_size(rows) > 0;
        int64_t more = 0;
        if (l->count && json_array_size(rows) >= (size_t)limit) {
            st = NULL;
            rc = run_sql(store, &st, l->count, "sss", key->bot, key->channel, key->user);
            if (rc == SQLITE_ROW) {
                more = sqlite3_column_int64(st, 0) - limit;
                sqlite3_reset(st);
            }
        }
        if (l->count) json_object_set_new(omitted, l->name, json_integer(more > 0 ? more : 0));
        if (strcmp(l->name, "handoff") == 0) {
            json_object_set(out, l->name, json_array_size(rows) ? json_array_get(rows, 0) : json_null());
            json_decref(rows);
        } else {
            json_object_set_new(out, l->name, rows);
        }
    }
    json_object_set_new(out, "omitted", omitted);
    return PL_OK;
}

static int sqlite_shopper_export(pl_store *handle, const pl_session_key *key, int limit, json_t **doc, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    *doc = NULL;
    /* one snapshot (a savepoint outside a transaction begins one) */
    if (run_sql(store, NULL, "SAVEPOINT export", "") != SQLITE_DONE) return db_fail(store, err, "export");
    json_t *out = json_object();
    int found = 0;
    int rc = export_all(store, key, limit > 0 ? limit : 1, out, &found, err);
    run_sql(store, NULL, "RELEASE export", "");
    if (rc == PL_OK && found) *doc = out;
    else json_decref(out);
    return rc;
}

static int sqlite_purge_before(pl_store *handle, const char *bot, pl_store_purge_kind kind, int64_t before_ms,
                               int limit, int64_t *removed, char **err) {
    sqlite_store *store = (sqlite_store *)handle;
    static const char *const sql[] = {
        [PL_PURGE_TRANSCRIPT] = "DELETE FROM transcript_rows WHERE id IN "
                                "(SELECT id FROM transcript_rows WHERE bot = ?1 AND at < ?2 LIMIT ?3)",
        [PL_PURGE_INBOX] = "DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE bot = ?1 AND received_at < ?2 "
                           "AND done_at IS NOT NULL LIMIT ?3)",
        [PL_PURGE_OUTBOX] = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE bot = ?1 AND created_at < ?2 "
                            "AND state <> 'pending' LIMIT ?3)",
        [PL_PURGE_CLOSED_HANDOFFS] = "DELETE FROM handoffs WHERE (bot, channel, user) IN (SELECT bot, channel, user "
                                     "FROM handoffs WHERE bot = ?1 AND state = 'closed' AND closed_at < ?2 LIMIT ?3)",
    };
    *removed = 0;
    if ((unsigned)kind >= sizeof sql / sizeof *sql) return pl_fail(err, "store: nothing to purge of kind %d", kind);
    if (run_sql(store, NULL, sql[kind], "sii", bot, before_ms, (int64_t)limit) != SQLITE_DONE)
        return db_fail(store, err, "purge");
    *removed = sqlite3_changes(store->db);
    return PL_OK;
}

static const pl_store_backend sqlite_backend = {
    .name = "sqlite",
    .shared = 0,
    .set_owner = sqlite_set_owner,
    .outbox_renew = sqlite_outbox_renew,
    .round_trips = sqlite_round_trips,
    .announce = sqlite_announce,
    .listen = sqlite_listen,
    .close = sqlite_close,
    .path = sqlite_path,
    .defer_sync = sqlite_defer_sync,
    .commits = sqlite_commits,
    .wal_frames = sqlite_wal_frames,
    .ping = sqlite_ping,
    .schema_version = sqlite_schema_version,
    .read_figures = sqlite_read_figures,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .begin_batch = sqlite_begin_batch,
    .commit_batch = sqlite_commit_batch,
    .batch_fd = sqlite_batch_fd,
    .batch_poll = sqlite_batch_poll,
    .session_get = sqlite_session_get,
    .session_put = sqlite_session_put,
    .session_take = sqlite_session_take,
    .use_loop = sqlite_use_loop,
    .session_release = sqlite_session_release,
    .session_epoch = sqlite_session_epoch,
    .session_erase = sqlite_session_erase,
    .session_count = sqlite_session_count,
    .transcript_add = sqlite_transcript_add,
    .transcript_add_turn = sqlite_transcript_add_turn,
    .pseudonym_key = sqlite_pseudonym_key,
    .shopper_export = sqlite_shopper_export,
    .purge_before = sqlite_purge_before,
    .events_read = sqlite_events_read,
    .analytics_day_put = sqlite_analytics_day_put,
    .analytics_days_read = sqlite_analytics_days_read,
    .events_purge = sqlite_events_purge,
    .transcript_get = sqlite_transcript_get,
    .transcript_since = sqlite_transcript_since,
    .transcript_last_id = sqlite_transcript_last_id,
    .conversations = sqlite_conversations,
    .handoff_put = sqlite_handoff_put,
    .handoffs = sqlite_handoffs,
    .handoffs_closed = sqlite_handoffs_closed,
    .catalog_replace = sqlite_catalog_replace,
    .catalog_count = sqlite_catalog_count,
    .inbox_add = sqlite_inbox_add,
    .inbox_done = sqlite_inbox_done,
    .inbox_next_seq = sqlite_inbox_next_seq,
    .inbox_pending = sqlite_inbox_pending,
    .inbox_prune = sqlite_inbox_prune,
    .outbox_add = sqlite_outbox_add,
    .outbox_pending = sqlite_outbox_pending,
    .outbox_update = sqlite_outbox_update,
    .outbox_count = sqlite_outbox_count,
    .outbox_earlier = sqlite_outbox_earlier,
    .order_create = sqlite_order_create,
    .order_get = sqlite_order_get,
    .orders_of = sqlite_orders_of,
    .order_set_link = sqlite_order_set_link,
    .order_transition = sqlite_order_transition,
    .order_fulfilment = sqlite_order_fulfilment,
    .order_by_ref = sqlite_order_by_ref,
    .discount_used = sqlite_discount_used,
    .discount_use = sqlite_discount_use,
    .stock_sync = sqlite_stock_sync,
    .stock_take = sqlite_stock_take,
    .job_put = sqlite_job_put,
    .job_cancel = sqlite_job_cancel,
    .job_next = sqlite_job_next,
    .jobs_due = sqlite_jobs_due,
    .job_fired = sqlite_job_fired,
    .jobs_of = sqlite_jobs_of,
    .payload_put = sqlite_payload_put,
    .payload_get = sqlite_payload_get,
};
