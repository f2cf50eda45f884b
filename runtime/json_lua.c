/* json_lua: jansson <-> Lua conversion and the `json` Lua module.
 * Every JSON text goes through jansson; this file only walks values. */
#include "json_lua.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "text.h"

#define MAX_DEPTH 64

/* Registry keys: their addresses are unique. */
static const char array_mt_key = 'a';
static const char null_key = 'n';

static void push_array_mt(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key) != LUA_TNIL) return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);
}

void pl_json_mark_array(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    push_array_mt(L);
    lua_setmetatable(L, idx);
}

void pl_json_push_null(lua_State *L) { lua_pushlightuserdata(L, (void *)&null_key); }

int pl_json_is_null(lua_State *L, int idx) {
    return lua_islightuserdata(L, idx) && lua_touserdata(L, idx) == (void *)&null_key;
}

void pl_json_push(lua_State *L, const json_t *value) {
    luaL_checkstack(L, 4, "JSON value nested too deeply");
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(value));
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)value, key, member) {
            pl_json_push(L, member);
            lua_setfield(L, -2, key);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(value);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            pl_json_push(L, json_array_get(value, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        pl_json_mark_array(L, -1);
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(value)); break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(value)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    case JSON_NULL: pl_json_push_null(L); break;
    }
}

/* Conversion errors name the key path ("session.stack[1].slots.f"). The
 * path is only built on failure: each level that sees a failure below it
 * puts its own key in front of the message, so success costs nothing. */
static char *prefix_key(lua_State *L, int key_idx, const char *rest) {
    if (lua_type(L, key_idx) == LUA_TSTRING) return pl_strdupf(".%s%s", lua_tostring(L, key_idx), rest);
    return pl_strdupf("[%lld]%s", (long long)lua_tointeger(L, key_idx), rest);
}

/* A failure found at this level: *err = "<path below>: reason". The path
 * starts empty and grows as the failure travels up. */
static json_t *fail_here(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *fail_here(char **err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *reason = pl_vstrdupf(fmt, ap);
    va_end(ap);
    free(*err);
    *err = pl_strdupf(": %s", reason);
    free(reason);
    return NULL;
}

/* Puts the key at key_idx in front of the path in *err. */
static void add_key(lua_State *L, int key_idx, char **err) {
    char *longer = prefix_key(L, key_idx, *err);
    free(*err);
    *err = longer;
}

static json_t *convert(lua_State *L, int idx, int depth, char **err);

/* 1 for a list (marked, or keys 1..n), 0 for an object, -1 for a list with
 * holes; *count is the list length. */
static int is_array_table(lua_State *L, int idx, size_t *count) {
    if (lua_getmetatable(L, idx)) {
        push_array_mt(L);
        int marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (marked) {
            *count = (size_t)lua_rawlen(L, idx);
            return 1;
        }
    }
    size_t n = 0;
    lua_Integer max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        lua_Integer k = lua_tointeger(L, -1);
        if (k > max) max = k;
        n++;
    }
    *count = n;
    return n > 0 && (lua_Integer)n == max ? 1 : (n > 0 ? -1 : 0);
}

static json_t *convert_array(lua_State *L, int idx, size_t n, int depth, char **err) {
    json_t *arr = json_array();
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);
        json_t *item = convert(L, -1, depth + 1, err);
        lua_pop(L, 1);
        if (!item) {
            lua_pushinteger(L, (lua_Integer)i);
            add_key(L, -1, err);
            lua_pop(L, 1);
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr, item);
    }
    return arr;
}

static json_t *convert_object(lua_State *L, int idx, int depth, char **err) {
    json_t *obj = json_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        json_t *item = NULL;
        if (lua_type(L, -2) != LUA_TSTRING) {
            fail_here(err, "a table with both list items and named keys cannot be stored");
        } else {
            item = convert(L, -1, depth + 1, err);
            if (item) json_object_set_new(obj, lua_tostring(L, -2), item);
        }
        if (!item) {
            if (lua_type(L, -2) == LUA_TSTRING || lua_isinteger(L, -2)) add_key(L, -2, err);
            lua_pop(L, 2);
            json_decref(obj);
            return NULL;
        }
        lua_pop(L, 1);
    }
    return obj;
}

static json_t *convert_table(lua_State *L, int idx, int depth, char **err) {
    if (depth > MAX_DEPTH)
        return fail_here(err, "nested more than %d levels (a table that contains itself?)", MAX_DEPTH);
    luaL_checkstack(L, 6, "table nested too deeply");
    size_t n = 0;
    int kind = is_array_table(L, idx, &n);
    if (kind == 1) return convert_array(L, idx, n, depth, err);
    if (kind == -1) return fail_here(err, "a list with holes (or non-positive indexes) cannot be stored");
    return convert_object(L, idx, depth, err);
}

static json_t *convert(lua_State *L, int idx, int depth, char **err) {
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return json_null();
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) return json_integer((json_int_t)lua_tointeger(L, idx));
        if (!isfinite(lua_tonumber(L, idx))) return fail_here(err, "NaN and infinity cannot be stored");
        return json_real(lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (!pl_text_is_utf8(s, len)) return fail_here(err, "the string is not valid UTF-8");
        return json_stringn_nocheck(s, len);
    }
    case LUA_TTABLE: return convert_table(L, idx, depth, err);
    case LUA_TLIGHTUSERDATA:
        if (pl_json_is_null(L, idx)) return json_null();
        /* fallthrough */
    default:
        return fail_here(err, "a %s cannot be stored (only strings, numbers, booleans and tables of them)",
                         luaL_typename(L, idx));
    }
}

json_t *pl_json_from_lua(lua_State *L, int idx, const char *root, char **err) {
    char *below = NULL;
    json_t *value = convert(L, idx, 0, &below);
    if (!value) {
        char *message = pl_strdupf("%s%s", root ? root : "value", below ? below : ": cannot be stored");
        free(below);
        if (err) {
            free(*err);
            *err = message;
        } else {
            free(message);
        }
    }
    return value;
}

/* json.encode(value [, {pretty = true}]) -> string; raises on values JSON
 * cannot hold (that is a mistake in the script, not a failure of the world). */
static int json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    int pretty = 0;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "pretty");
        pretty = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    char *err = NULL;
    json_t *value = pl_json_from_lua(L, 1, "value", &err);
    if (!value) {
        lua_pushfstring(L, "json.encode: %s", err);
        free(err);
        return lua_error(L);
    }
    size_t flags = JSON_ENCODE_ANY | JSON_COMPACT | (pretty ? JSON_INDENT(2) | JSON_SORT_KEYS : 0);
    if (pretty) flags &= ~(size_t)JSON_COMPACT;
    char *text = json_dumps(value, flags);
    json_decref(value);
    lua_pushstring(L, text ? text : "null");
    free(text);
    return 1;
}

/* json.decode(text) -> value, or nil, "line N: reason" for malformed input. */
static int json_decode(lua_State *L) {
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    json_error_t jerr;
    json_t *value = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!value) {
        lua_pushnil(L);
        lua_pushfstring(L, "line %d: %s", jerr.line, jerr.text);
        return 2;
    }
    pl_json_push(L, value);
    json_decref(value);
    return 1;
}

/* json.array(t) marks t as a list, so that it encodes as [] even when empty. */
static int json_array_mark(lua_State *L) {
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    pl_json_mark_array(L, 1);
    return 1;
}

int pl_json_open(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"encode", json_encode}, {"decode", json_decode}, {"array", json_array_mark}, {NULL, NULL}};
    luaL_newlib(L, fns);
    pl_json_push_null(L);
    lua_setfield(L, -2, "null");
    return 1;
}
