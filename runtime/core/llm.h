/* llm: the C side of a bot's optional language model (bot.json
 * "understanding": {"llm": {...}}, docs/understanding-llm.md) — the
 * manifest's settings checked and completed with their defaults, and, per
 * bot whatever thread or Lua state asks, the request rate and the token
 * budget, and the counts /metrics shows (parley_llm_*).
 *
 * The server runs turns on several threads, each with its own Lua state per
 * bot, so the budgets cannot live in Lua: they are kept here, by bot name,
 * under one mutex. The minute of the rate and the day of the budget follow
 * parley's clock (pl_now_ms, which the test clock moves): a fixed window of
 * each clock minute, and each UTC day. llm_lua.c is the Lua binding
 * (`parley.llm`); runtime/lua/parley/understand_llm.lua the rest. */
#ifndef PL_LLM_H
#define PL_LLM_H

#include <jansson.h>
#include <stdint.h>

/* Defaults and bounds of the settings. */
#define PL_LLM_TIMEOUT_MS 3000
#define PL_LLM_MAX_TIMEOUT_MS 10000 /* the cap of scripts' HTTP (http_lua.h) */
#define PL_LLM_REQUESTS_PER_MINUTE 60
#define PL_LLM_TOKENS_PER_DAY 200000
#define PL_LLM_CACHE_ENTRIES 1000
#define PL_LLM_MAX_CACHE_ENTRIES 100000

/* What is wrong with manifest's "understanding" object, as a new message
 * without the "bot.json:1: " in front, or NULL when it is absent or right. */
char *pl_llm_check_manifest(const json_t *manifest);

/* understanding.llm of a checked manifest with every default filled in
 * (new), or NULL when the bot names no model. redact becomes an object
 * {"phone": true, ...}. */
json_t *pl_llm_settings(const json_t *manifest);

/* Takes one request of bot's rate at now_ms: PL_OK, or PL_ERR with *reason
 * "rate" (requests_per_minute were made this clock minute) or "budget"
 * (tokens_per_day were spent this UTC day). */
int pl_llm_take(const char *bot, long requests_per_minute, long long tokens_per_day, int64_t now_ms,
                const char **reason);
/* Adds an answer's tokens to bot's day at now_ms (and to the metrics). */
void pl_llm_spend(const char *bot, long long tokens, int64_t now_ms);

/* What bot has used: requests this minute and tokens this day at now_ms. */
void pl_llm_used(const char *bot, int64_t now_ms, long *requests, long long *tokens);

/* An ask's outcome by bot: result is one of pl_llm_results (anything
 * else counts as "error"), counted in parley_llm_requests_total. */
extern const char *const pl_llm_results[];
void pl_llm_count(const char *bot, const char *result);
void pl_llm_cache_hit(const char *bot);
void pl_llm_latency(const char *bot, double seconds);

/* Makes the families, so /metrics names them before any count. */
void pl_llm_metrics(void);

/* Forgets every bot's rate and budget (tests). */
void pl_llm_reset(void);

#endif
