/* bot: one brand served by parley — its folder, its manifest and the Lua
 * state currently serving it.
 *
 * Loading follows build, validate, swap: the bot's catalog and scripts are
 * compiled into a fresh sandboxed state; only if every file loads does the
 * bot switch to it (one assignment, between two messages). Turns in flight
 * keep their reference to the state they started on. A failed load keeps
 * the old state and records the error for /v1/health, the log and chat. */
#ifndef PL_BOT_H
#define PL_BOT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "sandbox/usage.h"
#include "sandbox/vm.h"
#include "store/store.h"

typedef struct pl_bot pl_bot;

/* A list of "file:line: message" strings (new strings, owned by the list). */
typedef struct {
    char **items;
    size_t count;
} pl_errors;

void pl_errors_add(pl_errors *errors, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pl_errors_clear(pl_errors *errors);

/* Reads the bot's manifest (bot.json). Does not load scripts. Fails with a
 * clear message when the folder or its manifest is missing or invalid. */
int pl_bot_open(const char *dir, pl_bot **out, char **err);
void pl_bot_free(pl_bot *bot);

/* Builds a fresh state from the folder. On success swaps it in, writes the
 * catalog to the store (when store is not NULL) and returns PL_OK; otherwise
 * keeps the old state, records the errors and returns PL_ERR. Warnings (such
 * as missing translations) go to *warnings when it is not NULL. */
int pl_bot_reload(pl_bot *bot, pl_store *store, pl_errors *errors, pl_errors *warnings);

/* The state serving the bot now (borrowed; retain it to keep it), or NULL
 * when the scripts have never loaded. */
pl_vm *pl_bot_vm(const pl_bot *bot);

/* With turn threads (workers.h) every worker has a state of its own. */
void pl_bot_set_workers(pl_bot *bot, size_t n);
/* The state of the calling thread: the worker's, else pl_bot_vm's. */
pl_vm *pl_bot_vm_here(const pl_bot *bot);
/* A fresh state built like the current one (for a worker), or NULL (logged). */
pl_vm *pl_bot_build_copy(const pl_bot *bot);
/* On a worker: its new state (NULL: it keeps its state) and copy of the
 * manifest (both taken over; the previous ones are released). */
void pl_bot_set_worker_state(pl_bot *bot, pl_vm *vm, json_t *manifest);

const char *pl_bot_name(const pl_bot *bot);
const char *pl_bot_dir(const pl_bot *bot);
const json_t *pl_bot_manifest(const pl_bot *bot);
/* Milliseconds since the epoch of the last successful load; 0 if none. */
int64_t pl_bot_loaded_at(const pl_bot *bot);
/* The version of the files last loaded: PL_BOT_VERSION_LEN hex digits of a
 * SHA-256 over the names and contents of the files a change of which
 * reloads the bot (its folder's .json, .csv and .lua files, and those in
 * flows/, scripts/ and lib/), so the same files give the same version on
 * every node; NULL before any load. The files are digested right after a
 * load succeeds (a save in between shows at the reload it causes). And how
 * many loads (the first and each hot reload) succeeded. */
#define PL_BOT_VERSION_LEN 16
const char *pl_bot_version(const pl_bot *bot);
int pl_bot_loads(const pl_bot *bot);
/* The last load error while the scripts are broken, else NULL. */
const char *pl_bot_error(const pl_bot *bot);

/* Calls parley.engine.<fn>(arg) in the bot's current state (arg may be
 * NULL) and returns its result as JSON (new), or NULL when the scripts
 * have not loaded or the call failed. For the agent console: "describe"
 * (flows and steps) and "totals" (a stored cart's totals). */
json_t *pl_bot_ask_engine(pl_bot *bot, const char *fn, const json_t *arg);
/* The same under the budget of loading the bot rather than of a turn: for
 * tooling that asks about the whole bot (`parley check`'s "facts", which
 * grow with the catalog and the router), never in front of a shopper. On
 * failure *err (new) says why. */
json_t *pl_bot_ask_engine_whole(pl_bot *bot, const char *fn, const json_t *arg, char **err);

/* The manifest's settings for a channel (borrowed until the next reload),
 * or NULL when the bot does not turn that channel on. */
const json_t *pl_bot_channel_settings(const pl_bot *bot, const char *channel);

/* The live stock of the bot's catalog: an object of key ("sku" or
 * "sku/option=value") -> units left, kept by commerce.c (borrowed); keys
 * not in it are unlimited. */
json_t *pl_bot_stock(pl_bot *bot);
/* Thread-safe access for turn threads (reads) and the loop (writes): the
 * units left of a stock key (returns 0 when the key is unlimited), and a
 * new count. The loop may read pl_bot_stock directly. */
int pl_bot_stock_left(pl_bot *bot, const char *key, int64_t *left);
void pl_bot_stock_set(pl_bot *bot, const char *key, json_t *left);

/* The text sent when the scripts cannot run at all: the manifest's
 * "fallback" for the locale, else a built-in sentence. Borrowed. */
const char *pl_bot_static_fallback(const pl_bot *bot, const char *locale);
/* Whether the bot records analytics events (its manifest's analytics.enabled,
 * on unless false). */
int pl_bot_analytics_on(const pl_bot *bot);
/* The bot's time zone, bot.json's "time_zone" (checked when it loads), or
 * "UTC": the days of its analytics. */
const char *pl_bot_time_zone(const pl_bot *bot);
/* How long without a word a conversation went quiet: bot.json's
 * analytics.quiet_minutes (default 30), in ms. */
int64_t pl_bot_quiet_ms(const pl_bot *bot);
/* The manifest's retention_days: how long transcripts, analytics events
 * and inbound messages are kept (app/retention.h purges older ones); 0
 * when it is not set (kept for good). read_manifest refuses anything but
 * 1 to PL_BOT_MAX_RETENTION_DAYS. */
#define PL_BOT_MAX_RETENTION_DAYS 36500
int pl_bot_retention_days(const pl_bot *bot);

/* The bot's CPU account: script time, budget aborts, its share (borrowed). */
pl_usage *pl_bot_usage(const pl_bot *bot);

/* Default budgets of a handler run, overridable in the manifest's
 * "limits" up to the host's caps. */
#define PL_DEFAULT_MEMORY_MB 64
#define PL_DEFAULT_INSTRUCTIONS 1000000L
#define PL_DEFAULT_TIME_MS 100L

/* What the layers above core/bot.c give every new state of every bot from
 * its manifest, once the runtime's modules are open and before the bot's
 * scripts load (the allow list of its outbound HTTP, http_lua.c); what is
 * wrong in the manifest goes to errors and fails the load. Set once at
 * start, before any bot loads (pl_app_wire_layers). */
typedef void (*pl_bot_state_setup)(lua_State *L, const json_t *manifest, pl_errors *errors);
void pl_bot_set_state_setup(pl_bot_state_setup setup);

/* The host's caps, set by the operator (parley serve): a bot.json asking
 * for more gets the cap, and a warning in parley check and the log. */
typedef struct {
    long memory_mb;
    long instructions;
    long time_ms;
} pl_bot_caps;

#define PL_CAP_MEMORY_MB 256
#define PL_CAP_INSTRUCTIONS 20000000L
#define PL_CAP_TIME_MS 1000L

void pl_bot_set_caps(const pl_bot_caps *caps);
void pl_bot_get_caps(pl_bot_caps *caps);

#endif
