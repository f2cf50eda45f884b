/* store_pg: the PostgreSQL backend of the storage interface (store.h,
 * store_backend.h), selected by a postgres:// URL. Owns its connection,
 * its prepared statements and the SQL of every store call in PostgreSQL's
 * dialect; the schema and its migrations are pg_schema.c's, applied when
 * the store opens (on a pl_pg connection of their own, under the advisory
 * lock that lets nodes starting at once take turns).
 *
 * Each call is one statement on a blocking libpq connection: its caller
 * waits for the round trip, as it waits for SQLite's page cache. The
 * pipeline's commits and the turn threads' session reads are what a
 * PostgreSQL node does most; docs/deployment.md says what runs where.
 *
 * Statements are prepared once per distinct SQL text and kept (callers
 * pass string literals, found by address and checked by text, as the SQLite
 * backend keeps its own). A connection the server ended is opened again
 * before the next statement outside a transaction; inside one, the
 * statement fails, and so does the transaction, which the pipeline runs
 * again. */
#include "store.h"
#include "store_backend.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "pg.h"
#include "pg_schema.h"

#define SQL_CACHE 64
#define MAX_PARAMS 16

typedef struct {
    const char *sql; /* the caller's text, compared by address first */
    char *text;      /* a copy, to tell another text at the same address */
    char name[16];
} prepared_sql;

/* A connection and the statements prepared on it. */
typedef struct {
    PGconn *conn;
    prepared_sql cache[SQL_CACHE];
    int cached, evict_next;
    unsigned next_name;
} pg_conn;

/* What the writer waits to read, in the order it sent it. */
typedef enum { ANSWER_IGNORED, ANSWER_WANTED, ANSWER_LATER, ANSWER_COMMIT, ANSWER_SYNC } answer_kind;
/* An answer the writer awaits; ANSWER_LATER's columns go into *later[0]
 * and *later[1] (those not NULL) when it is read (run_integer_later). */
typedef struct {
    answer_kind kind;
    int64_t *later[2];
} awaited;

typedef struct pg_store {
    pl_store base; /* first: the interface's handle (store_backend.h) */
    char *url;     /* as given, password and all: readers connect with it */
    pg_conn main;  /* every call outside the pipeline's batches, one at a time */
    /* The pipeline's batches (pl_store_begin_batch): a second connection in
     * libpq's pipeline mode. A statement whose answer the caller does not
     * read is sent without waiting for it; its failure fails the batch's
     * COMMIT. The COMMIT is sent and its answer read from the loop
     * (pl_store_batch_poll), so the loop never waits for the server to make
     * a batch durable. Absent on a reader. */
    pg_conn writer;
    int reader;            /* pl_store_open_reader's: sessions only */
    int main_open;         /* the main connection is inside BEGIN ... COMMIT */
    int writer_bad;        /* writer_broken: connect it again before the next batch */
    int in_batch;          /* calls go to the writer */
    int flight;            /* a batch's COMMIT is sent and not yet answered */
    int settled, committed; /* the flight's outcome, once known */
    char *batch_error;     /* the first failure in the batch */
    awaited *answers;      /* to read, oldest at answers_head */
    size_t answers_head, answers_len, answers_cap;
    int answer_taken;      /* the oldest answer's result is read, its end not yet */
    char *last_error;      /* of the last statement that failed */
    char last_state[6];    /* its SQLSTATE ("57014": canceled), or "" (set_error_of) */
    char *owner;           /* pl_store_set_owner's: NULL, the only node */
    int64_t lease_ms;
    struct listener *listener; /* pl_store_listen's */
    struct locker *locker;     /* pl_store_use_loop's */
} pg_store;

static const pl_store_backend pg_backend;

/* Round trips to the server, every connection of the process counted:
 * a statement waited for, a batch's wanted answer, a batch's outcome. */
static _Atomic uint64_t round_trips;

/* --- statements -------------------------------------------------------------- */

/* The server's message on one line (its DETAIL and HINT lines joined). */
static char *trimmed(const char *message) {
    char *out = pl_strdup(message && *message ? message : "no answer from the server");
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' ')) out[--n] = 0;
    for (char *p = out; *p; p++)
        if (*p == '\n') *p = ' ';
    return out;
}

static void set_error(pg_store *store, const char *message) {
    free(store->last_error);
    store->last_error = trimmed(message);
    store->last_state[0] = 0;
}

/* A statement's failure: its message and SQLSTATE (res NULL: the
 * connection's message). */
static void set_error_of(pg_store *store, const PGresult *res, PGconn *conn) {
    set_error(store, res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(store->last_state, sizeof store->last_state, "%s", state ? state : "");
}

static int pg_fail(pg_store *store, char **err, const char *what) {
    return pl_fail(err, "store: %s: %s", what, store->last_error ? store->last_error : "failed");
}

static void forget_prepared(pg_conn *c) {
    for (int i = 0; i < c->cached; i++) free(c->cache[i].text);
    memset(c->cache, 0, sizeof c->cache);
    c->cached = c->evict_next = 0;
}

/* Outside a transaction, a connection the server ended is opened again;
 * inside one (main_open: a dropped connection no longer says), its
 * statements fail until the caller rolls back, so that none of them
 * commits on its own. */
static int connection_ready(pg_store *store) {
    PGconn *conn = store->main.conn;
    if (PQstatus(conn) == CONNECTION_OK) return 1;
    if (store->main_open) {
        set_error(store, "the connection dropped inside a transaction");
        return 0;
    }
    PQreset(conn);
    forget_prepared(&store->main);
    if (PQstatus(conn) == CONNECTION_OK) return 1;
    set_error(store, PQerrorMessage(conn));
    return 0;
}

static void expect_answer_into(pg_store *store, answer_kind kind, int64_t *const *later) {
    if (store->answers_head + store->answers_len == store->answers_cap) {
        if (store->answers_head > 0) {
            memmove(store->answers, store->answers + store->answers_head, store->answers_len * sizeof *store->answers);
            store->answers_head = 0;
        } else {
            store->answers_cap = store->answers_cap ? store->answers_cap * 2 : 64;
            store->answers = realloc(store->answers, store->answers_cap * sizeof *store->answers);
            if (!store->answers) abort();
        }
    }
    awaited *a = &store->answers[store->answers_head + store->answers_len++];
    *a = (awaited){.kind = kind};
    if (later) memcpy(a->later, later, sizeof a->later);
}

static void expect_answer(pg_store *store, answer_kind kind) { expect_answer_into(store, kind, NULL); }

/* The first row's columns into *later[0] and *later[1] (those not NULL). */
static void fill_later(const PGresult *r, int64_t *const *later) {
    for (int i = 0; i < 2; i++)
        if (later[i] && PQntuples(r) > 0 && PQnfields(r) > i && !PQgetisnull(r, 0, i))
            *later[i] = atoll(PQgetvalue(r, 0, i));
}

/* The slot for sql in c's cache: found (*fresh 0), or taken for it now
 * (*fresh 1, the statement to prepare), evicting the oldest past
 * SQL_CACHE (deallocate is then the statement that drops it, else ""). */
#define DEALLOCATE_SIZE 40
static prepared_sql *cache_slot(pg_conn *c, const char *sql, int *fresh, char deallocate[DEALLOCATE_SIZE]) {
    prepared_sql *slot = NULL;
    *fresh = 0;
    deallocate[0] = 0;
    for (int i = 0; i < c->cached; i++) {
        if (c->cache[i].sql != sql) continue;
        if (strcmp(c->cache[i].text, sql) == 0) return &c->cache[i];
        slot = &c->cache[i];
        break;
    }
    if (!slot && c->cached < SQL_CACHE) slot = &c->cache[c->cached++];
    else if (!slot) {
        slot = &c->cache[c->evict_next];
        c->evict_next = (c->evict_next + 1) % SQL_CACHE;
    }
    if (slot->text) {
        snprintf(deallocate, DEALLOCATE_SIZE, "DEALLOCATE %s", slot->name);
        free(slot->text);
    }
    *slot = (prepared_sql){.sql = sql, .text = pl_strdup(sql)};
    snprintf(slot->name, sizeof slot->name, "p%u", ++c->next_name);
    *fresh = 1;
    return slot;
}

static void drop_slot(pg_conn *c, prepared_sql *slot) {
    free(slot->text);
    *slot = c->cache[--c->cached];
    memset(&c->cache[c->cached], 0, sizeof c->cache[c->cached]);
}

/* The name sql is prepared under on the main connection, preparing it now
 * when it is not kept; NULL (and last_error) when it cannot be. */
static const char *prepared_name(pg_store *store, const char *sql) {
    pg_conn *c = &store->main;
    int fresh;
    char deallocate[DEALLOCATE_SIZE];
    prepared_sql *slot = cache_slot(c, sql, &fresh, deallocate);
    if (!fresh) return slot->name;
    if (deallocate[0]) PQclear(PQexec(c->conn, deallocate));
    PGresult *res = PQprepare(c->conn, slot->name, sql, 0, NULL);
    atomic_fetch_add(&round_trips, 1);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) set_error_of(store, res, c->conn);
    PQclear(res);
    if (ok) return slot->name;
    drop_slot(c, slot);
    return NULL;
}

/* The writer's statement name for sql, its preparation sent ahead of it
 * (a failure fails the batch, and the next batch prepares anew). */
static const char *writer_prepared_name(pg_store *store, const char *sql) {
    pg_conn *c = &store->writer;
    int fresh;
    char deallocate[DEALLOCATE_SIZE];
    prepared_sql *slot = cache_slot(c, sql, &fresh, deallocate);
    if (!fresh) return slot->name;
    if (deallocate[0] && PQsendQueryParams(c->conn, deallocate, 0, NULL, NULL, NULL, NULL, 0))
        expect_answer(store, ANSWER_IGNORED);
    if (!PQsendPrepare(c->conn, slot->name, sql, 0, NULL)) {
        set_error(store, PQerrorMessage(c->conn));
        drop_slot(c, slot);
        return NULL;
    }
    expect_answer(store, ANSWER_IGNORED);
    return slot->name;
}

static void note_batch_error(pg_store *store, const char *message) {
    if (!store->batch_error) store->batch_error = trimmed(message);
}

/* The writer's connection failed: the batch has failed, and nothing more
 * will be read from it; the next batch connects again. */
static void writer_broken(pg_store *store) {
    note_batch_error(store, PQerrorMessage(store->writer.conn));
    /* out of step with what it was sent, or gone: never used again */
    store->writer_bad = 1;
    store->answers_head = store->answers_len = 0;
    store->answer_taken = 0;
    if (store->flight) {
        store->flight = 0;
        store->settled = 1;
        store->committed = 0;
    }
}

/* Reads one step of the writer's oldest awaited answer (a result, or
 * libpq's NULL that ends it). wait: blocks until it has come; else returns
 * 0 when it has not. An ANSWER_WANTED result goes to *wanted (the caller
 * clears it). Returns 1 when a step was read. */
static int take_answer(pg_store *store, int wait, PGresult **wanted) {
    PGconn *conn = store->writer.conn;
    if (!store->answers_len) return 0;
    if (PQstatus(conn) != CONNECTION_OK) {
        writer_broken(store);
        return 0;
    }
    if (!wait && PQisBusy(conn)) return 0;
    PGresult *r = PQgetResult(conn);
    answer_kind kind = store->answers[store->answers_head].kind;
    if (kind == ANSWER_SYNC || !r || store->answer_taken) {
        if (kind == ANSWER_SYNC && PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
            PQclear(r);
            writer_broken(store);
            return 0;
        }
        PQclear(r);
        if (kind != ANSWER_SYNC && r) return 1; /* a second result of one statement: not ours to keep */
        store->answers_head++;
        store->answers_len--;
        store->answer_taken = 0;
        if (!store->answers_len) store->answers_head = 0;
        if (kind == ANSWER_SYNC && store->flight && !store->answers_len) {
            store->flight = 0;
            store->settled = 1;
        }
        return 1;
    }
    store->answer_taken = 1;
    ExecStatusType status = PQresultStatus(r);
    int ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (status == PGRES_FATAL_ERROR) note_batch_error(store, PQresultErrorMessage(r));
    if (kind == ANSWER_COMMIT) store->committed = ok && strcmp(PQcmdStatus(r), "COMMIT") == 0;
    if (kind == ANSWER_LATER && ok) fill_later(r, store->answers[store->answers_head].later);
    if (kind == ANSWER_WANTED && wanted) {
        *wanted = r;
        return 1;
    }
    PQclear(r);
    return 1;
}

/* Sends what the writer buffered and reads its answers up to and
 * including the wanted one (a result, or NULL when it failed). */
static PGresult *writer_wait(pg_store *store) {
    PGconn *conn = store->writer.conn;
    if (!PQsendFlushRequest(conn) || PQflush(conn) != 0) {
        writer_broken(store);
        return NULL;
    }
    atomic_fetch_add(&round_trips, 1);
    PGresult *wanted = NULL;
    /* every answer before it (it was sent last), then its result and its end */
    while (!wanted && store->answers_len)
        if (!take_answer(store, 1, &wanted)) break;
    while (wanted && store->answer_taken) take_answer(store, 1, NULL);
    return wanted;
}

/* Sends a statement of the batch on the writer. The answer of one the
 * caller does not read (ANSWER_IGNORED) is read later, as is one whose
 * first column goes into *later (ANSWER_LATER); one it reads
 * (ANSWER_WANTED) is waited for. */
static int writer_run(pg_store *store, PGresult **out, const char *sql, int n, const char *const *values,
                      answer_kind want, int64_t *const *later) {
    if (store->batch_error) {
        set_error(store, store->batch_error);
        return PL_ERR;
    }
    const char *name = writer_prepared_name(store, sql);
    if (!name || !PQsendQueryPrepared(store->writer.conn, name, n, values, NULL, NULL, 0)) {
        note_batch_error(store, PQerrorMessage(store->writer.conn));
        set_error(store, store->batch_error);
        return PL_ERR;
    }
    expect_answer_into(store, want, later);
    if (want != ANSWER_WANTED) return PL_OK;
    PGresult *res = writer_wait(store);
    ExecStatusType status = PQresultStatus(res);
    if (res && (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)) {
        *out = res;
        return PL_OK;
    }
    PQclear(res);
    set_error(store, store->batch_error ? store->batch_error : "not run: an earlier statement of its batch failed");
    return PL_ERR;
}

/* Runs sql (prepared once and kept), with one parameter per type letter:
 * 's' text, 'n' text or NULL, 'i' int64_t. *out is its result (the caller
 * PQclears it), or NULL and PL_ERR with last_error set. In a batch, a
 * statement whose result is not wanted is only sent (*out stays NULL). */
static int run_args(pg_store *store, PGresult **out, answer_kind want, int64_t *const *later, const char *sql,
                    const char *types, va_list ap) {
    const char *values[MAX_PARAMS];
    char numbers[MAX_PARAMS][24];
    int n = (int)strlen(types);
    if (n > MAX_PARAMS) abort(); /* a caller's mistake, never the data's */
    for (int i = 0; i < n; i++) {
        if (types[i] == 'i') {
            snprintf(numbers[i], sizeof numbers[i], "%lld", (long long)va_arg(ap, int64_t));
            values[i] = numbers[i];
        } else {
            values[i] = va_arg(ap, const char *);
        }
    }
    *out = NULL;
    if (store->in_batch) return writer_run(store, out, sql, n, values, want, later);
    if (!connection_ready(store)) return PL_ERR;
    const char *name = prepared_name(store, sql);
    if (!name) return PL_ERR;
    PGresult *res = PQexecPrepared(store->main.conn, name, n, values, NULL, NULL, 0);
    atomic_fetch_add(&round_trips, 1);
    ExecStatusType status = PQresultStatus(res);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        *out = res;
        return PL_OK;
    }
    set_error_of(store, res, store->main.conn);
    PQclear(res);
    return PL_ERR;
}

/* Runs a statement whose rows do not matter; *changed (may be NULL) is
 * whether it changed any row. */
static int run_done(pg_store *store, char **err, const char *what, int *changed, const char *sql,
                    const char *types, ...) {
    va_list ap;
    va_start(ap, types);
    PGresult *res;
    int rc = run_args(store, &res, changed ? ANSWER_WANTED : ANSWER_IGNORED, NULL, sql, types, ap);
    va_end(ap);
    if (rc != PL_OK) return pg_fail(store, err, what);
    if (changed) *changed = atoll(PQcmdTuples(res)) > 0;
    PQclear(res);
    return PL_OK;
}

/* run_integer's and run_integer_later's: want ANSWER_LATER leaves a
 * batch's answer to be read with its COMMIT's outcome, into *value and
 * *second (NULL: none). */
static int run_integer_v(pg_store *store, char **err, const char *what, int64_t *value, int64_t *second,
                         int64_t fallback, answer_kind want, const char *sql, const char *types, va_list ap) {
    PGresult *res;
    int64_t *const later[2] = {value, second};
    int rc = run_args(store, &res, want, want == ANSWER_LATER ? later : NULL, sql, types, ap);
    if (rc != PL_OK) return pg_fail(store, err, what);
    if (!res) return PL_OK; /* sent in the batch: the values come later */
    *value = fallback;
    fill_later(res, later);
    PQclear(res);
    return PL_OK;
}

/* Runs a statement of one integer column: *value is its first row's (fallback
 * when there is no row or it is NULL). */
static int run_integer(pg_store *store, char **err, const char *what, int64_t *value, int64_t fallback,
                       const char *sql, const char *types, ...) {
    va_list ap;
    va_start(ap, types);
    int rc = run_integer_v(store, err, what, value, NULL, fallback, ANSWER_WANTED, sql, types, ap);
    va_end(ap);
    return rc;
}

/* As run_integer (fallback 0), with a second column into *second (NULL:
 * none); but in a batch the statement is only sent, and *value and *second
 * (which must stay valid until the batch is settled) are filled in when its
 * answer is read: with the COMMIT's outcome, so the loop does not wait. */
static int run_integer_later(pg_store *store, char **err, const char *what, int64_t *value, int64_t *second,
                             const char *sql, const char *types, ...) {
    va_list ap;
    va_start(ap, types);
    int rc = run_integer_v(store, err, what, value, second, 0, ANSWER_LATER, sql, types, ap);
    va_end(ap);
    return rc;
}

/* Runs a statement of one text column: *text is its first row's (new), or
 * NULL. */
static int run_text(pg_store *store, char **err, const char *what, char **text, const char *sql,
                    const char *types, ...) {
    va_list ap;
    va_start(ap, types);
    PGresult *res;
    int rc = run_args(store, &res, ANSWER_WANTED, NULL, sql, types, ap);
    va_end(ap);
    *text = NULL;
    if (rc != PL_OK) return pg_fail(store, err, what);
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        *text = pl_strndup(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    PQclear(res);
    return PL_OK;
}

/* A row as an object with the given keys (columns in order; a key starting
 * with '#' is an integer column, '@' a JSON column; NULL is null). */
static json_t *object_of_row(const PGresult *res, int row, const char *const *keys, int nkeys) {
    json_t *o = json_object();
    for (int i = 0; i < nkeys; i++) {
        const char *key = keys[i];
        int kind = key[0] == '#' || key[0] == '@' ? *key++ : 0;
        json_t *v;
        if (PQgetisnull(res, row, i)) v = json_null();
        else if (kind == '#') v = json_integer(atoll(PQgetvalue(res, row, i)));
        else if (kind == '@') v = json_loads(PQgetvalue(res, row, i), 0, NULL);
        else v = json_stringn(PQgetvalue(res, row, i), (size_t)PQgetlength(res, row, i));
        json_object_set_new(o, key, v ? v : json_null());
    }
    return o;
}

/* Runs a query and collects its rows (object_of_row) in a new array. */
static int run_rows(pg_store *store, char **err, const char *what, const char *const *keys, int nkeys,
                    json_t **rows, const char *sql, const char *types, ...) {
    va_list ap;
    va_start(ap, types);
    PGresult *res;
    int rc = run_args(store, &res, ANSWER_WANTED, NULL, sql, types, ap);
    va_end(ap);
    if (rc != PL_OK) return pg_fail(store, err, what);
    json_t *out = json_array();
    for (int r = 0; r < PQntuples(res); r++) json_array_append_new(out, object_of_row(res, r, keys, nkeys));
    PQclear(res);
    *rows = out;
    return PL_OK;
}

/* Opens a transaction of its own for a call that must be whole (catalog,
 * stock), or a savepoint inside the caller's, closed by end_own; inside a
 * batch the batch is that transaction (a failure fails it whole). */
static int begin_own(pg_store *store, int *nested, char **err) {
    if (store->in_batch) {
        *nested = 2;
        return PL_OK;
    }
    *nested = store->main_open;
    if (run_done(store, err, "begin", NULL, *nested ? "SAVEPOINT own" : "BEGIN", "") != PL_OK) return PL_ERR;
    store->main_open = 1;
    return PL_OK;
}

static int end_own(pg_store *store, int nested, int rc, char **err) {
    if (nested == 2) return rc;
    if (rc == PL_OK) rc = run_done(store, err, "commit", NULL, nested ? "RELEASE own" : "COMMIT", "");
    if (rc != PL_OK && PQstatus(store->main.conn) == CONNECTION_OK)
        PQclear(PQexec(store->main.conn, nested ? "ROLLBACK TO own; RELEASE own" : "ROLLBACK"));
    if (!nested) store->main_open = 0;
    return rc;
}

/* --- opening ----------------------------------------------------------------- */

/* The URL for messages (new): a password in it, before the host or as a
 * password= parameter, is shown as "***". */
static char *shown_url(const char *url) {
    char *out = pl_strdup(url);
    char *authority = strstr(out, "://");
    if (authority) {
        authority += 3;
        char *at = strchr(authority, '@'), *slash = strchr(authority, '/');
        char *colon = strchr(authority, ':');
        if (at && (!slash || at < slash) && colon && colon < at) {
            char *masked = pl_strdupf("%.*s:***%s", (int)(colon - out), out, at);
            free(out);
            out = masked;
        }
    }
    char *password = strstr(out, "password=");
    if (password) {
        size_t end = strcspn(password, "&");
        char *masked = pl_strdupf("%.*spassword=***%s", (int)(password - out), out, password + end);
        free(out);
        out = masked;
    }
    return out;
}

typedef struct {
    struct event_base *base;
    pl_pg *pg;
    int version;
    char *error;
} migration;

static void on_migrated(int version, const char *error, void *ud) {
    migration *m = ud;
    m->version = version;
    if (error) m->error = pl_strdup(error);
    event_base_loopbreak(m->base);
}

static void on_migration_connection(pl_pg *pg, const char *error, void *ud) {
    migration *m = ud;
    if (error) {
        if (!m->error) m->error = pl_strdupf("cannot connect: %s", error);
        event_base_loopbreak(m->base);
        return;
    }
    pl_pg_migrate(pg, (long long)pl_now_ms(), on_migrated, m);
}

/* Brings the database's schema to pg_schema.c's latest, on a connection of
 * its own driven by a private loop (the server's loop does not run yet). */
static int migrate(const char *url, char **err) {
    migration m = {.version = -1};
    m.base = event_base_new();
    if (!m.base) return pl_fail(err, "store: no event loop to migrate with");
    m.pg = pl_pg_connect(m.base, url, on_migration_connection, &m, err);
    if (m.pg) {
        event_base_dispatch(m.base);
        pl_pg_free(m.pg);
    } else {
        m.error = err && *err ? pl_strdup(*err) : pl_strdup("cannot connect");
        if (err) {
            free(*err);
            *err = NULL;
        }
    }
    event_base_free(m.base);
    if (m.version == pl_pg_schema_latest()) return PL_OK;
    char *shown = shown_url(url);
    pl_fail(err, "store: %s: %s", shown, m.error ? m.error : "the migrations did not finish");
    free(shown);
    free(m.error);
    return PL_ERR;
}

static int connect_one(pg_store *store, pg_conn *c, char **err) {
    c->conn = PQconnectdb(store->url);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        set_error(store, PQerrorMessage(c->conn));
        return pg_fail(store, err, "cannot connect");
    }
    /* notices (a savepoint released twice, say) are not for the log */
    PQsetNoticeProcessor(c->conn, NULL, NULL);
    return PL_OK;
}

/* The writer, connected (again, after a failure) and in pipeline mode. */
static int writer_ready(pg_store *store, char **err) {
    pg_conn *w = &store->writer;
    if (w->conn && !store->writer_bad && PQstatus(w->conn) == CONNECTION_OK &&
        PQpipelineStatus(w->conn) == PQ_PIPELINE_ON)
        return PL_OK;
    store->writer_bad = 0;
    if (w->conn) PQfinish(w->conn);
    w->conn = NULL;
    forget_prepared(w);
    if (connect_one(store, w, err) != PL_OK) return PL_ERR;
    if (!PQenterPipelineMode(w->conn)) {
        set_error(store, PQerrorMessage(w->conn));
        return pg_fail(store, err, "pipeline mode");
    }
    return PL_OK;
}

static int connect_store(const char *url, int writer, pl_store **out, char **err) {
    pg_store *store = calloc(1, sizeof *store);
    if (!store) abort();
    store->base.backend = &pg_backend;
    store->url = pl_strdup(url);
    store->reader = !writer;
    if (connect_one(store, &store->main, err) != PL_OK || (writer && writer_ready(store, err) != PL_OK)) {
        pg_backend.close(&store->base);
        return PL_ERR;
    }
    *out = &store->base;
    return PL_OK;
}

static int pg_pseudonym_key(pl_store *handle, unsigned char key[PL_STORE_KEY_BYTES], char **err) {
    char *hex = NULL;
    if (run_text((pg_store *)handle, err, "read the pseudonyms' key", &hex,
                 "SELECT value FROM settings WHERE name = 'pseudonym_key'", "") != PL_OK)
        return PL_ERR;
    int ok = pl_pseudonym_key_from_hex(hex, key) == PL_OK;
    free(hex);
    return ok ? PL_OK : pl_fail(err, "store: the database has no key for pseudonyms (settings: pseudonym_key)");
}

/* The pseudonyms' key: made the first time a database is opened to write
 * (of nodes starting at once, the first to insert it wins), and read. */
static int ensure_pseudonym_key(pl_store *handle, char **err) {
    char hex[2 * PL_STORE_KEY_BYTES + 1];
    pl_pseudonym_new_key_hex(hex);
    if (run_done((pg_store *)handle, err, "make the pseudonyms' key", NULL,
                 "INSERT INTO settings (name, value) VALUES ('pseudonym_key', $1) ON CONFLICT DO NOTHING", "s",
                 hex) != PL_OK ||
        pg_pseudonym_key(handle, handle->pseudonym_key, err) != PL_OK)
        return PL_ERR;
    handle->has_pseudonym_key = 1;
    return PL_OK;
}

int pl_store_pg_open(const char *url, pl_store **out, char **err) {
    if (migrate(url, err) != PL_OK) return PL_ERR;
    if (connect_store(url, 1, out, err) != PL_OK) return PL_ERR;
    if (ensure_pseudonym_key(*out, err) == PL_OK) return PL_OK;
    pg_backend.close(*out);
    *out = NULL;
    return PL_ERR;
}

int pl_store_pg_open_reader(const char *url, pl_store **out, char **err) { return connect_store(url, 0, out, err); }

static void listener_free(struct listener *l);
static void locker_free(struct locker *l);

static void pg_close(pl_store *handle) {
    pg_store *store = (pg_store *)handle;
    listener_free(store->listener);
    locker_free(store->locker);
    /* a batch whose COMMIT is sent ends as the server decides: it is not
     * awaited here (the pipeline awaits it before it frees the store) */
    forget_prepared(&store->main);
    forget_prepared(&store->writer);
    PQfinish(store->main.conn);
    if (store->writer.conn) PQfinish(store->writer.conn);
    free(store->answers);
    free(store->batch_error);
    free(store->url);
    free(store->last_error);
    free(store->owner);
    free(store);
}

static const char *pg_path(const pl_store *handle) { return ((const pg_store *)handle)->url; }

/* The server makes its own commits durable: there is nothing to sync here. */
static const char *pg_defer_sync(pl_store *handle) {
    (void)handle;
    return NULL;
}

static uint64_t pg_commits(const pl_store *handle) {
    (void)handle;
    return 0;
}

static uint64_t pg_wal_frames(const pl_store *handle) {
    (void)handle;
    return 0;
}

static uint64_t pg_round_trips(const pl_store *handle) {
    (void)handle;
    return atomic_load(&round_trips);
}

static int pg_read_figures(pl_store *handle, pl_store_figures *out, char **err) {
    pg_store *store = (pg_store *)handle;
    if (run_integer(store, err, "count sessions", &out->sessions, 0, "SELECT count(*) FROM sessions", "") != PL_OK ||
        run_integer(store, err, "count pending jobs", &out->jobs_pending, 0,
                    "SELECT count(*) FROM jobs WHERE state = 'pending'", "") != PL_OK)
        return PL_ERR;
    return run_integer(store, err, "read the database's size", &out->bytes, 0,
                       "SELECT pg_database_size(current_database())", "");
}

static int pg_ping(pl_store *handle, char **err) {
    int64_t n;
    return run_integer((pg_store *)handle, err, "ping", &n, 0, "SELECT count(*) FROM schema_migrations", "");
}

static int pg_schema_version(pl_store *handle, int *have, int *latest, char **err) {
    int64_t tables = 0, version = 0;
    *latest = pl_pg_schema_latest();
    *have = 0;
    pg_store *store = (pg_store *)handle;
    if (run_integer(store, err, "read the schema's version", &tables, 0,
                    "SELECT count(*) FROM pg_tables WHERE tablename = 'schema_migrations' "
                    "AND schemaname = ANY (current_schemas(false))", "") != PL_OK)
        return PL_ERR;
    if (tables > 0 && run_integer(store, err, "read the schema's version", &version, 0,
                                  "SELECT coalesce(max(version), 0) FROM schema_migrations", "") != PL_OK)
        return PL_ERR;
    *have = (int)version;
    return PL_OK;
}

static int pg_begin(pl_store *handle, char **err) {
    pg_store *store = (pg_store *)handle;
    if (store->in_batch) return pl_fail(err, "store: begin: a batch is open");
    if (run_done(store, err, "begin", NULL, "BEGIN", "") != PL_OK) return PL_ERR;
    store->main_open = 1;
    return PL_OK;
}

static int pg_commit(pl_store *handle, char **err) {
    pg_store *store = (pg_store *)handle;
    if (store->in_batch) return pl_fail(err, "store: commit: a batch is open (pl_store_commit_batch ends it)");
    /* COMMIT of a transaction that failed answers ROLLBACK, without error */
    if (!store->main_open) return pl_fail(err, "store: commit: no transaction is open");
    PGTransactionStatusType before = PQtransactionStatus(store->main.conn);
    if (run_done(store, err, "commit", NULL, "COMMIT", "") != PL_OK) return PL_ERR; /* the caller rolls back */
    store->main_open = 0;
    if (before == PQTRANS_INERROR) return pl_fail(err, "store: commit: the transaction had failed");
    return PL_OK;
}

/* Reads the writer's answers until none is awaited (or it broke). */
static void writer_drain(pg_store *store) {
    while (store->answers_len && take_answer(store, 1, NULL)) {
    }
}

/* After a failed batch what it prepared may not exist (a preparation the
 * server skipped): the writer forgets them all, and the next batch
 * prepares anew. */
static void writer_forget_prepared(pg_store *store) {
    forget_prepared(&store->writer);
    PGconn *w = store->writer.conn;
    if (store->writer_bad || PQstatus(w) != CONNECTION_OK) return; /* connected anew before the next batch */
    if (PQsendQueryParams(w, "DEALLOCATE ALL", 0, NULL, NULL, NULL, NULL, 0)) expect_answer(store, ANSWER_IGNORED);
    if (PQpipelineSync(w)) expect_answer(store, ANSWER_SYNC);
    if (PQflush(w) == 0) writer_drain(store);
    free(store->batch_error);
    store->batch_error = NULL;
}

static void pg_rollback(pl_store *handle) {
    pg_store *store = (pg_store *)handle;
    if (store->in_batch) {
        /* after a failure the server skips to the next sync point; the
         * transaction, aborted or not, then ends with ROLLBACK */
        PGconn *w = store->writer.conn;
        store->in_batch = 0;
        if (store->writer_bad) { /* nothing of the batch will commit: it is connected anew */
            free(store->batch_error);
            store->batch_error = NULL;
            return;
        }
        if (PQpipelineSync(w)) expect_answer(store, ANSWER_SYNC);
        if (PQsendQueryParams(w, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0)) expect_answer(store, ANSWER_IGNORED);
        if (PQpipelineSync(w)) expect_answer(store, ANSWER_SYNC);
        if (PQflush(w) != 0) writer_broken(store);
        writer_drain(store);
        writer_forget_prepared(store);
        free(store->batch_error);
        store->batch_error = NULL;
        return;
    }
    PGconn *conn = store->main.conn;
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) PQclear(PQexec(conn, "ROLLBACK"));
    store->main_open = 0;
}

/* --- the pipeline's batches ----------------------------------------------------- */

static int pg_begin_batch(pl_store *handle, char **err) {
    pg_store *store = (pg_store *)handle;
    if (store->in_batch || store->flight) return pl_fail(err, "store: begin: the last batch is not settled");
    if (store->reader) return pl_fail(err, "store: a reader has no batches");
    if (writer_ready(store, err) != PL_OK) return PL_ERR;
    free(store->batch_error);
    store->batch_error = NULL;
    store->settled = store->committed = 0;
    store->in_batch = 1;
    return run_done(store, err, "begin", NULL, "BEGIN", "");
}

static int pg_commit_batch(pl_store *handle, int *later, char **err) {
    pg_store *store = (pg_store *)handle;
    *later = 0;
    if (!store->in_batch) return pl_fail(err, "store: commit: no batch is open");
    PGconn *w = store->writer.conn;
    if (store->batch_error || !PQsendQueryParams(w, "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) {
        char *why = pl_strdup(store->batch_error ? store->batch_error : PQerrorMessage(w));
        pg_rollback(handle);
        pl_fail(err, "store: commit: %s", why);
        free(why);
        return PL_ERR;
    }
    expect_answer(store, ANSWER_COMMIT);
    store->in_batch = 0;
    store->flight = 1;
    if (!PQpipelineSync(w) || PQflush(w) != 0) {
        writer_broken(store);
        return pl_fail(err, "store: commit: %s", store->batch_error);
    }
    expect_answer(store, ANSWER_SYNC);
    atomic_fetch_add(&round_trips, 1);
    *later = 1;
    return PL_OK;
}

static int pg_batch_fd(const pl_store *handle) {
    const pg_store *store = (const pg_store *)handle;
    return store->writer.conn ? PQsocket(store->writer.conn) : -1;
}

static int pg_batch_poll(pl_store *handle, int wait, int *committed, char **err) {
    pg_store *store = (pg_store *)handle;
    if (store->flight) {
        if (!wait && !PQconsumeInput(store->writer.conn)) writer_broken(store);
        while (store->flight && take_answer(store, wait, NULL)) {
        }
    }
    if (!store->settled) return 0;
    store->settled = 0;
    *committed = store->committed && !store->batch_error;
    if (!*committed) {
        pl_fail(err, "store: commit: %s", store->batch_error ? store->batch_error : "the server rolled the batch back");
        writer_forget_prepared(store);
    }
    return 1;
}

/* --- sessions and transcripts ------------------------------------------------- */

/* The database's clock in ms: every node's leases are measured by it, so
 * the nodes' own clocks (or a test clock) do not shift them. */
#define DB_NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"
/* An outgoing call's hold: a lease from now for an owner, none (0) for the
 * only node (owner NULL); the arguments name the statement's parameters. */
#define LEASE_UNTIL(owner, lease_ms) "CASE WHEN " owner "::text IS NULL THEN 0 ELSE " DB_NOW_MS " + " lease_ms "::bigint END"
#define KEY_WHERE "bot = $1 AND channel = $2 AND \"user\" = $3"

static int pg_session_get(pl_store *handle, const pl_session_key *key, char **state_json, char **err) {
    return run_text((pg_store *)handle, err, "load session", state_json,
                    "SELECT state FROM sessions WHERE " KEY_WHERE, "sss", key->bot, key->channel, key->user);
}

static int pg_session_put(pl_store *handle, const pl_session_key *key, const char *state_json, int64_t turn,
                          int64_t now_ms, char **err) {
    if (turn >= 0) /* fails the transaction when another node committed a turn since */
        return run_done((pg_store *)handle, err, "save session", NULL, "SELECT parley_session_put($1, $2, $3, $4, $5, $6)",
                        "ssssii", key->bot, key->channel, key->user, state_json, now_ms, turn);
    return run_done((pg_store *)handle, err, "save session", NULL,
                    "INSERT INTO sessions (bot, channel, \"user\", state, updated_at, seq) VALUES ($1, $2, $3, $4, $5, 1) "
                    "ON CONFLICT (bot, channel, \"user\") DO UPDATE SET state = excluded.state, "
                    "updated_at = excluded.updated_at, seq = sessions.seq + 1",
                    "ssssi", key->bot, key->channel, key->user, state_json, now_ms);
}

/* --- connections of the loop's --------------------------------------------------- */

/* A pl_pg connection on the loop for one job of the node's (taking
 * sessions, hearing other nodes' commits): it connects again a second after
 * it dropped, and `up` prepares it each time it is up. */
typedef struct {
    pl_pg *pg;
    struct event *again;
    int warned;
    const char *doing; /* for the log: "taking sessions" */
    void (*up)(pl_pg *pg, void *ud);
    void *ud;
} loop_conn;

static void on_loop_conn_state(pl_pg *pg, const char *error, void *ud) {
    loop_conn *c = ud;
    if (!error) {
        if (c->warned) pl_info("store: %s again", c->doing);
        c->warned = 0;
        c->up(pg, c->ud);
        return;
    }
    if (!c->warned) pl_warn("store: not %s (%s); connecting again", c->doing, error);
    c->warned = 1;
    struct timeval second = {1, 0};
    evtimer_add(c->again, &second);
}

static void on_loop_conn_again(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_pg_reconnect(((loop_conn *)arg)->pg);
}

static int loop_conn_open(loop_conn *c, struct event_base *base, const char *url, const char *doing,
                          void (*up)(pl_pg *pg, void *ud), void *ud, char **err) {
    *c = (loop_conn){.doing = doing, .up = up, .ud = ud};
    c->again = evtimer_new(base, on_loop_conn_again, c);
    c->pg = pl_pg_connect(base, url, on_loop_conn_state, c, err);
    if (c->pg) return PL_OK;
    event_free(c->again);
    return PL_ERR;
}

static void loop_conn_close(loop_conn *c) {
    pl_pg_free(c->pg);
    event_free(c->again);
}

/* --- taking sessions: a connection of the loop's ------------------------------------
 *
 * A node holds a session while its turns run: a session-level advisory lock
 * on this connection (parley_session_take, which also reads the session),
 * released once the node's mailbox of it is empty. The connection is in
 * pipeline mode on the loop: takes and releases of many sessions go out
 * together and the loop never waits for them. When it drops, every lock
 * it held is gone: the turn counts the commits check keep a node that ran
 * on from overwriting another's turn. */

typedef struct locker {
    pg_store *store;
    struct event_base *base;
    loop_conn conn;
    uint64_t epoch;            /* times the connection came up */
    struct take_request *takes; /* sent, not answered */
    struct take_request *parked, **parked_end; /* asked before it first came up, oldest first */
} locker;

typedef struct take_request {
    struct take_request *next, **link; /* in locker.takes (parked: next only) */
    pl_store_taken_fn done;
    void *ud;
    char *params[4]; /* a parked take's */
} take_request;

static void take_unlink(take_request *r) {
    if (!r->link) return;
    *r->link = r->next;
    if (r->next) r->next->link = r->link;
    r->link = NULL;
}

#define TAKE_SQL "SELECT held, turn, handled, state FROM parley_session_take($1, $2, $3, $4)"
#define RELEASE_SQL "SELECT pg_advisory_unlock(hashtextextended($1 || chr(31) || $2 || chr(31) || $3, 0))"

static void send_take(locker *l, take_request *r, const char *const *params);

static void free_parked(take_request *r) {
    for (int i = 0; i < 4; i++) free(r->params[i]);
}

static void locker_up(pl_pg *pg, void *ud) {
    locker *l = ud;
    l->epoch++; /* the locks of a connection before this one are gone */
    pl_pg_prepare(pg, "take", TAKE_SQL, NULL, NULL);
    pl_pg_prepare(pg, "release", RELEASE_SQL, NULL, NULL);
    pl_pg_sync(pg, NULL, NULL);
    /* the takes of the first messages, which came while it connected */
    take_request *parked = l->parked;
    l->parked = NULL;
    l->parked_end = &l->parked;
    while (parked) {
        take_request *r = parked;
        parked = r->next;
        r->next = NULL;
        char *params[4];
        memcpy(params, r->params, sizeof params);
        memset(r->params, 0, sizeof r->params);
        send_take(l, r, (const char *const *)params);
        for (int i = 0; i < 4; i++) free(params[i]);
    }
}

static void locker_free(locker *l) {
    if (!l) return;
    loop_conn_close(&l->conn); /* takes in flight get no answer: freed here */
    while (l->takes) {
        take_request *r = l->takes;
        take_unlink(r);
        free(r);
    }
    while (l->parked) {
        take_request *r = l->parked;
        l->parked = r->next;
        free_parked(r);
        free(r);
    }
    free(l);
}

static uint64_t pg_session_epoch(const pl_store *handle) {
    const pg_store *store = (const pg_store *)handle;
    return store->locker ? store->locker->epoch : 0;
}

static int pg_use_loop(pl_store *handle, struct event_base *base, char **err) {
    pg_store *store = (pg_store *)handle;
    locker_free(store->locker);
    store->locker = NULL;
    listener_free(store->listener);
    store->listener = NULL;
    if (!base) return PL_OK;
    locker *l = calloc(1, sizeof *l);
    if (!l) abort();
    *l = (locker){.store = store, .base = base};
    l->parked_end = &l->parked;
    if (loop_conn_open(&l->conn, base, store->url, "taking sessions", locker_up, l, err) != PL_OK) {
        free(l);
        return PL_ERR;
    }
    store->locker = l;
    return PL_OK;
}

static int is_true(const PGresult *res, int column) {
    return !PQgetisnull(res, 0, column) && PQgetvalue(res, 0, column)[0] == 't';
}

static void on_taken(const PGresult *res, const char *error, void *ud) {
    take_request *r = ud;
    take_unlink(r);
    if (error || PQntuples(res) != 1) {
        r->done(PL_ERR, 0, 0, 0, NULL, error ? error : "take session: no answer", r->ud);
    } else {
        int held = is_true(res, 0);
        int64_t turn = PQgetisnull(res, 0, 1) ? 0 : atoll(PQgetvalue(res, 0, 1));
        const char *state = PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3);
        r->done(PL_OK, held, turn, is_true(res, 2), state, NULL, r->ud);
    }
    free(r);
}

typedef struct {
    take_request *request;
    char *why;
} take_failure;

static void fail_take_later(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    take_failure *f = arg;
    f->request->done(PL_ERR, 0, 0, 0, NULL, f->why, f->request->ud);
    free(f->why);
    free(f->request);
    free(f);
}

/* Sends the take on the locker's connection, or fails it from the loop
 * (the connection is down: the caller tries again). */
static void send_take(locker *l, take_request *r, const char *const *params) {
    if (l && pl_pg_exec(l->conn.pg, "take", NULL, 4, params, on_taken, r) == 0) {
        pl_pg_sync(l->conn.pg, NULL, NULL);
        r->next = l->takes;
        if (r->next) r->next->link = &r->next;
        r->link = &l->takes;
        l->takes = r;
        atomic_fetch_add(&round_trips, 1);
        return;
    }
    /* not connected (again): said from the loop, as an answer is */
    take_failure *f = calloc(1, sizeof *f);
    if (!f) abort();
    *f = (take_failure){r, pl_strdup(l ? "the connection that takes sessions is down" : "no loop to take sessions on")};
    if (!l || event_base_once(l->base, -1, EV_TIMEOUT, fail_take_later, f, NULL) != 0) {
        /* without a loop there is nothing to wait for */
        fail_take_later(-1, 0, f);
    }
}

static void pg_session_take(pl_store *handle, const pl_session_key *key, int64_t inbox_id, pl_store_taken_fn done,
                            void *ud) {
    pg_store *store = (pg_store *)handle;
    locker *l = store->locker;
    take_request *r = calloc(1, sizeof *r);
    if (!r) abort();
    *r = (take_request){.done = done, .ud = ud};
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)inbox_id);
    const char *params[] = {key->bot, key->channel, key->user, id};
    if (l && l->epoch == 0) {
        /* the node has just started and its connection is still coming up:
         * the take goes out once it is */
        for (int i = 0; i < 4; i++) r->params[i] = pl_strdup(params[i]);
        *l->parked_end = r;
        l->parked_end = &r->next;
        return;
    }
    send_take(l, r, params);
}

/* The lock goes with the connection that took it; one that dropped took
 * its locks with it. */
static void pg_session_release(pl_store *handle, const pl_session_key *key) {
    pg_store *store = (pg_store *)handle;
    if (!store->locker) return;
    const char *params[] = {key->bot, key->channel, key->user};
    if (pl_pg_exec(store->locker->conn.pg, "release", NULL, 3, params, NULL, NULL) == 0) {
        pl_pg_sync(store->locker->conn.pg, NULL, NULL);
        atomic_fetch_add(&round_trips, 1); /* not waited for, but a trip all the same */
    }
}

static int pg_session_erase(pl_store *handle, const pl_session_key *key, int64_t *found, char **err) {
    /* the session, its transcript, and everything else that holds what the
     * shopper said or will be told: inbound messages, calls to them, jobs,
     * the handoff (the analytics events are the transcript's); then what the merchant's accounts keep,
     * under the pseudonym ($4): the discount codes' uses of their orders (so
     * a once-per-shopper code stays used; a use the pseudonym has of the
     * same code already replaces theirs), and the orders themselves, without
     * the token and the payment link that were the shopper's. In one
     * statement: a WITH's statements all run, on one snapshot (the uses'
     * orders are found by the user they had) */
    pg_store *store = (pg_store *)handle;
    char pseudonym[PL_STORE_PSEUDONYM_LEN + 1];
    *found = 0;
    if (pl_pseudonym_of(handle, key, pseudonym, err) != PL_OK) return PL_ERR;
    return run_integer_later(store, err, "erase session", found, NULL,
                             "WITH s AS (DELETE FROM sessions WHERE " KEY_WHERE " RETURNING 1),"
                             " t AS (DELETE FROM transcript_rows WHERE " KEY_WHERE " RETURNING 1),"
                             " i AS (DELETE FROM inbox WHERE " KEY_WHERE " RETURNING 1),"
                             " o AS (DELETE FROM outbox WHERE " KEY_WHERE " RETURNING 1),"
                             " j AS (DELETE FROM jobs WHERE " KEY_WHERE " RETURNING 1),"
                             " h AS (DELETE FROM handoffs WHERE " KEY_WHERE " RETURNING 1),"
                             " mine AS (SELECT id FROM orders WHERE " KEY_WHERE "),"
                             " du AS (UPDATE discount_uses u SET \"user\" = $4 WHERE bot = $1 AND \"user\" = $3"
                             "  AND order_id IN (SELECT id FROM mine) AND NOT EXISTS (SELECT 1 FROM discount_uses x"
                             "  WHERE x.bot = $1 AND x.code = u.code AND x.\"user\" = $4) RETURNING 1),"
                             " dd AS (DELETE FROM discount_uses u WHERE bot = $1 AND \"user\" = $3"
                             "  AND order_id IN (SELECT id FROM mine) AND EXISTS (SELECT 1 FROM discount_uses x"
                             "  WHERE x.bot = $1 AND x.code = u.code AND x.\"user\" = $4) RETURNING 1),"
                             " r AS (UPDATE orders SET \"user\" = $4, token = '', payment_url = NULL WHERE " KEY_WHERE
                             " RETURNING 1)"
                             " SELECT (EXISTS (SELECT 1 FROM s) OR EXISTS (SELECT 1 FROM t) OR EXISTS (SELECT 1 FROM i)"
                             " OR EXISTS (SELECT 1 FROM o) OR EXISTS (SELECT 1 FROM j) OR EXISTS (SELECT 1 FROM h)"
                             " OR EXISTS (SELECT 1 FROM r))::int",
                             "ssss", key->bot, key->channel, key->user, pseudonym);
}

static int64_t pg_session_count(pl_store *handle) {
    int64_t n = -1;
    run_integer((pg_store *)handle, NULL, "count sessions", &n, -1, "SELECT count(*) FROM sessions", "");
    return n;
}

/* A shopper's message that names its page (the web chat's info.page_url):
 * the page goes on the shopper's open handoff, if any. */
static int keep_page(pg_store *store, const pl_session_key *key, const char *in_json, char **err) {
    if (!in_json || !strstr(in_json, "\"page_url\"")) return PL_OK;
    return run_done(store, err, "keep the shopper's page", NULL,
                    "UPDATE handoffs SET page = json_build_object('url', $4::json #>> '{info,page_url}', "
                    "'title', $4::json #>> '{info,page_title}')::text WHERE " KEY_WHERE " AND state <> 'closed' "
                    "AND $4::json #>> '{info,page_url}' IS NOT NULL",
                    "ssss", key->bot, key->channel, key->user, in_json);
}

static int pg_transcript_add(pl_store *handle, const pl_session_key *key, const char *direction,
                             const char *body_json, int64_t now_ms, char **err) {
    pg_store *store = (pg_store *)handle;
    if (run_done(store, err, "add transcript line", NULL,
                 "INSERT INTO transcript_rows (bot, channel, \"user\", at, direction, body) "
                 "VALUES ($1, $2, $3, $4, $5, $6)",
                 "sssiss", key->bot, key->channel, key->user, now_ms, direction, body_json) != PL_OK)
        return PL_ERR;
    return strcmp(direction, "in") == 0 ? keep_page(store, key, body_json, err) : PL_OK;
}

static int pg_transcript_add_turn(pl_store *handle, const pl_session_key *key, const char *in_json,
                                  int64_t in_at_ms, const char *out_json, int64_t out_at_ms,
                                  const pl_store_events *events, char **err) {
    const pl_store_events none = {0};
    const pl_store_events *e = events && events->names ? events : &none;
    char conv[24];
    snprintf(conv, sizeof conv, "%lld", (long long)e->conv);
    pg_store *store = (pg_store *)handle;
    if (run_done(store, err, "add transcript lines", NULL,
                 "INSERT INTO transcript_rows (bot, channel, \"user\", at, direction, body, reply_at, reply,"
                 " conv, locale, step, names, list) VALUES ($1, $2, $3, $4, 'in', $5, $6, $7, $8, $9, $10, $11, $12)",
                 "sssisisnnnnn", key->bot, key->channel, key->user, in_at_ms, in_json, out_at_ms, out_json,
                 e->names ? conv : NULL, e->locale, e->step, e->names, e->list) != PL_OK)
        return PL_ERR;
    return keep_page(store, key, in_json, err);
}

static int pg_events_read(pl_store *handle, const pl_store_events_query *q, json_t **rows, char **err) {
    static const char *const keys[] = {"#id", "#at", "channel", "user", "#conv", "locale", "step", "names", "list"};
    if (q->user && q->channel)
        return run_rows((pg_store *)handle, err, "read events", keys, 9, rows,
                        "SELECT id, at, channel, \"user\", conv, locale, step, names, list FROM events"
                        " WHERE bot = $1 AND channel = $6 AND \"user\" = $9 AND at >= $2 AND at < $3"
                        " AND (at, id) > ($4, $5) AND ($7::text IS NULL OR coalesce(locale, '') = $7)"
                        " ORDER BY at, id LIMIT $8",
                        "siiiisnis", q->bot, q->from_ms, q->to_ms, q->after_at, q->after_id, q->channel,
                        q->locale, (int64_t)q->limit, q->user);
    return run_rows((pg_store *)handle, err, "read events", keys, 9, rows,
                    "SELECT id, at, channel, \"user\", conv, locale, step, names, list FROM events"
                    " WHERE bot = $1 AND at >= $2 AND at < $3 AND (at, id) > ($4, $5)"
                    " AND ($6::text IS NULL OR channel = $6) AND ($7::text IS NULL OR coalesce(locale, '') = $7)"
                    " ORDER BY at, id LIMIT $8",
                    "siiiinni", q->bot, q->from_ms, q->to_ms, q->after_at, q->after_id, q->channel, q->locale,
                    (int64_t)q->limit);
}

static int pg_events_purge(pl_store *handle, const char *bot, int64_t from_ms, int64_t before_ms, int64_t *removed,
                           char **err) {
    return run_integer((pg_store *)handle, err, "purge events", removed, 0,
                       "WITH d AS (UPDATE transcript_rows SET conv = NULL, locale = NULL, step = NULL, names = NULL,"
                       " list = NULL WHERE ($1::text IS NULL OR bot = $1) AND at >= $2 AND at < $3"
                       " AND names IS NOT NULL RETURNING 1) SELECT count(*) FROM d",
                       "nii", bot, from_ms, before_ms);
}

static int pg_analytics_day_put(pl_store *handle, const char *bot, const char *day, const char *channel,
                                const char *locale, const char *figures_json, char **err) {
    return run_done((pg_store *)handle, err, "keep a day's analytics", NULL,
                    "INSERT INTO analytics_days (bot, day, channel, locale, figures) VALUES ($1, $2, $3, $4, $5)"
                    " ON CONFLICT (bot, day, channel, locale) DO UPDATE SET figures = excluded.figures",
                    "sssss", bot, day, channel, locale ? locale : "", figures_json);
}

static int pg_analytics_days_read(pl_store *handle, const char *bot, const char *from, const char *to,
                                  const char *channel, const char *locale, json_t **rows, char **err) {
    static const char *const keys[] = {"day", "channel", "locale", "@figures"};
    return run_rows((pg_store *)handle, err, "read the days' analytics", keys, 4, rows,
                    "SELECT day, channel, locale, figures FROM analytics_days WHERE bot = $1 AND day >= $2"
                    " AND day <= $3 AND ($4::text IS NULL OR channel = $4) AND ($5::text IS NULL OR locale = $5)"
                    " ORDER BY day, channel, locale",
                    "sssnn", bot, from, to, channel, locale);
}

static int pg_transcript_get(pl_store *handle, const pl_session_key *key, int limit, json_t **lines,
                             char **err) {
    static const char *const keys[] = {"#at", "direction", "@body"};
    return run_rows((pg_store *)handle, err, "read transcript", keys, 3, lines,
                    "SELECT at, direction, body FROM (SELECT id, at, direction, body FROM transcript "
                    "WHERE " KEY_WHERE " ORDER BY id DESC LIMIT $4) latest ORDER BY id",
                    "sssi", key->bot, key->channel, key->user, (int64_t)limit);
}

static int pg_transcript_since(pl_store *handle, const pl_session_key *key, int64_t after_id, int limit,
                               json_t **lines, char **err) {
    static const char *const keys[] = {"#id", "#at", "direction", "@body"};
    return run_rows((pg_store *)handle, err, "read transcript", keys, 4, lines,
                    "SELECT id, at, direction, body FROM transcript WHERE " KEY_WHERE
                    " AND id > $4 ORDER BY id LIMIT $5",
                    "sssii", key->bot, key->channel, key->user, after_id, (int64_t)limit);
}

static int64_t pg_transcript_last_id(pl_store *handle, const pl_session_key *key) {
    int64_t id = 0;
    run_integer((pg_store *)handle, NULL, "last transcript line", &id, 0,
                "SELECT max(id) FROM transcript WHERE " KEY_WHERE, "sss", key->bot, key->channel, key->user);
    return id;
}

static int pg_conversations(pl_store *handle, const char *bot, const char *channel, const char *user, int limit,
                            json_t **list, char **err) {
    static const char *const keys[] = {"channel", "user", "#first_at", "#last_at", "#lines"};
    return run_rows((pg_store *)handle, err, "list conversations", keys, 5, list,
                    "SELECT channel, \"user\", min(at), max(at), count(*) FROM transcript WHERE bot = $1"
                    " AND ($2::text IS NULL OR channel = $2) AND ($3::text IS NULL OR \"user\" = $3)"
                    " GROUP BY channel, \"user\" ORDER BY min(id) LIMIT $4",
                    "snni", bot, channel, user, (int64_t)limit);
}

/* --- handoffs ------------------------------------------------------------------ */

static const char *field(const json_t *o, const char *name) { return json_string_value(json_object_get(o, name)); }

static int pg_handoff_put(pl_store *handle, const pl_session_key *key, const json_t *handoff, int64_t now_ms,
                          char **err) {
    pg_store *store = (pg_store *)handle;
    if (!handoff)
        return run_done(store, err, "record handoff", NULL, "DELETE FROM handoffs WHERE " KEY_WHERE, "sss", key->bot,
                        key->channel, key->user);
    json_t *since = json_object_get(handoff, "since");
    const char *state = field(handoff, "state");
    int closed = state && strcmp(state, "closed") == 0;
    /* a closed row reopens with its new since and the page of now;
     * coalesce takes a number from the sequence only for a shopper who has
     * none */
    return run_done(store, err, "record handoff", NULL,
                    "INSERT INTO handoffs (bot, channel, \"user\", state, reason, agent, since, updated_at, "
                    "display_name, visitor, closed_at, closed_how, page) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
                    "$9, coalesce((SELECT visitor FROM handoffs WHERE " KEY_WHERE "), nextval('handoff_visitors')), "
                    "CASE WHEN $4 = 'closed' THEN $8::bigint END, $10, (" PL_PG_LATEST_PAGE("$1", "$2", "$3") ")) "
                    "ON CONFLICT (bot, channel, \"user\") DO UPDATE SET "
                    "since = CASE WHEN handoffs.state = 'closed' THEN excluded.since ELSE handoffs.since END, "
                    "page = CASE WHEN handoffs.state = 'closed' THEN excluded.page ELSE handoffs.page END, "
                    "state = excluded.state, reason = coalesce(excluded.reason, handoffs.reason), "
                    "agent = excluded.agent, updated_at = excluded.updated_at, "
                    "display_name = coalesce(excluded.display_name, handoffs.display_name), "
                    "visitor = coalesce(handoffs.visitor, excluded.visitor), closed_at = excluded.closed_at, "
                    "closed_how = excluded.closed_how",
                    "ssssnniinn", key->bot, key->channel, key->user, state, field(handoff, "reason"),
                    field(handoff, "agent"), json_is_number(since) ? (int64_t)json_number_value(since) : now_ms,
                    now_ms, field(handoff, "display_name"), closed ? field(handoff, "how") : NULL);
}

static int pg_handoffs(pl_store *handle, json_t **list, char **err) {
    return run_rows((pg_store *)handle, err, "list handoffs", open_keys, KEY_COUNT(open_keys), list,
                    "SELECT h.bot, h.channel, h.\"user\", h.state, h.reason, h.agent, h.since, "
                    /* the last line's time: the newest row's, or its reply's */
                    "(SELECT greatest(t.at, t.reply_at) FROM transcript_rows t WHERE t.bot = h.bot "
                    "AND t.channel = h.channel AND t.\"user\" = h.\"user\" ORDER BY t.id DESC LIMIT 1), "
                    "h.display_name, h.visitor, h.page "
                    "FROM handoffs h WHERE h.state <> 'closed' "
                    "ORDER BY CASE h.state WHEN 'waiting' THEN 0 ELSE 1 END, h.since, h.updated_at, h.visitor",
                    "");
}

/* $2 in the text of a line: a message's, or any reply's of an answer. */
#define LINE_SAYS                                                                                           \
    "((t.direction = 'in' AND t.body::json ->> 'text' ILIKE $2) OR "                                        \
    "(t.direction = 'out' AND json_typeof(t.body::json) = 'array' AND EXISTS (SELECT 1 FROM "              \
    "json_array_elements(t.body::json) r WHERE r ->> 'text' ILIKE $2)))"

/* A search reads the newest $6 closed handoffs only, for at most the
 * budget (statement_timeout, for this transaction only). */
static int pg_handoffs_closed(pl_store *handle, const pl_store_closed_query *q, json_t **list, char **err) {
    pg_store *store = (pg_store *)handle;
    char *pattern = q->search && *q->search ? pl_store_like_pattern(q->search) : NULL;
    int budget = q->budget_ms > 0 ? q->budget_ms : PL_STORE_CLOSED_BUDGET_MS, nested;
    char budget_text[24];
    snprintf(budget_text, sizeof budget_text, "%d", budget);
    if (begin_own(store, &nested, err) != PL_OK) {
        free(pattern);
        return PL_ERR;
    }
    int rc = run_done(store, err, "limit the search's time", NULL,
                      "SELECT set_config('statement_timeout', $1, true)", "s", budget_text);
    if (rc == PL_OK)
        rc = run_rows(store, err, "list closed handoffs", closed_keys, KEY_COUNT(closed_keys), list,
                      "SELECT h.bot, h.channel, h.\"user\", h.reason, h.agent, h.since, h.closed_at, h.closed_how, "
                      "h.display_name, h.visitor FROM (SELECT * FROM handoffs WHERE state = 'closed' "
                      " AND ($1::text IS NULL OR bot = $1::text) ORDER BY closed_at DESC, bot, channel, \"user\" "
                      " LIMIT CASE WHEN $2::text IS NULL THEN NULL ELSE $6::bigint END) h WHERE ($2::text IS NULL "
                      " OR h.display_name ILIKE $2 OR h.\"user\" ILIKE $2 OR h.reason ILIKE $2 "
                      " OR EXISTS (SELECT 1 FROM orders o WHERE o.id = $3::bigint AND o.bot = h.bot "
                      "            AND o.channel = h.channel AND o.\"user\" = h.\"user\") "
                      " OR EXISTS (SELECT 1 FROM transcript t WHERE t.bot = h.bot AND t.channel = h.channel "
                      "            AND t.\"user\" = h.\"user\" AND " LINE_SAYS ")) "
                      "ORDER BY h.closed_at DESC, h.bot, h.channel, h.\"user\" LIMIT $4::bigint OFFSET $5::bigint",
                      "nniiii", q->bot, pattern, q->order_id, (int64_t)q->limit, (int64_t)q->offset,
                      (int64_t)(q->searched > 0 ? q->searched : PL_STORE_CLOSED_SEARCHED));
    int timed_out = rc != PL_OK && strcmp(store->last_state, "57014") == 0;
    rc = end_own(store, nested, rc, err);
    free(pattern);
    if (timed_out) {
        pl_fail(err, "the search ran longer than %d ms", budget);
        return PL_AGAIN;
    }
    return rc;
}

/* --- catalog --------------------------------------------------------------------- */

static int pg_catalog_replace(pl_store *handle, const char *bot, const json_t *products, char **err) {
    pg_store *store = (pg_store *)handle;
    int nested;
    if (begin_own(store, &nested, err) != PL_OK) return PL_ERR;
    /* nodes loading the same bot at once take turns */
    int rc = run_done(store, err, "lock catalog", NULL, "SELECT pg_advisory_xact_lock(hashtextextended('catalog' || chr(31) || $1, 0))", "s", bot);
    if (rc == PL_OK) rc = run_done(store, err, "clear catalog", NULL, "DELETE FROM products WHERE bot = $1", "s", bot);
    /* one statement for the whole catalog: the json type keeps each
     * product's text as it was written */
    char *all = rc == PL_OK ? json_dumps(products, JSON_COMPACT) : NULL;
    if (rc == PL_OK)
        rc = run_done(store, err, "insert products", NULL,
                      "INSERT INTO products (bot, sku, position, data) "
                      "SELECT $1, p ->> 'sku', n - 1, p::text FROM json_array_elements($2::json) "
                      "WITH ORDINALITY AS x(p, n)",
                      "ss", bot, all ? all : "[]");
    free(all);
    return end_own(store, nested, rc, err);
}

static int64_t pg_catalog_count(pl_store *handle, const char *bot) {
    int64_t n = -1;
    run_integer((pg_store *)handle, NULL, "count products", &n, -1, "SELECT count(*) FROM products WHERE bot = $1",
                "s", bot);
    return n;
}

/* --- inbox ----------------------------------------------------------------------- */

/* the platform's id, unique per bot and channel, de-duplicates: a delivery
 * another node recorded first returns no row */
#define INBOX_ADD_SQL                                                                                            \
    "INSERT INTO inbox (bot, channel, platform_id, \"user\", message, received_at) "                            \
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (bot, channel, platform_id) DO NOTHING RETURNING id"

static int pg_inbox_add(pl_store *handle, const char *bot, const char *channel, const char *platform_id,
                        const char *user, const char *message_json, int64_t now_ms, int64_t *id, char **err) {
    return run_integer((pg_store *)handle, err, "record inbound message", id, 0, INBOX_ADD_SQL, "sssssi", bot, channel,
                       platform_id, user, message_json, now_ms);
}

static int pg_inbox_record(pl_store *handle, const char *bot, const char *channel, const char *platform_id,
                           const char *user, const char *message_json, int64_t now_ms, int64_t *id, char **err) {
    *id = 0; /* a retry another node recorded first returns no row */
    return run_integer_later((pg_store *)handle, err, "record inbound message", id, NULL, INBOX_ADD_SQL, "sssssi", bot,
                             channel, platform_id, user, message_json, now_ms);
}

/* One statement: the call's row only when the inbox row is new; both ids
 * come with the batch's outcome. */
static int pg_inbox_record_answered(pl_store *handle, const char *bot, const char *channel, const char *platform_id,
                                    const char *user, const char *message_json, int64_t now_ms, const char *call_json,
                                    int64_t *id, int64_t *call_id, char **err) {
    pg_store *store = (pg_store *)handle;
    *id = *call_id = 0;
    return run_integer_later(store, err, "record inbound message", id, call_id,
                              "WITH fresh AS (" INBOX_ADD_SQL "), "
                              "answer AS (INSERT INTO outbox (bot, channel, \"user\", call, next_at, created_at, owner, "
                              "lease_until) SELECT $1, $2, $4, $7, $6, $6, $8, " LEASE_UNTIL("$8", "$9")
                              " FROM fresh RETURNING id) "
                              "SELECT (SELECT id FROM fresh), (SELECT id FROM answer)",
                              "sssssisni", bot, channel, platform_id, user, message_json, now_ms, call_json,
                              store->owner, store->lease_ms);
}

/* One statement, nothing to read: the transcript line only when the inbox
 * row is new. */
static int pg_status_record(pl_store *handle, const char *bot, const char *channel, const char *platform_id,
                            const char *user, const char *event_json, int64_t now_ms, char **err) {
    return run_done((pg_store *)handle, err, "record a status", NULL,
                    "WITH fresh AS (INSERT INTO inbox (bot, channel, platform_id, \"user\", message, received_at, "
                    "done_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (bot, channel, platform_id) DO NOTHING "
                    "RETURNING id) INSERT INTO transcript_rows (bot, channel, \"user\", at, direction, body) "
                    "SELECT $1, $2, $4, $6, 'status', $5 FROM fresh",
                    "sssssi", bot, channel, platform_id, user, event_json, now_ms);
}

static int pg_inbox_done(pl_store *handle, int64_t id, int64_t now_ms, char **err) {
    return run_done((pg_store *)handle, err, "mark inbound message handled", NULL,
                    "UPDATE inbox SET done_at = $2 WHERE id = $1", "ii", id, now_ms);
}

static int pg_inbox_next_seq(pl_store *handle, const char *bot, const char *channel, const char *prefix,
                             int64_t *seq, char **err) {
    pg_store *store = (pg_store *)handle;
    size_t n = strlen(prefix);
    /* the ids after the prefix sort below the prefix with its last byte
     * raised, byte by byte whatever the database's collation */
    char *above = pl_strdup(prefix);
    if (n) above[n - 1]++;
    char *last = NULL;
    int rc = run_text(store, err, "read event sequence", &last,
                      "SELECT max(platform_id COLLATE \"C\") FROM inbox WHERE bot = $1 AND channel = $2 "
                      "AND platform_id COLLATE \"C\" > $3 AND platform_id COLLATE \"C\" < $4",
                      "ssss", bot, channel, prefix, above);
    free(above);
    if (rc != PL_OK) return PL_ERR;
    *seq = (last ? strtoll(last + n, NULL, 10) : 0) + 1;
    free(last);
    return PL_OK;
}

static int pg_inbox_pending(pl_store *handle, int64_t received_before, json_t **rows, char **err) {
    static const char *const keys[] = {"#id", "bot", "channel", "user", "@message"};
    return run_rows((pg_store *)handle, err, "list inbound messages", keys, 5, rows,
                    "SELECT id, bot, channel, \"user\", message FROM inbox WHERE done_at IS NULL AND received_at < $1 "
                    "ORDER BY id",
                    "i", received_before);
}

static int pg_inbox_prune(pl_store *handle, int64_t before_ms, char **err) {
    return run_done((pg_store *)handle, err, "prune inbox", NULL,
                    "DELETE FROM inbox WHERE done_at IS NOT NULL AND done_at < $1", "i", before_ms);
}

/* --- outbox ------------------------------------------------------------------------ */

static void pg_set_owner(pl_store *handle, const char *owner, int64_t lease_ms) {
    pg_store *store = (pg_store *)handle;
    free(store->owner);
    store->owner = owner ? pl_strdup(owner) : NULL;
    store->lease_ms = lease_ms;
}


static int pg_outbox_add(pl_store *handle, const char *bot, const char *channel, const char *user,
                         const char *call_json, int64_t now_ms, int64_t *id, char **err) {
    pg_store *store = (pg_store *)handle;
    *id = 0;
    return run_integer_later(store, err, "queue outgoing message", id, NULL,
                       "INSERT INTO outbox (bot, channel, \"user\", call, next_at, created_at, owner, lease_until) "
                       "VALUES ($1, $2, $3, $4, $5, $5, $6, " LEASE_UNTIL("$6", "$7") ") RETURNING id",
                       "ssssini", bot, channel, user, call_json, now_ms, store->owner, store->lease_ms);
}

/* Takes the calls no live node holds: nobody's, or whose lease lapsed
 * (row locks keep two nodes claiming at once from taking the same); and
 * gives back this node's own once they are a lease old, for the caller to
 * keep those it does not have (a commit whose outcome was lost). */
static int pg_outbox_pending(pl_store *handle, json_t **rows, char **err) {
    pg_store *store = (pg_store *)handle;
    static const char *const keys[] = {"#id", "bot", "channel", "user", "@call", "#attempts", "#next_at"};
    return run_rows(store, err, "claim outgoing messages", keys, 7, rows,
                    "WITH claimed AS (UPDATE outbox SET owner = $1,"
                    " lease_until = " LEASE_UNTIL("$1", "$2")
                    " WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND ($1::text IS NULL"
                    " OR owner IS NULL OR lease_until < " DB_NOW_MS
                    " OR (owner = $1 AND created_at < $3::bigint - $2::bigint)) ORDER BY id FOR UPDATE SKIP LOCKED)"
                    " RETURNING id, bot, channel, \"user\", call, attempts, next_at)"
                    " SELECT * FROM claimed ORDER BY id",
                    "nii", store->owner, store->lease_ms, pl_now_ms());
}

static int pg_outbox_renew(pl_store *handle, int release, char **err) {
    pg_store *store = (pg_store *)handle;
    if (!store->owner) return PL_OK;
    return run_done(store, err, "renew outgoing messages", NULL,
                    "UPDATE outbox SET lease_until = CASE WHEN $2::boolean THEN 0 ELSE " DB_NOW_MS " + $3::bigint END "
                    "WHERE owner = $1 AND state = 'pending'",
                    "ssi", store->owner, release ? "true" : "false", store->lease_ms);
}

static int pg_outbox_update(pl_store *handle, int64_t id, const char *state, int attempts, int64_t next_at_ms,
                            const char *error, int64_t now_ms, char **err) {
    return run_done((pg_store *)handle, err, "update outgoing message", NULL,
                    "UPDATE outbox SET state = $2::text, attempts = $3, next_at = $4, last_error = $5, "
                    "sent_at = CASE WHEN $2::text = 'sent' THEN $6::bigint END WHERE id = $1",
                    "isiini", id, state, (int64_t)attempts, next_at_ms, error, now_ms);
}

static int pg_outbox_earlier(pl_store *handle, const char *bot, const char *channel, const char *user, int64_t id,
                             int *waiting, char **err) {
    pg_store *store = (pg_store *)handle;
    int64_t n = 0;
    *waiting = 0;
    if (!store->owner) return PL_OK; /* the only node */
    int rc = run_integer(store, err, "order outgoing messages", &n, 0,
                         "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE state = 'pending' AND id < $4 AND bot = $1 "
                         "AND channel = $2 AND \"user\" = $3 AND owner IS DISTINCT FROM $5 LIMIT 1) earlier",
                         "sssis", bot, channel, user, id, store->owner);
    *waiting = n > 0;
    return rc;
}

static int pg_outbox_count(pl_store *handle, const char *bot, const char *state, int64_t *n, char **err) {
    return run_integer((pg_store *)handle, err, "count outbox", n, 0,
                       "SELECT count(*) FROM outbox WHERE state = $1 AND ($2::text IS NULL OR bot = $2)", "sn",
                       state, bot);
}

/* --- orders ------------------------------------------------------------------------- */

#define ORDER_COLUMNS                                                                          \
    "id, bot, channel, \"user\", state, fulfilment, tracking_url, currency, subtotal, discount, " \
    "total, discount_code, lines, provider, provider_ref, payment_ref, payment_url, token, "   \
    "created_at, updated_at, paid_at"

static const char *const order_keys[] = {"#id",          "bot",         "channel",     "user",        "state",
                                         "fulfilment",   "tracking_url", "currency",   "#subtotal",   "#discount",
                                         "#total",       "discount_code", "@lines",    "provider",    "provider_ref",
                                         "payment_ref",  "payment_url", "token",       "#created_at", "#updated_at",
                                         "#paid_at"};
#define ORDER_KEYS ((int)(sizeof order_keys / sizeof *order_keys))

static int pg_order_create(pl_store *handle, const json_t *o, int64_t now_ms, int64_t *id, char **err) {
    char *lines = json_dumps(json_object_get(o, "lines"), JSON_COMPACT);
#define S(k) json_string_value(json_object_get(o, k))
#define I(k) (int64_t)json_integer_value(json_object_get(o, k))
    int rc = run_integer((pg_store *)handle, err, "create order", id, 0,
                         "INSERT INTO orders (bot, channel, \"user\", state, currency, subtotal, discount, total, "
                         "discount_code, lines, provider, token, created_at, updated_at) "
                         "VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING id",
                         "ssssiiinsssi", S("bot"), S("channel"), S("user"), S("currency"), I("subtotal"),
                         I("discount"), I("total"), S("discount_code"), lines, S("provider"), S("token"), now_ms);
#undef S
#undef I
    free(lines);
    return rc;
}

static int pg_order_get(pl_store *handle, const char *bot, int64_t id, json_t **order, char **err) {
    json_t *rows = NULL;
    *order = NULL;
    if (run_rows((pg_store *)handle, err, "read order", order_keys, ORDER_KEYS, &rows,
                 "SELECT " ORDER_COLUMNS " FROM orders WHERE id = $1 AND bot = $2", "is", id, bot) != PL_OK)
        return PL_ERR;
    if (json_array_size(rows)) *order = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return PL_OK;
}

static int pg_orders_of(pl_store *handle, const char *bot, const char *channel, const char *user, int limit,
                        json_t **orders, char **err) {
    return run_rows((pg_store *)handle, err, "list orders", order_keys, ORDER_KEYS, orders,
                    "SELECT " ORDER_COLUMNS " FROM orders WHERE bot = $1 AND \"user\" = $2 "
                    "AND ($3::text IS NULL OR channel = $3) ORDER BY id DESC LIMIT $4",
                    "ssni", bot, user, channel, (int64_t)limit);
}

static int pg_order_set_link(pl_store *handle, int64_t id, const char *provider_ref, const char *payment_url,
                             int64_t now_ms, char **err) {
    return run_done((pg_store *)handle, err, "store payment link", NULL,
                    "UPDATE orders SET provider_ref = $2, payment_url = $3, updated_at = $4 WHERE id = $1", "inni",
                    id, provider_ref, payment_url, now_ms);
}

static int pg_order_transition(pl_store *handle, int64_t id, const char *from, const char *to,
                               const char *payment_ref, int64_t now_ms, int *changed, char **err) {
    /* the state in `from` is the condition: of two nodes confirming one
     * payment at once, the second finds the row changed and changes nothing */
    return run_done((pg_store *)handle, err, "update order", changed,
                    "UPDATE orders SET state = $3::text, payment_ref = coalesce($4, payment_ref), updated_at = $5, "
                    "paid_at = CASE WHEN $3::text = 'paid' THEN $5::bigint ELSE paid_at END "
                    "WHERE id = $1 AND state = ANY (string_to_array($2, ','))",
                    "issni", id, from, to, payment_ref, now_ms);
}

static int pg_order_fulfilment(pl_store *handle, int64_t id, const char *status, const char *tracking_url,
                               int64_t now_ms, char **err) {
    return run_done((pg_store *)handle, err, "update order status", NULL,
                    "UPDATE orders SET fulfilment = $2, tracking_url = coalesce($3, tracking_url), updated_at = $4 "
                    "WHERE id = $1",
                    "isni", id, status, tracking_url, now_ms);
}

static int pg_order_by_ref(pl_store *handle, const char *bot, const char *ref, int64_t *id, char **err) {
    return run_integer((pg_store *)handle, err, "find order", id, 0,
                       "SELECT id FROM orders WHERE bot = $1 AND (provider_ref = $2 OR payment_ref = $2) "
                       "ORDER BY id LIMIT 1",
                       "ss", bot, ref);
}

/* --- shoppers: export and retention ---------------------------------------------- */

/* An export's lists (store_backend.h): in this backend's SQL, $1..$3 the
 * shopper and $4 the limit of a bounded list. */

#define LATEST(columns, table)                                                                                \
    "SELECT " columns " FROM (SELECT " columns " FROM " table " WHERE " KEY_WHERE " ORDER BY id DESC LIMIT $4)" \
    " latest ORDER BY id"
#define KEYS(k) k, (int)(sizeof k / sizeof *k)

static const export_list export_lists[] = {
    {"transcript", LATEST("id, at, direction, body", "transcript"), "SELECT count(*) FROM transcript WHERE " KEY_WHERE,
     KEYS(transcript_keys)},
    {"orders", "SELECT " ORDER_COLUMNS " FROM orders WHERE " KEY_WHERE " ORDER BY id", NULL, order_keys, ORDER_KEYS},
    {"events", LATEST("id, at, conv, locale, step, list, names", "events"), "SELECT count(*) FROM events WHERE " KEY_WHERE,
     KEYS(event_keys)},
    {"jobs", LATEST("id, name, state, data, fire_at, created_at, fired_at", "jobs"),
     "SELECT count(*) FROM jobs WHERE " KEY_WHERE, KEYS(job_keys)},
    {"handoff",
     "SELECT state, reason, agent, since, updated_at, display_name, visitor, closed_at, closed_how, page FROM handoffs "
     "WHERE " KEY_WHERE,
     NULL,
     KEYS(handoff_keys)},
    {"inbox", LATEST("id, platform_id, message, received_at, done_at", "inbox"),
     "SELECT count(*) FROM inbox WHERE " KEY_WHERE, KEYS(inbox_keys)},
    {"outbox", LATEST("id, state, attempts, call, created_at, sent_at", "outbox"),
     "SELECT count(*) FROM outbox WHERE " KEY_WHERE, KEYS(outbox_keys)},
    /* the uses of the codes of this shopper's orders (a use names no channel) */
    {"discount_uses",
     "SELECT d.code, d.order_id, d.used_at FROM discount_uses d JOIN orders o ON o.id = d.order_id "
     "WHERE d.bot = $1 AND d.\"user\" = $3 AND o.bot = $1 AND o.channel = $2 AND o.\"user\" = $3 "
     "ORDER BY d.used_at, d.code",
     NULL, KEYS(use_keys)},
};

static int export_all(pg_store *store, const pl_session_key *key, int limit, json_t *out, int *found, char **err) {
    char *state = NULL;
    if (run_text(store, err, "export the session", &state, "SELECT state FROM sessions WHERE " KEY_WHERE, "sss",
                 key->bot, key->channel, key->user) != PL_OK)
        return PL_ERR;
    json_t *session = state ? json_loads(state, 0, NULL) : NULL;
    free(state);
    *found = session != NULL;
    json_object_set_new(out, "session", session ? session : json_null());
    /* the counts of what the limit left out, last */
    json_t *omitted = json_object();
    for (size_t i = 0; i < sizeof export_lists / sizeof *export_lists; i++) {
        const export_list *l = &export_lists[i];
        json_t *rows = NULL;
        int rc = l->count ? run_rows(store, err, "export", l->keys, l->nkeys, &rows, l->sql, "sssi", key->bot,
                                     key->channel, key->user, (int64_t)limit)
                          : run_rows(store, err, "export", l->keys, l->nkeys, &rows, l->sql, "sss", key->bot,
                                     key->channel, key->user);
        if (rc != PL_OK) {
            json_decref(omitted);
            return PL_ERR;
        }
        *found = *found || json_array_size(rows) > 0;
        int64_t all = 0;
        if (l->count && json_array_size(rows) >= (size_t)limit &&
            run_integer(store, err, "export", &all, 0, l->count, "sss", key->bot, key->channel, key->user) != PL_OK) {
            json_decref(rows);
            json_decref(omitted);
            return PL_ERR;
        }
        if (l->count) json_object_set_new(omitted, l->name, json_integer(all > limit ? all - limit : 0));
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

static int pg_shopper_export(pl_store *handle, const pl_session_key *key, int limit, json_t **doc, char **err) {
    pg_store *store = (pg_store *)handle;
    *doc = NULL;
    if (store->in_batch) return pl_fail(err, "store: export: a batch is open");
    /* one snapshot, unless the caller's transaction is the snapshot */
    int own = !store->main_open;
    if (own && run_done(store, err, "export", NULL, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "") != PL_OK)
        return PL_ERR;
    if (own) store->main_open = 1;
    json_t *out = json_object();
    int found = 0;
    int rc = export_all(store, key, limit > 0 ? limit : 1, out, &found, err);
    if (own) {
        if (rc == PL_OK) rc = run_done(store, err, "export", NULL, "COMMIT", "");
        else if (PQstatus(store->main.conn) == CONNECTION_OK) PQclear(PQexec(store->main.conn, "ROLLBACK"));
        store->main_open = 0;
    }
    if (rc == PL_OK && found) *doc = out;
    else json_decref(out);
    return rc;
}

static int pg_purge_before(pl_store *handle, const char *bot, pl_store_purge_kind kind, int64_t before_ms, int limit,
                           int64_t *removed, char **err) {
    static const char *const sql[] = {
        [PL_PURGE_TRANSCRIPT] = "WITH d AS (DELETE FROM transcript_rows WHERE id IN (SELECT id FROM transcript_rows "
                                "WHERE bot = $1 AND at < $2 LIMIT $3) RETURNING 1) SELECT count(*) FROM d",
        [PL_PURGE_INBOX] = "WITH d AS (DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE bot = $1 "
                           "AND received_at < $2 AND done_at IS NOT NULL LIMIT $3) RETURNING 1) SELECT count(*) FROM d",
        [PL_PURGE_OUTBOX] = "WITH d AS (DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE bot = $1 "
                            "AND created_at < $2 AND state <> 'pending' LIMIT $3) RETURNING 1) SELECT count(*) FROM d",
        [PL_PURGE_CLOSED_HANDOFFS] = "WITH d AS (DELETE FROM handoffs WHERE (bot, channel, \"user\") IN (SELECT bot, "
                                     "channel, \"user\" FROM handoffs WHERE bot = $1 AND state = 'closed' "
                                     "AND closed_at < $2 LIMIT $3) RETURNING 1) SELECT count(*) FROM d",
    };
    *removed = 0;
    if ((unsigned)kind >= sizeof sql / sizeof *sql) return pl_fail(err, "store: nothing to purge of kind %d", kind);
    return run_integer((pg_store *)handle, err, "purge", removed, 0, sql[kind], "sii", bot, before_ms, (int64_t)limit);
}

/* --- discounts ----------------------------------------------------------------------- */

static int pg_discount_used(pl_store *handle, const char *bot, const char *code, const char *user, int *used,
                            char **err) {
    int64_t n = 0;
    int rc = run_integer((pg_store *)handle, err, "check discount", &n, 0,
                         "SELECT count(*) FROM discount_uses WHERE bot = $1 AND code = $2 AND \"user\" = $3", "sss",
                         bot, code, user);
    *used = n > 0;
    return rc;
}

static int pg_discount_use(pl_store *handle, const char *bot, const char *code, const char *user,
                           int64_t order_id, int64_t now_ms, int *fresh, char **err) {
    return run_done((pg_store *)handle, err, "record discount", fresh,
                    "INSERT INTO discount_uses (bot, code, \"user\", order_id, used_at) VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT DO NOTHING",
                    "sssii", bot, code, user, order_id, now_ms);
}

/* --- stock ----------------------------------------------------------------------------- */

static int pg_stock_sync(pl_store *handle, const char *bot, const json_t *catalog_stock, json_t **remaining,
                         char **err) {
    pg_store *store = (pg_store *)handle;
    int nested;
    if (begin_own(store, &nested, err) != PL_OK) return PL_ERR;
    const char *key;
    json_t *v;
    /* nodes loading the same bot at once take turns */
    int rc = run_done(store, err, "lock stock", NULL, "SELECT pg_advisory_xact_lock(hashtextextended('stock' || chr(31) || $1, 0))", "s", bot);
    json_object_foreach((json_t *)catalog_stock, key, v) {
        if (rc != PL_OK) break;
        rc = run_done(store, err, "sync stock", NULL,
                      "INSERT INTO stock (bot, key, remaining, catalog_stock) VALUES ($1, $2, $3, $3) "
                      "ON CONFLICT (bot, key) DO UPDATE SET remaining = excluded.remaining, "
                      "catalog_stock = excluded.catalog_stock WHERE stock.catalog_stock <> excluded.catalog_stock",
                      "ssi", bot, key, (int64_t)json_integer_value(v));
    }
    /* what remains, and the keys the catalog no longer has */
    static const char *const keys[] = {"key", "#remaining"};
    json_t *rows = NULL, *out = json_object();
    if (rc == PL_OK)
        rc = run_rows(store, err, "sync stock", keys, 2, &rows, "SELECT key, remaining FROM stock WHERE bot = $1",
                      "s", bot);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *k = json_string_value(json_object_get(row, "key"));
        if (json_object_get(catalog_stock, k)) json_object_set(out, k, json_object_get(row, "remaining"));
        else if (rc == PL_OK)
            rc = run_done(store, err, "sync stock", NULL, "DELETE FROM stock WHERE bot = $1 AND key = $2", "ss", bot,
                          k);
    }
    json_decref(rows);
    rc = end_own(store, nested, rc, err);
    if (rc != PL_OK) {
        json_decref(out);
        return PL_ERR;
    }
    *remaining = out;
    return PL_OK;
}

static int pg_stock_take(pl_store *handle, const char *bot, const char *key, int64_t qty, int64_t *left,
                         int *tracked, char **err) {
    static const char *const keys[] = {"#remaining"};
    json_t *rows = NULL;
    if (run_rows((pg_store *)handle, err, "take stock", keys, 1, &rows,
                 "UPDATE stock SET remaining = remaining - $3 WHERE bot = $1 AND key = $2 RETURNING remaining", "ssi",
                 bot, key, qty) != PL_OK)
        return PL_ERR;
    *tracked = json_array_size(rows) > 0;
    *left = *tracked ? (int64_t)json_integer_value(json_object_get(json_array_get(rows, 0), "remaining")) : 0;
    json_decref(rows);
    return PL_OK;
}

/* --- jobs --------------------------------------------------------------------------------- */

static int pg_job_put(pl_store *handle, const char *bot, const char *channel, const char *user, const char *name,
                      const char *data_json, int64_t fire_at_ms, int64_t now_ms, char **err) {
    return run_done((pg_store *)handle, err, "schedule job", NULL,
                    "INSERT INTO jobs (bot, channel, \"user\", name, data, fire_at, created_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7) "
                    "ON CONFLICT (bot, channel, \"user\", name) WHERE state = 'pending' "
                    "DO UPDATE SET data = excluded.data, fire_at = excluded.fire_at",
                    "sssssii", bot, channel, user, name, data_json, fire_at_ms, now_ms);
}

static int pg_job_cancel(pl_store *handle, const char *bot, const char *channel, const char *user,
                         const char *name, int *found, char **err) {
    return run_done((pg_store *)handle, err, "cancel job", found,
                    "UPDATE jobs SET state = 'cancelled' WHERE " KEY_WHERE " AND name = $4 AND state = 'pending'",
                    "ssss", bot, channel, user, name);
}

static int pg_job_next(pl_store *handle, int64_t *fire_at_ms, char **err) {
    return run_integer((pg_store *)handle, err, "next job", fire_at_ms, -1,
                       "SELECT min(fire_at) FROM jobs WHERE state = 'pending'", "");
}

static int pg_jobs_due(pl_store *handle, int64_t now_ms, int limit, json_t **jobs, char **err) {
    static const char *const keys[] = {"#id", "bot", "channel", "user", "name", "@data", "#fire_at"};
    return run_rows((pg_store *)handle, err, "list due jobs", keys, 7, jobs,
                    "SELECT id, bot, channel, \"user\", name, data, fire_at FROM jobs "
                    "WHERE state = 'pending' AND fire_at <= $1 ORDER BY fire_at, id LIMIT $2",
                    "ii", now_ms, (int64_t)limit);
}

/* A job another node is firing right now (its row locked by that node's
 * transaction) is skipped, not waited for: that node fires it, or, if it
 * dies first, its rollback leaves the job pending for the next look. */
static int pg_job_fired(pl_store *handle, int64_t id, int64_t now_ms, int *changed, char **err) {
    return run_done((pg_store *)handle, err, "fire job", changed,
                    "UPDATE jobs SET state = 'fired', fired_at = $2 WHERE id = (SELECT id FROM jobs WHERE id = $1 "
                    "AND state = 'pending' FOR UPDATE SKIP LOCKED)",
                    "ii", id, now_ms);
}

static int pg_jobs_of(pl_store *handle, const char *bot, const char *channel, const char *user, json_t **jobs,
                      char **err) {
    static const char *const keys[] = {"name", "#fire_at", "@data"};
    return run_rows((pg_store *)handle, err, "list jobs", keys, 3, jobs,
                    "SELECT name, fire_at, data FROM jobs WHERE " KEY_WHERE " AND state = 'pending' ORDER BY fire_at",
                    "sss", bot, channel, user);
}

/* --- payload map --------------------------------------------------------------------------- */

static int pg_payload_put(pl_store *handle, const char *bot, const char *key, const char *payload, char **err) {
    return run_done((pg_store *)handle, err, "map payload", NULL,
                    "INSERT INTO payload_map (bot, key, payload) VALUES ($1, $2, $3) "
                    "ON CONFLICT (bot, key) DO UPDATE SET payload = excluded.payload",
                    "sss", bot, key, payload);
}

static int pg_payload_get(pl_store *handle, const char *bot, const char *key, char **payload, char **err) {
    return run_text((pg_store *)handle, err, "look up payload", payload,
                    "SELECT payload FROM payload_map WHERE bot = $1 AND key = $2", "ss", bot, key);
}

/* --- what other nodes committed: LISTEN / NOTIFY ------------------------------ */

#define CHANNEL "parley_lines"

/* A payload: owner \x1f bot \x1f channel \x1f user \x1f handoff (0/1). */
static int pg_announce(pl_store *handle, const pl_session_key *key, int handoff, char **err) {
    pg_store *store = (pg_store *)handle;
    if (!store->owner) return PL_OK; /* the only node */
    char *payload = pl_strdupf("%s\x1f%s\x1f%s\x1f%s\x1f%d", store->owner, key->bot, key->channel, key->user,
                               handoff ? 1 : 0);
    int rc = run_done(store, err, "announce", NULL, "SELECT pg_notify('" CHANNEL "', $1)", "s", payload);
    free(payload);
    return rc;
}

typedef struct listener {
    pg_store *store;
    pl_store_heard_fn heard;
    void *ud;
    loop_conn conn;
} listener;

static void heard_notify(const char *channel, const char *payload, void *ud) {
    listener *l = ud;
    (void)channel;
    char *copy = pl_strdup(payload ? payload : "");
    char *field[5] = {0};
    int n = 0;
    for (char *p = copy, *next; n < 5 && p; p = next) {
        next = strchr(p, '\x1f');
        if (next) *next++ = 0;
        field[n++] = p;
    }
    /* a commit of this node's own was heard of from the pipeline already */
    if (n == 5 && !(l->store->owner && strcmp(field[0], l->store->owner) == 0)) {
        pl_session_key key = {field[1], field[2], field[3]};
        l->heard(&key, strcmp(field[4], "1") == 0, l->ud);
    }
    free(copy);
}

static void on_listen_result(const PGresult *res, const char *error, void *ud) {
    (void)res;
    (void)ud;
    if (error) pl_warn("store: LISTEN %s: %s", CHANNEL, error);
}

static void listener_up(pl_pg *pg, void *ud) {
    pl_pg_exec(pg, NULL, "LISTEN " CHANNEL, 0, NULL, on_listen_result, ud);
    pl_pg_sync(pg, NULL, NULL);
}

static void listener_free(listener *l) {
    if (!l) return;
    loop_conn_close(&l->conn);
    free(l);
}

static int pg_listen(pl_store *handle, struct event_base *base, pl_store_heard_fn heard, void *ud, char **err) {
    pg_store *store = (pg_store *)handle;
    listener_free(store->listener);
    store->listener = NULL;
    listener *l = calloc(1, sizeof *l);
    if (!l) abort();
    *l = (listener){.store = store, .heard = heard, .ud = ud};
    if (loop_conn_open(&l->conn, base, store->url, "hearing other nodes' commits", listener_up, l, err) != PL_OK) {
        free(l);
        return PL_ERR;
    }
    pl_pg_on_notify(l->conn.pg, heard_notify, l);
    store->listener = l;
    return PL_OK;
}

static const pl_store_backend pg_backend = {
    .name = "postgresql",
    .shared = 1,
    .set_owner = pg_set_owner,
    .outbox_renew = pg_outbox_renew,
    .round_trips = pg_round_trips,
    .announce = pg_announce,
    .listen = pg_listen,
    .close = pg_close,
    .path = pg_path,
    .defer_sync = pg_defer_sync,
    .commits = pg_commits,
    .wal_frames = pg_wal_frames,
    .ping = pg_ping,
    .schema_version = pg_schema_version,
    .read_figures = pg_read_figures,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .begin_batch = pg_begin_batch,
    .commit_batch = pg_commit_batch,
    .batch_fd = pg_batch_fd,
    .batch_poll = pg_batch_poll,
    .session_get = pg_session_get,
    .session_put = pg_session_put,
    .session_take = pg_session_take,
    .use_loop = pg_use_loop,
    .session_release = pg_session_release,
    .session_epoch = pg_session_epoch,
    .session_erase = pg_session_erase,
    .session_count = pg_session_count,
    .transcript_add = pg_transcript_add,
    .transcript_add_turn = pg_transcript_add_turn,
    .pseudonym_key = pg_pseudonym_key,
    .shopper_export = pg_shopper_export,
    .purge_before = pg_purge_before,
    .events_read = pg_events_read,
    .analytics_day_put = pg_analytics_day_put,
    .analytics_days_read = pg_analytics_days_read,
    .events_purge = pg_events_purge,
    .transcript_get = pg_transcript_get,
    .transcript_since = pg_transcript_since,
    .transcript_last_id = pg_transcript_last_id,
    .conversations = pg_conversations,
    .handoff_put = pg_handoff_put,
    .handoffs = pg_handoffs,
    .handoffs_closed = pg_handoffs_closed,
    .catalog_replace = pg_catalog_replace,
    .catalog_count = pg_catalog_count,
    .inbox_add = pg_inbox_add,
    .inbox_done = pg_inbox_done,
    .inbox_record = pg_inbox_record,
    .inbox_record_answered = pg_inbox_record_answered,
    .status_record = pg_status_record,
    .inbox_next_seq = pg_inbox_next_seq,
    .inbox_pending = pg_inbox_pending,
    .inbox_prune = pg_inbox_prune,
    .outbox_add = pg_outbox_add,
    .outbox_pending = pg_outbox_pending,
    .outbox_update = pg_outbox_update,
    .outbox_count = pg_outbox_count,
    .outbox_earlier = pg_outbox_earlier,
    .order_create = pg_order_create,
    .order_get = pg_order_get,
    .orders_of = pg_orders_of,
    .order_set_link = pg_order_set_link,
    .order_transition = pg_order_transition,
    .order_fulfilment = pg_order_fulfilment,
    .order_by_ref = pg_order_by_ref,
    .discount_used = pg_discount_used,
    .discount_use = pg_discount_use,
    .stock_sync = pg_stock_sync,
    .stock_take = pg_stock_take,
    .job_put = pg_job_put,
    .job_cancel = pg_job_cancel,
    .job_next = pg_job_next,
    .jobs_due = pg_jobs_due,
    .job_fired = pg_job_fired,
    .jobs_of = pg_jobs_of,
    .payload_put = pg_payload_put,
    .payload_get = pg_payload_get,
};
