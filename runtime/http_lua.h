/* http_lua: outbound HTTP for bot scripts — `require "http"`.
 *
 * http.request{method =, url =, headers =, body = | json =, timeout =}
 * waits for the answer without blocking other sessions (the turn yields;
 * see pl_turn_wait) and returns {status =, body =, json =} or nil and a
 * short reason ("timeout", "unreachable", ...). Only URLs under the bot's
 * manifest "http": {"allow": [...]} prefixes may be called; anything else
 * is a mistake in the script and raises. */
#ifndef PL_HTTP_LUA_H
#define PL_HTTP_LUA_H

#include <jansson.h>
#include <lua.h>

#include "http_client.h"

/* The client scripts' requests go through (one per process, set by the app). */
void pl_http_lua_use(pl_http_client *client);

/* Gives a bot's state its allow list (the manifest's http.allow, borrowed). */
void pl_http_lua_set_allow(lua_State *L, const json_t *allow);

/* luaopen for the C half, "parley.http"; the `http` module wraps it. */
int pl_http_lua_open(lua_State *L);

#endif
