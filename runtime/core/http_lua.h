/* http_lua: outbound HTTP for bot scripts — `require "http"`.
 *
 * http.request{method =, url =, headers =, body = | json =, timeout =}
 * waits for the answer without blocking other sessions (the turn yields;
 * see pl_turn_wait) and returns {status =, body =, json =} or nil and a
 * short reason: "timeout", "unreachable", "refused" (the address is
 * loopback, private, ...: see http_policy.h) or "too-large" (the answer
 * passed PL_HTTP_SCRIPT_MAX_RESPONSE). Only URLs under an entry of the
 * bot's manifest "http": {"allow": [...]} may be called (matched as
 * http_policy.h says); anything else is a mistake in the script and raises,
 * as does a body over PL_HTTP_SCRIPT_MAX_BODY. Redirects are not followed.
 * The host's caps apply whatever the script asks. */
#ifndef PL_HTTP_LUA_H
#define PL_HTTP_LUA_H

#include <jansson.h>
#include <lua.h>

#include "bot.h"
#include "event/http_client.h"

#define PL_HTTP_SCRIPT_MAX_RESPONSE (1024 * 1024) /* bytes of an answer's body */
#define PL_HTTP_SCRIPT_MAX_BODY (1024 * 1024)     /* bytes of a request's body */
#define PL_HTTP_SCRIPT_MAX_TIMEOUT_MS 10000L      /* also the default */

/* The client scripts' requests go through (one per process, set by the app). */
void pl_http_lua_use(pl_http_client *client);

/* Lets scripts' requests reach loopback, private and the other addresses
 * http_policy.c refuses: the operator's switch (parley serve
 * --allow-private-http). Until it is called, the environment says:
 * PARLEY_ALLOW_PRIVATE_HTTP=1, for every command (parley test, chat). */
void pl_http_lua_allow_private(int allowed);

/* The client and the operator's switch above, for the requests the runtime
 * makes on a bot's behalf to a URL of its manifest (llm_lua.c). */
pl_http_client *pl_http_lua_client(void);
int pl_http_lua_private_allowed(void);

/* Gives a bot's state its allow list from the manifest's "http" object
 * (borrowed; NULL when absent). Each entry that is not a valid rule is
 * added to errors as "bot.json: http.allow[i]: why" (i counted from 0) and
 * left out. */
void pl_http_lua_set_allow(lua_State *L, const json_t *http, pl_errors *errors);

/* luaopen for the C half, "parley.http"; the `http` module wraps it. */
int pl_http_lua_open(lua_State *L);

/* Pushes what a script's request gives back: {status =, body =} (1 value),
 * or nil and why ("timeout", "refused", "too-large", "unreachable"). For
 * the calls of the runtime's own that answer the same way (llm_lua.c). */
int pl_http_lua_push_answer(lua_State *co, pl_http_outcome outcome, long status, const char *body, size_t len);

#endif
