/* pg_schema: the store's schema on PostgreSQL — the same numbered
 * migrations as on SQLite (store.c), written in PostgreSQL's dialect, and
 * the step that applies them through a pl_pg connection when a node starts.
 * Nodes that start at once take turns: the check and the migrations run in
 * one transaction under a transaction-level advisory lock, so each
 * migration is applied once, whole or not at all. */
#ifndef PL_PG_SCHEMA_H
#define PL_PG_SCHEMA_H

#include "pg.h"

/* The page ({"url", "title"} as JSON text) of the newest of a shopper's
 * latest 20 messages that named one (the web chat's info.page_url), or
 * NULL: what an open handoff's row keeps (migration 12). */
#define PL_PG_LATEST_PAGE(bot, channel, user)                                                                \
    "SELECT json_build_object('url', t.body::json #>> '{info,page_url}', "                                  \
    "'title', t.body::json #>> '{info,page_title}')::text FROM (SELECT id, body FROM transcript_rows "       \
    "WHERE bot = " bot " AND channel = " channel " AND \"user\" = " user " AND direction = 'in' "           \
    "ORDER BY id DESC LIMIT 20) t WHERE t.body::json #>> '{info,page_url}' IS NOT NULL "                    \
    "ORDER BY t.id DESC LIMIT 1"

/* How many migrations there are: the schema version they lead to. */
int pl_pg_schema_latest(void);

/* The schema is at version (error NULL), or could not be brought there
 * (version -1 and error: which migration failed and the server's reason). */
typedef void (*pl_pg_migrated_fn)(int version, const char *error, void *ud);

/* Applies the migrations the database lacks, on pg (up, and with nothing
 * else in flight); done is called once, from the loop, never from inside
 * this call. now_ms is recorded as each migration's time. A node waits up
 * to a minute for another that is migrating the same database. */
void pl_pg_migrate(pl_pg *pg, long long now_ms, pl_pg_migrated_fn done, void *ud);

#endif
