/* json_lua: converting between jansson values and Lua values, and the `json`
 * module that flows use.
 *
 * JSON arrays become Lua sequences carrying the json.array metatable, so that
 * an empty array survives a round trip; JSON null becomes json.null. Lua
 * values that JSON cannot hold (functions, coroutines, userdata, NaN, mixed
 * or sparse keys, strings and keys that are not UTF-8, cycles) are refused
 * with a message naming the key path.
 *
 * In a bot's state, json.encode and json.decode run under the run's
 * budgets: what jansson allocates for them counts in the memory budget
 * (json_alloc.h), and the text and the values they convert are charged. */
#ifndef PL_JSON_LUA_H
#define PL_JSON_LUA_H

#include <jansson.h>
#include <lua.h>

/* Pushes the Lua form of `value` (borrowed), charging the run executing in
 * L's state one unit per value (run.h). Raises like any Lua call that
 * allocates (out of memory; the run over a budget ends it): a caller that
 * owns `value` must hold it where such an error cannot lose it, as
 * json.decode does by pushing in a protected call. */
void pl_json_push(lua_State *L, const json_t *value);

/* Pushes the Lua form of `value` and releases the caller's reference to it
 * (stolen) on every path: an error while pushing (out of memory, the run
 * over a budget) goes on only once the value is released. Returns 1 (one
 * value pushed), or does not return. */
int pl_json_push_owned(lua_State *L, json_t *value);

/* Returns a new reference to the JSON form of the value at `idx`, or NULL
 * with *err set to a new "path: reason" message (path like
 * "slots.order.size"; `root` names the value itself). Never raises, so C
 * resources may be held across it; charges the run one unit per value and
 * fails once the run is over a budget (the caller then ends the run). */
json_t *pl_json_from_lua(lua_State *L, int idx, const char *root, char **err);

/* The compact JSON text of the value at `idx` (new, NUL-terminated; *len,
 * when len is not NULL, its length), written straight from the Lua values:
 * exactly json_dumps(pl_json_from_lua(L, idx, root, err), JSON_COMPACT |
 * JSON_ENCODE_ANY), with the same checks, charges and error messages, but
 * no tree. NULL with *err set as pl_json_from_lua sets it. Never raises.
 * The text is allocated as jansson's (json_alloc.h): inside a scope it
 * counts in the scope's budget and is freed with pl_json_scope_free;
 * elsewhere free() frees it. */
char *pl_json_text_from_lua(lua_State *L, int idx, const char *root, size_t *len, char **err);

/* The objects of one text that hold no table, for a later text to copy
 * (a turn's session keeps the choices its replies offer: the same tables).
 * Start with {0}; the first pl_json_text_from_lua_sharing fills it, the
 * next ones copy from it while that first text lives, and no Lua code may
 * run between them (the tables must be as they were written). */
#define PL_JSON_SHARED_MAX 16
typedef struct {
    const char *text; /* the first text, once written */
    size_t n;
    struct {
        const void *table;
        size_t at, len; /* its text, in the first text */
        long values;    /* the values charged for its members */
    } objects[PL_JSON_SHARED_MAX];
} pl_json_shared;

/* pl_json_text_from_lua, noting its objects in shared (when shared->text
 * is NULL) or copying the noted ones it meets again: the same text,
 * checks, charges and errors. */
char *pl_json_text_from_lua_sharing(lua_State *L, int idx, const char *root, size_t *len, char **err,
                                    pl_json_shared *shared);

/* The length of the JSON array that the value at idx is written as: 0
 * when it is no table, an object, an empty list or a list with holes.
 * Allocates nothing, never raises. */
size_t pl_json_list_length(lua_State *L, int idx);

/* Pushes json.null / tests for it. */
void pl_json_push_null(lua_State *L);
int pl_json_is_null(lua_State *L, int idx);

/* Sets the array marker metatable on the table at idx. */
void pl_json_mark_array(lua_State *L, int idx);

/* luaopen for `require "json"`. */
int pl_json_open(lua_State *L);

#endif
