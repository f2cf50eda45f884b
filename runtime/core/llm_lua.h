/* llm_lua: `parley.llm`, the C half of runtime/lua/parley/understand_llm.lua
 * (docs/understanding-llm.md). It holds a state's settings of its bot's
 * language model out of the scripts' reach, and makes the one request the
 * model gets: POST {base_url}/chat/completions with the bot's key, through
 * the outbound client scripts' HTTP uses (the turn yields meanwhile), after
 * the bot's rate and token budget (llm.h) said yes.
 *
 *   settings()      -> a copy of the settings with their defaults, or nil
 *   complete(body)  -> {status =, body =, tokens =} | nil, reason
 *                      reason: "rate", "budget", "no-key", "timeout",
 *                      "unreachable", "refused", "too-large"
 *   count(result)   -> counts an ask's end (llm.h's pl_llm_results)
 *   cache_hit()     -> counts an ask the cache answered
 *
 * The URL is the manifest's, so it needs no entry in the bot's "http" allow
 * list; a loopback or private address still needs the operator's
 * --allow-private-http, as a script's request does. */
#ifndef PL_LLM_LUA_H
#define PL_LLM_LUA_H

#include <jansson.h>
#include <lua.h>

/* Gives a bot's new state the settings of its manifest's understanding.llm
 * (checked when the manifest was read; none: the model is off). */
void pl_llm_lua_setup(lua_State *L, const json_t *manifest);

/* luaopen of "parley.llm". */
int pl_llm_lua_open(lua_State *L);

#endif
