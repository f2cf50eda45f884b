/* pg_schema: the store's numbered migrations in PostgreSQL's dialect and
 * the step that applies them; see pg_schema.h. Owns the PostgreSQL text of
 * each migration (store.c owns SQLite's, with the same numbers).
 *
 * The dialect's differences: `user` is a reserved word, quoted; ids are
 * bigserial; times and amounts are bigint; the transcript's view takes
 * lines written into it through a PL/pgSQL trigger function; and a row's
 * id comes from a sequence stepping by 2 (its answer is the line id + 1),
 * where SQLite takes the highest id + 2, which concurrent nodes could
 * both take. */
#include "pg_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

/* One statement each (pipeline mode sends no multi-statement strings);
 * a migration ends with NULL. Append only, like store.c's. */
static const char *const m1[] = {
    "CREATE TABLE sessions (bot text NOT NULL, channel text NOT NULL, \"user\" text NOT NULL,"
    " state text NOT NULL, updated_at bigint NOT NULL, PRIMARY KEY (bot, channel, \"user\"))",
    "CREATE TABLE transcript (id bigserial PRIMARY KEY, bot text NOT NULL, channel text NOT NULL,"
    " \"user\" text NOT NULL, at bigint NOT NULL, direction text NOT NULL, body text NOT NULL)",
    "CREATE INDEX transcript_by_session ON transcript (bot, channel, \"user\", id)",
    "CREATE TABLE products (bot text NOT NULL, sku text NOT NULL, position integer NOT NULL, data text NOT NULL,"
    " PRIMARY KEY (bot, sku))",
    NULL};

/* 2: messaging channels */
static const char *const m2[] = {
    "CREATE TABLE inbox (id bigserial PRIMARY KEY, bot text NOT NULL, channel text NOT NULL,"
    " platform_id text NOT NULL, \"user\" text NOT NULL, message text NOT NULL,"
    " received_at bigint NOT NULL, done_at bigint, UNIQUE (bot, channel, platform_id))",
    "CREATE INDEX inbox_pending ON inbox (id) WHERE done_at IS NULL",
    "CREATE TABLE outbox (id bigserial PRIMARY KEY, bot text NOT NULL, channel text NOT NULL,"
    " \"user\" text NOT NULL, call text NOT NULL, state text NOT NULL DEFAULT 'pending',"
    " attempts integer NOT NULL DEFAULT 0, next_at bigint NOT NULL, last_error text,"
    " created_at bigint NOT NULL, sent_at bigint)",
    "CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending'",
    "CREATE TABLE payload_map (bot text NOT NULL, key text NOT NULL, payload text NOT NULL, PRIMARY KEY (bot, key))",
    NULL};

/* 3: commerce */
static const char *const m3[] = {
    "CREATE TABLE orders (id bigserial PRIMARY KEY, bot text NOT NULL, channel text NOT NULL,"
    " \"user\" text NOT NULL, state text NOT NULL, fulfilment text, tracking_url text,"
    " currency text NOT NULL, subtotal bigint NOT NULL, discount bigint NOT NULL,"
    " total bigint NOT NULL, discount_code text, lines text NOT NULL,"
    " provider text NOT NULL, provider_ref text, payment_ref text, payment_url text,"
    " token text NOT NULL, created_at bigint NOT NULL, updated_at bigint NOT NULL, paid_at bigint)",
    "CREATE INDEX orders_by_user ON orders (bot, channel, \"user\", id)",
    "CREATE TABLE discount_uses (bot text NOT NULL, code text NOT NULL, \"user\" text NOT NULL,"
    " order_id bigint NOT NULL, used_at bigint NOT NULL, PRIMARY KEY (bot, code, \"user\"))",
    "CREATE TABLE jobs (id bigserial PRIMARY KEY, bot text NOT NULL, channel text NOT NULL,"
    " \"user\" text NOT NULL, name text NOT NULL, data text NOT NULL, fire_at bigint NOT NULL,"
    " state text NOT NULL DEFAULT 'pending', created_at bigint NOT NULL, fired_at bigint)",
    "CREATE UNIQUE INDEX jobs_one_pending ON jobs (bot, channel, \"user\", name) WHERE state = 'pending'",
    "CREATE INDEX jobs_due ON jobs (fire_at) WHERE state = 'pending'",
    "CREATE TABLE stock (bot text NOT NULL, key text NOT NULL, remaining bigint NOT NULL,"
    " catalog_stock bigint NOT NULL, PRIMARY KEY (bot, key))",
    NULL};

/* 4: human handoff */
static const char *const m4[] = {
    "CREATE TABLE handoffs (bot text NOT NULL, channel text NOT NULL, \"user\" text NOT NULL,"
    " state text NOT NULL, reason text, agent text, since bigint NOT NULL, updated_at bigint NOT NULL,"
    " PRIMARY KEY (bot, channel, \"user\"))",
    NULL};

/* 5: the shopper's name in the agents' queue */
static const char *const m5[] = {"ALTER TABLE handoffs ADD COLUMN display_name text", NULL};

/* 6: a turn's message and answer in one row; `transcript` is the view of
 * lines every reader reads. A row takes two ids (the sequence steps by 2):
 * its message's and, + 1, its answer's. */
static const char *const m6[] = {
    "ALTER TABLE transcript RENAME TO transcript_rows",
    "ALTER TABLE transcript_rows ADD COLUMN reply_at bigint",
    "ALTER TABLE transcript_rows ADD COLUMN reply text",
    "ALTER SEQUENCE transcript_id_seq INCREMENT BY 2",
    "CREATE VIEW transcript AS"
    " SELECT id, bot, channel, \"user\", at, direction, body FROM transcript_rows"
    " UNION ALL"
    " SELECT id + 1, bot, channel, \"user\", reply_at, 'out', reply FROM transcript_rows WHERE reply IS NOT NULL",
    /* a line written into the view (a tool's, a test's) is a row of its own */
    "CREATE FUNCTION transcript_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " INSERT INTO transcript_rows (bot, channel, \"user\", at, direction, body)"
    " VALUES (NEW.bot, NEW.channel, NEW.\"user\", NEW.at, NEW.direction, NEW.body);"
    " RETURN NEW; END $$",
    "CREATE TRIGGER transcript_insert INSTEAD OF INSERT ON transcript FOR EACH ROW EXECUTE FUNCTION transcript_insert()",
    NULL};

/* 7: several nodes. A session's turn count (seq), which a commit checks
 * and advances, so a node that lost its hold of a session (its connection
 * dropped) cannot overwrite a turn another node committed meanwhile; and
 * who holds an outgoing call (owner, until lease_until), so that another
 * node takes over the calls of one that died. */
static const char *const m7[] = {
    "ALTER TABLE sessions ADD COLUMN seq bigint NOT NULL DEFAULT 0",
    "ALTER TABLE outbox ADD COLUMN owner text",
    "ALTER TABLE outbox ADD COLUMN lease_until bigint NOT NULL DEFAULT 0",
    "CREATE FUNCTION parley_session_put(b text, c text, u text, st text, at bigint, turn bigint)"
    " RETURNS void LANGUAGE plpgsql AS $$ BEGIN"
    " UPDATE sessions SET state = st, updated_at = at, seq = seq + 1"
    "  WHERE bot = b AND channel = c AND \"user\" = u AND seq = turn;"
    " IF FOUND THEN RETURN; END IF;"
    " IF turn = 0 THEN"
    "  INSERT INTO sessions (bot, channel, \"user\", state, updated_at, seq) VALUES (b, c, u, st, at, 1)"
    "  ON CONFLICT DO NOTHING;"
    "  IF FOUND THEN RETURN; END IF;"
    " END IF;"
    " RAISE EXCEPTION 'session %/%/% changed on another node since its turn % was read', b, c, u, turn"
    "  USING ERRCODE = 'serialization_failure';"
    " END $$",
    /* a node takes a session (a session-level advisory lock on its key's
     * hash) before it reads it, in this order: then the session and turn
     * count it reads are the latest; and whether an inbound message was
     * handled */
    "CREATE FUNCTION parley_session_take(b text, c text, u text, inbox_id bigint,"
    " OUT held boolean, OUT turn bigint, OUT handled boolean, OUT state text) LANGUAGE plpgsql AS $$ BEGIN"
    " held := pg_try_advisory_lock(hashtextextended(b || chr(31) || c || chr(31) || u, 0));"
    " IF NOT held THEN RETURN; END IF;"
    " BEGIN"
    "  SELECT s.seq, s.state INTO turn, state FROM sessions s WHERE s.bot = b AND s.channel = c AND s.\"user\" = u;"
    "  turn := coalesce(turn, 0);"
    "  handled := coalesce((SELECT done_at IS NOT NULL FROM inbox WHERE id = inbox_id), false);"
    /* a read that failed gives the lock back: the caller takes it again */
    " EXCEPTION WHEN OTHERS THEN"
    "  PERFORM pg_advisory_unlock(hashtextextended(b || chr(31) || c || chr(31) || u, 0));"
    "  RAISE;"
    " END;"
    " END $$",
    NULL};

/* 8: analytics events, a turn's in its transcript row (no row and no index
 * more per turn); names lists them between spaces, so a reader can skip a
 * row, and list holds those with props. `events` is the view of the rows
 * that have them (read by bot and time: migration 9's transcript_by_time) */
static const char *const m8[] = {
    "ALTER TABLE transcript_rows ADD COLUMN conv bigint",
    "ALTER TABLE transcript_rows ADD COLUMN locale text",
    "ALTER TABLE transcript_rows ADD COLUMN step text",
    "ALTER TABLE transcript_rows ADD COLUMN names text",
    "ALTER TABLE transcript_rows ADD COLUMN list text",
    "CREATE VIEW events AS SELECT id, bot, channel, \"user\", conv, at, locale, step, names, list"
    " FROM transcript_rows WHERE names IS NOT NULL",
    NULL};

/* 9: privacy. The database's own settings (the key of erased shoppers'
 * pseudonyms, made once); what retention purges, found by bot and time; a
 * shopper's jobs found without reading them all (export, erasure) */
static const char *const m9[] = {
    "CREATE TABLE settings (name text PRIMARY KEY, value text NOT NULL)",
    "CREATE INDEX transcript_by_time ON transcript_rows (bot, at)",
    "CREATE INDEX inbox_by_time ON inbox (bot, received_at)",
    "CREATE INDEX outbox_by_time ON outbox (bot, created_at)",
    "CREATE INDEX jobs_by_shopper ON jobs (bot, channel, \"user\")",
    NULL};

/* 10: the analytics of days whose events retention let go of: a day's
 * figures per channel and locale, with no shopper in them */
static const char *const m10[] = {
    "CREATE TABLE analytics_days (bot text NOT NULL, day text NOT NULL, channel text NOT NULL,"
    " locale text NOT NULL, figures text NOT NULL, PRIMARY KEY (bot, day, channel, locale))",
    NULL};

/* 11: the agent console's closed conversations (a closed handoff keeps its
 * row) and visitor numbers (a sequence: nodes never give one twice) */
static const char *const m11[] = {
    "ALTER TABLE handoffs ADD COLUMN visitor bigint",
    "ALTER TABLE handoffs ADD COLUMN closed_at bigint",
    "ALTER TABLE handoffs ADD COLUMN closed_how text",
    "CREATE SEQUENCE handoff_visitors",
    "CREATE INDEX handoffs_closed ON handoffs (closed_at) WHERE state = 'closed'",
    NULL};

/* 12: the page an open handoff's shopper is on, kept on its row (the queue
 * reads no transcript); SQLite's 12 also moves its visitor numbers to a
 * counter, which the sequence already is here */
static const char *const m12[] = {
    "ALTER TABLE handoffs ADD COLUMN page text",
    "UPDATE handoffs SET page = (" PL_PG_LATEST_PAGE("handoffs.bot", "handoffs.channel", "handoffs.\"user\"")
    ") WHERE state <> 'closed'",
    NULL};

static const char *const *const migrations[] = {m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12};
#define MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* The advisory lock nodes take turns with ("parley" in ASCII), and how long
 * one waits for it. */
#define MIGRATION_LOCK "112097114108101121"
#define MIGRATION_LOCK_WAIT "60s"

int pl_pg_schema_latest(void) { return MIGRATIONS; }

typedef struct migration_run migration_run;

/* What a statement of the run is for, which names it when it fails. */
typedef enum { ROLE_SETUP, ROLE_VERSION, ROLE_MIGRATION, ROLE_COMMIT } statement_role;

typedef struct {
    migration_run *run;
    statement_role role;
    int version; /* ROLE_MIGRATION's */
} statement_of;

struct migration_run {
    pl_pg *pg;
    pl_pg_migrated_fn done;
    void *ud;
    int pending;  /* callbacks still to come */
    int finished; /* the outcome is known: delivered once pending is 0 */
    int version;  /* the outcome */
    char *outcome_error;
    int current;  /* the version the database said it has */
    char *error;  /* the first failure, and the statement it came from */
    statement_of failed;
    statement_of setup, read_version, commit, of[MIGRATIONS + 1];
    char version_text[MIGRATIONS + 1][16];
    char now_text[24];
};

static void deliver(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    migration_run *run = arg;
    run->done(run->version, run->outcome_error, run->ud);
    free(run->outcome_error);
    free(run->error);
    free(run);
}

/* Delivers the outcome from the loop once no callback of the run is left
 * to come (a statement queued before the connection broke still gets its
 * failure, and must find the run). */
static void settle(migration_run *run) {
    if (!run->finished || run->pending > 0) return;
    run->pending = -1; /* delivered: never again */
    struct timeval now = {0, 0};
    if (event_base_once(pl_pg_base(run->pg), -1, EV_TIMEOUT, deliver, run, &now) != 0) deliver(-1, 0, run);
}

static void finish(migration_run *run, int version, const char *error) {
    if (run->finished) return;
    run->finished = 1;
    run->version = version;
    run->outcome_error = error ? pl_strdup(error) : NULL;
}

static void note_failure(migration_run *run, const statement_of *of, const char *error) {
    if (run->error) return;
    run->error = pl_strdup(error);
    run->failed = *of;
}

static void on_statement(const PGresult *res, const char *error, void *ud) {
    statement_of *of = ud;
    migration_run *run = of->run;
    run->pending--;
    if (error) note_failure(run, of, error);
    else if (of->role == ROLE_VERSION && res && PQntuples(res) == 1) run->current = atoi(PQgetvalue(res, 0, 0));
    settle(run);
}

/* The failure, said for the operator. */
static char *failure_text(const migration_run *run) {
    if (run->current > MIGRATIONS) return pl_strdup(run->error);
    switch (run->failed.role) {
    case ROLE_MIGRATION: return pl_strdupf("migration %d failed: %s", run->failed.version, run->error);
    case ROLE_VERSION: return pl_strdupf("reading the schema's version failed: %s", run->error);
    case ROLE_COMMIT: return pl_strdupf("committing the migrations failed: %s", run->error);
    default: return pl_strdupf("waiting to migrate (another node may be migrating) failed: %s", run->error);
    }
}

/* After a failure: the transaction is aborted; ROLLBACK ends it. */
static void on_rolled_back(const PGresult *res, const char *error, void *ud) {
    (void)res;
    (void)error;
    migration_run *run = ud;
    run->pending--;
    char *why = failure_text(run);
    finish(run, -1, why);
    free(why);
    settle(run);
}

static int exec_as(migration_run *run, statement_of *of, const char *sql, int n, const char *const *params) {
    int rc = pl_pg_exec(run->pg, NULL, sql, n, params, on_statement, of);
    if (rc == 0) run->pending++;
    return rc;
}

static int sync_then(migration_run *run, pl_pg_result_fn then) {
    int rc = pl_pg_sync(run->pg, then, run);
    if (rc == 0) run->pending++;
    return rc;
}

/* A statement could not be sent: the connection is down (what was queued
 * fails from the loop, and settles the run). */
static void down(migration_run *run) {
    if (!run->error) run->error = pl_strdup("the database connection is down");
    finish(run, -1, "the database connection is down");
    settle(run);
}

static void fail(migration_run *run) {
    if (pl_pg_exec(run->pg, NULL, "ROLLBACK", 0, NULL, NULL, NULL) != 0 || sync_then(run, on_rolled_back) != 0) {
        char *why = failure_text(run);
        finish(run, -1, why);
        free(why);
        settle(run);
    }
}

static void on_applied(const PGresult *res, const char *error, void *ud) {
    (void)res;
    migration_run *run = ud;
    run->pending--;
    if (error) note_failure(run, &run->commit, error);
    if (run->error) {
        fail(run);
        return;
    }
    finish(run, MIGRATIONS, NULL);
    settle(run);
}

/* The lock is held and the version known: the missing migrations, each
 * recorded, then COMMIT, in one batch. */
static void on_checked(const PGresult *res, const char *error, void *ud) {
    (void)res;
    migration_run *run = ud;
    run->pending--;
    if (error) note_failure(run, &run->setup, error);
    if (!run->error && run->current > MIGRATIONS)
        run->error = pl_strdupf("the database's schema is at version %d, newer than this parley's %d: "
                                "run the newer parley, or a database of this one's",
                                run->current, MIGRATIONS);
    if (run->error) {
        fail(run);
        return;
    }
    int rc = 0;
    for (int v = run->current + 1; v <= MIGRATIONS && rc == 0; v++) {
        for (const char *const *sql = migrations[v - 1]; *sql && rc == 0; sql++)
            rc = exec_as(run, &run->of[v], *sql, 0, NULL);
        snprintf(run->version_text[v], sizeof run->version_text[v], "%d", v);
        const char *params[] = {run->version_text[v], run->now_text};
        if (rc == 0)
            rc = exec_as(run, &run->of[v],
                         "INSERT INTO schema_migrations (version, applied_at) VALUES ($1::integer, $2::bigint)", 2,
                         params);
    }
    if (rc == 0) rc = exec_as(run, &run->commit, "COMMIT", 0, NULL);
    if (rc == 0) rc = sync_then(run, on_applied);
    if (rc != 0) down(run);
}

void pl_pg_migrate(pl_pg *pg, long long now_ms, pl_pg_migrated_fn done, void *ud) {
    migration_run *run = calloc(1, sizeof *run);
    if (!run) abort();
    run->pg = pg;
    run->done = done;
    run->ud = ud;
    run->setup = (statement_of){run, ROLE_SETUP, 0};
    run->read_version = (statement_of){run, ROLE_VERSION, 0};
    run->commit = (statement_of){run, ROLE_COMMIT, 0};
    for (int v = 0; v <= MIGRATIONS; v++) run->of[v] = (statement_of){run, ROLE_MIGRATION, v};
    snprintf(run->now_text, sizeof run->now_text, "%lld", now_ms);
    int rc = exec_as(run, &run->setup, "BEGIN", 0, NULL);
    /* a node stuck halfway through migrating makes the others fail, not wait for ever */
    if (rc == 0) rc = exec_as(run, &run->setup, "SET LOCAL lock_timeout = '" MIGRATION_LOCK_WAIT "'", 0, NULL);
    if (rc == 0) rc = exec_as(run, &run->setup, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")", 0, NULL);
    if (rc == 0)
        rc = exec_as(run, &run->setup,
                     "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)",
                     0, NULL);
    if (rc == 0)
        rc = exec_as(run, &run->read_version, "SELECT coalesce(max(version), 0)::text FROM schema_migrations", 0, NULL);
    if (rc == 0) rc = sync_then(run, on_checked);
    if (rc != 0) down(run);
}
