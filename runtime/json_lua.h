/* json_lua: converting between jansson values and Lua values, and the `json`
 * module that flows use.
 *
 * JSON arrays become Lua sequences carrying the json.array metatable, so that
 * an empty array survives a round trip; JSON null becomes json.null. Lua
 * values that JSON cannot hold (functions, coroutines, userdata, NaN, mixed
 * or sparse keys, cycles) are refused with a message naming the key path. */
#ifndef PL_JSON_LUA_H
#define PL_JSON_LUA_H

#include <jansson.h>
#include <lua.h>

/* Pushes the Lua form of `value` (borrowed). */
void pl_json_push(lua_State *L, const json_t *value);

/* Returns a new reference to the JSON form of the value at `idx`, or NULL
 * with *err set to a new "path: reason" message (path like
 * "slots.order.size"; `root` names the value itself). */
json_t *pl_json_from_lua(lua_State *L, int idx, const char *root, char **err);

/* Pushes json.null / tests for it. */
void pl_json_push_null(lua_State *L);
int pl_json_is_null(lua_State *L, int idx);

/* Sets the array marker metatable on the table at idx. */
void pl_json_mark_array(lua_State *L, int idx);

/* luaopen for `require "json"`. */
int pl_json_open(lua_State *L);

#endif
