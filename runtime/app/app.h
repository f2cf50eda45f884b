/* app: what `serve`, `chat` and `test` share — the event loop, the store,
 * the bots with their first load, the pipeline, and hot reload wired to the
 * watcher (applied before the next turn, reported to the log and to an
 * optional listener). */
#ifndef PL_APP_H
#define PL_APP_H

#include <event2/event.h>

#include "channels/outbox.h"
#include "core/bot.h"
#include "core/pipeline.h"
#include "event/http_client.h"
#include "event/watch.h"
#include "store/store.h"

typedef struct pl_app pl_app;

/* Told about every load after the first: ok, and the errors or warnings. */
typedef void (*pl_reload_fn)(pl_bot *bot, int ok, const char *changed, const pl_errors *errors,
                             void *ud);

typedef struct {
    const char *db_path;  /* ":memory:" for tests */
    pl_store_sync sync;
    char **bot_dirs;
    size_t nbots;
    int watch;            /* hot reload on */
    const char *public_url; /* how the world reaches this server (payment links) */
    size_t threads;       /* threads at work: 0 or 1, the loop runs turns too; N > 1,
                           * the loop and N - 1 turn threads (workers.h) */
    const char *node;     /* this node's name (/v1/health, what it holds on a shared
                           * database); NULL: the host name */
    int offline;          /* no message goes out to a platform, whatever the bots'
                           * channel settings: replies are only recorded (the spec
                           * runtime of parley test and parley replay) */
} pl_app_config;

/* Several nodes on one database: how long a node's hold of its work lasts
 * unless renewed — its outgoing calls, and the messages it recorded — so
 * that another node takes over that long after it died. PARLEY_LEASE_MS
 * changes it (tests). */
#define PL_LEASE_MS 30000

#define PL_MAX_THREADS 256

/* Hands the files below the app what they call up through: the modules
 * that run I/O from a turn (parley.http, parley.commerce) and the HTTP
 * allow list of a bot's states (bot.c and modules.c never name them).
 * pl_app_open does it; whatever loads bots without an app (parley check)
 * calls it first. */
void pl_app_wire_layers(void);

/* Opens everything. A bot whose scripts fail to load is still served (with
 * its fallback) and its error reported; a missing folder or a bad manifest
 * fails the whole start with *err. */
int pl_app_open(const pl_app_config *config, pl_app **out, char **err);
void pl_app_close(pl_app *app);

struct event_base *pl_app_base(pl_app *app);
pl_outbox *pl_app_outbox(pl_app *app);
/* The outbound HTTP client everything in the process shares (borrowed). */
pl_http_client *pl_app_http(pl_app *app);
struct pl_commerce *pl_app_commerce(pl_app *app);
pl_store *pl_app_store(pl_app *app);
/* This node's name (pl_app_config.node, else the host name). */
const char *pl_app_node(const pl_app *app);
pl_pipeline *pl_app_pipeline(pl_app *app);
size_t pl_app_bot_count(const pl_app *app);
pl_bot *pl_app_bot(pl_app *app, size_t i);
pl_bot *pl_app_find_bot(pl_app *app, const char *name);
void pl_app_on_reload(pl_app *app, pl_reload_fn fn, void *ud);

/* The test clock moved (pl_clock_advance): timers due now fire. */
void pl_app_clock_moved(pl_app *app);

/* Runs the loop until every posted message has been committed and delivered,
 * and what the store's thread was handed is done. */
void pl_app_drain(pl_app *app);

#endif
